//! ELF files read, never run: the program interpreter (`PT_INTERP`), the shared libraries an
//! ELF file needs (`DT_NEEDED`) and where it asks for them (`DT_RUNPATH`, `DT_RPATH`,
//! `$ORIGIN`), and the one resolver that finds those libraries in a root filesystem the way the
//! dynamic loader would (`/etc/ld.so.conf` and its includes, the multiarch and default
//! directories). A root is anything implementing [`Tree`]: a directory on disk ([`DiskTree`],
//! the zero-config builders) or an in-memory index of an image's layers (`ocibuild check`).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// What went wrong copying libraries ([`missing_libs`]).
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> ElfError {
    let (what, path) = (what.to_string(), path.to_path_buf());
    move |source| ElfError::Io { what, path, source }
}

fn u16_at(b: &[u8], o: usize, le: bool) -> Option<u16> {
    let s: [u8; 2] = b.get(o..o.checked_add(2)?)?.try_into().ok()?;
    Some(if le {
        u16::from_le_bytes(s)
    } else {
        u16::from_be_bytes(s)
    })
}

fn u32_at(b: &[u8], o: usize, le: bool) -> Option<u32> {
    let s: [u8; 4] = b.get(o..o.checked_add(4)?)?.try_into().ok()?;
    Some(if le {
        u32::from_le_bytes(s)
    } else {
        u32::from_be_bytes(s)
    })
}

fn u64_at(b: &[u8], o: usize, le: bool) -> Option<u64> {
    let s: [u8; 8] = b.get(o..o.checked_add(8)?)?.try_into().ok()?;
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

/// What the dynamic loader reads from an ELF file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ElfInfo {
    /// `PT_INTERP`: the program interpreter (`/lib64/ld-linux-x86-64.so.2`); `None` for
    /// static programs and shared libraries.
    pub interp: Option<String>,
    /// `DT_NEEDED`, in order.
    pub needed: Vec<String>,
    /// `DT_RUNPATH`, split at `:`.
    pub runpath: Vec<String>,
    /// `DT_RPATH`, split at `:` (only used when there is no `DT_RUNPATH`).
    pub rpath: Vec<String>,
    /// `e_machine`.
    pub machine: u16,
    /// ELFCLASS64.
    pub wide: bool,
}

/// Parse an ELF file's program headers and dynamic section (32 or 64 bit, either byte order);
/// `None` when it is not ELF or is malformed.
pub fn parse(b: &[u8]) -> Option<ElfInfo> {
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
    let machine = u16_at(b, 0x12, le)?;
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
    // (offset, vaddr, filesz)
    let mut loads = Vec::new();
    let mut dynamic = None;
    let mut interp = None;
    for i in 0..usize::from(phnum) {
        let h = usize::try_from(phoff)
            .ok()?
            .checked_add(i.checked_mul(usize::from(phentsize))?)?;
        let p_type = u32_at(b, h, le)?;
        let (off, vaddr, filesz) = if wide {
            (word(h + 8)?, word(h + 16)?, word(h + 32)?)
        } else {
            (word(h + 4)?, word(h + 8)?, word(h + 16)?)
        };
        match p_type {
            1 => loads.push((off, vaddr, filesz)),
            2 => dynamic = Some((off, filesz)),
            3 => {
                let s = usize::try_from(off).ok()?;
                let e = s.checked_add(usize::try_from(filesz).ok()?)?;
                let raw = b.get(s..e)?;
                let end = raw.iter().position(|c| *c == 0).unwrap_or(raw.len());
                interp = Some(String::from_utf8_lossy(&raw[..end]).into_owned());
            }
            _ => {}
        }
    }
    let mut info = ElfInfo {
        interp,
        machine,
        wide,
        ..ElfInfo::default()
    };
    let Some((dyn_off, dyn_size)) = dynamic else {
        return Some(info);
    };
    let entsize: u64 = if wide { 16 } else { 8 };
    let mut strtab = None;
    let (mut names, mut runpath, mut rpath) = (Vec::new(), Vec::new(), Vec::new());
    let mut o = dyn_off;
    while o.checked_add(entsize)? <= dyn_off.checked_add(dyn_size)? {
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
            15 => rpath.push(val),
            29 => runpath.push(val),
            _ => {}
        }
        o += entsize;
    }
    if names.is_empty() && runpath.is_empty() && rpath.is_empty() {
        return Some(info);
    }
    let strtab = strtab?;
    // DT_STRTAB is an address: the load segment holding it gives its file offset
    let (seg_off, seg_vaddr, _) = loads
        .iter()
        .find(|(_, v, sz)| strtab >= *v && strtab < v.saturating_add(*sz))?;
    let str_off = strtab - seg_vaddr + seg_off;
    let string = |n: u64| -> Option<String> {
        let start = usize::try_from(str_off.checked_add(n)?).ok()?;
        let rest = b.get(start..)?;
        let end = rest.iter().position(|c| *c == 0)?;
        Some(String::from_utf8_lossy(&rest[..end]).into_owned())
    };
    for n in names {
        info.needed.push(string(n)?);
    }
    for (vals, out) in [(runpath, &mut info.runpath), (rpath, &mut info.rpath)] {
        for v in vals {
            out.extend(
                string(v)?
                    .split(':')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            );
        }
    }
    Some(info)
}

