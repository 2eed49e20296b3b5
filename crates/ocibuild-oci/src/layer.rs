//! The deterministic layer writer: files in → one compressed blob plus `(digest, diff_id, size,
//! media type)` out, in a single streaming pass.
//!
//! [`LayerBuilder`] collects entries (metadata only), then [`LayerBuilder::write`] streams the
//! layer: a producer thread opens each file, emits the tar stream and hashes it (the `diff_id`);
//! the compressor(s) run on other threads; the calling thread writes the blob to `out` and hashes
//! it (the `digest`). Memory is bounded (a few 1 MiB chunks per thread, plus libzstd's job
//! buffers, about 8 MiB per worker at level 3) whatever the layer size, and nothing is read back.
//! The thread count ([`LayerBuilder::set_threads`]) never changes the bytes.
//!
//! # The bytes this module produces (they determine every digest we ship)
//!
//! **Tar stream.** POSIX pax (`ustar` headers, magic `ustar\0`, version `00`):
//! - entries sorted by path bytes (the path without its trailing `/`); every missing parent
//!   directory is emitted as mode `0755`; later duplicate paths replace earlier ones;
//! - directories end in `/`; hard links point at the layer path of the first path (in sort order)
//!   of their group; symlinks have mode `0777`; whiteouts are empty regular files `.wh.<name>`,
//!   opaque directories hold an empty `.wh..wh..opq`;
//! - `mode` holds the permission bits only (`& 0o7777`, setuid/setgid/sticky kept);
//!   uid/gid are the entry's explicit ids, else [`LayerOptions::owner`], else `0:0`;
//!   uname/gname are empty; mtime is `min(mtime, source_date_epoch)` (entries without one get
//!   the epoch); no atime/ctime;
//! - numeric fields are zero-padded octal with a trailing NUL (checksum: 6 digits, NUL, space),
//!   devmajor/devminor are `0000000\0`;
//! - a path longer than 100 bytes is split into ustar `prefix` + `name` at a `/` when it is
//!   ASCII and fits (Go's `archive/tar` rule). Otherwise (and for any non-ASCII path), for a
//!   non-ASCII or >100-byte link target, ids > `0o7777777` and sizes/mtimes > `0o77777777777`,
//!   one pax extended header (typeflag `x`, named `PaxHeaders/<basename>`, mode 0644, 0:0,
//!   records sorted by key) carries `gid`/`linkpath`/`mtime`/`path`/`size`/`uid`, and the ustar
//!   field holds an ASCII-only truncation (or 0). Never GNU `L`/`K` entries;
//! - names starting with `.wh.` are refused in every path component (they are whiteouts to
//!   every OCI runtime), except the markers written for [`EntryKind::Whiteout`] and
//!   [`EntryKind::OpaqueDir`];
//! - the archive ends with two zero blocks (no padding to a 10 KiB record).
//!
//! **gzip** (`application/vnd.oci.image.layer.v1.tar+gzip`): one gzip member, written the way
//! pigz does, so any gzip reader (including single-member ones) accepts it:
//! - header `1f 8b 08 00 00000000 XFL ff` (no name, mtime 0, OS "unknown"; XFL 2 for level 9,
//!   4 for levels 0–1, else 0);
//! - the tar stream is cut into fixed [`GZIP_CHUNK_SIZE`] (1 MiB) chunks, independent of the
//!   thread count. Chunk *i* is raw-deflated by a freshly initialised zlib-rs compressor (flate2
//!   `Compress::new`: the given level, window bits 15, memLevel 8, default strategy) primed with
//!   the last 32 KiB of chunk *i−1* as preset dictionary, and ends with a sync flush; the final
//!   chunk (possibly empty) ends with `Z_FINISH`. The deflate outputs are concatenated in order
//!   into one deflate stream. (Never a `reset()` compressor: zlib-rs 0.6 keeps the previous
//!   stream's window bytes across `reset()`, and the final block's match choices depend on them,
//!   so the output would depend on which chunks a worker compressed before.);
//! - trailer: CRC-32 and length mod 2³² of the whole tar stream.
//!
//! Chunks are compressed concurrently; the output is bit-identical for any thread count (tested).
//! zlib-rs selects SIMD only for match comparison and hash sliding, which do not change its
//! output, so the bytes depend on the zlib-rs version (pinned in the workspace) and not on the CPU.
//!
//! **zstd** (`+zstd`): one frame from libzstd (bundled by zstd-sys, version pinned by
//! Cargo.lock) at the given level, content checksum on, no content size, compressed in libzstd's
//! *multithreaded streaming* mode with `nbWorkers = max(1, threads)` and default job size. That
//! mode's output is the same for any number of workers ≥ 1 (facebook/zstd#2238, #2327; tested
//! here) but differs from single-threaded mode (`nbWorkers = 0`), which is therefore never used.
//!
//! **none**: the tar stream itself (`digest == diff_id`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread;

use flate2::{Compress, Crc, FlushCompress, Status};

use crate::digest::{Digest, HashingWriter};
use crate::error::{OciError, Result};
use crate::media::Compression;

/// The size of the tar-stream chunks that are deflated independently. Part of the gzip format
/// (changing it changes every gzip layer digest).
pub const GZIP_CHUNK_SIZE: usize = 1 << 20;

/// The deflate window: each chunk is primed with this much of the preceding data.
const DICT_SIZE: usize = 32 * 1024;
const BLOCK: usize = 512;
/// Largest value of a 7-digit octal field (mode, uid, gid).
const MAX_OCTAL_7: u64 = 0o7777777;
/// Largest value of an 11-digit octal field (size, mtime).
const MAX_OCTAL_11: u64 = 0o77777777777;
const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// How a layer is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerOptions {
    /// Default gzip.
    pub compression: Compression,
    /// Compression level: gzip 0–9 (default 6), zstd 1–22 (default 3). Ignored for `None`.
    pub level: Option<u32>,
    /// `SOURCE_DATE_EPOCH`: every mtime is clamped to `min(mtime, epoch)`. Default 0.
    pub source_date_epoch: u64,
    /// `None`: every entry is owned by 0:0. `Some((uid, gid))`: every entry gets these ids.
    /// An explicit [`LayerEntry::uid`]/[`LayerEntry::gid`] overrides this.
    pub owner: Option<(u32, u32)>,
    /// Normalise the permission bits of files read by [`LayerBuilder::add_dir`] the way git
    /// checks files out, so the umask of whoever wrote the tree does not change the digest:
    /// directories `0755`, files `0755` when the owner may execute them, else `0644`;
    /// setuid/setgid/sticky bits are kept, and a sticky directory gets `1777` (like `/tmp`).
    /// Explicit [`LayerEntry`] modes are never changed. Default `false` (modes kept exactly).
    pub normalize_modes: bool,
}

impl Default for LayerOptions {
    fn default() -> Self {
        Self {
            compression: Compression::Gzip,
            level: None,
            source_date_epoch: 0,
            owner: None,
            normalize_modes: false,
        }
    }
}

/// The git-like permission bits of [`LayerOptions::normalize_modes`].
pub fn normalized_mode(mode: u32, is_dir: bool) -> u32 {
    let special = mode & 0o7000;
    if is_dir {
        if special & 0o1000 != 0 {
            0o1777 | special
        } else {
            0o755 | special
        }
    } else if mode & 0o100 != 0 {
        0o755 | special
    } else {
        0o644 | special
    }
}

/// What an entry is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file; its contents are read from this path (never following a symlink) when the
    /// layer is written.
    File(PathBuf),
    /// A regular file with these (small) contents.
    Bytes(Vec<u8>),
    Dir,
    /// A symbolic link to this target (written as is).
    Symlink(String),
    /// A hard link to this layer path, which must be a regular file (or another hard link to one)
    /// in this layer.
    Hardlink(String),
    /// Deletes `path` from the layers below: written as `<dir>/.wh.<name>`.
    Whiteout,
    /// Hides everything the layers below have in directory `path`: written as
    /// `<path>/.wh..wh..opq` (`path` may be empty for the root).
    OpaqueDir,
    /// A named pipe (tar typeflag `6`), as a Dockerfile `RUN mkfifo` leaves it.
    Fifo,
}

/// One entry of a layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerEntry {
    /// Relative, `/`-separated, no leading `/`, no `.`/`..`/empty components. A trailing `/` is
    /// ignored.
    pub path: String,
    pub kind: EntryKind,
    /// Permission bits, including setuid/setgid/sticky (file type bits are ignored).
    pub mode: u32,
    /// Overrides [`LayerOptions::owner`].
    pub uid: Option<u32>,
    /// Overrides [`LayerOptions::owner`].
    pub gid: Option<u32>,
    /// Seconds since the epoch; clamped to the source date epoch. `None`: the epoch.
    pub mtime: Option<u64>,
}

impl LayerEntry {
    /// An entry with default ownership and mtime.
    pub fn new(path: impl Into<String>, kind: EntryKind, mode: u32) -> Self {
        Self {
            path: path.into(),
            kind,
            mode,
            uid: None,
            gid: None,
            mtime: None,
        }
    }
}

/// What [`LayerBuilder::write`] produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerInfo {
    /// Digest of the blob (the compressed stream).
    pub digest: Digest,
    /// Digest of the uncompressed tar stream.
    pub diff_id: Digest,
    /// Size of the blob.
    pub size: u64,
    /// Size of the uncompressed tar stream.
    pub uncompressed_size: u64,
    pub media_type: &'static str,
    pub compression: Compression,
}

/// Identifies one inode seen by one `add_dir` call: (walk number, dev, ino).
type InodeKey = (u32, u64, u64);

/// What the directory walk saw of a regular file: enough to tell, without reading it, that its
/// contents have not changed since (any write changes `ctime`, which no user can set back).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileStamp {
    fn of(meta: &fs::Metadata) -> Self {
        FileStamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// A key for a layer's inputs as they are on disk ([`LayerBuilder::source_key`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceKey {
    /// SHA-256 over every entry's path and metadata, each file's source path and stamp
    /// (device, inode, size, mtime and ctime in nanoseconds) and the options that shape the tar.
    pub key: Digest,
    /// The newest mtime or ctime of any file (seconds, nanoseconds since the epoch): a key is
    /// only worth remembering when this is older than the moment the layer's files were read
    /// (a file changed again within the clock's granularity would keep its stamp).
    pub newest: (i64, i64),
    /// The stamped files, to re-check after the layer was written ([`SourceKey::unchanged`]).
    files: Vec<(PathBuf, FileStamp)>,
}

impl SourceKey {
    /// Whether every file still has the stamp it had when the key was made: `false` when one
    /// changed (or went away) while the layer was being written.
    pub fn unchanged(&self) -> bool {
        self.files.iter().all(|(p, st)| {
            fs::symlink_metadata(p).is_ok_and(|m| m.is_file() && FileStamp::of(&m) == *st)
        })
    }

    /// Whether `newest` is at least `margin` before `t` (the key can be remembered).
    pub fn settled_before(&self, t: std::time::SystemTime, margin: std::time::Duration) -> bool {
        let Ok(since) = t.duration_since(std::time::UNIX_EPOCH) else {
            return false;
        };
        let Some(limit) = since.checked_sub(margin) else {
            return false;
        };
        let (s, ns) = self.newest;
        let newest = u64::try_from(s).unwrap_or(0) as u128 * 1_000_000_000
            + u64::try_from(ns).unwrap_or(0) as u128;
        s >= 0 && newest < limit.as_nanos()
    }
}

