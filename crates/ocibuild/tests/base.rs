//! `ocibuild base` end to end: build distroless bases from the machine's Debian mirror, validate
//! them, and run them under runc. The package cache is shared between tests (under cargo's test
//! tmpdir), each test has its own content store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use ocibuild_testkit::{TestContext, busybox_static, run_ok_stdout, runc_run, umoci_unpack};

fn cache() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("ocibuild-build-tests-store")
        .join("debian");
    fs::create_dir_all(&d).unwrap();
    d
}

fn ocibuild(ctx: &TestContext) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ocibuild"));
    c.arg("--root")
        .arg(ctx.root_dir())
        .arg("--progress")
        .arg("plain");
    c
}

/// `base build` → (manifest digest, compressed size).
fn build(ctx: &TestContext, args: &[&str], out: &str) -> (String, u64) {
    let mut c = ocibuild(ctx);
    c.args(["base", "build"])
        .args(args)
        .arg("--cache-dir")
        .arg(cache());
    c.arg("--output").arg(out);
    let out = ocibuild_testkit::run_ok(&mut c);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // stdout is the digest alone, so `$(ocibuild base build …)` captures it
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let digest = stdout.trim().to_string();
    assert!(digest.starts_with("sha256:"), "{stdout}");
    // never silent while it works: the unpacking is said (downloads too, when there are any:
    // `downloads_are_reported_with_bytes_and_time`)
    assert!(
        stderr.contains(": unpacking ") && stderr.contains(": unpack done in "),
        "{stderr}"
    );
    let size = stderr
        .lines()
        .find_map(|l| l.strip_prefix("compressed-size: "))
        .unwrap_or_else(|| panic!("no compressed-size line on stderr: {stderr}"))
        .parse()
        .unwrap();
    (digest, size)
}

fn validate(ctx: &TestContext, loc: &str) {
    let out = run_ok_stdout(ocibuild(ctx).args(["validate", loc]));
    assert!(out.starts_with("valid:"), "{out}");
}

/// Layer the host's static busybox at /usr/local/bin/busybox on top of `base`.
fn with_busybox(ctx: &TestContext, layout: &Path, tag: &str) -> String {
    let dir = ctx.tmp_dir("bb/usr/local/bin");
    fs::copy(busybox_static(), dir.join("busybox")).unwrap();
    let out_tag = format!("{tag}-bb");
    run_ok_stdout(
        ocibuild(ctx)
            .arg("assemble")
            .arg("--base")
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg("--layer")
            .arg(format!("{}:/", ctx.path("bb").display()))
            .arg("--output")
            .arg(format!("oci:{}:{out_tag}", layout.display())),
    );
    out_tag
}

fn report(name: &str, size: u64, theirs: &str) {
    eprintln!(
        "size {name}: {:.2} MB compressed (distroless: {theirs})",
        size as f64 / 1e6
    );
}

#[test]
fn static_nonroot_reads_the_ca_bundle_and_runs_as_65532() {
    let ctx = TestContext::new();
    let layout = ctx.path("layout");
    let (_, size) = build(
        &ctx,
        &["--profile", "static:nonroot"],
        &format!("oci:{}:static", layout.display()),
    );
    report("static", size, "≈2 MiB");
    assert!(size < 2 << 20, "no larger than distroless/static");
    validate(&ctx, &format!("oci:{}:static", layout.display()));
    let tag = with_busybox(&ctx, &layout, "static");
    let rootfs = umoci_unpack(&layout, &tag, &ctx.path("bundle"));
    assert!(rootfs.join("etc/ssl/certs/ca-certificates.crt").is_file());
    let (rc, out, err) = runc_run(
        &ctx.path("bundle"),
        Some(&[
            "/usr/local/bin/busybox",
            "sh",
            "-c",
            "B=/usr/local/bin/busybox; $B cat /etc/ssl/certs/ca-certificates.crt | $B head -1; $B id -u; $B pwd",
        ]),
    );
    assert_eq!(rc, 0, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        ["-----BEGIN CERTIFICATE-----", "65532", "/home/nonroot"],
        "{err}"
    );
}

