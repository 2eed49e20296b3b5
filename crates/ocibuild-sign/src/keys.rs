//! Keys as cosign writes and reads them.
//!
//! - Private: cosign's encrypted PEM (`ENCRYPTED SIGSTORE PRIVATE KEY`, and the older
//!   `ENCRYPTED COSIGN PRIVATE KEY`): a JSON document `{"kdf": {"name": "scrypt", "params": {"N":
//!   32768, "r": 8, "p": 1}, "salt": B64}, "cipher": {"name": "nacl/secretbox", "nonce": B64},
//!   "ciphertext": B64}` whose plaintext is the PKCS#8 DER of the key. Plain PEM keys are read
//!   too: PKCS#8 (`PRIVATE KEY`: ECDSA P-256, RSA, Ed25519), SEC1 (`EC PRIVATE KEY`) and PKCS#1
//!   (`RSA PRIVATE KEY`).
//! - Public: PEM SubjectPublicKeyInfo (`PUBLIC KEY`).
//!
//! Passwords and key material never reach an error message or a log line.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use crypto_secretbox::aead::{Aead, KeyInit};
use pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use spki::DecodePublicKey;

use crate::error::{Result, SignError};

/// The PEM label cosign 2.x writes.
pub const SIGSTORE_PEM: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// The PEM label older cosign releases wrote (read only).
pub const COSIGN_PEM: &str = "ENCRYPTED COSIGN PRIVATE KEY";

const SCRYPT_N: u32 = 32768;
const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;
const SALT_LEN: usize = 32;
const NONCE_LEN: usize = 24;

/// A password, kept out of `Debug` output.
pub struct Password(Vec<u8>);

impl Password {
    pub fn new(p: impl Into<Vec<u8>>) -> Self {
        Password(p.into())
    }
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// The signature algorithm of a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Algorithm {
    /// ECDSA P-256 with SHA-256, ASN.1 DER signatures (cosign's default).
    EcdsaP256Sha256,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RsaPkcs1Sha256,
    /// Ed25519 (pure).
    Ed25519,
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Algorithm::EcdsaP256Sha256 => "ecdsa-p256-sha256",
            Algorithm::RsaPkcs1Sha256 => "rsa-pkcs1v15-sha256",
            Algorithm::Ed25519 => "ed25519",
        })
    }
}

/// A private key.
pub enum PrivateKey {
    EcdsaP256(p256::ecdsa::SigningKey),
    Rsa(Box<rsa::RsaPrivateKey>),
    Ed25519(ed25519_dalek::SigningKey),
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateKey({})", self.algorithm())
    }
}

/// A public key.
#[derive(Clone, Debug)]
pub enum PublicKey {
    EcdsaP256(p256::ecdsa::VerifyingKey),
    Rsa(Box<rsa::RsaPublicKey>),
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl PrivateKey {
    /// A new ECDSA P-256 key (what `cosign generate-key-pair` makes).
    pub fn generate_p256() -> Self {
        PrivateKey::EcdsaP256(p256::ecdsa::SigningKey::random(&mut OsRng))
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            PrivateKey::EcdsaP256(_) => Algorithm::EcdsaP256Sha256,
            PrivateKey::Rsa(_) => Algorithm::RsaPkcs1Sha256,
            PrivateKey::Ed25519(_) => Algorithm::Ed25519,
        }
    }

    pub fn public_key(&self) -> PublicKey {
        match self {
            PrivateKey::EcdsaP256(k) => PublicKey::EcdsaP256(*k.verifying_key()),
            PrivateKey::Rsa(k) => PublicKey::Rsa(Box::new(k.to_public_key())),
            PrivateKey::Ed25519(k) => PublicKey::Ed25519(k.verifying_key()),
        }
    }

