//! A zero-config [`Plan`] run on the one executor ([`crate::df`]).
//!
//! The plan is lowered to the same graph the Dockerfile frontend builds — stages of steps with
//! declared inputs, written in Dockerfile form by [`crate::eject`] — and the Dockerfile
//! executor runs it: per-step content keys, change dirs, the local and `--cache-from` /
//! `--cache-to` caches, cache mounts and events are the Dockerfile frontend's.
//!
//! ```text
//! FROM ocibuild:<toolchain> AS build         the toolchain root (a native base, shared lock)
//!   COPY <declared inputs> /src/             the dependency steps' inputs (lockfiles) only
//!   RUN <dependency steps>                   keyed by the lockfiles: a source edit reuses them
//!   COPY --exclude=… . /src/                 the rest of the source
//!   RUN <build steps>
//! FROM ocibuild:<runtime>:nonroot            a COPY --from=build per layer of the plan, config
//! ```
//!
//! What a Dockerfile cannot say is a step of this module after the graph ran: the shared
//! libraries native code needs that the runtime base lacks (an ELF scan of the image, copied
//! from the toolchain root into a layer of their own). The record names the plan's layers and
//! the Debian packages of both roots, as the zero-config frontend always did.
//!
//! Every plan takes this path:
//! - `--toolchain host`: the build stage is `FROM ocibuild:host`, the host's own programs bound
//!   read-only over a skeleton root ([`crate::df::native::host_image`]);
//! - `writable` directories: a `COPY --chown` per directory in the final stage (eject's form);
//! - `--compare-naive`: the naive single-stage image is the build stage taken as the final one
//!   (its size: the toolchain root's layers and every layer the build stage's steps made);
//! - a runtime of another architecture: see below.
//!
//! A runtime of another architecture than the host's (`--platform linux/arm64` on amd64): the
//! build stage runs on the build platform (`FROM --platform=$BUILDPLATFORM`) — Go
//! cross-compiles, and the layers of Node, Python and Java apps are architecture-independent
//! when nothing in them is native code, so every platform of a multi-platform build shares
//! them (the same step keys, the same layer). Whether they are is read from the plan (install
//! scripts, platform wheels, packages chosen by CPU: [`Plan::arch_specific`]) and from the
//! built layers (an ELF file of another machine). When they are not, the steps must run for
//! the target platform, which needs qemu-user through binfmt_misc: without it the build stops
//! before running anything for that platform, naming what was found and the fix.

use std::collections::BTreeMap;
use std::path::Path;

use ocibuild_builders::{Lang, Plan};
use ocibuild_oci::assemble::{AssembleSpec, ConfigEdits, LayerInput, assemble};
use ocibuild_oci::image::{Image, Platform};
use ocibuild_sandbox::probe::{choose_tier, probe};
use serde_json::json;

use crate::Event;
use crate::error::{EngineError, Result};
use crate::zeroconfig::{Built, Run};

/// Registries are not a zero-config plan's business: every base is a native one.
struct NoRegistry;

impl crate::df::ImageResolver for NoRegistry {
    fn resolve(&self, reference: &str, _: &Platform) -> Result<Image> {
        Err(EngineError::Invalid {
            what: reference.to_string(),
            detail: "a zero-config plan names only native bases (ocibuild:PROFILE)".into(),
        })
    }
}

/// A `--cache-from` / `--cache-to` backend the caller keeps, lent to the executor.
pub(crate) struct Lent<'a>(pub(crate) &'a dyn ocibuild_cache::CacheBackend);

impl ocibuild_cache::CacheBackend for Lent<'_> {
    fn describe(&self) -> String {
        self.0.describe()
    }
    fn get_index(
        &self,
        key: &str,
    ) -> std::result::Result<Option<Vec<u8>>, ocibuild_cache::CacheError> {
        self.0.get_index(key)
    }
    fn put_index(
        &self,
        key: &str,
        bytes: &[u8],
    ) -> std::result::Result<ocibuild_cache::PutOutcome, ocibuild_cache::CacheError> {
        self.0.put_index(key, bytes)
    }
    fn has_blob(
        &self,
        d: &ocibuild_oci::Digest,
    ) -> std::result::Result<bool, ocibuild_cache::CacheError> {
        self.0.has_blob(d)
    }
    fn fetch_blob(
        &self,
        d: &ocibuild_oci::Digest,
        store: &ocibuild_oci::store::ContentStore,
    ) -> std::result::Result<ocibuild_cache::Fetch, ocibuild_cache::CacheError> {
        self.0.fetch_blob(d, store)
    }
    fn push_blob(
        &self,
        d: &ocibuild_oci::Digest,
        store: &ocibuild_oci::store::ContentStore,
    ) -> std::result::Result<(), ocibuild_cache::CacheError> {
        self.0.push_blob(d, store)
    }
}

