//! The deterministic layer writer against real directory trees, checked with independent readers:
//! the `tar`, `flate2` and `zstd` crates, and GNU tar / gzip / zstd on the command line.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fs::{self, File, FileTimes, Permissions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ocibuild_oci::Digest;
use ocibuild_oci::error::OciError;
use ocibuild_oci::layer::{EntryKind, LayerBuilder, LayerEntry, LayerInfo, LayerOptions};
use ocibuild_oci::media::Compression;

const EPOCH: u64 = 1_700_000_000;
/// Older than EPOCH: kept as is.
const OLD_MTIME: u64 = 1_600_000_000;

fn long_name() -> String {
    // 150 bytes in one component: cannot be split into ustar prefix/name, needs pax
    format!("{}.js", "l".repeat(147))
}

/// The test tree, as a shell script, so it can run under another umask in another process.
/// Every mode is set explicitly; `$MT` is the mtime (as `@seconds`) of everything except
/// `old.txt`, which is older than the epoch.
fn tree_script(reverse: bool) -> String {
    let mut steps = vec![
        "mkdir -p pkg/lib/deep/er empty bin".to_string(),
        "printf 'module.exports = 42;\\n' > pkg/lib/index.js".to_string(),
        "printf '{\"name\":\"pkg\"}' > pkg/package.json".to_string(),
        "printf '#!/bin/sh\\necho hi\\n' > bin/run".to_string(),
        "printf 'deep' > pkg/lib/deep/er/file".to_string(),
        format!("printf 'long' > pkg/{}", long_name()),
        "printf 'shared' > pkg/a-shared".to_string(),
        "ln pkg/a-shared pkg/lib/z-shared-link".to_string(),
        "ln -s ../pkg/lib/index.js bin/index".to_string(),
        "printf 'old' > old.txt".to_string(),
    ];
    if reverse {
        // mkdir stays first; everything else in another creation order (another readdir order)
        steps[1..].reverse();
        steps.retain(|s| !s.starts_with("ln pkg")); // hard link after its target
        steps.push("ln pkg/a-shared pkg/lib/z-shared-link".into());
    }
    let mut s = steps.join(" && ");
    s.push_str(" && chmod 0755 pkg pkg/lib pkg/lib/deep pkg/lib/deep/er bin && chmod 0700 empty");
    s.push_str(" && chmod 0644 pkg/lib/index.js pkg/package.json pkg/lib/deep/er/file old.txt");
    s.push_str(&format!(" && chmod 0644 pkg/{}", long_name()));
    s.push_str(" && chmod 0600 pkg/a-shared && chmod 4755 bin/run");
    s.push_str(" && find . -mindepth 1 -exec touch -h -d \"$MT\" {} +");
    s.push_str(&format!(" && touch -d @{OLD_MTIME} old.txt"));
    s
}

fn make_tree(root: &Path, umask: &str, mtime: u64, reverse: bool) {
    fs::create_dir_all(root).unwrap();
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask {umask} && cd \"$ROOT\" && {}",
            tree_script(reverse)
        ))
        .env("ROOT", root)
        .env("MT", format!("@{mtime}"))
        .status()
        .unwrap();
    assert!(st.success());
    fs::set_permissions(root, Permissions::from_mode(0o755)).unwrap();
}

fn opts(compression: Compression) -> LayerOptions {
    LayerOptions {
        compression,
        source_date_epoch: EPOCH,
        ..Default::default()
    }
}

fn build(root: &Path, dest: &str, o: LayerOptions) -> (Vec<u8>, LayerInfo) {
    let mut b = LayerBuilder::new(o);
    b.add_dir(root, dest).unwrap();
    b.write(Vec::new()).unwrap()
}

fn decompress(blob: &[u8], c: Compression) -> Vec<u8> {
    let mut out = Vec::new();
    match c {
        Compression::None => out.extend_from_slice(blob),
        // single-member reader: the layer must be one gzip member
        Compression::Gzip => {
            flate2::read::GzDecoder::new(blob)
                .read_to_end(&mut out)
                .unwrap();
        }
        Compression::Zstd => {
            #[cfg(feature = "zstd")]
            {
                out = zstd::stream::decode_all(blob).unwrap();
            }
        }
    }
    out
}

