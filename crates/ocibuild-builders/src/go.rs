//! Go: go.mod, the Go toolchain of the Debian release (or its backports), the main package.

use std::path::Path;

use serde::Deserialize;

use crate::common::{Ctx, Parts, finish, read_opt};
use crate::error::{BuildersError, Result, line_of};
use crate::plan::{Constraint, Lang, Plan, Requirement, Toolchain};
use crate::spec::{self, Inputs, Spec};
use crate::version::go_version;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Release {
    /// golang-go of the release.
    pub default: String,
    /// golang-1.N-go in -backports.
    #[serde(default)]
    pub backports: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Rules {
    pub backports_package: String,
    pub backports_path: String,
    pub cmd_dirs: Vec<String>,
    /// Added to the build root when the app uses cgo.
    pub cgo_packages: Vec<String>,
    /// The runtime profile of a binary that links C code (glibc).
    pub cgo_runtime: String,
    /// Modules that need cgo: required in go.mod, they mean a cgo build.
    pub cgo_modules: Vec<String>,
}

pub(crate) type GoSpec = Spec<Release, Rules>;

pub(crate) fn spec() -> Result<GoSpec> {
    spec::load("go.toml", spec::GO_TOML)
}

/// What go.mod says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GoMod {
    pub module: String,
    /// The `go` line.
    pub go: Option<String>,
    /// The `toolchain` line (`go1.23.4`).
    pub toolchain: Option<String>,
    /// Lines (1-based) of the `go` and `toolchain` lines.
    pub go_line_no: Option<usize>,
    pub toolchain_line_no: Option<usize>,
    /// Whether any module is required.
    pub requires: bool,
    /// The required modules' paths, in go.mod's order.
    pub modules: Vec<String>,
    /// Local directories of `replace` directives (`../shared`), relative to the module.
    pub replaces: Vec<String>,
}

/// Parse go.mod (`path` names it in errors).
pub(crate) fn parse_go_mod(text: &str, path: &Path) -> Result<GoMod> {
    let mut m = GoMod::default();
    let mut block: Option<String> = None;
    let mut offset = 0;
    for raw in text.split_inclusive('\n') {
        let line_no = line_of(text, offset);
        offset += raw.len();
        let line = raw.split("//").next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if let Some(b) = &block {
            if line == ")" {
                block = None;
            } else if b == "require" {
                m.requires = true;
                if let Some(module) = line.split_whitespace().next() {
                    m.modules.push(module.trim_matches('"').to_string());
                }
            } else if b == "replace"
                && let Some(t) = crate::gows::local_replace_target(line)
            {
                m.replaces.push(t);
            }
            continue;
        }
        let mut words = line.split_whitespace();
        let verb = words.next().unwrap_or("");
        let rest: Vec<&str> = words.collect();
        if rest.first() == Some(&"(") {
            block = Some(verb.to_string());
            continue;
        }
        let bad = |detail: String| BuildersError::Parse {
            path: path.to_path_buf(),
            line: Some(line_no),
            detail,
            hint: "fix go.mod (`go mod tidy` rewrites it)".into(),
        };
        match verb {
            "module" => {
                let name = rest
                    .first()
                    .ok_or_else(|| bad("module line without a path".into()))?;
                m.module = name.trim_matches(|c| c == '"' || c == '`').to_string();
            }
            "go" => {
                let v = rest
                    .first()
                    .ok_or_else(|| bad("go line without a version".into()))?;
                if go_version(v).is_none() {
                    return Err(bad(format!("go line: {v:?} is not a Go version")));
                }
                m.go = Some(v.to_string());
                m.go_line_no = Some(line_no);
            }
            "toolchain" => {
                let v = rest
                    .first()
                    .ok_or_else(|| bad("toolchain line without a version".into()))?;
                if *v != "default" {
                    if go_version(v).is_none() {
                        return Err(bad(format!("toolchain line: {v:?} is not a Go toolchain")));
                    }
                    m.toolchain = Some(v.to_string());
                    m.toolchain_line_no = Some(line_no);
                }
            }
            "require" => {
                m.requires = true;
                if let Some(module) = rest.first() {
                    m.modules.push(module.trim_matches('"').to_string());
                }
            }
            "replace" => {
                if let Some(t) = crate::gows::local_replace_target(&rest.join(" ")) {
                    m.replaces.push(t);
                }
            }
            _ => {}
        }
    }
    if block.is_some() {
        return Err(BuildersError::Parse {
            path: path.to_path_buf(),
            line: None,
            detail: "a ( block is never closed".into(),
            hint: "fix go.mod (`go mod tidy` rewrites it)".into(),
        });
    }
    if m.module.is_empty() {
        return Err(BuildersError::Parse {
            path: path.to_path_buf(),
            line: None,
            detail: "no module line".into(),
            hint: "add `module example.com/app` (or run `go mod init`)".into(),
        });
    }
    Ok(m)
}

