//! `build-bench`: zero-config Go builds, `ocibuild build APP` against `buildah build` of the
//! equivalent two-stage Dockerfile, measured in the same run on the same app
//! (`testdata/apps/go-hello`, a stdlib-only Go module, copied to a temp dir):
//!
//! - cold: ocibuild with a fresh, empty `--root` (no toolchain root, no runtime base, no GOCACHE);
//!   buildah with fresh, empty containers-storage (no layer cache);
//! - no change: the same build again on the same store (buildah with `--layers`);
//! - one edit: a string in `main.go` changed, built again on the same store.
//!
//! Both tools start from the same bits: ocibuild assembles its Go toolchain root and the
//! `static:nonroot` runtime from Debian packages; buildah's Dockerfile starts `FROM
//! oci-archive:` of the very same images, made untimed beforehand with `ocibuild base build
//! --profile build-base --packages golang-go` (the root a module without requirements gets: no
//! git) and `--profile static:nonroot` (instead of a debootstrap root: the same toolchain makes a
//! fairer comparison). The Debian package cache (`--cache-dir`) is shared by
//! every ocibuild build and warmed first by one untimed build: downloading `.deb`s is network
//! time, not build time. ocibuild still checks the release indexes (InRelease) online on every
//! build unless `--offline` is given.
//!
//! buildah runs as root with a private store (its own `storage.conf` and `containers.conf` under
//! the temp dir: overlay driver, runc, cgroupfs, file events, ulimits within the hard limits),
//! `--isolation oci --network none`. Prints machine info, medians, ratios and whether the
//! targets are met (cold ≤ 0.8× buildah, no change ≤ 0.25×, one edit ≤ 0.8×), and the final
//! image sizes. It asserts nothing about time.
//!
//! Usage: `cargo build --release -p ocibuild -p ocibuild-benches &&
//! target/release/build-bench [--runs N] [--app DIR] [--cache-dir DIR] [--offline]
//! [--storage-driver overlay|vfs] [--keep] [--frontend zeroconfig|dockerfile]` (`OCIBUILD_BIN` names another ocibuild binary).

#[path = "common.rs"]
mod common;
use common::{have, machine_info, median};
use std::error::Error;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use ocibuild_oci::extract::decompress;
use ocibuild_oci::media::layer_compression;
use ocibuild_testkit::TestContext;
use serde_json::Value;

type Res<T> = Result<T, Box<dyn Error>>;

const COLD_TARGET: f64 = 0.8;
const NO_CHANGE_TARGET: f64 = 0.25;
const EDIT_TARGET: f64 = 0.8;
/// The tag of every image written to a layout.
const TAG: &str = "app";
/// The name buildah tags its result with, in its private store.
const BUILDAH_IMAGE: &str = "localhost/build-bench-hello:latest";
/// The string the one-file edit changes in `main.go`.
const GREETING: &str = "\"hello from go\"";

struct Args {
    runs: usize,
    app: PathBuf,
    cache_dir: Option<PathBuf>,
    offline: bool,
    driver: String,
    keep: bool,
    /// `dockerfile`: ocibuild builds buildah's very Dockerfile (`build -f`), and the
    /// 20,000-file RUN snapshot is timed too; `zeroconfig` (default): `ocibuild build APP`.
    frontend: String,
    /// `OCIBUILD_UNPACKED_CACHE=0` for every ocibuild build: each cold build unpacks its .debs.
    no_unpacked_cache: bool,
}

