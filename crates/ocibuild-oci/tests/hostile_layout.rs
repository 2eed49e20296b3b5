//! Hostile OCI layouts (`oci:` directories and `oci-archive:` tars of them), structure-aware: a
//! valid two-layer image layout with one thing made hostile — `oci-layout`, a field of
//! `index.json`, or the manifest or config (re-hashed and re-linked so the change gets past
//! digest checks and into the parsers), or a blob replaced, truncated, removed, turned into a
//! symlink out of the layout or a directory. Opening, loading and validating never panic and
//! never write; every error is non-empty and names the layout. Each run prints how many cases got
//! past the first parse stage (`oci-layout` and `index.json`: the source opened).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use ocibuild_oci::Digest;
use ocibuild_oci::image::{
    Descriptor, ImageSource, config_bytes, load_image, new_manifest, to_json_bytes,
};
use ocibuild_oci::layout::{ArchiveSource, LayoutSource, StoreSource, write_layout};
use ocibuild_oci::media;
use ocibuild_oci::store::ContentStore;
use ocibuild_oci::validate::{ValidateOptions, validate};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};
use serde_json::{Value, json};

fn cases() -> u32 {
    std::env::var("OCIBUILD_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_cksum();
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// The template layout: a two-layer image tagged `v1`.
fn template(dir: &Path) -> PathBuf {
    let store = ContentStore::open(dir.join("store")).unwrap();
    let mut layers = vec![];
    let mut diff_ids = vec![];
    for l in [
        tar_of(&[("etc/a", b"first layer\n")]),
        tar_of(&[("etc/b", b"second\n"), ("bin/x", b"#!/bin/sh\n")]),
    ] {
        let gz = gzip(&l);
        let d = store.put_bytes(&gz).unwrap();
        layers.push(Descriptor::new(media::OCI_LAYER_GZIP, d, gz.len() as u64));
        diff_ids.push(Digest::of_bytes(&l).to_string());
    }
    let config = json!({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/x"]},
                        "rootfs": {"type": "layers", "diff_ids": diff_ids},
                        "history": [{"created_by": "a"}, {"created_by": "b"}]});
    let cb = config_bytes(&config).unwrap();
    let cd = store.put_bytes(&cb).unwrap();
    let m = new_manifest(
        Descriptor::new(media::OCI_CONFIG, cd, cb.len() as u64),
        layers,
        BTreeMap::new(),
    );
    let mb = to_json_bytes(&m, "manifest").unwrap();
    let md = store.put_bytes(&mb).unwrap();
    let src = StoreSource::new(
        store.clone(),
        Descriptor::new(media::OCI_MANIFEST, md, mb.len() as u64),
        "template",
    );
    let img = load_image(&src, None).unwrap();
    let out = dir.join("template");
    write_layout(&out, Some("v1"), &src, &img).unwrap();
    out
}

fn hostile_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        Just(json!(-1)),
        Just(json!(u64::MAX)),
        Just(json!("")),
        Just(json!("sha256:zz")),
        Just(json!(format!("sha256:{}", "0".repeat(64)))),
        Just(json!("sha256:../../../../etc/passwd")),
        Just(json!("sha512:abcd")),
        Just(json!("application/vnd.oci.image.index.v1+json")),
        Just(json!(
            "application/vnd.docker.distribution.manifest.v2+json"
        )),
        Just(json!("application/vnd.oci.image.layer.v1.tar+zstd")),
        Just(json!("text/html")),
        Just(json!(1)),
        Just(json!(3)),
        Just(json!("2.0.0")),
        Just(json!([])),
        Just(json!({})),
        Just(json!("x".repeat(1 << 16))),
        (1usize..300).prop_map(|d| {
            let mut v = json!(0);
            for _ in 0..d {
                v = json!([v]);
            }
            v
        }),
        any::<String>().prop_map(Value::String),
    ]
}

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

/// Which JSON document a mutation edits.
#[derive(Clone, Copy, Debug)]
enum Doc {
    OciLayout,
    Index,
    /// Re-hashed and re-linked from the index, so it passes digest checks.
    Manifest,
    /// Re-hashed and re-linked from a rewritten manifest.
    Config,
}

#[derive(Clone, Debug)]
enum BlobHarm {
    Remove,
    Truncate(u16),
    Flip(u16, u8),
    /// Replaced by another blob of the layout.
    Swap(usize),
    SymlinkOut,
    Directory,
    /// A gzip layer that inflates to far more than it is (1 MiB of zeros).
    Inflate,
}

#[derive(Clone, Debug)]
enum Mutation {
    Json(Doc, usize, Option<Value>),
    Raw(Doc, Vec<u8>),
    Blob(usize, BlobHarm),
}