#[derive(Clone, Debug)]
enum Kind {
    File {
        src: PathBuf,
        inode: Option<InodeKey>,
        /// Set by [`LayerBuilder::add_dir`]; `None` for files added as entries.
        stamp: Option<FileStamp>,
    },
    Bytes(Vec<u8>),
    Dir,
    Symlink(String),
    Hardlink(String),
    /// An empty regular file (whiteout and opaque markers).
    Marker,
    Fifo,
}

impl Kind {
    fn has_content(&self) -> bool {
        matches!(self, Kind::File { .. } | Kind::Bytes(_))
    }
}

#[derive(Clone, Debug)]
struct Item {
    kind: Kind,
    mode: u32,
    uid: Option<u32>,
    gid: Option<u32>,
    mtime: Option<u64>,
}

/// `path` (relative, `/`-separated) with the symlinks of `links` (path → target, the links a
/// lower layer leaves) followed, the last component only when `follow_last`; scoped to the root
/// like a chroot (absolute targets restart at the root, `..` stops there). More than 40 links
/// on the way is an error (a loop).
pub fn resolve_through_links(
    links: &BTreeMap<String, String>,
    path: &str,
    follow_last: bool,
) -> Result<String> {
    let mut queue: std::collections::VecDeque<String> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_string)
        .collect();
    let mut cur: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(c) = queue.pop_front() {
        if c == ".." {
            cur.pop();
            continue;
        }
        let last = queue.is_empty();
        let mut cand = cur.join("/");
        if !cand.is_empty() {
            cand.push('/');
        }
        cand.push_str(&c);
        if (!last || follow_last)
            && let Some(t) = links.get(&cand)
        {
            hops += 1;
            if hops > 40 {
                return Err(OciError::invalid(
                    format!("layer path {path}"),
                    format!(
                        "resolving it through the base image's symlinks met more than 40 links (a loop: /{cand} is one of them); fix the base's links or choose a destination that does not go through them"
                    ),
                ));
            }
            if t.starts_with('/') {
                cur.clear();
            }
            for tc in t.split('/').rev().filter(|c| !c.is_empty() && *c != ".") {
                queue.push_front(tc.to_string());
            }
            continue;
        }
        cur.push(c);
    }
    Ok(cur.join("/"))
}

/// Collects entries (metadata only; file contents are streamed at write time), then writes.
#[derive(Debug)]
pub struct LayerBuilder {
    opts: LayerOptions,
    /// Keyed by the tar path without a trailing `/`: sorted by path bytes, last insert wins.
    items: BTreeMap<String, Item>,
    walks: u32,
    threads: Option<usize>,
    check_stamps: bool,
}

impl LayerBuilder {
    pub fn new(opts: LayerOptions) -> Self {
        Self {
            opts,
            items: BTreeMap::new(),
            walks: 0,
            threads: None,
            check_stamps: false,
        }
    }

    /// Make [`LayerBuilder::write`] fail when a file found by [`LayerBuilder::add_dir`] is not,
    /// once its contents have been read, as the walk saw it (device, inode, size, mtime and
    /// ctime of the open file: any write changes its ctime). The layer then holds every such
    /// file exactly as it was when walked — what its [`LayerBuilder::source_key`] says — and the
    /// check costs one `fstat` per file on the tar thread, while the layer is compressed,
    /// instead of a second pass over the paths afterwards.
    pub fn check_stamps(&mut self) -> &mut Self {
        self.check_stamps = true;
        self
    }

    /// Number of compression threads (gzip deflate workers, zstd workers; default: the available
    /// parallelism). It never changes the output bytes, only the speed.
    pub fn set_threads(&mut self, threads: usize) -> &mut Self {
        self.threads = Some(threads.max(1));
        self
    }

    /// Number of entries added so far (parents that will be synthesized are not counted).
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// A key for this layer as its inputs are on disk now, without reading any file: equal keys
    /// give the same tar stream (the same diff_id) as long as every file keeps its stamp (a write
    /// changes its ctime). `None` when an entry's file was not stamped by
    /// [`LayerBuilder::add_dir`] (an [`EntryKind::File`] added by hand): such a layer has no key.
    pub fn source_key(&self) -> Option<SourceKey> {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        let mut field = |b: &[u8]| {
            h.update((b.len() as u64).to_le_bytes());
            h.update(b);
        };
        field(b"ocibuild-layer-source-v1");
        let o = &self.opts;
        field(&o.source_date_epoch.to_le_bytes());
        match o.owner {
            Some((u, g)) => field(format!("owner {u}:{g}").as_bytes()),
            None => field(b"owner none"),
        }
        field(&[u8::from(o.normalize_modes)]);
        let mut files = Vec::new();
        let mut newest = (i64::MIN, 0);
        let opt = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
        for (path, it) in &self.items {
            field(path.as_bytes());
            field(
                format!(
                    "{:o} {} {} {}",
                    it.mode,
                    opt(it.uid.map(u64::from)),
                    opt(it.gid.map(u64::from)),
                    opt(it.mtime)
                )
                .as_bytes(),
            );
            match &it.kind {
                Kind::File { src, inode, stamp } => {
                    let st = (*stamp)?;
                    field(b"file");
                    field(src.as_os_str().as_encoded_bytes());
                    field(
                        format!(
                            "{:?} {} {} {} {}.{} {}.{}",
                            inode,
                            st.dev,
                            st.ino,
                            st.size,
                            st.mtime.0,
                            st.mtime.1,
                            st.ctime.0,
                            st.ctime.1
                        )
                        .as_bytes(),
                    );
                    newest = newest.max(st.mtime).max(st.ctime);
                    files.push((src.clone(), st));
                }
                Kind::Bytes(b) => {
                    field(b"bytes");
                    field(&sha2::Sha256::digest(b));
                }
                Kind::Dir => field(b"dir"),
                Kind::Symlink(t) => {
                    field(b"symlink");
                    field(t.as_bytes());
                }
                Kind::Hardlink(t) => {
                    field(b"hardlink");
                    field(t.as_bytes());
                }
                Kind::Marker => field(b"marker"),
                Kind::Fifo => field(b"fifo"),
            }
        }
        let key = Digest::parse(&format!("sha256:{}", hex::encode(h.finalize()))).ok()?;
        Some(SourceKey { key, newest, files })
    }

    /// Give `path` (a layer path; a leading `/` is ignored) and every entry below it the owner
    /// `uid:gid`, overriding [`LayerOptions::owner`] for them alone (the parents stay as they
    /// are: a writable `app/data` never makes `app` writable). Entries added later are not
    /// affected. Returns how many entries it changed.
    pub fn set_owner_under(&mut self, path: &str, uid: u32, gid: u32) -> Result<usize> {
        let p = normalize_dest(path)?;
        let below = format!("{p}/");
        let mut n = 0;
        for (k, it) in self.items.iter_mut() {
            if p.is_empty() || *k == p || k.starts_with(&below) {
                it.uid = Some(uid);
                it.gid = Some(gid);
                n += 1;
            }
        }
        Ok(n)
    }

    /// Walk `src` (without following symlinks) and add everything below it under `dest` (e.g.
    /// `"app"`, or `""` for the root; a leading `/` is ignored). `src` itself becomes `dest`
    /// (not emitted when `dest` is the root). Keeps permission bits, symlinks, hard links (files
    /// with the same inode and more than one link become hard links to the first of them in
    /// sort order) and mtimes (clamped at write time). Sockets, fifos and devices are refused,
    /// naming the path. On error nothing is added.
    pub fn add_dir(&mut self, src: &Path, dest: &str) -> Result<()> {
        let dest = normalize_dest(dest)?;
        let walk = self.walks;
        self.walks += 1;
        let root = fs::symlink_metadata(src).map_err(OciError::io("stat", src))?;
        if !root.is_dir() {
            return Err(OciError::invalid(
                format!("source directory {}", src.display()),
                "it is not a directory",
            ));
        }
        let mut found = Vec::new();
        for entry in walkdir::WalkDir::new(src)
            .follow_links(false)
            .sort_by_file_name()
        {
            let entry = entry.map_err(|e| walk_error(e, src))?;
            let path = entry.path();
            let rel = path
                .strip_prefix(src)
                .map_err(|_| OciError::invalid("directory walk", "entry outside its root"))?;
            let mut layer_path = dest.clone();
            for comp in rel.components() {
                let name = comp
                    .as_os_str()
                    .to_str()
                    .ok_or_else(|| OciError::UnsupportedFile {
                        path: path.to_path_buf(),
                        why: "its name is not valid UTF-8 (layer paths are UTF-8)".into(),
                    })?;
                if !layer_path.is_empty() {
                    layer_path.push('/');
                }
                layer_path.push_str(name);
            }
            if layer_path.is_empty() {
                continue; // the source root itself, added at the layer root: not an entry
            }
            if file_name(&layer_path).starts_with(WHITEOUT_PREFIX) {
                return Err(OciError::UnsupportedFile {
                    path: path.to_path_buf(),
                    why: "names starting with `.wh.` are reserved for OCI whiteouts".into(),
                });
            }
            let meta = entry.metadata().map_err(|e| walk_error(e, src))?;
            let ft = meta.file_type();
            let kind = if ft.is_dir() {
                Kind::Dir
            } else if ft.is_file() {
                let inode = (meta.nlink() > 1).then(|| (walk, meta.dev(), meta.ino()));
                Kind::File {
                    src: path.to_path_buf(),
                    inode,
                    stamp: Some(FileStamp::of(&meta)),
                }
            } else if ft.is_symlink() {
                let target = fs::read_link(path).map_err(OciError::io("read link", path))?;
                let target = target.into_os_string().into_string().map_err(|_| {
                    OciError::UnsupportedFile {
                        path: path.to_path_buf(),
                        why: "its symlink target is not valid UTF-8".into(),
                    }
                })?;
                Kind::Symlink(target)
            } else {
                let what = if ft.is_socket() {
                    "a unix socket"
                } else if ft.is_fifo() {
                    "a named pipe (fifo)"
                } else if ft.is_char_device() {
                    "a character device"
                } else if ft.is_block_device() {
                    "a block device"
                } else {
                    "of an unknown file type"
                };
                return Err(OciError::UnsupportedFile {
                    path: path.to_path_buf(),
                    why: format!("it is {what}, which cannot be stored in an image layer"),
                });
            };
            let mode = if ft.is_symlink() {
                0o777
            } else if self.opts.normalize_modes {
                normalized_mode(meta.mode(), ft.is_dir())
            } else {
                meta.mode() & 0o7777
            };
            found.push((
                layer_path,
                Item {
                    kind,
                    mode,
                    uid: None,
                    gid: None,
                    mtime: Some(u64::try_from(meta.mtime()).unwrap_or(0)),
                },
            ));
        }
        self.items.extend(found);
        Ok(())
    }

