//! `.deb` reading and unpacking against real Debian packages (downloaded with `apt-get
//! download`), packages built here with `dpkg-deb` (zstd, gzip, none), and hostile archives.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use ocibuild_debian::control::parse;
use ocibuild_debian::deb::{Trim, dpkg_record, read_control, unpack_into};
use ocibuild_oci::layer::{LayerBuilder, LayerOptions};
use ocibuild_oci::media::Compression;

const PACKAGES: &[&str] = &[
    "base-files",
    "tzdata",
    "libc6",
    "busybox-static",
    "ca-certificates",
];

/// Real packages from the machine's mirror, downloaded once per test process.
fn real_debs() -> &'static BTreeMap<String, PathBuf> {
    static DEBS: OnceLock<BTreeMap<String, PathBuf>> = OnceLock::new();
    DEBS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let download = || {
            Command::new("apt-get")
                .arg("download")
                .args(PACKAGES)
                .current_dir(&dir)
                .output()
                .expect("run apt-get")
        };
        let mut out = download();
        if !out.status.success() {
            let up = Command::new("apt-get")
                .arg("update")
                .output()
                .expect("apt-get update");
            assert!(
                up.status.success(),
                "apt-get update: {}",
                String::from_utf8_lossy(&up.stderr)
            );
            out = download();
        }
        assert!(
            out.status.success(),
            "apt-get download: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut map = BTreeMap::new();
        for e in fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            if let Some((pkg, _)) = name.split_once('_')
                && name.ends_with(".deb")
            {
                map.insert(pkg.to_string(), p);
            }
        }
        for p in PACKAGES {
            assert!(map.contains_key(*p), "{p} was not downloaded");
        }
        map
    })
}

fn deb(pkg: &str) -> &'static Path {
    &real_debs()[pkg]
}

/// Entries of a gzip layer: path → (type byte, link target, size, mode, contents if small).
struct Tar {
    entries: BTreeMap<String, (u8, String, u64, u32)>,
    contents: BTreeMap<String, Vec<u8>>,
}

fn read_layer(blob: &[u8]) -> Tar {
    let mut dec = flate2::read::GzDecoder::new(blob);
    let mut raw = Vec::new();
    dec.read_to_end(&mut raw).unwrap();
    let mut archive = tar::Archive::new(&raw[..]);
    let mut entries = BTreeMap::new();
    let mut contents = BTreeMap::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let path = String::from_utf8(e.path_bytes().into_owned()).unwrap();
        let h = e.header();
        let ty = h.entry_type().as_byte();
        let link = e
            .link_name_bytes()
            .map(|l| String::from_utf8(l.into_owned()).unwrap())
            .unwrap_or_default();
        let size = h.size().unwrap();
        let mode = h.mode().unwrap();
        if size < 1 << 20 {
            let mut buf = Vec::new();
            e.read_to_end(&mut buf).unwrap();
            contents.insert(path.trim_end_matches('/').to_string(), buf);
        }
        entries.insert(
            path.trim_end_matches('/').to_string(),
            (ty, link, size, mode),
        );
    }
    Tar { entries, contents }
}

fn build_layer(debs: &[&Path], staging: &Path, trim: &Trim) -> (String, Vec<u8>) {
    let mut b = LayerBuilder::new(LayerOptions {
        compression: Compression::Gzip,
        ..LayerOptions::default()
    });
    for d in debs {
        let stats = unpack_into(d, &mut b, staging, trim).unwrap();
        assert!(stats.files > 0, "{}: no files", d.display());
        let contents = read_control(d).unwrap();
        for e in dpkg_record(&contents) {
            b.add_entry(e).unwrap();
        }
    }
    let (blob, info) = b.write(Vec::new()).unwrap();
    (info.digest.to_string(), blob)
}

#[test]
fn reads_control_of_real_packages() {
    for pkg in PACKAGES {
        let c = read_control(deb(pkg)).unwrap();
        assert_eq!(c.control.get("Package"), Some(*pkg));
        assert!(c.control.get("Version").is_some());
        assert!(c.control.get("Architecture").is_some());
        assert_eq!(c.data_compression, "xz", "{pkg}");
        assert!(c.md5sums.is_some(), "{pkg} has md5sums");
    }
    let bf = read_control(deb("base-files")).unwrap();
    assert!(bf.conffiles.unwrap().contains("/etc/"));
}

