//! `registry-bench`: ocibuild's registry client against `skopeo copy`, measured in the same run on
//! the same image and the same kind of registry (the real CNCF `docker-registry`, plain HTTP on a
//! free loopback port, started through `ocibuild-testkit`):
//!
//! - push cold: `ocibuild push oci:LAYOUT:big docker://HOST/bench:N` vs
//!   `skopeo copy oci:LAYOUT:big docker://HOST/bench:N`, each to its own fresh, empty registry;
//! - push warm: the same commands again, to the same registry (every blob already exists);
//! - pull: `ocibuild pull docker://HOST/bench:1 --output oci:NEW:big` (fresh `--root`) vs
//!   `skopeo copy docker://HOST/bench:1 oci:NEW:big`, each into a fresh layout;
//! - FROM: `ocibuild build CTX` (fresh `--root`) of a Dockerfile `FROM HOST/bench:1` + `LABEL`:
//!   the base pulled into the content store, against the same run's skopeo pull.
//!
//! The image (~200 MB: four layers of incompressible pseudo-random data and one text layer) is
//! generated deterministically (a seeded PRNG, no `rand`) and assembled with `ocibuild assemble`.
//! Prints machine info, medians, ratios, and whether the targets are met (push cold ≤ 0.8×
//! skopeo, push warm ≤ 1.0×, pull and FROM ≤ 0.8× skopeo's pull). It asserts nothing about time.
//!
//! Every ocibuild command gets a fresh `--root` (the warm push reuses its cold push's root);
//! skopeo keeps its usual state. Registry start-up, clean-up and the digest checks are untimed.
//! Besides wall time it prints each command's CPU time (user + system, the command and its
//! children) and the 1-minute load average after each round: on a shared machine the wall-time
//! ratio follows the scheduler, so give the load with every figure.
//!
//! Usage: `cargo build --release -p ocibuild && cargo run --release -p ocibuild-benches --bin
//! registry-bench -- [--runs N] [--layout DIR] [--keep] [--pull-only]`

#[path = "common.rs"]
mod common;
use common::{Rng, have, machine_info, median};
use std::error::Error;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use ocibuild_testkit::TestContext;
use ocibuild_testkit::registry::{Registry, RegistryOptions, start_registry};
use serde_json::Value;

type Res<T> = Result<T, Box<dyn Error>>;

const PUSH_COLD_TARGET: f64 = 0.8;
const PUSH_WARM_TARGET: f64 = 1.0;
const PULL_TARGET: f64 = 0.8;
/// The tag of the image in the generated layout.
const TAG: &str = "big";
/// The repository pushed to and pulled from.
const REPO: &str = "bench";
/// Incompressible layers and their size.
const RANDOM_LAYERS: usize = 4;
const RANDOM_LAYER_BYTES: usize = 47_000_000;
/// The text layer's uncompressed size (gzip-6 takes it to about a third).
const TEXT_LAYER_BYTES: usize = 27_000_000;

struct Args {
    runs: usize,
    layout: Option<PathBuf>,
    keep: bool,
    pull_only: bool,
}

fn parse_args() -> Res<Args> {
    let mut a = Args {
        runs: 3,
        layout: None,
        keep: false,
        pull_only: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--runs" => a.runs = value("--runs")?.parse()?,
            "--layout" => a.layout = Some(PathBuf::from(value("--layout")?)),
            "--keep" => a.keep = true,
            "--pull-only" => a.pull_only = true,
            "-h" | "--help" => {
                println!(
                    "registry-bench [--runs N (default 3)] [--layout DIR] [--keep] [--pull-only]\n\
                     Compares ocibuild push/pull with skopeo copy against a local docker-registry.\n\
                     --layout DIR: generate the image into DIR (kept), or reuse it when DIR already\n\
                     holds oci:DIR:{TAG}. --keep: keep the work dir. --pull-only: skip the pushes.\n\
                     Needs the release binary: cargo build --release -p ocibuild"
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
        eprintln!("registry-bench: {e}");
        std::process::exit(1);
    }
}

/// `target/release/ocibuild`, next to this benchmark's own binary.
fn ocibuild_binary() -> Res<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .ok_or("cannot tell the directory of the running benchmark")?;
    let bin = dir.join("ocibuild");
    if !bin.is_file() {
        return Err(format!(
            "{} is missing: run `cargo build --release -p ocibuild` first",
            bin.display()
        )
        .into());
    }
    Ok(bin)
}

fn run() -> Res<()> {
    let args = parse_args()?;
    let ocibuild = ocibuild_binary()?;
    let missing: Vec<&str> = ["skopeo", "docker-registry", "curl"]
        .into_iter()
        .filter(|t| !have(t))
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "registry-bench: missing peer tools: {} (install them: apt-get install skopeo docker-registry curl)",
            missing.join(", ")
        );
        std::process::exit(2);
    }

    let ctx = TestContext::new();
    let result = bench(&args, &ocibuild, &ctx);
    if args.keep {
        println!("kept {}", ctx.dir().display());
        std::mem::forget(ctx);
    }
    result
}

