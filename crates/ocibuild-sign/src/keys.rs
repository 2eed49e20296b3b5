//! Keys as cosign writes and reads them.
//!
//! - Private: cosign's encrypted PEM (`ENCRYPTED SIGSTORE PRIVATE KEY`, and the older
//!   `ENCRYPTED COSIGN PRIVATE KEY`): a JSON document `{"kdf": {"name": "scrypt", "params": {"N":
//!   32768, "r": 8, "p": 1}, "salt": B64}, "cipher": {"name": "nacl/secretbox", "nonce": B64},
//!   "ciphertext": B64}` whose plaintext is the PKCS#8 DER of the key. Plain PEM keys are read
//!   too: PKCS#8 (`PRIVATE KEY`: ECDSA P-256 and P-384, RSA, Ed25519), SEC1 (`EC PRIVATE KEY`) and
//!   PKCS#1 (`RSA PRIVATE KEY`).
//! - Public: PEM SubjectPublicKeyInfo (`PUBLIC KEY`).
//! - Signature schemes ([`Scheme`]): each key has the one cosign signs with
//!   ([`PublicKey::default_scheme`]: ES256, ES384, RS256 — RSASSA-PKCS1-v1_5 —, Ed25519) and the
//!   one the Notary Project selects for it ([`PublicKey::notation_scheme`]: ES256, ES384, and
//!   RSASSA-PSS PS256/PS384/PS512 by the RSA key's size, salt length = hash length).
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

/// A signature scheme's hash function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    pub fn digest(self, msg: &[u8]) -> Vec<u8> {
        use sha2_10::Digest as _;
        match self {
            Hash::Sha256 => sha2_10::Sha256::digest(msg).to_vec(),
            Hash::Sha384 => sha2_10::Sha384::digest(msg).to_vec(),
            Hash::Sha512 => sha2_10::Sha512::digest(msg).to_vec(),
        }
    }

    fn bits(self) -> u16 {
        match self {
            Hash::Sha256 => 256,
            Hash::Sha384 => 384,
            Hash::Sha512 => 512,
        }
    }
}

/// How a signature is made: the key family, the padding (RSA) and the hash. ECDSA signatures are
/// ASN.1 DER wherever this crate hands them out (JWS and COSE keep them raw `r‖s`: see
/// [`PublicKey::ecdsa_der_to_raw`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Scheme {
    Ecdsa(Hash),
    /// RSASSA-PKCS1-v1_5 (what cosign signs with RSA keys).
    RsaPkcs1(Hash),
    /// RSASSA-PSS, MGF1 with the same hash, salt length = the hash length (what notation signs
    /// with RSA keys).
    RsaPss(Hash),
    Ed25519,
}

impl Scheme {
    /// The JOSE name (RFC 7518): `ES256`, `ES384`, `RS256`, `PS256`, …, `EdDSA`.
    pub fn jose(self) -> String {
        match self {
            Scheme::Ecdsa(h) => format!("ES{}", h.bits()),
            Scheme::RsaPkcs1(h) => format!("RS{}", h.bits()),
            Scheme::RsaPss(h) => format!("PS{}", h.bits()),
            Scheme::Ed25519 => "EdDSA".into(),
        }
    }

    /// The scheme of a JOSE name.
    pub fn from_jose(name: &str) -> Option<Self> {
        let hash = |bits: &str| match bits {
            "256" => Some(Hash::Sha256),
            "384" => Some(Hash::Sha384),
            "512" => Some(Hash::Sha512),
            _ => None,
        };
        if name == "EdDSA" {
            return Some(Scheme::Ed25519);
        }
        let (family, bits) = name.split_at_checked(2)?;
        match family {
            "ES" => hash(bits).map(Scheme::Ecdsa),
            "RS" => hash(bits).map(Scheme::RsaPkcs1),
            "PS" => hash(bits).map(Scheme::RsaPss),
            _ => None,
        }
    }

    /// The hash the scheme signs (Ed25519 hashes internally: `None`).
    pub fn hash(self) -> Option<Hash> {
        match self {
            Scheme::Ecdsa(h) | Scheme::RsaPkcs1(h) | Scheme::RsaPss(h) => Some(h),
            Scheme::Ed25519 => None,
        }
    }
}

