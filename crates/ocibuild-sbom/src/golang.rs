//! The build information Go embeds in its binaries (`go version -m`), read natively from the
//! ELF `.go.buildinfo` section: the header `\xff Go buildinf:` (14 bytes), the pointer size, a
//! flags byte (bit 0: big-endian, bit 1: strings inline), then either two varint-prefixed strings
//! (Go ≥ 1.18) or two pointers to Go string headers (older Go), resolved through the sections.

use std::collections::BTreeMap;

use crate::{Component, Ecosystem};

const MAGIC: &[u8] = b"\xff Go buildinf:";

/// What a Go binary says about how it was built.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildInfo {
    /// `go1.22.3` as recorded.
    pub go_version: String,
    /// The main package's import path.
    pub path: String,
    pub main: Option<Module>,
    pub deps: Vec<Module>,
    /// `build` lines: `GOOS`, `GOARCH`, `-ldflags`, `vcs.revision`, …
    pub settings: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Module {
    pub path: String,
    pub version: String,
    /// `h1:` hash from go.sum, when recorded.
    pub sum: String,
}

struct Section {
    name: String,
    addr: u64,
    offset: u64,
    size: u64,
    nobits: bool,
}

struct Elf<'a> {
    data: &'a [u8],
    is64: bool,
    big: bool,
    sections: Vec<Section>,
}

impl<'a> Elf<'a> {
    fn parse(data: &'a [u8]) -> Option<Self> {
        if data.len() < 52 || &data[..4] != b"\x7fELF" {
            return None;
        }
        let is64 = match data[4] {
            1 => false,
            2 => true,
            _ => return None,
        };
        let big = match data[5] {
            1 => false,
            2 => true,
            _ => return None,
        };
        let mut elf = Elf {
            data,
            is64,
            big,
            sections: Vec::new(),
        };
        let (shoff, shentsize, shnum, shstrndx) = if is64 {
            (
                elf.uint(0x28, 8)?,
                elf.uint(0x3A, 2)?,
                elf.uint(0x3C, 2)?,
                elf.uint(0x3E, 2)?,
            )
        } else {
            (
                elf.uint(0x20, 4)?,
                elf.uint(0x2E, 2)?,
                elf.uint(0x30, 2)?,
                elf.uint(0x32, 2)?,
            )
        };
        let mut raw = Vec::new();
        for i in 0..shnum {
            let base = shoff.checked_add(i.checked_mul(shentsize)?)?;
            let b = usize::try_from(base).ok()?;
            let (name, ty, addr, offset, size) = if is64 {
                (
                    elf.uint(b, 4)?,
                    elf.uint(b + 4, 4)?,
                    elf.uint(b + 0x10, 8)?,
                    elf.uint(b + 0x18, 8)?,
                    elf.uint(b + 0x20, 8)?,
                )
            } else {
                (
                    elf.uint(b, 4)?,
                    elf.uint(b + 4, 4)?,
                    elf.uint(b + 0x0C, 4)?,
                    elf.uint(b + 0x10, 4)?,
                    elf.uint(b + 0x14, 4)?,
                )
            };
            raw.push((name, ty, addr, offset, size));
        }
        let strtab = raw.get(usize::try_from(shstrndx).ok()?).map(|s| (s.3, s.4));
        for (name, ty, addr, offset, size) in raw {
            let name = strtab
                .and_then(|(off, sz)| {
                    let start = usize::try_from(off.checked_add(name)?).ok()?;
                    let end = usize::try_from(off.checked_add(sz)?).ok()?;
                    let bytes = data.get(start..end.min(data.len()))?;
                    let n = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
                    Some(String::from_utf8_lossy(&bytes[..n]).into_owned())
                })
                .unwrap_or_default();
            elf.sections.push(Section {
                name,
                addr,
                offset,
                size,
                nobits: ty == 8,
            });
        }
        Some(elf)
    }

    fn uint(&self, off: usize, len: usize) -> Option<u64> {
        read_uint(self.data, off, len, self.big)
    }

