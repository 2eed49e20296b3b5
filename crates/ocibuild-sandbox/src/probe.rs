//! The capability probe behind `ocibuild doctor` and automatic tier selection: what isolation
//! this host allows, why not more, and the exact fix for each refusal.
//!
//! Two halves:
//! - [`attempt`]: the real attempts (unshare a user + mount namespace and map ids; mount overlayfs
//!   inside it; mount a fresh `/proc` in a new pid namespace; unshare a mount namespace as root),
//!   written against [`Syscall`]. [`probe`] runs each in a throwaway child
//!   (`<exe> __ocibuild-sandbox-probe <attempt>`, see [`probe_child_main`]) so nothing of it
//!   touches the calling process; tests run them in-process against
//!   [`TestSyscall`](crate::syscall::TestSyscall).
//! - [`probe_with`]: the pure decision logic: reads the sysctls, `/etc/subuid`, `/proc/self/mountinfo`
//!   through [`Syscall`], asks for the attempts, and decides the tiers, the chosen tier and the fixes.
//!
//! Detection covers the ways rootless builders fail in practice: Debian's
//! `kernel.unprivileged_userns_clone`, `user.max_user_namespaces`, Ubuntu 23.10+/GitHub
//! `ubuntu-24.04`'s `kernel.apparmor_restrict_unprivileged_userns`, Docker's default seccomp
//! profile blocking `unshare` (sysctls fine, unshare still EPERM), Kubernetes' masked `/proc`
//! (over-mounts on `/proc/kcore`, read-only `/proc/sys`: the kernel then refuses a fresh `/proc`
//! in a user namespace), and kaniko-style root in an unprivileged pod (no user namespaces, no
//! CAP_SYS_ADMIN).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::helper::{MODE_PROBE, helper_exe};
use crate::syscall::{LinuxSyscall, MountCall, Syscall};

/// Attempt: unshare(CLONE_NEWUSER|CLONE_NEWNS), write the id maps, mount a tmpfs inside.
pub const ATTEMPT_USERNS: &str = "userns";
/// Attempt: the same, then mount overlayfs inside the user namespace.
pub const ATTEMPT_OVERLAY: &str = "overlay";
/// Attempt: user + mount + pid namespaces, then (in a child, PID 1 of the new pid namespace)
/// mount a fresh `/proc`.
pub const ATTEMPT_PROC: &str = "proc";
/// Attempt (root only): unshare(CLONE_NEWNS) without a user namespace and mount a tmpfs: what the
/// chroot tier needs (CAP_SYS_ADMIN).
pub const ATTEMPT_MNTNS: &str = "mntns";
/// The second half of [`ATTEMPT_PROC`], run as PID 1 of the new pid namespace.
const ATTEMPT_PROC_INNER: &str = "proc-inner";

/// How long one probe child may take before it is killed and reported as hung.
const CHILD_TIMEOUT: Duration = Duration::from_secs(30);

/// The isolation tiers (defined with the runner), re-exported here.
pub use crate::run::Tier;

/// The outcome of one check or attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub ok: bool,
    pub detail: String,
}

impl Check {
    pub fn ok(detail: impl Into<String>) -> Self {
        Check {
            ok: true,
            detail: detail.into(),
        }
    }

    pub fn no(detail: impl Into<String>) -> Self {
        Check {
            ok: false,
            detail: detail.into(),
        }
    }

    /// A refusal at `step`, as `"<step>: <error> (os error N)"`: the form [`Check::step`] and
    /// [`Check::errno`] read back, and the form every attempt reports.
    pub fn refused(step: &str, err: &std::io::Error) -> Self {
        Check::no(format!("{step}: {err}"))
    }

    /// The errno of a [`Check::refused`] detail.
    pub fn errno(&self) -> Option<i32> {
        let start = self.detail.rfind("(os error ")? + "(os error ".len();
        let rest = &self.detail[start..];
        rest[..rest.find(')')?].parse().ok()
    }

    /// The step of a [`Check::refused`] detail (text before the first `": "`).
    pub fn step(&self) -> &str {
        self.detail.split(": ").next().unwrap_or("")
    }
}

/// One tier and whether this host allows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierStatus {
    pub tier: Tier,
    pub available: bool,
    pub why: String,
}

/// A refused feature and the exact way to get it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fix {
    pub problem: String,
    pub fix: String,
}

