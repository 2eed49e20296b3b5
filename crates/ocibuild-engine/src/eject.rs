//! Eject: a zero-config [`Plan`] written as a Dockerfile on the same native bases
//! (`FROM ocibuild:PROFILE`, [`crate::df::native`]).
//!
//! ```text
//! FROM ocibuild:<toolchain root> AS build     the plan's toolchain profile and packages
//!   ENV PATH, HOME, LANG, SOURCE_DATE_EPOCH   what the zero-config executor gives every step
//!   COPY --exclude=… . /src/                  the source copy, with the plan's excludes
//!   RUN mkdir -p <outputs>; COPY <<EOF …      the output dirs and the planner's files
//!   RUN --mount=type=cache … K=V argv…        each step (its env, cwd, network, cache mounts)
//! FROM ocibuild:<runtime>:nonroot
//!   COPY --from=build [--exclude=…] …         one COPY per layer of the plan
//!   ENV/WORKDIR/USER/EXPOSE/LABEL/HEALTHCHECK/ENTRYPOINT/CMD   the plan's config
//! ```
//!
//! COPY `--exclude` patterns are matched, as ocibuild's Dockerfile executor matches them,
//! against paths relative to the source's root (the context, or the build stage's `/`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use ocibuild_builders::{LayerSpec, Plan};

use crate::error::{EngineError, Result};
use crate::zeroconfig::{DEFAULT_PATH, step_source_date_epoch, toolchain_request};

/// What the eject needs besides the plan.
#[derive(Clone, Debug, Default)]
pub struct EjectOptions {
    /// For the header comment: the app's directory as the user gave it.
    pub app: String,
    /// Labels the zero-config build adds to the plan's (created, git revision and source).
    pub labels: BTreeMap<String, String>,
    /// `--source-date-epoch` (the steps see it raised to 1980, as zero-config steps do).
    pub source_date_epoch: u64,
    /// The app's directory: which of the steps' declared inputs exist (without it, all of
    /// them are taken to exist).
    pub dir: Option<std::path::PathBuf>,
    /// Where the build stage's `FROM` takes its root from.
    pub build_from: BuildFrom,
}

/// The build stage's root and platform: a choice made on the plan, written into the `FROM`
/// line as it is generated (never an edit of generated text).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BuildFrom {
    /// `FROM --platform=$BUILDPLATFORM …`: the stage runs on the build platform for another
    /// target (its layers are cross-compiled or architecture-independent).
    pub build_platform: bool,
    /// `--toolchain host`: the stage is `FROM ocibuild:host` (the host's own programs), which
    /// only the build itself can name; an eject refuses it.
    pub host: bool,
}

