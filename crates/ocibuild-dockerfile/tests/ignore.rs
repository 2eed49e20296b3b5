#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `.dockerignore` with Docker's semantics (not gitignore's).

use std::fs;
use std::path::{Path, PathBuf};

use ocibuild_dockerfile::{DockerIgnore, walk_context};

#[test]
fn matching_table() {
    // (patterns, path, excluded)
    let cases: &[(&str, &str, bool)] = &[
        ("*.md", "x.md", true),
        ("*.md", "sub/x.md", false),
        ("**/*.md", "sub/x.md", true),
        ("**/*.md", "x.md", true),
        ("**/*.md", "a/b/c.md", true),
        ("**/*.md", "a/b/c.txt", false),
        ("target", "target", true),
        ("target", "target/x/y", true),
        ("target", "targets", false),
        ("target", "src/target", false),
        // anchored at the root, unlike .gitignore
        ("node_modules", "node_modules/a/b.js", true),
        ("node_modules", "web/node_modules/a.js", false),
        ("**/node_modules", "web/node_modules/a.js", true),
        ("*.md\n!keep.md", "keep.md", false),
        ("*.md\n!keep.md", "other.md", true),
        // last match wins
        ("!keep.md\n*.md", "keep.md", true),
        ("*\n!src", "src/main.go", false),
        ("*\n!src", "README", true),
        ("dir\n!dir/keep", "dir/keep", false),
        ("dir\n!dir/keep", "dir/other", true),
        ("dir\n!dir/keep", "dir", true),
        // cleaning
        ("/abs", "abs", true),
        ("/abs", "abs/x", true),
        ("./rel/x", "rel/x/y", true),
        ("a/../b", "b", true),
        ("a/../b", "a", false),
        ("dir/", "dir/f", true),
        ("a//b", "a/b", true),
        // `*` and `?` do not cross `/`
        ("a/*", "a/b", true),
        ("a/*", "a/b/c", true),
        ("*/b", "a/b", true),
        ("*/b", "x/a/b", false),
        ("?.txt", "a.txt", true),
        ("?.txt", "ab.txt", false),
        ("a/**/b", "a/b", true),
        ("a/**/b", "a/x/y/b", true),
        ("dir/**", "dir/x/y", true),
        ("dir/**", "dir", false),
        ("[a-c].log", "b.log", true),
        ("[a-c].log", "d.log", false),
        ("a{b}", "a{b}", true),
        ("a{b,c}", "ab", false),
        // Go's filepath.Match negates a class with `^` only: `[!s]` holds `!` and `s` (found
        // by the buildah oracle, tests/buildah_oracle.rs in the ocibuild crate)
        ("[!s]ile", "sile", true),
        ("[!s]ile", "!ile", true),
        ("[!s]ile", "file", false),
        ("[^s]ile", "file", true),
        ("[^s]ile", "sile", false),
        ("x/[!ab]y/z", "x/by/z", true),
        ("x/[!ab]y/z", "x/cy/z", false),
        ("[!-c]", "!", true),
        ("[!-c]", "b", true),
        ("[!-c]", "d", false),
        ("[!]x", "!x", true),
        ("[!]x", "ax", false),
        // `/!x` is read as `!x` before the matcher sees it: an exception for `x` (buildah
        // oracle, seed 99 case 221)
        ("/!bang/build", "!bang/build", false),
        ("*\n/!keep", "keep", false),
        ("*\n/!keep", "other", true),
        ("\\!bang", "!bang", true),
        // `?` and classes take one character, not one byte, as Go's matcher (found by the
        // buildah oracle: `*/ü-?` missed `a.b.c/ü-ñ`)
        ("*/ü-?", "a.b.c/ü-ñ", true),
        ("?", "ñ", true),
        ("??", "ñ", false),
        ("[ñx]y", "ñy", true),
        ("[a-ö]", "ñ", true),
        ("[^ñ]", "ñ", false),
        ("ü*", "üñ", true),
        ("\\xc3", "\\xc3", false),
        ("\\*.md", "*.md", true),
        ("\\*.md", "x.md", false),
        // comments and blank lines
        ("# comment\n\n#*.md\nfoo", "x.md", false),
        ("# comment\n\n#*.md\nfoo", "foo", true),
        ("  spaced.txt  ", "spaced.txt", true),
        ("! keep.md\n*.md\n!keep.md", "keep.md", false),
    ];
    for &(patterns, path, want) in cases {
        let ig = DockerIgnore::parse(patterns).unwrap();
        assert_eq!(
            ig.matches(path, false),
            want,
            "patterns {patterns:?} on {path:?}"
        );
    }
}

