//! Hidden helper modes of the binary. The sandbox re-executes the current binary
//! (`/proc/self/exe`, or [`helper_exe`]) with one of these as `argv[1]`; a binary using this
//! crate calls [`dispatch`] first thing in `main`, before parsing its own flags.

use std::path::PathBuf;

/// Stage 1 of a sandboxed run: unshare namespaces, write id maps, spawn stage 2.
pub const MODE_RUN: &str = "__ocibuild-sandbox-run";
/// Stage 2: PID 1 of the new pid namespace: mounts, pivot_root, then the step itself.
pub const MODE_INIT: &str = "__ocibuild-sandbox-init";
/// Writes the id maps of a process that has just unshared its user namespace, from outside it:
/// a full range (root: identity; others: their `/etc/subuid` range through newuidmap).
pub const MODE_MAP: &str = "__ocibuild-sandbox-map";
/// The probe's actual attempts (unshare, overlay in a userns, mounting /proc), in a child so
/// nothing of it touches the calling process.
pub const MODE_PROBE: &str = "__ocibuild-sandbox-probe";

/// If `argv[1]` names a helper mode, run it and exit the process with its status; otherwise
/// return and let the program go on.
pub fn dispatch() {
    let mut args = std::env::args_os();
    let _argv0 = args.next();
    let Some(mode) = args.next() else { return };
    let rest: Vec<std::ffi::OsString> = args.collect();
    let code = match mode.to_str() {
        Some(MODE_RUN) => crate::run::stage1_main(&rest),
        Some(MODE_INIT) => crate::run::stage2_main(&rest),
        Some(MODE_PROBE) => crate::probe::probe_child_main(&rest),
        Some(MODE_MAP) => crate::idmap::map_main(&rest),
        _ => return,
    };
    std::process::exit(code);
}

/// The executable to re-execute for helper modes: `$OCIBUILD_SANDBOX_HELPER` (tests), else the
/// current executable.
pub fn helper_exe() -> std::io::Result<PathBuf> {
    if let Some(p) = std::env::var_os("OCIBUILD_SANDBOX_HELPER").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    std::env::current_exe()
}
