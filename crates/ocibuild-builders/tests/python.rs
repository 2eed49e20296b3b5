#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ocibuild_builders::{BuildersError, Distro, glob_filter};

#[test]
fn python_app_plan() {
    let p = plan_ok(&testdata("python-app"), &opts());
    assert_eq!(p.lang.to_string(), "python");
    assert_eq!(p.toolchain.profile, "python-build");
    assert_eq!(p.toolchain.version, "3.13.5");
    assert_eq!(p.runtime.profile, "python3");
    assert_eq!(p.outputs, ["/app", "/out"]);
    // requirements.txt has only comments: the venv alone
    assert_eq!(step_names(&p), ["venv"]);
    assert_eq!(
        step(&p, "venv").argv,
        strs(&["python3", "-m", "venv", "--without-pip", "/app/.venv"])
    );
    assert_eq!(
        env_of(step(&p, "venv"), "PIP_CACHE_DIR"),
        Some("/root/.cache/pip")
    );
    assert_eq!(p.cache_mounts[0].name, "pip");
    assert_eq!(p.cache_mounts[0].target, "/root/.cache/pip");
    assert_eq!(layer_names(&p), ["venv", "app"]);
    let venv = &p.layers[0];
    assert_eq!(
        (venv.from.as_str(), venv.to.as_str()),
        ("/app/.venv", "/app/.venv")
    );
    let f = glob_filter(&venv.include, &venv.exclude).unwrap();
    assert!(!f.matches("lib/python3.13/site-packages/x/__pycache__/a.pyc", false));
    let app = &p.layers[1];
    assert_eq!((app.from.as_str(), app.to.as_str()), ("/src", "/app"));
    let f = glob_filter(&app.include, &app.exclude).unwrap();
    assert!(f.matches("main.py", false));
    assert!(!f.matches("tests/test_x.py", false));
    assert!(!f.matches("pkg/__pycache__/x.pyc", false));
    assert_eq!(p.config.entrypoint, ["/app/.venv/bin/python3", "main.py"]);
    for e in [
        "PATH=/app/.venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "VIRTUAL_ENV=/app/.venv",
        "PYTHONDONTWRITEBYTECODE=1",
        "PYTHONUNBUFFERED=1",
    ] {
        assert!(p.config.env.contains(&e.to_string()), "{e}");
    }
}

#[test]
fn pyproject_app_plan() {
    let p = plan_ok(&testdata("python-pyproject"), &opts());
    assert_eq!(step_names(&p), ["venv", "pip-wheel", "pip-install-project"]);
    let w = step(&p, "pip-wheel");
    assert!(
        w.argv.contains(&"--no-build-isolation".to_string()),
        "{:?}",
        w.argv
    );
    assert!(w.argv.contains(&"--no-deps".to_string()));
    assert_eq!(w.argv.last().unwrap(), ".");
    assert!(!w.network);
    let i = step(&p, "pip-install-project");
    assert_eq!(i.argv[0], "sh");
    assert!(
        i.argv[2].contains("python3 -m pip --python /app/.venv/bin/python3 install --no-compile"),
        "{:?}",
        i.argv
    );
    assert!(i.argv[2].contains("/out/wheels/*.whl"));
    assert!(i.network);
    assert_eq!(
        p.toolchain.packages,
        ["python3-setuptools", "python3-wheel"]
    );
    assert!(reasons_contain(&p, "--no-build-isolation"));
    assert_eq!(p.config.entrypoint, ["/app/.venv/bin/hello"]);
    assert_eq!(p.config.labels["org.opencontainers.image.version"], "0.1.0");
    // the project is in the venv: the layer is keyed by its own content
    assert!(p.layers[0].key_files.is_empty());
    // the wheel build's leftovers stay out of the app layer
    let f = glob_filter(&p.layers[1].include, &p.layers[1].exclude).unwrap();
    assert!(!f.matches("src/hello_app.egg-info/PKG-INFO", false));
    assert!(!f.matches("build/lib/hello_app/__init__.py", false));
    assert!(f.matches("src/hello_app/__init__.py", false));
}

