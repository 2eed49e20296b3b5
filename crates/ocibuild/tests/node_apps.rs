//! The Node.js apps people have, built zero-config and served under runc: a NestJS service
//! (started from `start:prod`), a Next.js app with `output: "standalone"`, native addons (a
//! local node-gyp addon linking a library the runtime base lacks, and a real npm package with
//! an install script), yarn classic, Yarn 4 with the node-modules linker and pnpm projects, npm,
//! pnpm and Yarn 4 workspace apps of a monorepo, and
//! a failing build whose cause is far above the last lines (the full step log is kept under the
//! store). Every image must hold no package manager, compiler or shell.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use ocibuild_testkit::{TestContext, run_fail, run_ok, runc_http_get, umoci_unpack};
use serde_json::Value;

/// The content store the build tests share (see tests/apps.rs).
fn shared_store() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ocibuild-build-tests-store")
}

fn app(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/apps")
        .join(name)
}

fn ocibuild() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ocibuild"));
    c.arg("--root")
        .arg(shared_store())
        .args(["--progress", "plain"])
        .env_remove("SOURCE_DATE_EPOCH");
    c
}

/// `testdata/apps/NAME` (a workspace package: `node-workspaces/apps/api`) → its layout tag.
fn tag(name: &str) -> String {
    name.replace('/', "-")
}

fn build_cmd(ctx: &TestContext, name: &str, layout: &Path) -> Command {
    let tag = tag(name);
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("ocibuild-build-tests-store")
        .join("debian");
    fs::create_dir_all(&cache).unwrap();
    let mut c = ocibuild();
    c.arg("build")
        .arg(app(name))
        .arg("--cache-dir")
        .arg(&cache)
        .arg("--metadata-file")
        .arg(ctx.path(format!("{tag}.json")))
        .arg("--output")
        .arg(format!("oci:{}:{tag}", layout.display()));
    c
}

/// Build `testdata/apps/NAME`, validate it, unpack it; returns (rootfs, bundle, build output).
fn build_and_unpack(ctx: &TestContext, name: &str, extra: &[&str]) -> (PathBuf, PathBuf, String) {
    let layout = ctx.path("layout");
    let t0 = std::time::Instant::now();
    let out = run_ok(build_cmd(ctx, name, &layout).args(extra));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let name = tag(name);
    let m: Value =
        serde_json::from_slice(&fs::read(ctx.path(format!("{name}.json"))).unwrap()).unwrap();
    eprintln!(
        "{name}: built in {:.1}s, {:.1} MB compressed",
        t0.elapsed().as_secs_f64(),
        m["ocibuild.size"].as_u64().unwrap() as f64 / 1e6
    );
    let valid = String::from_utf8_lossy(
        &run_ok(
            ocibuild()
                .arg("validate")
                .arg(format!("oci:{}:{name}", layout.display())),
        )
        .stdout,
    )
    .into_owned();
    assert!(valid.starts_with("valid:"), "{valid}");
    let bundle = ctx.path("bundle");
    let rootfs = umoci_unpack(&layout, &name, &bundle);
    assert_clean(&rootfs);
    (rootfs, bundle, text)
}

/// No package manager, compiler or shell in the image.
fn assert_clean(rootfs: &Path) {
    ocibuild_testkit::assert_no_build_tools(
        rootfs,
        &[
            "usr/bin/python3",
            "usr/include/node",
            "usr/share/nodejs/node-gyp",
            "out",
        ],
    );
    for e in ocibuild_testkit::walk(&rootfs.join("app")) {
        let s = e.to_string_lossy();
        for pm in [
            "node_modules/npm",
            "node_modules/yarn",
            "node_modules/pnpm",
            "node_modules/@yarnpkg/cli",
            // pnpm's bookkeeping (a pnpm workspace app keeps node_modules/.pnpm: its packages)
            "node_modules/.pnpm/lock.yaml",
            "node_modules/.modules.yaml",
            ".yarn/cache",
        ] {
            assert!(!s.ends_with(pm), "{s}: a package manager in the image");
        }
        assert!(!s.ends_with(".o"), "{s}: an object file in the image");
        assert!(!s.contains("/.pnpm/pnpm@"), "{s}: pnpm in the image");
    }
}

