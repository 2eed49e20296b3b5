//! The Dockerfile equality harness: one Dockerfile built by ocibuild and by buildah from the same
//! context and build args (bases as `oci-archive:` files made by `ocibuild base build`), both
//! images unpacked with umoci and their root filesystems compared with
//! [`compare_with_buildah`](crate::buildah::compare_with_buildah) (paths, types, modes, owners,
//! contents, symlink targets, hardlinks; never timestamps), and, when the case says what the
//! image prints, both images run under runc.
//!
//! A corpus is a directory of `NAME.Dockerfile` files ([`read_corpus`]); where buildah lacks a
//! syntax the Dockerfile uses (`COPY --link`, `COPY --parents`, heredocs in buildah 1.28),
//! `NAME.buildah.Dockerfile` beside it is the same build written without it, and is what buildah
//! builds. Directives in a Dockerfile's comments:
//!
//! - `# expect: TEXT` — the image runs under runc (its own entrypoint/cmd) and prints TEXT
//!   (stdout, trimmed; `\n` in TEXT is a newline); both images are run.
//!
//! Bases are built once per test process with [`base_archive`]; a corpus runs its cases on a few
//! threads with [`run_parallel`], sharing one [`Buildah`] store and one ocibuild store.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use crate::buildah::{Buildah, BuildahBuild, compare_with_buildah};
use crate::{TestContext, run_ok, runc_run, umoci_unpack};

/// `ocibuild base build --profile PROFILE [--packages …] --output oci-archive:OUT_DIR/KEY.tar`
/// with the binary `bin` (`env!("CARGO_BIN_EXE_ocibuild")`, or [`crate::ocibuild_bin`]), the
/// store `root` and the package cache `cache_dir`, built once per test process (callers asking
/// for the same base wait for the first). Returns the archive.
pub fn base_archive(
    bin: &Path,
    root: &Path,
    cache_dir: &Path,
    out_dir: &Path,
    profile: &str,
    packages: &[&str],
) -> PathBuf {
    static BASES: Mutex<BTreeMap<String, Arc<OnceLock<PathBuf>>>> = Mutex::new(BTreeMap::new());
    let key = if packages.is_empty() {
        profile.replace(':', "-")
    } else {
        format!("{}+{}", profile.replace(':', "-"), packages.join("+"))
    };
    let cell = BASES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(key.clone())
        .or_default()
        .clone();
    cell.get_or_init(|| {
        fs::create_dir_all(out_dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", out_dir.display()));
        let file = out_dir.join(format!("{key}.tar"));
        let mut c = ocibuild(bin, root);
        c.args(["base", "build", "--profile", profile])
            .arg("--cache-dir")
            .arg(cache_dir);
        if !packages.is_empty() {
            c.arg("--packages").arg(packages.join(","));
        }
        c.arg("--output")
            .arg(format!("oci-archive:{}", file.display()));
        let t0 = Instant::now();
        run_ok(&mut c);
        eprintln!(
            "base {key}: {} ({:.1} MB, {:.1}s)",
            file.display(),
            fs::metadata(&file).map(|m| m.len()).unwrap_or(0) as f64 / 1e6,
            t0.elapsed().as_secs_f64()
        );
        file
    })
    .clone()
}

/// `BIN --root ROOT --progress plain` (no SOURCE_DATE_EPOCH from the environment).
fn ocibuild(bin: &Path, root: &Path) -> Command {
    let mut c = Command::new(bin);
    c.arg("--root")
        .arg(root)
        .args(["--progress", "plain"])
        .env_remove("SOURCE_DATE_EPOCH")
        .stdin(Stdio::null());
    c
}

/// One Dockerfile of a corpus.
#[derive(Debug, Clone)]
pub struct Case {
    /// The file name without `.Dockerfile`.
    pub name: String,
    /// What ocibuild builds.
    pub dockerfile: PathBuf,
    /// What buildah builds: `NAME.buildah.Dockerfile` when there is one, else `dockerfile`.
    pub reference: PathBuf,
    /// `# expect:` — what the image prints when run.
    pub expect: Option<String>,
}

/// Every `NAME.Dockerfile` of `dir` (not the `.buildah.` twins), sorted by name, with its
/// directives. Panics when a twin has no Dockerfile.
pub fn read_corpus(dir: &Path) -> Vec<Case> {
    let mut out = Vec::new();
    let mut twins = Vec::new();
    for e in fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display())) {
        let e = e.unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        let file = e.file_name().to_string_lossy().into_owned();
        let Some(name) = file.strip_suffix(".Dockerfile") else {
            continue;
        };
        if let Some(n) = name.strip_suffix(".buildah") {
            twins.push(n.to_string());
            continue;
        }
        let dockerfile = e.path();
        let text = fs::read_to_string(&dockerfile)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", dockerfile.display()));
        let expect = text
            .lines()
            .find_map(|l| l.strip_prefix("# expect:"))
            .map(|t| t.trim().replace("\\n", "\n"));
        let twin = dir.join(format!("{name}.buildah.Dockerfile"));
        out.push(Case {
            name: name.to_string(),
            reference: if twin.is_file() {
                twin
            } else {
                dockerfile.clone()
            },
            dockerfile,
            expect,
        });
    }
    for t in twins {
        assert!(
            out.iter().any(|c| c.name == t),
            "{}/{t}.buildah.Dockerfile has no {t}.Dockerfile",
            dir.display()
        );
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The two builders of a comparison: a buildah store and an ocibuild store.
pub struct Builders<'a> {
    pub buildah: &'a Buildah,
    /// The ocibuild binary.
    pub bin: PathBuf,
    /// ocibuild's `--root`.
    pub root: PathBuf,
}

