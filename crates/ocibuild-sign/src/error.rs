//! The signing crate's error type. Messages name files, images and digests — never a password,
//! a private key or a token.

use ocibuild_oci::OciError;
use ocibuild_registry::RegistryError;

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("key {path}: {detail}")]
    Key { path: String, detail: String },

    #[error(
        "key {path}: the password does not decrypt it — check COSIGN_PASSWORD (or the password typed)"
    )]
    WrongPassword { path: String },

    #[error("password: {0}")]
    Password(String),

    #[error("{what}: {detail}")]
    Invalid { what: String, detail: String },

    #[error(
        "{path} exists already — pass --force to overwrite it, or choose another --output-key-prefix"
    )]
    Exists { path: String },

    #[error("Azure Key Vault {vault}: {detail}")]
    KeyVault { vault: String, detail: String },

    #[error(transparent)]
    Registry(Box<RegistryError>),

    #[error(transparent)]
    Oci(Box<OciError>),

    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl From<RegistryError> for SignError {
    fn from(e: RegistryError) -> Self {
        SignError::Registry(Box::new(e))
    }
}

impl From<OciError> for SignError {
    fn from(e: OciError) -> Self {
        SignError::Oci(Box::new(e))
    }
}

pub type Result<T, E = SignError> = std::result::Result<T, E>;
