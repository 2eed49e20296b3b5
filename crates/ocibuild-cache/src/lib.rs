//! # ocibuild-cache — where the build cache is shared
//!
//! The engine keys every build step by a hex digest of its inputs and records, per key, a small
//! JSON *index object* (which layer and config blobs the step produced). This crate stores index
//! objects and blobs in a shared place so that another runner can reuse them: a local directory,
//! Azure Blob Storage, or an OCI registry, named as docker's `--cache-to` / `--cache-from` name
//! them ([`CacheSpec`]). The API is synchronous; Azure runs on a private current-thread tokio
//! runtime and the registry on `ocibuild-registry`'s blocking client.
//!
//! Guarantees, for every backend:
//!
//! - **Content-addressed blobs, verified on the way in.** [`CacheBackend::fetch_blob`] streams a
//!   blob into the local [`ContentStore`] through a hasher and commits it only when it hashes to
//!   the requested digest. A blob that is missing is [`Fetch::Missing`], one that does not hash
//!   to its name is [`Fetch::Corrupt`]: a miss (the step is rebuilt), never an error, and never a
//!   bad blob in the store. Blobs are also verified before they are uploaded.
//! - **Index objects are created, never overwritten.** [`CacheBackend::put_index`] is a
//!   conditional create (`If-None-Match: *`, `link(2)`); the second writer of a key gets
//!   [`PutOutcome::AlreadyExists`] and the first object stays. Two runners writing the same keys
//!   and blobs at once both succeed.
//! - **No secret in logs or errors.** [`CacheBackend::describe`], [`CacheSpec`]'s `Display` and
//!   every [`CacheError`] are built from redacted values.
//!
//! ## Layouts
//!
//! ```text
//! local    DIR/blobs/sha256/<hex>              a blob
//!          DIR/index/<key>.json                an index object
//!          DIR/tmp/                            files being written (same filesystem, then link/rename)
//!
//! azblob   <container>/<name>/blobs/sha256/<hex>
//!          <container>/<name>/index/<key>.json
//!          <container>/<name>/uploads/<hex>.<random>   large blobs being uploaded (block lists),
//!                                                      then copied into place with If-None-Match
//!
//! registry REPO blobs                          every cache blob is a blob of the ref's repository
//!          REPO:<tag>-<key[..32]>              one OCI artifact manifest per index object:
//!                                              artifactType application/vnd.ocibuild.cache.v1+json,
//!                                              config = the empty descriptor ({}),
//!                                              layers[0] = the index JSON
//!                                                (application/vnd.ocibuild.cache.index.v1+json),
//!                                              layers[1..] = the blobs the index names that the
//!                                                repository holds (so registry GC keeps them),
//!                                              annotation org.ocibuild.cache.key = the full key
//! ```
//!
//! Registries have no `If-None-Match` for manifests: the registry backend checks the tag first
//! and then pushes, so two runners racing on one key may both push; the last tag wins. Both
//! index objects describe the same step with the same inputs and name blobs that are verified on
//! fetch, so the race costs at most a rebuild, never a wrong image.
//!
//! Credentials for Azure are resolved as [`azure`] describes.
//!
//! May depend on: `ocibuild-oci`, `ocibuild-registry`, object_store, tokio (private runtime),
//! reqwest. Must never: print, hold a secret in an error or a log line, or put a blob into the
//! content store that does not hash to its name.

pub mod azure;
pub mod error;
pub mod local;
pub mod registry;
pub mod spec;

use std::io::{self, Read, Write};

use ocibuild_oci::store::ContentStore;
use ocibuild_oci::{Digest, OciError};

pub use error::CacheError;
pub use spec::{AzblobSpec, Backend, CacheSpec, INLINE_LABEL, INLINE_TAG, Mode, Secret};

/// Index objects larger than this are refused on write and treated as a miss on read.
pub const MAX_INDEX_BYTES: u64 = 4 * 1024 * 1024;

/// The result of a conditional create.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutOutcome {
    /// The object did not exist and now holds our bytes.
    Created,
    /// Someone else created it first; it was left as it was.
    AlreadyExists,
}

/// The result of fetching a blob into the local content store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fetch {
    /// Downloaded and verified: `bytes` long.
    Fetched { bytes: u64 },
    /// The content store had it already; nothing was downloaded.
    Present,
    /// The cache does not have it (a miss).
    Missing,
    /// The cache's copy does not hash to its name (a miss; nothing entered the store).
    Corrupt { why: String },
}

/// A place where build-cache index objects and blobs are shared.
pub trait CacheBackend: Send + Sync {
    /// What and where, for logs: never contains a key, token or password.
    fn describe(&self) -> String;

