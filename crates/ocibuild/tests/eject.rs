//! Native bases in Dockerfiles (`FROM ocibuild:PROFILE`) and the eject of zero-config plans
//! (`ocibuild build DIR --dry-run=dockerfile`), built with `ocibuild build -f` and compared
//! with the zero-config image: layer by layer, config by config and root filesystem by root
//! filesystem (unpacked by umoci). Bases and toolchain roots come from the store the other
//! app tests share.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use ocibuild_testkit::{
    TestContext, buildah::compare_rootfs, busybox_static, run, run_fail, run_ok_stdout, runc_run,
    skopeo_inspect_config, umoci_unpack,
};
use serde_json::Value;

fn cache() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("ocibuild-build-tests-store")
        .join("debian");
    fs::create_dir_all(&d).unwrap();
    d
}

fn app(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/apps")
        .join(name)
}

/// The store the app tests share (apps.rs, build.rs, node_apps.rs, python_apps.rs).
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

/// `ocibuild build ARGS --output oci:LAYOUT:TAG` → (digest, stderr).
fn build(args: &[&str], layout: &Path, tag: &str) -> (String, String) {
    let mut c = ocibuild();
    c.arg("build")
        .args(args)
        .arg("--cache-dir")
        .arg(cache())
        .arg("--output")
        .arg(format!("oci:{}:{tag}", layout.display()));
    let out = run(&mut c);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{}\nstdout: {stdout}\nstderr: {stderr}",
        ocibuild_testkit::command_line(&c)
    );
    let d = stdout.lines().last().unwrap_or_default().to_string();
    assert!(d.starts_with("sha256:"), "{stdout}");
    (d, stderr)
}

// ---------------------------------------------------------------------------------------------
// FROM ocibuild:PROFILE
// ---------------------------------------------------------------------------------------------

#[test]
fn native_bases_build_a_multi_stage_dockerfile_that_runs() {
    let ctx = TestContext::new();
    let dir = ctx.tmp_dir("ctx");
    fs::copy(busybox_static(), dir.join("busybox")).unwrap();
    // a build stage on a toolchain profile runs a RUN step; the final stage is distroless
    fs::write(
        dir.join("Dockerfile"),
        "FROM ocibuild:build-base AS build\n\
         RUN mkdir -p /out && printf 'made by %s on %s\\n' \"$(id -u)\" \"$(sed -n 's/^VERSION_CODENAME=//p' /etc/os-release)\" > /out/msg\n\
         FROM ocibuild:static:nonroot\n\
         COPY busybox /bin/busybox\n\
         COPY --from=build /out/msg /msg\n\
         ENTRYPOINT [\"/bin/busybox\", \"cat\", \"/msg\"]\n",
    )
    .unwrap();
    let layout = ctx.path("layout");
    let (a, err) = build(&[dir.to_str().unwrap()], &layout, "a");
    assert!(err.contains("ocibuild:static:nonroot: sha256:"), "{err}");
    let cfg = skopeo_inspect_config(&format!("oci:{}:a", layout.display()));
    assert_eq!(
        cfg["config"]["User"], "65532",
        "static:nonroot's user: {cfg}"
    );
    assert_eq!(
        cfg["config"]["Labels"]["dev.ocibuild.base.profile"], "static:nonroot",
        "{cfg}"
    );
    let bundle = ctx.path("bundle");
    umoci_unpack(&layout, "a", &bundle);
    let (rc, out, e) = runc_run(&bundle, None);
    assert_eq!(rc, 0, "{out}{e}");
    assert_eq!(out.trim(), "made by 0 on trixie");
    let (rc, out, e) = runc_run(&bundle, Some(&["/bin/busybox", "id", "-u"]));
    assert_eq!((rc, out.trim()), (0, "65532"), "{e}");

    // The second build assembles nothing and runs nothing: the same image.
    let (b, err) = build(&[dir.to_str().unwrap()], &layout, "b");
    assert_eq!(a, b);
    assert!(
        err.contains("ocibuild:static:nonroot: sha256:") && err.contains("(cached,"),
        "{err}"
    );
    assert!(!err.contains("(assembled,"), "{err}");
    assert!(err.contains("0 steps ran"), "{err}");
}

