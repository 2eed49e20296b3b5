//! Images in registries as `ImageSource`s, and pushing any `ImageSource` (a layout, an archive,
//! the content store, another registry) to a registry: blobs in parallel (bounded), skipped when
//! present, mounted across repositories on the same registry, then manifests, then tags.

use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use ocibuild_oci::image::{Descriptor, ImageSource};
use ocibuild_oci::reference::Reference;
use ocibuild_oci::{Digest, OciError, media};

use crate::client::{BlobOutcome, Registry};
use crate::error::{RegistryError, Result};

fn to_oci(e: RegistryError) -> OciError {
    OciError::Stream {
        what: "registry".into(),
        source: io::Error::other(e.to_string()),
    }
}

/// An image in a registry, read without pulling layers until they are asked for.
pub struct RegistrySource<'a> {
    reg: &'a Registry,
    reference: Reference,
    /// The host actually serving the image: a mirror, or the registry itself.
    served_by: String,
    root: Descriptor,
    manifests: Mutex<HashMap<Digest, Vec<u8>>>,
}

impl<'a> RegistrySource<'a> {
    /// Resolve the tag (or digest) to its manifest or index, through the configured mirrors
    /// first; an exclusive mirror never falls back to the registry itself.
    pub fn open(reg: &'a Registry, reference: &Reference) -> Result<Self> {
        let r = reference
            .digest
            .as_ref()
            .map(|d| d.to_string())
            .unwrap_or_else(|| reference.tag_or_latest().to_string());
        let (mirrors, exclusive) = reg.mirrors_for(&reference.registry);
        let mut hosts: Vec<String> = mirrors.clone();
        if !exclusive || mirrors.is_empty() {
            hosts.push(reference.api_registry().to_string());
        }
        let mut failures = Vec::new();
        for host in &hosts {
            match reg.get_manifest(host, &reference.repository, &r) {
                Ok((bytes, mt, d)) => {
                    if host != reference.api_registry() {
                        tracing::info!("{} served by mirror {host}", reference);
                    }
                    let root = Descriptor::new(mt, d.clone(), bytes.len() as u64);
                    let mut m = HashMap::new();
                    m.insert(d, bytes);
                    return Ok(Self {
                        reg,
                        reference: reference.clone(),
                        served_by: host.clone(),
                        root,
                        manifests: Mutex::new(m),
                    });
                }
                Err(e) if mirrors.is_empty() => return Err(e),
                Err(e) => failures.push(format!("{host}: {e}")),
            }
        }
        Err(RegistryError::Protocol {
            registry: reference.registry.clone(),
            repository: reference.repository.clone(),
            what: format!(
                "{reference} was not found in {}{}: {}",
                if exclusive {
                    "its exclusive mirror(s) "
                } else {
                    "the mirror(s) or the registry "
                },
                hosts.join(", "),
                failures.join("; ")
            ) + if exclusive {
                " (the mirror is exclusive, so the registry itself was not asked)"
            } else {
                ""
            },
        })
    }

    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    /// The host serving the image (a mirror, or the registry).
    pub fn host(&self) -> &str {
        &self.served_by
    }
}

impl ImageSource for RegistrySource<'_> {
    fn describe(&self) -> String {
        format!("docker://{}", self.reference)
    }
    fn root(&self) -> ocibuild_oci::Result<Descriptor> {
        Ok(self.root.clone())
    }
    fn open_blob(&self, desc: &Descriptor) -> ocibuild_oci::Result<Box<dyn Read + '_>> {
        if let Some(b) = self
            .manifests
            .lock()
            .ok()
            .and_then(|m| m.get(&desc.digest).cloned())
        {
            return Ok(Box::new(io::Cursor::new(b)));
        }
        if media::is_manifest(&desc.media_type) || media::is_index(&desc.media_type) {
            let (bytes, _, _) = self
                .reg
                .get_manifest(
                    self.host(),
                    &self.reference.repository,
                    &desc.digest.to_string(),
                )
                .map_err(to_oci)?;
            if let Ok(mut m) = self.manifests.lock() {
                m.insert(desc.digest.clone(), bytes.clone());
            }
            return Ok(Box::new(io::Cursor::new(bytes)));
        }
        let r = self
            .reg
            .get_blob(self.host(), &self.reference.repository, &desc.digest)
            .map_err(to_oci)?;
        Ok(Box::new(io::BufReader::with_capacity(
            256 * 1024,
            ResumingBlob {
                reg: self.reg,
                host: self.host().to_string(),
                repo: self.reference.repository.clone(),
                desc: desc.clone(),
                offset: 0,
                body: Some(r),
                failures: 0,
            },
        )))
    }
}

/// A blob download that resumes with an HTTP Range request where the connection broke or the
/// body ended early, up to the client's retry budget. The caller still verifies the digest.
struct ResumingBlob<'a> {
    reg: &'a Registry,
    host: String,
    repo: String,
    desc: Descriptor,
    offset: u64,
    body: Option<reqwest::blocking::Response>,
    failures: u32,
}

