//! `--toolchain host`: checking the host's programs against what the app needs.
//!
//! The plan lists the host programs the steps run ([`crate::HostTool`]: the program, its
//! version command, the app's requirements). The executor looks each one up on the steps'
//! `PATH` and runs its version command — this crate runs nothing — and hands the outcome to
//! [`check_host_tool`], which parses the version, compares it, and either says what was found
//! (for `--explain`) or fails with what is wrong and what to do.

use std::path::PathBuf;

use crate::error::{BuildersError, Result};
use crate::plan::{Constraint, HostTool, Requirement};
use crate::version::{go_version, npm_range_satisfied, numeric_parts, pep440_satisfied};

/// What probing one host program gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// The program is on none of the directories of `path`.
    NotFound { path: String },
    /// Its version command ran; `output` is stdout then stderr (javac 8 and some others print
    /// their version on stderr).
    Ran {
        program: PathBuf,
        success: bool,
        status: String,
        output: String,
    },
    /// Its version command could not be started.
    Failed { program: PathBuf, error: String },
}

/// What the host has, parsed from a version command's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostVersion {
    /// The line it was found in, cleaned (`go1.19.8`, `v20.20.2`, `Python 3.11.2`).
    pub shown: String,
    /// The version, numbers only (`1.19.8`).
    pub version: String,
}

/// Check one host program. `Ok` is the line `--explain` prints.
pub fn check_host_tool(tool: &HostTool, outcome: &ProbeOutcome) -> Result<String> {
    let cmd = tool.version_argv.join(" ");
    let (program, output) = match outcome {
        ProbeOutcome::NotFound { path } => {
            return Err(host_error(
                format!("{} not found on PATH ({path})", tool.program),
                format!(
                    "install it{} or drop --toolchain host",
                    wanted(&tool.requirements)
                ),
            ));
        }
        ProbeOutcome::Failed { program, error } => {
            return Err(host_error(
                format!("`{cmd}` ({}) could not run: {error}", program.display()),
                format!(
                    "check the host's {}, or drop --toolchain host",
                    tool.program
                ),
            ));
        }
        ProbeOutcome::Ran {
            program,
            success,
            status,
            output,
        } => {
            if !success {
                return Err(host_error(
                    format!(
                        "`{cmd}` ({}) failed ({status}): {}",
                        program.display(),
                        first_line(output)
                    ),
                    format!(
                        "check the host's {}, or drop --toolchain host",
                        tool.program
                    ),
                ));
            }
            (program, output)
        }
    };
    let Some(found) = parse_host_version(output) else {
        if tool.requirements.is_empty() {
            return Ok(format!(
                "toolchain (host): {} ({}, version not recognised in {:?})",
                tool.program,
                program.display(),
                first_line(output)
            ));
        }
        return Err(host_error(
            format!(
                "`{cmd}` ({}) printed {:?}, in which no version was found",
                program.display(),
                first_line(output)
            ),
            format!(
                "check the host's {}, or drop --toolchain host",
                tool.program
            ),
        ));
    };
    let shown = labelled(&tool.program, &found.shown);
    let mut ok = Vec::new();
    for r in &tool.requirements {
        let satisfied = satisfies(&r.constraint, &found.version).map_err(|detail| {
            host_error(
                format!("{} {} ({}): {detail}", r.what, r.constraint, r.origin),
                "fix the requirement, or drop --toolchain host".to_string(),
            )
        })?;
        if !satisfied {
            return Err(host_error(
                format!(
                    "the app needs {} {} ({}), the host has {} ({})",
                    r.what,
                    r.constraint,
                    r.origin,
                    shown,
                    program.display()
                ),
                r.hint.clone(),
            ));
        }
        ok.push(format!("{} {} ({})", r.what, r.constraint, r.origin));
    }
    Ok(if ok.is_empty() {
        format!("toolchain (host): {shown} ({})", program.display())
    } else {
        format!(
            "toolchain (host): {shown} ({}) satisfies {}",
            program.display(),
            ok.join(" and ")
        )
    })
}

