//! `buildah` as the reference Dockerfile builder, and a root-filesystem comparison.
//!
//! [`Buildah`] runs `buildah build` as root with a private containers-storage under a
//! [`TestContext`] (its own `storage.conf` and `containers.conf`: overlay driver, no system
//! store touched), `--isolation chroot` (no runtime, no cgroups, no network namespace: what
//! works on a plain root shell and in a CI container), `--layers`, and exports the result to an
//! OCI layout with `buildah push IMAGE oci:DIR:TAG`. Everything buildah made is removed on drop.
//!
//! [`compare_rootfs`] walks two unpacked root filesystems (from [`crate::umoci_unpack`]) and
//! lists every difference in paths, file types, permission bits, owners, contents, symlink
//! targets, device numbers and hardlink groups; never timestamps. [`compare_with_buildah`] does
//! the same with the documented allow-list of what buildah adds to an image that is no part of
//! the Dockerfile's semantics ([`BUILDAH_ADDITIONS`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{BufReader, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{TestContext, limit, report, require_tool, run_ok};

/// A private buildah store under a test's temp dir (`buildah/{graph,run,tmp}` plus its
/// `storage.conf`, `containers.conf` and an accept-anything signature policy). Builds run as
/// root (buildah's rootless mode needs user namespaces and subuid ranges, which CI containers
/// rarely grant). Dropping it removes its containers, images and any mount left under it.
#[derive(Debug)]
pub struct Buildah {
    bin: PathBuf,
    dir: PathBuf,
    storage_conf: PathBuf,
    containers_conf: PathBuf,
    policy: PathBuf,
}

/// What one `buildah build` printed, and the image id it wrote with `--iidfile`.
#[derive(Debug)]
pub struct BuildahOutput {
    pub image_id: String,
    pub stdout: String,
    pub stderr: String,
}

/// The options of one `buildah build`, built up with the methods below.
#[derive(Debug, Clone)]
pub struct BuildahBuild {
    dockerfile: PathBuf,
    context: PathBuf,
    args: Vec<String>,
}

impl BuildahBuild {
    /// `buildah build -f DOCKERFILE CONTEXT`.
    pub fn new(dockerfile: impl Into<PathBuf>, context: impl Into<PathBuf>) -> Self {
        BuildahBuild {
            dockerfile: dockerfile.into(),
            context: context.into(),
            args: Vec::new(),
        }
    }

    /// `--build-arg KEY=VALUE`.
    pub fn build_arg(mut self, key: &str, value: &str) -> Self {
        self.args.push("--build-arg".into());
        self.args.push(format!("{key}={value}"));
        self
    }

    /// `--secret SPEC`, e.g. `id=token,src=/path/file`.
    pub fn secret(mut self, spec: &str) -> Self {
        self.args.push("--secret".into());
        self.args.push(spec.into());
        self
    }

    /// `--target STAGE`.
    pub fn target(mut self, stage: &str) -> Self {
        self.args.push("--target".into());
        self.args.push(stage.into());
        self
    }

    /// Any other `buildah build` argument.
    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.into());
        self
    }
}

impl Buildah {
    /// A fresh store under `ctx` (`ctx.tmp_dir("buildah")`; one per context). Panics naming the
    /// package when buildah is missing, and when not running as root.
    pub fn new(ctx: &TestContext) -> Self {
        let bin = require_tool("buildah", "buildah");
        assert!(
            crate::is_root(),
            "the buildah reference builds run buildah as root with a private store: run the \
             tests as root (`./scripts/test.sh` as root; CI does); this test never skips"
        );
        let dir = ctx.tmp_dir("buildah");
        for sub in ["graph", "run", "tmp"] {
            crate::mkdirs(&dir.join(sub));
        }
        let storage_conf = dir.join("storage.conf");
        write(
            &storage_conf,
            &format!(
                "[storage]\ndriver = \"overlay\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
                dir.join("graph").display(),
                dir.join("run").display()
            ),
        );
        // ulimits within the hard limits (buildah's defaults, nofile=1048576, fail without
        // CAP_SYS_RESOURCE); file events (no journald in containers); cgroupfs; its tmp dir in
        // the store, so nothing is left in /var/tmp.
        let nofile = limit("Max open files").map_or(1024, |(_, h)| h.min(1_048_576));
        let nproc = limit("Max processes").map_or(4096, |(_, h)| h.min(32_768));
        let containers_conf = dir.join("containers.conf");
        write(
            &containers_conf,
            &format!(
                "[containers]\n\
                 default_ulimits = [\"nofile={nofile}:{nofile}\", \"nproc={nproc}:{nproc}\"]\n\n\
                 [engine]\n\
                 cgroup_manager = \"cgroupfs\"\n\
                 events_logger = \"file\"\n\
                 tmp_dir = \"{}\"\n",
                dir.join("tmp").display()
            ),
        );
        let policy = dir.join("policy.json");
        write(
            &policy,
            "{\"default\": [{\"type\": \"insecureAcceptAnything\"}]}\n",
        );
        Buildah {
            bin,
            dir,
            storage_conf,
            containers_conf,
            policy,
        }
    }