fn doc() -> impl Strategy<Value = Doc> {
    prop_oneof![
        1 => Just(Doc::OciLayout),
        2 => Just(Doc::Index),
        2 => Just(Doc::Manifest),
        1 => Just(Doc::Config),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        6 => (doc(), 0usize..64, prop::option::weighted(0.8, hostile_value()))
            .prop_map(|(d, i, v)| Mutation::Json(d, i, v)),
        1 => (doc(), prop_oneof![
            Just(Vec::new()),
            Just(b"{".to_vec()),
            Just(b"null".to_vec()),
            Just(b"[]".to_vec()),
            Just(vec![b'['; 100_000]),
            Just(vec![0xff, 0xfe]),
        ]).prop_map(|(d, b)| Mutation::Raw(d, b)),
        3 => (0usize..8, prop_oneof![
            Just(BlobHarm::Remove),
            (0u16..1000).prop_map(BlobHarm::Truncate),
            (0u16..1000, 1u8..=255).prop_map(|(a, b)| BlobHarm::Flip(a, b)),
            (0usize..8).prop_map(BlobHarm::Swap),
            Just(BlobHarm::SymlinkOut),
            Just(BlobHarm::Directory),
            Just(BlobHarm::Inflate),
        ]).prop_map(|(i, h)| Mutation::Blob(i, h)),
    ]
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            fs::copy(e.path(), dest).unwrap();
        }
    }
}

fn blob_path(dir: &Path, d: &str) -> PathBuf {
    let (alg, hex) = d.split_once(':').unwrap();
    dir.join("blobs").join(alg).join(hex)
}

/// Write `bytes` as a blob, returning its digest string.
fn put_blob(dir: &Path, bytes: &[u8]) -> String {
    let d = Digest::of_bytes(bytes).to_string();
    fs::write(blob_path(dir, &d), bytes).unwrap();
    d
}

fn mutate_json(v: &mut Value, i: usize, new: Option<Value>) {
    let mut all = Vec::new();
    paths(v, Vec::new(), &mut all);
    if !all.is_empty() {
        set(v, &all[i % all.len()], new);
    }
}

/// Apply `m` to the layout copy in `dir`.
fn apply(dir: &Path, m: &Mutation) {
    let index_p = dir.join("index.json");
    let mut index: Value = serde_json::from_slice(&fs::read(&index_p).unwrap()).unwrap();
    let man_d = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let mut manifest: Value =
        serde_json::from_slice(&fs::read(blob_path(dir, &man_d)).unwrap()).unwrap();
    let cfg_d = manifest["config"]["digest"].as_str().unwrap().to_string();
    let blobs: Vec<String> = {
        let mut v = vec![man_d.clone(), cfg_d.clone()];
        for l in manifest["layers"].as_array().unwrap() {
            v.push(l["digest"].as_str().unwrap().to_string());
        }
        v
    };
    // a new manifest (its bytes) relinked from the index
    let relink_manifest = |dir: &Path, index: &mut Value, bytes: &[u8]| {
        let d = put_blob(dir, bytes);
        index["manifests"][0]["digest"] = json!(d);
        index["manifests"][0]["size"] = json!(bytes.len());
        fs::write(dir.join("index.json"), serde_json::to_vec(index).unwrap()).unwrap();
    };
    match m.clone() {
        Mutation::Json(Doc::OciLayout, i, new) => {
            let mut v = json!({"imageLayoutVersion": "1.0.0"});
            mutate_json(&mut v, i, new);
            fs::write(dir.join("oci-layout"), serde_json::to_vec(&v).unwrap()).unwrap();
        }
        Mutation::Json(Doc::Index, i, new) => {
            mutate_json(&mut index, i, new);
            fs::write(&index_p, serde_json::to_vec(&index).unwrap()).unwrap();
        }
        Mutation::Json(Doc::Manifest, i, new) => {
            mutate_json(&mut manifest, i, new);
            relink_manifest(dir, &mut index, &serde_json::to_vec(&manifest).unwrap());
        }
        Mutation::Json(Doc::Config, i, new) => {
            let mut cfg: Value =
                serde_json::from_slice(&fs::read(blob_path(dir, &cfg_d)).unwrap()).unwrap();
            mutate_json(&mut cfg, i, new);
            let bytes = serde_json::to_vec(&cfg).unwrap();
            let d = put_blob(dir, &bytes);
            manifest["config"]["digest"] = json!(d);
            manifest["config"]["size"] = json!(bytes.len());
            relink_manifest(dir, &mut index, &serde_json::to_vec(&manifest).unwrap());
        }
        Mutation::Raw(Doc::OciLayout, b) => fs::write(dir.join("oci-layout"), b).unwrap(),
        Mutation::Raw(Doc::Index, b) => fs::write(&index_p, b).unwrap(),
        Mutation::Raw(Doc::Manifest, b) => relink_manifest(dir, &mut index, &b),
        Mutation::Raw(Doc::Config, b) => {
            let d = put_blob(dir, &b);
            manifest["config"]["digest"] = json!(d);
            manifest["config"]["size"] = json!(b.len());
            relink_manifest(dir, &mut index, &serde_json::to_vec(&manifest).unwrap());
        }
        Mutation::Blob(i, harm) => {
            let p = blob_path(dir, &blobs[i % blobs.len()]);
            match harm {
                BlobHarm::Remove => fs::remove_file(&p).unwrap(),
                BlobHarm::Truncate(pm) => {
                    let b = fs::read(&p).unwrap();
                    fs::write(&p, &b[..b.len() * usize::from(pm) / 1000]).unwrap();
                }
                BlobHarm::Flip(pm, x) => {
                    let mut b = fs::read(&p).unwrap();
                    let at = (b.len() * usize::from(pm) / 1000).min(b.len() - 1);
                    b[at] ^= x;
                    fs::write(&p, b).unwrap();
                }
                BlobHarm::Swap(j) => {
                    let other = fs::read(blob_path(dir, &blobs[j % blobs.len()])).unwrap();
                    fs::write(&p, other).unwrap();
                }
                BlobHarm::SymlinkOut => {
                    fs::remove_file(&p).unwrap();
                    std::os::unix::fs::symlink("/etc/passwd", &p).unwrap();
                }
                BlobHarm::Directory => {
                    fs::remove_file(&p).unwrap();
                    fs::create_dir(&p).unwrap();
                }
                BlobHarm::Inflate => {
                    // a layer whose diff_id and digest both match: the bomb is "valid"
                    let big = tar_of(&[("zeros", &vec![0u8; 1 << 20])]);
                    let gz = gzip(&big);
                    let d = put_blob(dir, &gz);
                    manifest["layers"][0]["digest"] = json!(d);
                    manifest["layers"][0]["size"] = json!(gz.len());
                    relink_manifest(dir, &mut index, &serde_json::to_vec(&manifest).unwrap());
                }
            }
        }
    }
}

