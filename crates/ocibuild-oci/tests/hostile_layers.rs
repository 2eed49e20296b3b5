//! Hostile and malformed layer tars, generated structure-aware: a valid layer (files, dirs,
//! symlinks, hard links) with one thing made hostile — a path escape, a symlink or hard link
//! loop, a device node, a huge or lying header field, PAX abuse, a GNU long name, a truncation
//! of the tar or of its gzip/zstd stream, a one-byte flip. Whatever comes, extraction returns
//! (no panic, no hang: the limits stop bombs), and nothing is written outside the target.
//!
//! CI runs `OCIBUILD_PROPTEST_CASES` cases (default 10,000; `scripts/fuzz.sh` runs 1,000,000);
//! each run prints how many cases got past the first parse stage (the tar reader yielded at
//! least one entry) and how many extracted completely.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use ocibuild_oci::error::OciError;
use ocibuild_oci::extract::{ExtractOptions, Limits, extract_layer_limited};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};

fn cases() -> u32 {
    std::env::var("OCIBUILD_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

/// Small limits so that bombs are caught in milliseconds.
const LIMITS: Limits = Limits {
    max_bytes: 4 << 20,
    max_entries: 200,
    max_path: 4096,
    max_metadata: 64 << 10,
};

#[derive(Clone, Debug)]
enum Kind {
    File(Vec<u8>),
    Dir,
    Symlink(String),
    Hardlink(String),
    CharDev,
    Fifo,
}

#[derive(Clone, Debug)]
struct Entry {
    name: String,
    kind: Kind,
    mode: u32,
    /// PAX records to put before the entry.
    pax: Vec<(String, Vec<u8>)>,
}

#[derive(Clone, Debug)]
enum Mutation {
    None,
    /// Set the header's size field to this (lying about the data).
    Size(usize, u64),
    /// Raw bytes over the header at this offset.
    HeaderBytes(usize, usize, Vec<u8>),
    /// Cut the tar at this fraction (per mille).
    Truncate(u16),
    /// Flip a byte of the tar at this fraction.
    Flip(u16, u8),
    /// A GNU long name (`L`) entry claiming this size before entry i.
    LongName(usize, u64),
}

#[derive(Clone, Copy, Debug)]
enum Comp {
    None,
    Gzip,
    Zstd,
}

fn name_part() -> impl Strategy<Value = String> {
    prop_oneof![
        12 => "[a-c]{1,2}",
        1 => Just("..".to_string()),
        1 => Just(".".to_string()),
        1 => Just("".to_string()),
        1 => Just(".wh..wh..opq".to_string()),
        1 => "\\.wh\\.[a-c]{1,2}",
        1 => "[a-z]{200,300}",
    ]
}

fn name() -> impl Strategy<Value = String> {
    (
        prop_oneof![12 => Just(""), 1 => Just("/"), 2 => Just("./"), 1 => Just("../")],
        prop::collection::vec(name_part(), 1..4),
    )
        .prop_map(|(lead, parts)| format!("{lead}{}", parts.join("/")))
}

fn target() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => name(),
        1 => Just("/".to_string()),
        1 => Just("..".to_string()),
        1 => Just("../../../../etc".to_string()),
        1 => Just("/proc/self/root".to_string()),
        1 => Just("loop".to_string()),
        4 => "[a-c]{1,2}",
    ]
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Kind::File),
        2 => Just(Kind::Dir),
        2 => target().prop_map(Kind::Symlink),
        1 => target().prop_map(Kind::Hardlink),
        1 => Just(Kind::CharDev),
        1 => Just(Kind::Fifo),
    ]
}

fn pax() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    prop::collection::vec(
        (
            prop_oneof![
                Just("path".to_string()),
                Just("linkpath".to_string()),
                Just("size".to_string()),
                Just("uid".to_string()),
                Just("mtime".to_string()),
                Just("SCHILY.xattr.security.capability".to_string()),
                Just("SCHILY.xattr.trusted.overlay.opaque".to_string()),
                "[a-z.]{1,12}",
            ],
            prop_oneof![
                prop::collection::vec(any::<u8>(), 0..16),
                Just(b"../../escape".to_vec()),
                Just(b"99999999999999999999".to_vec()),
                Just(b"-1".to_vec()),
            ],
        ),
        0..3,
    )
}

