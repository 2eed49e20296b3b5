//! A real CNCF `docker-registry` (distribution 2.8, Debian package `docker-registry`) on a free
//! loopback port, and a bearer-token server fixture that issues JWTs the real registry verifies.
//!
//! [`start_registry`] writes a config under the [`TestContext`] (storage included, deletes
//! enabled), starts `docker-registry serve`, waits until `GET /v2/` answers, and returns a
//! [`Registry`] that kills the process on drop. Drop the registry before its context (declare it
//! after the context). Setups, through [`RegistryOptions`]:
//!
//! - plain HTTP (the default);
//! - `tls`: a CA generated for the test (openssl) and a server certificate with the SAN
//!   `IP:127.0.0.1,DNS:localhost`; [`Registry::ca_cert`] and [`Registry::cert_dir`] (laid out as
//!   `certs.d/<host>/ca.crt`) say how to trust it;
//! - `self_signed`: HTTPS with one self-signed certificate (RSA 2048, `basicConstraints
//!   CA:TRUE`, SAN `IP:127.0.0.1,DNS:localhost`), what `openssl req -x509 -newkey rsa:2048 -nodes
//!   -addext subjectAltName=…` makes from Docker's documentation; [`Registry::ca_cert`] and
//!   [`Registry::cert_dir`] then hold that very certificate;
//! - `htpasswd: Some((user, pass))` without `token_auth`: basic auth (bcrypt entries, the only
//!   kind distribution accepts);
//! - `token_auth`: `auth: token` pointing at a [`TokenServer`] started for the registry; the
//!   token server's user is `htpasswd` when given (else [`DEFAULT_TOKEN_USER`]), and anonymous
//!   pull is granted when `anonymous_pull` is set.
//!
//! TLS combines with either kind of auth.

use std::collections::HashMap;
use std::fs;
use std::io::{BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use crate::proxy::{Head, accept_loop, read_head, stop_accept_loop, write_simple_response};
use crate::{TestContext, command_line, require_tool, run, run_ok};

/// The token server's user when [`RegistryOptions::htpasswd`] does not name one.
pub const DEFAULT_TOKEN_USER: (&str, &str) = ("ocibuild-token-user", "token-user-password");
/// The `service` the token registry announces and the tokens are issued for.
pub const TOKEN_SERVICE: &str = "ocibuild-test-registry";
/// The `iss` of the tokens, trusted by the token registry.
pub const TOKEN_ISSUER: &str = "ocibuild-test-token-issuer";

/// How to set up the registry; the default is plain HTTP without auth.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryOptions {
    /// HTTPS with a CA generated for the test.
    pub tls: bool,
    /// HTTPS with a self-signed certificate (`CA:TRUE`) and no CA (implies `tls`).
    pub self_signed: bool,
    /// Basic auth with this user (bcrypt htpasswd); with `token_auth`, the token server's user.
    pub htpasswd: Option<(String, String)>,
    /// Bearer tokens from a [`TokenServer`] started for this registry.
    pub token_auth: bool,
    /// With `token_auth`: anonymous clients get pull tokens (else the token server answers 401).
    pub anonymous_pull: bool,
}

/// A running `docker-registry`, killed on drop.
#[derive(Debug)]
pub struct Registry {
    /// `127.0.0.1:PORT`.
    pub host: String,
    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub url: String,
    /// The test CA's certificate (PEM) with `tls`.
    pub ca_cert: Option<PathBuf>,
    /// With `tls`: `…/certs.d/127.0.0.1:PORT`, holding `ca.crt` (what skopeo's `--cert-dir` and
    /// `/etc/containers/certs.d/<host>/` look like).
    pub cert_dir: Option<PathBuf>,
    /// With `tls`: the `certs.d` dir itself (the parent of `cert_dir`), to stand in for
    /// `/etc/containers/certs.d` or `/etc/docker/certs.d`.
    pub certs_d: Option<PathBuf>,
    /// The user that may push and pull (htpasswd, or the token server's user).
    pub creds: Option<(String, String)>,
    /// The token server, with `token_auth`.
    pub token_server: Option<TokenServer>,
    /// The registry's storage root (filesystem driver).
    pub storage: PathBuf,
    /// The registry's config file.
    pub config: PathBuf,
    log_path: PathBuf,
    child: Child,
}

