//! `build --summary FILE`: a markdown summary of the build, appended to FILE (a Jenkins or
//! GitHub job summary: `--summary "$GITHUB_STEP_SUMMARY"`). Rendered from the build record
//! (digest, layers, steps) and the build's own events (checks, scan, SBOMs, outputs, the naive
//! image's size); a failed build gets one too, with the error and the checks that failed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use ocibuild_record::{BuildRecord, LayerOrigin, StepStatus};
use serde_json::Value;

use crate::cli::BuildArgs;
use crate::output::{human_size, kept_events};

/// Start keeping the events the summary is made from (only with `--summary`).
pub(super) fn start(a: &BuildArgs) {
    if a.summary.is_some() {
        crate::output::keep_events();
    }
}

/// The build succeeded: append its summary.
pub(super) fn built(
    a: &BuildArgs,
    record: &BuildRecord,
    extra: &BTreeMap<String, Value>,
) -> Result<()> {
    let Some(f) = &a.summary else {
        return Ok(());
    };
    let md = render(a, Some(record), extra, &kept_events(), None);
    append(f, &md).with_context(|| format!("writing --summary {}", f.display()))
}

/// The build failed: append what is known (the error, the checks and scan that ran). A summary
/// that cannot be written is said on stderr; the build's own error is the one that counts.
pub(super) fn failed(a: &BuildArgs, e: &anyhow::Error) {
    let Some(f) = &a.summary else {
        return;
    };
    let error = e
        .chain()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(": ");
    let md = render(a, None, &BTreeMap::new(), &kept_events(), Some(&error));
    if let Err(w) = append(f, &md) {
        eprintln!("warning: could not write --summary {}: {w}", f.display());
    }
}

/// FILE's old content and `md`, through a temporary file renamed over it.
fn append(f: &Path, md: &str) -> Result<()> {
    let mut body = match std::fs::read(f) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", f.display())),
    };
    if !body.is_empty() && !body.ends_with(b"\n\n") {
        body.extend_from_slice(if body.ends_with(b"\n") {
            b"\n"
        } else {
            b"\n\n"
        });
    }
    body.extend_from_slice(md.as_bytes());
    super::write_file_atomically(f, &body)
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn short(d: &str) -> String {
    match d.strip_prefix("sha256:") {
        Some(h) if h.len() > 12 => format!("sha256:{}", &h[..12]),
        _ => d.to_string(),
    }
}

fn events<'a>(all: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> {
    all.iter().filter(move |e| e["event"] == kind)
}

