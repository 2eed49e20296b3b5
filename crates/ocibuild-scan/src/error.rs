use std::path::PathBuf;

/// What went wrong in a scan or a database import; each says where and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "no vulnerability database at {path}: import one with `ocibuild db import PATH` (a directory of OSV JSON records or osv.dev's all.zip archives), or pass --db"
    )]
    NoDatabase { path: PathBuf },
    #[error(
        "the vulnerability database at {path} is corrupt ({reason}): import it again with `ocibuild db import`"
    )]
    CorruptDatabase { path: PathBuf, reason: String },
    #[error("{path}: not an OSV record: {reason}")]
    BadRecord { path: String, reason: String },
    #[error("{path}: cannot read the zip archive: {reason}")]
    Zip { path: PathBuf, reason: String },
    #[error(
        "{path}: no OSV records found (expected *.json OSV records or osv.dev's all.zip archives)"
    )]
    Empty { path: PathBuf },
    #[error("SBOM: {0}")]
    Sbom(String),
    #[error(
        "allowlist {path}: {reason} (expected [[ignore]] entries with id, reason and expires = \"YYYY-MM-DD\")"
    )]
    Allowlist { path: PathBuf, reason: String },
    #[error("VEX document {path}: {reason} (expected an OpenVEX document with statements)")]
    Vex { path: PathBuf, reason: String },
    #[error("CVSS vector `{vector}`: {reason}")]
    Cvss { vector: String, reason: String },
}

impl ScanError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ScanError {
        let path = path.into();
        move |source| ScanError::Io { path, source }
    }
}
