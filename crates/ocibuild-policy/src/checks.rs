//! The checks, run on a [`Scanned`] image.

use std::collections::{BTreeMap, BTreeSet};

use globset::{Glob, GlobSetBuilder};
use ocibuild_elf::{LibPath, resolve, resolve_file};
use serde::Serialize;
use serde_json::Value;

use crate::index::{Kind, Scanned};
use crate::policy::{DEFAULT_FORBIDDEN_EXECUTABLES, DEFAULT_FORBIDDEN_PATHS, Policy};
use crate::{cst, human};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One failed (or warned) check.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub check: String,
    pub severity: Severity,
    pub path: Option<String>,
    pub message: String,
}

/// What [`check`] found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub image: String,
    /// The checks that ran.
    pub checks: Vec<String>,
    pub findings: Vec<Finding>,
}

impl Report {
    /// Whether any check failed (warnings do not fail).
    pub fn failed(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }

    fn add(&mut self, check: &str, sev: Severity, path: Option<&str>, message: impl Into<String>) {
        self.findings.push(Finding {
            check: check.to_string(),
            severity: sev,
            path: path.map(str::to_string),
            message: message.into(),
        });
    }

    fn error(&mut self, check: &str, path: Option<&str>, message: impl Into<String>) {
        self.add(check, Severity::Error, path, message);
    }

    /// The failures and warnings as a table, and a summary line.
    pub fn table(&self) -> String {
        let mut out = String::new();
        if !self.findings.is_empty() {
            let w_check = self
                .findings
                .iter()
                .map(|f| f.check.len())
                .max()
                .unwrap_or(5)
                .max(5);
            out.push_str(&format!(
                "{:<7}  {:<w_check$}  {}\n",
                "RESULT", "CHECK", "WHAT"
            ));
            for f in &self.findings {
                let sev = match f.severity {
                    Severity::Error => "FAIL",
                    Severity::Warning => "warn",
                };
                out.push_str(&format!("{sev:<7}  {:<w_check$}  {}\n", f.check, f.message));
            }
        }
        let errors = self
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count();
        let warnings = self.findings.len() - errors;
        let failed: BTreeSet<&str> = self
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| f.check.as_str())
            .collect();
        out.push_str(&format!(
            "{}: {} of {} checks passed, {errors} failure(s), {warnings} warning(s){}\n",
            self.image,
            self.checks.len() - failed.len(),
            self.checks.len(),
            if failed.is_empty() {
                String::new()
            } else {
                format!(
                    " (failed: {})",
                    failed.into_iter().collect::<Vec<_>>().join(", ")
                )
            }
        ));
        out
    }
}

/// The image's user, resolved in its `/etc/passwd`.
struct User {
    uid: u64,
    gid: u64,
    spec: String,
}

fn config_str<'a>(config: &'a Value, key: &str) -> Option<&'a str> {
    config.get("config")?.get(key)?.as_str()
}

fn config_list(config: &Value, key: &str) -> Vec<String> {
    config
        .get("config")
        .and_then(|c| c.get(key))
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn env_of(config: &Value) -> BTreeMap<String, String> {
    config_list(config, "Env")
        .into_iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv, String::new()),
        })
        .collect()
}

fn lookup_id(s: &Scanned, file: &str, name: &str) -> Option<(u64, u64)> {
    let bytes = s.contents.get(file)?;
    String::from_utf8_lossy(bytes).lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&name)).then(|| {
            (
                f.get(2).and_then(|v| v.parse().ok()).unwrap_or(0),
                f.get(3).and_then(|v| v.parse().ok()).unwrap_or(0),
            )
        })
    })
}

fn user_of(s: &Scanned) -> Result<User, String> {
    let spec = config_str(&s.config, "User").unwrap_or("").to_string();
    if spec.is_empty() {
        return Ok(User {
            uid: 0,
            gid: 0,
            spec: "root (no User set)".into(),
        });
    }
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec.as_str(), None),
    };
    let (uid, mut gid) = match u.parse::<u64>() {
        Ok(n) => (n, n),
        Err(_) => lookup_id(s, "/etc/passwd", u).ok_or_else(|| {
            format!("the image's User `{u}` is not in its /etc/passwd: the container fails to start (unable to find user {u}); use a numeric uid or add the user")
        })?,
    };
    if let Some(g) = g {
        gid = match g.parse::<u64>() {
            Ok(n) => n,
            Err(_) => lookup_id(s, "/etc/group", g)
                .map(|(id, _)| id)
                .ok_or_else(|| {
                    format!("the image's User names group `{g}`, which is not in its /etc/group")
                })?,
        };
    }
    Ok(User { uid, gid, spec })
}

