//! `sign --format notation` and `verify --format notation`: Notary Project signatures with an
//! X.509 certificate chain, checked against notation's trust policy and trust store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use ocibuild_sign::azurekv::{self, KeyVault};
use ocibuild_sign::notation::{self, EnvelopeFormat, SignRequest, TrustPolicyDocument, TrustStore};
use ocibuild_sign::signer::Signer;
use ocibuild_sign::x509::Cert;

use super::registry::registry;
use super::sign::{GATE, open_image};
use crate::cli::Global;
use crate::output::UsageError;
use crate::sign_cli::{EnvelopeKind, SignArgs, VerifyArgs};

pub(super) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub(super) fn key_values(list: &[String], flag: &str) -> Result<BTreeMap<String, String>> {
    list.iter()
        .map(|a| {
            a.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| anyhow!(UsageError(format!("{flag} {a}: expected KEY=VALUE"))))
        })
        .collect()
}

/// `sign --format notation`.
pub fn sign(g: &Global, a: SignArgs, signer: &dyn Signer) -> Result<ExitCode> {
    let Some(cert) = &a.cert else {
        return Err(UsageError(
            "--format notation needs --cert FILE: the signing certificate chain (PEM, leaf first) of --key".into(),
        )
        .into());
    };
    let expiry = a
        .expiry
        .as_deref()
        .map(|e| {
            notation::parse_duration(e).ok_or_else(|| {
                anyhow!(UsageError(format!(
                    "--expiry {e}: expected a duration such as 24h, 7d or 1h30m"
                )))
            })
        })
        .transpose()?;
    let chain = signing_chain(cert, a.cert_chain.as_deref())?;
    let req = SignRequest {
        chain: &chain,
        expiry,
        user_metadata: key_values(&a.user_metadata, "--user-metadata")?,
        format: envelope_format(a.signature_format),
        signing_agent: signing_agent(),
        now: now(),
    };
    let reg = registry(g)?;
    let img = open_image(&reg, &a.image)?;
    let signed = notation::sign(&img.target, &img.root, signer, &req)
        .with_context(|| format!("signing {} (notation)", a.image))?;
    eprintln!(
        "Successfully signed {}@{} (notation, {}): signature {} stored as a referrer in {}",
        img.name,
        img.root.digest,
        signed.media_type,
        signed.manifest,
        img.target.describe()
    );
    println!("{}", signed.manifest);
    Ok(ExitCode::SUCCESS)
}

/// The signing certificate chain `--cert` names (a PEM file, leaf first, or a Key Vault
/// certificate), with `--cert-chain`'s CAs after it.
pub(super) fn signing_chain(cert: &Path, cert_chain: Option<&Path>) -> Result<Vec<Cert>> {
    let extra = match cert_chain {
        Some(p) => Cert::read_pem_file(p)?,
        None => Vec::new(),
    };
    let cert_s = cert.to_string_lossy();
    if azurekv::is_cert_uri(&cert_s) {
        return azurekv::certificate_chain(&cert_s, KeyVault::process_env(), extra)
            .with_context(|| format!("--cert {cert_s}"));
    }
    let mut chain = Cert::read_pem_file(cert)?;
    chain.extend(extra);
    Ok(chain)
}

pub(super) fn envelope_format(k: EnvelopeKind) -> EnvelopeFormat {
    match k {
        EnvelopeKind::Jws => EnvelopeFormat::Jws,
        EnvelopeKind::Cose => EnvelopeFormat::Cose,
    }
}

/// `io.cncf.notary.signingAgent`.
pub(super) fn signing_agent() -> String {
    format!("ocibuild/{}", env!("CARGO_PKG_VERSION"))
}

/// notation's configuration directory: `$NOTATION_CONFIG`? no — `$XDG_CONFIG_HOME/notation`,
/// else `~/.config/notation`, as notation itself resolves it on Linux.
fn notation_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .map(|d| d.join("notation"))
}

/// `verify --format notation`.
pub fn verify(g: &Global, a: VerifyArgs) -> Result<ExitCode> {
    let dir = notation_dir();
    let policy_path = match &a.trust_policy {
        Some(p) => p.clone(),
        None => {
            let d = dir
                .clone()
                .context("no --trust-policy given and neither XDG_CONFIG_HOME nor HOME is set")?;
            let oci = d.join("trustpolicy.oci.json");
            if oci.exists() {
                oci
            } else {
                d.join("trustpolicy.json")
            }
        }
    };
    let store_dir = match &a.trust_store {
        Some(p) => p.clone(),
        None => dir
            .context("no --trust-store given and neither XDG_CONFIG_HOME nor HOME is set")?
            .join("truststore"),
    };
    let doc = TrustPolicyDocument::read(&policy_path)?;
    let reg = registry(g)?;
    let img = open_image(&reg, &a.image)?;
    let scope = match &a.scope {
        Some(s) => Some(s.clone()),
        None => match &img.target {
            ocibuild_registry::artifacts::Target::Registry { .. } => Some(img.name.clone()),
            ocibuild_registry::artifacts::Target::Layout { .. } => None,
        },
    };
    let policy = doc
        .for_scope(scope.as_deref())
        .with_context(|| format!("choosing the trust policy for {}", a.image))?;
    let store = TrustStore { dir: store_dir };
    let out = notation::verify(&img.target, &img.root, policy, &store, now())
        .with_context(|| format!("verifying the notation signatures of {}", a.image))?;
    if out.skipped {
        eprintln!(
            "Trust policy `{}` skips signature verification for {}: not verified, allowed",
            out.policy, a.image
        );
        println!("{}", serde_json::to_string(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    for s in &out.signatures {
        for l in &s.logged {
            eprintln!("warning: {} ({}): {l}", s.source, out.level);
        }
    }
    if !out.verified() {
        let why = if out.signatures.is_empty() {
            "no notation signature found".to_string()
        } else {
            out.signatures
                .iter()
                .map(|s| format!("{}: {}", s.source, s.failures.join("; ")))
                .collect::<Vec<_>>()
                .join("\n  ")
        };
        eprintln!(
            "error: {} ({}): signature verification failed under trust policy `{}` ({}):\n  {why}",
            a.image, img.root.digest, out.policy, out.level
        );
        println!("{}", serde_json::to_string(&out)?);
        return Ok(ExitCode::from(GATE));
    }
    if let Some(s) = out.signatures.iter().find(|s| s.verified) {
        for n in &s.notes {
            eprintln!("note: {n}");
        }
        eprintln!(
            "Successfully verified signature for {}@{} (trust policy `{}`, level {}; signed by `{}`)",
            img.name,
            img.root.digest,
            out.policy,
            out.level,
            s.signer.as_deref().unwrap_or("?")
        );
    }
    println!("{}", serde_json::to_string(&out)?);
    Ok(ExitCode::SUCCESS)
}
