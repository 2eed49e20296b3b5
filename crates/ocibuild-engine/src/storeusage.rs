//! Everything under a store root, by kind: what `cache du` reports and `cache prune` removes.
//!
//! ```text
//! blobs/sha256/, layers/        blobs          content-addressed blobs, layer mappings
//! tmp/                          temp           blobs being written (leftovers of killed processes)
//! engine/rootfs/                toolchain_roots extracted bases and toolchain roots
//!                                              (`.rootfs-*`: a killed build's half-made root)
//! debian/                       package_cache  Debian indexes and packages (ROOT/debian)
//! engine/cache/                 cache_mounts   RUN --mount=type=cache and builder cache dirs
//! engine/df/<key>/              step_changes   Dockerfile steps' change dirs (`.step-*`: temp)
//! engine/df/<key>.json, …       step_records   step records, zero-config build records, base and
//!                                              pull pins, package locks, --explain-cache notes,
//!                                              toolchain root blobs made for --cache-to
//!                                              (engine/rootblobs/)
//! logs/                         logs           build logs
//! engine/work/                  temp           build work dirs (leftovers of killed builds)
//! anything else                 other
//! ```
//!
//! Prune units are removed whole: a blob, a root, a cache mount, a step (its record, change
//! dir and flag), a package file, a log, a record. Each has a last use: blobs, step records and
//! roots are touched when used (a root's `complete` marker), cache mounts when mounted (the
//! directory's mtime), package files by their access or modification time, whichever is later.
//! `prune` holds the store's exclusive lock, so no build is running; a root that some process
//! still holds (a shared lock on its `complete` marker, taken by every build that uses it) is
//! kept all the same. Leftovers of killed builds (temp files, work dirs, half-made roots and
//! step dirs) are always removed. Entries at the top of the root that ocibuild does not make
//! are reported as `other` and never removed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File, TryLockError};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use ocibuild_oci::store::ContentStore;
use serde::Serialize;

use crate::error::{EngineError, Result};

/// What a byte under the store root is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Blobs,
    ToolchainRoots,
    PackageCache,
    CacheMounts,
    StepChanges,
    StepRecords,
    Logs,
    Temp,
    Other,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Blobs,
        Kind::ToolchainRoots,
        Kind::PackageCache,
        Kind::CacheMounts,
        Kind::StepChanges,
        Kind::StepRecords,
        Kind::Logs,
        Kind::Temp,
        Kind::Other,
    ];

    /// The name in `--json` output.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Blobs => "blobs",
            Kind::ToolchainRoots => "toolchain_roots",
            Kind::PackageCache => "package_cache",
            Kind::CacheMounts => "cache_mounts",
            Kind::StepChanges => "step_changes",
            Kind::StepRecords => "step_records",
            Kind::Logs => "logs",
            Kind::Temp => "temp",
            Kind::Other => "other",
        }
    }

    /// Where it lives, for the human table.
    pub fn what(self) -> &'static str {
        match self {
            Kind::Blobs => "blobs/, layers/",
            Kind::ToolchainRoots => "engine/rootfs/",
            Kind::PackageCache => "debian/",
            Kind::CacheMounts => "engine/cache/",
            Kind::StepChanges => "engine/df/<key>/",
            Kind::StepRecords => "engine/df/*.json, engine/{builds,bases,pulled,locks}/",
            Kind::Logs => "logs/",
            Kind::Temp => "tmp/, engine/work/ (killed builds)",
            Kind::Other => "not made by ocibuild",
        }
    }
}

/// Bytes and prune units of one kind.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct KindUsage {
    pub bytes: u64,
    pub items: u64,
}

/// `cache du`: every byte under the root, by kind (directories and hard links counted as
/// `du -sb` counts them: each inode once).
#[derive(Clone, Debug, Serialize)]
pub struct StoreUsage {
    pub kinds: BTreeMap<&'static str, KindUsage>,
    pub total_bytes: u64,
    /// Top-level entries ocibuild did not make (kept by `prune`).
    pub other_paths: Vec<PathBuf>,
}

