//! `layer-bench`: the deterministic layer writer against the peer pipelines, measured in the same
//! run on the same tree:
//!
//! - ocibuild gzip-6 layer (walk + tar + parallel gzip + both digests, written to a file)
//!   vs `tar -C DIR -cf - . | pigz -6 | sha256sum`
//! - ocibuild zstd-3 layer vs `tar -C DIR -cf - . | zstd -3 | sha256sum`
//! - ocibuild gzip-4, whose compression ratio is within 2% of pigz -6's: the "same ratio" comparison
//! - end to end: the whole `ocibuild assemble --layer TREE:/app --output oci:DIR:t` process on a
//!   fresh, empty store (walk, one-pass layer, config, manifest, layout written) vs the same
//!   `tar | pigz -6 | sha256sum` pipeline (target ≤ 0.6×). Uses the release binary next to this
//!   one (`cargo build --release -p ocibuild`) or `$OCIBUILD_BIN`; `--no-assemble` leaves it out.
//!
//! The tree is generated deterministically (a seeded PRNG, no `rand`) in the shape of a
//! `node_modules` directory, unless `--tree DIR` names an existing one. Prints medians, ratios and
//! whether the targets are met (gzip ≤ 0.5× pigz at the same compression ratio ±2%, zstd ≤ 1.0×
//! zstd, assemble end to end ≤ 0.6× pigz). It asserts nothing about time.
//!
//! Usage: `cargo run --release -p ocibuild-benches --bin layer-bench -- [--runs N] [--tree DIR]
//! [--threads N] [--keep] [--no-assemble]` (the lead's quiet-machine figure: `--runs 3`)

#[path = "common.rs"]
mod common;
use common::{Rng, have, machine_info, median};
use std::error::Error;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use ocibuild_oci::Compression;
use ocibuild_oci::layer::{LayerBuilder, LayerInfo, LayerOptions};

type Res<T> = Result<T, Box<dyn Error>>;

const GZIP_TARGET: f64 = 0.5;
const ZSTD_TARGET: f64 = 1.0;
const RATIO_TOLERANCE: f64 = 0.02;
const ASSEMBLE_TARGET: f64 = 0.6;

struct Args {
    runs: usize,
    tree: Option<PathBuf>,
    threads: Option<usize>,
    keep: bool,
    assemble: bool,
}