#[test]
fn requirements_are_installed_and_key_the_venv() {
    let d = app(&[
        ("requirements.txt", "flask==3.0.0\n-r base.txt\n"),
        ("base.txt", "click\n"),
        ("main.py", ""),
    ]);
    let p = plan_ok(d.path(), &opts());
    assert_eq!(step_names(&p), ["venv", "pip-install-requirements"]);
    let s = step(&p, "pip-install-requirements");
    assert_eq!(
        s.argv,
        strs(&[
            "python3",
            "-m",
            "pip",
            "--python",
            "/app/.venv/bin/python3",
            "install",
            "--no-compile",
            "--disable-pip-version-check",
            "-r",
            "requirements.txt"
        ])
    );
    assert!(s.network);
    assert_eq!(p.layers[0].key_files, ["requirements.txt", "base.txt"]);
    // an editable local install: content keyed
    let d = app(&[("requirements.txt", "-e .\n"), ("main.py", "")]);
    assert!(plan_ok(d.path(), &opts()).layers[0].key_files.is_empty());
}

#[test]
fn requires_python_against_each_release() {
    // (specifier, trixie 3.13 ok, bookworm 3.11 ok)
    let cases = [
        (">=3.11", true, true),
        (">=3.12", true, false),
        (">=3.9,<3.14", true, true),
        (">=3.9,<3.12", false, true),
        ("~=3.11", true, true),
        ("~=3.11.0", false, true),
        ("==3.13.*", true, false),
        ("==3.11.*", false, true),
        (">=3.14", false, false),
    ];
    for (spec, trixie, bookworm) in cases {
        let d = app(&[
            (
                "pyproject.toml",
                &format!(
                    "[project]\nname = \"x\"\nversion = \"1\"\nrequires-python = \"{spec}\"\n"
                ),
            ),
            ("main.py", ""),
        ]);
        for (distro, ok) in [(Distro::Trixie, trixie), (Distro::Bookworm, bookworm)] {
            match (ok, ocibuild_builders::plan(d.path(), &on(distro))) {
                (true, Ok(p)) => assert!(reasons_contain(&p, "satisfies requires-python")),
                (false, Err(e)) => {
                    assert!(matches!(e, BuildersError::Version { .. }), "{e:?}");
                    let msg = e.to_string();
                    assert!(msg.contains(spec), "{msg}");
                    assert!(msg.contains("--distro"), "{msg}");
                    assert!(msg.contains("pyproject.toml"), "{msg}");
                }
                (ok, r) => panic!("{spec} on {distro}: want ok={ok}, got {r:?}"),
            }
        }
    }
    let d = app(&[
        (
            "pyproject.toml",
            "[project]\nname = \"x\"\nrequires-python = \">=3.13a1\"\n",
        ),
        ("main.py", ""),
    ]);
    assert!(matches!(
        plan_err(d.path(), &opts()),
        BuildersError::Parse { .. }
    ));
}

