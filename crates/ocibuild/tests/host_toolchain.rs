//! `ocibuild build --toolchain host` probes the host's programs before building anything: an
//! app whose requirement no host can meet (Go 1.99, Node.js >= 99, Python >= 3.99) fails early
//! with a message naming the requirement, where it comes from, what the host has and what to do
//! — or, where the host lacks the program altogether, with the missing-program message. Which of
//! the two is decided by looking the program up on the steps' PATH, so the test never skips.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use ocibuild_testkit::{TestContext, run_fail};

/// The `PATH` steps run with over the host root.
const STEP_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn on_step_path(program: &str) -> Option<PathBuf> {
    STEP_PATH
        .split(':')
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file())
}

fn ocibuild(ctx: &TestContext) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ocibuild"));
    c.arg("--root")
        .arg(ctx.root_dir())
        .args(["--progress", "plain"]);
    c
}

fn app(ctx: &TestContext, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = ctx.tmp_dir(name);
    for (f, body) in files {
        fs::write(dir.join(f), body).unwrap();
    }
    dir
}

/// Build `dir` with `--toolchain host`: it must fail before any base is built, saying either
/// that `program` is missing or (`too_old`) that it does not satisfy the requirement.
fn assert_host_check_fails(ctx: &TestContext, dir: &Path, program: &str, too_old: &str) {
    let err = run_fail(
        ocibuild(ctx)
            .arg("build")
            .arg(dir)
            .args(["--toolchain", "host", "--offline", "--output"])
            .arg(format!("oci:{}:x", ctx.path("out").display())),
    );
    match on_step_path(program) {
        Some(p) => {
            assert!(
                err.contains(&format!("--toolchain host: {too_old}")),
                "{program} is at {}: want {too_old:?} in\n{err}",
                p.display()
            );
            assert!(err.contains(&format!("({})", p.display())), "{err}");
            assert!(err.contains("or drop --toolchain host"), "{err}");
        }
        None => assert!(
            err.contains(&format!(
                "--toolchain host: {program} not found on PATH ({STEP_PATH}) — install it"
            )),
            "{program} is not on the host: want the missing-program message in\n{err}"
        ),
    }
    // Nothing was built: the check runs first.
    assert!(!ctx.path("out").exists(), "{err}");
}

#[test]
fn go_newer_than_the_hosts_fails_early() {
    let ctx = TestContext::new();
    let dir = app(
        &ctx,
        "go-app",
        &[
            ("go.mod", "module example.com/x\n\ngo 1.99\n"),
            ("main.go", "package main\n\nfunc main() {}\n"),
        ],
    );
    assert_host_check_fails(
        &ctx,
        &dir,
        "go",
        "the app needs Go >= 1.99 (go.mod:3), the host has go1.",
    );
}

#[test]
fn node_engines_no_host_meets_fails_early() {
    let ctx = TestContext::new();
    let dir = app(
        &ctx,
        "node-app",
        &[
            (
                "package.json",
                "{\n  \"name\": \"x\",\n  \"version\": \"1.0.0\",\n  \"main\": \"index.js\",\n  \"engines\": {\n    \"node\": \">=99\"\n  }\n}\n",
            ),
            (
                "package-lock.json",
                r#"{"name":"x","version":"1.0.0","lockfileVersion":3,"requires":true,"packages":{"":{"name":"x","version":"1.0.0"}}}"#,
            ),
            ("index.js", "console.log('x')\n"),
        ],
    );
    assert_host_check_fails(
        &ctx,
        &dir,
        "node",
        "the app needs Node.js >=99 (package.json:6, engines.node), the host has node v",
    );
}

#[test]
fn python_requirement_no_host_meets_fails_early() {
    let ctx = TestContext::new();
    let dir = app(
        &ctx,
        "py-app",
        &[
            (
                "pyproject.toml",
                "[project]\nname = \"x\"\nversion = \"1.0\"\nrequires-python = \">=3.99\"\n",
            ),
            ("main.py", "print('x')\n"),
        ],
    );
    assert_host_check_fails(
        &ctx,
        &dir,
        "python3",
        "the app needs Python >=3.99 (pyproject.toml:4, requires-python), the host has Python 3.",
    );
}

