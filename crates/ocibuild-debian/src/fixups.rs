//! Distroless fixups: what maintainer scripts (which are never run) and the distroless rules
//! would have added to an image made of unpacked packages.
//!
//! Everything here is computed from the unpacked trees ([`Tree`]), natively: users and groups
//! (root 0, nonroot 65532, nobody 65534) with their homes, `/tmp` 1777, `/etc/nsswitch.conf`,
//! `/etc/os-release`, the CA bundle `update-ca-certificates` would write, busybox `sh` for
//! `debug` images, the `update-alternatives` links of a JRE (`/usr/bin/java` …), and the
//! merged-`/usr` links (`bin -> usr/bin` …) a release's `base-files` may not ship.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use ocibuild_oci::layer::{EntryKind, LayerEntry};

use crate::alternatives::Alternative;
use crate::error::{DebianError, Result};

/// An unpacked tree: layer path (relative, no leading `/`) → entry. Later inserts win.
pub type Tree = BTreeMap<String, LayerEntry>;

/// The uid/gid of the `nonroot` user.
pub const NONROOT_UID: u32 = 65532;
/// The uid/gid of `nobody`.
pub const NOBODY_UID: u32 = 65534;

/// Where the CA bundle goes.
pub const CA_BUNDLE: &str = "etc/ssl/certs/ca-certificates.crt";
const CA_DIR: &str = "usr/share/ca-certificates/";

/// `/etc/passwd` as distroless has it.
pub const PASSWD: &str = "root:x:0:0:root:/root:/sbin/nologin\n\
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n\
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n";

/// `/etc/group` as distroless has it.
pub const GROUP: &str = "root:x:0:\n\
nobody:x:65534:\n\
tty:x:5:\n\
staff:x:50:\n\
nonroot:x:65532:\n";

/// `/etc/nsswitch.conf`: files only, and DNS for hosts.
pub const NSSWITCH: &str = "passwd:         files\n\
group:          files\n\
shadow:         files\n\
gshadow:        files\n\
\n\
hosts:          files dns\n\
networks:       files\n\
\n\
protocols:      files\n\
services:       files\n\
ethers:         files\n\
rpc:            files\n";

/// The top-level directories merged into `/usr` (`/bin -> usr/bin` …).
pub const USRMERGE_DIRS: [&str; 7] = ["bin", "sbin", "lib", "lib32", "lib64", "libx32", "libo32"];

/// busybox applets linked into `/usr/bin` of `debug` images (when nothing else provides them).
const BUSYBOX_APPLETS: &[&str] = &[
    "sh", "ash", "awk", "basename", "cat", "chmod", "chown", "cp", "cut", "date", "dd", "df",
    "dirname", "du", "echo", "env", "expr", "false", "find", "grep", "gunzip", "gzip", "head",
    "hostname", "id", "kill", "less", "ln", "ls", "mkdir", "mktemp", "more", "mv", "nc",
    "nslookup", "printf", "ps", "pwd", "readlink", "realpath", "rm", "rmdir", "sed", "sleep",
    "sort", "stat", "tail", "tar", "tee", "test", "top", "touch", "tr", "true", "uname", "uniq",
    "vi", "wc", "wget", "which", "whoami", "xargs",
];

/// What the fixups layer should contain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FixupOptions {
    /// Link busybox applets (`sh` …) into `/usr/bin` (the `debug` variant).
    pub busybox: bool,
    /// The `update-alternatives` calls of the packages' `postinst` scripts.
    pub alternatives: Vec<Alternative>,
}

fn entry(path: &str, kind: EntryKind, mode: u32, owner: u32) -> LayerEntry {
    LayerEntry {
        path: path.to_string(),
        kind,
        mode,
        uid: Some(owner),
        gid: Some(owner),
        mtime: None,
    }
}

fn bytes(path: &str, data: impl Into<Vec<u8>>) -> LayerEntry {
    entry(path, EntryKind::Bytes(data.into()), 0o644, 0)
}

fn symlink(path: &str, target: &str) -> LayerEntry {
    entry(path, EntryKind::Symlink(target.to_string()), 0o777, 0)
}

fn dir(path: &str, mode: u32, owner: u32) -> LayerEntry {
    entry(path, EntryKind::Dir, mode, owner)
}

