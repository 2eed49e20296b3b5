//! One error type: what failed, where (URL, file, package), and what to do.

#[derive(Debug, thiserror::Error)]
pub enum DebianError {
    #[error("{url}: {detail}{}", hint.as_ref().map(|h| format!(" — {h}")).unwrap_or_default())]
    Fetch {
        url: String,
        detail: String,
        hint: Option<String>,
    },

    #[error("{what}: the OpenPGP signature does not verify: {detail}")]
    Signature { what: String, detail: String },

    #[error(
        "{what} does not match the hash its index lists: expected sha256 {expected}, got {actual}"
    )]
    Hash {
        what: String,
        expected: String,
        actual: String,
    },

    #[error("{what}: {detail}")]
    Parse { what: String, detail: String },

    #[error("cannot resolve {package}: {detail}")]
    Unresolvable { package: String, detail: String },

    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{what}: {detail}")]
    Invalid { what: String, detail: String },
}

impl DebianError {
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DebianError {
        let what = what.into();
        move |source| DebianError::Io { what, source }
    }
}

pub type Result<T, E = DebianError> = std::result::Result<T, E>;
