//! # ocibuild-sign — signing and verification in cosign's format
//!
//! - [`keys`]: cosign's encrypted private keys (`ENCRYPTED SIGSTORE PRIVATE KEY`: scrypt +
//!   NaCl secretbox around PKCS#8), plain PEM keys (ECDSA P-256 and P-384, RSA, Ed25519), PEM
//!   public keys, and the signature schemes ([`keys::Scheme`]: cosign's per key, notation's per
//!   key).
//! - [`signer`]: the [`Signer`](signer::Signer) trait — sign bytes in the key's default scheme or a
//!   given one, name the public key and algorithm — and the file-key implementation; a
//!   key-management service plugs in here.
//! - [`cosign`]: simple-signing signatures (`sha256-<hex>.sig`) and in-toto attestations in DSSE
//!   envelopes (`sha256-<hex>.att`), stored and verified as cosign does, in registries and in OCI
//!   layouts, or as OCI 1.1 referrers.
//! - [`dsse`]: DSSE envelopes, PAE, in-toto Statement v1, cosign's `--type` names.
//! - [`slsa`]: the SLSA Provenance v1 predicate.
//! - [`azurekv`]: Azure Key Vault — a signer whose key stays in the vault, certificates, key
//!   creation.
//! - [`notation`]: Notary Project signatures (JWS envelopes, referrers, notation's trust policy
//!   and trust store); [`x509`]: the certificate chains they carry.
//!
//! No transparency log: signatures are key-based, and verifiers are told to skip the log
//! (`cosign verify --insecure-ignore-tlog=true`; see docs/signing.md).

pub mod azurekv;
pub mod cosign;
pub mod dsse;
pub mod error;
pub mod keys;
pub mod notation;
pub mod signer;
pub mod slsa;
pub mod x509;

pub use error::{Result, SignError};