#[test]
fn nest_app_starts_from_start_prod() {
    let ctx = TestContext::new();
    let (rootfs, bundle, _) = build_and_unpack(&ctx, "node-nest", &[]);
    let cfg = ocibuild_testkit::skopeo_inspect_config(&format!(
        "oci:{}:node-nest",
        ctx.path("layout").display()
    ));
    assert_eq!(
        cfg["config"]["Entrypoint"],
        serde_json::json!(["/usr/bin/node", "dist/main"])
    );
    assert!(rootfs.join("app/dist/main.js").is_file());
    assert!(rootfs.join("app/node_modules/@nestjs/core").is_dir());
    assert!(!rootfs.join("app/node_modules/typescript").exists());
    assert!(!rootfs.join("app/src/main.ts").exists());
    let body = runc_http_get(&bundle, &[("PORT", "3000")], 3000, "/?name=nest");
    assert!(
        body.starts_with("hello nest from node-nest on node v20."),
        "{body}"
    );
}

#[test]
fn native_addons_are_built_once_and_their_libraries_shipped() {
    let ctx = TestContext::new();
    let (rootfs, bundle, out) = build_and_unpack(&ctx, "node-native", &["--no-cache"]);
    // the full install (for the build script) compiled the addon; the production tree is that
    // install, pruned: nothing is compiled twice. The build graph (what `--dry-run=dockerfile`
    // prints, and what the one executor runs) has the full install and the prune and no
    // production install; the record says every step ran (`--no-cache`).
    let graph = String::from_utf8_lossy(
        &run_ok(
            ocibuild()
                .args(["build", "--dry-run=dockerfile"])
                .arg(app("node-native")),
        )
        .stdout,
    )
    .into_owned();
    assert!(graph.contains("npm ci --no-audit --no-fund"), "{graph}");
    assert!(graph.contains("npm prune --omit=dev"), "{graph}");
    assert!(!graph.contains("npm ci --omit=dev"), "{graph}");
    let m: Value =
        serde_json::from_slice(&fs::read(ctx.path("node-native.json")).unwrap()).unwrap();
    let steps = m["ocibuild.steps"].as_array().unwrap();
    let runs = steps
        .iter()
        .filter(|s| s["name"].as_str().is_some_and(|n| n.starts_with("RUN ")))
        .count();
    assert_eq!(
        runs,
        graph.lines().filter(|l| l.starts_with("RUN ")).count(),
        "{m:#}"
    );
    assert!(
        steps.iter().all(|s| s["ran"] == serde_json::json!(true)),
        "{m:#}"
    );
    assert!(rootfs.join("app/build-info.json").is_file(), "{out}");
    // npm installs a `file:` dependency as a link to its directory or as a copy (install-links):
    // the addon is compiled where it is, and only the addon of node-gyp's output is kept
    let dirs = ["app/node_modules/native-hash", "app/packages/native-hash"];
    let built: Vec<&str> = dirs
        .iter()
        .copied()
        .filter(|d| {
            rootfs
                .join(d)
                .join("build/Release/native_hash.node")
                .is_file()
        })
        .collect();
    assert!(!built.is_empty(), "the compiled addon is in the image");
    for d in dirs {
        for gone in [
            "build/Release/obj.target",
            "build/Makefile",
            "build/config.gypi",
        ] {
            assert!(!rootfs.join(d).join(gone).exists(), "{d}/{gone}");
        }
    }
    // the library it links (from its DT_NEEDED), which the nodejs runtime lacks, was copied
    let sqlite: Vec<PathBuf> = ocibuild_testkit::walk(&rootfs.join("usr/lib"))
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "libsqlite3.so.0"))
        .collect();
    assert_eq!(sqlite.len(), 1, "{sqlite:?}\n{out}");
    assert!(out.contains("libsqlite3.so.0"), "{out}");
    assert!(rootfs.join("app/node_modules/bufferutil").is_dir());
    let body = runc_http_get(&bundle, &[("PORT", "8080")], 8080, "/?text=hello");
    assert!(
        body.starts_with("hello from node-native: fnv1a(hello)=4f9f2cab sqlite 3."),
        "{body}"
    );
    assert!(body.trim_end().ends_with("mask round trip true"), "{body}");
}