/// The Dockerfile form of `plan` (what `--dry-run=dockerfile` prints) for the app in `app`,
/// its build stage's `FROM` as `from` says.
pub(crate) fn lower(
    app: &Path,
    plan: &Plan,
    o: &Run<'_>,
    from: crate::eject::BuildFrom,
) -> Result<String> {
    crate::eject::dockerfile(
        plan,
        &crate::eject::EjectOptions {
            app: app.display().to_string(),
            labels: o.labels.clone(),
            source_date_epoch: o.common.source_date_epoch,
            dir: Some(app.to_path_buf()),
            build_from: from,
        },
    )
}

/// Where the build stage of a plan runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BuildStage {
    /// On the host, for the host's platform (the image is the host's).
    Native,
    /// On the build platform for another target (`FROM --platform=$BUILDPLATFORM`): the
    /// layers are cross-compiled or architecture-independent.
    BuildPlatform,
    /// For the target platform (under emulation): the layers hold the target's native code.
    Target,
}

/// Every ELF file under `root` whose machine is not `machine`: (path relative to `root`,
/// the machine's name).
fn foreign_elf_files(root: &Path, machine: u16) -> Vec<(String, String)> {
    use std::io::Read as _;
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
    {
        let mut head = [0u8; 20];
        let ok = std::fs::File::open(e.path()).and_then(|mut f| f.read_exact(&mut head));
        if ok.is_err() || !crate::elf::is_elf(&head) {
            continue;
        }
        let m = if head[5] == 2 {
            u16::from_be_bytes([head[18], head[19]])
        } else {
            u16::from_le_bytes([head[18], head[19]])
        };
        if m != machine {
            let rel = e.path().strip_prefix(root).unwrap_or(e.path());
            out.push((format!("/{}", rel.display()), machine_name(m)));
        }
    }
    out
}

fn machine_name(m: u16) -> String {
    match m {
        0x3e => "x86-64".into(),
        0xb7 => "aarch64".into(),
        0x28 => "arm".into(),
        0x03 => "i386".into(),
        other => format!("machine {other:#x}"),
    }
}

/// `--toolchain host`: the steps run the host's own programs.
fn on_host(plan: &Plan, o: &Run<'_>) -> bool {
    o.host_toolchain || plan.toolchain.profile == "host"
}

/// Build `plan` on the one executor. `warm_only`: fetch what `--cache-from` has, run nothing
/// (then the second value names the first step of each stage no cache had).
pub(crate) fn build(
    app: &Path,
    plan: &Plan,
    o: &Run<'_>,
    warm_only: bool,
    ev: &(dyn Fn(Event) + Sync),
) -> Result<(Built, Vec<String>)> {
    let target = o.runtime_bases.arch.as_str();
    if target == o.toolchain_bases.arch {
        return build_on(app, plan, o, warm_only, ev, BuildStage::Native)?.map_err(|found| {
            EngineError::Invalid {
                what: "zero-config build".into(),
                detail: format!("unexpected foreign ELF files: {}", found.join(", ")),
            }
        });
    }
    // Another architecture's image: on the build platform (Go cross-compiles) unless the plan
    // already says its layers are native code (addons, wheels, cgo).
    if plan.arch_specific.is_empty() {
        match build_on(app, plan, o, warm_only, ev, BuildStage::BuildPlatform)? {
            Ok(built) => return Ok(built),
            Err(found) => {
                let n = found.len();
                let mut what: Vec<String> = found.into_iter().take(5).collect();
                if n > 5 {
                    what.push(format!("and {} more", n - 5));
                }
                return per_platform(
                    app,
                    plan,
                    o,
                    warm_only,
                    ev,
                    &format!(
                        "the layers built on linux/{} hold its native code ({})",
                        o.toolchain_bases.arch,
                        what.join(", ")
                    ),
                );
            }
        }
    }
    per_platform(app, plan, o, warm_only, ev, &plan.arch_specific.join("; "))
}

