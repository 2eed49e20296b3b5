//! Hostile step records from a remote cache (`--cache-from`): a valid record for a layer the
//! cache holds, with one field mutated (the layer's digest pointing at another blob, a missing
//! one or a malformed string; its size; its media type; the diff id; the shape of the record;
//! huge strings; deep nesting; truncated bytes; a flipped byte), fed to the same import the
//! build runs for every remote lookup (`df::import_step_record`: parse, fetch with digest
//! check, size check, extract with diff-id check, keep). Never a panic; an adopted record
//! always describes its blob truthfully (digest, size, compression and diff id), so no wrong
//! image can come out of it; a refused one leaves no change dir or record behind; nothing is
//! ever written outside the store and the cache dir (the cache holds layers that climb out
//! with `..` and through symlinks). Each run prints its counts: cases, past the first parse
//! stage (the bytes were a step record), adopted.
//!
//! `OCIBUILD_PROPTEST_CASES` sets the case count (10,000 by default; `scripts/fuzz.sh cache`).
//! `hostile_cache_mount_records` runs a fifth as many cache-mount records (`RUN --mount=type=cache`
//! exports) through `mountcache::import`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use ocibuild_cache::local::LocalCache;
use ocibuild_engine::Event;
use ocibuild_engine::df::import_step_record;
use ocibuild_oci::Digest;
use ocibuild_oci::media::{
    Compression, DOCKER_LAYER_GZIP, OCI_CONFIG, OCI_LAYER_GZIP, OCI_LAYER_TAR, OCI_LAYER_ZSTD,
    layer_compression,
};
use ocibuild_oci::store::ContentStore;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};
use serde_json::{Value, json};

fn cases() -> u32 {
    std::env::var("OCIBUILD_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

const KEY: &str = "ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01";

/// One entry of a hand-made tar: (raw name bytes, kind, data or link target).
enum E<'a> {
    File(&'a [u8], &'a [u8]),
    Dir(&'a [u8]),
    Link(&'a [u8], &'a [u8]),
}

/// A tar written header by header with raw names (the `tar` crate refuses `..`; a hostile cache
/// does not).
fn tar_of(entries: &[E]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let mut h = tar::Header::new_ustar();
        let (name, data, link): (&[u8], &[u8], &[u8]) = match e {
            E::File(n, d) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                (n, d, b"")
            }
            E::Dir(n) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                (n, b"", b"")
            }
            E::Link(n, t) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                (n, b"", t)
            }
        };
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        h.set_size(data.len() as u64);
        h.set_mtime(0);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    g.write_all(b).unwrap();
    g.finish().unwrap()
}

/// A blob the remote cache holds: its bytes, how it is compressed and the digest of its tar.
struct Blob {
    name: &'static str,
    bytes: Vec<u8>,
    compression: Option<Compression>,
    diff_id: Option<Digest>,
}

fn blobs() -> Vec<Blob> {
    let good = tar_of(&[
        E::File(b"a.txt", b"hello"),
        E::Dir(b"dir"),
        E::File(b"dir/b", b"bee"),
        E::Link(b"link", b"a.txt"),
    ]);
    let other = tar_of(&[E::File(b"other.txt", b"another step's layer")]);
    let dotdot = tar_of(&[E::File(b"../../../escape.txt", b"out")]);
    let through = tar_of(&[E::Link(b"up", b"../../../.."), E::File(b"up/pwned", b"out")]);
    let abs = tar_of(&[E::Link(b"abs", b"/"), E::File(b"abs/pwned-abs", b"out")]);
    let tarblob = |name, t: Vec<u8>, gz: bool| Blob {
        name,
        diff_id: Some(Digest::of_bytes(&t)),
        compression: Some(if gz {
            Compression::Gzip
        } else {
            Compression::None
        }),
        bytes: if gz { gzip(&t) } else { t },
    };
    vec![
        tarblob("good", good.clone(), true),
        tarblob("good-uncompressed", good, false),
        tarblob("other", other, true),
        tarblob("dotdot", dotdot, true),
        tarblob("through-symlink", through, true),
        tarblob("absolute-symlink", abs, true),
        Blob {
            name: "junk",
            bytes: b"\x1f\x8b not really gzip at all".to_vec(),
            compression: None,
            diff_id: None,
        },
    ]
}