    /// Move the entries whose path goes through a symlink that the layers below leave (`links`:
    /// path → target, e.g. [`crate::validate::image_symlinks`] of the base) to where the link
    /// leads, resolved as a chroot would (an absolute target from the image's root, `..` stops
    /// there): over a merged-/usr base's `bin -> usr/bin`, `bin/app` becomes `usr/bin/app` and a
    /// directory entry `bin` becomes `usr/bin` instead of replacing the link (which would hide
    /// every program under `/usr/bin`). A file or a link at the link's own path keeps it: it
    /// replaces the link, as it says. Hard-link targets and whiteouts move the same way.
    pub fn follow_lower_links(&mut self, links: &BTreeMap<String, String>) -> Result<()> {
        if links.is_empty() {
            return Ok(());
        }
        let items = std::mem::take(&mut self.items);
        let mut out: BTreeMap<String, Item> = BTreeMap::new();
        for (path, mut item) in items {
            let is_dir = matches!(item.kind, Kind::Dir);
            let new = resolve_through_links(links, &path, is_dir)?;
            if let Kind::Hardlink(t) = &mut item.kind {
                *t = resolve_through_links(links, t, false)?;
            }
            if new.is_empty() {
                continue; // a directory entry for the root itself
            }
            if is_dir && new != path && out.contains_key(&new) {
                continue; // the link's target has its own entry
            }
            out.insert(new, item);
        }
        self.items = out;
        Ok(())
    }

    /// Add one entry, replacing any earlier entry with the same path. Validates the path (and a
    /// hard link's target).
    pub fn add_entry(&mut self, e: LayerEntry) -> Result<()> {
        let LayerEntry {
            path,
            kind,
            mode,
            uid,
            gid,
            mtime,
        } = e;
        let (key, kind) = match kind {
            EntryKind::Whiteout => {
                let p = validate_path(&path)?;
                let (dir, name) = split_parent(&p);
                (join(dir, &format!("{WHITEOUT_PREFIX}{name}")), Kind::Marker)
            }
            EntryKind::OpaqueDir => {
                let p = match path.strip_suffix('/').unwrap_or(&path) {
                    "" => String::new(),
                    _ => validate_path(&path)?,
                };
                (join(&p, OPAQUE_MARKER), Kind::Marker)
            }
            other => {
                let p = validate_path(&path)?;
                let kind = match other {
                    EntryKind::File(src) => Kind::File {
                        src,
                        inode: None,
                        stamp: None,
                    },
                    EntryKind::Bytes(b) => Kind::Bytes(b),
                    EntryKind::Dir => Kind::Dir,
                    EntryKind::Fifo => Kind::Fifo,
                    EntryKind::Symlink(t) => {
                        if t.is_empty() || t.contains('\0') {
                            return Err(bad_path(
                                &path,
                                "a symlink target must be non-empty and contain no NUL byte",
                            ));
                        }
                        Kind::Symlink(t)
                    }
                    EntryKind::Hardlink(t) => {
                        let t = validate_path(&t)?;
                        if t == p {
                            return Err(bad_path(&path, "a hard link cannot point at itself"));
                        }
                        Kind::Hardlink(t)
                    }
                    EntryKind::Whiteout | EntryKind::OpaqueDir => Kind::Marker,
                };
                (p, kind)
            }
        };
        self.items.insert(
            key,
            Item {
                kind,
                mode,
                uid,
                gid,
                mtime,
            },
        );
        Ok(())
    }

    /// Sort by path bytes, emit missing parent directories (mode 0755), write the pax tar through
    /// the compressor into `out`, hashing the tar stream (diff_id) and the compressed stream
    /// (digest) in the same pass. Returns the writer back (not flushed beyond `Write::flush`).
    /// All validation (levels, hard link targets, parents that are not directories) happens
    /// before the first byte is written.
    pub fn write<W: Write>(self, out: W) -> Result<(W, LayerInfo)> {
        self.write_inner(out, None)
    }

    /// [`LayerBuilder::write`], also copying the uncompressed tar stream into `tap` as it is
    /// produced (in the same pass: e.g. a pipe to an extractor that applies the layer while it
    /// is compressed). `tap` is flushed at the end; a failing tap fails the write.
    pub fn write_tapped<W: Write>(
        self,
        out: W,
        tap: &mut (dyn Write + Send),
    ) -> Result<(W, LayerInfo)> {
        self.write_inner(out, Some(tap))
    }

    fn write_inner<W: Write>(
        self,
        out: W,
        tap: Option<&mut (dyn Write + Send)>,
    ) -> Result<(W, LayerInfo)> {
        let compression = self.opts.compression;
        let level = resolve_level(compression, self.opts.level)?;
        let threads = self.threads.unwrap_or_else(default_threads);
        let plan = self.plan()?;
        run_pipeline(Source::Plan(plan), tap, out, compression, level, threads)
    }

    /// The entries exactly as [`LayerBuilder::write`] would emit them, in tar order, without
    /// reading or writing any file contents: missing parents added (`0755`), hard-link groups
    /// resolved (the group's first path carries the contents, the others are
    /// [`EntryKind::Hardlink`]s to it with its metadata), ownership and clamped mtimes filled
    /// in, symlinks `0777`; whiteout markers come back as [`EntryKind::Whiteout`] /
    /// [`EntryKind::OpaqueDir`]. A builder fed these entries (with the same options) writes the
    /// same tar stream as this one would.
    pub fn into_entries(self) -> Result<Vec<LayerEntry>> {
        let plan = self.plan()?;
        let mut out = Vec::with_capacity(plan.len());
        for p in plan {
            let id = |v: u64, what: &str| {
                u32::try_from(v).map_err(|_| bad_path(&p.name, &format!("{what} {v} too large")))
            };
            let (uid, gid) = (id(p.uid, "uid")?, id(p.gid, "gid")?);
            let kind = match (p.typeflag, p.body) {
                (b'5', _) => EntryKind::Dir,
                (b'2', _) => EntryKind::Symlink(p.link),
                (b'1', _) => EntryKind::Hardlink(p.link),
                (b'6', _) => EntryKind::Fifo,
                (_, Body::File(src, _)) => EntryKind::File(src),
                (_, Body::Bytes(b)) => EntryKind::Bytes(b),
                (_, Body::Empty) => {
                    // Only whiteout markers are bodiless regular files.
                    let (dir, name) = split_parent(&p.name);
                    let path = if name == OPAQUE_MARKER {
                        out.push(LayerEntry {
                            path: dir.to_string(),
                            kind: EntryKind::OpaqueDir,
                            mode: p.mode,
                            uid: Some(uid),
                            gid: Some(gid),
                            mtime: Some(p.mtime),
                        });
                        continue;
                    } else {
                        join(dir, name.strip_prefix(WHITEOUT_PREFIX).unwrap_or(name))
                    };
                    out.push(LayerEntry {
                        path,
                        kind: EntryKind::Whiteout,
                        mode: p.mode,
                        uid: Some(uid),
                        gid: Some(gid),
                        mtime: Some(p.mtime),
                    });
                    continue;
                }
            };
            let path = p.name.trim_end_matches('/').to_string();
            out.push(LayerEntry {
                path,
                kind,
                mode: p.mode,
                uid: Some(uid),
                gid: Some(gid),
                mtime: Some(p.mtime),
            });
        }
        Ok(out)
    }

    /// Resolve parents, hard links and ownership into the exact list of tar entries.
    fn plan(self) -> Result<Vec<Planned>> {
        let LayerOptions {
            source_date_epoch: epoch,
            owner,
            ..
        } = self.opts;
        let mut items = self.items;
        let check_stamps = self.check_stamps;

        // Missing parents; existing parents must be directories.
        let mut missing = BTreeSet::new();
        for key in items.keys() {
            let mut end = key.len();
            while let Some(i) = key[..end].rfind('/') {
                let parent = &key[..i];
                if let Some(it) = items.get(parent) {
                    if !matches!(it.kind, Kind::Dir) {
                        return Err(bad_path(
                            key,
                            &format!("its parent `{parent}` is not a directory in this layer"),
                        ));
                    }
                    break;
                }
                if !missing.insert(parent.to_string()) {
                    break;
                }
                end = i;
            }
        }
        for parent in missing {
            items.insert(
                parent,
                Item {
                    kind: Kind::Dir,
                    mode: 0o755,
                    uid: None,
                    gid: None,
                    mtime: None,
                },
            );
        }
        let mut items: Vec<(String, Item)> = items.into_iter().collect();
        let links = resolve_links(&items)?;

        let (owner_uid, owner_gid) = owner.unwrap_or((0, 0));
        let meta = |it: &Item| {
            (
                it.mode & 0o7777,
                u64::from(it.uid.unwrap_or(owner_uid)),
                u64::from(it.gid.unwrap_or(owner_gid)),
                it.mtime.unwrap_or(epoch).min(epoch),
            )
        };
        // Bodies are moved out of `items` (a group's content entry sorts after its leader at
        // most once, and is itself written as a link), so `Bytes` are never copied.
        let take_body = |it: &mut Item| match std::mem::replace(&mut it.kind, Kind::Marker) {
            Kind::File { src, stamp, .. } => Body::File(src, stamp.filter(|_| check_stamps)),
            Kind::Bytes(b) => Body::Bytes(b),
            _ => Body::Empty,
        };
        let mut plan = Vec::with_capacity(items.len());
        for i in 0..items.len() {
            let path = items[i].0.clone();
            let planned = match links.get(&i) {
                Some(&LinkRole { leader, content }) => {
                    let m = meta(&items[content].1);
                    if leader == i {
                        let body = take_body(&mut items[content].1);
                        Planned::new(path, b'0', m, body)
                    } else {
                        let mut p = Planned::new(path, b'1', m, Body::Empty);
                        p.link = items[leader].0.clone();
                        p
                    }
                }
                None => {
                    let m = meta(&items[i].1);
                    match &items[i].1.kind {
                        Kind::File { .. } | Kind::Bytes(_) => {
                            let body = take_body(&mut items[i].1);
                            Planned::new(path, b'0', m, body)
                        }
                        Kind::Marker => Planned::new(path, b'0', m, Body::Empty),
                        Kind::Dir => Planned::new(format!("{path}/"), b'5', m, Body::Empty),
                        Kind::Fifo => Planned::new(path, b'6', m, Body::Empty),
                        Kind::Symlink(t) => {
                            let mut p =
                                Planned::new(path, b'2', (0o777, m.1, m.2, m.3), Body::Empty);
                            p.link = t.clone();
                            p
                        }
                        // resolve_links gives every hard link a role
                        Kind::Hardlink(t) => {
                            return Err(bad_path(&path, &format!("unresolved hard link to `{t}`")));
                        }
                    }
                }
            };
            plan.push(planned);
        }
        Ok(plan)
    }
}

/// A member of a hard-link group: the group's first path (which carries the data) and the entry
/// the data and metadata come from.
#[derive(Clone, Copy, Debug)]
struct LinkRole {
    leader: usize,
    content: usize,
}

