//! `ocibuild check` and `ocibuild size` on real images: testdata apps built zero-config against
//! their naive single-stage images (the app's toolchain root from `base build` plus its sources),
//! planted keys, a binary whose libraries are missing, a `#!/usr/bin/env node` script without
//! env, dev dependencies left in, and a container-structure-test suite.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ocibuild_testkit::{TestContext, run_ok_stdout};
use serde_json::Value;

/// The store the other build tests share (bases and toolchain roots built once).
fn shared_store() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ocibuild-build-tests-store")
}

fn ocibuild() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ocibuild"));
    c.arg("--root")
        .arg(shared_store())
        .args(["--progress", "plain"])
        .env_remove("SOURCE_DATE_EPOCH");
    c
}

fn app(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/apps")
        .join(name)
}

fn run(c: &mut Command) -> Output {
    let out = c.output().expect("running ocibuild");
    eprintln!(
        "{:?} -> {:?}\n{}{}",
        c.get_args().collect::<Vec<_>>(),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Build `testdata/apps/NAME` zero-config into `oci:LAYOUT:NAME`.
fn build(name: &str, layout: &Path) -> String {
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("ocibuild-build-tests-store")
        .join("debian");
    fs::create_dir_all(&cache).unwrap();
    run_ok_stdout(
        ocibuild()
            .arg("build")
            .arg(app(name))
            .arg("--cache-dir")
            .arg(&cache)
            .arg("--output")
            .arg(format!("oci:{}:{name}", layout.display())),
    );
    format!("oci:{}:{name}", layout.display())
}

/// The naive single-stage image: the toolchain root PROFILE with the app's sources at /app.
fn naive(name: &str, profile: &str, entrypoint: &str, layout: &Path) -> String {
    let base = format!("oci:{}:{profile}", layout.display());
    run_ok_stdout(
        ocibuild()
            .args(["base", "build", "--profile", profile, "--output"])
            .arg(&base),
    );
    let out = format!("oci:{}:{name}-naive", layout.display());
    run_ok_stdout(
        ocibuild()
            .args(["assemble", "--base", &base, "--layer"])
            .arg(format!("{}:/app", app(name).display()))
            .args(["--workdir", "/app", "--entrypoint", entrypoint, "--output"])
            .arg(&out),
    );
    out
}

fn check_json(image: &str, extra: &[&str]) -> (i32, Value) {
    let out = run(ocibuild()
        .args(["check", image, "--format", "json"])
        .args(extra));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap(), v)
}

/// (check, path or message) of each failure.
fn failures(v: &Value) -> Vec<(String, String)> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "error")
        .map(|f| {
            (
                f["check"].as_str().unwrap().to_string(),
                f["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The app passes the default checks, its naive image fails them (build tools and sources), and
/// `size --compare` against the naive image reports ≥ 50% less.
fn app_against_naive(
    name: &str,
    profile: &str,
    entrypoint: &str,
    sources: Option<&str>,
    min_pct: f64,
) {
    let ctx = TestContext::new();
    let layout = ctx.path("layout");
    let image = build(name, &layout);
    let naive = naive(name, profile, entrypoint, &layout);

    let (code, v) = check_json(&image, &[]);
    assert_eq!(code, 0, "{name}: the ocibuild image passes: {v:#}");
    assert_eq!(v["passed"], true);
    assert!(v["checks"].as_array().unwrap().len() >= 10, "{v}");

    let (code, v) = check_json(&naive, &[]);
    assert_eq!(code, 3, "{name}: the naive image fails: {v:#}");
    let f = failures(&v);
    let has = |check: &str, what: &str| f.iter().any(|(c, m)| c == check && m.contains(what));
    assert!(has("build-tools", "/usr/bin/sh"), "a shell: {f:?}");
    if let Some(sources) = sources {
        assert!(has("sources", sources), "sources ({sources}): {f:?}");
    }

    let out = run(ocibuild().args(["size", &image, "--compare", &naive, "--format", "json"]));
    assert!(out.status.success());
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let pct = r["compare"]["reduction_percent"].as_f64().unwrap();
    eprintln!(
        "{name}: {} bytes vs the naive image ({profile} + sources) {} bytes: {pct:.1}% smaller",
        r["compressed"], r["compare"]["compressed"]
    );
    assert_eq!(
        r["compare"]["image"],
        naive.as_str(),
        "the baseline is named"
    );
    assert!(
        pct >= min_pct,
        "{name}: {pct:.1}% < {min_pct}% smaller than {naive}"
    );
    // the table names the baseline and the reduction too
    let table = run_ok_stdout(ocibuild().args(["size", &image, "--compare", &naive]));
    assert!(
        table.contains(&format!("% smaller than {naive}")),
        "{table}"
    );
}

#[test]
fn go_app_passes_and_its_naive_image_fails_and_is_twice_as_big() {
    app_against_naive(
        "go-http",
        "go",
        "[\"go\",\"run\",\".\"]",
        Some("/app/main.go"),
        50.0,
    );
}

#[test]
fn node_app_passes_and_its_naive_image_fails_and_is_twice_as_big() {
    app_against_naive(
        "node-ts-express",
        "node-build",
        "[\"npm\",\"start\"]",
        Some("/app/src/"),
        // The nodejs runtime base (libnode and ICU: 87 of its 117 MB) is most of both images;
        // keeping only the shared builtins libnode loads from /usr/share/nodejs took it from
        // 49.8% to just over 50%.
        50.0,
    );
}

#[test]
fn python_app_passes_and_its_naive_image_fails_and_is_twice_as_big() {
    app_against_naive(
        "python-flask",
        "python-build",
        "[\"python3\",\"app.py\"]",
        None,
        50.0,
    );
}

#[test]
fn java_app_passes_and_its_naive_image_fails_and_is_twice_as_big() {
    app_against_naive(
        "java-plain",
        "java-build",
        "[\"java\",\"-cp\",\"/app/src\",\"com.example.Hello\"]",
        Some("/app/src/com/example/Hello.java"),
        50.0,
    );
}

#[test]
fn a_budget_violation_exits_3_and_names_the_top_contributor() {
    let ctx = TestContext::new();
    let image = build("go-http", &ctx.path("layout"));
    let budget = ctx.path("budget.toml");
    fs::write(
        &budget,
        "max_compressed_size = \"1MB\"\nmax_uncompressed_size = \"150MB\"\nmax_layer_compressed_size = \"40MB\"\n",
    )
    .unwrap();
    let out = run(ocibuild().args(["size", &image, "--budget"]).arg(&budget));
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("max_compressed_size"), "{err}");
    assert!(err.contains("biggest files: /app/gohttp"), "{err}");
    // within budget: exit 0; a broken budget file: exit 1 naming the file
    fs::write(&budget, "max_compressed_size = \"60MB\"\n").unwrap();
    assert_eq!(
        run(ocibuild().args(["size", &image, "--budget"]).arg(&budget))
            .status
            .code(),
        Some(0)
    );
    fs::write(&budget, "max_compressed_size = \"60 parsecs\"\n").unwrap();
    let out = run(ocibuild().args(["size", &image, "--budget"]).arg(&budget));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("budget.toml"));
    // the same limit in a policy file gates `check`
    let policy = ctx.path("policy.toml");
    fs::write(&policy, "max_compressed_size = \"1MB\"\nnon_root = true\n").unwrap();
    let (code, v) = check_json(&image, &["--policy", policy.to_str().unwrap()]);
    assert_eq!(code, 3);
    let f = failures(&v);
    assert!(
        f.iter()
            .any(|(c, m)| c == "max-compressed-size" && m.contains("/app/gohttp")),
        "{f:?}"
    );
    assert!(
        !f.iter().any(|(c, _)| c == "non-root"),
        "runs as 65532: {f:?}"
    );
}

fn write(p: &Path, body: &[u8], mode: u32) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, body).unwrap();
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// `assemble` an image from scratch with DIR at /.
fn assemble(ctx: &TestContext, dirs: &[&Path], entrypoint: &str, tag: &str) -> String {
    let out = format!("oci:{}:{tag}", ctx.path("layout").display());
    let mut c = ocibuild();
    c.arg("assemble");
    for d in dirs {
        c.arg("--layer").arg(format!("{}:/", d.display()));
    }
    run_ok_stdout(c.args(["--entrypoint", entrypoint, "--output"]).arg(&out));
    out
}

#[test]
fn a_layer_that_does_not_match_its_digest_fails_check_and_size() {
    let ctx = TestContext::new();
    let d = ctx.path("app");
    write(&d.join("app/run"), b"#!/bin/sh\n", 0o755);
    let image = assemble(&ctx, &[&d], "[\"/app/run\"]", "t");
    let layout = ctx.path("layout");
    let blob = |digest: &str| layout.join("blobs/sha256").join(&digest[7..]);
    let index: Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest: Value = serde_json::from_slice(
        &fs::read(blob(index["manifests"][0]["digest"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    let layer = blob(manifest["layers"][0]["digest"].as_str().unwrap());
    // the gzip header's MTIME: the same size and the same tar stream, another digest
    let mut bytes = fs::read(&layer).unwrap();
    assert_eq!(&bytes[..2], b"\x1f\x8b");
    bytes[4] ^= 0x55;
    fs::set_permissions(&layer, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&layer, &bytes).unwrap();
    for cmd in ["check", "size"] {
        let out = run(ocibuild().args([cmd, &image]));
        assert_eq!(out.status.code(), Some(1), "{cmd}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("layer 0 does not match its digest"),
            "{cmd}: {err}"
        );
    }
}

#[test]
fn planted_keys_are_found_in_the_app_layer_and_dependencies_only_warn() {
    let ctx = TestContext::new();
    let d = ctx.path("app");
    write(&d.join("app/run.sh"), b"#!/bin/sh\n", 0o755);
    // scratch has no /bin/sh: this test is about keys only
    let policy = ctx.path("policy.toml");
    fs::write(&policy, "disable = [\"runnable\"]\n").unwrap();
    let rsa = b"-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEAzk1ZGZha2Uga2V5IGZvciB0ZXN0cw==\n-----END RSA PRIVATE KEY-----\n";
    write(&d.join("app/config/server.key"), rsa, 0o600);
    let ec = b"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIGZha2UgZWMga2V5IGZvciB0ZXN0cw==\n-----END EC PRIVATE KEY-----\n";
    write(&d.join("app/certs/ec.pem"), ec, 0o600);
    write(
        &d.join("app/.env"),
        b"AWS_ACCESS_KEY_ID=AKIAQ3EGRUY7FAKEKEY7\nAWS_REGION=westeurope\n",
        0o644,
    );
    write(
        &d.join("app/node_modules/some-lib/test/fixture.pem"),
        ec,
        0o644,
    );
    let image = assemble(&ctx, &[&d], "[\"/app/run.sh\"]", "keys");
    let (code, v) = check_json(&image, &["--policy", policy.to_str().unwrap()]);
    assert_eq!(code, 3, "{v:#}");
    let findings = v["findings"].as_array().unwrap();
    let sev = |path: &str| -> Vec<String> {
        findings
            .iter()
            .filter(|f| f["check"] == "secrets" && f["path"] == path)
            .map(|f| format!("{} {}", f["severity"], f["message"]))
            .collect()
    };
    let rsa = sev("/app/config/server.key");
    assert!(
        rsa.iter()
            .any(|s| s.contains("error") && s.contains("RSA private key")),
        "{rsa:?}"
    );
    let ec = sev("/app/certs/ec.pem");
    assert!(
        ec.iter()
            .any(|s| s.contains("error") && s.contains("EC private key")),
        "{ec:?}"
    );
    let aws = sev("/app/.env");
    assert!(
        aws.iter()
            .any(|s| s.contains("error") && s.contains("AWS access key")),
        "{aws:?}"
    );
    let dep = sev("/app/node_modules/some-lib/test/fixture.pem");
    assert!(
        dep.iter().all(|s| s.contains("warning")) && !dep.is_empty(),
        "a key inside a dependency only warns: {dep:?}"
    );
    // a policy can switch the check off
    fs::write(&policy, "disable = [\"runnable\", \"secrets\"]\n").unwrap();
    let (code, v) = check_json(&image, &["--policy", policy.to_str().unwrap()]);
    assert_eq!(code, 0, "{v:#}");
}

#[test]
fn an_entrypoint_whose_libraries_are_missing_is_not_runnable() {
    let ctx = TestContext::new();
    // a dynamically linked host program, copied without its libraries
    let host = Path::new("/usr/bin/true");
    let info = ocibuild_elf::parse(&fs::read(host).unwrap()).expect("/usr/bin/true is ELF");
    assert!(!info.needed.is_empty(), "{info:?}");
    let d = ctx.path("bin");
    write(&d.join("app/true"), &fs::read(host).unwrap(), 0o755);
    let image = assemble(&ctx, &[&d], "[\"/app/true\"]", "nolibs");
    let (code, v) = check_json(&image, &[]);
    assert_eq!(code, 3, "{v:#}");
    let f = failures(&v);
    let runnable: Vec<&String> = f
        .iter()
        .filter(|(c, _)| c == "runnable")
        .map(|(_, m)| m)
        .collect();
    assert_eq!(runnable.len(), 1, "{f:?}");
    for lib in info.needed.iter().chain(info.interp.as_ref()) {
        assert!(
            runnable[0].contains(&format!("{lib} (needed by")),
            "{lib} is named: {runnable:?}"
        );
    }
    // with the libraries (found through their symlinks and directories) it is runnable
    let libs = ctx.path("libs");
    let host_lib = |name: &str| -> PathBuf {
        for dir in [
            "/lib/x86_64-linux-gnu",
            "/lib64",
            "/usr/lib/x86_64-linux-gnu",
            "/lib/aarch64-linux-gnu",
            "/lib",
        ] {
            let p = Path::new(dir).join(name);
            if p.exists() {
                return fs::canonicalize(p).unwrap();
            }
        }
        panic!("{name} is not on the host");
    };
    let interp = info.interp.clone().unwrap();
    write(
        &libs.join(interp.trim_start_matches('/')),
        &fs::read(fs::canonicalize(&interp).unwrap()).unwrap(),
        0o755,
    );
    for lib in &info.needed {
        write(
            &libs.join("usr/lib/x86_64-linux-gnu").join(lib),
            &fs::read(host_lib(lib)).unwrap(),
            0o644,
        );
    }
    fs::create_dir_all(libs.join("etc/ld.so.conf.d")).unwrap();
    fs::write(
        libs.join("etc/ld.so.conf"),
        "include /etc/ld.so.conf.d/*.conf\n",
    )
    .unwrap();
    fs::write(
        libs.join("etc/ld.so.conf.d/multiarch.conf"),
        "/usr/lib/x86_64-linux-gnu\n",
    )
    .unwrap();
    let image = assemble(&ctx, &[&libs, &d], "[\"/app/true\"]", "withlibs");
    let (code, v) = check_json(&image, &[]);
    assert_eq!(code, 0, "{v:#}");
}

#[test]
fn an_env_node_script_without_usr_bin_env_is_not_runnable() {
    let ctx = TestContext::new();
    let d = ctx.path("app");
    write(
        &d.join("app/server.js"),
        b"#!/usr/bin/env node\nconsole.log('hi')\n",
        0o755,
    );
    let image = assemble(&ctx, &[&d], "[\"/app/server.js\"]", "envnode");
    let (code, v) = check_json(&image, &[]);
    assert_eq!(code, 3, "{v:#}");
    let f = failures(&v);
    assert!(
        f.iter().any(|(c, m)| c == "runnable"
            && m.contains("#!/usr/bin/env node")
            && m.contains("/usr/bin/env does not exist")),
        "{f:?}"
    );
    // a healthcheck through a shell needs /bin/sh; a table names the failure
    let out = run(ocibuild().args(["check", &image]));
    assert_eq!(out.status.code(), Some(3));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("FAIL") && table.contains("runnable"),
        "{table}"
    );
}

#[test]
fn dev_dependencies_left_in_the_image_are_named() {
    let ctx = TestContext::new();
    let d = ctx.path("app");
    write(&d.join("app/run.sh"), b"#!/bin/sh\n", 0o755);
    let lock = serde_json::json!({
        "name": "shop", "lockfileVersion": 3, "requires": true,
        "packages": {
            "": {"name": "shop", "dependencies": {"express": "^4"}, "devDependencies": {"typescript": "^5", "jest": "^29"}},
            "node_modules/express": {"version": "4.21.2"},
            "node_modules/typescript": {"version": "5.7.2", "dev": true},
            "node_modules/jest": {"version": "29.7.0", "dev": true}
        }
    });
    write(
        &d.join("app/package-lock.json"),
        lock.to_string().as_bytes(),
        0o644,
    );
    for p in ["express", "typescript"] {
        write(
            &d.join(format!("app/node_modules/{p}/package.json")),
            b"{}",
            0o644,
        );
    }
    let image = assemble(&ctx, &[&d], "[\"/app/run.sh\"]", "devdeps");
    let (code, v) = check_json(&image, &[]);
    assert_eq!(code, 3, "{v:#}");
    let f = failures(&v);
    let dev: Vec<&String> = f
        .iter()
        .filter(|(c, _)| c == "dev-dependencies")
        .map(|(_, m)| m)
        .collect();
    assert_eq!(dev.len(), 1, "{f:?}");
    assert!(dev[0].contains("typescript"), "{dev:?}");
    assert!(
        !dev[0].contains("jest") && !dev[0].contains("express"),
        "{dev:?}"
    );
}

#[test]
fn a_container_structure_test_suite_runs_its_file_and_metadata_tests() {
    let ctx = TestContext::new();
    let image = build("go-http", &ctx.path("layout"));
    let suite = ctx.path("cst.yaml");
    let write_suite = |body: &str| fs::write(&suite, body).unwrap();
    write_suite(
        r#"schemaVersion: 2.0.0
fileExistenceTests:
  - name: server binary
    path: /app/gohttp
    shouldExist: true
    isExecutableBy: other
  - name: no shell
    path: /bin/sh
    shouldExist: false
fileContentTests:
  - name: nonroot user
    path: /etc/passwd
    expectedContents: ["nonroot:x:65532"]
metadataTest:
  exposedPorts: ["8080"]
  workdir: /app
"#,
    );
    let (code, v) = check_json(&image, &["--config", suite.to_str().unwrap()]);
    assert_eq!(code, 0, "{v:#}");
    assert!(
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "structure-test")
    );
    write_suite(
        r#"schemaVersion: 2.0.0
fileExistenceTests:
  - name: config file
    path: /app/config.yaml
    shouldExist: true
  - name: server binary
    path: /app/gohttp
    shouldExist: true
    permissions: "-rw-r--r--"
fileContentTests:
  - name: no root account
    path: /etc/passwd
    excludedContents: ["^root:"]
metadataTest:
  exposedPorts: ["9090"]
  user: "root"
  envVars:
    - key: PORT
      value: "1234"
"#,
    );
    let (code, v) = check_json(&image, &["--config", suite.to_str().unwrap()]);
    assert_eq!(code, 3, "{v:#}");
    let msgs: Vec<String> = failures(&v)
        .into_iter()
        .filter(|(c, _)| c == "structure-test")
        .map(|(_, m)| m)
        .collect();
    for want in [
        "config file: /app/config.yaml should exist but does not",
        "server binary: /app/gohttp has permissions -rwxr-xr-x, expected -rw-r--r--",
        "no root account: /etc/passwd contains the excluded /^root:/",
        "metadataTest: port 9090 is not exposed",
        "metadataTest: user is",
        "metadataTest: env PORT is",
    ] {
        assert!(msgs.iter().any(|m| m.contains(want)), "{want}: {msgs:#?}");
    }
    // the policy file can name the suite
    let policy = ctx.path("policy.toml");
    fs::write(&policy, "structure_test = \"cst.yaml\"\n").unwrap();
    let (code, _) = check_json(&image, &["--policy", policy.to_str().unwrap()]);
    assert_eq!(code, 3);
}

#[test]
fn build_check_gates_before_anything_is_written() {
    let ctx = TestContext::new();
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("ocibuild-build-tests-store")
        .join("debian");
    let layout = ctx.path("layout");
    let policy = ctx.path("policy.toml");
    fs::write(&policy, "required_files = [\"/app/config.yaml\"]\n").unwrap();
    let build = |extra: &[&str]| {
        run(ocibuild()
            .arg("build")
            .arg(app("go-http"))
            .arg("--cache-dir")
            .arg(&cache)
            .args(extra)
            .arg("--output")
            .arg(format!("oci:{}:go", layout.display())))
    };
    // --summary: the job summary (markdown), appended, also for a failed build
    let summary = ctx.path("step-summary.md");
    fs::write(&summary, "# earlier step\n").unwrap();
    let summary_arg = summary.to_str().unwrap();
    let out = build(&[
        "--policy",
        policy.to_str().unwrap(),
        "--summary",
        summary_arg,
    ]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("required-files")
            && err.contains("/app/config.yaml")
            && err.contains("nothing was written"),
        "{err}"
    );
    assert!(!layout.exists(), "no output after a failed check");
    let md = fs::read_to_string(&summary).unwrap();
    assert!(
        md.starts_with("# earlier step\n\n## ocibuild build"),
        "{md}"
    );
    assert!(
        md.contains("❌ failed") && md.contains("| checks | **failed**: 1 errors"),
        "{md}"
    );
    assert!(
        md.contains("| ❌ fail | required-files |") && md.contains("/app/config.yaml"),
        "{md}"
    );
    assert!(!md.contains("| output |"), "{md}");
    fs::write(
        &policy,
        "required_files = [\"/app/gohttp\"]\nnon_root = true\n",
    )
    .unwrap();
    let out = build(&[
        "--check",
        "--policy",
        policy.to_str().unwrap(),
        "--compare-naive",
        "--summary",
        summary_arg,
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(layout.join("index.json").is_file());
    let digest = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let md = fs::read_to_string(&summary).unwrap();
    let built = &md[md.find("✅ built").expect(&md)..];
    for want in [
        format!("| image | `{digest}` |"),
        "| size (linux/amd64) |".to_string(),
        "| steps | ".to_string(),
        "| naive single-stage image |".to_string(),
        "% smaller |".to_string(),
        "| checks | passed".to_string(),
        format!("| output | `oci:{}:go` |", layout.display()),
        "### Layers (linux/amd64)".to_string(),
        "| base runtime: static |".to_string(),
        "| app: ".to_string(),
        "### Steps".to_string(),
        // the one executor's step label: the go build step of the lowered graph
        "| RUN --network=none --mount=type=cache,id=go-build,".to_string(),
    ] {
        assert!(built.contains(&want), "{want:?} not in:\n{md}");
    }
}

/// The commands of docs/ci (today's: build, check, size, push of $BUILD_NUMBER and latest) with
/// its policy and budget files, against docker-registry; then `check` and `size` of the pushed
/// image straight from the registry.
#[test]
fn the_ci_examples_commands_run_against_a_registry() {
    use ocibuild_testkit::registry::{RegistryOptions, start_registry};
    let ctx = TestContext::new();
    let reg = start_registry(&ctx, RegistryOptions::default());
    let ci = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/ci");
    for f in ["Jenkinsfile", "github-actions.yml", "MIGRATION.md"] {
        assert!(ci.join(f).is_file(), "docs/ci/{f}");
    }
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("ocibuild-build-tests-store")
        .join("debian");
    let layout = format!("oci:{}:42", ctx.path("out").display());
    let meta = ctx.path("build.json");
    run_ok_stdout(
        ocibuild()
            .arg("build")
            .arg(app("go-http"))
            .arg("--cache-dir")
            .arg(&cache)
            .arg("--metadata-file")
            .arg(&meta)
            .arg("--summary")
            .arg(ctx.path("summary.md"))
            .args(["--output", &layout]),
    );
    let summary = fs::read_to_string(ctx.path("summary.md")).unwrap();
    assert!(
        summary.contains("✅ built") && summary.contains("### Layers"),
        "{summary}"
    );
    let policy = ci.join("policy.toml");
    let budget = ci.join("budget.toml");
    let md = run_ok_stdout(
        ocibuild()
            .args(["check", &layout, "--format", "markdown", "--policy"])
            .arg(&policy),
    );
    assert!(md.contains("passed"), "{md}");
    let md = run_ok_stdout(
        ocibuild()
            .args(["size", &layout, "--format", "markdown", "--budget"])
            .arg(&budget),
    );
    assert!(
        md.contains("## Image size") && md.contains("| BYTES | FILE |"),
        "{md}"
    );
    // the SBOM, scan and sign stages, as the files write them
    let sbom = ctx.path("sbom");
    fs::create_dir_all(&sbom).unwrap();
    run_ok_stdout(
        ocibuild()
            .args(["sbom", &layout, "-o"])
            .arg(sbom.join("sbom.cdx.json")),
    );
    run_ok_stdout(
        ocibuild()
            .args(["sbom", &layout, "--format", "spdx", "-o"])
            .arg(sbom.join("sbom.spdx.json")),
    );
    let osv = ctx.path("osv");
    fs::create_dir_all(&osv).unwrap();
    fs::write(
        osv.join("GHSA-test.json"),
        r#"{"schema_version": "1.6.0", "id": "GHSA-test", "modified": "2026-12-01T00:00:00Z",
  "affected": [{"package": {"ecosystem": "npm", "name": "left-pad"},
    "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.3.0"}]}]}]}"#,
    )
    .unwrap();
    run_ok_stdout(
        ocibuild()
            .args(["scan", &layout, "--db"])
            .arg(&osv)
            .args([
                "--severity",
                "HIGH,CRITICAL",
                "--format",
                "sarif",
                "--output",
            ])
            .arg(ctx.path("scan.sarif")),
    );
    let prefix = ctx.path("cosign");
    run_ok_stdout(
        ocibuild()
            .env("COSIGN_PASSWORD", "ci-example")
            .args(["generate-key-pair", "--output-key-prefix"])
            .arg(&prefix),
    );
    let key = ctx.path("cosign.key");
    let public = ctx.path("cosign.pub");
    run_ok_stdout(
        ocibuild()
            .env("COSIGN_PASSWORD", "ci-example")
            .args(["sign", "--key"])
            .arg(&key)
            .arg(&layout),
    );
    let repo = format!("docker://{}/app", reg.host);
    run_ok_stdout(ocibuild().args(["push", &layout, &repo, "--tag", "42", "--tag", "latest"]));
    // the push carried the signature made in the layout
    run_ok_stdout(
        ocibuild()
            .args(["verify", "--key"])
            .arg(&public)
            .arg(format!("{repo}:latest")),
    );
    let (code, v) = check_json(
        &format!("{repo}:42"),
        &["--policy", policy.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{v:#}");
    let out = run(ocibuild().args(["size", &format!("{repo}:latest"), "--format", "json"]));
    assert!(out.status.success());
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["biggest_files"][0]["path"], "/app/gohttp", "{r:#}");
}
