//! The engine's errors.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Oci(#[from] ocibuild_oci::OciError),

    #[error(transparent)]
    Debian(#[from] ocibuild_debian::DebianError),

    #[error(transparent)]
    Sandbox(#[from] ocibuild_sandbox::SandboxError),

    #[error(transparent)]
    Builders(#[from] ocibuild_builders::BuildersError),

    #[error("{what} ({path}): {source}")]
    Io {
        what: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("build step `{step}` failed with exit status {status}: {argv}\n{output}\nhelp: {hint}")]
    StepFailed {
        step: String,
        argv: String,
        status: i32,
        /// The lines that look like the first error (when above the tail), the last lines, and
        /// where the whole output is kept ([`crate::steplog::failed`]).
        output: String,
        hint: String,
    },

    #[error("{what}: {detail}")]
    Invalid { what: String, detail: String },

    /// What was being done when `source` happened (shown as the first line, `source` as its
    /// cause).
    #[error("{context}")]
    Context {
        context: String,
        #[source]
        source: Box<EngineError>,
    },
}

impl EngineError {
    /// This error, said to have happened while doing `context`.
    pub fn context(self, context: impl Into<String>) -> EngineError {
        EngineError::Context {
            context: context.into(),
            source: Box::new(self),
        }
    }

    pub(crate) fn io(
        what: impl Into<String>,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> EngineError {
        let (what, path) = (what.into(), path.into());
        move |source| EngineError::Io { what, path, source }
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
