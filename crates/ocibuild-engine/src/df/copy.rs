//! COPY and ADD, done natively: sources from the context (after `.dockerignore`), a named
//! context, an earlier stage or an image; written into a fresh change dir with the owners and
//! modes docker gives them; never running anything in the image.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt, lchown};
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};
use ocibuild_dockerfile::{CopyArgs, DockerIgnore, Instruction, SourcePattern, walk_context};
use ocibuild_oci::extract::{ExtractOptions, decompress, extract_layer};
use ocibuild_oci::media::Compression;
use ocibuild_sandbox::mounts::resolve_in_root;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::steps::{StageRun, join_abs, key_of, one_line};
use super::{Exec, NamedContext, fsops, poison};
use crate::error::{EngineError, Result};

/// Where COPY/ADD/RUN --mount read from.
pub(crate) enum Source {
    /// The build context, `.dockerignore` applied.
    Context(PathBuf),
    /// A named directory context (no ignore rules).
    Dir(PathBuf),
    /// An earlier stage: a copy reads it through a view of its layers ([`Exec::stage_view`]);
    /// it is materialised only where a whole root is needed (a `RUN --mount` from it).
    Stage(usize),
    /// An image's extracted root, with the image digest.
    Image(PathBuf, String),
}

/// One thing to copy.
struct Item {
    /// Host path of the source entry.
    host: PathBuf,
    /// Path under the destination (empty: the destination itself, for a single file).
    dest_rel: String,
    /// Path relative to the source root, for keys.
    src_rel: String,
}

/// Whether a COPY/ADD source has wildcards, decided as Docker and BuildKit do
/// (`containsWildcards`): a `*`, `?` or `[` not escaped by a `\`. A source without one is a
/// literal path, backslashes and all (`"data\[1\].txt"` in double quotes, where the lexer
/// keeps the backslashes, names the file `data\[1\].txt`, not `data[1].txt`).
fn has_glob(s: &str) -> bool {
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

fn clean_rel(s: &str) -> String {
    let a = join_abs("/", s);
    a.trim_start_matches('/').to_string()
}

fn glob(pattern: &str) -> Result<GlobMatcher> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| EngineError::Invalid {
            what: format!("source pattern {pattern}"),
            detail: e.to_string(),
        })
}

/// A source pattern with wildcards: Go's `filepath.Match` as BuildKit matches COPY sources
/// (`?` one character, not one byte), or with `--parents` BuildKit's include pattern (`**`).
fn source_glob(pattern: &str, parents: bool) -> Result<SourcePattern> {
    SourcePattern::new(pattern, parents).map_err(|e| EngineError::Invalid {
        what: format!("source pattern {pattern}"),
        detail: format!("{e}; escape a literal *, ? or [ with \\"),
    })
}

impl Source {
    pub(crate) fn open(exec: &Exec<'_>, from: Option<&str>, loc: &str) -> Result<Source> {
        let Some(name) = from else {
            return Ok(Source::Context(exec.o.context.clone()));
        };
        if let Some(j) = exec.df.find_stage(name) {
            return Ok(Source::Stage(j));
        }
        let reference = match exec.o.contexts.get(name) {
            Some(NamedContext::Dir(d)) => return Ok(Source::Dir(d.clone())),
            Some(NamedContext::Image(r)) => r.clone(),
            None => name.to_string(),
        };
        let img = exec.image(&reference).map_err(|e| EngineError::Invalid {
            what: format!("{loc}: --from={name}"),
            detail: format!(
                "{e}\nhelp: --from takes an earlier stage, a --build-context name or an image reference"
            ),
        })?;
        let root = exec.image_root(&img)?;
        Ok(Source::Image(root, img.manifest_desc.digest.to_string()))
    }

    fn root(&self, exec: &Exec<'_>) -> Result<PathBuf> {
        Ok(match self {
            Source::Context(p) | Source::Dir(p) | Source::Image(p, _) => p.clone(),
            Source::Stage(j) => exec.stage_root(*j)?,
        })
    }

    fn is_fs_root(&self) -> bool {
        matches!(self, Source::Stage(_) | Source::Image(..))
    }

    /// A path inside the source, symlinks resolved within it.
    pub(crate) fn resolve_in(&self, exec: &Exec<'_>, rel: &str) -> Result<PathBuf> {
        let root = self.root(exec)?;
        let rel = clean_rel(rel);
        if rel.is_empty() {
            return Ok(root);
        }
        Ok(resolve_in_root(&root, &format!("/{rel}"))?)
    }

    /// The host path of what `rel` names in the source (symlinks resolved within it). A file
    /// of an earlier stage is read from the stage's layers where it is: a cached
    /// `COPY --from=STAGE /out/app` must not materialise the stage's root (a hard-link clone
    /// of a whole toolchain) just to hash one file.
    pub(crate) fn entry_host(&self, exec: &Exec<'_>, rel: &str) -> Option<PathBuf> {
        if let Source::Stage(j) = self {
            // a directory too (its mode and owner key the copy): never the stage's root
            let rel = clean_rel(rel);
            let view = exec.stage_view(*j, &rel).ok()??;
            let r = view.resolve(&format!("/{rel}")).ok()?;
            return view.lstat(&r).map(|(host, _)| host);
        }
        self.resolve_in(exec, rel).ok()
    }

    /// An id of what `rel` holds: the image digest for an image (it determines the content),
    /// else the entries' types, modes and content hashes (and owners, for a stage, as root).
    pub(crate) fn content_id(&self, exec: &Exec<'_>, rel: &str) -> Result<String> {
        match self {
            Source::Image(_, d) => Ok(key_of(json!(["image", d, rel]))),
            // an earlier stage by what the path holds, as a local dir: never by the stage's
            // layers, which may differ elsewhere in files this step never reads
            Source::Context(_) | Source::Dir(_) | Source::Stage(_) => {
                let rel = clean_rel(rel);
                let mut parts = Vec::new();
                if matches!(self, Source::Stage(_))
                    && let Some(host) = self.entry_host(exec, &rel)
                {
                    parts.push(json!([rel, exec.fs_entry_id(self, &host, &rel)?]));
                }
                let items = self.items(exec, &rel, false, &[])?;
                for it in &items {
                    parts.push(json!([
                        it.src_rel,
                        exec.fs_entry_id(self, &it.host, &it.src_rel)?
                    ]));
                }
                Ok(key_of(json!(parts)))
            }
        }
    }

    /// Entries of a local dir source: (rel, is_dir), sorted.
    fn listing(&self, exec: &Exec<'_>) -> Result<Vec<(String, bool)>> {
        match self {
            Source::Context(root) => {
                let r = exec.context_files.get_or_init(|| list(root, &exec.ignore));
                r.clone().map_err(|detail| EngineError::Invalid {
                    what: format!("build context {}", root.display()),
                    detail,
                })
            }
            Source::Dir(root) => {
                list(root, &DockerIgnore::default()).map_err(|detail| EngineError::Invalid {
                    what: format!("build context {}", root.display()),
                    detail,
                })
            }
            _ => Ok(Vec::new()),
        }
    }

    /// Whether `pattern` names a directory in an earlier stage (which may be empty).
    fn is_stage_dir(&self, exec: &Exec<'_>, pattern: &str) -> bool {
        let Source::Stage(j) = self else {
            return false;
        };
        let Ok(Some(view)) = exec.stage_view(*j, &clean_rel(pattern)) else {
            return false;
        };
        view.resolve(&format!("/{}", clean_rel(pattern)))
            .ok()
            .and_then(|rel| view.lstat(&rel))
            .is_some_and(|(_, m)| m.is_dir())
    }