/// The contents of a regular file of a tree (following no links).
pub fn read_entry(e: &LayerEntry) -> Result<Vec<u8>> {
    match &e.kind {
        EntryKind::Bytes(b) => Ok(b.clone()),
        EntryKind::File(p) => fs::read(p).map_err(DebianError::io(format!(
            "{} (staged at {})",
            e.path,
            p.display()
        ))),
        _ => Err(DebianError::Invalid {
            what: e.path.clone(),
            detail: "not a regular file".into(),
        }),
    }
}

/// Users, groups, homes, `/tmp` and `/etc/nsswitch.conf`.
pub fn users_and_dirs() -> Vec<LayerEntry> {
    vec![
        bytes("etc/passwd", PASSWD),
        bytes("etc/group", GROUP),
        bytes("etc/nsswitch.conf", NSSWITCH),
        dir("root", 0o700, 0),
        dir("home", 0o755, 0),
        dir("home/nonroot", 0o700, NONROOT_UID),
        dir("tmp", 0o1777, 0),
        dir("var", 0o755, 0),
        dir("var/tmp", 0o1777, 0),
    ]
}

/// `/etc/os-release`: kept when `base-files` ships it, else a link to `usr/lib/os-release`
/// when that exists, else nothing.
pub fn os_release(tree: &Tree) -> Vec<LayerEntry> {
    if tree.contains_key("etc/os-release") {
        return Vec::new();
    }
    if tree.contains_key("usr/lib/os-release") {
        return vec![symlink("etc/os-release", "../usr/lib/os-release")];
    }
    Vec::new()
}

/// The CA bundle `update-ca-certificates` writes: every `*.crt` below
/// `/usr/share/ca-certificates`, sorted by path (byte order, as the `ca-certificates.conf`
/// that the package's postinst generates with `sort`), each followed by a newline when it does
/// not end in one (`sed -e '$a\'`). `None` when the tree has no certificates.
pub fn ca_bundle(tree: &Tree) -> Result<Option<LayerEntry>> {
    let mut out = Vec::new();
    let mut n = 0usize;
    // BTreeMap iteration is in path byte order already.
    for (path, e) in tree.range(CA_DIR.to_string()..) {
        if !path.starts_with(CA_DIR) {
            break;
        }
        if !path.ends_with(".crt") || !matches!(e.kind, EntryKind::File(_) | EntryKind::Bytes(_)) {
            continue;
        }
        let pem = read_entry(e)?;
        out.extend_from_slice(&pem);
        if !pem.is_empty() && !pem.ends_with(b"\n") {
            out.push(b'\n');
        }
        n += 1;
    }
    if n == 0 {
        return Ok(None);
    }
    Ok(Some(bytes(CA_BUNDLE, out)))
}

/// Where Debian's ca-certificates-java puts the JVM trust store (the JRE's
/// `lib/security/cacerts` is a symlink to it).
pub const JAVA_CACERTS: &str = "etc/ssl/certs/java/cacerts";

/// The Java trust store that ca-certificates-java would generate: a JKS keystore (password
/// `changeit`, as Debian's) holding every certificate of the CA set as a trusted-certificate
/// entry named `debian:<file>.pem`, in path order, with timestamp 0 so the bytes are
/// reproducible. `None` without a JVM or without certificates.
pub fn java_cacerts(tree: &Tree) -> Result<Option<LayerEntry>> {
    if !tree.keys().any(|p| p.starts_with("usr/lib/jvm/")) {
        return Ok(None);
    }
    let mut certs: Vec<(String, Vec<u8>)> = Vec::new();
    for (path, e) in tree.range(CA_DIR.to_string()..) {
        if !path.starts_with(CA_DIR) {
            break;
        }
        if !path.ends_with(".crt") || !matches!(e.kind, EntryKind::File(_) | EntryKind::Bytes(_)) {
            continue;
        }
        let pem = read_entry(e)?;
        let file = path
            .rsplit('/')
            .next()
            .unwrap_or(path)
            .trim_end_matches(".crt");
        for (i, der) in pem_certificates(&pem).into_iter().enumerate() {
            let alias = if i == 0 {
                format!("debian:{file}.pem")
            } else {
                format!("debian:{file}.pem-{i}")
            };
            certs.push((alias.to_ascii_lowercase(), der));
        }
    }
    if certs.is_empty() {
        return Ok(None);
    }
    Ok(Some(bytes(
        JAVA_CACERTS,
        jks_truststore(&certs, "changeit"),
    )))
}