/// What `cache prune` did, by kind.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PruneReport {
    pub removed: BTreeMap<&'static str, KindUsage>,
    pub kept: BTreeMap<&'static str, KindUsage>,
    pub removed_bytes: u64,
    pub kept_bytes: u64,
    /// Roots kept because a process holds them.
    pub held: Vec<PathBuf>,
    /// Top-level entries ocibuild did not make, left alone.
    pub other_paths: Vec<PathBuf>,
}

/// One thing `prune` removes whole.
struct Unit {
    /// (kind, path, bytes) of each part.
    parts: Vec<(Kind, PathBuf, u64)>,
    last_use: SystemTime,
    /// A leftover of a killed build: removed by every prune.
    leftover: bool,
    /// The file whose lock a user of this unit holds (roots).
    lock: Option<PathBuf>,
    /// Never removed (`other` at the top of the root).
    foreign: bool,
}

impl Unit {
    fn bytes(&self) -> u64 {
        self.parts.iter().map(|p| p.2).sum()
    }
}

/// Bytes of a path as `du -sb` counts them (apparent sizes, directories included, each inode
/// once across the whole walk).
fn tree_bytes(p: &Path, seen: &mut HashSet<(u64, u64)>) -> u64 {
    let mut n = 0;
    for e in walkdir::WalkDir::new(p)
        .follow_links(false)
        .into_iter()
        .flatten()
    {
        let Ok(m) = e.path().symlink_metadata() else {
            continue;
        };
        if !m.is_dir() && m.nlink() > 1 && !seen.insert((m.dev(), m.ino())) {
            continue;
        }
        n += m.len();
    }
    n
}

fn dir_bytes(dirs: &mut BTreeMap<Kind, u64>, k: Kind, p: &Path) {
    if let Ok(m) = p.symlink_metadata() {
        *dirs.entry(k).or_default() += m.len();
    }
}

