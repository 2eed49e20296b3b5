//! Does an OSV record affect a package? Each `affected` entry for the package's ecosystem (and
//! Debian release) and name is checked: its `versions` list, then each range's events in
//! version order (`introduced`, `fixed`, `last_affected`, `limit`) with the ecosystem's own
//! ordering; Go's `ecosystem_specific.imports[].goos/goarch` limit an advisory to platforms.

use std::cmp::Ordering;

use serde_json::Value;

use crate::osv::{Affected, Record};
use crate::{Ecosystem, Package};

/// A match: which `affected` entry, and the version that fixes it (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    pub affected_index: usize,
    pub fixed: Option<String>,
}

/// The first `affected` entry of `record` that covers `pkg`; `None` when it is withdrawn or
/// covers nothing installed.
pub fn affects(record: &Record, pkg: &Package) -> Option<Match> {
    if record.withdrawn.is_some() {
        return None;
    }
    let names = pkg.lookup_names();
    for (i, a) in record.affected.iter().enumerate() {
        let Some(p) = &a.package else { continue };
        let Some((eco, release)) = Ecosystem::from_osv(&p.ecosystem) else {
            continue;
        };
        if eco != pkg.ecosystem || !names.contains(&eco.normalize_name(&p.name)) {
            continue;
        }
        if eco == Ecosystem::Debian
            && let (Some(rel), Some(distro)) = (release, &pkg.distro)
            && rel.split('.').next() != Some(distro.as_str())
        {
            continue;
        }
        if eco == Ecosystem::Go && !platform_matches(a, pkg) {
            continue;
        }
        if let Some(fixed) = affected_version(a, eco, &pkg.version) {
            return Some(Match {
                affected_index: i,
                fixed,
            });
        }
    }
    None
}

/// Go advisories list the affected packages' `imports`, each optionally limited to `goos` and
/// `goarch`: the advisory applies when any import's limits admit the binary's platform (an
/// unknown platform is admitted).
fn platform_matches(a: &Affected, pkg: &Package) -> bool {
    let Some(imports) = a
        .ecosystem_specific
        .as_ref()
        .and_then(|e| e.get("imports"))
        .and_then(Value::as_array)
    else {
        return true;
    };
    if imports.is_empty() {
        return true;
    }
    let admits = |list: Option<&Value>, have: Option<&String>| -> bool {
        let Some(list) = list.and_then(Value::as_array) else {
            return true;
        };
        if list.is_empty() {
            return true;
        }
        match have {
            None => true,
            Some(h) => list.iter().any(|v| v.as_str() == Some(h.as_str())),
        }
    };
    imports.iter().any(|imp| {
        admits(imp.get("goos"), pkg.goos.as_ref()) && admits(imp.get("goarch"), pkg.goarch.as_ref())
    })
}

