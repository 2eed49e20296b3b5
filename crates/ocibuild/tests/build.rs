//! `ocibuild build DIR` end to end: zero-config builds of the testdata apps with toolchain roots
//! from the machine's Debian mirror, run under runc, checked for what a distroless image must
//! not hold, and rebuilt for identical digests. The Debian package cache is shared between
//! tests; each test has its own content store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use ocibuild_testkit::{
    TestContext, run_fail, run_ok_stdout, runc_http_get, runc_run, umoci_unpack,
};
use serde_json::Value;

fn cache() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("ocibuild-build-tests-store")
        .join("debian");
    fs::create_dir_all(&d).unwrap();
    d
}

fn app(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/apps")
        .join(name)
}

/// One content store for every build test (bases and extracted toolchain roots are built once
/// and shared, as on a CI runner; the store is safe for concurrent processes). Each test still
/// writes its outputs under its own temp dir.
fn shared_store(_ctx: &TestContext) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ocibuild-build-tests-store")
}

fn ocibuild(ctx: &TestContext) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ocibuild"));
    c.arg("--root")
        .arg(shared_store(ctx))
        .arg("--progress")
        .arg("plain");
    c.env_remove("SOURCE_DATE_EPOCH");
    c
}

/// `ocibuild build DIR ARGS --output oci:LAYOUT:TAG` → the printed digest.
fn build(ctx: &TestContext, dir: &Path, args: &[&str], layout: &Path, tag: &str) -> String {
    let mut c = ocibuild(ctx);
    c.arg("build")
        .arg(dir)
        .args(args)
        .arg("--cache-dir")
        .arg(cache())
        .arg("--output")
        .arg(format!("oci:{}:{tag}", layout.display()));
    let out = run_ok_stdout(&mut c);
    let d = out.lines().last().unwrap_or_default().to_string();
    assert!(d.starts_with("sha256:"), "{out}");
    d
}

fn config(layout: &Path, tag: &str) -> Value {
    ocibuild_testkit::skopeo_inspect_config(&format!("oci:{}:{tag}", layout.display()))
}

/// What no distroless app image may hold: shells, package managers, compilers, sources.
fn assert_distroless(rootfs: &Path, also_absent: &[&str]) {
    ocibuild_testkit::assert_no_build_tools(rootfs, also_absent);
}

fn run_image(
    ctx: &TestContext,
    layout: &Path,
    tag: &str,
    args: Option<&[&str]>,
) -> (PathBuf, String) {
    let bundle = ctx.path(format!("bundle-{tag}"));
    let rootfs = if bundle.join("rootfs").is_dir() {
        bundle.join("rootfs")
    } else {
        umoci_unpack(layout, tag, &bundle)
    };
    let (rc, out, err) = runc_run(&bundle, args);
    assert_eq!(rc, 0, "{tag}: {out}{err}");
    (rootfs, out)
}

