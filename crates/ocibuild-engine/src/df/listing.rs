//! A native base's listing: its directories (mode and owner, and the names of the files in
//! each), its symlinks and the text of `/etc/passwd` and `/etc/group`. `--cache-to` exports it
//! in the base's record; a cold runner makes a *skeleton* of the base from it (the directories
//! and links, no file content) and runs a COPY onto the base against the skeleton: what a copy
//! destination needs is which parents exist with which mode and owner, and which links to
//! follow (a merged-/usr base's `/bin -> usr/bin`). The layer a copy writes holds only the
//! copied entries and their parents, so it is the same one the assembled base gives, and the
//! base (a toolchain root assembled from hundreds of packages, or a runtime base's layers
//! extracted) is not needed.
//!
//! A copy *from* a stage on such a base reads it through the skeleton only where the listing
//! shows that nothing but directories lies beneath the copied path ([`Listing::complete_under`]).

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt, lchown};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};

/// The files whose text the skeleton holds (a COPY's `--chown=NAME` reads them).
const TEXTS: &[&str] = &["etc/passwd", "etc/group"];

#[derive(Serialize, Deserialize, Debug, Default, PartialEq)]
pub(crate) struct Listing {
    pub version: u32,
    /// Every directory, parents first ("" is the root).
    pub dirs: Vec<ListedDir>,
    pub links: Vec<ListedLink>,
    /// Root-relative path → text, for [`TEXTS`] (when they are regular files).
    pub texts: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub(crate) struct ListedDir {
    pub path: String,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// The names of the entries in it that are neither directories nor links.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub(crate) struct ListedLink {
    pub path: String,
    pub target: String,
    pub uid: u32,
    pub gid: u32,
}

impl Listing {
    /// The listing of a base's root directory. `None` when a name is not UTF-8 (such a base
    /// gets no listing: a cold runner assembles it).
    pub fn of_root(root: &Path) -> Result<Option<Listing>> {
        let mut l = Listing {
            version: 1,
            ..Default::default()
        };
        let mut index: BTreeMap<String, usize> = BTreeMap::new();
        for e in walkdir::WalkDir::new(root)
            .follow_links(false)
            .sort_by_file_name()
        {
            let e = e.map_err(|e| EngineError::Io {
                what: "walking a base to list it".into(),
                path: root.to_path_buf(),
                source: e
                    .into_io_error()
                    .unwrap_or_else(|| std::io::Error::other("walk error")),
            })?;
            let rel = e.path().strip_prefix(root).unwrap_or(e.path());
            let Some(rel) = rel.to_str() else {
                return Ok(None);
            };
            let m = e
                .path()
                .symlink_metadata()
                .map_err(EngineError::io("reading", e.path()))?;
            let ft = m.file_type();
            if ft.is_dir() {
                index.insert(rel.to_string(), l.dirs.len());
                l.dirs.push(ListedDir {
                    path: rel.to_string(),
                    mode: m.mode() & 0o7777,
                    uid: m.uid(),
                    gid: m.gid(),
                    files: Vec::new(),
                });
            } else if ft.is_symlink() {
                let t =
                    fs::read_link(e.path()).map_err(EngineError::io("reading a link", e.path()))?;
                let Some(t) = t.to_str() else {
                    return Ok(None);
                };
                l.links.push(ListedLink {
                    path: rel.to_string(),
                    target: t.to_string(),
                    uid: m.uid(),
                    gid: m.gid(),
                });
            } else {
                let (parent, name) = rel.rsplit_once('/').unwrap_or(("", rel));
                if let Some(&i) = index.get(parent) {
                    l.dirs[i].files.push(name.to_string());
                }
                if ft.is_file() && TEXTS.contains(&rel) {
                    let text = fs::read_to_string(e.path())
                        .map_err(EngineError::io("reading", e.path()))?;
                    l.texts.insert(rel.to_string(), text);
                }
            }
        }
        Ok(Some(l))
    }

    /// The listing as a blob (gzip-compressed JSON).
    pub fn to_blob(&self) -> Result<Vec<u8>> {
        let json = serde_json::to_vec(self).map_err(|e| EngineError::Invalid {
            what: "a base listing".into(),
            detail: e.to_string(),
        })?;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&json)
            .and_then(|_| gz.finish())
            .map_err(|e| EngineError::Invalid {
                what: "a base listing".into(),
                detail: e.to_string(),
            })
    }

    pub fn from_blob(bytes: &[u8]) -> Result<Listing> {
        let bad = |detail: String| EngineError::Invalid {
            what: "a base listing from the cache".into(),
            detail: format!(
                "{detail}; it was not written by this ocibuild: run with --no-cache or clear the cache"
            ),
        };
        let mut json = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .take(256 << 20)
            .read_to_end(&mut json)
            .map_err(|e| bad(e.to_string()))?;
        let l: Listing = serde_json::from_slice(&json).map_err(|e| bad(e.to_string()))?;
        if l.version != 1 {
            return Err(bad(format!(
                "version {} (this ocibuild reads 1)",
                l.version
            )));
        }
        for p in l
            .dirs
            .iter()
            .map(|d| d.path.as_str())
            .chain(l.links.iter().map(|k| k.path.as_str()))
            .chain(l.texts.keys().map(String::as_str))
        {
            // stays beneath the skeleton's root: no absolute path, no `..`, no empty component
            if p.starts_with('/')
                || p.split('/')
                    .any(|c| c == ".." || c == "." || (c.is_empty() && !p.is_empty()))
            {
                return Err(bad(format!("the path `{p}` leaves the base's root")));
            }
        }
        if let Some(k) = l.texts.keys().find(|k| !TEXTS.contains(&k.as_str())) {
            return Err(bad(format!("it holds the text of `{k}`")));
        }
        Ok(l)
    }

