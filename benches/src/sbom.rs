//! `sbom-bench`: what writing the SBOM costs, as a fraction of a cold build (issue 17's target:
//! SBOM generation for each testdata image ≤ 5% of its cold build time).
//!
//! For each app (default: the four zero-config testdata apps `go-http`, `node-ts-express`,
//! `python-flask`, `java-maven`), each run:
//! - a cold `ocibuild build APP --sbom cyclonedx,spdx` with a fresh, empty `--root` (no toolchain
//!   root, no runtime base, no build cache). The Debian package cache (`--cache-dir`) is shared
//!   and warmed first by one untimed build per app: downloading `.deb`s is network time, not
//!   build time (npm, PyPI and Maven downloads stay in the cold build, as on a CI runner with no
//!   cache). The build's `sbom-catalogued` event gives the time it spent cataloguing (from the
//!   build record and the layers);
//! - then `ocibuild sbom IMAGE --format cyclonedx` and `--format spdx` on the same store (which
//!   finds the build record), as whole processes: the upper bound, with process start, image
//!   loading and document writing.
//!
//! Prints machine info, per app the medians and `SBOM / cold build` for both measures, and
//! whether the 5% target is met. It asserts nothing about time.
//!
//! Usage: `cargo build --release -p ocibuild -p ocibuild-benches &&
//! target/release/sbom-bench [--runs N] [--apps go-http,node-ts-express] [--cache-dir DIR
//! [--skip-warm]]` (`--skip-warm`: the cache dir is warm already, no untimed build first)
//! (`OCIBUILD_BIN` names another ocibuild binary).

#[path = "common.rs"]
mod common;
use common::{machine_info, median};
use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use ocibuild_testkit::TestContext;
use serde_json::Value;

type Res<T> = Result<T, Box<dyn Error>>;

const TARGET: f64 = 0.05;
const APPS: &[&str] = &["go-http", "node-ts-express", "python-flask", "java-maven"];

struct Args {
    runs: usize,
    apps: Vec<String>,
    cache_dir: Option<PathBuf>,
    /// The `--cache-dir` is warm already: no untimed build first.
    skip_warm: bool,
}

fn parse_args() -> Res<Args> {
    let mut a = Args {
        runs: 1,
        apps: APPS.iter().map(|s| s.to_string()).collect(),
        cache_dir: None,
        skip_warm: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--runs" => {
                a.runs = it
                    .next()
                    .ok_or("--runs needs a number")?
                    .parse()
                    .map_err(|e| format!("--runs: {e}"))?;
                if a.runs == 0 {
                    return Err("--runs must be at least 1".into());
                }
            }
            "--apps" => {
                a.apps = it
                    .next()
                    .ok_or("--apps needs a list (go-http,node-ts-express,…)")?
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
            }
            "--cache-dir" => {
                a.cache_dir = Some(it.next().ok_or("--cache-dir needs a directory")?.into());
            }
            "--skip-warm" => a.skip_warm = true,
            "-h" | "--help" => {
                println!(
                    "usage: sbom-bench [--runs N] [--apps {}] [--cache-dir DIR [--skip-warm]]",
                    APPS.join(",")
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other} (see --help)").into()),
        }
    }
    Ok(a)
}

fn ocibuild_binary() -> Res<PathBuf> {
    if let Some(p) = std::env::var_os("OCIBUILD_BIN") {
        let bin = PathBuf::from(p);
        if !bin.is_file() {
            return Err(format!("OCIBUILD_BIN={} is not a file", bin.display()).into());
        }
        return Ok(bin);
    }
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .ok_or("cannot tell the directory of the running benchmark")?;
    let bin = dir.join("ocibuild");
    if !bin.is_file() {
        return Err(format!(
            "{} is missing: run `cargo build --release -p ocibuild` first (or set OCIBUILD_BIN)",
            bin.display()
        )
        .into());
    }
    Ok(bin)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("sbom-bench: {e}");
        std::process::exit(1);
    }
}

/// One app's measurements, in seconds.
#[derive(Default)]
struct Runs {
    cold: Vec<f64>,
    in_build: Vec<f64>,
    standalone: Vec<f64>,
    components: usize,
}

