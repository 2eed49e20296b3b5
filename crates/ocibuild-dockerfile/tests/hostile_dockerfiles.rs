//! Random valid and invalid Dockerfiles (issue 22): the parser, the stage planner and the word
//! expander never panic and never hang; an error names its line. The generator is
//! structure-aware: lines are instructions with plausible and hostile arguments (flags, JSON
//! forms, heredocs, continuations, variables, parser directives, comments), with some lines
//! damaged. Each run prints how many cases got past the first parse stage (`parse`) and how
//! many planned (`stage_graph`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use ocibuild_dockerfile::{expand, parse, parse_onbuild_triggers, split_words, stage_graph};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};

fn cases() -> u32 {
    std::env::var("OCIBUILD_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("debian:trixie-slim".to_string()),
        Just("base".to_string()),
        Just("${BASE:-alpine}".to_string()),
        Just("$TARGETARCH".to_string()),
        Just("${A:?missing}".to_string()),
        Just("${A:+x}${B}".to_string()),
        Just("${".to_string()),
        Just("$".to_string()),
        Just("\\$x".to_string()),
        Just("\"quoted word\"".to_string()),
        Just("'single'".to_string()),
        Just("\"unterminated".to_string()),
        Just("/app".to_string()),
        Just(".".to_string()),
        Just("--from=build".to_string()),
        Just("--from=0".to_string()),
        Just("--mount=type=cache,target=/root/.cache".to_string()),
        Just("--mount=type=secret,id=tok,required".to_string()),
        Just("--mount=type=bind,from=x,source=/,target=/y,rw".to_string()),
        Just("--mount=type=weird".to_string()),
        Just("--network=none".to_string()),
        Just("--chown=1000:1000".to_string()),
        Just("--chmod=0755".to_string()),
        Just("--platform=$BUILDPLATFORM".to_string()),
        Just("--link".to_string()),
        Just("--bogus=1".to_string()),
        Just("AS".to_string()),
        Just("build".to_string()),
        Just("[\"/bin/sh\", \"-c\", \"echo hi\"]".to_string()),
        Just("[\"a\",".to_string()),
        Just("[]".to_string()),
        Just("KEY=value".to_string()),
        Just("KEY=\"a b\"".to_string()),
        Just("=x".to_string()),
        Just("<<EOF".to_string()),
        Just("<<-'EOT'".to_string()),
        Just("\\".to_string()),
        Just("`".to_string()),
        Just("8080/tcp".to_string()),
        Just("1h30m".to_string()),
        Just("-1s".to_string()),
        Just("CMD".to_string()),
        "[a-zA-Z0-9_./:=-]{0,12}",
        any::<String>().prop_map(|s| s.chars().take(20).collect()),
    ]
}

fn instruction() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("FROM"),
        Just("RUN"),
        Just("CMD"),
        Just("ENTRYPOINT"),
        Just("COPY"),
        Just("ADD"),
        Just("ENV"),
        Just("ARG"),
        Just("LABEL"),
        Just("WORKDIR"),
        Just("USER"),
        Just("EXPOSE"),
        Just("VOLUME"),
        Just("STOPSIGNAL"),
        Just("HEALTHCHECK"),
        Just("SHELL"),
        Just("ONBUILD"),
        Just("MAINTAINER"),
        Just("from"),
        Just("Run"),
        Just("BOGUS"),
        Just(""),
    ]
    .prop_map(str::to_string)
}

fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => (instruction(), prop::collection::vec(word(), 0..5))
            .prop_map(|(i, ws)| format!("{i} {}", ws.join(" "))),
        1 => Just("# a comment".to_string()),
        1 => prop_oneof![
            Just("# syntax=docker/dockerfile:1"),
            Just("# escape=`"),
            Just("# escape=\\"),
            Just("# escape=x"),
            Just("# check=skip=all"),
        ].prop_map(str::to_string),
        1 => Just("RUN <<EOF\necho one\necho two\nEOF".to_string()),
        1 => Just("COPY <<a.txt <<b.txt /dst/\nA\na.txt\nB\nb.txt".to_string()),
        1 => Just("RUN <<EOF".to_string()),
        1 => Just("RUN echo a \\\n  && echo b \\\n\n  # comment inside\n  && echo c".to_string()),
        1 => Just("RUN echo dangling \\".to_string()),
        1 => Just(String::new()),
        1 => Just("   \t  ".to_string()),
        1 => Just("HEALTHCHECK --interval=5s --timeout=3s CMD curl -f http://localhost/".to_string()),
        1 => Just("ONBUILD ONBUILD RUN x".to_string()),
        1 => Just("ONBUILD FROM x".to_string()),
        1 => Just(format!("ENV {}", "A=b ".repeat(500))),
        1 => Just(format!("RUN {}", "x".repeat(70_000))),
        1 => Just(format!("ARG X={}", "${X}".repeat(200))),
    ]
}

fn dockerfile() -> impl Strategy<Value = String> {
    (
        prop::option::weighted(
            0.8,
            prop_oneof![
                Just("FROM debian:trixie-slim AS build".to_string()),
                Just("ARG BASE=debian\nFROM ${BASE}:trixie".to_string()),
                Just("FROM scratch".to_string()),
            ],
        ),
        prop::collection::vec(line(), 0..12),
        prop::option::weighted(0.3, (0usize..2000, any::<u8>())),
    )
        .prop_map(|(first, lines, damage)| {
            let mut s = String::new();
            if let Some(f) = first {
                s.push_str(&f);
                s.push('\n');
            }
            s.push_str(&lines.join("\n"));
            if let Some((at, b)) = damage {
                let mut bytes = s.into_bytes();
                if !bytes.is_empty() {
                    let i = at % bytes.len();
                    bytes[i] = b;
                }
                s = String::from_utf8_lossy(&bytes).into_owned();
            }
            s
        })
}

#[test]
fn random_dockerfiles_never_panic() {
    let (n, parsed, planned) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/hostile_dockerfiles.proptest-regressions"
        )))),
        ..Config::default()
    });
    let result = runner.run(&dockerfile(), |src| {
        n.fetch_add(1, Ordering::Relaxed);
        let df = match parse(&src, "Dockerfile") {
            Ok(df) => df,
            Err(e) => {
                let e = e.to_string();
                prop_assert!(!e.is_empty());
                return Ok(());
            }
        };
        parsed.fetch_add(1, Ordering::Relaxed);
        let mut args = BTreeMap::new();
        args.insert("A".to_string(), "1".to_string());
        match stage_graph(&df, None, &args) {
            Ok(_) => {
                planned.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
        // the expander and word splitter on every raw line, and ONBUILD triggers
        let lookup = |k: &str| (k == "A").then(|| "x y".to_string());
        for l in src.lines() {
            let _ = expand(l, &lookup, df.escape());
            let _ = split_words(l, df.escape());
        }
        let _ = parse_onbuild_triggers(&src.lines().map(String::from).collect::<Vec<_>>());
        Ok(())
    });
    eprintln!(
        "hostile dockerfiles: {} cases, {} past the first parse stage (parse), {} planned",
        n.load(Ordering::Relaxed),
        parsed.load(Ordering::Relaxed),
        planned.load(Ordering::Relaxed)
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}
