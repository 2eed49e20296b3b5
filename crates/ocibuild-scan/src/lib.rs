//! The offline vulnerability gate: an OSV database indexed by (ecosystem, package) in the store,
//! each ecosystem's own version rules (dpkg, semver, PEP 440, Maven), CVSS v3/v4 base scores,
//! allowlists and OpenVEX, and reports (table, JSON, SARIF).
//!
//! The input is a list of [`Package`]s — read from a CycloneDX SBOM ([`from_cyclonedx`]) or
//! handed over by the SBOM catalogers — and the entry point is [`scan`].

pub mod cvss;
pub mod db;
mod error;
pub mod matcher;
pub mod osv;
pub mod package;
pub mod policy;
pub mod report;
pub mod severity;
pub mod time;
pub mod version;

pub use db::{Database, DbInfo};
pub use error::ScanError;
pub use package::{Ecosystem, Package, from_cyclonedx};
pub use policy::{Allowlist, Vex};
pub use report::{Action, Finding, Report, Suppressed};
pub use severity::Severity;

/// What to report and what to suppress.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Report only these severities (UNKNOWN always counts unless `ignore_unknown`); empty: all.
    pub severities: Vec<Severity>,
    /// Leave out findings that have no fixed version.
    pub ignore_unfixed: bool,
    /// Leave out findings whose severity is UNKNOWN.
    pub ignore_unknown: bool,
    pub allowlist: Option<Allowlist>,
    pub vex: Vec<Vex>,
    /// Today, as days since 1970-01-01 (allowlist expiry); `None`: the system clock.
    pub today: Option<i64>,
}

/// Scans `packages` against `db`: every record of every package present, matched with its
/// ecosystem's rules, scored, filtered by `opts` and suppressed by the allowlist and VEX.
pub fn scan(packages: &[Package], db: &Database, opts: &Options) -> Result<Report, ScanError> {
    let today = opts.today.unwrap_or_else(time::today);
    let mut findings = Vec::new();
    let mut suppressed = Vec::new();
    let mut warnings = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for pkg in packages {
        for record in db.records_for(pkg)? {
            let Some(m) = matcher::affects(&record, pkg) else {
                continue;
            };
            if !seen.insert((
                record.id.clone(),
                pkg.ecosystem,
                pkg.name.clone(),
                pkg.version.clone(),
                pkg.path.clone(),
            )) {
                continue;
            }
            let (severity, score) = severity::of_record(&record, m.affected_index);
            let finding = Finding::new(&record, pkg, m.fixed, severity, score);
            if opts.ignore_unfixed && finding.fixed.is_none() {
                continue;
            }
            if severity == Severity::Unknown {
                if opts.ignore_unknown {
                    continue;
                }
            } else if !opts.severities.is_empty() && !opts.severities.contains(&severity) {
                continue;
            }
            if let Some(s) = policy::suppression(&finding, pkg, opts, today, &mut warnings) {
                suppressed.push(Suppressed { finding, by: s });
            } else {
                findings.push(finding);
            }
        }
    }
    warnings.sort();
    warnings.dedup();
    Ok(Report::new(
        findings,
        suppressed,
        db.info().clone(),
        warnings,
    ))
}