    /// Sign `msg`: ECDSA signatures are ASN.1 DER (as cosign writes them).
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>> {
        use p256::ecdsa::signature::Signer as _;
        match self {
            PrivateKey::EcdsaP256(k) => {
                let sig: p256::ecdsa::Signature = k.sign(msg);
                Ok(sig.to_der().as_bytes().to_vec())
            }
            PrivateKey::Rsa(k) => {
                let sk = rsa::pkcs1v15::SigningKey::<sha2_10::Sha256>::new((**k).clone());
                let sig: rsa::pkcs1v15::Signature = sk.sign(msg);
                Ok(Box::<[u8]>::from(sig).into_vec())
            }
            PrivateKey::Ed25519(k) => Ok(k.sign(msg).to_bytes().to_vec()),
        }
    }

    /// PKCS#8 DER of the key (secret: never logged).
    fn pkcs8_der(&self) -> Result<Vec<u8>> {
        let doc = match self {
            PrivateKey::EcdsaP256(k) => k.to_pkcs8_der(),
            PrivateKey::Rsa(k) => k.to_pkcs8_der(),
            PrivateKey::Ed25519(k) => k.to_pkcs8_der(),
        }
        .map_err(|_| SignError::Key {
            path: String::new(),
            detail: "cannot encode the private key as PKCS#8".into(),
        })?;
        Ok(doc.as_bytes().to_vec())
    }

    fn from_pkcs8_der(der: &[u8]) -> Option<Self> {
        if let Ok(k) = p256::ecdsa::SigningKey::from_pkcs8_der(der) {
            return Some(PrivateKey::EcdsaP256(k));
        }
        if let Ok(k) = rsa::RsaPrivateKey::from_pkcs8_der(der) {
            return Some(PrivateKey::Rsa(Box::new(k)));
        }
        if let Ok(k) = ed25519_dalek::SigningKey::from_pkcs8_der(der) {
            return Some(PrivateKey::Ed25519(k));
        }
        None
    }

