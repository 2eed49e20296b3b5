//! What every builder shares: detection, the planning context, and assembling the [`Plan`]
//! from a language's data and what its module computed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use walkdir::WalkDir;

use crate::config::AppConfig;
use crate::error::{BuildersError, Result};
use crate::filter::glob_filter;
use crate::filter::walk_filtered;
use crate::git::LABEL_VERSION;
use crate::ignore::DockerIgnore;
use crate::plan::{
    Detection, HostTool, ImageConfig, Lang, Options, Plan, Requirement, Runtime, Toolchain,
    Writable,
};
use crate::spec::{DetectSpec, Inputs, Spec, set_env};
use crate::{go, java, node, python};

/// Directories never searched for sources while detecting or listing.
const SKIP_DIRS: [&str; 6] = [
    ".git",
    "node_modules",
    "target",
    "vendor",
    ".venv",
    "__pycache__",
];

fn detect_spec(lang: Lang) -> Result<DetectSpec> {
    Ok(match lang {
        Lang::Go => go::spec()?.detect,
        Lang::Node => node::spec()?.detect,
        Lang::Python => python::spec()?.detect,
        Lang::Java => java::spec()?.detect,
    })
}

fn describe(lang: Lang, dir: &Path, found: &[String]) -> Vec<String> {
    match lang {
        Lang::Go => go::describe(dir),
        Lang::Node => node::describe(dir),
        Lang::Python => python::describe(dir, found),
        Lang::Java => java::describe(dir, found),
    }
}

pub(crate) fn detect(dir: &Path) -> Result<Detection> {
    let meta = std::fs::metadata(dir).map_err(BuildersError::io(dir))?;
    if !meta.is_dir() {
        return Err(BuildersError::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::other("not a directory"),
        });
    }
    let mut looked_for = Vec::new();
    let mut strong: Vec<(Lang, Vec<String>)> = Vec::new();
    let mut weak_exts: Vec<(Lang, Vec<String>)> = Vec::new();
    for lang in Lang::ALL {
        let d = detect_spec(lang)?;
        let mut found = Vec::new();
        for f in d.files.iter().chain(d.unsupported.keys()) {
            looked_for.push(f.clone());
            if dir.join(f).is_file() {
                found.push(f.clone());
            }
        }
        if !found.is_empty() {
            strong.push((lang, found));
        }
        if !d.weak_extensions.is_empty() {
            looked_for.extend(d.weak_extensions.iter().map(|e| format!("*.{e}")));
            weak_exts.push((lang, d.weak_extensions));
        }
    }
    match strong.len() {
        1 => {
            let (lang, found) = strong.remove(0);
            return Ok(Detection {
                lang,
                reasons: describe(lang, dir, &found),
            });
        }
        0 => {}
        _ => {
            let matches = strong
                .iter()
                .map(|(l, f)| format!("{l}: {}", f.join(", ")))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(BuildersError::Ambiguous {
                dir: dir.to_path_buf(),
                matches,
                suggest: strong[0].0.to_string(),
            });
        }
    }
    for (lang, exts) in weak_exts {
        let files = find_by_extension(dir, &exts, 6, 3);
        if !files.is_empty() {
            let mut reasons = describe(lang, dir, &files);
            reasons.insert(
                0,
                format!(
                    "no manifest of any language found; {} sources found ({}{})",
                    lang,
                    files.join(", "),
                    if files.len() >= 3 { ", …" } else { "" }
                ),
            );
            return Ok(Detection { lang, reasons });
        }
    }
    Err(BuildersError::NotDetected {
        dir: dir.to_path_buf(),
        looked_for: looked_for.join(", "),
    })
}

/// Up to `limit` files (relative, sorted walk) with one of `exts`, at most `depth` deep.
pub(crate) fn find_by_extension(
    dir: &Path,
    exts: &[String],
    depth: usize,
    limit: usize,
) -> Vec<String> {
    let mut out = Vec::new();
    let walk = WalkDir::new(dir)
        .min_depth(1)
        .max_depth(depth)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            !(e.file_type().is_dir()
                && e.file_name()
                    .to_str()
                    .is_some_and(|n| SKIP_DIRS.contains(&n) || (n.starts_with('.') && n.len() > 1)))
        });
    for e in walk.flatten() {
        if !e.file_type().is_file() {
            continue;
        }
        let ext_ok = e
            .path()
            .extension()
            .and_then(|x| x.to_str())
            .is_some_and(|x| exts.iter().any(|e| e == x));
        if ext_ok {
            if let Some(rel) = rel_str(dir, e.path()) {
                out.push(rel);
            }
            if out.len() >= limit {
                break;
            }
        }
    }
    out
}