fn run() -> Res<()> {
    let args = parse_args()?;
    let ocibuild = ocibuild_binary()?;
    let apps_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/apps");
    for app in &args.apps {
        if !apps_dir.join(app).is_dir() {
            return Err(format!("no testdata app {app} (have: {})", APPS.join(", ")).into());
        }
    }
    let ctx = TestContext::new();
    let cache_dir = args
        .cache_dir
        .clone()
        .unwrap_or_else(|| ctx.path("apt-cache"));
    std::fs::create_dir_all(&cache_dir)?;
    println!("{}", machine_info(&[]));
    println!(
        "ocibuild {}; {} run(s) per app; Debian package cache {}",
        ocibuild.display(),
        args.runs,
        cache_dir.display()
    );
    let mut rows = Vec::new();
    for app in &args.apps {
        let src = apps_dir.join(app);
        if !args.skip_warm {
            // untimed: fill the Debian package cache
            let warm_root = ctx.path(format!("{app}-warm-root"));
            build(
                &ocibuild,
                &warm_root,
                &cache_dir,
                &src,
                &ctx.path(format!("{app}-warm-out")),
                &ctx.path(format!("{app}-warm-sbom")),
            )?;
            let _ = std::fs::remove_dir_all(&warm_root);
        }
        let mut r = Runs::default();
        for round in 0..args.runs {
            let root = ctx.path(format!("{app}-root-{round}"));
            let out = ctx.path(format!("{app}-out-{round}"));
            let sbom_dir = ctx.path(format!("{app}-sbom-{round}"));
            let (cold, in_build) = build(&ocibuild, &root, &cache_dir, &src, &out, &sbom_dir)?;
            r.cold.push(cold);
            r.in_build.push(in_build);
            let image = format!("oci:{}:app", out.display());
            let mut standalone = 0.0;
            for format in ["cyclonedx", "spdx"] {
                let file = sbom_dir.join(format!("again.{format}.json"));
                let t0 = Instant::now();
                let o = Command::new(&ocibuild)
                    .arg("--root")
                    .arg(&root)
                    .args(["sbom", &image, "--format", format, "--output"])
                    .arg(&file)
                    .output()?;
                standalone += t0.elapsed().as_secs_f64();
                if !o.status.success() {
                    return Err(format!(
                        "ocibuild sbom {image} --format {format} failed:\n{}",
                        String::from_utf8_lossy(&o.stderr)
                    )
                    .into());
                }
            }
            r.standalone.push(standalone);
            let doc: Value =
                serde_json::from_slice(&std::fs::read(sbom_dir.join("sbom.cdx.json"))?)?;
            r.components = doc["components"].as_array().map_or(0, Vec::len);
            let _ = std::fs::remove_dir_all(&root);
        }
        rows.push((app.clone(), r));
    }
    println!(
        "\n| {:<16} | {:>10} | {:>9} | {:>12} | {:>8} | {:>13} | {:>8} | {:<7} |",
        "app", "components", "cold s", "in build s", "ratio", "standalone s", "ratio", "≤ 5%"
    );
    println!(
        "|{:-<18}|{:->12}|{:->11}|{:->14}|{:->10}|{:->15}|{:->10}|{:-<9}|",
        "", "", "", "", "", "", "", ""
    );
    for (app, mut r) in rows {
        let cold = median(&mut r.cold);
        let inb = median(&mut r.in_build);
        let sa = median(&mut r.standalone);
        let (ri, rs) = (inb / cold, sa / cold);
        println!(
            "| {:<16} | {:>10} | {:>9.2} | {:>12.3} | {:>7.2}% | {:>13.3} | {:>7.2}% | {:<7} |",
            app,
            r.components,
            cold,
            inb,
            ri * 100.0,
            sa,
            rs * 100.0,
            if rs <= TARGET {
                "MET"
            } else if ri <= TARGET {
                "in build"
            } else {
                "NOT MET"
            }
        );
    }
    println!(
        "\nin build: the build's own cataloguing time (its `sbom-catalogued` event); standalone: \
         `ocibuild sbom IMAGE` for both formats as whole processes. Ratios are of the cold build."
    );
    Ok(())
}

/// A build of `app` with both SBOMs: (wall seconds, seconds it spent cataloguing).
fn build(
    ocibuild: &Path,
    root: &Path,
    cache_dir: &Path,
    app: &Path,
    out: &Path,
    sbom_dir: &Path,
) -> Res<(f64, f64)> {
    let t0 = Instant::now();
    let o = Command::new(ocibuild)
        .arg("--root")
        .arg(root)
        .args(["--progress", "json", "build"])
        .arg(app)
        .arg("--cache-dir")
        .arg(cache_dir)
        .arg("--output")
        .arg(format!("oci:{}:app", out.display()))
        .args(["--sbom", "cyclonedx,spdx", "--sbom-dir"])
        .arg(sbom_dir)
        .output()?;
    let secs = t0.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&o.stderr);
    if !o.status.success() {
        return Err(format!("ocibuild build {} failed:\n{stderr}", app.display()).into());
    }
    let catalogued = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["event"] == "sbom-catalogued")
        .and_then(|v| v["seconds"].as_f64())
        .ok_or("the build printed no sbom-catalogued event")?;
    Ok((secs, catalogued))
}
