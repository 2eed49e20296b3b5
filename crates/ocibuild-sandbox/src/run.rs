//! Run one build step in a sandbox.
//!
//! ```text
//! run() ──spawn──▶ helper MODE_RUN (stage 1)            host pid/mount namespaces
//!                    unshare(USER*|MNT|PID|IPC|UTS|NET†), uid/gid maps*
//!                    ──spawn──▶ helper MODE_INIT (stage 2) = PID 1 of the new pid namespace
//!                                 mounts (overlay/copy, /proc, /dev, /tmp, …), pivot_root,
//!                                 hostname, rlimits, no_new_privs, Docker's default caps,
//!                                 seccomp deny-list ──spawn──▶ the step; reap; exit(status)
//! ```
//! `*` userns tier only; `†` unless `Network::Host`.
//!
//! The spec goes to the helpers as a JSON file (mode 0600) in a private state dir, never on the
//! command line (env values may be secrets). Stage 2 sends its setup report and errors to
//! stage 1 through its stdin (a socket), and stage 1 writes them to the state dir; the step's
//! exit status is the helpers' exit status (128+signal when the step was killed).
//!
//! The boundary (runc's CVE-2019-5736 and CVE-2024-21626): PID 1 of the step's namespaces is
//! stage 2, and nothing in its `/proc/1` leads to the host. It runs from a sealed in-memory
//! copy of the binary (memfd, made once per process), it is not dumpable (the step, without
//! CAP_SYS_PTRACE, cannot open its `exe`, `fd/*`, `map_files/*`, `root`, `maps`), and it holds
//! no descriptor of a host file while the step runs (it closes what it inherited; its stdin
//! is a socket to stage 1, its stdout/stderr are the step's).
//! Stage 2 and stage 1 die with their parent (`PR_SET_PDEATHSIG` = SIGKILL), and when PID 1 of
//! a pid namespace dies the kernel kills every process in it: a timeout, or the caller dying,
//! takes the whole tree down. Mounts die with the mount namespace.
//!
//! Tiers:
//! - [`Tier::Userns`]: everything above, uid/gid 0 inside mapped to the invoking user (one id;
//!   subuid ranges through newuidmap are not used yet).
//! - [`Tier::Chroot`]: already root without user namespaces (an unprivileged pod): the same
//!   without `CLONE_NEWUSER` and the id maps.
//! - [`Tier::Host`]: **NO ISOLATION AT ALL**: the step runs directly on the host, with the env
//!   and cwd given (the cwd is a host path); the rootfs, mounts, network and hostname settings
//!   are ignored and nothing lands in `upper`. Only for when the caller asked for it.

use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Result, SandboxError};
use crate::helper::{MODE_INIT, MODE_RUN, helper_exe};
use crate::mounts::{self, MountPlan, SetupReport};
use crate::syscall::{LinuxSyscall, Syscall};

/// The isolation tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Unprivileged user namespace + mount/pid/ipc/uts(/net) namespaces, pivot_root.
    Userns,
    /// Root without user namespaces: mount/pid/ipc/uts(/net) namespaces, pivot_root.
    Chroot,
    /// No isolation.
    Host,
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tier::Userns => "userns",
            Tier::Chroot => "chroot",
            Tier::Host => "host",
        })
    }
}

