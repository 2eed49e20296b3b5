//! `build --sign[=cosign|notation] [--attest-sbom] [--provenance]`, for both frontends: the key
//! is opened (and its password asked), and for notation the certificate chain read and matched to
//! the key, before anything is built; the SLSA v1 provenance predicate is made from the build
//! record once the build finished; every `oci:` layout and `docker://` output is signed, and the
//! attestations attached, right after the image was written there — so a layout carries its
//! signature before it is ever pushed (`ocibuild copy`/`push` take it along).

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context, Result};
use ocibuild_oci::image::Descriptor;
use ocibuild_oci::reference::{Location, Reference};
use ocibuild_record::BuildRecord;
use ocibuild_registry::artifacts::Target;
use ocibuild_registry::client::Registry;
use ocibuild_sign::cosign::{self, Mode};
use ocibuild_sign::notation::{self, EnvelopeFormat, SignRequest};
use ocibuild_sign::signer::Signer;
use ocibuild_sign::slsa::{BuildMetadata, Provenance, ResourceDescriptor};
use ocibuild_sign::x509::Cert;
use serde_json::{Value, json};
use sha2::Digest as _;

use super::supply::SbomDoc;
use crate::cli::BuildArgs;
use crate::output::{Reporter, usage};
use crate::sign_cli::SignWith;

/// The builder id a provenance names when `--builder-id` is not given.
pub(super) const DEFAULT_BUILDER_ID: &str = "https://ocibuild.dev/builder/v1";

/// What [`begin`] found out before the build.
struct Begun {
    started: u64,
    /// The key `--sign` signs with (a key file, or a key in Azure Key Vault).
    signer: Option<Box<dyn Signer + Send + Sync>>,
    /// `--sign=notation`: the signing certificate chain (checked against the key) and envelope.
    notation: Option<(Vec<Cert>, EnvelopeFormat)>,
    context_digest: Option<String>,
    /// The context's git revision and remote (credentials stripped), for a frontend whose
    /// record has none.
    git: ocibuild_record::Source,
}

static BEGUN: OnceLock<Begun> = OnceLock::new();

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// At the start of a build: note the time; with `--sign`, check the flags, open the key (a
/// wrong password fails here, before anything is built) and, for `--provenance`, digest the
/// context as the build is about to read it. `dockerfile` is the Dockerfile of a Dockerfile build.
pub(super) fn begin(a: &BuildArgs, ctx: &Path, dockerfile: Option<&Path>) -> Result<()> {
    let s = &a.signing;
    let mut begun = Begun {
        started: now_secs(),
        signer: None,
        notation: None,
        context_digest: None,
        git: ocibuild_record::Source::default(),
    };
    if s.provenance() && s.sign.is_none() {
        return Err(usage(
            "--provenance needs --sign --key FILE: the provenance is attached as a signed attestation, as cosign stores them (--provenance=false turns it off)",
        ));
    }
    if s.sign != Some(SignWith::Notation) {
        for (set, flag) in [
            (s.cert.is_some(), "--cert"),
            (s.cert_chain.is_some(), "--cert-chain"),
            (s.signature_format.is_some(), "--signature-format"),
        ] {
            if set {
                return Err(usage(format!(
                    "{flag} is for Notary Project signatures: pass --sign=notation (cosign signatures take only --key)"
                )));
            }
        }
    }
    if let Some(with) = s.sign {
        let key = s.key.as_ref().ok_or_else(|| {
            usage(match with {
                SignWith::Cosign => "--sign needs --key FILE: a cosign key (`ocibuild generate-key-pair`), a PEM private key or azurekms://VAULT/KEY",
                SignWith::Notation => "--sign=notation needs --key FILE|URI and --cert FILE|URI: the signing key and its certificate chain (PEM, leaf first)",
            })
        })?;
        if with == SignWith::Notation && s.cert.is_none() {
            return Err(usage(
                "--sign=notation needs --cert FILE|URI: the signing certificate chain of --key (PEM, leaf first, or azurekv://VAULT/certificates/NAME)",
            ));
        }
        let holds_signatures = a.push
            || a.outputs.iter().any(|o| {
                matches!(
                    Location::parse(o),
                    Ok(Location::Layout { .. } | Location::Registry(_))
                )
            });
        if !holds_signatures {
            return Err(usage(
                "--sign: signatures are stored beside the image in an OCI layout or a registry, and this build writes neither; add --output oci:DIR:TAG (then `ocibuild push` carries the signature) or -t NAME:TAG --push — oci-archive and docker-archive files cannot hold them",
            ));
        }
        super::sign::parse_annotations(&s.sign_annotations)?;
        let signer =
            super::sign::signer(key).with_context(|| format!("--key {}", key.display()))?;
        if let (SignWith::Notation, Some(cert)) = (with, &s.cert) {
            let chain = super::sign_notation::signing_chain(cert, s.cert_chain.as_deref())?;
            // a chain that is not the key's fails now, before anything is built
            notation::check_signing_chain(&chain, signer.as_ref())
                .with_context(|| format!("--cert {}", cert.display()))?;
            let format =
                super::sign_notation::envelope_format(s.signature_format.unwrap_or_default());
            begun.notation = Some((chain, format));
        }
        begun.signer = Some(signer);
        if s.provenance() {
            begun.context_digest = Some(context_digest(a, ctx, dockerfile)?);
            let mut labels = ocibuild_builders::git_labels(ctx);
            begun.git.revision = labels.remove("org.opencontainers.image.revision");
            begun.git.url = labels.remove("org.opencontainers.image.source");
        }
    }
    // one build per process: a second call keeps the first
    let _ = BEGUN.set(begun);
    Ok(())
}