/// What this host allows. `chosen` is the strongest available tier (`host` means no isolation:
/// runs refuse it unless `--isolation host` or an explicit fallback allows it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub root: bool,
    pub euid: u32,
    /// The user name of `euid` from /etc/passwd, if any.
    pub user: Option<String>,
    pub kernel: String,
    /// The verdict on user namespaces: the attempt plus why it failed.
    pub userns: Check,
    /// `kernel.unprivileged_userns_clone` (Debian and older Ubuntu kernels only).
    pub unprivileged_userns_clone: Option<bool>,
    pub max_user_namespaces: Option<u64>,
    /// `kernel.apparmor_restrict_unprivileged_userns` (Ubuntu 23.10+).
    pub apparmor_restrict_unprivileged_userns: Option<bool>,
    /// The actual attempt (catches seccomp filters the sysctls cannot show).
    pub unshare_attempt: Check,
    pub newuidmap: Option<PathBuf>,
    pub newgidmap: Option<PathBuf>,
    /// (first id, count) for this user in /etc/subuid.
    pub subuid: Option<(u64, u64)>,
    pub subgid: Option<(u64, u64)>,
    pub overlay_in_userns: Check,
    /// Masked-/proc detection (over-mounts in /proc/self/mountinfo) plus an actual mount of a
    /// fresh /proc in new user + pid + mount namespaces.
    pub proc_mount: Check,
    /// The chroot tier's attempt (root only): a mount namespace without a user namespace.
    pub mount_namespace: Option<Check>,
    /// `v1`, `v2`, `hybrid` or `none`.
    pub cgroup: String,
    /// Every tier, strongest first.
    pub tiers: Vec<TierStatus>,
    pub chosen: Tier,
    /// What to do to get more isolation (empty: nothing is missing).
    pub fixes: Vec<Fix>,
}

impl Report {
    pub fn tier(&self, t: Tier) -> Option<&TierStatus> {
        self.tiers.iter().find(|s| s.tier == t)
    }

    pub fn available(&self, t: Tier) -> bool {
        self.tier(t).is_some_and(|s| s.available)
    }
}

/// Probe this host for real, running each attempt in a child of [`helper_exe`].
pub fn probe() -> Report {
    match helper_exe() {
        Ok(exe) => probe_using(&exe),
        Err(e) => probe_with(&LinuxSyscall, &|_| {
            Check::refused("find the probe helper executable", &e)
        }),
    }
}

/// [`probe`] with an explicit helper executable (one that calls
/// [`helper::dispatch`](crate::helper::dispatch) first thing in `main`).
pub fn probe_using(helper: &Path) -> Report {
    probe_with(&LinuxSyscall, &|name| run_attempt_child(helper, name))
}

/// Helper mode [`MODE_PROBE`]. With an attempt name: run it (this process is throwaway) and print
/// its [`Check`] as JSON on stdout. Without: run the whole probe and print the [`Report`] as JSON.
pub fn probe_child_main(args: &[OsString]) -> i32 {
    let out = match args.first().map(|a| a.to_str()) {
        None => serde_json::to_string(&probe()),
        Some(Some(
            name @ (ATTEMPT_USERNS | ATTEMPT_OVERLAY | ATTEMPT_PROC | ATTEMPT_MNTNS
            | ATTEMPT_PROC_INNER),
        )) => {
            let inner = |n: &str| match helper_exe() {
                Ok(exe) => run_attempt_child(&exe, n),
                Err(e) => Check::refused("find the probe helper executable", &e),
            };
            serde_json::to_string(&attempt(&LinuxSyscall, name, &inner))
        }
        Some(other) => {
            eprintln!("{MODE_PROBE}: unknown attempt {other:?}");
            return 2;
        }
    };
    match out {
        Ok(json) => {
            println!("{json}");
            0
        }
        Err(e) => {
            eprintln!("{MODE_PROBE}: {e}");
            1
        }
    }
}

/// Run one attempt in a child process and read its [`Check`] back.
fn run_attempt_child(helper: &Path, name: &str) -> Check {
    let step = format!("run the probe helper {}", helper.display());
    let mut child = match Command::new(helper)
        .arg(MODE_PROBE)
        .arg(name)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return Check::refused(&step, &e),
    };
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if started.elapsed() > CHILD_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Check::no(format!(
                    "{step}: attempt `{name}` hung for {} s and was killed",
                    CHILD_TIMEOUT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Check::refused(&step, &e),
        }
    }
    let out = match child.wait_with_output() {
        Ok(o) => o,
        Err(e) => return Check::refused(&step, &e),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let parsed = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .and_then(|l| serde_json::from_str::<Check>(l).ok());
    parsed.unwrap_or_else(|| {
        let stderr = String::from_utf8_lossy(&out.stderr);
        Check::no(format!(
            "{step}: attempt `{name}` gave no result ({}): {}",
            out.status,
            stderr.trim()
        ))
    })
}

// ---------------------------------------------------------------------------------------------
// The attempts

/// Mount flags are `c_ulong`: u64 here, u32 on 32-bit targets.
#[allow(clippy::unnecessary_cast)]
const fn ms(flag: libc::c_ulong) -> u64 {
    flag as u64
}
const MS_REC: u64 = ms(libc::MS_REC);
const MS_PRIVATE: u64 = ms(libc::MS_PRIVATE);
const MS_NOSUID: u64 = ms(libc::MS_NOSUID);
const MS_NODEV: u64 = ms(libc::MS_NODEV);
const MS_NOEXEC: u64 = ms(libc::MS_NOEXEC);

/// Run one attempt in this process (which must be throwaway: it unshares namespaces).
/// `inner` runs a nested attempt in a new child (for `/proc`: PID 1 of the new pid namespace).
pub fn attempt(sys: &dyn Syscall, name: &str, inner: &dyn Fn(&str) -> Check) -> Check {
    let r = match name {
        ATTEMPT_USERNS => attempt_userns(sys),
        ATTEMPT_OVERLAY => attempt_overlay(sys),
        ATTEMPT_PROC => attempt_proc(sys, inner),
        ATTEMPT_PROC_INNER => attempt_proc_inner(sys),
        ATTEMPT_MNTNS => attempt_mntns(sys),
        other => Err(Check::no(format!("unknown probe attempt `{other}`"))),
    };
    r.unwrap_or_else(|c| c)
}

