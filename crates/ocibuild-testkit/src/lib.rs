//! # ocibuild-testkit — fixtures for integration and end-to-end tests
//!
//! Temp dirs that clean up after themselves ([`TestContext`]), helpers that run commands and fail
//! loudly ([`run_ok`], [`run_fail`]), and the real peer tools that check what ocibuild writes:
//! `umoci`, `oci-image-tool`, `skopeo`, `podman` and `runc`.
//!
//! May depend on: plain Rust crates and the peer tools installed on the machine (Debian packages;
//! `./scripts/setup.sh`, as root, installs them all). Must never: mock a peer, skip a test because
//! a tool is missing (a missing tool is a panic naming the package to install), depend on anything
//! outside this repository, or be a dependency of anything but tests and benches.
//!
//! Every helper panics (this is a test crate) with the full command line and the tool's complete
//! stdout and stderr, so a failing test explains itself.

pub mod azurite;
pub mod buildah;
pub mod equality;
pub mod oracles;
pub mod proxy;
pub mod registry;
use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

/// Set this to keep the temp dirs of failing tests (their paths are printed).
pub const KEEP_ENV: &str = "OCIBUILD_TEST_KEEP";

// ---------------------------------------------------------------------------------------------
// TestContext
// ---------------------------------------------------------------------------------------------

/// A private temp dir for one test, removed when dropped (even when it holds read-only dirs, as
/// rootless unpacks leave behind). With `OCIBUILD_TEST_KEEP=1`, a failing test's dir is kept and
/// its path printed.
#[derive(Debug)]
pub struct TestContext {
    dir: PathBuf,
}

impl TestContext {
    /// A fresh, empty temp dir under `$TMPDIR` (or `/tmp`), named `ocibuild-test-<pid>-<n>-<x>`:
    /// all lowercase, because podman names images it reads from `oci:DIR` after DIR, and image
    /// names must be lowercase.
    pub fn new() -> Self {
        let base = std::env::temp_dir();
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        for attempt in 0..1000u32 {
            let dir = base.join(format!(
                "ocibuild-test-{}-{}-{:x}",
                std::process::id(),
                next_id(),
                stamp.wrapping_add(attempt)
            ));
            match fs::create_dir(&dir) {
                Ok(()) => return TestContext { dir },
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("cannot create a temp dir {}: {e}", dir.display()),
            }
        }
        panic!("cannot create a fresh temp dir under {}", base.display())
    }

    /// The temp dir itself.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `rel` inside the temp dir. Parent dirs are created; `rel` itself is not.
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        let rel = rel.as_ref();
        assert!(
            rel.is_relative(),
            "TestContext::path takes a relative path, got {}",
            rel.display()
        );
        let p = self.dir.join(rel);
        if let Some(parent) = p.parent() {
            mkdirs(parent);
        }
        p
    }

    /// A dir for ocibuild's `--root` (content store and cache), private to this test. The same
    /// path on every call, so several commands of one test share a store.
    pub fn root_dir(&self) -> PathBuf {
        self.tmp_dir("ocibuild-root")
    }

    /// `name` inside the temp dir, created (with parents) if it does not exist.
    pub fn tmp_dir(&self, name: impl AsRef<Path>) -> PathBuf {
        let p = self.path(name);
        mkdirs(&p);
        p
    }
}

