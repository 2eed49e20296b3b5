//! `policy-bench`: `ocibuild check` and `ocibuild size` of the Java testdata image from an OCI
//! layout (each streams every layer once into an in-memory index), timed with their peak RSS,
//! next to the "unpack to disk" baseline measured in the same run: `umoci unpack` of the same
//! layout followed by `du -sb` of the root filesystem (what a script-based check starts with).
//!
//! The image is built untimed first (`ocibuild build testdata/apps/java-plain`) unless `--image`
//! names one. Wall time and peak RSS come from GNU time (`/usr/bin/time -f "%e %M"`). Targets
//! (printed): ≤ 1 s and ≤ 150 MB for each of `check` and `size`. It asserts nothing.
//!
//! Usage: `cargo build -p ocibuild -p ocibuild-benches && target/debug/policy-bench [--runs N]
//! [--root DIR] [--image oci:DIR:TAG] [--app DIR]` (`OCIBUILD_BIN` names another ocibuild
//! binary; by default the one next to this bench).

#[path = "common.rs"]
mod common;
use common::{have, machine_info, median};
use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

type R<T> = Result<T, Box<dyn Error>>;

fn ocibuild_bin() -> R<PathBuf> {
    if let Some(b) = std::env::var_os("OCIBUILD_BIN") {
        return Ok(PathBuf::from(b));
    }
    let me = std::env::current_exe()?;
    let b = me
        .parent()
        .ok_or("the bench binary has no directory")?
        .join("ocibuild");
    if b.is_file() {
        Ok(b)
    } else {
        Err(format!(
            "no ocibuild binary at {}: cargo build -p ocibuild (or set OCIBUILD_BIN)",
            b.display()
        )
        .into())
    }
}

/// Run `argv` under GNU time: (wall seconds, CPU seconds (user + system), peak RSS in MB, exit
/// code).
fn timed(argv: &[String], quiet: bool) -> R<(f64, f64, f64, i32)> {
    let t = tempfile_path("time");
    let mut c = Command::new("/usr/bin/time");
    c.args(["-f", "%e %U %S %M", "-o"]).arg(&t).args(argv);
    if quiet {
        c.stdout(Stdio::null()).stderr(Stdio::null());
    }
    let st = c.status()?;
    let s = std::fs::read_to_string(&t)?;
    let _ = std::fs::remove_file(&t);
    let last = s.lines().last().ok_or("GNU time wrote nothing")?;
    let mut w = last.split_whitespace();
    let secs: f64 = w.next().ok_or("no time")?.parse()?;
    let user: f64 = w.next().ok_or("no user time")?.parse()?;
    let sys: f64 = w.next().ok_or("no system time")?.parse()?;
    let kb: f64 = w.next().ok_or("no rss")?.parse()?;
    Ok((secs, user + sys, kb / 1024.0, st.code().unwrap_or(-1)))
}

fn tempfile_path(what: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "policy-bench-{}-{what}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ))
}

