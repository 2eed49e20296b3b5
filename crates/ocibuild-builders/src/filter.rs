//! Include/exclude globs over relative paths, for layer contents and the source copy.
//!
//! Semantics (shared by [`crate::LayerSpec`] and [`crate::Plan::source_exclude`]):
//! - paths and patterns are relative (`./` and a leading `/` are ignored, so is a trailing `/`);
//! - `*`, `?` and `[…]` never cross `/`; `**` as a whole component spans any number of
//!   directories (`**/*.md` matches `a.md` and `x/y/a.md`); `{a,b}` alternates; `\` escapes;
//! - a pattern that matches a directory also matches every path under it (`node_modules`
//!   excludes `node_modules/x/y.js`);
//! - a path is kept when it is not excluded and, if there are include patterns, it (or a
//!   directory above it) matches one of them.

use std::path::Path;

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

use crate::error::{BuildersError, Result};

/// A compiled include/exclude filter. Build one with [`glob_filter`].
#[derive(Debug, Clone)]
pub struct Filter {
    include: Option<GlobSet>,
    /// The literal leading components of each include pattern (before the first one with a
    /// glob character), to know which directories can hold included paths.
    include_prefixes: Vec<Vec<String>>,
    exclude: GlobSet,
}

/// Compile `include` (empty = everything) and `exclude` globs.
pub fn glob_filter(include: &[String], exclude: &[String]) -> Result<Filter> {
    let include_set = if include.is_empty() {
        None
    } else {
        Some(build_set(include, "include")?)
    };
    let include_prefixes = include
        .iter()
        .map(|p| {
            normalize(p)
                .split('/')
                .take_while(|c| !has_meta(c))
                .map(str::to_string)
                .collect()
        })
        .collect();
    Ok(Filter {
        include: include_set,
        include_prefixes,
        exclude: build_set(exclude, "exclude")?,
    })
}

fn has_meta(component: &str) -> bool {
    component.contains(['*', '?', '[', '{', '\\'])
}

pub(crate) fn normalize(p: &str) -> &str {
    let mut p = p.trim();
    loop {
        if let Some(rest) = p.strip_prefix("./") {
            p = rest;
        } else if let Some(rest) = p.strip_prefix('/') {
            p = rest;
        } else {
            break;
        }
    }
    let p = p.trim_end_matches('/');
    if p == "." { "" } else { p }
}

pub(crate) fn compile(pattern: &str, origin: &str) -> Result<Glob> {
    GlobBuilder::new(normalize(pattern))
        .literal_separator(true)
        .backslash_escape(true)
        .empty_alternates(true)
        .build()
        .map_err(|e| BuildersError::Glob {
            pattern: pattern.to_string(),
            origin: origin.to_string(),
            detail: e.kind().to_string(),
        })
}

fn build_set(patterns: &[String], origin: &str) -> Result<GlobSet> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        b.add(compile(p, origin)?);
    }
    b.build().map_err(|e| BuildersError::Glob {
        pattern: patterns.join(", "),
        origin: origin.to_string(),
        detail: e.to_string(),
    })
}

/// `a/b/c` → `a`, `a/b`, `a/b/c`.
fn prefixes(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/')
        .map(move |(i, _)| &path[..i])
        .chain(std::iter::once(path))
}

impl Filter {
    /// Whether `rel_path` (relative to the filtered root) is kept.
    ///
    /// For a file: it is not excluded (nor is a directory above it) and, when there are include
    /// patterns, it or a directory above it matches one. For a directory: whether the walk
    /// should keep and descend into it — it is not excluded and it can hold included paths
    /// (so a directory may be kept that in the end holds no included file). The root (`""`)
    /// is always kept.
    pub fn matches(&self, rel_path: &str, is_dir: bool) -> bool {
        let path = normalize(rel_path);
        if path.is_empty() {
            return true;
        }
        if prefixes(path).any(|p| self.exclude.is_match(p)) {
            return false;
        }
        let Some(include) = &self.include else {
            return true;
        };
        if prefixes(path).any(|p| include.is_match(p)) {
            return true;
        }
        if !is_dir {
            return false;
        }
        // A directory is walked when it lies on the way to (or under) some include pattern's
        // literal prefix.
        let comps: Vec<&str> = path.split('/').collect();
        self.include_prefixes
            .iter()
            .any(|pre| comps.iter().zip(pre.iter()).all(|(a, b)| *a == b.as_str()))
    }

    /// Whether `rel_path` is excluded by an exclude pattern (or sits under an excluded
    /// directory), regardless of include patterns.
    pub fn is_excluded(&self, rel_path: &str) -> bool {
        let path = normalize(rel_path);
        !path.is_empty() && prefixes(path).any(|p| self.exclude.is_match(p))
    }
}