/// One field of the valid record changed.
#[derive(Debug, Clone)]
enum Mutation {
    None,
    /// The layer's digest: another blob of the cache (index), a digest the cache lacks, or a
    /// malformed string.
    Digest(DigestChoice),
    DiffId(DigestChoice),
    Size(Value),
    MediaType(String),
    /// The whole `layer` value replaced.
    Layer(Value),
    /// The descriptor replaced by another JSON value.
    Descriptor(Value),
    /// An extra field with a huge string, in the record or in the descriptor.
    Huge {
        in_descriptor: bool,
        len: usize,
    },
    /// `layer` nested this deep in arrays.
    Deep(usize),
    Truncate(usize),
    Flip(usize, u8),
    /// Not a mutation: a consistent record for another blob of the cache (the hostile layers
    /// among them), so their extraction is exercised too.
    Consistent(usize),
}

#[derive(Debug, Clone)]
enum DigestChoice {
    Blob(usize),
    Absent(u8),
    Raw(String),
}

fn json_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        "[ -~]{0,40}".prop_map(Value::String),
        Just(json!([])),
        Just(json!({})),
        Just(json!([1, 2, 3])),
        Just(json!({"mediaType": OCI_LAYER_GZIP})),
    ]
}

fn digest_choice(n_blobs: usize) -> impl Strategy<Value = DigestChoice> {
    prop_oneof![
        4 => (0..n_blobs).prop_map(DigestChoice::Blob),
        1 => any::<u8>().prop_map(DigestChoice::Absent),
        2 => prop_oneof![
            Just(String::new()),
            Just("sha256:".to_string()),
            Just("sha256:../../../../etc/passwd".to_string()),
            Just(format!("sha256:{}", "A".repeat(64))),
            Just(format!("sha512:{}", "a".repeat(128))),
            Just(format!("sha256:{}/..", "a".repeat(64))),
            "sha256:[0-9a-f]{0,70}",
            "[ -~]{0,80}",
        ]
        .prop_map(DigestChoice::Raw),
    ]
}

fn mutation(n_blobs: usize) -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => Just(Mutation::None),
        3 => digest_choice(n_blobs).prop_map(Mutation::Digest),
        2 => digest_choice(n_blobs).prop_map(Mutation::DiffId),
        2 => prop_oneof![
            json_value(),
            any::<u64>().prop_map(|n| json!(n)),
            (0u64..400).prop_map(|n| json!(n)),
            Just(json!(u64::MAX)),
            Just(json!(-1)),
        ]
        .prop_map(Mutation::Size),
        2 => prop_oneof![
            Just(OCI_LAYER_TAR.to_string()),
            Just(OCI_LAYER_ZSTD.to_string()),
            Just(DOCKER_LAYER_GZIP.to_string()),
            Just(OCI_CONFIG.to_string()),
            Just(String::new()),
            "[ -~]{0,60}",
        ]
        .prop_map(Mutation::MediaType),
        1 => json_value().prop_map(Mutation::Layer),
        1 => json_value().prop_map(Mutation::Descriptor),
        1 => (
            any::<bool>(),
            prop_oneof![9 => 1usize..100_000, 1 => 4_000_000usize..4_300_000]
        )
            .prop_map(|(in_descriptor, len)| Mutation::Huge { in_descriptor, len }),
        1 => (1usize..50_000).prop_map(Mutation::Deep),
        1 => (0usize..400).prop_map(Mutation::Truncate),
        1 => (0usize..400, 1u8..=255).prop_map(|(i, x)| Mutation::Flip(i, x)),
        1 => (0..n_blobs).prop_map(Mutation::Consistent),
    ]
}

fn digest_of(choice: &DigestChoice, blobs: &[Blob]) -> Value {
    match choice {
        DigestChoice::Blob(i) => json!(Digest::of_bytes(&blobs[*i].bytes).to_string()),
        DigestChoice::Absent(n) => json!(Digest::of_bytes(&[*n, 0xfe, 0xed]).to_string()),
        DigestChoice::Raw(s) => json!(s),
    }
}