#[test]
fn yarn_classic_app_answers() {
    let ctx = TestContext::new();
    let (rootfs, bundle, _) = build_and_unpack(&ctx, "node-yarn-classic", &[]);
    assert!(rootfs.join("app/node_modules/polka").is_dir());
    assert!(
        !rootfs.join("app/node_modules/prettier").exists(),
        "dev dependency"
    );
    let body = runc_http_get(&bundle, &[("PORT", "3000")], 3000, "/");
    assert!(
        body.starts_with("hello from node-yarn-classic, up "),
        "{body}"
    );
}

#[test]
fn yarn_berry_app_with_node_modules_linker_answers() {
    let ctx = TestContext::new();
    let (rootfs, bundle, _) = build_and_unpack(&ctx, "node-yarn-berry", &[]);
    assert!(rootfs.join("app/node_modules/polka").is_dir());
    assert!(
        !rootfs.join("app/node_modules/prettier").exists(),
        "dev dependency"
    );
    assert!(!rootfs.join("app/.yarnrc.yml").exists());
    let body = runc_http_get(&bundle, &[("PORT", "3000")], 3000, "/");
    assert_eq!(body.trim(), "hello from node-yarn-berry: db ok, queue ok");
}

#[test]
fn pnpm_typescript_app_answers_from_a_flat_node_modules() {
    let ctx = TestContext::new();
    let (rootfs, bundle, _) = build_and_unpack(&ctx, "node-pnpm", &[]);
    // a plain node_modules (pnpm's hoisted linker): real directories, no .pnpm store links
    let hono = rootfs.join("app/node_modules/hono");
    assert!(
        fs::symlink_metadata(&hono).unwrap().is_dir(),
        "hono is a directory"
    );
    assert!(!rootfs.join("app/node_modules/typescript").exists());
    assert!(!rootfs.join("app/node_modules/.pnpm").exists());
    assert!(rootfs.join("app/dist/index.js").is_file());
    let body = runc_http_get(&bundle, &[("PORT", "3000")], 3000, "/");
    assert!(
        body.starts_with("hello from node-pnpm on node v20.") && body.contains("2 todos"),
        "{body}"
    );
}

#[test]
fn a_failed_step_keeps_its_log_and_shows_the_first_error() {
    let ctx = TestContext::new();
    let err = run_fail(&mut build_cmd(
        &ctx,
        "node-build-error",
        &ctx.path("layout"),
    ));
    // the cause, far above the last lines, is shown
    assert!(
        err.contains("error: views/contact.html:2: unclosed placeholder"),
        "{err}"
    );
    assert!(err.contains("first lines that look like errors"), "{err}");
    assert!(
        err.contains("sitemap: /archive/2039.html"),
        "the tail: {err}"
    );
    // and the whole output is kept under the store
    let log = err
        .lines()
        .find_map(|l| l.trim().strip_prefix("full output: "))
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("no log path in: {err}"));
    assert!(
        log.starts_with(shared_store().join("logs")),
        "{}",
        log.display()
    );
    let text = fs::read_to_string(&log).unwrap();
    assert!(text.contains("rendered about.html"), "{text}");
    assert!(text.contains("1 page(s) failed to render"), "{text}");
}

#[test]
fn next_standalone_app_serves_pages_static_files_and_public() {
    let ctx = TestContext::new();
    let (rootfs, bundle, out) = build_and_unpack(&ctx, "node-next", &[]);
    // the standalone server and the modules next build traced, its static assets and public
    assert!(rootfs.join("app/server.js").is_file());
    assert!(rootfs.join("app/.next/static").is_dir());
    assert!(rootfs.join("app/public/robots.txt").is_file());
    assert!(!rootfs.join("app/app/page.js").exists(), "sources stay out");
    assert!(
        !rootfs.join("app/.next/cache").exists(),
        "the build cache stays out"
    );
    // npm 9 installs sharp's and SWC's musl builds beside the glibc ones (the lockfile marks
    // them libc musl); next build traces sharp's: they stay out, glibc's stay
    let img = rootfs.join("app/node_modules/@img");
    assert!(img.join("sharp-linux-x64").is_dir(), "{out}");
    assert!(img.join("sharp-libvips-linux-x64").is_dir(), "{out}");
    for musl in ["sharp-linuxmusl-x64", "sharp-libvips-linuxmusl-x64"] {
        assert!(!img.join(musl).exists(), "{musl} is in the image");
    }
    assert!(!out.contains("libc.musl"), "{out}");
    let body = runc_http_get(&bundle, &[("PORT", "3000")], 3000, "/");
    assert!(body.contains("hello from node-next"), "{body}");
    assert!(body.contains("16:40"), "{body}");
    // the page loads its scripts from .next/static, served by the same server
    assert!(body.contains("/_next/static/chunks/"), "{body}");
}

