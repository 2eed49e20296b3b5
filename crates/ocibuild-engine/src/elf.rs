//! The shared libraries ELF files need (`DT_NEEDED`), read from the file (never by running
//! it), and the libraries a set of layers needs that the runtime base lacks, copied from the
//! build root: native addons (node-gyp) and C extensions link what the build root had.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{EngineError, Result};

fn u16_at(b: &[u8], o: usize, le: bool) -> Option<u16> {
    let s: [u8; 2] = b.get(o..o + 2)?.try_into().ok()?;
    Some(if le {
        u16::from_le_bytes(s)
    } else {
        u16::from_be_bytes(s)
    })
}

fn u32_at(b: &[u8], o: usize, le: bool) -> Option<u32> {
    let s: [u8; 4] = b.get(o..o + 4)?.try_into().ok()?;
    Some(if le {
        u32::from_le_bytes(s)
    } else {
        u32::from_be_bytes(s)
    })
}

fn u64_at(b: &[u8], o: usize, le: bool) -> Option<u64> {
    let s: [u8; 8] = b.get(o..o + 8)?.try_into().ok()?;
    Some(if le {
        u64::from_le_bytes(s)
    } else {
        u64::from_be_bytes(s)
    })
}

/// Whether `b` starts like an ELF file.
pub fn is_elf(b: &[u8]) -> bool {
    b.starts_with(b"\x7fELF")
}

/// The `DT_NEEDED` entries of an ELF file (32 or 64 bit, either byte order); `None` when it is
/// not ELF or is malformed, an empty list when it is static.
pub fn needed(b: &[u8]) -> Option<Vec<String>> {
    if !is_elf(b) {
        return None;
    }
    let wide = match b.get(4)? {
        1 => false,
        2 => true,
        _ => return None,
    };
    let le = match b.get(5)? {
        1 => true,
        2 => false,
        _ => return None,
    };
    let word = |o: usize| -> Option<u64> {
        if wide {
            u64_at(b, o, le)
        } else {
            u32_at(b, o, le).map(u64::from)
        }
    };
    let (phoff, phentsize, phnum) = if wide {
        (
            u64_at(b, 0x20, le)?,
            u16_at(b, 0x36, le)?,
            u16_at(b, 0x38, le)?,
        )
    } else {
        (
            u64::from(u32_at(b, 0x1c, le)?),
            u16_at(b, 0x2a, le)?,
            u16_at(b, 0x2c, le)?,
        )
    };
    // (type, offset, vaddr, filesz)
    let mut loads = Vec::new();
    let mut dynamic = None;
    for i in 0..usize::from(phnum) {
        let h = usize::try_from(phoff).ok()? + i * usize::from(phentsize);
        let p_type = u32_at(b, h, le)?;
        let (off, vaddr, filesz) = if wide {
            (word(h + 8)?, word(h + 16)?, word(h + 32)?)
        } else {
            (word(h + 4)?, word(h + 8)?, word(h + 16)?)
        };
        match p_type {
            1 => loads.push((off, vaddr, filesz)),
            2 => dynamic = Some((off, filesz)),
            _ => {}
        }
    }
    let Some((dyn_off, dyn_size)) = dynamic else {
        return Some(Vec::new());
    };
    let entsize: u64 = if wide { 16 } else { 8 };
    let mut strtab = None;
    let mut names = Vec::new();
    let mut o = dyn_off;
    while o + entsize <= dyn_off + dyn_size {
        let at = usize::try_from(o).ok()?;
        let (tag, val) = if wide {
            (u64_at(b, at, le)?, u64_at(b, at + 8, le)?)
        } else {
            (
                u64::from(u32_at(b, at, le)?),
                u64::from(u32_at(b, at + 4, le)?),
            )
        };
        match tag {
            0 => break,
            1 => names.push(val),
            5 => strtab = Some(val),
            _ => {}
        }
        o += entsize;
    }
    let strtab = strtab?;
    // DT_STRTAB is an address: the load segment holding it gives its file offset
    let (seg_off, seg_vaddr, _) = loads
        .iter()
        .find(|(_, v, sz)| strtab >= *v && strtab < v + sz)?;
    let str_off = strtab - seg_vaddr + seg_off;
    let mut out = Vec::new();
    for n in names {
        let start = usize::try_from(str_off + n).ok()?;
        let rest = b.get(start..)?;
        let end = rest.iter().position(|c| *c == 0)?;
        out.push(String::from_utf8_lossy(&rest[..end]).into_owned());
    }
    Some(out)
}

