//! Cache-mount contents shared through the build caches (`--cache-to` / `--cache-from`).
//!
//! A cache mount (`RUN --mount=type=cache`, and the zero-config builders' GOCACHE, GOMODCACHE,
//! `~/.npm`, pip's cache and `~/.m2`) lives in `ROOT/engine/cache/<name>` and is not part of any
//! step key: its contents only make tools faster. So a cold CI runner can start warm, each mount
//! is exported as one blob (a zstd tar of the directory, owners, modes and mtimes kept — Go trims
//! its cache by mtime) under an index key made from the mount's name, the target platform and the
//! digest of the app's lockfiles ([`LOCKFILES`]): the same dependencies give the same key, new
//! dependencies a new one. The first runner to export a key wins (conditional create); later
//! exports of the same key are skipped without packing anything.
//!
//! Import happens only into a mount that does not exist yet or is empty — a local cache is at
//! least as warm as a shared one — and goes through a temp directory beside it: the blob is
//! verified by digest while it is fetched, extracted with the layer extractor's path checks
//! (no `..`, no absolute paths, no links out of the directory) and its diff_id checked, then
//! renamed into place. A missing or corrupt entry is a miss: the mount starts empty, as before.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ocibuild_cache::{CacheBackend, Fetch, Mode, PutOutcome};
use ocibuild_oci::Digest;
use ocibuild_oci::image::Descriptor;
use ocibuild_oci::layer::{LayerBuilder, LayerOptions};
use ocibuild_oci::media::Compression;
use ocibuild_oci::store::ContentStore;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::Event;
use crate::error::{EngineError, Result};

/// The files whose content keys a shared cache mount: the lockfiles (and manifests, where the
/// ecosystem has no lockfile) of the package managers ocibuild knows.
pub const LOCKFILES: &[&str] = &[
    "go.sum",
    "go.mod",
    "package-lock.json",
    "npm-shrinkwrap.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "requirements.txt",
    "uv.lock",
    "poetry.lock",
    "Pipfile.lock",
    "pyproject.toml",
    "pom.xml",
    "gradle.lockfile",
    "build.gradle",
    "build.gradle.kts",
    "Cargo.lock",
    "composer.lock",
    "Gemfile.lock",
];

/// Directories never searched for lockfiles.
const SKIP_DIRS: &[&str] = &[
    ".git",
    "node_modules",
    "vendor",
    "target",
    ".venv",
    "venv",
    "__pycache__",
];

/// How deep below the app or context root lockfiles are looked for.
const MAX_DEPTH: usize = 3;

/// The lockfiles of an app and the digest of their paths and contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockDigest {
    /// SHA256 hex over each lockfile's relative path and content, in path order.
    pub hex: String,
    /// The lockfiles found (relative paths), for messages.
    pub files: Vec<String>,
}

/// Find the lockfiles under `dir` (up to three levels down, skipping dependency and VCS
/// directories) and digest them.
pub fn lock_digest(dir: &Path) -> Result<LockDigest> {
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    let it = walkdir::WalkDir::new(dir)
        .follow_links(false)
        .max_depth(MAX_DEPTH)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            !(e.file_type().is_dir()
                && e.depth() > 0
                && SKIP_DIRS.contains(&e.file_name().to_string_lossy().as_ref()))
        });
    for e in it {
        let Ok(e) = e else { continue };
        if !e.file_type().is_file() {
            continue;
        }
        let name = e.file_name().to_string_lossy();
        if LOCKFILES.contains(&name.as_ref()) {
            let rel = e
                .path()
                .strip_prefix(dir)
                .unwrap_or(e.path())
                .to_string_lossy()
                .into_owned();
            found.push((rel, e.path().to_path_buf()));
        }
    }
    found.sort();
    let mut h = Sha256::new();
    h.update(b"ocibuild-lockfiles-v1");
    for (rel, path) in &found {
        let bytes = fs::read(path).map_err(EngineError::io("reading a lockfile", path))?;
        h.update(format!("\0{rel}\0{}\0", bytes.len()).as_bytes());
        h.update(&bytes);
    }
    Ok(LockDigest {
        hex: hex::encode(h.finalize()),
        files: found.into_iter().map(|(r, _)| r).collect(),
    })
}

/// The shared-cache index key of one mount.
pub fn mount_key(name: &str, platform: &str, lock: &LockDigest) -> String {
    let mut h = Sha256::new();
    h.update(format!("ocibuild-cache-mount-v1\0{name}\0{platform}\0{}", lock.hex).as_bytes());
    hex::encode(h.finalize())
}

