//! Merged-/usr bases (issue #15): Debian, Ubuntu and distroless images have `/bin`, `/sbin`,
//! `/lib` as symlinks into `/usr`. COPY, ADD, WORKDIR, `COPY --parents` and `RUN --mount`
//! destinations resolve those links inside the stage's root, so nothing lands in a `bin/`
//! directory that would replace the `bin -> usr/bin` link when the layers are applied.
//!
//! - the corpus `testdata/dockerfiles/merged-usr/*.Dockerfile` (context in `merged-usr/context`,
//!   plus a static busybox): each Dockerfile built by ocibuild and by buildah from the same two
//!   bases made by `ocibuild base build` (`static:nonroot`, a distroless base, as `DISTROLESS`;
//!   `build-base`, with a shell, as `DEBIAN`), both unpacked with umoci and compared (paths,
//!   types, modes, owners, contents, symlink targets, hardlinks; never timestamps); both images
//!   run under runc and print what the Dockerfile's `# expect:` says; ocibuild's image passes
//!   `ocibuild validate --strict` without a warning (except the case whose RUN replaces a link
//!   itself). The harness is `ocibuild_testkit::equality`; bases are built once, the cases run on
//!   three threads.
//! - `ocibuild validate --strict` warns about a layer that puts a directory over a lower layer's
//!   symlink (made here with `ocibuild assemble`, which writes layers as given).
//!
//! Needs root (buildah, runc, umoci's owners) and the peer tools; a missing one fails the test
//! with the package to install.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use ocibuild_testkit::buildah::Buildah;
use ocibuild_testkit::equality::{Builders, base_archive, compare_case, read_corpus, run_parallel};
use ocibuild_testkit::{TestContext, busybox_static, run, run_ok};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/dockerfiles/merged-usr")
        .canonicalize()
        .unwrap()
}

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ocibuild"))
}

/// The content store and package cache shared with the other build tests (dockerfile.rs).
fn shared_store() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ocibuild-build-tests-store")
}

fn base(profile: &str) -> PathBuf {
    let t = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let cache = t.join("ocibuild-build-tests-store").join("debian");
    fs::create_dir_all(&cache).unwrap();
    base_archive(
        &bin(),
        &shared_store(),
        &cache,
        &t.join("dockerfile-bases"),
        profile,
        &[],
    )
}

fn ocibuild(root: &Path) -> Command {
    let mut c = Command::new(bin());
    c.arg("--root")
        .arg(root)
        .args(["--progress", "plain"])
        .env_remove("SOURCE_DATE_EPOCH")
        .stdin(Stdio::null());
    c
}

/// A copy of `src` at `dest` with modes git cannot carry normalised (files 0644, or 0755 when
/// executable in the checkout; directories 0755), symlinks kept as links.
fn copy_context(src: &Path, dest: &Path) {
    fs::create_dir_all(dest).unwrap();
    fs::set_permissions(dest, fs::Permissions::from_mode(0o755)).unwrap();
    for e in fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let (from, to) = (e.path(), dest.join(e.file_name()));
        let ty = e.file_type().unwrap();
        if ty.is_dir() {
            copy_context(&from, &to);
        } else if ty.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&from).unwrap(), &to).unwrap();
        } else {
            fs::copy(&from, &to).unwrap();
            let exec = fs::metadata(&from).unwrap().permissions().mode() & 0o100 != 0;
            let mode = if exec { 0o755 } else { 0o644 };
            fs::set_permissions(&to, fs::Permissions::from_mode(mode)).unwrap();
        }
    }
}

/// `ocibuild validate --strict` of `oci:LAYOUT:TAG`: its warnings (stderr lines).
fn strict_warnings(layout: &Path, tag: &str) -> Vec<String> {
    let out = run_ok(
        ocibuild(&shared_store())
            .args(["validate", "--strict"])
            .arg(format!("oci:{}:{tag}", layout.display())),
    );
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .map(str::to_string)
        .collect()
}

/// The corpus cases whose RUN replaces a base's symlink with a directory on purpose (the layer
/// keeps what the step did, and `validate --strict` says so).
const REPLACES_A_LINK: &[&str] = &["debian-run-replaces-link"];