    fn section_data(&self, s: &Section) -> Option<&'a [u8]> {
        if s.nobits {
            return None;
        }
        let start = usize::try_from(s.offset).ok()?;
        let end = start.checked_add(usize::try_from(s.size).ok()?)?;
        self.data.get(start..end)
    }

    /// `len` bytes at virtual address `addr`.
    fn read_addr(&self, addr: u64, len: u64) -> Option<&'a [u8]> {
        let s = self.sections.iter().find(|s| {
            !s.nobits
                && s.addr != 0
                && addr >= s.addr
                && addr.checked_add(len).is_some_and(|e| e <= s.addr + s.size)
        })?;
        let data = self.section_data(s)?;
        let start = usize::try_from(addr - s.addr).ok()?;
        data.get(start..start.checked_add(usize::try_from(len).ok()?)?)
    }
}

fn read_uint(data: &[u8], off: usize, len: usize, big: bool) -> Option<u64> {
    let b = data.get(off..off.checked_add(len)?)?;
    let mut v: u64 = 0;
    if big {
        for x in b {
            v = (v << 8) | u64::from(*x);
        }
    } else {
        for x in b.iter().rev() {
            v = (v << 8) | u64::from(*x);
        }
    }
    Some(v)
}

fn uvarint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for (i, x) in b.iter().enumerate().take(10) {
        v |= u64::from(x & 0x7f) << (7 * i);
        if x & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

fn varint_string(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let (n, used) = uvarint(b)?;
    let n = usize::try_from(n).ok()?;
    let rest = b.get(used..)?;
    Some((rest.get(..n)?, rest.get(n..)?))
}

/// Read the build information of an ELF Go binary; `None` for anything else (not ELF, not Go,
/// or a layout this parser does not know).
pub fn read_buildinfo(data: &[u8]) -> Option<BuildInfo> {
    let elf = Elf::parse(data)?;
    let blob: &[u8] = match elf.sections.iter().find(|s| s.name == ".go.buildinfo") {
        Some(s) => elf.section_data(s)?,
        // no section table entry (stripped headers): Go aligns the header to 16 bytes
        None => {
            let mut found = None;
            let mut off = 0;
            while off + MAGIC.len() <= data.len() {
                if data[off..].starts_with(MAGIC) {
                    found = Some(&data[off..]);
                    break;
                }
                off += 16;
            }
            found?
        }
    };
    if blob.len() < 32 || !blob.starts_with(MAGIC) {
        return None;
    }
    let ptr_size = usize::from(blob[14]);
    let flags = blob[15];
    let big = flags & 1 != 0;
    let (version, modinfo): (Vec<u8>, Vec<u8>) = if flags & 2 != 0 {
        let (v, rest) = varint_string(blob.get(32..)?)?;
        let (m, _) = varint_string(rest)?;
        (v.to_vec(), m.to_vec())
    } else {
        if ptr_size != 4 && ptr_size != 8 {
            return None;
        }
        let read_str = |ptr_at: usize| -> Option<Vec<u8>> {
            let hdr_addr = read_uint(blob, ptr_at, ptr_size, big)?;
            let hdr = elf.read_addr(hdr_addr, 2 * ptr_size as u64)?;
            let data_addr = read_uint(hdr, 0, ptr_size, big)?;
            let len = read_uint(hdr, ptr_size, ptr_size, big)?;
            if len == 0 {
                return Some(Vec::new());
            }
            if len > (1 << 24) {
                return None;
            }
            Some(elf.read_addr(data_addr, len)?.to_vec())
        };
        (read_str(16)?, read_str(16 + ptr_size)?)
    };
    let _ = elf.is64;
    let mut mi: &[u8] = &modinfo;
    // The module info is framed by 16-byte sentinels.
    if mi.len() >= 33 && mi[mi.len() - 17] == b'\n' {
        mi = &mi[16..mi.len() - 16];
    } else {
        mi = &[];
    }
    let mut info = parse_modinfo(&String::from_utf8_lossy(mi));
    info.go_version = String::from_utf8_lossy(&version).into_owned();
    if info.go_version.is_empty() {
        return None;
    }
    Some(info)
}

/// The text `go version -m` prints after the version line.
pub fn parse_modinfo(text: &str) -> BuildInfo {
    let mut info = BuildInfo::default();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let module = |f: &[&str]| Module {
            path: f.get(1).copied().unwrap_or_default().to_string(),
            version: f.get(2).copied().unwrap_or_default().to_string(),
            sum: f.get(3).copied().unwrap_or_default().to_string(),
        };
        match f.first().copied() {
            Some("path") => info.path = f.get(1).copied().unwrap_or_default().to_string(),
            Some("mod") => info.main = Some(module(&f)),
            Some("dep") => info.deps.push(module(&f)),
            Some("=>") => {
                // the replacement of the dependency (or main module) just listed
                let r = module(&f);
                if let Some(d) = info.deps.last_mut() {
                    *d = r;
                } else if let Some(m) = info.main.as_mut() {
                    *m = r;
                }
            }
            Some("build") => {
                if let Some((k, v)) = f.get(1).and_then(|kv| kv.split_once('=')) {
                    info.settings.insert(k.to_string(), v.to_string());
                }
            }
            _ => {}
        }
    }
    info
}