/// The index object of an exported cache mount.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct MountRecord {
    kind: String,
    name: String,
    layer: Descriptor,
    diff_id: Digest,
    lockfiles: Vec<String>,
}

const KIND: &str = "cache-mount";

fn is_empty_or_missing(dir: &Path) -> bool {
    match fs::read_dir(dir) {
        Ok(mut d) => d.next().is_none(),
        Err(_) => true,
    }
}

/// Fill the cache mount `dir` (named `name` in messages) from the first `from` cache that has
/// `key`, when `dir` is missing or empty. Returns whether it was filled. Cache errors are
/// reported as notes and are misses; only local I/O failures are errors.
pub fn import(
    store: &ContentStore,
    from: &[Box<dyn CacheBackend + '_>],
    name: &str,
    key: &str,
    dir: &Path,
    ev: &dyn Fn(Event),
) -> Result<bool> {
    if from.is_empty() {
        return Ok(false);
    }
    if !is_empty_or_missing(dir) {
        ev(Event::Note(format!(
            "cache mount {name}: kept the local one (not empty); the shared copy is not needed"
        )));
        return Ok(false);
    }
    for be in from {
        let t0 = Instant::now();
        let rec = match be.get_index(key) {
            Ok(Some(b)) => match serde_json::from_slice::<MountRecord>(&b) {
                Ok(r) if r.kind == KIND => r,
                _ => {
                    ev(Event::Note(format!(
                        "cache {}: the entry for cache mount {name} is not a cache-mount record (ignored)",
                        be.describe()
                    )));
                    continue;
                }
            },
            Ok(None) => continue,
            Err(e) => {
                ev(Event::Note(format!(
                    "cache {}: cache mount {name}: {e} (treated as a miss)",
                    be.describe()
                )));
                continue;
            }
        };
        let fetched = match be.fetch_blob(&rec.layer.digest, store) {
            Ok(Fetch::Fetched { .. }) => true,
            Ok(Fetch::Present) => false,
            Ok(Fetch::Missing) => {
                ev(Event::Note(format!(
                    "cache {}: cache mount {name}: blob {} is missing (a miss)",
                    be.describe(),
                    rec.layer.digest
                )));
                continue;
            }
            Ok(Fetch::Corrupt { why }) => {
                ev(Event::Note(format!(
                    "cache {}: cache mount {name}: blob {} is corrupt ({why}); skipped",
                    be.describe(),
                    rec.layer.digest
                )));
                continue;
            }
            Err(e) => {
                ev(Event::Note(format!(
                    "cache {}: cache mount {name}: {e} (treated as a miss)",
                    be.describe()
                )));
                continue;
            }
        };
        let unpacked = unpack_into(store, &rec, dir);
        if fetched {
            // the blob was only the way in: the mount holds its contents now
            let _ = fs::remove_file(store.blob_path(&rec.layer.digest));
        }
        match unpacked {
            Ok(true) => {
                ev(Event::Note(format!(
                    "cache mount {name}: imported from {} ({} compressed, keyed by {}) in {:.2}s",
                    be.describe(),
                    human(rec.layer.size),
                    if rec.lockfiles.is_empty() {
                        "no lockfile".to_string()
                    } else {
                        rec.lockfiles.join(", ")
                    },
                    t0.elapsed().as_secs_f64()
                )));
                return Ok(true);
            }
            Ok(false) => {
                ev(Event::Note(format!(
                    "cache mount {name}: another build filled it meanwhile; kept that"
                )));
                return Ok(false);
            }
            Err(e) => {
                ev(Event::Note(format!(
                    "cache {}: cache mount {name}: {e} (treated as a miss)",
                    be.describe()
                )));
            }
        }
    }
    Ok(false)
}

/// Extract the record's blob beside `dir` and rename it into place (only over a missing or
/// empty `dir`). `Ok(false)`: `dir` was filled by someone else meanwhile.
fn unpack_into(store: &ContentStore, rec: &MountRecord, dir: &Path) -> Result<bool> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(EngineError::io("creating the cache dir", parent))?;
    let tmp = tempfile::Builder::new()
        .prefix(".import-")
        .tempdir_in(parent)
        .map_err(EngineError::io("creating a temp dir", parent))?;
    let c = ocibuild_oci::media::layer_compression(&rec.layer.media_type).ok_or_else(|| {
        EngineError::Invalid {
            what: format!("cache mount blob {}", rec.layer.digest),
            detail: format!("unsupported media type {}", rec.layer.media_type),
        }
    })?;
    let f = store.open_blob(&rec.layer.digest)?;
    let opts = ocibuild_oci::extract::ExtractOptions {
        privileged: false,
        preserve_owner: crate::df::fsops::is_root(),
        apply_whiteouts: false,
    };
    ocibuild_oci::extract::extract_layer_blob(
        std::io::BufReader::new(f),
        c,
        Some(&rec.diff_id),
        tmp.path(),
        &opts,
    )?;
    let _ = fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    );
    if !is_empty_or_missing(dir) {
        return Ok(false);
    }
    // rename(2) replaces an empty directory atomically; a filled one makes it fail
    let kept = tmp.keep();
    match fs::rename(&kept, dir) {
        Ok(()) => Ok(true),
        Err(e) => {
            let _ = ocibuild_sandbox::mounts::remove_tree(&kept);
            if is_empty_or_missing(dir) {
                Err(EngineError::io("renaming an imported cache mount", dir)(e))
            } else {
                Ok(false)
            }
        }
    }
}