#[test]
fn entrypoint_detection() {
    // (files, expected entrypoint, expected ports)
    type Case = (
        Vec<(&'static str, &'static str)>,
        Vec<&'static str>,
        Vec<&'static str>,
    );
    let cases: Vec<Case> = vec![
        (
            vec![
                ("requirements.txt", "Flask\ngunicorn==22.0\n"),
                ("app.py", "from flask import Flask\napp = Flask(__name__)\n"),
            ],
            vec![
                "/app/.venv/bin/gunicorn",
                "--bind",
                "0.0.0.0:8000",
                "app:app",
            ],
            vec!["8000/tcp"],
        ),
        (
            vec![
                ("requirements.txt", "django\ngunicorn\n"),
                ("mysite/wsgi.py", "application = get_wsgi_application()\n"),
                ("manage.py", ""),
            ],
            vec![
                "/app/.venv/bin/gunicorn",
                "--bind",
                "0.0.0.0:8000",
                "mysite.wsgi:application",
            ],
            vec!["8000/tcp"],
        ),
        (
            vec![
                ("requirements.txt", "fastapi\nuvicorn[standard]\n"),
                ("main.py", "from fastapi import FastAPI\napp = FastAPI()\n"),
            ],
            vec![
                "/app/.venv/bin/uvicorn",
                "--host",
                "0.0.0.0",
                "--port",
                "8000",
                "main:app",
            ],
            vec!["8000/tcp"],
        ),
        (
            vec![
                (
                    "pyproject.toml",
                    "[project]\nname = \"serve\"\nversion = \"1\"\ndependencies = [\"gunicorn\"]\n[project.scripts]\nadmin = \"t:admin\"\nserve = \"t:serve\"\n",
                ),
                ("app.py", "app = 1\n"),
            ],
            vec!["/app/.venv/bin/serve"],
            vec![],
        ),
        (
            vec![
                ("requirements.txt", "requests\n"),
                ("app.py", ""),
                ("main.py", ""),
            ],
            vec!["/app/.venv/bin/python3", "main.py"],
            vec![],
        ),
        (
            vec![("requirements.txt", ""), ("server.py", "")],
            vec!["/app/.venv/bin/python3", "server.py"],
            vec![],
        ),
        (
            vec![
                ("requirements.txt", ""),
                ("tool/__init__.py", ""),
                ("tool/__main__.py", ""),
            ],
            vec!["/app/.venv/bin/python3", "-m", "tool"],
            vec![],
        ),
        (
            // gunicorn without an app object: falls through to the file
            vec![("requirements.txt", "gunicorn\n"), ("app.py", "print(1)\n")],
            vec!["/app/.venv/bin/python3", "app.py"],
            vec![],
        ),
    ];
    for (files, ep, ports) in cases {
        let d = app(&files);
        let p = plan_ok(d.path(), &opts());
        assert_eq!(p.config.entrypoint, strs(&ep), "{files:?}");
        assert_eq!(p.config.exposed_ports, strs(&ports), "{files:?}");
    }
    let d = app(&[("requirements.txt", "requests\n"), ("lib.py", "")]);
    let err = plan_err(d.path(), &opts());
    assert!(matches!(err, BuildersError::Entrypoint { .. }), "{err:?}");
    assert!(err.to_string().contains("--main"), "{err}");
    let mut o = opts();
    o.main = Some("lib.py".into());
    assert_eq!(
        plan_ok(d.path(), &o).config.entrypoint,
        ["/app/.venv/bin/python3", "lib.py"]
    );
    o.main = Some("pkg.cli".into());
    assert_eq!(
        plan_ok(d.path(), &o).config.entrypoint,
        ["/app/.venv/bin/python3", "-m", "pkg.cli"]
    );
}

#[test]
fn uv_lock_and_backends() {
    let d = app(&[
        (
            "pyproject.toml",
            "[project]\nname = \"u\"\nversion = \"1\"\n[build-system]\nrequires = [\"hatchling\"]\nbuild-backend = \"hatchling.build\"\n",
        ),
        ("main.py", ""),
    ]);
    let p = plan_ok(d.path(), &opts());
    assert_eq!(p.toolchain.packages, ["python3-hatchling"]);
    assert!(step_names(&p).contains(&"pip-wheel".to_string()));

    let d = app(&[
        (
            "pyproject.toml",
            "[project]\nname = \"u\"\n[build-system]\nbuild-backend = \"maturin\"\n",
        ),
        ("main.py", ""),
    ]);
    let err = plan_err(d.path(), &opts());
    assert!(matches!(err, BuildersError::Unsupported { .. }), "{err:?}");
    assert!(err.to_string().contains("maturin"), "{err}");

    // a pyproject.toml that only configures tools is not a project
    let d = app(&[
        ("pyproject.toml", "[tool.black]\nline-length = 100\n"),
        ("requirements.txt", "requests\n"),
        ("main.py", ""),
    ]);
    let p = plan_ok(d.path(), &opts());
    assert_eq!(step_names(&p), ["venv", "pip-install-requirements"]);
    assert!(p.toolchain.packages.is_empty());

    // setup.py alone: the legacy setuptools backend
    let d = app(&[
        ("setup.py", "from setuptools import setup\nsetup()\n"),
        ("main.py", ""),
    ]);
    let p = plan_ok(d.path(), &opts());
    assert_eq!(
        p.toolchain.packages,
        ["python3-setuptools", "python3-wheel"]
    );
}

