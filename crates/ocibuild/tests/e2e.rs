//! End-to-end tests: drive the built `ocibuild` binary and check what it writes with independent
//! tools (skopeo, umoci, oci-image-tool, podman) and run the images with runc. A missing peer tool
//! fails the test with the package to install; nothing is skipped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use ocibuild_testkit as tk;
use serde_json::Value;

fn ocibuild(ctx: &tk::TestContext) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ocibuild"));
    c.arg("--root")
        .arg(ctx.path("store"))
        .arg("--progress")
        .arg("plain");
    c.env_remove("SOURCE_DATE_EPOCH");
    c
}

/// A rootfs with the static busybox as /bin/busybox and a few applets.
fn busybox_rootfs(dir: &Path) {
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).unwrap();
    fs::copy(tk::busybox_static(), bin.join("busybox")).unwrap();
    fs::set_permissions(bin.join("busybox"), fs::Permissions::from_mode(0o755)).unwrap();
    symlink("busybox", bin.join("sh")).unwrap();
    symlink("busybox", bin.join("cat")).unwrap();
    fs::create_dir_all(dir.join("etc")).unwrap();
    fs::write(dir.join("etc/greeting"), "hello from ocibuild\n").unwrap();
}

fn assemble_hello(ctx: &tk::TestContext, rootfs: &Path, extra: &[&str]) -> String {
    let mut c = ocibuild(ctx);
    c.arg("assemble")
        .arg("--layer")
        .arg(format!("{}:/", rootfs.display()))
        .args(["--entrypoint", r#"["/bin/busybox","cat","/etc/greeting"]"#])
        .args(["--env", "GREETING=hi", "--workdir", "/", "-t", "hello:v1"])
        .args(extra);
    let out = tk::run_ok(&mut c);
    let digest = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "stdout should be the manifest digest: {digest}"
    );
    digest
}

#[test]
fn every_output_format_passes_independent_validators() {
    let ctx = tk::TestContext::new();
    let rootfs = ctx.path("rootfs");
    busybox_rootfs(&rootfs);
    let layout = ctx.path("layout");
    let archive = ctx.path("hello.tar");
    let docker = ctx.path("hello-docker.tar");
    let meta = ctx.path("meta.json");
    let digest = assemble_hello(
        &ctx,
        &rootfs,
        &[
            "--output",
            &format!("oci:{}", layout.display()),
            "--output",
            &format!("oci-archive:{}", archive.display()),
            "--output",
            &format!("docker-archive:{}", docker.display()),
            "--metadata-file",
            meta.to_str().unwrap(),
        ],
    );

    // Metadata file
    let m: Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
    assert_eq!(m["containerimage.digest"], Value::String(digest.clone()));
    assert_eq!(m["layers"].as_array().unwrap().len(), 1);

    // OCI layout dir: umoci, oci-image-tool, skopeo
    let bundle = ctx.path("bundle");
    tk::umoci_unpack(&layout, "v1", &bundle);
    assert!(bundle.join("rootfs/bin/busybox").is_file());
    tk::oci_image_tool_validate(&layout, "v1");
    let raw = tk::skopeo_inspect(&format!("oci:{}:v1", layout.display()));
    assert_eq!(raw["layers"].as_array().unwrap().len(), 1);
    tk::skopeo_copy_to_layout(
        &format!("oci:{}:v1", layout.display()),
        &ctx.path("copy1"),
        "v1",
    );

    // oci-archive: skopeo
    tk::skopeo_inspect(&format!("oci-archive:{}:v1", archive.display()));
    tk::skopeo_copy_to_layout(
        &format!("oci-archive:{}:v1", archive.display()),
        &ctx.path("copy2"),
        "v1",
    );

    // docker-archive: skopeo and podman load
    tk::skopeo_inspect(&format!("docker-archive:{}", docker.display()));
    tk::skopeo_copy_to_layout(
        &format!("docker-archive:{}", docker.display()),
        &ctx.path("copy3"),
        "v1",
    );
    let names = tk::podman_load(&ctx, &docker);
    assert!(
        names.iter().any(|n| n.contains("hello:v1")),
        "podman loaded {names:?}"
    );

    // our own validator agrees on all three, and so does our reader of each format
    for r in [
        format!("oci:{}:v1", layout.display()),
        format!("oci-archive:{}:v1", archive.display()),
        format!("docker-archive:{}", docker.display()),
    ] {
        tk::run_ok(ocibuild(&ctx).args(["validate", &r]));
        let out = tk::run_ok(ocibuild(&ctx).args(["inspect", "--json", &r]));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["config"]["config"]["Entrypoint"][1], "cat", "{r}");
    }
    // the layout and the oci-archive carry the same manifest
    let out = tk::run_ok(ocibuild(&ctx).args([
        "inspect",
        "--json",
        &format!("oci-archive:{}:v1", archive.display()),
    ]));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["digest"], Value::String(digest));
}

