//! Workspaces (monorepos): a root with one lockfile whose globs name the packages — npm's and
//! yarn's `workspaces` in package.json, pnpm's `packages` in pnpm-workspace.yaml — and the one
//! workspace package built from it, with the local packages it depends on.
//!
//! The build's context is the root. npm: `npm ci --workspace DIR --include-workspace-root`
//! installs the root's dependencies (its shared build tools) and the app's closure, never the
//! other apps'; the image holds the hoisted `node_modules`, the app and the local packages it
//! needs (their `node_modules` links stay relative, so they work in the image), and nothing of
//! the other workspaces. Yarn 4 (node-modules linker) gives the same layout through `yarn
//! workspaces focus NAME --production`; pnpm's image is the tree `pnpm deploy` makes (see
//! builders/node.toml).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use walkdir::WalkDir;

use crate::error::{BuildersError, Result};
use crate::node::{PackageJson, parse_package_json};

/// One workspace package: its directory relative to the root (`apps/api`) and its package.json.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub dir: String,
    pub pj: PackageJson,
}

impl Member {
    /// `apps/api (@acme/api)`.
    pub fn label(&self) -> String {
        match &self.pj.name {
            Some(n) => format!("{} ({n})", self.dir),
            None => self.dir.clone(),
        }
    }
}

fn glob_set(patterns: &[&str], root: &Path) -> Result<GlobSet> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        let g = GlobBuilder::new(crate::filter::normalize(p))
            .literal_separator(true)
            .build()
            .map_err(|e| BuildersError::Parse {
                path: root.join("package.json"),
                line: None,
                detail: format!("workspaces pattern {p:?}: {}", e.kind()),
                hint: "write workspaces as directory globs such as \"packages/*\"".into(),
            })?;
        b.add(g);
    }
    b.build().map_err(|e| BuildersError::Parse {
        path: root.join("package.json"),
        line: None,
        detail: format!("workspaces: {e}"),
        hint: "write workspaces as directory globs such as \"packages/*\"".into(),
    })
}

/// The workspace packages of the root `root` whose package.json lists `patterns` (npm's globs;
/// `!pattern` leaves directories out), sorted by directory.
pub(crate) fn members(root: &Path, patterns: &[String]) -> Result<Vec<Member>> {
    let (neg, pos): (Vec<&str>, Vec<&str>) = patterns
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .partition(|p| p.starts_with('!'));
    let neg: Vec<&str> = neg.iter().map(|p| &p[1..]).collect();
    let (pos, neg) = (glob_set(&pos, root)?, glob_set(&neg, root)?);
    let mut out = Vec::new();
    let walk = WalkDir::new(root)
        .min_depth(1)
        .max_depth(6)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            e.file_type().is_dir()
                && e.file_name()
                    .to_str()
                    .is_some_and(|n| n != "node_modules" && !n.starts_with('.'))
        });
    for e in walk {
        let e = e.map_err(|e| BuildersError::Io {
            path: e.path().unwrap_or(root).to_path_buf(),
            source: e.into(),
        })?;
        let Some(rel) = crate::common::rel_str(root, e.path()) else {
            continue;
        };
        if !pos.is_match(&rel) || neg.is_match(&rel) {
            continue;
        }
        let pj_path = e.path().join("package.json");
        let Some(text) = crate::common::read_opt(&pj_path)? else {
            continue;
        };
        out.push(Member {
            dir: rel,
            pj: parse_package_json(&text, &pj_path)?,
        });
    }
    Ok(out)
}

