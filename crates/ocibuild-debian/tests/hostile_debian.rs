//! Hostile Debian input (issue 22), structure-aware: a valid `.deb` (ar: `debian-binary`,
//! `control.tar.*`, `data.tar.*`) or a valid `Packages` index with one thing made hostile.
//! Never a panic or a write outside the staging directory; every error names what was wrong.
//! Each run prints how many cases got past the first parse stage (for a `.deb`: the ar walk and
//! the control member, `read_control`; for `Packages`: the paragraphs as a resolver universe).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use ocibuild_debian::control::{Paragraph, parse};
use ocibuild_debian::deb::{Trim, read_control, unpack_into};
use ocibuild_debian::resolve::{Universe, resolve};
use ocibuild_oci::layer::{LayerBuilder, LayerOptions};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};

fn cases() -> u32 {
    std::env::var("OCIBUILD_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

// ---- .deb ------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum TarKind {
    File(Vec<u8>),
    Dir,
    Symlink(String),
    Hardlink(String),
    CharDevice,
    Fifo,
}

#[derive(Clone, Debug)]
struct TarEntry {
    name: Vec<u8>,
    kind: TarKind,
    /// The size field written, when it lies.
    lie_size: Option<u64>,
    /// A PAX record before the entry (key, value).
    pax: Option<(String, Vec<u8>)>,
}

fn entry(name: &str, kind: TarKind) -> TarEntry {
    TarEntry {
        name: name.as_bytes().to_vec(),
        kind,
        lie_size: None,
        pax: None,
    }
}

fn tar_bytes(entries: &[TarEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        if let Some((k, v)) = &e.pax {
            let mut rec = Vec::new();
            let body_len = k.len() + v.len() + 3;
            let mut len = body_len + body_len.to_string().len();
            if (len).to_string().len() != body_len.to_string().len() {
                len += 1;
            }
            rec.extend_from_slice(format!("{len} {k}=").as_bytes());
            rec.extend_from_slice(v);
            rec.push(b'\n');
            let mut h = tar::Header::new_ustar();
            h.set_path("PaxHeaders/x").unwrap();
            h.set_entry_type(tar::EntryType::XHeader);
            h.set_size(rec.len() as u64);
            h.set_cksum();
            out.extend_from_slice(h.as_bytes());
            out.extend_from_slice(&rec);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
        let mut h = tar::Header::new_gnu();
        let n = e.name.len().min(100);
        h.as_gnu_mut().unwrap().name[..n].copy_from_slice(&e.name[..n]);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        let data: &[u8] = match &e.kind {
            TarKind::File(d) => {
                h.set_entry_type(tar::EntryType::Regular);
                d
            }
            TarKind::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                &[]
            }
            TarKind::Symlink(t) | TarKind::Hardlink(t) => {
                h.set_entry_type(if matches!(e.kind, TarKind::Symlink(_)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                });
                let t = t.as_bytes();
                let n = t.len().min(100);
                h.as_gnu_mut().unwrap().linkname[..n].copy_from_slice(&t[..n]);
                &[]
            }
            TarKind::CharDevice => {
                h.set_entry_type(tar::EntryType::Char);
                &[]
            }
            TarKind::Fifo => {
                h.set_entry_type(tar::EntryType::Fifo);
                &[]
            }
        };
        h.set_size(e.lie_size.unwrap_or(data.len() as u64));
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

fn compress(data: &[u8], how: &str) -> Vec<u8> {
    match how {
        "gz" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "xz" => {
            let mut e = liblzma::write::XzEncoder::new(Vec::new(), 0);
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "zst" => zstd::encode_all(data, 1).unwrap(),
        _ => data.to_vec(),
    }
}

fn suffix(how: &str) -> &'static str {
    match how {
        "gz" => ".gz",
        "xz" => ".xz",
        "zst" => ".zst",
        _ => "",
    }
}

const CONTROL: &str = "Package: hostile\nVersion: 1.0-1\nArchitecture: all\nMaintainer: t <t@example.invalid>\nDescription: a test package\n";

fn control_entries() -> Vec<TarEntry> {
    vec![
        entry("./", TarKind::Dir),
        entry("./control", TarKind::File(CONTROL.as_bytes().to_vec())),
        entry(
            "./md5sums",
            TarKind::File(b"d41d8cd98f00b204e9800998ecf8427e  usr/bin/tool\n".to_vec()),
        ),
        entry(
            "./postinst",
            TarKind::File(
                b"#!/bin/sh\nupdate-alternatives --install /usr/bin/t t /usr/bin/tool 10\n"
                    .to_vec(),
            ),
        ),
    ]
}

fn data_entries() -> Vec<TarEntry> {
    vec![
        entry("./", TarKind::Dir),
        entry("./usr/", TarKind::Dir),
        entry("./usr/bin/", TarKind::Dir),
        entry(
            "./usr/bin/tool",
            TarKind::File(b"#!/bin/sh\necho hi\n".to_vec()),
        ),
        entry("./usr/bin/alias", TarKind::Symlink("tool".into())),
        entry("./usr/bin/same", TarKind::Hardlink("./usr/bin/tool".into())),
        entry("./usr/share/", TarKind::Dir),
        entry("./usr/share/doc/", TarKind::Dir),
        entry("./usr/share/doc/hostile/", TarKind::Dir),
        entry(
            "./usr/share/doc/hostile/copyright",
            TarKind::File(vec![b'c'; 700]),
        ),
    ]
}

/// One thing made hostile in a tar member's entries.
#[derive(Clone, Debug)]
enum EntryMutation {
    Name(usize, String),
    Kind(usize, TarKind),
    LieSize(usize, u64),
    Pax(usize, String, Vec<u8>),
    Remove(usize),
    Duplicate(usize),
}

fn hostile_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("../../escape".to_string()),
        Just("/etc/passwd".to_string()),
        Just("./usr/../../x".to_string()),
        Just("./usr/bin/tool/inside".to_string()),
        Just(String::new()),
        Just(".".to_string()),
        Just("./usr/bin/alias/through".to_string()),
        Just("./var/lib/dpkg/status.d/hostile".to_string()),
        Just("./a\u{0}b".to_string()),
        Just("./\u{fffd}\u{7f}".to_string()),
        "[./a-z]{0,40}",
    ]
}

fn hostile_kind() -> impl Strategy<Value = TarKind> {
    prop_oneof![
        Just(TarKind::CharDevice),
        Just(TarKind::Fifo),
        Just(TarKind::Dir),
        Just(TarKind::Symlink("/etc/shadow".into())),
        Just(TarKind::Symlink("../../../../outside".into())),
        Just(TarKind::Symlink("alias".into())),
        Just(TarKind::Hardlink("../../outside".into())),
        Just(TarKind::Hardlink("/etc/passwd".into())),
        Just(TarKind::Hardlink("./usr/bin/missing".into())),
        Just(TarKind::Hardlink("./usr/bin/same".into())),
        Just(TarKind::Hardlink("./usr/bin/".into())),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(TarKind::File),
    ]
}

fn entry_mutation() -> impl Strategy<Value = EntryMutation> {
    prop_oneof![
        (0usize..10, hostile_name()).prop_map(|(i, n)| EntryMutation::Name(i, n)),
        (0usize..10, hostile_kind()).prop_map(|(i, k)| EntryMutation::Kind(i, k)),
        (
            0usize..10,
            prop_oneof![
                Just(0u64),
                Just(1),
                Just(511),
                Just(1 << 20),
                Just(u64::MAX >> 4)
            ]
        )
            .prop_map(|(i, s)| EntryMutation::LieSize(i, s)),
        (
            0usize..10,
            prop_oneof![
                Just("path".to_string()),
                Just("linkpath".to_string()),
                Just("size".to_string()),
                Just("uid".to_string()),
                Just("mtime".to_string()),
                Just("SCHILY.xattr.security.capability".to_string()),
            ],
            prop_oneof![
                Just(b"../../pax-escape".to_vec()),
                Just(b"/abs".to_vec()),
                Just(b"-1".to_vec()),
                Just(b"99999999999999999999999".to_vec()),
                Just(b"".to_vec()),
                Just(vec![b'a'; 5000]),
                prop::collection::vec(any::<u8>(), 0..32),
            ]
        )
            .prop_map(|(i, k, v)| EntryMutation::Pax(i, k, v)),
        (0usize..10).prop_map(EntryMutation::Remove),
        (0usize..10).prop_map(EntryMutation::Duplicate),
    ]
}

fn apply(entries: &mut Vec<TarEntry>, m: &EntryMutation) {
    let n = entries.len();
    match m.clone() {
        EntryMutation::Name(i, s) => entries[i % n].name = s.into_bytes(),
        EntryMutation::Kind(i, k) => entries[i % n].kind = k,
        EntryMutation::LieSize(i, s) => entries[i % n].lie_size = Some(s),
        EntryMutation::Pax(i, k, v) => entries[i % n].pax = Some((k, v)),
        EntryMutation::Remove(i) => {
            entries.remove(i % n);
        }
        EntryMutation::Duplicate(i) => {
            let e = entries[i % n].clone();
            entries.insert(i % n, e);
        }
    }
}

/// One thing made hostile in the ar archive.
#[derive(Clone, Debug)]
enum ArMutation {
    None,
    /// Which member (0..3) is renamed to what.
    Rename(usize, String),
    Swap(usize, usize),
    Remove(usize),
    Duplicate(usize),
    /// A `_gpg`-style member appended, or a foreign one.
    Append(String),
    DebianBinary(Vec<u8>),
    /// The member's bytes are compressed as another format than its name says.
    WrongCompression(usize),
    /// Byte-level, after the archive is written: cut at a permille of its length, or xor one
    /// byte.
    Truncate(u16),
    Flip(u16, u8),
}

fn ar_mutation() -> impl Strategy<Value = ArMutation> {
    prop_oneof![
        6 => Just(ArMutation::None),
        1 => (0usize..3, prop_oneof![
            Just("data.tar.bz2".to_string()),
            Just("control.tar.lzma".to_string()),
            Just("debian-binary ".to_string()),
            Just("data.tar".to_string()),
            Just("control.tar".to_string()),
            Just("evil".to_string()),
            Just("../data.tar.gz".to_string()),
        ]).prop_map(|(i, n)| ArMutation::Rename(i, n)),
        1 => (0usize..3, 0usize..3).prop_map(|(a, b)| ArMutation::Swap(a, b)),
        1 => (0usize..3).prop_map(ArMutation::Remove),
        1 => (0usize..3).prop_map(ArMutation::Duplicate),
        1 => prop_oneof![Just("_gpgbuilder".to_string()), Just("zzz".to_string())].prop_map(ArMutation::Append),
        1 => prop_oneof![
            Just(b"2.0\n".to_vec()),
            Just(b"3.0\n".to_vec()),
            Just(b"".to_vec()),
            Just(vec![b'2'; 100_000]),
            Just(b"2.\xff\n".to_vec()),
        ].prop_map(ArMutation::DebianBinary),
        1 => (1usize..3).prop_map(ArMutation::WrongCompression),
        1 => (0u16..1000).prop_map(ArMutation::Truncate),
        1 => (0u16..1000, 1u8..=255).prop_map(|(a, b)| ArMutation::Flip(a, b)),
    ]
}

#[derive(Clone, Debug)]
struct DebCase {
    control_comp: &'static str,
    data_comp: &'static str,
    control_mut: Option<EntryMutation>,
    data_mut: Vec<EntryMutation>,
    ar: ArMutation,
}

fn deb_case() -> impl Strategy<Value = DebCase> {
    let comp =
        || prop_oneof![2 => Just("gz"), 1 => Just("xz"), 2 => Just("zst"), 2 => Just("none")];
    (
        comp(),
        comp(),
        prop::option::weighted(0.2, entry_mutation()),
        prop::collection::vec(entry_mutation(), 0..3),
        ar_mutation(),
    )
        .prop_map(|(c, d, cm, dm, ar)| DebCase {
            control_comp: c,
            data_comp: d,
            control_mut: cm,
            data_mut: dm,
            ar,
        })
}

fn build_deb(c: &DebCase) -> Vec<u8> {
    let mut control = control_entries();
    if let Some(m) = &c.control_mut {
        apply(&mut control, m);
    }
    let mut data = data_entries();
    for m in &c.data_mut {
        apply(&mut data, m);
    }
    let mut members: Vec<(String, Vec<u8>)> = vec![
        ("debian-binary".into(), b"2.0\n".to_vec()),
        (
            format!("control.tar{}", suffix(c.control_comp)),
            compress(&tar_bytes(&control), c.control_comp),
        ),
        (
            format!("data.tar{}", suffix(c.data_comp)),
            compress(&tar_bytes(&data), c.data_comp),
        ),
    ];
    match c.ar.clone() {
        ArMutation::Rename(i, n) => members[i].0 = n,
        ArMutation::Swap(a, b) => members.swap(a, b),
        ArMutation::Remove(i) => {
            members.remove(i);
        }
        ArMutation::Duplicate(i) => {
            let m = members[i].clone();
            members.insert(i, m);
        }
        ArMutation::Append(n) => members.push((n, b"x".to_vec())),
        ArMutation::DebianBinary(b) => members[0].1 = b,
        ArMutation::WrongCompression(i) => {
            let other = if members[i].0.ends_with(".gz") {
                "xz"
            } else {
                "gz"
            };
            let raw = if i == 1 {
                tar_bytes(&control)
            } else {
                tar_bytes(&data)
            };
            members[i].1 = compress(&raw, other);
        }
        _ => {}
    }
    let mut b = ar::Builder::new(Vec::new());
    for (name, bytes) in &members {
        let h = ar::Header::new(name.as_bytes().to_vec(), bytes.len() as u64);
        b.append(&h, &bytes[..]).unwrap();
    }
    let mut out = b.into_inner().unwrap();
    match c.ar {
        ArMutation::Truncate(pm) => out.truncate(out.len() * usize::from(pm) / 1000),
        ArMutation::Flip(pm, x) => {
            let at = (out.len() * usize::from(pm) / 1000).min(out.len() - 1);
            out[at] ^= x;
        }
        _ => {}
    }
    out
}

/// Every path under `dir`, relative.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn hostile_debs() {
    let work = tempfile::tempdir().unwrap();
    let deb = work.path().join("case.deb");
    let staging = work.path().join("staging");
    let (n, past, accepted) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/hostile_debian.proptest-regressions"
        )))),
        ..Config::default()
    });
    let result = runner.run(&deb_case(), |c| {
        n.fetch_add(1, Ordering::Relaxed);
        std::fs::write(&deb, build_deb(&c)).unwrap();
        let _ = std::fs::remove_dir_all(&staging);
        match read_control(&deb) {
            Ok(contents) => {
                past.fetch_add(1, Ordering::Relaxed);
                // a flipped byte inside a stored (uncompressed) member or a zstd frame without
                // a checksum goes unnoticed here, as in dpkg: the Packages index's SHA256
                // guards a package's bytes
                prop_assert!(contents.package().is_some_and(|p| !p.is_empty()));
            }
            Err(e) => {
                let e = e.to_string();
                prop_assert!(e.contains("case.deb"), "the error names no file: {}", e);
            }
        }
        let mut b = LayerBuilder::new(LayerOptions::default());
        match unpack_into(&deb, &mut b, &staging, &Trim::default()) {
            Ok(_) => {
                accepted.fetch_add(1, Ordering::Relaxed);
                // nothing the layer holds may name a path outside it
                // the layer builder checks the tree as a whole (a parent that is not a
                // directory): a clear error naming the path, or entries inside the layer
                match b.into_entries() {
                    Ok(entries) => {
                        for e in entries {
                            let p = e.path.clone();
                            prop_assert!(
                                !p.starts_with('/') && !p.split('/').any(|c| c == ".."),
                                "entry {} escapes",
                                p
                            );
                        }
                    }
                    Err(e) => {
                        let e = e.to_string();
                        prop_assert!(e.contains("layer path"), "unclear: {}", e);
                    }
                }
            }
            Err(e) => {
                let e = e.to_string();
                prop_assert!(e.contains("case.deb"), "the error names no file: {}", e);
            }
        }
        // the only things written are the case file and the staging directory
        let written: Vec<String> = tree(work.path())
            .into_iter()
            .filter(|p| p != "case.deb" && p != "staging" && !p.starts_with("staging/"))
            .collect();
        prop_assert!(
            written.is_empty(),
            "written outside the staging dir: {:?}",
            written
        );
        Ok(())
    });
    eprintln!(
        "hostile debs: {} cases, {} past the first parse stage (ar members and control), {} \
         unpacked whole",
        n.load(Ordering::Relaxed),
        past.load(Ordering::Relaxed),
        accepted.load(Ordering::Relaxed)
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}

