//! The one error type of this crate. Every variant says what was being done, where (the cache's
//! redacted description, a path, a blob or key) and what to do next. Secrets never appear: specs
//! are shown redacted, and the text of errors coming from the Azure client is scrubbed of every
//! secret the backend knows and of SAS signatures before it is stored here.

use std::path::PathBuf;

/// Errors from cache backends. A cache miss is never an error: missing or corrupt entries are
/// `Ok(None)` / [`crate::Fetch::Missing`] / [`crate::Fetch::Corrupt`].
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// A `--cache-to` / `--cache-from` value that cannot be used. `input` is already redacted.
    #[error("invalid cache spec `{input}`: {why}")]
    Spec { input: String, why: String },

    /// A cache key that is not lower-case hex.
    #[error("invalid cache key `{key}`: {why}")]
    InvalidKey { key: String, why: String },

    /// An index object larger than the cache accepts.
    #[error(
        "the index object for key {key} is {size} bytes; at most {max} are allowed — index objects map a key to a few digests, so this is a bug in the caller"
    )]
    IndexTooLarge { key: String, size: u64, max: u64 },

    /// A file operation on a local cache directory.
    #[error("{op} {}: {source} — check that the cache directory exists and is writable by this user", path.display())]
    Local {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The local content store failed (disk full, permissions, …).
    #[error("content store: {0}")]
    Store(#[from] ocibuild_oci::OciError),

    /// A blob of the local content store does not hash to its name: it is refused rather than
    /// exported to a shared cache.
    #[error(
        "blob {digest} in the local content store is corrupt ({why}); it was not uploaded — run `ocibuild cache prune` to clear the store"
    )]
    LocalBlobCorrupt { digest: String, why: String },

    /// A request to Azure Blob Storage failed. `detail` is scrubbed of secrets.
    #[error("{cache}: {op} failed: {detail}{}", hint.as_ref().map(|h| format!(" — {h}")).unwrap_or_default())]
    Azure {
        cache: String,
        op: String,
        detail: String,
        hint: Option<String>,
    },

    /// No usable credentials, or credentials that cannot be parsed. Never contains the secret.
    #[error("Azure credentials for {cache}: {why} — {hint}")]
    Credentials {
        cache: String,
        why: String,
        hint: String,
    },

    /// A registry operation failed (the registry client's errors never contain credentials).
    #[error("{cache}: {op}: {source}")]
    Registry {
        cache: String,
        op: String,
        #[source]
        source: Box<ocibuild_registry::RegistryError>,
    },

    /// The registry holds something under a cache tag that is not one of our index objects.
    #[error("{cache}: {what} — delete that tag or use another `ref=` for the cache")]
    Foreign { cache: String, what: String },

    /// The private async runtime could not be started.
    #[error("cannot start the async runtime for {cache}: {source}")]
    Runtime {
        cache: String,
        #[source]
        source: std::io::Error,
    },
}

impl CacheError {
    pub(crate) fn local(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> CacheError {
        let path = path.into();
        move |source| CacheError::Local { op, path, source }
    }
}