/// The markdown: a headline table, layers, steps, then check findings.
pub(crate) fn render(
    a: &BuildArgs,
    record: Option<&BuildRecord>,
    extra: &BTreeMap<String, Value>,
    ev: &[Value],
    error: Option<&str>,
) -> String {
    let mut md = String::new();
    let name = a
        .tags
        .first()
        .cloned()
        .unwrap_or_else(|| a.context.display().to_string());
    let _ = writeln!(
        md,
        "## ocibuild build `{}`: {}\n",
        cell(&name),
        if error.is_some() {
            "❌ failed"
        } else {
            "✅ built"
        }
    );
    let mut rows: Vec<(String, String)> = Vec::new();
    if let Some(e) = error {
        rows.push(("error".into(), cell(e)));
    }
    if let Some(r) = record {
        if let Some(d) = r.digest() {
            rows.push(("image".into(), format!("`{d}`")));
        }
        for img in &r.images {
            rows.push((
                format!("size ({})", img.platform),
                format!(
                    "{} compressed, {} layers",
                    human_size(img.compressed_size()),
                    img.layers.len()
                ),
            ));
        }
        let (ran, cached) = r.step_counts();
        rows.push(("steps".into(), format!("{ran} ran, {cached} cached")));
    }
    if let Some(naive) = extra.get("ocibuild.naive_size").and_then(Value::as_u64)
        && let Some(e) = events(ev, "size").last()
    {
        rows.push((
            "naive single-stage image".into(),
            format!(
                "{}: this image is {:.1}% smaller",
                human_size(naive),
                e["reduction_percent"].as_f64().unwrap_or(0.0)
            ),
        ));
    }
    // a multi-platform build (it says when each platform starts): rows name their platform
    let multi = events(ev, "platform").next().is_some();
    let label = |what: &str, e: &Value| -> String {
        match e["platform"].as_str() {
            Some(p) if multi => format!("{what} ({p})"),
            _ => what.to_string(),
        }
    };
    let mut findings: Vec<(Option<&str>, &Value)> = Vec::new();
    for e in events(ev, "check") {
        let f = e["findings"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let errors = f.iter().filter(|x| x["severity"] == "error").count();
        let warnings = f.len() - errors;
        rows.push((
            label("checks", e),
            if e["passed"] == true {
                format!("passed ({warnings} warnings)")
            } else {
                format!("**failed**: {errors} errors, {warnings} warnings")
            },
        ));
        let platform = e["platform"].as_str().filter(|_| multi);
        findings.extend(f.iter().map(|x| (platform, x)));
    }
    for e in events(ev, "scan") {
        rows.push((
            label("vulnerability scan", e),
            format!(
                "{} packages: {}",
                e["packages"],
                if e["passed"] == true {
                    "nothing at or above the threshold"
                } else {
                    "**vulnerabilities at or above the threshold**"
                }
            ),
        ));
    }
    for e in events(ev, "sbom") {
        rows.push((
            label("SBOM", e),
            format!(
                "`{}` ({})",
                cell(e["path"].as_str().unwrap_or_default()),
                cell(e["artifactType"].as_str().unwrap_or_default())
            ),
        ));
    }
    for e in events(ev, "output") {
        rows.push((
            "output".into(),
            format!("`{}`", cell(e["location"].as_str().unwrap_or_default())),
        ));
    }
    md.push_str("| | |\n|---|---|\n");
    for (k, v) in &rows {
        let _ = writeln!(md, "| {k} | {v} |");
    }

    if let Some(r) = record {
        for img in &r.images {
            let _ = writeln!(
                md,
                "\n### Layers ({})\n\n| # | compressed | from | digest |\n|---:|---:|---|---|",
                img.platform
            );
            for (i, l) in img.layers.iter().enumerate() {
                let from = match &l.origin {
                    LayerOrigin::Base { base, name } => {
                        let b = img.bases.get(*base).map(|b| b.name.as_str()).unwrap_or("?");
                        match name {
                            Some(n) => format!("base {b}: {n}"),
                            None => format!("base {b}"),
                        }
                    }
                    LayerOrigin::Step { step } => format!("step {step}"),
                    LayerOrigin::App { name } => format!("app: {name}"),
                };
                let _ = writeln!(
                    md,
                    "| {i} | {} | {} | `{}` |",
                    human_size(l.descriptor.size),
                    cell(&from),
                    short(&l.descriptor.digest.to_string())
                );
            }
        }
        if !r.steps.is_empty() {
            md.push_str("\n### Steps\n\n| step | result |\n|---|---|\n");
            for s in &r.steps {
                let result = match &s.status {
                    StepStatus::Ran { seconds } => format!("ran in {seconds:.1} s"),
                    StepStatus::Cached { from } => format!("cached ({from})"),
                };
                let _ = writeln!(md, "| {} | {result} |", cell(&s.name));
            }
        }
    }
    if !findings.is_empty() {
        md.push_str("\n### Check findings\n\n| result | check | what |\n|---|---|---|\n");
        for (platform, f) in findings {
            let check = cell(f["check"].as_str().unwrap_or_default());
            let _ = writeln!(
                md,
                "| {} | {} | {} |",
                if f["severity"] == "error" {
                    "❌ fail"
                } else {
                    "⚠️ warn"
                },
                match platform {
                    Some(p) => format!("{check} ({p})"),
                    None => check,
                },
                cell(f["message"].as_str().unwrap_or_default())
            );
        }
    }
    md
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use clap::Parser as _;
    use serde_json::json;

    fn args() -> BuildArgs {
        match crate::cli::Cli::try_parse_from(["ocibuild", "build", "app"])
            .unwrap()
            .command
        {
            crate::cli::Command::Build(a) => *a,
            _ => panic!("not a build"),
        }
    }

    #[test]
    fn a_multi_platform_build_labels_its_checks_scans_and_sboms_with_their_platform() {
        let finding = json!({"severity": "error", "check": "no-root", "message": "runs as root"});
        let ev = vec![
            json!({"event": "platform", "platform": "linux/amd64"}),
            json!({"event": "platform", "platform": "linux/arm64"}),
            json!({"event": "check", "passed": true, "findings": [], "platform": "linux/amd64", "digest": "sha256:aa"}),
            json!({"event": "check", "passed": false, "findings": [finding], "platform": "linux/arm64", "digest": "sha256:bb"}),
            json!({"event": "scan", "packages": 3, "passed": true, "platform": "linux/arm64"}),
            json!({"event": "sbom", "path": "s/linux_arm64/sbom.cdx.json", "artifactType": "application/vnd.cyclonedx+json", "platform": "linux/arm64"}),
        ];
        let md = render(&args(), None, &BTreeMap::new(), &ev, Some("failed"));
        assert!(
            md.contains("| checks (linux/amd64) | passed (0 warnings) |"),
            "{md}"
        );
        assert!(
            md.contains("| checks (linux/arm64) | **failed**: 1 errors, 0 warnings |"),
            "{md}"
        );
        assert!(md.contains("| vulnerability scan (linux/arm64) |"), "{md}");
        assert!(md.contains("| SBOM (linux/arm64) |"), "{md}");
        assert!(
            md.contains("| ❌ fail | no-root (linux/arm64) | runs as root |"),
            "{md}"
        );

        // one platform: the rows as before
        let one = vec![
            json!({"event": "check", "passed": true, "findings": [], "platform": "linux/amd64", "digest": "sha256:aa"}),
        ];
        let md = render(&args(), None, &BTreeMap::new(), &one, None);
        assert!(md.contains("| checks | passed (0 warnings) |"), "{md}");
    }
}
