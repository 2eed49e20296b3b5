//! `ocibuild build -f Dockerfile CONTEXT`: the Dockerfile frontend.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use ocibuild_engine::df::{self, ImageResolver, NamedContext, SecretSource};
use ocibuild_engine::{EngineError, Event};
use ocibuild_oci::image::{Image, Platform, load_image};
use ocibuild_oci::layout::import_into_store_with;
use ocibuild_oci::reference::Reference;
use ocibuild_oci::store::ContentStore;
use ocibuild_registry::client::Registry;
use ocibuild_registry::copy::RegistrySource;
use serde_json::json;

use super::build::{
    ca_bundle, cache_registry, cache_specs, compression, isolation, open_caches,
    outputs_in_context, pass_env, write_outputs,
};
use super::open_store;
use crate::cli::{BuildArgs, BuildNetworkArg, Global};
use crate::output::Reporter;

/// Pulls registry bases through the registry client, remembering what a reference resolved to
/// (`ROOT/engine/pulled/`) for `--pull missing|never`.
struct Puller<'a> {
    reg: std::sync::OnceLock<std::result::Result<Registry, String>>,
    g: &'a Global,
    store: ContentStore,
    policy: String,
    /// Byte progress of the base's layers (bars, or `bytes` events with `--progress json`).
    rep: &'a Reporter,
}

impl Puller<'_> {
    fn pin_path(&self, reference: &str, platform: &Platform) -> PathBuf {
        use sha2::Digest as _;
        let h = hex::encode(sha2::Sha256::digest(
            format!("{reference}\n{}/{}", platform.os, platform.architecture).as_bytes(),
        ));
        self.store
            .root()
            .join("engine")
            .join("pulled")
            .join(format!("{h}.json"))
    }

    fn pinned(&self, path: &Path) -> Option<Image> {
        let d: ocibuild_oci::image::Descriptor =
            serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
        let src = ocibuild_oci::layout::StoreSource::new(self.store.clone(), d, "a pulled base");
        let img = load_image(&src, None).ok()?;
        img.manifest
            .layers
            .iter()
            .all(|l| self.store.has(&l.digest))
            .then_some(img)
    }

    /// A reference by digest (`NAME@sha256:…`) whose manifest or index, and every layer, is in
    /// the store already: no tag to resolve, so nothing to pull (what `--offline` builds on).
    fn by_digest(&self, reference: &str, platform: &Platform) -> Option<Image> {
        let d = Reference::parse(reference).ok()?.digest?;
        if !self.store.has(&d) {
            return None;
        }
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut self.store.open_blob(&d).ok()?, &mut bytes).ok()?;
        let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        let media_type = match v.get("mediaType").and_then(|m| m.as_str()) {
            Some(m) => m.to_string(),
            None if v.get("manifests").is_some() => ocibuild_oci::media::OCI_INDEX.to_string(),
            None => ocibuild_oci::media::OCI_MANIFEST.to_string(),
        };
        let desc = ocibuild_oci::image::Descriptor::new(&media_type, d, bytes.len() as u64);
        let src =
            ocibuild_oci::layout::StoreSource::new(self.store.clone(), desc, "a base in the store");
        let img = load_image(&src, Some(platform)).ok()?;
        img.manifest
            .layers
            .iter()
            .all(|l| self.store.has(&l.digest))
            .then_some(img)
    }

    fn pull(&self, reference: &str, platform: &Platform) -> anyhow::Result<Image> {
        let r = Reference::parse(reference).with_context(|| format!("`{reference}`"))?;
        let reg = self
            .reg
            .get_or_init(|| super::registry::registry(self.g).map_err(|e| format!("{e:#}")))
            .as_ref()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let src = RegistrySource::open(reg, &r).with_context(|| format!("opening docker://{r}"))?;
        let img = load_image(&src, Some(platform))?;
        // `--jobs` blobs at a time, each streamed straight into the store and verified on the
        // way (digest, size, and diff_id on a second thread): nothing is read twice.
        let bf = |d: &ocibuild_oci::Digest, n: u64, t: u64| self.rep.bytes(d, n, t);
        import_into_store_with(&src, &img, &self.store, self.g.jobs, Some(&bf))?;
        Ok(img)
    }
}

