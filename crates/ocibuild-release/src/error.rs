//! What can go wrong after the build: each error says what was being done, and where.

use std::path::PathBuf;

/// An error of [`crate::release`].
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// A gate failed (the checks, or vulnerabilities at or above the threshold): nothing was
    /// written or pushed. The command line exits 3.
    #[error("{0}")]
    GateFailed(String),
    #[error("the build made no image")]
    NoImage,
    #[error("writing {location}: no registry client was given for a registry output")]
    NoRegistry { location: String },
    #[error(
        "--output {location}: a multi-platform build writes an index: use oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker://REF"
    )]
    IndexOutput { location: String },
    #[error("{what}")]
    Write {
        what: String,
        #[source]
        source: ocibuild_oci::OciError,
    },
    #[error("{what}")]
    Push {
        what: String,
        #[source]
        source: Box<ocibuild_registry::error::RegistryError>,
    },
    #[error("{what}")]
    Attach {
        what: String,
        #[source]
        source: Box<ocibuild_registry::error::RegistryError>,
    },
    #[error("{what}")]
    Sign {
        what: String,
        #[source]
        source: ocibuild_sign::SignError,
    },
    #[error("{what}")]
    Catalog {
        what: String,
        #[source]
        source: ocibuild_sbom::SbomError,
    },
    #[error("{what}")]
    Check {
        what: String,
        #[source]
        source: ocibuild_policy::PolicyError,
    },
    /// The policy cannot be applied (a bad pattern in it).
    #[error("{detail}")]
    Policy { detail: String },
    #[error("{what}")]
    Scan {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{what} {}", path.display())]
    Io {
        what: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
}