#[test]
fn go_app_builds_runs_as_nonroot_and_rebuilds_identically() {
    let ctx = TestContext::new();
    let layout = ctx.path("layout");
    let meta = ctx.path("meta.json");
    let a = build(
        &ctx,
        &app("go-hello"),
        &["--explain", "--metadata-file", meta.to_str().unwrap()],
        &layout,
        "a",
    );
    ocibuild_testkit::oci_image_tool_validate(&layout, "a");
    let cfg = config(&layout, "a");
    assert_eq!(cfg["config"]["User"], "65532:65532", "{cfg}");
    assert_eq!(cfg["config"]["WorkingDir"], "/app", "{cfg}");
    let (rootfs, out) = run_image(&ctx, &layout, "a", None);
    assert_eq!(out.trim(), "hello from go");
    assert_distroless(&rootfs, &["usr/lib/go", "src", "app/main.go", "app/go.mod"]);
    assert!(ocibuild_testkit::is_static_elf(&rootfs.join("app/hello")).unwrap());
    let (_, out) = run_image(&ctx, &layout, "a", Some(&["/app/hello", "ca"]));
    assert_eq!(
        out.trim().lines().last(),
        Some("-----BEGIN CERTIFICATE-----")
    );

    // The second build (warm caches) gives the same digest; so do two builds of a copy of the
    // source (outside git, so without the revision labels) whose files have other mtimes.
    // (--no-cache: really rebuild, not take the cached image)
    let a2 = build(&ctx, &app("go-hello"), &["--no-cache"], &layout, "a2");
    assert_eq!(a, a2, "same source, same digest");
    let copy = ctx.tmp_dir("copy");
    for f in ["go.mod", "main.go"] {
        fs::copy(app("go-hello").join(f), copy.join(f)).unwrap();
    }
    let b = build(&ctx, &copy, &[], &layout, "b");
    for f in ["go.mod", "main.go"] {
        let t = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        fs::File::options()
            .write(true)
            .open(copy.join(f))
            .unwrap()
            .set_modified(t)
            .unwrap();
    }
    let c = build(&ctx, &copy, &["--no-cache"], &layout, "c");
    assert_eq!(b, c, "mtimes do not change the digest");
    let m: Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
    assert_eq!(m["containerimage.digest"], a.as_str());
    assert_eq!(m["ocibuild.lang"], "go");

    // ≥ 50% smaller than the naive single-stage image (toolchain root + sources + outputs)
    let meta2 = ctx.path("meta2.json");
    build(
        &ctx,
        &app("go-hello"),
        &[
            "--compare-naive",
            "--metadata-file",
            meta2.to_str().unwrap(),
        ],
        &layout,
        "n",
    );
    let m: Value = serde_json::from_slice(&fs::read(&meta2).unwrap()).unwrap();
    let (ours, naive) = (
        m["ocibuild.size"].as_u64().unwrap(),
        m["ocibuild.naive_size"].as_u64().unwrap(),
    );
    eprintln!(
        "go app: {:.2} MB vs naive {:.1} MB ({:.1}% smaller)",
        ours as f64 / 1e6,
        naive as f64 / 1e6,
        100.0 - 100.0 * ours as f64 / naive as f64
    );
    assert!(ours * 2 < naive, "{m}");
}

#[test]
fn go_main_package_under_cmd_and_a_newer_go_from_backports() {
    let ctx = TestContext::new();
    let layout = ctx.path("layout");
    build(&ctx, &app("go-cmd"), &[], &layout, "cmd");
    let (_, out) = run_image(&ctx, &layout, "cmd", None);
    assert!(!out.trim().is_empty());
    let plan = run_ok_stdout(
        ocibuild(&ctx)
            .args(["build", "--dry-run"])
            .arg(app("go-new")),
    );
    let plan: Value = serde_json::from_str(&plan).unwrap();
    assert_eq!(plan["toolchain"]["backports"], true, "{plan}");
    build(&ctx, &app("go-new"), &[], &layout, "new");
    run_image(&ctx, &layout, "new", None);
    // bookworm has no Go 1.26 even in backports: a clear error naming what it has
    let err = run_fail(
        ocibuild(&ctx)
            .args(["build", "--dry-run", "--distro", "bookworm"])
            .arg(app("go-new")),
    );
    assert!(err.contains("1.23") && err.contains("--distro"), "{err}");
}

#[test]
fn go_cross_compiles_for_arm64() {
    let ctx = TestContext::new();
    let layout = ctx.path("layout");
    build(
        &ctx,
        &app("go-hello"),
        &["--platform", "linux/arm64"],
        &layout,
        "arm",
    );
    let cfg = config(&layout, "arm");
    assert_eq!(cfg["architecture"], "arm64");
    let rootfs = umoci_unpack(&layout, "arm", &ctx.path("bundle"));
    let elf = fs::read(rootfs.join("app/hello")).unwrap();
    assert_eq!(u16::from_le_bytes([elf[18], elf[19]]), 183, "aarch64 ELF");
}

