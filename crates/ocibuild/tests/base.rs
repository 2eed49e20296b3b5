//! `ocibuild base` end to end: build distroless bases from the machine's Debian mirror, validate
//! them, and run them under runc. The package cache is shared between tests (under cargo's test
//! tmpdir), each test has its own content store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use ocibuild_testkit::{TestContext, busybox_static, run_ok_stdout, runc_run, umoci_unpack};

fn cache() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ocibuild-debian-apt-cache");
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
    let stdout = run_ok_stdout(&mut c);
    let mut lines = stdout.lines();
    let digest = lines.next().unwrap().to_string();
    assert!(digest.starts_with("sha256:"), "{stdout}");
    let size = lines
        .next()
        .and_then(|l| l.strip_prefix("compressed-size: "))
        .unwrap()
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