fn tempdir() -> Result<tempfile::TempDir, Check> {
    tempfile::Builder::new()
        .prefix("ocibuild-probe-")
        .tempdir()
        .map_err(|e| Check::refused("create a temporary directory", &e))
}

fn flag_names(flags: i32) -> String {
    let names = [
        (libc::CLONE_NEWUSER, "CLONE_NEWUSER"),
        (libc::CLONE_NEWNS, "CLONE_NEWNS"),
        (libc::CLONE_NEWPID, "CLONE_NEWPID"),
    ];
    names
        .iter()
        .filter(|(f, _)| flags & f != 0)
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join("|")
}

/// unshare user + mount (+ `extra`) namespaces, map our ids to 0, make mounts private.
fn enter_userns(sys: &dyn Syscall, extra: i32) -> Result<String, Check> {
    let (uid, gid) = (sys.geteuid(), sys.getegid());
    let flags = libc::CLONE_NEWUSER | libc::CLONE_NEWNS | extra;
    sys.unshare(flags)
        .map_err(|e| Check::refused(&format!("unshare({})", flag_names(flags)), &e))?;
    match sys.write_file(Path::new("/proc/self/setgroups"), "deny") {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(Check::refused("write /proc/self/setgroups", &e));
        }
        _ => {}
    }
    sys.write_file(Path::new("/proc/self/uid_map"), &format!("0 {uid} 1\n"))
        .map_err(|e| Check::refused("write /proc/self/uid_map", &e))?;
    sys.write_file(Path::new("/proc/self/gid_map"), &format!("0 {gid} 1\n"))
        .map_err(|e| Check::refused("write /proc/self/gid_map", &e))?;
    make_private(sys)?;
    Ok(format!(
        "unshare({}), uid/gid map 0 → {uid}/{gid}",
        flag_names(flags)
    ))
}

fn make_private(sys: &dyn Syscall) -> Result<(), Check> {
    sys.mount(&MountCall {
        source: None,
        target: PathBuf::from("/"),
        fstype: None,
        flags: MS_REC | MS_PRIVATE,
        data: None,
    })
    .map_err(|e| Check::refused("mount --make-rprivate /", &e))
}

fn mount_tmpfs(sys: &dyn Syscall, target: &Path, step: &str) -> Result<(), Check> {
    sys.mount(&MountCall {
        source: Some(PathBuf::from("tmpfs")),
        target: target.to_path_buf(),
        fstype: Some("tmpfs".into()),
        flags: MS_NOSUID | MS_NODEV,
        data: Some("size=64k".into()),
    })
    .map_err(|e| Check::refused(step, &e))?;
    let _ = sys.umount(target, true);
    Ok(())
}

fn attempt_userns(sys: &dyn Syscall) -> Result<Check, Check> {
    let tmp = tempdir()?;
    let done = enter_userns(sys, 0)?;
    mount_tmpfs(sys, tmp.path(), "mount tmpfs inside the user namespace")?;
    Ok(Check::ok(format!(
        "{done} and a tmpfs mount inside all work"
    )))
}

fn attempt_overlay(sys: &dyn Syscall) -> Result<Check, Check> {
    let tmp = tempdir()?;
    let dirs = ["lower", "upper", "work", "merged"].map(|d| tmp.path().join(d));
    for d in &dirs {
        std::fs::create_dir(d)
            .map_err(|e| Check::refused(&format!("create {}", d.display()), &e))?;
    }
    let [lower, upper, work, merged] = &dirs;
    let _ = std::fs::write(lower.join("probe"), "probe\n");
    enter_userns(sys, 0)?;
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    let mut result = Err(std::io::Error::from_raw_os_error(libc::EINVAL));
    let mut used = "";
    for extra in ["", ",userxattr"] {
        result = sys.mount(&MountCall {
            source: Some(PathBuf::from("overlay")),
            target: merged.clone(),
            fstype: Some("overlay".into()),
            flags: 0,
            data: Some(format!("{opts}{extra}")),
        });
        if result.is_ok() {
            used = extra;
            break;
        }
    }
    let at = tmp
        .path()
        .parent()
        .unwrap_or(tmp.path())
        .display()
        .to_string();
    if let Err(e) = result {
        return Err(Check::refused(
            &format!("mount overlay inside the user namespace (upper dir in {at})"),
            &e,
        ));
    }
    let _ = sys.umount(merged, true);
    // overlayfs leaves work/work with mode 000; let the temp dir's cleanup in.
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(work.join("work"), std::fs::Permissions::from_mode(0o700));
    Ok(Check::ok(format!(
        "overlayfs mounts inside the user namespace (upper dir in {at}{})",
        if used.is_empty() {
            ""
        } else {
            ", with userxattr"
        }
    )))
}

fn attempt_proc(sys: &dyn Syscall, inner: &dyn Fn(&str) -> Check) -> Result<Check, Check> {
    enter_userns(sys, libc::CLONE_NEWPID)?;
    Ok(inner(ATTEMPT_PROC_INNER))
}

