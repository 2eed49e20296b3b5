//! Notary Project signatures (what `notation sign` / `notation verify` make and check).
//!
//! - The signed payload is `{"targetArtifact": <descriptor of the image manifest>}` of content
//!   type [`PAYLOAD_CONTENT_TYPE`].
//! - The algorithm follows the signing key, as the specification's algorithm selection says:
//!   ES256 (P-256), ES384 (P-384), PS256/PS384/PS512 (RSASSA-PSS for RSA 2048/3072/4096, salt
//!   length = hash length); verification requires the envelope's algorithm to be the leaf key's.
//! - The JWS envelope ([`JWS_MEDIA_TYPE`]) is the flattened JWS JSON serialization: a protected
//!   header with `alg`, `cty`, `crit`, `io.cncf.notary.signingScheme` (`notary.x509`),
//!   `io.cncf.notary.signingTime` and an optional `io.cncf.notary.expiry`; the unprotected header
//!   carries the signing certificate chain in `x5c` (leaf first) and the signing agent.
//! - The COSE envelope ([`COSE_MEDIA_TYPE`]) is a COSE_Sign1_Tagged message with the same
//!   protected attributes (the times as CBOR epoch dates, tag 1) and the chain in `x5chain`.
//! - Stored as an OCI 1.1 referrer: an image manifest with `artifactType`
//!   [`ARTIFACT_TYPE`], the empty config, one layer (the envelope), `subject` = the image, and the
//!   annotation [`THUMBPRINT_ANNOTATION`] (the SHA-256 of each chain certificate). Registries
//!   without the referrers API get the `sha256-<hex>` tag-schema fallback index.
//! - Verification follows notation's trust policy ([`TrustPolicyDocument`]) and trust store
//!   ([`TrustStore`]): integrity, authenticity (chain to a trust-store certificate and a trusted
//!   identity), authentic timestamp (the chain valid now: there is no TSA countersignature),
//!   expiry, and revocation (not checked: no OCSP or CRL fetching; reported as a note).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use ocibuild_oci::artifact::{EMPTY_JSON, artifact_manifest};
use ocibuild_oci::image::{Descriptor, Manifest, to_json_bytes};
use ocibuild_oci::{Digest, media};
use ocibuild_registry::artifacts::Target;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{Result, SignError};
use crate::keys::{Hash, PublicKey, Scheme};
use crate::signer::Signer;
use crate::x509::{Cert, check_chain, parse_dn};

pub const ARTIFACT_TYPE: &str = "application/vnd.cncf.notary.signature";
pub const JWS_MEDIA_TYPE: &str = "application/jose+json";
pub const COSE_MEDIA_TYPE: &str = "application/cose";
pub const PAYLOAD_CONTENT_TYPE: &str = "application/vnd.cncf.notary.payload.v1+json";
pub const THUMBPRINT_ANNOTATION: &str = "io.cncf.notary.x509chain.thumbprint#S256";
pub const SIGNING_SCHEME: &str = "io.cncf.notary.signingScheme";
pub const SIGNING_TIME: &str = "io.cncf.notary.signingTime";
pub const EXPIRY: &str = "io.cncf.notary.expiry";
pub const SIGNING_AGENT: &str = "io.cncf.notary.signingAgent";
pub const TIMESTAMP: &str = "io.cncf.notary.timestamp";
pub const SCHEME_X509: &str = "notary.x509";
pub const SCHEME_SIGNING_AUTHORITY: &str = "notary.x509.signingAuthority";

/// The envelope format of a signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnvelopeFormat {
    Jws,
    Cose,
}

/// The flattened JWS JSON serialization notation writes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Jws {
    pub payload: String,
    pub protected: String,
    pub header: Unprotected,
    pub signature: String,
}

/// The JWS unprotected header.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Unprotected {
    #[serde(
        rename = "io.cncf.notary.timestamp",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub timestamp: Option<String>,
    /// Standard base64 DER certificates, leaf first.
    #[serde(default)]
    pub x5c: Vec<String>,
    #[serde(
        rename = "io.cncf.notary.signingAgent",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub signing_agent: Option<String>,
}

/// What to sign with and how.
pub struct SignRequest<'a> {
    /// The signing certificate chain, leaf first (the leaf's key is the signer's).
    pub chain: &'a [Cert],
    /// How long the signature is valid (seconds from the signing time).
    pub expiry: Option<u64>,
    /// User metadata: the target descriptor's annotations in the payload.
    pub user_metadata: BTreeMap<String, String>,
    pub format: EnvelopeFormat,
    /// `io.cncf.notary.signingAgent`.
    pub signing_agent: String,
    /// The signing time (Unix seconds).
    pub now: u64,
}

/// A stored signature.
#[derive(Clone, Debug, Serialize)]
pub struct Signed {
    pub manifest: Digest,
    pub envelope: Digest,
    pub media_type: String,
}

fn invalid(what: impl Into<String>, detail: impl Into<String>) -> SignError {
    SignError::Invalid {
        what: what.into(),
        detail: detail.into(),
    }
}

/// The scheme notation signs with `signer`'s key (ES256, ES384, PS256, PS384, PS512), or why
/// it cannot.
fn signing_scheme(signer: &dyn Signer) -> Result<(Scheme, PublicKey)> {
    let key = signer.public_key()?;
    let scheme = key.notation_scheme().map_err(|why| {
        invalid(
            signer.describe(),
            format!("cannot make Notary Project signatures: {why}"),
        )
    })?;
    Ok((scheme, key))
}

/// Sign `input` for an envelope: ECDSA signatures raw `r‖s` (JWS and COSE), RSASSA-PSS as is.
fn envelope_signature(
    signer: &dyn Signer,
    scheme: Scheme,
    key: &PublicKey,
    input: &[u8],
) -> Result<Vec<u8>> {
    let sig = signer.sign_as(scheme, input)?;
    match scheme {
        Scheme::Ecdsa(_) => key.ecdsa_der_to_raw(&sig).ok_or_else(|| {
            invalid(
                signer.describe(),
                format!("made a malformed {scheme} signature"),
            )
        }),
        _ => Ok(sig),
    }
}