/// The DER bodies of the `CERTIFICATE` blocks of a PEM file.
pub fn pem_certificates(pem: &[u8]) -> Vec<Vec<u8>> {
    use base64::Engine as _;
    let text = String::from_utf8_lossy(pem);
    let mut out = Vec::new();
    let mut body: Option<String> = None;
    for line in text.lines() {
        let l = line.trim();
        if l == "-----BEGIN CERTIFICATE-----" {
            body = Some(String::new());
        } else if l == "-----END CERTIFICATE-----" {
            if let Some(b) = body.take()
                && let Ok(der) = base64::engine::general_purpose::STANDARD.decode(b.as_bytes())
            {
                out.push(der);
            }
        } else if let Some(b) = body.as_mut() {
            b.push_str(l);
        }
    }
    out
}

/// A JKS keystore of trusted certificates (Sun's format: magic FEEDFEED, version 2, entries of
/// tag 2, and a SHA-1 over the password as UTF-16BE, "Mighty Aphrodite" and the contents).
pub fn jks_truststore(certs: &[(String, Vec<u8>)], password: &str) -> Vec<u8> {
    use sha1::{Digest as _, Sha1};
    let mut out = Vec::new();
    out.extend_from_slice(&0xFEED_FEEDu32.to_be_bytes());
    out.extend_from_slice(&2u32.to_be_bytes());
    out.extend_from_slice(&(certs.len() as u32).to_be_bytes());
    let utf = |out: &mut Vec<u8>, s: &str| {
        out.extend_from_slice(&(s.len() as u16).to_be_bytes());
        out.extend_from_slice(s.as_bytes());
    };
    for (alias, der) in certs {
        out.extend_from_slice(&2u32.to_be_bytes());
        utf(&mut out, alias);
        out.extend_from_slice(&0u64.to_be_bytes());
        utf(&mut out, "X.509");
        out.extend_from_slice(&(der.len() as u32).to_be_bytes());
        out.extend_from_slice(der);
    }
    let mut h = Sha1::new();
    for c in password.encode_utf16() {
        h.update(c.to_be_bytes());
    }
    h.update(b"Mighty Aphrodite");
    h.update(&out);
    out.extend_from_slice(&h.finalize());
    out
}

/// busybox applet links for `debug` images: `usr/bin/<applet> -> busybox` for each applet that
/// nothing in the tree provides (in `usr/bin` or `bin`). An error when the tree has no busybox.
pub fn busybox_links(tree: &Tree) -> Result<Vec<LayerEntry>> {
    if !tree.contains_key("usr/bin/busybox") {
        return Err(DebianError::Invalid {
            what: "debug variant".into(),
            detail: "no /usr/bin/busybox in the unpacked packages (is busybox-static in the set?)"
                .into(),
        });
    }
    Ok(BUSYBOX_APPLETS
        .iter()
        .filter(|a| {
            !tree.contains_key(&format!("usr/bin/{a}")) && !tree.contains_key(&format!("bin/{a}"))
        })
        .map(|a| symlink(&format!("usr/bin/{a}"), "busybox"))
        .collect())
}

/// The `update-alternatives` links of a JRE/JDK: for each executable in
/// `usr/lib/jvm/<jvm>/bin/`, `usr/bin/<name> -> ../lib/jvm/<jvm>/bin/<name>` when nothing else
/// owns `usr/bin/<name>`. With several JVMs, the one sorting last (newest) wins.
pub fn java_alternatives(tree: &Tree) -> Vec<LayerEntry> {
    let mut links: BTreeMap<String, String> = BTreeMap::new();
    for (path, e) in tree.range("usr/lib/jvm/".to_string()..) {
        let Some(rest) = path.strip_prefix("usr/lib/jvm/") else {
            break;
        };
        let mut it = rest.split('/');
        let (Some(jvm), Some("bin"), Some(name), None) =
            (it.next(), it.next(), it.next(), it.next())
        else {
            continue;
        };
        if !matches!(e.kind, EntryKind::File(_) | EntryKind::Bytes(_)) || e.mode & 0o111 == 0 {
            continue;
        }
        links.insert(name.to_string(), format!("../lib/jvm/{jvm}/bin/{name}"));
    }
    links
        .into_iter()
        .filter(|(name, _)| !tree.contains_key(&format!("usr/bin/{name}")))
        .map(|(name, target)| symlink(&format!("usr/bin/{name}"), &target))
        .collect()
}

