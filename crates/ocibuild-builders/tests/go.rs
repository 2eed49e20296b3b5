#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ocibuild_builders::{BuildersError, Distro, Options};

const MAIN_GO: &str = "package main\n\nfunc main() {}\n";

fn go_app(go_line: &str) -> tempfile::TempDir {
    app(&[
        ("go.mod", &format!("module example.com/v\n\ngo {go_line}\n")),
        ("main.go", MAIN_GO),
    ])
}

/// (distro, go line, Ok((packages, path_prepend, version)) | Err(substrings))
type Want = Result<(Vec<&'static str>, Vec<&'static str>, &'static str), Vec<&'static str>>;

#[test]
fn go_version_selection_table() {
    let cases: Vec<(Distro, &str, Want)> = vec![
        (Distro::Trixie, "1.19", Ok((vec![], vec![], "1.24"))),
        (Distro::Trixie, "1.22", Ok((vec![], vec![], "1.24"))),
        (Distro::Trixie, "1.24", Ok((vec![], vec![], "1.24"))),
        (Distro::Trixie, "1.24.3", Ok((vec![], vec![], "1.24"))),
        (
            Distro::Trixie,
            "1.25",
            Ok((vec!["golang-1.25-go"], vec!["/usr/lib/go-1.25/bin"], "1.25")),
        ),
        (
            Distro::Trixie,
            "1.25.2",
            Ok((vec!["golang-1.25-go"], vec!["/usr/lib/go-1.25/bin"], "1.25")),
        ),
        (
            Distro::Trixie,
            "1.27",
            Ok((vec!["golang-1.27-go"], vec!["/usr/lib/go-1.27/bin"], "1.27")),
        ),
        (
            Distro::Trixie,
            "1.30",
            Err(vec!["go 1.30 is required", "1.27", "--toolchain host"]),
        ),
        (Distro::Bookworm, "1.19", Ok((vec![], vec![], "1.19"))),
        (
            Distro::Bookworm,
            "1.20",
            Ok((vec!["golang-1.21-go"], vec!["/usr/lib/go-1.21/bin"], "1.21")),
        ),
        (
            Distro::Bookworm,
            "1.22",
            Ok((vec!["golang-1.22-go"], vec!["/usr/lib/go-1.22/bin"], "1.22")),
        ),
        (
            Distro::Bookworm,
            "1.24",
            Err(vec!["go 1.24 is required", "is 1.23", "--distro trixie"]),
        ),
        (
            Distro::Bookworm,
            "1.30",
            Err(vec!["1.23", "--distro trixie", "--toolchain host"]),
        ),
    ];
    for (distro, line, want) in cases {
        let d = go_app(line);
        let o = on(distro);
        match want {
            Ok((pkgs, path, version)) => {
                let p = plan_ok(d.path(), &o);
                assert_eq!(p.toolchain.packages, strs(&pkgs), "{distro} go {line}");
                assert_eq!(p.toolchain.path_prepend, strs(&path), "{distro} go {line}");
                assert_eq!(p.toolchain.version, version, "{distro} go {line}");
                assert_eq!(
                    p.toolchain.backports,
                    !pkgs.is_empty(),
                    "{distro} go {line}"
                );
                assert_eq!(p.toolchain.profile, "go");
            }
            Err(needles) => {
                let err = plan_err(d.path(), &o);
                assert!(matches!(err, BuildersError::Version { .. }), "{err:?}");
                let msg = err.to_string();
                for n in needles {
                    assert!(msg.contains(n), "{distro} go {line}: {msg} lacks {n}");
                }
                assert!(msg.contains("go.mod"), "{msg}");
            }
        }
    }
}

#[test]
fn toolchain_line_raises_the_requirement() {
    let d = app(&[
        (
            "go.mod",
            "module example.com/t\n\ngo 1.22\n\ntoolchain go1.25.1\n",
        ),
        ("main.go", MAIN_GO),
    ]);
    let p = plan_ok(d.path(), &opts());
    assert_eq!(p.toolchain.packages, ["golang-1.25-go"]);
    assert!(reasons_contain(&p, "toolchain go1.25.1"), "{:?}", p.reasons);
    // a lower toolchain line does not lower anything
    let d = app(&[
        (
            "go.mod",
            "module example.com/t\n\ngo 1.25\n\ntoolchain go1.22.0\n",
        ),
        ("main.go", MAIN_GO),
    ]);
    assert_eq!(plan_ok(d.path(), &opts()).toolchain.version, "1.25");
}

#[test]
fn go_hello_plan() {
    let p = plan_ok(&testdata("go-hello"), &opts());
    assert_eq!(p.lang.to_string(), "go");
    assert_eq!(p.runtime.profile, "static");
    assert_eq!(p.runtime.variant, "nonroot");
    assert_eq!(p.source_dir, "/src");
    assert_eq!(p.outputs, ["/out"]);
    assert_eq!(step_names(&p), ["go-build"]);
    let s = step(&p, "go-build");
    assert_eq!(
        s.argv,
        strs(&[
            "go",
            "build",
            "-trimpath",
            "-buildvcs=false",
            "-ldflags",
            "-s -w -buildid=",
            "-o",
            "/out/hello",
            "."
        ])
    );
    assert_eq!(s.cwd, "/src");
    assert!(!s.network, "no require lines: no network");
    for (k, v) in [
        ("CGO_ENABLED", "0"),
        ("GOOS", "linux"),
        ("GOARCH", "amd64"),
        ("GOFLAGS", "-mod=readonly"),
        ("GOTOOLCHAIN", "local"),
        ("GOCACHE", "/root/.cache/go-build"),
        ("GOMODCACHE", "/root/go/pkg/mod"),
    ] {
        assert_eq!(env_of(s, k), Some(v), "{k}");
    }
    assert_eq!(env_of(s, "GOPROXY"), None);
    let caches: Vec<(&str, &str)> = p
        .cache_mounts
        .iter()
        .map(|c| (c.name.as_str(), c.target.as_str()))
        .collect();
    assert_eq!(
        caches,
        [
            ("go-build", "/root/.cache/go-build"),
            ("go-mod", "/root/go/pkg/mod"),
            // Go's dated telemetry counters stay out of the build step's layer
            ("go-config", "/root/.config/go"),
        ]
    );
    assert_eq!(layer_names(&p), ["go-binary"]);
    let l = &p.layers[0];
    assert_eq!((l.from.as_str(), l.to.as_str()), ("/out", "/app"));
    assert_eq!(l.include, ["hello"]);
    assert_eq!(p.config.entrypoint, ["/app/hello"]);
    assert_eq!(p.config.workdir, "/app");
    assert_eq!(p.config.user, "65532:65532");
    assert!(p.source_exclude.contains(&".git".to_string()));
    // the plan prints as JSON for --explain
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["lang"], "go");
    assert_eq!(json["steps"][0]["env"][0][0], "CGO_ENABLED");
}