/// The COSE algorithm of a notation scheme.
fn cose_alg(scheme: Scheme) -> Option<coset::iana::Algorithm> {
    use coset::iana::Algorithm as A;
    Some(match scheme {
        Scheme::Ecdsa(Hash::Sha256) => A::ES256,
        Scheme::Ecdsa(Hash::Sha384) => A::ES384,
        Scheme::Ecdsa(Hash::Sha512) => A::ES512,
        Scheme::RsaPss(Hash::Sha256) => A::PS256,
        Scheme::RsaPss(Hash::Sha384) => A::PS384,
        Scheme::RsaPss(Hash::Sha512) => A::PS512,
        _ => return None,
    })
}

/// The payload: `{"targetArtifact": descriptor}`.
pub fn payload(subject: &Descriptor, user_metadata: &BTreeMap<String, String>) -> Result<Vec<u8>> {
    let mut target = json!({
        "mediaType": subject.media_type,
        "digest": subject.digest.to_string(),
        "size": subject.size,
    });
    if !user_metadata.is_empty()
        && let Some(o) = target.as_object_mut()
    {
        o.insert("annotations".into(), json!(user_metadata));
    }
    serde_json::to_vec(&json!({ "targetArtifact": target }))
        .map_err(|e| invalid("the notation payload", e.to_string()))
}

/// Make the JWS envelope for `subject`.
pub fn jws_envelope(
    subject: &Descriptor,
    signer: &dyn Signer,
    req: &SignRequest<'_>,
) -> Result<Vec<u8>> {
    let (scheme, key) = signing_scheme(signer)?;
    let mut crit = vec![SIGNING_SCHEME];
    let mut protected = serde_json::Map::new();
    protected.insert("alg".into(), json!(scheme.jose()));
    protected.insert("cty".into(), json!(PAYLOAD_CONTENT_TYPE));
    protected.insert(SIGNING_SCHEME.into(), json!(SCHEME_X509));
    protected.insert(
        SIGNING_TIME.into(),
        json!(ocibuild_oci::image::rfc3339(req.now)),
    );
    if let Some(e) = req.expiry {
        protected.insert(
            EXPIRY.into(),
            json!(ocibuild_oci::image::rfc3339(req.now.saturating_add(e))),
        );
        crit.push(EXPIRY);
    }
    protected.insert("crit".into(), json!(crit));
    let protected = serde_json::to_vec(&Value::Object(protected))
        .map_err(|e| invalid("the JWS protected header", e.to_string()))?;
    let payload = payload(subject, &req.user_metadata)?;
    let protected_b64 = B64URL.encode(&protected);
    let payload_b64 = B64URL.encode(&payload);
    let signing_input = format!("{protected_b64}.{payload_b64}");
    let raw = envelope_signature(signer, scheme, &key, signing_input.as_bytes())?;
    let env = Jws {
        payload: payload_b64,
        protected: protected_b64,
        header: Unprotected {
            timestamp: None,
            x5c: req.chain.iter().map(|c| B64.encode(&c.der)).collect(),
            signing_agent: Some(req.signing_agent.clone()),
        },
        signature: B64URL.encode(raw),
    };
    serde_json::to_vec(&env).map_err(|e| invalid("the JWS envelope", e.to_string()))
}

/// COSE header label of the certificate chain (`x5chain`, RFC 9360).
const X5CHAIN: i64 = 33;
/// CBOR tag of an epoch-based date/time.
const EPOCH_TAG: u64 = 1;

/// Make the COSE_Sign1_Tagged envelope for `subject`: protected `alg`, `crit`, content type,
/// signing scheme, signing time and expiry (epoch dates, tag 1); unprotected `x5chain` and the
/// signing agent; the payload attached.
pub fn cose_envelope(
    subject: &Descriptor,
    signer: &dyn Signer,
    req: &SignRequest<'_>,
) -> Result<Vec<u8>> {
    use coset::TaggedCborSerializable as _;
    use coset::cbor::value::Value as Cbor;
    let (scheme, key) = signing_scheme(signer)?;
    let alg = cose_alg(scheme).ok_or_else(|| {
        invalid(
            signer.describe(),
            format!("{scheme} is not a COSE algorithm of the Notary Project"),
        )
    })?;
    let epoch = |t: u64| Cbor::Tag(EPOCH_TAG, Box::new(Cbor::Integer(t.into())));
    let mut h = coset::HeaderBuilder::new()
        .algorithm(alg)
        .add_critical_label(coset::RegisteredLabel::Text(SIGNING_SCHEME.into()))
        .content_type(PAYLOAD_CONTENT_TYPE.into())
        .text_value(SIGNING_SCHEME.into(), Cbor::Text(SCHEME_X509.into()))
        .text_value(SIGNING_TIME.into(), epoch(req.now));
    if let Some(e) = req.expiry {
        h = h
            .add_critical_label(coset::RegisteredLabel::Text(EXPIRY.into()))
            .text_value(EXPIRY.into(), epoch(req.now.saturating_add(e)));
    }
    let unprotected = coset::HeaderBuilder::new()
        .value(
            X5CHAIN,
            Cbor::Array(
                req.chain
                    .iter()
                    .map(|c| Cbor::Bytes(c.der.clone()))
                    .collect(),
            ),
        )
        .text_value(SIGNING_AGENT.into(), Cbor::Text(req.signing_agent.clone()))
        .build();
    let payload = payload(subject, &req.user_metadata)?;
    let msg = coset::CoseSign1Builder::new()
        .protected(h.build())
        .unprotected(unprotected)
        .payload(payload)
        .try_create_signature(b"", |tbs| envelope_signature(signer, scheme, &key, tbs))?
        .build();
    msg.to_tagged_vec()
        .map_err(|e| invalid("the COSE envelope", e.to_string()))
}