/// What the layout holds: the manifest digest and the bytes a copy moves.
struct Image {
    layout: PathBuf,
    manifest_digest: String,
    layer_sizes: Vec<u64>,
    total_bytes: u64,
}

/// The tool being measured.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tool {
    Ocibuild,
    Skopeo,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Ocibuild => "ocibuild",
            Tool::Skopeo => "skopeo",
        }
    }
}

struct Ctx<'a> {
    ocibuild: &'a Path,
    work: &'a TestContext,
    image: &'a Image,
}

impl Ctx<'_> {
    fn push_cmd(&self, tool: Tool, reg: &Registry, n: usize, root: &Path) -> Command {
        let layout = self.image.layout.display();
        let dest = reg.docker_ref(&format!("{REPO}:{n}"));
        let src = format!("oci:{layout}:{TAG}");
        match tool {
            Tool::Ocibuild => {
                let mut c = Command::new(self.ocibuild);
                c.arg("--root")
                    .arg(root)
                    .args(["--progress", "plain", "push"])
                    .arg(src)
                    .arg(dest);
                c
            }
            Tool::Skopeo => {
                let mut c = Command::new("skopeo");
                c.args(["--insecure-policy", "copy", "--quiet"])
                    .args(reg.skopeo_dest_args())
                    .arg(src)
                    .arg(dest);
                c
            }
        }
    }

    fn pull_cmd(&self, tool: Tool, reg: &Registry, out: &Path, root: &Path) -> Command {
        let src = reg.docker_ref(&format!("{REPO}:1"));
        let dest = format!("oci:{}:{TAG}", out.display());
        match tool {
            Tool::Ocibuild => {
                let mut c = Command::new(self.ocibuild);
                c.arg("--root")
                    .arg(root)
                    .args(["--progress", "plain", "pull"])
                    .arg(src)
                    .arg("--output")
                    .arg(dest);
                c
            }
            Tool::Skopeo => {
                let mut c = Command::new("skopeo");
                c.args(["--insecure-policy", "copy", "--quiet"])
                    .args(reg.skopeo_src_args())
                    .arg(src)
                    .arg(dest);
                c
            }
        }
    }

    /// `ocibuild build` of a Dockerfile whose base is `bench:1` on `reg` (the image stays in the
    /// fresh store `root`).
    fn build_from_cmd(&self, reg: &Registry, root: &Path) -> Res<Command> {
        let dir = self.work.path("from-context");
        fs::create_dir_all(&dir)?;
        fs::write(
            dir.join("Dockerfile"),
            format!("FROM {}/{REPO}:1\nLABEL bench=from\n", reg.host),
        )?;
        let mut c = Command::new(self.ocibuild);
        c.arg("--root")
            .arg(root)
            .args(["--progress", "plain", "build"])
            .arg(&dir);
        Ok(c)
    }

    /// A fresh, not yet existing path in the work dir.
    fn fresh(&self, what: &str) -> PathBuf {
        self.work.path(format!("{what}-{}", next_id()))
    }
}

fn next_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// The times of one operation for both tools: wall seconds, and CPU seconds (user + system of
/// the command and its children), which the load of a shared machine disturbs much less.
#[derive(Default)]
struct Times {
    ocibuild: Vec<f64>,
    skopeo: Vec<f64>,
    ocibuild_cpu: Vec<f64>,
    skopeo_cpu: Vec<f64>,
}

impl Times {
    fn push(&mut self, tool: Tool, (secs, cpu): (f64, f64)) {
        match tool {
            Tool::Ocibuild => {
                self.ocibuild.push(secs);
                self.ocibuild_cpu.push(cpu);
            }
            Tool::Skopeo => {
                self.skopeo.push(secs);
                self.skopeo_cpu.push(cpu);
            }
        }
    }
}

/// The 1-minute load average now.
fn load1() -> String {
    fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_string()
}

