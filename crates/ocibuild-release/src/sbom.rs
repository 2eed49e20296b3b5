//! `--sbom` and the scan gate's catalogue: each built image is catalogued from its build record
//! (which both frontends give) over what the catalogers find in its layers; the documents are
//! written once every gate passed, and attached to every `oci:` and `docker://` output as OCI 1.1
//! referrers (and in cosign's tag form) after the image was written there.

use std::collections::BTreeMap;
use std::path::Path;

use ocibuild_engine::Event;
use ocibuild_oci::artifact::{EMPTY_JSON, artifact_manifest};
use ocibuild_oci::image::{Descriptor, Image, ImageSource, Platform, to_json_bytes};
use ocibuild_oci::media;
use ocibuild_oci::reference::Location;
use ocibuild_oci::store::ContentStore;
use ocibuild_record::BuildRecord;
use ocibuild_registry::artifacts::Target;
use ocibuild_registry::client::Registry;
use serde_json::Value;

use crate::{Events, ReleaseError, ReleaseOptions};

/// One SBOM document of the build: its file name, artifact type and bytes.
#[derive(Clone, Debug)]
pub struct SbomDoc {
    pub file: &'static str,
    pub artifact_type: &'static str,
    /// The layer media type of cosign's `.sbom` tag form (cosign's SBOM specification).
    pub cosign_media_type: &'static str,
    pub bytes: Vec<u8>,
}

/// `linux/arm64` → `linux_arm64`: a platform's directory and file-name part.
pub fn platform_dir(p: &Platform) -> String {
    p.to_string().replace('/', "_")
}

