//! Azurite, Microsoft's Azure Storage emulator (npm `azurite`), as a real Blob Storage peer on a
//! free loopback port.
//!
//! [`start_azurite`] installs `azurite@`[`AZURITE_VERSION`] with the machine's npm into the
//! testkit cache (once; [`testkit_cache_dir`]), starts `azurite-blob` with its data under the
//! [`TestContext`], waits until the port accepts connections (a bounded poll, 60 s), and returns
//! an [`Azurite`] that kills the process on drop. Drop it before its context (declare it after
//! the context).
//!
//! Azurite 3.35 is the newest release that runs on Node 20 (later ones want Node 22). It is
//! started with `--disableTelemetry --skipApiVersionCheck --loose --silent`. Its account is the
//! well-known development account [`DEV_ACCOUNT`] with the key [`DEV_ACCOUNT_KEY`] that
//! Microsoft publishes for the emulator. npm reaches its registry through the machine's proxy, so
//! the host's CA bundle is passed to it (`NODE_EXTRA_CA_CERTS`, `npm_config_cafile`) when set up.
//!
//! A missing `node`/`npm` is a panic naming what to install: tests never skip.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{TestContext, command_line, require_tool, run};

/// The Azurite release installed (the newest that runs on Node 20).
pub const AZURITE_VERSION: &str = "3.35.0";
/// The emulator's well-known account.
pub const DEV_ACCOUNT: &str = "devstoreaccount1";
/// The emulator's well-known account key, published by Microsoft (not a secret).
pub const DEV_ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

pub(crate) const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// A running Azurite blob service, killed on drop.
#[derive(Debug)]
pub struct Azurite {
    /// `127.0.0.1:PORT`.
    pub host: String,
    /// The account's path-style endpoint: `http://127.0.0.1:PORT/devstoreaccount1`.
    pub account_url: String,
    /// Where Azurite keeps its data.
    pub location: PathBuf,
    log_path: PathBuf,
    child: Child,
}

impl Azurite {
    /// A connection string for the development account on this instance.
    pub fn connection_string(&self) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_ACCOUNT_KEY};BlobEndpoint={};",
            self.account_url
        )
    }

    /// Azurite's output so far, for failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path)
            .unwrap_or_else(|e| format!("<cannot read {}: {e}>", self.log_path.display()))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where the testkit keeps what it installs once for many runs: `$OCIBUILD_TESTKIT_CACHE`, else