fn file_of<'a>(p: &'a ocibuild_builders::Plan, path: &str) -> Option<&'a str> {
    p.files
        .iter()
        .find(|f| f.path == path)
        .map(|f| f.content.as_str())
}

#[test]
fn lockfiles_pin_exactly_what_the_image_installs() {
    // uv.lock of a hatchling project: the runtime dependencies, no dev group, no Windows-only
    // packages; the project's own wheel installed without dependencies.
    let p = plan_ok(&testdata("python-uv-fastapi"), &opts());
    assert_eq!(
        step_names(&p),
        [
            "venv",
            "pip-install-locked",
            "pip-wheel",
            "pip-install-project"
        ]
    );
    let s = step(&p, "pip-install-locked");
    for a in ["--no-deps", "--require-hashes", "/out/ocibuild/locked.txt"] {
        assert!(s.argv.contains(&a.to_string()), "{:?}", s.argv);
    }
    assert!(s.network);
    let i = step(&p, "pip-install-project");
    assert!(
        i.argv[2].contains("--no-deps /out/wheels/*.whl"),
        "{:?}",
        i.argv
    );
    assert!(!i.network, "the project alone needs nothing downloaded");
    let req = file_of(&p, "/out/ocibuild/locked.txt").unwrap();
    assert!(
        req.contains("\nfastapi==0.165.0 \\\n    --hash=sha256:"),
        "{req}"
    );
    assert!(req.contains("\nuvicorn=="), "{req}");
    assert!(req.contains("\npydantic-core=="), "{req}");
    for absent in ["pytest", "colorama", "pygments", "notes-api"] {
        assert!(!req.contains(&format!("\n{absent}==")), "{absent}: {req}");
    }
    assert!(file_of(&p, "/out/ocibuild/locked-unhashed.txt").is_none());
    assert!(
        reasons_contain(&p, "lockfile uv.lock: 14 pinned packages"),
        "{:?}",
        p.reasons
    );
    assert!(reasons_contain(&p, "--require-hashes"));
    assert!(
        p.layers[0].key_files.is_empty(),
        "the project is in the venv"
    );

    // (the entrypoint is not what this test is about)
    let mut o = opts();
    o.entrypoint = Some(strs(&["/app/.venv/bin/python3"]));
    // poetry.lock (Poetry 2, [tool.poetry] project, poetry-core)
    let p = plan_ok(&testdata("python-poetry-flask"), &o);
    assert_eq!(p.toolchain.packages, ["python3-poetry-core"]);
    let req = file_of(&p, "/out/ocibuild/locked.txt").unwrap();
    assert!(req.contains("\nflask==3.1.3 \\\n"), "{req}");
    assert!(req.contains("\ngunicorn==23.0.0 \\\n"), "{req}");
    assert!(!req.contains("pytest"), "{req}");
    assert!(
        reasons_contain(&p, "lockfile poetry.lock: 9 pinned packages"),
        "{:?}",
        p.reasons
    );

    // Pipfile.lock without any pyproject.toml: only the pins, keyed by the lock
    let p = plan_ok(&testdata("python-django-pipenv"), &o);
    assert_eq!(
        step_names(&p),
        ["venv", "pip-install-locked", "django-collectstatic"]
    );
    let req = file_of(&p, "/out/ocibuild/locked.txt").unwrap();
    assert!(req.contains("\ndjango==5.2.19 \\\n"), "{req}");
    assert!(!req.contains("pytest"), "{req}");
    assert!(
        reasons_contain(&p, "lockfile Pipfile.lock: 5 pinned packages"),
        "{:?}",
        p.reasons
    );
    assert_eq!(p.layers[0].key_files, ["Pipfile.lock"]);

    // pdm.lock of a flit project
    let p = plan_ok(&testdata("python-flit-scripts"), &o);
    assert_eq!(p.toolchain.packages, ["flit"]);
    let req = file_of(&p, "/out/ocibuild/locked.txt").unwrap();
    assert!(req.contains("\ntabulate==0.10.0 \\\n"), "{req}");
    assert!(
        reasons_contain(&p, "lockfile pdm.lock: 1 pinned packages"),
        "{:?}",
        p.reasons
    );

    // a lock beside requirements.txt wins; several locks: the first kind is used
    let d = app(&[
        (
            "pyproject.toml",
            "[project]\nname = \"x\"\nversion = \"1\"\n",
        ),
        ("requirements.txt", "flask\n"),
        (
            "pdm.lock",
            "[[package]]\nname = \"six\"\nversion = \"1.16.0\"\ngroups = [\"default\"]\nfiles = [{file = \"six.whl\", hash = \"sha256:aa\"}]\n",
        ),
        ("Pipfile.lock", "{\"default\": {}}"),
        ("main.py", ""),
    ]);
    let p = plan_ok(d.path(), &opts());
    assert!(!step_names(&p).contains(&"pip-install-requirements".to_string()));
    assert!(reasons_contain(&p, "requirements.txt is not used"));
    assert!(reasons_contain(
        &p,
        "Pipfile.lock also found; pdm.lock is used"
    ));

    // a Pipfile without its lock, a lock without its pyproject.toml: clear errors
    let d = app(&[("Pipfile", "[packages]\nflask = \"*\"\n"), ("app.py", "")]);
    let err = plan_err(d.path(), &opts()).to_string();
    assert!(err.contains("pipenv lock"), "{err}");
    let d = app(&[("poetry.lock", ""), ("app.py", "")]);
    let err = plan_err(d.path(), &opts()).to_string();
    assert!(err.contains("poetry.lock without pyproject.toml"), "{err}");
}