/// The directories the dynamic loader searches in a root.
fn lib_dirs(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for d in ["usr/lib", "lib", "usr/lib64", "lib64", "usr/local/lib"] {
        let p = root.join(d);
        if let Ok(rd) = fs::read_dir(&p) {
            let mut multi: Vec<PathBuf> = rd
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().contains("-linux-gnu"))
                .map(|e| e.path())
                .collect();
            multi.sort();
            out.extend(multi);
        }
        out.push(p);
    }
    out
}

/// `path` inside `root` with its symlinks resolved within `root` (absolute targets are
/// relative to `root`); `None` when it does not exist or leaves the root.
fn resolve_in(root: &Path, rel: &Path) -> Option<PathBuf> {
    let mut cur = root.join(rel);
    for _ in 0..40 {
        let m = fs::symlink_metadata(&cur).ok()?;
        if !m.file_type().is_symlink() {
            return (m.is_file() && cur.starts_with(root)).then_some(cur);
        }
        let t = fs::read_link(&cur).ok()?;
        cur = if t.is_absolute() {
            root.join(t.strip_prefix("/").ok()?)
        } else {
            cur.parent()?.join(t)
        };
        // normalise `..` without touching the file system
        let mut norm = PathBuf::new();
        for c in cur.components() {
            match c {
                std::path::Component::ParentDir => {
                    norm.pop();
                }
                std::path::Component::CurDir => {}
                c => norm.push(c),
            }
        }
        cur = norm;
    }
    None
}

/// Where `name` is in `root`'s library directories: (the directory relative to the root,
/// the resolved file).
fn find_lib(root: &Path, name: &str) -> Option<(PathBuf, PathBuf)> {
    for d in lib_dirs(root) {
        let p = d.join(name);
        if fs::symlink_metadata(&p).is_ok() {
            let rel = d.strip_prefix(root).ok()?.to_path_buf();
            let file = resolve_in(root, &rel.join(name))?;
            return Some((rel, file));
        }
    }
    None
}

/// What [`missing_libs`] found.
#[derive(Debug, Default)]
pub struct NativeLibs {
    /// ELF files found in the layers (relative to their layer dir), with what they need.
    pub elf_files: Vec<(String, Vec<String>)>,
    /// Libraries copied from the build root: (name, image path).
    pub copied: Vec<(String, String)>,
    /// Libraries needed but in neither root (nor in the layers).
    pub unresolved: Vec<(String, String)>,
}

