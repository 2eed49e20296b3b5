//! What a Python app can be started with, found by reading its sources (never importing
//! them): web app objects and factories of Flask, FastAPI and Starlette anywhere in its
//! packages (flat or `src/` layout), Django projects (`manage.py` and the WSGI module its
//! settings name), and top-level scripts with an `if __name__ == "__main__":` guard.

use std::path::Path;

use walkdir::WalkDir;

use crate::common::rel_str;

/// A web framework whose app object a server can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Framework {
    Django,
    FastApi,
    Starlette,
    Flask,
}

impl Framework {
    pub fn name(self) -> &'static str {
        match self {
            Framework::Django => "Django",
            Framework::FastApi => "FastAPI",
            Framework::Starlette => "Starlette",
            Framework::Flask => "Flask",
        }
    }

    /// ASGI apps are served by uvicorn, WSGI apps by gunicorn.
    pub fn server(self) -> &'static str {
        match self {
            Framework::FastApi | Framework::Starlette => "uvicorn",
            Framework::Django | Framework::Flask => "gunicorn",
        }
    }

    /// The constructors of its app object (`Flask(`, `flask.Flask(`).
    fn constructors(self) -> &'static [&'static str] {
        match self {
            Framework::Django => &["get_wsgi_application("],
            Framework::FastApi => &["FastAPI(", "fastapi.FastAPI("],
            Framework::Starlette => &["Starlette(", "starlette.applications.Starlette("],
            Framework::Flask => &["Flask(", "flask.Flask("],
        }
    }
}

/// A web app object (or factory) found in the sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WebApp {
    pub framework: Framework,
    /// Importable module (`notes_api.api`; `src/` stripped).
    pub module: String,
    /// The object (`app`) or factory function (`create_app`).
    pub object: String,
    pub factory: bool,
    /// Where it was found (relative path).
    pub file: String,
}

impl WebApp {
    pub fn target(&self) -> String {
        format!("{}:{}", self.module, self.object)
    }

    pub fn describe(&self) -> String {
        format!(
            "{} {} {} in {}",
            self.framework.name(),
            if self.factory { "factory" } else { "app" },
            self.target(),
            self.file
        )
    }
}

/// Directories never searched for app modules.
const SKIP: [&str; 14] = [
    "tests",
    "test",
    "docs",
    "node_modules",
    "venv",
    "env",
    "build",
    "dist",
    "site-packages",
    "__pycache__",
    "migrations",
    "scripts",
    "examples",
    "target",
];

/// The Python files of the app that may hold an app object: at most `depth` deep, outside
/// tests, docs, virtualenvs and dot-directories; at most 400 of them, each under 256 KiB.
fn python_files(dir: &Path, depth: usize) -> Vec<(String, String)> {
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
                    .is_none_or(|n| n.starts_with('.') || SKIP.contains(&n)))
        });
    for e in walk.flatten() {
        if out.len() >= 400 {
            break;
        }
        let is_py = e.file_type().is_file()
            && e.path().extension().is_some_and(|x| x == "py")
            && e.metadata().is_ok_and(|m| m.len() < 256 * 1024);
        if !is_py {
            continue;
        }
        let (Some(rel), Ok(text)) = (rel_str(dir, e.path()), std::fs::read_to_string(e.path()))
        else {
            continue;
        };
        out.push((rel, text));
    }
    out
}

/// `pkg/sub/mod.py` → `pkg.sub.mod`, `pkg/__init__.py` → `pkg`, `src/pkg/m.py` → `pkg.m`;
/// `None` when a component is not an identifier (not importable).
fn module_of(rel: &str) -> Option<String> {
    let rel = rel.strip_prefix("src/").unwrap_or(rel);
    let stem = rel.strip_suffix(".py")?;
    let stem = stem.strip_suffix("/__init__").unwrap_or(stem);
    let parts: Vec<&str> = stem.split('/').collect();
    let ident = |p: &&str| {
        !p.is_empty()
            && !p.starts_with(|c: char| c.is_ascii_digit())
            && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    (parts.iter().all(ident) && stem != "__init__").then(|| parts.join("."))
}

/// The top-level names bound to a call of one of `constructors` (`app = Flask(__name__)`,
/// `api: FastAPI = FastAPI()`).
fn objects_built_with(text: &str, constructors: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for l in text.lines() {
        if l.starts_with(char::is_whitespace) {
            continue;
        }
        let Some((lhs, rhs)) = l.split_once('=') else {
            continue;
        };
        if rhs.starts_with('=') {
            continue;
        }
        let name = lhs.split(':').next().unwrap_or(lhs).trim();
        let rhs = rhs.trim_start();
        if !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && constructors.iter().any(|c| rhs.starts_with(c))
            && !out.iter().any(|o| o == name)
        {
            out.push(name.to_string());
        }
    }
    out
}

/// Top-level functions named like app factories, in a file that builds the framework's app.
fn factories(text: &str, names: &[String]) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            l.strip_prefix("def ")
                .or_else(|| l.strip_prefix("async def "))
        })
        .filter_map(|r| r.split_once('(').map(|(n, _)| n.trim().to_string()))
        .filter(|n| names.contains(n))
        .collect()
}

