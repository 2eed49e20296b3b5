//! `.deb` files, natively: read the control member, stream the data member into a layer, and
//! write the distroless-style package record.
//!
//! A `.deb` is an `ar` archive whose members are, in this order: `debian-binary` (`2.x`),
//! `control.tar[.xz|.zst|.gz]` and `data.tar[.xz|.zst|.gz]`; members whose names start with `_`
//! (signatures) may follow, as dpkg allows. Anything else is refused, naming the file and member.
//!
//! Unpacking never runs maintainer scripts. File contents are streamed into a content-addressed
//! staging directory (`<staging>/sha256/<hex>`) and the layer entries point at those files, so a
//! package is never held in memory; the layer writer streams them when the layer is written.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use ocibuild_oci::layer::{EntryKind, LayerBuilder, LayerEntry};
use sha2::{Digest as _, Sha256};

use crate::control::{Paragraph, parse};
use crate::error::{DebianError, Result};

/// Largest control member file we read into memory (control, md5sums, conffiles).
const MAX_CONTROL_FILE: u64 = 64 << 20;

/// Where the distroless-style package records live in the image.
pub const STATUS_DIR: &str = "var/lib/dpkg/status.d";

/// What [`read_control`] found in a `.deb`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DebContents {
    /// The package's `control` file (one paragraph).
    pub control: Paragraph,
    /// The `control` file exactly as the package ships it (what [`dpkg_record`] writes).
    pub control_text: String,
    /// `md5sums` from the control member, if the package has one.
    pub md5sums: Option<String>,
    /// `conffiles` from the control member, if the package has one.
    pub conffiles: Option<String>,
    /// `postinst` from the control member: never run, only read for the
    /// `update-alternatives --install` links it would make ([`crate::alternatives`]).
    pub postinst: Option<String>,
    /// Compression of the data member: `"xz"`, `"zst"`, `"gz"` or `"none"`.
    pub data_compression: &'static str,
}

impl DebContents {
    /// The `Package` field.
    pub fn package(&self) -> Option<&str> {
        self.control.get("Package")
    }
}

/// Distroless trimming: what [`unpack_into`] leaves out of the image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trim {
    /// Glob-like path prefixes (relative, `/`-separated). A pattern matches a path when its
    /// components match the path's leading components; `*` within a component matches any run
    /// of characters, and a `**` component spans any number of components (none included).
    /// `usr/share/man` drops the directory and everything below it; `usr/share/doc/*` drops
    /// everything below `usr/share/doc` but keeps the directory itself;
    /// `usr/share/nodejs/**/*.d.ts` drops type declarations at any depth.
    pub drop: Vec<String>,
    /// Literal paths (relative, `/`-separated) kept although a `drop` pattern matches them;
    /// their parent directories are kept too. `usr/share/nodejs/*` with the few files
    /// `libnode` loads its shared builtins from keeps those files alone.
    pub keep: Vec<String>,
    /// Keep `usr/share/doc/<pkg>/copyright` even when a `drop` pattern matches it (licences stay
    /// for compliance). Default `true`.
    pub keep_docs_copyright: bool,
}

impl Default for Trim {
    /// Distroless defaults: docs (except copyright files), man pages, info, locales and lintian
    /// overrides are dropped.
    fn default() -> Self {
        Self {
            drop: [
                "usr/share/doc/*",
                "usr/share/man",
                "usr/share/info",
                "usr/share/locale",
                "usr/share/lintian",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            keep: Vec::new(),
            keep_docs_copyright: true,
        }
    }
}

impl Trim {
    /// Keep everything.
    pub fn none() -> Self {
        Self {
            drop: Vec::new(),
            keep: Vec::new(),
            keep_docs_copyright: true,
        }
    }

