//! `.dockerignore` with Docker's semantics (moby/patternmatcher), not gitignore's.
//!
//! Patterns are anchored at the context root and cleaned like Go's `filepath.Clean` (`./a` → `a`,
//! `/a` → `a`, `a/` → `a`); `*` and `?` never cross `/`; `**` spans any number of directories; a
//! pattern that matches a parent directory excludes everything beneath it; `!` re-includes; the
//! last matching pattern wins; lines starting with `#` are comments.

use std::path::{Path, PathBuf};

use globset::GlobBuilder;
use regex::Regex;

use crate::error::IgnoreError;

#[derive(Debug, Clone)]
struct Pattern {
    /// The cleaned pattern, without `!`.
    text: String,
    negated: bool,
    /// The glob as a Unicode regex: `?`, `*` and classes take whole characters.
    matcher: Regex,
}

/// Parsed `.dockerignore` rules.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
    source: Option<PathBuf>,
}

impl DockerIgnore {
    /// Parses the text of a `.dockerignore` file.
    pub fn parse(text: &str) -> Result<DockerIgnore, IgnoreError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for (n, line) in text.lines().enumerate() {
            // comments only when `#` is the very first character, as Docker's ReadAll
            if line.starts_with('#') {
                continue;
            }
            let mut p = line.trim();
            if p.is_empty() {
                continue;
            }
            let mut negated = p.starts_with('!');
            if negated {
                p = p[1..].trim();
                if p.is_empty() {
                    return Err(IgnoreError::Pattern {
                        line: n + 1,
                        pattern: line.to_string(),
                        message: "illegal exclusion pattern: \"!\"".to_string(),
                    });
                }
            }
            let mut cleaned = clean(p);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
            // Docker reads the file (ignorefile.ReadAll: `/!x` becomes `!x`) before it builds
            // the matcher (patternmatcher.New), which takes a leading `!` as an exception: so
            // `/!x` re-includes `x`, it does not exclude `!x` (write `\!x` for that)
            if !negated && let Some(rest) = cleaned.strip_prefix('!') {
                if rest.is_empty() {
                    return Err(IgnoreError::Pattern {
                        line: n + 1,
                        pattern: line.to_string(),
                        message: "illegal exclusion pattern: \"!\"".to_string(),
                    });
                }
                cleaned = rest.to_string();
                negated = true;
            }
            let glob = GlobBuilder::new(&escape_braces(&go_classes(&cleaned)))
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| IgnoreError::Pattern {
                    line: n + 1,
                    pattern: line.to_string(),
                    message: e.kind().to_string(),
                })?;
            let matcher = char_regex(glob.regex()).map_err(|message| IgnoreError::Pattern {
                line: n + 1,
                pattern: line.to_string(),
                message,
            })?;
            patterns.push(Pattern {
                text: cleaned,
                negated,
                matcher,
            });
        }
        Ok(DockerIgnore {
            patterns,
            source: None,
        })
    }

    /// Loads the ignore file BuildKit uses for this Dockerfile: `<Dockerfile>.dockerignore`
    /// beside the Dockerfile first (`app.Dockerfile.dockerignore`), else
    /// `<context>/.dockerignore`; no rules when neither exists.
    pub fn for_dockerfile(
        context_dir: &Path,
        dockerfile: &Path,
    ) -> Result<DockerIgnore, IgnoreError> {
        let mut candidates = Vec::new();
        if let Some(name) = dockerfile.file_name() {
            let mut n = name.to_os_string();
            n.push(".dockerignore");
            candidates.push(dockerfile.with_file_name(n));
        }
        candidates.push(context_dir.join(".dockerignore"));
        for c in candidates {
            match std::fs::read_to_string(&c) {
                Ok(text) => {
                    let mut ig = DockerIgnore::parse(&text)?;
                    ig.source = Some(c);
                    return Ok(ig);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(IgnoreError::Io { path: c, source: e }),
            }
        }
        Ok(DockerIgnore::default())
    }

    /// Leave `rel_path` (relative to the context, `/`-separated; a file, or a directory with
    /// everything beneath it) out of the context whatever the other rules say: a build's own
    /// outputs (`--output oci:DIR`, `--iidfile`) when they lie inside its context, so the next
    /// identical build does not see them as new files. The path is taken literally.
    pub fn exclude_always(&mut self, rel_path: &str) -> Result<(), IgnoreError> {
        let cleaned = clean(rel_path.trim_start_matches('/'));
        let bad = |message: String| IgnoreError::Pattern {
            line: 0,
            pattern: rel_path.to_string(),
            message,
        };
        if cleaned == "." || cleaned.starts_with("..") {
            return Err(bad("not a path inside the context".to_string()));
        }
        let glob = GlobBuilder::new(&globset::escape(&cleaned))
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| bad(e.kind().to_string()))?;
        let matcher = char_regex(glob.regex()).map_err(bad)?;
        self.patterns.push(Pattern {
            text: cleaned,
            negated: false,
            matcher,
        });
        Ok(())
    }

    /// The file the rules came from (`for_dockerfile`), if any.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// The cleaned patterns, `!` kept, in order (for cache keys and messages).
    pub fn patterns(&self) -> Vec<String> {
        self.patterns
            .iter()
            .map(|p| {
                if p.negated {
                    format!("!{}", p.text)
                } else {
                    p.text.clone()
                }
            })
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether some pattern starts with `!` (then excluded directories must still be walked).
    pub fn has_exclusions(&self) -> bool {
        self.patterns.iter().any(|p| p.negated)
    }

    /// Whether `rel_path` (relative to the context, `/`-separated) is excluded from the
    /// context. Docker has no directory-only patterns, so `is_dir` does not change the answer;
    /// it is taken so callers need not care.
    pub fn matches(&self, rel_path: &str, is_dir: bool) -> bool {
        let _ = is_dir;
        let file = clean(rel_path.trim_start_matches('/'));
        if file == "." || file.is_empty() {
            return false;
        }
        let parents: Vec<&str> = {
            let mut v = Vec::new();
            let mut idx = 0;
            while let Some(pos) = file[idx..].find('/') {
                v.push(&file[..idx + pos]);
                idx += pos + 1;
            }
            v
        };
        let mut matched = false;
        for p in &self.patterns {
            // as patternmatcher: only a pattern that can change the answer is evaluated
            if p.negated != matched {
                continue;
            }
            let hit = p.matcher.is_match(&file) || parents.iter().any(|d| p.matcher.is_match(d));
            if hit {
                matched = !p.negated;
            }
        }
        matched
    }
}

