//! The sandbox's filesystem: path checks, resolving mount destinations *inside* the new root,
//! the mount plan executed by the PID-1 helper (through [`Syscall`], so it is unit-tested with
//! [`crate::syscall::TestSyscall`]), and the copy fallback (copy the lower dirs, diff afterwards)
//! used when overlayfs is refused.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::mount::MsFlags;
use serde::{Deserialize, Serialize};

use crate::error::{Result, SandboxError};
use crate::run::{Mount, Network};
use crate::syscall::{MountCall, Syscall};

/// Host device nodes bind-mounted into the sandbox's tmpfs `/dev`.
pub const DEV_NODES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// A bind source: absolute, without `..` components.
pub fn check_bind_source(src: &Path) -> Result<()> {
    if !src.is_absolute() {
        return Err(SandboxError::Spec(format!(
            "bind source {} is not an absolute path",
            src.display()
        )));
    }
    if src.components().any(|c| c == Component::ParentDir) {
        return Err(SandboxError::Spec(format!(
            "bind source {} contains a `..` component",
            src.display()
        )));
    }
    Ok(())
}

/// A destination inside the sandbox (`/src`, `etc/hosts`): the normal components, with `..`
/// rejected. The empty path and `/` are rejected too (one cannot mount over the root).
pub fn check_dest(dest: &str) -> Result<Vec<OsString>> {
    let mut out = Vec::new();
    for c in Path::new(dest).components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n.to_os_string()),
            Component::ParentDir => {
                return Err(SandboxError::Spec(format!(
                    "mount destination `{dest}` contains a `..` component"
                )));
            }
            Component::Prefix(_) => {
                return Err(SandboxError::Spec(format!(
                    "bad mount destination `{dest}`"
                )));
            }
        }
    }
    if out.is_empty() {
        return Err(SandboxError::Spec(format!(
            "mount destination `{dest}` names the root itself"
        )));
    }
    Ok(out)
}

/// Resolve `dest` inside `root` the way the kernel would *after* `pivot_root`: symlinks met on
/// the way are followed relative to `root` (an absolute link target restarts at `root`, `..` stops
/// at `root`), so a symlink in the rootfs can never make a mount land on a host path. Missing
/// components are kept as they are (they will be created). Returns the host path.
pub fn resolve_in_root(root: &Path, dest: &str) -> Result<PathBuf> {
    let mut queue: VecDeque<OsString> = check_dest(dest)?.into();
    let mut cur = PathBuf::new();
    let mut hops = 0;
    while let Some(c) = queue.pop_front() {
        if c == ".." {
            cur.pop();
            continue;
        }
        let cand = cur.join(&c);
        let host = root.join(&cand);
        match fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() => {
                hops += 1;
                if hops > 40 {
                    return Err(SandboxError::Spec(format!(
                        "too many symlinks resolving `{dest}` in the rootfs"
                    )));
                }
                let target = fs::read_link(&host)
                    .map_err(SandboxError::io(format!("readlink {}", host.display())))?;
                let mut pre = Vec::new();
                for tc in target.components() {
                    match tc {
                        Component::RootDir => {
                            cur = PathBuf::new();
                            pre.clear();
                        }
                        Component::CurDir | Component::Prefix(_) => {}
                        Component::ParentDir => pre.push(OsString::from("..")),
                        Component::Normal(n) => pre.push(n.to_os_string()),
                    }
                }
                for p in pre.into_iter().rev() {
                    queue.push_front(p);
                }
            }
            _ => cur = cand,
        }
    }
    Ok(root.join(cur))
}