// ---- Packages indexes ------------------------------------------------------------------------

fn packages_text() -> String {
    let mut s = String::new();
    let pkgs: &[(&str, &str, &str)] = &[
        ("libc6", "2.41-12", "libgcc-s1"),
        (
            "libgcc-s1",
            "14.2.0-19",
            "gcc-14-base (= 14.2.0-19), libc6 (>= 2.35)",
        ),
        ("gcc-14-base", "14.2.0-19", ""),
        (
            "tool",
            "1:2.0~rc1-3+b1",
            "libc6 (>= 2.34) | libc6-udeb, python3:any (>= 3.11~)",
        ),
        ("python3", "3.13.5-1", "libc6"),
        ("tool", "1:1.9-1", "libc6"),
    ];
    for (name, version, deps) in pkgs {
        s.push_str(&format!(
            "Package: {name}\nVersion: {version}\nArchitecture: amd64\nMulti-Arch: {}\n\
             Priority: optional\nFilename: pool/main/{name}.deb\nSize: 1000\n\
             SHA256: {}\n",
            if *name == "python3" {
                "allowed"
            } else {
                "same"
            },
            "ab".repeat(32)
        ));
        if !deps.is_empty() {
            s.push_str(&format!("Depends: {deps}\n"));
        }
        s.push_str(
            "Provides: virtual-thing (= 1)\nDescription: a package\n more text\n .\n end\n\n",
        );
    }
    s
}