/// A path of a maintainer script (`/bin/x`, `/usr/bin/x`) → the image path in merged `/usr`.
fn merged(path: &str) -> String {
    let rel = path.trim_start_matches('/');
    let first = rel.split('/').next().unwrap_or("");
    if USRMERGE_DIRS.contains(&first) {
        format!("usr/{rel}")
    } else {
        rel.to_string()
    }
}

/// The links `update-alternatives` would make (see [`crate::alternatives`]): for each name, the
/// highest-priority implementation present in `tree` wins; its master and slave links are made
/// where nothing else owns the path. Targets are absolute, as `/etc/alternatives` would resolve.
pub fn alternative_links(tree: &Tree, alts: &[Alternative]) -> Vec<LayerEntry> {
    let mut best: BTreeMap<&str, &Alternative> = BTreeMap::new();
    for a in alts {
        if !tree.contains_key(&merged(&a.path)) {
            continue;
        }
        match best.get(a.name.as_str()) {
            Some(b) if b.priority >= a.priority => {}
            _ => {
                best.insert(&a.name, a);
            }
        }
    }
    let mut out: BTreeMap<String, LayerEntry> = BTreeMap::new();
    for a in best.values() {
        let pairs = std::iter::once((a.link.as_str(), a.path.as_str()))
            .chain(a.slaves.iter().map(|s| (s.link.as_str(), s.path.as_str())));
        for (link, path) in pairs {
            let l = merged(link);
            if tree.contains_key(&l) || !tree.contains_key(&merged(path)) {
                continue;
            }
            out.entry(l.clone()).or_insert_with(|| symlink(&l, path));
        }
    }
    out.into_values().collect()
}

/// The merged-`/usr` links (`bin -> usr/bin` …) that `tree` lacks: `bin`, `sbin` and `lib`
/// always, `lib64` on amd64, and any other merged directory that `used` names.
pub fn usrmerge_links(tree: &Tree, arch: &str, used: &[String]) -> Vec<LayerEntry> {
    let mut want: Vec<&str> = vec!["bin", "sbin", "lib"];
    if arch == "amd64" {
        want.push("lib64");
    }
    for u in used {
        if let Some(d) = USRMERGE_DIRS.iter().find(|d| **d == u.as_str())
            && !want.contains(d)
        {
            want.push(d);
        }
    }
    want.sort_unstable();
    want.into_iter()
        .filter(|d| !tree.contains_key(*d))
        .map(|d| symlink(d, &format!("usr/{d}")))
        .collect()
}

