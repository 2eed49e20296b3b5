//! Node.js (npm, yarn, pnpm): package.json, the lockfile, engines.node, the entrypoint.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::common::{Ctx, Parts, finish, origin_of, read_opt};
use crate::error::{BuildersError, Result};
use crate::plan::{Constraint, Lang, Plan, Requirement, Toolchain};
use crate::spec::{self, Spec};
use crate::version::npm_range_satisfied;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Release {
    pub nodejs: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Rules {
    pub lockfiles: Vec<String>,
    pub yarn_lockfile: String,
    pub pnpm_lockfile: String,
    pub unsupported_lockfiles: BTreeMap<String, String>,
    pub package_managers: PackageManagers,
    pub native_helpers: Vec<String>,
    pub package_manager_bin: String,
    pub start_scripts: Vec<String>,
    pub fallback_entries: Vec<String>,
    pub output_dirs: Vec<String>,
    pub ts_sources: Vec<String>,
    pub prod_extra_files: Vec<String>,
    pub native_packages: Vec<String>,
    pub native_excludes: Vec<String>,
    /// Packages whose install scripts compile nothing (a funding message, a check): they
    /// bring no compiler.
    pub quiet_install_scripts: Vec<String>,
}

/// The pinned npm packages of the package managers, used when package.json has no
/// `packageManager` (never corepack: it downloads outside the npm registry).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PackageManagers {
    pub yarn_classic: String,
    pub yarn_berry: String,
    pub pnpm: String,
    pub pnpm_lockfile_v6: String,
}

pub(crate) type NodeSpec = Spec<Release, Rules>;

/// The package manager a project uses, from its lockfile (and `packageManager`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pm {
    Npm,
    YarnClassic,
    YarnBerry,
    Pnpm,
}

impl Pm {
    fn name(self) -> &'static str {
        match self {
            Pm::Npm => "npm",
            Pm::YarnClassic => "yarn classic",
            Pm::YarnBerry => "yarn berry",
            Pm::Pnpm => "pnpm",
        }
    }
}

/// `packageManager` of package.json (`yarn@4.5.3+sha512.…`) → (name, version).
pub(crate) fn package_manager_field(v: &str) -> Option<(String, String)> {
    let (name, rest) = v.trim().split_once('@')?;
    let version = rest.split('+').next()?.trim();
    let ok = !version.is_empty()
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
        && version.starts_with(|c: char| c.is_ascii_digit());
    ok.then(|| (name.to_string(), version.to_string()))
}

/// The major version of a `lockfileVersion: '9.0'` line of pnpm-lock.yaml.
fn pnpm_lock_major(text: &str) -> Option<u32> {
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("lockfileVersion:"))?;
    let v = line
        .split_once(':')?
        .1
        .trim()
        .trim_matches(|c| c == '\'' || c == '"');
    v.split('.').next()?.parse().ok()
}

/// Whether .yarnrc.yml selects the node-modules linker.
fn yarnrc_node_modules(text: &str) -> bool {
    text.lines().any(|l| {
        let l: String = l
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '"' && *c != '\'')
            .collect();
        l == "nodeLinker:node-modules"
    })
}

pub(crate) fn spec() -> Result<NodeSpec> {
    spec::load("node.toml", spec::NODE_TOML)
}

/// The parts of package.json the builder reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PackageJson {
    pub name: Option<String>,
    pub version: Option<String>,
    pub main: Option<String>,
    pub scripts: BTreeMap<String, String>,
    pub engines_node: Option<String>,
    /// dependencies + optionalDependencies + peerDependencies.
    pub deps: BTreeMap<String, String>,
    pub dev_deps: BTreeMap<String, String>,
    pub workspaces: bool,
    /// The `workspaces` globs (`["packages/*"]`, or yarn's `{"packages": […]}`).
    pub workspace_patterns: Vec<String>,
    /// `packageManager` (`pnpm@9.15.0+sha512…`).
    pub package_manager: Option<String>,
}

fn json_error(path: &Path, e: &serde_json::Error, hint: &str) -> BuildersError {
    BuildersError::Parse {
        path: path.to_path_buf(),
        line: (e.line() > 0).then_some(e.line()),
        detail: e.to_string(),
        hint: hint.into(),
    }
}

fn str_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn parse_package_json(text: &str, path: &Path) -> Result<PackageJson> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| json_error(path, &e, "fix package.json: it must be valid JSON"))?;
    let Some(o) = v.as_object() else {
        return Err(BuildersError::Parse {
            path: path.to_path_buf(),
            line: None,
            detail: "not a JSON object".into(),
            hint: "package.json must be an object like {\"name\": …}".into(),
        });
    };
    let s = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_string);
    let mut deps = str_map(o.get("dependencies"));
    deps.extend(str_map(o.get("optionalDependencies")));
    deps.extend(str_map(o.get("peerDependencies")));
    Ok(PackageJson {
        name: s("name"),
        version: s("version"),
        main: s("main"),
        scripts: str_map(o.get("scripts")),
        engines_node: o
            .get("engines")
            .and_then(|e| e.get("node"))
            .and_then(Value::as_str)
            .map(str::to_string),
        deps,
        dev_deps: str_map(o.get("devDependencies")),
        workspaces: o.get("workspaces").is_some(),
        workspace_patterns: o
            .get("workspaces")
            .map(|w| w.get("packages").unwrap_or(w))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        package_manager: s("packageManager"),
    })
}

/// What the lockfile says about the install.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Lock {
    /// Any package at all.
    pub any: bool,
    /// Any package the production install keeps.
    pub prod: bool,
    /// A dependency is a local directory (`file:`, a link): the lockfile does not pin it.
    pub local: bool,
    /// Packages with install scripts (`hasInstallScript`: node-gyp, prebuild-install,
    /// node-pre-gyp…), by lockfile path; a lockfileVersion 1 does not record them.
    pub install_scripts: Vec<String>,
    /// lockfileVersion 1: whether packages have install scripts is unknown.
    pub v1: bool,
    /// Packages for some CPUs only (`cpu`: prebuilt binaries npm picks by the machine's
    /// architecture), by lockfile path.
    pub cpu_specific: Vec<String>,
    /// Packages built for another C library than glibc (`libc: ["musl"]`: sharp's and Next.js's
    /// musl binaries), by lockfile path. npm before 9.4 (Debian's) installs them anyway; they
    /// never load on the glibc runtime bases, so they stay out of the image.
    pub other_libc: Vec<String>,
    /// Packages with install scripts whose prebuilt binary for Linux and glibc is an optional
    /// dependency present in the lockfile (sharp ≥ 0.33's `@img/sharp-linux-x64`, esbuild's
    /// `@esbuild/linux-arm64`…): lockfile path → the npm CPUs (`x64`, `arm64`) it has one for.
    /// On those CPUs the script only checks the binary: no compiler is needed.
    pub prebuilt: BTreeMap<String, Vec<String>>,
}

/// Whether an npm `os`/`cpu`/`libc` list (names, or `!name` to exclude; absent or empty: any)
/// admits `want`.
fn admits(list: Option<&Value>, want: &str) -> bool {
    let names: Vec<&str> = list
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if names.iter().any(|n| n.strip_prefix('!') == Some(want)) {
        return false;
    }
    let wanted: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !n.starts_with('!'))
        .collect();
    wanted.is_empty() || wanted.contains(&want)
}

/// The npm CPUs for which the package at `key` has a prebuilt Linux/glibc binary among its
/// optional dependencies in the lockfile.
fn prebuilt_cpus(pkgs: &serde_json::Map<String, Value>, key: &str, p: &Value) -> Vec<String> {
    let mut cpus: Vec<String> = Vec::new();
    let Some(opt) = p.get("optionalDependencies").and_then(Value::as_object) else {
        return cpus;
    };
    for name in opt.keys() {
        let Some(e) = crate::npmws::lock_resolve(pkgs, key, name).and_then(|at| pkgs.get(&at))
        else {
            continue;
        };
        // a platform package: it names the CPUs it is for
        let Some(for_cpus) = e.get("cpu").and_then(Value::as_array) else {
            continue;
        };
        if !admits(e.get("os"), "linux") || !admits(e.get("libc"), "glibc") {
            continue;
        }
        for c in ["x64", "arm64"] {
            if for_cpus.iter().any(|v| v.as_str() == Some(c)) && !cpus.iter().any(|x| x == c) {
                cpus.push(c.to_string());
            }
        }
    }
    cpus.sort();
    cpus
}

/// The package name of a lockfile path (`node_modules/a/node_modules/@s/b` → `@s/b`).
fn package_name(path: &str) -> &str {
    path.rsplit("node_modules/").next().unwrap_or(path)
}

