//! Distroless bases against the machine's real mirror: lock, build, share layers, rebuild from
//! the lockfile (online and offline), and bookworm's merged-/usr links. The package cache is
//! shared with the other test binaries of this crate (under cargo's test tmpdir).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

use ocibuild_debian::apt::Release;
use ocibuild_debian::base::{BaseOptions, Variant, build_base, lock_base};
use ocibuild_oci::store::ContentStore;

fn cache() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("ocibuild-build-tests-store")
        .join("debian");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Layer path → (tar type, link target) of a stored gzip layer.
fn layer_entries(store: &ContentStore, d: &ocibuild_oci::Digest) -> BTreeMap<String, (u8, String)> {
    let mut buf = Vec::new();
    flate2::read::GzDecoder::new(store.open_blob(d).unwrap())
        .read_to_end(&mut buf)
        .unwrap();
    let mut out = BTreeMap::new();
    for e in tar::Archive::new(&buf[..]).entries().unwrap() {
        let e = e.unwrap();
        let p = String::from_utf8_lossy(&e.path_bytes())
            .trim_end_matches('/')
            .to_string();
        let link = e
            .link_name_bytes()
            .map(|l| String::from_utf8_lossy(&l).into_owned())
            .unwrap_or_default();
        out.insert(p, (e.header().entry_type().as_byte(), link));
    }
    out
}

#[test]
fn trixie_static_python3_share_layers_and_rebuild_from_the_lockfile() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ContentStore::open(tmp.path().join("store")).unwrap();

    let st = build_base(&store, &BaseOptions::new("static", cache())).unwrap();
    let names: Vec<&str> = st.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["static", "fixups"]);
    let pkgs: Vec<&str> = st.lock.packages().map(|p| p.name.as_str()).collect();
    assert!(!pkgs.contains(&"libc6"), "static has no libc: {pkgs:?}");
    for want in ["base-files", "ca-certificates", "tzdata", "netbase"] {
        assert!(pkgs.contains(&want), "{want} in {pkgs:?}");
    }
    let l0 = layer_entries(&store, &st.layers[0].descriptor.digest);
    assert_eq!(l0.get("bin"), Some(&(b'2', "usr/bin".to_string())));
    assert!(l0.contains_key("var/lib/dpkg/status.d/base-files"));
    assert!(
        l0.contains_key("usr/share/zoneinfo/UTC") || l0.contains_key("usr/share/zoneinfo/Etc/UTC")
    );
    assert!(
        !l0.keys().any(|k| k.starts_with("usr/share/man/")),
        "man pages trimmed"
    );
    let fx = layer_entries(&store, &st.layers[1].descriptor.digest);
    for p in [
        "etc/passwd",
        "etc/group",
        "etc/ssl/certs/ca-certificates.crt",
        "tmp",
        "home/nonroot",
    ] {
        assert!(fx.contains_key(p), "{p} in the fixups layer");
    }
    let cfg = &st.image.config;
    assert_eq!(cfg["config"]["User"], "0");
    assert!(cfg["created"].as_str().unwrap() > "2020");

    let mut o = BaseOptions::new("python3", cache());
    o.variant = Variant::Nonroot;
    let py = build_base(&store, &o).unwrap();
    let names: Vec<&str> = py.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["static", "cc", "python3", "fixups"]);
    assert_eq!(
        py.layers[0].diff_id, st.layers[0].diff_id,
        "python3 shares static's layer"
    );
    assert!(py.layers[0].reused);
    assert_eq!(py.image.config["config"]["User"], "65532");

    // Two builds from one lockfile (the second offline) give the same digest.
    let lockfile = tmp.path().join("ocibuild.lock");
    py.lock.save(&lockfile).unwrap();
    let mut o = BaseOptions::new("python3", cache());
    o.lock = Some(lockfile.clone());
    let a = build_base(&store, &o).unwrap();
    o.offline = true;
    let store2 = ContentStore::open(tmp.path().join("store2")).unwrap();
    let b = build_base(&store2, &o).unwrap();
    assert_eq!(a.image.manifest_desc.digest, py.image.manifest_desc.digest);
    assert_eq!(a.image.manifest_desc.digest, b.image.manifest_desc.digest);
    // A lock for another profile is refused.
    let mut wrong = BaseOptions::new("static", cache());
    wrong.lock = Some(lockfile);
    assert!(build_base(&store, &wrong).is_err());

    for (name, img, theirs) in [("static", &st, "≈2 MiB"), ("python3", &py, "≈50 MB")] {
        eprintln!(
            "size {name} (trixie): {:.1} MB compressed, {:.1} MB uncompressed (distroless: {theirs} compressed)",
            img.compressed_size as f64 / 1e6,
            img.uncompressed_size as f64 / 1e6
        );
    }
}