/// The settings file of a Django project (named by manage.py's `DJANGO_SETTINGS_MODULE`; a
/// `settings/` package's modules too) that sets `STATIC_ROOT` with `django.contrib.staticfiles`
/// installed: `manage.py collectstatic` then has somewhere to gather the static files.
pub(crate) fn django_static_settings(dir: &Path) -> Option<String> {
    let manage = std::fs::read_to_string(dir.join("manage.py")).ok()?;
    let settings = manage
        .split("DJANGO_SETTINGS_MODULE")
        .nth(1)
        .and_then(|r| r.split(['"', '\'']).nth(2))?;
    let base = settings.replace('.', "/");
    let mut candidates = vec![format!("{base}.py")];
    // a settings package (`config/settings/production.py`): the module named and its siblings
    if let Some((pkg, _)) = base.rsplit_once('/')
        && let Ok(rd) = std::fs::read_dir(dir.join(pkg))
        && dir.join(pkg).join("__init__.py").is_file()
    {
        let mut names: Vec<String> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".py"))
            .map(|n| format!("{pkg}/{n}"))
            .collect();
        names.sort();
        candidates.extend(names);
    }
    candidates.push(format!("{base}/__init__.py"));
    let texts: Vec<(String, String)> = candidates
        .into_iter()
        .filter_map(|c| std::fs::read_to_string(dir.join(&c)).ok().map(|t| (c, t)))
        .collect();
    let staticfiles = texts
        .iter()
        .any(|(_, t)| t.contains("django.contrib.staticfiles"));
    let root = texts.iter().find(|(_, t)| {
        t.lines()
            .any(|l| l.trim_start().starts_with("STATIC_ROOT") && l.contains('='))
    })?;
    staticfiles.then(|| root.0.clone())
}

/// Every web app object and factory in the app's sources, Django projects first.
pub(crate) fn web_apps(dir: &Path, objects: &[String], factory_names: &[String]) -> Vec<WebApp> {
    let files = python_files(dir, 4);
    let mut out = Vec::new();

    // Django: manage.py names the settings; the WSGI module sits beside them.
    let mut django_modules = Vec::new();
    if let Ok(manage) = std::fs::read_to_string(dir.join("manage.py"))
        && let Some(settings) = manage
            .split("DJANGO_SETTINGS_MODULE")
            .nth(1)
            .and_then(|r| r.split(['"', '\'']).nth(2))
        && let Some((project, _)) = settings.rsplit_once('.')
    {
        django_modules.push(format!("{project}.wsgi"));
    }
    for (rel, text) in &files {
        if rel.ends_with("wsgi.py")
            && text.contains("get_wsgi_application(")
            && let Some(m) = module_of(rel)
            && !django_modules.contains(&m)
        {
            django_modules.push(m);
        }
    }
    for m in django_modules {
        if let Some((rel, text)) = files
            .iter()
            .find(|(r, _)| module_of(r).as_deref() == Some(&m))
        {
            for o in objects_built_with(text, Framework::Django.constructors()) {
                out.push(WebApp {
                    framework: Framework::Django,
                    module: m.clone(),
                    object: o,
                    factory: false,
                    file: rel.clone(),
                });
            }
        }
    }

    for fw in [Framework::FastApi, Framework::Starlette, Framework::Flask] {
        for (rel, text) in &files {
            let Some(module) = module_of(rel) else {
                continue;
            };
            let mut objs = objects_built_with(text, fw.constructors());
            // the conventional names first
            objs.sort_by_key(|o| objects.iter().position(|x| x == o).unwrap_or(usize::MAX));
            for o in objs {
                out.push(WebApp {
                    framework: fw,
                    module: module.clone(),
                    object: o,
                    factory: false,
                    file: rel.clone(),
                });
            }
            if fw.constructors().iter().any(|c| text.contains(c)) {
                for f in factories(text, factory_names) {
                    out.push(WebApp {
                        framework: fw,
                        module: module.clone(),
                        object: f,
                        factory: true,
                        file: rel.clone(),
                    });
                }
            }
        }
    }
    out
}

/// Top-level scripts with an `if __name__ == "__main__":` guard, sorted.
pub(crate) fn main_scripts(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for (rel, text) in python_files(dir, 1) {
        let guarded = text.lines().any(|l| {
            let l: String = l.chars().filter(|c| !c.is_whitespace()).collect();
            l.starts_with("if__name__==\"__main__\"") || l.starts_with("if__name__=='__main__'")
        });
        if guarded {
            out.push(rel);
        }
    }
    out
}

/// Whether a console script is named like the project (`my-app`, `my_app`, `myapp`).
pub(crate) fn named_like(script: &str, project: &str) -> bool {
    let n = |s: &str| -> String {
        s.to_ascii_lowercase()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect()
    };
    n(script) == n(project)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn modules_objects_and_factories() {
        assert_eq!(
            module_of("src/notes_api/api.py").as_deref(),
            Some("notes_api.api")
        );
        assert_eq!(
            module_of("bookshelf/__init__.py").as_deref(),
            Some("bookshelf")
        );
        assert_eq!(module_of("app.py").as_deref(), Some("app"));
        assert_eq!(module_of("my-app/x.py"), None);
        assert_eq!(
            objects_built_with(
                "from flask import Flask\napp = Flask(__name__)\napi: FastAPI = FastAPI()\nx == Flask(1)\n    inner = Flask(2)\n",
                &["Flask(", "FastAPI("]
            ),
            ["app", "api"]
        );
        let names = vec!["create_app".to_string()];
        assert_eq!(
            factories("def create_app(config=None):\n    pass\n", &names),
            ["create_app"]
        );
        assert!(factories("def helper():\n    pass\n", &names).is_empty());
        assert!(named_like("my_app", "My-App"));
        assert!(!named_like("my-app-admin", "my-app"));
    }
}