#[test]
fn patterns_are_cleaned_and_invalid_ones_rejected() {
    let ig = DockerIgnore::parse("./a/\n/b\n!/c/./d\n# x\n\n").unwrap();
    assert_eq!(ig.patterns(), vec!["a", "b", "!c/d"]);
    assert!(ig.has_exclusions());
    let e = DockerIgnore::parse("ok\n!\n").unwrap_err();
    assert!(e.to_string().contains("line 2"), "{e}");
    assert!(DockerIgnore::parse("[unclosed").is_err());
}

#[test]
fn for_dockerfile_prefers_the_dockerfile_specific_file() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    let build = tmp.path().join("build");
    fs::create_dir_all(&ctx).unwrap();
    fs::create_dir_all(&build).unwrap();
    let dockerfile = build.join("app.Dockerfile");
    fs::write(&dockerfile, "FROM scratch\n").unwrap();

    // neither file: no rules
    let ig = DockerIgnore::for_dockerfile(&ctx, &dockerfile).unwrap();
    assert!(ig.is_empty());
    assert_eq!(ig.source(), None);

    fs::write(ctx.join(".dockerignore"), "*.log\n").unwrap();
    let ig = DockerIgnore::for_dockerfile(&ctx, &dockerfile).unwrap();
    assert_eq!(ig.source(), Some(ctx.join(".dockerignore").as_path()));
    assert!(ig.matches("a.log", false));

    fs::write(build.join("app.Dockerfile.dockerignore"), "*.tmp\n").unwrap();
    let ig = DockerIgnore::for_dockerfile(&ctx, &dockerfile).unwrap();
    assert_eq!(
        ig.source(),
        Some(build.join("app.Dockerfile.dockerignore").as_path())
    );
    assert!(ig.matches("a.tmp", false));
    assert!(!ig.matches("a.log", false));
}

fn touch(root: &Path, rel: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, rel).unwrap();
}

fn paths(v: &[&str]) -> Vec<PathBuf> {
    v.iter().map(PathBuf::from).collect()
}

#[test]
fn walk_context_lists_kept_entries_sorted() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    for f in [
        "a.txt",
        "b.md",
        "sub/c.md",
        "sub/d.txt",
        "target/x/y.bin",
        "z/e.txt",
    ] {
        touch(root, f);
    }
    std::os::unix::fs::symlink("a.txt", root.join("link")).unwrap();
    // a symlink to a directory is listed, not followed
    std::os::unix::fs::symlink("target", root.join("tlink")).unwrap();

    let ig = DockerIgnore::parse("**/*.md\ntarget\n!sub/c.md\n").unwrap();
    assert_eq!(
        walk_context(root, &ig).unwrap(),
        paths(&[
            "a.txt",
            "link",
            "sub",
            "sub/c.md",
            "sub/d.txt",
            "tlink",
            "z",
            "z/e.txt"
        ])
    );

    // a re-included file beneath an excluded directory brings its parents
    let ig = DockerIgnore::parse("target\nz\n!target/x/y.bin\n").unwrap();
    assert_eq!(
        walk_context(root, &ig).unwrap(),
        paths(&[
            "a.txt",
            "b.md",
            "link",
            "sub",
            "sub/c.md",
            "sub/d.txt",
            "target",
            "target/x",
            "target/x/y.bin",
            "tlink"
        ])
    );

    // no rules: everything
    assert_eq!(
        walk_context(root, &DockerIgnore::default()).unwrap(),
        paths(&[
            "a.txt",
            "b.md",
            "link",
            "sub",
            "sub/c.md",
            "sub/d.txt",
            "target",
            "target/x",
            "target/x/y.bin",
            "tlink",
            "z",
            "z/e.txt"
        ])
    );
}

#[test]
fn exclude_always_wins_over_negations_and_takes_the_path_literally() {
    let mut ig = DockerIgnore::parse("!out\n!out/**\n").unwrap();
    ig.exclude_always("./out/").unwrap();
    ig.exclude_always("img[1].tar").unwrap();
    assert!(ig.matches("out", true));
    assert!(ig.matches("out/index.json", false));
    assert!(ig.matches("out/blobs/sha256/ab", false));
    assert!(!ig.matches("outside.txt", false));
    assert!(ig.matches("img[1].tar", false));
    assert!(!ig.matches("img1.tar", false));
    assert!(ig.exclude_always("../elsewhere").is_err());
    assert!(ig.exclude_always(".").is_err());
}