/// Walk `root` (sorted by name, symlinks never followed) and call `visit(entry, rel)` for every
/// entry `filter` keeps, `rel` being its `/`-separated path relative to `root`; directories the
/// filter drops are not entered. The one filtered walk the planner and the engine share.
pub fn walk_filtered<E>(
    root: &Path,
    filter: &Filter,
    walk_err: impl Fn(walkdir::Error) -> E,
    mut visit: impl FnMut(&walkdir::DirEntry, &str) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let mut it = walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
        .min_depth(1)
        .into_iter();
    while let Some(entry) = it.next() {
        let entry = entry.map_err(&walk_err)?;
        let Ok(rel) = entry.path().strip_prefix(root) else {
            continue;
        };
        let rel = rel.to_string_lossy().replace('\\', "/");
        let is_dir = entry.file_type().is_dir();
        if !filter.matches(&rel, is_dir) {
            if is_dir {
                it.skip_current_dir();
            }
            continue;
        }
        visit(&entry, &rel)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn f(inc: &[&str], exc: &[&str]) -> Filter {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        glob_filter(&s(inc), &s(exc)).unwrap()
    }

    #[test]
    fn exclude_dir_covers_contents() {
        let flt = f(&[], &["node_modules", ".git"]);
        assert!(!flt.matches("node_modules", true));
        assert!(!flt.matches("node_modules/a/b.js", false));
        assert!(!flt.matches("./.git/HEAD", false));
        assert!(flt.matches("src/node_modules_x.js", false));
        // root-anchored: a nested node_modules is kept by `node_modules`
        assert!(flt.matches("pkg/node_modules/x.js", false));
        let flt = f(&[], &["**/node_modules"]);
        assert!(!flt.matches("pkg/node_modules/x.js", false));
        assert!(!flt.matches("node_modules/x.js", false));
    }

    #[test]
    fn star_does_not_cross_separator() {
        let flt = f(&[], &["*.map"]);
        assert!(!flt.matches("a.map", false));
        assert!(flt.matches("dist/a.map", false));
        let flt = f(&[], &["**/*.map"]);
        assert!(!flt.matches("dist/x/a.map", false));
        assert!(!flt.matches("a.map", false));
    }

    #[test]
    fn include_patterns() {
        let flt = f(&["hello"], &[]);
        assert!(flt.matches("hello", false));
        assert!(!flt.matches("other", false));
        assert!(!flt.matches("sub", true));
        let flt = f(&["**/*.class"], &[]);
        assert!(flt.matches("com", true));
        assert!(flt.matches("com/example/App.class", false));
        assert!(!flt.matches("com/example/app.properties", false));
        let flt = f(&["dist/**"], &[]);
        assert!(flt.matches("dist", true));
        assert!(flt.matches("dist/a/b.js", false));
        assert!(!flt.matches("src", true));
        let flt = f(&["lib/deep/*.jar"], &[]);
        assert!(flt.matches("lib", true));
        assert!(flt.matches("lib/deep", true));
        assert!(!flt.matches("lib/other", true));
        assert!(flt.matches("lib/deep/a.jar", false));
        // an included directory includes its contents
        let flt = f(&["static"], &[]);
        assert!(flt.matches("static/css/x.css", false));
    }

    #[test]
    fn include_and_exclude() {
        let flt = f(&["*.jar"], &["*-SNAPSHOT.jar"]);
        assert!(flt.matches("a-1.0.jar", false));
        assert!(!flt.matches("b-1.0-SNAPSHOT.jar", false));
        assert!(!flt.matches("readme.txt", false));
    }

    #[test]
    fn alternates_and_escapes() {
        let flt = f(&[], &["*.{test,spec}.js", "a\\*b"]);
        assert!(!flt.matches("x.test.js", false));
        assert!(!flt.matches("x.spec.js", false));
        assert!(flt.matches("x.js", false));
        assert!(!flt.matches("a*b", false));
        assert!(flt.matches("axb", false));
        let lit = globset::escape("we[ir]d*.txt");
        let flt = glob_filter(&[], &[lit]).unwrap();
        assert!(!flt.matches("we[ir]d*.txt", false));
        assert!(flt.matches("weid.txt", false));
    }

    #[test]
    fn bad_pattern_is_an_error() {
        let err = glob_filter(&["[a".to_string()], &[]).unwrap_err();
        assert!(err.to_string().contains("[a"), "{err}");
    }

    #[test]
    fn normalisation() {
        assert_eq!(normalize("./a/b/"), "a/b");
        assert_eq!(normalize("/a"), "a");
        assert_eq!(normalize("."), "");
        let flt = f(&[], &["/build/"]);
        assert!(!flt.matches("build/x", false));
        assert!(flt.matches("", true));
    }
}
