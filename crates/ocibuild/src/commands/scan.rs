//! `ocibuild scan` and `ocibuild db`: the offline vulnerability gate (ocibuild-scan) on the
//! command line. Exit codes: 0 clean, 3 (or --exit-code) findings at or above the threshold,
//! 1 the scan itself failed — never the same code for both.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use ocibuild_scan::{Allowlist, Database, Options, Severity, Vex};

use crate::cli::{DbCommand, Global, ScanArgs, ScanFormat};
use crate::output::usage;

/// A database older than this gives a warning.
const STALE_SECS: i64 = 7 * 86_400;

/// `ROOT/vulndb`: the store's imported databases, each named by its source's digest.
fn vulndb_dir(g: &Global) -> Result<PathBuf> {
    let store = super::open_store(g)?;
    Ok(store.root().join("vulndb"))
}

/// The database the last `db import` into the store made.
fn latest(dir: &Path) -> Result<PathBuf> {
    let pointer = dir.join("latest");
    let name =
        std::fs::read_to_string(&pointer).map_err(|_| ocibuild_scan::ScanError::NoDatabase {
            path: dir.to_path_buf(),
        })?;
    Ok(dir.join(name.trim()))
}

fn open_db(g: &Global, db: Option<&Path>) -> Result<Database> {
    let dir = vulndb_dir(g)?;
    let db = match db {
        Some(p) => Database::open_or_import(p, &dir)?,
        None => Database::open(&latest(&dir)?)?,
    };
    Ok(db)
}

