//! Filesystem operations of the Dockerfile executor: a stage's merged root (a hard-link clone of
//! its base plus each step's changes), a step's changes (an overlay upper dir or an OCI-style
//! diff) applied onto it, and those changes turned into a layer.
//!
//! Trees shared between builds (an extracted base, cached step uppers) are only ever *linked*
//! into a merged root, never written through: every change to a merged root unlinks the path
//! first and creates a new inode, so a shared file can never be modified in place.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt, lchown};
use std::path::{Path, PathBuf};

use ocibuild_oci::layer::{EntryKind, LayerEntry};

use crate::error::{EngineError, Result};

const WH_PREFIX: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// An overlayfs whiteout: a character device 0/0.
pub fn is_overlay_whiteout(meta: &fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// A directory overlayfs marked opaque (`trusted.overlay.opaque` or, in user namespaces,
/// `user.overlay.opaque` = `y`).
pub fn is_opaque_dir(path: &Path) -> bool {
    let mut buf = [0u8; 4];
    ["trusted.overlay.opaque", "user.overlay.opaque"]
        .iter()
        .any(|name| matches!(rustix::fs::lgetxattr(path, *name, &mut buf), Ok(n) if n >= 1 && buf[0] == b'y'))
}

fn remove_any(p: &Path) -> io::Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn clear_dir(p: &Path) -> io::Result<()> {
    if let Ok(rd) = fs::read_dir(p) {
        for e in rd {
            remove_any(&e?.path())?;
        }
    }
    Ok(())
}

fn set_owner_mode(p: &Path, meta: &fs::Metadata, chown: bool) -> io::Result<()> {
    if chown {
        lchown(p, Some(meta.uid()), Some(meta.gid()))?;
    }
    if !meta.file_type().is_symlink() {
        fs::set_permissions(p, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    }
    Ok(())
}

fn link_or_copy(src: &Path, dst: &Path, meta: &fs::Metadata, chown: bool) -> io::Result<()> {
    if fs::hard_link(src, dst).is_ok() {
        return Ok(());
    }
    fs::copy(src, dst)?;
    set_owner_mode(dst, meta, chown)
}

/// Is the current process root (owners can be kept)?
pub fn is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// `src` cloned into `dst` (which must not exist): directories recreated with their modes and
/// owners, files hard-linked, symlinks recreated. Devices, fifos and sockets are skipped.
pub fn clone_tree(src: &Path, dst: &Path) -> Result<()> {
    let chown = is_root();
    fs::create_dir_all(dst).map_err(EngineError::io("creating a stage root", dst))?;
    let mut dirs = Vec::new();
    for e in walkdir::WalkDir::new(src).follow_links(false).min_depth(1) {
        let e = e.map_err(|e| EngineError::Io {
            what: "walking a root to clone it".into(),
            path: src.to_path_buf(),
            source: e
                .into_io_error()
                .unwrap_or_else(|| io::Error::other("walk error")),
        })?;
        let rel = e.path().strip_prefix(src).unwrap_or(e.path());
        let t = dst.join(rel);
        let meta = e
            .path()
            .symlink_metadata()
            .map_err(EngineError::io("reading", e.path()))?;
        let ft = meta.file_type();
        let r = if ft.is_dir() {
            fs::create_dir(&t).and_then(|_| {
                dirs.push((t.clone(), meta.clone()));
                fs::set_permissions(&t, fs::Permissions::from_mode(0o755))
            })
        } else if ft.is_symlink() {
            fs::read_link(e.path())
                .and_then(|target| std::os::unix::fs::symlink(target, &t))
                .and_then(|_| set_owner_mode(&t, &meta, chown))
        } else if ft.is_file() {
            link_or_copy(e.path(), &t, &meta, chown)
        } else {
            Ok(())
        };
        r.map_err(EngineError::io("cloning into a stage root", &t))?;
    }
    for (d, meta) in dirs.into_iter().rev() {
        set_owner_mode(&d, &meta, chown).map_err(EngineError::io("setting a dir's mode", &d))?;
    }
    let root_meta = fs::metadata(src).map_err(EngineError::io("reading", src))?;
    set_owner_mode(dst, &root_meta, chown).map_err(EngineError::io("setting a dir's mode", dst))?;
    Ok(())
}

/// Apply a step's changes (`upper`: an overlay upper dir, or an OCI-style diff with `.wh.`
/// files) onto the merged root `merged`.
pub fn apply_upper(merged: &Path, upper: &Path) -> Result<()> {
    let chown = is_root();
    apply_dir(merged, upper, chown).map_err(EngineError::io("applying a step's changes", merged))
}

fn apply_dir(dst: &Path, src: &Path, chown: bool) -> io::Result<()> {
    let mut names: Vec<_> = fs::read_dir(src)?.collect::<io::Result<Vec<_>>>()?;
    names.sort_by_key(|e| e.file_name());
    // Opaque markers first, then whiteouts, then entries.
    if names.iter().any(|e| e.file_name() == OPAQUE) {
        clear_dir(dst)?;
    }
    for e in &names {
        let n = e.file_name();
        let n = n.to_string_lossy();
        if n == OPAQUE {
            continue;
        }
        if let Some(target) = n.strip_prefix(WH_PREFIX) {
            remove_any(&dst.join(target))?;
        }
    }
    let mut dirs = Vec::new();
    for e in &names {
        let name = e.file_name();
        let ns = name.to_string_lossy();
        if ns.starts_with(WH_PREFIX) {
            continue;
        }
        let s = e.path();
        let t = dst.join(&name);
        let meta = s.symlink_metadata()?;
        let ft = meta.file_type();
        if is_overlay_whiteout(&meta) {
            remove_any(&t)?;
            continue;
        }
        if ft.is_dir() {
            match t.symlink_metadata() {
                Ok(m) if m.is_dir() => {
                    if is_opaque_dir(&s) {
                        clear_dir(&t)?;
                    }
                }
                Ok(_) => {
                    fs::remove_file(&t)?;
                    fs::create_dir(&t)?;
                }
                Err(_) => fs::create_dir(&t)?,
            }
            fs::set_permissions(&t, fs::Permissions::from_mode(0o755))?;
            apply_dir(&t, &s, chown)?;
            dirs.push((t, meta));
        } else if ft.is_symlink() {
            remove_any(&t)?;
            std::os::unix::fs::symlink(fs::read_link(&s)?, &t)?;
            set_owner_mode(&t, &meta, chown)?;
        } else if ft.is_file() {
            remove_any(&t)?;
            link_or_copy(&s, &t, &meta, chown)?;
        }
    }
    for (d, meta) in dirs {
        set_owner_mode(&d, &meta, chown)?;
    }
    Ok(())
}

/// The layer entries of a step's changes. Owners, modes and mtimes are kept; files sharing an
/// inode become hard links to the first of them.
pub fn upper_entries(upper: &Path) -> Result<Vec<LayerEntry>> {
    let mut out = Vec::new();
    let mut inodes: HashMap<(u64, u64), String> = HashMap::new();
    let it = walkdir::WalkDir::new(upper)
        .follow_links(false)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter();
    for e in it {
        let e = e.map_err(|e| EngineError::Io {
            what: "walking a step's changes".into(),
            path: upper.to_path_buf(),
            source: e
                .into_io_error()
                .unwrap_or_else(|| io::Error::other("walk error")),
        })?;
        let rel = e.path().strip_prefix(upper).unwrap_or(e.path());
        let Some(rel_s) = rel.to_str() else {
            return Err(EngineError::Invalid {
                what: format!("file {}", e.path().display()),
                detail:
                    "its name is not valid UTF-8 (layer paths are UTF-8); rename it in the step"
                        .into(),
            });
        };
        let rel_s = rel_s.to_string();
        let meta = e
            .path()
            .symlink_metadata()
            .map_err(EngineError::io("reading", e.path()))?;
        let ft = meta.file_type();
        let name = e.file_name().to_string_lossy().into_owned();
        let parent = rel
            .parent()
            .and_then(Path::to_str)
            .unwrap_or("")
            .to_string();
        let entry = |path: String, kind: EntryKind, mode: u32| LayerEntry {
            path,
            kind,
            mode,
            uid: Some(meta.uid()),
            gid: Some(meta.gid()),
            mtime: Some(u64::try_from(meta.mtime()).unwrap_or(0)),
        };
        if name == OPAQUE {
            out.push(LayerEntry::new(parent, EntryKind::OpaqueDir, 0));
            continue;
        }
        if let Some(target) = name.strip_prefix(WH_PREFIX) {
            let p = if parent.is_empty() {
                target.to_string()
            } else {
                format!("{parent}/{target}")
            };
            out.push(LayerEntry::new(p, EntryKind::Whiteout, 0));
            continue;
        }
        if is_overlay_whiteout(&meta) {
            out.push(LayerEntry::new(rel_s, EntryKind::Whiteout, 0));
            continue;
        }
        if ft.is_dir() {
            out.push(entry(rel_s.clone(), EntryKind::Dir, meta.mode() & 0o7777));
            if is_opaque_dir(e.path()) {
                out.push(LayerEntry::new(rel_s, EntryKind::OpaqueDir, 0));
            }
        } else if ft.is_symlink() {
            let target = fs::read_link(e.path())
                .map_err(EngineError::io("reading a link", e.path()))?
                .to_string_lossy()
                .into_owned();
            out.push(entry(rel_s, EntryKind::Symlink(target), 0o777));
        } else if ft.is_file() {
            if meta.nlink() > 1 {
                let key = (meta.dev(), meta.ino());
                if let Some(first) = inodes.get(&key) {
                    out.push(entry(
                        rel_s,
                        EntryKind::Hardlink(first.clone()),
                        meta.mode() & 0o7777,
                    ));
                    continue;
                }
                inodes.insert(key, rel_s.clone());
            }
            out.push(entry(
                rel_s,
                EntryKind::File(e.path().to_path_buf()),
                meta.mode() & 0o7777,
            ));
        } else if ft.is_fifo() {
            out.push(entry(rel_s, EntryKind::Fifo, meta.mode() & 0o7777));
        }
        // sockets and device nodes other than whiteouts cannot be stored portably (and cannot
        // be created rootless): left out, as buildah's rootless mode does.
    }
    Ok(out)
}

/// Whether an upper dir holds no change at all.
pub fn is_empty_dir(p: &Path) -> bool {
    fs::read_dir(p)
        .map(|mut r| r.next().is_none())
        .unwrap_or(true)
}

/// A read-only view of a stage's filesystem without materialising it: layers (bottom first:
/// the extracted base, then each change dir, in either whiteout format), looked up top-down.
/// A materialised root is a view of one layer.
#[derive(Clone, Debug)]
pub struct View {
    pub layers: Vec<PathBuf>,
}

impl View {
    /// `lstat` of the root-relative `rel` (no symlink followed) in the merged view: the host
    /// path holding it and its metadata.
    pub fn lstat(&self, rel: &Path) -> Option<(PathBuf, fs::Metadata)> {
        let comps: Vec<&std::ffi::OsStr> = rel
            .components()
            .filter_map(|c| match c {
                std::path::Component::Normal(n) => Some(n),
                _ => None,
            })
            .collect();
        if comps.is_empty() {
            let l = self.layers.last()?;
            return fs::symlink_metadata(l).ok().map(|m| (l.clone(), m));
        }
        'layers: for layer in self.layers.iter().rev() {
            let mut p = layer.clone();
            let mut opaque = false;
            for (i, c) in comps.iter().enumerate() {
                let mut wh = std::ffi::OsString::from(WH_PREFIX);
                wh.push(c);
                if p.join(&wh).symlink_metadata().is_ok() {
                    return None;
                }
                let next = p.join(c);
                match next.symlink_metadata() {
                    Ok(m) if is_overlay_whiteout(&m) => return None,
                    Ok(m) => {
                        if i + 1 == comps.len() {
                            return Some((next, m));
                        }
                        if !m.is_dir() {
                            return None;
                        }
                        if is_opaque_dir(&next) || next.join(OPAQUE).symlink_metadata().is_ok() {
                            opaque = true;
                        }
                    }
                    Err(_) => {
                        if opaque {
                            return None;
                        }
                        continue 'layers;
                    }
                }
                p = next;
            }
        }
        None
    }

    /// `abs` resolved in the view the way the kernel would after pivot_root (symlinks followed
    /// within the root, `..` stops at the root), as a root-relative path; missing components
    /// are kept. Scoped to the root like a chroot: an absolute link target restarts at the
    /// stage's root and `..` never climbs above it, so no link can lead out of the root. More
    /// than 40 links on the way (a loop) is an error naming the path.
    pub fn resolve(&self, abs: &str) -> Result<PathBuf> {
        let mut queue: std::collections::VecDeque<std::ffi::OsString> = Path::new(abs)
            .components()
            .filter_map(|c| match c {
                std::path::Component::Normal(n) => Some(n.to_os_string()),
                std::path::Component::ParentDir => Some("..".into()),
                _ => None,
            })
            .collect();
        let mut cur = PathBuf::new();
        let mut hops = 0;
        while let Some(c) = queue.pop_front() {
            if c == ".." {
                cur.pop();
                continue;
            }
            let cand = cur.join(&c);
            match self.lstat(&cand) {
                Some((host, m)) if m.file_type().is_symlink() => {
                    hops += 1;
                    if hops > 40 {
                        return Err(EngineError::Invalid {
                            what: format!("path {abs} in the stage's root"),
                            detail: format!(
                                "resolving it met more than 40 symbolic links (a loop: {} is one of them); fix the links the base or an earlier step made, or use a path that does not go through them",
                                cand.display()
                            ),
                        });
                    }
                    let target =
                        fs::read_link(&host).map_err(EngineError::io("reading a link", &host))?;
                    let mut pre = Vec::new();
                    for tc in target.components() {
                        match tc {
                            std::path::Component::RootDir => {
                                cur = PathBuf::new();
                                pre.clear();
                            }
                            std::path::Component::ParentDir => pre.push("..".into()),
                            std::path::Component::Normal(n) => pre.push(n.to_os_string()),
                            _ => {}
                        }
                    }
                    for p in pre.into_iter().rev() {
                        queue.push_front(p);
                    }
                }
                _ => cur = cand,
            }
        }
        Ok(cur)
    }

    /// Metadata of `rel` with symlinks followed.
    pub fn stat(&self, abs: &str) -> Option<fs::Metadata> {
        let rel = self.resolve(abs).ok()?;
        self.lstat(&rel).map(|(_, m)| m)
    }

    /// A file's text (symlinks followed), e.g. /etc/passwd.
    pub fn read_to_string(&self, abs: &str) -> Option<String> {
        let rel = self.resolve(abs).ok()?;
        let (host, _) = self.lstat(&rel)?;
        fs::read_to_string(host).ok()
    }

    /// The entries of the merged directory `rel` (root-relative), by name: each with the host
    /// path holding it and its metadata, whiteouts and opaque dirs applied. Only directories,
    /// symlinks and regular files: what a materialised root ([`clone_tree`], [`apply_upper`])
    /// holds.
    pub fn read_dir(&self, rel: &Path) -> Vec<(std::ffi::OsString, PathBuf, fs::Metadata)> {
        let mut names = std::collections::BTreeSet::new();
        for layer in &self.layers {
            let d = layer.join(rel);
            if !fs::symlink_metadata(&d).is_ok_and(|m| m.is_dir()) {
                continue;
            }
            if let Ok(rd) = fs::read_dir(&d) {
                for e in rd.flatten() {
                    let n = e.file_name();
                    if !n.to_string_lossy().starts_with(WH_PREFIX) {
                        names.insert(n);
                    }
                }
            }
        }
        names
            .into_iter()
            .filter_map(|n| {
                let (host, m) = self.lstat(&rel.join(&n))?;
                let ft = m.file_type();
                (ft.is_dir() || ft.is_symlink() || ft.is_file()).then_some((n, host, m))
            })
            .collect()
    }

    /// Every entry beneath the merged directory `rel`, depth first, each directory's entries
    /// by name (the order `walkdir` sorted by file name walks a materialised root in): (path
    /// relative to `rel`, host path, metadata). No link is followed.
    pub fn walk(&self, rel: &Path) -> Vec<(PathBuf, PathBuf, fs::Metadata)> {
        let mut out = Vec::new();
        self.walk_under(rel, Path::new(""), &mut out);
        out
    }

    fn walk_under(&self, rel: &Path, sub: &Path, out: &mut Vec<(PathBuf, PathBuf, fs::Metadata)>) {
        for (n, host, m) in self.read_dir(&rel.join(sub)) {
            let s = sub.join(&n);
            let dir = m.is_dir();
            out.push((s.clone(), host, m));
            if dir {
                self.walk_under(rel, &s, out);
            }
        }
    }

    /// Does any change dir of the view hold OCI `.wh.` markers (which overlayfs would not
    /// understand as whiteouts)?
    /// (Change dirs adopted from a remote cache with such markers carry a `<dir>.oci` flag
    /// file beside them, written when they were adopted: no walk here.)
    pub fn has_oci_markers(&self) -> bool {
        self.layers
            .iter()
            .skip(1)
            .any(|l| l.with_extension("oci").exists())
    }

    /// Whether a change dir holds OCI `.wh.` markers (walked once, when it is adopted).
    pub fn dir_has_oci_markers(dir: &Path) -> bool {
        walkdir::WalkDir::new(dir)
            .into_iter()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(WH_PREFIX))
    }
}