/// The plan's steps for the target platform: under qemu-user through binfmt_misc, or an early
/// error naming `why` and the fix.
fn per_platform(
    app: &Path,
    plan: &Plan,
    o: &Run<'_>,
    warm_only: bool,
    ev: &(dyn Fn(Event) + Sync),
    why: &str,
) -> Result<(Built, Vec<String>)> {
    use ocibuild_sandbox::emulation::{Emulation, check, host_arch, qemu_arch};
    let target = o.runtime_bases.arch.clone();
    if let Emulation::Unavailable(reason) = check(&target) {
        return Err(EngineError::Invalid {
            what: format!("building the {} app for linux/{target}", plan.lang),
            detail: format!(
                "its layers are not architecture-independent: {why}. Its steps must run for linux/{target}, \
                 which needs emulation on this linux/{host} host, and {reason}\n\
                 help: install Debian's qemu-user-static package, which registers qemu-{q} through \
                 binfmt_misc with the F flag (in a container, do it on the host: binfmt_misc belongs to the \
                 host kernel); or build linux/{target} on a linux/{target} runner; or use pure \
                 {pure} packages instead of native ones; `ocibuild doctor` lists the platforms that can run",
                host = host_arch(),
                q = qemu_arch(&target),
                pure = match plan.lang {
                    Lang::Python => "Python (none-any wheel)",
                    Lang::Node => "JavaScript",
                    _ => "architecture-independent",
                }
            ),
        });
    }
    ev(Event::Note(format!(
        "{why}: the steps run for linux/{target} under emulation"
    )));
    let mut o = o.clone();
    o.toolchain_bases.arch = target;
    build_on(app, plan, &o, warm_only, ev, BuildStage::Target)?.map_err(|found| {
        EngineError::Invalid {
            what: "zero-config build".into(),
            detail: format!(
                "the steps ran for the target platform and left ELF files of another: {}",
                found.join(", ")
            ),
        }
    })
}

