//! Layer extraction against hostile and real-world tars. Every hostile case checks the error and
//! that nothing appeared, changed or vanished outside the extraction root.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ocibuild_oci::extract::{
    ExtractOptions, ExtractStats, decompress, extract_layer, extract_layer_blob,
};
use ocibuild_oci::{Compression, Digest, OciError};
use tar::{EntryType, Header};

const MTIME: u64 = 1_600_000_000;

/// A layer tar built in memory. Names are written raw into the header so that hostile names
/// (which `tar::Builder` refuses to write) can be produced.
struct Layer(tar::Builder<Vec<u8>>);

impl Layer {
    fn new() -> Self {
        Layer(tar::Builder::new(Vec::new()))
    }

    fn raw(
        mut self,
        name: &str,
        kind: EntryType,
        mode: u32,
        link: Option<&str>,
        data: &[u8],
    ) -> Self {
        let mut h = Header::new_gnu();
        {
            let old = h.as_old_mut();
            assert!(name.len() <= old.name.len(), "use long() for {name}");
            old.name[..name.len()].copy_from_slice(name.as_bytes());
            if let Some(l) = link {
                old.linkname[..l.len()].copy_from_slice(l.as_bytes());
            }
        }
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_mtime(MTIME);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }

    fn file(self, name: &str, data: &[u8]) -> Self {
        self.raw(name, EntryType::Regular, 0o644, None, data)
    }

    fn dir(self, name: &str) -> Self {
        self.raw(name, EntryType::Directory, 0o755, None, b"")
    }

    fn symlink(self, name: &str, target: &str) -> Self {
        self.raw(name, EntryType::Symlink, 0o777, Some(target), b"")
    }

    fn hardlink(self, name: &str, target: &str) -> Self {
        self.raw(name, EntryType::Link, 0o644, Some(target), b"")
    }