/// Whether `version` is affected by the entry: `Some(fixed version or None)` when it is.
fn affected_version(a: &Affected, eco: Ecosystem, version: &str) -> Option<Option<String>> {
    let cmp = |x: &str, y: &str| -> Option<Ordering> {
        if x == "0" && y == "0" {
            return Some(Ordering::Equal);
        }
        if x == "0" {
            return Some(Ordering::Less);
        }
        if y == "0" {
            return Some(Ordering::Greater);
        }
        eco.compare(x, y)
    };
    let norm = |v: &str| -> String {
        match eco {
            Ecosystem::Go => v
                .trim_start_matches('v')
                .trim_start_matches("go")
                .to_string(),
            _ => v.to_string(),
        }
    };
    let installed = norm(version);
    // The installed version against an event: "0" as an event is OSV's "the beginning" (below
    // every version, whatever the ecosystem's ordering says of "0"); as the installed version
    // it is a version like any other.
    let cmp_installed = |v: &str| -> Option<Ordering> {
        if v == "0" {
            return Some(if installed == "0" {
                Ordering::Equal
            } else {
                Ordering::Greater
            });
        }
        eco.compare(&installed, v)
    };
    let mut listed = a.versions.iter().any(|v| {
        norm(v) == installed || eco.compare(&norm(v), &installed) == Some(Ordering::Equal)
    });
    let mut fixed_by: Option<String> = None;
    for r in &a.ranges {
        if r.kind == "GIT" {
            continue;
        }
        // events in version order; "0" first; introduced before fixed at the same version
        let mut evs: Vec<(u8, String)> = Vec::new();
        for e in &r.events {
            if let Some(v) = &e.introduced {
                evs.push((0, norm(v)));
            }
            if let Some(v) = &e.fixed {
                evs.push((1, norm(v)));
            }
            if let Some(v) = &e.last_affected {
                evs.push((2, norm(v)));
            }
            if let Some(v) = &e.limit {
                evs.push((3, norm(v)));
            }
        }
        if evs.iter().any(|(_, v)| v != "0" && cmp(v, v).is_none()) {
            // a version this ecosystem cannot read: skip the range rather than guess
            continue;
        }
        evs.sort_by(|a, b| {
            cmp(&a.1, &b.1)
                .unwrap_or(Ordering::Equal)
                .then(a.0.cmp(&b.0))
        });
        let mut affected = false;
        let mut fixed_here: Option<String> = None;
        for (kind, v) in &evs {
            let o = cmp_installed(v)?;
            match kind {
                0 if o != Ordering::Less => affected = true,
                1 if o != Ordering::Less => affected = false,
                2 if o == Ordering::Greater => affected = false,
                3 if o != Ordering::Less => affected = false,
                _ => {}
            }
        }
        if affected {
            // the first fix after the installed version
            fixed_here = evs
                .iter()
                .filter(|(k, v)| *k == 1 && cmp_installed(v) == Some(Ordering::Less))
                .map(|(_, v)| v.clone())
                .next();
            listed = true;
        }
        if affected && fixed_by.is_none() {
            fixed_by = fixed_here;
        }
    }
    if !listed {
        return None;
    }
    let fixed_by = fixed_by.map(|f| match eco {
        Ecosystem::Go if !version.starts_with("go") && version.starts_with('v') => format!("v{f}"),
        _ => f,
    });
    Some(fixed_by)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::osv::{AffectedPackage, Event, Range};

    fn ev(i: Option<&str>, f: Option<&str>, l: Option<&str>) -> Event {
        Event {
            introduced: i.map(Into::into),
            fixed: f.map(Into::into),
            last_affected: l.map(Into::into),
            limit: None,
        }
    }

    fn aff(eco: &str, name: &str, events: Vec<Event>) -> Affected {
        Affected {
            package: Some(AffectedPackage {
                ecosystem: eco.into(),
                name: name.into(),
                purl: None,
            }),
            ranges: vec![Range {
                kind: "ECOSYSTEM".into(),
                events,
            }],
            ..Affected::default()
        }
    }

    #[test]
    fn range_events() {
        let a = aff(
            "npm",
            "x",
            vec![
                ev(Some("0"), None, None),
                ev(None, Some("1.2.3"), None),
                ev(Some("2.0.0"), None, None),
                ev(None, None, Some("2.1.0")),
            ],
        );
        let e = Ecosystem::Npm;
        assert_eq!(affected_version(&a, e, "1.0.0"), Some(Some("1.2.3".into())));
        assert_eq!(affected_version(&a, e, "1.2.3"), None);
        assert_eq!(affected_version(&a, e, "2.0.0"), Some(None));
        assert_eq!(affected_version(&a, e, "2.1.0"), Some(None));
        assert_eq!(affected_version(&a, e, "2.1.1"), None);
    }

    /// Found by the PEP 440 range oracle: an installed version written "0" was taken for OSV's
    /// "from the beginning" sentinel, so it sorted below every event and escaped a range that
    /// starts at a version equal to 0 (`0!0.0`, `0.0`).
    #[test]
    fn an_installed_version_0_is_a_version_not_the_sentinel() {
        let a = aff("PyPI", "x", vec![ev(Some("0.0"), Some("1.0"), None)]);
        assert_eq!(
            affected_version(&a, Ecosystem::PyPI, "0"),
            Some(Some("1.0".into()))
        );
        // and "0" as an introduced event still means from the beginning
        let a = aff("PyPI", "x", vec![ev(Some("0"), Some("1.0"), None)]);
        assert_eq!(
            affected_version(&a, Ecosystem::PyPI, "0.dev0"),
            Some(Some("1.0".into()))
        );
        assert_eq!(
            affected_version(&a, Ecosystem::PyPI, "0"),
            Some(Some("1.0".into()))
        );
    }
}
