//! The scanner's input: packages with their ecosystem, name, version and where they came from —
//! read from package URLs in a CycloneDX SBOM, the seam with the SBOM catalogers.

use std::cmp::Ordering;

use serde::Serialize;
use serde_json::Value;

use crate::ScanError;
use crate::version;

/// The ecosystems the gate matches, with OSV's names for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Ecosystem {
    Debian,
    Go,
    #[serde(rename = "npm")]
    Npm,
    PyPI,
    Maven,
}

impl Ecosystem {
    pub const ALL: [Ecosystem; 5] = [
        Ecosystem::Debian,
        Ecosystem::Go,
        Ecosystem::Npm,
        Ecosystem::PyPI,
        Ecosystem::Maven,
    ];

    /// OSV's ecosystem name (without a release suffix like `:12`).
    pub fn as_str(self) -> &'static str {
        match self {
            Ecosystem::Debian => "Debian",
            Ecosystem::Go => "Go",
            Ecosystem::Npm => "npm",
            Ecosystem::PyPI => "PyPI",
            Ecosystem::Maven => "Maven",
        }
    }

    /// OSV's `affected[].package.ecosystem` (`Debian:12`, `PyPI`, …) as ecosystem and release.
    pub fn from_osv(s: &str) -> Option<(Ecosystem, Option<&str>)> {
        let (base, release) = match s.split_once(':') {
            Some((b, r)) => (b, Some(r)),
            None => (s, None),
        };
        let e = Ecosystem::ALL.into_iter().find(|e| e.as_str() == base)?;
        Some((e, release))
    }

    /// The package name as the index keys it (PyPI names normalised per PEP 503).
    pub fn normalize_name(self, name: &str) -> String {
        match self {
            Ecosystem::PyPI => {
                let mut out = String::with_capacity(name.len());
                let mut dash = false;
                for c in name.chars() {
                    if matches!(c, '-' | '_' | '.') {
                        dash = true;
                    } else {
                        if dash && !out.is_empty() {
                            out.push('-');
                        }
                        dash = false;
                        out.push(c.to_ascii_lowercase());
                    }
                }
                out
            }
            _ => name.to_string(),
        }
    }

    /// Compares two versions with this ecosystem's rules; `None` when either cannot be read.
    pub fn compare(self, a: &str, b: &str) -> Option<Ordering> {
        match self {
            Ecosystem::Debian => version::dpkg::compare(a, b),
            Ecosystem::Go => version::semver::compare_go(a, b),
            Ecosystem::Npm => version::semver::compare(a, b),
            Ecosystem::PyPI => version::pep440::compare(a, b),
            Ecosystem::Maven => Some(version::maven::compare(a, b)),
        }
    }

    /// How a fixed version is obtained.
    pub fn remediation(self) -> crate::Action {
        match self {
            Ecosystem::Debian => crate::Action::RebuildRefresh,
            _ => crate::Action::BumpLockfile,
        }
    }
}

impl std::fmt::Display for Ecosystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Package {
    pub ecosystem: Ecosystem,
    /// The name as installed: the Debian binary package, the Go module (or `stdlib`), the npm
    /// name with its scope, the PyPI distribution, `group:artifact` for Maven.
    pub name: String,
    pub version: String,
    /// The Debian source package (`upstream=` in the purl), which Debian advisories name.
    pub source: Option<String>,
    /// The Debian release's major version (`distro=debian-12` → `12`).
    pub distro: Option<String>,
    pub arch: Option<String>,
    pub goos: Option<String>,
    pub goarch: Option<String>,
    pub purl: String,
    /// The diff_id of the layer the package came from.
    pub layer: Option<String>,
    /// Where in the image it was found.
    pub path: Option<String>,
}