/// Layer exclude patterns for lockfile paths (`node_modules/@img/sharp-linuxmusl-x64`): the
/// package under a layer rooted at `node_modules` and anywhere below (Next.js's standalone
/// tree, nested installs, pnpm's `.pnpm/…/node_modules`).
fn package_excludes(paths: &[String]) -> Vec<String> {
    let mut v: Vec<String> = paths
        .iter()
        .map(|k| package_name(k))
        .filter(|n| !n.is_empty())
        .flat_map(|n| {
            let n = globset::escape(n);
            [format!("**/node_modules/{n}"), n]
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

pub(crate) fn parse_lock(text: &str, path: &Path) -> Result<Lock> {
    let v: Value = serde_json::from_str(text).map_err(|e| {
        json_error(
            path,
            &e,
            "the lockfile is not valid JSON: regenerate it with `npm install --package-lock-only`",
        )
    })?;
    let mut lock = Lock::default();
    if let Some(pkgs) = v.get("packages").and_then(Value::as_object) {
        for (k, p) in pkgs {
            if k.is_empty() {
                continue;
            }
            lock.any = true;
            let flag = |f: &str| p.get(f).and_then(Value::as_bool).unwrap_or(false);
            if !flag("dev") {
                lock.prod = true;
            }
            if flag("hasInstallScript") {
                lock.install_scripts.push(k.clone());
                let cpus = prebuilt_cpus(pkgs, k, p);
                if !cpus.is_empty() {
                    lock.prebuilt.insert(k.clone(), cpus);
                }
            }
            if p.get("cpu").is_some() {
                lock.cpu_specific.push(k.clone());
            }
            if !admits(p.get("libc"), "glibc") {
                lock.other_libc.push(k.clone());
            }
            if flag("link")
                || p.get("resolved")
                    .and_then(Value::as_str)
                    .is_some_and(|r| r.starts_with("file:"))
            {
                lock.local = true;
            }
        }
    } else if let Some(deps) = v.get("dependencies").and_then(Value::as_object) {
        // lockfileVersion 1
        lock.v1 = true;
        for p in deps.values() {
            lock.any = true;
            if !p.get("dev").and_then(Value::as_bool).unwrap_or(false) {
                lock.prod = true;
            }
            if p.get("version")
                .and_then(Value::as_str)
                .is_some_and(|r| r.starts_with("file:"))
            {
                lock.local = true;
            }
        }
    }
    Ok(lock)
}

pub(crate) fn describe(dir: &Path) -> Vec<String> {
    let path = dir.join("package.json");
    match read_opt(&path)
        .ok()
        .flatten()
        .map(|t| parse_package_json(&t, &path))
    {
        Some(Ok(p)) => {
            let mut d = Vec::new();
            if let Some(n) = &p.name {
                d.push(format!("name {n}"));
            }
            if let Some(v) = &p.version {
                d.push(format!("version {v}"));
            }
            if d.is_empty() {
                vec!["package.json found".into()]
            } else {
                vec![format!("package.json found ({})", d.join(", "))]
            }
        }
        _ => vec!["package.json found".into()],
    }
}

/// Split a shell command into words, or None when it uses the shell beyond plain words
/// (operators, substitutions, globs, redirections).
pub(crate) fn shell_words(s: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => cur.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => cur.push(chars.next()?),
                        '$' | '`' => return None,
                        c => cur.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                cur.push(chars.next()?);
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            ';' | '&' | '|' | '<' | '>' | '$' | '`' | '(' | ')' | '*' | '?' | '{' | '}' | '#'
            | '~' => return None,
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Some(words)
}

/// `[K=V…] node ARGS…` → (env, ARGS); None when the start script is something else.
/// Variables and arguments of a `node …` start script.
pub(crate) type NodeStart = (Vec<(String, String)>, Vec<String>);

pub(crate) fn node_start(script: &str) -> Option<NodeStart> {
    let words = shell_words(script)?;
    let (env, i) = leading_env(&words);
    let prog = words.get(i)?;
    if prog != "node" && prog != "nodejs" {
        return None;
    }
    let args = words[i + 1..].to_vec();
    if args.is_empty() {
        return None;
    }
    Some((env, args))
}

/// The `VAR=value` words a command starts with (as a shell takes them), and the index of the
/// first word after them.
pub(crate) fn leading_env(words: &[String]) -> (Vec<(String, String)>, usize) {
    let mut env = Vec::new();
    for w in words {
        match w.split_once('=') {
            Some((k, v))
                if !k.is_empty()
                    && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !k.starts_with(|c: char| c.is_ascii_digit()) =>
            {
                env.push((k.to_string(), v.to_string()));
            }
            _ => break,
        }
    }
    let n = env.len();
    (env, n)
}

/// The next CLI's script in node_modules (what `next` in a package.json script runs).
pub(crate) const NEXT_CLI: &str = "node_modules/next/dist/bin/next";

/// `[VAR=value …] next start [args…]`: the environment and the arguments after `start`.
pub(crate) fn next_start(script: &str) -> Option<NodeStart> {
    let words = shell_words(script)?;
    let (env, i) = leading_env(&words);
    (words.get(i)? == "next" && words.get(i + 1)? == "start")
        .then(|| (env, words[i + 2..].to_vec()))
}

/// Remove `//` and `/* */` comments and trailing commas from JSONC (tsconfig.json).
fn strip_jsonc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let b: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut in_str = false;
    while i < b.len() {
        let c = b[i];
        if in_str {
            out.push(c);
            if c == '\\' {
                if let Some(n) = b.get(i + 1) {
                    out.push(*n);
                    i += 1;
                }
            } else if c == '"' {
                in_str = false;
            }
            i += 1;
            continue;
        }
        match (c, b.get(i + 1)) {
            ('"', _) => {
                in_str = true;
                out.push(c);
                i += 1;
            }
            ('/', Some('/')) => {
                while i < b.len() && b[i] != '\n' {
                    i += 1;
                }
            }
            ('/', Some('*')) => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == '*' && b[i + 1] == '/') {
                    i += 1;
                }
                i += 2;
            }
            (',', _) => {
                let mut j = i + 1;
                while j < b.len() && b[j].is_whitespace() {
                    j += 1;
                }
                if !matches!(b.get(j), Some('}') | Some(']')) {
                    out.push(c);
                }
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// `compilerOptions.outDir` of tsconfig.json, normalised (`./dist/` → `dist`).
pub(crate) fn tsconfig_out_dir(text: &str) -> Option<String> {
    let v: Value = serde_json::from_str(&strip_jsonc(text)).ok()?;
    let d = v.get("compilerOptions")?.get("outDir")?.as_str()?;
    let d = crate::filter::normalize(d);
    (!d.is_empty() && !d.starts_with("..")).then(|| d.to_string())
}

/// What the entrypoint detection found, and what it noted on the way.
#[derive(Debug, Default)]
pub(crate) struct Entry {
    pub found: Option<NodeStart>,
    pub reasons: Vec<String>,
}

/// The Next.js config file of the app when it asks for the standalone output
/// (`output: "standalone"`), which `next build` turns into `.next/standalone/server.js`.
fn next_standalone(ctx: &Ctx<'_>) -> Result<Option<String>> {
    for f in [
        "next.config.js",
        "next.config.mjs",
        "next.config.cjs",
        "next.config.ts",
    ] {
        if let Some(t) = ctx.read(f)? {
            let flat: String = t.chars().filter(|c| !c.is_whitespace()).collect();
            let standalone = [
                "output:\"standalone\"",
                "output:'standalone'",
                "output:`standalone`",
            ]
            .iter()
            .chain(&["\"output\":\"standalone\"", "'output':'standalone'"])
            .any(|p| flat.contains(p));
            return Ok(standalone.then(|| f.to_string()));
        }
    }
    Ok(None)
}

fn next_config_present(ctx: &Ctx<'_>) -> Option<&'static str> {
    [
        "next.config.js",
        "next.config.mjs",
        "next.config.cjs",
        "next.config.ts",
    ]
    .into_iter()
    .find(|f| ctx.is_file(f))
}

/// The start script names tried, in order.
fn start_scripts(rules: &Rules) -> &[String] {
    &rules.start_scripts
}

/// What the entrypoint detection tries, in order, for the error when nothing fits.
fn tried_entrypoints(pj: &PackageJson, rules: &Rules) -> Vec<String> {
    let mut tried = Vec::new();
    for name in start_scripts(rules) {
        match pj.scripts.get(name) {
            Some(s) => tried.push(format!(
                "scripts.{name} {s:?} (not a plain `node FILE` command)"
            )),
            None => tried.push(format!("scripts.{name} (absent)")),
        }
    }
    tried.push("Next.js `output: \"standalone\"` in next.config.* (absent)".into());
    tried.push("NestJS nest-cli.json (absent)".into());
    tried.push("package.json main (absent)".into());
    tried.push(format!(
        "the files {} (none found)",
        rules.fallback_entries.join(", ")
    ));
    tried
}

/// The start command: a `start:prod`/`start`/`serve` script that runs `node FILE`, a framework's
/// convention (Next.js standalone output, NestJS), `main`, or a conventional file.
pub(crate) fn entrypoint(
    ctx: &Ctx<'_>,
    pj: &PackageJson,
    rules: &Rules,
    next_standalone: Option<&str>,
) -> Result<Entry> {
    let mut e = Entry::default();
    // the Procfile's web process (Heroku's, a buildpack's), when it runs node
    let port = ctx
        .config
        .expose
        .first()
        .and_then(|p| p.split('/').next())
        .unwrap_or("3000")
        .to_string();
    match crate::procfile::web_process(ctx.dir, &port)? {
        crate::procfile::Web::Usable(w)
            if matches!(w.argv[0].as_str(), "node" | "nodejs") && w.argv.len() > 1 =>
        {
            e.reasons
                .push(format!("{} runs node{}", w.describe(), w.port_note(&port)));
            let mut env = w.env;
            if w.uses_port {
                env.push(("PORT".into(), port));
            }
            e.found = Some((env, w.argv[1..].to_vec()));
            return Ok(e);
        }
        crate::procfile::Web::Usable(w) => e.reasons.push(format!(
            "{} does not run node itself: the start scripts decide",
            w.describe()
        )),
        crate::procfile::Web::Unusable(at, command, why) => {
            e.reasons
                .push(format!("{at} web {command:?}: {why}: not used"));
        }
        crate::procfile::Web::Absent => {}
    }
    for name in start_scripts(rules) {
        let Some(script) = pj.scripts.get(name) else {
            continue;
        };
        if let Some(start) = node_start(script) {
            e.reasons
                .push(format!("scripts.{name} {script:?} runs node"));
            e.found = Some(start);
            return Ok(e);
        }
        // `next start` of a Next.js app without the standalone output: the next CLI (a
        // production dependency) run by node, over the production node_modules and .next
        if next_standalone.is_none()
            && pj.deps.contains_key("next")
            && let Some((env, args)) = next_start(script)
        {
            e.reasons.push(format!(
                "scripts.{name} {script:?} runs the Next.js server: node runs the next CLI of \
                 the production node_modules over the build's .next (its cache left out)"
            ));
            let mut argv = vec![NEXT_CLI.to_string(), "start".to_string()];
            argv.extend(args);
            e.found = Some((env, argv));
            return Ok(e);
        }
        e.reasons.push(format!(
            "scripts.{name} {script:?} is not a plain `node …` command: not used"
        ));
    }
    if let Some(cfg) = next_standalone {
        e.reasons.push(format!(
            "Next.js with output \"standalone\" ({cfg}): the image holds .next/standalone \
             (server.js and the modules it traced) with .next/static and public"
        ));
        e.found = Some((
            vec![("HOSTNAME".into(), "0.0.0.0".into())],
            vec!["server.js".into()],
        ));
        return Ok(e);
    }
    if let Some(cfg) = next_config_present(ctx) {
        return Err(BuildersError::Entrypoint {
            path: ctx.path(cfg),
            detail: "a Next.js app without `output: \"standalone\"` and without a \
                     `\"start\": \"next start\"` script (with next among its dependencies)"
                .into(),
            hint: "add `\"start\": \"next start\"` to package.json's scripts, or `output: \
                   \"standalone\"` to the Next.js config (a smaller image: \
                   .next/standalone/server.js with the modules it traced), or pass --entrypoint"
                .into(),
        });
    }
    if let Some(t) = ctx.read("nest-cli.json")? {
        let v: Value = serde_json::from_str(&strip_jsonc(&t)).map_err(|err| {
            json_error(
                &ctx.path("nest-cli.json"),
                &err,
                "fix nest-cli.json: it must be valid JSON",
            )
        })?;
        let entry_file = v
            .get("entryFile")
            .and_then(Value::as_str)
            .unwrap_or("main")
            .trim_end_matches(".js")
            .to_string();
        let out_dir = ["tsconfig.build.json", "tsconfig.json"]
            .iter()
            .find_map(|f| {
                ctx.read(f)
                    .ok()
                    .flatten()
                    .and_then(|t| tsconfig_out_dir(&t))
            })
            .unwrap_or_else(|| "dist".into());
        let file = format!("{out_dir}/{entry_file}.js");
        e.reasons
            .push(format!("NestJS (nest-cli.json): the build writes {file}"));
        e.found = Some((Vec::new(), vec![file]));
        return Ok(e);
    }
    if let Some(m) = &pj.main {
        e.reasons.push(format!("package.json main {m:?}"));
        e.found = Some((Vec::new(), vec![m.clone()]));
        return Ok(e);
    }
    if let Some(f) = rules.fallback_entries.iter().find(|f| ctx.is_file(f)) {
        e.reasons.push(format!("{f} found"));
        e.found = Some((Vec::new(), vec![f.clone()]));
    }
    Ok(e)
}

/// The project's package manager, its lockfile and the pinned npm package that provides it
/// (`None` for npm, which the build root has).
fn package_manager(
    ctx: &mut Ctx<'_>,
    pj: &PackageJson,
    rules: &Rules,
    pj_path: &Path,
) -> Result<(Pm, String, Option<String>)> {
    let field =
        match &pj.package_manager {
            Some(v) => Some(package_manager_field(v).ok_or_else(|| {
                BuildersError::Parse {
                    path: pj_path.to_path_buf(),
                    line: None,
                    detail: format!("packageManager {v:?} is not NAME@VERSION"),
                    hint:
                        "write it as \"pnpm@9.15.0\" or \"yarn@1.22.22\" (a hash suffix is allowed)"
                            .into(),
                }
            })?),
            None => None,
        };
    let npm_lock = rules.lockfiles.iter().find(|l| ctx.is_file(l)).cloned();
    let yarn = ctx.is_file(&rules.yarn_lockfile);
    let pnpm = ctx.is_file(&rules.pnpm_lockfile);
    let wanted = field.as_ref().map(|(n, _)| n.as_str());
    let chosen = match (wanted, &npm_lock, yarn, pnpm) {
        (Some("yarn"), _, true, _) => "yarn",
        (Some("pnpm"), _, _, true) => "pnpm",
        (Some("npm"), Some(_), _, _) => "npm",
        (Some(w @ ("yarn" | "pnpm" | "npm")), _, _, _) => {
            let lock = match w {
                "yarn" => rules.yarn_lockfile.clone(),
                "pnpm" => rules.pnpm_lockfile.clone(),
                _ => rules.lockfiles.join(" or "),
            };
            return Err(BuildersError::Unsupported {
                path: ctx.dir.to_path_buf(),
                what: format!("packageManager names {w} but there is no {lock}"),
                hint: format!(
                    "run `{w} install` and commit {lock}: the build installs exactly what it pins"
                ),
            });
        }
        (_, Some(_), _, _) => "npm",
        (_, None, _, true) => "pnpm",
        (_, None, true, false) => "yarn",
        _ => {
            if let Some((f, tool)) = rules
                .unsupported_lockfiles
                .iter()
                .find(|(f, _)| ctx.is_file(f))
            {
                return Err(BuildersError::Unsupported {
                    path: ctx.path(f),
                    what: format!("{f} found: {tool} is not supported yet"),
                    hint: "commit a lockfile of npm (package-lock.json), yarn (yarn.lock) or pnpm \
                           (pnpm-lock.yaml)"
                        .into(),
                });
            }
            if let Some((root, _, _)) = crate::npmws::enclosing_root(ctx.dir) {
                let rel = std::fs::canonicalize(ctx.dir)
                    .ok()
                    .and_then(|d| crate::common::rel_str(&root, &d))
                    .unwrap_or_else(|| "DIR".into());
                return Err(BuildersError::Unsupported {
                    path: root.join("package.json"),
                    what: format!(
                        "{} has no lockfile of its own: it is a package of the {} workspace at {} \
                         (the lockfile is there)",
                        ctx.dir.display(),
                        if root.join("pnpm-workspace.yaml").is_file() {
                            "pnpm"
                        } else if root.join("yarn.lock").is_file() {
                            "yarn"
                        } else {
                            "npm"
                        },
                        root.display()
                    ),
                    hint: format!(
                        "build it from the workspace root: `ocibuild build {} --workspace {rel}`, \
                         or give the package its own lockfile",
                        root.display()
                    ),
                });
            }
            return Err(BuildersError::Unsupported {
                path: ctx.dir.to_path_buf(),
                what: format!(
                    "no lockfile ({}, {} or {})",
                    rules.lockfiles.join(", "),
                    rules.yarn_lockfile,
                    rules.pnpm_lockfile
                ),
                hint: "run `npm install` (it writes package-lock.json), `yarn install` or \
                       `pnpm install`, and commit the lockfile: the build installs exactly what it pins"
                    .into(),
            });
        }
    };
    let version = field.as_ref().map(|(_, v)| v.clone());
    let major = |v: &str| v.split('.').next().and_then(|m| m.parse::<u32>().ok());
    match chosen {
        "npm" => {
            let lockfile = npm_lock.unwrap_or_default();
            ctx.reasons
                .push(format!("{lockfile} found: `npm ci` installs what it pins"));
            Ok((Pm::Npm, lockfile, None))
        }
        "yarn" => {
            let lockfile = rules.yarn_lockfile.clone();
            let text = ctx.read(&lockfile)?.unwrap_or_default();
            let berry = text.contains("__metadata:");
            let pm = if berry {
                Pm::YarnBerry
            } else {
                Pm::YarnClassic
            };
            if let Some(v) = &version {
                let field_berry = major(v).is_some_and(|m| m >= 2);
                if field_berry != berry {
                    return Err(BuildersError::Unsupported {
                        path: ctx.path(&lockfile),
                        what: format!(
                            "packageManager is yarn@{v} but {lockfile} was written by {}",
                            if berry {
                                "Yarn 2 or later"
                            } else {
                                "yarn classic (1.x)"
                            }
                        ),
                        hint: "run `yarn install` with the yarn packageManager names and commit \
                               the lockfile it writes"
                            .into(),
                    });
                }
            }
            if berry {
                let rc = ctx.read(".yarnrc.yml")?.unwrap_or_default();
                if !yarnrc_node_modules(&rc) {
                    return Err(BuildersError::Unsupported {
                        path: ctx.path(".yarnrc.yml"),
                        what: "Yarn Plug'n'Play (the default linker of Yarn 2+) is not supported"
                            .into(),
                        hint: "add `nodeLinker: node-modules` to .yarnrc.yml, run `yarn install` \
                               and commit the result"
                            .into(),
                    });
                }
            }
            let package = match (&version, berry) {
                (Some(v), false) => format!("yarn@{v}"),
                (Some(v), true) => format!("@yarnpkg/cli-dist@{v}"),
                (None, false) => rules.package_managers.yarn_classic.clone(),
                (None, true) => rules.package_managers.yarn_berry.clone(),
            };
            let how = if berry {
                "`yarn install --immutable`, production tree by `yarn workspaces focus --production`, node-modules linker"
            } else {
                "`yarn install --frozen-lockfile`, production tree by `--production`"
            };
            ctx.reasons.push(format!(
                "{lockfile} found ({}): {package} from the npm registry{}; {how}",
                pm.name(),
                if version.is_some() {
                    " (packageManager)"
                } else {
                    " (pinned default)"
                }
            ));
            Ok((pm, lockfile, Some(package)))
        }
        _ => {
            let lockfile = rules.pnpm_lockfile.clone();
            let text = ctx.read(&lockfile)?.unwrap_or_default();
            let lock_major = pnpm_lock_major(&text);
            let package = match (&version, lock_major) {
                (Some(v), _) => format!("pnpm@{v}"),
                (None, Some(m)) if m >= 9 => rules.package_managers.pnpm.clone(),
                (None, Some(6)) => rules.package_managers.pnpm_lockfile_v6.clone(),
                (None, m) => {
                    return Err(BuildersError::Unsupported {
                        path: ctx.path(&lockfile),
                        what: format!(
                            "pnpm lockfileVersion {} is not supported without packageManager",
                            m.map(|m| m.to_string()).unwrap_or_else(|| "(missing)".into())
                        ),
                        hint: "add \"packageManager\": \"pnpm@VERSION\" to package.json (the \
                               pnpm that wrote the lockfile), or upgrade the lockfile with a newer pnpm"
                            .into(),
                    });
                }
            };
            ctx.reasons.push(format!(
                "{lockfile} found: {package} from the npm registry{}; `pnpm install --frozen-lockfile` \
                 with the hoisted linker (a plain node_modules)",
                if version.is_some() { " (packageManager)" } else { " (pinned default)" }
            ));
            Ok((Pm::Pnpm, lockfile, Some(package)))
        }
    }
}

/// What a workspace package's build takes from its workspace root (npm or pnpm).
struct Ws {
    root: PathBuf,
    /// The root's package manager (npm or pnpm) and the pinned npm package of pnpm.
    pm: Pm,
    pm_package: Option<String>,
    /// How the install selects the app's packages: npm's `--workspace DIR
    /// --include-workspace-root`, pnpm's `--filter {./DIR}... --filter {.}`.
    install: Vec<String>,
    /// The app's directory relative to the root (`apps/api`).
    member: String,
    /// The directories whose files the image holds: the app, then the local packages it
    /// depends on at run time.
    image_members: Vec<String>,
    lockfile: String,
    /// Every workspace's package.json (what `npm ci` reads besides the root's and the lockfile).
    manifests: Vec<String>,
    /// The source copy's excludes (the root's `.dockerignore`, the other workspaces' files).
    source_exclude: Vec<String>,
    /// `--workspace DIR` (pnpm: `--filter {./DIR}`) of each package with a build script: local
    /// dependencies, then the app.
    build: Vec<String>,
    /// The root or a workspace the app needs has an install or prepare script.
    install_scripts: bool,
    /// Where the full install starts in the lockfile: the root (`""`), the app's directory and
    /// those of the local packages its build needs.
    install_roots: Vec<String>,
    /// The TypeScript sources of the local packages the build compiles (a build script and a
    /// tsconfig.json), left out of the image as the app's are.
    lib_excludes: Vec<String>,
}

const INSTALL_SCRIPTS: [&str; 4] = ["preinstall", "install", "postinstall", "prepare"];

/// A workspace root (npm: package.json `workspaces` and package-lock.json; pnpm:
/// pnpm-workspace.yaml and pnpm-lock.yaml): the workspace `--workspace` names (or the one with
/// a start script) is planned with the root as the build's context.
fn plan_workspace(
    mut ctx: Ctx<'_>,
    spec: NodeSpec,
    root_pj: &PackageJson,
    patterns: &[String],
) -> Result<Plan> {
    let rules = &spec.rules;
    let root = ctx.dir.to_path_buf();
    let root_pj_path = ctx.path("package.json");
    let pnpm_yaml = "pnpm-workspace.yaml";
    let any_lock = rules
        .lockfiles
        .iter()
        .chain([&rules.yarn_lockfile, &rules.pnpm_lockfile])
        .any(|l| ctx.is_file(l));
    if !any_lock {
        return Err(BuildersError::Unsupported {
            path: root_pj_path,
            what: format!(
                "a workspace root with no lockfile ({}, or {} for pnpm)",
                rules.lockfiles.join(" or "),
                rules.pnpm_lockfile
            ),
            hint: format!(
                "run `npm install` in {} (`pnpm install` for a pnpm workspace) and commit the \
                 lockfile: one lockfile at the root pins every workspace's dependencies, and the \
                 build installs exactly those",
                root.display()
            ),
        });
    }
    let (pm, lockfile, pm_package) = package_manager(&mut ctx, root_pj, rules, &root_pj_path)?;
    // package_manager's reason describes a single app's install: this one's follows below
    ctx.reasons.pop();
    let patterns: Vec<String> = match pm {
        Pm::Npm if root_pj.workspaces => patterns.to_vec(),
        Pm::Npm => {
            return Err(BuildersError::Unsupported {
                path: ctx.path(&lockfile),
                what: format!(
                    "{lockfile} at a root whose workspaces only {pnpm_yaml} lists: npm reads \
                     \"workspaces\" of package.json"
                ),
                hint: "add \"workspaces\" to package.json and run `npm install`, or use pnpm \
                       (\"packageManager\": \"pnpm@VERSION\", `pnpm install` writes pnpm-lock.yaml)"
                    .into(),
            });
        }
        Pm::Pnpm => {
            let listed = ctx
                .read(pnpm_yaml)?
                .map(|t| crate::npmws::pnpm_packages(&t))
                .unwrap_or_default();
            if listed.is_empty() {
                return Err(BuildersError::Unsupported {
                    path: ctx.path(pnpm_yaml),
                    what: format!(
                        "{} with \"workspaces\" in package.json but no `packages` in \
                         {pnpm_yaml}: pnpm reads its workspaces from {pnpm_yaml} only",
                        rules.pnpm_lockfile
                    ),
                    hint: format!(
                        "write the globs into {pnpm_yaml} (`packages:` then `  - \"apps/*\"` …), \
                         run `pnpm install` and commit the lockfile"
                    ),
                });
            }
            listed
        }
        Pm::YarnBerry if root_pj.workspaces => patterns.to_vec(),
        Pm::YarnClassic if root_pj.workspaces => {
            return Err(BuildersError::Unsupported {
                path: ctx.path(&lockfile),
                what: format!(
                    "{lockfile} found: yarn classic workspaces are not supported yet (npm, pnpm \
                     and Yarn 2+ workspaces are): yarn 1 has no `workspaces focus`, and its \
                     production install hoists every workspace's dependencies into one \
                     node_modules, so the image could not be limited to the app's packages"
                ),
                hint: "move the monorepo to Yarn 4 (\"packageManager\": \"yarn@4…\", \
                       `nodeLinker: node-modules` in .yarnrc.yml, `yarn install`), or to npm or \
                       pnpm workspaces; or write a Dockerfile"
                    .into(),
            });
        }
        Pm::YarnClassic | Pm::YarnBerry => {
            return Err(BuildersError::Unsupported {
                path: ctx.path(&lockfile),
                what: format!(
                    "{lockfile} at a root whose workspaces only {pnpm_yaml} lists: yarn reads \
                     \"workspaces\" of package.json"
                ),
                hint: "add \"workspaces\" to package.json and run `yarn install`".into(),
            });
        }
    };
    let yarn = pm == Pm::YarnBerry;
    let kind = match pm {
        Pm::Pnpm => "pnpm",
        Pm::YarnBerry => "yarn",
        _ => "npm",
    };
    let ws_file = if pm == Pm::Pnpm {
        pnpm_yaml
    } else {
        "package.json"
    };
    let members = crate::npmws::members(&root, &patterns)?;
    let labels = || {
        members
            .iter()
            .map(|m| m.label())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if members.is_empty() {
        return Err(BuildersError::Unsupported {
            path: ctx.path(ws_file),
            what: format!(
                "the workspaces of {ws_file} ({}) match no directory with a package.json",
                patterns.join(", ")
            ),
            hint: "fix the workspaces globs (such as \"packages/*\"), or build the app's own \
                   directory"
                .into(),
        });
    }
    let app = match &ctx.opts.workspace {
        Some(w) => crate::npmws::find(&members, w).ok_or_else(|| BuildersError::InvalidOption {
            option: "--workspace".into(),
            value: w.clone(),
            detail: format!(
                "the {kind} workspace root {} has no workspace {w}; its workspaces are {} — pass \
                 one of them, by directory or package name (as npm's -w or pnpm's --filter take it)",
                root.display(),
                labels()
            ),
        })?,
        None => {
            let apps: Vec<usize> = (0..members.len())
                .filter(|&i| {
                    rules
                        .start_scripts
                        .iter()
                        .any(|s| members[i].pj.scripts.contains_key(s))
                })
                .collect();
            match apps.as_slice() {
                [one] => *one,
                _ => {
                    let what = if apps.is_empty() {
                        format!(
                            "a {kind} workspace root, and none of its workspaces ({}) has a start \
                             script ({})",
                            labels(),
                            rules.start_scripts.join(", ")
                        )
                    } else {
                        format!(
                            "a {kind} workspace root with several apps (workspaces with a start \
                             script): {}",
                            apps.iter()
                                .map(|&i| members[i].label())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    };
                    let example = apps
                        .first()
                        .map_or(members[0].dir.as_str(), |&i| members[i].dir.as_str());
                    return Err(BuildersError::Unsupported {
                        path: root_pj_path,
                        what,
                        hint: format!(
                            "choose the app: `ocibuild build {} --workspace {example}` (a \
                             directory or a package name), or `ocibuild build {}`",
                            root.display(),
                            root.join(example).display()
                        ),
                    });
                }
            }
        }
    };
    let runtime_closure = crate::npmws::closure(&members, app, false);
    let build_closure = crate::npmws::closure(&members, app, true);
    let m = &members[app];
    let mut reasons = std::mem::take(&mut ctx.reasons);
    reasons.push(format!(
        "{kind} workspace root {} ({lockfile}): building the workspace {}{}",
        root.display(),
        m.label(),
        if ctx.opts.workspace.is_some() {
            " (--workspace, or its directory given)"
        } else {
            ", the only one with a start script"
        }
    ));
    if !runtime_closure.is_empty() {
        reasons.push(format!(
            "local dependencies in the image: {}",
            runtime_closure
                .iter()
                .map(|&i| members[i].label())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    // the other workspaces: only their package.json reaches the build (npm ci and pnpm's
    // frozen install read them all)
    let keep: BTreeSet<usize> = build_closure
        .iter()
        .copied()
        .chain(std::iter::once(app))
        .collect();
    let mut source_exclude = ctx.source_excludes(&spec.source.exclude)?;
    let mut left_out = Vec::new();
    for (i, o) in members.iter().enumerate() {
        if keep.contains(&i) {
            continue;
        }
        left_out.push(o.dir.clone());
        let dir = root.join(&o.dir);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .map_err(BuildersError::io(&dir))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "package.json" && n != "node_modules")
            .collect();
        names.sort();
        source_exclude.extend(
            names
                .iter()
                .map(|n| globset::escape(&format!("{}/{n}", o.dir))),
        );
    }
    if !left_out.is_empty() {
        reasons.push(format!(
            "other workspaces: only their package.json is copied (the install reads it): {}",
            left_out.join(", ")
        ));
    }
    let mut build = Vec::new();
    for &i in build_closure.iter().chain(std::iter::once(&app)) {
        if members[i].pj.scripts.contains_key("build") {
            match pm {
                Pm::Pnpm => build.extend(["--filter".to_string(), pnpm_dir(&members[i].dir)]),
                // `yarn workspaces foreach -R --from DIR`: the app and what it depends on,
                // dependencies first (-t), each one's build script where it has one
                Pm::YarnBerry => build = vec!["--from".to_string(), m.dir.clone()],
                _ => build.extend(["--workspace".to_string(), members[i].dir.clone()]),
            }
        }
    }
    let mut lib_excludes = Vec::new();
    for &i in &runtime_closure {
        let l = &members[i];
        let lib_dir = root.join(&l.dir);
        if l.pj.scripts.contains_key("build") && lib_dir.join("tsconfig.json").is_file() {
            lib_excludes.extend(
                rules
                    .ts_sources
                    .iter()
                    .map(|t| format!("{}/{t}", globset::escape(&l.dir))),
            );
            // its directories of nothing but TypeScript sources (`src/`) too, as the app's
            let lctx = Ctx {
                dir: &lib_dir,
                opts: ctx.opts,
                config: crate::config::AppConfig::default(),
                dockerignore: None,
                reasons: Vec::new(),
            };
            let out_dir = lctx
                .read("tsconfig.json")?
                .and_then(|t| tsconfig_out_dir(&t))
                .unwrap_or_else(|| "dist".into());
            lib_excludes.extend(
                ts_only_dirs(&lctx, &rules.ts_sources, &out_dir)?
                    .iter()
                    .map(|d| format!("{}/{d}", globset::escape(&l.dir))),
            );
        }
    }
    let install_scripts = std::iter::once(root_pj)
        .chain(keep.iter().map(|&i| &members[i].pj))
        .any(|p| INSTALL_SCRIPTS.iter().any(|s| p.scripts.contains_key(*s)))
        // yarn's .yarn (patches, plugins, releases) is read by the install too
        || (yarn && root.join(".yarn").is_dir());
    if yarn && m.pj.name.is_none() {
        return Err(BuildersError::Unsupported {
            path: root.join(&m.dir).join("package.json"),
            what: format!(
                "the yarn workspace {} has no \"name\": `yarn workspaces focus` takes a name",
                m.dir
            ),
            hint: "give its package.json a \"name\" and run `yarn install`".into(),
        });
    }
    let install = match pm {
        // `yarn workspaces focus NAME --production` makes the app's production tree
        Pm::YarnBerry => m.pj.name.iter().cloned().collect(),
        Pm::Pnpm => vec![
            "--filter".to_string(),
            format!("{}...", pnpm_dir(&m.dir)),
            "--filter".to_string(),
            "{.}".to_string(),
        ],
        _ => vec![
            "--workspace".to_string(),
            m.dir.clone(),
            "--include-workspace-root".to_string(),
        ],
    };
    let mut manifests: Vec<String> = members
        .iter()
        .map(|m| format!("{}/package.json", m.dir))
        .collect();
    if pm == Pm::Pnpm {
        manifests.push(pnpm_yaml.to_string());
    }
    if yarn {
        manifests.push(".yarnrc.yml".to_string());
    }
    if let Some(p) = &pm_package {
        reasons.push(format!(
            "{p} from the npm registry{}",
            if root_pj.package_manager.is_some() {
                " (packageManager)"
            } else {
                " (pinned default)"
            }
        ));
    }
    let ws = Ws {
        pm,
        pm_package,
        install,
        member: m.dir.clone(),
        image_members: std::iter::once(app)
            .chain(runtime_closure.iter().copied())
            .map(|i| members[i].dir.clone())
            .collect(),
        lockfile,
        manifests,
        source_exclude,
        build,
        install_scripts,
        install_roots: [String::new(), m.dir.clone()]
            .into_iter()
            .chain(build_closure.iter().map(|&i| members[i].dir.clone()))
            .collect(),
        lib_excludes,
        root: root.clone(),
    };
    let member_dir = root.join(&m.dir);
    ctx.reasons = reasons;
    let mctx = ctx.into_member(&member_dir)?;
    let pj_path = member_dir.join("package.json");
    let text = crate::common::read_opt(&pj_path)?.unwrap_or_default();
    plan_app(mctx, &spec, m.pj.clone(), &text, Some(ws))
}

/// pnpm's filter selector of a workspace directory: `{./apps/api}`.
fn pnpm_dir(dir: &str) -> String {
    format!("{{./{dir}}}")
}

pub(crate) fn plan(ctx: Ctx<'_>) -> Result<Plan> {
    let spec = spec()?;
    let pj_path = ctx.path("package.json");
    let text = ctx
        .read("package.json")?
        .ok_or_else(|| BuildersError::NotDetected {
            dir: ctx.dir.to_path_buf(),
            looked_for: "package.json".into(),
        })?;
    let pj = parse_package_json(&text, &pj_path)?;
    if let Some(patterns) = crate::npmws::root_patterns(ctx.dir, &pj) {
        return plan_workspace(ctx, spec, &pj, &patterns);
    }
    if let Some(w) = &ctx.opts.workspace {
        return Err(BuildersError::InvalidOption {
            option: "--workspace".into(),
            value: w.clone(),
            detail: format!(
                "{} is not a workspace root (its package.json has no \"workspaces\" and there is \
                 no pnpm-workspace.yaml with `packages`); \
                 build the app's directory without --workspace",
                ctx.dir.display()
            ),
        });
    }
    plan_app(ctx, &spec, pj, &text, None)
}

/// The plan of one app: a plain one, or a workspace package (`ws`) of an npm workspace root.
fn plan_app(
    mut ctx: Ctx<'_>,
    spec: &NodeSpec,
    pj: PackageJson,
    text: &str,
    ws: Option<Ws>,
) -> Result<Plan> {
    let rules = &spec.rules;
    let pj_path = ctx.path("package.json");

    // Lockfile and package manager.
    let (pm, lockfile, pm_package) = match &ws {
        Some(w) if w.pm == Pm::Pnpm => {
            ctx.reasons.push(format!(
                "{}: `pnpm install --frozen-lockfile {}` installs the root's and this workspace's \
                 dependencies (and its local packages'), not the other workspaces'; `pnpm deploy \
                 --prod` then makes the app's production tree (pnpm's links into \
                 node_modules/.pnpm, relative, the local packages copied in)",
                w.lockfile,
                w.install.join(" ")
            ));
            (w.pm, w.lockfile.clone(), w.pm_package.clone())
        }
        Some(w) if w.pm == Pm::YarnBerry => {
            ctx.reasons.push(format!(
                "{}: `yarn install --immutable` installs every workspace for the build (yarn \
                 has no filtered full install), then `yarn workspaces focus {} --production` \
                 leaves the app's production tree (node-modules linker), not the other \
                 workspaces'",
                w.lockfile,
                w.install.join(" ")
            ));
            (w.pm, w.lockfile.clone(), w.pm_package.clone())
        }
        Some(w) => {
            ctx.reasons.push(format!(
                "{}: `npm ci --workspace {} --include-workspace-root` installs the root's and \
                 this workspace's dependencies from it, not the other workspaces'",
                w.lockfile, w.member
            ));
            (Pm::Npm, w.lockfile.clone(), None)
        }
        None => package_manager(&mut ctx, &pj, rules, &pj_path)?,
    };
    let lock_path = match &ws {
        Some(w) => w.root.join(&lockfile),
        None => ctx.path(&lockfile),
    };
    let lock_text = read_opt(&lock_path)?.unwrap_or_default();
    let mut lock = if pm == Pm::Npm {
        parse_lock(&lock_text, &lock_path)?
    } else {
        // yarn.lock and pnpm-lock.yaml do not say which packages run install scripts: the
        // packages native addons are built with (node-gyp, prebuild-install…) tell.
        let helper = rules
            .native_helpers
            .iter()
            .filter(|h| lock_text.contains(h.as_str()))
            // the longest name that matches (node-gyp-build, not node-gyp)
            .max_by_key(|h| h.len());
        Lock {
            any: !pj.deps.is_empty() || !pj.dev_deps.is_empty(),
            prod: !pj.deps.is_empty(),
            local: ["file:", "link:", "portal:"]
                .iter()
                .any(|p| lock_text.contains(p)),
            install_scripts: helper
                .map(|h| vec![h.trim_end_matches('@').to_string()])
                .unwrap_or_default(),
            v1: false,
            cpu_specific: Vec::new(),
            other_libc: Vec::new(),
            prebuilt: BTreeMap::new(),
        }
    };

    // a workspace: only the packages the install of this app reaches count (another app's
    // native addon does not make this one's layers native)
    if let Some(w) = &ws
        && let Some(reach) = crate::npmws::lock_reach(&lock_text, &w.install_roots)
    {
        lock.install_scripts.retain(|k| reach.contains(k));
        lock.cpu_specific.retain(|k| reach.contains(k));
        lock.other_libc.retain(|k| reach.contains(k));
    }

    // Node.js version.
    let rel = spec.release(ctx.distro())?;
    let distro = ctx.distro();
    let requirements: Vec<Requirement> = pj
        .engines_node
        .iter()
        .map(|range| Requirement {
            what: "Node.js".into(),
            constraint: Constraint::NpmRange(range.clone()),
            origin: format!(
                "{}, engines.node",
                origin_of("package.json", text, &["\"engines\"", "\"node\""])
            ),
            hint: "install a Node.js that engines.node accepts on the host, or drop \
                   --toolchain host"
                .into(),
        })
        .collect();
    match &pj.engines_node {
        Some(range) => {
            let ok =
                npm_range_satisfied(range, &rel.nodejs).map_err(|detail| BuildersError::Parse {
                    path: pj_path.clone(),
                    line: None,
                    detail: format!("engines.node {range:?}: {detail}"),
                    hint: "write a semver range such as \">=18\", \"^20\" or \"18 || 20\"".into(),
                })?;
            if ok {
                ctx.reasons.push(format!(
                    "toolchain: Node.js {} of Debian {distro} satisfies engines.node {range:?}",
                    rel.nodejs
                ));
            } else if ctx.opts.toolchain_host {
                ctx.reasons.push(format!(
                    "warning: engines.node {range:?} is not satisfied by the runtime's Node.js {} \
                     (Debian {distro}); building with the host's toolchain anyway",
                    rel.nodejs
                ));
            } else {
                let hint = if distro == "bookworm" {
                    "pass --distro trixie (newer Node.js), or --toolchain host"
                } else {
                    "widen engines.node, or pass --toolchain host (the runtime stays Debian's Node.js)"
                };
                return Err(BuildersError::Version {
                    path: pj_path,
                    detail: format!(
                        "engines.node {range:?} does not accept Node.js {}, the version Debian {distro} has",
                        rel.nodejs
                    ),
                    hint: hint.into(),
                });
            }
        }
        None => ctx.reasons.push(format!(
            "toolchain: Node.js {} of Debian {distro} (package.json has no engines.node)",
            rel.nodejs
        )),
    }

    // Entrypoint.
    let mut image_env = Vec::new();
    let mut entry_args: Vec<String> = Vec::new();
    let next_standalone = next_standalone(&ctx)?;
    if let (Some(cfg), Some(w)) = (&next_standalone, &ws) {
        return Err(BuildersError::Unsupported {
            path: ctx.path(cfg),
            what: format!(
                "a Next.js app with `output: \"standalone\"` in the workspace {}: its \
                 standalone output nests the workspace layout, which is not supported yet",
                w.root.display()
            ),
            hint: "write a Dockerfile that runs `npm run build` in the workspace and copies \
                   .next/standalone, or pass --entrypoint"
                .into(),
        });
    }
    if !ctx.entrypoint_overridden() {
        let found = if let Some((m, origin)) = ctx.main() {
            ctx.reasons
                .push(format!("entrypoint: node {m} (from {origin})"));
            Some((Vec::new(), vec![m]))
        } else {
            let ep = entrypoint(&ctx, &pj, rules, next_standalone.as_deref())?;
            ctx.reasons.extend(ep.reasons);
            ep.found.map(|(env, args)| {
                ctx.reasons
                    .push(format!("entrypoint: node {}", args.join(" ")));
                (env, args)
            })
        };
        match found {
            Some((env, args)) => {
                image_env = env;
                entry_args = args;
            }
            None => {
                return Err(BuildersError::Entrypoint {
                    path: pj_path,
                    detail: format!(
                        "cannot tell how to start the app; tried: {}",
                        tried_entrypoints(&pj, rules).join("; ")
                    ),
                    hint:
                        "add \"scripts\": {\"start\": \"node server.js\"} to package.json (a plain \
                           `node FILE` command: the image has no npm to run anything else), set \
                           \"main\", or pass --entrypoint"
                            .into(),
                });
            }
        }
    }

    // TypeScript compiled into an output directory: its sources stay out of the image.
    // a workspace builds its local dependencies that have a build script too
    let build_script = match &ws {
        Some(w) => !w.build.is_empty(),
        None => pj.scripts.contains_key("build"),
    };
    let app_build_script = pj.scripts.contains_key("build");
    let mut app_excludes = ctx.root_dotfiles()?;
    if entry_args.first().is_some_and(|a| a == NEXT_CLI) {
        // next build's own cache (webpack/turbopack, often hundreds of MB), never read by
        // `next start`
        app_excludes.push(".next/cache".into());
    }
    let entry_file = entry_args.iter().find(|a| !a.starts_with('-'));
    let entry_is_ts = entry_file.is_some_and(|f| {
        [".ts", ".tsx", ".mts", ".cts"]
            .iter()
            .any(|e| f.ends_with(e))
    });
    if app_build_script && !entry_is_ts {
        let out_dir = ctx
            .read("tsconfig.json")?
            .and_then(|t| tsconfig_out_dir(&t))
            .or_else(|| {
                entry_file
                    .and_then(|f| {
                        crate::filter::normalize(f)
                            .split('/')
                            .next()
                            .map(str::to_string)
                    })
                    .filter(|d| rules.output_dirs.contains(d))
            })
            .or_else(|| rules.output_dirs.iter().find(|d| ctx.is_dir(d)).cloned());
        let has_ts = ctx.is_file("tsconfig.json")
            || !crate::common::find_by_extension(ctx.dir, &["ts".to_string()], 4, 1).is_empty();
        if let (Some(d), true) = (out_dir, has_ts) {
            ctx.reasons.push(format!(
                "TypeScript compiled into {d}/ by scripts.build: .ts sources left out of the app layer"
            ));
            app_excludes.extend(rules.ts_sources.iter().cloned());
            // a directory of nothing but TypeScript sources (`src/`) stays out whole: left
            // behind empty, it would be noise in the image
            app_excludes.extend(ts_only_dirs(&ctx, &rules.ts_sources, &d)?);
        }
    }

    let install_scripts = INSTALL_SCRIPTS.iter().any(|s| pj.scripts.contains_key(*s))
        || ws.as_ref().is_some_and(|w| w.install_scripts);
    // a pnpm workspace: `pnpm deploy --offline` makes the production tree from the store the
    // full install filled, so that install always runs
    let pnpm_ws = ws.as_ref().is_some_and(|w| w.pm == Pm::Pnpm);
    let full_install = build_script || install_scripts || pnpm_ws;
    if !full_install {
        ctx.reasons
            .push("no build or install script: only the production install runs".into());
    }
    let mut prod_files = vec![lockfile.clone()];
    let lock_dir = ws.as_ref().map_or(ctx.dir, |w| w.root.as_path());
    prod_files.extend(
        rules
            .prod_extra_files
            .iter()
            .filter(|f| lock_dir.join(f).is_file())
            .cloned(),
    );
    let lock_keys = if pnpm_ws {
        // `pnpm deploy` copies the local packages (built) into node_modules: their content,
        // not the lockfile, keys it
        ctx.reasons.push(
            "pnpm deploy copies the local packages into node_modules: the layer is keyed by its \
             content"
                .into(),
        );
        Vec::new()
    } else if let Some(w) = &ws {
        // the workspaces are links to their directories: the lockfile and every workspace's
        // package.json say what is installed
        let mut k = vec!["package.json".to_string()];
        k.extend(prod_files.iter().cloned());
        k.extend(w.manifests.iter().cloned());
        k
    } else if lock.local {
        ctx.reasons.push(
            "a dependency is a local directory: node_modules is keyed by its content, not the lockfile"
                .into(),
        );
        Vec::new()
    } else {
        let mut k = vec!["package.json".to_string()];
        k.extend(prod_files.iter().cloned());
        k
    };
    let prod_deps = (lock.prod || !pj.deps.is_empty()) && next_standalone.is_none();
    if next_standalone.is_some() {
        ctx.reasons.push(
            "Next.js standalone output: no separate production install (the build traced the modules the server loads)"
                .into(),
        );
    } else if !prod_deps {
        ctx.reasons
            .push("no production dependencies: no node_modules layer".into());
    }

    // Install scripts (native addons: node-gyp, prebuild-install and node-pre-gyp fallbacks)
    // need a compiler, make and python3 in the build root; Node's headers come from the
    // release's libnode-dev (npm_config_nodedir), never from a download.
    // a package whose install script only checks the prebuilt binary it has for this platform
    // (sharp ≥ 0.33, esbuild…) needs no compiler
    let npm_cpu = if ctx.opts.goarch == "arm64" {
        "arm64"
    } else {
        "x64"
    };
    let (prebuilt, compiled): (Vec<String>, Vec<String>) =
        std::mem::take(&mut lock.install_scripts)
            .into_iter()
            .partition(|k| {
                lock.prebuilt
                    .get(k)
                    .is_some_and(|cpus| cpus.iter().any(|c| c == npm_cpu))
            });
    let (quiet, compiled): (Vec<String>, Vec<String>) = compiled.into_iter().partition(|k| {
        let name = package_name(k);
        k.contains("node_modules/") && rules.quiet_install_scripts.iter().any(|q| q == name)
    });
    lock.install_scripts = compiled;
    if !quiet.is_empty() {
        ctx.reasons.push(format!(
            "{lockfile}: {} whose install scripts compile nothing ({}): no compiler for them",
            plural_packages(quiet.len()),
            short_names(&quiet)
        ));
    }
    if !prebuilt.is_empty() {
        ctx.reasons.push(format!(
            "{lockfile}: {} with install scripts that find their prebuilt binary for linux/{} in the lockfile ({}): no compiler for them",
            plural_packages(prebuilt.len()),
            ctx.opts.goarch,
            short_names(&prebuilt)
        ));
    }
    let native = lock.v1 || !lock.install_scripts.is_empty();
    let native_what = if lock.v1 {
        format!("{lockfile} (lockfileVersion 1) does not record install scripts")
    } else if pm != Pm::Npm {
        format!(
            "{lockfile} names {}, which builds native addons",
            lock.install_scripts.join(", ")
        )
    } else {
        format!(
            "{lockfile}: {} with install scripts ({})",
            plural_packages(lock.install_scripts.len()),
            short_names(&lock.install_scripts)
        )
    };
    if native {
        ctx.reasons.push(format!(
            "{native_what}: the build root gets {} for native addons",
            rules.native_packages.join(", ")
        ));
    }
    if !lock.other_libc.is_empty() {
        ctx.reasons.push(format!(
            "{lockfile}: {} for another C library than glibc ({}): npm installs them, the image leaves them out (they never load on Debian)",
            plural_packages(lock.other_libc.len()),
            short_names(&lock.other_libc)
        ));
    }

    if let Some(w) = ws.as_ref().filter(|_| !pnpm_ws) {
        app_excludes = app_excludes
            .iter()
            .map(|e| format!("{}/{e}", globset::escape(&w.member)))
            .collect();
    }
    let yarn_ws = ws.as_ref().is_some_and(|w| w.pm == Pm::YarnBerry);
    let ws_install = ws
        .as_ref()
        .filter(|_| !yarn_ws)
        .map_or_else(Vec::new, |w| w.install.clone());
    let ws_focus = ws
        .as_ref()
        .filter(|_| yarn_ws)
        .map_or_else(Vec::new, |w| w.install.clone());
    // pnpm 10 deploys a workspace package without injected workspace packages only with
    // --legacy (pnpm 8 and 9 have no such flag)
    let pnpm_major = pm_package
        .as_deref()
        .and_then(|p| p.strip_prefix("pnpm@"))
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.parse::<u32>().ok());
    let pnpm_deploy_flags = if pnpm_ws && pnpm_major.is_some_and(|m| m >= 10) {
        vec!["--legacy".to_string()]
    } else {
        Vec::new()
    };
    let mut inp = ctx.inputs();
    inp.fact("workspace", ws.is_some())
        .fact("pnpm_ws", pnpm_ws)
        // pnpm hoists a link to the deployed package itself into .pnpm/node_modules, aimed at
        // its workspace directory: dangling in the image
        .list(
            "pnpm_nm_excludes",
            pj.name
                .iter()
                .filter(|_| pnpm_ws)
                .map(|n| format!(".pnpm/node_modules/{}", globset::escape(n)))
                .collect(),
        )
        .list("ws_focus", ws_focus)
        .list("pnpm_deploy", pnpm_deploy_flags)
        .list(
            "pnpm_deploy_filter",
            ws.as_ref().filter(|_| pnpm_ws).map_or_else(Vec::new, |w| {
                vec![format!("--filter={}", pnpm_dir(&w.member))]
            }),
        )
        .fact(
            "ws_lock_inputs",
            ws.as_ref().is_some_and(|w| !w.install_scripts),
        )
        .list("ws_install", ws_install)
        .list(
            "ws_build",
            ws.as_ref().map_or_else(Vec::new, |w| w.build.clone()),
        )
        .list(
            "ws_inputs",
            ws.as_ref().map_or_else(Vec::new, |w| w.manifests.clone()),
        );
    inp.fact("build_script", build_script)
        .fact("native", native)
        .fact("npm", pm == Pm::Npm)
        .fact("yarn", matches!(pm, Pm::YarnClassic | Pm::YarnBerry))
        .fact("yarn_classic", pm == Pm::YarnClassic)
        .fact("yarn_berry", pm == Pm::YarnBerry)
        .fact("pnpm", pm == Pm::Pnpm)
        .var("pm_package", pm_package.clone().unwrap_or_default())
        .fact("full_install", full_install)
        .fact(
            "deps",
            lock.any || !pj.deps.is_empty() || !pj.dev_deps.is_empty(),
        )
        .fact("prod_deps", prod_deps)
        .fact("next_standalone", next_standalone.is_some())
        .var("lockfile", lockfile.clone())
        .list("prod_files", prod_files)
        .list("native_excludes", rules.native_excludes.clone())
        .list("libc_excludes", package_excludes(&lock.other_libc))
        .list("lock_keys", lock_keys)
        .list("app_excludes", app_excludes)
        .list("args", entry_args.clone());
    let entrypoint = if entry_args.is_empty() {
        Vec::new()
    } else {
        spec.entrypoint("node", &inp)?
    };
    let source_exclude = match &ws {
        Some(w) => w.source_exclude.clone(),
        None => ctx.source_excludes(&spec.source.exclude)?,
    };
    let runtime_profile = spec.runtime.profile.clone();
    ctx.reasons.push(format!(
        "runtime {runtime_profile}: Debian {distro}'s Node.js {} (no npm)",
        rel.nodejs
    ));
    let toolchain = Toolchain {
        profile: spec.toolchain.profile.clone(),
        packages: if native {
            rules.native_packages.clone()
        } else {
            Vec::new()
        },
        backports: false,
        path_prepend: if pm_package.is_some() {
            vec![rules.package_manager_bin.clone()]
        } else {
            Vec::new()
        },
        version: rel.nodejs.clone(),
        host_tools: Vec::new(),
    };
    for (k, v) in image_env {
        ctx.config.env.entry(k).or_insert(v);
    }
    let parts = Parts {
        toolchain,
        runtime_profile,
        inputs: inp,
        source_exclude,
        entrypoint,
        cmd: Vec::new(),
        ports: Vec::new(),
        version: pj.version.clone(),
        requirements,
    };
    let mut arch_specific = Vec::new();
    if native {
        arch_specific.push(native_what);
    }
    if !lock.cpu_specific.is_empty() {
        arch_specific.push(format!(
            "{lockfile}: {} chosen by the machine's CPU ({})",
            plural_packages(lock.cpu_specific.len()),
            short_names(&lock.cpu_specific)
        ));
    }
    if ctx.path("binding.gyp").is_file() {
        arch_specific.push("binding.gyp: the app builds a native addon of its own".into());
    }
    if let Some(w) = ws.as_ref().filter(|_| !pnpm_ws) {
        // ocibuild.toml's relative writable directories are the app's, under its directory
        let base = format!("{}/{}", spec.image.workdir.trim_end_matches('/'), w.member);
        for d in ctx
            .config
            .writable
            .iter_mut()
            .filter(|d| !d.starts_with('/'))
        {
            *d = format!("{base}/{d}");
        }
    }
    let mut plan = finish(ctx, Lang::Node, spec, parts)?;
    plan.arch_specific = arch_specific;
    if let Some(w) = ws.as_ref().filter(|_| !pnpm_ws) {
        workspace_layout(&mut plan, w)?;
    }
    Ok(plan)
}

/// A workspace package's image: the app and its local dependencies keep their directories
/// under `/app` (the hoisted `node_modules` links to them are relative), the app's is the
/// working directory; nothing of the other workspaces.
fn workspace_layout(plan: &mut Plan, w: &Ws) -> Result<()> {
    let prefix = |m: &str, p: &str| format!("{}/{p}", globset::escape(m));
    let member_prefix = format!("{}/", globset::escape(&w.member));
    for l in plan.layers.iter_mut().filter(|l| l.name == "app") {
        let mut exclude = Vec::new();
        for e in &l.exclude {
            if e == "**/node_modules" {
                // npm nests a workspace's own versions in its node_modules: they stay
                continue;
            }
            if e.starts_with("**/") || e.starts_with(&member_prefix) {
                exclude.push(e.clone());
            } else {
                exclude.extend(w.image_members.iter().map(|m| prefix(m, e)));
            }
        }
        exclude.extend(w.lib_excludes.iter().cloned());
        // the local packages' dotfiles, as the app's
        for m in w.image_members.iter().skip(1) {
            let dir = w.root.join(m);
            let mut dots: Vec<String> = std::fs::read_dir(&dir)
                .map_err(BuildersError::io(&dir))?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with('.'))
                .map(|n| prefix(m, &globset::escape(&n)))
                .collect();
            dots.sort();
            exclude.extend(dots);
        }
        // `DIR/*`, not `DIR`: each entry keeps its path below the layer's root (a copy with
        // `--parents` of a literal directory drops the directory's own path)
        l.include = w
            .image_members
            .iter()
            .map(|m| format!("{}/*", globset::escape(m)))
            .collect();
        l.exclude = exclude;
    }
    plan.config.workdir = format!("{}/{}", plan.config.workdir.trim_end_matches('/'), w.member);
    Ok(())
}

fn plural_packages(n: usize) -> String {
    format!("{n} package{}", if n == 1 { "" } else { "s" })
}

/// Up to five package names of lockfile paths (`node_modules/a/node_modules/b` → `b`).
fn short_names(paths: &[String]) -> String {
    let names: Vec<&str> = paths.iter().take(5).map(|k| package_name(k)).collect();
    format!(
        "{}{}",
        names.join(", "),
        if paths.len() > 5 { ", …" } else { "" }
    )
}

/// The top-most directories of the app whose files are all TypeScript sources (`ts_sources`
/// globs), the output directory and its parents aside, escaped as literal globs.
fn ts_only_dirs(ctx: &Ctx<'_>, ts_sources: &[String], out_dir: &str) -> Result<Vec<String>> {
    let ts = crate::filter::glob_filter(&[], ts_sources)?;
    let files = ctx.source_files(&[".git".to_string(), "**/node_modules".to_string()])?;
    // directory -> whether every file under it is a TypeScript source
    let mut all_ts: BTreeMap<String, bool> = BTreeMap::new();
    for f in &files {
        let is_ts = ts.is_excluded(f);
        let mut p = f.as_str();
        while let Some((d, _)) = p.rsplit_once('/') {
            *all_ts.entry(d.to_string()).or_insert(true) &= is_ts;
            p = d;
        }
    }
    let out = crate::filter::normalize(out_dir);
    let keep = |d: &str| d == out || out.starts_with(&format!("{d}/")) || d.starts_with('.');
    let picked: Vec<&String> = all_ts
        .iter()
        .filter(|(d, all)| **all && !keep(d))
        .map(|(d, _)| d)
        .collect();
    Ok(picked
        .iter()
        .filter(|d| !picked.iter().any(|a| d.starts_with(&format!("{a}/"))))
        .map(|d| globset::escape(d))
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn start_scripts() {
        let s = |x: &str| node_start(x).map(|(e, a)| (e, a.join(" ")));
        assert_eq!(s("node server.js"), Some((vec![], "server.js".into())));
        assert_eq!(
            s("node --enable-source-maps dist/index.js --port 80"),
            Some((
                vec![],
                "--enable-source-maps dist/index.js --port 80".into()
            ))
        );
        assert_eq!(
            s("NODE_ENV=production node 'my app.js'"),
            Some((
                vec![("NODE_ENV".into(), "production".into())],
                "my app.js".into()
            ))
        );
        assert_eq!(s("next start"), None);
        assert_eq!(s("node a.js && node b.js"), None);
        assert_eq!(s("node $ENTRY"), None);
        assert_eq!(s("node"), None);
        assert_eq!(s("ts-node src/index.ts"), None);
    }

    #[test]
    fn words() {
        assert_eq!(
            shell_words(r#"a "b c" 'd e' f\ g"#).unwrap(),
            vec!["a", "b c", "d e", "f g"]
        );
        assert_eq!(shell_words("a 'unclosed"), None);
        assert_eq!(shell_words("a | b"), None);
    }

    #[test]
    fn tsconfig() {
        let t = r#"{
  // comment
  "compilerOptions": { "outDir": "./dist/", /* x */ "strict": true, },
  "include": ["src/**/*"],
}"#;
        assert_eq!(tsconfig_out_dir(t).as_deref(), Some("dist"));
        assert_eq!(
            tsconfig_out_dir(r#"{"compilerOptions":{"outDir":"."}}"#),
            None
        );
        assert_eq!(tsconfig_out_dir(r#"{"compilerOptions":{}}"#), None);
        assert_eq!(
            tsconfig_out_dir(r#"{"compilerOptions":{"outDir":"a//b"}}"#).as_deref(),
            Some("a//b")
        );
    }

    #[test]
    fn lockfiles() {
        let l = parse_lock(
            r#"{"lockfileVersion":3,"packages":{"":{"name":"x"},"node_modules/a":{"version":"1.0.0"},"node_modules/b":{"dev":true}}}"#,
            Path::new("package-lock.json"),
        )
        .unwrap();
        assert_eq!(
            l,
            Lock {
                any: true,
                prod: true,
                local: false,
                ..Lock::default()
            }
        );
        let l = parse_lock(
            r#"{"lockfileVersion":3,"packages":{"":{},"node_modules/b":{"dev":true}}}"#,
            Path::new("package-lock.json"),
        )
        .unwrap();
        assert_eq!(
            l,
            Lock {
                any: true,
                prod: false,
                local: false,
                ..Lock::default()
            }
        );
        let l = parse_lock(
            r#"{"lockfileVersion":3,"packages":{"":{},"node_modules/lib":{"resolved":"libs/x","link":true}}}"#,
            Path::new("package-lock.json"),
        )
        .unwrap();
        assert!(l.local);
        let l = parse_lock(
            r#"{"lockfileVersion":1,"dependencies":{"a":{"version":"1.0.0","dev":true}}}"#,
            Path::new("package-lock.json"),
        )
        .unwrap();
        // a v1 lockfile does not record install scripts: it says so (the root gets compilers)
        assert_eq!(
            l,
            Lock {
                any: true,
                prod: false,
                local: false,
                v1: true,
                ..Lock::default()
            }
        );
        let err = parse_lock("{\n\"a\": ,}", Path::new("/x/package-lock.json")).unwrap_err();
        assert!(err.to_string().contains("/x/package-lock.json:2"), "{err}");
    }

    #[test]
    fn package_json_errors_name_line() {
        let err = parse_package_json(
            "{\n  \"name\": \"x\",\n  oops\n}",
            Path::new("/a/package.json"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("/a/package.json:3"), "{err}");
        assert!(parse_package_json("[]", Path::new("package.json")).is_err());
    }
}