#[derive(Debug, Clone)]
struct Row {
    path: String,
    kind: u8,
    link: String,
    mode: u32,
    uid: u64,
    gid: u64,
    uname: Vec<u8>,
    gname: Vec<u8>,
    mtime: u64,
    body: Vec<u8>,
}

fn rows(tar: &[u8]) -> Vec<Row> {
    let mut a = tar::Archive::new(tar);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let h = e.header().clone();
            let path = String::from_utf8(e.path_bytes().into_owned()).unwrap();
            let link = e
                .link_name_bytes()
                .map(|l| String::from_utf8(l.into_owned()).unwrap())
                .unwrap_or_default();
            let mut body = Vec::new();
            e.read_to_end(&mut body).unwrap();
            Row {
                path,
                kind: h.entry_type().as_byte(),
                link,
                mode: h.mode().unwrap(),
                uid: h.uid().unwrap(),
                gid: h.gid().unwrap(),
                uname: h.username_bytes().unwrap_or_default().to_vec(),
                gname: h.groupname_bytes().unwrap_or_default().to_vec(),
                mtime: h.mtime().unwrap(),
                body,
            }
        })
        .collect()
}

fn by_path(rows: &[Row]) -> BTreeMap<String, Row> {
    rows.iter().map(|r| (r.path.clone(), r.clone())).collect()
}

/// Typeflags of the raw headers (follows sizes, including pax 'x' headers).
fn raw_typeflags(tar: &[u8]) -> Vec<u8> {
    let mut flags = Vec::new();
    let mut off = 0;
    while off + 512 <= tar.len() {
        let h = &tar[off..off + 512];
        if h.iter().all(|&b| b == 0) {
            break;
        }
        flags.push(h[156]);
        let size_field = std::str::from_utf8(&h[124..135]).unwrap();
        let size = u64::from_str_radix(size_field, 8).unwrap() as usize;
        off += 512 + size.div_ceil(512) * 512;
    }
    flags
}

