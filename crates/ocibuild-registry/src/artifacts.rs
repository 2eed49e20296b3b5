//! Artifacts attached to images — signatures, attestations, SBOMs — in a registry repository or
//! an OCI layout, through one handle: [`Target`].
//!
//! Two forms are understood everywhere:
//! - cosign's tags `sha256-<hex>.sig`, `.att` and `.sbom` next to the image
//!   ([`ocibuild_oci::artifact::cosign_tag`]);
//! - OCI 1.1 referrers: manifests with a `subject`, found through the referrers API or the
//!   `sha256-<hex>` tag-schema fallback index in a registry, and through untagged `index.json`
//!   entries in a layout.
//!
//! "Attach an artifact manifest to subject S" is [`Target::attach`] (push the artifact's blobs
//! first with [`Target::put_blob`]); [`carry`] copies every artifact of an image from one target
//! to another (what `ocibuild copy` and `ocibuild push` do after the image itself).

use std::io::Read;
use std::path::{Path, PathBuf};

use ocibuild_oci::artifact::{self as layout_art, COSIGN_SUFFIXES, cosign_tag};
use ocibuild_oci::image::{Descriptor, Index, Manifest, parse_index};
use ocibuild_oci::{Digest, OciError, media};

use crate::client::Registry;
use crate::error::{RegistryError, Result};

/// Artifact blobs (signature payloads, attestations, SBOMs) larger than this are refused.
pub const MAX_ARTIFACT_BLOB: u64 = 256 * 1024 * 1024;

/// A place images and their artifacts live: a registry repository or an OCI layout directory.
pub enum Target<'a> {
    Registry {
        reg: &'a Registry,
        /// The API host (`Reference::api_registry`).
        host: String,
        repo: String,
    },
    Layout {
        dir: PathBuf,
    },
}

impl<'a> Target<'a> {
    pub fn registry(reg: &'a Registry, host: &str, repo: &str) -> Self {
        Target::Registry {
            reg,
            host: host.to_string(),
            repo: repo.to_string(),
        }
    }

    pub fn layout(dir: &Path) -> Self {
        Target::Layout {
            dir: dir.to_path_buf(),
        }
    }

    /// `docker://host/repo` or `oci:DIR`, for messages.
    pub fn describe(&self) -> String {
        match self {
            Target::Registry { host, repo, .. } => format!("docker://{host}/{repo}"),
            Target::Layout { dir } => format!("oci:{}", dir.display()),
        }
    }

    /// The manifest (or index) a tag names: `(bytes, descriptor)`, `None` when the tag does not
    /// exist.
    pub fn get_tag(&self, tag: &str) -> Result<Option<(Vec<u8>, Descriptor)>> {
        match self {
            Target::Registry { reg, host, repo } => match reg.get_manifest(host, repo, tag) {
                Ok((bytes, mt, d)) => {
                    let desc = Descriptor::new(mt, d, bytes.len() as u64);
                    Ok(Some((bytes, desc)))
                }
                Err(RegistryError::Status { status: 404, .. }) => Ok(None),
                Err(e) => Err(e),
            },
            Target::Layout { dir } => match layout_art::tagged(dir, tag)? {
                Some(mut d) => {
                    let bytes = layout_art::read_blob(dir, &d, MAX_ARTIFACT_BLOB)?;
                    d.annotations.clear();
                    Ok(Some((bytes, d)))
                }
                None => Ok(None),
            },
        }
    }

    /// A manifest by its descriptor, checked against its digest.
    pub fn get_manifest(&self, desc: &Descriptor) -> Result<Vec<u8>> {
        match self {
            Target::Registry { reg, host, repo } => {
                Ok(reg.get_manifest(host, repo, &desc.digest.to_string())?.0)
            }
            Target::Layout { dir } => Ok(layout_art::read_blob(dir, desc, MAX_ARTIFACT_BLOB)?),
        }
    }

