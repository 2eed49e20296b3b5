//! Findings and how they are written: a table for people, JSON (docs/scan-report.md) and
//! SARIF 2.1.0 for code-scanning dashboards.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use crate::osv::Record;
use crate::{DbInfo, Ecosystem, Package, Severity};

/// What gets the fixed version into the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// A Debian package with a fix in the release (its security suite): rebuild with `--refresh`
    /// so the base resolves the fixed version.
    RebuildRefresh,
    /// An application dependency: bump its lockfile entry (npm, PyPI, Go module, Maven).
    BumpLockfile,
    /// No fixed version is known yet: wait, or allowlist/VEX it with a reason.
    NoFix,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::RebuildRefresh => "rebuild-refresh",
            Action::BumpLockfile => "bump-lockfile",
            Action::NoFix => "no-fix",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Action::RebuildRefresh => {
                "rebuild with --refresh: the fixed Debian package is in the release's security suite"
            }
            Action::BumpLockfile => "bump the dependency's lockfile entry to the fixed version",
            Action::NoFix => {
                "no fixed version yet: track the advisory, or suppress it with an allowlist entry or a VEX statement"
            }
        }
    }
}

/// One advisory affecting one installed package.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub id: String,
    pub aliases: Vec<String>,
    pub ecosystem: Ecosystem,
    pub package: String,
    /// The Debian source package the advisory names, when it differs from the package.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_package: Option<String>,
    pub installed: String,
    pub fixed: Option<String>,
    pub severity: Severity,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    pub layer: Option<String>,
    pub path: Option<String>,
    pub action: Action,
    pub purl: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

