//! Run a zero-config [`Plan`]: toolchain root → sandboxed steps → layers → final image.
//!
//! The app directory is never modified: a filtered copy of it is bound read-write at the plan's
//! `source_dir` (`/src`), each of the plan's `outputs` is a fresh host directory bound at its
//! path, and each cache mount a persistent directory under `ROOT/engine/cache/<name>`. Only those
//! binds survive from one step to the next (each step's changes to the toolchain root itself are
//! discarded), so plans put everything they need later under them. After the last step, each
//! [`LayerSpec`] selects files from a bound directory and becomes one layer of the final image,
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

use ocibuild_builders::{Filter, Plan, glob_filter, walk_filtered};
use ocibuild_debian::base::Variant;
use ocibuild_oci::assemble::{AssembleSpec, ConfigEdits, LayerInput, assemble};
use ocibuild_oci::image::Image;
use ocibuild_oci::media::Compression;
use ocibuild_oci::store::ContentStore;
use ocibuild_sandbox::probe::{Isolation, choose_tier, probe};
use ocibuild_sandbox::run::{Mount, Network, RootfsSource, Spec, Tier, run};
use serde_json::json;

use crate::Event;
use crate::error::{EngineError, Result};
use crate::roots::{Base, Bases};

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

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

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
}

/// What [`build`] made.
#[derive(Clone, Debug)]
pub struct Built {
    pub image: Image,
    pub runtime: Base,
    pub toolchain: Option<Base>,
    /// (layer name, digest, compressed size, reused)
    pub layers: Vec<(String, String, u64, bool)>,
    pub tier: Tier,
    /// Steps run, with their wall seconds.
    pub steps: Vec<(String, f64)>,
    /// With [`Options::compare_naive`]: the naive image's compressed size.
    pub naive_size: Option<u64>,
    /// Taken whole from the build cache: no step ran.
    pub cached: bool,
}

struct CachedBuild {
    image: Image,
    layers: Vec<(String, String, u64, bool)>,
    naive_size: Option<u64>,
}

/// The image a build record names, when every blob it needs is still in the store (a pruned or
/// damaged entry is a miss, never a wrong image).
fn cached_build(store: &ContentStore, record: &Path) -> Option<CachedBuild> {
    let v: serde_json::Value = serde_json::from_slice(&fs::read(record).ok()?).ok()?;
    let desc: ocibuild_oci::image::Descriptor =
        serde_json::from_value(v.get("manifest")?.clone()).ok()?;
    let src =
        ocibuild_oci::layout::StoreSource::new(store.clone(), desc, "a cached build".to_string());
    let image = ocibuild_oci::image::load_image(&src, None).ok()?;
    if !image.manifest.layers.iter().all(|l| store.has(&l.digest)) {
        return None;
    }
    let layers = serde_json::from_value(v.get("layers")?.clone()).ok()?;
    let naive_size = v.get("naive_size").and_then(|n| n.as_u64());
    Some(CachedBuild {
        image,
        layers,
        naive_size,
    })
}

/// The whole-build key: the plan, the content of every source file the build copies (path,
/// executable bit, link target, SHA256 — never mtimes), the toolchain and runtime images, and
/// the options that change the result. The CA bundle, proxies and network switch are left out:
/// they decide whether downloads succeed, not what they produce.
fn build_key(
    app: &Path,
    plan: &Plan,
    o: &Options,
    filter: &Filter,
    toolchain: Option<&Base>,
    runtime: &Base,
) -> Result<String> {
    use sha2::{Digest as _, Sha256};
    let mut h = Sha256::new();
    let plan_json = serde_json::to_vec(plan).map_err(|e| EngineError::Invalid {
        what: "plan".into(),
        detail: e.to_string(),
    })?;
    h.update(b"zeroconfig-build-v1\0");
    h.update(&plan_json);
    h.update(
        format!(
            "\0{:?}\0{}\0{:?}\0{:?}\0{:?}\0{}\0{}",
            toolchain.map(|t| t.image.manifest_desc.digest.to_string()),
            runtime.image.manifest_desc.digest,
            o.source_date_epoch,
            o.compression,
            o.level,
            o.host_toolchain,
            o.compare_naive,
        )
        .as_bytes(),
    );
    for (k, v) in &o.labels {
        h.update(format!("\0label {k}={v}").as_bytes());
    }
    for (k, v) in &o.pass_env {
        if !PROXY_VARS.contains(&k.as_str()) {
            h.update(format!("\0env {k}={v}").as_bytes());
        }
    }
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
                h.update(format!("\0L {rel} {}", t.display()).as_bytes());
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
                h.update(format!("\0F {rel} {exec} {}", hex::encode(fh.finalize())).as_bytes());
            } else if ft.is_dir() {
                h.update(format!("\0D {rel}").as_bytes());
            }
            Ok(())
        },
    )?;
    Ok(hex::encode(h.finalize()))
}

/// The toolchain profile and packages to lock for a plan: a Go from backports comes on
/// `build-base` alone, not on top of the release's default Go.
pub fn toolchain_request(plan: &Plan) -> (String, Vec<String>) {
    let t = &plan.toolchain;
    let backport_go = t
        .packages
        .iter()
        .any(|p| p.starts_with("golang-1.") && p.ends_with("-go"));
    if t.profile == "go" && backport_go {
        let mut pk = t.packages.clone();
        if !pk.iter().any(|p| p == "git") {
            pk.push("git".into());
        }
        ("build-base".into(), pk)
    } else {
        (t.profile.clone(), t.packages.clone())
    }
}