#[test]
fn unpacks_libc6_and_base_files_into_a_trimmed_layer() {
    let staging = tempfile::tempdir().unwrap();
    let (digest, blob) = build_layer(
        &[deb("libc6"), deb("base-files")],
        staging.path(),
        &Trim::default(),
    );
    let t = read_layer(&blob);

    // libc.so.6 under the multiarch directory, as a regular file with its mode.
    let libc: Vec<_> = t
        .entries
        .iter()
        // bookworm ships it under /lib (merged /usr is made by usrmerge), trixie under /usr/lib.
        .filter(|(p, _)| {
            (p.starts_with("usr/lib/") || p.starts_with("lib/")) && p.ends_with("/libc.so.6")
        })
        .collect();
    assert_eq!(libc.len(), 1, "one libc.so.6: {libc:?}");
    let (ty, _, size, mode) = libc[0].1;
    assert_eq!(*ty, b'0');
    assert!(*size > 1_000_000);
    assert_eq!(*mode, 0o755);

    // etc/os-release is base-files' symlink to ../usr/lib/os-release.
    let (ty, link, _, _) = &t.entries["etc/os-release"];
    assert_eq!(*ty, b'2');
    assert_eq!(link, "../usr/lib/os-release");
    let os_release = String::from_utf8(t.contents["usr/lib/os-release"].clone()).unwrap();
    assert!(os_release.contains("Debian"), "{os_release}");

    // Docs trimmed to copyright files; no man pages.
    assert!(t.entries.contains_key("usr/share/doc/libc6/copyright"));
    assert!(t.entries.contains_key("usr/share/doc/base-files/copyright"));
    for p in t.entries.keys() {
        if let Some(rest) = p.strip_prefix("usr/share/doc/") {
            assert!(
                !rest.contains('/') || rest.ends_with("/copyright"),
                "doc file kept: {p}"
            );
        }
        assert!(!p.starts_with("usr/share/man"), "man page kept: {p}");
        assert!(!p.starts_with("usr/share/info/"), "info kept: {p}");
        assert!(!p.starts_with("usr/share/lintian/"), "lintian kept: {p}");
        assert!(
            !p.starts_with("./") && !p.starts_with('/'),
            "unnormalised path {p}"
        );
    }
    // Modes and special dirs from the packages: /tmp is 1777 in base-files.
    assert_eq!(t.entries["tmp"].3, 0o1777);

    // The dpkg records parse back.
    let rec = String::from_utf8(t.contents["var/lib/dpkg/status.d/libc6"].clone()).unwrap();
    let para = &parse(&rec)[0];
    assert_eq!(para.get("Package"), Some("libc6"));
    assert!(para.get("Version").unwrap().starts_with("2."));
    assert!(para.get("Architecture").is_some());
    let md5 = String::from_utf8(t.contents["var/lib/dpkg/status.d/libc6.md5sums"].clone()).unwrap();
    assert!(md5.contains("/libc.so.6"));
    assert!(t.entries.contains_key("var/lib/dpkg/status.d/base-files"));

    // Deterministic: a second run (fresh staging dir) gives the same digest.
    let staging2 = tempfile::tempdir().unwrap();
    let (digest2, _) = build_layer(
        &[deb("libc6"), deb("base-files")],
        staging2.path(),
        &Trim::default(),
    );
    assert_eq!(digest, digest2);
    // And reusing the same staging dir too.
    let (digest3, _) = build_layer(
        &[deb("libc6"), deb("base-files")],
        staging.path(),
        &Trim::default(),
    );
    assert_eq!(digest, digest3);
}

#[test]
fn untrimmed_unpack_keeps_docs_and_counts() {
    let staging = tempfile::tempdir().unwrap();
    let mut b = LayerBuilder::new(LayerOptions::default());
    let all = unpack_into(deb("base-files"), &mut b, staging.path(), &Trim::none()).unwrap();
    assert_eq!(all.dropped, 0);
    let mut b = LayerBuilder::new(LayerOptions::default());
    let trimmed = unpack_into(deb("base-files"), &mut b, staging.path(), &Trim::default()).unwrap();
    assert!(trimmed.dropped > 0);
    assert!(trimmed.files < all.files);
    assert!(trimmed.bytes < all.bytes);
}