pub(crate) fn describe(dir: &Path) -> Vec<String> {
    let path = dir.join("go.mod");
    match read_opt(&path)
        .ok()
        .flatten()
        .map(|t| parse_go_mod(&t, &path))
    {
        Some(Ok(m)) => vec![format!(
            "go.mod found at go.mod (module {}{})",
            m.module,
            m.go.map(|g| format!(", go {g}")).unwrap_or_default()
        )],
        _ => vec!["go.mod found at go.mod".into()],
    }
}

/// The toolchain for `required` (the larger of the go and toolchain lines) on `release`.
pub(crate) fn choose_toolchain(
    spec: &GoSpec,
    distro: &str,
    required: &str,
    gomod: &Path,
) -> Result<(Toolchain, String)> {
    let rel = spec.release(distro)?;
    let req = go_version(required).ok_or_else(|| BuildersError::Parse {
        path: gomod.to_path_buf(),
        line: None,
        detail: format!("{required:?} is not a Go version"),
        hint: "fix the go line of go.mod".into(),
    })?;
    let minor = |v: &str| -> Result<(u64, u64)> {
        go_version(v)
            .map(|(a, b, _)| (a, b))
            .ok_or_else(|| BuildersError::data("go.toml", format!("{v:?} is not a Go version")))
    };
    let want = (req.0, req.1);
    if want <= minor(&rel.default)? {
        return Ok((
            Toolchain {
                profile: spec.toolchain.profile.clone(),
                packages: Vec::new(),
                backports: false,
                path_prepend: Vec::new(),
                version: rel.default.clone(),
                host_tools: Vec::new(),
            },
            format!(
                "toolchain: Go {} (golang-go of Debian {distro}) satisfies go {required}",
                rel.default
            ),
        ));
    }
    let mut backports = rel.backports.clone();
    backports.sort_by_key(|v| go_version(v));
    for b in &backports {
        if minor(b)? >= want {
            let mut inp = Inputs::default();
            inp.var("version", b.clone());
            return Ok((
                Toolchain {
                    profile: spec.toolchain.profile.clone(),
                    packages: vec![spec.render_str(&spec.rules.backports_package, &inp)?],
                    backports: true,
                    path_prepend: vec![spec.render_str(&spec.rules.backports_path, &inp)?],
                    version: b.clone(),
                    host_tools: Vec::new(),
                },
                format!(
                    "toolchain: Go {b} from {distro}-backports (go {required} is newer than the \
                     release's Go {})",
                    rel.default
                ),
            ));
        }
    }
    let newest = backports.last().unwrap_or(&rel.default).clone();
    let hint = if distro == "bookworm" {
        "pass --distro trixie (newer Go), or --toolchain host to build with the host's Go"
    } else {
        "pass --toolchain host to build with the host's Go, or lower the go line of go.mod"
    };
    Err(BuildersError::Version {
        path: gomod.to_path_buf(),
        detail: format!(
            "go {required} is required, but the newest Go Debian {distro} has (with backports) is {newest}"
        ),
        hint: hint.into(),
    })
}

