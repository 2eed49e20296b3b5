//! Severities: from a CVSS v4.0, v3.x or (for older records that carry nothing newer) v2 vector's
//! base score (the affected entry's own first,
//! then the record's), else the record's own text (`database_specific.severity`,
//! `ecosystem_specific.severity`), else UNKNOWN.

use serde::Serialize;
use serde_json::Value;

use crate::osv::{Record, SeverityEntry};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    None,
    Low,
    Medium,
    High,
    Critical,
    /// No score and no text: counts as at or above any threshold (unless ignored).
    Unknown,
}

impl Severity {
    pub const ALL: [Severity; 6] = [
        Severity::Unknown,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
        Severity::None,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::None => "NONE",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
            Severity::Unknown => "UNKNOWN",
        }
    }

    /// CVSS's qualitative rating of a base score.
    pub fn from_score(s: f64) -> Severity {
        if s >= 9.0 {
            Severity::Critical
        } else if s >= 7.0 {
            Severity::High
        } else if s >= 4.0 {
            Severity::Medium
        } else if s > 0.0 {
            Severity::Low
        } else {
            Severity::None
        }
    }

    /// A severity word as advisories and users spell it (`HIGH`, `moderate`, `important`, …).
    pub fn parse(s: &str) -> Option<Severity> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "critical" => Severity::Critical,
            "high" | "important" => Severity::High,
            "medium" | "moderate" => Severity::Medium,
            "low" | "negligible" | "unimportant" | "minor" => Severity::Low,
            "none" => Severity::None,
            "unknown" => Severity::Unknown,
            _ => return None,
        })
    }

    /// The severities at or above `self` (snyk's `--severity-threshold`), UNKNOWN included.
    pub fn at_or_above(self) -> Vec<Severity> {
        let mut v: Vec<Severity> = [
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
        ]
        .into_iter()
        .filter(|s| *s >= self)
        .collect();
        v.push(Severity::Unknown);
        v
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn from_vectors(entries: &[SeverityEntry]) -> Option<f64> {
    for kind in ["CVSS_V4", "CVSS_V3", "CVSS_V2"] {
        for e in entries.iter().filter(|e| e.kind == kind) {
            if let Ok(s) = crate::cvss::base_score(&e.score) {
                return Some(s);
            }
        }
    }
    None
}

fn from_text(v: Option<&Value>) -> Option<Severity> {
    let s = v?.get("severity")?;
    match s {
        Value::String(t) => Severity::parse(t),
        _ => None,
    }
}

/// The severity of `record` for its `affected[index]`, with the base score it came from.
pub fn of_record(record: &Record, index: usize) -> (Severity, Option<f64>) {
    let a = record.affected.get(index);
    let score = a
        .and_then(|a| from_vectors(&a.severity))
        .or_else(|| from_vectors(&record.severity));
    if let Some(s) = score {
        return (Severity::from_score(s), Some(s));
    }
    let text = a
        .and_then(|a| from_text(a.ecosystem_specific.as_ref()))
        .or_else(|| a.and_then(|a| from_text(a.database_specific.as_ref())))
        .or_else(|| from_text(record.database_specific.as_ref()));
    (text.unwrap_or(Severity::Unknown), None)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn record(json: &str) -> Record {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_v2_only_record_is_scored_not_unknown() {
        let r = record(
            r#"{"id": "OLD-1", "severity": [{"type": "CVSS_V2", "score": "AV:N/AC:L/Au:N/C:P/I:P/A:P"}],
                "affected": [{"package": {"ecosystem": "PyPI", "name": "x"}}]}"#,
        );
        assert_eq!(of_record(&r, 0), (Severity::High, Some(7.5)));
        // a v3 vector wins over a v2 one
        let r = record(
            r#"{"id": "OLD-2", "severity": [{"type": "CVSS_V2", "score": "AV:N/AC:L/Au:N/C:P/I:P/A:P"},
                {"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
                "affected": [{"package": {"ecosystem": "PyPI", "name": "x"}}]}"#,
        );
        assert_eq!(of_record(&r, 0), (Severity::Critical, Some(9.8)));
        // a broken v2 vector is not a score
        let r = record(
            r#"{"id": "OLD-3", "severity": [{"type": "CVSS_V2", "score": "AV:N/AC:L"}],
                "affected": [{"package": {"ecosystem": "PyPI", "name": "x"}}]}"#,
        );
        assert_eq!(of_record(&r, 0), (Severity::Unknown, None));
    }
}