#[test]
fn assembled_image_runs_under_runc() {
    let ctx = tk::TestContext::new();
    let rootfs = ctx.path("rootfs");
    busybox_rootfs(&rootfs);
    let layout = ctx.path("layout");
    assemble_hello(
        &ctx,
        &rootfs,
        &["--output", &format!("oci:{}", layout.display())],
    );
    let bundle = ctx.path("bundle");
    tk::umoci_unpack(&layout, "v1", &bundle);
    let (code, stdout, stderr) = tk::runc_run(&bundle, None);
    assert_eq!(code, 0, "runc failed: {stderr}");
    assert_eq!(stdout.trim(), "hello from ocibuild");

    // A second image on top of the first as its base: one more layer, env and args from the CLI.
    let app = ctx.path("app");
    fs::create_dir_all(&app).unwrap();
    fs::write(app.join("msg"), "second layer\n").unwrap();
    let layout2 = ctx.path("layout2");
    tk::run_ok(
        ocibuild(&ctx)
            .arg("assemble")
            .arg("--base")
            .arg(format!("oci:{}:v1", layout.display()))
            .arg("--layer")
            .arg(format!("{}:/app", app.display()))
            .args([
                "--entrypoint",
                "/bin/busybox cat /app/msg",
                "--user",
                "65532:65532",
            ])
            .arg("--output")
            .arg(format!("oci:{}:v2", layout2.display())),
    );
    let out = tk::run_ok(ocibuild(&ctx).args([
        "inspect",
        "--json",
        &format!("oci:{}:v2", layout2.display()),
    ]));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["layers"].as_array().unwrap().len(), 2);
    assert_eq!(v["config"]["config"]["User"], "65532:65532");
    assert!(
        v["config"]["config"]["Env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "GREETING=hi"),
        "env inherited from the base"
    );
    tk::oci_image_tool_validate(&layout2, "v2");
    let bundle2 = ctx.path("bundle2");
    tk::umoci_unpack(&layout2, "v2", &bundle2);
    let (code, stdout, stderr) = tk::runc_run(&bundle2, None);
    assert_eq!(code, 0, "runc failed: {stderr}");
    assert_eq!(stdout.trim(), "second layer");
}

fn write_tree(dir: &Path, mtime_secs: u64) {
    busybox_rootfs(dir);
    for i in 0..30 {
        let d = dir.join(format!("app/pkg{}/lib", i % 7));
        fs::create_dir_all(&d).unwrap();
        fs::write(
            d.join(format!("f{i}.js")),
            format!("module.exports = {i};\n").repeat(i + 1),
        )
        .unwrap();
    }
    fs::write(dir.join("app/run.sh"), "#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(dir.join("app/run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime_secs);
    for e in walk(dir) {
        if !e.is_symlink() {
            let f = fs::File::options().read(true).open(&e).unwrap();
            f.set_modified(t).unwrap();
        }
    }
}

fn set_umask(mask: u32) -> u32 {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask)).bits()
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            fs::copy(e.path(), dest).unwrap();
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() && !p.is_symlink() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

