//! Go monorepos: an app module whose build reads directories beside it — the modules of a
//! `go.work` that lists it, or the local targets of its go.mod's `replace` directives
//! (`replace example.com/shared => ../../libs/shared`). The build's context is then their
//! common root, with the app module as its workspace member; only what `go build` reads is
//! copied: the app's module, the local modules it needs, and of go.work's other modules their
//! go.mod and go.sum (workspace mode loads every listed module's go.mod).

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use crate::common::rel_str;
use crate::error::{BuildersError, Result};
use crate::go::{GoMod, parse_go_mod};

/// What a Go workspace build copies and how it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GoWorkspace {
    /// The app module's directory, relative to the root (`/`-separated).
    pub member: String,
    /// The root's go.work lists the member: `go build` runs in workspace mode.
    pub go_work: bool,
    /// Module directories copied whole (relative to the root), the member first.
    pub modules: Vec<String>,
    /// go.work's other modules: only their go.mod and go.sum are copied.
    pub manifests_only: Vec<String>,
    /// Module paths the workspace or the replace directives provide locally.
    pub local_paths: BTreeSet<String>,
}

/// `go.work`'s `use` directories and local `replace` targets (as written).
#[derive(Debug, Default)]
struct GoWork {
    uses: Vec<String>,
    replaces: Vec<String>,
}

fn parse_go_work(text: &str) -> GoWork {
    let mut w = GoWork::default();
    let mut block: Option<String> = None;
    for raw in text.lines() {
        let line = raw.split("//").next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let (verb, rest) = match &block {
            Some(_) if line == ")" => {
                block = None;
                continue;
            }
            Some(b) => (b.clone(), line.to_string()),
            None => {
                let (v, r) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
                let r = r.trim();
                if r == "(" {
                    block = Some(v.to_string());
                    continue;
                }
                (v.to_string(), r.to_string())
            }
        };
        match verb.as_str() {
            "use" => w.uses.push(rest.trim_matches('"').to_string()),
            "replace" => {
                if let Some(target) = local_replace_target(&rest) {
                    w.replaces.push(target);
                }
            }
            _ => {}
        }
    }
    w
}

/// The local directory of a `replace` directive's right side (`X [v] => ../dir`), if local.
pub(crate) fn local_replace_target(directive: &str) -> Option<String> {
    let (_, right) = directive.split_once("=>")?;
    let target = right.split_whitespace().next()?.trim_matches('"');
    (target.starts_with("./") || target.starts_with("../") || target == "." || target == "..")
        .then(|| target.to_string())
}

/// `a/b/../c` → `a/c` without touching the file system; `None` when it leaves the top.
fn normalize(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Normal(n) => out.push(n),
            Component::RootDir => out.push("/"),
            Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// The parsed `dir/go.mod`.
pub(crate) fn read_go_mod(dir: &Path) -> Result<GoMod> {
    let path = dir.join("go.mod");
    let text = std::fs::read_to_string(&path).map_err(BuildersError::io(&path))?;
    parse_go_mod(&text, &path)
}

/// The nearest go.work at or above `dir` that lists `dir`, with its directory.
fn enclosing_go_work(dir: &Path) -> Result<Option<(PathBuf, GoWork)>> {
    for d in dir.ancestors() {
        let f = d.join("go.work");
        if !f.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&f).map_err(BuildersError::io(&f))?;
        let w = parse_go_work(&text);
        let lists = w
            .uses
            .iter()
            .any(|u| normalize(&d.join(u)).is_some_and(|p| p == dir));
        // Go stops at the first go.work; one that does not list the module makes `go build`
        // refuse to run in it, and the module alone (without go.work) builds as before
        return Ok(lists.then(|| (d.to_path_buf(), w)));
    }
    Ok(None)
}

