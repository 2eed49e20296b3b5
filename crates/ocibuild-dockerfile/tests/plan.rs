#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The stage graph: target pruning, references by name and index, parallel levels, errors.

use std::collections::BTreeMap;

use ocibuild_dockerfile::*;

fn df(src: &str) -> Dockerfile {
    parse(src, "Dockerfile").unwrap()
}

fn no_args() -> BTreeMap<String, String> {
    BTreeMap::new()
}

const MULTI: &str = "\
ARG GO=1.22
FROM golang:${GO} AS build
RUN go build
FROM node:20 AS web
RUN npm ci
FROM alpine AS unused
RUN true
FROM build AS test
RUN go test
FROM scratch
COPY --from=build /app /app
COPY --from=1 /dist /dist
";

#[test]
fn default_target_is_the_last_stage_and_unused_stages_are_pruned() {
    let d = df(MULTI);
    let p = stage_graph(&d, None, &no_args()).unwrap();
    assert_eq!(p.target, 4);
    assert_eq!(p.order, vec![0, 1, 4]);
    assert_eq!(p.deps, vec![vec![], vec![], vec![], vec![0], vec![0, 1]]);
    assert_eq!(p.levels, vec![vec![0, 1], vec![4]]);
    assert_eq!(p.stages[0].base, BaseRef::Image("golang:1.22".into()));
    assert_eq!(p.stages[3].base, BaseRef::Stage(0));
    assert_eq!(p.stages[4].base, BaseRef::Scratch);
    assert_eq!(
        p.stages.iter().map(|s| s.needed).collect::<Vec<_>>(),
        vec![true, true, false, false, true]
    );
    assert_eq!(p.global_args.get("GO").map(String::as_str), Some("1.22"));
}

#[test]
fn named_target_and_build_args() {
    let d = df(MULTI);
    let mut args = no_args();
    args.insert("GO".into(), "1.21".into());
    // not declared: ignored for FROM
    args.insert("OTHER".into(), "x".into());
    let p = stage_graph(&d, Some("TEST"), &args).unwrap();
    assert_eq!(p.target, 3);
    assert_eq!(p.order, vec![0, 3]);
    assert_eq!(p.levels, vec![vec![0], vec![3]]);
    assert_eq!(p.stages[0].base, BaseRef::Image("golang:1.21".into()));
    assert!(!p.global_args.contains_key("OTHER"));

    let p = stage_graph(&d, Some("web"), &no_args()).unwrap();
    assert_eq!(p.order, vec![1]);
    assert_eq!(p.levels, vec![vec![1]]);
}

#[test]
fn unknown_target_lists_the_stages() {
    let d = df(MULTI);
    let e = stage_graph(&d, Some("nope"), &no_args()).unwrap_err();
    assert_eq!(
        e,
        PlanError::UnknownTarget {
            target: "nope".into(),
            stages: vec!["build".into(), "web".into(), "unused".into(), "test".into()],
        }
    );
    assert_eq!(
        e.to_string(),
        "target stage \"nope\" could not be found; stages: build, web, unused, test"
    );
}

#[test]
fn forward_and_self_references_are_errors() {
    let d = df("FROM alpine AS a\nCOPY --from=b /x /x\nFROM alpine AS b\n");
    let e = stage_graph(&d, None, &no_args()).unwrap_err();
    assert_eq!(
        e,
        PlanError::ForwardReference {
            stage: "a".into(),
            line: 2,
            what: "COPY --from=b".into(),
            reference: "b".into(),
            defined_line: 3,
        }
    );
    assert!(
        e.to_string()
            .contains("stage \"b\", which is defined after stage \"a\""),
        "{e}"
    );

    // by index, and through a mount
    let d = df("FROM alpine\nCOPY --from=1 /x /x\nFROM alpine\n");
    assert!(matches!(
        stage_graph(&d, None, &no_args()).unwrap_err(),
        PlanError::ForwardReference { line: 2, .. }
    ));
    let d = df("FROM alpine AS a\nRUN --mount=from=b,target=/b true\nFROM alpine AS b\n");
    assert!(matches!(
        stage_graph(&d, None, &no_args()).unwrap_err(),
        PlanError::ForwardReference { line: 2, .. }
    ));

    let d = df("FROM alpine AS a\nCOPY --from=a /x /y\n");
    assert_eq!(
        stage_graph(&d, None, &no_args()).unwrap_err(),
        PlanError::SelfReference {
            stage: "a".into(),
            line: 2,
            what: "COPY --from=a".into()
        }
    );
    let d = df("FROM alpine\nFROM alpine\nCOPY --from=7 /x /y\n");
    assert_eq!(
        stage_graph(&d, None, &no_args()).unwrap_err(),
        PlanError::InvalidStageIndex {
            line: 3,
            index: 7,
            count: 2
        }
    );
}

