//! Real sandboxes (no mocks): a busybox-static rootfs, each tier forced in turn.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ocibuild_sandbox::SandboxError;
use ocibuild_sandbox::run::{Mount, Network, Outcome, RootfsSource, Spec, Tier, run};
use ocibuild_testkit::{TestContext, busybox_static};

const APPLETS: &[&str] = &[
    "sh", "id", "cat", "ls", "ps", "nc", "wget", "mount", "umount", "sleep", "echo", "touch", "rm",
    "mkdir", "stat", "readlink", "hostname", "test", "grep", "ln", "true", "false", "chmod",
    "uname", "env", "unshare", "pwd", "wc", "head", "dd",
];

/// Env flag: the test binary was re-executed as uid 65534 to run [`nobody_scenario`] in this dir.
const AS_NOBODY: &str = "OCIBUILD_SANDBOX_TEST_NOBODY_DIR";

/// A busybox rootfs (one lower dir) in `dir/lower`, an empty upper in `dir/upper`.
fn rootfs(dir: &Path) -> (PathBuf, PathBuf) {
    let lower = dir.join("lower");
    let upper = dir.join("upper");
    for d in ["bin", "etc", "proc", "dev", "tmp", "mnt", "root"] {
        fs::create_dir_all(lower.join(d)).unwrap();
    }
    fs::create_dir_all(&upper).unwrap();
    fs::copy(busybox_static(), lower.join("bin/busybox")).unwrap();
    for a in APPLETS {
        std::os::unix::fs::symlink("busybox", lower.join("bin").join(a)).unwrap();
    }
    fs::write(
        lower.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n",
    )
    .unwrap();
    fs::write(lower.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
    fs::write(lower.join("etc/keep"), "lower\n").unwrap();
    (lower, upper)
}

fn spec(lower: &Path, upper: &Path, script: &str) -> Spec {
    Spec {
        rootfs: RootfsSource::Dirs(vec![lower.to_path_buf()]),
        upper: upper.to_path_buf(),
        env: vec![("PATH".into(), "/bin".into())],
        cwd: "/".into(),
        args: vec!["sh".into(), "-c".into(), script.into()],
        capture: true,
        timeout: Some(Duration::from_secs(60)),
        helper: Some(PathBuf::from(env!("CARGO_BIN_EXE_sandbox-helper"))),
        ..Default::default()
    }
}

fn ok(spec: &Spec, tier: Tier) -> Outcome {
    let o = run(spec, tier).unwrap_or_else(|e| panic!("{tier}: {e}"));
    assert_eq!(
        o.status,
        0,
        "{tier}: status {}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn stdout(o: &Outcome) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const SANDBOX_TIERS: [Tier; 2] = [Tier::Userns, Tier::Chroot];

#[test]
fn exit_codes_and_output_come_back() {
    let ctx = TestContext::new();
    let (lower, upper) = rootfs(ctx.dir());
    for tier in SANDBOX_TIERS {
        let o = run(
            &spec(&lower, &upper, "echo out; echo err >&2; exit 7"),
            tier,
        )
        .unwrap();
        assert_eq!((o.status, o.tier), (7, tier));
        assert!(
            o.notes
                .iter()
                .all(|n| !n.contains("seccomp") && !n.contains("chroot")),
            "{tier}: {:?}",
            o.notes
        );
        assert_eq!(o.stdout, b"out\n");
        assert_eq!(o.stderr, b"err\n");
        let o = run(&spec(&lower, &upper, "kill -9 $$"), tier).unwrap();
        assert_eq!(o.status, 128 + 9, "{tier}");
    }
    // Host tier: no isolation, the command runs on the host.
    let mut s = spec(&lower, &upper, "echo out; echo err >&2; exit 7");
    s.args[0] = busybox_static().to_string_lossy().into_owned();
    s.args.insert(1, "sh".into());
    let o = run(&s, Tier::Host).unwrap();
    assert_eq!(
        (o.status, o.stdout.as_slice(), o.stderr.as_slice()),
        (7, &b"out\n"[..], &b"err\n"[..])
    );
}

#[test]
fn env_cwd_user_and_hostname_are_applied() {
    let ctx = TestContext::new();
    let (lower, upper) = rootfs(ctx.dir());
    for tier in SANDBOX_TIERS {
        let mut s = spec(
            &lower,
            &upper,
            "env | grep -v '^PWD=' | grep -v '^SHLVL=' | grep -v '^_='; pwd; id -u; hostname",
        );
        s.env.push(("SECRET".into(), "s3cret value".into()));
        s.cwd = "/work/dir".into();
        s.hostname = Some("builder".into());
        let out = stdout(&ok(&s, tier));
        assert_eq!(
            out, "PATH=/bin\nSECRET=s3cret value\n/work/dir\n0\nbuilder\n",
            "{tier}"
        );
    }
    let mut s = spec(&lower, &upper, "id -u; id -g");
    s.user = Some("nobody".into());
    assert_eq!(stdout(&ok(&s, Tier::Chroot)), "65534\n65534\n");
    // As root the userns tier maps a full id range (identity), so another user works there too.
    // (As an unprivileged user without an /etc/subuid range only uid 0 is mapped: see the nobody test.)
    assert_eq!(stdout(&ok(&s, Tier::Userns)), "65534\n65534\n");
}

#[test]
fn host_files_are_invisible_and_escapes_fail() {
    let ctx = TestContext::new();
    let (lower, upper) = rootfs(ctx.dir());
    let marker = ctx.dir().join("host-marker");
    fs::write(&marker, "host secret").unwrap();
    std::os::unix::fs::symlink(&marker, lower.join("escape")).unwrap();
    std::os::unix::fs::symlink(ctx.dir(), lower.join("escape-dir")).unwrap();
    let m = marker.display();
    let script = format!(
        "test -e {m} && echo VISIBLE; cat /proc/1/root{m} 2>/dev/null && echo PROC1ROOT; \
         cat /escape 2>/dev/null && echo SYMLINK; ls /escape-dir/ 2>/dev/null | grep -q host-marker && echo SYMLINKDIR; \
         cat /proc/1/root/etc/keep 2>/dev/null && echo PROC1-ROOT; cat /etc/keep; \
         mount -t tmpfs t /mnt 2>/dev/null && echo MOUNTED; \
         mount --bind / /mnt 2>/dev/null && echo BOUND; \
         unshare -U true 2>/dev/null && echo UNSHARED; \
         echo done"
    );
    for tier in SANDBOX_TIERS {
        let o = ok(&spec(&lower, &upper, &script), tier);
        // PID 1 is the sandbox's init: not dumpable, so even its /proc/1/root is closed.
        assert_eq!(
            stdout(&o),
            "lower\ndone\n",
            "{tier}: stderr {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// The step's commands probing PID 1 (the sandbox's init) and the host: each line printed is a
/// way out that worked. CVE-2019-5736 / CVE-2024-21626 shapes: the init's exe, descriptors and
/// mapped files must lead nowhere; writes land only in the upper dir; the state dir is unseen.
/// (As an unprivileged user the init's `/proc/1/fd` belongs to the namespace's root, so the step
/// may list the descriptor numbers; it can neither resolve nor open one.)
fn boundary_script(host_paths: &[&Path], outside: &Path) -> String {
    let mut s = String::from(
        "readlink /proc/1/exe 2>/dev/null && echo EXE-LINK; \
         dd if=/proc/1/exe of=/dev/null bs=1 count=1 2>/dev/null && echo EXE-READ; \
         for n in $(ls /proc/1/fd/ 2>/dev/null) 0 1 2 3 4 5 6 7 8 9 10 11 12; do \
           readlink /proc/1/fd/$n 2>/dev/null && echo FD-LINK-$n; \
           (echo x >> /proc/1/fd/$n) 2>/dev/null && echo FD-WRITE-$n; \
         done; \
         ls /proc/1/map_files/ 2>/dev/null | head -1 | grep -q . && echo MAP-FILES; \
         for f in /proc/1/map_files/*; do dd if=$f of=/dev/null bs=1 count=1 2>/dev/null && echo MAP-READ; done; \
         grep / /proc/1/maps 2>/dev/null | head -1 | grep -q . && echo MAPS; \
         cat /proc/1/environ 2>/dev/null | head -c1 | grep -q . && echo ENVIRON; \
         ls /proc/1/cwd/ 2>/dev/null && echo CWD; \
         ",
    );
    for p in host_paths {
        let p = p.display();
        s.push_str(&format!(
            "test -e {p} && echo HOST-VISIBLE:{p}; ls {p} 2>/dev/null && echo HOST-LIST:{p}; "
        ));
    }
    let o = outside.display();
    s.push_str(&format!(
        "mkdir -p {o} 2>/dev/null; echo escaped > {o}/written 2>/dev/null; \
         for p in /proc/self/fd/1 /proc/self/fd/2; do readlink $p | grep -q '^/' && echo STD-IS-A-HOST-FILE; done; \
         echo done"
    ));
    s
}

/// Every tier this machine supports (userns and chroot here; userns as an unprivileged user in
/// [`scenario`]): nothing in `/proc/1` leads to the host.
#[test]
fn the_init_leads_nowhere_on_the_host() {
    let ctx = TestContext::new();
    let (lower, upper) = rootfs(ctx.dir());
    let outside = ctx.dir().join("outside");
    let script = boundary_script(
        &[ctx.dir(), Path::new(env!("CARGO_BIN_EXE_sandbox-helper"))],
        &outside,
    );
    for tier in SANDBOX_TIERS {
        let o = ok(&spec(&lower, &upper, &script), tier);
        assert_eq!(
            stdout(&o),
            "done\n",
            "{tier}: stderr {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(!outside.join("written").exists(), "{tier}");
        // (the write went to the step's own /tmp or its upper dir: where exactly depends on
        // TMPDIR; writes_land_only_in_upper_* test the upper dir)
        fs::remove_dir_all(&upper).unwrap();
        fs::create_dir(&upper).unwrap();
        // nothing but lower/, upper/ and test files next to them (no state dir left behind, no
        // error.json written by the step)
        let left: Vec<String> = fs::read_dir(ctx.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "lower" && n != "upper")
            .collect();
        assert!(left.is_empty(), "{tier}: {left:?}");
    }
}

/// PID 1's exe is a sealed in-memory copy: with the step's root the checks above already pass,
/// so look from the host (the init's pid is in the state dir; we are its owner).
#[test]
fn the_init_runs_from_a_sealed_memfd() {
    let ctx = TestContext::new();
    let (lower, upper) = rootfs(ctx.dir());
    // the step waits on a FIFO the test releases after it looked at the init
    // (a bind mount: through overlayfs the FIFO would be another inode)
    let sync = ctx.dir().join("sync");
    fs::create_dir(&sync).unwrap();
    let fifo = sync.join("release");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
    let mut s = spec(
        &lower,
        &upper,
        "echo started; read x < /mnt/release; echo $x",
    );
    s.mounts.push(Mount::Bind {
        src: sync.clone(),
        dest: "/mnt".into(),
        readonly: false,
    });
    for tier in SANDBOX_TIERS {
        let seen = std::sync::Mutex::new(String::new());
        let o = ocibuild_sandbox::run::run_streaming(&s, tier, &mut |_, line| {
            if line != "started" {
                return;
            }
            let init = find_init(ctx.dir());
            let exe = fs::read_link(format!("/proc/{init}/exe")).unwrap();
            *seen.lock().unwrap() = exe.display().to_string();
            let fds: Vec<String> = fs::read_dir(format!("/proc/{init}/fd"))
                .unwrap()
                .map(|e| {
                    fs::read_link(e.unwrap().path())
                        .unwrap()
                        .display()
                        .to_string()
                })
                .collect();
            assert!(
                fds.iter().all(|f| !f.starts_with('/') || f == "/dev/null"),
                "{tier}: the init holds host files {fds:?}"
            );
            fs::write(&fifo, "released\n").unwrap();
        })
        .unwrap();
        assert_eq!(stdout(&o), "started\nreleased\n", "{tier}");
        let exe = seen.into_inner().unwrap();
        assert!(
            exe.starts_with("/memfd:ocibuild-sandbox-init"),
            "{tier}: the init runs from {exe}"
        );
        assert!(
            !o.notes.iter().any(|n| n.contains("sealed")),
            "{tier}: {:?}",
            o.notes
        );
    }
}

/// The host pid of the running sandbox's init (`init.pid` in its state dir under `dir`).
fn find_init(dir: &Path) -> u32 {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path().join("init.pid");
        if let Ok(s) = fs::read_to_string(&p) {
            return s.trim().parse().unwrap();
        }
    }
    panic!("no init.pid under {}", dir.display());
}

#[test]
fn bind_sources_with_dotdot_or_relative_are_rejected() {
    let ctx = TestContext::new();
    let (lower, upper) = rootfs(ctx.dir());
    for src in ["/tmp/../etc", "relative/dir"] {
        let mut s = spec(&lower, &upper, "true");
        s.mounts = vec![Mount::Bind {
            src: PathBuf::from(src),
            dest: "/x".into(),
            readonly: true,
        }];
        for tier in [Tier::Userns, Tier::Chroot, Tier::Host] {
            assert!(
                matches!(run(&s, tier), Err(SandboxError::Spec(_))),
                "{src} {tier}"
            );
        }
    }
    let mut s = spec(&lower, &upper, "true");
    s.mounts = vec![Mount::Tmpfs {
        dest: "/a/../../b".into(),
    }];
    assert!(matches!(run(&s, Tier::Userns), Err(SandboxError::Spec(_))));
}

#[test]
fn mounts_bind_ro_rw_tmpfs_and_cache() {
    let ctx = TestContext::new();
    let (lower, upper) = rootfs(ctx.dir());
    let ro = ctx.tmp_dir("ro");
    fs::write(ro.join("f"), "ro-content").unwrap();
    let rw = ctx.tmp_dir("rw");
    let cache = ctx.dir().join("cache");
    // A symlinked destination resolves inside the rootfs, never onto the host.
    std::os::unix::fs::symlink("/", lower.join("hostroot")).unwrap();
    for tier in SANDBOX_TIERS {
        let mut s = spec(
            &lower,
            &upper,
            "cat /in/ro/f; echo; touch /in/ro/g 2>/dev/null && echo RO-WRITABLE; echo w > /in/rw/f; \
             echo t > /scratch/t; echo c >> /var/cache/c; ls /hostroot/srv",
        );
        s.mounts = vec![
            Mount::Bind {
                src: ro.clone(),
                dest: "/in/ro".into(),
                readonly: true,
            },
            Mount::Bind {
                src: rw.clone(),
                dest: "/in/rw".into(),
                readonly: false,
            },
            Mount::Tmpfs {
                dest: "/scratch".into(),
            },
            Mount::Cache {
                src: cache.clone(),
                dest: "/var/cache".into(),
            },
            Mount::Bind {
                src: ro.clone(),
                dest: "/hostroot/srv".into(),
                readonly: true,
            },
        ];
        let o = ok(&s, tier);
        assert_eq!(stdout(&o), "ro-content\nf\n", "{tier}");
        assert_eq!(fs::read_to_string(rw.join("f")).unwrap(), "w\n");
        assert!(!ro.join("g").exists());
        assert!(!Path::new("/srv/f").exists());
        // Mount points the sandbox created do not show up as changes; the tmpfs content neither.
        assert!(
            !upper.join("scratch").exists() && !upper.join("in").exists(),
            "{tier}: {:?}",
            list(&upper)
        );
    }
    assert_eq!(fs::read_to_string(cache.join("c")).unwrap(), "c\nc\n");
}

fn list(dir: &Path) -> Vec<String> {
    walk(dir)
        .into_iter()
        .map(|p| p.strip_prefix(dir).unwrap().display().to_string())
        .collect()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            out.push(e.path());
            if e.file_type().unwrap().is_dir() {
                out.extend(walk(&e.path()));
            }
        }
    }
    out.sort();
    out
}

fn writes_land_in_upper(tier: Tier, force_copy: bool) {
    let ctx = TestContext::new();
    let (lower, upper) = rootfs(ctx.dir());
    let before = list(&lower);
    let mut s = spec(
        &lower,
        &upper,
        "echo new > /etc/new; echo changed > /etc/keep; rm /etc/group; mkdir -p /opt/x; id -u",
    );
    s.force_copy = force_copy;
    let o = ok(&s, tier);
    assert_eq!(stdout(&o), "0\n");
    assert_eq!(o.overlay, !force_copy, "{tier}: notes {:?}", o.notes);
    // Lower unchanged.
    assert_eq!(list(&lower), before);
    assert_eq!(
        fs::read_to_string(lower.join("etc/keep")).unwrap(),
        "lower\n"
    );
    assert!(lower.join("etc/group").exists());
    // Changes in upper, and only those.
    assert_eq!(fs::read_to_string(upper.join("etc/new")).unwrap(), "new\n");
    assert_eq!(
        fs::read_to_string(upper.join("etc/keep")).unwrap(),
        "changed\n"
    );
    assert!(upper.join("opt/x").is_dir());
    let whiteout = if force_copy {
        upper.join("etc/.wh.group").is_file()
    } else {
        fs::symlink_metadata(upper.join("etc/group"))
            .map(|m| m.rdev() == 0 && !m.is_file())
            .unwrap_or(false)
    };
    assert!(
        whiteout,
        "{tier}: no whiteout for /etc/group: {:?}",
        list(&upper)
    );
    assert_eq!(
        list(&upper),
        ["etc", "etc/group", "etc/keep", "etc/new", "opt", "opt/x"]
            .map(|p| {
                if force_copy && p == "etc/group" {
                    "etc/.wh.group".to_string()
                } else {
                    p.to_string()
                }
            })
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    );
    // Files written inside are owned by the invoking user on the host.
    assert_eq!(
        fs::metadata(upper.join("etc/new")).unwrap().uid(),
        nix::unistd::geteuid().as_raw()
    );
}

#[test]
fn writes_land_only_in_upper_userns() {
    writes_land_in_upper(Tier::Userns, false);
}

#[test]
fn writes_land_only_in_upper_chroot() {
    writes_land_in_upper(Tier::Chroot, false);
}

#[test]
fn writes_land_only_in_upper_copy_fallback() {
    writes_land_in_upper(Tier::Userns, true);
}

#[test]
fn network_none_cannot_reach_a_host_listener() {
    let ctx = TestContext::new();
    let (lower, upper) = rootfs(ctx.dir());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let script = format!(
        "echo hello | nc -w 2 127.0.0.1 {port} && echo CONNECTED; ip link 2>/dev/null | grep -c UP || true"
    );
    for tier in SANDBOX_TIERS {
        let o = ok(&spec(&lower, &upper, &script), tier);
        assert!(!stdout(&o).contains("CONNECTED"), "{tier}: {}", stdout(&o));
        assert!(
            listener.accept().is_err(),
            "{tier}: the listener got a connection"
        );
    }
    // Positive control: with the host's network the same connect works.
    listener.set_nonblocking(false).unwrap();
    for tier in SANDBOX_TIERS {
        let l = listener.try_clone().unwrap();
        // Serve one connection: read the line, then close (so nc sees EOF and exits).
        let server = std::thread::spawn(move || {
            let (c, _) = l.accept().unwrap();
            let mut line = String::new();
            std::io::BufRead::read_line(&mut std::io::BufReader::new(c), &mut line).unwrap();
            line
        });
        let mut s = spec(
            &lower,
            &upper,
            &format!("echo hello | nc -w 5 127.0.0.1 {port} && echo CONNECTED"),
        );
        s.network = Network::Host;
        let o = ok(&s, tier);
        assert!(
            stdout(&o).contains("CONNECTED"),
            "{tier}: {} {}",
            stdout(&o),
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(server.join().unwrap(), "hello\n");
        assert!(
            upper.read_dir().unwrap().next().is_none(),
            "resolv.conf/hosts mount points left in upper: {:?}",
            list(&upper)
        );
    }
}

#[test]
fn host_pids_are_invisible() {
    let ctx = TestContext::new();
    let (lower, upper) = rootfs(ctx.dir());
    for tier in SANDBOX_TIERS {
        let o = ok(
            &spec(
                &lower,
                &upper,
                "ls /proc | grep -E '^[0-9]+$' | wc -l; echo $$; ps -o pid,comm | wc -l",
            ),
            tier,
        );
        let lines: Vec<u32> = stdout(&o)
            .lines()
            .map(|l| l.trim().parse().unwrap())
            .collect();
        // PID 1 (the sandbox's init), sh, ls/grep/wc of the pipeline: a handful, never the host's.
        assert!(lines[0] <= 6, "{tier}: {} pids visible", lines[0]);
        assert_eq!(
            lines[1], 2,
            "{tier}: the step is PID 2 (PID 1 is the sandbox init)"
        );
        assert!(lines[2] <= 6, "{tier}: ps shows {} lines", lines[2]);
    }
}

fn marker_processes(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(c) = fs::read(e.path().join("cmdline"))
            && String::from_utf8_lossy(&c)
                .replace('\0', " ")
                .contains(marker)
        {
            found.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    found
}

#[test]
fn a_timeout_kills_the_whole_tree() {
    let ctx = TestContext::new();
    let (lower, upper) = rootfs(ctx.dir());
    for (i, tier) in [Tier::Userns, Tier::Chroot, Tier::Host]
        .into_iter()
        .enumerate()
    {
        let marker = format!("{}{}", 7_000_000 + std::process::id() % 1_000_000, i);
        let script = format!("sleep {marker} & sleep {marker}");
        let mut s = spec(&lower, &upper, &script);
        s.timeout = Some(Duration::from_millis(700));
        if tier == Tier::Host {
            s.args = vec![
                busybox_static().to_string_lossy().into_owned(),
                "sh".into(),
                "-c".into(),
                script.replace("sleep", &format!("{} sleep", busybox_static().display())),
            ];
        }
        let t0 = std::time::Instant::now();
        let r = run(&s, tier);
        assert!(
            matches!(r, Err(SandboxError::Timeout { .. })),
            "{tier}: {r:?}"
        );
        assert!(t0.elapsed() < Duration::from_secs(20));
        let mut left = marker_processes(&format!("sleep {marker}"));
        for _ in 0..50 {
            if left.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
            left = marker_processes(&format!("sleep {marker}"));
        }
        assert!(left.is_empty(), "{tier}: stray processes {left:?}");
    }
}

/// The userns tier as an unprivileged user (uid 65534): run [`nobody_scenario`] from this test
/// binary under `setpriv`.
#[test]
fn userns_as_unprivileged_user() {
    if !nix::unistd::geteuid().is_root() {
        // Already unprivileged: run the scenario directly.
        let ctx = TestContext::new();
        scenario(ctx.dir());
        return;
    }
    let setpriv = ocibuild_testkit::require_tool("setpriv", "util-linux");
    let ctx = TestContext::new();
    nix::unistd::chown(
        ctx.dir(),
        Some(nix::unistd::Uid::from_raw(65534)),
        Some(nix::unistd::Gid::from_raw(65534)),
    )
    .unwrap();
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(setpriv)
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&exe)
        .args([
            "--exact",
            "nobody_scenario",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(AS_NOBODY, ctx.dir())
        .env("TMPDIR", ctx.dir())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "as uid 65534: {text}");
    assert!(
        text.contains("1 passed") && text.contains("NOBODY-SCENARIO-RAN"),
        "{text}"
    );
}

/// Runs only when re-executed by [`userns_as_unprivileged_user`].
#[test]
fn nobody_scenario() {
    let Some(dir) = std::env::var_os(AS_NOBODY) else {
        return;
    };
    assert_eq!(nix::unistd::geteuid().as_raw(), 65534);
    scenario(Path::new(&dir));
    eprintln!("NOBODY-SCENARIO-RAN");
}

fn scenario(dir: &Path) {
    let me = nix::unistd::geteuid().as_raw();
    let (lower, upper) = rootfs(dir);
    let marker = dir.join("marker");
    fs::write(&marker, "x").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let script = format!(
        "id -u; echo hi > /root/f; test -e {} && echo VISIBLE; echo x | nc -w 2 127.0.0.1 {port} && echo CONNECTED; \
         ls /proc | grep -cE '^[0-9]+$'; mount -t tmpfs t /mnt 2>/dev/null && echo MOUNTED; exit 3",
        marker.display()
    );
    let o = run(&spec(&lower, &upper, &script), Tier::Userns).unwrap();
    let out = stdout(&o);
    assert_eq!(o.status, 3, "{out} {}", String::from_utf8_lossy(&o.stderr));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "0", "{out}");
    assert!(
        !out.contains("VISIBLE") && !out.contains("CONNECTED") && !out.contains("MOUNTED"),
        "{out}"
    );
    assert!(lines[1].parse::<u32>().unwrap() <= 6, "{out}");
    assert!(listener.accept().is_err());
    let f = upper.join("root/f");
    assert_eq!(fs::read_to_string(&f).unwrap(), "hi\n");
    assert_eq!(
        fs::metadata(&f).unwrap().uid(),
        me,
        "files written inside belong to the invoking user"
    );
    assert!(!lower.join("root/f").exists());
    // nothing in /proc/1 leads to the host here either
    let outside = dir.join("outside");
    let o = run(
        &spec(&lower, &upper, &boundary_script(&[dir], &outside)),
        Tier::Userns,
    )
    .unwrap();
    assert_eq!(
        (o.status, stdout(&o).as_str()),
        (0, "done\n"),
        "as {me}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!outside.join("written").exists());
    // The timeout kills the tree here too.
    let m = format!("{}", 8_000_000 + std::process::id() % 1_000_000);
    let mut s = spec(&lower, &upper, &format!("sleep {m} & sleep {m}"));
    s.timeout = Some(Duration::from_millis(500));
    assert!(matches!(
        run(&s, Tier::Userns),
        Err(SandboxError::Timeout { .. })
    ));
    std::thread::sleep(Duration::from_millis(300));
    assert!(marker_processes(&format!("sleep {m}")).is_empty());
}
