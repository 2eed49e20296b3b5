//! What a build does with what it built, for both frontends and any number of platforms: one
//! image and a multi-platform index take the same path, in one order (README, "What a build does
//! after the last step"):
//!
//! 1. **Gates**, on every platform's image: `--check`/`--policy` (each platform), then the
//!    `--scan` gate (each platform, on its catalogued packages). A failure exits 3 and nothing
//!    at all is written: no SBOM file, no output, no push, no `--metadata-file`.
//! 2. **SBOMs and attestations**: each platform's SBOM documents are written to `--sbom-dir`;
//!    with `--sign`, the SLSA provenance (`--provenance-file`) and the `--attest-sbom` predicates
//!    are made (each platform's SBOM for its own manifest).
//! 3. **Outputs**, one after the other (`--output` in the order given, then each `-t` with
//!    `--push`): the image or index is written or pushed, then its SBOMs are attached (each to
//!    its platform's manifest), then it is **signed** there (the root and each platform's
//!    manifest) and the attestations attached — as `docker buildx build --push` followed by
//!    `cosign attach sbom`/`cosign sign`/`cosign attest`: a signature refers to a manifest
//!    already in the destination, and a layout carries its signature before it is ever pushed.
//! 4. `--iidfile`, the build record in the store, `--summary` and `--metadata-file`.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use ocibuild_engine::{BuildOutcome, FrontendDetail};
use ocibuild_oci::image::{Descriptor, Image, Platform};
use ocibuild_oci::layout::{StoreSource, write_layout_root, write_oci_archive_root};
use ocibuild_oci::reference::{Location, Reference};
use ocibuild_oci::store::ContentStore;
use serde_json::json;

use super::multiplatform::platform_list;
use crate::cli::{BuildArgs, Global};
use crate::output::Reporter;