#[test]
fn python3_imports_ssl_json_sqlite3() {
    let ctx = TestContext::new();
    let layout = ctx.path("layout");
    let (_, size) = build(
        &ctx,
        &["--profile", "python3"],
        &format!("oci:{}:py", layout.display()),
    );
    report("python3", size, "≈50 MB");
    assert!(size < 50_000_000);
    validate(&ctx, &format!("oci:{}:py", layout.display()));
    umoci_unpack(&layout, "py", &ctx.path("bundle"));
    let (rc, out, err) = runc_run(
        &ctx.path("bundle"),
        Some(&[
            "python3",
            "-c",
            "import ssl, json, sqlite3; ssl.create_default_context(); print('ok')",
        ]),
    );
    assert_eq!((rc, out.trim()), (0, "ok"), "{err}");
}

#[test]
fn debug_has_sh_and_lockfile_rebuilds_are_identical_offline() {
    let ctx = TestContext::new();
    let lock = ctx.path("ocibuild.lock");
    run_ok_stdout(
        ocibuild(&ctx)
            .args(["base", "lock", "--profile", "static:debug", "--cache-dir"])
            .arg(cache())
            .arg("--output")
            .arg(&lock),
    );
    let text = fs::read_to_string(&lock).unwrap();
    assert!(
        text.contains("\"busybox-static\"") && text.contains("\"sha256\""),
        "{text}"
    );
    let layout = ctx.path("layout");
    let lock_s = lock.display().to_string();
    let (a, _) = build(
        &ctx,
        &["--profile", "static", "--lock", &lock_s],
        &format!("oci:{}:a", layout.display()),
    );
    let (b, _) = build(
        &ctx,
        &["--profile", "static", "--lock", &lock_s, "--offline"],
        &format!("oci:{}:b", layout.display()),
    );
    assert_eq!(a, b, "two builds from one lockfile");
    validate(&ctx, &format!("oci:{}:b", layout.display()));
    umoci_unpack(&layout, "b", &ctx.path("bundle"));
    let (rc, out, err) = runc_run(
        &ctx.path("bundle"),
        Some(&["sh", "-c", "echo hi from $(id -u)"]),
    );
    assert_eq!((rc, out.trim()), (0, "hi from 0"), "{err}");
}

#[test]
fn list_shows_profiles() {
    let ctx = TestContext::new();
    let out = run_ok_stdout(ocibuild(&ctx).args(["base", "list"]));
    for p in ["static", "cc", "python3", "nodejs", "java"] {
        assert!(
            out.contains(&format!("\n{p}")) || out.starts_with(p),
            "{p} in {out}"
        );
    }
    assert!(out.contains("openjdk-21-jre-headless"));
}

