//! `ocibuild doctor` end to end: the JSON report parses and names a tier, the human report lists
//! checks, tiers and fixes, it exits 0 even when isolation is refused, and real refusals made with
//! `unshare` (a masked /proc, user.max_user_namespaces=0) are diagnosed with the right fix.
#![allow(clippy::unwrap_used, clippy::expect_used)]

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
    assert_eq!(v["chosen"], "userns");
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