    /// Whether `path` (normalised, relative) is left out.
    pub fn drops(&self, path: &str) -> bool {
        if self.keep_docs_copyright && is_doc_copyright(path) {
            return false;
        }
        let kept = self.keep.iter().any(|k| {
            let k = k.trim_matches('/');
            k == path
                || k.strip_prefix(path)
                    .is_some_and(|rest| rest.starts_with('/'))
        });
        !kept && self.drop.iter().any(|p| pattern_matches(p, path))
    }
}

/// `usr/share/doc/<one component>/copyright`.
fn is_doc_copyright(path: &str) -> bool {
    path.strip_prefix("usr/share/doc/")
        .and_then(|rest| rest.strip_suffix("/copyright"))
        .is_some_and(|pkg| !pkg.is_empty() && !pkg.contains('/'))
}

fn pattern_matches(pattern: &str, path: &str) -> bool {
    let pat: Vec<&str> = pattern
        .trim_matches('/')
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if pat.is_empty() {
        return false;
    }
    let comps: Vec<&str> = path.split('/').collect();
    prefix_matches(&pat, &comps)
}

/// Whether `pat` matches the leading components of `comps`; a `**` component spans any number
/// of components (none included).
fn prefix_matches(pat: &[&str], comps: &[&str]) -> bool {
    match pat.split_first() {
        None => true,
        Some((&"**", rest)) => (0..=comps.len()).any(|skip| prefix_matches(rest, &comps[skip..])),
        Some((p, rest)) => comps
            .split_first()
            .is_some_and(|(c, more)| glob_component(p, c) && prefix_matches(rest, more)),
    }
}

/// `*` matches any run of characters (within one component).
fn glob_component(pat: &str, s: &str) -> bool {
    let parts: Vec<&str> = pat.split('*').collect();
    if parts.len() == 1 {
        return pat == s;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !s.starts_with(first) || s.len() < first.len() + last.len() || !s.ends_with(last) {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// What [`unpack_into`] added.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnpackStats {
    /// Regular files added (hard links not counted).
    pub files: u64,
    /// Bytes of regular file contents added.
    pub bytes: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    /// Entries left out by the [`Trim`].
    pub dropped: u64,
}

/// Compression of a `.deb` member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Comp {
    Xz,
    Zst,
    Gz,
    None,
}

impl Comp {
    fn as_str(self) -> &'static str {
        match self {
            Comp::Xz => "xz",
            Comp::Zst => "zst",
            Comp::Gz => "gz",
            Comp::None => "none",
        }
    }

    fn from_suffix(s: &str) -> Option<Comp> {
        match s {
            "" => Some(Comp::None),
            ".xz" => Some(Comp::Xz),
            ".zst" => Some(Comp::Zst),
            ".gz" => Some(Comp::Gz),
            _ => None,
        }
    }

    fn decoder<'a>(self, r: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
        Ok(match self {
            Comp::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(r)),
            Comp::Zst => Box::new(zstd::stream::read::Decoder::new(r)?),
            Comp::Gz => Box::new(flate2::read::MultiGzDecoder::new(r)),
            Comp::None => Box::new(r),
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Member {
    Control(Comp),
    Data(Comp),
}

fn invalid(deb: &Path, member: Option<&str>, detail: impl Into<String>) -> DebianError {
    let what = match member {
        Some(m) => format!("{}: member {m}", deb.display()),
        None => deb.display().to_string(),
    };
    DebianError::Invalid {
        what,
        detail: detail.into(),
    }
}

fn io_err(deb: &Path, member: Option<&str>, e: io::Error) -> DebianError {
    let what = match member {
        Some(m) => format!("{}: member {m}", deb.display()),
        None => deb.display().to_string(),
    };
    let what = if e.kind() == io::ErrorKind::UnexpectedEof {
        format!("{what} (the .deb is truncated or corrupt)")
    } else {
        what
    };
    DebianError::Io { what, source: e }
}

/// A member's tar under the archive limits (`OCIBUILD_LAYER_MAX_*`, as for image layers): a
/// hostile package cannot make the reader hold a huge name in memory or read without end.
fn member_tar<'a>(
    deb: &Path,
    name: &str,
    r: &'a mut dyn Read,
) -> Result<ocibuild_oci::limited::Archive<&'a mut dyn Read>> {
    ocibuild_oci::limited::Archive::from_env(r, format!("member {name} of {}", deb.display()))
        .map_err(|e| io_err(deb, Some(name), e))
}

/// Reads exactly `len` bytes from an `ar` member; a short member (truncated file) is an error
/// instead of a silent end of data.
struct Exact<R> {
    inner: R,
    left: u64,
    len: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let max = usize::try_from(self.left)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = self.inner.read(&mut buf[..max])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the member ends after {} of its {} bytes",
                    self.len - self.left,
                    self.len
                ),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Walk the members of a `.deb`, checking names and order, and hand the control and data
/// members (decompressed) to `f`. `f` returns `false` to stop early. At the end of the archive
/// (when not stopped), both members must have been seen.
fn walk_deb(
    deb: &Path,
    mut f: impl FnMut(Member, &str, &mut dyn Read) -> Result<bool>,
) -> Result<()> {
    let file = File::open(deb).map_err(|e| io_err(deb, None, e))?;
    let mut archive = ar::Archive::new(BufReader::with_capacity(1 << 16, file));
    let mut index = 0usize;
    let mut control_seen = false;
    let mut data_seen = false;
    while let Some(entry) = archive.next_entry() {
        let entry = entry.map_err(|e| {
            if index == 0 {
                invalid(deb, None, format!("not a Debian package (ar archive): {e}"))
            } else {
                io_err(deb, None, e)
            }
        })?;
        let raw = entry.header().identifier().to_vec();
        let name = String::from_utf8_lossy(&raw)
            .trim_end_matches('/')
            .to_string();
        let len = entry.header().size();
        let mut reader = Exact {
            inner: entry,
            left: len,
            len,
        };
        let first = index == 0;
        index += 1;
        if first {
            if name != "debian-binary" {
                return Err(invalid(
                    deb,
                    Some(&name),
                    "not a Debian package: the first member must be `debian-binary`",
                ));
            }
            let mut buf = Vec::new();
            (&mut reader)
                .take(64)
                .read_to_end(&mut buf)
                .map_err(|e| io_err(deb, Some(&name), e))?;
            let version = String::from_utf8_lossy(&buf);
            let version = version.trim();
            if !version.starts_with("2.") {
                return Err(invalid(
                    deb,
                    Some(&name),
                    format!("unsupported .deb format version `{version}` (only 2.x is supported)"),
                ));
            }
            continue;
        }
        let member = if let Some(suffix) = name.strip_prefix("control.tar") {
            let comp = Comp::from_suffix(suffix).ok_or_else(|| {
                invalid(deb, Some(&name), "unsupported control member compression")
            })?;
            if control_seen || data_seen {
                return Err(invalid(
                    deb,
                    Some(&name),
                    "control member duplicated or after data",
                ));
            }
            control_seen = true;
            Member::Control(comp)
        } else if let Some(suffix) = name.strip_prefix("data.tar") {
            let comp = Comp::from_suffix(suffix).ok_or_else(|| {
                invalid(
                    deb,
                    Some(&name),
                    "unsupported data member compression (xz, zst, gz or none)",
                )
            })?;
            if !control_seen {
                return Err(invalid(
                    deb,
                    Some(&name),
                    "data member before the control member",
                ));
            }
            if data_seen {
                return Err(invalid(deb, Some(&name), "data member duplicated"));
            }
            data_seen = true;
            Member::Data(comp)
        } else if name.starts_with('_') {
            continue; // e.g. `_gpgbuilder`: dpkg ignores these
        } else {
            return Err(invalid(
                deb,
                Some(&name),
                "unexpected member in a Debian package",
            ));
        };
        let comp = match member {
            Member::Control(c) | Member::Data(c) => c,
        };
        let mut dec = comp
            .decoder(&mut reader)
            .map_err(|e| io_err(deb, Some(&name), e))?;
        if !f(member, &name, &mut dec)? {
            return Ok(());
        }
    }
    if index == 0 {
        return Err(invalid(
            deb,
            None,
            "not a Debian package: empty or not an ar archive",
        ));
    }
    if !control_seen {
        return Err(invalid(
            deb,
            None,
            "no control.tar member (truncated or not a .deb?)",
        ));
    }
    if !data_seen {
        return Err(invalid(
            deb,
            None,
            "no data.tar member (truncated or not a .deb?)",
        ));
    }
    Ok(())
}

/// Read a `.deb`: its control file, md5sums and conffiles, and the data member's compression.
/// Refuses anything that is not a format-2 `.deb`, naming the file and member.
pub fn read_control(deb: &Path) -> Result<DebContents> {
    let mut control: Option<String> = None;
    let mut md5sums = None;
    let mut conffiles = None;
    let mut postinst = None;
    let mut data_compression = None;
    walk_deb(deb, |member, name, r| match member {
        Member::Control(_) => {
            let mut archive = member_tar(deb, name, r)?;
            let entries = archive.entries().map_err(|e| io_err(deb, Some(name), e))?;
            for entry in entries {
                let entry = entry.map_err(|e| io_err(deb, Some(name), e))?;
                let path = entry.path_bytes();
                let path = String::from_utf8_lossy(&path);
                let file = path.trim_start_matches("./").to_string();
                let slot = match file.as_str() {
                    "control" => &mut control,
                    "md5sums" => &mut md5sums,
                    "conffiles" => &mut conffiles,
                    "postinst" => &mut postinst,
                    _ => continue,
                };
                if !entry.header().entry_type().is_file() {
                    continue;
                }
                let mut buf = Vec::new();
                entry
                    .take(MAX_CONTROL_FILE)
                    .read_to_end(&mut buf)
                    .map_err(|e| io_err(deb, Some(name), e))?;
                let text = String::from_utf8(buf).map_err(|_| {
                    invalid(deb, Some(name), format!("`{file}` is not valid UTF-8"))
                })?;
                *slot = Some(text);
            }
            let mut rest = archive.into_inner();
            io::copy(&mut rest, &mut io::sink()).map_err(|e| io_err(deb, Some(name), e))?;
            Ok(true)
        }
        Member::Data(c) => {
            data_compression = Some(c.as_str());
            Ok(false)
        }
    })?;
    let control_text =
        control.ok_or_else(|| invalid(deb, Some("control.tar"), "it has no `control` file"))?;
    let paragraph = parse(&control_text)
        .into_iter()
        .next()
        .ok_or_else(|| invalid(deb, Some("control.tar"), "the `control` file is empty"))?;
    for field in ["Package", "Version", "Architecture"] {
        if paragraph.get(field).is_none_or(str::is_empty) {
            return Err(invalid(
                deb,
                Some("control.tar"),
                format!("the `control` file has no {field} field"),
            ));
        }
    }
    let data_compression = data_compression
        .ok_or_else(|| invalid(deb, None, "no data.tar member (truncated or not a .deb?)"))?;
    Ok(DebContents {
        control: paragraph,
        control_text,
        md5sums,
        conffiles,
        postinst,
        data_compression,
    })
}

/// A tar path → a layer path: `./usr/bin/x` → `usr/bin/x`; `.`, `./` → `None` (the root);
/// absolute names and `..` components are refused.
fn normalize_entry_path(deb: &Path, member: &str, raw: &[u8]) -> Result<Option<String>> {
    let name = std::str::from_utf8(raw).map_err(|_| {
        invalid(
            deb,
            Some(member),
            format!(
                "entry `{}`: its name is not valid UTF-8",
                String::from_utf8_lossy(raw)
            ),
        )
    })?;
    if name.starts_with('/') {
        return Err(unsafe_entry(deb, member, name, "it is an absolute path"));
    }
    let mut out = String::new();
    for comp in name.split('/') {
        match comp {
            "" | "." => {}
            ".." => return Err(unsafe_entry(deb, member, name, "it has a `..` component")),
            c => {
                if !out.is_empty() {
                    out.push('/');
                }
                out.push_str(c);
            }
        }
    }
    Ok((!out.is_empty()).then_some(out))
}

fn unsafe_entry(deb: &Path, member: &str, name: &str, why: &str) -> DebianError {
    invalid(
        deb,
        Some(member),
        format!("unsafe entry `{name}` refused: {why} (it would land outside the image root)"),
    )
}

/// Stream `r` into the content-addressed staging directory; returns the staged path and size.
pub(crate) fn stage(staging: &Path, r: &mut dyn Read) -> io::Result<(PathBuf, u64)> {
    let dir = staging.join("sha256");
    fs::create_dir_all(&dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(&dir)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        tmp.write_all(&buf[..n])?;
        size += n as u64;
    }
    tmp.flush()?;
    let dest = dir.join(hex::encode(hasher.finalize()));
    if fs::symlink_metadata(&dest).is_ok_and(|m| m.is_file() && m.len() == size) {
        // Same content already staged (another file or package): drop the temporary copy.
        return Ok((dest, size));
    }
    tmp.persist(&dest).map_err(|e| e.error)?;
    Ok((dest, size))
}

fn to_layer_err(deb: &Path, member: &str, e: ocibuild_oci::OciError) -> DebianError {
    invalid(deb, Some(member), e.to_string())
}

/// A kept hard link whose target was trimmed: it becomes a regular file (second pass).
struct Orphan {
    path: String,
    target: String,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: u64,
}

/// Stream the data member of `deb` into `builder` (under the image root), without running
/// maintainer scripts: regular files (staged under `staging`), directories, symlinks and hard
/// links with their modes, ownership and mtimes. Paths are normalised (`./usr/bin/x` →
/// `usr/bin/x`); absolute names and `..` components are refused, naming the entry; devices and
/// fifos are refused. Entries matched by `trim` are left out (a kept hard link whose target was
/// left out becomes a regular file). On error, entries already added stay in `builder`: drop
/// the builder.
pub fn unpack_into(
    deb: &Path,
    builder: &mut LayerBuilder,
    staging: &Path,
    trim: &Trim,
) -> Result<UnpackStats> {
    let mut stats = UnpackStats::default();
    let mut dropped_files: BTreeSet<String> = BTreeSet::new();
    // regular files kept so far: a hard link must point at one of them (tar order)
    let mut kept_files: BTreeSet<String> = BTreeSet::new();
    let mut orphans: Vec<Orphan> = Vec::new();
    walk_deb(deb, |member, name, r| {
        if !matches!(member, Member::Data(_)) {
            return Ok(true);
        }
        let mut archive = member_tar(deb, name, r)?;
        let entries = archive.entries().map_err(|e| io_err(deb, Some(name), e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| io_err(deb, Some(name), e))?;
            let raw = entry.path_bytes().into_owned();
            let Some(path) = normalize_entry_path(deb, name, &raw)? else {
                continue; // `./`: the image root itself
            };
            let header = entry.header();
            let ty = header.entry_type();
            let meta_err = |e: io::Error| {
                invalid(
                    deb,
                    Some(name),
                    format!("entry `{path}`: bad tar header: {e}"),
                )
            };
            let mode = header.mode().map_err(meta_err)? & 0o7777;
            let uid = u32::try_from(header.uid().map_err(meta_err)?)
                .map_err(|_| invalid(deb, Some(name), format!("entry `{path}`: uid too large")))?;
            let gid = u32::try_from(header.gid().map_err(meta_err)?)
                .map_err(|_| invalid(deb, Some(name), format!("entry `{path}`: gid too large")))?;
            let mtime = header.mtime().map_err(meta_err)?;
            let dropped = trim.drops(&path);
            let kind = match ty {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    if dropped {
                        dropped_files.insert(path);
                        stats.dropped += 1;
                        continue;
                    }
                    let (src, size) =
                        stage(staging, &mut entry).map_err(|e| io_err(deb, Some(name), e))?;
                    stats.files += 1;
                    stats.bytes += size;
                    kept_files.insert(path.clone());
                    EntryKind::File(src)
                }
                tar::EntryType::Directory => {
                    if dropped {
                        stats.dropped += 1;
                        continue;
                    }
                    stats.dirs += 1;
                    EntryKind::Dir
                }
                tar::EntryType::Symlink => {
                    if dropped {
                        stats.dropped += 1;
                        continue;
                    }
                    let target = entry.link_name_bytes().ok_or_else(|| {
                        invalid(deb, Some(name), format!("symlink `{path}` has no target"))
                    })?;
                    let target = String::from_utf8(target.into_owned()).map_err(|_| {
                        invalid(
                            deb,
                            Some(name),
                            format!("symlink `{path}`: target is not valid UTF-8"),
                        )
                    })?;
                    stats.symlinks += 1;
                    EntryKind::Symlink(target)
                }
                tar::EntryType::Link => {
                    if dropped {
                        stats.dropped += 1;
                        continue;
                    }
                    let target = entry.link_name_bytes().ok_or_else(|| {
                        invalid(deb, Some(name), format!("hard link `{path}` has no target"))
                    })?;
                    let target = normalize_entry_path(deb, name, &target)?.ok_or_else(|| {
                        invalid(
                            deb,
                            Some(name),
                            format!("hard link `{path}` points at the root"),
                        )
                    })?;
                    if dropped_files.contains(&target) {
                        orphans.push(Orphan {
                            path,
                            target,
                            mode,
                            uid,
                            gid,
                            mtime,
                        });
                        continue;
                    }
                    if !kept_files.contains(&target) {
                        return Err(invalid(
                            deb,
                            Some(name),
                            format!(
                                "hard link `{path}` points at `{target}`, which is not a \
                                 regular file earlier in the package"
                            ),
                        ));
                    }
                    stats.hardlinks += 1;
                    EntryKind::Hardlink(target)
                }
                other => {
                    return Err(invalid(
                        deb,
                        Some(name),
                        format!(
                            "entry `{path}` is of an unsupported type ({other:?}; devices and \
                             fifos cannot be stored in an image layer)"
                        ),
                    ));
                }
            };
            let entry = LayerEntry {
                path,
                kind,
                mode: if matches!(ty, tar::EntryType::Symlink) {
                    0o777
                } else {
                    mode
                },
                uid: Some(uid),
                gid: Some(gid),
                mtime: Some(mtime),
            };
            builder
                .add_entry(entry)
                .map_err(|e| to_layer_err(deb, name, e))?;
        }
        // Read the rest of the member, so a corrupt or truncated stream (xz/zstd/gzip
        // checksums, short ar member) is an error even after the tar end marker.
        let mut rest = archive.into_inner();
        io::copy(&mut rest, &mut io::sink()).map_err(|e| io_err(deb, Some(name), e))?;
        Ok(false)
    })?;
    if !orphans.is_empty() {
        add_orphans(deb, builder, staging, orphans, &mut stats)?;
    }
    Ok(stats)
}