/// Group files that share an inode (from one walk) and user hard links with their targets.
fn resolve_links(items: &[(String, Item)]) -> Result<HashMap<usize, LinkRole>> {
    let mut parent: HashMap<usize, usize> = HashMap::new();
    fn find(parent: &mut HashMap<usize, usize>, mut x: usize) -> usize {
        while let Some(&p) = parent.get(&x) {
            if p == x {
                break;
            }
            let gp = parent.get(&p).copied().unwrap_or(p);
            parent.insert(x, gp);
            x = p;
        }
        x
    }
    fn union(parent: &mut HashMap<usize, usize>, a: usize, b: usize) {
        parent.entry(a).or_insert(a);
        parent.entry(b).or_insert(b);
        let (ra, rb) = (find(parent, a), find(parent, b));
        if ra != rb {
            parent.insert(ra.max(rb), ra.min(rb));
        }
    }
    let mut first_of_inode: HashMap<InodeKey, usize> = HashMap::new();
    for (i, (path, it)) in items.iter().enumerate() {
        match &it.kind {
            Kind::File {
                inode: Some(key), ..
            } => {
                let first = *first_of_inode.entry(*key).or_insert(i);
                if first != i {
                    union(&mut parent, first, i);
                }
            }
            Kind::Hardlink(target) => {
                let j = items
                    .binary_search_by(|(k, _)| k.as_str().cmp(target))
                    .map_err(|_| {
                        bad_path(
                            path,
                            &format!("hard link target `{target}` is not in this layer"),
                        )
                    })?;
                if !(items[j].1.kind.has_content() || matches!(items[j].1.kind, Kind::Hardlink(_)))
                {
                    return Err(bad_path(
                        path,
                        &format!("hard link target `{target}` is not a regular file"),
                    ));
                }
                union(&mut parent, i, j);
            }
            _ => {}
        }
    }
    let members: Vec<usize> = {
        let mut m: Vec<usize> = parent.keys().copied().collect();
        m.sort_unstable();
        m
    };
    let mut leader_of: HashMap<usize, usize> = HashMap::new();
    let mut content_of: HashMap<usize, usize> = HashMap::new();
    for &i in &members {
        let root = find(&mut parent, i);
        leader_of.entry(root).or_insert(i); // members are ascending: the first is the smallest path
        if items[i].1.kind.has_content() {
            content_of.entry(root).or_insert(i);
        }
    }
    let mut roles = HashMap::new();
    for &i in &members {
        let root = find(&mut parent, i);
        let leader = leader_of.get(&root).copied().unwrap_or(i);
        let content = content_of.get(&root).copied().ok_or_else(|| {
            bad_path(
                &items[i].0,
                "hard links that never reach a regular file (a cycle)",
            )
        })?;
        roles.insert(i, LinkRole { leader, content });
    }
    Ok(roles)
}

/// One tar entry, ready to be written.
#[derive(Debug)]
struct Planned {
    /// The tar path (directories end in `/`).
    name: String,
    typeflag: u8,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    link: String,
    body: Body,
}

impl Planned {
    fn new(
        name: String,
        typeflag: u8,
        (mode, uid, gid, mtime): (u32, u64, u64, u64),
        body: Body,
    ) -> Self {
        Self {
            name,
            typeflag,
            mode,
            uid,
            gid,
            mtime,
            link: String::new(),
            body,
        }
    }
}

#[derive(Debug)]
enum Body {
    Empty,
    Bytes(Vec<u8>),
    /// A file, and the stamp it must still have once read ([`LayerBuilder::check_stamps`]).
    File(PathBuf, Option<FileStamp>),
}

// ---------------------------------------------------------------------------------------------
// Paths

fn bad_path(path: &str, detail: &str) -> OciError {
    OciError::invalid(format!("layer path `{path}`"), detail)
}

/// Check a layer path; returns it without a trailing `/`.
fn validate_path(path: &str) -> Result<String> {
    let p = path.strip_suffix('/').unwrap_or(path);
    if p.is_empty() {
        return Err(bad_path(path, "the path is empty"));
    }
    if p.starts_with('/') {
        return Err(bad_path(path, "it must be relative (no leading `/`)"));
    }
    if p.contains('\0') {
        return Err(bad_path(path, "it contains a NUL byte"));
    }
    for comp in p.split('/') {
        match comp {
            "" => return Err(bad_path(path, "it has an empty component (`//`)")),
            "." | ".." => {
                return Err(bad_path(path, &format!("it has a `{comp}` component")));
            }
            c if c.starts_with(WHITEOUT_PREFIX) => {
                return Err(bad_path(
                    path,
                    "names starting with `.wh.` are reserved for OCI whiteouts (use EntryKind::Whiteout or OpaqueDir)",
                ));
            }
            _ => {}
        }
    }
    Ok(p.to_string())
}

/// `add_dir`'s destination: `""`, `"."` and `"/"` are the root; a leading `/` or `./` is dropped.
fn normalize_dest(dest: &str) -> Result<String> {
    let d = dest.trim_start_matches('/');
    let d = d.strip_prefix("./").unwrap_or(d);
    if d.is_empty() || d == "." {
        return Ok(String::new());
    }
    validate_path(d)
}

fn split_parent(p: &str) -> (&str, &str) {
    match p.rfind('/') {
        Some(i) => (&p[..i], &p[i + 1..]),
        None => ("", p),
    }
}

fn file_name(p: &str) -> &str {
    split_parent(p).1
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

fn walk_error(e: walkdir::Error, root: &Path) -> OciError {
    let path = e.path().unwrap_or(root).to_path_buf();
    let source = e
        .into_io_error()
        .unwrap_or_else(|| io::Error::other("directory walk failed"));
    OciError::Io {
        op: "read directory",
        path,
        source,
    }
}

fn resolve_level(c: Compression, level: Option<u32>) -> Result<u32> {
    match c {
        Compression::None => Ok(0),
        Compression::Gzip => {
            let l = level.unwrap_or(6);
            if l > 9 {
                return Err(OciError::invalid(
                    "gzip level",
                    format!("{l} is not in 0..=9"),
                ));
            }
            Ok(l)
        }
        Compression::Zstd => {
            #[cfg(not(feature = "zstd"))]
            {
                let _ = level;
                Err(OciError::Unsupported {
                    what: "zstd layer compression".into(),
                    hint: "this build of ocibuild was compiled without the `zstd` feature".into(),
                })
            }
            #[cfg(feature = "zstd")]
            {
                let l = level.unwrap_or(3);
                if !(1..=22).contains(&l) {
                    return Err(OciError::invalid(
                        "zstd level",
                        format!("{l} is not in 1..=22"),
                    ));
                }
                Ok(l)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tar headers

fn put_octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let s = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(&s.as_bytes()[s.len() - digits..]);
    field[digits] = 0;
}

fn put_str(field: &mut [u8], s: &str) {
    let b = s.as_bytes();
    field[..b.len()].copy_from_slice(b);
}

/// Split a path into ustar `(prefix, name)`, as Go's `archive/tar` does; `None` if it needs pax.
fn ustar_split(path: &str) -> Option<(&str, &str)> {
    if !path.is_ascii() {
        return None;
    }
    let b = path.as_bytes();
    if b.len() <= 100 {
        return Some(("", path));
    }
    let mut length = b.len();
    if length > 156 {
        length = 156;
    } else if b[length - 1] == b'/' {
        length -= 1;
    }
    let i = path[..length].rfind('/')?;
    let nlen = b.len() - i - 1;
    if i == 0 || nlen > 100 || nlen == 0 || i > 155 {
        return None;
    }
    Some((&path[..i], &path[i + 1..]))
}

/// The ASCII characters of `s`, at most `max` of them.
fn ascii_truncated(s: &str, max: usize) -> String {
    s.chars().filter(char::is_ascii).take(max).collect()
}

#[allow(clippy::too_many_arguments)]
fn ustar_block(
    name: &str,
    prefix: &str,
    typeflag: u8,
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    mtime: u64,
    link: &str,
) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    put_str(&mut h[0..100], name);
    put_octal(&mut h[100..108], u64::from(mode));
    put_octal(&mut h[108..116], uid);
    put_octal(&mut h[116..124], gid);
    put_octal(&mut h[124..136], size);
    put_octal(&mut h[136..148], mtime);
    h[148..156].fill(b' ');
    h[156] = typeflag;
    put_str(&mut h[157..257], link);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    // uname 265..297 and gname 297..329 stay empty
    put_octal(&mut h[329..337], 0);
    put_octal(&mut h[337..345], 0);
    put_str(&mut h[345..500], prefix);
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    put_octal(&mut h[148..155], u64::from(sum));
    h[155] = b' ';
    h
}

/// `"<len> <key>=<value>\n"`, where `<len>` counts the whole record including itself.
fn pax_record(key: &str, value: &str) -> String {
    let payload = key.len() + value.len() + 3;
    let mut len = payload + 1;
    loop {
        let next = payload + len.to_string().len();
        if next == len {
            break;
        }
        len = next;
    }
    format!("{len} {key}={value}\n")
}

/// The header block(s) of one entry: an optional pax extended header (with its records), then
/// the ustar header.
fn encode_header(p: &Planned, size: u64, out: &mut Vec<u8>) {
    let mut pax: Vec<(&str, String)> = Vec::new();
    let name_owned;
    let (prefix, name) = match ustar_split(&p.name) {
        Some(split) => split,
        None => {
            pax.push(("path", p.name.clone()));
            name_owned = ascii_truncated(&p.name, 100);
            ("", name_owned.as_str())
        }
    };
    let link_owned;
    let link = if p.link.len() <= 100 && p.link.is_ascii() {
        p.link.as_str()
    } else {
        pax.push(("linkpath", p.link.clone()));
        link_owned = ascii_truncated(&p.link, 100);
        link_owned.as_str()
    };
    let mut numeric = |key: &'static str, v: u64, max: u64| {
        if v <= max {
            v
        } else {
            pax.push((key, v.to_string()));
            0
        }
    };
    let uid = numeric("uid", p.uid, MAX_OCTAL_7);
    let gid = numeric("gid", p.gid, MAX_OCTAL_7);
    let size_field = numeric("size", size, MAX_OCTAL_11);
    let mtime = numeric("mtime", p.mtime, MAX_OCTAL_11);
    if !pax.is_empty() {
        pax.sort_by(|a, b| a.0.cmp(b.0));
        let records: String = pax.iter().map(|(k, v)| pax_record(k, v)).collect();
        let base = file_name(p.name.trim_end_matches('/'));
        let xname = ascii_truncated(&format!("PaxHeaders/{base}"), 100);
        out.extend_from_slice(&ustar_block(
            &xname,
            "",
            b'x',
            0o644,
            0,
            0,
            records.len() as u64,
            mtime,
            "",
        ));
        out.extend_from_slice(records.as_bytes());
        out.resize(out.len() + padding(records.len() as u64), 0);
    }
    out.extend_from_slice(&ustar_block(
        name, prefix, p.typeflag, p.mode, uid, gid, size_field, mtime, link,
    ));
}

fn padding(len: u64) -> usize {
    let rem = (len % BLOCK as u64) as usize;
    if rem == 0 { 0 } else { BLOCK - rem }
}

// ---------------------------------------------------------------------------------------------
// The producer: tar stream → fixed-size chunks, hashing the diff_id

/// Ships a chunk to the consumer; `false` when the consumer has stopped.
type Ship<'a> = dyn FnMut(Vec<u8>, bool) -> bool + 'a;

/// Returned by the producer when the consumer went away (its own error is the one to report).
fn consumer_gone() -> OciError {
    OciError::Stream {
        what: "layer writer".into(),
        source: io::Error::new(io::ErrorKind::BrokenPipe, "the blob writer stopped"),
    }
}

struct TarSink<'a> {
    /// Always `GZIP_CHUNK_SIZE` long; `fill` bytes are used.
    buf: Vec<u8>,
    fill: usize,
    hash: HashingWriter<io::Sink>,
    ship: &'a mut Ship<'a>,
    /// Chunk buffers the consumer is done with, used again (no allocation, zeroing and page
    /// faults for each MiB).
    spare: Option<&'a Receiver<Vec<u8>>>,
}

impl<'a> TarSink<'a> {
    fn new(ship: &'a mut Ship<'a>, spare: Option<&'a Receiver<Vec<u8>>>) -> Self {
        Self {
            buf: vec![0; GZIP_CHUNK_SIZE],
            fill: 0,
            hash: HashingWriter::new(io::sink()),
            ship,
            spare,
        }
    }

    /// A `GZIP_CHUNK_SIZE` buffer: a spare one (its old bytes are overwritten before they are
    /// shipped: a chunk is cut to `fill`), else a new one.
    fn next_buffer(&self) -> Vec<u8> {
        if let Some(b) = self
            .spare
            .and_then(|rx| rx.try_recv().ok())
            .filter(|b| b.len() == GZIP_CHUNK_SIZE)
        {
            return b;
        }
        vec![0; GZIP_CHUNK_SIZE]
    }

    fn ship_chunk(&mut self, last: bool) -> Result<()> {
        let next = if last { Vec::new() } else { self.next_buffer() };
        let mut chunk = std::mem::replace(&mut self.buf, next);
        chunk.truncate(self.fill);
        self.fill = 0;
        self.hash
            .write_all(&chunk)
            .map_err(OciError::stream("hashing the layer"))?;
        if (self.ship)(chunk, last) {
            Ok(())
        } else {
            Err(consumer_gone())
        }
    }

    fn write_bytes(&mut self, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            let n = (GZIP_CHUNK_SIZE - self.fill).min(data.len());
            self.buf[self.fill..self.fill + n].copy_from_slice(&data[..n]);
            self.fill += n;
            data = &data[n..];
            if self.fill == GZIP_CHUNK_SIZE {
                self.ship_chunk(false)?;
            }
        }
        Ok(())
    }

    /// Copy exactly `len` bytes of `file` straight into the chunk buffer.
    fn copy_file(&mut self, file: &mut File, mut len: u64, path: &Path) -> Result<()> {
        while len > 0 {
            let want = ((GZIP_CHUNK_SIZE - self.fill) as u64).min(len) as usize;
            let n = match file.read(&mut self.buf[self.fill..self.fill + want]) {
                Ok(0) => {
                    return Err(OciError::Io {
                        op: "read",
                        path: path.to_path_buf(),
                        source: io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the file shrank while it was being added to the layer",
                        ),
                    });
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(OciError::io("read", path)(e)),
            };
            self.fill += n;
            len -= n as u64;
            if self.fill == GZIP_CHUNK_SIZE {
                self.ship_chunk(false)?;
            }
        }
        Ok(())
    }

    fn pad(&mut self, len: u64) -> Result<()> {
        const ZEROS: [u8; BLOCK] = [0; BLOCK];
        self.write_bytes(&ZEROS[..padding(len)])
    }

    /// The end-of-archive blocks, the last chunk; returns (diff_id, tar size).
    fn finish(mut self) -> Result<(Digest, u64)> {
        self.write_bytes(&[0u8; 2 * BLOCK])?;
        self.finish_as_is()
    }

    /// The last chunk (what is buffered, possibly nothing); returns (diff_id, tar size).
    fn finish_as_is(mut self) -> Result<(Digest, u64)> {
        self.ship_chunk(true)?;
        let (_, d, n) = self.hash.finish();
        Ok((d, n))
    }
}