/// The declared inputs of the first `n` steps that exist in `dir` and that the source copy
/// keeps (sorted, deduplicated), as COPY sources.
fn declared_inputs(plan: &Plan, n: usize, dir: Option<&std::path::Path>) -> Result<Vec<String>> {
    let filter = ocibuild_builders::glob_filter(&[], &plan.source_exclude)?;
    let mut out: Vec<String> = plan.steps[..n]
        .iter()
        .flat_map(|s| s.inputs.iter().flatten())
        .map(|p| p.trim_start_matches("./").to_string())
        .filter(|p| {
            !p.is_empty()
                && !p.contains(['*', '?', '[', ' ', '\n'])
                && !p.split('/').any(|c| c == "..")
                && !filter.is_excluded(p)
                && dir.is_none_or(|d| d.join(p).is_file())
        })
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// The Dockerfile equivalent to `plan`.
pub fn dockerfile(plan: &Plan, o: &EjectOptions) -> Result<String> {
    let host = o.build_from.host;
    if plan.toolchain.profile == "host" && !host {
        return Err(EngineError::Invalid {
            what: "--dry-run=dockerfile".into(),
            detail: "a plan with --toolchain host runs the host's programs, which a Dockerfile cannot name; eject without --toolchain host".into(),
        });
    }
    let mut d = String::new();
    let w = &mut d;
    let (tc_profile, tc_packages) = toolchain_request(plan);
    let _ = writeln!(
        w,
        "# Ejected from ocibuild's zero-config plan of {} ({} app, toolchain {}).\n\
         # Build it with: ocibuild build -f <this file> {}\n\
         # `FROM ocibuild:PROFILE[:VARIANT][+PACKAGE,…]` bases are assembled from Debian packages\n\
         # (`ocibuild base list`); --distro and --base-lock choose and pin them.\n",
        o.app, plan.lang, plan.toolchain.version, o.app
    );
    let tc_ref = native_ref(
        &tc_profile,
        "",
        &tc_packages,
        plan.toolchain
            .backports
            .then_some(plan.toolchain.packages.as_slice()),
    );
    let tc_ref = if host {
        crate::df::native::HOST.to_string()
    } else {
        tc_ref
    };
    let platform = if o.build_from.build_platform {
        "--platform=$BUILDPLATFORM "
    } else {
        ""
    };
    let _ = writeln!(w, "FROM {platform}{tc_ref} AS build");
    // What the zero-config executor gives every step.
    let mut path = plan.toolchain.path_prepend.join(":");
    if !path.is_empty() {
        path.push(':');
    }
    path.push_str(DEFAULT_PATH);
    let _ = writeln!(
        w,
        "ENV PATH={} HOME=/root LANG=C.UTF-8 SOURCE_DATE_EPOCH={}",
        env_value(&path),
        step_source_date_epoch(o.source_date_epoch)
    );
    // The steps that declare their inputs (the dependency install reads the lockfiles only)
    // run first, on just those files; then the whole source is copied for the rest. A source
    // edit changes only the later steps' keys: the dependency layer is reused.
    let split = plan.steps.iter().take_while(|s| s.inputs.is_some()).count();
    let inputs = if split > 0 {
        declared_inputs(plan, split, o.dir.as_deref())?
    } else {
        Vec::new()
    };
    let src = plan.source_dir.trim_end_matches('/');
    let mut excludes: Vec<String> = plan.source_exclude.clone();
    for f in ["Dockerfile", "Containerfile"] {
        if !excludes.iter().any(|e| e == f) {
            excludes.push(f.to_string());
        }
    }
    let source_copy = format!("COPY{} . {src}/", exclude_flags(&excludes, ""));
    if split == 0 {
        let _ = writeln!(w, "{source_copy}");
    } else if !inputs.is_empty() {
        let _ = writeln!(
            w,
            "# the dependency steps' inputs, before the rest of the source"
        );
        // files in subdirectories (an npm workspace's package.json files) keep their paths
        let parents = if inputs.iter().any(|p| p.contains('/')) {
            "--parents "
        } else {
            ""
        };
        let _ = writeln!(w, "COPY {parents}{} {src}/", inputs.join(" "));
    }
    // The output dirs and the files the planner made.
    if !plan.outputs.is_empty() {
        let _ = writeln!(
            w,
            "RUN --network=none mkdir -p {}",
            plan.outputs
                .iter()
                .map(|o| sh_quote(o))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    for f in &plan.files {
        let mut tag = "OCIBUILD_EOF".to_string();
        while f.content.lines().any(|l| l == tag) {
            tag.push('_');
        }
        let _ = writeln!(w, "COPY <<'{tag}' {}", f.path);
        let _ = write!(w, "{}", f.content);
        if !f.content.ends_with('\n') {
            let _ = writeln!(w);
        }
        let _ = writeln!(w, "{tag}");
    }
    // The steps.
    let mounts: String = plan
        .cache_mounts
        .iter()
        .map(|c| format!(" --mount=type=cache,id={},target={}", c.name, c.target))
        .collect();
    let mut cwd = String::new();
    for (i, s) in plan.steps.iter().enumerate() {
        if split > 0 && i == split {
            let _ = writeln!(w, "{source_copy}");
        }
        if s.cwd != cwd {
            let _ = writeln!(w, "WORKDIR {}", s.cwd);
            cwd = s.cwd.clone();
        }
        let net = if s.network { "" } else { " --network=none" };
        let _ = writeln!(w, "# step {}", s.name);
        if s.argv.iter().any(|a| a.contains('\n')) {
            let mut argv = vec!["env".to_string()];
            argv.extend(s.env.iter().map(|(k, v)| format!("{k}={v}")));
            argv.extend(s.argv.iter().cloned());
            let json = serde_json::to_string(&argv).map_err(|e| EngineError::Invalid {
                what: format!("step {}", s.name),
                detail: e.to_string(),
            })?;
            let _ = writeln!(w, "RUN{net}{mounts} {json}");
        } else {
            let mut words: Vec<String> = s
                .env
                .iter()
                .map(|(k, v)| format!("{k}={}", sh_quote(v)))
                .collect();
            words.extend(s.argv.iter().map(|a| sh_quote(a)));
            let _ = writeln!(w, "RUN{net}{mounts} {}", words.join(" "));
        }
    }
    if split > 0 && split == plan.steps.len() {
        let _ = writeln!(w, "{source_copy}");
    }
    // The writable directories: their contents (what the layers put there) staged in the build
    // stage, copied last with the image user as owner.
    if let Some(wr) = &plan.writable {
        let mut cmds = Vec::new();
        for dir in &wr.dirs {
            let staged = format!("/ocibuild/writable{dir}");
            cmds.push(format!("mkdir -p {}", sh_quote(&staged)));
            if let Some(from) = layer_source(&plan.layers, dir) {
                cmds.push(format!(
                    "if [ -d {f} ]; then cp -a {f}/. {s}/; fi",
                    f = sh_quote(&from),
                    s = sh_quote(&staged)
                ));
            }
        }
        let _ = writeln!(w, "RUN --network=none {}", cmds.join(" && "));
    }

    // The final stage.
    let rt = &plan.runtime;
    let _ = writeln!(
        w,
        "\nFROM {}",
        native_ref(&rt.profile, &rt.variant, &rt.packages, None)
    );
    for l in final_stage(plan, o) {
        if let Some(c) = &l.comment {
            let _ = writeln!(w, "# {c}");
        }
        let _ = writeln!(w, "{}", l.text);
    }
    Ok(d)
}

/// What an instruction of the final stage makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Makes {
    /// Only config.
    Config,
    /// The plan's layer of this index.
    Layer(usize),
    /// The writable directories' layer: one COPY per directory (of this index), where the
    /// zero-config build makes one layer of them all.
    Writable(usize),
}

/// One instruction of the ejected final stage.
#[derive(Clone, Debug)]
pub struct Line {
    pub comment: Option<String>,
    /// The instruction, on one line (its history `created_by`).
    pub text: String,
    pub makes: Makes,
}

/// The final stage's instructions after its FROM: a COPY per layer, the writable layer, then
/// the config.
pub fn final_stage(plan: &Plan, o: &EjectOptions) -> Vec<Line> {
    let mut out = Vec::new();
    let writable: &[String] = plan.writable.as_ref().map_or(&[], |w| &w.dirs);
    for (i, l) in plan.layers.iter().enumerate() {
        // what the layer holds in a writable directory goes to the writable layer instead
        let mut l = l.clone();
        let to = l.to.trim_end_matches('/').to_string();
        for d in writable {
            if let Some(sub) = d.strip_prefix(&format!("{to}/")) {
                l.exclude.push(sub.to_string());
            }
        }
        out.push(Line {
            comment: Some(format!("layer {}", l.name)),
            text: copy_layer(&l),
            makes: Makes::Layer(i),
        });
    }
    if let Some(wr) = &plan.writable {
        // one COPY per directory: its parents stay as they are (root's)
        for (i, d) in wr.dirs.iter().enumerate() {
            let d = d.trim_end_matches('/');
            out.push(Line {
                comment: (i == 0).then(|| "layer writable".to_string()),
                text: format!(
                    "COPY --from=build --chown={}:{} /ocibuild/writable{d}/ {d}/",
                    wr.uid, wr.gid
                ),
                makes: Makes::Writable(i),
            });
        }
    }
    let mut config = |text: String| {
        out.push(Line {
            comment: None,
            text,
            makes: Makes::Config,
        })
    };
    let c = &plan.config;
    if !c.env.is_empty() {
        config(format!(
            "ENV {}",
            c.env
                .iter()
                .map(|kv| match kv.split_once('=') {
                    Some((k, v)) => format!("{k}={}", env_value(v)),
                    None => format!("{kv}=\"\""),
                })
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    config(format!("WORKDIR {}", c.workdir));
    config(format!("USER {}", c.user));
    for p in &c.exposed_ports {
        config(format!("EXPOSE {p}"));
    }
    let mut labels = c.labels.clone();
    labels.extend(o.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    for (k, v) in &labels {
        config(format!("LABEL {}={}", env_value(k), env_value(v)));
    }
    let json = |v: &[String]| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
    if let Some(hc) = &c.healthcheck {
        match hc.split_first() {
            Some((first, rest)) if first == "CMD" => {
                config(format!("HEALTHCHECK CMD {}", json(rest)));
            }
            Some((first, rest)) if first == "CMD-SHELL" => {
                config(format!("HEALTHCHECK CMD {}", rest.join(" ")));
            }
            Some((first, _)) if first == "NONE" => config("HEALTHCHECK NONE".into()),
            _ => {}
        }
    }
    config(format!("ENTRYPOINT {}", json(&c.entrypoint)));
    if !c.cmd.is_empty() {
        config(format!("CMD {}", json(&c.cmd)));
    }
    out
}

/// The config history the Dockerfile executor writes for [`final_stage`]: one entry per
/// instruction, `empty_layer` where it made no layer (`made` says which did).
pub fn final_history(
    plan: &Plan,
    o: &EjectOptions,
    made: &dyn Fn(&Makes) -> bool,
) -> Vec<serde_json::Value> {
    let created = ocibuild_oci::image::rfc3339(o.source_date_epoch);
    final_stage(plan, o)
        .into_iter()
        .map(|l| {
            let mut e = serde_json::json!({
                "created": created,
                "created_by": crate::df::one_line(&l.text),
                "comment": "buildkit.dockerfile.v0",
            });
            if !made(&l.makes) {
                e["empty_layer"] = serde_json::json!(true);
            }
            e
        })
        .collect()
}

/// `ocibuild:PROFILE[:VARIANT][+PKG[/backports][,PKG…]]`.
fn native_ref(
    profile: &str,
    variant: &str,
    packages: &[String],
    backports: Option<&[String]>,
) -> String {
    let mut s = format!("ocibuild:{profile}");
    if !variant.is_empty() && variant != "default" {
        s.push(':');
        s.push_str(variant);
    }
    for (i, p) in packages.iter().enumerate() {
        s.push(if i == 0 { '+' } else { ',' });
        s.push_str(p);
        if backports.is_some_and(|b| b.contains(p)) {
            s.push_str("/backports");
        }
    }
    s
}

/// The build-stage directory that holds what the layers put at the image path `dir`.
fn layer_source(layers: &[LayerSpec], dir: &str) -> Option<String> {
    layers.iter().rev().find_map(|l| {
        let to = l.to.trim_end_matches('/');
        let rest = if dir == to {
            Some("")
        } else {
            dir.strip_prefix(to).and_then(|r| r.strip_prefix('/'))
        }?;
        let from = l.from.trim_end_matches('/');
        Some(if rest.is_empty() {
            from.to_string()
        } else {
            format!("{from}/{rest}")
        })
    })
}

/// `--exclude=` flags. BuildKit matches them below each directory copied, so a layer's patterns
/// (relative to its directory) are written as they are (`base` empty); with `--parents` and a
/// `/./` pivot ocibuild matches them from the root, so they are prefixed with the source root
/// (`base`, no leading slash). Patterns that start with `**/` match anywhere already.
fn exclude_flags(patterns: &[String], base: &str) -> String {
    patterns
        .iter()
        .map(|p| {
            let p = p.trim_start_matches("./").trim_start_matches('/');
            if base.is_empty() || p.starts_with("**/") {
                format!(" --exclude={p}")
            } else {
                format!(" --exclude={base}/{p}")
            }
        })
        .collect()
}

fn has_meta(s: &str) -> bool {
    s.contains(['*', '?', '[', '{', '\\'])
}

/// The COPY that makes one layer of the plan: owned by root, as the zero-config layers are
/// (a package manager running as root keeps the owners its tarballs name, e.g. 501:20).
fn copy_layer(l: &LayerSpec) -> String {
    let from = l.from.trim_end_matches('/');
    let to = l.to.trim_end_matches('/');
    let base = from.trim_start_matches('/');
    let below = exclude_flags(&l.exclude, "");
    if l.include.is_empty() {
        let excludes = below;
        return format!("COPY --from=build --chown=0:0{excludes} {from}/ {to}/");
    }
    let mut sources = Vec::new();
    let mut parents = false;
    for inc in &l.include {
        let inc = inc.trim_start_matches("./").trim_start_matches('/');
        if inc.contains('/') {
            // a pattern below the layer's directory keeps its path from there (BuildKit's
            // `--parents` with a `/./` pivot)
            parents = true;
            sources.push(format!("{from}/./{inc}"));
        } else {
            sources.push(format!("{from}/{inc}"));
        }
    }
    let excludes = if parents {
        exclude_flags(&l.exclude, base)
    } else {
        below
    };
    let single_literal = l.include.len() == 1 && !parents && !has_meta(&l.include[0]);
    if single_literal {
        let name = l.include[0].trim_start_matches("./");
        return format!("COPY --from=build --chown=0:0{excludes} {from}/{name} {to}/{name}");
    }
    format!(
        "COPY --from=build --chown=0:0{}{excludes} {} {to}/",
        if parents { " --parents" } else { "" },
        sources.join(" ")
    )
}

/// A word for `sh`: as it is when it is plain, else single-quoted.
fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./:=@%+,-".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// An ENV/LABEL value: double-quoted when it holds anything but plain characters.
fn env_value(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./:@%+,-".contains(c))
    {
        s.to_string()
    } else {
        let mut q = String::from("\"");
        for c in s.chars() {
            if matches!(c, '"' | '\\' | '$') {
                q.push('\\');
            }
            q.push(c);
        }
        q.push('"');
        q
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(sh_quote("-s -w -buildid="), "'-s -w -buildid='");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        assert_eq!(sh_quote("/out/gohttp"), "/out/gohttp");
        assert_eq!(env_value("a b$c"), "\"a b\\$c\"");
    }

    #[test]
    fn layers_become_copies() {
        let l = |from: &str, to: &str, inc: &[&str], exc: &[&str]| LayerSpec {
            name: "x".into(),
            from: from.into(),
            to: to.into(),
            include: inc.iter().map(|s| s.to_string()).collect(),
            exclude: exc.iter().map(|s| s.to_string()).collect(),
            key_files: vec![],
        };
        assert_eq!(
            copy_layer(&l("/out", "/app", &["gohttp"], &[])),
            "COPY --from=build --chown=0:0 /out/gohttp /app/gohttp"
        );
        assert_eq!(
            copy_layer(&l(
                "/src/node_modules",
                "/app/node_modules",
                &[],
                &["**/*.map", ".package-lock.json"]
            )),
            "COPY --from=build --chown=0:0 --exclude=**/*.map --exclude=.package-lock.json /src/node_modules/ /app/node_modules/"
        );
        assert_eq!(
            copy_layer(&l("/out/libs", "/app/libs", &["*-SNAPSHOT.jar"], &[])),
            "COPY --from=build --chown=0:0 /out/libs/*-SNAPSHOT.jar /app/libs/"
        );
        assert_eq!(
            copy_layer(&l(
                "/src/target/classes",
                "/app/classes",
                &["**/*.class"],
                &[]
            )),
            "COPY --from=build --chown=0:0 --parents /src/target/classes/./**/*.class /app/classes/"
        );
    }

    #[test]
    fn ejects_a_go_app() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("go.mod"), "module x\n\ngo 1.22\n").unwrap();
        std::fs::write(t.path().join("main.go"), "package main\nfunc main() {}\n").unwrap();
        let plan =
            ocibuild_builders::plan(t.path(), &ocibuild_builders::Options::default()).unwrap();
        let d = dockerfile(&plan, &EjectOptions::default()).unwrap();
        assert!(
            d.contains("FROM ocibuild:build-base+golang-go AS build\n"),
            "{d}"
        );
        assert!(d.contains("\nFROM ocibuild:static:nonroot\n"), "{d}");
        assert!(
            d.contains("--mount=type=cache,id=go-build,target=/root/.cache/go-build"),
            "{d}"
        );
        assert!(d.contains("'-s -w -buildid='"), "{d}");
        assert!(d.contains("USER 65532:65532\n"), "{d}");
        // it parses
        ocibuild_dockerfile::parse(&d, "Dockerfile").unwrap();
    }

    #[test]
    fn the_build_stage_s_from_is_chosen_on_the_plan_and_nothing_else_changes() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("go.mod"), "module x\n\ngo 1.22\n").unwrap();
        std::fs::write(t.path().join("main.go"), "package main\nfunc main() {}\n").unwrap();
        let plan =
            ocibuild_builders::plan(t.path(), &ocibuild_builders::Options::default()).unwrap();
        let with = |build_platform: bool, host: bool| {
            let o = EjectOptions {
                build_from: BuildFrom {
                    build_platform,
                    host,
                },
                ..Default::default()
            };
            dockerfile(&plan, &o).unwrap()
        };
        let plain = with(false, false);
        let from = "FROM ocibuild:build-base+golang-go AS build\n";
        assert_eq!(plain.matches(" AS build\n").count(), 1, "{plain}");
        let cases = [
            (
                with(true, false),
                "FROM --platform=$BUILDPLATFORM ocibuild:build-base+golang-go AS build\n",
            ),
            (
                with(false, true),
                &*format!("FROM {} AS build\n", crate::df::native::HOST),
            ),
            (
                with(true, true),
                &*format!(
                    "FROM --platform=$BUILDPLATFORM {} AS build\n",
                    crate::df::native::HOST
                ),
            ),
        ];
        for (d, line) in cases {
            // the one FROM line differs; the runtime stage's FROM keeps no --platform
            assert_eq!(d.replacen(line, from, 1), plain, "{d}");
            assert!(d.contains("\nFROM ocibuild:static:nonroot\n"), "{d}");
            ocibuild_dockerfile::parse(&d, "Dockerfile").unwrap();
        }
        // a plan on the host's programs is not ejected
        let mut host_plan = plan.clone();
        host_plan.toolchain.profile = "host".into();
        assert!(dockerfile(&host_plan, &EjectOptions::default()).is_err());
    }
}
