//! What signs: the [`Signer`] trait (sign bytes, say with which public key and algorithm), and
//! the file-key implementation. A key-management service (Azure Key Vault) implements the same
//! trait and plugs into `sign`/`attest` unchanged.

use std::path::{Path, PathBuf};

use crate::error::{Result, SignError};
use crate::keys::{Algorithm, Password, PrivateKey, PublicKey, Scheme};

/// Signs bytes. ECDSA signatures are ASN.1 DER, as cosign writes them.
pub trait Signer {
    /// The signature of `message` in the key's default scheme, the one cosign signs with
    /// ([`Algorithm::scheme`]: ES256, ES384, RS256, Ed25519); the signer hashes the message.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        self.sign_as(self.algorithm().scheme(), message)
    }
    /// The signature of `message` with `scheme` (notation's PS256 for an RSA key, say); a
    /// scheme the key cannot make is an error.
    fn sign_as(&self, scheme: Scheme, message: &[u8]) -> Result<Vec<u8>>;
    /// The public key that verifies the signatures.
    fn public_key(&self) -> Result<PublicKey>;
    fn algorithm(&self) -> Algorithm;
    /// A key id for DSSE envelopes (empty, as cosign writes for key files).
    fn key_id(&self) -> String {
        String::new()
    }
    /// What the key is, for messages (a path, a vault key name; never key material).
    fn describe(&self) -> String;
}

/// A private key read from a file (cosign's encrypted format or plain PEM).
pub struct FileSigner {
    key: PrivateKey,
    path: PathBuf,
}

impl FileSigner {
    /// Read `path`; `password` is asked for only when the key is encrypted.
    pub fn open(path: &Path, password: &dyn Fn() -> Result<Password>) -> Result<Self> {
        Ok(Self {
            key: PrivateKey::read(path, password)?,
            path: path.to_path_buf(),
        })
    }

    pub fn from_key(key: PrivateKey, label: &str) -> Self {
        Self {
            key,
            path: PathBuf::from(label),
        }
    }
}

impl Signer for FileSigner {
    fn sign_as(&self, scheme: Scheme, message: &[u8]) -> Result<Vec<u8>> {
        self.key.sign_as(scheme, message)
    }
    fn public_key(&self) -> Result<PublicKey> {
        Ok(self.key.public_key())
    }
    fn algorithm(&self) -> Algorithm {
        self.key.algorithm()
    }
    fn describe(&self) -> String {
        format!("key file {}", self.path.display())
    }
}

/// Write a new key pair as `cosign generate-key-pair` does: `<prefix>.key` (encrypted, mode
/// 0600) and `<prefix>.pub`, each through a temp file and a rename; existing files are kept
/// unless `force`.
pub fn generate_key_pair(
    prefix: &Path,
    force: bool,
    password: &Password,
) -> Result<(PathBuf, PathBuf)> {
    let key_path = PathBuf::from(format!("{}.key", prefix.display()));
    let pub_path = PathBuf::from(format!("{}.pub", prefix.display()));
    if !force {
        for p in [&key_path, &pub_path] {
            if p.exists() {
                return Err(SignError::Exists {
                    path: p.display().to_string(),
                });
            }
        }
    }
    let key = PrivateKey::generate_p256();
    let enc = key.to_encrypted_pem(password)?;
    let pubpem = key.public_key().to_pem()?;
    write_private(&key_path, enc.as_bytes())?;
    write_public(&pub_path, pubpem.as_bytes())?;
    Ok((key_path, pub_path))
}

/// Write `key` as a PEM public key to `path` (temp file + rename); an existing file is kept
/// unless `force`.
pub fn write_public_key(path: &Path, key: &PublicKey, force: bool) -> Result<()> {
    if !force && path.exists() {
        return Err(SignError::Exists {
            path: path.display().to_string(),
        });
    }
    write_public(path, key.to_pem()?.as_bytes())
}

fn temp_beside(path: &Path) -> Result<tempfile::NamedTempFile> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // NamedTempFile is created 0600
    tempfile::Builder::new()
        .prefix(".tmp-key-")
        .tempfile_in(dir)
        .map_err(|e| SignError::Io {
            what: format!("creating a temp file in {}", dir.display()),
            source: e,
        })
}

fn persist(tmp: tempfile::NamedTempFile, path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let io = |what: &str| {
        let what = format!("{what} {}", path.display());
        move |source| SignError::Io { what, source }
    };
    let mut f = tmp;
    f.write_all(bytes).map_err(io("writing"))?;
    f.as_file().sync_all().map_err(io("syncing"))?;
    f.persist(path).map_err(|e| SignError::Io {
        what: format!("writing {}", path.display()),
        source: e.error,
    })?;
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let tmp = temp_beside(path)?;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o600)).map_err(|e| {
        SignError::Io {
            what: format!("restricting {} to its owner", tmp.path().display()),
            source: e,
        }
    })?;
    persist(tmp, path, bytes)
}

fn write_public(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let tmp = temp_beside(path)?;
    let _ = std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644));
    persist(tmp, path, bytes)
}
