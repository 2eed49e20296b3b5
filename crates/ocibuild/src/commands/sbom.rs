//! `ocibuild sbom`: the SBOM of any image, schema validation of SBOM documents, and the licence
//! gate (exit 3).

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use ocibuild_oci::image::Platform;
use ocibuild_oci::reference::Location;
use ocibuild_sbom::policy::Policy;

use crate::cli::{Global, SbomArgs, SbomFormat};

pub fn run(g: &Global, a: SbomArgs) -> Result<ExitCode> {
    if let Some(file) = &a.validate {
        return validate(file);
    }
    let Some(image) = a.image.as_deref() else {
        bail!(
            "name an image (`ocibuild sbom oci:DIR:TAG`) or a document to check (`--validate FILE`)"
        );
    };
    let mut policy = Policy::default();
    policy
        .deny_ids(a.license_deny.iter().map(String::as_str), "--license-deny")
        .context("reading --license-deny")?;
    if let Some(p) = &a.license_policy {
        let text = std::fs::read_to_string(p)
            .with_context(|| format!("reading the licence policy {}", p.display()))?;
        policy
            .load_file(&text, &p.display().to_string())
            .with_context(|| format!("reading the licence policy {}", p.display()))?;
    }
    policy.fail_unknown |= a.license_fail_unknown;

    let loc = Location::parse(image)?;
    let reg = super::registry::registry(g)?;
    let src = super::registry::open_any(&loc, &reg)?;
    let platform = a.platform.as_deref().map(Platform::parse).transpose()?;
    // an image this store built: from its build record, as `build --sbom` does
    let loaded = ocibuild_oci::image::load_image(src.as_ref(), platform.as_ref())
        .with_context(|| format!("cataloguing {}", src.describe()))?;
    let record = super::supply::stored_record(g, &loaded);
    let known = record.as_ref().and_then(|r| {
        r.images
            .iter()
            .find(|i| i.manifest.digest == loaded.manifest_desc.digest)
    });
    let sbom = match known {
        Some(pi) => {
            let pi = super::supply::inherit_base_locks(g, pi);
            let facts = ocibuild_sbom::BuildFacts {
                image: &pi,
                lockfiles: Vec::new(),
            };
            ocibuild_sbom::catalog_build(src.as_ref(), &loaded, image, &facts)
        }
        None => ocibuild_sbom::catalog_image(src.as_ref(), &loaded, image),
    }
    .with_context(|| format!("cataloguing {}", src.describe()))?;
    let doc = match a.format {
        SbomFormat::Cyclonedx => ocibuild_sbom::cyclonedx::document(&sbom),
        SbomFormat::Spdx => ocibuild_sbom::spdx_doc::document(&sbom),
    };
    let mut bytes = serde_json::to_vec_pretty(&doc)?;
    bytes.push(b'\n');
    match &a.output {
        Some(path) => {
            super::write_file_atomically(path, &bytes)?;
            eprintln!(
                "wrote {} ({} components) to {}",
                match a.format {
                    SbomFormat::Cyclonedx => "CycloneDX 1.6",
                    SbomFormat::Spdx => "SPDX 2.3",
                },
                sbom.components.len(),
                path.display()
            );
        }
        None => {
            use std::io::Write;
            std::io::stdout().lock().write_all(&bytes)?;
        }
    }

    let gated = !policy.deny.is_empty() || policy.fail_unknown;
    if !gated {
        return Ok(ExitCode::SUCCESS);
    }
    let outcome = policy.check(&sbom.components);
    for f in &outcome.denied {
        eprintln!(
            "licence denied: {} {} ({}) at /{}: {}",
            f.name, f.version, f.purl, f.path, f.licenses
        );
    }
    if !outcome.unknown.is_empty() {
        let verb = if policy.fail_unknown {
            "licence unknown"
        } else {
            "note: licence unknown"
        };
        for f in &outcome.unknown {
            eprintln!(
                "{verb}: {} {} ({}) at /{}: {}",
                f.name, f.version, f.purl, f.path, f.licenses
            );
        }
    }
    if outcome.fails(&policy) {
        eprintln!(
            "licence policy failed: {} package(s) with a denied licence{}",
            outcome.denied.len(),
            if policy.fail_unknown {
                format!(
                    ", {} with an unknown licence (--license-fail-unknown)",
                    outcome.unknown.len()
                )
            } else {
                String::new()
            }
        );
        return Ok(ExitCode::from(3));
    }
    eprintln!(
        "licence policy passed ({} package(s) with an unknown licence)",
        outcome.unknown.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn validate(file: &std::path::Path) -> Result<ExitCode> {
    let text = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let doc: serde_json::Value =
        serde_json::from_slice(&text).with_context(|| format!("{} is not JSON", file.display()))?;
    let (format, violations) = ocibuild_sbom::validate::validate(&doc)
        .with_context(|| format!("validating {}", file.display()))?;
    if violations.is_empty() {
        println!("{}: valid {}", file.display(), format.name());
        return Ok(ExitCode::SUCCESS);
    }
    for v in &violations {
        let at = if v.pointer.is_empty() {
            "/"
        } else {
            v.pointer.as_str()
        };
        eprintln!("{}: {at}: {}", file.display(), v.message);
    }
    eprintln!(
        "{}: not a valid {} document ({} schema violation(s))",
        file.display(),
        format.name(),
        violations.len()
    );
    Ok(ExitCode::FAILURE)
}