/// Where a zero-config build of the Go module in `dir` starts: the root of its workspace
/// (go.work's directory, or the common parent of the module and its local replace targets
/// outside it) and the module's directory relative to it; `None` when the module alone is the
/// build's context.
pub fn workspace_of(dir: &Path) -> Result<Option<(PathBuf, String)>> {
    if !dir.join("go.mod").is_file() {
        return Ok(None);
    }
    let dir = std::fs::canonicalize(dir).map_err(BuildersError::io(dir))?;
    if let Some((root, _)) = enclosing_go_work(&dir)? {
        return Ok(rel_str(&root, &dir)
            .filter(|r| !r.is_empty())
            .map(|r| (root, r)));
    }
    let gomod = read_go_mod(&dir)?;
    let mut root = dir.clone();
    for t in &gomod.replaces {
        let target = normalize(&dir.join(t)).ok_or_else(|| BuildersError::Parse {
            path: dir.join("go.mod"),
            line: None,
            detail: format!("replace target {t} leaves the file system's root"),
            hint: "fix the replace directive".into(),
        })?;
        while !target.starts_with(&root) {
            root = match root.parent() {
                Some(p) => p.to_path_buf(),
                None => break,
            };
        }
    }
    if root == dir {
        return Ok(None);
    }
    if root.parent().is_none() {
        return Err(BuildersError::Unsupported {
            path: dir.join("go.mod"),
            what: "its local replace targets share no directory with the module but `/`".into(),
            hint: "keep the replaced modules in the same repository as the app".into(),
        });
    }
    Ok(rel_str(&root, &dir).map(|r| (root, r)))
}

/// The workspace of the module `member` under `root` (see [`workspace_of`]).
pub(crate) fn layout(root: &Path, member: &str) -> Result<GoWorkspace> {
    let root = std::fs::canonicalize(root).map_err(BuildersError::io(root))?;
    let member_dir = normalize(&root.join(member))
        .filter(|p| p.starts_with(&root))
        .ok_or_else(|| BuildersError::InvalidOption {
            option: "--workspace".into(),
            value: member.into(),
            detail: "must be a directory below the build's context".into(),
        })?;
    if !member_dir.join("go.mod").is_file() {
        return Err(BuildersError::InvalidOption {
            option: "--workspace".into(),
            value: member.into(),
            detail: format!("{} holds no go.mod", member_dir.display()),
        });
    }
    let rel = |p: &Path, what: &str| -> Result<String> {
        normalize(p)
            .filter(|p| p.starts_with(&root))
            .and_then(|p| rel_str(&root, &p))
            .ok_or_else(|| BuildersError::Unsupported {
                path: p.to_path_buf(),
                what: format!("{what} is outside the build's context {}", root.display()),
                hint: "build from a directory above it".into(),
            })
    };
    let member_rel = rel(&member_dir, "the module")?;
    let app = read_go_mod(&member_dir)?;
    let work = root.join("go.work");
    let go_work = match std::fs::read_to_string(&work) {
        Ok(text) => {
            let w = parse_go_work(&text);
            let listed = w
                .uses
                .iter()
                .any(|u| normalize(&root.join(u)).is_some_and(|p| p == member_dir));
            listed.then_some(w)
        }
        Err(_) => None,
    };
    // every local module: go.work's, and the app's replace targets (relative to the app)
    let mut local: Vec<(String, GoMod)> = Vec::new();
    if let Some(w) = &go_work {
        for u in &w.uses {
            let d = root.join(u);
            let r = rel(&d, &format!("go.work's module {u}"))?;
            local.push((r, read_go_mod(&d)?));
        }
        for t in &w.replaces {
            let d = root.join(t);
            local.push((
                rel(&d, &format!("go.work's replace target {t}"))?,
                read_go_mod(&d)?,
            ));
        }
    }
    for t in &app.replaces {
        let d = member_dir.join(t);
        local.push((
            rel(&d, &format!("the replace target {t}"))?,
            read_go_mod(&d)?,
        ));
    }
    let mut replaced = BTreeSet::new();
    for t in &app.replaces {
        replaced.insert(rel(
            &member_dir.join(t),
            &format!("the replace target {t}"),
        )?);
    }
    for t in go_work.iter().flat_map(|w| w.replaces.iter()) {
        replaced.insert(rel(
            &root.join(t),
            &format!("go.work's replace target {t}"),
        )?);
    }
    let local_paths: BTreeSet<String> = local.iter().map(|(_, m)| m.module.clone()).collect();
    // the app's closure over local modules: what it requires (and they require) that is local;
    // replace targets are always read
    let mut modules = vec![member_rel.clone()];
    let mut queue = vec![app.clone()];
    while let Some(m) = queue.pop() {
        for req in &m.modules {
            if let Some((d, lm)) = local.iter().find(|(_, lm)| &lm.module == req)
                && !modules.contains(d)
            {
                modules.push(d.clone());
                queue.push(lm.clone());
            }
        }
    }
    for d in &replaced {
        if !modules.contains(d) {
            modules.push(d.clone());
        }
    }
    let manifests_only = local
        .iter()
        .map(|(d, _)| d.clone())
        .filter(|d| !modules.contains(d) && go_work.is_some())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    Ok(GoWorkspace {
        member: member_rel,
        go_work: go_work.is_some(),
        modules,
        manifests_only,
        local_paths,
    })
}

