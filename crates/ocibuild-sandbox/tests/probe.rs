//! The probe: simulated refusals through `probe_with` + `TestSyscall` (each refusal yields the
//! right tier and the right fix text), then real probes on this machine, as root and as `nobody`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use ocibuild_sandbox::helper::MODE_PROBE;
use ocibuild_sandbox::probe::{
    ATTEMPT_USERNS, Check, Report, Tier, attempt, probe_using, probe_with,
};
use ocibuild_sandbox::syscall::{Call, TestSyscall};
use ocibuild_testkit as tk;

const HELPER: &str = env!("CARGO_BIN_EXE_sandbox-helper");

const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\n";
const HOST_MOUNTINFO: &str = "22 27 0:21 / /proc rw,relatime - proc proc rw\n\
     41 31 0:38 / /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw\n";
/// What Docker and Kubernetes (default procMount) leave in a container's mountinfo.
const MASKED_MOUNTINFO: &str = "600 500 0:60 / /proc rw,nosuid,nodev,noexec - proc proc rw\n\
     601 600 0:60 /bus /proc/bus ro,nosuid - proc proc rw\n\
     602 600 0:60 /fs /proc/fs ro,nosuid - proc proc rw\n\
     603 600 0:60 /sys /proc/sys ro,nosuid - proc proc rw\n\
     604 600 0:60 /sysrq-trigger /proc/sysrq-trigger ro,nosuid - proc proc rw\n\
     605 600 0:71 / /proc/acpi ro,relatime - tmpfs tmpfs ro\n\
     606 600 0:5 /null /proc/kcore rw,nosuid - tmpfs tmpfs rw,mode=755\n\
     607 500 0:72 / /sys/fs/cgroup ro,nosuid - cgroup2 cgroup rw\n";

/// A host as `euid`, kernel 6.8, every sysctl allowing user namespaces, nothing refused yet.
fn host(euid: u32) -> TestSyscall {
    TestSyscall::new(euid)
        .with_file("/etc/passwd", PASSWD)
        .with_file("/proc/sys/kernel/osrelease", "6.8.0-41-generic\n")
        .with_file("/proc/sys/kernel/unprivileged_userns_clone", "1\n")
        .with_file("/proc/sys/user/max_user_namespaces", "63528\n")
        .with_file(
            "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
            "0\n",
        )
        .with_file("/proc/self/mountinfo", HOST_MOUNTINFO)
}

/// `host` plus newuidmap/newgidmap and a full subuid/subgid range for alice.
fn full_rootless(sys: TestSyscall) -> TestSyscall {
    sys.with_file("/usr/bin/newuidmap", "")
        .with_file("/usr/bin/newgidmap", "")
        .with_file("/etc/subuid", "alice:100000:65536\n")
        .with_file("/etc/subgid", "alice:100000:65536\n")
}

/// Run the probe against the fake: the attempts run in-process on the same `TestSyscall`.
fn probe_fake(sys: &TestSyscall) -> Report {
    probe_with(sys, &|name| {
        attempt(sys, name, &|inner| {
            attempt(sys, inner, &|_| Check::no("nested too deep"))
        })
    })
}

fn all_fixes(r: &Report) -> String {
    r.fixes
        .iter()
        .map(|f| format!("{} => {}\n", f.problem, f.fix))
        .collect()
}

fn assert_fix(r: &Report, needle: &str) {
    let all = all_fixes(r);
    assert!(
        all.contains(needle),
        "expected a fix containing {needle:?}, got:\n{all}"
    );
}

fn assert_no_fix(r: &Report, needle: &str) {
    let all = all_fixes(r);
    assert!(
        !all.contains(needle),
        "expected no fix containing {needle:?}, got:\n{all}"
    );
}

fn eperm() -> i32 {
    libc::EPERM
}

