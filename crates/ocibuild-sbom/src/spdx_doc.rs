//! SPDX 2.3 JSON. Deterministic: packages sorted (their SPDXIDs numbered in that order), the
//! namespace derived from the manifest digest, `created` the image config's.

use serde_json::{Value, json};

use crate::{Component, License, Sbom};

pub const MEDIA_TYPE: &str = "application/spdx+json";

/// The document's `licenseDeclared`: one SPDX expression when every licence is known.
fn declared(ls: &[License]) -> String {
    let mut exprs = Vec::new();
    for l in ls {
        match l {
            License::Spdx(e) => exprs.push(e.as_str()),
            License::Unknown(_) => return "NOASSERTION".into(),
        }
    }
    match exprs.len() {
        0 => "NOASSERTION".into(),
        1 => exprs[0].to_string(),
        _ => exprs
            .iter()
            .map(|e| {
                if e.contains(' ') {
                    format!("({e})")
                } else {
                    e.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(" AND "),
    }
}

fn package(c: &Component, id: &str) -> Value {
    let mut o = json!({
        "SPDXID": id,
        "name": c.name,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": declared(&c.licenses),
        "copyrightText": "NOASSERTION",
        "sourceInfo": format!("layer {} path /{}", c.layer, c.path),
        "externalRefs": [ {
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": c.purl,
        } ],
        "primaryPackagePurpose": "LIBRARY",
    });
    if let Some(obj) = o.as_object_mut() {
        if !c.version.is_empty() {
            obj.insert("versionInfo".into(), json!(c.version));
        }
        let unknown: Vec<&str> = c
            .licenses
            .iter()
            .filter_map(|l| match l {
                License::Unknown(n) => Some(n.as_str()),
                License::Spdx(_) => None,
            })
            .collect();
        if !unknown.is_empty() {
            obj.insert(
                "licenseComments".into(),
                json!(format!(
                    "licences with no SPDX identifier: {}",
                    unknown.join("; ")
                )),
            );
        }
        let sums: Vec<Value> = c
            .hashes
            .iter()
            .filter_map(|(alg, h)| {
                let a = match alg.as_str() {
                    "SHA-1" => "SHA1",
                    "SHA-256" => "SHA256",
                    "SHA-384" => "SHA384",
                    "SHA-512" => "SHA512",
                    _ => return None,
                };
                Some(json!({ "algorithm": a, "checksumValue": h }))
            })
            .collect();
        if !sums.is_empty() {
            obj.insert("checksums".into(), Value::Array(sums));
        }
    }
    o
}

/// The SPDX 2.3 document of an SBOM.
pub fn document(sbom: &Sbom) -> Value {
    let img = &sbom.image;
    let created = crate::cyclonedx::timestamp(img.created.as_deref())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string());
    let mut packages = vec![json!({
        "SPDXID": "SPDXRef-Image",
        "name": img.name,
        "versionInfo": img.manifest_digest.to_string(),
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "CONTAINER",
        "checksums": [ { "algorithm": "SHA256", "checksumValue": img.manifest_digest.hex() } ],
    })];
    let mut rels = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": "SPDXRef-Image",
    })];
    for (i, c) in sbom.components.iter().enumerate() {
        let id = format!("SPDXRef-Package-{}", i + 1);
        packages.push(package(c, &id));
        rels.push(json!({
            "spdxElementId": "SPDXRef-Image",
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": id,
        }));
    }
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": img.name,
        "documentNamespace": format!("https://spdx.org/spdxdocs/ocibuild-{}", img.manifest_digest.hex()),
        "creationInfo": {
            "created": created,
            "creators": [ format!("Tool: ocibuild-{}", env!("CARGO_PKG_VERSION")) ],
        },
        "documentDescribes": [ "SPDXRef-Image" ],
        "packages": packages,
        "relationships": rels,
    })
}
