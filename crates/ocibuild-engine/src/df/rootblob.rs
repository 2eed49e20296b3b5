//! Ready toolchain roots through the remote cache: a cold runner fetches the root a step runs
//! on instead of assembling it from packages.
//!
//! A native toolchain base (`FROM ocibuild:go`, the zero-config builders' build roots) is only
//! ever run in: on the runner that assembles it, it is a directory of files hard-linked from the
//! unpacked-package cache, never a layer. `--cache-to` exports each one a step ran on as one
//! *root blob*: a reproducible tar of the directory (every entry's mode, owner, mtime and link
//! target exactly as on disk, sorted, zstd `-1`), under the index key
//! `["toolchain-root-v1", LOCK KEY]` with the record
//! `{"kind": "toolchain-root", "reference", "blob": DESCRIPTOR, "diff_id", "entries"}`. Equal
//! lock keys are equal roots (the key covers the packages, the ocibuild build fingerprint and
//! the time), so the record is written once per lock and cache.
//!
//! `--cache-from`: before a step runs on a toolchain root this store does not have, the record
//! is looked up; its blob is fetched into the content store (verified against its digest while
//! streaming, as every cache blob is), extracted safely beneath a temp directory (no entry leaves
//! it; the tar stream must hash to the record's `diff_id`) and renamed into place as the lock's
//! root (`ROOT/engine/rootfs/lock-<key>`), exactly where assembling would have put it. A missing
//! record or blob, a corrupt blob or a failed extraction is a note and a fallback to assembling
//! from packages: never an error, never a partial root.
//!
//! The blob made for a lock is remembered in `ROOT/engine/rootblobs/<lock key>.json`, so a
//! runner exporting to several caches (or again) tars its root once.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use ocibuild_cache::{CacheBackend, Fetch};
use ocibuild_oci::Digest;
use ocibuild_oci::extract::extract_layer_blob;
use ocibuild_oci::image::Descriptor;
use ocibuild_oci::layer::{EntryKind, LayerBuilder, LayerEntry, LayerOptions};
use ocibuild_oci::media::Compression;
use ocibuild_oci::store::ContentStore;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{EngineError, Result};

/// The record of a root blob in a cache (and, locally, of the blob made for a lock).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct RootRecord {
    pub kind: String,
    pub reference: String,
    /// The zstd-compressed tar.
    pub blob: Descriptor,
    /// The digest of the uncompressed tar stream.
    pub diff_id: Digest,
    /// Tar entries (the root's paths).
    pub entries: u64,
}

const KIND: &str = "toolchain-root";

/// The index key of the root blob of the toolchain base with lock key `lock_key`.
pub(crate) fn index_key(lock_key: &str) -> String {
    super::steps::key_of(json!(["toolchain-root-v1", lock_key]))
}

/// The root blob of `root` (the assembled root of lock `lock_key`) in the store: made once per
/// lock and store, remembered in `ROOT/engine/rootblobs/`.
pub(crate) fn make(
    store: &ContentStore,
    lock_key: &str,
    reference: &str,
    root: &Path,
) -> Result<RootRecord> {
    let marker = store
        .root()
        .join("engine")
        .join("rootblobs")
        .join(format!("{lock_key}.json"));
    if let Ok(bytes) = fs::read(&marker)
        && let Ok(r) = serde_json::from_slice::<RootRecord>(&bytes)
        && store.size(&r.blob.digest) == Some(r.blob.size)
    {
        return Ok(r);
    }
    let mut b = LayerBuilder::new(LayerOptions {
        compression: Compression::Zstd,
        level: Some(1),
        // no clamping: the times are the root's, as assembling left them
        source_date_epoch: u64::MAX,
        owner: None,
        normalize_modes: false,
    });
    let mut n = 0u64;
    for e in walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
        .min_depth(1)
    {
        let e = e.map_err(|e| EngineError::Invalid {
            what: format!("the toolchain root {}", root.display()),
            detail: format!("walking it for the cache: {e}"),
        })?;
        let rel = e
            .path()
            .strip_prefix(root)
            .ok()
            .and_then(|p| p.to_str())
            .ok_or_else(|| EngineError::Invalid {
                what: e.path().display().to_string(),
                detail: "a toolchain root path that is not UTF-8 cannot go into a root blob".into(),
            })?
            .to_string();
        let m = e
            .path()
            .symlink_metadata()
            .map_err(EngineError::io("reading the toolchain root", e.path()))?;
        let ft = m.file_type();
        let kind = if ft.is_dir() {
            EntryKind::Dir
        } else if ft.is_file() {
            EntryKind::File(e.path().to_path_buf())
        } else if ft.is_symlink() {
            let t = fs::read_link(e.path()).map_err(EngineError::io(
                "reading a link in the toolchain root",
                e.path(),
            ))?;
            EntryKind::Symlink(t.to_str().map(str::to_string).ok_or_else(|| {
                EngineError::Invalid {
                    what: e.path().display().to_string(),
                    detail: "a link target that is not UTF-8 cannot go into a root blob".into(),
                }
            })?)
        } else {
            return Err(EngineError::Invalid {
                what: e.path().display().to_string(),
                detail: "a special file (device, fifo, socket) cannot go into a root blob".into(),
            });
        };
        b.add_entry(LayerEntry {
            path: rel,
            kind,
            mode: if ft.is_symlink() {
                0o777
            } else {
                m.mode() & 0o7777
            },
            uid: Some(m.uid()),
            gid: Some(m.gid()),
            mtime: Some(u64::try_from(m.mtime()).unwrap_or(0)),
        })?;
        n += 1;
    }
    let w = store.writer()?;
    let (w, info) = b.write(w)?;
    let digest = w.commit()?;
    let r = RootRecord {
        kind: KIND.into(),
        reference: reference.to_string(),
        blob: Descriptor::new(info.media_type.to_string(), digest, info.size),
        diff_id: info.diff_id,
        entries: n,
    };
    let bytes = serde_json::to_vec(&r).map_err(|e| EngineError::Invalid {
        what: "a root blob record".into(),
        detail: e.to_string(),
    })?;
    crate::roots::write_atomically(&marker, &bytes)?;
    Ok(r)
}

