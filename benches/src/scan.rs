//! `scan-bench`: the offline vulnerability gate on a database the size of osv.dev's.
//!
//! Generates 300,000 OSV records across Debian, Go, npm, PyPI and Maven (shaped like the real
//! ones: aliases, summaries and details, CVSS vectors on half, Debian records with version lists,
//! several ranges), written as five per-ecosystem `all.zip` archives as osv.dev publishes them
//! (untimed). Then measures `db import` of the five archives (time, index size) and scans of a
//! package list the size of a Node or Python app image (~300 packages, ~100 of them Debian) in a
//! child process each: wall time and peak RSS (VmHWM). Prints the figures and whether the targets
//! are met (≤ 1 s per scan, ≤ 200 MB RSS). Asserts nothing about time.
//!
//! Usage: `cargo build --release -p ocibuild-benches && target/release/scan-bench
//! [--records N] [--runs N] [--keep]`

#[path = "common.rs"]
mod common;
use common::{Rng, machine_info, median};

use std::error::Error;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::{Value, json};

type Res<T> = Result<T, Box<dyn Error>>;

const ECOSYSTEMS: [&str; 5] = ["Debian", "Go", "npm", "PyPI", "Maven"];

/// The app's packages per ecosystem (a Node or Python app image with its Debian base).
const APP: [(&str, usize); 5] = [
    ("Debian", 100),
    ("Go", 20),
    ("npm", 120),
    ("PyPI", 45),
    ("Maven", 15),
];

fn pkg_name(eco: &str, i: usize) -> String {
    match eco {
        "Debian" => format!("libpkg{i}"),
        "Go" => format!("example.org/mod{}/v{}", i, 1 + i % 3),
        "npm" if i.is_multiple_of(4) => format!("@scope{}/pkg{i}", i % 50),
        "npm" => format!("pkg-{i}"),
        "PyPI" => format!("py-dist-{i}"),
        _ => format!("org.example.g{}:artifact-{i}", i % 100),
    }
}

fn version(eco: &str, r: &mut Rng) -> String {
    let (a, b, c) = (r.below(5), r.below(20), r.below(30));
    match eco {
        "Debian" => format!("{a}.{b}.{c}-{}+deb12u{}", 1 + r.below(3), r.below(4)),
        "PyPI" if r.chance(10) => format!("{a}.{b}.{c}rc{}", r.below(3)),
        _ => format!("{a}.{b}.{c}"),
    }
}

fn record(eco: &str, n: usize, names: usize, r: &mut Rng) -> Value {
    let name = pkg_name(eco, r.below(names));
    let id = match eco {
        "Debian" => format!("DEBIAN-CVE-2099-{n:06}"),
        "Go" => format!("GO-2099-{n:06}"),
        "PyPI" => format!("PYSEC-2099-{n:06}"),
        _ => format!("GHSA-{:04x}-{:04x}-{n:06}", r.below(65536), r.below(65536)),
    };
    let mut ranges = vec![
        json!({"type": if eco == "Go" || eco == "npm" {"SEMVER"} else {"ECOSYSTEM"},
        "events": [{"introduced": "0"}, {"fixed": version(eco, r)}]}),
    ];
    if r.chance(30) {
        ranges.push(json!({"type": "ECOSYSTEM", "events": [{"introduced": version(eco, r)}, {"last_affected": version(eco, r)}]}));
    }
    let osv_eco = if eco == "Debian" {
        "Debian:12".to_string()
    } else {
        eco.to_string()
    };
    let mut affected = json!({"package": {"ecosystem": osv_eco, "name": name}, "ranges": ranges});
    if eco == "Debian" {
        let versions: Vec<String> = (0..20).map(|_| version(eco, r)).collect();
        affected["versions"] = json!(versions);
    }
    if eco == "Go" && r.chance(20) {
        affected["ecosystem_specific"] = json!({"imports": [{"path": format!("{name}/sub"), "goos": ["linux"], "goarch": ["arm64"], "symbols": ["F"]}]});
    }
    let mut rec = json!({
        "schema_version": "1.6.0",
        "id": id,
        "modified": format!("2026-{:02}-{:02}T00:00:00Z", 1 + r.below(11), 1 + r.below(28)),
        "published": "2025-01-01T00:00:00Z",
        "aliases": [format!("CVE-2099-{n:06}")],
        "summary": format!("A generated advisory number {n} for {name}: input validation flaw in a parser"),
        "details": "Generated for the benchmark. ".repeat(15),
        "affected": [affected],
        "references": [{"type": "ADVISORY", "url": format!("https://security.example.org/advisories/{n}")},
                       {"type": "FIX", "url": format!("https://git.example.org/{name}/commit/{n:x}")}],
    });
    if r.chance(50) {
        rec["severity"] = json!([{"type": "CVSS_V3", "score": format!(
            "CVSS:3.1/AV:{}/AC:L/PR:N/UI:{}/S:U/C:{}/I:{}/A:{}",
            r.pick(&["N", "L", "A"]), r.pick(&["N", "R"]), r.pick(&["H", "L", "N"]),
            r.pick(&["H", "L", "N"]), r.pick(&["H", "L", "N"]))}]);
    }
    rec
}

fn generate(dir: &Path, total: usize) -> Res<u64> {
    let per = total / ECOSYSTEMS.len();
    let mut bytes = 0;
    for (ei, eco) in ECOSYSTEMS.iter().enumerate() {
        let mut r = Rng(0xbe7c_0000 + ei as u64);
        let names = per / 3; // ~3 records per package, as in the real databases
        let d = dir.join(eco);
        fs::create_dir_all(&d)?;
        let path = d.join("all.zip");
        let mut z = zip::ZipWriter::new(std::io::BufWriter::new(fs::File::create(&path)?));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .compression_level(Some(1));
        for n in 0..per {
            let rec = record(eco, ei * per + n, names, &mut r);
            z.start_file(format!("{}.json", rec["id"].as_str().unwrap_or("x")), opts)?;
            z.write_all(&serde_json::to_vec_pretty(&rec)?)?;
        }
        z.finish()?;
        bytes += fs::metadata(&path)?.len();
    }
    Ok(bytes)
}