fn mtime(p: &Path) -> SystemTime {
    p.symlink_metadata()
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// Modification or access time, whichever is later (package files are read, never rewritten).
fn used(p: &Path) -> SystemTime {
    let Ok(m) = p.symlink_metadata() else {
        return SystemTime::UNIX_EPOCH;
    };
    let a = m.accessed().unwrap_or(SystemTime::UNIX_EPOCH);
    let w = m.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    a.max(w)
}

fn children(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut v: Vec<(String, PathBuf)> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    v.sort();
    v
}

/// Directories that make up the store's skeleton at the top (their own bytes, not their
/// contents); a flagless prune leaves these (those ocibuild recreates on use go when empty).
const TOP: &[&str] = &[
    "blobs",
    "layers",
    "tmp",
    "engine",
    "debian",
    "logs",
    "store.lock",
];

/// Everything under the root as prune units, plus the bytes of the directories that hold them
/// (by kind).
fn units(store: &ContentStore) -> (Vec<Unit>, BTreeMap<Kind, u64>) {
    let root = store.root();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut dirs: BTreeMap<Kind, u64> = BTreeMap::new();
    let d = &mut dirs;
    dir_bytes(d, Kind::Other, root);
    let one = |k: Kind, p: &Path, seen: &mut HashSet<(u64, u64)>, last: SystemTime| Unit {
        parts: vec![(k, p.to_path_buf(), tree_bytes(p, seen))],
        last_use: last,
        leftover: false,
        lock: None,
        foreign: false,
    };
    for (name, p) in children(root) {
        match name.as_str() {
            "blobs" => {
                dir_bytes(d, Kind::Blobs, &p);
                for (sub, sp) in children(&p) {
                    if sub == "sha256" {
                        dir_bytes(d, Kind::Blobs, &sp);
                        for (_, b) in children(&sp) {
                            let u = one(Kind::Blobs, &b, &mut seen, mtime(&b));
                            out.push(u);
                        }
                    } else {
                        let u = one(Kind::Other, &sp, &mut seen, mtime(&sp));
                        out.push(u);
                    }
                }
            }
            // layer mappings: removed with their blobs (see `prune`)
            "layers" => {
                *d.entry(Kind::Blobs).or_default() += tree_bytes(&p, &mut seen);
            }
            "tmp" => {
                dir_bytes(d, Kind::Temp, &p);
                for (_, t) in children(&p) {
                    let mut u = one(Kind::Temp, &t, &mut seen, mtime(&t));
                    u.leftover = true;
                    out.push(u);
                }
            }
            "store.lock" => dir_bytes(d, Kind::Other, &p),
            "debian" => {
                dir_bytes(d, Kind::PackageCache, &p);
                for (sub, sp) in children(&p) {
                    if sp.is_dir() && matches!(sub.as_str(), "sha256" | "inrelease") {
                        dir_bytes(d, Kind::PackageCache, &sp);
                        for (_, f) in children(&sp) {
                            let u = one(Kind::PackageCache, &f, &mut seen, used(&f));
                            out.push(u);
                        }
                    } else {
                        let u = one(Kind::PackageCache, &sp, &mut seen, used(&sp));
                        out.push(u);
                    }
                }
            }
            "logs" => {
                dir_bytes(d, Kind::Logs, &p);
                for (_, l) in children(&p) {
                    let u = one(Kind::Logs, &l, &mut seen, mtime(&l));
                    out.push(u);
                }
            }
            "engine" => {
                dir_bytes(d, Kind::Other, &p);
                engine_units(&p, &mut seen, &mut out, d);
            }
            _ => {
                let mut u = one(Kind::Other, &p, &mut seen, mtime(&p));
                u.foreign = true;
                out.push(u);
            }
        }
    }
    (out, dirs)
}

fn engine_units(
    engine: &Path,
    seen: &mut HashSet<(u64, u64)>,
    out: &mut Vec<Unit>,
    dirs: &mut BTreeMap<Kind, u64>,
) {
    let unit = |k: Kind, p: &Path, seen: &mut HashSet<(u64, u64)>, last: SystemTime| Unit {
        parts: vec![(k, p.to_path_buf(), tree_bytes(p, seen))],
        last_use: last,
        leftover: false,
        lock: None,
        foreign: false,
    };
    for (name, p) in children(engine) {
        let kind = match name.as_str() {
            "rootfs" => Kind::ToolchainRoots,
            "cache" => Kind::CacheMounts,
            "df" => Kind::StepChanges,
            "builds" | "bases" | "pulled" | "locks" | "rootblobs" => Kind::StepRecords,
            "work" => Kind::Temp,
            _ => {
                let u = unit(Kind::Other, &p, seen, mtime(&p));
                out.push(u);
                continue;
            }
        };
        if !p.is_dir() {
            let u = unit(Kind::Other, &p, seen, mtime(&p));
            out.push(u);
            continue;
        }
        dir_bytes(dirs, kind, &p);
        match name.as_str() {
            "rootfs" => {
                for (n, r) in children(&p) {
                    let marker = r.join("complete");
                    let mut u = unit(Kind::ToolchainRoots, &r, seen, mtime(&marker));
                    if n.starts_with('.') || !marker.is_file() {
                        u.leftover = true;
                    } else {
                        u.lock = Some(marker);
                    }
                    out.push(u);
                }
            }
            "df" => df_units(&p, seen, out),
            _ => {
                for (_, c) in children(&p) {
                    let mut u = unit(kind, &c, seen, mtime(&c));
                    u.leftover = kind == Kind::Temp;
                    out.push(u);
                }
            }
        }
    }
}

/// The Dockerfile step cache: a step is its record `<key>.json`, change dir `<key>/` and flag
/// `<key>.oci`, removed together; its last use is the record's mtime.
fn df_units(dir: &Path, seen: &mut HashSet<(u64, u64)>, out: &mut Vec<Unit>) {
    let mut taken: HashSet<String> = HashSet::new();
    let entries = children(dir);
    for (name, p) in &entries {
        let Some(key) = name.strip_suffix(".json") else {
            continue;
        };
        let mut parts = vec![(Kind::StepRecords, p.clone(), tree_bytes(p, seen))];
        taken.insert(name.clone());
        for (k, extra) in [
            (Kind::StepChanges, key.to_string()),
            (Kind::StepRecords, format!("{key}.oci")),
        ] {
            let ep = dir.join(&extra);
            if ep.symlink_metadata().is_ok() {
                parts.push((k, ep.clone(), tree_bytes(&ep, seen)));
                taken.insert(extra);
            }
        }
        out.push(Unit {
            parts,
            last_use: mtime(p),
            leftover: false,
            lock: None,
            foreign: false,
        });
    }
    for (name, p) in entries {
        if taken.contains(&name) {
            continue;
        }
        let explain = name == "explain";
        let kind = if explain || name.ends_with(".oci") {
            Kind::StepRecords
        } else {
            Kind::StepChanges
        };
        out.push(Unit {
            parts: vec![(kind, p.clone(), tree_bytes(&p, seen))],
            last_use: mtime(&p),
            // a change dir without its record, or a `.step-*` dir: a killed build's
            leftover: !explain,
            lock: None,
            foreign: false,
        });
    }
}

/// `cache du`.
pub fn usage(store: &ContentStore) -> StoreUsage {
    let (units, dirs) = units(store);
    let mut kinds: BTreeMap<&'static str, KindUsage> = Kind::ALL
        .iter()
        .map(|k| (k.as_str(), KindUsage::default()))
        .collect();
    let mut total = 0;
    for (k, b) in dirs {
        if let Some(e) = kinds.get_mut(k.as_str()) {
            e.bytes += b;
        }
        total += b;
    }
    let mut other_paths = Vec::new();
    for u in &units {
        if u.foreign {
            other_paths.extend(u.parts.iter().map(|p| p.1.clone()));
        }
        if let Some(first) = u.parts.first()
            && let Some(e) = kinds.get_mut(first.0.as_str())
        {
            e.items += 1;
        }
        for (k, _, b) in &u.parts {
            if let Some(e) = kinds.get_mut(k.as_str()) {
                e.bytes += b;
            }
            total += b;
        }
    }
    StoreUsage {
        kinds,
        total_bytes: total,
        other_paths,
    }
}

/// Whether some process holds the root whose `complete` marker is `marker` (then it is kept);
/// when none does, the returned lock keeps new users out until the root is gone.
fn try_take(marker: &Path) -> Option<Option<File>> {
    let Ok(f) = File::open(marker) else {
        return Some(None);
    };
    match f.try_lock() {
        Ok(()) => Some(Some(f)),
        Err(TryLockError::WouldBlock) => None,
        Err(TryLockError::Error(_)) => Some(None),
    }
}

fn remove_path(p: &Path) -> Result<()> {
    let m = match p.symlink_metadata() {
        Ok(m) => m,
        Err(_) => return Ok(()),
    };
    if m.is_dir() {
        // step change dirs may hold read-only directories (made writable first)
        ocibuild_sandbox::mounts::remove_tree(p)
            .map_err(EngineError::io("removing from the store", p))
    } else {
        fs::remove_file(p).map_err(EngineError::io("removing from the store", p))
    }
}

/// What names each blob (by hex): the layer mappings and the records `cache verify` reads
/// (`ocibuild_oci::verify::RECORD_DIRS`). `prune` removes these before the blob, so a prune
/// that stops anywhere (killed, or a budget reached) leaves no reference to a missing blob.
fn referrers(store: &ContentStore) -> HashMap<String, Vec<PathBuf>> {
    let root = store.root();
    let mut m: HashMap<String, Vec<PathBuf>> = HashMap::new();
    for (_, dir) in children(&root.join("layers")) {
        for (_, f) in children(&dir) {
            if let Ok(s) = fs::read_to_string(&f)
                && let Ok(d) = ocibuild_oci::Digest::parse(s.trim())
            {
                m.entry(d.hex().to_string()).or_default().push(f);
            }
        }
    }
    for d in ocibuild_oci::verify::RECORD_DIRS {
        for (_, p) in children(&root.join(d)) {
            if p.extension().is_none_or(|x| x != "json") || !p.is_file() {
                continue;
            }
            let Some(v) = fs::read(&p)
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            else {
                continue;
            };
            let mut descs = Vec::new();
            ocibuild_oci::verify::descriptors(&v, 0, &mut descs);
            for (d, _) in descs {
                m.entry(d.hex().to_string()).or_default().push(p.clone());
            }
        }
    }
    m
}

/// Remove what names the blob at `blob` (see [`referrers`]); a step record takes its change
/// dir and flag with it (the record first).
fn drop_referrers(refs: &HashMap<String, Vec<PathBuf>>, blob: &Path) -> Result<()> {
    let Some(list) = blob
        .file_name()
        .and_then(|n| refs.get(n.to_string_lossy().as_ref()))
    else {
        return Ok(());
    };
    for p in list {
        remove_path(p)?;
        if p.parent().is_some_and(|d| d.ends_with("engine/df")) {
            remove_path(&p.with_extension(""))?;
            remove_path(&p.with_extension("oci"))?;
        }
    }
    Ok(())
}

/// `cache prune`: remove units not used for `older_than`, then the least recently used ones
/// until everything prunable takes at most `keep_storage` bytes; with neither limit, every unit
/// (leaving the store's skeleton). Leftovers of killed builds always go; held roots and
/// foreign entries stay. Waits for running builds (the store's exclusive lock).
pub fn prune(
    store: &ContentStore,
    older_than: Option<Duration>,
    keep_storage: Option<u64>,
) -> Result<PruneReport> {
    let _lock = store.lock_exclusive()?;
    let now = SystemTime::now();
    let (mut units, _) = units(store);
    let refs = referrers(store);
    units.sort_by_key(|u| u.last_use);
    let remove_all = older_than.is_none() && keep_storage.is_none();
    let mut remaining: u64 = units
        .iter()
        .filter(|u| !u.foreign && !u.leftover)
        .map(Unit::bytes)
        .sum();
    let mut report = PruneReport::default();
    for k in Kind::ALL {
        report.removed.insert(k.as_str(), KindUsage::default());
        report.kept.insert(k.as_str(), KindUsage::default());
    }
    let add = |m: &mut BTreeMap<&'static str, KindUsage>, u: &Unit| {
        if let Some(first) = u.parts.first()
            && let Some(e) = m.get_mut(first.0.as_str())
        {
            e.items += 1;
        }
        for (k, _, b) in &u.parts {
            if let Some(e) = m.get_mut(k.as_str()) {
                e.bytes += b;
            }
        }
    };
    for u in &units {
        let bytes = u.bytes();
        let age = now.duration_since(u.last_use).unwrap_or_default();
        let wanted = u.leftover
            || remove_all
            || older_than.is_some_and(|o| age >= o)
            || keep_storage.is_some_and(|k| remaining > k);
        if u.foreign || !wanted {
            if u.foreign {
                report
                    .other_paths
                    .extend(u.parts.iter().map(|p| p.1.clone()));
            }
            add(&mut report.kept, u);
            report.kept_bytes += bytes;
            continue;
        }
        // a root some process holds stays; the lock taken here keeps new users out meanwhile
        let _held = match &u.lock {
            Some(marker) => match try_take(marker) {
                Some(l) => l,
                None => {
                    report.held.extend(u.parts.iter().map(|p| p.1.clone()));
                    add(&mut report.kept, u);
                    report.kept_bytes += bytes;
                    continue;
                }
            },
            None => None,
        };
        // the record first: a step without its record is never used
        for (k, p, _) in &u.parts {
            if *k == Kind::Blobs {
                drop_referrers(&refs, p)?;
            }
            remove_path(p)?;
        }
        ocibuild_oci::failpoint::hit("prune");
        add(&mut report.removed, u);
        report.removed_bytes += bytes;
        if !u.leftover {
            remaining = remaining.saturating_sub(bytes);
        }
    }
    store.remove_dangling_mappings()?;
    // step records whose layer blob went with this prune
    crate::df::prune_steps(store, Some(Duration::MAX))?;
    // containers that ocibuild recreates on use go when empty
    let root = store.root();
    for d in [
        "engine/rootfs",
        "engine/cache",
        "engine/df",
        "engine/work",
        "engine/builds",
        "engine/bases",
        "engine/pulled",
        "engine/locks",
        "engine",
        "debian/sha256",
        "debian/inrelease",
        "debian",
        "logs",
    ] {
        let _ = fs::remove_dir(root.join(d));
    }
    Ok(report)
}

