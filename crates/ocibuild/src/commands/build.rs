//! `ocibuild build`: zero-config builds from source (Go, Node.js, Python, Java).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use ocibuild_builders::{Distro, Lang, Options as PlanOptions};
use ocibuild_debian::apt::Release;
use ocibuild_engine::zeroconfig::PROXY_VARS;
use ocibuild_engine::{BuildOptions, BuildOutcome, DebianSource, Event, Frontend, FrontendDetail};
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
use crate::output::Reporter;

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

/// A build; with `warm_only` (`ocibuild cache warm`), only fetch what a build will need from
/// the `--from` caches. Flags become one [`BuildOptions`] for the engine's one entry point, and
/// its result is written to the outputs and rendered.
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
    let dockerfile = a
        .file
        .clone()
        .or_else(|| {
            ["Dockerfile", "Containerfile"]
                .iter()
                .map(|n| ctx.join(n))
                .find(|p| p.is_file())
        })
        .filter(|_| a.lang.is_none());
    if !warm_only && a.dry_run.is_none() {
        // --sign's key and the provenance's start, before anything is built
        super::buildsign::begin(a, &ctx, dockerfile.as_deref())?;
    }
    let platforms = super::multiplatform::parse_platforms(&a.platform)?;
    super::multiplatform::check_args(a, &platforms)?;
    // the frontend's own flags
    let frontend = match &dockerfile {
        Some(df) => super::dockerfile::Flags::parse(a, warm_only, df)?,
        None => match zero_config(a, &ctx, &platforms)? {
            Some(z) => z,
            // --dry-run: printed
            None => return Ok(ExitCode::SUCCESS),
        },
    };
    // a RUN's output goes to stderr when it ends (as docker build --progress plain shows it),
    // except in json mode, where only events are written; a zero-config step's only with -v
    // (a build's own lines say what it does)
    let show = match frontend {
        FrontendFlags::Dockerfile(_) => {
            !matches!(rep.mode(), crate::cli::Progress::Json) || g.verbose > 0
        }
        FrontendFlags::ZeroConfig { .. } => g.verbose > 0,
    };
    let rep = rep.show_step_output(show);
    let store = open_store(g)?;
    let _lock = store.lock_shared()?;
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
    let puller = super::dockerfile::Puller::new(g, a, &store, &rep);
    let (frontend, release) = match frontend {
        FrontendFlags::Dockerfile(f) => f.into_frontend(&puller),
        FrontendFlags::ZeroConfig { frontend, release } => (frontend, release),
    };
    let progress = |what: &str| crate::output::base_progress(g.progress, what);
    let opts = BuildOptions {
        store: store.clone(),
        context: ctx.clone(),
        context_excludes: if warm_only {
            Vec::new()
        } else {
            outputs_in_context(a, &ctx, &rep)
        },
        frontend,
        platforms: platforms.clone(),
        labels,
        source_date_epoch: a.source_date_epoch.unwrap_or(0),
        compression,
        level,
        isolation: isolation(a),
        network: a.network == BuildNetworkArg::Default,
        ca_bundle: ca_bundle(a)?,
        pass_env: pass_env(a)?,
        no_cache: a.no_cache,
        cache_from,
        cache_to,
        explain_cache: a.explain_cache,
        warm_only,
        offline: a.offline,
        debian: DebianSource {
            release,
            package_cache: a
                .cache_dir
                .clone()
                .unwrap_or_else(|| store.root().join("debian")),
            index_max_age: (!a.refresh).then_some(std::time::Duration::from_secs(3600)),
        },
        base_progress: &progress,
    };
    let t0 = std::time::Instant::now();
    let out = ocibuild_engine::build(&opts, &|e: Event| rep.engine(e))?;
    if warm_only {
        warmed(&rep, &out, &platforms, t0.elapsed().as_secs_f64());
        return Ok(ExitCode::SUCCESS);
    }
    let digest = out
        .digest()
        .map(|d| d.to_string())
        .context("the build made no image")?;
    super::release::release(g, a, &rep, &store, &out)?;
    println!("{digest}");
    Ok(ExitCode::SUCCESS)
}

