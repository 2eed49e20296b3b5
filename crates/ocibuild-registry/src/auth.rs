//! (in progress: owned by the auth engineer; AuthError is extended there)

/// Authentication failures. Never carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0}")]
    Other(String),
}
