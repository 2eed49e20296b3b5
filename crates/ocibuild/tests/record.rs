//! The build record and what is made of it, the same for both frontends: the `--metadata-file`
//! (checked against `docs/metadata.schema.json` with Python's `jsonschema`), its step counts on
//! a cold build and on a no-change rebuild, the layers' origins, the record kept in the store,
//! and a running step's output streamed as it is printed (`step-output` events, the plain
//! heartbeat's last line). Dockerfile builds run busybox images made on the spot (RUN steps in
//! the sandbox, so as root); the zero-config build shares the build tests' store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use ocibuild_testkit as tk;
use serde_json::{Value, json};

fn ocibuild(root: &Path, progress: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ocibuild"));
    c.arg("--root")
        .arg(root)
        .args(["--progress", progress])
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("OCIBUILD_LOG")
        .stdin(Stdio::null());
    c
}

fn schema() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/metadata.schema.json")
}

/// The schema's complaints about `instance` (none: it validates), from Python's `jsonschema`.
fn schema_errors(instance: &Value) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("instance.json");
    fs::write(&f, serde_json::to_vec(instance).unwrap()).unwrap();
    let out = tk::oracles::python_eval(
        &["jsonschema==4.*"],
        "import json, sys, jsonschema\n\
         schema = json.load(open(sys.argv[1]))\n\
         jsonschema.Draft202012Validator.check_schema(schema)\n\
         v = jsonschema.Draft202012Validator(schema)\n\
         for e in v.iter_errors(json.load(open(sys.argv[2]))):\n    \
             print('/'.join(str(p) for p in e.absolute_path) + ': ' + e.message)\n",
        &[schema().to_str().unwrap(), f.to_str().unwrap()],
    );
    out.lines().map(str::to_string).collect()
}

/// `m` validates against the schema, and the schema is not a rubber stamp: without the step
/// counts, or with a layer of no known origin, it does not.
fn assert_valid(m: &Value) {
    let errors = schema_errors(m);
    assert!(errors.is_empty(), "{errors:#?}\n{m:#}");
    let mut broken = m.clone();
    broken.as_object_mut().unwrap().remove("ocibuild.steps.ran");
    broken["ocibuild.images"][0]["layers"][0]["origin"] = json!({"kind": "elsewhere"});
    let errors = schema_errors(&broken);
    assert!(
        errors.iter().any(|e| e.contains("ocibuild.steps.ran"))
            && errors.iter().any(|e| e.contains("origin")),
        "the schema accepts a metadata file without step counts: {errors:#?}"
    );
}

fn busybox_root(dir: &Path) {
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).unwrap();
    fs::copy(tk::busybox_static(), bin.join("busybox")).unwrap();
    fs::set_permissions(bin.join("busybox"), fs::Permissions::from_mode(0o755)).unwrap();
    for l in ["sh", "cat", "echo"] {
        symlink("busybox", bin.join(l)).unwrap();
    }
}

/// A one-layer busybox base in `oci:LAYOUT:v1`, assembled in `root`'s store.
fn base_layout(ctx: &tk::TestContext, root: &Path) -> String {
    let rootfs = ctx.path("base-root");
    busybox_root(&rootfs);
    let layout = ctx.path("base-layout");
    tk::run_ok(
        ocibuild(root, "plain")
            .arg("assemble")
            .arg("--layer")
            .arg(format!("{}:/", rootfs.display()))
            .arg("--output")
            .arg(format!("oci:{}:v1", layout.display())),
    );
    format!("oci:{}:v1", layout.display())
}

fn metadata(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

fn origins(m: &Value) -> Vec<String> {
    m["ocibuild.images"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let o = &l["origin"];
            match o["kind"].as_str().unwrap() {
                "base" => "base".to_string(),
                "step" => format!("step {}", o["step"].as_str().unwrap()),
                "app" => format!("app {}", o["name"].as_str().unwrap()),
                k => panic!("origin {k}"),
            }
        })
        .collect()
}