/// User + system CPU seconds of this process's waited-for children so far (`/proc/self/stat`
/// cutime + cstime, in USER_HZ = 100 ticks per second).
fn children_cpu() -> f64 {
    let stat = fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // after the command name: state is field 3, cutime 16, cstime 17
    (tick(13) + tick(14)) / 100.0
}

fn bench(args: &Args, ocibuild: &Path, work: &TestContext) -> Res<()> {
    println!(
        "{}",
        machine_info(&[
            (&ocibuild.to_string_lossy(), "--version"),
            ("skopeo", "--version"),
            ("docker-registry", "--version")
        ])
    );
    let layout = match &args.layout {
        Some(d) => d.clone(),
        None => work.path("image"),
    };
    let image = prepare_image(ocibuild, work, &layout)?;
    println!(
        "image: oci:{}:{TAG} | manifest {} | {} layers, {:.1} MB of blobs",
        image.layout.display(),
        image.manifest_digest,
        image.layer_sizes.len(),
        image.total_bytes as f64 / 1e6
    );
    let cx = Ctx {
        ocibuild,
        work,
        image: &image,
    };

    // The pull source: one registry holding the image as bench:1, filled untimed by skopeo
    // (neutral: it copies the layout's manifest and blobs byte for byte).
    let pull_reg = start_registry(work, RegistryOptions::default());
    let fill_root = cx.fresh("root");
    run_cmd(
        &mut cx.push_cmd(Tool::Skopeo, &pull_reg, 1, &fill_root),
        "filling the pull registry",
    )?;
    check_registry_digest(
        &pull_reg,
        "1",
        &image.manifest_digest,
        "skopeo (pull source)",
    )?;

    let mut cold = Times::default();
    let mut warm = Times::default();
    let mut pull = Times::default();
    let mut from: Vec<f64> = Vec::new();
    let mut from_cpu: Vec<f64> = Vec::new();
    let mut loads: Vec<String> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    // one warm-up round (page cache, registry code paths), then `runs` timed rounds in
    // alternating order
    for round in 0..=args.runs {
        let mut order = [Tool::Ocibuild, Tool::Skopeo];
        if round % 2 == 1 {
            order.reverse();
        }
        let timed = round > 0;
        let n = round.max(1);
        eprint!(
            "{} {round}/{}: push",
            if timed { "run" } else { "warm-up" },
            args.runs
        );
        for tool in order.into_iter().filter(|_| !args.pull_only) {
            let reg = start_registry(work, RegistryOptions::default());
            let root = cx.fresh("root");
            let what = format!("{} push (cold)", tool.name());
            let secs = time_cmd(&mut cx.push_cmd(tool, &reg, n, &root), &what)?;
            if timed {
                cold.push(tool, secs);
            }
            if let Err(e) =
                check_registry_digest(&reg, &n.to_string(), &image.manifest_digest, &what)
            {
                note(&mut notes, e.to_string());
            }
            let what = format!("{} push (warm)", tool.name());
            let secs = time_cmd(&mut cx.push_cmd(tool, &reg, n, &root), &what)?;
            if timed {
                warm.push(tool, secs);
            }
            let reg_dir = reg.storage.parent().map(Path::to_path_buf);
            drop(reg);
            if let Some(d) = reg_dir {
                let _ = fs::remove_dir_all(d);
            }
            let _ = fs::remove_dir_all(&root);
            eprint!(" {}", tool.name());
        }
        eprint!(", pull");
        for tool in order {
            let out = cx.fresh("pulled");
            let root = cx.fresh("root");
            let what = format!("{} pull", tool.name());
            let secs = time_cmd(&mut cx.pull_cmd(tool, &pull_reg, &out, &root), &what)?;
            if timed {
                pull.push(tool, secs);
            }
            if let Err(e) = check_layout(&out, &image, &what) {
                note(&mut notes, e.to_string());
            }
            let _ = fs::remove_dir_all(&out);
            let _ = fs::remove_dir_all(&root);
            eprint!(" {}", tool.name());
        }
        eprint!(", FROM");
        let root = cx.fresh("root");
        let secs = time_cmd(
            &mut cx.build_from_cmd(&pull_reg, &root)?,
            "ocibuild build (FROM)",
        )?;
        if timed {
            from.push(secs.0);
            from_cpu.push(secs.1);
            loads.push(load1());
        }
        if let Err(e) = check_store(&root, &image) {
            note(&mut notes, format!("ocibuild build (FROM): {e}"));
        }
        let _ = fs::remove_dir_all(&root);
        eprintln!(" ocibuild");
    }
    drop(pull_reg);

    let mb = image.total_bytes as f64 / 1e6;
    println!(
        "\n{} runs (median) after one warm-up round | {:.1} MB per copy | ocibuild --jobs default, skopeo defaults\n",
        args.runs, mb
    );
    println!(
        "| {:<10} | {:<8} | {:>8} | {:>8} | {:>6} | {:<26} |",
        "operation", "tool", "wall s", "MB/s", "cpu s", "runs (s)"
    );
    println!(
        "|{:-<12}|{:-<10}|{:->10}|{:->10}|{:->8}|{:-<28}|",
        "", "", "", "", "", ""
    );
    let mut ratios = Vec::new();
    for (op, times) in [
        ("push cold", &mut cold),
        ("push warm", &mut warm),
        ("pull", &mut pull),
    ] {
        if args.pull_only && op.starts_with("push") {
            continue;
        }
        let mut meds = [0.0; 2];
        for (i, (tool, v, cpu)) in [
            (Tool::Ocibuild, &mut times.ocibuild, &mut times.ocibuild_cpu),
            (Tool::Skopeo, &mut times.skopeo, &mut times.skopeo_cpu),
        ]
        .into_iter()
        .enumerate()
        {
            let mut runs = String::new();
            for t in v.iter() {
                let _ = write!(runs, "{t:.3} ");
            }
            let m = median(v);
            meds[i] = m;
            // a warm push moves (almost) nothing: MB/s would be meaningless
            let rate = if op == "push warm" {
                "-".to_string()
            } else {
                format!("{:.1}", mb / m)
            };
            println!(
                "| {:<10} | {:<8} | {:>8.3} | {:>8} | {:>6.2} | {:<26} |",
                op,
                tool.name(),
                m,
                rate,
                median(cpu),
                runs.trim_end()
            );
        }
        ratios.push((op, meds[0] / meds[1]));
    }
    // FROM: ocibuild only; measured against the same rounds' skopeo pull
    let mut runs = String::new();
    for t in from.iter() {
        let _ = write!(runs, "{t:.3} ");
    }
    let from_med = median(&mut from);
    println!(
        "| {:<10} | {:<8} | {:>8.3} | {:>8.1} | {:>6.2} | {:<26} |",
        "FROM",
        "ocibuild",
        from_med,
        mb / from_med,
        median(&mut from_cpu),
        runs.trim_end()
    );
    println!(
        "\nload average (1 min) at the end of each timed round: {} (now {})",
        loads.join(", "),
        load1()
    );
    let skopeo_pull = median(&mut pull.skopeo);
    ratios.push(("FROM", from_med / skopeo_pull));
    let mark = |ok: bool| if ok { "MET" } else { "NOT MET" };
    println!();
    for (op, r) in ratios {
        match op {
            "push cold" => println!(
                "push cold: ocibuild/skopeo wall time {r:.3} (target <= {PUSH_COLD_TARGET}: {})",
                mark(r <= PUSH_COLD_TARGET)
            ),
            "push warm" => println!(
                "push warm: ocibuild/skopeo wall time {r:.3} (target <= {PUSH_WARM_TARGET}: {})",
                mark(r <= PUSH_WARM_TARGET)
            ),
            "pull" => println!(
                "pull:      ocibuild/skopeo wall time {r:.3} (target <= {PULL_TARGET}: {})",
                mark(r <= PULL_TARGET)
            ),
            _ => println!(
                "FROM:      ocibuild build (base pulled into the store)/skopeo pull wall time {r:.3} (target <= {PULL_TARGET}: {})",
                mark(r <= PULL_TARGET)
            ),
        }
    }
    if notes.is_empty() {
        println!(
            "checks: every push left manifest {} in the registry; every pull wrote it with all layers",
            image.manifest_digest
        );
    } else {
        println!("checks FAILED:");
        for n in &notes {
            println!("  {n}");
        }
    }
    Ok(())
}