fn gnu_tar(args: &[&str], tar: &[u8]) -> String {
    let mut child = Command::new("tar")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = tar.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "tar {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "tar warned: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn tool_accepts(tool: &str, args: &[&str], blob: &[u8]) -> Vec<u8> {
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = blob.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn same_tree_same_bytes_whatever_mtimes_umask_and_creation_order() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    make_tree(&a, "022", now, false);
    make_tree(&b, "077", 2_000_000_000, true);
    for c in [Compression::Gzip, Compression::Zstd, Compression::None] {
        if cfg!(not(feature = "zstd")) && c == Compression::Zstd {
            continue;
        }
        for dest in ["", "app/sub"] {
            let (blob_a, info_a) = build(&a, dest, opts(c));
            let (blob_b, info_b) = build(&b, dest, opts(c));
            assert_eq!(info_a, info_b, "{c:?} {dest:?}");
            assert!(blob_a == blob_b, "{c:?} {dest:?}: blobs differ");
        }
    }
    // and a different epoch gives a different layer (mtimes are in it)
    let (_, i1) = build(&a, "", opts(Compression::Gzip));
    let (_, i2) = build(
        &a,
        "",
        LayerOptions {
            source_date_epoch: EPOCH + 1,
            ..opts(Compression::Gzip)
        },
    );
    assert_ne!(i1.diff_id, i2.diff_id);
}

fn check_layer(c: Compression) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    make_tree(&root, "022", 1_900_000_000, false);
    let blob_path = tmp.path().join("blob");
    let mut b = LayerBuilder::new(opts(c));
    b.add_dir(&root, "app/sub").unwrap();
    let (f, info) = b.write(File::create(&blob_path).unwrap()).unwrap();
    drop(f);
    let blob = fs::read(&blob_path).unwrap();
    assert_eq!(info.digest, Digest::of_bytes(&blob));
    assert_eq!(info.size, blob.len() as u64);
    assert_eq!(info.compression, c);
    assert_eq!(info.media_type, c.oci_layer_media_type());
    let tar = decompress(&blob, c);
    assert_eq!(info.diff_id, Digest::of_bytes(&tar));
    assert_eq!(info.uncompressed_size, tar.len() as u64);

    let rows = rows(&tar);
    // sorted by path bytes (without the trailing '/'), no duplicates, parents first
    let keys: Vec<&str> = rows.iter().map(|r| r.path.trim_end_matches('/')).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(keys, sorted);
    for k in &keys {
        if let Some((parent, _)) = k.rsplit_once('/') {
            let i = keys.iter().position(|x| *x == parent).expect(parent);
            assert!(i < keys.iter().position(|x| x == k).unwrap());
        }
    }
    for r in &rows {
        assert_eq!((r.uid, r.gid), (0, 0), "{}", r.path);
        assert!(r.uname.is_empty() && r.gname.is_empty(), "{}", r.path);
        assert!(r.mtime <= EPOCH);
        assert_eq!(r.kind == b'5', r.path.ends_with('/'), "{}", r.path);
    }
    let m = by_path(&rows);
    let names: Vec<&str> = m.keys().map(String::as_str).collect();
    let long = format!("app/sub/pkg/{}", long_name());
    let expected = [
        "app/",
        "app/sub/",
        "app/sub/bin/",
        "app/sub/bin/index",
        "app/sub/bin/run",
        "app/sub/empty/",
        "app/sub/old.txt",
        "app/sub/pkg/",
        "app/sub/pkg/a-shared",
        long.as_str(),
        "app/sub/pkg/lib/",
        "app/sub/pkg/lib/deep/",
        "app/sub/pkg/lib/deep/er/",
        "app/sub/pkg/lib/deep/er/file",
        "app/sub/pkg/lib/index.js",
        "app/sub/pkg/lib/z-shared-link",
        "app/sub/pkg/package.json",
    ];
    let mut exp_sorted = expected.to_vec();
    exp_sorted.sort();
    assert_eq!(names, exp_sorted);
    // synthesized parents vs. the source root (0755 set explicitly) and modes from the source
    assert_eq!(m["app/"].mode, 0o755);
    assert_eq!(m["app/"].mtime, EPOCH);
    assert_eq!(m["app/sub/empty/"].mode, 0o700);
    assert_eq!(m["app/sub/bin/run"].mode, 0o4755);
    assert_eq!(m["app/sub/bin/run"].body, b"#!/bin/sh\necho hi\n");
    assert_eq!(m["app/sub/pkg/a-shared"].mode, 0o600);
    // clamping: newer than the epoch → epoch; older → kept
    assert_eq!(m["app/sub/pkg/lib/index.js"].mtime, EPOCH);
    assert_eq!(m["app/sub/old.txt"].mtime, OLD_MTIME);
    // symlink and hard link
    let sl = &m["app/sub/bin/index"];
    assert_eq!(
        (sl.kind, sl.link.as_str(), sl.mode),
        (b'2', "../pkg/lib/index.js", 0o777)
    );
    let hl = &m["app/sub/pkg/lib/z-shared-link"];
    assert_eq!((hl.kind, hl.link.as_str()), (b'1', "app/sub/pkg/a-shared"));
    assert!(hl.body.is_empty());
    assert_eq!(m["app/sub/pkg/a-shared"].body, b"shared");
    // the 150-byte name round-trips through a pax header, never a GNU long name
    assert_eq!(m[&long].body, b"long");
    let flags = raw_typeflags(&tar);
    assert!(flags.contains(&b'x'));
    assert!(!flags.contains(&b'L') && !flags.contains(&b'K'));
    assert_eq!(&tar[tar.len() - 1024..], &[0u8; 1024][..]);

    // GNU tar lists and extracts it, without warnings
    let listing = gnu_tar(&["-tvf", "-"], &tar);
    assert!(listing.contains(&long), "{listing}");
    assert!(
        listing.contains("app/sub/pkg/lib/z-shared-link link to app/sub/pkg/a-shared"),
        "{listing}"
    );
    assert!(
        listing.contains("app/sub/bin/index -> ../pkg/lib/index.js"),
        "{listing}"
    );
    let x = tmp.path().join("x");
    fs::create_dir(&x).unwrap();
    gnu_tar(&["-xf", "-", "-C", x.to_str().unwrap()], &tar);
    let out = x.join("app/sub");
    assert_eq!(
        fs::read(out.join("pkg/lib/index.js")).unwrap(),
        b"module.exports = 42;\n"
    );
    assert_eq!(
        fs::read(out.join("pkg").join(long_name())).unwrap(),
        b"long"
    );
    let (m1, m2) = (
        fs::metadata(out.join("pkg/a-shared")).unwrap(),
        fs::metadata(out.join("pkg/lib/z-shared-link")).unwrap(),
    );
    assert_eq!(m1.ino(), m2.ino());
    assert_eq!(
        fs::read_link(out.join("bin/index")).unwrap(),
        Path::new("../pkg/lib/index.js")
    );
    assert_eq!(
        fs::metadata(out.join("old.txt")).unwrap().mtime() as u64,
        OLD_MTIME
    );

    // the compressors' own tools accept the blob
    match c {
        Compression::Gzip => {
            assert_eq!(tool_accepts("gzip", &["-dc"], &blob), tar);
            assert_eq!(tool_accepts("pigz", &["-dc"], &blob), tar);
        }
        Compression::Zstd => assert_eq!(tool_accepts("zstd", &["-dc"], &blob), tar),
        Compression::None => {}
    }
}

