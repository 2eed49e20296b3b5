#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Malformed Dockerfiles: each error with its exact line, column and message.

use ocibuild_dockerfile::parse;

fn err(src: &str) -> ocibuild_dockerfile::ParseError {
    match parse(src, "Dockerfile") {
        Ok(df) => panic!("expected an error for {src:?}, got {df:#?}"),
        Err(e) => e,
    }
}

#[test]
fn error_table() {
    // (source, line, col, message substring)
    let cases: &[(&str, usize, usize, &str)] = &[
        (
            "FROM alpine\nRUN cat <<EOF\nhello\n",
            2,
            9,
            "unterminated heredoc",
        ),
        (
            "FROM alpine\nRUN <<A <<B\na\nA\nb\n",
            2,
            9,
            "unterminated heredoc",
        ),
        (
            "FROM alpine\nCOPY <<-EOF /x\n\tbody\n  EOF\n",
            2,
            6,
            "unterminated heredoc",
        ),
        (
            "FROM alpine\nRUNN echo hi",
            2,
            1,
            "unknown instruction: RUNN",
        ),
        ("FROM alpine\n  FOO bar", 2, 3, "unknown instruction: FOO"),
        (
            "FROM alpine\nRUN --mnt=type=cache echo",
            2,
            5,
            "unknown flag: --mnt",
        ),
        ("FROM alpine\nCMD --help", 2, 5, "unknown flag: --help"),
        (
            "FROM alpine\nRUN --from=build echo",
            2,
            5,
            "flag --from is not valid for RUN",
        ),
        (
            "FROM alpine\nCOPY --checksum=sha256:ab a b",
            2,
            6,
            "flag --checksum is not valid for COPY",
        ),
        (
            "FROM alpine\nADD --parents a b",
            2,
            5,
            "flag --parents is not valid for ADD",
        ),
        (
            "FROM alpine\nENV --mount=x a=b",
            2,
            5,
            "flag --mount is not valid for ENV",
        ),
        (
            "FROM a\nRUN --mount=type=cache,target=/x \\\n    --bogus echo",
            3,
            5,
            "unknown flag: --bogus",
        ),
        (
            "FROM a\nCOPY --link=maybe a b",
            2,
            6,
            "expecting boolean value for flag --link, not: maybe",
        ),
        (
            "FROM a\nCOPY --from a b",
            2,
            6,
            "missing a value on flag: --from",
        ),
        (
            "FROM a\nCOPY --chown=a --chown=b a b",
            2,
            16,
            "duplicate flag specified: --chown",
        ),
        (
            "ARG X=1\nRUN echo hi",
            2,
            1,
            "no build stage in current context",
        ),
        (
            "# c\n\n  COPY a b\nFROM x",
            3,
            3,
            "no build stage in current context",
        ),
        (
            "FROM a\nSHELL /bin/bash -c",
            2,
            7,
            "SHELL requires the arguments to be in JSON form",
        ),
        (
            "FROM a\nSHELL []",
            2,
            7,
            "SHELL requires at least one argument",
        ),
        (
            "FROM a\nSHELL [\"sh\", 1]",
            2,
            7,
            "arrays must be comprised of strings only",
        ),
        (
            "FROM a\nCMD [\"a\", 1]",
            2,
            5,
            "arrays must be comprised of strings only",
        ),
        ("FROM", 1, 1, "FROM requires either one or three arguments"),
        (
            "FROM --platform=linux/amd64",
            1,
            1,
            "FROM requires either one or three arguments",
        ),
        (
            "FROM a b",
            1,
            6,
            "FROM requires either one or three arguments",
        ),
        (
            "FROM a AS 1st",
            1,
            11,
            "invalid name for build stage: \"1st\"",
        ),
        (
            "FROM a AS x\nFROM b AS X",
            2,
            11,
            "duplicate stage name \"x\"",
        ),
        ("FROM a\nARG 1abc=2", 2, 5, "invalid ARG name \"1abc\""),
        ("FROM a\nARG ok x-y", 2, 8, "invalid ARG name \"x-y\""),
        ("FROM a\nARG =x", 2, 5, "ARG names can not be blank"),
        ("FROM a\nARG", 2, 1, "ARG requires at least one argument"),
        ("FROM a\nENV a=b c", 2, 9, "can't find = in \"c\""),
        ("FROM a\nENV a", 2, 5, "ENV must have two arguments"),
        ("FROM a\nLABEL =x", 2, 7, "LABEL names can not be blank"),
        (
            "FROM a\nHEALTHCHECK --interval=10x CMD true",
            2,
            13,
            "invalid duration for --interval",
        ),
        (
            "FROM a\nHEALTHCHECK --timeout=100us CMD true",
            2,
            13,
            "cannot be less than 1ms",
        ),
        (
            "FROM a\nHEALTHCHECK --retries=-1 CMD true",
            2,
            13,
            "--retries cannot be negative (-1)",
        ),
        (
            "FROM a\nHEALTHCHECK NONE x",
            2,
            18,
            "HEALTHCHECK NONE takes no arguments",
        ),
        (
            "FROM a\nHEALTHCHECK --interval=5s NONE",
            2,
            13,
            "HEALTHCHECK NONE takes no flags",
        ),
        (
            "FROM a\nHEALTHCHECK TEST x",
            2,
            13,
            "Unknown type \"TEST\" in HEALTHCHECK",
        ),
        (
            "FROM a\nHEALTHCHECK CMD",
            2,
            13,
            "Missing command after HEALTHCHECK CMD",
        ),
        ("FROM a\nONBUILD ONBUILD RUN x", 2, 9, "Chaining ONBUILD"),
        (
            "FROM a\nONBUILD FROM b",
            2,
            9,
            "FROM isn't allowed as an ONBUILD trigger",
        ),
        (
            "FROM a\nONBUILD MAINTAINER me",
            2,
            9,
            "MAINTAINER isn't allowed as an ONBUILD trigger",
        ),
        ("FROM a\nONBUILD NOPE x", 2, 9, "unknown instruction: NOPE"),
        (
            "FROM a\nCOPY onlyone",
            2,
            6,
            "COPY requires at least two arguments",
        ),
        (
            "FROM a\nCOPY a <<EOF\nx\nEOF",
            2,
            8,
            "COPY cannot accept a heredoc as a destination",
        ),
        (
            "FROM a\nCOPY --from=$STAGE /a /b",
            2,
            6,
            "variable expansion is not supported for --from",
        ),
        (
            "FROM a\nRUN --mount=from=$S,target=/x true",
            2,
            5,
            "'from' doesn't support variable expansion",
        ),
        (
            "FROM a\nRUN --mount=type=cache,tgt=/x true",
            2,
            5,
            "unexpected key 'tgt'",
        ),
        (
            "FROM a\nRUN --mount=type=nfs,target=/x true",
            2,
            5,
            "unsupported mount type \"nfs\"",
        ),
        (
            "FROM a\nRUN --mount=type=bind,target=/x,mode=0700 true",
            2,
            5,
            "mode not allowed for \"bind\"",
        ),
        (
            "FROM a\nRUN --mount=type=secret true",
            2,
            5,
            "invalid secret mount",
        ),
        (
            "FROM a\nRUN --mount=type=cache,target=/x,sharing=all true",
            2,
            5,
            "unsupported sharing value",
        ),
        (
            "FROM a\nRUN --mount=type=cache,target=/x,uid=abc true",
            2,
            5,
            "invalid value abc for uid",
        ),
        (
            "FROM a\nRUN --mount=type=cache,size=1g,target=/x true",
            2,
            5,
            "unexpected key 'size'",
        ),
        (
            "FROM a\nRUN --network=bridge true",
            2,
            5,
            "unsupported network mode \"bridge\"",
        ),
        (
            "FROM a\nRUN --security=root true",
            2,
            5,
            "unsupported security mode \"root\"",
        ),
        ("FROM a\nRUN", 2, 1, "RUN requires at least one argument"),
        (
            "FROM a\nWORKDIR",
            2,
            1,
            "WORKDIR requires exactly one argument",
        ),
        (
            "FROM a\nVOLUME []",
            2,
            8,
            "VOLUME requires at least one argument",
        ),
        (
            "FROM a\nVOLUME [\"\"]",
            2,
            8,
            "VOLUME specified can not be an empty string",
        ),
        ("# escape=x\nFROM a", 1, 1, "invalid escape token 'x'"),
        (
            "# escape=`\n# escape=\\\nFROM a",
            2,
            1,
            "only one escape parser directive can be used",
        ),
        ("", 1, 1, "file with no instructions"),
        ("# just a comment\n\n", 1, 1, "file with no instructions"),
        ("ARG A=1\n", 1, 1, "dockerfile contains no stages to build"),
    ];
    for &(src, line, col, msg) in cases {
        let e = err(src);
        assert!(
            e.message.contains(msg),
            "{src:?}: message {:?} does not contain {msg:?}",
            e.message
        );
        assert_eq!((e.line, e.col), (line, col), "{src:?}: {e}");
        assert_eq!(e.file, "Dockerfile");
    }
}