impl FromStr for Tier {
    type Err = SandboxError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "userns" => Ok(Tier::Userns),
            "chroot" => Ok(Tier::Chroot),
            "host" => Ok(Tier::Host),
            _ => Err(SandboxError::Spec(format!(
                "unknown isolation tier `{s}` (expected userns, chroot or host)"
            ))),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// A new, empty network namespace (loopback down).
    #[default]
    None,
    /// The host's network (and its /etc/resolv.conf and /etc/hosts, read-only).
    Host,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RootfsSource {
    /// Lower layers as directories, first = lowest. Read-only: never modified.
    Dirs(Vec<PathBuf>),
}

impl Default for RootfsSource {
    fn default() -> Self {
        RootfsSource::Dirs(Vec::new())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mount {
    /// A host path (absolute, no `..`) bound at `dest` inside.
    Bind {
        src: PathBuf,
        dest: String,
        readonly: bool,
    },
    /// A fresh tmpfs at `dest`.
    Tmpfs { dest: String },
    /// A persistent cache dir (created if missing), bound read-write.
    Cache { src: PathBuf, dest: String },
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Spec {
    pub rootfs: RootfsSource,
    /// An empty dir the caller owns; receives the step's changes (overlay upper dir, or an
    /// OCI-style diff with `.wh.` whiteouts when overlayfs was refused: see [`Outcome::overlay`]).
    pub upper: PathBuf,
    pub mounts: Vec<Mount>,
    /// The step's whole environment (nothing is inherited).
    pub env: Vec<(String, String)>,
    /// Working dir inside the rootfs (created if missing); `""` = `/`.
    pub cwd: String,
    /// "uid:gid", "uid", "name", "name:group" (names from the rootfs's /etc/passwd, /etc/group).
    pub user: Option<String>,
    pub args: Vec<String>,
    pub network: Network,
    pub timeout: Option<Duration>,
    /// Default "ocibuild".
    pub hostname: Option<String>,
    /// Capture stdout/stderr into the [`Outcome`]; else they are inherited.
    pub capture: bool,
    /// The helper binary to re-execute (None = [`helper_exe`]).
    pub helper: Option<PathBuf>,
    /// Do not try overlayfs: copy the lower dirs and diff (tests, and hosts with broken overlay).
    pub force_copy: bool,
    /// Keep the rootfs's own `/tmp` (its changes land in `upper`) instead of a fresh tmpfs.
    pub keep_tmp: bool,
}

#[derive(Clone, Debug)]
pub struct Outcome {
    /// The step's exit code; 128+signal when it was killed by a signal.
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub tier: Tier,
    pub upper: PathBuf,
    /// `upper` is an overlayfs upper dir (whiteouts are 0/0 char devices, opaque dirs carry
    /// the `(trusted|user).overlay.opaque` xattr); false = an OCI-style diff (`.wh.<name>` files)
    /// computed from a copy. Always false for [`Tier::Host`] (nothing captured).
    pub overlay: bool,
    /// How the sandbox was set up (pivot_root or chroot, fallbacks taken).
    pub notes: Vec<String>,
}

/// What the helpers get (JSON file).
#[derive(Debug, Serialize, Deserialize)]
struct HelperSpec {
    tier: Tier,
    state_dir: PathBuf,
    plan: MountPlan,
    env: Vec<(String, String)>,
    cwd: String,
    uid: u32,
    gid: u32,
    args: Vec<String>,
    /// The sealed in-memory copy of the helper binary stage 1 runs the init from
    /// (`/proc/<caller pid>/fd/<memfd>`); None when it could not be made ([`Self::init_note`]).
    #[serde(default)]
    init_exe: Option<PathBuf>,
    #[serde(default)]
    init_note: Option<String>,
}

/// What the init (stage 2) sends stage 1 through its stdin socket: the setup report once the
/// sandbox is ready, an error when the setup or the step's spawn failed. One JSON per line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum InitMessage {
    Report(SetupReport),
    Error(ErrorRepr),
}

#[derive(Debug, Serialize, Deserialize)]
struct ErrorRepr {
    kind: String,
    what: String,
    cause: String,
    fix: Option<String>,
}

impl From<&SandboxError> for ErrorRepr {
    fn from(e: &SandboxError) -> Self {
        match e {
            SandboxError::Refused { what, cause, fix } => ErrorRepr {
                kind: "refused".into(),
                what: what.clone(),
                cause: cause.clone(),
                fix: fix.clone(),
            },
            SandboxError::Spec(s) => ErrorRepr {
                kind: "spec".into(),
                what: s.clone(),
                cause: String::new(),
                fix: None,
            },
            other => ErrorRepr {
                kind: "helper".into(),
                what: other.to_string(),
                cause: String::new(),
                fix: None,
            },
        }
    }
}

impl From<ErrorRepr> for SandboxError {
    fn from(r: ErrorRepr) -> Self {
        match r.kind.as_str() {
            "refused" => SandboxError::Refused {
                what: r.what,
                cause: r.cause,
                fix: r.fix,
            },
            "spec" => SandboxError::Spec(r.what),
            _ => SandboxError::Helper(r.what),
        }
    }
}

const ERROR_FILE: &str = "error.json";
const REPORT_FILE: &str = "report.json";
const INIT_PID_FILE: &str = "init.pid";
const SPEC_FILE: &str = "spec.json";
/// Exit code of a helper whose setup failed (the error is in the state dir).
const SETUP_FAILED: i32 = 125;
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Run `spec` in `tier`. Setup failures are errors (with the fix when the host refused
/// something); the step's own failure is a non-zero [`Outcome::status`]. A timeout kills every
/// process of the step and returns [`SandboxError::Timeout`].
pub fn run(spec: &Spec, tier: Tier) -> Result<Outcome> {
    run_streaming(spec, tier, &mut |_, _| {})
}

/// Which of a step's outputs a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// The longest line handed to an `on_line` callback; the rest of a longer line is cut (the
/// [`Outcome`] still has all of it).
pub const MAX_LINE: usize = 4096;

/// [`run`], calling `on_line` with every line the step prints (with [`Spec::capture`]) as soon
/// as it is printed, on the calling thread, while the step still runs: a long step's last
/// output line can be shown before it ends. Lines end at `\n` or `\r` (progress meters);
/// empty lines are skipped; invalid UTF-8 is replaced. The [`Outcome`] has the whole output.
pub fn run_streaming(
    spec: &Spec,
    tier: Tier,
    on_line: &mut dyn FnMut(Stream, &str),
) -> Result<Outcome> {
    if spec.args.is_empty() {
        return Err(SandboxError::Spec("no command to run".into()));
    }
    for m in &spec.mounts {
        match m {
            Mount::Bind { src, dest, .. } | Mount::Cache { src, dest } => {
                mounts::check_bind_source(src)?;
                mounts::check_dest(dest)?;
            }
            Mount::Tmpfs { dest } => {
                mounts::check_dest(dest)?;
            }
        }
    }
    if tier == Tier::Host {
        return run_host(spec, on_line);
    }
    let RootfsSource::Dirs(lowers) = &spec.rootfs;
    if lowers.is_empty() {
        return Err(SandboxError::Spec("the rootfs has no layers".into()));
    }
    for l in lowers {
        if !l.is_absolute() || !l.is_dir() {
            return Err(SandboxError::Spec(format!(
                "rootfs layer {} is not an absolute path to a dir",
                l.display()
            )));
        }
    }
    if !spec.upper.is_absolute() || !spec.upper.is_dir() {
        return Err(SandboxError::Spec(format!(
            "upper {} is not an absolute path to a dir",
            spec.upper.display()
        )));
    }
    for m in &spec.mounts {
        if let Mount::Cache { src, .. } = m {
            fs::create_dir_all(src).map_err(SandboxError::io(format!(
                "create cache dir {}",
                src.display()
            )))?;
        }
    }
    let (uid, gid) = resolve_user(lowers, spec.user.as_deref())?;
    let exe = match &spec.helper {
        Some(p) => p.clone(),
        None => helper_exe().map_err(SandboxError::io("find the sandbox helper executable"))?,
    };
    let (init_exe, init_note) = match sealed_copy(&exe) {
        Ok(p) => (Some(p), None),
        Err(e) => (
            None,
            Some(format!(
                "the sandbox init runs from {} itself, not from a sealed in-memory copy ({e})",
                exe.display()
            )),
        ),
    };

    // Private state dir next to `upper` (the overlay work dir must be on the same filesystem).
    let state = upper_sibling_tempdir(&spec.upper)?;
    let state_dir = state.path.clone();
    let mk = |n: &str| -> Result<PathBuf> {
        let p = state_dir.join(n);
        fs::create_dir(&p).map_err(SandboxError::io(format!("create {}", p.display())))?;
        Ok(p)
    };
    let plan = MountPlan {
        root: mk("root")?,
        lowers: lowers.clone(),
        upper: spec.upper.clone(),
        work: mk("work")?,
        copy_dir: mk("copy")?,
        init_dir: mk("init")?,
        force_copy: spec.force_copy,
        userns: tier == Tier::Userns,
        network: spec.network,
        mounts: spec.mounts.clone(),
        hostname: spec.hostname.clone().unwrap_or_else(|| "ocibuild".into()),
        keep_tmp: spec.keep_tmp,
    };
    let hs = HelperSpec {
        tier,
        state_dir: state_dir.clone(),
        plan,
        env: spec.env.clone(),
        cwd: if spec.cwd.is_empty() {
            "/".into()
        } else {
            spec.cwd.clone()
        },
        uid,
        gid,
        args: spec.args.clone(),
        init_exe,
        init_note,
    };
    let spec_path = state_dir.join(SPEC_FILE);
    let json = serde_json::to_vec(&hs)
        .map_err(|e| SandboxError::Helper(format!("encode the spec: {e}")))?;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&spec_path)
        .and_then(|mut f| f.write_all(&json))
        .map_err(SandboxError::io(format!("write {}", spec_path.display())))?;

    let mut cmd = Command::new(&exe);
    cmd.arg(MODE_RUN)
        .arg(&spec_path)
        .env_clear()
        .stdin(Stdio::piped());
    let (status, stdout, stderr, timed_out) =
        spawn_and_wait(cmd, spec.capture, spec.timeout, Some(&state_dir), on_line)?;

    if let Ok(b) = fs::read(state_dir.join(ERROR_FILE))
        && let Ok(r) = serde_json::from_slice::<ErrorRepr>(&b)
    {
        return Err(r.into());
    }
    if timed_out {
        return Err(SandboxError::Timeout {
            secs: spec.timeout.map_or(0, |t| t.as_secs()),
        });
    }
    let report: SetupReport = fs::read(state_dir.join(REPORT_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| {
            SandboxError::Helper(format!(
                "the sandbox helper {} exited with status {status} before setting up the sandbox{}",
                exe.display(),
                if stderr.is_empty() {
                    String::new()
                } else {
                    format!(": {}", String::from_utf8_lossy(&stderr).trim())
                }
            ))
        })?;
    if report.overlay {
        mounts::remove_created(&spec.upper, &report.created);
    } else {
        mounts::diff_into_upper(lowers, &hs.plan.copy_dir, &spec.upper, &report.created).map_err(
            SandboxError::io("compute the step's changes from the copied rootfs"),
        )?;
    }
    drop(state);
    Ok(Outcome {
        status,
        stdout,
        stderr,
        tier,
        upper: spec.upper.clone(),
        overlay: report.overlay,
        notes: report.notes,
    })
}

/// A temp dir removed (even with overlayfs's mode-000 work dir inside) when dropped.
struct StateDir {
    path: PathBuf,
}

impl Drop for StateDir {
    fn drop(&mut self) {
        let _ = mounts::remove_tree(&self.path);
    }
}

/// A sealed in-memory copy of `exe` (memfd, sealed against writes, growing, shrinking and
/// further sealing), made once per process and kept open (close-on-exec) for its lifetime; the
/// path stage 1 opens it by. The sandbox's init runs from it, as runc's init does
/// (CVE-2019-5736): its `/proc/1/exe` is the memfd, never the binary on the host.
fn sealed_copy(exe: &Path) -> std::io::Result<PathBuf> {
    use std::os::fd::{AsRawFd, OwnedFd};
    use std::sync::{Mutex, OnceLock};
    static COPIES: OnceLock<Mutex<Vec<(PathBuf, OwnedFd)>>> = OnceLock::new();
    let mut copies = COPIES
        .get_or_init(Default::default)
        .lock()
        .map_err(|_| std::io::Error::other("the sealed copies' lock is poisoned"))?;
    let raw = match copies.iter().find(|(p, _)| p == exe) {
        Some((_, fd)) => fd.as_raw_fd(),
        None => {
            let fd = make_sealed_copy(exe)?;
            let raw = fd.as_raw_fd();
            copies.push((exe.to_path_buf(), fd));
            raw
        }
    };
    Ok(PathBuf::from(format!(
        "/proc/{}/fd/{raw}",
        std::process::id()
    )))
}

/// The seals of a sandbox init's memfd.
fn init_seals() -> nix::fcntl::SealFlag {
    use nix::fcntl::SealFlag;
    SealFlag::F_SEAL_SEAL | SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_WRITE
}

fn make_sealed_copy(exe: &Path) -> std::io::Result<std::os::fd::OwnedFd> {
    use nix::fcntl::{FcntlArg, fcntl};
    use nix::sys::memfd::{MFdFlags, memfd_create};
    let fd = memfd_create(
        "ocibuild-sandbox-init",
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )?;
    let mut copy = fs::File::from(fd);
    let mut src = fs::File::open(exe)?;
    std::io::copy(&mut src, &mut copy)?;
    fcntl(&copy, FcntlArg::F_ADD_SEALS(init_seals()))?;
    Ok(copy.into())
}

/// State dirs are named `.ocibuild-sandbox-<pid>-XXXXXX` after the process that made them, so a
/// later run can remove the ones whose process is gone (killed before its cleanup ran).
fn sweep_stale_state_dirs(dir: &Path) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| {
            n.strip_prefix(".ocibuild-sandbox-")
                .or_else(|| n.strip_prefix("ocibuild-sandbox-"))
        }) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = mounts::remove_tree(&e.path());
        }
    }
}

