//! End-to-end registry tests: the built `ocibuild` against the real CNCF `docker-registry`
//! (plain HTTP, TLS with a test CA, htpasswd basic auth, bearer tokens from a token-server
//! fixture), interop with skopeo both ways, multi-platform indexes, and a fault-injecting proxy.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::io::Write;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::{Command, Stdio};

use ocibuild_testkit as tk;
use ocibuild_testkit::proxy::{FaultPlan, start_fault_proxy};
use ocibuild_testkit::registry::{Registry, RegistryOptions, start_registry};
use serde_json::{Value, json};

fn ocibuild(ctx: &tk::TestContext) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ocibuild"));
    c.arg("--root")
        .arg(ctx.path("store"))
        .arg("--progress")
        .arg("plain");
    // a private docker config, never the user's
    c.env("DOCKER_CONFIG", ctx.path("docker"));
    c.env("HOME", ctx.path("home"));
    for v in [
        "OCIBUILD_REGISTRY_USER",
        "OCIBUILD_REGISTRY_PASSWORD",
        "OCIBUILD_CERTS_D",
        "REGISTRY_AUTH_FILE",
        "SOURCE_DATE_EPOCH",
        "XDG_RUNTIME_DIR",
    ] {
        c.env_remove(v);
    }
    c
}