#[test]
fn nodejs_and_java_runtimes_start() {
    let ctx = TestContext::new();
    let layout = ctx.path("layout");
    let cases: [(&str, &str, &[&str], &str); 2] = [
        (
            "nodejs",
            "≈55 MB",
            &["node", "-e", "console.log('node ' + process.version)"],
            "node v",
        ),
        (
            "java",
            "≈230 MB uncompressed",
            &["java", "-version"],
            "openjdk version",
        ),
    ];
    for (profile, theirs, args, want) in cases {
        let (_, size) = build(
            &ctx,
            &["--profile", profile],
            &format!("oci:{}:{profile}", layout.display()),
        );
        report(profile, size, theirs);
        validate(&ctx, &format!("oci:{}:{profile}", layout.display()));
        let bundle = ctx.path(format!("bundle-{profile}"));
        umoci_unpack(&layout, profile, &bundle);
        let (rc, out, err) = runc_run(&bundle, Some(args));
        assert_eq!(rc, 0, "{profile}: {out}{err}");
        assert!(
            out.contains(want) || err.contains(want),
            "{profile}: {out}{err}"
        );
        if profile == "nodejs" {
            // What the profiles drop (node never loads it) is gone, and what node does use
            // still works: ICU (Intl, TextDecoder of a legacy charset: no glibc gconv needed),
            // fetch (Debian's undici), and the TLS stack.
            let root = bundle.join("rootfs");
            for gone in [
                "usr/lib/x86_64-linux-gnu/gconv",
                "usr/lib/x86_64-linux-gnu/libicutu.so.76",
                "usr/share/nodejs/@types",
                "usr/share/gcc",
                // of /usr/share/nodejs only the files libnode loads its builtins from stay
                "usr/share/nodejs/acorn-loose",
                "usr/share/nodejs/undici/lib",
                "usr/share/nodejs/undici/index.js",
                "usr/share/nodejs/minimatch/dist/mjs",
            ] {
                assert!(!root.join(gone).exists(), "{gone} is dropped");
            }
            assert!(
                root.join("usr/share/nodejs/undici/undici-fetch.js")
                    .is_file()
            );
            assert!(
                root.join("usr/lib/x86_64-linux-gnu/libicui18n.so.76")
                    .exists()
            );
            let script = "const d = new TextDecoder('shift_jis').decode(new Uint8Array([0x82, 0xa0])); \
                console.log([new Intl.NumberFormat('de-DE').format(1234.5), d, typeof fetch, \
                require('crypto').createHash('sha256').update('').digest('hex').slice(0, 8)].join(' '))";
            let (rc, out, err) = runc_run(&bundle, Some(&["node", "-e", script]));
            assert_eq!(rc, 0, "node: {out}{err}");
            assert_eq!(out.trim(), "1.234,5 \u{3042} function e3b0c442", "{err}");
            // the shared builtins it keeps: undici (fetch), cjs-module-lexer (an ES module
            // importing CommonJS), and node:test loads
            std::fs::create_dir_all(root.join("opt/t")).unwrap();
            std::fs::write(root.join("opt/t/c.cjs"), "exports.x = 42;\n").unwrap();
            std::fs::write(
                root.join("opt/t/t.mjs"),
                "import { x } from './c.cjs';\nimport 'node:test';\n\
                 const t = await (await fetch('data:,undici')).text();\nconsole.log(t, x);\n",
            )
            .unwrap();
            let (rc, out, err) = runc_run(&bundle, Some(&["node", "/opt/t/t.mjs"]));
            assert_eq!(rc, 0, "node: {out}{err}");
            assert_eq!(out.trim(), "undici 42", "{err}");
        }
        if profile == "java" {
            // The JVM trust store is generated from the CA set (JKS, like ca-certificates-java)
            // and reachable through the JRE's lib/security/cacerts.
            let (rc, out, err) = runc_run(
                &bundle,
                Some(&["keytool", "-list", "-cacerts", "-storepass", "changeit"]),
            );
            assert_eq!(rc, 0, "keytool: {out}{err}");
            let n: usize = out
                .lines()
                .find_map(|l| {
                    l.strip_prefix("Your keystore contains ")
                        .and_then(|r| r.split(' ').next())
                        .and_then(|n| n.parse().ok())
                })
                .unwrap_or(0);
            assert!(
                n > 100,
                "the Java trust store holds {n} certificates: {out}{err}"
            );
        }
    }
}

/// `umoci raw unpack` a layout tag into a plain rootfs dir (what a build stage runs over).
fn rootfs(layout: &Path, tag: &str, dir: &Path) -> PathBuf {
    let umoci = ocibuild_testkit::require_tool("umoci", "umoci");
    run_ok_stdout(
        Command::new(umoci)
            .args(["raw", "unpack", "--rootless", "--image"])
            .arg(format!("{}:{tag}", layout.display()))
            .arg(dir),
    );
    dir.to_path_buf()
}

/// `ocibuild run` over a toolchain root with SRC:/src and OUT:/out mounted.
fn run_in(ctx: &TestContext, root: &Path, mounts: &[(&Path, &str)], script: &str) -> String {
    let mut c = ocibuild(ctx);
    c.arg("run").arg("--rootfs").arg(root);
    for (src, dest) in mounts {
        c.arg("--mount").arg(format!("{}:{dest}", src.display()));
    }
    c.args(["--env", "HOME=/root", "--", "sh", "-c", script]);
    run_ok_stdout(&mut c)
}

