//! Python (venv + pip): requirements.txt, pyproject.toml/setup.py, requires-python, the
//! entrypoint (console script, WSGI/ASGI server, script file).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::common::{Ctx, Parts, finish, origin_of, read_opt};
use crate::error::{BuildersError, Result, line_of};
use crate::markers::MarkerEnv;
use crate::plan::{Constraint, GeneratedFile, Lang, Plan, Requirement, Toolchain};
use crate::pyentry;
use crate::pylock::{self, LockKind};
use crate::spec::{self, Inputs, Spec};
use crate::version::pep440_satisfied;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Release {
    pub python: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Rules {
    pub backends: BTreeMap<String, Vec<String>>,
    pub default_backend: String,
    pub entry_files: Vec<String>,
    pub wsgi_modules: Vec<String>,
    pub asgi_modules: Vec<String>,
    pub app_objects: Vec<String>,
    pub factories: Vec<String>,
    pub server_port: String,
    pub build_leftovers: Vec<String>,
    /// Source-only distributions that compile against a C library → the Debian packages
    /// (headers, `pg_config`-style tools) their build needs.
    pub build_packages: BTreeMap<String, Vec<String>>,
}

pub(crate) type PythonSpec = Spec<Release, Rules>;

pub(crate) fn spec() -> Result<PythonSpec> {
    spec::load("python.toml", spec::PYTHON_TOML)
}

/// The parts of pyproject.toml the builder reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PyProject {
    /// A `[project]` table is there.
    pub has_project: bool,
    /// A `[build-system]` table is there.
    pub has_build_system: bool,
    pub name: Option<String>,
    pub version: Option<String>,
    pub requires_python: Option<String>,
    pub build_backend: Option<String>,
    /// Normalised names of `[project] dependencies`.
    pub dependencies: Vec<String>,
    /// `[project.scripts]` (then `[tool.poetry.scripts]`) names, in file order.
    pub scripts: Vec<String>,
}

pub(crate) fn parse_pyproject(text: &str, path: &Path) -> Result<PyProject> {
    let v: toml::Table = toml::from_str(text).map_err(|e| BuildersError::Parse {
        path: path.to_path_buf(),
        line: e.span().map(|s| line_of(text, s.start)),
        detail: e.message().trim().to_string(),
        hint: "fix pyproject.toml: it must be valid TOML".into(),
    })?;
    let project = v.get("project").and_then(toml::Value::as_table);
    let bs = v.get("build-system").and_then(toml::Value::as_table);
    let s = |t: Option<&toml::Table>, k: &str| {
        t.and_then(|t| t.get(k))
            .and_then(toml::Value::as_str)
            .map(str::to_string)
    };
    let mut dependencies: Vec<String> = project
        .and_then(|p| p.get("dependencies"))
        .and_then(toml::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(toml::Value::as_str)
                .filter_map(requirement_name)
                .collect()
        })
        .unwrap_or_default();
    // Poetry's own table (`flask = "^3.1"`), python excluded
    if let Some(t) = v
        .get("tool")
        .and_then(|t| t.get("poetry"))
        .and_then(|p| p.get("dependencies"))
        .and_then(toml::Value::as_table)
    {
        dependencies.extend(
            t.keys()
                .filter(|k| k.as_str() != "python")
                .filter_map(|k| requirement_name(k)),
        );
    }
    let mut scripts = Vec::new();
    for (table, header) in [
        (
            project
                .and_then(|p| p.get("scripts"))
                .and_then(toml::Value::as_table),
            "project.scripts",
        ),
        (
            v.get("tool")
                .and_then(|t| t.get("poetry"))
                .and_then(|p| p.get("scripts"))
                .and_then(toml::Value::as_table),
            "tool.poetry.scripts",
        ),
    ] {
        if let Some(t) = table {
            let mut names: Vec<String> = t.keys().cloned().collect();
            names.sort_by_key(|n| key_position(text, header, n).unwrap_or(usize::MAX));
            scripts.extend(names);
        }
    }
    Ok(PyProject {
        has_project: project.is_some(),
        has_build_system: bs.is_some(),
        name: s(project, "name").or_else(|| {
            v.get("tool")
                .and_then(|t| t.get("poetry"))
                .and_then(|p| p.get("name"))
                .and_then(toml::Value::as_str)
                .map(str::to_string)
        }),
        version: s(project, "version"),
        requires_python: s(project, "requires-python"),
        build_backend: s(bs, "build-backend"),
        dependencies,
        scripts,
    })
}