fn upper_sibling_tempdir(upper: &Path) -> Result<StateDir> {
    let parent = upper
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    sweep_stale_state_dirs(&parent);
    sweep_stale_state_dirs(&std::env::temp_dir());
    let pid = std::process::id();
    let td = tempfile::Builder::new()
        .prefix(&format!(".ocibuild-sandbox-{pid}-"))
        .tempdir_in(&parent)
        .or_else(|_| {
            tempfile::Builder::new()
                .prefix(&format!("ocibuild-sandbox-{pid}-"))
                .tempdir()
        })
        .map_err(SandboxError::io("create the sandbox's state dir"))?;
    Ok(StateDir { path: td.keep() })
}

/// Spawn, collect output, enforce the timeout. Returns (status, stdout, stderr, timed_out).
fn spawn_and_wait(
    mut cmd: Command,
    capture: bool,
    timeout: Option<Duration>,
    state_dir: Option<&Path>,
    on_line: &mut dyn FnMut(Stream, &str),
) -> Result<(i32, Vec<u8>, Vec<u8>, bool)> {
    if capture {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    }
    let mut child = cmd
        .spawn()
        .map_err(SandboxError::io(format!("spawn {:?}", cmd.get_program())))?;
    // Keep stdin open: the helper watches it to notice if we die before its death signal is set.
    let _stdin = child.stdin.take();
    // Each reader keeps all it reads and sends every complete line to this thread, which hands
    // them to `on_line` while it waits for the step.
    let (line_tx, line_rx) = std::sync::mpsc::channel::<(Stream, String)>();
    let reader = |r: Option<Box<dyn Read + Send>>, which: Stream| {
        let tx = line_tx.clone();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let mut chunk = [0u8; 8192];
                let mut line_start = 0;
                loop {
                    let n = match r.read(&mut chunk) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(_) => break,
                    };
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(i) = buf[line_start..]
                        .iter()
                        .position(|b| *b == b'\n' || *b == b'\r')
                    {
                        send_line(&tx, which, &buf[line_start..line_start + i]);
                        line_start += i + 1;
                    }
                }
                send_line(&tx, which, &buf[line_start.min(buf.len())..]);
            }
            buf
        })
    };
    let out_t = reader(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        Stream::Stdout,
    );
    let err_t = reader(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        Stream::Stderr,
    );
    drop(line_tx);
    let start = Instant::now();
    let mut timed_out = false;
    let status = loop {
        match child
            .try_wait()
            .map_err(SandboxError::io("wait for the sandbox"))?
        {
            Some(st) => break st,
            None => {
                if let Some(t) = timeout
                    && start.elapsed() >= t
                {
                    timed_out = true;
                    // PID 1 of the namespace first (host pid from stage 1), then stage 1; stage 2
                    // also dies with stage 1 (PDEATHSIG), and the kernel then kills the rest.
                    if let Some(pid) = state_dir
                        .and_then(|d| fs::read_to_string(d.join(INIT_PID_FILE)).ok())
                        .and_then(|s| s.trim().parse::<i32>().ok())
                    {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                    if state_dir.is_none() {
                        // Host tier: the step leads its own process group.
                        let _ = nix::sys::signal::killpg(
                            nix::unistd::Pid::from_raw(child.id() as i32),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                    let _ = child.kill();
                    break child
                        .wait()
                        .map_err(SandboxError::io("wait for the sandbox"))?;
                }
                // wait for output (shown at once) or 10 ms, then look at the step again
                if let Ok((which, line)) = line_rx.recv_timeout(Duration::from_millis(10)) {
                    on_line(which, &line);
                }
                while let Ok((which, line)) = line_rx.try_recv() {
                    on_line(which, &line);
                }
            }
        }
    };
    let stdout = out_t.join().unwrap_or_default();
    let stderr = err_t.join().unwrap_or_default();
    // the lines the step printed just before it ended
    while let Ok((which, line)) = line_rx.try_recv() {
        on_line(which, &line);
    }
    Ok((exit_code(status), stdout, stderr, timed_out))
}

/// Send one line (cut at [`MAX_LINE`] bytes) unless it is empty.
fn send_line(tx: &std::sync::mpsc::Sender<(Stream, String)>, which: Stream, bytes: &[u8]) {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    let cut = &bytes[..bytes.len().min(MAX_LINE)];
    let _ = tx.send((which, String::from_utf8_lossy(cut).into_owned()));
}

fn exit_code(st: std::process::ExitStatus) -> i32 {
    st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0))
}