/// An image on a toolchain profile (a debug image on `ocibuild:build-base`, whose layers the
/// store keeps as zstd for build roots) has the layers the build asks for (gzip by default):
/// umoci, which reads no zstd, unpacks it; a file copied into `/bin` of this merged-/usr base
/// lands in `/usr/bin`, `/bin` stays the link.
#[test]
fn an_image_on_a_toolchain_profile_has_the_compression_asked_for() {
    let ctx = TestContext::new();
    let dir = ctx.tmp_dir("ctx");
    fs::write(dir.join("healthcheck"), "#!/bin/sh\necho healthy\n").unwrap();
    fs::write(
        dir.join("Dockerfile"),
        "FROM ocibuild:build-base\nCOPY --chmod=755 healthcheck /bin/healthcheck\n",
    )
    .unwrap();
    let layout = ctx.path("layout");
    build(&[dir.to_str().unwrap()], &layout, "debug");
    let m = ocibuild_testkit::skopeo_inspect(&format!("oci:{}:debug", layout.display()));
    for l in m["layers"].as_array().unwrap() {
        assert_eq!(
            l["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip",
            "{m}"
        );
    }
    let rootfs = umoci_unpack(&layout, "debug", &ctx.path("bundle"));
    assert!(rootfs.join("usr/bin/healthcheck").is_file());
    assert_eq!(
        fs::read_link(rootfs.join("bin")).unwrap(),
        Path::new("usr/bin")
    );
}

#[test]
fn an_unknown_profile_is_named_with_the_nearest_and_the_list_before_anything_runs() {
    let ctx = TestContext::new();
    let dir = ctx.tmp_dir("ctx");
    fs::write(
        dir.join("Dockerfile"),
        "FROM ocibuild:build-base AS build\nRUN exit 1\nFROM ocibuild:statik:nonroot\nCOPY --from=build /etc/hostname /x\n",
    )
    .unwrap();
    let err = run_fail(
        ocibuild()
            .arg("build")
            .arg(&dir)
            .arg("--cache-dir")
            .arg(cache()),
    );
    assert!(err.contains("Dockerfile:3"), "{err}");
    assert!(err.contains("did you mean `static`?"), "{err}");
    for p in [
        "static",
        "cc",
        "python3",
        "nodejs",
        "java",
        "build-base",
        "go",
        "node-build",
    ] {
        assert!(err.contains(p), "{p} listed: {err}");
    }
    assert!(err.contains("ocibuild base list"), "{err}");
    assert!(!err.contains("RUN exit 1"), "nothing ran: {err}");
}

#[test]
fn a_base_lock_is_honoured() {
    let ctx = TestContext::new();
    // a bookworm lock: the default --distro is trixie, so only the lock can make it bookworm
    let lock = ctx.path("static.lock");
    run_ok_stdout(
        ocibuild()
            .args([
                "base",
                "lock",
                "--profile",
                "static:nonroot",
                "--distro",
                "bookworm",
            ])
            .arg("--cache-dir")
            .arg(cache())
            .arg("--output")
            .arg(&lock),
    );
    let dir = ctx.tmp_dir("ctx");
    fs::copy(busybox_static(), dir.join("busybox")).unwrap();
    fs::write(
        dir.join("Dockerfile"),
        "FROM ocibuild:static:nonroot\nCOPY busybox /bin/busybox\nENTRYPOINT [\"/bin/busybox\", \"cat\", \"/etc/os-release\"]\n",
    )
    .unwrap();
    let layout = ctx.path("layout");
    let (_, err) = build(
        &[dir.to_str().unwrap(), "--base-lock", lock.to_str().unwrap()],
        &layout,
        "a",
    );
    assert!(err.contains("from the lockfile"), "{err}");
    let cfg = skopeo_inspect_config(&format!("oci:{}:a", layout.display()));
    let release = cfg["config"]["Labels"]["dev.ocibuild.base.release"].to_string();
    assert!(release.contains("bookworm"), "{cfg}");
    let bundle = ctx.path("bundle");
    umoci_unpack(&layout, "a", &bundle);
    let (rc, out, e) = runc_run(&bundle, None);
    assert_eq!(rc, 0, "{e}");
    assert!(out.contains("VERSION_CODENAME=bookworm"), "{out}");
    // without the lock the same Dockerfile gives trixie
    let (_, _) = build(&[dir.to_str().unwrap()], &layout, "b");
    let cfg = skopeo_inspect_config(&format!("oci:{}:b", layout.display()));
    let release = cfg["config"]["Labels"]["dev.ocibuild.base.release"].to_string();
    assert!(release.contains("trixie"), "{cfg}");
    // a lock for other packages than the FROM line names is refused, saying both
    fs::write(
        dir.join("Dockerfile"),
        "FROM ocibuild:static:nonroot+libc6\nCOPY busybox /bin/busybox\n",
    )
    .unwrap();
    let err = run_fail(
        ocibuild()
            .arg("build")
            .arg(&dir)
            .arg("--base-lock")
            .arg(&lock)
            .arg("--cache-dir")
            .arg(cache()),
    );
    assert!(
        err.contains("--base-lock") && err.contains("libc6"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// Eject
// ---------------------------------------------------------------------------------------------

/// Files that differ between two builds whatever the frontend, and why (the maintainers' list).
/// python-flask: MarkupSafe's C extension embeds pip's random build directory
/// (`/tmp/pip-install-XXXX/…`), so it is only the same when pip's wheel cache (a cache mount,
/// which the ejected Dockerfile's `RUN --mount=type=cache,id=pip` keeps apart from the
/// zero-config build's) already holds the wheel; its RECORD lists the extension's hash.
/// node-next: `next build` writes a random build id (`.next/BUILD_ID`, and the files that
/// name it) on every build.
/// node-native: NOT a nondeterminism but a gap of the eject: the zero-config build adds the
/// shared libraries its addon needs that the runtime lacks (`native-libs`, found by an ELF scan
/// after the build), which a Dockerfile written before the build cannot name — the ejected
/// image lacks libsqlite3 and its addon fails to load. The lowering needs a step kind for it.
/// python-django-pipenv: both — psycopg2's C extension (pip's build directory, as MarkupSafe's)
/// and libpq, which the runtime lacks (`native-libs`, as node-native's libsqlite3).
const KNOWN: &[(&str, &str)] = &[
    ("node-native", "/usr/lib/x86_64-linux-gnu/"),
    ("python-django-pipenv", "/usr/lib/x86_64-linux-gnu/"),
    ("python-django-pipenv", "/psycopg2/_psycopg."),
    ("python-django-pipenv", "/psycopg2-2.9.13.dist-info/RECORD"),
    ("python-flask", "/markupsafe/_speedups."),
    ("python-flask", "/markupsafe-3.0.2.dist-info/RECORD"),
    ("node-next", "/app/.next/"),
];

/// Zero-config build of an app, its eject, the ejected Dockerfile built with no other flags,
/// and what differs. Returns the differences (empty: the same digest).
///
/// `NAME` may be a workspace package (`node-workspaces/apps/api`): its ejected Dockerfile is
/// built in the workspace root, the zero-config build's context.
fn eject_and_compare(ctx: &TestContext, name: &str) -> Vec<String> {
    let context = app(name.split('/').next().unwrap());
    let name_path = name;
    let name = &name.replace('/', "-");
    let layout = ctx.path(format!("layout-{name}"));
    let (zc, _) = build(&[app(name_path).to_str().unwrap()], &layout, "zc");
    let dockerfile = ctx.path(format!("{name}.Dockerfile"));
    let text = run_ok_stdout(
        ocibuild()
            .arg("build")
            .arg(app(name_path))
            .arg("--dry-run=dockerfile"),
    );
    fs::write(&dockerfile, &text).unwrap();
    let (df, err) = build(
        &[
            "-f",
            dockerfile.to_str().unwrap(),
            context.to_str().unwrap(),
        ],
        &layout,
        "df",
    );
    let mut diffs = Vec::new();
    if zc == df {
        eprintln!("{name}: same digest {zc}");
        return diffs;
    }
    let manifest = |tag: &str| -> Value {
        let out = run_ok_stdout(
            Command::new("skopeo")
                .args(["inspect", "--raw"])
                .arg(format!("oci:{}:{tag}", layout.display())),
        );
        serde_json::from_str(&out).unwrap()
    };
    let (mz, md) = (manifest("zc"), manifest("df"));
    let digests = |m: &Value| -> Vec<String> {
        m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_string())
            .collect()
    };
    let (lz, ld) = (digests(&mz), digests(&md));
    if lz != ld {
        let same = lz.iter().zip(&ld).take_while(|(a, b)| a == b).count();
        diffs.push(format!(
            "layers: {} zero-config, {} ejected; the first {same} equal",
            lz.len(),
            ld.len()
        ));
    }
    let mut cz = skopeo_inspect_config(&format!("oci:{}:zc", layout.display()));
    let mut cd = skopeo_inspect_config(&format!("oci:{}:df", layout.display()));
    let (hz, hd) = (cz["history"].take(), cd["history"].take());
    if hz != hd {
        let a = hz.as_array().cloned().unwrap_or_default();
        let b = hd.as_array().cloned().unwrap_or_default();
        let first = a
            .iter()
            .zip(&b)
            .position(|(x, y)| x != y)
            .unwrap_or(a.len().min(b.len()));
        diffs.push(format!(
            "config history: entry {first}: zero-config {} vs ejected {}",
            a.get(first).cloned().unwrap_or_default(),
            b.get(first).cloned().unwrap_or_default()
        ));
    }
    for c in [&mut cz, &mut cd] {
        c["rootfs"] = Value::Null;
    }
    if cz != cd {
        diffs.push(format!(
            "config (beyond history and layers): zero-config {} vs ejected {}",
            cz["config"], cd["config"]
        ));
    }
    let rz = umoci_unpack(&layout, "zc", &ctx.path(format!("bundle-{name}-zc")));
    let rd = umoci_unpack(&layout, "df", &ctx.path(format!("bundle-{name}-df")));
    // Directories whose every file the layer's excludes dropped: the zero-config filter leaves
    // them out, `COPY --exclude` keeps them (empty); listed, not failed.
    let emptied = |d: &str| {
        d.split_once(": only in b (directory")
            .is_some_and(|(p, _)| {
                ocibuild_testkit::walk(&rd.join(p.trim_start_matches('/')))
                    .iter()
                    .all(|f| f.symlink_metadata().is_ok_and(|m| m.is_dir()))
            })
    };
    let (known, fs_diffs): (Vec<String>, Vec<String>) =
        compare_rootfs(&rz, &rd).into_iter().partition(|d| {
            emptied(d)
                || KNOWN
                    .iter()
                    .any(|(app, path)| *app == name && d.contains(path))
        });
    if !known.is_empty() {
        diffs.push(format!("known: {}", known.join("; ")));
    }
    if !fs_diffs.is_empty() {
        diffs.push(format!("ROOTFS: {}", fs_diffs.join("; ")));
    }
    eprintln!(
        "{name}: zero-config {zc}, ejected {df}: {}\n--- ejected Dockerfile ---\n{text}\n--- its build ---\n{}",
        diffs.join(" | "),
        err.lines()
            .filter(|l| l.contains("ocibuild:") || l.contains("image sha256"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    diffs
}

/// Every app of a family: the ejected Dockerfile gives the same root filesystem, and for the
/// apps in `same_digest` the same image digest; what else differs is printed (the report).
///
/// The suite builds `ci` (a few apps per family, chosen to cover each lowering: plain, lockfile
/// deps, yarn, uv, Maven); `scripts/eject-campaign.sh` sets `OCIBUILD_EJECT_ALL=1` and builds
/// `all` (about 20 minutes on 2 cores, too long for CI).
fn family(all: &[&str], ci: &[&str], same_digest: &[&str]) {
    let every = std::env::var_os("OCIBUILD_EJECT_ALL").is_some_and(|v| v == "1");
    let apps = if every { all } else { ci };
    eprintln!(
        "eject: {} of {} apps ({})",
        apps.len(),
        all.len(),
        if every {
            "OCIBUILD_EJECT_ALL=1"
        } else {
            "the CI subset; scripts/eject-campaign.sh builds them all"
        }
    );
    let ctx = TestContext::new();
    let mut bad = Vec::new();
    let mut report = Vec::new();
    for name in apps {
        let diffs = eject_and_compare(&ctx, name);
        if diffs.iter().any(|d| d.starts_with("ROOTFS"))
            || (same_digest.contains(name) && !diffs.is_empty())
        {
            bad.push(format!("{name}: {}", diffs.join(" | ")));
        }
        report.push(format!(
            "{name}: {}",
            if diffs.is_empty() {
                "same digest".to_string()
            } else {
                diffs.join(" | ")
            }
        ));
    }
    eprintln!("eject report:\n{}", report.join("\n"));
    assert!(
        bad.is_empty(),
        "ejected Dockerfiles whose image differs (in its files, or in its digest where the \
         digest must be the same):\n{}",
        bad.join("\n")
    );
}

#[test]
fn ejected_go_apps_build_the_same_files() {
    let apps = [
        "go-hello",
        "go-http",
        "go-cmd",
        "go-new",
        "go-cgo-server",
        "go-monorepo/services/api",
    ];
    // go-cgo-server: a main package under cmd/ and cgo (gcc in the root, the glibc runtime)
    family(&apps, &["go-http", "go-cgo-server"], &apps);
}

#[test]
fn ejected_node_apps_build_the_same_files() {
    family(
        &[
            "node-app",
            "node-deps",
            "node-native",
            "node-nest",
            "node-next",
            "node-pnpm",
            "node-ts-express",
            "node-yarn-berry",
            "node-yarn-classic",
            "node-workspaces/apps/api",
            "pnpm-monorepo/apps/api",
            "yarn-monorepo/apps/api",
        ],
        &[
            "node-deps",
            "node-yarn-classic",
            "node-workspaces/apps/api",
            "pnpm-monorepo/apps/api",
        ],
        &[
            "node-app",
            "node-deps",
            "node-yarn-berry",
            "node-yarn-classic",
            "node-workspaces/apps/api",
            "pnpm-monorepo/apps/api",
            "yarn-monorepo/apps/api",
        ],
    );
}

#[test]
fn ejected_python_apps_build_the_same_files() {
    family(
        &[
            "python-app",
            "python-django-pipenv",
            "python-flask",
            "python-flit-scripts",
            "python-instance",
            "python-poetry-flask",
            "python-pyproject",
            "python-script",
            "python-uv-fastapi",
        ],
        &["python-app", "python-uv-fastapi"],
        &[
            "python-app",
            "python-flit-scripts",
            "python-poetry-flask",
            "python-script",
            "python-uv-fastapi",
        ],
    );
}

#[test]
fn ejected_java_apps_build_the_same_files() {
    family(
        &["java-maven", "java-multimodule", "java-plain"],
        &["java-plain"],
        &["java-plain"],
    );
}

#[test]
fn every_testdata_app_is_in_a_family() {
    let listed: Vec<&str> = [
        "go-hello",
        "go-http",
        "go-cmd",
        "go-new",
        "go-cgo-server",
        "go-monorepo",
        "node-app",
        "node-deps",
        "node-native",
        "node-nest",
        "node-next",
        "node-pnpm",
        "node-ts-express",
        "node-yarn-berry",
        "node-yarn-classic",
        "node-workspaces",
        "pnpm-monorepo",
        "yarn-monorepo",
        "python-app",
        "python-django-pipenv",
        "python-flask",
        "python-flit-scripts",
        "python-instance",
        "python-poetry-flask",
        "python-pyproject",
        "python-script",
        "python-uv-fastapi",
        "java-maven",
        "java-multimodule",
        "java-plain",
    ]
    .to_vec();
    for e in fs::read_dir(app("")).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().into_owned();
        if n.ends_with("-error") {
            continue;
        }
        assert!(
            listed.contains(&n.as_str()),
            "testdata/apps/{n} has no eject test"
        );
    }
}

/// What the ejected layers rely on: `COPY --exclude=DIR` leaves out the directory's contents
/// too (BuildKit's meaning), from the context and from a stage, the pattern relative to the
/// directory copied (`--exclude=skip` for `/tree/skip` when copying `/tree/`; a pattern naming
/// it from the root matches nothing there), and `COPY --parents` keeps the
/// path from a `/./` pivot on; a wildcard that matches nothing copies nothing (BuildKit).
#[test]
fn copy_excludes_whole_directories_and_parents_take_a_pivot() {
    let ctx = TestContext::new();
    let dir = ctx.tmp_dir("ctx");
    for (f, body) in [
        ("keep.txt", "k"),
        ("skip/x.txt", "x"),
        ("sub/d/y.txt", "y"),
        ("sub/z.md", "z"),
    ] {
        let p = dir.join(f);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, body).unwrap();
    }
    fs::create_dir_all(dir.join("empty")).unwrap();
    fs::write(
        dir.join("Dockerfile"),
        "FROM scratch AS src\n\
         COPY --exclude=Dockerfile . /tree/\n\
         FROM scratch\n\
         COPY --from=src --exclude=skip /tree/ /a/\n\
         COPY --from=src --exclude=tree/skip --exclude=*.md /tree/sub/ /f/\n\
         COPY --exclude=skip --exclude=Dockerfile . /b/\n\
         COPY --from=src --parents /tree/./sub/**/*.txt /c/\n\
         COPY --from=src /tree/*.none /c/\n\
         COPY --from=src --chown=7:7 /tree/empty/ /e/\n",
    )
    .unwrap();
    let layout = ctx.path("layout");
    build(&[dir.to_str().unwrap()], &layout, "t");
    let rootfs = umoci_unpack(&layout, "t", &ctx.path("bundle"));
    let mut files: Vec<String> = ocibuild_testkit::walk(&rootfs)
        .into_iter()
        .filter(|p| p.is_file())
        .map(|p| {
            p.strip_prefix(&rootfs)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "a/keep.txt",
            "a/sub/d/y.txt",
            "a/sub/z.md",
            "b/keep.txt",
            "b/sub/d/y.txt",
            "b/sub/z.md",
            "c/sub/d/y.txt",
            "f/d/y.txt",
        ]
    );
    // an empty directory copies as one (owned as --chown says)
    let e = fs::metadata(rootfs.join("e")).unwrap();
    assert!(e.is_dir());
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&e), 7);
}
