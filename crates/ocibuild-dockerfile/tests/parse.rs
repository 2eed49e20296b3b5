#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Syntax table: every instruction, flag, heredoc form, directive and continuation edge case,
//! with the exact parsed result.

use std::time::Duration;

use ocibuild_dockerfile::*;

fn parse_ok(src: &str) -> Dockerfile {
    match parse(src, "Dockerfile") {
        Ok(df) => df,
        Err(e) => panic!("parse failed:\n{e}\n--- source ---\n{src}"),
    }
}

/// The instructions of the only stage of `FROM scratch\n<src>`.
fn body(src: &str) -> Vec<Instruction> {
    let df = parse_ok(&format!("FROM scratch\n{src}"));
    assert_eq!(df.stages.len(), 1);
    df.stages.into_iter().next().unwrap().instructions
}

fn one(src: &str) -> InstructionKind {
    let mut v = body(src);
    assert_eq!(v.len(), 1, "expected one instruction in {src:?}: {v:#?}");
    v.remove(0).kind
}

fn s(x: &str) -> String {
    x.to_string()
}

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: s(k),
        value: s(v),
    }
}

fn shell(c: &str) -> Command {
    Command::Shell(s(c))
}

fn exec(v: &[&str]) -> Command {
    Command::Exec(v.iter().map(|x| s(x)).collect())
}

fn run(c: Command) -> InstructionKind {
    InstructionKind::Run(Run {
        command: c,
        heredocs: vec![],
        mounts: vec![],
        network: None,
        security: None,
    })
}

fn heredoc(name: &str, content: &str, chomp: bool, expand: bool) -> Heredoc {
    Heredoc {
        name: s(name),
        content: s(content),
        chomp,
        expand,
    }
}

fn mount(spec: &str, kind: MountType) -> RunMount {
    RunMount {
        spec: s(spec),
        kind,
        target: None,
        source: None,
        from: None,
        id: None,
        sharing: None,
        mode: None,
        uid: None,
        gid: None,
        readonly: false,
        required: false,
        env: None,
        size: None,
    }
}

