//! OCI source/revision labels read straight from `.git` (no git binary is run).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `org.opencontainers.image.revision`.
pub const LABEL_REVISION: &str = "org.opencontainers.image.revision";
/// `org.opencontainers.image.source`.
pub const LABEL_SOURCE: &str = "org.opencontainers.image.source";
/// `org.opencontainers.image.version`.
pub const LABEL_VERSION: &str = "org.opencontainers.image.version";

/// Labels from the git repository holding `dir` (searched upwards): the commit `HEAD` points at
/// (`org.opencontainers.image.revision`) and the `origin` remote as an https URL without
/// credentials (`org.opencontainers.image.source`). Whatever cannot be read is left out; no
/// repository gives an empty map. Reads `.git/HEAD`, the ref file or `packed-refs`, and
/// `.git/config`; follows `gitdir:` files (worktrees, submodules) and `commondir`.
pub fn git_labels(dir: &Path) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let Some((gitdir, common)) = find_git_dir(dir) else {
        return labels;
    };
    if let Some(rev) = head_revision(&gitdir, &common) {
        labels.insert(LABEL_REVISION.to_string(), rev);
    }
    if let Some(url) = std::fs::read_to_string(common.join("config"))
        .ok()
        .and_then(|c| origin_url(&c))
        .and_then(|u| source_url(&u))
    {
        labels.insert(LABEL_SOURCE.to_string(), url);
    }
    labels
}

/// The git dir and the common dir (they differ for worktrees).
fn find_git_dir(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let start = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    for d in start.ancestors() {
        let dotgit = d.join(".git");
        let gitdir = if dotgit.is_dir() {
            dotgit
        } else if dotgit.is_file() {
            let text = std::fs::read_to_string(&dotgit).ok()?;
            let rel = text.lines().next()?.strip_prefix("gitdir:")?.trim();
            let p = Path::new(rel);
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                d.join(p)
            }
        } else {
            continue;
        };
        let common = match std::fs::read_to_string(gitdir.join("commondir")) {
            Ok(c) => {
                let p = Path::new(c.trim());
                if p.is_absolute() {
                    p.to_path_buf()
                } else {
                    gitdir.join(p)
                }
            }
            Err(_) => gitdir.clone(),
        };
        return Some((gitdir, common));
    }
    None
}

fn is_object_id(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn head_revision(gitdir: &Path, common: &Path) -> Option<String> {
    let head = std::fs::read_to_string(gitdir.join("HEAD")).ok()?;
    let head = head.trim();
    let Some(refname) = head.strip_prefix("ref:") else {
        return is_object_id(head).then(|| head.to_ascii_lowercase());
    };
    resolve_ref(gitdir, common, refname.trim(), 0)
}

fn resolve_ref(gitdir: &Path, common: &Path, refname: &str, depth: u32) -> Option<String> {
    if depth > 5 || refname.contains("..") {
        return None;
    }
    for base in [gitdir, common] {
        if let Ok(text) = std::fs::read_to_string(base.join(refname)) {
            let t = text.trim();
            if let Some(next) = t.strip_prefix("ref:") {
                return resolve_ref(gitdir, common, next.trim(), depth + 1);
            }
            if is_object_id(t) {
                return Some(t.to_ascii_lowercase());
            }
        }
    }
    let packed = std::fs::read_to_string(common.join("packed-refs")).ok()?;
    packed.lines().find_map(|l| {
        let (id, name) = l.split_once(' ')?;
        (name.trim() == refname && is_object_id(id)).then(|| id.to_ascii_lowercase())
    })
}

/// The `url` of `[remote "origin"]` in a git config.
fn origin_url(config: &str) -> Option<String> {
    let mut in_origin = false;
    for line in config.lines() {
        let l = line.trim();
        if l.starts_with('#') || l.starts_with(';') || l.is_empty() {
            continue;
        }
        if l.starts_with('[') {
            let inner = l.trim_start_matches('[').split(']').next().unwrap_or("");
            let (section, sub) = match inner.split_once(char::is_whitespace) {
                Some((s, sub)) => (s, sub.trim().trim_matches('"')),
                None => (inner, ""),
            };
            in_origin = section.eq_ignore_ascii_case("remote") && sub == "origin";
            continue;
        }
        if in_origin
            && let Some((k, v)) = l.split_once('=')
            && k.trim().eq_ignore_ascii_case("url")
        {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v);
            return Some(v.to_string());
        }
    }
    None
}

