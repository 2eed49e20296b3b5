//! # ocibuild-release — what a build does with what it built
//!
//! [`release`] takes the engine's [`BuildOutcome`] (one image, or a multi-platform index of
//! one image per platform: the same path) and one [`ReleaseOptions`], and runs, in one order:
//!
//! 1. **Gates**, on every platform's image: the policy checks ([`CheckGate`]: `--check`,
//!    `--policy`, its structure tests and size limits) on each platform, then the vulnerability
//!    gate ([`ScanGate`]) on each platform's catalogued packages. A failure is
//!    [`ReleaseError::GateFailed`] and nothing at all was written.
//! 2. **SBOMs and attestations**: each platform's SBOM documents are written to their directory
//!    (`DIR/OS_ARCH/` for a platform of an index, as BuildKit's local exporter lays them out);
//!    with [`Signing`], the SLSA provenance is made (and written to its file) and each
//!    platform's SBOM becomes an attestation of its own manifest.
//! 3. **Outputs**, each in turn: the image or index is written or pushed, its SBOMs are attached
//!    (each to its platform's manifest), then it is signed there (the root and each platform's
//!    manifest) and the attestations attached — as `docker buildx build --push` followed by
//!    `cosign attach sbom`/`cosign sign`/`cosign attest`.
//!
//! What comes after (the build record in the store, `--iidfile`, `--metadata-file`) is the
//! caller's. Progress is reported through the engine's [`Event`]s, so the one renderer draws it
//! for both frontends; the library never prints.
//!
//! A crate of its own, not a part of the engine: the engine builds, and must not carry the
//! signing keys and certificate code, the vulnerability database, the catalogers and the policy
//! checks that only this last part of a build needs (nor be rebuilt when they change).

mod error;
pub mod provenance;
pub mod sbom;
pub mod signing;

use std::path::PathBuf;

use ocibuild_engine::{BuildOutcome, Event};
use ocibuild_oci::image::{Descriptor, Image, Platform};
use ocibuild_oci::layout::{StoreSource, write_layout_root, write_oci_archive_root};
use ocibuild_oci::reference::Location;
use ocibuild_oci::store::ContentStore;
use ocibuild_registry::client::{BlobOutcome, Registry};
use ocibuild_registry::copy::{PushOptions, push};

pub use error::ReleaseError;
pub use sbom::SbomDoc;
pub use signing::{ProvenanceSpec, Signing};

/// Events go here.
pub type Events<'a> = &'a (dyn Fn(Event) + Sync);

/// The policy gate: the policy (the default one for `--check`), its structure-test suite, and
/// the file it came from (named in the failure).
pub struct CheckGate {
    pub policy: ocibuild_policy::Policy,
    pub suite: Option<ocibuild_policy::cst::Suite>,
    pub file: Option<PathBuf>,
}

/// The vulnerability gate. Its database, thresholds, suppressions and report formats are the
/// `scan` command's; it is handed each platform's catalogued packages.
pub trait ScanGate {
    /// Scan `packages` (of `platform`'s image, in a multi-platform build) and say whether
    /// findings count: `Ok(true)` fails the gate.
    fn scan(
        &self,
        packages: &[ocibuild_scan::Package],
        platform: Option<&Platform>,
    ) -> Result<bool, Box<dyn std::error::Error + Send + Sync>>;
}

/// What `--sbom` asks for.
#[derive(Clone, Debug, Default)]
pub struct SbomOptions {
    pub cyclonedx: bool,
    pub spdx: bool,
    /// Where the documents are written (a platform's go to `DIR/OS_ARCH/`).
    pub dir: PathBuf,
    /// Also cosign's `sha256-<hex>.sbom` tag form in each output.
    pub cosign_tag: bool,
}

/// Everything [`release`] does, from the command line's flags.
pub struct ReleaseOptions<'a> {
    /// Every destination, in order (`--output`s, then each `-t` with `--push`).
    pub outputs: Vec<Location>,
    /// The registry client, when an output is a registry.
    pub registry: Option<&'a Registry>,
    /// Blobs in flight per push.
    pub jobs: usize,
    pub check: Option<CheckGate>,
    pub scan: Option<&'a dyn ScanGate>,
    pub sbom: SbomOptions,
    pub signing: Option<Signing<'a>>,
    /// The name SBOMs give the image (the first `-t`; else the image is described).
    pub name: Option<String>,
    /// The build context: the lockfiles the build record names are read from it.
    pub context: PathBuf,
}

