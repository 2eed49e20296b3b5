//! `build --scan` and `build --sbom`: what a build does with the image it made, for both
//! frontends (the order is [`super::release`]'s). The scan gate runs before any output is written
//! (findings exit 3 and write nothing); the SBOM documents are written to `--sbom-dir` once every
//! platform passed its gates, and attached to every `oci:` and `docker://` output as OCI 1.1
//! referrers after it was written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ocibuild_oci::artifact::{EMPTY_JSON, artifact_manifest};
use ocibuild_oci::image::{Descriptor, Image, ImageSource, to_json_bytes};
use ocibuild_oci::media;
use ocibuild_oci::reference::Location;
use ocibuild_registry::artifacts::Target;
use ocibuild_registry::client::Registry;
use serde_json::json;

use crate::cli::{BuildArgs, Global, ScanArgs, ScanFormat};
use crate::output::{Reporter, usage};

/// One SBOM document of the build: its file name, artifact type and bytes.
pub(super) struct SbomDoc {
    pub file: &'static str,
    pub artifact_type: &'static str,
    /// The layer media type of cosign's `.sbom` tag form (cosign's SBOM specification).
    pub cosign_media_type: &'static str,
    pub bytes: Vec<u8>,
}

/// The SBOM formats `--sbom` asks for: `cyclonedx`, `spdx`, `true` (both), `false`/`none`.
fn formats(a: &BuildArgs) -> Result<(bool, bool)> {
    let (mut cdx, mut spdx) = (false, false);
    for v in &a.sbom {
        match v.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => (cdx, spdx) = (true, true),
            "false" | "0" | "none" => {}
            "cyclonedx" | "cdx" => cdx = true,
            "spdx" => spdx = true,
            other => {
                return Err(usage(format!(
                    "--sbom {other}: not a format — give cyclonedx, spdx, both (cyclonedx,spdx) or true"
                )));
            }
        }
    }
    Ok((cdx, spdx))
}

/// The gate half of `--sbom`/`--scan`, before anything is written: catalogue the image when
/// `--sbom` or `--scan` asks for it (from the build's `record`, which both frontends give) and
/// run the scan gate. Returns the SBOM documents, in memory: [`write_sboms`] writes them once every
/// platform passed its gates.
///
/// `platform`: one platform of a multi-platform build. Its events name it and `--scan-report
/// FILE` becomes `FILE` with `.OS_ARCH` before its extension.
pub(super) fn catalog_and_scan(
    g: &Global,
    a: &BuildArgs,
    src: &dyn ImageSource,
    rep: &Reporter,
    record: Option<&ocibuild_record::BuildRecord>,
    platform: Option<&ocibuild_oci::image::Platform>,
) -> Result<Vec<SbomDoc>> {
    let (cdx, spdx) = formats(a)?;
    if !cdx && !spdx && !a.scan {
        return Ok(Vec::new());
    }
    let pname = platform.map(|p| p.to_string());
    let pdir = platform.map(platform_dir);
    let name = a.tags.first().cloned().unwrap_or_else(|| src.describe());
    let t0 = std::time::Instant::now();
    let sbom = catalog_built(g, src, &name, record, &a.context)
        .with_context(|| format!("cataloguing the packages of {}", src.describe()))?;
    rep.event(
        &format!(
            "catalogued {} components in {:.2}s ({})",
            sbom.components.len(),
            t0.elapsed().as_secs_f64(),
            if record.is_some() {
                "from the build record and the layers"
            } else {
                "from the layers"
            }
        ),
        json!({"event": "sbom-catalogued", "components": sbom.components.len(),
               "seconds": t0.elapsed().as_secs_f64(), "build_record": record.is_some()}),
    );
    let cdx_doc = ocibuild_sbom::cyclonedx::document(&sbom);
    if a.scan {
        let packages = ocibuild_scan::from_cyclonedx(&cdx_doc)
            .context("reading the packages catalogued in the built image")?;
        let sa = ScanArgs {
            image: None,
            sbom: None,
            platform: None,
            db: a.db.clone(),
            severity: a.severity.clone(),
            severity_threshold: None,
            ignore_unfixed: a.ignore_unfixed,
            ignore_unknown: a.ignore_unknown,
            format: ScanFormat::Json,
            output: a.scan_report.as_ref().map(|f| match &pdir {
                Some(d) => platform_file(f, d),
                None => f.clone(),
            }),
            allowlist: a.allowlist.clone(),
            vex: a.vex.clone(),
            db_max_age: None,
            exit_code: 3,
        };
        let found = super::scan::scan_packages(g, &sa, &packages, None, true)?;
        rep.event(
            &format!(
                "scan: {} packages, {}",
                packages.len(),
                if found {
                    "vulnerabilities at or above the threshold"
                } else {
                    "clean"
                }
            ),
            json!({"event": "scan", "packages": packages.len(), "passed": !found, "platform": pname}),
        );
        if found {
            let of = pname
                .as_ref()
                .map(|p| format!(" for {p}"))
                .unwrap_or_default();
            return Err(super::policy::GateFailed(format!(
                "the built image{of} has vulnerabilities at or above the threshold (report above); nothing was \
                 written or pushed — update the packages named (the `action` of each finding), or suppress a \
                 finding that does not apply with --allowlist or --vex"
            ))
            .into());
        }
    }
    let mut docs = Vec::new();
    if cdx {
        docs.push(SbomDoc {
            file: "sbom.cdx.json",
            artifact_type: "application/vnd.cyclonedx+json",
            cosign_media_type: "application/vnd.cyclonedx+json",
            bytes: pretty(&cdx_doc)?,
        });
    }
    if spdx {
        docs.push(SbomDoc {
            file: "sbom.spdx.json",
            artifact_type: "application/spdx+json",
            cosign_media_type: "text/spdx+json",
            bytes: pretty(&ocibuild_sbom::spdx_doc::document(&sbom))?,
        });
    }
    Ok(docs)
}

