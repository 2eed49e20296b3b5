//! `--platform linux/amd64,linux/arm64`: the flags, and the index the engine built (one image per
//! platform, `ocibuild_engine::build`) written to every output (registries get the index and all its
//! manifests; `oci:` layouts and `oci-archive:` files hold the index; `docker-archive:` holds one
//! image and so takes one platform).

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use ocibuild_oci::image::{Descriptor, Image, Platform};
use ocibuild_oci::layout::{StoreSource, write_layout_root, write_oci_archive_root};
use ocibuild_oci::reference::{Location, Reference};
use ocibuild_oci::store::ContentStore;
use ocibuild_record::BuildRecord;
use serde_json::json;

use crate::cli::{BuildArgs, Global};
use crate::output::{Reporter, usage};

/// `--platform`: one or more comma-separated `os/arch[/variant]`, each at most once.
pub(super) fn parse_platforms(s: &str) -> Result<Vec<Platform>> {
    let mut out: Vec<Platform> = Vec::new();
    for p in s.split(',').map(str::trim) {
        if p.is_empty() {
            return Err(usage(format!(
                "--platform {s}: an empty platform; write OS/ARCH[,OS/ARCH…], like linux/amd64,linux/arm64"
            )));
        }
        let platform = Platform::parse(p).with_context(|| format!("--platform {s}"))?;
        if out.contains(&platform) {
            return Err(usage(format!("--platform {s}: {p} is named twice")));
        }
        out.push(platform);
    }
    Ok(out)
}

/// What a multi-platform build cannot write or do, said before anything is built.
pub(super) fn check_args(a: &BuildArgs, platforms: &[Platform]) -> Result<()> {
    if platforms.len() < 2 {
        return Ok(());
    }
    let names = platform_list(platforms);
    if a.signing.attest_sbom {
        return Err(usage(format!(
            "--attest-sbom: --platform {names} builds one SBOM per platform, and this build signs the index and each platform's manifest with the same attestations, so it cannot attest each SBOM to its own platform yet; use --sbom without --attest-sbom (each platform's SBOM is attached to its own manifest as a referrer) and, to sign them, after the build `ocibuild attest --key K --type cyclonedx --predicate SBOM-DIR/linux_arm64/… IMAGE@DIGEST` per platform"
        )));
    }
    for o in &a.outputs {
        if let Ok(Location::DockerArchive { .. }) = Location::parse(o) {
            return Err(usage(format!(
                "--output {o}: a docker-archive holds one image, and --platform {names} builds {}; give one --platform for a docker-archive, or write the index to oci:DIR[:TAG] or oci-archive:FILE[:TAG]",
                platforms.len()
            )));
        }
    }
    Ok(())
}

pub(super) fn platform_list(platforms: &[Platform]) -> String {
    platforms
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Write the index (and so every platform's image) to every `--output` and `-t … --push`.
pub(super) fn write_index_outputs(
    g: &Global,
    a: &BuildArgs,
    rep: &Reporter,
    store: &ContentStore,
    index: &Descriptor,
    images: &[(Platform, Image)],
    record: &BuildRecord,
) -> Result<()> {
    let mut dests: Vec<Location> = a
        .outputs
        .iter()
        .map(|o| Location::parse(o).with_context(|| format!("--output {o}")))
        .collect::<Result<_>>()?;
    if a.push {
        if a.tags.is_empty() {
            bail!("--push needs at least one -t NAME:TAG to push to");
        }
        for t in &a.tags {
            let r = Reference::parse(t).with_context(|| format!("-t {t}"))?;
            dests.push(Location::Registry(r));
        }
    }
    // The gates and the SBOMs, per platform, before anything is written: checks, then the
    // scan and SBOM of each platform's image (its own packages: each architecture's Debian
    // packages and the app's).
    let mut sboms = Vec::new();
    for (p, img) in images {
        let src = StoreSource::new(
            store.clone(),
            img.manifest_desc.clone(),
            format!("the built {p} image {}", img.manifest_desc.digest),
        );
        if a.check || a.policy.is_some() {
            super::policy::gate(&src, img, a.policy.as_deref(), rep)?;
        }
        sboms.push(super::supply::before_outputs(
            g,
            a,
            &src,
            rep,
            Some(record),
            Some(p),
        )?);
    }
    // --sign: the index and each platform's manifest, in every layout and registry output
    let signing = super::buildsign::prepare(a, record, &[], rep)?;
    let src = StoreSource::new(
        store.clone(),
        index.clone(),
        format!("the built index {}", index.digest),
    );
    let reg = if dests.iter().any(|d| matches!(d, Location::Registry(_))) {
        Some(super::registry::registry(g)?)
    } else {
        None
    };
    for d in &dests {
        match d {
            Location::Layout { dir, tag } => {
                write_layout_root(dir, tag.as_deref(), &src)
                    .with_context(|| format!("writing {d}"))?;
            }
            Location::OciArchive { file, tag } => {
                write_oci_archive_root(file, tag.as_deref(), &src)
                    .with_context(|| format!("writing {d}"))?;
            }
            Location::Registry(_) => {
                let (Some(reg), Some((_, first))) = (&reg, images.first()) else {
                    bail!("writing {d}: no registry client");
                };
                super::registry::export(g, reg, rep, &src, first, d)?;
            }
            Location::DockerArchive { .. } | Location::Scratch => {
                bail!(
                    "--output {d}: a multi-platform build writes an index: use oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker://REF"
                )
            }
        }
        for ((_, img), docs) in images.iter().zip(&sboms) {
            super::supply::attach(reg.as_ref(), d, img, docs, a.sbom_attach == "cosign", rep)?;
        }
        if let Some(s) = &signing {
            s.apply(reg.as_ref(), d, index, rep)?;
        }
        rep.event(
            &format!("wrote {d} (an index of {})", platform_list(&images.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>())),
            json!({"event": "output", "location": d.to_string(), "digest": index.digest.to_string()}),
        );
    }
    if dests.is_empty() {
        rep.event(
            "no --output or --push: the index is only in the content store; add --output oci:DIR:TAG or -t NAME --push",
            json!({"event": "warning", "message": "no output"}),
        );
    }
    Ok(())
}

/// The `ocibuild.platform.images` key of the metadata file: platform → manifest digest.
pub(super) fn platform_digests(images: &[(Platform, Image)]) -> BTreeMap<String, String> {
    images
        .iter()
        .map(|(p, i)| (p.to_string(), i.manifest_desc.digest.to_string()))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn platform_lists_parse_and_refuse_repeats() {
        let p = parse_platforms("linux/amd64, linux/arm64").unwrap();
        assert_eq!(platform_list(&p), "linux/amd64,linux/arm64");
        assert!(parse_platforms("linux/amd64,linux/amd64").is_err());
        assert!(parse_platforms("linux/amd64,").is_err());
        assert!(parse_platforms("linux").is_err());
    }
}