pub(crate) fn rel_str(root: &Path, p: &Path) -> Option<String> {
    let rel = p.strip_prefix(root).ok()?;
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    Some(parts.join("/"))
}

pub(crate) fn plan(dir: &Path, opts: &Options) -> Result<Plan> {
    if opts.goos != "linux" {
        return Err(BuildersError::InvalidOption {
            option: "--platform".into(),
            value: format!("{}/{}", opts.goos, opts.goarch),
            detail: "only linux images are built".into(),
        });
    }
    if !matches!(opts.goarch.as_str(), "amd64" | "arm64") {
        return Err(BuildersError::InvalidOption {
            option: "--platform".into(),
            value: format!("{}/{}", opts.goos, opts.goarch),
            detail: "the architecture must be amd64 or arm64".into(),
        });
    }
    if opts.main.as_deref().is_some_and(|m| m.trim().is_empty()) {
        return Err(BuildersError::InvalidOption {
            option: "--main".into(),
            value: String::new(),
            detail: "must not be empty".into(),
        });
    }
    if opts.entrypoint.as_ref().is_some_and(Vec::is_empty) {
        return Err(BuildersError::InvalidOption {
            option: "--entrypoint".into(),
            value: "[]".into(),
            detail: "must name a program".into(),
        });
    }
    if opts.module.as_deref().is_some_and(|m| m.trim().is_empty()) {
        return Err(BuildersError::InvalidOption {
            option: "--module".into(),
            value: String::new(),
            detail: "must not be empty".into(),
        });
    }
    if opts
        .workspace
        .as_deref()
        .is_some_and(|w| w.trim().is_empty())
    {
        return Err(BuildersError::InvalidOption {
            option: "--workspace".into(),
            value: String::new(),
            detail: "must not be empty".into(),
        });
    }
    let (lang, reasons) = match opts.lang {
        Some(l) => {
            std::fs::metadata(dir).map_err(BuildersError::io(dir))?;
            (l, vec![format!("language {l}: forced by --lang")])
        }
        // a Go monorepo's root, with the module to build
        None if opts
            .workspace
            .as_deref()
            .is_some_and(|w| dir.join(w).join("go.mod").is_file()) =>
        {
            (
                Lang::Go,
                vec![format!(
                    "go.mod found at {}/go.mod (--workspace)",
                    opts.workspace.as_deref().unwrap_or_default()
                )],
            )
        }
        None => {
            let d = detect(dir)?;
            (d.lang, d.reasons)
        }
    };
    let mut ctx = Ctx {
        dir,
        opts,
        config: AppConfig::load(dir)?,
        dockerignore: DockerIgnore::load(dir)?,
        reasons,
    };
    if let Some(p) = &ctx.config.path {
        ctx.reasons.push(format!("{} read", p.display()));
    }
    if let Some(d) = &ctx.dockerignore {
        ctx.reasons.push(format!(
            ".dockerignore honoured for the source copy ({} patterns)",
            d.patterns().len()
        ));
    }
    if lang != Lang::Java
        && let Some(m) = &opts.module
    {
        return Err(BuildersError::InvalidOption {
            option: "--module".into(),
            value: m.clone(),
            detail: format!(
                "--module chooses the module of a multi-module Maven project; this is a {lang} app"
            ),
        });
    }
    if !matches!(lang, Lang::Node | Lang::Go)
        && let Some(w) = &opts.workspace
    {
        return Err(BuildersError::InvalidOption {
            option: "--workspace".into(),
            value: w.clone(),
            detail: format!(
                "--workspace chooses the package of an npm, pnpm or Yarn workspace or the module \
                 of a Go monorepo; this is a {lang} app"
            ),
        });
    }
    match lang {
        Lang::Go => go::plan(ctx),
        Lang::Node => node::plan(ctx),
        Lang::Python => python::plan(ctx),
        Lang::Java => java::plan(ctx),
    }
}

/// The planning context of one app.
pub(crate) struct Ctx<'a> {
    pub dir: &'a Path,
    pub opts: &'a Options,
    pub config: AppConfig,
    pub dockerignore: Option<DockerIgnore>,
    pub reasons: Vec<String>,
}