/// Where key `name` of table `header` appears in the TOML text (for file order; the parsed
/// table is sorted). Handles `[header]` sections and dotted `header.name =` keys.
fn key_position(text: &str, header: &str, name: &str) -> Option<usize> {
    let mut in_section = false;
    let mut pos = 0;
    let last = header.rsplit('.').next().unwrap_or(header);
    for line in text.split_inclusive('\n') {
        let l = line.trim();
        if l.starts_with('[') {
            let h: String = l
                .trim_matches(|c| c == '[' || c == ']')
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            in_section = h == header;
        } else if let Some((k, _)) = l.split_once('=') {
            let k = k.trim().trim_matches('"').trim_matches('\'');
            if in_section && k == name {
                return Some(pos);
            }
            if k.ends_with(&format!("{last}.{name}")) || k == format!("{header}.{name}") {
                return Some(pos);
            }
        }
        pos += line.len();
    }
    None
}

/// `Flask[async]>=2 ; python_version>"3"` → `flask`.
pub(crate) fn requirement_name(req: &str) -> Option<String> {
    let r = req.trim();
    let name: String = r
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    if name.is_empty() {
        return None;
    }
    Some(name.to_ascii_lowercase().replace(['_', '.'], "-"))
}

/// What requirements.txt holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Requirements {
    /// Normalised requirement names.
    pub names: Vec<String>,
    /// Files it includes with -r/-c (relative to the app).
    pub includes: Vec<String>,
    /// It installs a local directory (`-e .`, `./pkg`, `file:`).
    pub local: bool,
    /// At least one requirement or option line.
    pub any: bool,
}

pub(crate) fn parse_requirements(text: &str) -> Requirements {
    let mut r = Requirements::default();
    let joined = text.replace("\\\r\n", " ").replace("\\\n", " ");
    for raw in joined.lines() {
        let line = match raw.find(" #").or_else(|| raw.starts_with('#').then_some(0)) {
            Some(i) => &raw[..i],
            None => raw,
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        r.any = true;
        // `-r file`, `-rfile`, `--requirement=file`, `--requirement file`
        let opt = |long: &str, short: &str| -> Option<String> {
            [long, short].iter().find_map(|p| {
                let rest = line.strip_prefix(p)?;
                let rest = rest.strip_prefix('=').unwrap_or(rest).trim();
                (!rest.is_empty()).then(|| rest.to_string())
            })
        };
        if let Some(f) = opt("--requirement", "-r").or_else(|| opt("--constraint", "-c")) {
            r.includes.push(f);
            continue;
        }
        if let Some(e) = opt("--editable", "-e") {
            if !e.contains("://") || e.starts_with("file:") {
                r.local = true;
            }
            continue;
        }
        if line.starts_with('-') {
            continue; // --index-url and friends
        }
        if line.starts_with('.') || line.starts_with('/') || line.starts_with("file:") {
            r.local = true;
            continue;
        }
        if let Some(n) = requirement_name(line) {
            if line.contains(" @ file:") {
                r.local = true;
            }
            r.names.push(n);
        }
    }
    r
}

pub(crate) fn describe(dir: &Path, found: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for f in found {
        if f == "pyproject.toml" {
            let path = dir.join(f);
            if let Some(Ok(p)) = read_opt(&path)
                .ok()
                .flatten()
                .map(|t| parse_pyproject(&t, &path))
            {
                let mut d = Vec::new();
                if let Some(n) = &p.name {
                    d.push(format!("project {n}"));
                }
                if let Some(v) = &p.version {
                    d.push(format!("version {v}"));
                }
                if let Some(r) = &p.requires_python {
                    d.push(format!("requires-python {r}"));
                }
                if !d.is_empty() {
                    out.push(format!("pyproject.toml found ({})", d.join(", ")));
                    continue;
                }
            }
        }
        out.push(format!("{f} found"));
    }
    out
}

/// Whether `text` (a Python module) binds `object` at the top level.
fn binds_object(text: &str, object: &str) -> bool {
    text.lines().any(|l| {
        if l.starts_with(char::is_whitespace) {
            return false;
        }
        let Some(rest) = l.strip_prefix(object) else {
            return false;
        };
        let rest = rest.trim_start();
        (rest.starts_with('=') && !rest.starts_with("=="))
            || (rest.starts_with(':') && rest.contains('='))
    }) || text.lines().any(|l| {
        l.strip_prefix("def ")
            .or_else(|| l.strip_prefix("async def "))
            .is_some_and(|r| r.strip_prefix(object).is_some_and(|r| r.starts_with('(')))
    })
}

/// `module:object` of a WSGI/ASGI app among `modules` at the root, then `*/module.py`.
fn find_app_object(
    ctx: &Ctx<'_>,
    modules: &[String],
    objects: &[String],
) -> Result<Option<(String, String)>> {
    let mut candidates: Vec<(String, String)> = modules
        .iter()
        .map(|m| (format!("{m}.py"), m.clone()))
        .collect();
    let mut subdirs = Vec::new();
    if let Ok(rd) = std::fs::read_dir(ctx.dir) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if e.path().is_dir()
                && !n.starts_with('.')
                && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                subdirs.push(n);
            }
        }
    }
    subdirs.sort();
    for d in &subdirs {
        for m in modules {
            candidates.push((format!("{d}/{m}.py"), format!("{d}.{m}")));
        }
    }
    for (file, module) in candidates {
        let Some(text) = ctx.read(&file)? else {
            continue;
        };
        for o in objects {
            if binds_object(&text, o) {
                return Ok(Some((module, o.clone())));
            }
        }
    }
    Ok(None)
}