/// `v20.20.2` → `node v20.20.2`; `go1.19.8` and `Python 3.11.2` stay as they are.
fn labelled(program: &str, shown: &str) -> String {
    let name = program.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    if shown.to_lowercase().contains(&name.to_lowercase()) {
        shown.to_string()
    } else {
        format!("{program} {shown}")
    }
}

fn host_error(detail: String, hint: String) -> BuildersError {
    BuildersError::HostToolchain { detail, hint }
}

fn wanted(reqs: &[Requirement]) -> String {
    match reqs.first() {
        Some(r) => format!(" ({} {})", r.what, r.constraint),
        None => String::new(),
    }
}

fn first_line(s: &str) -> String {
    strip_ansi(s)
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_string()
}

/// Drop ANSI escape sequences (`mvn -v` colours its first line).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// The first version in a version command's output: `go1.19.8` → 1.19.8, `v20.20.2`,
/// `Python 3.11.2`, `javac 17.0.15`, `javac 1.8.0_392`, `Apache Maven 3.8.7 (…)`, `10.9.2`.
pub fn parse_host_version(output: &str) -> Option<HostVersion> {
    let clean = strip_ansi(output);
    for line in clean.lines() {
        for word in line.split_whitespace() {
            let w = word.trim_matches(|c: char| matches!(c, '(' | ')' | ',' | '"' | '\''));
            let bare = w.strip_prefix("go").unwrap_or(w);
            let bare = bare.strip_prefix(['v', 'V']).unwrap_or(bare);
            if !bare.starts_with(|c: char| c.is_ascii_digit()) {
                continue;
            }
            if let Some(parts) = numeric_parts(bare) {
                return Some(HostVersion {
                    shown: line.trim().to_string(),
                    version: parts
                        .iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join("."),
                });
            }
        }
    }
    None
}