/// Export the root blob of lock `lock_key` to `be` unless it has a record already: `Ok(true)`
/// when a record was written.
pub(crate) fn export(
    be: &dyn CacheBackend,
    store: &ContentStore,
    lock_key: &str,
    reference: &str,
    root: &Path,
) -> Result<bool> {
    let key = index_key(lock_key);
    let err = |what: &str, e: ocibuild_cache::CacheError| EngineError::Invalid {
        what: format!("{what} {}", be.describe()),
        detail: e.to_string(),
    };
    if be
        .get_index(&key)
        .map_err(|e| err("reading a root record from", e))?
        .is_some()
    {
        return Ok(false);
    }
    let r = make(store, lock_key, reference, root)?;
    be.push_blob(&r.blob.digest, store)
        .map_err(|e| err("exporting a toolchain root blob to", e))?;
    let bytes = serde_json::to_vec(&r).map_err(|e| EngineError::Invalid {
        what: "a root blob record".into(),
        detail: e.to_string(),
    })?;
    Ok(be
        .put_index(&key, &bytes)
        .map_err(|e| err("exporting a root record to", e))?
        == ocibuild_cache::PutOutcome::Created)
}

/// What [`fetch`] did.
pub(crate) enum Fetched {
    /// The root, extracted and in place; (compressed bytes, entries, the cache's kind).
    Root(PathBuf, u64, u64, String),
    /// No cache has a record of this lock's root.
    Missing,
    /// A cache had one, but it could not be used (why): assemble instead.
    Unusable(String),
}

/// The root of lock `lock_key` from the first cache with a record of it: its blob fetched
/// (verified), extracted into a temp dir beside the store's roots and renamed into place as
/// `lock-<key>`.
pub(crate) fn fetch(
    caches: &[Box<dyn CacheBackend + '_>],
    store: &ContentStore,
    lock_key: &str,
) -> Fetched {
    let key = index_key(lock_key);
    for be in caches {
        let got = (|| -> std::result::Result<Option<(PathBuf, u64, u64)>, String> {
            let Some(bytes) = be.get_index(&key).map_err(|e| e.to_string())? else {
                return Ok(None);
            };
            let r: RootRecord = serde_json::from_slice(&bytes)
                .map_err(|e| format!("its root record is not readable: {e}"))?;
            if r.kind != KIND {
                return Err(format!("its record is a `{}`, not a `{KIND}`", r.kind));
            }
            let c = ocibuild_oci::media::layer_compression(&r.blob.media_type)
                .ok_or_else(|| format!("unsupported root blob type {}", r.blob.media_type))?;
            let t0 = std::time::Instant::now();
            match be
                .fetch_blob(&r.blob.digest, store)
                .map_err(|e| e.to_string())?
            {
                Fetch::Fetched { .. } | Fetch::Present => {}
                Fetch::Missing => return Err(format!("its blob {} is missing", r.blob.digest)),
                Fetch::Corrupt { why } => return Err(format!("its blob is corrupt: {why}")),
            }
            tracing::debug!(target: "ocibuild::timing", ms = t0.elapsed().as_millis() as u64, "root blob fetched");
            let t0 = std::time::Instant::now();
            let (tmp, root) = super::rootfs_tmp(store).map_err(|e| e.to_string())?;
            let f = store.open_blob(&r.blob.digest).map_err(|e| e.to_string())?;
            extract_layer_blob(
                std::io::BufReader::new(f),
                c,
                Some(&r.diff_id),
                &root,
                &super::rootfs_extract_options(),
            )
            .map_err(|e| format!("extracting its blob: {e}"))?;
            let done = super::publish_rootfs(tmp, &format!("lock-{lock_key}"))
                .map_err(|e| e.to_string())?;
            tracing::debug!(target: "ocibuild::timing", ms = t0.elapsed().as_millis() as u64, "root blob extracted");
            Ok(Some((done, r.blob.size, r.entries)))
        })();
        match got {
            Ok(Some((root, bytes, entries))) => {
                return Fetched::Root(
                    root,
                    bytes,
                    entries,
                    super::steps::cache_kind(&be.describe()),
                );
            }
            Ok(None) => {}
            Err(why) => return Fetched::Unusable(format!("cache {}: {why}", be.describe())),
        }
    }
    Fetched::Missing
}