/// Check that `chain` is a signing chain for `signer`'s key.
pub fn check_signing_chain(chain: &[Cert], signer: &dyn Signer) -> Result<()> {
    check_chain(chain)?;
    let leaf = chain
        .first()
        .ok_or_else(|| invalid("the certificate chain", "is empty"))?;
    let want = signer.public_key()?.to_pem()?;
    if leaf.public_key()?.to_pem()? != want {
        return Err(invalid(
            format!("certificate `{}`", leaf.subject()),
            format!(
                "is not the certificate of {} (its public key differs): pass the key's own certificate chain, leaf first",
                signer.describe()
            ),
        ));
    }
    Ok(())
}

/// Sign `subject` at `target` and store the signature as a referrer.
pub fn sign(
    target: &Target<'_>,
    subject: &Descriptor,
    signer: &dyn Signer,
    req: &SignRequest<'_>,
) -> Result<Signed> {
    check_signing_chain(req.chain, signer)?;
    let (bytes, media_type) = match req.format {
        EnvelopeFormat::Jws => (jws_envelope(subject, signer, req)?, JWS_MEDIA_TYPE),
        EnvelopeFormat::Cose => (cose_envelope(subject, signer, req)?, COSE_MEDIA_TYPE),
    };
    let ed = target.put_blob(&bytes)?;
    let layer = Descriptor::new(media_type, ed.clone(), bytes.len() as u64);
    target.put_blob(EMPTY_JSON)?;
    let subj = Descriptor::new(
        subject.media_type.clone(),
        subject.digest.clone(),
        subject.size,
    );
    let thumbs: Vec<String> = req.chain.iter().map(Cert::thumbprint).collect();
    let mut ann = BTreeMap::new();
    ann.insert(
        THUMBPRINT_ANNOTATION.to_string(),
        serde_json::to_string(&thumbs).map_err(|e| invalid("thumbprints", e.to_string()))?,
    );
    ann.insert(
        "org.opencontainers.image.created".to_string(),
        ocibuild_oci::image::rfc3339(req.now),
    );
    let m = artifact_manifest(ARTIFACT_TYPE, vec![layer], Some(subj), ann);
    let mb = to_json_bytes(&m, "notation signature manifest")?;
    let d = target.attach(
        &subject.digest,
        &mb,
        media::OCI_MANIFEST,
        Some(ARTIFACT_TYPE),
    )?;
    Ok(Signed {
        manifest: d,
        envelope: ed,
        media_type: media_type.to_string(),
    })
}

// ---------------------------------------------------------------------------------------------
// Trust policy and trust store

/// `trustpolicy.json` (notation's OCI trust policy, version 1.0).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustPolicyDocument {
    pub version: String,
    pub trust_policies: Vec<TrustPolicy>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustPolicy {
    pub name: String,
    pub registry_scopes: Vec<String>,
    pub signature_verification: SignatureVerification,
    #[serde(default)]
    pub trust_stores: Vec<String>,
    #[serde(default)]
    pub trusted_identities: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct SignatureVerification {
    pub level: String,
    #[serde(default, rename = "override")]
    pub overrides: BTreeMap<String, String>,
}

/// What a check's failure does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Enforce,
    Log,
    Skip,
}

/// The validation actions of a level (with its overrides).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checks {
    pub integrity: Action,
    pub authenticity: Action,
    pub authentic_timestamp: Action,
    pub expiry: Action,
    pub revocation: Action,
}

impl SignatureVerification {
    /// The checks of the level; `None` for `skip`.
    pub fn checks(&self, policy: &str) -> Result<Option<Checks>> {
        use Action::*;
        let bad = |d: String| invalid(format!("trust policy `{policy}`"), d);
        let mut c = match self.level.as_str() {
            "strict" => Checks {
                integrity: Enforce,
                authenticity: Enforce,
                authentic_timestamp: Enforce,
                expiry: Enforce,
                revocation: Enforce,
            },
            "permissive" => Checks {
                integrity: Enforce,
                authenticity: Enforce,
                authentic_timestamp: Log,
                expiry: Log,
                revocation: Log,
            },
            "audit" => Checks {
                integrity: Enforce,
                authenticity: Log,
                authentic_timestamp: Log,
                expiry: Log,
                revocation: Log,
            },
            "skip" => {
                if !self.overrides.is_empty() {
                    return Err(bad("level `skip` takes no `override`: remove it".into()));
                }
                return Ok(None);
            }
            other => {
                return Err(bad(format!(
                    "signatureVerification level `{other}` is not one of strict, permissive, audit, skip"
                )));
            }
        };
        for (check, action) in &self.overrides {
            let a = match action.as_str() {
                "enforce" => Enforce,
                "log" => Log,
                "skip" => Skip,
                other => {
                    return Err(bad(format!(
                        "override {check}: `{other}` is not enforce, log or skip"
                    )));
                }
            };
            match check.as_str() {
                "authenticity" => c.authenticity = a,
                "authenticTimestamp" => c.authentic_timestamp = a,
                "expiry" => c.expiry = a,
                "revocation" => c.revocation = a,
                "integrity" => {
                    return Err(bad(
                        "integrity cannot be overridden (it is always enforced)".into(),
                    ));
                }
                other => {
                    return Err(bad(format!(
                        "override `{other}` is not one of authenticity, authenticTimestamp, expiry, revocation"
                    )));
                }
            }
        }
        if c.authenticity == Skip {
            return Err(bad(
                "authenticity cannot be skipped (use level `skip` to skip verification)".into(),
            ));
        }
        Ok(Some(c))
    }
}

/// A trusted identity of a policy.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Identity {
    Any,
    Subject(BTreeMap<String, String>),
}