impl Read for ResumingBlob<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.offset >= self.desc.size && self.desc.size > 0 {
                // Anything beyond the declared size is the verifier's business: pass it on.
                if let Some(b) = self.body.as_mut() {
                    let n = b.read(buf).unwrap_or(0);
                    self.offset += n as u64;
                    return Ok(n);
                }
                return Ok(0);
            }
            let res = match self.body.as_mut() {
                Some(b) => b.read(buf),
                None => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "no body")),
            };
            let why = match res {
                Ok(0) if buf.is_empty() => return Ok(0),
                Ok(0) => format!(
                    "the connection ended after {} of {} bytes",
                    self.offset, self.desc.size
                ),
                Ok(n) => {
                    self.offset += n as u64;
                    return Ok(n);
                }
                Err(e) => format!("{e} after {} of {} bytes", self.offset, self.desc.size),
            };
            self.failures += 1;
            self.body = None;
            if self.failures >= self.reg.retries() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "blob {} from {}/{} was truncated in transit {} times (last: {why}); giving up",
                        self.desc.digest, self.host, self.repo, self.failures
                    ),
                ));
            }
            tracing::info!(
                "blob {} truncated in transit ({why}); resuming",
                self.desc.digest
            );
            let (mut r, ranged) = self
                .reg
                .get_blob_from(&self.host, &self.repo, &self.desc.digest, self.offset)
                .map_err(|e| io::Error::other(e.to_string()))?;
            if !ranged {
                // the registry ignored the range: skip what we already have
                io::copy(&mut (&mut r).take(self.offset), &mut io::sink())?;
            }
            self.body = Some(r);
        }
    }
}

/// What a push did, blob by blob.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct PushReport {
    pub digest: Option<Digest>,
    pub blobs: Vec<(Digest, u64, BlobOutcome)>,
    pub manifests: usize,
    pub tags: Vec<String>,
}

/// One blob done (for progress bars): digest, size, outcome.
pub type Progress<'p> = &'p (dyn Fn(&Digest, u64, BlobOutcome) + Sync);

/// Bytes uploaded so far for one blob: `(digest, done, total)`.
pub use ocibuild_oci::layout::ByteProgress;

/// How to push.
pub struct PushOptions<'a> {
    /// Tags to set (empty: the destination's tag, else its digest, else latest); [`push_tags`]
    /// makes this list from a destination and `--tag`s.
    pub tags: &'a [String],
    /// Blobs in flight.
    pub jobs: usize,
    /// A repository on the same registry to mount blobs from.
    pub mount_from: Option<&'a str>,
    /// Called when a blob is done.
    pub on_blob: Progress<'a>,
    /// Called as bytes go up.
    pub on_bytes: Option<ByteProgress<'a>>,
}

