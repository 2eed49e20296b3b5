//! Where a Dockerfile's stages and copies come from: `FROM` a registry reference (pulled from a
//! docker-registry on loopback through the registry client), `FROM` a
//! `--build-context NAME=oci-layout://DIR:TAG`, and `COPY --from` a directory build context.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use ocibuild_testkit::registry::{RegistryOptions, start_registry};
use ocibuild_testkit::{TestContext, run_ok, run_ok_stdout, umoci_unpack};

fn cache() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("ocibuild-build-tests-store")
        .join("debian");
    fs::create_dir_all(&d).unwrap();
    d
}

fn ocibuild(root: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ocibuild"));
    c.arg("--root")
        .arg(root)
        .args(["--progress", "plain"])
        .env_remove("SOURCE_DATE_EPOCH");
    c
}

#[test]
fn from_a_registry_a_layout_context_and_copy_from_a_dir_context() {
    let ctx = TestContext::new();
    let root = ctx.tmp_dir("root");
    let base = ctx.path("build-base.tar");
    run_ok(
        ocibuild(&root)
            .args(["base", "build", "--profile", "build-base", "--cache-dir"])
            .arg(cache())
            .arg("--output")
            .arg(format!("oci-archive:{}", base.display())),
    );
    // the same base in a registry and in an OCI layout
    let peer = start_registry(&ctx, RegistryOptions::default());
    run_ok(ocibuild(&root).args([
        "copy",
        &format!("oci-archive:{}", base.display()),
        &format!("docker://{}/bases/build-base:1", peer.host),
    ]));
    let layout = ctx.path("layout");
    run_ok(ocibuild(&root).args([
        "copy",
        &format!("oci-archive:{}", base.display()),
        &format!("oci:{}:b", layout.display()),
    ]));
    let extra = ctx.tmp_dir("extra");
    fs::write(extra.join("extra.txt"), "from the dir context\n").unwrap();
    let app = ctx.tmp_dir("app");
    fs::write(
        app.join("Dockerfile"),
        format!(
            "FROM {}/bases/build-base:1 AS reg\n\
             RUN echo from the registry base > /reg.txt\n\
             FROM layoutbase\n\
             COPY --from=extra extra.txt /extra.txt\n\
             COPY --from=reg /reg.txt /reg.txt\n\
             RUN cat /extra.txt /reg.txt > /both.txt\n",
            peer.host
        ),
    )
    .unwrap();
    let out = ctx.path("out");
    // a fresh store: the registry base must be pulled
    let fresh = ctx.tmp_dir("fresh-root");
    let digest = run_ok_stdout(
        ocibuild(&fresh)
            .arg("build")
            .arg("--build-context")
            .arg(format!("layoutbase=oci-layout://{}:b", layout.display()))
            .arg("--build-context")
            .arg(format!("extra={}", extra.display()))
            .arg("--output")
            .arg(format!("oci:{}:t", out.display()))
            .arg(&app),
    );
    assert!(digest.trim().starts_with("sha256:"), "{digest}");
    let bundle = ctx.path("bundle");
    let rootfs = umoci_unpack(&out, "t", &bundle);
    assert_eq!(
        fs::read_to_string(rootfs.join("both.txt")).unwrap(),
        "from the dir context\nfrom the registry base\n"
    );
    // --pull never finds the pulled base in this store; in an empty one it is a clear error
    run_ok(
        ocibuild(&fresh)
            .args(["build", "--pull", "never", "--no-cache"])
            .arg("--build-context")
            .arg(format!("layoutbase=oci-layout://{}:b", layout.display()))
            .arg("--build-context")
            .arg(format!("extra={}", extra.display()))
            .arg(&app),
    );
    let empty = ctx.tmp_dir("empty-root");
    let o = ocibuild(&empty)
        .args(["build", "--pull", "never"])
        .arg("--build-context")
        .arg(format!("layoutbase=oci-layout://{}:b", layout.display()))
        .arg("--build-context")
        .arg(format!("extra={}", extra.display()))
        .arg(&app)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains("--pull never") && err.contains("Dockerfile:1"),
        "{err}"
    );
}

/// A loopback HTTP server (a test fixture) answering every GET with `body`.
fn serve(body: &'static [u8]) -> u16 {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(body);
        }
    });
    port
}

#[test]
fn add_downloads_a_url_and_checks_its_checksum() {
    use sha2::Digest as _;
    use std::os::unix::fs::PermissionsExt;
    const BODY: &[u8] = b"payload from the web\n";
    let port = serve(BODY);
    let ctx = TestContext::new();
    let root = ctx.tmp_dir("root");
    let sum = hex::encode(sha2::Sha256::digest(BODY));
    let app = ctx.tmp_dir("app");
    let build = |dockerfile: &str, out: &std::path::Path| {
        fs::write(app.join("Dockerfile"), dockerfile).unwrap();
        let mut c = ocibuild(&root);
        c.arg("build")
            .arg("--output")
            .arg(format!("oci:{}:t", out.display()))
            .arg(&app);
        for v in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "http_proxy",
            "https_proxy",
            "ALL_PROXY",
            "all_proxy",
        ] {
            c.env_remove(v);
        }
        c.output().unwrap()
    };
    let out = ctx.path("out");
    let o = build(
        &format!(
            "FROM scratch\n\
             ADD --checksum=sha256:{sum} http://127.0.0.1:{port}/dl/payload.txt /files/\n\
             ADD http://127.0.0.1:{port}/dl/payload.txt /files/renamed.txt\n"
        ),
        &out,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rootfs = umoci_unpack(&out, "t", &ctx.path("bundle"));
    let f = rootfs.join("files/payload.txt");
    assert_eq!(fs::read(&f).unwrap(), BODY);
    // docker gives downloaded files mode 0600
    assert_eq!(
        fs::metadata(&f).unwrap().permissions().mode() & 0o7777,
        0o600
    );
    assert_eq!(fs::read(rootfs.join("files/renamed.txt")).unwrap(), BODY);
    // a wrong checksum fails, naming it
    let o = build(
        &format!(
            "FROM scratch\nADD --checksum=sha256:{} http://127.0.0.1:{port}/x /x\n",
            "0".repeat(64)
        ),
        &ctx.path("out2"),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("checksum") && err.contains("Dockerfile:2"),
        "{err}"
    );
}