#[test]
fn node_app_runs_with_production_layers_only() {
    let ctx = TestContext::new();
    let layout = ctx.path("layout");
    let meta = ctx.path("meta.json");
    build(
        &ctx,
        &app("node-app"),
        &["--compare-naive", "--metadata-file", meta.to_str().unwrap()],
        &layout,
        "node",
    );
    let m: Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
    let (ours, naive) = (
        m["ocibuild.size"].as_u64().unwrap(),
        m["ocibuild.naive_size"].as_u64().unwrap(),
    );
    eprintln!(
        "node app: {:.1} MB vs naive {:.1} MB ({:.1}% smaller)",
        ours as f64 / 1e6,
        naive as f64 / 1e6,
        100.0 - 100.0 * ours as f64 / naive as f64
    );
    // Debian's npm adds little to nodejs: the node runtime itself is most of both images, so the
    // final image is only ~45% smaller than the naive one (against `node:20` it would be far more).
    assert!(ours < naive, "{m}");
    let cfg = config(&layout, "node");
    assert_eq!(cfg["config"]["User"], "65532:65532");
    let (rootfs, out) = run_image(&ctx, &layout, "node", None);
    assert!(out.contains("hello from node"), "{out}");
    assert_distroless(&rootfs, &["app/test", "app/NOTES.md", "app/.dockerignore"]);
    assert!(
        rootfs.join("app/README.md").is_file(),
        ".dockerignore's ! re-include"
    );
    assert!(
        rootfs.join("app/dist/banner.txt").is_file(),
        "npm run build ran"
    );
    assert!(rootfs.join("app/package.json").is_file());
}

#[test]
fn python_app_runs_from_its_venv() {
    let ctx = TestContext::new();
    let layout = ctx.path("layout");
    build(&ctx, &app("python-app"), &[], &layout, "py");
    let (rootfs, out) = run_image(&ctx, &layout, "py", None);
    assert!(out.contains("hello from python"), "{out}");
    assert_distroless(&rootfs, &[]);
    assert!(rootfs.join("app/.venv/bin/python3").exists());
    assert_no_pip(&rootfs);
    build(&ctx, &app("python-pyproject"), &[], &layout, "pp");
    let (rootfs, out) = run_image(&ctx, &layout, "pp", None);
    assert!(!out.trim().is_empty());
    // the project was built with setuptools and wheel: neither is in the venv
    assert_no_pip(&rootfs);
}