#[test]
fn other_real_packages_unpack() {
    let staging = tempfile::tempdir().unwrap();
    let (_, blob) = build_layer(
        &[deb("tzdata"), deb("busybox-static"), deb("ca-certificates")],
        staging.path(),
        &Trim::default(),
    );
    let t = read_layer(&blob);
    assert!(t.entries.contains_key("usr/share/zoneinfo/Europe/Berlin"));
    assert_eq!(t.entries["bin/busybox"].0, b'0');
    assert_eq!(t.entries["bin/busybox"].3, 0o755);
    assert!(
        t.entries
            .keys()
            .any(|p| p.starts_with("usr/share/ca-certificates/mozilla/") && p.ends_with(".crt"))
    );
    assert!(
        t.entries
            .contains_key("var/lib/dpkg/status.d/busybox-static")
    );
    assert!(
        t.entries
            .contains_key("var/lib/dpkg/status.d/tzdata.md5sums")
    );
}

/// A small package tree for dpkg-deb: a file, an executable, a symlink, a hard link, docs.
fn package_tree(dir: &Path) -> PathBuf {
    let root = dir.join("pkg");
    fs::create_dir_all(root.join("DEBIAN")).unwrap();
    fs::write(
        root.join("DEBIAN/control"),
        "Package: ocibuild-test\nVersion: 1.0-1\nArchitecture: all\nMaintainer: t <t@example.org>\n\
         Description: test package\n a longer description\n",
    )
    .unwrap();
    fs::write(root.join("DEBIAN/conffiles"), "/etc/ocibuild-test.conf\n").unwrap();
    fs::create_dir_all(root.join("usr/bin")).unwrap();
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::create_dir_all(root.join("usr/share/doc/ocibuild-test")).unwrap();
    fs::create_dir_all(root.join("usr/share/man/man1")).unwrap();
    fs::write(root.join("usr/bin/hello"), "#!/bin/sh\necho hello\n").unwrap();
    fs::set_permissions(
        root.join("usr/bin/hello"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    fs::write(root.join("etc/ocibuild-test.conf"), "x=1\n").unwrap();
    std::os::unix::fs::symlink("hello", root.join("usr/bin/hi")).unwrap();
    fs::hard_link(root.join("usr/bin/hello"), root.join("usr/bin/hello2")).unwrap();
    fs::write(root.join("usr/share/doc/ocibuild-test/copyright"), "MIT\n").unwrap();
    fs::write(root.join("usr/share/doc/ocibuild-test/README"), "readme\n").unwrap();
    fs::write(root.join("usr/share/man/man1/hello.1"), ".TH hello\n").unwrap();
    // A hard link whose first name is trimmed away but whose second name is kept.
    fs::write(root.join("usr/share/doc/ocibuild-test/NOTES"), "notes\n").unwrap();
    fs::hard_link(
        root.join("usr/share/doc/ocibuild-test/NOTES"),
        root.join("usr/bin/notes"),
    )
    .unwrap();
    root
}

fn dpkg_build(root: &Path, comp: &str, out: &Path) {
    let o = Command::new("dpkg-deb")
        .args(["--root-owner-group", &format!("-Z{comp}"), "--build"])
        .arg(root)
        .arg(out)
        .output()
        .expect("run dpkg-deb");
    assert!(
        o.status.success(),
        "dpkg-deb: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn dpkg_deb_built_packages_in_every_compression() {
    let dir = tempfile::tempdir().unwrap();
    let root = package_tree(dir.path());
    let mut digests = Vec::new();
    for (comp, expect) in [
        ("zstd", "zst"),
        ("gzip", "gz"),
        ("xz", "xz"),
        ("none", "none"),
    ] {
        let out = dir.path().join(format!("t-{comp}.deb"));
        dpkg_build(&root, comp, &out);
        let c = read_control(&out).unwrap();
        assert_eq!(c.data_compression, expect);
        assert_eq!(c.control.get("Package"), Some("ocibuild-test"));
        assert_eq!(c.conffiles.as_deref(), Some("/etc/ocibuild-test.conf\n"));

        let staging = dir.path().join(format!("staging-{comp}"));
        let mut b = LayerBuilder::new(LayerOptions::default());
        let stats = unpack_into(&out, &mut b, &staging, &Trim::default()).unwrap();
        assert_eq!(stats.symlinks, 1);
        assert_eq!(stats.hardlinks, 1, "{stats:?}");
        assert!(stats.dropped >= 3, "{stats:?}");
        for e in dpkg_record(&c) {
            b.add_entry(e).unwrap();
        }
        let (blob, info) = b.write(Vec::new()).unwrap();
        let t = read_layer(&blob);
        assert_eq!(t.contents["usr/bin/hello"], b"#!/bin/sh\necho hello\n");
        assert_eq!(t.entries["usr/bin/hello"].3, 0o755);
        assert_eq!(t.entries["etc/ocibuild-test.conf"].3, 0o644);
        assert_eq!(t.entries["usr/bin/hi"].0, b'2');
        assert_eq!(t.entries["usr/bin/hi"].1, "hello");
        // The hard link pair: one file, one link to it.
        let kinds = [t.entries["usr/bin/hello"].0, t.entries["usr/bin/hello2"].0];
        assert!(kinds.contains(&b'0') && kinds.contains(&b'1'), "{kinds:?}");
        // The kept name of a trimmed hard link became a regular file with the contents.
        assert_eq!(t.entries["usr/bin/notes"].0, b'0');
        assert_eq!(t.contents["usr/bin/notes"], b"notes\n");
        assert!(
            t.entries
                .contains_key("usr/share/doc/ocibuild-test/copyright")
        );
        assert!(!t.entries.contains_key("usr/share/doc/ocibuild-test/README"));
        assert!(!t.entries.contains_key("usr/share/doc/ocibuild-test/NOTES"));
        assert!(!t.entries.keys().any(|p| p.starts_with("usr/share/man")));
        assert!(!t.entries.keys().any(|p| p.starts_with("DEBIAN")));
        let rec =
            String::from_utf8(t.contents["var/lib/dpkg/status.d/ocibuild-test"].clone()).unwrap();
        assert!(rec.contains("Description: test package\n a longer description\n"));
        // dpkg-deb writes no md5sums (dh_md5sums does): no record for it.
        assert!(c.md5sums.is_none());
        assert!(
            !t.entries
                .contains_key("var/lib/dpkg/status.d/ocibuild-test.md5sums")
        );
        digests.push(info.digest.to_string());
    }
    // Same contents, different package compression: the same layer.
    assert!(digests.windows(2).all(|w| w[0] == w[1]), "{digests:?}");
}

// ---- hostile and broken archives -------------------------------------------------------

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A tar with one regular file per (raw name, contents), names written into the header as is.
fn raw_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        let bytes = name.as_bytes();
        h.as_gnu_mut().unwrap().name[..bytes.len()].copy_from_slice(bytes);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

fn control_tar() -> Vec<u8> {
    raw_tar(&[(
        "./control",
        b"Package: evil\nVersion: 1\nArchitecture: all\nDescription: x\n",
    )])
}

/// An ar archive with these members.
fn ar_deb(path: &Path, members: &[(&str, Vec<u8>)]) {
    let mut b = ar::Builder::new(Vec::new());
    for (name, data) in members {
        let h = ar::Header::new(name.as_bytes().to_vec(), data.len() as u64);
        b.append(&h, &data[..]).unwrap();
    }
    fs::write(path, b.into_inner().unwrap()).unwrap();
}

fn hostile(dir: &Path, name: &str, data_name: &str) -> PathBuf {
    let p = dir.join(format!("{}.deb", name.replace('/', "_")));
    ar_deb(
        &p,
        &[
            ("debian-binary", b"2.0\n".to_vec()),
            ("control.tar.gz", gz(&control_tar())),
            (
                "data.tar.gz",
                gz(&raw_tar(&[("./usr/ok", b"fine"), (data_name, b"evil")])),
            ),
        ],
    );
    p
}

fn unpack_err(deb: &Path) -> String {
    let staging = deb.with_extension("staging");
    let mut b = LayerBuilder::new(LayerOptions::default());
    unpack_into(deb, &mut b, &staging, &Trim::default())
        .unwrap_err()
        .to_string()
}

#[test]
fn hostile_paths_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["../evil", "./usr/../../evil", "/etc/evil"] {
        let p = hostile(dir.path(), name, name);
        // The control member is fine.
        assert_eq!(
            read_control(&p).unwrap().control.get("Package"),
            Some("evil")
        );
        let err = unpack_err(&p);
        assert!(err.contains(name), "{err}");
        assert!(err.contains("unsafe entry"), "{err}");
        assert!(err.contains("data.tar.gz"), "{err}");
        assert!(err.contains(&p.display().to_string()), "{err}");
    }
    // A hard link pointing outside the root.
    let p = dir.path().join("link.deb");
    let mut t = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.as_gnu_mut().unwrap().name[..7].copy_from_slice(b"./usr/x");
    h.as_gnu_mut().unwrap().linkname[..11].copy_from_slice(b"../../passw");
    h.set_entry_type(tar::EntryType::Link);
    h.set_size(0);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_cksum();
    t.append(&h, &[][..]).unwrap();
    ar_deb(
        &p,
        &[
            ("debian-binary", b"2.0\n".to_vec()),
            ("control.tar", control_tar()),
            ("data.tar", t.into_inner().unwrap()),
        ],
    );
    let err = unpack_err(&p);
    assert!(err.contains("../../passw"), "{err}");
}

#[test]
fn malformed_debs_are_refused_with_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // Truncated real package: the data member is cut short.
    let full = fs::read(deb("libc6")).unwrap();
    let cut = d.join("libc6-truncated.deb");
    fs::write(&cut, &full[..full.len() / 2]).unwrap();
    let err = unpack_err(&cut);
    assert!(err.contains("libc6-truncated.deb"), "{err}");
    assert!(err.contains("data.tar.xz"), "{err}");
    assert!(err.contains("truncated"), "{err}");

    // Cut inside the control member.
    let cut2 = d.join("libc6-tiny.deb");
    fs::write(&cut2, &full[..200]).unwrap();
    let err = read_control(&cut2).unwrap_err().to_string();
    assert!(
        err.contains("libc6-tiny.deb") && err.contains("control.tar.xz"),
        "{err}"
    );
    assert!(err.contains("truncated"), "{err}");

    // Cut right after the control member: no data member.
    let no_data = d.join("no-data.deb");
    ar_deb(
        &no_data,
        &[
            ("debian-binary", b"2.0\n".to_vec()),
            ("control.tar.gz", gz(&control_tar())),
        ],
    );
    let err = read_control(&no_data).unwrap_err().to_string();
    assert!(err.contains("no data.tar member"), "{err}");

    // Not an ar archive at all.
    let text = d.join("text.deb");
    fs::write(&text, "hello, this is not a package\n").unwrap();
    let err = read_control(&text).unwrap_err().to_string();
    assert!(
        err.contains("text.deb") && err.contains("not a Debian package"),
        "{err}"
    );

    // Wrong format version.
    let v3 = d.join("v3.deb");
    ar_deb(
        &v3,
        &[
            ("debian-binary", b"3.0\n".to_vec()),
            ("control.tar.gz", gz(&control_tar())),
            ("data.tar.gz", gz(&raw_tar(&[("./a", b"a")]))),
        ],
    );
    let err = read_control(&v3).unwrap_err().to_string();
    assert!(
        err.contains("debian-binary") && err.contains("3.0"),
        "{err}"
    );

    // Unknown compression and unknown members.
    let bz = d.join("bz.deb");
    ar_deb(
        &bz,
        &[
            ("debian-binary", b"2.0\n".to_vec()),
            ("control.tar.gz", gz(&control_tar())),
            ("data.tar.bz2", b"BZh".to_vec()),
        ],
    );
    let err = read_control(&bz).unwrap_err().to_string();
    assert!(
        err.contains("data.tar.bz2") && err.contains("compression"),
        "{err}"
    );
    let extra = d.join("extra.deb");
    ar_deb(
        &extra,
        &[
            ("debian-binary", b"2.0\n".to_vec()),
            ("evil.sh", b"rm -rf /".to_vec()),
        ],
    );
    let err = read_control(&extra).unwrap_err().to_string();
    assert!(
        err.contains("evil.sh") && err.contains("unexpected member"),
        "{err}"
    );

    // A corrupt xz data member (one flipped byte in the middle).
    let mut bad = full.clone();
    let mid = full.len() * 3 / 4;
    bad[mid] ^= 0xff;
    let corrupt = d.join("libc6-corrupt.deb");
    fs::write(&corrupt, &bad).unwrap();
    let err = unpack_err(&corrupt);
    assert!(
        err.contains("libc6-corrupt.deb") && err.contains("data.tar.xz"),
        "{err}"
    );

    // Missing control file in the control member.
    let nocontrol = d.join("nocontrol.deb");
    ar_deb(
        &nocontrol,
        &[
            ("debian-binary", b"2.0\n".to_vec()),
            ("control.tar.gz", gz(&raw_tar(&[("./md5sums", b"")]))),
            ("data.tar.gz", gz(&raw_tar(&[("./a", b"a")]))),
        ],
    );
    let err = read_control(&nocontrol).unwrap_err().to_string();
    assert!(err.contains("no `control` file"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// The unpacked-package cache

fn sha256_of(p: &Path) -> String {
    use sha2::{Digest as _, Sha256};
    hex::encode(Sha256::digest(fs::read(p).unwrap()))
}

/// The layer (diff_id) of one package's entries.
fn diff_id_of(entries: Vec<ocibuild_oci::layer::LayerEntry>) -> String {
    let mut b = LayerBuilder::new(LayerOptions {
        compression: Compression::None,
        source_date_epoch: 1_700_000_000,
        ..LayerOptions::default()
    });
    for e in entries {
        b.add_entry(e).unwrap();
    }
    b.write(std::io::sink()).unwrap().1.diff_id.to_string()
}

/// From the cache (filled, then hit) a package gives byte for byte the layer fresh unpacking
/// gives, with the epoch applied the same way; the cached files are ready to link as they are.
#[test]
fn unpacked_cache_gives_the_layer_fresh_unpacking_gives() {
    use ocibuild_debian::base::unpack_entries;
    use ocibuild_debian::unpacked::{Outcome, UnpackedCache};
    let tmp = tempfile::tempdir().unwrap();
    let cache = UnpackedCache::new(tmp.path());
    let trim = Trim::default();
    // libc6: hard links and trimmed docs; tzdata: many files with equal contents
    for (pkg, epoch) in [("libc6", 1_600_000_000), ("tzdata", 1_700_000_000)] {
        let d = deb(pkg);
        let sha = sha256_of(d);
        let staging = tmp.path().join(format!("staging-{pkg}"));
        let fresh = unpack_entries(d, &staging, &trim, epoch).unwrap();
        let (filled, o1) = cache.entries(d, &sha, &trim, epoch).unwrap();
        let (hit, o2) = cache.entries(d, &sha, &trim, epoch).unwrap();
        assert_eq!((o1, o2), (Outcome::Filled, Outcome::Hit), "{pkg}");
        // the same entries but for where file contents come from
        let strip = |v: &[ocibuild_oci::layer::LayerEntry]| -> Vec<String> {
            v.iter()
                .map(|e| match &e.kind {
                    ocibuild_oci::layer::EntryKind::File(p) => format!(
                        "{} file {} {:o} {:?}:{:?} {:?}",
                        e.path,
                        p.file_name().unwrap().to_string_lossy(),
                        e.mode,
                        e.uid,
                        e.gid,
                        e.mtime
                    ),
                    k => format!(
                        "{} {k:?} {:o} {:?}:{:?} {:?}",
                        e.path, e.mode, e.uid, e.gid, e.mtime
                    ),
                })
                .collect()
        };
        assert_eq!(strip(&fresh), strip(&filled), "{pkg}");
        assert_eq!(strip(&fresh), strip(&hit), "{pkg}");
        let want = diff_id_of(fresh);
        assert_eq!(diff_id_of(filled), want, "{pkg}");
        assert_eq!(diff_id_of(hit), want, "{pkg}");
    }
    // nothing half-made is left beside the entries
    let names: Vec<String> = fs::read_dir(cache.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
}

/// A truncated file, a file with other bytes of the same size, a missing manifest (a partial
/// entry) or a garbled one: each is found before the entry is used, and the package is
/// unpacked again (the layer is the right one); `verify` finds them, and `repair` drops them.
#[test]
fn a_corrupt_or_partial_unpacked_cache_entry_is_redone_not_used() {
    use ocibuild_debian::unpacked::{Outcome, UnpackedCache, verify};
    let tmp = tempfile::tempdir().unwrap();
    let cache = UnpackedCache::new(tmp.path());
    let trim = Trim::default();
    let d = deb("base-files");
    let sha = sha256_of(d);
    let epoch = 1_700_000_000;
    let (good, _) = cache.entries(d, &sha, &trim, epoch).unwrap();
    let want = diff_id_of(good);
    let dir = cache.entry_dir(&sha, &trim);
    let biggest = || {
        fs::read_dir(dir.join("files"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .max_by_key(|p| fs::metadata(p).unwrap().len())
            .unwrap()
    };
    type Harm<'a> = (&'a str, Box<dyn Fn() + 'a>);
    let damage: [Harm; 5] = [
        (
            // an edit through a root the file was linked into, undone: the bytes are the
            // same, the mtime is not (a use checks sizes and mtimes, not hashes)
            "touched",
            Box::new(|| {
                let p = biggest();
                let f = fs::OpenOptions::new().write(true).open(&p).unwrap();
                f.set_modified(std::time::SystemTime::now()).unwrap();
            }),
        ),
        (
            "truncated",
            Box::new(|| {
                let p = biggest();
                let len = fs::metadata(&p).unwrap().len();
                let f = fs::OpenOptions::new().write(true).open(&p).unwrap();
                f.set_len(len / 2).unwrap();
            }),
        ),
        (
            "same size, other bytes",
            Box::new(|| {
                let p = biggest();
                let mut data = fs::read(&p).unwrap();
                data[0] ^= 0xff;
                fs::write(&p, data).unwrap();
            }),
        ),
        (
            "no manifest",
            Box::new(|| fs::remove_file(dir.join("entries.json")).unwrap()),
        ),
        (
            "garbled manifest",
            Box::new(|| fs::write(dir.join("entries.json"), b"{\"version\": 1,").unwrap()),
        ),
    ];
    for (what, harm) in &damage {
        harm();
        let (n, broken) = verify(tmp.path(), false);
        assert_eq!((n, broken.len()), (1, 1), "{what}: {broken:?}");
        let (again, outcome) = cache.entries(d, &sha, &trim, epoch).unwrap();
        assert_eq!(outcome, Outcome::Redone, "{what}");
        assert_eq!(diff_id_of(again), want, "{what}");
        let (_, outcome) = cache.entries(d, &sha, &trim, epoch).unwrap();
        assert_eq!(outcome, Outcome::Hit, "{what}");
        assert!(verify(tmp.path(), false).1.is_empty(), "{what}");
    }
    // other bytes with the size and mtime put back: a use does not hash, so only `verify`
    // (`ocibuild cache verify`) finds it, and its repair drops the entry
    {
        let p = biggest();
        let m = fs::metadata(&p).unwrap();
        let mut data = fs::read(&p).unwrap();
        data[0] ^= 0xff;
        fs::write(&p, data).unwrap();
        let f = fs::OpenOptions::new().write(true).open(&p).unwrap();
        f.set_modified(m.modified().unwrap()).unwrap();
        let (_, broken) = verify(tmp.path(), false);
        assert_eq!(broken.len(), 1, "{broken:?}");
        assert!(broken[0].detail.contains("hashes to"), "{broken:?}");
        let (_, broken) = verify(tmp.path(), true);
        assert_eq!(broken.len(), 1);
        // the repair dropped it: unpacked afresh
        let (again, outcome) = cache.entries(d, &sha, &trim, epoch).unwrap();
        assert_eq!(outcome, Outcome::Filled);
        assert_eq!(diff_id_of(again), want);
    }
    // repair drops a broken entry
    fs::remove_file(dir.join("entries.json")).unwrap();
    let (_, broken) = verify(tmp.path(), true);
    assert_eq!(broken.len(), 1);
    assert!(!dir.exists());
}