#[test]
fn everything_allowed_rootless_chooses_userns_with_no_fixes() {
    let sys = full_rootless(host(1000));
    let r = probe_fake(&sys);
    assert!(!r.root);
    assert_eq!(r.user.as_deref(), Some("alice"));
    assert_eq!(r.kernel, "6.8.0-41-generic");
    assert!(r.userns.ok && r.unshare_attempt.ok, "{r:#?}");
    assert!(r.overlay_in_userns.ok && r.proc_mount.ok, "{r:#?}");
    assert_eq!(r.subuid, Some((100000, 65536)));
    assert_eq!(r.cgroup, "v2");
    assert_eq!(r.chosen, Tier::Userns);
    assert!(!r.available(Tier::Chroot));
    assert!(r.tier(Tier::Chroot).unwrap().why.contains("needs root"));
    assert!(r.tier(Tier::Userns).unwrap().why.contains("65536 ids"));
    assert!(r.fixes.is_empty(), "{}", all_fixes(&r));
    // The attempts mapped alice's ids to 0 and mounted tmpfs, overlay and proc.
    let calls = sys.recorded();
    assert!(calls.contains(&Call::Write(
        "/proc/self/uid_map".into(),
        "0 1000 1\n".into()
    )));
    assert!(calls.contains(&Call::Write("/proc/self/setgroups".into(), "deny".into())));
    for fs in ["tmpfs", "overlay", "proc"] {
        assert!(
            calls
                .iter()
                .any(|c| matches!(c, Call::Mount(m) if m.fstype.as_deref() == Some(fs))),
            "no {fs} mount in {calls:?}"
        );
    }
    assert!(calls.contains(&Call::Unshare(
        libc::CLONE_NEWUSER | libc::CLONE_NEWNS | libc::CLONE_NEWPID
    )));
}

#[test]
fn unprivileged_userns_clone_0_gives_host_and_the_sysctl() {
    let sys = full_rootless(host(1000))
        .with_file("/proc/sys/kernel/unprivileged_userns_clone", "0\n")
        .refusing("unshare", eperm());
    let r = probe_fake(&sys);
    assert_eq!(r.unprivileged_userns_clone, Some(false));
    assert!(!r.userns.ok && !r.unshare_attempt.ok);
    assert!(r.userns.detail.contains("unprivileged_userns_clone"));
    assert_eq!(r.chosen, Tier::Host);
    assert_fix(&r, "sysctl -w kernel.unprivileged_userns_clone=1");
    assert!(!r.overlay_in_userns.ok && r.overlay_in_userns.detail.contains("not tried"));
}

#[test]
fn max_user_namespaces_0_gives_host_and_the_sysctl() {
    let sys = full_rootless(host(1000))
        .with_file("/proc/sys/user/max_user_namespaces", "0\n")
        .refusing("unshare", libc::ENOSPC);
    let r = probe_fake(&sys);
    assert_eq!(r.max_user_namespaces, Some(0));
    assert_eq!(r.chosen, Tier::Host);
    assert_fix(&r, "sysctl -w user.max_user_namespaces=15000");
    assert_no_fix(&r, "seccomp");
}

#[test]
fn apparmor_restriction_gives_host_the_sysctl_and_a_profile() {
    // Ubuntu 24.04: the namespace is created, then AppArmor strips the capabilities inside it, so
    // writing uid_map fails (runner-images#10443: "write failed /proc/self/uid_map").
    let sys = full_rootless(host(1000))
        .with_file(
            "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
            "1\n",
        )
        .refusing("write:/proc/self/uid_map", eperm());
    let r = probe_fake(&sys);
    assert_eq!(r.apparmor_restrict_unprivileged_userns, Some(true));
    assert!(!r.unshare_attempt.ok);
    assert!(
        r.unshare_attempt
            .detail
            .starts_with("write /proc/self/uid_map")
    );
    assert!(r.userns.detail.contains("AppArmor"));
    assert_eq!(r.chosen, Tier::Host);
    assert_fix(
        &r,
        "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0",
    );
    assert_fix(
        &r,
        "abi <abi/4.0>,\\ninclude <tunables/global>\\nprofile ocibuild ",
    );
    assert_fix(&r, "flags=(unconfined) {\\n  userns,\\n}");
    assert_fix(&r, "sudo apparmor_parser -r /etc/apparmor.d/ocibuild");
    assert_no_fix(&r, "seccomp");
}