#[test]
fn errors_carry_the_line_and_a_hint() {
    let e = err("FROM alpine\nRUNN echo hi\n");
    assert_eq!(e.source_line, "RUNN echo hi");
    assert_eq!(e.hint.as_deref(), Some("did you mean RUN?"));

    // no far-fetched suggestions
    let e = err("FROM alpine\nNOPE x\n");
    assert!(
        e.hint
            .as_deref()
            .unwrap()
            .starts_with("valid instructions: ADD, ARG"),
        "{e}"
    );
    let e = err("FROM alpine\nENTRYPIONT [\"x\"]\n");
    assert_eq!(e.hint.as_deref(), Some("did you mean ENTRYPOINT?"));

    let e = err("FROM alpine\nRUN --from=build echo");
    assert!(
        e.hint
            .as_deref()
            .unwrap()
            .contains("--from is a flag of COPY"),
        "{e}"
    );

    let e = err("FROM a\nCOPY --form=build /a /b");
    assert_eq!(e.message, "unknown flag: --form");
    assert!(
        e.hint
            .as_deref()
            .unwrap()
            .starts_with("did you mean --from?"),
        "{e}"
    );
}

#[test]
fn display_renders_like_rustc() {
    let e = err("FROM a\nCOPY --form=build /a /b\n");
    let want = "Dockerfile:2:6: error: unknown flag: --form\n  | COPY --form=build /a /b\n  |      ^\n  = help: did you mean --from? COPY accepts --from, --chown, --chmod, --link, --parents, --exclude";
    assert_eq!(e.to_string(), want);

    // tabs in the line keep the caret aligned
    let e = err("FROM a\n\tBAD x\n");
    assert_eq!(e.col, 2);
    assert!(e.to_string().contains("\n  | \tBAD x\n  | \t^\n"), "{e}");

    // without a hint there is no help line
    let e = err("FROM a\nCOPY --chown=a --chown=b a b");
    assert_eq!(
        e.to_string(),
        "Dockerfile:2:16: error: duplicate flag specified: --chown\n  | COPY --chown=a --chown=b a b\n  |                ^"
    );
}

#[test]
fn column_counts_characters_not_bytes() {
    let e = err("FROM a\nLABEL é=1 ü\n");
    assert_eq!((e.line, e.col), (2, 11));
}