#[test]
fn gzip_layer_reads_back_everywhere() {
    check_layer(Compression::Gzip);
}

#[cfg(feature = "zstd")]
#[test]
fn zstd_layer_reads_back_everywhere() {
    check_layer(Compression::Zstd);
}

#[test]
fn uncompressed_layer_reads_back_everywhere() {
    check_layer(Compression::None);
}

#[test]
fn owner_option_and_explicit_ids() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("t");
    make_tree(&root, "022", EPOCH, false);
    let mut b = LayerBuilder::new(LayerOptions {
        owner: Some((65532, 65533)),
        ..opts(Compression::Gzip)
    });
    b.add_dir(&root, "").unwrap();
    b.add_entry(LayerEntry {
        uid: Some(0),
        gid: Some(0),
        ..LayerEntry::new(
            "etc/passwd",
            EntryKind::Bytes(b"root:x:0:0::/root:/bin/sh\n".to_vec()),
            0o644,
        )
    })
    .unwrap();
    let (blob, _) = b.write(Vec::new()).unwrap();
    let rows = rows(&decompress(&blob, Compression::Gzip));
    for r in &rows {
        let want = if r.path == "etc/passwd" {
            (0, 0)
        } else {
            (65532, 65533)
        };
        assert_eq!((r.uid, r.gid), want, "{}", r.path);
    }
    assert!(rows.iter().any(|r| r.path == "etc/" && r.mode == 0o755));
}