pub fn db(g: &Global, c: DbCommand) -> Result<ExitCode> {
    match c {
        DbCommand::Import(a) => {
            let started = std::time::Instant::now();
            let info = match &a.db {
                Some(dest) => ocibuild_scan::db::import(&a.path, dest)?,
                None => {
                    let dir = vulndb_dir(g)?;
                    let db = Database::open_or_import(&a.path, &dir)?;
                    let name = db
                        .dir()
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    if db.dir().parent() == Some(dir.as_path()) {
                        super::write_file_atomically(&dir.join("latest"), name.as_bytes())?;
                    }
                    db.info().clone()
                }
            };
            let path = info.path.clone().unwrap_or_default();
            println!(
                "imported {} records ({} withdrawn left out) into {} in {:.1}s",
                info.records,
                info.withdrawn,
                path.display(),
                started.elapsed().as_secs_f64()
            );
            print_counts(&info);
            Ok(ExitCode::SUCCESS)
        }
        DbCommand::Info(a) => {
            let db = open_db(g, a.db.as_deref())?;
            let info = db.info();
            let now = ocibuild_scan::time::now();
            if a.json {
                let mut v = serde_json::to_value(info)?;
                v["age_seconds"] = serde_json::json!(info.age_secs(now));
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("{}", db.dir().display());
                println!("  source     {}", info.source_digest);
                println!("  imported   {}", info.imported);
                println!(
                    "  records    {} ({} withdrawn left out)",
                    info.records, info.withdrawn
                );
                print_counts(info);
                match (&info.newest_modified, info.age_secs(now)) {
                    (Some(m), Some(age)) => {
                        println!("  newest     {m} ({})", human_age(age));
                    }
                    _ => println!("  newest     (no record has a modified date)"),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_counts(info: &ocibuild_scan::DbInfo) {
    for (e, n) in &info.ecosystems {
        println!("  {e:<10} {n}");
    }
}

fn human_age(secs: i64) -> String {
    let days = secs / 86_400;
    if days >= 1 {
        format!("{days} day{} old", if days == 1 { "" } else { "s" })
    } else {
        format!("{} hours old", secs / 3600)
    }
}

fn severities(a: &ScanArgs) -> Result<Vec<Severity>> {
    if let Some(t) = &a.severity_threshold {
        let s = Severity::parse(t)
            .filter(|s| *s != Severity::Unknown && *s != Severity::None)
            .ok_or_else(|| {
                usage(format!(
                    "--severity-threshold {t}: expected low, medium, high or critical"
                ))
            })?;
        return Ok(s.at_or_above());
    }
    let mut out = Vec::new();
    for w in &a.severity {
        let w = w.trim();
        if w.is_empty() {
            continue;
        }
        out.push(Severity::parse(w).ok_or_else(|| {
            usage(format!(
                "--severity {w}: expected a comma-separated list of UNKNOWN, LOW, MEDIUM, HIGH, CRITICAL"
            ))
        })?);
    }
    Ok(out)
}

pub fn run(g: &Global, a: ScanArgs) -> Result<ExitCode> {
    severities(&a)?; // a bad --severity is a usage error before any work
    let max_age = a
        .db_max_age
        .as_deref()
        .map(ocibuild_oci::store::parse_duration)
        .transpose()
        .map_err(|e| usage(format!("--db-max-age: {e}")))?;
    let packages = match (&a.sbom, &a.image) {
        (Some(path), _) => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("reading the SBOM {}", path.display()))?;
            let doc: serde_json::Value = serde_json::from_slice(&bytes)
                .with_context(|| format!("the SBOM {} is not JSON", path.display()))?;
            ocibuild_scan::from_cyclonedx(&doc)
                .with_context(|| format!("reading packages from {}", path.display()))?
        }
        (None, Some(image)) => {
            // The same catalogers as `ocibuild sbom`, through the same CycloneDX seam a --sbom
            // file goes through, so an image and its SBOM scan alike.
            let loc = ocibuild_oci::reference::Location::parse(image)?;
            let reg = super::registry::registry(g)?;
            let src = super::registry::open_any(&loc, &reg)?;
            let platform = a
                .platform
                .as_deref()
                .map(ocibuild_oci::image::Platform::parse)
                .transpose()?;
            let sbom = ocibuild_sbom::catalog(src.as_ref(), platform.as_ref(), image)
                .with_context(|| format!("cataloguing the packages of {}", src.describe()))?;
            let doc = ocibuild_sbom::cyclonedx::document(&sbom);
            ocibuild_scan::from_cyclonedx(&doc)
                .with_context(|| format!("reading the packages catalogued in {image}"))?
        }
        (None, None) => return Err(usage("give an IMAGE or --sbom FILE to scan")),
    };
    Ok(if scan_packages(g, &a, &packages, max_age, false)? {
        ExitCode::from(a.exit_code)
    } else {
        ExitCode::SUCCESS
    })
}

/// Scan `packages` as `a` says; the report goes to `--output` or standard output (standard error
/// with `report_to_stderr`: `build --scan`, whose standard output is the digest). Returns whether
/// findings count (at or above the threshold, not suppressed).
pub(super) fn scan_packages(
    g: &Global,
    a: &ScanArgs,
    packages: &[ocibuild_scan::Package],
    max_age: Option<std::time::Duration>,
    report_to_stderr: bool,
) -> Result<bool> {
    let sevs = severities(a)?;
    let db = open_db(g, a.db.as_deref())?;
    let now = ocibuild_scan::time::now();
    match db.info().age_secs(now) {
        Some(age) => {
            if let Some(max) = max_age
                && age > max.as_secs() as i64
            {
                bail!(
                    "the vulnerability database at {} is {} (its newest record is {}), older than --db-max-age {}: \
                     refresh it (download osv.dev's all.zip archives again and run `ocibuild db import`)",
                    db.dir().display(),
                    human_age(age),
                    db.info().newest_modified.as_deref().unwrap_or("?"),
                    a.db_max_age.as_deref().unwrap_or("")
                );
            }
            if age > STALE_SECS {
                eprintln!(
                    "warning: the vulnerability database at {} is {}: refresh it (see README: the OSV database)",
                    db.dir().display(),
                    human_age(age)
                );
            }
        }
        None if max_age.is_some() => bail!(
            "the vulnerability database at {} has no modified dates, so --db-max-age cannot be checked",
            db.dir().display()
        ),
        None => {}
    }
    let allowlist = a.allowlist.as_deref().map(Allowlist::load).transpose()?;
    let vex = a
        .vex
        .iter()
        .map(|p| Vex::load(p))
        .collect::<Result<Vec<_>, _>>()?;
    let opts = Options {
        severities: sevs,
        ignore_unfixed: a.ignore_unfixed,
        ignore_unknown: a.ignore_unknown,
        allowlist,
        vex,
        today: None,
    };
    let report = ocibuild_scan::scan(packages, &db, &opts)?;
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    let text = match a.format {
        ScanFormat::Table => report.to_table(),
        ScanFormat::Json => {
            let mut s = serde_json::to_string_pretty(&report.to_json(now))?;
            s.push('\n');
            s
        }
        ScanFormat::Sarif => {
            let mut s = serde_json::to_string_pretty(&report.to_sarif(env!("CARGO_PKG_VERSION")))?;
            s.push('\n');
            s
        }
    };
    match &a.output {
        Some(p) => super::write_file_atomically(p, text.as_bytes())?,
        None if report_to_stderr => eprint!("{text}"),
        None => print!("{text}"),
    }
    if report_to_stderr && a.output.is_some() {
        eprint!("{}", report.to_table());
    }
    if report.findings.is_empty() {
        Ok(false)
    } else {
        if a.output.is_some() || a.format != ScanFormat::Table {
            eprintln!(
                "{} vulnerabilit{} at or above the threshold ({} suppressed)",
                report.findings.len(),
                if report.findings.len() == 1 {
                    "y"
                } else {
                    "ies"
                },
                report.suppressed.len()
            );
        }
        Ok(true)
    }
}