#[test]
fn mounts_images_onbuild_and_case() {
    let d = df("\
FROM alpine AS Assets
RUN echo
FROM alpine AS base
ONBUILD COPY --from=assets /a /a
FROM golang AS src
FROM BASE
RUN --mount=from=src,target=/src --mount=type=cache,target=/c --mount=type=bind,from=busybox:1,target=/bb make
COPY --from=nginx:latest /etc/nginx /etc/nginx
COPY --from=busybox:1 /bin/sh /bin/sh
");
    let p = stage_graph(&d, None, &no_args()).unwrap();
    assert_eq!(p.stages[3].base, BaseRef::Stage(1));
    assert_eq!(p.deps[3], vec![0, 1, 2]);
    assert_eq!(
        p.stages[3].images,
        vec!["busybox:1".to_string(), "nginx:latest".to_string()]
    );
    assert_eq!(p.levels, vec![vec![0, 1, 2], vec![3]]);
    assert_eq!(
        stage_graph(&d, Some("ASSETS"), &no_args()).unwrap().order,
        vec![0]
    );
}

#[test]
fn platform_args_and_from_expansion() {
    let pa = platform_args("linux/arm64", "linux/x86_64");
    let want: BTreeMap<String, String> = [
        ("TARGETPLATFORM", "linux/arm64"),
        ("TARGETOS", "linux"),
        ("TARGETARCH", "arm64"),
        ("TARGETVARIANT", ""),
        ("BUILDPLATFORM", "linux/amd64"),
        ("BUILDOS", "linux"),
        ("BUILDARCH", "amd64"),
        ("BUILDVARIANT", ""),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(pa, want);
    let arm = platform_args("linux/arm", "linux/arm64/v8");
    assert_eq!(arm["TARGETPLATFORM"], "linux/arm/v7");
    assert_eq!(arm["TARGETVARIANT"], "v7");
    assert_eq!(arm["BUILDPLATFORM"], "linux/arm64");

    let d = df(
        "ARG IMG=alpine\nARG TAG=${IMG}-3\nFROM --platform=$BUILDPLATFORM $IMG:${TAG} AS b\nFROM --platform=$TARGETPLATFORM b\n",
    );
    let p = stage_graph(&d, None, &pa).unwrap();
    assert_eq!(p.stages[0].platform.as_deref(), Some("linux/amd64"));
    assert_eq!(p.stages[0].base, BaseRef::Image("alpine:alpine-3".into()));
    assert_eq!(p.stages[1].platform.as_deref(), Some("linux/arm64"));
    assert_eq!(p.stages[1].base, BaseRef::Stage(0));

    // blank results and expansion errors
    let d = df("ARG IMG\nFROM ${IMG}\n");
    assert_eq!(
        stage_graph(&d, None, &no_args()).unwrap_err(),
        PlanError::BlankBase {
            line: 2,
            base: "${IMG}".into()
        }
    );
    let d = df("ARG IMG\nFROM ${IMG:?required}\n");
    let e = stage_graph(&d, None, &no_args()).unwrap_err();
    assert_eq!(e.to_string(), "line 2: IMG: required");
    let d = df("FROM --platform=$NOPE alpine\n");
    assert!(matches!(
        stage_graph(&d, None, &no_args()).unwrap_err(),
        PlanError::BlankPlatform { line: 1, .. }
    ));
}

fn fixture(name: &str) -> Dockerfile {
    let path = format!(
        "{}/../../testdata/dockerfiles/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap();
    parse(&text, name).unwrap()
}

#[test]
fn go_fixture() {
    let d = fixture("go.Dockerfile");
    assert_eq!(
        d.directives.syntax.as_deref(),
        Some("docker/dockerfile:1.7")
    );
    assert_eq!(d.stages.len(), 3);
    let p = stage_graph(&d, None, &platform_args("linux/arm64", "linux/amd64")).unwrap();
    assert_eq!(p.order, vec![0, 2]);
    assert_eq!(p.levels, vec![vec![0], vec![2]]);
    assert_eq!(
        p.stages[0].base,
        BaseRef::Image("golang:1.22-bookworm".into())
    );
    assert_eq!(p.stages[0].platform.as_deref(), Some("linux/amd64"));
    assert_eq!(p.stages[2].base, BaseRef::Scratch);
    let InstructionKind::Run(r) = &d.stages[0].instructions[5].kind else {
        panic!()
    };
    assert_eq!(r.mounts.len(), 2);
    assert_eq!(
        r.command,
        Command::Shell(
            "CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH     go build -trimpath -ldflags=\"-s -w\" -o /out/app ./cmd/app".into()
        )
    );
    assert_eq!(d.stages[0].instructions[5].span.line, 11);
    assert_eq!(d.stages[0].instructions[5].span.end_line, 14);
    let test = stage_graph(
        &d,
        Some("test"),
        &platform_args("linux/amd64", "linux/amd64"),
    )
    .unwrap();
    assert_eq!(test.order, vec![0, 1]);
    assert_eq!(test.levels, vec![vec![0], vec![1]]);
    // without the automatic platform args, `--platform=$BUILDPLATFORM` is blank
    assert_eq!(
        stage_graph(&d, None, &no_args()).unwrap_err(),
        PlanError::BlankPlatform {
            line: 4,
            expr: "$BUILDPLATFORM".into()
        }
    );
}

#[test]
fn node_fixture() {
    let d = fixture("node.Dockerfile");
    let p = stage_graph(&d, None, &no_args()).unwrap();
    assert_eq!(p.order, vec![0, 1, 2, 3]);
    assert_eq!(p.deps, vec![vec![], vec![0], vec![], vec![1, 2]]);
    assert_eq!(p.levels, vec![vec![0, 2], vec![1], vec![3]]);
    assert_eq!(
        p.stages[3].base,
        BaseRef::Image("gcr.io/distroless/nodejs20-debian12".into())
    );
    assert_eq!(
        d.stages[3].instructions.last().unwrap().kind,
        InstructionKind::Cmd(Command::Exec(vec!["dist/server.js".into()]))
    );
}

#[test]
fn python_fixture() {
    let d = fixture("python.Dockerfile");
    let p = stage_graph(&d, None, &no_args()).unwrap();
    assert_eq!(p.order, vec![0, 1]);
    assert_eq!(p.levels, vec![vec![0], vec![1]]);
    assert_eq!(
        d.stages[0].instructions[0].kind,
        InstructionKind::Env(vec![
            KeyValue {
                key: "PIP_NO_CACHE_DIR".into(),
                value: "1".into()
            },
            KeyValue {
                key: "PIP_DISABLE_PIP_VERSION_CHECK".into(),
                value: "1".into()
            }
        ])
    );
    let hc = d.stages[1]
        .instructions
        .iter()
        .find_map(|i| match &i.kind {
            InstructionKind::Healthcheck(h) => Some(h.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(hc.interval, Some(std::time::Duration::from_secs(30)));
    assert_eq!(hc.retries, Some(3));
    assert_eq!(
        hc.test,
        Some(vec![
            "CMD-SHELL".into(),
            "python -c \"import urllib.request; urllib.request.urlopen('http://localhost:8000/health')\"".into()
        ])
    );
}

#[test]
fn java_fixture() {
    let d = fixture("java.Dockerfile");
    let p = stage_graph(&d, Some("runtime"), &no_args()).unwrap();
    assert_eq!(p.target, 1);
    assert_eq!(p.order, vec![0, 1]);
    assert_eq!(p.deps, vec![vec![], vec![0]]);
    assert_eq!(p.levels, vec![vec![0], vec![1]]);
    let InstructionKind::Copy(c) = &d.stages[1].instructions[2].kind else {
        panic!()
    };
    assert_eq!(c.from.as_deref(), Some("build"));
    assert_eq!(c.chown.as_deref(), Some("app:app"));
    assert_eq!(
        d.stages[1].instructions.last().unwrap().kind,
        InstructionKind::Entrypoint(Command::Exec(vec![
            "java".into(),
            "-XX:MaxRAMPercentage=75".into(),
            "-jar".into(),
            "/app/app.jar".into()
        ]))
    );
}