/// Where a layer's tar stream comes from.
enum Source<'a> {
    /// The entries a [`LayerBuilder`] planned: the tar stream is written from them.
    Plan(Vec<Planned>),
    /// A layer blob compressed as the given [`Compression`]: its tar stream, decompressed on
    /// the producer thread, is taken as it is.
    Blob(Box<dyn Read + Send + 'a>, Compression),
}

/// Write the whole tar stream through `ship`.
fn produce(
    src: Source<'_>,
    ship: &mut Ship<'_>,
    tap: Option<&mut (dyn Write + Send)>,
    spare: Option<&Receiver<Vec<u8>>>,
) -> Result<(Digest, u64)> {
    let Some(tap) = tap else {
        return produce_from(src, ship, spare);
    };
    let mut tap_err = None;
    let mut tapped = |chunk: Vec<u8>, last: bool| {
        let r = tap.write_all(&chunk).and_then(|()| match last {
            true => tap.flush(),
            false => Ok(()),
        });
        match r {
            Ok(()) => ship(chunk, last),
            Err(e) => {
                tap_err = Some(e);
                false
            }
        }
    };
    let r = produce_from(src, &mut tapped, spare);
    match tap_err {
        Some(e) => Err(OciError::stream("copying the layer's tar stream")(e)),
        None => r,
    }
}

fn produce_from(
    src: Source<'_>,
    ship: &mut Ship<'_>,
    spare: Option<&Receiver<Vec<u8>>>,
) -> Result<(Digest, u64)> {
    match src {
        Source::Plan(plan) => produce_into(plan, ship, spare),
        Source::Blob(blob, c) => produce_from_blob(blob, c, ship, spare),
    }
}

/// A blob's tar stream, decompressed, cut into the same chunks as a written one (so it is
/// compressed to the same bytes); the tar stream is taken as it is (it already ends with its
/// end-of-archive blocks).
fn produce_from_blob(
    blob: Box<dyn Read + Send + '_>,
    c: Compression,
    ship: &mut Ship<'_>,
    spare: Option<&Receiver<Vec<u8>>>,
) -> Result<(Digest, u64)> {
    let mut r = crate::extract::decompress(blob, c)?;
    let mut sink = TarSink::new(ship, spare);
    loop {
        let fill = sink.fill;
        let n = match r.read(&mut sink.buf[fill..]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(OciError::stream("reading the stored layer blob")(e)),
        };
        sink.fill += n;
        if sink.fill == GZIP_CHUNK_SIZE {
            sink.ship_chunk(false)?;
        }
    }
    sink.finish_as_is()
}

fn produce_into(
    plan: Vec<Planned>,
    ship: &mut Ship<'_>,
    spare: Option<&Receiver<Vec<u8>>>,
) -> Result<(Digest, u64)> {
    let mut sink = TarSink::new(ship, spare);
    let mut header = Vec::with_capacity(3 * BLOCK);
    for p in plan {
        header.clear();
        crate::failpoint::hit("layer-write");
        match &p.body {
            Body::Empty => {
                encode_header(&p, 0, &mut header);
                sink.write_bytes(&header)?;
            }
            Body::Bytes(b) => {
                encode_header(&p, b.len() as u64, &mut header);
                sink.write_bytes(&header)?;
                sink.write_bytes(b)?;
                sink.pad(b.len() as u64)?;
            }
            Body::File(src, stamp) => {
                // O_NOFOLLOW: never read through a symlink swapped in after the walk;
                // O_NONBLOCK: never hang on a fifo swapped in (refused below).
                let mut f = OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                    .open(src)
                    .map_err(OciError::io("open", src))?;
                let meta = f.metadata().map_err(OciError::io("stat", src))?;
                if !meta.is_file() {
                    return Err(OciError::UnsupportedFile {
                        path: src.clone(),
                        why: "it is not a regular file (any more)".into(),
                    });
                }
                let size = meta.len();
                encode_header(&p, size, &mut header);
                sink.write_bytes(&header)?;
                sink.copy_file(&mut f, size, src)?;
                if let Some(st) = stamp {
                    let now = f.metadata().map_err(OciError::io("stat", src))?;
                    if FileStamp::of(&now) != *st {
                        return Err(OciError::invalid(
                            "layer input",
                            format!(
                                "{} changed while it was being packed; run again when nothing writes to it",
                                src.display()
                            ),
                        ));
                    }
                }
                sink.pad(size)?;
            }
        }
    }
    sink.finish()
}

// ---------------------------------------------------------------------------------------------
// Pipelines

struct Done<W> {
    out: W,
    /// `None` when the blob is the tar stream itself.
    digest: Option<Digest>,
    size: u64,
    diff_id: Digest,
    uncompressed_size: u64,
}

/// What a consumer returns: `Ok(None)` when the chunk stream ended early (the producer failed).
type Consumed<W> = Result<Option<(W, Option<Digest>, u64)>>;

/// Spawn a named pipeline thread; a failure to spawn is an error, not a panic.
fn spawn<'scope, 'env, T, F>(
    s: &'scope thread::Scope<'scope, 'env>,
    name: &str,
    f: F,
) -> Result<thread::ScopedJoinHandle<'scope, T>>
where
    F: FnOnce() -> T + Send + 'scope,
    T: Send + 'scope,
{
    thread::Builder::new()
        .name(name.to_string())
        .spawn_scoped(s, f)
        .map_err(OciError::stream("starting a layer writer thread"))
}

fn join_thread<T>(h: thread::ScopedJoinHandle<'_, T>) -> Result<T> {
    h.join().map_err(|_| OciError::Stream {
        what: "layer writer".into(),
        source: io::Error::other("a layer writer thread panicked"),
    })
}

fn finish<W>(consumed: Consumed<W>, produced: Result<(Digest, u64)>) -> Result<Done<W>> {
    let (out, digest, size) = match consumed? {
        Some(c) => c,
        None => {
            produced?;
            return Err(OciError::Stream {
                what: "layer writer".into(),
                source: io::Error::other("the tar stream ended early"),
            });
        }
    };
    let (diff_id, uncompressed_size) = produced?;
    Ok(Done {
        out,
        digest,
        size,
        diff_id,
        uncompressed_size,
    })
}

/// The tar stream of `src` through the compressor into `out`, hashed before (diff_id) and after
/// (digest).
fn run_pipeline<W: Write>(
    src: Source<'_>,
    tap: Option<&mut (dyn Write + Send)>,
    out: W,
    compression: Compression,
    level: u32,
    threads: usize,
) -> Result<(W, LayerInfo)> {
    let done = match compression {
        Compression::None => run_serial(src, tap, |rx| consume_plain(out, rx))?,
        Compression::Gzip => run_gzip(src, tap, out, level, threads)?,
        Compression::Zstd => run_zstd(src, tap, out, level, threads)?,
    };
    let Done {
        out,
        digest,
        size,
        diff_id,
        uncompressed_size,
    } = done;
    let (digest, size) = match digest {
        Some(d) => (d, size),
        None => (diff_id.clone(), uncompressed_size),
    };
    Ok((
        out,
        LayerInfo {
            digest,
            diff_id,
            size,
            uncompressed_size,
            media_type: compression.oci_layer_media_type(),
            compression,
        },
    ))
}

/// Compress a layer blob again: `blob` (compressed as `from`) is decompressed and its tar stream
/// compressed as `to` at `level` (None: the default) into `out`. The bytes are those
/// [`LayerBuilder::write`] gives for the same tar stream with the same compression and level,
/// so a layer written once fast (a build stage's) and converted later is the layer a build
/// that wrote it as asked made. The returned `diff_id` is the tar stream's: the caller checks
/// it against what it expects of the blob.
pub fn recompress<W: Write>(
    blob: impl Read + Send,
    from: Compression,
    to: Compression,
    level: Option<u32>,
    out: W,
) -> Result<(W, LayerInfo)> {
    let level = resolve_level(to, level)?;
    run_pipeline(
        Source::Blob(Box::new(blob), from),
        None,
        out,
        to,
        level,
        default_threads(),
    )
}

