//! One streaming pass over an image's layers (each layer read once, in parallel, never unpacked
//! to disk) into an in-memory index of the final filesystem: paths, kinds, modes, owners,
//! sizes, symlink targets and the layer each entry comes from, whiteouts applied. File contents
//! are kept only where a check needs them: ELF headers (parsed at once, the bytes dropped),
//! shebang lines, a few small configuration files and lockfiles, and a pattern scan for keys.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::Hasher;
use std::io::Read;

use ocibuild_elf::{ElfInfo, Node, Tree};
use ocibuild_oci::image::{Image, ImageSource};
use ocibuild_oci::media::layer_compression;

use crate::PolicyError;

/// The kind of an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Other,
}

/// One entry of the final filesystem.
#[derive(Clone, Debug)]
pub struct Entry {
    pub kind: Kind,
    /// Permission bits with setuid/setgid/sticky (`0o7777`).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Bytes of a regular file.
    pub size: u64,
    /// The layer (0 = bottom) the entry comes from.
    pub layer: usize,
    /// A symlink's target.
    pub target: Option<String>,
    /// The content's hash (SipHash, this run only) of a regular file.
    pub hash: u64,
    pub elf: Option<Box<ElfInfo>>,
    /// The `#!` line of a script, without `#!`.
    pub shebang: Option<String>,
}

/// A private key or cloud credential found by the pattern scan.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Secret {
    pub path: String,
    pub layer: usize,
    pub what: String,
}

/// A file a later layer overwrote or deleted: its bytes stay in the lower layer.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Waste {
    pub path: String,
    pub layer: usize,
    pub by_layer: usize,
    pub bytes: u64,
    pub deleted: bool,
}

/// A lower layer's symlink that a later layer replaced with a directory.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SymlinkDir {
    pub path: String,
    pub target: String,
    pub layer: usize,
    pub by_layer: usize,
}

/// A layer: its descriptor, sizes and history.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LayerInfo {
    pub index: usize,
    pub digest: String,
    pub compressed: u64,
    pub uncompressed: u64,
    pub files: u64,
    pub created_by: Option<String>,
    /// Part of the application (not its base): see [`app_layers`].
    pub app: bool,
}

/// What [`scan`] keeps beyond the metadata.
#[derive(Clone, Debug, Default)]
pub struct ScanOptions {
    /// Absolute paths whose contents are kept (container-structure-test content tests).
    pub keep: BTreeSet<String>,
    /// Layers below this index are the base (overrides the history heuristic).
    pub base_layers: Option<usize>,
}

/// The index of an image's final filesystem and what the pass found on the way.
#[derive(Debug, Default)]
pub struct Scanned {
    pub fs: BTreeMap<String, Entry>,
    /// Kept small files (by final path).
    pub contents: HashMap<String, Vec<u8>>,
    pub layers: Vec<LayerInfo>,
    pub secrets: Vec<Secret>,
    pub wasted: Vec<Waste>,
    pub symlink_dirs: Vec<SymlinkDir>,
    /// Every regular file of every layer: (hash, size, layer, path), for duplicates.
    pub all_files: Vec<(u64, u64, usize, String)>,
    pub config: serde_json::Value,
}

enum Op {
    Put(String, Entry),
    /// A hard link: the path and the path it links to.
    Link(String, String),
    Whiteout(String),
    Opaque(String),
}

struct LayerScan {
    ops: Vec<Op>,
    uncompressed: u64,
    contents: Vec<(String, Vec<u8>)>,
    secrets: Vec<Secret>,
}

const KEEP_MAX: u64 = 32 << 20;
const SCAN_MAX: u64 = 1 << 20;
const ELF_MAX: u64 = 512 << 20;