/// The digest of the build context: its files after `.dockerignore` (`<Dockerfile>.dockerignore`
/// first), without `.git` (the revision is its own material) and without what the build writes
/// into it. SHA-256 over one line per entry in path order: `d PATH`, `l TARGET PATH`, or
/// `f X SHA256 PATH` (X: `x` when executable, else `-`).
fn context_digest(a: &BuildArgs, ctx: &Path, dockerfile: Option<&Path>) -> Result<String> {
    let df = dockerfile.map_or_else(|| ctx.join("Dockerfile"), Path::to_path_buf);
    let mut ignore = ocibuild_dockerfile::DockerIgnore::for_dockerfile(ctx, &df)
        .with_context(|| format!("reading the .dockerignore of {}", ctx.display()))?;
    let (written, _) = super::build::output_paths_in_context(a, ctx);
    for rel in std::iter::once(".git".to_string()).chain(written) {
        ignore
            .exclude_always(&rel)
            .with_context(|| format!("leaving {rel} out of the context digest"))?;
    }
    let entries = ocibuild_dockerfile::walk_context(ctx, &ignore)
        .with_context(|| format!("listing the build context {}", ctx.display()))?;
    let mut h = sha2::Sha256::new();
    for rel in entries {
        let p = ctx.join(&rel);
        let shown = rel.to_string_lossy().replace('\\', "/");
        let md = std::fs::symlink_metadata(&p)
            .with_context(|| format!("reading {} for the context digest", p.display()))?;
        let line = if md.is_dir() {
            format!("d {shown}\n")
        } else if md.file_type().is_symlink() {
            let t = std::fs::read_link(&p)
                .with_context(|| format!("reading the link {}", p.display()))?;
            format!("l {} {shown}\n", t.to_string_lossy())
        } else {
            use std::os::unix::fs::PermissionsExt as _;
            let x = if md.permissions().mode() & 0o111 != 0 {
                'x'
            } else {
                '-'
            };
            format!("f {x} {} {shown}\n", file_sha256(&p)?)
        };
        h.update(line.as_bytes());
    }
    Ok(hex::encode(h.finalize()))
}

