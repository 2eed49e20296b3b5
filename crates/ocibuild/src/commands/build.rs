//! `ocibuild build`: zero-config builds from source (Go, Node.js, Python, Java).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use ocibuild_builders::{Distro, Lang, Options as PlanOptions, git_labels, plan as make_plan};
use ocibuild_debian::apt::Release;
use ocibuild_engine::Event;
use ocibuild_engine::roots::Bases;
use ocibuild_engine::zeroconfig::{self, PROXY_VARS};
use ocibuild_oci::image::Platform;
use ocibuild_oci::media::Compression;
use ocibuild_oci::reference::{Location, Reference};
use ocibuild_sandbox::probe::Isolation;
use ocibuild_sandbox::run::Tier;
use serde_json::json;

use super::assemble::parse_command;
use super::open_store;
use crate::cli::{
    BuildArgs, BuildNetworkArg, CompressionArg, DryRunArg, Global, IsolationArg, ToolchainArg,
};
use crate::output::{Reporter, human_size, plural};

/// Where the host's trust store usually is (Debian/Ubuntu, then Fedora/RHEL, then Alpine/SUSE).
const HOST_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
];

pub fn run(g: &Global, a: BuildArgs) -> Result<ExitCode> {
    super::summary::start(&a);
    let r = run_mode(g, &a, false);
    if let Err(e) = &r {
        super::summary::failed(&a, e);
    }
    r
}

