//! The content store: a local content-addressed blob store.
//!
//! Layout under the store root (`$XDG_CACHE_HOME/ocibuild`, `--root DIR` or `OCIBUILD_ROOT`):
//!
//! ```text
//! blobs/sha256/<hex>              immutable blobs, named by the sha256 of their bytes
//! layers/<diff_id hex>/<key>      "this uncompressed layer, compressed as <key>, is blob <digest>"
//! tmp/                            blobs being written (temp file, fsync, rename into blobs/)
//! store.lock                      shared by every process that uses the store, exclusive for prune
//! ```
//!
//! The engine keeps more beside these (`engine/`, `debian/`, `logs/`); `cache du` and
//! `cache prune` account for all of it (`ocibuild_engine::storeusage`).
//!
//! Every write goes to a temp file in `tmp/` (same filesystem), is fsynced and renamed into place,
//! so a killed process never leaves a partial blob under its final name, and several processes can
//! write the same blob at once (the last rename wins; the bytes are identical). Blobs coming from
//! outside are verified against their expected digest and size before they are renamed into place.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::digest::{Digest, HashingWriter};
use crate::error::{OciError, Result};

/// The local content-addressed store.
#[derive(Clone, Debug)]
pub struct ContentStore {
    root: PathBuf,
}

/// Held while a process uses the store; `prune` waits for every holder to finish.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
}

/// Disk usage of the store.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Usage {
    pub blobs: u64,
    pub bytes: u64,
    pub layer_mappings: u64,
    pub temp_files: u64,
    pub temp_bytes: u64,
}

/// What `prune` removed.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct PruneReport {
    pub removed_blobs: u64,
    pub removed_bytes: u64,
    pub kept_blobs: u64,
    pub kept_bytes: u64,
    pub removed_temp_files: u64,
}