    /// The items one source pattern selects.
    fn items(
        &self,
        exec: &Exec<'_>,
        pattern: &str,
        parents: bool,
        exclude: &[GlobMatcher],
    ) -> Result<Vec<Item>> {
        // `--parents` with a `/./` pivot (BuildKit): the path is kept from the pivot on.
        if parents && let Some((pivot, rest)) = pattern.split_once("/./") {
            let pivot = clean_rel(pivot);
            let full = if pivot.is_empty() {
                rest.to_string()
            } else {
                format!("{pivot}/{rest}")
            };
            let mut items = self.items(exec, &full, parents, exclude)?;
            if !pivot.is_empty() {
                let pre = format!("{pivot}/");
                items.retain_mut(|it| {
                    if let Some(r) = it.dest_rel.strip_prefix(&pre) {
                        it.dest_rel = r.to_string();
                        true
                    } else {
                        // the pivot itself and the directories above it are not copied
                        false
                    }
                });
            }
            return Ok(items);
        }
        let pattern = clean_rel(pattern);
        // An excluded directory takes its contents with it (BuildKit's `--exclude`).
        let excluded = |rel: &str| {
            rel.match_indices('/')
                .map(|(i, _)| &rel[..i])
                .chain(std::iter::once(rel))
                .any(|p| exclude.iter().any(|g| g.is_match(p)))
        };
        // An earlier stage is read through its layers, never materialised: a copy of `/src`
        // must not hard-link a whole toolchain root into place (and remove it again).
        if let Source::Stage(j) = self
            && let Some(view) = exec.stage_view(*j, &pattern)?
        {
            return items_in_view(&view, &pattern, parents, &excluded);
        }
        let root = self.root(exec)?;
        let mut out = Vec::new();
        if self.is_fs_root() {
            // Walk from the pattern's literal prefix.
            let (prefix, matcher) = if has_glob(&pattern) {
                let lit: Vec<&str> = pattern.split('/').take_while(|c| !has_glob(c)).collect();
                (lit.join("/"), Some(source_glob(&pattern, parents)?))
            } else {
                (pattern.clone(), None)
            };
            let start = self.resolve_in(exec, &prefix)?;
            let Ok(meta) = fs::metadata(&start) else {
                return Ok(out);
            };
            match matcher {
                None => {
                    if meta.is_dir() {
                        let base = dir_base(&mut out, parents, &start, &pattern);
                        walk_into(&start, &base, &pattern, parents, &excluded, &mut out)?;
                    } else {
                        let name = base_name(&pattern);
                        out.push(Item {
                            host: start,
                            dest_rel: if parents { pattern.clone() } else { name },
                            src_rel: pattern.clone(),
                        });
                    }
                }
                Some(m) => {
                    let mut found = Vec::new();
                    for e in walkdir::WalkDir::new(&start)
                        .follow_links(false)
                        .min_depth(1)
                        .sort_by_file_name()
                        .into_iter()
                        .flatten()
                    {
                        let rel = e.path().strip_prefix(&start).unwrap_or(e.path());
                        let full = if prefix.is_empty() {
                            rel.to_string_lossy().into_owned()
                        } else {
                            format!("{prefix}/{}", rel.to_string_lossy())
                        };
                        if m.is_match(&full) {
                            found.push((e.path().to_path_buf(), full, e.file_type().is_dir()));
                        }
                    }
                    for (host, full, _) in found {
                        if excluded(&full) {
                            continue;
                        }
                        // a matched symlink is followed (within the root), as docker does
                        let host = self.resolve_in(exec, &full).unwrap_or(host);
                        if host.is_dir() {
                            let base = dir_base(&mut out, parents, &host, &full);
                            walk_into(&host, &base, &full, parents, &excluded, &mut out)?;
                        } else {
                            out.push(Item {
                                host,
                                dest_rel: if parents {
                                    full.clone()
                                } else {
                                    base_name(&full)
                                },
                                src_rel: full,
                            });
                        }
                    }
                }
            }
            return Ok(out);
        }
        // Local dirs: from the (ignore-filtered) listing.
        let listing = self.listing(exec)?;
        let matched: Vec<(String, bool)> = if pattern.is_empty() {
            vec![(String::new(), true)]
        } else if has_glob(&pattern) {
            let m = source_glob(&pattern, parents)?;
            listing
                .iter()
                .filter(|(r, _)| m.is_match(r))
                .cloned()
                .collect()
        } else {
            listing
                .iter()
                .filter(|(r, _)| *r == pattern)
                .cloned()
                .collect()
        };
        for (rel, is_dir) in matched {
            if excluded(&rel) {
                continue;
            }
            // A named (or matched) symlink is followed within the context, as docker does: a
            // link to a file copies the file under the link's name, a link to a directory
            // copies the directory's contents.
            let link = !rel.is_empty()
                && root
                    .join(&rel)
                    .symlink_metadata()
                    .is_ok_and(|m| m.file_type().is_symlink());
            if link {
                let host = resolve_in_root(&root, &format!("/{rel}"))?;
                let target_rel = host
                    .strip_prefix(&root)
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                match fs::metadata(&host) {
                    Ok(m) if m.is_dir() => {
                        let prefix = if target_rel.is_empty() {
                            String::new()
                        } else {
                            format!("{target_rel}/")
                        };
                        let base = if parents { rel.clone() } else { String::new() };
                        for (r, _) in listing
                            .iter()
                            .filter(|(r, _)| r.starts_with(&prefix) && !r.is_empty())
                        {
                            let sub = &r[prefix.len()..];
                            out.push(Item {
                                host: root.join(r),
                                dest_rel: if base.is_empty() {
                                    sub.to_string()
                                } else {
                                    format!("{base}/{sub}")
                                },
                                src_rel: r.clone(),
                            });
                        }
                    }
                    Ok(_) => out.push(Item {
                        host,
                        dest_rel: if parents {
                            rel.clone()
                        } else {
                            base_name(&rel)
                        },
                        src_rel: rel,
                    }),
                    Err(_) => {
                        return Err(EngineError::Invalid {
                            what: format!("copy source {rel}"),
                            detail: "it is a symlink to nothing inside the build context".into(),
                        });
                    }
                }
                continue;
            }
            if is_dir {
                let base = dir_base(&mut out, parents, &root.join(&rel), &rel);
                let prefix = if rel.is_empty() {
                    String::new()
                } else {
                    format!("{rel}/")
                };
                for (r, _) in listing
                    .iter()
                    .filter(|(r, _)| r.starts_with(&prefix) && !r.is_empty())
                {
                    let sub = &r[prefix.len()..];
                    // relative to the directory copied (BuildKit), or to the root with --parents
                    if excluded(if parents { r } else { sub }) {
                        continue;
                    }
                    out.push(Item {
                        host: root.join(r),
                        dest_rel: if base.is_empty() {
                            sub.to_string()
                        } else {
                            format!("{base}/{sub}")
                        },
                        src_rel: r.clone(),
                    });
                }
            } else {
                out.push(Item {
                    host: root.join(&rel),
                    dest_rel: if parents {
                        rel.clone()
                    } else {
                        base_name(&rel)
                    },
                    src_rel: rel,
                });
            }
        }
        Ok(out)
    }
}