/// Second pass for hard links whose target was trimmed: stage the target's contents and add
/// each link as a regular file.
fn add_orphans(
    deb: &Path,
    builder: &mut LayerBuilder,
    staging: &Path,
    orphans: Vec<Orphan>,
    stats: &mut UnpackStats,
) -> Result<()> {
    let mut wanted: BTreeMap<String, Option<(PathBuf, u64)>> =
        orphans.iter().map(|o| (o.target.clone(), None)).collect();
    walk_deb(deb, |member, name, r| {
        if !matches!(member, Member::Data(_)) {
            return Ok(true);
        }
        let mut archive = member_tar(deb, name, r)?;
        let entries = archive.entries().map_err(|e| io_err(deb, Some(name), e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| io_err(deb, Some(name), e))?;
            let raw = entry.path_bytes().into_owned();
            let Some(path) = normalize_entry_path(deb, name, &raw)? else {
                continue;
            };
            if !entry.header().entry_type().is_file() {
                continue;
            }
            if let Some(slot) = wanted.get_mut(&path) {
                *slot = Some(stage(staging, &mut entry).map_err(|e| io_err(deb, Some(name), e))?);
            }
        }
        Ok(false)
    })?;
    for o in orphans {
        let (src, size) = wanted.get(&o.target).cloned().flatten().ok_or_else(|| {
            invalid(
                deb,
                Some("data.tar"),
                format!(
                    "hard link `{}` points at `{}`, which is not a regular file",
                    o.path, o.target
                ),
            )
        })?;
        stats.files += 1;
        stats.bytes += size;
        builder
            .add_entry(LayerEntry {
                path: o.path,
                kind: EntryKind::File(src),
                mode: o.mode,
                uid: Some(o.uid),
                gid: Some(o.gid),
                mtime: Some(o.mtime),
            })
            .map_err(|e| to_layer_err(deb, "data.tar", e))?;
    }
    Ok(())
}