/// What the command line makes of a frontend's own flags, before the store is open.
pub(super) enum FrontendFlags {
    Dockerfile(super::dockerfile::Flags),
    ZeroConfig {
        frontend: Frontend<'static>,
        release: Release,
    },
}

/// The zero-config frontend's flags; `None`: `--dry-run` printed the plan or its Dockerfile.
fn zero_config(a: &BuildArgs, ctx: &Path, platforms: &[Platform]) -> Result<Option<FrontendFlags>> {
    if platforms.len() > 1 && a.dry_run.is_some() {
        return Err(crate::output::usage(format!(
            "--dry-run with --platform {}: the plan is per platform; give one --platform",
            a.platform
        )));
    }
    for platform in platforms {
        if platform.os != "linux" || !matches!(platform.architecture.as_str(), "amd64" | "arm64") {
            bail!(
                "--platform {}: ocibuild builds linux/amd64 and linux/arm64 images",
                a.platform
            );
        }
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
        goos: String::new(),
        goarch: String::new(),
        toolchain_host: a.toolchain == ToolchainArg::Host,
    };
    if let Some(dry) = a.dry_run {
        let plan = ocibuild_engine::zero_config_plan(ctx, &popts, &platforms[0])?;
        match dry {
            DryRunArg::Plan => println!("{}", serde_json::to_string_pretty(&plan)?),
            DryRunArg::Dockerfile => print!("{}", eject(a, ctx, &plan)?),
        }
        return Ok(None);
    }
    Ok(Some(FrontendFlags::ZeroConfig {
        frontend: Frontend::ZeroConfig {
            plan: popts,
            host_toolchain: a.toolchain == ToolchainArg::Host,
            compare_naive: a.compare_naive,
            explain: a.explain,
        },
        release,
    }))
}

/// `cache warm`: what was fetched, per frontend.
fn warmed(rep: &Reporter, out: &BuildOutcome, platforms: &[Platform], seconds: f64) {
    let dockerfile = out
        .platforms
        .iter()
        .any(|p| matches!(p.detail, FrontendDetail::Dockerfile { .. }));
    if !dockerfile {
        for p in &out.platforms {
            let build_hit = p.stopped.is_empty();
            let mounts: Vec<String> = Vec::new();
            rep.event(
                &format!(
                    "warm: {}",
                    if build_hit {
                        "the whole build is in the store now: a build will run nothing"
                    } else {
                        "the build is not in the cache and no cache mount was filled"
                    }
                ),
                json!({"event": "warm", "build_hit": build_hit, "mounts": mounts}),
            );
        }
        return;
    }
    let cached: Vec<&String> = out.platforms.iter().flat_map(|p| &p.cached).collect();
    let missing: Vec<&String> = out.platforms.iter().flat_map(|p| &p.stopped).collect();
    let which = if platforms.len() > 1 {
        format!(" {}", super::multiplatform::platform_list(platforms))
    } else {
        String::new()
    };
    rep.event(
        &format!(
            "warmed{which}: {} steps fetched or already local, {} not in the cache (they will run), in {seconds:.2} s",
            cached.len(),
            missing.len(),
        ),
        json!({"event": "warm", "cached": cached, "missing": missing}),
    );
}

/// `--dry-run=dockerfile`: the plan as a Dockerfile on the same native bases, with the labels
/// a zero-config build adds.
fn eject(a: &BuildArgs, ctx: &Path, plan: &ocibuild_builders::Plan) -> Result<String> {
    let epoch = a.source_date_epoch.unwrap_or(0);
    let labels = ocibuild_engine::zero_config_labels(ctx, epoch);
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

pub(super) fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "arm64",
        _ => "amd64",
    }
}