/// globset's regex for a glob, made to match characters instead of bytes, as Go's matcher
/// (Docker's) does: globset compiles to a byte regex (`(?-u)`, each non-ASCII character written
/// as its UTF-8 bytes `\xc3\xb1`), where `?` or `[ñ]` take one byte, so `ü-?` missed `ü-ñ`.
/// The byte escapes of each character become the character again and the regex is compiled
/// in Unicode mode.
pub(crate) fn char_regex(byte_re: &str) -> Result<Regex, String> {
    let re = byte_re.strip_prefix("(?-u)").unwrap_or(byte_re);
    let chars: Vec<char> = re.chars().collect();
    let mut out = String::with_capacity(re.len());
    let mut bytes: Vec<u8> = Vec::new();
    let flush = |bytes: &mut Vec<u8>, out: &mut String| -> Result<(), String> {
        if !bytes.is_empty() {
            let s = std::str::from_utf8(bytes)
                .map_err(|e| format!("not UTF-8 after translation: {e}"))?;
            out.push_str(&regex::escape(s));
            bytes.clear();
        }
        Ok(())
    };
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\\' && i + 1 < chars.len() {
            let hex: String = chars[i + 2..(i + 4).min(chars.len())].iter().collect();
            if chars[i + 1] == 'x'
                && hex.len() == 2
                && let Ok(b) = u8::from_str_radix(&hex, 16)
                && b > 0x7f
            {
                bytes.push(b);
                i += 4;
                continue;
            }
            flush(&mut bytes, &mut out)?;
            out.push(chars[i]);
            out.push(chars[i + 1]);
            i += 2;
            continue;
        }
        flush(&mut bytes, &mut out)?;
        out.push(chars[i]);
        i += 1;
    }
    flush(&mut bytes, &mut out)?;
    Regex::new(&out).map_err(|e| e.to_string())
}

