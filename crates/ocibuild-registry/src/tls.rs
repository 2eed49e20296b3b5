//! TLS for registries: the system's roots plus the certificates the user trusts for a host
//! (`--ca-cert`, `certs.d/HOST/*.crt`), and one thing webpki alone refuses — a server certificate
//! that is byte-identical to one of those explicitly trusted certificates, even when it is a
//! self-signed certificate with `basicConstraints CA:TRUE` (what `openssl req -x509 …` makes, and
//! what docker, podman, skopeo and containerd accept). Such a pinned certificate is still checked
//! for the host name (or IP address) and its validity dates, and the handshake signature is still
//! verified with its key; every other certificate gets normal chain validation.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

use crate::error::{RegistryError, Result};

/// Certificates the user trusts for one host, and the files they came from.
#[derive(Clone, Debug, Default)]
pub struct TrustedCerts {
    pub certs: Vec<CertificateDer<'static>>,
    pub files: Vec<PathBuf>,
}

impl TrustedCerts {
    /// Read every PEM certificate in `files`.
    pub fn load(files: &[PathBuf]) -> Result<Self> {
        let mut out = TrustedCerts::default();
        for p in files {
            out.add_file(p)?;
        }
        Ok(out)
    }

    fn add_file(&mut self, p: &Path) -> Result<()> {
        let bytes = std::fs::read(p).map_err(|source| RegistryError::Io {
            what: format!("reading CA certificate {}", p.display()),
            source,
        })?;
        let mut n = 0usize;
        for c in CertificateDer::pem_slice_iter(&bytes) {
            let c = c.map_err(|e| RegistryError::Invalid {
                what: format!("CA certificate {}", p.display()),
                detail: format!("not a PEM certificate: {e}"),
            })?;
            self.certs.push(c);
            n += 1;
        }
        if n == 0 {
            return Err(RegistryError::Invalid {
                what: format!("CA certificate {}", p.display()),
                detail: "no `-----BEGIN CERTIFICATE-----` block in it (a PEM certificate is expected, like the ca.crt or domain.crt the registry serves)".into(),
            });
        }
        self.files.push(p.to_path_buf());
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }
}

/// A rustls client configuration for one host: system roots plus `trusted` as extra roots, and
/// `trusted` pinned (see the module docs). ALPN offers h2 and http/1.1, as reqwest does.
pub fn client_config(trusted: &TrustedCerts) -> Result<rustls::ClientConfig> {
    let provider = CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    let setup = |e: rustls::Error| RegistryError::Invalid {
        what: "TLS setup".into(),
        detail: e.to_string(),
    };
    let inner = rustls_platform_verifier::Verifier::new_with_extra_roots(
        trusted.certs.iter().cloned(),
        provider.clone(),
    )
    .map_err(setup)?;
    let verifier = PinningVerifier {
        inner: Arc::new(inner),
        pinned: trusted.certs.clone(),
        provider: provider.clone(),
    };
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(setup)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}

/// Normal verification, except for a server certificate identical to a pinned one.
struct PinningVerifier {
    inner: Arc<dyn ServerCertVerifier>,
    pinned: Vec<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
}

impl fmt::Debug for PinningVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinningVerifier")
            .field("pinned", &self.pinned.len())
            .finish_non_exhaustive()
    }
}

impl ServerCertVerifier for PinningVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        if self
            .pinned
            .iter()
            .any(|p| p.as_ref() == end_entity.as_ref())
        {
            verify_pinned(end_entity, server_name, now)?;
            return Ok(ServerCertVerified::assertion());
        }
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A pinned certificate must still name the host and be within its validity dates.
fn verify_pinned(
    cert: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> std::result::Result<(), rustls::Error> {
    let bad = |e: CertificateError| rustls::Error::InvalidCertificate(e);
    let ee =
        webpki::EndEntityCert::try_from(cert).map_err(|_| bad(CertificateError::BadEncoding))?;
    ee.verify_is_valid_for_subject_name(server_name)
        .map_err(|_| bad(CertificateError::NotValidForName))?;
    let (not_before, not_after) =
        validity(cert.as_ref()).ok_or(bad(CertificateError::BadEncoding))?;
    let now = now.as_secs();
    if now < not_before {
        return Err(bad(CertificateError::NotValidYet));
    }
    if now > not_after {
        return Err(bad(CertificateError::Expired));
    }
    Ok(())
}

/// One DER element: (tag, contents, the rest of the input).
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// A certificate's `notBefore` and `notAfter` as Unix seconds.
fn validity(cert: &[u8]) -> Option<(u64, u64)> {
    const SEQUENCE: u8 = 0x30;
    let (SEQUENCE, cert, _) = der(cert)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = der(cert)? else {
        return None;
    };
    let mut rest = tbs;
    // [0] version (optional), serialNumber, signature, issuer, then validity
    let (tag, _, r) = der(rest)?;
    if tag == 0xa0 {
        rest = r;
    }
    for _ in 0..3 {
        rest = der(rest)?.2;
    }
    let (SEQUENCE, validity, _) = der(rest)? else {
        return None;
    };
    let (t1, nb, r) = der(validity)?;
    let (t2, na, _) = der(r)?;
    Some((asn1_time(t1, nb)?, asn1_time(t2, na)?))
}

/// UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`) as Unix seconds.
fn asn1_time(tag: u8, v: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(v).ok()?;
    let s = s.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 if s.len() == 12 => {
            let yy: u64 = s[..2].parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &s[2..])
        }
        0x18 if s.len() == 14 => (s[..4].parse().ok()?, &s[4..]),
        _ => return None,
    };
    if !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |i: usize| rest[i..i + 2].parse::<u64>().ok();
    let (month, day, h, m, sec) = (n(0)?, n(2)?, n(4)?, n(6)?, n(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    // days from civil (Howard Hinnant), for years >= 1970
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some(days * 86_400 + h * 3600 + m * 60 + sec)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn asn1_times() {
        assert_eq!(asn1_time(0x17, b"700101000000Z"), Some(0));
        assert_eq!(asn1_time(0x17, b"000301000000Z"), Some(951_868_800));
        assert_eq!(asn1_time(0x18, b"20261206120000Z"), Some(1_796_558_400));
        assert_eq!(asn1_time(0x17, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(asn1_time(0x17, b"7001010000Z"), None);
        assert_eq!(asn1_time(0x18, b"20261306120000Z"), None);
    }

    #[test]
    fn der_lengths() {
        assert_eq!(
            der(&[0x30, 0x01, 0xff, 0x00]),
            Some((0x30, &[0xff][..], &[0x00][..]))
        );
        let long = [&[0x04, 0x81, 0x80][..], &[7u8; 0x80]].concat();
        assert_eq!(der(&long).map(|(_, c, _)| c.len()), Some(0x80));
        assert_eq!(der(&[0x30, 0x05, 0x00]), None);
    }
}