impl GoWorkspace {
    /// Paths below `root` (`/`-separated, glob-escaped) that the build does not read: every
    /// entry beside the path to a copied module, and in a manifests-only module everything but
    /// its go.mod and go.sum. go.work and go.work.sum at the root stay when go.work is used.
    pub(crate) fn excludes(&self, root: &Path) -> Result<Vec<String>> {
        let mut keep_files: BTreeSet<String> = BTreeSet::new();
        for d in &self.manifests_only {
            for f in ["go.mod", "go.sum"] {
                keep_files.insert(join(d, f));
            }
        }
        if self.go_work {
            keep_files.insert("go.work".into());
            keep_files.insert("go.work.sum".into());
        }
        let whole: BTreeSet<&str> = self.modules.iter().map(String::as_str).collect();
        let wanted: Vec<&str> = whole
            .iter()
            .copied()
            .chain(keep_files.iter().map(String::as_str))
            .collect();
        let mut out = Vec::new();
        let mut dirs = vec![String::new()];
        while let Some(d) = dirs.pop() {
            let path = if d.is_empty() {
                root.to_path_buf()
            } else {
                root.join(&d)
            };
            let mut names: Vec<String> = std::fs::read_dir(&path)
                .map_err(BuildersError::io(&path))?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            for n in names {
                let r = join(&d, &n);
                if whole.contains(r.as_str()) || keep_files.contains(&r) {
                    continue;
                }
                if wanted
                    .iter()
                    .any(|w| w.starts_with(&format!("{r}/")) && !r.is_empty())
                {
                    dirs.push(r);
                } else {
                    out.push(globset::escape(&r));
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() || dir == "." {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn go_work_and_replace_directives_parse() {
        let w = parse_go_work(
            "go 1.22\n\nuse (\n\t./services/api // the API\n\t./libs/shared\n)\nuse ./tools\n\nreplace example.com/x v1.0.0 => ../x\nreplace example.com/y => example.com/z v1.2.0\n",
        );
        assert_eq!(w.uses, ["./services/api", "./libs/shared", "./tools"]);
        assert_eq!(w.replaces, ["../x"]);
        assert_eq!(
            local_replace_target("example.com/a => ../../libs/a").as_deref(),
            Some("../../libs/a")
        );
        assert_eq!(
            local_replace_target("example.com/a => example.com/b v1.0.0"),
            None
        );
        assert_eq!(
            normalize(Path::new("/r/services/api/../../libs/a")),
            Some(PathBuf::from("/r/libs/a"))
        );
    }
}
