//! `ocibuild run`: one build step in the sandbox, as the engine will run RUN lines and builders.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use ocibuild_sandbox::SandboxError;
use ocibuild_sandbox::probe::{Isolation, choose_tier, probe};
use ocibuild_sandbox::run::{Mount, Network, RootfsSource, Spec, Tier, run as run_step};
use serde_json::json;

use crate::cli::{Global, IsolationArg, NetworkArg, RunArgs};
use crate::output::Reporter;

pub fn run(g: &Global, a: RunArgs) -> Result<ExitCode> {
    let rep = Reporter::new(g.progress);
    let want = match a.isolation {
        IsolationArg::Auto => Isolation::Auto {
            allow_host: a.allow_host,
        },
        IsolationArg::Userns => Isolation::Force(Tier::Userns),
        IsolationArg::Chroot => Isolation::Force(Tier::Chroot),
        IsolationArg::Host => Isolation::Force(Tier::Host),
    };
    let tier = match want {
        // Asking for host needs no probe.
        Isolation::Force(Tier::Host) => Tier::Host,
        w => choose_tier(&probe(), w)?,
    };
    if tier == Tier::Host {
        rep.event(
            "WARNING: --isolation host: the step runs directly on this machine, with no isolation at all",
            json!({"event": "warning", "message": "no isolation (host tier)"}),
        );
    }
    let mut env: Vec<(String, String)> = Vec::new();
    if !a.env.iter().any(|e| e.starts_with("PATH=")) {
        env.push((
            "PATH".into(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        ));
    }
    for e in &a.env {
        let (k, v) = e
            .split_once('=')
            .ok_or_else(|| crate::output::usage(format!("--env {e}: expected KEY=VALUE")))?;
        env.push((k.to_string(), v.to_string()));
    }
    let mut mounts = Vec::new();
    for m in &a.mounts {
        let parts: Vec<&str> = m.split(':').collect();
        let (src, dest, ro) = match parts.as_slice() {
            [s, d] => (*s, *d, false),
            [s, d, "ro"] => (*s, *d, true),
            [s, d, "rw"] => (*s, *d, false),
            _ => {
                return Err(crate::output::usage(format!(
                    "--mount {m}: expected SRC:DEST[:ro]"
                )));
            }
        };
        mounts.push(Mount::Bind {
            src: PathBuf::from(src),
            dest: dest.to_string(),
            readonly: ro,
        });
    }
    let tmp_upper;
    let upper = match &a.upper {
        Some(u) => {
            std::fs::create_dir_all(u)
                .with_context(|| format!("creating --upper {}", u.display()))?;
            std::fs::canonicalize(u).with_context(|| format!("--upper {}", u.display()))?
        }
        None => {
            tmp_upper =
                tempfile::tempdir().context("creating a temp dir for the step's changes")?;
            tmp_upper.path().to_path_buf()
        }
    };
    let rootfs = a
        .rootfs
        .iter()
        .map(|r| std::fs::canonicalize(r).with_context(|| format!("--rootfs {}", r.display())))
        .collect::<Result<Vec<_>>>()?;
    let spec = Spec {
        rootfs: RootfsSource::Dirs(rootfs),
        upper,
        mounts,
        env,
        cwd: a.workdir.clone(),
        user: a.user.clone(),
        args: a.command.clone(),
        network: match a.network {
            NetworkArg::None => Network::None,
            NetworkArg::Host => Network::Host,
        },
        timeout: a.timeout.map(Duration::from_secs),
        capture: false,
        ..Spec::default()
    };
    rep.event(
        &format!("running in the {tier} tier"),
        json!({"event": "sandbox", "tier": tier.to_string()}),
    );
    let out = match run_step(&spec, tier) {
        Ok(o) => o,
        Err(SandboxError::Timeout { secs }) => {
            // as a shell reports a killed process: 128 + SIGKILL
            eprintln!(
                "error: the step ran longer than --timeout {secs} s and was killed (SIGKILL), with everything it started"
            );
            return Ok(ExitCode::from(128 + 9));
        }
        Err(e) => return Err(anyhow::Error::new(e).context("running the step in the sandbox")),
    };
    for n in &out.notes {
        rep.event(n, json!({"event": "note", "message": n}));
    }
    Ok(ExitCode::from(out.status.clamp(0, 255) as u8))
}