#[derive(Clone, Debug)]
enum PackagesMutation {
    /// Replace the value of the n-th field line.
    Value(usize, String),
    /// Insert a raw line before the n-th line.
    Line(usize, String),
    Truncate(u16),
    Flip(u16, u8),
}

fn packages_mutation() -> impl Strategy<Value = PackagesMutation> {
    let value = prop_oneof![
        Just(String::new()),
        Just("1.0 (".to_string()),
        Just("a (>> 1) | | b".to_string()),
        Just("a (= )".to_string()),
        Just("a (<< 1.0^2)".to_string()),
        Just("a [amd64] <!nocheck>".to_string()),
        Just("a:any:any".to_string()),
        Just(":1.0".to_string()),
        Just("-1".to_string()),
        Just("99999999999999999999999".to_string()),
        Just("x".repeat(100_000)),
        Just(vec!["a (>= 1)"; 5000].join(", ")),
        Just(vec!["a"; 5000].join(" | ")),
        "[ -~]{0,30}",
    ];
    prop_oneof![
        3 => (0usize..80, value).prop_map(|(i, v)| PackagesMutation::Value(i, v)),
        1 => (0usize..80, prop_oneof![
            Just(" continuation first".to_string()),
            Just("no colon here".to_string()),
            Just(":".to_string()),
            Just("Package:".to_string()),
            Just("Version: 1".to_string()),
            Just("Package: libc6".to_string()),
            Just(String::new()),
            Just("\t".to_string()),
        ]).prop_map(|(i, l)| PackagesMutation::Line(i, l)),
        1 => (0u16..1000).prop_map(PackagesMutation::Truncate),
        1 => (0u16..1000, 1u8..=127).prop_map(|(a, b)| PackagesMutation::Flip(a, b)),
    ]
}