#[test]
fn simple_instruction_table() {
    let cases: Vec<(&str, InstructionKind)> = vec![
        (
            "ARG a=b c",
            InstructionKind::Arg(vec![
                Arg {
                    name: s("a"),
                    default: Some(s("b")),
                },
                Arg {
                    name: s("c"),
                    default: None,
                },
            ]),
        ),
        (
            r#"ARG V="1 2" EMPTY="#,
            InstructionKind::Arg(vec![
                Arg {
                    name: s("V"),
                    default: Some(s(r#""1 2""#)),
                },
                Arg {
                    name: s("EMPTY"),
                    default: Some(s("")),
                },
            ]),
        ),
        (
            r#"ENV k=v k2="v 2""#,
            InstructionKind::Env(vec![kv("k", "v"), kv("k2", r#""v 2""#)]),
        ),
        (
            "ENV JAVA_HOME /opt/java  with spaces",
            InstructionKind::Env(vec![kv("JAVA_HOME", "/opt/java  with spaces")]),
        ),
        (
            r#"ENV PATH="/opt/venv/bin:$PATH" A=a\ b"#,
            InstructionKind::Env(vec![
                kv("PATH", r#""/opt/venv/bin:$PATH""#),
                kv("A", r"a\ b"),
            ]),
        ),
        (
            r#"LABEL "com.example.vendor"="ACME Inc" version=1.0"#,
            InstructionKind::Label(vec![
                kv(r#""com.example.vendor""#, r#""ACME Inc""#),
                kv("version", "1.0"),
            ]),
        ),
        (
            "LABEL maintainer me",
            InstructionKind::Label(vec![kv("maintainer", "me")]),
        ),
        (
            "RUN echo $HOME && ls -la",
            run(shell("echo $HOME && ls -la")),
        ),
        (
            r#"RUN ["echo", "hi there"]"#,
            run(exec(&["echo", "hi there"])),
        ),
        // invalid JSON starting with '[' falls back to the shell form, as Docker does
        ("RUN [echo, hi]", run(shell("[echo, hi]"))),
        (
            r#"RUN [ "a", "b" ] trailing"#,
            run(shell(r#"[ "a", "b" ] trailing"#)),
        ),
        (
            "CMD [\"a\", \"b\"]   ",
            InstructionKind::Cmd(exec(&["a", "b"])),
        ),
        (
            "CMD node server.js",
            InstructionKind::Cmd(shell("node server.js")),
        ),
        ("CMD []", InstructionKind::Cmd(exec(&[]))),
        (
            r#"ENTRYPOINT ["/app", "--port", "80"]"#,
            InstructionKind::Entrypoint(exec(&["/app", "--port", "80"])),
        ),
        (
            "ENTRYPOINT exec /app",
            InstructionKind::Entrypoint(shell("exec /app")),
        ),
        (
            r#"SHELL ["/bin/bash", "-o", "pipefail", "-c"]"#,
            InstructionKind::Shell(vec![s("/bin/bash"), s("-o"), s("pipefail"), s("-c")]),
        ),
        (
            "WORKDIR /app/$SUB",
            InstructionKind::Workdir(s("/app/$SUB")),
        ),
        ("USER 65532:65532", InstructionKind::User(s("65532:65532"))),
        (
            r#"EXPOSE 80 443/tcp "53/udp" $PORT"#,
            InstructionKind::Expose(vec![s("80"), s("443/tcp"), s(r#""53/udp""#), s("$PORT")]),
        ),
        (
            r#"VOLUME ["/data", "/logs"]"#,
            InstructionKind::Volume(vec![s("/data"), s("/logs")]),
        ),
        (
            "VOLUME /a /b",
            InstructionKind::Volume(vec![s("/a"), s("/b")]),
        ),
        (
            "STOPSIGNAL SIGTERM",
            InstructionKind::StopSignal(s("SIGTERM")),
        ),
        (
            "MAINTAINER Jane Doe <jane@example.com>",
            InstructionKind::Maintainer(s("Jane Doe <jane@example.com>")),
        ),
        (
            "run echo lower-case keyword",
            run(shell("echo lower-case keyword")),
        ),
        // a lone `--` ends the flags
        ("RUN -- --not-a-flag", run(shell("--not-a-flag"))),
    ];
    for (src, want) in cases {
        assert_eq!(one(src), want, "source: {src}");
    }
}

#[test]
fn run_flags_and_mounts() {
    let src = "RUN --mount=type=cache,target=/root/.cache,id=pip,sharing=locked,mode=0755,uid=1000,gid=1000 \\\n\
               --mount=type=secret,id=npmrc,env=NPM_TOKEN,required \\\n\
               --mount=type=bind,from=build,source=/out,target=/in,rw \\\n\
               --mount=type=tmpfs,dst=/tmp,size=64m \\\n\
               --mount=type=ssh \\\n\
               --mount=src=ctx,destination=/ctx,ro=false \\\n\
               --network=none --security=insecure make all";
    let InstructionKind::Run(r) = one(src) else {
        panic!("not a RUN")
    };
    assert_eq!(r.command, shell("make all"));
    assert_eq!(r.network, Some(Network::None));
    assert_eq!(r.security, Some(Security::Insecure));
    let mut cache = mount(
        "type=cache,target=/root/.cache,id=pip,sharing=locked,mode=0755,uid=1000,gid=1000",
        MountType::Cache,
    );
    cache.target = Some(s("/root/.cache"));
    cache.id = Some(s("pip"));
    cache.sharing = Some(Sharing::Locked);
    cache.mode = Some(0o755);
    cache.uid = Some(1000);
    cache.gid = Some(1000);
    let mut secret = mount(
        "type=secret,id=npmrc,env=NPM_TOKEN,required",
        MountType::Secret,
    );
    secret.id = Some(s("npmrc"));
    secret.env = Some(s("NPM_TOKEN"));
    secret.required = true;
    secret.readonly = true;
    let mut bind = mount(
        "type=bind,from=build,source=/out,target=/in,rw",
        MountType::Bind,
    );
    bind.from = Some(s("build"));
    bind.source = Some(s("/out"));
    bind.target = Some(s("/in"));
    let mut tmpfs = mount("type=tmpfs,dst=/tmp,size=64m", MountType::Tmpfs);
    tmpfs.target = Some(s("/tmp"));
    tmpfs.size = Some(64 * 1024 * 1024);
    let mut ssh = mount("type=ssh", MountType::Ssh);
    ssh.readonly = true;
    let mut ctx = mount("src=ctx,destination=/ctx,ro=false", MountType::Bind);
    ctx.source = Some(s("ctx"));
    ctx.target = Some(s("/ctx"));
    assert_eq!(r.mounts, vec![cache, secret, bind, tmpfs, ssh, ctx]);
}

#[test]
fn mount_with_variables_is_expanded_later() {
    let InstructionKind::Run(r) =
        one("RUN --mount=type=cache,target=$GOPATH/pkg/mod,uid=$UID go build")
    else {
        panic!()
    };
    let m = &r.mounts[0];
    assert_eq!(m.target.as_deref(), Some("$GOPATH/pkg/mod"));
    assert_eq!(m.uid, None);
    let vars = |n: &str| match n {
        "GOPATH" => Some(s("/go")),
        "UID" => Some(s("1001")),
        _ => None,
    };
    let e = m.expanded(&vars, '\\').unwrap();
    assert_eq!(e.target.as_deref(), Some("/go/pkg/mod"));
    assert_eq!(e.uid, Some(1001));
    assert_eq!(e.kind, MountType::Cache);

    // a variable type is only known after expansion, and is validated then
    let InstructionKind::Run(r) = one("RUN --mount=type=$T,target=/x true") else {
        panic!()
    };
    assert_eq!(r.mounts[0].kind, MountType::Bind);
    let t = |v: &'static str| move |n: &str| (n == "T").then(|| s(v));
    assert_eq!(
        r.mounts[0].expanded(&t("tmpfs"), '\\').unwrap().kind,
        MountType::Tmpfs
    );
    let err = r.mounts[0].expanded(&t("nfs"), '\\').unwrap_err();
    assert!(matches!(err, Error::InvalidMount { .. }), "{err}");
    assert!(
        err.to_string().contains("unsupported mount type \"nfs\""),
        "{err}"
    );
    let err = r.mounts[0].expanded(&|_: &str| None, '\\').unwrap_err();
    assert!(
        err.to_string().contains("unsupported mount type \"\""),
        "{err}"
    );
}

#[test]
fn copy_and_add_flags() {
    let k = one(
        r#"COPY --from=build --chown=app:app --chmod=755 --link --exclude=*.md --exclude=tmp /src/a "b c" /dest/"#,
    );
    assert_eq!(
        k,
        InstructionKind::Copy(CopyArgs {
            sources: vec![s("/src/a"), s(r#""b c""#)],
            dest: s("/dest/"),
            from: Some(s("build")),
            chown: Some(s("app:app")),
            chmod: Some(s("755")),
            link: true,
            exclude: vec![s("*.md"), s("tmp")],
            ..CopyArgs::default()
        })
    );
    assert_eq!(
        one("COPY --parents --link=false ./x/**/*.go /app/"),
        InstructionKind::Copy(CopyArgs {
            sources: vec![s("./x/**/*.go")],
            dest: s("/app/"),
            parents: true,
            ..CopyArgs::default()
        })
    );
    assert_eq!(
        one(r#"COPY ["a b", "c", "/dst/"]"#),
        InstructionKind::Copy(CopyArgs {
            sources: vec![s("a b"), s("c")],
            dest: s("/dst/"),
            json: true,
            ..CopyArgs::default()
        })
    );
    assert_eq!(
        one(
            "ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d --keep-git-dir=true --chown=1:1 --exclude=*.tmp https://example.com/a.tar.gz /a/"
        ),
        InstructionKind::Add(CopyArgs {
            sources: vec![s("https://example.com/a.tar.gz")],
            dest: s("/a/"),
            checksum: Some(s(
                "sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d"
            )),
            keep_git_dir: true,
            chown: Some(s("1:1")),
            exclude: vec![s("*.tmp")],
            ..CopyArgs::default()
        })
    );
    // quoted flag values
    let InstructionKind::Copy(c) = one(r#"COPY --chown="app user" a b"#) else {
        panic!()
    };
    assert_eq!(c.chown.as_deref(), Some("app user"));
}

#[test]
fn healthcheck_forms() {
    assert_eq!(
        one("HEALTHCHECK NONE"),
        InstructionKind::Healthcheck(Healthcheck {
            test: None,
            interval: None,
            timeout: None,
            start_period: None,
            start_interval: None,
            retries: None,
        })
    );
    assert_eq!(
        one(
            "HEALTHCHECK --interval=30s --timeout=1m30s --start-period=5s --start-interval=500ms --retries=3 \\\n  CMD curl -f http://localhost/ || exit 1"
        ),
        InstructionKind::Healthcheck(Healthcheck {
            test: Some(vec![
                s("CMD-SHELL"),
                s("curl -f http://localhost/ || exit 1")
            ]),
            interval: Some(Duration::from_secs(30)),
            timeout: Some(Duration::from_secs(90)),
            start_period: Some(Duration::from_secs(5)),
            start_interval: Some(Duration::from_millis(500)),
            retries: Some(3),
        })
    );
    assert_eq!(
        one(r#"HEALTHCHECK cmd ["curl", "-f", "http://localhost/"]"#),
        InstructionKind::Healthcheck(Healthcheck {
            test: Some(vec![s("CMD"), s("curl"), s("-f"), s("http://localhost/")]),
            interval: None,
            timeout: None,
            start_period: None,
            start_interval: None,
            retries: None,
        })
    );
}

#[test]
fn onbuild_wraps_an_instruction() {
    let ins = body("  ONBUILD RUN echo hi");
    assert_eq!(ins.len(), 1);
    assert_eq!(
        ins[0].span,
        Span {
            line: 2,
            col: 3,
            end_line: 2
        }
    );
    let InstructionKind::OnBuild(ob) = &ins[0].kind else {
        panic!("not ONBUILD")
    };
    assert_eq!(ob.trigger, "RUN echo hi");
    assert_eq!(ob.instruction.kind, run(shell("echo hi")));
    assert_eq!(
        ob.instruction.span,
        Span {
            line: 2,
            col: 11,
            end_line: 2
        }
    );
    assert_eq!(ins[0].original, "ONBUILD RUN echo hi");

    // an ONBUILD heredoc keeps its body in the trigger, as BuildKit stores it
    let ins = body("ONBUILD RUN <<EOF\necho a\nEOF\nUSER x");
    assert_eq!(ins.len(), 2);
    let InstructionKind::OnBuild(ob) = &ins[0].kind else {
        panic!()
    };
    assert_eq!(ob.trigger, "RUN <<EOF\necho a\nEOF");
    assert_eq!(ins[0].span.end_line, 4);
    let back =
        parse_onbuild_triggers(&[ob.trigger.clone(), s("COPY --from=assets /a /b")]).unwrap();
    assert_eq!(back.len(), 2);
    let InstructionKind::Run(r) = &back[0].kind else {
        panic!()
    };
    assert_eq!(r.heredocs, vec![heredoc("EOF", "echo a\n", false, true)]);
    let InstructionKind::Copy(c) = &back[1].kind else {
        panic!()
    };
    assert_eq!(c.from.as_deref(), Some("assets"));

    let e = parse_onbuild_triggers(&[s("FROM alpine")]).unwrap_err();
    assert_eq!(e.message, "FROM isn't allowed as an ONBUILD trigger");
    let e = parse_onbuild_triggers(&[s("RUN a\nRUN b")]).unwrap_err();
    assert_eq!(e.message, "onbuild trigger should be a single expression");
}

#[test]
fn heredoc_run_forms() {
    // <<EOF: the body is the script
    let ins = body("RUN <<EOF\necho hi\necho there\nEOF\nUSER nobody");
    assert_eq!(ins.len(), 2);
    assert_eq!(
        ins[0].span,
        Span {
            line: 2,
            col: 1,
            end_line: 5
        }
    );
    assert_eq!(
        ins[1].span,
        Span {
            line: 6,
            col: 1,
            end_line: 6
        }
    );
    let InstructionKind::Run(r) = &ins[0].kind else {
        panic!()
    };
    assert_eq!(r.command, shell("<<EOF"));
    assert_eq!(
        r.heredocs,
        vec![heredoc("EOF", "echo hi\necho there\n", false, true)]
    );
    assert_eq!(
        r.heredoc_command(),
        Some(HeredocCommand::Inline(s("echo hi\necho there\n")))
    );

    // <<-EOF strips leading tabs from the body and the terminator
    let InstructionKind::Run(r) = one("RUN <<-EOF\n\techo a\n\t\techo b\n\tEOF") else {
        panic!()
    };
    assert_eq!(
        r.heredocs,
        vec![heredoc("EOF", "\techo a\n\t\techo b\n", true, true)]
    );
    assert_eq!(r.heredocs[0].text(), "echo a\necho b\n");
    assert_eq!(
        r.heredoc_command(),
        Some(HeredocCommand::Inline(s("echo a\necho b\n")))
    );

    // quoted delimiters: no expansion
    for src in [
        "RUN <<\"EOF\"\necho $HOME\nEOF",
        "RUN <<'EOF'\necho $HOME\nEOF",
    ] {
        let InstructionKind::Run(r) = one(src) else {
            panic!()
        };
        assert_eq!(
            r.heredocs,
            vec![heredoc("EOF", "echo $HOME\n", false, false)],
            "{src}"
        );
    }

    // two heredocs in one RUN: the shell gets everything
    let InstructionKind::Run(r) = one(
        "RUN <<FILE1 cat > file1 && <<FILE2 cat > file2\nI am\nfirst\nFILE1\nI am\nsecond\nFILE2",
    ) else {
        panic!()
    };
    assert_eq!(
        r.heredocs,
        vec![
            heredoc("FILE1", "I am\nfirst\n", false, true),
            heredoc("FILE2", "I am\nsecond\n", false, true)
        ]
    );
    assert_eq!(
        r.heredoc_command(),
        Some(HeredocCommand::Shell(s(
            "<<FILE1 cat > file1 && <<FILE2 cat > file2\nI am\nfirst\nFILE1\nI am\nsecond\nFILE2"
        )))
    );

    // a heredoc followed by more arguments
    let InstructionKind::Run(r) = one("RUN <<EOF bash\nset -e\necho hi\nEOF") else {
        panic!()
    };
    assert_eq!(r.command, shell("<<EOF bash"));
    assert_eq!(
        r.heredoc_command(),
        Some(HeredocCommand::Shell(s("<<EOF bash\nset -e\necho hi\nEOF")))
    );

    // a shebang makes it a script file
    let InstructionKind::Run(r) = one("RUN <<EOT\n#!/usr/bin/env python3\nprint(\"hi\")\nEOT")
    else {
        panic!()
    };
    assert_eq!(
        r.heredoc_command(),
        Some(HeredocCommand::Script {
            name: s("EOT"),
            content: s("#!/usr/bin/env python3\nprint(\"hi\")\n")
        })
    );

    // a heredoc on a continued line; the body starts after the last continuation line
    let ins = body(
        "RUN --mount=type=cache,target=/c cat <<EOF \\\n  > /out.txt\nline1\nEOF\nRUN echo after",
    );
    assert_eq!(ins.len(), 2);
    let InstructionKind::Run(r) = &ins[0].kind else {
        panic!()
    };
    assert_eq!(r.command, shell("cat <<EOF   > /out.txt"));
    assert_eq!(r.heredocs, vec![heredoc("EOF", "line1\n", false, true)]);
    assert_eq!(
        ins[0].span,
        Span {
            line: 2,
            col: 1,
            end_line: 5
        }
    );
    assert_eq!(ins[1].kind, run(shell("echo after")));
    assert_eq!(ins[1].span.line, 6);

    // `<<` inside quotes or JSON is not a heredoc
    assert_eq!(one("RUN echo \"<<EOF\""), run(shell("echo \"<<EOF\"")));
    assert_eq!(
        one(r#"RUN ["echo", "<<EOF"]"#),
        run(exec(&["echo", "<<EOF"]))
    );
    // a digit prefix (file descriptor) is allowed
    let InstructionKind::Run(r) = one("RUN cat 3<<IN\nx\nIN") else {
        panic!()
    };
    assert_eq!(r.heredocs, vec![heredoc("IN", "x\n", false, true)]);
}

#[test]
fn heredoc_copy_files() {
    let ins = body("COPY <<a.txt <<b.txt /dest/\nhello\na.txt\nworld\nb.txt\nWORKDIR /dest");
    assert_eq!(ins.len(), 2);
    assert_eq!(
        ins[0].kind,
        InstructionKind::Copy(CopyArgs {
            inline_files: vec![
                InlineFile {
                    name: s("a.txt"),
                    content: s("hello\n"),
                    expand: true
                },
                InlineFile {
                    name: s("b.txt"),
                    content: s("world\n"),
                    expand: true
                },
            ],
            dest: s("/dest/"),
            ..CopyArgs::default()
        })
    );
    assert_eq!(ins[0].span.end_line, 6);
    assert_eq!(ins[1].kind, InstructionKind::Workdir(s("/dest")));

    assert_eq!(
        one("ADD --chmod=600 <<-\"EOF\" extra.txt /etc/app.conf\n\tkey=$v\n\tEOF"),
        InstructionKind::Add(CopyArgs {
            sources: vec![s("extra.txt")],
            inline_files: vec![InlineFile {
                name: s("EOF"),
                content: s("key=$v\n"),
                expand: false
            }],
            dest: s("/etc/app.conf"),
            chmod: Some(s("600")),
            ..CopyArgs::default()
        })
    );
}

#[test]
fn directives() {
    let df = parse_ok("# syntax=docker/dockerfile:1.7\n#CHECK = skip=all\n# escape=\\\nFROM x\n");
    assert_eq!(
        df.directives,
        Directives {
            syntax: Some(s("docker/dockerfile:1.7")),
            escape: '\\',
            check: Some(s("skip=all")),
        }
    );
    // after an ordinary comment, directives are comments
    let df = parse_ok("# hello\n# escape=`\nFROM x\nRUN a \\\n b");
    assert_eq!(df.directives.escape, '\\');
    assert_eq!(df.stages[0].instructions[0].kind, run(shell("a  b")));
    // an unknown directive ends the directives too
    let df = parse_ok("# foo=bar\n# syntax=x\nFROM x");
    assert_eq!(df.directives.syntax, None);
    // a blank line ends them
    let df = parse_ok("\n# syntax=x\nFROM x");
    assert_eq!(df.directives.syntax, None);
    // keys are case-insensitive
    let df = parse_ok("# ESCAPE=`\nFROM x");
    assert_eq!(df.directives.escape, '`');
}

#[test]
fn escape_backtick_and_windows_paths() {
    let df = parse_ok(
        "# escape=`\n\nFROM mcr.microsoft.com/windows/servercore\nCOPY testfile.txt c:\\\nRUN dir c:\\\nWORKDIR c:\\windows\nRUN echo a `\n    b\nENV P=c:\\a\\b Q=x` y\n",
    );
    assert_eq!(df.escape(), '`');
    let ins = &df.stages[0].instructions;
    assert_eq!(ins.len(), 5);
    assert_eq!(
        ins[0].kind,
        InstructionKind::Copy(CopyArgs {
            sources: vec![s("testfile.txt")],
            dest: s("c:\\"),
            ..CopyArgs::default()
        })
    );
    assert_eq!(ins[1].kind, run(shell("dir c:\\")));
    assert_eq!(ins[2].kind, InstructionKind::Workdir(s("c:\\windows")));
    assert_eq!(ins[3].kind, run(shell("echo a     b")));
    assert_eq!(
        ins[3].span,
        Span {
            line: 7,
            col: 1,
            end_line: 8
        }
    );
    assert_eq!(
        ins[4].kind,
        InstructionKind::Env(vec![kv("P", "c:\\a\\b"), kv("Q", "x` y")])
    );
    // and the values expand with the backtick as escape
    assert_eq!(expand("x` y", &|_| None, '`').unwrap(), "x y");
    assert_eq!(expand("c:\\a\\b", &|_| None, '`').unwrap(), "c:\\a\\b");
}

#[test]
fn continuation_edge_cases() {
    let cases: Vec<(&str, InstructionKind, Span)> = vec![
        // a comment inside a continuation is dropped
        (
            "RUN apt-get update && \\\n    # install things\n    apt-get install -y curl",
            run(shell("apt-get update &&     apt-get install -y curl")),
            Span {
                line: 2,
                col: 1,
                end_line: 4,
            },
        ),
        // whitespace after the escape
        (
            "RUN echo a \\   \n  b",
            run(shell("echo a   b")),
            Span {
                line: 2,
                col: 1,
                end_line: 3,
            },
        ),
        // empty and blank continuation lines are skipped
        (
            "RUN echo a \\\n\n   \n  b",
            run(shell("echo a   b")),
            Span {
                line: 2,
                col: 1,
                end_line: 5,
            },
        ),
        // continuation at end of file
        (
            "RUN echo a \\",
            run(shell("echo a")),
            Span {
                line: 2,
                col: 1,
                end_line: 2,
            },
        ),
        // an escaped escape is not a continuation
        (
            "RUN echo a\\\\",
            run(shell("echo a\\\\")),
            Span {
                line: 2,
                col: 1,
                end_line: 2,
            },
        ),
        // leading whitespace and a line holding only the escape character
        (
            "   RUN echo \\\n\\\n  x",
            run(shell("echo   x")),
            Span {
                line: 2,
                col: 4,
                end_line: 4,
            },
        ),
        // CRLF line endings
        (
            "RUN a \\\r\n  b\r\n",
            run(shell("a   b")),
            Span {
                line: 2,
                col: 1,
                end_line: 3,
            },
        ),
    ];
    for (src, want, span) in cases {
        let ins = body(src);
        assert_eq!(ins.len(), 1, "{src:?}");
        assert_eq!(ins[0].kind, want, "{src:?}");
        assert_eq!(ins[0].span, span, "{src:?}");
    }
    // the original text is the joined logical line
    let ins = body("RUN a \\\n  b");
    assert_eq!(ins[0].original, "RUN a   b");
}

#[test]
fn stages_and_global_args() {
    let df = parse_ok(
        "ARG BASE=alpine V\n# comment\nFROM --platform=$BUILDPLATFORM ${BASE}:3 AS Build\nRUN make\n\nfrom build\nARG V\n",
    );
    assert_eq!(
        df.global_args,
        vec![
            Arg {
                name: s("BASE"),
                default: Some(s("alpine"))
            },
            Arg {
                name: s("V"),
                default: None
            }
        ]
    );
    assert_eq!(df.stages.len(), 2);
    assert_eq!(df.stages[0].name.as_deref(), Some("build"));
    assert_eq!(df.stages[0].base, "${BASE}:3");
    assert_eq!(df.stages[0].platform.as_deref(), Some("$BUILDPLATFORM"));
    assert_eq!(
        df.stages[0].span,
        Span {
            line: 3,
            col: 1,
            end_line: 3
        }
    );
    assert_eq!(df.stages[0].instructions.len(), 1);
    assert_eq!(df.stages[1].name, None);
    assert_eq!(df.stages[1].base, "build");
    assert_eq!(df.stages[1].span.line, 6);
    assert_eq!(
        df.stages[1].instructions[0].kind,
        InstructionKind::Arg(vec![Arg {
            name: s("V"),
            default: None
        }])
    );
    assert_eq!(df.find_stage("BUILD"), Some(0));
    assert_eq!(df.find_stage("1"), Some(1));
    assert_eq!(df.find_stage("2"), None);
}

#[test]
fn ssh_mount_is_not_a_parse_error() {
    let InstructionKind::Run(r) =
        one("RUN --mount=type=ssh,id=github,required git clone git@github.com:x/y")
    else {
        panic!()
    };
    assert_eq!(r.mounts.len(), 1);
    assert_eq!(r.mounts[0].kind, MountType::Ssh);
    assert_eq!(r.mounts[0].id.as_deref(), Some("github"));
    assert!(r.mounts[0].required);
}

#[test]
fn model_helpers() {
    let k = one("COPY a b");
    assert!(k.expands_variables());
    assert_eq!(k.keyword(), "COPY");
    assert!(!one("RUN x").expands_variables());
    assert!(!one("CMD x").expands_variables());
    assert!(one("EXPOSE 80").expands_variables());
    let df = parse_ok("FROM a AS Named\nFROM b\n");
    assert_eq!(df.stages[0].display_name(0), "named");
    assert_eq!(df.stages[1].display_name(1), "stage-1");
    // the model serialises (the engine records it)
    let df = parse_ok("FROM a\nHEALTHCHECK --interval=5s CMD true\n");
    let json = serde_json::to_string(&df).unwrap();
    let back: Dockerfile = serde_json::from_str(&json).unwrap();
    assert_eq!(back, df);
}

/// Variable references are checked when the Dockerfile is parsed, in every instruction that
/// expands them: an unterminated `${B` is a located error with a caret and a hint, not a
/// failure when the stage runs.
#[test]
fn bad_variable_references_fail_at_parse_time_with_place_and_hint() {
    // (source, line, col, message substring)
    let cases: &[(&str, usize, usize, &str)] = &[
        (
            "FROM scratch\nENV A=1 B=${B\n",
            2,
            11,
            "unterminated variable reference `${B`",
        ),
        (
            "FROM scratch\nLABEL x=\"${a} ${b\"\n",
            2,
            15,
            "unterminated variable reference",
        ),
        (
            "ARG BASE=${X\nFROM scratch\n",
            1,
            10,
            "unterminated variable reference",
        ),
        ("FROM ${BASE\n", 1, 6, "unterminated variable reference"),
        ("FROM scratch\nCOPY ${SRC /dst/\n", 2, 6, "unterminated"),
        (
            "FROM scratch\nCOPY --chown=${U a /b/\n",
            2,
            14,
            "unterminated",
        ),
        (
            "FROM scratch\nWORKDIR /app/${}\n",
            2,
            14,
            "bad substitution",
        ),
        (
            "FROM scratch\nUSER ${U:x}\n",
            2,
            6,
            "unsupported modifier `x`",
        ),
        ("FROM scratch\nEXPOSE ${P:-80\n", 2, 8, "unterminated"),
        ("FROM scratch\nVOLUME /d/${V\n", 2, 11, "unterminated"),
        ("FROM scratch\nSTOPSIGNAL ${S\n", 2, 12, "unterminated"),
        ("FROM scratch\nADD a \\\n  ${DEST\n", 3, 3, "unterminated"),
        ("FROM scratch\nENV A=${X:-${Y}\n", 2, 7, "unterminated"),
    ];
    for &(src, line, col, msg) in cases {
        let e = match parse(src, "Dockerfile") {
            Ok(df) => panic!("expected an error for {src:?}, got {df:#?}"),
            Err(e) => e,
        };
        assert_eq!((e.line, e.col), (line, col), "{src:?}:\n{e}");
        assert!(e.message.contains(msg), "{src:?}: {e}");
        let hint = e.hint.clone().unwrap_or_default();
        assert!(hint.contains("${NAME"), "{src:?}: no hint: {e}");
        let shown = e.to_string();
        assert!(shown.contains("^"), "no caret: {shown}");
        assert!(
            shown.starts_with(&format!("Dockerfile:{line}:{col}: error:")),
            "{shown}"
        );
    }
    // what is valid stays valid: escaped or single-quoted `$`, `$` not followed by a name,
    // every modifier, and RUN/CMD, which the shell expands
    parse_ok(
        "ARG V=1\nFROM scratch\nENV A=\\${B C='${D' E=\"cost: $5\" F=${V:-x} G=${V#p} H=${V//a/b}\n\
         LABEL k=\"${V:+y}\"\nRUN echo ${B\nCMD echo ${C\n",
    );
}