/// Catalogue one built image when `--sbom` or the scan gate asks for it, and run the scan gate.
/// Returns the SBOM documents, in memory.
pub(crate) fn catalog_and_scan(
    store: &ContentStore,
    o: &ReleaseOptions<'_>,
    src: &dyn ImageSource,
    record: &BuildRecord,
    platform: Option<&Platform>,
    events: Events<'_>,
) -> Result<Vec<SbomDoc>, ReleaseError> {
    let (cdx, spdx) = (o.sbom.cyclonedx, o.sbom.spdx);
    if !cdx && !spdx && o.scan.is_none() {
        return Ok(Vec::new());
    }
    let name = o.name.clone().unwrap_or_else(|| src.describe());
    let t0 = std::time::Instant::now();
    let sbom =
        catalog_built(Some(store), src, &name, Some(record), &o.context).map_err(|source| {
            ReleaseError::Catalog {
                what: format!("cataloguing the packages of {}", src.describe()),
                source,
            }
        })?;
    events(Event::SbomCatalogued {
        components: sbom.components.len(),
        seconds: t0.elapsed().as_secs_f64(),
        from_record: true,
    });
    let cdx_doc = ocibuild_sbom::cyclonedx::document(&sbom);
    if let Some(gate) = o.scan {
        let packages =
            ocibuild_scan::from_cyclonedx(&cdx_doc).map_err(|source| ReleaseError::Scan {
                what: "reading the packages catalogued in the built image".into(),
                source: Box::new(source),
            })?;
        let found = gate
            .scan(&packages, platform)
            .map_err(|source| ReleaseError::Scan {
                what: format!("scanning the packages of {}", src.describe()),
                source,
            })?;
        events(Event::Scanned {
            packages: packages.len(),
            passed: !found,
            platform: platform.map(|p| p.to_string()),
        });
        if found {
            let of = platform.map(|p| format!(" for {p}")).unwrap_or_default();
            return Err(ReleaseError::GateFailed(format!(
                "the built image{of} has vulnerabilities at or above the threshold (report above); nothing was \
                 written or pushed — update the packages named (the `action` of each finding), or suppress a \
                 finding that does not apply with --allowlist or --vex"
            )));
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

fn pretty(v: &Value) -> Result<Vec<u8>, ReleaseError> {
    let mut b = serde_json::to_vec_pretty(v).map_err(|source| ReleaseError::Json {
        what: "writing the SBOM document".into(),
        source,
    })?;
    b.push(b'\n');
    Ok(b)
}

/// Write one image's SBOM documents to `dir` (a platform of a multi-platform build: to
/// `dir/OS_ARCH/`, as BuildKit's local exporter lays out platforms).
pub(crate) fn write(
    dir: &Path,
    docs: &[SbomDoc],
    platform: Option<&Platform>,
    events: Events<'_>,
) -> Result<(), ReleaseError> {
    if docs.is_empty() {
        return Ok(());
    }
    let mut dir = dir.to_path_buf();
    if let Some(p) = platform {
        dir.push(platform_dir(p));
    }
    std::fs::create_dir_all(&dir).map_err(|source| ReleaseError::Io {
        what: "creating --sbom-dir".into(),
        path: dir.clone(),
        source,
    })?;
    for d in docs {
        let path = dir.join(d.file);
        crate::write_atomically(&path, &d.bytes)?;
        events(Event::SbomWritten {
            path,
            artifact_type: d.artifact_type.to_string(),
            platform: platform.map(|p| p.to_string()),
        });
    }
    Ok(())
}

/// The SBOM of an image a build made: from the build's record (the bases' Debian locks, the
/// app's lockfiles read from `context`, each layer's origin) over what the catalogers find in the
/// layers; without a record of this image, from the layers alone. `store`: where the records of
/// the image's bases are found ([`inherit_base_locks`]).
pub fn catalog_built(
    store: Option<&ContentStore>,
    src: &dyn ImageSource,
    name: &str,
    record: Option<&BuildRecord>,
    context: &Path,
) -> ocibuild_sbom::Result<ocibuild_sbom::Sbom> {
    let image = ocibuild_oci::image::load_image(src, None)?;
    let known = record.and_then(|r| {
        r.images
            .iter()
            .find(|i| i.manifest.digest == image.manifest_desc.digest)
    });
    match known {
        Some(pi) => {
            let pi = match store {
                Some(s) => inherit_base_locks(s, pi, &|_| {}),
                None => pi.clone(),
            };
            let facts = ocibuild_sbom::BuildFacts::from_context(&pi, context);
            ocibuild_sbom::catalog_build(src, &image, name, &facts)
        }
        None => ocibuild_sbom::catalog_image(src, &image, name),
    }
}

/// A base of the image that this store built (a Dockerfile `FROM` of an ocibuild image) has a
/// build record of its own: the Debian packages its record places in it (its runtime base's
/// lock) are this base's packages too. A base with several Debian sets is left as it is; a
/// record that cannot be read is told to `warn` and left out.
pub fn inherit_base_locks(
    store: &ContentStore,
    pi: &ocibuild_record::PlatformImage,
    warn: &dyn Fn(String),
) -> ocibuild_record::PlatformImage {
    let mut pi = pi.clone();
    for b in pi
        .bases
        .iter_mut()
        .filter(|b| b.in_image && b.debian.is_none())
    {
        let Some(d) = b.digest.clone() else { continue };
        let rec = match ocibuild_engine::load_record(store, &d) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(e) => {
                warn(format!(
                    "{e}; the SBOM is catalogued from the image's layers alone (rebuild the image to write a new record)"
                ));
                continue;
            }
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

/// After an output was written: attach the SBOM documents to the image there (layouts and
/// registries; archives cannot hold referrers and are left as they are).
pub(crate) fn attach(
    reg: Option<&Registry>,
    dest: &Location,
    image: &Image,
    docs: &[SbomDoc],
    cosign: bool,
    events: Events<'_>,
) -> Result<(), ReleaseError> {
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
        let failed = |source| ReleaseError::Attach {
            what: format!("attaching {} to {}", d.file, target.describe()),
            source: Box::new(source),
        };
        let digest = target.put_blob(&d.bytes).map_err(failed)?;
        target.put_blob(EMPTY_JSON).map_err(failed)?;
        let layer = Descriptor::new(d.artifact_type, digest, d.bytes.len() as u64);
        let m = artifact_manifest(
            d.artifact_type,
            vec![layer],
            Some(subject.clone()),
            BTreeMap::new(),
        );
        let bytes = to_json_bytes(&m, "the SBOM artifact manifest").map_err(|source| {
            ReleaseError::Write {
                what: format!("attaching {} to {}", d.file, target.describe()),
                source,
            }
        })?;
        let md = target
            .attach(
                &subject.digest,
                &bytes,
                media::OCI_MANIFEST,
                Some(d.artifact_type),
            )
            .map_err(failed)?;
        events(Event::SbomAttached {
            location: dest.to_string(),
            file: d.file.to_string(),
            artifact_type: Some(d.artifact_type.to_string()),
            digest: Some(md.to_string()),
            tag: None,
        });
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
        let tag = ocibuild_oci::artifact::cosign_tag(&subject.digest, "sbom");
        let bytes = to_json_bytes(&m, "the cosign SBOM manifest").map_err(|source| {
            ReleaseError::Write {
                what: format!("tagging {tag} in {}", target.describe()),
                source,
            }
        })?;
        target
            .put_manifest(Some(&tag), &bytes, media::OCI_MANIFEST)
            .map_err(|source| ReleaseError::Attach {
                what: format!("tagging {tag} in {}", target.describe()),
                source: Box::new(source),
            })?;
        events(Event::SbomAttached {
            location: dest.to_string(),
            file: "sbom".into(),
            artifact_type: None,
            digest: None,
            tag: Some(tag),
        });
    }
    Ok(())
}
