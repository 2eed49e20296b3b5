//! `ocibuild check` and `ocibuild size`: one streaming pass over the image's layers each.

use std::process::ExitCode;

use anyhow::{Context, Result};
use ocibuild_oci::image::{Platform, load_image};
use ocibuild_oci::reference::Location;
use ocibuild_policy::cst::Suite;
use ocibuild_policy::{Budget, Policy, ScanOptions, Scanned};

use crate::cli::{CheckArgs, Global, ReportFormat, SizeArgs};

/// Open and scan an image: (its description, the index).
fn scan_image(
    g: &Global,
    image: &str,
    platform: Option<&str>,
    opts: &ScanOptions,
) -> Result<(String, Scanned)> {
    let loc = Location::parse(image)?;
    let reg = super::registry::registry(g)?;
    let src = super::registry::open_any(&loc, &reg)?;
    let platform = platform.map(Platform::parse).transpose()?;
    let img = load_image(src.as_ref(), platform.as_ref())
        .with_context(|| format!("reading the image at {}", src.describe()))?;
    let scanned = ocibuild_policy::scan(src.as_ref(), &img, opts)
        .with_context(|| format!("reading the layers of {}", src.describe()))?;
    Ok((src.describe(), scanned))
}

pub fn check(g: &Global, a: CheckArgs) -> Result<ExitCode> {
    let policy = match &a.policy {
        Some(p) => Policy::load(p)?,
        None => Policy::default(),
    };
    let suite_file = a.config.clone().or_else(|| policy.structure_test.clone());
    let suite = suite_file.as_deref().map(Suite::load).transpose()?;
    let opts = ScanOptions {
        keep: suite.as_ref().map(Suite::content_paths).unwrap_or_default(),
        base_layers: policy.base_layers,
    };
    let (name, scanned) = scan_image(g, &a.image, a.platform.as_deref(), &opts)?;
    let report = ocibuild_policy::check(&scanned, &name, &policy, suite.as_ref()).map_err(|e| {
        anyhow::anyhow!(
            "{e} (in {})",
            a.policy
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        )
    })?;
    match a.format {
        ReportFormat::Json => println!(
            "{}",
            serde_json::json!({
                "image": report.image,
                "passed": !report.failed(),
                "checks": report.checks,
                "findings": report.findings,
            })
        ),
        ReportFormat::Table => print!("{}", report.table()),
        ReportFormat::Markdown => {
            println!("## Image checks: `{}`\n", report.image);
            println!("| result | check | what |\n|---|---|---|");
            for f in &report.findings {
                println!(
                    "| {} | {} | {} |",
                    match f.severity {
                        ocibuild_policy::Severity::Error => "❌ fail",
                        ocibuild_policy::Severity::Warning => "⚠️ warn",
                    },
                    f.check,
                    f.message.replace('|', "\\|")
                );
            }
            println!(
                "\n{} checks run: {}",
                report.checks.len(),
                if report.failed() { "FAILED" } else { "passed" }
            );
        }
    }
    Ok(if report.failed() {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

pub fn size(g: &Global, a: SizeArgs) -> Result<ExitCode> {
    let budget = a.budget.as_deref().map(Budget::load).transpose()?;
    let opts = ScanOptions::default();
    let (name, scanned) = scan_image(g, &a.image, a.platform.as_deref(), &opts)?;
    let other = match &a.compare {
        Some(c) => Some(scan_image(g, c, a.platform.as_deref(), &opts)?),
        None => None,
    };
    let report = ocibuild_policy::size::report(
        &scanned,
        &name,
        other.as_ref().map(|(n, s)| (s, n.as_str())),
        budget.as_ref(),
        a.top,
    );
    match a.format {
        ReportFormat::Json => println!("{}", serde_json::to_string(&report)?),
        ReportFormat::Table => print!("{}", report.render(false)),
        ReportFormat::Markdown => print!("{}", report.render(true)),
    }
    if report.violations.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        for v in &report.violations {
            eprintln!("error: size budget exceeded: {v}");
        }
        Ok(ExitCode::from(3))
    }
}

/// A build's gate failed (`--check`, `--policy`, `--scan`): exit code 3.
#[derive(Debug)]
pub struct GateFailed(pub String);

impl std::fmt::Display for GateFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::error::Error for GateFailed {}
