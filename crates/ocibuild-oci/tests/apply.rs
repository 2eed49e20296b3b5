//! `apply_entries` against `extract_layer`: the same entries, applied directly or written as a tar
//! and extracted, give the same tree (types, modes, owners when root, mtimes, contents, link
//! targets, hard-link groups), layer over layer, whiteouts and merged-/usr symlinks included;
//! and the safety rules hold for both.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ocibuild_oci::Compression;
use ocibuild_oci::extract::{ExtractOptions, Sources, apply_entries, extract_layer};
use ocibuild_oci::layer::{EntryKind, LayerBuilder, LayerEntry, LayerOptions};

const EPOCH: u64 = 1_700_000_000;

fn builder(entries: &[LayerEntry]) -> LayerBuilder {
    let mut b = LayerBuilder::new(LayerOptions {
        compression: Compression::None,
        source_date_epoch: EPOCH,
        ..LayerOptions::default()
    });
    for e in entries {
        b.add_entry(e.clone()).unwrap();
    }
    b
}

fn entry(path: &str, kind: EntryKind, mode: u32) -> LayerEntry {
    LayerEntry {
        path: path.into(),
        kind,
        mode,
        uid: Some(0),
        gid: Some(0),
        mtime: Some(EPOCH - 100),
    }
}

/// One row per path: (type, mode, uid, gid, mtime, contents or link target, hard-link group).
fn snapshot(root: &Path) -> BTreeMap<String, String> {
    let mut inodes: BTreeMap<u64, String> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).sort_by_file_name() {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(root).unwrap().display().to_string();
        let m = fs::symlink_metadata(e.path()).unwrap();
        let ft = m.file_type();
        let (kind, body) = if ft.is_symlink() {
            ("l", fs::read_link(e.path()).unwrap().display().to_string())
        } else if ft.is_dir() {
            ("d", String::new())
        } else {
            let group = if m.nlink() > 1 {
                inodes.entry(m.ino()).or_insert_with(|| rel.clone()).clone()
            } else {
                String::new()
            };
            (
                "f",
                format!(
                    "{} link-group={group}",
                    String::from_utf8_lossy(&fs::read(e.path()).unwrap())
                ),
            )
        };
        let mode = if ft.is_symlink() {
            0
        } else {
            m.permissions().mode() & 0o7777
        };
        // the root dir's mtime is not part of any layer
        let mtime = if rel.is_empty() { 0 } else { m.mtime() };
        let owner = if is_root() {
            format!("{}:{}", m.uid(), m.gid())
        } else {
            String::new()
        };
        out.insert(rel, format!("{kind} {mode:o} {owner} {mtime} {body}"));
    }
    out
}

fn is_root() -> bool {
    nix_euid() == 0
}

fn nix_euid() -> u32 {
    fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(1)
}

fn opts() -> ExtractOptions {
    ExtractOptions {
        preserve_owner: is_root(),
        ..ExtractOptions::default()
    }
}

/// Apply `layers` three ways: tar + extract, apply (copy), apply (consume, over copies of the
/// sources); the three trees must be equal. Returns the tree.
fn three_ways(layers: &[Vec<LayerEntry>], src: &Path) -> BTreeMap<String, String> {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        tmp.path().join("tar"),
        tmp.path().join("copy"),
        tmp.path().join("consume"),
    );
    for d in [&a, &b, &c] {
        fs::create_dir(d).unwrap();
    }
    // consume: the sources are staged copies, one staging dir for all the layers, as the Debian
    // base builder stages them
    let staged = tmp.path().join("staged");
    fs::create_dir(&staged).unwrap();
    for layer in layers {
        let (tar, _) = builder(layer).write(Vec::new()).unwrap();
        extract_layer(tar.as_slice(), &a, &opts()).unwrap();
        let planned = builder(layer).into_entries().unwrap();
        apply_entries(planned, &b, &opts(), Sources::Copy).unwrap();
        let planned: Vec<LayerEntry> = builder(layer)
            .into_entries()
            .unwrap()
            .into_iter()
            .map(|mut e| {
                if let EntryKind::File(p) = &e.kind {
                    let to = staged.join(p.strip_prefix(src).unwrap());
                    if !to.exists() {
                        fs::copy(p, &to).unwrap();
                    }
                    e.kind = EntryKind::File(to);
                }
                e
            })
            .collect();
        apply_entries(planned, &c, &opts(), Sources::Consume).unwrap();
    }
    fs::remove_dir_all(&staged).unwrap();
    // the sources of the copy are untouched
    assert_eq!(fs::read(src.join("one")).unwrap(), b"one\n");
    let (sa, sb, sc) = (snapshot(&a), snapshot(&b), snapshot(&c));
    assert_eq!(
        sa, sb,
        "apply_entries (copy) differs from extracting the tar"
    );
    assert_eq!(
        sa, sc,
        "apply_entries (consume) differs from extracting the tar"
    );
    sa
}