    /// Make the skeleton in the empty directory `dir`: the directories with their modes (and
    /// owners, as root), the links, and the texts.
    pub fn skeleton(&self, dir: &Path) -> Result<()> {
        let chown = super::fsops::is_root();
        let tmp = dir;
        for d in &self.dirs {
            if d.path.is_empty() {
                continue;
            }
            let p = tmp.join(&d.path);
            fs::create_dir(&p).map_err(EngineError::io("creating a base skeleton", &p))?;
        }
        // texts before links: no write can go through a link
        for (rel, text) in &self.texts {
            let p = tmp.join(rel);
            fs::write(&p, text).map_err(EngineError::io("writing a base skeleton", &p))?;
        }
        for k in &self.links {
            let p = tmp.join(&k.path);
            std::os::unix::fs::symlink(&k.target, &p)
                .map_err(EngineError::io("creating a link", &p))?;
            if chown {
                lchown(&p, Some(k.uid), Some(k.gid))
                    .map_err(EngineError::io("setting an owner", &p))?;
            }
        }
        // modes last, children first: a 0555 directory still takes its entries
        for d in self.dirs.iter().rev() {
            let p = tmp.join(&d.path);
            if chown {
                lchown(&p, Some(d.uid), Some(d.gid))
                    .map_err(EngineError::io("setting an owner", &p))?;
            }
            fs::set_permissions(&p, fs::Permissions::from_mode(d.mode))
                .map_err(EngineError::io("setting a mode", &p))?;
        }
        Ok(())
    }

    /// Whether the skeleton shows everything at and beneath the root-relative `rel` (symlinks
    /// already resolved): no file and no link there, and `rel` is a directory or absent from a
    /// directory that holds no file of that name.
    pub fn complete_under(&self, rel: &str) -> bool {
        let rel = rel.trim_matches('/');
        let under = |p: &str| rel.is_empty() || p == rel || p.starts_with(&format!("{rel}/"));
        if self.links.iter().any(|k| under(&k.path)) {
            return false;
        }
        if self
            .dirs
            .iter()
            .any(|d| under(&d.path) && !d.files.is_empty())
        {
            return false;
        }
        let (parent, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        !self
            .dirs
            .iter()
            .any(|d| d.path == parent && d.files.iter().any(|f| f == name))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_skeleton_keeps_dirs_links_and_texts_and_knows_where_files_are() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        fs::create_dir_all(root.join("usr/bin")).unwrap();
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::create_dir_all(root.join("srv/empty")).unwrap();
        fs::create_dir_all(root.join("ro")).unwrap();
        fs::write(root.join("usr/bin/tool"), "x").unwrap();
        fs::write(root.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        std::os::unix::fs::symlink("usr/bin", root.join("bin")).unwrap();
        fs::set_permissions(root.join("ro"), fs::Permissions::from_mode(0o555)).unwrap();
        fs::set_permissions(root.join("srv"), fs::Permissions::from_mode(0o1777)).unwrap();
        let l = Listing::of_root(&root).unwrap().unwrap();
        let back = Listing::from_blob(&l.to_blob().unwrap()).unwrap();
        assert_eq!(l, back);
        let sk = t.path().join("skeleton");
        fs::create_dir(&sk).unwrap();
        back.skeleton(&sk).unwrap();
        assert_eq!(fs::read_link(sk.join("bin")).unwrap(), Path::new("usr/bin"));
        assert!(!sk.join("usr/bin/tool").exists());
        assert_eq!(
            fs::read_to_string(sk.join("etc/passwd")).unwrap(),
            "root:x:0:0::/root:/bin/sh\n"
        );
        for (p, mode) in [("ro", 0o555), ("srv", 0o1777), ("usr/bin", 0o755)] {
            let m = fs::symlink_metadata(sk.join(p)).unwrap();
            assert_eq!(m.mode() & 0o7777, mode, "{p}");
        }
        assert!(back.complete_under("srv"));
        assert!(back.complete_under("srv/empty"));
        assert!(back.complete_under("src"), "absent");
        assert!(!back.complete_under("usr"), "a file beneath");
        assert!(!back.complete_under("usr/bin/tool"), "a file");
        assert!(!back.complete_under("bin"), "a link");
        assert!(!back.complete_under(""), "the whole root");
        // a listing that leads out of the root is refused
        let mut evil = Listing {
            version: 1,
            ..Default::default()
        };
        evil.links.push(ListedLink {
            path: "../x".into(),
            target: "/".into(),
            uid: 0,
            gid: 0,
        });
        assert!(Listing::from_blob(&evil.to_blob().unwrap()).is_err());
    }
}