/// [`build`] with the build stage `at`; `Ok(Err(files))`: on the build platform, the layers
/// hold ELF files of another machine than the target's (they are not shareable).
#[allow(clippy::type_complexity)]
fn build_on(
    app: &Path,
    plan: &Plan,
    o: &Run<'_>,
    warm_only: bool,
    ev: &(dyn Fn(Event) + Sync),
    at: BuildStage,
) -> Result<std::result::Result<(Built, Vec<String>), Vec<String>>> {
    let store = &o.toolchain_bases.store;
    let host = on_host(plan, o);
    let text = lower(
        app,
        plan,
        o,
        crate::eject::BuildFrom {
            build_platform: at == BuildStage::BuildPlatform,
            host,
        },
    )?;
    // The graph's text is kept beside the step logs: errors point at its lines.
    let dir = store.root().join("engine").join("zeroconfig");
    std::fs::create_dir_all(&dir).map_err(EngineError::io("creating a directory", &dir))?;
    let dockerfile = {
        use sha2::{Digest as _, Sha256};
        let h = hex::encode(Sha256::digest(text.as_bytes()));
        dir.join(format!("{}-{}.Dockerfile", plan.lang, &h[..16]))
    };
    crate::roots::write_atomically(&dockerfile, text.as_bytes())?;
    let platform = Platform {
        architecture: o.runtime_bases.arch.clone(),
        ..Platform::host()
    };
    let opts = crate::df::Options {
        store: store.clone(),
        context: app.to_path_buf(),
        context_excludes: o.common.context_excludes.clone(),
        dockerfile: dockerfile.clone(),
        target: None,
        build_args: BTreeMap::new(),
        platform,
        secrets: BTreeMap::new(),
        contexts: BTreeMap::new(),
        resolver: &NoRegistry,
        native: Some(crate::df::native::NativeBases {
            bases: o.runtime_bases.clone(),
            locks: Vec::new(),
            host: if host {
                Some(crate::zeroconfig::probe_host_tools(plan)?.join("\n"))
            } else {
                None
            },
        }),
        isolation: o.common.isolation,
        network: o.common.network,
        ca_bundle: o.common.ca_bundle.clone(),
        pass_env: {
            let mut env = o.common.pass_env.clone();
            if o.toolchain_bases.offline {
                // download tools work from their caches, and say what is not there
                env.extend(
                    crate::offline::OFFLINE_ENV
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string())),
                );
            }
            env
        },
        source_date_epoch: o.common.source_date_epoch,
        compression: o.common.compression,
        level: o.common.level,
        no_cache: o.common.no_cache,
        // the labels are the graph's LABEL lines (history entries, as the plan loop wrote)
        labels: BTreeMap::new(),
        cache_from: o
            .common
            .cache_from
            .iter()
            .map(|b| Box::new(Lent(b.as_ref())) as Box<dyn ocibuild_cache::CacheBackend>)
            .collect(),
        // Every step of the build stage feeds the final image (its outputs are what the final
        // stage copies), so `mode=min` exports it as `mode=max` does: a cold runner with the
        // same source runs nothing, and after a source edit reuses the dependency steps.
        cache_to: o
            .common
            .cache_to
            .iter()
            .map(|(b, _, ig)| {
                (
                    Box::new(Lent(b.as_ref())) as Box<dyn ocibuild_cache::CacheBackend>,
                    ocibuild_cache::Mode::Max,
                    *ig,
                )
            })
            .collect(),
        explain_cache: o.common.explain_cache,
        warm_only,
        offline: o
            .toolchain_bases
            .offline
            .then_some(crate::offline::Offline {
                strict_downloads: true,
            }),
    };
    let built = crate::df::build(&text, &opts, ev).map_err(|e| zero_config_hint(e, plan, o))?;
    // This frontend's result over the graph's (the native-libs layer, the layer names, the
    // record), kept under a key derived from the whole-graph key: a no-change rebuild is two
    // lookups.
    let result_key = built.graph_key.as_ref().and_then(|k| {
        let plan = serde_json::to_value(plan).ok()?;
        Some(crate::df::graph::digest(&json!([
            "zeroconfig-result-v1",
            k,
            plan,
            o.labels,
            o.runtime_bases.arch,
            o.compare_naive,
        ])))
    });
    if built.graph_hit
        && let Some(k) = &result_key
        && let Some(hit) = stored_result(store, k, ev)
    {
        return Ok(Ok((hit, built.stopped)));
    }
    // after the graph (which locks the same bases): offline, a base that cannot be locked is
    // the preflight's to report, with everything else that is missing
    let locks = crate::zeroconfig::locks(plan, o)?;
    // `None`: the host's own programs (`--toolchain host`)
    let toolchain_lock = locks.toolchain.as_ref();
    let mut image = built.image;
    let df_record = built.record;

    // The plan's layer names, by the instruction that made each layer.
    let eo = crate::eject::EjectOptions {
        labels: o.labels.clone(),
        source_date_epoch: o.common.source_date_epoch,
        ..Default::default()
    };
    let lines = crate::eject::final_stage(plan, &eo);
    let name_of = |step_name: &str| -> String {
        lines
            .iter()
            .find(|l| crate::df::one_line(&l.text) == step_name)
            .and_then(|l| match l.makes {
                crate::eject::Makes::Layer(i) => plan.layers.get(i).map(|l| l.name.clone()),
                crate::eject::Makes::Writable(_) => Some("writable".into()),
                crate::eject::Makes::Config => None,
            })
            .unwrap_or_else(|| step_name.to_string())
    };
    let steps_by_id: BTreeMap<String, &ocibuild_record::Step> =
        df_record.steps.iter().map(|s| (s.id.clone(), s)).collect();
    let df_layers = df_record
        .images
        .first()
        .map(|i| i.layers.clone())
        .unwrap_or_default();
    // (name, reused: its step was cached)
    let mut names: Vec<(String, bool)> = df_layers
        .iter()
        .filter_map(|l| match &l.origin {
            ocibuild_record::LayerOrigin::Step { step } => {
                let s = steps_by_id.get(step);
                Some((
                    name_of(s.map_or("", |s| s.name.as_str())),
                    s.is_some_and(|s| {
                        matches!(s.status, ocibuild_record::StepStatus::Cached { .. })
                    }),
                ))
            }
            _ => None,
        })
        .collect();

    // The shared libraries the image's native code needs that the runtime base lacks (a cgo Go
    // binary's too; not
    // when the build stage ran on the build platform: native code there is the target's, and
    // the build root is not). Built on the build platform, the app's layers must hold no ELF
    // file of another machine.
    let scan_libs = (matches!(plan.lang, Lang::Node | Lang::Python)
        || (plan.lang == Lang::Go && !plan.arch_specific.is_empty()))
        && at != BuildStage::BuildPlatform;
    let scan_foreign = at == BuildStage::BuildPlatform;
    if !warm_only && (scan_libs || scan_foreign) {
        let work = tempfile::Builder::new()
            .prefix("native-libs-")
            .tempdir_in(store.root().join("engine").join("work"))
            .map_err(EngineError::io("creating a work dir", store.root()))?;
        let libs_dir = work.path().join("libs");
        // the app's layers only (the runtime base's own modules are the base's business)
        let app_root = work.path().join("app");
        std::fs::create_dir_all(&app_root)
            .map_err(EngineError::io("creating a directory", &app_root))?;
        let diff_ids = image.diff_ids()?;
        let n_base = image.manifest.layers.len().saturating_sub(names.len());
        for (layer, diff_id) in image.manifest.layers.iter().zip(&diff_ids).skip(n_base) {
            let c = ocibuild_oci::media::layer_compression(&layer.media_type).ok_or_else(|| {
                EngineError::Invalid {
                    what: format!("layer {}", layer.digest),
                    detail: format!("unsupported media type {}", layer.media_type),
                }
            })?;
            let f = store.open_blob(&layer.digest)?;
            ocibuild_oci::extract::extract_layer_blob(
                std::io::BufReader::new(f),
                c,
                Some(diff_id),
                &app_root,
                &ocibuild_oci::extract::ExtractOptions::default(),
            )?;
        }
        if scan_foreign {
            let machine =
                ocibuild_sandbox::emulation::elf_machine(&o.runtime_bases.arch).unwrap_or_default();
            let found = foreign_elf_files(&app_root, machine);
            if !found.is_empty() {
                return Ok(Err(found
                    .into_iter()
                    .map(|(p, m)| format!("{p} ({m})"))
                    .collect()));
            }
        }
        // the roots only when there is native code to resolve: a cold runner that took the
        // image from the cache has neither assembled
        let libs = if scan_libs && has_linked_elf(&app_root) {
            // only when the runtime base lacks a library
            let mut build_root = || -> crate::error::Result<std::path::PathBuf> {
                Ok(match toolchain_lock {
                    Some(l) => o.toolchain_bases.toolchain_locked_root(l, false)?.root,
                    None => std::path::PathBuf::from("/"),
                })
            };
            let mut runtime_root = || {
                let runtime = o.runtime_bases.image_locked(&locks.runtime)?;
                o.runtime_bases.rootfs(&runtime.image)
            };
            crate::elf::missing_libs(&[app_root], &mut runtime_root, &mut build_root, &libs_dir)?
        } else {
            crate::elf::NativeLibs::default()
        };
        crate::elf::report_missing_libs(&libs, ev);
        if !libs.copied.is_empty() {
            let src = ocibuild_oci::layout::StoreSource::new(
                store.clone(),
                image.manifest_desc.clone(),
                "the built image".to_string(),
            );
            let history = vec![json!({
                "created": ocibuild_oci::image::rfc3339(o.common.source_date_epoch),
                "created_by": "ocibuild: the shared libraries native code needs that the runtime base lacks",
            })];
            let assembled = assemble(
                store,
                AssembleSpec {
                    base: Some((&src, image.clone())),
                    layers: vec![LayerInput::new(libs_dir, String::new())],
                    config: ConfigEdits::default(),
                    annotations: BTreeMap::new(),
                    platform: None,
                    compression: o.common.compression,
                    level: o.common.level,
                    source_date_epoch: o.common.source_date_epoch,
                    owner: Some((0, 0)),
                    keep_modes: false,
                    history: Some(history),
                },
            )?;
            let reused = assembled.new_layers.first().is_some_and(|l| l.2);
            image = assembled.image;
            names.push(("native-libs".to_string(), reused));
        }
    }

    let mut layers = Vec::new();
    let n_base = image.manifest.layers.len().saturating_sub(names.len());
    for ((name, reused), d) in names.iter().zip(&image.manifest.layers[n_base..]) {
        let reused = *reused;
        ev(Event::Layer {
            name: name.clone(),
            digest: d.digest.to_string(),
            size: d.size,
            reused,
        });
        layers.push((name.clone(), d.digest.to_string(), d.size, reused));
    }
    let runtime = df_record
        .images
        .first()
        .and_then(|i| i.bases.first())
        .and_then(|b| b.digest.as_ref())
        .map(|d| d.to_string())
        .unwrap_or_default();
    // `--compare-naive`: the naive single-stage image is the build stage taken as the final
    // one (`FROM build`): the toolchain root's layers, then every layer its steps made (the
    // source, the dependencies, the outputs), as a one-stage Dockerfile would ship them.
    let naive_size = if o.compare_naive
        && let Some(toolchain_lock) = toolchain_lock
    {
        ev(Event::Phase(
            "naive single-stage image (for --compare-naive)".into(),
        ));
        let tc = o
            .toolchain_bases
            .toolchain_locked_root(toolchain_lock, true)?;
        let root: u64 = tc
            .image
            .as_ref()
            .map(|b| b.image.manifest.layers.iter().map(|l| l.size).sum())
            .unwrap_or(0);
        let mut steps = 0;
        for s in df_record.steps.iter().filter(|s| s.stage == "build") {
            if let Some(d) = &s.layer {
                let p = store.blob_path(d);
                steps += std::fs::metadata(&p)
                    .map_err(EngineError::io("reading a layer of the build stage", &p))?
                    .len();
            }
        }
        Some(root + steps)
    } else {
        None
    };
    let statuses: Vec<ocibuild_record::Step> = df_record.steps.clone();
    let cached = built.ran.is_empty();
    let layer_names: Vec<String> = names.iter().map(|(n, _)| n.clone()).collect();
    let mut record = crate::zeroconfig::build_record(
        app,
        plan,
        o,
        &locks,
        "",
        &image,
        &layer_names,
        &runtime,
        Vec::new(),
    )?;
    // the graph's steps, each with its own content key and how it ended
    record.steps = statuses;
    let tier = if cached {
        ocibuild_sandbox::run::Tier::Host
    } else {
        choose_tier(&probe(), o.common.isolation)?
    };
    let out = Built {
        image,
        runtime,
        toolchain: toolchain_lock.map(|l| l.key.clone()),
        layers,
        tier,
        steps: built.ran,
        naive_size,
        cached,
        record,
    };
    if let Some(k) = &result_key {
        let record: serde_json::Value =
            serde_json::from_slice(&out.record.to_json()).map_err(|e| EngineError::Invalid {
                what: "build record".into(),
                detail: e.to_string(),
            })?;
        crate::df::graph::save(
            store,
            k,
            &out.image,
            &[],
            json!({
                "record": record,
                "layers": out.layers,
                "runtime": out.runtime,
                "toolchain": out.toolchain,
                "naive_size": out.naive_size,
            }),
        )?;
    }
    Ok(Ok((out, built.stopped)))
}

