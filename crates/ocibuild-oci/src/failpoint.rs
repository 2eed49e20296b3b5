//! Failpoints for the crash-consistency soak (`scripts/soak.sh`): **test-only**, compiled in
//! always, inert unless `OCIBUILD_FAILPOINT` is set.
//!
//! `OCIBUILD_FAILPOINT=PHASE[:N][,PHASE[:N]…]` makes the process kill itself with `SIGKILL` (a
//! real `kill -9`: no destructors, no flushes, no cleanup) the N-th time (default: the first) it
//! reaches the named point. Before dying it writes one line to stderr,
//! `ocibuild failpoint: PHASE:N: SIGKILL`, so a soak can tell which point fired. The points:
//!
//! | phase | where |
//! | --- | --- |
//! | `layer-write` | the layer writer, before each tar entry (a partial layer in `tmp/`) |
//! | `blob-commit` | a store blob written and fsynced, before its rename into `blobs/` |
//! | `record-commit` | a record (step, build, base pin, lock) written, before its rename |
//! | `blob-upload` | a registry upload session opened, before the first byte is sent |
//! | `cache-export` | a remote cache's blobs uploaded, before its index object is created |
//! | `base-assembly` | a Debian base's layer stored, before the next one or the manifest |
//! | `prune` | `cache prune`, after each unit it removed |
//!
//! Each point is one line, `ocibuild_oci::failpoint::hit("PHASE")`. Unset, a hit costs one
//! load of an initialised `OnceLock`. Never set this variable outside tests.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The variable that arms failpoints.
pub const ENV: &str = "OCIBUILD_FAILPOINT";

/// Every named point, for the soak's table and for checking a spec.
pub const PHASES: &[&str] = &[
    "layer-write",
    "blob-commit",
    "record-commit",
    "blob-upload",
    "cache-export",
    "base-assembly",
    "prune",
];

#[derive(Debug)]
struct Armed {
    phase: String,
    nth: u64,
    hits: AtomicU64,
}

/// Parse a spec (`PHASE[:N]`, comma-separated). Unknown phases and bad counts are ignored
/// (a failpoint that never fires shows up as "not reached" in the soak, not as a crash).
fn parse(spec: &str) -> Vec<Armed> {
    spec.split(',')
        .filter_map(|item| {
            let item = item.trim();
            let (phase, nth) = match item.split_once(':') {
                Some((p, n)) => (p, n.trim().parse::<u64>().ok()?),
                None => (item, 1),
            };
            (PHASES.contains(&phase) && nth > 0).then(|| Armed {
                phase: phase.to_string(),
                nth,
                hits: AtomicU64::new(0),
            })
        })
        .collect()
}

fn armed() -> &'static [Armed] {
    static ARMED: OnceLock<Vec<Armed>> = OnceLock::new();
    ARMED.get_or_init(|| {
        std::env::var(ENV)
            .ok()
            .map(|s| parse(&s))
            .unwrap_or_default()
    })
}

/// The point `phase` is reached: when armed for this hit, the process dies by `SIGKILL`.
pub fn hit(phase: &str) {
    for a in armed() {
        if a.phase == phase && a.hits.fetch_add(1, Ordering::SeqCst) + 1 == a.nth {
            eprintln!("ocibuild failpoint: {phase}:{}: SIGKILL", a.nth);
            kill_self();
        }
    }
}

#[allow(unsafe_code)]
fn kill_self() {
    // SAFETY: kill(2) and getpid(2) take plain integers and touch no memory of ours.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    // SIGKILL cannot be caught; should kill(2) fail, still never return into the code path.
    std::process::abort();
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        let a = parse("layer-write:3, prune ,bogus:2,blob-upload:x,record-commit:0");
        let got: Vec<(&str, u64)> = a.iter().map(|a| (a.phase.as_str(), a.nth)).collect();
        assert_eq!(got, vec![("layer-write", 3), ("prune", 1)]);
        assert!(parse("").is_empty());
    }

    #[test]
    fn unarmed_points_do_nothing() {
        // the test process has no OCIBUILD_FAILPOINT: every point passes
        for p in PHASES {
            hit(p);
        }
    }
}
