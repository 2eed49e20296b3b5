//! CycloneDX 1.6 JSON. Deterministic: components sorted, the serial number derived from the
//! manifest digest, the timestamp the image config's `created`.

use serde_json::{Value, json};

use crate::{Component, License, Sbom};

pub const MEDIA_TYPE: &str = "application/vnd.cyclonedx+json";

/// `urn:uuid:` from the first 128 bits of the manifest digest (version 5 and variant bits set,
/// as a name-based UUID has them).
pub fn serial_number(digest_hex: &str) -> String {
    let mut h: Vec<char> = digest_hex
        .chars()
        .chain(std::iter::repeat('0'))
        .take(32)
        .collect();
    h[12] = '5';
    h[16] = match h[16].to_digit(16).unwrap_or(0) & 0x3 {
        0 => '8',
        1 => '9',
        2 => 'a',
        _ => 'b',
    };
    let s: String = h.into_iter().collect::<String>().to_ascii_lowercase();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &s[0..8],
        &s[8..12],
        &s[12..16],
        &s[16..20],
        &s[20..32]
    )
}

/// RFC 3339 as JSON schema's `date-time` wants it, or nothing.
pub(crate) fn timestamp(created: Option<&str>) -> Option<String> {
    let c = created?;
    let b = c.as_bytes();
    let ok = b.len() >= 20
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[7] == b'-'
        && (b[10] == b'T' || b[10] == b't')
        && b[13] == b':'
        && (c.ends_with('Z') || c.ends_with('z') || c[19..].contains(['+', '-']));
    if !ok {
        return None;
    }
    if c.ends_with('Z') || c.ends_with('z') {
        // seconds precision, UTC: what SPDX's `created` requires and CycloneDX accepts
        return Some(format!("{}Z", &c[..19]));
    }
    Some(c.to_string())
}

pub(crate) fn bom_ref(c: &Component) -> String {
    format!("{}#{}", c.purl, c.path)
}

fn licenses(ls: &[License]) -> Option<Value> {
    if ls.is_empty() {
        return None;
    }
    let all_spdx: Vec<&str> = ls
        .iter()
        .filter_map(|l| match l {
            License::Spdx(e) => Some(e.as_str()),
            License::Unknown(_) => None,
        })
        .collect();
    if all_spdx.len() == ls.len() {
        let expr = if all_spdx.len() == 1 {
            all_spdx[0].to_string()
        } else {
            all_spdx
                .iter()
                .map(|e| {
                    if e.contains(' ') {
                        format!("({e})")
                    } else {
                        e.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join(" AND ")
        };
        return Some(json!([{ "expression": expr }]));
    }
    // a mix with unknown names: CycloneDX cannot put an expression beside licences, so each
    // is a named licence
    Some(Value::Array(
        ls.iter()
            .map(|l| match l {
                License::Spdx(e) | License::Unknown(e) => json!({ "license": { "name": e } }),
            })
            .collect(),
    ))
}

fn component(c: &Component) -> Value {
    let mut props = vec![
        json!({ "name": "ocibuild:layer", "value": c.layer }),
        json!({ "name": "ocibuild:path", "value": c.path }),
    ];
    for (k, v) in &c.properties {
        props.push(json!({ "name": k, "value": v }));
    }
    let mut o = json!({
        "type": "library",
        "bom-ref": bom_ref(c),
        "name": c.name,
        "purl": c.purl,
        "properties": props,
    });
    if let Some(obj) = o.as_object_mut() {
        if c.ecosystem == crate::Ecosystem::Maven
            && let Some((g, a)) = c.name.split_once(':')
        {
            obj.insert("group".into(), json!(g));
            obj.insert("name".into(), json!(a));
        }
        if !c.version.is_empty() {
            obj.insert("version".into(), json!(c.version));
        }
        if let Some(l) = licenses(&c.licenses) {
            obj.insert("licenses".into(), l);
        }
        if !c.hashes.is_empty() {
            obj.insert(
                "hashes".into(),
                Value::Array(
                    c.hashes
                        .iter()
                        .map(|(alg, h)| json!({ "alg": alg, "content": h }))
                        .collect(),
                ),
            );
        }
    }
    o
}

/// The CycloneDX 1.6 document of an SBOM.
pub fn document(sbom: &Sbom) -> Value {
    let img = &sbom.image;
    let mut image_props = vec![
        json!({ "name": "ocibuild:manifest-digest", "value": img.manifest_digest.to_string() }),
    ];
    if let Some(p) = &img.platform {
        image_props.push(json!({ "name": "ocibuild:platform", "value": p.to_string() }));
    }
    if let (Some(id), Some(v)) = (&img.os_id, &img.os_version_id) {
        image_props.push(json!({ "name": "ocibuild:os", "value": format!("{id}-{v}") }));
    }
    let mut metadata = json!({
        "tools": { "components": [ {
            "type": "application",
            "name": "ocibuild",
            "version": env!("CARGO_PKG_VERSION"),
        } ] },
        "component": {
            "type": "container",
            "bom-ref": "image",
            "name": img.name,
            "version": img.manifest_digest.to_string(),
            "properties": image_props,
        },
    });
    if let (Some(ts), Some(obj)) = (timestamp(img.created.as_deref()), metadata.as_object_mut()) {
        obj.insert("timestamp".into(), json!(ts));
    }
    let comps: Vec<Value> = sbom.components.iter().map(component).collect();
    let refs: Vec<String> = sbom.components.iter().map(bom_ref).collect();
    let mut deps = vec![json!({ "ref": "image", "dependsOn": refs })];
    deps.extend(refs.iter().map(|r| json!({ "ref": r })));
    json!({
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": serial_number(img.manifest_digest.hex()),
        "version": 1,
        "metadata": metadata,
        "components": comps,
        "dependencies": deps,
    })
}