    /// `buildah` with this store's configuration in its environment.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.env("CONTAINERS_STORAGE_CONF", &self.storage_conf)
            .env("CONTAINERS_CONF", &self.containers_conf)
            .env("TMPDIR", self.dir.join("tmp"))
            .stdin(Stdio::null());
        c
    }

    /// `buildah build --layers --isolation chroot …` with the build's options, tagged `tag` in
    /// this store. Panics with buildah's whole output when it fails.
    pub fn build(&self, b: &BuildahBuild, tag: &str) -> BuildahOutput {
        let iid = self.dir.join(format!("iid-{}", crate::next_id()));
        let mut c = self.cmd();
        c.arg("build")
            .args(["--layers", "--isolation", "chroot"])
            .arg("--signature-policy")
            .arg(&self.policy)
            .arg("--iidfile")
            .arg(&iid)
            .arg("-t")
            .arg(format!("localhost/ocibuild-reference:{tag}"))
            .arg("-f")
            .arg(&b.dockerfile)
            .args(&b.args)
            .arg(&b.context);
        let out = run_ok(&mut c);
        let image_id = fs::read_to_string(&iid)
            .unwrap_or_else(|e| {
                panic!(
                    "{}",
                    report(
                        &c,
                        &out,
                        &format!("buildah wrote no --iidfile {} ({e})", iid.display())
                    )
                )
            })
            .trim()
            .to_string();
        BuildahOutput {
            image_id,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `buildah push IMAGE oci:LAYOUT:TAG`.
    pub fn push_to_layout(&self, image: &str, layout: &Path, tag: &str) {
        crate::assert_no_colon(layout, "buildah");
        let mut c = self.cmd();
        c.args(["push", "--quiet"])
            .arg("--signature-policy")
            .arg(&self.policy)
            .arg(image)
            .arg(format!("oci:{}:{tag}", layout.display()));
        run_ok(&mut c);
    }

    /// [`Buildah::build`], then [`Buildah::push_to_layout`] of the result.
    pub fn build_to_layout(&self, b: &BuildahBuild, layout: &Path, tag: &str) -> BuildahOutput {
        let out = self.build(b, tag);
        self.push_to_layout(&out.image_id, layout, tag);
        out
    }
}

impl Drop for Buildah {
    fn drop(&mut self) {
        for args in [&["rm", "-a"][..], &["rmi", "-a", "-f"][..]] {
            let _ = self
                .cmd()
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        // overlay mounts (and chroot isolation's bind mounts) a killed build may leave
        let prefix = format!("{}/", self.dir.display());
        let mut mounts: Vec<String> = fs::read_to_string("/proc/self/mounts")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|m| m.starts_with(&prefix))
            .map(str::to_string)
            .collect();
        mounts.sort();
        for m in mounts.iter().rev() {
            let _ = Command::new("umount")
                .args(["-l", m])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn write(p: &Path, text: &str) {
    fs::write(p, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", p.display()));
}

// ---------------------------------------------------------------------------------------------
// Root filesystem comparison
// ---------------------------------------------------------------------------------------------

/// The kind of a directory entry, with what identifies it beyond metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Dir,
    File { size: u64 },
    Symlink { target: PathBuf },
    Fifo,
    Socket,
    CharDev { rdev: u64 },
    BlockDev { rdev: u64 },
}

impl Kind {
    fn name(&self) -> &'static str {
        match self {
            Kind::Dir => "directory",
            Kind::File { .. } => "regular file",
            Kind::Symlink { .. } => "symlink",
            Kind::Fifo => "fifo",
            Kind::Socket => "socket",
            Kind::CharDev { .. } => "char device",
            Kind::BlockDev { .. } => "block device",
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    kind: Kind,
    /// Permission bits with setuid/setgid/sticky (`mode & 0o7777`).
    mode: u32,
    uid: u32,
    gid: u32,
    /// (device, inode), for hardlink groups.
    ino: (u64, u64),
}

/// Every entry under `root`, keyed by its absolute path in the image (`/`, `/etc`, …).
fn scan(root: &Path) -> Result<BTreeMap<String, Entry>, String> {
    let mut out = BTreeMap::new();
    let mut todo = vec![(root.to_path_buf(), "/".to_string())];
    while let Some((path, name)) = todo.pop() {
        let meta = fs::symlink_metadata(&path)
            .map_err(|e| format!("cannot stat {}: {e}", path.display()))?;
        let ft = meta.file_type();
        let kind = if ft.is_dir() {
            let mut children: Vec<_> = fs::read_dir(&path)
                .map_err(|e| format!("cannot list {}: {e}", path.display()))?
                .collect::<Result<_, _>>()
                .map_err(|e| format!("cannot list {}: {e}", path.display()))?;
            children.sort_by_key(|c| c.file_name());
            for c in children {
                let child_name = if name == "/" {
                    format!("/{}", c.file_name().to_string_lossy())
                } else {
                    format!("{name}/{}", c.file_name().to_string_lossy())
                };
                todo.push((c.path(), child_name));
            }
            Kind::Dir
        } else if ft.is_file() {
            Kind::File { size: meta.len() }
        } else if ft.is_symlink() {
            Kind::Symlink {
                target: fs::read_link(&path)
                    .map_err(|e| format!("cannot read the link {}: {e}", path.display()))?,
            }
        } else if ft.is_fifo() {
            Kind::Fifo
        } else if ft.is_socket() {
            Kind::Socket
        } else if ft.is_char_device() {
            Kind::CharDev { rdev: meta.rdev() }
        } else if ft.is_block_device() {
            Kind::BlockDev { rdev: meta.rdev() }
        } else {
            return Err(format!("{}: unknown file type", path.display()));
        };
        out.insert(
            name,
            Entry {
                kind,
                mode: meta.mode() & 0o7777,
                uid: meta.uid(),
                gid: meta.gid(),
                ino: (meta.dev(), meta.ino()),
            },
        );
    }
    Ok(out)
}

/// For every regular file that shares its inode with others in the tree: the other paths.
fn hardlink_groups(entries: &BTreeMap<String, Entry>) -> BTreeMap<String, BTreeSet<String>> {
    let mut by_ino: BTreeMap<(u64, u64), BTreeSet<String>> = BTreeMap::new();
    for (p, e) in entries {
        if matches!(e.kind, Kind::File { .. }) {
            by_ino.entry(e.ino).or_default().insert(p.clone());
        }
    }
    let mut out = BTreeMap::new();
    for group in by_ino.values().filter(|g| g.len() > 1) {
        for p in group {
            let mut others = group.clone();
            others.remove(p);
            out.insert(p.clone(), others);
        }
    }
    out
}

/// Whether two files hold the same bytes (streamed; sizes are compared before).
fn same_contents(a: &Path, b: &Path) -> Result<bool, String> {
    let open = |p: &Path| {
        fs::File::open(p)
            .map(|f| BufReader::with_capacity(1 << 16, f))
            .map_err(|e| format!("cannot open {}: {e}", p.display()))
    };
    let (mut ra, mut rb) = (open(a)?, open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let na = read_full(&mut ra, &mut ba).map_err(|e| format!("{}: {e}", a.display()))?;
        let nb = read_full(&mut rb, &mut bb).map_err(|e| format!("{}: {e}", b.display()))?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn describe(e: &Entry) -> String {
    let extra = match &e.kind {
        Kind::File { size } => format!(", {size} bytes"),
        Kind::Symlink { target } => format!(" -> {}", target.display()),
        Kind::CharDev { rdev } | Kind::BlockDev { rdev } => format!(", rdev {rdev:#x}"),
        _ => String::new(),
    };
    format!(
        "{} {:04o} {}:{}{extra}",
        e.kind.name(),
        e.mode,
        e.uid,
        e.gid
    )
}

/// Every difference between the root filesystems `a` and `b` (unpacked images, e.g. `rootfs`
/// from [`crate::umoci_unpack`]), one line each, sorted by path; empty when they are equal.
/// Compared: the set of paths, file types, permission bits (with setuid, setgid, sticky),
/// owners (numeric uid:gid), regular files' contents, symlink targets, device numbers, and
/// which paths are hardlinks of each other. Not compared: timestamps, extended attributes.
/// A path present on one side only is reported once (its subtree's size is given, its entries
/// are not listed).
pub fn compare_rootfs(a: &Path, b: &Path) -> Vec<String> {
    compare_named(("a", a), ("b", b), &[])
}

/// [`compare_rootfs`] of ocibuild's root filesystem against buildah's for the same Dockerfile,
/// with [`BUILDAH_ADDITIONS`] tolerated on buildah's side; the report names both tools.
pub fn compare_with_buildah(ocibuild: &Path, buildah: &Path) -> Vec<String> {
    compare_named(
        ("ocibuild", ocibuild),
        ("buildah", buildah),
        BUILDAH_ADDITIONS,
    )
}

/// What buildah leaves in an image that is no part of the Dockerfile's semantics, and which a
/// comparison tolerates when it is only in buildah's tree and has exactly the shape given.
#[derive(Debug, Clone, Copy)]
pub struct Allowed {
    /// The absolute path in the image.
    pub path: &'static str,
    /// `"empty-file"` (an empty regular file, mode and owner ignored) or `"dir"` (a directory,
    /// empty or not, mode and owner ignored).
    pub shape: &'static str,
    /// Why buildah adds it.
    pub why: &'static str,
}

/// The allow-list for [`compare_with_buildah`]. Decided from what buildah 1.28 (Debian 12) with
/// `--isolation chroot` was observed to write on a base without these files (the `build-base`
/// image): after any RUN, the three files below appear as empty regular files (mode 0755) in
/// the layer. Nothing else of buildah's own showed up (no `/run/.containerenv`, no `/run/secrets`
/// with chroot isolation). Every entry says why it is not part of the Dockerfile's meaning.
pub const BUILDAH_ADDITIONS: &[Allowed] = &[
    Allowed {
        path: "/etc/hosts",
        shape: "empty-file",
        why: "buildah bind-mounts a generated hosts file here during each RUN and creates an \
              empty file as the mount point when the image has none; the stub is committed \
              with the layer (BuildKit removes its mount stubs). No instruction wrote it.",
    },
    Allowed {
        path: "/etc/hostname",
        shape: "empty-file",
        why: "the mount point of the generated hostname file bound in each RUN; the same stub \
              as /etc/hosts.",
    },
    Allowed {
        path: "/etc/resolv.conf",
        shape: "empty-file",
        why: "the mount point of the host's resolver configuration bound in each RUN; the same \
              stub as /etc/hosts.",
    },
];

fn allowed(list: &[Allowed], path: &str, e: &Entry) -> bool {
    list.iter().any(|a| {
        a.path == path
            && match a.shape {
                "empty-file" => e.kind == Kind::File { size: 0 },
                "dir" => e.kind == Kind::Dir,
                _ => false,
            }
    })
}

fn compare_named(a: (&str, &Path), b: (&str, &Path), only_b_allowed: &[Allowed]) -> Vec<String> {
    let (na, nb) = (a.0, b.0);
    let ea = match scan(a.1) {
        Ok(e) => e,
        Err(e) => return vec![format!("{na}: {e}")],
    };
    let eb = match scan(b.1) {
        Ok(e) => e,
        Err(e) => return vec![format!("{nb}: {e}")],
    };
    let (ha, hb) = (hardlink_groups(&ea), hardlink_groups(&eb));
    let mut diffs = Vec::new();
    let all: BTreeSet<&String> = ea.keys().chain(eb.keys()).collect();
    // subtrees (`/dir/`) whose root was reported already: their entries are not listed
    let mut skip: Vec<String> = Vec::new();
    let below = |side: &BTreeMap<String, Entry>, prefix: &str| {
        side.keys().filter(|k| k.starts_with(prefix)).count()
    };
    for p in all {
        if skip.iter().any(|s| p.starts_with(s.as_str())) {
            continue;
        }
        let host_path = |root: &Path| root.join(p.trim_start_matches('/'));
        match (ea.get(p), eb.get(p)) {
            (Some(x), None) | (None, Some(x)) => {
                let only = if ea.contains_key(p) { na } else { nb };
                if only == nb && allowed(only_b_allowed, p, x) {
                    continue;
                }
                let mut line = format!("{p}: only in {only} ({})", describe(x));
                if x.kind == Kind::Dir {
                    let side = if ea.contains_key(p) { &ea } else { &eb };
                    let prefix = format!("{}/", p.trim_end_matches('/'));
                    let n = below(side, &prefix);
                    if n > 0 {
                        line.push_str(&format!(" with {n} entries below it"));
                    }
                    skip.push(prefix);
                }
                diffs.push(line);
            }
            (Some(x), Some(y)) => {
                let mut what = Vec::new();
                if std::mem::discriminant(&x.kind) != std::mem::discriminant(&y.kind) {
                    let mut line = format!(
                        "{p}: {} in {na} ({}), {} in {nb} ({})",
                        x.kind.name(),
                        describe(x),
                        y.kind.name(),
                        describe(y)
                    );
                    let prefix = format!("{}/", p.trim_end_matches('/'));
                    let n = below(&ea, &prefix) + below(&eb, &prefix);
                    if n > 0 {
                        line.push_str(&format!(" ({n} entries below the directory)"));
                    }
                    diffs.push(line);
                    skip.push(prefix);
                    continue;
                }
                if x.mode != y.mode {
                    what.push(format!(
                        "mode {:04o} in {na}, {:04o} in {nb}",
                        x.mode, y.mode
                    ));
                }
                if (x.uid, x.gid) != (y.uid, y.gid) {
                    what.push(format!(
                        "owner {}:{} in {na}, {}:{} in {nb}",
                        x.uid, x.gid, y.uid, y.gid
                    ));
                }
                match (&x.kind, &y.kind) {
                    (Kind::File { size: sa }, Kind::File { size: sb }) => {
                        if sa != sb {
                            what.push(format!("contents differ: {sa} bytes in {na}, {sb} in {nb}"));
                        } else {
                            match same_contents(&host_path(a.1), &host_path(b.1)) {
                                Ok(true) => {}
                                Ok(false) => {
                                    what.push(format!("contents differ (both {sa} bytes)"))
                                }
                                Err(e) => what.push(format!("cannot compare contents: {e}")),
                            }
                        }
                        let (ga, gb) = (ha.get(p), hb.get(p));
                        if ga != gb {
                            let show = |g: Option<&BTreeSet<String>>| match g {
                                None => "not hardlinked".to_string(),
                                Some(g) => format!(
                                    "hardlinked with {}",
                                    g.iter().cloned().collect::<Vec<_>>().join(", ")
                                ),
                            };
                            what.push(format!("{} in {na}, {} in {nb}", show(ga), show(gb)));
                        }
                    }
                    (Kind::Symlink { target: ta }, Kind::Symlink { target: tb }) if ta != tb => {
                        what.push(format!(
                            "symlink target {} in {na}, {} in {nb}",
                            ta.display(),
                            tb.display()
                        ));
                    }
                    (Kind::CharDev { rdev: ra }, Kind::CharDev { rdev: rb })
                    | (Kind::BlockDev { rdev: ra }, Kind::BlockDev { rdev: rb })
                        if ra != rb =>
                    {
                        what.push(format!("device {ra:#x} in {na}, {rb:#x} in {nb}"));
                    }
                    _ => {}
                }
                if !what.is_empty() {
                    diffs.push(format!("{p}: {}", what.join("; ")));
                }
            }
            (None, None) => {}
        }
    }
    diffs
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn tree(ctx: &TestContext, name: &str) -> PathBuf {
        let r = ctx.tmp_dir(name);
        fs::create_dir_all(r.join("etc/sub")).unwrap();
        fs::write(r.join("etc/a"), "same").unwrap();
        fs::set_permissions(r.join("etc/a"), fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(r.join("etc/b"), "bytes").unwrap();
        fs::hard_link(r.join("etc/a"), r.join("etc/a-link")).unwrap();
        symlink("a", r.join("etc/l")).unwrap();
        fs::write(r.join("etc/sub/x"), "x").unwrap();
        r
    }

    #[test]
    fn equal_trees_have_no_differences() {
        let ctx = TestContext::new();
        let (a, b) = (tree(&ctx, "a"), tree(&ctx, "b"));
        assert_eq!(compare_rootfs(&a, &b), Vec::<String>::new());
    }

    #[test]
    fn every_kind_of_difference_is_reported() {
        let ctx = TestContext::new();
        let (a, b) = (tree(&ctx, "a"), tree(&ctx, "b"));
        fs::write(b.join("etc/b"), "BYTES").unwrap();
        fs::set_permissions(b.join("etc/a"), fs::Permissions::from_mode(0o600)).unwrap();
        fs::remove_file(b.join("etc/l")).unwrap();
        symlink("b", b.join("etc/l")).unwrap();
        fs::remove_dir_all(b.join("etc/sub")).unwrap();
        fs::write(b.join("etc/sub"), "").unwrap();
        fs::create_dir_all(a.join("only-a/deep")).unwrap();
        fs::set_permissions(a.join("only-a"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(b.join("only-b"), "").unwrap();
        fs::set_permissions(b.join("only-b"), fs::Permissions::from_mode(0o644)).unwrap();
        // the owner change needs root (the suite runs as root); otherwise only contents differ
        let me = fs::metadata(&a).unwrap();
        let owner = format!("{}:{}", me.uid(), me.gid());
        let b_owner = if crate::is_root() {
            std::os::unix::fs::chown(b.join("etc/b"), Some(1), Some(2)).unwrap();
            format!("owner {owner} in a, 1:2 in b; ")
        } else {
            String::new()
        };
        fs::remove_file(b.join("etc/a-link")).unwrap();
        fs::write(b.join("etc/a-link"), "same").unwrap();
        let d = compare_rootfs(&a, &b);
        let text = d.join("\n");
        for want in [
            "/etc/a: mode 0644 in a, 0600 in b; hardlinked with /etc/a-link in a, not hardlinked \
             in b"
                .to_string(),
            "/etc/a-link: hardlinked with /etc/a in a, not hardlinked in b".to_string(),
            format!("/etc/b: {b_owner}contents differ (both 5 bytes)"),
            "/etc/l: symlink target a in a, b in b".to_string(),
            "/etc/sub: directory in a".to_string(),
            format!("/only-a: only in a (directory 0755 {owner}) with 1 entries below it"),
            format!("/only-b: only in b (regular file 0644 {owner}, 0 bytes)"),
        ] {
            assert!(
                d.iter().any(|l| l.starts_with(want.as_str())),
                "missing `{want}` in:\n{text}"
            );
        }
        assert!(!text.contains("/only-a/deep"), "{text}");
        assert!(!text.contains("/etc/sub/x"), "{text}");
    }

    #[test]
    fn the_allow_list_applies_to_buildah_s_side_only() {
        let ctx = TestContext::new();
        let (a, b) = (tree(&ctx, "a"), tree(&ctx, "b"));
        let list = [Allowed {
            path: "/run/stub",
            shape: "empty-file",
            why: "test",
        }];
        fs::create_dir_all(b.join("run")).unwrap();
        fs::create_dir_all(a.join("run")).unwrap();
        fs::write(b.join("run/stub"), "").unwrap();
        assert!(compare_named(("o", &a), ("b", &b), &list).is_empty());
        fs::write(b.join("run/stub"), "x").unwrap();
        assert_eq!(compare_named(("o", &a), ("b", &b), &list).len(), 1);
        fs::remove_file(b.join("run/stub")).unwrap();
        fs::write(a.join("run/stub"), "").unwrap();
        assert_eq!(compare_named(("o", &a), ("b", &b), &list).len(), 1);
    }
}
