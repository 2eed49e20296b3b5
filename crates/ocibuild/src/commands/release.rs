//! What a build does with what it built, for both frontends and any number of platforms:
//! [`ocibuild_release::release`] gates, documents, signs and writes one image or a multi-platform
//! index in one order (its crate docs; README, "What a build does after the last step"): the
//! gates on every platform, then the SBOMs and attestations, then each output written, its SBOMs
//! attached and signed there. Then this module keeps the record and writes `--iidfile` and
//! `--metadata-file`, last.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use ocibuild_engine::{BuildOutcome, FrontendDetail};
use ocibuild_oci::reference::{Location, Reference};
use ocibuild_oci::store::ContentStore;
use ocibuild_policy::Policy;
use ocibuild_policy::cst::Suite;
use ocibuild_release::{CheckGate, ReleaseError, ReleaseOptions};
use serde_json::json;

use crate::cli::{BuildArgs, Global};
use crate::output::Reporter;

/// Release what the build made (flags → [`ReleaseOptions`] → [`ocibuild_release::release`]),
/// then keep its record and write `--iidfile` and `--metadata-file`.
pub(super) fn release(
    g: &Global,
    a: &BuildArgs,
    rep: &Reporter,
    store: &ContentStore,
    out: &BuildOutcome,
) -> Result<()> {
    let outputs = destinations(a)?;
    let registry = if outputs.iter().any(|d| matches!(d, Location::Registry(_))) {
        Some(super::registry::registry(g)?)
    } else {
        None
    };
    let check = if a.check || a.policy.is_some() {
        let policy = match &a.policy {
            Some(p) => Policy::load(p)?,
            None => Policy::default(),
        };
        let suite = policy
            .structure_test
            .as_deref()
            .map(Suite::load)
            .transpose()?;
        Some(CheckGate {
            policy,
            suite,
            file: a.policy.clone(),
        })
    } else {
        None
    };
    let scan = super::supply::BuildScan { g, a };
    let opts = ReleaseOptions {
        outputs,
        registry: registry.as_ref(),
        jobs: g.jobs,
        check,
        scan: a.scan.then_some(&scan as &dyn ocibuild_release::ScanGate),
        sbom: super::supply::sbom_options(a)?,
        signing: super::buildsign::signing(a)?,
        name: a.tags.first().cloned(),
        context: a.context.clone(),
    };
    let released =
        ocibuild_release::release(store, out, &opts, &|e| rep.engine(e)).map_err(|e| match e {
            ReleaseError::GateFailed(m) => super::policy::GateFailed(m).into(),
            e => anyhow::Error::new(e),
        })?;
    if let Some(f) = &a.iidfile {
        super::write_file_atomically(f, released.root.digest.to_string().as_bytes())?;
    }
    super::record::finish(a, store, &out.record, metadata_keys(out))
}

/// Every `--output`, then every `-t` with `--push`.
fn destinations(a: &BuildArgs) -> Result<Vec<Location>> {
    let mut dests: Vec<Location> = a
        .outputs
        .iter()
        .map(|o| Location::parse(o).with_context(|| format!("--output {o}")))
        .collect::<Result<_>>()?;
    if a.push {
        if a.tags.is_empty() {
            bail!("--push needs at least one -t NAME:TAG to push to");
        }
        for t in &a.tags {
            let r = Reference::parse(t).with_context(|| format!("-t {t}"))?;
            dests.push(Location::Registry(r));
        }
    }
    Ok(dests)
}

/// The frontend's own keys of the `--metadata-file` (the rest is the record's, the same for
/// both).
fn metadata_keys(out: &BuildOutcome) -> BTreeMap<String, serde_json::Value> {
    let mut extra = BTreeMap::new();
    match out.platforms.first().map(|p| &p.detail) {
        Some(FrontendDetail::Dockerfile { stages }) => {
            extra.insert("ocibuild.stages".to_string(), json!(stages));
        }
        Some(FrontendDetail::ZeroConfig {
            lang,
            toolchain,
            runtime,
            naive_size,
            tier,
        }) if out.index.is_none() => {
            extra.insert("ocibuild.lang".to_string(), json!(lang));
            extra.insert("ocibuild.toolchain".to_string(), json!(toolchain));
            extra.insert("ocibuild.runtime".to_string(), json!(runtime));
            extra.insert("ocibuild.naive_size".to_string(), json!(naive_size));
            extra.insert(
                "ocibuild.sandbox".to_string(),
                json!(format!("{tier:?}").to_lowercase()),
            );
        }
        _ => {}
    }
    if out.index.is_some() {
        let digests: BTreeMap<String, String> = out
            .platforms
            .iter()
            .map(|p| {
                (
                    p.platform.to_string(),
                    p.image.manifest_desc.digest.to_string(),
                )
            })
            .collect();
        extra.insert("ocibuild.platform.images".to_string(), json!(digests));
    }
    extra
}
