#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ocibuild_builders::{BuildersError, Distro, Options, Plan, glob_filter};

const LOCK_EMPTY: &str = r#"{"name":"x","version":"1.0.0","lockfileVersion":3,"requires":true,"packages":{"":{"name":"x","version":"1.0.0"}}}"#;

fn node_app(package_json: &str) -> tempfile::TempDir {
    app(&[
        ("package.json", package_json),
        ("package-lock.json", LOCK_EMPTY),
        ("index.js", "console.log('x')\n"),
    ])
}

#[test]
fn node_app_plan() {
    let p = plan_ok(&testdata("node-app"), &opts());
    assert_eq!(p.lang.to_string(), "node");
    assert_eq!(p.toolchain.profile, "node-build");
    assert_eq!(p.toolchain.version, "20.19.2");
    assert_eq!(p.runtime.profile, "nodejs");
    assert_eq!(p.runtime.variant, "nonroot");
    // no dependencies: no production install, no node_modules layer
    assert_eq!(step_names(&p), ["npm-ci", "npm-run-build"]);
    let ci = step(&p, "npm-ci");
    assert_eq!(ci.argv, strs(&["npm", "ci", "--no-audit", "--no-fund"]));
    assert_eq!(ci.cwd, "/src");
    assert!(!ci.network, "nothing to download");
    assert_eq!(env_of(ci, "npm_config_cache"), Some("/root/.npm"));
    assert_eq!(
        step(&p, "npm-run-build").argv,
        strs(&["npm", "run", "build"])
    );
    assert_eq!(p.cache_mounts[0].name, "npm");
    assert_eq!(p.cache_mounts[0].target, "/root/.npm");
    assert_eq!(layer_names(&p), ["app"]);
    assert_eq!(p.config.entrypoint, ["/usr/bin/node", "server.js"]);
    assert!(p.config.env.contains(&"NODE_ENV=production".to_string()));
    assert_eq!(p.config.labels["org.opencontainers.image.version"], "1.0.0");

    // .dockerignore: *.md out, README.md back in — applied to the source copy
    let src = glob_filter(&[], &p.source_exclude).unwrap();
    assert!(!src.matches("NOTES.md", false));
    assert!(src.matches("README.md", false));
    assert!(src.matches("server.js", false));
    assert!(!src.matches("node_modules/x/index.js", false));

    // the app layer: tests, dotfiles, maps, node_modules out; the build output in
    let app = &p.layers[0];
    assert_eq!((app.from.as_str(), app.to.as_str()), ("/src", "/app"));
    let f = glob_filter(&app.include, &app.exclude).unwrap();
    for kept in [
        "server.js",
        "build.js",
        "package.json",
        "dist/banner.txt",
        "README.md",
    ] {
        assert!(f.matches(kept, false), "{kept} should be in the app layer");
    }
    for gone in [
        "test/server.test.js",
        ".dockerignore",
        "node_modules/a/index.js",
        "dist/app.js.map",
        "src/x.test.js",
        ".git/HEAD",
    ] {
        assert!(
            !f.matches(gone, false),
            "{gone} should not be in the app layer"
        );
    }
}

#[test]
fn production_dependencies_get_their_own_tree_and_layer() {
    let d = app(&[
        (
            "package.json",
            r#"{"name":"x","version":"2.0.0","dependencies":{"left-pad":"^1.3.0"},"devDependencies":{"typescript":"^5"},"scripts":{"start":"node index.js","prepare":"tsc"}}"#,
        ),
        (
            "package-lock.json",
            r#"{"lockfileVersion":3,"packages":{"":{},"node_modules/left-pad":{"version":"1.3.0"},"node_modules/typescript":{"version":"5.0.0","dev":true}}}"#,
        ),
        (".npmrc", "registry=https://registry.example/\n"),
        ("index.js", ""),
    ]);
    let p = plan_ok(d.path(), &opts());
    // the full install (for the app's prepare script) pruned to the production tree: nothing
    // is installed or compiled twice
    assert_eq!(step_names(&p), ["npm-ci", "npm-prune"]);
    assert!(step(&p, "npm-ci").network);
    let prune = step(&p, "npm-prune");
    assert_eq!(
        prune.argv,
        strs(&["npm", "prune", "--omit=dev", "--no-audit", "--no-fund"])
    );
    assert_eq!(prune.cwd, "/src");
    assert_eq!(env_of(prune, "NODE_ENV"), Some("production"));
    // no install script in the lockfile: no compilers in the build root
    assert!(p.toolchain.packages.is_empty());
    assert_eq!(env_of(prune, "npm_config_nodedir"), None);
    // without a build or install script of the app: a production-only install
    let d2 = app(&[
        (
            "package.json",
            r#"{"dependencies":{"left-pad":"^1.3.0"},"devDependencies":{"typescript":"^5"},"main":"index.js"}"#,
        ),
        (
            "package-lock.json",
            r#"{"lockfileVersion":3,"packages":{"":{},"node_modules/left-pad":{"version":"1.3.0"},"node_modules/typescript":{"version":"5.0.0","dev":true}}}"#,
        ),
        ("index.js", ""),
    ]);
    let p2 = plan_ok(d2.path(), &opts());
    assert_eq!(step_names(&p2), ["npm-ci-production"]);
    let prod = step(&p2, "npm-ci-production");
    assert_eq!(
        prod.argv,
        strs(&["npm", "ci", "--omit=dev", "--no-audit", "--no-fund"])
    );
    assert_eq!(prod.cwd, "/src");
    assert!(prod.network);
    assert_eq!(env_of(prod, "NODE_ENV"), Some("production"));
    assert_eq!(layer_names(&p), ["node_modules", "app"]);
    let nm = &p.layers[0];
    assert_eq!(nm.from, "/src/node_modules");
    assert_eq!(nm.to, "/app/node_modules");
    assert_eq!(
        nm.key_files,
        ["package.json", "package-lock.json", ".npmrc"]
    );
    // .npmrc (maybe a token) stays out of the app layer
    let f = glob_filter(&p.layers[1].include, &p.layers[1].exclude).unwrap();
    assert!(!f.matches(".npmrc", false));
}