/// What [`release`] did.
#[derive(Debug)]
pub struct Released {
    /// The digest every output got: the index's, or the one image's.
    pub root: Descriptor,
    /// Where it was written.
    pub outputs: Vec<Location>,
}

/// Gate, document, sign and write what the build made, in the crate's order.
pub fn release(
    store: &ContentStore,
    out: &BuildOutcome,
    o: &ReleaseOptions<'_>,
    events: Events<'_>,
) -> Result<Released, ReleaseError> {
    let images = out.images();
    let Some((_, first)) = images.first() else {
        return Err(ReleaseError::NoImage);
    };
    let root: Descriptor = out
        .index
        .clone()
        .unwrap_or_else(|| first.manifest_desc.clone());
    let multi = out.index.is_some();
    let record = &out.record;

    // 1. the gates, on every platform, before anything is written
    let built: Vec<(Option<&Platform>, &Image, StoreSource)> = images
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
    if let Some(c) = &o.check {
        for (_, img, src) in &built {
            check(c, src, img, events)?;
        }
    }
    let mut sboms: Vec<Vec<SbomDoc>> = Vec::new();
    for (p, _, src) in &built {
        sboms.push(sbom::catalog_and_scan(store, o, src, record, *p, events)?);
    }

    // 2. the SBOM files, and what the signing attests
    for ((p, _, _), docs) in built.iter().zip(&sboms) {
        sbom::write(&o.sbom.dir, docs, *p, events)?;
    }
    let attestations = match &o.signing {
        Some(s) => {
            let subjects: Vec<(&Descriptor, Option<&Platform>, &[SbomDoc])> = built
                .iter()
                .zip(&sboms)
                .map(|((p, img, _), docs)| (&img.manifest_desc, *p, docs.as_slice()))
                .collect();
            s.attestations(record, &subjects, events)?
        }
        None => Vec::new(),
    };

    // 3. every output: written or pushed, its SBOMs attached, then signed there
    let src = StoreSource::new(
        store.clone(),
        root.clone(),
        if multi {
            format!("the built index {}", root.digest)
        } else {
            format!("the built image {}", root.digest)
        },
    );
    let platforms: Vec<String> = if multi {
        images.iter().map(|(p, _)| p.to_string()).collect()
    } else {
        Vec::new()
    };
    for d in &o.outputs {
        write_one(o, &src, first, multi, d, events)?;
        events(Event::Output {
            location: d.to_string(),
            digest: root.digest.to_string(),
            platforms: platforms.clone(),
        });
        for ((_, img), docs) in images.iter().zip(&sboms) {
            sbom::attach(o.registry, d, img, docs, o.sbom.cosign_tag, events)?;
        }
        if let Some(s) = &o.signing {
            let manifests: Vec<Descriptor> = if multi {
                images
                    .iter()
                    .map(|(_, i)| i.manifest_desc.clone())
                    .collect()
            } else {
                Vec::new()
            };
            s.apply(o.registry, d, &root, &manifests, &attestations, events)?;
        }
    }
    if o.outputs.is_empty() {
        events(Event::NoOutput {
            what: if multi { "index" } else { "image" }.to_string(),
        });
    }
    Ok(Released {
        root,
        outputs: o.outputs.clone(),
    })
}

/// Write (or push) the image or index to one destination.
fn write_one(
    o: &ReleaseOptions<'_>,
    src: &StoreSource,
    first: &Image,
    multi: bool,
    d: &Location,
    events: Events<'_>,
) -> Result<(), ReleaseError> {
    let written = |source| ReleaseError::Write {
        what: format!("writing {d}"),
        source,
    };
    match d {
        Location::Registry(r) => {
            let Some(reg) = o.registry else {
                return Err(ReleaseError::NoRegistry {
                    location: d.to_string(),
                });
            };
            let on_blob = |digest: &ocibuild_oci::Digest, size: u64, outcome: BlobOutcome| {
                events(Event::Blob {
                    digest: digest.to_string(),
                    size,
                    outcome: match outcome {
                        BlobOutcome::Existed => "existed",
                        BlobOutcome::Mounted => "mounted",
                        BlobOutcome::Uploaded => "uploaded",
                    }
                    .to_string(),
                })
            };
            let on_bytes = |digest: &ocibuild_oci::Digest, done: u64, total: u64| {
                events(Event::Bytes {
                    digest: digest.clone(),
                    done,
                    total,
                })
            };
            push(
                reg,
                src,
                r,
                &PushOptions {
                    tags: &[],
                    jobs: o.jobs,
                    mount_from: None,
                    on_blob: &on_blob,
                    on_bytes: Some(&on_bytes),
                },
            )
            .map_err(|source| ReleaseError::Push {
                what: format!(
                    "pushing {} to docker://{r}",
                    ocibuild_oci::ImageSource::describe(src)
                ),
                source: Box::new(source),
            })?;
        }
        Location::Layout { dir, tag } if multi => {
            write_layout_root(dir, tag.as_deref(), src).map_err(written)?;
        }
        Location::OciArchive { file, tag } if multi => {
            write_oci_archive_root(file, tag.as_deref(), src).map_err(written)?;
        }
        Location::DockerArchive { .. } | Location::Scratch if multi => {
            return Err(ReleaseError::IndexOutput {
                location: d.to_string(),
            });
        }
        local => ocibuild_oci::layout::write_location(local, src, first).map_err(written)?,
    }
    Ok(())
}