impl ImageResolver for Puller<'_> {
    fn in_store(&self, reference: &str, platform: &Platform) -> bool {
        self.pinned(&self.pin_path(reference, platform)).is_some()
            || self.by_digest(reference, platform).is_some()
    }

    fn resolve(&self, reference: &str, platform: &Platform) -> Result<Image, EngineError> {
        let pin = self.pin_path(reference, platform);
        if self.policy != "always"
            && let Some(img) = self
                .pinned(&pin)
                .or_else(|| self.by_digest(reference, platform))
        {
            return Ok(img);
        }
        if self.policy == "never" {
            return Err(EngineError::Invalid {
                what: format!("image {reference}"),
                detail: "--pull never (or --offline), and it was never pulled into this store; pull it once (--pull missing) or use a local oci: layout".into(),
            });
        }
        let img = self
            .pull(reference, platform)
            .map_err(|e| EngineError::Invalid {
                what: format!("pulling {reference}"),
                detail: format!("{e:#}"),
            })?;
        if let Some(d) = pin.parent() {
            let _ = std::fs::create_dir_all(d);
        }
        if let Ok(bytes) = serde_json::to_vec(&img.manifest_desc) {
            let _ = ocibuild_engine::roots::write_atomically(&pin, &bytes);
        }
        Ok(img)
    }
}

fn parse_secret(s: &str) -> Result<(String, SecretSource)> {
    let mut id = None;
    let mut src = None;
    let mut env = None;
    for part in s.split(',') {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        match k {
            "id" => id = Some(v.to_string()),
            "src" | "source" => src = Some(PathBuf::from(v)),
            "env" => env = Some(v.to_string()),
            "type" if v == "file" || v == "env" => {}
            _ => bail!("--secret: unknown field `{k}` (expected id=ID,src=FILE or id=ID,env=VAR)"),
        }
    }
    let id = match id {
        Some(i) => i,
        None => match (&src, &env) {
            (Some(p), _) => p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .context("--secret: give id=ID")?,
            (_, Some(e)) => e.clone(),
            _ => bail!("--secret: give id=ID with src=FILE or env=VAR"),
        },
    };
    let source = match (src, env) {
        (Some(p), None) => {
            if !p.is_file() {
                bail!(
                    "--secret id={id}: the file {} does not exist or is not a file",
                    p.display()
                );
            }
            SecretSource::File(p.canonicalize().unwrap_or(p))
        }
        (None, Some(e)) => SecretSource::Env(e),
        (None, None) => SecretSource::Env(id.clone()),
        (Some(_), Some(_)) => bail!("--secret id={id}: give src= or env=, not both"),
    };
    Ok((id, source))
}

fn parse_context(s: &str) -> Result<(String, NamedContext)> {
    let (name, v) = s
        .split_once('=')
        .with_context(|| format!("--build-context {s}: expected NAME=SOURCE"))?;
    let c = if let Some(rest) = v.strip_prefix("oci-layout://") {
        let (dir, tag) = match rest.rsplit_once(':') {
            Some((d, t)) if !t.contains('/') => (d, Some(t)),
            _ => (rest, None),
        };
        let dir = Path::new(dir)
            .canonicalize()
            .with_context(|| format!("--build-context {name}: {dir} does not exist"))?;
        NamedContext::Image(match tag {
            Some(t) => format!("oci:{}:{t}", dir.display()),
            None => format!("oci:{}", dir.display()),
        })
    } else if v.starts_with("docker-image://")
        || v.starts_with("oci:")
        || v.starts_with("oci-archive:")
        || v.starts_with("docker-archive:")
    {
        NamedContext::Image(v.to_string())
    } else if v.starts_with("http://") || v.starts_with("https://") {
        bail!(
            "--build-context {name}: URL contexts are not supported yet; download into a directory and give its path"
        )
    } else {
        let p = v.strip_prefix("dir:").unwrap_or(v);
        let p = Path::new(p)
            .canonicalize()
            .with_context(|| format!("--build-context {name}: {p} does not exist"))?;
        if !p.is_dir() {
            bail!("--build-context {name}: {} is not a directory", p.display());
        }
        NamedContext::Dir(p)
    };
    Ok((name.to_string(), c))
}

/// `ocibuild cache warm`: a Dockerfile build that only fetches from `--from` caches.
pub fn warm(g: &Global, a: &BuildArgs) -> Result<ExitCode> {
    if a.cache_from.is_empty() {
        bail!("cache warm needs --from type=azblob,…|type=registry,…|type=local,src=DIR");
    }
    let ctx = a.context.canonicalize().with_context(|| {
        format!(
            "the build context {} does not exist or cannot be read",
            a.context.display()
        )
    })?;
    let Some(df) = a.file.clone().or_else(|| {
        ["Dockerfile", "Containerfile"]
            .iter()
            .map(|n| ctx.join(n))
            .find(|p| p.is_file())
    }) else {
        // an app without a Dockerfile: its zero-config build record and cache mounts
        return super::build::run_mode(g, a, true);
    };
    build_impl(g, a, &df, &ctx, true)
}