#[test]
fn unshare_eperm_with_sysctls_fine_is_seccomp() {
    let sys = full_rootless(host(1000)).refusing("unshare", eperm());
    let r = probe_fake(&sys);
    assert!(r.userns.detail.contains("seccomp"), "{}", r.userns.detail);
    assert_eq!(r.chosen, Tier::Host);
    assert_fix(
        &r,
        "Docker's default seccomp profile blocks unshare: run the container with `--security-opt seccomp=unconfined` or a profile allowing unshare/clone with CLONE_NEWUSER",
    );
    assert_no_fix(&r, "sysctl");
}

#[test]
fn mount_denied_inside_userns_is_an_lsm_profile() {
    // Docker's docker-default AppArmor profile: unshare allowed (seccomp unconfined), mount denied.
    let sys = full_rootless(host(1000)).refusing("mount:tmpfs", libc::EACCES);
    let r = probe_fake(&sys);
    assert!(!r.userns.ok);
    assert_eq!(r.chosen, Tier::Host);
    assert_fix(&r, "--security-opt apparmor=unconfined");
}

#[test]
fn overlay_refused_keeps_userns_and_says_where_to_put_the_upper_dir() {
    let sys = host(0).refusing("mount:overlay", eperm());
    let r = probe_fake(&sys);
    assert!(r.userns.ok);
    assert!(!r.overlay_in_userns.ok);
    assert!(
        r.overlay_in_userns
            .detail
            .starts_with("mount overlay inside the user namespace")
    );
    assert_eq!(r.chosen, Tier::Userns);
    assert!(r.tier(Tier::Userns).unwrap().why.contains("rootfs copied"));
    assert_fix(&r, "put TMPDIR and --root on ext4, xfs, btrfs or tmpfs");
    assert_fix(&r, "emptyDir");

    // On an old kernel the fix is the kernel.
    let old = host(0)
        .with_file("/proc/sys/kernel/osrelease", "5.4.0-150-generic\n")
        .refusing("mount:overlay", libc::EINVAL);
    let r = probe_fake(&old);
    assert_fix(
        &r,
        "upgrade to kernel 5.11 or newer (this is 5.4.0-150-generic)",
    );
}

#[test]
fn masked_proc_rules_out_userns_and_gives_the_pod_setting() {
    let sys = full_rootless(host(1000))
        .with_file("/proc/self/mountinfo", MASKED_MOUNTINFO)
        .refusing("mount:proc", eperm());
    let r = probe_fake(&sys);
    assert!(r.userns.ok);
    assert!(!r.proc_mount.ok);
    assert!(
        r.proc_mount.detail.contains("/proc/kcore"),
        "{}",
        r.proc_mount.detail
    );
    assert!(r.proc_mount.detail.contains("/proc/sys (read-only)"));
    assert!(r.proc_mount.detail.contains("mount proc"));
    // Every step mounts a fresh /proc: the tier is not offered (it would fail each step).
    assert!(!r.available(Tier::Userns));
    assert_eq!(r.chosen, Tier::Host);
    assert!(r.tier(Tier::Userns).unwrap().why.contains("NO fresh /proc"));
    assert_fix(
        &r,
        "set `securityContext.procMount: Unmasked` (and `hostUsers: false`)",
    );
    assert_eq!(r.cgroup, "v2");

    // Masks alone, with the mount allowed, are not a refusal.
    let sys = full_rootless(host(1000)).with_file("/proc/self/mountinfo", MASKED_MOUNTINFO);
    let r = probe_fake(&sys);
    assert!(r.proc_mount.ok && r.proc_mount.detail.contains("over-mounts"));
    assert!(r.fixes.is_empty(), "{}", all_fixes(&r));
}