/// The paths under `dir` with their sizes (what must not change while reading).
fn snapshot(dir: &Path) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            (
                e.path().display().to_string(),
                fs::symlink_metadata(e.path()).map(|m| m.len()).unwrap_or(0),
            )
        })
        .collect();
    out.sort();
    out
}

/// Open, load and validate; `(opened, validated)`.
fn read_all(src: Result<Box<dyn ImageSource>, String>) -> Result<(bool, bool), TestCaseError> {
    let src = match src {
        Ok(s) => s,
        Err(e) => {
            prop_assert!(!e.is_empty());
            return Ok((false, false));
        }
    };
    let described = src.describe();
    match load_image(src.as_ref(), None) {
        Ok(_) => {}
        Err(e) => {
            prop_assert!(!e.to_string().is_empty());
        }
    }
    match validate(src.as_ref(), &ValidateOptions::default()) {
        Ok(_) => Ok((true, true)),
        Err(e) => {
            let e = e.to_string();
            prop_assert!(!e.is_empty(), "{}", described);
            Ok((true, false))
        }
    }
}

fn run(label: &str, archive: bool) {
    let t = tempfile::tempdir().unwrap();
    let tpl = template(t.path());
    let case_dir = t.path().join("case");
    let tar_file = t.path().join("case.tar");
    let (n, opened, valid) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/hostile_layout.proptest-regressions"
        )))),
        ..Config::default()
    });
    let result = runner.run(&mutation(), |m| {
        n.fetch_add(1, Ordering::Relaxed);
        let _ = fs::remove_dir_all(&case_dir);
        copy_dir(&tpl, &case_dir);
        apply(&case_dir, &m);
        if archive {
            // the layout as an oci-archive (a symlinked or directory blob is kept as such)
            let mut b = tar::Builder::new(Vec::new());
            b.follow_symlinks(false);
            b.append_dir_all(".", &case_dir).unwrap();
            fs::write(&tar_file, b.into_inner().unwrap()).unwrap();
        }
        let before = snapshot(t.path());
        let src: Result<Box<dyn ImageSource>, String> = if archive {
            ArchiveSource::open(&tar_file, Some("v1"))
                .map(|s| Box::new(s) as Box<dyn ImageSource>)
                .map_err(|e| e.to_string())
        } else {
            LayoutSource::open(&case_dir, Some("v1"))
                .map(|s| Box::new(s) as Box<dyn ImageSource>)
                .map_err(|e| e.to_string())
        };
        let (o, v) = read_all(src)?;
        opened.fetch_add(u64::from(o), Ordering::Relaxed);
        valid.fetch_add(u64::from(v), Ordering::Relaxed);
        prop_assert_eq!(before, snapshot(t.path()), "reading wrote something");
        Ok(())
    });
    eprintln!(
        "hostile {label}: {} cases, {} past the first parse stage (oci-layout and index.json), \
         {} validated",
        n.load(Ordering::Relaxed),
        opened.load(Ordering::Relaxed),
        valid.load(Ordering::Relaxed)
    );
    if let Err(e) = result {
        panic!("{label}: {e}");
    }
}

