//! What a user sees: exit codes, `--help`, the README's flag tables against the CLI, "did you
//! mean" suggestions, messages said once, stdout that scripts capture, no colours in a pipe, and
//! Dockerfile builds whose outputs lie inside their context. Each test drives the built binary
//! (RUN steps in the sandbox, so as root) with busybox images made on the spot.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use ocibuild_testkit as tk;
use serde_json::Value;

fn ocibuild(ctx: &tk::TestContext) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ocibuild"));
    c.arg("--root")
        .arg(ctx.root_dir())
        .args(["--progress", "plain"])
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("OCIBUILD_LOG")
        .stdin(Stdio::null());
    c
}

fn code(out: &Output) -> i32 {
    tk::exit_code(out.status)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `dir/bin/busybox` (static) with `sh` and `sleep` links.
fn busybox_root(dir: &Path) {
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).unwrap();
    fs::copy(tk::busybox_static(), bin.join("busybox")).unwrap();
    fs::set_permissions(bin.join("busybox"), fs::Permissions::from_mode(0o755)).unwrap();
    for l in ["sh", "sleep", "cat"] {
        symlink("busybox", bin.join(l)).unwrap();
    }
}

/// A small image in `oci:LAYOUT:v1`.
fn hello_layout(ctx: &tk::TestContext) -> PathBuf {
    let root = ctx.path("hello-root");
    busybox_root(&root);
    let layout = ctx.path("hello-layout");
    tk::run_ok(
        ocibuild(ctx)
            .arg("assemble")
            .arg("--layer")
            .arg(format!("{}:/", root.display()))
            .args(["--entrypoint", "/bin/busybox echo hi"])
            .arg("--output")
            .arg(format!("oci:{}:v1", layout.display())),
    );
    layout
}

// -------------------------------------------------------------------------------------------
// Exit codes

/// Every exit code the README and `--help` document, from a command that produces it today:
/// 0 ok, 1 error, 2 usage error (clap's own and ocibuild's: an invalid transport, a flag value
/// it cannot take), 128+N for `run` when the step is killed (`--timeout`: SIGKILL, 137). 3 (a
/// policy gate) comes from `scan`, tested with its database in tests/scan.rs,
/// and from `check` (the busybox image holds a shell).
#[test]
fn every_documented_exit_code() {
    let ctx = tk::TestContext::new();
    let layout = hello_layout(&ctx);
    let img = format!("oci:{}:v1", layout.display());

    // 0
    let out = tk::run(ocibuild(&ctx).args(["validate", &img]));
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));

    // 1: a well-formed request that fails
    let missing = format!("oci:{}:v1", ctx.path("no-such-layout").display());
    let out = tk::run(ocibuild(&ctx).args(["inspect", &missing]));
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));

    // 2: usage errors
    let usage: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["inspect".into(), "--no-such-flag".into()],
            "unexpected argument",
        ),
        (
            vec!["inspect".into(), format!("oci-layout:{}", layout.display())],
            "oci:",
        ),
        (
            vec!["inspect".into(), "dokcer://127.0.0.1:5000/app:v1".into()],
            "did you mean `docker:`",
        ),
        (
            vec![
                "build".into(),
                "--compression".into(),
                "brotli".into(),
                ".".into(),
            ],
            "invalid value",
        ),
        (
            vec![
                "build".into(),
                "--compression-level".into(),
                "42".into(),
                ctx.dir().display().to_string(),
            ],
            "gzip levels are 0..=9",
        ),
        (
            vec![
                "build".into(),
                "--compression".into(),
                "none".into(),
                "--compression-level".into(),
                "3".into(),
                ctx.dir().display().to_string(),
            ],
            "has no level",
        ),
        (
            vec![
                "build".into(),
                "--lang".into(),
                "pyhton".into(),
                ctx.dir().display().to_string(),
            ],
            "did you mean `python`",
        ),
        (
            vec![
                "run".into(),
                "--rootfs".into(),
                ".".into(),
                "--mount".into(),
                "nonsense".into(),
                "--".into(),
                "true".into(),
            ],
            "SRC:DEST",
        ),
        (
            vec![
                "assemble".into(),
                "--output".into(),
                "oci-archve:x.tar".into(),
            ],
            "did you mean `oci-archive:`",
        ),
    ];
    for (args, want) in usage {
        let out = tk::run(ocibuild(&ctx).args(&args));
        let err = text(&out.stderr);
        assert_eq!(code(&out), 2, "{args:?} should be a usage error:\n{err}");
        assert!(err.contains(want), "{args:?}: expected {want:?} in:\n{err}");
    }

    // 128 + SIGKILL: `run --timeout` kills the step
    let root = ctx.path("run-root");
    busybox_root(&root);
    let t0 = std::time::Instant::now();
    let out = tk::run(ocibuild(&ctx).arg("run").arg("--rootfs").arg(&root).args([
        "--timeout",
        "1",
        "--",
        "/bin/sleep",
        "60",
    ]));
    assert_eq!(code(&out), 128 + 9, "{}", text(&out.stderr));
    assert!(t0.elapsed().as_secs() < 30, "the step was not killed");
    assert!(
        text(&out.stderr).contains("--timeout 1"),
        "{}",
        text(&out.stderr)
    );
    // and the step's own status passes through
    let out = tk::run(
        ocibuild(&ctx)
            .arg("run")
            .arg("--rootfs")
            .arg(&root)
            .args(["--", "/bin/sh", "-c", "exit 7"]),
    );
    assert_eq!(code(&out), 7, "{}", text(&out.stderr));

    // 3: a policy gate failed
    let out = tk::run(ocibuild(&ctx).args(["check", &img]));
    assert_eq!(code(&out), 3, "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("build-tools"),
        "{}",
        text(&out.stdout)
    );

    // the documentation says the same
    let help = text(&tk::run_ok(ocibuild(&ctx).arg("--help")).stdout);
    assert!(
        help.contains("0 ok, 1 error, 2 usage error, 3 a policy gate failed"),
        "{help}"
    );
    let help = text(&tk::run_ok(ocibuild(&ctx).args(["run", "--help"])).stdout);
    assert!(help.contains("128+signal"), "{help}");
}