#[test]
fn explain_prints_the_hosts_version() {
    // With no requirement the host's node only has to exist; --explain says what it found.
    // (Where the host has no node, the missing-program error is what this asserts.)
    let ctx = TestContext::new();
    let dir = app(
        &ctx,
        "node-plain",
        &[
            (
                "package.json",
                r#"{"name":"x","version":"1.0.0","main":"index.js"}"#,
            ),
            (
                "package-lock.json",
                r#"{"name":"x","version":"1.0.0","lockfileVersion":3,"requires":true,"packages":{"":{"name":"x","version":"1.0.0"}}}"#,
            ),
            ("index.js", "console.log('x')\n"),
        ],
    );
    // --offline with an empty store: the build stops at the runtime base, after the probe
    // and --explain have run; either way the outcome of the probe is on stderr.
    let out = ocibuild(&ctx)
        .arg("build")
        .arg(&dir)
        .args(["--toolchain", "host", "--explain", "--offline", "--output"])
        .arg(format!("oci:{}:x", ctx.path("out").display()))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    match on_step_path("node") {
        Some(p) => assert!(
            err.contains("why: toolchain (host): node v")
                && err.contains(&format!("({})", p.display())),
            "{err}"
        ),
        None => assert!(
            err.contains("--toolchain host: node not found on PATH"),
            "{err}"
        ),
    }
}

/// `--toolchain host` builds on the one executor: the build stage is `FROM ocibuild:host` (the
/// host's programs bound read-only), the final stage the usual runtime base; an unchanged
/// rebuild is the stored result.
#[test]
fn a_node_app_builds_with_the_hosts_npm_and_rebuilds_from_the_cache() {
    let node = on_step_path("node");
    assert!(
        node.is_some() && on_step_path("npm").is_some(),
        "this test needs node and npm on the host (scripts/setup.sh installs nodejs)"
    );
    let ctx = TestContext::new();
    let dir = ctx.tmp_dir("node-host");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/apps/node-app");
    let cp = Command::new("cp")
        .arg("-r")
        .arg(format!("{}/.", src.display()))
        .arg(&dir)
        .status()
        .unwrap();
    assert!(cp.success());
    // the build tests' store outlives a run: a file unique to this run keeps the first build a miss
    fs::write(dir.join("run.txt"), ctx.dir().display().to_string()).unwrap();
    let store = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ocibuild-build-tests-store");
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("ocibuild-build-tests-store")
        .join("debian");
    fs::create_dir_all(&cache).unwrap();
    let layout = ctx.path("layout");
    let meta = ctx.path("meta.json");
    let build = |tag: &str| {
        let out = ocibuild_testkit::run_ok(
            Command::new(env!("CARGO_BIN_EXE_ocibuild"))
                .arg("--root")
                .arg(&store)
                .args(["--progress", "plain", "build"])
                .arg(&dir)
                .args(["--toolchain", "host", "--cache-dir"])
                .arg(&cache)
                .arg("--metadata-file")
                .arg(&meta)
                .arg("--output")
                .arg(format!("oci:{}:{tag}", layout.display())),
        );
        let m: serde_json::Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
        (
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            m,
        )
    };
    let (a, err, m) = build("a");
    assert!(
        err.contains("FROM ocibuild:host AS build") || err.contains("FROM ocibuild:host"),
        "{err}"
    );
    assert!(!err.contains("step loop"), "{err}");
    assert_eq!(m["ocibuild.cached"], false, "{m}");
    let rootfs = ocibuild_testkit::umoci_unpack(&layout, "a", &ctx.path("bundle"));
    assert!(
        rootfs.join("app/dist/banner.txt").is_file(),
        "the host's npm ran the build script"
    );
    assert!(rootfs.join("app/package.json").is_file());
    assert!(
        !rootfs.join("usr/bin/npm").exists(),
        "the host's programs stay out of the image"
    );
    let (b, err, m) = build("b");
    assert_eq!(a, b, "{err}");
    assert_eq!(m["ocibuild.cached"], true, "{m}");
}