pub fn run(g: &Global, a: &BuildArgs, dockerfile: &Path, ctx: &Path) -> Result<ExitCode> {
    build_impl(g, a, dockerfile, ctx, false)
}

fn build_impl(
    g: &Global,
    a: &BuildArgs,
    dockerfile: &Path,
    ctx: &Path,
    warm_only: bool,
) -> Result<ExitCode> {
    let rep = Reporter::new(g.progress);
    let text = std::fs::read_to_string(dockerfile)
        .with_context(|| format!("reading the Dockerfile {}", dockerfile.display()))?;
    let platforms = super::multiplatform::parse_platforms(&a.platform)?;
    super::multiplatform::check_args(a, &platforms)?;
    let platform = platforms[0].clone();
    if !matches!(a.pull.as_str(), "always" | "missing" | "never") {
        bail!("--pull {}: use always, missing or never", a.pull);
    }
    let mut build_args = BTreeMap::new();
    for b in &a.build_args {
        match b.split_once('=') {
            Some((k, v)) => build_args.insert(k.to_string(), v.to_string()),
            None => match std::env::var(b) {
                Ok(v) => build_args.insert(b.clone(), v),
                Err(_) => continue,
            },
        };
    }
    let secrets = a
        .secrets
        .iter()
        .map(|s| parse_secret(s))
        .collect::<Result<BTreeMap<_, _>>>()?;
    let contexts = a
        .build_contexts
        .iter()
        .map(|s| parse_context(s))
        .collect::<Result<BTreeMap<_, _>>>()?;
    // a RUN's output goes to stderr when it ends (as docker build --progress plain shows it),
    // except in json mode, where only events are written
    let show = !matches!(rep.mode(), crate::cli::Progress::Json) || g.verbose > 0;
    let rep = rep.show_step_output(show);
    let store = open_store(g)?;
    let _lock = store.lock_shared()?;
    let epoch = a.source_date_epoch.unwrap_or(0);
    let puller = Puller {
        reg: std::sync::OnceLock::new(),
        g,
        store: store.clone(),
        // --offline pulls nothing: the bases this store pulled before (as --pull never)
        policy: if a.offline {
            "never".into()
        } else {
            a.pull.clone()
        },
        rep: &rep,
    };
    let (from_specs, to_specs, inline) = cache_specs(a)?;
    let mut labels = BTreeMap::new();
    if inline {
        // the pushed image points to the step records pushed beside it
        labels.insert(
            ocibuild_cache::INLINE_LABEL.to_string(),
            ocibuild_cache::INLINE_TAG.to_string(),
        );
    }
    let cache_reg = cache_registry(g, &from_specs, &to_specs)?;
    let (cache_from, cache_to) = open_caches(&from_specs, &to_specs, cache_reg.as_ref())?;
    let (compression, level) = compression(a)?;
    let native = native_bases(g, a, &store, &platform)?;
    let opts = df::Options {
        store: store.clone(),
        context: ctx.to_path_buf(),
        context_excludes: if warm_only {
            Vec::new()
        } else {
            outputs_in_context(a, ctx, &rep)
        },
        dockerfile: dockerfile.to_path_buf(),
        target: a.target.clone(),
        build_args,
        platform,
        secrets,
        contexts,
        resolver: &puller,
        native: Some(native),
        isolation: isolation(a),
        network: a.network == BuildNetworkArg::Default,
        ca_bundle: ca_bundle(a)?,
        pass_env: pass_env(a)?,
        source_date_epoch: epoch,
        compression,
        level,
        no_cache: a.no_cache,
        labels,
        cache_from,
        cache_to,
        explain_cache: a.explain_cache,
        warm_only,
        offline: a.offline.then(ocibuild_engine::offline::Offline::default),
    };
    let ev = |e: Event| rep.engine(e);
    let t0 = std::time::Instant::now();
    if platforms.len() > 1 {
        return build_platforms(g, a, &rep, &store, &text, opts, &platforms, ctx, dockerfile);
    }
    let built = df::build(&text, &opts, &ev)
        .with_context(|| format!("building {} with {}", ctx.display(), dockerfile.display()))?;
    if warm_only {
        rep.event(
            &format!(
                "warmed: {} steps fetched or already local, {} not in the cache (they will run), in {:.2} s",
                built.cached.len(),
                built.stopped.len(),
                t0.elapsed().as_secs_f64()
            ),
            json!({"event": "warm", "cached": built.cached, "missing": built.stopped}),
        );
        return Ok(ExitCode::SUCCESS);
    }
    let digest = built.image.manifest_desc.digest.to_string();
    rep.image_done(&built.record, t0.elapsed().as_secs_f64());
    write_outputs(g, a, &rep, &store, &built.image, &built.record)?;
    if let Some(f) = &a.iidfile {
        super::write_file_atomically(f, digest.as_bytes())?;
    }
    // the Dockerfile frontend's own key (the rest is the record's, the same for both)
    let extra = BTreeMap::from([("ocibuild.stages".to_string(), json!(built.stages))]);
    super::record::finish(a, &store, &built.record, extra)?;
    println!("{digest}");
    Ok(ExitCode::SUCCESS)
}