/// [`Source::items`] for an earlier stage read through a view of its layers: the same items,
/// in the same order, as the walk of its materialised root gives.
fn items_in_view(
    view: &fsops::View,
    pattern: &str,
    parents: bool,
    excluded: &dyn Fn(&str) -> bool,
) -> Result<Vec<Item>> {
    let mut out = Vec::new();
    let (prefix, matcher) = if has_glob(pattern) {
        let lit: Vec<&str> = pattern.split('/').take_while(|c| !has_glob(c)).collect();
        (lit.join("/"), Some(glob(pattern)?))
    } else {
        (pattern.to_string(), None)
    };
    let start = view.resolve(&format!("/{prefix}"))?;
    let Some((start_host, meta)) = view.lstat(&start) else {
        return Ok(out);
    };
    // (under, dest base, src base): every entry beneath the merged dir `under`
    let walk = |under: &Path, base: &str, src_base: &str, out: &mut Vec<Item>| {
        for (rel, host, _) in view.walk(under) {
            let rel = rel.to_string_lossy().into_owned();
            let src_rel = if src_base.is_empty() {
                rel.clone()
            } else {
                format!("{src_base}/{rel}")
            };
            // `--exclude` patterns are relative to the directory copied (BuildKit)
            if excluded(if parents { &src_rel } else { &rel }) {
                continue;
            }
            out.push(Item {
                host,
                dest_rel: if base.is_empty() {
                    rel
                } else {
                    format!("{base}/{rel}")
                },
                src_rel,
            });
        }
    };
    match matcher {
        None => {
            if meta.is_dir() {
                let base = dir_base(&mut out, parents, &start_host, pattern);
                walk(&start, &base, pattern, &mut out);
            } else {
                out.push(Item {
                    host: start_host,
                    dest_rel: if parents {
                        pattern.to_string()
                    } else {
                        base_name(pattern)
                    },
                    src_rel: pattern.to_string(),
                });
            }
        }
        Some(m) => {
            if !meta.is_dir() {
                return Ok(out);
            }
            let mut found = Vec::new();
            for (rel, host, _) in view.walk(&start) {
                let full = if prefix.is_empty() {
                    rel.to_string_lossy().into_owned()
                } else {
                    format!("{prefix}/{}", rel.to_string_lossy())
                };
                if m.is_match(&full) {
                    found.push((host, full));
                }
            }
            for (host, full) in found {
                if excluded(&full) {
                    continue;
                }
                // a matched symlink is followed (within the root), as docker does
                let (rel, host, dir) = match view
                    .resolve(&format!("/{full}"))
                    .ok()
                    .and_then(|r| view.lstat(&r).map(|(h, m)| (r, h, m.is_dir())))
                {
                    Some(x) => x,
                    None => (PathBuf::from(&full), host, false),
                };
                if dir {
                    let base = dir_base(&mut out, parents, &host, &full);
                    walk(&rel, &base, &full, &mut out);
                } else {
                    out.push(Item {
                        host,
                        dest_rel: if parents {
                            full.clone()
                        } else {
                            base_name(&full)
                        },
                        src_rel: full,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// A directory source (named or matched) gives its contents; with `--parents` its own path is
/// kept (BuildKit): its item is pushed and the contents go under that path, which is returned.
/// Without `--parents` (or for the root itself) the contents land at the destination: `""`.
fn dir_base(out: &mut Vec<Item>, parents: bool, host: &Path, path: &str) -> String {
    if !parents || path.is_empty() {
        return String::new();
    }
    out.push(Item {
        host: host.to_path_buf(),
        dest_rel: path.to_string(),
        src_rel: path.to_string(),
    });
    path.to_string()
}

fn base_name(p: &str) -> String {
    p.rsplit('/').next().unwrap_or(p).to_string()
}

fn walk_into(
    dir: &Path,
    base: &str,
    src_base: &str,
    parents: bool,
    excluded: &dyn Fn(&str) -> bool,
    out: &mut Vec<Item>,
) -> Result<()> {
    for e in walkdir::WalkDir::new(dir)
        .follow_links(false)
        .min_depth(1)
        .sort_by_file_name()
    {
        let e = e.map_err(|e| EngineError::Io {
            what: "walking a copy source".into(),
            path: dir.to_path_buf(),
            source: e
                .into_io_error()
                .unwrap_or_else(|| std::io::Error::other("walk error")),
        })?;
        let rel = e
            .path()
            .strip_prefix(dir)
            .unwrap_or(e.path())
            .to_string_lossy()
            .into_owned();
        let src_rel = if src_base.is_empty() {
            rel.clone()
        } else {
            format!("{src_base}/{rel}")
        };
        // `--exclude` patterns are relative to the directory copied (BuildKit's copier
        // matches the path below each source), or to the root with `--parents`
        if excluded(if parents { &src_rel } else { &rel }) {
            continue;
        }
        out.push(Item {
            host: e.path().to_path_buf(),
            dest_rel: if base.is_empty() {
                rel
            } else {
                format!("{base}/{rel}")
            },
            src_rel,
        });
    }
    Ok(())
}

fn list(root: &Path, ignore: &DockerIgnore) -> std::result::Result<Vec<(String, bool)>, String> {
    let paths = walk_context(root, ignore).map_err(|e| e.to_string())?;
    let mut out: Vec<(String, bool)> = paths
        .into_iter()
        .filter_map(|p| {
            let is_dir = root.join(&p).symlink_metadata().ok()?.is_dir();
            Some((p.to_string_lossy().into_owned(), is_dir))
        })
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// Parse `--chmod`: octal only.
fn parse_chmod(s: &str, loc: &str) -> Result<u32> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| EngineError::Invalid {
            what: format!("{loc}: --chmod={s}"),
            detail: "ocibuild takes octal modes (e.g. --chmod=0755); symbolic modes are not supported yet".into(),
        })
}

/// Resolve `--chown=user[:group]` against the destination root's /etc/passwd and /etc/group.
pub(crate) fn parse_chown(spec: &str, root: Option<&fsops::View>, loc: &str) -> Result<(u32, u32)> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let read = |f: &str| -> Vec<Vec<String>> {
        root.and_then(|r| r.read_to_string(&format!("/{f}")))
            .map(|t| {
                t.lines()
                    .map(|l| l.split(':').map(str::to_string).collect())
                    .collect()
            })
            .unwrap_or_default()
    };
    let bad = |what: &str, name: &str, file: &str| EngineError::Invalid {
        what: format!("{loc}: --chown={spec}"),
        detail: format!(
            "no {what} `{name}` in the stage's {file}; use numeric ids or create the {what} in an earlier step"
        ),
    };
    let (uid, primary) = match u.parse::<u32>() {
        Ok(n) => (n, n),
        Err(_) => {
            let pw = read("etc/passwd");
            let e = pw
                .iter()
                .find(|f| f.first().map(String::as_str) == Some(u))
                .ok_or_else(|| bad("user", u, "/etc/passwd"))?;
            let uid = e
                .get(2)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| bad("user", u, "/etc/passwd"))?;
            let gid = e.get(3).and_then(|s| s.parse().ok()).unwrap_or(uid);
            (uid, gid)
        }
    };
    let gid = match g {
        None => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                let gr = read("etc/group");
                gr.iter()
                    .find(|f| f.first().map(String::as_str) == Some(g))
                    .and_then(|e| e.get(2).and_then(|s| s.parse().ok()))
                    .ok_or_else(|| bad("group", g, "/etc/group"))?
            }
        },
    };
    Ok((uid, gid))
}

fn sha256_file(p: &Path) -> std::io::Result<String> {
    let mut f = fs::File::open(p)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// What kind of archive a file is, by its first bytes (None: not an archive).
fn archive_kind(p: &Path) -> Option<Compression> {
    let mut f = fs::File::open(p).ok()?;
    let mut b = [0u8; 262];
    let n = f.read(&mut b).ok()?;
    let b = &b[..n];
    if b.starts_with(&[0x1f, 0x8b]) {
        Some(Compression::Gzip)
    } else if b.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some(Compression::Zstd)
    } else if n >= 262 && &b[257..262] == b"ustar" {
        Some(Compression::None)
    } else {
        None
    }
}

impl Exec<'_> {
    /// What a COPY/ADD reads from outside the graph, by content, for the whole-graph key
    /// ([`super::graph`]): the context files its sources select (its `--exclude`s applied),
    /// a named directory's, or an image's digest. An earlier stage is named only (its own
    /// inputs key it). `Ok(None)`: the step reads something that cannot be keyed before it
    /// runs (a URL, a git repository, a variable in a source or `--from`).
    pub(crate) fn copy_inputs_id(&self, a: &CopyArgs) -> Result<Option<Value>> {
        if a.sources
            .iter()
            .chain(&a.exclude)
            .chain(a.from.iter())
            .any(|w| w.contains('$'))
        {
            return Ok(None);
        }
        if a.sources.iter().any(|s| {
            s.starts_with("http://")
                || s.starts_with("https://")
                || s.starts_with("git@")
                || s.ends_with(".git")
        }) {
            return Ok(None);
        }
        let src = match a.from.as_deref() {
            None => Source::Context(self.o.context.clone()),
            Some(name) if self.df.find_stage(name).is_some() => {
                return Ok(Some(json!(["stage", name])));
            }
            Some(name) => Source::open(self, Some(name), "the whole-graph key")?,
        };
        if let Source::Image(_, d) = &src {
            return Ok(Some(json!(["image", d])));
        }
        let exclude: Vec<GlobMatcher> = a
            .exclude
            .iter()
            .map(|p| glob(&clean_rel(p)))
            .collect::<Result<_>>()?;
        let mut parts = Vec::new();
        for s in &a.sources {
            for it in src.items(self, s, a.parents, &exclude)? {
                let id = self.file_id(&src, &it.host, &it.src_rel)?;
                parts.push(json!([s, it.src_rel, it.dest_rel, id]));
            }
        }
        Ok(Some(json!(parts)))
    }

    /// Everything a `RUN --mount=type=bind` may read, for the whole-graph key: the whole
    /// context (`from` unset) or named directory by content, an image by digest, an earlier
    /// stage by name.
    pub(crate) fn tree_inputs_id(&self, from: Option<&str>) -> Result<Option<Value>> {
        if from.is_some_and(|f| f.contains('$')) {
            return Ok(None);
        }
        let src = match from {
            None => Source::Context(self.o.context.clone()),
            Some(name) if self.df.find_stage(name).is_some() => {
                return Ok(Some(json!(["stage", name])));
            }
            Some(name) => Source::open(self, Some(name), "the whole-graph key")?,
        };
        if let Source::Image(_, d) = &src {
            return Ok(Some(json!(["image", d])));
        }
        let root = src.root(self)?;
        let mut parts = Vec::new();
        for (rel, is_dir) in src.listing(self)? {
            if is_dir {
                parts.push(json!([rel, "dir"]));
            } else {
                parts.push(json!([rel, self.file_id(&src, &root.join(&rel), &rel)?]));
            }
        }
        Ok(Some(json!(parts)))
    }

    /// A content id of one source entry (type, mode, content hash or link target).
    pub(crate) fn file_id(&self, src: &Source, host: &Path, rel: &str) -> Result<String> {
        let m =
            fs::symlink_metadata(host).map_err(EngineError::io("reading a copy source", host))?;
        let ft = m.file_type();
        let mode = m.mode() & 0o7777;
        if ft.is_dir() {
            return Ok(format!("dir:{mode:o}"));
        }
        if ft.is_symlink() {
            let t = fs::read_link(host).map_err(EngineError::io("reading a link", host))?;
            return Ok(format!("link:{}", t.to_string_lossy()));
        }
        let memo = matches!(src, Source::Context(_));
        if memo && let Some(h) = self.hashes.lock().map_err(poison)?.get(rel) {
            return Ok(format!("file:{mode:o}:{h}"));
        }
        let h = sha256_file(host).map_err(EngineError::io("hashing a copy source", host))?;
        if memo {
            self.hashes
                .lock()
                .map_err(poison)?
                .insert(rel.to_string(), h.clone());
        }
        Ok(format!("file:{mode:o}:{h}"))
    }

    /// [`Self::file_id`], with the owner for a stage's entries when owners are kept (as
    /// root): COPY --from keeps them. Rootless, entries belong to the invoking user, which is
    /// local to this machine and not copied, so it stays out of the key.
    pub(crate) fn fs_entry_id(&self, src: &Source, host: &Path, rel: &str) -> Result<String> {
        let id = self.file_id(src, host, rel)?;
        if matches!(src, Source::Stage(_)) && fsops::is_root() {
            let m = fs::symlink_metadata(host)
                .map_err(EngineError::io("reading a copy source", host))?;
            return Ok(format!("{id}:{}:{}", m.uid(), m.gid()));
        }
        Ok(id)
    }

    pub(crate) fn copy_step(
        &self,
        st: &mut StageRun,
        ins: &Instruction,
        a: &CopyArgs,
        is_add: bool,
        label: &str,
        created_by: &str,
    ) -> Result<()> {
        let line = ins.span.line;
        let loc = self.loc(line);
        let kw = if is_add { "ADD" } else { "COPY" };
        let ex = |w: &str| -> Result<String> {
            ocibuild_dockerfile::expand(w, &|n: &str| st.lookup(n), self.df.escape()).map_err(|e| {
                EngineError::Invalid {
                    what: loc.clone(),
                    detail: e.to_string(),
                }
            })
        };
        let dest_raw = ex(&a.dest)?;
        let sources: Vec<String> = a.sources.iter().map(|s| ex(s)).collect::<Result<_>>()?;
        let chown = a.chown.as_deref().map(&ex).transpose()?;
        let chmod = a.chmod.as_deref().map(&ex).transpose()?;
        let from = a.from.as_deref().map(&ex).transpose()?;
        let exclude: Vec<GlobMatcher> = a
            .exclude
            .iter()
            .map(|p| ex(p).and_then(|p| glob(&clean_rel(&p))))
            .collect::<Result<_>>()?;
        let chmod = chmod.as_deref().map(|c| parse_chmod(c, &loc)).transpose()?;
        let inline: Vec<(String, String)> = a
            .inline_files
            .iter()
            .map(|f| {
                let content = if f.expand {
                    ex(&f.content).unwrap_or_else(|_| f.content.clone())
                } else {
                    f.content.clone()
                };
                (f.name.clone(), content)
            })
            .collect();
        let workdir = st.workdir();
        let dest_abs = join_abs(&workdir, &dest_raw);
        let dest_is_dir_syntax =
            dest_raw.ends_with('/') || dest_raw == "." || dest_raw.ends_with("/.");
        if sources.len() + inline.len() > 1 && !dest_is_dir_syntax {
            return Err(EngineError::Invalid {
                what: format!("{loc}: {}", one_line(&ins.original)),
                detail: format!(
                    "when using {kw} with more than one source, the destination must be a directory and end with a /"
                ),
            });
        }
        let src = Source::open(self, from.as_deref(), &loc)?;
        // warming (or `--offline`'s walk), a stage that stopped early lacks what its later
        // steps make: a copy from it would run, and stops this stage too
        if let Source::Stage(j) = &src
            && self.stages[*j].get().is_some_and(|o| o.stopped)
            && self.warm_stop(st, label)
        {
            return Ok(());
        }
        if let Source::Stage(j) = &src
            && let Ok(mut c) = self.copied_from.lock()
        {
            c.extend(sources.iter().map(|s| (*j, s.clone())));
        }
        // The step's second key: the stage by its chain key ([`super::steps::AliasRecord`]).
        // When the stage came whole from the cache on a base that is not here (nothing ran
        // on it), it is looked up first: the content key would need the stage's root.
        let alias = match &src {
            Source::Stage(j) => self.stages[*j].get().map(|out| {
                let lazy = out.chain.base.as_ref().is_some_and(|b| self.is_lazy(b));
                let k = key_of(json!({
                    "parent": st.chain.key,
                    // 3: the copy semantics of "copy" 4 below
                    "copy-from-stage": 3,
                    "instruction": [kw, sources, inline, dest_abs, dest_is_dir_syntax, chown, chmod, a.link, a.parents, a.exclude],
                    "stage": out.chain.key,
                }));
                (k, lazy)
            }),
            _ => None,
        };
        if let Some((alias, true)) = &alias
            && let Some((key, layer, upper)) = self.lookup_alias(alias)
        {
            return self.use_cached(st, key, layer, upper, label, created_by);
        }
        // URLs (ADD only)
        let mut downloads: Vec<(String, PathBuf, String)> = Vec::new();
        let private = tempfile::Builder::new()
            .prefix(".copy-")
            .tempdir_in(&self.work)
            .map_err(EngineError::io("creating a private dir", &self.work))?;
        let mut local_sources = Vec::new();
        for s in &sources {
            if s.starts_with("http://") || s.starts_with("https://") {
                if !is_add {
                    return Err(EngineError::Invalid {
                        what: format!("{loc}: COPY {s}"),
                        detail: "COPY takes local paths; use ADD for a URL".into(),
                    });
                }
                if self.o.offline.is_some() {
                    // `--offline`'s walk stops the stage here (the preflight lists the URL)
                    if self.warm_stop(st, label) {
                        return Ok(());
                    }
                    return Err(EngineError::Invalid {
                        what: format!("{loc}: ADD {}", redact_url(s)),
                        detail: "the build is --offline and ADD downloads the URL on every build; download it into the build context while online and COPY it".into(),
                    });
                }
                let (file, name) = download(
                    s,
                    a.checksum.as_deref(),
                    private.path(),
                    downloads.len(),
                    &loc,
                )?;
                downloads.push((s.clone(), file, name));
            } else if s.starts_with("git@") || s.ends_with(".git") {
                return Err(EngineError::Invalid {
                    what: format!("{loc}: ADD {s}"),
                    detail: "ADD of a git repository is not supported yet; clone it in a RUN step or copy a checkout from the context".into(),
                });
            } else {
                local_sources.push(s.clone());
            }
        }
        // Items, and the key over their content.
        let mut all: Vec<(String, Vec<Item>)> = Vec::new();
        let mut content: Vec<Value> = Vec::new();
        // An image's digest determines what any path in it holds. An earlier stage is keyed
        // on what the selected paths hold (type, mode, owner, content), never on the stage's
        // layers: a stage rebuilt on another runner may differ in files this COPY never reads
        // (logs, tool caches, timestamps), and the step must still hit there.
        let from_id = match &src {
            Source::Image(..) => Some(src.content_id(self, "")?),
            _ => None,
        };
        for s in &local_sources {
            if let Some(id) = &from_id {
                content.push(json!([s, id]));
                all.push((s.clone(), Vec::new()));
                continue;
            }
            let items = src.items(self, s, a.parents, &exclude)?;
            // A wildcard that matches nothing copies nothing (BuildKit's AllowEmptyWildcard),
            // and so does an empty directory; a path that is not there is an error.
            // The context's root is always there, even when .dockerignore leaves nothing in it
            // (`COPY . /dst/` then copies nothing, as BuildKit and buildah do).
            let context_root = matches!(src, Source::Context(_)) && clean_rel(s).is_empty();
            if items.is_empty() && !has_glob(s) && !context_root && !src.is_stage_dir(self, s) {
                let detail = match &src {
                    Source::Stage(_) => format!(
                        "`{s}` does not exist in {}",
                        from.as_deref().unwrap_or("the source")
                    ),
                    _ => format!(
                        "`{s}` is not in the build context ({}), or .dockerignore excludes it; check the path (it is relative to the context, not the Dockerfile)",
                        self.o.context.display()
                    ),
                };
                return Err(EngineError::Invalid {
                    what: format!("{loc}: {}", one_line(&ins.original)),
                    detail,
                });
            }
            if matches!(src, Source::Stage(_)) {
                // the named path itself (a directory's mode and owner are copied too)
                let top = clean_rel(s);
                if !has_glob(&top)
                    && let Some(host) = src.entry_host(self, &top)
                {
                    content.push(json!([s, self.fs_entry_id(&src, &host, &top)?]));
                }
            }
            for it in &items {
                content.push(json!([
                    it.src_rel,
                    self.fs_entry_id(&src, &it.host, &it.src_rel)?
                ]));
            }
            all.push((s.clone(), items));
        }
        for (url, file, name) in &downloads {
            content.push(json!([
                url,
                name,
                sha256_file(file).map_err(EngineError::io("hashing a download", file))?
            ]));
        }
        let parts = json!({
            "parent": st.chain.key,
            // v2: an excluded directory takes its contents, `/./` pivots, empty wildcards;
            // v4 (3 was never released): `--exclude` below the directory copied, an escaped
            // `\[` names a literal path, a wildcard's only file copied onto a file destination,
            // a directory holding one file copied into a directory destination
            "copy": 4,
            "instruction": [kw, sources, inline, dest_abs, dest_is_dir_syntax, chown, chmod, a.link, a.parents, a.exclude],
            "content": content,
        });
        let key = key_of(parts.clone());
        if let Some((alias, _)) = &alias {
            self.save_alias(alias, &key)?;
        }
        let hit = self.lookup(&key);
        self.explain(st, label, &parts, hit.is_some());
        if let Some((layer, upper)) = hit {
            return self.use_cached(st, key, layer, upper, label, created_by);
        }
        if self.warm_stop(st, label) {
            return Ok(());
        }
        (self.ev)(crate::Event::StepStarted {
            name: label.to_string(),
            argv: Vec::new(),
        });
        let t0 = std::time::Instant::now();
        let view = self.copy_view(st)?;
        let owner = match &chown {
            Some(c) => parse_chown(c, Some(&view), &loc)?,
            None => (0, 0),
        };
        // Image sources are listed now (the key did not need them).
        if from_id.is_some() {
            for (s, items) in all.iter_mut() {
                *items = src.items(self, s, a.parents, &exclude)?;
                if items.is_empty() && !has_glob(s) {
                    return Err(EngineError::Invalid {
                        what: format!("{loc}: {}", one_line(&ins.original)),
                        detail: format!(
                            "`{s}` does not exist in {}",
                            from.as_deref().unwrap_or("the source")
                        ),
                    });
                }
            }
        }
        let upper = self.new_upper()?;
        let mut w = Writer {
            view: &view,
            upper: &upper,
            owner,
            chmod,
            chown: chown.is_some(),
            keep_owner: chown.is_none() && matches!(src, Source::Stage(_) | Source::Image(..)),
            resolved: HashMap::new(),
            root: fsops::is_root(),
        };
        // Is the destination a directory?
        let dest_exists_dir = dest_abs == "/" || view.stat(&dest_abs).is_some_and(|m| m.is_dir());
        // One file, named or the only match of a wildcard (`COPY target/*.jar app.jar` makes
        // the file app.jar, as BuildKit does). The one item must be the source itself: a
        // directory holding one file (`COPY vendor ./vendor`), or a wildcard matching such a
        // directory, copies its contents into the destination directory.
        let single_file = all.len() + downloads.len() + inline.len() == 1
            && all.first().is_none_or(|(s, items)| {
                items.len() == 1
                    && items[0].host.symlink_metadata().is_ok_and(|m| !m.is_dir())
                    && if has_glob(s) {
                        !a.parents
                            && source_glob(&clean_rel(s), false)
                                .is_ok_and(|m| m.is_match(&items[0].src_rel))
                    } else {
                        items[0].src_rel == clean_rel(s)
                    }
            });
        let dest_is_dir = dest_is_dir_syntax || dest_exists_dir || !single_file;
        // wildcards that matched nothing onto a directory that is there: no change, no layer
        let nothing = all.iter().all(|(_, items)| items.is_empty())
            && downloads.is_empty()
            && inline.is_empty();
        if dest_is_dir && !(nothing && dest_exists_dir) {
            w.ensure_dir(&dest_abs, None)?;
        }
        let target = |rel: &str| -> String {
            if dest_is_dir {
                if rel.is_empty() {
                    dest_abs.clone()
                } else {
                    join_abs(&dest_abs, rel)
                }
            } else {
                dest_abs.clone()
            }
        };
        for (_, items) in &all {
            for it in items {
                let t = target(&it.dest_rel);
                if is_add
                    && !matches!(src, Source::Stage(_) | Source::Image(..))
                    && it.host.symlink_metadata().is_ok_and(|m| m.is_file())
                    && let Some(c) = archive_kind(&it.host)
                {
                    // ADD of a local archive: extracted at the destination directory
                    let dir = if dest_is_dir {
                        dest_abs.clone()
                    } else {
                        t.clone()
                    };
                    w.ensure_dir(&dir, None)?;
                    let f =
                        fs::File::open(&it.host).map_err(EngineError::io("opening", &it.host))?;
                    let opts = ExtractOptions {
                        privileged: false,
                        preserve_owner: w.root,
                        apply_whiteouts: false,
                    };
                    // extracted beside the change dir (same filesystem), then moved in with
                    // every path resolved in the stage's root: an archive holding `bin/x`
                    // extracted at `/` lands in `usr/bin/x` on a merged-/usr base
                    let staged = tempfile::Builder::new()
                        .prefix(".add-")
                        .tempdir_in(&self.cache_dir)
                        .map_err(EngineError::io("creating a staging dir", &self.cache_dir))?;
                    extract_layer(
                        decompress(std::io::BufReader::new(f), c)?,
                        staged.path(),
                        &opts,
                    )?;
                    w.merge_into(staged.path(), &dir)?;
                    continue;
                }
                w.put(&it.host, &t, false)?;
            }
        }
        for (_, file, name) in &downloads {
            let t = if dest_is_dir {
                join_abs(&dest_abs, name)
            } else {
                dest_abs.clone()
            };
            w.put(file, &t, true)?;
        }
        for (i, (name, content)) in inline.iter().enumerate() {
            let f = private.path().join(format!("inline-{i}"));
            fs::write(&f, content).map_err(EngineError::io("writing a heredoc file", &f))?;
            fs::set_permissions(&f, fs::Permissions::from_mode(0o644))
                .map_err(EngineError::io("writing a heredoc file", &f))?;
            let t = if dest_is_dir {
                join_abs(&dest_abs, name)
            } else {
                dest_abs.clone()
            };
            w.put(&f, &t, false)?;
        }
        (self.ev)(crate::Event::StepFinished {
            name: label.to_string(),
            status: 0,
            seconds: t0.elapsed().as_secs_f64(),
            output: String::new(),
        });
        self.note_ran(st, label, t0.elapsed().as_secs_f64());
        self.commit_step(st, key, upper, created_by)
    }
}

/// Writes copied entries into a change dir, mirroring the merged root's directories.
struct Writer<'a> {
    view: &'a fsops::View,
    upper: &'a Path,
    owner: (u32, u32),
    chmod: Option<u32>,
    /// --chown given: new directories get the owner too.
    chown: bool,
    /// COPY --from without --chown: entries keep their source owners (as docker does).
    keep_owner: bool,
    /// Destination dir (absolute) → its real path relative to the root (symlinks resolved).
    resolved: HashMap<String, PathBuf>,
    root: bool,
}

