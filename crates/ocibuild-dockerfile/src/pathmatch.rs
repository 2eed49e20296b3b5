//! Matching COPY/ADD source patterns the way BuildKit does.
//!
//! A source with wildcards (`COPY src/*.rs /app/`) is matched with Go's `filepath.Match`
//! (BuildKit's copy resolves wildcards with it; buildah's copier too): `*` is any run of
//! characters except `/`, `?` one character (a whole UTF-8 character, not a byte), `[...]` a class
//! negated only by `^`, `\` escapes the next character; `**` is just two `*`, and `{`/`}` are
//! literal. A `--parents` source is an include pattern (BuildKit's `IncludePatterns`, Docker's
//! pattern matcher): the same rules plus `**` for any number of directories.

use globset::GlobBuilder;
use regex::Regex;

use crate::ignore::{char_regex, escape_braces, go_classes};

/// A malformed pattern (Go's `filepath.ErrBadPattern`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPattern {
    /// The pattern as written.
    pub pattern: String,
    /// What is wrong with it.
    pub message: String,
}

impl std::fmt::Display for BadPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "syntax error in pattern {:?}: {}",
            self.pattern, self.message
        )
    }
}

impl std::error::Error for BadPattern {}

/// One COPY/ADD source pattern, matched against `/`-separated paths relative to the source root.
#[derive(Debug, Clone)]
pub enum SourcePattern {
    /// Go's `filepath.Match` (a plain source with wildcards).
    Go(String),
    /// Docker's pattern matcher (a `--parents` source: `**` crosses directories).
    Include(Regex),
}

impl SourcePattern {
    /// Compile `pattern`; `parents` selects the include-pattern rules of `COPY --parents`.
    pub fn new(pattern: &str, parents: bool) -> Result<SourcePattern, BadPattern> {
        let bad = |message: String| BadPattern {
            pattern: pattern.to_string(),
            message,
        };
        if parents {
            let glob = GlobBuilder::new(&escape_braces(&go_classes(pattern)))
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| bad(e.kind().to_string()))?;
            return char_regex(glob.regex())
                .map(SourcePattern::Include)
                .map_err(bad);
        }
        // Go reports a bad pattern only when it reaches the bad part; check it all up front
        go_match(pattern, "").map_err(bad)?;
        Ok(SourcePattern::Go(pattern.to_string()))
    }

    /// Whether `path` (relative, `/`-separated) matches.
    pub fn is_match(&self, path: &str) -> bool {
        match self {
            SourcePattern::Go(p) => go_match(p, path).unwrap_or(false),
            SourcePattern::Include(re) => re.is_match(path),
        }
    }
}