    fn bytes(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

/// tmp/{root,outside}, with outside/secret as bait.
struct Env {
    _tmp: tempfile::TempDir,
    tmp: PathBuf,
    root: PathBuf,
    outside: PathBuf,
}

fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().to_path_buf();
    let root = t.join("root");
    let outside = t.join("outside");
    fs::create_dir(&root).unwrap();
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret"), b"secret").unwrap();
    fs::set_permissions(outside.join("secret"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::set_permissions(&outside, fs::Permissions::from_mode(0o755)).unwrap();
    Env {
        _tmp: tmp,
        tmp: t,
        root,
        outside,
    }
}

impl Env {
    fn extract(&self, layer: Vec<u8>) -> ocibuild_oci::Result<ExtractStats> {
        extract_layer(&layer[..], &self.root, &ExtractOptions::default())
    }

    /// Nothing outside the root was created, changed or removed.
    fn assert_untouched(&self) {
        let mut top: Vec<_> = fs::read_dir(&self.tmp)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        top.sort();
        assert_eq!(
            top,
            ["outside", "root"],
            "something appeared next to the root"
        );
        let inside: Vec<_> = fs::read_dir(&self.outside)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(inside, ["secret"], "something appeared outside the root");
        let secret = self.outside.join("secret");
        let md = fs::symlink_metadata(&secret).unwrap();
        assert!(md.file_type().is_file());
        assert_eq!(md.mode() & 0o7777, 0o600, "outside file was chmod'ed");
        assert_eq!(md.nlink(), 1, "outside file was hard-linked");
        assert_eq!(fs::read(&secret).unwrap(), b"secret");
        let od = fs::metadata(&self.outside).unwrap();
        assert_eq!(od.mode() & 0o7777, 0o755, "outside dir was chmod'ed");
    }

    fn r(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
}

fn assert_unsafe(res: ocibuild_oci::Result<ExtractStats>, entry: &str, why_has: &str) {
    match res {
        Err(OciError::UnsafeEntry { entry: e, why }) => {
            assert_eq!(e, entry);
            assert!(why.contains(why_has), "`{why}` should mention `{why_has}`");
        }
        other => panic!("expected UnsafeEntry for `{entry}`, got {other:?}"),
    }
}

fn exists(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok()
}

// ---------------------------------------------------------------------------------------------
// Names

#[test]
fn dotdot_entry_is_rejected() {
    let e = env();
    let res = e.extract(Layer::new().file("../escape", b"x").bytes());
    assert_unsafe(res, "../escape", "..");
    e.assert_untouched();
    assert!(!exists(&e.tmp.join("escape")));
}

#[test]
fn dotdot_in_the_middle_is_rejected() {
    let e = env();
    let res = e.extract(Layer::new().dir("a/").file("a/../../escape", b"x").bytes());
    assert_unsafe(res, "a/../../escape", "..");
    e.assert_untouched();
    // Even the harmless-looking form is refused, not sanitised.
    let res = e.extract(Layer::new().file("a/../b", b"x").bytes());
    assert_unsafe(res, "a/../b", "..");
    assert!(!exists(&e.r("b")));
}

#[test]
fn absolute_entry_is_rejected() {
    let e = env();
    let res = e.extract(Layer::new().file("/etc/evil", b"x").bytes());
    assert_unsafe(res, "/etc/evil", "absolute");
    e.assert_untouched();
    assert!(!exists(Path::new("/etc/evil")));
    assert!(!exists(&e.r("etc")));
}

#[test]
fn leading_dot_slash_is_stripped() {
    let e = env();
    e.extract(
        Layer::new()
            .dir("./")
            .dir("./a/")
            .file("./a/b", b"hi")
            .bytes(),
    )
    .unwrap();
    assert_eq!(fs::read(e.r("a/b")).unwrap(), b"hi");
    e.assert_untouched();
}

// ---------------------------------------------------------------------------------------------
// Symlinks in parent components

#[test]
fn symlink_escaping_the_root_is_not_followed() {
    for target in ["../outside", "../../outside", "../../..", "a/../../outside"] {
        let e = env();
        let res = e.extract(
            Layer::new()
                .symlink("evil", target)
                .file("evil/pwned", b"x")
                .bytes(),
        );
        assert_unsafe(res, "evil/pwned", "symlink escapes the root");
        e.assert_untouched();
        assert!(!exists(&e.tmp.parent().unwrap().join("outside/pwned")));
    }
}

#[test]
fn escaping_symlink_from_an_earlier_layer_is_not_followed() {
    let e = env();
    e.extract(
        Layer::new()
            .dir("d/")
            .symlink("d/evil", "../../outside")
            .bytes(),
    )
    .unwrap();
    let res = e.extract(Layer::new().file("d/evil/pwned", b"x").bytes());
    assert_unsafe(res, "d/evil/pwned", "symlink escapes the root");
    // Through a directory entry, a hard link target, a whiteout and an opaque marker too.
    let res = e.extract(Layer::new().dir("d/evil/sub/").bytes());
    assert_unsafe(res, "d/evil/sub/", "symlink escapes the root");
    let res = e.extract(Layer::new().hardlink("h", "d/evil/secret").bytes());
    assert_unsafe(res, "h", "symlink escapes the root");
    let res = e.extract(Layer::new().file("d/evil/.wh.secret", b"").bytes());
    assert_unsafe(res, "d/evil/.wh.secret", "symlink escapes the root");
    let res = e.extract(Layer::new().file("d/evil/.wh..wh..opq", b"").bytes());
    assert_unsafe(res, "d/evil/.wh..wh..opq", "symlink escapes the root");
    e.assert_untouched();
}

#[test]
fn absolute_symlink_is_followed_inside_the_root() {
    let e = env();
    let canary = format!("ocibuild-extract-canary-{}", std::process::id());
    e.extract(
        Layer::new()
            .symlink("evil", "/")
            .file(&format!("evil/{canary}"), b"in root")
            .bytes(),
    )
    .unwrap();
    assert_eq!(fs::read(e.r(&canary)).unwrap(), b"in root");
    assert!(
        !exists(&Path::new("/").join(&canary)),
        "wrote to the host's /"
    );
    e.assert_untouched();

    // An absolute symlink naming the real outside directory lands inside the root as well.
    let abs = e.outside.to_str().unwrap().to_string();
    e.extract(
        Layer::new()
            .symlink("abs", &abs)
            .file("abs/pwned", b"x")
            .bytes(),
    )
    .unwrap();
    assert_eq!(
        fs::read(e.root.join(abs.trim_start_matches('/')).join("pwned")).unwrap(),
        b"x"
    );
    e.assert_untouched();
}

#[test]
fn symlink_loops_are_refused() {
    let e = env();
    let res = e.extract(
        Layer::new()
            .symlink("a", "b")
            .symlink("b", "a")
            .file("a/x", b"x")
            .bytes(),
    );
    assert_unsafe(res, "a/x", "too many levels of symbolic links");
    let res = e.extract(
        Layer::new()
            .symlink("self", "./self")
            .file("self/x", b"")
            .bytes(),
    );
    assert_unsafe(res, "self/x", "too many levels");
    e.assert_untouched();
}

#[test]
fn file_replaces_a_symlink_instead_of_writing_through_it() {
    let e = env();
    let abs_secret = e.outside.join("secret");
    e.extract(
        Layer::new()
            .symlink("link", "../outside/secret")
            .symlink("abslink", abs_secret.to_str().unwrap())
            .bytes(),
    )
    .unwrap();
    e.extract(
        Layer::new()
            .file("link", b"new")
            .file("abslink", b"new too")
            .bytes(),
    )
    .unwrap();
    for (name, data) in [("link", &b"new"[..]), ("abslink", b"new too")] {
        let md = fs::symlink_metadata(e.r(name)).unwrap();
        assert!(md.file_type().is_file(), "{name} should now be a file");
        assert_eq!(fs::read(e.r(name)).unwrap(), data);
    }
    e.assert_untouched();
}

#[test]
fn symlink_and_file_in_the_same_layer() {
    let e = env();
    e.extract(
        Layer::new()
            .symlink("link", "../outside/secret")
            .file("link", b"mine")
            .bytes(),
    )
    .unwrap();
    assert_eq!(fs::read(e.r("link")).unwrap(), b"mine");
    e.assert_untouched();
}

#[test]
fn directory_entry_replaces_a_symlink_and_chmods_nothing_outside() {
    let e = env();
    e.extract(Layer::new().symlink("d", "../outside").bytes())
        .unwrap();
    e.extract(
        Layer::new()
            .raw("d/", EntryType::Directory, 0o777, None, b"")
            .bytes(),
    )
    .unwrap();
    let md = fs::symlink_metadata(e.r("d")).unwrap();
    assert!(md.is_dir());
    assert_eq!(md.mode() & 0o777, 0o777);
    e.assert_untouched();
}

#[test]
fn symlink_entries_keep_any_target() {
    let e = env();
    e.extract(
        Layer::new()
            .symlink("up", "../../../etc/passwd")
            .symlink("abs", "/etc/passwd")
            .bytes(),
    )
    .unwrap();
    assert_eq!(
        fs::read_link(e.r("up")).unwrap(),
        Path::new("../../../etc/passwd")
    );
    assert_eq!(fs::read_link(e.r("abs")).unwrap(), Path::new("/etc/passwd"));
    e.assert_untouched();
}

#[test]
fn merged_usr() {
    let e = env();
    e.extract(
        Layer::new()
            .dir("usr/")
            .dir("usr/lib/")
            .file("usr/lib/libc.so", b"libc")
            .symlink("lib", "usr/lib")
            .symlink("lib64", "/usr/lib")
            .bytes(),
    )
    .unwrap();
    e.extract(
        Layer::new()
            .file("lib/x.so", b"x")
            .file("lib64/y.so", b"y")
            .file("lib/x86_64-linux-gnu/libfoo.so", b"foo")
            .bytes(),
    )
    .unwrap();
    assert_eq!(fs::read(e.r("usr/lib/x.so")).unwrap(), b"x");
    assert_eq!(fs::read(e.r("usr/lib/y.so")).unwrap(), b"y");
    assert_eq!(
        fs::read(e.r("usr/lib/x86_64-linux-gnu/libfoo.so")).unwrap(),
        b"foo"
    );
    assert!(
        fs::symlink_metadata(e.r("lib"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(
        fs::symlink_metadata(e.r("lib64"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(fs::read(e.r("usr/lib/libc.so")).unwrap(), b"libc");
    e.assert_untouched();
}

#[test]
fn relative_symlink_with_dotdot_inside_the_root_is_followed() {
    let e = env();
    e.extract(
        Layer::new()
            .dir("usr/lib/")
            .dir("opt/")
            .symlink("opt/lib", "../usr/./lib")
            .file("opt/lib/z", b"z")
            .bytes(),
    )
    .unwrap();
    assert_eq!(fs::read(e.r("usr/lib/z")).unwrap(), b"z");
    e.assert_untouched();
}

// ---------------------------------------------------------------------------------------------
// Hard links

#[test]
fn hardlink_outside_is_rejected() {
    let e = env();
    let res = e.extract(Layer::new().hardlink("h", "../outside/secret").bytes());
    assert_unsafe(res, "h", "..");
    let res = e.extract(Layer::new().hardlink("h", "/etc/passwd").bytes());
    assert_unsafe(res, "h", "absolute");
    let abs = e.outside.join("secret");
    let res = e.extract(Layer::new().hardlink("h", abs.to_str().unwrap()).bytes());
    assert_unsafe(res, "h", "absolute");
    assert!(!exists(&e.r("h")));
    e.assert_untouched();
}

#[test]
fn hardlink_to_a_symlink_or_missing_file_is_rejected() {
    let e = env();
    let res = e.extract(
        Layer::new()
            .symlink("s", "../outside/secret")
            .hardlink("h", "s")
            .bytes(),
    );
    assert_unsafe(res, "h", "not a regular file");
    let res = e.extract(Layer::new().hardlink("h2", "nope").bytes());
    assert_unsafe(res, "h2", "does not exist");
    let res = e.extract(Layer::new().dir("d/").hardlink("h3", "d").bytes());
    assert_unsafe(res, "h3", "not a regular file");
    assert!(!exists(&e.r("h")));
    e.assert_untouched();
}

#[test]
fn hardlink_inside_the_root_works() {
    let e = env();
    e.extract(
        Layer::new()
            .dir("bin/")
            .file("bin/a", b"same")
            .hardlink("bin/b", "./bin/a")
            .bytes(),
    )
    .unwrap();
    // And to a file from a lower layer, through an in-root symlink in the target's parent.
    e.extract(
        Layer::new()
            .symlink("sbin", "bin")
            .hardlink("c", "sbin/a")
            .bytes(),
    )
    .unwrap();
    let a = fs::metadata(e.r("bin/a")).unwrap();
    let b = fs::metadata(e.r("bin/b")).unwrap();
    let c = fs::metadata(e.r("c")).unwrap();
    assert_eq!(a.ino(), b.ino());
    assert_eq!(a.ino(), c.ino());
    assert_eq!(fs::read(e.r("c")).unwrap(), b"same");
    e.assert_untouched();
}

// ---------------------------------------------------------------------------------------------
// Whiteouts

#[test]
fn whiteouts_remove_lower_content() {
    let e = env();
    e.extract(
        Layer::new()
            .dir("a/")
            .file("a/b", b"b")
            .file("a/c", b"c")
            .file("d", b"d")
            .dir("t/")
            .dir("t/deep/")
            .file("t/deep/f", b"f")
            .bytes(),
    )
    .unwrap();
    let stats = e
        .extract(
            Layer::new()
                .file("a/.wh.b", b"")
                .file(".wh.d", b"")
                .file(".wh.t", b"")
                .file(".wh.never-existed", b"")
                .bytes(),
        )
        .unwrap();
    assert_eq!(stats.whiteouts, 4);
    assert!(!exists(&e.r("a/b")));
    assert!(!exists(&e.r("d")));
    assert!(!exists(&e.r("t")));
    assert_eq!(fs::read(e.r("a/c")).unwrap(), b"c");
    assert!(!exists(&e.r("a/.wh.b")));
    assert!(!exists(&e.r(".wh.d")));
    e.assert_untouched();
}

#[test]
fn whiteout_does_not_hide_the_same_layer() {
    let e = env();
    e.extract(Layer::new().file("x", b"lower").bytes()).unwrap();
    e.extract(Layer::new().file("x", b"upper").file(".wh.x", b"").bytes())
        .unwrap();
    assert_eq!(fs::read(e.r("x")).unwrap(), b"upper");
}

#[test]
fn opaque_whiteout_empties_lower_content_only() {
    for marker_first in [true, false] {
        let e = env();
        e.extract(
            Layer::new()
                .dir("a/")
                .file("a/b", b"b")
                .file("a/c", b"c")
                .dir("a/sub/")
                .file("a/sub/old", b"old")
                .file("keep", b"k")
                .bytes(),
        )
        .unwrap();
        let mut l = Layer::new().dir("a/");
        if marker_first {
            l = l.file("a/.wh..wh..opq", b"");
        }
        l = l.file("a/e", b"e").file("a/sub/new", b"new");
        if !marker_first {
            l = l.file("a/.wh..wh..opq", b"");
        }
        let stats = e.extract(l.bytes()).unwrap();
        assert_eq!(stats.whiteouts, 1);
        let mut names: Vec<_> = fs::read_dir(e.r("a"))
            .unwrap()
            .map(|d| d.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["e", "sub"], "marker first: {marker_first}");
        let sub: Vec<_> = fs::read_dir(e.r("a/sub"))
            .unwrap()
            .map(|d| d.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(sub, ["new"]);
        assert_eq!(fs::read(e.r("keep")).unwrap(), b"k");
        e.assert_untouched();
    }
}

#[test]
fn hostile_whiteout_names_are_rejected() {
    let e = env();
    e.extract(Layer::new().dir("a/").file("a/f", b"f").bytes())
        .unwrap();
    let res = e.extract(Layer::new().file("a/.wh...", b"").bytes());
    assert_unsafe(res, "a/.wh...", "whiteout");
    let res = e.extract(Layer::new().file("a/.wh..", b"").bytes());
    assert_unsafe(res, "a/.wh..", "whiteout");
    let res = e.extract(Layer::new().file("a/.wh.", b"").bytes());
    assert_unsafe(res, "a/.wh.", "whiteout");
    assert_eq!(fs::read(e.r("a/f")).unwrap(), b"f");
    e.assert_untouched();
}

#[test]
fn whiteouts_can_be_kept_as_files() {
    let e = env();
    let opts = ExtractOptions {
        apply_whiteouts: false,
        ..ExtractOptions::default()
    };
    let layer = Layer::new().file(".wh.d", b"").bytes();
    let stats = extract_layer(&layer[..], &e.root, &opts).unwrap();
    assert_eq!(stats.whiteouts, 0);
    assert!(e.r(".wh.d").is_file());
}

// ---------------------------------------------------------------------------------------------
// Replacement, metadata, formats

#[test]
fn file_replaces_a_directory_tree_and_vice_versa() {
    let e = env();
    e.extract(
        Layer::new()
            .dir("d/")
            .dir("d/e/")
            .file("d/e/f", b"f")
            .file("g", b"g")
            .bytes(),
    )
    .unwrap();
    e.extract(Layer::new().file("d", b"now a file").dir("g/").bytes())
        .unwrap();
    assert_eq!(fs::read(e.r("d")).unwrap(), b"now a file");
    assert!(e.r("g").is_dir());
    e.assert_untouched();
}

#[test]
fn modes_and_mtimes_are_applied() {
    let e = env();
    e.extract(
        Layer::new()
            .raw("ro/", EntryType::Directory, 0o555, None, b"")
            .raw("ro/suid", EntryType::Regular, 0o4755, None, b"#!")
            .raw("ro/inner/", EntryType::Directory, 0o750, None, b"")
            .raw("ro/inner/f", EntryType::Regular, 0o600, None, b"x")
            .symlink("ro/l", "suid")
            .bytes(),
    )
    .unwrap();
    let md = |p: &str| fs::symlink_metadata(e.r(p)).unwrap();
    assert_eq!(md("ro").mode() & 0o7777, 0o555);
    assert_eq!(md("ro/inner").mode() & 0o7777, 0o750);
    assert_eq!(md("ro/suid").mode() & 0o7777, 0o4755);
    assert_eq!(md("ro/inner/f").mode() & 0o7777, 0o600);
    for p in ["ro", "ro/inner", "ro/suid", "ro/inner/f", "ro/l"] {
        assert_eq!(md(p).mtime(), MTIME as i64, "{p}");
    }
    // Make the tree removable for the temp dir cleanup when not root.
    fs::set_permissions(e.r("ro"), fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn owners_are_preserved_only_when_asked() {
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let owned = |name: &str, kind: EntryType, mode: u32, link: Option<&str>| {
        let mut h = Header::new_ustar();
        h.set_path(name).unwrap();
        if let Some(l) = link {
            h.set_link_name(l).unwrap();
        }
        h.set_entry_type(kind);
        h.set_size(0);
        h.set_mode(mode);
        h.set_uid(1234);
        h.set_gid(5678);
        h.set_mtime(MTIME);
        h.set_cksum();
        h
    };
    let mut b = tar::Builder::new(Vec::new());
    for h in [
        owned("d/", EntryType::Directory, 0o755, None),
        owned("d/suid", EntryType::Regular, 0o4755, None),
        owned("d/l", EntryType::Symlink, 0o777, Some("suid")),
    ] {
        b.append(&h, &b""[..]).unwrap();
    }
    let layer = b.into_inner().unwrap();

    let e = env();
    let opts = ExtractOptions {
        preserve_owner: true,
        ..ExtractOptions::default()
    };
    extract_layer(&layer[..], &e.root, &opts).unwrap();
    for p in ["d", "d/suid", "d/l"] {
        let md = fs::symlink_metadata(e.r(p)).unwrap();
        assert_eq!((md.uid(), md.gid()), (1234, 5678), "{p}");
    }
    // chown clears setuid; the mode is applied after it.
    assert_eq!(fs::metadata(e.r("d/suid")).unwrap().mode() & 0o7777, 0o4755);

    let e = env();
    e.extract(layer).unwrap();
    assert_eq!(fs::metadata(e.r("d/suid")).unwrap().uid(), 0);
    e.assert_untouched();
}

#[test]
fn root_dot_entry_sets_only_the_mode() {
    let e = env();
    e.extract(
        Layer::new()
            .raw("./", EntryType::Directory, 0o750, None, b"")
            .file("f", b"")
            .bytes(),
    )
    .unwrap();
    assert_eq!(fs::metadata(&e.root).unwrap().mode() & 0o7777, 0o750);
    let res = e.extract(Layer::new().file("./", b"x").bytes());
    assert_unsafe(res, "./", "root directory");
}

#[test]
fn long_names_pax_and_gnu() {
    let e = env();
    let long = format!("{}/{}", "d".repeat(120), "f".repeat(150));
    // GNU long name (tar::Builder writes a `L` record for names over 100 bytes).
    let mut b = tar::Builder::new(Vec::new());
    let mut h = Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o644);
    h.set_mtime(MTIME);
    b.append_data(&mut h, &long, &b"gnu"[..]).unwrap();
    // PAX path record, with a hostile variant that must still be refused.
    let pax_name = format!("{}/{}", "p".repeat(120), "q".repeat(150));
    b.append_pax_extensions([
        ("path", pax_name.as_bytes()),
        ("mtime", &b"1700000000.25"[..]),
    ])
    .unwrap();
    let mut h = Header::new_ustar();
    h.set_path("short-placeholder").unwrap();
    h.set_size(3);
    h.set_mode(0o644);
    h.set_mtime(MTIME);
    h.set_cksum();
    b.append(&h, &b"pax"[..]).unwrap();
    let stats = e.extract(b.into_inner().unwrap()).unwrap();
    assert_eq!(stats.entries, 2);
    assert_eq!(fs::read(e.r(&long)).unwrap(), b"gnu");
    assert_eq!(fs::read(e.r(&pax_name)).unwrap(), b"pax");
    let md = fs::metadata(e.r(&pax_name)).unwrap();
    assert_eq!((md.mtime(), md.mtime_nsec()), (1_700_000_000, 250_000_000));

    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions([("path", &b"../outside/pax-evil"[..])])
        .unwrap();
    let mut h = Header::new_ustar();
    h.set_path("harmless").unwrap();
    h.set_size(1);
    h.set_cksum();
    b.append(&h, &b"x"[..]).unwrap();
    let res = e.extract(b.into_inner().unwrap());
    assert_unsafe(res, "../outside/pax-evil", "..");
    assert!(!exists(&e.r("harmless")));
    e.assert_untouched();
}

#[test]
fn truncated_tar_names_the_entry() {
    let e = env();
    let tar = Layer::new()
        .file("first", b"ok")
        .file("big.bin", &vec![7u8; 10_000])
        .bytes();
    // first: header + one data block; big.bin: header, then cut 5000 bytes into its data.
    let cut = &tar[..512 * 3 + 5000];
    let err = e.extract(cut.to_vec()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("big.bin"), "{msg}");
    assert!(msg.contains("truncated"), "{msg}");
    e.assert_untouched();
}

#[test]
fn device_nodes_are_skipped_unprivileged() {
    let e = env();
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind) in [
        ("dev/null", EntryType::Char),
        ("dev/sda", EntryType::Block),
        ("dev/fifo", EntryType::Fifo),
    ] {
        let mut h = Header::new_ustar();
        h.set_path(name).unwrap();
        h.set_entry_type(kind);
        h.set_size(0);
        h.set_mode(0o666);
        h.set_device_major(1).unwrap();
        h.set_device_minor(3).unwrap();
        h.set_cksum();
        b.append(&h, &b""[..]).unwrap();
    }
    let layer = b.into_inner().unwrap();
    let stats = e.extract(layer.clone()).unwrap();
    assert_eq!(stats.skipped_devices, 3);
    assert_eq!(stats.entries, 3);
    assert!(!exists(&e.r("dev/null")));

    // As root with `privileged`, they are created.
    if nix::unistd::geteuid().is_root() {
        let opts = ExtractOptions {
            privileged: true,
            ..ExtractOptions::default()
        };
        let stats = extract_layer(&layer[..], &e.root, &opts).unwrap();
        if stats.skipped_devices == 0 {
            let null = fs::symlink_metadata(e.r("dev/null")).unwrap();
            assert!(null.file_type().is_char_device());
            assert_eq!(null.mode() & 0o777, 0o666);
            assert!(
                fs::symlink_metadata(e.r("dev/fifo"))
                    .unwrap()
                    .file_type()
                    .is_fifo()
            );
        }
    }
    e.assert_untouched();
}

// ---------------------------------------------------------------------------------------------
// Compressed blobs and diff_id

fn sample_layer() -> Vec<u8> {
    Layer::new()
        .dir("etc/")
        .file("etc/os-release", b"ID=test\n")
        .symlink("etc/alias", "os-release")
        .bytes()
}

fn check_blob(blob: &[u8], c: Compression, tar: &[u8]) {
    let diff_id = Digest::of_bytes(tar);
    let e = env();
    let stats =
        extract_layer_blob(blob, c, Some(&diff_id), &e.root, &ExtractOptions::default()).unwrap();
    assert_eq!(stats.entries, 3);
    assert_eq!(stats.bytes, 8);
    assert_eq!(fs::read(e.r("etc/alias")).unwrap(), b"ID=test\n");

    let e = env();
    extract_layer_blob(blob, c, None, &e.root, &ExtractOptions::default()).unwrap();

    let e = env();
    let wrong = Digest::of_bytes(b"not this layer");
    match extract_layer_blob(blob, c, Some(&wrong), &e.root, &ExtractOptions::default()) {
        Err(OciError::DigestMismatch {
            expected, actual, ..
        }) => {
            assert_eq!(expected, wrong);
            assert_eq!(actual, diff_id);
        }
        other => panic!("expected a digest mismatch, got {other:?}"),
    }
    e.assert_untouched();
}

#[test]
fn gzip_round_trip_with_diff_id() {
    let tar = sample_layer();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    let blob = gz.finish().unwrap();
    check_blob(&blob, Compression::Gzip, &tar);
    check_blob(&tar, Compression::None, &tar);
}

#[cfg(feature = "zstd")]
#[test]
fn zstd_round_trip_with_diff_id() {
    let tar = sample_layer();
    let blob = zstd::stream::encode_all(&tar[..], 3).unwrap();
    check_blob(&blob, Compression::Zstd, &tar);
}

#[test]
fn decompress_rejects_garbage() {
    let mut r = decompress(&b"definitely not gzip"[..], Compression::Gzip).unwrap();
    let mut out = Vec::new();
    assert!(std::io::Read::read_to_end(&mut r, &mut out).is_err());
}