impl Writer<'_> {
    /// The real (symlink-resolved) root-relative path of an absolute dir path.
    fn real(&mut self, abs: &str) -> Result<PathBuf> {
        if let Some(p) = self.resolved.get(abs) {
            return Ok(p.clone());
        }
        if abs.trim_matches('/').is_empty() {
            return Ok(PathBuf::new());
        }
        let rel = self.view.resolve(abs)?;
        self.resolved.insert(abs.to_string(), rel.clone());
        Ok(rel)
    }

    fn parent_real(&mut self, abs: &str) -> Result<(PathBuf, String)> {
        let (parent, name) = match abs.rsplit_once('/') {
            Some((p, n)) => (if p.is_empty() { "/" } else { p }, n),
            None => ("/", abs),
        };
        let p = self.real(parent)?;
        Ok((p, name.to_string()))
    }

    /// Make sure the directory `abs` exists in the change dir (with its parents); `meta`: the
    /// source dir whose mode it takes when created or copied.
    ///
    /// Every component of `abs` is resolved in the stage's root, the last one too: a directory
    /// destination that is a symlink (`/bin -> usr/bin` on a merged-/usr base, a link an
    /// earlier step made) is followed, never replaced by a directory (docker and buildah do the
    /// same; a layer with `bin/` over the base's `bin` symlink hides everything in `/usr/bin`).
    fn ensure_dir(&mut self, abs: &str, meta: Option<&fs::Metadata>) -> Result<()> {
        let rel = self.real(abs)?;
        if rel.as_os_str().is_empty() {
            // the root itself (or a link to it)
            return Ok(());
        }
        let new_owner = if self.chown { self.owner } else { (0, 0) };
        fsops::mirror_parents(self.view, self.upper, &rel.join("x"), new_owner)?;
        let u = self.upper.join(&rel);
        let existing = self.view.lstat(&rel).map(|(_, m)| m).filter(|m| m.is_dir());
        match (meta, existing) {
            (Some(m), _) => {
                let mode = self.chmod.unwrap_or(m.mode() & 0o7777);
                set_meta(&u, mode, self.owner_of(m), self.root)?;
            }
            (None, None) => set_meta(&u, 0o755, new_owner, self.root)?,
            (None, Some(_)) => {}
        }
        Ok(())
    }

    /// Move the entries of the directory `src` (an extracted archive) into the directory
    /// `abs`, each path resolved in the stage's root like [`Self::ensure_dir`] and
    /// [`Self::put`] do: directories are merged (taking the archive's mode and owner), other
    /// entries renamed into place (so hard links stay links, owners and modes stay as
    /// extracted).
    fn merge_into(&mut self, src: &Path, abs: &str) -> Result<()> {
        let mut names: Vec<_> = fs::read_dir(src)
            .map_err(EngineError::io("reading an extracted archive", src))?
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(EngineError::io("reading an extracted archive", src))?;
        names.sort_by_key(|e| e.file_name());
        for e in names {
            let host = e.path();
            let name = e.file_name();
            let child = join_abs(abs, &name.to_string_lossy());
            let meta = fs::symlink_metadata(&host)
                .map_err(EngineError::io("reading an extracted archive", &host))?;
            if meta.is_dir() {
                let rel = self.real(&child)?;
                if rel.as_os_str().is_empty() {
                    self.merge_into(&host, "/")?;
                    continue;
                }
                let new_owner = if self.chown { self.owner } else { (0, 0) };
                fsops::mirror_parents(self.view, self.upper, &rel.join("x"), new_owner)?;
                self.merge_into(&host, &child)?;
                let t = self.upper.join(&rel);
                set_meta(
                    &t,
                    meta.mode() & 0o7777,
                    (meta.uid(), meta.gid()),
                    self.root,
                )?;
                continue;
            }
            let (pr, name) = self.parent_real(&child)?;
            let rel = pr.join(&name);
            let new_owner = if self.chown { self.owner } else { (0, 0) };
            fsops::mirror_parents(self.view, self.upper, &rel, new_owner)?;
            let t = self.upper.join(&rel);
            if let Ok(m) = t.symlink_metadata() {
                if m.is_dir() {
                    let _ = fs::remove_dir_all(&t);
                } else {
                    let _ = fs::remove_file(&t);
                }
            }
            fs::rename(&host, &t).map_err(EngineError::io("moving an extracted entry", &t))?;
        }
        Ok(())
    }

    fn owner_of(&self, m: &fs::Metadata) -> (u32, u32) {
        if self.keep_owner {
            (m.uid(), m.gid())
        } else {
            self.owner
        }
    }

    /// Copy one entry to the absolute path `abs`.
    fn put(&mut self, host: &Path, abs: &str, downloaded: bool) -> Result<()> {
        let meta =
            fs::symlink_metadata(host).map_err(EngineError::io("reading a copy source", host))?;
        if meta.is_dir() {
            return self.ensure_dir(abs, Some(&meta));
        }
        let (pr, name) = self.parent_real(abs)?;
        let rel = pr.join(&name);
        let new_owner = if self.chown { self.owner } else { (0, 0) };
        fsops::mirror_parents(self.view, self.upper, &rel, new_owner)?;
        let t = self.upper.join(&rel);
        if let Ok(m) = t.symlink_metadata() {
            if m.is_dir() {
                let _ = fs::remove_dir_all(&t);
            } else {
                let _ = fs::remove_file(&t);
            }
        }
        if meta.file_type().is_symlink() {
            let target = fs::read_link(host).map_err(EngineError::io("reading a link", host))?;
            std::os::unix::fs::symlink(&target, &t)
                .map_err(EngineError::io("creating a link", &t))?;
            if self.root {
                lchown(
                    &t,
                    Some(self.owner_of(&meta).0),
                    Some(self.owner_of(&meta).1),
                )
                .map_err(EngineError::io("setting an owner", &t))?;
            }
            return Ok(());
        }
        fs::copy(host, &t).map_err(EngineError::io("copying", host))?;
        let mode = self.chmod.unwrap_or(if downloaded {
            0o600
        } else {
            meta.mode() & 0o7777
        });
        set_meta(&t, mode, self.owner_of(&meta), self.root)?;
        if let Ok(mt) = meta.modified()
            && let Ok(f) = fs::File::options().write(true).open(&t)
        {
            let _ = f.set_modified(mt);
        }
        Ok(())
    }
}