impl TrustPolicyDocument {
    /// Read and validate `path`.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read(path).map_err(|e| SignError::Io {
            what: format!(
                "reading the trust policy {} (write one as docs/signing.md shows, or pass --trust-policy)",
                path.display()
            ),
            source: e,
        })?;
        let doc: Self = serde_json::from_slice(&text).map_err(|e| {
            invalid(
                path.display().to_string(),
                format!("not a notation trust policy: {e}"),
            )
        })?;
        doc.validate()
            .map_err(|e| invalid(path.display().to_string(), e.to_string()))?;
        Ok(doc)
    }

    /// The rules notation enforces on a policy document.
    pub fn validate(&self) -> Result<()> {
        if self.version != "1.0" {
            return Err(invalid(
                "version",
                format!("`{}` is not supported (1.0 is)", self.version),
            ));
        }
        if self.trust_policies.is_empty() {
            return Err(invalid("trustPolicies", "is empty"));
        }
        let mut names = std::collections::BTreeSet::new();
        let mut scopes = std::collections::BTreeSet::new();
        for p in &self.trust_policies {
            if !names.insert(p.name.as_str()) {
                return Err(invalid(
                    format!("trust policy `{}`", p.name),
                    "the name is used twice",
                ));
            }
            if p.registry_scopes.is_empty() {
                return Err(invalid(
                    format!("trust policy `{}`", p.name),
                    "registryScopes is empty",
                ));
            }
            for s in &p.registry_scopes {
                if s == "*" && p.registry_scopes.len() > 1 {
                    return Err(invalid(
                        format!("trust policy `{}`", p.name),
                        "the wildcard scope `*` must be the only scope of its policy",
                    ));
                }
                if !scopes.insert(s.as_str()) {
                    return Err(invalid(
                        format!("trust policy `{}`", p.name),
                        format!("registry scope `{s}` is in more than one policy"),
                    ));
                }
            }
            let checks = p.signature_verification.checks(&p.name)?;
            if checks.is_some() {
                if p.trust_stores.is_empty() || p.trusted_identities.is_empty() {
                    return Err(invalid(
                        format!("trust policy `{}`", p.name),
                        "a verifying policy needs trustStores and trustedIdentities",
                    ));
                }
                for t in &p.trust_stores {
                    parse_store_ref(t, &p.name)?;
                }
                p.identities()?;
            }
        }
        Ok(())
    }

    /// The policy for `scope` (`registry/repository`): the exact scope, else the wildcard.
    /// `None` scope (an OCI layout without `--scope`) matches only the wildcard.
    pub fn for_scope(&self, scope: Option<&str>) -> Result<&TrustPolicy> {
        if let Some(s) = scope
            && let Some(p) = self
                .trust_policies
                .iter()
                .find(|p| p.registry_scopes.iter().any(|r| r == s))
        {
            return Ok(p);
        }
        self.trust_policies
            .iter()
            .find(|p| p.registry_scopes.iter().any(|r| r == "*"))
            .ok_or_else(|| {
                invalid(
                    "the trust policy",
                    match scope {
                        Some(s) => format!(
                            "no policy's registryScopes names `{s}` and there is no `*` policy: add the repository to a policy's registryScopes"
                        ),
                        None => "an OCI layout has no registry scope: pass --scope REGISTRY/REPOSITORY or add a `*` policy".into(),
                    },
                )
            })
    }
}

fn parse_store_ref<'a>(t: &'a str, policy: &str) -> Result<(&'a str, &'a str)> {
    let (kind, name) = t.split_once(':').ok_or_else(|| {
        invalid(
            format!("trust policy `{policy}`"),
            format!(
                "trust store `{t}` is not TYPE:NAME (ca:NAME, signingAuthority:NAME, tsa:NAME)"
            ),
        )
    })?;
    if !matches!(kind, "ca" | "signingAuthority" | "tsa") {
        return Err(invalid(
            format!("trust policy `{policy}`"),
            format!("trust store type `{kind}` is not ca, signingAuthority or tsa"),
        ));
    }
    if name.is_empty() || name.contains(['/', '\\']) || name == "." || name == ".." {
        return Err(invalid(
            format!("trust policy `{policy}`"),
            format!("trust store name `{name}` is not a plain name"),
        ));
    }
    Ok((kind, name))
}

impl TrustPolicy {
    fn identities(&self) -> Result<Vec<Identity>> {
        let mut out = Vec::new();
        for t in &self.trusted_identities {
            if t == "*" {
                if self.trusted_identities.len() > 1 {
                    return Err(invalid(
                        format!("trust policy `{}`", self.name),
                        "the wildcard identity `*` must be the only one",
                    ));
                }
                out.push(Identity::Any);
                continue;
            }
            let Some(dn) = t.strip_prefix("x509.subject:") else {
                return Err(invalid(
                    format!("trust policy `{}`", self.name),
                    format!("trusted identity `{t}` is not `*` or `x509.subject: DN`"),
                ));
            };
            let attrs = parse_dn(dn.trim()).ok_or_else(|| {
                invalid(
                    format!("trust policy `{}`", self.name),
                    format!("trusted identity `{t}`: not a distinguished name"),
                )
            })?;
            for required in ["C", "ST", "O"] {
                if !attrs.contains_key(required) {
                    return Err(invalid(
                        format!("trust policy `{}`", self.name),
                        format!(
                            "trusted identity `{t}` lacks {required}: notation requires C, ST and O"
                        ),
                    ));
                }
            }
            out.push(Identity::Subject(attrs));
        }
        Ok(out)
    }
}

/// A notation trust store directory: `x509/{ca,signingAuthority,tsa}/NAME/*.{pem,crt,cer}`.
pub struct TrustStore {
    pub dir: PathBuf,
}