    /// The index object named by a hex cache key, if the cache has one.
    fn get_index(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError>;

    /// Create the index object for `key` unless one exists (conditional create): never
    /// overwrites.
    fn put_index(&self, key: &str, bytes: &[u8]) -> Result<PutOutcome, CacheError>;

    /// Whether the cache holds the blob.
    fn has_blob(&self, d: &Digest) -> Result<bool, CacheError>;

    /// Download into the local content store, verifying the digest while streaming. A missing
    /// or corrupt remote blob is `Ok(Fetch::Missing / Fetch::Corrupt{why})`: a miss, never an
    /// error and never a bad blob in the store.
    fn fetch_blob(&self, d: &Digest, store: &ContentStore) -> Result<Fetch, CacheError>;

    /// Upload from the content store unless the cache has it (conditional create: concurrent
    /// writers of the same digest both succeed). A blob this backend found corrupt, or whose
    /// stored size differs, is replaced by the verified local copy.
    fn push_blob(&self, d: &Digest, store: &ContentStore) -> Result<(), CacheError>;
}

/// Open the backend a spec names. `registry` is the build's registry client (its auth, mirrors
/// and TLS settings); without one, a client with default options (docker's config and
/// credential helpers) is made for `type=registry`.
pub fn open<'a>(
    spec: &CacheSpec,
    registry: Option<&'a ocibuild_registry::client::Registry>,
) -> Result<Box<dyn CacheBackend + 'a>, CacheError> {
    match &spec.backend {
        Backend::Local { dir } => Ok(Box::new(local::LocalCache::open(dir, spec.for_export)?)),
        Backend::Azblob(a) => Ok(Box::new(azure::AzureCache::open(
            a,
            spec.for_export,
            &azure::process_env,
        )?)),
        Backend::Registry { reference } => {
            Ok(Box::new(registry::RegistryCache::new(reference, registry)))
        }
        Backend::Inline => Err(CacheError::Spec {
            input: spec.to_string(),
            why: "an inline cache is written beside a pushed image: build with --push and -t NAME:TAG (it is then exported as type=registry,ref=NAME:buildcache-inline)".into(),
        }),
    }
}

/// Check that a cache key is 1–128 lower-case hex digits.
pub fn check_key(key: &str) -> Result<(), CacheError> {
    if key.is_empty() || key.len() > 128 {
        return Err(CacheError::InvalidKey {
            key: key.chars().take(140).collect(),
            why: format!("a key has 1 to 128 hex digits, this one has {}", key.len()),
        });
    }
    if !key
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(CacheError::InvalidKey {
            key: key.to_string(),
            why: "keys are lower-case hex digits (0-9, a-f)".into(),
        });
    }
    Ok(())
}

pub(crate) fn check_index_size(key: &str, bytes: &[u8]) -> Result<(), CacheError> {
    if bytes.len() as u64 > MAX_INDEX_BYTES {
        return Err(CacheError::IndexTooLarge {
            key: key.to_string(),
            size: bytes.len() as u64,
            max: MAX_INDEX_BYTES,
        });
    }
    Ok(())
}

/// Streams a remote blob into the content store: a writer whose `finish` verifies and commits.
pub(crate) struct Incoming {
    w: ocibuild_oci::store::BlobWriter,
    digest: Digest,
    what: String,
}

impl Incoming {
    pub(crate) fn new(store: &ContentStore, d: &Digest, what: String) -> Result<Self, CacheError> {
        Ok(Incoming {
            w: store.writer()?,
            digest: d.clone(),
            what,
        })
    }

    pub(crate) fn write(&mut self, chunk: &[u8]) -> Result<(), CacheError> {
        self.w.write_all(chunk).map_err(|e| {
            CacheError::Store(OciError::Stream {
                what: format!("writing {} into the content store", self.what),
                source: e,
            })
        })
    }

    /// Copy everything `r` yields. Read errors are the remote's: returned as `Err(io)`.
    pub(crate) fn copy_from(
        &mut self,
        r: &mut dyn Read,
    ) -> Result<Result<(), io::Error>, CacheError> {
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) => return Ok(Ok(())),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Ok(Err(e)),
            };
            self.write(&buf[..n])?;
        }
    }

    /// Commit when the bytes hash to the digest; otherwise discard them and say why.
    pub(crate) fn finish(self) -> Result<Fetch, CacheError> {
        let n = self.w.count();
        match self.w.commit_expecting(&self.digest, &self.what) {
            Ok(()) => Ok(Fetch::Fetched { bytes: n }),
            Err(OciError::DigestMismatch { actual, .. }) => Ok(Fetch::Corrupt {
                why: format!(
                    "{} ({n} bytes) hashes to {actual}, not {}",
                    self.what, self.digest
                ),
            }),
            Err(e) => Err(CacheError::Store(e)),
        }
    }
}

/// Read a local store blob completely, checking that it hashes to its name (nothing unverified
/// is ever exported).
pub(crate) fn read_local_verified(d: &Digest, store: &ContentStore) -> Result<Vec<u8>, CacheError> {
    let mut f = store.open_blob(d)?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).map_err(|e| {
        CacheError::Store(OciError::Io {
            op: "read",
            path: store.blob_path(d),
            source: e,
        })
    })?;
    let got = Digest::of_bytes(&bytes);
    if got != *d {
        return Err(CacheError::LocalBlobCorrupt {
            digest: d.to_string(),
            why: format!("its content hashes to {got}"),
        });
    }
    Ok(bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        check_key(&"ab".repeat(32)).unwrap();
        check_key("0").unwrap();
        assert!(check_key("").is_err());
        assert!(check_key(&"a".repeat(129)).is_err());
        assert!(check_key("ABCD").is_err());
        assert!(check_key("../../etc/passwd").is_err());
        assert!(check_key("sha256:abcd").is_err());
    }

    #[test]
    fn incoming_verifies_and_leaves_nothing_on_mismatch() {
        let t = tempfile::tempdir().unwrap();
        let store = ContentStore::open(t.path()).unwrap();
        let d = Digest::of_bytes(b"good");
        let mut i = Incoming::new(&store, &d, "blob x".into()).unwrap();
        i.write(b"evil").unwrap();
        match i.finish().unwrap() {
            Fetch::Corrupt { why } => assert!(why.contains("hashes to"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(!store.has(&d));
        assert_eq!(store.du().unwrap().temp_files, 0);
        let mut i = Incoming::new(&store, &d, "blob x".into()).unwrap();
        i.copy_from(&mut &b"good"[..]).unwrap().unwrap();
        assert_eq!(i.finish().unwrap(), Fetch::Fetched { bytes: 4 });
        assert!(store.has(&d));
    }
}