#[test]
fn a_socket_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("t");
    fs::create_dir_all(root.join("run")).unwrap();
    fs::write(root.join("ok"), b"x").unwrap();
    let sock = root.join("run/app.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let mut b = LayerBuilder::new(opts(Compression::Gzip));
    let e = b.add_dir(&root, "").unwrap_err();
    match &e {
        OciError::UnsupportedFile { path, why } => {
            assert_eq!(path, &sock);
            assert!(why.contains("socket"), "{why}");
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(e.to_string().contains("run/app.sock"), "{e}");
    assert!(b.is_empty(), "a failed add_dir adds nothing");

    let fifo = tmp.path().join("f");
    fs::create_dir_all(&fifo).unwrap();
    assert!(
        Command::new("mkfifo")
            .arg(fifo.join("pipe"))
            .status()
            .unwrap()
            .success()
    );
    let e = LayerBuilder::new(opts(Compression::Gzip))
        .add_dir(&fifo, "")
        .unwrap_err();
    assert!(
        e.to_string().contains("pipe") && e.to_string().contains("fifo"),
        "{e}"
    );
}

/// A tree of `scale` × ~5 MiB of compressible, non-repeating files: several gzip chunks
/// (1 MiB) and, at scale 4, several zstd jobs (8 MiB at level 3).
fn big_tree(root: &Path, scale: usize) -> u64 {
    let mut x = 0x9e37_79b9_u32;
    let words = [
        "function", "return", "const", "this", "require", "=>", "{", "}", "(", ")", ";\n", "value",
        "exports",
    ];
    let mut total = 0;
    for d in 0..8 {
        let dir = root.join(format!("pkg{d}/lib"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..20 {
            let len = scale * (10_000 + (f * 7919 % 50_000));
            let mut s = String::with_capacity(len + 16);
            while s.len() < len {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                s.push_str(words[(x % words.len() as u32) as usize]);
                s.push(' ');
                if x.is_multiple_of(7) {
                    s.push_str(&format!("v{}", x % 10_000));
                }
            }
            fs::write(dir.join(format!("f{f}.js")), &s).unwrap();
            total += s.len() as u64;
        }
    }
    total
}

#[test]
fn gzip_bytes_do_not_depend_on_thread_count() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("t");
    let total = big_tree(&root, 1);
    assert!(
        total > 3 << 20,
        "want several 1 MiB chunks, have {total} bytes"
    );
    let mut results = Vec::new();
    for threads in [1, 2, 4, 7] {
        let mut b = LayerBuilder::new(opts(Compression::Gzip));
        b.set_threads(threads);
        b.add_dir(&root, "").unwrap();
        results.push(b.write(Vec::new()).unwrap());
    }
    for (blob, info) in &results[1..] {
        assert_eq!(info, &results[0].1);
        assert!(blob == &results[0].0);
    }
    let (blob, info) = &results[0];
    let tar = decompress(blob, Compression::Gzip);
    assert_eq!(Digest::of_bytes(&tar), info.diff_id);
    assert_eq!(tool_accepts("gzip", &["-dc"], blob), tar);
    // parallel deflate with a primed dictionary costs (almost) nothing in ratio
    let mut single = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    single.write_all(&tar).unwrap();
    let single = single.finish().unwrap();
    let ratio = blob.len() as f64 / single.len() as f64;
    assert!(
        ratio < 1.005,
        "chunked gzip is {ratio:.4}x the single-stream size"
    );
}

#[cfg(feature = "zstd")]
#[test]
fn zstd_bytes_do_not_depend_on_thread_count() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("t");
    let total = big_tree(&root, 4);
    assert!(
        total > 18 << 20,
        "want several zstd jobs, have {total} bytes"
    );
    let mut results = Vec::new();
    for threads in [1, 2, 5, 2] {
        let mut b = LayerBuilder::new(opts(Compression::Zstd));
        b.set_threads(threads);
        b.add_dir(&root, "").unwrap();
        results.push(b.write(Vec::new()).unwrap());
    }
    for (blob, info) in &results[1..] {
        assert_eq!(info, &results[0].1);
        assert!(blob == &results[0].0);
    }
    let (blob, info) = &results[0];
    let tar = decompress(blob, Compression::Zstd);
    assert_eq!(Digest::of_bytes(&tar), info.diff_id);
    assert_eq!(tool_accepts("zstd", &["-dc"], blob), tar);
}

#[test]
fn files_are_streamed_at_write_time_and_changes_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("t");
    fs::create_dir_all(&root).unwrap();
    fs::write(root.join("a"), b"first").unwrap();
    fs::write(root.join("gone"), b"x").unwrap();
    let mut b = LayerBuilder::new(opts(Compression::Gzip));
    b.add_dir(&root, "").unwrap();
    fs::remove_file(root.join("gone")).unwrap();
    let mut out = Vec::new();
    let e = b.write(&mut out).unwrap_err();
    assert!(e.to_string().contains("gone"), "{e}");

    // a file replaced by a symlink after the walk is not followed
    let mut b = LayerBuilder::new(opts(Compression::None));
    b.add_dir(&root, "").unwrap();
    fs::remove_file(root.join("a")).unwrap();
    symlink("/etc/hostname", root.join("a")).unwrap();
    let e = b.write(Vec::new()).unwrap_err();
    assert!(
        e.to_string().contains(root.join("a").to_str().unwrap()),
        "{e}"
    );
}

#[test]
fn add_entry_file_and_later_entries_win() {
    let tmp = tempfile::tempdir().unwrap();
    let src: PathBuf = tmp.path().join("src.bin");
    fs::write(&src, vec![7u8; 3000]).unwrap();
    let f = File::options().write(true).open(&src).unwrap();
    f.set_times(FileTimes::new().set_modified(UNIX_EPOCH + Duration::from_secs(5)))
        .unwrap();
    let mut b = LayerBuilder::new(opts(Compression::Gzip));
    b.add_entry(LayerEntry::new(
        "usr/bin/tool",
        EntryKind::Bytes(b"old".to_vec()),
        0o755,
    ))
    .unwrap();
    b.add_entry(LayerEntry {
        mtime: Some(5),
        ..LayerEntry::new("usr/bin/tool", EntryKind::File(src), 0o755)
    })
    .unwrap();
    b.add_entry(LayerEntry::new("usr/bin/gone", EntryKind::Whiteout, 0))
        .unwrap();
    b.add_entry(LayerEntry::new("var/cache", EntryKind::OpaqueDir, 0))
        .unwrap();
    let (blob, _) = b.write(Vec::new()).unwrap();
    let m = by_path(&rows(&decompress(&blob, Compression::Gzip)));
    let names: Vec<&str> = m.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "usr/",
            "usr/bin/",
            "usr/bin/.wh.gone",
            "usr/bin/tool",
            "var/",
            "var/cache/",
            "var/cache/.wh..wh..opq"
        ]
    );
    assert_eq!(m["usr/bin/tool"].body, vec![7u8; 3000]);
    assert_eq!(
        (m["usr/bin/tool"].mode, m["usr/bin/tool"].mtime),
        (0o755, 5)
    );
}

