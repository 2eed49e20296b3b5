//! generate-key-pair, sign, verify, attest, verify-attestation — and carrying an image's
//! signatures, attestations and SBOMs along with `copy` and `push`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use ocibuild_oci::image::{Descriptor, ImageSource, read_verified};
use ocibuild_oci::media;
use ocibuild_oci::reference::{Location, Reference};
use ocibuild_registry::artifacts::{Target, carry};
use ocibuild_registry::client::Registry;
use ocibuild_sign::azurekv::{self, KeyVault, KeyVaultSigner};
use ocibuild_sign::cosign::{self, Mode};
use ocibuild_sign::keys::{PublicKey, password_from_env_or_tty};
use ocibuild_sign::signer::{FileSigner, Signer, generate_key_pair as write_pair};
use serde_json::json;

use super::registry::registry;
use crate::cli::Global;
use crate::output::Reporter;
use crate::sign_cli::{
    AttestArgs, GenerateKeyPairArgs, ReferrersMode, SignArgs, SignatureKind, VerifyArgs,
    VerifyAttestationArgs,
};

/// Exit code of a failed verification (a policy gate).
pub(super) const GATE: u8 = 3;

pub fn generate_key_pair(a: GenerateKeyPairArgs) -> Result<ExitCode> {
    if let Some(kms) = &a.kms {
        if !azurekv::is_key_uri(kms) {
            return Err(crate::output::UsageError(format!(
                "--kms {kms}: ocibuild creates keys in Azure Key Vault only: azurekms://NAME.vault.azure.net/KEY"
            ))
            .into());
        }
        let public = azurekv::create_key(kms, KeyVault::process_env())
            .with_context(|| format!("--kms {kms}"))?;
        let pub_path = std::path::PathBuf::from(format!("{}.pub", a.output_key_prefix.display()));
        ocibuild_sign::signer::write_public_key(&pub_path, &public, a.force)?;
        eprintln!("Key created in Azure Key Vault: {kms}");
        eprintln!("Public key written to {}", pub_path.display());
        return Ok(ExitCode::SUCCESS);
    }
    let pw = password_from_env_or_tty(true)?;
    let (k, p) = write_pair(&a.output_key_prefix, a.force, &pw)?;
    eprintln!("Private key written to {}", k.display());
    eprintln!("Public key written to {}", p.display());
    Ok(ExitCode::SUCCESS)
}

/// An image to sign or verify: where it lives, its root descriptor, and the name a payload gives it.
pub(super) struct Image<'r> {
    pub(super) target: Target<'r>,
    pub(super) root: Descriptor,
    /// The repository (`registry/repo`) or, in a layout, the tag.
    pub(super) name: String,
}

pub(super) fn open_image<'r>(reg: &'r Registry, s: &str) -> Result<Image<'r>> {
    let loc = match Location::parse(s) {
        Ok(l) => l,
        Err(_) => {
            Location::Registry(Reference::parse(s).with_context(|| format!("the image `{s}`"))?)
        }
    };
    match loc {
        Location::Registry(r) => {
            let target = Target::registry(reg, r.api_registry(), &r.repository);
            let reference = r
                .digest
                .as_ref()
                .map(|d| d.to_string())
                .unwrap_or_else(|| r.tag_or_latest().to_string());
            let (_, root) = target
                .resolve(&reference)
                .with_context(|| format!("resolving docker://{r}"))?;
            Ok(Image {
                target,
                root,
                name: r.name(),
            })
        }
        Location::Layout { dir, tag } => {
            let target = Target::layout(&dir);
            let (root, name) = match tag {
                Some(t) => {
                    let (_, d) = target
                        .resolve(&t)
                        .with_context(|| format!("resolving oci:{}:{t}", dir.display()))?;
                    (d, t)
                }
                None => layout_only_image(&dir)?,
            };
            Ok(Image { target, root, name })
        }
        other => bail!(
            "{other}: signatures live in registries (docker://) and OCI layouts (oci:DIR:TAG); copy the image to one first"
        ),
    }
}