/// `linux/arm64` → `linux_arm64`: a platform's directory and file-name part.
fn platform_dir(p: &ocibuild_oci::image::Platform) -> String {
    p.to_string().replace('/', "_")
}

/// Write one image's SBOM documents to `--sbom-dir` (a platform of a multi-platform build: to
/// `DIR/OS_ARCH/`, as BuildKit's local exporter lays out platforms).
pub(super) fn write_sboms(
    a: &BuildArgs,
    docs: &[SbomDoc],
    platform: Option<&ocibuild_oci::image::Platform>,
    rep: &Reporter,
) -> Result<()> {
    if docs.is_empty() {
        return Ok(());
    }
    let pname = platform.map(|p| p.to_string());
    let mut dir = sbom_dir(a);
    if let Some(p) = platform {
        dir.push(platform_dir(p));
    }
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating --sbom-dir {}", dir.display()))?;
    for d in docs {
        let path = dir.join(d.file);
        super::write_file_atomically(&path, &d.bytes)?;
        rep.event(
            &format!("wrote the SBOM {}", path.display()),
            json!({"event": "sbom", "path": path.display().to_string(), "artifactType": d.artifact_type, "platform": pname}),
        );
    }
    Ok(())
}

/// The SBOM of an image a build made: from the build's record (the bases' Debian locks, the
/// app's lockfiles read from `context`, each layer's origin) over what the catalogers find in the
/// layers; without a record of this image, from the layers alone.
pub(super) fn catalog_built(
    g: &Global,
    src: &dyn ImageSource,
    name: &str,
    record: Option<&ocibuild_record::BuildRecord>,
    context: &Path,
) -> Result<ocibuild_sbom::Sbom> {
    let image = ocibuild_oci::image::load_image(src, None)?;
    let known = record.and_then(|r| {
        r.images
            .iter()
            .find(|i| i.manifest.digest == image.manifest_desc.digest)
    });
    Ok(match known {
        Some(pi) => {
            let pi = inherit_base_locks(g, pi);
            let facts = ocibuild_sbom::BuildFacts::from_context(&pi, context);
            ocibuild_sbom::catalog_build(src, &image, name, &facts)?
        }
        None => ocibuild_sbom::catalog_image(src, &image, name)?,
    })
}

/// A base of the image that this store built (a Dockerfile `FROM` of an ocibuild image) has a
/// build record of its own: the Debian packages its record places in it (its runtime base's
/// lock) are this base's packages too. A base with several Debian sets is left as it is.
pub(super) fn inherit_base_locks(
    g: &Global,
    pi: &ocibuild_record::PlatformImage,
) -> ocibuild_record::PlatformImage {
    let mut pi = pi.clone();
    for b in pi
        .bases
        .iter_mut()
        .filter(|b| b.in_image && b.debian.is_none())
    {
        let Some(d) = b.digest.clone() else { continue };
        let Some(rec) = stored_record_of(g, &[&d]) else {
            continue;
        };
        let Some(img) = rec.images.iter().find(|i| i.manifest.digest == d) else {
            continue;
        };
        let sets: Vec<&ocibuild_record::DebianSet> = img
            .bases
            .iter()
            .filter(|x| x.in_image)
            .filter_map(|x| x.debian.as_ref())
            .collect();
        if let [one] = sets.as_slice() {
            b.debian = Some((*one).clone());
        }
    }
    pi
}

/// The build record this store keeps for `image` (`ROOT/engine/builds/`), if this store built
/// it: `ocibuild sbom` of a stored build catalogues from it as `build --sbom` does. Never creates
/// the store; a record that cannot be read is warned about and left out.
pub(super) fn stored_record(g: &Global, image: &Image) -> Option<ocibuild_record::BuildRecord> {
    let mut digests = vec![&image.manifest_desc.digest];
    if let Some((d, _, _)) = &image.index {
        digests.push(&d.digest);
    }
    stored_record_of(g, &digests)
}