/// Create the parents of `rel` in `upper`, copying each one's mode and owner from the view
/// when it exists there (so a layer never changes an existing directory's metadata), else
/// 0755 owned by `owner`.
pub fn mirror_parents(view: &View, upper: &Path, rel: &Path, owner: (u32, u32)) -> Result<()> {
    let chown = is_root();
    let mut cur = PathBuf::new();
    let comps: Vec<_> = rel.components().collect();
    for c in comps.iter().take(comps.len().saturating_sub(1)) {
        cur.push(c);
        let u = upper.join(&cur);
        if u.symlink_metadata().is_ok() {
            continue;
        }
        fs::create_dir(&u).map_err(EngineError::io("creating a directory", &u))?;
        match view.lstat(&cur).map(|(_, m)| m) {
            Some(m) if m.is_dir() => {
                set_owner_mode(&u, &m, chown).map_err(EngineError::io("setting a mode", &u))?
            }
            _ => {
                fs::set_permissions(&u, fs::Permissions::from_mode(0o755))
                    .map_err(EngineError::io("setting a mode", &u))?;
                if chown {
                    lchown(&u, Some(owner.0), Some(owner.1))
                        .map_err(EngineError::io("setting an owner", &u))?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn applies_oci_diffs_with_whiteouts_and_opaque_dirs() {
        let t = tempfile::tempdir().unwrap();
        let merged = t.path().join("m");
        fs::create_dir_all(merged.join("keep")).unwrap();
        fs::create_dir_all(merged.join("opq")).unwrap();
        fs::write(merged.join("opq/old"), "x").unwrap();
        fs::write(merged.join("gone"), "x").unwrap();
        fs::write(merged.join("keep/a"), "old").unwrap();
        let up = t.path().join("u");
        fs::create_dir_all(up.join("opq")).unwrap();
        fs::create_dir_all(up.join("keep")).unwrap();
        fs::write(up.join("opq/.wh..wh..opq"), "").unwrap();
        fs::write(up.join("opq/new"), "n").unwrap();
        fs::write(up.join(".wh.gone"), "").unwrap();
        fs::write(up.join("keep/a"), "new").unwrap();
        apply_upper(&merged, &up).unwrap();
        assert!(!merged.join("gone").exists());
        assert!(!merged.join("opq/old").exists());
        assert_eq!(fs::read_to_string(merged.join("opq/new")).unwrap(), "n");
        assert_eq!(fs::read_to_string(merged.join("keep/a")).unwrap(), "new");
        let e = upper_entries(&up).unwrap();
        let paths: Vec<(String, bool)> = e
            .iter()
            .map(|e| (e.path.clone(), e.kind == EntryKind::Whiteout))
            .collect();
        assert!(paths.contains(&("gone".into(), true)), "{paths:?}");
        assert!(
            e.iter()
                .any(|x| x.kind == EntryKind::OpaqueDir && x.path == "opq")
        );
    }

    /// A copy from a stage walks the view of its layers instead of a materialised root: the
    /// same entries, in the same order, with the same metadata.
    #[test]
    fn a_view_walks_like_the_materialised_root() {
        let t = tempfile::tempdir().unwrap();
        let base = t.path().join("base");
        for d in ["usr/bin", "opq/sub", "src/old", "keep"] {
            fs::create_dir_all(base.join(d)).unwrap();
        }
        for f in [
            "usr/bin/tool",
            "opq/sub/x",
            "opq/y",
            "src/old/z",
            "gone",
            "keep/a",
        ] {
            fs::write(base.join(f), f).unwrap();
        }
        std::os::unix::fs::symlink("usr/bin", base.join("bin")).unwrap();
        let u1 = t.path().join("u1");
        fs::create_dir_all(u1.join("opq")).unwrap();
        fs::create_dir_all(u1.join("src/new")).unwrap();
        fs::write(u1.join("opq/.wh..wh..opq"), "").unwrap();
        fs::write(u1.join("opq/n"), "n").unwrap();
        fs::write(u1.join(".wh.gone"), "").unwrap();
        fs::write(u1.join("src/.wh.old"), "").unwrap();
        fs::write(u1.join("src/new/f"), "f").unwrap();
        fs::set_permissions(u1.join("src"), fs::Permissions::from_mode(0o750)).unwrap();
        let u2 = t.path().join("u2");
        fs::create_dir_all(u2.join("keep")).unwrap();
        fs::write(u2.join("keep/b"), "b").unwrap();
        std::os::unix::fs::symlink("/etc", u2.join("keep/l")).unwrap();
        let merged = t.path().join("m");
        clone_tree(&base, &merged).unwrap();
        apply_upper(&merged, &u1).unwrap();
        apply_upper(&merged, &u2).unwrap();
        let view = View {
            layers: vec![base, u1, u2],
        };
        let shape = |p: &Path, m: &fs::Metadata| {
            let kind = if m.is_dir() {
                "dir".to_string()
            } else if m.file_type().is_symlink() {
                format!("link:{}", fs::read_link(p).unwrap().display())
            } else {
                format!("file:{}", fs::read_to_string(p).unwrap())
            };
            (kind, m.mode() & 0o7777)
        };
        for under in ["", "src", "opq", "keep"] {
            let want: Vec<_> = walkdir::WalkDir::new(merged.join(under))
                .min_depth(1)
                .sort_by_file_name()
                .into_iter()
                .map(|e| {
                    let e = e.unwrap();
                    let rel = e
                        .path()
                        .strip_prefix(merged.join(under))
                        .unwrap()
                        .to_path_buf();
                    (rel, shape(e.path(), &e.path().symlink_metadata().unwrap()))
                })
                .collect();
            let got: Vec<_> = view
                .walk(Path::new(under))
                .into_iter()
                .map(|(rel, host, m)| (rel, shape(&host, &m)))
                .collect();
            assert_eq!(got, want, "under `{under}`");
        }
    }

    #[test]
    fn resolve_follows_links_inside_the_root_only() {
        let t = tempfile::tempdir().unwrap();
        let base = t.path().join("base");
        let up = t.path().join("up");
        fs::create_dir_all(base.join("usr/bin")).unwrap();
        fs::create_dir_all(base.join("usr/lib")).unwrap();
        fs::create_dir_all(base.join("usr/local/bin")).unwrap();
        fs::create_dir_all(&up).unwrap();
        let link = |dir: &Path, target: &str, name: &str| {
            std::os::unix::fs::symlink(target, dir.join(name)).unwrap()
        };
        link(&base, "usr/bin", "bin");
        link(&base, "usr/lib", "lib");
        link(&base, "bin", "sbin");
        // a chain made by a later step (an upper layer)
        link(&up, "/b", "a");
        link(&up, "usr/local/bin", "b");
        // links that point outside the root
        link(&up, "../../usr/lib", "out");
        link(&up, "/../../../usr/lib", "abs");
        link(&up, "../../../../etc", "etc-up");
        // loops
        link(&up, "loop2", "loop1");
        link(&up, "/loop1", "loop2");
        link(&up, "me", "me");
        let v = View {
            layers: vec![base.clone(), up.clone()],
        };
        let r = |p: &str| v.resolve(p).unwrap();
        assert_eq!(r("/bin/app"), Path::new("usr/bin/app"));
        assert_eq!(r("/bin"), Path::new("usr/bin"));
        assert_eq!(r("/sbin/x"), Path::new("usr/bin/x"), "a link to a link");
        assert_eq!(r("/a/tool"), Path::new("usr/local/bin/tool"), "a chain");
        assert_eq!(r("/out/o.txt"), Path::new("usr/lib/o.txt"));
        assert_eq!(r("/abs/sub/x"), Path::new("usr/lib/sub/x"));
        assert_eq!(r("/etc-up/passwd"), Path::new("etc/passwd"));
        assert_eq!(r("/../../bin/../../lib"), Path::new("usr/lib"));
        assert_eq!(r("/missing/dir"), Path::new("missing/dir"));
        for p in ["/loop1/x", "/loop2", "/me/x"] {
            let e = v.resolve(p).unwrap_err().to_string();
            assert!(e.contains(p) && e.contains("loop"), "{p}: {e}");
        }
        // a whiteout in the upper layer hides the base's link
        fs::write(up.join(".wh.lib"), "").unwrap();
        assert_eq!(r("/lib/x"), Path::new("lib/x"));
    }

    #[test]
    fn clones_never_share_dirs_and_replacing_a_file_keeps_the_source() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("s");
        fs::create_dir_all(src.join("d")).unwrap();
        fs::write(src.join("d/f"), "orig").unwrap();
        std::os::unix::fs::symlink("d/f", src.join("l")).unwrap();
        let dst = t.path().join("c");
        clone_tree(&src, &dst).unwrap();
        assert_eq!(fs::read_link(dst.join("l")).unwrap(), Path::new("d/f"));
        let up = t.path().join("u");
        fs::create_dir_all(up.join("d")).unwrap();
        fs::write(up.join("d/f"), "changed").unwrap();
        apply_upper(&dst, &up).unwrap();
        assert_eq!(fs::read_to_string(src.join("d/f")).unwrap(), "orig");
        assert_eq!(fs::read_to_string(dst.join("d/f")).unwrap(), "changed");
    }
}