/// The entrypoint when neither `--main` nor `--entrypoint` says: a web app object whose server
/// is a dependency, then the console script named like the project (or the only one), then a
/// WSGI/ASGI app found by its module name, then a top-level `__main__` script, then a package
/// with `__main__.py`. `--explain` says what was found and what was chosen.
#[allow(clippy::too_many_arguments)]
fn detect_entrypoint(
    ctx: &mut Ctx<'_>,
    spec: &PythonSpec,
    inp: &mut Inputs,
    deps: &[String],
    scripts: &[String],
    project_name: Option<&str>,
    ports: &mut Vec<String>,
) -> Result<Vec<String>> {
    let rules = &spec.rules;
    let has = |d: &str| deps.iter().any(|x| x == d);
    let web = pyentry::web_apps(ctx.dir, &rules.app_objects, &rules.factories);
    let main_scripts: Vec<String> = pyentry::main_scripts(ctx.dir)
        .into_iter()
        .filter(|f| f != "manage.py" && f != "setup.py")
        .collect();
    let mut found = Vec::new();
    for w in &web {
        let server = w.framework.server();
        found.push(if has(server) {
            w.describe()
        } else {
            format!("{} ({server} is not a dependency)", w.describe())
        });
    }
    if !scripts.is_empty() {
        found.push(format!("console scripts {}", scripts.join(", ")));
    }
    if !main_scripts.is_empty() {
        found.push(format!("__main__ scripts {}", main_scripts.join(", ")));
    }
    if !found.is_empty() {
        ctx.reasons
            .push(format!("entrypoint candidates: {}", found.join("; ")));
    }
    let port = rules.server_port.clone();

    // 0. The Procfile's web process (Heroku's, a buildpack's): the venv's python or a
    //    dependency's program.
    match crate::procfile::web_process(ctx.dir, &port)? {
        crate::procfile::Web::Usable(w) => {
            let prog = w.argv[0].as_str();
            let resolved = if prog == "python" || prog == "python3" {
                Some("/app/.venv/bin/python3".to_string())
            } else if requirement_name(prog).is_some_and(|n| has(&n)) && !prog.contains('/') {
                Some(format!("/app/.venv/bin/{prog}"))
            } else {
                None
            };
            if let Some(program) = resolved {
                ctx.reasons.push(format!(
                    "entrypoint: {}{}",
                    w.describe(),
                    w.port_note(&port)
                ));
                for (k, v) in w.env {
                    ctx.config.env.entry(k).or_insert(v);
                }
                if w.uses_port {
                    ctx.config.env.entry("PORT".into()).or_insert(port.clone());
                    ports.push(format!("{port}/tcp"));
                }
                let mut argv = vec![program];
                argv.extend(w.argv.into_iter().skip(1));
                return Ok(argv);
            }
            ctx.reasons.push(format!(
                "{}: {prog} is neither python nor a dependency's program: not used",
                w.describe()
            ));
        }
        crate::procfile::Web::Unusable(at, command, why) => {
            ctx.reasons
                .push(format!("{at} web {command:?}: {why}: not used"));
        }
        crate::procfile::Web::Absent => {}
    }

    // 1. A web app whose server is a dependency.
    if let Some(w) = web.iter().find(|w| has(w.framework.server())) {
        let server = w.framework.server();
        let (form, object) = match (server, w.factory) {
            ("uvicorn", true) => ("uvicorn_factory", w.object.clone()),
            ("uvicorn", false) => ("uvicorn", w.object.clone()),
            (_, true) => ("gunicorn", format!("{}()", w.object)),
            _ => ("gunicorn", w.object.clone()),
        };
        inp.var("module", w.module.clone()).var("object", object);
        ports.push(format!("{port}/tcp"));
        ctx.reasons.push(format!(
            "entrypoint: {server} serves the {} on port {port} ({server} is a dependency)",
            w.describe()
        ));
        return spec.entrypoint(form, inp);
    }

    // 2. The console script named like the project, or the only one.
    let named = project_name.and_then(|n| scripts.iter().find(|s| pyentry::named_like(s, n)));
    let chosen = match (named, scripts) {
        (Some(s), _) => Some((s, "named like the project")),
        (None, [one]) => Some((one, "the only one in [project.scripts]")),
        (None, []) => None,
        (None, several) => {
            return Err(BuildersError::Entrypoint {
                path: ctx.path("pyproject.toml"),
                detail: format!(
                    "[project.scripts] has {} console scripts ({}) and none is named like the \
                     project{}",
                    several.len(),
                    several.join(", "),
                    project_name.map(|n| format!(" {n:?}")).unwrap_or_default()
                ),
                hint: format!(
                    "choose one: --entrypoint /app/.venv/bin/{} (or `entrypoint` in ocibuild.toml), \
                     or --main with a module or script",
                    several[0]
                ),
            });
        }
    };
    if let Some((s, why)) = chosen {
        inp.var("script", s.clone());
        ctx.reasons
            .push(format!("entrypoint: console script {s:?} ({why})"));
        return spec.entrypoint("script", inp);
    }

    // 3. A WSGI/ASGI app found by its module and object names.
    for (server, modules, form) in [
        ("gunicorn", &rules.wsgi_modules, "gunicorn"),
        ("uvicorn", &rules.asgi_modules, "uvicorn"),
    ] {
        if !has(server) {
            continue;
        }
        if let Some((module, object)) = find_app_object(ctx, modules, &rules.app_objects)? {
            inp.var("module", module.clone())
                .var("object", object.clone());
            ports.push(format!("{port}/tcp"));
            ctx.reasons.push(format!(
                "entrypoint: {server} serves {module}:{object} on port {port} ({server} is a \
                 dependency)"
            ));
            return spec.entrypoint(form, inp);
        }
    }

    // 4. A top-level script with a __main__ guard (the conventional names first), or a
    //    conventional entry file.
    let by_convention = |files: &[String]| {
        rules
            .entry_files
            .iter()
            .find(|f| files.contains(f))
            .cloned()
    };
    let file = match main_scripts.as_slice() {
        [one] => Some((one.clone(), "its `if __name__ == \"__main__\":` guard")),
        [] => rules
            .entry_files
            .iter()
            .find(|f| ctx.is_file(f))
            .map(|f| (f.clone(), "file found")),
        several => match by_convention(several) {
            Some(f) => Some((f, "the conventional name among the __main__ scripts")),
            None => {
                return Err(BuildersError::Entrypoint {
                    path: ctx.dir.to_path_buf(),
                    detail: format!(
                        "cannot tell how to start the app: several top-level scripts have an \
                         `if __name__ == \"__main__\":` guard ({})",
                        several.join(", ")
                    ),
                    hint: format!(
                        "pass --main {} (or another of them), or --entrypoint",
                        several[0]
                    ),
                });
            }
        },
    };
    if let Some((f, why)) = file {
        inp.var("file", f.clone());
        ctx.reasons.push(format!("entrypoint: python3 {f} ({why})"));
        return spec.entrypoint("file", inp);
    }

    // 5. A package runnable with -m.
    let mut pkgs = Vec::new();
    if let Ok(rd) = std::fs::read_dir(ctx.dir) {
        for e in rd.flatten() {
            if e.path().join("__main__.py").is_file() && e.path().join("__init__.py").is_file() {
                pkgs.push(e.file_name().to_string_lossy().into_owned());
            }
        }
    }
    pkgs.sort();
    if let [one] = pkgs.as_slice() {
        inp.var("module", one.clone());
        ctx.reasons.push(format!(
            "entrypoint: python3 -m {one} ({one}/__main__.py found)"
        ));
        return spec.entrypoint("module", inp);
    }
    let unserved: Vec<String> = web
        .iter()
        .map(|w| format!("{} needs {}", w.describe(), w.framework.server()))
        .collect();
    Err(BuildersError::Entrypoint {
        path: ctx.dir.to_path_buf(),
        detail: format!(
            "cannot tell how to start the app: no web app whose server is a dependency, no \
             [project.scripts], no top-level script with an `if __name__ == \"__main__\":` \
             guard, none of {}{}{}",
            rules.entry_files.join(", "),
            if pkgs.is_empty() {
                String::new()
            } else {
                format!("; several packages with __main__.py: {}", pkgs.join(", "))
            },
            if unserved.is_empty() {
                String::new()
            } else {
                format!(
                    "; found {} (add the server to the dependencies)",
                    unserved.join(", ")
                )
            }
        ),
        hint: "pass --main app.py (or a module), or --entrypoint".into(),
    })
}

