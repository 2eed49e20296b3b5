//! What suppresses a finding: an allowlist entry (TOML: `[[ignore]]` with `id`, `reason` and
//! `expires`; an expired entry stops suppressing and says so) or an OpenVEX statement
//! `not_affected` with a justification (or an impact statement).

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::{Finding, Options, Package, ScanError};

#[derive(Debug, Clone, Deserialize)]
pub struct AllowEntry {
    /// The advisory's id or any of its aliases (a CVE).
    pub id: String,
    pub reason: String,
    /// `YYYY-MM-DD`: the last day the entry suppresses.
    #[serde(default)]
    pub expires: Option<String>,
    /// Only for this package (its name as the report shows it).
    #[serde(default)]
    pub package: Option<String>,
    #[serde(skip)]
    expires_day: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct Allowlist {
    pub entries: Vec<AllowEntry>,
}

#[derive(Deserialize)]
struct AllowFile {
    #[serde(default)]
    ignore: Vec<AllowEntry>,
}

impl Allowlist {
    pub fn parse(path: &Path, text: &str) -> Result<Allowlist, ScanError> {
        let err = |reason: String| ScanError::Allowlist {
            path: path.to_path_buf(),
            reason,
        };
        let f: AllowFile = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        let mut entries = f.ignore;
        for e in &mut entries {
            if e.reason.trim().is_empty() {
                return Err(err(format!("entry {} has an empty reason", e.id)));
            }
            if let Some(x) = &e.expires {
                e.expires_day = Some(crate::time::parse_date(x).ok_or_else(|| {
                    err(format!(
                        "entry {}: expires = \"{x}\" is not YYYY-MM-DD",
                        e.id
                    ))
                })?);
            }
        }
        Ok(Allowlist { entries })
    }

    pub fn load(path: &Path) -> Result<Allowlist, ScanError> {
        let text = std::fs::read_to_string(path).map_err(ScanError::io(path))?;
        Allowlist::parse(path, &text)
    }
}

/// One OpenVEX statement that suppresses: a vulnerability and the products it covers.
#[derive(Debug, Clone)]
pub struct VexStatement {
    pub vulnerability: Vec<String>,
    /// Package URLs (or image references); empty: every product.
    pub products: Vec<String>,
    pub justification: String,
}

#[derive(Debug, Clone, Default)]
pub struct Vex {
    pub source: String,
    pub statements: Vec<VexStatement>,
    /// `not_affected` statements without a justification: they do not suppress.
    pub unjustified: Vec<String>,
}

fn ids_of(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Object(o) => {
            let mut ids = Vec::new();
            for k in ["name", "@id"] {
                if let Some(s) = o.get(k).and_then(Value::as_str) {
                    ids.push(s.to_string());
                }
            }
            if let Some(a) = o.get("aliases").and_then(Value::as_array) {
                ids.extend(a.iter().filter_map(Value::as_str).map(str::to_string));
            }
            ids
        }
        _ => Vec::new(),
    }
}

impl Vex {
    pub fn parse(path: &Path, doc: &Value) -> Result<Vex, ScanError> {
        let err = |reason: &str| ScanError::Vex {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        let ctx = doc.get("@context").and_then(Value::as_str).unwrap_or("");
        if !ctx.contains("openvex") {
            return Err(err("no OpenVEX @context"));
        }
        let statements = doc
            .get("statements")
            .and_then(Value::as_array)
            .ok_or_else(|| err("no statements array"))?;
        let mut out = Vex {
            source: path.display().to_string(),
            ..Vex::default()
        };
        for s in statements {
            if s.get("status").and_then(Value::as_str) != Some("not_affected") {
                continue;
            }
            let vulnerability = s.get("vulnerability").map(ids_of).unwrap_or_default();
            if vulnerability.is_empty() {
                return Err(err("a statement names no vulnerability"));
            }
            let justification = s
                .get("justification")
                .and_then(Value::as_str)
                .or_else(|| s.get("impact_statement").and_then(Value::as_str))
                .unwrap_or("")
                .trim()
                .to_string();
            if justification.is_empty() {
                out.unjustified.extend(vulnerability);
                continue;
            }
            let products = s
                .get("products")
                .and_then(Value::as_array)
                .map(|ps| {
                    ps.iter()
                        .filter_map(|p| match p {
                            Value::String(s) => Some(s.clone()),
                            Value::Object(o) => o
                                .get("@id")
                                .or_else(|| o.get("identifiers").and_then(|i| i.get("purl")))
                                .and_then(Value::as_str)
                                .map(str::to_string),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.statements.push(VexStatement {
                vulnerability,
                products,
                justification,
            });
        }
        Ok(out)
    }

    pub fn load(path: &Path) -> Result<Vex, ScanError> {
        let text = std::fs::read(path).map_err(ScanError::io(path))?;
        let doc: Value = serde_json::from_slice(&text).map_err(|e| ScanError::Vex {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Vex::parse(path, &doc)
    }
}

/// A purl without qualifiers and subpath, and without its version when `versionless`.
fn purl_base(p: &str, versionless: bool) -> String {
    let p = p.split(['?', '#']).next().unwrap_or(p);
    if versionless {
        p.rsplit_once('@').map_or(p, |(b, _)| b).to_string()
    } else {
        p.to_string()
    }
}

fn product_matches(product: &str, pkg: &Package) -> bool {
    if product.starts_with("pkg:") {
        let want_versionless = !product.split(['?', '#']).next().unwrap_or("").contains('@');
        purl_base(product, want_versionless) == purl_base(&pkg.purl, want_versionless)
    } else {
        // an image reference or any other product: the statement covers the scanned image
        true
    }
}

/// Why `f` is suppressed, if it is; expired allowlist entries and unjustified VEX statements
/// add a warning instead.
pub(crate) fn suppression(
    f: &Finding,
    pkg: &Package,
    opts: &Options,
    today: i64,
    warnings: &mut Vec<String>,
) -> Option<String> {
    let names_it = |id: &str| f.id == id || f.aliases.iter().any(|a| a == id);
    if let Some(al) = &opts.allowlist {
        for e in &al.entries {
            if !names_it(&e.id) || e.package.as_ref().is_some_and(|p| *p != f.package) {
                continue;
            }
            match e.expires_day {
                Some(d) if d < today => warnings.push(format!(
                    "allowlist entry {} expired on {}: it no longer suppresses {} in {} ({})",
                    e.id,
                    e.expires.as_deref().unwrap_or(""),
                    f.id,
                    f.package,
                    e.reason
                )),
                _ => {
                    return Some(format!(
                        "allowlist: {}{}",
                        e.reason,
                        e.expires
                            .as_ref()
                            .map(|x| format!(" (until {x})"))
                            .unwrap_or_default()
                    ));
                }
            }
        }
    }
    for v in &opts.vex {
        for s in &v.statements {
            if s.vulnerability.iter().any(|id| names_it(id))
                && (s.products.is_empty() || s.products.iter().any(|p| product_matches(p, pkg)))
            {
                return Some(format!(
                    "vex: not_affected ({}) [{}]",
                    s.justification, v.source
                ));
            }
        }
        for id in &v.unjustified {
            if names_it(id) {
                warnings.push(format!(
                    "{}: the not_affected statement for {id} has no justification or impact_statement, so it does not suppress",
                    v.source
                ));
            }
        }
    }
    None
}