#[test]
fn npm_workspace_app_is_built_from_the_root_with_only_the_packages_it_needs() {
    let ctx = TestContext::new();
    // the app's directory in a monorepo: the context is the workspace root
    let (rootfs, bundle, out) = build_and_unpack(&ctx, "node-workspaces/apps/api", &[]);
    assert!(
        out.contains("is the workspace apps/api of the npm workspace root"),
        "{out}"
    );
    let cfg = ocibuild_testkit::skopeo_inspect_config(&format!(
        "oci:{}:node-workspaces-apps-api",
        ctx.path("layout").display()
    ));
    assert_eq!(cfg["config"]["WorkingDir"], "/app/apps/api");
    let app = rootfs.join("app");
    assert!(app.join("apps/api/dist/server.js").is_file());
    assert!(!app.join("apps/api/src").exists(), "TypeScript sources");
    assert!(!app.join("apps/api/test").exists());
    // the local library: a relative link of the hoisted node_modules that works in the image
    let link = app.join("node_modules/@acme/shared");
    assert!(fs::symlink_metadata(&link).unwrap().is_symlink());
    assert!(link.join("index.js").is_file(), "the link resolves");
    assert!(
        app.join("node_modules/ms/index.js").is_file(),
        "the library's dependency"
    );
    assert!(app.join("node_modules/polka").is_dir());
    // the root's build tools and the other app are not there
    for gone in [
        "apps/web",
        "node_modules/@acme/web",
        "node_modules/is-number",
        "node_modules/typescript",
        "package-lock.json",
    ] {
        assert!(!app.join(gone).exists(), "{gone} is in the image");
    }
    // `--workspace` by package name at the root plans the same build (as npm's -w)
    let by_name = |args: &[&str]| {
        let o = run_ok(
            ocibuild()
                .arg("build")
                .args(args)
                .arg("--dry-run=dockerfile"),
        );
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let root = app_dir_str("node-workspaces");
    assert_eq!(
        by_name(&[&root, "--workspace", "@acme/api"]),
        by_name(&[&app_dir_str("node-workspaces/apps/api")])
    );
    // the root alone holds two apps: the error names them and the flag
    let err = run_fail(ocibuild().arg("build").arg(&root).arg("--dry-run"));
    assert!(err.contains("--workspace apps/api"), "{err}");
    // --workspace on a Dockerfile build: a usage error (exit 2) naming the Dockerfile
    let df = ctx.path("df");
    fs::create_dir_all(&df).unwrap();
    fs::write(df.join("Dockerfile"), "FROM scratch\n").unwrap();
    let out = ocibuild()
        .arg("build")
        .arg(&df)
        .args(["--workspace", "apps/api", "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Dockerfile"));
    let body = runc_http_get(&bundle, &[("PORT", "3000")], 3000, "/?name=ws");
    assert!(
        body.starts_with("hello ws from @acme/api (@acme/shared 1.3.0) on node v20."),
        "{body}"
    );
}

#[test]
fn pnpm_workspace_app_is_deployed_with_valid_links_and_only_the_packages_it_needs() {
    let ctx = TestContext::new();
    // the app's directory in a pnpm monorepo (pnpm-workspace.yaml): the context is the root
    let (rootfs, bundle, out) = build_and_unpack(&ctx, "pnpm-monorepo/apps/api", &[]);
    assert!(
        out.contains("is the workspace apps/api of the pnpm workspace root"),
        "{out}"
    );
    let app = rootfs.join("app");
    assert!(app.join("dist/server.js").is_file());
    assert!(!app.join("src").exists(), "TypeScript sources");
    assert!(!app.join("test").exists());
    // pnpm's layout: links into node_modules/.pnpm, relative and inside /app, that resolve
    let mut links = 0;
    for e in ocibuild_testkit::walk(&app.join("node_modules")) {
        let meta = fs::symlink_metadata(&e).unwrap();
        if !meta.is_symlink() {
            continue;
        }
        links += 1;
        let target = fs::read_link(&e).unwrap();
        assert!(
            target.is_relative(),
            "{}: {}",
            e.display(),
            target.display()
        );
        // resolved inside the unpacked rootfs, the link stays under /app/node_modules
        let mut at = e.parent().unwrap().to_path_buf();
        for c in target.components() {
            match c {
                std::path::Component::ParentDir => assert!(at.pop()),
                std::path::Component::Normal(n) => at.push(n),
                _ => {}
            }
        }
        assert!(
            at.starts_with(app.join("node_modules")),
            "{} leaves node_modules",
            e.display()
        );
        assert!(at.exists(), "{} is dangling", e.display());
    }
    assert!(links > 50, "pnpm's links: {links}");
    let express = app.join("node_modules/express");
    assert!(fs::symlink_metadata(&express).unwrap().is_symlink());
    assert!(express.join("index.js").is_file());
    // the local library: built, copied in (pnpm deploy), with its own dependency
    let shared = app.join("node_modules/@acme/shared");
    assert!(
        shared.join("dist/index.js").is_file(),
        "the library's build"
    );
    // its dependency beside it in its .pnpm entry, where Node's resolution finds it
    let real = fs::canonicalize(&shared).unwrap();
    assert!(
        real.starts_with(app.join("node_modules/.pnpm")),
        "{}",
        real.display()
    );
    let nm = real.parent().unwrap().parent().unwrap();
    assert!(nm.join("ms/index.js").is_file(), "{}", nm.display());
    // the root's build tools, the other app and its dependencies are not there
    let names: Vec<String> = fs::read_dir(app.join("node_modules/.pnpm"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for gone in ["typescript@", "is-number@", "@types+", "@acme+web"] {
        assert!(
            !names.iter().any(|n| n.starts_with(gone)),
            "{gone} in the image: {names:?}"
        );
    }
    for gone in ["apps", "packages", "pnpm-lock.yaml", "pnpm-workspace.yaml"] {
        assert!(!app.join(gone).exists(), "{gone} is in the image");
    }
    assert!(
        !ocibuild_testkit::walk(&rootfs)
            .iter()
            .any(|p| p.to_string_lossy().contains("web/server.js")),
        "the other app's files"
    );
    let body = runc_http_get(&bundle, &[("PORT", "3000")], 3000, "/?name=pnpm");
    assert!(
        body.starts_with("hello pnpm from @acme/api (@acme/shared 1.3.0) on node v20."),
        "{body}"
    );
}

#[test]
fn yarn_workspace_app_is_focused_to_only_the_packages_it_needs() {
    let ctx = TestContext::new();
    let (rootfs, bundle, out) = build_and_unpack(&ctx, "yarn-monorepo/apps/api", &[]);
    assert!(
        out.contains("is the workspace apps/api of the yarn workspace root"),
        "{out}"
    );
    let app = rootfs.join("app");
    assert!(app.join("apps/api/dist/server.js").is_file());
    assert!(app.join("packages/shared/dist/index.js").is_file());
    assert!(!app.join("apps/api/src").exists(), "TypeScript sources");
    assert!(
        !app.join("packages/shared/src").exists(),
        "TypeScript sources"
    );
    // the node-modules linker's links to the workspaces: relative, and they resolve
    let link = app.join("node_modules/@acme/shared");
    assert!(fs::symlink_metadata(&link).unwrap().is_symlink());
    assert!(fs::read_link(&link).unwrap().is_relative());
    assert!(link.join("dist/index.js").is_file(), "the link resolves");
    assert!(app.join("node_modules/express/index.js").is_file());
    assert!(app.join("node_modules/ms/index.js").is_file());
    for gone in [
        "apps/web",
        "node_modules/@acme/web",
        "node_modules/is-number",
        "node_modules/typescript",
        "node_modules/@types",
        "yarn.lock",
        ".yarn",
    ] {
        assert!(!app.join(gone).exists(), "{gone} is in the image");
    }
    let body = runc_http_get(&bundle, &[("PORT", "3000")], 3000, "/?name=yarn");
    assert!(
        body.starts_with("hello yarn from @acme/api (@acme/shared 1.3.0) on node v20."),
        "{body}"
    );
}

fn app_dir_str(name: &str) -> String {
    app(name).to_str().unwrap().to_string()
}
