//! npm packages installed under `node_modules`: each `node_modules/<name>/package.json` and
//! `node_modules/@scope/<name>/package.json` (at any depth of nesting).

use std::collections::BTreeMap;

use crate::{Component, Ecosystem, License};

/// Whether `path` is a package's own manifest inside a `node_modules` tree (not a file deeper
/// in the package, such as `node_modules/x/lib/package.json`).
pub fn is_package_manifest(path: &str) -> bool {
    let Some(idx) = path.rfind("node_modules/") else {
        return false;
    };
    let rest = &path[idx + "node_modules/".len()..];
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        [name, "package.json"] => !name.starts_with('.') && !name.starts_with('@'),
        [scope, _name, "package.json"] => scope.starts_with('@'),
        _ => false,
    }
}

pub(crate) fn catalog(text: &[u8], path: &str, layer: &str) -> Vec<Component> {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(text) else {
        return Vec::new();
    };
    let (Some(name), Some(version)) = (
        v.get("name").and_then(|n| n.as_str()),
        v.get("version").and_then(|n| n.as_str()),
    ) else {
        return Vec::new();
    };
    if name.is_empty() || version.is_empty() {
        return Vec::new();
    }
    let mut licenses = Vec::new();
    match v.get("license") {
        Some(serde_json::Value::String(s)) => licenses.extend(License::from_declared(s)),
        Some(serde_json::Value::Object(o)) => {
            if let Some(t) = o.get("type").and_then(|t| t.as_str()) {
                licenses.extend(License::from_declared(t));
            }
        }
        _ => {}
    }
    if licenses.is_empty()
        && let Some(arr) = v.get("licenses").and_then(|l| l.as_array())
    {
        for l in arr {
            let t = l
                .get("type")
                .and_then(|t| t.as_str())
                .or_else(|| l.as_str());
            if let Some(t) = t {
                licenses.extend(License::from_declared(t));
            }
        }
    }
    vec![Component {
        ecosystem: Ecosystem::Npm,
        name: name.to_string(),
        version: version.to_string(),
        purl: crate::purl::npm(name, version),
        licenses,
        layer: layer.to_string(),
        path: path.to_string(),
        hashes: Vec::new(),
        properties: BTreeMap::new(),
    }]
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn manifests() {
        assert!(is_package_manifest("app/node_modules/express/package.json"));
        assert!(is_package_manifest(
            "app/node_modules/@types/node/package.json"
        ));
        assert!(is_package_manifest(
            "app/node_modules/a/node_modules/b/package.json"
        ));
        assert!(!is_package_manifest("app/node_modules/a/lib/package.json"));
        assert!(!is_package_manifest("app/package.json"));
        assert!(!is_package_manifest("app/node_modules/.package-lock.json"));
        let c = catalog(
            br#"{"name":"@scope/x","version":"1.0.0","license":"MIT"}"#,
            "p",
            "l",
        );
        assert_eq!(c[0].purl, "pkg:npm/%40scope/x@1.0.0");
        assert_eq!(c[0].licenses, vec![License::Spdx("MIT".into())]);
    }
}
