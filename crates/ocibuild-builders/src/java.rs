//! Java: Maven (pom.xml) or plain sources (javac), the JDK of the Debian release, the main
//! class.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::common::{Ctx, Parts, finish, read_opt};
use crate::error::{BuildersError, Result};
use crate::plan::{Constraint, Lang, Plan, Requirement, Toolchain};
use crate::spec::{self, Spec};
use crate::xml::{self, Element};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Jdk {
    pub max_release: u32,
    pub jdk: u32,
    #[serde(default)]
    pub packages: Vec<String>,
    pub runtime: String,
}

/// Air-gapped Maven builds from Debian's Maven repository.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DebianMaven {
    /// The Debian packages of the plugins `mvn package` and copy-dependencies run.
    pub packages: Vec<String>,
    /// The maven-dependency-plugin version those packages hold.
    pub dependency_plugin: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Release {
    pub jdks: Vec<Jdk>,
    pub debian_maven: DebianMaven,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Rules {
    pub java_home: String,
    pub maven_bin: String,
    pub settings_files: Vec<String>,
    pub repository_property: String,
    pub packages_property: String,
    pub debian_repo: String,
    pub main_class_properties: Vec<String>,
    pub release_properties: Vec<String>,
    pub test_dirs: Vec<String>,
    /// The first JDK whose `java` has `-XX:+AutoCreateSharedArchive` (the `cds` fact).
    pub cds_min_jdk: u32,
    /// What the `cds` fact adds to `MAVEN_OPTS` (`{{jvm_cds}}`).
    pub cds_opts: String,
    /// The same, reading the archive but never writing it (`{{jvm_cds_deps}}`).
    pub cds_use_opts: String,
}

pub(crate) type JavaSpec = Spec<Release, Rules>;

pub(crate) fn spec() -> Result<JavaSpec> {
    spec::load("java.toml", spec::JAVA_TOML)
}

/// What pom.xml says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Pom {
    pub group_id: Option<String>,
    pub artifact_id: Option<String>,
    pub version: Option<String>,
    pub packaging: String,
    /// Java release and where it was found.
    pub release: Option<(u32, String)>,
    /// Main class and where it was found.
    pub main_class: Option<(String, String)>,
    pub has_parent: bool,
    pub modules: Vec<String>,
    /// Dependencies that reach the runtime classpath (scope compile/runtime).
    pub runtime_deps: bool,
    /// The repository property (`remote` or `debian`) and its line.
    pub repository: Option<(String, usize)>,
    /// The Debian-packages property and its line.
    pub debian_packages: Option<(String, usize)>,
}

/// Where Maven resolves plugins and dependencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MavenRepo {
    /// The network: Maven Central, or what the app's settings name.
    Remote,
    /// Debian's Maven repository, offline.
    Debian,
}

/// A Debian package name: lowercase letters, digits, `+ - .`, starting alphanumeric.
fn is_package_name(s: &str) -> bool {
    s.len() >= 2
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '-' | '.'))
}

fn resolve(value: &str, props: &BTreeMap<String, String>) -> Option<String> {
    let mut v = value.trim().to_string();
    for _ in 0..10 {
        let Some(start) = v.find("${") else {
            return Some(v);
        };
        let end = start + v[start..].find('}')?;
        let key = &v[start + 2..end];
        let rep = props.get(key)?.clone();
        v.replace_range(start..=end, rep.trim());
    }
    (!v.contains("${")).then_some(v)
}

/// `1.8` → 8, `17` → 17.
pub(crate) fn java_release(v: &str) -> Option<u32> {
    let v = v.trim();
    let v = v.strip_prefix("1.").filter(|r| !r.is_empty()).unwrap_or(v);
    let n: u32 = v.split('.').next()?.parse().ok()?;
    (n > 0).then_some(n)
}

fn plugins(root: &Element) -> Vec<&Element> {
    let mut out = Vec::new();
    for base in [
        &["build", "plugins"][..],
        &["build", "pluginManagement", "plugins"][..],
    ] {
        if let Some(ps) = root.path(base) {
            out.extend(ps.children_named("plugin"));
        }
    }
    out
}

fn find_descendant<'a>(e: &'a Element, name: &str) -> Option<&'a Element> {
    for c in &e.children {
        if c.name == name {
            return Some(c);
        }
        if let Some(d) = find_descendant(c, name) {
            return Some(d);
        }
    }
    None
}

