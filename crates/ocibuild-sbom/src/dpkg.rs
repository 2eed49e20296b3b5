//! Debian packages: `var/lib/dpkg/status` (installed entries only) and distroless-style
//! `var/lib/dpkg/status.d/<pkg>` control files (what ocibuild's own bases write), with licences
//! from machine-readable `usr/share/doc/<pkg>/copyright`.

use std::collections::BTreeMap;

use crate::walk::{Found, FsEntry};
use crate::{Component, Ecosystem, ImageInfo};

/// One package paragraph.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub arch: String,
    /// The source package (`Source:` without its version; the package name when absent).
    pub source: String,
}

/// Parse a dpkg status/control text: every paragraph with `Package` and `Version` whose
/// `Status` (when present) says it is installed.
pub fn parse(text: &str) -> Vec<Package> {
    let mut out = Vec::new();
    for para in text.split("\n\n") {
        let mut fields: BTreeMap<String, String> = BTreeMap::new();
        for line in para.lines() {
            if line.starts_with(' ') || line.starts_with('\t') {
                continue;
            }
            if let Some((k, v)) = line.split_once(':') {
                fields.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let (Some(name), Some(version)) = (fields.get("package"), fields.get("version")) else {
            continue;
        };
        if let Some(status) = fields.get("status")
            && !status.split_whitespace().any(|w| w == "installed")
        {
            continue;
        }
        let source = fields
            .get("source")
            .and_then(|s| s.split_whitespace().next())
            .filter(|s| !s.is_empty())
            .unwrap_or(name)
            .to_string();
        out.push(Package {
            name: name.clone(),
            version: version.clone(),
            arch: fields.get("architecture").cloned().unwrap_or_default(),
            source,
        });
    }
    out
}

/// The major version of a Debian `VERSION_ID` (`12`, `13`; `12.5` → `12`).
fn major(v: &str) -> String {
    v.split('.').next().unwrap_or(v).to_string()
}

/// The Debian major version of the image (`12`, `13`) for purls' `distro=debian-N`.
pub(crate) fn distro(info: &ImageInfo) -> Option<String> {
    info.os_version_id
        .as_deref()
        .filter(|_| info.os_id.as_deref().is_none_or(|id| id == "debian"))
        .map(major)
}

pub(crate) fn catalog(files: &BTreeMap<String, FsEntry>, info: &ImageInfo) -> Vec<Component> {
    let distro = distro(info);
    let mut out = Vec::new();
    let records = files
        .iter()
        .filter(|(p, _)| *p == "var/lib/dpkg/status" || p.starts_with("var/lib/dpkg/status.d/"));
    for (path, e) in records {
        let Found::Text(t) = &e.found else { continue };
        for pkg in parse(&String::from_utf8_lossy(t)) {
            let copyright = format!("usr/share/doc/{}/copyright", pkg.name);
            let licenses = match files.get(&copyright).map(|e| &e.found) {
                Some(Found::Text(t)) => crate::dep5::licenses(&String::from_utf8_lossy(t)),
                _ => Vec::new(),
            };
            out.push(Component {
                ecosystem: Ecosystem::Debian,
                purl: crate::purl::deb(
                    &pkg.name,
                    &pkg.version,
                    &pkg.arch,
                    distro.as_deref(),
                    &pkg.source,
                ),
                name: pkg.name,
                version: pkg.version,
                licenses,
                layer: e.layer.clone(),
                path: path.clone(),
                hashes: Vec::new(),
                properties: BTreeMap::new(),
            });
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn status() {
        let t = "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc (2.36-9)\nVersion: 2.36-9+deb12u4\nDescription: x\n more\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1\n\nPackage: base-files\nVersion: 12.4\nArchitecture: amd64\n";
        let p = parse(t);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].source, "glibc");
        assert_eq!(p[0].version, "2.36-9+deb12u4");
        assert_eq!(p[1].source, "base-files");
    }
}