/// Compression threads when none are set: the available parallelism.
fn default_threads() -> usize {
    thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Producer thread → channel of chunks → `consume` on the calling thread.
fn run_serial<W, F>(
    src: Source<'_>,
    tap: Option<&mut (dyn Write + Send)>,
    consume: F,
) -> Result<Done<W>>
where
    F: FnOnce(&Receiver<(Vec<u8>, bool)>) -> Consumed<W>,
{
    thread::scope(|s| {
        let (tx, rx) = mpsc::sync_channel::<(Vec<u8>, bool)>(4);
        let producer = spawn(s, "ocibuild-tar", move || {
            let mut ship = |chunk: Vec<u8>, last: bool| tx.send((chunk, last)).is_ok();
            produce(src, &mut ship, tap, None)
        })?;
        let consumed = consume(&rx);
        drop(rx);
        let produced = join_thread(producer)?;
        finish(consumed, produced)
    })
}

fn write_err(e: io::Error) -> OciError {
    OciError::stream("writing the layer blob")(e)
}

fn consume_plain<W: Write>(mut out: W, rx: &Receiver<(Vec<u8>, bool)>) -> Consumed<W> {
    let mut n = 0u64;
    loop {
        let Ok((chunk, last)) = rx.recv() else {
            return Ok(None);
        };
        out.write_all(&chunk).map_err(write_err)?;
        n += chunk.len() as u64;
        if last {
            break;
        }
    }
    out.flush().map_err(write_err)?;
    Ok(Some((out, None, n)))
}

#[cfg(feature = "zstd")]
fn run_zstd<W: Write>(
    src: Source<'_>,
    tap: Option<&mut (dyn Write + Send)>,
    out: W,
    level: u32,
    threads: usize,
) -> Result<Done<W>> {
    run_serial(src, tap, |rx| {
        let zerr = OciError::stream("zstd compression");
        let level = i32::try_from(level).unwrap_or(3);
        let mut enc = zstd::stream::Encoder::new(HashingWriter::new(out), level).map_err(zerr)?;
        enc.include_checksum(true)
            .map_err(OciError::stream("zstd compression"))?;
        // Always multithreaded (≥ 1 worker): its bytes do not depend on the worker count.
        let workers = u32::try_from(threads.max(1)).unwrap_or(1);
        enc.multithread(workers)
            .map_err(OciError::stream("zstd compression"))?;
        loop {
            let Ok((chunk, last)) = rx.recv() else {
                return Ok(None);
            };
            enc.write_all(&chunk).map_err(write_err)?;
            if last {
                break;
            }
        }
        let mut w = enc.finish().map_err(write_err)?;
        w.flush().map_err(write_err)?;
        let (out, digest, size) = w.finish();
        Ok(Some((out, Some(digest), size)))
    })
}

#[cfg(not(feature = "zstd"))]
fn run_zstd<W: Write>(
    _src: Source<'_>,
    _tap: Option<&mut (dyn Write + Send)>,
    _out: W,
    _level: u32,
    _threads: usize,
) -> Result<Done<W>> {
    Err(OciError::Unsupported {
        what: "zstd layer compression".into(),
        hint: "this build of ocibuild was compiled without the `zstd` feature".into(),
    })
}

/// The fixed gzip header: no name, mtime 0, OS unknown (255).
fn gzip_header(level: u32) -> [u8; 10] {
    let xfl = match level {
        9 => 2,
        0 | 1 => 4,
        _ => 0,
    };
    [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 0xff]
}

struct DeflateJob {
    data: Vec<u8>,
    dict: Vec<u8>,
    last: bool,
}

struct Deflated {
    data: Vec<u8>,
    crc: Crc,
    last: bool,
}

fn deflate_err(e: flate2::CompressError) -> OciError {
    OciError::stream("gzip compression")(io::Error::other(e))
}

/// Raw-deflate one chunk with a freshly initialised compressor: primed with `dict`, ended by a
/// sync flush (or `Z_FINISH` if last).
///
/// Never reuse a `Compress` across chunks: zlib-rs's `reset()` keeps the previous stream's window
/// bytes, and the final block's match choices depend on them, so a reused compressor's output
/// would depend on which chunks the same worker compressed before (on the thread count).
/// `Compress::new` zeroes the window.
fn deflate_chunk(level: u32, job: &DeflateJob) -> Result<Vec<u8>> {
    let mut c = Compress::new(flate2::Compression::new(level), false);
    if !job.dict.is_empty() {
        c.set_dictionary(&job.dict).map_err(deflate_err)?;
    }
    let flush = if job.last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let input = &job.data[..];
    let mut out = Vec::with_capacity(input.len() / 2 + 4096);
    let mut consumed = 0usize;
    loop {
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity().max(4096));
        }
        let before = c.total_in();
        let status = c
            .compress_vec(&input[consumed..], &mut out, flush)
            .map_err(deflate_err)?;
        consumed += (c.total_in() - before) as usize;
        match status {
            Status::StreamEnd => break,
            Status::Ok | Status::BufError => {
                // A flush is complete when all input is in and the output was not filled.
                if !job.last && consumed == input.len() && out.len() < out.capacity() {
                    break;
                }
            }
        }
    }
    Ok(out)
}

fn deflate_worker(
    jobs: Receiver<DeflateJob>,
    results: SyncSender<Result<Deflated>>,
    spare: SyncSender<Vec<u8>>,
    level: u32,
) {
    for job in jobs {
        let r = deflate_chunk(level, &job).map(|data| {
            let mut crc = Crc::new();
            crc.update(&job.data);
            Deflated {
                data,
                crc,
                last: job.last,
            }
        });
        // the chunk's buffer back to the producer (dropped when it has enough)
        let _ = spare.try_send(job.data);
        if results.send(r).is_err() {
            return;
        }
    }
}

/// Producer thread → `threads` deflate workers (chunk *i* goes to worker *i mod threads*) → the
/// calling thread writes results in order.
fn run_gzip<W: Write>(
    src: Source<'_>,
    tap: Option<&mut (dyn Write + Send)>,
    out: W,
    level: u32,
    threads: usize,
) -> Result<Done<W>> {
    let workers = threads.max(1);
    thread::scope(|s| {
        let mut job_txs = Vec::with_capacity(workers);
        let mut res_rxs = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        // as many spare buffers as can be in flight at once (2 queued per worker, 1 each being
        // compressed, 1 being filled)
        let (spare_tx, spare_rx) = mpsc::sync_channel::<Vec<u8>>(3 * workers + 1);
        for _ in 0..workers {
            let (jtx, jrx) = mpsc::sync_channel::<DeflateJob>(2);
            let (rtx, rrx) = mpsc::sync_channel::<Result<Deflated>>(2);
            let spare_tx = spare_tx.clone();
            handles.push(spawn(s, "ocibuild-deflate", move || {
                deflate_worker(jrx, rtx, spare_tx, level)
            })?);
            job_txs.push(jtx);
            res_rxs.push(rrx);
        }
        let producer = spawn(s, "ocibuild-tar", move || {
            let mut seq = 0usize;
            let mut dict = Vec::new();
            let mut ship = |data: Vec<u8>, last: bool| {
                let next_dict = data[data.len().saturating_sub(DICT_SIZE)..].to_vec();
                let job = DeflateJob {
                    data,
                    dict: std::mem::replace(&mut dict, next_dict),
                    last,
                };
                let ok = job_txs[seq % workers].send(job).is_ok();
                seq += 1;
                ok
            };
            produce(src, &mut ship, tap, Some(&spare_rx))
        })?;
        drop(spare_tx);
        let consumed = consume_gzip(out, &res_rxs, level);
        drop(res_rxs);
        let produced = join_thread(producer)?;
        for h in handles {
            join_thread(h)?;
        }
        finish(consumed, produced)
    })
}