fn parse_args() -> Res<Args> {
    let mut a = Args {
        runs: 5,
        tree: None,
        threads: None,
        keep: false,
        assemble: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--runs" => a.runs = value("--runs")?.parse()?,
            "--tree" => a.tree = Some(PathBuf::from(value("--tree")?)),
            "--threads" => a.threads = Some(value("--threads")?.parse()?),
            "--keep" => a.keep = true,
            "--no-assemble" => a.assemble = false,
            "--generate" => {
                let dir = PathBuf::from(value("--generate")?);
                let (files, bytes) = generate_tree(&dir)?;
                println!("generated {}: {files} files, {bytes} bytes", dir.display());
                std::process::exit(0);
            }
            "-h" | "--help" => {
                println!(
                    "layer-bench [--runs N (default 5)] [--tree DIR] [--threads N] [--keep] [--generate DIR] [--no-assemble]\n\
                     Compares ocibuild's layer writer with tar|pigz -6 and tar|zstd -3, and the whole\n\
                     `ocibuild assemble` process (fresh store, layout output) with tar|pigz -6\n\
                     (the release binary next to this one, or OCIBUILD_BIN)."
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}` (try --help)").into()),
        }
    }
    if a.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    Ok(a)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("layer-bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> Res<()> {
    let args = parse_args()?;
    let missing: Vec<&str> = ["tar", "pigz", "zstd", "sha256sum", "bash"]
        .into_iter()
        .filter(|t| !have(t))
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "layer-bench: missing peer tools: {} (install them: apt-get install pigz zstd)",
            missing.join(", ")
        );
        std::process::exit(2);
    }

    let work = std::env::temp_dir().join(format!("layer-bench-{}", std::process::id()));
    fs::create_dir_all(&work)?;
    let result = bench(&args, &work);
    if args.keep {
        println!("kept {}", work.display());
    } else {
        let _ = fs::remove_dir_all(&work);
    }
    result
}

fn bench(args: &Args, work: &Path) -> Res<()> {
    let tree = match &args.tree {
        Some(t) => t.clone(),
        None => {
            let t = work.join("node_modules");
            let t0 = Instant::now();
            let (files, bytes) = generate_tree(&t)?;
            println!(
                "generated {}: {files} files, {:.1} MB in {:.1}s",
                t.display(),
                bytes as f64 / 1e6,
                t0.elapsed().as_secs_f64()
            );
            t
        }
    };
    let tree_str = tree
        .to_str()
        .ok_or("the tree path must be valid UTF-8")?
        .replace('\'', "'\\''");

    println!(
        "{}",
        machine_info(&[
            ("pigz", "--version"),
            ("zstd", "--version"),
            ("tar", "--version")
        ])
    );
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));

    // Sizes of the peers' streams (untimed).
    let peer_tar = shell_bytes(&format!("tar -C '{tree_str}' -cf - . | wc -c"))?;
    let pigz_out = shell_bytes(&format!("tar -C '{tree_str}' -cf - . | pigz -6 | wc -c"))?;
    let zstd_out = shell_bytes(&format!("tar -C '{tree_str}' -cf - . | zstd -3 -c | wc -c"))?;

    let pigz_cmd = format!("tar -C '{tree_str}' -cf - . | pigz -6 | sha256sum >/dev/null");
    let zstd_cmd = format!("tar -C '{tree_str}' -cf - . | zstd -3 -c | sha256sum >/dev/null");
    let blob = work.join("layer.blob");

    let ocibuild_bin = if args.assemble {
        Some(ocibuild_binary()?)
    } else {
        None
    };
    // 0 ocibuild gzip-6, 1 pigz, 2 ocibuild zstd-3, 3 zstd, 4 ocibuild gzip-4 (information only),
    // 5 the whole `ocibuild assemble` process (fresh store, layout output)
    let mut times: [Vec<f64>; 6] = Default::default();
    let mut infos: [Option<LayerInfo>; 3] = [None, None, None];
    let mut assembled: Option<String> = None;
    // one warm-up round (page cache, thread pools), then `runs` timed rounds in alternating order
    for round in 0..=args.runs {
        let mut order: Vec<usize> = vec![0, 1, 2, 3, 4];
        if ocibuild_bin.is_some() {
            order.push(5);
        }
        if round % 2 == 1 {
            order.reverse();
        }
        for which in order {
            if which == 5
                && let Some(bin) = &ocibuild_bin
            {
                let (secs, digest) = assemble_process(bin, &tree, work, round)?;
                if let Some(prev) = &assembled
                    && *prev != digest
                {
                    return Err(
                        format!("non-deterministic assemble: image {prev} then {digest}").into(),
                    );
                }
                assembled = Some(digest);
                if round > 0 {
                    times[5].push(secs);
                }
                continue;
            }
            let (secs, info) = match which {
                0 => {
                    let (s, i) = ocibuild(&tree, &blob, Compression::Gzip, 6, threads)?;
                    (s, Some(i))
                }
                1 => (shell_time(&pigz_cmd)?, None),
                2 => {
                    let (s, i) = ocibuild(&tree, &blob, Compression::Zstd, 3, threads)?;
                    (s, Some(i))
                }
                3 => (shell_time(&zstd_cmd)?, None),
                _ => {
                    let (s, i) = ocibuild(&tree, &blob, Compression::Gzip, 4, threads)?;
                    (s, Some(i))
                }
            };
            if round > 0 {
                times[which].push(secs);
            }
            if let Some(i) = info {
                let slot = &mut infos[which / 2];
                if let Some(prev) = slot
                    && prev.digest != i.digest
                {
                    return Err(format!(
                        "non-deterministic layer: {} then {}",
                        prev.digest, i.digest
                    )
                    .into());
                }
                *slot = Some(i);
            }
        }
    }
    let [Some(gz), Some(zs), Some(gz4)] = infos else {
        return Err("no ocibuild run recorded".into());
    };
    let med: Vec<f64> = times.iter_mut().map(|t| median(t)).collect();
    let tar_mb = gz.uncompressed_size as f64 / 1e6;

    println!(
        "\ntree: {} | ocibuild tar {:.1} MB, GNU tar {:.1} MB | {} runs (median) | ocibuild gzip threads: {threads}\n",
        tree.display(),
        tar_mb,
        peer_tar as f64 / 1e6,
        args.runs
    );
    let rows = [
        ("ocibuild gzip-6", med[0], gz.size, gz.uncompressed_size),
        ("tar | pigz -6 | sha256sum", med[1], pigz_out, peer_tar),
        ("ocibuild zstd-3", med[2], zs.size, zs.uncompressed_size),
        ("tar | zstd -3 | sha256sum", med[3], zstd_out, peer_tar),
        (
            "ocibuild gzip-4 (ratio-matched)",
            med[4],
            gz4.size,
            gz4.uncompressed_size,
        ),
    ];
    println!(
        "| {:<27} | {:>8} | {:>8} | {:>12} | {:>6} | {:<30} |",
        "pipeline", "wall s", "MB/s", "output bytes", "ratio", "runs (s)"
    );
    println!(
        "|{:-<29}|{:->10}|{:->10}|{:->14}|{:->8}|{:-<32}|",
        "", "", "", "", "", ""
    );
    for (i, (name, secs, out, input)) in rows.iter().enumerate() {
        let mut runs = String::new();
        for t in &times[i] {
            let _ = write!(runs, "{t:.3} ");
        }
        println!(
            "| {:<27} | {:>8.3} | {:>8.1} | {:>12} | {:>6.4} | {:<30} |",
            name,
            secs,
            *input as f64 / 1e6 / secs,
            out,
            *out as f64 / *input as f64,
            runs.trim_end()
        );
    }
    let gz_time = med[0] / med[1];
    let gz_ratio =
        (gz.size as f64 / gz.uncompressed_size as f64) / (pigz_out as f64 / peer_tar as f64);
    let zs_time = med[2] / med[3];
    let zs_ratio =
        (zs.size as f64 / zs.uncompressed_size as f64) / (zstd_out as f64 / peer_tar as f64);
    let mark = |ok: bool| if ok { "MET" } else { "NOT MET" };
    println!();
    println!(
        "gzip: ocibuild/pigz wall time {gz_time:.3} (target <= {GZIP_TARGET}: {}), compression ratio ocibuild/pigz {gz_ratio:.4} (target 1 ± {RATIO_TOLERANCE}: {})",
        mark(gz_time <= GZIP_TARGET),
        mark((gz_ratio - 1.0).abs() <= RATIO_TOLERANCE)
    );
    println!(
        "zstd: ocibuild/zstd wall time {zs_time:.3} (target <= {ZSTD_TARGET}: {}), compression ratio ocibuild/zstd {zs_ratio:.4}",
        mark(zs_time <= ZSTD_TARGET)
    );
    let gz4_time = med[4] / med[1];
    let gz4_ratio =
        (gz4.size as f64 / gz4.uncompressed_size as f64) / (pigz_out as f64 / peer_tar as f64);
    println!(
        "gzip at the same compression ratio: ocibuild gzip-4/pigz -6 wall time {gz4_time:.3} (target <= {GZIP_TARGET}: {}), compression ratio {gz4_ratio:.4} (within 1 ± {RATIO_TOLERANCE}: {})",
        mark(gz4_time <= GZIP_TARGET),
        mark((gz4_ratio - 1.0).abs() <= RATIO_TOLERANCE)
    );
    if let Some(digest) = &assembled {
        let mut runs = String::new();
        for t in &times[5] {
            let _ = write!(runs, "{t:.3} ");
        }
        let a_time = med[5] / med[1];
        println!(
            "assemble end to end: `ocibuild assemble` (whole process, fresh store, oci: layout written) {:.3} s / pigz pipeline {:.3} s = {a_time:.3} (target <= {ASSEMBLE_TARGET}: {}); runs (s): {}; image {digest}",
            med[5],
            med[1],
            mark(a_time <= ASSEMBLE_TARGET),
            runs.trim_end()
        );
    }
    println!("layer digests: gzip {} zstd {}", gz.digest, zs.digest);
    println!("diff_id: {}", gz.diff_id);
    Ok(())
}

fn ocibuild(
    tree: &Path,
    blob: &Path,
    compression: Compression,
    level: u32,
    threads: usize,
) -> Res<(f64, LayerInfo)> {
    let t0 = Instant::now();
    let mut b = LayerBuilder::new(LayerOptions {
        compression,
        level: Some(level),
        ..Default::default()
    });
    b.set_threads(threads);
    b.add_dir(tree, "")?;
    let (f, info) = b.write(fs::File::create(blob)?)?;
    drop(f);
    Ok((t0.elapsed().as_secs_f64(), info))
}

/// `$OCIBUILD_BIN`, else `ocibuild` next to this benchmark's own binary (`target/release`).
fn ocibuild_binary() -> Res<PathBuf> {
    if let Some(p) = std::env::var_os("OCIBUILD_BIN") {
        let bin = PathBuf::from(p);
        if !bin.is_file() {
            return Err(format!("OCIBUILD_BIN={} is not a file", bin.display()).into());
        }
        return Ok(bin);
    }
    let exe = std::env::current_exe()?;
    let bin = exe
        .parent()
        .ok_or("cannot tell the directory of the running benchmark")?
        .join("ocibuild");
    if !bin.is_file() {
        return Err(format!(
            "{} is missing: run `cargo build --release -p ocibuild` first, set OCIBUILD_BIN, or pass --no-assemble",
            bin.display()
        )
        .into());
    }
    Ok(bin)
}

/// One timed `ocibuild assemble` process on a fresh store, writing an `oci:` layout (both
/// removed afterwards, untimed); returns the seconds and the image digest it printed.
fn assemble_process(bin: &Path, tree: &Path, work: &Path, round: usize) -> Res<(f64, String)> {
    let root = work.join(format!("assemble-store-{round}"));
    let out = work.join(format!("assemble-out-{round}"));
    let t0 = Instant::now();
    let o = Command::new(bin)
        .arg("--root")
        .arg(&root)
        .args(["--progress", "plain", "assemble", "--layer"])
        .arg(format!("{}:/app", tree.display()))
        .arg("--output")
        .arg(format!("oci:{}:t", out.display()))
        .output()?;
    let secs = t0.elapsed().as_secs_f64();
    if !o.status.success() {
        return Err(format!(
            "ocibuild assemble failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        )
        .into());
    }
    let digest = String::from_utf8(o.stdout)?.trim().to_string();
    let _ = fs::remove_dir_all(&root);
    let _ = fs::remove_dir_all(&out);
    Ok((secs, digest))
}

fn shell_time(cmd: &str) -> Res<f64> {
    let t0 = Instant::now();
    let st = Command::new("bash")
        .arg("-c")
        .arg(format!("set -o pipefail; {cmd}"))
        .status()?;
    let secs = t0.elapsed().as_secs_f64();
    if !st.success() {
        return Err(format!("`{cmd}` failed: {st}").into());
    }
    Ok(secs)
}

fn shell_bytes(cmd: &str) -> Res<u64> {
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("set -o pipefail; {cmd}"))
        .output()?;
    if !out.status.success() {
        return Err(format!("`{cmd}` failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(String::from_utf8(out.stdout)?.trim().parse()?)
}

// -------------------------------------------------------------------------------------------
// The generated tree: node_modules-shaped, JavaScript-like contents (gzip-6 ratio ≈ 0.3)

const KEYWORDS: &[&str] = &[
    "const",
    "let",
    "var",
    "function",
    "return",
    "if",
    "else",
    "for",
    "while",
    "new",
    "this",
    "typeof",
    "undefined",
    "null",
    "true",
    "false",
    "async",
    "await",
    "throw",
    "try",
    "catch",
    "class",
    "extends",
    "super",
    "static",
    "import",
    "export",
    "default",
    "in",
    "of",
    "instanceof",
];
const GLOBALS: &[&str] = &[
    "require",
    "module.exports",
    "exports",
    "Object.keys",
    "Object.assign",
    "Array.isArray",
    "Promise.resolve",
    "JSON.stringify",
    "JSON.parse",
    "process.env",
    "Buffer.from",
    "console.log",
    "Symbol.iterator",
    "Math.max",
    "Math.min",
    "Number.isNaN",
    "String",
    "Error",
    "Map",
    "Set",
];
const SYLLABLES: &[&str] = &[
    "get", "set", "handle", "parse", "value", "node", "buffer", "stream", "options", "config",
    "callback", "result", "error", "index", "key", "item", "list", "map", "cache", "event", "emit",
    "listener", "request", "response", "token", "path", "name", "type", "state", "data", "format",
    "resolve", "reject", "promise", "module", "plugin", "context", "target", "source", "length",
    "offset", "chunk", "encode", "decode", "match", "pattern", "visit", "walk", "tree",
];
const WORDS: &[&str] = &[
    "the", "a", "to", "of", "and", "is", "in", "that", "it", "for", "this", "with", "as", "be",
    "on", "not", "you", "are", "or", "by", "from", "an", "can", "will", "use", "if", "when",
    "returns", "value", "function", "object", "string", "array", "option", "default", "install",
    "module", "package", "usage", "example", "license", "support", "version", "node", "browser",
];
const MIT: &str = "MIT License\n\nCopyright (c) the authors\n\nPermission is hereby granted, free of charge, to any person obtaining a copy\nof this software and associated documentation files (the \"Software\"), to deal\nin the Software without restriction, including without limitation the rights\nto use, copy, modify, merge, publish, distribute, sublicense, and/or sell\ncopies of the Software, and to permit persons to whom the Software is\nfurnished to do so, subject to the following conditions:\n\nThe above copyright notice and this permission notice shall be included in all\ncopies or substantial portions of the Software.\n\nTHE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR\nIMPLIED.\n";

fn ident(r: &mut Rng) -> String {
    let mut s = String::new();
    if r.chance(MINIFIED_IDENT_PERCENT) {
        // minified-style names: short random letters
        const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_$";
        for _ in 0..1 + r.below(4) {
            s.push(char::from(LETTERS[r.below(LETTERS.len())]));
        }
        return s;
    }
    for i in 0..1 + r.below(3) {
        let syl = r.pick(SYLLABLES);
        if i == 0 {
            s.push_str(syl);
        } else {
            let mut c = syl.chars();
            if let Some(f) = c.next() {
                s.extend(f.to_uppercase());
                s.push_str(c.as_str());
            }
        }
    }
    if r.chance(15) {
        let _ = write!(s, "{}", r.below(100));
    }
    s
}

/// Tuned so that gzip -6 compresses the tree to about 30% (like real `node_modules`).
const MINIFIED_IDENT_PERCENT: usize = 35;
/// Extra statement kinds (out of 12) that are literal data.
const LITERAL_EXTRA: usize = 10;

/// Random literal data (hashes, base64 blobs, version strings) as found in bundles.
fn literal(r: &mut Rng) -> String {
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    match r.below(3) {
        0 => {
            for _ in 0..8 + r.below(40) {
                let _ = write!(s, "{:x}", r.below(16));
            }
        }
        1 => {
            for _ in 0..8 + r.below(60) {
                s.push(char::from(B64[r.below(64)]));
            }
        }
        _ => {
            let _ = write!(
                s,
                "{}.{}.{}-{}",
                r.below(20),
                r.below(100),
                r.below(100),
                ident(r)
            );
        }
    }
    s
}

/// JavaScript-looking source: per-file identifiers, keywords, literals, comments.
fn javascript(r: &mut Rng, target: usize, minified: bool) -> String {
    let locals: Vec<String> = (0..20 + r.below(60)).map(|_| ident(r)).collect();
    let local = |r: &mut Rng| locals[r.below(locals.len())].clone();
    let mut s = String::with_capacity(target + 256);
    if !minified {
        s.push_str("'use strict';\n\n");
    }
    let nl = if minified { "" } else { "\n" };
    let mut depth = 0usize;
    while s.len() < target {
        let indent = if minified {
            String::new()
        } else {
            "  ".repeat(depth)
        };
        match r.below(12 + LITERAL_EXTRA) {
            0 => {
                let _ = write!(
                    s,
                    "{indent}const {} = require('{}');{nl}",
                    local(r),
                    ident(r)
                );
            }
            1 | 2 => {
                let _ = write!(
                    s,
                    "{indent}function {}({}, {}) {{{nl}",
                    local(r),
                    local(r),
                    local(r)
                );
                depth += 1;
            }
            3 if depth > 0 => {
                depth -= 1;
                let indent = if minified {
                    String::new()
                } else {
                    "  ".repeat(depth)
                };
                let _ = write!(s, "{indent}}}{nl}");
            }
            4 => {
                let _ = write!(
                    s,
                    "{indent}if ({} {} {}) {{ return {}; }}{nl}",
                    local(r),
                    r.pick(&["===", "!==", "<", ">=", "&&", "||"]),
                    if r.chance(50) {
                        local(r)
                    } else {
                        r.pick(&["null", "undefined", "0", "''"]).to_string()
                    },
                    local(r)
                );
            }
            5 => {
                let _ = write!(
                    s,
                    "{indent}{}.{} = {}({}, {});{nl}",
                    local(r),
                    ident(r),
                    r.pick(GLOBALS),
                    local(r),
                    r.below(100_000)
                );
            }
            6 if !minified => {
                let _ = write!(s, "{indent}//");
                for _ in 0..3 + r.below(10) {
                    let _ = write!(s, " {}", r.pick(WORDS));
                }
                s.push('\n');
            }
            7 => {
                let _ = write!(
                    s,
                    "{indent}{} {} = {{ {}: '{}', {}: {}, {}: [{}, {}] }};{nl}",
                    r.pick(&["const", "let", "var"]),
                    local(r),
                    ident(r),
                    ident(r),
                    local(r),
                    r.below(1 << 20),
                    ident(r),
                    r.below(1000),
                    local(r)
                );
            }
            8 => {
                let _ = write!(
                    s,
                    "{indent}for (let i = 0; i < {}.length; i++) {{ {}.push({}[i]); }}{nl}",
                    local(r),
                    local(r),
                    local(r)
                );
            }
            9 => {
                let _ = write!(
                    s,
                    "{indent}{} {}({}).then(({}) => {}.{}({}));{nl}",
                    r.pick(KEYWORDS),
                    local(r),
                    local(r),
                    local(r),
                    local(r),
                    ident(r),
                    local(r)
                );
            }
            n if n >= 12 || (n == 10 && r.chance(50)) => {
                let _ = write!(
                    s,
                    "{indent}{}[\"{}\"] = \"{}\";{nl}",
                    local(r),
                    literal(r),
                    literal(r)
                );
            }
            10 => {
                let _ = write!(
                    s,
                    "{indent}throw new Error('{} {} {}: ' + {});{nl}",
                    r.pick(WORDS),
                    r.pick(WORDS),
                    ident(r),
                    local(r)
                );
            }
            _ => {
                let _ = write!(
                    s,
                    "{indent}return {}.{}({});{nl}",
                    local(r),
                    ident(r),
                    local(r)
                );
            }
        }
    }
    while depth > 0 {
        depth -= 1;
        s.push('}');
        s.push_str(nl);
    }
    s.push_str("module.exports = exports.default;\n");
    s
}

fn readme(r: &mut Rng, name: &str) -> String {
    let mut s = format!("# {name}\n\n");
    for _ in 0..2 + r.below(8) {
        for _ in 0..20 + r.below(60) {
            s.push_str(r.pick(WORDS));
            s.push(' ');
        }
        let _ = write!(
            s,
            "\n\n```js\nconst {} = require('{name}');\n{}({});\n```\n\n",
            ident(r),
            ident(r),
            ident(r)
        );
    }
    s
}

fn package_json(r: &mut Rng, name: &str, deps: &[String]) -> String {
    let mut s = format!(
        "{{\n  \"name\": \"{name}\",\n  \"version\": \"{}.{}.{}\",\n  \"description\": \"{} {} {}\",\n  \"main\": \"index.js\",\n  \"license\": \"MIT\",\n  \"dependencies\": {{",
        r.below(10),
        r.below(30),
        r.below(20),
        r.pick(WORDS),
        r.pick(WORDS),
        r.pick(WORDS)
    );
    for (i, d) in deps.iter().enumerate() {
        let _ = write!(
            s,
            "{}\n    \"{d}\": \"^{}.{}.0\"",
            if i == 0 { "" } else { "," },
            r.below(10),
            r.below(30)
        );
    }
    s.push_str("\n  }\n}\n");
    s
}

/// A file size: mostly small, a long tail of bundles.
fn js_size(r: &mut Rng) -> usize {
    match r.below(100) {
        0..=59 => 300 + r.below(6_000),
        60..=89 => 6_000 + r.below(30_000),
        90..=97 => 30_000 + r.below(120_000),
        _ => 150_000 + r.below(900_000),
    }
}

struct Gen {
    rng: Rng,
    files: usize,
    bytes: u64,
}

impl Gen {
    fn write(&mut self, path: &Path, contents: &str) -> Res<()> {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(path, contents)?;
        self.files += 1;
        self.bytes += contents.len() as u64;
        Ok(())
    }

    fn package(&mut self, dir: &Path, name: &str, nested: bool) -> Res<()> {
        let r = &mut self.rng;
        let deps: Vec<String> = (0..r.below(5)).map(|_| ident(r).to_lowercase()).collect();
        let pj = package_json(r, name, &deps);
        let rd = readme(r, name);
        self.write(&dir.join("package.json"), &pj)?;
        self.write(&dir.join("README.md"), &rd)?;
        self.write(&dir.join("LICENSE"), MIT)?;
        let size = js_size(&mut self.rng);
        let index = javascript(&mut self.rng, size, false);
        self.write(&dir.join("index.js"), &index)?;
        let sub = *["lib", "src", "dist", "build/cjs"]
            .get(self.rng.below(4))
            .unwrap_or(&"lib");
        for _ in 0..2 + self.rng.below(12) {
            let size = js_size(&mut self.rng);
            let minified = sub == "dist" && self.rng.chance(50);
            let file = format!(
                "{}{}",
                ident(&mut self.rng),
                if minified { ".min.js" } else { ".js" }
            );
            let js = javascript(&mut self.rng, size, minified);
            self.write(&dir.join(sub).join(file), &js)?;
            if self.rng.chance(20) {
                let size = 200 + self.rng.below(3000);
                let dts = javascript(&mut self.rng, size, false);
                let name = format!("{}.d.ts", ident(&mut self.rng));
                self.write(&dir.join(sub).join(name), &dts)?;
            }
        }
        if !nested && self.rng.chance(15) {
            for _ in 0..1 + self.rng.below(3) {
                let n = ident(&mut self.rng).to_lowercase();
                self.package(&dir.join("node_modules").join(&n), &n, true)?;
            }
        }
        Ok(())
    }
}

/// At least 2,000 files and 30 MB; returns (files, bytes).
fn generate_tree(root: &Path) -> Res<(usize, u64)> {
    if root.exists() {
        fs::remove_dir_all(root)?;
    }
    let mut g = Gen {
        rng: Rng(0x5eed_0c1b_u64),
        files: 0,
        bytes: 0,
    };
    let mut n = 0usize;
    while g.files < 2_500 || g.bytes < 36_000_000 {
        let base = ident(&mut g.rng).to_lowercase();
        let name = if g.rng.chance(20) {
            format!("@{}/{base}-{n}", ident(&mut g.rng).to_lowercase())
        } else {
            format!("{base}-{n}")
        };
        g.package(&root.join(&name), &name, false)?;
        n += 1;
    }
    Ok((g.files, g.bytes))
}