/// Whether a file's contents are kept for the checks.
fn keep_path(path: &str, extra: &BTreeSet<String>) -> bool {
    let name = path.rsplit('/').next().unwrap_or("");
    extra.contains(path)
        || matches!(path, "/etc/passwd" | "/etc/group" | "/etc/ld.so.conf")
        || path.starts_with("/etc/ld.so.conf.d/")
        || is_package_file_list(path)
        || matches!(
            name,
            "package-lock.json"
                | ".package-lock.json"
                | "poetry.lock"
                | "uv.lock"
                | "Pipfile.lock"
                | "pom.xml"
        )
}

/// dpkg's list of a package's files: `/var/lib/dpkg/status.d/PKG.md5sums` (distroless images)
/// or `/var/lib/dpkg/info/PKG.list` (a full Debian system). Kept for `size`'s bytes per package.
pub fn is_package_file_list(path: &str) -> bool {
    (path.starts_with("/var/lib/dpkg/status.d/") && path.ends_with(".md5sums"))
        || (path.starts_with("/var/lib/dpkg/info/") && path.ends_with(".list"))
}

/// `./usr/bin/` → `/usr/bin`.
fn norm(p: &str) -> String {
    ocibuild_elf::normalize(p)
}

/// Which layers belong to the application rather than its base: `base_layers` when given,
/// else from the config's history: layers made by `ocibuild assemble`, `COPY` or `ADD`; when
/// the history does not line up with the layers, the top layer.
pub fn app_layers(config: &serde_json::Value, n: usize, base_layers: Option<usize>) -> Vec<bool> {
    if let Some(b) = base_layers {
        return (0..n).map(|i| i >= b).collect();
    }
    let hist: Vec<String> = config
        .get("history")
        .and_then(|h| h.as_array())
        .map(|a| {
            a.iter()
                .filter(|h| h.get("empty_layer").and_then(|e| e.as_bool()) != Some(true))
                .map(|h| {
                    h.get("created_by")
                        .and_then(|c| c.as_str())
                        .unwrap_or("")
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default();
    if hist.len() != n {
        return (0..n).map(|i| i + 1 == n).collect();
    }
    hist.iter()
        .map(|c| {
            let c = c.trim_start_matches("/bin/sh -c #(nop) ").trim_start();
            c.starts_with("ocibuild assemble")
                || c.starts_with("COPY")
                || c.starts_with("ADD")
                || c.contains("#(nop) COPY")
                || c.contains("#(nop) ADD")
        })
        .collect()
}

fn history_of(config: &serde_json::Value, n: usize) -> Vec<Option<String>> {
    let hist: Vec<Option<String>> = config
        .get("history")
        .and_then(|h| h.as_array())
        .map(|a| {
            a.iter()
                .filter(|h| h.get("empty_layer").and_then(|e| e.as_bool()) != Some(true))
                .map(|h| {
                    h.get("created_by")
                        .and_then(|c| c.as_str())
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    if hist.len() == n { hist } else { vec![None; n] }
}

/// Stream every layer of `image` once and build the index.
pub fn scan(
    src: &dyn ImageSource,
    image: &Image,
    opts: &ScanOptions,
) -> Result<Scanned, PolicyError> {
    let layers = &image.manifest.layers;
    let n = layers.len();
    let threads = std::thread::available_parallelism()
        .map(|p| p.get())
        .unwrap_or(2)
        .clamp(1, 4)
        .min(n.max(1));
    let mut results: Vec<Option<Result<LayerScan, PolicyError>>> = (0..n).map(|_| None).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(l) = layers.get(i) else { break };
                        out.push((i, scan_layer(src, l, i, &opts.keep)));
                    }
                    out
                })
            })
            .collect();
        for h in handles {
            if let Ok(v) = h.join() {
                for (i, r) in v {
                    if let Some(slot) = results.get_mut(i) {
                        *slot = Some(r);
                    }
                }
            }
        }
    });
    let app = app_layers(&image.config, n, opts.base_layers);
    let hist = history_of(&image.config, n);
    let mut out = Scanned {
        config: image.config.clone(),
        ..Scanned::default()
    };
    for (i, r) in results.into_iter().enumerate() {
        let l = r.ok_or_else(|| PolicyError::Layer {
            layer: i,
            detail: "the layer's reader thread stopped".into(),
        })??;
        let desc = &layers[i];
        let mut files = 0;
        for op in l.ops {
            if matches!(&op, Op::Put(_, e) if e.kind == Kind::File) || matches!(op, Op::Link(..)) {
                files += 1;
            }
            apply(&mut out, op, i);
        }
        for (p, c) in l.contents {
            out.contents.insert(p, c);
        }
        out.secrets.extend(l.secrets);
        out.layers.push(LayerInfo {
            index: i,
            digest: desc.digest.to_string(),
            compressed: desc.size,
            uncompressed: l.uncompressed,
            files,
            created_by: hist.get(i).cloned().flatten(),
            app: app.get(i).copied().unwrap_or(false),
        });
    }
    // contents of paths no longer in the final filesystem (or no longer files) are dropped
    let fs = &out.fs;
    out.contents
        .retain(|p, _| fs.get(p).is_some_and(|e| e.kind == Kind::File));
    Ok(out)
}

fn ensure_parents(out: &mut Scanned, path: &str, layer: usize) {
    let mut p = path;
    let mut missing = Vec::new();
    while let Some(i) = p.rfind('/') {
        if i == 0 {
            break;
        }
        p = &p[..i];
        if out.fs.contains_key(p) {
            break;
        }
        missing.push(p.to_string());
    }
    for m in missing {
        out.fs.insert(
            m,
            Entry {
                kind: Kind::Dir,
                mode: 0o755,
                uid: 0,
                gid: 0,
                size: 0,
                layer,
                target: None,
                hash: 0,
                elf: None,
                shebang: None,
            },
        );
    }
}

/// Remove `path`'s descendants (and `path` itself with `itself`) from lower layers than
/// `below` (all when `None`), recording the files as wasted by `layer`.
fn remove_under(
    out: &mut Scanned,
    path: &str,
    itself: bool,
    below: Option<usize>,
    layer: usize,
    deleted: bool,
) {
    let prefix = if path == "/" {
        "/".to_string()
    } else {
        format!("{path}/")
    };
    let mut gone: Vec<String> = out
        .fs
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .filter(|(_, e)| below.is_none_or(|b| e.layer < b))
        .map(|(k, _)| k.clone())
        .collect();
    if itself && path != "/" {
        gone.push(path.to_string());
    }
    for k in gone {
        if let Some(e) = out.fs.remove(&k)
            && e.kind == Kind::File
            && e.size > 0
        {
            out.wasted.push(Waste {
                path: k,
                layer: e.layer,
                by_layer: layer,
                bytes: e.size,
                deleted,
            });
        }
    }
}

fn apply(out: &mut Scanned, op: Op, layer: usize) {
    match op {
        Op::Whiteout(p) => remove_under(out, &p, true, None, layer, true),
        Op::Opaque(d) => remove_under(out, &d, false, Some(layer), layer, true),
        Op::Link(p, to) => {
            if let Some(e) = out.fs.get(&to).cloned() {
                apply(out, Op::Put(p, Entry { layer, ..e }), layer);
            }
        }
        Op::Put(p, e) => {
            if p == "/" {
                return;
            }
            ensure_parents(out, &p, layer);
            if let Some(old) = out.fs.get(&p) {
                if old.kind == Kind::Symlink && e.kind == Kind::Dir && old.layer < layer {
                    out.symlink_dirs.push(SymlinkDir {
                        path: p.clone(),
                        target: old.target.clone().unwrap_or_default(),
                        layer: old.layer,
                        by_layer: layer,
                    });
                }
                if old.kind == Kind::File && old.size > 0 {
                    out.wasted.push(Waste {
                        path: p.clone(),
                        layer: old.layer,
                        by_layer: layer,
                        bytes: old.size,
                        deleted: false,
                    });
                }
                if old.kind == Kind::Dir && e.kind != Kind::Dir {
                    remove_under(out, &p, false, None, layer, true);
                }
            }
            if e.kind == Kind::File {
                out.all_files.push((e.hash, e.size, layer, p.clone()));
            }
            out.fs.insert(p, e);
        }
    }
}

/// The key and credential patterns: (needle, what).
const PEM_KEYS: &[(&[u8], &str)] = &[
    (
        b"-----BEGIN RSA PRIVATE KEY-----",
        "an RSA private key (PEM)",
    ),
    (b"-----BEGIN EC PRIVATE KEY-----", "an EC private key (PEM)"),
    (
        b"-----BEGIN DSA PRIVATE KEY-----",
        "a DSA private key (PEM)",
    ),
    (
        b"-----BEGIN OPENSSH PRIVATE KEY-----",
        "an OpenSSH private key",
    ),
    (b"-----BEGIN PRIVATE KEY-----", "a PKCS#8 private key (PEM)"),
    (
        b"-----BEGIN ENCRYPTED PRIVATE KEY-----",
        "an encrypted PKCS#8 private key (PEM)",
    ),
    (
        b"-----BEGIN PGP PRIVATE KEY BLOCK-----",
        "a PGP private key",
    ),
];

/// What the pattern scan finds in `b`.
pub fn find_secrets(b: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    if memchr::memmem::find(b, b"-----BEGIN ").is_some() {
        for (needle, what) in PEM_KEYS {
            if memchr::memmem::find(b, needle).is_some() {
                out.push((*what).to_string());
            }
        }
    }
    for prefix in [b"AKIA", b"ASIA"] {
        for at in memchr::memmem::find_iter(b, prefix) {
            let before_ok = at == 0 || !b[at - 1].is_ascii_alphanumeric();
            let id = b.get(at + 4..at + 20);
            let after_ok = b.get(at + 20).is_none_or(|c| !c.is_ascii_alphanumeric());
            if before_ok
                && after_ok
                && id.is_some_and(|id| {
                    id.iter()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
                })
            {
                out.push("an AWS access key id".to_string());
                break;
            }
        }
    }
    if memchr::memmem::find(b, b"aws_secret_access_key").is_some() {
        out.push("an AWS secret access key setting".to_string());
    }
    out.dedup();
    out
}

fn scan_layer(
    src: &dyn ImageSource,
    desc: &ocibuild_oci::Descriptor,
    layer: usize,
    keep: &BTreeSet<String>,
) -> Result<LayerScan, PolicyError> {
    let err = |detail: String| PolicyError::Layer { layer, detail };
    let comp = layer_compression(&desc.media_type).ok_or_else(|| {
        err(format!(
            "media type `{}` of {} is not a layer ocibuild can read",
            desc.media_type, desc.digest
        ))
    })?;
    // the layer's size and digest are checked as it streams by: a layer that does not match
    // its descriptor fails the scan at its end (the drain below reads to it)
    let raw = ocibuild_oci::image::VerifyingReader::new(
        src.open_blob(desc)?,
        desc,
        format!("layer {layer}"),
    );
    let raw = std::io::BufReader::with_capacity(256 << 10, raw);
    let dec = ocibuild_oci::extract::decompress(raw, comp)?;
    let mut counted = Counting { inner: dec, n: 0 };
    let mut scan = LayerScan {
        ops: Vec::new(),
        uncompressed: 0,
        contents: Vec::new(),
        secrets: Vec::new(),
    };
    {
        let mut ar = ocibuild_oci::limited::Archive::from_env(
            &mut counted,
            format!("layer {}", desc.digest),
        )
        .map_err(|e| err(e.to_string()))?;
        let entries = ar
            .entries()
            .map_err(|e| err(format!("reading the tar stream of {}: {e}", desc.digest)))?;
        let mut buf = vec![0u8; 256 << 10];
        let mut whole: Vec<u8> = Vec::new();
        for entry in entries {
            let mut entry = entry
                .map_err(|e| err(format!("reading the tar stream of {}: {e}", desc.digest)))?;
            let path = norm(&String::from_utf8_lossy(&entry.path_bytes()));
            let h = entry.header();
            let et = h.entry_type();
            let mode = h.mode().unwrap_or(0o644) & 0o7777;
            let (uid, gid) = (h.uid().unwrap_or(0), h.gid().unwrap_or(0));
            let name = path.rsplit('/').next().unwrap_or("").to_string();
            if name == ".wh..wh..opq" {
                let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                scan.ops.push(Op::Opaque(norm(dir)));
                continue;
            }
            if let Some(hidden) = name.strip_prefix(".wh.") {
                let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                scan.ops
                    .push(Op::Whiteout(norm(&format!("{dir}/{hidden}"))));
                continue;
            }
            let mut e = Entry {
                kind: Kind::Other,
                mode,
                uid,
                gid,
                size: 0,
                layer,
                target: None,
                hash: 0,
                elf: None,
                shebang: None,
            };
            if et.is_dir() {
                e.kind = Kind::Dir;
            } else if et.is_symlink() {
                e.kind = Kind::Symlink;
                e.target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned());
            } else if et.is_hard_link() {
                if let Some(t) = entry.link_name_bytes() {
                    scan.ops
                        .push(Op::Link(path, norm(&String::from_utf8_lossy(&t))));
                }
                continue;
            } else if et.is_file() || et == tar::EntryType::Continuous {
                e.kind = Kind::File;
                e.size = entry.size();
                let keep_it = keep_path(&path, keep) && e.size <= KEEP_MAX;
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                whole.clear();
                let mut first = true;
                let mut collect = keep_it || e.size <= SCAN_MAX;
                loop {
                    let k = entry
                        .read(&mut buf)
                        .map_err(|er| err(format!("reading {path} in {}: {er}", desc.digest)))?;
                    if k == 0 {
                        break;
                    }
                    let chunk = &buf[..k];
                    hasher.write(chunk);
                    if first {
                        first = false;
                        if ocibuild_elf::is_elf(chunk) && e.size <= ELF_MAX {
                            collect = true;
                        } else if chunk.starts_with(b"#!") {
                            let line = chunk[2..].split(|c| *c == b'\n').next().unwrap_or(&[]);
                            let line = &line[..line.len().min(512)];
                            e.shebang = Some(String::from_utf8_lossy(line).trim().to_string());
                        }
                    }
                    if collect {
                        whole.extend_from_slice(chunk);
                    }
                }
                e.hash = hasher.finish();
                if ocibuild_elf::is_elf(&whole) {
                    e.elf = ocibuild_elf::parse(&whole).map(Box::new);
                } else if collect && e.size <= SCAN_MAX {
                    for what in find_secrets(&whole) {
                        scan.secrets.push(Secret {
                            path: path.clone(),
                            layer,
                            what,
                        });
                    }
                }
                if keep_it {
                    scan.contents.push((path.clone(), whole.clone()));
                }
            }
            scan.ops.push(Op::Put(path, e));
        }
        // read what the tar reader left (the end-of-archive padding) to count every byte and
        // reach the end of the blob, where its digest is checked
        std::io::copy(&mut ar.into_inner(), &mut std::io::sink())
            .map_err(|e| err(format!("reading the end of {}: {e}", desc.digest)))?;
    }
    scan.uncompressed = counted.n;
    Ok(scan)
}