/// What one comparison found: every difference, and what the builds printed.
#[derive(Debug)]
pub struct Compared {
    pub name: String,
    /// The root filesystem differences, then any runc or build-output problem; empty: equal.
    pub problems: Vec<String>,
    /// ocibuild's unpacked root filesystem and its layout (tag `ours`).
    pub rootfs: PathBuf,
    pub layout: PathBuf,
    /// buildah's layout (tagged with the case's name).
    pub reference_layout: PathBuf,
    /// ocibuild's stderr, for failure reports.
    pub stderr: String,
    pub seconds: f64,
}

/// Build `case` with buildah and with ocibuild from `context` with `args` as `--build-arg`s,
/// unpack both with umoci, compare them, and run both under runc when the case has an
/// `# expect:`. Files go under `ctx` (named after the case). A build failure panics with the
/// tool's output (a corpus Dockerfile must build with both).
pub fn compare_case(
    ctx: &TestContext,
    b: &Builders<'_>,
    case: &Case,
    context: &Path,
    args: &[(String, String)],
) -> Compared {
    compare_case_with(ctx, b, case, context, args, &[])
}

/// [`compare_case`] with more `buildah build` flags (`["--format", "docker"]` keeps what only
/// Docker's config format has: HEALTHCHECK, ONBUILD, SHELL).
pub fn compare_case_with(
    ctx: &TestContext,
    b: &Builders<'_>,
    case: &Case,
    context: &Path,
    args: &[(String, String)],
    buildah_flags: &[&str],
) -> Compared {
    let t0 = Instant::now();
    let dir = ctx.tmp_dir(format!("case-{}", case.name));
    // buildah first: the reference, and a check of the Dockerfile itself
    let mut bb = BuildahBuild::new(&case.reference, context);
    for (k, v) in args {
        bb = bb.build_arg(k, v);
    }
    for f in buildah_flags {
        bb = bb.arg(f);
    }
    let theirs = dir.join("buildah-layout");
    // tagged after the case: concurrent cases share the store
    b.buildah.build_to_layout(&bb, &theirs, &case.name);

    let ours = dir.join("ocibuild-layout");
    let mut c = ocibuild(&b.bin, &b.root);
    c.arg("build").arg("-f").arg(&case.dockerfile);
    for (k, v) in args {
        c.arg("--build-arg").arg(format!("{k}={v}"));
    }
    c.arg("--output")
        .arg(format!("oci:{}:ours", ours.display()))
        .arg(context);
    let out = run_ok(&mut c);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();

    let a = umoci_unpack(&ours, "ours", &dir.join("ocibuild-bundle"));
    let r = umoci_unpack(&theirs, &case.name, &dir.join("buildah-bundle"));
    let mut problems: Vec<String> = compare_with_buildah(&a, &r);
    if let Some(want) = &case.expect {
        for (who, bundle) in [
            ("ocibuild", dir.join("ocibuild-bundle")),
            ("buildah", dir.join("buildah-bundle")),
        ] {
            let (code, stdout, stderr) = runc_run(&bundle, None);
            if code != 0 || stdout.trim() != want.trim() {
                problems.push(format!(
                    "{who}'s image under runc: exit {code}, printed {:?} (expected {want:?}); stderr: {}",
                    stdout.trim(),
                    stderr.trim()
                ));
            }
        }
    }
    Compared {
        name: case.name.clone(),
        problems,
        rootfs: a,
        layout: ours,
        reference_layout: theirs,
        stderr,
        seconds: t0.elapsed().as_secs_f64(),
    }
}

/// `f` over `items` on `threads` threads (each takes the next item when it is free); results in
/// the items' order. A panic in `f` is returned as that item's `Err` (its message), so one bad
/// case does not hide the others.
pub fn run_parallel<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<Result<R, String>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<R, String>>>> =
        Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(item) = items.get(i) else { break };
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(item)))
                        .map_err(|p| {
                            p.downcast_ref::<String>()
                                .cloned()
                                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                                .unwrap_or_else(|| "panicked".into())
                        });
                    results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err("not run".into())))
        .collect()
}