/// Escape a path for an overlayfs option value (`,` `:` and `\` are special).
fn overlay_escape(p: &Path) -> String {
    let s = p.to_string_lossy();
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if matches!(ch, ',' | ':' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

/// The overlayfs option string; `lowers` lowest first (overlayfs wants the topmost first).
pub fn overlay_options(lowers: &[PathBuf], upper: &Path, work: &Path, userxattr: bool) -> String {
    let lower: Vec<String> = lowers.iter().rev().map(|p| overlay_escape(p)).collect();
    let mut o = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        overlay_escape(upper),
        overlay_escape(work)
    );
    if userxattr {
        o.push_str(",userxattr");
    }
    o
}

/// What the PID-1 helper sets up.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MountPlan {
    /// The (empty) mount point that becomes `/`.
    pub root: PathBuf,
    pub lowers: Vec<PathBuf>,
    pub upper: PathBuf,
    /// overlayfs work dir (same filesystem as `upper`).
    pub work: PathBuf,
    /// Where the lower dirs are copied when overlayfs is refused.
    pub copy_dir: PathBuf,
    /// An empty dir for the "init layer": the missing mount points, put on top of the lower
    /// dirs so that creating them never shows up in the upper dir.
    pub init_dir: PathBuf,
    pub force_copy: bool,
    /// Inside a user namespace (overlay with `userxattr`, refusals explained accordingly).
    pub userns: bool,
    pub network: Network,
    pub mounts: Vec<Mount>,
    pub hostname: String,
    /// `/tmp` stays the rootfs's own directory (a Dockerfile RUN's writes there belong to the
    /// layer, as with docker); default: a fresh tmpfs.
    #[serde(default)]
    pub keep_tmp: bool,
}

/// What the setup did, reported to the caller.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SetupReport {
    /// The rootfs is an overlay whose upper dir is the caller's `upper`.
    pub overlay: bool,
    /// `pivot_root` worked (else `chroot` was used).
    pub pivot_root: bool,
    /// Mount points the setup had to create in the rootfs (relative paths, creation order): they
    /// are removed from the upper dir / ignored by the diff afterwards.
    pub created: Vec<PathBuf>,
    pub notes: Vec<String>,
}

fn mcall(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> MountCall {
    MountCall {
        source: source.map(Path::to_path_buf),
        target: target.to_path_buf(),
        fstype: fstype.map(str::to_string),
        #[allow(clippy::unnecessary_cast)] // c_ulong on some targets
        flags: flags.bits() as u64,
        data: data.map(str::to_string),
    }
}

fn refused(what: impl Into<String>, e: &io::Error, fix: Option<String>) -> SandboxError {
    SandboxError::Refused {
        what: what.into(),
        cause: e.to_string(),
        fix,
    }
}

/// Create `path` (a dir, or an empty file when `file`) if missing, recording it in `created`
/// relative to `root`.
fn ensure(root: &Path, path: &Path, file: bool, created: &mut Vec<PathBuf>) -> Result<()> {
    if fs::symlink_metadata(path).is_ok() {
        return Ok(());
    }
    // Create missing parents one by one, so each one is recorded.
    let rel = path.strip_prefix(root).unwrap_or(path).to_path_buf();
    let mut acc = root.to_path_buf();
    let comps: Vec<_> = rel.components().collect();
    for (i, c) in comps.iter().enumerate() {
        acc.push(c);
        if fs::symlink_metadata(&acc).is_ok() {
            continue;
        }
        let last = i + 1 == comps.len();
        let r = if last && file {
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&acc)
                .map(drop)
        } else {
            fs::create_dir(&acc)
        };
        r.map_err(SandboxError::io(format!(
            "create mount point {}",
            acc.display()
        )))?;
        created.push(acc.strip_prefix(root).unwrap_or(&acc).to_path_buf());
    }
    Ok(())
}