fn sources() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let src = tempfile::tempdir().unwrap();
    let one = src.path().join("one");
    let two = src.path().join("two");
    fs::write(&one, b"one\n").unwrap();
    fs::write(&two, b"two two\n").unwrap();
    (src, one, two)
}

#[test]
fn one_layer_of_every_kind_matches_the_tar() {
    let (src, one, two) = sources();
    let layer = vec![
        entry("usr/bin", EntryKind::Dir, 0o755),
        entry("usr/bin/tool", EntryKind::File(one.clone()), 0o4755),
        // the same source twice (content-addressed staging): two files, not one inode
        entry("usr/share/doc/a", EntryKind::File(one.clone()), 0o644),
        entry("usr/share/doc/b", EntryKind::File(two.clone()), 0o600),
        entry(
            "usr/bin/alias",
            EntryKind::Hardlink("usr/bin/tool".into()),
            0o4755,
        ),
        entry(
            "usr/lib/link",
            EntryKind::Symlink("../bin/tool".into()),
            0o777,
        ),
        entry("etc/motd", EntryKind::Bytes(b"hello\n".to_vec()), 0o644),
        entry("var/empty", EntryKind::Dir, 0o555),
        entry("tmp", EntryKind::Dir, 0o1777),
    ];
    let t = three_ways(&[layer], src.path());
    assert!(t["usr/bin/tool"].starts_with("f 4755"), "{t:?}");
    assert!(
        t["usr/bin/tool"].contains("link-group=usr/bin/alias"),
        "{t:?}"
    );
    assert!(t["usr/share/doc/a"].ends_with("link-group="), "{t:?}");
    assert!(t["var/empty"].starts_with("d 555"), "{t:?}");
    // missing parents come in as 0755 directories
    assert!(t["usr/share"].starts_with("d 755"), "{t:?}");
}

#[test]
fn layers_whiteouts_and_merged_usr_match_the_tar() {
    let (src, one, two) = sources();
    let lower = vec![
        entry("lib", EntryKind::Symlink("usr/lib".into()), 0o777),
        entry("usr/lib/x/old", EntryKind::File(one.clone()), 0o644),
        entry("usr/lib/gone", EntryKind::File(two.clone()), 0o644),
        entry("opaque/keep-not", EntryKind::File(two.clone()), 0o644),
        entry("replaced", EntryKind::Dir, 0o755),
        entry("replaced/child", EntryKind::File(one.clone()), 0o644),
    ];
    let upper = vec![
        // through the merged-/usr link, as a later package writes lib/…
        entry("lib/x/new", EntryKind::File(two.clone()), 0o755),
        entry("usr/lib/gone", EntryKind::Whiteout, 0o644),
        entry("opaque", EntryKind::OpaqueDir, 0o755),
        entry("opaque/mine", EntryKind::File(one.clone()), 0o644),
        // a file replaces a whole directory of the layer below
        entry("replaced", EntryKind::File(one.clone()), 0o640),
        // the same source as a file of the layer below, with another mtime: its own inode
        LayerEntry {
            mtime: Some(EPOCH - 5),
            ..entry("usr/share/again", EntryKind::File(one.clone()), 0o644)
        },
    ];
    let t = three_ways(&[lower, upper], src.path());
    // the builder emits `lib` and `lib/x` as parents of `lib/x/new`, and a directory entry
    // replaces a symlink (overlay semantics): the Debian builder moves paths into /usr first
    assert!(t["lib"].starts_with("d 755"), "{t:?}");
    assert!(t.contains_key("lib/x/new"), "{t:?}");
    assert!(t.contains_key("usr/lib/x/old"), "{t:?}");
    assert!(!t.contains_key("usr/lib/gone"), "{t:?}");
    assert!(!t.contains_key("opaque/keep-not"), "{t:?}");
    assert!(t.contains_key("opaque/mine"), "{t:?}");
    assert!(t["replaced"].starts_with("f 640"), "{t:?}");
    assert!(!t.contains_key("replaced/child"), "{t:?}");
    assert!(
        t["usr/lib/x/old"].contains(&format!(" {} ", EPOCH - 100)),
        "{t:?}"
    );
    assert!(
        t["usr/share/again"].contains(&format!(" {} ", EPOCH - 5)),
        "{t:?}"
    );
}