/// Put the files of `dir` at `/app` on top of `base`, as a build's final stage does.
fn app_on(ctx: &TestContext, base: &str, dir: &Path, out: &str) {
    run_ok_stdout(
        ocibuild(ctx)
            .arg("assemble")
            .arg("--base")
            .arg(base)
            .arg("--layer")
            .arg(format!("{}:/app", dir.display()))
            .arg("--output")
            .arg(out),
    );
}

/// Build `toolchain` and `runtime` into one layout, write `files` into a source dir, run `script`
/// in the toolchain root with the source at /src and an output dir at /out, put /out at /app on
/// the runtime, validate it and unpack it into `ctx/bundle`. Returns what the script printed.
fn build_in_root_onto(
    ctx: &TestContext,
    toolchain: &str,
    runtime: &str,
    files: &[(&str, &str)],
    script: &str,
) -> String {
    let layout = ctx.path("layout");
    let l = layout.display().to_string();
    build(ctx, &["--profile", toolchain], &format!("oci:{l}:tc"));
    build(ctx, &["--profile", runtime], &format!("oci:{l}:rt"));
    let root = rootfs(&layout, "tc", &ctx.path("tc-root"));
    let src = ctx.tmp_dir("src");
    for (name, text) in files {
        fs::write(src.join(name), text).unwrap();
    }
    let out = ctx.tmp_dir("out");
    let said = run_in(ctx, &root, &[(&src, "/src"), (&out, "/out")], script);
    app_on(ctx, &format!("oci:{l}:rt"), &out, &format!("oci:{l}:app"));
    validate(ctx, &format!("oci:{l}:app"));
    umoci_unpack(&layout, "app", &ctx.path("bundle"));
    said
}