/// Every fixup for an image whose packages unpacked to `tree` (the union of its layers).
pub fn fixups(tree: &Tree, opts: &FixupOptions) -> Result<Vec<LayerEntry>> {
    let mut out = users_and_dirs();
    out.extend(os_release(tree));
    if let Some(ca) = ca_bundle(tree)? {
        out.push(ca);
    }
    if opts.busybox {
        out.extend(busybox_links(tree)?);
    }
    out.extend(java_alternatives(tree));
    let made: BTreeSet<String> = out.iter().map(|e| e.path.clone()).collect();
    out.extend(
        alternative_links(tree, &opts.alternatives)
            .into_iter()
            .filter(|e| !made.contains(&e.path)),
    );
    if let Some(cacerts) = java_cacerts(tree)? {
        out.push(cacerts);
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn jks_layout() {
        let ks = jks_truststore(&[("debian:a.pem".into(), vec![1, 2, 3])], "changeit");
        assert_eq!(&ks[..8], &[0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2]);
        assert_eq!(&ks[8..12], &[0, 0, 0, 1]);
        // tag, alias, timestamp, type, length, DER, then a 20-byte SHA-1
        assert_eq!(ks.len(), 12 + 4 + 2 + 12 + 8 + 2 + 5 + 4 + 3 + 20);
        let pem = b"junk\n-----BEGIN CERTIFICATE-----\nAQID\n-----END CERTIFICATE-----\n";
        assert_eq!(pem_certificates(pem), vec![vec![1, 2, 3]]);
    }

    fn tree(entries: Vec<LayerEntry>) -> Tree {
        entries.into_iter().map(|e| (e.path.clone(), e)).collect()
    }

    fn find<'a>(v: &'a [LayerEntry], p: &str) -> &'a LayerEntry {
        v.iter().find(|e| e.path == p).expect(p)
    }

    #[test]
    fn users_groups_homes_tmp() {
        let v = users_and_dirs();
        let passwd = String::from_utf8(read_entry(find(&v, "etc/passwd")).unwrap()).unwrap();
        assert!(passwd.contains("root:x:0:0:"));
        assert!(passwd.contains("nonroot:x:65532:65532:nonroot:/home/nonroot:"));
        assert!(passwd.contains("nobody:x:65534:65534:"));
        let group = String::from_utf8(read_entry(find(&v, "etc/group")).unwrap()).unwrap();
        assert!(group.contains("nonroot:x:65532:"));
        let home = find(&v, "home/nonroot");
        assert_eq!(
            (home.uid, home.gid, home.mode),
            (Some(65532), Some(65532), 0o700)
        );
        assert_eq!(find(&v, "tmp").mode, 0o1777);
        assert!(
            String::from_utf8(read_entry(find(&v, "etc/nsswitch.conf")).unwrap())
                .unwrap()
                .contains("hosts:          files dns")
        );
    }

    #[test]
    fn ca_bundle_is_sorted_and_newline_terminated() {
        let t = tree(vec![
            bytes("usr/share/ca-certificates/mozilla/B.crt", "B-PEM"),
            bytes("usr/share/ca-certificates/mozilla/A.crt", "A-PEM\n"),
            bytes("usr/share/ca-certificates/extra/Z.crt", "Z-PEM\n"),
            bytes("usr/share/ca-certificates/mozilla/README", "not a cert"),
            bytes("usr/share/doc/ca-certificates/copyright", "x"),
        ]);
        let e = ca_bundle(&t).unwrap().unwrap();
        assert_eq!(e.path, CA_BUNDLE);
        assert_eq!(read_entry(&e).unwrap(), b"Z-PEM\nA-PEM\nB-PEM\n");
        assert!(ca_bundle(&Tree::new()).unwrap().is_none());
    }

    #[test]
    fn busybox_for_debug() {
        let t = tree(vec![
            bytes("usr/bin/busybox", "elf"),
            symlink("usr/bin/env", "x"),
        ]);
        let v = busybox_links(&t).unwrap();
        assert_eq!(
            find(&v, "usr/bin/sh").kind,
            EntryKind::Symlink("busybox".into())
        );
        assert!(
            !v.iter().any(|e| e.path == "usr/bin/env"),
            "existing files win"
        );
        assert!(busybox_links(&Tree::new()).is_err());
    }

    #[test]
    fn java_links() {
        let mut java = bytes("usr/lib/jvm/java-21-openjdk-amd64/bin/java", "elf");
        java.mode = 0o755;
        let mut kt = bytes("usr/lib/jvm/java-21-openjdk-amd64/bin/keytool", "elf");
        kt.mode = 0o755;
        let t = tree(vec![
            java,
            kt,
            bytes("usr/lib/jvm/java-21-openjdk-amd64/lib/x.so", "x"),
            bytes("usr/bin/keytool", "other"),
        ]);
        let v = java_alternatives(&t);
        assert_eq!(v.len(), 1);
        assert_eq!(
            find(&v, "usr/bin/java").kind,
            EntryKind::Symlink("../lib/jvm/java-21-openjdk-amd64/bin/java".into())
        );
    }

    #[test]
    fn os_release_and_usrmerge() {
        let t = tree(vec![bytes("usr/lib/os-release", "ID=debian\n")]);
        assert_eq!(
            os_release(&t)[0].kind,
            EntryKind::Symlink("../usr/lib/os-release".into())
        );
        let t2 = tree(vec![symlink("etc/os-release", "../usr/lib/os-release")]);
        assert!(os_release(&t2).is_empty());
        let links = usrmerge_links(&tree(vec![symlink("bin", "usr/bin")]), "amd64", &[]);
        let names: Vec<&str> = links.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(names, ["lib", "lib64", "sbin"]);
        let arm = usrmerge_links(&Tree::new(), "arm64", &["libx32".into()]);
        let names: Vec<&str> = arm.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(names, ["bin", "lib", "libx32", "sbin"]);
    }

    #[test]
    fn all_fixups() {
        let t = tree(vec![
            bytes("usr/share/ca-certificates/mozilla/A.crt", "A\n"),
            bytes("usr/bin/busybox", "elf"),
        ]);
        let v = fixups(
            &t,
            &FixupOptions {
                busybox: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(v.iter().any(|e| e.path == CA_BUNDLE));
        assert!(v.iter().any(|e| e.path == "usr/bin/sh"));
        let v = fixups(&Tree::new(), &FixupOptions::default()).unwrap();
        assert!(!v.iter().any(|e| e.path == CA_BUNDLE));
    }
}