#[test]
fn go_new_needs_backports_on_trixie_and_fails_on_bookworm() {
    let p = plan_ok(&testdata("go-new"), &opts());
    assert_eq!(p.toolchain.packages, ["golang-1.26-go"]);
    assert!(p.toolchain.backports);
    assert_eq!(p.toolchain.path_prepend, ["/usr/lib/go-1.26/bin"]);
    let err = plan_err(&testdata("go-new"), &on(Distro::Bookworm));
    assert!(err.to_string().contains("--distro trixie"), "{err}");
    // the host's toolchain skips the check
    let o = Options {
        distro: Distro::Bookworm,
        toolchain_host: true,
        ..Options::default()
    };
    let p = plan_ok(&testdata("go-new"), &o);
    assert_eq!(p.toolchain.profile, "host");
    assert!(p.toolchain.packages.is_empty());
    assert!(p.toolchain.path_prepend.is_empty());
    // … and hands the executor the host's go to probe, with go.mod's requirement and its line
    assert_eq!(
        p.toolchain.host_tools.len(),
        1,
        "{:?}",
        p.toolchain.host_tools
    );
    let go = &p.toolchain.host_tools[0];
    assert_eq!(go.program, "go");
    assert_eq!(go.version_argv, ["go", "env", "GOVERSION"]);
    assert_eq!(go.requirements.len(), 1);
    assert_eq!(
        go.requirements[0].constraint,
        ocibuild_builders::Constraint::GoAtLeast("1.26".into())
    );
    assert_eq!(go.requirements[0].origin, "go.mod:3");
    // without --toolchain host there is nothing to probe
    assert!(
        plan_ok(&testdata("go-new"), &opts())
            .toolchain
            .host_tools
            .is_empty()
    );
}