#[test]
fn escaping_symlinks_are_not_followed() {
    // entries straight to apply_entries (not through a builder, which would emit the parents
    // as directories): the parent is resolved through the symlinks of the layer below
    let (src, one, _) = sources();
    let outside = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let lower = vec![
        entry(
            "abs",
            EntryKind::Symlink(outside.path().display().to_string()),
            0o777,
        ),
        entry("rel", EntryKind::Symlink("../../../../..".into()), 0o777),
    ];
    apply_entries(lower, root.path(), &opts(), Sources::Copy).unwrap();
    // an absolute target restarts at the root: the file lands inside
    let through_abs = vec![entry("abs/x", EntryKind::File(one.clone()), 0o644)];
    apply_entries(through_abs, root.path(), &opts(), Sources::Copy).unwrap();
    assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
    let inside = root
        .path()
        .join(outside.path().strip_prefix("/").unwrap())
        .join("x");
    assert!(inside.is_file(), "{}", inside.display());
    // a relative target climbing out is refused, also when the source would be consumed
    for sources in [Sources::Copy, Sources::Consume] {
        let through_rel = vec![entry("rel/y", EntryKind::File(one.clone()), 0o644)];
        let err = apply_entries(through_rel, root.path(), &opts(), sources).unwrap_err();
        assert!(err.to_string().contains("escapes the root"), "{err}");
    }
    // Copy leaves the source alone, and the refused Consume never linked it
    assert_eq!(fs::metadata(&one).unwrap().nlink(), 1);
    drop(src);
}

/// `Sources::Shared` (the unpacked-package cache): a source whose owner, mode and mtime already
/// are the entry's is hard-linked once per call, a second path gets a copy, a source with other
/// metadata is copied, and no source is ever changed.
#[test]
fn shared_sources_are_linked_as_they_are_and_never_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("ready");
    fs::write(&src, b"ready contents").unwrap();
    fs::set_permissions(&src, fs::Permissions::from_mode(0o755)).unwrap();
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(EPOCH - 100);
    fs::File::options()
        .write(true)
        .open(&src)
        .unwrap()
        .set_modified(t)
        .unwrap();
    let root_owned = fs::metadata("/proc/self").unwrap().uid() == 0;
    if root_owned {
        std::os::unix::fs::chown(&src, Some(0), Some(0)).unwrap();
    }
    let before = fs::metadata(&src).unwrap();
    let entries = vec![
        entry("a", EntryKind::File(src.clone()), 0o755),
        entry("b", EntryKind::File(src.clone()), 0o755),
        entry("c", EntryKind::File(src.clone()), 0o644),
    ];
    let planned = builder(&entries).into_entries().unwrap();
    let root = tmp.path().join("root");
    fs::create_dir(&root).unwrap();
    let xo = ExtractOptions {
        preserve_owner: root_owned,
        ..ExtractOptions::default()
    };
    apply_entries(planned, &root, &xo, Sources::Shared).unwrap();
    let ino = |p: &Path| fs::metadata(p).unwrap().ino();
    assert_eq!(ino(&root.join("a")), before.ino(), "a is the ready file");
    assert_ne!(ino(&root.join("b")), before.ino(), "b is a copy");
    assert_ne!(
        ino(&root.join("c")),
        before.ino(),
        "c (other mode) is a copy"
    );
    assert_eq!(fs::metadata(root.join("c")).unwrap().mode() & 0o7777, 0o644);
    for p in ["a", "b", "c"] {
        assert_eq!(fs::read(root.join(p)).unwrap(), b"ready contents");
    }
    let after = fs::metadata(&src).unwrap();
    assert_eq!(
        (after.mode(), after.uid(), after.gid(), after.mtime()),
        (before.mode(), before.uid(), before.gid(), before.mtime())
    );
}
