//! The Dockerfile executor: a parsed [`Dockerfile`] and its stage plan → an image in the store.
//!
//! ```text
//! stage_graph ─▶ levels of independent stages, each level's stages on their own threads
//!   stage: FROM (scratch | earlier stage | oci:/oci-archive:/docker-archive: | build context |
//!                registry through the caller's resolver)
//!          each instruction: a cache key chained from the previous one
//!            hit  → the recorded layer and change dir are reused, nothing runs
//!            miss → RUN in the sandbox over the stage's merged root (overlay upper captured),
//!                   COPY/ADD/WORKDIR written natively into a fresh change dir,
//!                   the change dir becomes a layer (whiteouts included) and is kept for reuse
//!          config instructions edit the image config
//! ```
//!
//! A stage's merged root (`WORK/stage-N`) is only materialised when a step misses the cache (or
//! another stage copies from it): a hard-link clone of the extracted base with every change dir
//! applied in order. Cached change dirs live under `ROOT/engine/df/<key>/`, their records in
//! `ROOT/engine/df/<key>.json`, written after the layer blob is in the store, so a killed build
//! leaves no record pointing at nothing. Secrets are mounted into RUN steps only: their values
//! are never part of a cache key, a layer, an event or an error.

mod copy;
pub mod fsops;
pub(crate) mod graph;
mod listing;
pub mod native;
mod rootblob;
mod steps;
#[doc(hidden)]
pub use steps::import_step_record;

pub(crate) use steps::one_line;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use ocibuild_cache::{CacheBackend, Mode};
use ocibuild_dockerfile::{
    BaseRef, DockerIgnore, Dockerfile, StagePlan, platform_args, stage_graph,
};
use ocibuild_oci::Digest;
use ocibuild_oci::extract::{ExtractOptions, extract_layer_blob};
use ocibuild_oci::image::{
    Descriptor, Image, Platform, config_bytes, load_image, new_manifest, rfc3339, to_json_bytes,
};
use ocibuild_oci::layout::{import_into_store, open_location};
use ocibuild_oci::media::{self, Compression};
use ocibuild_oci::reference::Location;
use ocibuild_oci::store::ContentStore;
use ocibuild_sandbox::probe::{Isolation, choose_tier, probe};
use ocibuild_sandbox::run::Tier;
use serde_json::{Value, json};

use crate::Event;
use crate::error::{EngineError, Result};

/// Where a secret's value comes from (`--secret id=x,src=FILE|env=VAR`).
#[derive(Clone, Debug)]
pub enum SecretSource {
    File(PathBuf),
    Env(String),
}

/// A `--build-context NAME=…`.
#[derive(Clone, Debug)]
pub enum NamedContext {
    /// A local directory (`dir:PATH` or a plain path).
    Dir(PathBuf),
    /// An image: `oci-layout://DIR[:TAG]`, `docker-image://REF`, or any transport reference.
    Image(String),
}

/// Resolves image references the engine cannot read itself (registries): pulls the image for
/// `platform` into the store and returns it.
pub trait ImageResolver: Sync {
    fn resolve(&self, reference: &str, platform: &Platform) -> Result<Image>;

    /// Whether [`ImageResolver::resolve`] can give the image without the network (it is in the
    /// store): what `--offline` checks before the build ([`crate::offline`]).
    fn in_store(&self, _reference: &str, _platform: &Platform) -> bool {
        false
    }
}

/// How the executor runs one graph for one platform: made by [`crate::build`] from the
/// [`crate::BuildOptions`] (a zero-config plan's graph: by [`crate::lowered`]).
pub(crate) struct Options<'a> {
    pub store: ContentStore,
    pub context: PathBuf,
    /// Paths relative to the context left out of it whatever `.dockerignore` says: the
    /// build's own outputs when they lie inside the context.
    pub context_excludes: Vec<String>,
    /// The Dockerfile's path (for error locations and `<Dockerfile>.dockerignore`).
    pub dockerfile: PathBuf,
    pub target: Option<String>,
    pub build_args: BTreeMap<String, String>,
    /// The target platform.
    pub platform: Platform,
    pub secrets: BTreeMap<String, SecretSource>,
    pub contexts: BTreeMap<String, NamedContext>,
    pub resolver: &'a dyn ImageResolver,
    /// `FROM ocibuild:PROFILE…`: bases assembled from Debian packages ([`native`]).
    pub native: Option<native::NativeBases>,
    pub isolation: Isolation,
    /// `--network none` makes this false: no RUN gets the network.
    pub network: bool,
    /// Bound at [`crate::zeroconfig::CA_PATH`] in every RUN, with the CA variables set.
    pub ca_bundle: Option<PathBuf>,
    /// Extra variables for every RUN (proxy settings): never part of a cache key or the image.
    pub pass_env: Vec<(String, String)>,
    pub source_date_epoch: u64,
    pub compression: Compression,
    pub level: Option<u32>,
    pub no_cache: bool,
    /// Added to the final image's labels.
    pub labels: BTreeMap<String, String>,
    /// Remote caches read on a local miss (`--cache-from`), in order.
    pub cache_from: Vec<Box<dyn CacheBackend + 'a>>,
    /// Remote caches written after the build (`--cache-to`), with their mode and whether an
    /// export error is only a warning (`ignore-error=true`).
    pub cache_to: Vec<(Box<dyn CacheBackend + 'a>, Mode, bool)>,
    /// Say, for every step that misses the cache, what changed since the last build.
    pub explain_cache: bool,
    /// `cache warm`: fetch what hits, stop each stage at its first miss, run nothing, export
    /// nothing.
    pub warm_only: bool,
    /// `--offline`: checked before anything runs ([`crate::offline`]); no RUN gets the network
    /// (the RUN keys stay those of the `network` setting, so an online build's steps are hits).
    pub offline: Option<crate::offline::Offline>,
}

/// What [`build`] made.
#[derive(Clone, Debug)]
pub struct Built {
    pub image: Image,
    /// Steps that ran, with their wall seconds.
    pub ran: Vec<(String, f64)>,
    /// Steps taken from the cache.
    pub cached: Vec<String>,
    /// The stages built, in order.
    pub stages: Vec<String>,
    /// With [`Options::warm_only`]: the first step of each stage that was not in any cache.
    pub stopped: Vec<String>,
    /// What the build made and knows (`docs/build-record.md`).
    pub record: ocibuild_record::BuildRecord,
    /// The whole-graph key ([`graph`]; `None`: the graph reads something that cannot be keyed
    /// before it runs, or `warm_only`).
    pub graph_key: Option<String>,
    /// The build was the stored result of [`Self::graph_key`]: nothing was walked.
    pub graph_hit: bool,
}

/// A stage's filesystem and config as a chain of layers.
#[derive(Clone, Debug)]
pub(crate) struct Chain {
    /// The base image (None: scratch), extracted only when a step needs the root.
    pub base: Option<Image>,
    /// This build's steps so far (key, layer): what `--cache-to` exports.
    pub steps: Vec<(String, Option<(Descriptor, Digest)>)>,
    /// Every layer so far (the base's, then this build's), with its diff_id.
    pub layers: Vec<(Descriptor, Digest)>,
    /// The change dirs of this build's steps on top of `base_root`, in order.
    pub uppers: Vec<PathBuf>,
    /// The whole image config.
    pub config: Value,
    /// The cache key of the last step.
    pub key: String,
    /// Where each of `layers` came from (the base's, then the steps').
    pub origins: Vec<ocibuild_record::LayerOrigin>,
    /// The stage whose `FROM` named the base image, and the reference it resolved.
    pub base_ref: Option<(String, String)>,
}

/// A finished stage.
pub(crate) struct StageOut {
    #[allow(dead_code)]
    pub name: String,
    pub chain: Chain,
    /// The materialised root, made on first use by another stage.
    pub merged: Mutex<Option<PathBuf>>,
    /// Warm mode or `--offline`'s walk: a step missed and the rest was skipped, so the stage's
    /// filesystem is not what the build would make.
    pub stopped: bool,
}

/// Where the sandbox probe of a build is: never started, running in the background, or taken
/// by [`Exec::tier`] (which probes in place when it was not started).
pub(crate) enum TierProbe {
    NotStarted,
    Running(std::thread::JoinHandle<ocibuild_sandbox::probe::Report>),
    Taken,
}