    /// cosign's encrypted PEM (`ENCRYPTED SIGSTORE PRIVATE KEY`) of this key.
    pub fn to_encrypted_pem(&self, password: &Password) -> Result<String> {
        let der = self.pkcs8_der()?;
        let mut salt = [0u8; SALT_LEN];
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut salt);
        OsRng.fill_bytes(&mut nonce);
        let key = derive(password, &salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)?;
        let cipher = crypto_secretbox::XSalsa20Poly1305::new((&key).into());
        let ct = cipher
            .encrypt((&nonce).into(), der.as_slice())
            .map_err(|_| SignError::Key {
                path: String::new(),
                detail: "encrypting the private key failed".into(),
            })?;
        let doc = Encrypted {
            kdf: Kdf {
                name: "scrypt".into(),
                params: ScryptParams {
                    n: SCRYPT_N,
                    r: SCRYPT_R,
                    p: SCRYPT_P,
                },
                salt: B64.encode(salt),
            },
            cipher: Cipher {
                name: "nacl/secretbox".into(),
                nonce: B64.encode(nonce),
            },
            ciphertext: B64.encode(ct),
        };
        let json = serde_json::to_vec(&doc).map_err(|e| SignError::Key {
            path: String::new(),
            detail: format!("encoding the encrypted key: {e}"),
        })?;
        Ok(pem_encode(SIGSTORE_PEM, &json))
    }

    /// Read a private key from PEM text. `password` is asked for only when the key is encrypted.
    pub fn from_pem(
        text: &str,
        path: &str,
        password: &dyn Fn() -> Result<Password>,
    ) -> Result<Self> {
        let bad = |detail: String| SignError::Key {
            path: path.to_string(),
            detail,
        };
        let (label, der) = pem_decode(text).ok_or_else(|| {
            bad("not a PEM file (expected -----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----, or a PKCS#8/SEC1/PKCS#1 private key)".into())
        })?;
        match label.as_str() {
            SIGSTORE_PEM | COSIGN_PEM => {
                let doc: Encrypted = serde_json::from_slice(&der).map_err(|e| {
                    bad(format!(
                        "the encrypted key is not cosign's JSON (kdf, cipher, ciphertext): {e}"
                    ))
                })?;
                if doc.kdf.name != "scrypt" || doc.cipher.name != "nacl/secretbox" {
                    return Err(bad(format!(
                        "unsupported encryption {} / {} (cosign uses scrypt / nacl/secretbox)",
                        doc.kdf.name, doc.cipher.name
                    )));
                }
                let p = &doc.kdf.params;
                // bounded, so a crafted key file cannot make us allocate gigabytes
                if p.n > 1 << 20 || p.r > 32 || p.p > 16 {
                    return Err(bad(format!(
                        "scrypt parameters N={} r={} p={} are beyond what cosign writes (N=32768, r=8, p=1)",
                        p.n, p.r, p.p
                    )));
                }
                let salt = B64
                    .decode(&doc.kdf.salt)
                    .map_err(|_| bad("the kdf salt is not base64".into()))?;
                let nonce = B64
                    .decode(&doc.cipher.nonce)
                    .map_err(|_| bad("the cipher nonce is not base64".into()))?;
                let ct = B64
                    .decode(&doc.ciphertext)
                    .map_err(|_| bad("the ciphertext is not base64".into()))?;
                let nonce: [u8; NONCE_LEN] = nonce
                    .try_into()
                    .map_err(|_| bad(format!("the nonce is not {NONCE_LEN} bytes")))?;
                let pw = password()?;
                let key = derive(&pw, &salt, p.n, p.r, p.p)?;
                let cipher = crypto_secretbox::XSalsa20Poly1305::new((&key).into());
                let der = cipher.decrypt((&nonce).into(), ct.as_slice()).map_err(|_| {
                    SignError::WrongPassword {
                        path: path.to_string(),
                    }
                })?;
                Self::from_pkcs8_der(&der).ok_or_else(|| {
                    bad("the decrypted key is not a PKCS#8 ECDSA P-256, RSA or Ed25519 key".into())
                })
            }
            "PRIVATE KEY" => Self::from_pkcs8_der(&der).ok_or_else(|| {
                bad("a PKCS#8 key that is not ECDSA P-256, RSA or Ed25519 (other curves are not supported)".into())
            }),
            "EC PRIVATE KEY" => {
                let sk = p256::SecretKey::from_sec1_der(&der)
                    .map_err(|_| ())
                    .ok()
                    .ok_or_else(|| bad("an EC key that is not on P-256".into()))?;
                Ok(PrivateKey::EcdsaP256(sk.into()))
            }
            "RSA PRIVATE KEY" => {
                use rsa::pkcs1::DecodeRsaPrivateKey as _;
                let k = rsa::RsaPrivateKey::from_pkcs1_der(&der)
                    .map_err(|_| bad("an unreadable PKCS#1 RSA key".into()))?;
                Ok(PrivateKey::Rsa(Box::new(k)))
            }
            other => Err(bad(format!(
                "a PEM `{other}` block is not a private key ocibuild reads"
            ))),
        }
    }

    /// Read a private key file; see [`PrivateKey::from_pem`].
    pub fn read(path: &Path, password: &dyn Fn() -> Result<Password>) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| SignError::Io {
            what: format!("reading the key {}", path.display()),
            source: e,
        })?;
        Self::from_pem(&text, &path.display().to_string(), password)
    }
}

impl PublicKey {
    pub fn algorithm(&self) -> Algorithm {
        match self {
            PublicKey::EcdsaP256(_) => Algorithm::EcdsaP256Sha256,
            PublicKey::Rsa(_) => Algorithm::RsaPkcs1Sha256,
            PublicKey::Ed25519(_) => Algorithm::Ed25519,
        }
    }