#[test]
fn same_inputs_give_the_same_digest() {
    let a = tk::TestContext::new();
    let b = tk::TestContext::new();
    // Different umask while the trees are written, different mtimes, different temp dirs,
    // different stores: the digest must not change.
    let old = set_umask(0o022);
    write_tree(&a.path("src"), 1_600_000_000);
    set_umask(0o002);
    write_tree(&b.path("other/place/src"), 1_700_000_000);
    set_umask(old);
    let run = |ctx: &tk::TestContext, src: &Path| {
        let out = ctx.path("out");
        let d = assemble_hello(
            ctx,
            src,
            &["--output", &format!("oci-archive:{}", out.display())],
        );
        (d, fs::read(&out).unwrap())
    };
    let (da, ta) = run(&a, &a.path("src"));
    let (db, tb) = run(&b, &b.path("other/place/src"));
    assert_eq!(da, db, "manifest digests differ");
    assert!(ta == tb, "the oci-archive files differ byte for byte");

    // SOURCE_DATE_EPOCH changes `created` and therefore the digest, deterministically.
    let mut c = ocibuild(&a);
    c.env("SOURCE_DATE_EPOCH", "1700000000")
        .arg("assemble")
        .arg("--layer")
        .arg(format!("{}:/", a.path("src").display()));
    let d1 = String::from_utf8(tk::run_ok(&mut c).stdout).unwrap();
    let d2 = String::from_utf8(tk::run_ok(&mut c).stdout).unwrap();
    assert_eq!(d1, d2);
    assert_ne!(d1.trim(), da);
}