// -------------------------------------------------------------------------------------------
// --help and the README

fn help(ctx: &tk::TestContext, cmd: &[&str]) -> String {
    let mut args: Vec<&str> = cmd.to_vec();
    args.push("--help");
    text(&tk::run_ok(ocibuild(ctx).args(&args)).stdout)
}

/// The long flags a `--help` text lists (`--name`), without `--help`/`--version`.
fn flags_of(help: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in help.lines() {
        let t = line.trim_start();
        if !t.starts_with('-') {
            continue;
        }
        for w in t.split([' ', ',', '=', '<', '[']) {
            if let Some(name) = w.strip_prefix("--")
                && !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            {
                out.insert(format!("--{name}"));
            }
        }
    }
    out.remove("--help");
    out.remove("--version");
    out
}

/// Every `--flag` written in `text`.
fn flags_in(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i + 2 < b.len() {
        if b[i] == b'-'
            && b[i + 1] == b'-'
            && (i == 0 || !b[i - 1].is_ascii_alphanumeric() && b[i - 1] != b'-')
        {
            let start = i + 2;
            let mut j = start;
            while j < b.len()
                && (b[j].is_ascii_lowercase() || b[j].is_ascii_digit() || b[j] == b'-')
            {
                j += 1;
            }
            if j > start && b[start].is_ascii_lowercase() {
                out.insert(format!("--{}", text[start..j].trim_end_matches('-')));
            }
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

fn readme() -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md")).unwrap()
}

/// The README's `### ` sections under `## Commands`, by heading.
fn command_sections(readme: &str) -> Vec<(String, String)> {
    let start = readme
        .find("\n## Commands")
        .expect("README has a Commands section");
    let end = readme[start + 1..]
        .find("\n## ")
        .map_or(readme.len(), |e| start + 1 + e);
    let body = &readme[start..end];
    let mut out = Vec::new();
    for part in body.split("\n### ").skip(1) {
        let (head, rest) = part.split_once('\n').unwrap_or((part, ""));
        out.push((head.to_string(), rest.to_string()));
    }
    out
}

/// Flags the README writes that are not ocibuild's: other programs' (npm, docker) and the
/// Dockerfile instructions' own (`COPY --chown`, `RUN --mount`).
const FOREIGN_FLAGS: &[&str] = &[
    "--omit",
    "--version",
    "--security-opt",
    "--checksum",
    "--chmod",
    "--chown",
    "--exclude",
    "--from",
    "--link",
    "--mount",
    "--parents",
    // what the zero-config builders run, quoted in the language table: npm, yarn, pnpm and pip
    "--frozen-lockfile",
    "--immutable",
    "--prod",
    "--production",
    "--no-deps",
    "--python",
    "--require-hashes",
    // npm workspaces: npm's flags, and turbo's prune the README compares with
    "--include-workspace-root",
    "--docker",
    // pnpm and Yarn 4 workspaces: pnpm's and yarn's flags
    "--filter",
    "--legacy",
    "--recursive",
    "--topological-dev",
    // Django's collectstatic, which the Python builder runs
    "--noinput",
    // `build`'s and `base build`'s package cache, which the `cache du` table accounts for
    "--cache-dir",
];

/// The README's flags exist in the CLI: every `--flag` written in a command's section is a flag
/// of a command that section shows (or a global flag); and, the other way round, every flag of
/// `assemble`, `build`, `base build`, `cache warm`, `scan` and `db` is written in the README, so neither can
/// drift from the other.
#[test]
fn readme_flags_agree_with_the_cli() {
    let ctx = tk::TestContext::new();
    let readme = readme();
    let top = help(&ctx, &[]);
    let global = flags_of(&top);
    let subcommands = [
        "build",
        "assemble",
        "inspect",
        "validate",
        "run",
        "pull",
        "push",
        "copy",
        "tags",
        "login",
        "logout",
        "doctor",
        "scan",
        "generate-key-pair",
        "sign",
        "verify",
        "attest",
        "verify-attestation",
        "sbom",
        "check",
        "size",
    ];
    let nested: [(&str, &[&str]); 3] = [
        ("cache", &["warm", "du", "prune", "verify"]),
        ("base", &["build", "lock", "list"]),
        ("db", &["import", "info"]),
    ];
    let mut by_cmd: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in subcommands {
        by_cmd.insert(s.to_string(), flags_of(&help(&ctx, &[s])));
    }
    for (parent, kids) in nested {
        for k in kids.iter().copied() {
            by_cmd.insert(format!("{parent} {k}"), flags_of(&help(&ctx, &[parent, k])));
        }
    }

    let mut problems = Vec::new();
    let mut documented: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (head, body) in command_sections(&readme) {
        let all = format!("{head}\n{body}");
        // the commands this section shows: `ocibuild X [Y]` anywhere, and bare `X` in the heading
        let mut cmds: BTreeSet<String> = BTreeSet::new();
        for (i, _) in all.match_indices("ocibuild ") {
            let words: Vec<&str> = all[i + 9..]
                .split(|c: char| c.is_whitespace() || c == '`')
                .filter(|w| !w.is_empty())
                .take(2)
                .collect();
            let Some(first) = words.first() else { continue };
            let two = words.get(1).map(|w| format!("{first} {w}"));
            if let Some(t) = two.filter(|t| by_cmd.contains_key(t)) {
                cmds.insert(t);
            } else if by_cmd.contains_key(*first) {
                cmds.insert(first.to_string());
            } else if let Some((p, kids)) = nested.iter().find(|(p, _)| p == first) {
                for k in kids.iter() {
                    cmds.insert(format!("{p} {k}"));
                }
            }
        }
        for w in head.split(['`', ',', '/', ' ']) {
            if by_cmd.contains_key(w) {
                cmds.insert(w.to_string());
            }
        }
        let mut allowed = global.clone();
        for c in &cmds {
            allowed.extend(by_cmd[c].iter().cloned());
        }
        for f in flags_in(&all) {
            if !allowed.contains(&f) && !FOREIGN_FLAGS.contains(&f.as_str()) {
                problems.push(format!(
                    "README section `{head}` writes {f}, which none of {cmds:?} has"
                ));
            }
        }
        for c in &cmds {
            documented
                .entry(c.clone())
                .or_default()
                .extend(flags_in(&all));
        }
    }
    for c in [
        "assemble",
        "build",
        "base build",
        "cache warm",
        "scan",
        "db import",
        "db info",
        "generate-key-pair",
        "sign",
        "verify",
        "attest",
        "verify-attestation",
        "sbom",
    ] {
        let doc = documented.get(c).cloned().unwrap_or_default();
        for f in &by_cmd[c] {
            if !doc.contains(f) && !global.contains(f) {
                problems.push(format!(
                    "`ocibuild {c}` has {f}, which the README never explains"
                ));
            }
        }
    }
    for f in &global {
        if !readme.contains(f.as_str()) {
            problems.push(format!("the global flag {f} is not in the README"));
        }
    }
    assert!(
        problems.is_empty(),
        "README and CLI disagree:\n{}",
        problems.join("\n")
    );
}

/// Each subcommand lists its own flags; the commands that read any image say docker:// works.
#[test]
fn help_lists_each_commands_own_flags_and_every_transport() {
    let ctx = tk::TestContext::new();
    let warm = help(&ctx, &["cache", "warm"]);
    let flags = flags_of(&warm);
    for f in ["--from", "--file", "--target", "--build-arg", "--platform"] {
        assert!(flags.contains(f), "cache warm --help lacks {f}:\n{warm}");
    }
    for f in [
        "--push",
        "--output",
        "--dry-run",
        "--iidfile",
        "--metadata-file",
        "--explain",
    ] {
        assert!(
            !flags.contains(f),
            "cache warm --help lists the build-only {f}:\n{warm}"
        );
    }
    for cmd in [&["inspect"][..], &["validate"], &["push"], &["assemble"]] {
        let h = help(&ctx, cmd);
        assert!(
            h.contains("docker://"),
            "{cmd:?} --help does not mention docker://:\n{h}"
        );
    }
    let build = help(&ctx, &["build"]);
    assert!(build.contains("--compression-level"), "{build}");
    assert!(
        build.contains("none"),
        "build --compression lists none:\n{build}"
    );
}

// -------------------------------------------------------------------------------------------
// Noise

#[test]
fn tags_are_listed_in_natural_order_and_logs_in_a_pipe_have_no_colours() {
    let ctx = tk::TestContext::new();
    let reg = tk::registry::start_registry(&ctx, tk::registry::RegistryOptions::default());
    let layout = hello_layout(&ctx);
    let repo = format!("docker://{}/app", reg.host);
    let mut push = ocibuild(&ctx);
    push.arg("push")
        .arg(format!("oci:{}:v1", layout.display()))
        .arg(format!("{repo}:10"));
    for t in ["2", "latest", "1", "1.10", "1.9"] {
        push.args(["--tag", t]);
    }
    tk::run_ok(&mut push);
    // -vv into a pipe (as in CI logs): the registry client's debug logs, without colours
    let out = tk::run_ok(
        ocibuild(&ctx)
            .args(["-vv", "tags", &repo])
            .env_remove("NO_COLOR"),
    );
    let err = text(&out.stderr);
    assert!(err.contains("DEBUG"), "no -vv logs at all:\n{err}");
    assert!(
        !err.contains('\u{1b}'),
        "ANSI escapes written into a pipe:\n{err:?}"
    );
    let out = text(&out.stdout);
    let got: Vec<&str> = out.lines().collect();
    let pushed: BTreeSet<&str> = got.iter().copied().collect();
    let mut want: Vec<&str> = vec!["1", "1.9", "1.10", "2", "10", "latest"];
    // the destination's own tag (10) is pushed with --tag only once `push` does that
    want.retain(|t| pushed.contains(t));
    assert!(want.len() >= 5, "tags pushed: {got:?}");
    assert_eq!(got, want);
}

// -------------------------------------------------------------------------------------------
// Dockerfile builds: outputs inside the context, a failed RUN, step numbers

/// A context with busybox at bin/ and `Dockerfile` = `FROM scratch` + `body`.
fn df_context(ctx: &tk::TestContext, name: &str, body: &str) -> PathBuf {
    let dir = ctx.path(name);
    busybox_root(&dir);
    fs::write(dir.join("app.txt"), "the app\n").unwrap();
    fs::write(
        dir.join("Dockerfile"),
        format!("FROM scratch\nARG GREETING=hello\nENV PATH=/bin\nCOPY bin/ /bin/\n{body}"),
    )
    .unwrap();
    dir
}

fn metadata(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

/// README's first Dockerfile example writes into its own context (`--output oci:out:app .`):
/// the outputs are left out of the context (said once), so the next identical build is a
/// full cache hit, and the image does not carry the previous build's output.
#[test]
fn outputs_inside_the_context_do_not_invalidate_the_next_build() {
    let ctx = tk::TestContext::new();
    let dir = df_context(
        &ctx,
        "app",
        "WORKDIR /app\nCOPY . /src/\nRUN [\"/bin/sh\", \"-c\", \"cat /src/app.txt > /app/copy; echo $GREETING\"]\n",
    );
    let build = |n: u32| {
        let out = tk::run_ok(
            ocibuild(&ctx)
                .current_dir(&dir)
                .args(["build", "-t", "app:1", "--output", "oci:out:app"])
                .args(["--output", "oci-archive:app.tar"])
                .args(["--iidfile", "iid.txt", "--metadata-file", "meta.json", "."]),
        );
        let err = text(&out.stderr);
        assert_eq!(
            err.matches("left out of the build context").count(),
            1,
            "build {n}: the exclusion is said once:\n{err}"
        );
        for p in [
            "out (--output oci:out:app)",
            "app.tar",
            "iid.txt",
            "meta.json",
        ] {
            assert!(err.contains(p), "build {n}: {p} not named:\n{err}");
        }
        (
            text(&out.stdout).trim().to_string(),
            metadata(&dir.join("meta.json")),
        )
    };
    let (d1, m1) = build(1);
    assert!(m1["ocibuild.steps.ran"].as_u64().unwrap() > 0, "{m1}");
    let (d2, m2) = build(2);
    assert_eq!(d1, d2);
    assert_eq!(
        m2["ocibuild.steps.ran"], 0,
        "the second identical build ran steps: {m2}"
    );
    // the image holds the context without the outputs
    let rootfs = tk::umoci_unpack(&dir.join("out"), "app", &ctx.path("bundle"));
    let src = rootfs.join("src");
    assert!(src.join("app.txt").is_file());
    for p in ["out", "app.tar", "iid.txt", "meta.json"] {
        assert!(!src.join(p).exists(), "{p} reached the image");
    }
}

/// A failed RUN is reported once: no "done" line for it, the error with the status and the
/// output's end, the output not printed twice.
#[test]
fn a_failed_run_is_reported_once() {
    let ctx = tk::TestContext::new();
    let dir = df_context(
        &ctx,
        "fails",
        "RUN [\"/bin/sh\", \"-c\", \"echo boom-$((40+2)); exit 3\"]\n",
    );
    let out = tk::run(ocibuild(&ctx).arg("build").arg(&dir));
    let err = text(&out.stderr);
    assert_eq!(code(&out), 1, "{err}");
    assert!(
        !err.lines()
            .any(|l| l.contains("RUN") && l.contains("done in")),
        "the failed RUN is reported as done:\n{err}"
    );
    assert_eq!(err.matches("exit status 3").count(), 1, "{err}");
    assert_eq!(
        err.matches("boom-42").count(),
        1,
        "the output is shown twice:\n{err}"
    );
}

/// `[stage N/M]` counts the steps of the stage (COPY, ADD, RUN, WORKDIR), as BuildKit does:
/// the first one shown on a first run is 1, the last is M.
#[test]
fn step_numbers_count_the_steps_a_stage_shows_and_uncompressed_layers_build() {
    let ctx = tk::TestContext::new();
    let dir = df_context(
        &ctx,
        "numbers",
        "LABEL a=b\nWORKDIR /app\nENV X=1\nCOPY app.txt ./\nRUN [\"/bin/sh\", \"-c\", \"echo numbered\"]\n",
    );
    // (and `--compression none` works for builds, as the README says)
    let layout = ctx.path("numbers-layout");
    let out = tk::run_ok(
        ocibuild(&ctx)
            .args(["build", "--compression", "none", "--output"])
            .arg(format!("oci:{}:v1", layout.display()))
            .arg(&dir),
    );
    let inspect = text(
        &tk::run_ok(
            ocibuild(&ctx)
                .args(["inspect", "--json"])
                .arg(format!("oci:{}:v1", layout.display())),
        )
        .stdout,
    );
    assert!(
        inspect.contains("application/vnd.oci.image.layer.v1.tar\"") && !inspect.contains("tar+"),
        "--compression none wrote compressed layers:\n{inspect}"
    );
    tk::oci_image_tool_validate(&layout, "v1");
    let err = text(&out.stderr);
    let mut numbers = Vec::new();
    for l in err.lines() {
        if let Some(i) = l.find('[')
            && let Some(j) = l[i..].find(']')
        {
            let inner = &l[i + 1..i + j];
            if let Some((_, nm)) = inner.rsplit_once(' ')
                && let Some((n, m)) = nm.split_once('/')
                && let (Ok(n), Ok(m)) = (n.parse::<u32>(), m.parse::<u32>())
            {
                numbers.push((n, m));
            }
        }
    }
    assert!(!numbers.is_empty(), "no [stage N/M] lines:\n{err}");
    assert_eq!(numbers.first().copied(), Some((1, 4)), "{err}");
    assert!(
        numbers.iter().all(|(n, m)| *m == 4 && (1..=4).contains(n)),
        "{numbers:?}\n{err}"
    );
    assert!(numbers.contains(&(4, 4)), "{numbers:?}\n{err}");
}

/// A long step is never a silent wait: while it runs, a plain build says every heartbeat that it
/// is still running (15 s by default; `OCIBUILD_HEARTBEAT` here), and `--progress json` gives
/// `step-running` events with the seconds so far; a finished step says nothing more.
#[test]
fn a_long_step_says_it_is_still_running() {
    let ctx = tk::TestContext::new();
    let dir = df_context(
        &ctx,
        "long",
        "RUN [\"/bin/sh\", \"-c\", \"sleep 2; echo slept\"]\nRUN [\"/bin/sh\", \"-c\", \"echo quick\"]\n",
    );
    let out = tk::run_ok(
        ocibuild(&ctx)
            .env("OCIBUILD_HEARTBEAT", "0.5")
            .args(["build", "--no-cache"])
            .arg(&dir),
    );
    let err = text(&out.stderr);
    let beats: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("still running ("))
        .collect();
    assert!(
        !beats.is_empty(),
        "no heartbeat while a step ran 2 s:\n{err}"
    );
    assert!(
        beats.iter().all(|l| l.contains("sleep 2")),
        "only the long step beats: {beats:?}"
    );
    // nothing after the step finished: the last heartbeat comes before the step's done line
    // (the step's output is streamed now, so a beat may quote "slept" before the step ends)
    let last_beat = err.rfind("still running (").unwrap();
    let done = err
        .find("echo slept\"]: exit 0, done in")
        .unwrap_or_else(|| panic!("no done line:\n{err}"));
    assert!(last_beat < done, "{err}");
    let mut c = Command::new(env!("CARGO_BIN_EXE_ocibuild"));
    c.arg("--root")
        .arg(ctx.root_dir())
        .args(["--progress", "json", "build", "--no-cache"])
        .env("OCIBUILD_HEARTBEAT", "0.5")
        .arg(&dir);
    let out = tk::run_ok(&mut c);
    let err = text(&out.stderr);
    let running: Vec<Value> = err
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == "step-running")
        .collect();
    assert!(!running.is_empty(), "{err}");
    assert!(running.iter().all(|e| e["seconds"].is_u64()), "{running:?}");
}

/// `ocibuild … | head -1`: the reader has gone before ocibuild prints. No panic report, and the
/// status a SIGPIPE-killed tool leaves in a shell (141), not the panic's 101.
#[test]
fn a_closed_stdout_ends_quietly() {
    let ctx = tk::TestContext::new();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = ocibuild(&ctx)
        .args(["base", "list"])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert!(
        !err.contains("panicked"),
        "a panic report on a closed stdout:\n{err}"
    );
    assert_eq!(code(&out), 141, "stderr:\n{err}");
}