fn set_meta(p: &Path, mode: u32, owner: (u32, u32), root: bool) -> Result<()> {
    if root {
        lchown(p, Some(owner.0), Some(owner.1)).map_err(EngineError::io("setting an owner", p))?;
    }
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
        .map_err(EngineError::io("setting a mode", p))
}

/// Download `url` into `dir`, checking `--checksum` when given; returns the file and the name
/// it gets in a destination directory.
fn download(
    url: &str,
    checksum: Option<&str>,
    dir: &Path,
    n: usize,
    loc: &str,
) -> Result<(PathBuf, String)> {
    let shown = redact_url(url);
    let bad = |detail: String| EngineError::Invalid {
        what: format!("{loc}: ADD {shown}"),
        detail,
    };
    let client = reqwest::blocking::Client::builder()
        .build()
        .map_err(|e| bad(format!("starting an HTTP client: {e}")))?;
    let mut resp = client.get(url).send().map_err(|e| {
        bad(format!(
            "{e}; check the URL, the network and the proxy settings"
        ))
    })?;
    if !resp.status().is_success() {
        return Err(bad(format!("the server answered {}", resp.status())));
    }
    let file = dir.join(format!("download-{n}"));
    let mut f = fs::File::create(&file).map_err(EngineError::io("writing a download", &file))?;
    std::io::copy(&mut resp, &mut f).map_err(|e| bad(format!("downloading: {e}")))?;
    if let Some(c) = checksum {
        let want = c.strip_prefix("sha256:").ok_or_else(|| {
            bad(format!(
                "--checksum={c}: only sha256:<hex> checksums are supported"
            ))
        })?;
        let got = sha256_file(&file).map_err(EngineError::io("hashing a download", &file))?;
        if !got.eq_ignore_ascii_case(want) {
            return Err(bad(format!(
                "the download's checksum is sha256:{got}, not {c} as --checksum requires; the file changed or the URL is wrong"
            )));
        }
    }
    let name = url
        .split(['?', '#'])
        .next()
        .and_then(|u| u.rsplit('/').next())
        .filter(|s| !s.is_empty())
        .unwrap_or("index.html")
        .to_string();
    Ok((file, name))
}

