//! `ocibuild cache verify`: check a store end to end.
//!
//! - every blob under `blobs/sha256/` is re-hashed: its bytes must hash to its name;
//! - every layer mapping (`layers/<diff_id>/<key>`) must hold a digest whose blob is stored and
//!   correct;
//! - every record under `engine/` (step records `engine/df/*.json`, build records
//!   `engine/builds/`, base pins `engine/bases/`, package locks `engine/locks/`) must parse as
//!   JSON, and every descriptor in it (an object with `mediaType`, `digest` and `size`) must
//!   point to a stored, correct blob of that size.
//!
//! Nothing is changed unless `repair` is set; then each broken item is removed (a corrupt
//! blob, a dangling mapping, an unreadable or dangling record). A record or mapping that points
//! to a corrupt blob is dangling once the blob is dropped, so it goes too. The caller holds the
//! store's lock (shared to check, exclusive to repair).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::digest::Digest;
use crate::error::{OciError, Result};
use crate::store::ContentStore;

/// The record directories under `engine/` that `verify` reads.
pub const RECORD_DIRS: &[&str] = &["engine/df", "engine/builds", "engine/bases", "engine/locks"];

/// One broken item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// `corrupt-blob`, `stray-blob`, `dangling-mapping`, `unreadable-mapping`,
    /// `unreadable-record`, `dangling-record`.
    pub kind: &'static str,
    /// The path under the store root.
    pub path: PathBuf,
    /// What is wrong, in words.
    pub detail: String,
    /// `repair` removed it.
    pub repaired: bool,
}