pub(crate) fn plan(mut ctx: Ctx<'_>) -> Result<Plan> {
    let spec = spec()?;
    let rules = &spec.rules;
    let distro = ctx.distro();
    let rel = spec.release(distro)?;

    let pyproject_text = ctx.read("pyproject.toml")?;
    let pyproject = match &pyproject_text {
        Some(t) => Some(parse_pyproject(t, &ctx.path("pyproject.toml"))?),
        None => None,
    };
    let req_text = ctx.read("requirements.txt")?;
    let reqs = req_text
        .as_deref()
        .map(parse_requirements)
        .unwrap_or_default();
    let setup_py = ctx.is_file("setup.py");
    let locks: Vec<LockKind> = LockKind::ALL
        .into_iter()
        .filter(|k| ctx.is_file(k.file()))
        .collect();
    if ctx.is_file("Pipfile") && !locks.contains(&LockKind::Pipenv) && req_text.is_none() {
        return Err(BuildersError::Unsupported {
            path: ctx.path("Pipfile"),
            what: "a Pipfile without its Pipfile.lock".into(),
            hint: "run `pipenv lock` and commit Pipfile.lock (the image installs the locked \
                   versions), or list the dependencies in requirements.txt"
                .into(),
        });
    }
    if pyproject.is_none() && req_text.is_none() && !setup_py {
        if let Some(k) = locks.iter().find(|k| **k != LockKind::Pipenv) {
            return Err(BuildersError::Unsupported {
                path: ctx.path(k.file()),
                what: format!("{k} without pyproject.toml"),
                hint: "commit the pyproject.toml the lockfile belongs to".into(),
            });
        }
        if locks.is_empty() {
            return Err(BuildersError::NotDetected {
                dir: ctx.dir.to_path_buf(),
                looked_for: "requirements.txt, pyproject.toml, setup.py, Pipfile.lock".into(),
            });
        }
    }

    // With --toolchain host the host's python3 makes /app/.venv, which only runs on the same
    // minor version: the runtime's.
    let minor = rel
        .python
        .rsplit_once('.')
        .map(|(mm, _)| mm)
        .unwrap_or(&rel.python)
        .to_string();
    let other = match distro {
        "trixie" => " (or pass --distro bookworm if the host has Python 3.11)",
        _ => " (or pass --distro trixie if the host has Python 3.13)",
    };
    let mut requirements = vec![Requirement {
        what: "Python".into(),
        constraint: Constraint::Pep440(format!("=={minor}.*")),
        origin: format!(
            "the python3 runtime of Debian {distro}: a venv only runs on its own minor version"
        ),
        hint: format!("install Python {minor} on the host{other}, or drop --toolchain host"),
    }];

    // Python version.
    let requires_python = pyproject.as_ref().and_then(|p| p.requires_python.clone());
    if let Some(spec_text) = &requires_python {
        requirements.insert(
            0,
            Requirement {
                what: "Python".into(),
                constraint: Constraint::Pep440(spec_text.clone()),
                origin: format!(
                    "{}, requires-python",
                    origin_of(
                        "pyproject.toml",
                        pyproject_text.as_deref().unwrap_or(""),
                        &["requires-python"]
                    )
                ),
                hint: "install a Python that requires-python accepts on the host, or drop \
                       --toolchain host"
                    .into(),
            },
        );
    }
    match &requires_python {
        Some(spec_text) => {
            let ok = pep440_satisfied(spec_text, &rel.python).map_err(|detail| {
                BuildersError::Parse {
                    path: ctx.path("pyproject.toml"),
                    line: None,
                    detail: format!("requires-python {spec_text:?}: {detail}"),
                    hint: "write a specifier such as \">=3.11\" or \">=3.10,<3.14\"".into(),
                }
            })?;
            if ok {
                ctx.reasons.push(format!(
                    "toolchain: Python {} of Debian {distro} satisfies requires-python {spec_text:?}",
                    rel.python
                ));
            } else if ctx.opts.toolchain_host {
                ctx.reasons.push(format!(
                    "warning: requires-python {spec_text:?} is not satisfied by the runtime's Python {} \
                     (Debian {distro})",
                    rel.python
                ));
            } else {
                let hint = if distro == "bookworm" {
                    "pass --distro trixie (Python 3.13), or widen requires-python"
                } else {
                    "pass --distro bookworm (Python 3.11) if it fits, or widen requires-python"
                };
                return Err(BuildersError::Version {
                    path: ctx.path("pyproject.toml"),
                    detail: format!(
                        "requires-python {spec_text:?} does not accept Python {}, the version Debian {distro} has",
                        rel.python
                    ),
                    hint: hint.into(),
                });
            }
        }
        None => ctx.reasons.push(format!(
            "toolchain: Python {} of Debian {distro} (no requires-python)",
            rel.python
        )),
    }

    // What gets installed.
    let project = pyproject
        .as_ref()
        .is_some_and(|p| p.has_project || p.has_build_system)
        || setup_py;
    // A lockfile pins the dependencies: exactly its versions, checked against its hashes.
    let project_name = pyproject
        .as_ref()
        .and_then(|p| p.name.as_deref())
        .map(|n| n.to_ascii_lowercase().replace(['_', '.'], "-"));
    let locked = match locks.first() {
        Some(&kind) => {
            let text = ctx.read(kind.file())?.unwrap_or_default();
            let env = MarkerEnv::new(&rel.python, &ctx.opts.goarch);
            let l = pylock::read(
                kind,
                &text,
                &ctx.path(kind.file()),
                project_name.as_deref(),
                &env,
            )?;
            let hashed = l.pins.iter().filter(|p| !p.hashes.is_empty()).count();
            ctx.reasons.push(format!(
                "lockfile {kind}: {} pinned packages installed exactly, without resolving \
                 (pip --no-deps{}); {} locked packages left out (dev groups, extras, other \
                 platforms or Pythons)",
                l.pins.len(),
                match (hashed, l.pins.len() - hashed) {
                    (_, 0) => " --require-hashes: every download checked against the lock's hashes"
                        .to_string(),
                    (0, _) => "; the lock has no hashes".to_string(),
                    (h, n) => format!(
                        "; {h} checked against the lock's hashes, {n} without hashes in the lock"
                    ),
                },
                l.left_out
            ));
            if locks.len() > 1 {
                ctx.reasons.push(format!(
                    "note: {} also found; {kind} is used",
                    locks[1..]
                        .iter()
                        .map(|k| k.file())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            if reqs.any {
                ctx.reasons.push(format!(
                    "note: requirements.txt is not used: {kind} pins the dependencies"
                ));
            }
            Some(l)
        }
        None => None,
    };
    let install_requirements = reqs.any && locked.is_none();

    // What makes the venv depend on the build machine's architecture, as far as the files say
    // (a build for another platform checks the built layer for ELF files besides).
    let mut arch_specific = Vec::new();
    if let (Some(l), Some(kind)) = (&locked, locks.first()) {
        let native: Vec<&str> = l
            .pins
            .iter()
            .filter(|p| p.platform_wheels_only)
            .map(|p| p.name.as_str())
            .collect();
        if !native.is_empty() {
            arch_specific.push(format!(
                "{kind}: {} only as platform wheels, not none-any ({}{})",
                if native.len() == 1 {
                    "1 package comes".to_string()
                } else {
                    format!("{} packages come", native.len())
                },
                native
                    .iter()
                    .take(5)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", "),
                if native.len() > 5 { ", …" } else { "" }
            ));
        }
    }
    let mut dep_files: Vec<&str> = vec!["requirements.txt", "pyproject.toml", "setup.py"];
    dep_files.extend(locks.first().map(|k| k.file()));
    for f in dep_files {
        if ctx.read(f)?.is_some_and(|t| t.contains("platform_machine")) {
            arch_specific.push(format!(
                "{f}: a dependency's marker names platform_machine (the packages installed depend on the machine's CPU)"
            ));
        }
    }

    let mut toolchain_packages = Vec::new();
    if install_requirements {
        ctx.reasons
            .push("requirements.txt: pip installs it into /app/.venv".into());
    } else if req_text.is_some() && locked.is_none() {
        ctx.reasons
            .push("requirements.txt lists nothing: no requirements to install".into());
    }
    if project {
        let backend = pyproject
            .as_ref()
            .and_then(|p| p.build_backend.clone())
            .unwrap_or_else(|| rules.default_backend.clone());
        let Some(pkgs) = rules.backends.get(&backend) else {
            return Err(BuildersError::Unsupported {
                path: ctx.path("pyproject.toml"),
                what: format!("build backend {backend:?} is not available in the build root"),
                hint: format!(
                    "use one of {} in [build-system], or list the app's dependencies in \
                     requirements.txt and drop [build-system]",
                    rules
                        .backends
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        };
        toolchain_packages = pkgs.clone();
        ctx.reasons.push(format!(
            "the project is built as a wheel with --no-build-isolation by {backend} from Debian \
             ({}), offline, then pip installs it, not editable (the image never points back at \
             the build's /src), {}",
            pkgs.join(", "),
            if locked.is_some() {
                "alone: the lock's pins are its dependencies"
            } else {
                "with its dependencies"
            }
        ));
    }
    let venv_keys = if project || (reqs.local && locked.is_none()) {
        Vec::new()
    } else if let Some(k) = locks.first().filter(|_| locked.is_some()) {
        vec![k.file().to_string()]
    } else if reqs.any {
        let mut k = vec!["requirements.txt".to_string()];
        k.extend(reqs.includes.iter().cloned());
        k
    } else {
        Vec::new()
    };

    // Entrypoint.
    let mut deps: Vec<String> = reqs.names.clone();
    if let Some(p) = &pyproject {
        deps.extend(p.dependencies.iter().cloned());
    }
    if let Some(l) = &locked {
        deps.extend(l.pins.iter().map(|p| p.name.clone()));
    }
    // Dependencies PyPI has only as source for Linux, which compile against a C library: its
    // headers join the build root; the library itself (libpq5, …) is shipped in the native-libs
    // layer when the runtime lacks it.
    let mut native_sources: Vec<&str> = Vec::new();
    for (dep, pkgs) in &rules.build_packages {
        if deps.iter().any(|d| d == dep) {
            native_sources.push(dep);
            for p in pkgs {
                if !toolchain_packages.contains(p) {
                    toolchain_packages.push(p.clone());
                }
            }
        }
    }
    if !native_sources.is_empty() {
        let what = native_sources.join(", ");
        ctx.reasons.push(format!(
            "{what}: built from source against a C library: {} in the build root",
            native_sources
                .iter()
                .flat_map(|d| rules.build_packages[*d].iter().cloned())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        arch_specific.push(format!("{what}: compiled from source (C extensions)"));
    }
    let mut inp: Inputs = ctx.inputs();
    inp.var("port", rules.server_port.clone());
    let mut ports = Vec::new();
    let mut entrypoint = Vec::new();
    if !ctx.entrypoint_overridden() {
        let scripts = pyproject
            .as_ref()
            .map(|p| p.scripts.clone())
            .unwrap_or_default();
        if let Some((m, origin)) = ctx.main() {
            if m.ends_with(".py") {
                inp.var("file", m.clone());
                entrypoint = spec.entrypoint("file", &inp)?;
            } else {
                inp.var("module", m.clone());
                entrypoint = spec.entrypoint("module", &inp)?;
            }
            ctx.reasons.push(format!("entrypoint: {m} (from {origin})"));
        } else {
            entrypoint = detect_entrypoint(
                &mut ctx,
                &spec,
                &mut inp,
                &deps,
                if project { &scripts } else { &[] },
                pyproject.as_ref().and_then(|p| p.name.as_deref()),
                &mut ports,
            )?;
        }
    }

    // Django's static files, as Heroku's Python buildpack gathers them
    let django_static = if deps.iter().any(|d| d == "django") {
        match pyentry::django_static_settings(ctx.dir) {
            Some(_)
                if ctx
                    .config
                    .build_env
                    .get("DISABLE_COLLECTSTATIC")
                    .map(String::as_str)
                    == Some("1") =>
            {
                ctx.reasons.push(
                    "Django static files: not gathered (DISABLE_COLLECTSTATIC=1 in ocibuild.toml)"
                        .into(),
                );
                false
            }
            Some(settings) => {
                ctx.reasons.push(format!(
                    "Django static files: {settings} sets STATIC_ROOT with \
                     django.contrib.staticfiles installed: `manage.py collectstatic --noinput` \
                     gathers them into the app (DISABLE_COLLECTSTATIC=1 in ocibuild.toml's \
                     [build] env skips it)"
                ));
                true
            }
            None => false,
        }
    } else {
        false
    };
    inp.fact("django_static", django_static);
    let mut app_excludes = ctx.root_dotfiles()?;
    if project {
        app_excludes.extend(rules.build_leftovers.iter().cloned());
    }
    let mut files = Vec::new();
    let (hashed, unhashed) = locked
        .as_ref()
        .map(|l| l.requirements())
        .unwrap_or_default();
    inp.fact("locked", locked.is_some())
        .fact("locked_hashed", hashed.is_some())
        .fact("locked_unhashed", unhashed.is_some())
        .var(
            "project_deps",
            if locked.is_some() { "--no-deps " } else { "" },
        );
    for (path, content) in [
        ("/out/ocibuild/locked.txt", hashed),
        ("/out/ocibuild/locked-unhashed.txt", unhashed),
    ] {
        if let Some(content) = content {
            files.push(GeneratedFile {
                path: path.into(),
                content,
            });
        }
    }
    let standalone = install_requirements
        && ctx
            .read("requirements.txt")?
            .is_some_and(|t| requirements_standalone(&t));
    inp.fact("requirements", install_requirements)
        .fact("requirements_standalone", standalone)
        .fact("project", project)
        .list("venv_keys", venv_keys)
        .list("app_excludes", app_excludes);
    let source_exclude = ctx.source_excludes(&spec.source.exclude)?;
    let runtime_profile = spec.runtime.profile.clone();
    ctx.reasons.push(format!(
        "runtime {runtime_profile}: Debian {distro}'s Python {} with the venv at /app/.venv",
        rel.python
    ));
    let toolchain = Toolchain {
        profile: spec.toolchain.profile.clone(),
        packages: toolchain_packages,
        backports: false,
        path_prepend: Vec::new(),
        version: rel.python.clone(),
        host_tools: Vec::new(),
    };
    let parts = Parts {
        toolchain,
        runtime_profile,
        inputs: inp,
        source_exclude,
        entrypoint,
        cmd: Vec::new(),
        ports,
        version: pyproject.and_then(|p| p.version),
        requirements,
    };
    let mut plan = finish(ctx, Lang::Python, &spec, parts)?;
    plan.files = files;
    plan.arch_specific = arch_specific;
    Ok(plan)
}

/// Whether a requirements file names no other file of the app (`-r`, `-c`, `-e`, local paths,
/// `file:` URLs): then installing it reads nothing but itself.
fn requirements_standalone(text: &str) -> bool {
    text.lines().all(|l| {
        let l = l.split(" #").next().unwrap_or("").trim();
        !(l.starts_with("-r")
            || l.starts_with("-c")
            || l.starts_with("-e")
            || l.starts_with("--requirement")
            || l.starts_with("--constraint")
            || l.starts_with("--editable")
            || l.starts_with('.')
            || l.starts_with('/')
            || l.contains("file:"))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn requirements_that_name_other_files_are_not_standalone() {
        assert!(requirements_standalone(
            "flask==3.0.0\n# c\ngunicorn>=21 # web\n--no-binary markupsafe\n"
        ));
        for t in [
            "-r base.txt\n",
            "-e .\n",
            "./libs/x\n",
            "x @ file:///src/x\n",
            "-c c.txt\n",
        ] {
            assert!(!requirements_standalone(t), "{t}");
        }
    }

    #[test]
    fn pyproject_parsing_keeps_script_order() {
        let p = parse_pyproject(
            r#"
[project]
name = "hello"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = ["Flask>=2", "gunicorn_x ; python_version > '3'"]

[project.scripts]
zeta = "hello:z"
alpha = "hello:a"

[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"
"#,
            Path::new("pyproject.toml"),
        )
        .unwrap();
        assert!(p.has_project && p.has_build_system);
        assert_eq!(p.name.as_deref(), Some("hello"));
        assert_eq!(p.version.as_deref(), Some("0.1.0"));
        assert_eq!(p.requires_python.as_deref(), Some(">=3.11"));
        assert_eq!(p.build_backend.as_deref(), Some("setuptools.build_meta"));
        assert_eq!(p.dependencies, ["flask", "gunicorn-x"]);
        assert_eq!(p.scripts, ["zeta", "alpha"]);
        let p = parse_pyproject(
            "[project]\nname = \"x\"\nscripts.b = \"m:b\"\nscripts.a = \"m:a\"\n",
            Path::new("pyproject.toml"),
        )
        .unwrap();
        assert_eq!(p.scripts, ["b", "a"]);
        let err = parse_pyproject("[project\nname=1", Path::new("/a/pyproject.toml")).unwrap_err();
        assert!(err.to_string().contains("/a/pyproject.toml:1"), "{err}");
    }

    #[test]
    fn requirements_parsing() {
        let r = parse_requirements(
            "# comment\nFlask==3.0 # web\ngunicorn\\\n>=21\n-r base.txt\n--constraint=c.txt\n--index-url https://x\n\n",
        );
        assert_eq!(r.names, ["flask", "gunicorn"]);
        assert_eq!(r.includes, ["base.txt", "c.txt"]);
        assert!(r.any && !r.local);
        assert!(parse_requirements("-e .\n").local);
        assert!(parse_requirements("./libs/x\n").local);
        assert!(parse_requirements("pkg @ file:///src/pkg\n").local);
        let empty = parse_requirements("# nothing\n\n   \n");
        assert!(!empty.any);
        assert_eq!(
            requirement_name("Zope.Interface[x]>=5"),
            Some("zope-interface".into())
        );
    }

    #[test]
    fn app_objects() {
        assert!(binds_object(
            "from flask import Flask\napp = Flask(__name__)\n",
            "app"
        ));
        assert!(binds_object("app: FastAPI = FastAPI()\n", "app"));
        assert!(binds_object(
            "def application(environ, start):\n  pass\n",
            "application"
        ));
        assert!(!binds_object("def main():\n    app = 1\n", "app"));
        assert!(!binds_object("apple = 1\nif app == 2: pass\n", "app"));
    }
}