fn note(notes: &mut Vec<String>, msg: String) {
    if !notes.contains(&msg) {
        notes.push(msg);
    }
}

// -------------------------------------------------------------------------------------------
// Commands

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Run `cmd` to success and return its wall time and CPU time (output captured, shown only on
/// failure).
fn time_cmd(cmd: &mut Command, what: &str) -> Res<(f64, f64)> {
    cmd.stdin(Stdio::null());
    let cpu0 = children_cpu();
    let t0 = Instant::now();
    let out = cmd.output()?;
    let secs = t0.elapsed().as_secs_f64();
    let cpu = children_cpu() - cpu0;
    if !out.status.success() {
        return Err(format!(
            "{what} failed ({}): `{}`\n--- stdout ---\n{}--- stderr ---\n{}",
            out.status,
            describe(cmd),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok((secs, cpu))
}

fn run_cmd(cmd: &mut Command, what: &str) -> Res<()> {
    time_cmd(cmd, what).map(|_| ())
}

/// The digest the registry holds for `bench:TAG` (`Docker-Content-Digest` of a manifest HEAD).
fn check_registry_digest(reg: &Registry, tag: &str, expected: &str, what: &str) -> Res<()> {
    let url = format!("{}/v2/{REPO}/manifests/{tag}", reg.url);
    let out = Command::new("curl")
        .args([
            "-fsSI",
            "-H",
            "Accept: application/vnd.oci.image.manifest.v1+json",
        ])
        .args([
            "-H",
            "Accept: application/vnd.docker.distribution.manifest.v2+json",
        ])
        .arg(&url)
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "{what}: HEAD {url} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    let headers = String::from_utf8_lossy(&out.stdout);
    let got = headers
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("docker-content-digest"))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    if got != expected {
        return Err(format!(
            "{what}: the registry holds manifest {got:?}, the layout has {expected}"
        )
        .into());
    }
    Ok(())
}

/// After a FROM build, the store holds every layer of the base at its size.
fn check_store(root: &Path, image: &Image) -> Res<()> {
    let manifest: Value = serde_json::from_slice(&fs::read(blob_path(
        &image.layout,
        &image.manifest_digest,
    )?)?)?;
    for l in manifest["layers"]
        .as_array()
        .ok_or("the manifest has no layers")?
    {
        let d = l["digest"].as_str().ok_or("a layer without a digest")?;
        let p = blob_path(root, d)?;
        let size = fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        if Some(size) != l["size"].as_u64() {
            return Err(format!("layer {d} is not in the store at its size").into());
        }
    }
    Ok(())
}

/// A pulled layout holds `TAG` with the expected manifest and every layer at its size.
fn check_layout(dir: &Path, image: &Image, what: &str) -> Res<()> {
    let digest = tagged_manifest(dir)?;
    if digest != image.manifest_digest {
        return Err(format!(
            "{what}: wrote manifest {digest}, the registry has {}",
            image.manifest_digest
        )
        .into());
    }
    let manifest: Value = serde_json::from_slice(&fs::read(blob_path(dir, &digest)?)?)?;
    for l in manifest["layers"].as_array().into_iter().flatten() {
        let d = l["digest"].as_str().unwrap_or_default();
        let size = l["size"].as_u64().unwrap_or_default();
        let got = fs::metadata(blob_path(dir, d)?).map(|m| m.len()).ok();
        if got != Some(size) {
            return Err(format!("{what}: layer {d} is {got:?} bytes, not {size}").into());
        }
    }
    Ok(())
}

// -------------------------------------------------------------------------------------------
// The image

fn blob_path(layout: &Path, digest: &str) -> Res<PathBuf> {
    let (alg, hex) = digest
        .split_once(':')
        .ok_or_else(|| format!("not a digest: {digest:?}"))?;
    Ok(layout.join("blobs").join(alg).join(hex))
}

/// The digest of the manifest tagged `TAG` in a layout's index.json.
fn tagged_manifest(layout: &Path) -> Res<String> {
    let index_path = layout.join("index.json");
    let index: Value = serde_json::from_slice(&fs::read(&index_path)?)?;
    index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str() == Some(TAG))
        .and_then(|m| m["digest"].as_str())
        .map(str::to_string)
        .ok_or_else(|| format!("{} names no manifest `{TAG}`", index_path.display()).into())
}

fn read_image(layout: &Path) -> Res<Image> {
    let manifest_digest = tagged_manifest(layout)?;
    let raw = fs::read(blob_path(layout, &manifest_digest)?)?;
    let manifest: Value = serde_json::from_slice(&raw)?;
    let layer_sizes: Vec<u64> = manifest["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["size"].as_u64())
        .collect();
    let config = manifest["config"]["size"].as_u64().unwrap_or_default();
    Ok(Image {
        layout: layout.to_path_buf(),
        manifest_digest,
        total_bytes: layer_sizes.iter().sum::<u64>() + config + raw.len() as u64,
        layer_sizes,
    })
}

/// Reuse the layout when it already holds the image, else generate the trees and assemble.
fn prepare_image(ocibuild: &Path, work: &TestContext, layout: &Path) -> Res<Image> {
    if layout.join("index.json").is_file()
        && let Ok(image) = read_image(layout)
    {
        println!("reusing {}", layout.display());
        return Ok(image);
    }
    let t0 = Instant::now();
    let trees = work.path("trees");
    let mut rng = Rng(0x0c1b_5eed_2e61_5717);
    let mut cmd = Command::new(ocibuild);
    cmd.arg("--root")
        .arg(work.path("assemble-root"))
        .args(["--progress", "plain", "assemble"]);
    let mut raw = 0usize;
    for i in 0..RANDOM_LAYERS {
        let dir = trees.join(format!("data{i}"));
        raw += random_tree(&mut rng, &dir)?;
        cmd.arg("--layer")
            .arg(format!("{}:/data{i}", dir.display()));
    }
    let dir = trees.join("text");
    raw += text_tree(&mut rng, &dir)?;
    cmd.arg("--layer").arg(format!("{}:/text", dir.display()));
    cmd.args(["--entrypoint", "/bin/true", "-t"])
        .arg(format!("{REPO}:{TAG}"))
        .arg("--output")
        .arg(format!("oci:{}:{TAG}", layout.display()));
    let gen_secs = t0.elapsed().as_secs_f64();
    let (asm_secs, _) = time_cmd(&mut cmd, "ocibuild assemble")?;
    let _ = fs::remove_dir_all(&trees);
    let _ = fs::remove_dir_all(work.path("assemble-root"));
    println!(
        "generated {:.1} MB of trees in {gen_secs:.1}s, assembled oci:{}:{TAG} in {asm_secs:.1}s",
        raw as f64 / 1e6,
        layout.display()
    );
    read_image(layout)
}

/// Incompressible files (one large, the rest 0.5–4 MB) adding up to `RANDOM_LAYER_BYTES`.
fn random_tree(rng: &mut Rng, dir: &Path) -> Res<usize> {
    fs::create_dir_all(dir)?;
    let mut left = RANDOM_LAYER_BYTES;
    let mut i = 0;
    while left > 0 {
        let size = if i == 0 {
            left / 2
        } else {
            (500_000 + rng.below(3_500_000)).min(left)
        };
        let mut buf = Vec::with_capacity(size + 8);
        while buf.len() < size {
            buf.extend_from_slice(&rng.next().to_le_bytes());
        }
        buf.truncate(size);
        fs::write(dir.join(format!("blob-{i:03}.bin")), &buf)?;
        left -= size;
        i += 1;
    }
    Ok(RANDOM_LAYER_BYTES)
}

const WORDS: &[&str] = &[
    "the", "a", "to", "of", "and", "is", "in", "that", "it", "for", "with", "as", "be", "on",
    "not", "or", "by", "from", "an", "can", "will", "use", "if", "when", "returns", "value",
    "function", "object", "string", "array", "option", "default", "install", "module", "package",
    "usage", "example", "license", "support", "version", "error", "request", "response", "server",
    "client", "registry", "layer", "image", "config", "digest", "manifest", "blob", "upload",
];

/// Log- and doc-like text files (a few KB to 2 MB) adding up to `TEXT_LAYER_BYTES`.
fn text_tree(rng: &mut Rng, dir: &Path) -> Res<usize> {
    let mut total = 0;
    let mut i = 0;
    while total < TEXT_LAYER_BYTES {
        let target = (2_000 + rng.below(2_000_000)).min(TEXT_LAYER_BYTES - total);
        let mut s = String::with_capacity(target + 200);
        while s.len() < target {
            let _ = write!(
                s,
                "{:06} [{:>5}] ",
                rng.below(1_000_000),
                ["INFO", "DEBUG", "WARN", "ERROR"][rng.below(4)]
            );
            for _ in 0..4 + rng.below(14) {
                s.push_str(WORDS[rng.below(WORDS.len())]);
                s.push(' ');
            }
            let _ = writeln!(s, "id={:x}", rng.next() >> 40);
        }
        let sub = dir.join(format!("d{}", i % 7));
        fs::create_dir_all(&sub)?;
        let mut f = fs::File::create(sub.join(format!("file-{i:04}.log")))?;
        f.write_all(s.as_bytes())?;
        total += s.len();
        i += 1;
    }
    Ok(total)
}

// -------------------------------------------------------------------------------------------
// Helpers