fn file_sha256(p: &Path) -> Result<String> {
    let mut f = std::fs::File::open(p)
        .with_context(|| format!("reading {} for the context digest", p.display()))?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading {} for the context digest", p.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Whether a build-arg's name says it holds a secret (Docker's `SecretsUsedInArgOrEnv` words:
/// `NPM_TOKEN`, `DB_PASSWORD`, `API_KEY`, `AUTH`, …, also run together: `APITOKEN`).
pub(super) fn secret_name(name: &str) -> bool {
    const EXACT: &[&str] = &[
        "apikey",
        "auth",
        "credential",
        "credentials",
        "key",
        "password",
        "pass",
        "pword",
        "passwd",
        "secret",
        "token",
        "pat",
        "sas",
    ];
    const SUFFIX: &[&str] = &[
        "apikey",
        "token",
        "password",
        "passwd",
        "secret",
        "credential",
        "credentials",
    ];
    name.to_ascii_lowercase()
        .split(['_', '-', '.'])
        .any(|w| EXACT.contains(&w) || SUFFIX.iter().any(|s| w.ends_with(s)))
}

/// A build-arg value as the provenance shows it: `<redacted>` when its name says secret, and a
/// URL's `user:password@` cut out.
fn shown_value(name: &str, value: &str) -> String {
    if secret_name(name) {
        return "<redacted>".to_string();
    }
    let Some(i) = value.find("://") else {
        return value.to_string();
    };
    let rest = &value[i + 3..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{}<redacted>{}", &value[..i + 3], &rest[at..]),
        None => value.to_string(),
    }
}

/// The SLSA v1 provenance predicate of a build, from its record: the builder, the parameters
/// (build-args with secret-named values redacted, `--secret` ids only), and as resolved
/// dependencies the source revision, the context, the bases, the toolchain roots (by their lock
/// key) and the lockfiles, each by digest.
pub(super) fn provenance(
    record: &BuildRecord,
    builder_id: &str,
    context_digest: Option<&str>,
    started: u64,
    finished: u64,
) -> Provenance {
    let p = &record.parameters;
    let mut params = serde_json::Map::new();
    params.insert(
        "frontend".into(),
        serde_json::to_value(&record.frontend).unwrap_or(Value::Null),
    );
    let args: serde_json::Map<String, Value> = p
        .build_args
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(shown_value(k, v))))
        .collect();
    params.insert("buildArgs".into(), Value::Object(args));
    params.insert("secrets".into(), json!(p.secrets));
    params.insert("platforms".into(), json!(p.platforms));
    if let Some(e) = p.source_date_epoch {
        params.insert("sourceDateEpoch".into(), json!(e));
    }
    params.insert("flags".into(), json!(p.flags));
    let mut source = serde_json::Map::new();
    if let Some(u) = &record.source.url {
        source.insert("uri".into(), json!(u));
    }
    if let Some(r) = &record.source.revision {
        source.insert("revision".into(), json!(r));
    }
    if !source.is_empty() {
        params.insert("source".into(), Value::Object(source));
    }

    let mut deps: Vec<ResourceDescriptor> = Vec::new();
    if let Some(rev) = &record.source.revision {
        let mut d = match &record.source.url {
            Some(u) => ResourceDescriptor::new(format!("git+{u}"), "gitCommit", rev),
            None => ResourceDescriptor {
                digest: BTreeMap::from([("gitCommit".to_string(), rev.clone())]),
                ..ResourceDescriptor::default()
            },
        };
        d.name = Some("source".into());
        deps.push(d);
    }
    if let Some(c) =
        context_digest.or_else(|| record.source.context_digest.as_ref().map(|d| d.hex()))
    {
        deps.push(ResourceDescriptor {
            name: Some("context".into()),
            digest: BTreeMap::from([("sha256".to_string(), c.to_string())]),
            ..ResourceDescriptor::default()
        });
    }
    let annotated = |mut d: ResourceDescriptor, ann: Value| {
        if let Value::Object(m) = ann {
            d.annotations = Some(m);
        }
        d
    };
    for img in &record.images {
        for b in &img.bases {
            let Some(digest) = &b.digest else { continue };
            let d = ResourceDescriptor {
                name: Some(format!("base:{}", b.name)),
                ..ResourceDescriptor::new(
                    base_uri(b, &img.platform),
                    digest.algorithm(),
                    digest.hex(),
                )
            };
            deps.push(annotated(
                d,
                json!({"platform": img.platform, "inImage": b.in_image}),
            ));
        }
        for t in &img.toolchains {
            let d = ResourceDescriptor {
                name: Some(format!("toolchain:{}", t.name)),
                ..ResourceDescriptor::new(
                    format!("ocibuild:toolchain/{}", t.name),
                    "sha256",
                    &t.lock_key,
                )
            };
            deps.push(annotated(
                d,
                json!({"platform": img.platform, "digestOf": "the toolchain root's lock: its Debian packages by version and .deb SHA-256"}),
            ));
        }
        for l in &img.lockfiles {
            let d = ResourceDescriptor {
                name: Some(l.path.clone()),
                ..ResourceDescriptor::new(format!("file:{}", l.path), "sha256", &l.sha256)
            };
            if !deps.contains(&d) {
                deps.push(d);
            }
        }
    }
    let metadata = BuildMetadata {
        invocation_id: None,
        started_on: Some(ocibuild_oci::image::rfc3339(started)),
        finished_on: Some(ocibuild_oci::image::rfc3339(finished.max(started))),
    };
    Provenance::new(
        builder_id,
        &record.builder.version,
        deps,
        params,
        Some(metadata),
    )
}

