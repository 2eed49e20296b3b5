//! Zero-config builds of Python apps shaped like the ones people have (issue 16): a `uv init`
//! style FastAPI service built by hatchling with a `uv.lock`, a Poetry Flask app with a
//! `poetry.lock`, a Django project with a `Pipfile.lock`, a flit package with several console
//! scripts and a `pdm.lock`, and a single-script service. Each is built with no configuration,
//! started under runc (the servers are asked over HTTP), and checked for what a distroless image
//! must not hold: no shell, compiler or package manager (pip included), no sources of the build.
//!
//! The lockfiles were made by the real tools (uv, Poetry, pipenv, pdm); the index hosts in them
//! are replaced by example names (the builder never reads URLs from a lock: pip fetches from its
//! configured index and checks the lock's hashes).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use ocibuild_testkit::{TestContext, run_ok, runc_http_get, runc_run, umoci_unpack};

/// The content store the other build tests use (bases and toolchain roots built once).
fn shared_store() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ocibuild-build-tests-store")
}

fn app(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/apps")
        .join(name)
}

fn ocibuild() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ocibuild"));
    c.arg("--root")
        .arg(shared_store())
        .args(["--progress", "plain"])
        .env_remove("SOURCE_DATE_EPOCH");
    c
}

/// Build `testdata/apps/NAME` zero-config with `--explain` into `oci:LAYOUT:NAME`, unpack it;
/// returns (rootfs, bundle, the explain output).
fn build(ctx: &TestContext, name: &str, extra: &[&str]) -> (PathBuf, PathBuf, String) {
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("ocibuild-build-tests-store")
        .join("debian");
    fs::create_dir_all(&cache).unwrap();
    let layout = ctx.path("layout");
    let out = run_ok(
        ocibuild()
            .arg("build")
            .arg(app(name))
            .arg("--explain")
            .args(extra)
            .arg("--cache-dir")
            .arg(&cache)
            .arg("--output")
            .arg(format!("oci:{}:{name}", layout.display())),
    );
    let explain = String::from_utf8_lossy(&out.stderr).into_owned();
    let bundle = ctx.path(format!("bundle-{name}"));
    let rootfs = umoci_unpack(&layout, name, &bundle);
    assert_clean(&rootfs);
    (rootfs, bundle, explain)
}

/// No shell, compiler or package manager in the image, none in the venv either.
fn assert_clean(rootfs: &Path) {
    ocibuild_testkit::assert_no_build_tools(rootfs, &[]);
    let venv = rootfs.join("app/.venv");
    for e in fs::read_dir(venv.join("bin")).unwrap().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        assert!(
            !n.starts_with("pip") && !n.starts_with("uv") || n.starts_with("uvicorn"),
            "app/.venv/bin/{n} must not be in the image"
        );
    }
    for e in fs::read_dir(site_packages(rootfs)).unwrap().flatten() {
        let n = e.file_name().to_string_lossy().to_ascii_lowercase();
        for banned in [
            "pip",
            "setuptools",
            "wheel",
            "uv",
            "poetry",
            "pipenv",
            "pdm",
        ] {
            assert!(
                n != banned && !n.starts_with(&format!("{banned}-")),
                "{} must not be in the image",
                e.path().display()
            );
        }
    }
}

