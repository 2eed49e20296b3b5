//! `.dockerignore` with Docker's semantics (moby's `patternmatcher`):
//!
//! - one pattern a line; lines starting with `#` are comments; blank lines are skipped; spaces
//!   around a pattern are trimmed;
//! - patterns are anchored at the context root (`*.md` matches `x.md`, not `sub/x.md`); a
//!   leading `/` and `./` are ignored and the pattern is cleaned (`a//b/../c` → `a/c`);
//! - `*` and `?` never match `/`; `**` matches any number of directories (`**/*.md` matches
//!   `x.md` and `a/b/x.md`); `[…]` classes (`[^…]` negated); `\` escapes the next character;
//! - a path is matched when it or one of its parent directories matches;
//! - `!pattern` re-includes; the last pattern that matches decides.

use std::path::Path;

use crate::error::{BuildersError, Result};

/// The file name.
pub const DOCKERIGNORE: &str = ".dockerignore";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(char),
    /// `*`: any run of characters but `/`.
    Star,
    /// `**` followed by more pattern: `(.*/)?`.
    AnyDirs,
    /// `**` at the end: `.*`.
    AnyAll,
    /// `?`: one character but `/`.
    One,
    /// `[…]`.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

#[derive(Debug, Clone)]
struct Rule {
    text: String,
    negated: bool,
    toks: Vec<Tok>,
}

/// A parsed `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    rules: Vec<Rule>,
}

impl DockerIgnore {
    /// Parse the text of a `.dockerignore`; `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<DockerIgnore> {
        let mut rules = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = if n == 0 {
                line.trim_start_matches('\u{feff}')
            } else {
                line
            };
            if line.starts_with('#') {
                continue;
            }
            let mut pat = line.trim();
            let mut negated = false;
            if let Some(rest) = pat.strip_prefix('!') {
                negated = true;
                pat = rest.trim();
            }
            if pat.is_empty() {
                continue;
            }
            let cleaned = clean(pat);
            let toks = tokenize(&cleaned).map_err(|detail| BuildersError::Parse {
                path: origin.to_path_buf(),
                line: Some(n + 1),
                detail: format!("pattern {pat:?}: {detail}"),
                hint: "fix or remove the pattern".into(),
            })?;
            rules.push(Rule {
                text: line.trim().to_string(),
                negated,
                toks,
            });
        }
        Ok(DockerIgnore { rules })
    }

    /// Read `dir/.dockerignore`; `None` when there is none.
    pub fn load(dir: &Path) -> Result<Option<DockerIgnore>> {
        let path = dir.join(DOCKERIGNORE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(DockerIgnore::parse(&text, &path)?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(BuildersError::io(&path)(e)),
        }
    }

    /// The patterns, as written (negated ones with their `!`).
    pub fn patterns(&self) -> Vec<String> {
        self.rules.iter().map(|r| r.text.clone()).collect()
    }

    /// Whether any pattern re-includes (`!…`): then an excluded directory may still hold
    /// included paths.
    pub fn has_negations(&self) -> bool {
        self.rules.iter().any(|r| r.negated)
    }

    /// Whether `rel_path` (relative to the context root, `/`-separated) is excluded.
    pub fn is_excluded(&self, rel_path: &str) -> bool {
        let path = clean(rel_path);
        if path.is_empty() || path == "." {
            return false;
        }
        let chars: Vec<char> = path.chars().collect();
        // The path itself, then each parent directory (moby's MatchesOrParentMatches).
        let parent_ends: Vec<usize> = chars
            .iter()
            .enumerate()
            .filter(|(_, c)| **c == '/')
            .map(|(i, _)| i)
            .collect();
        let mut excluded = false;
        for r in &self.rules {
            let hit = match_toks(&r.toks, &chars)
                || parent_ends
                    .iter()
                    .any(|&e| match_toks(&r.toks, &chars[..e]));
            if hit {
                excluded = !r.negated;
            }
        }
        excluded
    }
}

/// Go's `filepath.Clean` on a relative, `/`-separated path, with leading `/` removed.
fn clean(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for comp in p.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else {
                    out.push("..");
                }
            }
            c => out.push(c),
        }
    }
    if out.is_empty() {
        ".".into()
    } else {
        out.join("/")
    }
}

fn tokenize(p: &str) -> std::result::Result<Vec<Tok>, String> {
    let chars: Vec<char> = p.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => {
                if chars.get(i + 1) == Some(&'*') {
                    i += 2;
                    if chars.get(i) == Some(&'/') {
                        i += 1;
                    }
                    if i >= chars.len() {
                        toks.push(Tok::AnyAll);
                    } else {
                        toks.push(Tok::AnyDirs);
                    }
                    continue;
                }
                toks.push(Tok::Star);
            }
            '?' => toks.push(Tok::One),
            '\\' => {
                i += 1;
                let c = chars
                    .get(i)
                    .ok_or_else(|| "ends with a lone \\".to_string())?;
                toks.push(Tok::Lit(*c));
            }
            '[' => {
                let mut j = i + 1;
                let mut negated = false;
                if chars.get(j) == Some(&'^') {
                    negated = true;
                    j += 1;
                }
                let mut ranges = Vec::new();
                let mut first = true;
                loop {
                    let Some(&c) = chars.get(j) else {
                        return Err("unclosed [ character class".into());
                    };
                    if c == ']' && !first {
                        break;
                    }
                    first = false;
                    let lo = if c == '\\' {
                        j += 1;
                        *chars
                            .get(j)
                            .ok_or_else(|| "unclosed [ character class".to_string())?
                    } else {
                        c
                    };
                    if chars.get(j + 1) == Some(&'-') && chars.get(j + 2).is_some_and(|c| *c != ']')
                    {
                        let hi = chars[j + 2];
                        if hi < lo {
                            return Err(format!("bad range {lo}-{hi} in character class"));
                        }
                        ranges.push((lo, hi));
                        j += 3;
                    } else {
                        ranges.push((lo, lo));
                        j += 1;
                    }
                }
                toks.push(Tok::Class { negated, ranges });
                i = j;
            }
            c => toks.push(Tok::Lit(c)),
        }
        i += 1;
    }
    Ok(toks)
}

