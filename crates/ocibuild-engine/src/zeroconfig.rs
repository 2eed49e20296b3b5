//! The zero-config frontend's side of the engine: what one platform's build adds to the
//! build's options, what it gives back, the plan's locks and build record, and the `--toolchain
//! host` probe. A plan runs on the one executor: [`crate::build`] lowers it to the build graph
//! ([`crate::lowered`]) and [`crate::df`] runs it (per-step keys, the whole-graph key, change
//! dirs, the local and remote caches).
//!
//! Steps that download (npm ci, pip install) run with the host's network when the plan says so
//! and the user allows it; the CA bundle given in [`crate::BuildOptions::ca_bundle`] (the
//! host's, by default, so corporate intercepting proxies work) is bound at [`CA_PATH`] and named
//! by the variables every common tool reads, and the proxy variables of
//! [`crate::BuildOptions::pass_env`] are passed in.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use ocibuild_builders::{HostTool, Plan, ProbeOutcome, check_host_tool};
use ocibuild_debian::base::Variant;
use ocibuild_oci::image::Image;
use ocibuild_sandbox::run::Tier;

use crate::error::Result;
use crate::roots::Bases;

/// Where the CA bundle is bound inside a step.
pub const CA_PATH: &str = "/run/ocibuild/ca-certificates.crt";

/// The variables that point common tools at [`CA_PATH`].
pub const CA_VARS: &[&str] = &[
    "SSL_CERT_FILE",
    "NODE_EXTRA_CA_CERTS",
    "NPM_CONFIG_CAFILE",
    "PIP_CERT",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "GIT_SSL_CAINFO",
];

/// The proxy variables passed into steps by default (when set on the host).
pub const PROXY_VARS: &[&str] = &[
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
];

/// The `PATH` every step starts from.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One platform's zero-config build: the build's options ([`crate::BuildOptions`]) and what
/// this frontend adds to them for the platform (its toolchain root's and runtime base's
/// packages, the labels it sets, `--toolchain host`, `--compare-naive`).
#[derive(Clone)]
pub(crate) struct Run<'a> {
    pub common: &'a crate::BuildOptions<'a>,
    /// Toolchain roots (the architecture the steps run on).
    pub toolchain_bases: Bases,
    /// Runtime bases (the target architecture).
    pub runtime_bases: Bases,
    /// `--toolchain host`: steps run over the host's `/` instead of a Debian toolchain root.
    pub host_toolchain: bool,
    /// Also measure the naive single-stage image (the build stage taken as the final one) to
    /// report the size reduction.
    pub compare_naive: bool,
    /// The image's labels: the app's git labels, `created`, and the build's own.
    pub labels: BTreeMap<String, String>,
}

/// What one platform's zero-config build made.
#[derive(Clone, Debug)]
pub struct Built {
    pub image: Image,
    /// The runtime base's manifest digest.
    pub runtime: String,
    /// The toolchain root's lock key (`None` with `--toolchain host`).
    pub toolchain: Option<String>,
    /// (layer name, digest, compressed size, reused)
    pub layers: Vec<(String, String, u64, bool)>,
    pub tier: Tier,
    /// Steps run, with their wall seconds.
    pub steps: Vec<(String, f64)>,
    /// With `--compare-naive`: the naive image's compressed size.
    pub naive_size: Option<u64>,
    /// Taken whole from the build cache: no step ran.
    pub cached: bool,
    /// What the build made and knows (`docs/build-record.md`).
    pub record: ocibuild_record::BuildRecord,
}

/// `--toolchain host`: probe the host programs the plan's steps run (each looked up on the
/// steps' `PATH`, which over the host root is the host's own `/usr` and `/bin`, and asked for
/// its version), before anything is built. Returns what was found, one line per program
/// (for `--explain`); fails with what is missing or too old and what to do.
pub fn probe_host_tools(plan: &Plan) -> Result<Vec<String>> {
    let mut path = plan.toolchain.path_prepend.join(":");
    if !path.is_empty() {
        path.push(':');
    }
    path.push_str(DEFAULT_PATH);
    plan.toolchain
        .host_tools
        .iter()
        .map(|t| Ok(check_host_tool(t, &probe_host_tool(t, &path))?))
        .collect()
}

fn probe_host_tool(tool: &HostTool, path: &str) -> ProbeOutcome {
    use std::os::unix::fs::PermissionsExt as _;
    let found = path
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(&tool.program))
        .find(|p| {
            fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        });
    let Some(program) = found else {
        return ProbeOutcome::NotFound {
            path: path.to_string(),
        };
    };
    let mut cmd = std::process::Command::new(&program);
    cmd.args(tool.version_argv.iter().skip(1))
        .env_clear()
        .env("PATH", path)
        .env("LC_ALL", "C")
        .env("GOTOOLCHAIN", "local")
        .stdin(std::process::Stdio::null());
    if let Some(home) = std::env::var_os("HOME") {
        cmd.env("HOME", home);
    }
    match cmd.output() {
        Ok(out) => {
            let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
            output.push_str(&String::from_utf8_lossy(&out.stderr));
            ProbeOutcome::Ran {
                program,
                success: out.status.success(),
                status: out.status.to_string(),
                output,
            }
        }
        Err(e) => ProbeOutcome::Failed {
            program,
            error: e.to_string(),
        },
    }
}