/// A URL without credentials, for messages.
fn redact_url(u: &str) -> String {
    match (u.find("://"), u.find('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &u[..s], &u[at + 1..]),
        _ => u.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn escaped_wildcards_make_a_literal_source() {
        for glob in [
            "*.txt",
            "a?c",
            "data[1].txt",
            "data[[]1].txt",
            "dir/*/f",
            "a\\\\[b]",
        ] {
            assert!(has_glob(glob), "{glob}");
        }
        // Docker and BuildKit: an escaped `[` (or `*`, `?`) is no wildcard, the source is
        // a literal path
        for literal in [
            "data\\[1\\].txt",
            "a\\*b",
            "what\\?",
            "plain/path.txt",
            "trailing\\",
        ] {
            assert!(!has_glob(literal), "{literal}");
        }
    }

    /// Every path of a change dir, with `d`/`f`/`l` for its type.
    fn listing_of(upper: &Path) -> Vec<String> {
        let mut v: Vec<String> = walkdir::WalkDir::new(upper)
            .min_depth(1)
            .into_iter()
            .map(|e| {
                let e = e.unwrap();
                let t = if e.file_type().is_dir() {
                    "d"
                } else if e.file_type().is_symlink() {
                    "l"
                } else {
                    "f"
                };
                format!(
                    "{t} {}",
                    e.path().strip_prefix(upper).unwrap().to_string_lossy()
                )
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn copies_into_symlinked_dirs_land_at_the_link_target() {
        let t = tempfile::tempdir().unwrap();
        let base = t.path().join("base");
        fs::create_dir_all(base.join("usr/bin")).unwrap();
        fs::create_dir_all(base.join("usr/lib")).unwrap();
        std::os::unix::fs::symlink("usr/bin", base.join("bin")).unwrap();
        std::os::unix::fs::symlink("/usr/lib", base.join("lib")).unwrap();
        std::os::unix::fs::symlink("../../../lib", base.join("up")).unwrap();
        std::os::unix::fs::symlink("busybox", base.join("usr/bin/sh")).unwrap();
        let src = t.path().join("src");
        fs::create_dir_all(src.join("tree/bin")).unwrap();
        fs::write(src.join("app"), "app").unwrap();
        fs::write(src.join("tree/bin/tool"), "tool").unwrap();
        // an archive holding bin/x and lib/sub/y, extracted at /
        let staged = t.path().join("staged");
        fs::create_dir_all(staged.join("bin")).unwrap();
        fs::create_dir_all(staged.join("lib/sub")).unwrap();
        fs::write(staged.join("bin/x"), "x").unwrap();
        fs::write(staged.join("lib/sub/y"), "y").unwrap();
        fs::hard_link(staged.join("bin/x"), staged.join("lib/sub/x-link")).unwrap();
        let upper = t.path().join("upper");
        fs::create_dir_all(&upper).unwrap();
        let view = fsops::View {
            layers: vec![base.clone()],
        };
        let mut w = Writer {
            view: &view,
            upper: &upper,
            owner: (0, 0),
            chmod: None,
            chown: false,
            keep_owner: false,
            resolved: HashMap::new(),
            root: false,
        };
        // COPY app /bin/
        w.ensure_dir("/bin", None).unwrap();
        w.put(&src.join("app"), "/bin/app", false).unwrap();
        // COPY tree/ / (a directory named like a symlinked one)
        let tree_bin = fs::symlink_metadata(src.join("tree/bin")).unwrap();
        w.ensure_dir("/bin", Some(&tree_bin)).unwrap();
        w.put(&src.join("tree/bin/tool"), "/bin/tool", false)
            .unwrap();
        // WORKDIR-like and escaping destinations
        w.ensure_dir("/up/deep", None).unwrap();
        // COPY app /bin/sh: a file onto a symlink replaces the link
        w.put(&src.join("app"), "/bin/sh", false).unwrap();
        // ADD archive.tar /
        w.merge_into(&staged, "/").unwrap();
        assert_eq!(
            listing_of(&upper),
            [
                "d usr",
                "d usr/bin",
                "d usr/lib",
                "d usr/lib/deep",
                "d usr/lib/sub",
                "f usr/bin/app",
                "f usr/bin/sh",
                "f usr/bin/tool",
                "f usr/bin/x",
                "f usr/lib/sub/x-link",
                "f usr/lib/sub/y",
            ]
        );
        let (a, b) = (
            fs::metadata(upper.join("usr/bin/x")).unwrap(),
            fs::metadata(upper.join("usr/lib/sub/x-link")).unwrap(),
        );
        assert_eq!(a.ino(), b.ino(), "hard links in an archive stay links");
        // a loop is a clear error
        std::os::unix::fs::symlink("loop", base.join("loop")).unwrap();
        let e = w.ensure_dir("/loop/x", None).unwrap_err().to_string();
        assert!(e.contains("/loop/x") && e.contains("loop"), "{e}");
    }

    #[test]
    fn chown_and_chmod() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(t.path().join("etc")).unwrap();
        fs::write(
            t.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/app:/bin/sh\n",
        )
        .unwrap();
        fs::write(t.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        let v = fsops::View {
            layers: vec![t.path().to_path_buf()],
        };
        assert_eq!(parse_chown("10", None, "f").unwrap(), (10, 10));
        assert_eq!(parse_chown("10:20", None, "f").unwrap(), (10, 20));
        assert_eq!(parse_chown("app", Some(&v), "f").unwrap(), (1000, 1001));
        assert_eq!(parse_chown("app:staff", Some(&v), "f").unwrap(), (1000, 50));
        assert!(
            parse_chown("nobody", Some(&v), "f")
                .unwrap_err()
                .to_string()
                .contains("/etc/passwd")
        );
        assert_eq!(parse_chmod("755", "f").unwrap(), 0o755);
        assert!(parse_chmod("u+x", "f").is_err());
        assert_eq!(redact_url("https://u:p@h/x"), "https://***@h/x");
    }

    /// COPY sources with wildcards follow Go's `filepath.Match` as BuildKit's do: `?` and a
    /// class take one character, not one byte (globset's byte regex missed `ü-ñ.txt` for
    /// `ü-?.txt` and `é` for `[é]`); `[!x]` is the class of `!` and `x`; braces are literal.
    #[test]
    fn wildcard_sources_match_characters_as_go_does() {
        use crate::df::tests::{NoRegistry, notes, options};
        use ocibuild_oci::store::ContentStore;
        let t = tempfile::tempdir().unwrap();
        let ctx = t.path().join("ctx");
        fs::create_dir_all(ctx.join("dir")).unwrap();
        for name in [
            "ü-ñ.txt",
            "ü-ab.txt",
            "dir/é",
            "dir/ee",
            "!.md",
            "y.md",
            "x{a,b}",
            "xa",
        ] {
            fs::write(ctx.join(name), name).unwrap();
        }
        let text = "FROM scratch\nCOPY ü-?.txt dir/[é] [!x].md *{a,b} /out/\n";
        fs::write(ctx.join("Dockerfile"), text).unwrap();
        let store = ContentStore::open(t.path().join("store")).unwrap();
        let r = NoRegistry;
        let (built, _) = notes(text, &options(&store, &ctx, &r));
        let root = crate::df::extract_rootfs(&store, &built.image).unwrap();
        let mut got: Vec<String> = fs::read_dir(root.join("out"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        got.sort();
        assert_eq!(got, ["!.md", "x{a,b}", "é", "ü-ñ.txt"]);
        // a malformed pattern is a clear error naming it
        let bad = "FROM scratch\nCOPY dir/[a- /out/\n";
        let e = crate::df::build(bad, &options(&store, &ctx, &r), &|_| {})
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("dir/[a-"), "{e}");
    }

    /// `COPY --parents` of a named directory keeps its path from the pivot on, from the
    /// context and from an earlier stage alike (BuildKit): `--from=b --parents /src/./apps/api
    /// /app/` gives `/app/apps/api/…`. From a stage the directory's contents landed at `/app/`
    /// and the pivot filter then dropped them, leaving nothing.
    #[test]
    fn parents_keeps_a_named_directorys_path_from_a_stage_and_the_context() {
        use crate::df::tests::{NoRegistry, notes, options};
        use ocibuild_oci::store::ContentStore;
        let t = tempfile::tempdir().unwrap();
        let ctx = t.path().join("ctx");
        fs::create_dir_all(ctx.join("apps/api/src")).unwrap();
        fs::create_dir_all(ctx.join("apps/web")).unwrap();
        fs::write(ctx.join("apps/api/src/main.js"), "api").unwrap();
        fs::write(ctx.join("apps/api/package.json"), "{}").unwrap();
        fs::write(ctx.join("apps/web/index.js"), "web").unwrap();
        let text = "FROM scratch AS b
COPY . /src/
                    FROM scratch
                    COPY --from=b --parents /src/./apps/api /app/
                    COPY --from=b --parents /src/apps/api /whole/
                    COPY --parents ./apps/api /ctx/
";
        fs::write(ctx.join("Dockerfile"), text).unwrap();
        let store = ContentStore::open(t.path().join("store")).unwrap();
        let r = NoRegistry;
        let (built, _) = notes(text, &options(&store, &ctx, &r));
        let root = crate::df::extract_rootfs(&store, &built.image).unwrap();
        for p in [
            "app/apps/api/src/main.js",
            "app/apps/api/package.json",
            "whole/src/apps/api/src/main.js",
            "ctx/apps/api/package.json",
        ] {
            assert!(root.join(p).is_file(), "{p} missing");
        }
        for p in [
            "app/src",
            "app/package.json",
            "app/apps/web",
            "ctx/apps/web",
        ] {
            assert!(!root.join(p).exists(), "{p} copied");
        }
    }

    /// The real-world corpus's copy shapes, cheap (`dockerfile::realworld_…` builds them
    /// against buildah): a one-match wildcard onto a file name copies the file (Spring Boot's
    /// `COPY target/*.jar app.jar`); a directory holding one file is copied into the
    /// destination directory (`COPY vendor ./vendor`); `--exclude` matches below each copied
    /// directory (`--exclude=*.md docs/` leaves out `docs/README.md`).
    #[test]
    fn one_match_wildcards_one_file_directories_and_excludes_copy_as_buildkit_does() {
        use crate::df::tests::{NoRegistry, notes, options};
        use ocibuild_oci::store::ContentStore;
        let t = tempfile::tempdir().unwrap();
        let ctx = t.path().join("ctx");
        fs::create_dir_all(ctx.join("target")).unwrap();
        fs::create_dir_all(ctx.join("vendor")).unwrap();
        fs::create_dir_all(ctx.join("docs/deep")).unwrap();
        fs::write(ctx.join("target/app-1.0.jar"), "jar").unwrap();
        fs::write(ctx.join("target/app-1.0.pom"), "pom").unwrap();
        fs::write(ctx.join("vendor/lib.js"), "lib").unwrap();
        fs::write(ctx.join("docs/README.md"), "readme").unwrap();
        fs::write(ctx.join("docs/deep/NOTES.md"), "notes").unwrap();
        fs::write(ctx.join("docs/guide.txt"), "guide").unwrap();
        let text = "FROM scratch
WORKDIR /w
COPY target/*.jar app.jar
COPY vendor ./vendor
COPY --exclude=*.md docs/ /docs/
";
        fs::write(ctx.join("Dockerfile"), text).unwrap();
        let store = ContentStore::open(t.path().join("store")).unwrap();
        let r = NoRegistry;
        let (built, _) = notes(text, &options(&store, &ctx, &r));
        let root = crate::df::extract_rootfs(&store, &built.image).unwrap();
        assert_eq!(fs::read_to_string(root.join("w/app.jar")).unwrap(), "jar");
        assert_eq!(
            fs::read_to_string(root.join("w/vendor/lib.js")).unwrap(),
            "lib"
        );
        assert!(root.join("docs/guide.txt").is_file());
        assert!(
            !root.join("docs/README.md").exists(),
            "docs/README.md copied"
        );
    }
}