#[test]
fn merged_usr_corpus_builds_like_buildah_and_runs() {
    let t0 = Instant::now();
    let ctx = TestContext::new();
    let cases = read_corpus(&testdata());
    assert!(
        cases.len() >= 25,
        "the merged-/usr corpus has {} Dockerfiles, at least 25 are wanted",
        cases.len()
    );
    let (distroless, debian) = std::thread::scope(|s| {
        let a = s.spawn(|| base("static:nonroot"));
        let b = s.spawn(|| base("build-base"));
        (a.join().unwrap(), b.join().unwrap())
    });
    let t_bases = t0.elapsed().as_secs_f64();
    let context = ctx.path("context");
    copy_context(&testdata().join("context"), &context);
    fs::copy(busybox_static(), context.join("busybox")).unwrap();
    fs::set_permissions(context.join("busybox"), fs::Permissions::from_mode(0o755)).unwrap();
    let args = vec![
        (
            "DISTROLESS".to_string(),
            format!("oci-archive:{}", distroless.display()),
        ),
        (
            "DEBIAN".to_string(),
            format!("oci-archive:{}", debian.display()),
        ),
    ];
    let buildah = Buildah::new(&ctx);
    let builders = Builders {
        buildah: &buildah,
        bin: bin(),
        root: shared_store(),
    };
    let results = run_parallel(&cases, 3, |case| {
        let mut c = compare_case(&ctx, &builders, case, &context, &args);
        let warnings = strict_warnings(&c.layout, "ours");
        let replaces = REPLACES_A_LINK.contains(&case.name.as_str());
        if replaces && !warnings.iter().any(|w| w.contains("/sbin -> usr/sbin")) {
            c.problems.push(format!(
                "`validate --strict` should warn that the RUN replaced /sbin, it printed {warnings:?}"
            ));
        } else if !replaces && !warnings.is_empty() {
            c.problems.push(format!(
                "`validate --strict` warned: {}",
                warnings.join("; ")
            ));
        }
        c
    });
    let mut failed = Vec::new();
    let mut slowest = (String::new(), 0.0f64);
    for (case, r) in cases.iter().zip(results) {
        match r {
            Ok(c) if c.problems.is_empty() => {
                if c.seconds > slowest.1 {
                    slowest = (c.name.clone(), c.seconds);
                }
            }
            Ok(c) => failed.push(format!(
                "{}.Dockerfile: {} problem(s):\n  {}\n--- ocibuild's stderr ---\n{}",
                c.name,
                c.problems.len(),
                c.problems.join("\n  "),
                c.stderr
            )),
            Err(panic) => failed.push(format!("{}.Dockerfile: {panic}", case.name)),
        }
    }
    eprintln!(
        "merged-usr corpus: {} cases in {:.1}s (bases {:.1}s; slowest case {} {:.1}s)",
        cases.len(),
        t0.elapsed().as_secs_f64(),
        t_bases,
        slowest.0,
        slowest.1
    );
    assert!(
        failed.is_empty(),
        "{} of {} merged-/usr Dockerfiles differ from buildah or do not run:\n\n{}",
        failed.len(),
        cases.len(),
        failed.join("\n\n")
    );
}

#[test]
fn assemble_follows_the_base_s_links_and_validate_strict_warns_about_a_directory_over_one() {
    let ctx = TestContext::new();
    let root = ctx.root_dir();
    // a merged-/usr base: bin -> usr/bin
    let base = ctx.tmp_dir("base-root");
    fs::create_dir_all(base.join("usr/bin")).unwrap();
    fs::write(base.join("usr/bin/tool"), "tool").unwrap();
    std::os::unix::fs::symlink("usr/bin", base.join("bin")).unwrap();
    let app = ctx.tmp_dir("app");
    fs::create_dir_all(app.join("bin")).unwrap();
    fs::write(app.join("bin/app"), "app").unwrap();
    let layout = ctx.path("layout");
    let assemble = |base_ref: &str, layers: &[&Path], tag: &str| {
        let mut c = ocibuild(&root);
        c.args(["assemble", "--base", base_ref]);
        for l in layers {
            c.arg("--layer").arg(format!("{}:/", l.display()));
        }
        run_ok(
            c.arg("--output")
                .arg(format!("oci:{}:{tag}", layout.display())),
        );
    };
    assemble("scratch", &[&base], "base");
    assert_eq!(strict_warnings(&layout, "base"), Vec::<String>::new());
    // a layer with bin/ on that base (what a zero-config app layer for /bin is): it follows
    // the base's link, /bin/app is /usr/bin/app and /bin/tool is still there
    let base_ref = format!("oci:{}:base", layout.display());
    assemble(&base_ref, &[&app], "app");
    assert_eq!(strict_warnings(&layout, "app"), Vec::<String>::new());
    let rootfs = ocibuild_testkit::umoci_unpack(&layout, "app", &ctx.path("bundle"));
    assert!(
        fs::symlink_metadata(rootfs.join("bin"))
            .unwrap()
            .is_symlink()
    );
    assert_eq!(
        fs::read_to_string(rootfs.join("usr/bin/app")).unwrap(),
        "app"
    );
    assert_eq!(fs::read_to_string(rootfs.join("bin/tool")).unwrap(), "tool");
    // the link and the bin/ directory as two layers of one assemble on scratch: the second
    // layer is written as given (only a base's links are followed), a directory over the link
    assemble("scratch", &[&base, &app], "broken");
    let w = strict_warnings(&layout, "broken");
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("layer 1") && w[0].contains("symlink /bin -> usr/bin"),
        "{w:?}"
    );
    // without --strict: valid, no warning; --json lists the warnings
    let out = run_ok(
        ocibuild(&root)
            .arg("validate")
            .arg(format!("oci:{}:broken", layout.display())),
    );
    assert!(String::from_utf8_lossy(&out.stderr).trim().is_empty());
    let out = run(ocibuild(&root)
        .args(["validate", "--strict", "--json"])
        .arg(format!("oci:{}:broken", layout.display())));
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["warnings"].as_array().unwrap().len(), 1, "{v}");
}