/// Whether a tree holds an ELF file that links shared libraries (what
/// [`crate::elf::missing_libs`] resolves against the runtime base and the build root).
fn has_linked_elf(root: &Path) -> bool {
    walkdir::WalkDir::new(root)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .any(|e| {
            let mut head = [0u8; 4];
            std::fs::File::open(e.path())
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
                .is_ok()
                && crate::elf::is_elf(&head)
                && std::fs::read(e.path())
                    .ok()
                    .and_then(|b| crate::elf::needed(&b))
                    .is_some_and(|n| !n.is_empty())
        })
}

/// The stored result of a zero-config build ([`build`]'s second key), when its image is whole.
fn stored_result(
    store: &ocibuild_oci::store::ContentStore,
    key: &str,
    ev: &(dyn Fn(Event) + Sync),
) -> Option<Built> {
    let (stored, image) = crate::df::graph::lookup(store, key)?;
    let d = &stored.data;
    let mut record = d
        .get("record")
        .and_then(|r| serde_json::to_vec(r).ok())
        .and_then(|b| ocibuild_record::BuildRecord::from_json(&b).ok())?;
    let layers: Vec<(String, String, u64, bool)> =
        serde_json::from_value(d.get("layers")?.clone()).ok()?;
    let runtime = d.get("runtime")?.as_str()?.to_string();
    let toolchain = d.get("toolchain")?.as_str().map(str::to_string);
    for s in &mut record.steps {
        s.status = ocibuild_record::StepStatus::Cached {
            from: "local".into(),
        };
    }
    let layers: Vec<_> = layers
        .into_iter()
        .map(|(name, digest, size, _)| {
            ev(Event::Layer {
                name: name.clone(),
                digest: digest.clone(),
                size,
                reused: true,
            });
            (name, digest, size, true)
        })
        .collect();
    Some(Built {
        image,
        runtime,
        toolchain,
        layers,
        tier: ocibuild_sandbox::run::Tier::Host,
        steps: Vec::new(),
        naive_size: d.get("naive_size").and_then(serde_json::Value::as_u64),
        cached: true,
        record,
    })
}