/// A remote URL as a browsable https URL: credentials dropped, scp-like and ssh:// forms turned
/// into https, `.git` dropped. Local paths give None.
pub(crate) fn source_url(url: &str) -> Option<String> {
    let url = url.trim();
    let (scheme, rest): (String, String) = match url.split_once("://") {
        Some((s, r)) => (s.to_ascii_lowercase(), r.to_string()),
        None => {
            // scp-like: [user@]host:path
            let (host, path) = url.split_once(':')?;
            if host.contains('/') || host.is_empty() || path.starts_with("//") {
                return None;
            }
            ("ssh".to_string(), format!("{host}/{path}"))
        }
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest.as_str(), ""));
    let host = authority.rsplit('@').next().unwrap_or(authority);
    let (scheme, host) = match scheme.as_str() {
        "https" | "http" => (scheme.as_str(), host),
        // the ssh port means nothing to https
        "ssh" | "git" | "git+ssh" | "ssh+git" => ("https", host.split(':').next().unwrap_or(host)),
        _ => return None,
    };
    if host.is_empty() {
        return None;
    }
    let path = path.trim_end_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    Some(format!("{scheme}://{host}/{path}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn urls() {
        let cases = [
            (
                "git@github.com:org/repo.git",
                Some("https://github.com/org/repo"),
            ),
            (
                "https://user:tok@github.com/org/repo.git",
                Some("https://github.com/org/repo"),
            ),
            (
                "https://dev.azure.com/o/p/_git/r",
                Some("https://dev.azure.com/o/p/_git/r"),
            ),
            (
                "ssh://git@host.example:2222/org/repo.git",
                Some("https://host.example/org/repo"),
            ),
            ("http://gitea.local/a/b", Some("http://gitea.local/a/b")),
            ("/srv/git/repo.git", None),
            ("file:///srv/git/repo.git", None),
            ("../other", None),
        ];
        for (input, want) in cases {
            assert_eq!(source_url(input).as_deref(), want, "{input}");
        }
    }

    fn fake_repo(head: &str) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let g = d.path().join(".git");
        std::fs::create_dir_all(g.join("refs/heads")).unwrap();
        std::fs::write(g.join("HEAD"), head).unwrap();
        std::fs::write(
            g.join("config"),
            "[core]\n\tbare = false\n[remote \"upstream\"]\n\turl = https://example.com/up/x\n\
             [remote \"origin\"]\n\turl = git@github.com:acme/app.git\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n",
        )
        .unwrap();
        d
    }

    #[test]
    fn loose_ref_from_subdirectory() {
        let d = fake_repo("ref: refs/heads/main\n");
        std::fs::write(d.path().join(".git/refs/heads/main"), format!("{SHA}\n")).unwrap();
        let sub = d.path().join("apps/web");
        std::fs::create_dir_all(&sub).unwrap();
        let l = git_labels(&sub);
        assert_eq!(l[LABEL_REVISION], SHA);
        assert_eq!(l[LABEL_SOURCE], "https://github.com/acme/app");
    }

    #[test]
    fn packed_ref_and_detached_head() {
        let d = fake_repo("ref: refs/heads/dev\n");
        std::fs::write(
            d.path().join(".git/packed-refs"),
            format!("# pack-refs with: peeled fully-peeled sorted\n{SHA} refs/heads/dev\n^{SHA}\n"),
        )
        .unwrap();
        assert_eq!(git_labels(d.path())[LABEL_REVISION], SHA);
        let d = fake_repo(&format!("{}\n", SHA.to_uppercase()));
        assert_eq!(git_labels(d.path())[LABEL_REVISION], SHA);
    }

    #[test]
    fn worktree_gitdir_file() {
        let main = fake_repo("ref: refs/heads/main\n");
        std::fs::write(main.path().join(".git/refs/heads/feature"), SHA).unwrap();
        let wt_git = main.path().join(".git/worktrees/wt");
        std::fs::create_dir_all(&wt_git).unwrap();
        std::fs::write(wt_git.join("HEAD"), "ref: refs/heads/feature\n").unwrap();
        std::fs::write(wt_git.join("commondir"), "../..\n").unwrap();
        let wt = tempfile::tempdir().unwrap();
        std::fs::write(
            wt.path().join(".git"),
            format!("gitdir: {}\n", wt_git.display()),
        )
        .unwrap();
        let l = git_labels(wt.path());
        assert_eq!(l[LABEL_REVISION], SHA);
        assert_eq!(l[LABEL_SOURCE], "https://github.com/acme/app");
    }

    #[test]
    fn unborn_branch_has_no_revision() {
        let d = fake_repo("ref: refs/heads/main\n");
        let l = git_labels(d.path());
        assert!(!l.contains_key(LABEL_REVISION));
        assert_eq!(l[LABEL_SOURCE], "https://github.com/acme/app");
    }
}
