//! Signatures and attestations stored exactly as cosign stores them, in a registry or an OCI
//! layout ([`Target`]).
//!
//! - Signature: the simple-signing payload as a layer of media type
//!   [`SIMPLESIGNING_MEDIA_TYPE`] with the base64 signature in the annotation [`SIGNATURE_ANNOTATION`],
//!   in the manifest tagged `sha256-<hex>.sig`; a new signature is appended to the layers there.
//! - Attestation: an in-toto Statement in a DSSE envelope, a layer of media type
//!   [`DSSE_MEDIA_TYPE`] with the annotation `predicateType`, in the manifest tagged
//!   `sha256-<hex>.att`.
//! - With [`Mode::Referrers`] (cosign's `--registry-referrers-mode=oci-1-1`) each signature or
//!   attestation is its own artifact manifest whose `subject` is the image.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ocibuild_oci::Digest;
use ocibuild_oci::artifact::{EMPTY_JSON, artifact_manifest, cosign_tag};
use ocibuild_oci::image::{Descriptor, Manifest, to_json_bytes};
use ocibuild_oci::media;
use ocibuild_registry::artifacts::Target;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::dsse::{Envelope, IN_TOTO_PAYLOAD_TYPE, STATEMENT_V1, Statement, Subject};
use crate::error::{Result, SignError};
use crate::keys::PublicKey;
use crate::signer::Signer;

pub const SIMPLESIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
pub const DSSE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
pub const PREDICATE_TYPE_ANNOTATION: &str = "predicateType";
/// The `artifactType` of cosign's OCI 1.1 signature manifests.
pub const SIG_ARTIFACT_TYPE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
/// The `artifactType` ocibuild gives OCI 1.1 attestation manifests.
pub const ATT_ARTIFACT_TYPE: &str = DSSE_MEDIA_TYPE;
/// The `type` of cosign's simple-signing payload.
pub const SIMPLESIGNING_TYPE: &str = "cosign container image signature";

/// Where a signature goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// cosign's tags (`sha256-<hex>.sig` / `.att`), appended to.
    Tag,
    /// OCI 1.1 referrers (one artifact manifest per signature, `subject` = the image).
    Referrers,
}