/// A layer compressed again (`recompress`, how a build stage's fast layer becomes an image's) is
/// byte for byte the layer written with that compression and level in the first place, from
/// every compression to every other; a tar stream of exactly N chunks (1 MiB each) too.
#[test]
fn a_recompressed_layer_is_the_layer_written_so() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("t");
    big_tree(&root, 1);
    // a tree whose tar stream is exactly 2 MiB: one file filling it up to the end blocks
    let exact = tmp.path().join("exact");
    fs::create_dir_all(&exact).unwrap();
    // header of `f` (512) + contents + end blocks (1024) = 2 MiB
    fs::write(exact.join("f"), vec![b'x'; (2 << 20) - 512 - 1024]).unwrap();
    let all = [
        (Compression::Gzip, None),
        (Compression::Gzip, Some(1)),
        (Compression::Zstd, Some(1)),
        (Compression::Zstd, None),
        (Compression::None, None),
    ];
    for tree in [&root, &exact] {
        let written: Vec<_> = all
            .iter()
            .map(|&(c, level)| build(tree, "", LayerOptions { level, ..opts(c) }))
            .collect();
        assert_eq!(
            written[0].1.diff_id, written[2].1.diff_id,
            "the same tree, another compression"
        );
        if tree == &exact {
            assert_eq!(written[4].1.uncompressed_size, 2 << 20);
        }
        for (from, (blob, _)) in all.iter().zip(&written) {
            for (to, (want, want_info)) in all.iter().zip(&written) {
                let (got, info) =
                    ocibuild_oci::layer::recompress(&blob[..], from.0, to.0, to.1, Vec::new())
                        .unwrap();
                assert_eq!(&info, want_info, "{from:?} -> {to:?}");
                assert!(&got == want, "{from:?} -> {to:?}: other bytes");
            }
        }
    }
    // a blob that is not what it claims to be is an error, not a layer
    let (gz, _) = build(&root, "", opts(Compression::Gzip));
    let err = ocibuild_oci::layer::recompress(
        &gz[..gz.len() / 2],
        Compression::Gzip,
        Compression::Zstd,
        None,
        Vec::new(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("layer blob"), "{err}");
}
