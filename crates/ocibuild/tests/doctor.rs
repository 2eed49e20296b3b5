//! `ocibuild doctor` end to end: the JSON report parses and names a tier, the human report lists
//! checks, tiers and fixes, it exits 0 even when isolation is refused, and real refusals made with
//! `unshare` (a masked /proc, user.max_user_namespaces=0) are diagnosed with the right fix.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use ocibuild_testkit as tk;
use serde_json::Value;

const OCIBUILD: &str = env!("CARGO_BIN_EXE_ocibuild");

fn doctor_json(cmd: &mut Command) -> Value {
    let out = tk::run_ok_stdout(cmd);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("doctor --json is not JSON ({e}):\n{out}"))
}

fn fixes(v: &Value) -> String {
    v["fixes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("{} => {}\n", f["problem"], f["fix"]))
        .collect()
}

#[test]
fn doctor_json_names_a_tier() {
    let v = doctor_json(Command::new(OCIBUILD).args(["doctor", "--json"]));
    let chosen = v["chosen"].as_str().unwrap();
    assert!(["userns", "chroot", "host"].contains(&chosen), "{v:#}");
    let tiers: Vec<&str> = v["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tier"].as_str().unwrap())
        .collect();
    assert_eq!(tiers, ["userns", "chroot", "host"]);
    let chosen_tier = v["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tier"] == chosen)
        .unwrap();
    assert_eq!(chosen_tier["available"], true);
    assert_eq!(v["root"], tk::is_root());
    // This machine allows user namespaces.
    assert_eq!(v["userns"]["ok"], true, "{v:#}");
    assert_eq!(chosen, "userns");
    assert!(v["kernel"].as_str().is_some_and(|k| !k.is_empty()));
    assert!(v["cgroup"].is_string());
}

#[test]
fn doctor_human_report() {
    let out = tk::run_ok_stdout(Command::new(OCIBUILD).arg("doctor"));
    for needle in [
        "user namespaces",
        "unshare attempt",
        "overlayfs in a user namespace",
        "fresh /proc",
        "Isolation tiers (strongest first):",
        "Chosen: userns",
        "To get more isolation",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    let help = tk::run_ok_stdout(Command::new(OCIBUILD).args(["doctor", "--help"]));
    assert!(
        help.contains("--json") && !help.contains("--helper"),
        "{help}"
    );
}

#[test]
fn doctor_as_nobody() {
    assert!(
        tk::is_root(),
        "this test drops to nobody with setpriv and must run as root (CI does)"
    );
    let v = doctor_json(
        Command::new(tk::require_tool("setpriv", "util-linux"))
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", OCIBUILD])
            .args(["doctor", "--json"])
            .env("TMPDIR", "/tmp"),
    );
    assert_eq!(v["root"], false);
    assert_eq!(v["euid"], 65534);
    assert_eq!(v["chosen"], "userns", "{v:#}");
    assert_eq!(v["tiers"][1]["available"], false);
}

/// Run `sh -c script` as root of a new user namespace (with its own mount and pid namespaces and a
/// fresh /proc), where sysctls and mounts can be changed without touching the host.
fn in_userns(script: &str) -> Command {
    let mut c = Command::new(tk::require_tool("unshare", "util-linux"));
    c.args([
        "--user",
        "--map-root-user",
        "--mount",
        "--pid",
        "--fork",
        "--mount-proc",
    ])
    .args(["sh", "-c", script])
    .env("OCIBUILD", OCIBUILD);
    c
}

#[test]
fn doctor_diagnoses_a_masked_proc() {
    // What container runtimes do: hide parts of /proc under over-mounts.
    let v = doctor_json(&mut in_userns(
        "mount -t tmpfs -o ro tmpfs /proc/acpi 2>/dev/null || mount -t tmpfs -o ro tmpfs /proc/bus || exit 1; \
         mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys || exit 1; \
         exec \"$OCIBUILD\" doctor --json",
    ));
    assert_eq!(v["userns"]["ok"], true, "{v:#}");
    assert_eq!(v["proc_mount"]["ok"], false, "{v:#}");
    let detail = v["proc_mount"]["detail"].as_str().unwrap();
    assert!(detail.contains("/proc/sys (read-only)"), "{detail}");
    assert!(detail.contains("mount proc"), "{detail}");
    // every step mounts a fresh /proc: userns is not offered, the next tier is chosen
    let userns = v["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tier"] == "userns")
        .unwrap();
    assert_eq!(userns["available"], false, "{v:#}");
    assert!(
        userns["why"].as_str().unwrap().contains("NO fresh /proc"),
        "{v:#}"
    );
    assert_ne!(v["chosen"], "userns", "{v:#}");
    assert!(
        fixes(&v).contains("securityContext.procMount: Unmasked` (and `hostUsers: false`)"),
        "{}",
        fixes(&v)
    );
}

