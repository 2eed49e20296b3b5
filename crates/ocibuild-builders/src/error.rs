//! One error type: what was wrong, where (file, line when known), and what to do.

use std::path::{Path, PathBuf};

/// Every failure of detection and planning. Each message names the file or directory concerned
/// and ends with what the user can do about it.
#[derive(Debug, thiserror::Error)]
pub enum BuildersError {
    /// No builder matched the directory.
    #[error(
        "{}: no supported app found (looked for {looked_for}) — run ocibuild in the app's directory, \
         or pass --lang go|node|python|java",
        dir.display()
    )]
    NotDetected { dir: PathBuf, looked_for: String },

    /// Several builders matched the directory equally well.
    #[error(
        "{}: several languages match ({matches}) — pass --lang {suggest} (or another of them) to choose",
        dir.display()
    )]
    Ambiguous {
        dir: PathBuf,
        matches: String,
        suggest: String,
    },

    /// A file of the app could not be parsed.
    #[error("{}{}: {detail} — {hint}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Parse {
        path: PathBuf,
        line: Option<usize>,
        detail: String,
        hint: String,
    },

    /// `ocibuild.toml` is invalid (unknown key, wrong type…).
    #[error("{}{}: {detail} — fix ocibuild.toml (keys: entrypoint, cmd, expose, healthcheck, env, labels, main, runtime, packages, user, writable, [build] env)",
        path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Config {
        path: PathBuf,
        line: Option<usize>,
        detail: String,
    },

    /// The app needs something this builder does not do (yet).
    #[error("{}: {what} — {hint}", path.display())]
    Unsupported {
        path: PathBuf,
        what: String,
        hint: String,
    },

    /// The app asks for a toolchain or runtime version the chosen Debian release cannot provide.
    #[error("{}: {detail} — {hint}", path.display())]
    Version {
        path: PathBuf,
        detail: String,
        hint: String,
    },

    /// `--toolchain host`: a host program the build runs is missing, broken or too old.
    #[error("--toolchain host: {detail} — {hint}")]
    HostToolchain { detail: String, hint: String },

    /// The main package/class or the entrypoint could not be chosen.
    #[error("{}: {detail} — {hint}", path.display())]
    Entrypoint {
        path: PathBuf,
        detail: String,
        hint: String,
    },

    /// An option (`--lang`, `--distro`, `--platform`, `--main`…) has a value that cannot work.
    #[error("invalid {option} {value:?}: {detail}")]
    InvalidOption {
        option: String,
        value: String,
        detail: String,
    },

    /// A glob pattern does not parse.
    #[error("invalid glob pattern {pattern:?}: {detail} — fix the pattern (in {origin})")]
    Glob {
        pattern: String,
        origin: String,
        detail: String,
    },

    /// The data embedded from `builders/*.toml` is inconsistent: a bug in ocibuild.
    #[error(
        "builders/{file}: {detail} — this is a bug in ocibuild's builder data; please report it"
    )]
    Data { file: String, detail: String },

    /// Reading a file or directory failed.
    #[error("{}: {source} — check that it exists and is readable", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl BuildersError {
    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BuildersError + '_ {
        move |source| BuildersError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn data(file: &str, detail: impl Into<String>) -> BuildersError {
        BuildersError::Data {
            file: file.to_string(),
            detail: detail.into(),
        }
    }
}

pub type Result<T, E = BuildersError> = std::result::Result<T, E>;

/// The 1-based line of byte offset `pos` in `text`.
pub(crate) fn line_of(text: &str, pos: usize) -> usize {
    text.as_bytes()
        .iter()
        .take(pos.min(text.len()))
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}