fn record_bytes(m: &Mutation, blobs: &[Blob]) -> Vec<u8> {
    let good = &blobs[0];
    let mut desc = json!({
        "mediaType": OCI_LAYER_GZIP,
        "digest": Digest::of_bytes(&good.bytes).to_string(),
        "size": good.bytes.len(),
    });
    let mut diff = json!(good.diff_id.as_ref().unwrap().to_string());
    let mut rec = json!({});
    match m {
        Mutation::Digest(c) => desc["digest"] = digest_of(c, blobs),
        Mutation::DiffId(c) => diff = digest_of(c, blobs),
        Mutation::Size(v) => desc["size"] = v.clone(),
        Mutation::MediaType(t) => desc["mediaType"] = json!(t),
        Mutation::Descriptor(v) => desc = v.clone(),
        Mutation::Consistent(i) => {
            let b = &blobs[*i];
            desc["digest"] = json!(Digest::of_bytes(&b.bytes).to_string());
            desc["size"] = json!(b.bytes.len());
            if b.compression == Some(Compression::None) {
                desc["mediaType"] = json!(OCI_LAYER_TAR);
            }
            diff = json!(
                b.diff_id
                    .clone()
                    .unwrap_or_else(|| Digest::of_bytes(&b.bytes))
                    .to_string()
            );
        }
        Mutation::Huge { in_descriptor, len } => {
            let s = "x".repeat(*len);
            if *in_descriptor {
                desc["annotations"] = json!({ "huge": s });
            } else {
                rec["huge"] = json!(s);
            }
        }
        _ => {}
    }
    rec["layer"] = json!([desc, diff]);
    match m {
        Mutation::Layer(v) => rec["layer"] = v.clone(),
        Mutation::Deep(d) => {
            // serde_json's own recursion limit stops this: text, not a Value
            let inner = serde_json::to_string(&rec["layer"]).unwrap();
            return format!("{{\"layer\":{}{inner}{}}}", "[".repeat(*d), "]".repeat(*d))
                .into_bytes();
        }
        _ => {}
    }
    let mut bytes = serde_json::to_vec(&rec).unwrap();
    match m {
        Mutation::Truncate(n) => bytes.truncate(*n % (bytes.len() + 1)),
        Mutation::Flip(i, x) => {
            let i = *i % bytes.len();
            bytes[i] ^= x;
        }
        _ => {}
    }
    bytes
}