#[test]
fn hostile_packages_indexes() {
    let (n, past, accepted) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/hostile_debian.proptest-regressions"
        )))),
        ..Config::default()
    });
    let base = packages_text();
    let result = runner.run(&packages_mutation(), |m| {
        n.fetch_add(1, Ordering::Relaxed);
        let mut lines: Vec<String> = base.lines().map(String::from).collect();
        let mut text = match &m {
            PackagesMutation::Value(i, v) => {
                let fields: Vec<usize> = (0..lines.len())
                    .filter(|j| lines[*j].contains(": "))
                    .collect();
                let j = fields[*i % fields.len()];
                let key = lines[j].split_once(": ").unwrap().0.to_string();
                lines[j] = format!("{key}: {v}");
                lines.join("\n")
            }
            PackagesMutation::Line(i, l) => {
                lines.insert(*i % lines.len(), l.clone());
                lines.join("\n")
            }
            _ => base.clone(),
        };
        match m {
            PackagesMutation::Truncate(pm) => {
                let mut cut = text.len() * usize::from(pm) / 1000;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
            }
            PackagesMutation::Flip(pm, x) => {
                let mut bytes = text.into_bytes();
                let at = (bytes.len() * usize::from(pm) / 1000).min(bytes.len() - 1);
                bytes[at] ^= x;
                text = String::from_utf8_lossy(&bytes).into_owned();
            }
            _ => {}
        }
        let paragraphs: Vec<Paragraph> = parse(&text);
        let mut u = Universe::new("amd64");
        match u.add(&paragraphs, "trixie", 500) {
            Ok(()) => {
                past.fetch_add(1, Ordering::Relaxed);
                match resolve(&u, &["tool".to_string()], &[]) {
                    Ok(r) => {
                        accepted.fetch_add(1, Ordering::Relaxed);
                        prop_assert!(!r.packages.is_empty());
                    }
                    Err(e) => prop_assert!(!e.to_string().is_empty()),
                }
            }
            Err(e) => {
                let e = e.to_string();
                prop_assert!(
                    e.contains("trixie") || e.contains("Package") || e.contains("version"),
                    "unclear: {}",
                    e
                );
            }
        }
        Ok(())
    });
    eprintln!(
        "hostile Packages: {} cases, {} past the first parse stage (a universe), {} resolved \
         `tool`",
        n.load(Ordering::Relaxed),
        past.load(Ordering::Relaxed),
        accepted.load(Ordering::Relaxed)
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn the_unmutated_inputs_are_accepted() {
    let work = tempfile::tempdir().unwrap();
    let deb = work.path().join("case.deb");
    for (c, d) in [("gz", "xz"), ("xz", "zst"), ("zst", "gz"), ("none", "none")] {
        let case = DebCase {
            control_comp: c,
            data_comp: d,
            control_mut: None,
            data_mut: vec![],
            ar: ArMutation::None,
        };
        std::fs::write(&deb, build_deb(&case)).unwrap();
        read_control(&deb).unwrap();
        let mut b = LayerBuilder::new(LayerOptions::default());
        unpack_into(&deb, &mut b, &work.path().join("staging"), &Trim::default()).unwrap();
    }
    let mut u = Universe::new("amd64");
    u.add(&parse(&packages_text()), "trixie", 500).unwrap();
    resolve(&u, &["tool".to_string()], &[]).unwrap();
}

/// Found by `hostile_debs`: a hard link whose target is not a regular file of the package was
/// accepted by `unpack_into`, and only the layer writer failed later, naming no package.
#[test]
fn a_hard_link_to_a_file_the_package_lacks_is_refused_at_unpack() {
    let work = tempfile::tempdir().unwrap();
    let deb = work.path().join("case.deb");
    let case = DebCase {
        control_comp: "gz",
        data_comp: "gz",
        control_mut: None,
        data_mut: vec![EntryMutation::Name(3, "./usr/bin/tool/inside".into())],
        ar: ArMutation::None,
    };
    std::fs::write(&deb, build_deb(&case)).unwrap();
    let mut b = LayerBuilder::new(LayerOptions::default());
    let e = unpack_into(&deb, &mut b, &work.path().join("staging"), &Trim::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("case.deb") && e.contains("usr/bin/same") && e.contains("usr/bin/tool"),
        "{e}"
    );
}

/// The archive limits apply to `.deb` members: a GNU long name of 8 MiB in the data member (or
/// the control member) is refused by OCIBUILD_LAYER_MAX_METADATA instead of read into memory.
#[test]
fn a_long_name_bomb_in_a_deb_member_hits_the_limit() {
    let work = tempfile::tempdir().unwrap();
    let control = compress(&tar_bytes(&control_entries()), "gz");
    let bomb = compress(&long_name_bomb(8 << 20), "gz");
    for (name, members) in [
        (
            "data",
            vec![
                ("control.tar.gz", control.clone()),
                ("data.tar.gz", bomb.clone()),
            ],
        ),
        ("control", vec![("control.tar.gz", bomb.clone())]),
    ] {
        let deb = work.path().join(format!("{name}.deb"));
        let mut b = ar::Builder::new(Vec::new());
        b.append(
            &ar::Header::new(b"debian-binary".to_vec(), 4),
            &b"2.0\n"[..],
        )
        .unwrap();
        for (n, bytes) in &members {
            b.append(
                &ar::Header::new(n.as_bytes().to_vec(), bytes.len() as u64),
                &bytes[..],
            )
            .unwrap();
        }
        std::fs::write(&deb, b.into_inner().unwrap()).unwrap();
        let e = if name == "data" {
            let mut lb = LayerBuilder::new(LayerOptions::default());
            unpack_into(
                &deb,
                &mut lb,
                &work.path().join("staging"),
                &Trim::default(),
            )
            .unwrap_err()
            .to_string()
        } else {
            read_control(&deb).unwrap_err().to_string()
        };
        assert!(
            e.contains("OCIBUILD_LAYER_MAX_METADATA") && e.contains(&format!("{name}.deb")),
            "{name}: {e}"
        );
    }
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