/// Build the app in `app` following `plan`.
pub fn build(app: &Path, plan: &Plan, o: &Options, ev: &dyn Fn(Event)) -> Result<Built> {
    let store = &o.toolchain_bases.store;
    // 1. The toolchain root.
    let mut host_mounts = Vec::new();
    let (toolchain, rootfs) = if o.host_toolchain || plan.toolchain.profile == "host" {
        ev(Event::Phase(
            "toolchain: the host's (--toolchain host)".into(),
        ));
        let (root, mounts) = host_root(store.root())?;
        host_mounts = mounts;
        (None, root)
    } else {
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
        let (base, root) = o.toolchain_bases.toolchain(
            &profile,
            Variant::Default,
            &packages,
            plan.toolchain.backports,
        )?;
        ev(Event::Note(format!(
            "toolchain root {} ({})",
            base.image.manifest_desc.digest,
            if base.cached { "cached" } else { "built" }
        )));
        (Some(base), root)
    };

    // The runtime base, and the whole-build cache: the same plan, source content, toolchain,
    // runtime and options give the image built before, without running anything.
    let variant: Variant = plan.runtime.variant.parse().unwrap_or(Variant::Nonroot);
    ev(Event::Phase(format!(
        "runtime {}:{} ({})",
        plan.runtime.profile,
        plan.runtime.variant,
        o.runtime_bases.release.codename()
    )));
    let runtime = o.runtime_bases.image(
        &plan.runtime.profile,
        variant,
        &plan.runtime.packages,
        false,
    )?;
    let src_filter = glob_filter(&[], &plan.source_exclude)?;
    let key = build_key(app, plan, o, &src_filter, toolchain.as_ref(), &runtime)?;
    let record = store
        .root()
        .join("engine")
        .join("builds")
        .join(format!("{key}.json"));
    if !o.no_cache
        && let Some(hit) = cached_build(store, &record)
    {
        ev(Event::Note(format!(
            "cache hit: nothing the build reads changed (build key {}), image {}",
            &key[..16],
            hit.image.manifest_desc.digest
        )));
        return Ok(Built {
            image: hit.image,
            runtime,
            toolchain,
            layers: hit.layers,
            tier: Tier::Host,
            steps: Vec::new(),
            naive_size: hit.naive_size,
            cached: true,
        });
    }

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
    for c in &plan.cache_mounts {
        let d = store.root().join("engine").join("cache").join(&c.name);
        fs::create_dir_all(&d).map_err(EngineError::io("creating a cache mount", &d))?;
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
    base_env.push(("SOURCE_DATE_EPOCH".into(), o.source_date_epoch.to_string()));
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
        let out = run(&spec, tier)?;
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
        if out.status != 0 {
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(30)..].join("\n");
            let hint = if step.network && !o.network {
                "this step downloads dependencies and --network none was given; allow the network or vendor the dependencies".to_string()
            } else if step.network {
                "if a download failed, check the network, proxy variables and --build-ca; otherwise the output above says what the tool disliked".to_string()
            } else {
                "the output above says what the tool disliked".to_string()
            };
            return Err(EngineError::StepFailed {
                step: step.name.clone(),
                argv: step.argv.join(" "),
                status: out.status,
                tail,
                hint,
            });
        }
        steps.push((step.name.clone(), secs));
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
        inputs.push(LayerInput { src: staged, dest });
        names.push(l.name.clone());
    }

    // The naive single-stage image, for the size comparison: the toolchain root with the
    // source tree (as built, dependencies included) and every output on top.
    let naive_size = match (&toolchain, o.compare_naive) {
        (Some(tc), true) => {
            ev(Event::Phase(
                "naive single-stage image (for --compare-naive)".into(),
            ));
            let naive_layers = binds
                .iter()
                .map(|(dest, src)| LayerInput {
                    src: src.clone(),
                    dest: dest.trim_matches('/').to_string(),
                })
                .collect();
            let naive = assemble_on(store, tc, naive_layers, ConfigEdits::default(), o)?;
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
    let assembled = assemble_on(store, &runtime, inputs, edits, o)?;
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
    let rec = serde_json::json!({
        "manifest": assembled.image.manifest_desc,
        "layers": layers,
        "naive_size": naive_size,
    });
    if let Some(dir) = record.parent() {
        fs::create_dir_all(dir).map_err(EngineError::io("creating the build cache", dir))?;
    }
    let bytes = serde_json::to_vec(&rec).map_err(|e| EngineError::Invalid {
        what: "build record".into(),
        detail: e.to_string(),
    })?;
    crate::roots::write_atomically(&record, &bytes)?;
    Ok(Built {
        image: assembled.image,
        runtime,
        toolchain,
        layers,
        tier,
        steps,
        naive_size,
        cached: false,
    })
}

/// `layers` and `config` on top of `base`, with the run's compression and times.
fn assemble_on(
    store: &ContentStore,
    base: &Base,
    layers: Vec<LayerInput>,
    config: ConfigEdits,
    o: &Options,
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