/// [`Tier::Host`]: no isolation whatsoever.
fn run_host(spec: &Spec, on_line: &mut dyn FnMut(Stream, &str)) -> Result<Outcome> {
    let mut cmd = Command::new(&spec.args[0]);
    cmd.args(&spec.args[1..])
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .process_group(0);
    if !spec.cwd.is_empty() {
        cmd.current_dir(&spec.cwd);
    }
    if let Some(u) = &spec.user {
        let (uid, gid) = parse_numeric_user(u).ok_or_else(|| {
            SandboxError::Spec(format!("host tier: user `{u}` must be numeric (uid[:gid])"))
        })?;
        cmd.uid(uid).gid(gid);
    }
    let (status, stdout, stderr, timed_out) =
        spawn_and_wait(cmd, spec.capture, spec.timeout, None, on_line)?;
    if timed_out {
        return Err(SandboxError::Timeout {
            secs: spec.timeout.map_or(0, |t| t.as_secs()),
        });
    }
    Ok(Outcome {
        status,
        stdout,
        stderr,
        tier: Tier::Host,
        upper: spec.upper.clone(),
        overlay: false,
        notes: vec!["NO ISOLATION: the step ran directly on the host".into()],
    })
}

fn parse_numeric_user(u: &str) -> Option<(u32, u32)> {
    let (a, b) = u.split_once(':').unwrap_or((u, "0"));
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// The uid/gid for `user`, names looked up in the top-most layer holding /etc/passwd
/// (/etc/group). Docker's rules: "uid" alone gets the passwd entry's gid, else 0.
pub fn resolve_user(lowers: &[PathBuf], user: Option<&str>) -> Result<(u32, u32)> {
    let Some(user) = user.filter(|u| !u.is_empty()) else {
        return Ok((0, 0));
    };
    let read = |name: &str| -> String {
        lowers
            .iter()
            .rev()
            .find_map(|l| fs::read_to_string(l.join("etc").join(name)).ok())
            .unwrap_or_default()
    };
    let passwd = read("passwd");
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let pw = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 4 && (f[0] == u || (u.parse::<u32>().is_ok() && f[2] == u)));
    let uid = match u.parse::<u32>() {
        Ok(n) => n,
        Err(_) => pw.as_ref().and_then(|f| f[2].parse().ok()).ok_or_else(|| {
            SandboxError::Spec(format!("user `{u}` not found in the rootfs's /etc/passwd"))
        })?,
    };
    let gid = match g {
        None => pw.as_ref().and_then(|f| f[3].parse().ok()).unwrap_or(0),
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => read("group")
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() >= 3 && f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| {
                    SandboxError::Spec(format!("group `{g}` not found in the rootfs's /etc/group"))
                })?,
        },
    };
    Ok((uid, gid))
}

