//! Static image checks and size attribution from one streaming pass over an image's layers.
//!
//! - [`index::scan`]: every layer read once into an in-memory index of the final filesystem.
//! - [`checks::check`]: the default checks every image should pass (entrypoint and healthcheck
//!   runnable, no lower symlink replaced by a directory, no world-writable files outside
//!   `/tmp`, no setuid/setgid, no private keys in the app's layers, no dev dependencies, no
//!   build tools or sources) plus a [`Policy`] file and container-structure-test suites.
//! - [`size::report`]: bytes per layer, top directories, biggest files, duplicates, wasted
//!   bytes, the reduction against a comparison image, and [`Budget`]s.

pub mod checks;
pub mod cst;
pub mod index;
pub mod policy;
pub mod size;

pub use checks::{Finding, Report, Severity, check};
pub use index::{ScanOptions, Scanned, scan};
pub use policy::{Budget, Policy, parse_size};

/// What went wrong reading an image or a policy file.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error(transparent)]
    Oci(#[from] ocibuild_oci::OciError),
    #[error("layer {layer}: {detail}")]
    Layer { layer: usize, detail: String },
    #[error("{file}: {detail}")]
    File { file: String, detail: String },
}

impl PolicyError {
    pub(crate) fn file(file: &std::path::Path, detail: impl Into<String>) -> Self {
        PolicyError::File {
            file: file.display().to_string(),
            detail: detail.into(),
        }
    }
}

/// `bytes` for people: `12.3 MB` (SI, as registries show sizes).
pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{bytes} B")
    }
}
