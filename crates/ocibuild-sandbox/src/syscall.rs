//! Every privileged operation behind one trait (youki's pattern): the real implementation calls
//! nix/libc; tests use [`TestSyscall`], which records the calls and refuses what a test says, so
//! the probe's decisions and the mount plan are unit-tested without root.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A mount request, as the helper performs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountCall {
    pub source: Option<PathBuf>,
    pub target: PathBuf,
    pub fstype: Option<String>,
    pub flags: u64,
    pub data: Option<String>,
}

pub trait Syscall: Send + Sync {
    /// unshare(2) with CLONE_* flags (libc constants).
    fn unshare(&self, flags: i32) -> std::io::Result<()>;
    fn mount(&self, m: &MountCall) -> std::io::Result<()>;
    fn umount(&self, target: &Path, detach: bool) -> std::io::Result<()>;
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> std::io::Result<()>;
    fn chroot(&self, path: &Path) -> std::io::Result<()>;
    fn chdir(&self, path: &Path) -> std::io::Result<()>;
    fn sethostname(&self, name: &str) -> std::io::Result<()>;
    fn write_file(&self, path: &Path, data: &str) -> std::io::Result<()>;
    fn read_file(&self, path: &Path) -> std::io::Result<String>;
    fn exists(&self, path: &Path) -> bool;
    fn geteuid(&self) -> u32;
    fn getegid(&self) -> u32;
}

/// The real thing.
pub struct LinuxSyscall;

impl Syscall for LinuxSyscall {
    fn unshare(&self, flags: i32) -> std::io::Result<()> {
        nix::sched::unshare(nix::sched::CloneFlags::from_bits_retain(flags))
            .map_err(std::io::Error::from)
    }
    fn mount(&self, m: &MountCall) -> std::io::Result<()> {
        nix::mount::mount(
            m.source.as_deref(),
            &m.target,
            m.fstype.as_deref(),
            nix::mount::MsFlags::from_bits_retain(m.flags as _),
            m.data.as_deref(),
        )
        .map_err(std::io::Error::from)
    }
    fn umount(&self, target: &Path, detach: bool) -> std::io::Result<()> {
        let f = if detach {
            nix::mount::MntFlags::MNT_DETACH
        } else {
            nix::mount::MntFlags::empty()
        };
        nix::mount::umount2(target, f).map_err(std::io::Error::from)
    }
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> std::io::Result<()> {
        nix::unistd::pivot_root(new_root, put_old).map_err(std::io::Error::from)
    }
    fn chroot(&self, path: &Path) -> std::io::Result<()> {
        nix::unistd::chroot(path).map_err(std::io::Error::from)
    }
    fn chdir(&self, path: &Path) -> std::io::Result<()> {
        nix::unistd::chdir(path).map_err(std::io::Error::from)
    }
    fn sethostname(&self, name: &str) -> std::io::Result<()> {
        nix::unistd::sethostname(name).map_err(std::io::Error::from)
    }
    fn write_file(&self, path: &Path, data: &str) -> std::io::Result<()> {
        std::fs::write(path, data)
    }
    fn read_file(&self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
    fn geteuid(&self) -> u32 {
        nix::unistd::geteuid().as_raw()
    }
    fn getegid(&self) -> u32 {
        nix::unistd::getegid().as_raw()
    }
}

/// One recorded call of [`TestSyscall`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    Unshare(i32),
    Mount(MountCall),
    Umount(PathBuf),
    PivotRoot(PathBuf, PathBuf),
    Chroot(PathBuf),
    Chdir(PathBuf),
    Sethostname(String),
    Write(PathBuf, String),
}

/// A fake for tests: records calls, serves files from a map, and fails the operations a test
/// names (`refuse`) with the given errno.
#[derive(Default)]
pub struct TestSyscall {
    pub calls: Mutex<Vec<Call>>,
    /// path → content for `read_file` / `exists`.
    pub files: Mutex<std::collections::BTreeMap<PathBuf, String>>,
    /// operation name ("unshare", "mount:proc", "mount:overlay", "pivot_root", "write:/proc/self/uid_map", …) → errno.
    pub refuse: Mutex<std::collections::BTreeMap<String, i32>>,
    pub euid: u32,
    pub egid: u32,
}

impl TestSyscall {
    pub fn new(euid: u32) -> Self {
        Self {
            euid,
            egid: euid,
            ..Default::default()
        }
    }
    pub fn with_file(self, path: &str, content: &str) -> Self {
        if let Ok(mut f) = self.files.lock() {
            f.insert(PathBuf::from(path), content.to_string());
        }
        self
    }
    pub fn refusing(self, op: &str, errno: i32) -> Self {
        if let Ok(mut r) = self.refuse.lock() {
            r.insert(op.to_string(), errno);
        }
        self
    }
    fn check(&self, op: &str) -> std::io::Result<()> {
        match self.refuse.lock().ok().and_then(|r| r.get(op).copied()) {
            Some(errno) => Err(std::io::Error::from_raw_os_error(errno)),
            None => Ok(()),
        }
    }
    fn record(&self, c: Call) {
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(c);
        }
    }
    pub fn recorded(&self) -> Vec<Call> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

impl Syscall for TestSyscall {
    fn unshare(&self, flags: i32) -> std::io::Result<()> {
        self.check("unshare")?;
        self.record(Call::Unshare(flags));
        Ok(())
    }
    fn mount(&self, m: &MountCall) -> std::io::Result<()> {
        self.check(&format!("mount:{}", m.fstype.as_deref().unwrap_or("bind")))?;
        self.record(Call::Mount(m.clone()));
        Ok(())
    }
    fn umount(&self, target: &Path, _detach: bool) -> std::io::Result<()> {
        self.record(Call::Umount(target.to_path_buf()));
        Ok(())
    }
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> std::io::Result<()> {
        self.check("pivot_root")?;
        self.record(Call::PivotRoot(
            new_root.to_path_buf(),
            put_old.to_path_buf(),
        ));
        Ok(())
    }
    fn chroot(&self, path: &Path) -> std::io::Result<()> {
        self.check("chroot")?;
        self.record(Call::Chroot(path.to_path_buf()));
        Ok(())
    }
    fn chdir(&self, path: &Path) -> std::io::Result<()> {
        self.record(Call::Chdir(path.to_path_buf()));
        Ok(())
    }
    fn sethostname(&self, name: &str) -> std::io::Result<()> {
        self.record(Call::Sethostname(name.to_string()));
        Ok(())
    }
    fn write_file(&self, path: &Path, data: &str) -> std::io::Result<()> {
        self.check(&format!("write:{}", path.display()))?;
        self.record(Call::Write(path.to_path_buf(), data.to_string()));
        Ok(())
    }
    fn read_file(&self, path: &Path) -> std::io::Result<String> {
        self.files
            .lock()
            .ok()
            .and_then(|f| f.get(path).cloned())
            .ok_or_else(|| std::io::Error::from_raw_os_error(libc::ENOENT))
    }
    fn exists(&self, path: &Path) -> bool {
        self.files
            .lock()
            .map(|f| f.contains_key(path))
            .unwrap_or(false)
    }
    fn geteuid(&self) -> u32 {
        self.euid
    }
    fn getegid(&self) -> u32 {
        self.egid
    }
}