/// The earliest time a ZIP entry can carry (1980-01-01T00:00:00Z).
pub const ZIP_EPOCH: u64 = 315_532_800;

/// The `SOURCE_DATE_EPOCH` the steps see: the user's, raised to [`ZIP_EPOCH`]. Steps write
/// ZIP-based artefacts (wheels, jars, eggs) stamped with it, and ZIP cannot hold earlier times
/// (hatchling stops with "ZIP does not support timestamps before 1980" on the default 0). The
/// image's `created` and file times still follow the user's epoch.
pub fn step_source_date_epoch(user: u64) -> u64 {
    user.max(ZIP_EPOCH)
}

/// The toolchain profile and packages to lock for a plan. Go comes on `build-base` with its
/// golang package (the release's `golang-go`, or a `golang-1.N-go` from backports), plus git only
/// when a step may download modules (go.mod requires modules and there is no `vendor/`: the
/// steps that get the network): `go` needs git for `GOPROXY=direct` and private modules, never
/// for a stdlib-only or vendored build (`-buildvcs=false`), and git brings perl along (about
/// 120 MB and a second of unpacking on every cold toolchain root).
pub fn toolchain_request(plan: &Plan) -> (String, Vec<String>) {
    let t = &plan.toolchain;
    if t.profile != "go" {
        return (t.profile.clone(), t.packages.clone());
    }
    let backport_go = t
        .packages
        .iter()
        .any(|p| p.starts_with("golang-1.") && p.ends_with("-go"));
    let mut pk: Vec<String> = Vec::new();
    if !backport_go {
        pk.push("golang-go".into());
    }
    pk.extend(t.packages.iter().cloned());
    let downloads = plan.steps.iter().any(|s| s.network);
    if downloads && !pk.iter().any(|p| p == "git") {
        pk.push("git".into());
    }
    ("build-base".into(), pk)
}

/// The plan's toolchain lock (`None` with `--toolchain host`) and runtime lock.
pub(crate) struct Locks {
    pub toolchain: Option<crate::roots::Locked>,
    pub runtime: crate::roots::Locked,
}

/// Lock the plan's toolchain root and runtime base (cheap: signed indexes), building nothing.
pub(crate) fn locks(plan: &Plan, o: &Run<'_>) -> Result<Locks> {
    let toolchain = if host_toolchain(plan, o) {
        None
    } else {
        let (profile, packages) = toolchain_request(plan);
        Some(o.toolchain_bases.toolchain_locked(
            &profile,
            Variant::Default,
            &packages,
            plan.toolchain.backports,
        )?)
    };
    let variant: Variant = plan.runtime.variant.parse().unwrap_or(Variant::Nonroot);
    let runtime = o.runtime_bases.locked(
        &plan.runtime.profile,
        variant,
        &plan.runtime.packages,
        false,
    )?;
    Ok(Locks { toolchain, runtime })
}

fn host_toolchain(plan: &Plan, o: &Run<'_>) -> bool {
    o.host_toolchain || plan.toolchain.profile == "host"
}

/// The Debian packages of a lock, each with the layer (profile) it is placed in. The source
/// package is not known yet: the lock does not record it (see `docs/build-record.md`).
fn debian_set(lock: &ocibuild_debian::base::Lockfile) -> ocibuild_record::DebianSet {
    ocibuild_record::DebianSet {
        release: lock.release.clone(),
        architecture: lock.arch.clone(),
        packages: lock
            .layers
            .iter()
            .flat_map(|l| {
                l.packages.iter().map(|p| ocibuild_record::DebianPackage {
                    name: p.name.clone(),
                    version: p.version.clone(),
                    architecture: p.arch.clone(),
                    source: p.source_package.clone(),
                    source_version: p.source_version.clone(),
                    sha256: Some(p.sha256.clone()),
                    layer: Some(l.name.clone()),
                })
            })
            .collect(),
    }
}