#[test]
fn hostile_layouts() {
    run("oci layouts", false);
}

#[test]
fn hostile_oci_archives() {
    run("oci archives", true);
}

/// A layer tar whose first entry is a GNU long name of `len` bytes (the `tar` crate reads one
/// whole into memory unless the limited reader stops it): over the 1 MiB default of
/// OCIBUILD_LAYER_MAX_METADATA.
fn long_name_bomb(len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut h = tar::Header::new_gnu();
    h.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"././@LongLink");
    h.set_entry_type(tar::EntryType::GNULongName);
    h.set_size(len as u64);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.resize(out.len() + len, b'a');
    out.resize(out.len().div_ceil(512) * 512, 0);
    let mut f = tar::Header::new_gnu();
    f.as_gnu_mut().unwrap().name[..1].copy_from_slice(b"x");
    f.set_entry_type(tar::EntryType::Regular);
    f.set_size(0);
    f.set_mode(0o644);
    f.set_uid(0);
    f.set_gid(0);
    f.set_mtime(0);
    f.set_cksum();
    out.extend_from_slice(f.as_bytes());
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// An image whose second layer is `layer` (gzip), digest and diff_id correct, in a layout.
fn layout_with_layer(dir: &Path, layer: &[u8]) -> PathBuf {
    let tpl = template(dir);
    let out = dir.join("bomb");
    copy_dir(&tpl, &out);
    let index: Value = serde_json::from_slice(&fs::read(out.join("index.json")).unwrap()).unwrap();
    let man_d = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let mut manifest: Value =
        serde_json::from_slice(&fs::read(blob_path(&out, &man_d)).unwrap()).unwrap();
    let cfg_d = manifest["config"]["digest"].as_str().unwrap().to_string();
    let mut cfg: Value =
        serde_json::from_slice(&fs::read(blob_path(&out, &cfg_d)).unwrap()).unwrap();
    let gz = gzip(layer);
    let d = put_blob(&out, &gz);
    manifest["layers"][1]["digest"] = json!(d);
    manifest["layers"][1]["size"] = json!(gz.len());
    cfg["rootfs"]["diff_ids"][1] = json!(Digest::of_bytes(layer).to_string());
    let cb = serde_json::to_vec(&cfg).unwrap();
    manifest["config"]["digest"] = json!(put_blob(&out, &cb));
    manifest["config"]["size"] = json!(cb.len());
    let mb = serde_json::to_vec(&manifest).unwrap();
    let mut index = index;
    index["manifests"][0]["digest"] = json!(put_blob(&out, &mb));
    index["manifests"][0]["size"] = json!(mb.len());
    fs::write(out.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    out
}

/// The limits apply outside layer extraction too: `validate` reading a layer, and the
/// `oci-archive:` reader indexing the archive itself.
#[test]
fn bombs_hit_the_limits_in_validate_and_oci_archive_import() {
    let t = tempfile::tempdir().unwrap();
    let dir = layout_with_layer(t.path(), &long_name_bomb(8 << 20));
    let src = LayoutSource::open(&dir, Some("v1")).unwrap();
    let e = validate(&src, &ValidateOptions::default())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    let report = validate(&src, &ValidateOptions::default())
        .map(|r| format!("{r:?}"))
        .unwrap_or_default();
    assert!(
        e.contains("OCIBUILD_LAYER_MAX_METADATA") || report.contains("OCIBUILD_LAYER_MAX_METADATA"),
        "validate: {e}{report}"
    );

    // an oci-archive with a bomb entry of its own
    let tpl = template(&t.path().join("t2"));
    let mut b = tar::Builder::new(Vec::new());
    b.append_dir_all(".", &tpl).unwrap();
    let mut archive = b.into_inner().unwrap();
    archive.truncate(archive.len() - 1024); // drop the end-of-archive blocks
    archive.extend_from_slice(&long_name_bomb(8 << 20));
    let file = t.path().join("bomb.tar");
    fs::write(&file, archive).unwrap();
    let Err(e) = ArchiveSource::open(&file, Some("v1")) else {
        panic!("the bomb archive was accepted")
    };
    let e = e.to_string();
    assert!(
        e.contains("OCIBUILD_LAYER_MAX_METADATA"),
        "oci-archive: {e}"
    );
    assert!(e.contains("bomb.tar"), "{e}");
}