/// The one image of a layout that is not a signature, attestation or SBOM.
fn layout_only_image(dir: &std::path::Path) -> Result<(Descriptor, String)> {
    let idx = ocibuild_oci::artifact::read_index(dir)?;
    let images: Vec<_> = idx
        .manifests
        .into_iter()
        .filter(|d| d.ref_name().is_some() && !ocibuild_oci::artifact::is_attached(d))
        .collect();
    match images.as_slice() {
        [one] => {
            let name = one.ref_name().unwrap_or_default().to_string();
            let mut d = one.clone();
            d.annotations.clear();
            Ok((d, name))
        }
        _ => bail!(
            "oci:{} holds {} images: name one as oci:{}:TAG",
            dir.display(),
            images.len(),
            dir.display()
        ),
    }
}

pub(super) fn parse_annotations(list: &[String]) -> Result<BTreeMap<String, String>> {
    list.iter()
        .map(|a| {
            a.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| anyhow!("-a {a}: expected KEY=VALUE"))
        })
        .collect()
}

pub(super) fn mode(m: ReferrersMode) -> Mode {
    match m {
        ReferrersMode::Legacy => Mode::Tag,
        ReferrersMode::Oci11 => Mode::Referrers,
    }
}

/// The signer `--key` names: an Azure Key Vault key (`azurekms://…`, or an `https://` vault key
/// id), else a key file.
pub(super) fn signer(key: &std::path::Path) -> Result<Box<dyn Signer + Send + Sync>> {
    let s = key.to_string_lossy();
    if azurekv::is_key_uri(&s) {
        let kv = KeyVaultSigner::open(&s, KeyVault::process_env())
            .with_context(|| format!("--key {s}"))?;
        return Ok(Box::new(kv));
    }
    Ok(Box::new(FileSigner::open(key, &|| {
        password_from_env_or_tty(false)
    })?))
}

/// The public key `--key` names for verifying: a PEM file, or an Azure Key Vault key (its
/// public half, read from the vault, as `cosign verify --key azurekms://…` does).
fn public_key(key: &std::path::Path) -> Result<PublicKey> {
    let s = key.to_string_lossy();
    if azurekv::is_key_uri(&s) {
        let kv = KeyVaultSigner::open(&s, KeyVault::process_env())
            .with_context(|| format!("--key {s}"))?;
        return Ok(kv.public_key()?);
    }
    Ok(PublicKey::read(key)?)
}

/// `--tlog-upload=true` asks for what ocibuild does not do.
fn no_tlog(t: Option<bool>) -> Result<()> {
    if t == Some(true) {
        return Err(crate::output::UsageError(
            "--tlog-upload=true: ocibuild signs without a transparency log (no Rekor); drop the flag or pass --tlog-upload=false, and verify with --insecure-ignore-tlog=true (docs/signing.md)".into(),
        )
        .into());
    }
    Ok(())
}