pub(crate) struct Exec<'a> {
    pub o: &'a Options<'a>,
    pub df: &'a Dockerfile,
    pub plan: StagePlan,
    pub ev: &'a (dyn Fn(Event) + Sync),
    pub ignore: DockerIgnore,
    pub work: PathBuf,
    pub cache_dir: PathBuf,
    /// The sandbox tier and whether overlayfs is expected to work in it.
    pub tier: OnceLock<std::result::Result<(Tier, bool), String>>,
    /// The sandbox probe, started early in the background ([`Exec::probe_soon`]).
    pub tier_probe: Mutex<TierProbe>,
    pub stages: Vec<OnceLock<Arc<StageOut>>>,
    /// The context's files after `.dockerignore` (relative path, is_dir), listed once.
    pub context_files: OnceLock<std::result::Result<Vec<(String, bool)>, String>>,
    /// Content hashes of context files, by relative path.
    pub hashes: Mutex<HashMap<String, String>>,
    pub ran: Mutex<Vec<(String, f64)>>,
    pub cached: Mutex<Vec<String>>,
    /// Every RUN, COPY, ADD and WORKDIR step, ran or cached, in the order they finished.
    pub records: Mutex<Vec<ocibuild_record::Step>>,
    /// The labels of [`Self::records`] as the events show them (`[stage n/m] COPY …`).
    pub labels: Mutex<Vec<String>>,
    /// Steps taken from a `--cache-from` cache: key → the backend.
    pub remote_hits: Mutex<HashMap<String, String>>,
    /// Warm mode: the steps where a stage stopped.
    pub stopped: Mutex<Vec<String>>,
    /// Images already resolved (reference → image).
    pub images: Mutex<HashMap<String, Image>>,
    /// The cache mounts the build used: host dir → (id, mode, uid, gid), for `--cache-to`.
    pub cache_mounts: Mutex<std::collections::BTreeMap<PathBuf, CacheMountUse>>,
    /// The context's lockfiles, which key shared cache mounts (computed when first needed).
    pub lockfiles: OnceLock<std::result::Result<crate::mountcache::LockDigest, String>>,
    /// Held while a cache mount is imported.
    pub import_lock: Mutex<()>,
    /// `COPY --from=STAGE` sources: (stage, source path as written), for `mode=min`.
    pub copied_from: Mutex<Vec<(usize, String)>>,
    /// `--offline`'s walk ([`crate::offline`]): as warm mode, nothing runs; every step that
    /// would run is collected here.
    pub probe: Option<Mutex<Vec<crate::offline::WouldRun>>>,
    /// The native bases (`FROM ocibuild:…`) this build resolved, by manifest digest.
    pub natives: Mutex<HashMap<Digest, NativeUse>>,
    /// Toolchain roots assembled as directories for a native base whose layers are not in the
    /// store (manifest digest → root): steps run over them, no layer is written.
    pub base_roots: Mutex<HashMap<Digest, PathBuf>>,
    /// Held while a native base's layers or root are fetched or assembled.
    pub ensure_lock: Mutex<()>,
    /// `COPY --from=STAGE` steps: their content key → the key by the stage's chain
    /// ([`steps::alias_record`]), exported beside them.
    pub aliases: Mutex<HashMap<String, String>>,
    /// The native bases the whole-graph key named: (reference, what a hit says of each).
    pub graph_notes: Mutex<Vec<(String, String)>>,
    /// Native bases' listings a `--cache-from` base record gave (manifest digest → the
    /// listing's blob in the store): [`listing`].
    pub listings: Mutex<HashMap<Digest, Digest>>,
    /// Skeletons made from those listings in this build (manifest digest → dir, listing).
    pub skeletons: Mutex<HashMap<Digest, (PathBuf, std::sync::Arc<listing::Listing>)>>,
    /// The root directory of every base a step or copy used in this build (manifest digest →
    /// root): what `--cache-to` lists.
    pub used_roots: Mutex<HashMap<Digest, PathBuf>>,
}

/// A native base as the build uses it: keyed by its lock, its layers possibly not (yet) here.
#[derive(Clone, Debug)]
pub(crate) struct NativeUse {
    /// `ocibuild:…` as written, and the architecture of its packages.
    pub reference: String,
    pub arch: String,
    /// The lock key ([`crate::roots::Locked::key`]): what keys the build, not the digest.
    pub key: String,
    pub toolchain: bool,
    pub image: Image,
}

/// Where the package cache keeps toolchain bases' records ([`Exec::machine_base`]).
fn machine_records(nb: &native::NativeBases) -> PathBuf {
    nb.bases.cache_dir.join("base-records")
}

/// The index key of a native base's record in a remote cache: `{"kind": "native-base",
/// "manifest": DESCRIPTOR}` for the lock key `lock_key`.
pub(crate) fn native_base_index_key(lock_key: &str) -> String {
    // v2: records carry the base's listing. Records are written only when absent, so a v1
    // record (no listing) would keep a cache's cold runners assembling bases for every copy.
    steps::key_of(json!(["native-base-v2", lock_key]))
}

/// A `RUN --mount=type=cache` as the build used it.
#[derive(Clone, Debug)]
pub(crate) struct CacheMountUse {
    pub id: String,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// Build the Dockerfile `text` (read from `o.dockerfile`).
pub(crate) fn build(text: &str, o: &Options<'_>, ev: &(dyn Fn(Event) + Sync)) -> Result<Built> {
    let file = o.dockerfile.display().to_string();
    let df = ocibuild_dockerfile::parse(text, &file).map_err(|e| EngineError::Invalid {
        what: "Dockerfile".into(),
        detail: e.to_string(),
    })?;
    if let Some(s) = &df.directives.syntax {
        ev(Event::Note(format!(
            "# syntax={s}: noted; ocibuild's own frontend is used (no frontend image is pulled)"
        )));
    }
    let build_platform = Platform::host();
    let mut args = o.build_args.clone();
    for (k, v) in platform_args(&plat_str(&o.platform), &plat_str(&build_platform)) {
        args.entry(k).or_insert(v);
    }
    let plan = stage_graph(&df, o.target.as_deref(), &args).map_err(|e| EngineError::Invalid {
        what: file.clone(),
        detail: e.to_string(),
    })?;
    // `FROM ocibuild:…` lines are checked before anything runs: a typo in the last stage's
    // profile fails now, not after the build stages ran.
    for (i, ps) in plan.stages.iter().enumerate() {
        if let BaseRef::Image(name) = &ps.base
            && ps.needed
            && !o.contexts.contains_key(name)
            && let Some(spec) = name.strip_prefix(native::PREFIX)
            && name != native::HOST
        {
            native::parse(spec).map_err(|e| EngineError::Invalid {
                what: format!("{file}:{}", df.stages[i].span.line),
                detail: e.to_string(),
            })?;
        }
    }
    let mut ignore = DockerIgnore::for_dockerfile(&o.context, &o.dockerfile).map_err(|e| {
        EngineError::Invalid {
            what: ".dockerignore".into(),
            detail: e.to_string(),
        }
    })?;
    for rel in &o.context_excludes {
        ignore
            .exclude_always(rel)
            .map_err(|e| EngineError::Invalid {
                what: format!("leaving {rel} out of the build context"),
                detail: e.to_string(),
            })?;
    }
    if let Some(src) = ignore.source() {
        ev(Event::Note(format!("ignore rules from {}", src.display())));
    }
    let root = o.store.root().to_path_buf();
    let work_parent = root.join("engine").join("work");
    fs::create_dir_all(&work_parent)
        .map_err(EngineError::io("creating the work dir", &work_parent))?;
    let work = tempfile::Builder::new()
        .prefix("df-")
        .tempdir_in(&work_parent)
        .map_err(EngineError::io("creating a work dir", &work_parent))?;
    let cache_dir = root.join("engine").join("df");
    fs::create_dir_all(&cache_dir)
        .map_err(EngineError::io("creating the step cache", &cache_dir))?;
    let exec = new_exec(
        o,
        &df,
        plan.clone(),
        ev,
        ignore.clone(),
        work.path().to_path_buf(),
        cache_dir.clone(),
        false,
    );
    // The whole-graph key: a build that reads nothing new is the stored result, without
    // walking the steps (whose keys would each hash their inputs again) or touching a root.
    let graph_key = if o.warm_only {
        None
    } else {
        graph::key(&exec, text).ok().flatten()
    };
    if !o.no_cache
        && o.cache_to.is_empty()
        && !o.explain_cache
        && let Some(k) = &graph_key
        && let Some((stored, image)) = graph::lookup(&o.store, k)
        && let Some(mut record) = stored
            .data
            .get("record")
            .and_then(|r| serde_json::to_vec(r).ok())
            .and_then(|b| ocibuild_record::BuildRecord::from_json(&b).ok())
    {
        ev(Event::Note(format!(
            "nothing the build reads changed (graph key {}): image {}",
            &k[..16],
            image.manifest_desc.digest
        )));
        // the native bases, named by their locks in the key: their digests are the record's
        let native_notes = exec.graph_notes.lock().map_err(poison)?.clone();
        for (reference, what) in &native_notes {
            if let Some(d) = record
                .images
                .iter()
                .flat_map(|i| &i.bases)
                .find(|b| &b.reference == reference)
                .and_then(|b| b.digest.as_ref())
            {
                ev(Event::Note(format!("{reference}: {d} {what}")));
            }
        }
        for s in &mut record.steps {
            s.status = ocibuild_record::StepStatus::Cached {
                from: "local".into(),
            };
        }
        let cached: Vec<String> = stored
            .data
            .get("steps")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        for name in &cached {
            ev(Event::StepCached {
                name: name.clone(),
                from: "local".into(),
            });
        }
        drop(exec);
        let _ = fsops_remove(work.path());
        return Ok(Built {
            image,
            ran: Vec::new(),
            cached,
            stages: stored.stages,
            stopped: Vec::new(),
            record,
            graph_key,
            graph_hit: true,
        });
    }
    // `--offline`'s walk reports its events only when it turns out to be the build itself
    // (every step in the cache): they are kept until then
    let held: Mutex<Vec<Event>> = Mutex::new(Vec::new());
    let live = std::sync::atomic::AtomicBool::new(false);
    let walk_ev = |e: Event| {
        if live.load(std::sync::atomic::Ordering::SeqCst) {
            ev(e)
        } else if let Ok(mut h) = held.lock() {
            h.push(e)
        }
    };
    let mut walked: Option<Exec<'_>> = None;
    if let Some(off) = &o.offline
        && !o.warm_only
    {
        // Before anything runs: every base, image and download the build needs is here, and
        // the steps that must run can run without the network.
        let walk_dir = work.path().join("offline");
        fs::create_dir_all(&walk_dir).map_err(EngineError::io("creating a work dir", &walk_dir))?;
        let walk = new_exec(
            o,
            &df,
            plan.clone(),
            &walk_ev,
            ignore.clone(),
            walk_dir,
            cache_dir.clone(),
            true,
        );
        let mut missing =
            crate::offline::check_sources(o, &df, &plan, &|i| walk.stage_platform(i))?;
        let bases_here = !missing.iter().any(|m| {
            matches!(
                m,
                crate::offline::Missing::Lock { .. }
                    | crate::offline::Missing::Package { .. }
                    | crate::offline::Missing::Image { .. }
            )
        });
        if bases_here {
            run_levels(&walk)?;
            let would = walk
                .probe
                .as_ref()
                .map(|p| p.lock().map(|v| v.clone()))
                .transpose()
                .map_err(poison)?
                .unwrap_or_default();
            let (m, run) = crate::offline::check_steps(off, &would, &|id| walk.cache_mount_dir(id));
            missing.extend(m);
            if missing.is_empty() && run.is_empty() {
                // every step was in the cache: the walk is the build
                for e in std::mem::take(&mut *held.lock().map_err(poison)?) {
                    ev(e);
                }
                live.store(true, std::sync::atomic::Ordering::SeqCst);
                walked = Some(walk);
            } else if missing.is_empty() {
                ev(Event::Note(format!(
                    "--offline: {} not in the step cache, run{} without the network: {}",
                    if run.len() == 1 {
                        "1 step is"
                    } else {
                        "these steps are"
                    },
                    if run.len() == 1 { "s" } else { "" },
                    run.join("; ")
                )));
            }
        }
        if !missing.is_empty() {
            let cache = o.native.as_ref().map(|n| n.bases.cache_dir.as_path());
            return Err(crate::offline::report(&missing, cache, bases_here));
        }
    }
    let exec = match walked {
        Some(w) => w,
        None => {
            run_levels(&exec)?;
            exec
        }
    };
    let target = exec.plan.target;
    let out = exec.stages[target]
        .get()
        .ok_or_else(|| EngineError::Invalid {
            what: "build".into(),
            detail: "the target stage was not built".into(),
        })?;
    let image = exec.finish(&out.chain)?;
    if !o.warm_only {
        exec.export_cache()?;
        exec.export_mounts()?;
    }
    let stages: Vec<String> = exec
        .plan
        .order
        .iter()
        .map(|&i| df.stages[i].display_name(i))
        .collect();
    let record = exec.record(&out.chain, &image, &stages)?;
    let ran = std::mem::take(&mut *exec.ran.lock().map_err(poison)?);
    let cached = std::mem::take(&mut *exec.cached.lock().map_err(poison)?);
    if let Some(k) = &graph_key {
        let r: Value =
            serde_json::from_slice(&record.to_json()).map_err(|e| EngineError::Invalid {
                what: "build record".into(),
                detail: e.to_string(),
            })?;
        // the steps' labels as the walk shows them, for the events of a later hit
        let steps = exec.labels.lock().map_err(poison)?.clone();
        graph::save(
            &o.store,
            k,
            &image,
            &stages,
            json!({ "record": r, "steps": steps }),
        )?;
    }
    let stopped = std::mem::take(&mut *exec.stopped.lock().map_err(poison)?);
    drop(exec);
    let _ = fsops_remove(work.path());
    Ok(Built {
        image,
        ran,
        cached,
        stages,
        stopped,
        record,
        graph_key,
        graph_hit: false,
    })
}

/// An executor of `plan` (with `probe`: `--offline`'s walk, which runs nothing).
#[allow(clippy::too_many_arguments)]
fn new_exec<'a>(
    o: &'a Options<'a>,
    df: &'a Dockerfile,
    plan: StagePlan,
    ev: &'a (dyn Fn(Event) + Sync),
    ignore: DockerIgnore,
    work: PathBuf,
    cache_dir: PathBuf,
    probe: bool,
) -> Exec<'a> {
    Exec {
        o,
        df,
        plan,
        ev,
        ignore,
        work,
        cache_dir,
        tier: OnceLock::new(),
        tier_probe: Mutex::new(TierProbe::NotStarted),
        stages: (0..df.stages.len()).map(|_| OnceLock::new()).collect(),
        context_files: OnceLock::new(),
        hashes: Mutex::new(HashMap::new()),
        ran: Mutex::new(Vec::new()),
        cached: Mutex::new(Vec::new()),
        records: Mutex::new(Vec::new()),
        remote_hits: Mutex::new(HashMap::new()),
        stopped: Mutex::new(Vec::new()),
        images: Mutex::new(HashMap::new()),
        cache_mounts: Mutex::new(std::collections::BTreeMap::new()),
        lockfiles: OnceLock::new(),
        import_lock: Mutex::new(()),
        labels: Mutex::new(Vec::new()),
        copied_from: Mutex::new(Vec::new()),
        probe: probe.then(|| Mutex::new(Vec::new())),
        natives: Mutex::new(HashMap::new()),
        base_roots: Mutex::new(HashMap::new()),
        ensure_lock: Mutex::new(()),
        aliases: Mutex::new(HashMap::new()),
        graph_notes: Mutex::new(Vec::new()),
        listings: Mutex::new(HashMap::new()),
        skeletons: Mutex::new(HashMap::new()),
        used_roots: Mutex::new(HashMap::new()),
    }
}