/// Every path under `root`, relative, sorted.
fn tree(root: &Path) -> BTreeSet<String> {
    walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .filter_map(|e| e.ok())
        .map(|e| {
            e.path()
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

#[test]
fn hostile_cache_records() {
    // every import fsyncs what it keeps: on a memory file system when there is one (10,000
    // cases take minutes of fsync on a loaded disk, seconds here)
    let shm = Path::new("/dev/shm");
    let top = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let remote = top.path().join("remote");
    let blobs = blobs();
    let mut by_digest: BTreeMap<Digest, usize> = BTreeMap::new();
    fs::create_dir_all(remote.join("blobs/sha256")).unwrap();
    for (i, b) in blobs.iter().enumerate() {
        let d = Digest::of_bytes(&b.bytes);
        fs::write(remote.join("blobs/sha256").join(d.hex()), &b.bytes).unwrap();
        by_digest.insert(d, i);
    }
    let remote_before = tree(&remote);
    let be = LocalCache::open(&remote, false).unwrap();
    let cases_dir = top.path().join("cases");
    fs::create_dir_all(&cases_dir).unwrap();
    let top_before = tree(top.path());

    let hostile_adopted = AtomicU64::new(0);
    let (n, parsed, adopted, no_layer) = (
        AtomicU64::new(0),
        AtomicU64::new(0),
        AtomicU64::new(0),
        AtomicU64::new(0),
    );
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/hostile_cache_records.proptest-regressions"
        )))),
        ..Config::default()
    });
    let result = runner.run(&mutation(blobs.len()), |m| {
        let i = n.fetch_add(1, Ordering::Relaxed);
        let bytes = record_bytes(&m, &blobs);
        let case = cases_dir.join(format!("c{i}"));
        let (store_dir, cache_dir) = (case.join("store"), case.join("cache"));
        fs::create_dir_all(&cache_dir).unwrap();
        let checked = (|| -> Result<(), TestCaseError> {
            let store = ContentStore::open(&store_dir).unwrap();
            let notes = Mutex::new(Vec::new());
            let ev = |e: Event| {
                if let Event::Note(s) = e {
                    notes.lock().unwrap().push(s);
                }
            };
            let got = import_step_record(&store, &cache_dir, KEY, &bytes, &be, &ev);
            let notes = notes.into_inner().unwrap();
            if !notes.iter().any(|s| s.contains("is not a step record")) {
                parsed.fetch_add(1, Ordering::Relaxed);
            }
            let dest = cache_dir.join(KEY);
            let record_file = cache_dir.join(format!("{KEY}.json"));
            let leftovers: Vec<String> = tree(&cache_dir)
                .into_iter()
                .filter(|p| p.starts_with(".step-"))
                .collect();
            prop_assert!(
                leftovers.is_empty(),
                "change dirs left behind: {leftovers:?}"
            );
            match &got {
                Ok(Some(layer)) => {
                    adopted.fetch_add(1, Ordering::Relaxed);
                    prop_assert!(dest.is_dir() && record_file.is_file());
                    match layer {
                        None => {
                            no_layer.fetch_add(1, Ordering::Relaxed);
                            prop_assert!(tree(&dest).is_empty());
                        }
                        Some((d, diff)) => {
                            // truthful: the blob the descriptor names, its size, its compression
                            // and the digest of its tar
                            let Some(&bi) = by_digest.get(&d.digest) else {
                                return Err(TestCaseError::fail(format!(
                                    "adopted a layer the cache does not hold: {d:?}"
                                )));
                            };
                            let b = &blobs[bi];
                            prop_assert_eq!(d.size, b.bytes.len() as u64, "size of {}", b.name);
                            prop_assert_eq!(
                                layer_compression(&d.media_type),
                                b.compression,
                                "media type {} for {}",
                                d.media_type,
                                b.name
                            );
                            prop_assert_eq!(
                                Some(diff),
                                b.diff_id.as_ref(),
                                "diff id of {}",
                                b.name
                            );
                            if !matches!(b.name, "good" | "good-uncompressed" | "other") {
                                hostile_adopted.fetch_add(1, Ordering::Relaxed);
                            }
                            if b.name.starts_with("good") {
                                prop_assert_eq!(fs::read(dest.join("a.txt")).unwrap(), b"hello");
                            }
                        }
                    }
                }
                Ok(None) | Err(_) => {
                    prop_assert!(!dest.exists(), "a refused record left {}", dest.display());
                    prop_assert!(!record_file.exists());
                    if let Err(e) = &got {
                        prop_assert!(!e.to_string().is_empty());
                    }
                }
            }
            if matches!(m, Mutation::None) {
                prop_assert!(
                    matches!(got, Ok(Some(Some(_)))),
                    "the valid record: {got:?}"
                );
            }
            // nothing outside the case's store and cache dir; the remote cache untouched
            let top_now = tree(top.path());
            let outside: Vec<&String> = top_now
                .iter()
                .filter(|p| !top_before.contains(*p) && !p.starts_with("cases/"))
                .collect();
            prop_assert!(outside.is_empty(), "written outside: {outside:?}");
            let mut case_top: Vec<String> = fs::read_dir(&case)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            case_top.sort();
            prop_assert_eq!(case_top, vec!["cache".to_string(), "store".to_string()]);
            // a hostile layer's files stay beneath the step's change dir (or nowhere)
            let landed: Vec<String> = tree(&case)
                .into_iter()
                .filter(|p| p.ends_with("escape.txt") || p.contains("pwned"))
                .filter(|p| !p.starts_with(&format!("cache/{KEY}/")))
                .collect();
            prop_assert!(
                landed.is_empty(),
                "hostile files outside the change dir: {landed:?}"
            );
            Ok(())
        })();
        let _ = fs::remove_dir_all(&case);
        checked
    });
    assert_eq!(tree(&remote), remote_before, "the remote cache was changed");
    eprintln!(
        "hostile cache records: {} cases, {} past the first parse stage (a step record), {} adopted ({} without a layer, {} hostile layers confined)",
        n.load(Ordering::Relaxed),
        parsed.load(Ordering::Relaxed),
        adopted.load(Ordering::Relaxed),
        no_layer.load(Ordering::Relaxed),
        hostile_adopted.load(Ordering::Relaxed)
    );
    if let Err(e) = result {
        panic!("hostile cache records: {e}");
    }
}

