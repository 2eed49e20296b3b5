//! # ocibuild-sandbox — run build steps isolated, rootless, daemonless
//!
//! Build steps (Dockerfile `RUN`, language builders) execute untrusted commands. This crate probes
//! what the host allows (`ocibuild doctor`), picks the strongest isolation tier available —
//! `userns` (unprivileged user + mount + pid + ipc + uts [+ net] namespaces, pivot_root),
//! `chroot` (already root, no user namespaces: an unprivileged pod), `host` (no isolation, only
//! when asked, and said loudly) — and runs a [`run::Spec`] in it, returning the exit status, the
//! output and the upper dir holding the step's changes.
//!
//! Design: no `unsafe`. The sandboxed process tree is built by re-executing the current binary
//! (`/proc/self/exe`) in hidden helper modes (see [`helper`]): the first helper unshares the
//! namespaces for itself (safe in nix), writes its own uid/gid maps, and spawns the second, which
//! is PID 1 of the new pid namespace, sets up mounts, pivots root, and spawns the step. A binary
//! that uses this crate must call [`helper::dispatch`] first thing in `main`.
//! Privileged calls go through the [`syscall::Syscall`] trait so the mount and namespace logic is
//! unit-tested without root. May depend on nix/libc; must never print.

pub mod emulation;
pub mod error;
pub mod helper;
pub mod idmap;
pub mod mounts;
pub mod probe;
pub mod run;
pub mod syscall;

pub use error::SandboxError;