fn attempt_proc_inner(sys: &dyn Syscall) -> Result<Check, Check> {
    let tmp = tempdir()?;
    sys.mount(&MountCall {
        source: Some(PathBuf::from("proc")),
        target: tmp.path().to_path_buf(),
        fstype: Some("proc".into()),
        flags: MS_NOSUID | MS_NODEV | MS_NOEXEC,
        data: None,
    })
    .map_err(|e| Check::refused("mount proc in new user + pid + mount namespaces", &e))?;
    let _ = sys.umount(tmp.path(), true);
    Ok(Check::ok(
        "a fresh /proc mounts in new user + pid + mount namespaces",
    ))
}

fn attempt_mntns(sys: &dyn Syscall) -> Result<Check, Check> {
    let tmp = tempdir()?;
    sys.unshare(libc::CLONE_NEWNS)
        .map_err(|e| Check::refused("unshare(CLONE_NEWNS)", &e))?;
    make_private(sys)?;
    mount_tmpfs(sys, tmp.path(), "mount tmpfs in a new mount namespace")?;
    Ok(Check::ok(
        "unshare(CLONE_NEWNS) and mounts work (CAP_SYS_ADMIN)",
    ))
}

// ---------------------------------------------------------------------------------------------
// The decision logic

fn read_trim(sys: &dyn Syscall, path: &str) -> Option<String> {
    sys.read_file(Path::new(path))
        .ok()
        .map(|s| s.trim().to_string())
}

fn read_num(sys: &dyn Syscall, path: &str) -> Option<u64> {
    read_trim(sys, path)?.parse().ok()
}

fn user_name(sys: &dyn Syscall, uid: u32) -> Option<String> {
    let passwd = sys.read_file(Path::new("/etc/passwd")).ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_string())
    })
}

/// The first `name:start:count` line for this user (by name or uid) in a subuid/subgid file.
fn sub_range(sys: &dyn Syscall, path: &str, user: Option<&str>, uid: u32) -> Option<(u64, u64)> {
    let text = sys.read_file(Path::new(path)).ok()?;
    let uid = uid.to_string();
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.trim().split(':').collect();
        if f.len() != 3 || !(Some(f[0]) == user || f[0] == uid) {
            return None;
        }
        Some((f[1].parse().ok()?, f[2].parse().ok()?))
    })
}

fn find_tool(sys: &dyn Syscall, name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for d in ["/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"] {
        dirs.push(PathBuf::from(d));
    }
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_absolute() && sys.exists(p))
}

struct MountInfo {
    mount_point: String,
    read_only: bool,
    fstype: String,
}

fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    text.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            let mount_point = f.get(4)?.replace("\\040", " ");
            let read_only = f.get(5)?.split(',').any(|o| o == "ro");
            let fstype = right.split(' ').next()?.to_string();
            Some(MountInfo {
                mount_point,
                read_only,
                fstype,
            })
        })
        .collect()
}

/// Over-mounts that hide parts of /proc (what container runtimes do: `/proc/kcore` bound to
/// /dev/null, `/proc/sys` read-only, tmpfs on `/proc/acpi`, …). binfmt_misc is normal on hosts.
fn proc_masks(mounts: &[MountInfo]) -> Vec<String> {
    mounts
        .iter()
        .filter(|m| m.mount_point.starts_with("/proc/"))
        .filter(|m| !matches!(m.fstype.as_str(), "binfmt_misc" | "autofs"))
        .map(|m| {
            if m.read_only {
                format!("{} (read-only)", m.mount_point)
            } else {
                m.mount_point.clone()
            }
        })
        .collect()
}

fn cgroup_version(mounts: &[MountInfo]) -> String {
    let v2_root = mounts
        .iter()
        .any(|m| m.fstype == "cgroup2" && m.mount_point == "/sys/fs/cgroup");
    let v2 = mounts.iter().any(|m| m.fstype == "cgroup2");
    let v1 = mounts.iter().any(|m| m.fstype == "cgroup");
    match (v2_root, v1, v2) {
        (true, false, _) => "v2",
        (_, true, true) => "hybrid",
        (_, true, false) => "v1",
        (false, false, true) => "v2",
        (_, false, false) => "none",
    }
    .to_string()
}

fn kernel_at_least(kernel: &str, want: (u32, u32)) -> Option<bool> {
    let mut it = kernel.split(|c: char| !c.is_ascii_digit());
    let major: u32 = it.next()?.parse().ok()?;
    let minor: u32 = it.next()?.parse().ok()?;
    Some((major, minor) >= want)
}

fn errno_name(errno: Option<i32>) -> &'static str {
    match errno {
        Some(libc::EPERM) => "EPERM",
        Some(libc::EACCES) => "EACCES",
        Some(libc::ENOSPC) => "ENOSPC",
        Some(libc::EINVAL) => "EINVAL",
        Some(libc::ENOSYS) => "ENOSYS",
        _ => "an error",
    }
}