/// The policy gate on one image: the table, an event, and [`ReleaseError::GateFailed`] when a
/// check failed.
fn check(
    c: &CheckGate,
    src: &StoreSource,
    image: &Image,
    events: Events<'_>,
) -> Result<(), ReleaseError> {
    use ocibuild_oci::ImageSource as _;
    let opts = ocibuild_policy::ScanOptions {
        keep: c
            .suite
            .as_ref()
            .map(ocibuild_policy::cst::Suite::content_paths)
            .unwrap_or_default(),
        base_layers: c.policy.base_layers,
    };
    let scanned =
        ocibuild_policy::scan(src, image, &opts).map_err(|source| ReleaseError::Check {
            what: format!("reading the layers of {}", src.describe()),
            source,
        })?;
    let report = ocibuild_policy::check(&scanned, &src.describe(), &c.policy, c.suite.as_ref())
        .map_err(|detail| ReleaseError::Policy { detail })?;
    events(Event::Report(report.table()));
    events(Event::Checked {
        checks: report.checks.len(),
        passed: !report.failed(),
        findings: serde_json::to_value(&report.findings).unwrap_or_default(),
        // as containerd normalises it: arm64's default variant v8 is not named
        platform: image.platform().map(|mut p| {
            if p.architecture == "arm64" && p.variant.as_deref() == Some("v8") {
                p.variant = None;
            }
            p.os_features = None;
            p.to_string()
        }),
        digest: image.manifest_desc.digest.to_string(),
    });
    if report.failed() {
        return Err(ReleaseError::GateFailed(format!(
            "the built image failed its checks (table above); nothing was written or pushed — fix the image or switch a check off with `disable` in {}",
            c.file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "a --policy file".into())
        )));
    }
    Ok(())
}

