//! Python distributions: `*.dist-info/METADATA` (core metadata: `Name`, `Version`,
//! `License-Expression`, `License`, `Classifier: License :: …`).

use std::collections::BTreeMap;

use crate::{Component, Ecosystem, License};

pub(crate) fn catalog(text: &[u8], path: &str, layer: &str) -> Vec<Component> {
    let text = String::from_utf8_lossy(text);
    let mut name = None;
    let mut version = None;
    let mut expression = None;
    let mut license = None;
    let mut classifiers = Vec::new();
    // headers end at the first blank line (the description follows)
    for line in text.lines() {
        if line.trim().is_empty() {
            break;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            continue;
        }
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim().to_string();
        match k.trim().to_ascii_lowercase().as_str() {
            "name" => name = Some(v),
            "version" => version = Some(v),
            "license-expression" => expression = Some(v),
            "license" => license = Some(v),
            "classifier" if v.starts_with("License ::") => classifiers.push(v),
            _ => {}
        }
    }
    let (Some(name), Some(version)) = (name, version) else {
        return Vec::new();
    };
    let mut licenses = Vec::new();
    if let Some(e) = expression.as_deref().and_then(License::from_declared) {
        licenses.push(e);
    } else if let Some(l) = license.as_deref().and_then(License::from_declared)
        && matches!(l, License::Spdx(_))
    {
        licenses.push(l);
    } else {
        let mapped: Vec<&str> = classifiers
            .iter()
            .filter_map(|c| crate::license::from_classifier(c))
            .collect();
        if !mapped.is_empty() && mapped.len() == classifiers.len() {
            licenses.extend(mapped.iter().map(|m| License::Spdx((*m).to_string())));
        } else if let Some(l) = license.as_deref().and_then(License::from_declared) {
            licenses.push(l);
        } else if let Some(c) = classifiers.first() {
            let last = c.rsplit("::").next().unwrap_or(c).trim();
            licenses.push(License::Unknown(last.to_string()));
        }
    }
    vec![Component {
        ecosystem: Ecosystem::Pypi,
        purl: crate::purl::pypi(&name, &version),
        name,
        version,
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
    fn metadata() {
        let m = b"Metadata-Version: 2.1\nName: Flask\nVersion: 3.0.3\nClassifier: License :: OSI Approved :: BSD License\nLicense: BSD-3-Clause\n\nlong description\nName: nope\n";
        let c = catalog(m, "x/flask-3.0.3.dist-info/METADATA", "l");
        assert_eq!(c[0].purl, "pkg:pypi/flask@3.0.3");
        assert_eq!(c[0].licenses, vec![License::Spdx("BSD-3-Clause".into())]);
        let m = b"Name: typing_extensions\nVersion: 4.12.2\nClassifier: License :: OSI Approved :: Python Software Foundation License\n";
        let c = catalog(m, "p", "l");
        assert_eq!(c[0].purl, "pkg:pypi/typing-extensions@4.12.2");
        assert_eq!(c[0].licenses, vec![License::Spdx("PSF-2.0".into())]);
        let m = b"Name: x\nVersion: 1\nLicense-Expression: MIT OR Apache-2.0\n";
        assert_eq!(
            catalog(m, "p", "l")[0].licenses,
            vec![License::Spdx("MIT OR Apache-2.0".into())]
        );
    }
}