#[test]
fn main_package_discovery() {
    // a single cmd/ package
    let p = plan_ok(&testdata("go-cmd"), &opts());
    assert_eq!(step(&p, "go-build").argv.last().unwrap(), "./cmd/server");
    assert!(
        step(&p, "go-build")
            .argv
            .contains(&"/out/server".to_string())
    );
    assert_eq!(p.config.entrypoint, ["/app/server"]);
    assert_eq!(p.layers[0].include, ["server"]);

    // several: an error listing them and suggesting --main
    let d = app(&[
        ("go.mod", "module example.com/multi\ngo 1.22\n"),
        ("cmd/api/main.go", MAIN_GO),
        ("cmd/worker/main.go", MAIN_GO),
        ("cmd/lib/lib.go", "package lib\n"),
    ]);
    let err = plan_err(d.path(), &opts());
    assert!(matches!(err, BuildersError::Entrypoint { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("./cmd/api, ./cmd/worker"), "{msg}");
    assert!(msg.contains("--main"), "{msg}");
    assert!(!msg.contains("cmd/lib"), "{msg}");

    // --main picks one
    let mut o = opts();
    o.main = Some("./cmd/worker".into());
    let p = plan_ok(d.path(), &o);
    assert_eq!(step(&p, "go-build").argv.last().unwrap(), "./cmd/worker");
    assert_eq!(p.config.entrypoint, ["/app/worker"]);
    assert!(reasons_contain(&p, "from --main"));
    // also without ./
    o.main = Some("cmd/api/".into());
    assert_eq!(plan_ok(d.path(), &o).config.entrypoint, ["/app/api"]);
    // --main at a non-main package or outside the module
    o.main = Some("./cmd/lib".into());
    assert!(plan_err(d.path(), &o).to_string().contains("package main"));
    o.main = Some("../x".into());
    assert!(matches!(
        plan_err(d.path(), &o),
        BuildersError::InvalidOption { .. }
    ));

    // none at all
    let d = app(&[
        ("go.mod", "module example.com/lib\ngo 1.22\n"),
        ("lib.go", "package lib\n"),
    ]);
    let msg = plan_err(d.path(), &opts()).to_string();
    assert!(msg.contains("no main package"), "{msg}");
    assert!(msg.contains("--main"), "{msg}");
}

#[test]
fn root_main_package_beats_cmd_and_ignores_tests_and_ignored_files() {
    let d = app(&[
        ("go.mod", "module example.com/tool/v3\ngo 1.22\n"),
        ("tool.go", MAIN_GO),
        ("cmd/other/main.go", MAIN_GO),
    ]);
    let p = plan_ok(d.path(), &opts());
    assert_eq!(
        p.config.entrypoint,
        ["/app/tool"],
        "major version suffix dropped"
    );
    assert_eq!(step(&p, "go-build").argv.last().unwrap(), ".");

    let d = app(&[
        ("go.mod", "module example.com/lib\ngo 1.22\n"),
        ("lib.go", "package lib\n"),
        ("gen.go", "//go:build ignore\n\npackage main\n"),
        ("main_test.go", "package main\n"),
        ("cmd/real/main.go", MAIN_GO),
    ]);
    let p = plan_ok(d.path(), &opts());
    assert_eq!(p.config.entrypoint, ["/app/real"]);
}

#[test]
fn vendored_and_networked_modules() {
    let d = app(&[
        (
            "go.mod",
            "module example.com/v\ngo 1.22\nrequire golang.org/x/text v0.14.0\n",
        ),
        ("main.go", MAIN_GO),
        ("vendor/modules.txt", "# golang.org/x/text v0.14.0\n"),
    ]);
    let p = plan_ok(d.path(), &opts());
    let s = step(&p, "go-build");
    assert_eq!(env_of(s, "GOFLAGS"), Some("-mod=vendor"));
    assert_eq!(env_of(s, "GOPROXY"), Some("off"));
    assert!(!s.network);
    assert!(p.cache_mounts.iter().all(|c| c.name != "go-mod"));

    std::fs::remove_dir_all(d.path().join("vendor")).unwrap();
    let p = plan_ok(d.path(), &opts());
    let s = step(&p, "go-build");
    assert_eq!(env_of(s, "GOFLAGS"), Some("-mod=readonly"));
    assert_eq!(env_of(s, "GOPROXY"), None);
    assert!(s.network, "modules to download");
}

#[test]
fn platform_options() {
    let mut o = opts();
    o.goarch = "arm64".into();
    let p = plan_ok(&testdata("go-hello"), &o);
    assert_eq!(env_of(step(&p, "go-build"), "GOARCH"), Some("arm64"));
    o.goarch = "riscv64".into();
    assert!(matches!(
        plan_err(&testdata("go-hello"), &o),
        BuildersError::InvalidOption { .. }
    ));
    let mut o = opts();
    o.goos = "windows".into();
    assert!(
        plan_err(&testdata("go-hello"), &o)
            .to_string()
            .contains("linux")
    );
}

#[test]
fn broken_go_mod_names_file_and_line() {
    let d = app(&[
        ("go.mod", "module example.com/x\n\ngo one.two\n"),
        ("main.go", MAIN_GO),
    ]);
    let err = plan_err(d.path(), &opts());
    assert!(matches!(err, BuildersError::Parse { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("go.mod:3"), "{msg}");
}

/// cgo: code that imports "C" (the module's, or vendored), or a module known to need it, makes
/// a CGO_ENABLED=1 build with gcc in the root, the glibc runtime, and a per-platform build; test
/// files, other OSes' files, `cgo`-tagged files (a pure-Go variant exists), testdata, nested
/// modules and ignored files do not; ocibuild.toml's CGO_ENABLED decides over all of it.
#[test]
fn cgo_is_detected_where_go_build_would_compile_c() {
    const CGO: &str = "package sum\n\n// #include <stdint.h>\nimport \"C\"\n\nfunc F() {}\n";
    let gomod = ("go.mod", "module example.com/v\n\ngo 1.22\n");
    let cgo_plan = |files: &[(&str, &str)]| {
        let mut all = vec![gomod, ("main.go", MAIN_GO)];
        all.extend_from_slice(files);
        let d = app(&all);
        plan_ok(d.path(), &opts())
    };
    let is_cgo = |p: &ocibuild_builders::Plan| {
        let s = step(p, "go-build");
        let on = env_of(s, "CGO_ENABLED") == Some("1");
        assert_eq!(on, p.runtime.profile == "cc", "{:?}", p.reasons);
        assert_eq!(
            on,
            p.toolchain.packages == ["gcc", "libc6-dev"],
            "{:?}",
            p.reasons
        );
        assert_eq!(on, !p.arch_specific.is_empty(), "{:?}", p.reasons);
        if !on {
            assert_eq!(env_of(s, "CGO_ENABLED"), Some("0"));
            assert_eq!(p.runtime.profile, "static");
        }
        on
    };

    let p = cgo_plan(&[("internal/sum/sum.go", CGO)]);
    assert!(is_cgo(&p));
    assert!(
        p.reasons
            .iter()
            .any(|r| r.contains("cgo: internal/sum/sum.go imports \"C\"")),
        "{:?}",
        p.reasons
    );
    assert_eq!(p.runtime.variant, "nonroot");
    // an import block holding "C", and a vendored module's cgo code
    let block = "package sum\n\nimport (\n\t\"C\"\n\t\"fmt\"\n)\n";
    assert!(is_cgo(&cgo_plan(&[("sum/sum.go", block)])));
    let p = cgo_plan(&[(
        "vendor/github.com/mattn/go-sqlite3/sqlite3.go",
        &CGO.replace("package sum", "package sqlite3"),
    )]);
    assert!(is_cgo(&p));
    // go.mod requires a module that needs cgo (its sources are downloaded by the build)
    let d = app(&[
        (
            "go.mod",
            "module example.com/v\n\ngo 1.22\n\nrequire (\n\tgithub.com/mattn/go-sqlite3 v1.14.22\n)\n",
        ),
        ("main.go", MAIN_GO),
    ]);
    let p = plan_ok(d.path(), &opts());
    assert!(is_cgo(&p));
    assert!(
        p.reasons
            .iter()
            .any(|r| r.contains("go.mod requires github.com/mattn/go-sqlite3")),
        "{:?}",
        p.reasons
    );

    // where go build compiles no C for linux
    for (name, text) in [
        ("sum/sum_test.go", CGO.to_string()),
        ("sum/sum_windows.go", CGO.to_string()),
        ("sum/sum_darwin_arm64.go", CGO.to_string()),
        ("sum/sum.go", format!("//go:build cgo\n\n{CGO}")),
        (
            "sum/sum.go",
            format!("//go:build darwin || windows\n\n{CGO}"),
        ),
        ("sum/sum.go", format!("//go:build ignore\n\n{CGO}")),
        ("testdata/x/x.go", CGO.to_string()),
        ("_old/x.go", CGO.to_string()),
        (
            "sum/sum.go",
            "package sum\n\n// import \"C\"\nimport \"fmt\"\n".to_string(),
        ),
    ] {
        assert!(!is_cgo(&cgo_plan(&[(name, &text)])), "{name}: {text}");
    }
    // a linux build tag still compiles it
    assert!(is_cgo(&cgo_plan(&[(
        "sum/sum.go",
        &format!("//go:build linux && !windows\n\n{CGO}")
    )])));
    // a nested module is another build
    assert!(!is_cgo(&cgo_plan(&[
        ("tools/go.mod", "module example.com/tools\n\ngo 1.22\n"),
        ("tools/t.go", CGO),
    ])));

    // ocibuild.toml decides
    let off = "[build]\nenv = { CGO_ENABLED = \"0\" }\n";
    assert!(!is_cgo(&cgo_plan(&[
        ("sum/sum.go", CGO),
        ("ocibuild.toml", off)
    ])));
    let on = "[build]\nenv = { CGO_ENABLED = \"1\" }\n";
    assert!(is_cgo(&cgo_plan(&[("ocibuild.toml", on)])));
}

/// A Go monorepo: a service module listed by a go.work above it, or whose go.mod replaces a
/// module with a directory beside it, builds from the common root with only what `go build`
/// reads copied (its module, the local modules it needs; of go.work's other modules their
/// go.mod), in its own directory, offline when every required module is local.
#[test]
fn go_monorepo_modules_build_from_their_root_with_only_what_they_read() {
    let root = testdata("go-monorepo");
    let (r, member) = ocibuild_builders::workspace_of(&root.join("services/api"))
        .unwrap()
        .unwrap();
    assert_eq!(r, std::fs::canonicalize(&root).unwrap());
    assert_eq!(member, "services/api");
    assert!(
        ocibuild_builders::workspace_of(&root.join("libs/greeting"))
            .unwrap()
            .is_some()
    );
    let mut o = opts();
    o.workspace = Some(member);
    let p = plan_ok(&r, &o);
    assert_eq!(p.lang.to_string(), "go");
    let s = step(&p, "go-build");
    assert_eq!(s.cwd, "/src/services/api");
    assert_eq!(s.argv.last().map(String::as_str), Some("."));
    assert!(s.argv.contains(&"/out/api".to_string()), "{:?}", s.argv);
    assert!(!s.network, "every required module is the workspace's");
    assert_eq!(
        p.source_exclude,
        [".git", "README.md", "docs", "services/worker/main.go"],
        "the worker's go.mod stays (go.work loads it), its sources do not"
    );
    assert!(
        p.reasons.iter().any(|r| r.contains(
            "copied: services/api, libs/greeting; only go.mod and go.sum of services/worker"
        )),
        "{:?}",
        p.reasons
    );

    // the same tree without go.work: the replace directive's target decides the root
    let d = app(&[
        (
            "svc/api/go.mod",
            "module example.com/api\n\ngo 1.22\n\nrequire (\n\texample.com/lib v0.0.0\n\tgolang.org/x/text v0.14.0\n)\n\nreplace (\n\texample.com/lib => ../../lib // local\n)\n",
        ),
        ("svc/api/main.go", MAIN_GO),
        ("svc/web/go.mod", "module example.com/web\n\ngo 1.22\n"),
        ("lib/go.mod", "module example.com/lib\n\ngo 1.22\n"),
        (
            "lib/sum.go",
            "package lib\n\n// #include <stdint.h>\nimport \"C\"\n",
        ),
        ("notes.txt", "x"),
    ]);
    let (r, member) = ocibuild_builders::workspace_of(&d.path().join("svc/api"))
        .unwrap()
        .unwrap();
    assert_eq!(member, "svc/api");
    let mut o = opts();
    o.workspace = Some(member);
    let p = plan_ok(&r, &o);
    let s = step(&p, "go-build");
    assert_eq!(s.cwd, "/src/svc/api");
    assert!(s.network, "golang.org/x/text is downloaded");
    assert_eq!(p.source_exclude, [".git", "notes.txt", "svc/web"]);
    // the replaced module's C code is compiled too
    assert_eq!(env_of(s, "CGO_ENABLED"), Some("1"), "{:?}", p.reasons);
    // a module alone, or replacing inside itself, is its own context
    let d = app(&[
        (
            "go.mod",
            "module example.com/a\n\ngo 1.22\n\nrequire example.com/b v0.0.0\n\nreplace example.com/b => ./third_party/b\n",
        ),
        ("main.go", MAIN_GO),
        ("third_party/b/go.mod", "module example.com/b\n\ngo 1.22\n"),
    ]);
    assert!(ocibuild_builders::workspace_of(d.path()).unwrap().is_none());
    // a go.work that does not list the module is not its workspace
    let d = app(&[
        ("go.work", "go 1.22\n\nuse ./other\n"),
        ("other/go.mod", "module example.com/other\n\ngo 1.22\n"),
        ("app/go.mod", "module example.com/app\n\ngo 1.22\n"),
        ("app/main.go", MAIN_GO),
    ]);
    assert!(
        ocibuild_builders::workspace_of(&d.path().join("app"))
            .unwrap()
            .is_none()
    );
}