/// Whether `name` is a valid Debian package name (so it is safe as a file name).
fn valid_package_name(name: &str) -> bool {
    name.len() >= 2
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
}

/// The distroless-style dpkg record of a package, as layer entries:
/// `var/lib/dpkg/status.d/<pkg>` (the package's control file as shipped, which is what
/// distroless writes and what trivy, grype and syft read) and, when the package has one,
/// `var/lib/dpkg/status.d/<pkg>.md5sums`. Files are `0644`, owned by `0:0`. Names are the bare
/// package name (no `:arch`), as distroless has them. A package name that is not a valid Debian
/// package name (it could not be a safe file name) yields no entries.
pub fn dpkg_record(contents: &DebContents) -> Vec<LayerEntry> {
    let Some(pkg) = contents.package().filter(|p| valid_package_name(p)) else {
        return Vec::new();
    };
    let mut control = contents.control_text.clone();
    if control.trim().is_empty() {
        control = contents.control.to_text();
    }
    let control = format!("{}\n", control.trim_end_matches('\n'));
    let mut out = vec![record_entry(
        format!("{STATUS_DIR}/{pkg}"),
        control.into_bytes(),
    )];
    if let Some(md5) = &contents.md5sums {
        out.push(record_entry(
            format!("{STATUS_DIR}/{pkg}.md5sums"),
            md5.clone().into_bytes(),
        ));
    }
    out
}

