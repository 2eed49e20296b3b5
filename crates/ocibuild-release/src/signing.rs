//! `--sign[=cosign|notation] [--attest-sbom] [--provenance]`: every `oci:` layout and `docker://`
//! output is signed, and the attestations attached, right after the image was written there —
//! so a layout carries its signature before it is ever pushed. A multi-platform index is signed
//! with each platform's manifest; each platform's SBOM is attested to its own manifest, the
//! provenance to the root.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ocibuild_engine::Event;
use ocibuild_oci::image::{Descriptor, Platform};
use ocibuild_oci::reference::Location;
use ocibuild_record::{BuildRecord, Source};
use ocibuild_registry::artifacts::Target;
use ocibuild_registry::client::Registry;
use ocibuild_sign::cosign::{self, Mode};
use ocibuild_sign::notation::{self, EnvelopeFormat, SignRequest};
use ocibuild_sign::signer::Signer;
use ocibuild_sign::x509::Cert;
use serde_json::Value;

use crate::{Events, ReleaseError, SbomDoc};

/// `--provenance`: what the predicate needs besides the build record.
#[derive(Clone, Debug)]
pub struct ProvenanceSpec {
    pub builder_id: String,
    /// The build context's digest, taken when the build started.
    pub context_digest: Option<String>,
    /// The context's git revision and remote, for a record that has none.
    pub git: Source,
    /// When the build started (seconds since the epoch).
    pub started: u64,
    /// `--provenance-file`: the predicate is also written here.
    pub file: Option<PathBuf>,
}

/// Notary Project signatures: the certificate chain (matched to the key before the build), the
/// envelope format and the signing agent named in it.
pub struct NotationSpec<'a> {
    pub chain: &'a [Cert],
    pub format: EnvelopeFormat,
    pub agent: String,
}

/// What `--sign` signs with and attests.
pub struct Signing<'a> {
    pub signer: &'a (dyn Signer + Send + Sync),
    /// `--sign=notation` (else cosign's format).
    pub notation: Option<NotationSpec<'a>>,
    /// `--sign-annotation`s.
    pub annotations: BTreeMap<String, String>,
    /// Tags or OCI 1.1 referrers.
    pub mode: Mode,
    /// The name a layout's signature gives the image: the first `-t`'s repository.
    pub tag_identity: Option<String>,
    pub provenance: Option<ProvenanceSpec>,
    /// `--attest-sbom`: each SBOM document becomes a signed attestation of its image.
    pub attest_sbom: bool,
}

/// One attestation attached in each output.
#[derive(Clone, Debug)]
pub struct Attestation {
    /// The manifest it is about: `None` for the root (the image, or a multi-platform build's
    /// index: the provenance), else one platform's manifest (that platform's SBOM).
    pub subject: Option<Descriptor>,
    pub predicate_type: String,
    pub predicate: Value,
    /// What it is, for messages.
    pub what: String,
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Signing<'_> {
    /// After the gates, before any output: the attestations (the provenance, written to its
    /// file too; each image's SBOM documents for its own manifest).
    pub(crate) fn attestations(
        &self,
        record: &BuildRecord,
        sboms: &[(&Descriptor, Option<&Platform>, &[SbomDoc])],
        events: Events<'_>,
    ) -> Result<Vec<Attestation>, ReleaseError> {
        let mut out = Vec::new();
        if let Some(p) = &self.provenance {
            // the record's source, else what git says of the context
            let mut rec = record.clone();
            if rec.source.revision.is_none() && rec.source.url.is_none() {
                rec.source.revision = p.git.revision.clone();
                rec.source.url = p.git.url.clone();
            }
            let prov = crate::provenance::provenance(
                &rec,
                &p.builder_id,
                p.context_digest.as_deref(),
                p.started,
                now_secs(),
            );
            let json = |source| ReleaseError::Json {
                what: "the provenance predicate".into(),
                source,
            };
            let v = serde_json::to_value(&prov).map_err(json)?;
            if let Some(f) = &p.file {
                let mut bytes = serde_json::to_vec_pretty(&v).map_err(json)?;
                bytes.push(b'\n');
                crate::write_atomically(f, &bytes)?;
                events(Event::ProvenanceWritten { path: f.clone() });
            }
            out.push(Attestation {
                subject: None,
                predicate_type: ocibuild_sign::slsa::PREDICATE_TYPE.to_string(),
                predicate: v,
                what: "SLSA provenance".into(),
            });
        }
        if self.attest_sbom {
            for (manifest, platform, docs) in sboms {
                for d in docs.iter() {
                    let (t, what) = if d.file.contains("spdx") {
                        ("spdx", "SPDX SBOM")
                    } else {
                        ("cyclonedx", "CycloneDX SBOM")
                    };
                    let v: Value =
                        serde_json::from_slice(&d.bytes).map_err(|source| ReleaseError::Json {
                            what: format!("reading back {}", d.file),
                            source,
                        })?;
                    out.push(Attestation {
                        subject: Some((*manifest).clone()),
                        predicate_type: ocibuild_sign::dsse::predicate_type(t).map_err(
                            |source| ReleaseError::Sign {
                                what: format!("the {what} attestation"),
                                source,
                            },
                        )?,
                        predicate: v,
                        what: match platform {
                            Some(p) => format!("{what} of {p}"),
                            None => what.to_string(),
                        },
                    });
                }
            }
        }
        Ok(out)
    }