impl ContentStore {
    /// Open (creating when needed) the store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        for sub in ["blobs/sha256", "layers", "tmp"] {
            let p = root.join(sub);
            fs::create_dir_all(&p).map_err(OciError::io("create store directory", &p))?;
        }
        // Absolute: paths beneath the root are handed to sandboxes (bind sources), which run
        // elsewhere, and a relative `--root` must mean the directory it named when opened.
        let root = std::path::absolute(&root).map_err(OciError::io("resolve store root", &root))?;
        Ok(Self { root })
    }

    /// The default root: `$OCIBUILD_ROOT`, else `$XDG_CACHE_HOME/ocibuild`, else `~/.cache/ocibuild`.
    pub fn default_root() -> Option<PathBuf> {
        if let Some(r) = std::env::var_os("OCIBUILD_ROOT").filter(|v| !v.is_empty()) {
            return Some(PathBuf::from(r));
        }
        if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
            return Some(PathBuf::from(x).join("ocibuild"));
        }
        std::env::var_os("HOME")
            .filter(|v| !v.is_empty())
            .map(|h| PathBuf::from(h).join(".cache").join("ocibuild"))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Take the shared use-lock: many builds at once, but no prune under their feet.
    pub fn lock_shared(&self) -> Result<StoreLock> {
        let f = self.lock_file()?;
        f.lock_shared()
            .map_err(OciError::io("lock (shared)", self.root.join("store.lock")))?;
        Ok(StoreLock { _file: f })
    }

    /// Take the exclusive lock (prune).
    pub fn lock_exclusive(&self) -> Result<StoreLock> {
        let f = self.lock_file()?;
        f.lock().map_err(OciError::io(
            "lock (exclusive)",
            self.root.join("store.lock"),
        ))?;
        Ok(StoreLock { _file: f })
    }

    fn lock_file(&self) -> Result<File> {
        let p = self.root.join("store.lock");
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&p)
            .map_err(OciError::io("open", &p))
    }

    /// Path where a blob lives (whether or not it exists).
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    pub fn has(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// Size of a stored blob, if present.
    pub fn size(&self, d: &Digest) -> Option<u64> {
        fs::metadata(self.blob_path(d))
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len())
    }

    /// Open a blob for reading and mark it used (its mtime drives `prune --older-than`).
    pub fn open_blob(&self, d: &Digest) -> Result<File> {
        let p = self.blob_path(d);
        let f = File::open(&p).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                OciError::BlobMissing {
                    digest: d.clone(),
                    location: format!("the content store {}", self.root.display()),
                }
            } else {
                OciError::Io {
                    op: "open",
                    path: p.clone(),
                    source: e,
                }
            }
        })?;
        self.touch(d);
        Ok(f)
    }

    /// Mark a blob as used now. Best effort: a read-only store still works.
    pub fn touch(&self, d: &Digest) {
        if let Ok(f) = OpenOptions::new().write(true).open(self.blob_path(d)) {
            let _ = f.set_modified(SystemTime::now());
        }
    }

    /// Start writing a new blob of not yet known digest.
    pub fn writer(&self) -> Result<BlobWriter> {
        let dir = self.root.join("tmp");
        let tmp = tempfile::Builder::new()
            .prefix("blob-")
            .tempfile_in(&dir)
            .map_err(OciError::io("create temp file in", &dir))?;
        Ok(BlobWriter {
            inner: HashingWriter::new(io::BufWriter::with_capacity(256 * 1024, tmp)),
            store: self.clone(),
        })
    }

    /// A temp file in the store's `tmp/` for a caller that streams and verifies a blob itself
    /// (then hands it to [`ContentStore::adopt_verified`]). Dropped, it leaves nothing behind.
    pub fn temp_blob(&self) -> Result<tempfile::NamedTempFile> {
        let dir = self.root.join("tmp");
        tempfile::Builder::new()
            .prefix("blob-")
            .tempfile_in(&dir)
            .map_err(OciError::io("create temp file in", &dir))
    }

    /// fsync a temp file from [`ContentStore::temp_blob`] whose content the caller has verified
    /// to hash to `d` while writing it, and rename it into place as that blob (no second read).
    pub fn adopt_verified(&self, tmp: tempfile::NamedTempFile, d: &Digest) -> Result<()> {
        tmp.as_file()
            .sync_all()
            .map_err(OciError::io("fsync", tmp.path()))?;
        let dest = self.blob_path(d);
        tmp.persist(&dest).map_err(|e| OciError::Io {
            op: "rename into",
            path: dest.clone(),
            source: e.error,
        })?;
        Ok(())
    }

    /// Store bytes; returns their digest.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Digest> {
        let d = Digest::of_bytes(bytes);
        if self.has(&d) {
            self.touch(&d);
            return Ok(d);
        }
        let mut w = self.writer()?;
        w.write_all(bytes)
            .map_err(OciError::io("write", self.root.join("tmp")))?;
        w.commit()
    }

    /// Copy a blob in from outside, verifying it against `expected` digest and size.
    /// Nothing enters the store unless both match.
    pub fn put_verified(
        &self,
        r: &mut dyn Read,
        expected: &Digest,
        size: Option<u64>,
        what: &str,
    ) -> Result<()> {
        if self
            .size(expected)
            .is_some_and(|s| size.is_none_or(|want| want == s))
        {
            self.touch(expected);
            return Ok(());
        }
        let mut w = self.writer()?;
        io::copy(r, &mut w).map_err(OciError::stream(format!(
            "copying {what} into the content store"
        )))?;
        let got_size = w.count();
        if let Some(want) = size
            && want != got_size
        {
            return Err(OciError::SizeMismatch {
                what: what.to_string(),
                expected: want,
                actual: got_size,
            });
        }
        w.commit_expecting(expected, what)
    }

    /// Record that the uncompressed layer `diff_id`, compressed with settings `key`
    /// (e.g. `gzip-6-zlib-rs`), is the blob `digest`.
    pub fn record_layer(&self, diff_id: &Digest, key: &str, digest: &Digest) -> Result<()> {
        let dir = self.root.join("layers").join(diff_id.hex());
        fs::create_dir_all(&dir).map_err(OciError::io("create", &dir))?;
        let tmp = tempfile::Builder::new()
            .prefix(".map-")
            .tempfile_in(&dir)
            .map_err(OciError::io("create temp file in", &dir))?;
        fs::write(tmp.path(), digest.to_string()).map_err(OciError::io("write", tmp.path()))?;
        let dest = dir.join(sanitize_key(key));
        tmp.persist(&dest).map_err(|e| OciError::Io {
            op: "rename into",
            path: dest.clone(),
            source: e.error,
        })?;
        Ok(())
    }

    /// The compressed blob previously recorded for `diff_id` under `key`, if it is still stored.
    pub fn lookup_layer(&self, diff_id: &Digest, key: &str) -> Option<Digest> {
        let p = self
            .root
            .join("layers")
            .join(diff_id.hex())
            .join(sanitize_key(key));
        let s = fs::read_to_string(p).ok()?;
        let d = Digest::parse(s.trim()).ok()?;
        self.has(&d).then_some(d)
    }

    /// The key (see [`ContentStore::record_layer`]) under which the blob `digest` was recorded
    /// for `diff_id`, if any: how a stored layer was compressed.
    pub fn layer_key_of(&self, diff_id: &Digest, digest: &Digest) -> Option<String> {
        let dir = self.root.join("layers").join(diff_id.hex());
        let want = digest.to_string();
        fs::read_dir(dir).ok()?.flatten().find_map(|e| {
            let name = e.file_name().into_string().ok()?;
            if name.starts_with("src-") || name.starts_with('.') {
                return None;
            }
            let s = fs::read_to_string(e.path()).ok()?;
            (s.trim() == want).then_some(name)
        })
    }

    /// Remember that the inputs named by `source` (a [`crate::layer::SourceKey`]) made the layer
    /// `diff_id`, stored compressed (`key`) as `digest`. Kept with the layer mappings (as
    /// `layers/<source>/src-<key>-<diff_id hex>`, holding `digest`), so it is counted, checked
    /// and pruned with them.
    pub fn record_source(
        &self,
        source: &Digest,
        key: &str,
        diff_id: &Digest,
        digest: &Digest,
    ) -> Result<()> {
        self.record_layer(
            source,
            &format!("src-{}-{}", sanitize_key(key), diff_id.hex()),
            digest,
        )
    }

    /// `(diff_id, digest)` recorded by [`ContentStore::record_source`], if the blob is still
    /// stored.
    pub fn lookup_source(&self, source: &Digest, key: &str) -> Option<(Digest, Digest)> {
        let dir = self.root.join("layers").join(source.hex());
        let prefix = format!("src-{}-", sanitize_key(key));
        for e in fs::read_dir(&dir).ok()?.flatten() {
            let name = e.file_name();
            let Some(hex) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
                continue;
            };
            let Ok(diff_id) = Digest::parse(&format!("sha256:{hex}")) else {
                continue;
            };
            let Some(d) = fs::read_to_string(e.path())
                .ok()
                .and_then(|s| Digest::parse(s.trim()).ok())
            else {
                continue;
            };
            if self.has(&d) {
                return Some((diff_id, d));
            }
        }
        None
    }

    /// Disk usage.
    pub fn du(&self) -> Result<Usage> {
        let mut u = Usage::default();
        for (_, _, len) in self.list_blobs()? {
            u.blobs += 1;
            u.bytes += len;
        }
        let layers = self.root.join("layers");
        for e in fs::read_dir(&layers)
            .map_err(OciError::io("read", &layers))?
            .flatten()
        {
            if let Ok(rd) = fs::read_dir(e.path()) {
                u.layer_mappings += rd.count() as u64;
            }
        }
        let tmp = self.root.join("tmp");
        for e in fs::read_dir(&tmp)
            .map_err(OciError::io("read", &tmp))?
            .flatten()
        {
            u.temp_files += 1;
            u.temp_bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
        }
        Ok(u)
    }

    fn list_blobs(&self) -> Result<Vec<(Digest, SystemTime, u64)>> {
        let dir = self.root.join("blobs/sha256");
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(OciError::io("read", &dir))? {
            let e = e.map_err(OciError::io("read", &dir))?;
            let name = e.file_name();
            let Some(d) = name
                .to_str()
                .and_then(|n| Digest::parse(&format!("sha256:{n}")).ok())
            else {
                continue;
            };
            let Ok(m) = e.metadata() else { continue };
            out.push((d, m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
        }
        Ok(out)
    }

    /// Remove blobs not used for `older_than`, then the least recently used ones until the store
    /// holds at most `keep_storage` bytes. Waits for running builds (exclusive lock).
    /// With neither limit, removes everything.
    pub fn prune(
        &self,
        older_than: Option<Duration>,
        keep_storage: Option<u64>,
    ) -> Result<PruneReport> {
        let _lock = self.lock_exclusive()?;
        let now = SystemTime::now();
        let mut blobs = self.list_blobs()?;
        // oldest first
        blobs.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        let mut report = PruneReport::default();
        let mut remaining: u64 = blobs.iter().map(|b| b.2).sum();
        for (d, mtime, len) in blobs {
            let age = now.duration_since(mtime).unwrap_or_default();
            let too_old = older_than.is_some_and(|o| age >= o);
            let over_budget = keep_storage.is_some_and(|k| remaining > k);
            let remove_all = older_than.is_none() && keep_storage.is_none();
            if too_old || over_budget || remove_all {
                let p = self.blob_path(&d);
                fs::remove_file(&p).map_err(OciError::io("remove", &p))?;
                report.removed_blobs += 1;
                report.removed_bytes += len;
                remaining -= len;
            } else {
                report.kept_blobs += 1;
                report.kept_bytes += len;
            }
        }
        self.remove_dangling_mappings()?;
        // Temp files left by killed processes: nobody holds the shared lock now, so none is live.
        let tmp = self.root.join("tmp");
        for e in fs::read_dir(&tmp)
            .map_err(OciError::io("read", &tmp))?
            .flatten()
        {
            if fs::remove_file(e.path()).is_ok() {
                report.removed_temp_files += 1;
            }
        }
        Ok(report)
    }
}

impl ContentStore {
    /// Remove the layer mappings whose blob is gone (after blobs were pruned).
    pub fn remove_dangling_mappings(&self) -> Result<()> {
        let layers = self.root.join("layers");
        for e in fs::read_dir(&layers)
            .map_err(OciError::io("read", &layers))?
            .flatten()
        {
            let dir = e.path();
            for m in fs::read_dir(&dir).into_iter().flatten().flatten() {
                let keep = fs::read_to_string(m.path())
                    .ok()
                    .and_then(|s| Digest::parse(s.trim()).ok())
                    .is_some_and(|d| self.has(&d));
                if !keep {
                    let _ = fs::remove_file(m.path());
                }
            }
            let _ = fs::remove_dir(&dir); // only succeeds when empty
        }
        Ok(())
    }

    /// The exclusive lock if nobody uses the store now, else `None` (for saying that prune
    /// waits for running builds before it does).
    pub fn try_lock_exclusive(&self) -> Result<Option<StoreLock>> {
        let f = self.lock_file()?;
        match f.try_lock() {
            Ok(()) => Ok(Some(StoreLock { _file: f })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(OciError::Io {
                op: "lock (exclusive)",
                path: self.root.join("store.lock"),
                source: e,
            }),
        }
    }
}

fn sanitize_key(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A blob being written into the store. Dropped without `commit`, it leaves nothing behind.
pub struct BlobWriter {
    inner: HashingWriter<io::BufWriter<tempfile::NamedTempFile>>,
    store: ContentStore,
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn count(&self) -> u64 {
        self.inner.count()
    }

    /// fsync, rename into place under the digest of what was written, and return that digest.
    pub fn commit(self) -> Result<Digest> {
        let (d, _) = self.commit_inner(None, "")?;
        Ok(d)
    }

    /// Like `commit`, but refuse (and discard the data) unless the content hashes to `expected`.
    pub fn commit_expecting(self, expected: &Digest, what: &str) -> Result<()> {
        self.commit_inner(Some(expected), what).map(|_| ())
    }

    fn commit_inner(self, expected: Option<&Digest>, what: &str) -> Result<(Digest, u64)> {
        let (buf, d, n) = self.inner.finish();
        let tmp = buf.into_inner().map_err(|e| OciError::Stream {
            what: "flushing a blob into the content store".into(),
            source: e.into_error(),
        })?;
        if let Some(want) = expected
            && *want != d
        {
            return Err(OciError::DigestMismatch {
                what: what.to_string(),
                expected: want.clone(),
                actual: d,
            });
        }
        tmp.as_file()
            .sync_all()
            .map_err(OciError::io("fsync", tmp.path()))?;
        crate::failpoint::hit("blob-commit");
        let dest = self.store.blob_path(&d);
        tmp.persist(&dest).map_err(|e| OciError::Io {
            op: "rename into",
            path: dest.clone(),
            source: e.error,
        })?;
        Ok((d, n))
    }
}

impl BlobWriter {
    /// Flush the blob into its temp file without fsyncing or naming it: the caller makes a batch
    /// of such blobs durable at once with [`commit_pending`] (one journal commit for all of them
    /// instead of one each). Dropped, it leaves nothing behind.
    pub fn into_pending(self) -> Result<PendingBlob> {
        let (buf, digest, _) = self.inner.finish();
        let tmp = buf.into_inner().map_err(|e| OciError::Stream {
            what: "flushing a blob into the content store".into(),
            source: e.into_error(),
        })?;
        Ok(PendingBlob {
            tmp,
            digest,
            store: self.store,
        })
    }
}

/// A blob written into a temp file of the store, not yet fsynced nor named
/// ([`BlobWriter::into_pending`]).
pub struct PendingBlob {
    tmp: tempfile::NamedTempFile,
    digest: Digest,
    store: ContentStore,
}

impl PendingBlob {
    /// The digest of its bytes.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }
}

impl ContentStore {
    /// A temp file from [`ContentStore::temp_blob`] that the caller filled with bytes it hashed
    /// to `digest` on their way in, as a pending blob (no second read, no second hash).
    pub fn pending_verified(&self, tmp: tempfile::NamedTempFile, digest: Digest) -> PendingBlob {
        PendingBlob {
            tmp,
            digest,
            store: self.clone(),
        }
    }

    /// `bytes` as a pending blob, or `None` when the store has it already (marked used).
    pub fn pending_bytes(&self, bytes: &[u8]) -> Result<Option<PendingBlob>> {
        let d = Digest::of_bytes(bytes);
        if self.has(&d) {
            self.touch(&d);
            return Ok(None);
        }
        let mut w = self.writer()?;
        w.write_all(bytes)
            .map_err(OciError::io("write", self.root.join("tmp")))?;
        w.into_pending().map(Some)
    }
}

/// fsync every file at once, each on its own thread: concurrent fsyncs share the file system's
/// journal commits, so a batch costs about what one costs instead of one commit per file.
pub(crate) fn fsync_all(files: &[(&File, &Path)]) -> Result<()> {
    if let [(f, p)] = files {
        return f.sync_all().map_err(OciError::io("fsync", *p));
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = files
            .iter()
            .map(|(f, p)| s.spawn(move || f.sync_all().map_err(OciError::io("fsync", *p))))
            .collect();
        let mut first = Ok(());
        for h in handles {
            let r = h.join().unwrap_or_else(|_| {
                Err(OciError::Stream {
                    what: "fsync".into(),
                    source: io::Error::other("an fsync thread panicked"),
                })
            });
            if first.is_ok() {
                first = r;
            }
        }
        first
    })
}

/// Make a batch of pending blobs durable (all fsynced at once, see [`fsync_all`]), then name them,
/// in order. `before_naming` runs while the fsyncs are in flight; its error names nothing.
pub fn commit_pending(
    pending: Vec<PendingBlob>,
    before_naming: impl FnOnce() -> Result<()> + Send,
) -> Result<Vec<Digest>> {
    commit_pending_with(pending, &[], before_naming)
}

/// [`commit_pending`], with `also` (files the caller names afterwards, e.g. a layout's staged
/// files) fsynced in the same batch: nothing is named unless all of them are durable.
pub fn commit_pending_with(
    pending: Vec<PendingBlob>,
    also: &[(&File, &Path)],
    before_naming: impl FnOnce() -> Result<()> + Send,
) -> Result<Vec<Digest>> {
    let (synced, checked) = std::thread::scope(|s| {
        let check = s.spawn(before_naming);
        let mut files: Vec<(&File, &Path)> = pending
            .iter()
            .map(|p| (p.tmp.as_file(), p.tmp.path()))
            .collect();
        files.extend_from_slice(also);
        let synced = fsync_all(&files);
        let checked = check.join().unwrap_or_else(|_| {
            Err(OciError::Stream {
                what: "layer input check".into(),
                source: io::Error::other("the check thread panicked"),
            })
        });
        (synced, checked)
    });
    checked?;
    synced?;
    let mut out = Vec::with_capacity(pending.len());
    for p in pending {
        crate::failpoint::hit("blob-commit");
        let dest = p.store.blob_path(&p.digest);
        p.tmp.persist(&dest).map_err(|e| OciError::Io {
            op: "rename into",
            path: dest.clone(),
            source: e.error,
        })?;
        out.push(p.digest);
    }
    Ok(out)
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Parse a duration like `7d`, `12h`, `30m`, `45s`, `2w`.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let bad = || {
        OciError::invalid(
            "duration",
            format!("`{s}`: expected a number and a unit, like 7d, 12h, 30m, 45s or 2w"),
        )
    };
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(bad()),
    };
    n.checked_mul(secs).map(Duration::from_secs).ok_or_else(bad)
}

/// Parse a size like `10GB`, `512MB`, `1.5GiB`, `1000` (bytes).
pub fn parse_size(s: &str) -> Result<u64> {
    let bad = || {
        OciError::invalid(
            "size",
            format!(
                "`{s}`: expected a number and an optional unit, like 10GB, 512MB, 1GiB or 1000"
            ),
        )
    };
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "ki" | "kib" => 1024.0,
        "mi" | "mib" => 1024.0 * 1024.0,
        "gi" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "ti" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(bad()),
    };
    let v = n * mult;
    if !v.is_finite() || v < 0.0 || v > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(v as u64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_relative_root_is_made_absolute() {
        let t = tempfile::tempdir().unwrap();
        let cwd = std::env::current_dir().unwrap();
        // the temp dir, relative to the working directory ("../../tmp/x/store")
        let mut rel = PathBuf::new();
        for _ in cwd.components().skip(1) {
            rel.push("..");
        }
        rel.push(t.path().strip_prefix("/").unwrap());
        rel.push("store");
        let s = ContentStore::open(&rel).unwrap();
        assert!(s.root().is_absolute(), "{}", s.root().display());
        assert!(s.root().join("blobs/sha256").is_dir());
        assert_eq!(
            fs::canonicalize(s.root()).unwrap(),
            fs::canonicalize(t.path().join("store")).unwrap()
        );
    }

    #[test]
    fn put_get_verify() {
        let t = tempfile::tempdir().unwrap();
        let s = ContentStore::open(t.path()).unwrap();
        let d = s.put_bytes(b"hello").unwrap();
        assert!(s.has(&d));
        let mut buf = String::new();
        s.open_blob(&d).unwrap().read_to_string(&mut buf).unwrap();
        assert_eq!(buf, "hello");

        // verified put: wrong digest leaves nothing behind
        let wrong = Digest::of_bytes(b"other");
        let e = s
            .put_verified(&mut &b"hello!"[..], &wrong, None, "blob x")
            .unwrap_err();
        assert!(matches!(e, OciError::DigestMismatch { .. }), "{e}");
        assert!(!s.has(&wrong));
        let e = s
            .put_verified(&mut &b"other"[..], &wrong, Some(6), "blob x")
            .unwrap_err();
        assert!(matches!(e, OciError::SizeMismatch { .. }), "{e}");
        s.put_verified(&mut &b"other"[..], &wrong, Some(5), "blob x")
            .unwrap();
        assert!(s.has(&wrong));
        assert_eq!(fs::read_dir(t.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn dropped_writer_leaves_nothing() {
        let t = tempfile::tempdir().unwrap();
        let s = ContentStore::open(t.path()).unwrap();
        let mut w = s.writer().unwrap();
        w.write_all(b"partial").unwrap();
        drop(w);
        assert_eq!(s.du().unwrap().blobs, 0);
        assert_eq!(s.du().unwrap().temp_files, 0);
    }

    /// A batch is named only after every fsync and the check passed: a failed check (an input
    /// changed while it was packed) names nothing and leaves no temp file; a passing one names
    /// every blob with its bytes.
    #[test]
    fn pending_blobs_are_named_only_when_the_batch_commits() {
        let t = tempfile::tempdir().unwrap();
        let s = ContentStore::open(t.path()).unwrap();
        let batch = || {
            let mut w = s.writer().unwrap();
            w.write_all(&[7u8; 300_000]).unwrap();
            let mut v = vec![w.into_pending().unwrap()];
            v.extend(s.pending_bytes(b"config").unwrap());
            v
        };
        let pending = batch();
        let digests: Vec<Digest> = pending.iter().map(|p| p.digest().clone()).collect();
        let e = commit_pending(pending, || Err(OciError::invalid("layer input", "changed")))
            .unwrap_err();
        assert!(e.to_string().contains("changed"), "{e}");
        for d in &digests {
            assert!(!s.has(d), "{d} named after a failed batch");
        }
        assert_eq!(s.du().unwrap().temp_files, 0);

        let named = commit_pending(batch(), || Ok(())).unwrap();
        assert_eq!(named, digests);
        let (d, n) = Digest::of_reader(s.open_blob(&digests[0]).unwrap()).unwrap();
        assert_eq!((d, n), (digests[0].clone(), 300_000));
        assert_eq!(fs::read(s.blob_path(&digests[1])).unwrap(), b"config");
        assert_eq!(s.du().unwrap().temp_files, 0);
        // a stored blob is not written again
        assert!(s.pending_bytes(b"config").unwrap().is_none());
    }

    #[test]
    fn layer_mapping_and_prune() {
        let t = tempfile::tempdir().unwrap();
        let s = ContentStore::open(t.path()).unwrap();
        let a = s.put_bytes(&[1u8; 1000]).unwrap();
        let b = s.put_bytes(&[2u8; 2000]).unwrap();
        let diff = Digest::of_bytes(b"tar");
        s.record_layer(&diff, "gzip-6", &a).unwrap();
        assert_eq!(s.lookup_layer(&diff, "gzip-6"), Some(a.clone()));
        assert_eq!(s.lookup_layer(&diff, "zstd-3"), None);
        // make `a` old
        let f = OpenOptions::new()
            .write(true)
            .open(s.blob_path(&a))
            .unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(10 * 86_400))
            .unwrap();
        let r = s
            .prune(Some(Duration::from_secs(7 * 86_400)), None)
            .unwrap();
        assert_eq!(r.removed_blobs, 1);
        assert!(!s.has(&a) && s.has(&b));
        assert_eq!(s.lookup_layer(&diff, "gzip-6"), None);
        let r = s.prune(None, Some(100)).unwrap();
        assert_eq!(r.removed_blobs, 1);
        assert_eq!(s.du().unwrap().bytes, 0);
    }

    #[test]
    fn parses_units() {
        assert_eq!(
            parse_duration("7d").unwrap(),
            Duration::from_secs(7 * 86400)
        );
        assert!(parse_duration("7").is_err());
        assert!(parse_duration("d").is_err());
        assert_eq!(parse_size("10GB").unwrap(), 10_000_000_000);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("1.5kb").unwrap(), 1500);
        assert!(parse_size("ten").is_err());
    }
}