/// The package clause of a Go file, skipping comments; None for files excluded by a
/// `//go:build ignore` constraint.
pub(crate) fn package_clause(text: &str) -> Option<String> {
    let mut in_block = false;
    for raw in text.lines() {
        let mut line = raw.trim();
        if in_block {
            match line.find("*/") {
                Some(i) => {
                    in_block = false;
                    line = line[i + 2..].trim();
                }
                None => continue,
            }
        }
        if let Some(c) = line.strip_prefix("//") {
            let c = c.trim_start();
            if let Some(expr) = c.strip_prefix("go:build")
                && expr.split_whitespace().any(|w| w == "ignore")
            {
                return None;
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("/*") {
            match rest.find("*/") {
                Some(i) => line = rest[i + 2..].trim(),
                None => {
                    in_block = true;
                    continue;
                }
            }
        }
        if line.is_empty() {
            continue;
        }
        let rest = line.strip_prefix("package")?;
        if !rest.starts_with(char::is_whitespace) {
            return None;
        }
        return rest
            .split(|c: char| c.is_whitespace() || c == ';' || c == '/')
            .find(|w| !w.is_empty())
            .map(str::to_string);
    }
    None
}

/// Whether the directory holds a non-test `package main` file.
pub(crate) fn is_main_package(dir: &Path) -> Result<bool> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(BuildersError::io(dir)(e)),
    };
    let mut names = Vec::new();
    for e in rd {
        let e = e.map_err(BuildersError::io(dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".go") && !name.ends_with("_test.go") && e.path().is_file() {
            names.push(name);
        }
    }
    names.sort();
    for n in names {
        let p = dir.join(&n);
        let text = std::fs::read_to_string(&p).map_err(BuildersError::io(&p))?;
        if package_clause(&text).as_deref() == Some("main") {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Operating systems other than Linux, as file name suffixes (`x_windows.go`) and build tags.
const OTHER_GOOS: &[&str] = &[
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "hurd",
    "illumos",
    "ios",
    "js",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "wasip1",
    "windows",
    "zos",
];

/// Whether a non-test Go file imports "C" in a Linux build that has no pure-Go alternative:
/// not `//go:build ignore`, not only for another OS (by name suffix or build tag), and not
/// guarded by a `cgo` build tag (such a package has a `!cgo` variant that builds without C).
pub(crate) fn imports_c(name: &str, text: &str) -> bool {
    let stem = name.trim_end_matches(".go");
    if stem.ends_with("_test")
        || stem
            .rsplit('_')
            .take(2)
            .any(|part| OTHER_GOOS.contains(&part))
    {
        return false;
    }
    if package_clause(text).is_none() {
        return false;
    }
    let mut in_imports = false;
    let mut in_comment = false;
    for raw in text.lines() {
        let line = raw.trim();
        if in_comment {
            if line.contains("*/") {
                in_comment = false;
            }
            continue;
        }
        if let Some(expr) = line.strip_prefix("//go:build") {
            let words: Vec<&str> = expr
                .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '!'))
                .filter(|w| !w.is_empty())
                .collect();
            if words.iter().any(|w| w.trim_start_matches('!') == "cgo") {
                return false;
            }
            let positive: Vec<&str> = words
                .iter()
                .copied()
                .filter(|w| !w.starts_with('!'))
                .collect();
            let other_os = positive.iter().any(|w| OTHER_GOOS.contains(w));
            let linux = positive.iter().any(|w| *w == "linux" || *w == "unix");
            if other_os && !linux {
                return false;
            }
            continue;
        }
        if line.starts_with("/*") && !line.contains("*/") {
            in_comment = true;
            continue;
        }
        let code = line.split("//").next().unwrap_or("").trim();
        if in_imports {
            if code.starts_with(')') {
                in_imports = false;
            } else if code == "\"C\"" || code.ends_with(" \"C\"") && !code.contains('.') {
                return true;
            }
            continue;
        }
        if let Some(rest) = code.strip_prefix("import") {
            let rest = rest.trim();
            if rest == "\"C\"" {
                return true;
            }
            if rest.starts_with('(') {
                in_imports = !rest.contains(')');
                if rest.trim_start_matches('(').trim().starts_with("\"C\"") {
                    return true;
                }
            }
            continue;
        }
        if code.starts_with("func ") || code.starts_with("type ") || code.starts_with("var ") {
            // imports come first
            break;
        }
    }
    false
}

/// Why the app needs cgo, if it does: a required module of `cgo_modules`, else the first
/// non-test .go file of the module (vendor/ included; testdata, hidden and `_` directories and
/// nested modules left out) that imports "C" (see [`imports_c`]).
pub(crate) fn cgo_reason(
    dir: &Path,
    gomod: &GoMod,
    cgo_modules: &[String],
) -> Result<Option<String>> {
    if let Some(m) = gomod
        .modules
        .iter()
        .find(|m| cgo_modules.iter().any(|c| c == *m))
    {
        return Ok(Some(format!("go.mod requires {m}, which needs cgo")));
    }
    let walk = walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            if e.depth() == 0 || !e.file_type().is_dir() {
                return true;
            }
            let name = e.file_name().to_string_lossy();
            let in_vendor = e
                .path()
                .strip_prefix(dir)
                .is_ok_and(|r| r.starts_with("vendor"));
            !(name.starts_with('.')
                || name.starts_with('_')
                || name == "testdata"
                || name == "node_modules"
                || (!in_vendor && e.path().join("go.mod").is_file()))
        });
    for e in walk {
        let e = e.map_err(|err| BuildersError::Io {
            path: err.path().unwrap_or(dir).to_path_buf(),
            source: err.into(),
        })?;
        let name = e.file_name().to_string_lossy();
        if !e.file_type().is_file() || !name.ends_with(".go") {
            continue;
        }
        let text = std::fs::read_to_string(e.path()).map_err(BuildersError::io(e.path()))?;
        if imports_c(&name, &text) {
            let rel = e.path().strip_prefix(dir).unwrap_or(e.path());
            return Ok(Some(format!("{} imports \"C\"", rel.display())));
        }
    }
    Ok(None)
}