/// A build; with `warm_only` (`ocibuild cache warm` of an app without a Dockerfile), only
/// fetch what a build will need from the `--from` caches.
pub(super) fn run_mode(g: &Global, a: &BuildArgs, warm_only: bool) -> Result<ExitCode> {
    let rep = Reporter::new(g.progress);
    // flag values first: a usage error is said before any work
    let (compression, level) = compression(a)?;
    offline_usage(a)?;
    let ctx = a.context.canonicalize().with_context(|| {
        format!(
            "the build context {} does not exist or cannot be read",
            a.context.display()
        )
    })?;
    let dockerfile = a.file.clone().or_else(|| {
        ["Dockerfile", "Containerfile"]
            .iter()
            .map(|n| ctx.join(n))
            .find(|p| p.is_file())
    });
    if !warm_only && a.dry_run.is_none() {
        // --sign's key and the provenance's start, before anything is built
        let df = dockerfile.as_deref().filter(|_| a.lang.is_none());
        super::buildsign::begin(a, &ctx, df)?;
    }
    if let Some(df) = dockerfile
        && a.lang.is_none()
    {
        return if warm_only {
            super::dockerfile::warm(g, a)
        } else {
            super::dockerfile::run(g, a, &df, &ctx)
        };
    }
    if a.platform.contains(',') {
        return super::multiplatform::zero_config(g, a, warm_only);
    }
    let platform =
        Platform::parse(&a.platform).with_context(|| format!("--platform {}", a.platform))?;
    if platform.os != "linux" || !matches!(platform.architecture.as_str(), "amd64" | "arm64") {
        bail!(
            "--platform {}: ocibuild builds linux/amd64 and linux/arm64 images",
            a.platform
        );
    }
    let distro: Distro = a
        .distro
        .parse()
        .map_err(|e| anyhow::anyhow!("--distro: {e}"))?;
    let release: Release = a.distro.parse()?;
    let popts = PlanOptions {
        lang: a
            .lang
            .as_deref()
            .map(|l| l.parse::<Lang>())
            .transpose()
            .map_err(|e| {
                let near = a.lang.as_deref().and_then(|l| {
                    ocibuild_oci::suggest::nearest(
                        l,
                        [
                            "go", "golang", "node", "nodejs", "python", "python3", "java",
                        ],
                    )
                });
                crate::output::usage(match near {
                    Some(n) => format!("--lang: {e}; did you mean `{n}`?"),
                    None => format!("--lang: {e}"),
                })
            })?,
        main: a.main.clone(),
        module: a.module.clone(),
        entrypoint: a
            .entrypoint
            .as_deref()
            .map(|s| parse_command(s, "--entrypoint"))
            .transpose()?,
        distro,
        goos: platform.os.clone(),
        goarch: platform.architecture.clone(),
        toolchain_host: a.toolchain == ToolchainArg::Host,
    };
    let mut plan = make_plan(&ctx, &popts)
        .with_context(|| format!("planning the build of {}", ctx.display()))?;
    if a.toolchain == ToolchainArg::Host && a.dry_run.is_none() {
        // Before anything is built: the host's programs exist and are new enough.
        let found = zeroconfig::probe_host_tools(&plan)
            .with_context(|| format!("checking the host's toolchain for {}", ctx.display()))?;
        plan.reasons.extend(found);
    }
    match a.dry_run {
        Some(DryRunArg::Plan) => {
            println!("{}", serde_json::to_string_pretty(&plan)?);
            return Ok(ExitCode::SUCCESS);
        }
        Some(DryRunArg::Dockerfile) => {
            print!("{}", eject(a, &ctx, &plan)?);
            return Ok(ExitCode::SUCCESS);
        }
        None => {}
    }
    if a.explain {
        for r in &plan.reasons {
            rep.event(
                &format!("why: {r}"),
                json!({"event": "explain", "reason": r}),
            );
        }
        rep.event(
            &format!(
                "plan: toolchain {} {} → runtime {}:{}; {}; layers {}",
                plan.toolchain.profile,
                plan.toolchain.version,
                plan.runtime.profile,
                plan.runtime.variant,
                plural(plan.steps.len(), "step"),
                plan.layers
                    .iter()
                    .map(|l| l.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            json!({"event": "plan", "plan": plan}),
        );
    }
    let store = open_store(g)?;
    let _lock = store.lock_shared()?;
    let cache_dir = a
        .cache_dir
        .clone()
        .unwrap_or_else(|| store.root().join("debian"));
    std::fs::create_dir_all(&cache_dir)
        .with_context(|| format!("creating the package cache {}", cache_dir.display()))?;
    let epoch = a.source_date_epoch.unwrap_or(0);
    let toolchain_bases = Bases {
        store: store.clone(),
        cache_dir: cache_dir.clone(),
        release,
        arch: host_arch().to_string(),
        offline: a.offline,
        source_date_epoch: None,
        index_max_age: (!a.refresh).then_some(std::time::Duration::from_secs(3600)),
        progress: crate::output::base_progress(g.progress, "toolchain root"),
    };
    let runtime_bases = Bases {
        arch: platform.architecture.clone(),
        progress: crate::output::base_progress(g.progress, "runtime base"),
        ..toolchain_bases.clone()
    };
    let ca_bundle = ca_bundle(a)?;
    let pass_env = pass_env(a)?;
    let isolation = isolation(a);
    let mut labels: BTreeMap<String, String> = git_labels(&ctx);
    labels.insert(
        "org.opencontainers.image.created".into(),
        ocibuild_oci::image::rfc3339(epoch),
    );
    let opts = zeroconfig::Options {
        toolchain_bases,
        runtime_bases,
        isolation,
        network: a.network == BuildNetworkArg::Default,
        ca_bundle,
        pass_env,
        source_date_epoch: epoch,
        compression,
        level,
        host_toolchain: a.toolchain == ToolchainArg::Host,
        labels,
        compare_naive: a.compare_naive,
        no_cache: a.no_cache,
        context_excludes: if warm_only {
            Vec::new()
        } else {
            outputs_in_context(a, &ctx, &rep)
        },
    };
    // a step's output only with -v (a build's own lines say what it does)
    let rep = rep.show_step_output(g.verbose > 0);
    let ev = |e: Event| rep.engine(e);
    let (from_specs, to_specs, inline) = cache_specs(a)?;
    let mut opts = opts;
    if inline {
        // the pushed image points to the records pushed beside it
        opts.labels.insert(
            ocibuild_cache::INLINE_LABEL.to_string(),
            ocibuild_cache::INLINE_TAG.to_string(),
        );
    }
    let cache_reg = cache_registry(g, &from_specs, &to_specs)?;
    let (from, to) = open_caches(&from_specs, &to_specs, cache_reg.as_ref())?;
    let shared = zeroconfig::Shared {
        from,
        to,
        explain: a.explain_cache,
    };
    if warm_only {
        let w = zeroconfig::warm(&ctx, &plan, &opts, &shared, &ev)
            .with_context(|| format!("warming the cache for {}", ctx.display()))?;
        rep.event(
            &format!(
                "warm: {}",
                if w.build_hit {
                    "the whole build is in the store now: a build will run nothing".to_string()
                } else if w.mounts.is_empty() {
                    "the build is not in the cache and no cache mount was filled".to_string()
                } else {
                    format!("cache mounts filled: {}", w.mounts.join(", "))
                }
            ),
            json!({"event": "warm", "build_hit": w.build_hit, "mounts": w.mounts}),
        );
        return Ok(ExitCode::SUCCESS);
    }
    let t0 = std::time::Instant::now();
    let built = zeroconfig::build(&ctx, &plan, &opts, &shared, &ev)
        .with_context(|| format!("building {} ({} app)", ctx.display(), plan.lang))?;
    let digest = built.image.manifest_desc.digest.to_string();
    if built.cached {
        rep.event(
            "nothing changed: the image is the one built before (--no-cache runs the steps again)",
            json!({"event": "cache", "hit": true}),
        );
    }
    let size: u64 = built.image.manifest.layers.iter().map(|l| l.size).sum();
    rep.event(
        &format!(
            "runtime base {}:{} ({})",
            plan.runtime.profile, plan.runtime.variant, built.runtime
        ),
        json!({"event": "runtime", "profile": plan.runtime.profile, "variant": plan.runtime.variant, "digest": built.runtime}),
    );
    rep.image_done(&built.record, t0.elapsed().as_secs_f64());

    if let Some(naive) = built.naive_size {
        let pct = 100.0 * (1.0 - size as f64 / naive.max(1) as f64);
        rep.event(
            &format!(
                "size: {} compressed vs {} for the naive single-stage image: {pct:.1}% smaller",
                human_size(size),
                human_size(naive)
            ),
            json!({"event": "size", "compressed": size, "naive": naive, "reduction_percent": pct}),
        );
    }

    write_outputs(g, a, &rep, &store, &built.image, &built.record)?;
    if let Some(f) = &a.iidfile {
        super::write_file_atomically(f, digest.as_bytes())?;
    }
    // the zero-config frontend's own keys (the rest is the record's, the same for both)
    let extra = BTreeMap::from([
        ("ocibuild.lang".to_string(), json!(plan.lang.to_string())),
        ("ocibuild.toolchain".to_string(), json!(built.toolchain)),
        ("ocibuild.runtime".to_string(), json!(built.runtime)),
        ("ocibuild.naive_size".to_string(), json!(built.naive_size)),
        (
            "ocibuild.sandbox".to_string(),
            json!(format!("{:?}", built.tier).to_lowercase()),
        ),
    ]);
    super::record::finish(a, &store, &built.record, extra)?;
    if !a.index_part {
        println!("{digest}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `--dry-run=dockerfile`: the plan as a Dockerfile on the same native bases, with the labels
/// a zero-config build adds.
fn eject(a: &BuildArgs, ctx: &Path, plan: &ocibuild_builders::Plan) -> Result<String> {
    let epoch = a.source_date_epoch.unwrap_or(0);
    let mut labels: BTreeMap<String, String> = git_labels(ctx);
    labels.insert(
        "org.opencontainers.image.created".into(),
        ocibuild_oci::image::rfc3339(epoch),
    );
    let o = ocibuild_engine::eject::EjectOptions {
        app: a.context.display().to_string(),
        labels,
        source_date_epoch: epoch,
        dir: Some(ctx.to_path_buf()),
    };
    let text = ocibuild_engine::eject::dockerfile(plan, &o)?;
    // another platform's image: the build stage runs on the build platform, as the build does
    // when the app's layers are cross-compiled or architecture-independent
    let foreign = Platform::parse(&a.platform).is_ok_and(|p| p.architecture != host_arch());
    Ok(
        if foreign && (plan.lang == Lang::Go || plan.arch_specific.is_empty()) {
            ocibuild_engine::lowered::on_build_platform(&text)
        } else {
            text
        },
    )
}

/// What the build writes that lies inside its context (`--output oci:DIR`/`oci-archive:FILE`/
/// `docker-archive:FILE`, `--iidfile`, `--metadata-file`), as paths relative to the context:
/// they are left out of the context, so the next identical build does not see them as new
/// files and runs nothing. Said once on stderr.
pub(super) fn outputs_in_context(a: &BuildArgs, ctx: &Path, rep: &Reporter) -> Vec<String> {
    let (out, said) = output_paths_in_context(a, ctx);
    if !said.is_empty() {
        rep.event(
            &format!(
                "left out of the build context because this build writes them: {}",
                said.join(", ")
            ),
            json!({"event": "context-exclude", "paths": out}),
        );
    }
    out
}

/// [`outputs_in_context`] without saying it: the paths, and each with the flag that names it.
pub(super) fn output_paths_in_context(a: &BuildArgs, ctx: &Path) -> (Vec<String>, Vec<String>) {
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for o in &a.outputs {
        match Location::parse(o) {
            Ok(Location::Layout { dir, .. }) => files.push((format!("--output {o}"), dir)),
            Ok(Location::OciArchive { file, .. } | Location::DockerArchive { file, .. }) => {
                files.push((format!("--output {o}"), file))
            }
            _ => {}
        }
    }
    if let Some(f) = &a.iidfile {
        files.push(("--iidfile".into(), f.clone()));
    }
    if let Some(f) = &a.metadata_file {
        files.push(("--metadata-file".into(), f.clone()));
    }
    if let Some(f) = &a.summary {
        files.push(("--summary".into(), f.clone()));
    }
    let mut out: Vec<String> = Vec::new();
    let mut said: Vec<String> = Vec::new();
    for (flag, p) in files {
        let Some(abs) = absolute(&p) else { continue };
        let Ok(rel) = abs.strip_prefix(ctx) else {
            continue;
        };
        let rel = rel.to_string_lossy().replace('\\', "/");
        if rel.is_empty() || out.contains(&rel) {
            continue;
        }
        said.push(format!("{rel} ({flag})"));
        out.push(rel);
    }
    (out, said)
}

/// `p` made absolute with symlinks resolved, also when it does not exist yet (its nearest
/// existing ancestor is resolved).
fn absolute(p: &Path) -> Option<PathBuf> {
    let p = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(p)
    };
    let mut rest: Vec<std::ffi::OsString> = Vec::new();
    let mut cur = p.as_path();
    loop {
        if let Ok(c) = cur.canonicalize() {
            let mut out = c;
            for r in rest.iter().rev() {
                if r == ".." {
                    out.pop();
                } else if r != "." {
                    out.push(r);
                }
            }
            return Some(out);
        }
        rest.push(
            cur.file_name()
                .map_or_else(|| "..".into(), |n| n.to_os_string()),
        );
        cur = cur.parent()?;
    }
}

/// A flag value with anything secret-looking (keys, SAS signatures) cut out, for messages.
pub(super) fn redact(s: &str) -> String {
    s.split(',')
        .map(|kv| match kv.split_once('=') {
            Some((k, _))
                if k.contains("key")
                    || k.contains("sas")
                    || k.contains("secret")
                    || k.contains("token") =>
            {
                format!("{k}=<redacted>")
            }
            _ if kv.contains("sig=") => "<redacted>".to_string(),
            _ => kv.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Caches opened from `--cache-from`.
pub(super) type CacheFrom<'r> = Vec<Box<dyn ocibuild_cache::CacheBackend + 'r>>;
/// Caches opened from `--cache-to`, with their mode and `ignore-error`.
pub(super) type CacheTo<'r> = Vec<(
    Box<dyn ocibuild_cache::CacheBackend + 'r>,
    ocibuild_cache::Mode,
    bool,
)>;

/// `--cache-from` and `--cache-to`, parsed (secrets redacted from errors), and whether an
/// inline cache is written (`--cache-to type=inline`, or docker's `--build-arg
/// BUILDKIT_INLINE_CACHE=1`, with `--push`): then the `--cache-to` list holds a registry cache
/// beside every pushed image ([`ocibuild_cache::CacheSpec::inline_for`]), and the image needs
/// the label [`ocibuild_cache::INLINE_LABEL`] that points to it.
pub(super) fn cache_specs(
    a: &BuildArgs,
) -> Result<(
    Vec<ocibuild_cache::CacheSpec>,
    Vec<ocibuild_cache::CacheSpec>,
    bool,
)> {
    let from = a
        .cache_from
        .iter()
        .map(|c| {
            ocibuild_cache::CacheSpec::parse(c, false)
                .with_context(|| format!("--cache-from {}", redact(c)))
        })
        .collect::<Result<Vec<_>>>()?;
    let from = if a.offline {
        // as docker's `--pull=never` for bases: a cache read over the network is left out
        // (said once); a local directory cache is still read
        let (local, remote): (Vec<_>, Vec<_>) = from
            .into_iter()
            .zip(&a.cache_from)
            .partition(|(s, _)| matches!(s.backend, ocibuild_cache::Backend::Local { .. }));
        for (_, c) in remote {
            eprintln!(
                "warning: --cache-from {} is ignored: the build is --offline and that cache is read over the network; the store's own step cache (and type=local caches) are used",
                redact(c)
            );
        }
        local.into_iter().map(|(s, _)| s).collect()
    } else {
        from
    };
    let mut to = Vec::new();
    let mut inline = None;
    for c in &a.cache_to {
        let s = ocibuild_cache::CacheSpec::parse(c, true)
            .with_context(|| format!("--cache-to {}", redact(c)))?;
        if s.backend == ocibuild_cache::Backend::Inline {
            inline = Some(s);
        } else {
            to.push(s);
        }
    }
    let inline_arg = a.build_args.iter().any(|b| {
        b.split_once('=')
            .is_some_and(|(k, v)| k == "BUILDKIT_INLINE_CACHE" && matches!(v.trim(), "1" | "true"))
    });
    if inline.is_none() && inline_arg {
        inline = Some(ocibuild_cache::CacheSpec::parse("type=inline", true)?);
    }
    let Some(inline) = inline else {
        return Ok((from, to, false));
    };
    if !a.push {
        eprintln!(
            "warning: an inline cache (--cache-to type=inline or --build-arg BUILDKIT_INLINE_CACHE=1) is written beside a pushed image; without --push nothing is exported"
        );
        return Ok((from, to, false));
    }
    for t in &a.tags {
        let r = Reference::parse(t).with_context(|| format!("-t {t}"))?;
        let spec = inline.inline_for(&r);
        if !to.contains(&spec) {
            to.push(spec);
        }
    }
    Ok((from, to, true))
}

/// `--offline` with a flag that needs the network is a usage error, said before any work:
/// pushing, a registry output, a cache exported over the network, `--pull always`.
fn offline_usage(a: &BuildArgs) -> Result<()> {
    if !a.offline {
        return Ok(());
    }
    let mut bad: Vec<String> = Vec::new();
    if a.push {
        bad.push("--push".into());
    }
    for o in &a.outputs {
        if matches!(Location::parse(o), Ok(Location::Registry(_))) {
            bad.push(format!("--output {o}"));
        }
    }
    for c in &a.cache_to {
        if let Ok(s) = ocibuild_cache::CacheSpec::parse(c, true)
            && !matches!(s.backend, ocibuild_cache::Backend::Local { .. })
        {
            bad.push(format!("--cache-to {}", redact(c)));
        }
    }
    if a.pull == "always" {
        bad.push("--pull always".into());
    }
    if bad.is_empty() {
        return Ok(());
    }
    Err(crate::output::usage(format!(
        "--offline reaches no network, and {} need{} it; write the image to a local output (--output oci:DIR:TAG, oci-archive:FILE) and push it later with `ocibuild push`, export the cache to type=local,dest=DIR, and let --offline use the bases in the store (as --pull never)",
        bad.join(", "),
        if bad.len() == 1 { "s" } else { "" }
    )))
}

/// The registry client `type=registry` caches use (the build's auth and TLS settings).
pub(super) fn cache_registry(
    g: &Global,
    from: &[ocibuild_cache::CacheSpec],
    to: &[ocibuild_cache::CacheSpec],
) -> Result<Option<ocibuild_registry::client::Registry>> {
    if from
        .iter()
        .chain(to)
        .any(|s| matches!(s.backend, ocibuild_cache::Backend::Registry { .. }))
    {
        Ok(Some(super::registry::registry(g)?))
    } else {
        Ok(None)
    }
}

/// Open the caches the specs name.
pub(super) fn open_caches<'r>(
    from: &[ocibuild_cache::CacheSpec],
    to: &[ocibuild_cache::CacheSpec],
    reg: Option<&'r ocibuild_registry::client::Registry>,
) -> Result<(CacheFrom<'r>, CacheTo<'r>)> {
    let mut cache_from = Vec::new();
    for s in from {
        cache_from.push(ocibuild_cache::open(s, reg).with_context(|| format!("--cache-from {s}"))?);
    }
    let mut cache_to = Vec::new();
    for s in to {
        cache_to.push((
            ocibuild_cache::open(s, reg).with_context(|| format!("--cache-to {s}"))?,
            s.mode,
            s.ignore_error,
        ));
    }
    Ok((cache_from, cache_to))
}

/// `--build-ca`: the CA bundle bound into build steps.
pub(super) fn ca_bundle(a: &BuildArgs) -> Result<Option<PathBuf>> {
    Ok(match a.build_ca.as_str() {
        "none" => None,
        "host" => HOST_CA_BUNDLES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file()),
        f => {
            let p = Path::new(f)
                .canonicalize()
                .with_context(|| format!("--build-ca {f}: cannot read it"))?;
            let text = std::fs::read_to_string(&p)
                .with_context(|| format!("--build-ca {f}: cannot read it"))?;
            if !text.contains("-----BEGIN CERTIFICATE-----") {
                bail!("--build-ca {f}: not a PEM bundle (no BEGIN CERTIFICATE line)");
            }
            Some(p)
        }
    })
}

/// The host's proxy variables (unless `--no-proxy-env`) and `--build-env`.
pub(super) fn pass_env(a: &BuildArgs) -> Result<Vec<(String, String)>> {
    let mut pass_env: Vec<(String, String)> = Vec::new();
    if !a.no_proxy_env {
        for v in PROXY_VARS {
            if let Ok(val) = std::env::var(v) {
                pass_env.push(((*v).to_string(), val));
            }
        }
    }
    for e in &a.build_env {
        let (k, v) = e
            .split_once('=')
            .with_context(|| format!("--build-env {e}: expected KEY=VALUE"))?;
        pass_env.push((k.to_string(), v.to_string()));
    }
    Ok(pass_env)
}

pub(super) fn isolation(a: &BuildArgs) -> Isolation {
    match a.isolation {
        IsolationArg::Auto => Isolation::Auto {
            allow_host: a.allow_host,
        },
        IsolationArg::Userns => Isolation::Force(Tier::Userns),
        IsolationArg::Chroot => Isolation::Force(Tier::Chroot),
        IsolationArg::Host => Isolation::Force(Tier::Host),
    }
}

/// `--compression` and `--compression-level`, checked before anything is built.
pub(super) fn compression(a: &BuildArgs) -> Result<(Compression, Option<u32>)> {
    let c = match a.compression {
        CompressionArg::Gzip => Compression::Gzip,
        CompressionArg::Zstd => Compression::Zstd,
        CompressionArg::None => Compression::None,
    };
    if let Some(l) = a.compression_level {
        let range = match c {
            Compression::Gzip => 0..=9,
            Compression::Zstd => 1..=22,
            Compression::None => {
                return Err(crate::output::usage(format!(
                    "--compression-level {l}: --compression none has no level; drop one of the two"
                )));
            }
        };
        if !range.contains(&l) {
            return Err(crate::output::usage(format!(
                "--compression-level {l}: {} levels are {}..={}",
                c.name(),
                range.start(),
                range.end()
            )));
        }
    }
    Ok((c, a.compression_level))
}

/// Write the built image to every `--output`, and push it to every `-t` with `--push`.
pub(super) fn write_outputs(
    g: &Global,
    a: &BuildArgs,
    rep: &Reporter,
    store: &ocibuild_oci::store::ContentStore,
    image: &ocibuild_oci::image::Image,
    record: &ocibuild_record::BuildRecord,
) -> Result<()> {
    let digest = image.manifest_desc.digest.to_string();
    // Outputs.
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
    let src = ocibuild_oci::layout::StoreSource::new(
        store.clone(),
        image.manifest_desc.clone(),
        format!("the built image {digest}"),
    );
    if a.check || a.policy.is_some() {
        super::policy::gate(&src, image, a.policy.as_deref(), rep)?;
    }
    let sboms = super::supply::before_outputs(g, a, &src, rep, Some(record), None)?;
    let signing = super::buildsign::prepare(a, record, &sboms, rep)?;
    let reg = if dests.iter().any(|d| matches!(d, Location::Registry(_))) {
        Some(super::registry::registry(g)?)
    } else {
        None
    };
    for d in &dests {
        match &reg {
            Some(reg) => {
                super::registry::export(g, reg, rep, &src, image, d)?;
            }
            None => ocibuild_oci::layout::write_location(d, &src, image)
                .with_context(|| format!("writing {d}"))?,
        }
        rep.event(
            &format!("wrote {d}"),
            json!({"event": "output", "location": d.to_string()}),
        );
        super::supply::attach(
            reg.as_ref(),
            d,
            image,
            &sboms,
            a.sbom_attach == "cosign",
            rep,
        )?;
        if let Some(s) = &signing {
            s.apply(reg.as_ref(), d, &image.manifest_desc, rep)?;
        }
    }
    if dests.is_empty() && !a.index_part {
        rep.event(
            "no --output or --push: the image is only in the content store; add --output oci:DIR:TAG or -t NAME --push",
            json!({"event": "warning", "message": "no output"}),
        );
    }
    Ok(())
}

pub(super) fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "arm64",
        _ => "amd64",
    }
}