fn site_packages(rootfs: &Path) -> PathBuf {
    let lib = fs::read_dir(rootfs.join("app/.venv/lib"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    lib.join("site-packages")
}

/// The `NAME-VERSION.dist-info` directories of the venv, as `name==version`, sorted.
fn installed(rootfs: &Path) -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(site_packages(rootfs))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            let stem = n.strip_suffix(".dist-info")?;
            let (name, version) = stem.split_once('-')?;
            Some(format!(
                "{}=={version}",
                name.to_ascii_lowercase().replace('_', "-")
            ))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn uv_hatchling_fastapi_service_answers() {
    // hatchling stamps wheel entries with SOURCE_DATE_EPOCH: the default 0 must not reach it
    let ctx = TestContext::new();
    let (rootfs, bundle, explain) = build(&ctx, "python-uv-fastapi", &[]);
    // the FastAPI app object wins over the console script: uvicorn (locked) serves it
    assert!(
        explain.contains("entrypoint: uvicorn serves the FastAPI app notes_api.api:app"),
        "{explain}"
    );
    // exactly uv.lock's versions, without the dev group; the project itself, not editable
    assert!(
        explain.contains("lockfile uv.lock: 14 pinned packages installed exactly"),
        "{explain}"
    );
    let pkgs = installed(&rootfs);
    for p in [
        "fastapi==0.165.0",
        "notes-api==0.3.0",
        "pydantic-core==",
        "starlette==",
        "uvicorn==",
    ] {
        assert!(pkgs.iter().any(|i| i.starts_with(p)), "{p}: {pkgs:?}");
    }
    assert_eq!(pkgs.len(), 15, "14 pins and the project: {pkgs:?}");
    assert!(!pkgs.iter().any(|p| p.starts_with("pytest")), "{pkgs:?}");
    let sp = site_packages(&rootfs);
    assert!(
        sp.join("notes_api/api.py").is_file(),
        "installed, not editable"
    );
    for e in fs::read_dir(&sp).unwrap().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        assert!(
            !n.ends_with(".pth") || !fs::read_to_string(e.path()).unwrap().contains("/src"),
            "{n} points at /src"
        );
    }
    let body = runc_http_get(&bundle, &[], 8000, "/");
    assert!(
        body.contains("\"service\":\"notes-api\"") && body.contains("\"uid\":65532"),
        "{body}"
    );
    // the steps saw 1980, the image still carries the user's epoch (0 by default)
    let cfg = ocibuild_testkit::skopeo_inspect_config(&format!(
        "oci:{}:python-uv-fastapi",
        ctx.path("layout").display()
    ));
    assert_eq!(cfg["created"], "1970-01-01T00:00:00Z", "{cfg}");
}

#[test]
fn poetry_flask_factory_answers_under_gunicorn() {
    let ctx = TestContext::new();
    let (rootfs, bundle, explain) = build(&ctx, "python-poetry-flask", &[]);
    assert!(
        explain.contains("entrypoint: gunicorn serves the Flask factory bookshelf:create_app"),
        "{explain}"
    );
    assert!(
        explain.contains("lockfile poetry.lock: 9 pinned packages installed exactly"),
        "{explain}"
    );
    let pkgs = installed(&rootfs);
    for p in [
        "flask==3.1.3",
        "gunicorn==23.0.0",
        "werkzeug==3.1.9",
        "bookshelf==1.2.0",
    ] {
        assert!(pkgs.iter().any(|i| i == p), "{p}: {pkgs:?}");
    }
    assert_eq!(pkgs.len(), 10, "{pkgs:?}");
    let body = runc_http_get(&bundle, &[], 8000, "/");
    assert_eq!(body.trim(), "bookshelf with 2 books, served as uid 65532");
}

#[test]
fn django_project_from_a_pipfile_lock_answers_under_gunicorn() {
    let ctx = TestContext::new();
    let (rootfs, bundle, explain) = build(&ctx, "python-django-pipenv", &[]);
    assert!(
        explain.contains("entrypoint: gunicorn serves the Django app guestbook.wsgi:application"),
        "{explain}"
    );
    assert!(
        explain.contains("lockfile Pipfile.lock: 5 pinned packages installed exactly"),
        "{explain}"
    );
    // psycopg2 is source-only for Linux: libpq's headers and pg_config in the build root, and
    // libpq itself (which the python3 runtime lacks) shipped beside the venv
    assert!(
        explain.contains("psycopg2: built from source against a C library: libpq-dev"),
        "{explain}"
    );
    assert_eq!(
        installed(&rootfs),
        [
            "asgiref==3.13.0",
            "django==5.2.19",
            "gunicorn==27.0.1",
            "psycopg2==2.9.13",
            "sqlparse==0.6.1"
        ]
    );
    assert!(rootfs.join("app/guestbook/wsgi.py").is_file());
    // STATIC_ROOT with django.contrib.staticfiles: collectstatic ran in the build
    assert!(
        explain.contains("Django static files: guestbook/settings.py sets STATIC_ROOT"),
        "{explain}"
    );
    assert!(
        rootfs
            .join("app/staticfiles/entries/guestbook.css")
            .is_file()
    );
    let body = runc_http_get(&bundle, &[], 8000, "/");
    let body = body.trim();
    assert!(
        body.starts_with("guestbook on django 5.2.19 with libpq 1")
            && body.ends_with(" as uid 65532: 0 entries"),
        "{body}"
    );
}

#[test]
fn flit_package_with_a_pdm_lock_runs_its_console_script() {
    let ctx = TestContext::new();
    let (rootfs, bundle, explain) = build(&ctx, "python-flit-scripts", &[]);
    assert!(
        explain
            .contains("entrypoint candidates: console scripts tally-report, tally, tally-version")
            && explain.contains("entrypoint: console script \"tally\" (named like the project)"),
        "{explain}"
    );
    assert!(
        explain.contains("lockfile pdm.lock: 1 pinned packages installed exactly"),
        "{explain}"
    );
    assert_eq!(installed(&rootfs), ["tabulate==0.10.0", "tally==2.0.1"]);
    for s in ["tally", "tally-report", "tally-version"] {
        assert!(rootfs.join("app/.venv/bin").join(s).is_file(), "{s}");
    }
    let (rc, out, err) = runc_run(&bundle, None);
    assert_eq!(rc, 0, "{out}{err}");
    assert!(out.contains("| <sample> |       3 |       9 |"), "{out}");
    assert!(out.contains("tally ran as uid 65532"), "{out}");
}

#[test]
fn single_script_service_answers() {
    let ctx = TestContext::new();
    let (rootfs, bundle, explain) = build(&ctx, "python-script", &[]);
    assert!(
        explain.contains(
            "entrypoint: python3 uptime_server.py (its `if __name__ == \"__main__\":` guard)"
        ),
        "{explain}"
    );
    assert_eq!(installed(&rootfs), ["humanize==4.11.0"]);
    let body = runc_http_get(&bundle, &[("PORT", "8080")], 8080, "/");
    assert!(
        body.starts_with("uptime-server as uid 65532, up for "),
        "{body}"
    );
}