/// Regression (found by `hostile_cache_records`): a record naming the right blob with another
/// size was adopted, and the image's layer descriptor then carried the wrong size (registries
/// and validators refuse such a manifest). It is a miss now, with a note saying why.
#[test]
fn a_record_whose_size_is_not_the_blob_s_is_a_miss() {
    let top = tempfile::tempdir().unwrap();
    let remote = top.path().join("remote");
    let blobs = blobs();
    fs::create_dir_all(remote.join("blobs/sha256")).unwrap();
    let good = &blobs[0];
    let d = Digest::of_bytes(&good.bytes);
    fs::write(remote.join("blobs/sha256").join(d.hex()), &good.bytes).unwrap();
    let be = LocalCache::open(&remote, false).unwrap();
    for (size, adopted) in [
        (good.bytes.len() as u64 + 1, false),
        (good.bytes.len() as u64, true),
    ] {
        let case = top.path().join(format!("case-{size}"));
        let cache_dir = case.join("cache");
        fs::create_dir_all(&cache_dir).unwrap();
        let store = ContentStore::open(case.join("store")).unwrap();
        let rec = json!({"layer": [
            {"mediaType": OCI_LAYER_GZIP, "digest": d.to_string(), "size": size},
            good.diff_id.as_ref().unwrap().to_string()
        ]});
        let notes = Mutex::new(Vec::new());
        let ev = |e: Event| {
            if let Event::Note(s) = e {
                notes.lock().unwrap().push(s);
            }
        };
        let got = import_step_record(
            &store,
            &cache_dir,
            KEY,
            &serde_json::to_vec(&rec).unwrap(),
            &be,
            &ev,
        )
        .unwrap();
        assert_eq!(got.is_some(), adopted, "size {size}: {got:?}");
        assert_eq!(cache_dir.join(KEY).is_dir(), adopted);
        if !adopted {
            let notes = notes.into_inner().unwrap();
            assert!(
                notes
                    .iter()
                    .any(|n| n.contains(&format!("with size {size}, but the blob is"))),
                "{notes:?}"
            );
        }
    }
}

/// A cache-mount record (`RUN --mount=type=cache` exported with `--cache-to`) with the same
/// mutations, through `mountcache::import`: a mount is filled only from a blob that is what the
/// record says (digest, compression, diff id), never with a hostile layer's escapes, and a
/// refused record leaves the mount dir missing and nothing beside it.
fn mount_record_bytes(m: &Mutation, blobs: &[Blob]) -> Vec<u8> {
    let step: Value = match serde_json::from_slice(&record_bytes(m, blobs)) {
        Ok(v) => v,
        // truncated, flipped or too deep: the same bytes stand for the mount record
        Err(_) => return record_bytes(m, blobs),
    };
    let mut rec = json!({"kind": "cache-mount", "name": "npm", "lockfiles": ["package-lock.json"]});
    match &step["layer"] {
        Value::Array(a) if a.len() == 2 => {
            rec["layer"] = a[0].clone();
            rec["diff_id"] = a[1].clone();
        }
        other => rec["layer"] = other.clone(),
    }
    if let Some(h) = step.get("huge") {
        rec["name"] = h.clone();
    }
    serde_json::to_vec(&rec).unwrap()
}