    /// A blob (at most [`MAX_ARTIFACT_BLOB`] bytes), checked against its digest and size.
    pub fn get_blob(&self, desc: &Descriptor) -> Result<Vec<u8>> {
        match self {
            Target::Registry { reg, host, repo } => {
                if desc.size > MAX_ARTIFACT_BLOB {
                    return Err(RegistryError::Invalid {
                        what: format!("blob {} in {}", desc.digest, self.describe()),
                        detail: format!(
                            "{} bytes is more than the {MAX_ARTIFACT_BLOB} allowed for an artifact",
                            desc.size
                        ),
                    });
                }
                let r = reg.get_blob(host, repo, &desc.digest)?;
                let mut bytes = Vec::new();
                r.take(MAX_ARTIFACT_BLOB + 1)
                    .read_to_end(&mut bytes)
                    .map_err(|source| RegistryError::Io {
                        what: format!("reading blob {} from {}", desc.digest, self.describe()),
                        source,
                    })?;
                let got = Digest::of_bytes(&bytes);
                if got != desc.digest || bytes.len() as u64 != desc.size {
                    return Err(RegistryError::Oci(OciError::DigestMismatch {
                        what: format!("blob from {}", self.describe()),
                        expected: desc.digest.clone(),
                        actual: got,
                    }));
                }
                Ok(bytes)
            }
            Target::Layout { dir } => Ok(layout_art::read_blob(dir, desc, MAX_ARTIFACT_BLOB)?),
        }
    }

    /// Store a blob (skipped when present).
    pub fn put_blob(&self, bytes: &[u8]) -> Result<Digest> {
        match self {
            Target::Registry { reg, host, repo } => {
                let desc = Descriptor::of_bytes("application/octet-stream", bytes);
                let owned = bytes.to_vec();
                reg.put_blob(host, repo, &desc, None, &|off| {
                    let start = (off as usize).min(owned.len());
                    Ok(Box::new(std::io::Cursor::new(owned[start..].to_vec())))
                })?;
                Ok(desc.digest)
            }
            Target::Layout { dir } => Ok(layout_art::write_blob(dir, bytes)?),
        }
    }

    /// Store a manifest under a tag (its blobs must be there), or by digest only (`None`).
    pub fn put_manifest(
        &self,
        tag: Option<&str>,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<Descriptor> {
        match self {
            Target::Registry { reg, host, repo } => {
                let desc = Descriptor::of_bytes(media_type, bytes);
                let reference = tag
                    .map(str::to_string)
                    .unwrap_or_else(|| desc.digest.to_string());
                reg.put_manifest(host, repo, &reference, bytes, media_type)?;
                Ok(desc)
            }
            Target::Layout { dir } => {
                let artifact_type = serde_json::from_slice::<Manifest>(bytes)
                    .ok()
                    .and_then(|m| m.artifact_type);
                let mut d = layout_art::put_manifest(
                    dir,
                    tag,
                    bytes,
                    media_type,
                    artifact_type.as_deref(),
                )?;
                d.annotations.clear();
                Ok(d)
            }
        }
    }

    /// The referrers of `subject` (the referrers API, its tag-schema fallback, or the layout's
    /// untagged entries).
    pub fn referrers(&self, subject: &Digest) -> Result<Index> {
        match self {
            Target::Registry { reg, host, repo } => Ok(reg.referrers(host, repo, subject)?.0),
            Target::Layout { dir } => Ok(layout_art::referrers(dir, subject)?),
        }
    }

    /// Attach an artifact manifest (with `subject` set; its blobs already stored) to `subject`
    /// as an OCI 1.1 referrer. Returns the manifest's digest.
    pub fn attach(
        &self,
        subject: &Digest,
        manifest: &[u8],
        media_type: &str,
        artifact_type: Option<&str>,
    ) -> Result<Digest> {
        match self {
            Target::Registry { reg, host, repo } => {
                reg.push_referrer(host, repo, subject, manifest, media_type, artifact_type)
            }
            Target::Layout { dir } => {
                Ok(layout_art::attach(dir, subject, manifest, media_type, artifact_type)?.digest)
            }
        }
    }

    /// Resolve a tag (or a digest string) to the manifest or index it names.
    pub fn resolve(&self, reference: &str) -> Result<(Vec<u8>, Descriptor)> {
        if let Ok(d) = Digest::parse(reference) {
            let desc = match self {
                Target::Layout { dir } => layout_art::read_index(dir)?
                    .manifests
                    .into_iter()
                    .find(|m| m.digest == d)
                    .ok_or_else(|| {
                        RegistryError::Oci(OciError::BlobMissing {
                            digest: d.clone(),
                            location: self.describe(),
                        })
                    })?,
                Target::Registry { reg, host, repo } => {
                    let (bytes, mt, d) = reg.get_manifest(host, repo, reference)?;
                    return Ok((bytes.clone(), Descriptor::new(mt, d, bytes.len() as u64)));
                }
            };
            let bytes = self.get_manifest(&desc)?;
            return Ok((bytes, desc));
        }
        self.get_tag(reference)?
            .ok_or_else(|| RegistryError::Invalid {
                what: format!("{}:{reference}", self.describe()),
                detail: "no such tag".into(),
            })
    }
}

/// What [`carry`] copied.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct CarryReport {
    /// Cosign tags copied (`sha256-<hex>.sig`, …).
    pub tags: Vec<String>,
    /// Referrer manifests copied.
    pub referrers: Vec<Digest>,
}