/// What `verify` checked and found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct VerifyReport {
    pub blobs: u64,
    pub blob_bytes: u64,
    pub mappings: u64,
    pub records: u64,
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Check `store` (see the module doc); with `repair`, remove what is broken.
pub fn verify(store: &ContentStore, repair: bool) -> Result<VerifyReport> {
    let root = store.root();
    let mut rep = VerifyReport::default();
    let rel = |p: &Path| p.strip_prefix(root).unwrap_or(p).to_path_buf();

    // 1. blobs
    let blob_dir = root.join("blobs").join("sha256");
    let mut good: BTreeMap<String, u64> = BTreeMap::new();
    let mut bad: BTreeSet<String> = BTreeSet::new();
    let entries = match fs::read_dir(&blob_dir) {
        Ok(rd) => rd.collect::<std::io::Result<Vec<_>>>(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
    .map_err(OciError::io("read", &blob_dir))?;
    for e in entries {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(want) = Digest::parse(&format!("sha256:{name}")) else {
            rep.problems.push(Problem {
                kind: "stray-blob",
                path: rel(&p),
                detail: "not named by a sha256 digest".into(),
                repaired: false,
            });
            continue;
        };
        rep.blobs += 1;
        let got = fs::File::open(&p).and_then(Digest::of_reader);
        match got {
            Ok((d, n)) if d == want => {
                rep.blob_bytes += n;
                good.insert(name, n);
            }
            Ok((d, n)) => {
                bad.insert(name);
                rep.problems.push(Problem {
                    kind: "corrupt-blob",
                    path: rel(&p),
                    detail: format!("its {n} bytes hash to {d}, not {want}"),
                    repaired: false,
                });
            }
            Err(err) => {
                bad.insert(name);
                rep.problems.push(Problem {
                    kind: "corrupt-blob",
                    path: rel(&p),
                    detail: format!("cannot be read: {err}"),
                    repaired: false,
                });
            }
        }
    }
    let blob_state = |d: &Digest| -> Result<u64, String> {
        match good.get(d.hex()) {
            Some(n) => Ok(*n),
            None if bad.contains(d.hex()) => Err(format!("points to corrupt blob {d}")),
            None => Err(format!("points to missing blob {d}")),
        }
    };

    // 2. layer mappings
    let layers = root.join("layers");
    for dir in fs::read_dir(&layers).into_iter().flatten().flatten() {
        for m in fs::read_dir(dir.path()).into_iter().flatten().flatten() {
            let p = m.path();
            if m.file_name().to_string_lossy().starts_with(".map-") {
                continue; // a mapping being written
            }
            rep.mappings += 1;
            let problem = match fs::read_to_string(&p) {
                Err(e) => Some(("unreadable-mapping", format!("cannot be read: {e}"))),
                Ok(s) => match Digest::parse(s.trim()) {
                    Err(e) => Some(("unreadable-mapping", e.to_string())),
                    Ok(d) => blob_state(&d).err().map(|w| ("dangling-mapping", w)),
                },
            };
            if let Some((kind, detail)) = problem {
                rep.problems.push(Problem {
                    kind,
                    path: rel(&p),
                    detail,
                    repaired: false,
                });
            }
        }
    }

    // 3. records
    for d in RECORD_DIRS {
        for e in fs::read_dir(root.join(d)).into_iter().flatten().flatten() {
            let p = e.path();
            if p.extension().is_none_or(|x| x != "json") || !p.is_file() {
                continue;
            }
            rep.records += 1;
            let v = match fs::read(&p).map_err(|e| e.to_string()).and_then(|b| {
                serde_json::from_slice::<serde_json::Value>(&b).map_err(|e| e.to_string())
            }) {
                Ok(v) => v,
                Err(e) => {
                    rep.problems.push(Problem {
                        kind: "unreadable-record",
                        path: rel(&p),
                        detail: format!("not a JSON record: {e}"),
                        repaired: false,
                    });
                    continue;
                }
            };
            let mut descs = Vec::new();
            descriptors(&v, 0, &mut descs);
            let wrong: Vec<String> = descs
                .iter()
                .filter_map(|(d, size)| match blob_state(d) {
                    Ok(n) if n == *size => None,
                    Ok(n) => Some(format!("says {d} has {size} bytes, the blob has {n}")),
                    Err(w) => Some(w),
                })
                .collect();
            if !wrong.is_empty() {
                rep.problems.push(Problem {
                    kind: "dangling-record",
                    path: rel(&p),
                    detail: wrong.join("; "),
                    repaired: false,
                });
            }
        }
    }

    if repair {
        for pr in &mut rep.problems {
            let p = root.join(&pr.path);
            let r = fs::remove_file(&p);
            if pr.kind == "dangling-record" || pr.kind == "unreadable-record" {
                // a step record's change dir and sidecar go with it
                if p.starts_with(root.join("engine/df")) {
                    let _ = fs::remove_dir_all(p.with_extension(""));
                    let _ = fs::remove_file(p.with_extension("oci"));
                }
            }
            pr.repaired = r.is_ok() || !p.exists();
        }
    }
    Ok(rep)
}

/// The descriptors (`{"mediaType", "digest": "sha256:…", "size"}`) anywhere in `v`.
/// Every descriptor (an object with `mediaType`, `digest` and `size`) in a record, at any depth
/// (up to 64 levels): what the record needs from the store.
pub fn descriptors(v: &serde_json::Value, depth: usize, out: &mut Vec<(Digest, u64)>) {
    use serde_json::Value;
    if depth > 64 {
        return;
    }
    match v {
        Value::Object(m) => {
            if let (Some(Value::String(_)), Some(Value::String(d)), Some(Value::Number(n))) =
                (m.get("mediaType"), m.get("digest"), m.get("size"))
                && let (Ok(d), Some(n)) = (Digest::parse(d), n.as_u64())
            {
                out.push((d, n));
            }
            for x in m.values() {
                descriptors(x, depth + 1, out);
            }
        }
        Value::Array(a) => {
            for x in a {
                descriptors(x, depth + 1, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn kinds(r: &VerifyReport) -> Vec<(&'static str, String)> {
        let mut v: Vec<_> = r
            .problems
            .iter()
            .map(|p| (p.kind, p.path.display().to_string()))
            .collect();
        v.sort();
        v
    }

    /// A store with one good blob referenced by a mapping and a step record, then broken in
    /// each way `verify` must find: a corrupted blob, a dangling ref, a truncated record.
    #[test]
    fn finds_and_repairs_corrupt_blobs_dangling_refs_and_truncated_records() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let good = store.put_bytes(b"good layer").unwrap();
        let victim = store.put_bytes(b"will be corrupted").unwrap();
        let diff = Digest::of_bytes(b"diff");
        store.record_layer(&diff, "gzip", &good).unwrap();
        store.record_layer(&diff, "zstd", &victim).unwrap();
        let df = dir.path().join("engine/df");
        fs::create_dir_all(&df).unwrap();
        let rec = |d: &Digest, n: usize| {
            format!(
                r#"{{"layer":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{d}","size":{n}}},"{diff}"]}}"#
            )
        };
        fs::write(df.join("a.json"), rec(&good, 10)).unwrap();
        let clean = verify(&store, false).unwrap();
        assert!(clean.ok(), "{:?}", clean.problems);
        assert_eq!((clean.blobs, clean.mappings, clean.records), (2, 2, 1));

        // corrupt a blob, point a record at a missing blob, truncate a record
        fs::write(store.blob_path(&victim), b"will be corrupteX").unwrap();
        let missing = Digest::of_bytes(b"never stored");
        fs::write(df.join("b.json"), rec(&missing, 12)).unwrap();
        fs::create_dir(df.join("b")).unwrap();
        let full = rec(&good, 10);
        fs::write(df.join("c.json"), &full[..full.len() / 2]).unwrap();
        // a size that does not match the blob
        fs::write(df.join("d.json"), rec(&good, 11)).unwrap();

        let r = verify(&store, false).unwrap();
        let zstd_map = format!("layers/{}/zstd", diff.hex());
        let want = vec![
            ("corrupt-blob", format!("blobs/sha256/{}", victim.hex())),
            ("dangling-mapping", zstd_map.clone()),
            ("dangling-record", "engine/df/b.json".into()),
            ("dangling-record", "engine/df/d.json".into()),
            ("unreadable-record", "engine/df/c.json".into()),
        ];
        assert_eq!(kinds(&r), want);
        assert!(r.problems.iter().all(|p| !p.repaired));
        assert!(
            store.blob_path(&victim).exists(),
            "nothing changes without repair"
        );

        let r = verify(&store, true).unwrap();
        assert_eq!(kinds(&r), want);
        assert!(r.problems.iter().all(|p| p.repaired), "{:?}", r.problems);
        assert!(!store.blob_path(&victim).exists());
        assert!(
            !df.join("b").exists(),
            "a step's change dir goes with its record"
        );
        assert!(df.join("a.json").exists() && store.has(&good));
        let after = verify(&store, false).unwrap();
        assert!(after.ok(), "{:?}", after.problems);
        assert_eq!((after.blobs, after.mappings, after.records), (1, 1, 1));
    }

    #[test]
    fn an_empty_or_missing_store_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        assert!(verify(&store, false).unwrap().ok());
    }
}
