//! Validation of CycloneDX 1.6 and SPDX 2.3 JSON documents against the official schemas, which
//! are compiled in (nothing is fetched).

use serde_json::Value;

use crate::{Result, SbomError};

const CDX_16: &str = include_str!("../schemas/bom-1.6.schema.json");
const CDX_SPDX: &str = include_str!("../schemas/spdx.schema.json");
const CDX_JSF: &str = include_str!("../schemas/jsf-0.82.schema.json");
const SPDX_23: &str = include_str!("../schemas/spdx-2.3.schema.json");

/// Which format a document is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    CycloneDx16,
    Spdx23,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::CycloneDx16 => "CycloneDX 1.6",
            Format::Spdx23 => "SPDX 2.3",
        }
    }
}

/// One place a document breaks its schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer into the document (`/components/3/purl`; empty for the root).
    pub pointer: String,
    pub message: String,
}

fn parse_schema(text: &str, what: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| SbomError::Json {
        what: format!("the bundled {what} schema"),
        source: e,
    })
}

/// Tell the format from the document's own fields.
pub fn detect(doc: &Value) -> Result<Format> {
    if doc.get("bomFormat").and_then(Value::as_str) == Some("CycloneDX") {
        return match doc.get("specVersion").and_then(Value::as_str) {
            Some("1.6") => Ok(Format::CycloneDx16),
            other => Err(SbomError::Invalid {
                what: "the CycloneDX document".into(),
                detail: format!(
                    "specVersion is {}; only 1.6 is supported (regenerate it with `ocibuild sbom IMAGE --format cyclonedx`)",
                    other.map_or("missing".to_string(), |v| format!("`{v}`"))
                ),
            }),
        };
    }
    if let Some(v) = doc.get("spdxVersion").and_then(Value::as_str) {
        return if v == "SPDX-2.3" {
            Ok(Format::Spdx23)
        } else {
            Err(SbomError::Invalid {
                what: "the SPDX document".into(),
                detail: format!("spdxVersion is `{v}`; only SPDX-2.3 is supported"),
            })
        };
    }
    Err(SbomError::Invalid {
        what: "the document".into(),
        detail: "it is neither CycloneDX (no `bomFormat: CycloneDX`) nor SPDX (no `spdxVersion`)"
            .into(),
    })
}

/// Validate a document against its schema: every violation, in document order.
pub fn validate(doc: &Value) -> Result<(Format, Vec<Violation>)> {
    let format = detect(doc)?;
    let build_err = |e: String| SbomError::Invalid {
        what: format!("the bundled {} schema", format.name()),
        detail: e,
    };
    let violations = match format {
        Format::CycloneDx16 => {
            let root = parse_schema(CDX_16, "CycloneDX 1.6")?;
            let spdx_ids = parse_schema(CDX_SPDX, "CycloneDX SPDX licence list")?;
            let jsf = parse_schema(CDX_JSF, "JSF")?;
            let registry = jsonschema::Registry::new()
                .add("http://cyclonedx.org/schema/spdx.schema.json", spdx_ids)
                .and_then(|r| r.add("http://cyclonedx.org/schema/jsf-0.82.schema.json", jsf))
                .and_then(|r| r.prepare())
                .map_err(|e| build_err(e.to_string()))?;
            let v = jsonschema::options()
                .with_registry(&registry)
                .should_validate_formats(true)
                .build(&root)
                .map_err(|e| build_err(e.to_string()))?;
            collect(&v, doc)
        }
        Format::Spdx23 => {
            let root = parse_schema(SPDX_23, "SPDX 2.3")?;
            let v = jsonschema::options()
                .build(&root)
                .map_err(|e| build_err(e.to_string()))?;
            collect(&v, doc)
        }
    };
    Ok((format, violations))
}

fn collect(v: &jsonschema::Validator, doc: &Value) -> Vec<Violation> {
    let mut out: Vec<Violation> = v
        .iter_errors(doc)
        .map(|e| Violation {
            pointer: e.instance_path().to_string(),
            message: e.to_string(),
        })
        .collect();
    out.sort_by(|a, b| a.pointer.cmp(&b.pointer).then(a.message.cmp(&b.message)));
    out.dedup();
    out
}