/// The `DT_NEEDED` entries of an ELF file; `None` when it is not ELF or is malformed, an empty
/// list when it is static.
pub fn needed(b: &[u8]) -> Option<Vec<String>> {
    parse(b).map(|i| i.needed)
}

/// One entry of a root filesystem, not followed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    File,
    Dir,
    Symlink(String),
    Other,
}

/// A root filesystem the resolver can look into. Paths are absolute and normalised (`/usr/lib`).
pub trait Tree {
    /// The entry at `path` itself (a symlink is not followed).
    fn node(&self, path: &str) -> Option<Node>;
    /// The names in directory `dir` (not followed), sorted.
    fn children(&self, dir: &str) -> Vec<String>;
    /// The content of a small configuration file (`/etc/ld.so.conf`), when known.
    fn read_small(&self, path: &str) -> Option<Vec<u8>>;
    /// The ELF information of the regular file at `path`, when it is ELF.
    fn elf(&self, path: &str) -> Option<ElfInfo>;
}

/// `path` made absolute and normalised: no `.`, no `..` above the root, no double slashes.
pub fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// `path` with every symlink on the way resolved inside the tree (absolute targets are
/// relative to its root, `..` stops at the root), as the kernel does in a container; `None`
/// when something on the way is missing or the links loop.
pub fn resolve(tree: &dyn Tree, path: &str) -> Option<String> {
    let mut todo: Vec<String> = path
        .split('/')
        .rev()
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect();
    let mut cur = String::from("/");
    let mut hops = 0;
    while let Some(c) = todo.pop() {
        match c.as_str() {
            "." => continue,
            ".." => {
                cur = parent(&cur).to_string();
                continue;
            }
            _ => {}
        }
        let cand = join(&cur, &c);
        match tree.node(&cand)? {
            Node::Symlink(t) => {
                hops += 1;
                if hops > 40 {
                    return None;
                }
                if t.starts_with('/') {
                    cur = "/".to_string();
                }
                todo.extend(
                    t.split('/')
                        .rev()
                        .filter(|c| !c.is_empty())
                        .map(str::to_string),
                );
            }
            Node::Dir => cur = cand,
            Node::File | Node::Other => {
                if !todo.is_empty() {
                    return None;
                }
                cur = cand;
            }
        }
    }
    Some(cur)
}

/// The regular file `path` resolves to.
pub fn resolve_file(tree: &dyn Tree, path: &str) -> Option<String> {
    resolve(tree, path).filter(|p| tree.node(p) == Some(Node::File))
}

/// The directories the dynamic loader searches in a root after an object's own paths:
/// `/etc/ld.so.conf` (with its `include`s), then the multiarch and default directories.
#[derive(Clone, Debug, Default)]
pub struct LibPath {
    pub dirs: Vec<String>,
}