/// The ELF files under `layers` and their `DT_NEEDED` libraries. The runtime root is asked for
/// (`runtime`) only when there is an ELF file; each library it lacks is copied, with the
/// libraries it needs in turn, from `build_root` into `out` (at its own path, `/usr/lib/…`).
pub fn missing_libs(
    layers: &[PathBuf],
    runtime: &mut dyn FnMut() -> Result<PathBuf>,
    build_root: &Path,
    out: &Path,
) -> Result<NativeLibs> {
    let mut r = NativeLibs::default();
    let mut provided: BTreeSet<String> = BTreeSet::new();
    for l in layers {
        for e in walkdir::WalkDir::new(l).into_iter().flatten() {
            if !e.file_type().is_file() {
                if e.file_type().is_symlink() {
                    provided.insert(e.file_name().to_string_lossy().into_owned());
                }
                continue;
            }
            provided.insert(e.file_name().to_string_lossy().into_owned());
            let mut head = [0u8; 4];
            let is = fs::File::open(e.path())
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
                .is_ok()
                && is_elf(&head);
            if !is {
                continue;
            }
            let bytes = fs::read(e.path()).map_err(EngineError::io("reading", e.path()))?;
            if let Some(n) = needed(&bytes) {
                let rel = e
                    .path()
                    .strip_prefix(l)
                    .unwrap_or(e.path())
                    .to_string_lossy()
                    .into_owned();
                r.elf_files.push((rel, n));
            }
        }
    }
    if r.elf_files.iter().all(|(_, n)| n.is_empty()) {
        return Ok(r);
    }
    let runtime_root = runtime()?;
    let mut todo: Vec<(String, String)> = Vec::new();
    for (f, n) in &r.elf_files {
        for lib in n {
            todo.push((lib.clone(), f.clone()));
        }
    }
    let mut seen: BTreeMap<String, ()> = BTreeMap::new();
    while let Some((lib, by)) = todo.pop() {
        if seen.insert(lib.clone(), ()).is_some() || provided.contains(&lib) {
            continue;
        }
        if find_lib(&runtime_root, &lib).is_some() {
            continue;
        }
        let Some((dir, file)) = find_lib(build_root, &lib) else {
            r.unresolved.push((lib, by));
            continue;
        };
        // merged /usr: `lib/…` is `usr/lib/…`
        let dir = if dir.starts_with("usr") {
            dir
        } else {
            Path::new("usr").join(dir)
        };
        let dest = out.join(&dir).join(&lib);
        if let Some(p) = dest.parent() {
            fs::create_dir_all(p).map_err(EngineError::io("creating a directory", p))?;
        }
        fs::copy(&file, &dest).map_err(EngineError::io("copying a library", &file))?;
        let bytes = fs::read(&file).map_err(EngineError::io("reading", &file))?;
        for n in needed(&bytes).unwrap_or_default() {
            todo.push((n, lib.clone()));
        }
        r.copied
            .push((lib.clone(), format!("/{}", dir.join(&lib).display())));
    }
    r.copied.sort();
    Ok(r)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_needed_of_real_binaries() {
        // the test process itself is a dynamically linked ELF file
        let exe = std::env::current_exe().unwrap();
        let n = needed(&fs::read(&exe).unwrap()).unwrap();
        assert!(n.iter().any(|l| l.starts_with("libc.so")), "{n:?}");
        assert_eq!(needed(b"#!/bin/sh\n"), None);
        assert_eq!(needed(b"\x7fELF\x02\x01"), None);
    }

    #[test]
    fn copies_what_the_runtime_lacks() {
        let t = tempfile::tempdir().unwrap();
        let exe = std::env::current_exe().unwrap();
        let host_needed = needed(&fs::read(&exe).unwrap()).unwrap();
        // the layer: one ELF file (this test binary)
        let layer = t.path().join("layer");
        fs::create_dir_all(layer.join("m/build")).unwrap();
        fs::copy(&exe, layer.join("m/build/addon.node")).unwrap();
        // the runtime has libc only; the build root has the rest (as links to real files)
        let runtime = t.path().join("runtime");
        let build = t.path().join("build");
        let multi = "usr/lib/x86_64-linux-gnu";
        fs::create_dir_all(runtime.join(multi)).unwrap();
        fs::create_dir_all(build.join(multi)).unwrap();
        for lib in &host_needed {
            if lib.starts_with("libc.so") {
                fs::write(runtime.join(multi).join(lib), b"x").unwrap();
            } else {
                fs::write(build.join(multi).join(format!("{lib}.real")), b"lib").unwrap();
                std::os::unix::fs::symlink(format!("{lib}.real"), build.join(multi).join(lib))
                    .unwrap();
            }
        }
        let out = t.path().join("out");
        let mut asked = 0;
        let r = missing_libs(
            &[layer],
            &mut || {
                asked += 1;
                Ok(runtime.clone())
            },
            &build,
            &out,
        )
        .unwrap();
        assert_eq!(asked, 1);
        assert_eq!(r.elf_files.len(), 1);
        let others: Vec<&String> = host_needed
            .iter()
            .filter(|l| !l.starts_with("libc.so"))
            .collect();
        assert_eq!(r.copied.len(), others.len(), "{r:?}");
        for l in others {
            let p = out.join(multi).join(l);
            assert_eq!(fs::read(&p).unwrap(), b"lib", "{}", p.display());
            assert!(!fs::symlink_metadata(&p).unwrap().file_type().is_symlink());
        }
        assert!(r.unresolved.is_empty());
        // no ELF files: the runtime root is never asked for
        let plain = t.path().join("plain");
        fs::create_dir_all(&plain).unwrap();
        fs::write(plain.join("a.js"), "x").unwrap();
        let r = missing_libs(
            &[plain],
            &mut || panic!("not needed"),
            &build,
            &t.path().join("out2"),
        )
        .unwrap();
        assert!(r.elf_files.is_empty());
    }
}
