//! The licence gate: denied SPDX licence ids (from `--license-deny` or a policy file), and
//! whether unknown licences fail.

use std::collections::BTreeSet;

use crate::{Component, License, Result, SbomError};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// SPDX licence ids that fail the gate (canonical spelling).
    pub deny: BTreeSet<String>,
    pub fail_unknown: bool,
}

/// A component the gate names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub name: String,
    pub version: String,
    pub purl: String,
    pub path: String,
    /// The licences as found, joined for display.
    pub licenses: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub denied: Vec<Finding>,
    pub unknown: Vec<Finding>,
}

impl Outcome {
    /// Whether the gate fails under `policy`.
    pub fn fails(&self, policy: &Policy) -> bool {
        !self.denied.is_empty() || (policy.fail_unknown && !self.unknown.is_empty())
    }
}

impl Policy {
    /// Add denied ids; each must be an SPDX licence id (`GPL-3.0-only`), so a typo cannot
    /// silently allow everything.
    pub fn deny_ids<'a>(
        &mut self,
        ids: impl IntoIterator<Item = &'a str>,
        origin: &str,
    ) -> Result<()> {
        for id in ids {
            let id = id.trim();
            if id.is_empty() {
                continue;
            }
            let lic = spdx::license_id(id).ok_or_else(|| SbomError::Invalid {
                what: format!("licence `{id}` in {origin}"),
                detail: format!(
                    "it is not an SPDX licence identifier{}; use the ids of the SPDX licence list, e.g. GPL-3.0-only, AGPL-3.0-or-later",
                    spdx::imprecise_license_id(id)
                        .map(|(l, _)| format!(" (did you mean {}?)", l.name))
                        .unwrap_or_default()
                ),
            })?;
            self.deny.insert(lic.name.to_string());
        }
        Ok(())
    }

    /// A policy file: JSON `{"deny": ["GPL-3.0-only", …], "failUnknown": true}`, or plain text
    /// with one denied id per line (`#` comments).
    pub fn load_file(&mut self, text: &str, origin: &str) -> Result<()> {
        if text.trim_start().starts_with('{') {
            let v: serde_json::Value = serde_json::from_str(text).map_err(|e| SbomError::Json {
                what: origin.to_string(),
                source: e,
            })?;
            let deny = v
                .get("deny")
                .and_then(|d| d.as_array())
                .cloned()
                .unwrap_or_default();
            let mut ids = Vec::new();
            for d in &deny {
                ids.push(d.as_str().ok_or_else(|| SbomError::Invalid {
                    what: origin.to_string(),
                    detail: "`deny` must be an array of SPDX licence id strings".into(),
                })?);
            }
            self.deny_ids(ids, origin)?;
            if let Some(f) = v.get("failUnknown").and_then(|f| f.as_bool()) {
                self.fail_unknown |= f;
            }
            return Ok(());
        }
        let lines: Vec<&str> = text
            .lines()
            .map(|l| l.split('#').next().unwrap_or("").trim())
            .filter(|l| !l.is_empty())
            .collect();
        self.deny_ids(lines, origin)
    }

    fn denies(&self, l: &License) -> bool {
        let License::Spdx(e) = l else { return false };
        let Ok(expr) = spdx::Expression::parse(e) else {
            return false;
        };
        // the licence is acceptable if some choice of its alternatives avoids every denied id
        !expr.evaluate(|req| {
            req.license
                .id()
                .is_none_or(|id| !self.deny.contains(id.name) && !self.deny_or_later(id.name, req))
        })
    }

    /// `GPL-2.0+` style requirements also match a denied `-or-later` id of the same family.
    fn deny_or_later(&self, name: &str, req: &spdx::LicenseReq) -> bool {
        matches!(req.license, spdx::LicenseItem::Spdx { or_later: true, .. })
            && self.deny.contains(&format!("{name}-or-later"))
    }

    /// Apply the policy to components.
    pub fn check(&self, components: &[Component]) -> Outcome {
        let mut out = Outcome::default();
        for c in components {
            let f = || Finding {
                name: c.name.clone(),
                version: c.version.clone(),
                purl: c.purl.clone(),
                path: c.path.clone(),
                licenses: if c.licenses.is_empty() {
                    "(none found)".into()
                } else {
                    c.licenses
                        .iter()
                        .map(|l| match l {
                            License::Spdx(e) => e.clone(),
                            License::Unknown(n) => format!("{n} (not SPDX)"),
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            };
            if c.licenses.iter().any(|l| self.denies(l)) {
                out.denied.push(f());
            } else if c.license_unknown() {
                out.unknown.push(f());
            }
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::Ecosystem;

    fn comp(name: &str, ls: Vec<License>) -> Component {
        Component {
            ecosystem: Ecosystem::Debian,
            name: name.into(),
            version: "1".into(),
            purl: format!("pkg:deb/debian/{name}@1"),
            licenses: ls,
            layer: "l".into(),
            path: "p".into(),
            hashes: vec![],
            properties: Default::default(),
        }
    }

    #[test]
    fn gate() {
        let mut p = Policy::default();
        p.deny_ids(["GPL-3.0-only", "AGPL-3.0-only"], "--license-deny")
            .unwrap();
        assert!(p.deny_ids(["GPL3"], "--license-deny").is_err());
        let cs = vec![
            comp("a", vec![License::Spdx("MIT".into())]),
            comp("b", vec![License::Spdx("GPL-3.0-only".into())]),
            comp("c", vec![License::Spdx("GPL-3.0-only OR MIT".into())]),
            comp("d", vec![License::Spdx("MIT AND AGPL-3.0-only".into())]),
            comp("e", vec![]),
            comp("f", vec![License::Unknown("public-domain".into())]),
        ];
        let o = p.check(&cs);
        let names = |v: &[Finding]| v.iter().map(|f| f.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&o.denied), ["b", "d"]);
        assert_eq!(names(&o.unknown), ["e", "f"]);
        assert!(o.fails(&p));
        let mut q = Policy::default();
        q.load_file(
            "{\"deny\": [\"MPL-2.0\"], \"failUnknown\": true}",
            "policy.json",
        )
        .unwrap();
        assert!(q.fail_unknown);
        let o = q.check(&cs[..1]);
        assert!(!o.fails(&q));
    }
}