// ---------------------------------------------------------------------------------------------
// Helpers (the re-executed binary)
// ---------------------------------------------------------------------------------------------

fn load_spec(args: &[OsString]) -> Option<HelperSpec> {
    let p = args.first()?;
    serde_json::from_slice(&fs::read(p).ok()?).ok()
}

fn write_error(state_dir: &Path, e: &SandboxError) {
    if let Ok(b) = serde_json::to_vec(&ErrorRepr::from(e)) {
        let _ = fs::write(state_dir.join(ERROR_FILE), b);
    }
}

/// Die (SIGKILL) with the parent; if the parent is already gone (its end of our stdin pipe
/// closed), give up now.
fn die_with_parent() -> Result<()> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(|e| SandboxError::Helper(format!("PR_SET_PDEATHSIG: {e}")))?;
    let stdin = std::io::stdin();
    let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
    if poll(&mut fds, PollTimeout::ZERO).is_ok()
        && fds[0]
            .revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLHUP | PollFlags::POLLIN))
    {
        return Err(SandboxError::Helper("the parent died".into()));
    }
    Ok(())
}

/// Stage 1 (`MODE_RUN`): unshare the namespaces, write the id maps, spawn stage 2, pass its
/// exit status through.
pub fn stage1_main(args: &[OsString]) -> i32 {
    let Some(hs) = load_spec(args) else {
        return SETUP_FAILED;
    };
    match stage1(&hs, &args[0], &LinuxSyscall) {
        Ok(code) => code,
        Err(e) => {
            write_error(&hs.state_dir, &e);
            SETUP_FAILED
        }
    }
}

/// The CLONE_* flags of a tier.
pub fn namespace_flags(tier: Tier, network: Network) -> i32 {
    let mut f = libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS;
    if tier == Tier::Userns {
        f |= libc::CLONE_NEWUSER;
    }
    if network == Network::None {
        f |= libc::CLONE_NEWNET;
    }
    f
}

fn read_sysctl(sys: &dyn Syscall, p: &str) -> Option<String> {
    sys.read_file(Path::new(p))
        .ok()
        .map(|s| s.trim().to_string())
}

/// The error for a refused unshare(2), with the exact fix for this host.
pub fn unshare_refused(sys: &dyn Syscall, tier: Tier, e: &std::io::Error) -> SandboxError {
    let errno = e.raw_os_error().unwrap_or(0);
    let fix = if tier == Tier::Chroot {
        "the chroot tier needs root with CAP_SYS_ADMIN: run as root (in Kubernetes: securityContext.capabilities.add: \
         [\"SYS_ADMIN\"]; in Docker: --cap-add SYS_ADMIN --security-opt seccomp=unconfined), or use --isolation userns"
            .to_string()
    } else if errno == libc::ENOSPC
        || read_sysctl(sys, "/proc/sys/user/max_user_namespaces").as_deref() == Some("0")
    {
        "sysctl -w user.max_user_namespaces=15000".to_string()
    } else if read_sysctl(sys, "/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0")
    {
        "sysctl -w kernel.unprivileged_userns_clone=1".to_string()
    } else if read_sysctl(
        sys,
        "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
    )
    .as_deref()
        == Some("1")
    {
        "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (or install an AppArmor profile for ocibuild \
         granting `userns,`)"
            .to_string()
    } else if errno == libc::EINVAL {
        "the kernel lacks user namespaces (CONFIG_USER_NS): use --isolation chroot as root"
            .to_string()
    } else {
        "unshare(2) is blocked, probably by a container's seccomp profile: run the container with \
         --security-opt seccomp=unconfined --security-opt apparmor=unconfined (Kubernetes: \
         securityContext.seccompProfile.type: Unconfined), or as root use --isolation chroot"
            .to_string()
    };
    SandboxError::Refused {
        what: format!("unshare of the {tier} tier's namespaces"),
        cause: e.to_string(),
        fix: Some(fix),
    }
}

/// Map uid/gid 0 inside to the invoking user (call right after unsharing the user namespace).
pub fn write_id_maps(sys: &dyn Syscall, uid: u32, gid: u32) -> Result<()> {
    let w = |p: &str, d: String| {
        sys.write_file(Path::new(p), &d).map_err(|e| SandboxError::Refused {
            what: format!("write {p}"),
            cause: e.to_string(),
            fix: Some("the user namespace's id maps could not be written (is /proc mounted read-only?)".into()),
        })
    };
    if let Err(e) = sys.write_file(Path::new("/proc/self/setgroups"), "deny")
        && e.raw_os_error() != Some(libc::ENOENT)
    {
        return Err(SandboxError::Refused {
            what: "write /proc/self/setgroups".into(),
            cause: e.to_string(),
            fix: None,
        });
    }
    w("/proc/self/uid_map", format!("0 {uid} 1\n"))?;
    w("/proc/self/gid_map", format!("0 {gid} 1\n"))?;
    Ok(())
}