/// The workspaces of `members` that `start` depends on, transitively (by package name), with
/// `dev` dependencies too or not; `start` itself is not in the list. Dependencies come before
/// the packages that need them (what their build scripts run in), else in the members' order.
pub(crate) fn closure(members: &[Member], start: usize, dev: bool) -> Vec<usize> {
    fn visit(
        members: &[Member],
        i: usize,
        dev: bool,
        seen: &mut BTreeSet<usize>,
        out: &mut Vec<usize>,
    ) {
        if !seen.insert(i) {
            return;
        }
        let pj = &members[i].pj;
        let mut deps: Vec<usize> = pj
            .deps
            .keys()
            .chain(dev.then_some(pj.dev_deps.keys()).into_iter().flatten())
            .filter_map(|n| members.iter().position(|m| m.pj.name.as_ref() == Some(n)))
            .collect();
        deps.sort_unstable();
        for j in deps {
            visit(members, j, dev, seen, out);
        }
        out.push(i);
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    visit(members, start, dev, &mut seen, &mut out);
    out.retain(|&i| i != start);
    out
}

/// The workspace `wanted` names (its directory, as npm's `-w` takes it, or its package name).
pub(crate) fn find(members: &[Member], wanted: &str) -> Option<usize> {
    let w = crate::filter::normalize(wanted);
    members
        .iter()
        .position(|m| m.dir == w || m.pj.name.as_deref() == Some(wanted.trim()))
}

/// The `packages` globs of a `pnpm-workspace.yaml` (a block list `- "apps/*"` or a flow list
/// `["apps/*"]`); empty when it has none (pnpm 10 also writes the file for settings alone).
pub(crate) fn pnpm_packages(text: &str) -> Vec<String> {
    fn unquote(s: &str) -> String {
        let s = s.split(" #").next().unwrap_or(s).trim();
        s.trim_matches(|c| c == '"' || c == '\'').to_string()
    }
    let mut out = Vec::new();
    let mut in_packages = false;
    for line in text.lines() {
        let t = line.trim_end();
        if t.trim_start().starts_with('#') || t.trim().is_empty() {
            continue;
        }
        let indented = t.starts_with(' ') || t.starts_with('\t');
        if !indented {
            in_packages = false;
            if let Some(rest) = t.strip_prefix("packages:") {
                let rest = rest.trim();
                if let Some(flow) = rest.strip_prefix('[') {
                    out.extend(
                        flow.trim_end_matches(']')
                            .split(',')
                            .map(unquote)
                            .filter(|p| !p.is_empty()),
                    );
                } else {
                    in_packages = true;
                }
            }
            continue;
        }
        if in_packages && let Some(item) = t.trim_start().strip_prefix('-') {
            let p = unquote(item);
            if !p.is_empty() {
                out.push(p);
            }
        }
    }
    out
}

/// The workspace globs of the root `dir` whose package.json is `pj`: its `workspaces` (npm,
/// yarn), else the `packages` of its `pnpm-workspace.yaml`; `None` when it is no workspace root.
pub(crate) fn root_patterns(dir: &Path, pj: &PackageJson) -> Option<Vec<String>> {
    if pj.workspaces {
        return Some(pj.workspace_patterns.clone());
    }
    let text = std::fs::read_to_string(dir.join("pnpm-workspace.yaml")).ok()?;
    let p = pnpm_packages(&text);
    (!p.is_empty()).then_some(p)
}

/// The nearest directory above `dir` that is a workspace root (package.json `workspaces`, or
/// `pnpm-workspace.yaml` with `packages`), with its package.json and workspace globs.
pub(crate) fn enclosing_root(dir: &Path) -> Option<(PathBuf, PackageJson, Vec<String>)> {
    let dir = std::fs::canonicalize(dir).ok()?;
    dir.ancestors().skip(1).find_map(|d| {
        let pj = d.join("package.json");
        let text = std::fs::read_to_string(&pj).ok()?;
        let parsed = parse_package_json(&text, &pj).ok()?;
        let patterns = root_patterns(d, &parsed)?;
        Some((d.to_path_buf(), parsed, patterns))
    })
}

/// Where a zero-config build of `dir` starts: when `dir` is a package of a workspace with
/// no lockfile of its own, the workspace root (the build's context) and the package's directory
/// relative to it; `None` for any other directory. A package the root's `workspaces` do not
/// list is an error naming the root and the fix.
pub fn workspace_of(dir: &Path) -> Result<Option<(PathBuf, String)>> {
    let own = [
        "package.json",
        "package-lock.json",
        "npm-shrinkwrap.json",
        "yarn.lock",
        "pnpm-lock.yaml",
    ];
    if !dir.join(own[0]).is_file() || own[1..].iter().any(|f| dir.join(f).is_file()) {
        return Ok(None);
    }
    let Some((root, _pj, patterns)) = enclosing_root(dir) else {
        return Ok(None);
    };
    let dir = std::fs::canonicalize(dir).map_err(BuildersError::io(dir))?;
    let Some(rel) = crate::common::rel_str(&root, &dir) else {
        return Ok(None);
    };
    let list = members(&root, &patterns)?;
    if list.iter().any(|m| m.dir == rel) {
        return Ok(Some((root, rel)));
    }
    Err(BuildersError::Unsupported {
        path: root.join("package.json"),
        what: format!(
            "{} has no lockfile of its own and is not one of this workspace root's packages \
             (workspaces: {})",
            dir.display(),
            patterns.join(", ")
        ),
        hint: if root.join("pnpm-workspace.yaml").is_file() {
            format!(
                "add {rel:?} (or a pattern matching it) to `packages` in {} and run `pnpm install` \
                 there, or give {rel} a lockfile of its own",
                root.join("pnpm-workspace.yaml").display()
            )
        } else {
            format!(
                "add {rel:?} (or a pattern matching it) to \"workspaces\" in {} and run `npm install` \
                 there, or give {rel} a lockfile of its own (`npm install` in it)",
                root.join("package.json").display()
            )
        },
    })
}

/// The lockfile paths (`node_modules/a`, `apps/api/node_modules/b`) that `npm ci` installs for
/// the packages at `starts` (`""`: the root; workspace directories), following each
/// dependency as Node resolves it (the nearest `node_modules` up the tree) and workspace links;
/// dev dependencies of the starts too (the full install has them). `None` when the lockfile
/// has no `packages` map (lockfileVersion 1): then nothing can be left out.
/// The lockfile path (`packages` key) where `name` required from the package at `loc` is
/// installed, as Node's resolution finds it: the package's own node_modules, then each enclosing
/// one up to the root's.
pub(crate) fn lock_resolve(
    pkgs: &serde_json::Map<String, serde_json::Value>,
    loc: &str,
    name: &str,
) -> Option<String> {
    let mut at = loc.to_string();
    loop {
        let cand = if at.is_empty() {
            format!("node_modules/{name}")
        } else {
            format!("{at}/node_modules/{name}")
        };
        if pkgs.contains_key(&cand) {
            return Some(cand);
        }
        if at.is_empty() {
            return None;
        }
        // up one package: `x/node_modules/@s/n` → `x`; a workspace directory → the root
        at = match at.rfind("node_modules/") {
            Some(i) => at[..i].trim_end_matches('/').to_string(),
            None => String::new(),
        };
    }
}

pub(crate) fn lock_reach(text: &str, starts: &[String]) -> Option<BTreeSet<String>> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let pkgs = v.get("packages")?.as_object()?;
    let names = |p: &serde_json::Value, dev: bool| -> Vec<String> {
        let mut fields = vec!["dependencies", "optionalDependencies", "peerDependencies"];
        if dev {
            fields.push("devDependencies");
        }
        fields
            .iter()
            .filter_map(|f| p.get(*f).and_then(|d| d.as_object()))
            .flat_map(|o| o.keys().cloned())
            .collect()
    };
    let resolve = |loc: &str, name: &str| lock_resolve(pkgs, loc, name);
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut todo: Vec<(String, bool)> = starts.iter().map(|s| (s.clone(), true)).collect();
    while let Some((loc, dev)) = todo.pop() {
        if !seen.insert(loc.clone()) && !dev {
            continue;
        }
        let Some(p) = pkgs.get(&loc) else { continue };
        if p.get("link").and_then(|l| l.as_bool()) == Some(true) {
            if let Some(target) = p.get("resolved").and_then(|r| r.as_str()) {
                todo.push((target.to_string(), false));
            }
            continue;
        }
        for n in names(p, dev) {
            if let Some(at) = resolve(&loc, &n)
                && !seen.contains(&at)
            {
                todo.push((at, false));
            }
        }
    }
    Some(seen)
}

#[cfg(test)]
mod tests {
    use super::pnpm_packages;

    #[test]
    fn pnpm_workspace_yaml_packages() {
        let block = "# monorepo\npackages:\n  - \"apps/*\"\n  - 'packages/*' # libs\n\n  - '!**/test/**'\n\
                     catalog:\n  react: ^18\n";
        assert_eq!(
            pnpm_packages(block),
            ["apps/*", "packages/*", "!**/test/**"]
        );
        assert_eq!(
            pnpm_packages("packages: ['apps/*', \"libs/*\"]\n"),
            ["apps/*", "libs/*"]
        );
        // pnpm 10 writes the file for settings alone: no workspace
        assert!(pnpm_packages("onlyBuiltDependencies:\n  - esbuild\n").is_empty());
        assert!(pnpm_packages("").is_empty());
    }
}
