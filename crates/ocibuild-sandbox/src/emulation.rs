//! Running another architecture's binaries: qemu-user through the kernel's binfmt_misc.
//!
//! A RUN step for a foreign platform (a `linux/arm64` stage on an amd64 host) execs that
//! platform's ELF binaries. The kernel runs them through a binfmt_misc handler (Debian's
//! `qemu-user-static` registers `qemu-aarch64`, …). The handler must carry the `F` (fix-binary)
//! flag: the interpreter is then opened when it is registered, so it works inside the build's
//! root, where `/usr/libexec/qemu-binfmt/…` does not exist. binfmt_misc is the host kernel's
//! (not namespaced): in a container, the host registers it.

use std::path::{Path, PathBuf};

/// Where binfmt_misc is mounted.
pub const BINFMT_DIR: &str = "/proc/sys/fs/binfmt_misc";

/// A registered binfmt_misc handler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handler {
    /// Its name (the entry's file name: `qemu-aarch64`).
    pub name: String,
    pub enabled: bool,
    pub interpreter: String,
    /// Its flags (`POCF`).
    pub flags: String,
    /// Magic bytes and mask (at `offset`), decoded.
    pub offset: usize,
    pub magic: Vec<u8>,
    pub mask: Vec<u8>,
}

impl Handler {
    /// Does this handler run ELF binaries for `machine` (`e_machine`)?
    pub fn runs_machine(&self, machine: u16) -> bool {
        if self.offset != 0 || self.magic.len() < 20 || !self.magic.starts_with(b"\x7fELF") {
            return false;
        }
        let want = machine.to_le_bytes();
        (18..20).all(|i| {
            let m = self.mask.get(i).copied().unwrap_or(0xff);
            self.magic[i] & m == want[i - 18] & m
        })
    }

    /// The interpreter was opened at registration (`F`): usable inside any root.
    pub fn fix_binary(&self) -> bool {
        self.flags.contains('F')
    }
}

/// The ELF `e_machine` of an OCI architecture (`amd64` → EM_X86_64).
pub fn elf_machine(arch: &str) -> Option<u16> {
    Some(match arch {
        "amd64" => 0x3e,
        "arm64" => 0xb7,
        "arm" => 0x28,
        "386" => 0x03,
        "ppc64le" => 0x15,
        "s390x" => 0x16,
        "riscv64" => 0xf3,
        _ => return None,
    })
}

/// The qemu-user name of an OCI architecture (`arm64` → `aarch64`).
pub fn qemu_arch(arch: &str) -> &str {
    match arch {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        "386" => "i386",
        other => other,
    }
}

/// Whether RUN steps for `arch` can run here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Emulation {
    /// The host's own architecture.
    Native,
    /// A handler with the `F` flag runs it.
    Registered(Handler),
    /// It cannot run; the reason says why.
    Unavailable(String),
}

impl Emulation {
    pub fn can_run(&self) -> bool {
        matches!(self, Emulation::Native | Emulation::Registered(_))
    }
}

/// The architecture of this host as OCI names it.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// Whether `arch` (OCI: `arm64`) can run on this host, from [`BINFMT_DIR`].
pub fn check(arch: &str) -> Emulation {
    check_in(Path::new(BINFMT_DIR), host_arch(), arch)
}

/// [`check`] against a binfmt_misc directory and a host architecture.
pub fn check_in(dir: &Path, host: &str, arch: &str) -> Emulation {
    if arch == host {
        return Emulation::Native;
    }
    let Some(machine) = elf_machine(arch) else {
        return Emulation::Unavailable(format!("ocibuild does not know {arch}'s ELF machine"));
    };
    if !dir.join("status").is_file() {
        return Emulation::Unavailable(format!(
            "binfmt_misc is not mounted at {} (`mount -t binfmt_misc binfmt_misc {}` as root on the host)",
            dir.display(),
            dir.display()
        ));
    }
    let globally = std::fs::read_to_string(dir.join("status"))
        .map(|s| s.trim() == "enabled")
        .unwrap_or(false);
    if !globally {
        return Emulation::Unavailable(format!(
            "binfmt_misc is disabled ({} says so)",
            dir.join("status").display()
        ));
    }
    let all = handlers(dir);
    let mut found: Vec<Handler> = all
        .into_iter()
        .filter(|h| h.runs_machine(machine))
        .collect();
    found.sort_by_key(|h| (!h.enabled, !h.fix_binary()));
    match found.into_iter().next() {
        None => Emulation::Unavailable(format!(
            "no binfmt_misc handler for {} ELF binaries is registered",
            qemu_arch(arch)
        )),
        Some(h) if !h.enabled => {
            Emulation::Unavailable(format!("the binfmt_misc handler {} is disabled", h.name))
        }
        Some(h) if !h.fix_binary() => Emulation::Unavailable(format!(
            "the binfmt_misc handler {} lacks the F (fix-binary) flag, so its interpreter {} would be looked up inside the build's root",
            h.name, h.interpreter
        )),
        Some(h) => Emulation::Registered(h),
    }
}