/// The exact AppArmor profile that lets one binary create user namespaces on Ubuntu 23.10+.
pub fn apparmor_profile(exe: &Path) -> String {
    format!(
        "abi <abi/4.0>,\ninclude <tunables/global>\nprofile ocibuild {} flags=(unconfined) {{\n  userns,\n}}\n",
        exe.display()
    )
}

/// Why user namespaces failed: (short verdict, fixes).
fn diagnose_userns(
    root: bool,
    unpriv_clone: Option<bool>,
    max_userns: Option<u64>,
    apparmor: Option<bool>,
    attempt: &Check,
) -> (String, Vec<Fix>) {
    let errno = attempt.errno();
    let at_unshare = attempt.step().starts_with("unshare");
    let sysctl_persist = |kv: &str| {
        format!(
            "sysctl -w {kv} (to keep it across reboots: echo {kv} > /etc/sysctl.d/90-ocibuild.conf)"
        )
    };
    if max_userns == Some(0) || (at_unshare && errno == Some(libc::ENOSPC)) {
        let problem = match max_userns {
            Some(0) => "user.max_user_namespaces = 0: user namespaces are disabled for every user".to_string(),
            Some(n) => format!("the user.max_user_namespaces limit ({n}) is reached"),
            None => "unshare(CLONE_NEWUSER) fails with ENOSPC: the user.max_user_namespaces limit is reached".into(),
        };
        return (
            format!("refused: {problem}"),
            vec![Fix {
                problem,
                fix: sysctl_persist("user.max_user_namespaces=15000"),
            }],
        );
    }
    if !root && unpriv_clone == Some(false) {
        let problem = "kernel.unprivileged_userns_clone = 0: this kernel (Debian, older Ubuntu) disables user namespaces for users other than root".to_string();
        return (
            format!("refused: {problem}"),
            vec![Fix {
                problem,
                fix: sysctl_persist("kernel.unprivileged_userns_clone=1"),
            }],
        );
    }
    if at_unshare && errno == Some(libc::EINVAL) {
        let problem =
            "this kernel has no user namespace support (built without CONFIG_USER_NS)".to_string();
        return (
            format!("refused: {problem}"),
            vec![Fix { problem, fix: "use a kernel built with CONFIG_USER_NS=y (every mainstream distribution kernel is)".into() }],
        );
    }
    if !root && apparmor == Some(true) {
        let problem = format!(
            "kernel.apparmor_restrict_unprivileged_userns = 1 (Ubuntu 23.10+, GitHub ubuntu-24.04 runners): AppArmor denies unconfined programs the use of user namespaces ({})",
            attempt.detail
        );
        let exe =
            std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/usr/local/bin/ocibuild"));
        let fix = format!(
            "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or keep the restriction and allow ocibuild alone with an AppArmor profile: printf '{}' | sudo tee /etc/apparmor.d/ocibuild && sudo apparmor_parser -r /etc/apparmor.d/ocibuild",
            apparmor_profile(&exe).replace('\n', "\\n")
        );
        return (
            format!("refused by AppArmor: {}", attempt.detail),
            vec![Fix { problem, fix }],
        );
    }
    if root && attempt.step() == "write /proc/self/uid_map" && errno == Some(libc::EPERM) {
        let problem = format!(
            "{}: since Linux 5.12, mapping root (uid 0) into a user namespace needs CAP_SETFCAP, which this process lacks (a pod spec dropping ALL capabilities removes it)",
            attempt.detail
        );
        let fix = "add the SETFCAP capability to the build container: Kubernetes `securityContext.capabilities.add: [SETFCAP]`, Docker/Podman `--cap-add SETFCAP`; or run the build as a non-root user with /etc/subuid ranges".to_string();
        return (
            format!("refused: {} (no CAP_SETFCAP)", attempt.detail),
            vec![Fix { problem, fix }],
        );
    }
    if at_unshare && matches!(errno, Some(libc::EPERM) | Some(libc::ENOSYS)) {
        let problem = format!(
            "{} although the kernel settings allow user namespaces: a seccomp filter blocks it (Docker's and containerd's default profiles do)",
            attempt.detail
        );
        let fix = "Docker's default seccomp profile blocks unshare: run the container with `--security-opt seccomp=unconfined` or a profile allowing unshare/clone with CLONE_NEWUSER (Kubernetes: `securityContext.seccompProfile.type: Unconfined`)".to_string();
        return (
            format!("refused by seccomp: {}", attempt.detail),
            vec![Fix { problem, fix }],
        );
    }
    if attempt.step().starts_with("mount")
        && matches!(errno, Some(libc::EPERM) | Some(libc::EACCES))
    {
        let problem = format!(
            "a user namespace can be created but mounting inside it is refused ({}): a security profile denies mount (Docker's docker-default AppArmor profile does)",
            attempt.detail
        );
        let fix = "run the container with `--security-opt apparmor=unconfined` (Kubernetes: `securityContext.appArmorProfile.type: Unconfined`)".to_string();
        return (
            format!("refused: {}", attempt.detail),
            vec![Fix { problem, fix }],
        );
    }
    let problem = format!("user namespaces do not work here: {}", attempt.detail);
    let fix = "allow user namespaces for this user: check the seccomp profile (`--security-opt seccomp=unconfined`), the AppArmor/SELinux policy, and the sysctls kernel.unprivileged_userns_clone, user.max_user_namespaces, kernel.apparmor_restrict_unprivileged_userns".to_string();
    (
        format!("refused: {} ({})", attempt.detail, errno_name(errno)),
        vec![Fix { problem, fix }],
    )
}