impl Default for TestContext {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestContext {
    fn drop(&mut self) {
        if std::thread::panicking() && std::env::var_os(KEEP_ENV).is_some_and(|v| v != "0") {
            eprintln!("{KEEP_ENV}: kept the test dir {}", self.dir.display());
            return;
        }
        if let Err(e) = remove_tree(&self.dir) {
            eprintln!(
                "warning: could not remove the test dir {}: {e}",
                self.dir.display()
            );
        }
    }
}

fn mkdirs(p: &Path) {
    fs::create_dir_all(p).unwrap_or_else(|e| panic!("cannot create {}: {e}", p.display()));
}

/// `rm -rf`, making dirs writable first when a plain removal is refused.
fn remove_tree(p: &Path) -> std::io::Result<()> {
    match fs::remove_dir_all(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(_) => {
            make_writable(p);
            fs::remove_dir_all(p)
        }
    }
}

fn make_writable(p: &Path) {
    let Ok(meta) = fs::symlink_metadata(p) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    let mut perm = meta.permissions();
    perm.set_mode(perm.mode() | 0o700);
    let _ = fs::set_permissions(p, perm);
    if let Ok(entries) = fs::read_dir(p) {
        for e in entries.flatten() {
            make_writable(&e.path());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Finding tools and binaries
// ---------------------------------------------------------------------------------------------

const EXTRA_BIN_DIRS: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(EXTRA_BIN_DIRS.iter().map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The path of peer tool `name` (searched on `PATH`, then `/usr/sbin`, `/sbin`, …). Panics when it
/// is missing, naming the Debian package to install: a test that needs a peer never skips.
pub fn require_tool(name: &str, debian_pkg: &str) -> PathBuf {
    find_tool(name).unwrap_or_else(|| panic!("{}", missing_tool_message(name, debian_pkg)))
}

fn missing_tool_message(name: &str, debian_pkg: &str) -> String {
    format!(
        "peer tool `{name}` is not installed: run `apt-get install {debian_pkg}` (or the README's \
         setup command, `./scripts/setup.sh` as root); this test never skips"
    )
}

/// The built `ocibuild` binary, for end-to-end tests outside the `ocibuild` crate (inside it, use
/// `env!("CARGO_BIN_EXE_ocibuild")`). `$OCIBUILD_BIN` wins; otherwise it is looked up next to the
/// running test binary (`target/<profile>/deps/x` → `target/<profile>/ocibuild`). Panics with the
/// build command when it is not there.
pub fn ocibuild_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("OCIBUILD_BIN") {
        let p = PathBuf::from(p);
        assert!(
            is_executable(&p),
            "OCIBUILD_BIN={} is not an executable file",
            p.display()
        );
        return p;
    }
    let exe = std::env::current_exe()
        .unwrap_or_else(|e| panic!("cannot find the running test binary: {e}"));
    let p = profile_bin(&exe, "ocibuild");
    assert!(
        is_executable(&p),
        "the `ocibuild` binary is not built (looked for {}): run `cargo build -p ocibuild` (with the \
         same profile as the tests, e.g. `--release`) or set OCIBUILD_BIN",
        p.display()
    );
    p
}

/// Every path below `dir` (files, links and directories), depth first; unreadable dirs are
/// skipped.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                todo.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}

/// What no distroless image may hold, whatever its language: shells, compilers and linkers,
/// package managers (system and language ones), toolchains, and the build's `/src`.
pub const BUILD_TOOLS: &[&str] = &[
    "bin/sh",
    "usr/bin/sh",
    "usr/bin/bash",
    "usr/bin/dash",
    "usr/bin/gcc",
    "usr/bin/cc",
    "usr/bin/g++",
    "usr/bin/c++",
    "usr/bin/make",
    "usr/bin/ld",
    "usr/bin/go",
    "usr/lib/go",
    "usr/bin/javac",
    "usr/bin/mvn",
    "usr/bin/npm",
    "usr/bin/npx",
    "usr/bin/corepack",
    "usr/bin/yarn",
    "usr/bin/yarnpkg",
    "usr/bin/pnpm",
    "usr/share/nodejs/npm",
    "usr/bin/pip",
    "usr/bin/pip3",
    "usr/bin/apt",
    "usr/bin/dpkg",
    "src",
];

/// Panics naming the first of [`BUILD_TOOLS`] and `also` (paths relative to the image root)
/// that an unpacked image root holds.
pub fn assert_no_build_tools(rootfs: &Path, also: &[&str]) {
    for p in BUILD_TOOLS.iter().chain(also) {
        assert!(
            fs::symlink_metadata(rootfs.join(p)).is_err(),
            "{p} must not be in the final image ({})",
            rootfs.display()
        );
    }
}

/// `target/<profile>/<name>` for a test binary at `target/<profile>/deps/<test>` (or
/// `…/examples/<x>`, or directly in the profile dir).
fn profile_bin(exe: &Path, name: &str) -> PathBuf {
    let dir = exe.parent().unwrap_or(Path::new("."));
    let nested = [OsStr::new("deps"), OsStr::new("examples")];
    let profile = if dir.file_name().is_some_and(|n| nested.contains(&n)) {
        dir.parent().unwrap_or(dir)
    } else {
        dir
    };
    profile.join(name)
}

/// True when running as uid 0 (effective).
pub fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

// ---------------------------------------------------------------------------------------------
// Running commands
// ---------------------------------------------------------------------------------------------

/// The command as a shell would show it: env overrides, program and arguments, quoted.
pub fn command_line(cmd: &Command) -> String {
    let mut parts: Vec<String> = Vec::new();
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => parts.push(format!(
                "{}={}",
                k.to_string_lossy(),
                shell_quote(&v.to_string_lossy())
            )),
            None => parts.push(format!("-u {}", k.to_string_lossy())),
        }
    }
    if parts.iter().any(|p| p.starts_with("-u ")) {
        parts.insert(0, "env".to_string());
    }
    parts.push(shell_quote(&cmd.get_program().to_string_lossy()));
    parts.extend(cmd.get_args().map(|a| shell_quote(&a.to_string_lossy())));
    let mut line = parts.join(" ");
    if let Some(d) = cmd.get_current_dir() {
        line = format!("(cd {} && {line})", shell_quote(&d.to_string_lossy()));
    }
    line
}

fn shell_quote(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn describe_status(st: ExitStatus) -> String {
    match (st.code(), st.signal()) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        (None, None) => st.to_string(),
    }
}

/// The exit code, or 128 + signal when the process was killed (as a shell reports it).
pub fn exit_code(st: ExitStatus) -> i32 {
    st.code()
        .or_else(|| st.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

fn report(cmd: &Command, out: &Output, what: &str) -> String {
    format!(
        "{what} ({}): {}\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- end ---",
        describe_status(out.status),
        command_line(cmd),
        String::from_utf8_lossy(&out.stdout).trim_end(),
        String::from_utf8_lossy(&out.stderr).trim_end(),
    )
}

/// Run `cmd` to completion, capturing stdout and stderr (stdin is empty unless `cmd` says
/// otherwise). Panics only when it cannot be started.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run `{}`: {e}", command_line(cmd)))
}

/// Run `cmd` and panic, with the command line and its full stdout and stderr, unless it exits 0.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = run(cmd);
    if !out.status.success() {
        panic!("{}", report(cmd, &out, "command failed"));
    }
    out
}

/// Run `cmd`, assert that it fails (non-zero exit), and return its stderr.
pub fn run_fail(cmd: &mut Command) -> String {
    let out = run(cmd);
    if out.status.success() {
        panic!(
            "{}",
            report(cmd, &out, "command should have failed but succeeded")
        );
    }
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// [`run_ok`], returning stdout as a string.
pub fn run_ok_stdout(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&run_ok(cmd).stdout).into_owned()
}

fn tool(name: &str, debian_pkg: &str) -> Command {
    Command::new(require_tool(name, debian_pkg))
}

fn assert_no_colon(p: &Path, tool: &str) {
    assert!(
        !p.to_string_lossy().contains(':'),
        "{tool} cannot address {}: the path contains ':' (transports split at ':')",
        p.display()
    );
}

// ---------------------------------------------------------------------------------------------
// Validators
// ---------------------------------------------------------------------------------------------

/// umoci's unpack of `LAYOUT:TAG` into the runc bundle `BUNDLE` (with `--rootless` when not
/// root): `umoci raw unpack` writes `BUNDLE/rootfs` and `umoci raw runtime-config` the bundle's
/// `config.json` from the image config (user names resolved in that rootfs) — what `umoci
/// unpack` does without the mtree manifest of the whole tree, which only `umoci repack` reads
/// and which cost a fifth of umoci's time in the suite. `bundle` must not exist yet. Returns
/// `BUNDLE/rootfs`. umoci checks every blob's digest and size, the diff_ids and media types; it
/// cannot read tarballs or zstd layers.
pub fn umoci_unpack(layout: &Path, tag: &str, bundle: &Path) -> PathBuf {
    assert_no_colon(layout, "umoci");
    if let Err(e) = std::fs::create_dir(bundle) {
        panic!("cannot create the bundle {}: {e}", bundle.display());
    }
    let image = format!("{}:{tag}", layout.display());
    let rootfs = bundle.join("rootfs");
    let umoci = |what: &str| {
        let mut c = tool("umoci", "umoci");
        c.args(["raw", what]);
        if !is_root() {
            c.arg("--rootless");
        }
        c.arg("--image").arg(&image);
        c
    };
    run_ok(umoci("unpack").arg(&rootfs));
    run_ok(
        umoci("runtime-config")
            .arg("--rootfs")
            .arg(&rootfs)
            .arg(bundle.join("config.json")),
    );
    rootfs
}

/// `oci-image-tool validate --type image --ref name=TAG LAYOUT`. Only directories: rc1 fails on
/// every tarball (extract an oci-archive first).
pub fn oci_image_tool_validate(layout: &Path, tag: &str) {
    assert!(
        layout.is_dir(),
        "oci-image-tool only validates layout directories, and {} is not one (extract an \
         oci-archive first)",
        layout.display()
    );
    let mut c = tool("oci-image-tool", "oci-image-tool");
    c.args(["validate", "--type", "image", "--ref"])
        .arg(format!("name={tag}"))
        .arg(layout);
    let out = run_ok(&mut c);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !all.contains("Validation succeeded") {
        panic!(
            "{}",
            report(
                &c,
                &out,
                "oci-image-tool exited 0 without saying `Validation succeeded`"
            )
        );
    }
}

/// True for `docker://` references to a loopback registry, which speak plain HTTP in tests.
fn is_loopback_registry(transport_ref: &str) -> bool {
    transport_ref.strip_prefix("docker://").is_some_and(|r| {
        let host = r.split(['/', ':']).next().unwrap_or("");
        host == "localhost" || host.starts_with("127.") || r.starts_with("[::1]")
    })
}

fn skopeo() -> Command {
    tool("skopeo", "skopeo")
}

fn skopeo_json(args: &[&str], transport_ref: &str) -> (Value, String) {
    let mut c = skopeo();
    c.arg("inspect").args(args);
    if is_loopback_registry(transport_ref) {
        c.arg("--tls-verify=false");
    }
    c.arg(transport_ref);
    let out = run_ok(&mut c);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    match serde_json::from_str(&text) {
        Ok(v) => (v, text),
        Err(e) => panic!(
            "{}",
            report(
                &c,
                &out,
                &format!("skopeo printed something that is not JSON ({e})")
            )
        ),
    }
}

/// `skopeo inspect --raw REF` (the manifest, returned) and `skopeo inspect REF` (which also reads
/// the config); both must succeed and print JSON. REF is a containers-image transport reference:
/// `oci:DIR:TAG`, `oci-archive:FILE:TAG`, `docker-archive:FILE[:NAME:TAG]`, `docker://…`
/// (`--tls-verify=false` is added for loopback registries).
pub fn skopeo_inspect(transport_ref: &str) -> Value {
    let (raw, _) = skopeo_json(&["--raw"], transport_ref);
    skopeo_inspect_full(transport_ref);
    raw
}

/// `skopeo inspect REF`: skopeo's summary (Digest, Layers, Env, Labels, Architecture, …).
pub fn skopeo_inspect_full(transport_ref: &str) -> Value {
    skopeo_json(&[], transport_ref).0
}

/// `skopeo inspect --config --raw REF`: the image config blob.
pub fn skopeo_inspect_config(transport_ref: &str) -> Value {
    skopeo_json(&["--config", "--raw"], transport_ref).0
}

/// `skopeo copy SRC DEST` with `--insecure-policy` (tests need no signature policy) and plain HTTP
/// for loopback registries. skopeo verifies every blob it copies against its digest.
pub fn skopeo_copy(src: &str, dest: &str) {
    let mut c = skopeo();
    c.args(["--insecure-policy", "copy", "--quiet"]);
    if is_loopback_registry(src) {
        c.arg("--src-tls-verify=false");
    }
    if is_loopback_registry(dest) {
        c.arg("--dest-tls-verify=false");
    }
    c.args([src, dest]);
    run_ok(&mut c);
}

/// `skopeo copy SRC oci:DEST_DIR:TAG`, where SRC is `oci:DIR:TAG`, `oci-archive:FILE:TAG`,
/// `docker-archive:FILE[:NAME:TAG]` (or any other transport skopeo reads).
pub fn skopeo_copy_to_layout(src_transport_ref: &str, dest_dir: &Path, tag: &str) {
    assert_no_colon(dest_dir, "skopeo");
    skopeo_copy(
        src_transport_ref,
        &format!("oci:{}:{tag}", dest_dir.display()),
    );
}

/// Run every independent validator that reads a layout directory: oci-image-tool, umoci unpack
/// (into a throw-away bundle), skopeo inspect and a skopeo copy to another layout. Returns the
/// manifest as skopeo read it.
pub fn validate_layout_with_peers(ctx: &TestContext, layout: &Path, tag: &str) -> Value {
    oci_image_tool_validate(layout, tag);
    let n = next_id();
    umoci_unpack(layout, tag, &ctx.path(format!("validate-bundle-{n}")));
    let r = format!("oci:{}:{tag}", layout.display());
    let raw = skopeo_inspect(&r);
    skopeo_copy_to_layout(&r, &ctx.path(format!("validate-copy-{n}")), tag);
    raw
}

fn next_id() -> u64 {
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

// ---------------------------------------------------------------------------------------------
// podman
// ---------------------------------------------------------------------------------------------

/// `podman` with a throw-away store under the test's temp dir (`podman/{root,run,tmp}`, vfs,
/// cgroupfs, file events, runc): the recipe that works on the project machine. The same store for
/// every call with the same context, so a load and a later run see each other's images.
pub fn podman_cmd(ctx: &TestContext) -> Command {
    let base = ctx.tmp_dir("podman");
    let mut c = tool("podman", "podman");
    c.arg("--root")
        .arg(base.join("root"))
        .arg("--runroot")
        .arg(base.join("run"))
        .arg("--tmpdir")
        .arg(base.join("tmp"))
        .args([
            "--storage-driver",
            "vfs",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
            "--runtime",
        ])
        .arg(require_tool("runc", "runc"));
    c
}

/// `podman load -i FILE` into the context's throw-away store; returns the loaded image names as
/// podman prints them (`docker.io/library/hello:v1`, or `sha256:…` for an untagged archive).
pub fn podman_load(ctx: &TestContext, docker_archive: &Path) -> Vec<String> {
    let mut c = podman_cmd(ctx);
    c.args(["load", "-i"]).arg(docker_archive);
    let out = run_ok(&mut c);
    let text = String::from_utf8_lossy(&out.stdout);
    let names: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("Loaded image"))
        .filter_map(|l| l.split_once(": "))
        .flat_map(|(_, names)| names.split(','))
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .collect();
    if names.is_empty() {
        panic!(
            "{}",
            report(&c, &out, "podman load succeeded but named no image")
        );
    }
    names
}

/// `podman run --rm` of `image` (a name in the context's store, or `oci:/abs/dir:tag`,
/// `oci-archive:…`, `docker-archive:…`) with `args` after the image, no network, and ulimits that
/// runc can set without CAP_SYS_RESOURCE. Returns (exit code, stdout, stderr).
pub fn podman_run(ctx: &TestContext, image: &str, args: &[&str]) -> (i32, String, String) {
    let (nofile_soft, nofile_hard) = limit("Max open files").unwrap_or((1024, 1024));
    let (_, nproc_hard) = limit("Max processes").unwrap_or((4096, 4096));
    // conmon's own nproc limit is 32768: asking for more fails with `rlimit type 6`.
    let nproc = nproc_hard.min(32768);
    if let Some(dir) = ["oci:", "oci-archive:"]
        .iter()
        .find_map(|t| image.strip_prefix(t))
    {
        let path = dir.split(':').next().unwrap_or(dir);
        assert!(
            !path.bytes().any(|b| b.is_ascii_uppercase()),
            "podman names an image read from `{image}` after its path, and image names must be \
             lowercase: use a lowercase path (TestContext dirs are)"
        );
    }
    let mut c = podman_cmd(ctx);
    c.args([
        "run",
        "--rm",
        "-q",
        "--network",
        "none",
        "--log-driver",
        "k8s-file",
    ])
    .arg("--ulimit")
    .arg(format!("nofile={nofile_soft}:{nofile_hard}"))
    .arg("--ulimit")
    .arg(format!("nproc={nproc}:{nproc}"))
    .arg(image)
    .args(args)
    .stdin(Stdio::null());
    let out = run(&mut c);
    (
        exit_code(out.status),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// (soft, hard) of a line of `/proc/self/limits`; `unlimited` is `u64::MAX`.
fn limit(name: &str) -> Option<(u64, u64)> {
    let text = fs::read_to_string("/proc/self/limits").ok()?;
    let rest = text.lines().find_map(|l| l.strip_prefix(name))?;
    let mut it = rest.split_whitespace().map(|v| {
        if v == "unlimited" {
            Some(u64::MAX)
        } else {
            v.parse().ok()
        }
    });
    Some((it.next()??, it.next()??))
}

// ---------------------------------------------------------------------------------------------
// runc
// ---------------------------------------------------------------------------------------------

/// Edit a umoci bundle's `config.json` for a non-interactive run: `process.terminal=false`,
/// `process.args` replaced when given, `env` entries set.
fn prepare_bundle(bundle: &Path, args_override: Option<&[&str]>, env: &[(&str, &str)]) {
    let config_path = bundle.join("config.json");
    let text = fs::read_to_string(&config_path).unwrap_or_else(|e| {
        panic!(
            "cannot read {} (is {} a bundle from umoci_unpack?): {e}",
            config_path.display(),
            bundle.display()
        )
    });
    let mut config: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", config_path.display()));
    let Some(process) = config.get_mut("process").and_then(Value::as_object_mut) else {
        panic!("{} has no `process` object", config_path.display());
    };
    process.insert("terminal".into(), Value::Bool(false));
    if !env.is_empty() {
        let mut cur: Vec<Value> = process
            .get("env")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (k, v) in env {
            let prefix = format!("{k}=");
            cur.retain(|e| !e.as_str().is_some_and(|s| s.starts_with(&prefix)));
            cur.push(Value::String(format!("{k}={v}")));
        }
        process.insert("env".into(), Value::Array(cur));
    }
    if let Some(args) = args_override {
        process.insert(
            "args".into(),
            Value::Array(args.iter().map(|a| Value::String(a.to_string())).collect()),
        );
    }
    let bytes = serde_json::to_vec_pretty(&config)
        .unwrap_or_else(|e| panic!("cannot serialise the edited config.json: {e}"));
    fs::write(&config_path, bytes)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", config_path.display()));
}

/// Run the bundle that [`umoci_unpack`] made with `runc run`, stdin empty, and return (exit code,
/// stdout, stderr). `config.json` is edited first: `process.terminal=false` (umoci's `true` fails
/// without a tty) and, when given, `process.args` replaced. runc's state lives in a private temp
/// dir and the container is deleted afterwards. Needs root: panics naming the test otherwise.
pub fn runc_run(bundle: &Path, args_override: Option<&[&str]>) -> (i32, String, String) {
    if !is_root() {
        let test = std::thread::current()
            .name()
            .unwrap_or("<unnamed>")
            .to_string();
        panic!(
            "test `{test}` runs an image with runc, which needs root: run the tests as root \
             (`./scripts/test.sh` as root; CI does); this test never skips"
        );
    }
    let runc = require_tool("runc", "runc");
    prepare_bundle(bundle, args_override, &[]);

    let state = tempfile::Builder::new()
        .prefix("ocibuild-runc-")
        .tempdir()
        .unwrap_or_else(|e| panic!("cannot create a runc state dir: {e}"));
    let id = format!("ocibuild-test-{}-{}", std::process::id(), next_id());
    let attempt = |no_pivot: bool| {
        let mut c = Command::new(&runc);
        c.arg("--root").arg(state.path()).arg("run");
        if no_pivot {
            // pivot_root is refused when the rootfs lives on the initramfs
            c.arg("--no-pivot");
        }
        c.arg("--bundle").arg(bundle).arg(&id).stdin(Stdio::null());
        let out = run(&mut c);
        let _ = Command::new(&runc)
            .arg("--root")
            .arg(state.path())
            .args(["delete", "--force", &id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        out
    };
    let mut out = attempt(false);
    if !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("pivot_root") {
        out = attempt(true);
    }
    (
        exit_code(out.status),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Start the bundle's entrypoint as a server with runc (in its own network namespace, loopback
/// brought up with `ip` through `nsenter`), GET `http://127.0.0.1:PORT{path}` from inside that
/// namespace with curl (which retries until the server listens, up to 60 s), then kill and delete
/// the container. Returns the response body; panics with the server's output when the request
/// fails. Needs root, runc, nsenter (util-linux), ip (iproute2) and curl.
pub fn runc_http_get(bundle: &Path, env: &[(&str, &str)], port: u16, path: &str) -> String {
    assert!(
        is_root(),
        "runc_http_get runs an image with runc, which needs root: run the tests as root"
    );
    let runc = require_tool("runc", "runc");
    let nsenter = require_tool("nsenter", "util-linux");
    let ip = require_tool("ip", "iproute2");
    let curl = require_tool("curl", "curl");
    prepare_bundle(bundle, None, env);
    let state = tempfile::Builder::new()
        .prefix("ocibuild-runc-")
        .tempdir()
        .unwrap_or_else(|e| panic!("cannot create a runc state dir: {e}"));
    let id = format!("ocibuild-serve-{}-{}", std::process::id(), next_id());
    let log = state.path().join("server.log");
    let logf =
        fs::File::create(&log).unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
    let runc_cmd = |args: &[&str]| {
        let mut c = Command::new(&runc);
        c.arg("--root").arg(state.path()).args(args);
        c
    };
    let mut create = runc_cmd(&["create", "--bundle"]);
    create.arg(bundle).arg(&id).stdin(Stdio::null());
    create.stdout(logf.try_clone().unwrap_or_else(|e| panic!("{e}")));
    create.stderr(logf);
    let created = run(&mut create);
    let cleanup = || {
        let _ = runc_cmd(&["delete", "--force", &id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    };
    if !created.status.success() {
        cleanup();
        panic!(
            "runc create failed: {}",
            fs::read_to_string(&log).unwrap_or_default()
        );
    }
    let st = run(runc_cmd(&["state", &id]).stdin(Stdio::null()));
    let pid = serde_json::from_slice::<Value>(&st.stdout)
        .ok()
        .and_then(|v| v["pid"].as_u64())
        .unwrap_or_else(|| {
            cleanup();
            panic!("runc state {id}: {}", String::from_utf8_lossy(&st.stdout))
        });
    let pid = pid.to_string();
    let up = run(Command::new(&nsenter)
        .args(["-t", &pid, "-n"])
        .arg(&ip)
        .args(["link", "set", "lo", "up"]));
    let started = run(runc_cmd(&["start", &id]).stdin(Stdio::null()));
    let url = format!("http://127.0.0.1:{port}{path}");
    let got = run(Command::new(&nsenter)
        .args(["-t", &pid, "-n"])
        .arg(&curl)
        .args([
            "-sS",
            "--fail",
            "--retry",
            "60",
            "--retry-connrefused",
            "--retry-delay",
            "1",
            "--retry-max-time",
            "60",
            "--max-time",
            "90",
            &url,
        ]));
    let _ = runc_cmd(&["kill", &id, "KILL"])
        .stdin(Stdio::null())
        .status();
    cleanup();
    if !up.status.success() || !started.status.success() || !got.status.success() {
        panic!(
            "GET {url} in the container failed:\nip: {}\nrunc start: {}\ncurl: {}\n--- server output ---\n{}",
            String::from_utf8_lossy(&up.stderr),
            String::from_utf8_lossy(&started.stderr),
            String::from_utf8_lossy(&got.stderr),
            fs::read_to_string(&log).unwrap_or_default()
        );
    }
    String::from_utf8_lossy(&got.stdout).into_owned()
}

// ---------------------------------------------------------------------------------------------
// busybox
// ---------------------------------------------------------------------------------------------

/// Debian's busybox-static: a statically linked `/bin/busybox` (checked: an ELF without a
/// `PT_INTERP` program header), to put into test images. Panics with the package to install when
/// it is missing or dynamically linked (Debian's plain `busybox` package).
pub fn busybox_static() -> PathBuf {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = FOUND.get_or_init(|| {
        let candidates = ["/bin/busybox", "/usr/bin/busybox"];
        let Some(p) = candidates.iter().map(Path::new).find(|p| p.is_file()) else {
            return Err(missing_tool_message("busybox", "busybox-static"));
        };
        match is_static_elf(p) {
            Ok(true) => Ok(p.to_path_buf()),
            Ok(false) => Err(format!(
                "{} is dynamically linked (Debian's `busybox` package); test images need the \
                 static one: run `apt-get install busybox-static`; this test never skips",
                p.display()
            )),
            Err(e) => Err(format!(
                "{} is not usable ({e}): run `apt-get install --reinstall busybox-static`",
                p.display()
            )),
        }
    });
    match found {
        Ok(p) => p.clone(),
        Err(msg) => panic!("{msg}"),
    }
}

/// Whether `path` is an ELF executable with no program interpreter (`PT_INTERP`), i.e. statically
/// linked (static-pie included). Errors when it is not an ELF file at all.
pub fn is_static_elf(path: &Path) -> Result<bool, String> {
    let mut f = fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)
        .map_err(|e| format!("cannot read: {e}"))?;
    elf_has_no_interp(&buf)
}

fn elf_has_no_interp(b: &[u8]) -> Result<bool, String> {
    const PT_INTERP: u32 = 3;
    if b.len() < 52 || &b[..4] != b"\x7fELF" {
        return Err("not an ELF file".into());
    }
    let little = match b[5] {
        1 => true,
        2 => false,
        x => return Err(format!("bad ELF data encoding {x}")),
    };
    let at = |off: usize, len: usize| -> Result<u64, String> {
        let s = b
            .get(off..off + len)
            .ok_or_else(|| format!("truncated ELF header at offset {off}"))?;
        let mut v = 0u64;
        for i in 0..len {
            let byte = if little { s[len - 1 - i] } else { s[i] };
            v = (v << 8) | u64::from(byte);
        }
        Ok(v)
    };
    let (phoff, phentsize, phnum) = match b[4] {
        1 => (at(0x1c, 4)?, at(0x2a, 2)?, at(0x2c, 2)?),
        2 => (at(0x20, 8)?, at(0x36, 2)?, at(0x38, 2)?),
        x => return Err(format!("bad ELF class {x}")),
    };
    if phnum == 0 {
        return Err("the ELF file has no program headers (not an executable)".into());
    }
    let to_usize = |v: u64| usize::try_from(v).map_err(|_| "ELF offset out of range".to_string());
    for i in 0..to_usize(phnum)? {
        let off = to_usize(phoff)? + i * to_usize(phentsize)?;
        if at(off, 4)? == u64::from(PT_INTERP) {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::panic::{AssertUnwindSafe, catch_unwind};

    fn panic_message(f: impl FnOnce()) -> String {
        let err = catch_unwind(AssertUnwindSafe(f)).expect_err("should have panicked");
        if let Some(s) = err.downcast_ref::<String>() {
            s.clone()
        } else if let Some(s) = err.downcast_ref::<&str>() {
            s.to_string()
        } else {
            "<non-string panic>".into()
        }
    }

    #[test]
    fn require_tool_finds_and_refuses() {
        assert!(require_tool("sh", "dash").is_absolute());
        let msg = panic_message(|| {
            require_tool("ocibuild-no-such-tool", "no-such-pkg");
        });
        assert_eq!(
            msg,
            "peer tool `ocibuild-no-such-tool` is not installed: run `apt-get install no-such-pkg` \
             (or the README's setup command, `./scripts/setup.sh` as root); this test never skips"
        );
    }

    #[test]
    fn context_paths_and_cleanup() {
        let ctx = TestContext::new();
        let dir = ctx.dir().to_path_buf();
        assert!(dir.is_dir());
        let f = ctx.path("a/b/file");
        assert!(f.parent().unwrap().is_dir() && !f.exists());
        fs::write(&f, "x").unwrap();
        assert_eq!(ctx.root_dir(), ctx.root_dir());
        assert!(ctx.root_dir().is_dir());
        let t = ctx.tmp_dir("t/u");
        assert!(t.is_dir() && t.starts_with(&dir));
        // a read-only dir with content, as a rootless unpack leaves behind
        let ro = ctx.tmp_dir("ro/inner");
        fs::write(ro.join("f"), "x").unwrap();
        fs::set_permissions(&ro, fs::Permissions::from_mode(0o500)).unwrap();
        fs::set_permissions(ro.parent().unwrap(), fs::Permissions::from_mode(0o500)).unwrap();

        let other = TestContext::new();
        assert_ne!(other.dir(), ctx.dir());
        drop(ctx);
        assert!(!dir.exists(), "{} should be gone", dir.display());
    }

    #[test]
    fn context_path_must_be_relative() {
        let ctx = TestContext::new();
        let msg = panic_message(|| {
            ctx.path("/etc");
        });
        assert!(msg.contains("relative path"), "{msg}");
    }

    #[test]
    fn run_helpers_report_everything() {
        let mut c = Command::new("sh");
        c.args(["-c", "echo out; echo err >&2; exit 3"])
            .env("K", "v w");
        let msg = panic_message(|| {
            run_ok(&mut c);
        });
        assert!(msg.contains("exit code 3"), "{msg}");
        assert!(
            msg.contains("K='v w' sh -c 'echo out; echo err >&2; exit 3'"),
            "{msg}"
        );
        assert!(
            msg.contains("--- stdout ---\nout\n--- stderr ---\nerr\n"),
            "{msg}"
        );

        assert_eq!(run_fail(&mut c), "err\n");
        let msg = panic_message(|| {
            run_fail(Command::new("true").arg("x"));
        });
        assert!(
            msg.contains("should have failed") && msg.contains("true x"),
            "{msg}"
        );

        assert_eq!(run_ok_stdout(Command::new("echo").arg("hi")), "hi\n");
        let msg = panic_message(|| {
            run(&mut Command::new("/nonexistent/prog"));
        });
        assert!(msg.contains("cannot run `/nonexistent/prog`"), "{msg}");

        let out = run(Command::new("sh").args(["-c", "kill -9 $$"]));
        assert_eq!(exit_code(out.status), 137);
    }

    #[test]
    fn command_lines_are_quoted() {
        let mut c = Command::new("skopeo");
        c.args(["copy", "oci:/a b:t", "it's", ""])
            .env_remove("X")
            .current_dir("/tmp");
        assert_eq!(
            command_line(&c),
            r#"(cd /tmp && env -u X skopeo copy 'oci:/a b:t' 'it'\''s' '')"#
        );
    }

    #[test]
    fn ocibuild_bin_is_next_to_the_deps_dir() {
        assert_eq!(
            profile_bin(Path::new("/t/target/debug/deps/e2e-1234"), "ocibuild"),
            PathBuf::from("/t/target/debug/ocibuild")
        );
        assert_eq!(
            profile_bin(Path::new("/t/target/release/examples/x"), "ocibuild"),
            PathBuf::from("/t/target/release/ocibuild")
        );
        assert_eq!(
            profile_bin(Path::new("/t/target/release/bench"), "ocibuild"),
            PathBuf::from("/t/target/release/ocibuild")
        );
    }

    #[test]
    fn static_elf_detection() {
        assert!(is_static_elf(&busybox_static()).unwrap());
        // the test binary itself is dynamically linked against libc
        assert!(!is_static_elf(&std::env::current_exe().unwrap()).unwrap());
        let ctx = TestContext::new();
        let f = ctx.path("not-elf");
        fs::write(&f, "#!/bin/sh\n").unwrap();
        assert!(is_static_elf(&f).unwrap_err().contains("not an ELF"));
        let mut truncated = fs::read(busybox_static()).unwrap();
        truncated.truncate(60);
        assert!(elf_has_no_interp(&truncated).is_err());
    }

    #[test]
    fn loopback_registries_are_plain_http() {
        assert!(is_loopback_registry("docker://localhost:5000/a:b"));
        assert!(is_loopback_registry("docker://127.0.0.1:5000/a"));
        assert!(!is_loopback_registry("docker://ghcr.io/a"));
        assert!(!is_loopback_registry("oci:/localhost:x"));
    }

    #[test]
    fn limits_are_read() {
        let (soft, hard) = limit("Max open files").unwrap();
        assert!(soft <= hard && soft > 0);
    }
}
