//! Full id ranges in the user namespace. A process can only map its own uid into a user
//! namespace it created; mapping 65536 ids needs a writer outside it with privilege in the parent
//! namespace. Stage 1 therefore spawns a mapper (helper mode [`MODE_MAP`]) *before* it unshares;
//! after unsharing it tells the mapper to go, and the mapper writes `/proc/<stage1>/uid_map` and
//! `gid_map`: directly when it is root (identity map of ids 0–65535), else through the setuid
//! `newuidmap`/`newgidmap` with the user's `/etc/subuid` / `/etc/subgid` range (container root →
//! the user, 1–65535 → the range). Without either, stage 1 falls back to mapping one id.

use std::ffi::OsString;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::helper::MODE_MAP;

/// How the ids will be mapped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MapPlan {
    /// Root outside: ids 0..count inside are the same ids outside.
    Identity { count: u32 },
    /// newuidmap/newgidmap: 0 → the user, 1..=count → start.. from /etc/subuid and /etc/subgid.
    Sub {
        uid: u32,
        gid: u32,
        uid_start: u64,
        uid_count: u64,
        gid_start: u64,
        gid_count: u64,
        newuidmap: PathBuf,
        newgidmap: PathBuf,
    },
}

impl MapPlan {
    /// The lines written to uid_map and gid_map (for the direct write), or the newuidmap args.
    pub fn uid_map(&self) -> String {
        match self {
            MapPlan::Identity { count } => format!("0 0 {count}\n"),
            MapPlan::Sub {
                uid,
                uid_start,
                uid_count,
                ..
            } => format!("0 {uid} 1\n1 {uid_start} {uid_count}\n"),
        }
    }
    pub fn gid_map(&self) -> String {
        match self {
            MapPlan::Identity { count } => format!("0 0 {count}\n"),
            MapPlan::Sub {
                gid,
                gid_start,
                gid_count,
                ..
            } => format!("0 {gid} 1\n1 {gid_start} {gid_count}\n"),
        }
    }
    /// Is this id (uid or gid) mapped inside?
    pub fn covers(&self, id: u32) -> bool {
        match self {
            MapPlan::Identity { count } => id < *count,
            MapPlan::Sub {
                uid_count,
                gid_count,
                ..
            } => u64::from(id) <= (*uid_count).min(*gid_count),
        }
    }
}

fn sub_range(file: &str, user: Option<&str>, id: u32) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(file).ok()?;
    let id = id.to_string();
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.trim().split(':').collect();
        if f.len() != 3 || !(Some(f[0]) == user || f[0] == id) {
            return None;
        }
        Some((f[1].parse().ok()?, f[2].parse().ok()?))
    })
}

fn find(name: &str) -> Option<PathBuf> {
    ["/usr/bin", "/usr/sbin", "/bin", "/sbin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
}

fn user_name(uid: u32) -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
}

/// The best full-range plan for the invoking user, if any.
pub fn plan(uid: u32, gid: u32) -> Option<MapPlan> {
    if uid == 0 {
        return Some(MapPlan::Identity { count: 65536 });
    }
    let name = user_name(uid);
    let (uid_start, uid_count) = sub_range("/etc/subuid", name.as_deref(), uid)?;
    let (gid_start, gid_count) = sub_range("/etc/subgid", name.as_deref(), uid)?;
    Some(MapPlan::Sub {
        uid,
        gid,
        uid_start,
        uid_count: uid_count.min(65535),
        gid_start,
        gid_count: gid_count.min(65535),
        newuidmap: find("newuidmap")?,
        newgidmap: find("newgidmap")?,
    })
}

/// A mapper spawned before the unshare, waiting for the word.
pub struct Mapper {
    child: Child,
}

impl Mapper {
    /// Spawn the mapper for process `pid` (stage 1 itself).
    pub fn spawn(exe: &Path, pid: u32, plan: &MapPlan) -> std::io::Result<Mapper> {
        let json = serde_json::to_string(plan).map_err(std::io::Error::other)?;
        let child = Command::new(exe)
            .arg(MODE_MAP)
            .arg(pid.to_string())
            .arg(json)
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        Ok(Mapper { child })
    }

    /// Tell the mapper to write the maps now; Ok when it did.
    pub fn go(mut self) -> Result<(), String> {
        if let Some(mut stdin) = self.child.stdin.take() {
            stdin
                .write_all(b"go\n")
                .map_err(|e| format!("telling the id mapper to go: {e}"))?;
        }
        let status = self
            .child
            .wait()
            .map_err(|e| format!("waiting for the id mapper: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            let mut err = String::new();
            if let Some(mut e) = self.child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            Err(err.trim().to_string())
        }
    }
}

impl Drop for Mapper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Helper mode [`MODE_MAP`]: `<pid> <plan json>`; waits for a line on stdin, then maps.
pub fn map_main(args: &[OsString]) -> i32 {
    let (Some(pid), Some(plan)) = (
        args.first().and_then(|a| a.to_str()),
        args.get(1).and_then(|a| a.to_str()),
    ) else {
        eprintln!("id mapper: expected <pid> <plan>");
        return 2;
    };
    let Ok(plan) = serde_json::from_str::<MapPlan>(plan) else {
        eprintln!("id mapper: bad plan");
        return 2;
    };
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() || line.trim() != "go" {
        return 3; // stage 1 went away, or chose not to use us
    }
    match write_maps(pid, &plan) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

fn write_maps(pid: &str, plan: &MapPlan) -> Result<(), String> {
    match plan {
        MapPlan::Identity { .. } => {
            for (file, data) in [("uid_map", plan.uid_map()), ("gid_map", plan.gid_map())] {
                let p = format!("/proc/{pid}/{file}");
                std::fs::write(&p, data).map_err(|e| format!("writing {p}: {e}"))?;
            }
            Ok(())
        }
        MapPlan::Sub {
            uid,
            gid,
            uid_start,
            uid_count,
            gid_start,
            gid_count,
            newuidmap,
            newgidmap,
        } => {
            for (tool, own, start, count) in [
                (newuidmap, uid, uid_start, uid_count),
                (newgidmap, gid, gid_start, gid_count),
            ] {
                let out = Command::new(tool)
                    .args([
                        pid.to_string(),
                        "0".into(),
                        own.to_string(),
                        "1".into(),
                        "1".into(),
                        start.to_string(),
                        count.to_string(),
                    ])
                    .output()
                    .map_err(|e| format!("running {}: {e}", tool.display()))?;
                if !out.status.success() {
                    return Err(format!(
                        "{} failed: {}",
                        tool.display(),
                        String::from_utf8_lossy(&out.stderr).trim()
                    ));
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps() {
        let p = MapPlan::Identity { count: 65536 };
        assert_eq!(p.uid_map(), "0 0 65536\n");
        assert!(p.covers(1000) && !p.covers(70000));
        let s = MapPlan::Sub {
            uid: 1000,
            gid: 1000,
            uid_start: 100000,
            uid_count: 65535,
            gid_start: 100000,
            gid_count: 65535,
            newuidmap: "/x".into(),
            newgidmap: "/y".into(),
        };
        assert_eq!(s.uid_map(), "0 1000 1\n1 100000 65535\n");
        assert!(s.covers(65535) && !s.covers(65536));
    }
}
