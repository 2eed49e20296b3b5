//! Run a zero-config [`Plan`]: toolchain root → sandboxed steps → layers → final image.
//!
//! The app directory is never modified: a filtered copy of it is bound read-write at the plan's
//! `source_dir` (`/src`), each of the plan's `outputs` is a fresh host directory bound at its
//! path, and each cache mount a persistent directory under `ROOT/engine/cache/<name>`. Only those
//! binds survive from one step to the next (each step's changes to the toolchain root itself are
//! discarded), so plans put everything they need later under them. After the last step, each
//! [`LayerSpec`](ocibuild_builders::LayerSpec) selects files from a bound directory and becomes one layer of the final image,
//! on the runtime base.
//!
//! Steps that download (npm ci, pip install) run with the host's network when the plan says so
//! and the user allows it; the CA bundle given in [`Options::ca_bundle`] (the host's, by default,
//! so corporate intercepting proxies work) is bound at [`CA_PATH`] and named by the variables
//! every common tool reads, and the proxy variables of [`Options::pass_env`] are passed in.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ocibuild_builders::{
    Filter, HostTool, Plan, ProbeOutcome, check_host_tool, glob_filter, walk_filtered,
};
use ocibuild_debian::base::Variant;
use ocibuild_oci::assemble::{AssembleSpec, ConfigEdits, LayerInput, assemble};
use ocibuild_oci::image::Image;
use ocibuild_oci::media::Compression;
use ocibuild_oci::store::ContentStore;
use ocibuild_sandbox::probe::{Isolation, choose_tier, probe};
use ocibuild_sandbox::run::{Mount, Network, RootfsSource, Spec, Tier, run_streaming};
use serde_json::json;

use crate::Event;
use crate::error::{EngineError, Result};
use crate::roots::{Base, Bases};
use ocibuild_cache::{CacheBackend, Fetch, Mode, PutOutcome};
use ocibuild_oci::image::Descriptor;
use serde::{Deserialize, Serialize};

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

/// How to run a plan.
#[derive(Clone, Debug)]
pub struct Options {
    /// Toolchain roots (host architecture).
    pub toolchain_bases: Bases,
    /// Runtime bases (the target architecture).
    pub runtime_bases: Bases,
    pub isolation: Isolation,
    /// `--network none` makes this false: no step gets the network, whatever the plan says.
    pub network: bool,
    /// Bound at [`CA_PATH`] for every step (`None`: the toolchain root's own bundle).
    pub ca_bundle: Option<PathBuf>,
    /// Extra variables for every step (proxy settings, `--build-env`).
    pub pass_env: Vec<(String, String)>,
    pub source_date_epoch: u64,
    pub compression: Compression,
    pub level: Option<u32>,
    /// `--toolchain host`: steps run over the host's `/` instead of a Debian toolchain root.
    pub host_toolchain: bool,
    /// Added to the plan's labels (created, version …).
    pub labels: BTreeMap<String, String>,
    /// Also assemble the naive single-stage image (toolchain root + the source and build
    /// outputs, what a one-stage Dockerfile gives) to report the size reduction.
    pub compare_naive: bool,
    /// `--no-cache`: run every step even when nothing changed.
    pub no_cache: bool,
    /// Paths relative to the app dir left out of the source (never part of the build key):
    /// the build's own outputs when they lie inside the app dir.
    pub context_excludes: Vec<String>,
}

/// The plan's source excludes plus [`Options::context_excludes`], taken literally.
fn source_filter(plan: &Plan, o: &Options) -> Result<Filter> {
    let mut ex = plan.source_exclude.clone();
    ex.extend(o.context_excludes.iter().map(|r| globset::escape(r)));
    Ok(glob_filter(&[], &ex)?)
}

/// What [`build`] made.
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
    /// With [`Options::compare_naive`]: the naive image's compressed size.
    pub naive_size: Option<u64>,
    /// Taken whole from the build cache: no step ran.
    pub cached: bool,
    /// What the build made and knows (`docs/build-record.md`).
    pub record: ocibuild_record::BuildRecord,
}

/// The shared build caches of a zero-config build (`--cache-from` / `--cache-to`), and what to
/// do with them.
#[derive(Default)]
pub struct Shared<'a> {
    pub from: Vec<Box<dyn CacheBackend + 'a>>,
    pub to: Vec<(Box<dyn CacheBackend + 'a>, Mode, bool)>,
    /// `--explain-cache`: on a miss, say what changed since this app's last build.
    pub explain: bool,
}

/// A build record: the image a build key gave (local: `ROOT/engine/builds/<key>.json`; shared:
/// the index object of the key).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct BuildRecord {
    kind: String,
    manifest: Descriptor,
    /// (layer name, digest, compressed size, reused)
    layers: Vec<(String, String, u64, bool)>,
    naive_size: Option<u64>,
    runtime: String,
    toolchain: Option<String>,
    /// What the key was made of (local records only: it lists every source file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    components: Option<Components>,
}

const RECORD_KIND: &str = "zeroconfig-build";

/// Everything a zero-config build's key is made of, kept so a miss can be explained.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Components {
    /// SHA256 of the plan (builder definition, ocibuild.toml, detected facts).
    plan: String,
    /// The toolchain root's lock key (`None`: the host's toolchain).
    toolchain: Option<String>,
    /// The runtime base's lock key.
    runtime: String,
    /// The options that change the result (times, compression, labels, `--build-env`).
    options: String,
    /// Source file → `F <exec> <sha256>`, `L <target>` or `D`.
    files: BTreeMap<String, String>,
}

impl Components {
    fn key(&self) -> String {
        use sha2::{Digest as _, Sha256};
        let mut h = Sha256::new();
        h.update(b"zeroconfig-build-v4\0");
        h.update(serde_json::to_vec(self).unwrap_or_default());
        hex::encode(h.finalize())
    }

    /// What differs from an earlier build's components, in words.
    fn explain(&self, before: &Components) -> Vec<String> {
        let mut why = Vec::new();
        if self.plan != before.plan {
            why.push(
                "the build plan (builder definition, ocibuild.toml, detected entrypoint or versions)"
                    .to_string(),
            );
        }
        if self.toolchain != before.toolchain {
            why.push(
                "the toolchain root (its Debian packages were updated, or --toolchain changed)"
                    .to_string(),
            );
        }
        if self.runtime != before.runtime {
            why.push("the runtime base (its Debian packages were updated)".to_string());
        }
        if self.options != before.options {
            why.push("the build options (--source-date-epoch, --compression, labels, --build-env, --compare-naive)".to_string());
        }
        let mut files = Vec::new();
        for (p, v) in &self.files {
            match before.files.get(p) {
                None => files.push(format!("{p} (added)")),
                Some(b) if b != v => files.push(format!("{p} (changed)")),
                _ => {}
            }
        }
        for p in before.files.keys() {
            if !self.files.contains_key(p) {
                files.push(format!("{p} (removed)"));
            }
        }
        if !files.is_empty() {
            let n = files.len();
            let shown: Vec<String> = files.into_iter().take(10).collect();
            why.push(format!(
                "source files: {}{}",
                shown.join(", "),
                if n > 10 {
                    format!(" and {} more", n - 10)
                } else {
                    String::new()
                }
            ));
        }
        why
    }
}