fn stage1(hs: &HelperSpec, spec_path: &OsString, sys: &dyn Syscall) -> Result<i32> {
    die_with_parent()?;
    // The init's program: the caller's sealed copy (opened now, while this process can still
    // see the caller's descriptors), else this binary.
    let mut init_note = hs.init_note.clone();
    let sealed = hs.init_exe.as_ref().and_then(|p| match open_sealed(p) {
        Ok(f) => Some(f),
        Err(e) => {
            init_note = Some(format!(
                "the sandbox init runs from the helper binary itself, not from a sealed in-memory copy ({e})"
            ));
            None
        }
    });
    let (uid, gid) = (sys.geteuid(), sys.getegid());
    // A full id range needs a writer outside the new user namespace: spawn it before unsharing.
    let needs_range = hs.tier == Tier::Userns && (hs.uid, hs.gid) != (0, 0);
    let mapper = if hs.tier == Tier::Userns {
        crate::idmap::plan(uid, gid)
            .filter(|p| !needs_range || (p.covers(hs.uid) && p.covers(hs.gid)))
            .and_then(|p| {
                crate::idmap::Mapper::spawn(Path::new("/proc/self/exe"), std::process::id(), &p)
                    .ok()
            })
    } else {
        None
    };
    sys.unshare(namespace_flags(hs.tier, hs.plan.network))
        .map_err(|e| unshare_refused(sys, hs.tier, &e))?;
    if hs.tier == Tier::Userns {
        let ranged = match mapper {
            Some(m) => match m.go() {
                Ok(()) => true,
                Err(e) => {
                    tracing::info!("full id range refused ({e}); mapping one id");
                    false
                }
            },
            None => false,
        };
        if !ranged {
            write_id_maps(sys, uid, gid)?;
        }
    }
    // Opened now: once the init pivots root (in the mount namespace we share), the state dir
    // is out of our sight too.
    let create = |name: &str| {
        fs::File::create(hs.state_dir.join(name)).map_err(SandboxError::io(format!(
            "create {name} in the sandbox's state dir"
        )))
    };
    let (mut report_file, mut error_file, mut pid_file) = (
        create(REPORT_FILE)?,
        create(ERROR_FILE)?,
        create(INIT_PID_FILE)?,
    );
    let spawn_init = |prog: &Path| -> std::io::Result<(std::process::Child, UnixStream)> {
        // The init's stdin is a socket to us: it notices our death by it, and sends its report
        // and errors back through it (it holds no file of the host).
        let (ours, theirs) = UnixStream::pair()?;
        let child = Command::new(prog)
            .arg(MODE_INIT)
            .arg(spec_path)
            .env_clear()
            .stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
            .spawn()?;
        Ok((child, ours))
    };
    let spawned = match &sealed {
        Some(f) => {
            let prog = PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd()));
            match spawn_init(&prog) {
                Ok(c) => Ok(c),
                Err(e) => {
                    // e.g. vm.memfd_noexec=2
                    init_note = Some(format!(
                        "the sandbox init runs from the helper binary itself: executing its sealed in-memory copy failed ({e})"
                    ));
                    spawn_init(Path::new("/proc/self/exe"))
                }
            }
        }
        None => spawn_init(Path::new("/proc/self/exe")),
    };
    let (mut child, chan) = spawned.map_err(|e| SandboxError::Refused {
        what: "spawn PID 1 of the new pid namespace".into(),
        cause: e.to_string(),
        fix: None,
    })?;
    drop(sealed);
    let _ = pid_file.write_all(child.id().to_string().as_bytes());
    drop(pid_file);
    // Read before waiting (no thread: after unshare(CLONE_NEWPID) this process cannot make
    // one): the init shuts its side down once the step runs, or exits.
    let mut msgs = Vec::new();
    let _ = (&chan).read_to_end(&mut msgs);
    drop(chan);
    for line in msgs.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        match serde_json::from_slice::<InitMessage>(line) {
            Ok(InitMessage::Report(mut rep)) => {
                rep.notes.extend(init_note.take());
                let _ = report_file.write_all(&serde_json::to_vec(&rep).unwrap_or_default());
            }
            Ok(InitMessage::Error(e)) => {
                let _ = error_file.write_all(&serde_json::to_vec(&e).unwrap_or_default());
            }
            Err(e) => {
                let _ = fs::write(
                    hs.state_dir.join("dbg"),
                    format!("{e} {}", String::from_utf8_lossy(line)),
                );
            }
        }
    }
    let st = child
        .wait()
        .map_err(SandboxError::io("wait for the sandbox's PID 1"))?;
    Ok(exit_code(st))
}

/// Open the caller's sealed copy of the binary (close-on-exec) and check its seals: it must be
/// the memfd [`make_sealed_copy`] made, never a file anyone can still write.
fn open_sealed(p: &Path) -> std::io::Result<fs::File> {
    use nix::fcntl::{FcntlArg, SealFlag, fcntl};
    let f = fs::File::open(p)?;
    let seals = SealFlag::from_bits_truncate(fcntl(&f, FcntlArg::F_GET_SEALS)?);
    if !seals.contains(init_seals()) {
        return Err(std::io::Error::other(format!(
            "{} is not sealed ({seals:?})",
            p.display()
        )));
    }
    Ok(f)
}

/// Close every descriptor but stdin/stdout/stderr (PID 1 must hold nothing of the host while
/// the step runs; the spec is read by path, the report goes back through stdin).
fn close_inherited_fds() {
    let fds: Vec<i32> = fs::read_dir("/proc/self/fd")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
                .filter(|n: &i32| *n > 2)
                .collect()
        })
        .unwrap_or_default();
    for fd in fds {
        // the read_dir's own descriptor is already closed: EBADF
        let _ = nix::unistd::close(fd);
    }
}

fn send(chan: &mut Option<UnixStream>, msg: &InitMessage) {
    if let Some(c) = chan.as_mut() {
        let mut b = serde_json::to_vec(msg).unwrap_or_default();
        b.push(b'\n');
        let _ = c.write_all(&b);
    }
}

