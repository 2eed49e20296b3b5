//! The SLSA Provenance v1 predicate ocibuild writes, validated by Python's `jsonschema` (from
//! PyPI) against the predicate schema in testdata — and a broken one rejected, so the check can
//! fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ocibuild_sign::slsa::{BuildMetadata, PREDICATE_TYPE, Provenance, ResourceDescriptor};
use ocibuild_testkit::oracles::{json_schema_errors, slsa_provenance_schema};
use serde_json::json;

fn errors(doc: &serde_json::Value) -> Vec<String> {
    json_schema_errors(&slsa_provenance_schema(), doc)
}

#[test]
fn provenance_predicate_validates_against_the_slsa_v1_schema() {
    let mut params = serde_json::Map::new();
    params.insert("context".into(), json!("."));
    params.insert("build-args".into(), json!({"VERSION": "1.2.3"}));
    params.insert("platforms".into(), json!(["linux/amd64", "linux/arm64"]));
    let base = ResourceDescriptor {
        name: Some("base".into()),
        ..ResourceDescriptor::new(
            format!("pkg:oci/static@sha256:{}", "a".repeat(64)),
            "sha256",
            &"a".repeat(64),
        )
    };
    let source = ResourceDescriptor::new(
        "git+https://example.invalid/app@refs/heads/main",
        "gitCommit",
        "0123456789abcdef0123456789abcdef01234567",
    );
    let lock = ResourceDescriptor::new("file:package-lock.json", "sha256", &"b".repeat(64));
    let p = Provenance::new(
        "https://ci.example.invalid/ocibuild",
        "0.1.0",
        vec![base, source, lock],
        params,
        Some(BuildMetadata {
            invocation_id: Some("build-42".into()),
            started_on: Some("2026-01-02T03:04:05Z".into()),
            finished_on: Some("2026-01-02T03:05:06Z".into()),
        }),
    );
    let doc = serde_json::to_value(&p).unwrap();
    assert_eq!(errors(&doc), Vec::<String>::new(), "{doc:#}");
    assert_eq!(PREDICATE_TYPE, "https://slsa.dev/provenance/v1");
    assert_eq!(doc["runDetails"]["builder"]["version"]["ocibuild"], "0.1.0");
    let back: Provenance = serde_json::from_value(doc.clone()).unwrap();
    assert_eq!(back, p);

    // the schema does reject what is wrong: no builder id, a bad digest, a bad timestamp
    let mut bad = doc.clone();
    bad["runDetails"]["builder"]
        .as_object_mut()
        .unwrap()
        .remove("id");
    bad["buildDefinition"]["resolvedDependencies"][0]["digest"]["sha256"] = json!("xyz");
    bad["runDetails"]["metadata"]["startedOn"] = json!("yesterday");
    let e = errors(&bad);
    assert_eq!(e.len(), 3, "{e:?}");
}