fn stdout(o: std::process::Output) -> String {
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

/// A busybox image in a layout at `dir:TAG`; returns its digest.
fn hello_layout(ctx: &tk::TestContext, dir: &Path, tag: &str, extra: &[&str]) -> String {
    let rootfs = ctx.path(format!("rootfs-{tag}"));
    fs::create_dir_all(rootfs.join("bin")).unwrap();
    fs::copy(tk::busybox_static(), rootfs.join("bin/busybox")).unwrap();
    fs::set_permissions(
        rootfs.join("bin/busybox"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let _ = symlink("busybox", rootfs.join("bin/sh"));
    fs::write(rootfs.join("msg"), format!("hello {tag}\n")).unwrap();
    stdout(tk::run_ok(
        ocibuild(ctx)
            .arg("assemble")
            .arg("--layer")
            .arg(format!("{}:/", rootfs.display()))
            .args(["--entrypoint", "/bin/busybox cat /msg"])
            .args(extra)
            .arg("--output")
            .arg(format!("oci:{}:{tag}", dir.display())),
    ))
}

fn skopeo(args: &[&str]) -> std::process::Output {
    let mut c = Command::new(tk::require_tool("skopeo", "skopeo"));
    c.arg("--insecure-policy").args(args);
    tk::run_ok(&mut c)
}

#[test]
fn push_pull_copy_tags_and_skopeo_interop_on_plain_http() {
    let ctx = tk::TestContext::new();
    let reg = start_registry(&ctx, RegistryOptions::default());
    let layout = ctx.path("layout");
    let digest = hello_layout(&ctx, &layout, "v1", &[]);

    // push with two tags, as CI does with BUILD_NUMBER and latest
    let pushed = stdout(tk::run_ok(ocibuild(&ctx).args([
        "push",
        &format!("oci:{}:v1", layout.display()),
        &format!("docker://{}/app", reg.host),
        "--tag",
        "42",
        "--tag",
        "latest",
    ])));
    assert_eq!(pushed, digest);
    let tags = stdout(tk::run_ok(
        ocibuild(&ctx).args(["tags", &format!("docker://{}/app", reg.host)]),
    ));
    let mut tags: Vec<&str> = tags.lines().collect();
    tags.sort();
    assert_eq!(tags, vec!["42", "latest"]);

    // skopeo sees the same digest and pulls it
    let out = skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{}/app:42", reg.host),
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["Digest"], Value::String(digest.clone()));
    skopeo(&[
        "copy",
        "-q",
        "--src-tls-verify=false",
        &format!("docker://{}/app:latest", reg.host),
        &format!("oci:{}:x", ctx.path("skopeo-pulled").display()),
    ]);
    tk::run_ok(ocibuild(&ctx).args([
        "validate",
        &format!("oci:{}:x", ctx.path("skopeo-pulled").display()),
    ]));

    // what skopeo pushes, ocibuild pulls and validates, with identical digests
    skopeo(&[
        "copy",
        "-q",
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", layout.display()),
        &format!("docker://{}/by-skopeo:v1", reg.host),
    ]);
    let pulled = ctx.path("pulled");
    let d = stdout(tk::run_ok(ocibuild(&ctx).args([
        "pull",
        &format!("docker://{}/by-skopeo:v1", reg.host),
        "--output",
        &format!("oci:{}:v1", pulled.display()),
    ])));
    assert_eq!(d, digest);
    tk::run_ok(ocibuild(&ctx).args(["validate", &format!("oci:{}:v1", pulled.display())]));
    tk::oci_image_tool_validate(&pulled, "v1");

    // inspect without pulling layers
    let out = tk::run_ok(ocibuild(&ctx).args([
        "inspect",
        "--json",
        &format!("docker://{}/app:42", reg.host),
    ]));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["digest"], Value::String(digest.clone()));

    // registry to registry on the same host: blobs are mounted, not uploaded again
    let out = tk::run_ok(ocibuild(&ctx).args([
        "--progress",
        "json",
        "copy",
        &format!("docker://{}/app:42", reg.host),
        &format!("docker://{}/other:7", reg.host),
    ]));
    let events = String::from_utf8(out.stderr).unwrap();
    assert!(events.contains(r#""outcome":"mounted""#), "{events}");
    assert!(!events.contains(r#""outcome":"uploaded""#), "{events}");
    // pushing again: every blob exists
    let out = tk::run_ok(ocibuild(&ctx).args([
        "--progress",
        "json",
        "push",
        &format!("oci:{}:v1", layout.display()),
        &format!("docker://{}/app:again", reg.host),
    ]));
    let events = String::from_utf8(out.stderr).unwrap();
    assert!(!events.contains(r#""outcome":"uploaded""#), "{events}");

    // pull to the other archive formats; docker-archive loads in podman
    let da = ctx.path("pulled-docker.tar");
    tk::run_ok(ocibuild(&ctx).args([
        "pull",
        &format!("docker://{}/other:7", reg.host),
        "--output",
        &format!("docker-archive:{}:app:7", da.display()),
        "--output",
        &format!("oci-archive:{}:7", ctx.path("p.tar").display()),
    ]));
    let names = tk::podman_load(&ctx, &da);
    assert!(names.iter().any(|n| n.contains("app:7")), "{names:?}");

    // a missing tag is a clear 404
    let err = tk::run_fail(ocibuild(&ctx).args([
        "pull",
        &format!("docker://{}/app:nope", reg.host),
        "--output",
        &format!("oci:{}", ctx.path("x").display()),
    ]));
    assert!(err.contains("404") && err.contains("nope"), "{err}");
}

fn sorted_tags(ctx: &tk::TestContext, repo: &str) -> Vec<String> {
    let out = stdout(tk::run_ok(ocibuild(ctx).args(["tags", repo])));
    let mut tags: Vec<String> = out.lines().map(str::to_string).collect();
    tags.sort();
    tags
}

/// `push SRC docker://REG/app:42 --tag latest` pushes `42` and `latest` (the destination's tag
/// and every --tag, once each), and says so; `copy` and `assemble --output docker://` alike.
#[test]
fn the_destination_tag_and_every_tag_flag_are_pushed() {
    let ctx = tk::TestContext::new();
    let reg = start_registry(&ctx, RegistryOptions::default());
    let layout = ctx.path("layout");
    let digest = hello_layout(&ctx, &layout, "v1", &[]);
    let src = format!("oci:{}:v1", layout.display());

    let out = tk::run_ok(ocibuild(&ctx).args([
        "push",
        &src,
        &format!("docker://{}/app:42", reg.host),
        "--tag",
        "latest",
        "--tag",
        "42",
    ]));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(stdout(out), digest);
    assert_eq!(
        sorted_tags(&ctx, &format!("docker://{}/app", reg.host)),
        ["42", "latest"]
    );
    for t in ["42", "latest"] {
        let line = format!("tagged {}/app:{t}", reg.host);
        assert_eq!(err.matches(&line).count(), 1, "{line} once in:\n{err}");
    }
    // without a tag in the destination, the --tags alone
    tk::run_ok(ocibuild(&ctx).args([
        "push",
        &src,
        &format!("docker://{}/only", reg.host),
        "--tag",
        "7",
    ]));
    assert_eq!(
        sorted_tags(&ctx, &format!("docker://{}/only", reg.host)),
        ["7"]
    );

    // copy: the destination's tag, printed
    let out = tk::run_ok(ocibuild(&ctx).args([
        "copy",
        &format!("docker://{}/app:42", reg.host),
        &format!("docker://{}/copied:9", reg.host),
    ]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("tagged {}/copied:9", reg.host)),
        "{err}"
    );
    assert_eq!(
        sorted_tags(&ctx, &format!("docker://{}/copied", reg.host)),
        ["9"]
    );

    // assemble: the output's tag and each -t of the same repository
    let rootfs = ctx.path("asm-root");
    fs::create_dir_all(&rootfs).unwrap();
    fs::write(rootfs.join("msg"), "assembled\n").unwrap();
    let out = tk::run_ok(
        ocibuild(&ctx)
            .arg("assemble")
            .arg("--layer")
            .arg(format!("{}:/", rootfs.display()))
            .args(["-t", &format!("{}/asm:latest", reg.host)])
            .args(["--output", &format!("docker://{}/asm:3", reg.host)]),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("tagged {}/asm:3", reg.host)), "{err}");
    assert!(
        err.contains(&format!("tagged {}/asm:latest", reg.host)),
        "{err}"
    );
    assert_eq!(
        sorted_tags(&ctx, &format!("docker://{}/asm", reg.host)),
        ["3", "latest"]
    );
}

/// A push to a loopback port where nothing listens: one quick retry (seen with -v), then an
/// error naming the address, with no `--insecure-registry` advice (loopback may use HTTP anyway).
#[test]
fn a_refused_connection_fails_fast_and_names_the_address() {
    let ctx = tk::TestContext::new();
    let layout = ctx.path("layout");
    hello_layout(&ctx, &layout, "v1", &[]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let start = std::time::Instant::now();
    let out = tk::run(ocibuild(&ctx).args([
        "-v",
        "push",
        &format!("oci:{}:v1", layout.display()),
        &format!("docker://{addr}/app:1"),
    ]));
    let took = start.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(&format!("nothing is listening at {addr}")),
        "{err}"
    );
    assert!(!err.contains("--insecure-registry"), "{err}");
    let retries = err.lines().filter(|l| l.contains("retrying in")).count();
    assert_eq!(retries, 1, "one quick retry, logged:\n{err}");
    assert!(took < std::time::Duration::from_secs(10), "took {took:?}");
}

/// `pull --platform` of a single-platform image of another platform refuses and names the
/// platform the image has; `inspect oci:DIR:TAG` of a missing directory says it does not exist.
#[test]
fn pull_platform_mismatch_and_a_missing_layout_directory() {
    let ctx = tk::TestContext::new();
    let reg = start_registry(&ctx, RegistryOptions::default());
    let layout = ctx.path("layout");
    hello_layout(&ctx, &layout, "v1", &["--platform", "linux/amd64"]);
    let dest = format!("docker://{}/single:v1", reg.host);
    tk::run_ok(ocibuild(&ctx).args(["push", &format!("oci:{}:v1", layout.display()), &dest]));
    let out_dir = ctx.path("arm");
    let err = tk::run_fail(ocibuild(&ctx).args([
        "pull",
        "--platform",
        "linux/arm64",
        &dest,
        "--output",
        &format!("oci:{}:v1", out_dir.display()),
    ]));
    assert!(
        err.contains("linux/arm64")
            && err.contains("linux/amd64")
            && err.contains("single-platform"),
        "{err}"
    );
    assert!(!out_dir.join("index.json").exists(), "nothing written");
    // the matching platform still pulls
    tk::run_ok(ocibuild(&ctx).args([
        "pull",
        "--platform",
        "linux/amd64",
        &dest,
        "--output",
        &format!("oci:{}:v1", ctx.path("amd").display()),
    ]));

    let missing = ctx.path("nope");
    let err =
        tk::run_fail(ocibuild(&ctx).args(["inspect", &format!("oci:{}:v1", missing.display())]));
    assert!(
        err.contains(&format!(
            "the directory {} does not exist",
            missing.display()
        )),
        "{err}"
    );
    assert!(!err.contains("damaged"), "{err}");
}

#[test]
fn tls_with_a_test_ca() {
    let ctx = tk::TestContext::new();
    let reg = start_registry(
        &ctx,
        RegistryOptions {
            tls: true,
            ..Default::default()
        },
    );
    let layout = ctx.path("layout");
    let digest = hello_layout(&ctx, &layout, "v1", &[]);
    let dest = format!(
        "docker://{}/tls/app:v1",
        reg.host.replace("127.0.0.1", "localhost")
    );
    // without the CA: a certificate error that says what to do
    let err =
        tk::run_fail(ocibuild(&ctx).args(["push", &format!("oci:{}:v1", layout.display()), &dest]));
    assert!(err.contains("--ca-cert"), "{err}");
    let ca = reg.ca_cert.clone().unwrap();
    let d = stdout(tk::run_ok(ocibuild(&ctx).arg("--ca-cert").arg(&ca).args([
        "push",
        &format!("oci:{}:v1", layout.display()),
        &dest,
    ])));
    assert_eq!(d, digest);
    let pulled = ctx.path("pulled");
    tk::run_ok(ocibuild(&ctx).arg("--ca-cert").arg(&ca).args([
        "pull",
        &dest,
        "--output",
        &format!("oci:{}:v1", pulled.display()),
    ]));
    tk::run_ok(ocibuild(&ctx).args(["validate", &format!("oci:{}:v1", pulled.display())]));
}

/// A registry serving one self-signed certificate with `CA:TRUE` (what `openssl req -x509` makes):
/// trusted once that certificate is given with `--ca-cert` or in `certs.d/HOST/ca.crt`, for
/// login, push, pull, copy and a `--cache-to type=registry` export; refused, with the file to
/// put where, when it is not.
#[test]
fn self_signed_registry_certificate_given_by_the_user() {
    let ctx = tk::TestContext::new();
    let reg = start_registry(
        &ctx,
        RegistryOptions {
            self_signed: true,
            htpasswd: Some(("carol".into(), "self-signed-pw".into())),
            ..Default::default()
        },
    );
    let cert = reg.ca_cert.clone().unwrap();
    let certs_d = reg.certs_d.clone().unwrap();
    let layout = ctx.path("layout");
    let digest = hello_layout(&ctx, &layout, "v1", &[]);
    let src = format!("oci:{}:v1", layout.display());
    let dest = format!("docker://{}/ss/app:v1", reg.host);

    // not trusted: the error says which file to put where
    let err = tk::run_fail(ocibuild(&ctx).args(["push", &src, &dest]));
    assert!(
        err.contains("--ca-cert")
            && err.contains(&format!("/etc/containers/certs.d/{}/ca.crt", reg.host)),
        "{err}"
    );
    // another self-signed certificate is no substitute: the message names the file tried
    let other = tk::registry::make_self_signed_cert(&ctx.path("other-cert"));
    let err = tk::run_fail(
        ocibuild(&ctx)
            .arg("--ca-cert")
            .arg(&other.server_cert)
            .args(["push", &src, &dest]),
    );
    assert!(
        err.contains(&other.server_cert.display().to_string()) && err.contains("self-signed"),
        "{err}"
    );

    // login with --ca-cert
    let mut c = ocibuild(&ctx);
    c.arg("--ca-cert").arg(&cert);
    let out = login_with(c, &reg, "carol", "self-signed-pw");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // push with --ca-cert, by IP and by name (both in the certificate's SAN)
    let d = stdout(tk::run_ok(
        ocibuild(&ctx)
            .arg("--ca-cert")
            .arg(&cert)
            .args(["push", &src, &dest]),
    ));
    assert_eq!(d, digest);
    let by_name = format!(
        "docker://{}/ss/app:by-name",
        reg.host.replace("127.0.0.1", "localhost")
    );
    tk::run_ok(
        ocibuild(&ctx)
            .arg("--ca-cert")
            .arg(&cert)
            .args(["--creds", "carol:self-signed-pw"])
            .args(["copy", &src, &by_name]),
    );
    // pull and copy with the certificate in certs.d/HOST/ca.crt
    let pulled = ctx.path("pulled");
    let d = stdout(tk::run_ok(
        ocibuild(&ctx).env("OCIBUILD_CERTS_D", &certs_d).args([
            "pull",
            &dest,
            "--output",
            &format!("oci:{}:v1", pulled.display()),
        ]),
    ));
    assert_eq!(d, digest);
    tk::run_ok(ocibuild(&ctx).args(["validate", &format!("oci:{}:v1", pulled.display())]));
    let copy_dest = format!("docker://{}/ss/copy:v2", reg.host);
    let d = stdout(tk::run_ok(
        ocibuild(&ctx)
            .env("OCIBUILD_CERTS_D", &certs_d)
            .args(["copy", &dest, &copy_dest]),
    ));
    assert_eq!(d, digest);
    // skopeo agrees on what is there
    let out = skopeo(&[
        "inspect",
        "--cert-dir",
        reg.cert_dir.as_ref().unwrap().to_str().unwrap(),
        "--creds",
        "carol:self-signed-pw",
        &copy_dest,
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["Digest"], Value::String(digest.clone()));

    // a build exporting its cache to the registry
    let app = ctx.path("app");
    fs::create_dir_all(&app).unwrap();
    fs::write(
        app.join("Dockerfile"),
        format!(
            "FROM oci:{}:v1\nCOPY notes.txt /notes.txt\n",
            layout.display()
        ),
    )
    .unwrap();
    fs::write(
        app.join("notes.txt"),
        "cached through a self-signed registry\n",
    )
    .unwrap();
    tk::run_ok(
        ocibuild(&ctx)
            .env("OCIBUILD_CERTS_D", &certs_d)
            .arg("build")
            .arg("--cache-to")
            .arg(format!(
                "type=registry,ref={}/ss/cache:buildcache,mode=max",
                reg.host
            ))
            .arg("--output")
            .arg(format!("oci:{}:b", ctx.path("built").display()))
            .arg(&app),
    );
    let tags = stdout(tk::run_ok(
        ocibuild(&ctx)
            .arg("--ca-cert")
            .arg(&cert)
            .args(["tags", &format!("docker://{}/ss/cache", reg.host)]),
    ));
    assert!(
        tags.lines().any(|t| t.starts_with("buildcache")),
        "no cache records were exported: {tags}"
    );
}

fn login(ctx: &tk::TestContext, reg: &Registry, user: &str, pass: &str) -> std::process::Output {
    login_with(ocibuild(ctx), reg, user, pass)
}

fn login_with(mut c: Command, reg: &Registry, user: &str, pass: &str) -> std::process::Output {
    c.args(["login", &reg.host, "-u", user, "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{pass}\n").as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn auth_flow(opts: RegistryOptions) {
    let ctx = tk::TestContext::new();
    let reg = start_registry(&ctx, opts);
    let (user, pass) = reg.creds.clone().unwrap();
    let layout = ctx.path("layout");
    let digest = hello_layout(&ctx, &layout, "v1", &[]);
    let src = format!("oci:{}:v1", layout.display());
    let dest = format!("docker://{}/team/app:v1", reg.host);

    // no credentials: 401 and the next step
    let err = tk::run_fail(ocibuild(&ctx).args(["push", &src, &dest]));
    assert!(
        err.contains("401") && err.contains("ocibuild login"),
        "{err}"
    );
    // wrong password: refused, and the password never echoed
    let out = login(&ctx, &reg, &user, "wrong-password-xyz");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("wrong-password-xyz"), "secret leaked: {err}");
    assert!(
        err.contains(&format!(
            "the username or password was rejected by {}",
            reg.host
        )),
        "{err}"
    );
    assert!(
        !err.contains("ocibuild login"),
        "suggests the login that failed: {err}"
    );
    // login, push, pull, logout
    let out = login(&ctx, &reg, &user, &pass);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg: Value =
        serde_json::from_slice(&fs::read(ctx.path("docker/config.json")).unwrap()).unwrap();
    assert!(cfg["auths"][&reg.host]["auth"].is_string(), "{cfg}");
    assert_eq!(
        stdout(tk::run_ok(ocibuild(&ctx).args(["push", &src, &dest]))),
        digest
    );
    let pulled = ctx.path("pulled");
    tk::run_ok(ocibuild(&ctx).args([
        "pull",
        &dest,
        "--output",
        &format!("oci:{}:v1", pulled.display()),
    ]));
    tk::run_ok(ocibuild(&ctx).args(["logout", &reg.host]));
    assert!(
        tk::run_fail(ocibuild(&ctx).args(["tags", &format!("docker://{}/team/app", reg.host)]))
            .contains("401")
    );
    // credentials from the environment
    let out = tk::run_ok(
        ocibuild(&ctx)
            .env("OCIBUILD_REGISTRY_USER", &user)
            .env("OCIBUILD_REGISTRY_PASSWORD", &pass)
            .args(["tags", &format!("docker://{}/team/app", reg.host)]),
    );
    assert_eq!(stdout(out), "v1");
    // and --creds
    let out = tk::run_ok(
        ocibuild(&ctx)
            .arg("--creds")
            .arg(format!("{user}:{pass}"))
            .args(["tags", &format!("docker://{}/team/app", reg.host)]),
    );
    assert_eq!(stdout(out), "v1");
}

#[test]
fn htpasswd_basic_auth() {
    auth_flow(RegistryOptions {
        htpasswd: Some(("alice".into(), "s3cret-pass".into())),
        ..Default::default()
    });
}

#[test]
fn bearer_tokens_from_a_token_server() {
    auth_flow(RegistryOptions {
        token_auth: true,
        htpasswd: Some(("bob".into(), "t0ken-pass".into())),
        ..Default::default()
    });
}

/// Put two single-platform images into one layout under an index tagged `multi`.
fn make_index(layout: &Path, a: &str, b: &str) {
    let idx: Value = serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let pick = |t: &str| {
        idx["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == t)
            .unwrap()
            .clone()
    };
    let mut ma = pick(a);
    let mut mb = pick(b);
    for m in [&mut ma, &mut mb] {
        m.as_object_mut().unwrap().remove("annotations");
    }
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [ma, mb]});
    let bytes = serde_json::to_vec(&index).unwrap();
    let d = ocibuild_oci::Digest::of_bytes(&bytes);
    fs::write(layout.join("blobs/sha256").join(d.hex()), &bytes).unwrap();
    let mut top = idx.clone();
    top["manifests"].as_array_mut().unwrap().push(json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": d.to_string(), "size": bytes.len(), "annotations": {"org.opencontainers.image.ref.name": "multi"}}));
    fs::write(layout.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
}

#[test]
fn multi_platform_index_push_pull_whole_and_one_platform() {
    let ctx = tk::TestContext::new();
    let reg = start_registry(&ctx, RegistryOptions::default());
    let layout = ctx.path("layout");
    hello_layout(&ctx, &layout, "amd", &["--platform", "linux/amd64"]);
    hello_layout(&ctx, &layout, "arm", &["--platform", "linux/arm64"]);
    make_index(&layout, "amd", "arm");
    let dest = format!("docker://{}/multi:1", reg.host);
    let d = stdout(tk::run_ok(ocibuild(&ctx).args([
        "push",
        &format!("oci:{}:multi", layout.display()),
        &dest,
    ])));
    let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &dest[..]]);
    let v: Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(v["manifests"].as_array().unwrap().len(), 2);
    assert_eq!(
        format!(
            "sha256:{}",
            ocibuild_oci::Digest::of_bytes(&raw.stdout).hex()
        ),
        d
    );

    // the whole index
    let whole = ctx.path("whole");
    assert_eq!(
        stdout(tk::run_ok(ocibuild(&ctx).args([
            "pull",
            &dest,
            "--output",
            &format!("oci:{}:m", whole.display())
        ]))),
        d
    );
    tk::run_ok(ocibuild(&ctx).args(["validate", &format!("oci:{}:m", whole.display())]));
    skopeo(&[
        "copy",
        "-q",
        "--all",
        &format!("oci:{}:m", whole.display()),
        &format!("oci:{}:m", ctx.path("skopeo-all").display()),
    ]);
    // one platform
    let arm = ctx.path("arm");
    tk::run_ok(ocibuild(&ctx).args([
        "pull",
        &dest,
        "--platform",
        "linux/arm64",
        "--output",
        &format!("oci:{}:a", arm.display()),
    ]));
    let out =
        tk::run_ok(ocibuild(&ctx).args(["inspect", "--json", &format!("oci:{}:a", arm.display())]));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["platform"], "linux/arm64");
}

#[test]
fn push_and_pull_survive_injected_faults() {
    let ctx = tk::TestContext::new();
    let reg = start_registry(&ctx, RegistryOptions::default());
    let proxy = start_fault_proxy(
        &reg.host,
        FaultPlan {
            reset_every: Some(5),
            status_every: Some((3, 500, None)),
            truncate_blob_every: None,
        },
    );
    let layout = ctx.path("layout");
    let digest = hello_layout(&ctx, &layout, "v1", &[]);
    let dest = format!("docker://{}/faulty:v1", proxy.host);
    assert_eq!(
        stdout(tk::run_ok(ocibuild(&ctx).args([
            "push",
            &format!("oci:{}:v1", layout.display()),
            &dest
        ]))),
        digest
    );
    let pulled = ctx.path("pulled");
    assert_eq!(
        stdout(tk::run_ok(ocibuild(&ctx).args([
            "pull",
            &dest,
            "--output",
            &format!("oci:{}:v1", pulled.display())
        ]))),
        digest
    );
    tk::run_ok(ocibuild(&ctx).args(["validate", &format!("oci:{}:v1", pulled.display())]));
    let f = proxy.faults();
    assert!(
        f.resets > 0 && f.statuses > 0,
        "faults were injected: {f:?}"
    );
    // 429 with Retry-After
    proxy.set_plan(FaultPlan {
        reset_every: None,
        status_every: Some((2, 429, Some(0))),
        truncate_blob_every: None,
    });
    assert_eq!(
        stdout(tk::run_ok(ocibuild(&ctx).args([
            "pull",
            &dest,
            "--output",
            &format!("oci:{}:v1", ctx.path("p2").display())
        ]))),
        digest
    );

    // a blob cut in half on every other download: the pull resumes with Range requests
    proxy.set_plan(FaultPlan {
        reset_every: None,
        status_every: None,
        truncate_blob_every: Some(2),
    });
    let p4 = ctx.path("p4");
    let mut c = ocibuild(&ctx);
    c.arg("--root").arg(ctx.path("store4")).args([
        "pull",
        &dest,
        "--output",
        &format!("oci:{}:v1", p4.display()),
    ]);
    assert_eq!(stdout(tk::run_ok(&mut c)), digest);
    assert!(proxy.faults().truncations > 0);
    tk::run_ok(ocibuild(&ctx).args(["validate", &format!("oci:{}:v1", p4.display())]));

    // a blob truncated every time is detected, the pull fails, and nothing bad is stored
    proxy.set_plan(FaultPlan {
        reset_every: None,
        status_every: None,
        truncate_blob_every: Some(1),
    });
    let store2 = ctx.path("store2");
    let mut c = ocibuild(&ctx);
    c.arg("--root").arg(&store2).args([
        "pull",
        &dest,
        "--output",
        &format!("oci:{}:v1", ctx.path("p3").display()),
    ]);
    let out = c.output().unwrap();
    assert!(!out.status.success(), "a truncated blob must fail the pull");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("truncated") || err.contains("digest") || err.contains("size"),
        "{err}"
    );
    let blobs: Vec<_> = fs::read_dir(store2.join("blobs/sha256"))
        .map(|r| r.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    for b in &blobs {
        let data = fs::read(store2.join("blobs/sha256").join(b)).unwrap();
        assert_eq!(
            ocibuild_oci::Digest::of_bytes(&data).hex(),
            b.to_string_lossy(),
            "a stored blob does not match its name"
        );
    }
}

/// A push killed after its first blob leaves no tag behind; running it again completes.
#[test]
fn a_killed_push_leaves_no_partial_tag_and_a_rerun_completes() {
    use std::io::{BufRead, BufReader};
    let ctx = tk::TestContext::new();
    let reg = start_registry(&ctx, RegistryOptions::default());
    let layout = ctx.path("layout");
    let digest = hello_layout(&ctx, &layout, "v1", &[]);
    let src = format!("oci:{}:v1", layout.display());
    let dest = format!("docker://{}/killed:v1", reg.host);
    let mut child = ocibuild(&ctx)
        .args(["--progress", "json", "--jobs", "1", "push", &src, &dest])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    // wait for the first finished blob (byte progress comes before it), then kill
    let mut saw_bytes = false;
    loop {
        let line = lines.next().unwrap().unwrap();
        saw_bytes |= line.contains(r#""event":"bytes""#);
        if line.contains(r#""event":"blob""#) {
            break;
        }
    }
    assert!(saw_bytes, "byte progress events come before a blob is done");
    child.kill().unwrap();
    let _ = child.wait();
    let tags = Command::new(env!("CARGO_BIN_EXE_ocibuild"))
        .args(["tags", &format!("docker://{}/killed", reg.host)])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&tags.stdout).to_string();
    assert!(
        !listed.lines().any(|t| t == "v1"),
        "a partial push left the tag: {listed}"
    );
    assert_eq!(
        stdout(tk::run_ok(ocibuild(&ctx).args(["push", &src, &dest]))),
        digest
    );
    let pulled = ctx.path("pulled");
    tk::run_ok(ocibuild(&ctx).args([
        "pull",
        &dest,
        "--output",
        &format!("oci:{}:v1", pulled.display()),
    ]));
    tk::run_ok(ocibuild(&ctx).args(["validate", &format!("oci:{}:v1", pulled.display())]));
}

/// A blob larger than one chunk goes up in PATCH chunks; resets and 500s in the middle are
/// resumed from where the registry says the session stands.
#[test]
fn chunked_upload_resumes_through_faults() {
    let ctx = tk::TestContext::new();
    let reg = start_registry(&ctx, RegistryOptions::default());
    let data = ctx.path("data");
    fs::create_dir_all(&data).unwrap();
    // 40 MB that gzip cannot shrink (xorshift), so the layer blob spans three chunks
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut buf = Vec::with_capacity(40 << 20);
    while buf.len() < 40 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf.extend_from_slice(&x.to_le_bytes());
    }
    fs::write(data.join("random.bin"), &buf).unwrap();
    let layout = ctx.path("layout");
    let digest = stdout(tk::run_ok(
        ocibuild(&ctx)
            .arg("assemble")
            .arg("--layer")
            .arg(format!("{}:/data", data.display()))
            .arg("--output")
            .arg(format!("oci:{}:big", layout.display())),
    ));
    let proxy = start_fault_proxy(
        &reg.host,
        FaultPlan {
            reset_every: Some(7),
            status_every: Some((4, 500, None)),
            truncate_blob_every: None,
        },
    );
    let dest = format!("docker://{}/big:v1", proxy.host);
    let out = ocibuild(&ctx)
        .args([
            "-vv",
            "push",
            &format!("oci:{}:big", layout.display()),
            &dest,
        ])
        .output()
        .unwrap();
    if !out.status.success() {
        panic!(
            "push failed: {}\nproxy log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            proxy.log().join("\n")
        );
    }
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), digest);
    let f = proxy.faults();
    assert!(f.resets + f.statuses > 0, "{f:?}");
    // the registry holds exactly the right bytes: skopeo pulls and checks them
    skopeo(&[
        "copy",
        "-q",
        "--src-tls-verify=false",
        &format!("docker://{}/big:v1", reg.host),
        &format!("oci:{}:big", ctx.path("check").display()),
    ]);
    tk::run_ok(ocibuild(&ctx).args([
        "validate",
        &format!("oci:{}:big", ctx.path("check").display()),
    ]));
}

/// Pull-through mirrors: the mirror answers first; a non-exclusive mirror falls back to the
/// registry; an exclusive one never does, and the error names the mirror that was asked.
#[test]
fn registry_mirrors_exclusive_and_fallback() {
    let ctx = tk::TestContext::new();
    let origin = start_registry(&ctx, RegistryOptions::default());
    let mirror = start_registry(&ctx, RegistryOptions::default());
    let layout = ctx.path("layout");
    let digest = hello_layout(&ctx, &layout, "v1", &[]);
    let src = format!("oci:{}:v1", layout.display());
    tk::run_ok(ocibuild(&ctx).args([
        "push",
        &src,
        &format!("docker://{}/lib/in-mirror:v1", mirror.host),
    ]));
    tk::run_ok(ocibuild(&ctx).args([
        "push",
        &src,
        &format!("docker://{}/lib/only-origin:v1", origin.host),
    ]));
    // stop the origin from serving in-mirror: it never had it, so success proves the mirror served
    let flag = format!("{}={};exclusive", origin.host, mirror.host);
    let out = ctx.path("o1");
    let d = stdout(tk::run_ok(ocibuild(&ctx).args([
        "--registry-mirror",
        &flag,
        "pull",
        &format!("docker://{}/lib/in-mirror:v1", origin.host),
        "--output",
        &format!("oci:{}:v1", out.display()),
    ])));
    assert_eq!(d, digest);
    // exclusive: the origin is never asked
    let err = tk::run_fail(ocibuild(&ctx).args([
        "--registry-mirror",
        &flag,
        "pull",
        &format!("docker://{}/lib/only-origin:v1", origin.host),
        "--output",
        &format!("oci:{}:v1", ctx.path("o2").display()),
    ]));
    assert!(
        err.contains(&mirror.host) && err.contains("exclusive"),
        "{err}"
    );
    // not exclusive: falls back to the origin; also through the config file
    let cfg = ctx.path("registries.json");
    fs::write(
        &cfg,
        serde_json::to_vec(
            &json!({"mirrors": [{"registry": origin.host, "mirrors": [mirror.host]}]}),
        )
        .unwrap(),
    )
    .unwrap();
    let d = stdout(tk::run_ok(
        ocibuild(&ctx).arg("--registries-config").arg(&cfg).args([
            "pull",
            &format!("docker://{}/lib/only-origin:v1", origin.host),
            "--output",
            &format!("oci:{}:v1", ctx.path("o3").display()),
        ]),
    ));
    assert_eq!(d, digest);
}

/// Every file under `blobs/sha256` of a layout (or store) is named by the hash of its bytes,
/// and no temp file was left behind; returns the names.
fn blobs_match_their_names(dir: &Path) -> Vec<String> {
    let blobs = dir.join("blobs/sha256");
    let mut names = Vec::new();
    for e in fs::read_dir(&blobs).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        assert!(
            !name.starts_with('.'),
            "a temp file was left in {}: {name}",
            blobs.display()
        );
        let data = fs::read(e.path()).unwrap();
        assert_eq!(
            ocibuild_oci::Digest::of_bytes(&data).hex(),
            name,
            "a blob in {} does not match its name",
            blobs.display()
        );
        names.push(name);
    }
    names
}

/// The blob digests (hex) of a layout image: its manifest, config and layers.
fn image_blobs(dir: &Path, tag: &str) -> (String, Vec<String>) {
    let blob = |d: &str| -> Value {
        let hex = d.trim_start_matches("sha256:");
        serde_json::from_slice(&fs::read(dir.join("blobs/sha256").join(hex)).unwrap()).unwrap()
    };
    let index: Value = serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap()
        .clone();
    let m = blob(entry["digest"].as_str().unwrap());
    let layers = m["layers"]
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
    (m["config"]["digest"].as_str().unwrap().to_string(), layers)
}

/// Corrupt one byte in the middle of a blob as the registry stores it (filesystem driver): the
/// registry then serves wrong bytes under the right digest and size.
fn corrupt_registry_blob(reg: &Registry, hex: &str) {
    let p = reg
        .storage
        .join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data");
    let mut data = fs::read(&p).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0x5a;
    fs::write(&p, data).unwrap();
}

/// A registry serving corrupted bytes for a layer: the pull into a layout and a Dockerfile
/// `FROM` of it both fail naming the blob and the digest it should have had; the layout keeps
/// only what it held before (its index.json unchanged, no temp file, no unverified blob) and
/// the store gets nothing under that digest. A good pull writes the layout straight from the
/// download (the content store is not filled on the way) and passes `validate`.
#[test]
fn a_corrupted_blob_fails_pull_and_from_and_leaves_nothing_half_written() {
    let ctx = tk::TestContext::new();
    let reg = start_registry(&ctx, RegistryOptions::default());
    let layout = ctx.path("layout");
    let d1 = hello_layout(&ctx, &layout, "v1", &[]);
    let d2 = hello_layout(&ctx, &layout, "v2", &[]);
    for t in ["v1", "v2"] {
        tk::run_ok(ocibuild(&ctx).args([
            "push",
            &format!("oci:{}:{t}", layout.display()),
            &format!("docker://{}/corrupt:{t}", reg.host),
        ]));
    }
    let out = ctx.path("out");
    let pull_root = ctx.path("pull-root");
    let pull = |tag: &str| {
        let mut c = ocibuild(&ctx);
        c.arg("--root").arg(&pull_root).args([
            "pull",
            &format!("docker://{}/corrupt:{tag}", reg.host),
            "--output",
            &format!("oci:{}:{tag}", out.display()),
        ]);
        c
    };
    assert_eq!(stdout(tk::run_ok(&mut pull("v1"))), d1);
    tk::run_ok(ocibuild(&ctx).args(["validate", &format!("oci:{}:v1", out.display())]));
    assert!(
        blobs_match_their_names(&pull_root).is_empty(),
        "a pull into a layout goes straight to the layout, not through the store"
    );
    let index_before = fs::read(out.join("index.json")).unwrap();
    let blobs_before = blobs_match_their_names(&out);

    let (_, layers) = image_blobs(&layout, "v2");
    let bad = layers[0].clone();
    assert!(!blobs_before.contains(&bad), "v2 has a layer of its own");
    corrupt_registry_blob(&reg, &bad);
    let err = tk::run_fail(&mut pull("v2"));
    assert!(
        err.contains("does not match its digest") && err.contains(&bad),
        "the error names the blob and the digest mismatch: {err}"
    );
    assert_eq!(
        fs::read(out.join("index.json")).unwrap(),
        index_before,
        "a failed pull must not touch index.json"
    );
    let blobs_after = blobs_match_their_names(&out);
    assert!(!blobs_after.contains(&bad), "the corrupted blob was kept");
    tk::run_ok(ocibuild(&ctx).args(["validate", &format!("oci:{}:v1", out.display())]));

    // the same base in a Dockerfile: FROM streams it into the store, and refuses it
    let app = ctx.path("app");
    fs::create_dir_all(&app).unwrap();
    fs::write(
        app.join("Dockerfile"),
        format!("FROM {}/corrupt:v2\nCOPY notes.txt /notes.txt\n", reg.host),
    )
    .unwrap();
    fs::write(app.join("notes.txt"), "over a corrupted base\n").unwrap();
    let build_root = ctx.path("build-root");
    let mut c = ocibuild(&ctx);
    c.arg("--root")
        .arg(&build_root)
        .arg("build")
        .arg("--output")
        .arg(format!("oci:{}:b", ctx.path("built").display()))
        .arg(&app);
    let err = tk::run_fail(&mut c);
    assert!(
        err.contains("does not match its digest") && err.contains(&bad),
        "the build error names the blob and the digest mismatch: {err}"
    );
    let stored = blobs_match_their_names(&build_root);
    assert!(!stored.contains(&bad), "the store kept the corrupted blob");
    let tmp_left: Vec<_> = fs::read_dir(build_root.join("tmp"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().starts_with("blob-"))
        .collect();
    assert!(
        tmp_left.is_empty(),
        "temp blobs left in the store: {tmp_left:?}"
    );
    let _ = d2;
}

/// Rewrite image `tag` of a layout so its config's `rootfs.diff_ids[0]` is wrong while every
/// blob still matches its digest (what a broken or malicious image builder could publish).
fn break_diff_id(dir: &Path, tag: &str) {
    let path = |d: &str| {
        dir.join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let put = |v: &Value| -> (String, usize) {
        let bytes = serde_json::to_vec(v).unwrap();
        let d = ocibuild_oci::Digest::of_bytes(&bytes).to_string();
        fs::write(path(&d), &bytes).unwrap();
        (d, bytes.len())
    };
    let mut index: Value =
        serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    let entry = index["manifests"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap();
    let mut m: Value =
        serde_json::from_slice(&fs::read(path(entry["digest"].as_str().unwrap())).unwrap())
            .unwrap();
    let mut cfg: Value =
        serde_json::from_slice(&fs::read(path(m["config"]["digest"].as_str().unwrap())).unwrap())
            .unwrap();
    cfg["rootfs"]["diff_ids"][0] = json!(format!("sha256:{}", "0".repeat(64)));
    let (cd, cl) = put(&cfg);
    m["config"]["digest"] = json!(cd);
    m["config"]["size"] = json!(cl);
    let (md, ml) = put(&m);
    entry["digest"] = json!(md);
    entry["size"] = json!(ml);
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

/// A layer whose bytes match their digest but not the config's diff_id: the pull fails naming
/// `rootfs.diff_ids[0]`, and the layer never gets its name in the layout (it is checked while
/// it streams in, before the rename); a Dockerfile `FROM` of it fails the same way and the
/// content store never holds the layer.
#[test]
fn a_wrong_diff_id_fails_the_pull_before_the_layer_is_named() {
    let ctx = tk::TestContext::new();
    let reg = start_registry(&ctx, RegistryOptions::default());
    let layout = ctx.path("layout");
    hello_layout(&ctx, &layout, "v1", &[]);
    break_diff_id(&layout, "v1");
    let (_, layers) = image_blobs(&layout, "v1");
    // skopeo copies the blobs byte for byte, without looking at diff_ids
    skopeo(&[
        "copy",
        "-q",
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", layout.display()),
        &format!("docker://{}/diffid:v1", reg.host),
    ]);
    let out = ctx.path("out");
    let err = tk::run_fail(ocibuild(&ctx).arg("--root").arg(ctx.path("r")).args([
        "pull",
        &format!("docker://{}/diffid:v1", reg.host),
        "--output",
        &format!("oci:{}:v1", out.display()),
    ]));
    assert!(err.contains("rootfs.diff_ids[0]"), "{err}");
    assert!(
        !out.join("index.json").exists(),
        "a failed pull into a new layout must not write index.json"
    );
    let names = blobs_match_their_names(&out);
    assert!(
        !names.contains(&layers[0]),
        "the layer with the wrong diff_id was written under its name"
    );
    // the same base in a Dockerfile: FROM streams it into the store, and refuses it
    let app = ctx.path("app");
    fs::create_dir_all(&app).unwrap();
    fs::write(
        app.join("Dockerfile"),
        format!("FROM {}/diffid:v1\nLABEL base=broken\n", reg.host),
    )
    .unwrap();
    let root = ctx.path("from-root");
    let err = tk::run_fail(
        ocibuild(&ctx)
            .arg("--root")
            .arg(&root)
            .arg("build")
            .arg(&app),
    );
    assert!(err.contains("rootfs.diff_ids[0]"), "{err}");
    assert!(
        !blobs_match_their_names(&root).contains(&layers[0]),
        "the store kept the layer with the wrong diff_id"
    );
}

/// A pull killed while a big layer streams in leaves no blob that does not match its name and
/// no index.json naming a partial image; pulling again cleans up and completes.
#[test]
fn a_killed_pull_leaves_no_corrupt_layout_and_a_rerun_completes() {
    let ctx = tk::TestContext::new();
    let reg = start_registry(&ctx, RegistryOptions::default());
    let (digest, src) = big_random_image(&ctx, &reg, "killed-pull");
    let out = ctx.path("out");
    let dest = format!("oci:{}:big", out.display());
    let mut child = ocibuild(&ctx)
        .arg("--root")
        .arg(ctx.path("r"))
        .args([
            "--progress",
            "json",
            "--jobs",
            "1",
            "pull",
            &src,
            "--output",
            &dest,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    kill_on_first_bytes(&mut child);
    // whatever the kill interrupted: blobs are whole or absent (a temp file may remain);
    // index.json, if any, names the whole image
    for e in fs::read_dir(out.join("blobs/sha256")).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !name.starts_with(".tmp-") {
            let bytes = fs::read(e.path()).unwrap();
            assert_eq!(ocibuild_oci::Digest::of_bytes(&bytes).hex(), name);
        }
    }
    if out.join("index.json").exists() {
        tk::run_ok(ocibuild(&ctx).args(["validate", &dest]));
    }
    assert_eq!(
        stdout(tk::run_ok(
            ocibuild(&ctx)
                .arg("--root")
                .arg(ctx.path("r"))
                .args(["pull", &src, "--output", &dest])
        )),
        digest
    );
    blobs_match_their_names(&out);
    tk::run_ok(ocibuild(&ctx).args(["validate", &dest]));
}

/// A one-layer image of 48 MB that gzip cannot shrink (xorshift), so it takes a while to stream,
/// pushed to `reg` as `REPO:big`; returns its manifest digest and `docker://` reference.
fn big_random_image(ctx: &tk::TestContext, reg: &Registry, repo: &str) -> (String, String) {
    let data = ctx.path("data");
    fs::create_dir_all(&data).unwrap();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut buf = Vec::with_capacity(48 << 20);
    while buf.len() < 48 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf.extend_from_slice(&x.to_le_bytes());
    }
    fs::write(data.join("random.bin"), &buf).unwrap();
    let layout = ctx.path("layout");
    let digest = stdout(tk::run_ok(
        ocibuild(ctx)
            .arg("assemble")
            .arg("--layer")
            .arg(format!("{}:/data", data.display()))
            .arg("--output")
            .arg(format!("oci:{}:big", layout.display())),
    ));
    let src = format!("docker://{}/{repo}:big", reg.host);
    tk::run_ok(ocibuild(ctx).args(["push", &format!("oci:{}:big", layout.display()), &src]));
    (digest, src)
}

/// Kill a child run with `--progress json` as soon as it reports the first bytes of a blob
/// streaming in (so the kill lands mid-download, never before it starts).
fn kill_on_first_bytes(child: &mut std::process::Child) {
    use std::io::{BufRead, BufReader};
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    loop {
        match lines.next() {
            Some(Ok(line)) if line.contains(r#""event":"bytes""#) => break,
            Some(Ok(_)) => {}
            _ => panic!("the run ended before reporting any bytes"),
        }
    }
    child.kill().unwrap();
    let _ = child.wait();
}

/// A Dockerfile `FROM` of a registry base killed while its layer streams into the content store
/// leaves no blob that does not match its name and no layer mapping (the partial download is
/// only a temp file in the store's `tmp/`, which `cache prune` removes); the build run again
/// completes with the whole layer in the store.
#[test]
fn a_killed_from_pull_leaves_no_partial_blob_in_the_store() {
    let ctx = tk::TestContext::new();
    let reg = start_registry(&ctx, RegistryOptions::default());
    let (_, src) = big_random_image(&ctx, &reg, "killed-from");
    let app = ctx.path("app");
    fs::create_dir_all(&app).unwrap();
    let base = src.trim_start_matches("docker://");
    fs::write(
        app.join("Dockerfile"),
        format!("FROM {base}\nLABEL stage=killed\n"),
    )
    .unwrap();
    let root = ctx.path("from-root");
    let build = |json: bool| {
        let mut c = ocibuild(&ctx);
        c.arg("--root").arg(&root);
        if json {
            c.args(["--progress", "json", "--jobs", "1"]);
        }
        c.arg("build").arg(&app);
        c
    };
    let mut child = build(true)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    kill_on_first_bytes(&mut child);
    let (_, layers) = image_blobs(&ctx.path("layout"), "big");
    let stored = blobs_match_their_names(&root);
    assert!(
        !stored.contains(&layers[0]),
        "the layer was stored although its download was killed"
    );
    let mapped = fs::read_dir(root.join("layers"))
        .into_iter()
        .flatten()
        .count();
    assert_eq!(
        mapped, 0,
        "a layer mapping was recorded for a killed download"
    );
    tk::run_ok(&mut build(false));
    let stored = blobs_match_their_names(&root);
    assert!(stored.contains(&layers[0]), "the rerun stored the layer");
    // the killed run's temp file goes with a prune that keeps every blob
    tk::run_ok(ocibuild(&ctx).arg("--root").arg(&root).args([
        "cache",
        "prune",
        "--older-than",
        "3650d",
    ]));
    let tmp_left = fs::read_dir(root.join("tmp")).unwrap().count();
    assert_eq!(tmp_left, 0, "cache prune leaves no temp file behind");
    assert!(blobs_match_their_names(&root).contains(&layers[0]));
}

/// `registries[].ca` in the registries config: the CA is trusted for that registry (a relative
/// path is relative to the config file), not for another host name of it; a bad entry is a
/// clear error.
#[test]
fn registries_config_ca_per_registry() {
    let ctx = tk::TestContext::new();
    let reg = start_registry(
        &ctx,
        RegistryOptions {
            tls: true,
            ..Default::default()
        },
    );
    let layout = ctx.path("layout");
    let digest = hello_layout(&ctx, &layout, "v1", &[]);
    let host = reg.host.replace("127.0.0.1", "localhost");
    let cfg_dir = ctx.path("cfg");
    fs::create_dir_all(cfg_dir.join("certs")).unwrap();
    fs::copy(
        reg.ca_cert.as_ref().unwrap(),
        cfg_dir.join("certs/reg-ca.pem"),
    )
    .unwrap();
    let cfg = cfg_dir.join("registries.json");
    let write_cfg = |registry: &str, ca: &str| {
        fs::write(
            &cfg,
            serde_json::to_vec(&json!({"registries": [{"registry": registry, "ca": ca}]})).unwrap(),
        )
        .unwrap();
    };
    let src = format!("oci:{}:v1", layout.display());
    let dest = format!("docker://{host}/cfgca/app:v1");
    // the CA given for another name of the registry does not apply to this one
    write_cfg(&reg.host, "certs/reg-ca.pem");
    let err = tk::run_fail(
        ocibuild(&ctx)
            .arg("--registries-config")
            .arg(&cfg)
            .args(["push", &src, &dest]),
    );
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    // for this host it does, relative to the config file's directory
    write_cfg(&host, "certs/reg-ca.pem");
    let d = stdout(tk::run_ok(
        ocibuild(&ctx)
            .arg("--registries-config")
            .arg(&cfg)
            .args(["push", &src, &dest]),
    ));
    assert_eq!(d, digest);
    let pulled = ctx.path("pulled");
    tk::run_ok(ocibuild(&ctx).arg("--registries-config").arg(&cfg).args([
        "pull",
        &dest,
        "--output",
        &format!("oci:{}:v1", pulled.display()),
    ]));
    tk::run_ok(ocibuild(&ctx).args(["validate", &format!("oci:{}:v1", pulled.display())]));
    // a missing CA file names the file; a registry written as a repository is refused
    write_cfg(&host, "certs/missing.pem");
    let err = tk::run_fail(
        ocibuild(&ctx)
            .arg("--registries-config")
            .arg(&cfg)
            .args(["push", &src, &dest]),
    );
    assert!(err.contains("missing.pem"), "{err}");
    write_cfg(&format!("{host}/cfgca"), "certs/reg-ca.pem");
    let err = tk::run_fail(
        ocibuild(&ctx)
            .arg("--registries-config")
            .arg(&cfg)
            .args(["push", &src, &dest]),
    );
    assert!(
        err.contains("host[:port]") && err.contains("registries.json"),
        "{err}"
    );
}
