//! Safe extraction of layer tars onto a directory (a rootfs being assembled layer by layer).
//!
//! # The promise
//!
//! Nothing is ever written, chmod'ed, chowned, deleted or linked outside `root`, whatever the tar
//! holds and whatever earlier layers left in `root`:
//!
//! - Entry names (and hard link targets) are validated, never sanitised: absolute names and any
//!   `..` component are refused with [`OciError::UnsafeEntry`]. A leading `./`, empty and `.`
//!   components are dropped; a name that is only `.` is the root directory itself.
//! - The parent of every entry is resolved one component at a time from a descriptor of `root`,
//!   opening each directory with `O_NOFOLLOW`. Symlinks met on the way (written by this or an
//!   earlier layer) are followed *inside* the root with chroot semantics: an absolute target
//!   restarts at `root`, a relative one is applied to the directory it lives in, and a `..` that
//!   would climb above `root` is refused ("symlink escapes the root"). More than
//!   [`MAX_SYMLINK_HOPS`] symlinks in one resolution is refused too. This keeps Debian's merged
//!   `/usr` working (`lib -> usr/lib`, then a later layer writes `lib/x86_64-linux-gnu/…`).
//! - The final component is never followed: every create uses `*at` calls relative to the parent
//!   descriptor (`O_CREAT|O_EXCL|O_NOFOLLOW`, `mkdirat`, `symlinkat`, `linkat` without
//!   `AT_SYMLINK_FOLLOW`, `AT_SYMLINK_NOFOLLOW` for metadata). Whatever was at that name before
//!   (a file, a symlink, a whole directory tree when a non-directory replaces it) is removed
//!   first, again only through descriptors beneath `root`.
//! - Hard link targets must already exist beneath `root` and be regular files.
//! - Symlink entries may point anywhere: they are created as they are, only following them is
//!   constrained.
//!
//! # Choices worth knowing
//!
//! - **setuid/setgid bits are kept** on files and directories whether or not the caller is
//!   privileged: the extracted tree is an image being built and is packed again into layers, so
//!   it must stay faithful (`/usr/bin/passwd` stays setuid). Ownership is only changed when
//!   [`ExtractOptions::preserve_owner`] is set; otherwise everything belongs to the extracting
//!   user. Because a root-run extraction without `preserve_owner` can therefore leave root-owned
//!   setuid files, extract beneath a directory other users cannot traverse (the content store
//!   and cache directories are created 0700 for this reason).
//! - Device nodes and fifos are only created when [`ExtractOptions::privileged`] is set and the
//!   process runs as uid 0; otherwise (or when the kernel refuses `mknod`, as in a user
//!   namespace) they are skipped and counted in [`ExtractStats::skipped_devices`].
//! - A directory entry whose name holds a symlink replaces the symlink, as containerd and
//!   Docker do (overlay semantics); a file below a symlinked directory goes through it.
//! - Whiteouts follow the OCI image spec: `.wh.<name>` removes `<name>` left by lower layers,
//!   `.wh..wh..opq` empties its directory of lower-layer content (entries this layer wrote,
//!   before or after the marker, stay), other `.wh..wh.*` names (aufs metadata) are ignored,
//!   and none of them is materialised. With `apply_whiteouts: false` they are ordinary files.
//! - Directory modes and mtimes are applied after the last entry of the layer, deepest last
//!   entry first, so that writing children does not disturb them and a read-only directory can
//!   still be filled by a non-root caller. The `.` entry only sets the root's mode.
//! - Modification times come from the tar header, or the PAX `mtime` record (with its fraction)
//!   when there is one; access times are set to the same value.
//!
//! Not handled (yet): extended attributes and file capabilities (`SCHILY.xattr.*`), ACLs. A
//! non-root caller cannot write into a read-only directory left by an *earlier* layer.

use std::collections::{HashSet, VecDeque};
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, AtFlags, OFlag, openat, readlinkat};
use nix::sys::stat::{
    FchmodatFlags, FileStat, Mode, SFlag, UtimensatFlags, fchmod, fchmodat, fstatat, futimens,
    makedev, mkdirat, mknodat, utimensat,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, fchownat, linkat, symlinkat, unlinkat};

use crate::digest::{Digest, HashingReader};
use crate::error::{OciError, Result};
use crate::layer::{EntryKind, LayerEntry};
use crate::media::Compression;

/// How many symlinks one path resolution may follow before it is refused (as the kernel does).
pub const MAX_SYMLINK_HOPS: u32 = 40;

/// What an extraction may do beyond writing plain files, directories and links.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtractOptions {
    /// Create device nodes and fifos (only effective when running as uid 0); otherwise they are
    /// skipped and counted.
    pub privileged: bool,
    /// Change ownership to the tar's uid/gid (only meaningful as root). Default false: everything
    /// belongs to the extracting user.
    pub preserve_owner: bool,
    /// Apply OCI whiteouts (`.wh.<name>`, `.wh..wh..opq`) to what lower layers left in the root.
    /// Default true.
    pub apply_whiteouts: bool,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        Self {
            privileged: false,
            preserve_owner: false,
            apply_whiteouts: true,
        }
    }
}

/// What one layer extraction did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExtractStats {
    /// Tar entries read (not counting PAX global headers; GNU long names and PAX records are
    /// part of the entry they describe).
    pub entries: u64,
    /// Bytes of regular-file content written.
    pub bytes: u64,
    /// Device nodes and fifos that were not created.
    pub skipped_devices: u64,
    /// Whiteout entries applied (plain and opaque).
    pub whiteouts: u64,
}

/// Wrap a compressed layer stream in the right decompressor. Gzip accepts multi-member streams.
pub fn decompress<'a>(r: impl Read + 'a, c: Compression) -> Result<Box<dyn Read + 'a>> {
    Ok(match c {
        Compression::None => Box::new(r),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
        Compression::Zstd => zstd_decoder(r)?,
    })
}