pub fn sign(g: &Global, a: SignArgs) -> Result<ExitCode> {
    no_tlog(a.tlog_upload)?;
    if a.format == SignatureKind::Notation {
        let signer = signer(&a.key)?;
        return super::sign_notation::sign(g, a, signer.as_ref());
    }
    let annotations = parse_annotations(&a.annotations)?;
    let signer = signer(&a.key)?;
    let reg = registry(g)?;
    let img = open_image(&reg, &a.image)?;
    let identity = a
        .sign_container_identity
        .clone()
        .unwrap_or(img.name.clone());
    let stored = cosign::sign(
        &img.target,
        &img.root,
        &identity,
        &annotations,
        signer.as_ref(),
        mode(a.registry_referrers_mode),
    )
    .with_context(|| format!("signing {}", a.image))?;
    if a.recursive && media::is_index(&img.root.media_type) {
        let bytes = img.target.get_manifest(&img.root)?;
        let idx = ocibuild_oci::image::parse_index(&bytes, &img.root, &a.image)?;
        for m in idx.manifests {
            let mut child = m.clone();
            child.annotations.clear();
            child.platform = None;
            cosign::sign(
                &img.target,
                &child,
                &identity,
                &annotations,
                signer.as_ref(),
                mode(a.registry_referrers_mode),
            )
            .with_context(|| format!("signing {}@{}", img.name, m.digest))?;
            eprintln!("Signed {}@{}", img.name, m.digest);
        }
    }
    match &stored.tag {
        Some(t) => eprintln!(
            "Signed {}@{}: signature stored in {}:{t}",
            img.name,
            img.root.digest,
            img.target.describe()
        ),
        None => eprintln!(
            "Signed {}@{}: signature stored as referrer {}",
            img.name, img.root.digest, stored.manifest
        ),
    }
    println!("{}", stored.manifest);
    Ok(ExitCode::SUCCESS)
}

pub fn verify(g: &Global, a: VerifyArgs) -> Result<ExitCode> {
    if a.format == SignatureKind::Notation {
        return super::sign_notation::verify(g, a);
    }
    let required = parse_annotations(&a.annotations)?;
    let Some(key) = &a.key else {
        return Err(crate::output::UsageError(
            "verify needs --key FILE (the cosign public key), or --format notation with a trust policy".into(),
        )
        .into());
    };
    let key = public_key(key)?;
    let reg = registry(g)?;
    let img = open_image(&reg, &a.image)?;
    let want_ref = a.check_reference.then_some(img.name.as_str());
    let v = cosign::verify(&img.target, &img.root.digest, &key, &required, want_ref)
        .with_context(|| format!("verifying {}", a.image))?;
    if v.verified.is_empty() {
        eprintln!(
            "error: {} ({}): {}",
            a.image,
            img.root.digest,
            v.why("signature")
        );
        return Ok(ExitCode::from(GATE));
    }
    eprintln!("\nVerification for {} --", a.image);
    eprintln!("The following checks were performed on each of these signatures:");
    eprintln!("  - The cosign claims were validated");
    eprintln!("  - The signatures were verified against the specified public key");
    if !required.is_empty() {
        eprintln!("  - Any annotations given were checked");
    }
    println!("{}", serde_json::to_string(&v.verified)?);
    Ok(ExitCode::SUCCESS)
}

pub fn attest(g: &Global, a: AttestArgs) -> Result<ExitCode> {
    no_tlog(a.tlog_upload)?;
    let ptype = ocibuild_sign::dsse::predicate_type(&a.predicate_type)?;
    let text = std::fs::read(&a.predicate)
        .with_context(|| format!("reading the predicate {}", a.predicate.display()))?;
    let predicate: serde_json::Value = match serde_json::from_slice(&text) {
        Ok(v) if a.predicate_type != "custom" => v,
        parsed => {
            if a.predicate_type != "custom" {
                bail!(
                    "--predicate {}: not JSON ({}); a {} predicate is a JSON document",
                    a.predicate.display(),
                    parsed.err().map(|e| e.to_string()).unwrap_or_default(),
                    a.predicate_type
                );
            }
            // cosign's custom predicate: the file's content and a timestamp
            let data = parsed
                .ok()
                .map(|v| serde_json::Value::String(v.to_string()))
                .unwrap_or_else(|| {
                    serde_json::Value::String(String::from_utf8_lossy(&text).into_owned())
                });
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            json!({"data": data, "timestamp": ocibuild_oci::image::rfc3339(now)})
        }
    };
    let signer = signer(&a.key)?;
    let reg = registry(g)?;
    let img = open_image(&reg, &a.image)?;
    let stored = cosign::attest(
        &img.target,
        &img.root,
        &img.name,
        &ptype,
        predicate,
        signer.as_ref(),
        mode(a.registry_referrers_mode),
    )
    .with_context(|| format!("attesting {}", a.image))?;
    eprintln!(
        "Attested {}@{} ({ptype}): stored in {}{}",
        img.name,
        img.root.digest,
        img.target.describe(),
        stored.tag.map(|t| format!(":{t}")).unwrap_or_default()
    );
    println!("{}", stored.manifest);
    Ok(ExitCode::SUCCESS)
}