impl Registry {
    /// `docker://HOST/REPO[:TAG]` for skopeo.
    pub fn docker_ref(&self, repo_and_tag: &str) -> String {
        format!("docker://{}/{repo_and_tag}", self.host)
    }

    /// skopeo flags for commands that take unprefixed TLS flags (`inspect`, `list-tags`,
    /// `delete`, `login`): `--tls-verify=false` for plain HTTP, `--cert-dir DIR` with TLS.
    pub fn skopeo_tls_args(&self) -> Vec<String> {
        self.tls_args("")
    }

    /// `--creds USER:PASS` when the registry has a user, else nothing.
    pub fn skopeo_creds_args(&self) -> Vec<String> {
        self.creds_args("")
    }

    /// TLS and creds flags for this registry as the source of `skopeo copy` (`--src-…`).
    pub fn skopeo_src_args(&self) -> Vec<String> {
        let mut v = self.tls_args("src-");
        v.extend(self.creds_args("src-"));
        v
    }

    /// TLS and creds flags for this registry as the destination of `skopeo copy` (`--dest-…`).
    pub fn skopeo_dest_args(&self) -> Vec<String> {
        let mut v = self.tls_args("dest-");
        v.extend(self.creds_args("dest-"));
        v
    }

    /// `--cacert CA` with TLS, else nothing.
    pub fn curl_tls_args(&self) -> Vec<String> {
        match &self.ca_cert {
            Some(ca) => vec!["--cacert".into(), ca.display().to_string()],
            None => Vec::new(),
        }
    }

    fn tls_args(&self, prefix: &str) -> Vec<String> {
        match &self.cert_dir {
            Some(dir) => vec![format!("--{prefix}cert-dir"), dir.display().to_string()],
            None => vec![format!("--{prefix}tls-verify=false")],
        }
    }

    fn creds_args(&self, prefix: &str) -> Vec<String> {
        match &self.creds {
            Some((u, p)) => vec![format!("--{prefix}creds"), format!("{u}:{p}")],
            None => Vec::new(),
        }
    }

    /// The registry's stderr and stdout so far (access log included), for failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path)
            .unwrap_or_else(|e| format!("<cannot read {}: {e}>", self.log_path.display()))
    }

    /// The registry process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start a registry as `opts` says (see the module docs). Panics, with the registry's log, when
