//! The unpacked-package cache: each `.deb` unpacked once, as a ready tree of files, keyed by the
//! package's SHA-256 (and the trimming applied), so building another toolchain root or base
//! from the same packages links ready files instead of decompressing `data.tar.xz` again.
//!
//! Layout, under the Debian package cache (`<cache>/unpacked/`):
//!
//! - `<deb sha256>-<trim hash>-v1/files/<content sha256>`: every regular file of the package,
//!   once per content, with the owner, mode and mtime of its first entry (so
//!   [`ocibuild_oci::extract::Sources::Shared`] can hard-link it into a root as it is);
//! - `<…>/entries.json`, written last: the package's layer entries (as [`unpack_entries`] gives
//!   them with no mtime clamping), each file named by its content digest and size.
//!
//! An entry is made in a temp dir beside it and renamed into place, so it is complete or
//! absent; every file is hashed as it is made. Before an entry is used, its manifest must
//! parse and name this package, and every file must exist as a regular file with the listed
//! size and the mtime it was given (an edit through a root it was linked into changes both
//! or the mtime); otherwise the entry is dropped and the package unpacked again (never used).
//! Files are not re-hashed on every use, as the content store's blobs are not: a java-build
//! root re-hashed 395 MB (2.1 s) each time. [`verify`] (`ocibuild cache verify`) also hashes
//! every file to its name.
//!
//! The files are shared by every root they are linked into: roots are run over, never in.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use ocibuild_oci::layer::{EntryKind, LayerBuilder, LayerEntry, LayerOptions};
use ocibuild_oci::media::Compression;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::base::unpack_entries;
use crate::deb::Trim;
use crate::error::{DebianError, Result};

/// The cache's format version (part of every entry's name).
const VERSION: &str = "v1";
/// Set to `0` to unpack every package afresh (for comparisons).
pub const DISABLE_ENV: &str = "OCIBUILD_UNPACKED_CACHE";

#[derive(Serialize, Deserialize)]
struct Manifest {
    version: String,
    deb_sha256: String,
    entries: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    path: String,
    /// `file`, `dir`, `symlink`, `hardlink`.
    kind: String,
    /// The content digest (hex) of a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    /// A link's target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target: Option<String>,
    mode: u32,
    uid: Option<u32>,
    gid: Option<u32>,
    mtime: Option<u64>,
}

/// The unpacked-package cache under a Debian package cache directory.
#[derive(Clone, Debug)]
pub struct UnpackedCache {
    dir: PathBuf,
}

/// How [`UnpackedCache::entries`] got a package's entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Found ready and intact.
    Hit,
    /// Unpacked now (and kept for next time).
    Filled,
    /// A broken entry was found, dropped and made again.
    Redone,
}

/// A problem [`verify`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broken {
    pub path: PathBuf,
    pub detail: String,
}

/// A hash of what trimming keeps and drops (part of an entry's name).
fn trim_hash(trim: &Trim) -> String {
    let mut h = Sha256::new();
    for d in &trim.drop {
        h.update(b"drop\0");
        h.update(d.as_bytes());
        h.update(b"\0");
    }
    for k in &trim.keep {
        h.update(b"keep\0");
        h.update(k.as_bytes());
        h.update(b"\0");
    }
    h.update([u8::from(trim.keep_docs_copyright)]);
    hex::encode(&h.finalize()[..8])
}

impl UnpackedCache {
    /// The cache beneath the Debian package cache `cache_dir`.
    pub fn new(cache_dir: &Path) -> Self {
        UnpackedCache {
            dir: cache_dir.join("unpacked"),
        }
    }