#[cfg(feature = "zstd")]
fn zstd_decoder<'a>(r: impl Read + 'a) -> Result<Box<dyn Read + 'a>> {
    let d = zstd::stream::read::Decoder::new(r)
        .map_err(OciError::stream("starting the zstd decoder"))?;
    Ok(Box::new(d))
}

#[cfg(not(feature = "zstd"))]
fn zstd_decoder<'a>(_r: impl Read + 'a) -> Result<Box<dyn Read + 'a>> {
    Err(OciError::Unsupported {
        what: "zstd-compressed layers".into(),
        hint: "this build of ocibuild was compiled without the `zstd` feature".into(),
    })
}

/// Decompress and extract a layer blob beneath `root`, verifying that the uncompressed stream
/// hashes to `diff_id` when one is given. The check happens after extraction (the stream is read
/// once); on a mismatch the root holds unverified content and the caller must discard it.
pub fn extract_layer_blob(
    blob: impl Read,
    c: Compression,
    diff_id: Option<&Digest>,
    root: &Path,
    opts: &ExtractOptions,
) -> Result<ExtractStats> {
    let limits = Limits::from_env()?;
    extract_layer_blob_limited(blob, c, diff_id, root, opts, &limits)
}

/// [`extract_layer_blob`] with explicit [`Limits`] (the bytes after the end-of-archive marker,
/// which are hashed for the diff_id, count against [`Limits::max_bytes`] too).
pub fn extract_layer_blob_limited(
    blob: impl Read,
    c: Compression,
    diff_id: Option<&Digest>,
    root: &Path,
    opts: &ExtractOptions,
    limits: &Limits,
) -> Result<ExtractStats> {
    let mut hashed = HashingReader::new(decompress(blob, c)?);
    let stats = extract_layer_limited(&mut hashed, root, opts, limits)?;
    // The tar reader stops at the first end-of-archive block; the diff_id covers everything.
    let tail = io::copy(
        &mut (&mut hashed).take(limits.max_bytes.saturating_add(1)),
        &mut io::sink(),
    )
    .map_err(OciError::stream("reading the end of the layer"))?;
    if tail > limits.max_bytes {
        return Err(OciError::LimitExceeded {
            subject: "the layer".into(),
            what: "the data after its end-of-archive marker".into(),
            limit: limits.max_bytes,
            env: Limits::ENV_BYTES,
        });
    }
    if let Some(expected) = diff_id {
        let actual = hashed.current();
        if actual != *expected {
            return Err(OciError::DigestMismatch {
                what: format!("uncompressed layer ({})", c.name()),
                expected: expected.clone(),
                actual,
            });
        }
    }
    Ok(stats)
}

/// Extract an uncompressed tar stream beneath `root`, which must exist. Layers are applied in
/// order by calling this repeatedly on the same root. See the module documentation for the
/// safety rules.
/// Limits on one layer's tar stream, against decompression bombs and hostile archives. Each
/// has a default and an environment variable that overrides it (a plain number: bytes or a
/// count); going over one fails the layer with [`OciError::LimitExceeded`], naming the variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Uncompressed tar bytes (`OCIBUILD_LAYER_MAX_BYTES`, default 64 GiB).
    pub max_bytes: u64,
    /// Entries (`OCIBUILD_LAYER_MAX_ENTRIES`, default 2,000,000).
    pub max_entries: u64,
    /// Bytes in one entry's name or link target (`OCIBUILD_LAYER_MAX_PATH`, default 4096,
    /// Linux's PATH_MAX).
    pub max_path: u64,
    /// Bytes of headers and extension records (PAX, GNU long names) before one entry
    /// (`OCIBUILD_LAYER_MAX_METADATA`, default 1 MiB): the tar reader keeps them in memory.
    pub max_metadata: u64,
}

pub const DEFAULT_LIMITS: Limits = Limits {
    max_bytes: 64 << 30,
    max_entries: 2_000_000,
    max_path: 4096,
    max_metadata: 1 << 20,
};

impl Default for Limits {
    fn default() -> Self {
        DEFAULT_LIMITS
    }
}

impl Limits {
    pub const ENV_BYTES: &'static str = "OCIBUILD_LAYER_MAX_BYTES";
    pub const ENV_ENTRIES: &'static str = "OCIBUILD_LAYER_MAX_ENTRIES";
    pub const ENV_PATH: &'static str = "OCIBUILD_LAYER_MAX_PATH";
    pub const ENV_METADATA: &'static str = "OCIBUILD_LAYER_MAX_METADATA";

    /// The defaults, overridden by the environment; an unparsable value is an error naming it.
    pub fn from_env() -> Result<Limits> {
        let get = |name: &'static str, default: u64| -> Result<u64> {
            match std::env::var(name) {
                Err(_) => Ok(default),
                Ok(v) => v.trim().parse::<u64>().map_err(|_| OciError::Unsupported {
                    what: format!("{name}={v}"),
                    hint: format!(
                        "{name} must be a plain number (bytes or a count), e.g. {name}={default}"
                    ),
                }),
            }
        };
        Ok(Limits {
            max_bytes: get(Self::ENV_BYTES, DEFAULT_LIMITS.max_bytes)?,
            max_entries: get(Self::ENV_ENTRIES, DEFAULT_LIMITS.max_entries)?,
            max_path: get(Self::ENV_PATH, DEFAULT_LIMITS.max_path)?,
            max_metadata: get(Self::ENV_METADATA, DEFAULT_LIMITS.max_metadata)?,
        })
    }
}

pub fn extract_layer(tar: impl Read, root: &Path, opts: &ExtractOptions) -> Result<ExtractStats> {
    extract_layer_limited(tar, root, opts, &Limits::from_env()?)
}