#[test]
fn doctor_diagnoses_max_user_namespaces_0_and_falls_back_to_chroot() {
    // user.* sysctls are per user namespace: 0 here refuses nested user namespaces, while root of
    // this namespace can still make mount namespaces: the chroot tier.
    let mut cmd = in_userns(
        "echo 0 > /proc/sys/user/max_user_namespaces || exit 1; exec \"$OCIBUILD\" doctor --json",
    );
    let v = doctor_json(&mut cmd);
    assert_eq!(v["max_user_namespaces"], 0);
    assert_eq!(v["userns"]["ok"], false, "{v:#}");
    assert_eq!(v["chosen"], "chroot", "{v:#}");
    assert!(
        fixes(&v).contains("sysctl -w user.max_user_namespaces=15000"),
        "{}",
        fixes(&v)
    );
    // The human report says the same and still exits 0.
    let out = tk::run_ok_stdout(&mut in_userns(
        "echo 0 > /proc/sys/user/max_user_namespaces || exit 1; exec \"$OCIBUILD\" doctor",
    ));
    assert!(out.contains("Chosen: chroot"), "{out}");
    assert!(out.contains("NO  user namespaces"), "{out}");
}

// ---------------------------------------------------------------------------------------------
// docs/ci/k8s: each pod spec's `# doctor:` lines are what `ocibuild doctor` prints under that
// pod's constraints, reproduced here without Kubernetes: the pod's uid, capability bounding set,
// no_new_privs, seccomp profile (compiled from the same JSON a kubelet would load), /etc/subuid
// and the runtime's masked /proc.

fn k8s_doc(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/ci/k8s")
        .join(name)
}

/// The syscalls the profiles name.
fn syscall_nr(name: &str) -> i64 {
    match name {
        "unshare" => libc::SYS_unshare,
        "clone" => libc::SYS_clone,
        "clone3" => libc::SYS_clone3,
        "mount" => libc::SYS_mount,
        "umount2" => libc::SYS_umount2,
        "pivot_root" => libc::SYS_pivot_root,
        "setns" => libc::SYS_setns,
        "acct" => libc::SYS_acct,
        "add_key" => libc::SYS_add_key,
        "bpf" => libc::SYS_bpf,
        "delete_module" => libc::SYS_delete_module,
        "finit_module" => libc::SYS_finit_module,
        "init_module" => libc::SYS_init_module,
        "kexec_file_load" => libc::SYS_kexec_file_load,
        "kexec_load" => libc::SYS_kexec_load,
        "keyctl" => libc::SYS_keyctl,
        "lookup_dcookie" => libc::SYS_lookup_dcookie,
        "open_by_handle_at" => libc::SYS_open_by_handle_at,
        "perf_event_open" => libc::SYS_perf_event_open,
        "quotactl" => libc::SYS_quotactl,
        "reboot" => libc::SYS_reboot,
        "request_key" => libc::SYS_request_key,
        "swapoff" => libc::SYS_swapoff,
        "swapon" => libc::SYS_swapon,
        "syslog" => libc::SYS_syslog,
        "userfaultfd" => libc::SYS_userfaultfd,
        other => panic!("syscall {other} is not in the test's table"),
    }
}

/// An OCI seccomp profile (the subset the pod specs use: default allow, ERRNO rules, masked-equal
/// argument conditions) as BPF programs, one per errno.
fn compile_profile(json: &str) -> Vec<seccompiler::BpfProgram> {
    use seccompiler::{
        SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
        SeccompRule, TargetArch,
    };
    use std::collections::BTreeMap;
    let v: Value = serde_json::from_str(json).unwrap();
    assert_eq!(v["defaultAction"], "SCMP_ACT_ALLOW");
    // errno -> syscall -> rules (None: unconditional)
    let mut by_errno: BTreeMap<u32, BTreeMap<i64, Option<Vec<SeccompRule>>>> = BTreeMap::new();
    for s in v["syscalls"].as_array().unwrap() {
        assert_eq!(s["action"], "SCMP_ACT_ERRNO", "{s}");
        let errno = s["errnoRet"].as_u64().unwrap() as u32;
        let conds: Vec<SeccompCondition> = s["args"]
            .as_array()
            .map(|a| a.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|a| {
                assert_eq!(a["op"], "SCMP_CMP_MASKED_EQ", "{a}");
                SeccompCondition::new(
                    a["index"].as_u64().unwrap() as u8,
                    SeccompCmpArgLen::Qword,
                    SeccompCmpOp::MaskedEq(a["value"].as_u64().unwrap()),
                    a["valueTwo"].as_u64().unwrap(),
                )
                .unwrap()
            })
            .collect();
        for name in s["names"].as_array().unwrap() {
            let entry = by_errno
                .entry(errno)
                .or_default()
                .entry(syscall_nr(name.as_str().unwrap()))
                .or_insert_with(|| Some(Vec::new()));
            match (entry.as_mut(), conds.is_empty()) {
                (_, true) => *entry = None,
                (Some(rules), false) => rules.push(SeccompRule::new(conds.clone()).unwrap()),
                (None, false) => {}
            }
        }
    }
    let arch = TargetArch::try_from(std::env::consts::ARCH).unwrap();
    by_errno
        .into_iter()
        .map(|(errno, rules)| {
            let rules = rules
                .into_iter()
                .map(|(nr, r)| (nr, r.unwrap_or_default()))
                .collect();
            SeccompFilter::new(
                rules,
                SeccompAction::Allow,
                SeccompAction::Errno(errno),
                arch,
            )
            .unwrap()
            .try_into()
            .unwrap()
        })
        .collect()
}