#[test]
fn unchanged_layers_are_not_recompressed_and_cache_can_be_pruned() {
    let ctx = tk::TestContext::new();
    let rootfs = ctx.path("rootfs");
    busybox_rootfs(&rootfs);
    let run = || {
        let out = tk::run_ok(
            ocibuild(&ctx)
                .args(["--progress", "json", "assemble", "--layer"])
                .arg(format!("{}:/", rootfs.display())),
        );
        String::from_utf8(out.stderr).unwrap()
    };
    let first = run();
    assert!(first.contains(r#""reused":false"#), "{first}");
    let second = run();
    assert!(second.contains(r#""reused":true"#), "{second}");
    // zstd is a different compressed blob of the same diff_id
    let out = tk::run_ok(
        ocibuild(&ctx)
            .args([
                "--progress",
                "json",
                "assemble",
                "--compression",
                "zstd",
                "--layer",
            ])
            .arg(format!("{}:/", rootfs.display())),
    );
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains(r#""reused":false"#)
    );

    let du: Value =
        serde_json::from_slice(&tk::run_ok(ocibuild(&ctx).args(["cache", "du", "--json"])).stdout)
            .unwrap();
    assert!(du["usage"]["blobs"].as_u64().unwrap() >= 4, "{du}");
    let pr: Value = serde_json::from_slice(
        &tk::run_ok(ocibuild(&ctx).args(["cache", "prune", "--older-than", "7d", "--json"])).stdout,
    )
    .unwrap();
    assert_eq!(pr["pruned"]["removed_blobs"], 0, "nothing is a week old");
    let pr: Value = serde_json::from_slice(
        &tk::run_ok(ocibuild(&ctx).args(["cache", "prune", "--keep-storage", "0", "--json"]))
            .stdout,
    )
    .unwrap();
    assert!(pr["pruned"]["removed_blobs"].as_u64().unwrap() >= 4);
    let du: Value =
        serde_json::from_slice(&tk::run_ok(ocibuild(&ctx).args(["cache", "du", "--json"])).stdout)
            .unwrap();
    assert_eq!(du["usage"]["blobs"], 0);
}

/// Break a copy of a valid layout in one way, and check `validate` exits 1 naming the defect.
#[test]
fn validate_rejects_defects_with_exit_code_1() {
    let ctx = tk::TestContext::new();
    let rootfs = ctx.path("rootfs");
    busybox_rootfs(&rootfs);
    let layout = ctx.path("good");
    assemble_hello(
        &ctx,
        &rootfs,
        &["--output", &format!("oci:{}", layout.display())],
    );
    tk::run_ok(ocibuild(&ctx).args(["validate", &format!("oci:{}:v1", layout.display())]));
    let out = tk::run_ok(ocibuild(&ctx).args([
        "inspect",
        "--json",
        &format!("oci:{}:v1", layout.display()),
    ]));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let layer = v["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();

    type Mutation<'a> = Box<dyn Fn(&Path) + 'a>;
    let cases: Vec<(&str, Mutation, &str)> = vec![
        (
            "corrupt layer",
            Box::new(|d: &Path| {
                let p = d.join("blobs/sha256").join(&layer);
                let mut b = fs::read(&p).unwrap();
                let n = b.len() / 2;
                b[n] ^= 0xff;
                fs::write(&p, b).unwrap();
            }),
            "digest",
        ),
        (
            "missing layer",
            Box::new(|d: &Path| fs::remove_file(d.join("blobs/sha256").join(&layer)).unwrap()),
            "missing",
        ),
        (
            "truncated layer",
            Box::new(|d: &Path| {
                let p = d.join("blobs/sha256").join(&layer);
                let b = fs::read(&p).unwrap();
                fs::write(&p, &b[..b.len() - 1]).unwrap();
            }),
            "size",
        ),
    ];
    for (name, mutate, expect) in cases {
        let broken = ctx.path(format!("broken-{}", name.replace(' ', "-")));
        copy_dir(&layout, &broken);
        mutate(&broken);
        let mut c = ocibuild(&ctx);
        c.args(["validate", &format!("oci:{}:v1", broken.display())]);
        let out = c.output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{name}: validate should exit 1");
        let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
        assert!(
            err.contains(expect),
            "{name}: stderr should mention `{expect}`: {err}"
        );
    }
}

#[test]
fn usage_errors_are_clear() {
    let ctx = tk::TestContext::new();
    // clap usage error: exit 2
    let out = ocibuild(&ctx)
        .args(["assemble", "--compression", "brotli"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // a file as a layer
    fs::write(ctx.path("file"), "x").unwrap();
    let err = tk::run_fail(ocibuild(&ctx).args([
        "assemble",
        "--layer",
        &ctx.path("file").display().to_string(),
    ]));
    assert!(err.contains("not a directory"), "{err}");
    // missing tag in a layout
    let rootfs = ctx.path("rootfs");
    busybox_rootfs(&rootfs);
    let layout = ctx.path("l");
    assemble_hello(
        &ctx,
        &rootfs,
        &["--output", &format!("oci:{}", layout.display())],
    );
    let err =
        tk::run_fail(ocibuild(&ctx).args(["inspect", &format!("oci:{}:nope", layout.display())]));
    assert!(
        err.contains("nope") && err.contains("v1"),
        "should name the missing tag and the available ones: {err}"
    );
    // a bare name without a transport
    let err = tk::run_fail(ocibuild(&ctx).args(["inspect", "hello"]));
    assert!(err.contains("oci:") || err.contains("docker://"), "{err}");
    // a socket in a layer dir
    let sockdir = ctx.path("sock");
    fs::create_dir_all(&sockdir).unwrap();
    let _l = std::os::unix::net::UnixListener::bind(sockdir.join("s.sock")).unwrap();
    let err =
        tk::run_fail(ocibuild(&ctx).args(["assemble", "--layer", &sockdir.display().to_string()]));
    assert!(err.contains("s.sock"), "should name the socket: {err}");
}

/// Several ocibuild processes share one store and one output layout at once: every run
/// succeeds, the layout holds every tag, and it validates.
#[test]
fn concurrent_processes_share_a_store_and_a_layout() {
    let ctx = tk::TestContext::new();
    let rootfs = ctx.path("rootfs");
    busybox_rootfs(&rootfs);
    let layout = ctx.path("layout");
    let children: Vec<_> = (0..4)
        .map(|i| {
            let app = ctx.path(format!("app{i}"));
            fs::create_dir_all(&app).unwrap();
            fs::write(app.join("id"), format!("{i}\n")).unwrap();
            ocibuild(&ctx)
                .arg("assemble")
                .arg("--layer")
                .arg(format!("{}:/", rootfs.display()))
                .arg("--layer")
                .arg(format!("{}:/app", app.display()))
                .arg("--output")
                .arg(format!("oci:{}:t{i}", layout.display()))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for i in 0..4 {
        tk::run_ok(ocibuild(&ctx).args(["validate", &format!("oci:{}:t{i}", layout.display())]));
    }
    let index: Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 4);
    // umoci reads the shared layout directly; oci-image-tool 1.0.0-rc1 reports "descriptor
    // retrieved by refs is not unique" for any layout with three or more tags (skopeo's too), so
    // it checks a one-tag copy.
    tk::umoci_unpack(&layout, "t3", &ctx.path("bundle"));
    tk::skopeo_copy_to_layout(
        &format!("oci:{}:t3", layout.display()),
        &ctx.path("single"),
        "t3",
    );
    tk::oci_image_tool_validate(&ctx.path("single"), "t3");
}