/// Run the stages level by level, each level's stages on their own threads.
fn run_levels(exec: &Exec<'_>) -> Result<()> {
    let levels = exec.plan.levels.clone();
    for level in &levels {
        let results: Vec<Result<()>> = std::thread::scope(|s| {
            let handles: Vec<_> = level
                .iter()
                .map(|&i| s.spawn(move || exec.run_stage(i)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(EngineError::Invalid {
                            what: "build".into(),
                            detail: "a stage's thread panicked".into(),
                        })
                    })
                })
                .collect()
        });
        for r in results {
            r?;
        }
    }
    Ok(())
}

fn fsops_remove(p: &Path) -> std::io::Result<()> {
    ocibuild_sandbox::mounts::remove_tree(p)
}

pub(crate) fn poison<T>(_: T) -> EngineError {
    EngineError::Invalid {
        what: "build".into(),
        detail: "an internal lock was poisoned by a failed thread".into(),
    }
}

pub(crate) fn plat_str(p: &Platform) -> String {
    match &p.variant {
        Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
        None => format!("{}/{}", p.os, p.architecture),
    }
}

impl Exec<'_> {
    /// Where this build's RUN logs go (`ROOT/logs/df-<work dir>/<line>-<step>.log`).
    pub(crate) fn log_dir(&self) -> PathBuf {
        let id = self
            .work
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        crate::steplog::dir(&self.o.store, &format!("df-{id}"))
    }

    pub(crate) fn loc(&self, line: usize) -> String {
        format!("{}:{line}", self.o.dockerfile.display())
    }

    /// Start probing the sandbox in the background, when a step is about to run (a toolchain
    /// root is being assembled for one): the probe's attempts (child processes that unshare
    /// namespaces and mount overlayfs, about 0.3 s) then overlap that work instead of delaying
    /// the step. Once per build; [`Exec::tier`] takes the result.
    pub(crate) fn probe_soon(&self) {
        if let Ok(mut g) = self.tier_probe.lock()
            && matches!(*g, TierProbe::NotStarted)
        {
            *g = match std::thread::Builder::new()
                .name("sandbox-probe".into())
                .spawn(probe)
            {
                Ok(h) => TierProbe::Running(h),
                // no thread: `tier` probes in place
                Err(_) => TierProbe::Taken,
            };
        }
    }

    /// The sandbox tier, probed once, when the first RUN misses the cache (or taken from the
    /// probe [`Exec::probe_soon`] started).
    pub(crate) fn tier(&self) -> Result<(Tier, bool)> {
        let r = self.tier.get_or_init(|| {
            let started = self.tier_probe.lock().ok().and_then(|mut g| {
                match std::mem::replace(&mut *g, TierProbe::Taken) {
                    TierProbe::Running(h) => Some(h),
                    _ => None,
                }
            });
            let report = started.and_then(|h| h.join().ok()).unwrap_or_else(probe);
            choose_tier(&report, self.o.isolation)
                .map_err(|e| e.to_string())
                .and_then(|t| {
                    if t == Tier::Host {
                        Err("RUN steps need a sandbox over the stage's root, which the host tier (no isolation) cannot give; run `ocibuild doctor` to see how to allow user namespaces or chroot".into())
                    } else {
                        let overlay = match t {
                            Tier::Userns => report.overlay_in_userns.ok,
                            _ => report.root,
                        };
                        Ok((t, overlay))
                    }
                })
        });
        r.clone().map_err(|detail| EngineError::Invalid {
            what: "sandbox".into(),
            detail,
        })
    }

    /// An image by reference: a transport (`oci:`, `oci-archive:`, `docker-archive:`,
    /// `oci-layout://`), else the caller's resolver (registries). Imported into the store.
    pub(crate) fn image(&self, reference: &str) -> Result<Image> {
        self.image_for(reference, &self.o.platform)
    }

    /// [`Exec::image`] for `platform` (a stage's `FROM --platform=…`): an index gives that
    /// platform's manifest, a native base is assembled from that architecture's packages.
    pub(crate) fn image_for(&self, reference: &str, platform: &Platform) -> Result<Image> {
        let memo = if *platform == self.o.platform {
            reference.to_string()
        } else {
            format!("{reference}\n{}", plat_str(platform))
        };
        if let Some(img) = self.images.lock().map_err(poison)?.get(&memo) {
            return Ok(img.clone());
        }
        if reference == native::HOST {
            let tools = self
                .o
                .native
                .as_ref()
                .and_then(|nb| nb.host.as_deref())
                .ok_or_else(|| EngineError::Invalid {
                    what: reference.to_string(),
                    detail: "the host's own programs are a base of zero-config `--toolchain host` builds only; name a profile (`ocibuild base list`) instead".into(),
                })?;
            let img = native::host_image(&self.o.store, tools, platform, self.o.source_date_epoch)?;
            self.images
                .lock()
                .map_err(poison)?
                .insert(memo, img.clone());
            return Ok(img);
        }
        if let Some(spec) = reference.strip_prefix(native::PREFIX) {
            let r = native::parse(spec)?;
            let nb = self.o.native.as_ref().ok_or_else(|| EngineError::Invalid {
                what: reference.to_string(),
                detail: "native bases are not available in this build".into(),
            })?;
            let img = self.native_image(nb, &r, &platform.architecture)?;
            self.images
                .lock()
                .map_err(poison)?
                .insert(memo, img.clone());
            return Ok(img);
        }
        let local = if let Some(rest) = reference.strip_prefix("oci-layout://") {
            Some(format!("oci:{rest}"))
        } else if reference.starts_with("oci:")
            || reference.starts_with("oci-archive:")
            || reference.starts_with("docker-archive:")
        {
            Some(reference.to_string())
        } else {
            None
        };
        let img = match local {
            Some(l) => {
                let loc = Location::parse(&l)?;
                let src = open_location(&loc)?;
                let img = load_image(src.as_ref(), Some(platform))?;
                import_into_store(src.as_ref(), &img, &self.o.store)?;
                img
            }
            None => {
                let r = reference
                    .strip_prefix("docker-image://")
                    .unwrap_or(reference);
                let r = r.strip_prefix("docker://").unwrap_or(r);
                self.o.resolver.resolve(r, platform)?
            }
        };
        self.images
            .lock()
            .map_err(poison)?
            .insert(memo, img.clone());
        Ok(img)
    }

    /// A native base for `arch`, keyed by its lock: the image when the store has it whole;
    /// else its manifest and config as this store or a `--cache-from` cache's base record
    /// knows them (the layers are fetched or assembled only when a step runs on it or the final
    /// image needs them: [`Exec::base_rootfs`], [`Exec::ensure_layers`]); else assembled.
    fn native_image(
        &self,
        nb: &native::NativeBases,
        r: &native::NativeRef,
        arch: &str,
    ) -> Result<Image> {
        let (b, locked, from_lock) = nb.locked_for_arch(r, arch)?;
        let known = if self.o.no_cache || b.is_built(&locked) {
            None
        } else {
            match b.known_image(&locked) {
                Some(img) => Some((img, "this store")),
                None => match self.remote_base(&b, &locked)? {
                    Some(found) => Some(found),
                    None if r.toolchain => self.machine_base(nb, &b, &locked)?,
                    None => None,
                },
            }
        };
        let img = match known {
            Some((img, from)) => {
                (self.ev)(Event::Note(format!(
                    "{}: {} (keyed by its lock {}, {} packages{}; manifest from {from}: its layers are fetched or assembled only when needed), {}",
                    r.reference(),
                    img.manifest_desc.digest,
                    &locked.key[..16],
                    locked.lock.packages().count(),
                    native::lockfile_note(from_lock.as_deref()),
                    r.role()
                )));
                img
            }
            None => {
                let img = nb.image_for_arch(r, arch, self.ev)?;
                if r.toolchain && !self.o.no_cache {
                    self.remember_machine_base(nb, r, &locked, &img);
                }
                img
            }
        };
        self.natives.lock().map_err(poison)?.insert(
            img.manifest_desc.digest.clone(),
            NativeUse {
                reference: r.reference(),
                arch: arch.to_string(),
                key: locked.key.clone(),
                toolchain: r.toolchain,
                image: img.clone(),
            },
        );
        Ok(img)
    }

    /// The package cache's record of a toolchain base (`--cache-dir`/`base-records`, written
    /// when a build on this machine assembled its image: [`Exec::remember_machine_base`]): the
    /// manifest and config only, as a `--cache-from` record gives them. A fresh store then runs
    /// the build stage on the root hard-linked from the unpacked packages, and never writes,
    /// compresses and hashes the toolchain's layers (hundreds of MB) just to name its image;
    /// a step that needs the layers assembles them and checks they are the recorded image.
    fn machine_base(
        &self,
        nb: &native::NativeBases,
        b: &crate::roots::Bases,
        locked: &crate::roots::Locked,
    ) -> Result<Option<(Image, &'static str)>> {
        let dir = machine_records(nb);
        if !dir.is_dir() {
            return Ok(None);
        }
        let Ok(be) = ocibuild_cache::local::LocalCache::open(&dir, false) else {
            return Ok(None);
        };
        Ok(self
            .base_record_in(&be, b, locked)?
            .map(|img| (img, "this machine's package cache")))
    }

    /// Record the manifest and config of a toolchain base assembled in this build in the
    /// package cache ([`Exec::machine_base`]). A cache that cannot be written costs later
    /// builds time, never this one: a note says so.
    fn remember_machine_base(
        &self,
        nb: &native::NativeBases,
        r: &native::NativeRef,
        locked: &crate::roots::Locked,
        img: &Image,
    ) {
        let dir = machine_records(nb);
        let put = || -> std::result::Result<(), String> {
            let be =
                ocibuild_cache::local::LocalCache::open(&dir, true).map_err(|e| e.to_string())?;
            for d in [&img.manifest.config.digest, &img.manifest_desc.digest] {
                be.push_blob(d, &self.o.store).map_err(|e| e.to_string())?;
            }
            let record = json!({
                "kind": "native-base",
                "reference": r.reference(),
                "manifest": img.manifest_desc,
            });
            let bytes = serde_json::to_vec(&record).map_err(|e| e.to_string())?;
            be.put_index(&native_base_index_key(&locked.key), &bytes)
                .map_err(|e| e.to_string())?;
            Ok(())
        };
        if let Err(e) = put() {
            (self.ev)(Event::Note(format!(
                "{}: its record could not be kept in {} ({e}); later builds with a fresh store assemble its image again",
                r.reference(),
                dir.display()
            )));
        }
    }

    /// A native base's record in the first `--cache-from` cache that has it: its manifest and
    /// config fetched into the store (verified by digest) and remembered under the lock key.
    fn remote_base(
        &self,
        b: &crate::roots::Bases,
        locked: &crate::roots::Locked,
    ) -> Result<Option<(Image, &'static str)>> {
        for be in &self.o.cache_from {
            if let Some(img) = self.base_record_in(be.as_ref(), b, locked)? {
                return Ok(Some((img, "the cache")));
            }
        }
        Ok(None)
    }

    /// A native base's record in `be`: its manifest and config fetched into the store
    /// (verified by digest) and remembered under the lock key; a record that cannot be used is
    /// a note and a miss.
    fn base_record_in(
        &self,
        be: &dyn ocibuild_cache::CacheBackend,
        b: &crate::roots::Bases,
        locked: &crate::roots::Locked,
    ) -> Result<Option<Image>> {
        let key = native_base_index_key(&locked.key);
        {
            let got = (|| -> std::result::Result<Option<Image>, String> {
                let Some(bytes) = be.get_index(&key).map_err(|e| e.to_string())? else {
                    return Ok(None);
                };
                let v: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
                if v.get("kind").and_then(Value::as_str) != Some("native-base") {
                    return Err("not a native base record".into());
                }
                let desc: Descriptor =
                    serde_json::from_value(v.get("manifest").cloned().unwrap_or(Value::Null))
                        .map_err(|e| e.to_string())?;
                let fetch = |d: &Digest| -> std::result::Result<bool, String> {
                    match be.fetch_blob(d, &self.o.store).map_err(|e| e.to_string())? {
                        ocibuild_cache::Fetch::Fetched { .. } | ocibuild_cache::Fetch::Present => {
                            Ok(true)
                        }
                        ocibuild_cache::Fetch::Missing => Ok(false),
                        ocibuild_cache::Fetch::Corrupt { why } => Err(why),
                    }
                };
                if !fetch(&desc.digest)? {
                    return Ok(None);
                }
                let src = ocibuild_oci::layout::StoreSource::new(
                    self.o.store.clone(),
                    desc.clone(),
                    format!("a cached base in {}", be.describe()),
                );
                // the manifest is here: its config next
                let manifest: ocibuild_oci::image::Manifest = serde_json::from_slice(
                    &fs::read(self.o.store.blob_path(&desc.digest)).map_err(|e| e.to_string())?,
                )
                .map_err(|e| e.to_string())?;
                if !fetch(&manifest.config.digest)? {
                    return Ok(None);
                }
                // the base's listing, when the record has one: a copy onto the base then
                // needs no root ([`listing`]); without it, the base is assembled for a copy
                let listing = v
                    .get("listing")
                    .and_then(|l| l.get("digest"))
                    .and_then(Value::as_str)
                    .and_then(|d| d.parse::<Digest>().ok());
                if let Some(d) = listing
                    && fetch(&d)?
                {
                    self.listings
                        .lock()
                        .map_err(|_| "an internal lock was poisoned".to_string())?
                        .insert(desc.digest.clone(), d);
                }
                load_image(&src, None).map(Some).map_err(|e| e.to_string())
            })();
            match got {
                Ok(Some(img)) => {
                    b.remember(locked, &img)?;
                    return Ok(Some(img));
                }
                Ok(None) => {}
                Err(e) => (self.ev)(Event::Note(format!(
                    "cache {}: the base record of lock {}: {e} (treated as a miss)",
                    be.describe(),
                    &locked.key[..16]
                ))),
            }
        }
        Ok(None)
    }

    /// The native base of `img`, when the build resolved one.
    pub(crate) fn native_of(&self, img: &Image) -> Option<NativeUse> {
        self.natives
            .lock()
            .ok()?
            .get(&img.manifest_desc.digest)
            .cloned()
    }

    /// Whether every layer blob of `img` is in the store.
    pub(crate) fn has_layers(&self, img: &Image) -> bool {
        img.manifest
            .layers
            .iter()
            .all(|l| self.o.store.has(&l.digest))
    }

    /// Whether `img` is a native base whose root is not here yet (no layers, no assembled
    /// root): nothing on this runner has run on it in this build.
    pub(crate) fn is_lazy(&self, img: &Image) -> bool {
        self.native_of(img).is_some()
            && !self.has_layers(img)
            && !self
                .base_roots
                .lock()
                .is_ok_and(|m| m.contains_key(&img.manifest_desc.digest))
    }

    /// Make sure every layer blob of `img` is in the store: a native base's are fetched from a
    /// `--cache-from` cache that has them, else the base is assembled from its packages (the
    /// same image: equal locks give equal images).
    pub(crate) fn ensure_layers(&self, img: &Image) -> Result<()> {
        if self.has_layers(img) {
            return Ok(());
        }
        let Some(n) = self.native_of(img) else {
            return Ok(());
        };
        let _g = self.ensure_lock.lock().map_err(poison)?;
        if self.has_layers(img) {
            return Ok(());
        }
        let t0 = std::time::Instant::now();
        for be in &self.o.cache_from {
            let mut all = true;
            let mut bytes = 0;
            for l in &img.manifest.layers {
                match be.fetch_blob(&l.digest, &self.o.store) {
                    Ok(ocibuild_cache::Fetch::Fetched { .. }) => bytes += l.size,
                    Ok(ocibuild_cache::Fetch::Present) => {}
                    _ => {
                        all = false;
                        break;
                    }
                }
            }
            if all {
                (self.ev)(Event::Note(format!(
                    "{}: {} layers ({:.1} MB) fetched from cache {} in {:.2}s, not assembled",
                    n.reference,
                    img.manifest.layers.len(),
                    bytes as f64 / 1e6,
                    steps::cache_kind(&be.describe()),
                    t0.elapsed().as_secs_f64()
                )));
                return Ok(());
            }
        }
        let nb = self.o.native.as_ref().ok_or_else(|| EngineError::Invalid {
            what: n.reference.clone(),
            detail: "native bases are not available in this build".into(),
        })?;
        let r = native::parse(n.reference.trim_start_matches(native::PREFIX))?;
        let built = nb.image_for_arch(&r, &n.arch, self.ev)?;
        if built.manifest_desc.digest != img.manifest_desc.digest {
            return Err(EngineError::Invalid {
                what: n.reference.clone(),
                detail: format!(
                    "assembled from its lock {} it is {}, but the cache's record of the same lock says {}; the cache was written by another ocibuild build: run with --no-cache or clear the cache",
                    &n.key[..16],
                    built.manifest_desc.digest,
                    img.manifest_desc.digest
                ),
            });
        }
        Ok(())
    }

    /// The root filesystem of a stage's base, for a step that runs on it (or a copy that reads
    /// it): a native toolchain base whose layers are not here is assembled straight into a
    /// directory (no layer written); any other image is extracted once, its layers fetched or
    /// assembled first when needed ([`Exec::ensure_layers`]).
    pub(crate) fn base_rootfs(&self, img: &Image) -> Result<PathBuf> {
        if let Some(p) = self
            .base_roots
            .lock()
            .map_err(poison)?
            .get(&img.manifest_desc.digest)
        {
            return Ok(p.clone());
        }
        if let Some(n) = self.native_of(img)
            && n.toolchain
            && !self.has_layers(img)
            && let Some(nb) = &self.o.native
        {
            // a step runs on it: the sandbox is probed while the root is put together
            self.probe_soon();
            let _g = self.ensure_lock.lock().map_err(poison)?;
            let r = native::parse(n.reference.trim_start_matches(native::PREFIX))?;
            let (b, locked, _) = nb.locked_for_arch(&r, &n.arch)?;
            // a ready root from the cache, unless its packages are all unpacked here already
            // (linking them costs less than fetching and extracting the tree)
            let fetched = if b.unpacked_here(&locked) {
                None
            } else {
                self.remote_root(&n.reference, &locked.key)
            };
            let (root, how) = match fetched {
                Some(done) => done,
                None => {
                    let tc = b.toolchain_locked_root(&locked, false)?;
                    let how = if tc.cached {
                        "found in the store".to_string()
                    } else {
                        "assembled from packages".to_string()
                    };
                    (tc.root, how)
                }
            };
            (self.ev)(Event::Note(format!(
                "{}: a step runs on it: root {how} ({} packages, lock {})",
                n.reference,
                locked.lock.packages().count(),
                &locked.key[..16]
            )));
            self.base_roots
                .lock()
                .map_err(poison)?
                .insert(img.manifest_desc.digest.clone(), root.clone());
            self.used_roots
                .lock()
                .map_err(poison)?
                .insert(img.manifest_desc.digest.clone(), root.clone());
            return Ok(root);
        }
        self.ensure_layers(img)?;
        let root = extract_rootfs(&self.o.store, img)?;
        self.used_roots
            .lock()
            .map_err(poison)?
            .insert(img.manifest_desc.digest.clone(), root.clone());
        Ok(root)
    }

    /// The toolchain root of lock `key` from a `--cache-from` cache's root blob
    /// ([`rootblob`]), when this store has no root of that lock and a cache has one: `None`
    /// (after a note, when a cache's blob was unusable) means assemble it.
    fn remote_root(&self, reference: &str, key: &str) -> Option<(PathBuf, String)> {
        if self.o.cache_from.is_empty() {
            return None;
        }
        let here = self
            .o
            .store
            .root()
            .join("engine")
            .join("rootfs")
            .join(format!("lock-{key}"));
        if here.join("complete").is_file() && here.join("rootfs").is_dir() {
            return None;
        }
        let t0 = std::time::Instant::now();
        match rootblob::fetch(&self.o.cache_from, &self.o.store, key) {
            rootblob::Fetched::Root(root, bytes, entries, kind) => Some((
                root,
                format!(
                    "fetched from cache {kind} ({:.1} MB, {entries} entries, in {:.2}s), not assembled",
                    bytes as f64 / 1e6,
                    t0.elapsed().as_secs_f64()
                ),
            )),
            rootblob::Fetched::Missing => None,
            rootblob::Fetched::Unusable(why) => {
                (self.ev)(Event::Note(format!(
                    "{reference}: the cache's ready root is unusable ({why}); it is assembled from packages instead"
                )));
                None
            }
        }
    }

    /// The skeleton of a native base whose root is not here, made from the listing its
    /// `--cache-from` record gave ([`listing`]): `None` when the base is here (or assembled in
    /// this build) or no listing came with it.
    pub(crate) fn skeleton_of(
        &self,
        img: &Image,
    ) -> Result<Option<(PathBuf, std::sync::Arc<listing::Listing>)>> {
        let d = &img.manifest_desc.digest;
        if let Some(s) = self.skeletons.lock().map_err(poison)?.get(d) {
            return Ok(Some(s.clone()));
        }
        if !self.is_lazy(img) {
            return Ok(None);
        }
        let Some(blob) = self.listings.lock().map_err(poison)?.get(d).cloned() else {
            return Ok(None);
        };
        let _g = self.ensure_lock.lock().map_err(poison)?;
        if let Some(s) = self.skeletons.lock().map_err(poison)?.get(d) {
            return Ok(Some(s.clone()));
        }
        let t0 = std::time::Instant::now();
        let reference = self.native_of(img).map(|n| n.reference).unwrap_or_default();
        // kept in the store's roots (pruned with them): made once per listing, never removed
        // at the end of a build
        let name = format!("skeleton-{}", blob.hex());
        let done = self
            .o
            .store
            .root()
            .join("engine")
            .join("rootfs")
            .join(&name);
        let made = (|| -> Result<(listing::Listing, PathBuf, &'static str)> {
            let path = self.o.store.blob_path(&blob);
            let bytes =
                fs::read(&path).map_err(EngineError::io("reading a base listing", &path))?;
            let l = listing::Listing::from_blob(&bytes)?;
            if done.join("rootfs").is_dir() && done.join("complete").is_file() {
                crate::storeusage::hold_root(&done);
                return Ok((l, done.join("rootfs"), "found in the store"));
            }
            let (tmp, root) = rootfs_tmp(&self.o.store)?;
            l.skeleton(&root)?;
            Ok((
                l,
                publish_rootfs(tmp, &name)?,
                "made from the cache's listing",
            ))
        })();
        let (l, dir, made) = match made {
            Ok(m) => m,
            Err(e) => {
                // a listing this ocibuild cannot use costs time, never the build: the base is
                // assembled for the copy, as without a listing
                (self.ev)(Event::Note(format!(
                    "{reference}: the cache's listing of it is unusable ({e}); the base is assembled instead"
                )));
                self.listings.lock().map_err(poison)?.remove(d);
                return Ok(None);
            }
        };
        (self.ev)(Event::Note(format!(
            "{reference}: a copy runs on it: its skeleton {made} ({} directories, {} links) in {:.2}s, not assembled",
            l.dirs.len(),
            l.links.len(),
            t0.elapsed().as_secs_f64()
        )));
        let s = (dir, std::sync::Arc::new(l));
        self.skeletons
            .lock()
            .map_err(poison)?
            .insert(d.clone(), s.clone());
        Ok(Some(s))
    }

    /// The platform stage `i` is built for: its `FROM --platform=…` (e.g. `$BUILDPLATFORM`, so
    /// a build stage runs natively and cross-compiles), else that of the stage it is built on,
    /// else the target platform.
    pub(crate) fn stage_platform(&self, i: usize) -> Result<Platform> {
        let ps = &self.plan.stages[i];
        match (&ps.platform, &ps.base) {
            (Some(p), _) => Platform::parse(p).map_err(|e| EngineError::Invalid {
                what: format!(
                    "{}: FROM --platform={p}",
                    self.loc(self.df.stages[i].span.line)
                ),
                detail: e.to_string(),
            }),
            (None, BaseRef::Stage(j)) if *j < i => self.stage_platform(*j),
            _ => Ok(self.o.platform.clone()),
        }
    }

    /// An image's root filesystem, extracted once into the store's rootfs cache.
    pub(crate) fn image_root(&self, img: &Image) -> Result<PathBuf> {
        self.base_rootfs(img)
    }

    /// A stage's merged root, materialised on first use.
    pub(crate) fn stage_root(&self, i: usize) -> Result<PathBuf> {
        let out = self.stages[i].get().ok_or_else(|| EngineError::Invalid {
            what: "build".into(),
            detail: format!("stage {i} is used before it was built"),
        })?;
        let mut m = out.merged.lock().map_err(poison)?;
        if let Some(p) = &*m {
            return Ok(p.clone());
        }
        let dir = self.work.join(format!("final-{i}"));
        let t0 = std::time::Instant::now();
        materialize(self, &out.chain, &dir)?;
        (self.ev)(Event::Note(format!(
            "[{}] root materialised for a copy from it ({} change dirs on the base) in {:.2}s",
            self.df.stages[i].display_name(i),
            out.chain.uppers.len(),
            t0.elapsed().as_secs_f64()
        )));
        *m = Some(dir.clone());
        Ok(dir)
    }

    /// Record a step as cached (for the summary) and say so; returns where it came from.
    pub(crate) fn note_cached(&self, name: &str, key: &str) -> String {
        let from = self.cached_from(key);
        (self.ev)(Event::StepCached {
            name: name.to_string(),
            from: from.clone(),
        });
        if let Ok(mut c) = self.cached.lock() {
            c.push(name.to_string());
        }
        from
    }

    /// Where a cached step came from: the `--cache-from` backend that had it, else `local`.
    pub(crate) fn cached_from(&self, key: &str) -> String {
        self.remote_hits
            .lock()
            .ok()
            .and_then(|h| h.get(key).cloned())
            .unwrap_or_else(|| "local".to_string())
    }

    /// The build record of the finished build: the final image with each layer's origin, the
    /// bases (the final stage's first, then the other stages' images), every step.
    fn record(
        &self,
        chain: &Chain,
        image: &Image,
        stages: &[String],
    ) -> Result<ocibuild_record::BuildRecord> {
        use ocibuild_record as r;
        let file = self
            .o
            .dockerfile
            .strip_prefix(&self.o.context)
            .ok()
            .map(|p| p.to_string_lossy().into_owned())
            .or_else(|| {
                self.o
                    .dockerfile
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "Dockerfile".into());
        let mut rec = r::BuildRecord::new(
            r::Builder::ocibuild(env!("CARGO_PKG_VERSION")),
            r::Frontend::Dockerfile {
                file,
                target: self.o.target.clone(),
                stages: stages.to_vec(),
            },
        );
        let platform = plat_str(&self.o.platform);
        rec.parameters = r::Parameters {
            build_args: self.o.build_args.clone(),
            secrets: self.o.secrets.keys().cloned().collect(),
            platforms: vec![platform.clone()],
            source_date_epoch: Some(self.o.source_date_epoch),
            flags: BTreeMap::from([(
                "network".to_string(),
                if self.o.network { "default" } else { "none" }.to_string(),
            )]),
        };
        let mut bases: Vec<r::Base> = Vec::new();
        let mut base_of = |c: &Chain, in_image: bool| {
            if let (Some(img), Some((stage, reference))) = (&c.base, &c.base_ref)
                && !bases
                    .iter()
                    .any(|b| b.digest.as_ref() == Some(&img.manifest_desc.digest))
            {
                bases.push(r::Base {
                    name: stage.clone(),
                    reference: reference.clone(),
                    digest: Some(img.manifest_desc.digest.clone()),
                    in_image,
                    debian: None,
                });
            }
        };
        base_of(chain, true);
        for s in self.stages.iter().filter_map(|s| s.get()) {
            base_of(&s.chain, false);
        }
        let layers = image
            .manifest
            .layers
            .iter()
            .zip(&chain.layers)
            .zip(&chain.origins)
            .map(|((d, (_, diff_id)), origin)| r::Layer {
                descriptor: d.clone(),
                diff_id: diff_id.clone(),
                origin: origin.clone(),
            })
            .collect();
        rec.images.push(r::PlatformImage {
            platform,
            manifest: image.manifest_desc.clone(),
            config: image.manifest.config.clone(),
            layers,
            bases,
            toolchains: Vec::new(),
            lockfiles: lockfiles_of(&self.o.context),
            outputs: Vec::new(),
        });
        rec.steps = std::mem::take(&mut *self.records.lock().map_err(poison)?);
        Ok(rec)
    }

    /// The final image of a chain, written to the store.
    fn finish(&self, chain: &Chain) -> Result<Image> {
        // the base's layers are the image's: a native base keyed by its lock may have none here
        if let Some(img) = &chain.base {
            self.ensure_layers(img)?;
        }
        let mut config = chain.config.clone();
        let created = rfc3339(self.o.source_date_epoch);
        if let Some(obj) = config.as_object_mut() {
            obj.insert("created".into(), json!(created));
            obj.insert(
                "rootfs".into(),
                json!({"type": "layers", "diff_ids": chain.layers.iter().map(|(_, d)| d.to_string()).collect::<Vec<_>>()}),
            );
            if !self.o.labels.is_empty() {
                let c = obj.entry("config").or_insert_with(|| json!({}));
                if let Some(c) = c.as_object_mut() {
                    let l = c.entry("Labels").or_insert_with(|| json!({}));
                    if !l.is_object() {
                        *l = json!({});
                    }
                    if let Some(l) = l.as_object_mut() {
                        for (k, v) in &self.o.labels {
                            l.insert(k.clone(), json!(v));
                        }
                    }
                }
            }
        }
        let cfg = config_bytes(&config)?;
        let cd = self.o.store.put_bytes(&cfg)?;
        let cfg_desc = Descriptor::new(media::OCI_CONFIG, cd, cfg.len() as u64);
        // The steps' layers as the build asks them compressed: a cached step's layer may have
        // been written for another build (a build stage's, fast; another --compression). So
        // are a native base's (`FROM ocibuild:PROFILE`) when they are another compression: a
        // toolchain profile's are stored zstd, and an image on it (a debug image on
        // `ocibuild:build-base`) would ship zstd layers the build did not ask for. Other
        // bases' layers are kept as they are (BuildKit's default).
        let native_base = chain
            .base_ref
            .as_ref()
            .is_some_and(|(_, r)| r.starts_with("ocibuild:"));
        let mut layers = Vec::with_capacity(chain.layers.len());
        for (i, (d, diff_id)) in chain.layers.iter().enumerate() {
            let convert = match chain.origins.get(i) {
                Some(ocibuild_record::LayerOrigin::Step { .. }) => true,
                Some(ocibuild_record::LayerOrigin::Base { .. }) => {
                    native_base
                        && media::layer_compression(&d.media_type) != Some(self.o.compression)
                }
                _ => false,
            };
            if !convert {
                layers.push(d.clone());
                continue;
            }
            let t0 = std::time::Instant::now();
            let (l, converted) = ocibuild_oci::assemble::layer_compressed_as(
                &self.o.store,
                d,
                diff_id,
                self.o.compression,
                self.o.level,
            )?;
            if converted {
                let key = ocibuild_oci::assemble::compression_key(self.o.compression, self.o.level);
                let was = self
                    .o
                    .store
                    .layer_key_of(diff_id, &d.digest)
                    .unwrap_or_else(|| d.media_type.clone());
                (self.ev)(Event::Note(format!(
                    "layer {} (stored as {was}: a build stage's, a toolchain base's or an earlier --compression) converted to {key}: {} in {:.1} s",
                    d.digest,
                    l.digest,
                    t0.elapsed().as_secs_f64()
                )));
            }
            layers.push(l);
        }
        let manifest = new_manifest(cfg_desc, layers, BTreeMap::new());
        let mb = to_json_bytes(&manifest, "manifest")?;
        let md = self.o.store.put_bytes(&mb)?;
        Ok(Image {
            index: None,
            manifest_desc: Descriptor::new(media::OCI_MANIFEST, md, mb.len() as u64),
            manifest_bytes: mb,
            manifest,
            config_bytes: cfg,
            config,
        })
    }

    /// The chain a stage starts from.
    pub(crate) fn start_chain(&self, i: usize) -> Result<(Chain, Vec<String>)> {
        let ps = &self.plan.stages[i];
        let platform = self.stage_platform(i)?;
        match &ps.base {
            BaseRef::Scratch => {
                // as BuildKit's empty image (and buildah's): the default PATH, so a scratch
                // image's ENTRYPOINT/CMD without a slash is found the same way
                let mut config = json!({
                    "architecture": platform.architecture,
                    "os": platform.os,
                    "config": {"Env": [format!("PATH={}", steps::DEFAULT_PATH)]},
                    "rootfs": {"type": "layers", "diff_ids": []},
                    "history": [],
                });
                if let Some(v) = &platform.variant {
                    config["variant"] = json!(v);
                }
                Ok((
                    Chain {
                        base: None,
                        steps: Vec::new(),
                        layers: Vec::new(),
                        uppers: Vec::new(),
                        config,
                        key: steps::key_of(json!(["FROM scratch", plat_str(&platform), "PATH"])),
                        origins: Vec::new(),
                        base_ref: None,
                    },
                    Vec::new(),
                ))
            }
            BaseRef::Stage(j) => {
                let out = self.stages[*j].get().ok_or_else(|| EngineError::Invalid {
                    what: self.loc(self.df.stages[i].span.line),
                    detail: format!("stage {j} is used before it was built"),
                })?;
                let mut chain = out.chain.clone();
                let triggers = take_onbuild(&mut chain.config);
                chain.key = steps::key_of(json!(["FROM stage", chain.key]));
                Ok((chain, triggers))
            }
            BaseRef::Image(name) => {
                let reference = match self.o.contexts.get(name) {
                    Some(NamedContext::Image(r)) => r.clone(),
                    Some(NamedContext::Dir(d)) => {
                        return Err(EngineError::Invalid {
                            what: self.loc(self.df.stages[i].span.line),
                            detail: format!(
                                "FROM {name}: the build context {name} is a directory ({}), which can only be used by COPY --from and RUN --mount=from; give an image (oci-layout://DIR) to build on it",
                                d.display()
                            ),
                        });
                    }
                    None => name.clone(),
                };
                (self.ev)(Event::Phase(format!(
                    "[{}] FROM {reference}",
                    self.df.stages[i].display_name(i)
                )));
                let img = self.image_for(&reference, &platform).map_err(|e| EngineError::Invalid {
                    what: format!("{}: FROM {name}", self.loc(self.df.stages[i].span.line)),
                    detail: format!(
                        "{e}\nhelp: FROM takes scratch, an earlier stage, ocibuild:PROFILE[:VARIANT] (a base from Debian packages, see `ocibuild base list`), oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE, a --build-context name, or a registry reference"
                    ),
                })?;
                let diff_ids = img.diff_ids()?;
                let layers = img
                    .manifest
                    .layers
                    .iter()
                    .cloned()
                    .map(|mut l| {
                        if let Some(c) = media::layer_compression(&l.media_type) {
                            l.media_type = c.oci_layer_media_type().to_string();
                        }
                        l.annotations.clear();
                        l
                    })
                    .zip(diff_ids)
                    .collect();
                let mut config = img.config.clone();
                if let Some(obj) = config.as_object_mut() {
                    for k in [
                        "container",
                        "container_config",
                        "docker_version",
                        "id",
                        "parent",
                    ] {
                        obj.remove(k);
                    }
                    if !obj.get("config").is_some_and(Value::is_object) {
                        obj.insert("config".into(), json!({}));
                    }
                }
                let triggers = take_onbuild(&mut config);
                let origins = (0..img.manifest.layers.len())
                    .map(|_| ocibuild_record::LayerOrigin::Base {
                        base: 0,
                        name: None,
                    })
                    .collect();
                Ok((
                    Chain {
                        origins,
                        base_ref: Some((self.df.stages[i].display_name(i), reference.clone())),
                        base: Some(img.clone()),
                        steps: Vec::new(),
                        layers,
                        uppers: Vec::new(),
                        config,
                        // a native base by its lock (equal locks give equal images): a cold
                        // runner keys its steps before the base is assembled
                        key: match self.native_of(&img) {
                            Some(n) => steps::key_of(json!(["FROM native", n.key])),
                            None => steps::key_of(json!([
                                "FROM image",
                                img.manifest_desc.digest.to_string()
                            ])),
                        },
                    },
                    triggers,
                ))
            }
        }
    }
}