    /// Whether the cache is switched on (`OCIBUILD_UNPACKED_CACHE=0` switches it off).
    pub fn enabled() -> bool {
        std::env::var(DISABLE_ENV).map_or(true, |v| v != "0")
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory of the entry for the `.deb` with this SHA-256 under `trim`.
    pub fn entry_dir(&self, deb_sha256: &str, trim: &Trim) -> PathBuf {
        self.dir.join(format!(
            "{}-{}-{VERSION}",
            deb_sha256.to_ascii_lowercase(),
            trim_hash(trim)
        ))
    }

    /// The package's layer entries as [`unpack_entries`] gives them for `deb` (whose SHA-256,
    /// already verified, is `deb_sha256`) and `trim`, with `source_date_epoch`: from the cache
    /// when its entry is intact, else unpacked into the cache first. File entries point into
    /// the cache (never write to them).
    pub fn entries(
        &self,
        deb: &Path,
        deb_sha256: &str,
        trim: &Trim,
        source_date_epoch: u64,
    ) -> Result<(Vec<LayerEntry>, Outcome)> {
        let dir = self.entry_dir(deb_sha256, trim);
        let mut outcome = Outcome::Filled;
        if dir.exists() {
            match load(&dir, deb_sha256, false) {
                Ok(raw) => return Ok((clamp(raw, source_date_epoch, deb)?, Outcome::Hit)),
                Err(why) => {
                    tracing::warn!(
                        "the unpacked-package cache entry {} is broken ({why}); unpacking {} again",
                        dir.display(),
                        deb.display()
                    );
                    drop_entry(&dir);
                    outcome = Outcome::Redone;
                }
            }
        }
        self.fill(deb, deb_sha256, trim, &dir)?;
        let raw = load(&dir, deb_sha256, false).map_err(|why| DebianError::Invalid {
            what: format!("the unpacked-package cache entry {}", dir.display()),
            detail: format!(
                "it is broken right after it was made ({why}); remove {} and build again",
                self.dir.display()
            ),
        })?;
        Ok((clamp(raw, source_date_epoch, deb)?, outcome))
    }

    /// Unpack `deb` into a temp dir beside `dest`, then rename it into place (another process
    /// that made the same entry first wins; ours is dropped).
    fn fill(&self, deb: &Path, deb_sha256: &str, trim: &Trim, dest: &Path) -> Result<()> {
        fs::create_dir_all(&self.dir).map_err(DebianError::io(self.dir.display().to_string()))?;
        let tmp = tempfile::Builder::new()
            .prefix(".fill-")
            .tempdir_in(&self.dir)
            .map_err(DebianError::io(self.dir.display().to_string()))?;
        let staging = tmp.path().join("staging");
        // No clamping: the epoch is applied when the entries are used.
        let entries = unpack_entries(deb, &staging, trim, u64::MAX)?;
        let files = tmp.path().join("files");
        fs::create_dir_all(&files).map_err(DebianError::io(files.display().to_string()))?;
        let mut out = Vec::with_capacity(entries.len());
        let mut placed: HashMap<PathBuf, (String, u64)> = HashMap::new();
        for e in entries {
            let (kind, sha256, size, target) = match &e.kind {
                EntryKind::File(src) => {
                    let (hex, size) = match placed.get(src) {
                        Some(v) => v.clone(),
                        None => {
                            let hex = src
                                .file_name()
                                .and_then(|n| n.to_str())
                                .map(str::to_string)
                                .ok_or_else(|| DebianError::Invalid {
                                    what: src.display().to_string(),
                                    detail: "a staged file without a digest name".into(),
                                })?;
                            let to = files.join(&hex);
                            fs::rename(src, &to)
                                .map_err(DebianError::io(format!("moving {}", src.display())))?;
                            let m = fs::metadata(&to)
                                .map_err(DebianError::io(to.display().to_string()))?;
                            // The first entry's metadata, so a root can link the file as is.
                            set_meta(&to, &e).map_err(DebianError::io(format!(
                                "setting the owner, mode and time of {}",
                                to.display()
                            )))?;
                            placed.insert(src.clone(), (hex.clone(), m.len()));
                            (hex, m.len())
                        }
                    };
                    ("file", Some(hex), Some(size), None)
                }
                EntryKind::Dir => ("dir", None, None, None),
                EntryKind::Symlink(t) => ("symlink", None, None, Some(t.clone())),
                EntryKind::Hardlink(t) => ("hardlink", None, None, Some(t.clone())),
                other => {
                    return Err(DebianError::Invalid {
                        what: deb.display().to_string(),
                        detail: format!("unexpected entry kind {other:?} in a package"),
                    });
                }
            };
            out.push(Entry {
                path: e.path,
                kind: kind.into(),
                sha256,
                size,
                target,
                mode: e.mode,
                uid: e.uid,
                gid: e.gid,
                mtime: e.mtime,
            });
        }
        let _ = fs::remove_dir_all(&staging);
        let manifest = Manifest {
            version: VERSION.into(),
            deb_sha256: deb_sha256.to_ascii_lowercase(),
            entries: out,
        };
        let text = serde_json::to_vec(&manifest).map_err(|e| DebianError::Invalid {
            what: "the unpacked-package manifest".into(),
            detail: e.to_string(),
        })?;
        let mpath = tmp.path().join("entries.json");
        fs::write(&mpath, text).map_err(DebianError::io(mpath.display().to_string()))?;
        let made = tmp.keep();
        match fs::rename(&made, dest) {
            Ok(()) => Ok(()),
            Err(_) if dest.join("entries.json").is_file() => {
                // another build made it meanwhile
                let _ = fs::remove_dir_all(&made);
                Ok(())
            }
            Err(e) => {
                let _ = fs::remove_dir_all(&made);
                Err(DebianError::io(format!(
                    "renaming the unpacked package into {}",
                    dest.display()
                ))(e))
            }
        }
    }
}

fn set_meta(p: &Path, e: &LayerEntry) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let (Some(u), Some(g)) = (e.uid, e.gid) {
        // unprivileged: the files stay the caller's; roots then copy instead of linking
        let _ = std::os::unix::fs::chown(p, Some(u), Some(g));
    }
    fs::set_permissions(p, fs::Permissions::from_mode(e.mode & 0o7777))?;
    if let Some(t) = e
        .mtime
        .and_then(|m| std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(m)))
    {
        fs::File::options()
            .write(true)
            .open(p)
            .or_else(|_| fs::File::open(p))?
            .set_modified(t)?;
    }
    Ok(())
}