fn match_toks(toks: &[Tok], s: &[char]) -> bool {
    let Some((first, rest)) = toks.split_first() else {
        return s.is_empty();
    };
    match first {
        Tok::Lit(c) => s.first() == Some(c) && match_toks(rest, &s[1..]),
        Tok::One => s.first().is_some_and(|c| *c != '/') && match_toks(rest, &s[1..]),
        Tok::Class { negated, ranges } => {
            s.first().is_some_and(|c| {
                *c != '/' && (ranges.iter().any(|(lo, hi)| lo <= c && c <= hi) != *negated)
            }) && match_toks(rest, &s[1..])
        }
        Tok::Star => {
            // Try every run of non-`/` characters, shortest first.
            for n in 0..=s.len() {
                if match_toks(rest, &s[n..]) {
                    return true;
                }
                if n < s.len() && s[n] == '/' {
                    break;
                }
            }
            false
        }
        Tok::AnyAll => true,
        Tok::AnyDirs => {
            // Nothing, or any prefix ending with `/`.
            if match_toks(rest, s) {
                return true;
            }
            (0..s.len()).any(|i| s[i] == '/' && match_toks(rest, &s[i + 1..]))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn di(text: &str) -> DockerIgnore {
        DockerIgnore::parse(text, Path::new(".dockerignore")).unwrap()
    }

    #[test]
    fn anchored_at_root() {
        let d = di("*.md\n");
        assert!(d.is_excluded("NOTES.md"));
        assert!(!d.is_excluded("sub/x.md"));
        assert!(!d.is_excluded("x.mdx"));
    }

    #[test]
    fn double_star() {
        let d = di("**/*.md");
        assert!(d.is_excluded("x.md"));
        assert!(d.is_excluded("sub/x.md"));
        assert!(d.is_excluded("a/b/c/x.md"));
        assert!(!d.is_excluded("a/b/c/x.txt"));
        let d = di("docs/**");
        assert!(d.is_excluded("docs/a/b"));
        assert!(!d.is_excluded("docsx"));
        let d = di("a/**/b");
        assert!(d.is_excluded("a/b"));
        assert!(d.is_excluded("a/x/y/b"));
        assert!(!d.is_excluded("a/xb"));
        let d = di("**");
        assert!(d.is_excluded("anything/at/all"));
    }

    #[test]
    fn negation_and_last_match_wins() {
        let d = di("*.md\n!README.md\n");
        assert!(d.is_excluded("NOTES.md"));
        assert!(!d.is_excluded("README.md"));
        let d = di("!README.md\n*.md\n");
        assert!(d.is_excluded("README.md"), "the later *.md wins");
        assert!(d.has_negations());
        let d = di("docs\n!docs/keep.txt\n");
        assert!(d.is_excluded("docs/a.txt"));
        assert!(!d.is_excluded("docs/keep.txt"));
    }

    #[test]
    fn parent_directory_match_excludes_contents() {
        let d = di("build\n/tmp/\n./cache\n");
        assert!(d.is_excluded("build"));
        assert!(d.is_excluded("build/x/y.o"));
        assert!(d.is_excluded("tmp/a"));
        assert!(d.is_excluded("cache/a"));
        assert!(!d.is_excluded("src/build"));
        assert!(!d.has_negations());
    }

    #[test]
    fn comments_blank_lines_classes_escapes() {
        let d = di("# comment\n\n  *.lo[gk]  \nfile\\*\n[^a]x\n");
        assert_eq!(d.patterns(), vec!["*.lo[gk]", "file\\*", "[^a]x"]);
        assert!(d.is_excluded("a.log"));
        assert!(d.is_excluded("a.lok"));
        assert!(!d.is_excluded("a.lox"));
        assert!(d.is_excluded("file*"));
        assert!(!d.is_excluded("filex"));
        assert!(d.is_excluded("bx"));
        assert!(!d.is_excluded("ax"));
        assert!(!d.is_excluded("# comment"));
    }

    #[test]
    fn question_mark_and_star_stop_at_slash() {
        let d = di("a?c\nsrc/*.js");
        assert!(d.is_excluded("abc"));
        assert!(!d.is_excluded("a/c"));
        assert!(d.is_excluded("src/x.js"));
        assert!(!d.is_excluded("src/sub/x.js"));
    }

    #[test]
    fn cleaning() {
        assert_eq!(clean("a//b/../c/"), "a/c");
        assert_eq!(clean("/x"), "x");
        assert_eq!(clean("./"), ".");
        let d = di("a/../b");
        assert!(d.is_excluded("b"));
    }

    #[test]
    fn bad_pattern_names_line() {
        let err = DockerIgnore::parse("ok\n[abc\n", Path::new("/app/.dockerignore")).unwrap_err();
        assert!(err.to_string().contains("/app/.dockerignore:2"), "{err}");
    }
}