/// The lockfiles the builders know at the top of `dir` (the build context or the app), each with
/// its SHA-256: what provenance lists as materials and an SBOM reads for dependencies.
pub fn lockfiles_of(dir: &Path) -> Vec<ocibuild_record::Lockfile> {
    use sha2::Digest as _;
    let mut out = Vec::new();
    let mut names: Vec<String> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in names {
        let Some(kind) = ocibuild_record::LockfileKind::of_file_name(&name) else {
            continue;
        };
        let Ok(bytes) = fs::read(dir.join(&name)) else {
            continue;
        };
        out.push(ocibuild_record::Lockfile {
            path: name,
            kind,
            sha256: hex::encode(sha2::Sha256::digest(&bytes)),
            packages: None,
        });
    }
    out
}

/// Remove and return the config's ONBUILD triggers (they run in the stage built on it).
fn take_onbuild(config: &mut Value) -> Vec<String> {
    let Some(c) = config.get_mut("config").and_then(Value::as_object_mut) else {
        return Vec::new();
    };
    let t = c
        .remove("OnBuild")
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default();
    t.iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// A chain's filesystem as one directory at `dir` (which must not exist).
pub(crate) fn materialize(exec: &Exec<'_>, chain: &Chain, dir: &Path) -> Result<()> {
    match &chain.base {
        Some(img) => fsops::clone_tree(&exec.base_rootfs(img)?, dir)?,
        None => fs::create_dir_all(dir).map_err(EngineError::io("creating a stage root", dir))?,
    }
    for u in &chain.uppers {
        fsops::apply_upper(dir, u)?;
    }
    Ok(())
}

/// `image` extracted into `ROOT/engine/rootfs/<manifest>/rootfs` (once; later calls return it).
pub fn extract_rootfs(store: &ContentStore, image: &Image) -> Result<PathBuf> {
    let dir = store.root().join("engine").join("rootfs");
    fs::create_dir_all(&dir).map_err(EngineError::io("creating the rootfs cache", &dir))?;
    let name = rootfs_name(image)?;
    let done = dir.join(&name);
    if done.join("rootfs").is_dir() && done.join("complete").is_file() {
        crate::storeusage::hold_root(&done);
        return Ok(done.join("rootfs"));
    }
    let (tmp, root) = rootfs_tmp(store)?;
    let diff_ids = image.diff_ids()?;
    let opts = rootfs_extract_options();
    for (layer, diff_id) in image.manifest.layers.iter().zip(&diff_ids) {
        let c =
            media::layer_compression(&layer.media_type).ok_or_else(|| EngineError::Invalid {
                what: format!("layer {}", layer.digest),
                detail: format!("unsupported media type {}", layer.media_type),
            })?;
        let f = store.open_blob(&layer.digest)?;
        extract_layer_blob(std::io::BufReader::new(f), c, Some(diff_id), &root, &opts)?;
    }
    publish_rootfs(tmp, &name)
}

/// The name of `image`'s extracted root in `ROOT/engine/rootfs`: a digest of its layers'
/// diff_ids, so images with the same layers (the same base written with another compression,
/// another config or labels) share one directory instead of one extraction each.
pub(crate) fn rootfs_name(image: &Image) -> Result<String> {
    use sha2::{Digest as _, Sha256};
    let mut h = Sha256::new();
    for d in image.diff_ids()? {
        h.update(d.to_string().as_bytes());
        h.update(b"\n");
    }
    Ok(format!("layers-{}", hex::encode(h.finalize())))
}

/// A temp dir in `ROOT/engine/rootfs` with an empty `rootfs/` in it, for [`publish_rootfs`].
pub(crate) fn rootfs_tmp(store: &ContentStore) -> Result<(tempfile::TempDir, PathBuf)> {
    let dir = store.root().join("engine").join("rootfs");
    fs::create_dir_all(&dir).map_err(EngineError::io("creating the rootfs cache", &dir))?;
    let tmp = tempfile::Builder::new()
        .prefix(".rootfs-")
        .tempdir_in(&dir)
        .map_err(EngineError::io("creating a temp dir for a rootfs", &dir))?;
    let root = tmp.path().join("rootfs");
    fs::create_dir(&root).map_err(EngineError::io("creating a rootfs", &root))?;
    Ok((tmp, root))
}

/// How layers are extracted into a rootfs the sandbox runs over (owners kept when root).
pub(crate) fn rootfs_extract_options() -> ExtractOptions {
    ExtractOptions {
        preserve_owner: fsops::is_root(),
        ..ExtractOptions::default()
    }
}

/// Move `<tmp>/rootfs`, complete, into place as `<name>/rootfs` next to `tmp` (in
/// `ROOT/engine/rootfs`; `name` is [`rootfs_name`] of an image, or `lock-<key>` for a toolchain root
/// assembled without layers): marked complete, then renamed, so a killed build leaves only a temp
/// dir behind. A concurrent build that got there first wins; this copy is dropped.
pub(crate) fn publish_rootfs(tmp: tempfile::TempDir, name: &str) -> Result<PathBuf> {
    let done = tmp.path().with_file_name(name);
    fs::write(tmp.path().join("complete"), b"")
        .map_err(EngineError::io("marking a rootfs complete", tmp.path()))?;
    let tmp_path = tmp.keep();
    match fs::rename(&tmp_path, &done) {
        Ok(()) => {}
        Err(_) if done.join("complete").is_file() => {
            let _ = ocibuild_sandbox::mounts::remove_tree(&tmp_path);
        }
        Err(e) => {
            let _ = ocibuild_sandbox::mounts::remove_tree(&done);
            fs::rename(&tmp_path, &done).map_err(|_| EngineError::Io {
                what: "moving an extracted rootfs into place".into(),
                path: done.clone(),
                source: e,
            })?;
        }
    }
    crate::storeusage::hold_root(&done);
    Ok(done.join("rootfs"))
}

/// The Dockerfile step cache in a store: (step records, bytes of their change dirs).
pub fn step_cache_usage(store: &ContentStore) -> (u64, u64) {
    let dir = store.root().join("engine").join("df");
    let mut records = 0;
    let mut bytes = 0;
    for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "json") {
            records += 1;
        } else if p.is_dir() && e.file_name() != "explain" {
            bytes += walkdir::WalkDir::new(&p)
                .into_iter()
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum::<u64>();
        }
    }
    (records, bytes)
}