/// `<cargo target dir>/ocibuild-testkit-cache` (found from the running test binary, so it lives
/// as long as the build), created when missing.
pub fn testkit_cache_dir() -> PathBuf {
    let dir = match std::env::var_os("OCIBUILD_TESTKIT_CACHE").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => {
            let exe = std::env::current_exe()
                .unwrap_or_else(|e| panic!("cannot find the running test binary: {e}"));
            // target/<profile>/deps/<test> → target
            let mut p = exe.parent().unwrap_or(Path::new(".")).to_path_buf();
            if p.file_name()
                .is_some_and(|n| n == "deps" || n == "examples")
            {
                p.pop();
            }
            p.pop();
            p.join("ocibuild-testkit-cache")
        }
    };
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// The `azurite-blob` launcher, installed with npm on first use (under a lock, so parallel test
/// processes install it once).
pub fn azurite_blob_bin() -> PathBuf {
    let cache = testkit_cache_dir();
    let dest = cache.join(format!("azurite-{AZURITE_VERSION}"));
    let bin = dest.join("node_modules/.bin/azurite-blob");
    if bin.is_file() {
        return bin;
    }
    let lock_path = cache.join(format!("azurite-{AZURITE_VERSION}.lock"));
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", lock_path.display()));
    lock.lock()
        .unwrap_or_else(|e| panic!("cannot lock {}: {e}", lock_path.display()));
    if bin.is_file() {
        return bin;
    }
    require_tool("node", "nodejs");
    let npm = require_tool("npm", "nodejs npm");
    let staging = cache.join(format!(
        "azurite-{AZURITE_VERSION}.partial-{}",
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir_all(&staging)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", staging.display()));
    let mut cmd = Command::new(npm);
    cmd.arg("install")
        .arg("--prefix")
        .arg(&staging)
        .args([
            "--no-audit",
            "--no-fund",
            "--no-save",
            "--omit=dev",
            "--no-update-notifier",
        ])
        .arg(format!("azurite@{AZURITE_VERSION}"))
        .stdin(Stdio::null());
    if Path::new(CA_BUNDLE).is_file() {
        if std::env::var_os("NODE_EXTRA_CA_CERTS").is_none() {
            cmd.env("NODE_EXTRA_CA_CERTS", CA_BUNDLE);
        }
        if std::env::var_os("npm_config_cafile").is_none() {
            cmd.env("npm_config_cafile", CA_BUNDLE);
        }
    }
    let out = run(&mut cmd);
    let staged_bin = staging.join("node_modules/.bin/azurite-blob");
    if !out.status.success() || !staged_bin.is_file() {
        let _ = fs::remove_dir_all(&staging);
        panic!(
            "installing Azurite with npm failed: `{}` exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}\n\
             Azurite comes from the npm registry; this test needs it and never skips",
            command_line(&cmd),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = fs::remove_dir_all(&dest);
    fs::rename(&staging, &dest).unwrap_or_else(|e| {
        panic!(
            "cannot move {} to {}: {e}",
            staging.display(),
            dest.display()
        )
    });
    bin
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0")
        .unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:0 to find a free port: {e}"));
    l.local_addr()
        .unwrap_or_else(|e| panic!("no local address: {e}"))
        .port()
}

/// Start Azurite's blob service on a free loopback port (see the module docs). Panics, with
/// Azurite's output, when it does not come up.
pub fn start_azurite(ctx: &TestContext) -> Azurite {
    let bin = azurite_blob_bin();
    let dir = ctx.tmp_dir(format!("azurite-{}", crate::next_id()));
    let location = dir.join("data");
    fs::create_dir_all(&location)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", location.display()));
    let mut last_log = String::new();
    for attempt in 0..8 {
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        let log_path = dir.join(format!("azurite-{attempt}.log"));
        let log = fs::File::create(&log_path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log_path.display()));
        let log2 = log
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot dup a file handle: {e}"));
        let mut cmd = Command::new(&bin);
        cmd.args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .arg("--location")
            .arg(&location)
            .args([
                "--disableTelemetry",
                "--skipApiVersionCheck",
                "--loose",
                "--silent",
            ])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{}`: {e}", command_line(&cmd)));
        let mut az = Azurite {
            host: host.clone(),
            account_url: format!("http://{host}/{DEV_ACCOUNT}"),
            location: location.clone(),
            log_path,
            child,
        };
        // Bounded poll: until the port accepts connections, the process exits, or 60 s pass.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match az.child.try_wait() {
                Ok(Some(status)) => {
                    last_log = az.log();
                    if last_log.contains("EADDRINUSE") {
                        break; // try another port
                    }
                    panic!(
                        "Azurite exited with {status} before listening on {host}: `{}`\n--- output ---\n{last_log}--- end ---",
                        command_line(&cmd)
                    );
                }
                Ok(None) => {}
                Err(e) => panic!("cannot wait for Azurite: {e}"),
            }
            let addr = host
                .parse()
                .unwrap_or_else(|e| panic!("bad address {host}: {e}"));
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return az;
            }
            if Instant::now() > deadline {
                let log = az.log();
                drop(az);
                panic!(
                    "Azurite did not listen on {host} within 60 s: `{}`\n--- output ---\n{log}--- end ---",
                    command_line(&cmd)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("Azurite found every port taken (8 attempts); last output:\n{last_log}")
}