/// Stage 2 (`MODE_INIT`, PID 1 of the new pid namespace): mounts, pivot_root, hardening, then
/// the step; reap zombies; exit with the step's status.
///
/// Nothing in its `/proc/1` may lead to the host: it is not dumpable (so a step, which lacks
/// CAP_SYS_PTRACE, cannot open its `exe`, `fd/*`, `map_files/*`, `root`, `cwd`, `maps`,
/// `environ`), it holds no descriptor of a host file (only stdin, a socket to stage 1, and
/// the step's stdout/stderr), and it runs from a sealed in-memory copy of the binary.
pub fn stage2_main(args: &[OsString]) -> i32 {
    close_inherited_fds();
    let mut chan = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .ok()
        .map(UnixStream::from);
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        let e = SandboxError::Refused {
            what: "make the sandbox init non-dumpable (PR_SET_DUMPABLE 0)".into(),
            cause: e.to_string(),
            fix: None,
        };
        send(&mut chan, &InitMessage::Error(ErrorRepr::from(&e)));
        return SETUP_FAILED;
    }
    let Some(hs) = load_spec(args) else {
        return SETUP_FAILED;
    };
    match stage2(&hs, &LinuxSyscall, &mut chan) {
        Ok(code) => code,
        Err(e) => {
            send(&mut chan, &InitMessage::Error(ErrorRepr::from(&e)));
            SETUP_FAILED
        }
    }
}

/// Docker's default capability set.
pub const DEFAULT_CAPS: &[caps::Capability] = {
    use caps::Capability::*;
    &[
        CAP_CHOWN,
        CAP_DAC_OVERRIDE,
        CAP_FSETID,
        CAP_FOWNER,
        CAP_MKNOD,
        CAP_NET_RAW,
        CAP_SETGID,
        CAP_SETUID,
        CAP_SETFCAP,
        CAP_SETPCAP,
        CAP_NET_BIND_SERVICE,
        CAP_SYS_CHROOT,
        CAP_KILL,
        CAP_AUDIT_WRITE,
    ]
};

/// Syscalls the step gets EPERM for (a modest, Docker-like deny-list; capabilities already cover
/// mount, pivot_root, module loading, …).
pub const DENIED_SYSCALLS: &[i64] = &[
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_ptrace,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_open_by_handle_at,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_userfaultfd,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_reboot,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_acct,
];

fn drop_caps() -> Result<()> {
    use caps::CapSet;
    let keep: caps::CapsHashSet = DEFAULT_CAPS.iter().copied().collect();
    let err = |e: caps::errors::CapsError| SandboxError::Refused {
        what: "drop capabilities".into(),
        cause: e.to_string(),
        fix: None,
    };
    for c in caps::all() {
        if !keep.contains(&c) {
            // Unknown to this kernel: EINVAL, nothing to drop.
            let _ = caps::drop(None, CapSet::Bounding, c);
        }
    }
    let _ = caps::clear(None, CapSet::Ambient);
    caps::set(None, CapSet::Inheritable, &caps::CapsHashSet::new()).map_err(err)?;
    let have = caps::read(None, CapSet::Permitted).map_err(err)?;
    let new: caps::CapsHashSet = have.intersection(&keep).copied().collect();
    caps::set(None, CapSet::Effective, &new).map_err(err)?;
    caps::set(None, CapSet::Permitted, &new).map_err(err)?;
    Ok(())
}

fn apply_seccomp() -> Result<()> {
    use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};
    let err = |e: String| SandboxError::Refused {
        what: "install the seccomp filter".into(),
        cause: e,
        fix: None,
    };
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|e| err(e.to_string()))?;
    let rules = DENIED_SYSCALLS.iter().map(|&n| (n, Vec::new())).collect();
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(|e| err(e.to_string()))?;
    let prog: BpfProgram = filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| err(e.to_string()))?;
    seccompiler::apply_filter(&prog).map_err(|e| err(e.to_string()))
}

fn set_rlimits() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
    let _ = setrlimit(Resource::RLIMIT_CORE, 0, 0);
}

/// The program to exec: as given when it has a `/`, else searched in the step's PATH (or the
/// default PATH when the env has none), after pivot_root.
fn find_program(prog: &str, env: &[(String, String)]) -> PathBuf {
    if prog.contains('/') {
        return PathBuf::from(prog);
    }
    let path = env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map_or(DEFAULT_PATH, |(_, v)| v.as_str());
    for d in path.split(':').filter(|d| !d.is_empty()) {
        let p = Path::new(d).join(prog);
        if p.is_file() {
            return p;
        }
    }
    PathBuf::from(prog)
}

fn stage2(hs: &HelperSpec, sys: &dyn Syscall, chan: &mut Option<UnixStream>) -> Result<i32> {
    die_with_parent()?;
    let rep = mounts::setup(sys, &hs.plan, &mounts::copy_lowers)?;
    let cwd = Path::new(&hs.cwd);
    fs::create_dir_all(cwd).map_err(SandboxError::io(format!(
        "create the working dir {}",
        hs.cwd
    )))?;
    set_rlimits();
    nix::sys::prctl::set_no_new_privs()
        .map_err(|e| SandboxError::Helper(format!("no_new_privs: {e}")))?;
    drop_caps()?;
    let mut notes = rep.notes.clone();
    if let Err(e) = apply_seccomp() {
        notes.push(format!("no seccomp filter: {e}"));
    }
    let rep = SetupReport { notes, ..rep };
    send(chan, &InitMessage::Report(rep));

    let prog = find_program(&hs.args[0], &hs.env);
    let mut cmd = Command::new(&prog);
    cmd.arg0(&hs.args[0])
        .args(&hs.args[1..])
        .env_clear()
        .envs(hs.env.iter().map(|(k, v)| (k, v)))
        .current_dir(cwd)
        .stdin(Stdio::null());
    if (hs.uid, hs.gid) != (0, 0) {
        cmd.uid(hs.uid).gid(hs.gid);
    }
    let child = cmd.spawn().map_err(|e| {
        let mapped = if hs.tier == Tier::Userns && (hs.uid, hs.gid) != (0, 0) {
            " (only uid/gid 0 could be mapped in the user namespace: run as root, or give this user an /etc/subuid and /etc/subgid range and install uidmap (newuidmap/newgidmap))"
        } else {
            ""
        };
        SandboxError::Spec(format!(
            "cannot run `{}` as {}:{}: {e}{mapped}",
            hs.args[0], hs.uid, hs.gid
        ))
    })?;
    // The step runs: nothing more to say (stdin itself stays open: it is how stage 1's death
    // is noticed; it is a socket, not a host file).
    if let Some(c) = chan.take() {
        let _ = c.shutdown(std::net::Shutdown::Write);
    }
    let step = nix::unistd::Pid::from_raw(child.id() as i32);
    reap_until(step)
}