/// The tags to push for a destination written as `dest_text` (`docker://reg/app:42`) plus
/// `--tag`s: the destination's own tag when it was written out, then every `--tag`, without
/// duplicates (`docker://reg/app:42 --tag latest` → `42`, `latest`). Empty when neither: [`push`]
/// then uses the destination's digest, else its tag (`latest` when none was written).
pub fn push_tags(dest_text: &str, dest: &Reference, tags: &[String]) -> Vec<String> {
    let name = dest_text.strip_prefix("docker://").unwrap_or(dest_text);
    let name = name.split('@').next().unwrap_or(name);
    let last = name.rsplit('/').next().unwrap_or(name);
    let explicit = name.contains('/') && last.contains(':');
    let mut out: Vec<String> = Vec::new();
    for t in dest.tag.iter().filter(|_| explicit).chain(tags) {
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    out
}

/// Push everything reachable from `src`'s root to `dest` (repository on a registry), then tag
/// the root with each of `tags` (or `dest`'s tag when `tags` is empty; or only by digest when
/// `dest` has a digest and no tag). Blobs go `jobs` at a time. `mount_from`: a
/// repository on the same registry that may already hold the blobs.
pub fn push(
    reg: &Registry,
    src: &dyn ImageSource,
    dest: &Reference,
    o: &PushOptions<'_>,
) -> Result<PushReport> {
    let (tags, jobs, mount_from, progress, bytes) =
        (o.tags, o.jobs, o.mount_from, o.on_blob, o.on_bytes);
    let host = dest.api_registry();
    let repo = dest.repository.as_str();
    let root = src.root()?;
    // Plan: the blobs, and the manifests (children before parents) that need them.
    let ocibuild_oci::layout::RootGraph { blobs, manifests } =
        ocibuild_oci::layout::walk_root(src)?;

    // Blobs, `jobs` at a time.
    let report = Mutex::new(PushReport::default());
    let next = AtomicUsize::new(0);
    let first_err: Mutex<Option<RegistryError>> = Mutex::new(None);
    let jobs = jobs.clamp(1, 16);
    std::thread::scope(|s| {
        for _ in 0..jobs.min(blobs.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(d) = blobs.get(i) else { break };
                    if first_err.lock().map(|e| e.is_some()).unwrap_or(true) {
                        break;
                    }
                    let res = push_one(reg, src, host, repo, d, mount_from, bytes);
                    match res {
                        Ok(outcome) => {
                            progress(&d.digest, d.size, outcome);
                            if let Ok(mut r) = report.lock() {
                                r.blobs.push((d.digest.clone(), d.size, outcome));
                            }
                        }
                        Err(e) => {
                            if let Ok(mut f) = first_err.lock()
                                && f.is_none()
                            {
                                *f = Some(e);
                            }
                            break;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = first_err.into_inner().ok().flatten() {
        return Err(e);
    }
    let mut report = report.into_inner().unwrap_or_default();
    // Children by digest, the root last under its tags.
    let (root_bytes, children) = match manifests.split_last() {
        Some((last, rest)) => (last.1.clone(), rest),
        None => {
            return Err(RegistryError::Invalid {
                what: src.describe(),
                detail: "nothing to push".into(),
            });
        }
    };
    for (d, bytes) in children {
        reg.put_manifest(host, repo, &d.digest.to_string(), bytes, &d.media_type)?;
        report.manifests += 1;
    }
    let mut refs: Vec<String> = Vec::new();
    for t in tags {
        if !refs.contains(t) {
            refs.push(t.clone());
        }
    }
    if refs.is_empty() {
        refs.push(match (&dest.tag, &dest.digest) {
            (Some(t), _) => t.clone(),
            (None, Some(d)) => d.to_string(),
            (None, None) => "latest".into(),
        });
    }
    for t in &refs {
        reg.put_manifest(host, repo, t, &root_bytes, &root.media_type)?;
    }
    report.manifests += 1;
    report.tags = refs;
    report.digest = Some(root.digest.clone());
    Ok(report)
}

fn push_one(
    reg: &Registry,
    src: &dyn ImageSource,
    host: &str,
    repo: &str,
    d: &Descriptor,
    mount_from: Option<&str>,
    bytes: Option<ByteProgress<'_>>,
) -> Result<BlobOutcome> {
    if reg.blob_exists(host, repo, &d.digest)?.is_some() {
        return Ok(BlobOutcome::Existed);
    }
    // Uploads may be retried or resumed from any offset, so they read a seekable file: the
    // source's own file when it has one (the registry checks the digest when the upload
    // completes), else a verified spool made on first use — never when a mount succeeds.
    let direct = src.blob_file(d);
    let spool: std::sync::OnceLock<std::fs::File> = std::sync::OnceLock::new();
    let spooled = || -> io::Result<std::fs::File> {
        if let Some(f) = spool.get() {
            return f.try_clone();
        }
        let mut f = tempfile::tempfile()?;
        let blob = src.open_blob(d).map_err(io::Error::other)?;
        let mut r = ocibuild_oci::image::VerifyingReader::new(
            blob,
            d,
            format!("blob {} of {}", d.digest, src.describe()),
        );
        io::copy(&mut r, &mut f)?;
        let clone = f.try_clone()?;
        let _ = spool.set(f);
        Ok(clone)
    };
    let open = |offset: u64| -> io::Result<Box<dyn Read + Send>> {
        use std::io::{Seek, SeekFrom};
        let mut f = match &direct {
            Some(p) => std::fs::File::open(p)?,
            None => spooled()?,
        };
        f.seek(SeekFrom::Start(offset))?;
        Ok(Box::new(io::BufReader::with_capacity(256 * 1024, f)))
    };
    reg.put_blob_with_progress(host, repo, d, mount_from, &open, bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tags(dest: &str, extra: &[&str]) -> Vec<String> {
        let r = Reference::parse(dest.trim_start_matches("docker://")).unwrap();
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        push_tags(dest, &r, &extra)
    }

    #[test]
    fn destination_tag_and_every_tag_flag() {
        assert_eq!(
            tags("docker://reg:5000/app:42", &["latest"]),
            ["42", "latest"]
        );
        assert_eq!(
            tags("reg:5000/app:42", &["42", "latest", "42"]),
            ["42", "latest"]
        );
        assert_eq!(
            tags("docker://reg:5000/app", &["7", "latest"]),
            ["7", "latest"]
        );
        assert_eq!(tags("docker://reg:5000/app", &["7"]), ["7"]);
        assert!(tags("docker://reg:5000/app", &[]).is_empty());
        assert_eq!(tags("docker://reg:5000/app:1", &[]), ["1"]);
        let d = format!("docker://reg:5000/app:1@sha256:{}", "a".repeat(64));
        assert_eq!(tags(&d, &["x"]), ["1", "x"]);
    }
}