pub(crate) fn parse_pom(text: &str, path: &Path, rules: &Rules) -> Result<Pom> {
    let root = xml::parse(text).map_err(|e| BuildersError::Parse {
        path: path.to_path_buf(),
        line: Some(e.line),
        detail: e.detail,
        hint: "fix pom.xml: it must be well-formed XML".into(),
    })?;
    if root.name != "project" {
        return Err(BuildersError::Parse {
            path: path.to_path_buf(),
            line: Some(root.line),
            detail: format!("the root element is <{}>, not <project>", root.name),
            hint: "a Maven POM starts with <project>".into(),
        });
    }
    let mut props: BTreeMap<String, String> = BTreeMap::new();
    let mut prop_lines: BTreeMap<String, usize> = BTreeMap::new();
    if let Some(p) = root.child("properties") {
        for c in &p.children {
            props.insert(c.name.clone(), c.text.trim().to_string());
            prop_lines.insert(c.name.clone(), c.line);
        }
    }
    let own_or_parent = |k: &str| root.text_of(&[k]).or_else(|| root.text_of(&["parent", k]));
    let group_id = own_or_parent("groupId");
    let version = own_or_parent("version");
    let artifact_id = root.text_of(&["artifactId"]);
    for (k, v) in [
        ("project.groupId", &group_id),
        ("project.artifactId", &artifact_id),
        ("project.version", &version),
    ] {
        if let Some(v) = v {
            props.insert(k.to_string(), v.clone());
        }
    }
    let resolved = |v: Option<String>| v.and_then(|v| resolve(&v, &props));

    // Java release: the compiler plugin's release, then the properties, then target/source.
    let compiler = plugins(&root)
        .into_iter()
        .find(|p| p.text_of(&["artifactId"]).as_deref() == Some("maven-compiler-plugin"));
    let mut release = None;
    let mut candidates: Vec<(Option<String>, String)> = Vec::new();
    if let Some(c) = compiler {
        candidates.push((
            c.text_of(&["configuration", "release"]),
            "maven-compiler-plugin <release>".into(),
        ));
    }
    for p in &rules.release_properties {
        candidates.push((props.get(p).cloned(), format!("property {p}")));
        if p == "maven.compiler.release"
            && let Some(c) = compiler
        {
            for k in ["target", "source"] {
                candidates.push((
                    c.text_of(&["configuration", k]),
                    format!("maven-compiler-plugin <{k}>"),
                ));
            }
        }
    }
    for (v, origin) in candidates {
        if let Some(n) = resolved(v).as_deref().and_then(java_release) {
            release = Some((n, origin));
            break;
        }
    }

    // Main class: plugin configuration (jar manifest, exec, spring-boot, shade…), properties.
    let mut main_class = None;
    for p in plugins(&root) {
        if let Some(m) = find_descendant(p, "mainClass")
            && let Some(m) = resolve(&m.text, &props).filter(|m| !m.is_empty())
        {
            let a = p
                .text_of(&["artifactId"])
                .unwrap_or_else(|| "a plugin".into());
            main_class = Some((m, format!("{a} <mainClass>")));
            break;
        }
    }
    if main_class.is_none() {
        for k in &rules.main_class_properties {
            if let Some(m) = props
                .get(k)
                .and_then(|v| resolve(v, &props))
                .filter(|m| !m.is_empty())
            {
                main_class = Some((m, format!("property {k}")));
                break;
            }
        }
    }

    let runtime_deps = root
        .path(&["dependencies"])
        .map(|d| {
            d.children_named("dependency").any(|dep| {
                !matches!(
                    dep.text_of(&["scope"]).as_deref(),
                    Some("test") | Some("provided") | Some("system") | Some("import")
                )
            })
        })
        .unwrap_or(false);
    let located = |k: &str| {
        props.get(k).map(|v| {
            (
                resolve(v, &props).unwrap_or_else(|| v.clone()),
                prop_lines.get(k).copied().unwrap_or(root.line),
            )
        })
    };
    let repository = located(&rules.repository_property);
    let debian_packages = located(&rules.packages_property);
    Ok(Pom {
        group_id: resolved(group_id),
        artifact_id,
        version: resolved(version),
        packaging: root.text_of(&["packaging"]).unwrap_or_else(|| "jar".into()),
        release,
        main_class,
        has_parent: root.child("parent").is_some(),
        modules: root
            .child("modules")
            .map(|m| {
                m.children_named("module")
                    .map(|e| e.text.trim().to_string())
                    .collect()
            })
            .unwrap_or_default(),
        runtime_deps,
        repository,
        debian_packages,
    })
}

