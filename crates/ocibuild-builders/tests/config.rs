#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ocibuild_builders::{BuildersError, git_labels, glob_filter};

const GO_MOD: &str = "module example.com/svc\ngo 1.22\n";
const MAIN_GO: &str = "package main\nfunc main() {}\n";

#[test]
fn ocibuild_toml_overrides_detection() {
    let d = app(&[
        ("go.mod", GO_MOD),
        ("cmd/a/main.go", MAIN_GO),
        ("cmd/b/main.go", MAIN_GO),
        (
            "ocibuild.toml",
            r#"
main = "./cmd/b"
cmd = ["--listen", ":8080"]
expose = [8080, "9090/udp"]
healthcheck = ["CMD", "/app/b", "-health"]
env = { GREETING = "hi", CGO = "x" }
labels = { "org.example.team" = "web", "org.opencontainers.image.version" = "9" }
runtime = "cc"

[build]
env = { GOFLAGS = "-tags=prod", EXTRA = "1" }
"#,
        ),
    ]);
    let p = plan_ok(d.path(), &opts());
    assert_eq!(p.config.entrypoint, ["/app/b"], "main from ocibuild.toml");
    assert_eq!(p.config.cmd, ["--listen", ":8080"]);
    assert_eq!(p.config.exposed_ports, ["8080/tcp", "9090/udp"]);
    assert_eq!(
        p.config.healthcheck.as_deref(),
        Some(&strs(&["CMD", "/app/b", "-health"])[..])
    );
    assert!(p.config.env.contains(&"GREETING=hi".to_string()));
    assert_eq!(p.config.labels["org.example.team"], "web");
    assert_eq!(p.config.labels["org.opencontainers.image.version"], "9");
    assert_eq!(p.runtime.profile, "cc");
    assert_eq!(p.runtime.variant, "nonroot");
    let s = step(&p, "go-build");
    assert_eq!(
        env_of(s, "GOFLAGS"),
        Some("-tags=prod"),
        "[build] env wins over the builder's"
    );
    assert_eq!(env_of(s, "EXTRA"), Some("1"));
    assert!(reasons_contain(&p, "ocibuild.toml read"));

    // flags win over the file
    let mut o = opts();
    o.main = Some("./cmd/a".into());
    assert_eq!(plan_ok(d.path(), &o).config.entrypoint, ["/app/a"]);
    o.entrypoint = Some(strs(&["/app/a", "serve"]));
    let p = plan_ok(d.path(), &o);
    assert_eq!(p.config.entrypoint, ["/app/a", "serve"]);
    assert!(reasons_contain(&p, "entrypoint: from --entrypoint"));
}

#[test]
fn entrypoint_in_the_file_replaces_detection_that_would_fail() {
    let d = app(&[
        ("package.json", "{}"),
        (
            "package-lock.json",
            r#"{"lockfileVersion":3,"packages":{"":{}}}"#,
        ),
        (
            "ocibuild.toml",
            "entrypoint = [\"/usr/bin/node\", \"lib/start.js\"]\n",
        ),
    ]);
    let p = plan_ok(d.path(), &opts());
    assert_eq!(p.config.entrypoint, ["/usr/bin/node", "lib/start.js"]);
    assert!(reasons_contain(&p, "entrypoint: from ocibuild.toml"));
    // ocibuild.toml itself stays out of the image
    let app_layer = p.layers.iter().find(|l| l.name == "app").unwrap();
    let f = glob_filter(&app_layer.include, &app_layer.exclude).unwrap();
    assert!(!f.matches("ocibuild.toml", false));
}