/// A base's URI: `ocibuild:base/PROFILE` for a base assembled from Debian packages, the
/// reference as written for `oci:`/`oci-archive:` bases, else BuildKit's purl form
/// (`pkg:docker/REGISTRY/REPO@TAG?platform=OS%2FARCH`).
fn base_uri(b: &ocibuild_record::Base, platform: &str) -> String {
    if b.debian.is_some() {
        return format!("ocibuild:base/{}", b.reference);
    }
    match Reference::parse(&b.reference) {
        Ok(r) if !b.reference.contains("://") && Location::parse(&b.reference).is_err() => format!(
            "pkg:docker/{}/{}@{}?platform={}",
            r.registry,
            r.repository,
            r.tag_or_latest(),
            platform.replace('/', "%2F")
        ),
        _ => b.reference.clone(),
    }
}

/// What a build signs and attests in each output.
pub(super) struct BuildSigning {
    signer: &'static (dyn Signer + Send + Sync),
    /// `--sign=notation`: the certificate chain and envelope format (else cosign's format).
    notation: Option<&'static (Vec<Cert>, EnvelopeFormat)>,
    annotations: BTreeMap<String, String>,
    mode: Mode,
    /// The name a layout's signature gives the image: the first `-t`'s repository.
    tag_identity: Option<String>,
    /// What is attested, each to its subject.
    attestations: Vec<Attestation>,
    /// The manifests signed besides the root (each platform of a multi-platform build).
    platforms: Vec<Descriptor>,
}

/// One attestation a build attaches in each output.
struct Attestation {
    /// The manifest it is about: `None` for the root (the image, or a multi-platform build's
    /// index: the provenance), else one platform's manifest (that platform's SBOM).
    subject: Option<Descriptor>,
    /// The predicate type URI.
    ptype: String,
    predicate: Value,
    /// What it is, for messages.
    what: String,
}