    /// Right after the image or index `root` was written to `dest`: sign it (and `manifests`,
    /// each platform's) there and attach the attestations. Layouts and registries hold
    /// signatures; other outputs are passed over with a warning.
    pub(crate) fn apply(
        &self,
        reg: Option<&Registry>,
        dest: &Location,
        root: &Descriptor,
        manifests: &[Descriptor],
        attestations: &[Attestation],
        events: Events<'_>,
    ) -> Result<(), ReleaseError> {
        let (target, name) = match (dest, reg) {
            (Location::Layout { dir, tag }, _) => (
                Target::layout(dir),
                self.tag_identity
                    .clone()
                    .or_else(|| tag.clone())
                    .unwrap_or_else(|| "image".to_string()),
            ),
            (Location::Registry(r), Some(reg)) => (
                Target::registry(reg, r.api_registry(), &r.repository),
                r.name(),
            ),
            _ => {
                events(Event::Warning(format!(
                    "not signed: {dest} cannot hold a signature (an oci: layout or a registry can)"
                )));
                return Ok(());
            }
        };
        let subject =
            |d: &Descriptor| Descriptor::new(d.media_type.clone(), d.digest.clone(), d.size);
        let root = subject(root);
        for m in std::iter::once(&root).chain(manifests) {
            let m = subject(m);
            if let Some(n) = &self.notation {
                let req = SignRequest {
                    chain: n.chain,
                    expiry: None,
                    user_metadata: self.annotations.clone(),
                    format: n.format,
                    signing_agent: n.agent.clone(),
                    now: now_secs(),
                };
                let signed = notation::sign(&target, &m, self.signer, &req).map_err(|source| {
                    ReleaseError::Sign {
                        what: format!("signing {name}@{} in {dest} (notation)", m.digest),
                        source,
                    }
                })?;
                events(Event::Signed {
                    location: dest.to_string(),
                    digest: m.digest.to_string(),
                    signature: signed.manifest.to_string(),
                    tag: None,
                    envelope: Some(signed.media_type.to_string()),
                });
                continue;
            }
            let stored = cosign::sign(
                &target,
                &m,
                &name,
                &self.annotations,
                self.signer,
                self.mode,
            )
            .map_err(|source| ReleaseError::Sign {
                what: format!("signing {name}@{} in {dest}", m.digest),
                source,
            })?;
            events(Event::Signed {
                location: dest.to_string(),
                digest: m.digest.to_string(),
                signature: stored.manifest.to_string(),
                tag: stored.tag,
                envelope: None,
            });
        }
        for at in attestations {
            let about = at.subject.as_ref().map_or_else(|| root.clone(), subject);
            let stored = cosign::attest(
                &target,
                &about,
                &name,
                &at.predicate_type,
                at.predicate.clone(),
                self.signer,
                self.mode,
            )
            .map_err(|source| ReleaseError::Sign {
                what: format!("attaching the {} attestation to {dest}", at.what),
                source,
            })?;
            events(Event::Attested {
                location: dest.to_string(),
                what: at.what.clone(),
                predicate_type: at.predicate_type.clone(),
                digest: about.digest.to_string(),
                attestation: stored.manifest.to_string(),
                tag: stored.tag,
            });
        }
        Ok(())
    }
}
