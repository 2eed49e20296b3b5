//! `ocibuild doctor`: what isolation this host allows for build steps, which tier a build would
//! use, and the exact fix for every refused feature. Always exits 0: it reports, it does not judge
//! (a build decides what to refuse).

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::{Context, Result};
use ocibuild_sandbox::emulation::{self, Emulation};
use ocibuild_sandbox::probe::{self, Check, Report, Tier};

use crate::cli::{DoctorArgs, Global};

pub fn run(_g: &Global, a: DoctorArgs) -> Result<ExitCode> {
    let report = match &a.helper {
        Some(exe) => probe::probe_using(exe),
        None => probe::probe(),
    };
    let platforms = platforms();
    if a.json {
        let mut v = serde_json::to_value(&report).context("serializing the probe report")?;
        if let Some(o) = v.as_object_mut() {
            o.insert("platforms".into(), platforms_json(&platforms));
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&v).context("serializing the probe report")?
        );
    } else {
        print!("{}", render(&report));
        print!("{}", render_platforms(&platforms));
    }
    Ok(ExitCode::SUCCESS)
}

/// The platforms whose RUN steps a build may meet, and whether each can run here.
const PLATFORMS: [(&str, &str); 7] = [
    ("linux/amd64", "amd64"),
    ("linux/arm64", "arm64"),
    ("linux/arm/v7", "arm"),
    ("linux/386", "386"),
    ("linux/ppc64le", "ppc64le"),
    ("linux/s390x", "s390x"),
    ("linux/riscv64", "riscv64"),
];

fn platforms() -> Vec<(&'static str, &'static str, Emulation)> {
    PLATFORMS
        .iter()
        .map(|(p, arch)| (*p, *arch, emulation::check(arch)))
        .collect()
}

fn platforms_json(ps: &[(&str, &str, Emulation)]) -> serde_json::Value {
    serde_json::Value::Array(
        ps.iter()
            .map(|(p, arch, e)| {
                let (run, how) = match e {
                    Emulation::Native => (true, "native".to_string()),
                    Emulation::Registered(h) => (
                        true,
                        format!("{} ({}, flags {})", h.name, h.interpreter, h.flags),
                    ),
                    Emulation::Unavailable(why) => (false, why.clone()),
                };
                let mut v = serde_json::json!({"platform": p, "can_run": run, "detail": how});
                if !run {
                    v["fix"] = serde_json::json!(emulation::fix_hint(arch));
                }
                v
            })
            .collect(),
    )
}

/// The platforms section: which foreign platforms' RUN steps can run here, and the fix.
pub fn render_platforms(ps: &[(&str, &str, Emulation)]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nplatforms: RUN steps of another architecture run under qemu-user through binfmt_misc"
    );
    let mut missing = None;
    for (p, arch, e) in ps {
        match e {
            Emulation::Native => line(&mut out, OK, p, "native"),
            Emulation::Registered(h) => line(
                &mut out,
                OK,
                p,
                &format!("emulated by {} ({})", h.name, h.interpreter),
            ),
            Emulation::Unavailable(why) => {
                line(&mut out, NO, p, why);
                missing.get_or_insert(*arch);
            }
        }
    }
    if let Some(arch) = missing {
        let _ = writeln!(out, "\n  fix: {}", emulation::fix_hint(arch));
        let _ = writeln!(
            out,
            "  (stages on `FROM --platform=$BUILDPLATFORM` run natively and need none of this)"
        );
    }
    out
}

const OK: &str = "ok";
const NO: &str = "NO";
const INFO: &str = "--";

fn line(out: &mut String, status: &str, what: &str, detail: &str) {
    let _ = writeln!(out, "  {status:<2}  {what:<46} {detail}");
}

fn check(out: &mut String, what: &str, c: &Check) {
    line(out, if c.ok { OK } else { NO }, what, &c.detail);
}