fn executable_by(mode: u32, owner: (u64, u64), u: &User) -> bool {
    if u.uid == 0 {
        mode & 0o111 != 0
    } else if owner.0 == u.uid {
        mode & 0o100 != 0
    } else if owner.1 == u.gid {
        mode & 0o010 != 0
    } else {
        mode & 0o001 != 0
    }
}

struct Ctx<'a> {
    s: &'a Scanned,
    user: Option<User>,
    path: Vec<String>,
    ld_library_path: Vec<String>,
    workdir: String,
    libpath: LibPath,
}

impl Ctx<'_> {
    /// The program `prog` runs as: its resolved path, or why it cannot run.
    fn runnable(&self, prog: &str, depth: usize) -> Result<String, String> {
        if depth > 4 {
            return Err(format!("{prog}: too many nested #! interpreters"));
        }
        let path = if prog.contains('/') {
            if prog.starts_with('/') {
                ocibuild_elf::normalize(prog)
            } else {
                ocibuild_elf::normalize(&format!("{}/{prog}", self.workdir))
            }
        } else {
            // exec's PATH search: the first directory holding an executable file of that name
            let found = self.path.iter().find(|d| {
                resolve_file(self.s, &ocibuild_elf::normalize(&format!("{d}/{prog}")))
                    .and_then(|p| self.s.fs.get(&p))
                    .is_some_and(|e| e.mode & 0o111 != 0)
            });
            match found {
                Some(d) => ocibuild_elf::normalize(&format!("{d}/{prog}")),
                None => {
                    return Err(format!(
                        "`{prog}` is not found on the image's PATH ({}): exec fails with \"executable file not found in $PATH\"",
                        self.path.join(":")
                    ));
                }
            }
        };
        let real = match resolve(self.s, &path) {
            Some(r) => r,
            None => {
                let why = if self
                    .s
                    .fs
                    .get(&path)
                    .is_some_and(|e| e.kind == Kind::Symlink)
                {
                    "is a symlink whose target is not in the image"
                } else {
                    "does not exist in the image"
                };
                return Err(format!("{path} {why}"));
            }
        };
        let Some(e) = self.s.fs.get(&real) else {
            return Err(format!("{path} does not exist in the image"));
        };
        if e.kind != Kind::File {
            return Err(
                format!("{path} is not a regular file (it is a {:?})", e.kind).to_lowercase(),
            );
        }
        let shown = if real == path {
            path.clone()
        } else {
            format!("{path} (-> {real})")
        };
        if let Some(u) = &self.user
            && !executable_by(e.mode, (e.uid, e.gid), u)
        {
            return Err(format!(
                "{shown} is not executable by the image's user {} (mode {:o}, owner {}:{})",
                u.spec, e.mode, e.uid, e.gid
            ));
        }
        if let Some(info) = &e.elf {
            let missing = self
                .libpath
                .missing(self.s, &real, info, &self.ld_library_path);
            if !missing.is_empty() {
                return Err(format!(
                    "{shown} cannot load: {} (searched RUNPATH, LD_LIBRARY_PATH, /etc/ld.so.conf and {})",
                    missing
                        .iter()
                        .map(|(l, by)| format!("{l} (needed by {by}) is missing"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    self.libpath.dirs.join(", ")
                ));
            }
            return Ok(real);
        }
        if let Some(line) = &e.shebang {
            let mut words = line.split_whitespace();
            let Some(interp) = words.next() else {
                return Err(format!("{shown} has an empty #! line"));
            };
            let interp_real = self
                .runnable(interp, depth + 1)
                .map_err(|why| format!("{shown} starts with #!{line}, but {why}"))?;
            if interp_real.rsplit('/').next() == Some("env") {
                let prog = words.find(|w| !w.starts_with('-') && !w.contains('='));
                if let Some(p) = prog {
                    self.runnable(p, depth + 1)
                        .map_err(|why| format!("{shown} starts with #!{line}, but {why}"))?;
                }
            }
            return Ok(real);
        }
        Err(format!(
            "{shown} is neither an ELF program nor a script with a #! line: exec fails with \"exec format error\""
        ))
    }
}

fn glob_set(pats: &[String]) -> Result<globset::GlobSet, String> {
    let mut b = GlobSetBuilder::new();
    for p in pats {
        b.add(
            Glob::new(p).map_err(|e| format!("forbidden_paths: `{p}` is not a valid glob: {e}"))?,
        );
    }
    b.build().map_err(|e| e.to_string())
}

/// Path parts that mark a dependency (keys there are the dependency's, e.g. test fixtures).
fn in_dependency(path: &str) -> bool {
    [
        "/node_modules/",
        "/site-packages/",
        "/dist-packages/",
        "/.m2/",
        "/vendor/",
        "/usr/share/",
        "/usr/lib/",
    ]
    .iter()
    .any(|d| path.contains(d))
        || path.ends_with(".jar")
}

/// Run the default checks (less the ones `policy.disable` names), the policy's own and the
/// container-structure-test suite's on a scanned image.
pub fn check(
    s: &Scanned,
    image: &str,
    policy: &Policy,
    suite: Option<&cst::Suite>,
) -> Result<Report, String> {
    let mut r = Report {
        image: image.to_string(),
        ..Report::default()
    };
    let env = env_of(&s.config);
    let path: Vec<String> = env
        .get("PATH")
        .cloned()
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into())
        .split(':')
        .filter(|d| !d.is_empty())
        .map(str::to_string)
        .collect();
    let ld_library_path: Vec<String> = env
        .get("LD_LIBRARY_PATH")
        .map(|v| {
            v.split(':')
                .filter(|d| !d.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let workdir = config_str(&s.config, "WorkingDir")
        .filter(|w| !w.is_empty())
        .unwrap_or("/")
        .to_string();
    let user = user_of(s);
    let ctx = Ctx {
        s,
        user: user.as_ref().ok().map(|u| User {
            uid: u.uid,
            gid: u.gid,
            spec: u.spec.clone(),
        }),
        path,
        ld_library_path,
        workdir,
        libpath: LibPath::of(s),
    };
    let on = |c: &str| policy.enabled(c);
    let app_layer = |l: usize| s.layers.get(l).is_some_and(|li| li.app);

    if on("runnable") {
        r.checks.push("runnable".into());
        if let Err(why) = &user {
            r.error("runnable", None, why.clone());
        }
        let mut argv = config_list(&s.config, "Entrypoint");
        argv.extend(config_list(&s.config, "Cmd"));
        match argv.first() {
            None => r.error(
                "runnable",
                None,
                "the image has neither Entrypoint nor Cmd: there is nothing to run",
            ),
            Some(prog) => {
                if let Err(why) = ctx.runnable(prog, 0) {
                    r.error("runnable", Some(prog), format!("entrypoint: {why}"));
                }
            }
        }
    }
    if on("healthcheck") {
        r.checks.push("healthcheck".into());
        let test: Vec<String> = s
            .config
            .get("config")
            .and_then(|c| c.get("Healthcheck"))
            .and_then(|h| h.get("Test"))
            .and_then(|t| t.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        match test.first().map(String::as_str) {
            Some("CMD") => match test.get(1) {
                Some(prog) => {
                    if let Err(why) = ctx.runnable(prog, 0) {
                        r.error("healthcheck", Some(prog), format!("healthcheck CMD: {why}"));
                    }
                }
                None => r.error("healthcheck", None, "healthcheck CMD names no program"),
            },
            Some("CMD-SHELL") => {
                if let Err(why) = ctx.runnable("/bin/sh", 0) {
                    r.error(
                        "healthcheck",
                        Some("/bin/sh"),
                        format!("healthcheck CMD-SHELL runs /bin/sh -c, but {why}; use the exec form [\"CMD\", ...]"),
                    );
                }
            }
            _ => {}
        }
    }
    if on("native-libs") {
        r.checks.push("native-libs".into());
        for (p, e) in &s.fs {
            if e.kind != Kind::File || !app_layer(e.layer) {
                continue;
            }
            let Some(info) = &e.elf else { continue };
            let missing = ctx.libpath.missing(s, p, info, &ctx.ld_library_path);
            if !missing.is_empty() {
                r.error(
                    "native-libs",
                    Some(p),
                    format!(
                        "{p} (layer {}) cannot load: {}",
                        e.layer,
                        missing
                            .iter()
                            .map(|(l, by)| format!("{l} (needed by {by}) is missing"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
        }
    }
    if on("symlink-dir") {
        r.checks.push("symlink-dir".into());
        for d in &s.symlink_dirs {
            r.error("symlink-dir", Some(&d.path), format!(
                "layer {} replaces the symlink {} -> {} of layer {} with a directory: what the link led to is hidden; put the files at the link's target instead",
                d.by_layer, d.path, d.target, d.layer
            ));
        }
    }
    if on("world-writable") {
        r.checks.push("world-writable".into());
        for (p, e) in &s.fs {
            let sticky_dir = e.kind == Kind::Dir && e.mode & 0o1000 != 0;
            let tmp = ["/tmp", "/var/tmp", "/dev/shm"]
                .iter()
                .any(|t| p == t || p.starts_with(&format!("{t}/")));
            if matches!(e.kind, Kind::File | Kind::Dir)
                && e.mode & 0o002 != 0
                && !sticky_dir
                && !tmp
            {
                r.error(
                    "world-writable",
                    Some(p),
                    format!(
                        "{p} is world-writable (mode {:o}, layer {}): any process in the container can change it; chmod o-w",
                        e.mode, e.layer
                    ),
                );
            }
        }
    }
    if on("setuid") {
        r.checks.push("setuid".into());
        for (p, e) in &s.fs {
            if e.kind == Kind::File && e.mode & 0o6000 != 0 {
                let bit = if e.mode & 0o4000 != 0 {
                    "setuid"
                } else {
                    "setgid"
                };
                r.error(
                    "setuid",
                    Some(p),
                    format!(
                        "{p} is {bit} (mode {:o}, owner {}, layer {}): remove the bit or the file",
                        e.mode, e.uid, e.layer
                    ),
                );
            }
        }
    }
    if on("secrets") {
        r.checks.push("secrets".into());
        for k in &s.secrets {
            let live = s.fs.get(&k.path).is_some_and(|e| e.layer == k.layer);
            let gone = if live {
                String::new()
            } else {
                " (deleted or overwritten by a later layer, but still in this layer's blob)".into()
            };
            if app_layer(k.layer) && !in_dependency(&k.path) {
                r.error("secrets", Some(&k.path), format!(
                    "{} holds {} (layer {}){gone}: keep keys and credentials out of images; mount them at run time",
                    k.path, k.what, k.layer
                ));
            } else {
                r.add(
                    "secrets",
                    Severity::Warning,
                    Some(&k.path),
                    format!(
                        "{} holds {} (layer {}, {}){gone}",
                        k.path,
                        k.what,
                        k.layer,
                        if app_layer(k.layer) {
                            "inside a dependency"
                        } else {
                            "in the base image"
                        }
                    ),
                );
            }
        }
    }
    if on("dev-dependencies") {
        r.checks.push("dev-dependencies".into());
        for (lock, names) in crate::checks::dev_dependencies(s) {
            let shown: Vec<&str> = names.iter().take(12).map(String::as_str).collect();
            r.error(
                "dev-dependencies",
                Some(&lock),
                format!(
                    "{} development-only package(s) per {lock} are in the image: {}{}; install production dependencies only",
                    names.len(),
                    shown.join(", "),
                    if names.len() > shown.len() { ", …" } else { "" }
                ),
            );
        }
    }
    if on("build-tools") {
        r.checks.push("build-tools".into());
        let names: Vec<String> = policy.forbidden_executables.clone().unwrap_or_else(|| {
            DEFAULT_FORBIDDEN_EXECUTABLES
                .iter()
                .map(|s| s.to_string())
                .collect()
        });
        let names: BTreeSet<&str> = names.iter().map(String::as_str).collect();
        for (p, e) in &s.fs {
            let name = p.rsplit('/').next().unwrap_or("");
            if !names.contains(name) {
                continue;
            }
            let exec = match e.kind {
                Kind::File => e.mode & 0o111 != 0,
                Kind::Symlink => resolve_file(s, p)
                    .and_then(|t| s.fs.get(&t))
                    .is_some_and(|t| t.mode & 0o111 != 0),
                _ => false,
            };
            if exec {
                r.error(
                    "build-tools",
                    Some(p),
                    format!("{p} ({name}, layer {}) is a forbidden executable: shells, compilers and package managers do not belong in a runtime image", e.layer),
                );
            }
        }
    }
    if on("sources") {
        r.checks.push("sources".into());
        let (pats, default) = match &policy.forbidden_paths {
            Some(p) => (p.clone(), false),
            None => (
                DEFAULT_FORBIDDEN_PATHS
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                true,
            ),
        };
        let set = glob_set(&pats)?;
        let mut hits: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for p in s.fs.keys() {
            if default && p.ends_with(".d.ts") {
                continue;
            }
            // a directory that matches (`**/.git`) stands for everything below it
            if let Some(parent) = hits.keys().next_back()
                && p.starts_with(&format!("{parent}/"))
            {
                continue;
            }
            let m = set.matches(p);
            if let Some(i) = m.first()
                && let Some(pat) = pats.get(*i)
            {
                hits.entry(p.clone()).or_default().push(pat.clone());
            }
        }
        let mut by_pat: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (p, pats) in hits {
            for pat in pats {
                by_pat.entry(pat).or_default().push(p.clone());
            }
        }
        for (pat, paths) in by_pat {
            let shown: Vec<&str> = paths.iter().take(5).map(String::as_str).collect();
            r.error(
                "sources",
                paths.first().map(String::as_str),
                format!(
                    "{} path(s) match the forbidden `{pat}`: {}{}",
                    paths.len(),
                    shown.join(", "),
                    if paths.len() > shown.len() {
                        ", …"
                    } else {
                        ""
                    }
                ),
            );
        }
    }

    // the policy's own checks
    if !policy.required_files.is_empty() {
        r.checks.push("required-files".into());
        for f in &policy.required_files {
            if resolve(s, &ocibuild_elf::normalize(f)).is_none() {
                r.error(
                    "required-files",
                    Some(f),
                    format!("{f} is required but not in the image"),
                );
            }
        }
    }
    if !policy.required_executables.is_empty() {
        r.checks.push("required-executables".into());
        for x in &policy.required_executables {
            if let Err(why) = ctx.runnable(x, 0) {
                r.error(
                    "required-executables",
                    Some(x),
                    format!("{x} is required: {why}"),
                );
            }
        }
    }
    if policy.non_root {
        r.checks.push("non-root".into());
        match &ctx.user {
            Some(u) if u.uid == 0 => r.error(
                "non-root",
                None,
                format!(
                    "the image runs as root ({}); set USER to a non-root uid",
                    u.spec
                ),
            ),
            _ => {}
        }
    }
    if !policy.required_labels.is_empty() {
        r.checks.push("required-labels".into());
        let labels = s.config.get("config").and_then(|c| c.get("Labels"));
        for l in &policy.required_labels {
            if labels.and_then(|m| m.get(l)).is_none() {
                r.error(
                    "required-labels",
                    None,
                    format!("the label {l} is required but not set (--label {l}=...)"),
                );
            }
        }
    }
    let limit = |v: &Option<String>| v.as_deref().and_then(|v| crate::parse_size(v).ok());
    let compressed: u64 = s.layers.iter().map(|l| l.compressed).sum();
    let uncompressed: u64 = s.layers.iter().map(|l| l.uncompressed).sum();
    let biggest = crate::size::biggest_files(s, 3)
        .into_iter()
        .map(|(p, b)| format!("{p} ({})", human(b)))
        .collect::<Vec<_>>()
        .join(", ");
    if let Some(m) = limit(&policy.max_compressed_size) {
        r.checks.push("max-compressed-size".into());
        if compressed > m {
            r.error(
                "max-compressed-size",
                None,
                format!(
                    "{} compressed exceeds the {} allowed; biggest files: {biggest}",
                    human(compressed),
                    human(m)
                ),
            );
        }
    }
    if let Some(m) = limit(&policy.max_uncompressed_size) {
        r.checks.push("max-uncompressed-size".into());
        if uncompressed > m {
            r.error(
                "max-uncompressed-size",
                None,
                format!(
                    "{} uncompressed exceeds the {} allowed; biggest files: {biggest}",
                    human(uncompressed),
                    human(m)
                ),
            );
        }
    }
    if let Some(m) = limit(&policy.max_layer_compressed_size) {
        r.checks.push("max-layer-compressed-size".into());
        for l in &s.layers {
            if l.compressed > m {
                r.error(
                    "max-layer-compressed-size",
                    None,
                    format!(
                        "layer {} ({}) is {} compressed, more than the {} allowed per layer",
                        l.index,
                        l.digest,
                        human(l.compressed),
                        human(m)
                    ),
                );
            }
        }
    }
    if let Some(suite) = suite {
        r.checks.push("structure-test".into());
        for (name, why) in suite.run(s) {
            r.error("structure-test", None, format!("{name}: {why}"));
        }
    }
    Ok(r)
}

/// Development-only packages present in the image, per lockfile found in it.
pub fn dev_dependencies(s: &Scanned) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    // Python distributions installed anywhere: normalised names of `*.dist-info` directories
    let mut dists: BTreeSet<String> = BTreeSet::new();
    let mut jars: Vec<&str> = Vec::new();
    for (p, e) in &s.fs {
        let name = p.rsplit('/').next().unwrap_or("");
        if e.kind == Kind::Dir
            && let Some(d) = name.strip_suffix(".dist-info")
        {
            let n = d.split('-').next().unwrap_or(d);
            dists.insert(py_norm(n));
        }
        if e.kind == Kind::File && name.ends_with(".jar") {
            jars.push(name);
        }
    }
    let mut locks: Vec<(&String, &Vec<u8>)> = s.contents.iter().collect();
    locks.sort();
    for (path, bytes) in locks {
        let name = path.rsplit('/').next().unwrap_or("");
        let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        let mut found: Vec<String> = Vec::new();
        match name {
            "package-lock.json" | ".package-lock.json" => {
                let root = if name == ".package-lock.json" {
                    dir.strip_suffix("/node_modules").unwrap_or(dir)
                } else {
                    dir
                };
                let Ok(v) = serde_json::from_slice::<Value>(bytes) else {
                    continue;
                };
                if let Some(pk) = v.get("packages").and_then(|p| p.as_object()) {
                    for (k, meta) in pk {
                        if k.is_empty() || meta.get("dev").and_then(|d| d.as_bool()) != Some(true) {
                            continue;
                        }
                        if s.fs.contains_key(&format!("{root}/{k}")) {
                            found.push(k.rsplit("node_modules/").next().unwrap_or(k).to_string());
                        }
                    }
                } else if let Some(deps) = v.get("dependencies").and_then(|p| p.as_object()) {
                    for (k, meta) in deps {
                        if meta.get("dev").and_then(|d| d.as_bool()) == Some(true)
                            && s.fs.contains_key(&format!("{root}/node_modules/{k}"))
                        {
                            found.push(k.clone());
                        }
                    }
                }
            }
            "poetry.lock" | "uv.lock" => {
                let Ok(v) = toml::from_slice::<toml::Value>(bytes) else {
                    continue;
                };
                for n in python_dev_names(&v) {
                    if dists.contains(&py_norm(&n)) {
                        found.push(n);
                    }
                }
            }
            "Pipfile.lock" => {
                let Ok(v) = serde_json::from_slice::<Value>(bytes) else {
                    continue;
                };
                let default: BTreeSet<String> = v
                    .get("default")
                    .and_then(|d| d.as_object())
                    .map(|o| o.keys().map(|k| py_norm(k)).collect())
                    .unwrap_or_default();
                if let Some(dev) = v.get("develop").and_then(|d| d.as_object()) {
                    for k in dev.keys() {
                        if !default.contains(&py_norm(k)) && dists.contains(&py_norm(k)) {
                            found.push(k.clone());
                        }
                    }
                }
            }
            "pom.xml" => {
                let text = String::from_utf8_lossy(bytes);
                for dep in text.split("<dependency>").skip(1) {
                    let dep = dep.split("</dependency>").next().unwrap_or("");
                    let tag = |t: &str| {
                        dep.split(&format!("<{t}>"))
                            .nth(1)
                            .and_then(|r| r.split(&format!("</{t}>")).next())
                            .map(str::trim)
                    };
                    if tag("scope") == Some("test")
                        && let Some(a) = tag("artifactId")
                        && jars.iter().any(|j| {
                            j.strip_prefix(a).is_some_and(|r| {
                                r.starts_with('-')
                                    && r[1..].starts_with(|c: char| c.is_ascii_digit())
                            })
                        })
                    {
                        found.push(a.to_string());
                    }
                }
            }
            _ => {}
        }
        if !found.is_empty() {
            found.sort();
            found.dedup();
            out.push((path.clone(), found));
        }
    }
    out
}

fn py_norm(n: &str) -> String {
    n.to_ascii_lowercase().replace(['-', '.'], "_")
}

/// Development-only package names in a poetry.lock or uv.lock.
fn python_dev_names(v: &toml::Value) -> Vec<String> {
    let mut out = Vec::new();
    let Some(pkgs) = v.get("package").and_then(|p| p.as_array()) else {
        return out;
    };
    let mut main: BTreeSet<String> = BTreeSet::new();
    for p in pkgs {
        let name = p.get("name").and_then(|n| n.as_str()).unwrap_or("");
        // poetry: `category = "dev"` (before 1.5) or `groups = ["dev"]` without "main"
        if let Some(c) = p.get("category").and_then(|c| c.as_str()) {
            if c == "dev" {
                out.push(name.to_string());
            }
        } else if let Some(g) = p.get("groups").and_then(|g| g.as_array())
            && !g.iter().any(|g| g.as_str() == Some("main"))
        {
            out.push(name.to_string());
        }
        // uv: the project's `dev-dependencies` (groups) minus its `dependencies`
        if let Some(dd) = p.get("dev-dependencies").and_then(|d| d.as_table()) {
            for n in p
                .get("dependencies")
                .and_then(|d| d.as_array())
                .into_iter()
                .flatten()
                .filter_map(|d| d.get("name").and_then(|n| n.as_str()))
            {
                main.insert(py_norm(n));
            }
            for group in dd.values().filter_map(|g| g.as_array()) {
                for n in group
                    .iter()
                    .filter_map(|d| d.get("name").and_then(|n| n.as_str()))
                {
                    out.push(n.to_string());
                }
            }
        }
    }
    out.retain(|n| !main.contains(&py_norm(n)));
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::index::{Entry, LayerInfo};

    fn entry(kind: Kind, mode: u32, layer: usize) -> Entry {
        Entry {
            kind,
            mode,
            uid: 0,
            gid: 0,
            size: 10,
            layer,
            target: None,
            hash: 0,
            elf: None,
            shebang: None,
        }
    }

    fn image(config: Value) -> Scanned {
        let mut s = Scanned {
            config,
            ..Scanned::default()
        };
        for d in ["/app", "/etc", "/tmp", "/usr", "/usr/bin"] {
            s.fs.insert(d.into(), entry(Kind::Dir, 0o755, 0));
        }
        s.fs.insert("/tmp".into(), entry(Kind::Dir, 0o1777, 0));
        let mut run = entry(Kind::File, 0o750, 1);
        run.shebang = Some("/usr/bin/python3 -u".into());
        run.uid = 1000;
        s.fs.insert("/app/run".into(), run);
        let mut py = entry(Kind::File, 0o755, 0);
        py.elf = Some(Box::default());
        s.fs.insert("/usr/bin/python3".into(), py);
        s.contents.insert(
            "/etc/passwd".into(),
            b"root:x:0:0::/root:/sbin/nologin\napp:x:1000:1000::/app:/sbin/nologin\nother:x:2000:2000::/:/x\n".to_vec(),
        );
        s.fs.insert("/etc/passwd".into(), entry(Kind::File, 0o644, 0));
        for i in 0..2 {
            s.layers.push(LayerInfo {
                index: i,
                digest: format!("sha256:{i}"),
                compressed: 1,
                uncompressed: 1,
                files: 1,
                created_by: None,
                app: i == 1,
            });
        }
        s
    }

    fn failed(s: &Scanned, policy: &Policy) -> Vec<(String, String)> {
        check(s, "img", policy, None)
            .unwrap()
            .findings
            .into_iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| (f.check, f.message))
            .collect()
    }

    #[test]
    fn runnable_follows_the_user_and_the_shebang() {
        let cfg = |user: &str| {
            serde_json::json!({"config": {"User": user, "Entrypoint": ["/app/run"],
                "Healthcheck": {"Test": ["CMD-SHELL", "curl -f localhost"]}}})
        };
        let s = image(cfg("app"));
        let f = failed(&s, &Policy::default());
        // the owner may run it; the shell healthcheck needs /bin/sh
        assert!(!f.iter().any(|(c, _)| c == "runnable"), "{f:?}");
        assert!(
            f.iter()
                .any(|(c, m)| c == "healthcheck" && m.contains("/bin/sh does not exist")),
            "{f:?}"
        );
        // another user is neither owner nor in its group: mode 750 stops it
        let f = failed(&image(cfg("other")), &Policy::default());
        assert!(
            f.iter()
                .any(|(c, m)| c == "runnable"
                    && m.contains("not executable by the image's user other")),
            "{f:?}"
        );
        // a user that is not in /etc/passwd cannot start at all
        let f = failed(&image(cfg("nobody")), &Policy::default());
        assert!(
            f.iter()
                .any(|(_, m)| m.contains("`nobody` is not in its /etc/passwd")),
            "{f:?}"
        );
        // the interpreter missing
        let mut s = image(cfg("app"));
        s.fs.remove("/usr/bin/python3");
        let f = failed(&s, &Policy::default());
        assert!(
            f.iter().any(|(c, m)| c == "runnable"
                && m.contains("#!/usr/bin/python3 -u, but /usr/bin/python3 does not exist")),
            "{f:?}"
        );
    }

    #[test]
    fn setuid_world_writable_and_policy_limits() {
        let mut s = image(serde_json::json!({"config": {"Entrypoint": ["/app/run"]}}));
        s.fs.insert("/usr/bin/su".into(), entry(Kind::File, 0o4755, 0));
        s.fs.insert("/app/data".into(), entry(Kind::Dir, 0o777, 1));
        s.fs.insert("/tmp/x".into(), entry(Kind::File, 0o666, 1));
        s.fs.insert("/usr/bin/bash".into(), entry(Kind::File, 0o755, 0));
        let f = failed(&s, &Policy::default());
        let has = |c: &str, p: &str| f.iter().any(|(k, m)| k == c && m.contains(p));
        assert!(has("setuid", "/usr/bin/su is setuid"), "{f:?}");
        assert!(has("world-writable", "/app/data"), "{f:?}");
        assert!(!has("world-writable", "/tmp/x"), "{f:?}");
        assert!(has("build-tools", "/usr/bin/bash"), "{f:?}");
        let p = Policy {
            disable: vec!["setuid".into(), "build-tools".into()],
            non_root: true,
            required_files: vec!["/etc/ssl/certs/ca-certificates.crt".into()],
            required_labels: vec!["org.opencontainers.image.revision".into()],
            forbidden_paths: Some(vec!["/app/**".into()]),
            ..Policy::default()
        };
        let f = failed(&s, &p);
        let checks: BTreeSet<&str> = f.iter().map(|(c, _)| c.as_str()).collect();
        assert!(
            !checks.contains("setuid") && !checks.contains("build-tools"),
            "{f:?}"
        );
        for c in ["non-root", "required-files", "required-labels", "sources"] {
            assert!(checks.contains(c), "{c}: {f:?}");
        }
    }

    #[test]
    fn python_and_maven_dev_dependencies() {
        let poetry: toml::Value = toml::from_str(
            "[[package]]\nname = \"Flask\"\ngroups = [\"main\"]\n[[package]]\nname = \"pytest\"\ngroups = [\"dev\"]\n[[package]]\nname = \"black\"\ncategory = \"dev\"\n",
        )
        .unwrap();
        assert_eq!(python_dev_names(&poetry), ["pytest", "black"]);
        let uv: toml::Value = toml::from_str(
            "[[package]]\nname = \"app\"\ndependencies = [{ name = \"fastapi\" }]\n[package.dev-dependencies]\ndev = [{ name = \"pytest\" }, { name = \"fastapi\" }]\n",
        )
        .unwrap();
        assert_eq!(python_dev_names(&uv), ["pytest"]);
        // installed: a dist-info for pytest, a test-scoped junit jar
        let mut s = image(serde_json::json!({"config": {}}));
        let dir = "/app/.venv/lib/python3.13/site-packages";
        s.fs.insert(
            format!("{dir}/pytest-8.3.4.dist-info"),
            entry(Kind::Dir, 0o755, 1),
        );
        s.fs.insert(
            format!("{dir}/flask-3.1.0.dist-info"),
            entry(Kind::Dir, 0o755, 1),
        );
        s.contents.insert(
            "/app/poetry.lock".into(),
            b"[[package]]\nname = \"flask\"\ngroups = [\"main\"]\n[[package]]\nname = \"pytest\"\ngroups = [\"dev\"]\n".to_vec(),
        );
        s.fs.insert(
            "/app/lib/junit-4.13.2.jar".into(),
            entry(Kind::File, 0o644, 1),
        );
        s.contents.insert(
            "/app/pom.xml".into(),
            b"<project><dependencies><dependency><groupId>junit</groupId><artifactId>junit</artifactId><version>4.13.2</version><scope>test</scope></dependency></dependencies></project>".to_vec(),
        );
        let found = dev_dependencies(&s);
        assert_eq!(
            found,
            [
                ("/app/poetry.lock".to_string(), vec!["pytest".to_string()]),
                ("/app/pom.xml".to_string(), vec!["junit".to_string()])
            ]
        );
    }
}