struct Counting<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n += k as u64;
        Ok(k)
    }
}

impl Tree for Scanned {
    fn node(&self, path: &str) -> Option<Node> {
        if path == "/" {
            return Some(Node::Dir);
        }
        let e = self.fs.get(path)?;
        Some(match e.kind {
            Kind::File => Node::File,
            Kind::Dir => Node::Dir,
            Kind::Symlink => Node::Symlink(e.target.clone().unwrap_or_default()),
            Kind::Other => Node::Other,
        })
    }

    fn children(&self, dir: &str) -> Vec<String> {
        let prefix = if dir == "/" {
            "/".to_string()
        } else {
            format!("{dir}/")
        };
        self.fs
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter_map(|(k, _)| {
                let rest = &k[prefix.len()..];
                (!rest.contains('/')).then(|| rest.to_string())
            })
            .collect()
    }

    fn read_small(&self, path: &str) -> Option<Vec<u8>> {
        self.contents.get(path).cloned()
    }

    fn elf(&self, path: &str) -> Option<ElfInfo> {
        self.fs.get(path)?.elf.as_deref().cloned()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn finds_planted_keys() {
        let rsa = b"x\n-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n";
        assert_eq!(find_secrets(rsa), vec!["an RSA private key (PEM)"]);
        let ec = b"-----BEGIN EC PRIVATE KEY-----\n";
        assert_eq!(find_secrets(ec), vec!["an EC private key (PEM)"]);
        assert_eq!(
            find_secrets(b"key = \"AKIAIOSFODNN7EXAMPLE\"\n"),
            vec!["an AWS access key id"]
        );
        assert!(find_secrets(b"AKIAIOSFODNN7EXAMPLEX").is_empty());
        assert!(find_secrets(b"-----BEGIN CERTIFICATE-----\n").is_empty());
    }

    /// An OCI layout written by hand: two uncompressed layers with whiteouts, an opaque
    /// directory, an overwrite, a duplicate, a hard link and a symlink replaced by a directory.
    #[test]
    fn streams_layers_into_the_final_filesystem() {
        use ocibuild_oci::Digest;
        let t = tempfile::tempdir().unwrap();
        let blobs = t.path().join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        let put = |b: &[u8]| -> (String, usize) {
            let d = Digest::of_bytes(b);
            std::fs::write(blobs.join(d.hex()), b).unwrap();
            (d.to_string(), b.len())
        };
        let layer = |f: &dyn Fn(&mut tar::Builder<Vec<u8>>)| -> Vec<u8> {
            let mut b = tar::Builder::new(Vec::new());
            f(&mut b);
            b.into_inner().unwrap()
        };
        fn file(b: &mut tar::Builder<Vec<u8>>, p: &str, body: &[u8], mode: u32) {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(mode);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, p, body).unwrap();
        }
        fn special(b: &mut tar::Builder<Vec<u8>>, p: &str, t: tar::EntryType, link: &str) {
            let mut h = tar::Header::new_gnu();
            h.set_size(0);
            h.set_mode(0o755);
            h.set_entry_type(t);
            if !link.is_empty() {
                h.set_link_name(link).unwrap();
            }
            b.append_data(&mut h, p, &[][..]).unwrap();
        }
        let l0 = layer(&|b| {
            special(b, "usr/bin/", tar::EntryType::Directory, "");
            special(b, "bin", tar::EntryType::Symlink, "usr/bin");
            file(b, "app/big", &[b'a'; 5000], 0o644);
            file(b, "app/old", &[b'o'; 3000], 0o644);
            file(b, "app/dup", &[b'd'; 2000], 0o644);
            file(b, "app/opq/a", &[b'x'; 50], 0o644);
            file(b, "app/key.pem", b"-----BEGIN EC PRIVATE KEY-----\n", 0o600);
        });
        let l1 = layer(&|b| {
            special(b, "bin/", tar::EntryType::Directory, "");
            file(b, "app/.wh.old", b"", 0o644);
            file(b, "app/big", &[b'b'; 10], 0o644);
            file(b, "app/dup2", &[b'd'; 2000], 0o644);
            file(b, "app/opq/.wh..wh..opq", b"", 0o644);
            file(b, "app/opq/b", b"b", 0o644);
            special(b, "app/hl", tar::EntryType::Link, "app/dup2");
            file(b, "app/elf", b"\x7fELF\x02\x01", 0o755);
        });
        let (d0, n0) = put(&l0);
        let (d1, n1) = put(&l1);
        let config = serde_json::json!({"architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [d0, d1]}, "config": {},
            "history": [{"created_by": "base"}, {"created_by": "COPY . /app"}]});
        let (dc, nc) = put(config.to_string().as_bytes());
        let tar = "application/vnd.oci.image.layer.v1.tar";
        let manifest = serde_json::json!({"schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": dc, "size": nc},
            "layers": [{"mediaType": tar, "digest": d0, "size": n0}, {"mediaType": tar, "digest": d1, "size": n1}]});
        let (dm, nm) = put(manifest.to_string().as_bytes());
        std::fs::write(
            t.path().join("index.json"),
            serde_json::json!({"schemaVersion": 2, "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": dm, "size": nm,
                "annotations": {"org.opencontainers.image.ref.name": "t"}}]})
            .to_string(),
        )
        .unwrap();
        std::fs::write(
            t.path().join("oci-layout"),
            r#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        let loc =
            ocibuild_oci::reference::Location::parse(&format!("oci:{}:t", t.path().display()))
                .unwrap();
        let src = ocibuild_oci::layout::open_location(&loc).unwrap();
        let img = ocibuild_oci::image::load_image(src.as_ref(), None).unwrap();
        let s = scan(src.as_ref(), &img, &ScanOptions::default()).unwrap();

        assert_eq!(
            s.layers.iter().map(|l| l.app).collect::<Vec<_>>(),
            [false, true]
        );
        assert_eq!(s.layers[0].uncompressed, l0.len() as u64);
        assert!(!s.fs.contains_key("/app/old"), "whited out");
        assert!(!s.fs.contains_key("/app/opq/a"), "opaque directory");
        assert!(s.fs.contains_key("/app/opq/b"));
        assert_eq!(s.fs["/app/big"].size, 10);
        assert_eq!(s.fs["/app/hl"].size, 2000, "a hard link is its target");
        assert_eq!(s.fs["/bin"].kind, Kind::Dir);
        assert_eq!(s.symlink_dirs.len(), 1);
        assert_eq!(s.symlink_dirs[0].target, "usr/bin");
        let mut wasted: Vec<(&str, u64, bool)> = s
            .wasted
            .iter()
            .map(|w| (w.path.as_str(), w.bytes, w.deleted))
            .collect();
        wasted.sort();
        assert_eq!(
            wasted,
            [
                ("/app/big", 5000, false),
                ("/app/old", 3000, true),
                ("/app/opq/a", 50, true)
            ]
        );
        assert_eq!(s.secrets.len(), 1);
        assert_eq!(s.secrets[0].path, "/app/key.pem");
        assert!(
            s.fs["/app/elf"].elf.is_none(),
            "a truncated ELF header is not parsed"
        );
        let r = crate::size::report(&s, "t", None, None, 10);
        assert_eq!(r.wasted_bytes, 8050);
        assert_eq!(r.duplicates.len(), 1, "{:?}", r.duplicates);
        assert_eq!(
            r.duplicates[0].extra_bytes,
            2000 * 2,
            "dup, dup2 and the link"
        );
        assert_eq!(r.biggest_files[0].path, "/app/dup");
    }

    #[test]
    fn app_layers_from_history() {
        let c = serde_json::json!({"history": [
            {"created_by": "ocibuild base: packages"},
            {"created_by": "ENV A=b", "empty_layer": true},
            {"created_by": "ocibuild assemble: layer /app"}
        ]});
        assert_eq!(app_layers(&c, 2, None), vec![false, true]);
        assert_eq!(app_layers(&c, 3, None), vec![false, false, true]);
        assert_eq!(app_layers(&c, 3, Some(1)), vec![false, true, true]);
    }
}