/// Export the cache mount `dir` to every `to` cache that does not have `key` yet. The blob is
/// packed once, on the first cache that needs it. Errors fail the build unless the cache was
/// given `ignore-error=true`.
pub fn export(
    store: &ContentStore,
    to: &[(Box<dyn CacheBackend + '_>, Mode, bool)],
    name: &str,
    key: &str,
    lock: &LockDigest,
    dir: &Path,
    ev: &dyn Fn(Event),
) -> Result<()> {
    if to.is_empty() || is_empty_or_missing(dir) {
        return Ok(());
    }
    let mut packed: Option<(Descriptor, Digest)> = None;
    for (be, _mode, ignore_error) in to {
        let t0 = Instant::now();
        let r = (|| -> Result<bool> {
            let wrap = |e: ocibuild_cache::CacheError| EngineError::Invalid {
                what: format!("exporting cache mount {name} to {}", be.describe()),
                detail: e.to_string(),
            };
            if be.get_index(key).map_err(wrap)?.is_some() {
                return Ok(false);
            }
            let (layer, diff_id) = match &packed {
                Some(p) => p.clone(),
                None => {
                    let p = pack(store, dir)?;
                    packed = Some(p.clone());
                    p
                }
            };
            be.push_blob(&layer.digest, store).map_err(wrap)?;
            let rec = MountRecord {
                kind: KIND.into(),
                name: name.into(),
                layer,
                diff_id,
                lockfiles: lock.files.clone(),
            };
            let bytes = serde_json::to_vec(&rec).map_err(|e| EngineError::Invalid {
                what: "cache mount record".into(),
                detail: e.to_string(),
            })?;
            Ok(be.put_index(key, &bytes).map_err(wrap)? == PutOutcome::Created)
        })();
        match r {
            Ok(true) => ev(Event::Note(format!(
                "cache mount {name}: exported to {} ({}) in {:.2}s",
                be.describe(),
                packed
                    .as_ref()
                    .map(|(d, _)| human(d.size))
                    .unwrap_or_default(),
                t0.elapsed().as_secs_f64()
            ))),
            Ok(false) => ev(Event::Note(format!(
                "cache mount {name}: {} has it for these lockfiles already",
                be.describe()
            ))),
            Err(e) if *ignore_error => ev(Event::Note(format!(
                "cache mount {name}: export failed (ignore-error=true): {e}"
            ))),
            Err(e) => {
                drop_packed(store, &packed);
                return Err(e);
            }
        }
    }
    drop_packed(store, &packed);
    Ok(())
}

/// The packed blob is only the way out: the caches have it now, the store need not keep it.
fn drop_packed(store: &ContentStore, packed: &Option<(Descriptor, Digest)>) {
    if let Some((d, _)) = packed {
        let _ = fs::remove_file(store.blob_path(&d.digest));
    }
}

/// A zstd tar of `dir` in the content store, with owners, modes and mtimes as they are.
fn pack(store: &ContentStore, dir: &Path) -> Result<(Descriptor, Digest)> {
    let entries = crate::df::fsops::upper_entries(dir)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut b = LayerBuilder::new(LayerOptions {
        compression: Compression::Zstd,
        level: Some(3),
        source_date_epoch: now,
        owner: None,
        normalize_modes: false,
    });
    for e in entries {
        b.add_entry(e)?;
    }
    let w = store.writer()?;
    let (w, info) = b.write(w)?;
    let digest = w.commit()?;
    Ok((
        Descriptor::new(info.media_type, digest, info.size),
        info.diff_id,
    ))
}

fn human(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{:.1} MB", n as f64 / 1e6)
    } else {
        format!("{:.1} kB", n as f64 / 1e3)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn lockfiles_key_the_mount_by_content_not_by_other_files() {
        let t = tempfile::tempdir().unwrap();
        let a = t.path();
        fs::write(a.join("go.mod"), "module x\n").unwrap();
        fs::write(a.join("main.go"), "package main\n").unwrap();
        fs::create_dir_all(a.join("web/node_modules/dep")).unwrap();
        fs::write(a.join("web/package-lock.json"), "{}").unwrap();
        fs::write(a.join("web/node_modules/dep/package-lock.json"), "{}").unwrap();
        let d1 = lock_digest(a).unwrap();
        assert_eq!(d1.files, vec!["go.mod", "web/package-lock.json"]);
        fs::write(a.join("main.go"), "package main // edited\n").unwrap();
        assert_eq!(lock_digest(a).unwrap(), d1, "a source edit keeps the key");
        fs::write(a.join("web/package-lock.json"), "{\"a\":1}").unwrap();
        let d2 = lock_digest(a).unwrap();
        assert_ne!(d2.hex, d1.hex, "a lockfile edit changes the key");
        assert_ne!(
            mount_key("npm", "linux/amd64", &d2),
            mount_key("go-build", "linux/amd64", &d2)
        );
        assert_ne!(
            mount_key("npm", "linux/amd64", &d2),
            mount_key("npm", "linux/arm64", &d2)
        );
    }

    #[test]
    fn export_then_import_round_trips_and_never_overwrites_a_warm_mount() {
        let t = tempfile::tempdir().unwrap();
        let store = ContentStore::open(t.path().join("store")).unwrap();
        let shared = t.path().join("shared");
        let spec_to = ocibuild_cache::CacheSpec::parse(
            &format!("type=local,dest={}", shared.display()),
            true,
        )
        .unwrap();
        let spec_from = ocibuild_cache::CacheSpec::parse(
            &format!("type=local,src={}", shared.display()),
            false,
        )
        .unwrap();
        let to = vec![(
            ocibuild_cache::open(&spec_to, None).unwrap(),
            Mode::Min,
            false,
        )];
        let from = vec![ocibuild_cache::open(&spec_from, None).unwrap()];
        let mount = t.path().join("cache/go-build");
        fs::create_dir_all(mount.join("0a")).unwrap();
        fs::write(mount.join("0a/entry-d"), b"compiled").unwrap();
        std::os::unix::fs::symlink("entry-d", mount.join("0a/link")).unwrap();
        let lock = LockDigest {
            hex: "00".into(),
            files: vec!["go.sum".into()],
        };
        let key = mount_key("go-build", "linux/amd64", &lock);
        let notes = std::cell::RefCell::new(Vec::new());
        let ev = |e: Event| {
            if let Event::Note(n) = e {
                notes.borrow_mut().push(n)
            }
        };
        export(&store, &to, "go-build", &key, &lock, &mount, &ev).unwrap();
        assert!(notes.borrow().iter().any(|n| n.contains("exported")));
        // a second export of the same key packs nothing
        export(&store, &to, "go-build", &key, &lock, &mount, &ev).unwrap();
        assert!(notes.borrow().iter().any(|n| n.contains("has it")));

        // a cold runner: another store, an empty mount
        let store2 = ContentStore::open(t.path().join("store2")).unwrap();
        let mount2 = t.path().join("cache2/go-build");
        assert!(import(&store2, &from, "go-build", &key, &mount2, &ev).unwrap());
        assert_eq!(fs::read(mount2.join("0a/entry-d")).unwrap(), b"compiled");
        assert_eq!(
            fs::read_link(mount2.join("0a/link")).unwrap(),
            PathBuf::from("entry-d")
        );
        // a warm mount is never replaced
        fs::write(mount2.join("0a/entry-d"), b"local").unwrap();
        assert!(!import(&store2, &from, "go-build", &key, &mount2, &ev).unwrap());
        assert_eq!(fs::read(mount2.join("0a/entry-d")).unwrap(), b"local");
        // another key is a miss
        let other = mount_key("npm", "linux/amd64", &lock);
        let mount3 = t.path().join("cache3/npm");
        assert!(!import(&store2, &from, "npm", &other, &mount3, &ev).unwrap());
        assert!(!mount3.exists());
    }
}