/// Write `bytes` to `path` through a temporary file beside it.
pub(crate) fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<(), ReleaseError> {
    use std::io::Write as _;
    let io = |what: &str, source| ReleaseError::Io {
        what: what.to_string(),
        path: path.to_path_buf(),
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let mut tmp =
        tempfile::NamedTempFile::new_in(dir).map_err(|e| io("creating a temp file for", e))?;
    tmp.write_all(bytes).map_err(|e| io("writing", e))?;
    tmp.persist(path).map_err(|e| io("writing", e.error))?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Mutex;

    use ocibuild_engine::{FrontendDetail, PlatformBuilt};
    use ocibuild_oci::assemble::{AssembleSpec, LayerInput, assemble};
    use ocibuild_oci::media::Compression;
    use ocibuild_record::{Builder, Frontend};

    use super::*;

    /// An image of `platform` in `store` whose `/app` holds `files`.
    fn image(store: &ContentStore, dir: &std::path::Path, platform: &str, files: &[&str]) -> Image {
        let src = dir.join(platform.replace('/', "_"));
        std::fs::create_dir_all(&src).unwrap();
        for f in files {
            std::fs::write(src.join(f), format!("{platform} {f}\n")).unwrap();
        }
        let spec = AssembleSpec {
            base: None,
            layers: vec![LayerInput::new(&src, "/app")],
            config: Default::default(),
            annotations: Default::default(),
            platform: Some(Platform::parse(platform).unwrap()),
            compression: Compression::Gzip,
            level: None,
            source_date_epoch: 0,
            owner: None,
            keep_modes: false,
            history: None,
        };
        assemble(store, spec).unwrap().image
    }

    /// A build outcome of these images (several: with their index).
    fn outcome(store: &ContentStore, images: Vec<(&str, Image)>) -> BuildOutcome {
        let record = ocibuild_record::BuildRecord::new(
            Builder::ocibuild("test"),
            Frontend::Dockerfile {
                file: "Dockerfile".into(),
                target: None,
                stages: Vec::new(),
            },
        );
        let platforms: Vec<PlatformBuilt> = images
            .into_iter()
            .map(|(p, image)| PlatformBuilt {
                platform: Platform::parse(p).unwrap(),
                image,
                record: record.clone(),
                cached: Vec::new(),
                stopped: Vec::new(),
                detail: FrontendDetail::Dockerfile { stages: Vec::new() },
            })
            .collect();
        let index = (platforms.len() > 1).then(|| {
            let pairs: Vec<(Platform, Image)> = platforms
                .iter()
                .map(|p| (p.platform.clone(), p.image.clone()))
                .collect();
            ocibuild_engine::put_index(store, &pairs).unwrap()
        });
        BuildOutcome {
            platforms,
            index,
            record,
        }
    }

    fn options(dir: &std::path::Path, check: Option<CheckGate>) -> ReleaseOptions<'static> {
        ReleaseOptions {
            outputs: vec![Location::Layout {
                dir: dir.join("out"),
                tag: Some("t".into()),
            }],
            registry: None,
            jobs: 2,
            check,
            scan: None,
            sbom: SbomOptions {
                cyclonedx: true,
                spdx: false,
                dir: dir.join("sbom"),
                cosign_tag: false,
            },
            signing: None,
            name: Some("app:1".into()),
            context: dir.to_path_buf(),
        }
    }

    #[test]
    fn a_gate_failing_on_one_platform_writes_nothing_for_any_platform() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ContentStore::open(tmp.path().join("store")).unwrap();
        let amd = image(&store, tmp.path(), "linux/amd64", &["marker", "app"]);
        let arm = image(&store, tmp.path(), "linux/arm64", &["app"]);
        let out = outcome(&store, vec![("linux/amd64", amd), ("linux/arm64", arm)]);
        let check = CheckGate {
            policy: ocibuild_policy::Policy {
                required_files: vec!["/app/marker".into()],
                // the images have no entrypoint
                disable: vec!["runnable".into()],
                ..Default::default()
            },
            suite: None,
            file: None,
        };
        let seen = Mutex::new(Vec::new());
        let r = release(&store, &out, &options(tmp.path(), Some(check)), &|e| {
            if let Event::Checked {
                passed, platform, ..
            } = e
            {
                seen.lock().unwrap().push((platform, passed));
            }
        });
        assert!(matches!(r, Err(ReleaseError::GateFailed(_))), "{r:?}");
        assert_eq!(
            *seen.lock().unwrap(),
            [
                (Some("linux/amd64".to_string()), true),
                (Some("linux/arm64".to_string()), false)
            ]
        );
        // not even the platform that passed has its SBOM written
        assert!(!tmp.path().join("sbom").exists());
        assert!(!tmp.path().join("out").exists());
    }

    #[test]
    fn one_image_and_an_index_take_the_same_path() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ContentStore::open(tmp.path().join("store")).unwrap();
        let amd = image(&store, tmp.path(), "linux/amd64", &["app"]);
        let arm = image(&store, tmp.path(), "linux/arm64", &["app"]);
        for (images, sboms) in [
            (vec![("linux/amd64", amd.clone())], vec!["sbom.cdx.json"]),
            (
                vec![("linux/amd64", amd), ("linux/arm64", arm)],
                vec!["linux_amd64/sbom.cdx.json", "linux_arm64/sbom.cdx.json"],
            ),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let out = outcome(&store, images);
            let events = Mutex::new(Vec::new());
            let released = release(&store, &out, &options(dir.path(), None), &|e| {
                events.lock().unwrap().push(e)
            })
            .unwrap();
            assert_eq!(Some(&released.root.digest), out.digest());
            for f in &sboms {
                assert!(dir.path().join("sbom").join(f).is_file(), "{f}");
            }
            let idx: serde_json::Value =
                serde_json::from_slice(&std::fs::read(dir.path().join("out/index.json")).unwrap())
                    .unwrap();
            assert_eq!(
                idx["manifests"][0]["digest"],
                released.root.digest.to_string()
            );
            // the output event comes before the SBOMs attached to each platform's manifest
            let kinds: Vec<String> = events
                .lock()
                .unwrap()
                .iter()
                .filter_map(|e| match e {
                    Event::Output { digest, .. } => Some(format!("output {digest}")),
                    Event::SbomAttached { .. } => Some("attached".into()),
                    _ => None,
                })
                .collect();
            let mut want = vec![format!("output {}", released.root.digest)];
            want.extend(sboms.iter().map(|_| "attached".to_string()));
            assert_eq!(kinds, want);
        }
    }
}