#[test]
fn unknown_key_in_ocibuild_toml_is_an_error_naming_key_and_file() {
    let d = app(&[
        ("go.mod", GO_MOD),
        ("main.go", MAIN_GO),
        ("ocibuild.toml", "expose = [80]\nports = [81]\n"),
    ]);
    let err = plan_err(d.path(), &opts());
    assert!(matches!(err, BuildersError::Config { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("ports"), "{msg}");
    assert!(msg.contains("ocibuild.toml:2"), "{msg}");
}

#[test]
fn dockerignore_expands_into_literal_source_excludes() {
    let d = app(&[
        ("go.mod", GO_MOD),
        ("main.go", MAIN_GO),
        ("docs/a.md", ""),
        ("docs/keep.md", ""),
        ("docs/img/x.png", ""),
        ("secret[1].txt", ""),
        ("sub/notes.md", ""),
        (
            ".dockerignore",
            "# docs but one\ndocs\n!docs/keep.md\nsecret*\n*.md\n",
        ),
    ]);
    let p = plan_ok(d.path(), &opts());
    let f = glob_filter(&[], &p.source_exclude).unwrap();
    assert!(!f.matches("docs/a.md", false));
    assert!(!f.matches("docs/img/x.png", false));
    assert!(f.matches("docs/keep.md", false), "re-included");
    assert!(!f.matches("secret[1].txt", false), "literal, escaped");
    assert!(
        f.matches("sub/notes.md", false),
        "*.md is anchored at the root"
    );
    assert!(f.matches("main.go", false));
    assert!(!f.matches(".git/config", false));

    // without negations a whole directory is one pattern
    std::fs::write(d.path().join(".dockerignore"), "docs\n").unwrap();
    let p = plan_ok(d.path(), &opts());
    assert!(
        p.source_exclude.contains(&"docs".to_string()),
        "{:?}",
        p.source_exclude
    );
    assert!(!p.source_exclude.iter().any(|e| e.starts_with("docs/")));
}

#[test]
fn git_labels_from_a_fake_repository() {
    let sha = "89abcdef0123456789abcdef0123456789abcdef";
    let d = app(&[
        (".git/HEAD", "ref: refs/heads/main\n"),
        (".git/refs/heads/main", &format!("{sha}\n")),
        (
            ".git/config",
            "[remote \"origin\"]\n\turl = https://ci:secret@git.example.com/team/svc.git\n",
        ),
        ("go.mod", GO_MOD),
        ("main.go", MAIN_GO),
    ]);
    let l = git_labels(d.path());
    assert_eq!(l["org.opencontainers.image.revision"], sha);
    assert_eq!(
        l["org.opencontainers.image.source"],
        "https://git.example.com/team/svc"
    );
    // planning never adds them by itself (the executor does), and .git is not copied
    let p = plan_ok(d.path(), &opts());
    assert!(
        !p.config
            .labels
            .contains_key("org.opencontainers.image.revision")
    );
    assert!(
        !glob_filter(&[], &p.source_exclude)
            .unwrap()
            .matches(".git/HEAD", false)
    );
}

#[test]
fn ocibuild_toml_adds_runtime_packages_and_sets_the_user() {
    let d = app(&[
        ("go.mod", GO_MOD),
        ("main.go", MAIN_GO),
        (
            "ocibuild.toml",
            "packages = [\"git\", \"libsqlite3-0\"]\nuser = \"1000:1000\"\nruntime = \"cc:nonroot\"\n",
        ),
    ]);
    let p = plan_ok(d.path(), &opts());
    assert_eq!(p.runtime.profile, "cc");
    assert_eq!(p.runtime.packages, ["git", "libsqlite3-0"]);
    assert_eq!(p.config.user, "1000:1000");
    assert!(p.reasons.iter().any(|r| r.contains("git, libsqlite3-0")));

    let bad = app(&[
        ("go.mod", GO_MOD),
        ("main.go", MAIN_GO),
        ("ocibuild.toml", "packages = [\"Bad Name\"]\n"),
    ]);
    let e = ocibuild_builders::plan(bad.path(), &opts())
        .unwrap_err()
        .to_string();
    assert!(e.contains("Bad Name") && e.contains("ocibuild.toml"), "{e}");
}

#[test]
fn writable_directories_for_every_language() {
    let plan_with = |files: &[(&str, &str)], toml: &str| {
        let mut f = files.to_vec();
        f.push(("ocibuild.toml", toml));
        let d = app(&f);
        ocibuild_builders::plan(d.path(), &opts())
    };
    let go = [("go.mod", GO_MOD), ("main.go", MAIN_GO)];
    let py = [("main.py", "print('hi')\n"), ("requirements.txt", "")];
    for files in [&go[..], &py[..]] {
        let p = plan_with(
            files,
            "writable = [\"instance\", \"./uploads/\", \"/data\", \"/data\"]\n",
        )
        .unwrap();
        let w = p.writable.unwrap();
        assert_eq!(w.dirs, ["/app/instance", "/app/uploads", "/data"]);
        assert_eq!((w.uid, w.gid), (65532, 65532));
        assert!(
            reasons_contain_text(&p.reasons, "writable at run time"),
            "{:?}",
            p.reasons
        );
    }
    // no key: no writable layer, and the plan JSON is as before
    let d = app(&go);
    let p = plan_ok(d.path(), &opts());
    assert!(p.writable.is_none());
    assert!(!serde_json::to_string(&p).unwrap().contains("writable"));
    // the image's user owns them
    let p = plan_with(&go, "user = \"1000:2000\"\nwritable = [\"x\"]\n").unwrap();
    let w = p.writable.unwrap();
    assert_eq!((w.uid, w.gid), (1000, 2000));
    for (toml, want) in [
        ("writable = [\".\"]", "names no directory"),
        ("writable = [\"/\"]", "names no directory"),
        ("writable = [\"/app\"]", "the app directory"),
        ("writable = [\"/tmp/x\"]", "/tmp is writable by every user"),
        ("writable = [\"/etc/app\"]", "belongs to the system"),
        ("writable = [\"../up\"]", "without `..`"),
        ("user = \"app\"\nwritable = [\"x\"]", "must be numeric"),
    ] {
        let err = plan_with(&go, toml).unwrap_err().to_string();
        assert!(
            err.contains(want) && err.contains("ocibuild.toml"),
            "{toml}: {err}"
        );
    }
}

fn reasons_contain_text(reasons: &[String], needle: &str) -> bool {
    reasons.iter().any(|r| r.contains(needle))
}