fn consume_gzip<W: Write>(out: W, rx: &[Receiver<Result<Deflated>>], level: u32) -> Consumed<W> {
    let mut w = HashingWriter::new(out);
    w.write_all(&gzip_header(level)).map_err(write_err)?;
    let mut crc = Crc::new();
    let mut i = 0usize;
    loop {
        let Ok(r) = rx[i % rx.len()].recv() else {
            return Ok(None);
        };
        let d = r?;
        w.write_all(&d.data).map_err(write_err)?;
        crc.combine(&d.crc);
        i += 1;
        if d.last {
            break;
        }
    }
    let mut trailer = [0u8; 8];
    trailer[..4].copy_from_slice(&crc.sum().to_le_bytes());
    trailer[4..].copy_from_slice(&crc.amount().to_le_bytes());
    w.write_all(&trailer).map_err(write_err)?;
    w.flush().map_err(write_err)?;
    let (out, digest, size) = w.finish();
    Ok(Some((out, Some(digest), size)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn entry(path: &str, kind: EntryKind) -> LayerEntry {
        LayerEntry::new(path, kind, 0o644)
    }

    #[test]
    fn entries_follow_the_links_of_the_layers_below() {
        let links: BTreeMap<String, String> = [
            ("bin", "usr/bin"),
            ("lib", "/usr/lib"),
            ("opt/up", "../../../usr/local"),
            ("a", "/b"),
            ("b", "opt/up/share"),
            ("loop", "loop"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let r = |p: &str, last: bool| resolve_through_links(&links, p, last).unwrap();
        assert_eq!(r("bin/app", false), "usr/bin/app");
        assert_eq!(r("bin", true), "usr/bin");
        assert_eq!(r("bin", false), "bin");
        assert_eq!(r("lib/x/y", false), "usr/lib/x/y");
        assert_eq!(r("opt/up/bin/t", false), "usr/local/bin/t");
        assert_eq!(r("a/doc", false), "usr/local/share/doc");
        assert_eq!(r("app/bin/x", false), "app/bin/x");
        let e = resolve_through_links(&links, "loop/x", false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("loop/x") && e.contains("loop"), "{e}");

        let mut b = LayerBuilder::new(LayerOptions::default());
        b.add_entry(LayerEntry::new("bin", EntryKind::Dir, 0o755))
            .unwrap();
        b.add_entry(entry("bin/app", EntryKind::Bytes(b"app".to_vec())))
            .unwrap();
        b.add_entry(entry("bin/app2", EntryKind::Hardlink("bin/app".into())))
            .unwrap();
        b.add_entry(entry("lib", EntryKind::Symlink("elsewhere".into())))
            .unwrap();
        b.add_entry(LayerEntry::new("bin/gone", EntryKind::Whiteout, 0))
            .unwrap();
        b.follow_lower_links(&links).unwrap();
        let (tar, _) = write_tar(b);
        let rows: Vec<(String, u8, String)> =
            list(&tar).into_iter().map(|r| (r.0, r.1, r.2)).collect();
        let want: Vec<(String, u8, String)> = [
            ("lib", b'2', "elsewhere"),
            ("usr/", b'5', ""),
            ("usr/bin/", b'5', ""),
            ("usr/bin/.wh.gone", b'0', ""),
            ("usr/bin/app", b'0', ""),
            ("usr/bin/app2", b'1', "usr/bin/app"),
        ]
        .iter()
        .map(|(p, t, l)| (p.to_string(), *t, l.to_string()))
        .collect();
        assert_eq!(rows, want);
    }

    fn gunzip(blob: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        // GzDecoder reads only the first member: the whole layer must be one member.
        flate2::read::GzDecoder::new(blob)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    /// (path, typeflag, link, mode, uid, gid, mtime, size) of every entry, via the tar crate.
    type Row = (String, u8, String, u32, u64, u64, u64, u64);
    fn list(tar: &[u8]) -> Vec<Row> {
        let mut a = tar::Archive::new(tar);
        a.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let h = e.header().clone();
                let path = String::from_utf8(e.path_bytes().into_owned()).unwrap();
                let link = e
                    .link_name_bytes()
                    .map(|l| String::from_utf8(l.into_owned()).unwrap())
                    .unwrap_or_default();
                let mut body = Vec::new();
                e.read_to_end(&mut body).unwrap();
                (
                    path,
                    h.entry_type().as_byte(),
                    link,
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                    h.mtime().unwrap(),
                    body.len() as u64,
                )
            })
            .collect()
    }

    fn write_tar(b: LayerBuilder) -> (Vec<u8>, LayerInfo) {
        let mut b = b;
        b.opts.compression = Compression::None;
        b.write(Vec::new()).unwrap()
    }

    /// Deterministic text that compresses about 3:1.
    fn text(len: usize, seed: u32) -> Vec<u8> {
        let mut x = seed.wrapping_mul(2_654_435_761) | 1;
        let words: [&[u8]; 13] = [
            b"function",
            b"return",
            b"const",
            b"this",
            b"require",
            b"=>",
            b"{",
            b"}",
            b"(",
            b")",
            b";\n",
            b"value",
            b"exports",
        ];
        let mut out = Vec::with_capacity(len + 16);
        while out.len() < len {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            out.extend_from_slice(words[(x % 13) as usize]);
            out.push(b' ');
            if x.is_multiple_of(5) {
                out.extend_from_slice(format!("v{:x}", x % 100_000).as_bytes());
            }
        }
        out.truncate(len);
        out
    }

    /// The byte format is part of the product: every layer digest depends on it. If this fails
    /// after a dependency update (zlib-rs, libzstd) or a change here, the format changed: make
    /// sure that is intended, say so in the release notes, then update the digests.
    #[test]
    fn golden_digests_pin_the_format() {
        let build = |c: Compression| {
            let mut b = LayerBuilder::new(LayerOptions {
                compression: c,
                source_date_epoch: 1_700_000_000,
                ..Default::default()
            });
            b.add_entry(entry("a/big.js", EntryKind::Bytes(text(9 << 20, 1))))
                .unwrap();
            b.add_entry(entry("a/b/small", EntryKind::Bytes(text(1000, 2))))
                .unwrap();
            b.add_entry(entry(&format!("p/{}", "x".repeat(120)), EntryKind::Dir))
                .unwrap();
            b.add_entry(entry("l", EntryKind::Symlink("a/big.js".into())))
                .unwrap();
            b.write(io::sink()).unwrap().1
        };
        let tar = build(Compression::None);
        let gz = build(Compression::Gzip);
        assert_eq!(tar.diff_id, gz.diff_id);
        let mut got = vec![
            ("diff_id", tar.diff_id.to_string()),
            ("gzip", gz.digest.to_string()),
        ];
        if cfg!(feature = "zstd") {
            let zs = build(Compression::Zstd);
            assert_eq!(tar.diff_id, zs.diff_id);
            got.push(("zstd", zs.digest.to_string()));
        }
        let want = [
            (
                "diff_id",
                "sha256:7ccb0c50a6e37c9917bff979d71b603ecfb73163a54d07c9d0e430e125339e1d",
            ),
            (
                "gzip",
                "sha256:658181961c7f83f78f81e74d3a100deede91b6f7328156f3c045b096a508d6fd",
            ),
            (
                "zstd",
                "sha256:4825f6f00ad9525e3d270ec1ecaef3bbc6990d75c3ba013ec86538bb06ca1f7c",
            ),
        ];
        for (name, digest) in &got {
            let w = want.iter().find(|(n, _)| n == name).map(|(_, d)| *d);
            assert_eq!(
                Some(digest.as_str()),
                w,
                "{name}: the layer byte format changed"
            );
        }
    }

    #[test]
    fn octal_fields_and_checksum_match_the_tar_crate() {
        let p = Planned::new(
            "dir/file".into(),
            b'0',
            (0o4755, 65532, 65532, 1_700_000_000),
            Body::Empty,
        );
        let mut out = Vec::new();
        encode_header(&p, 12345, &mut out);
        assert_eq!(out.len(), BLOCK);
        let h = tar::Header::from_byte_slice(&out);
        assert_eq!(h.path().unwrap().to_str(), Some("dir/file"));
        assert_eq!(h.mode().unwrap(), 0o4755);
        assert_eq!(h.uid().unwrap(), 65532);
        assert_eq!(h.size().unwrap(), 12345);
        assert_eq!(h.mtime().unwrap(), 1_700_000_000);
        assert_eq!(h.cksum().unwrap(), {
            let mut c = out.clone();
            c[148..156].fill(b' ');
            c.iter().map(|&b| u32::from(b)).sum::<u32>()
        });
        assert_eq!(&out[100..108], b"0004755\0");
        assert_eq!(&out[257..265], b"ustar\x0000");
        assert_eq!(&out[155], &b' ');
        assert!(h.username_bytes().unwrap().is_empty());
    }

    #[test]
    fn ustar_split_follows_go() {
        assert_eq!(ustar_split("a/b"), Some(("", "a/b")));
        let long_dir = "d".repeat(120);
        let p = format!("{long_dir}/file");
        assert_eq!(ustar_split(&p), Some((long_dir.as_str(), "file")));
        let pd = format!("{long_dir}/sub/");
        assert_eq!(ustar_split(&pd), Some((long_dir.as_str(), "sub/")));
        // a last component over 100 bytes, a prefix over 155, non-ASCII: pax
        assert_eq!(ustar_split(&format!("a/{}", "x".repeat(101))), None);
        assert_eq!(ustar_split(&format!("{}/f", "p".repeat(160))), None);
        assert_eq!(ustar_split("ünïcode"), None);
        assert_eq!(ustar_split(&format!("/{}", "x".repeat(100))), None);
    }

    #[test]
    fn pax_record_lengths_count_themselves() {
        for n in [
            0usize, 1, 2, 90, 91, 92, 93, 94, 95, 96, 97, 98, 99, 100, 990, 995, 996, 1000,
        ] {
            let v = "v".repeat(n);
            let r = pax_record("path", &v);
            let (len, _) = r.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), r.len(), "{r}");
        }
    }

    #[test]
    fn paths_are_validated() {
        for bad in ["", "/abs", "a//b", "a/../b", "./a", "..", "a/.", "nul\0"] {
            assert!(validate_path(bad).is_err(), "{bad:?}");
        }
        assert_eq!(validate_path("a/b/").unwrap(), "a/b");
        assert_eq!(normalize_dest("/app/").unwrap(), "app");
        assert_eq!(normalize_dest("./").unwrap(), "");
        assert_eq!(normalize_dest("/").unwrap(), "");
        let mut b = LayerBuilder::new(LayerOptions::default());
        for bad in [
            entry("x/.wh.y", EntryKind::Bytes(vec![])),
            entry("x/.wh.y/z", EntryKind::Dir),
            entry("x/.wh..wh..opq", EntryKind::Bytes(vec![])),
            entry(".wh.y", EntryKind::Whiteout),
            entry("a", EntryKind::Hardlink("b/.wh.c".into())),
        ] {
            assert!(b.add_entry(bad.clone()).is_err(), "{bad:?}");
        }
        assert!(
            b.add_entry(entry("x", EntryKind::Hardlink("x".into())))
                .is_err()
        );
        assert!(
            b.add_entry(entry("x", EntryKind::Symlink(String::new())))
                .is_err()
        );
        assert!(b.is_empty());
    }

    #[test]
    fn parents_sorting_duplicates_whiteouts() {
        let mut b = LayerBuilder::new(LayerOptions {
            source_date_epoch: 100,
            owner: Some((65532, 65532)),
            ..Default::default()
        });
        b.add_entry(entry("z/y/file", EntryKind::Bytes(b"old".to_vec())))
            .unwrap();
        b.add_entry(entry("a-b", EntryKind::Bytes(vec![]))).unwrap();
        b.add_entry(LayerEntry {
            mtime: Some(50),
            uid: Some(7),
            ..entry("z/y/file", EntryKind::Bytes(b"new!".to_vec()))
        })
        .unwrap();
        b.add_entry(entry("a/gone", EntryKind::Whiteout)).unwrap();
        b.add_entry(entry("opq", EntryKind::OpaqueDir)).unwrap();
        b.add_entry(LayerEntry {
            mtime: Some(10_000),
            ..entry("a/link", EntryKind::Symlink("../z".into()))
        })
        .unwrap();
        let (tar, info) = write_tar(b);
        assert_eq!(info.digest, info.diff_id);
        assert_eq!(info.media_type, crate::media::OCI_LAYER_TAR);
        let rows = list(&tar);
        let names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "a/",
                "a-b", // path bytes: '-' (0x2d) sorts before '/' (0x2f)
                "a/.wh.gone",
                "a/link",
                "opq/",
                "opq/.wh..wh..opq",
                "z/",
                "z/y/",
                "z/y/file"
            ]
        );
        let file = &rows[8];
        assert_eq!(file.0, "z/y/file");
        assert_eq!((file.4, file.5, file.6, file.7), (7, 65532, 50, 4));
        let link = &rows[3];
        assert_eq!(
            (link.1, link.2.as_str(), link.3, link.6),
            (b'2', "../z", 0o777, 100)
        );
        let dir = &rows[0];
        assert_eq!((dir.1, dir.3, dir.4, dir.6), (b'5', 0o755, 65532, 100));
        assert_eq!(tar.len() % BLOCK, 0);
        assert!(tar[tar.len() - 2 * BLOCK..].iter().all(|&b| b == 0));
    }

    #[test]
    fn hard_links_point_at_the_first_path_in_order() {
        let mut b = LayerBuilder::new(LayerOptions::default());
        b.add_entry(entry("b/data", EntryKind::Bytes(b"payload".to_vec())))
            .unwrap();
        // a link that sorts before its target takes the data; the target becomes the link
        b.add_entry(entry("a/link", EntryKind::Hardlink("b/data".into())))
            .unwrap();
        b.add_entry(entry("c/link2", EntryKind::Hardlink("a/link".into())))
            .unwrap();
        let (tar, _) = write_tar(b);
        let rows = list(&tar);
        let get = |n: &str| rows.iter().find(|r| r.0 == n).unwrap().clone();
        assert_eq!((get("a/link").1, get("a/link").7), (b'0', 7));
        assert_eq!(
            (get("b/data").1, get("b/data").2.as_str()),
            (b'1', "a/link")
        );
        assert_eq!(
            (get("c/link2").1, get("c/link2").2.as_str()),
            (b'1', "a/link")
        );

        let mut b = LayerBuilder::new(LayerOptions::default());
        b.add_entry(entry("l", EntryKind::Hardlink("missing".into())))
            .unwrap();
        let e = b.write(Vec::new()).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");

        let mut b = LayerBuilder::new(LayerOptions::default());
        b.add_entry(entry("d", EntryKind::Dir)).unwrap();
        b.add_entry(entry("l", EntryKind::Hardlink("d".into())))
            .unwrap();
        assert!(b.write(Vec::new()).is_err());
    }

    /// With `check_stamps`, a file that is not as the walk saw it once it has been read (here:
    /// rewritten between the walk and the write) fails the write, naming it; without, the
    /// write packs what it reads.
    #[test]
    fn check_stamps_refuses_a_file_changed_since_the_walk() {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join("a.txt"), "one").unwrap();
        fs::write(t.path().join("b.txt"), "two").unwrap();
        let walked = |check: bool| {
            let mut b = LayerBuilder::new(LayerOptions::default());
            b.add_dir(t.path(), "app").unwrap();
            if check {
                b.check_stamps();
            }
            b
        };
        let (_, same) = walked(true).write(io::sink()).unwrap();
        assert_eq!(
            same.diff_id,
            walked(false).write(io::sink()).unwrap().1.diff_id
        );

        let (checked, unchecked) = (walked(true), walked(false));
        fs::write(t.path().join("b.txt"), "two, longer").unwrap();
        let e = checked.write(io::sink()).unwrap_err().to_string();
        assert!(
            e.contains("b.txt") && e.contains("changed while it was being packed"),
            "{e}"
        );
        let (_, info) = unchecked.write(io::sink()).unwrap();
        assert_ne!(info.diff_id, same.diff_id);
    }

    #[test]
    fn write_tapped_copies_the_tar_stream() {
        let fill = |b: &mut LayerBuilder| {
            for i in 0..40u32 {
                b.add_entry(entry(&format!("d/f{i}"), EntryKind::Bytes(text(50_000, i))))
                    .unwrap();
            }
        };
        let mut b = LayerBuilder::new(LayerOptions::default());
        fill(&mut b);
        let (tar, plain) = write_tar(b);
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let mut b = LayerBuilder::new(LayerOptions {
                compression: c,
                ..LayerOptions::default()
            });
            fill(&mut b);
            let mut tap = Vec::new();
            let (_, info) = b.write_tapped(Vec::new(), &mut tap).unwrap();
            assert_eq!(info.diff_id, plain.diff_id, "{c:?}");
            assert!(tap == tar, "{c:?}: the tap got other bytes");
        }
    }

    #[test]
    fn into_entries_round_trips_to_the_same_tar() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("blob");
        std::fs::write(&src, b"file contents").unwrap();
        let opts = LayerOptions {
            source_date_epoch: 50,
            owner: Some((7, 8)),
            ..LayerOptions::default()
        };
        let fill = |b: &mut LayerBuilder| {
            b.add_entry(entry("b/data", EntryKind::Bytes(b"payload".to_vec())))
                .unwrap();
            b.add_entry(entry("a/link", EntryKind::Hardlink("b/data".into())))
                .unwrap();
            b.add_entry(LayerEntry {
                mtime: Some(100),
                uid: Some(3),
                ..entry("x/y/z/file", EntryKind::File(src.clone()))
            })
            .unwrap();
            b.add_entry(entry("x/sym", EntryKind::Symlink("y/z/file".into())))
                .unwrap();
            b.add_entry(LayerEntry::new(
                "x/setuid",
                EntryKind::Bytes(vec![]),
                0o4755,
            ))
            .unwrap();
            b.add_entry(entry("gone", EntryKind::Whiteout)).unwrap();
            b.add_entry(entry("opq", EntryKind::OpaqueDir)).unwrap();
        };
        let mut b = LayerBuilder::new(opts.clone());
        fill(&mut b);
        let (tar, info) = write_tar(b);
        let mut b = LayerBuilder::new(opts.clone());
        fill(&mut b);
        let entries = b.into_entries().unwrap();
        let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "gone",
                "a",
                "a/link",
                "b",
                "b/data",
                "opq",
                "opq",
                "x",
                "x/setuid",
                "x/sym",
                "x/y",
                "x/y/z",
                "x/y/z/file"
            ]
        );
        assert_eq!(entries[4].kind, EntryKind::Hardlink("a/link".into()));
        let mut again = LayerBuilder::new(LayerOptions {
            owner: None,
            ..opts
        });
        for e in entries {
            if e.path == "gone" {
                assert_eq!(e.kind, EntryKind::Whiteout);
            }
            again.add_entry(e).unwrap();
        }
        let (tar2, info2) = write_tar(again);
        assert_eq!(info2.diff_id, info.diff_id);
        assert_eq!(tar2, tar);
    }

    #[test]
    fn a_file_cannot_be_a_parent() {
        let mut b = LayerBuilder::new(LayerOptions::default());
        b.add_entry(entry("f", EntryKind::Bytes(vec![]))).unwrap();
        b.add_entry(entry("f/g", EntryKind::Bytes(vec![]))).unwrap();
        let mut out = Vec::new();
        let e = b.write(&mut out).unwrap_err();
        assert!(e.to_string().contains("parent `f`"), "{e}");
        assert!(out.is_empty(), "nothing is written when planning fails");
    }

    #[test]
    fn long_paths_links_and_ids_use_pax() {
        let long = format!("d/{}", "n".repeat(150));
        let target = format!("/{}", "t".repeat(120));
        let mut b = LayerBuilder::new(LayerOptions::default());
        b.add_entry(LayerEntry {
            uid: Some(3_000_000),
            ..entry(&long, EntryKind::Bytes(b"x".to_vec()))
        })
        .unwrap();
        b.add_entry(entry("s", EntryKind::Symlink(target.clone())))
            .unwrap();
        b.add_entry(entry("ünï", EntryKind::Dir)).unwrap();
        let (tar, _) = write_tar(b);
        assert!(
            !tar.chunks(BLOCK)
                .any(|h| h.len() == BLOCK && (h[156] == b'L' || h[156] == b'K'))
        );
        let rows = list(&tar);
        let f = rows.iter().find(|r| r.0 == long).unwrap();
        assert_eq!(f.4, 3_000_000);
        let s = rows.iter().find(|r| r.0 == "s").unwrap();
        assert_eq!(s.2, target);
        assert!(rows.iter().any(|r| r.0 == "ünï/"));
        assert!(tar.windows(8).any(|w| w == b"uid=3000"));
    }

    #[test]
    fn gzip_header_is_fixed_and_output_is_one_member() {
        let mut b = LayerBuilder::new(LayerOptions::default());
        b.add_entry(entry("f", EntryKind::Bytes(b"hello".to_vec())))
            .unwrap();
        let (blob, info) = b.write(Vec::new()).unwrap();
        assert_eq!(&blob[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
        assert_eq!(info.size, blob.len() as u64);
        assert_eq!(info.digest, Digest::of_bytes(&blob));
        let tar = gunzip(&blob);
        assert_eq!(info.diff_id, Digest::of_bytes(&tar));
        assert_eq!(info.uncompressed_size, tar.len() as u64);
        assert_eq!(list(&tar)[0].0, "f");
    }

    #[test]
    fn gzip_chunks_are_independent_of_thread_count() {
        // ~3.5 chunks of compressible, non-repeating data
        let mut x = 1u32;
        let data: Vec<u8> = (0..(3 * GZIP_CHUNK_SIZE + 12345))
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                b"abcdefgh  \n{}"[(x % 13) as usize]
            })
            .collect();
        let build = |threads: usize, level: u32| {
            let mut b = LayerBuilder::new(LayerOptions {
                level: Some(level),
                ..Default::default()
            });
            b.set_threads(threads);
            b.add_entry(entry("big", EntryKind::Bytes(data.clone())))
                .unwrap();
            b.write(Vec::new()).unwrap()
        };
        for level in [1, 6, 9] {
            let (one, i1) = build(1, level);
            let (three, i3) = build(3, level);
            assert_eq!(i1, i3);
            assert!(
                one == three,
                "level {level}: bytes differ between 1 and 3 threads"
            );
            let tar = gunzip(&one);
            assert_eq!(Digest::of_bytes(&tar), i1.diff_id);
            assert_eq!(list(&tar)[0].7, data.len() as u64);
        }
        // a tar stream that is an exact multiple of the chunk size ends with an empty final chunk
        let mut b = LayerBuilder::new(LayerOptions::default());
        b.add_entry(entry(
            "f",
            EntryKind::Bytes(vec![b'q'; GZIP_CHUNK_SIZE - 3 * BLOCK]),
        ))
        .unwrap();
        let (blob, info) = b.write(Vec::new()).unwrap();
        assert_eq!(info.uncompressed_size, GZIP_CHUNK_SIZE as u64);
        assert_eq!(Digest::of_bytes(&gunzip(&blob)), info.diff_id);
    }

    #[cfg(feature = "zstd")]
    #[test]
    fn zstd_round_trips_and_levels_are_checked() {
        let mut b = LayerBuilder::new(LayerOptions {
            compression: Compression::Zstd,
            ..Default::default()
        });
        b.add_entry(entry("f", EntryKind::Bytes(vec![b'z'; 100_000])))
            .unwrap();
        let (blob, info) = b.write(Vec::new()).unwrap();
        assert_eq!(info.media_type, crate::media::OCI_LAYER_ZSTD);
        let tar = zstd::stream::decode_all(&blob[..]).unwrap();
        assert_eq!(Digest::of_bytes(&tar), info.diff_id);
        assert_eq!(Digest::of_bytes(&blob), info.digest);

        let b = LayerBuilder::new(LayerOptions {
            compression: Compression::Zstd,
            level: Some(23),
            ..Default::default()
        });
        assert!(b.write(Vec::new()).is_err());
    }

    #[test]
    fn gzip_level_is_checked() {
        let b = LayerBuilder::new(LayerOptions {
            level: Some(10),
            ..Default::default()
        });
        assert!(
            b.write(Vec::new())
                .unwrap_err()
                .to_string()
                .contains("gzip level")
        );
    }

    #[test]
    fn write_errors_stop_the_pipeline() {
        #[derive(Debug)]
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::from_raw_os_error(libc::ENOSPC))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut kinds = vec![Compression::None, Compression::Gzip];
        if cfg!(feature = "zstd") {
            kinds.push(Compression::Zstd);
        }
        for c in kinds {
            let mut b = LayerBuilder::new(LayerOptions {
                compression: c,
                ..Default::default()
            });
            b.set_threads(2);
            b.add_entry(entry("big", EntryKind::Bytes(text(20 << 20, 3))))
                .unwrap();
            let e = b.write(Full).unwrap_err();
            assert!(e.is_disk_full(), "{e}");
        }
    }
}