/// Copy one manifest's blobs from `src` to `dest`; then the manifest itself.
fn copy_manifest(
    src: &Target<'_>,
    dest: &Target<'_>,
    bytes: &[u8],
    desc: &Descriptor,
    tag: Option<&str>,
) -> Result<()> {
    let m: Manifest = serde_json::from_slice(bytes).map_err(|e| RegistryError::Invalid {
        what: format!("artifact manifest {} in {}", desc.digest, src.describe()),
        detail: format!("not an image manifest: {e}"),
    })?;
    for b in std::iter::once(&m.config).chain(m.layers.iter()) {
        let blob = src.get_blob(b)?;
        dest.put_blob(&blob)?;
    }
    dest.put_manifest(tag, bytes, &desc.media_type)?;
    Ok(())
}

/// The manifests an image consists of: the root, and for an index each of its manifests.
fn subjects(src: &Target<'_>, root: &Descriptor, root_bytes: &[u8]) -> Vec<Digest> {
    let mut out = vec![root.digest.clone()];
    if media::is_index(&root.media_type)
        && let Ok(idx) = parse_index(root_bytes, root, &src.describe())
    {
        out.extend(idx.manifests.into_iter().map(|m| m.digest));
    }
    out
}

/// Copy every artifact of the image `root` (its bytes `root_bytes`) — the cosign tags `.sig`,
/// `.att`, `.sbom` and every OCI 1.1 referrer, of the root and of each manifest of an index —
/// from `src` to `dest`. The image itself must already be at `dest`.
pub fn carry(
    src: &Target<'_>,
    dest: &Target<'_>,
    root: &Descriptor,
    root_bytes: &[u8],
) -> Result<CarryReport> {
    let mut report = CarryReport::default();
    for subject in subjects(src, root, root_bytes) {
        for suffix in COSIGN_SUFFIXES {
            let tag = cosign_tag(&subject, suffix);
            if let Some((bytes, desc)) = src.get_tag(&tag)? {
                copy_manifest(src, dest, &bytes, &desc, Some(&tag))?;
                report.tags.push(tag);
            }
        }
        let refs = match src.referrers(&subject) {
            Ok(r) => r,
            // a registry that refuses the referrers API and has no fallback tag has none
            Err(RegistryError::Status {
                status: 400 | 405, ..
            }) => Index::new(),
            Err(e) => return Err(e),
        };
        for r in refs.manifests {
            if !media::is_manifest(&r.media_type) {
                continue;
            }
            let bytes = src.get_manifest(&r)?;
            let m: Manifest =
                serde_json::from_slice(&bytes).map_err(|e| RegistryError::Invalid {
                    what: format!("referrer {} in {}", r.digest, src.describe()),
                    detail: format!("not an image manifest: {e}"),
                })?;
            for b in std::iter::once(&m.config).chain(m.layers.iter()) {
                let blob = src.get_blob(b)?;
                dest.put_blob(&blob)?;
            }
            let at = m.artifact_type.clone().or(r.artifact_type.clone());
            dest.attach(&subject, &bytes, &r.media_type, at.as_deref())?;
            report.referrers.push(r.digest);
        }
    }
    Ok(report)
}