fn main() -> R<()> {
    let mut runs = 3usize;
    let mut root: Option<PathBuf> = None;
    let mut image: Option<String> = None;
    let mut app = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/apps/java-plain");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = args.next().ok_or("--runs N")?.parse()?,
            "--root" => root = Some(args.next().ok_or("--root DIR")?.into()),
            "--image" => image = Some(args.next().ok_or("--image oci:DIR:TAG")?),
            "--app" => app = args.next().ok_or("--app DIR")?.into(),
            "--help" | "-h" => {
                println!("policy-bench [--runs N] [--root DIR] [--image oci:DIR:TAG] [--app DIR]");
                return Ok(());
            }
            other => return Err(format!("unknown argument `{other}` (try --help)").into()),
        }
    }
    if runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    for tool in ["/usr/bin/time", "umoci", "du"] {
        if !have(tool) && !Path::new(tool).is_file() {
            return Err(format!("{tool} is needed (./scripts/setup.sh installs it)").into());
        }
    }
    let bin = ocibuild_bin()?;
    let work = tempfile_path("work");
    std::fs::create_dir_all(&work)?;
    let root = root.unwrap_or_else(|| work.join("store"));
    let mut base = vec![
        bin.display().to_string(),
        "--root".into(),
        root.display().to_string(),
        "--progress".into(),
        "plain".into(),
    ];
    let (image, layout, tag) = match image {
        Some(i) => {
            let rest = i
                .strip_prefix("oci:")
                .ok_or("--image must be oci:DIR:TAG")?;
            let (dir, tag) = rest.rsplit_once(':').ok_or("--image must be oci:DIR:TAG")?;
            (i.clone(), PathBuf::from(dir), tag.to_string())
        }
        None => {
            let layout = work.join("layout");
            let image = format!("oci:{}:java", layout.display());
            eprintln!("building {} (untimed) …", app.display());
            let st = Command::new(&bin)
                .arg("--root")
                .arg(&root)
                .args(["--progress", "plain", "build"])
                .arg(&app)
                .args(["--output", &image])
                .stdout(Stdio::null())
                .status()?;
            if !st.success() {
                return Err(format!("building {} failed", app.display()).into());
            }
            (image, layout, "java".to_string())
        }
    };
    base.truncate(1); // check and size need no store
    println!(
        "{}",
        machine_info(&[("umoci", "--version"), ("du", "--version")])
    );
    let size_out = Command::new(&bin).args(["size", &image]).output()?;
    let head: String = String::from_utf8_lossy(&size_out.stdout)
        .lines()
        .take(2)
        .collect::<Vec<_>>()
        .join("\n");
    println!("image: {head}\n");

    let mut rows = Vec::new();
    let cases: Vec<(&str, Vec<String>)> = vec![
        (
            "ocibuild check",
            vec![base[0].clone(), "check".into(), image.clone()],
        ),
        (
            "ocibuild size",
            vec![base[0].clone(), "size".into(), image.clone()],
        ),
    ];
    for (name, argv) in &cases {
        let (mut t, mut cpu, mut m) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            let (s, c, mb, code) = timed(argv, true)?;
            if code != 0 && code != 3 {
                return Err(format!("{name} exited {code}").into());
            }
            t.push(s);
            cpu.push(c);
            m.push(mb);
        }
        rows.push((
            name.to_string(),
            median(&mut t),
            median(&mut cpu),
            median(&mut m),
            t,
        ));
    }
    // the baseline: unpack to disk, then du
    let (mut t, mut cpu, mut m) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs {
        let bundle = work.join(format!("bundle-{i}"));
        let (s1, cpu1, mb1, c1) = timed(
            &[
                "umoci".into(),
                "unpack".into(),
                "--rootless".into(),
                "--image".into(),
                format!("{}:{tag}", layout.display()),
                bundle.display().to_string(),
            ],
            true,
        )?;
        if c1 != 0 {
            return Err(format!("umoci unpack exited {c1}").into());
        }
        let (s2, cpu2, mb2, _) = timed(
            &[
                "du".into(),
                "-sb".into(),
                bundle.join("rootfs").display().to_string(),
            ],
            true,
        )?;
        t.push(s1 + s2);
        cpu.push(cpu1 + cpu2);
        m.push(mb1.max(mb2));
        let _ = std::fs::remove_dir_all(&bundle);
    }
    rows.push((
        "umoci unpack + du -sb".to_string(),
        median(&mut t),
        median(&mut cpu),
        median(&mut m),
        t,
    ));
    let peer = rows.last().map(|r| r.1).unwrap_or(1.0);
    println!(
        "| operation | wall (median of {runs}) | CPU user+sys | peak RSS | wall vs unpack+du | target (≤ 1 s, ≤ 150 MB) |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for (name, secs, cpu, mb, all) in &rows {
        let target = if name.starts_with("ocibuild") {
            format!(
                "wall {}, CPU {}",
                if *secs <= 1.0 && *mb <= 150.0 {
                    "met"
                } else {
                    "**not met**"
                },
                if *cpu <= 1.0 && *mb <= 150.0 {
                    "met"
                } else {
                    "**not met**"
                }
            )
        } else {
            "(baseline)".into()
        };
        println!(
            "| {name} | {secs:.2} s ({}) | {cpu:.2} s | {mb:.0} MB | {:.2}× | {target} |",
            all.iter()
                .map(|s| format!("{s:.2}"))
                .collect::<Vec<_>>()
                .join("/"),
            secs / peer.max(1e-9)
        );
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}