/// `--platform A,B,…`: the Dockerfile built once per platform (stages on `FROM
/// --platform=$BUILDPLATFORM` run natively; the step cache shares what does not depend on the
/// target), then one index of the images.
#[allow(clippy::too_many_arguments)]
fn build_platforms(
    g: &Global,
    a: &BuildArgs,
    rep: &Reporter,
    store: &ContentStore,
    text: &str,
    mut opts: df::Options<'_>,
    platforms: &[Platform],
    ctx: &Path,
    dockerfile: &Path,
) -> Result<ExitCode> {
    use super::multiplatform as mp;
    let ev = |e: Event| rep.engine(e);
    let t0 = std::time::Instant::now();
    let mut images = Vec::new();
    let mut records = Vec::new();
    let mut stages = Vec::new();
    let (mut cached, mut missing) = (Vec::new(), Vec::new());
    for p in platforms {
        opts.platform = p.clone();
        opts.native = Some(native_bases(g, a, store, p)?);
        rep.event(
            &format!("platform {p}"),
            json!({"event": "platform", "platform": p.to_string()}),
        );
        let built = df::build(text, &opts, &ev).with_context(|| {
            format!(
                "building {} with {} for {p}",
                ctx.display(),
                dockerfile.display()
            )
        })?;
        if stages.is_empty() {
            stages = built.stages;
        }
        cached.extend(built.cached);
        missing.extend(built.stopped);
        records.push(built.record);
        images.push((p.clone(), built.image));
    }
    if opts.warm_only {
        rep.event(
            &format!(
                "warmed {}: {} steps fetched or already local, {} not in the cache (they will run), in {:.2} s",
                mp::platform_list(platforms),
                cached.len(),
                missing.len(),
                t0.elapsed().as_secs_f64()
            ),
            json!({"event": "warm", "cached": cached, "missing": missing}),
        );
        return Ok(ExitCode::SUCCESS);
    }
    let index = mp::put_index(store, &images)?;
    let record = mp::merge_records(records, &index).context("no platform was built")?;
    let digest = index.digest.to_string();
    rep.image_done(&record, t0.elapsed().as_secs_f64());
    mp::write_index_outputs(g, a, rep, store, &index, &images, &record)?;
    if let Some(f) = &a.iidfile {
        super::write_file_atomically(f, digest.as_bytes())?;
    }
    let extra = BTreeMap::from([
        ("ocibuild.stages".to_string(), json!(stages)),
        (
            "ocibuild.platform.images".to_string(),
            json!(mp::platform_digests(&images)),
        ),
    ]);
    super::record::finish(a, store, &record, extra)?;
    println!("{digest}");
    Ok(ExitCode::SUCCESS)
}

/// Where `FROM ocibuild:PROFILE` bases come from: the package cache, `--distro`, the target
/// platform's architecture and the `--base-lock` files.
fn native_bases(
    g: &Global,
    a: &BuildArgs,
    store: &ContentStore,
    platform: &Platform,
) -> Result<df::native::NativeBases> {
    let release: ocibuild_debian::apt::Release = a
        .distro
        .parse()
        .map_err(|e| crate::output::usage(format!("--distro {}: {e}", a.distro)))?;
    let cache_dir = a
        .cache_dir
        .clone()
        .unwrap_or_else(|| store.root().join("debian"));
    std::fs::create_dir_all(&cache_dir)
        .with_context(|| format!("creating the package cache {}", cache_dir.display()))?;
    let locks = a
        .base_locks
        .iter()
        .map(|p| {
            ocibuild_debian::base::Lockfile::load(p)
                .map(|l| (p.clone(), l))
                .with_context(|| format!("--base-lock {}", p.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(df::native::NativeBases {
        bases: ocibuild_engine::roots::Bases {
            store: store.clone(),
            cache_dir,
            release,
            arch: platform.architecture.clone(),
            offline: a.offline,
            source_date_epoch: None,
            index_max_age: (!a.refresh).then_some(std::time::Duration::from_secs(3600)),
            progress: crate::output::base_progress(g.progress, "native base"),
        },
        locks,
        host: None,
    })
}