#[test]
fn go_toolchain_root_builds_a_static_binary_that_runs_on_static_nonroot() {
    let ctx = TestContext::new();
    let said = build_in_root_onto(
        &ctx,
        "go",
        "static:nonroot",
        &[
            ("go.mod", "module example.com/hello\n\ngo 1.22\n"),
            (
                "main.go",
                "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n\t\"strings\"\n)\n\nfunc main() {\n\tb, err := os.ReadFile(\"/etc/ssl/certs/ca-certificates.crt\")\n\tif err != nil {\n\t\tpanic(err)\n\t}\n\tfmt.Printf(\"hello from go as %d, %d certs\\n\", os.Getuid(), strings.Count(string(b), \"BEGIN CERT\"))\n}\n",
            ),
        ],
        "cd /src && go version && CGO_ENABLED=0 GOCACHE=/tmp/gocache go build -trimpath -ldflags='-s -w' -o /out/hello .",
    );
    assert!(said.contains("go version go1."), "{said}");
    assert!(ocibuild_testkit::is_static_elf(&ctx.path("bundle/rootfs/app/hello")).unwrap());
    let (rc, out, err) = runc_run(&ctx.path("bundle"), Some(&["/app/hello"]));
    assert_eq!(rc, 0, "{out}{err}");
    let out = out.trim();
    let n: usize = out
        .strip_prefix("hello from go as 65532, ")
        .and_then(|r| r.strip_suffix(" certs"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected output {out:?} {err}"));
    assert!(n > 100, "{out}");
}

#[test]
fn java_build_root_compiles_a_jar_that_runs_on_the_java_runtime() {
    let ctx = TestContext::new();
    // javac and jar come from the JDK's update-alternatives links, mvn from maven's postinst.
    let said = build_in_root_onto(
        &ctx,
        "java-build",
        "java:nonroot",
        &[(
            "Hello.java",
            "public class Hello {\n  public static void main(String[] a) {\n    System.out.println(\"hello from java \" + Runtime.version().feature() + \" as \" + System.getProperty(\"user.name\"));\n  }\n}\n",
        )],
        "javac -version && mvn -v | head -1 && cd /tmp && javac -d classes /src/Hello.java && jar --create --file /out/hello.jar --main-class Hello -C classes .",
    );
    assert!(said.contains("javac 21"), "{said}");
    assert!(said.contains("Apache Maven 3"), "{said}");
    // the java profile's entrypoint is `java -jar`
    let (rc, out, err) = runc_run(
        &ctx.path("bundle"),
        Some(&["/usr/bin/java", "-jar", "/app/hello.jar"]),
    );
    assert_eq!(
        (rc, out.trim()),
        (0, "hello from java 21 as nonroot"),
        "{err}"
    );
}

#[test]
fn python_and_node_build_roots_have_their_tools() {
    let ctx = TestContext::new();
    let layout = ctx.path("layout");
    let l = layout.display().to_string();
    build(&ctx, &["--profile", "python-build"], &format!("oci:{l}:py"));
    let root = rootfs(&layout, "py", &ctx.path("py-root"));
    let said = run_in(
        &ctx,
        &root,
        &[],
        "python3 -m venv /tmp/v && /tmp/v/bin/pip --version && cc --version | head -1 && python3 -c 'import sysconfig; print(sysconfig.get_paths()[\"include\"])' && ls /usr/include/python3*/Python.h",
    );
    assert!(said.contains("pip "), "{said}");
    assert!(said.contains("cc (Debian"), "{said}");
    assert!(said.contains("Python.h"), "{said}");
    build(&ctx, &["--profile", "node-build"], &format!("oci:{l}:node"));
    let root = rootfs(&layout, "node", &ctx.path("node-root"));
    let said = run_in(&ctx, &root, &[], "node --version && npm --version");
    let lines: Vec<&str> = said.lines().collect();
    assert!(lines.len() == 2 && lines[0].starts_with("v20."), "{said}");
}

#[test]
fn backports_give_a_newer_go() {
    let ctx = TestContext::new();
    let lock = ctx.path("go.lock");
    let out = run_ok_stdout(
        ocibuild(&ctx)
            .args([
                "base",
                "lock",
                "--profile",
                "build-base",
                "--backports",
                "--packages",
                "golang-1.26-go",
                "--cache-dir",
            ])
            .arg(cache())
            .arg("--output")
            .arg(&lock),
    );
    assert!(out.contains("go.lock"));
    let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(&lock).unwrap()).unwrap();
    let pkgs: Vec<&serde_json::Value> = v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| l["packages"].as_array().unwrap())
        .collect();
    let go = pkgs
        .iter()
        .find(|p| p["name"] == "golang-1.26-go")
        .expect("golang-1.26-go locked");
    assert_eq!(go["suite"], "trixie-backports");
    // everything else the release has stays on the release (apt's backports priority 100)
    let bash = pkgs.iter().find(|p| p["name"] == "bash").unwrap();
    assert_ne!(bash["suite"], "trixie-backports");
    // without --backports the package does not exist
    let err = ocibuild_testkit::run_fail(
        ocibuild(&ctx)
            .args([
                "base",
                "lock",
                "--profile",
                "build-base",
                "--packages",
                "golang-1.26-go",
                "--cache-dir",
            ])
            .arg(cache())
            .arg("--output")
            .arg(ctx.path("x.lock")),
    );
    assert!(err.contains("golang-1.26-go"), "{err}");
}

#[test]
fn bookworm_static_and_python3_run() {
    let ctx = TestContext::new();
    let layout = ctx.path("layout");
    let l = layout.display().to_string();
    let (_, size) = build(
        &ctx,
        &["--profile", "python3:nonroot", "--distro", "bookworm"],
        &format!("oci:{l}:py"),
    );
    report("python3 (bookworm)", size, "≈50 MB");
    validate(&ctx, &format!("oci:{l}:py"));
    umoci_unpack(&layout, "py", &ctx.path("bundle-py"));
    let (rc, out, err) = runc_run(
        &ctx.path("bundle-py"),
        Some(&[
            "python3",
            "-c",
            "import ssl, json, sqlite3, sys, os; ssl.create_default_context(); print(sys.version_info[:2], os.getuid())",
        ]),
    );
    assert_eq!((rc, out.trim()), (0, "(3, 11) 65532"), "{err}");

    let (_, size) = build(
        &ctx,
        &["--profile", "static", "--distro", "bookworm"],
        &format!("oci:{l}:static"),
    );
    report("static (bookworm)", size, "≈2 MiB");
    validate(&ctx, &format!("oci:{l}:static"));
    let tag = with_busybox(&ctx, &layout, "static");
    let rootfs = umoci_unpack(&layout, &tag, &ctx.path("bundle-static"));
    let osr = fs::read_to_string(rootfs.join("etc/os-release")).unwrap();
    assert!(osr.contains("bookworm"), "{osr}");
    let (rc, out, err) = runc_run(
        &ctx.path("bundle-static"),
        Some(&[
            "/usr/local/bin/busybox",
            "head",
            "-1",
            "/etc/ssl/certs/ca-certificates.crt",
        ]),
    );
    assert_eq!(
        (rc, out.trim()),
        (0, "-----BEGIN CERTIFICATE-----"),
        "{err}"
    );
}