impl std::fmt::Display for Scheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.jose())
    }
}

/// The signature algorithm of a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Algorithm {
    /// ECDSA P-256 with SHA-256, ASN.1 DER signatures (cosign's default).
    EcdsaP256Sha256,
    /// ECDSA P-384 with SHA-384, ASN.1 DER signatures.
    EcdsaP384Sha384,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RsaPkcs1Sha256,
    /// Ed25519 (pure).
    Ed25519,
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Algorithm::EcdsaP256Sha256 => "ecdsa-p256-sha256",
            Algorithm::EcdsaP384Sha384 => "ecdsa-p384-sha384",
            Algorithm::RsaPkcs1Sha256 => "rsa-pkcs1v15-sha256",
            Algorithm::Ed25519 => "ed25519",
        })
    }
}

impl Algorithm {
    /// The scheme a key of this algorithm signs with by default (cosign's).
    pub fn scheme(self) -> Scheme {
        match self {
            Algorithm::EcdsaP256Sha256 => Scheme::Ecdsa(Hash::Sha256),
            Algorithm::EcdsaP384Sha384 => Scheme::Ecdsa(Hash::Sha384),
            Algorithm::RsaPkcs1Sha256 => Scheme::RsaPkcs1(Hash::Sha256),
            Algorithm::Ed25519 => Scheme::Ed25519,
        }
    }
}