/// The decision logic, on whatever `sys` shows and `attempts` returns (see [`attempt`]).
pub fn probe_with(sys: &dyn Syscall, attempts: &dyn Fn(&str) -> Check) -> Report {
    let euid = sys.geteuid();
    let root = euid == 0;
    let user = user_name(sys, euid);
    let who = user.clone().unwrap_or_else(|| euid.to_string());
    let kernel = read_trim(sys, "/proc/sys/kernel/osrelease").unwrap_or_else(|| "unknown".into());
    let unprivileged_userns_clone =
        read_num(sys, "/proc/sys/kernel/unprivileged_userns_clone").map(|v| v != 0);
    let max_user_namespaces = read_num(sys, "/proc/sys/user/max_user_namespaces");
    let apparmor_restrict_unprivileged_userns = read_num(
        sys,
        "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
    )
    .map(|v| v != 0);
    let newuidmap = find_tool(sys, "newuidmap");
    let newgidmap = find_tool(sys, "newgidmap");
    let subuid = sub_range(sys, "/etc/subuid", user.as_deref(), euid);
    let subgid = sub_range(sys, "/etc/subgid", user.as_deref(), euid);
    let mounts = parse_mountinfo(
        &sys.read_file(Path::new("/proc/self/mountinfo"))
            .unwrap_or_default(),
    );
    let masks = proc_masks(&mounts);
    let cgroup = cgroup_version(&mounts);

    let unshare_attempt = attempts(ATTEMPT_USERNS);
    let mut fixes = Vec::new();

    // User namespaces.
    let userns = if unshare_attempt.ok {
        Check::ok(format!("allowed: {}", unshare_attempt.detail))
    } else {
        let (verdict, f) = diagnose_userns(
            root,
            unprivileged_userns_clone,
            max_user_namespaces,
            apparmor_restrict_unprivileged_userns,
            &unshare_attempt,
        );
        fixes.extend(f);
        Check::no(verdict)
    };

    // Overlayfs and /proc inside a user namespace.
    let (overlay_in_userns, proc_attempt) = if userns.ok {
        (attempts(ATTEMPT_OVERLAY), Some(attempts(ATTEMPT_PROC)))
    } else {
        (Check::no("not tried: no user namespace"), None)
    };
    let masks_text = if masks.is_empty() {
        String::new()
    } else {
        format!(
            "/proc is masked (over-mounts on {}): a container runtime hides parts of /proc, and the kernel refuses a fresh /proc in a user namespace while they are hidden",
            masks.join(", ")
        )
    };
    let proc_mount = match &proc_attempt {
        Some(c) if c.ok && masks.is_empty() => c.clone(),
        Some(c) if c.ok => Check::ok(format!(
            "{}; /proc has over-mounts: {}",
            c.detail,
            masks.join(", ")
        )),
        Some(c) if masks.is_empty() => c.clone(),
        Some(c) => Check::no(format!("{}; {masks_text}", c.detail)),
        None if masks.is_empty() => {
            Check::ok("not tried (needs a user namespace); /proc has no over-mounts")
        }
        None => Check::no(format!("not tried (needs a user namespace); {masks_text}")),
    };
    if userns.ok && !overlay_in_userns.ok {
        let problem = format!(
            "overlayfs cannot be mounted inside a user namespace ({}): each step's root filesystem is copied instead (slower, more disk)",
            overlay_in_userns.detail
        );
        let fix = if kernel_at_least(&kernel, (5, 11)) == Some(false) {
            format!(
                "upgrade to kernel 5.11 or newer (this is {kernel}): it allows overlayfs in user namespaces"
            )
        } else {
            "the kernel allows it, so the filesystem refused to hold the upper dir (it is probably itself overlayfs, as inside a container): put TMPDIR and --root on ext4, xfs, btrfs or tmpfs — in a container, a volume (`docker run -v /var/lib/ocibuild`) or a Kubernetes emptyDir".to_string()
        };
        fixes.push(Fix { problem, fix });
    }
    if userns.ok && !proc_mount.ok {
        let problem = format!(
            "a fresh /proc cannot be mounted in the sandbox: {}",
            proc_mount.detail
        );
        let fix = "Kubernetes: set `securityContext.procMount: Unmasked` (and `hostUsers: false`) on the build container; Docker: `docker run --security-opt systempaths=unconfined`".to_string();
        fixes.push(Fix { problem, fix });
    }

    // The chroot tier: root with CAP_SYS_ADMIN.
    let mount_namespace = root.then(|| attempts(ATTEMPT_MNTNS));
    let chroot = match &mount_namespace {
        None => TierStatus {
            tier: Tier::Chroot,
            available: false,
            why: format!("needs root (euid 0); running as uid {euid}"),
        },
        Some(c) if c.ok => TierStatus {
            tier: Tier::Chroot,
            available: true,
            why: "root with CAP_SYS_ADMIN: a mount namespace and pivot_root, but no uid separation (steps run as the real root)".into(),
        },
        Some(c) => {
            if !userns.ok {
                fixes.push(Fix {
                    problem: format!(
                        "running as root without CAP_SYS_ADMIN (kaniko-style, in an unprivileged pod): no mount namespace ({}), so not even the chroot tier is available",
                        c.detail
                    ),
                    fix: "the chroot tier needs CAP_SYS_ADMIN in the pod: securityContext.capabilities.add: [SYS_ADMIN] (Docker: `--cap-add SYS_ADMIN`, which Docker's seccomp profile also honours for unshare); or enable user namespaces (above) for the stronger userns tier".into(),
                });
            }
            TierStatus {
                tier: Tier::Chroot,
                available: false,
                why: format!("root, but no mount namespace: {} — needs CAP_SYS_ADMIN", c.detail),
            }
        }
    };

    // Id mapping for unprivileged users.
    let full_range = |r: Option<(u64, u64)>| r.is_some_and(|(_, n)| n >= 65536);
    if !root && (newuidmap.is_none() || newgidmap.is_none()) {
        fixes.push(Fix {
            problem: "newuidmap/newgidmap not found: only your own uid can be mapped into the sandbox, so steps that chown files or switch users (apt-get, useradd) fail".into(),
            fix: "apt-get install uidmap (Fedora/RHEL: dnf install shadow-utils; Alpine: apk add shadow-uidmap)".into(),
        });
    }
    let full_ids = full_range(subuid) && full_range(subgid);
    if !root && !full_ids {
        let problem = match (subuid, subgid) {
            (Some((_, n)), _) | (_, Some((_, n))) if n < 65536 => format!(
                "the /etc/subuid or /etc/subgid range for {who} has only {n} ids: 65536 are needed for images with system users"
            ),
            _ => format!(
                "no range for {who} in /etc/subuid and /etc/subgid: only one id can be mapped into the sandbox"
            ),
        };
        fixes.push(Fix {
            problem,
            fix: format!(
                "add `{who}:100000:65536` to /etc/subuid and /etc/subgid (usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {who})"
            ),
        });
    }

    // Every step mounts a fresh /proc; where the kernel refuses it, the tier would fail each
    // step at that mount, so it is not offered.
    let userns_tier = TierStatus {
        tier: Tier::Userns,
        available: userns.ok && proc_mount.ok,
        why: if userns.ok && !proc_mount.ok {
            format!(
                "user namespaces work, but NO fresh /proc can be mounted in them, and every step needs one: {}",
                proc_mount.detail
            )
        } else if userns.ok {
            let ids = if root {
                "root: any id range can be mapped".to_string()
            } else if newuidmap.is_some()
                && newgidmap.is_some()
                && full_range(subuid)
                && full_range(subgid)
            {
                format!(
                    "uid 0 inside is {who} outside; 65536 ids through newuidmap and /etc/subuid"
                )
            } else {
                format!("uid 0 inside is {who} outside; only that one id is mapped")
            };
            let fs = if overlay_in_userns.ok {
                "rootfs on overlayfs"
            } else {
                "rootfs copied (no overlayfs in a user namespace)"
            };
            let proc = if proc_mount.ok {
                "fresh /proc"
            } else {
                "NO fresh /proc"
            };
            format!("{ids}; {fs}; {proc}")
        } else {
            userns.detail.clone()
        },
    };
    let host = TierStatus {
        tier: Tier::Host,
        available: true,
        why: format!(
            "NO isolation: steps run directly on this host as uid {euid}; used only with --isolation host or an explicitly allowed fallback"
        ),
    };
    let tiers = vec![userns_tier, chroot, host];
    let chosen = tiers
        .iter()
        .find(|t| t.available)
        .map(|t| t.tier)
        .unwrap_or(Tier::Host);

    Report {
        root,
        euid,
        user,
        kernel,
        userns,
        unprivileged_userns_clone,
        max_user_namespaces,
        apparmor_restrict_unprivileged_userns,
        unshare_attempt,
        newuidmap,
        newgidmap,
        subuid,
        subgid,
        overlay_in_userns,
        proc_mount,
        mount_namespace,
        cgroup,
        tiers,
        chosen,
        fixes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_reads_back_step_and_errno() {
        let c = Check::refused(
            "unshare(CLONE_NEWUSER)",
            &std::io::Error::from_raw_os_error(libc::EPERM),
        );
        assert!(!c.ok);
        assert_eq!(c.step(), "unshare(CLONE_NEWUSER)");
        assert_eq!(c.errno(), Some(libc::EPERM));
        assert_eq!(Check::ok("fine").errno(), None);
    }

    #[test]
    fn mountinfo_masks_and_cgroups() {
        let host = "22 27 0:21 / /proc rw,relatime - proc proc rw\n\
                    30 22 0:30 / /proc/sys/fs/binfmt_misc rw,relatime - autofs systemd-1 rw\n\
                    31 27 0:25 / /sys/fs/cgroup ro - tmpfs tmpfs ro\n\
                    32 31 0:26 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n\
                    41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        let m = parse_mountinfo(host);
        assert!(proc_masks(&m).is_empty());
        assert_eq!(cgroup_version(&m), "hybrid");
        let docker = "600 500 0:60 / /proc rw,nosuid - proc proc rw\n\
                      601 600 0:60 /bus /proc/bus ro,nosuid - proc proc rw\n\
                      602 600 0:60 /sys /proc/sys ro,nosuid - proc proc rw\n\
                      603 600 0:5 /null /proc/kcore rw,nosuid - tmpfs tmpfs rw\n\
                      604 500 0:70 / /sys/fs/cgroup ro - cgroup2 cgroup rw\n";
        let m = parse_mountinfo(docker);
        assert_eq!(
            proc_masks(&m),
            vec![
                "/proc/bus (read-only)",
                "/proc/sys (read-only)",
                "/proc/kcore"
            ]
        );
        assert_eq!(cgroup_version(&m), "v2");
        assert_eq!(cgroup_version(&parse_mountinfo("")), "none");
    }

    #[test]
    fn kernel_versions() {
        assert_eq!(kernel_at_least("6.18.44-fc-v669", (5, 11)), Some(true));
        assert_eq!(kernel_at_least("5.4.0-150-generic", (5, 11)), Some(false));
        assert_eq!(kernel_at_least("garbage", (5, 11)), None);
    }

    #[test]
    fn subuid_by_name_or_uid() {
        let sys = crate::syscall::TestSyscall::new(1000)
            .with_file("/etc/subuid", "alice:100000:65536\n1001:200000:1000\n");
        assert_eq!(
            sub_range(&sys, "/etc/subuid", Some("alice"), 1000),
            Some((100000, 65536))
        );
        assert_eq!(
            sub_range(&sys, "/etc/subuid", Some("bob"), 1001),
            Some((200000, 1000))
        );
        assert_eq!(sub_range(&sys, "/etc/subuid", None, 1002), None);
    }
}

/// How a caller asks for isolation: `--isolation userns|chroot|host`, or automatic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isolation {
    /// The strongest tier the probe finds; `host` only when `allow_host` says so.
    Auto { allow_host: bool },
    /// Exactly this tier, or an error explaining why it is unavailable and how to fix it.
    Force(Tier),
}