impl Finding {
    pub fn new(
        record: &Record,
        pkg: &Package,
        fixed: Option<String>,
        severity: Severity,
        score: Option<f64>,
    ) -> Finding {
        let action = if fixed.is_some() {
            pkg.ecosystem.remediation()
        } else {
            Action::NoFix
        };
        Finding {
            id: record.id.clone(),
            aliases: record.aliases.clone(),
            ecosystem: pkg.ecosystem,
            package: pkg.name.clone(),
            source_package: pkg.source.clone().filter(|s| *s != pkg.name),
            installed: pkg.version.clone(),
            fixed,
            severity,
            score,
            layer: pkg.layer.clone(),
            path: pkg.path.clone(),
            action,
            purl: pkg.purl.clone(),
            summary: record.summary.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Suppressed {
    #[serde(flatten)]
    pub finding: Finding,
    /// What suppressed it: `allowlist: REASON (until DATE)` or `vex: not_affected (…)`.
    pub by: String,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub suppressed: Vec<Suppressed>,
    pub db: DbInfo,
    pub warnings: Vec<String>,
}

impl Report {
    pub fn new(
        mut findings: Vec<Finding>,
        suppressed: Vec<Suppressed>,
        db: DbInfo,
        warnings: Vec<String>,
    ) -> Report {
        // most severe first (UNKNOWN with the critical ones: it may be either), then by package
        let rank = |s: Severity| match s {
            Severity::Critical | Severity::Unknown => 0,
            Severity::High => 1,
            Severity::Medium => 2,
            Severity::Low => 3,
            Severity::None => 4,
        };
        findings.sort_by(|a, b| {
            rank(a.severity)
                .cmp(&rank(b.severity))
                .then_with(|| a.package.cmp(&b.package))
                .then_with(|| a.id.cmp(&b.id))
        });
        Report {
            findings,
            suppressed,
            db,
            warnings,
        }
    }

    /// The JSON report (schema: docs/scan-report.md).
    pub fn to_json(&self, now: i64) -> Value {
        let mut by_action: BTreeMap<Action, Vec<Value>> = BTreeMap::new();
        for f in &self.findings {
            by_action.entry(f.action).or_default().push(json!({
                "id": f.id,
                "package": f.package,
                "installed": f.installed,
                "fixed": f.fixed,
            }));
        }
        let remediation: Vec<Value> = by_action
            .into_iter()
            .map(|(a, fs)| json!({"action": a.as_str(), "description": a.describe(), "findings": fs}))
            .collect();
        let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
        for f in &self.findings {
            *counts.entry(f.severity.as_str()).or_default() += 1;
        }
        json!({
            "findings": self.findings,
            "suppressed": self.suppressed,
            "remediation": remediation,
            "summary": {"total": self.findings.len(), "by_severity": counts, "suppressed": self.suppressed.len()},
            "warnings": self.warnings,
            "db": {
                "path": self.db.path,
                "source_digest": self.db.source_digest,
                "records": self.db.records,
                "ecosystems": self.db.ecosystems,
                "newest_modified": self.db.newest_modified,
                "age_seconds": self.db.age_secs(now),
                "imported": self.db.imported,
            },
        })
    }

    /// A SARIF 2.1.0 log: one rule per advisory, one result per finding.
    pub fn to_sarif(&self, version: &str) -> Value {
        let mut rules: BTreeMap<&str, Value> = BTreeMap::new();
        let mut results = Vec::new();
        for f in &self.findings {
            let text = f.summary.clone().unwrap_or_else(|| f.id.clone());
            rules.entry(f.id.as_str()).or_insert_with(|| {
                let mut props = json!({"tags": ["security", "vulnerability"]});
                if let Some(s) = f.score {
                    props["security-severity"] = json!(format!("{s:.1}"));
                }
                json!({
                    "id": f.id,
                    "shortDescription": {"text": text},
                    "help": {"text": format!("{} (aliases: {})", f.id, f.aliases.join(", "))},
                    "properties": props,
                })
            });
            let level = match f.severity {
                Severity::Critical | Severity::High | Severity::Unknown => "error",
                Severity::Medium => "warning",
                Severity::Low | Severity::None => "note",
            };
            let uri = f
                .path
                .as_deref()
                .map(|p| p.trim_start_matches('/').to_string())
                .unwrap_or_else(|| f.purl.clone());
            results.push(json!({
                "ruleId": f.id,
                "level": level,
                "message": {"text": format!(
                    "{} {} {}: {} ({}), fixed in {}; {}",
                    f.ecosystem, f.package, f.installed, f.id, f.severity,
                    f.fixed.as_deref().unwrap_or("no release yet"), f.action.describe()
                )},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri}}}],
                "properties": {"purl": f.purl, "layer": f.layer},
            }));
        }
        json!({
            "$schema": "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json",
            "version": "2.1.0",
            "runs": [{
                "tool": {"driver": {
                    "name": "ocibuild",
                    "version": version,
                    "informationUri": "https://ossf.github.io/osv-schema/",
                    "rules": rules.into_values().collect::<Vec<_>>(),
                }},
                "results": results,
            }],
        })
    }

    /// A plain table, one finding a line, then the suppressed ones and the remediation groups.
    pub fn to_table(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let head = [
            "ID",
            "SEVERITY",
            "ECOSYSTEM",
            "PACKAGE",
            "INSTALLED",
            "FIXED",
            "ACTION",
        ];
        let rows: Vec<[String; 7]> = self
            .findings
            .iter()
            .map(|f| {
                [
                    f.id.clone(),
                    match f.score {
                        Some(s) => format!("{} {s:.1}", f.severity),
                        None => f.severity.to_string(),
                    },
                    f.ecosystem.to_string(),
                    match &f.source_package {
                        Some(s) => format!("{} ({s})", f.package),
                        None => f.package.clone(),
                    },
                    f.installed.clone(),
                    f.fixed.clone().unwrap_or_else(|| "-".into()),
                    f.action.as_str().to_string(),
                ]
            })
            .collect();
        let mut w = head.map(str::len);
        for r in &rows {
            for (i, c) in r.iter().enumerate() {
                w[i] = w[i].max(c.len());
            }
        }
        let line = |cells: &[String]| -> String {
            let mut s = String::new();
            for (i, c) in cells.iter().enumerate() {
                if i + 1 == cells.len() {
                    s.push_str(c);
                } else {
                    let _ = write!(s, "{c:<width$}  ", width = w[i]);
                }
            }
            s
        };
        if rows.is_empty() {
            out.push_str("no vulnerabilities found\n");
        } else {
            out.push_str(&line(&head.map(String::from)));
            out.push('\n');
            for r in &rows {
                out.push_str(&line(r));
                out.push('\n');
            }
        }
        for s in &self.suppressed {
            let _ = writeln!(
                out,
                "suppressed: {} in {} {} — {}",
                s.finding.id, s.finding.package, s.finding.installed, s.by
            );
        }
        let _ = writeln!(
            out,
            "{} finding(s), {} suppressed",
            self.findings.len(),
            self.suppressed.len()
        );
        out
    }
}