fn record_entry(path: String, bytes: Vec<u8>) -> LayerEntry {
    LayerEntry {
        path,
        kind: EntryKind::Bytes(bytes),
        mode: 0o644,
        uid: Some(0),
        gid: Some(0),
        mtime: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trim_patterns() {
        let t = Trim::default();
        assert!(t.drops("usr/share/doc/libc6/changelog.Debian.gz"));
        assert!(t.drops("usr/share/doc/libc6"));
        assert!(!t.drops("usr/share/doc"));
        assert!(!t.drops("usr/share/doc/libc6/copyright"));
        assert!(t.drops("usr/share/doc/libc6/x/copyright"));
        assert!(t.drops("usr/share/man"));
        assert!(t.drops("usr/share/man/man1/ls.1.gz"));
        assert!(!t.drops("usr/share/manx"));
        assert!(!t.drops("usr/lib/x86_64-linux-gnu/libc.so.6"));
        let t = Trim {
            drop: vec!["usr/lib/*/gconv".into(), "etc/*.d".into()],
            keep: Vec::new(),
            keep_docs_copyright: false,
        };
        assert!(t.drops("usr/lib/x86_64-linux-gnu/gconv/UTF-16.so"));
        assert!(!t.drops("usr/lib/x86_64-linux-gnu/libc.so.6"));
        assert!(t.drops("etc/profile.d/x"));
        assert!(!t.drops("etc/profile"));
        let t = Trim {
            drop: vec![
                "usr/share/nodejs/**/*.d.ts".into(),
                "usr/share/nodejs/@types".into(),
            ],
            keep: Vec::new(),
            keep_docs_copyright: true,
        };
        assert!(t.drops("usr/share/nodejs/undici-types/agent.d.ts"));
        assert!(t.drops("usr/share/nodejs/a/b/c/x.d.ts"));
        assert!(t.drops("usr/share/nodejs/x.d.ts"));
        assert!(t.drops("usr/share/nodejs/@types/node/package.json"));
        assert!(!t.drops("usr/share/nodejs/undici/index.js"));
        assert!(!t.drops("usr/share/nodejs/undici"));
        assert!(!t.drops("usr/share/other/x.d.ts"));
        assert!(!t.drops("usr/share/nodejs"));
    }

    #[test]
    fn keep_saves_a_dropped_file_and_its_parents_only() {
        let t = Trim {
            drop: vec!["usr/share/nodejs/*".into()],
            keep: vec!["usr/share/nodejs/undici/undici-fetch.js".into()],
            keep_docs_copyright: true,
        };
        assert!(!t.drops("usr/share/nodejs/undici/undici-fetch.js"));
        assert!(!t.drops("usr/share/nodejs/undici"));
        assert!(!t.drops("usr/share/nodejs"));
        assert!(t.drops("usr/share/nodejs/undici/index.js"));
        assert!(t.drops("usr/share/nodejs/undici/lib/core/util.js"));
        assert!(t.drops("usr/share/nodejs/undici-types"));
        assert!(t.drops("usr/share/nodejs/undici/undici-fetch.js.map"));
        assert!(t.drops("usr/share/nodejs/acorn-loose/dist/acorn-loose.js"));
    }

    #[test]
    fn names() {
        assert!(valid_package_name("libc6"));
        assert!(valid_package_name("libstdc++6"));
        assert!(!valid_package_name("../x"));
        assert!(!valid_package_name("a/b"));
    }
}