/// Whether `version` (numbers only) satisfies `c`; `Err` when the constraint does not parse.
pub(crate) fn satisfies(c: &Constraint, version: &str) -> Result<bool, String> {
    match c {
        Constraint::GoAtLeast(want) => {
            let want = go_version(want).ok_or_else(|| format!("{want:?} is not a Go version"))?;
            let have =
                go_version(version).ok_or_else(|| format!("{version:?} is not a Go version"))?;
            Ok(have >= want)
        }
        Constraint::NpmRange(range) => {
            // npm ranges compare three numbers: `20` → 20.0.0.
            let mut p: Vec<&str> = version.split('.').take(3).collect();
            while p.len() < 3 {
                p.push("0");
            }
            npm_range_satisfied(range, &p.join("."))
        }
        Constraint::Pep440(spec) => pep440_satisfied(spec, version),
        Constraint::JavaRelease(want) => {
            let have = crate::java::java_release(version)
                .ok_or_else(|| format!("{version:?} is not a Java version"))?;
            Ok(have >= *want)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn v(s: &str) -> String {
        parse_host_version(s).unwrap().version
    }

    #[test]
    fn versions_from_tool_output() {
        assert_eq!(v("go1.19.8\n"), "1.19.8");
        assert_eq!(v("go1.24rc1"), "1.24");
        assert_eq!(v("devel go1.25-abcdef Tue"), "1.25");
        assert_eq!(v("v20.20.2\n"), "20.20.2");
        assert_eq!(v("Python 3.11.2\n"), "3.11.2");
        assert_eq!(v("javac 17.0.15\n"), "17.0.15");
        assert_eq!(v("javac 21\n"), "21");
        assert_eq!(v("javac 1.8.0_392\n"), "1.8.0");
        assert_eq!(
            v("\u{1b}[1mApache Maven 3.8.7\u{1b}[m\nMaven home: /usr/share/maven\n"),
            "3.8.7"
        );
        assert_eq!(v("10.9.2"), "10.9.2");
        assert_eq!(
            parse_host_version("go1.19.8").unwrap().shown,
            "go1.19.8".to_string()
        );
        assert!(parse_host_version("command not found").is_none());
        assert!(parse_host_version("").is_none());
    }

    #[test]
    fn constraints() {
        let go = |w: &str| Constraint::GoAtLeast(w.into());
        assert!(satisfies(&go("1.19"), "1.19.8").unwrap());
        assert!(!satisfies(&go("1.24"), "1.19.8").unwrap());
        assert!(!satisfies(&go("1.23.4"), "1.23.2").unwrap());
        assert!(satisfies(&go("1.23.4"), "1.24").unwrap());
        let npm = |r: &str| Constraint::NpmRange(r.into());
        assert!(satisfies(&npm(">=18"), "20.20.2").unwrap());
        assert!(!satisfies(&npm(">=22"), "20.20.2").unwrap());
        assert!(satisfies(&npm("^20"), "20").unwrap());
        assert!(satisfies(&npm("18 || 20"), "20.1").unwrap());
        assert!(satisfies(&npm("latest"), "20.1.0").is_err());
        let pep = |s: &str| Constraint::Pep440(s.into());
        assert!(satisfies(&pep(">=3.11"), "3.11.2").unwrap());
        assert!(!satisfies(&pep(">=3.12"), "3.11.2").unwrap());
        assert!(satisfies(&pep("==3.11.*"), "3.11.2").unwrap());
        assert!(!satisfies(&pep("==3.13.*"), "3.11.2").unwrap());
        assert!(satisfies(&Constraint::JavaRelease(17), "17.0.15").unwrap());
        assert!(satisfies(&Constraint::JavaRelease(11), "17.0.15").unwrap());
        assert!(!satisfies(&Constraint::JavaRelease(21), "17.0.15").unwrap());
        assert!(!satisfies(&Constraint::JavaRelease(11), "1.8.0").unwrap());
    }

    fn tool(reqs: Vec<Requirement>) -> HostTool {
        HostTool {
            program: "go".into(),
            version_argv: vec!["go".into(), "env".into(), "GOVERSION".into()],
            requirements: reqs,
        }
    }

    fn go_req(v: &str) -> Requirement {
        Requirement {
            what: "Go".into(),
            constraint: Constraint::GoAtLeast(v.into()),
            origin: "go.mod:3".into(),
            hint: format!("install Go {v} or newer on the host, or drop --toolchain host"),
        }
    }

    fn ran(out: &str) -> ProbeOutcome {
        ProbeOutcome::Ran {
            program: "/usr/bin/go".into(),
            success: true,
            status: "exit status: 0".into(),
            output: out.into(),
        }
    }

    #[test]
    fn checks_say_what_and_what_to_do() {
        let t = tool(vec![go_req("1.24")]);
        let e = check_host_tool(
            &t,
            &ProbeOutcome::NotFound {
                path: "/usr/local/bin:/usr/bin".into(),
            },
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "--toolchain host: go not found on PATH (/usr/local/bin:/usr/bin) — install it \
             (Go >= 1.24) or drop --toolchain host"
        );
        let e = check_host_tool(&t, &ran("go1.19.8\n"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "--toolchain host: the app needs Go >= 1.24 (go.mod:3), the host has go1.19.8 \
             (/usr/bin/go) — install Go 1.24 or newer on the host, or drop --toolchain host"
        );
        assert_eq!(
            check_host_tool(&t, &ran("go1.24.2\n")).unwrap(),
            "toolchain (host): go1.24.2 (/usr/bin/go) satisfies Go >= 1.24 (go.mod:3)"
        );
        let e = check_host_tool(&t, &ran("garbage\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no version was found"), "{e}");
        let failed = ProbeOutcome::Ran {
            program: "/usr/bin/go".into(),
            success: false,
            status: "exit status: 2".into(),
            output: "go: cannot find GOROOT\n".into(),
        };
        let e = check_host_tool(&t, &failed).unwrap_err().to_string();
        assert!(
            e.contains(
                "`go env GOVERSION` (/usr/bin/go) failed (exit status: 2): go: cannot find GOROOT"
            ),
            "{e}"
        );
        // Presence only: any output is fine.
        let npm = HostTool {
            program: "npm".into(),
            version_argv: vec!["npm".into(), "--version".into()],
            requirements: Vec::new(),
        };
        let ok = ProbeOutcome::Ran {
            program: "/usr/bin/npm".into(),
            success: true,
            status: "exit status: 0".into(),
            output: "9.2.0\n".into(),
        };
        assert_eq!(
            check_host_tool(&npm, &ok).unwrap(),
            "toolchain (host): npm 9.2.0 (/usr/bin/npm)"
        );
    }
}