/// it does not come up.
pub fn start_registry(ctx: &TestContext, opts: RegistryOptions) -> Registry {
    let binary = require_tool("docker-registry", "docker-registry");
    require_tool("curl", "curl");
    let dir = ctx.tmp_dir(format!("registry-{}", crate::next_id()));
    let storage = dir.join("storage");
    fs::create_dir_all(&storage)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", storage.display()));

    let tls = if opts.self_signed {
        Some(make_self_signed_cert(&dir.join("tls")))
    } else {
        opts.tls.then(|| make_tls_certs(&dir.join("tls")))
    };
    let mut creds = opts.htpasswd.clone();
    let mut token_server = None;
    let auth_yaml = if opts.token_auth {
        let user = opts.htpasswd.clone().unwrap_or_else(|| {
            (
                DEFAULT_TOKEN_USER.0.to_string(),
                DEFAULT_TOKEN_USER.1.to_string(),
            )
        });
        creds = Some(user.clone());
        let ts = start_token_server_in(
            &dir.join("token"),
            TokenServerOptions {
                user: Some(user),
                anonymous_pull: opts.anonymous_pull,
            },
        );
        let yaml = format!(
            "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
            q(&ts.realm),
            q(&ts.service),
            q(&ts.issuer),
            q(&ts.root_cert_bundle.display().to_string())
        );
        token_server = Some(ts);
        yaml
    } else if let Some((user, pass)) = &opts.htpasswd {
        let htpasswd = require_tool("htpasswd", "apache2-utils");
        // distribution accepts only bcrypt entries
        let out = run_ok(Command::new(htpasswd).args(["-Bbn", user, pass]));
        let file = dir.join("htpasswd");
        fs::write(&file, &out.stdout)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", file.display()));
        format!(
            "auth:\n  htpasswd:\n    realm: ocibuild-test\n    path: {}\n",
            q(&file.display().to_string())
        )
    } else {
        String::new()
    };
    let tls_yaml = match &tls {
        Some(t) => format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            q(&t.server_cert.display().to_string()),
            q(&t.server_key.display().to_string())
        ),
        None => String::new(),
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let secret = format!(
        "{:x}{:x}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
        std::process::id()
    );

    let mut last_log = String::new();
    for attempt in 0..8 {
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        let config = dir.join("config.yml");
        let yaml = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  \
             cache:\n    blobdescriptor: inmemory\n  maintenance:\n    uploadpurging:\n      \
             enabled: false\n\
             http:\n  addr: {host}\n  secret: {secret}\n  headers:\n    \
             X-Content-Type-Options: [nosniff]\n{tls_yaml}{auth_yaml}",
            q(&storage.display().to_string())
        );
        fs::write(&config, yaml)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", config.display()));
        let log_path = dir.join(format!("registry-{attempt}.log"));
        let log = fs::File::create(&log_path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log_path.display()));
        let log2 = log
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot dup a file handle: {e}"));
        let mut cmd = Command::new(&binary);
        cmd.arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{}`: {e}", command_line(&cmd)));
        let url = format!("{scheme}://{host}");
        let mut reg = Registry {
            host: host.clone(),
            url: url.clone(),
            ca_cert: tls.as_ref().map(|t| t.ca_cert.clone()),
            cert_dir: None,
            certs_d: None,
            creds: creds.clone(),
            token_server: None,
            storage: storage.clone(),
            config: config.clone(),
            log_path,
            child,
        };
        match wait_ready(&mut reg) {
            Ready::Yes => {
                if let Some(t) = &tls {
                    let certs_d = dir.join("certs.d");
                    let host_dir = certs_d.join(&host);
                    fs::create_dir_all(&host_dir)
                        .unwrap_or_else(|e| panic!("cannot create {}: {e}", host_dir.display()));
                    fs::copy(&t.ca_cert, host_dir.join("ca.crt"))
                        .unwrap_or_else(|e| panic!("cannot copy the CA certificate: {e}"));
                    reg.cert_dir = Some(host_dir);
                    reg.certs_d = Some(certs_d);
                }
                reg.token_server = token_server;
                return reg;
            }
            Ready::PortTaken => {
                last_log = reg.log();
                continue;
            }
            Ready::Failed(why) => {
                let log = reg.log();
                drop(reg);
                panic!(
                    "docker-registry did not come up on {url}: {why}\n--- config ({}) ---\n{}\
                     --- registry log ---\n{log}--- end ---",
                    config.display(),
                    fs::read_to_string(&config).unwrap_or_default()
                );
            }
        }
    }
    panic!("docker-registry found every port taken (8 attempts); last log:\n{last_log}")
}

enum Ready {
    Yes,
    PortTaken,
    Failed(String),
}

/// Poll `GET /v2/` (200 or 401 means up) until it answers, the process exits, or 30 s pass.
fn wait_ready(reg: &mut Registry) -> Ready {
    let curl = require_tool("curl", "curl");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = String::new();
    loop {
        match reg.child.try_wait() {
            Ok(Some(status)) => {
                let log = reg.log();
                return if log.contains("address already in use") {
                    Ready::PortTaken
                } else {
                    Ready::Failed(format!("it exited with {status}"))
                };
            }
            Ok(None) => {}
            Err(e) => return Ready::Failed(format!("cannot wait for it: {e}")),
        }
        // A cheap check first: is anything listening yet?
        let listening = TcpStream::connect_timeout(
            &reg.host
                .parse()
                .unwrap_or_else(|e| panic!("bad host {}: {e}", reg.host)),
            Duration::from_millis(200),
        )
        .is_ok();
        if listening {
            let mut c = Command::new(&curl);
            c.args([
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "5",
            ])
            .args(reg.curl_tls_args())
            .arg(format!("{}/v2/", reg.url));
            let out = run(&mut c);
            let code = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if code == "200" || code == "401" {
                return Ready::Yes;
            }
            last = format!(
                "GET /v2/ answered {code}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        if Instant::now() > deadline {
            return Ready::Failed(format!("no answer on /v2/ within 30 s (last: {last})"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0")
        .unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:0 to find a free port: {e}"));
    l.local_addr()
        .unwrap_or_else(|e| panic!("no local address: {e}"))
        .port()
}

/// A YAML double-quoted scalar (JSON strings are valid YAML).
fn q(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

// ---------------------------------------------------------------------------------------------
// Certificates and keys (openssl CLI)
// ---------------------------------------------------------------------------------------------

fn openssl() -> Command {
    Command::new(require_tool("openssl", "openssl"))
}

/// The files of a TLS setup: a test CA and a server certificate it signed.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The CA certificate (PEM): what clients must trust.
    pub ca_cert: PathBuf,
    /// The CA key (PEM).
    pub ca_key: PathBuf,
    /// The server certificate (PEM), SAN `IP:127.0.0.1,DNS:localhost`.
    pub server_cert: PathBuf,
    /// The server key (PEM, PKCS#8).
    pub server_key: PathBuf,
}

/// Generate a CA and a server certificate for 127.0.0.1/localhost under `dir` (P-256 keys).
pub fn make_tls_certs(dir: &Path) -> TlsFiles {
    fs::create_dir_all(dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    let f = TlsFiles {
        ca_cert: dir.join("ca.crt"),
        ca_key: dir.join("ca.key"),
        server_cert: dir.join("server.crt"),
        server_key: dir.join("server.key"),
    };
    run_ok(
        openssl()
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args([
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "30",
                "-sha256",
            ])
            .args(["-subj", "/CN=ocibuild test CA"])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
            .arg("-keyout")
            .arg(&f.ca_key)
            .arg("-out")
            .arg(&f.ca_cert),
    );
    let csr = dir.join("server.csr");
    run_ok(
        openssl()
            .args(["req", "-new", "-newkey", "ec", "-pkeyopt"])
            .args([
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-subj",
                "/CN=localhost",
            ])
            .arg("-keyout")
            .arg(&f.server_key)
            .arg("-out")
            .arg(&csr),
    );
    let ext = dir.join("server.ext");
    fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n\
         subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n",
    )
    .unwrap_or_else(|e| panic!("cannot write {}: {e}", ext.display()));
    run_ok(
        openssl()
            .args(["x509", "-req", "-days", "30", "-sha256", "-in"])
            .arg(&csr)
            .arg("-CA")
            .arg(&f.ca_cert)
            .arg("-CAkey")
            .arg(&f.ca_key)
            .arg("-CAcreateserial")
            .arg("-CAserial")
            .arg(dir.join("ca.srl"))
            .arg("-extfile")
            .arg(&ext)
            .arg("-out")
            .arg(&f.server_cert),
    );
    f
}

/// A self-signed server certificate for 127.0.0.1/localhost under `dir`, made the way Docker's
/// documentation says (`openssl req -x509 -newkey rsa:2048 -nodes …`): `basicConstraints
/// CA:TRUE`, no CA of its own. `ca_cert` is the server certificate itself and `ca_key` its key.
pub fn make_self_signed_cert(dir: &Path) -> TlsFiles {
    fs::create_dir_all(dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    let cert = dir.join("domain.crt");
    let key = dir.join("domain.key");
    run_ok(
        openssl()
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256"])
            .args(["-days", "30", "-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert),
    );
    TlsFiles {
        ca_cert: cert.clone(),
        ca_key: key.clone(),
        server_cert: cert,
        server_key: key,
    }
}

/// An RSA key and a self-signed certificate for it, signing JWTs with RS256 (through
/// `openssl dgst -sha256 -sign`, PKCS#1 v1.5).
#[derive(Debug, Clone)]
pub struct SigningKey {
    /// The private key (PEM).
    pub key: PathBuf,
    /// The self-signed certificate (PEM): what the registry's `rootcertbundle` must hold.
    pub cert: PathBuf,
    /// Base64 (standard) of the certificate's DER, for the JWT `x5c` header.
    pub x5c: String,
}

impl SigningKey {
    /// A fresh RSA-2048 key and certificate `dir/NAME.{key,crt}`.
    pub fn generate(dir: &Path, name: &str) -> SigningKey {
        fs::create_dir_all(dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let key = dir.join(format!("{name}.key"));
        let cert = dir.join(format!("{name}.crt"));
        run_ok(
            openssl()
                .args([
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
                ])
                .args(["-sha256", "-subj", &format!("/CN={name}")])
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&cert),
        );
        let der = run_ok(
            openssl()
                .args(["x509", "-outform", "DER", "-in"])
                .arg(&cert),
        )
        .stdout;
        SigningKey {
            key,
            cert,
            x5c: STANDARD.encode(der),
        }
    }

    /// A compact JWS: header `{"typ":"JWT","alg":"RS256","x5c":[cert]}`, `claims`, RS256.
    pub fn sign_jwt(&self, claims: &Value) -> String {
        let header = json!({"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = self.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    /// `openssl dgst -sha256 -sign KEY` of `data`: an RS256 (PKCS#1 v1.5) signature.
    pub fn sign(&self, data: &[u8]) -> Vec<u8> {
        let mut c = openssl();
        c.args(["dgst", "-sha256", "-sign"])
            .arg(&self.key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `{}`: {e}", command_line(&c)));
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(data)
                .unwrap_or_else(|e| panic!("cannot feed `{}`: {e}", command_line(&c)));
        }
        let out = child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("cannot wait for `{}`: {e}", command_line(&c)));
        assert!(
            out.status.success() && !out.stdout.is_empty(),
            "`{}` failed: {}",
            command_line(&c),
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }
}

// ---------------------------------------------------------------------------------------------
// Token server
// ---------------------------------------------------------------------------------------------

/// Who may get tokens from a [`TokenServer`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenServerOptions {
    /// The user (Basic credentials, or the password grant) granted pull and push on every
    /// repository (and whatever is asked for `registry:` scopes such as `registry:catalog:*`).
    pub user: Option<(String, String)>,
    /// Anonymous requests get pull on every repository (else they are answered 401).
    pub anonymous_pull: bool,
}

/// One request the token server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// `GET` or `POST`.
    pub method: String,
    /// For POST: `password`, `refresh_token`, …
    pub grant_type: Option<String>,
    /// The authenticated user; `None` for anonymous (or refused) requests.
    pub subject: Option<String>,
    /// The scopes asked for.
    pub scopes: Vec<String>,
    /// The HTTP status answered.
    pub status: u16,
}

/// A docker-style token server (the registry's `realm`) on a free loopback port:
///
/// - `GET /token?service=S&scope=repository:NAME:pull,push[&scope=…][&offline_token=true]` with
///   optional `Authorization: Basic …` answers `{"token","access_token","expires_in","issued_at"}`
///   (plus `refresh_token` with `offline_token=true` for the user);
/// - `POST /token` with a form (`grant_type=password&username&password&service&scope
///   [&access_type=offline]`, or `grant_type=refresh_token&refresh_token&service&scope`) answers
///   `{"access_token","expires_in","issued_at","scope"}`, plus `refresh_token` for offline
///   password grants and refresh grants (docker's OAuth2 flow).
///
/// Wrong credentials and unknown refresh tokens get 401; anonymous requests get 401 unless
/// anonymous pull is on; a missing or wrong `service` gets 400. Tokens are RS256 JWTs with an
/// `x5c` header, claims `iss`, `sub`, `aud`, `exp` (+300 s), `nbf`, `iat`, `jti` and `access`
/// (the asked actions the subject is allowed).
#[derive(Debug)]
pub struct TokenServer {
    /// `127.0.0.1:PORT`.
    pub host: String,
    /// `http://127.0.0.1:PORT/token`.
    pub realm: String,
    /// [`TOKEN_SERVICE`].
    pub service: String,
    /// [`TOKEN_ISSUER`].
    pub issuer: String,
    /// The certificate bundle the registry trusts (`rootcertbundle`).
    pub root_cert_bundle: PathBuf,
    state: Arc<TokenState>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct TokenState {
    opts: TokenServerOptions,
    service: String,
    issuer: String,
    key: SigningKey,
    refresh_tokens: Mutex<HashMap<String, String>>,
    requests: Mutex<Vec<TokenRequest>>,
    seq: AtomicU64,
}

/// Start a token server with its signing key under the context (for registries other than the
/// one [`start_registry`] wires up, e.g. a second registry trusting the same issuer).
pub fn start_token_server(ctx: &TestContext, opts: TokenServerOptions) -> TokenServer {
    start_token_server_in(
        &ctx.tmp_dir(format!("token-server-{}", crate::next_id())),
        opts,
    )
}

fn start_token_server_in(dir: &Path, opts: TokenServerOptions) -> TokenServer {
    let key = SigningKey::generate(dir, "ocibuild-test-token-signer");
    let listener = TcpListener::bind("127.0.0.1:0")
        .unwrap_or_else(|e| panic!("token server: cannot bind 127.0.0.1:0: {e}"));
    let port = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("token server: no local address: {e}"))
        .port();
    let host = format!("127.0.0.1:{port}");
    let state = Arc::new(TokenState {
        opts,
        service: TOKEN_SERVICE.to_string(),
        issuer: TOKEN_ISSUER.to_string(),
        key: key.clone(),
        refresh_tokens: Mutex::new(HashMap::new()),
        requests: Mutex::new(Vec::new()),
        seq: AtomicU64::new(0),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let state = Arc::clone(&state);
        let stop = Arc::clone(&stop);
        std::thread::Builder::new()
            .name(format!("token-server-{port}"))
            .spawn(move || {
                accept_loop(&listener, &stop, |conn| {
                    let state = Arc::clone(&state);
                    std::thread::spawn(move || {
                        let _ = serve_token(conn, &state);
                    });
                });
            })
            .unwrap_or_else(|e| panic!("token server: cannot spawn its thread: {e}"))
    };
    TokenServer {
        realm: format!("http://{host}/token"),
        host,
        service: TOKEN_SERVICE.to_string(),
        issuer: TOKEN_ISSUER.to_string(),
        root_cert_bundle: key.cert.clone(),
        state,
        stop,
        thread: Some(thread),
    }
}

impl TokenServer {
    /// The key the server signs with.
    pub fn signing_key(&self) -> &SigningKey {
        &self.state.key
    }

    /// The claims the server would put in a token for `subject` (`None`: anonymous) asking for
    /// `scopes` (`repository:NAME:ACTIONS`): sign them with another key to forge a token.
    pub fn claims(&self, subject: Option<&str>, scopes: &[&str]) -> Value {
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        self.state.claims(subject, &scopes)
    }

    /// A token the server would issue (signed with its key).
    pub fn token(&self, subject: Option<&str>, scopes: &[&str]) -> String {
        self.state.key.sign_jwt(&self.claims(subject, scopes))
    }

    /// Every request answered so far.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.state
            .requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        stop_accept_loop(&self.host, &self.stop, self.thread.take());
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl TokenState {
    fn allowed(&self, subject: Option<&str>, typ: &str) -> &'static [&'static str] {
        match (subject, typ) {
            (Some(_), "repository") => &["pull", "push"],
            (Some(_), "registry") => &["*"],
            (None, "repository") if self.opts.anonymous_pull => &["pull"],
            _ => &[],
        }
    }

    fn claims(&self, subject: Option<&str>, scopes: &[String]) -> Value {
        let mut access: Vec<Value> = Vec::new();
        for scope in scopes {
            // TYPE:NAME:ACTIONS, where NAME may hold a colon (host:port/repo)
            let Some((typ, rest)) = scope.split_once(':') else {
                continue;
            };
            let Some((name, actions)) = rest.rsplit_once(':') else {
                continue;
            };
            let allowed = self.allowed(subject, typ);
            let granted: Vec<&str> = actions
                .split(',')
                .filter(|a| allowed.contains(a) || allowed.contains(&"*"))
                .collect();
            if !granted.is_empty() {
                access.push(json!({"type": typ, "name": name, "actions": granted}));
            }
        }
        let now = unix_now();
        let seq = self.seq.fetch_add(1, Ordering::SeqCst);
        json!({
            "iss": self.issuer,
            "sub": subject.unwrap_or(""),
            "aud": self.service,
            "exp": now + 300,
            "nbf": now.saturating_sub(10),
            "iat": now,
            "jti": format!("{}-{seq}-{}", std::process::id(), SystemTime::now()
                .duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos())),
            "access": access,
        })
    }

    fn check_user(&self, user: &str, pass: &str) -> bool {
        self.opts
            .user
            .as_ref()
            .is_some_and(|(u, p)| u == user && p == pass)
    }

    fn new_refresh_token(&self, subject: &str) -> String {
        let seq = self.seq.fetch_add(1, Ordering::SeqCst);
        let token = format!(
            "refresh-{}-{seq}-{:x}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        if let Ok(mut m) = self.refresh_tokens.lock() {
            m.insert(token.clone(), subject.to_string());
        }
        token
    }
}

struct TokenAnswer {
    status: u16,
    body: Value,
    subject: Option<String>,
}

fn oauth_error(status: u16, error: &str, message: &str) -> TokenAnswer {
    TokenAnswer {
        status,
        body: json!({
            "error": error,
            "error_description": message,
            "errors": [{"code": if status == 401 { "UNAUTHORIZED" } else { "DENIED" },
                        "message": message}],
        }),
        subject: None,
    }
}

fn serve_token(conn: TcpStream, state: &TokenState) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut r = BufReader::new(conn.try_clone()?);
    let mut w = conn;
    let Some(head) = read_head(&mut r)? else {
        return Ok(());
    };
    let (method, target) = head.method_target();
    let (path, query) = target.split_once('?').unwrap_or((target.as_str(), ""));
    let mut body = Vec::new();
    if let Some(len) = head.content_length() {
        r.take(len.min(1 << 20)).read_to_end(&mut body)?;
    }
    let mut params = parse_form(query);
    if method == "POST" {
        params.extend(parse_form(&String::from_utf8_lossy(&body)));
    }
    let grant_type = params
        .iter()
        .find(|(k, _)| k == "grant_type")
        .map(|(_, v)| v.clone());
    let scopes: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' ').map(str::to_string).collect::<Vec<_>>())
        .filter(|s| !s.is_empty())
        .collect();

    let answer = if path != "/token" {
        oauth_error(404, "not_found", &format!("no such endpoint {path}"))
    } else if method == "GET" || method == "POST" {
        token_answer(
            state,
            &method,
            &head,
            &params,
            grant_type.as_deref(),
            &scopes,
        )
    } else {
        oauth_error(405, "invalid_request", "only GET and POST")
    };
    if let Ok(mut reqs) = state.requests.lock() {
        reqs.push(TokenRequest {
            method: method.clone(),
            grant_type,
            subject: answer.subject.clone(),
            scopes,
            status: answer.status,
        });
    }
    let extra = if answer.status == 401 {
        "WWW-Authenticate: Basic realm=\"ocibuild-test-token-server\"\r\n"
    } else {
        ""
    };
    write_simple_response(
        &mut w,
        answer.status,
        extra,
        "application/json",
        answer.body.to_string().as_bytes(),
    )
}

fn token_answer(
    state: &TokenState,
    method: &str,
    head: &Head,
    params: &[(String, String)],
    grant_type: Option<&str>,
    scopes: &[String],
) -> TokenAnswer {
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    match param("service") {
        Some(s) if s == state.service => {}
        Some(s) => {
            return oauth_error(
                400,
                "invalid_request",
                &format!(
                    "unknown service {s:?}, this server issues for {:?}",
                    state.service
                ),
            );
        }
        None => return oauth_error(400, "invalid_request", "the service parameter is missing"),
    }
    let mut refresh: Option<String> = None;
    let subject: Option<String> = if method == "GET" {
        match head.get("authorization") {
            Some(auth) => match parse_basic(auth) {
                Some((u, p)) if state.check_user(&u, &p) => {
                    if param("offline_token") == Some("true") {
                        refresh = Some(state.new_refresh_token(&u));
                    }
                    Some(u)
                }
                _ => return oauth_error(401, "invalid_grant", "invalid username or password"),
            },
            None if state.opts.anonymous_pull => None,
            None => {
                return oauth_error(401, "invalid_grant", "authentication required");
            }
        }
    } else {
        match grant_type {
            Some("password") => {
                let (u, p) = (param("username"), param("password"));
                match (u, p) {
                    (Some(u), Some(p)) if state.check_user(u, p) => {
                        if param("access_type") == Some("offline") {
                            refresh = Some(state.new_refresh_token(u));
                        }
                        Some(u.to_string())
                    }
                    _ => {
                        return oauth_error(401, "invalid_grant", "invalid username or password");
                    }
                }
            }
            Some("refresh_token") => {
                let known = param("refresh_token").and_then(|t| {
                    state
                        .refresh_tokens
                        .lock()
                        .ok()
                        .and_then(|m| m.get(t).cloned())
                        .map(|s| (t.to_string(), s))
                });
                match known {
                    Some((t, s)) => {
                        refresh = Some(t);
                        Some(s)
                    }
                    None => return oauth_error(401, "invalid_grant", "unknown refresh token"),
                }
            }
            other => {
                return oauth_error(
                    400,
                    "unsupported_grant_type",
                    &format!("grant_type {other:?} is not supported"),
                );
            }
        }
    };
    let claims = state.claims(subject.as_deref(), scopes);
    let token = state.key.sign_jwt(&claims);
    let issued_at = run_date_rfc3339();
    let mut body = if method == "GET" {
        json!({"token": token, "access_token": token, "expires_in": 300, "issued_at": issued_at})
    } else {
        json!({"access_token": token, "expires_in": 300, "issued_at": issued_at,
               "scope": scopes.join(" ")})
    };
    if let (Some(t), Some(obj)) = (refresh, body.as_object_mut()) {
        obj.insert("refresh_token".into(), Value::String(t));
    }
    TokenAnswer {
        status: 200,
        body,
        subject,
    }
}

/// The current UTC time as RFC 3339 (seconds), computed without a date crate.
fn run_date_rfc3339() -> String {
    let secs = unix_now();
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // civil-from-days (Howard Hinnant), valid for dates after 1970
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn parse_basic(header: &str) -> Option<(String, String)> {
    let (scheme, b64) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = STANDARD.decode(b64.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// `application/x-www-form-urlencoded` (also query strings): `+` is a space, `%XX` a byte.
fn parse_form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (url_decode(k), url_decode(v))
        })
        .collect()
}

fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len()
                && b[i + 1].is_ascii_hexdigit()
                && b[i + 2].is_ascii_hexdigit() =>
            {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("0");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_decoded() {
        assert_eq!(
            parse_form("grant_type=password&scope=repository%3Aa%2Fb%3Apull+repository:c:push&x"),
            vec![
                ("grant_type".to_string(), "password".to_string()),
                (
                    "scope".to_string(),
                    "repository:a/b:pull repository:c:push".to_string()
                ),
                ("x".to_string(), String::new()),
            ]
        );
        assert_eq!(url_decode("%zz%4"), "%zz%4");
        assert_eq!(url_decode("a%41"), "aA");
    }

    #[test]
    fn basic_auth_is_parsed() {
        assert_eq!(
            parse_basic("Basic dXNlcjpwOnc="),
            Some(("user".to_string(), "p:w".to_string()))
        );
        assert_eq!(parse_basic("Bearer x"), None);
    }

    #[test]
    fn dates_are_rfc3339() {
        let d = run_date_rfc3339();
        assert_eq!(d.len(), 20, "{d}");
        assert!(d.starts_with("20") && d.ends_with('Z'), "{d}");
    }
}