    /// PEM SubjectPublicKeyInfo (`-----BEGIN PUBLIC KEY-----`), as `cosign.pub`.
    pub fn to_pem(&self) -> Result<String> {
        match self {
            PublicKey::EcdsaP256(k) => k.to_public_key_pem(LineEnding::LF),
            PublicKey::Rsa(k) => k.to_public_key_pem(LineEnding::LF),
            PublicKey::Ed25519(k) => k.to_public_key_pem(LineEnding::LF),
        }
        .map_err(|e| SignError::Key {
            path: String::new(),
            detail: format!("encoding the public key: {e}"),
        })
    }

    /// Read a PEM public key (ECDSA P-256, RSA or Ed25519).
    pub fn from_pem(text: &str, path: &str) -> Result<Self> {
        if let Ok(k) = p256::ecdsa::VerifyingKey::from_public_key_pem(text) {
            return Ok(PublicKey::EcdsaP256(k));
        }
        if let Ok(k) = rsa::RsaPublicKey::from_public_key_pem(text) {
            return Ok(PublicKey::Rsa(Box::new(k)));
        }
        if let Ok(k) = ed25519_dalek::VerifyingKey::from_public_key_pem(text) {
            return Ok(PublicKey::Ed25519(k));
        }
        Err(SignError::Key {
            path: path.into(),
            detail:
                "not a PEM public key (-----BEGIN PUBLIC KEY-----) for ECDSA P-256, RSA or Ed25519"
                    .into(),
        })
    }

    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| SignError::Io {
            what: format!("reading the public key {}", path.display()),
            source: e,
        })?;
        Self::from_pem(&text, &path.display().to_string())
    }

    /// Check `sig` over `msg`. ECDSA signatures are ASN.1 DER.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        use p256::ecdsa::signature::Verifier as _;
        match self {
            PublicKey::EcdsaP256(k) => {
                p256::ecdsa::DerSignature::try_from(sig).is_ok_and(|s| k.verify(msg, &s).is_ok())
            }
            PublicKey::Rsa(k) => {
                let vk = rsa::pkcs1v15::VerifyingKey::<sha2_10::Sha256>::new((**k).clone());
                rsa::pkcs1v15::Signature::try_from(sig).is_ok_and(|s| vk.verify(msg, &s).is_ok())
            }
            PublicKey::Ed25519(k) => {
                ed25519_dalek::Signature::from_slice(sig).is_ok_and(|s| k.verify(msg, &s).is_ok())
            }
        }
    }
}

