//! `--platform linux/amd64,linux/arm64`: one build per platform, then one OCI image index with a
//! manifest per platform, written to every output (registries get the index and all its
//! manifests; `oci:` layouts and `oci-archive:` files hold the index; `docker-archive:` holds one
//! image and so takes one platform).

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use ocibuild_oci::image::{Descriptor, Image, Index, Platform, to_json_bytes};
use ocibuild_oci::layout::{StoreSource, write_layout_root, write_oci_archive_root};
use ocibuild_oci::media;
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

/// The index of `images` (each with its config's platform), put into the store.
pub(super) fn put_index(store: &ContentStore, images: &[(Platform, Image)]) -> Result<Descriptor> {
    let mut index = Index::new();
    for (p, img) in images {
        let mut d = Descriptor::new(
            img.manifest_desc.media_type.clone(),
            img.manifest_desc.digest.clone(),
            img.manifest_desc.size,
        );
        // the platform as the image's config says it (e.g. arm64's variant v8 from a base)
        let mut platform = img.platform().unwrap_or_else(|| p.clone());
        platform.os_features = None;
        d.platform = Some(platform);
        index.manifests.push(d);
    }
    let bytes = to_json_bytes(&index, "image index")?;
    let digest = store.put_bytes(&bytes)?;
    Ok(Descriptor::new(
        media::OCI_INDEX,
        digest,
        bytes.len() as u64,
    ))
}

/// One record for the whole build: the first platform's, with every platform's image and steps
/// (step ids prefixed with their platform: `linux/arm64/build/3`) and the index.
pub(super) fn merge_records(
    mut records: Vec<BuildRecord>,
    index: &Descriptor,
) -> Option<BuildRecord> {
    if records.is_empty() {
        return None;
    }
    let mut all = records.remove(0);
    let mut rest = records;
    let prefix = |r: &mut BuildRecord| {
        let p = r
            .images
            .first()
            .map(|i| i.platform.clone())
            .unwrap_or_default();
        for s in &mut r.steps {
            s.id = format!("{p}/{}", s.id);
        }
        for i in &mut r.images {
            for l in &mut i.layers {
                if let ocibuild_record::LayerOrigin::Step { step } = &mut l.origin {
                    *step = format!("{p}/{step}");
                }
            }
        }
    };
    prefix(&mut all);
    for r in &mut rest {
        prefix(r);
        all.images.append(&mut r.images);
        all.steps.append(&mut r.steps);
    }
    all.parameters.platforms = all.images.iter().map(|i| i.platform.clone()).collect();
    all.index = Some(index.clone());
    Some(all)
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

/// `ocibuild build DIR --platform A,B,…` without a Dockerfile: the zero-config build once per
/// platform, each kept in the store with its build record, then one index of them written to
/// every output. A foreign platform's build stage runs on the build platform (Go
/// cross-compiles; Node, Python and Java layers without native code are the same blobs for
/// every platform: `ocibuild_engine::lowered`); each runtime base comes from that
/// architecture's Debian packages.
pub(super) fn zero_config(g: &Global, a: &BuildArgs, warm_only: bool) -> Result<ExitCode> {
    let platforms = parse_platforms(&a.platform)?;
    check_args(a, &platforms)?;
    if a.dry_run.is_some() {
        return Err(usage(format!(
            "--dry-run with --platform {}: the plan is per platform; give one --platform",
            a.platform
        )));
    }
    let rep = Reporter::new(g.progress);
    let store = super::open_store(g)?;
    let t0 = std::time::Instant::now();
    let scratch = tempfile::tempdir().context("creating a temp dir")?;
    let mut images = Vec::new();
    let mut records = Vec::new();
    // Foreign platforms first: what stops a build for them (native code that needs emulation)
    // stops it before the host's platform was built; the index keeps the order asked for.
    let mut order: Vec<&Platform> = platforms.iter().collect();
    order.sort_by_key(|p| p.architecture == super::build::host_arch());
    for p in order {
        rep.event(
            &format!("platform {p}"),
            json!({"event": "platform", "platform": p.to_string()}),
        );
        let iid = scratch.path().join("iid");
        let mut one = a.clone();
        one.platform = p.to_string();
        one.index_part = true;
        one.outputs.clear();
        one.push = false;
        one.check = false;
        one.policy = None;
        // the gates and SBOMs run per platform in write_index_outputs
        one.sbom.clear();
        one.scan = false;
        // the parts are not written anywhere: the index is signed once, in write_index_outputs
        one.signing.sign = None;
        one.signing.provenance = None;
        one.signing.attest_sbom = false;
        one.metadata_file = None;
        one.summary = None;
        one.iidfile = Some(iid.clone());
        super::build::run_mode(g, &one, warm_only)
            .with_context(|| format!("building {} for {p}", a.context.display()))?;
        if warm_only {
            continue;
        }
        let digest: ocibuild_oci::Digest = std::fs::read_to_string(&iid)
            .context("reading the digest of a platform's image")?
            .trim()
            .parse()
            .context("the digest of a platform's image")?;
        let size = store
            .size(&digest)
            .with_context(|| format!("the image {digest} is not in the store"))?;
        let desc = Descriptor::new(media::OCI_MANIFEST, digest.clone(), size);
        let src = StoreSource::new(store.clone(), desc, format!("the built {p} image"));
        let img = ocibuild_oci::image::load_image(&src, None)?;
        let record = ocibuild_engine::load_record(&store, &digest)?
            .with_context(|| format!("the build record of {digest} is not in the store"))?;
        records.push(record);
        images.push((p.clone(), img));
    }
    if warm_only {
        return Ok(ExitCode::SUCCESS);
    }
    let mut built: Vec<((Platform, Image), BuildRecord)> =
        images.into_iter().zip(records).collect();
    built.sort_by_key(|((p, _), _)| platforms.iter().position(|q| q == p));
    let (images, records): (Vec<_>, Vec<_>) = built.into_iter().unzip();
    let index = put_index(&store, &images)?;
    let record = merge_records(records, &index).context("no platform was built")?;
    let digest = index.digest.to_string();
    rep.image_done(&record, t0.elapsed().as_secs_f64());
    write_index_outputs(g, a, &rep, &store, &index, &images, &record)?;
    if let Some(f) = &a.iidfile {
        super::write_file_atomically(f, digest.as_bytes())?;
    }
    let extra = BTreeMap::from([(
        "ocibuild.platform.images".to_string(),
        json!(platform_digests(&images)),
    )]);
    super::record::finish(a, &store, &record, extra)?;
    println!("{digest}");
    Ok(ExitCode::SUCCESS)
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
