//! `build --sign[=cosign|notation] [--attest-sbom] [--provenance]`, for both frontends: the key
//! is opened (and its password asked), and for notation the certificate chain read and matched to
//! the key, and the context digested, before anything is built. What is signed and attested,
//! where and when, is `ocibuild-release`'s ([`ocibuild_release::Signing`]).

use std::io::Read as _;
use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context, Result};
use ocibuild_oci::reference::{Location, Reference};
use ocibuild_release::provenance::DEFAULT_BUILDER_ID;
use ocibuild_release::signing::NotationSpec;
use ocibuild_release::{ProvenanceSpec, Signing};
use ocibuild_sign::notation::{self, EnvelopeFormat};
use ocibuild_sign::signer::Signer;
use ocibuild_sign::x509::Cert;
use sha2::Digest as _;

use crate::cli::BuildArgs;
use crate::output::usage;
use crate::sign_cli::SignWith;

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
    let (written, _) = super::build_flags::output_paths_in_context(a, ctx);
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

/// What `--sign` signs with and attests, for [`ocibuild_release::release`] (`None` without
/// `--sign`): the key [`begin`] opened, and the provenance's start and context.
pub(super) fn signing(a: &BuildArgs) -> Result<Option<Signing<'static>>> {
    let s = &a.signing;
    let Some(begun) = BEGUN.get() else {
        return Ok(None);
    };
    let Some(signer) = begun.signer.as_deref() else {
        return Ok(None);
    };
    let tag_identity = a
        .tags
        .first()
        .map(|t| Reference::parse(t).with_context(|| format!("-t {t}")))
        .transpose()?
        .map(|r| r.name());
    Ok(Some(Signing {
        signer,
        notation: begun.notation.as_ref().map(|(chain, format)| NotationSpec {
            chain: chain.as_slice(),
            format: *format,
            agent: super::sign_notation::signing_agent(),
        }),
        annotations: super::sign::parse_annotations(&s.sign_annotations)?,
        mode: super::sign::mode(s.referrers_mode),
        tag_identity,
        provenance: s.provenance().then(|| ProvenanceSpec {
            builder_id: s
                .builder_id
                .clone()
                .unwrap_or_else(|| DEFAULT_BUILDER_ID.to_string()),
            context_digest: begun.context_digest.clone(),
            git: begun.git.clone(),
            started: begun.started,
            file: s.provenance_file.clone(),
        }),
        attest_sbom: s.attest_sbom,
    }))
}