#[test]
fn not_root_without_userns_is_host_only_with_every_fix() {
    // No newuidmap, no subuid, and a seccomp filter on unshare.
    let sys = host(1000).refusing("unshare", eperm());
    let r = probe_fake(&sys);
    assert_eq!(r.chosen, Tier::Host);
    assert!(!r.available(Tier::Userns) && !r.available(Tier::Chroot));
    assert!(r.available(Tier::Host));
    assert!(r.tier(Tier::Host).unwrap().why.starts_with("NO isolation"));
    assert!(r.tier(Tier::Chroot).unwrap().why.contains("needs root"));
    assert!(r.mount_namespace.is_none());
    assert_fix(&r, "--security-opt seccomp=unconfined");
    assert_fix(&r, "apt-get install uidmap");
    assert_fix(
        &r,
        "add `alice:100000:65536` to /etc/subuid and /etc/subgid (usermod --add-subuids 100000-165535 --add-subgids 100000-165535 alice)",
    );
    // The blocker comes first.
    assert!(r.fixes[0].fix.contains("seccomp"));
    // Not a root problem: no SYS_ADMIN advice.
    assert_no_fix(&r, "SYS_ADMIN");
}

#[test]
fn short_subuid_range_is_reported() {
    let sys = host(1000)
        .with_file("/usr/bin/newuidmap", "")
        .with_file("/usr/bin/newgidmap", "")
        .with_file("/etc/subuid", "alice:100000:1000\n")
        .with_file("/etc/subgid", "1000:100000:1000\n");
    let r = probe_fake(&sys);
    assert_eq!(r.subgid, Some((100000, 1000)));
    assert_eq!(r.chosen, Tier::Userns);
    assert_fix(&r, "has only 1000 ids");
    assert_no_fix(&r, "apt-get install uidmap");
}

#[test]
fn root_without_userns_chooses_chroot() {
    // Root, user namespaces disabled by max_user_namespaces=0, mount namespaces fine.
    let sys = host(0).with_file("/proc/sys/user/max_user_namespaces", "0\n");
    let r = probe_with(&sys, &|name| {
        if name == ATTEMPT_USERNS {
            Check::refused(
                "unshare(CLONE_NEWUSER|CLONE_NEWNS)",
                &std::io::Error::from_raw_os_error(libc::ENOSPC),
            )
        } else {
            attempt(&sys, name, &|_| Check::no("unexpected nested attempt"))
        }
    });
    assert!(r.root);
    assert!(!r.userns.ok);
    assert_eq!(r.mount_namespace.as_ref().map(|c| c.ok), Some(true));
    assert_eq!(r.chosen, Tier::Chroot);
    assert!(r.tier(Tier::Chroot).unwrap().why.contains("CAP_SYS_ADMIN"));
    assert_fix(&r, "sysctl -w user.max_user_namespaces=15000");
    // Root needs no subuids or newuidmap, and has SYS_ADMIN.
    assert_no_fix(&r, "subuid");
    assert_no_fix(&r, "uidmap");
    assert_no_fix(&r, "SYS_ADMIN");
    assert!(sys.recorded().contains(&Call::Unshare(libc::CLONE_NEWNS)));
}

#[test]
fn kaniko_style_root_without_sys_admin_is_host_with_the_capability_fix() {
    // Root in an unprivileged pod: Docker/containerd seccomp refuses every unshare.
    let sys = host(0).refusing("unshare", eperm());
    let r = probe_fake(&sys);
    assert!(r.root);
    assert_eq!(r.mount_namespace.as_ref().map(|c| c.ok), Some(false));
    assert_eq!(r.chosen, Tier::Host);
    assert!(
        r.tier(Tier::Chroot)
            .unwrap()
            .why
            .contains("needs CAP_SYS_ADMIN")
    );
    assert_fix(
        &r,
        "needs CAP_SYS_ADMIN in the pod: securityContext.capabilities.add: [SYS_ADMIN]",
    );
    assert_fix(&r, "--security-opt seccomp=unconfined");
}