impl LibPath {
    pub fn of(tree: &dyn Tree) -> Self {
        let mut dirs = Vec::new();
        conf_dirs(tree, "/etc/ld.so.conf", &mut dirs, 0);
        for d in ["/lib", "/usr/lib"] {
            for c in tree.children(d) {
                if c.contains("-linux-gnu") {
                    dirs.push(join(d, &c));
                }
            }
        }
        for d in ["/lib64", "/usr/lib64", "/lib", "/usr/lib", "/usr/local/lib"] {
            dirs.push(d.to_string());
        }
        let mut seen = BTreeSet::new();
        dirs.retain(|d| seen.insert(d.clone()));
        LibPath { dirs }
    }

    /// Where the loader finds `name` for the object at `origin` (its path in the tree) with
    /// `info`'s RUNPATH/RPATH, `extra` (LD_LIBRARY_PATH) searched before RUNPATH: the resolved
    /// path of the library file.
    pub fn find(
        &self,
        tree: &dyn Tree,
        name: &str,
        origin: &str,
        info: &ElfInfo,
        extra: &[String],
    ) -> Option<String> {
        if name.contains('/') {
            return resolve_file(tree, &normalize(&subst(name, origin)));
        }
        let own = |v: &[String]| -> Vec<String> { v.iter().map(|d| subst(d, origin)).collect() };
        let mut search = Vec::new();
        if info.runpath.is_empty() {
            search.extend(own(&info.rpath));
        }
        search.extend(extra.iter().cloned());
        search.extend(own(&info.runpath));
        search.extend(self.dirs.iter().cloned());
        search
            .iter()
            .filter(|d| d.starts_with('/'))
            .find_map(|d| resolve_file(tree, &normalize(&format!("{d}/{name}"))))
    }

    /// The libraries `info` (the object at `path`) needs, transitively, that cannot be found:
    /// (library, the object that needs it), plus its interpreter when that is missing.
    pub fn missing(
        &self,
        tree: &dyn Tree,
        path: &str,
        info: &ElfInfo,
        extra: &[String],
    ) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(i) = &info.interp
            && resolve_file(tree, i).is_none()
        {
            out.push((i.clone(), path.to_string()));
        }
        let mut seen = BTreeSet::new();
        let mut todo: Vec<(String, String, ElfInfo)> =
            vec![(path.to_string(), parent(path).to_string(), info.clone())];
        while let Some((obj, origin, inf)) = todo.pop() {
            for n in &inf.needed {
                if !seen.insert(n.clone()) {
                    continue;
                }
                match self.find(tree, n, &origin, &inf, extra) {
                    Some(p) => {
                        if let Some(li) = tree.elf(&p) {
                            todo.push((p.clone(), parent(&p).to_string(), li));
                        }
                    }
                    None => out.push((n.clone(), obj.clone())),
                }
            }
        }
        out
    }
}

fn subst(s: &str, origin: &str) -> String {
    s.replace("${ORIGIN}", origin)
        .replace("$ORIGIN", origin)
        .replace("${LIB}", "lib")
        .replace("$LIB", "lib")
}

fn conf_dirs(tree: &dyn Tree, file: &str, out: &mut Vec<String>, depth: usize) {
    if depth > 8 {
        return;
    }
    let Some(bytes) = resolve_file(tree, file).and_then(|p| tree.read_small(&p)) else {
        return;
    };
    let text = String::from_utf8_lossy(&bytes);
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some(pat) = line.strip_prefix("include") {
            let pat = pat.trim();
            let pat = if pat.starts_with('/') {
                pat.to_string()
            } else {
                join(parent(file), pat)
            };
            let (dir, glob) = (
                parent(&pat).to_string(),
                pat.rsplit('/').next().unwrap_or(""),
            );
            let dir = resolve(tree, &dir).unwrap_or(dir);
            for c in tree.children(&dir) {
                if glob_match(glob, &c) {
                    conf_dirs(tree, &join(&dir, &c), out, depth + 1);
                }
            }
        } else if line.starts_with('/') {
            out.push(normalize(line));
        }
    }
}