/// [`extract_layer`] with explicit [`Limits`].
pub fn extract_layer_limited(
    tar: impl Read,
    root: &Path,
    opts: &ExtractOptions,
    limits: &Limits,
) -> Result<ExtractStats> {
    let mut x = Extractor::new(root, opts)?;
    let mut archive = crate::limited::Archive::new(tar, limits, "the layer");
    let watch = archive.watch();
    let entries = archive
        .entries()
        .map_err(OciError::stream("reading layer tar"))?;
    let mut last: Option<String> = None;
    for entry in entries {
        let mut entry = match entry {
            Ok(e) => e,
            Err(source) => {
                return Err(watch.exceeded().unwrap_or_else(|| OciError::Stream {
                    what: match &last {
                        Some(n) => format!("reading layer tar after entry `{n}`"),
                        None => "reading layer tar".to_string(),
                    },
                    source,
                }));
            }
        };
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let r = x.entry(&mut entry, &raw, &name).and_then(|()| {
            // what the entry did not read is data too
            io::copy(&mut entry, &mut io::sink())
                .map(|_| ())
                .map_err(OciError::stream(format!("reading entry `{name}`")))
        });
        if let Err(e) = r {
            return Err(watch.exceeded().unwrap_or(e));
        }
        last = Some(name);
    }
    x.finish()
}

/// Where [`apply_entries`] gets the contents of an [`EntryKind::File`] entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sources {
    /// Copy each source file; sources are left as they are.
    Copy,
    /// Hard-link each source file into the root when it has no other link yet (so the first
    /// entry, in this or any earlier call, that uses it; later ones, and sources on another
    /// filesystem, are copied): the source's inode *becomes* the root's file, and its owner,
    /// mode and times are changed to the entry's. Only for staged, single-purpose files that the
    /// caller deletes afterwards (never a user's files).
    Consume,
    /// Hard-link each source file into the root when its owner, mode and mtime already are the
    /// entry's, else copy it; a source is never changed. For read-only trees of ready files
    /// shared by several roots (the unpacked-package cache): the root's file *is* the cached
    /// inode, so the root must never be written into.
    Shared,
}

/// Apply the entries of one layer beneath `root` (which must exist) without a tar stream: the
/// entries as [`LayerBuilder::into_entries`] gives them (tar order, missing parents present,
/// hard-link groups resolved, owners and clamped mtimes filled in). The result is what
/// extracting the tar [`LayerBuilder::write`] makes of the same entries gives, under the same
/// safety rules (see the module documentation); file contents come from their sources as
/// `sources` says. Layers are applied in order by calling this repeatedly on the same root.
///
/// [`LayerBuilder::into_entries`]: crate::layer::LayerBuilder::into_entries
/// [`LayerBuilder::write`]: crate::layer::LayerBuilder::write
pub fn apply_entries(
    entries: impl IntoIterator<Item = LayerEntry>,
    root: &Path,
    opts: &ExtractOptions,
    sources: Sources,
) -> Result<ExtractStats> {
    let mut x = Extractor::new(root, opts)?;
    for e in entries {
        x.planned(e, sources)?;
    }
    x.finish()
}

/// Metadata of one entry, with PAX records applied.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: TimeSpec,
}

struct DirFixup {
    real: Vec<OsString>,
    mode: u32,
    mtime: Option<TimeSpec>,
}

/// A directory beneath the root: its descriptor and its real path (symlinks resolved).
struct Resolved {
    fd: OwnedFd,
    real: Vec<OsString>,
}

struct Extractor<'a> {
    root_path: &'a Path,
    root: OwnedFd,
    opts: &'a ExtractOptions,
    is_root: bool,
    /// Real paths (relative to root) this layer wrote, with all their ancestors: what an opaque
    /// whiteout must keep and a plain whiteout must not remove.
    touched: HashSet<PathBuf>,
    dirs: Vec<DirFixup>,
    stats: ExtractStats,
    /// [`Sources::Shared`] sources already linked by this call: a second path with the same
    /// source gets a copy (distinct paths stay distinct files, as extracting the tar gives).
    shared: HashSet<PathBuf>,
}

fn unsafe_entry(entry: &str, why: impl Into<String>) -> OciError {
    OciError::UnsafeEntry {
        entry: entry.to_string(),
        why: why.into(),
    }
}

fn nix_io(op: &'static str, path: impl AsRef<Path>) -> impl FnOnce(Errno) -> OciError {
    let path = path.as_ref().to_path_buf();
    move |e| OciError::Io {
        op,
        path,
        source: io::Error::from(e),
    }
}

fn is_kind(st: &FileStat, kind: SFlag) -> bool {
    st.st_mode & SFlag::S_IFMT.bits() == kind.bits()
}

fn mode_bits(mode: u32) -> Mode {
    Mode::from_bits_truncate((mode & 0o7777) as libc::mode_t)
}

/// Split a tar name into components, refusing absolute names and `..`.
fn split_name<'n>(raw: &'n [u8], entry: &str, what: &str) -> Result<Vec<&'n OsStr>> {
    if raw.first() == Some(&b'/') {
        return Err(unsafe_entry(
            entry,
            format!("{what} `{}` is absolute", String::from_utf8_lossy(raw)),
        ));
    }
    let mut comps = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                return Err(unsafe_entry(
                    entry,
                    format!(
                        "{what} `{}` contains a `..` component",
                        String::from_utf8_lossy(raw)
                    ),
                ));
            }
            c if c.contains(&0) => {
                return Err(unsafe_entry(entry, format!("{what} contains a NUL byte")));
            }
            c => comps.push(OsStr::from_bytes(c)),
        }
    }
    Ok(comps)
}