fn entry() -> impl Strategy<Value = Entry> {
    (
        name(),
        kind(),
        any::<u32>(),
        prop::option::weighted(0.15, pax()),
    )
        .prop_map(|(name, kind, mode, pax)| Entry {
            name,
            kind,
            mode: mode & 0o7777,
            pax: pax.unwrap_or_default(),
        })
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => Just(Mutation::None),
        1 => (any::<usize>(), prop_oneof![Just(u64::MAX >> 4), Just(1u64 << 40), 0u64..4096]).prop_map(|(i, s)| Mutation::Size(i, s)),
        1 => (any::<usize>(), 0usize..512, prop::collection::vec(any::<u8>(), 1..12)).prop_map(|(i, o, b)| Mutation::HeaderBytes(i, o, b)),
        2 => (0u16..1000).prop_map(Mutation::Truncate),
        1 => (0u16..1000, 1u8..=255).prop_map(|(a, b)| Mutation::Flip(a, b)),
        1 => (any::<usize>(), prop_oneof![Just(1u64 << 30), 0u64..2048]).prop_map(|(i, s)| Mutation::LongName(i, s)),
    ]
}

/// Write a raw ustar header (checksum computed) for `name` of `typeflag` and `size`.
fn raw_header(name: &[u8], typeflag: u8, size: u64, link: &[u8], mode: u32) -> [u8; 512] {
    let mut h = [0u8; 512];
    let n = name.len().min(100);
    h[..n].copy_from_slice(&name[..n]);
    h[100..107].copy_from_slice(format!("{mode:07o}").as_bytes());
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    if size < 0o77777777777 {
        h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
    } else {
        // base-256
        h[124] = 0x80;
        h[128..136].copy_from_slice(&size.to_be_bytes());
    }
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = typeflag;
    let l = link.len().min(100);
    h[157..157 + l].copy_from_slice(&link[..l]);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    fix_checksum(&mut h);
    h
}

fn fix_checksum(h: &mut [u8; 512]) {
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
}

fn pad(v: &mut Vec<u8>) {
    while !v.len().is_multiple_of(512) {
        v.push(0);
    }
}

/// The layer: each entry (with its PAX header), the mutation applied, two zero blocks.
fn build(entries: &[Entry], m: &Mutation) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if let Mutation::LongName(j, size) = m
            && i == j % entries.len().max(1)
        {
            out.extend_from_slice(&raw_header(b"././@LongLink", b'L', *size, b"", 0o644));
            // data: a bit of it, then whatever follows (a lying size reads into the next entry)
            out.extend_from_slice(&vec![b'a'; (*size).min(1500) as usize]);
            pad(&mut out);
        }
        if !e.pax.is_empty() {
            let mut recs = Vec::new();
            for (k, v) in &e.pax {
                let body_len = k.len() + v.len() + 3;
                let mut len = body_len + 1;
                while format!("{len}").len() + body_len != len {
                    len += 1;
                }
                recs.extend_from_slice(format!("{len} {k}=").as_bytes());
                recs.extend_from_slice(v);
                recs.push(b'\n');
            }
            out.extend_from_slice(&raw_header(b"pax", b'x', recs.len() as u64, b"", 0o644));
            out.extend_from_slice(&recs);
            pad(&mut out);
        }
        let (t, data, link): (u8, &[u8], &[u8]) = match &e.kind {
            Kind::File(d) => (b'0', d, b""),
            Kind::Dir => (b'5', b"", b""),
            Kind::Symlink(t) => (b'2', b"", t.as_bytes()),
            Kind::Hardlink(t) => (b'1', b"", t.as_bytes()),
            Kind::CharDev => (b'3', b"", b""),
            Kind::Fifo => (b'6', b"", b""),
        };
        let mut h = raw_header(e.name.as_bytes(), t, data.len() as u64, link, e.mode);
        if let Mutation::Size(j, s) = m
            && i == j % entries.len().max(1)
        {
            h = raw_header(e.name.as_bytes(), t, *s, link, e.mode);
        }
        if let Mutation::HeaderBytes(j, o, b) = m
            && i == j % entries.len().max(1)
        {
            for (k, x) in b.iter().enumerate() {
                if o + k < 512 {
                    h[o + k] = *x;
                }
            }
            if o % 3 != 0 {
                fix_checksum(&mut h); // mostly past the checksum, sometimes not
            }
        }
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        pad(&mut out);
    }
    out.extend_from_slice(&[0u8; 1024]);
    match m {
        Mutation::Truncate(pm) => out.truncate(out.len() * usize::from(*pm) / 1000),
        Mutation::Flip(pm, x) => {
            let i = (out.len() * usize::from(*pm) / 1000).min(out.len().saturating_sub(1));
            if let Some(b) = out.get_mut(i) {
                *b ^= x;
            }
        }
        _ => {}
    }
    out
}