/// The record kept in the store for the image `digest`.
fn stored_record(root: &Path, digest: &str) -> Value {
    let hex = digest.strip_prefix("sha256:").unwrap();
    let p = root
        .join("engine")
        .join("builds")
        .join(format!("image-{hex}.json"));
    let v: Value = serde_json::from_slice(
        &fs::read(&p).unwrap_or_else(|e| panic!("no build record at {}: {e}", p.display())),
    )
    .unwrap();
    assert_eq!(v["schema_version"], 1, "{v:#}");
    v
}

#[test]
fn dockerfile_metadata_follows_the_schema_with_step_counts_and_layer_origins() {
    let ctx = tk::TestContext::new();
    let root = ctx.root_dir();
    let base = base_layout(&ctx, &root);
    let dir = ctx.path("app");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("app.txt"), "the app\n").unwrap();
    fs::write(dir.join("package-lock.json"), "{\"lockfileVersion\": 3}\n").unwrap();
    fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM {base} AS production\nWORKDIR /app\nCOPY app.txt ./\nLABEL a=b\n\
             RUN [\"/bin/sh\", \"-c\", \"echo built > /app/built\"]\n"
        ),
    )
    .unwrap();
    let meta = ctx.path("meta.json");
    let build = || {
        let out = tk::run_ok(
            ocibuild(&root, "plain")
                .args(["build", "-t", "app:1", "--metadata-file"])
                .arg(&meta)
                .arg(&dir),
        );
        let digest = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (
            digest,
            metadata(&meta),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // cold: WORKDIR, COPY and RUN run (LABEL is no step), each says the layer it wrote
    let (d1, m1, err) = build();
    for id in ["production/1", "production/2", "production/4"] {
        assert!(err.contains(&format!("=> layer {id}: sha256:")), "{err}");
    }
    assert_valid(&m1);
    assert_eq!(m1["containerimage.digest"], d1.as_str(), "{m1:#}");
    assert_eq!(m1["ocibuild.steps.ran"], 3, "{m1:#}");
    assert_eq!(m1["ocibuild.steps.cached"], 0, "{m1:#}");
    assert_eq!(m1["ocibuild.cached"], false);
    assert_eq!(m1["ocibuild.frontend"]["kind"], "dockerfile");
    assert_eq!(m1["ocibuild.platforms"].as_array().unwrap().len(), 1);
    assert_eq!(m1["image.name"], "app:1");
    assert_eq!(
        origins(&m1),
        [
            "base",
            "step production/1",
            "step production/2",
            "step production/4"
        ],
        "{m1:#}"
    );
    let steps = m1["ocibuild.steps"].as_array().unwrap();
    assert_eq!(
        steps
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        [
            "WORKDIR /app",
            "COPY app.txt ./",
            "RUN [\"/bin/sh\", \"-c\", \"echo built > /app/built\"]"
        ]
    );
    assert!(steps.iter().all(|s| s["ran"] == true), "{steps:#?}");
    // the layers this build made, named by their step
    let made: Vec<&str> = m1["ocibuild.layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(made, ["production/1", "production/2", "production/4"]);
    // the record, kept in the store for SBOM and provenance
    let rec = stored_record(&root, &d1);
    assert_eq!(rec["frontend"]["kind"], "dockerfile");
    assert_eq!(rec["images"][0]["bases"][0]["reference"], base.as_str());
    assert_eq!(rec["images"][0]["bases"][0]["in_image"], true);
    assert_eq!(rec["images"][0]["lockfiles"][0]["kind"], "npm-lock");

    // no change: nothing runs, every step comes from the store
    let (d2, m2, err) = build();
    assert_eq!(d1, d2);
    assert!(!err.contains("=> layer "), "{err}");
    assert_eq!(err.matches("=> CACHED [production ").count(), 3, "{err}");
    assert_valid(&m2);
    assert_eq!(m2["ocibuild.steps.ran"], 0, "{m2:#}");
    assert_eq!(m2["ocibuild.steps.cached"], 3, "{m2:#}");
    assert_eq!(m2["ocibuild.cached"], true);
    assert!(
        m2["ocibuild.steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["ran"] == false && s["cached_from"] == "local"),
        "{m2:#}"
    );
    assert_eq!(origins(&m2), origins(&m1));
}

fn app(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/apps")
        .join(name)
}

/// The zero-config frontend's metadata file follows the same schema: the runtime base's layers
/// named by its profiles, the app's by the plan, its steps ran on a cold build and cached on a
/// rebuild.
#[test]
fn zero_config_metadata_follows_the_same_schema() {
    let ctx = tk::TestContext::new();
    // the build tests' store and package cache: toolchain roots are assembled once
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ocibuild-build-tests-store");
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("ocibuild-build-tests-store")
        .join("debian");
    fs::create_dir_all(&cache).unwrap();
    let dir = ctx.tmp_dir("record-go");
    fs::copy(app("go-hello").join("go.mod"), dir.join("go.mod")).unwrap();
    // a comment unique to this run keeps the first build a miss in the shared store
    let main = fs::read_to_string(app("go-hello").join("main.go")).unwrap();
    fs::write(
        dir.join("main.go"),
        format!("{main}\n// record test {}\n", ctx.dir().display()),
    )
    .unwrap();
    let meta = ctx.path("meta.json");
    let build = || {
        let out = tk::run_ok(
            ocibuild(&root, "plain")
                .arg("build")
                .arg(&dir)
                .arg("--cache-dir")
                .arg(&cache)
                .arg("--metadata-file")
                .arg(&meta),
        );
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        (
            stdout.lines().last().unwrap_or_default().to_string(),
            metadata(&meta),
        )
    };
    let (d1, m1) = build();
    assert_valid(&m1);
    assert_eq!(m1["containerimage.digest"], d1.as_str());
    assert_eq!(m1["ocibuild.frontend"]["kind"], "zero_config");
    assert_eq!(m1["ocibuild.frontend"]["language"], "go");
    assert_eq!(m1["ocibuild.lang"], "go");
    let ran = m1["ocibuild.steps.ran"].as_u64().unwrap();
    assert!(ran >= 1, "{m1:#}");
    // steps have content keys (one executor): the go build (the RUN with the go-build cache
    // mount) runs (its source is new), while a
    // step whose inputs an earlier build in this store had (the final stage's COPY of the same
    // binary: the edit is a comment) may be cached
    let cached1 = m1["ocibuild.steps.cached"].as_u64().unwrap();
    assert!(
        m1["ocibuild.steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"].as_str().unwrap_or("").contains("id=go-build") && s["ran"] == true),
        "{m1:#}"
    );
    let o = origins(&m1);
    let first_app = o.iter().position(|x| x.starts_with("app ")).unwrap();
    assert!(first_app >= 1, "no base layer: {o:?}");
    assert!(o[..first_app].iter().all(|x| x == "base"), "{o:?}");
    assert!(
        o[first_app..].iter().all(|x| x.starts_with("app ")),
        "{o:?}"
    );
    // base layers carry their profile's name
    assert!(
        m1["ocibuild.images"][0]["layers"][0]["origin"]["name"].is_string(),
        "{m1:#}"
    );
    assert_eq!(
        m1["ocibuild.layers"].as_array().unwrap().len(),
        o.len() - first_app
    );
    let rec = stored_record(&root, &d1);
    assert_eq!(rec["images"][0]["bases"][0]["name"], "runtime");
    assert!(
        !rec["images"][0]["bases"][0]["debian"]["packages"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{rec:#}"
    );
    assert!(
        !rec["images"][0]["toolchains"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    let (d2, m2) = build();
    assert_eq!(d1, d2);
    assert_valid(&m2);
    assert_eq!(m2["ocibuild.steps.ran"], 0, "{m2:#}");
    assert_eq!(m2["ocibuild.steps.cached"], ran + cached1, "{m2:#}");
    assert_eq!(m2["ocibuild.cached"], true);
    assert_eq!(origins(&m2), o);
}

/// The host directory of the Dockerfile cache mount `id` in the store `root`
/// (`ROOT/engine/cache/df-<first 16 hex of sha256 of the id as JSON>`).
fn cache_mount_dir(root: &Path, id: &str) -> PathBuf {
    use sha2::Digest as _;
    let h = hex::encode(sha2::Sha256::digest(
        serde_json::to_vec(&json!(id)).unwrap(),
    ));
    root.join("engine")
        .join("cache")
        .join(format!("df-{}", &h[..16]))
}

/// Builds `dir` with `--progress progress --no-cache`, waits (reading stderr as it comes) for a
/// line `seen` accepts, then writes to the FIFO `release` the step blocks on. Returns whether
/// the line came before the release (else the step was released after 120 s without it), and
/// the whole stderr.
fn build_until(
    root: &Path,
    dir: &Path,
    progress: &str,
    release: &Path,
    seen: impl Fn(&str) -> bool,
) -> (bool, String) {
    let mut child = ocibuild(root, progress)
        .env("OCIBUILD_HEARTBEAT", "0.2")
        .args(["build", "--no-cache"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut all = String::new();
    let mut in_time = false;
    // a deadline, not a synchronisation: the line normally comes within a second
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(l) => {
                all.push_str(&l);
                all.push('\n');
                if seen(&l) {
                    in_time = true;
                    break;
                }
            }
            Err(_) => break,
        }
    }
    // release the step (it blocks reading the FIFO until a writer writes)
    fs::OpenOptions::new()
        .write(true)
        .open(release)
        .and_then(|mut f| f.write_all(b"ok\n"))
        .unwrap();
    for l in rx.iter() {
        all.push_str(&l);
        all.push('\n');
    }
    reader.join().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "the build failed:\n{all}");
    (in_time, all)
}

/// Issue 23 item 5: a running step's output is streamed while it runs. The RUN prints a line
/// and then blocks reading a FIFO (in a cache mount) that the test writes to only after it read
/// that line's `step-output` event (`--progress json`) — so the event cannot come from the end
/// of the step. In plain mode, the heartbeat says the step's last line.
#[test]
fn a_running_step_streams_its_output_before_it_ends() {
    let ctx = tk::TestContext::new();
    let root = ctx.root_dir();
    let base = base_layout(&ctx, &root);
    let mount = cache_mount_dir(&root, "record-fifo");
    fs::create_dir_all(&mount).unwrap();
    let fifo = mount.join("release");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
    let dir = ctx.path("fifo-app");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM {base}\nRUN --mount=type=cache,id=record-fifo,target=/fifo \
             [\"/bin/sh\", \"-c\", \"echo waiting-for-the-test; read x < /fifo/release; echo released-$x\"]\n"
        ),
    )
    .unwrap();
    let (in_time, err) = build_until(&root, &dir, "json", &fifo, |l| {
        serde_json::from_str::<Value>(l)
            .is_ok_and(|e| e["event"] == "step-output" && e["line"] == "waiting-for-the-test")
    });
    assert!(
        in_time,
        "no step-output event for the line the RUN printed while it ran (output not streamed):\n{err}"
    );
    let events: Vec<Value> = err
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let released = events
        .iter()
        .position(|e| e["event"] == "step-output" && e["line"] == "released-ok");
    let done = events.iter().position(|e| e["event"] == "step-done");
    assert!(
        released.is_some() && released < done,
        "the line after the release comes before step-done: {events:#?}"
    );
    assert!(
        events
            .iter()
            .all(|e| e["event"] != "step-output" || e["name"].as_str().unwrap().contains("RUN")),
        "{events:#?}"
    );

    // plain: the heartbeat shows the last line while the step waits
    let (in_time, err) = build_until(&root, &dir, "plain", &fifo, |l| {
        l.contains("still running (") && l.ends_with(": waiting-for-the-test")
    });
    assert!(
        in_time,
        "no heartbeat with the step's last line while it ran:\n{err}"
    );
    assert!(err.contains("released-ok"), "{err}");
}
