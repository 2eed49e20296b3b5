//! The testkit against the real peer tools: a tiny busybox image made with umoci alone (so these
//! tests do not depend on ocibuild), checked by every validator and run with runc and podman.
//! umoci insert writes layer tars without end-of-archive blocks; every peer here accepts them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::Command;

use ocibuild_testkit as tk;

/// An OCI layout `DIR` with tag `v1`: `/bin/busybox` (static) and nothing else, entrypoint
/// `/bin/busybox echo from-config`.
fn busybox_layout(ctx: &tk::TestContext) -> PathBuf {
    let layout = ctx.path("layout");
    let umoci = tk::require_tool("umoci", "umoci");
    let image = format!("{}:v1", layout.display());
    tk::run_ok(Command::new(&umoci).args(["init", "--layout"]).arg(&layout));
    tk::run_ok(Command::new(&umoci).args(["new", "--image", &image]));
    tk::run_ok(
        Command::new(&umoci)
            .args(["insert", "--image", &image])
            .arg(tk::busybox_static())
            .arg("/bin/busybox"),
    );
    tk::run_ok(Command::new(&umoci).args([
        "config",
        "--image",
        &image,
        "--config.entrypoint",
        "/bin/busybox",
        "--config.cmd",
        "echo",
        "--config.cmd",
        "from-config",
    ]));
    tk::run_ok(Command::new(&umoci).args(["gc", "--layout"]).arg(&layout));
    layout
}

fn panic_message(f: impl FnOnce()) -> String {
    let err = catch_unwind(AssertUnwindSafe(f)).expect_err("should have panicked");
    err.downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn runc_runs_busybox_from_a_umoci_bundle() {
    let ctx = tk::TestContext::new();
    let layout = busybox_layout(&ctx);
    let bundle = ctx.path("bundle");
    let rootfs = tk::umoci_unpack(&layout, "v1", &bundle);
    assert!(rootfs.join("bin/busybox").is_file());

    let (code, stdout, stderr) = tk::runc_run(&bundle, Some(&["/bin/busybox", "echo", "hi"]));
    assert_eq!((code, stdout.as_str()), (0, "hi\n"), "stderr: {stderr}");

    // exit codes and both streams come back
    let script = "echo out; echo err >&2; exit 7";
    let (code, stdout, stderr) = tk::runc_run(&bundle, Some(&["/bin/busybox", "sh", "-c", script]));
    assert_eq!(
        (code, stdout.as_str(), stderr.as_str()),
        (7, "out\n", "err\n")
    );

    // stdin is empty, not the test's
    let (code, stdout, _) = tk::runc_run(&bundle, Some(&["/bin/busybox", "wc", "-c"]));
    assert_eq!((code, stdout.trim()), (0, "0"));

    // without an override, the image's entrypoint + cmd run (after the edits above, in a fresh
    // bundle)
    let bundle2 = ctx.path("bundle2");
    tk::umoci_unpack(&layout, "v1", &bundle2);
    let (code, stdout, stderr) = tk::runc_run(&bundle2, None);
    assert_eq!(
        (code, stdout.as_str()),
        (0, "from-config\n"),
        "stderr: {stderr}"
    );

    // a failure of runc itself (no such binary in the image) is a non-zero exit with a message
    let (code, _, stderr) = tk::runc_run(&bundle, Some(&["/nope"]));
    assert_ne!(code, 0);
    assert!(stderr.contains("/nope"), "{stderr}");
}

#[test]
fn validators_accept_a_good_layout_and_every_transport() {
    let ctx = tk::TestContext::new();
    let layout = busybox_layout(&ctx);
    let oci = format!("oci:{}:v1", layout.display());

    tk::oci_image_tool_validate(&layout, "v1");
    let raw = tk::validate_layout_with_peers(&ctx, &layout, "v1");
    assert_eq!(raw["schemaVersion"], 2);
    assert_eq!(raw["layers"].as_array().unwrap().len(), 1);
    let full = tk::skopeo_inspect_full(&oci);
    assert_eq!(full["Layers"].as_array().unwrap().len(), 1);
    let config = tk::skopeo_inspect_config(&oci);
    assert_eq!(config["config"]["Entrypoint"][0], "/bin/busybox");

    // oci-archive and docker-archive, written by skopeo, read back by skopeo
    let archive = ctx.path("img.tar");
    let docker = ctx.path("docker.tar");
    tk::skopeo_copy(&oci, &format!("oci-archive:{}:v1", archive.display()));
    tk::skopeo_copy(
        &oci,
        &format!("docker-archive:{}:hello:v1", docker.display()),
    );
    for (src, dest) in [
        (
            format!("oci-archive:{}:v1", archive.display()),
            "from-archive",
        ),
        (
            format!("docker-archive:{}", docker.display()),
            "from-docker",
        ),
        (
            format!("docker-archive:{}:hello:v1", docker.display()),
            "from-docker-named",
        ),
        (oci.clone(), "from-oci"),
    ] {
        tk::skopeo_inspect(&src);
        let bundle = ctx.path(format!("{dest}-bundle"));
        let dest = ctx.path(dest);
        tk::skopeo_copy_to_layout(&src, &dest, "copied");
        tk::umoci_unpack(&dest, "copied", &bundle);
    }

    // podman loads the docker archive into a throw-away store and runs it
    let names = tk::podman_load(&ctx, &docker);
    assert_eq!(names, ["docker.io/library/hello:v1"]);
    let (code, stdout, stderr) = tk::podman_run(&ctx, "hello:v1", &[]);
    assert_eq!(
        (code, stdout.as_str()),
        (0, "from-config\n"),
        "stderr: {stderr}"
    );
    let (code, stdout, stderr) = tk::podman_run(
        &ctx,
        &format!("oci:{}:v1", layout.display()),
        &["sh", "-c", "exit 5"],
    );
    assert_eq!(code, 5, "stdout: {stdout}\nstderr: {stderr}");
}

#[test]
fn validators_fail_loudly_with_the_tools_output() {
    let ctx = tk::TestContext::new();
    let layout = busybox_layout(&ctx);

    let msg = panic_message(|| tk::oci_image_tool_validate(&layout, "nope"));
    assert!(
        msg.contains("oci-image-tool validate --type image --ref name=nope"),
        "{msg}"
    );
    assert!(
        msg.contains("--- stderr ---") && msg.contains("name=nope"),
        "{msg}"
    );

    let msg = panic_message(|| {
        tk::umoci_unpack(&layout, "nope", &ctx.path("b"));
    });
    assert!(
        msg.contains("umoci raw unpack") && msg.contains("nope"),
        "{msg}"
    );

    let file = ctx.path("file.tar");
    std::fs::write(&file, "").unwrap();
    let msg = panic_message(|| tk::oci_image_tool_validate(&file, "v1"));
    assert!(msg.contains("only validates layout directories"), "{msg}");

    let msg = panic_message(|| {
        tk::skopeo_inspect(&format!("oci:{}:nope", layout.display()));
    });
    assert!(msg.contains("skopeo inspect --raw oci:"), "{msg}");

    // a corrupted blob: umoci refuses it
    let blobs = layout.join("blobs/sha256");
    let layer = std::fs::read_dir(&blobs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    corrupt(&layer);
    let msg = panic_message(|| {
        tk::umoci_unpack(&layout, "v1", &ctx.path("b2"));
    });
    assert!(msg.contains("command failed"), "{msg}");
}

fn corrupt(p: &Path) {
    let mut bytes = std::fs::read(p).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(p, bytes).unwrap();
}
