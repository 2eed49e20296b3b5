//! X.509 certificates as the Notary Project uses them: PEM bundles (a signing chain, a trust
//! store's certificates), subjects as attribute maps, validity, the CA and key-usage extensions,
//! and one link of a chain (is `cert` signed by `issuer`?).
//!
//! Parsing is RustCrypto's `x509-cert`; signatures are checked with the key types of
//! [`crate::keys`]: ECDSA (P-256, P-384) and RSA PKCS#1 v1.5, each with SHA-256, SHA-384 or SHA-512.

use std::collections::BTreeMap;

use der::{Decode as _, Encode as _};
use pkcs8::DecodePublicKey as _;
use sha2_10::Digest as _;
use x509_cert::Certificate;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage};

use crate::error::{Result, SignError};
use crate::keys::{Hash, PublicKey, Scheme};

/// The certificate signature algorithms a chain may use: (OID, name, scheme).
const SIGNATURE_ALGORITHMS: &[(&str, &str, Scheme)] = &[
    (
        "1.2.840.10045.4.3.2",
        "ecdsa-with-SHA256",
        Scheme::Ecdsa(Hash::Sha256),
    ),
    (
        "1.2.840.10045.4.3.3",
        "ecdsa-with-SHA384",
        Scheme::Ecdsa(Hash::Sha384),
    ),
    (
        "1.2.840.10045.4.3.4",
        "ecdsa-with-SHA512",
        Scheme::Ecdsa(Hash::Sha512),
    ),
    (
        "1.2.840.113549.1.1.11",
        "sha256WithRSAEncryption",
        Scheme::RsaPkcs1(Hash::Sha256),
    ),
    (
        "1.2.840.113549.1.1.12",
        "sha384WithRSAEncryption",
        Scheme::RsaPkcs1(Hash::Sha384),
    ),
    (
        "1.2.840.113549.1.1.13",
        "sha512WithRSAEncryption",
        Scheme::RsaPkcs1(Hash::Sha512),
    ),
];
/// id-kp-codeSigning
const EKU_CODE_SIGNING: &str = "1.3.6.1.5.5.7.3.3";
/// anyExtendedKeyUsage
const EKU_ANY: &str = "2.5.29.37.0";

/// One certificate: its DER bytes and the parsed form.
#[derive(Clone)]
pub struct Cert {
    pub der: Vec<u8>,
    cert: Certificate,
}

impl std::fmt::Debug for Cert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cert({})", self.subject())
    }
}

impl Cert {
    /// Parse DER bytes; `what` names them for errors.
    pub fn from_der(der: &[u8], what: &str) -> Result<Self> {
        let cert = Certificate::from_der(der).map_err(|e| SignError::Invalid {
            what: what.to_string(),
            detail: format!("not an X.509 certificate: {e}"),
        })?;
        Ok(Self {
            der: der.to_vec(),
            cert,
        })
    }

    /// Every certificate of a PEM bundle (`CERTIFICATE` blocks, in order).
    pub fn from_pem_bundle(text: &[u8], what: &str) -> Result<Vec<Self>> {
        // x509-cert's PEM chain reader panics (subtract with overflow) on a text without any block
        if !text
            .windows(b"-----BEGIN CERTIFICATE-----".len())
            .any(|w| w == b"-----BEGIN CERTIFICATE-----")
        {
            return Err(SignError::Invalid {
                what: what.to_string(),
                detail: "holds no CERTIFICATE block".into(),
            });
        }
        let certs = Certificate::load_pem_chain(text).map_err(|e| SignError::Invalid {
            what: what.to_string(),
            detail: format!("not a PEM certificate bundle: {e}"),
        })?;
        if certs.is_empty() {
            return Err(SignError::Invalid {
                what: what.to_string(),
                detail: "holds no CERTIFICATE block".into(),
            });
        }
        certs
            .into_iter()
            .map(|cert| {
                let der = cert.to_der().map_err(|e| SignError::Invalid {
                    what: what.to_string(),
                    detail: format!("a certificate does not re-encode: {e}"),
                })?;
                Ok(Self { der, cert })
            })
            .collect()
    }

    /// Read a PEM bundle file.
    pub fn read_pem_file(path: &std::path::Path) -> Result<Vec<Self>> {
        let text = std::fs::read(path).map_err(|e| SignError::Io {
            what: format!("reading the certificates {}", path.display()),
            source: e,
        })?;
        Self::from_pem_bundle(&text, &path.display().to_string())
    }

