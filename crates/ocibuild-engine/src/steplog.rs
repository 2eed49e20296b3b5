//! The full output of build steps, kept under the store (`ROOT/logs/<build>/<NN>-<step>.log`),
//! and what a failure shows of it: the lines that look like the first error (the cause is often
//! far above the last lines: node-gyp's "could not find Python", a compiler error) besides the
//! tail, and the path of the whole log. `ocibuild cache prune` removes old logs with the cache
//! (the `logs` kind of [`crate::storeusage`]).

use std::fs;
use std::path::{Path, PathBuf};

use ocibuild_oci::store::ContentStore;

use crate::error::EngineError;

/// Lines of the tail a failure shows.
pub const TAIL_LINES: usize = 30;
/// At most this many "first error" lines are shown.
pub const ERROR_LINES: usize = 8;
/// A shown line is cut at this many characters.
const MAX_LINE: usize = 400;

/// The directory of the step logs of one build.
pub fn dir(store: &ContentStore, build: &str) -> PathBuf {
    store.root().join("logs").join(sanitize(build))
}

fn sanitize(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let out = out.trim_start_matches('.').to_string();
    let mut out: String = out.chars().take(80).collect();
    if out.is_empty() {
        out.push_str("step");
    }
    out
}

/// Write one step's whole output to `dir/<index>-<step>.log` (temp file + rename). Returns the
/// path, or `None` when the log could not be written (a full disk must not hide the step's own
/// failure).
pub fn save(dir: &Path, index: usize, step: &str, text: &str) -> Option<PathBuf> {
    fs::create_dir_all(dir).ok()?;
    let path = dir.join(format!("{index:02}-{}.log", sanitize(step)));
    crate::roots::write_atomically(&path, text.as_bytes()).ok()?;
    Some(path)
}

fn looks_like_error(line: &str) -> bool {
    let l = line.to_ascii_lowercase();
    if l.contains("err!") || l.contains("fatal") || l.contains("traceback (most recent") {
        return true;
    }
    // "error" as a word (error:, Error:, npm error, gyp ERR!, TypeError …), not "0 errors" or
    // "-Werror" / "stderr" inside another word.
    let b = l.as_bytes();
    let mut from = 0;
    while let Some(i) = l[from..].find("error") {
        let at = from + i;
        let before = at.checked_sub(1).map(|j| b[j]);
        let after = b.get(at + 5).copied();
        let word_start = before.is_none_or(|c| !c.is_ascii_alphabetic())
            || l[..at].ends_with("type")
            || l[..at].ends_with("syntax")
            || l[..at].ends_with("reference")
            || l[..at].ends_with("range");
        let word_end = after.is_none_or(|c| !c.is_ascii_alphabetic());
        if word_start && word_end && !l[..at].trim_end().ends_with(" 0") {
            return true;
        }
        from = at + 5;
    }
    false
}

/// The first lines that look like an error (`error`, `ERR!`, `fatal`), with the line after each
/// (compilers put the cause there), when they are above the tail a failure shows anyway.
pub fn first_errors(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let tail_start = lines.len().saturating_sub(TAIL_LINES);
    let mut out: Vec<String> = Vec::new();
    let mut last: Option<usize> = None;
    for (i, l) in lines.iter().enumerate().take(tail_start) {
        if out.len() >= ERROR_LINES {
            break;
        }
        if looks_like_error(l) {
            if last.is_some_and(|p| p + 1 < i) {
                out.push("…".into());
            }
            out.push(cut(l));
            last = Some(i);
        }
    }
    out
}

fn cut(l: &str) -> String {
    if l.chars().count() > MAX_LINE {
        let mut s: String = l.chars().take(MAX_LINE).collect();
        s.push('…');
        s
    } else {
        l.to_string()
    }
}

/// The error of a failed step: the first error lines, the tail and the log's path.
pub fn failed(
    step: String,
    argv: String,
    status: i32,
    text: &str,
    log: Option<&Path>,
    hint: String,
) -> EngineError {
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(TAIL_LINES)..]
        .iter()
        .map(|l| cut(l))
        .collect::<Vec<_>>()
        .join("\n");
    let errors = first_errors(text);
    let mut output = String::new();
    if !errors.is_empty() {
        output.push_str("--- first lines that look like errors ---\n");
        output.push_str(&errors.join("\n"));
        output.push('\n');
    }
    output.push_str("--- last output ---\n");
    output.push_str(&tail);
    if let Some(p) = log {
        output.push_str(&format!("\nfull output: {}", p.display()));
    }
    EngineError::StepFailed {
        step,
        argv,
        status,
        output,
        hint,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn error_lines() {
        for yes in [
            "gyp ERR! find Python",
            "npm error code 1",
            "src/addon.c:3:10: fatal error: missing.h: No such file or directory",
            "error: linker `cc` not found",
            "TypeError: x is not a function",
            "make: *** [Makefile:12] Error 1",
            "FATAL: bad",
        ] {
            assert!(looks_like_error(yes), "{yes}");
        }
        for no in [
            "compiling with -Werror=format",
            "found 0 errors",
            "writing to stderr",
            "added 3 packages",
            "errorless",
        ] {
            assert!(!looks_like_error(no), "{no}");
        }
    }

    #[test]
    fn first_errors_above_the_tail() {
        let mut text = String::from("start\ngyp ERR! find Python\ngyp ERR! stack x\nok\n");
        for i in 0..40 {
            text.push_str(&format!("line {i}\n"));
        }
        text.push_str("npm error code 1\n");
        let e = first_errors(&text);
        assert_eq!(e, ["gyp ERR! find Python", "gyp ERR! stack x"]);
        // errors already in the tail are not repeated
        assert!(first_errors("a\nerror: b\n").is_empty());
        let err = failed(
            "s".into(),
            "npm ci".into(),
            1,
            &text,
            Some(Path::new("/r/logs/b/01-s.log")),
            "h".into(),
        )
        .to_string();
        assert!(err.contains("gyp ERR! find Python"), "{err}");
        assert!(err.contains("full output: /r/logs/b/01-s.log"), "{err}");
        assert!(err.contains("line 39"), "{err}");
        assert!(!err.contains("line 5\n"), "{err}");
    }

    #[test]
    fn logs_are_saved_under_the_store() {
        let t = tempfile::tempdir().unwrap();
        let store = ContentStore::open(t.path()).unwrap();
        let d = dir(&store, "abc/../x");
        assert!(d.starts_with(t.path().join("logs")));
        let p = save(&d, 3, "npm ci (prod)", "hello\n").unwrap();
        assert_eq!(p.file_name().unwrap(), "03-npm_ci__prod_.log");
        assert_eq!(fs::read_to_string(&p).unwrap(), "hello\n");
    }
}