/// containerd's and Docker's RuntimeDefault for a process without CAP_SYS_ADMIN, as far as
/// namespaces go: no unshare, no clone with a namespace flag, no mount/umount2/pivot_root/setns,
/// clone3 is ENOSYS.
fn runtime_default_namespace_rules() -> String {
    let flag = |bit: u64| {
        format!(
            r#"{{"names":["clone"],"action":"SCMP_ACT_ERRNO","errnoRet":1,"args":[{{"index":0,"value":{bit},"valueTwo":{bit},"op":"SCMP_CMP_MASKED_EQ"}}]}}"#
        )
    };
    let flags = [
        libc::CLONE_NEWNS,
        libc::CLONE_NEWUTS,
        libc::CLONE_NEWIPC,
        libc::CLONE_NEWUSER,
        libc::CLONE_NEWPID,
        libc::CLONE_NEWNET,
        libc::CLONE_NEWCGROUP,
    ]
    .map(|f| flag(f as u64))
    .join(",");
    format!(
        r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
          {{"names":["unshare","mount","umount2","pivot_root","setns"],"action":"SCMP_ACT_ERRNO","errnoRet":1}},
          {{"names":["clone3"],"action":"SCMP_ACT_ERRNO","errnoRet":38}},
          {flags}]}}"#
    )
}

/// The runtime's default masked paths (procMount: Default), then `exec "$@"`.
const MASK_PROC: &str = r#"
for p in /proc/acpi /proc/scsi; do [ -d "$p" ] && { mount -t tmpfs -o ro tmpfs "$p" || exit 1; }; done
for p in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug; do [ -e "$p" ] && { mount --bind /dev/null "$p" || exit 1; }; done
for p in /proc/bus /proc/fs /proc/irq /proc/sys /proc/sysrq-trigger; do
  [ -e "$p" ] && { mount --bind "$p" "$p" && mount -o remount,bind,ro "$p" || exit 1; }
done
exec "$@"
"#;

/// The userns pod (`hostUsers: false`, `procMount: Unmasked`): root of a user namespace with
/// 65536 ids and a fresh /proc. unshare maps the range through newuidmap, which reads it from
/// a bind-mounted /etc/subuid; inside, /etc/subuid is empty again (the pod has none).
const POD_USERNS: &str = r#"
mount --bind "$SUBIDS" /etc/subuid && mount --bind "$SUBIDS" /etc/subgid || exit 1
exec unshare --user --map-users=100000,0,65536 --map-groups=100000,0,65536 --setuid 0 --setgid 0 \
  --mount --pid --fork --mount-proc \
  sh -c 'mount --bind /dev/null /etc/subuid && mount --bind /dev/null /etc/subgid || exit 1; exec "$@"' sh "$@"
"#;

/// `ocibuild doctor` in a pod: `script` (which sets up the pod's namespaces and /proc, then
/// runs its arguments) in a new mount namespace, then setpriv to the pod's uid and capabilities,
/// under `seccomp` (installed in a thread of this process, which the child inherits; a filter
/// that refuses unshare comes with no script: the runtime sets up the pod before its filter).
fn doctor_in_pod(
    script: Option<&str>,
    setpriv: &[&str],
    subids: Option<&Path>,
    seccomp: Vec<seccompiler::BpfProgram>,
) -> String {
    let setpriv_exe = tk::require_tool("setpriv", "util-linux");
    let mut cmd = match script {
        Some(script) => {
            let mut c = Command::new(tk::require_tool("unshare", "util-linux"));
            c.args([
                "--mount",
                "--pid",
                "--fork",
                "--mount-proc",
                "sh",
                "-c",
                script,
                "sh",
            ])
            .arg(setpriv_exe);
            c
        }
        None => Command::new(setpriv_exe),
    };
    cmd.args(setpriv)
        .args([OCIBUILD, "doctor"])
        .env("TMPDIR", "/tmp")
        .env("SUBIDS", subids.map(|p| p.as_os_str()).unwrap_or_default());
    std::thread::spawn(move || {
        for prog in &seccomp {
            seccompiler::apply_filter(prog).unwrap();
        }
        tk::run_ok_stdout(&mut cmd)
    })
    .join()
    .unwrap()
}

