//! Java archives: `META-INF/maven/<group>/<artifact>/pom.properties` (one jar may shade several),
//! else the manifest's `Implementation-*` / `Bundle-*` attributes; jars nested in a Spring Boot
//! fat jar (`BOOT-INF/lib/`, `WEB-INF/lib/`) are read too, one level deep.

use std::collections::BTreeMap;
use std::io::{Cursor, Read};

use crate::{Component, Ecosystem, License};

/// Entries larger than this (a nested jar, a manifest) are skipped.
const MAX_ENTRY: u64 = 256 << 20;

pub(crate) fn catalog_jar(bytes: &[u8], path: &str, layer: &str) -> Vec<Component> {
    catalog_inner(bytes, path, layer, 0)
}

fn read_entry(zip: &mut zip::ZipArchive<Cursor<&[u8]>>, i: usize) -> Option<Vec<u8>> {
    let f = zip.by_index(i).ok()?;
    if f.is_dir() || f.size() > MAX_ENTRY {
        return None;
    }
    let mut buf = Vec::with_capacity(f.size() as usize);
    f.take(MAX_ENTRY).read_to_end(&mut buf).ok()?;
    Some(buf)
}

fn properties(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| l.split_once('=').or_else(|| l.split_once(':')))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Main attributes of a manifest (continuation lines joined).
fn manifest(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut last: Option<String> = None;
    for line in text.lines() {
        if line.is_empty() {
            break;
        }
        if let Some(cont) = line.strip_prefix(' ') {
            if let Some(k) = &last
                && let Some(v) = out.get_mut(k)
            {
                let v: &mut String = v;
                v.push_str(cont);
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            out.insert(k.trim().to_string(), v.trim().to_string());
            last = Some(k.trim().to_string());
        }
    }
    out
}

fn catalog_inner(bytes: &[u8], path: &str, layer: &str, depth: u32) -> Vec<Component> {
    let Ok(mut zip) = zip::ZipArchive::new(Cursor::new(bytes)) else {
        return Vec::new();
    };
    let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes));
    let sha1 = hex::encode(<sha1::Sha1 as sha1::Digest>::digest(bytes));
    let mut poms = Vec::new();
    let mut mf = BTreeMap::new();
    let mut nested: Vec<(String, Vec<u8>)> = Vec::new();
    let names: Vec<String> = (0..zip.len())
        .map(|i| {
            zip.name_for_index(i)
                .and_then(|r| r.ok())
                .map(|n| n.into_owned())
                .unwrap_or_default()
        })
        .collect();
    for (i, name) in names.iter().enumerate() {
        let is_pom = name.starts_with("META-INF/maven/") && name.ends_with("/pom.properties");
        let is_mf = name == "META-INF/MANIFEST.MF";
        let is_nested = depth == 0
            && (name.starts_with("BOOT-INF/lib/") || name.starts_with("WEB-INF/lib/"))
            && name.ends_with(".jar");
        if !(is_pom || is_mf || is_nested) {
            continue;
        }
        let Some(data) = read_entry(&mut zip, i) else {
            continue;
        };
        if is_pom {
            poms.push(properties(&String::from_utf8_lossy(&data)));
        } else if is_mf {
            mf = manifest(&String::from_utf8_lossy(&data));
        } else {
            nested.push((name.clone(), data));
        }
    }
    let license = mf
        .get("Bundle-License")
        .and_then(|l| License::from_declared(l))
        .filter(|l| matches!(l, License::Spdx(_)));
    let mut out = Vec::new();
    let mk = |group: &str, artifact: &str, version: &str| -> Component {
        Component {
            ecosystem: Ecosystem::Maven,
            name: format!("{group}:{artifact}"),
            version: version.to_string(),
            purl: crate::purl::maven(group, artifact, version),
            licenses: license.iter().cloned().collect(),
            layer: layer.to_string(),
            path: path.to_string(),
            hashes: vec![
                ("SHA-1".to_string(), sha1.clone()),
                ("SHA-256".to_string(), sha256.clone()),
            ],
            properties: BTreeMap::new(),
        }
    };
    for p in &poms {
        if let (Some(g), Some(a), Some(v)) =
            (p.get("groupId"), p.get("artifactId"), p.get("version"))
            && !g.is_empty()
            && !a.is_empty()
            && !v.is_empty()
        {
            out.push(mk(g, a, v));
        }
    }
    if out.is_empty() {
        // no Maven coordinates: the manifest's, when it names both a group-like id and version
        let group = mf.get("Implementation-Vendor-Id");
        let artifact = mf.get("Implementation-Title");
        let version = mf
            .get("Implementation-Version")
            .or_else(|| mf.get("Bundle-Version"));
        if let (Some(g), Some(a), Some(v)) = (group, artifact, version) {
            out.push(mk(g, a, v));
        }
    }
    for (name, data) in nested {
        out.extend(catalog_inner(
            &data,
            &format!("{path}!/{name}"),
            layer,
            depth + 1,
        ));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::io::Write;

    fn jar(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (n, d) in entries {
            w.start_file(*n, zip::write::SimpleFileOptions::default())
                .unwrap();
            w.write_all(d).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn fat_jar() {
        let inner = jar(&[(
            "META-INF/maven/com.fasterxml.jackson.core/jackson-core/pom.properties",
            b"#Generated\nartifactId=jackson-core\ngroupId=com.fasterxml.jackson.core\nversion=2.17.1\n",
        )]);
        let outer = jar(&[
            (
                "META-INF/MANIFEST.MF",
                b"Manifest-Version: 1.0\nStart-Class: x\n",
            ),
            (
                "META-INF/maven/com.example/app/pom.properties",
                b"groupId=com.example\nartifactId=app\nversion=1.0\n",
            ),
            ("BOOT-INF/lib/jackson-core-2.17.1.jar", &inner),
        ]);
        let c = catalog_jar(&outer, "app/app.jar", "l");
        let purls: Vec<&str> = c.iter().map(|c| c.purl.as_str()).collect();
        assert_eq!(
            purls,
            [
                "pkg:maven/com.example/app@1.0",
                "pkg:maven/com.fasterxml.jackson.core/jackson-core@2.17.1"
            ]
        );
        assert_eq!(
            c[1].path,
            "app/app.jar!/BOOT-INF/lib/jackson-core-2.17.1.jar"
        );
    }
}
