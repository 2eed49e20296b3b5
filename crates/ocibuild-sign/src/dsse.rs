//! DSSE envelopes and in-toto Statements v1, as `cosign attest` writes them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use crate::error::{Result, SignError};
use crate::signer::Signer;

/// The in-toto payload type of DSSE envelopes.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// in-toto Statement v1.
pub const STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";

/// DSSE's pre-authentication encoding: `DSSEv1 <len> <type> <len> <body>`.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    #[serde(default)]
    pub keyid: String,
    pub sig: String,
}

/// A DSSE envelope (payload and signatures base64).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    pub payload_type: String,
    pub payload: String,
    pub signatures: Vec<EnvelopeSignature>,
}

impl Envelope {
    /// Sign `payload` of `payload_type`.
    pub fn sign(signer: &dyn Signer, payload_type: &str, payload: &[u8]) -> Result<Self> {
        let sig = signer.sign(&pae(payload_type, payload))?;
        Ok(Envelope {
            payload_type: payload_type.into(),
            payload: B64.encode(payload),
            signatures: vec![EnvelopeSignature {
                keyid: signer.key_id(),
                sig: B64.encode(sig),
            }],
        })
    }

    /// The decoded payload.
    pub fn payload_bytes(&self) -> Result<Vec<u8>> {
        B64.decode(&self.payload).map_err(|_| SignError::Invalid {
            what: "the DSSE envelope".into(),
            detail: "its payload is not base64".into(),
        })
    }
}

/// One subject of a Statement: a name and its digests.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Subject {
    pub name: String,
    pub digest: std::collections::BTreeMap<String, String>,
}

/// An in-toto Statement v1.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Statement {
    #[serde(rename = "_type")]
    pub type_: String,
    pub subject: Vec<Subject>,
    pub predicate_type: String,
    pub predicate: serde_json::Value,
}

/// `--type` of `attest` (cosign's names) to the predicate type URI; a URI is taken as it is.
pub fn predicate_type(t: &str) -> Result<String> {
    Ok(match t {
        "slsaprovenance1" => "https://slsa.dev/provenance/v1",
        "slsaprovenance" | "slsaprovenance02" => "https://slsa.dev/provenance/v0.2",
        "cyclonedx" => "https://cyclonedx.org/bom",
        "spdx" | "spdxjson" => "https://spdx.dev/Document",
        "vuln" => "https://cosign.sigstore.dev/attestation/vuln/v1",
        "custom" => "https://cosign.sigstore.dev/attestation/v1",
        "openvex" => "https://openvex.dev/ns",
        uri if uri.contains("://") => uri,
        other => {
            return Err(SignError::Invalid {
                what: format!("--type {other}"),
                detail: "expected slsaprovenance1, slsaprovenance, cyclonedx, spdx, spdxjson, vuln, openvex, custom or a predicate type URI".into(),
            });
        }
    }
    .to_string())
}