/// The human report: one line per check, the tiers, the chosen one, then the fixes.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let who = r.user.clone().unwrap_or_else(|| format!("uid {}", r.euid));
    let _ = writeln!(
        out,
        "ocibuild doctor: what isolation this host allows for build steps\n"
    );
    line(
        &mut out,
        INFO,
        "running as",
        &if r.root {
            format!("{who} (euid 0: root)")
        } else {
            format!("{who} (euid {}, not root)", r.euid)
        },
    );
    line(&mut out, INFO, "kernel", &r.kernel);
    check(&mut out, "user namespaces", &r.userns);
    match r.unprivileged_userns_clone {
        None => line(
            &mut out,
            INFO,
            "kernel.unprivileged_userns_clone",
            "not present (this kernel has no such switch)",
        ),
        Some(true) => line(&mut out, OK, "kernel.unprivileged_userns_clone", "1"),
        Some(false) if r.root => line(
            &mut out,
            INFO,
            "kernel.unprivileged_userns_clone",
            "0 (does not apply to root)",
        ),
        Some(false) => line(
            &mut out,
            NO,
            "kernel.unprivileged_userns_clone",
            "0: user namespaces disabled for non-root users",
        ),
    }
    match r.max_user_namespaces {
        None => line(&mut out, INFO, "user.max_user_namespaces", "not readable"),
        Some(0) => line(
            &mut out,
            NO,
            "user.max_user_namespaces",
            "0: user namespaces disabled",
        ),
        Some(n) => line(&mut out, OK, "user.max_user_namespaces", &n.to_string()),
    }
    match r.apparmor_restrict_unprivileged_userns {
        None => line(
            &mut out,
            INFO,
            "kernel.apparmor_restrict_unprivileged_userns",
            "not present (no AppArmor user namespace restriction)",
        ),
        Some(false) => line(
            &mut out,
            OK,
            "kernel.apparmor_restrict_unprivileged_userns",
            "0",
        ),
        Some(true) if r.root => line(
            &mut out,
            INFO,
            "kernel.apparmor_restrict_unprivileged_userns",
            "1 (does not apply to root)",
        ),
        Some(true) => line(
            &mut out,
            NO,
            "kernel.apparmor_restrict_unprivileged_userns",
            "1: restricted by AppArmor",
        ),
    }
    check(&mut out, "unshare attempt", &r.unshare_attempt);
    for (name, path) in [("newuidmap", &r.newuidmap), ("newgidmap", &r.newgidmap)] {
        match path {
            Some(p) => line(&mut out, OK, name, &p.display().to_string()),
            None if r.root => line(&mut out, INFO, name, "not found (not needed as root)"),
            None => line(&mut out, NO, name, "not found"),
        }
    }
    for (name, range) in [("/etc/subuid", r.subuid), ("/etc/subgid", r.subgid)] {
        match range {
            Some((start, n)) => line(
                &mut out,
                if n >= 65536 || r.root { OK } else { NO },
                name,
                &format!("{who}: {n} ids from {start}"),
            ),
            None if r.root => line(
                &mut out,
                INFO,
                name,
                &format!("no range for {who} (not needed as root)"),
            ),
            None => line(&mut out, NO, name, &format!("no range for {who}")),
        }
    }
    check(
        &mut out,
        "overlayfs in a user namespace",
        &r.overlay_in_userns,
    );
    check(
        &mut out,
        "fresh /proc (masked-/proc detection)",
        &r.proc_mount,
    );
    match &r.mount_namespace {
        Some(c) => check(&mut out, "mount namespace as root (chroot tier)", c),
        None => line(
            &mut out,
            INFO,
            "mount namespace as root (chroot tier)",
            "not tried: not root",
        ),
    }
    line(&mut out, INFO, "cgroup", &r.cgroup);

    let _ = writeln!(out, "\nIsolation tiers (strongest first):");
    for t in &r.tiers {
        line(
            &mut out,
            if t.available { OK } else { NO },
            &t.tier.to_string(),
            &t.why,
        );
    }
    let _ = writeln!(
        out,
        "\nChosen: {}{}",
        r.chosen,
        if r.chosen == Tier::Host {
            " (NO ISOLATION: builds refuse to run steps unless --isolation host or the fallback is allowed)"
        } else {
            ""
        }
    );
    if r.fixes.is_empty() {
        let _ = writeln!(
            out,
            "\nTo get more isolation: nothing to do; the strongest tier ({}) is available.",
            r.chosen
        );
    } else {
        let _ = writeln!(out, "\nTo get more isolation:");
        for f in &r.fixes {
            let _ = writeln!(out, "  - {}\n    fix: {}", f.problem, f.fix);
        }
    }
    out
}