/// Roots this process uses: a shared lock on each one's `complete` marker, held until the
/// process exits, so a `cache prune` elsewhere keeps them.
static HELD: Mutex<Vec<File>> = Mutex::new(Vec::new());

/// Mark the root `dir` (`ROOT/engine/rootfs/<name>`) used now and hold it for this process.
/// Best effort: a read-only store still builds.
pub fn hold_root(dir: &Path) {
    let marker = dir.join("complete");
    let Ok(f) = File::options().read(true).write(true).open(&marker) else {
        return;
    };
    let _ = f.set_modified(SystemTime::now());
    if f.lock_shared().is_ok()
        && let Ok(mut h) = HELD.lock()
    {
        h.push(f);
    }
}

/// Mark a directory (a cache mount) used now. Best effort.
pub fn touch_dir(dir: &Path) {
    if let Ok(f) = File::open(dir) {
        let _ = f.set_modified(SystemTime::now());
    }
}

/// The store's skeleton: what a flagless prune leaves (for tests and docs).
pub fn skeleton() -> &'static [&'static str] {
    TOP
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn write(p: &Path, n: usize) {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, vec![7u8; n]).unwrap();
    }

    fn age(p: &Path, days: u64) {
        let t = SystemTime::now() - Duration::from_secs(days * 86_400);
        let f = File::options().write(true).open(p).unwrap();
        f.set_times(fs::FileTimes::new().set_accessed(t).set_modified(t))
            .unwrap();
    }

    /// A store with one of everything.
    fn store() -> (tempfile::TempDir, ContentStore) {
        let t = tempfile::tempdir().unwrap();
        let s = ContentStore::open(t.path().join("store")).unwrap();
        let r = s.root().to_path_buf();
        s.put_bytes(&[1u8; 1000]).unwrap();
        write(&r.join("engine/rootfs/abc/rootfs/usr/bin/tool"), 5000);
        write(&r.join("engine/rootfs/abc/complete"), 0);
        write(&r.join("engine/rootfs/.rootfs-x1/rootfs/etc/half"), 300);
        write(&r.join("debian/sha256/0123"), 4000);
        write(&r.join("debian/inrelease/main"), 100);
        write(&r.join("engine/cache/go-build/0a/obj"), 2000);
        write(&r.join("engine/df/k1.json"), 50);
        write(&r.join("engine/df/k1/app/out"), 700);
        write(&r.join("engine/df/.step-9/partial"), 70);
        write(&r.join("engine/builds/b1.json"), 40);
        write(&r.join("engine/work/.tmp1/stage-0/x"), 90);
        write(&r.join("logs/build-1.log"), 600);
        write(&r.join("engine/host-root/usr/.keep"), 1);
        (t, s)
    }

    #[test]
    fn usage_counts_every_kind_and_every_byte() {
        let (_t, s) = store();
        let u = usage(&s);
        let b = |k: &str| u.kinds[k].bytes;
        assert!(b("blobs") >= 1000, "{u:?}");
        assert!(b("toolchain_roots") >= 5300, "{u:?}");
        assert!(b("package_cache") >= 4100, "{u:?}");
        assert!(b("cache_mounts") >= 2000, "{u:?}");
        assert!(b("step_changes") >= 770, "{u:?}");
        assert!(b("step_records") >= 90, "{u:?}");
        assert!(b("logs") >= 600, "{u:?}");
        assert!(b("temp") >= 90, "{u:?}");
        assert!(b("other") >= 1, "{u:?}");
        // every byte: the walk of the whole root gives the same total
        let mut seen = HashSet::new();
        assert_eq!(u.total_bytes, tree_bytes(s.root(), &mut seen));
        // a hard link is counted once
        fs::hard_link(
            s.root().join("engine/rootfs/abc/rootfs/usr/bin/tool"),
            s.root().join("engine/df/k1/app/tool"),
        )
        .unwrap();
        let u2 = usage(&s);
        assert_eq!(u2.total_bytes, u.total_bytes);
    }

    #[test]
    fn prune_by_age_and_budget_then_everything() {
        let (_t, s) = store();
        let r = s.root().to_path_buf();
        age(&r.join("engine/rootfs/abc/complete"), 30);
        age(&r.join("debian/sha256/0123"), 30);
        let rep = prune(&s, Some(Duration::from_secs(7 * 86_400)), None).unwrap();
        assert!(!r.join("engine/rootfs/abc").exists(), "{rep:?}");
        assert!(!r.join("engine/rootfs/.rootfs-x1").exists(), "leftover");
        assert!(!r.join("engine/df/.step-9").exists(), "leftover");
        assert!(!r.join("engine/work/.tmp1").exists(), "leftover");
        assert!(r.join("engine/df/k1").exists() && r.join("logs/build-1.log").exists());
        assert!(!r.join("debian/sha256/0123").exists(), "{rep:?}");
        assert!(r.join("debian/inrelease/main").exists(), "{rep:?}");
        assert!(rep.removed["toolchain_roots"].bytes >= 5300, "{rep:?}");
        // a budget: the least recently used go first until the rest fits
        age(&r.join("engine/df/k1.json"), 3);
        let all: u64 = units(&s).0.iter().map(Unit::bytes).sum();
        let rep = prune(&s, None, Some(all - 1)).unwrap();
        assert!(!r.join("engine/df/k1").exists(), "{rep:?}");
        assert!(!r.join("engine/df/k1.json").exists(), "{rep:?}");
        assert_eq!(rep.removed["step_changes"].items, 0, "{rep:?}");
        assert_eq!(rep.removed["step_records"].items, 1, "{rep:?}");
        assert!(
            r.join("logs/build-1.log").exists(),
            "only the oldest goes: {rep:?}"
        );
        // flagless: the skeleton only
        prune(&s, None, None).unwrap();
        let mut left: Vec<String> = walkdir::WalkDir::new(&r)
            .min_depth(1)
            .into_iter()
            .flatten()
            .map(|e| e.path().strip_prefix(&r).unwrap().display().to_string())
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["blobs", "blobs/sha256", "layers", "store.lock", "tmp"]
        );
    }

    /// Found by the kill soak: a prune that stopped after a blob (killed, or its budget met)
    /// left the records and mappings naming that blob, and `cache verify` called them broken.
    #[test]
    fn a_partial_prune_leaves_no_reference_to_a_removed_blob() {
        let t = tempfile::tempdir().unwrap();
        let s = ContentStore::open(t.path().join("store")).unwrap();
        let r = s.root().to_path_buf();
        let old = s.put_bytes(&[3u8; 5000]).unwrap();
        let keep = s.put_bytes(&[4u8; 10]).unwrap();
        let desc = |d: &ocibuild_oci::Digest, n: u64| {
            serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": d.to_string(), "size": n})
        };
        let pin = r.join("engine/bases/pin.json");
        fs::create_dir_all(pin.parent().unwrap()).unwrap();
        fs::write(
            &pin,
            serde_json::to_vec(&serde_json::json!({"manifest": desc(&old, 5000)})).unwrap(),
        )
        .unwrap();
        let step = r.join("engine/df/k2.json");
        write(&r.join("engine/df/k2/app/out"), 10);
        fs::write(
            &step,
            serde_json::to_vec(&serde_json::json!({"layer": [desc(&old, 5000), "x"]})).unwrap(),
        )
        .unwrap();
        let other = r.join("engine/builds/b2.json");
        fs::create_dir_all(other.parent().unwrap()).unwrap();
        fs::write(
            &other,
            serde_json::to_vec(&serde_json::json!({"image": desc(&keep, 10)})).unwrap(),
        )
        .unwrap();
        s.record_layer(&old, "gzip", &old).unwrap();
        // the old blob is the least recently used: a budget removes it and nothing else
        age(&s.blob_path(&old), 30);
        let all: u64 = units(&s).0.iter().map(Unit::bytes).sum();
        let rep = prune(&s, None, Some(all - 1)).unwrap();
        assert!(!s.has(&old) && s.has(&keep), "{rep:?}");
        let v = ocibuild_oci::verify::verify(&s, false).unwrap();
        assert!(v.ok(), "{:?}", v.problems);
        assert!(!pin.exists() && !step.exists() && !r.join("engine/df/k2").exists());
        assert!(other.exists(), "a record naming a kept blob stays");
    }

    #[test]
    fn a_held_root_is_kept() {
        let (_t, s) = store();
        let r = s.root().to_path_buf();
        let holder = File::open(r.join("engine/rootfs/abc/complete")).unwrap();
        holder.lock_shared().unwrap();
        let rep = prune(&s, None, None).unwrap();
        assert!(r.join("engine/rootfs/abc/rootfs/usr/bin/tool").is_file());
        assert_eq!(rep.held, vec![r.join("engine/rootfs/abc")]);
        drop(holder);
        prune(&s, None, None).unwrap();
        assert!(!r.join("engine/rootfs/abc").exists());
    }
}