#[test]
fn hostile_cache_mount_records() {
    let shm = Path::new("/dev/shm");
    let top = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let remote = top.path().join("remote");
    let blobs = blobs();
    let mut by_digest: BTreeMap<Digest, usize> = BTreeMap::new();
    fs::create_dir_all(remote.join("blobs/sha256")).unwrap();
    fs::create_dir_all(remote.join("index")).unwrap();
    for (i, b) in blobs.iter().enumerate() {
        let d = Digest::of_bytes(&b.bytes);
        fs::write(remote.join("blobs/sha256").join(d.hex()), &b.bytes).unwrap();
        by_digest.insert(d, i);
    }
    let cases_dir = top.path().join("cases");
    fs::create_dir_all(&cases_dir).unwrap();
    let (n, parsed, filled) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let mut runner = TestRunner::new(Config {
        // a fifth of the step records' count: the same mutations, a second consumer
        cases: cases() / 5,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/hostile_cache_records.proptest-regressions"
        )))),
        ..Config::default()
    });
    let result = runner.run(&mutation(blobs.len()), |m| {
        let i = n.fetch_add(1, Ordering::Relaxed);
        let bytes = mount_record_bytes(&m, &blobs);
        let index = remote.join("index").join(format!("{KEY}.json"));
        fs::write(&index, &bytes).unwrap();
        let case = cases_dir.join(format!("m{i}"));
        let store = ContentStore::open(case.join("store")).unwrap();
        let dir = case.join("mounts/npm");
        let notes = Mutex::new(Vec::new());
        let ev = |e: Event| {
            if let Event::Note(s) = e {
                notes.lock().unwrap().push(s);
            }
        };
        let from: Vec<Box<dyn ocibuild_cache::CacheBackend>> =
            vec![Box::new(LocalCache::open(&remote, false).unwrap())];
        let got = ocibuild_engine::mountcache::import(&store, &from, "npm", KEY, &dir, &ev);
        let checked = (|| -> Result<(), TestCaseError> {
            let notes = notes.into_inner().unwrap();
            if !notes
                .iter()
                .any(|s| s.contains("is not a cache-mount record"))
            {
                parsed.fetch_add(1, Ordering::Relaxed);
            }
            let beside: Vec<String> = tree(&case.join("mounts"))
                .into_iter()
                .filter(|p| p != "npm" && !p.starts_with("npm/"))
                .collect();
            prop_assert!(beside.is_empty(), "left beside the mount: {beside:?}");
            match &got {
                Ok(true) => {
                    filled.fetch_add(1, Ordering::Relaxed);
                    let rec: Value = serde_json::from_slice(&bytes).unwrap();
                    let d = Digest::parse(rec["layer"]["digest"].as_str().unwrap()).unwrap();
                    let Some(&bi) = by_digest.get(&d) else {
                        return Err(TestCaseError::fail("filled from a blob the cache lacks"));
                    };
                    let b = &blobs[bi];
                    prop_assert_eq!(
                        layer_compression(rec["layer"]["mediaType"].as_str().unwrap()),
                        b.compression
                    );
                    prop_assert_eq!(
                        Some(rec["diff_id"].as_str().unwrap().to_string()),
                        b.diff_id.as_ref().map(|d| d.to_string())
                    );
                    if b.name.starts_with("good") {
                        prop_assert_eq!(fs::read(dir.join("a.txt")).unwrap(), b"hello");
                    }
                }
                Ok(false) | Err(_) => {
                    prop_assert!(tree(&dir).is_empty(), "a refused record filled the mount");
                }
            }
            let landed: Vec<String> = tree(top.path())
                .into_iter()
                .filter(|p| p.ends_with("escape.txt") || p.contains("pwned"))
                .filter(|p| !p.starts_with(&format!("cases/m{i}/mounts/npm/")))
                .collect();
            prop_assert!(
                landed.is_empty(),
                "hostile files outside the mount: {landed:?}"
            );
            Ok(())
        })();
        let _ = fs::remove_dir_all(&case);
        checked
    });
    eprintln!(
        "hostile cache mount records: {} cases, {} past the first parse stage (a cache-mount record), {} filled a mount",
        n.load(Ordering::Relaxed),
        parsed.load(Ordering::Relaxed),
        filled.load(Ordering::Relaxed)
    );
    if let Err(e) = result {
        panic!("hostile cache mount records: {e}");
    }
}