/// A CycloneDX SBOM of the app's packages: names drawn from the database's, so some match.
fn app_sbom(path: &Path, total: usize) -> Res<usize> {
    let per = total / ECOSYSTEMS.len();
    let mut r = Rng(0xa99);
    let mut comps = Vec::new();
    for (eco, n) in APP {
        for _ in 0..n {
            let name = pkg_name(eco, r.below(per / 3));
            let v = version(eco, &mut r);
            let purl = match eco {
                "Debian" => {
                    format!("pkg:deb/debian/{name}@{v}?arch=amd64&distro=debian-12&upstream={name}")
                }
                "Go" => format!("pkg:golang/{name}@v{v}"),
                "npm" => format!("pkg:npm/{}@{v}", name.replace('@', "%40")),
                "PyPI" => format!("pkg:pypi/{name}@{v}"),
                _ => {
                    let (g, a) = name.split_once(':').unwrap_or((&name, "x"));
                    format!("pkg:maven/{g}/{a}@{v}")
                }
            };
            comps.push(json!({"type": "library", "name": name, "version": v, "purl": purl,
                "properties": [{"name": "ocibuild:layer", "value": "sha256:00"}, {"name": "ocibuild:path", "value": "/x"},
                               {"name": "ocibuild:goos", "value": "linux"}, {"name": "ocibuild:goarch", "value": "amd64"}]}));
        }
    }
    let n = comps.len();
    fs::write(
        path,
        serde_json::to_vec(
            &json!({"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1, "components": comps}),
        )?,
    )?;
    Ok(n)
}

fn vm_hwm_kib() -> u64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// The child: what `ocibuild scan --sbom FILE --db DIR --format json` does, timed from the start.
fn child(db: &Path, sbom: &Path) -> Res<()> {
    let t = Instant::now();
    let doc: Value = serde_json::from_slice(&fs::read(sbom)?)?;
    let pkgs = ocibuild_scan::from_cyclonedx(&doc)?;
    let db = ocibuild_scan::Database::open(db)?;
    let report = ocibuild_scan::scan(&pkgs, &db, &ocibuild_scan::Options::default())?;
    let out = serde_json::to_vec(&report.to_json(ocibuild_scan::time::now()))?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{secs} {} {} {}",
        vm_hwm_kib(),
        report.findings.len(),
        out.len()
    );
    Ok(())
}

fn dir_size(p: &Path) -> u64 {
    fs::read_dir(p)
        .map(|d| {
            d.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        return child(Path::new(&args[2]), Path::new(&args[3]));
    }
    let mut records = 300_000usize;
    let mut runs = 5usize;
    let mut keep = false;
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--records" => records = it.next().ok_or("--records N")?.parse()?,
            "--runs" => runs = it.next().ok_or("--runs N")?.parse()?,
            "--keep" => keep = true,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    println!("{}", machine_info(&[]));
    let tmp = tempfile::Builder::new().prefix("scan-bench-").tempdir()?;
    let src = tmp.path().join("osv");
    let t = Instant::now();
    let zip_bytes = generate(&src, records)?;
    println!(
        "generated {records} OSV records in five all.zip archives ({:.1} MB) in {:.1}s (untimed)",
        zip_bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    let db = tmp.path().join("db");
    let t = Instant::now();
    let info = ocibuild_scan::db::import(&src, &db)?;
    let import_secs = t.elapsed().as_secs_f64();
    println!(
        "db import: {import_secs:.1}s (peak RSS of generation + import {:.1} MB), {} records, {} index entries; index {:.1} MB + records {:.1} MB (on disk {:.1} MB)",
        vm_hwm_kib() as f64 / 1024.0,
        info.records,
        info.index_entries,
        info.index_bytes as f64 / 1e6,
        info.records_bytes as f64 / 1e6,
        dir_size(&db) as f64 / 1e6
    );
    let sbom = tmp.path().join("app.cdx.json");
    let n = app_sbom(&sbom, records)?;
    let exe = std::env::current_exe()?;
    let mut times = Vec::new();
    let mut rss = Vec::new();
    let mut findings = 0;
    for _ in 0..runs {
        let out = Command::new(&exe)
            .arg("--child")
            .arg(&db)
            .arg(&sbom)
            .output()?;
        if !out.status.success() {
            return Err(format!(
                "scan child failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        let s = String::from_utf8_lossy(&out.stdout);
        let f: Vec<&str> = s.split_whitespace().collect();
        times.push(f.first().ok_or("child output")?.parse::<f64>()?);
        rss.push(f.get(1).ok_or("child output")?.parse::<f64>()? / 1024.0);
        findings = f.get(2).ok_or("child output")?.parse::<usize>()?;
    }
    let (t_med, r_max) = (median(&mut times), rss.iter().cloned().fold(0.0, f64::max));
    println!(
        "scan of {n} packages ({} Debian): median {:.3}s over {runs} runs, peak RSS {:.1} MB, {findings} findings",
        APP[0].1, t_med, r_max
    );
    println!(
        "targets: scan ≤ 1 s: {}; RSS ≤ 200 MB: {}",
        if t_med <= 1.0 { "met" } else { "NOT met" },
        if r_max <= 200.0 { "met" } else { "NOT met" }
    );
    if keep {
        let kept: PathBuf = tmp.keep();
        println!("kept {}", kept.display());
    }
    Ok(())
}