/// After the build and its gates, before any output: what `--sign` signs and attests (`None`
/// without `--sign`). Writes `--provenance-file`. `sboms`: each image's SBOM documents with the
/// image's manifest (one per platform): `--attest-sbom` attests each to its own manifest.
pub(super) fn prepare(
    a: &BuildArgs,
    record: &BuildRecord,
    sboms: &[(Descriptor, Option<String>, &[SbomDoc])],
    rep: &Reporter,
) -> Result<Option<BuildSigning>> {
    let s = &a.signing;
    let Some(begun) = BEGUN.get() else {
        return Ok(None);
    };
    let Some(signer) = begun.signer.as_deref() else {
        return Ok(None);
    };
    let mut attestations = Vec::new();
    if s.provenance() {
        let builder_id = s.builder_id.as_deref().unwrap_or(DEFAULT_BUILDER_ID);
        // the record's source, else what git says of the context
        let mut rec = record.clone();
        if rec.source.revision.is_none() && rec.source.url.is_none() {
            rec.source.revision = begun.git.revision.clone();
            rec.source.url = begun.git.url.clone();
        }
        let p = provenance(
            &rec,
            builder_id,
            begun.context_digest.as_deref(),
            begun.started,
            now_secs(),
        );
        let v = serde_json::to_value(&p).context("the provenance predicate")?;
        if let Some(f) = &s.provenance_file {
            let mut bytes = serde_json::to_vec_pretty(&v)?;
            bytes.push(b'\n');
            super::write_file_atomically(f, &bytes)
                .with_context(|| format!("writing --provenance-file {}", f.display()))?;
            rep.event(
                &format!("wrote the provenance {}", f.display()),
                json!({"event": "provenance", "path": f.display().to_string()}),
            );
        }
        attestations.push(Attestation {
            subject: None,
            ptype: ocibuild_sign::slsa::PREDICATE_TYPE.to_string(),
            predicate: v,
            what: "SLSA provenance".into(),
        });
    }
    if s.attest_sbom {
        for (manifest, platform, docs) in sboms {
            for d in docs.iter() {
                let (t, what) = if d.file.contains("spdx") {
                    ("spdx", "SPDX SBOM")
                } else {
                    ("cyclonedx", "CycloneDX SBOM")
                };
                let v: Value = serde_json::from_slice(&d.bytes)
                    .with_context(|| format!("reading back {}", d.file))?;
                attestations.push(Attestation {
                    subject: Some(manifest.clone()),
                    ptype: ocibuild_sign::dsse::predicate_type(t)?,
                    predicate: v,
                    what: match platform {
                        Some(p) => format!("{what} of {p}"),
                        None => what.to_string(),
                    },
                });
            }
        }
    }
    let tag_identity = a
        .tags
        .first()
        .map(|t| Reference::parse(t).with_context(|| format!("-t {t}")))
        .transpose()?
        .map(|r| r.name());
    let platforms = if record.index.is_some() {
        record.images.iter().map(|i| i.manifest.clone()).collect()
    } else {
        Vec::new()
    };
    Ok(Some(BuildSigning {
        signer,
        notation: begun.notation.as_ref(),
        annotations: super::sign::parse_annotations(&s.sign_annotations)?,
        mode: super::sign::mode(s.referrers_mode),
        tag_identity,
        attestations,
        platforms,
    }))
}