fn read_record(path: &Path) -> Option<BuildRecord> {
    let r: BuildRecord = serde_json::from_slice(&fs::read(path).ok()?).ok()?;
    (r.kind == RECORD_KIND).then_some(r)
}

/// The image a build record names, when every blob it needs is in the store (a pruned or
/// damaged entry is a miss, never a wrong image).
fn record_image(store: &ContentStore, r: &BuildRecord) -> Option<Image> {
    let src = ocibuild_oci::layout::StoreSource::new(
        store.clone(),
        r.manifest.clone(),
        "a cached build".to_string(),
    );
    let image = ocibuild_oci::image::load_image(&src, None).ok()?;
    image
        .manifest
        .layers
        .iter()
        .all(|l| store.has(&l.digest))
        .then_some(image)
}

/// Fetch a build from the shared caches: the record, then its manifest, config and layers, each
/// verified by digest. A missing or corrupt blob is a miss.
fn remote_build(
    store: &ContentStore,
    shared: &Shared<'_>,
    key: &str,
    ev: &dyn Fn(Event),
) -> Option<(BuildRecord, Image, String)> {
    for be in &shared.from {
        let t0 = Instant::now();
        let rec = match be.get_index(key) {
            Ok(Some(b)) => match serde_json::from_slice::<BuildRecord>(&b) {
                Ok(r) if r.kind == RECORD_KIND => r,
                _ => {
                    ev(Event::Note(format!(
                        "cache {}: the entry for build {} is not a build record (ignored)",
                        be.describe(),
                        &key[..16]
                    )));
                    continue;
                }
            },
            Ok(None) => continue,
            Err(e) => {
                ev(Event::Note(format!(
                    "cache {}: {e} (treated as a miss)",
                    be.describe()
                )));
                continue;
            }
        };
        let fetch = |d: &ocibuild_oci::Digest, what: &str| -> bool {
            match be.fetch_blob(d, store) {
                Ok(Fetch::Fetched { .. } | Fetch::Present) => true,
                Ok(Fetch::Missing) => {
                    ev(Event::Note(format!(
                        "cache {}: {what} {d} is missing (a miss: the build runs)",
                        be.describe()
                    )));
                    false
                }
                Ok(Fetch::Corrupt { why }) => {
                    ev(Event::Note(format!(
                        "cache {}: {what} {d} is corrupt ({why}); skipped, the build runs",
                        be.describe()
                    )));
                    false
                }
                Err(e) => {
                    ev(Event::Note(format!(
                        "cache {}: {what} {d}: {e} (treated as a miss)",
                        be.describe()
                    )));
                    false
                }
            }
        };
        if !fetch(&rec.manifest.digest, "manifest") {
            continue;
        }
        let Ok(bytes) = fs::read(store.blob_path(&rec.manifest.digest)) else {
            continue;
        };
        let Ok(manifest) = serde_json::from_slice::<ocibuild_oci::image::Manifest>(&bytes) else {
            ev(Event::Note(format!(
                "cache {}: manifest {} does not parse (a miss)",
                be.describe(),
                rec.manifest.digest
            )));
            continue;
        };
        if !fetch(&manifest.config.digest, "config")
            || !manifest.layers.iter().all(|l| fetch(&l.digest, "layer"))
        {
            continue;
        }
        if let Some(image) = record_image(store, &rec) {
            ev(Event::Note(format!(
                "cache hit in {}: build {} (image {}) fetched in {:.2}s",
                be.describe(),
                &key[..16],
                image.manifest_desc.digest,
                t0.elapsed().as_secs_f64()
            )));
            return Some((rec, image, crate::df::cache_kind(&be.describe())));
        }
    }
    None
}

