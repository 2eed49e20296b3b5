//! The offline guarantee (issue 22): `ocibuild build --offline`, run in a network namespace with
//! no route anywhere (`unshare -n`, or `-rn` when not root), builds from a warm store and
//! package cache to the digest an online build gives, for zero-config and Dockerfile builds;
//! with something missing it fails before any step runs and names every missing item.
//!
//! The store and package cache shared with the other build tests are used as they are (the
//! online builds warm them); the failing builds get private stores and an empty package cache,
//! so nothing shared is ever emptied.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use ocibuild_testkit::{TestContext, require_tool, run_ok_stdout};

fn cache() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("ocibuild-build-tests-store")
        .join("debian");
    fs::create_dir_all(&d).unwrap();
    d
}

fn shared_store() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ocibuild-build-tests-store")
}

fn app(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/apps")
        .join(name)
}

/// `ocibuild --root ROOT --progress plain` (online).
fn ocibuild(root: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ocibuild"));
    c.arg("--root")
        .arg(root)
        .args(["--progress", "plain"])
        .env_remove("SOURCE_DATE_EPOCH")
        .stdin(Stdio::null());
    c
}

/// The same, in a new network namespace: only a loopback interface (down), no route. Checked
/// once per call, so a namespace that had a route would fail the test.
fn offline(root: &Path) -> Command {
    let unshare = require_tool("unshare", "util-linux");
    let flags = if ocibuild_testkit::is_root() {
        "-n"
    } else {
        "-rn"
    };
    let probe = Command::new(&unshare)
        .args([
            flags,
            "sh",
            "-c",
            "cat /proc/net/route; cat /proc/self/net/dev",
        ])
        .output()
        .unwrap();
    assert!(probe.status.success(), "unshare {flags}: {probe:?}");
    let text = String::from_utf8_lossy(&probe.stdout);
    let ifaces: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_once(':').map(|(i, _)| i.trim()))
        .filter(|i| !i.contains('|'))
        .collect();
    assert_eq!(ifaces, ["lo"], "{text}");
    assert!(
        text.lines().count() <= 4,
        "a route in the namespace: {text}"
    );
    let mut c = Command::new(&unshare);
    c.arg(flags)
        .arg(env!("CARGO_BIN_EXE_ocibuild"))
        .arg("--root")
        .arg(root)
        .args(["--progress", "plain"])
        .env_remove("SOURCE_DATE_EPOCH")
        .stdin(Stdio::null());
    c
}

fn digest_of(stdout: &str) -> String {
    let d = stdout.lines().last().unwrap_or_default().to_string();
    assert!(d.starts_with("sha256:"), "{stdout}");
    d
}

fn failed(c: &mut Command) -> (i32, String) {
    let out: Output = c.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "expected a failure; stdout: {}\nstderr: {err}",
        String::from_utf8_lossy(&out.stdout)
    );
    (out.status.code().unwrap_or(-1), err)
}

/// Step records and step logs a store holds: none after a build that ran no step.
fn steps_in(root: &Path) -> usize {
    let count = |d: PathBuf| {
        walkdir::WalkDir::new(d)
            .into_iter()
            .flatten()
            .filter(|e| e.file_type().is_file())
            .count()
    };
    count(root.join("engine").join("df")) + count(root.join("logs"))
}