/// The simple-signing payload (`critical` + `optional`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Payload {
    pub critical: Critical,
    #[serde(default)]
    pub optional: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Critical {
    pub identity: Identity,
    pub image: PayloadImage,
    #[serde(rename = "type")]
    pub type_: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Identity {
    #[serde(rename = "docker-reference")]
    pub docker_reference: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PayloadImage {
    #[serde(rename = "docker-manifest-digest")]
    pub docker_manifest_digest: String,
}

/// The payload bytes for `digest`, naming `docker_reference` (the repository, without tag),
/// with `annotations` in `optional`.
pub fn simple_signing_payload(
    docker_reference: &str,
    digest: &Digest,
    annotations: &BTreeMap<String, String>,
) -> Result<Vec<u8>> {
    let optional = (!annotations.is_empty()).then(|| {
        annotations
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect()
    });
    let p = Payload {
        critical: Critical {
            identity: Identity {
                docker_reference: docker_reference.to_string(),
            },
            image: PayloadImage {
                docker_manifest_digest: digest.to_string(),
            },
            type_: SIMPLESIGNING_TYPE.into(),
        },
        optional,
    };
    serde_json::to_vec(&p).map_err(|e| SignError::Invalid {
        what: "the signature payload".into(),
        detail: e.to_string(),
    })
}

/// The config blob cosign gives its signature images: an empty image config whose diff_ids
/// are the (uncompressed) layers.
fn cosign_config(layers: &[Descriptor]) -> Result<Vec<u8>> {
    let diff_ids: Vec<String> = layers.iter().map(|l| l.digest.to_string()).collect();
    let v = json!({
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "config": {}
    });
    Ok(to_json_bytes(&v, "signature config")?)
}

/// What was stored.
#[derive(Clone, Debug, Serialize)]
pub struct Stored {
    /// The tag written (tag mode).
    pub tag: Option<String>,
    /// The manifest holding the signature or attestation.
    pub manifest: Digest,
    /// The layer (payload or envelope).
    pub layer: Digest,
}

/// Store one layer (`bytes` with `annotations`) for `subject`: appended to the manifest under the
/// cosign tag `sha256-<hex>.<suffix>`, or as a referrer.
#[allow(clippy::too_many_arguments)]
fn store_layer(
    target: &Target<'_>,
    subject: &Descriptor,
    suffix: &str,
    layer_media_type: &str,
    bytes: &[u8],
    annotations: BTreeMap<String, String>,
    mode: Mode,
    artifact_type: &str,
) -> Result<Stored> {
    let ld = target.put_blob(bytes)?;
    let mut layer = Descriptor::new(layer_media_type, ld.clone(), bytes.len() as u64);
    layer.annotations = annotations;
    match mode {
        Mode::Tag => {
            let tag = cosign_tag(&subject.digest, suffix);
            let mut layers: Vec<Descriptor> = match target.get_tag(&tag)? {
                Some((existing, _)) => {
                    serde_json::from_slice::<Manifest>(&existing)
                        .map_err(|e| SignError::Invalid {
                            what: format!("{}:{tag}", target.describe()),
                            detail: format!(
                                "the existing signature manifest is not an image manifest ({e}); delete the tag or sign with --registry-referrers-mode=oci-1-1"
                            ),
                        })?
                        .layers
                }
                None => Vec::new(),
            };
            // the same payload signed with the same signature already there: nothing to add
            if !layers.iter().any(|l| l == &layer) {
                layers.push(layer);
            }
            let config = cosign_config(&layers)?;
            let cd = target.put_blob(&config)?;
            let m = Manifest {
                schema_version: 2,
                media_type: Some(media::OCI_MANIFEST.into()),
                artifact_type: None,
                config: Descriptor::new(media::OCI_CONFIG, cd, config.len() as u64),
                layers,
                subject: None,
                annotations: BTreeMap::new(),
            };
            let mb = to_json_bytes(&m, "signature manifest")?;
            let d = target.put_manifest(Some(&tag), &mb, media::OCI_MANIFEST)?;
            Ok(Stored {
                tag: Some(tag),
                manifest: d.digest,
                layer: ld,
            })
        }
        Mode::Referrers => {
            target.put_blob(EMPTY_JSON)?;
            let mut subj = Descriptor::new(
                subject.media_type.clone(),
                subject.digest.clone(),
                subject.size,
            );
            subj.annotations.clear();
            let mut ann = BTreeMap::new();
            ann.insert(
                "org.opencontainers.image.created".to_string(),
                now_rfc3339(),
            );
            let m = artifact_manifest(artifact_type, vec![layer], Some(subj), ann);
            let mb = to_json_bytes(&m, "signature manifest")?;
            let d = target.attach(
                &subject.digest,
                &mb,
                media::OCI_MANIFEST,
                Some(artifact_type),
            )?;
            Ok(Stored {
                tag: None,
                manifest: d,
                layer: ld,
            })
        }
    }
}

fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    ocibuild_oci::image::rfc3339(secs)
}

/// Sign the image `subject` at `target`: the payload names `docker_reference` and carries
/// `annotations`.
pub fn sign(
    target: &Target<'_>,
    subject: &Descriptor,
    docker_reference: &str,
    annotations: &BTreeMap<String, String>,
    signer: &dyn Signer,
    mode: Mode,
) -> Result<Stored> {
    let payload = simple_signing_payload(docker_reference, &subject.digest, annotations)?;
    let sig = signer.sign(&payload)?;
    let mut ann = BTreeMap::new();
    ann.insert(SIGNATURE_ANNOTATION.to_string(), B64.encode(&sig));
    store_layer(
        target,
        subject,
        "sig",
        SIMPLESIGNING_MEDIA_TYPE,
        &payload,
        ann,
        mode,
        SIG_ARTIFACT_TYPE,
    )
}

/// Attest: an in-toto Statement about `subject` (named `name`) with `predicate` of
/// `predicate_type`, in a DSSE envelope signed by `signer`.
pub fn attest(
    target: &Target<'_>,
    subject: &Descriptor,
    name: &str,
    predicate_type: &str,
    predicate: serde_json::Value,
    signer: &dyn Signer,
    mode: Mode,
) -> Result<Stored> {
    let mut digest = BTreeMap::new();
    digest.insert(
        subject.digest.algorithm().to_string(),
        subject.digest.hex().to_string(),
    );
    let st = Statement {
        type_: STATEMENT_V1.into(),
        subject: vec![Subject {
            name: name.to_string(),
            digest,
        }],
        predicate_type: predicate_type.into(),
        predicate,
    };
    let payload = serde_json::to_vec(&st).map_err(|e| SignError::Invalid {
        what: "the in-toto statement".into(),
        detail: e.to_string(),
    })?;
    let env = Envelope::sign(signer, IN_TOTO_PAYLOAD_TYPE, &payload)?;
    let bytes = serde_json::to_vec(&env).map_err(|e| SignError::Invalid {
        what: "the DSSE envelope".into(),
        detail: e.to_string(),
    })?;
    let mut ann = BTreeMap::new();
    // cosign writes an empty signature annotation on attestation layers
    ann.insert(SIGNATURE_ANNOTATION.to_string(), String::new());
    ann.insert(
        PREDICATE_TYPE_ANNOTATION.to_string(),
        predicate_type.to_string(),
    );
    store_layer(
        target,
        subject,
        "att",
        DSSE_MEDIA_TYPE,
        &bytes,
        ann,
        mode,
        ATT_ARTIFACT_TYPE,
    )
}

/// One layer found for an image: where it came from and the descriptor.
struct Found {
    source: String,
    layer: Descriptor,
}

/// Every layer of `layer_media_type` attached to `subject`: in the cosign tag and in referrers.
fn find_layers(
    target: &Target<'_>,
    subject: &Digest,
    suffix: &str,
    layer_media_type: &str,
) -> Result<Vec<Found>> {
    let mut out = Vec::new();
    let tag = cosign_tag(subject, suffix);
    if let Some((bytes, _)) = target.get_tag(&tag)?
        && let Ok(m) = serde_json::from_slice::<Manifest>(&bytes)
    {
        for l in m.layers {
            if l.media_type == layer_media_type {
                out.push(Found {
                    source: format!("{}:{tag}", target.describe()),
                    layer: l,
                });
            }
        }
    }
    let refs = match target.referrers(subject) {
        Ok(r) => r.manifests,
        Err(ocibuild_registry::RegistryError::Status {
            status: 400 | 405, ..
        }) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    for r in refs {
        if !media::is_manifest(&r.media_type) {
            continue;
        }
        let bytes = target.get_manifest(&r)?;
        if let Ok(m) = serde_json::from_slice::<Manifest>(&bytes) {
            for l in m.layers {
                if l.media_type == layer_media_type {
                    out.push(Found {
                        source: format!("{}@{} (referrer)", target.describe(), r.digest),
                        layer: l,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// What a verification found: the verified payloads, and why each other candidate failed.
#[derive(Debug, Default)]
pub struct Verification {
    pub verified: Vec<serde_json::Value>,
    pub rejected: Vec<String>,
}

impl Verification {
    /// A one-line reason for exit code 3.
    pub fn why(&self, what: &str) -> String {
        if self.rejected.is_empty() {
            format!("no {what} found")
        } else {
            format!("no valid {what}: {}", self.rejected.join("; "))
        }
    }
}

/// Verify the cosign signatures of `subject` with `key`: each must verify over its payload, the
/// payload must name `subject`'s digest, carry every `required` annotation, and — when
/// `reference` is given — name that repository.
pub fn verify(
    target: &Target<'_>,
    subject: &Digest,
    key: &PublicKey,
    required: &BTreeMap<String, String>,
    reference: Option<&str>,
) -> Result<Verification> {
    let mut v = Verification::default();
    for f in find_layers(target, subject, "sig", SIMPLESIGNING_MEDIA_TYPE)? {
        let at = format!("{} layer {}", f.source, f.layer.digest.short());
        let Some(sig_b64) = f.layer.annotations.get(SIGNATURE_ANNOTATION) else {
            v.rejected
                .push(format!("{at}: no {SIGNATURE_ANNOTATION} annotation"));
            continue;
        };
        let Ok(sig) = B64.decode(sig_b64.trim()) else {
            v.rejected
                .push(format!("{at}: the signature is not base64"));
            continue;
        };
        let payload = match target.get_blob(&f.layer) {
            Ok(p) => p,
            Err(ocibuild_registry::RegistryError::Oci(
                ocibuild_oci::OciError::DigestMismatch { .. },
            )) => {
                v.rejected.push(format!(
                    "{at}: payload tampered (its bytes do not match the layer digest)"
                ));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if !key.verify(&payload, &sig) {
            v.rejected.push(format!(
                "{at}: the signature does not verify with this key (wrong key, or payload or signature tampered)"
            ));
            continue;
        }
        let p: Payload = match serde_json::from_slice(&payload) {
            Ok(p) => p,
            Err(e) => {
                v.rejected.push(format!(
                    "{at}: the payload is not a simple-signing payload: {e}"
                ));
                continue;
            }
        };
        if p.critical.image.docker_manifest_digest != subject.to_string() {
            v.rejected.push(format!(
                "{at}: digest mismatch: the signature covers {}, the image is {subject}",
                p.critical.image.docker_manifest_digest
            ));
            continue;
        }
        if p.critical.type_ != SIMPLESIGNING_TYPE {
            v.rejected.push(format!(
                "{at}: payload type `{}` is not cosign's",
                p.critical.type_
            ));
            continue;
        }
        if let Some(r) = reference
            && p.critical.identity.docker_reference != r
        {
            v.rejected.push(format!(
                "{at}: the signature names {}, not {r} (--check-reference)",
                p.critical.identity.docker_reference
            ));
            continue;
        }
        let opt = p.optional.clone().unwrap_or_default();
        if let Some((k, want)) = required
            .iter()
            .find(|(k, want)| opt.get(*k).and_then(|x| x.as_str()) != Some(want.as_str()))
        {
            v.rejected
                .push(format!("{at}: annotation {k}={want} is missing"));
            continue;
        }
        let value = serde_json::to_value(&p).unwrap_or(serde_json::Value::Null);
        v.verified.push(value);
    }
    Ok(v)
}

/// Verify the attestations of `subject` with `key`: the DSSE signature over PAE, the statement's
/// subject digest, and the predicate type `predicate_type` (any when `None`). The verified
/// envelopes are returned as cosign prints them.
pub fn verify_attestations(
    target: &Target<'_>,
    subject: &Digest,
    key: &PublicKey,
    predicate_type: Option<&str>,
) -> Result<Verification> {
    let mut v = Verification::default();
    for f in find_layers(target, subject, "att", DSSE_MEDIA_TYPE)? {
        let at = format!("{} layer {}", f.source, f.layer.digest.short());
        let bytes = match target.get_blob(&f.layer) {
            Ok(p) => p,
            Err(ocibuild_registry::RegistryError::Oci(
                ocibuild_oci::OciError::DigestMismatch { .. },
            )) => {
                v.rejected.push(format!(
                    "{at}: envelope tampered (its bytes do not match the layer digest)"
                ));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let env: Envelope = match serde_json::from_slice(&bytes) {
            Ok(e) => e,
            Err(e) => {
                v.rejected.push(format!("{at}: not a DSSE envelope: {e}"));
                continue;
            }
        };
        let Ok(payload) = env.payload_bytes() else {
            v.rejected.push(format!("{at}: the payload is not base64"));
            continue;
        };
        let pae = crate::dsse::pae(&env.payload_type, &payload);
        let ok = env.signatures.iter().any(|s| {
            B64.decode(s.sig.trim())
                .is_ok_and(|sig| key.verify(&pae, &sig))
        });
        if !ok {
            v.rejected.push(format!(
                "{at}: no envelope signature verifies with this key (wrong key, or payload or signature tampered)"
            ));
            continue;
        }
        let st: Statement = match serde_json::from_slice(&payload) {
            Ok(s) => s,
            Err(e) => {
                v.rejected.push(format!(
                    "{at}: the payload is not an in-toto statement: {e}"
                ));
                continue;
            }
        };
        let covers = st
            .subject
            .iter()
            .any(|s| s.digest.get(subject.algorithm()).map(String::as_str) == Some(subject.hex()));
        if !covers {
            v.rejected.push(format!(
                "{at}: digest mismatch: the statement's subjects do not include {subject}"
            ));
            continue;
        }
        if let Some(want) = predicate_type
            && st.predicate_type != want
        {
            v.rejected.push(format!(
                "{at}: predicate type {} is not {want}",
                st.predicate_type
            ));
            continue;
        }
        v.verified
            .push(serde_json::to_value(&env).unwrap_or(serde_json::Value::Null));
    }
    Ok(v)
}