/// The binary name `go build` would give the module root: its last path element, skipping a
/// major version suffix (`example.com/app/v2` → `app`).
pub(crate) fn module_binary_name(module: &str) -> String {
    let parts: Vec<&str> = module.split('/').filter(|p| !p.is_empty()).collect();
    let is_major =
        |s: &str| s.len() > 1 && s.starts_with('v') && s[1..].chars().all(|c| c.is_ascii_digit());
    match parts.as_slice() {
        [.., prev, last] if is_major(last) => prev.to_string(),
        [.., last] => last.to_string(),
        [] => "app".into(),
    }
}

/// The main package (`.` or `./cmd/x`) and the binary name.
pub(crate) fn main_package(
    ctx: &Ctx<'_>,
    spec: &GoSpec,
    gomod: &GoMod,
) -> Result<(String, String, String)> {
    if let Some((m, origin)) = ctx.main() {
        let rel = m.trim_start_matches("./").trim_end_matches('/');
        let rel = if rel.is_empty() { "." } else { rel };
        if rel.starts_with('/') || rel.split('/').any(|c| c == "..") {
            return Err(BuildersError::InvalidOption {
                option: origin.into(),
                value: m.clone(),
                detail: "must be a package directory inside the module, like ./cmd/server".into(),
            });
        }
        if !is_main_package(&ctx.path(rel))? {
            return Err(BuildersError::Entrypoint {
                path: ctx.path(rel),
                detail: format!("{origin} {m}: no `package main` .go file there"),
                hint: "point --main at a directory of the module holding package main".into(),
            });
        }
        let (pkg, name) = if rel == "." {
            (".".to_string(), module_binary_name(&gomod.module))
        } else {
            (
                format!("./{rel}"),
                rel.rsplit('/').next().unwrap_or(rel).to_string(),
            )
        };
        let why = format!("main package {pkg}: from {origin}");
        return Ok((pkg, name, why));
    }
    if is_main_package(ctx.dir)? {
        let name = module_binary_name(&gomod.module);
        return Ok((
            ".".into(),
            name.clone(),
            format!("main package .: the module root is package main (binary {name})"),
        ));
    }
    let mut candidates = Vec::new();
    for cmd in &spec.rules.cmd_dirs {
        let d = ctx.path(cmd);
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut subs = Vec::new();
        for e in rd {
            let e = e.map_err(BuildersError::io(&d))?;
            if e.path().is_dir() {
                subs.push(e.file_name().to_string_lossy().into_owned());
            }
        }
        subs.sort();
        for s in subs {
            if is_main_package(&d.join(&s))? {
                candidates.push((format!("./{cmd}/{s}"), s));
            }
        }
    }
    match candidates.len() {
        1 => {
            let (pkg, name) = candidates.remove(0);
            let why = format!("main package {pkg}: the only package main under cmd/");
            Ok((pkg, name, why))
        }
        0 => Err(BuildersError::Entrypoint {
            path: ctx.dir.to_path_buf(),
            detail: format!(
                "no main package: neither the module root nor {} holds `package main`",
                spec.rules
                    .cmd_dirs
                    .iter()
                    .map(|c| format!("{c}/*"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            hint: "pass --main ./path/to/main/package".into(),
        }),
        _ => Err(BuildersError::Entrypoint {
            path: ctx.dir.to_path_buf(),
            detail: format!(
                "several main packages: {}",
                candidates
                    .iter()
                    .map(|c| c.0.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            hint: format!("pass --main to choose one, e.g. --main {}", candidates[0].0),
        }),
    }
}

pub(crate) fn plan(mut ctx: Ctx<'_>) -> Result<Plan> {
    let Some(member) = ctx.opts.workspace.clone() else {
        return plan_module(ctx, None);
    };
    // A module of a Go monorepo: the context is the root; the plan is the module's, with the
    // root's copy limited to what the build reads.
    let spec = spec()?;
    let ws = crate::gows::layout(ctx.dir, &member)?;
    let root = std::fs::canonicalize(ctx.dir).map_err(BuildersError::io(ctx.dir))?;
    let mut source_exclude = ctx.source_excludes(&spec.source.exclude)?;
    source_exclude.extend(ws.excludes(&root)?);
    let member_dir = root.join(&ws.member);
    ctx.reasons.push(format!(
        "Go workspace: {} builds from {} ({}); copied: {}{}",
        ws.member,
        root.display(),
        if ws.go_work {
            "its go.work lists the module"
        } else {
            "the module's local replace targets are outside it"
        },
        ws.modules.join(", "),
        if ws.manifests_only.is_empty() {
            String::new()
        } else {
            format!(
                "; only go.mod and go.sum of {}",
                ws.manifests_only.join(", ")
            )
        }
    ));
    let mctx = ctx.into_member(&member_dir)?;
    plan_module(mctx, Some((ws, root, source_exclude)))
}

/// The plan of the module in `ctx.dir`; `ws`: it is a member of a Go workspace (its layout,
/// the root and the root's source excludes).
fn plan_module(
    mut ctx: Ctx<'_>,
    ws: Option<(crate::gows::GoWorkspace, std::path::PathBuf, Vec<String>)>,
) -> Result<Plan> {
    let spec = spec()?;
    let gomod_path = ctx.path("go.mod");
    let text = ctx
        .read("go.mod")?
        .ok_or_else(|| BuildersError::NotDetected {
            dir: ctx.dir.to_path_buf(),
            looked_for: "go.mod".into(),
        })?;
    let gomod = parse_go_mod(&text, &gomod_path)?;

    // The version the module needs: the larger of the go and toolchain lines.
    let go_line = gomod.go.clone().unwrap_or_else(|| "1.16".into());
    let mut required = go_line.clone();
    let mut required_at = match gomod.go_line_no {
        Some(n) => format!("go.mod:{n}"),
        None => "go.mod, which has no go line".to_string(),
    };
    if let Some(t) = &gomod.toolchain
        && go_version(t) > go_version(&required)
    {
        required = t.trim_start_matches("go").to_string();
        if let Some(n) = gomod.toolchain_line_no {
            required_at = format!("go.mod:{n}");
        }
    }
    let requirement = Requirement {
        what: "Go".into(),
        constraint: Constraint::GoAtLeast(required.clone()),
        origin: required_at,
        hint: format!("install Go {required} or newer on the host, or drop --toolchain host"),
    };
    let (toolchain, why) = match choose_toolchain(&spec, ctx.distro(), &required, &gomod_path) {
        Ok(t) => t,
        // The host's Go builds; a static binary needs nothing of the release at run time.
        Err(BuildersError::Version { .. }) if ctx.opts.toolchain_host => (
            Toolchain {
                profile: spec.toolchain.profile.clone(),
                packages: Vec::new(),
                backports: false,
                path_prepend: Vec::new(),
                version: required.clone(),
                host_tools: Vec::new(),
            },
            format!(
                "toolchain: go {required} is newer than Debian {}'s Go: the host's Go must be",
                ctx.distro()
            ),
        ),
        Err(e) => return Err(e),
    };
    ctx.reasons.push(match &gomod.toolchain {
        Some(t) => format!("{why} (go.mod: go {go_line}, toolchain {t})"),
        None => why,
    });
    if go_version(&required).is_some_and(|v| v.2 > 0) {
        ctx.reasons.push(format!(
            "note: go.mod asks for the patch release {required}; with GOTOOLCHAIN=local the \
             build fails if the packaged Go is older"
        ));
    }

    let (main, name, why) = main_package(&ctx, &spec, &gomod)?;
    ctx.reasons.push(why);

    // the workspace's modules besides the app's (go.work mode vendors at the root)
    let vendor_base = match &ws {
        Some((w, root, _)) if w.go_work => root.clone(),
        _ => ctx.dir.to_path_buf(),
    };
    let vendor = vendor_base.join("vendor/modules.txt").is_file();
    let vendor_dir = vendor_base.join("vendor").is_dir();
    let mut others: Vec<(std::path::PathBuf, GoMod)> = Vec::new();
    if let Some((w, root, _)) = &ws {
        for d in w.modules.iter().skip(1) {
            let dir = root.join(d);
            let m = crate::gows::read_go_mod(&dir)?;
            others.push((dir, m));
        }
    }
    // modules to download: required by the app or a copied local module, not local themselves
    let external = match &ws {
        Some((w, _, _)) => std::iter::once(&gomod)
            .chain(others.iter().map(|(_, m)| m))
            .flat_map(|m| m.modules.iter())
            .any(|m| !w.local_paths.contains(m)),
        None => gomod.requires,
    };
    if vendor {
        ctx.reasons
            .push("vendor/modules.txt found: -mod=vendor, GOPROXY=off, no network".into());
    } else if !external {
        ctx.reasons.push(if gomod.requires {
            "go.mod requires only the workspace's own modules: the build needs no network".into()
        } else {
            "go.mod requires no modules: the build needs no network".into()
        });
    }
    // cgo: ocibuild.toml's CGO_ENABLED decides; else code that imports "C" or a module that
    // needs it. A cgo binary links glibc: gcc in the build root, the `cc` runtime, and the
    // build runs for the target platform (no cross C compiler).
    let cgo = match ctx.config.build_env.get("CGO_ENABLED").map(String::as_str) {
        Some("0") => None,
        Some(_) => Some("ocibuild.toml sets CGO_ENABLED".to_string()),
        None => match cgo_reason(ctx.dir, &gomod, &spec.rules.cgo_modules)? {
            Some(why) => Some(why),
            None => {
                let mut found = None;
                for (dir, m) in &others {
                    if let Some(why) = cgo_reason(dir, m, &spec.rules.cgo_modules)? {
                        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
                        found = Some(format!("{} ({why})", name.unwrap_or_default()));
                        break;
                    }
                }
                found
            }
        },
    };
    let mut toolchain = toolchain;
    if let Some(why) = &cgo {
        for p in &spec.rules.cgo_packages {
            if !toolchain.packages.contains(p) {
                toolchain.packages.push(p.clone());
            }
        }
        ctx.reasons.push(format!(
            "cgo: {why}: CGO_ENABLED=1, {} in the build root",
            spec.rules.cgo_packages.join(", ")
        ));
    }
    let mut inp: Inputs = ctx.inputs();
    inp.fact("vendor", vendor)
        .var("cgo_enabled", if cgo.is_some() { "1" } else { "0" })
        .fact("vendor_dir", vendor_dir)
        .fact("requires", external)
        .var(
            "src_dir",
            match &ws {
                Some((w, _, _)) => {
                    format!("{}/{}", spec.source.dir.trim_end_matches('/'), w.member)
                }
                None => spec.source.dir.clone(),
            },
        )
        .fact("backports", toolchain.backports)
        .var("name", name.clone())
        .var("main", main)
        .var(
            "goflags",
            if vendor {
                "-mod=vendor"
            } else {
                "-mod=readonly"
            },
        );

    let entrypoint = spec.entrypoint("binary", &inp)?;
    let source_exclude = match ws {
        Some((_, _, ex)) => ex,
        None => ctx.source_excludes(&spec.source.exclude)?,
    };
    let runtime_profile = if cgo.is_some() {
        ctx.reasons.push(format!(
            "runtime {}: the binary links glibc (cgo) for {}/{}",
            spec.rules.cgo_runtime, ctx.opts.goos, ctx.opts.goarch
        ));
        spec.rules.cgo_runtime.clone()
    } else {
        ctx.reasons.push(format!(
            "runtime {}: a static binary (CGO_ENABLED=0) for {}/{}",
            spec.runtime.profile, ctx.opts.goos, ctx.opts.goarch
        ));
        spec.runtime.profile.clone()
    };
    let parts = Parts {
        toolchain,
        runtime_profile,
        inputs: inp,
        source_exclude,
        entrypoint,
        cmd: Vec::new(),
        ports: Vec::new(),
        version: None,
        requirements: vec![requirement],
    };
    let mut plan = finish(ctx, Lang::Go, &spec, parts)?;
    if let Some(why) = cgo {
        plan.arch_specific.push(format!(
            "cgo ({why}): its C code is compiled for each platform"
        ));
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn go_mod_parsing() {
        let m = parse_go_mod(
            "// comment\nmodule \"example.com/x/v2\" // trailing\n\ngo 1.22.1\ntoolchain go1.23.4\n\nrequire (\n\tgolang.org/x/text v0.3.0\n)\n",
            Path::new("go.mod"),
        )
        .unwrap();
        assert_eq!(m.module, "example.com/x/v2");
        assert_eq!(m.go.as_deref(), Some("1.22.1"));
        assert_eq!(m.toolchain.as_deref(), Some("go1.23.4"));
        assert!(m.requires);
        let m = parse_go_mod("module a\ngo 1.22\n", Path::new("go.mod")).unwrap();
        assert!(!m.requires);
        assert!(m.toolchain.is_none());
        let err = parse_go_mod("module a\ngo banana\n", Path::new("/x/go.mod")).unwrap_err();
        assert!(err.to_string().contains("/x/go.mod:2"), "{err}");
        assert!(parse_go_mod("go 1.22\n", Path::new("go.mod")).is_err());
        assert!(parse_go_mod("module a\nrequire (\n x v1\n", Path::new("go.mod")).is_err());
    }

    #[test]
    fn package_clauses() {
        assert_eq!(
            package_clause("// c\n/* x\n y */\npackage main\n").as_deref(),
            Some("main")
        );
        assert_eq!(
            package_clause("/* a */ package foo // x").as_deref(),
            Some("foo")
        );
        assert_eq!(package_clause("//go:build ignore\n\npackage main\n"), None);
        assert_eq!(
            package_clause("//go:build linux && !ignore_x\npackage main").as_deref(),
            Some("main")
        );
        assert_eq!(package_clause("packagemain"), None);
    }

    #[test]
    fn binary_names() {
        assert_eq!(module_binary_name("example.com/hello"), "hello");
        assert_eq!(module_binary_name("example.com/app/v2"), "app");
        assert_eq!(module_binary_name("hello"), "hello");
        assert_eq!(module_binary_name("v2"), "v2");
    }
}