/// Decide the tier for a step from a probe report. Never silently falls back to `host`: that
/// needs `--isolation host` or an explicit `allow_host`.
pub fn choose_tier(report: &Report, want: Isolation) -> Result<Tier, crate::SandboxError> {
    let fixes = || {
        if report.fixes.is_empty() {
            "run `ocibuild doctor` for details".to_string()
        } else {
            report
                .fixes
                .iter()
                .map(|f| format!("{}: {}", f.problem, f.fix))
                .collect::<Vec<_>>()
                .join("; ")
        }
    };
    match want {
        Isolation::Force(t) => {
            if report.available(t) {
                Ok(t)
            } else {
                let why = report.tier(t).map(|s| s.why.clone()).unwrap_or_default();
                Err(crate::SandboxError::TierUnavailable {
                    tier: t.to_string(),
                    why: format!("{why}; to fix: {}", fixes()),
                })
            }
        }
        Isolation::Auto { allow_host } => {
            for t in [Tier::Userns, Tier::Chroot] {
                if report.available(t) {
                    return Ok(t);
                }
            }
            if allow_host {
                tracing::warn!(
                    "no isolation is available: build steps run directly on this host ({})",
                    fixes()
                );
                Ok(Tier::Host)
            } else {
                Err(crate::SandboxError::TierUnavailable {
                    tier: "userns or chroot".into(),
                    why: format!(
                        "neither user namespaces nor a root mount namespace are available; pass --isolation host to run steps without isolation, or fix: {}",
                        fixes()
                    ),
                })
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod choose_tests {
    use super::*;
    use crate::syscall::TestSyscall;

    fn report(userns: bool, root: bool) -> Report {
        let sys = TestSyscall::new(if root { 0 } else { 1000 });
        probe_with(&sys, &|name| match name {
            "userns" | "overlay" | "proc" if userns => Check::ok("fine"),
            "mntns" if root => Check::ok("fine"),
            _ => Check::no("refused: Operation not permitted (os error 1)"),
        })
    }

    #[test]
    fn automatic_choice_never_falls_back_to_host_silently() {
        assert_eq!(
            choose_tier(&report(true, false), Isolation::Auto { allow_host: false }).unwrap(),
            Tier::Userns
        );
        assert_eq!(
            choose_tier(&report(false, true), Isolation::Auto { allow_host: false }).unwrap(),
            Tier::Chroot
        );
        let e =
            choose_tier(&report(false, false), Isolation::Auto { allow_host: false }).unwrap_err();
        assert!(e.to_string().contains("--isolation host"), "{e}");
        assert_eq!(
            choose_tier(&report(false, false), Isolation::Auto { allow_host: true }).unwrap(),
            Tier::Host
        );
    }

    #[test]
    fn forcing_an_unavailable_tier_says_why() {
        let e = choose_tier(&report(true, false), Isolation::Force(Tier::Chroot)).unwrap_err();
        assert!(e.to_string().contains("chroot"), "{e}");
        assert_eq!(
            choose_tier(&report(true, false), Isolation::Force(Tier::Host)).unwrap(),
            Tier::Host
        );
    }
}