/// Remove step records (and their change dirs) not used for `older_than`, and those whose
/// layer blob is gone from the store; with no age, every record. Returns how many went.
/// The caller holds the store's exclusive lock.
pub fn prune_steps(store: &ContentStore, older_than: Option<std::time::Duration>) -> Result<u64> {
    let dir = store.root().join("engine").join("df");
    let now = std::time::SystemTime::now();
    let mut removed = 0;
    for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let age = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or_default();
        let dangling = fs::read(&p)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|v| {
                let d = v.get("layer")?.get(0)?.get("digest")?.as_str()?.to_string();
                Some(d)
            })
            .and_then(|d| d.parse::<Digest>().ok())
            .is_some_and(|d| !store.has(&d));
        if older_than.is_none_or(|o| age >= o) || dangling {
            let upper = p.with_extension("");
            let _ = ocibuild_sandbox::mounts::remove_tree(&upper);
            let _ = fs::remove_file(p.with_extension("oci"));
            fs::remove_file(&p).map_err(EngineError::io("removing a step record", &p))?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub(crate) mod tests {
    use super::*;

    pub(crate) struct NoRegistry;
    impl ImageResolver for NoRegistry {
        fn resolve(&self, reference: &str, _: &Platform) -> Result<Image> {
            Err(EngineError::Invalid {
                what: reference.into(),
                detail: "no registry in this test".into(),
            })
        }
    }

    pub(crate) fn options<'a>(
        store: &ContentStore,
        context: &Path,
        resolver: &'a NoRegistry,
    ) -> Options<'a> {
        Options {
            store: store.clone(),
            context: context.to_path_buf(),
            context_excludes: Vec::new(),
            dockerfile: context.join("Dockerfile"),
            target: None,
            build_args: BTreeMap::new(),
            platform: Platform::host(),
            secrets: BTreeMap::new(),
            contexts: BTreeMap::new(),
            resolver,
            native: None,
            isolation: Isolation::Auto { allow_host: false },
            network: false,
            ca_bundle: None,
            pass_env: Vec::new(),
            source_date_epoch: 0,
            compression: Compression::Gzip,
            level: None,
            no_cache: false,
            labels: BTreeMap::new(),
            cache_from: Vec::new(),
            cache_to: Vec::new(),
            explain_cache: false,
            warm_only: false,
            offline: None,
        }
    }

    pub(crate) fn notes(text: &str, o: &Options<'_>) -> (Built, Vec<String>) {
        let seen = Mutex::new(Vec::new());
        let built = build(text, o, &|e| {
            if let Event::Note(n) | Event::Warning(n) = e {
                seen.lock().unwrap().push(n);
            }
        })
        .unwrap();
        (built, seen.into_inner().unwrap())
    }

    const TWO_STAGES: &str = "FROM scratch AS build\nCOPY app.txt /out/app.txt\nCOPY lib /out/lib/\n\
                              FROM scratch\nCOPY --from=build /out/app.txt /app/app.txt\n";

    #[test]
    fn a_cached_copy_of_one_file_from_a_stage_does_not_materialise_it() {
        let t = tempfile::tempdir().unwrap();
        let ctx = t.path().join("ctx");
        fs::create_dir_all(ctx.join("lib")).unwrap();
        fs::write(ctx.join("app.txt"), "v1").unwrap();
        fs::write(ctx.join("lib/a"), "a").unwrap();
        fs::write(ctx.join("Dockerfile"), TWO_STAGES).unwrap();
        let store = ContentStore::open(t.path().join("store")).unwrap();
        let r = NoRegistry;
        let o = options(&store, &ctx, &r);
        let (first, _) = notes(TWO_STAGES, &o);
        let (again, seen) = notes(TWO_STAGES, &o);
        assert_eq!(first.image.manifest_desc, again.image.manifest_desc);
        assert!(again.ran.is_empty(), "{:?}", again.ran);
        assert!(
            !seen.iter().any(|n| n.contains("materialised")),
            "a cached COPY --from read the stage's root: {seen:?}"
        );
    }

    /// A lock with one package at `version` (nothing is downloaded: the tests below never
    /// assemble it).
    fn lock(version: &str) -> ocibuild_debian::base::Lockfile {
        use ocibuild_debian::base::{LockedLayer, LockedPackage, Lockfile, Variant};
        Lockfile {
            version: 1,
            profile: "static".into(),
            variant: Variant::Default,
            release: "trixie".into(),
            arch: Platform::host().architecture,
            created: 0,
            extra_packages: Vec::new(),
            layers: vec![LockedLayer {
                name: "static".into(),
                packages: vec![LockedPackage {
                    name: "base-files".into(),
                    version: version.into(),
                    arch: Platform::host().architecture,
                    sha256: "00".repeat(32),
                    size: 1,
                    filename: "pool/main/b/base-files/base-files.deb".into(),
                    suite: "trixie".into(),
                    source: "file:///nonexistent".into(),
                    source_package: None,
                    source_version: None,
                }],
            }],
        }
    }

    fn native_bases(store: &ContentStore, dir: &Path, version: &str) -> native::NativeBases {
        let lock_file = dir.join(format!("static-{version}.lock.json"));
        fs::write(&lock_file, serde_json::to_vec(&lock(version)).unwrap()).unwrap();
        native::NativeBases {
            bases: crate::roots::Bases {
                store: store.clone(),
                cache_dir: dir.join("debs"),
                release: ocibuild_debian::apt::Release::Trixie,
                arch: Platform::host().architecture,
                offline: true,
                source_date_epoch: Some(0),
                index_max_age: None,
                progress: Default::default(),
            },
            locks: vec![(lock_file, lock(version))],
            host: None,
        }
    }

    /// Issue 20: a native base keys the build by its lock, before (and without) assembling
    /// it; a new package version is a new key for the whole graph and for every step.
    #[test]
    fn native_bases_key_the_build_by_their_lock_without_assembling_it() {
        let t = tempfile::tempdir().unwrap();
        let ctx = t.path().join("ctx");
        fs::create_dir_all(&ctx).unwrap();
        fs::write(ctx.join("a.txt"), "a").unwrap();
        let text = "FROM ocibuild:static\nCOPY a.txt /a.txt\n";
        fs::write(ctx.join("Dockerfile"), text).unwrap();
        let store = ContentStore::open(t.path().join("store")).unwrap();
        let r = NoRegistry;
        let df = ocibuild_dockerfile::parse(text, "Dockerfile").unwrap();
        let plan = stage_graph(&df, None, &BTreeMap::new()).unwrap();
        let graph_key = |version: &str| {
            let mut o = options(&store, &ctx, &r);
            o.native = Some(native_bases(&store, t.path(), version));
            let exec = new_exec(
                &o,
                &df,
                plan.clone(),
                &|_| {},
                DockerIgnore::default(),
                t.path().join("work"),
                t.path().join("df"),
                false,
            );
            graph::key(&exec, text).unwrap().unwrap()
        };
        // no package is in the cache and the lock's repository does not exist: keying
        // assembles nothing
        let k1 = graph_key("13.8");
        assert_eq!(k1, graph_key("13.8"));
        let k2 = graph_key("13.8+deb13u1");
        assert_ne!(k1, k2, "a new package version must change the graph key");

        // the steps: an image the store knows under each lock (no layers, so nothing to
        // assemble), and a COPY on it
        let config = json!({"architecture": Platform::host().architecture, "os": "linux",
            "config": {}, "rootfs": {"type": "layers", "diff_ids": []}});
        let cfg = config_bytes(&config).unwrap();
        let cd = store.put_bytes(&cfg).unwrap();
        let m = new_manifest(
            Descriptor::new(media::OCI_CONFIG, cd, cfg.len() as u64),
            Vec::new(),
            BTreeMap::new(),
        );
        let mb = to_json_bytes(&m, "manifest").unwrap();
        let md = store.put_bytes(&mb).unwrap();
        let image = Image {
            index: None,
            manifest_desc: Descriptor::new(media::OCI_MANIFEST, md, mb.len() as u64),
            manifest_bytes: mb,
            manifest: m,
            config_bytes: cfg,
            config,
        };
        let build_with = |version: &str| {
            let mut o = options(&store, &ctx, &r);
            let nb = native_bases(&store, t.path(), version);
            let (b, locked, _) = nb
                .locked_for_arch(&native::parse("static").unwrap(), &nb.bases.arch)
                .unwrap();
            b.remember(&locked, &image).unwrap();
            o.native = Some(nb);
            notes(text, &o).0
        };
        let first = build_with("13.8");
        assert_eq!(first.ran.len(), 1, "{:?}", first.ran);
        assert_eq!(build_with("13.8").ran.len(), 0);
        // the same image under another lock: the steps on it run again (keyed by the lock)
        let bumped = build_with("13.8+deb13u1");
        assert_eq!(bumped.ran.len(), 1, "{:?}", bumped.ran);
        assert_eq!(bumped.image.manifest_desc, first.image.manifest_desc);
    }

    #[test]
    fn a_build_that_reads_nothing_new_is_the_stored_result() {
        let t = tempfile::tempdir().unwrap();
        let ctx = t.path().join("ctx");
        fs::create_dir_all(ctx.join("lib")).unwrap();
        fs::write(ctx.join("app.txt"), "v1").unwrap();
        fs::write(ctx.join("lib/a"), "a").unwrap();
        fs::write(ctx.join("Dockerfile"), TWO_STAGES).unwrap();
        let store = ContentStore::open(t.path().join("store")).unwrap();
        let r = NoRegistry;
        let o = options(&store, &ctx, &r);
        let (first, _) = notes(TWO_STAGES, &o);
        assert!(!first.graph_hit);
        assert_eq!(first.ran.len(), 3, "{:?}", first.ran);
        // nothing changed: the stored result, every step reported cached, no walk
        let (again, seen) = notes(TWO_STAGES, &o);
        assert!(again.graph_hit, "{seen:?}");
        assert_eq!(again.image.manifest_desc, first.image.manifest_desc);
        assert_eq!(again.cached.len(), 3, "{:?}", again.cached);
        assert!(
            again
                .record
                .steps
                .iter()
                .all(|s| matches!(s.status, ocibuild_record::StepStatus::Cached { .. }))
        );
        assert_eq!(again.record.digest(), first.record.digest());
        // a file no step reads is not an input
        fs::write(ctx.join("README.md"), "docs").unwrap();
        assert!(notes(TWO_STAGES, &o).0.graph_hit);
        // a file a COPY selects is: the walk runs the steps that read it, and the result is kept
        fs::write(ctx.join("lib/a"), "a2").unwrap();
        let (edited, _) = notes(TWO_STAGES, &o);
        assert!(!edited.graph_hit);
        assert_eq!(edited.ran.len(), 1, "only COPY lib ran: {:?}", edited.ran);
        assert!(notes(TWO_STAGES, &o).0.graph_hit);
        // a blob gone from the store is a miss, never a wrong image
        let layer = &edited.image.manifest.layers[0].digest;
        fs::remove_file(store.blob_path(layer)).unwrap();
        let (rebuilt, _) = notes(TWO_STAGES, &o);
        assert!(!rebuilt.graph_hit);
        assert!(store.has(layer));
        // --no-cache walks (and runs) every step
        let mut nc = options(&store, &ctx, &r);
        nc.no_cache = true;
        assert!(!notes(TWO_STAGES, &nc).0.graph_hit);
    }
}