impl BuildSigning {
    /// Right after the image or index `root` was written to `dest`: sign it there and attach the attestations
    /// (layouts and registries; archives were refused by [`begin`] when they are the only outputs,
    /// and are passed over otherwise).
    pub(super) fn apply(
        &self,
        reg: Option<&Registry>,
        dest: &Location,
        root: &Descriptor,
        rep: &Reporter,
    ) -> Result<()> {
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
                rep.event(
                    &format!("not signed: {dest} cannot hold a signature (an oci: layout or a registry can)"),
                    json!({"event": "warning", "message": "output not signed", "location": dest.to_string()}),
                );
                return Ok(());
            }
        };
        let subject =
            |d: &Descriptor| Descriptor::new(d.media_type.clone(), d.digest.clone(), d.size);
        let root = subject(root);
        for m in std::iter::once(&root).chain(&self.platforms) {
            let m = subject(m);
            if let Some((chain, format)) = self.notation {
                let req = SignRequest {
                    chain,
                    expiry: None,
                    user_metadata: self.annotations.clone(),
                    format: *format,
                    signing_agent: super::sign_notation::signing_agent(),
                    now: now_secs(),
                };
                let signed = notation::sign(&target, &m, self.signer, &req)
                    .with_context(|| format!("signing {name}@{} in {dest} (notation)", m.digest))?;
                rep.event(
                    &format!(
                        "signed {dest} ({}): notation {} referrer {}",
                        m.digest, signed.media_type, signed.manifest
                    ),
                    json!({"event": "signed", "location": dest.to_string(), "digest": m.digest.to_string(), "signature": signed.manifest.to_string(), "tag": null, "format": "notation", "envelope": signed.media_type}),
                );
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
            .with_context(|| format!("signing {name}@{} in {dest}", m.digest))?;
            let at = stored
                .tag
                .clone()
                .unwrap_or_else(|| format!("referrer {}", stored.manifest));
            rep.event(
                &format!("signed {dest} ({}): {at}", m.digest),
                json!({"event": "signed", "location": dest.to_string(), "digest": m.digest.to_string(), "signature": stored.manifest.to_string(), "tag": stored.tag, "format": "cosign"}),
            );
        }
        for at in &self.attestations {
            let (ptype, what) = (&at.ptype, &at.what);
            let about = at.subject.as_ref().map_or_else(|| root.clone(), subject);
            let stored = cosign::attest(
                &target,
                &about,
                &name,
                ptype,
                at.predicate.clone(),
                self.signer,
                self.mode,
            )
            .with_context(|| format!("attaching the {what} attestation to {dest}"))?;
            rep.event(
                &format!(
                    "attested {dest}: {what} ({ptype}) in {}",
                    stored.tag.clone().unwrap_or_else(|| format!("referrer {}", stored.manifest))
                ),
                json!({"event": "attested", "location": dest.to_string(), "digest": about.digest.to_string(), "predicateType": ptype, "attestation": stored.manifest.to_string(), "tag": stored.tag}),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_are_recognised() {
        for n in [
            "NPM_TOKEN",
            "GITHUB_TOKEN",
            "DB_PASSWORD",
            "API_KEY",
            "AUTH",
            "APITOKEN",
            "aws-secret",
            "REGISTRY_CREDENTIALS",
        ] {
            assert!(secret_name(n), "{n}");
        }
        for n in [
            "VERSION",
            "KEYBOARD",
            "MONKEY",
            "PASSAGE",
            "BASE_IMAGE",
            "TOKENIZER_MODEL",
        ] {
            assert!(!secret_name(n), "{n}");
        }
    }

    #[test]
    fn base_uris_name_debian_profiles_layouts_and_registry_images() {
        let base = |reference: &str, debian: bool| ocibuild_record::Base {
            name: "runtime".into(),
            reference: reference.into(),
            digest: None,
            in_image: true,
            debian: debian.then(|| ocibuild_record::DebianSet {
                release: "trixie".into(),
                architecture: "amd64".into(),
                packages: Vec::new(),
            }),
        };
        assert_eq!(
            base_uri(&base("static:nonroot", true), "linux/amd64"),
            "ocibuild:base/static:nonroot"
        );
        assert_eq!(
            base_uri(&base("oci:base:v1", false), "linux/amd64"),
            "oci:base:v1"
        );
        assert_eq!(
            base_uri(
                &base("reg.example.invalid/team/app:1.2", false),
                "linux/arm64"
            ),
            "pkg:docker/reg.example.invalid/team/app@1.2?platform=linux%2Farm64"
        );
    }

    #[test]
    fn values_lose_secrets_and_url_credentials() {
        assert_eq!(shown_value("NPM_TOKEN", "abc"), "<redacted>");
        assert_eq!(shown_value("VERSION", "1.2"), "1.2");
        assert_eq!(
            shown_value("MIRROR", "https://me:pw@mirror.example.invalid/x@y"),
            "https://<redacted>@mirror.example.invalid/x@y"
        );
        assert_eq!(
            shown_value("MIRROR", "https://mirror.example.invalid/x@y"),
            "https://mirror.example.invalid/x@y"
        );
    }
}