/// No package manager in the venv: no pip scripts, no pip, setuptools or wheel packages.
fn assert_no_pip(rootfs: &Path) {
    let venv = rootfs.join("app/.venv");
    for e in fs::read_dir(venv.join("bin")).unwrap().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        assert!(
            !n.starts_with("pip"),
            "app/.venv/bin/{n} must not be in the image"
        );
    }
    let lib = fs::read_dir(venv.join("lib"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    for e in fs::read_dir(lib.join("site-packages")).unwrap().flatten() {
        let n = e.file_name().to_string_lossy().to_ascii_lowercase();
        for banned in [
            "pip",
            "setuptools",
            "wheel",
            "_distutils_hack",
            "pkg_resources",
        ] {
            assert!(
                n != banned && !n.starts_with(&format!("{banned}-")),
                "{} must not be in the image",
                e.path().display()
            );
        }
    }
}

#[test]
fn java_sources_without_a_build_tool_become_a_runnable_jar() {
    let ctx = TestContext::new();
    let layout = ctx.path("layout");
    build(&ctx, &app("java-plain"), &[], &layout, "java");
    let (rootfs, out) = run_image(&ctx, &layout, "java", None);
    assert!(out.contains("hello from java"), "{out}");
    assert_distroless(&rootfs, &[]);
}

#[test]
fn downloads_go_through_the_host_ca_and_network_none_stops_them() {
    // A real dependency from the Python package index, fetched by pip inside the sandbox with
    // the host's CA bundle (this network intercepts TLS with a CA only the host trusts).
    let ctx = TestContext::new();
    let dir = ctx.tmp_dir("pyreq");
    fs::write(dir.join("requirements.txt"), "six==1.16.0\n").unwrap();
    fs::write(
        dir.join("main.py"),
        "import six\nprint('six', six.__version__)\n",
    )
    .unwrap();
    let layout = ctx.path("layout");
    build(&ctx, &dir, &[], &layout, "six");
    let (_, out) = run_image(&ctx, &layout, "six", None);
    assert_eq!(out.trim(), "six 1.16.0");
    // and one from the npm registry, through npm ci's own TLS stack
    build(&ctx, &app("node-deps"), &[], &layout, "npm");
    let (rootfs, out) = run_image(&ctx, &layout, "npm", None);
    assert_eq!(out.trim(), "is-number true false");
    assert!(
        rootfs
            .join("app/node_modules/is-number/package.json")
            .is_file()
    );
    let err = run_fail(
        ocibuild(&ctx)
            .arg("build")
            .arg(&dir)
            .args(["--network", "none", "--no-cache", "--cache-dir"])
            .arg(cache())
            .arg("--output")
            .arg(format!("oci:{}:x", layout.display())),
    );
    assert!(err.contains("--network none"), "{err}");
}

#[test]
fn clear_errors_for_what_cannot_be_built() {
    let ctx = TestContext::new();
    let empty = ctx.tmp_dir("empty");
    let err = run_fail(ocibuild(&ctx).arg("build").arg(&empty));
    assert!(
        err.contains("go.mod") && err.contains("package.json") && err.contains("pom.xml"),
        "{err}"
    );
    let df = ctx.tmp_dir("df");
    // A Dockerfile in the context makes it a Dockerfile build: its errors name file:line.
    fs::write(df.join("Dockerfile"), "FROM scratch\nFROBNICATE x\n").unwrap();
    let err = run_fail(ocibuild(&ctx).arg("build").arg(&df));
    assert!(err.contains("Dockerfile:2"), "{err}");
}

#[test]
fn java_maven_app_builds_offline_from_debians_repository() {
    // The pom asks for Debian's Maven repository: the plugins and commons-lang3 come from
    // Debian packages in the build root, Maven runs --offline in a step without the network.
    let ctx = TestContext::new();
    let plan = run_ok_stdout(
        ocibuild(&ctx)
            .args(["build", "--dry-run"])
            .arg(app("java-maven")),
    );
    let plan: Value = serde_json::from_str(&plan).unwrap();
    // the dependency jars from pom.xml alone (a source edit reuses the step), then the classes
    let names: Vec<&str> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["mvn-dependencies", "mvn-compile"], "{plan}");
    assert_eq!(plan["steps"][0]["inputs"][0], "pom.xml", "{plan}");
    for step in plan["steps"].as_array().unwrap() {
        assert_eq!(step["network"], false, "{plan}");
        let argv: Vec<&str> = step["argv"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert!(argv.contains(&"--offline"), "{argv:?}");
        assert!(
            argv.contains(&"-Dmaven.repo.local=/usr/share/maven-repo"),
            "{argv:?}"
        );
    }
    let packages = plan["toolchain"]["packages"].as_array().unwrap();
    for p in ["libmaven-dependency-plugin-java", "libcommons-lang3-java"] {
        assert!(packages.iter().any(|x| x == p), "{p}: {plan}");
    }
    // no ~/.m2; the one cache mount holds the JVM's class-data-sharing archive of Maven
    let mounts = plan["cache_mounts"].as_array().unwrap();
    assert_eq!(mounts.len(), 1, "{plan}");
    assert_eq!(mounts[0]["name"], "jvm", "{plan}");

    let layout = ctx.path("layout");
    build(&ctx, &app("java-maven"), &[], &layout, "mvn");
    let cfg = config(&layout, "mvn");
    assert_eq!(cfg["config"]["User"], "65532:65532", "{cfg}");
    let (rootfs, out) = run_image(&ctx, &layout, "mvn", None);
    let lines: Vec<&str> = out.trim().lines().collect();
    assert_eq!(
        lines,
        [
            "hello from java-maven",
            "Commons-lang3 says offline",
            "java 21"
        ],
        "{out}"
    );
    assert!(
        rootfs
            .join("app/libs/commons-lang3-3.17.0.jar")
            .symlink_metadata()
            .unwrap()
            .is_file(),
        "the dependency jar is a file in its own layer"
    );
    assert!(rootfs.join("app/classes/app.properties").is_file());
    assert!(rootfs.join("app/classes/com/example/App.class").is_file());
    assert_distroless(
        &rootfs,
        &[
            "usr/share/maven-repo",
            "usr/share/maven",
            "usr/bin/mvn",
            "app/pom.xml",
            "app/src",
        ],
    );
}

#[test]
fn java_multi_module_reactor_builds_the_server_module_and_serves() {
    // api (interfaces, DTOs) <- core (logic, commons-lang3) <- app (the HTTP server): the
    // reactor builds app and what it needs offline from Debian's repository; the image holds
    // app's classes, core's dependency and the sibling modules as snapshot jars.
    let ctx = TestContext::new();
    let layout = ctx.path("layout");
    let meta = ctx.path("meta.json");
    let a = build(
        &ctx,
        &app("java-multimodule"),
        &["--metadata-file", meta.to_str().unwrap()],
        &layout,
        "shop",
    );
    let m: Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
    let names: Vec<&str> = m["ocibuild.layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["dependency-jars", "snapshot-jars", "resources", "classes"],
        "{m}"
    );
    let bundle = ctx.path("bundle");
    let rootfs = umoci_unpack(&layout, "shop", &bundle);
    for jar in [
        "app/libs/shop-api-1.0.0-SNAPSHOT.jar",
        "app/libs/shop-core-1.0.0-SNAPSHOT.jar",
        "app/libs/commons-lang3-3.17.0.jar",
        "app/classes/shop.properties",
        "app/classes/com/example/app/ShopServer.class",
    ] {
        assert!(rootfs.join(jar).is_file(), "{jar} in the image");
    }
    // only the chosen module's classes are loose; the others come as jars
    assert!(!rootfs.join("app/classes/com/example/core").exists());
    assert!(!rootfs.join("app/classes/com/example/api").exists());
    assert!(!rootfs.join("app/libs/shop-app-1.0.0-SNAPSHOT.jar").exists());
    assert_distroless(
        &rootfs,
        &[
            "usr/share/maven-repo",
            "usr/share/maven",
            "usr/bin/mvn",
            "app/pom.xml",
            "app/src",
            "app/app",
        ],
    );
    let body = runc_http_get(&bundle, &[], 8080, "/quote?item=Pear&qty=3");
    assert_eq!(body.trim(), "java-multimodule shop: 3 x Pear = 1.80");
    // mvn keeps Maven's classes in a class-data-sharing archive in the store's `jvm` cache mount
    // (JDK 21: -XX:+AutoCreateSharedArchive). A corrupt one is refused by the JVM's checksum
    // (-XX:+VerifySharedSpaces) with a warning in the step's output, and mvn runs without it.
    let find_jsa = || {
        fs::read_dir(shared_store(&ctx).join("engine/cache"))
            .ok()?
            .map(|e| e.unwrap().path().join("maven-jdk21.jsa"))
            .find(|p| p.is_file())
    };
    // (None: this store's first build above was cached and ran no mvn, and the archive is
    // gone; the rebuild below writes it)
    let corrupted = find_jsa().map(|jsa| {
        let good = fs::read(&jsa).unwrap();
        let mut bytes = good.clone();
        let mid = bytes.len() / 2;
        for b in &mut bytes[mid..mid + 64] {
            *b ^= 0xff;
        }
        let tmp = ctx.path("corrupt.jsa");
        fs::write(&tmp, &bytes).unwrap();
        fs::rename(&tmp, &jsa).unwrap();
        (jsa, good, bytes)
    });
    // the module jars are rebuilt byte for byte (outputTimestamp in the root pom), with the
    // archive unusable too
    let mut c = Command::new(env!("CARGO_BIN_EXE_ocibuild"));
    c.arg("--root")
        .arg(shared_store(&ctx))
        .args(["--progress", "json", "build"])
        .arg(app("java-multimodule"))
        .args(["--no-cache", "--cache-dir"])
        .arg(cache())
        .arg("--output")
        .arg(format!("oci:{}:shop2", layout.display()));
    c.env_remove("SOURCE_DATE_EPOCH");
    let o = ocibuild_testkit::run_ok(&mut c);
    let out = String::from_utf8_lossy(&o.stdout);
    let b = out.lines().last().unwrap_or_default().to_string();
    assert_eq!(a, b);
    match corrupted {
        Some((jsa, good, bytes)) => {
            // (another test's mvn in this shared store may have rewritten it meanwhile)
            if fs::read(&jsa).is_ok_and(|now| now == bytes) {
                let err = String::from_utf8_lossy(&o.stderr);
                assert!(
                    err.lines().any(|l| l.contains("\"step-output\"")
                        && l.contains("Unable to use shared archive")),
                    "the JVM names the archive it refused: {err}"
                );
            } else {
                eprintln!(
                    "another build rewrote the archive meanwhile: its refusal is not checked"
                );
            }
            // the good archive back for the next build (the JVM does not rewrite a corrupt one)
            let tmp = ctx.path("good.jsa");
            fs::write(&tmp, &good).unwrap();
            fs::rename(&tmp, &jsa).unwrap();
        }
        None => assert!(
            find_jsa().is_some(),
            "mvn wrote its class-data-sharing archive into the jvm cache mount"
        ),
    }
}

#[test]
fn writable_directories_let_a_nonroot_app_write_beside_its_code() {
    // The app appends to instance/boots.log (shipped with it), creates instance/uploads/ and
    // writes /data/notes.db at start; `writable = ["instance", "/data"]` in its ocibuild.toml.
    use std::os::unix::fs::MetadataExt as _;
    let ctx = TestContext::new();
    let layout = ctx.path("layout");
    let meta = ctx.path("meta.json");
    let m = ["--metadata-file", meta.to_str().unwrap()];
    let a = build(&ctx, &app("python-instance"), &m, &layout, "notes");
    let v: Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
    let names: Vec<&str> = v["ocibuild.layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.last(), Some(&"writable"), "{v}");
    let bundle = ctx.path("bundle");
    let rootfs = umoci_unpack(&layout, "notes", &bundle);
    let owner = |p: &str| {
        let m = fs::symlink_metadata(rootfs.join(p)).unwrap();
        (m.uid(), m.gid())
    };
    for p in [
        "app/instance",
        "app/instance/boots.log",
        "app/instance/settings.ini",
        "data",
    ] {
        assert_eq!(owner(p), (65532, 65532), "{p}");
    }
    for p in ["app", "app/app.py", "usr"] {
        assert_eq!(owner(p), (0, 0), "{p} stays root's");
    }
    assert_distroless(&rootfs, &["usr/bin/pip"]);
    let body = runc_http_get(&bundle, &[], 8000, "/");
    assert_eq!(
        body.trim(),
        "python-instance notes: boot as uid 65532, 2 line(s) in boots.log, /data writable"
    );
    // the writable layer is reproducible like the others
    let b = build(
        &ctx,
        &app("python-instance"),
        &[&m[..], &["--no-cache"]].concat(),
        &layout,
        "notes2",
    );
    assert_eq!(a, b);
}

#[test]
fn unchanged_builds_come_from_the_cache_and_edits_rebuild() {
    let ctx = TestContext::new();
    let dir = ctx.tmp_dir("cached-app");
    fs::copy(app("go-hello").join("go.mod"), dir.join("go.mod")).unwrap();
    let main = fs::read_to_string(app("go-hello").join("main.go"))
        .unwrap()
        .replace("hello from go", "hello from the cache test");
    // The build tests share one store that outlives a run: a comment unique to this run keeps
    // the first build a miss.
    let main = format!("{main}\n// run {}\n", ctx.dir().display());
    fs::write(dir.join("main.go"), &main).unwrap();
    let layout = ctx.path("layout");
    let meta = ctx.path("meta.json");
    let m = ["--metadata-file", meta.to_str().unwrap()];
    let cached = || -> bool {
        let v: Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
        v["ocibuild.cached"].as_bool().unwrap()
    };
    let a = build(&ctx, &dir, &m, &layout, "a");
    assert!(!cached(), "first build runs its steps");
    let b = build(&ctx, &dir, &m, &layout, "b");
    assert!(cached(), "nothing changed: no step runs");
    assert_eq!(a, b);
    // mtimes are not content
    let t = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(2_000_000);
    fs::File::options()
        .write(true)
        .open(dir.join("main.go"))
        .unwrap()
        .set_modified(t)
        .unwrap();
    build(&ctx, &dir, &m, &layout, "c");
    assert!(cached(), "an mtime change is not a change");
    let d = build(
        &ctx,
        &dir,
        &[&m[..], &["--no-cache"]].concat(),
        &layout,
        "d",
    );
    assert!(!cached(), "--no-cache runs the steps");
    assert_eq!(a, d, "and gives the same image");
    fs::write(
        dir.join("main.go"),
        main.replace("cache test", "edited cache test"),
    )
    .unwrap();
    let e = build(&ctx, &dir, &m, &layout, "e");
    assert!(!cached(), "an edit rebuilds");
    assert_ne!(a, e);
    let (_, out) = run_image(&ctx, &layout, "e", None);
    assert_eq!(out.trim(), "hello from the edited cache test");
}
