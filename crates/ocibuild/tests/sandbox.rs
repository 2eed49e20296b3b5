//! `ocibuild run`: the same step in every isolation tier, through the built binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::symlink;
use std::process::Command;

use ocibuild_testkit as tk;

fn rootfs(ctx: &tk::TestContext) -> std::path::PathBuf {
    let r = ctx.path("rootfs");
    fs::create_dir_all(r.join("bin")).unwrap();
    fs::copy(tk::busybox_static(), r.join("bin/busybox")).unwrap();
    for a in ["sh", "id", "cat", "ls", "echo", "test"] {
        symlink("busybox", r.join("bin").join(a)).unwrap();
    }
    r
}

#[test]
fn the_same_step_runs_in_every_tier() {
    let ctx = tk::TestContext::new();
    let root = rootfs(&ctx);
    let marker = ctx.path("host-marker");
    fs::write(&marker, "host secret").unwrap();
    let script = format!(
        "test ! -e {m} || exit 9; id -u > /who; echo built > /artifact; test $(ls /proc | grep -c '^[0-9]') -lt 10 || exit 8; exit 7",
        m = marker.display()
    );
    for tier in ["userns", "chroot"] {
        let upper = ctx.path(format!("upper-{tier}"));
        let out = Command::new(env!("CARGO_BIN_EXE_ocibuild"))
            .args([
                "--progress",
                "plain",
                "run",
                "--isolation",
                tier,
                "--rootfs",
            ])
            .arg(&root)
            .arg("--upper")
            .arg(&upper)
            .args(["--", "/bin/sh", "-c", &script])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(7), "{tier}: {err}");
        assert!(
            err.contains(&format!("running in the {tier} tier")),
            "{err}"
        );
        assert_eq!(
            fs::read_to_string(upper.join("artifact")).unwrap(),
            "built\n",
            "{tier}: changes land in --upper"
        );
        assert_eq!(fs::read_to_string(upper.join("who")).unwrap(), "0\n");
        assert!(
            !root.join("artifact").exists(),
            "{tier}: the rootfs is never modified"
        );
    }
    // host: no isolation, said loudly; the exit status still comes back
    let out = Command::new(env!("CARGO_BIN_EXE_ocibuild"))
        .args([
            "--progress",
            "plain",
            "run",
            "--isolation",
            "host",
            "--rootfs",
        ])
        .arg(&root)
        .args(["--", "/bin/sh", "-c", "exit 5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no isolation"));
}

#[test]
fn a_timeout_kills_the_step() {
    let ctx = tk::TestContext::new();
    let root = rootfs(&ctx);
    let out = Command::new(env!("CARGO_BIN_EXE_ocibuild"))
        .args(["run", "--timeout", "1", "--rootfs"])
        .arg(&root)
        .args(["--", "/bin/busybox", "sleep", "60"])
        .output()
        .unwrap();
    // as `run --help` promises: 128 + the signal (SIGKILL)
    assert_eq!(out.status.code(), Some(128 + 9));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("killed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// As root, the userns tier maps a full id range (identity), so a step can run as another user
/// and what it writes keeps that owner.
#[test]
fn userns_tier_runs_steps_as_other_users() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    assert!(tk::is_root(), "this test needs root (CI runs as root)");
    let ctx = tk::TestContext::new();
    let root = rootfs(&ctx);
    fs::create_dir_all(root.join("work")).unwrap();
    fs::set_permissions(root.join("work"), fs::Permissions::from_mode(0o777)).unwrap();
    let upper = ctx.path("upper");
    let out = Command::new(env!("CARGO_BIN_EXE_ocibuild"))
        .args([
            "run",
            "--isolation",
            "userns",
            "--user",
            "1000:1000",
            "--rootfs",
        ])
        .arg(&root)
        .arg("--upper")
        .arg(&upper)
        .args(["--", "/bin/sh", "-c", "id -u > /work/who"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        fs::read_to_string(upper.join("work/who")).unwrap(),
        "1000\n"
    );
    assert_eq!(fs::metadata(upper.join("work/who")).unwrap().uid(), 1000);
}

/// A run killed before its cleanup leaves a state dir; the next run beside it removes it.
#[test]
fn state_left_by_a_killed_run_is_swept() {
    let ctx = tk::TestContext::new();
    let root = rootfs(&ctx);
    let stale = ctx.path("work/.ocibuild-sandbox-999999999-abcdef");
    fs::create_dir_all(stale.join("work")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ocibuild"))
        .args(["run", "--rootfs"])
        .arg(&root)
        .arg("--upper")
        .arg(ctx.path("work/upper"))
        .args(["--", "/bin/sh", "-c", "true"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stale.exists(), "the stale state dir was not removed");
    let left: Vec<_> = fs::read_dir(ctx.path("work"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        left,
        vec![std::ffi::OsString::from("upper")],
        "only the upper dir remains"
    );
}