#[test]
fn arm64_resolves_and_validates() {
    let ctx = TestContext::new();
    let layout = ctx.path("layout");
    let l = layout.display().to_string();
    build(
        &ctx,
        &["--profile", "python3", "--arch", "arm64"],
        &format!("oci:{l}:py"),
    );
    validate(&ctx, &format!("oci:{l}:py"));
    let cfg = ocibuild_testkit::skopeo_inspect_config(&format!("oci:{l}:py"));
    assert_eq!(cfg["architecture"], "arm64", "{cfg}");
    let rootfs = umoci_unpack(&layout, "py", &ctx.path("bundle"));
    // the interpreter is an aarch64 ELF (e_machine 183)
    let target = fs::read_link(rootfs.join("usr/bin/python3")).unwrap();
    let elf = fs::read(rootfs.join("usr/bin").join(target)).unwrap();
    assert_eq!(&elf[..4], b"\x7fELF");
    assert_eq!(u16::from_le_bytes([elf[18], elf[19]]), 183);
    assert!(rootfs.join("usr/lib/aarch64-linux-gnu").is_dir());
}

#[test]
fn offline_lockfile_build_needs_no_network_at_all() {
    let ctx = TestContext::new();
    let unshare = ocibuild_testkit::require_tool("unshare", "util-linux");
    assert!(
        ocibuild_testkit::is_root(),
        "this test runs ocibuild in a new network namespace (unshare -n) and needs root"
    );
    let lock = ctx.path("ocibuild.lock");
    let cache = ctx.tmp_dir("cache");
    run_ok_stdout(
        ocibuild(&ctx)
            .args(["base", "lock", "--profile", "cc", "--cache-dir"])
            .arg(&cache)
            .arg("--output")
            .arg(&lock),
    );
    let layout = ctx.path("layout");
    let l = layout.display().to_string();
    let (online, _) = build(
        &ctx,
        &["--profile", "cc", "--lock", lock.to_str().unwrap()],
        &format!("oci:{l}:online"),
    );
    // `build` uses the shared cache: warm this test's own cache from the lockfile too.
    run_ok_stdout(
        ocibuild(&ctx)
            .args(["base", "build", "--profile", "cc", "--lock"])
            .arg(&lock)
            .arg("--cache-dir")
            .arg(&cache),
    );
    // A fresh network namespace has only a loopback interface (down) and no route anywhere.
    let probe = Command::new(&unshare)
        .args([
            "-n",
            "sh",
            "-c",
            "cat /proc/net/route; cat /proc/self/net/dev",
        ])
        .output()
        .unwrap();
    let probe = String::from_utf8_lossy(&probe.stdout);
    let ifaces: Vec<&str> = probe
        .lines()
        .filter_map(|l| l.split_once(':').map(|(i, _)| i.trim()))
        .filter(|i| !i.contains('|'))
        .collect();
    assert_eq!(ifaces, ["lo"], "{probe}");
    assert!(
        !probe.contains("Gateway"),
        "a route in the new namespace: {probe}"
    );
    let mut c = Command::new(&unshare);
    c.arg("-n")
        .arg(env!("CARGO_BIN_EXE_ocibuild"))
        .arg("--root")
        .arg(ctx.root_dir())
        .args(["--progress", "plain", "base", "build", "--profile", "cc"])
        .arg("--lock")
        .arg(&lock)
        .arg("--offline")
        .arg("--cache-dir")
        .arg(&cache)
        .arg("--output")
        .arg(format!("oci:{l}:offline"));
    let stdout = run_ok_stdout(&mut c);
    assert_eq!(stdout.lines().next(), Some(online.as_str()), "{stdout}");
    validate(&ctx, &format!("oci:{l}:offline"));
    // and without --offline, in the same namespace, it says the network is unreachable
    let mut c = Command::new(&unshare);
    c.arg("-n")
        .arg(env!("CARGO_BIN_EXE_ocibuild"))
        .arg("--root")
        .arg(ctx.root_dir())
        .args(["base", "lock", "--profile", "cc", "--cache-dir"])
        .arg(ctx.tmp_dir("empty-cache"))
        .arg("--output")
        .arg(ctx.path("x.lock"));
    let err = ocibuild_testkit::run_fail(&mut c);
    assert!(err.contains("InRelease"), "{err}");
}

