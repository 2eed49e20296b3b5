//! Hostile manifests, indexes and configs as a registry could send them: a valid document with
//! one field mutated (wrong media type, schema version, malformed or foreign digest, negative or
//! huge size, a wrong JSON type, deep nesting, a huge string, truncated bytes, a flipped byte).
//! The parsers return a value or a clear error; never a panic or a stack overflow. Each run
//! prints how many cases got past the first parse stage (the bytes were JSON at all).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};

use ocibuild_oci::digest::Digest;
use ocibuild_oci::image::{Descriptor, diff_ids, parse_index, parse_manifest};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};
use serde_json::{Value, json};

fn cases() -> u32 {
    std::env::var("OCIBUILD_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

fn digest(n: u8) -> String {
    Digest::of_bytes(&[n]).to_string()
}

fn manifest() -> Value {
    json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(1), "size": 12},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest(2), "size": 100},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": digest(3), "size": 200}
        ],
        "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"}
    })
}

fn index() -> Value {
    json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest(4), "size": 500,
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest(5), "size": 501,
             "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}}
        ]
    })
}

fn config() -> Value {
    json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/usr/bin"], "Entrypoint": ["/app"]},
        "rootfs": {"type": "layers", "diff_ids": [digest(6), digest(7)]},
        "history": [{"created_by": "x"}]
    })
}

/// A replacement value for a field.
fn hostile_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        Just(json!(-1)),
        Just(json!(u64::MAX)),
        Just(json!(1.5e300)),
        Just(json!("")),
        Just(json!("sha256:zz")),
        Just(json!("sha512:abcd")),
        Just(json!(format!("md5:{}", "a".repeat(32)))),
        Just(json!(
            "application/vnd.docker.distribution.manifest.v1+prettyjws"
        )),
        Just(json!("application/vnd.oci.image.index.v1+json")),
        Just(json!("text/html")),
        Just(json!(1)),
        Just(json!(3)),
        Just(json!([])),
        Just(json!({})),
        Just(json!("x".repeat(1 << 16))),
        (1usize..400).prop_map(|d| {
            let mut v = json!(0);
            for _ in 0..d {
                v = json!([v]);
            }
            v
        }),
        any::<String>().prop_map(Value::String),
        any::<i64>().prop_map(|n| json!(n)),
    ]
}

/// Every path (object keys and array indexes) in `v`.
fn paths(v: &Value, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let mut p = prefix.clone();
                p.push(k.clone());
                out.push(p.clone());
                paths(x, p, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let mut p = prefix.clone();
                p.push(i.to_string());
                out.push(p.clone());
                paths(x, p, out);
            }
        }
        _ => {}
    }
}

fn set(v: &mut Value, path: &[String], new: Option<Value>) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = v;
    for p in parents {
        cur = match cur {
            Value::Object(m) => m.get_mut(p).unwrap(),
            Value::Array(a) => &mut a[p.parse::<usize>().unwrap()],
            _ => return,
        };
    }
    match (cur, new) {
        (Value::Object(m), Some(n)) => {
            m.insert(last.clone(), n);
        }
        (Value::Object(m), None) => {
            m.remove(last);
        }
        (Value::Array(a), Some(n)) => a[last.parse::<usize>().unwrap()] = n,
        (Value::Array(a), None) => {
            a.remove(last.parse::<usize>().unwrap());
        }
        _ => {}
    }
}

#[derive(Clone, Debug)]
enum ByteMutation {
    None,
    Truncate(u16),
    Flip(u16, u8),
    /// Deep nesting spliced in as raw text (beyond serde_json's own recursion limit).
    DeepRaw(usize),
}

fn byte_mutation() -> impl Strategy<Value = ByteMutation> {
    prop_oneof![
        4 => Just(ByteMutation::None),
        1 => (0u16..1000).prop_map(ByteMutation::Truncate),
        1 => (0u16..1000, 1u8..=255).prop_map(|(a, b)| ByteMutation::Flip(a, b)),
        1 => (100usize..100_000).prop_map(ByteMutation::DeepRaw),
    ]
}

fn run(label: &str, base: fn() -> Value, parse: fn(&[u8]) -> Result<(), String>) {
    let (cases_n, json_ok, parsed) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let mut all = Vec::new();
    paths(&base(), Vec::new(), &mut all);
    let n_paths = all.len();
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/hostile_json.proptest-regressions"
        )))),
        ..Config::default()
    });
    let strategy = (
        0..n_paths,
        prop::option::weighted(0.8, hostile_value()),
        byte_mutation(),
    );
    let result = runner.run(&strategy, |(i, new, bm)| {
        cases_n.fetch_add(1, Ordering::Relaxed);
        let mut v = base();
        set(&mut v, &all[i], new);
        let mut bytes = serde_json::to_vec(&v).unwrap();
        match bm {
            ByteMutation::None => {}
            ByteMutation::Truncate(pm) => bytes.truncate(bytes.len() * usize::from(pm) / 1000),
            ByteMutation::Flip(pm, x) => {
                let at = (bytes.len() * usize::from(pm) / 1000).min(bytes.len() - 1);
                bytes[at] ^= x;
            }
            ByteMutation::DeepRaw(d) => {
                let mut s = String::from(r#"{"schemaVersion":2,"annotations":"#);
                s.push_str(&"[".repeat(d));
                s.push_str(&"]".repeat(d));
                s.push('}');
                bytes = s.into_bytes();
            }
        }
        if serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_ok() {
            json_ok.fetch_add(1, Ordering::Relaxed);
        }
        match parse(&bytes) {
            Ok(()) => {
                parsed.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => prop_assert!(!e.is_empty()),
        }
        Ok(())
    });
    eprintln!(
        "hostile {label}: {} cases, {} past the first parse stage (JSON), {} accepted",
        cases_n.load(Ordering::Relaxed),
        json_ok.load(Ordering::Relaxed),
        parsed.load(Ordering::Relaxed)
    );
    if let Err(e) = result {
        panic!("{label}: {e}");
    }
}

fn desc(mt: &str) -> Descriptor {
    Descriptor::new(mt, Digest::of_bytes(b"doc"), 1)
}

#[test]
fn hostile_manifests() {
    run("manifests", manifest, |b| {
        parse_manifest(
            b,
            &desc("application/vnd.oci.image.manifest.v1+json"),
            "the test source",
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    });
}

#[test]
fn hostile_indexes() {
    run("indexes", index, |b| {
        parse_index(
            b,
            &desc("application/vnd.oci.image.index.v1+json"),
            "the test source",
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    });
}

#[test]
fn hostile_configs() {
    run("configs", config, |b| {
        let v: Value = serde_json::from_slice(b).map_err(|e| e.to_string())?;
        diff_ids(&v).map(|_| ()).map_err(|e| e.to_string())
    });
}