/// Write the build to every `--cache-to` cache: its blobs, then its record (conditional
/// create: an existing record is left alone).
fn export_build(
    store: &ContentStore,
    shared: &Shared<'_>,
    key: &str,
    rec: &BuildRecord,
    image: &Image,
    ev: &dyn Fn(Event),
) -> Result<()> {
    let mut shared_rec = rec.clone();
    shared_rec.components = None;
    let bytes = serde_json::to_vec(&shared_rec).map_err(|e| EngineError::Invalid {
        what: "build record".into(),
        detail: e.to_string(),
    })?;
    for (be, _mode, ignore_error) in &shared.to {
        let t0 = Instant::now();
        let r = (|| -> Result<PutOutcome> {
            let wrap = |e: ocibuild_cache::CacheError| EngineError::Invalid {
                what: format!("exporting the build to {}", be.describe()),
                detail: e.to_string(),
            };
            let mut blobs = vec![
                image.manifest_desc.digest.clone(),
                image.manifest.config.digest.clone(),
            ];
            blobs.extend(image.manifest.layers.iter().map(|l| l.digest.clone()));
            for d in &blobs {
                be.push_blob(d, store).map_err(wrap)?;
            }
            be.put_index(key, &bytes).map_err(wrap)
        })();
        match r {
            Ok(PutOutcome::Created) => ev(Event::Note(format!(
                "cache export to {}: build {} written in {:.2}s",
                be.describe(),
                &key[..16],
                t0.elapsed().as_secs_f64()
            ))),
            Ok(PutOutcome::AlreadyExists) => ev(Event::Note(format!(
                "cache export to {}: build {} already there",
                be.describe(),
                &key[..16]
            ))),
            Err(e) if *ignore_error => ev(Event::Note(format!(
                "cache export failed (ignore-error=true): {e}"
            ))),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The whole-build key's components: the plan, the content of every source file the build
/// copies (path, executable bit, link target, SHA256 — never mtimes), the toolchain and runtime
/// locks, and the options that change the result. The CA bundle, proxies and network switch are
/// left out: they decide whether downloads succeed, not what they produce.
fn components(
    app: &Path,
    plan: &Plan,
    o: &Options,
    filter: &Filter,
    toolchain: Option<&str>,
    runtime: &str,
) -> Result<Components> {
    use sha2::{Digest as _, Sha256};
    let plan_json = serde_json::to_vec(plan).map_err(|e| EngineError::Invalid {
        what: "plan".into(),
        detail: e.to_string(),
    })?;
    let mut options = format!(
        "{:?}\0{:?}\0{:?}\0{}\0{}",
        o.source_date_epoch, o.compression, o.level, o.host_toolchain, o.compare_naive,
    );
    for (k, v) in &o.labels {
        options.push_str(&format!("\0label {k}={v}"));
    }
    for (k, v) in &o.pass_env {
        if !PROXY_VARS.contains(&k.as_str()) {
            options.push_str(&format!("\0env {k}={v}"));
        }
    }
    let mut files = BTreeMap::new();
    walk_filtered(
        app,
        filter,
        |e| EngineError::Io {
            what: "hashing the source".into(),
            path: app.to_path_buf(),
            source: e.into(),
        },
        |entry, rel| {
            let ft = entry.file_type();
            if ft.is_symlink() {
                let t = fs::read_link(entry.path())
                    .map_err(EngineError::io("reading a link", entry.path()))?;
                files.insert(rel.to_string(), format!("L {}", t.display()));
            } else if ft.is_file() {
                let exec = entry
                    .metadata()
                    .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0)
                    .unwrap_or(false);
                let mut f = fs::File::open(entry.path())
                    .map_err(EngineError::io("hashing the source", entry.path()))?;
                let mut fh = Sha256::new();
                let mut buf = vec![0u8; 1 << 16];
                loop {
                    let n = std::io::Read::read(&mut f, &mut buf)
                        .map_err(EngineError::io("hashing the source", entry.path()))?;
                    if n == 0 {
                        break;
                    }
                    fh.update(&buf[..n]);
                }
                files.insert(
                    rel.to_string(),
                    format!("F {exec} {}", hex::encode(fh.finalize())),
                );
            } else if ft.is_dir() {
                files.insert(rel.to_string(), "D".to_string());
            }
            Ok(())
        },
    )?;
    Ok(Components {
        plan: hex::encode(Sha256::digest(&plan_json)),
        toolchain: toolchain.map(str::to_string),
        runtime: runtime.to_string(),
        options,
        files,
    })
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

/// What [`warm`] found.
#[derive(Clone, Debug, Default)]
pub struct Warmed {
    /// The whole build was in the store or a shared cache: a build will run nothing.
    pub build_hit: bool,
    /// Cache mounts filled from a shared cache.
    pub mounts: Vec<String>,
}

/// The build's key, its local record path and the plan's locks, worked out before anything is
/// built (locks are cheap: signed indexes).
struct Keyed {
    key: String,
    components: Components,
    record: PathBuf,
    locks: Locks,
}

/// The plan's toolchain lock (`None` with `--toolchain host`) and runtime lock.
pub(crate) struct Locks {
    pub toolchain: Option<crate::roots::Locked>,
    pub runtime: crate::roots::Locked,
}

/// Lock the plan's toolchain root and runtime base (cheap: signed indexes), building nothing.
pub(crate) fn locks(plan: &Plan, o: &Options) -> Result<Locks> {
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

fn host_toolchain(plan: &Plan, o: &Options) -> bool {
    o.host_toolchain || plan.toolchain.profile == "host"
}

fn keyed(app: &Path, plan: &Plan, o: &Options) -> Result<Keyed> {
    let store = &o.toolchain_bases.store;
    let locks = locks(plan, o)?;
    let src_filter = source_filter(plan, o)?;
    let components = components(
        app,
        plan,
        o,
        &src_filter,
        locks.toolchain.as_ref().map(|l| l.key.as_str()),
        &locks.runtime.key,
    )?;
    let key = components.key();
    let record = store
        .root()
        .join("engine")
        .join("builds")
        .join(format!("{key}.json"));
    Ok(Keyed {
        key,
        components,
        record,
        locks,
    })
}

/// The last build of `app` in this store (its key), for `--explain-cache`.
fn last_build_pointer(store: &ContentStore, app: &Path) -> PathBuf {
    use sha2::{Digest as _, Sha256};
    let id = hex::encode(Sha256::digest(app.to_string_lossy().as_bytes()));
    store
        .root()
        .join("engine")
        .join("builds")
        .join(format!("last-{}", &id[..32]))
}

/// A build found in the store or (then kept in the store) in a `--cache-from` cache, and where
/// it was found (`local`, or the cache's kind).
fn find_build(
    store: &ContentStore,
    k: &Keyed,
    shared: &Shared<'_>,
    ev: &dyn Fn(Event),
) -> Result<Option<(BuildRecord, Image, String)>> {
    if let Some(r) = read_record(&k.record)
        && let Some(image) = record_image(store, &r)
    {
        ev(Event::Note(format!(
            "cache hit: nothing the build reads changed (build key {}), image {}",
            &k.key[..16],
            image.manifest_desc.digest
        )));
        return Ok(Some((r, image, "local".to_string())));
    }
    if let Some((mut r, image, from)) = remote_build(store, shared, &k.key, ev) {
        r.components = Some(k.components.clone());
        write_record(&k.record, &r)?;
        return Ok(Some((r, image, from)));
    }
    Ok(None)
}

fn write_record(path: &Path, r: &BuildRecord) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(EngineError::io("creating the build cache", dir))?;
    }
    let bytes = serde_json::to_vec(r).map_err(|e| EngineError::Invalid {
        what: "build record".into(),
        detail: e.to_string(),
    })?;
    crate::roots::write_atomically(path, &bytes)
}

/// The plan's cache mounts: (name, host dir, shared-cache key).
fn plan_mounts(
    app: &Path,
    plan: &Plan,
    o: &Options,
) -> Result<Vec<(String, PathBuf, String, crate::mountcache::LockDigest)>> {
    let lock = crate::mountcache::lock_digest(app)?;
    let platform = format!("linux/{}", o.runtime_bases.arch);
    Ok(plan
        .cache_mounts
        .iter()
        .map(|c| {
            let name = format!("{}:{}", plan.lang, c.name);
            let key = crate::mountcache::mount_key(&name, &platform, &lock);
            let dir = o
                .toolchain_bases
                .store
                .root()
                .join("engine")
                .join("cache")
                .join(&c.name);
            (name, dir, key, lock.clone())
        })
        .collect())
}

/// `ocibuild cache warm` for a zero-config app: fetch the build when a shared cache has it,
/// else fill the plan's empty cache mounts, so the build that follows runs nothing or runs warm.
pub fn warm(
    app: &Path,
    plan: &Plan,
    o: &Options,
    shared: &Shared<'_>,
    ev: &(dyn Fn(Event) + Sync),
) -> Result<Warmed> {
    if crate::lowered::eligible(plan, o).is_ok() {
        let (_, stopped) = crate::lowered::build(app, plan, o, shared, true, ev)?;
        return Ok(Warmed {
            build_hit: stopped.is_empty(),
            mounts: Vec::new(),
        });
    }
    let store = &o.toolchain_bases.store;
    let k = keyed(app, plan, o)?;
    let mut w = Warmed::default();
    if find_build(store, &k, shared, ev)?.is_some() {
        w.build_hit = true;
        return Ok(w);
    }
    for (name, dir, key, _) in plan_mounts(app, plan, o)? {
        if crate::mountcache::import(store, &shared.from, &name, &key, &dir, ev)? {
            w.mounts.push(name);
        }
    }
    Ok(w)
}

/// Build the app in `app` following `plan`: on the one executor ([`crate::lowered`]) when the
/// plan is [`crate::lowered::eligible`], else on this module's own loop.
pub fn build(
    app: &Path,
    plan: &Plan,
    o: &Options,
    shared: &Shared<'_>,
    ev: &(dyn Fn(Event) + Sync),
) -> Result<Built> {
    match crate::lowered::eligible(plan, o) {
        Ok(()) => return Ok(crate::lowered::build(app, plan, o, shared, false, ev)?.0),
        Err(why) => ev(Event::Note(format!(
            "{why}: the plan runs on the zero-config step loop (no per-step cache)"
        ))),
    }
    let store = &o.toolchain_bases.store;
    // The whole-build cache: the same plan, source content, toolchain and runtime locks and
    // options give the image built before (here, or on another runner through --cache-from),
    // without building roots or running anything.
    let k = keyed(app, plan, o)?;
    let pointer = last_build_pointer(store, app);
    if !o.no_cache
        && let Some((r, image, from)) = find_build(store, &k, shared, ev)?
    {
        let _ = crate::roots::write_atomically(&pointer, k.key.as_bytes());
        export_build(store, shared, &k.key, &r, &image, ev)?;
        let statuses = plan
            .steps
            .iter()
            .map(|s| {
                ev(Event::StepCached {
                    name: s.name.clone(),
                    from: from.clone(),
                });
                ocibuild_record::StepStatus::Cached { from: from.clone() }
            })
            .collect();
        let names: Vec<String> = r.layers.iter().map(|l| l.0.clone()).collect();
        let record = build_record(
            app, plan, o, &k.locks, &k.key, &image, &names, &r.runtime, statuses,
        )?;
        return Ok(Built {
            record,
            image,
            runtime: r.runtime,
            toolchain: r.toolchain,
            layers: r.layers,
            tier: Tier::Host,
            steps: Vec::new(),
            naive_size: r.naive_size,
            cached: true,
        });
    }
    if shared.explain {
        let before = fs::read_to_string(&pointer)
            .ok()
            .and_then(|key| read_record(&pointer.with_file_name(format!("{}.json", key.trim()))))
            .and_then(|r| r.components);
        let why = match &before {
            Some(b) => k.components.explain(b),
            None => vec!["no earlier build of this app in this store".to_string()],
        };
        ev(Event::Note(format!(
            "cache miss (build {}): {}",
            &k.key[..16],
            if why.is_empty() {
                "the earlier build's image is gone (pruned) or --no-cache".to_string()
            } else {
                why.join("; ")
            }
        )));
    }

    // 1. The toolchain root.
    let mut host_mounts = Vec::new();
    let (toolchain, rootfs) = match &k.locks.toolchain {
        None => {
            ev(Event::Phase(
                "toolchain: the host's (--toolchain host)".into(),
            ));
            let (root, mounts) = host_root(store.root())?;
            host_mounts = mounts;
            (None, root)
        }
        Some(lock) => {
            let (profile, packages) = toolchain_request(plan);
            ev(Event::Phase(format!(
                "toolchain {profile}{} ({}, {})",
                if packages.is_empty() {
                    String::new()
                } else {
                    format!(" + {}", packages.join(","))
                },
                o.toolchain_bases.release.codename(),
                plan.toolchain.version
            )));
            let tc = o
                .toolchain_bases
                .toolchain_locked_root(lock, o.compare_naive)?;
            ev(Event::Note(format!(
                "toolchain root {} ({})",
                match &tc.image {
                    Some(b) => b.image.manifest_desc.digest.to_string(),
                    None => format!("lock {}", &tc.key[..tc.key.len().min(16)]),
                },
                if tc.cached { "cached" } else { "assembled" }
            )));
            let root = tc.root.clone();
            (Some(tc), root)
        }
    };

    // The runtime base.
    ev(Event::Phase(format!(
        "runtime {}:{} ({})",
        plan.runtime.profile,
        plan.runtime.variant,
        o.runtime_bases.release.codename()
    )));
    let runtime = o.runtime_bases.image_locked(&k.locks.runtime)?;
    let src_filter = source_filter(plan, o)?;
    let key = k.key.clone();
    let record = k.record.clone();

    // 2. The work area: the source copy and the outputs.
    let work_parent = store.root().join("engine").join("work");
    fs::create_dir_all(&work_parent)
        .map_err(EngineError::io("creating the work dir", &work_parent))?;
    let work = tempfile::Builder::new()
        .prefix("build-")
        .tempdir_in(&work_parent)
        .map_err(EngineError::io("creating a work dir", &work_parent))?;
    let src_host = work.path().join("src");
    copy_filtered(app, &src_host, &src_filter, false)?;
    let mut binds: Vec<(String, PathBuf)> = vec![(plan.source_dir.clone(), src_host.clone())];
    for (i, out) in plan.outputs.iter().enumerate() {
        let d = work.path().join(format!("out{i}"));
        fs::create_dir_all(&d).map_err(EngineError::io("creating an output dir", &d))?;
        binds.push((out.clone(), d));
    }
    let mut mounts: Vec<Mount> = binds
        .iter()
        .map(|(dest, src)| Mount::Bind {
            src: src.clone(),
            dest: dest.clone(),
            readonly: false,
        })
        .collect();
    mounts.extend(host_mounts);
    // files the planner made (a lockfile's pins as requirements), under an output
    for f in &plan.files {
        let host = host_path(&binds[1..], &f.path).ok_or_else(|| EngineError::Invalid {
            what: format!("generated file {} of the plan", f.path),
            detail: "it is not under one of the plan's outputs".into(),
        })?;
        if let Some(dir) = host.parent() {
            fs::create_dir_all(dir).map_err(EngineError::io("creating a directory", dir))?;
        }
        fs::write(&host, &f.content).map_err(EngineError::io("writing a generated file", &host))?;
    }
    // cache mounts: an empty one is filled from --cache-from (keyed by the app's lockfiles)
    let shared_mounts = if shared.from.is_empty() && shared.to.is_empty() {
        Vec::new()
    } else {
        plan_mounts(app, plan, o)?
    };
    for (name, dir, key, _) in &shared_mounts {
        crate::mountcache::import(store, &shared.from, name, key, dir, ev)?;
    }
    for c in &plan.cache_mounts {
        let d = store.root().join("engine").join("cache").join(&c.name);
        fs::create_dir_all(&d).map_err(EngineError::io("creating a cache mount", &d))?;
        crate::storeusage::touch_dir(&d);
        mounts.push(Mount::Cache {
            src: d,
            dest: c.target.clone(),
        });
    }
    let mut base_env: Vec<(String, String)> = Vec::new();
    let mut path = plan.toolchain.path_prepend.join(":");
    if !path.is_empty() {
        path.push(':');
    }
    path.push_str(DEFAULT_PATH);
    base_env.push(("PATH".into(), path));
    base_env.push(("HOME".into(), "/root".into()));
    base_env.push(("LANG".into(), "C.UTF-8".into()));
    base_env.push((
        "SOURCE_DATE_EPOCH".into(),
        step_source_date_epoch(o.source_date_epoch).to_string(),
    ));
    if let Some(ca) = &o.ca_bundle {
        mounts.push(Mount::Bind {
            src: ca.clone(),
            dest: CA_PATH.into(),
            readonly: true,
        });
        for v in CA_VARS {
            base_env.push(((*v).into(), CA_PATH.into()));
        }
    }
    base_env.extend(o.pass_env.iter().cloned());

    // 3. The steps.
    let tier = choose_tier(&probe(), o.isolation)?;
    if tier == Tier::Host {
        return Err(EngineError::Invalid {
            what: "sandbox".into(),
            detail: "zero-config builds bind the source, outputs and caches into the build root, which the host tier (no isolation) cannot do; run `ocibuild doctor` to see how to allow user namespaces or chroot".into(),
        });
    }
    let mut steps = Vec::new();
    let mut statuses = Vec::new();
    // every step's whole output, for when the cause is above the lines a failure shows
    let log_dir = crate::steplog::dir(store, &format!("{}-{}", plan.lang, &key[..16]));
    let _ = fs::remove_dir_all(&log_dir);
    for (i, step) in plan.steps.iter().enumerate() {
        ev(Event::StepStarted {
            name: step.name.clone(),
            argv: step.argv.clone(),
        });
        let upper = work.path().join(format!("upper{i}"));
        fs::create_dir_all(&upper).map_err(EngineError::io("creating a step dir", &upper))?;
        let mut env = base_env.clone();
        for (k, v) in &step.env {
            env.retain(|(ek, _)| ek != k);
            env.push((k.clone(), v.clone()));
        }
        let network = if step.network && o.network {
            Network::Host
        } else {
            Network::None
        };
        let spec = Spec {
            rootfs: RootfsSource::Dirs(vec![rootfs.clone()]),
            upper: upper.clone(),
            mounts: mounts.clone(),
            env,
            cwd: step.cwd.clone(),
            args: step.argv.clone(),
            network,
            capture: true,
            ..Spec::default()
        };
        let t0 = Instant::now();
        let out = run_streaming(&spec, tier, &mut |_, line| {
            ev(Event::StepOutput {
                name: step.name.clone(),
                line: line.to_string(),
            })
        })?;
        let secs = t0.elapsed().as_secs_f64();
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        ev(Event::StepFinished {
            name: step.name.clone(),
            status: out.status,
            seconds: secs,
            output: text.clone(),
        });
        let _ = fs::remove_dir_all(&upper);
        let log = crate::steplog::save(&log_dir, i + 1, &step.name, &text);
        if out.status != 0 {
            let hint = if text.contains("gyp ERR!") || text.contains("prebuild-install warn") {
                "a native addon failed to build: the build root has python3, make, g++ and Node's headers (npm_config_nodedir=/usr); an addon whose prebuilt binary cannot be downloaded is built from source, which fails when it needs a library's -dev headers the root lacks: vendor a prebuilt binary, pick a pure-JavaScript package, or write a Dockerfile".to_string()
            } else if step.network && !o.network {
                "this step downloads dependencies and --network none was given; allow the network or vendor the dependencies".to_string()
            } else if step.network {
                "if a download failed, check the network, proxy variables and --build-ca; otherwise the output above says what the tool disliked".to_string()
            } else {
                "the output above says what the tool disliked".to_string()
            };
            return Err(crate::steplog::failed(
                step.name.clone(),
                step.argv.join(" "),
                out.status,
                &text,
                log.as_deref(),
                hint,
            ));
        }
        steps.push((step.name.clone(), secs));
        statuses.push(ocibuild_record::StepStatus::Ran { seconds: secs });
    }

    // 4. The layers.
    let mut inputs = Vec::new();
    let mut names = Vec::new();
    for (i, l) in plan.layers.iter().enumerate() {
        let Some(host) = host_path(&binds, &l.from) else {
            return Err(EngineError::Invalid {
                what: format!("layer {} of the plan", l.name),
                detail: format!(
                    "its source {} is not under the source dir or an output",
                    l.from
                ),
            });
        };
        if !host.exists() {
            ev(Event::Note(format!(
                "layer {}: {} does not exist after the build, no layer",
                l.name, l.from
            )));
            continue;
        }
        let filter = glob_filter(&l.include, &l.exclude)?;
        let staged = work
            .path()
            .join("layers")
            .join(format!("{i:02}-{}", l.name));
        let n = if host.is_file() {
            fs::create_dir_all(&staged).map_err(EngineError::io("staging a layer", &staged))?;
            let name = host.file_name().map(PathBuf::from).unwrap_or_default();
            link_or_copy(&host, &staged.join(&name))?;
            1
        } else {
            copy_filtered(&host, &staged, &filter, true)?
        };
        if n == 0 {
            ev(Event::Note(format!(
                "layer {}: no files selected, no layer",
                l.name
            )));
            continue;
        }
        // A `from` naming a file lands in `to` (a directory) under its own name.
        let dest = l.to.trim_matches('/').to_string();
        inputs.push(LayerInput::new(staged, dest));
        names.push(l.name.clone());
    }
    // `writable` of ocibuild.toml: the directories, with whatever the app's layers put in
    // them, in a small layer of their own owned by the image's user.
    if let Some(w) = &plan.writable {
        let staged = work.path().join("layers").join("writable");
        let input = stage_writable(&staged, &mut inputs, &mut names, w, ev)?;
        inputs.push(input);
        names.push("writable".to_string());
    }

    // The shared libraries the layers' ELF files (native addons, C extensions) need that the
    // runtime base lacks, read from their DT_NEEDED entries and copied from the build root.
    {
        let build_root = if toolchain.is_none() {
            PathBuf::from("/")
        } else {
            rootfs.clone()
        };
        let libs_dir = work.path().join("native-libs");
        let staged: Vec<PathBuf> = inputs.iter().map(|i| i.src.clone()).collect();
        let mut runtime_root = || o.runtime_bases.rootfs(&runtime.image);
        let libs = crate::elf::missing_libs(&staged, &mut runtime_root, &build_root, &libs_dir)?;
        crate::elf::report_missing_libs(&libs, ev);
        if !libs.copied.is_empty() {
            inputs.insert(0, LayerInput::new(libs_dir, String::new()));
            names.insert(0, "native-libs".to_string());
        }
    }

    // The naive single-stage image, for the size comparison: the toolchain root with the
    // source tree (as built, dependencies included) and every output on top.
    let naive_size = match (
        toolchain.as_ref().and_then(|t| t.image.as_ref()),
        o.compare_naive,
    ) {
        (Some(tc), true) => {
            ev(Event::Phase(
                "naive single-stage image (for --compare-naive)".into(),
            ));
            let naive_layers = binds
                .iter()
                .map(|(dest, src)| LayerInput::new(src.clone(), dest.trim_matches('/')))
                .collect();
            let naive = assemble_on(store, tc, naive_layers, ConfigEdits::default(), o, None)?;
            Some(naive.image.manifest.layers.iter().map(|l| l.size).sum())
        }
        _ => None,
    };

    // 5. The final image on the runtime base.
    let cfg = &plan.config;
    let mut labels = cfg.labels.clone();
    labels.extend(o.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    let mut extra = BTreeMap::new();
    if let Some(hc) = &cfg.healthcheck {
        extra.insert("Healthcheck".to_string(), json!({ "Test": hc }));
    }
    let edits = ConfigEdits {
        entrypoint: Some(cfg.entrypoint.clone()),
        cmd: (!cfg.cmd.is_empty()).then(|| cfg.cmd.clone()),
        env: cfg
            .env
            .iter()
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (kv.clone(), String::new()),
            })
            .collect(),
        workdir: Some(cfg.workdir.clone()),
        user: Some(cfg.user.clone()),
        labels,
        exposed_ports: cfg.exposed_ports.clone(),
        extra,
    };
    // The history the ejected Dockerfile's final stage gets (`--dry-run=dockerfile`): one entry
    // per instruction, so that the two builds can give the same image.
    let eo = crate::eject::EjectOptions {
        app: String::new(),
        labels: o.labels.clone(),
        source_date_epoch: o.source_date_epoch,
        dir: None,
    };
    let made = |m: &crate::eject::Makes| match m {
        crate::eject::Makes::Config => false,
        crate::eject::Makes::Layer(i) => {
            plan.layers.get(*i).is_some_and(|l| names.contains(&l.name))
        }
        crate::eject::Makes::Writable(i) => *i == 0 && names.iter().any(|n| n == "writable"),
    };
    let mut history = crate::eject::final_history(plan, &eo, &made);
    if names.first().is_some_and(|n| n == "native-libs") {
        history.insert(
            0,
            json!({
                "created": ocibuild_oci::image::rfc3339(o.source_date_epoch),
                "created_by": "ocibuild: the shared libraries native code needs that the runtime base lacks",
            }),
        );
    }
    let assembled = assemble_on(store, &runtime, inputs, edits, o, Some(history))?;
    let mut layers = Vec::new();
    for (name, (desc, _, reused)) in names.iter().zip(&assembled.new_layers) {
        ev(Event::Layer {
            name: name.clone(),
            digest: desc.digest.to_string(),
            size: desc.size,
            reused: *reused,
        });
        layers.push((name.clone(), desc.digest.to_string(), desc.size, *reused));
    }
    let rec = BuildRecord {
        kind: RECORD_KIND.into(),
        manifest: assembled.image.manifest_desc.clone(),
        layers: layers.clone(),
        naive_size,
        runtime: runtime.image.manifest_desc.digest.to_string(),
        toolchain: toolchain.as_ref().map(|t| t.key.clone()),
        components: Some(k.components.clone()),
    };
    write_record(&record, &rec)?;
    let _ = crate::roots::write_atomically(&pointer, key.as_bytes());
    export_build(store, shared, &key, &rec, &assembled.image, ev)?;
    for (name, dir, key, lock) in &shared_mounts {
        crate::mountcache::export(store, &shared.to, name, key, lock, dir, ev)?;
    }
    let record = build_record(
        app,
        plan,
        o,
        &k.locks,
        &k.key,
        &assembled.image,
        &names,
        &rec.runtime,
        statuses,
    )?;
    Ok(Built {
        record,
        image: assembled.image,
        runtime: rec.runtime,
        toolchain: rec.toolchain,
        layers,
        tier,
        steps,
        naive_size,
        cached: false,
    })
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
    o: &Options,
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
        source_date_epoch: Some(o.source_date_epoch),
        flags: BTreeMap::from([
            (
                "network".to_string(),
                if o.network { "default" } else { "none" }.to_string(),
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

/// `layers` and `config` on top of `base`, with the run's compression and times.
fn assemble_on(
    store: &ContentStore,
    base: &Base,
    layers: Vec<LayerInput>,
    config: ConfigEdits,
    o: &Options,
    history: Option<Vec<serde_json::Value>>,
) -> Result<ocibuild_oci::assemble::Assembled> {
    let src = base.source(store);
    Ok(assemble(
        store,
        AssembleSpec {
            base: Some((&src, base.image.clone())),
            layers,
            config,
            annotations: BTreeMap::new(),
            platform: None,
            compression: o.compression,
            level: o.level,
            source_date_epoch: o.source_date_epoch,
            owner: Some((0, 0)),
            keep_modes: false,
            history,
        },
    )?)
}

/// A root for `--toolchain host`: an empty directory (with the host's merged-/usr links) over
/// which the host's `/usr`, `/etc` and `/opt` are bound read-only, so the host's toolchain runs
/// in the sandbox without the rest of the host (an overlay over `/` itself is refused).
fn host_root(store_root: &Path) -> Result<(PathBuf, Vec<Mount>)> {
    let root = store_root.join("engine").join("host-root");
    let mut mounts = Vec::new();
    for d in ["usr", "etc", "tmp", "root", "opt"] {
        fs::create_dir_all(root.join(d))
            .map_err(EngineError::io("creating the host root", &root))?;
    }
    for d in ["usr", "etc", "opt"] {
        if Path::new("/").join(d).is_dir() {
            mounts.push(Mount::Bind {
                src: Path::new("/").join(d),
                dest: format!("/{d}"),
                readonly: true,
            });
        }
    }
    for d in ["bin", "sbin", "lib", "lib32", "lib64"] {
        let host = Path::new("/").join(d);
        let here = root.join(d);
        match fs::read_link(&host) {
            Ok(target) => {
                if fs::read_link(&here).ok().as_ref() != Some(&target) {
                    let _ = fs::remove_file(&here);
                    std::os::unix::fs::symlink(&target, &here)
                        .map_err(EngineError::io("linking in the host root", &here))?;
                }
            }
            Err(_) if host.is_dir() => {
                fs::create_dir_all(&here)
                    .map_err(EngineError::io("creating the host root", &here))?;
                mounts.push(Mount::Bind {
                    src: host,
                    dest: format!("/{d}"),
                    readonly: true,
                });
            }
            Err(_) => {}
        }
    }
    Ok((root, mounts))
}

/// Stage the layer of the writable directories under `root` (image paths below it): each
/// directory is created, and what the staged `inputs` hold at (or below) it is moved in — a
/// whole input that lands inside one is taken out of `inputs` (and `names`). The returned input
/// gives the directories and their contents to `w`'s owner; their parents stay root's.
fn stage_writable(
    root: &Path,
    inputs: &mut Vec<LayerInput>,
    names: &mut Vec<String>,
    w: &ocibuild_builders::Writable,
    ev: &dyn Fn(Event),
) -> Result<LayerInput> {
    fs::create_dir_all(root).map_err(EngineError::io("creating a directory", root))?;
    let mut owners = Vec::new();
    for d in &w.dirs {
        let rel = d.trim_matches('/');
        if rel.is_empty()
            || rel
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(EngineError::Invalid {
                what: format!("writable directory {d}"),
                detail: "it must be a plain directory path below /".into(),
            });
        }
        let target = root.join(rel);
        let mut i = 0;
        while i < inputs.len() {
            let dest = inputs[i].dest.trim_matches('/').to_string();
            if dest == rel || dest.starts_with(&format!("{rel}/")) {
                // the whole layer lands in the writable directory
                let sub = dest[rel.len()..].trim_start_matches('/');
                let to = if sub.is_empty() {
                    target.clone()
                } else {
                    target.join(sub)
                };
                merge_move(&inputs[i].src, &to)?;
                ev(Event::Note(format!(
                    "layer {}: it lands in the writable {d}, so it is part of the writable layer",
                    names[i]
                )));
                inputs.remove(i);
                names.remove(i);
                continue;
            }
            if dest.is_empty() || rel.starts_with(&format!("{dest}/")) {
                let sub = if dest.is_empty() {
                    rel
                } else {
                    &rel[dest.len() + 1..]
                };
                let from = inputs[i].src.join(sub);
                match fs::symlink_metadata(&from) {
                    Ok(m) if m.is_dir() => {
                        merge_move(&from, &target)?;
                        ev(Event::Note(format!(
                            "layer {}: what it holds in {d} moves to the writable layer",
                            names[i]
                        )));
                    }
                    Ok(_) => {
                        return Err(EngineError::Invalid {
                            what: format!("writable directory {d} (ocibuild.toml)"),
                            detail: format!(
                                "the app's layer {} has a file or link there, not a directory; \
                                 make it a directory in the app, or drop it from writable",
                                names[i]
                            ),
                        });
                    }
                    Err(_) => {}
                }
            }
            i += 1;
        }
        fs::create_dir_all(&target).map_err(EngineError::io("creating a directory", &target))?;
        owners.push((rel.to_string(), (w.uid, w.gid)));
    }
    let mut input = LayerInput::new(root, "");
    input.owners = owners;
    Ok(input)
}

/// Move `from` to `to`; when both are directories, merge (what `from` holds wins).
fn merge_move(from: &Path, to: &Path) -> Result<()> {
    let to_meta = fs::symlink_metadata(to).ok();
    let from_dir = fs::symlink_metadata(from)
        .map_err(EngineError::io("moving into the writable layer", from))?
        .is_dir();
    match to_meta {
        None => {
            if let Some(p) = to.parent() {
                fs::create_dir_all(p).map_err(EngineError::io("creating a directory", p))?;
            }
        }
        Some(m) if m.is_dir() && from_dir => {
            for e in fs::read_dir(from).map_err(EngineError::io("reading a directory", from))? {
                let e = e.map_err(EngineError::io("reading a directory", from))?;
                merge_move(&e.path(), &to.join(e.file_name()))?;
            }
            return fs::remove_dir(from).map_err(EngineError::io("removing a directory", from));
        }
        Some(m) if m.is_dir() => {
            fs::remove_dir_all(to).map_err(EngineError::io("replacing a directory", to))?;
        }
        Some(_) => {
            fs::remove_file(to).map_err(EngineError::io("replacing a file", to))?;
        }
    }
    fs::rename(from, to).map_err(EngineError::io("moving into the writable layer", from))
}

/// The host directory behind a sandbox path, through the longest matching bind.
fn host_path(binds: &[(String, PathBuf)], sandbox: &str) -> Option<PathBuf> {
    let mut best: Option<(usize, PathBuf)> = None;
    for (dest, src) in binds {
        let d = dest.trim_end_matches('/');
        let rest = if sandbox == d {
            Some("")
        } else {
            sandbox.strip_prefix(d).and_then(|r| r.strip_prefix('/'))
        };
        if let Some(rest) = rest
            && best.as_ref().is_none_or(|(n, _)| d.len() > *n)
        {
            if rest.split('/').any(|c| c == "..") {
                return None;
            }
            best = Some((
                d.len(),
                if rest.is_empty() {
                    src.clone()
                } else {
                    src.join(rest)
                },
            ));
        }
    }
    best.map(|(_, p)| p)
}

/// Copy the files of `from` selected by `filter` into `to` (created); symlinks are copied as
/// links, never followed; with `link`, regular files are hard-linked when possible. Returns the
/// number of files and links copied.
fn copy_filtered(from: &Path, to: &Path, filter: &Filter, link: bool) -> Result<u64> {
    fs::create_dir_all(to).map_err(EngineError::io("creating a directory", to))?;
    let mut n = 0;
    // Directories copied, to drop those the filter emptied (a `src/` of excluded `.ts` files).
    let mut dirs: Vec<(PathBuf, PathBuf)> = Vec::new();
    walk_filtered(
        from,
        filter,
        |e| EngineError::Io {
            what: "walking a directory".into(),
            path: from.to_path_buf(),
            source: e.into(),
        },
        |entry, rel| {
            let ft = entry.file_type();
            let dst = to.join(rel);
            if let Some(p) = dst.parent() {
                fs::create_dir_all(p).map_err(EngineError::io("creating a directory", p))?;
            }
            if ft.is_dir() {
                fs::create_dir_all(&dst).map_err(EngineError::io("creating a directory", &dst))?;
                dirs.push((entry.path().to_path_buf(), dst.clone()));
                let mode = entry
                    .metadata()
                    .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()))
                    .unwrap_or(0o755);
                let _ = fs::set_permissions(
                    &dst,
                    std::os::unix::fs::PermissionsExt::from_mode(mode & 0o7777),
                );
            } else if ft.is_symlink() {
                let target = fs::read_link(entry.path())
                    .map_err(EngineError::io("reading a link", entry.path()))?;
                std::os::unix::fs::symlink(&target, &dst)
                    .map_err(EngineError::io("copying a link", &dst))?;
                n += 1;
            } else if ft.is_file() {
                if link {
                    link_or_copy(entry.path(), &dst)?;
                } else {
                    fs::copy(entry.path(), &dst)
                        .map_err(EngineError::io("copying", entry.path()))?;
                }
                n += 1;
            }
            Ok(())
        },
    )?;
    for (src, dst) in dirs.iter().rev() {
        let empty = |p: &Path| {
            fs::read_dir(p)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false)
        };
        if empty(dst) && !empty(src) {
            let _ = fs::remove_dir(dst);
        }
    }
    Ok(n)
}

fn link_or_copy(src: &Path, dst: &Path) -> Result<()> {
    if fs::hard_link(src, dst).is_ok() {
        return Ok(());
    }
    fs::copy(src, dst).map_err(EngineError::io("copying", src))?;
    Ok(())
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

    #[test]
    fn writable_dirs_take_what_the_layers_put_there() {
        let t = tempfile::tempdir().unwrap();
        // the app layer (at /app) ships instance/settings.ini; a second layer lands in /app/cache
        let app = t.path().join("app");
        fs::create_dir_all(app.join("instance")).unwrap();
        fs::write(app.join("instance/settings.ini"), "x").unwrap();
        fs::write(app.join("main.py"), "m").unwrap();
        let cache = t.path().join("cache");
        fs::create_dir_all(&cache).unwrap();
        fs::write(cache.join("c.bin"), "c").unwrap();
        let mut inputs = vec![
            LayerInput::new(&app, "app"),
            LayerInput::new(&cache, "app/cache"),
        ];
        let mut names = vec!["app".to_string(), "cache".to_string()];
        let w = ocibuild_builders::Writable {
            dirs: vec!["/app/instance".into(), "/app/cache".into(), "/data".into()],
            uid: 65532,
            gid: 65532,
        };
        let root = t.path().join("w");
        let input = stage_writable(&root, &mut inputs, &mut names, &w, &|_| {}).unwrap();
        assert_eq!(
            names,
            ["app"],
            "the layer inside a writable dir is folded in"
        );
        assert!(root.join("app/instance/settings.ini").is_file());
        assert!(root.join("app/cache/c.bin").is_file());
        assert!(root.join("data").is_dir());
        assert!(!app.join("instance").exists());
        assert!(app.join("main.py").is_file());
        assert_eq!(input.dest, "");
        assert_eq!(
            input.owners,
            [
                ("app/instance".to_string(), (65532, 65532)),
                ("app/cache".to_string(), (65532, 65532)),
                ("data".to_string(), (65532, 65532)),
            ]
        );
        // a file where a writable directory should be is an error naming it
        fs::write(app.join("uploads"), "not a dir").unwrap();
        let w = ocibuild_builders::Writable {
            dirs: vec!["/app/uploads".into()],
            uid: 1,
            gid: 1,
        };
        let err = stage_writable(&t.path().join("w2"), &mut inputs, &mut names, &w, &|_| {})
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/app/uploads") && err.contains("not a directory"),
            "{err}"
        );
    }

    #[test]
    fn host_paths_take_the_longest_bind() {
        let binds = vec![
            ("/src".to_string(), PathBuf::from("/w/src")),
            ("/app".to_string(), PathBuf::from("/w/out1")),
            ("/app/.venv".to_string(), PathBuf::from("/w/out2")),
        ];
        assert_eq!(host_path(&binds, "/src"), Some(PathBuf::from("/w/src")));
        assert_eq!(
            host_path(&binds, "/src/dist"),
            Some(PathBuf::from("/w/src/dist"))
        );
        assert_eq!(
            host_path(&binds, "/app/.venv/bin"),
            Some(PathBuf::from("/w/out2/bin"))
        );
        assert_eq!(host_path(&binds, "/srcx"), None);
        assert_eq!(host_path(&binds, "/src/../etc"), None);
        assert_eq!(host_path(&binds, "/etc"), None);
    }

    #[test]
    fn copies_filtered_trees_without_following_links() {
        let t = tempfile::tempdir().unwrap();
        let a = t.path().join("a");
        fs::create_dir_all(a.join("node_modules/x")).unwrap();
        fs::create_dir_all(a.join("lib")).unwrap();
        fs::write(a.join("node_modules/x/i.js"), "x").unwrap();
        fs::write(a.join("lib/m.js"), "m").unwrap();
        fs::write(a.join("lib/m.js.map"), "{}").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", a.join("lib/link")).unwrap();
        let f = glob_filter(&[], &["node_modules".into(), "**/*.map".into()]).unwrap();
        let b = t.path().join("b");
        let n = copy_filtered(&a, &b, &f, false).unwrap();
        assert_eq!(n, 2);
        assert!(b.join("lib/m.js").is_file());
        assert!(!b.join("lib/m.js.map").exists());
        assert!(!b.join("node_modules").exists());
        // a directory emptied by the filter is dropped; an empty one stays
        fs::create_dir_all(a.join("maps")).unwrap();
        fs::write(a.join("maps/x.map"), "{}").unwrap();
        fs::create_dir_all(a.join("empty")).unwrap();
        let c = t.path().join("c");
        copy_filtered(&a, &c, &f, false).unwrap();
        assert!(!c.join("maps").exists());
        assert!(c.join("empty").is_dir());
        assert_eq!(
            fs::read_link(b.join("lib/link")).unwrap(),
            PathBuf::from("/etc/passwd")
        );
    }
}
