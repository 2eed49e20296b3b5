//! The sandbox's error type: what failed, where, and what to do about it.

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A namespace/mount/… operation the host refused, with the exact fix.
    #[error("{what} failed: {cause}{}", fix.as_ref().map(|f| format!(" — fix: {f}")).unwrap_or_default())]
    Refused {
        what: String,
        cause: String,
        fix: Option<String>,
    },

    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },

    #[error("invalid sandbox spec: {0}")]
    Spec(String),

    #[error("the step ran longer than {secs} s and was killed (with every process it started)")]
    Timeout { secs: u64 },

    #[error("the step was cancelled")]
    Cancelled,

    #[error("isolation tier `{tier}` is not available here: {why}")]
    TierUnavailable { tier: String, why: String },

    #[error("sandbox helper: {0}")]
    Helper(String),
}

impl SandboxError {
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SandboxError {
        let what = what.into();
        move |source| SandboxError::Io { what, source }
    }
}

pub type Result<T, E = SandboxError> = std::result::Result<T, E>;