/// The first build record this store keeps for one of `digests`.
fn stored_record_of(
    g: &Global,
    digests: &[&ocibuild_oci::Digest],
) -> Option<ocibuild_record::BuildRecord> {
    let root = match &g.root {
        Some(r) => r.clone(),
        None => ocibuild_oci::store::ContentStore::default_root()?,
    };
    if !root.join("engine").join("builds").is_dir() {
        return None;
    }
    let store = ocibuild_oci::store::ContentStore::open(&root).ok()?;
    for d in digests.iter().copied() {
        match ocibuild_engine::load_record(&store, d) {
            Ok(Some(r)) => return Some(r),
            Ok(None) => {}
            Err(e) => {
                eprintln!(
                    "warning: {e:#}; the SBOM is catalogued from the image's layers alone (rebuild the \
                     image to write a new record)"
                );
                return None;
            }
        }
    }
    None
}

fn pretty(v: &serde_json::Value) -> Result<Vec<u8>> {
    let mut b = serde_json::to_vec_pretty(v)?;
    b.push(b'\n');
    Ok(b)
}

/// `FILE` with `.PLATFORM` before its extension (`report.json` → `report.linux_arm64.json`).
fn platform_file(f: &Path, platform: &str) -> PathBuf {
    let stem = f
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match f.extension() {
        Some(e) => format!("{stem}.{platform}.{}", e.to_string_lossy()),
        None => format!("{stem}.{platform}"),
    };
    f.with_file_name(name)
}

/// `--sbom-dir`, else the directory of `--metadata-file`, else the working directory.
fn sbom_dir(a: &BuildArgs) -> PathBuf {
    if let Some(d) = &a.sbom_dir {
        return d.clone();
    }
    a.metadata_file
        .as_ref()
        .and_then(|m| m.parent())
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), |p| p.to_path_buf())
}

/// After an output was written: attach the SBOM documents to the image there (layouts and
/// registries; archives cannot hold referrers and are left as they are).
pub(super) fn attach(
    reg: Option<&Registry>,
    dest: &Location,
    image: &Image,
    docs: &[SbomDoc],
    cosign: bool,
    rep: &Reporter,
) -> Result<()> {
    if docs.is_empty() {
        return Ok(());
    }
    let target = match (dest, reg) {
        (Location::Layout { dir, .. }, _) => Target::layout(dir),
        (Location::Registry(r), Some(reg)) => {
            Target::registry(reg, r.api_registry(), &r.repository)
        }
        _ => return Ok(()),
    };
    let subject = Descriptor::new(
        image.manifest_desc.media_type.clone(),
        image.manifest_desc.digest.clone(),
        image.manifest_desc.size,
    );
    for d in docs {
        let what = || format!("attaching {} to {}", d.file, target.describe());
        let digest = target.put_blob(&d.bytes).with_context(what)?;
        target.put_blob(EMPTY_JSON).with_context(what)?;
        let layer = Descriptor::new(d.artifact_type, digest, d.bytes.len() as u64);
        let m = artifact_manifest(
            d.artifact_type,
            vec![layer],
            Some(subject.clone()),
            BTreeMap::new(),
        );
        let bytes = to_json_bytes(&m, "the SBOM artifact manifest")?;
        let md = target
            .attach(
                &subject.digest,
                &bytes,
                media::OCI_MANIFEST,
                Some(d.artifact_type),
            )
            .with_context(what)?;
        rep.event(
            &format!("attached {} to {dest} ({md})", d.file),
            json!({"event": "sbom-attached", "location": dest.to_string(), "artifactType": d.artifact_type, "digest": md.to_string()}),
        );
    }
    if cosign {
        // cosign's tag form: one manifest tagged `sha256-<hex>.sbom` with a layer per document
        // (its blobs were stored above), as `cosign attach sbom` writes it.
        let layers = docs
            .iter()
            .map(|d| Descriptor::of_bytes(d.cosign_media_type, &d.bytes))
            .collect();
        let m = ocibuild_oci::image::Manifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.into()),
            artifact_type: None,
            config: Descriptor::of_bytes(media::OCI_EMPTY, EMPTY_JSON),
            layers,
            subject: None,
            annotations: BTreeMap::new(),
        };
        let bytes = to_json_bytes(&m, "the cosign SBOM manifest")?;
        let tag = ocibuild_oci::artifact::cosign_tag(&subject.digest, "sbom");
        target
            .put_manifest(Some(&tag), &bytes, media::OCI_MANIFEST)
            .with_context(|| format!("tagging {tag} in {}", target.describe()))?;
        rep.event(
            &format!("attached the SBOM to {dest} as {tag} (cosign's tag form)"),
            json!({"event": "sbom-attached", "location": dest.to_string(), "tag": tag}),
        );
    }
    Ok(())
}
