//! The registry client's error type. Every variant names the registry, repository and operation,
//! and says what to do next. Secrets never appear here: messages are built from hosts, repository
//! names, digests and status codes only.

use crate::auth::AuthError;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// An HTTP status the operation cannot continue from, with the registry's error envelope.
    #[error("{status} from {registry} {operation} {repository}: {message}{}", hint.as_ref().map(|h| format!(" — {h}")).unwrap_or_default())]
    Status {
        registry: String,
        repository: String,
        operation: String,
        status: u16,
        message: String,
        hint: Option<String>,
    },

    #[error("cannot reach {registry} ({operation}): {detail}{}", hint.as_ref().map(|h| format!(" — {h}")).unwrap_or_default())]
    Transport {
        registry: String,
        operation: String,
        detail: String,
        hint: Option<String>,
    },

    /// `login`: the registry (or its token server) refused the username and password given.
    #[error(
        "the username or password was rejected by {registry} ({detail}) — check them (a token or service-principal secret may have expired); nothing was stored"
    )]
    LoginRejected { registry: String, detail: String },

    #[error(transparent)]
    Auth(#[from] AuthError),

    #[error(transparent)]
    Oci(#[from] ocibuild_oci::OciError),

    #[error("{registry}/{repository}: {what}")]
    Protocol {
        registry: String,
        repository: String,
        what: String,
    },

    #[error("{what}: {detail}")]
    Invalid { what: String, detail: String },

    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;
