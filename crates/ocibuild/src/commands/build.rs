//! `ocibuild build`: both frontends (a Dockerfile, or zero-config builds from source: Go,
//! Node.js, Python, Java). Flags become one [`BuildOptions`] (`build_flags`), the engine's one
//! entry point builds, and [`super::release`] gates, documents, signs and writes the result.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use ocibuild_builders::{Distro, Lang, Options as PlanOptions};
use ocibuild_debian::apt::Release;
use ocibuild_engine::{BuildOptions, BuildOutcome, DebianSource, Event, Frontend, FrontendDetail};
use ocibuild_oci::image::Platform;
use serde_json::json;

use super::assemble::parse_command;
use super::build_flags::{
    ca_bundle, cache_registry, cache_specs, compression, isolation, offline_usage, open_caches,
    outputs_in_context, pass_env,
};
use super::open_store;
use crate::cli::{BuildArgs, BuildNetworkArg, DryRunArg, Global, ToolchainArg};
use crate::output::Reporter;

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
    // a package of an npm or pnpm workspace (no lockfile of its own): the context is the root
    let (ctx, workspace) = match &dockerfile {
        Some(df) => {
            if let Some(w) = &a.workspace {
                return Err(crate::output::usage(format!(
                    "--workspace {w}: it chooses the package of a zero-config npm workspaces \
                     build, and this build runs {}; drop --workspace, or pass --lang node to \
                     build from source",
                    df.display()
                )));
            }
            (ctx, None)
        }
        None => workspace_context(a, ctx)?,
    };
    if let (Some(w), None) = (&workspace, &a.workspace) {
        let kind = if ctx.join(w).join("go.mod").is_file() {
            if ctx.join("go.work").is_file() {
                "Go (go.work)"
            } else {
                "Go (the common parent of its local replace targets)"
            }
        } else if ctx.join("pnpm-workspace.yaml").is_file() {
            "pnpm"
        } else if ctx.join("yarn.lock").is_file() {
            "yarn"
        } else {
            "npm"
        };
        rep.event(
            &format!(
                "{} is the workspace {w} of the {kind} workspace root {}: the build's context is \
                 the root (as `--workspace {w}` there)",
                a.context.display(),
                ctx.display()
            ),
            json!({"event": "workspace", "root": ctx, "workspace": w}),
        );
    }
    if !warm_only && a.dry_run.is_none() {
        // --sign's key and the provenance's start, before anything is built
        super::buildsign::begin(a, &ctx, dockerfile.as_deref())?;
    }
    let platforms = super::multiplatform::parse_platforms(&a.platform)?;
    super::multiplatform::check_args(a, &platforms)?;
    // the frontend's own flags
    let frontend = match &dockerfile {
        Some(df) => super::dockerfile::Flags::parse(a, warm_only, df)?,
        None => match zero_config(a, &ctx, workspace, &platforms)? {
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
/// The build's context and workspace: `ocibuild build ROOT/apps/api`, a package of an npm
/// workspace with no lockfile of its own (or a Go module of a go.work, or with local replace
/// targets outside it), builds from the workspace root with `--workspace apps/api`.
fn workspace_context(a: &BuildArgs, ctx: PathBuf) -> Result<(PathBuf, Option<String>)> {
    if a.lang
        .as_deref()
        .is_some_and(|l| !matches!(l.parse::<Lang>(), Ok(Lang::Node | Lang::Go) | Err(_)))
    {
        return Ok((ctx, a.workspace.clone()));
    }
    match ocibuild_builders::workspace_of(&ctx)? {
        None => Ok((ctx, a.workspace.clone())),
        Some((root, member)) => {
            if let Some(w) = &a.workspace {
                return Err(crate::output::usage(format!(
                    "--workspace {w}: {} is already a workspace package ({member} of the \
                     workspace root {}); pass the root with --workspace, or the package's \
                     directory alone",
                    ctx.display(),
                    root.display()
                )));
            }
            Ok((root, Some(member)))
        }
    }
}

/// The zero-config frontend's flags; `None`: `--dry-run` printed the plan or its Dockerfile.
fn zero_config(
    a: &BuildArgs,
    ctx: &Path,
    workspace: Option<String>,
    platforms: &[Platform],
) -> Result<Option<FrontendFlags>> {
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
        workspace: workspace.clone(),
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
            DryRunArg::Dockerfile => print!(
                "{}",
                eject(a, ctx, workspace.is_some() && a.workspace.is_none(), &plan)?
            ),
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
/// `rerooted`: the context is the npm workspace root above the directory given.
fn eject(
    a: &BuildArgs,
    ctx: &Path,
    rerooted: bool,
    plan: &ocibuild_builders::Plan,
) -> Result<String> {
    let epoch = a.source_date_epoch.unwrap_or(0);
    let labels = ocibuild_engine::zero_config_labels(ctx, epoch);
    // another platform's image: the build stage runs on the build platform, as the build does
    // when the app's layers are cross-compiled or architecture-independent
    let foreign = Platform::parse(&a.platform).is_ok_and(|p| p.architecture != host_arch());
    let o = ocibuild_engine::eject::EjectOptions {
        app: if rerooted {
            ctx.display().to_string()
        } else {
            a.context.display().to_string()
        },
        labels,
        source_date_epoch: epoch,
        dir: Some(ctx.to_path_buf()),
        build_from: ocibuild_engine::eject::BuildFrom {
            build_platform: foreign && plan.arch_specific.is_empty(),
            host: false,
        },
    };
    Ok(ocibuild_engine::eject::dockerfile(plan, &o)?)
}

pub(super) fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "arm64",
        _ => "amd64",
    }
}