/// A private key.
pub enum PrivateKey {
    EcdsaP256(p256::ecdsa::SigningKey),
    EcdsaP384(p384::ecdsa::SigningKey),
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
    EcdsaP384(p384::ecdsa::VerifyingKey),
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
            PrivateKey::EcdsaP384(_) => Algorithm::EcdsaP384Sha384,
            PrivateKey::Rsa(_) => Algorithm::RsaPkcs1Sha256,
            PrivateKey::Ed25519(_) => Algorithm::Ed25519,
        }
    }

    pub fn public_key(&self) -> PublicKey {
        match self {
            PrivateKey::EcdsaP256(k) => PublicKey::EcdsaP256(*k.verifying_key()),
            PrivateKey::EcdsaP384(k) => PublicKey::EcdsaP384(*k.verifying_key()),
            PrivateKey::Rsa(k) => PublicKey::Rsa(Box::new(k.to_public_key())),
            PrivateKey::Ed25519(k) => PublicKey::Ed25519(k.verifying_key()),
        }
    }

    /// Sign `msg` in the key's default scheme (cosign's): ECDSA signatures are ASN.1 DER.
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>> {
        self.sign_as(self.algorithm().scheme(), msg)
    }

    /// Sign `msg` with `scheme` (ECDSA: ASN.1 DER); a scheme of another key family is an error.
    pub fn sign_as(&self, scheme: Scheme, msg: &[u8]) -> Result<Vec<u8>> {
        use p256::ecdsa::signature::hazmat::PrehashSigner as _;
        use p256::ecdsa::signature::{RandomizedSigner as _, Signer as _};
        let failed = |e: &dyn std::fmt::Display| SignError::Invalid {
            what: format!("signing with a {} key ({scheme})", self.algorithm()),
            detail: e.to_string(),
        };
        match (self, scheme) {
            (PrivateKey::EcdsaP256(k), Scheme::Ecdsa(h)) => {
                let sig: p256::ecdsa::Signature =
                    k.sign_prehash(&h.digest(msg)).map_err(|e| failed(&e))?;
                Ok(sig.to_der().as_bytes().to_vec())
            }
            (PrivateKey::EcdsaP384(k), Scheme::Ecdsa(h)) => {
                let sig: p384::ecdsa::Signature =
                    k.sign_prehash(&h.digest(msg)).map_err(|e| failed(&e))?;
                Ok(sig.to_der().as_bytes().to_vec())
            }
            (PrivateKey::Rsa(k), Scheme::RsaPkcs1(h)) => {
                let k = (**k).clone();
                let sig: Box<[u8]> = match h {
                    Hash::Sha256 => {
                        rsa::pkcs1v15::SigningKey::<sha2_10::Sha256>::new(k).try_sign(msg)
                    }
                    Hash::Sha384 => {
                        rsa::pkcs1v15::SigningKey::<sha2_10::Sha384>::new(k).try_sign(msg)
                    }
                    Hash::Sha512 => {
                        rsa::pkcs1v15::SigningKey::<sha2_10::Sha512>::new(k).try_sign(msg)
                    }
                }
                .map_err(|e| failed(&e))?
                .into();
                Ok(sig.into_vec())
            }
            (PrivateKey::Rsa(k), Scheme::RsaPss(h)) => {
                let k = (**k).clone();
                let sig: Box<[u8]> = match h {
                    Hash::Sha256 => rsa::pss::SigningKey::<sha2_10::Sha256>::new(k)
                        .try_sign_with_rng(&mut OsRng, msg),
                    Hash::Sha384 => rsa::pss::SigningKey::<sha2_10::Sha384>::new(k)
                        .try_sign_with_rng(&mut OsRng, msg),
                    Hash::Sha512 => rsa::pss::SigningKey::<sha2_10::Sha512>::new(k)
                        .try_sign_with_rng(&mut OsRng, msg),
                }
                .map_err(|e| failed(&e))?
                .into();
                Ok(sig.into_vec())
            }
            (PrivateKey::Ed25519(k), Scheme::Ed25519) => Ok(k.sign(msg).to_bytes().to_vec()),
            (_, scheme) => Err(failed(&format!(
                "a {} key does not sign {scheme}",
                self.algorithm()
            ))),
        }
    }

    /// PKCS#8 DER of the key (secret: never logged).
    fn pkcs8_der(&self) -> Result<Vec<u8>> {
        let doc = match self {
            PrivateKey::EcdsaP256(k) => k.to_pkcs8_der(),
            PrivateKey::EcdsaP384(k) => k.to_pkcs8_der(),
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
        if let Ok(k) = p384::ecdsa::SigningKey::from_pkcs8_der(der) {
            return Some(PrivateKey::EcdsaP384(k));
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
                    bad("the decrypted key is not a PKCS#8 ECDSA P-256/P-384, RSA or Ed25519 key".into())
                })
            }
            "PRIVATE KEY" => Self::from_pkcs8_der(&der).ok_or_else(|| {
                bad("a PKCS#8 key that is not ECDSA P-256/P-384, RSA or Ed25519 (other curves are not supported)".into())
            }),
            "EC PRIVATE KEY" => {
                if let Ok(sk) = p256::SecretKey::from_sec1_der(&der) {
                    return Ok(PrivateKey::EcdsaP256(sk.into()));
                }
                let sk = p384::SecretKey::from_sec1_der(&der)
                    .map_err(|_| bad("an EC key that is not on P-256 or P-384".into()))?;
                Ok(PrivateKey::EcdsaP384(sk.into()))
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
            PublicKey::EcdsaP384(_) => Algorithm::EcdsaP384Sha384,
            PublicKey::Rsa(_) => Algorithm::RsaPkcs1Sha256,
            PublicKey::Ed25519(_) => Algorithm::Ed25519,
        }
    }

    /// PEM SubjectPublicKeyInfo (`-----BEGIN PUBLIC KEY-----`), as `cosign.pub`.
    pub fn to_pem(&self) -> Result<String> {
        match self {
            PublicKey::EcdsaP256(k) => k.to_public_key_pem(LineEnding::LF),
            PublicKey::EcdsaP384(k) => k.to_public_key_pem(LineEnding::LF),
            PublicKey::Rsa(k) => k.to_public_key_pem(LineEnding::LF),
            PublicKey::Ed25519(k) => k.to_public_key_pem(LineEnding::LF),
        }
        .map_err(|e| SignError::Key {
            path: String::new(),
            detail: format!("encoding the public key: {e}"),
        })
    }

    /// Read a PEM public key (ECDSA P-256 or P-384, RSA or Ed25519).
    pub fn from_pem(text: &str, path: &str) -> Result<Self> {
        if let Ok(k) = p256::ecdsa::VerifyingKey::from_public_key_pem(text) {
            return Ok(PublicKey::EcdsaP256(k));
        }
        if let Ok(k) = p384::ecdsa::VerifyingKey::from_public_key_pem(text) {
            return Ok(PublicKey::EcdsaP384(k));
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
                "not a PEM public key (-----BEGIN PUBLIC KEY-----) for ECDSA P-256/P-384, RSA or Ed25519"
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

    /// Check `sig` over `msg` in the key's default scheme. ECDSA signatures are ASN.1 DER.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        self.verify_as(self.default_scheme(), msg, sig)
    }

    /// The scheme cosign signs with this key: ES256 (P-256), ES384 (P-384, as sigstore's
    /// algorithm registry pairs them), RS256 (RSASSA-PKCS1-v1_5), Ed25519.
    pub fn default_scheme(&self) -> Scheme {
        self.algorithm().scheme()
    }

    /// The scheme the Notary Project selects for this key (its signature specification's
    /// algorithm selection): ES256 for P-256, ES384 for P-384, PS256/PS384/PS512 for RSA
    /// 2048/3072/4096; other keys cannot make or carry notation signatures.
    pub fn notation_scheme(&self) -> std::result::Result<Scheme, String> {
        match self {
            PublicKey::EcdsaP256(_) => Ok(Scheme::Ecdsa(Hash::Sha256)),
            PublicKey::EcdsaP384(_) => Ok(Scheme::Ecdsa(Hash::Sha384)),
            PublicKey::Rsa(k) => {
                use rsa::traits::PublicKeyParts as _;
                match k.size() * 8 {
                    2048 => Ok(Scheme::RsaPss(Hash::Sha256)),
                    3072 => Ok(Scheme::RsaPss(Hash::Sha384)),
                    4096 => Ok(Scheme::RsaPss(Hash::Sha512)),
                    bits => Err(format!(
                        "an RSA key of {bits} bits: the Notary Project signs with RSA 2048, 3072 or 4096 (PS256, PS384, PS512)"
                    )),
                }
            }
            PublicKey::Ed25519(_) => Err(
                "an Ed25519 key: the Notary Project signs with ECDSA P-256/P-384 (ES256/ES384) or RSA 2048/3072/4096 (PS256/PS384/PS512)"
                    .into(),
            ),
        }
    }

    /// An ECDSA signature's ASN.1 DER as raw `r‖s` (JWS, COSE, Key Vault), each half the curve's
    /// size; `None` when it is not an ECDSA signature of this key's curve.
    pub fn ecdsa_der_to_raw(&self, der: &[u8]) -> Option<Vec<u8>> {
        match self {
            PublicKey::EcdsaP256(_) => p256::ecdsa::Signature::from_der(der)
                .ok()
                .map(|s| s.to_bytes().to_vec()),
            PublicKey::EcdsaP384(_) => p384::ecdsa::Signature::from_der(der)
                .ok()
                .map(|s| s.to_bytes().to_vec()),
            _ => None,
        }
    }

    /// Raw `r‖s` as ASN.1 DER; `None` when it is not the curve's size or not a valid signature.
    pub fn ecdsa_raw_to_der(&self, raw: &[u8]) -> Option<Vec<u8>> {
        match self {
            PublicKey::EcdsaP256(_) => p256::ecdsa::Signature::from_slice(raw)
                .ok()
                .map(|s| s.to_der().as_bytes().to_vec()),
            PublicKey::EcdsaP384(_) => p384::ecdsa::Signature::from_slice(raw)
                .ok()
                .map(|s| s.to_der().as_bytes().to_vec()),
            _ => None,
        }
    }

    /// Check `sig` over `msg` made with `scheme` (ECDSA: ASN.1 DER). A scheme of another key
    /// family does not verify.
    pub fn verify_as(&self, scheme: Scheme, msg: &[u8], sig: &[u8]) -> bool {
        use p256::ecdsa::signature::Verifier as _;
        use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
        match (self, scheme) {
            (PublicKey::EcdsaP256(k), Scheme::Ecdsa(h)) => p256::ecdsa::Signature::from_der(sig)
                .is_ok_and(|s| k.verify_prehash(&h.digest(msg), &s).is_ok()),
            (PublicKey::EcdsaP384(k), Scheme::Ecdsa(h)) => p384::ecdsa::Signature::from_der(sig)
                .is_ok_and(|s| k.verify_prehash(&h.digest(msg), &s).is_ok()),
            (PublicKey::Rsa(k), Scheme::RsaPkcs1(h)) => {
                let Ok(s) = rsa::pkcs1v15::Signature::try_from(sig) else {
                    return false;
                };
                let k = (**k).clone();
                match h {
                    Hash::Sha256 => rsa::pkcs1v15::VerifyingKey::<sha2_10::Sha256>::new(k)
                        .verify(msg, &s)
                        .is_ok(),
                    Hash::Sha384 => rsa::pkcs1v15::VerifyingKey::<sha2_10::Sha384>::new(k)
                        .verify(msg, &s)
                        .is_ok(),
                    Hash::Sha512 => rsa::pkcs1v15::VerifyingKey::<sha2_10::Sha512>::new(k)
                        .verify(msg, &s)
                        .is_ok(),
                }
            }
            (PublicKey::Rsa(k), Scheme::RsaPss(h)) => {
                let Ok(s) = rsa::pss::Signature::try_from(sig) else {
                    return false;
                };
                let k = (**k).clone();
                match h {
                    Hash::Sha256 => rsa::pss::VerifyingKey::<sha2_10::Sha256>::new(k)
                        .verify(msg, &s)
                        .is_ok(),
                    Hash::Sha384 => rsa::pss::VerifyingKey::<sha2_10::Sha384>::new(k)
                        .verify(msg, &s)
                        .is_ok(),
                    Hash::Sha512 => rsa::pss::VerifyingKey::<sha2_10::Sha512>::new(k)
                        .verify(msg, &s)
                        .is_ok(),
                }
            }
            (PublicKey::Ed25519(k), Scheme::Ed25519) => {
                ed25519_dalek::Signature::from_slice(sig).is_ok_and(|s| k.verify(msg, &s).is_ok())
            }
            _ => false,
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

    #[test]
    fn p384_keys_sign_es384_and_schemes_have_jose_names() {
        let k = PrivateKey::EcdsaP384(p384::ecdsa::SigningKey::random(&mut OsRng));
        let sig = k.sign(b"m").unwrap();
        let p = k.public_key();
        assert_eq!(p.default_scheme(), Scheme::Ecdsa(Hash::Sha384));
        assert!(p.verify(b"m", &sig));
        assert!(!p.verify(b"n", &sig));
        assert!(!p.verify_as(Scheme::Ecdsa(Hash::Sha256), b"m", &sig));
        let pem = pem_encode("PRIVATE KEY", &k.pkcs8_der().unwrap());
        let read = PrivateKey::from_pem(&pem, "k", &|| panic!("no password")).unwrap();
        assert_eq!(read.algorithm(), Algorithm::EcdsaP384Sha384);
        let public = PublicKey::from_pem(&p.to_pem().unwrap(), "p").unwrap();
        assert!(public.verify(b"m", &read.sign(b"m").unwrap()));
        let raw = p.ecdsa_der_to_raw(&sig).unwrap();
        assert_eq!(raw.len(), 96);
        assert_eq!(p.ecdsa_raw_to_der(&raw).unwrap(), sig);
        assert!(p.ecdsa_raw_to_der(&raw[..64]).is_none());
        assert_eq!(p.notation_scheme().unwrap().jose(), "ES384");
        assert!(k.sign_as(Scheme::RsaPss(Hash::Sha256), b"m").is_err());
        for n in [
            "ES256", "ES384", "ES512", "RS256", "PS256", "PS384", "PS512", "EdDSA",
        ] {
            assert_eq!(Scheme::from_jose(n).unwrap().jose(), n);
        }
        assert!(Scheme::from_jose("HS256").is_none());
        assert!(Scheme::from_jose("ES").is_none());
        let ed = PrivateKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]));
        assert!(ed.public_key().notation_scheme().is_err());
    }

    fn ed25519_pem(k: &PrivateKey) -> String {
        pem_encode("PRIVATE KEY", &k.pkcs8_der().unwrap())
    }
}
