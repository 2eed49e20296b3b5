//! The SLSA Provenance v1 predicate (`https://slsa.dev/provenance/v1`), for `attest --type
//! slsaprovenance1` and `build --provenance`: the build calls [`Provenance::new`] with
//! what it knows (builder id and version, materials by digest, parameters — never secret values).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The predicate type URI.
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// ocibuild's build type.
pub const BUILD_TYPE: &str = "https://ocibuild.dev/build/v1";

/// A resource by URI and digest (`{"sha256": "…", "gitCommit": "…"}`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceDescriptor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub digest: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

impl ResourceDescriptor {
    /// `uri` with one digest (`alg`: `sha256`, `gitCommit`, …).
    pub fn new(uri: impl Into<String>, alg: &str, hex: &str) -> Self {
        let mut digest = BTreeMap::new();
        digest.insert(alg.to_string(), hex.to_string());
        Self {
            uri: Some(uri.into()),
            digest,
            ..Self::default()
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildDefinition {
    pub build_type: String,
    pub external_parameters: serde_json::Map<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_parameters: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolved_dependencies: Vec<ResourceDescriptor>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Builder {
    pub id: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub version: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub builder_dependencies: Vec<ResourceDescriptor>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invocation_id: Option<String>,
    /// RFC 3339 (`2026-01-02T03:04:05Z`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_on: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_on: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunDetails {
    pub builder: Builder,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BuildMetadata>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub byproducts: Vec<ResourceDescriptor>,
}

/// The predicate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    pub build_definition: BuildDefinition,
    pub run_details: RunDetails,
}

impl Provenance {
    /// A provenance predicate: `builder_id` (a URI naming the build platform), ocibuild's
    /// `version`, the `materials` (base images, toolchain roots, lockfiles, the source revision,
    /// each by digest) and the `parameters` (flags and build args; the caller leaves out
    /// secret values).
    pub fn new(
        builder_id: &str,
        version: &str,
        materials: Vec<ResourceDescriptor>,
        parameters: serde_json::Map<String, serde_json::Value>,
        metadata: Option<BuildMetadata>,
    ) -> Self {
        let mut v = BTreeMap::new();
        v.insert("ocibuild".to_string(), version.to_string());
        Provenance {
            build_definition: BuildDefinition {
                build_type: BUILD_TYPE.into(),
                external_parameters: parameters,
                internal_parameters: None,
                resolved_dependencies: materials,
            },
            run_details: RunDetails {
                builder: Builder {
                    id: builder_id.into(),
                    version: v,
                    builder_dependencies: Vec::new(),
                },
                metadata,
                byproducts: Vec::new(),
            },
        }
    }
}