    /// The subject as RFC 4514 text (`CN=…,O=…,C=…`).
    pub fn subject(&self) -> String {
        self.cert.tbs_certificate.subject.to_string()
    }

    /// The subject's attributes by short name (`C`, `ST`, `L`, `O`, `OU`, `CN`, …).
    pub fn subject_attributes(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for rdn in self.cert.tbs_certificate.subject.0.iter() {
            for atv in rdn.0.iter() {
                let text = atv.to_string();
                if let Some((k, v)) = text.split_once('=') {
                    out.insert(k.trim().to_ascii_uppercase(), unescape(v));
                }
            }
        }
        out
    }

    pub fn issuer(&self) -> String {
        self.cert.tbs_certificate.issuer.to_string()
    }

    /// `notBefore` and `notAfter`, Unix seconds.
    pub fn validity(&self) -> (u64, u64) {
        let v = &self.cert.tbs_certificate.validity;
        (
            v.not_before.to_unix_duration().as_secs(),
            v.not_after.to_unix_duration().as_secs(),
        )
    }

    /// The SHA-256 of the DER bytes, lowercase hex (the `x509chain.thumbprint#S256` form).
    pub fn thumbprint(&self) -> String {
        hex(&sha2_10::Sha256::digest(&self.der))
    }

    /// The subject public key, when it is one the crate verifies with (P-256, P-384, RSA).
    pub fn public_key(&self) -> Result<PublicKey> {
        let spki = self
            .cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| self.invalid(format!("its public key does not encode: {e}")))?;
        if let Ok(k) = p256::ecdsa::VerifyingKey::from_public_key_der(&spki) {
            return Ok(PublicKey::EcdsaP256(k));
        }
        if let Ok(k) = p384::ecdsa::VerifyingKey::from_public_key_der(&spki) {
            return Ok(PublicKey::EcdsaP384(k));
        }
        if let Ok(k) = rsa::RsaPublicKey::from_public_key_der(&spki) {
            return Ok(PublicKey::Rsa(Box::new(k)));
        }
        Err(self.invalid(format!(
            "its key type ({}) is not supported: use ECDSA P-256 or P-384, or RSA",
            self.cert
                .tbs_certificate
                .subject_public_key_info
                .algorithm
                .oid
        )))
    }

    fn invalid(&self, detail: String) -> SignError {
        SignError::Invalid {
            what: format!("certificate `{}`", self.subject()),
            detail,
        }
    }

    /// `basicConstraints` cA (false when absent).
    pub fn is_ca(&self) -> bool {
        matches!(
            self.cert.tbs_certificate.get::<BasicConstraints>(),
            Ok(Some((_, bc))) if bc.ca
        )
    }

    /// `keyUsage`: (present, digitalSignature, keyCertSign).
    pub fn key_usage(&self) -> (bool, bool, bool) {
        match self.cert.tbs_certificate.get::<KeyUsage>() {
            Ok(Some((_, ku))) => (true, ku.digital_signature(), ku.key_cert_sign()),
            _ => (false, false, false),
        }
    }

    /// The extended key usages (dotted OIDs), `None` when the extension is absent.
    pub fn extended_key_usage(&self) -> Option<Vec<String>> {
        match self.cert.tbs_certificate.get::<ExtendedKeyUsage>() {
            Ok(Some((_, eku))) => Some(eku.0.iter().map(|o| o.to_string()).collect()),
            _ => None,
        }
    }

    /// Self-issued and self-signed.
    pub fn is_self_signed(&self) -> bool {
        self.issuer() == self.subject() && self.signed_by(self).is_ok()
    }

    /// Whether `issuer`'s key made this certificate's signature (and names it as issuer).
    pub fn signed_by(&self, issuer: &Cert) -> Result<()> {
        if self.cert.tbs_certificate.issuer != issuer.cert.tbs_certificate.subject {
            return Err(self.invalid(format!(
                "its issuer `{}` is not `{}`",
                self.issuer(),
                issuer.subject()
            )));
        }
        let alg = self.cert.signature_algorithm.oid.to_string();
        let Some(&(_, name, scheme)) = SIGNATURE_ALGORITHMS.iter().find(|(o, _, _)| *o == alg)
        else {
            return Err(self.invalid(format!(
                "its signature algorithm {alg} is not supported (ecdsa-with-SHA256/384/512 and sha256/384/512WithRSAEncryption are)"
            )));
        };
        let tbs = self
            .cert
            .tbs_certificate
            .to_der()
            .map_err(|e| self.invalid(format!("it does not encode: {e}")))?;
        let sig = self.cert.signature.raw_bytes();
        let key = issuer.public_key()?;
        if !key.verify_as(scheme, &tbs, sig) {
            return Err(self.invalid(format!(
                "its signature ({name}) does not verify with the key of `{}`",
                issuer.subject()
            )));
        }
        Ok(())
    }

    /// The Notary Project's requirements on a signing (leaf) certificate: not a CA, keyUsage
    /// digitalSignature, and an extendedKeyUsage — when present — of codeSigning.
    pub fn check_signing_leaf(&self) -> Result<()> {
        if self.is_ca() {
            return Err(self.invalid(
                "it is a CA certificate (basicConstraints cA=true); sign with a leaf certificate"
                    .into(),
            ));
        }
        let (present, ds, _) = self.key_usage();
        if !present || !ds {
            return Err(self.invalid(
                "its keyUsage lacks digitalSignature, which a Notary Project signing certificate needs"
                    .into(),
            ));
        }
        if let Some(eku) = self.extended_key_usage()
            && (eku.iter().any(|o| o == EKU_ANY) || !eku.iter().any(|o| o == EKU_CODE_SIGNING))
        {
            return Err(self.invalid(
                "its extendedKeyUsage must be codeSigning (or absent) for a Notary Project signing certificate"
                    .into(),
            ));
        }
        Ok(())
    }

    /// A CA certificate of a chain: basicConstraints cA and (when keyUsage is present) keyCertSign.
    pub fn check_ca(&self) -> Result<()> {
        if !self.is_ca() {
            return Err(self.invalid(
                "it issues a certificate of the chain but is not a CA (basicConstraints cA)".into(),
            ));
        }
        let (present, _, kcs) = self.key_usage();
        if present && !kcs {
            return Err(self.invalid("its keyUsage lacks keyCertSign".into()));
        }
        Ok(())
    }
}

