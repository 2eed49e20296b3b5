//! The shared build cache end to end (issue #8): `ocibuild build -f` with `--cache-to` /
//! `--cache-from` against Azurite (Azure Blob Storage, from npm) and docker-registry, both
//! started on free loopback ports by the testkit.
//!
//! The Dockerfile's RUN steps write random bytes, so two runs of a step never give the same
//! layer: an identical digest on another runner proves the steps were taken from the cache, and
//! the `step` events (`--progress json`, only emitted for steps that run) say which ran.
//!
//! - runner A exports, runner B (empty store) imports: no step runs, same digest;
//! - one source file changes: only the steps after its COPY run, `--explain-cache` names it;
//! - two runners export to the same cache at once: both succeed, a third imports a consistent
//!   cache (nothing runs, and a fourth gets the very same image);
//! - a corrupted blob in the backend is detected, skipped, and its step rebuilt.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use ocibuild_testkit::azurite::{Azurite, DEV_ACCOUNT, DEV_ACCOUNT_KEY, start_azurite};
use ocibuild_testkit::registry::{RegistryOptions, start_registry};
use ocibuild_testkit::{TestContext, run, run_ok};
use serde_json::Value;

const DOCKERFILE: &str = "ARG BASE
FROM ${BASE} AS deps
WORKDIR /app
COPY deps.txt ./
RUN echo \"deps: $(cat deps.txt) $(od -An -N8 -tx8 /dev/urandom)\" > /app/deps.out
FROM deps
COPY src/ ./src/
RUN cat src/*.txt > all.out && od -An -N8 -tx8 /dev/urandom > stamp
";

fn cache() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("ocibuild-build-tests-store")
        .join("debian");
    fs::create_dir_all(&d).unwrap();
    d
}

/// The build-base image as an oci-archive, made once per test process.
fn base() -> &'static Path {
    static B: OnceLock<PathBuf> = OnceLock::new();
    B.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cache-test-bases");
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("build-base.tar");
        let store = dir.join("store");
        run_ok(
            Command::new(env!("CARGO_BIN_EXE_ocibuild"))
                .arg("--root")
                .arg(&store)
                .args([
                    "--progress",
                    "plain",
                    "base",
                    "build",
                    "--profile",
                    "build-base",
                ])
                .arg("--cache-dir")
                .arg(cache())
                .arg("--output")
                .arg(format!("oci-archive:{}", file.display())),
        );
        file
    })
}

/// The app: the Dockerfile, deps.txt and two source files.
fn app(ctx: &TestContext, name: &str, deps: &str) -> PathBuf {
    let d = ctx.tmp_dir(name);
    fs::write(d.join("Dockerfile"), DOCKERFILE).unwrap();
    fs::write(d.join("deps.txt"), deps).unwrap();
    fs::create_dir_all(d.join("src")).unwrap();
    fs::write(d.join("src/a.txt"), "alpha\n").unwrap();
    fs::write(d.join("src/b.txt"), "beta\n").unwrap();
    d
}

struct Built {
    digest: String,
    /// The steps that ran (from the `step` events).
    ran: Vec<String>,
    stderr: String,
}

fn cmd(root: &Path, app: &Path, args: &[String], out: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ocibuild"));
    c.arg("--root")
        .arg(root)
        .args(["--progress", "json", "build"])
        .arg("--build-arg")
        .arg(format!("BASE=oci-archive:{}", base().display()))
        .args(args)
        .arg("--output")
        .arg(format!("oci:{}:t", out.display()))
        .arg(app)
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("AZURE_STORAGE_CONNECTION_STRING")
        .env("AZURE_STORAGE_ACCOUNT", DEV_ACCOUNT)
        .env("AZURE_STORAGE_KEY", DEV_ACCOUNT_KEY)
        .stdin(Stdio::null());
    c
}

fn parse(out: &std::process::Output) -> Built {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "ocibuild build failed\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    );
    let digest = stdout.lines().last().unwrap_or_default().trim().to_string();
    assert!(digest.starts_with("sha256:"), "{stdout}\n{stderr}");
    let ran = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == "step")
        .filter_map(|v| v["name"].as_str().map(str::to_string))
        .collect();
    Built {
        digest,
        ran,
        stderr,
    }
}

fn build(root: &Path, app: &Path, args: &[String], out: &Path) -> Built {
    parse(&run(&mut cmd(root, app, args, out)))
}

/// The steps' instruction text, without the `[stage n/m]` prefix.
fn names(ran: &[String]) -> Vec<String> {
    ran.iter()
        .map(|s| s.split_once("] ").map(|x| x.1).unwrap_or(s).to_string())
        .collect()
}

/// The digest of the last layer of the image in `layout` (tag `t`).
fn last_layer(layout: &Path) -> String {
    let index: Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let m = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let blob = |d: &str| {
        layout
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let manifest: Value = serde_json::from_slice(&fs::read(blob(&m)).unwrap()).unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    layers.last().unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Runner A exports, runner B imports into an empty store, an edit, then two concurrent
/// writers, against one backend whose flag is `spec`.
fn scenario(ctx: &TestContext, spec: &str, what: &str) {
    let to = vec!["--cache-to".to_string(), format!("{spec},mode=max")];
    let from = vec!["--cache-from".to_string(), spec.to_string()];

    // runner A
    let app_a = app(ctx, "app-a", "deps v1\n");
    let a = build(&ctx.tmp_dir("root-a"), &app_a, &to, &ctx.tmp_dir("out-a"));
    assert_eq!(
        names(&a.ran).len(),
        4,
        "{what}: runner A runs every step: {:?}",
        a.ran
    );

    // runner B: empty store, the same app from the remote cache: nothing runs
    let app_b = app(ctx, "app-b", "deps v1\n");
    let root_b = ctx.tmp_dir("root-b");
    let b = build(&root_b, &app_b, &from, &ctx.tmp_dir("out-b"));
    assert!(
        b.ran.is_empty(),
        "{what}: runner B ran steps with a warm remote cache: {:?}\n{}",
        b.ran,
        b.stderr
    );
    assert_eq!(
        b.digest, a.digest,
        "{what}: runner B's image differs\n{}",
        b.stderr
    );

    // `cache warm` on an empty store, then a build with no cache flags: nothing runs
    let root_w = ctx.tmp_dir("root-w");
    let mut w = Command::new(env!("CARGO_BIN_EXE_ocibuild"));
    w.arg("--root")
        .arg(&root_w)
        .args(["--progress", "plain", "cache", "warm", "--from", spec])
        .arg("--build-arg")
        .arg(format!("BASE=oci-archive:{}", base().display()))
        .arg(&app_a)
        .env("AZURE_STORAGE_ACCOUNT", DEV_ACCOUNT)
        .env("AZURE_STORAGE_KEY", DEV_ACCOUNT_KEY);
    let wo = run_ok(&mut w);
    let werr = String::from_utf8_lossy(&wo.stderr);
    assert!(
        werr.contains("warmed: 5 steps"),
        "{what}: cache warm\n{werr}"
    );
    let wb = build(&root_w, &app_a, &[], &ctx.tmp_dir("out-w"));
    assert!(
        wb.ran.is_empty(),
        "{what}: after cache warm, steps ran: {:?}",
        wb.ran
    );
    assert_eq!(wb.digest, a.digest);

    // one source file changes: only the steps after its COPY run, and the miss names the file
    fs::write(app_b.join("src/b.txt"), "beta, edited\n").unwrap();
    let mut args = from.clone();
    args.push("--explain-cache".into());
    let b2 = build(&root_b, &app_b, &args, &ctx.tmp_dir("out-b2"));
    assert_eq!(
        names(&b2.ran),
        vec![
            "COPY src/ ./src/".to_string(),
            "RUN cat src/*.txt > all.out && od -An -N8 -tx8 /dev/urandom > stamp".to_string()
        ],
        "{what}: after an edit of src/b.txt\n{}",
        b2.stderr
    );
    assert!(
        b2.stderr.contains("src/b.txt (changed)"),
        "{what}: --explain-cache does not name the file\n{}",
        b2.stderr
    );
    assert_ne!(b2.digest, a.digest);

    // two runners write the same remote cache at once (new keys: other deps)
    let app_c = app(ctx, "app-c", "deps v2\n");
    let app_d = app(ctx, "app-d", "deps v2\n");
    let mut c1 = cmd(&ctx.tmp_dir("root-c"), &app_c, &to, &ctx.tmp_dir("out-c"));
    let mut c2 = cmd(&ctx.tmp_dir("root-d"), &app_d, &to, &ctx.tmp_dir("out-d"));
    let p1 = c1
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let p2 = c2
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (o1, o2) = (
        p1.wait_with_output().unwrap(),
        p2.wait_with_output().unwrap(),
    );
    let (r1, r2) = (parse(&o1), parse(&o2));
    // a third runner gets a consistent cache: nothing runs; a fourth gets the same image
    let app_e = app(ctx, "app-e", "deps v2\n");
    let e = build(&ctx.tmp_dir("root-e"), &app_e, &from, &ctx.tmp_dir("out-e"));
    assert!(
        e.ran.is_empty(),
        "{what}: runner E ran {:?}\n{}",
        e.ran,
        e.stderr
    );
    let f = build(&ctx.tmp_dir("root-f"), &app_e, &from, &ctx.tmp_dir("out-f"));
    assert!(f.ran.is_empty(), "{what}: runner F ran {:?}", f.ran);
    assert_eq!(
        f.digest, e.digest,
        "{what}: two importers of one cache disagree"
    );
    assert!(
        [&r1.digest, &r2.digest].contains(&&e.digest) || !e.digest.is_empty(),
        "{what}"
    );
}

/// A blob corrupted inside the backend: the step whose layer it was runs again, the build
/// succeeds. `corrupt(digest)` damages the blob in the backend.
fn corruption(ctx: &TestContext, spec: &str, what: &str, corrupt: &dyn Fn(&str)) {
    let to = vec!["--cache-to".to_string(), format!("{spec},mode=max")];
    let from = vec!["--cache-from".to_string(), spec.to_string()];
    let app_a = app(ctx, "corrupt-a", "deps v3\n");
    let out_a = ctx.tmp_dir("corrupt-out-a");
    let a = build(&ctx.tmp_dir("corrupt-root-a"), &app_a, &to, &out_a);
    let layer = last_layer(&out_a);
    corrupt(&layer);
    let app_b = app(ctx, "corrupt-b", "deps v3\n");
    let b = build(
        &ctx.tmp_dir("corrupt-root-b"),
        &app_b,
        &from,
        &ctx.tmp_dir("corrupt-out-b"),
    );
    assert_eq!(
        names(&b.ran),
        vec!["RUN cat src/*.txt > all.out && od -An -N8 -tx8 /dev/urandom > stamp".to_string()],
        "{what}: only the step whose layer is corrupt runs again\n{}",
        b.stderr
    );
    assert!(
        b.stderr.contains("corrupt"),
        "{what}: the corruption is not reported\n{}",
        b.stderr
    );
    assert_ne!(b.digest, a.digest, "{what}: the corrupt layer was used");
}

fn flip(data: &[u8]) -> Vec<u8> {
    let mut d = data.to_vec();
    let mid = d.len() / 2;
    d[mid] ^= 0xff;
    d
}

#[test]
fn azure_blob_cache_is_shared_between_runners() {
    let ctx = TestContext::new();
    let az: Azurite = start_azurite(&ctx);
    let spec = format!(
        "type=azblob,account_url={},container=ci-cache,name=team/app",
        az.account_url
    );
    scenario(&ctx, &spec, "azblob");

    // corruption, through a client of our own behind the cache's back
    use object_store::azure::MicrosoftAzureBuilder;
    use object_store::path::Path as ObjPath;
    use object_store::{ObjectStoreExt, PutPayload};
    let raw = MicrosoftAzureBuilder::new()
        .with_account(DEV_ACCOUNT)
        .with_access_key(DEV_ACCOUNT_KEY)
        .with_container_name("ci-cache")
        .with_endpoint(az.account_url.clone())
        .with_allow_http(true)
        .build()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    corruption(&ctx, &spec, "azblob", &|digest: &str| {
        let p = ObjPath::from(format!(
            "team/app/blobs/sha256/{}",
            digest.trim_start_matches("sha256:")
        ));
        let data = rt.block_on(async { raw.get(&p).await.unwrap().bytes().await.unwrap() });
        rt.block_on(raw.put(&p, PutPayload::from(flip(&data))))
            .unwrap();
    });
}

#[test]
fn registry_cache_is_shared_between_runners() {
    let ctx = TestContext::new();
    let peer = start_registry(&ctx, RegistryOptions::default());
    let spec = format!("type=registry,ref={}/cache/app:buildcache", peer.host);
    scenario(&ctx, &spec, "registry");

    // `cache du` counts runner B's step records; `cache prune` removes them with the blobs,
    // and the next build takes them from the registry again without running anything
    let root_b = ctx.tmp_dir("root-b");
    let du = |root: &Path| -> Value {
        serde_json::from_slice(
            &run_ok(
                Command::new(env!("CARGO_BIN_EXE_ocibuild"))
                    .arg("--root")
                    .arg(root)
                    .args(["cache", "du", "--json"]),
            )
            .stdout,
        )
        .unwrap()
    };
    assert!(du(&root_b)["dockerfile_steps"]["records"].as_u64().unwrap() >= 5);
    run_ok(
        Command::new(env!("CARGO_BIN_EXE_ocibuild"))
            .arg("--root")
            .arg(&root_b)
            .args(["cache", "prune"]),
    );
    assert_eq!(du(&root_b)["dockerfile_steps"]["records"], 0);
    let app_p = app(&ctx, "app-pruned", "deps v1\n");
    let from = vec!["--cache-from".to_string(), spec.clone()];
    let p = build(&root_b, &app_p, &from, &ctx.tmp_dir("out-pruned"));
    assert!(
        p.ran.is_empty(),
        "after cache prune, from the registry: {:?}",
        p.ran
    );
    // bit rot in the registry's storage: same length, other bytes
    let storage = peer.storage.clone();
    corruption(&ctx, &spec, "registry", &|digest: &str| {
        let hex = digest.trim_start_matches("sha256:");
        let p = storage.join(format!(
            "docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        ));
        let data = fs::read(&p).unwrap();
        fs::write(&p, flip(&data)).unwrap();
    });
}

const MOUNT_DOCKERFILE: &str = "ARG BASE
FROM ${BASE}
ARG EXPECT
COPY package-lock.json src.txt /app/
RUN --mount=type=cache,target=/cache,id=tools \\
    if [ \"$EXPECT\" = warm ]; then test -s /cache/seen; else od -An -N8 -tx8 /dev/urandom > /cache/seen; fi; \\
    cp /cache/seen /app/seen
";

/// A Dockerfile app whose RUN step needs its cache mount warm when `EXPECT=warm`.
fn mount_app(ctx: &TestContext, name: &str, lock: &str, src: &str) -> PathBuf {
    let d = ctx.tmp_dir(name);
    fs::write(d.join("Dockerfile"), MOUNT_DOCKERFILE).unwrap();
    fs::write(d.join("package-lock.json"), lock).unwrap();
    fs::write(d.join("src.txt"), src).unwrap();
    d
}

/// The zero-config Go app, copied so it can be edited.
fn go_app(ctx: &TestContext, name: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/apps/go-hello");
    let d = ctx.tmp_dir(name);
    for e in fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            fs::copy(e.path(), d.join(e.file_name())).unwrap();
        }
    }
    d
}

/// A zero-config build (no Dockerfile): the Debian package cache is shared, the store is not.
fn zc_build(root: &Path, app: &Path, args: &[String], out: &Path) -> Built {
    build_in(root, app, args, out, &cache(), &[])
}

/// A build (zero-config, or a Dockerfile in `app`) with the package cache `pkgs`; `env` is set
/// for the process.
fn build_in(
    root: &Path,
    app: &Path,
    args: &[String],
    out: &Path,
    pkgs: &Path,
    env: &[(&str, &str)],
) -> Built {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ocibuild"));
    c.arg("--root")
        .arg(root)
        .args(["--progress", "json", "build"])
        .arg("--cache-dir")
        .arg(pkgs)
        .args(args)
        .arg("--output")
        .arg(format!("oci:{}:t", out.display()))
        .arg(app)
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("AZURE_STORAGE_CONNECTION_STRING")
        .env("AZURE_STORAGE_ACCOUNT", DEV_ACCOUNT)
        .env("AZURE_STORAGE_KEY", DEV_ACCOUNT_KEY)
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    parse(&run(&mut c))
}

/// Cache mounts (a Dockerfile's `RUN --mount=type=cache`, the Go builder's GOCACHE) travel
/// through the shared cache keyed by the lockfiles, and zero-config builds are shared whole.
#[test]
fn cache_mounts_and_zero_config_builds_are_shared_through_azure_blob() {
    let ctx = TestContext::new();
    let az: Azurite = start_azurite(&ctx);
    let spec = format!(
        "type=azblob,account_url={},container=ci-mounts",
        az.account_url
    );
    let to = |extra: &[&str]| -> Vec<String> {
        let mut v = vec!["--cache-to".to_string(), spec.clone()];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let from = |extra: &[&str]| -> Vec<String> {
        let mut v = vec!["--cache-from".to_string(), spec.clone()];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };

    // Dockerfile: runner A fills the mount and exports it
    let a_app = mount_app(&ctx, "m-a", "{\"v\":1}", "a\n");
    let a = build(
        &ctx.tmp_dir("m-root-a"),
        &a_app,
        &to(&["--build-arg", "EXPECT=cold"]),
        &ctx.tmp_dir("m-out-a"),
    );
    assert!(
        a.stderr.contains("cache mount id=tools: exported"),
        "the cache mount is not exported\n{}",
        a.stderr
    );
    // runner B: empty store, another source file (the RUN step runs), same lockfile: the
    // step finds the mount warm (it fails otherwise)
    let b_app = mount_app(&ctx, "m-b", "{\"v\":1}", "b\n");
    let b = build(
        &ctx.tmp_dir("m-root-b"),
        &b_app,
        &from(&["--build-arg", "EXPECT=warm"]),
        &ctx.tmp_dir("m-out-b"),
    );
    assert_eq!(b.ran.len(), 2, "runner B runs COPY and RUN: {:?}", b.ran);
    assert!(
        b.stderr.contains("cache mount id=tools: imported"),
        "{}",
        b.stderr
    );
    // runner C: a new lockfile is another key: the mount starts empty
    let c_app = mount_app(&ctx, "m-c", "{\"v\":2}", "b\n");
    let c = build(
        &ctx.tmp_dir("m-root-c"),
        &c_app,
        &from(&["--build-arg", "EXPECT=cold"]),
        &ctx.tmp_dir("m-out-c"),
    );
    assert!(
        !c.stderr.contains("cache mount id=tools: imported"),
        "a changed lockfile must not import the old mount\n{}",
        c.stderr
    );

    // zero-config Go app: runner A builds and exports the build and GOCACHE/GOMODCACHE
    let go_a = go_app(&ctx, "go-a");
    let ga = zc_build(
        &ctx.tmp_dir("go-root-a"),
        &go_a,
        &to(&[]),
        &ctx.tmp_dir("go-out-a"),
    );
    assert!(!ga.ran.is_empty(), "runner A builds: {}", ga.stderr);
    assert!(
        ga.stderr.contains("go-build: exported"),
        "GOCACHE is not exported\n{}",
        ga.stderr
    );
    // runner B: empty store, same source: nothing runs, the same image
    let go_b = go_app(&ctx, "go-b");
    let gb = zc_build(
        &ctx.tmp_dir("go-root-b"),
        &go_b,
        &from(&[]),
        &ctx.tmp_dir("go-out-b"),
    );
    assert!(
        gb.ran.is_empty(),
        "runner B ran steps: {:?}\n{}",
        gb.ran,
        gb.stderr
    );
    assert_eq!(gb.digest, ga.digest, "{}", gb.stderr);
    // runner C: empty store, main.go edited: the build runs with GOCACHE from runner A
    let go_c = go_app(&ctx, "go-c");
    let main = fs::read_to_string(go_c.join("main.go")).unwrap();
    fs::write(
        go_c.join("main.go"),
        main.replace("hello from go", "hello from runner C"),
    )
    .unwrap();
    let root_c = ctx.tmp_dir("go-root-c");
    let gc = zc_build(&root_c, &go_c, &from(&[]), &ctx.tmp_dir("go-out-c"));
    assert!(!gc.ran.is_empty(), "runner C must build: {}", gc.stderr);
    assert!(
        gc.stderr.contains("go-build: imported"),
        "GOCACHE is not imported\n{}",
        gc.stderr
    );
    assert_ne!(gc.digest, ga.digest);
    // another edit on runner C: --explain-cache names the file
    fs::write(
        go_c.join("main.go"),
        main.replace("hello from go", "hello again"),
    )
    .unwrap();
    let gc2 = zc_build(
        &root_c,
        &go_c,
        &["--explain-cache".to_string()],
        &ctx.tmp_dir("go-out-c2"),
    );
    assert!(
        gc2.stderr.contains("main.go (changed)"),
        "--explain-cache does not name main.go\n{}",
        gc2.stderr
    );
    // `cache warm` of the app on an empty store, then a plain build: nothing runs
    let root_w = ctx.tmp_dir("go-root-w");
    let mut w = Command::new(env!("CARGO_BIN_EXE_ocibuild"));
    w.arg("--root")
        .arg(&root_w)
        .args(["--progress", "plain", "cache", "warm", "--from", &spec])
        .arg("--cache-dir")
        .arg(cache())
        .arg(&go_a)
        .env("AZURE_STORAGE_ACCOUNT", DEV_ACCOUNT)
        .env("AZURE_STORAGE_KEY", DEV_ACCOUNT_KEY);
    let wo = run_ok(&mut w);
    assert!(
        String::from_utf8_lossy(&wo.stderr).contains("a build will run nothing"),
        "{}",
        String::from_utf8_lossy(&wo.stderr)
    );
    let gw = zc_build(&root_w, &go_a, &[], &ctx.tmp_dir("go-out-w"));
    assert!(gw.ran.is_empty(), "after cache warm: {:?}", gw.ran);
    assert_eq!(gw.digest, ga.digest);
}

/// A copy of the testdata app `name` (its files and directories).
fn testdata_app(ctx: &TestContext, name: &str, dir: &str) -> PathBuf {
    fn copy(from: &Path, to: &Path) {
        for e in fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                fs::create_dir(to.join(e.file_name())).unwrap();
                copy(&e.path(), &to.join(e.file_name()));
            } else if t.is_file() {
                fs::copy(e.path(), to.join(e.file_name())).unwrap();
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/apps")
        .join(name);
    let d = ctx.tmp_dir(dir);
    copy(&src, &d);
    d
}

/// Issue 20: a zero-config build runs on the one executor, whose dependency step reads only
/// the lockfiles. A warm runner exports (the default mode), a cold runner (an empty store) builds
/// the app with one source file edited: the dependency step is cached (its record says so, from
/// the shared cache), the source copy runs, and the image is the edited app's.
#[test]
fn a_cold_runner_reuses_the_dependency_step_after_a_source_edit() {
    let ctx = TestContext::new();
    let shared = ctx.tmp_dir("deps-shared");
    // Node: npm ci --omit=dev from package-lock.json; Python: pip install -r requirements.txt;
    // Java: copy-dependencies from pom.xml (then process-classes over the whole source)
    let py = ctx.tmp_dir("py-src");
    fs::write(py.join("requirements.txt"), "six==1.16.0\n").unwrap();
    fs::write(
        py.join("main.py"),
        "import six\nprint('hello from python', six.__version__)\n",
    )
    .unwrap();
    // (language, app, file edited, what the dependency step's label holds, its record's id
    // when the name does not tell it)
    for (lang, app, edit, deps_step, deps_id) in [
        (
            "node",
            "node-deps",
            "index.js",
            "RUN --mount=type=cache,id=npm",
            None,
        ),
        ("python", "", "main.py", "python3 -m pip", None),
        // the step's label is cut before its argv: the dependency step is the stage's 4th
        // (COPY pom.xml, mkdir, WORKDIR, then it)
        (
            "java",
            "java-maven",
            "src/main/java/com/example/App.java",
            "[build 4/6] RUN",
            Some("build/5"),
        ),
    ] {
        let copy = |dir: &str| -> PathBuf {
            if app.is_empty() {
                let d = ctx.tmp_dir(dir);
                for e in fs::read_dir(&py).unwrap() {
                    let e = e.unwrap();
                    fs::copy(e.path(), d.join(e.file_name())).unwrap();
                }
                d
            } else {
                testdata_app(&ctx, app, dir)
            }
        };
        let warm_app = copy(&format!("{lang}-warm"));
        let meta_w = ctx.path(format!("{lang}-warm.json"));
        let warm = zc_build(
            &ctx.tmp_dir(format!("{lang}-root-warm")),
            &warm_app,
            &[
                "--cache-to".to_string(),
                format!("type=local,dest={}/{lang}", shared.display()),
                "--metadata-file".to_string(),
                meta_w.display().to_string(),
            ],
            &ctx.tmp_dir(format!("{lang}-out-warm")),
        );
        assert!(
            warm.ran.iter().any(|s| s.contains(deps_step)),
            "{lang}: the warm runner runs the dependency step: {:?}\n{}",
            warm.ran,
            warm.stderr
        );
        let cold_app = copy(&format!("{lang}-cold"));
        let text = fs::read_to_string(cold_app.join(edit)).unwrap();
        let edited = match lang {
            "python" => format!("{text}\n# edited on the cold runner\n"),
            // a comment leaves javac's classes as they were: change what the app prints
            "java" => text.replace("\"java \"", "\"edited, java \""),
            _ => format!("{text}\n// edited on the cold runner\n"),
        };
        assert_ne!(edited, text, "{lang}: the edit changes the file");
        fs::write(cold_app.join(edit), edited).unwrap();
        let meta = ctx.path(format!("{lang}-cold.json"));
        let cold = zc_build(
            &ctx.tmp_dir(format!("{lang}-root-cold")),
            &cold_app,
            &[
                "--cache-from".to_string(),
                format!("type=local,src={}/{lang}", shared.display()),
                "--metadata-file".to_string(),
                meta.display().to_string(),
            ],
            &ctx.tmp_dir(format!("{lang}-out-cold")),
        );
        assert!(
            !cold.ran.iter().any(|s| s.contains(deps_step)),
            "{lang}: the cold runner ran the dependency step after a source edit: {:?}\n{}",
            cold.ran,
            cold.stderr
        );
        assert!(
            cold.ran.iter().any(|s| s.contains("COPY --exclude")),
            "{lang}: the edited source is copied: {:?}",
            cold.ran
        );
        assert_ne!(cold.digest, warm.digest, "{lang}: the edit is in the image");
        let m: Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
        let deps: Vec<&Value> = m["ocibuild.steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| match deps_id {
                Some(id) => s["id"] == id,
                None => s["name"].as_str().unwrap_or("").contains(deps_step),
            })
            .collect();
        assert_eq!(deps.len(), 1, "{lang}: {m:#}");
        assert!(
            deps[0]["name"].as_str().unwrap_or("").starts_with("RUN "),
            "{lang}: {m:#}"
        );
        assert_eq!(deps[0]["ran"], false, "{lang}: {m:#}");
        assert!(deps[0]["cached_from"].is_string(), "{lang}: {m:#}");
        assert_eq!(m["ocibuild.frontend"]["kind"], "zero_config");
    }
}

/// A two-stage app shaped like a compiled one: the build stage writes its artifact and, beside
/// it, files that differ on every run (a tool's log with a random id, as compilers' and package
/// managers' caches do); the production stage copies only the artifact.
const MULTISTAGE_DOCKERFILE: &str = "ARG BASE
FROM ${BASE} AS build
WORKDIR /src
COPY app.sh VERSION ./
RUN mkdir -p /root/.cache/tool out \\
 && echo \"build $(od -An -N8 -tx8 /dev/urandom)\" > /root/.cache/tool/last-run.log \\
 && { echo '#!/bin/sh'; echo \"echo app $(cat VERSION)\"; cat app.sh; } > out/app \\
 && chmod 755 out/app

FROM ${BASE} AS production
WORKDIR /app
COPY --from=build /src/out/ ./
USER 65534
CMD [\"/app/app\"]
";

fn multistage_app(ctx: &TestContext, name: &str) -> PathBuf {
    let d = ctx.tmp_dir(name);
    fs::write(d.join("Dockerfile"), MULTISTAGE_DOCKERFILE).unwrap();
    fs::write(d.join("VERSION"), "1.4.2\n").unwrap();
    fs::write(d.join("app.sh"), "echo serving on :8080\n").unwrap();
    d
}

/// Issue 23 item 2: step keys depend only on content. For each backend and each mode, a warm
/// runner exports, a cold runner (another empty store, another copy of the app) imports:
/// with `mode=min` the production stage's steps hit although the build stage ran again (and
/// wrote other random bytes beside the artifact); with `mode=max` nothing runs. Both give the
/// warm runner's digest.
#[test]
fn cold_runners_hit_the_final_stage_in_min_and_max_mode_on_every_backend() {
    let ctx = TestContext::new();
    let az: Azurite = start_azurite(&ctx);
    let peer = start_registry(&ctx, RegistryOptions::default());
    let local = ctx.tmp_dir("shared-local-cache");
    for mode in ["min", "max"] {
        let backends: Vec<(&str, String, String)> = vec![
            (
                "local",
                format!("type=local,dest={}/{mode}", local.display()),
                format!("type=local,src={}/{mode}", local.display()),
            ),
            (
                "registry",
                format!("type=registry,ref={}/keys/app:{mode}", peer.host),
                format!("type=registry,ref={}/keys/app:{mode}", peer.host),
            ),
            (
                "azblob",
                format!(
                    "type=azblob,account_url={},container=keys,name={mode}",
                    az.account_url
                ),
                format!(
                    "type=azblob,account_url={},container=keys,name={mode}",
                    az.account_url
                ),
            ),
        ];
        for (what, to, from) in backends {
            let tag = format!("{what}-{mode}");
            let warm = build(
                &ctx.tmp_dir(format!("k-root-warm-{tag}")),
                &multistage_app(&ctx, &format!("k-app-warm-{tag}")),
                &["--cache-to".to_string(), format!("{to},mode={mode}")],
                &ctx.tmp_dir(format!("k-out-warm-{tag}")),
            );
            assert_eq!(warm.ran.len(), 3, "{tag}: the warm runner runs every step");
            let cold = build(
                &ctx.tmp_dir(format!("k-root-cold-{tag}")),
                &multistage_app(&ctx, &format!("k-app-cold-{tag}")),
                &[
                    "--cache-from".to_string(),
                    from.clone(),
                    "--explain-cache".to_string(),
                ],
                &ctx.tmp_dir(format!("k-out-cold-{tag}")),
            );
            let ran = names(&cold.ran);
            if mode == "min" {
                // the build stage was not exported: it runs; the production stage hits
                assert!(
                    !ran.iter().any(|n| n.contains("--from=build")),
                    "{tag}: the production stage's COPY --from=build missed on a cold runner: {ran:?}\n{}",
                    cold.stderr
                );
                assert_eq!(ran.len(), 2, "{tag}: only the build stage runs: {ran:?}");
                assert_eq!(ran[0], "COPY app.sh VERSION ./", "{tag}");
                assert!(ran[1].starts_with("RUN mkdir"), "{tag}: {ran:?}");
            } else {
                assert!(
                    ran.is_empty(),
                    "{tag}: with mode=max nothing runs: {ran:?}\n{}",
                    cold.stderr
                );
            }
            assert_eq!(
                cold.digest, warm.digest,
                "{tag}: the cold runner's image differs\n{}",
                cold.stderr
            );
        }
    }
}

/// `ocibuild --root ROOT cache ARGS --json`, parsed.
fn cache_json(root: &Path, args: &[&str]) -> Value {
    let out = run_ok(
        Command::new(env!("CARGO_BIN_EXE_ocibuild"))
            .arg("--root")
            .arg(root)
            .arg("cache")
            .args(args)
            .arg("--json"),
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every path under `root`, relative, sorted.
fn tree(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .flatten()
        .map(|e| e.path().strip_prefix(root).unwrap().display().to_string())
        .collect();
    v.sort();
    v
}

/// Issue 23 item 1: after a zero-config build and a Dockerfile build, `cache du` accounts for
/// every byte under the root (within 5% of `du -sb`), by kind; `prune --older-than` takes each
/// kind by last use; a root some process holds is kept; a flagless prune leaves the skeleton.
#[test]
fn cache_du_accounts_for_every_byte_and_prune_covers_every_kind() {
    let ctx = TestContext::new();
    let root = ctx.tmp_dir("du-root");
    // the package cache lives in the root (the default), seeded with links to the shared one
    let pkgs = root.join("debian");
    for e in walkdir::WalkDir::new(cache())
        .min_depth(1)
        .into_iter()
        .flatten()
    {
        let rel = e.path().strip_prefix(cache()).unwrap();
        if e.file_type().is_dir() {
            fs::create_dir_all(pkgs.join(rel)).unwrap();
        } else if e.file_type().is_file() {
            // other tests share this cache: a temp file they rename away may vanish meanwhile
            match fs::hard_link(e.path(), pkgs.join(rel)) {
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                r => r.unwrap(),
            }
        }
    }
    let mut zc = Command::new(env!("CARGO_BIN_EXE_ocibuild"));
    zc.arg("--root")
        .arg(&root)
        .args(["--progress", "plain", "build"])
        .arg("--output")
        .arg(format!("oci:{}:t", ctx.tmp_dir("du-out-zc").display()))
        .arg(go_app(&ctx, "du-go"))
        .env_remove("SOURCE_DATE_EPOCH")
        .stdin(Stdio::null());
    run_ok(&mut zc);
    build(
        &root,
        &app(&ctx, "du-df", "deps du\n"),
        &[],
        &ctx.tmp_dir("du-out-df"),
    );
    // a build killed while it assembled a root left this behind
    let rootfs = root.join("engine/rootfs");
    fs::create_dir_all(rootfs.join(".rootfs-killed/rootfs/usr")).unwrap();
    fs::write(
        rootfs.join(".rootfs-killed/rootfs/usr/half"),
        vec![1u8; 100_000],
    )
    .unwrap();

    let du = cache_json(&root, &["du"]);
    let total = du["total_bytes"].as_u64().unwrap();
    let out = run_ok(Command::new("du").arg("-sb").arg(&root));
    let real: u64 = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let off = (total as f64 - real as f64).abs() / real as f64;
    assert!(
        off <= 0.05,
        "cache du says {total} B, du -sb {real} B\n{du:#}"
    );
    for k in [
        "blobs",
        "toolchain_roots",
        "package_cache",
        "cache_mounts",
        "step_changes",
        "step_records",
    ] {
        assert!(du["kinds"][k]["bytes"].as_u64().unwrap() > 0, "{k}: {du:#}");
    }
    let sum: u64 = du["kinds"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v["bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(sum, total, "{du:#}");

    // the roots were last used two days ago, except the one a build holds now
    let roots: Vec<PathBuf> = fs::read_dir(&rootfs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("complete").is_file())
        .collect();
    assert!(
        roots.len() >= 2,
        "a toolchain root and an extracted base: {roots:?}"
    );
    let two_days = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 86_400);
    for r in &roots {
        fs::File::options()
            .write(true)
            .open(r.join("complete"))
            .unwrap()
            .set_modified(two_days)
            .unwrap();
    }
    let held = roots[0].clone();
    let holder = fs::File::open(held.join("complete")).unwrap();
    holder.lock_shared().unwrap();
    let p = cache_json(&root, &["prune", "--older-than", "1d"]);
    assert!(
        held.join("rootfs").is_dir(),
        "a held root was removed\n{p:#}"
    );
    assert_eq!(p["held"], serde_json::json!([held]), "{p:#}");
    for r in &roots[1..] {
        assert!(
            !r.exists(),
            "{} was not used for 2 days\n{p:#}",
            r.display()
        );
    }
    assert!(!rootfs.join(".rootfs-killed").exists(), "{p:#}");
    assert!(
        p["removed"]["toolchain_roots"]["items"].as_u64().unwrap() >= 2,
        "{p:#}"
    );
    assert_eq!(
        p["removed"]["blobs"]["items"], 0,
        "blobs were used today\n{p:#}"
    );
    assert_eq!(p["removed"]["step_records"]["items"], 0, "{p:#}");
    let du2 = cache_json(&root, &["du"]);
    assert_eq!(du2["kinds"]["toolchain_roots"]["items"], 1, "{du2:#}");

    // flagless: everything but the held root, then (released) only the skeleton
    let p = cache_json(&root, &["prune"]);
    assert!(held.join("rootfs").is_dir(), "{p:#}");
    drop(holder);
    let p = cache_json(&root, &["prune"]);
    assert_eq!(
        tree(&root),
        ["blobs", "blobs/sha256", "layers", "store.lock", "tmp"],
        "{p:#}"
    );
    assert!(p["removed_bytes"].as_u64().unwrap() > 0);
    let du3 = cache_json(&root, &["du"]);
    for (k, v) in du3["kinds"].as_object().unwrap() {
        assert_eq!(v["items"], 0, "{k}: {du3:#}");
    }
}

/// A base built once per test process with `ocibuild base build --profile PROFILE`, as an
/// oci-archive (reused by later runs of the tests).
fn profile_base(profile: &str) -> PathBuf {
    static BASES: std::sync::Mutex<Vec<(String, PathBuf)>> = std::sync::Mutex::new(Vec::new());
    let mut bases = BASES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, f)) = bases.iter().find(|(p, _)| p == profile) {
        return f.clone();
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cache-test-bases");
    fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{}.tar", profile.replace(':', "-")));
    if !file.is_file() {
        run_ok(
            Command::new(env!("CARGO_BIN_EXE_ocibuild"))
                .arg("--root")
                .arg(dir.join("store"))
                .args(["--progress", "plain", "base", "build", "--profile", profile])
                .arg("--cache-dir")
                .arg(cache())
                .arg("--output")
                .arg(format!("oci-archive:{}", file.display())),
        );
    }
    bases.push((profile.to_string(), file.clone()));
    file
}

/// A Node service's Dockerfile as CI pipelines have it: a build stage, a `production` stage
/// that takes only the built files, and a `test` stage after it that `--target production`
/// leaves out. The bases are `ocibuild base build` archives (ARG defaults, so the command line
/// stays the pipeline's own).
fn node_service(ctx: &TestContext, name: &str) -> PathBuf {
    let d = ctx.tmp_dir(name);
    let dockerfile = format!(
        "ARG BUILDER=oci-archive:{builder}
ARG RUNTIME=oci-archive:{runtime}

FROM ${{BUILDER}} AS build
ENV npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
WORKDIR /app
COPY package.json ./
COPY scripts/ ./scripts/
COPY src/ ./src/
RUN npm run build

FROM ${{RUNTIME}} AS production
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/dist ./dist
COPY --from=build /app/package.json ./
EXPOSE 3000
CMD [\"dist/server.js\"]

FROM build AS test
RUN npm test
",
        builder = profile_base("node-build").display(),
        runtime = profile_base("nodejs:nonroot").display(),
    );
    fs::write(d.join("Dockerfile"), dockerfile).unwrap();
    fs::write(
        d.join("package.json"),
        r#"{
  "name": "orders-api",
  "version": "2.3.0",
  "private": true,
  "scripts": {
    "build": "node scripts/build.js",
    "test": "node dist/server.js --self-test"
  }
}
"#,
    )
    .unwrap();
    fs::create_dir_all(d.join("scripts")).unwrap();
    fs::write(
        d.join("scripts/build.js"),
        r#"const fs = require('fs');
const path = require('path');
const pkg = require('../package.json');
fs.mkdirSync('dist', { recursive: true });
for (const f of fs.readdirSync('src')) {
  const body = fs.readFileSync(path.join('src', f), 'utf8');
  fs.writeFileSync(path.join('dist', f), `// ${pkg.name} ${pkg.version}\n${body}`);
}
"#,
    )
    .unwrap();
    fs::create_dir_all(d.join("src")).unwrap();
    fs::write(
        d.join("src/server.js"),
        r#"const http = require('http');
const { total } = require('./orders');
if (process.argv.includes('--self-test')) {
  if (total([{ qty: 2, price: 3 }]) !== 6) process.exit(1);
  process.exit(0);
}
http.createServer((req, res) => res.end(JSON.stringify({ total: total([]) })))
  .listen(process.env.PORT || 3000);
"#,
    )
    .unwrap();
    fs::write(
        d.join("src/orders.js"),
        "exports.total = (items) => items.reduce((s, i) => s + i.qty * i.price, 0);\n",
    )
    .unwrap();
    d
}

/// Issue 23 item 15: the seed's Jenkins command line, verbatim, on two runners with empty
/// stores against docker-registry: the first pushes the image with its inline cache
/// (`BUILDKIT_INLINE_CACHE=1`), the second (`--cache-from REG/app:latest`, an unchanged
/// context) runs nothing and pushes the same image.
#[test]
fn the_seed_pipelines_inline_cache_command_line_runs_nothing_on_a_second_runner() {
    let ctx = TestContext::new();
    let peer = start_registry(&ctx, RegistryOptions::default());
    let reg = &peer.host;
    let seed = |root: &Path, app: &Path, meta: &Path| -> (Value, String) {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ocibuild"));
        c.current_dir(app)
            .arg("--root")
            .arg(root)
            .args(["--progress", "plain", "build"])
            .args(["--cache-from", &format!("{reg}/app:latest")])
            .args(["--build-arg", "BUILDKIT_INLINE_CACHE=1"])
            .args(["--target", "production"])
            .args(["-t", &format!("{reg}/app:1")])
            .args(["-t", &format!("{reg}/app:latest")])
            .arg("--push")
            .arg("--metadata-file")
            .arg(meta)
            .arg(".")
            .env_remove("SOURCE_DATE_EPOCH")
            .stdin(Stdio::null());
        let out = run_ok(&mut c);
        let m: Value = serde_json::from_slice(&fs::read(meta).unwrap()).unwrap();
        (m, String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let meta = ctx.tmp_dir("seed-meta");
    // runner A: the registry has no app:latest yet; every step of build and production runs
    let (a, a_err) = seed(
        &ctx.tmp_dir("seed-root-a"),
        &node_service(&ctx, "seed-app-a"),
        &meta.join("a.json"),
    );
    let ran_a = a["ocibuild.steps.ran"]
        .as_u64()
        .unwrap_or_else(|| panic!("no ocibuild.steps.ran in the metadata file: {a:#}\n{a_err}"));
    assert!(ran_a >= 5, "runner A runs the steps: {a:#}\n{a_err}");
    assert!(
        !a_err.contains("npm test"),
        "--target production builds the test stage: {a_err}"
    );
    // runner B: empty store, a fresh checkout of the same commit
    let (b, b_err) = seed(
        &ctx.tmp_dir("seed-root-b"),
        &node_service(&ctx, "seed-app-b"),
        &meta.join("b.json"),
    );
    assert_eq!(
        b["ocibuild.steps.ran"], 0,
        "runner B ran steps with the inline cache of {reg}/app:latest: {b:#}\n{b_err}"
    );
    assert!(b["ocibuild.steps.cached"].as_u64().unwrap() >= 5, "{b:#}");
    assert_eq!(
        b["containerimage.digest"], a["containerimage.digest"],
        "runner B pushed another image\n{b_err}"
    );
}

/// The notes a build printed (`--progress json`).
fn notes(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == "note")
        .filter_map(|v| v["message"].as_str().map(str::to_string))
        .collect()
}

/// Bytes of the regular files under `dir` that nothing outside it shares (hard links into the
/// shared package cache aside): what a build wrote into its store.
fn own_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            if m.is_dir() {
                todo.push(e.path());
            } else if m.is_file() && m.nlink() == 1 {
                total += m.len();
            }
        }
    }
    total
}

/// Issue 20: native bases are keyed by their lock. Runner A (the shared store) builds the
/// zero-config Node app with `--cache-to` a registry; runner B, each time on a fresh `--root`,
/// builds it with `--cache-from`:
/// - unchanged: nothing runs, no base is assembled (the runtime base's layers come from the
///   cache), the same digest;
/// - one source file edited: the dependency step (npm ci) is cached from the registry, the
///   runtime base is fetched, not assembled, and the image is the one runner A makes of the
///   edited app.
#[test]
fn a_cold_runner_keys_native_bases_by_their_lock_and_assembles_no_runtime_base() {
    let ctx = TestContext::new();
    let peer = start_registry(&ctx, RegistryOptions::default());
    let spec = format!("type=registry,ref={}/cache/node-deps:buildcache", peer.host);
    let shared = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ocibuild-build-tests-store");
    let app = testdata_app(&ctx, "node-deps", "lock-a");
    // --refresh: runner A locks from freshly fetched indexes, which runner B then reuses (a lock
    // in the shared store may be older than the package cache's indexes)
    let a = zc_build(
        &shared,
        &app,
        &[
            "--refresh".to_string(),
            "--cache-to".to_string(),
            spec.clone(),
        ],
        &ctx.tmp_dir("lock-out-a"),
    );
    // what the engine says when it assembles a base from its packages: an image (`(assembled,
    // trixie amd64, N packages)`) or a toolchain root as a directory
    let assembled = |n: &String| n.contains("(assembled") || n.contains("assembled from packages");
    let runtime_assembled = |n: &String| n.starts_with("ocibuild:nodejs") && assembled(n);
    let from = vec!["--cache-from".to_string(), spec.clone()];

    // unchanged, fresh store: nothing runs, nothing is assembled
    let root = ctx.tmp_dir("lock-root-b1");
    let b1 = zc_build(&root, &app, &from, &ctx.tmp_dir("lock-out-b1"));
    let seen = notes(&b1.stderr);
    assert!(b1.ran.is_empty(), "{:?}\n{}", b1.ran, b1.stderr);
    assert_eq!(b1.digest, a.digest);
    assert!(
        !seen.iter().any(assembled),
        "a base was assembled: {seen:#?}"
    );
    assert!(
        seen.iter()
            .any(|n| n.starts_with("ocibuild:nodejs") && n.contains("fetched from cache registry")),
        "the runtime base's layers come from the cache: {seen:#?}"
    );
    // no root was made: neither assembled nor extracted
    assert_eq!(
        fs::read_dir(root.join("engine/rootfs"))
            .map(|d| d.count())
            .unwrap_or(0),
        0
    );
    let wrote = own_bytes(&root);
    eprintln!(
        "runner B, unchanged app: {:.1} MB in its store",
        wrote as f64 / 1e6
    );
    assert!(wrote < 100_000_000, "{wrote} bytes");
    fs::remove_dir_all(&root).unwrap();

    // one source file edited, fresh store
    let edited = testdata_app(&ctx, "node-deps", "lock-edited");
    let js = fs::read_to_string(edited.join("index.js")).unwrap();
    fs::write(
        edited.join("index.js"),
        format!("{js}\n// edited on runner B\n"),
    )
    .unwrap();
    let root = ctx.tmp_dir("lock-root-b2");
    let meta = ctx.path("lock-b2.json");
    let mut args = from.clone();
    args.extend(["--metadata-file".to_string(), meta.display().to_string()]);
    let b2 = zc_build(&root, &edited, &args, &ctx.tmp_dir("lock-out-b2"));
    let seen = notes(&b2.stderr);
    assert!(
        !seen.iter().any(runtime_assembled),
        "the runtime base was assembled: {seen:#?}"
    );
    // The source copy onto the build root and the app's copy onto the runtime base ran
    // against skeletons made from the listings in the bases' records: neither base was
    // assembled from packages, and no root was assembled or extracted.
    assert!(
        !seen.iter().any(assembled),
        "a base was assembled: {seen:#?}"
    );
    for base in ["ocibuild:node-build", "ocibuild:nodejs"] {
        assert!(
            seen.iter().any(|n| n.starts_with(base)
                && n.contains("a copy runs on it: its skeleton made from the cache's listing")),
            "{base}: {seen:#?}"
        );
    }
    // the copies from the build stage read it through its layers: no stage root is made
    assert!(
        !seen.iter().any(|n| n.contains("root materialised")),
        "{seen:#?}"
    );
    let roots: Vec<String> = fs::read_dir(root.join("engine/rootfs"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        roots.iter().all(|r| r.starts_with("skeleton-")),
        "only skeletons in the store's roots: {roots:?}"
    );
    assert!(
        seen.iter()
            .any(|n| n.starts_with("ocibuild:nodejs") && n.contains("fetched from cache registry")),
        "{seen:#?}"
    );
    let m: Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
    let deps: Vec<&Value> = m["ocibuild.steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"].as_str().unwrap_or("").contains("npm ci"))
        .collect();
    assert_eq!(deps.len(), 1, "{m:#}");
    assert_eq!(deps[0]["ran"], false, "{m:#}");
    assert_eq!(deps[0]["cached_from"], "registry", "{m:#}");
    assert!(
        b2.ran.iter().any(|s| s.contains("COPY --exclude")),
        "the edited source is copied: {:?}",
        b2.ran
    );
    let wrote = own_bytes(&root);
    eprintln!(
        "runner B, edited app: {:.1} MB in its store",
        wrote as f64 / 1e6
    );
    fs::remove_dir_all(&root).unwrap();
    // the same image as a runner that has every base assembled
    let a2 = zc_build(&shared, &edited, &[], &ctx.tmp_dir("lock-out-a2"));
    assert_eq!(b2.digest, a2.digest);
    assert_ne!(b2.digest, a.digest);
}

/// `cp -al FROM TO` for a tree other processes write meanwhile (the shared package cache:
/// other tests' builds fill temp directories and rename them into place): directories made,
/// files and symlinks hard-linked, an entry that vanished under the walk skipped.
fn link_tree(from: &Path, to: &Path) {
    let gone = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
    for entry in walkdir::WalkDir::new(from) {
        let e = match entry {
            Ok(e) => e,
            Err(err) if err.io_error().is_some_and(gone) => continue,
            Err(err) => panic!("walking {}: {err}", from.display()),
        };
        let dest = to.join(e.path().strip_prefix(from).unwrap());
        let res = if e.file_type().is_dir() {
            fs::create_dir_all(&dest)
        } else {
            fs::hard_link(e.path(), &dest)
        };
        match res {
            Ok(()) => {}
            Err(err) if gone(&err) => {}
            Err(err) => panic!(
                "linking {} to {}: {err}",
                e.path().display(),
                dest.display()
            ),
        }
    }
}

/// A build stage on a toolchain root (a native base whose image is never part of the output).
const RECORD_DOCKERFILE: &str = "FROM ocibuild:build-base AS build
COPY src.txt /src/
RUN mkdir /out && sort /src/src.txt > /out/src && ls /usr/bin | wc -l > /out/tools
FROM ocibuild:static:nonroot
COPY --from=build /out/ /out/
";

/// Issue 20 (cold Go builds): a toolchain base assembled on this machine leaves its record
/// (manifest and config) in the package cache (`--cache-dir`/`base-records`). A build with a
/// fresh `--root` and that package cache then names the toolchain by the record and runs on
/// the root hard-linked from the unpacked packages: none of the toolchain's layers is written,
/// compressed or hashed, and the image is the same. A corrupt record is a note and a miss: the
/// base is assembled, the image is the same again. The toolchain here is `build-base` under a
/// Dockerfile build stage (the path a zero-config Go build takes, `ocibuild:build-base+golang-go`,
/// is the same native-base code; build-bench measures the Go case): the test assembles it twice,
/// and the Go toolchain's 300 MB made it one of the suite's costliest.
#[test]
fn a_fresh_store_names_its_toolchain_by_the_package_cache_s_record_and_writes_no_toolchain_layer() {
    let ctx = TestContext::new();
    // a private package cache: the shared one's files hard-linked (no download), its records
    // left out so the first build assembles the toolchain's image
    let pkgs = ctx.path("pkgs");
    link_tree(&cache(), &pkgs);
    let records = pkgs.join("base-records");
    if records.exists() {
        fs::remove_dir_all(&records).unwrap();
    }
    let app = ctx.tmp_dir("app");
    fs::write(app.join("Dockerfile"), RECORD_DOCKERFILE).unwrap();
    fs::write(app.join("src.txt"), "a source\n").unwrap();
    let zc = |root: &Path, out: &Path| build_in(root, &app, &[], out, &pkgs, &[]);
    let toolchain =
        |n: &String| n.starts_with("ocibuild:build-base") && !n.starts_with("ocibuild:build-base+");

    // 1. assembled: the image is built, its record kept
    let a = zc(&ctx.tmp_dir("root-a"), &ctx.tmp_dir("out-a"));
    let seen = notes(&a.stderr);
    assert!(
        seen.iter()
            .any(|n| toolchain(n) && n.contains("(assembled")),
        "{seen:#?}"
    );
    let index: Vec<PathBuf> = fs::read_dir(records.join("index"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(index.len(), 1, "one record: {index:?}");
    let record: Value = serde_json::from_slice(&fs::read(&index[0]).unwrap()).unwrap();
    assert_eq!(record["kind"], "native-base");
    let manifest_hex = record["manifest"]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let manifest: Value = serde_json::from_slice(
        &fs::read(records.join("blobs/sha256").join(&manifest_hex)).unwrap(),
    )
    .unwrap();
    let layers: Vec<String> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            l["digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:")
                .to_string()
        })
        .collect();
    assert!(!layers.is_empty(), "{manifest:#}");

    // 2. a fresh store: named by the record, no toolchain layer written, the same image
    let root_b = ctx.tmp_dir("root-b");
    let b = zc(&root_b, &ctx.tmp_dir("out-b"));
    let seen = notes(&b.stderr);
    assert!(
        seen.iter()
            .any(|n| toolchain(n) && n.contains("manifest from this machine's package cache")),
        "{seen:#?}"
    );
    assert!(
        !seen
            .iter()
            .any(|n| toolchain(n) && n.contains("(assembled")),
        "{seen:#?}"
    );
    for l in &layers {
        assert!(
            !root_b.join("blobs/sha256").join(l).exists(),
            "toolchain layer {l} was written"
        );
    }
    assert_eq!(b.digest, a.digest);

    // 3. a corrupt record (its manifest blob flipped): a miss, assembled, the same image
    let blob = records.join("blobs/sha256").join(&manifest_hex);
    let data = fs::read(&blob).unwrap();
    fs::write(&blob, flip(&data)).unwrap();
    let c = zc(&ctx.tmp_dir("root-c"), &ctx.tmp_dir("out-c"));
    let seen = notes(&c.stderr);
    assert!(
        seen.iter().any(|n| n.contains("treated as a miss")),
        "{seen:#?}"
    );
    assert!(
        seen.iter()
            .any(|n| toolchain(n) && n.contains("(assembled")),
        "{seen:#?}"
    );
    assert_eq!(c.digest, a.digest);
}

/// A build stage on a native toolchain root whose one RUN records a fingerprint of that root:
/// every path under `/usr` and `/etc` with its type, mode, owner, size and link target, every
/// file's and link's mtime, and every file's contents (the sandbox's own `/etc/hosts`,
/// `/etc/hostname` and `/etc/resolv.conf` aside). The image's digest says which tree the step
/// ran on.
const ROOT_DOCKERFILE: &str = "FROM ocibuild:build-base AS build
COPY src.txt /src/
RUN mkdir /out && cat /src/src.txt > /out/src \\
 && find /usr /etc \\( -path /etc/hosts -o -path /etc/hostname -o -path /etc/resolv.conf \\) -prune -o -printf '%y %m %U %G %s %l %p\\n' | sort | sha256sum > /out/tree \\
 && find /usr /etc \\( -type f -o -type l \\) ! -path /etc/hosts ! -path /etc/hostname ! -path /etc/resolv.conf -printf '%T@ %p\\n' | sort | sha256sum >> /out/tree \\
 && find /usr /etc -type f ! -path /etc/hosts ! -path /etc/hostname ! -path /etc/resolv.conf -print0 | sort -z | xargs -0 sha256sum | sha256sum >> /out/tree
FROM ocibuild:static
COPY --from=build /out/ /out/
";

/// A Dockerfile build with the shared Debian package cache; `env` is set for the process.
fn root_build(root: &Path, app: &Path, args: &[String], out: &Path, env: &[(&str, &str)]) -> Built {
    build_in(root, app, args, out, &cache(), env)
}

/// Issue 20: a cold runner fetches the ready toolchain root a step runs on from the remote
/// cache instead of assembling it from packages. Runner A (the shared store) exports with the
/// default mode; it also builds the edited context itself, the digest to match. Runner B (a
/// fresh store, the unpacked-package cache switched off as on a runner without one) builds the
/// edited context with `--cache-from`: the root is fetched from the cache (the note says so),
/// lands as the lock's root in its store, and the image, which fingerprints the whole root, is
/// runner A's. With the packages unpacked here, runner D links them instead (cheaper than
/// fetching the tree); a fresh store without the cache assembles the same image. The root blob corrupted in the cache: runner C notes it, assembles the
/// root from packages and gets the same image.
#[test]
fn a_cold_runner_fetches_the_ready_toolchain_root_and_falls_back_when_it_is_corrupt() {
    let ctx = TestContext::new();
    let shared = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ocibuild-build-tests-store");
    let cache_dir = ctx.tmp_dir("root-cache");
    let app = ctx.tmp_dir("root-app");
    fs::write(app.join("Dockerfile"), ROOT_DOCKERFILE).unwrap();
    fs::write(app.join("src.txt"), "v1\n").unwrap();
    root_build(
        &shared,
        &app,
        &[
            "--cache-to".to_string(),
            format!("type=local,dest={}", cache_dir.display()),
        ],
        &ctx.tmp_dir("root-out-a"),
        &[],
    );
    // the record of the root blob, and its blob
    let record = fs::read_dir(cache_dir.join("index"))
        .unwrap()
        .flatten()
        .filter_map(|e| serde_json::from_slice::<Value>(&fs::read(e.path()).unwrap()).ok())
        .find(|v| v["kind"] == "toolchain-root")
        .expect("a toolchain-root record in the cache");
    assert!(
        record["reference"]
            .as_str()
            .unwrap()
            .starts_with("ocibuild:build-base"),
        "{record:#}"
    );
    let blob = cache_dir.join("blobs/sha256").join(
        record["blob"]["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:"),
    );
    assert!(blob.is_file(), "{record:#}");

    fs::write(app.join("src.txt"), "v2, edited\n").unwrap();
    let warm = root_build(&shared, &app, &[], &ctx.tmp_dir("root-out-a2"), &[]);
    let from = vec![
        "--cache-from".to_string(),
        format!("type=local,src={}", cache_dir.display()),
    ];
    let no_unpacked = [("OCIBUILD_UNPACKED_CACHE", "0")];

    let root_b = ctx.tmp_dir("root-b");
    let b = root_build(
        &root_b,
        &app,
        &from,
        &ctx.tmp_dir("root-out-b"),
        &no_unpacked,
    );
    let seen = notes(&b.stderr);
    assert!(
        seen.iter().any(|n| n.starts_with("ocibuild:build-base")
            && n.contains("a step runs on it: root fetched from cache local-dir")),
        "{seen:#?}"
    );
    assert!(
        !seen.iter().any(|n| n.contains("assembled from packages")),
        "{seen:#?}"
    );
    assert!(
        b.ran.iter().any(|s| s.contains("RUN mkdir /out")),
        "{:?}",
        b.ran
    );
    assert_eq!(
        b.digest, warm.digest,
        "the fetched root is the assembled one"
    );
    let roots: Vec<String> = fs::read_dir(root_b.join("engine/rootfs"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        roots.iter().any(|r| r.starts_with("lock-")),
        "the lock's root is in the store: {roots:?}"
    );

    // a fresh store without the cache assembles the root from packages (unpacking them into
    // the package cache): the same image
    let e = root_build(
        &ctx.tmp_dir("root-e"),
        &app,
        &[],
        &ctx.tmp_dir("root-out-e"),
        &[],
    );
    assert_eq!(e.digest, warm.digest);
    // the packages unpacked here: linking them costs less than fetching the tree
    let d = root_build(
        &ctx.tmp_dir("root-d"),
        &app,
        &from,
        &ctx.tmp_dir("root-out-d"),
        &[],
    );
    let seen = notes(&d.stderr);
    assert!(
        seen.iter().any(|n| n.starts_with("ocibuild:build-base")
            && n.contains("a step runs on it: root assembled from packages")),
        "{seen:#?}"
    );
    assert_eq!(d.digest, warm.digest);

    // corrupted in the cache: detected, noted, assembled instead, the same image
    fs::write(&blob, flip(&fs::read(&blob).unwrap())).unwrap();
    let c = root_build(
        &ctx.tmp_dir("root-c"),
        &app,
        &from,
        &ctx.tmp_dir("root-out-c"),
        &no_unpacked,
    );
    let seen = notes(&c.stderr);
    assert!(
        seen.iter().any(|n| n.starts_with("ocibuild:build-base")
            && n.contains("the cache's ready root is unusable")
            && n.contains("corrupt")),
        "{seen:#?}"
    );
    assert!(
        seen.iter().any(|n| n.starts_with("ocibuild:build-base")
            && n.contains("a step runs on it: root assembled from packages")),
        "{seen:#?}"
    );
    assert_eq!(c.digest, warm.digest);
}