fn open_dir_nofollow(dir: impl AsFd, name: &OsStr) -> nix::Result<OwnedFd> {
    openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

fn lstat_at(dir: impl AsFd, name: &OsStr) -> nix::Result<Option<FileStat>> {
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Names in a directory (without `.` and `..`), read through its descriptor.
fn list_dir(dir: BorrowedFd<'_>) -> io::Result<Vec<OsString>> {
    let mut names = Vec::new();
    let mut d = rustix::fs::Dir::read_from(dir)?;
    while let Some(ent) = d.read() {
        let ent = ent?;
        let n = ent.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(OsStr::from_bytes(n).to_os_string());
        }
    }
    Ok(names)
}

/// Parse a PAX time (`1234567890.123456789`, maybe negative) into a timespec.
fn parse_pax_time(v: &[u8]) -> Option<TimeSpec> {
    let s = std::str::from_utf8(v).ok()?;
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut nanos: i64 = 0;
    for i in 0..9 {
        nanos = nanos * 10 + frac.as_bytes().get(i).map_or(0, |b| i64::from(b - b'0'));
    }
    if secs < 0 || s.starts_with('-') {
        // -1.5 means one and a half seconds before the epoch.
        let total = secs.checked_mul(1_000_000_000)?.checked_sub(nanos)?;
        return Some(TimeSpec::new(
            total.div_euclid(1_000_000_000) as _,
            total.rem_euclid(1_000_000_000) as _,
        ));
    }
    Some(TimeSpec::new(secs as _, nanos as _))
}

fn read_meta<R: Read>(entry: &mut tar::Entry<'_, R>, name: &str) -> Result<Meta> {
    let bad = |field: &str| {
        let what = format!("layer entry `{name}`: unreadable {field} field");
        move |source| OciError::Stream { what, source }
    };
    // Empty numeric fields (written by some producers) read as 0, as Go's archive/tar does; the
    // header checksum has already been verified, so this is not corruption.
    let lenient = |field: &str, v: io::Result<u64>| {
        v.unwrap_or_else(|e| {
            tracing::debug!(entry = name, field, error = %e, "unreadable tar header field, using 0");
            0
        })
    };
    let h = entry.header();
    let mode = lenient("mode", h.mode().map(u64::from)) as u32 & 0o7777;
    let mut uid = lenient("uid", h.uid());
    let mut gid = lenient("gid", h.gid());
    let mtime_secs = lenient("mtime", h.mtime());
    let mut mtime = TimeSpec::new(i64::try_from(mtime_secs).unwrap_or(i64::MAX) as _, 0);
    if let Some(pax) = entry.pax_extensions().map_err(bad("PAX"))? {
        for ext in pax {
            let ext = ext.map_err(bad("PAX"))?;
            let v = ext.value_bytes();
            let num = || {
                std::str::from_utf8(v)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
            };
            match ext.key_bytes() {
                b"mtime" => mtime = parse_pax_time(v).unwrap_or(mtime),
                b"uid" => uid = num().unwrap_or(uid),
                b"gid" => gid = num().unwrap_or(gid),
                _ => {}
            }
        }
    }
    let id = |v: u64, what: &str| {
        u32::try_from(v).map_err(|_| {
            OciError::invalid(
                format!("layer entry `{name}`"),
                format!("{what} {v} is out of range"),
            )
        })
    };
    Ok(Meta {
        mode,
        uid: id(uid, "uid")?,
        gid: id(gid, "gid")?,
        mtime,
    })
}

impl<'a> Extractor<'a> {
    fn new(root: &'a Path, opts: &'a ExtractOptions) -> Result<Self> {
        let root_fd = openat(
            AT_FDCWD,
            root,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(nix_io("open extraction root", root))?;
        Ok(Extractor {
            root_path: root,
            root: root_fd,
            opts,
            is_root: nix::unistd::geteuid().is_root(),
            touched: HashSet::new(),
            shared: HashSet::new(),
            dirs: Vec::new(),
            stats: ExtractStats::default(),
        })
    }

    /// One entry of [`apply_entries`]: what [`Extractor::entry`] does with the tar entry
    /// `LayerBuilder::write` makes of it.
    fn planned(&mut self, e: LayerEntry, sources: Sources) -> Result<()> {
        let LayerEntry {
            path,
            kind,
            mode,
            uid,
            gid,
            mtime,
        } = e;
        let name = path.as_str();
        self.stats.entries += 1;
        let meta = Meta {
            mode: mode & 0o7777,
            uid: uid.unwrap_or(0),
            gid: gid.unwrap_or(0),
            mtime: TimeSpec::new(
                i64::try_from(mtime.unwrap_or(0)).unwrap_or(i64::MAX) as _,
                0,
            ),
        };
        let comps = split_name(path.as_bytes(), name, "name")?;
        if matches!(kind, EntryKind::OpaqueDir) {
            if self.opts.apply_whiteouts {
                return self.whiteout(&comps, b".wh..opq", name);
            }
            return self.file(
                &mut io::empty(),
                0,
                &comps,
                OsStr::new(".wh..wh..opq"),
                name,
                &meta,
            );
        }
        let Some((last, parent)) = comps.split_last() else {
            return self.root_entry(matches!(kind, EntryKind::Dir), name, &meta);
        };
        match kind {
            EntryKind::File(src) => self.file_from(&src, parent, last, name, &meta, sources),
            EntryKind::Bytes(b) => {
                let len = b.len() as u64;
                self.file(&mut b.as_slice(), len, parent, last, name, &meta)
            }
            EntryKind::Dir => self.dir(parent, last, name, &meta),
            EntryKind::Symlink(t) => self.symlink(parent, last, t.as_bytes(), name, &meta),
            EntryKind::Hardlink(t) => self.hardlink(parent, last, t.as_bytes(), name),
            EntryKind::Fifo => {
                let mut h = tar::Header::new_ustar();
                h.set_entry_type(tar::EntryType::Fifo);
                self.device(&h, parent, last, name, &meta)
            }
            EntryKind::Whiteout if self.opts.apply_whiteouts => {
                self.whiteout(parent, last.as_bytes(), name)
            }
            EntryKind::Whiteout => {
                let mut marker = OsString::from(".wh.");
                marker.push(last);
                self.file(&mut io::empty(), 0, parent, &marker, name, &meta)
            }
            EntryKind::OpaqueDir => Ok(()), // handled above
        }
    }

    /// A regular file whose contents are the file `src` (see [`Sources`]).
    fn file_from(
        &mut self,
        src: &Path,
        parent: &[&OsStr],
        last: &OsStr,
        name: &str,
        meta: &Meta,
        sources: Sources,
    ) -> Result<()> {
        let dir = self.parent_for_create(parent, name)?;
        let shown = self.shown(&dir.real, Some(last));
        self.prepare_slot(dir.fd.as_fd(), last, &shown, false)?;
        // A source with another link already is in use (by an earlier entry or layer): copied.
        let ready = |m: &fs::Metadata| {
            let (u, g) = self.owner(meta);
            let owner_ok = !self.opts.preserve_owner
                || (u.is_none_or(|u| u.as_raw() == m.uid())
                    && g.is_none_or(|g| g.as_raw() == m.gid()));
            owner_ok
                && m.mode() & 0o7777 == meta.mode & 0o7777
                && m.mtime() == meta.mtime.tv_sec()
                && m.mtime_nsec() == meta.mtime.tv_nsec()
        };
        let shared = sources == Sources::Shared
            && !self.shared.contains(src)
            && fs::symlink_metadata(src).is_ok_and(|m| m.is_file() && ready(&m));
        let linked = (shared
            || sources == Sources::Consume
                && fs::symlink_metadata(src).is_ok_and(|m| m.is_file() && m.nlink() == 1))
            && linkat(AT_FDCWD, src, &dir.fd, last, AtFlags::empty()).is_ok();
        let (f, size) = if linked {
            let fd = openat(
                &dir.fd,
                last,
                OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(nix_io("open", &shown))?;
            let f = File::from(fd);
            let st = f.metadata().map_err(OciError::io("inspect", &shown))?;
            if !st.is_file() {
                return Err(OciError::invalid(
                    format!("layer entry `{name}`"),
                    format!("its source {} is not a regular file", src.display()),
                ));
            }
            (f, st.len())
        } else {
            let mut from = File::open(src).map_err(OciError::io("open", src))?;
            let fd = openat(
                &dir.fd,
                last,
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )
            .map_err(nix_io("create", &shown))?;
            let mut f = File::from(fd);
            let n = io::copy(&mut from, &mut f).map_err(OciError::io("write", &shown))?;
            (f, n)
        };
        if linked && shared {
            self.shared.insert(src.to_path_buf());
        }
        // A shared inode already has the entry's metadata, and is never changed.
        if !(linked && shared) {
            if self.opts.preserve_owner {
                let (u, g) = self.owner(meta);
                fchown(&f, u, g).map_err(nix_io("chown", &shown))?;
            }
            // After chown, which clears setuid/setgid.
            fchmod(&f, mode_bits(meta.mode)).map_err(nix_io("chmod", &shown))?;
            futimens(&f, &meta.mtime, &meta.mtime).map_err(nix_io("set mtime of", &shown))?;
        }
        self.stats.bytes += size;
        self.touch(&dir.real, Some(last));
        Ok(())
    }

    fn entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        raw: &[u8],
        name: &str,
    ) -> Result<()> {
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            return Ok(());
        }
        self.stats.entries += 1;
        let comps = split_name(raw, name, "name")?;
        let meta = read_meta(entry, name)?;
        let Some((last, parent)) = comps.split_last() else {
            return self.root_entry(kind.is_dir(), name, &meta);
        };
        if self.opts.apply_whiteouts
            && let Some(target) = last.as_bytes().strip_prefix(b".wh.")
        {
            return self.whiteout(parent, target, name);
        }
        if kind.is_file() || kind.is_contiguous() || kind.is_gnu_sparse() {
            let size = entry.size();
            self.file(entry, size, parent, last, name, &meta)
        } else if kind.is_dir() {
            self.dir(parent, last, name, &meta)
        } else if kind.is_symlink() {
            let target = entry
                .link_name_bytes()
                .ok_or_else(|| unsafe_entry(name, "symlink without a target"))?
                .into_owned();
            self.symlink(parent, last, &target, name, &meta)
        } else if kind.is_hard_link() {
            let target = entry
                .link_name_bytes()
                .ok_or_else(|| unsafe_entry(name, "hard link without a target"))?
                .into_owned();
            self.hardlink(parent, last, &target, name)
        } else if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
            self.device(entry.header(), parent, last, name, &meta)
        } else {
            tracing::debug!(entry = name, kind = ?kind, "skipping layer entry of unsupported type");
            Ok(())
        }
    }

    /// An entry naming the root itself (`.`): a directory only sets the root's mode (at the end,
    /// like any directory); anything else is refused.
    fn root_entry(&mut self, is_dir: bool, name: &str, meta: &Meta) -> Result<()> {
        if !is_dir {
            return Err(unsafe_entry(
                name,
                "names the root directory itself but is not a directory",
            ));
        }
        self.dirs.push(DirFixup {
            real: Vec::new(),
            mode: meta.mode,
            mtime: None,
        });
        let now = self.working_dir_mode(meta.mode);
        fchmod(&self.root, mode_bits(now)).map_err(nix_io("chmod", self.root_path))?;
        Ok(())
    }

    /// Mode a directory gets while the layer is being extracted: a non-root caller must still be
    /// able to create entries in it. The final mode is applied in `finish`.
    fn working_dir_mode(&self, mode: u32) -> u32 {
        if self.is_root { mode } else { mode | 0o700 }
    }

    fn shown(&self, real: &[OsString], last: Option<&OsStr>) -> PathBuf {
        let mut p = self.root_path.to_path_buf();
        p.extend(real);
        if let Some(l) = last {
            p.push(l);
        }
        p
    }

    /// Record that this layer wrote `real/last` (and therefore all its ancestors).
    fn touch(&mut self, real: &[OsString], last: Option<&OsStr>) {
        let mut p: PathBuf = real.iter().collect();
        if let Some(l) = last {
            p.push(l);
        }
        loop {
            if !self.touched.insert(p.clone()) || !p.pop() {
                break;
            }
        }
    }

    fn is_touched(&self, real: &[OsString], last: &OsStr) -> bool {
        let mut p: PathBuf = real.iter().collect();
        p.push(last);
        self.touched.contains(&p)
    }

    /// Open the directory at a real path (no symlinks expected) beneath root.
    fn open_real(&self, real: &[OsString]) -> nix::Result<OwnedFd> {
        let mut cur = open_dir_nofollow(&self.root, OsStr::new("."))?;
        for c in real {
            cur = open_dir_nofollow(&cur, c)?;
        }
        Ok(cur)
    }

    /// Resolve `comps` (validated: no `..`, no absolute) to a directory beneath root, following
    /// in-root symlinks with chroot semantics. Missing directories are created when `create`,
    /// otherwise the answer is `None`.
    fn resolve_dir(
        &mut self,
        comps: &[&OsStr],
        name: &str,
        create: bool,
    ) -> Result<Option<Resolved>> {
        let mut pending: VecDeque<OsString> = comps.iter().map(|c| c.to_os_string()).collect();
        let mut real: Vec<OsString> = Vec::new();
        let mut cur = self
            .open_real(&real)
            .map_err(nix_io("open", self.root_path))?;
        let mut hops = 0u32;
        let mut retries = 0u32;
        while let Some(c) = pending.pop_front() {
            match c.as_bytes() {
                b"" | b"." => continue,
                b".." => {
                    if real.pop().is_none() {
                        return Err(unsafe_entry(name, "symlink escapes the root"));
                    }
                    cur = self
                        .open_real(&real)
                        .map_err(nix_io("open", self.shown(&real, None)))?;
                    continue;
                }
                _ => {}
            }
            match open_dir_nofollow(&cur, &c) {
                Ok(fd) => {
                    cur = fd;
                    real.push(c);
                }
                Err(Errno::ENOENT) if create => {
                    retries += 1;
                    if retries > MAX_SYMLINK_HOPS {
                        return Err(nix_io("create directory", self.shown(&real, Some(&c)))(
                            Errno::ENOENT,
                        ));
                    }
                    match mkdirat(&cur, c.as_os_str(), Mode::from_bits_truncate(0o755)) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => {
                            return Err(nix_io("create directory", self.shown(&real, Some(&c)))(e));
                        }
                    }
                    pending.push_front(c);
                }
                Err(Errno::ENOENT) => return Ok(None),
                Err(Errno::ELOOP | Errno::ENOTDIR) => {
                    let shown = self.shown(&real, Some(&c));
                    let st = fstatat(&cur, c.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
                        .map_err(nix_io("inspect", &shown))?;
                    if !is_kind(&st, SFlag::S_IFLNK) {
                        return Err(OciError::Io {
                            op: "resolve",
                            path: shown,
                            source: io::Error::from(Errno::ENOTDIR),
                        });
                    }
                    hops += 1;
                    if hops > MAX_SYMLINK_HOPS {
                        return Err(unsafe_entry(
                            name,
                            format!(
                                "too many levels of symbolic links (more than {MAX_SYMLINK_HOPS})"
                            ),
                        ));
                    }
                    let target =
                        readlinkat(&cur, c.as_os_str()).map_err(nix_io("read symlink", &shown))?;
                    let t = target.as_bytes();
                    if t.is_empty() {
                        return Err(nix_io("resolve", &shown)(Errno::ENOENT));
                    }
                    if t.first() == Some(&b'/') {
                        real.clear();
                        cur = self
                            .open_real(&real)
                            .map_err(nix_io("open", self.root_path))?;
                    }
                    for part in t.split(|b| *b == b'/').rev() {
                        pending.push_front(OsStr::from_bytes(part).to_os_string());
                    }
                }
                Err(e) => return Err(nix_io("open", self.shown(&real, Some(&c)))(e)),
            }
        }
        Ok(Some(Resolved { fd: cur, real }))
    }

    /// Resolve the parent of an entry that is about to be created.
    fn parent_for_create(&mut self, parent: &[&OsStr], name: &str) -> Result<Resolved> {
        self.resolve_dir(parent, name, true)?.ok_or_else(|| {
            // Unreachable in practice: with `create` every missing directory is made.
            unsafe_entry(name, "its parent directory could not be created")
        })
    }

    /// Remove whatever is at `dir/name`, recursively for a directory, never following symlinks.
    fn remove_tree(&self, dir: BorrowedFd<'_>, name: &OsStr, shown: &Path) -> Result<()> {
        let Some(st) = lstat_at(dir, name).map_err(nix_io("inspect", shown))? else {
            return Ok(());
        };
        if is_kind(&st, SFlag::S_IFDIR) {
            let fd = open_dir_nofollow(dir, name).map_err(nix_io("open", shown))?;
            if !self.is_root && st.st_mode & 0o700 != 0o700 {
                fchmod(&fd, mode_bits(st.st_mode | 0o700)).map_err(nix_io("chmod", shown))?;
            }
            for child in list_dir(fd.as_fd()).map_err(OciError::io("list", shown))? {
                self.remove_tree(fd.as_fd(), &child, &shown.join(&child))?;
            }
            match unlinkat(dir, name, UnlinkatFlags::RemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => Ok(()),
                Err(e) => Err(nix_io("remove directory", shown)(e)),
            }
        } else {
            match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => Ok(()),
                Err(e) => Err(nix_io("remove", shown)(e)),
            }
        }
    }

    /// Clear the way for a new entry at `dir/name`. Returns true when an existing directory was
    /// kept (only when `keep_dir`).
    fn prepare_slot(
        &self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        shown: &Path,
        keep_dir: bool,
    ) -> Result<bool> {
        match lstat_at(dir, name).map_err(nix_io("inspect", shown))? {
            None => Ok(false),
            Some(st) if is_kind(&st, SFlag::S_IFDIR) => {
                if keep_dir {
                    Ok(true)
                } else {
                    self.remove_tree(dir, name, shown)?;
                    Ok(false)
                }
            }
            Some(_) => match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => Ok(false),
                Err(e) => Err(nix_io("remove", shown)(e)),
            },
        }
    }

    fn owner(&self, meta: &Meta) -> (Option<Uid>, Option<Gid>) {
        (Some(Uid::from_raw(meta.uid)), Some(Gid::from_raw(meta.gid)))
    }

    fn file(
        &mut self,
        data: &mut impl Read,
        size: u64,
        parent: &[&OsStr],
        last: &OsStr,
        name: &str,
        meta: &Meta,
    ) -> Result<()> {
        let dir = self.parent_for_create(parent, name)?;
        let shown = self.shown(&dir.real, Some(last));
        self.prepare_slot(dir.fd.as_fd(), last, &shown, false)?;
        let fd = openat(
            &dir.fd,
            last,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(nix_io("create", &shown))?;
        let mut f = File::from(fd);
        let mut buf = vec![0u8; 64 * 1024];
        let mut written: u64 = 0;
        loop {
            let n = match data.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(OciError::Stream {
                        what: format!("reading the data of layer entry `{name}`"),
                        source,
                    });
                }
            };
            f.write_all(&buf[..n])
                .map_err(OciError::io("write", &shown))?;
            written += n as u64;
        }
        if written != size {
            return Err(OciError::Stream {
                what: format!(
                    "layer entry `{name}` is truncated: the header says {size} bytes, the archive ends after {written}"
                ),
                source: io::Error::from(io::ErrorKind::UnexpectedEof),
            });
        }
        if self.opts.preserve_owner {
            let (u, g) = self.owner(meta);
            fchown(&f, u, g).map_err(nix_io("chown", &shown))?;
        }
        // After chown, which clears setuid/setgid.
        fchmod(&f, mode_bits(meta.mode)).map_err(nix_io("chmod", &shown))?;
        futimens(&f, &meta.mtime, &meta.mtime).map_err(nix_io("set mtime of", &shown))?;
        self.stats.bytes += written;
        self.touch(&dir.real, Some(last));
        Ok(())
    }

    fn dir(&mut self, parent: &[&OsStr], last: &OsStr, name: &str, meta: &Meta) -> Result<()> {
        let dir = self.parent_for_create(parent, name)?;
        let shown = self.shown(&dir.real, Some(last));
        let kept = self.prepare_slot(dir.fd.as_fd(), last, &shown, true)?;
        if !kept {
            mkdirat(&dir.fd, last, Mode::from_bits_truncate(0o700))
                .map_err(nix_io("create directory", &shown))?;
        }
        let fd = open_dir_nofollow(&dir.fd, last).map_err(nix_io("open", &shown))?;
        if self.opts.preserve_owner {
            let (u, g) = self.owner(meta);
            fchown(&fd, u, g).map_err(nix_io("chown", &shown))?;
        }
        fchmod(&fd, mode_bits(self.working_dir_mode(meta.mode)))
            .map_err(nix_io("chmod", &shown))?;
        let mut real = dir.real;
        real.push(last.to_os_string());
        self.touch(&real, None);
        self.dirs.push(DirFixup {
            real,
            mode: meta.mode,
            mtime: Some(meta.mtime),
        });
        Ok(())
    }

    fn symlink(
        &mut self,
        parent: &[&OsStr],
        last: &OsStr,
        target: &[u8],
        name: &str,
        meta: &Meta,
    ) -> Result<()> {
        let dir = self.parent_for_create(parent, name)?;
        let shown = self.shown(&dir.real, Some(last));
        self.prepare_slot(dir.fd.as_fd(), last, &shown, false)?;
        symlinkat(OsStr::from_bytes(target), &dir.fd, last)
            .map_err(nix_io("create symlink", &shown))?;
        if self.opts.preserve_owner {
            let (u, g) = self.owner(meta);
            fchownat(&dir.fd, last, u, g, AtFlags::AT_SYMLINK_NOFOLLOW)
                .map_err(nix_io("chown", &shown))?;
        }
        utimensat(
            &dir.fd,
            last,
            &meta.mtime,
            &meta.mtime,
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(nix_io("set mtime of", &shown))?;
        self.touch(&dir.real, Some(last));
        Ok(())
    }

    fn hardlink(
        &mut self,
        parent: &[&OsStr],
        last: &OsStr,
        target: &[u8],
        name: &str,
    ) -> Result<()> {
        let shown_target = String::from_utf8_lossy(target).into_owned();
        let tcomps = split_name(target, name, "hard link target")?;
        let Some((tlast, tparent)) = tcomps.split_last() else {
            return Err(unsafe_entry(name, "hard link to the root directory"));
        };
        let missing = || {
            unsafe_entry(
                name,
                format!("hard link target `{shown_target}` does not exist in the root"),
            )
        };
        let tdir = self
            .resolve_dir(tparent, name, false)?
            .ok_or_else(missing)?;
        let tshown = self.shown(&tdir.real, Some(tlast));
        let tst = lstat_at(&tdir.fd, tlast)
            .map_err(nix_io("inspect", &tshown))?
            .ok_or_else(missing)?;
        if !is_kind(&tst, SFlag::S_IFREG) {
            return Err(unsafe_entry(
                name,
                format!("hard link target `{shown_target}` is not a regular file"),
            ));
        }
        let dir = self.parent_for_create(parent, name)?;
        let shown = self.shown(&dir.real, Some(last));
        let existing = lstat_at(&dir.fd, last).map_err(nix_io("inspect", &shown))?;
        if existing.is_some_and(|cur| cur.st_dev == tst.st_dev && cur.st_ino == tst.st_ino) {
            // Already the same file (a link to itself, or a repeated entry).
            self.touch(&dir.real, Some(last));
            return Ok(());
        }
        self.prepare_slot(dir.fd.as_fd(), last, &shown, false)?;
        // No AT_SYMLINK_FOLLOW: even if the target were swapped for a symlink after the check,
        // the link would be to the symlink itself, which stays inside the root.
        linkat(&tdir.fd, *tlast, &dir.fd, last, AtFlags::empty())
            .map_err(nix_io("create hard link", &shown))?;
        self.touch(&dir.real, Some(last));
        Ok(())
    }

    fn device(
        &mut self,
        h: &tar::Header,
        parent: &[&OsStr],
        last: &OsStr,
        name: &str,
        meta: &Meta,
    ) -> Result<()> {
        if !(self.opts.privileged && self.is_root) {
            self.stats.skipped_devices += 1;
            return Ok(());
        }
        let kind = h.entry_type();
        let (sflag, dev) = if kind.is_fifo() {
            (SFlag::S_IFIFO, 0)
        } else {
            let bad = |what: &'static str| {
                let what = format!("layer entry `{name}`: unreadable device {what}");
                move |source| OciError::Stream { what, source }
            };
            let major = h.device_major().map_err(bad("major"))?.unwrap_or(0);
            let minor = h.device_minor().map_err(bad("minor"))?.unwrap_or(0);
            let sflag = if kind.is_block_special() {
                SFlag::S_IFBLK
            } else {
                SFlag::S_IFCHR
            };
            (sflag, makedev(u64::from(major), u64::from(minor)))
        };
        let dir = self.parent_for_create(parent, name)?;
        let shown = self.shown(&dir.real, Some(last));
        self.prepare_slot(dir.fd.as_fd(), last, &shown, false)?;
        match mknodat(&dir.fd, last, sflag, mode_bits(meta.mode & 0o777), dev) {
            Ok(()) => {}
            Err(Errno::EPERM) => {
                tracing::warn!(
                    entry = name,
                    "the kernel refused mknod; skipping device node"
                );
                self.stats.skipped_devices += 1;
                return Ok(());
            }
            Err(e) => return Err(nix_io("create device node", &shown)(e)),
        }
        if self.opts.preserve_owner {
            let (u, g) = self.owner(meta);
            fchownat(&dir.fd, last, u, g, AtFlags::AT_SYMLINK_NOFOLLOW)
                .map_err(nix_io("chown", &shown))?;
        }
        // mknod applied the umask; set the exact mode without following a (raced-in) symlink.
        match fchmodat(
            &dir.fd,
            last,
            mode_bits(meta.mode),
            FchmodatFlags::NoFollowSymlink,
        ) {
            Ok(()) | Err(Errno::EOPNOTSUPP) => {}
            Err(e) => return Err(nix_io("chmod", &shown)(e)),
        }
        utimensat(
            &dir.fd,
            last,
            &meta.mtime,
            &meta.mtime,
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(nix_io("set mtime of", &shown))?;
        self.touch(&dir.real, Some(last));
        Ok(())
    }

    fn whiteout(&mut self, parent: &[&OsStr], target: &[u8], name: &str) -> Result<()> {
        if target == b".wh..opq" {
            self.stats.whiteouts += 1;
            let Some(dir) = self.resolve_dir(parent, name, false)? else {
                return Ok(());
            };
            self.touch(&dir.real, None);
            let shown = self.shown(&dir.real, None);
            return self.clear_lower(dir.fd.as_fd(), &dir.real, &shown);
        }
        if target.starts_with(b".wh.") {
            // aufs metadata (`.wh..wh.plnk`, `.wh..wh.aufs`): meaningless here.
            return Ok(());
        }
        if matches!(target, b"" | b"." | b"..") {
            return Err(unsafe_entry(
                name,
                "whiteout does not name a file in its directory",
            ));
        }
        self.stats.whiteouts += 1;
        let Some(dir) = self.resolve_dir(parent, name, false)? else {
            return Ok(());
        };
        let target = OsStr::from_bytes(target);
        if self.is_touched(&dir.real, target) {
            // The spec: a whiteout only hides what lower layers hold.
            return Ok(());
        }
        let shown = self.shown(&dir.real, Some(target));
        self.remove_tree(dir.fd.as_fd(), target, &shown)
    }

    /// Remove from `dir` everything that this layer did not write.
    fn clear_lower(&self, dir: BorrowedFd<'_>, real: &[OsString], shown: &Path) -> Result<()> {
        for child in list_dir(dir).map_err(OciError::io("list", shown))? {
            let child_shown = shown.join(&child);
            if !self.is_touched(real, &child) {
                self.remove_tree(dir, &child, &child_shown)?;
                continue;
            }
            let Some(st) = lstat_at(dir, &child).map_err(nix_io("inspect", &child_shown))? else {
                continue;
            };
            if is_kind(&st, SFlag::S_IFDIR) {
                let fd = open_dir_nofollow(dir, &child).map_err(nix_io("open", &child_shown))?;
                let mut child_real = real.to_vec();
                child_real.push(child);
                self.clear_lower(fd.as_fd(), &child_real, &child_shown)?;
            }
        }
        Ok(())
    }

    /// Apply directory modes and mtimes, last entry first; a directory listed twice keeps the
    /// metadata of its last entry. Directories that a later entry removed or replaced are skipped.
    fn finish(self) -> Result<ExtractStats> {
        let mut done: HashSet<&[OsString]> = HashSet::new();
        for fix in self.dirs.iter().rev() {
            if !done.insert(fix.real.as_slice()) {
                continue;
            }
            let shown = self.shown(&fix.real, None);
            let fd = match self.open_real(&fix.real) {
                Ok(fd) => fd,
                Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP) => continue,
                Err(e) => return Err(nix_io("open", &shown)(e)),
            };
            fchmod(&fd, mode_bits(fix.mode)).map_err(nix_io("chmod", &shown))?;
            if let Some(t) = &fix.mtime {
                futimens(&fd, t, t).map_err(nix_io("set mtime of", &shown))?;
            }
        }
        Ok(self.stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times() {
        let t = parse_pax_time(b"1234567890.5").map(|t| (t.tv_sec(), t.tv_nsec()));
        assert_eq!(t, Some((1_234_567_890, 500_000_000)));
        let t = parse_pax_time(b"-1.5").map(|t| (t.tv_sec(), t.tv_nsec()));
        assert_eq!(t, Some((-2, 500_000_000)));
        assert!(parse_pax_time(b"12x").is_none());
    }

    #[test]
    fn names() {
        let n = |s: &str| {
            split_name(s.as_bytes(), s, "name").map(|v| {
                v.iter()
                    .map(|c| c.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(
            n("./a//b/./c/").ok(),
            Some(vec!["a".into(), "b".into(), "c".into()])
        );
        assert_eq!(n("./").ok(), Some(vec![]));
        assert!(n("/etc/passwd").is_err());
        assert!(n("a/../../b").is_err());
        assert!(n("..").is_err());
    }
}