/// Flags of the mount holding `path` that an unprivileged bind remount must keep ("locked").
fn locked_flags(path: &Path) -> MsFlags {
    use nix::sys::statvfs::FsFlags;
    let mut f = MsFlags::empty();
    if let Ok(st) = nix::sys::statvfs::statvfs(path) {
        let fl = st.flags();
        for (a, b) in [
            (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
            (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
            (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
            (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
            (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
            (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
        ] {
            if fl.contains(a) {
                f |= b;
            }
        }
    }
    f
}

fn bind(sys: &dyn Syscall, src: &Path, target: &Path, readonly: bool) -> Result<()> {
    sys.mount(&mcall(
        Some(src),
        target,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    ))
    .map_err(|e| {
        refused(
            format!("bind mount {} on {}", src.display(), target.display()),
            &e,
            None,
        )
    })?;
    if readonly {
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | locked_flags(src);
        sys.mount(&mcall(None, target, None, flags, None))
            .map_err(|e| refused(format!("remount {} read-only", target.display()), &e, None))?;
    }
    Ok(())
}

/// The mount points the plan needs: (dest, is a file).
fn mount_points(plan: &MountPlan) -> Vec<(String, bool)> {
    let mut v: Vec<(String, bool)> = ["/proc", "/dev", "/tmp"]
        .iter()
        .filter(|d| !(plan.keep_tmp && **d == "/tmp"))
        .map(|d| (d.to_string(), false))
        .collect();
    if plan.network == Network::Host {
        v.extend(
            ["/etc/resolv.conf", "/etc/hosts"]
                .iter()
                .map(|d| (d.to_string(), true)),
        );
    }
    for m in &plan.mounts {
        match m {
            Mount::Bind { src, dest, .. } => v.push((
                dest.clone(),
                !fs::metadata(src).map(|m| m.is_dir()).unwrap_or(true),
            )),
            Mount::Cache { dest, .. } | Mount::Tmpfs { dest } => v.push((dest.clone(), false)),
        }
    }
    v
}

/// Fill `plan.init_dir` with the mount points missing from every lower dir (Docker's "init
/// layer"), parents with the lower's mode and mtime. Paths going through a symlink in a lower are
/// left alone (they are created in the merged root, after resolving the link inside it).
/// Returns whether anything was created.
fn init_layer(plan: &MountPlan) -> io::Result<bool> {
    let mut any = false;
    'dests: for (dest, is_file) in mount_points(plan) {
        let Ok(comps) = check_dest(&dest) else {
            continue;
        };
        let mut rel = PathBuf::new();
        for (i, c) in comps.iter().enumerate() {
            rel.push(c);
            let found = plan
                .lowers
                .iter()
                .rev()
                .find_map(|l| l.join(&rel).symlink_metadata().ok());
            let last = i + 1 == comps.len();
            let t = plan.init_dir.join(&rel);
            match found {
                Some(m) if m.file_type().is_symlink() => continue 'dests,
                Some(_) if last => continue 'dests,
                Some(m) if m.is_dir() => {
                    if t.symlink_metadata().is_err() {
                        fs::create_dir_all(&t)?;
                        fs::set_permissions(&t, fs::Permissions::from_mode(m.mode() & 0o7777))?;
                        if let (Ok(f), Ok(mt)) = (fs::File::open(&t), m.modified()) {
                            let _ = f.set_modified(mt);
                        }
                    }
                }
                Some(_) => continue 'dests,
                None => {
                    create_mount_point(&t, last && is_file)?;
                    any = true;
                    if !last {
                        // Everything below is missing too.
                        let rest: PathBuf = comps[i + 1..].iter().collect();
                        let full = t.join(rest);
                        create_mount_point(&full, is_file)?;
                        continue 'dests;
                    }
                }
            }
        }
    }
    Ok(any)
}

/// Set up the root filesystem, pivot into it, and set the hostname. `copy` copies the lower dirs
/// (lowest first) into a directory; it is only called when overlayfs is refused or `force_copy`.
pub fn setup(
    sys: &dyn Syscall,
    plan: &MountPlan,
    copy: &dyn Fn(&[PathBuf], &Path) -> io::Result<()>,
) -> Result<SetupReport> {
    let mut rep = SetupReport::default();
    let root = plan.root.as_path();

    // 1. Nothing we mount propagates back to the host.
    sys.mount(&mcall(
        None,
        Path::new("/"),
        None,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None,
    ))
    .map_err(|e| refused("make mounts private", &e, None))?;

    // 2. The rootfs: overlay (lower dirs read-only, changes to `upper`), else a private copy.
    let mut overlay_err = None;
    if !plan.force_copy {
        let mut lowers = plan.lowers.clone();
        if init_layer(plan).map_err(SandboxError::io("prepare the mount points layer"))? {
            lowers.push(plan.init_dir.clone());
        }
        let attempts: &[bool] = if plan.userns {
            &[true, false]
        } else {
            &[false]
        };
        for &ux in attempts {
            let opts = overlay_options(&lowers, &plan.upper, &plan.work, ux);
            match sys.mount(&mcall(
                Some(Path::new("overlay")),
                root,
                Some("overlay"),
                MsFlags::empty(),
                Some(&opts),
            )) {
                Ok(()) => {
                    rep.overlay = true;
                    break;
                }
                Err(e) => overlay_err = Some(e),
            }
        }
    }
    if !rep.overlay {
        match &overlay_err {
            Some(e) => rep.notes.push(format!(
                "overlayfs refused ({e}); the lower dirs were copied and the changes are computed by a diff \
                 (needs Linux 5.11+ for overlayfs in a user namespace)"
            )),
            None => rep.notes.push("overlayfs not used (forced copy)".into()),
        }
        copy(&plan.lowers, &plan.copy_dir).map_err(SandboxError::io(format!(
            "copy the rootfs into {}",
            plan.copy_dir.display()
        )))?;
        bind(sys, &plan.copy_dir, root, false)?;
    }

    // 3. /proc, fresh for the new pid namespace.
    let proc_ = resolve_in_root(root, "/proc")?;
    ensure(root, &proc_, false, &mut rep.created)?;
    let nosuid_nodev_noexec = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    sys.mount(&mcall(
        Some(Path::new("proc")),
        &proc_,
        Some("proc"),
        nosuid_nodev_noexec,
        None,
    ))
    .map_err(|e| {
        refused(
            "mount a fresh /proc",
            &e,
            Some(
                "/proc is masked or read-only here (Kubernetes masks it): run the pod with \
                 securityContext.procMount: Unmasked (with hostUsers: false), or in Docker with \
                 --security-opt systempaths=unconfined"
                    .into(),
            ),
        )
    })?;

    // 4. A minimal /dev: tmpfs + host device nodes bound in + /dev/shm (+ /dev/pts if allowed).
    let dev = resolve_in_root(root, "/dev")?;
    ensure(root, &dev, false, &mut rep.created)?;
    sys.mount(&mcall(
        Some(Path::new("tmpfs")),
        &dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    ))
    .map_err(|e| refused("mount a tmpfs /dev", &e, None))?;
    for n in DEV_NODES {
        let host = Path::new("/dev").join(n);
        if !sys.exists(&host) {
            rep.notes
                .push(format!("host {} missing: not provided", host.display()));
            continue;
        }
        let t = dev.join(n);
        // Inside the fresh tmpfs: nothing to record for cleanup.
        let _ = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&t);
        bind(sys, &host, &t, false)?;
    }
    let shm = dev.join("shm");
    let _ = fs::create_dir(&shm);
    sys.mount(&mcall(
        Some(Path::new("shm")),
        &shm,
        Some("tmpfs"),
        nosuid_nodev_noexec,
        Some("mode=1777,size=65536k"),
    ))
    .map_err(|e| refused("mount /dev/shm", &e, None))?;
    let pts = dev.join("pts");
    let _ = fs::create_dir(&pts);
    if sys
        .mount(&mcall(
            Some(Path::new("devpts")),
            &pts,
            Some("devpts"),
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            Some("newinstance,ptmxmode=0666,mode=0620"),
        ))
        .is_ok()
    {
        let _ = std::os::unix::fs::symlink("pts/ptmx", dev.join("ptmx"));
    } else {
        rep.notes.push("devpts refused: no /dev/pts".into());
    }
    for (l, t) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        let _ = std::os::unix::fs::symlink(t, dev.join(l));
    }

    // 5. tmpfs /tmp (unless the rootfs's own /tmp is wanted).
    if !plan.keep_tmp {
        let tmp = resolve_in_root(root, "/tmp")?;
        ensure(root, &tmp, false, &mut rep.created)?;
        sys.mount(&mcall(
            Some(Path::new("tmpfs")),
            &tmp,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=1777"),
        ))
        .map_err(|e| refused("mount a tmpfs /tmp", &e, None))?;
    }

    // 6. Name resolution when sharing the host's network.
    if plan.network == Network::Host {
        for f in ["/etc/resolv.conf", "/etc/hosts"] {
            if !sys.exists(Path::new(f)) {
                continue;
            }
            let t = resolve_in_root(root, f)?;
            ensure(root, &t, true, &mut rep.created)?;
            bind(sys, Path::new(f), &t, true)?;
        }
    }

    // 7. The caller's mounts.
    for m in &plan.mounts {
        match m {
            Mount::Bind {
                src,
                dest,
                readonly,
            } => {
                check_bind_source(src)?;
                let t = resolve_in_root(root, dest)?;
                let is_dir = fs::metadata(src).map(|m| m.is_dir()).unwrap_or(true);
                ensure(root, &t, !is_dir, &mut rep.created)?;
                bind(sys, src, &t, *readonly)?;
            }
            Mount::Cache { src, dest } => {
                check_bind_source(src)?;
                let t = resolve_in_root(root, dest)?;
                ensure(root, &t, false, &mut rep.created)?;
                bind(sys, src, &t, false)?;
            }
            Mount::Tmpfs { dest } => {
                let t = resolve_in_root(root, dest)?;
                ensure(root, &t, false, &mut rep.created)?;
                sys.mount(&mcall(
                    Some(Path::new("tmpfs")),
                    &t,
                    Some("tmpfs"),
                    MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                    Some("mode=755"),
                ))
                .map_err(|e| refused(format!("mount a tmpfs on {dest}"), &e, None))?;
            }
        }
    }

    // 8. Into the new root: pivot_root(".", ".") then detach the old root (runc's way, no
    //    put_old dir needed); chroot only if pivot_root is refused.
    sys.chdir(root)
        .map_err(|e| refused(format!("chdir {}", root.display()), &e, None))?;
    match sys.pivot_root(Path::new("."), Path::new(".")) {
        Ok(()) => {
            sys.umount(Path::new("."), true)
                .map_err(|e| refused("detach the old root", &e, None))?;
            rep.pivot_root = true;
        }
        Err(e) => {
            rep.notes.push(format!(
                "pivot_root refused ({e}): fell back to chroot (weaker: the old root stays mounted)"
            ));
            sys.chroot(Path::new("."))
                .map_err(|e| refused("chroot into the rootfs", &e, None))?;
        }
    }
    sys.chdir(Path::new("/"))
        .map_err(|e| refused("chdir /", &e, None))?;

    // 9. Hostname (a fresh UTS namespace).
    sys.sethostname(&plan.hostname)
        .map_err(|e| refused("sethostname", &e, None))?;
    Ok(rep)
}

// ---------------------------------------------------------------------------------------------
// Copy fallback
// ---------------------------------------------------------------------------------------------

/// Copy `lowers` (lowest first) into `dst`, each one over the previous: regular files, dirs and
/// symlinks with their modes and mtimes (device nodes, sockets and fifos are skipped: they cannot
/// be created unprivileged). Hard links become separate copies.
pub fn copy_lowers(lowers: &[PathBuf], dst: &Path) -> io::Result<()> {
    fs::create_dir_all(dst)?;
    for l in lowers {
        copy_tree(l, dst)?;
    }
    Ok(())
}

fn copy_entry(src: &Path, dst: &Path, meta: &fs::Metadata) -> io::Result<()> {
    let ft = meta.file_type();
    if let Ok(old) = fs::symlink_metadata(dst) {
        let both_dirs = old.is_dir() && ft.is_dir();
        if !both_dirs {
            if old.is_dir() {
                fs::remove_dir_all(dst)?;
            } else {
                fs::remove_file(dst)?;
            }
        }
    }
    if ft.is_dir() {
        if fs::symlink_metadata(dst).is_err() {
            fs::create_dir(dst)?;
        }
        // Keep the dir writable by us while copying; the final mode is set afterwards.
        fs::set_permissions(
            dst,
            fs::Permissions::from_mode((meta.mode() & 0o7777) | 0o700),
        )?;
    } else if ft.is_symlink() {
        std::os::unix::fs::symlink(fs::read_link(src)?, dst)?;
    } else if ft.is_file() {
        fs::copy(src, dst)?;
        let f = fs::File::options()
            .write(true)
            .open(dst)
            .or_else(|_| fs::File::open(dst))?;
        let _ = f.set_modified(meta.modified()?);
    }
    Ok(())
}

/// Copy the tree `src` over `dst`.
pub fn copy_tree(src: &Path, dst: &Path) -> io::Result<()> {
    let mut dirs = Vec::new();
    for e in walkdir::WalkDir::new(src).follow_links(false).min_depth(1) {
        let e = e.map_err(io::Error::other)?;
        let rel = e.path().strip_prefix(src).map_err(io::Error::other)?;
        let t = dst.join(rel);
        let meta = e.path().symlink_metadata()?;
        copy_entry(e.path(), &t, &meta)?;
        if meta.is_dir() {
            dirs.push((t, meta));
        }
    }
    for (d, meta) in dirs.into_iter().rev() {
        fs::set_permissions(&d, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        if let Ok(f) = fs::File::open(&d) {
            let _ = f.set_modified(meta.modified()?);
        }
    }
    Ok(())
}

/// The top-most lower holding `rel`, with its metadata.
fn lower_entry(lowers: &[PathBuf], rel: &Path) -> Option<(PathBuf, fs::Metadata)> {
    lowers.iter().rev().find_map(|l| {
        let p = l.join(rel);
        p.symlink_metadata().ok().map(|m| (p, m))
    })
}

fn same_entry(a: &Path, am: &fs::Metadata, b: &Path, bm: &fs::Metadata) -> bool {
    let (at, bt) = (am.file_type(), bm.file_type());
    if at.is_dir() != bt.is_dir()
        || at.is_symlink() != bt.is_symlink()
        || at.is_file() != bt.is_file()
    {
        return false;
    }
    if at.is_symlink() {
        return fs::read_link(a).ok() == fs::read_link(b).ok();
    }
    if (am.mode() & 0o7777) != (bm.mode() & 0o7777) {
        return false;
    }
    if at.is_dir() {
        return true;
    }
    at.is_file()
        && am.len() == bm.len()
        && am.mtime() == bm.mtime()
        && am.mtime_nsec() == bm.mtime_nsec()
}

/// The changes of a copied root against its lower dirs, written into `upper` as an OCI-style
/// layer directory: new and changed entries copied, deleted ones as `.wh.<name>` empty files.
/// `skip`: paths (relative) the sandbox created as mount points.
pub fn diff_into_upper(
    lowers: &[PathBuf],
    copy: &Path,
    upper: &Path,
    skip: &[PathBuf],
) -> io::Result<()> {
    let mut dirs = Vec::new();
    let mut it = walkdir::WalkDir::new(copy)
        .follow_links(false)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter();
    while let Some(e) = it.next() {
        let e = e.map_err(io::Error::other)?;
        let rel = e
            .path()
            .strip_prefix(copy)
            .map_err(io::Error::other)?
            .to_path_buf();
        if skip.contains(&rel) {
            if e.file_type().is_dir() {
                it.skip_current_dir();
            }
            continue;
        }
        let meta = e.path().symlink_metadata()?;
        let changed = match lower_entry(lowers, &rel) {
            Some((lp, lm)) => !same_entry(e.path(), &meta, &lp, &lm),
            None => true,
        };
        if changed {
            let t = upper.join(&rel);
            if let Some(p) = t.parent() {
                fs::create_dir_all(p)?;
            }
            copy_entry(e.path(), &t, &meta)?;
            if meta.is_dir() {
                dirs.push((t, meta));
            }
        }
    }
    // Deletions.
    for l in lowers {
        let mut it = walkdir::WalkDir::new(l)
            .follow_links(false)
            .min_depth(1)
            .into_iter();
        while let Some(e) = it.next() {
            let e = e.map_err(io::Error::other)?;
            let rel = e.path().strip_prefix(l).map_err(io::Error::other)?;
            if copy.join(rel).symlink_metadata().is_err() {
                if e.file_type().is_dir() {
                    it.skip_current_dir();
                }
                let name = rel
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let wh = upper.join(rel).with_file_name(format!(".wh.{name}"));
                if let Some(p) = wh.parent() {
                    fs::create_dir_all(p)?;
                }
                fs::write(&wh, b"")?;
            }
        }
    }
    for (d, meta) in dirs.into_iter().rev() {
        fs::set_permissions(&d, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    }
    Ok(())
}

/// Remove, from an overlay upper dir, the mount points the setup created (only when they are
/// still an empty dir or an empty file), deepest first.
pub fn remove_created(upper: &Path, created: &[PathBuf]) {
    for rel in created.iter().rev() {
        let p = upper.join(rel);
        match p.symlink_metadata() {
            Ok(m) if m.is_dir() => {
                let _ = fs::remove_dir(&p);
            }
            Ok(m) if m.is_file() && m.len() == 0 => {
                let _ = fs::remove_file(&p);
            }
            _ => {}
        }
    }
}

/// Remove a tree even when it holds dirs without permissions (overlayfs leaves `work/work` with
/// mode 000).
pub fn remove_tree(p: &Path) -> io::Result<()> {
    if p.symlink_metadata().is_err() {
        return Ok(());
    }
    for e in walkdir::WalkDir::new(p)
        .follow_links(false)
        .into_iter()
        .flatten()
    {
        if e.file_type().is_dir() {
            let _ = fs::set_permissions(e.path(), fs::Permissions::from_mode(0o700));
        }
    }
    // walkdir cannot descend into a 000 dir before we chmod it: retry a few rounds.
    for _ in 0..4 {
        for e in walkdir::WalkDir::new(p)
            .follow_links(false)
            .into_iter()
            .flatten()
        {
            if e.file_type().is_dir() {
                let _ = fs::set_permissions(e.path(), fs::Permissions::from_mode(0o700));
            }
        }
        if fs::remove_dir_all(p).is_ok() {
            return Ok(());
        }
    }
    fs::remove_dir_all(p)
}

/// An empty file (for a file bind) or a directory at `p`, with its parents.
fn create_mount_point(p: &Path, file: bool) -> std::io::Result<()> {
    if !file {
        return fs::create_dir_all(p);
    }
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(p)
        .map(|_| ())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::syscall::{Call, TestSyscall};

    #[test]
    fn dests_and_sources_are_checked() {
        assert!(check_dest("/a/../b").is_err());
        assert!(check_dest("/").is_err());
        assert_eq!(
            check_dest("/a/./b").unwrap(),
            vec![OsString::from("a"), OsString::from("b")]
        );
        assert!(check_bind_source(Path::new("rel")).is_err());
        assert!(check_bind_source(Path::new("/a/../etc")).is_err());
        assert!(check_bind_source(Path::new("/a/b")).is_ok());
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        fs::create_dir_all(root.join("real/x")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../real", root.join("rel")).unwrap();
        assert_eq!(
            resolve_in_root(root, "/abs/passwd").unwrap(),
            root.join("etc/passwd")
        );
        assert_eq!(
            resolve_in_root(root, "/rel/x").unwrap(),
            root.join("real/x")
        );
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        assert!(resolve_in_root(root, "/loop/a").is_err());
    }

    #[test]
    fn overlay_options_put_the_top_layer_first() {
        let o = overlay_options(
            &[PathBuf::from("/l1"), PathBuf::from("/l,2")],
            Path::new("/u"),
            Path::new("/w"),
            true,
        );
        assert_eq!(o, "lowerdir=/l\\,2:/l1,upperdir=/u,workdir=/w,userxattr");
    }

    fn plan(root: &Path) -> MountPlan {
        MountPlan {
            root: root.to_path_buf(),
            lowers: vec![PathBuf::from("/lower")],
            upper: PathBuf::from("/upper"),
            work: PathBuf::from("/work"),
            copy_dir: root.join("copy"),
            init_dir: root.join("init"),
            force_copy: false,
            userns: true,
            network: Network::None,
            mounts: vec![Mount::Tmpfs {
                dest: "/cache".into(),
            }],
            hostname: "sbx".into(),
            keep_tmp: false,
        }
    }

    #[test]
    fn plan_mounts_overlay_proc_dev_tmp_and_pivots() {
        let d = tempfile::tempdir().unwrap();
        let sys = TestSyscall::new(0).with_file("/dev/null", "");
        let rep = setup(&sys, &plan(d.path()), &|_, _| panic!("no copy expected")).unwrap();
        assert!(rep.overlay && rep.pivot_root);
        assert_eq!(
            rep.created,
            vec![
                PathBuf::from("proc"),
                PathBuf::from("dev"),
                PathBuf::from("tmp"),
                PathBuf::from("cache")
            ]
        );
        let calls = sys.recorded();
        let types: Vec<String> = calls
            .iter()
            .filter_map(|c| match c {
                Call::Mount(m) => Some(m.fstype.clone().unwrap_or_else(|| "bind".into())),
                _ => None,
            })
            .collect();
        assert_eq!(
            types,
            [
                "bind", "overlay", "proc", "tmpfs", "bind", "tmpfs", "devpts", "tmpfs", "tmpfs"
            ]
        );
        assert!(calls.contains(&Call::PivotRoot(".".into(), ".".into())));
        assert!(calls.contains(&Call::Sethostname("sbx".into())));
    }

    #[test]
    fn refused_overlay_falls_back_to_a_copy_and_refused_pivot_to_chroot() {
        let d = tempfile::tempdir().unwrap();
        let sys = TestSyscall::new(0)
            .refusing("mount:overlay", libc::EPERM)
            .refusing("pivot_root", libc::EINVAL);
        let copied = std::cell::Cell::new(false);
        let rep = setup(&sys, &plan(d.path()), &|_, _| {
            copied.set(true);
            Ok(())
        })
        .unwrap();
        assert!(copied.get() && !rep.overlay && !rep.pivot_root);
        assert!(sys.recorded().contains(&Call::Chroot(".".into())));
    }

    #[test]
    fn refused_proc_names_the_fix() {
        let d = tempfile::tempdir().unwrap();
        let sys = TestSyscall::new(0).refusing("mount:proc", libc::EPERM);
        let e = setup(&sys, &plan(d.path()), &|_, _| Ok(()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("procMount: Unmasked"), "{e}");
    }

    #[test]
    fn copy_then_diff_gives_changes_and_whiteouts() {
        let d = tempfile::tempdir().unwrap();
        let (l1, l2, c, u) = (
            d.path().join("l1"),
            d.path().join("l2"),
            d.path().join("c"),
            d.path().join("u"),
        );
        for p in [&l1, &l2, &u] {
            fs::create_dir_all(p).unwrap();
        }
        fs::create_dir_all(l1.join("etc")).unwrap();
        fs::write(l1.join("etc/a"), "a").unwrap();
        fs::write(l1.join("etc/b"), "b").unwrap();
        fs::write(l2.join("top"), "t").unwrap();
        copy_lowers(&[l1.clone(), l2.clone()], &c).unwrap();
        assert_eq!(fs::read_to_string(c.join("etc/a")).unwrap(), "a");
        diff_into_upper(&[l1.clone(), l2.clone()], &c, &u, &[]).unwrap();
        assert_eq!(fs::read_dir(&u).unwrap().count(), 0, "no changes yet");
        fs::write(c.join("etc/a"), "changed").unwrap();
        fs::remove_file(c.join("etc/b")).unwrap();
        fs::write(c.join("new"), "n").unwrap();
        fs::create_dir(c.join("proc")).unwrap();
        diff_into_upper(&[l1, l2], &c, &u, &[PathBuf::from("proc")]).unwrap();
        assert_eq!(fs::read_to_string(u.join("etc/a")).unwrap(), "changed");
        assert!(u.join("etc/.wh.b").is_file());
        assert!(u.join("new").is_file());
        assert!(!u.join("proc").exists() && !u.join("top").exists());
    }
}