/// What to do when [`check`] says a platform cannot run.
pub fn fix_hint(arch: &str) -> String {
    format!(
        "install Debian's qemu-user-static package, which registers qemu-{q} through binfmt_misc with the F flag (in a container, do it on the host: binfmt_misc belongs to the host kernel); or build the stage natively with `FROM --platform=$BUILDPLATFORM` and cross-compile for $TARGETARCH (e.g. GOARCH=$TARGETARCH); `ocibuild doctor` lists the platforms that can run",
        q = qemu_arch(arch)
    )
}

/// Every handler registered in a binfmt_misc directory.
pub fn handlers(dir: &Path) -> Vec<Handler> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut paths: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    paths.sort();
    for p in paths {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name == "status" || name == "register" {
            continue;
        }
        if let Ok(text) = std::fs::read_to_string(&p) {
            out.push(parse_handler(&name, &text));
        }
    }
    out
}

/// One binfmt_misc entry as the kernel prints it.
pub fn parse_handler(name: &str, text: &str) -> Handler {
    let mut h = Handler {
        name: name.to_string(),
        enabled: false,
        interpreter: String::new(),
        flags: String::new(),
        offset: 0,
        magic: Vec::new(),
        mask: Vec::new(),
    };
    for line in text.lines() {
        let line = line.trim();
        if line == "enabled" {
            h.enabled = true;
        } else if let Some(v) = line.strip_prefix("interpreter ") {
            h.interpreter = v.trim().to_string();
        } else if let Some(v) = line.strip_prefix("flags:") {
            h.flags = v.trim().to_string();
        } else if let Some(v) = line.strip_prefix("offset ") {
            h.offset = v.trim().parse().unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("magic ") {
            h.magic = unhex(v.trim());
        } else if let Some(v) = line.strip_prefix("mask ") {
            h.mask = unhex(v.trim());
        }
    }
    h
}

fn unhex(s: &str) -> Vec<u8> {
    s.as_bytes()
        .chunks(2)
        .filter_map(|c| std::str::from_utf8(c).ok())
        .filter_map(|c| u8::from_str_radix(c, 16).ok())
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    // what the kernel prints for Debian's qemu-user-static registration
    const AARCH64: &str = "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: POCF\noffset 0\nmagic 7f454c460201010000000000000000000200b700\nmask ffffffffffffff00fffffffffffffffffeffffff\n";

    fn dir(entries: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("status"), "enabled\n").unwrap();
        std::fs::write(d.path().join("register"), "").unwrap();
        for (n, t) in entries {
            std::fs::write(d.path().join(n), t).unwrap();
        }
        d
    }

    #[test]
    fn a_registered_fix_binary_handler_runs_its_machine() {
        let d = dir(&[("qemu-aarch64", AARCH64)]);
        match check_in(d.path(), "amd64", "arm64") {
            Emulation::Registered(h) => {
                assert_eq!(h.name, "qemu-aarch64");
                assert!(h.fix_binary());
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(check_in(d.path(), "amd64", "amd64"), Emulation::Native);
        let Emulation::Unavailable(why) = check_in(d.path(), "amd64", "s390x") else {
            panic!()
        };
        assert!(why.contains("no binfmt_misc handler for s390x"), "{why}");
    }

    #[test]
    fn missing_disabled_and_unfixed_handlers_say_why() {
        let e = tempfile::tempdir().unwrap();
        let Emulation::Unavailable(why) = check_in(e.path(), "amd64", "arm64") else {
            panic!()
        };
        assert!(why.contains("not mounted"), "{why}");
        let d = dir(&[("qemu-aarch64", &AARCH64.replacen("enabled", "disabled", 1))]);
        let Emulation::Unavailable(why) = check_in(d.path(), "amd64", "arm64") else {
            panic!()
        };
        assert!(why.contains("qemu-aarch64 is disabled"), "{why}");
        let d = dir(&[("qemu-aarch64", &AARCH64.replace("POCF", "POC"))]);
        let Emulation::Unavailable(why) = check_in(d.path(), "amd64", "arm64") else {
            panic!()
        };
        assert!(why.contains("F (fix-binary)"), "{why}");
        assert!(fix_hint("arm64").contains("qemu-aarch64"));
    }
}