/// Remove a broken entry (renamed away first, so no reader sees half of it).
fn drop_entry(dir: &Path) {
    let gone = dir.with_extension(format!("broken-{}", std::process::id()));
    if fs::rename(dir, &gone).is_ok() {
        let _ = fs::remove_dir_all(&gone);
    } else {
        let _ = fs::remove_dir_all(dir);
    }
}

/// Read and check an entry: the manifest names this package, every file is there with its size
/// and the mtime its first entry gave it, and (`hash`) hashes to its name. The entries point
/// at the cached files.
fn load(dir: &Path, deb_sha256: &str, hash: bool) -> std::result::Result<Vec<LayerEntry>, String> {
    let mpath = dir.join("entries.json");
    let text = fs::read(&mpath).map_err(|e| format!("{}: {e}", mpath.display()))?;
    let m: Manifest =
        serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", mpath.display()))?;
    if m.version != VERSION || !m.deb_sha256.eq_ignore_ascii_case(deb_sha256) {
        return Err(format!(
            "{} is for {} ({}), not {deb_sha256}",
            mpath.display(),
            m.deb_sha256,
            m.version
        ));
    }
    let files = dir.join("files");
    let mut checked: HashMap<String, u64> = HashMap::new();
    let mut out = Vec::with_capacity(m.entries.len());
    for e in m.entries {
        let kind = match (e.kind.as_str(), e.sha256, e.size, e.target) {
            ("file", Some(hex), Some(size), None) => {
                let p = files.join(&hex);
                if checked.get(&hex) != Some(&size) {
                    // the first entry naming a file gave it its mtime ([`UnpackedCache::fill`])
                    check_file(&p, &hex, size, e.mtime, hash)?;
                    checked.insert(hex, size);
                }
                EntryKind::File(p)
            }
            ("dir", None, None, None) => EntryKind::Dir,
            ("symlink", None, None, Some(t)) => EntryKind::Symlink(t),
            ("hardlink", None, None, Some(t)) => EntryKind::Hardlink(t),
            (k, ..) => return Err(format!("{}: a bad `{k}` entry", mpath.display())),
        };
        out.push(LayerEntry {
            path: e.path,
            kind,
            mode: e.mode,
            uid: e.uid,
            gid: e.gid,
            mtime: e.mtime,
        });
    }
    Ok(out)
}

fn check_file(
    p: &Path,
    hex: &str,
    size: u64,
    mtime: Option<u64>,
    hash: bool,
) -> std::result::Result<(), String> {
    let meta = fs::symlink_metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
    if !meta.is_file() || meta.len() != size {
        return Err(format!(
            "{} has {} bytes, not {size}",
            p.display(),
            meta.size()
        ));
    }
    if let Some(t) = mtime
        && (meta.mtime() < 0 || meta.mtime() as u64 != t)
    {
        return Err(format!(
            "{} was modified (mtime {}, not {t})",
            p.display(),
            meta.mtime()
        ));
    }
    if !hash {
        return Ok(());
    }
    let f = fs::File::open(p).map_err(|e| format!("{}: {e}", p.display()))?;
    let (d, _) = ocibuild_oci::Digest::of_reader(f).map_err(|e| format!("{}: {e}", p.display()))?;
    if d.hex() != hex {
        return Err(format!("{} hashes to {d}, not its name", p.display()));
    }
    Ok(())
}

/// The entries with `source_date_epoch` applied, exactly as [`unpack_entries`] would have
/// clamped them.
fn clamp(raw: Vec<LayerEntry>, source_date_epoch: u64, deb: &Path) -> Result<Vec<LayerEntry>> {
    let what = deb.display().to_string();
    let mut b = LayerBuilder::new(LayerOptions {
        compression: Compression::None,
        source_date_epoch,
        ..LayerOptions::default()
    });
    for e in raw {
        b.add_entry(e).map_err(|e| DebianError::Invalid {
            what: what.clone(),
            detail: e.to_string(),
        })?;
    }
    b.into_entries().map_err(|e| DebianError::Invalid {
        what,
        detail: e.to_string(),
    })
}

/// Check every entry of the cache under `cache_dir` ([`load`]); with `repair`, drop the broken
/// ones (they are unpacked again when next needed). Returns (entries checked, problems).
pub fn verify(cache_dir: &Path, repair: bool) -> (u64, Vec<Broken>) {
    let dir = UnpackedCache::new(cache_dir).dir;
    let mut n = 0;
    let mut broken = Vec::new();
    for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue; // being made
        }
        n += 1;
        let sha = name.split('-').next().unwrap_or("");
        if let Err(detail) = load(&e.path(), sha, true) {
            if repair {
                drop_entry(&e.path());
            }
            broken.push(Broken {
                path: e.path(),
                detail,
            });
        }
    }
    (n, broken)
}