pub fn verify_attestation(g: &Global, a: VerifyAttestationArgs) -> Result<ExitCode> {
    let ptype = a
        .predicate_type
        .as_deref()
        .map(ocibuild_sign::dsse::predicate_type)
        .transpose()?;
    let key = public_key(&a.key)?;
    let reg = registry(g)?;
    let img = open_image(&reg, &a.image)?;
    let v = cosign::verify_attestations(&img.target, &img.root.digest, &key, ptype.as_deref())
        .with_context(|| format!("verifying the attestations of {}", a.image))?;
    if v.verified.is_empty() {
        eprintln!(
            "error: {} ({}): {}",
            a.image,
            img.root.digest,
            v.why("attestation")
        );
        return Ok(ExitCode::from(GATE));
    }
    eprintln!("\nVerification for {} --", a.image);
    eprintln!("The following checks were performed on each of these signatures:");
    eprintln!("  - The cosign claims were validated");
    eprintln!("  - The signatures were verified against the specified public key");
    for e in &v.verified {
        println!("{}", serde_json::to_string(e)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// The artifact target of a location, when it can hold artifacts (a registry, a layout).
fn artifact_target<'r>(reg: &'r Registry, loc: &Location) -> Option<Target<'r>> {
    match loc {
        Location::Registry(r) => Some(Target::registry(reg, r.api_registry(), &r.repository)),
        Location::Layout { dir, .. } => Some(Target::layout(dir)),
        _ => None,
    }
}

/// After `copy`/`push` wrote `src`'s image to `to`: carry its cosign signatures, attestations and
/// SBOMs (`sha256-<hex>.sig/.att/.sbom`) and OCI 1.1 referrers from `from` along.
pub fn carry_artifacts(
    reg: &Registry,
    rep: &Reporter,
    from: &Location,
    to: &Location,
    src: &dyn ImageSource,
) -> Result<()> {
    let root = src.root()?;
    if !(media::is_manifest(&root.media_type) || media::is_index(&root.media_type)) {
        return Ok(());
    }
    let source = match from {
        // the host that serves the image: a mirror (an exclusive one is the only host asked)
        Location::Registry(r) => {
            let (mirrors, exclusive) = reg.mirrors_for(&r.registry);
            let mut hosts = mirrors.clone();
            if !exclusive || mirrors.is_empty() {
                hosts.push(r.api_registry().to_string());
            }
            let digest = root.digest.to_string();
            let host = match hosts.as_slice() {
                [one] => Some(one.clone()),
                _ => hosts
                    .iter()
                    .find(|h| reg.get_manifest(h, &r.repository, &digest).is_ok())
                    .cloned(),
            };
            host.map(|h| Target::registry(reg, &h, &r.repository))
        }
        other => artifact_target(reg, other),
    };
    let (Some(s), Some(d)) = (source, artifact_target(reg, to)) else {
        return Ok(());
    };
    let bytes = read_verified(src, &root, "manifest")?;
    let report = carry(&s, &d, &root, &bytes).with_context(|| {
        format!(
            "carrying the signatures, attestations and referrers of {} to {}",
            src.describe(),
            d.describe()
        )
    })?;
    for t in &report.tags {
        rep.event(
            &format!("copied {t}"),
            json!({"event": "artifact", "tag": t}),
        );
    }
    for r in &report.referrers {
        rep.event(
            &format!("copied referrer {r}"),
            json!({"event": "artifact", "referrer": r}),
        );
    }
    Ok(())
}
