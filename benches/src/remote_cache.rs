//! `remote-cache-bench`: for each language, a cold runner (fresh, empty `--root`) with a warm
//! remote cache (`--cache-from type=local`, exported by another runner with the default mode)
//! building the app with one source file edited, against the cold build of the same app without
//! the cache, measured in the same run (issue 20: target ≤ 0.3×). Apps: `go-hello`, `node-deps`,
//! `python-flask`, `java-maven` from `testdata/apps` (copied to a temp dir). A language whose
//! build fails here (no registry for its dependencies, say) is reported as not run.
//!
//! The Debian package cache (`--cache-dir`, and the unpacked-package cache beneath it) is shared
//! by every build and warmed first by one untimed build per app: downloads are network time.
//! Prints the medians, the ratio per language and whether the target is met; asserts nothing.
//! Each build's root stays until the end (see `Bench::build`): a Java run keeps about 2 GB.
//!
//! Usage: `cargo build --release -p ocibuild -p ocibuild-benches &&
//! target/release/remote-cache-bench [--runs N (default 3)] [--only go,node,python,java]
//! [--cache-dir DIR] [--keep]` (`OCIBUILD_BIN` names another ocibuild binary).

#[path = "common.rs"]
mod common;
use common::{machine_info, median};
use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

type Res<T> = Result<T, Box<dyn Error>>;

const TARGET: f64 = 0.3;

/// (language, app under testdata/apps, the file edited, its comment prefix)
const APPS: &[(&str, &str, &str, &str)] = &[
    ("go", "go-hello", "main.go", "//"),
    ("node", "node-deps", "index.js", "//"),
    ("python", "python-flask", "app.py", "#"),
    (
        "java",
        "java-maven",
        "src/main/java/com/example/App.java",
        "//",
    ),
];

struct Args {
    runs: usize,
    only: Vec<String>,
    cache_dir: Option<PathBuf>,
    keep: bool,
}

fn parse_args() -> Res<Args> {
    let mut a = Args {
        runs: 3,
        only: APPS.iter().map(|x| x.0.to_string()).collect(),
        cache_dir: None,
        keep: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--runs" => a.runs = value("--runs")?.parse()?,
            "--only" => {
                a.only = value("--only")?
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .collect();
                for l in &a.only {
                    if !APPS.iter().any(|x| x.0 == l) {
                        return Err(format!(
                            "--only: unknown language `{l}` (go, node, python, java)"
                        )
                        .into());
                    }
                }
            }
            "--cache-dir" => a.cache_dir = Some(PathBuf::from(value("--cache-dir")?)),
            "--keep" => a.keep = true,
            "-h" | "--help" => {
                println!(
                    "remote-cache-bench [--runs N (default 3)] [--only go,node,python,java] [--cache-dir DIR] [--keep]\n\
                     Per language: a cold runner with a warm --cache-from and one edited source file,\n\
                     against the cold build without the cache (target <= {TARGET}x)."
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
        eprintln!("remote-cache-bench: {e}");
        std::process::exit(1);
    }
}

/// `$OCIBUILD_BIN`, else `ocibuild` next to this benchmark's own binary.
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
            "{} is missing: run `cargo build --release -p ocibuild` first (or set OCIBUILD_BIN)",
            bin.display()
        )
        .into());
    }
    Ok(bin)
}

struct Bench {
    bin: PathBuf,
    work: PathBuf,
    cache_dir: PathBuf,
    n: std::cell::Cell<u64>,
}

impl Bench {
    fn fresh(&self, what: &str) -> PathBuf {
        let n = self.n.get();
        self.n.set(n + 1);
        self.work.join(format!("{what}-{n}"))
    }

    fn copy_app(&self, app: &str) -> Res<PathBuf> {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../testdata/apps")
            .join(app);
        let dest = self.fresh(app);
        copy_tree(&src, &dest)?;
        Ok(dest)
    }

    /// One `ocibuild build APP` on a fresh root; returns the wall time. The root and the output
    /// stay until the end of the benchmark: deleting a root's thousands of files just before
    /// the next timed build slows that build's every file creation (ext4 passes over inodes
    /// freed in the last minutes when it allocates one), which a fresh runner never sees.
    fn build(&self, app: &Path, extra: &[String]) -> Res<f64> {
        let root = self.fresh("root");
        let out = self.fresh("out");
        let mut c = Command::new(&self.bin);
        c.arg("--root")
            .arg(&root)
            .args(["--progress", "plain", "build"])
            .arg(app)
            .arg("--cache-dir")
            .arg(&self.cache_dir)
            .arg("--output")
            .arg(format!("oci:{}:app", out.display()))
            .args(extra);
        let t0 = Instant::now();
        let o = c.output()?;
        let secs = t0.elapsed().as_secs_f64();
        if !o.status.success() {
            let err = String::from_utf8_lossy(&o.stderr);
            let tail: Vec<&str> = err.lines().rev().take(6).collect();
            return Err(format!(
                "ocibuild build {} failed ({}): {}",
                app.display(),
                o.status,
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            )
            .into());
        }
        Ok(secs)
    }