/// The `# doctor:` lines of a pod spec: (status, what) and the `Chosen:` line.
fn promised(spec: &str) -> Vec<String> {
    spec.lines()
        .filter_map(|l| l.strip_prefix("# doctor:"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// Whether doctor's output has the line `status what ...` (or `Chosen: TIER ...`).
fn has_line(out: &str, want: &str) -> bool {
    out.lines().any(|l| {
        let l = l.split_whitespace().collect::<Vec<_>>().join(" ");
        l == want || l.starts_with(&format!("{want} "))
    })
}

fn assert_pod(spec_name: &str, out: &str) {
    let spec = std::fs::read_to_string(k8s_doc(spec_name)).unwrap();
    let want = promised(&spec);
    assert!(want.len() >= 4, "{spec_name} has no `# doctor:` lines");
    assert!(want.iter().any(|w| w.starts_with("Chosen:")), "{spec_name}");
    let missing: Vec<&String> = want.iter().filter(|w| !has_line(out, w)).collect();
    assert!(
        missing.is_empty(),
        "{spec_name} promises {missing:?}, but doctor under its constraints printed:\n{out}"
    );
}

#[test]
fn doctor_in_the_ci_pod_specs() {
    assert!(
        tk::is_root(),
        "this test builds each pod's constraints with unshare/setpriv and must run as root (CI does)"
    );
    tk::require_tool("newuidmap", "uidmap");
    tk::require_tool("newgidmap", "uidmap");
    let ctx = tk::TestContext::new();

    // pod-userns.yaml: root of the pod's user namespace (65536 ids), fresh /proc, the
    // capabilities it adds, no_new_privs, unconfined seccomp.
    let subids = ctx.path("subids");
    std::fs::write(&subids, "root:100000:65536\n").unwrap();
    let out = doctor_in_pod(
        Some(POD_USERNS),
        &[
            "--no-new-privs",
            "--inh-caps=-all",
            "--bounding-set=-all,+chown,+dac_override,+fowner,+fsetid,+setuid,+setgid,+setfcap,+kill",
        ],
        Some(&subids),
        Vec::new(),
    );
    assert_pod("pod-userns.yaml", &out);
    assert!(out.contains("root: any id range can be mapped"), "{out}");

    // pod-chroot.yaml: root with SYS_ADMIN and the other build capabilities, no_new_privs
    // (allowPrivilegeEscalation: false), the Localhost seccomp profile shipped beside it.
    let profile = std::fs::read_to_string(k8s_doc("seccomp-ocibuild-chroot.json")).unwrap();
    let out = doctor_in_pod(
        Some(MASK_PROC),
        &[
            "--no-new-privs",
            "--inh-caps=-all",
            "--bounding-set=-all,+sys_admin,+sys_chroot,+chown,+dac_override,+fowner,+fsetid,+setuid,+setgid,+kill",
        ],
        None,
        compile_profile(&profile),
    );
    assert_pod("pod-chroot.yaml", &out);
    assert!(out.contains("refused by seccomp"), "{out}");

    // pod-restricted.yaml: uid 1000, no capabilities, no_new_privs, RuntimeDefault.
    let out = doctor_in_pod(
        None,
        &[
            "--reuid=1000",
            "--regid=1000",
            "--clear-groups",
            "--no-new-privs",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ],
        None,
        compile_profile(&runtime_default_namespace_rules()),
    );
    assert_pod("pod-restricted.yaml", &out);
    assert!(out.contains("NO ISOLATION"), "{out}");
}

#[test]
fn a_pod_spec_promising_the_wrong_tier_fails_the_comparison() {
    // The comparison can fail: the restricted pod's real output does not contain a promise of
    // `userns`.
    let out = "  NO  userns                                         refused\n\nChosen: host\n";
    assert!(has_line(out, "NO userns"));
    assert!(!has_line(out, "ok userns"));
    assert!(!has_line(out, "Chosen: userns"));
    assert!(has_line(out, "Chosen: host"));
}