#[test]
fn base_build_pushes_to_a_registry() {
    use ocibuild_testkit::registry::{RegistryOptions, start_registry};
    let ctx = TestContext::new();
    let reg = start_registry(&ctx, RegistryOptions::default());
    let (digest, _) = build(
        &ctx,
        &["--profile", "static:nonroot"],
        &format!("docker://{}/base/static:nonroot", reg.host),
    );
    let v = ocibuild_testkit::skopeo_inspect_full(&reg.docker_ref("base/static:nonroot"));
    assert_eq!(v["Digest"], digest, "{v}");
    assert_eq!(v["Architecture"], "amd64", "{v}");
}

/// `base build` into an empty package cache reports its downloads: how many packages and bytes,
/// progress as they land, and the total time (plain lines, and JSON events with `--progress
/// json`), instead of waiting in silence.
#[test]
fn downloads_are_reported_with_bytes_and_time() {
    let ctx = TestContext::new();
    let empty_cache = ctx.tmp_dir("empty-apt-cache");
    let out = ocibuild_testkit::run_ok(
        Command::new(env!("CARGO_BIN_EXE_ocibuild"))
            .arg("--root")
            .arg(ctx.root_dir())
            .args(["--progress", "json", "base", "build", "--profile", "static"])
            .arg("--cache-dir")
            .arg(&empty_cache)
            .arg("--output")
            .arg(format!("oci:{}:s", ctx.path("layout").display())),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let events: Vec<serde_json::Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let started = events
        .iter()
        .find(|e| e["event"] == "download-started")
        .unwrap_or_else(|| panic!("no download-started event: {stderr}"));
    let (packages, bytes) = (
        started["packages"].as_u64().unwrap(),
        started["bytes"].as_u64().unwrap(),
    );
    assert!(packages >= 3 && bytes > 100_000, "{started}");
    let progress: Vec<&serde_json::Value> =
        events.iter().filter(|e| e["event"] == "download").collect();
    assert_eq!(
        progress.len() as u64,
        packages,
        "one event per package: {stderr}"
    );
    let max = progress
        .iter()
        .map(|e| e["done"].as_u64().unwrap())
        .max()
        .unwrap();
    assert_eq!(max, bytes, "the bytes add up to the total");
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "phase-finished" && e["phase"] == "download"),
        "{stderr}"
    );
    assert!(
        events.iter().any(|e| e["event"] == "unpack-started"),
        "{stderr}"
    );
    // plain lines for humans, from a second build into another empty cache
    let empty2 = ctx.tmp_dir("empty-apt-cache-2");
    let out = ocibuild_testkit::run_ok(
        ocibuild(&ctx)
            .args(["base", "build", "--profile", "static"])
            .arg("--cache-dir")
            .arg(&empty2),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("=> static: downloading {packages} packages")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("=> static: downloaded {packages} packages")),
        "{stderr}"
    );
    assert!(stderr.contains(" s, ") && stderr.contains("/s"), "{stderr}");
}