/// Go's version without `go` and without experiment suffixes: `go1.22.3 X:boringcrypto` → `1.22.3`.
pub fn stdlib_version(v: &str) -> String {
    let v = v.split_whitespace().next().unwrap_or(v);
    v.strip_prefix("go").unwrap_or(v).to_string()
}

/// The components of one Go binary: the standard library at the toolchain's version, the main
/// module and each dependency module, with `ocibuild:goos` / `ocibuild:goarch`.
pub fn catalog_binary(
    data: &[u8],
    path: &str,
    layer: &str,
    platform: Option<&ocibuild_oci::Platform>,
) -> Vec<Component> {
    let Some(info) = read_buildinfo(data) else {
        return Vec::new();
    };
    let goos = info
        .settings
        .get("GOOS")
        .cloned()
        .or_else(|| platform.map(|p| p.os.clone()))
        .unwrap_or_default();
    let goarch = info
        .settings
        .get("GOARCH")
        .cloned()
        .or_else(|| platform.map(|p| p.architecture.clone()))
        .unwrap_or_default();
    let mut props = BTreeMap::new();
    if !goos.is_empty() {
        props.insert("ocibuild:goos".to_string(), goos);
    }
    if !goarch.is_empty() {
        props.insert("ocibuild:goarch".to_string(), goarch);
    }
    let comp = |name: &str, version: &str, purl: String, sum: &str| {
        let mut properties = props.clone();
        if !sum.is_empty() {
            properties.insert("ocibuild:gosum".to_string(), sum.to_string());
        }
        Component {
            ecosystem: Ecosystem::Go,
            name: name.to_string(),
            version: version.to_string(),
            purl,
            licenses: Vec::new(),
            layer: layer.to_string(),
            path: path.to_string(),
            hashes: Vec::new(),
            properties,
        }
    };
    let mut out = Vec::new();
    let std_v = stdlib_version(&info.go_version);
    out.push(comp(
        "stdlib",
        &std_v,
        crate::purl::golang("stdlib", Some(&std_v)),
        "",
    ));
    if let Some(m) = &info.main
        && !m.path.is_empty()
    {
        let v = (m.version != "(devel)" && !m.version.is_empty()).then_some(m.version.as_str());
        out.push(comp(
            &m.path,
            v.unwrap_or(""),
            crate::purl::golang(&m.path, v),
            &m.sum,
        ));
    }
    for d in &info.deps {
        if d.path.is_empty() {
            continue;
        }
        let v = (!d.version.is_empty() && d.version != "(devel)").then_some(d.version.as_str());
        out.push(comp(
            &d.path,
            v.unwrap_or(""),
            crate::purl::golang(&d.path, v),
            &d.sum,
        ));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn varint(n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut n = n as u64;
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(b);
                return out;
            }
            out.push(b | 0x80);
        }
    }

    const MODINFO: &str = "path\texample.com/app\nmod\texample.com/app\t(devel)\t\ndep\tgithub.com/google/uuid\tv1.6.0\th1:NIvaJDMOsjHA8n1jAhLSgzrAzy1Hgr+hNrb57e+94F0=\ndep\tgolang.org/x/text\tv0.3.0\th1:old=\n=>\tgolang.org/x/text\tv0.14.0\th1:new=\nbuild\t-compiler=gc\nbuild\tGOARCH=arm64\nbuild\tGOOS=linux\n";

    fn framed(m: &str) -> Vec<u8> {
        let mut v = vec![0x30u8; 16];
        v.extend_from_slice(m.as_bytes());
        v.extend_from_slice(&[0x31u8; 16]);
        v
    }

    /// A minimal 64-bit little-endian ELF with one `.go.buildinfo` section.
    fn elf_with_section(content: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 64];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2;
        f[5] = 1;
        let content_off = f.len();
        f.extend_from_slice(content);
        let strtab_off = f.len();
        let strtab = b"\0.go.buildinfo\0.shstrtab\0";
        f.extend_from_slice(strtab);
        while !f.len().is_multiple_of(8) {
            f.push(0);
        }
        let shoff = f.len();
        let sh = |name: u32, ty: u32, addr: u64, off: u64, size: u64| {
            let mut s = vec![0u8; 64];
            s[0..4].copy_from_slice(&name.to_le_bytes());
            s[4..8].copy_from_slice(&ty.to_le_bytes());
            s[0x10..0x18].copy_from_slice(&addr.to_le_bytes());
            s[0x18..0x20].copy_from_slice(&off.to_le_bytes());
            s[0x20..0x28].copy_from_slice(&size.to_le_bytes());
            s
        };
        f.extend(sh(0, 0, 0, 0, 0));
        f.extend(sh(1, 1, 0x1000, content_off as u64, content.len() as u64));
        f.extend(sh(15, 3, 0, strtab_off as u64, strtab.len() as u64));
        f[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
        f[0x3A..0x3C].copy_from_slice(&64u16.to_le_bytes());
        f[0x3C..0x3E].copy_from_slice(&3u16.to_le_bytes());
        f[0x3E..0x40].copy_from_slice(&2u16.to_le_bytes());
        f
    }

    #[test]
    fn inline_format() {
        let mut blob = MAGIC.to_vec();
        blob.push(8);
        blob.push(2);
        blob.resize(32, 0);
        let v = b"go1.22.3";
        blob.extend(varint(v.len()));
        blob.extend_from_slice(v);
        let m = framed(MODINFO);
        blob.extend(varint(m.len()));
        blob.extend_from_slice(&m);
        let info = read_buildinfo(&elf_with_section(&blob)).unwrap();
        assert_eq!(info.go_version, "go1.22.3");
        assert_eq!(info.path, "example.com/app");
        assert_eq!(info.main.as_ref().unwrap().version, "(devel)");
        assert_eq!(info.deps.len(), 2);
        assert_eq!(info.deps[1].version, "v0.14.0", "the replacement wins");
        assert_eq!(info.settings["GOARCH"], "arm64");
        let comps = catalog_binary(&elf_with_section(&blob), "app", "sha256:x", None);
        let purls: Vec<&str> = comps.iter().map(|c| c.purl.as_str()).collect();
        assert_eq!(
            purls,
            [
                "pkg:golang/stdlib@1.22.3",
                "pkg:golang/example.com/app",
                "pkg:golang/github.com/google/uuid@v1.6.0",
                "pkg:golang/golang.org/x/text@v0.14.0"
            ]
        );
        assert_eq!(comps[0].properties["ocibuild:goarch"], "arm64");
        assert_eq!(comps[0].properties["ocibuild:goos"], "linux");
    }

    #[test]
    fn pointer_format() {
        // header: magic, ptrsize 8, flags 0, then two pointers to string headers at 0x1000+32
        // and 0x1000+48, whose data follow at +64 and +80.
        let v = b"go1.16.15";
        let m = framed(MODINFO);
        let base = 0x1000u64;
        let mut blob = MAGIC.to_vec();
        blob.push(8);
        blob.push(0);
        blob.extend_from_slice(&(base + 32).to_le_bytes());
        blob.extend_from_slice(&(base + 48).to_le_bytes());
        assert_eq!(blob.len(), 32);
        blob.extend_from_slice(&(base + 64).to_le_bytes());
        blob.extend_from_slice(&(v.len() as u64).to_le_bytes());
        blob.extend_from_slice(&(base + 64 + v.len() as u64).to_le_bytes());
        blob.extend_from_slice(&(m.len() as u64).to_le_bytes());
        blob.extend_from_slice(v);
        blob.extend_from_slice(&m);
        let info = read_buildinfo(&elf_with_section(&blob)).unwrap();
        assert_eq!(info.go_version, "go1.16.15");
        assert_eq!(info.deps[0].path, "github.com/google/uuid");
        assert_eq!(stdlib_version("go1.22.3 X:boringcrypto"), "1.22.3");
    }

    #[test]
    fn not_go() {
        assert!(
            read_buildinfo(b"\x7fELF garbage that is not long enough to be anything").is_none()
        );
        assert!(read_buildinfo(&elf_with_section(b"nothing here")).is_none());
    }
}