/// As PID 1: reap every child until the step exits; its status is ours.
fn reap_until(step: nix::unistd::Pid) -> Result<i32> {
    use nix::sys::wait::{WaitStatus, waitpid};
    loop {
        match waitpid(nix::unistd::Pid::from_raw(-1), None) {
            Ok(WaitStatus::Exited(p, c)) if p == step => return Ok(c),
            Ok(WaitStatus::Signaled(p, s, _)) if p == step => return Ok(128 + s as i32),
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(SandboxError::Helper(format!("waitpid: {e}"))),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::syscall::{Call, TestSyscall};

    /// A step's lines reach `on_line` while it runs: the step prints a line, then blocks reading
    /// a FIFO that only the callback writes to after it saw the line (no sleeps: if the line
    /// came only at the end, the step would block until its timeout and the test fail).
    #[test]
    fn output_lines_are_streamed_while_the_step_runs() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("release");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let spec = Spec {
            args: vec![
                "/bin/sh".into(),
                "-c".into(),
                format!(
                    "echo waiting-for-release; printf 'progress 50%%\\rprogress 100%%\\n' >&2; read x < {}; echo released-$x",
                    fifo.display()
                ),
            ],
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            capture: true,
            timeout: Some(Duration::from_secs(60)),
            upper: dir.path().to_path_buf(),
            ..Spec::default()
        };
        let mut seen: Vec<(Stream, String)> = Vec::new();
        let out = run_streaming(&spec, Tier::Host, &mut |which, line| {
            seen.push((which, line.to_string()));
            if line == "waiting-for-release" {
                // the step is blocked on the FIFO until this write
                fs::write(&fifo, b"ok\n").unwrap();
            }
        })
        .unwrap();
        assert_eq!(out.status, 0);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "waiting-for-release\nreleased-ok\n"
        );
        // stdout and stderr are read side by side: the stderr line may come first
        assert_eq!(
            seen.iter().find(|(w, _)| *w == Stream::Stdout),
            Some(&(Stream::Stdout, "waiting-for-release".to_string()))
        );
        assert!(
            seen.contains(&(Stream::Stdout, "released-ok".to_string())),
            "{seen:?}"
        );
        // a carriage return ends a line too (progress meters)
        assert!(
            seen.contains(&(Stream::Stderr, "progress 50%".to_string())),
            "{seen:?}"
        );
        assert!(
            seen.contains(&(Stream::Stderr, "progress 100%".to_string())),
            "{seen:?}"
        );
    }

    #[test]
    fn tier_parses_and_prints() {
        for t in [Tier::Userns, Tier::Chroot, Tier::Host] {
            assert_eq!(t.to_string().parse::<Tier>().unwrap(), t);
            assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{t}\""));
        }
        assert!("vm".parse::<Tier>().is_err());
    }

    #[test]
    fn flags_per_tier() {
        let u = namespace_flags(Tier::Userns, Network::None);
        assert!(u & libc::CLONE_NEWUSER != 0 && u & libc::CLONE_NEWNET != 0);
        let c = namespace_flags(Tier::Chroot, Network::Host);
        assert!(
            c & libc::CLONE_NEWUSER == 0
                && c & libc::CLONE_NEWNET == 0
                && c & libc::CLONE_NEWPID != 0
        );
    }

    #[test]
    fn id_maps_map_root_to_the_invoking_user() {
        let sys = TestSyscall::new(1000);
        write_id_maps(&sys, 1000, 1000).unwrap();
        assert_eq!(
            sys.recorded(),
            vec![
                Call::Write("/proc/self/setgroups".into(), "deny".into()),
                Call::Write("/proc/self/uid_map".into(), "0 1000 1\n".into()),
                Call::Write("/proc/self/gid_map".into(), "0 1000 1\n".into()),
            ]
        );
    }

    #[test]
    fn refused_unshare_names_the_fix() {
        let eperm = std::io::Error::from_raw_os_error(libc::EPERM);
        let fix = |sys: &TestSyscall, tier| match unshare_refused(sys, tier, &eperm) {
            SandboxError::Refused { fix: Some(f), .. } => f,
            e => panic!("{e}"),
        };
        let aa = TestSyscall::new(1000).with_file(
            "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
            "1\n",
        );
        assert!(
            fix(&aa, Tier::Userns)
                .starts_with("sysctl -w kernel.apparmor_restrict_unprivileged_userns=0")
        );
        let deb =
            TestSyscall::new(1000).with_file("/proc/sys/kernel/unprivileged_userns_clone", "0");
        assert_eq!(
            fix(&deb, Tier::Userns),
            "sysctl -w kernel.unprivileged_userns_clone=1"
        );
        let max = TestSyscall::new(1000).with_file("/proc/sys/user/max_user_namespaces", "0");
        assert_eq!(
            fix(&max, Tier::Userns),
            "sysctl -w user.max_user_namespaces=15000"
        );
        assert!(fix(&TestSyscall::new(1000), Tier::Userns).contains("seccomp=unconfined"));
        assert!(fix(&TestSyscall::new(0), Tier::Chroot).contains("SYS_ADMIN"));
    }

    #[test]
    fn users_resolve_from_the_rootfs() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("etc")).unwrap();
        fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
        )
        .unwrap();
        fs::write(d.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        let l = [d.path().to_path_buf()];
        assert_eq!(resolve_user(&l, None).unwrap(), (0, 0));
        assert_eq!(resolve_user(&l, Some("app")).unwrap(), (1000, 1001));
        assert_eq!(resolve_user(&l, Some("1000")).unwrap(), (1000, 1001));
        assert_eq!(resolve_user(&l, Some("5")).unwrap(), (5, 0));
        assert_eq!(resolve_user(&l, Some("app:staff")).unwrap(), (1000, 50));
        assert_eq!(resolve_user(&l, Some("7:8")).unwrap(), (7, 8));
        assert!(resolve_user(&l, Some("nobody")).is_err());
    }
}