/// Go's `path/filepath.Match` on Unix: whether `name` matches the whole `pattern`. `?` and
/// classes take one character; `*` never crosses `/`. A malformed pattern is an error (also
/// when the name has not reached the bad part, as far as Go checks it). This is Go's
/// algorithm step for step, on bytes as Go's strings are, so its corner cases are Go's too
/// (a `*` may stop inside a character, whose remaining bytes `?` then takes one by one).
pub fn go_match(pattern: &str, name: &str) -> Result<bool, String> {
    let mut pattern = pattern.as_bytes();
    let mut name = name.as_bytes();
    'pattern: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            // a trailing * matches the rest unless it has a /
            return Ok(!name.contains(&b'/'));
        }
        let first = match_chunk(chunk, name);
        if let Ok(Some(t)) = first
            && (t.is_empty() || !pattern.is_empty())
        {
            name = t;
            continue;
        }
        first?;
        if star {
            // a match further on, skipping i+1 bytes (never a /)
            let mut i = 0;
            while i < name.len() && name[i] != b'/' {
                match match_chunk(chunk, &name[i + 1..])? {
                    Some(t) if pattern.is_empty() && !t.is_empty() => {}
                    Some(t) => {
                        name = t;
                        continue 'pattern;
                    }
                    None => {}
                }
                i += 1;
            }
        }
        // no match: the rest of the pattern must still be well formed
        while !pattern.is_empty() {
            let (_, chunk, rest) = scan_chunk(pattern);
            pattern = rest;
            match_chunk(chunk, b"")?;
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

/// Go's `utf8.DecodeRune`: the character and its length, or U+FFFD and 1 for a byte that
/// does not start a valid sequence.
fn decode(s: &[u8]) -> (char, usize) {
    let n = match s.first() {
        None => return (char::REPLACEMENT_CHARACTER, 0),
        Some(&b) if b < 0x80 => return (char::from(b), 1),
        Some(0xc2..=0xdf) => 2,
        Some(0xe0..=0xef) => 3,
        Some(0xf0..=0xf4) => 4,
        Some(_) => return (char::REPLACEMENT_CHARACTER, 1),
    };
    match s.get(..n).and_then(|b| std::str::from_utf8(b).ok()) {
        Some(c) => (c.chars().next().unwrap_or(char::REPLACEMENT_CHARACTER), n),
        None => (char::REPLACEMENT_CHARACTER, 1),
    }
}

/// The leading stars, the chunk up to the next unbracketed `*`, and the rest.
fn scan_chunk(pattern: &[u8]) -> (bool, &[u8], &[u8]) {
    let mut p = pattern;
    let mut star = false;
    while let [b'*', rest @ ..] = p {
        p = rest;
        star = true;
    }
    let mut in_range = false;
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            b'\\' if i + 1 < p.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    (star, &p[..i], &p[i..])
}

/// Match `chunk` (no unbracketed `*`) at the start of `s`: the rest of `s`, or `None`.
fn match_chunk<'a>(chunk: &[u8], s: &'a [u8]) -> Result<Option<&'a [u8]>, String> {
    let mut chunk = chunk;
    let mut s = s;
    let mut failed = false;
    while let Some(&c) = chunk.first() {
        if !failed && s.is_empty() {
            failed = true;
        }
        match c {
            b'[' => {
                let mut r = char::REPLACEMENT_CHARACTER;
                if !failed {
                    let (ch, n) = decode(s);
                    r = ch;
                    s = &s[n..];
                }
                chunk = &chunk[1..];
                let negated = chunk.first() == Some(&b'^');
                if negated {
                    chunk = &chunk[1..];
                }
                let mut matched = false;
                let mut n_range = 0;
                loop {
                    if chunk.first() == Some(&b']') && n_range > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let (lo, rest) = get_esc(chunk)?;
                    chunk = rest;
                    let mut hi = lo;
                    if chunk.first() == Some(&b'-') {
                        let (h, rest) = get_esc(&chunk[1..])?;
                        hi = h;
                        chunk = rest;
                    }
                    if lo <= r && r <= hi {
                        matched = true;
                    }
                    n_range += 1;
                }
                if matched == negated {
                    failed = true;
                }
            }
            b'?' => {
                if !failed {
                    if s[0] == b'/' {
                        failed = true;
                    }
                    let (_, n) = decode(s);
                    s = &s[n..];
                }
                chunk = &chunk[1..];
            }
            _ => {
                if c == b'\\' {
                    chunk = &chunk[1..];
                    if chunk.is_empty() {
                        return Err("a trailing \\ escapes nothing".to_string());
                    }
                }
                if !failed {
                    if chunk[0] != s[0] {
                        failed = true;
                    }
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
        }
    }
    Ok(if failed { None } else { Some(s) })
}

/// One (possibly escaped) character of a class, and the rest of the chunk (Go's `getEsc`).
fn get_esc(chunk: &[u8]) -> Result<(char, &[u8]), String> {
    let unterminated = || "a character class without its closing ]".to_string();
    let mut chunk = chunk;
    match chunk.first() {
        None => return Err(unterminated()),
        Some(b'-') | Some(b']') => {
            return Err("a character class with an empty range or a misplaced - or ]".to_string());
        }
        Some(b'\\') => {
            chunk = &chunk[1..];
            if chunk.is_empty() {
                return Err(unterminated());
            }
        }
        Some(_) => {}
    }
    let (c, n) = decode(chunk);
    if c == char::REPLACEMENT_CHARACTER && n == 1 {
        return Err("not UTF-8 in a character class".to_string());
    }
    let rest = &chunk[n..];
    if rest.is_empty() {
        return Err(unterminated());
    }
    Ok((c, rest))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn m(p: &str, n: &str) -> bool {
        go_match(p, n).unwrap()
    }

    /// Go's own `filepath.Match` table (match_test.go), Unix rows.
    #[test]
    fn go_table() {
        let ok: &[(&str, &str, bool)] = &[
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*", "abc", true),
            ("a*", "ab/c", false),
            ("a*/b", "abc/b", true),
            ("a*/b", "a/c/b", false),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", false),
            ("a*b?c*x", "abxbbxdbxebxczzx", true),
            ("a*b?c*x", "abxbbxdbxebxczzy", false),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^b-d]", "abc", false),
            ("ab[^e-g]", "abc", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a?b", "a☺b", true),
            ("a[^a]b", "a☺b", true),
            ("a???b", "a☺b", false),
            ("a[^a][^a][^a]b", "a☺b", false),
            ("[a-ζ]*", "α", true),
            ("*[a-ζ]", "A", false),
            ("a?b", "a/b", false),
            ("a*b", "a/b", false),
            ("[\\]a]", "]", true),
            ("[\\-]", "-", true),
            ("[x\\-]", "x", true),
            ("[x\\-]", "-", true),
            ("[x\\-]", "z", false),
            ("[\\-x]", "x", true),
            ("[\\-x]", "-", true),
            ("[\\-x]", "a", false),
            ("*x", "xxx", true),
            // Go's byte-wise `*`: it can stop inside ☺ (3 bytes), and `?` takes each rest byte
            ("*??", "☺", true),
            ("??", "☺", false),
        ];
        for (p, n, want) in ok {
            assert_eq!(m(p, n), *want, "Match({p:?}, {n:?})");
        }
        let bad: &[(&str, &str)] = &[
            ("[]a]", "]"),
            ("[-]", "-"),
            ("[x-]", "x"),
            ("[x-]", "-"),
            ("[x-]", "z"),
            ("[-x]", "x"),
            ("[-x]", "-"),
            ("[-x]", "a"),
            ("\\", "a"),
            ("[a-b-c]", "a"),
            ("[", "a"),
            ("[^", "a"),
            ("[^bc", "a"),
            ("a[", "a"),
            ("a[", "ab"),
            ("a[", "x"),
            ("a/b[", "x"),
            ("*x[", "a"),
        ];
        for (p, n) in bad {
            assert!(
                go_match(p, n).is_err(),
                "Match({p:?}, {n:?}) is ErrBadPattern"
            );
        }
    }

    /// The defect: globset's byte regex took one byte for `?` and for a class, so a source
    /// pattern missed names with non-ASCII characters.
    #[test]
    fn question_mark_and_classes_take_one_character() {
        let p = SourcePattern::new("ü-?.txt", false).unwrap();
        assert!(p.is_match("ü-ñ.txt"));
        assert!(!p.is_match("ü-ab.txt"));
        let p = SourcePattern::new("d/[ä-ü]?", false).unwrap();
        assert!(p.is_match("d/öé"));
        assert!(!p.is_match("d/öé/x"));
        let p = SourcePattern::new("a?/**/x/?", true).unwrap();
        assert!(p.is_match("aé/b/c/x/ñ"));
    }

    #[test]
    fn go_rules_not_globsets() {
        // `[!x]` is the class of `!` and `x`; braces are literal; `**` is `*`
        let p = SourcePattern::new("[!x].txt", false).unwrap();
        assert!(p.is_match("!.txt") && p.is_match("x.txt") && !p.is_match("y.txt"));
        let p = SourcePattern::new("*{a,b}", false).unwrap();
        assert!(p.is_match("x{a,b}") && !p.is_match("xa"));
        let p = SourcePattern::new("src/**", false).unwrap();
        assert!(p.is_match("src/a") && !p.is_match("src/a/b"));
        // a --parents source is an include pattern: `**` crosses directories
        let p = SourcePattern::new("src/**/*.go", true).unwrap();
        assert!(p.is_match("src/a/b/m.go"));
        let e = SourcePattern::new("src/[a", false).unwrap_err();
        assert!(e.to_string().contains("src/[a"), "{e}");
    }
}