#[derive(Serialize, Deserialize)]
struct ScryptParams {
    #[serde(rename = "N")]
    n: u32,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: ScryptParams,
    salt: String,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

#[derive(Serialize, Deserialize)]
struct Encrypted {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

fn derive(pw: &Password, salt: &[u8], n: u32, r: u32, p: u32) -> Result<[u8; 32]> {
    let bad = || SignError::Key {
        path: String::new(),
        detail: format!("invalid scrypt parameters N={n} r={r} p={p}"),
    };
    if n < 2 || !n.is_power_of_two() {
        return Err(bad());
    }
    let params = scrypt::Params::new(n.trailing_zeros() as u8, r, p, 32).map_err(|_| bad())?;
    let mut out = [0u8; 32];
    scrypt::scrypt(pw.expose(), salt, &params, &mut out).map_err(|_| bad())?;
    Ok(out)
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    let b = B64.encode(der);
    let mut s = format!("-----BEGIN {label}-----\n");
    for chunk in b.as_bytes().chunks(64) {
        s.push_str(&String::from_utf8_lossy(chunk));
        s.push('\n');
    }
    s.push_str(&format!("-----END {label}-----\n"));
    s
}

/// The first PEM block: (label, bytes).
fn pem_decode(text: &str) -> Option<(String, Vec<u8>)> {
    let start = text.find("-----BEGIN ")?;
    let rest = &text[start + 11..];
    let label_end = rest.find("-----")?;
    let label = rest[..label_end].to_string();
    let body = &rest[label_end + 5..];
    let end = body.find(&format!("-----END {label}-----"))?;
    let b64: String = body[..end]
        .lines()
        .filter(|l| !l.contains(':'))
        .flat_map(|l| l.trim().chars())
        .collect();
    B64.decode(b64).ok().map(|d| (label, d))
}

/// The password from `COSIGN_PASSWORD` (set and possibly empty, as cosign), else asked on the
/// terminal (twice when `confirm`). Without either, a clear error.
pub fn password_from_env_or_tty(confirm: bool) -> Result<Password> {
    if let Some(p) = std::env::var_os("COSIGN_PASSWORD") {
        return Ok(Password::new(p.into_encoded_bytes()));
    }
    let first = prompt("Enter password for private key: ")?;
    if confirm {
        let again = prompt("Enter password for private key again: ")?;
        if again.expose() != first.expose() {
            return Err(SignError::Password("the two passwords differ".into()));
        }
    }
    Ok(first)
}

fn prompt(text: &str) -> Result<Password> {
    use std::io::{BufRead, Write};
    let no_tty = || {
        SignError::Password(
            "no terminal to ask for the key's password on: set COSIGN_PASSWORD (empty for an unencrypted-password key)".into(),
        )
    };
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|_| no_tty())?;
    let old = rustix::termios::tcgetattr(&tty).map_err(|_| no_tty())?;
    let mut quiet = old.clone();
    quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
    let _ = rustix::termios::tcsetattr(&tty, rustix::termios::OptionalActions::Now, &quiet);
    let mut w = &tty;
    let _ = w.write_all(text.as_bytes());
    let _ = w.flush();
    let mut line = String::new();
    let res = std::io::BufReader::new(&tty).read_line(&mut line);
    let _ = rustix::termios::tcsetattr(&tty, rustix::termios::OptionalActions::Now, &old);
    let _ = w.write_all(b"\n");
    res.map_err(|_| no_tty())?;
    Ok(Password::new(
        line.trim_end_matches(['\n', '\r']).as_bytes(),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn encrypted_key_round_trip_and_wrong_password() {
        let k = PrivateKey::generate_p256();
        let pem = k.to_encrypted_pem(&Password::new("pw")).unwrap();
        assert!(pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
        let read = PrivateKey::from_pem(&pem, "k", &|| Ok(Password::new("pw"))).unwrap();
        let sig = read.sign(b"msg").unwrap();
        assert!(k.public_key().verify(b"msg", &sig));
        assert!(!k.public_key().verify(b"msh", &sig));
        let e = PrivateKey::from_pem(&pem, "k", &|| Ok(Password::new("nope"))).unwrap_err();
        assert!(matches!(e, SignError::WrongPassword { .. }), "{e}");
        assert!(!e.to_string().contains("nope"));
        // the old label reads the same
        let old = pem.replace(SIGSTORE_PEM, COSIGN_PEM);
        PrivateKey::from_pem(&old, "k", &|| Ok(Password::new("pw"))).unwrap();
        let pubpem = k.public_key().to_pem().unwrap();
        assert!(pubpem.starts_with("-----BEGIN PUBLIC KEY-----"));
        let p = PublicKey::from_pem(&pubpem, "p").unwrap();
        assert!(p.verify(b"msg", &sig));
    }

    #[test]
    fn plain_ed25519_and_rsa_keys() {
        let mut seed = [0u8; 32];
        OsRng.fill_bytes(&mut seed);
        let ed = PrivateKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed));
        let pem = ed25519_pem(&ed);
        let k = PrivateKey::from_pem(&pem, "k", &|| panic!("no password")).unwrap();
        let sig = k.sign(b"x").unwrap();
        let p = PublicKey::from_pem(&k.public_key().to_pem().unwrap(), "p").unwrap();
        assert_eq!(p.algorithm(), Algorithm::Ed25519);
        assert!(p.verify(b"x", &sig));
        assert!(PrivateKey::from_pem("garbage", "k", &|| panic!()).is_err());
    }

    fn ed25519_pem(k: &PrivateKey) -> String {
        pem_encode("PRIVATE KEY", &k.pkcs8_der().unwrap())
    }
}