/// A failed step's hint in the zero-config frontend's words (there is no Dockerfile to fix).
fn zero_config_hint(e: EngineError, plan: &Plan, o: &Run<'_>) -> EngineError {
    match e {
        EngineError::StepFailed {
            step,
            argv,
            status,
            output,
            hint: _,
        } => {
            let network = plan
                .steps
                .iter()
                .any(|s| s.network && argv.ends_with(&s.argv.join(" ")));
            let hint = if output.contains("gyp ERR!") || output.contains("prebuild-install warn") {
                "a native addon failed to build: the build root has python3, make, g++ and Node's headers (npm_config_nodedir=/usr); an addon whose prebuilt binary cannot be downloaded is built from source, which fails when it needs a library's -dev headers the root lacks: vendor a prebuilt binary, pick a pure-JavaScript package, or write a Dockerfile".to_string()
            } else if network && o.toolchain_bases.offline {
                "this step downloads dependencies and the build is --offline: it ran from the tool's cache (a cache mount), which lacks something; run the build once online so the step is cached".to_string()
            } else if network && !o.common.network {
                "this step downloads dependencies and --network none was given; allow the network or vendor the dependencies".to_string()
            } else if network {
                "if a download failed, check the network, proxy variables and --build-ca; otherwise the output above says what the tool disliked".to_string()
            } else {
                "the output above says what the tool disliked".to_string()
            };
            EngineError::StepFailed {
                step,
                argv,
                status,
                output,
                hint,
            }
        }
        other => other,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn elf_files_of_another_machine_are_found_with_their_machine() {
        let d = tempfile::tempdir().unwrap();
        let elf = |machine: u16| {
            let mut b = b"\x7fELF\x02\x01\x01".to_vec();
            b.resize(18, 0);
            b.extend_from_slice(&machine.to_le_bytes());
            b.resize(64, 0);
            b
        };
        std::fs::create_dir_all(d.path().join("node_modules/a/build/Release")).unwrap();
        std::fs::write(
            d.path().join("node_modules/a/build/Release/a.node"),
            elf(0x3e),
        )
        .unwrap();
        std::fs::write(d.path().join("node_modules/a/arm.node"), elf(0xb7)).unwrap();
        std::fs::write(
            d.path().join("node_modules/a/index.js"),
            "module.exports = 1\n",
        )
        .unwrap();
        std::fs::write(d.path().join("short"), b"\x7fELF").unwrap();
        let found = foreign_elf_files(d.path(), 0xb7);
        assert_eq!(
            found,
            [(
                "/node_modules/a/build/Release/a.node".to_string(),
                "x86-64".to_string()
            )]
        );
        assert_eq!(foreign_elf_files(d.path(), 0x3e).len(), 1);
    }
}