#[test]
fn engines_node_ranges_against_each_release() {
    // (range, trixie ok, bookworm ok)
    let cases = [
        (">=18", true, true),
        (">=20", true, false),
        ("^22", false, false),
        ("18 || 20", true, true),
        (">=18 <20", false, true),
        ("20.x", true, false),
        ("~18", false, true),
        ("18.x || >=20.5", true, true),
        ("*", true, true),
    ];
    for (range, trixie, bookworm) in cases {
        let d = node_app(&format!(
            r#"{{"name":"x","main":"index.js","engines":{{"node":"{range}"}}}}"#
        ));
        for (distro, ok) in [(Distro::Trixie, trixie), (Distro::Bookworm, bookworm)] {
            let r = ocibuild_builders::plan(d.path(), &on(distro));
            match (ok, r) {
                (true, Ok(p)) => assert!(reasons_contain(&p, "satisfies engines.node")),
                (false, Err(e)) => {
                    assert!(matches!(e, BuildersError::Version { .. }), "{e:?}");
                    let msg = e.to_string();
                    assert!(msg.contains(range), "{msg}");
                    let hint = if distro == Distro::Bookworm {
                        "--distro trixie"
                    } else {
                        "--toolchain host"
                    };
                    assert!(msg.contains(hint), "{msg}");
                }
                (ok, r) => panic!("{range} on {distro}: want ok={ok}, got {r:?}"),
            }
        }
    }
    // a nonsense range is a parse error naming package.json
    let d = node_app(r#"{"name":"x","main":"index.js","engines":{"node":"lts"}}"#);
    let err = plan_err(d.path(), &opts());
    assert!(matches!(err, BuildersError::Parse { .. }), "{err:?}");
    assert!(err.to_string().contains("package.json"), "{err}");
    // the host's toolchain: a warning, not an error
    let d = node_app(r#"{"name":"x","main":"index.js","engines":{"node":"^22"}}"#);
    let o = Options {
        toolchain_host: true,
        ..Options::default()
    };
    let p = plan_ok(d.path(), &o);
    assert!(
        reasons_contain(&p, "warning: engines.node"),
        "{:?}",
        p.reasons
    );
    assert_eq!(p.toolchain.profile, "host");
    // the host's node is probed against engines.node (npm only when a step runs it)
    let node = &p.toolchain.host_tools[0];
    assert_eq!(node.program, "node");
    assert_eq!(
        node.requirements[0].constraint,
        ocibuild_builders::Constraint::NpmRange("^22".into())
    );
    assert_eq!(node.requirements[0].origin, "package.json:1, engines.node");
    assert!(
        p.toolchain.host_tools.iter().all(|t| t.program != "npm"),
        "no npm step for an app without dependencies: {:?}",
        p.toolchain.host_tools
    );
}

#[test]
fn entrypoint_from_start_main_or_files() {
    // (package.json, extra files, expected entrypoint or None for an error)
    type Case = (&'static str, Vec<&'static str>, Option<Vec<&'static str>>);
    let cases: Vec<Case> = vec![
        (
            r#"{"scripts":{"start":"node dist/index.js --port 8080"}}"#,
            vec![],
            Some(vec!["/usr/bin/node", "dist/index.js", "--port", "8080"]),
        ),
        (
            r#"{"scripts":{"start":"node --enable-source-maps srv.js"},"main":"lib/x.js"}"#,
            vec![],
            Some(vec!["/usr/bin/node", "--enable-source-maps", "srv.js"]),
        ),
        (
            r#"{"scripts":{"start":"next start"},"main":"lib/main.js"}"#,
            vec![],
            Some(vec!["/usr/bin/node", "lib/main.js"]),
        ),
        (
            r#"{"scripts":{"start":"node a.js && node b.js"}}"#,
            vec!["server.js"],
            Some(vec!["/usr/bin/node", "server.js"]),
        ),
        (
            r#"{}"#,
            vec!["app.js"],
            Some(vec!["/usr/bin/node", "app.js"]),
        ),
        (
            r#"{}"#,
            vec!["index.js", "app.js"],
            Some(vec!["/usr/bin/node", "index.js"]),
        ),
        (
            r#"{"scripts":{"start":"react-scripts start"}}"#,
            vec!["other.js"],
            None,
        ),
    ];
    for (pj, files, want) in cases {
        let mut all: Vec<(&str, &str)> =
            vec![("package.json", pj), ("package-lock.json", LOCK_EMPTY)];
        all.extend(files.iter().map(|f| (*f, "")));
        let d = app(&all);
        match want {
            Some(ep) => assert_eq!(
                plan_ok(d.path(), &opts()).config.entrypoint,
                strs(&ep),
                "{pj}"
            ),
            None => {
                let err = plan_err(d.path(), &opts());
                assert!(matches!(err, BuildersError::Entrypoint { .. }), "{err:?}");
                assert!(err.to_string().contains("--entrypoint"), "{err}");
            }
        }
    }
    // env assignments in the start script become image env
    let d = node_app(r#"{"scripts":{"start":"PORT=3000 node index.js"}}"#);
    let p = plan_ok(d.path(), &opts());
    assert!(
        p.config.env.contains(&"PORT=3000".to_string()),
        "{:?}",
        p.config.env
    );
    // --main and --entrypoint win
    let mut o = opts();
    o.main = Some("other.js".into());
    assert_eq!(
        plan_ok(d.path(), &o).config.entrypoint,
        ["/usr/bin/node", "other.js"]
    );
    let mut o = opts();
    o.entrypoint = Some(strs(&["/usr/bin/node", "--version"]));
    let d = app(&[("package.json", "{}"), ("package-lock.json", LOCK_EMPTY)]);
    assert_eq!(
        plan_ok(d.path(), &o).config.entrypoint,
        ["/usr/bin/node", "--version"]
    );
}

#[test]
fn lockfiles_yarn_pnpm_and_none() {
    const YARN_V1: &str = "# THIS IS AN AUTOGENERATED FILE. DO NOT EDIT THIS FILE DIRECTLY.\n# yarn lockfile v1\n\n\nms@^2.1.3:\n  version \"2.1.3\"\n";
    const YARN_BERRY: &str = "__metadata:\n  version: 8\n  cacheKey: 10c0\n";
    let pj =
        r#"{"main":"index.js","dependencies":{"ms":"^2.1.3"},"devDependencies":{"prettier":"3"}}"#;
    // yarn classic: yarn from the npm registry (pinned), frozen installs
    let d = app(&[
        ("package.json", pj),
        ("yarn.lock", YARN_V1),
        ("index.js", ""),
    ]);
    let p = plan_ok(d.path(), &opts());
    assert_eq!(
        step(&p, "package-manager").argv,
        strs(&[
            "npm",
            "install",
            "--global",
            "--prefix",
            "/out/pm",
            "--no-audit",
            "--no-fund",
            "yarn@1.22.22"
        ])
    );
    assert!(step(&p, "package-manager").network);
    assert_eq!(p.toolchain.path_prepend, ["/out/pm/bin"]);
    assert_eq!(
        step_names(&p),
        ["package-manager", "yarn-install-production"]
    );
    assert!(
        step(&p, "yarn-install-production")
            .argv
            .contains(&"--frozen-lockfile".to_string())
    );
    assert!(p.cache_mounts.iter().any(|c| c.name == "yarn"));
    assert_eq!(p.layers[0].from, "/src/node_modules");
    // packageManager wins over the pinned default; a build script: full install, build, prune
    let d = app(&[
        (
            "package.json",
            r#"{"main":"index.js","dependencies":{"ms":"^2.1.3"},"scripts":{"build":"tsc"},"packageManager":"yarn@1.22.19+sha512.abc"}"#,
        ),
        ("yarn.lock", YARN_V1),
    ]);
    let p = plan_ok(d.path(), &opts());
    assert_eq!(step(&p, "package-manager").argv[7], "yarn@1.22.19");
    assert_eq!(
        step_names(&p),
        [
            "package-manager",
            "yarn-install",
            "yarn-run-build",
            "yarn-install-production"
        ]
    );
    // yarn berry: the node-modules linker only, immutable installs, focus --production
    let d = app(&[
        ("package.json", pj),
        ("yarn.lock", YARN_BERRY),
        (".yarnrc.yml", "nodeLinker: \"node-modules\"\n"),
    ]);
    let p = plan_ok(d.path(), &opts());
    assert_eq!(
        step(&p, "package-manager").argv[7],
        "@yarnpkg/cli-dist@4.18.1"
    );
    assert_eq!(
        step(&p, "yarn-focus-production").argv,
        strs(&["yarn", "workspaces", "focus", "--production"])
    );
    let d = app(&[("package.json", pj), ("yarn.lock", YARN_BERRY)]);
    let msg = plan_err(d.path(), &opts()).to_string();
    assert!(msg.contains("Plug'n'Play"), "{msg}");
    assert!(msg.contains("nodeLinker: node-modules"), "{msg}");
    // packageManager and lockfile disagree
    let d = app(&[
        (
            "package.json",
            r#"{"main":"index.js","packageManager":"yarn@4.1.0"}"#,
        ),
        ("yarn.lock", YARN_V1),
    ]);
    assert!(
        plan_err(d.path(), &opts())
            .to_string()
            .contains("yarn classic (1.x)")
    );
    // pnpm: hoisted (a plain node_modules), frozen
    let d = app(&[
        ("package.json", pj),
        (
            "pnpm-lock.yaml",
            "lockfileVersion: '9.0'\n\nsettings:\n  autoInstallPeers: true\n",
        ),
    ]);
    let p = plan_ok(d.path(), &opts());
    assert_eq!(step(&p, "package-manager").argv[7], "pnpm@10.34.8");
    let prod = step(&p, "pnpm-install-production");
    for a in [
        "--frozen-lockfile",
        "--prod",
        "--config.node-linker=hoisted",
    ] {
        assert!(prod.argv.contains(&a.to_string()), "{a}: {:?}", prod.argv);
    }
    assert!(p.cache_mounts.iter().any(|c| c.name == "pnpm"));
    let d = app(&[
        ("package.json", pj),
        ("pnpm-lock.yaml", "lockfileVersion: 5.4\n"),
    ]);
    assert!(
        plan_err(d.path(), &opts())
            .to_string()
            .contains("packageManager")
    );
    // a native-addon helper in the lockfile brings the compilers
    let d = app(&[
        ("package.json", pj),
        (
            "pnpm-lock.yaml",
            "lockfileVersion: '9.0'\npackages:\n  node-gyp-build@4.8.4:\n    resolution: {}\n",
        ),
    ]);
    assert_eq!(
        plan_ok(d.path(), &opts()).toolchain.packages,
        ["python3", "make", "g++"]
    );
    // bun: still refused, clearly
    let d = app(&[("package.json", "{}"), ("bun.lockb", ""), ("index.js", "")]);
    let msg = plan_err(d.path(), &opts()).to_string();
    assert!(msg.contains("bun is not supported yet"), "{msg}");

    let d = app(&[("package.json", "{}"), ("index.js", "")]);
    let msg = plan_err(d.path(), &opts()).to_string();
    assert!(msg.contains("no lockfile"), "{msg}");
    assert!(msg.contains("npm install"), "{msg}");
    assert!(msg.contains("pnpm-lock.yaml"), "{msg}");

    // npm-shrinkwrap.json wins over package-lock.json
    let d = app(&[
        ("package.json", r#"{"dependencies":{"a":"1"}}"#),
        (
            "npm-shrinkwrap.json",
            r#"{"lockfileVersion":3,"packages":{"":{},"node_modules/a":{}}}"#,
        ),
        ("package-lock.json", LOCK_EMPTY),
        ("index.js", ""),
    ]);
    let p = plan_ok(d.path(), &opts());
    assert!(reasons_contain(&p, "npm-shrinkwrap.json found"));
}

#[test]
fn typescript_sources_leave_the_app_layer_when_compiled() {
    let files = [
        (
            "package.json",
            r#"{"scripts":{"build":"tsc","start":"node dist/index.js"},"devDependencies":{"typescript":"5"}}"#,
        ),
        ("package-lock.json", LOCK_EMPTY),
        (
            "tsconfig.json",
            "{\n // c\n \"compilerOptions\": {\"outDir\": \"./dist\",},\n}\n",
        ),
        ("src/index.ts", "console.log(1)\n"),
    ];
    let d = app(&files);
    let p = plan_ok(d.path(), &opts());
    let app_layer = p.layers.iter().find(|l| l.name == "app").unwrap();
    let f = glob_filter(&app_layer.include, &app_layer.exclude).unwrap();
    assert!(!f.matches("src/index.ts", false));
    assert!(f.matches("dist/index.js", false));
    assert!(reasons_contain(&p, "TypeScript compiled into dist/"));
    // without a build script the .ts files are the app
    let d = app(&[
        ("package.json", r#"{"main":"index.js"}"#),
        ("package-lock.json", LOCK_EMPTY),
        ("lib/x.ts", ""),
    ]);
    let p = plan_ok(d.path(), &opts());
    let f = glob_filter(&p.layers[0].include, &p.layers[0].exclude).unwrap();
    assert!(f.matches("lib/x.ts", false));
}

#[test]
fn workspaces_and_broken_json_are_clear_errors() {
    let d = app(&[
        ("package.json", r#"{"workspaces":["a"]}"#),
        ("package-lock.json", LOCK_EMPTY),
    ]);
    assert!(
        plan_err(d.path(), &opts())
            .to_string()
            .contains("workspaces")
    );
    let d = app(&[
        ("package.json", "{\n\"a\": 1,\n}"),
        ("package-lock.json", LOCK_EMPTY),
    ]);
    let err = plan_err(d.path(), &opts());
    assert!(err.to_string().contains("package.json:3"), "{err}");
}

#[test]
fn a_workspace_package_without_its_own_lockfile_names_the_workspace_root() {
    // an npm-workspaces monorepo: one lockfile at the root, the app under packages/
    let d = app(&[
        (
            "package.json",
            r#"{"private":true,"workspaces":["packages/*"]}"#,
        ),
        ("package-lock.json", LOCK_EMPTY),
        (
            "packages/api/package.json",
            r#"{"name":"@mono/api","scripts":{"start":"node server.js"}}"#,
        ),
        ("packages/api/server.js", ""),
    ]);
    let err = plan_err(&d.path().join("packages/api"), &opts()).to_string();
    assert!(err.contains("npm workspace at"), "{err}");
    assert!(err.contains("--workspace packages/api"), "{err}");
    // the command line builds it from the root (`ocibuild build mono/packages/api`)
    let (root, member) = ocibuild_builders::workspace_of(&d.path().join("packages/api"))
        .unwrap()
        .unwrap();
    assert_eq!(root, d.path().canonicalize().unwrap());
    assert_eq!(member, "packages/api");
    // its own lockfile: an app of its own
    assert!(
        ocibuild_builders::workspace_of(&testdata("node-deps"))
            .unwrap()
            .is_none()
    );
}

fn ws(name: &str) -> Options {
    Options {
        workspace: Some(name.into()),
        ..Options::default()
    }
}

#[test]
fn an_npm_workspace_app_is_planned_from_the_root_with_its_local_packages() {
    let root = testdata("node-workspaces");
    let p = plan_ok(&root, &ws("apps/api"));
    // the same workspace by its package name, as npm's -w takes it
    assert_eq!(plan_ok(&root, &ws("@acme/api")).steps, p.steps);
    assert_eq!(
        step_names(&p),
        strs(&["npm-ci", "npm-run-build", "npm-prune"])
    );
    let ci = step(&p, "npm-ci");
    assert_eq!(
        ci.argv,
        strs(&[
            "npm",
            "ci",
            "--no-audit",
            "--no-fund",
            "--workspace",
            "apps/api",
            "--include-workspace-root"
        ])
    );
    // no install script anywhere: the full install reads the lockfile and the manifests only
    let inputs = ci.inputs.clone().unwrap();
    for f in [
        "package.json",
        "package-lock.json",
        "apps/api/package.json",
        "apps/web/package.json",
        "packages/shared/package.json",
    ] {
        assert!(inputs.contains(&f.to_string()), "{f}: {inputs:?}");
    }
    assert_eq!(
        step(&p, "npm-run-build").argv,
        strs(&["npm", "run", "build", "--workspace", "apps/api"])
    );
    assert!(step(&p, "npm-prune").argv.ends_with(&strs(&[
        "--workspace",
        "apps/api",
        "--include-workspace-root"
    ])));
    // the other app's sources never reach the build, its package.json does (npm ci reads it)
    let src = glob_filter(&[], &p.source_exclude).unwrap();
    assert!(src.is_excluded("apps/web/server.js"));
    assert!(!src.is_excluded("apps/web/package.json"));
    assert!(!src.is_excluded("packages/shared/index.js"));
    assert!(!src.is_excluded("apps/api/src/server.ts"));
    // the image: the app and the library it needs, under their own paths; the app's
    // directory is the working directory
    assert_eq!(p.config.workdir, "/app/apps/api");
    assert_eq!(
        p.config.entrypoint,
        strs(&["/usr/bin/node", "dist/server.js"])
    );
    let app = p.layers.iter().find(|l| l.name == "app").unwrap();
    assert_eq!((app.from.as_str(), app.to.as_str()), ("/src", "/app"));
    let f = glob_filter(&app.include, &app.exclude).unwrap();
    assert!(f.matches("apps/api/dist/server.js", false));
    assert!(f.matches("packages/shared/index.js", false));
    assert!(f.matches("apps/api/node_modules/x/index.js", false));
    assert!(!f.matches("apps/web/server.js", false));
    assert!(!f.matches("apps/api/src/server.ts", false));
    assert!(!f.matches("apps/api/test/server.test.js", false));
    assert!(!f.matches("node_modules/ms/index.js", false));
    assert!(!f.matches("package-lock.json", false));
    assert!(
        p.reasons
            .iter()
            .any(|r| r.contains("local dependencies in the image: packages/shared (@acme/shared)")),
        "{:?}",
        p.reasons
    );
}

#[test]
fn a_pnpm_workspace_app_is_installed_filtered_and_deployed_with_its_local_packages() {
    let root = testdata("pnpm-monorepo");
    let p = plan_ok(&root, &ws("apps/api"));
    // by package name too (as pnpm's --filter takes it)
    assert_eq!(plan_ok(&root, &ws("@acme/api")).steps, p.steps);
    assert_eq!(
        step_names(&p),
        strs(&[
            "package-manager",
            "pnpm-install",
            "pnpm-run-build",
            "pnpm-deploy"
        ])
    );
    assert_eq!(
        step(&p, "package-manager").argv.last().unwrap(),
        "pnpm@10.34.8"
    );
    let install = step(&p, "pnpm-install");
    assert_eq!(
        install.argv,
        strs(&[
            "pnpm",
            "install",
            "--frozen-lockfile",
            "--config.confirm-modules-purge=false",
            "--filter",
            "{./apps/api}...",
            "--filter",
            "{.}"
        ])
    );
    // keyed by the lockfile, pnpm-workspace.yaml and every manifest: a source edit reuses it
    let inputs = install.inputs.clone().unwrap();
    for f in [
        "package.json",
        "pnpm-lock.yaml",
        "pnpm-workspace.yaml",
        ".npmrc",
        "apps/api/package.json",
        "apps/web/package.json",
        "packages/shared/package.json",
    ] {
        assert!(inputs.contains(&f.to_string()), "{f}: {inputs:?}");
    }
    assert!(!inputs.iter().any(|f| f.ends_with(".ts")), "{inputs:?}");
    // the library's build, then the app's (pnpm orders the filtered packages by dependency)
    assert_eq!(
        step(&p, "pnpm-run-build").argv,
        strs(&[
            "pnpm",
            "--workspace-concurrency=1",
            "--filter",
            "{./packages/shared}",
            "--filter",
            "{./apps/api}",
            "run",
            "build"
        ])
    );
    let deploy = step(&p, "pnpm-deploy");
    assert_eq!(
        deploy.argv,
        strs(&[
            "pnpm",
            "--filter={./apps/api}",
            "deploy",
            "--prod",
            "--legacy",
            "/out/deploy"
        ])
    );
    // pnpm 10's legacy deploy reads the registry's metadata again
    assert!(deploy.network);
    // the other app's sources never reach the build; its package.json does
    let src = glob_filter(&[], &p.source_exclude).unwrap();
    assert!(src.is_excluded("apps/web/server.js"));
    assert!(!src.is_excluded("apps/web/package.json"));
    assert!(!src.is_excluded("packages/shared/src/index.ts"));
    // the image is the deployed tree: the app at /app, pnpm's node_modules kept whole
    assert_eq!(p.config.workdir, "/app");
    assert_eq!(
        p.config.entrypoint,
        strs(&["/usr/bin/node", "dist/server.js"])
    );
    assert_eq!(layer_names(&p), ["node_modules", "app"]);
    let nm = &p.layers[0];
    assert_eq!(
        (nm.from.as_str(), nm.to.as_str()),
        ("/out/deploy/node_modules", "/app/node_modules")
    );
    assert!(nm.key_files.is_empty(), "the copied local packages key it");
    let f = glob_filter(&nm.include, &nm.exclude).unwrap();
    assert!(f.matches(".pnpm/express@4.21.2/node_modules/express/index.js", false));
    assert!(!f.matches(".modules.yaml", false));
    assert!(!f.matches(".pnpm/lock.yaml", false));
    // pnpm's hoisted link to the app itself aims at its workspace directory: left out
    assert!(!f.matches(".pnpm/node_modules/@acme/api", false));
    assert!(f.matches(".pnpm/node_modules/@acme/shared", false));
    let app = &p.layers[1];
    assert_eq!(
        (app.from.as_str(), app.to.as_str()),
        ("/out/deploy", "/app")
    );
    let f = glob_filter(&app.include, &app.exclude).unwrap();
    assert!(f.matches("dist/server.js", false));
    assert!(f.matches("package.json", false));
    assert!(!f.matches("src/server.ts", false));
    assert!(!f.matches("test/server.test.js", false));
    assert!(!f.matches("node_modules/express/index.js", false));
    // the app's directory plans the same build (the context is the root)
    let (r, member) = ocibuild_builders::workspace_of(&root.join("apps/api"))
        .unwrap()
        .unwrap();
    assert_eq!(r, root.canonicalize().unwrap());
    assert_eq!(member, "apps/api");
    let err = plan_err(&root.join("apps/api"), &opts()).to_string();
    assert!(err.contains("pnpm workspace at"), "{err}");
}

#[test]
fn a_yarn_workspace_app_is_focused_to_its_production_tree() {
    let root = testdata("yarn-monorepo");
    let p = plan_ok(&root, &ws("apps/api"));
    assert_eq!(plan_ok(&root, &ws("@acme/api")).steps, p.steps);
    assert_eq!(
        step_names(&p),
        strs(&[
            "package-manager",
            "yarn-install",
            "yarn-run-build",
            "yarn-focus-production"
        ])
    );
    assert_eq!(
        step(&p, "package-manager").argv.last().unwrap(),
        "@yarnpkg/cli-dist@4.18.1"
    );
    let install = step(&p, "yarn-install");
    assert_eq!(install.argv, strs(&["yarn", "install", "--immutable"]));
    let inputs = install.inputs.clone().unwrap();
    for f in [
        "package.json",
        "yarn.lock",
        ".yarnrc.yml",
        "apps/api/package.json",
        "apps/web/package.json",
        "packages/shared/package.json",
    ] {
        assert!(inputs.contains(&f.to_string()), "{f}: {inputs:?}");
    }
    assert_eq!(
        step(&p, "yarn-run-build").argv,
        strs(&[
            "yarn",
            "workspaces",
            "foreach",
            "--recursive",
            "--topological-dev",
            "--from",
            "apps/api",
            "run",
            "build"
        ])
    );
    assert_eq!(
        step(&p, "yarn-focus-production").argv,
        strs(&["yarn", "workspaces", "focus", "--production", "@acme/api"])
    );
    // npm's workspace layout: the hoisted node_modules, the app and the library it needs
    assert_eq!(p.config.workdir, "/app/apps/api");
    let nm = p.layers.iter().find(|l| l.name == "node_modules").unwrap();
    assert!(nm.key_files.contains(&".yarnrc.yml".to_string()));
    assert!(nm.key_files.contains(&"apps/web/package.json".to_string()));
    let layer = p.layers.iter().find(|l| l.name == "app").unwrap();
    let f = glob_filter(&layer.include, &layer.exclude).unwrap();
    assert!(f.matches("apps/api/dist/server.js", false));
    assert!(f.matches("packages/shared/dist/index.js", false));
    assert!(!f.matches("packages/shared/src/index.ts", false));
    assert!(
        !f.matches("packages/shared/src", true),
        "a directory of TypeScript alone"
    );
    assert!(!f.matches("apps/web/server.js", false));
    // yarn classic workspaces: refused, with why and the way out
    let d = app(&[
        (
            "package.json",
            r#"{"private":true,"workspaces":["apps/*"]}"#,
        ),
        ("yarn.lock", "# yarn lockfile v1\n"),
        (
            "apps/api/package.json",
            r#"{"name":"api","scripts":{"start":"node server.js"}}"#,
        ),
    ]);
    let err = plan_err(d.path(), &opts()).to_string();
    assert!(
        err.contains("yarn classic workspaces are not supported yet"),
        "{err}"
    );
    assert!(err.contains("no `workspaces focus`"), "{err}");
    assert!(err.contains("Yarn 4"), "{err}");
}

#[test]
fn pnpm_workspace_roots_name_what_is_wrong_and_the_fix() {
    let root = testdata("pnpm-monorepo");
    let err = plan_err(&root, &opts()).to_string();
    assert!(
        err.contains("a pnpm workspace root with several apps"),
        "{err}"
    );
    assert!(
        err.contains("apps/api (@acme/api), apps/web (@acme/web)"),
        "{err}"
    );
    assert!(err.contains("--workspace apps/api"), "{err}");
    let err = plan_err(&root, &ws("@acme/nope")).to_string();
    assert!(err.contains("pnpm workspace root"), "{err}");
    assert!(err.contains("packages/shared (@acme/shared)"), "{err}");
    let mono = |yaml: &str, extra: &[(&str, &str)]| {
        let mut files = vec![
            (
                "package.json",
                r#"{"private":true,"packageManager":"pnpm@9.15.9"}"#,
            ),
            ("pnpm-workspace.yaml", yaml),
            (
                "apps/api/package.json",
                r#"{"name":"api","scripts":{"start":"node server.js"},"dependencies":{"lib":"workspace:*"}}"#,
            ),
            ("apps/api/server.js", ""),
            ("packages/lib/package.json", r#"{"name":"lib"}"#),
            ("tools/gen/package.json", r#"{"name":"gen"}"#),
        ];
        files.extend_from_slice(extra);
        app(&files)
    };
    let lock = ("pnpm-lock.yaml", "lockfileVersion: '9.0'\n");
    // a flow list, comments and quotes; the one app is chosen; pnpm 9 has no --legacy
    let d = mono(
        "# the workspace\npackages: ['apps/*', \"packages/*\"] # all\n",
        &[lock],
    );
    let p = plan_ok(d.path(), &opts());
    assert!(
        !step(&p, "pnpm-deploy")
            .argv
            .contains(&"--legacy".to_string())
    );
    assert_eq!(
        step(&p, "package-manager").argv.last().unwrap(),
        "pnpm@9.15.9"
    );
    // no build script anywhere: no build step, the install and the deploy still run
    assert_eq!(
        step_names(&p),
        strs(&["package-manager", "pnpm-install", "pnpm-deploy"])
    );
    // no lockfile
    let d = mono("packages:\n  - apps/*\n  - packages/*\n", &[]);
    let err = plan_err(d.path(), &opts()).to_string();
    assert!(err.contains("no lockfile"), "{err}");
    assert!(err.contains("`pnpm install`"), "{err}");
    // a package the workspace does not list: the fix names pnpm-workspace.yaml
    let d = mono("packages:\n  - \"apps/*\"\n  - 'packages/*'\n", &[lock]);
    let err = ocibuild_builders::workspace_of(&d.path().join("tools/gen"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("to `packages` in"), "{err}");
    assert!(err.contains("pnpm-workspace.yaml"), "{err}");
    // a pnpm-workspace.yaml of settings alone is no workspace: a single app
    let d = app(&[
        ("package.json", r#"{"scripts":{"start":"node server.js"}}"#),
        (
            "pnpm-workspace.yaml",
            "onlyBuiltDependencies:\n  - esbuild\n",
        ),
        lock,
        ("server.js", ""),
    ]);
    let p = plan_ok(d.path(), &opts());
    assert_eq!(p.config.workdir, "/app");
    assert!(!step_names(&p).contains(&"pnpm-deploy".to_string()));
}

#[test]
fn npm_workspace_roots_name_what_is_wrong_and_the_fix() {
    let root = testdata("node-workspaces");
    // two apps with a start script: which one
    let err = plan_err(&root, &opts()).to_string();
    assert!(err.contains("several apps"), "{err}");
    assert!(
        err.contains("apps/api (@acme/api), apps/web (@acme/web)"),
        "{err}"
    );
    assert!(err.contains("--workspace apps/api"), "{err}");
    // a workspace that does not exist: the list of those that do
    let err = plan_err(&root, &ws("apps/nope")).to_string();
    assert!(err.contains("--workspace"), "{err}");
    assert!(err.contains("has no workspace apps/nope"), "{err}");
    assert!(err.contains("packages/shared (@acme/shared)"), "{err}");
    // --workspace on an app that is no workspace root
    let err = plan_err(&testdata("node-deps"), &ws("apps/api")).to_string();
    assert!(err.contains("not a workspace root"), "{err}");
    // --workspace on another language
    let err = plan_err(&testdata("python-app"), &ws("apps/api")).to_string();
    assert!(
        err.contains("npm, pnpm or Yarn workspace or the module of a Go monorepo"),
        "{err}"
    );
    // on a Go module: the directory must be a module
    let err = plan_err(&testdata("go-hello"), &ws("apps/api")).to_string();
    assert!(err.contains("holds no go.mod"), "{err}");
    // a root with no lockfile
    let mono = |extra: &[(&str, &str)]| {
        let mut files = vec![
            (
                "package.json",
                r#"{"private":true,"workspaces":["apps/*","packages/*"]}"#,
            ),
            (
                "apps/api/package.json",
                r#"{"name":"api","scripts":{"start":"node server.js"},"dependencies":{"lib":"*"}}"#,
            ),
            ("apps/api/server.js", ""),
            ("packages/lib/package.json", r#"{"name":"lib"}"#),
            ("tools/gen/package.json", r#"{"name":"gen"}"#),
        ];
        files.extend_from_slice(extra);
        app(&files)
    };
    let d = mono(&[]);
    let err = plan_err(d.path(), &opts()).to_string();
    assert!(err.contains("no lockfile"), "{err}");
    assert!(err.contains("run `npm install` in"), "{err}");
    // yarn workspaces: not yet, said so
    let d = mono(&[("yarn.lock", "# yarn lockfile v1\n")]);
    let err = plan_err(d.path(), &opts()).to_string();
    assert!(
        err.contains("yarn classic workspaces are not supported yet"),
        "{err}"
    );
    // pnpm reads its workspaces from pnpm-workspace.yaml, never package.json
    let d = mono(&[("pnpm-lock.yaml", "lockfileVersion: '9.0'\n")]);
    let err = plan_err(d.path(), &opts()).to_string();
    assert!(
        err.contains("pnpm reads its workspaces from pnpm-workspace.yaml"),
        "{err}"
    );
    // the one app with a start script is chosen without --workspace; its own ocibuild.toml
    // applies, relative writable directories under the app's directory
    let d = mono(&[
        ("package-lock.json", LOCK_EMPTY),
        (
            "apps/api/ocibuild.toml",
            "writable = [\"uploads\", \"/data\"]\nexpose = [\"3000/tcp\"]\n",
        ),
    ]);
    let p = plan_ok(d.path(), &opts());
    assert_eq!(p.config.workdir, "/app/apps/api");
    assert_eq!(p.config.exposed_ports, strs(&["3000/tcp"]));
    assert_eq!(
        p.writable.unwrap().dirs,
        strs(&["/app/apps/api/uploads", "/data"])
    );
    // a package the root's workspaces do not list
    let err = ocibuild_builders::workspace_of(&d.path().join("tools/gen"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not one of this workspace root's packages"),
        "{err}"
    );
    assert!(err.contains("add \"tools/gen\""), "{err}");
}

#[test]
fn framework_start_commands() {
    // NestJS: start:prod wins over a `nest start` start script
    let d = app(&[
        (
            "package.json",
            r#"{"scripts":{"build":"nest build","start":"nest start","start:prod":"node dist/main"},"dependencies":{"@nestjs/core":"10"}}"#,
        ),
        ("package-lock.json", LOCK_EMPTY),
        ("nest-cli.json", r#"{"sourceRoot":"src"}"#),
    ]);
    let p = plan_ok(d.path(), &opts());
    assert_eq!(p.config.entrypoint, ["/usr/bin/node", "dist/main"]);
    assert!(reasons_contain(&p, "scripts.start:prod"), "{:?}", p.reasons);
    // NestJS without start:prod: nest-cli.json's entryFile in tsconfig's outDir
    let d = app(&[
        (
            "package.json",
            r#"{"scripts":{"build":"nest build","start":"nest start"}}"#,
        ),
        ("package-lock.json", LOCK_EMPTY),
        (
            "nest-cli.json",
            r#"{"sourceRoot":"src","entryFile":"server"}"#,
        ),
        (
            "tsconfig.json",
            r#"{"compilerOptions":{"outDir":"./build"}}"#,
        ),
        ("tsconfig.build.json", r#"{"extends":"./tsconfig.json"}"#),
    ]);
    let p = plan_ok(d.path(), &opts());
    assert_eq!(p.config.entrypoint, ["/usr/bin/node", "build/server.js"]);
    let d = app(&[
        ("package.json", r#"{"scripts":{"start":"nest start"}}"#),
        ("package-lock.json", LOCK_EMPTY),
        ("nest-cli.json", "{}"),
    ]);
    assert_eq!(
        plan_ok(d.path(), &opts()).config.entrypoint,
        ["/usr/bin/node", "dist/main.js"]
    );
    // serve
    let d = node_app(r#"{"scripts":{"start":"vite","serve":"node srv/index.mjs"}}"#);
    assert_eq!(
        plan_ok(d.path(), &opts()).config.entrypoint,
        ["/usr/bin/node", "srv/index.mjs"]
    );
    // Next.js standalone: server.js of .next/standalone, its static files and public
    let d = app(&[
        (
            "package.json",
            r#"{"scripts":{"build":"next build","start":"next start"},"dependencies":{"next":"15"}}"#,
        ),
        (
            "package-lock.json",
            r#"{"lockfileVersion":3,"packages":{"":{},"node_modules/next":{"version":"15.0.0"}}}"#,
        ),
        (
            "next.config.mjs",
            "/** @type {import('next').NextConfig} */\nconst nextConfig = {\n  output: 'standalone',\n};\nexport default nextConfig;\n",
        ),
    ]);
    let p = plan_ok(d.path(), &opts());
    assert_eq!(p.config.entrypoint, ["/usr/bin/node", "server.js"]);
    assert!(p.config.env.contains(&"HOSTNAME=0.0.0.0".to_string()));
    assert_eq!(
        layer_names(&p),
        ["next-standalone", "next-static", "public"]
    );
    let l: Vec<(&str, &str)> = p
        .layers
        .iter()
        .map(|l| (l.from.as_str(), l.to.as_str()))
        .collect();
    assert_eq!(
        l,
        [
            ("/src/.next/standalone", "/app"),
            ("/src/.next/static", "/app/.next/static"),
            ("/src/public", "/app/public")
        ]
    );
    assert!(step_names(&p).iter().any(|s| s == "npm-run-build"));
    // Next.js without standalone output: a clear error naming the fix
    let d = app(&[
        (
            "package.json",
            r#"{"scripts":{"build":"next build","start":"next start"}}"#,
        ),
        ("package-lock.json", LOCK_EMPTY),
        (
            "next.config.js",
            "module.exports = { reactStrictMode: true };\n",
        ),
    ]);
    let msg = plan_err(d.path(), &opts()).to_string();
    assert!(msg.contains("output: \"standalone\""), "{msg}");
    assert!(msg.contains("next.config.js"), "{msg}");
    // ... and with next among its dependencies (create-next-app's shape): `next start`, the
    // next CLI run by node over the production node_modules and .next, without next's cache
    let d = app(&[
        (
            "package.json",
            r#"{"scripts":{"build":"next build","start":"NODE_OPTIONS=--max-old-space-size=512 next start -p 8080"},"dependencies":{"next":"15","react":"19"}}"#,
        ),
        (
            "package-lock.json",
            r#"{"lockfileVersion":3,"packages":{"":{},"node_modules/next":{"version":"15.0.0"}}}"#,
        ),
        (
            "next.config.ts",
            "export default { reactStrictMode: true };\n",
        ),
    ]);
    let p = plan_ok(d.path(), &opts());
    assert_eq!(
        p.config.entrypoint,
        [
            "/usr/bin/node",
            "node_modules/next/dist/bin/next",
            "start",
            "-p",
            "8080"
        ]
    );
    assert!(
        p.config
            .env
            .contains(&"NODE_OPTIONS=--max-old-space-size=512".to_string()),
        "{:?}",
        p.config.env
    );
    assert_eq!(layer_names(&p), ["node_modules", "app"]);
    let app_layer = p.layers.iter().find(|l| l.name == "app").unwrap();
    assert!(
        app_layer.exclude.iter().any(|e| e == ".next/cache"),
        "{:?}",
        app_layer.exclude
    );
    assert!(step_names(&p).iter().any(|s| s == "npm-run-build"));
    // nothing fits: the error lists what was tried
    let d = app(&[
        (
            "package.json",
            r#"{"scripts":{"start":"react-scripts start","serve":"serve -s build"}}"#,
        ),
        ("package-lock.json", LOCK_EMPTY),
    ]);
    let msg = plan_err(d.path(), &opts()).to_string();
    for tried in [
        "scripts.start:prod (absent)",
        "scripts.start \"react-scripts start\"",
        "scripts.serve \"serve -s build\"",
        "nest-cli.json",
        "main",
        "index.js",
    ] {
        assert!(msg.contains(tried), "{tried} in {msg}");
    }
}

#[test]
fn install_scripts_bring_compilers_and_node_headers() {
    let d = app(&[
        (
            "package.json",
            r#"{"main":"index.js","dependencies":{"bufferutil":"^4","native-hash":"file:packages/native-hash"}}"#,
        ),
        (
            "package-lock.json",
            r#"{"lockfileVersion":3,"packages":{"":{},"node_modules/bufferutil":{"version":"4.1.0","hasInstallScript":true},"node_modules/native-hash":{"resolved":"packages/native-hash","link":true},"packages/native-hash":{"version":"1.0.0","hasInstallScript":true}}}"#,
        ),
        ("index.js", ""),
    ]);
    let p = plan_ok(d.path(), &opts());
    assert_eq!(p.toolchain.packages, ["python3", "make", "g++"]);
    assert!(
        reasons_contain(
            &p,
            "2 packages with install scripts (bufferutil, packages/native-hash)"
        ),
        "{:?}",
        p.reasons
    );
    let prod = step(&p, "npm-ci-production");
    assert_eq!(env_of(prod, "npm_config_nodedir"), Some("/usr"));
    // what node-gyp leaves beside the addon stays out of both layers
    for l in &p.layers {
        let f = glob_filter(&l.include, &l.exclude).unwrap();
        assert!(!f.matches("packages/native-hash/build/Release/obj.target/x.o", false));
        assert!(!f.matches("x/build/Release/obj.target/native_hash/src/hash.o", false));
        assert!(f.matches("packages/native-hash/build/Release/native_hash.node", false));
    }
    // a version 1 lockfile does not record install scripts: the compilers come along
    let d = app(&[
        (
            "package.json",
            r#"{"main":"index.js","dependencies":{"a":"1"}}"#,
        ),
        (
            "package-lock.json",
            r#"{"lockfileVersion":1,"dependencies":{"a":{"version":"1.0.0"}}}"#,
        ),
    ]);
    assert_eq!(
        plan_ok(d.path(), &opts()).toolchain.packages,
        ["python3", "make", "g++"]
    );
}

/// An npm app that starts `index.js`, with `deps` (package.json's dependencies, as JSON members)
/// and the lockfile `lock`.
fn npm_app(deps: &str, lock: &str) -> tempfile::TempDir {
    let pj = format!(
        r#"{{"name":"x","scripts":{{"start":"node index.js"}},"dependencies":{{{deps}}}}}"#
    );
    app(&[
        ("package.json", &pj),
        ("package-lock.json", lock),
        ("index.js", ""),
    ])
}

/// npm 9 (Debian's) installs the musl builds a lockfile marks `libc: ["musl"]` (sharp's,
/// Next.js's SWC) beside the glibc ones: the node_modules layer and Next.js's standalone tree
/// leave them out; a package for glibc, for any libc, or for "not musl" stays.
#[test]
fn packages_for_another_libc_stay_out_of_the_image() {
    let lock = r#"{"lockfileVersion":3,"packages":{"":{"dependencies":{"sharp":"0.34.4"}},
      "node_modules/sharp":{"version":"0.34.4","hasInstallScript":true},
      "node_modules/@img/sharp-linux-x64":{"version":"0.34.4","cpu":["x64"],"os":["linux"],"libc":["glibc"],"optional":true},
      "node_modules/@img/sharp-linuxmusl-x64":{"version":"0.34.4","cpu":["x64"],"os":["linux"],"libc":["musl"],"optional":true},
      "node_modules/@img/sharp-libvips-linuxmusl-x64":{"version":"1.2.3","cpu":["x64"],"os":["linux"],"libc":["musl"],"optional":true},
      "node_modules/other/node_modules/bin-notglibc":{"version":"1.0.0","libc":["!glibc"],"optional":true},
      "node_modules/any-libc":{"version":"1.0.0","libc":[]},
      "node_modules/not-musl":{"version":"1.0.0","libc":["!musl"]}
    }}"#;
    let d = npm_app(r#""sharp":"0.34.4""#, lock);
    let p = plan_ok(d.path(), &opts());
    let nm = p.layers.iter().find(|l| l.name == "node_modules").unwrap();
    let f = glob_filter(&nm.include, &nm.exclude).unwrap();
    for gone in [
        "@img/sharp-linuxmusl-x64",
        "@img/sharp-linuxmusl-x64/lib/sharp-linuxmusl-x64.node",
        "@img/sharp-libvips-linuxmusl-x64/lib/libvips-cpp.so.8.17.2",
        "other/node_modules/bin-notglibc/index.js",
    ] {
        assert!(
            !f.matches(gone, false),
            "{gone} is in the node_modules layer"
        );
    }
    for kept in [
        "@img/sharp-linux-x64/lib/sharp-linux-x64.node",
        "sharp/lib/index.js",
        "any-libc/index.js",
        "not-musl/index.js",
        // a name that only starts like an excluded one
        "@img/sharp-linuxmusl-x64-extra/index.js",
    ] {
        assert!(f.matches(kept, false), "{kept} is left out");
    }
    assert!(
        p.reasons
            .iter()
            .any(|r| r.contains("3 packages for another C library than glibc")),
        "{:?}",
        p.reasons
    );

    // Next.js standalone: the traced tree under .next/standalone leaves them out too
    let d = app(&[
        (
            "package.json",
            r#"{"name":"x","scripts":{"build":"next build","start":"next start"},"dependencies":{"next":"15.5.4","sharp":"0.34.4"}}"#,
        ),
        ("package-lock.json", lock),
        (
            "next.config.mjs",
            "export default { output: 'standalone' };\n",
        ),
    ]);
    let p = plan_ok(d.path(), &opts());
    let sa = p
        .layers
        .iter()
        .find(|l| l.name == "next-standalone")
        .unwrap();
    let f = glob_filter(&sa.include, &sa.exclude).unwrap();
    assert!(!f.matches(
        "node_modules/@img/sharp-libvips-linuxmusl-x64/lib/x.so",
        false
    ));
    assert!(f.matches(
        "node_modules/@img/sharp-linux-x64/lib/sharp-linux-x64.node",
        false
    ));
    assert!(f.matches("server.js", false));
}

/// The plan brings no compiler into the build root, and its reasons say why (`why`).
fn assert_no_compiler_because(p: &Plan, why: &str) {
    assert!(
        p.toolchain.packages.is_empty(),
        "{:?}",
        p.toolchain.packages
    );
    assert!(reasons_contain(p, why), "{:?}", p.reasons);
}

/// sharp ≥ 0.33 and esbuild have install scripts that only check the prebuilt binary an
/// optional dependency brings: with that binary in the lockfile for the platform, the build root
/// gets no compiler; for a platform the lockfile has no binary for (or a nested install script
/// without one) it does.
#[test]
fn an_install_script_with_its_prebuilt_binary_in_the_lockfile_needs_no_compiler() {
    let lock = r#"{"lockfileVersion":3,"packages":{"":{"dependencies":{"sharp":"0.34.4"}},
      "node_modules/sharp":{"version":"0.34.4","hasInstallScript":true,"optionalDependencies":{
        "@img/sharp-linux-x64":"0.34.4","@img/sharp-linuxmusl-x64":"0.34.4","@img/sharp-linuxmusl-arm64":"0.34.4","@img/sharp-darwin-arm64":"0.34.4"}},
      "node_modules/@img/sharp-linux-x64":{"version":"0.34.4","cpu":["x64"],"os":["linux"],"libc":["glibc"],"optional":true},
      "node_modules/@img/sharp-linuxmusl-x64":{"version":"0.34.4","cpu":["x64"],"os":["linux"],"libc":["musl"],"optional":true},
      "node_modules/@img/sharp-linuxmusl-arm64":{"version":"0.34.4","cpu":["arm64"],"os":["linux"],"libc":["musl"],"optional":true},
      "node_modules/@img/sharp-darwin-arm64":{"version":"0.34.4","cpu":["arm64"],"os":["darwin"],"optional":true}
    }}"#;
    let d = npm_app(r#""sharp":"0.34.4""#, lock);
    let p = plan_ok(d.path(), &opts());
    assert_no_compiler_because(
        &p,
        "1 package with install scripts that find their prebuilt binary for linux/amd64 in the lockfile (sharp)",
    );
    // still one node_modules per architecture
    assert!(
        p.arch_specific
            .iter()
            .any(|a| a.contains("chosen by the machine's CPU")),
        "{:?}",
        p.arch_specific
    );
    // arm64: only musl's and macOS's binaries are in the lockfile: compilers
    let arm = Options {
        goarch: "arm64".into(),
        ..opts()
    };
    let p = plan_ok(d.path(), &arm);
    assert_eq!(p.toolchain.packages, ["python3", "make", "g++"]);
    // a nested copy resolves its binary from its own node_modules first, then the root's
    let lock = r#"{"lockfileVersion":3,"packages":{"":{"dependencies":{"a":"1"}},
      "node_modules/a":{"version":"1.0.0","dependencies":{"esbuild":"0.25.0"}},
      "node_modules/a/node_modules/esbuild":{"version":"0.25.0","hasInstallScript":true,"optionalDependencies":{"@esbuild/linux-x64":"0.25.0"}},
      "node_modules/@esbuild/linux-x64":{"version":"0.25.0","cpu":["x64"],"os":["linux"],"optional":true},
      "node_modules/b":{"version":"1.0.0","hasInstallScript":true,"optionalDependencies":{"b-linux-x64":"1.0.0"}}
    }}"#;
    let d = npm_app(r#""a":"1","b":"1""#, lock);
    let p = plan_ok(d.path(), &opts());
    // b's binary is not in the lockfile: b's script may compile
    assert_eq!(p.toolchain.packages, ["python3", "make", "g++"]);
    assert!(
        reasons_contain(&p, "1 package with install scripts (b)"),
        "{:?}",
        p.reasons
    );
    assert!(
        reasons_contain(&p, "(esbuild): no compiler"),
        "{:?}",
        p.reasons
    );

    // install scripts known to compile nothing (NestJS 10's funding message, core-js's notice)
    let lock = r#"{"lockfileVersion":3,"packages":{"":{"dependencies":{"@nestjs/core":"10.4.22"}},
      "node_modules/@nestjs/core":{"version":"10.4.22","hasInstallScript":true},
      "node_modules/core-js":{"version":"3.40.0","hasInstallScript":true}
    }}"#;
    let d = npm_app(r#""@nestjs/core":"10.4.22""#, lock);
    let p = plan_ok(d.path(), &opts());
    assert_no_compiler_because(
        &p,
        "2 packages whose install scripts compile nothing (@nestjs/core, core-js)",
    );
}

/// What makes a Node app's layers architecture-specific, from the lockfile and the app: a build
/// for another platform builds the rest once, on the build platform.
#[test]
fn native_addons_and_cpu_packages_make_the_layers_architecture_specific() {
    let pj = r#"{"name":"x","version":"1.0.0","dependencies":{"a":"1"}}"#;
    let lock = |extra: &str| {
        format!(
            r#"{{"name":"x","version":"1.0.0","lockfileVersion":3,"requires":true,"packages":{{"":{{"name":"x","version":"1.0.0","dependencies":{{"a":"1"}}}},"node_modules/a":{{"version":"1.0.0","integrity":"sha512-x"{extra}}}}}}}"#
        )
    };
    let plain = lock("");
    let d = app(&[
        ("package.json", pj),
        ("package-lock.json", &plain),
        ("index.js", ""),
    ]);
    assert!(plan_ok(d.path(), &opts()).arch_specific.is_empty());

    let native = lock(r#","hasInstallScript":true"#);
    let d = app(&[
        ("package.json", pj),
        ("package-lock.json", &native),
        ("index.js", ""),
    ]);
    let p = plan_ok(d.path(), &opts());
    assert_eq!(
        p.arch_specific,
        ["package-lock.json: 1 package with install scripts (a)"]
    );

    let cpu = lock(r#","cpu":["x64"],"optional":true"#);
    let d = app(&[
        ("package.json", pj),
        ("package-lock.json", &cpu),
        ("index.js", ""),
        ("binding.gyp", "{}"),
    ]);
    let p = plan_ok(d.path(), &opts());
    assert_eq!(p.arch_specific.len(), 2, "{:?}", p.arch_specific);
    assert!(p.arch_specific[0].contains("1 package chosen by the machine's CPU (a)"));
    assert!(p.arch_specific[1].starts_with("binding.gyp"));

    let d = app(&[
        ("package.json", pj),
        (
            "pnpm-lock.yaml",
            "lockfileVersion: '9.0'\npackages:\n  node-gyp-build@4.8.4:\n    resolution: {}\n",
        ),
        ("index.js", ""),
    ]);
    let p = plan_ok(d.path(), &opts());
    assert_eq!(
        p.arch_specific,
        ["pnpm-lock.yaml names node-gyp-build, which builds native addons"]
    );
}

#[test]
fn npm_workspace_libraries_are_built_before_the_app_that_needs_them() {
    // an app on a TypeScript library (built into dist/) on another one; a dev-only local
    // package (shared tsconfig) is in the build, not in the image
    let d = app(&[
        (
            "package.json",
            r#"{"private":true,"workspaces":["apps/*","libs/*"],"devDependencies":{"typescript":"5.7.2"}}"#,
        ),
        ("package-lock.json", LOCK_EMPTY),
        (
            "apps/svc/package.json",
            r#"{"name":"svc","main":"dist/main.js","scripts":{"build":"tsc","start":"node dist/main.js"},
                "dependencies":{"@x/core":"*"},"devDependencies":{"@x/tsconfig":"*"}}"#,
        ),
        ("apps/svc/src/main.ts", ""),
        (
            "apps/svc/tsconfig.json",
            r#"{"compilerOptions":{"outDir":"dist"}}"#,
        ),
        (
            "libs/core/package.json",
            r#"{"name":"@x/core","main":"dist/index.js","scripts":{"build":"tsc"},"dependencies":{"@x/util":"*"}}"#,
        ),
        ("libs/core/src/index.ts", ""),
        ("libs/core/tsconfig.json", "{}"),
        (
            "libs/util/package.json",
            r#"{"name":"@x/util","main":"dist/index.js","scripts":{"build":"tsc"}}"#,
        ),
        ("libs/util/src/index.ts", ""),
        ("libs/tsconfig/package.json", r#"{"name":"@x/tsconfig"}"#),
        ("libs/tsconfig/base.json", "{}"),
        (
            "libs/unused/package.json",
            r#"{"name":"@x/unused","scripts":{"build":"tsc"}}"#,
        ),
        ("libs/unused/index.ts", ""),
    ]);
    let p = plan_ok(d.path(), &ws("svc"));
    assert_eq!(
        step(&p, "npm-run-build").argv,
        strs(&[
            "npm",
            "run",
            "build",
            "--workspace",
            "libs/util",
            "--workspace",
            "libs/core",
            "--workspace",
            "apps/svc"
        ])
    );
    let src = glob_filter(&[], &p.source_exclude).unwrap();
    assert!(
        !src.is_excluded("libs/tsconfig/base.json"),
        "the build reads it"
    );
    assert!(src.is_excluded("libs/unused/index.ts"));
    let app = p.layers.iter().find(|l| l.name == "app").unwrap();
    let f = glob_filter(&app.include, &app.exclude).unwrap();
    assert!(f.matches("libs/core/dist/index.js", false));
    assert!(f.matches("libs/util/dist/index.js", false));
    assert!(!f.matches("libs/core/src/index.ts", false), "compiled");
    assert!(!f.matches("libs/tsconfig/base.json", false), "dev only");
    assert!(!f.matches("libs/unused/index.ts", false));
}

#[test]
fn an_npm_workspace_app_is_native_only_when_its_own_install_reaches_an_install_script() {
    let lock = r#"{"name":"m","lockfileVersion":3,"requires":true,"packages":{
      "":{"name":"m","workspaces":["apps/*","packages/*"],"devDependencies":{"typescript":"5.7.2"}},
      "apps/api":{"name":"api","dependencies":{"lib":"*"}},
      "apps/web":{"name":"web","dependencies":{"bcrypt":"5.1.1"}},
      "apps/cli":{"name":"cli","dependencies":{"ms":"2.1.3"}},
      "packages/lib":{"name":"lib","dependencies":{"sharp":"0.33.0"}},
      "node_modules/api":{"resolved":"apps/api","link":true},
      "node_modules/web":{"resolved":"apps/web","link":true},
      "node_modules/cli":{"resolved":"apps/cli","link":true},
      "node_modules/lib":{"resolved":"packages/lib","link":true},
      "node_modules/ms":{"version":"2.1.3"},
      "node_modules/bcrypt":{"version":"5.1.1","hasInstallScript":true},
      "node_modules/typescript":{"version":"5.7.2","dev":true},
      "packages/lib/node_modules/sharp":{"version":"0.33.0","hasInstallScript":true,"cpu":["x64"]}
    }}"#;
    let pj = |name: &str, deps: &str| {
        format!(
            r#"{{"name":"{name}","scripts":{{"start":"node index.js"}},"dependencies":{{{deps}}}}}"#
        )
    };
    let (api, web, cli) = (
        pj("api", r#""lib":"*""#),
        pj("web", r#""bcrypt":"5.1.1""#),
        pj("cli", r#""ms":"2.1.3""#),
    );
    let d = app(&[
        (
            "package.json",
            r#"{"private":true,"workspaces":["apps/*","packages/*"],"devDependencies":{"typescript":"5.7.2"}}"#,
        ),
        ("package-lock.json", lock),
        ("apps/api/package.json", &api),
        ("apps/web/package.json", &web),
        ("apps/cli/package.json", &cli),
        (
            "packages/lib/package.json",
            r#"{"name":"lib","main":"index.js","dependencies":{"sharp":"0.33.0"}}"#,
        ),
    ]);
    // another app's native addon leaves this one architecture-independent, with no compiler
    let p = plan_ok(d.path(), &ws("apps/cli"));
    assert!(
        p.toolchain.packages.is_empty(),
        "{:?}",
        p.toolchain.packages
    );
    assert!(p.arch_specific.is_empty(), "{:?}", p.arch_specific);
    // its own dependency's, and its local library's nested one, count
    let p = plan_ok(d.path(), &ws("apps/web"));
    assert!(p.toolchain.packages.contains(&"g++".to_string()));
    assert!(
        p.arch_specific.iter().any(|a| a.contains("bcrypt")),
        "{:?}",
        p.arch_specific
    );
    let p = plan_ok(d.path(), &ws("api"));
    assert!(p.toolchain.packages.contains(&"g++".to_string()));
    assert!(
        p.arch_specific
            .iter()
            .any(|a| a.contains("sharp") && !a.contains("bcrypt")),
        "{:?}",
        p.arch_specific
    );
}

/// A Procfile whose web process runs node starts the image; `npm start` leaves it to the
/// start scripts.
#[test]
fn a_procfile_web_process_running_node_starts_the_image() {
    let plan_with = |procfile: &str| {
        let d = app(&[
            (
                "package.json",
                r#"{"scripts":{"start":"node index.js"},"dependencies":{}}"#,
            ),
            ("package-lock.json", LOCK_EMPTY),
            ("index.js", "require('./server.js')\n"),
            ("server.js", "console.log(1)\n"),
            ("Procfile", procfile),
        ]);
        plan_ok(d.path(), &opts())
    };
    let p = plan_with("web: node --max-old-space-size=256 server.js --port $PORT\n");
    assert_eq!(
        p.config.entrypoint,
        [
            "/usr/bin/node",
            "--max-old-space-size=256",
            "server.js",
            "--port",
            "3000"
        ]
    );
    assert!(
        p.config.env.contains(&"PORT=3000".to_string()),
        "{:?}",
        p.config.env
    );
    let p = plan_with("web: npm start\n");
    assert_eq!(p.config.entrypoint, ["/usr/bin/node", "index.js"]);
    assert!(
        p.reasons
            .iter()
            .any(|r| r.contains("does not run node itself: the start scripts decide")),
        "{:?}",
        p.reasons
    );
}