/// The build record of a zero-config build: the image on its runtime base (the base's layers
/// named by its lock's layers, the app's by the plan's), the toolchain root, the app's
/// lockfiles, and the plan's steps with how each ended. Zero-config steps have no keys of their
/// own yet: each carries the whole build's key.
#[allow(clippy::too_many_arguments)]
pub(crate) fn build_record(
    app: &Path,
    plan: &Plan,
    o: &Run<'_>,
    k: &Locks,
    key: &str,
    image: &Image,
    app_layers: &[String],
    runtime: &str,
    statuses: Vec<ocibuild_record::StepStatus>,
) -> Result<ocibuild_record::BuildRecord> {
    use ocibuild_record as r;
    let platform = format!("linux/{}", o.runtime_bases.arch);
    let facts = BTreeMap::from([
        ("entrypoint".to_string(), plan.config.entrypoint.join(" ")),
        (
            "toolchain".to_string(),
            format!("{} {}", plan.toolchain.profile, plan.toolchain.version),
        ),
        (
            "runtime".to_string(),
            format!("{}:{}", plan.runtime.profile, plan.runtime.variant),
        ),
    ]);
    let mut rec = r::BuildRecord::new(
        r::Builder::ocibuild(env!("CARGO_PKG_VERSION")),
        r::Frontend::ZeroConfig {
            language: plan.lang.to_string(),
            facts,
        },
    );
    // the git labels the command set (credentials already stripped from the URL)
    rec.source.revision = o.labels.get("org.opencontainers.image.revision").cloned();
    rec.source.url = o.labels.get("org.opencontainers.image.source").cloned();
    rec.parameters = r::Parameters {
        build_args: BTreeMap::new(),
        secrets: Vec::new(),
        platforms: vec![platform.clone()],
        source_date_epoch: Some(o.common.source_date_epoch),
        flags: BTreeMap::from([
            (
                "network".to_string(),
                if o.common.network { "default" } else { "none" }.to_string(),
            ),
            (
                "distro".to_string(),
                o.runtime_bases.release.codename().to_string(),
            ),
            (
                "toolchain".to_string(),
                if host_toolchain(plan, o) {
                    "host"
                } else {
                    "debian"
                }
                .to_string(),
            ),
        ]),
    };
    let diff_ids = image.diff_ids()?;
    let n_base = image.manifest.layers.len().saturating_sub(app_layers.len());
    let base_names: Vec<String> = k
        .runtime
        .lock
        .layers
        .iter()
        .map(|l| l.name.clone())
        .collect();
    let layers = image
        .manifest
        .layers
        .iter()
        .zip(diff_ids)
        .enumerate()
        .map(|(i, (d, diff_id))| r::Layer {
            descriptor: d.clone(),
            diff_id,
            origin: if i < n_base {
                r::LayerOrigin::Base {
                    base: 0,
                    // the lock's layers, then the base's fixups (users, CA bundle, links)
                    name: Some(
                        base_names
                            .get(i)
                            .cloned()
                            .unwrap_or_else(|| "fixups".to_string()),
                    ),
                }
            } else {
                r::LayerOrigin::App {
                    name: app_layers[i - n_base].clone(),
                }
            },
        })
        .collect();
    rec.images.push(r::PlatformImage {
        platform: platform.clone(),
        manifest: image.manifest_desc.clone(),
        config: image.manifest.config.clone(),
        layers,
        bases: vec![r::Base {
            name: "runtime".into(),
            reference: format!("{}:{}", plan.runtime.profile, plan.runtime.variant),
            digest: runtime.parse().ok(),
            in_image: true,
            debian: Some(debian_set(&k.runtime.lock)),
        }],
        toolchains: k
            .toolchain
            .as_ref()
            .map(|t| r::Toolchain {
                name: toolchain_request(plan).0,
                lock_key: t.key.clone(),
                debian: Some(debian_set(&t.lock)),
            })
            .into_iter()
            .collect(),
        lockfiles: crate::df::lockfiles_of(app),
        outputs: Vec::new(),
    });
    rec.steps = plan
        .steps
        .iter()
        .zip(statuses)
        .enumerate()
        .map(|(i, (s, status))| r::Step {
            id: format!("build/{}", i + 1),
            stage: "build".into(),
            name: s.name.clone(),
            platform: platform.clone(),
            key: key.to_string(),
            status,
            layer: None,
        })
        .collect();
    Ok(rec)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn go_toolchains_get_git_only_when_modules_may_be_downloaded() {
        let t = tempfile::tempdir().unwrap();
        let app = |name: &str, gomod: &str, vendor: bool| {
            let d = t.path().join(name);
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join("go.mod"), gomod).unwrap();
            fs::write(d.join("main.go"), "package main\nfunc main() {}\n").unwrap();
            if vendor {
                fs::create_dir_all(d.join("vendor")).unwrap();
                fs::write(d.join("vendor/modules.txt"), "").unwrap();
            }
            let plan = ocibuild_builders::plan(&d, &ocibuild_builders::Options::default()).unwrap();
            toolchain_request(&plan)
        };
        let req = "module x\n\ngo 1.22\n\nrequire example.com/dep v1.0.0\n";
        let std_only = app("std", "module x\n\ngo 1.22\n", false);
        assert_eq!(
            std_only,
            ("build-base".to_string(), vec!["golang-go".to_string()])
        );
        let deps = app("deps", req, false);
        assert_eq!(deps.1, ["golang-go", "git"]);
        let vendored = app("vendored", req, true);
        assert_eq!(vendored.1, ["golang-go"]);
        // a Go from backports replaces golang-go
        let newer = app(
            "newer",
            "module x\n\ngo 1.26\n\nrequire example.com/dep v1.0.0\n",
            false,
        );
        assert_eq!(newer.1, ["golang-1.26-go", "git"]);
    }

    #[test]
    fn steps_see_an_epoch_zip_can_hold() {
        assert_eq!(step_source_date_epoch(0), 315_532_800);
        assert_eq!(step_source_date_epoch(1), ZIP_EPOCH);
        assert_eq!(step_source_date_epoch(1_700_000_000), 1_700_000_000);
    }
}