#[cfg(test)]
mod mode_tests {
    #![allow(clippy::unwrap_used)]
    use super::{Compression, LayerBuilder, LayerOptions, normalized_mode};
    use std::fs;

    #[test]
    fn modes_are_normalised_like_git() {
        assert_eq!(normalized_mode(0o664, false), 0o644);
        assert_eq!(normalized_mode(0o600, false), 0o644);
        assert_eq!(normalized_mode(0o775, false), 0o755);
        assert_eq!(normalized_mode(0o700, true), 0o755);
        assert_eq!(normalized_mode(0o1777, true), 0o1777);
        assert_eq!(normalized_mode(0o4755, false), 0o4755);
    }

    #[test]
    fn owners_below_a_path_leave_its_parents_alone() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(t.path().join("app/instance/up")).unwrap();
        fs::write(t.path().join("app/instance/a.txt"), "a").unwrap();
        fs::write(t.path().join("app/instance-x"), "x").unwrap();
        let mut b = LayerBuilder::new(LayerOptions {
            compression: Compression::None,
            ..LayerOptions::default()
        });
        b.add_dir(t.path(), "").unwrap();
        assert_eq!(b.set_owner_under("/app/instance", 65532, 65533).unwrap(), 3);
        let owners: Vec<(String, Option<u32>, Option<u32>)> = b
            .items
            .iter()
            .map(|(k, it)| (k.clone(), it.uid, it.gid))
            .collect();
        assert_eq!(
            owners,
            [
                ("app".to_string(), None, None),
                ("app/instance".to_string(), Some(65532), Some(65533)),
                ("app/instance-x".to_string(), None, None),
                ("app/instance/a.txt".to_string(), Some(65532), Some(65533)),
                ("app/instance/up".to_string(), Some(65532), Some(65533)),
            ]
        );
    }
}