impl TrustStore {
    /// The certificates of a policy's store reference (`ca:NAME`).
    pub fn certs(&self, reference: &str, policy: &str) -> Result<Vec<Cert>> {
        let (kind, name) = parse_store_ref(reference, policy)?;
        let dir = self.dir.join("x509").join(kind).join(name);
        let entries = std::fs::read_dir(&dir).map_err(|e| SignError::Io {
            what: format!(
                "reading trust store `{reference}` at {} (put its certificates there, or pass --trust-store)",
                dir.display()
            ),
            source: e,
        })?;
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        let mut out = Vec::new();
        for p in paths.into_iter().filter(|p| p.is_file()) {
            let text = std::fs::read(&p).map_err(|e| SignError::Io {
                what: format!("reading {}", p.display()),
                source: e,
            })?;
            if text.starts_with(b"-----") || text.windows(11).any(|w| w == b"-----BEGIN ") {
                out.extend(Cert::from_pem_bundle(&text, &p.display().to_string())?);
            } else {
                out.push(Cert::from_der(&text, &p.display().to_string())?);
            }
        }
        if out.is_empty() {
            return Err(invalid(
                format!("trust store `{reference}` ({})", dir.display()),
                "holds no certificate",
            ));
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// Verification

/// The result for one signature.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SignatureResult {
    /// Where it was found (the referrer manifest).
    pub source: String,
    pub verified: bool,
    /// Enforced checks that failed (the signature does not count).
    pub failures: Vec<String>,
    /// Checks that failed with action `log`.
    pub logged: Vec<String>,
    /// What was not checked, and why.
    pub notes: Vec<String>,
    /// The leaf certificate's subject.
    pub signer: Option<String>,
    pub signing_time: Option<String>,
    pub expiry: Option<String>,
    /// The payload's target descriptor.
    pub target_artifact: Option<Value>,
}

/// The outcome of verifying an image.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    pub policy: String,
    pub level: String,
    /// Verification was skipped by the policy (level `skip`).
    pub skipped: bool,
    pub signatures: Vec<SignatureResult>,
}

impl Outcome {
    pub fn verified(&self) -> bool {
        self.skipped || self.signatures.iter().any(|s| s.verified)
    }
}

/// The descriptors of the notation signatures attached to `subject`.
pub fn list(target: &Target<'_>, subject: &Digest) -> Result<Vec<Descriptor>> {
    let refs = match target.referrers(subject) {
        Ok(r) => r.manifests,
        Err(ocibuild_registry::RegistryError::Status {
            status: 400 | 405, ..
        }) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    Ok(refs
        .into_iter()
        .filter(|d| d.artifact_type.as_deref() == Some(ARTIFACT_TYPE))
        .collect())
}

/// Verify the notation signatures of `subject` at `target` under `policy`, with `store`, at
/// time `now` (Unix seconds).
pub fn verify(
    target: &Target<'_>,
    subject: &Descriptor,
    policy: &TrustPolicy,
    store: &TrustStore,
    now: u64,
) -> Result<Outcome> {
    let mut out = Outcome {
        policy: policy.name.clone(),
        level: policy.signature_verification.level.clone(),
        skipped: false,
        signatures: Vec::new(),
    };
    let Some(checks) = policy.signature_verification.checks(&policy.name)? else {
        out.skipped = true;
        return Ok(out);
    };
    let identities = policy.identities()?;
    let mut anchors = Vec::new();
    for t in &policy.trust_stores {
        if t.starts_with("tsa:") {
            continue;
        }
        anchors.extend(store.certs(t, &policy.name)?);
    }
    for d in list(target, &subject.digest)? {
        let source = format!("{}@{}", target.describe(), d.digest);
        let mut r = SignatureResult {
            source,
            ..Default::default()
        };
        match load_envelope(target, &d) {
            Ok((media_type, bytes)) => {
                check_envelope(
                    &mut r,
                    &media_type,
                    &bytes,
                    subject,
                    &checks,
                    &identities,
                    &anchors,
                    now,
                );
            }
            Err(why) => r.failures.push(format!("integrity: {why}")),
        }
        r.verified = r.failures.is_empty();
        out.signatures.push(r);
    }
    Ok(out)
}

/// The envelope of a signature manifest: (media type, bytes); a reason when it cannot be read.
fn load_envelope(target: &Target<'_>, d: &Descriptor) -> Result<(String, Vec<u8>), String> {
    let mb = target.get_manifest(d).map_err(|e| e.to_string())?;
    let m: Manifest = serde_json::from_slice(&mb)
        .map_err(|e| format!("the signature manifest is not an image manifest: {e}"))?;
    let [layer] = m.layers.as_slice() else {
        return Err(format!(
            "the signature manifest has {} layers, not one envelope",
            m.layers.len()
        ));
    };
    match target.get_blob(layer) {
        Ok(b) => Ok((layer.media_type.clone(), b)),
        Err(ocibuild_registry::RegistryError::Oci(ocibuild_oci::OciError::DigestMismatch {
            ..
        })) => Err(format!(
            "envelope {} tampered (its bytes do not match its digest)",
            layer.digest
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// Apply a failed check with its action.
fn fail(r: &mut SignatureResult, action: Action, check: &str, why: String) {
    match action {
        Action::Enforce => r.failures.push(format!("{check}: {why}")),
        Action::Log => r.logged.push(format!("{check}: {why}")),
        Action::Skip => {}
    }
}

/// What the integrity check of a JWS envelope yields.
struct Parsed {
    chain: Vec<Cert>,
    protected: serde_json::Map<String, Value>,
    payload: Value,
}

/// Integrity: the envelope's structure, headers, signature with the leaf key, and the payload's
/// target. Returns the parsed envelope, or the reason.
fn jws_integrity(bytes: &[u8]) -> Result<Parsed, String> {
    let env: Jws =
        serde_json::from_slice(bytes).map_err(|e| format!("not a JWS JSON envelope: {e}"))?;
    let ph = B64URL
        .decode(env.protected.trim_end_matches('='))
        .map_err(|_| "the protected header is not base64url".to_string())?;
    let protected: serde_json::Map<String, Value> = serde_json::from_slice(&ph)
        .map_err(|e| format!("the protected header is not a JSON object: {e}"))?;
    let get = |k: &str| protected.get(k).and_then(Value::as_str);
    let alg = get("alg").ok_or("the protected header has no `alg`")?;
    if get("cty") != Some(PAYLOAD_CONTENT_TYPE) {
        return Err(format!(
            "content type `{}` is not {PAYLOAD_CONTENT_TYPE}",
            get("cty").unwrap_or("")
        ));
    }
    let scheme = get(SIGNING_SCHEME).ok_or("no io.cncf.notary.signingScheme")?;
    if scheme != SCHEME_X509 && scheme != SCHEME_SIGNING_AUTHORITY {
        return Err(format!("signing scheme `{scheme}` is unknown"));
    }
    get(SIGNING_TIME).ok_or("no io.cncf.notary.signingTime")?;
    let crit: Vec<&str> = protected
        .get("crit")
        .and_then(Value::as_array)
        .ok_or("the protected header has no `crit`")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    if !crit.contains(&SIGNING_SCHEME) {
        return Err("`crit` does not list io.cncf.notary.signingScheme".into());
    }
    if protected.contains_key(EXPIRY) && !crit.contains(&EXPIRY) {
        return Err("`crit` does not list io.cncf.notary.expiry".into());
    }
    for c in &crit {
        if ![
            SIGNING_SCHEME,
            EXPIRY,
            "io.cncf.notary.authenticSigningTime",
            "io.cncf.notary.verificationPlugin",
            "io.cncf.notary.verificationPluginMinVersion",
        ]
        .contains(c)
        {
            return Err(format!("`crit` lists `{c}`, which is not understood"));
        }
        if c.starts_with("io.cncf.notary.verificationPlugin") {
            return Err(format!(
                "the signature needs a notation verification plugin (`{c}`), which ocibuild does not run"
            ));
        }
        if !protected.contains_key(*c) {
            return Err(format!("`crit` lists `{c}` but the header lacks it"));
        }
    }
    if env.header.x5c.is_empty() {
        return Err("no x5c certificate chain".into());
    }
    let mut chain = Vec::new();
    for (i, c) in env.header.x5c.iter().enumerate() {
        let der = B64
            .decode(c)
            .map_err(|_| format!("x5c[{i}] is not base64"))?;
        chain.push(Cert::from_der(&der, &format!("x5c[{i}]")).map_err(|e| e.to_string())?);
    }
    let leaf_key = chain[0].public_key().map_err(|e| e.to_string())?;
    let sig = B64URL
        .decode(env.signature.trim_end_matches('='))
        .map_err(|_| "the signature is not base64url".to_string())?;
    let input = format!("{}.{}", env.protected, env.payload);
    if !jws_verify(alg, &leaf_key, input.as_bytes(), &sig)? {
        return Err(format!(
            "the signature does not verify with the key of `{}` (the envelope was tampered with, or signed by another key)",
            chain[0].subject()
        ));
    }
    let pb = B64URL
        .decode(env.payload.trim_end_matches('='))
        .map_err(|_| "the payload is not base64url".to_string())?;
    let payload: Value =
        serde_json::from_slice(&pb).map_err(|e| format!("the payload is not JSON: {e}"))?;
    Ok(Parsed {
        chain,
        protected,
        payload,
    })
}

/// Integrity of a COSE_Sign1 envelope, as [`jws_integrity`]; the protected header's dates come
/// back as RFC 3339 text.
fn cose_integrity(bytes: &[u8]) -> Result<Parsed, String> {
    use coset::cbor::value::Value as Cbor;
    use coset::{Label, RegisteredLabelWithPrivate, TaggedCborSerializable as _};
    let msg = coset::CoseSign1::from_tagged_slice(bytes)
        .map_err(|e| format!("not a COSE_Sign1_Tagged envelope: {e}"))?;
    let h = &msg.protected.header;
    let alg = match &h.alg {
        Some(RegisteredLabelWithPrivate::Assigned(a)) => {
            [Hash::Sha256, Hash::Sha384, Hash::Sha512]
                .into_iter()
                .flat_map(|h| [Scheme::Ecdsa(h), Scheme::RsaPss(h)])
                .find(|s| cose_alg(*s) == Some(*a))
                .map(Scheme::jose)
        }
        _ => None,
    }
    .ok_or_else(|| {
        format!(
            "algorithm {:?} is not one of the Notary Project's (ES256, ES384, ES512, PS256, PS384, PS512)",
            h.alg
        )
    })?;
    let alg = alg.as_str();
    match &h.content_type {
        Some(coset::ContentType::Text(t)) if t == PAYLOAD_CONTENT_TYPE => {}
        other => {
            return Err(format!(
                "content type {other:?} is not {PAYLOAD_CONTENT_TYPE}"
            ));
        }
    }
    let text = |k: &str| {
        h.rest.iter().find_map(|(l, v)| match l {
            Label::Text(t) if t == k => Some(v.clone()),
            _ => None,
        })
    };
    let mut protected = serde_json::Map::new();
    protected.insert("alg".into(), json!(alg));
    protected.insert("cty".into(), json!(PAYLOAD_CONTENT_TYPE));
    match text(SIGNING_SCHEME) {
        Some(Cbor::Text(t)) if t == SCHEME_X509 || t == SCHEME_SIGNING_AUTHORITY => {
            protected.insert(SIGNING_SCHEME.into(), json!(t));
        }
        other => return Err(format!("signing scheme {other:?} is not notary.x509")),
    }
    for k in [SIGNING_TIME, EXPIRY] {
        match text(k) {
            Some(Cbor::Tag(EPOCH_TAG, v)) => {
                let Some(secs) = v.as_integer().and_then(|i| u64::try_from(i).ok()) else {
                    return Err(format!("{k} is not an epoch date"));
                };
                protected.insert(k.into(), json!(ocibuild_oci::image::rfc3339(secs)));
            }
            None if k == EXPIRY => {}
            other => return Err(format!("{k} is {other:?}, not an epoch date (tag 1)")),
        }
    }
    let mut crit = Vec::new();
    for c in &h.crit {
        match c {
            coset::RegisteredLabel::Text(t) => crit.push(t.clone()),
            coset::RegisteredLabel::Assigned(p) => {
                return Err(format!("`crit` lists {p:?}, which is not understood"));
            }
        }
    }
    if !crit.iter().any(|c| c == SIGNING_SCHEME) {
        return Err("`crit` does not list io.cncf.notary.signingScheme".into());
    }
    if protected.contains_key(EXPIRY) && !crit.iter().any(|c| c == EXPIRY) {
        return Err("`crit` does not list io.cncf.notary.expiry".into());
    }
    if let Some(c) = crit.iter().find(|c| *c != SIGNING_SCHEME && *c != EXPIRY) {
        return Err(format!("`crit` lists `{c}`, which is not understood"));
    }
    let chain_value = msg
        .unprotected
        .rest
        .iter()
        .find_map(|(l, v)| (*l == Label::Int(X5CHAIN)).then_some(v))
        .ok_or("no x5chain certificate chain")?;
    let ders: Vec<Vec<u8>> = match chain_value {
        Cbor::Bytes(b) => vec![b.clone()],
        Cbor::Array(a) => a
            .iter()
            .map(|v| {
                v.as_bytes()
                    .cloned()
                    .ok_or("an x5chain entry is not a byte string")
            })
            .collect::<Result<_, _>>()?,
        _ => return Err("x5chain is not a byte string or an array".into()),
    };
    let mut chain = Vec::new();
    for (i, der) in ders.iter().enumerate() {
        chain.push(Cert::from_der(der, &format!("x5chain[{i}]")).map_err(|e| e.to_string())?);
    }
    let Some(leaf) = chain.first() else {
        return Err("x5chain is empty".into());
    };
    let leaf_key = leaf.public_key().map_err(|e| e.to_string())?;
    msg.verify_signature(b"", |sig, tbs| match jws_verify(alg, &leaf_key, tbs, sig) {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!(
            "the signature does not verify with the key of `{}` (the envelope was tampered with, or signed by another key)",
            leaf.subject()
        )),
        Err(e) => Err(e),
    })?;
    let pb = msg.payload.as_deref().ok_or("the payload is detached")?;
    let payload: Value =
        serde_json::from_slice(pb).map_err(|e| format!("the payload is not JSON: {e}"))?;
    protected.insert("crit".into(), json!(crit));
    Ok(Parsed {
        chain,
        protected,
        payload,
    })
}

/// Verify an envelope signature of `alg` (JOSE name; ECDSA raw `r‖s`) with the leaf's `key`.
/// The algorithm must be the one the Notary Project selects for the key (ES256 for P-256, ES384
/// for P-384, PS256/PS384/PS512 for RSA 2048/3072/4096), as notation checks.
fn jws_verify(alg: &str, key: &PublicKey, input: &[u8], sig: &[u8]) -> Result<bool, String> {
    let want = key
        .notation_scheme()
        .map_err(|why| format!("the signing certificate's key is {why}"))?;
    if Scheme::from_jose(alg) != Some(want) {
        return Err(format!(
            "algorithm {alg} does not fit the signing certificate's key ({}: the Notary Project signs it with {want})",
            key.algorithm()
        ));
    }
    let sig = match want {
        Scheme::Ecdsa(_) => match key.ecdsa_raw_to_der(sig) {
            Some(der) => der,
            None => return Ok(false),
        },
        _ => sig.to_vec(),
    };
    Ok(key.verify_as(want, input, &sig))
}

#[allow(clippy::too_many_arguments)]
fn check_envelope(
    r: &mut SignatureResult,
    media_type: &str,
    bytes: &[u8],
    subject: &Descriptor,
    checks: &Checks,
    identities: &[Identity],
    anchors: &[Cert],
    now: u64,
) {
    let parsed = match media_type {
        JWS_MEDIA_TYPE => jws_integrity(bytes),
        COSE_MEDIA_TYPE => cose_integrity(bytes),
        other => Err(format!(
            "envelope media type `{other}` is not a Notary Project envelope"
        )),
    };
    let p = match parsed {
        Ok(p) => p,
        Err(why) => {
            r.failures.push(format!("integrity: {why}"));
            return;
        }
    };
    r.signer = Some(p.chain[0].subject());
    r.signing_time = p
        .protected
        .get(SIGNING_TIME)
        .and_then(Value::as_str)
        .map(String::from);
    r.expiry = p
        .protected
        .get(EXPIRY)
        .and_then(Value::as_str)
        .map(String::from);
    let target = p
        .payload
        .get("targetArtifact")
        .cloned()
        .unwrap_or(Value::Null);
    r.target_artifact = Some(target.clone());
    // integrity, part two: the payload names this image
    let digest = target.get("digest").and_then(Value::as_str);
    let size = target.get("size").and_then(Value::as_u64);
    let mt = target.get("mediaType").and_then(Value::as_str);
    if digest != Some(subject.digest.to_string().as_str()) {
        r.failures.push(format!(
            "integrity: the signature covers {}, the image is {}",
            digest.unwrap_or("nothing"),
            subject.digest
        ));
        return;
    }
    if size != Some(subject.size) || mt != Some(subject.media_type.as_str()) {
        r.failures.push(format!(
            "integrity: the signed descriptor ({}, {} bytes) is not the image's ({}, {} bytes)",
            mt.unwrap_or("?"),
            size.unwrap_or(0),
            subject.media_type,
            subject.size
        ));
        return;
    }
    // authenticity: the chain, a trust-store anchor, a trusted identity
    if let Err(why) = authenticity(&p.chain, anchors, identities) {
        fail(r, checks.authenticity, "authenticity", why);
    }
    // authentic timestamp: no TSA countersignature, so the chain must be valid now
    if checks.authentic_timestamp != Action::Skip {
        for c in &p.chain {
            let (nb, na) = c.validity();
            if now < nb || now > na {
                let why = format!(
                    "certificate `{}` is valid from {} to {}, not now ({}); there is no timestamp countersignature to vouch for the signing time",
                    c.subject(),
                    ocibuild_oci::image::rfc3339(nb),
                    ocibuild_oci::image::rfc3339(na),
                    ocibuild_oci::image::rfc3339(now)
                );
                fail(r, checks.authentic_timestamp, "authenticTimestamp", why);
                break;
            }
        }
    }
    // expiry
    if checks.expiry != Action::Skip
        && let Some(e) = &r.expiry
    {
        match parse_rfc3339(e) {
            Some(t) if (now as i64) > t => {
                let why = format!("the signature expired at {e}");
                fail(r, checks.expiry, "expiry", why);
            }
            Some(_) => {}
            None => r
                .failures
                .push(format!("integrity: expiry `{e}` is not an RFC 3339 time")),
        }
    }
    if checks.revocation != Action::Skip {
        r.notes.push(
            "revocation: not checked — ocibuild does not fetch OCSP responses or CRLs (offline verification)"
                .into(),
        );
    }
}

fn authenticity(chain: &[Cert], anchors: &[Cert], identities: &[Identity]) -> Result<(), String> {
    check_chain(chain).map_err(|e| e.to_string())?;
    let anchored = chain.iter().any(|c| anchors.iter().any(|a| a.der == c.der))
        || chain
            .last()
            .is_some_and(|last| anchors.iter().any(|a| last.signed_by(a).is_ok()));
    if !anchored {
        return Err(format!(
            "the certificate chain of `{}` does not lead to a certificate of the policy's trust stores",
            chain[0].subject()
        ));
    }
    let leaf = chain[0].subject_attributes();
    let trusted = identities.iter().any(|i| match i {
        Identity::Any => true,
        Identity::Subject(want) => want.iter().all(|(k, v)| leaf.get(k) == Some(v)),
    });
    if !trusted {
        return Err(format!(
            "signing identity `{}` is not one of the policy's trustedIdentities",
            chain[0].subject()
        ));
    }
    Ok(())
}

/// An RFC 3339 timestamp as Unix seconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let s = s.trim();
    let mut it = s.get(..10)?.split('-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: i64 = it.next()?.parse().ok()?;
    let d: i64 = it.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let rest = s.get(10..)?.strip_prefix(['T', 't'])?;
    let h: i64 = rest.get(0..2)?.parse().ok()?;
    let mi: i64 = rest.get(3..5)?.parse().ok()?;
    let se: i64 = rest.get(6..8)?.parse().ok()?;
    let mut tail = rest.get(8..)?;
    if let Some(t) = tail.strip_prefix('.') {
        tail = t.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let offset = match tail {
        "Z" | "z" => 0,
        t => {
            let sign = match t.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let oh: i64 = t.get(1..3)?.parse().ok()?;
            let om: i64 = t.get(4..6)?.parse().ok()?;
            sign * (oh * 3600 + om * 60)
        }
    };
    // days from civil (proleptic Gregorian)
    let yy = if m <= 2 { y - 1 } else { y };
    let era = if yy >= 0 { yy } else { yy - 399 } / 400;
    let yoe = yy - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + se - offset)
}

/// notation's `--expiry` durations: `24h`, `30m`, `7d`, `90s`, or combinations (`1h30m`).
pub fn parse_duration(s: &str) -> Option<u64> {
    let mut total = 0u64;
    let mut num = String::new();
    let mut any = false;
    for c in s.trim().chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().ok()?;
        num.clear();
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(unit)?)?;
        any = true;
    }
    (num.is_empty() && any).then_some(total)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2022-08-29T13:50:00-07:00"),
            Some(1_661_806_200)
        );
        assert_eq!(parse_duration("24h"), Some(86_400));
        assert_eq!(parse_duration("1h30m"), Some(5400));
        assert_eq!(parse_duration("7"), None);
        assert_eq!(parse_duration("3w"), None);
    }

    fn policy(level: &str, ov: &[(&str, &str)]) -> SignatureVerification {
        SignatureVerification {
            level: level.into(),
            overrides: ov
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn levels_map_to_notations_actions() {
        use Action::*;
        let s = policy("strict", &[]).checks("p").unwrap().unwrap();
        assert_eq!(s.expiry, Enforce);
        let p = policy("permissive", &[]).checks("p").unwrap().unwrap();
        assert_eq!((p.authenticity, p.expiry), (Enforce, Log));
        let a = policy("audit", &[]).checks("p").unwrap().unwrap();
        assert_eq!((a.integrity, a.authenticity), (Enforce, Log));
        assert!(policy("skip", &[]).checks("p").unwrap().is_none());
        let o = policy("strict", &[("expiry", "log")])
            .checks("p")
            .unwrap()
            .unwrap();
        assert_eq!(o.expiry, Log);
        assert!(
            policy("strict", &[("integrity", "skip")])
                .checks("p")
                .is_err()
        );
        assert!(policy("lenient", &[]).checks("p").is_err());
    }

    #[test]
    fn scopes_pick_the_exact_policy_before_the_wildcard() {
        let doc: TrustPolicyDocument = serde_json::from_value(json!({
            "version": "1.0",
            "trustPolicies": [
                {"name": "app", "registryScopes": ["reg.test/app"],
                 "signatureVerification": {"level": "strict"},
                 "trustStores": ["ca:acme"],
                 "trustedIdentities": ["x509.subject: C=US, ST=WA, O=Acme"]},
                {"name": "rest", "registryScopes": ["*"],
                 "signatureVerification": {"level": "skip"}}
            ]
        }))
        .unwrap();
        doc.validate().unwrap();
        assert_eq!(doc.for_scope(Some("reg.test/app")).unwrap().name, "app");
        assert_eq!(doc.for_scope(Some("reg.test/other")).unwrap().name, "rest");
        assert_eq!(doc.for_scope(None).unwrap().name, "rest");
        let mut bad = doc.clone();
        bad.trust_policies[0].trusted_identities = vec!["x509.subject: CN=only".into()];
        assert!(bad.validate().is_err());
    }
}