#[test]
fn report_round_trips_through_json() {
    let r = probe_fake(&full_rootless(host(1000)));
    let json = serde_json::to_string(&r).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["chosen"], "userns");
    assert_eq!(v["subuid"], serde_json::json!([100000, 65536]));
    assert_eq!(v["tiers"][2]["tier"], "host");
    let back: Report = serde_json::from_str(&json).unwrap();
    assert_eq!(back, r);
}

// ---------------------------------------------------------------------------------------------
// Real probes on this machine

#[test]
fn real_probe_on_this_machine() {
    let r = probe_using(Path::new(HELPER));
    assert_eq!(r.root, tk::is_root());
    assert!(
        r.unshare_attempt.ok,
        "user namespaces should work here: {r:#?}"
    );
    assert!(r.userns.ok);
    assert!(r.overlay_in_userns.ok, "{r:#?}");
    assert!(r.proc_mount.ok, "{r:#?}");
    assert_eq!(r.chosen, Tier::Userns);
    if r.root {
        assert_eq!(
            r.mount_namespace.as_ref().map(|c| c.ok),
            Some(true),
            "{r:#?}"
        );
        assert!(r.available(Tier::Chroot));
        assert!(r.fixes.is_empty(), "{}", all_fixes(&r));
    }
    assert!(["v1", "v2", "hybrid", "none"].contains(&r.cgroup.as_str()));
}

/// `setpriv` to nobody, running the helper binary in probe mode directly.
fn as_nobody(tmp: &Path, args: &[&str]) -> Command {
    assert!(
        tk::is_root(),
        "this test drops to nobody with setpriv and must run as root (CI does)"
    );
    let mut c = Command::new(tk::require_tool("setpriv", "util-linux"));
    c.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        HELPER,
        MODE_PROBE,
    ])
    .args(args)
    .env("TMPDIR", tmp)
    .env_remove("OCIBUILD_SANDBOX_HELPER");
    c
}

#[test]
fn real_probe_as_nobody_in_probe_mode() {
    // A private TMPDIR, to check that the attempts leave nothing behind.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let out = tk::run_ok_stdout(&mut as_nobody(tmp.path(), &[]));
    let r: Report = serde_json::from_str(out.trim()).unwrap();
    assert!(!r.root);
    assert_eq!(r.euid, 65534);
    assert!(r.userns.ok, "{r:#?}");
    assert!(r.overlay_in_userns.ok && r.proc_mount.ok, "{r:#?}");
    assert_eq!(r.chosen, Tier::Userns);
    assert!(!r.available(Tier::Chroot));
    assert!(r.mount_namespace.is_none());
    // nobody has no subuid range here: that is the one thing to fix.
    if r.subuid.is_none() {
        assert_fix(&r, "/etc/subuid and /etc/subgid (usermod --add-subuids");
    }

    // One attempt on its own prints one Check.
    let out = tk::run_ok_stdout(&mut as_nobody(tmp.path(), &["userns"]));
    let c: Check = serde_json::from_str(out.trim()).unwrap();
    assert!(c.ok, "{c:?}");
    assert!(c.detail.contains("0 → 65534/65534"), "{}", c.detail);
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "the probe left {left:?} behind");
}

#[test]
fn unknown_attempt_is_a_usage_error() {
    let out = tk::run(Command::new(HELPER).args([MODE_PROBE, "teleport"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown attempt"));
}

#[test]
fn root_refused_its_uid_map_needs_setfcap() {
    // Root in a pod whose runtime drops CAP_SETFCAP (Linux 5.12+): unshare works, mapping uid 0
    // does not.
    let sys = host(0).refusing("write:/proc/self/uid_map", eperm());
    let r = probe_fake(&sys);
    assert!(!r.userns.ok);
    assert!(
        r.userns.detail.contains("CAP_SETFCAP"),
        "{}",
        r.userns.detail
    );
    assert_fix(&r, "securityContext.capabilities.add: [SETFCAP]");
    assert_no_fix(&r, "seccomp");
}