impl<'a> Ctx<'a> {
    /// The context of a workspace member at `dir` (below this context's root): its own
    /// ocibuild.toml when it has one, else the root's; the reasons so far kept; the root's
    /// `.dockerignore` already applied to the root's copy.
    pub fn into_member<'b>(self, dir: &'b Path) -> Result<Ctx<'b>>
    where
        'a: 'b,
    {
        let own = AppConfig::load(dir)?;
        Ok(Ctx {
            dir,
            opts: self.opts,
            config: if own.path.is_some() { own } else { self.config },
            dockerignore: None,
            reasons: self.reasons,
        })
    }

    pub fn distro(&self) -> &'static str {
        self.opts.distro.as_str()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    pub fn is_file(&self, rel: &str) -> bool {
        self.path(rel).is_file()
    }

    pub fn is_dir(&self, rel: &str) -> bool {
        self.path(rel).is_dir()
    }

    /// The text of `rel`, None when it does not exist.
    pub fn read(&self, rel: &str) -> Result<Option<String>> {
        read_opt(&self.path(rel))
    }

    /// `--main`, else `main` of ocibuild.toml, with where it came from.
    pub fn main(&self) -> Option<(String, &'static str)> {
        if let Some(m) = &self.opts.main {
            return Some((m.trim().to_string(), "--main"));
        }
        self.config
            .main
            .as_ref()
            .map(|m| (m.trim().to_string(), "ocibuild.toml main"))
    }

    /// Whether the entrypoint comes from `--entrypoint` or ocibuild.toml (detection may then
    /// find nothing without failing).
    pub fn entrypoint_overridden(&self) -> bool {
        self.opts.entrypoint.is_some() || self.config.entrypoint.is_some()
    }

    /// Facts and variables every language has.
    pub fn inputs(&self) -> Inputs {
        let mut inp = Inputs::default();
        inp.fact("host", self.opts.toolchain_host)
            .var("goos", self.opts.goos.clone())
            .var("goarch", self.opts.goarch.clone())
            .var("build_arch", build_arch())
            .var("distro", self.distro());
        inp
    }

    /// `static_excludes` plus `.dockerignore` expanded into literal paths of the app dir.
    pub fn source_excludes(&self, static_excludes: &[String]) -> Result<Vec<String>> {
        let mut out = static_excludes.to_vec();
        let Some(di) = &self.dockerignore else {
            return Ok(out);
        };
        let stat = glob_filter(&[], static_excludes)?;
        let negations = di.has_negations();
        let mut walk = WalkDir::new(self.dir)
            .min_depth(1)
            .sort_by_file_name()
            .into_iter();
        while let Some(entry) = walk.next() {
            let e = entry.map_err(|e| {
                let path = e.path().unwrap_or(self.dir).to_path_buf();
                BuildersError::Io {
                    path,
                    source: e.into(),
                }
            })?;
            let Some(rel) = rel_str(self.dir, e.path()) else {
                continue;
            };
            let is_dir = e.file_type().is_dir();
            if stat.is_excluded(&rel) {
                if is_dir {
                    walk.skip_current_dir();
                }
                continue;
            }
            if di.is_excluded(&rel) {
                if is_dir {
                    if !negations {
                        out.push(globset::escape(&rel));
                        walk.skip_current_dir();
                    }
                } else {
                    out.push(globset::escape(&rel));
                }
            }
        }
        Ok(out)
    }

    /// The files of the app that reach the source copy (relative, sorted).
    pub fn source_files(&self, excludes: &[String]) -> Result<Vec<String>> {
        let flt = glob_filter(&[], excludes)?;
        let mut out = Vec::new();
        walk_filtered(
            self.dir,
            &flt,
            |e| {
                let path = e.path().unwrap_or(self.dir).to_path_buf();
                BuildersError::Io {
                    path,
                    source: e.into(),
                }
            },
            |e, rel| {
                if !e.file_type().is_dir() {
                    out.push(rel.to_string());
                }
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// Dotfiles and dot-directories at the app root (escaped as literal globs): source
    /// configuration kept out of the app layer (`.env`, `.npmrc`, `.github`…). Dot-directories
    /// a build creates (`.next`) are not there yet, so they stay.
    pub fn root_dotfiles(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(self.dir).map_err(BuildersError::io(self.dir))? {
            let e = e.map_err(BuildersError::io(self.dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                out.push(globset::escape(&name));
            }
        }
        out.sort();
        Ok(out)
    }
}

/// Debian's name of the architecture this planner runs on (toolchain roots are native).
pub(crate) fn build_arch() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "arm64",
        "x86_64" => "amd64",
        "arm" => "armhf",
        "x86" => "i386",
        "powerpc64" => "ppc64el",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// Image paths the app may never own: the system's, and `/tmp` (already writable by every user).
const NOT_WRITABLE: [&str; 10] = [
    "/proc", "/sys", "/dev", "/run", "/tmp", "/etc", "/usr", "/bin", "/sbin", "/lib",
];

/// `writable` of ocibuild.toml as absolute image paths (relative ones are below `workdir`, the
/// app dir), owned by the image's `user` (numeric, or distroless's `nonroot`/`root`).
fn writable_dirs(config: &AppConfig, workdir: &str, user: &str) -> Result<Option<Writable>> {
    if config.writable.is_empty() {
        return Ok(None);
    }
    let path = config
        .path
        .clone()
        .unwrap_or_else(|| PathBuf::from(crate::config::CONFIG_FILE));
    let bad = |detail: String| BuildersError::Config {
        path: path.clone(),
        line: None,
        detail,
    };
    let owner = match user {
        "nonroot" => Some((65532, 65532)),
        "root" => Some((0, 0)),
        u => {
            let (a, b) = u.split_once(':').unwrap_or((u, u));
            a.parse().ok().zip(b.parse().ok())
        }
    };
    let Some((uid, gid)) = owner else {
        return Err(bad(format!(
            "writable: the directories are owned by the image's user, which must be numeric \
             (UID or UID:GID), but user is {user:?}"
        )));
    };
    let wd = format!("/{}", workdir.trim_matches('/'));
    let mut dirs: Vec<String> = Vec::new();
    for w in &config.writable {
        let abs = if w.starts_with('/') {
            w.clone()
        } else {
            format!("{wd}/{w}")
        };
        let parts: Vec<&str> = abs
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        let norm = format!("/{}", parts.join("/"));
        if norm == "/" || norm == wd || wd.starts_with(&format!("{norm}/")) {
            return Err(bad(format!(
                "writable: {w:?} is {norm}, the app directory or one above it: the code the app \
                 runs stays read-only to it; name the subdirectories it writes (instance, uploads, \
                 /data)"
            )));
        }
        if let Some(s) = NOT_WRITABLE
            .iter()
            .find(|s| norm == **s || norm.starts_with(&format!("{s}/")))
        {
            return Err(bad(format!(
                "writable: {w:?} is under {s}, which belongs to the system{}; use a directory \
                 of the app (instance) or of its own (/data)",
                if *s == "/tmp" {
                    " (/tmp is writable by every user already)"
                } else {
                    ""
                }
            )));
        }
        if !dirs.contains(&norm) {
            dirs.push(norm);
        }
    }
    Ok(Some(Writable { dirs, uid, gid }))
}

/// `file:line` of `needles` found in order (`"engines"`, then `"node"` after it), or `file`
/// when they are not all found.
pub(crate) fn origin_of(file: &str, text: &str, needles: &[&str]) -> String {
    let mut pos = 0;
    for n in needles {
        match text.get(pos..).and_then(|t| t.find(n)) {
            Some(i) => pos += i,
            None => return file.to_string(),
        }
    }
    format!("{file}:{}", crate::error::line_of(text, pos))
}

pub(crate) fn read_opt(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(BuildersError::io(path)(e)),
    }
}

/// What a language module decided; [`finish`] turns it into the plan.
pub(crate) struct Parts {
    pub toolchain: Toolchain,
    pub runtime_profile: String,
    pub inputs: Inputs,
    /// From [`Ctx::source_excludes`].
    pub source_exclude: Vec<String>,
    /// Empty when the entrypoint is overridden.
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub ports: Vec<String>,
    pub version: Option<String>,
    /// What the app needs of its toolchain (checked against the host's with `--toolchain host`).
    pub requirements: Vec<Requirement>,
}

pub(crate) fn finish<R, X>(
    ctx: Ctx<'_>,
    lang: Lang,
    spec: &Spec<R, X>,
    parts: Parts,
) -> Result<Plan> {
    let Ctx {
        opts,
        config,
        mut reasons,
        ..
    } = ctx;
    let inp = &parts.inputs;
    let source_exclude = parts.source_exclude.clone();

    let toolchain = if opts.toolchain_host {
        reasons.push(
            "toolchain: the host's (--toolchain host); its programs are probed before building"
                .to_string(),
        );
        Toolchain {
            profile: "host".into(),
            packages: Vec::new(),
            backports: false,
            path_prepend: Vec::new(),
            version: format!("host ({} wanted)", parts.toolchain.version),
            host_tools: Vec::new(),
        }
    } else {
        parts.toolchain
    };

    let mut runtime = match &config.runtime {
        Some((p, v)) => {
            reasons.push(format!(
                "runtime {p}{}: from ocibuild.toml (detected: {})",
                v.as_ref().map(|v| format!(":{v}")).unwrap_or_default(),
                parts.runtime_profile
            ));
            Runtime {
                profile: p.clone(),
                variant: v.clone().unwrap_or_else(|| spec.runtime.variant.clone()),
                packages: spec.runtime.packages.clone(),
            }
        }
        None => Runtime {
            profile: parts.runtime_profile.clone(),
            variant: spec.runtime.variant.clone(),
            packages: spec.runtime.packages.clone(),
        },
    };

    for p in &config.packages {
        if !runtime.packages.contains(p) {
            runtime.packages.push(p.clone());
        }
    }
    if !config.packages.is_empty() {
        reasons.push(format!(
            "runtime packages {}: from ocibuild.toml",
            config.packages.join(", ")
        ));
    }

    let cache_mounts = spec.cache_mounts(inp)?;
    // every step's environment: the builder's (rendered with the step's own vars), the cache
    // mounts', then ocibuild.toml's [build] env
    let base_env = |inp: &Inputs| -> Result<Vec<(String, String)>> {
        let mut env = spec.build_env(inp)?;
        for c in &cache_mounts {
            for (k, v) in &c.env {
                set_env(&mut env, k, v.clone());
            }
        }
        for (k, v) in &config.build_env {
            set_env(&mut env, k, v.clone());
        }
        Ok(env)
    };
    let steps = spec.steps(inp, &base_env)?;
    let layers = spec.layers(inp)?;
    let mut toolchain = toolchain;
    if opts.toolchain_host {
        // The host programs the steps run (and the one the app's version requirement is
        // about), each with its version command: the executor probes them before building.
        toolchain.host_tools = spec
            .host_tools
            .iter()
            .filter(|t| t.requirement || steps.iter().any(|s| s.argv.first() == Some(&t.program)))
            .map(|t| HostTool {
                program: t.program.clone(),
                version_argv: t.version.clone(),
                requirements: if t.requirement {
                    parts.requirements.clone()
                } else {
                    Vec::new()
                },
            })
            .collect();
    }

    let entrypoint = if let Some(e) = &opts.entrypoint {
        reasons.push("entrypoint: from --entrypoint".into());
        e.clone()
    } else if let Some(e) = &config.entrypoint {
        reasons.push("entrypoint: from ocibuild.toml".into());
        e.clone()
    } else {
        parts.entrypoint
    };
    let cmd = match &config.cmd {
        Some(c) => c.clone(),
        None => parts.cmd,
    };

    let mut image_env: Vec<(String, String)> = Vec::new();
    for e in spec.render_list(&spec.image.env, inp)? {
        let (k, v) = e.split_once('=').unwrap_or((e.as_str(), ""));
        set_env(&mut image_env, k, v.to_string());
    }
    for (k, v) in &config.env {
        set_env(&mut image_env, k, v.clone());
    }

    let mut exposed_ports = Vec::new();
    for p in parts.ports.iter().chain(config.expose.iter()) {
        if !exposed_ports.contains(p) {
            exposed_ports.push(p.clone());
        }
    }

    let user = config
        .user
        .clone()
        .unwrap_or_else(|| spec.image.user.clone());
    let writable = writable_dirs(&config, &spec.image.workdir, &user)?;
    if let Some(w) = &writable {
        reasons.push(format!(
            "writable at run time (ocibuild.toml): {}, owned by {}:{} in a layer of their own",
            w.dirs.join(", "),
            w.uid,
            w.gid
        ));
    }

    let mut labels = BTreeMap::new();
    if let Some(v) = &parts.version {
        labels.insert(LABEL_VERSION.to_string(), v.clone());
    }
    labels.extend(config.labels.clone());

    Ok(Plan {
        lang,
        reasons,
        toolchain,
        runtime,
        source_dir: spec.source.dir.clone(),
        source_exclude,
        outputs: spec.outputs.clone(),
        cache_mounts,
        steps,
        layers,
        writable,
        config: ImageConfig {
            entrypoint,
            cmd,
            workdir: spec.image.workdir.clone(),
            user,
            env: image_env
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect(),
            exposed_ports,
            labels,
            healthcheck: config.healthcheck.clone(),
        },
        files: Vec::new(),
        arch_specific: Vec::new(),
    })
}