#[test]
fn warm_builds_offline_give_the_online_digests() {
    let ctx = TestContext::new();
    let store = shared_store();
    let layout = ctx.path("out");
    let l = layout.display().to_string();

    // zero-config Go: online (warms the store), then offline in the namespace
    let go = app("go-hello");
    let online = digest_of(&run_ok_stdout(
        ocibuild(&store)
            .arg("build")
            .arg(&go)
            .arg("--cache-dir")
            .arg(cache())
            .args(["--output", &format!("oci:{l}:go-online")]),
    ));
    let t0 = std::time::Instant::now();
    let out = offline(&store)
        .arg("build")
        .arg(&go)
        .arg("--offline")
        .arg("--cache-dir")
        .arg(cache())
        .args(["--output", &format!("oci:{l}:go-offline")])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(
        digest_of(&String::from_utf8_lossy(&out.stdout)),
        online,
        "{err}"
    );
    eprintln!(
        "zero-config offline: {:.2} s\n{err}",
        t0.elapsed().as_secs_f64()
    );

    // a Dockerfile on a native base with a COPY
    let df_ctx = ctx.tmp_dir("df-context");
    fs::write(df_ctx.join("motd.txt"), "served offline\n").unwrap();
    fs::write(
        df_ctx.join("Dockerfile"),
        "FROM ocibuild:static:nonroot\nCOPY motd.txt /srv/motd.txt\nUSER nonroot\nENTRYPOINT [\"/nothing\"]\n",
    )
    .unwrap();
    let online = digest_of(&run_ok_stdout(
        ocibuild(&store)
            .arg("build")
            .arg(&df_ctx)
            .arg("--cache-dir")
            .arg(cache())
            .args(["--output", &format!("oci:{l}:df-online")]),
    ));
    let out = offline(&store)
        .arg("build")
        .arg(&df_ctx)
        .arg("--offline")
        .arg("--cache-dir")
        .arg(cache())
        .args(["--output", &format!("oci:{l}:df-offline")])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(
        digest_of(&String::from_utf8_lossy(&out.stdout)),
        online,
        "{err}"
    );
    // the same base named by digest under a registry that never existed: it is in the store by
    // that digest, so nothing is pulled, and the build is the same image
    let base = err
        .lines()
        .find_map(|l| l.strip_prefix("=> ocibuild:static:nonroot: "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no base digest in:\n{err}"))
        .to_string();
    fs::write(
        df_ctx.join("Dockerfile"),
        format!(
            "FROM 127.0.0.1:5999/never/pulled@{base}\nCOPY motd.txt /srv/motd.txt\nUSER nonroot\nENTRYPOINT [\"/nothing\"]\n"
        ),
    )
    .unwrap();
    let out = offline(&store)
        .arg("build")
        .arg(&df_ctx)
        .arg("--offline")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(
        digest_of(&String::from_utf8_lossy(&out.stdout)),
        online,
        "{err}"
    );
    // and the layout holds both under the same manifest
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let digests: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    assert_eq!(digests.len(), 4, "{index}");
}

#[test]
fn offline_builds_with_something_missing_fail_before_any_step_and_name_every_item() {
    let ctx = TestContext::new();

    // --offline with a flag that needs the network: a usage error before any work
    let store = ctx.tmp_dir("store-usage");
    let df_ctx = ctx.tmp_dir("df-usage");
    fs::write(df_ctx.join("Dockerfile"), "FROM scratch\n").unwrap();
    let (code, err) = failed(ocibuild(&store).arg("build").arg(&df_ctx).args([
        "--offline",
        "--push",
        "-t",
        "127.0.0.1:5999/x/app:1",
    ]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--offline") && err.contains("--push"), "{err}");

    // A Dockerfile: a registry base never pulled, an ADD of a URL, a native base with a
    // package the cache lacks, a COPY --from of another image never pulled, and RUN steps that
    // must not run. A network cache is ignored, said once.
    let store = ctx.tmp_dir("store-df");
    let df_ctx = ctx.tmp_dir("df-missing");
    fs::write(df_ctx.join("app.conf"), "port=8080\n").unwrap();
    fs::write(
        df_ctx.join("Dockerfile"),
        "FROM 127.0.0.1:5999/offline/tools:1 AS tools\n\
         RUN echo must-not-run > /tools.txt\n\
         \n\
         FROM ocibuild:static:nonroot+sl\n\
         ADD https://127.0.0.1:9/assets/data.tar.gz /srv/\n\
         COPY app.conf /etc/app.conf\n\
         COPY --from=127.0.0.1:5999/offline/assets:2 /assets /srv/assets\n\
         COPY --from=tools /tools.txt /srv/\n\
         RUN --network=none echo must-not-run-either\n",
    )
    .unwrap();
    // online first: the package indexes the lock of `static:nonroot+sl` comes from are cached
    // (a cold cache would make it a lock that cannot be resolved, not a missing package)
    run_ok_stdout(
        ocibuild(&store)
            .args([
                "base",
                "lock",
                "--profile",
                "static:nonroot",
                "--packages",
                "sl",
            ])
            .arg("--cache-dir")
            .arg(cache())
            .arg("--output")
            .arg(ctx.path("sl.lock")),
    );
    let t0 = std::time::Instant::now();
    let (code, err) = failed(
        offline(&store)
            .arg("build")
            .arg(&df_ctx)
            .arg("--offline")
            .arg("--cache-dir")
            .arg(cache())
            .args([
                "--cache-from",
                "type=registry,ref=127.0.0.1:5999/offline/cache",
                "--output",
                &format!("oci:{}:x", ctx.path("out").display()),
            ]),
    );
    eprintln!(
        "Dockerfile, missing items: {:.2} s\n{err}",
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("--cache-from type=registry") && err.contains("is ignored"),
        "{err}"
    );
    for want in [
        "nothing was fetched and no step ran",
        "image 127.0.0.1:5999/offline/tools:1 (linux/amd64) was never pulled",
        "image 127.0.0.1:5999/offline/assets:2",
        "Dockerfile:1:",
        "Dockerfile:7:",
        "--pull missing",
        "Dockerfile:5: ADD https://127.0.0.1:9/assets/data.tar.gz",
        "ocibuild:static:nonroot+sl: ",
        "sl_",
        "_amd64.deb (sha256:",
        "ocibuild base build --profile static:nonroot --packages sl --distro trixie --arch amd64",
    ] {
        assert!(err.contains(want), "no `{want}` in:\n{err}");
    }
    assert!(!err.contains("must-not-run"), "{err}");
    assert_eq!(steps_in(&store), 0, "a step ran");

    // Zero-config with an emptied package cache: a private store that knows the locks (copied
    // from the shared store, as a CI runner's store would) and an empty cache. Every package
    // of both the toolchain root and the runtime base is named, with its version.
    // online first (warm: nothing runs), so the shared store holds the app's locks
    run_ok_stdout(
        ocibuild(&shared_store())
            .arg("build")
            .arg(app("go-hello"))
            .arg("--cache-dir")
            .arg(cache()),
    );
    let store = ctx.tmp_dir("store-zc");
    let locks = store.join("engine").join("locks");
    fs::create_dir_all(&locks).unwrap();
    for e in fs::read_dir(shared_store().join("engine").join("locks")).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), locks.join(e.file_name())).unwrap();
    }
    let empty = ctx.tmp_dir("empty-cache");
    let t0 = std::time::Instant::now();
    let (code, err) = failed(
        offline(&store)
            .arg("build")
            .arg(app("go-hello"))
            .arg("--offline")
            .arg("--cache-dir")
            .arg(&empty)
            .args(["--output", &format!("oci:{}:x", ctx.path("out").display())]),
    );
    eprintln!(
        "zero-config, empty package cache: {:.2} s\n{err}",
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(code, 1, "{err}");
    for want in [
        "nothing was fetched and no step ran",
        "ocibuild:build-base+golang-go: ",
        "ocibuild:static:nonroot: ",
        "golang-go_",
        "base-files_",
        &format!("not in the package cache {}", empty.display()),
        "run this build once without --offline",
    ] {
        assert!(err.contains(want), "no `{want}` in:\n{err}");
    }
    let debs = err.matches(".deb (sha256:").count();
    assert!(debs > 20, "only {debs} packages named:\n{err}");
    assert_eq!(steps_in(&store), 0, "a step ran");
    assert!(
        fs::read_dir(&empty).unwrap().next().is_none()
            || walkdir::WalkDir::new(&empty)
                .into_iter()
                .flatten()
                .all(|e| !e.file_type().is_file()),
        "something was fetched into the empty cache"
    );
}

#[test]
fn offline_run_steps_get_no_network_and_keep_their_online_keys() {
    // Outside a namespace, so the host has a network the step could see: `--offline` must take
    // it away from the RUN, and the step's key must be the one an online build gives.
    let host = fs::read_to_string("/proc/net/dev").unwrap();
    assert!(
        host.lines()
            .skip(2)
            .any(|l| !l.trim_start().starts_with("lo:")),
        "the host has no interface but lo, so this test cannot tell a step's network from none: {host}"
    );
    let ctx = TestContext::new();
    let store = shared_store();
    let df_ctx = ctx.tmp_dir("df-run");
    // a fresh value, so the RUN is not in the shared step cache and really runs
    let nonce = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    fs::write(df_ctx.join("nonce.txt"), &nonce).unwrap();
    fs::write(
        df_ctx.join("Dockerfile"),
        "FROM ocibuild:static:debug\nCOPY nonce.txt /nonce.txt\nRUN echo \"interfaces: $(cut -d: -f1 /proc/net/dev | tail -n +3 | tr -d ' ' | tr '\\n' ' ')\" > /net.txt && cat /net.txt\n",
    )
    .unwrap();
    let layout = ctx.path("out");
    let l = layout.display().to_string();
    // the base online first (warm: found in the store), so offline only the two steps are new
    let base_ctx = ctx.tmp_dir("df-base");
    fs::write(base_ctx.join("Dockerfile"), "FROM ocibuild:static:debug\n").unwrap();
    run_ok_stdout(
        ocibuild(&store)
            .arg("build")
            .arg(&base_ctx)
            .arg("--cache-dir")
            .arg(cache()),
    );
    let t0 = std::time::Instant::now();
    let out = ocibuild(&store)
        .arg("build")
        .arg(&df_ctx)
        .arg("--offline")
        .arg("--cache-dir")
        .arg(cache())
        .args(["--output", &format!("oci:{l}:offline")])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    eprintln!("offline RUN: {:.2} s\n{err}", t0.elapsed().as_secs_f64());
    let offline = digest_of(&String::from_utf8_lossy(&out.stdout));
    assert!(err.contains("run without the network"), "{err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("interfaces: "))
        .unwrap_or_else(|| panic!("the step's output is not shown:\n{err}"));
    assert_eq!(
        line.split("interfaces: ").nth(1).unwrap().trim(),
        "lo",
        "{err}"
    );
    // online, the same step is a hit: nothing runs, the same image
    let out = ocibuild(&store)
        .arg("build")
        .arg(&df_ctx)
        .arg("--cache-dir")
        .arg(cache())
        .args(["--output", &format!("oci:{l}:online")])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(
        digest_of(&String::from_utf8_lossy(&out.stdout)),
        offline,
        "{err}"
    );
    assert!(
        !err.lines().any(|l| l.starts_with("interfaces: ")),
        "the RUN ran again online:\n{err}"
    );
}

/// A copy of a testdata app in `dir`.
fn copy_app(name: &str, dir: &Path) {
    for e in walkdir::WalkDir::new(app(name)).min_depth(1) {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(app(name)).unwrap();
        if e.file_type().is_dir() {
            fs::create_dir_all(dir.join(rel)).unwrap();
        } else {
            fs::copy(e.path(), dir.join(rel)).unwrap();
        }
    }
}

#[test]
fn a_zero_config_download_step_that_must_run_offline_is_reported_before_anything_runs() {
    // python-app, built online (the roots, the venv and the pip step are cached), then a new
    // requirement: the pip step must run again, and pip cannot install from its cache without
    // an index. The preflight says so and names the fix; nothing runs.
    let ctx = TestContext::new();
    let store = shared_store();
    let dir = ctx.tmp_dir("python-app");
    copy_app("python-app", &dir);
    run_ok_stdout(
        ocibuild(&store)
            .arg("build")
            .arg(&dir)
            .arg("--cache-dir")
            .arg(cache()),
    );
    let mut req = fs::read_to_string(dir.join("requirements.txt")).unwrap();
    req.push_str("six==1.17.0\n");
    fs::write(dir.join("requirements.txt"), req).unwrap();
    let t0 = std::time::Instant::now();
    let (code, err) = failed(
        offline(&store)
            .arg("build")
            .arg(&dir)
            .arg("--offline")
            .arg("--cache-dir")
            .arg(cache()),
    );
    eprintln!(
        "zero-config, pip step must run: {:.2} s\n{err}",
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(code, 1, "{err}");
    for want in [
        "nothing was fetched and no step ran",
        "[build ",
        "python3 -m pip",
        "not in the step cache: it runs pip, which downloads dependencies and cannot install from its cache without the network",
        "run this build once",
    ] {
        assert!(err.contains(want), "no `{want}` in:\n{err}");
    }
    assert!(!err.contains(", done in "), "a step ran:\n{err}");
}

#[test]
fn a_zero_config_npm_install_runs_offline_from_its_warm_cache() {
    // node-deps online (npm's cache mount is filled), then offline with --no-cache, so every
    // step runs in the namespace: `npm ci` installs from the warm cache (npm_config_offline)
    // and the image is the online one.
    let ctx = TestContext::new();
    let store = shared_store();
    let node = app("node-deps");
    let online = digest_of(&run_ok_stdout(
        ocibuild(&store)
            .arg("build")
            .arg(&node)
            .arg("--cache-dir")
            .arg(cache()),
    ));
    let t0 = std::time::Instant::now();
    let out = offline(&store)
        .arg("build")
        .arg(&node)
        .args(["--offline", "--no-cache"])
        .arg("--cache-dir")
        .arg(cache())
        .args([
            "--output",
            &format!("oci:{}:node", ctx.path("out").display()),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "zero-config npm ci offline: {:.2} s",
        t0.elapsed().as_secs_f64()
    );
    assert!(out.status.success(), "{err}");
    assert!(
        err.lines()
            .any(|l| l.contains(" npm ci ") && l.contains(": exit 0, done in ")),
        "npm ci did not run:\n{err}"
    );
    assert_eq!(
        digest_of(&String::from_utf8_lossy(&out.stdout)),
        online,
        "{err}"
    );
}