/// Check a chain leaf → root (as `x5c` orders it): each certificate is signed by the next, the
/// issuers are CAs, the leaf is a signing certificate.
pub fn check_chain(chain: &[Cert]) -> Result<()> {
    let Some(leaf) = chain.first() else {
        return Err(SignError::Invalid {
            what: "the certificate chain".into(),
            detail: "is empty".into(),
        });
    };
    leaf.check_signing_leaf()?;
    for pair in chain.windows(2) {
        pair[1].check_ca()?;
        pair[0].signed_by(&pair[1])?;
    }
    Ok(())
}

/// Parse an RFC 4514 / notation-style DN (`C=US, ST=WA, O=Acme, CN=builder`) into attributes.
pub fn parse_dn(dn: &str) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut cur = String::new();
    let mut parts = Vec::new();
    let mut esc = false;
    for c in dn.chars() {
        if esc {
            cur.push('\\');
            cur.push(c);
            esc = false;
        } else if c == '\\' {
            esc = true;
        } else if c == ',' || c == '+' {
            parts.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    parts.push(cur);
    for p in parts {
        let (k, v) = p.split_once('=')?;
        let k = k.trim().to_ascii_uppercase();
        if k.is_empty() {
            return None;
        }
        let k = match k.as_str() {
            "S" => "ST".to_string(),
            _ => k,
        };
        if out.insert(k, unescape(v.trim())).is_some() {
            return None;
        }
    }
    Some(out)
}

fn unescape(v: &str) -> String {
    let mut out = String::new();
    let mut esc = false;
    for c in v.chars() {
        if esc {
            out.push(c);
            esc = false;
        } else if c == '\\' {
            esc = true;
        } else {
            out.push(c);
        }
    }
    out
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_without_certificates_is_an_error_not_a_panic() {
        for text in [
            "",
            "not pem",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ] {
            let e = Cert::from_pem_bundle(text.as_bytes(), "chain.pem").unwrap_err();
            assert!(e.to_string().contains("no CERTIFICATE block"), "{e}");
        }
    }

    #[test]
    fn dns_parse_as_notation_writes_them() {
        let m =
            parse_dn("C=US, ST=WA, L=Seattle, O=wabbit-networks.io, CN=builder\\, one").unwrap();
        assert_eq!(m["C"], "US");
        assert_eq!(m["ST"], "WA");
        assert_eq!(m["CN"], "builder, one");
        assert!(parse_dn("C=US, C=DE").is_none());
        assert!(parse_dn("nonsense").is_none());
    }
}