#[test]
fn entrypoints_of_real_layouts() {
    // a FastAPI app inside a src/ package wins over the console script (uvicorn is locked)
    let p = plan_ok(&testdata("python-uv-fastapi"), &opts());
    assert_eq!(
        p.config.entrypoint,
        [
            "/app/.venv/bin/uvicorn",
            "--host",
            "0.0.0.0",
            "--port",
            "8000",
            "notes_api.api:app"
        ]
    );
    assert_eq!(p.config.exposed_ports, ["8000/tcp"]);
    assert!(
        reasons_contain(
            &p,
            "entrypoint candidates: FastAPI app notes_api.api:app in src/notes_api/api.py; console scripts notes-api"
        ),
        "{:?}",
        p.reasons
    );
    // a Flask factory in the package, gunicorn a dependency
    let p = plan_ok(&testdata("python-poetry-flask"), &opts());
    assert_eq!(
        p.config.entrypoint,
        [
            "/app/.venv/bin/gunicorn",
            "--bind",
            "0.0.0.0:8000",
            "bookshelf:create_app()"
        ]
    );
    // Django: manage.py names the settings, gunicorn serves the WSGI module
    let p = plan_ok(&testdata("python-django-pipenv"), &opts());
    assert_eq!(
        p.config.entrypoint,
        [
            "/app/.venv/bin/gunicorn",
            "--bind",
            "0.0.0.0:8000",
            "guestbook.wsgi:application"
        ]
    );
    assert!(reasons_contain(
        &p,
        "entrypoint: gunicorn serves the Django app guestbook.wsgi:application"
    ));
    // several console scripts: the one named like the project
    let p = plan_ok(&testdata("python-flit-scripts"), &opts());
    assert_eq!(p.config.entrypoint, ["/app/.venv/bin/tally"]);
    assert!(reasons_contain(
        &p,
        "console script \"tally\" (named like the project)"
    ));
    // a single script with a __main__ guard, whatever its name
    let p = plan_ok(&testdata("python-script"), &opts());
    assert_eq!(
        p.config.entrypoint,
        ["/app/.venv/bin/python3", "uptime_server.py"]
    );

    // several console scripts, none named like the project: an error listing them
    let d = app(&[(
        "pyproject.toml",
        "[project]\nname = \"kit\"\nversion = \"1\"\n[project.scripts]\nkit-a = \"kit:a\"\nkit-b = \"kit:b\"\n",
    )]);
    let err = plan_err(d.path(), &opts());
    assert!(matches!(err, BuildersError::Entrypoint { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("kit-a, kit-b") && msg.contains("--entrypoint"),
        "{msg}"
    );
    // a FastAPI factory under uvicorn; a Flask app whose server is missing is not chosen
    let d = app(&[
        ("requirements.txt", "fastapi\nuvicorn\n"),
        (
            "svc/web.py",
            "from fastapi import FastAPI\n\ndef create_app():\n    return FastAPI()\n",
        ),
    ]);
    assert_eq!(
        plan_ok(d.path(), &opts()).config.entrypoint,
        [
            "/app/.venv/bin/uvicorn",
            "--host",
            "0.0.0.0",
            "--port",
            "8000",
            "--factory",
            "svc.web:create_app"
        ]
    );
    let d = app(&[
        ("requirements.txt", "flask\n"),
        (
            "site/app.py",
            "from flask import Flask\napp = Flask(__name__)\n",
        ),
    ]);
    let msg = plan_err(d.path(), &opts()).to_string();
    assert!(
        msg.contains("Flask app site.app:app in site/app.py needs gunicorn"),
        "{msg}"
    );
    assert!(msg.contains("--main"), "{msg}");
    // several guarded scripts: the conventional name, else an error naming them
    let d = app(&[
        ("requirements.txt", ""),
        ("main.py", "if __name__ == '__main__':\n    pass\n"),
        ("tool.py", "if __name__ == \"__main__\":\n    pass\n"),
    ]);
    assert_eq!(
        plan_ok(d.path(), &opts()).config.entrypoint,
        ["/app/.venv/bin/python3", "main.py"]
    );
    let d = app(&[
        ("requirements.txt", ""),
        ("a.py", "if __name__ == '__main__':\n    pass\n"),
        ("b.py", "if __name__ == '__main__':\n    pass\n"),
    ]);
    let msg = plan_err(d.path(), &opts()).to_string();
    assert!(
        msg.contains("a.py, b.py") && msg.contains("--main a.py"),
        "{msg}"
    );
}

/// A locked package that comes only as platform wheels (no `none-any`) makes the venv
/// architecture-specific; pure apps are not.
#[test]
fn platform_wheels_make_the_venv_architecture_specific() {
    let p = plan_ok(&testdata("python-uv-fastapi"), &opts());
    assert!(
        p.arch_specific
            .iter()
            .any(|w| w.starts_with("uv.lock: ") && w.contains("pydantic-core")),
        "{:?}",
        p.arch_specific
    );
    assert!(
        !p.arch_specific.iter().any(|w| w.contains("fastapi,")),
        "fastapi has a none-any wheel: {:?}",
        p.arch_specific
    );
    let p = plan_ok(&testdata("python-app"), &opts());
    assert!(p.arch_specific.is_empty(), "{:?}", p.arch_specific);
    let d = app(&[
        ("app.py", "print(1)\n"),
        (
            "requirements.txt",
            "greenlet==3.1.1 ; platform_machine == \"x86_64\"\n",
        ),
    ]);
    let p = plan_ok(d.path(), &opts());
    assert_eq!(p.arch_specific.len(), 1, "{:?}", p.arch_specific);
    assert!(p.arch_specific[0].starts_with("requirements.txt: "));
}

/// Source-only dependencies that compile against a C library bring that library's Debian
/// build packages into the build root and make the venv architecture-specific; their binary
/// variants (`psycopg2-binary`) and pure packages do not.
#[test]
fn source_only_c_dependencies_bring_their_build_packages() {
    let plan_for = |reqs: &str| {
        let d = app(&[("app.py", "print(1)\n"), ("requirements.txt", reqs)]);
        plan_ok(d.path(), &opts())
    };
    let p = plan_for("Django==5.2\nmysqlclient==2.2.7\nPsycopg2>=2.9 # postgres\n");
    for pkg in ["libmariadb-dev", "pkg-config", "libpq-dev"] {
        assert!(
            p.toolchain.packages.iter().any(|p| p == pkg),
            "{pkg}: {:?}",
            p.toolchain.packages
        );
    }
    assert!(
        p.reasons.iter().any(|r| r.starts_with(
            "mysqlclient, psycopg2: built from source against a C library: libmariadb-dev, pkg-config, libpq-dev"
        )),
        "{:?}",
        p.reasons
    );
    assert!(
        p.arch_specific
            .iter()
            .any(|w| w == "mysqlclient, psycopg2: compiled from source (C extensions)"),
        "{:?}",
        p.arch_specific
    );
    let p = plan_for("psycopg2-binary==2.9.10\nflask==3.1\n");
    assert!(
        p.toolchain.packages.is_empty(),
        "{:?}",
        p.toolchain.packages
    );
    assert!(p.arch_specific.is_empty(), "{:?}", p.arch_specific);
}

/// A Django project whose settings set STATIC_ROOT with django.contrib.staticfiles installed
/// gathers its static files in the build (collectstatic), as Heroku's buildpack does; split
/// settings packages count; DISABLE_COLLECTSTATIC=1 and projects without staticfiles do not.
#[test]
fn django_static_files_are_collected_when_the_settings_ask_for_them() {
    const MANAGE: &str = "import os\nos.environ.setdefault(\"DJANGO_SETTINGS_MODULE\", \"config.settings.production\")\n";
    const WSGI: &str =
        "from django.core.wsgi import get_wsgi_application\napplication = get_wsgi_application()\n";
    let plan_with = |base: &str, extra: &[(&str, &str)]| {
        let mut files = vec![
            ("requirements.txt", "Django==5.2\ngunicorn==23.0.0\n"),
            ("manage.py", MANAGE),
            ("config/__init__.py", ""),
            ("config/wsgi.py", WSGI),
            ("config/settings/__init__.py", ""),
            ("config/settings/base.py", base),
            (
                "config/settings/production.py",
                "from .base import *  # noqa\nDEBUG = False\n",
            ),
        ];
        files.extend_from_slice(extra);
        let d = app(&files);
        plan_ok(d.path(), &opts())
    };
    let base = "INSTALLED_APPS = [\n    \"django.contrib.admin\",\n    \"django.contrib.staticfiles\",\n]\nSTATIC_URL = \"static/\"\nSTATIC_ROOT = BASE_DIR / \"staticfiles\"\n";
    let p = plan_with(base, &[]);
    let s = step(&p, "django-collectstatic");
    assert_eq!(s.argv[..2], ["sh", "-c"]);
    assert!(
        s.argv[2].starts_with("/app/.venv/bin/python3 manage.py collectstatic --noinput || ")
            && s.argv[2].contains("DISABLE_COLLECTSTATIC"),
        "{:?}",
        s.argv
    );
    assert!(!s.network);
    assert!(
        p.reasons
            .iter()
            .any(|r| r.starts_with("Django static files: config/settings/base.py sets STATIC_ROOT")),
        "{:?}",
        p.reasons
    );
    // the steps install the venv first
    let names = step_names(&p);
    assert_eq!(
        names.last().map(String::as_str),
        Some("django-collectstatic")
    );
    // no STATIC_ROOT, or no staticfiles app: nothing to gather
    for b in [
        "INSTALLED_APPS = [\"django.contrib.staticfiles\"]\nSTATIC_URL = \"static/\"\n",
        "INSTALLED_APPS = [\"entries\"]\nSTATIC_ROOT = \"/srv/static\"\n",
    ] {
        let p = plan_with(b, &[]);
        assert!(
            !step_names(&p).iter().any(|s| s == "django-collectstatic"),
            "{b}"
        );
    }
    // ocibuild.toml opts out
    let p = plan_with(
        base,
        &[(
            "ocibuild.toml",
            "[build]\nenv = { DISABLE_COLLECTSTATIC = \"1\" }\n",
        )],
    );
    assert!(!step_names(&p).iter().any(|s| s == "django-collectstatic"));
    assert!(
        p.reasons
            .iter()
            .any(|r| r.contains("DISABLE_COLLECTSTATIC=1 in ocibuild.toml")),
        "{:?}",
        p.reasons
    );
}

/// A Procfile's web process (Heroku's) is the entrypoint when the image can run it: the venv's
/// python or a dependency's program, `$PORT` as the image's PORT; a line needing a shell, or a
/// program the venv does not have, is named and left to the detection.
#[test]
fn a_procfile_web_process_is_the_entrypoint_when_the_image_can_run_it() {
    let plan_with = |procfile: &str| {
        let d = app(&[
            ("requirements.txt", "flask==3.1\ngunicorn==23.0.0\n"),
            ("shop/__init__.py", ""),
            (
                "shop/web.py",
                "from flask import Flask\n\napplication = Flask(__name__)\n",
            ),
            ("Procfile", procfile),
        ]);
        plan_ok(d.path(), &opts())
    };
    let p = plan_with(
        "release: python -m shop.migrate\nweb: gunicorn shop.web:application --bind 0.0.0.0:$PORT --workers 2\n",
    );
    assert_eq!(
        p.config.entrypoint,
        [
            "/app/.venv/bin/gunicorn",
            "shop.web:application",
            "--bind",
            "0.0.0.0:8000",
            "--workers",
            "2"
        ]
    );
    assert!(
        p.config.env.contains(&"PORT=8000".to_string()),
        "{:?}",
        p.config.env
    );
    assert!(
        p.reasons
            .iter()
            .any(|r| r.starts_with("entrypoint: Procfile:2 web")),
        "{:?}",
        p.reasons
    );
    let p = plan_with("web: python -m shop.web\n");
    assert_eq!(
        p.config.entrypoint,
        ["/app/.venv/bin/python3", "-m", "shop.web"]
    );
    // not runnable as written: named, and the detection decides (gunicorn serves the app)
    for (procfile, why) in [
        (
            "web: bin/start-pgbouncer gunicorn shop.web:application\n",
            "is neither python nor a dependency's program",
        ),
        (
            "web: gunicorn shop.web:application -w $WEB_CONCURRENCY\n",
            "the image has no shell",
        ),
    ] {
        let p = plan_with(procfile);
        assert_eq!(
            p.config.entrypoint.first().map(String::as_str),
            Some("/app/.venv/bin/gunicorn"),
            "{procfile}"
        );
        assert!(
            p.reasons
                .iter()
                .any(|r| r.contains(why) && r.ends_with("not used")),
            "{procfile}: {:?}",
            p.reasons
        );
    }
}