/// Go's `filepath.Match` (Docker's matcher) negates a character class only with `^`: `[!s]` is
/// the class of `!` and `s`. globset reads `[!…]` as a negation too, so the `!` moves to the
/// end of the class (`[s!]`); `[!-x]` (the range from `!`) becomes `["-x!]`, the same set.
pub(crate) fn go_classes(p: &str) -> String {
    let chars: Vec<char> = p.chars().collect();
    let mut out = String::with_capacity(p.len());
    let mut i = 0;
    let mut escaped = false;
    while i < chars.len() {
        let c = chars[i];
        if !escaped && c == '[' && chars.get(i + 1) == Some(&'!') {
            // the closing `]`: not escaped; the `!` already counts as the class's first member
            let mut j = i + 2;
            let mut esc = false;
            let mut close = None;
            while j < chars.len() {
                let d = chars[j];
                if !esc && d == ']' {
                    close = Some(j);
                    break;
                }
                esc = !esc && d == '\\';
                j += 1;
            }
            if let Some(j) = close {
                let inner: String = chars[i + 2..j].iter().collect();
                if inner.is_empty() {
                    out.push_str("\\!");
                } else {
                    out.push('[');
                    match inner.strip_prefix('-') {
                        Some(rest) => {
                            out.push_str("\"-");
                            out.push_str(rest);
                        }
                        None => out.push_str(&inner),
                    }
                    out.push_str("!]");
                }
                i = j + 1;
                escaped = false;
                continue;
            }
        }
        escaped = !escaped && c == '\\';
        out.push(c);
        i += 1;
    }
    out
}

/// Docker treats `{` and `}` literally; globset would read them as alternation.
pub(crate) fn escape_braces(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    let mut escaped = false;
    for c in p.chars() {
        if !escaped && (c == '{' || c == '}') {
            out.push('\\');
        }
        escaped = !escaped && c == '\\';
        out.push(c);
    }
    out
}

/// Go's `path.Clean` (forward slashes).
pub(crate) fn clean(p: &str) -> String {
    if p.is_empty() {
        return ".".to_string();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Every file, directory and symlink of the context that the rules keep, as sorted paths
/// relative to `context` (symlinks are listed, never followed). A directory that is itself
/// excluded is still listed when something beneath it is re-included with `!`, since the
/// entry needs its parent.
pub fn walk_context(context: &Path, ignore: &DockerIgnore) -> Result<Vec<PathBuf>, IgnoreError> {
    let mut out: Vec<PathBuf> = Vec::new();
    let exclusions = ignore.has_exclusions();
    let mut it = walkdir::WalkDir::new(context)
        .follow_links(false)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter();
    while let Some(entry) = it.next() {
        let entry = entry.map_err(|e| {
            let path = e
                .path()
                .map_or_else(|| context.to_path_buf(), Path::to_path_buf);
            IgnoreError::Io {
                path,
                source: e
                    .into_io_error()
                    .unwrap_or_else(|| std::io::Error::other("filesystem loop")),
            }
        })?;
        let rel = entry
            .path()
            .strip_prefix(context)
            .unwrap_or(entry.path())
            .to_path_buf();
        let rel_str = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        let is_dir = entry.file_type().is_dir();
        if ignore.matches(&rel_str, is_dir) {
            if is_dir && !exclusions {
                it.skip_current_dir();
            }
            continue;
        }
        // re-included beneath an excluded directory: list the parents too
        let mut parent = rel.parent();
        while let Some(p) = parent {
            if p.as_os_str().is_empty() {
                break;
            }
            out.push(p.to_path_buf());
            parent = p.parent();
        }
        out.push(rel);
    }
    out.sort();
    out.dedup();
    Ok(out)
}