impl Package {
    /// The names the OSV index is searched under (the source package first for Debian).
    pub fn lookup_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        if let Some(s) = &self.source {
            names.push(s.clone());
        }
        let n = self.ecosystem.normalize_name(&self.name);
        if !names.contains(&n) {
            names.push(n);
        }
        names
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses a package URL of a supported type (`deb`, `golang`, `npm`, `pypi`, `maven`).
/// `Ok(None)` for other types; an error for a purl that cannot be read.
pub fn from_purl(purl: &str) -> Result<Option<Package>, ScanError> {
    let bad = |why: &str| ScanError::Sbom(format!("package URL `{purl}`: {why}"));
    let rest = purl
        .strip_prefix("pkg:")
        .ok_or_else(|| bad("does not start with pkg:"))?;
    let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
    let (rest, qualifiers) = match rest.split_once('?') {
        Some((r, q)) => (r, q),
        None => (rest, ""),
    };
    let mut quals = std::collections::BTreeMap::new();
    for q in qualifiers.split('&').filter(|q| !q.is_empty()) {
        if let Some((k, v)) = q.split_once('=') {
            quals.insert(k.to_ascii_lowercase(), percent_decode(v));
        }
    }
    let (ty, rest) = rest.split_once('/').ok_or_else(|| bad("no type/name"))?;
    let (path, version) = rest
        .rsplit_once('@')
        .ok_or_else(|| bad("no @version: a package without a version cannot be matched"))?;
    let version = percent_decode(version);
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    if segs.is_empty() {
        return Err(bad("no name"));
    }
    let ty = ty.to_ascii_lowercase();
    let (ecosystem, name) = match ty.as_str() {
        "deb" => (Ecosystem::Debian, segs[segs.len() - 1].clone()),
        "golang" => (Ecosystem::Go, segs.join("/")),
        "npm" => (Ecosystem::Npm, segs.join("/")),
        "pypi" => (
            Ecosystem::PyPI,
            Ecosystem::PyPI.normalize_name(&segs.join("/")),
        ),
        "maven" => {
            if segs.len() < 2 {
                return Err(bad("a Maven purl needs group/artifact"));
            }
            (
                Ecosystem::Maven,
                format!(
                    "{}:{}",
                    segs[..segs.len() - 1].join("."),
                    segs[segs.len() - 1]
                ),
            )
        }
        _ => return Ok(None),
    };
    let distro = quals.get("distro").map(|d| {
        let d = d.strip_prefix("debian-").unwrap_or(d);
        // the purl spec's own example spells the release by name
        let d = match d {
            "buster" => "10",
            "bullseye" => "11",
            "bookworm" => "12",
            "trixie" => "13",
            "forky" => "14",
            other => other,
        };
        d.split('.').next().unwrap_or(d).to_string()
    });
    let source = quals
        .get("upstream")
        .map(|u| u.split_once('@').map_or(u.as_str(), |(n, _)| n).to_string());
    Ok(Some(Package {
        ecosystem,
        name,
        version,
        source: if ecosystem == Ecosystem::Debian {
            source
        } else {
            None
        },
        distro: if ecosystem == Ecosystem::Debian {
            distro
        } else {
            None
        },
        arch: quals.get("arch").cloned(),
        goos: None,
        goarch: None,
        purl: purl.to_string(),
        layer: None,
        path: None,
    }))
}

fn property<'a>(c: &'a Value, name: &str) -> Option<&'a str> {
    c.get("properties")?
        .as_array()?
        .iter()
        .find(|p| p.get("name").and_then(Value::as_str) == Some(name))?
        .get("value")?
        .as_str()
}

/// The packages of a CycloneDX JSON SBOM: every component (nested ones too) with a supported
/// purl; `ocibuild:layer`, `ocibuild:path`, `ocibuild:goos` and `ocibuild:goarch` properties say
/// where each came from. Components of other types (files, OS) are skipped.
pub fn from_cyclonedx(doc: &Value) -> Result<Vec<Package>, ScanError> {
    if doc.get("bomFormat").and_then(Value::as_str) != Some("CycloneDX") {
        return Err(ScanError::Sbom(
            "not a CycloneDX JSON document (no \"bomFormat\": \"CycloneDX\"); write one with `ocibuild sbom IMAGE --format cyclonedx`".into(),
        ));
    }
    let mut out = Vec::new();
    let mut stack: Vec<&Value> = Vec::new();
    if let Some(c) = doc.get("components").and_then(Value::as_array) {
        stack.extend(c.iter().rev());
    }
    if let Some(m) = doc.pointer("/metadata/component") {
        stack.push(m);
    }
    while let Some(c) = stack.pop() {
        if let Some(kids) = c.get("components").and_then(Value::as_array) {
            stack.extend(kids.iter().rev());
        }
        let Some(purl) = c.get("purl").and_then(Value::as_str) else {
            continue;
        };
        let Some(mut p) = from_purl(purl)? else {
            continue;
        };
        p.layer = property(c, "ocibuild:layer").map(str::to_string);
        p.path = property(c, "ocibuild:path").map(str::to_string);
        p.goos = property(c, "ocibuild:goos").map(str::to_string);
        p.goarch = property(c, "ocibuild:goarch").map(str::to_string);
        out.push(p);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn purls_of_each_ecosystem() {
        let p = from_purl(
            "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12&upstream=openssl",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (p.ecosystem, p.name.as_str(), p.version.as_str()),
            (Ecosystem::Debian, "libssl3", "3.0.11-1~deb12u2")
        );
        assert_eq!(p.source.as_deref(), Some("openssl"));
        assert_eq!(p.distro.as_deref(), Some("12"));
        assert_eq!(p.lookup_names(), ["openssl", "libssl3"]);
        let p = from_purl("pkg:deb/debian/curl@7.88.1-10?distro=debian-bookworm")
            .unwrap()
            .unwrap();
        assert_eq!(p.distro.as_deref(), Some("12"));
        let p = from_purl("pkg:deb/debian/curl@7.88.1-10?distro=debian-12.5")
            .unwrap()
            .unwrap();
        assert_eq!(p.distro.as_deref(), Some("12"));
        let p = from_purl("pkg:npm/%40babel/core@7.22.0").unwrap().unwrap();
        assert_eq!(p.name, "@babel/core");
        let p = from_purl("pkg:golang/golang.org/x/net@v0.17.0")
            .unwrap()
            .unwrap();
        assert_eq!(
            (p.name.as_str(), p.version.as_str()),
            ("golang.org/x/net", "v0.17.0")
        );
        let p = from_purl("pkg:pypi/Django_Rest.framework@3.0")
            .unwrap()
            .unwrap();
        assert_eq!(p.name, "django-rest-framework");
        let p = from_purl("pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1")
            .unwrap()
            .unwrap();
        assert_eq!(p.name, "org.apache.logging.log4j:log4j-core");
        assert!(from_purl("pkg:cargo/serde@1").unwrap().is_none());
        assert!(from_purl("pkg:npm/left-pad").is_err());
    }
}