    /// (cold medians, edit-on-cold-runner medians) for one app.
    fn language(
        &self,
        runs: usize,
        app: &str,
        edit: &str,
        comment: &str,
    ) -> Res<(Vec<f64>, Vec<f64>)> {
        let shared = self.fresh("shared-cache");
        // untimed: warm the package caches, and export the warm runner's cache
        let a = self.copy_app(app)?;
        self.build(
            &a,
            &[
                "--cache-to".into(),
                format!("type=local,dest={}", shared.display()),
            ],
        )?;
        let _ = fs::remove_dir_all(&a);
        let (mut cold, mut edited) = (Vec::new(), Vec::new());
        for round in 0..runs {
            let a = self.copy_app(app)?;
            cold.push(self.build(&a, &[])?);
            let _ = fs::remove_dir_all(&a);
            let a = self.copy_app(app)?;
            let f = a.join(edit);
            let text = fs::read_to_string(&f)?;
            fs::write(
                &f,
                format!("{text}\n{comment} remote-cache-bench edit {round}\n"),
            )?;
            edited.push(self.build(
                &a,
                &[
                    "--cache-from".into(),
                    format!("type=local,src={}", shared.display()),
                ],
            )?);
            let _ = fs::remove_dir_all(&a);
        }
        let _ = fs::remove_dir_all(&shared);
        Ok((cold, edited))
    }
}

fn run() -> Res<()> {
    let args = parse_args()?;
    let bin = ocibuild_binary()?;
    let work = std::env::temp_dir().join(format!("remote-cache-bench-{}", std::process::id()));
    fs::create_dir_all(&work)?;
    let cache_dir = match &args.cache_dir {
        Some(d) => d.clone(),
        None => work.join("debian-cache"),
    };
    fs::create_dir_all(&cache_dir)?;
    println!("{}", machine_info(&[(&bin.to_string_lossy(), "--version")]));
    let b = Bench {
        bin,
        work: work.clone(),
        cache_dir,
        n: std::cell::Cell::new(0),
    };
    let mut rows = Vec::new();
    for (lang, app, edit, comment) in APPS {
        if !args.only.iter().any(|l| l == lang) {
            continue;
        }
        eprintln!("{lang} ({app}) …");
        match b.language(args.runs, app, edit, comment) {
            Ok((mut cold, mut edited)) => {
                let fmt = |v: &[f64]| {
                    v.iter()
                        .map(|s| format!("{s:.2}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                let runs = format!("cold {} | edit {}", fmt(&cold), fmt(&edited));
                let (c, e) = (median(&mut cold), median(&mut edited));
                rows.push(format!(
                    "| {lang:<6} | {app:<12} | {c:>7.2} | {e:>13.2} | {:>6.2}x | {:<7} | {runs} |",
                    e / c,
                    if e / c <= TARGET { "MET" } else { "NOT MET" }
                ));
            }
            Err(err) => rows.push(format!("| {lang:<6} | {app:<12} | not run: {err} |")),
        }
    }
    println!(
        "\n{} runs (median) | cold: fresh --root, no remote cache | edit: fresh --root, --cache-from type=local (exported by a warm runner, default mode), one source file edited | package caches shared and warm\n",
        args.runs
    );
    println!(
        "| {:<6} | {:<12} | {:>7} | {:>13} | {:>7} | {:<7} | runs (s) |",
        "lang",
        "app",
        "cold s",
        "edit+cache s",
        "ratio",
        format!("<= {TARGET}")
    );
    for r in rows {
        println!("{r}");
    }
    if args.keep {
        println!("kept {}", work.display());
    } else {
        let _ = fs::remove_dir_all(&work);
    }
    Ok(())
}

fn copy_tree(src: &Path, dest: &Path) -> Res<()> {
    fs::create_dir_all(dest)?;
    for e in fs::read_dir(src)? {
        let e = e?;
        let to = dest.join(e.file_name());
        let ft = e.file_type()?;
        if ft.is_dir() {
            copy_tree(&e.path(), &to)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(e.path())?, &to)?;
        } else {
            fs::copy(e.path(), &to)?;
        }
    }
    Ok(())
}