#[test]
fn bookworm_static_gets_merged_usr_links() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ContentStore::open(tmp.path().join("store")).unwrap();
    let mut o = BaseOptions::new("cc", cache());
    o.release = Release::Bookworm;
    let lock = lock_base(&o).unwrap();
    assert_eq!(lock.release, "bookworm");
    assert!(lock.packages().any(|p| p.name == "libssl3"));
    let img = build_base(&store, &o).unwrap();
    let l0 = layer_entries(&store, &img.layers[0].descriptor.digest);
    for d in ["bin", "sbin", "lib", "lib64"] {
        assert_eq!(l0.get(d), Some(&(b'2', format!("usr/{d}"))), "{d} link");
    }
    for l in &img.layers {
        let e = layer_entries(&store, &l.descriptor.digest);
        assert!(
            !e.keys()
                .any(|k| k.starts_with("lib/") || k.starts_with("bin/") || k.starts_with("lib64/")),
            "layer {} has paths outside merged /usr",
            l.name
        );
    }
    let cc = layer_entries(&store, &img.layers[1].descriptor.digest);
    assert!(
        cc.contains_key("usr/lib/x86_64-linux-gnu/libc.so.6"),
        "libc moved into /usr"
    );
    assert!(cc.contains_key("usr/lib64/ld-linux-x86-64.so.2"));
    eprintln!(
        "size cc (bookworm): {:.1} MB compressed (distroless base: ≈20 MB)",
        img.compressed_size as f64 / 1e6
    );
}

/// path → (type, mode, owner, mtime, contents' SHA256 or link target, how many paths of the
/// tree share a file's inode: its hard-link group; links from outside the tree, such as the
/// unpacked-package cache's, do not count).
fn tree_snapshot(root: &std::path::Path) -> BTreeMap<String, String> {
    use sha2::{Digest as _, Sha256};
    use std::os::unix::fs::MetadataExt;
    let mut group: BTreeMap<(u64, u64), usize> = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                todo.push(p);
            } else if m.is_file() {
                *group.entry((m.dev(), m.ino())).or_default() += 1;
            }
        }
    }
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let body = if m.file_type().is_symlink() {
                std::fs::read_link(&p).unwrap().display().to_string()
            } else if m.is_dir() {
                todo.push(p.clone());
                String::new()
            } else {
                let data = std::fs::read(&p).unwrap();
                format!(
                    "{} links={}",
                    hex::encode(Sha256::digest(&data)),
                    group[&(m.dev(), m.ino())]
                )
            };
            let mode = if m.file_type().is_symlink() {
                0
            } else {
                m.mode()
            };
            out.insert(
                rel,
                format!("{mode:o} {}:{} {} {body}", m.uid(), m.gid(), m.mtime()),
            );
        }
    }
    out
}

#[test]
fn rootfs_straight_from_the_lock_equals_the_extracted_image() {
    use ocibuild_debian::base::build_rootfs_from_lock;
    use ocibuild_oci::extract::{ExtractOptions, extract_layer_blob};
    use ocibuild_oci::media::layer_compression;
    use std::os::unix::fs::MetadataExt;
    let tmp = tempfile::tempdir().unwrap();
    let store = ContentStore::open(tmp.path().join("store")).unwrap();
    // several layers (static, cc, python3, fixups), files with the same contents in more than
    // one layer (licences), setuid-free but with links, alternatives and merged /usr
    let o = BaseOptions::new("python3", cache());
    let img = build_base(&store, &o).unwrap();
    let root_owned = std::fs::metadata("/proc/self").unwrap().uid() == 0;
    let xo = ExtractOptions {
        preserve_owner: root_owned,
        ..ExtractOptions::default()
    };
    let extracted = tmp.path().join("extracted");
    std::fs::create_dir(&extracted).unwrap();
    let diff_ids = img.image.diff_ids().unwrap();
    for (l, d) in img.image.manifest.layers.iter().zip(&diff_ids) {
        let c = layer_compression(&l.media_type).unwrap();
        let f = std::io::BufReader::new(store.open_blob(&l.digest).unwrap());
        extract_layer_blob(f, c, Some(d), &extracted, &xo).unwrap();
    }
    let direct = tmp.path().join("direct");
    std::fs::create_dir(&direct).unwrap();
    let built = build_rootfs_from_lock(&img.lock, &o, &direct, &xo, tmp.path()).unwrap();
    assert_eq!(built.packages, img.lock.packages().count());
    // the unpacked-package cache is warm now (build_base filled it): a second root from the
    // same lock links the ready files, and is the same tree
    let again = tmp.path().join("again");
    std::fs::create_dir(&again).unwrap();
    build_rootfs_from_lock(&img.lock, &o, &again, &xo, tmp.path()).unwrap();
    assert_eq!(tree_snapshot(&again), tree_snapshot(&direct));
    let (a, b) = (tree_snapshot(&extracted), tree_snapshot(&direct));
    assert!(a.len() > 1000, "{} entries", a.len());
    let differ: Vec<_> = a
        .iter()
        .filter(|(k, v)| b.get(*k) != Some(v))
        .map(|(k, v)| format!("{k}: extracted {v} / direct {:?}", b.get(k)))
        .chain(
            b.keys()
                .filter(|k| !a.contains_key(*k))
                .map(|k| format!("{k}: only direct")),
        )
        .take(10)
        .collect();
    assert!(differ.is_empty(), "{differ:#?}");
    // the staging dir is gone: nothing but the two roots and the store in the temp dir
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("base-staging-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