fn parse_args() -> Res<Args> {
    let mut a = Args {
        runs: 3,
        app: Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/apps/go-hello"),
        cache_dir: None,
        offline: false,
        driver: "overlay".into(),
        keep: false,
        frontend: "zeroconfig".into(),
        no_unpacked_cache: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--runs" => a.runs = value("--runs")?.parse()?,
            "--app" => a.app = PathBuf::from(value("--app")?),
            "--cache-dir" => a.cache_dir = Some(PathBuf::from(value("--cache-dir")?)),
            "--offline" => a.offline = true,
            "--storage-driver" => a.driver = value("--storage-driver")?,
            "--keep" => a.keep = true,
            "--frontend" => a.frontend = value("--frontend")?,
            "--no-unpacked-cache" => a.no_unpacked_cache = true,
            "-h" | "--help" => {
                println!(
                    "build-bench [--runs N (default 3)] [--app DIR] [--cache-dir DIR] [--offline]\n\
                     \x20           [--storage-driver overlay|vfs] [--keep]\n\
                     Compares `ocibuild build APP` (zero-config Go) with `buildah build` of the\n\
                     equivalent two-stage Dockerfile: cold, no-change rebuild, one-file edit.\n\
                     --app DIR: the Go app (default testdata/apps/go-hello).\n\
                     --cache-dir DIR: the Debian package cache shared by the ocibuild builds\n\
                     \x20 (default: one in the work dir; warmed by an untimed build either way).\n\
                     --offline: timed ocibuild builds use the cache only (no InRelease check).\n\
                     --storage-driver: buildah's driver (default overlay). --keep: keep the work dir.\n\
                     --frontend dockerfile: ocibuild builds the same Dockerfile as buildah (build -f),\n\
                     \x20 and a RUN writing 20,000 small files is timed for both (snapshot cost).\n\
                     --no-unpacked-cache: every ocibuild build unpacks its .debs (the unpacked-package\n\
                     \x20 cache beside the package cache is warmed by the warm-up build otherwise).\n\
                     Needs buildah and runc (apt-get install -y buildah runc) and the release\n\
                     binary next to this one (cargo build --release -p ocibuild) or OCIBUILD_BIN."
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}` (try --help)").into()),
        }
    }
    if a.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    a.app = fs::canonicalize(&a.app).map_err(|e| format!("--app {}: {e}", a.app.display()))?;
    if a.frontend != "zeroconfig" && a.frontend != "dockerfile" {
        return Err(format!(
            "--frontend must be zeroconfig or dockerfile, not `{}`",
            a.frontend
        )
        .into());
    }
    if a.driver != "overlay" && a.driver != "vfs" {
        return Err(format!(
            "--storage-driver must be overlay or vfs, not `{}`",
            a.driver
        )
        .into());
    }
    Ok(a)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("build-bench: {e}");
        std::process::exit(1);
    }
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

fn run() -> Res<()> {
    let args = parse_args()?;
    let ocibuild = ocibuild_binary()?;
    let missing: Vec<&str> = ["buildah", "runc"]
        .into_iter()
        .filter(|t| !have(t))
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "build-bench: missing peer tools: {} (install the Debian packages: apt-get install -y {})",
            missing.join(", "),
            missing.join(" ")
        );
        std::process::exit(2);
    }
    if !args.app.join("go.mod").is_file() || !args.app.join("main.go").is_file() {
        return Err(format!(
            "{} is not a Go app with go.mod and main.go at its root",
            args.app.display()
        )
        .into());
    }

    let ctx = TestContext::new();
    let result = bench(&args, &ocibuild, &ctx);
    if args.keep {
        println!("kept {}", ctx.dir().display());
        std::mem::forget(ctx);
    }
    result
}

/// The tool being measured.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tool {
    Ocibuild,
    Buildah,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Ocibuild => "ocibuild",
            Tool::Buildah => "buildah",
        }
    }
}

const SCENARIOS: [&str; 3] = ["cold", "no change", "one edit"];

/// The three wall times of one run of one tool, and the image ids it produced.
struct RunResult {
    secs: [f64; 3],
    ids: [String; 3],
}

struct Bench<'a> {
    args: &'a Args,
    /// The private copy of the ocibuild binary (a concurrent `cargo build` cannot swap it).
    ocibuild: PathBuf,
    work: &'a TestContext,
    cache_dir: PathBuf,
    dockerfile: PathBuf,
    containers_conf: PathBuf,
}

fn bench(args: &Args, ocibuild_src: &Path, work: &TestContext) -> Res<()> {
    let ocibuild = work.path("bin/ocibuild");
    fs::copy(ocibuild_src, &ocibuild)
        .map_err(|e| format!("copying {}: {e}", ocibuild_src.display()))?;
    println!(
        "{}",
        machine_info(&[
            (&ocibuild.to_string_lossy(), "--version"),
            ("buildah", "--version"),
            ("runc", "--version")
        ])
    );
    println!(
        "ocibuild binary: {} (copied into the work dir) | app: {}",
        ocibuild_src.display(),
        args.app.display()
    );
    let cache_dir = match &args.cache_dir {
        Some(d) => {
            fs::create_dir_all(d)?;
            d.clone()
        }
        None => work.tmp_dir("debian-cache"),
    };
    let b = Bench {
        args,
        ocibuild,
        work,
        cache_dir,
        dockerfile: work.path("Dockerfile"),
        containers_conf: work.path("containers.conf"),
    };
    b.prepare()?;

    let mut times: [[Vec<f64>; 3]; 2] = Default::default();
    let mut notes: Vec<String> = Vec::new();
    let mut sizes: [Option<Layout>; 2] = [None, None];
    for round in 1..=args.runs {
        let mut order = [Tool::Ocibuild, Tool::Buildah];
        if round % 2 == 0 {
            order.reverse();
        }
        eprint!("run {round}/{}:", args.runs);
        for tool in order {
            let last = round == args.runs;
            let (r, layout) = match tool {
                Tool::Ocibuild => b.run_ocibuild(round, last)?,
                Tool::Buildah => b.run_buildah(round, last)?,
            };
            let t = tool as usize;
            for (i, s) in r.secs.iter().enumerate() {
                times[t][i].push(*s);
            }
            check_ids(tool, &r.ids, &mut notes);
            if let Some(l) = layout {
                sizes[t] = Some(l);
            }
            eprint!(
                " {} {:.1}/{:.1}/{:.1}s",
                tool.name(),
                r.secs[0],
                r.secs[1],
                r.secs[2]
            );
        }
        eprintln!();
    }
    b.report(&mut times, &sizes, &notes);
    b.remote_cache_bench(median(&mut times[0][0]))?;
    if args.frontend == "dockerfile" {
        b.snapshot_bench()?;
    }
    Ok(())
}

/// Cold and no-change give the same image; the edit gives another.
fn check_ids(tool: Tool, ids: &[String; 3], notes: &mut Vec<String>) {
    let mut add = |m: String| {
        if !notes.contains(&m) {
            notes.push(m);
        }
    };
    if ids[0] != ids[1] {
        add(format!(
            "{}: the no-change rebuild gave image {} after {} (not the same)",
            tool.name(),
            ids[1],
            ids[0]
        ));
    }
    if ids[2] == ids[1] {
        add(format!(
            "{}: the one-edit rebuild gave the unchanged image {}",
            tool.name(),
            ids[2]
        ));
    }
}

impl Bench<'_> {
    /// A fresh, not yet existing path in the work dir.
    fn fresh(&self, what: &str) -> PathBuf {
        self.work.path(format!("{what}-{}", next_id()))
    }

    /// Untimed: warm the package cache with one build, make the two base archives for buildah,
    /// write the Dockerfile and buildah's containers.conf.
    fn prepare(&self) -> Res<()> {
        let root = self.fresh("warm-root");
        let app = self.copy_app()?;
        let out = self.fresh("warm-out");
        let mut cmd = self.ocibuild_build(&root, &app, &out, false);
        let secs = time_cmd(&mut cmd, "ocibuild build (warm-up)")?;
        println!(
            "warm-up (untimed): ocibuild build with a fresh --root and --cache-dir {} took {secs:.1}s \
             (.deb downloads, network time, happen here when the cache is empty)",
            self.cache_dir.display()
        );
        let mut bases = Vec::new();
        // The Go root the zero-config build locks for a module without requirements:
        // build-base + golang-go (no git, see zeroconfig::toolchain_request).
        for (profile, packages, file) in [
            ("build-base", "golang-go", "go-root.tar"),
            ("static:nonroot", "", "static-nonroot.tar"),
        ] {
            let path = self.work.path(file);
            let mut cmd = Command::new(&self.ocibuild);
            cmd.arg("--root").arg(&root).args([
                "--progress",
                "plain",
                "base",
                "build",
                "--profile",
                profile,
            ]);
            if !packages.is_empty() {
                cmd.args(["--packages", packages]);
            }
            cmd.arg("--cache-dir")
                .arg(&self.cache_dir)
                .arg("--output")
                .arg(format!("oci-archive:{}", path.display()));
            let t0 = Instant::now();
            let out = output_cmd(
                &mut cmd,
                &format!("ocibuild base build --profile {profile}"),
            )?;
            let secs = t0.elapsed().as_secs_f64();
            let digest = String::from_utf8_lossy(&out.stdout)
                .lines()
                .find(|l| l.starts_with("sha256:"))
                .unwrap_or("?")
                .to_string();
            let mb = fs::metadata(&path)?.len() as f64 / 1e6;
            let what = if packages.is_empty() {
                profile.to_string()
            } else {
                format!("{profile}+{packages}")
            };
            bases.push(format!("{what} {digest} ({mb:.1} MB, {secs:.1}s)"));
        }
        remove_tree(&root);
        remove_tree(&out);
        remove_tree(&app);
        println!(
            "buildah bases (untimed, `ocibuild base build … --output oci-archive:`, the same images \
             ocibuild builds on; used instead of a debootstrap root for fairness): {}",
            bases.join(", ")
        );

        let dockerfile = format!(
            "FROM oci-archive:{go}\n\
             COPY . /src\n\
             RUN cd /src && CGO_ENABLED=0 go build -trimpath -ldflags \"-s -w\" -o /out/hello .\n\
             FROM oci-archive:{st}\n\
             COPY --from=0 /out/hello /app/hello\n\
             USER 65532\n\
             ENTRYPOINT [\"/app/hello\"]\n",
            go = self.work.path("go-root.tar").display(),
            st = self.work.path("static-nonroot.tar").display(),
        );
        fs::write(&self.dockerfile, dockerfile)?;

        // ulimits within the hard limits (the defaults, nofile=1048576, fail without
        // CAP_SYS_RESOURCE); runc, because crun refuses hybrid cgroups
        let nofile = hard_limit("Max open files").unwrap_or(1024).min(1_048_576);
        let nproc = hard_limit("Max processes").unwrap_or(4096).min(32_768);
        let tmp = self.work.tmp_dir("buildah-tmp");
        fs::write(
            &self.containers_conf,
            format!(
                "[containers]\n\
                 default_ulimits = [\"nofile={nofile}:{nofile}\", \"nproc={nproc}:{nproc}\"]\n\
                 log_driver = \"k8s-file\"\n\n\
                 [engine]\n\
                 runtime = \"runc\"\n\
                 cgroup_manager = \"cgroupfs\"\n\
                 events_logger = \"file\"\n\
                 tmp_dir = \"{}\"\n",
                tmp.display()
            ),
        )?;
        Ok(())
    }

    /// A fresh copy of the app.
    fn copy_app(&self) -> Res<PathBuf> {
        let dest = self.fresh("app");
        copy_tree(&self.args.app, &dest)?;
        Ok(dest)
    }

    fn ocibuild_build(&self, root: &Path, app: &Path, out: &Path, offline: bool) -> Command {
        let mut c = Command::new(&self.ocibuild);
        if self.args.no_unpacked_cache {
            c.env("OCIBUILD_UNPACKED_CACHE", "0");
        }
        c.arg("--root")
            .arg(root)
            .args(["--progress", "plain", "build"])
            .arg(app)
            .arg("--cache-dir")
            .arg(&self.cache_dir);
        if self.args.frontend == "dockerfile" && self.dockerfile.is_file() {
            c.arg("-f")
                .arg(&self.dockerfile)
                .args(["--network", "none"]);
        }
        if offline {
            c.arg("--offline");
        }
        c.arg("--output")
            .arg(format!("oci:{}:{TAG}", out.display()))
            .arg("--iidfile")
            .arg(out.with_extension("iid"));
        c
    }

    fn run_ocibuild(&self, round: usize, last: bool) -> Res<(RunResult, Option<Layout>)> {
        let root = self.fresh("ocibuild-root");
        let app = self.copy_app()?;
        let out = self.fresh("ocibuild-out");
        let mut secs = [0.0; 3];
        let mut ids: [String; 3] = Default::default();
        for (i, scenario) in SCENARIOS.iter().enumerate() {
            if i == 2 {
                edit_app(&app, round)?;
            }
            let mut cmd = self.ocibuild_build(&root, &app, &out, self.args.offline);
            secs[i] = time_cmd(&mut cmd, &format!("ocibuild build ({scenario})"))?;
            ids[i] = fs::read_to_string(out.with_extension("iid"))?
                .trim()
                .to_string();
        }
        let layout = if last { Some(read_layout(&out)?) } else { None };
        remove_tree(&root);
        remove_tree(&app);
        remove_tree(&out);
        Ok((RunResult { secs, ids }, layout))
    }

    fn run_buildah(&self, round: usize, last: bool) -> Res<(RunResult, Option<Layout>)> {
        let store = BuildahStore::new(self.fresh("buildah-store"), &self.args.driver, self)?;
        let app = self.copy_app()?;
        let iid = self.fresh("buildah.iid");
        let mut secs = [0.0; 3];
        let mut ids: [String; 3] = Default::default();
        for (i, scenario) in SCENARIOS.iter().enumerate() {
            if i == 2 {
                edit_app(&app, round)?;
            }
            let mut cmd = store.cmd();
            cmd.args([
                "build",
                "--layers",
                "--isolation",
                "oci",
                "--network",
                "none",
                "-t",
                BUILDAH_IMAGE,
            ])
            .arg("-f")
            .arg(&self.dockerfile)
            .arg("--iidfile")
            .arg(&iid)
            .arg(&app);
            secs[i] = time_cmd(&mut cmd, &format!("buildah build ({scenario})"))?;
            ids[i] = fs::read_to_string(&iid)?.trim().to_string();
        }
        let layout = if last {
            // untimed: export to a layout (buildah compresses with gzip) to measure it
            let out = self.fresh("buildah-out");
            let mut cmd = store.cmd();
            cmd.args(["push", "--quiet", BUILDAH_IMAGE])
                .arg(format!("oci:{}:{TAG}", out.display()));
            output_cmd(&mut cmd, "buildah push (export for the sizes)")?;
            let l = read_layout(&out)?;
            remove_tree(&out);
            Some(l)
        } else {
            None
        };
        drop(store);
        remove_tree(&app);
        Ok((RunResult { secs, ids }, layout))
    }

    /// A cold runner (empty store) with a warm shared cache (`--cache-from type=local`, the
    /// same code path as azblob/registry: records and verified blobs) against the cold build.
    fn remote_cache_bench(&self, cold: f64) -> Res<()> {
        let shared = self.fresh("shared-cache");
        let mut secs = Vec::new();
        for round in 0..self.args.runs {
            let app = self.copy_app()?;
            if round == 0 {
                let root = self.fresh("export-root");
                let out = self.fresh("export-out");
                let mut c = self.ocibuild_build(&root, &app, &out, self.args.offline);
                c.arg("--cache-to")
                    .arg(format!("type=local,dest={},mode=max", shared.display()));
                time_cmd(&mut c, "ocibuild build --cache-to (untimed export)")?;
                remove_tree(&root);
                remove_tree(&out);
            }
            let root = self.fresh("import-root");
            let out = self.fresh("import-out");
            let mut c = self.ocibuild_build(&root, &app, &out, self.args.offline);
            c.arg("--cache-from")
                .arg(format!("type=local,src={}", shared.display()));
            secs.push(time_cmd(
                &mut c,
                "ocibuild build --cache-from (cold runner)",
            )?);
            remove_tree(&root);
            remove_tree(&out);
            remove_tree(&app);
        }
        let m = median(&mut secs);
        println!(
            "\ncold runner with a warm shared cache (--cache-from type=local, empty store), median of {}: {m:.2} s vs {cold:.2} s cold without it: {:.2}x",
            self.args.runs,
            m / cold
        );
        if self.args.frontend != "dockerfile" {
            // zero-config: an edited app misses the whole-build record, but GOCACHE and
            // GOMODCACHE come from the shared cache (keyed by go.mod/go.sum), so the compile
            // is incremental even on an empty store
            let mut secs = Vec::new();
            for round in 0..self.args.runs {
                let app = self.copy_app()?;
                edit_app(&app, round + 100)?;
                let root = self.fresh("import-edit-root");
                let out = self.fresh("import-edit-out");
                let mut c = self.ocibuild_build(&root, &app, &out, self.args.offline);
                c.arg("--cache-from")
                    .arg(format!("type=local,src={}", shared.display()));
                secs.push(time_cmd(
                    &mut c,
                    "ocibuild build --cache-from (cold runner, edited app)",
                )?);
                remove_tree(&root);
                remove_tree(&out);
                remove_tree(&app);
            }
            let e = median(&mut secs);
            println!(
                "cold runner, one file edited, warm shared cache mounts (GOCACHE imported), median of {}: {e:.2} s vs {cold:.2} s cold without it: {:.2}x",
                self.args.runs,
                e / cold
            );
        }
        Ok(())
    }

    /// A RUN that writes 20,000 small files, on a store where the base is already imported and
    /// unpacked (an untimed `RUN true` build first): the time to run and snapshot it.
    fn snapshot_bench(&self) -> Res<()> {
        let go = self.work.path("go-root.tar");
        let warm = self.work.path("Dockerfile.warm");
        let many = self.work.path("Dockerfile.many");
        fs::write(
            &warm,
            format!("FROM oci-archive:{}\nRUN true\n", go.display()),
        )?;
        fs::write(
            &many,
            format!(
                "FROM oci-archive:{}\nRUN mkdir /many && cd /many && i=0 && \\\n    while [ $i -lt 20000 ]; do echo $i > f$i; i=$((i+1)); done\n",
                go.display()
            ),
        )?;
        let ctx = self.work.tmp_dir("snapshot-ctx");
        let mut res = Vec::new();
        for round in 0..self.args.runs {
            // ocibuild
            let root = self.fresh("snap-root");
            let out = self.fresh("snap-out");
            for (df, timed) in [(&warm, false), (&many, true)] {
                let mut c = Command::new(&self.ocibuild);
                c.arg("--root")
                    .arg(&root)
                    .args(["--progress", "plain", "build", "--network", "none", "-f"])
                    .arg(df)
                    .arg(&ctx)
                    .arg("--output")
                    .arg(format!("oci:{}:{TAG}", out.display()));
                let s = time_cmd(&mut c, "ocibuild build (20,000 files)")?;
                if timed {
                    res.push((round, "ocibuild", s));
                }
            }
            remove_tree(&root);
            remove_tree(&out);
            // buildah
            let store = BuildahStore::new(self.fresh("snap-buildah"), &self.args.driver, self)?;
            for (df, timed) in [(&warm, false), (&many, true)] {
                let mut c = store.cmd();
                c.args([
                    "build",
                    "--layers",
                    "--isolation",
                    "oci",
                    "--network",
                    "none",
                    "-t",
                    BUILDAH_IMAGE,
                    "-f",
                ])
                .arg(df)
                .arg(&ctx);
                let s = time_cmd(&mut c, "buildah build (20,000 files)")?;
                if timed {
                    res.push((round, "buildah", s));
                }
            }
            drop(store);
        }
        let mut o: Vec<f64> = res
            .iter()
            .filter(|r| r.1 == "ocibuild")
            .map(|r| r.2)
            .collect();
        let mut b: Vec<f64> = res
            .iter()
            .filter(|r| r.1 == "buildah")
            .map(|r| r.2)
            .collect();
        let (mo, mb) = (median(&mut o), median(&mut b));
        println!(
            "\nRUN writing 20,000 small files (run + snapshot into a layer; base already unpacked), median of {}: ocibuild {mo:.2} s, buildah {mb:.2} s, ratio {:.2}x",
            self.args.runs,
            mo / mb
        );
        Ok(())
    }

    fn report(
        &self,
        times: &mut [[Vec<f64>; 3]; 2],
        sizes: &[Option<Layout>; 2],
        notes: &[String],
    ) {
        println!(
            "\n{} runs (median), tools alternating first | ocibuild: fresh --root per run, shared \
             pre-warmed package cache{} | buildah: fresh {} store per run, --layers, --isolation \
             oci (runc), --network none\n",
            self.args.runs,
            if self.args.offline {
                ", --offline"
            } else {
                " (InRelease checked online)"
            },
            self.args.driver
        );
        println!(
            "| {:<9} | {:>10} | {:>10} | {:>8} | {:>8} | {:<7} |",
            "scenario", "ocibuild s", "buildah s", "ratio", "target", "result"
        );
        println!(
            "|{:-<11}|{:->12}|{:->12}|{:->10}|{:->10}|{:-<9}|",
            "", "", "", "", "", ""
        );
        let targets = [COLD_TARGET, NO_CHANGE_TARGET, EDIT_TARGET];
        let mut runs_lines = Vec::new();
        for (i, scenario) in SCENARIOS.iter().enumerate() {
            let mut meds = [0.0; 2];
            for (t, tool) in [Tool::Ocibuild, Tool::Buildah].into_iter().enumerate() {
                let v = &mut times[t][i];
                let mut runs = String::new();
                for s in v.iter() {
                    let _ = write!(runs, "{s:.2} ");
                }
                runs_lines.push(format!(
                    "  {:<9} {:<8} {}",
                    scenario,
                    tool.name(),
                    runs.trim_end()
                ));
                meds[t] = median(v);
            }
            let ratio = meds[0] / meds[1];
            let target = targets[i];
            println!(
                "| {:<9} | {:>10.2} | {:>10.2} | {:>7.2}x | {:>8} | {:<7} |",
                scenario,
                meds[0],
                meds[1],
                ratio,
                format!("<= {target}x"),
                if ratio <= target { "MET" } else { "NOT MET" }
            );
        }
        println!("\nruns (s):");
        for l in runs_lines {
            println!("{l}");
        }

        println!("\nfinal images (after the edit, last run):");
        println!(
            "| {:<8} | {:>6} | {:>14} | {:>16} | {:<44} |",
            "tool", "layers", "compressed MB", "uncompressed MB", "config"
        );
        println!(
            "|{:-<10}|{:->8}|{:->16}|{:->18}|{:-<46}|",
            "", "", "", "", ""
        );
        for (t, tool) in [Tool::Ocibuild, Tool::Buildah].into_iter().enumerate() {
            match &sizes[t] {
                Some(l) => println!(
                    "| {:<8} | {:>6} | {:>14.3} | {:>16.3} | {:<44} |",
                    tool.name(),
                    l.layers,
                    l.compressed as f64 / 1e6,
                    l.uncompressed as f64 / 1e6,
                    l.summary
                ),
                None => println!("| {:<8} | (not measured) |", tool.name()),
            }
        }
        if self.args.frontend == "dockerfile" {
            println!(
                "\nnotes: --frontend dockerfile: both tools build the same Dockerfile (FROM oci-archive: \
                 of the same two bases, no cache mounts, --network none); cold = empty store, so both \
                 import and unpack the same Go root. The edit changes the greeting string in main.go."
            );
        } else {
            println!(
                "\nnotes: cold = empty store; the .deb downloads were done by the untimed warm-up \
             (network time, not build time); the unpacked-package cache beside the package cache \
             was {} by it too. ocibuild's cold build assembles its Go toolchain \
             root and runtime base from the cached .debs; buildah's imports the same images from \
             ready-made oci-archives (made untimed), so buildah's cold time does not include \
             making its bases. ocibuild keeps GOCACHE in its store across rebuilds; the \
             Dockerfile has no cache mount. The edit changes the greeting string in main.go.",
                if self.args.no_unpacked_cache {
                    "not used (--no-unpacked-cache)"
                } else {
                    "filled"
                }
            );
        }
        if notes.is_empty() {
            println!(
                "checks: for both tools the no-change rebuild gave the cold image and the edit a new one"
            );
        } else {
            println!("checks FAILED:");
            for n in notes {
                println!("  {n}");
            }
        }
    }
}

fn next_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Change the greeting (so the binary and both images change), or, in an app without it,
/// append a comment line to main.go.
fn edit_app(app: &Path, round: usize) -> Res<()> {
    let main = app.join("main.go");
    let src = fs::read_to_string(&main)?;
    let edited = if src.contains(GREETING) {
        src.replacen(GREETING, &format!("\"hello from go (edit {round})\""), 1)
    } else {
        format!("{src}\n// build-bench edit {round}\n")
    };
    fs::write(&main, edited)?;
    Ok(())
}

/// The hard limit named `what` in /proc/self/limits (`unlimited` → u64::MAX).
fn hard_limit(what: &str) -> Option<u64> {
    let limits = fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with(what))?;
    let hard = line[what.len()..].split_whitespace().nth(1)?;
    if hard == "unlimited" {
        Some(u64::MAX)
    } else {
        hard.parse().ok()
    }
}

// -------------------------------------------------------------------------------------------
// buildah's private store

/// A fresh containers-storage for buildah (graph, run, tmp and its own storage.conf under
/// `dir`), emptied and removed on drop: containers, images, then any mount left under it.
struct BuildahStore {
    dir: PathBuf,
    storage_conf: PathBuf,
    containers_conf: PathBuf,
}

impl BuildahStore {
    fn new(dir: PathBuf, driver: &str, b: &Bench) -> Res<Self> {
        for sub in ["graph", "run", "tmp"] {
            fs::create_dir_all(dir.join(sub))?;
        }
        let storage_conf = dir.join("storage.conf");
        fs::write(
            &storage_conf,
            format!(
                "[storage]\ndriver = \"{driver}\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
                dir.join("graph").display(),
                dir.join("run").display()
            ),
        )?;
        Ok(BuildahStore {
            storage_conf,
            containers_conf: b.containers_conf.clone(),
            dir,
        })
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("buildah");
        c.env("CONTAINERS_STORAGE_CONF", &self.storage_conf)
            .env("CONTAINERS_CONF", &self.containers_conf)
            .env("BUILDAH_RUNTIME", "runc")
            .env("TMPDIR", self.dir.join("tmp"));
        c
    }
}

impl Drop for BuildahStore {
    fn drop(&mut self) {
        for args in [&["rm", "-a"][..], &["rmi", "-a", "-f"][..]] {
            let _ = self
                .cmd()
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let prefix = format!("{}/", self.dir.display());
        let mut mounts: Vec<String> = fs::read_to_string("/proc/mounts")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|m| m.starts_with(&prefix))
            .map(str::to_string)
            .collect();
        mounts.sort();
        for m in mounts.iter().rev() {
            let _ = Command::new("umount")
                .arg(m)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        remove_tree(&self.dir);
    }
}

// -------------------------------------------------------------------------------------------
// Images

/// What an image in a layout weighs.
struct Layout {
    layers: usize,
    compressed: u64,
    uncompressed: u64,
    /// Entrypoint and user from the config.
    summary: String,
}

fn blob_path(layout: &Path, digest: &str) -> Res<PathBuf> {
    let (alg, hex) = digest
        .split_once(':')
        .ok_or_else(|| format!("not a digest: {digest:?}"))?;
    Ok(layout.join("blobs").join(alg).join(hex))
}

/// The image tagged `TAG` in a layout: layer count, compressed and uncompressed layer bytes.
fn read_layout(layout: &Path) -> Res<Layout> {
    let index_path = layout.join("index.json");
    let index: Value = serde_json::from_slice(&fs::read(&index_path)?)?;
    let digest = index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str() == Some(TAG))
        .and_then(|m| m["digest"].as_str())
        .ok_or_else(|| format!("{} names no manifest `{TAG}`", index_path.display()))?;
    let manifest: Value = serde_json::from_slice(&fs::read(blob_path(layout, digest)?)?)?;
    let mut l = Layout {
        layers: 0,
        compressed: 0,
        uncompressed: 0,
        summary: String::new(),
    };
    for layer in manifest["layers"].as_array().into_iter().flatten() {
        let d = layer["digest"].as_str().unwrap_or_default();
        let media = layer["mediaType"].as_str().unwrap_or_default();
        let c = layer_compression(media)
            .ok_or_else(|| format!("layer {d} has media type `{media}`, not a layer type"))?;
        let file = fs::File::open(blob_path(layout, d)?)?;
        l.compressed += file.metadata()?.len();
        let mut reader = decompress(file, c)?;
        l.uncompressed += io::copy(&mut reader, &mut io::sink())?;
        l.layers += 1;
    }
    let config_digest = manifest["config"]["digest"].as_str().unwrap_or_default();
    let config: Value = serde_json::from_slice(&fs::read(blob_path(layout, config_digest)?)?)?;
    l.summary = format!(
        "entrypoint {} user {}",
        config["config"]["Entrypoint"],
        config["config"]["User"].as_str().unwrap_or("-")
    );
    Ok(l)
}

// -------------------------------------------------------------------------------------------
// Helpers

fn copy_tree(src: &Path, dest: &Path) -> Res<()> {
    fs::create_dir_all(dest)?;
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let ty = entry.file_type()?;
        let to = dest.join(entry.file_name());
        if ty.is_dir() {
            copy_tree(&entry.path(), &to)?;
        } else if ty.is_file() {
            fs::copy(entry.path(), &to)?;
        } else if ty.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(entry.path())?, &to)?;
        }
    }
    Ok(())
}

/// Best-effort `rm -rf` (the work dir's own removal retries whatever is left).
fn remove_tree(p: &Path) {
    let _ = fs::remove_dir_all(p);
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Run `cmd` to success (output captured, shown only on failure).
fn output_cmd(cmd: &mut Command, what: &str) -> Res<std::process::Output> {
    cmd.stdin(Stdio::null());
    let out = cmd.output()?;
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
    Ok(out)
}

/// Run `cmd` to success and return its wall time. With `BUILD_BENCH_LOGS=DIR`, its stderr
/// (ocibuild's progress: which phase took the time) and the load before and after go to a
/// numbered file in DIR, to explain a slow run.
fn time_cmd(cmd: &mut Command, what: &str) -> Res<f64> {
    let load = || fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let Some(dir) = std::env::var_os("BUILD_BENCH_LOGS") else {
        let t0 = Instant::now();
        output_cmd(cmd, what)?;
        return Ok(t0.elapsed().as_secs_f64());
    };
    let before = load();
    let t0 = Instant::now();
    // stderr read as it comes, each line stamped with the time since the start
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let mut stamped = String::new();
    if let Some(err) = child.stderr.take() {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(err).lines() {
            let line = line?;
            stamped.push_str(&format!("{:8.2} {line}\n", t0.elapsed().as_secs_f64()));
        }
    }
    let status = child.wait()?;
    let secs = t0.elapsed().as_secs_f64();
    if !status.success() {
        return Err(format!("{what} failed ({status}): `{}`\n{stamped}", describe(cmd)).into());
    }
    let out = std::process::Output {
        status,
        stdout: Vec::new(),
        stderr: stamped.into_bytes(),
    };
    {
        let dir = PathBuf::from(dir);
        fs::create_dir_all(&dir)?;
        let name: String = what
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let file = dir.join(format!("{:03}-{name}.log", next_id()));
        fs::write(
            &file,
            format!(
                "{what}: {secs:.2} s\nload before: {before}load after: {}\n--- stderr ---\n{}",
                load(),
                String::from_utf8_lossy(&out.stderr)
            ),
        )?;
    }
    Ok(secs)
}
