//! `ocibuild cache verify [--repair]` on a store filled by a real `assemble`, then broken three
//! ways: a corrupted blob, a dangling ref (a step record naming a blob the store lacks), a
//! truncated record. Exit codes: 0 clean, 3 broken (with the list), 1 could not run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::process::{Command, Output, Stdio};

use ocibuild_testkit as tk;
use serde_json::Value;

fn ocibuild(root: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ocibuild"));
    c.arg("--root")
        .arg(root)
        .args(["--progress", "plain"])
        .env_remove("OCIBUILD_LOG")
        .stdin(Stdio::null());
    c
}

fn run(c: &mut Command) -> (i32, String, String) {
    let o: Output = c.output().unwrap();
    (
        tk::exit_code(o.status),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn verify_finds_corruption_dangling_refs_and_truncated_records_and_repairs_them() {
    let ctx = tk::TestContext::new();
    let root = ctx.root_dir();
    let rootfs = ctx.path("rootfs");
    fs::create_dir_all(rootfs.join("bin")).unwrap();
    fs::copy(tk::busybox_static(), rootfs.join("bin/busybox")).unwrap();
    fs::set_permissions(
        rootfs.join("bin/busybox"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    symlink("busybox", rootfs.join("bin/sh")).unwrap();
    fs::write(rootfs.join("hello.txt"), "hello\n").unwrap();
    let layout = ctx.path("layout");
    tk::run_ok(
        ocibuild(&root)
            .arg("assemble")
            .arg("--layer")
            .arg(format!("{}:/", rootfs.display()))
            .arg("--output")
            .arg(format!("oci:{}:v1", layout.display())),
    );

    // a clean store
    let (c, out, err) = run(ocibuild(&root).args(["cache", "verify"]));
    assert_eq!(c, 0, "{out}{err}");
    assert!(out.contains("nothing broken"), "{out}");
    let (c, out, _) = run(ocibuild(&root).args(["cache", "verify", "--json"]));
    assert_eq!(c, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], true);
    let blobs = v["blobs"].as_u64().unwrap();
    assert!(blobs >= 1, "{out}");

    // break it
    let blob_dir = root.join("blobs/sha256");
    let victim = fs::read_dir(&blob_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = fs::read(&victim).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&victim, &bytes).unwrap();
    let df = root.join("engine/df");
    fs::create_dir_all(&df).unwrap();
    let missing = format!("sha256:{}", "ab".repeat(32));
    let record = format!(
        r#"{{"layer":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{missing}","size":5}},"sha256:{}"]}}"#,
        "cd".repeat(32)
    );
    fs::write(df.join(format!("{}.json", "11".repeat(32))), &record).unwrap();
    fs::write(
        df.join(format!("{}.json", "22".repeat(32))),
        &record[..record.len() / 3],
    )
    .unwrap();

    let (c, out, err) = run(ocibuild(&root).args(["cache", "verify"]));
    assert_eq!(c, 3, "{out}{err}");
    let victim_name = victim.file_name().unwrap().to_string_lossy().into_owned();
    for want in [
        format!("corrupt-blob: blobs/sha256/{victim_name}"),
        format!(
            "dangling-record: engine/df/{}.json (points to missing blob {missing})",
            "11".repeat(32)
        ),
        format!("unreadable-record: engine/df/{}.json", "22".repeat(32)),
        "cache verify --repair".to_string(),
    ] {
        assert!(out.contains(&want), "missing `{want}` in:\n{out}");
    }
    assert!(victim.exists(), "verify alone changes nothing");

    let (c, out, err) = run(ocibuild(&root).args(["cache", "verify", "--repair", "--json"]));
    assert_eq!(c, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let problems = v["problems"].as_array().unwrap();
    assert!(problems.len() >= 3, "{out}");
    assert!(problems.iter().all(|p| p["repaired"] == true), "{out}");
    assert!(!victim.exists());

    let (c, out, err) = run(ocibuild(&root).args(["cache", "verify"]));
    assert_eq!(c, 0, "after repair: {out}{err}");

    // could not run: the root is a file
    let not_a_dir = ctx.path("not-a-dir");
    fs::write(&not_a_dir, "x").unwrap();
    let (c, out, err) = run(ocibuild(&not_a_dir).args(["cache", "verify"]));
    assert_eq!(c, 1, "{out}{err}");
    assert!(err.contains("not-a-dir"), "{err}");
}
