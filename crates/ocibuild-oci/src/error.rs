//! The one error type of this crate. Every variant carries what a user needs to find the problem:
//! the path, image or entry, and what was expected.

use std::io;
use std::path::{Path, PathBuf};

use crate::digest::Digest;

pub type Result<T, E = OciError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("invalid digest `{input}`: {why}")]
    InvalidDigest { input: String, why: String },

    #[error("invalid image reference `{input}`: {why}")]
    InvalidReference { input: String, why: String },

    #[error("invalid {what}: {detail}")]
    Invalid { what: String, detail: String },

    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("{what}: {source}")]
    Stream {
        what: String,
        #[source]
        source: io::Error,
    },

    #[error("{what} does not match its digest: expected {expected}, content hashes to {actual}")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },

    #[error("{what} has the wrong size: descriptor says {expected} bytes, content has {actual}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },

    #[error("blob {digest} is missing from {location}")]
    BlobMissing { digest: Digest, location: String },

    #[error("{what} is not valid JSON for its type: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("{location}: {defect}")]
    Defect { location: String, defect: String },

    #[error("{location}: no image tagged `{tag}` (available: {})", if available.is_empty() { "none".to_string() } else { available.join(", ") })]
    TagNotFound {
        location: String,
        tag: String,
        available: Vec<String>,
    },

    #[error("{location}: holds {count} images; name one with `:TAG` (available: {})", available.join(", "))]
    AmbiguousImage {
        location: String,
        count: usize,
        available: Vec<String>,
    },

    #[error("refusing layer entry `{entry}`: {why}")]
    UnsafeEntry { entry: String, why: String },

    #[error("cannot put {} into a layer: {why}", path.display())]
    UnsupportedFile { path: PathBuf, why: String },

    #[error("{what} is not supported: {hint}")]
    Unsupported { what: String, hint: String },

    #[error(
        "refusing {subject}: {what} exceeds the limit of {limit} (a decompression bomb or a broken archive? if it is genuine, raise the limit with {env}=N)"
    )]
    LimitExceeded {
        /// The archive: "the layer", "the tar of data.tar.xz in foo.deb".
        subject: String,
        what: String,
        limit: u64,
        env: &'static str,
    },
}

impl OciError {
    pub fn io(op: &'static str, path: impl AsRef<Path>) -> impl FnOnce(io::Error) -> OciError {
        let path = path.as_ref().to_path_buf();
        move |source| OciError::Io { op, path, source }
    }

    pub fn stream(what: impl Into<String>) -> impl FnOnce(io::Error) -> OciError {
        let what = what.into();
        move |source| OciError::Stream { what, source }
    }

    pub fn json(what: impl Into<String>) -> impl FnOnce(serde_json::Error) -> OciError {
        let what = what.into();
        move |source| OciError::Json { what, source }
    }

    pub fn defect(location: impl Into<String>, defect: impl Into<String>) -> OciError {
        OciError::Defect {
            location: location.into(),
            defect: defect.into(),
        }
    }

    pub fn invalid(what: impl Into<String>, detail: impl Into<String>) -> OciError {
        OciError::Invalid {
            what: what.into(),
            detail: detail.into(),
        }
    }

    /// True when the underlying cause is a full disk or quota, so the CLI can say so.
    pub fn is_disk_full(&self) -> bool {
        let src = match self {
            OciError::Io { source, .. } | OciError::Stream { source, .. } => source,
            _ => return false,
        };
        matches!(src.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
    }
}