/// Gate, document, sign and write what the build made (module docs: the order), then keep its
/// record and write `--iidfile` and `--metadata-file`.
pub(super) fn release(
    g: &Global,
    a: &BuildArgs,
    rep: &Reporter,
    store: &ContentStore,
    out: &BuildOutcome,
) -> Result<()> {
    let images = out.images();
    let Some((_, first)) = images.first() else {
        bail!("the build made no image");
    };
    // one image, or an index whose manifests are the platforms' images
    let root: Descriptor = out
        .index
        .clone()
        .unwrap_or_else(|| first.manifest_desc.clone());
    let multi = out.index.is_some();
    let dests = destinations(a)?;
    let record = &out.record;

    // 1. the gates, on every platform, before anything is written
    let srcs: Vec<(Option<&Platform>, &Image, StoreSource)> = images
        .iter()
        .map(|(p, img)| {
            let what = if multi {
                format!("the built {p} image {}", img.manifest_desc.digest)
            } else {
                format!("the built image {}", img.manifest_desc.digest)
            };
            let src = StoreSource::new(store.clone(), img.manifest_desc.clone(), what);
            (multi.then_some(p), img, src)
        })
        .collect();
    if a.check || a.policy.is_some() {
        for (_, img, src) in &srcs {
            super::policy::gate(src, img, a.policy.as_deref(), rep)?;
        }
    }
    let mut sboms = Vec::new();
    for (p, _, src) in &srcs {
        sboms.push(super::supply::catalog_and_scan(
            g,
            a,
            src,
            rep,
            Some(record),
            *p,
        )?);
    }

    // 2. the SBOM files, and what --sign will attest
    for ((p, _, _), docs) in srcs.iter().zip(&sboms) {
        super::supply::write_sboms(a, docs, *p, rep)?;
    }
    let subjects: Vec<(Descriptor, Option<String>, &[super::supply::SbomDoc])> = srcs
        .iter()
        .zip(&sboms)
        .map(|((p, img, _), docs)| {
            (
                img.manifest_desc.clone(),
                p.map(|p| p.to_string()),
                docs.as_slice(),
            )
        })
        .collect();
    let signing = super::buildsign::prepare(a, record, &subjects, rep)?;

    // 3. every output: written or pushed, then its SBOMs attached, then signed there
    let src = StoreSource::new(
        store.clone(),
        root.clone(),
        if multi {
            format!("the built index {}", root.digest)
        } else {
            format!("the built image {}", root.digest)
        },
    );
    let reg = if dests.iter().any(|d| matches!(d, Location::Registry(_))) {
        Some(super::registry::registry(g)?)
    } else {
        None
    };
    let platforms: Vec<Platform> = images.iter().map(|(p, _)| p.clone()).collect();
    for d in &dests {
        match (d, &reg) {
            (Location::Registry(_), Some(reg)) => {
                super::registry::export(g, reg, rep, &src, first, d)?;
            }
            (Location::Registry(_), None) => bail!("writing {d}: no registry client"),
            (Location::Layout { dir, tag }, _) if multi => {
                write_layout_root(dir, tag.as_deref(), &src)
                    .with_context(|| format!("writing {d}"))?;
            }
            (Location::OciArchive { file, tag }, _) if multi => {
                write_oci_archive_root(file, tag.as_deref(), &src)
                    .with_context(|| format!("writing {d}"))?;
            }
            (Location::DockerArchive { .. } | Location::Scratch, _) if multi => bail!(
                "--output {d}: a multi-platform build writes an index: use oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker://REF"
            ),
            (local, _) => ocibuild_oci::layout::write_location(local, &src, first)
                .with_context(|| format!("writing {d}"))?,
        }
        let shown = if multi {
            format!("wrote {d} (an index of {})", platform_list(&platforms))
        } else {
            format!("wrote {d}")
        };
        rep.event(
            &shown,
            json!({"event": "output", "location": d.to_string(), "digest": root.digest.to_string()}),
        );
        for ((_, img), docs) in images.iter().zip(&sboms) {
            super::supply::attach(reg.as_ref(), d, img, docs, a.sbom_attach == "cosign", rep)?;
        }
        if let Some(s) = &signing {
            s.apply(reg.as_ref(), d, &root, rep)?;
        }
    }
    if dests.is_empty() {
        rep.event(
            &format!(
                "no --output or --push: the {} is only in the content store; add --output oci:DIR:TAG or -t NAME --push",
                if multi { "index" } else { "image" }
            ),
            json!({"event": "warning", "message": "no output"}),
        );
    }

    // 4. what is written about the build
    if let Some(f) = &a.iidfile {
        super::write_file_atomically(f, root.digest.to_string().as_bytes())?;
    }
    super::record::finish(a, store, record, metadata_keys(out))
}

/// Every `--output`, then every `-t` with `--push`.
fn destinations(a: &BuildArgs) -> Result<Vec<Location>> {
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
    Ok(dests)
}

/// The frontend's own keys of the `--metadata-file` (the rest is the record's, the same for
/// both).
fn metadata_keys(out: &BuildOutcome) -> BTreeMap<String, serde_json::Value> {
    let mut extra = BTreeMap::new();
    match out.platforms.first().map(|p| &p.detail) {
        Some(FrontendDetail::Dockerfile { stages }) => {
            extra.insert("ocibuild.stages".to_string(), json!(stages));
        }
        Some(FrontendDetail::ZeroConfig {
            lang,
            toolchain,
            runtime,
            naive_size,
            tier,
        }) if out.index.is_none() => {
            extra.insert("ocibuild.lang".to_string(), json!(lang));
            extra.insert("ocibuild.toolchain".to_string(), json!(toolchain));
            extra.insert("ocibuild.runtime".to_string(), json!(runtime));
            extra.insert("ocibuild.naive_size".to_string(), json!(naive_size));
            extra.insert(
                "ocibuild.sandbox".to_string(),
                json!(format!("{tier:?}").to_lowercase()),
            );
        }
        _ => {}
    }
    if out.index.is_some() {
        let digests: BTreeMap<String, String> = out
            .platforms
            .iter()
            .map(|p| {
                (
                    p.platform.to_string(),
                    p.image.manifest_desc.digest.to_string(),
                )
            })
            .collect();
        extra.insert("ocibuild.platform.images".to_string(), json!(digests));
    }
    extra
}