/// `*` and `?` glob of one file name.
fn glob_match(pat: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pat.chars().collect(), name.chars().collect());
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// A root filesystem in a directory on disk.
pub struct DiskTree(pub PathBuf);

impl DiskTree {
    fn at(&self, path: &str) -> PathBuf {
        self.0.join(path.trim_start_matches('/'))
    }
}

impl Tree for DiskTree {
    fn node(&self, path: &str) -> Option<Node> {
        let p = self.at(path);
        let m = fs::symlink_metadata(&p).ok()?;
        let t = m.file_type();
        Some(if t.is_symlink() {
            Node::Symlink(fs::read_link(&p).ok()?.to_string_lossy().into_owned())
        } else if t.is_dir() {
            Node::Dir
        } else if t.is_file() {
            Node::File
        } else {
            Node::Other
        })
    }

    fn children(&self, dir: &str) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.at(dir))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    fn read_small(&self, path: &str) -> Option<Vec<u8>> {
        let p = self.at(path);
        (fs::metadata(&p).ok()?.len() <= 1 << 20)
            .then(|| fs::read(&p).ok())
            .flatten()
    }

    fn elf(&self, path: &str) -> Option<ElfInfo> {
        let p = self.at(path);
        let mut head = [0u8; 4];
        let mut f = fs::File::open(&p).ok()?;
        std::io::Read::read_exact(&mut f, &mut head).ok()?;
        if !is_elf(&head) {
            return None;
        }
        parse(&fs::read(&p).ok()?)
    }
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
/// (`runtime`) only when there is an ELF file; each library it lacks (looked up with
/// [`LibPath`]) is copied, with the libraries it needs in turn, from the build root into `out`
/// (at its own path, `/usr/lib/…`). The build root is asked for (`build_root`) only when the
/// runtime root lacks a library: a cold runner whose app needs nothing more does not make it.
pub fn missing_libs<E: From<ElfError>>(
    layers: &[PathBuf],
    runtime: &mut dyn FnMut() -> Result<PathBuf, E>,
    build_root: &mut dyn FnMut() -> Result<PathBuf, E>,
    out: &Path,
) -> Result<NativeLibs, E> {
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
            let bytes = fs::read(e.path()).map_err(io("reading", e.path()))?;
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
    let runtime_root = DiskTree(runtime()?);
    let runtime_path = LibPath::of(&runtime_root);
    let mut build_tree: Option<(DiskTree, LibPath)> = None;
    let none = ElfInfo::default();
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
        if runtime_path
            .find(&runtime_root, &lib, "/", &none, &[])
            .is_some()
        {
            continue;
        }
        if build_tree.is_none() {
            let build = DiskTree(build_root()?);
            let path = LibPath::of(&build);
            build_tree = Some((build, path));
        }
        let Some((build, build_path)) = build_tree.as_ref() else {
            continue;
        };
        // the directory it is in (as named in the search path) and the file it resolves to
        let found = build_path.dirs.iter().find_map(|d| {
            let file = resolve_file(build, &normalize(&format!("{d}/{lib}")))?;
            Some((d.trim_start_matches('/').to_string(), file))
        });
        let Some((dir, file)) = found else {
            r.unresolved.push((lib, by));
            continue;
        };
        let file = build.at(&file);
        // merged /usr: `lib/…` is `usr/lib/…`
        let dir = if dir.starts_with("usr") {
            PathBuf::from(dir)
        } else {
            Path::new("usr").join(dir)
        };
        let dest = out.join(&dir).join(&lib);
        if let Some(p) = dest.parent() {
            fs::create_dir_all(p).map_err(io("creating a directory", p))?;
        }
        fs::copy(&file, &dest).map_err(io("copying a library", &file))?;
        let bytes = fs::read(&file).map_err(io("reading", &file))?;
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
    use std::os::unix::fs::symlink;

    #[test]
    fn reads_needed_of_real_binaries() {
        // the test process itself is a dynamically linked ELF file
        let exe = std::env::current_exe().unwrap();
        let info = parse(&fs::read(&exe).unwrap()).unwrap();
        assert!(
            info.needed.iter().any(|l| l.starts_with("libc.so")),
            "{info:?}"
        );
        assert!(info.interp.as_deref().unwrap().contains("ld-"), "{info:?}");
        assert_eq!(needed(b"#!/bin/sh\n"), None);
        assert_eq!(needed(b"\x7fELF\x02\x01"), None);
    }

    #[test]
    fn resolves_symlinks_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        fs::create_dir_all(r.join("usr/bin")).unwrap();
        fs::create_dir_all(r.join("etc/ld.so.conf.d")).unwrap();
        fs::create_dir_all(r.join("opt/x/lib")).unwrap();
        symlink("usr/bin", r.join("bin")).unwrap();
        fs::write(r.join("usr/bin/node"), "x").unwrap();
        symlink("/../../usr/bin/node", r.join("usr/bin/nodejs")).unwrap();
        symlink("loop", r.join("loop")).unwrap();
        fs::write(
            r.join("etc/ld.so.conf"),
            "include /etc/ld.so.conf.d/*.conf\n",
        )
        .unwrap();
        fs::write(r.join("etc/ld.so.conf.d/x.conf"), "# x\n/opt/x/lib\n").unwrap();
        fs::write(r.join("opt/x/lib/libx.so.1"), "x").unwrap();
        let tree = DiskTree(r.to_path_buf());
        assert_eq!(resolve(&tree, "/bin/node").unwrap(), "/usr/bin/node");
        assert_eq!(resolve(&tree, "/bin/nodejs").unwrap(), "/usr/bin/node");
        assert_eq!(resolve(&tree, "/loop"), None);
        assert_eq!(resolve(&tree, "/bin/nope"), None);
        let lp = LibPath::of(&tree);
        assert_eq!(lp.dirs[0], "/opt/x/lib", "{lp:?}");
        let none = ElfInfo::default();
        assert_eq!(
            lp.find(&tree, "libx.so.1", "/", &none, &[]).unwrap(),
            "/opt/x/lib/libx.so.1"
        );
        // $ORIGIN
        let own = ElfInfo {
            runpath: vec!["$ORIGIN/../x/lib".into()],
            ..ElfInfo::default()
        };
        fs::write(r.join("usr/bin/liby.so"), "y").unwrap();
        assert_eq!(lp.find(&tree, "liby.so", "/usr/bin", &none, &[]), None);
        fs::create_dir_all(r.join("usr/x/lib")).unwrap();
        fs::write(r.join("usr/x/lib/liby.so"), "y").unwrap();
        assert_eq!(
            lp.find(&tree, "liby.so", "/usr/bin", &own, &[]).unwrap(),
            "/usr/x/lib/liby.so"
        );
        assert!(glob_match("*.conf", "a.conf") && !glob_match("*.conf", "a.conf~"));
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
                symlink(format!("{lib}.real"), build.join(multi).join(lib)).unwrap();
            }
        }
        let out = t.path().join("out");
        let mut asked = 0;
        let r = missing_libs::<ElfError>(
            &[layer],
            &mut || {
                asked += 1;
                Ok(runtime.clone())
            },
            &mut || Ok(build.clone()),
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
        let r = missing_libs::<ElfError>(
            &[plain],
            &mut || panic!("not needed"),
            &mut || panic!("not needed"),
            &t.path().join("out2"),
        )
        .unwrap();
        assert!(r.elf_files.is_empty());
        // the runtime root has every library: the build root is never asked for (a cold
        // runner does not assemble it)
        let full = t.path().join("full");
        fs::create_dir_all(full.join(multi)).unwrap();
        for lib in &host_needed {
            fs::write(full.join(multi).join(lib), b"x").unwrap();
        }
        let r = missing_libs::<ElfError>(
            &[t.path().join("layer")],
            &mut || Ok(full.clone()),
            &mut || panic!("the build root is not needed"),
            &t.path().join("out3"),
        )
        .unwrap();
        assert!(r.copied.is_empty() && r.unresolved.is_empty(), "{r:?}");
    }
}