fn compress(tar: &[u8], c: Comp, cut: Option<u16>) -> Vec<u8> {
    let mut out = match c {
        Comp::None => return tar.to_vec(),
        Comp::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(tar).unwrap();
            e.finish().unwrap()
        }
        Comp::Zstd => zstd::encode_all(tar, 1).unwrap(),
    };
    if let Some(pm) = cut {
        out.truncate(out.len() * usize::from(pm) / 1000);
    }
    out
}

fn decompressor<'a>(b: &'a [u8], c: Comp) -> Box<dyn Read + 'a> {
    match c {
        Comp::None => Box::new(b),
        Comp::Gzip => Box::new(flate2::read::MultiGzDecoder::new(b)),
        Comp::Zstd => match zstd::stream::read::Decoder::new(b) {
            Ok(d) => Box::new(d),
            Err(_) => Box::new(&b[..0]),
        },
    }
}

/// Everything under `dir` (paths relative to it), without following symlinks.
fn tree(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .flatten()
        .map(|e| e.path().strip_prefix(dir).unwrap().display().to_string())
        .collect();
    v.sort();
    v
}

struct Counts {
    cases: AtomicU64,
    past_first_parse: AtomicU64,
    extracted: AtomicU64,
    limit_errors: AtomicU64,
}

fn run_layers(label: &str, compressions: BoxedStrategy<(Comp, Option<u16>)>) {
    let counts = Counts {
        cases: AtomicU64::new(0),
        past_first_parse: AtomicU64::new(0),
        extracted: AtomicU64::new(0),
        limit_errors: AtomicU64::new(0),
    };
    let sandbox = tempfile::tempdir().unwrap();
    let outside = sandbox.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("sentinel"), "untouched").unwrap();
    let before = tree(sandbox.path());
    let top = |d: &Path| {
        let mut v: Vec<String> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        // failing inputs are kept (and replayed first) here
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/hostile_layers.proptest-regressions"
        )))),
        ..Config::default()
    });
    let strategy = (
        prop::collection::vec(entry(), 1..8),
        mutation(),
        compressions,
    );
    let result = runner.run(&strategy, |(entries, m, (c, cut))| {
        counts.cases.fetch_add(1, Ordering::Relaxed);
        let tar = build(&entries, &m);
        let blob = compress(&tar, c, cut);
        // first parse stage: the tar reader yields an entry
        let mut a = tar::Archive::new(decompressor(&blob, c));
        if a.entries()
            .ok()
            .and_then(|mut e| e.next())
            .is_some_and(|e| e.is_ok())
        {
            counts.past_first_parse.fetch_add(1, Ordering::Relaxed);
        }
        let root = sandbox.path().join("root");
        fs::create_dir(&root).unwrap();
        let r = extract_layer_limited(
            decompressor(&blob, c),
            &root,
            &ExtractOptions::default(),
            &LIMITS,
        );
        match &r {
            Ok(_) => {
                counts.extracted.fetch_add(1, Ordering::Relaxed);
            }
            Err(OciError::LimitExceeded { .. }) => {
                counts.limit_errors.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                // a clear error: it names something
                prop_assert!(!e.to_string().is_empty());
            }
        }
        // nothing outside the root changed
        fs::remove_dir_all(&root).unwrap();
        prop_assert_eq!(top(sandbox.path()), vec!["outside".to_string()], "{:?}", r);
        prop_assert_eq!(top(&outside), vec!["sentinel".to_string()], "{:?}", r);
        prop_assert_eq!(
            fs::read_to_string(outside.join("sentinel")).unwrap(),
            "untouched"
        );
        Ok(())
    });
    eprintln!(
        "hostile layers ({label}): {} cases, {} past the first parse stage, {} extracted completely, {} stopped by a limit",
        counts.cases.load(Ordering::Relaxed),
        counts.past_first_parse.load(Ordering::Relaxed),
        counts.extracted.load(Ordering::Relaxed),
        counts.limit_errors.load(Ordering::Relaxed),
    );
    assert_eq!(tree(sandbox.path()), before);
    if let Err(e) = result {
        panic!("{label}: {e}");
    }
}

#[test]
fn hostile_tar_layers_never_escape_panic_or_hang() {
    run_layers("tar", Just((Comp::None, None)).boxed());
}