/// Java source without comments and string/char literals (kept as empty quotes).
fn strip_java(text: &str) -> String {
    let b: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        match (b[i], b.get(i + 1)) {
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
                out.push(' ');
            }
            (q @ ('"' | '\''), _) => {
                // text blocks """…""" are plain strings for our purpose
                out.push(q);
                i += 1;
                while i < b.len() && b[i] != q {
                    if b[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                out.push(q);
                i += 1;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// The fully qualified class of a source file with a `static void main(` method, if any.
pub(crate) fn main_class_of(file_rel: &str, text: &str) -> Option<String> {
    let code = strip_java(text);
    let flat: String = code.split_whitespace().collect::<Vec<_>>().join(" ");
    let flat = flat.replace(" (", "(");
    let has_main = flat.match_indices("void main(").any(|(i, _)| {
        let before = &flat[..i];
        let stmt_start = before.rfind([';', '{', '}']).map(|k| k + 1).unwrap_or(0);
        before[stmt_start..]
            .split_whitespace()
            .any(|w| w == "static")
    });
    if !has_main {
        return None;
    }
    let class = Path::new(file_rel).file_stem()?.to_str()?.to_string();
    let package = flat
        .split(';')
        .map(str::trim)
        .find_map(|s| s.strip_prefix("package "))
        .map(|p| p.trim().to_string());
    Some(match package {
        Some(p) if !p.is_empty() => format!("{p}.{class}"),
        _ => class,
    })
}

pub(crate) fn describe(dir: &Path, found: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    // (.java sources found by extension are named by the caller)
    for f in found.iter().filter(|f| !f.ends_with(".java")) {
        if f == "pom.xml" {
            let path = dir.join(f);
            let parsed = spec().ok().and_then(|s| {
                read_opt(&path)
                    .ok()
                    .flatten()
                    .and_then(|t| parse_pom(&t, &path, &s.rules).ok())
            });
            if let Some(p) = parsed {
                let gav = [&p.group_id, &p.artifact_id, &p.version]
                    .iter()
                    .map(|x| (*x).clone().unwrap_or_else(|| "?".into()))
                    .collect::<Vec<_>>()
                    .join(":");
                let rel = p
                    .release
                    .map(|(n, _)| format!(", Java {n}"))
                    .unwrap_or_default();
                out.push(format!("pom.xml found ({gav}{rel})"));
                continue;
            }
        }
        out.push(format!("{f} found"));
    }
    out
}

fn choose_jdk<'a>(spec: &'a JavaSpec, distro: &str, release: u32, path: &Path) -> Result<&'a Jdk> {
    let rel = spec.release(distro)?;
    let mut jdks: Vec<&Jdk> = rel.jdks.iter().collect();
    jdks.sort_by_key(|j| j.max_release);
    if let Some(j) = jdks.iter().find(|j| j.max_release >= release) {
        return Ok(j);
    }
    let newest = jdks.last().map(|j| j.jdk).unwrap_or(0);
    let hint = if distro == "bookworm" {
        "pass --distro trixie (JDK 21 and 25), or compile for an older release".to_string()
    } else {
        format!("compile for release {newest} or older (maven.compiler.release)")
    };
    Err(BuildersError::Version {
        path: path.to_path_buf(),
        detail: format!(
            "Java {release} is required, but the newest JDK Debian {distro} has is {newest}"
        ),
        hint,
    })
}

/// Where the pom says Maven resolves from, and the Debian packages it names for its
/// dependencies; `settings` is the app's own Maven settings file, if any.
fn maven_repo(
    path: &Path,
    pom: &Pom,
    rules: &Rules,
    settings: Option<&String>,
) -> Result<(MavenRepo, Vec<String>)> {
    let (rp, pp) = (&rules.repository_property, &rules.packages_property);
    let bad = |line: usize, detail: String, hint: String| BuildersError::Parse {
        path: path.to_path_buf(),
        line: Some(line),
        detail,
        hint,
    };
    let repo = match &pom.repository {
        None => MavenRepo::Remote,
        Some((v, line)) => match v.trim() {
            "remote" | "" => MavenRepo::Remote,
            "debian" => MavenRepo::Debian,
            other => {
                return Err(bad(
                    *line,
                    format!("property {rp} is {other:?}"),
                    format!(
                        "use <{rp}>remote</{rp}> (the default: Maven downloads, through the app's \
                         settings if it has some) or <{rp}>debian</{rp}> (air-gapped, from \
                         Debian's packages)"
                    ),
                ));
            }
        },
    };
    if repo == MavenRepo::Debian
        && let (Some(s), Some((_, line))) = (settings, &pom.repository)
    {
        return Err(bad(
            *line,
            format!(
                "<{rp}>debian</{rp}> builds offline from Debian's Maven repository, but the app \
                 also has Maven settings ({s})"
            ),
            format!(
                "drop {s} for the air-gapped build, or drop the property to resolve through {s}"
            ),
        ));
    }
    let mut packages: Vec<String> = Vec::new();
    if let Some((v, line)) = &pom.debian_packages {
        if repo != MavenRepo::Debian {
            return Err(bad(
                *line,
                format!("property {pp} names Debian packages, but Maven resolves remotely"),
                format!("add <{rp}>debian</{rp}> to build from Debian's packages, or drop {pp}"),
            ));
        }
        for name in v.split(|c: char| c == ',' || c.is_whitespace()) {
            if name.is_empty() || packages.iter().any(|p| p == name) {
                continue;
            }
            if !is_package_name(name) {
                return Err(bad(
                    *line,
                    format!("property {pp}: {name:?} is not a Debian package name"),
                    "list packages like libcommons-lang3-java, separated by commas or spaces"
                        .into(),
                ));
            }
            packages.push(name.to_string());
        }
    }
    Ok((repo, packages))
}

/// One module of a Maven reactor.
#[derive(Debug, Clone)]
struct Module {
    /// Its directory, relative to the app dir (`app`, `services/api`): what `mvn -pl` takes.
    dir: String,
    pom: Pom,
    /// Its main classes (from its pom, else `static void main` in its sources), with where
    /// each was found.
    mains: Vec<(String, String)>,
}

/// A multi-module project: its modules (nested aggregators flattened) and the one built.
#[derive(Debug, Clone)]
struct Reactor {
    modules: Vec<Module>,
    chosen: usize,
    /// Why that module, for `--explain`.
    why: String,
}

/// The `.java` files under `dir` (relative paths, from the source listing).
fn java_sources_under(files: &[String], dir: &str) -> Vec<String> {
    let prefix = format!("{}/", dir.trim_end_matches('/'));
    files
        .iter()
        .filter(|f| f.starts_with(&prefix) && f.ends_with(".java"))
        .cloned()
        .collect()
}

/// The modules of the reactor rooted at the app dir, nested aggregators walked (a module's own
/// `<modules>` are relative to it).
fn reactor_modules(
    ctx: &Ctx<'_>,
    root: &Pom,
    rules: &Rules,
    files: &[String],
) -> Result<Vec<Module>> {
    let mut out: Vec<Module> = Vec::new();
    let mut todo: Vec<(String, String, usize)> = root
        .modules
        .iter()
        .rev()
        .map(|m| (String::new(), m.clone(), 0))
        .collect();
    while let Some((base, name, depth)) = todo.pop() {
        let from = if base.is_empty() {
            "pom.xml".to_string()
        } else {
            format!("{base}/pom.xml")
        };
        let rel = name.trim().trim_end_matches('/').trim_start_matches("./");
        let bad = |detail: String, hint: &str| BuildersError::Unsupported {
            path: ctx.path(&from),
            what: detail,
            hint: hint.to_string(),
        };
        if rel.is_empty()
            || rel.starts_with('/')
            || rel.split('/').any(|c| c == ".." || c.is_empty())
        {
            return Err(bad(
                format!("<module>{name}</module> is not a directory inside the app"),
                "ocibuild builds the app directory alone: list modules by their path below it \
                 (run ocibuild on the directory that holds every module)",
            ));
        }
        let rel = rel.strip_suffix("/pom.xml").unwrap_or(rel);
        let dir = if base.is_empty() {
            rel.to_string()
        } else {
            format!("{base}/{rel}")
        };
        if out.iter().any(|m| m.dir == dir) {
            continue;
        }
        let pom_path = format!("{dir}/pom.xml");
        let Some(text) = ctx.read(&pom_path)? else {
            return Err(bad(
                format!("module {dir}: {pom_path} does not exist"),
                "fix <modules>, or add the module's pom.xml",
            ));
        };
        let pom = parse_pom(&text, &ctx.path(&pom_path), rules)?;
        if !pom.modules.is_empty() {
            if depth >= 8 {
                return Err(bad(
                    format!("module {dir}: modules nested more than 8 deep"),
                    "flatten the module tree",
                ));
            }
            todo.extend(
                pom.modules
                    .iter()
                    .rev()
                    .map(|m| (dir.clone(), m.clone(), depth + 1)),
            );
        }
        let mains = if pom.packaging != "jar" {
            Vec::new()
        } else if let Some((m, origin)) = &pom.main_class {
            vec![(m.clone(), format!("{pom_path} {origin}"))]
        } else {
            main_candidates(
                ctx,
                &java_sources_under(files, &format!("{dir}/src/main/java")),
            )?
        };
        out.push(Module { dir, pom, mains });
    }
    Ok(out)
}

/// The module to build: `--module NAME` (its directory, last path component or artifactId),
/// else the one jar module with a main class (the one whose main `--main` names, when given).
fn choose_module(ctx: &Ctx<'_>, root: &Pom, rules: &Rules, files: &[String]) -> Result<Reactor> {
    let modules = reactor_modules(ctx, root, rules, files)?;
    let name = |m: &Module| {
        let a = m.pom.artifact_id.clone().unwrap_or_default();
        if m.dir.rsplit('/').next() == Some(a.as_str()) {
            m.dir.clone()
        } else {
            format!("{} ({a})", m.dir)
        }
    };
    let listing = |ms: &[&Module]| {
        ms.iter()
            .map(|m| {
                if m.mains.is_empty() {
                    name(m)
                } else {
                    format!(
                        "{}: {}",
                        name(m),
                        m.mains
                            .iter()
                            .map(|(c, _)| c.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    let all: Vec<&Module> = modules.iter().collect();
    let jar = |m: &Module| m.pom.packaging == "jar";
    let chosen = if let Some(want) = ctx.opts.module.as_deref().map(str::trim) {
        let want = want.trim_end_matches('/').trim_start_matches("./");
        let Some(i) = modules.iter().position(|m| {
            m.dir == want
                || m.dir.rsplit('/').next() == Some(want)
                || m.pom.artifact_id.as_deref() == Some(want)
        }) else {
            return Err(BuildersError::InvalidOption {
                option: "--module".into(),
                value: want.into(),
                detail: format!(
                    "no such module in {} (modules: {}); name a module by its directory or \
                     artifactId",
                    ctx.path("pom.xml").display(),
                    listing(&all)
                ),
            });
        };
        if !jar(&modules[i]) {
            return Err(BuildersError::InvalidOption {
                option: "--module".into(),
                value: want.into(),
                detail: format!(
                    "module {} has <packaging>{}</packaging>; only jar modules are built into \
                     an image",
                    modules[i].dir, modules[i].pom.packaging
                ),
            });
        }
        (i, "chosen with --module".to_string())
    } else {
        let main = ctx.main().map(|(m, _)| m);
        let with_main: Vec<usize> = (0..modules.len())
            .filter(|&i| {
                jar(&modules[i])
                    && match &main {
                        Some(m) => modules[i].mains.iter().any(|(c, _)| c == m),
                        None => !modules[i].mains.is_empty(),
                    }
            })
            .collect();
        match with_main.as_slice() {
            [i] => {
                let m = &modules[*i];
                let origin = m
                    .mains
                    .iter()
                    .find(|(c, _)| main.as_deref().is_none_or(|w| w == c))
                    .map(|(c, f)| format!("{c} in {f}"))
                    .unwrap_or_default();
                (*i, format!("the only module with a main class ({origin})"))
            }
            [] => {
                return Err(BuildersError::Entrypoint {
                    path: ctx.path("pom.xml"),
                    detail: format!(
                        "multi-module project: no module has {} (modules: {})",
                        match &main {
                            Some(m) => format!("the main class {m}"),
                            None => "a main class (`static void main` under src/main/java, or \
                             mainClass in its pom)"
                                .to_string(),
                        },
                        listing(&all)
                    ),
                    hint: "pass --module NAME to choose the module to run (with --main \
                     com.example.Main or --entrypoint when it has no main class)"
                        .into(),
                });
            }
            several => {
                let ms: Vec<&Module> = several.iter().map(|&i| &modules[i]).collect();
                return Err(BuildersError::Entrypoint {
                    path: ctx.path("pom.xml"),
                    detail: format!(
                        "multi-module project: several modules have a main class ({})",
                        listing(&ms)
                    ),
                    hint: format!(
                        "pass --module to choose the module to run, e.g. --module {}",
                        ms[0].dir
                    ),
                });
            }
        }
    };
    let (i, how) = chosen;
    let why = format!(
        "multi-module Maven project ({} modules: {}): module {} {how}; the reactor builds it and \
         the modules it needs (mvn -pl {} -am), the image holds its classes, its dependencies \
         and its sibling modules' jars",
        modules.len(),
        modules
            .iter()
            .map(|m| m.dir.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        modules[i].dir,
        modules[i].dir
    );
    Ok(Reactor {
        modules,
        chosen: i,
        why,
    })
}

/// Where a reactor resolves from: the root pom's choice (modules inherit it), the same for
/// every module; the Debian packages every pom names for its dependencies.
fn reactor_repo(
    ctx: &Ctx<'_>,
    r: &Reactor,
    rules: &Rules,
    settings: Option<&String>,
) -> Result<(MavenRepo, Vec<String>)> {
    let root_path = ctx.path("pom.xml");
    let root = match ctx.read("pom.xml")? {
        Some(t) => parse_pom(&t, &root_path, rules)?,
        None => Pom::default(),
    };
    let (repo, mut packages) = maven_repo(&root_path, &root, rules, settings)?;
    for m in &r.modules {
        let mut p = m.pom.clone();
        let path = ctx.path(&format!("{}/pom.xml", m.dir));
        if p.repository.is_none() {
            p.repository = root.repository.clone();
        }
        let (mrepo, pk) = maven_repo(&path, &p, rules, settings)?;
        if mrepo != repo {
            let rp = &rules.repository_property;
            return Err(BuildersError::Parse {
                path,
                line: p.repository.as_ref().map(|(_, l)| *l),
                detail: format!(
                    "module {} sets <{rp}> differently from the root pom: one build resolves \
                     from one place",
                    m.dir
                ),
                hint: format!("set <{rp}> once, in the root pom"),
            });
        }
        for x in pk {
            if !packages.contains(&x) {
                packages.push(x);
            }
        }
    }
    Ok((repo, packages))
}

fn main_candidates(ctx: &Ctx<'_>, files: &[String]) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for f in files {
        let Some(text) = ctx.read(f)? else { continue };
        if let Some(c) = main_class_of(f, &text) {
            out.push((c, f.clone()));
        }
    }
    Ok(out)
}

fn pick_main(
    ctx: &Ctx<'_>,
    candidates: &[(String, String)],
    where_: &str,
) -> Result<(String, String)> {
    if let Some((m, origin)) = ctx.main() {
        if !candidates.is_empty() && !candidates.iter().any(|(c, _)| *c == m) {
            return Err(BuildersError::Entrypoint {
                path: ctx.dir.to_path_buf(),
                detail: format!(
                    "{origin} {m}: no such class with a main method (found: {})",
                    candidates
                        .iter()
                        .map(|c| c.0.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                hint: "pass the fully qualified name of a class with `static void main`".into(),
            });
        }
        return Ok((m, format!("from {origin}")));
    }
    match candidates {
        [(c, f)] => Ok((
            c.clone(),
            format!("the only `static void main` in {where_} ({f})"),
        )),
        [] => Err(BuildersError::Entrypoint {
            path: ctx.dir.to_path_buf(),
            detail: format!("no class with `static void main(` in {where_}"),
            hint: "pass --main com.example.Main, or --entrypoint".into(),
        }),
        _ => Err(BuildersError::Entrypoint {
            path: ctx.dir.to_path_buf(),
            detail: format!(
                "several classes with `static void main(`: {}",
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
    let spec = spec()?;
    let rules = &spec.rules;
    let distro = ctx.distro();
    let source_exclude = ctx.source_excludes(&spec.source.exclude)?;

    let pom = match ctx.read("pom.xml")? {
        Some(t) => Some(parse_pom(&t, &ctx.path("pom.xml"), rules)?),
        None => None,
    };
    if pom.is_none()
        && let Some((f, tool)) = spec.detect.unsupported.iter().find(|(f, _)| ctx.is_file(f))
    {
        return Err(BuildersError::Unsupported {
            path: ctx.path(f),
            what: format!("{tool} builds are not supported yet (only Maven and plain javac)"),
            hint: "add a pom.xml, or write a Dockerfile".into(),
        });
    }
    if let Some(p) = &pom
        && p.modules.is_empty()
        && p.packaging != "jar"
    {
        return Err(BuildersError::Unsupported {
            path: ctx.path("pom.xml"),
            what: format!(
                "<packaging>{}</packaging>: only jar projects are built",
                p.packaging
            ),
            hint: "write a Dockerfile for war/ear/pom projects".into(),
        });
    }

    if let Some(p) = &pom
        && !p.modules.is_empty()
        && p.packaging != "pom"
    {
        return Err(BuildersError::Parse {
            path: ctx.path("pom.xml"),
            line: None,
            detail: format!(
                "the pom lists <modules> but its <packaging> is {}, not pom",
                p.packaging
            ),
            hint: "an aggregator pom has <packaging>pom</packaging>".into(),
        });
    }
    let source_files = ctx.source_files(&source_exclude)?;
    let reactor = match &pom {
        Some(p) if !p.modules.is_empty() => Some(choose_module(&ctx, p, rules, &source_files)?),
        _ => None,
    };
    match (&reactor, &ctx.opts.module) {
        (Some(r), _) => ctx.reasons.push(r.why.clone()),
        (None, Some(m)) => {
            return Err(BuildersError::InvalidOption {
                option: "--module".into(),
                value: m.clone(),
                detail: format!(
                    "{} is not a multi-module Maven project (no <modules> in a pom.xml); drop                      --module",
                    ctx.dir.display()
                ),
            });
        }
        (None, None) => {}
    }
    // The pom the image is laid out from: the chosen module's, with what it inherits from the
    // root where it says nothing itself.
    let pom = match (pom, &reactor) {
        (Some(root), Some(r)) => {
            let mut m = r.modules[r.chosen].pom.clone();
            m.release = m.release.or(root.release.clone());
            m.repository = m.repository.or(root.repository.clone());
            Some(m)
        }
        (p, _) => p,
    };

    // Release and JDK.
    let default_jdk = spec
        .release(distro)?
        .jdks
        .iter()
        .map(|j| j.jdk)
        .min()
        .ok_or_else(|| BuildersError::data("java.toml", format!("no JDK for {distro}")))?;
    let (release, release_why) = match pom.as_ref().and_then(|p| p.release.clone()) {
        Some((n, origin)) => (n, format!("Java {n} from pom.xml {origin}")),
        None if pom.is_some() => (
            default_jdk,
            format!("pom.xml names no Java release: Java {default_jdk}, Debian {distro}'s default"),
        ),
        None => (
            default_jdk,
            format!("plain sources: compiled for Java {default_jdk}"),
        ),
    };
    // The host's javac must compile for the release (plain sources: `javac --release N` for
    // the runtime's Java; a pom without a release leaves it to javac).
    let requirement_origin = match (&pom, pom.as_ref().and_then(|p| p.release.clone())) {
        (_, Some((_, origin))) => Some(format!("pom.xml, {origin}")),
        (None, None) => Some(format!(
            "plain sources are compiled with --release {release} for Debian {distro}'s java runtime"
        )),
        (Some(_), None) => None,
    };
    let requirements: Vec<Requirement> = requirement_origin
        .into_iter()
        .map(|origin| Requirement {
            what: "Java".into(),
            constraint: Constraint::JavaRelease(release),
            origin,
            hint: format!("install JDK {release} or newer on the host, or drop --toolchain host"),
        })
        .collect();
    let jdk = choose_jdk(&spec, distro, release, &ctx.path("pom.xml"))?.clone();
    ctx.reasons.push(format!(
        "toolchain: JDK {} ({release_why}){}",
        jdk.jdk,
        if jdk.packages.is_empty() {
            String::new()
        } else {
            format!(", with {}", jdk.packages.join(", "))
        }
    ));

    let debian_maven = spec.release(distro)?.debian_maven.clone();
    let mut packages = jdk.packages.clone();
    let mut inp = ctx.inputs();
    inp.var("jdk", jdk.jdk.to_string())
        .var("debian_repo", rules.debian_repo.clone())
        .var("dependency_plugin", debian_maven.dependency_plugin.clone());
    let java_home = spec.render_str(&rules.java_home, &inp)?;
    let cds = jdk.jdk >= rules.cds_min_jdk;
    for (var, template) in [
        ("jvm_cds", &rules.cds_opts),
        ("jvm_cds_deps", &rules.cds_use_opts),
    ] {
        let opts = if cds {
            spec.render_str(template, &inp)?
        } else {
            String::new()
        };
        inp.var(var, opts);
    }
    inp.fact("cds", cds);
    let mut path_prepend = vec![format!("{java_home}/bin")];
    inp.var("java_home", java_home)
        .var("release", release.to_string())
        .fact("maven", pom.is_some())
        .fact("plain", pom.is_none());

    let overridden = ctx.entrypoint_overridden();
    let mut main = None;
    if let Some(p) = &pom {
        path_prepend.push(rules.maven_bin.clone());
        let settings = rules.settings_files.iter().find(|f| ctx.is_file(f));
        let (repo, app_packages) = match &reactor {
            None => maven_repo(&ctx.path("pom.xml"), p, rules, settings)?,
            Some(r) => reactor_repo(&ctx, r, rules, settings)?,
        };
        let rp = &rules.repository_property;
        match (repo, settings) {
            (MavenRepo::Remote, Some(s)) => ctx.reasons.push(format!(
                "Maven resolves remotely through the app's settings {s} (mvn -s /src/{s})"
            )),
            (MavenRepo::Remote, None) => ctx.reasons.push(format!(
                "Maven resolves remotely (Maven Central; the step has the network); \
                 <{rp}>debian</{rp}> in pom.xml builds air-gapped from Debian's packages"
            )),
            (MavenRepo::Debian, _) => {
                for pk in debian_maven.packages.iter().chain(&app_packages) {
                    if !packages.contains(pk) {
                        packages.push(pk.clone());
                    }
                }
                ctx.reasons.push(format!(
                    "Maven resolves offline from Debian's Maven repository {} (pom.xml \
                     <{rp}>debian</{rp}>; no network, no ~/.m2 cache): the build root gets {}{}",
                    rules.debian_repo,
                    debian_maven.packages.join(", "),
                    if app_packages.is_empty() {
                        String::new()
                    } else {
                        format!(
                            ", and {} for the app's dependencies ({})",
                            app_packages.join(", "),
                            rules.packages_property
                        )
                    }
                ));
            }
        }
        inp.fact("debian_repo", repo == MavenRepo::Debian);
        inp.list(
            "settings",
            settings
                .map(|s| vec!["-s".to_string(), format!("/src/{s}")])
                .unwrap_or_default(),
        )
        .list("sources", Vec::new());
        let mut snapshot_jars = vec!["*-SNAPSHOT.jar".to_string()];
        match &reactor {
            None => {
                inp.list("pom_keys", vec!["pom.xml".to_string()])
                    .list("reactor_args", Vec::new())
                    .var("libs_out", "/out/libs")
                    .var("libs", "/out/libs")
                    .var("classes", "/src/target/classes")
                    .fact("reactor", false)
                    .fact("libs", p.runtime_deps || p.has_parent);
            }
            Some(r) => {
                let dir = &r.modules[r.chosen].dir;
                let mut keys = vec!["pom.xml".to_string()];
                keys.extend(r.modules.iter().map(|m| format!("{}/pom.xml", m.dir)));
                for (i, m) in r.modules.iter().enumerate() {
                    if i != r.chosen
                        && m.pom.packaging == "jar"
                        && let Some(a) = &m.pom.artifact_id
                    {
                        let v = m
                            .pom
                            .version
                            .as_deref()
                            .map_or_else(|| "*".to_string(), globset::escape);
                        snapshot_jars.push(format!("{}-{v}.jar", globset::escape(a)));
                    }
                }
                inp.list("pom_keys", keys)
                    .list(
                        "reactor_args",
                        vec!["-pl".to_string(), dir.clone(), "-am".to_string()],
                    )
                    .var("libs_out", "target/ocibuild-libs")
                    .var("libs", format!("/src/{dir}/target/ocibuild-libs"))
                    .var("classes", format!("/src/{dir}/target/classes"))
                    .fact("reactor", true)
                    .fact("libs", true);
            }
        }
        inp.list("snapshot_jars", snapshot_jars);
        let (main_dir, where_) = match &reactor {
            None => (String::new(), "src/main/java".to_string()),
            Some(r) => {
                let d = &r.modules[r.chosen].dir;
                (format!("{d}/"), format!("{d}/src/main/java"))
            }
        };
        if let Some((m, origin)) = ctx.main() {
            main = Some((m, format!("from {origin}")));
        } else if let Some((m, origin)) = &p.main_class {
            main = Some((m.clone(), format!("{main_dir}pom.xml {origin}")));
        } else if !overridden {
            let files = java_sources_under(&source_files, &where_);
            main = Some(pick_main(&ctx, &main_candidates(&ctx, &files)?, &where_)?);
        }
    } else {
        let files: Vec<String> = source_files
            .iter()
            .filter(|f| f.ends_with(".java"))
            .filter(|f| {
                !rules
                    .test_dirs
                    .iter()
                    .any(|t| f.starts_with(&format!("{t}/")))
            })
            .cloned()
            .collect();
        if files.is_empty() {
            return Err(BuildersError::NotDetected {
                dir: ctx.dir.to_path_buf(),
                looked_for: "pom.xml, *.java".into(),
            });
        }
        ctx.reasons.push(format!(
            "no pom.xml: javac compiles {} source file(s)",
            files.len()
        ));
        let candidates = main_candidates(&ctx, &files)?;
        if !overridden || ctx.main().is_some() {
            main = Some(pick_main(&ctx, &candidates, "the sources")?);
        }
        inp.list("settings", Vec::new())
            .list("sources", files)
            .list("pom_keys", Vec::new())
            .list("reactor_args", Vec::new())
            .list("snapshot_jars", Vec::new())
            .var("libs_out", "/out/libs")
            .var("libs", "/out/libs")
            .var("classes", "/out/classes")
            .fact("reactor", false)
            .fact("libs", false)
            .fact("debian_repo", false);
    }

    let entrypoint = match &main {
        Some((m, why)) => {
            ctx.reasons.push(format!("main class {m}: {why}"));
            inp.var("main", m.clone());
            if overridden {
                Vec::new()
            } else {
                spec.entrypoint(if pom.is_some() { "maven" } else { "plain" }, &inp)?
            }
        }
        None => Vec::new(),
    };
    ctx.reasons.push(format!(
        "runtime {}: the JRE {} of Debian {distro}",
        jdk.runtime, jdk.jdk
    ));
    let toolchain = Toolchain {
        profile: spec.toolchain.profile.clone(),
        packages,
        backports: false,
        path_prepend,
        version: format!("JDK {}", jdk.jdk),
        host_tools: Vec::new(),
    };
    let parts = Parts {
        toolchain,
        runtime_profile: jdk.runtime.clone(),
        inputs: inp,
        source_exclude,
        entrypoint,
        cmd: Vec::new(),
        ports: Vec::new(),
        version: pom.and_then(|p| p.version),
        requirements,
    };
    finish(ctx, Lang::Java, &spec, parts)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn rules() -> Rules {
        spec().unwrap().rules
    }

    fn pom(body: &str) -> Pom {
        parse_pom(
            &format!("<project><modelVersion>4.0.0</modelVersion>{body}</project>"),
            Path::new("pom.xml"),
            &rules(),
        )
        .unwrap()
    }

    #[test]
    fn release_sources() {
        let cases = [
            (
                "<properties><maven.compiler.release>17</maven.compiler.release></properties>",
                Some(17),
            ),
            (
                "<properties><maven.compiler.target>1.8</maven.compiler.target></properties>",
                Some(8),
            ),
            (
                "<properties><maven.compiler.source>11</maven.compiler.source></properties>",
                Some(11),
            ),
            (
                "<properties><java.version>21</java.version></properties>",
                Some(21),
            ),
            (
                "<properties><!-- <maven.compiler.release>8</maven.compiler.release> --><maven.compiler.release>21</maven.compiler.release></properties>",
                Some(21),
            ),
            (
                "<properties><jdk>25</jdk></properties><build><plugins><plugin><artifactId>maven-compiler-plugin</artifactId><configuration><release>${jdk}</release></configuration></plugin></plugins></build>",
                Some(25),
            ),
            (
                "<properties><maven.compiler.release>11</maven.compiler.release></properties><build><plugins><plugin><artifactId>maven-compiler-plugin</artifactId><configuration><target>1.8</target></configuration></plugin></plugins></build>",
                Some(11),
            ),
            (
                "<properties><maven.compiler.release>${undefined}</maven.compiler.release></properties>",
                None,
            ),
            ("", None),
        ];
        for (body, want) in cases {
            assert_eq!(pom(body).release.map(|r| r.0), want, "{body}");
        }
    }

    #[test]
    fn main_class_sources() {
        let p = pom("<properties><mainClass>com.example.App</mainClass></properties>");
        assert_eq!(p.main_class.unwrap().0, "com.example.App");
        let p = pom("<properties><start-class>a.B</start-class></properties>");
        assert_eq!(p.main_class.unwrap().0, "a.B");
        let p = pom(
            "<properties><m>x.Y</m></properties><build><plugins><plugin><artifactId>maven-jar-plugin</artifactId>\
             <configuration><archive><manifest><mainClass>${m}</mainClass></manifest></archive></configuration></plugin></plugins></build>",
        );
        assert_eq!(
            p.main_class.unwrap(),
            ("x.Y".into(), "maven-jar-plugin <mainClass>".into())
        );
        let p = pom(
            "<build><plugins><plugin><artifactId>exec-maven-plugin</artifactId><configuration><mainClass>e.Main</mainClass></configuration></plugin></plugins></build>",
        );
        assert_eq!(p.main_class.unwrap().0, "e.Main");
        let p = pom("<!-- <properties><mainClass>c.Commented</mainClass></properties> -->");
        assert_eq!(p.main_class, None);
    }

    #[test]
    fn coordinates_dependencies_modules() {
        let p = pom(
            "<parent><groupId>g.p</groupId><version>2.0</version></parent><artifactId>a</artifactId>\
             <dependencies><dependency><artifactId>junit</artifactId><scope>test</scope></dependency></dependencies>",
        );
        assert_eq!(p.group_id.as_deref(), Some("g.p"));
        assert_eq!(p.version.as_deref(), Some("2.0"));
        assert!(p.has_parent);
        assert!(!p.runtime_deps);
        let p = pom(
            "<dependencies><dependency><artifactId>gson</artifactId></dependency></dependencies><modules><module>x</module></modules>",
        );
        assert!(p.runtime_deps);
        assert_eq!(p.modules, ["x"]);
        assert_eq!(p.packaging, "jar");
        let err = parse_pom(
            "<project>\n<a>\n</project>",
            Path::new("/p/pom.xml"),
            &rules(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("/p/pom.xml:3"), "{err}");
        assert!(parse_pom("<settings/>", Path::new("pom.xml"), &rules()).is_err());
    }

    #[test]
    fn repository_properties_and_package_names() {
        let p = pom(
            "<properties>\n<r>debian</r>\n<ocibuild.maven.repository>${r}</ocibuild.maven.repository>\n\
             <ocibuild.debian.packages>libgson-java</ocibuild.debian.packages></properties>",
        );
        assert_eq!(p.repository, Some(("debian".into(), 3)));
        assert_eq!(p.debian_packages, Some(("libgson-java".into(), 4)));
        assert_eq!(pom("").repository, None);
        for ok in ["libcommons-lang3-java", "g++", "libc6.1", "0ad"] {
            assert!(is_package_name(ok), "{ok}");
        }
        for bad in ["", "a", "Lib", "-x", "a b", "a;b", "a/b", "a_b"] {
            assert!(!is_package_name(bad), "{bad}");
        }
    }

    #[test]
    fn main_methods() {
        let src = "package com.example;\n/* public static void main(String[] a) in a comment */\npublic class App {\n  public static void main ( String [] args ) {}\n}\n";
        assert_eq!(
            main_class_of("src/com/example/App.java", src).as_deref(),
            Some("com.example.App")
        );
        assert_eq!(
            main_class_of(
                "Hello.java",
                "class Hello { static public void main(String... a) {} }"
            )
            .as_deref(),
            Some("Hello")
        );
        assert_eq!(
            main_class_of(
                "A.java",
                "class A { // static void main(\n void main() {} }"
            ),
            None
        );
        assert_eq!(
            main_class_of("A.java", "class A { String s = \"static void main(\"; }"),
            None
        );
        assert_eq!(java_release("1.8"), Some(8));
        assert_eq!(java_release("21"), Some(21));
        assert_eq!(java_release("x"), None);
    }
}