#[test]
fn hostile_compressed_layers_never_escape_panic_or_hang() {
    run_layers(
        "gzip/zstd, some truncated",
        (
            prop_oneof![Just(Comp::Gzip), Just(Comp::Zstd)],
            prop::option::weighted(0.3, 0u16..1000),
        )
            .boxed(),
    );
}

/// Bombs: a GNU long name claiming 1 GiB, a PAX header claiming 1 GiB, a file of 1 GiB of
/// zeros (gzip: about 1 MiB), too many entries, a too-long path. Each is refused with
/// LimitExceeded naming its variable, quickly and without the memory.
#[test]
fn decompression_bombs_hit_their_limits() {
    let limits = Limits {
        max_bytes: 64 << 20,
        max_entries: 100,
        max_path: 1024,
        max_metadata: 1 << 20,
    };
    let x = |tar: Vec<u8>, gz: bool| {
        let dir = tempfile::tempdir().unwrap();
        let blob = compress(&tar, if gz { Comp::Gzip } else { Comp::None }, None);
        extract_layer_limited(
            decompressor(&blob, if gz { Comp::Gzip } else { Comp::None }),
            dir.path(),
            &ExtractOptions::default(),
            &limits,
        )
    };
    let env_of = |r: ocibuild_oci::error::Result<_>| match r {
        Err(OciError::LimitExceeded { env, .. }) => env,
        other => panic!("expected a limit error, got {other:?}"),
    };
    // GNU long name of 1 GiB (zeros after the header: the reader would keep them all)
    let mut t = raw_header(b"././@LongLink", b'L', 1 << 30, b"", 0o644).to_vec();
    t.resize(t.len() + (80 << 20), b'a');
    assert_eq!(env_of(x(t, true)), Limits::ENV_METADATA);
    // PAX header of 1 GiB
    let mut t = raw_header(b"pax", b'x', 1 << 30, b"", 0o644).to_vec();
    t.resize(t.len() + (80 << 20), b'a');
    assert_eq!(env_of(x(t, true)), Limits::ENV_METADATA);
    // a big file
    let mut t = raw_header(b"big", b'0', 100 << 20, b"", 0o644).to_vec();
    t.resize(t.len() + (100 << 20), 0);
    assert_eq!(env_of(x(t, true)), Limits::ENV_BYTES);
    // too many entries
    let mut t = Vec::new();
    for i in 0..101 {
        t.extend_from_slice(&raw_header(format!("f{i}").as_bytes(), b'0', 0, b"", 0o644));
    }
    t.extend_from_slice(&[0; 1024]);
    assert_eq!(env_of(x(t, false)), Limits::ENV_ENTRIES);
    // a path longer than the limit (through PAX)
    let long = format!("{}/f", "d/".repeat(600));
    let e = Entry {
        name: "short".into(),
        kind: Kind::File(b"x".to_vec()),
        mode: 0o644,
        pax: vec![("path".into(), long.into_bytes())],
    };
    let r = x(build(&[e], &Mutation::None), false);
    assert_eq!(env_of(r), Limits::ENV_PATH);
    // many zeros after the end-of-archive marker (read to hash the diff_id)
    let mut t = raw_header(b"f", b'0', 0, b"", 0o644).to_vec();
    t.resize(t.len() + 1024 + (70 << 20), 0);
    let blob = compress(&t, Comp::Gzip, None);
    let dir = tempfile::tempdir().unwrap();
    let r = ocibuild_oci::extract::extract_layer_blob_limited(
        &blob[..],
        ocibuild_oci::media::Compression::Gzip,
        None,
        dir.path(),
        &ExtractOptions::default(),
        &limits,
    );
    assert_eq!(env_of(r), Limits::ENV_BYTES);
    // and the message says what to do
    let mut t = raw_header(b"pax", b'x', 1 << 30, b"", 0o644).to_vec();
    t.resize(t.len() + (4 << 20), b'a');
    let msg = x(t, false).unwrap_err().to_string();
    assert!(
        msg.contains("OCIBUILD_LAYER_MAX_METADATA=") && msg.contains("1048576"),
        "{msg}"
    );
}

#[test]
fn limits_come_from_the_environment_with_clear_errors() {
    // (this process's env: one test sets it, nothing else in this binary reads it)
    assert_eq!(Limits::default().max_path, 4096);
    let parsed = Limits::from_env().unwrap();
    assert_eq!(parsed, Limits::default());
}
