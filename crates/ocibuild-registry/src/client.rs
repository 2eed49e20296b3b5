//! The distribution protocol: one `Registry` handle that knows how to reach each host (TLS roots,
//! plain HTTP for loopback and `--insecure-registry` hosts), authenticates (Basic, Bearer
//! challenges with scopes, a token cache), retries (429, 5xx, resets; `Retry-After` honoured) and
//! turns failures into errors that name the registry, repository, operation and the next step.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use ocibuild_oci::image::Descriptor;
use ocibuild_oci::{Digest, media};
use reqwest::StatusCode;
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{self, HeaderMap, HeaderValue};

use crate::auth::{
    Challenge, Credential, Keychain, KeychainOptions, TokenCache, parse_www_authenticate, scope,
};
use crate::error::{RegistryError, Result};

/// Every manifest media type we can read.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// Blobs up to this size go in one PUT; larger ones in PATCH chunks of this size.
pub const CHUNK: u64 = 16 * 1024 * 1024;

/// How to reach registries.
#[derive(Clone, Debug)]
pub struct RegistryOptions {
    /// Hosts (host[:port]) that may be reached over plain HTTP (loopback always may).
    pub insecure: Vec<String>,
    /// Extra CA certificates (PEM) trusted for every registry (`--ca-cert`).
    pub ca_certs: Vec<PathBuf>,
    /// Directories laid out as `<dir>/<host>/*.crt` (docker's and containers' certs.d).
    pub cert_dirs: Vec<PathBuf>,
    /// CA certificates (PEM) trusted for one registry only: `(host[:port], file)`, from the
    /// registries config's `registries[].ca`.
    pub host_ca_certs: Vec<(String, PathBuf)>,
    pub keychain: KeychainOptions,
    /// Attempts per request on 429, 5xx and connection errors.
    pub retries: u32,
    /// Pull-through mirrors, per registry.
    pub mirrors: Vec<Mirror>,
    /// Cap on one wait between attempts (and on `Retry-After`).
    pub max_backoff: Duration,
    pub user_agent: String,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        Self {
            insecure: Vec::new(),
            ca_certs: Vec::new(),
            cert_dirs: vec![
                PathBuf::from("/etc/docker/certs.d"),
                PathBuf::from("/etc/containers/certs.d"),
            ],
            host_ca_certs: Vec::new(),
            keychain: KeychainOptions::from_process_env(),
            retries: 6,
            mirrors: Vec::new(),
            max_backoff: Duration::from_secs(10),
            user_agent: format!("ocibuild/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// Mirrors of one registry (`docker.io` → `mirror.local:5000`). Exclusive: never fall back to
/// the registry itself (allow-listed networks need that).
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct Mirror {
    pub registry: String,
    pub mirrors: Vec<String>,
    #[serde(default)]
    pub exclusive: bool,
}

/// The registries config file (`--registries-config`, `$OCIBUILD_REGISTRIES_CONFIG`, or
/// `$XDG_CONFIG_HOME/ocibuild/registries.json`):
/// `{"mirrors": [{"registry": "docker.io", "mirrors": ["mirror.local:5000"], "exclusive": true}],
///   "insecure": ["mirror.local:5000"],
///   "registries": [{"registry": "reg.local:5000", "ca": "certs/reg-ca.pem"}]}`.
/// A relative `ca` path is relative to the config file's directory.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistriesConfig {
    #[serde(default)]
    pub mirrors: Vec<Mirror>,
    #[serde(default)]
    pub insecure: Vec<String>,
    #[serde(default)]
    pub acr_hosts: Vec<String>,
    /// Settings of one registry each (its own CA certificate).
    #[serde(default)]
    pub registries: Vec<RegistryEntry>,
}

/// One registry's entry in the registries config.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryEntry {
    /// `host[:port]`, as in image references.
    pub registry: String,
    /// CA certificate(s) (PEM) trusted for this registry only — or, for a self-signed registry,
    /// its own certificate; as `certs.d/HOST/ca.crt` would be.
    #[serde(default)]
    pub ca: Option<PathBuf>,
}

impl RegistriesConfig {
    pub fn load(path: &std::path::Path) -> Result<Self> {
        let bytes = fs::read(path).map_err(|source| RegistryError::Io {
            what: format!("reading the registries config {}", path.display()),
            source,
        })?;
        let mut cfg: Self = serde_json::from_slice(&bytes).map_err(|e| RegistryError::Invalid {
            what: format!("registries config {}", path.display()),
            detail: format!("{e} (expected {{\"mirrors\": [{{\"registry\": \"docker.io\", \"mirrors\": [\"mirror.local:5000\"], \"exclusive\": true}}], \"insecure\": [...], \"registries\": [{{\"registry\": \"reg.local:5000\", \"ca\": \"ca.pem\"}}]}})"),
        })?;
        let base = path.parent().unwrap_or(std::path::Path::new(""));
        for r in &mut cfg.registries {
            if r.registry.is_empty() || r.registry.contains('/') {
                return Err(RegistryError::Invalid {
                    what: format!("registries config {}", path.display()),
                    detail: format!(
                        "registries[].registry `{}` is not a registry host: write host[:port], like reg.local:5000",
                        r.registry
                    ),
                });
            }
            if let Some(ca) = &r.ca
                && ca.is_relative()
            {
                r.ca = Some(base.join(ca));
            }
        }
        Ok(cfg)
    }

    /// `(host, CA file)` for every registry entry that names a CA.
    pub fn host_ca_certs(&self) -> Vec<(String, PathBuf)> {
        self.registries
            .iter()
            .filter_map(|r| r.ca.clone().map(|c| (r.registry.clone(), c)))
            .collect()
    }
}

/// Parse `--registry-mirror REGISTRY=MIRROR[,MIRROR…][;exclusive]`.
pub fn parse_mirror_flag(s: &str) -> Result<Mirror> {
    let bad = || {
        RegistryError::Invalid { what: format!("--registry-mirror {s}"), detail: "expected REGISTRY=MIRROR[,MIRROR...][;exclusive], like docker.io=mirror.local:5000;exclusive".into() }
    };
    let (spec, exclusive) = match s.split_once(';') {
        Some((a, "exclusive")) => (a, true),
        Some(_) => return Err(bad()),
        None => (s, false),
    };
    let (reg, mirrors) = spec.split_once('=').ok_or_else(bad)?;
    let mirrors: Vec<String> = mirrors
        .split(',')
        .map(|m| m.trim().to_string())
        .filter(|m| !m.is_empty())
        .collect();
    if reg.is_empty() || mirrors.is_empty() {
        return Err(bad());
    }
    let registry = if reg == "index.docker.io" || reg == "registry-1.docker.io" {
        "docker.io".to_string()
    } else {
        reg.to_string()
    };
    Ok(Mirror {
        registry,
        mirrors,
        exclusive,
    })
}

/// True for 127.0.0.0/8, localhost and [::1], with or without a port.
pub fn is_loopback(host: &str) -> bool {
    let h = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, p)| {
            if p.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        })
    };
    h == "localhost" || h == "::1" || h.starts_with("127.")
}

struct Host {
    client: Client,
    base: String,
}

/// Why a host could not be reached: the operation, the detail and the hint of the error.
type Unreachable = (String, String, Option<String>);

/// A handle on every registry this process talks to.
pub struct Registry {
    opts: RegistryOptions,
    keychain: Keychain,
    tokens: TokenCache,
    hosts: Mutex<HashMap<String, std::sync::Arc<Host>>>,
    setup: Mutex<()>,
    /// Authorization header per (host, scope key), reused until a 401.
    auth: Mutex<HashMap<(String, String), HeaderValue>>,
    /// Hosts whose /v2/ answered with a challenge; stored to avoid an extra round trip.
    challenges: Mutex<HashMap<String, Option<Challenge>>>,
    /// Hosts that could not be reached, with why: the other threads of this operation fail at
    /// once with the same error instead of retrying the connection each in turn.
    unreachable: Mutex<HashMap<String, Unreachable>>,
}

/// What an operation is, for error messages.
#[derive(Clone, Debug)]
pub struct Op<'a> {
    pub host: &'a str,
    pub repo: &'a str,
    pub what: &'a str,
    pub actions: &'a [&'a str],
    /// Extra scopes (a mount needs pull on the source repository).
    pub extra_scopes: Vec<String>,
}

impl Registry {
    pub fn new(opts: RegistryOptions) -> Self {
        let mut kopts = opts.keychain.clone();
        kopts.plain_http_hosts.extend(opts.insecure.iter().cloned());
        let keychain = Keychain::new(kopts);
        Self {
            opts,
            keychain,
            tokens: TokenCache::default(),
            hosts: Mutex::new(HashMap::new()),
            setup: Mutex::new(()),
            auth: Mutex::new(HashMap::new()),
            challenges: Mutex::new(HashMap::new()),
            unreachable: Mutex::new(HashMap::new()),
        }
    }

    pub fn options(&self) -> &RegistryOptions {
        &self.opts
    }

    /// The mirrors configured for a registry (in order) and whether they are exclusive.
    pub fn mirrors_for(&self, registry: &str) -> (Vec<String>, bool) {
        let mut out = Vec::new();
        let mut exclusive = false;
        for m in self.opts.mirrors.iter().filter(|m| m.registry == registry) {
            out.extend(m.mirrors.iter().cloned());
            exclusive |= m.exclusive;
        }
        (out, exclusive)
    }

    fn allows_http(&self, host: &str) -> bool {
        is_loopback(host) || self.opts.insecure.iter().any(|h| h == host)
    }

    fn has_host_certs(&self, host: &str) -> bool {
        self.opts.host_ca_certs.iter().any(|(h, _)| h == host)
            || self.opts.cert_dirs.iter().any(|d| d.join(host).is_dir())
    }

    /// The certificate files the user trusts for `host`: every `--ca-cert`, the registries
    /// config's `ca` for this host, then `<certs.d>/<host>/*.crt` (sorted, for stable messages).
    fn trusted_files(&self, host: &str) -> Vec<PathBuf> {
        let mut pems: Vec<PathBuf> = self.opts.ca_certs.clone();
        pems.extend(
            self.opts
                .host_ca_certs
                .iter()
                .filter(|(h, _)| h == host)
                .map(|(_, p)| p.clone()),
        );
        for d in &self.opts.cert_dirs {
            let dir = d.join(host);
            if let Ok(rd) = fs::read_dir(&dir) {
                let mut found: Vec<PathBuf> = rd
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "crt"))
                    .collect();
                found.sort();
                pems.extend(found);
            }
        }
        pems
    }

    fn build_client(&self, host: &str) -> Result<Client> {
        let trusted = crate::tls::TrustedCerts::load(&self.trusted_files(host))?;
        let mut b = Client::builder()
            .user_agent(self.opts.user_agent.clone())
            .connect_timeout(Duration::from_secs(30))
            .timeout(None::<Duration>)
            .redirect(reqwest::redirect::Policy::limited(10))
            .pool_max_idle_per_host(8);
        if !trusted.is_empty() {
            // Our own verifier: chain validation with these as extra roots, and a server
            // certificate identical to one of them accepted as is (self-signed registries).
            b = b.tls_backend_preconfigured(crate::tls::client_config(&trusted)?);
        }
        if is_loopback(host) {
            b = b.no_proxy();
        }
        b.build().map_err(|e| RegistryError::Transport {
            registry: host.to_string(),
            operation: "setting up TLS".into(),
            detail: e.to_string(),
            hint: None,
        })
    }

    /// The client and base URL for a host: https, or http where allowed and https fails.
    fn host(&self, host: &str) -> Result<std::sync::Arc<Host>> {
        if let Some(h) = self.hosts.lock().map_err(poisoned)?.get(host) {
            return Ok(h.clone());
        }
        // One thread sets a host up (TLS roots, the probe); the others wait for it.
        let _setup = self.setup.lock().map_err(poisoned)?;
        if let Some(h) = self.hosts.lock().map_err(poisoned)?.get(host) {
            return Ok(h.clone());
        }
        if let Some((operation, detail, hint)) = self
            .unreachable
            .lock()
            .map_err(poisoned)?
            .get(host)
            .cloned()
        {
            return Err(RegistryError::Transport {
                registry: host.to_string(),
                operation,
                detail,
                hint,
            });
        }
        let res = self.set_up_host(host);
        if let Err(RegistryError::Transport {
            operation,
            detail,
            hint,
            ..
        }) = &res
        {
            self.unreachable.lock().map_err(poisoned)?.insert(
                host.to_string(),
                (operation.clone(), detail.clone(), hint.clone()),
            );
        }
        res
    }

    /// [`Registry::host`] for a host not set up yet (the caller holds the setup lock).
    fn set_up_host(&self, host: &str) -> Result<std::sync::Arc<Host>> {
        // Loopback registries are mostly plain HTTP: try that first with a client that does not
        // load the system's trust store (tens of milliseconds), unless CAs are configured.
        if is_loopback(host) && self.opts.ca_certs.is_empty() && !self.has_host_certs(host) {
            let cheap = Client::builder()
                .user_agent(self.opts.user_agent.clone())
                .connect_timeout(Duration::from_secs(30))
                .tls_certs_only(Vec::new())
                .no_proxy()
                .pool_max_idle_per_host(8)
                .build();
            if let Ok(cheap) = cheap {
                let http = format!("http://{host}");
                if let Ok(r) = cheap
                    .get(format!("{http}/v2/"))
                    .timeout(Duration::from_secs(30))
                    .send()
                {
                    let tls_only = r.status() == StatusCode::BAD_REQUEST;
                    if !tls_only {
                        self.remember_challenge(host, &r);
                        let h = std::sync::Arc::new(Host {
                            client: cheap,
                            base: http,
                        });
                        self.hosts
                            .lock()
                            .map_err(poisoned)?
                            .insert(host.to_string(), h.clone());
                        return Ok(h);
                    }
                }
            }
        }
        let client = self.build_client(host)?;
        let https = format!("https://{host}");
        let mut attempt = 0u32;
        let base = loop {
            attempt += 1;
            let probe = |base: &str| {
                client
                    .get(format!("{base}/v2/"))
                    .timeout(Duration::from_secs(30))
                    .send()
            };
            let err = match probe(&https) {
                Ok(r) => {
                    self.remember_challenge(host, &r);
                    break https;
                }
                // A server that speaks TLS with a certificate we do not trust: never fall back
                // to plain HTTP, say how to trust it.
                Err(e) if is_certificate_error(&e) => {
                    return Err(self.certificate_error(host, &e));
                }
                Err(e) => e,
            };
            let (err, what) = if self.allows_http(host) {
                let http = format!("http://{host}");
                match probe(&http) {
                    Ok(r) => {
                        self.remember_challenge(host, &r);
                        break http;
                    }
                    Err(e2) => (e2, "connecting over https and http"),
                }
            } else {
                (err, "connecting")
            };
            let kind = Failure::of(&err);
            let limit = kind.attempts(self.opts.retries);
            if attempt >= limit || !(err.is_connect() || err.is_request() || err.is_timeout()) {
                return Err(transport(host, what, &err));
            }
            let wait = kind.wait(attempt).min(self.opts.max_backoff);
            tracing::info!(
                registry = host,
                "cannot connect to {} ({}); retrying in {wait:?} (attempt {} of {limit})",
                address(host),
                kind.describe(),
                attempt + 1
            );
            std::thread::sleep(wait);
        };
        let h = std::sync::Arc::new(Host { client, base });
        self.hosts
            .lock()
            .map_err(poisoned)?
            .insert(host.to_string(), h.clone());
        Ok(h)
    }

    /// A TLS certificate failure, with what to do about it: which file to put where.
    fn certificate_error(&self, host: &str, e: &reqwest::Error) -> RegistryError {
        let detail = error_chain(e);
        let places = self
            .opts
            .cert_dirs
            .iter()
            .map(|d| d.join(host).join("ca.crt").display().to_string())
            .collect::<Vec<_>>()
            .join(" or ");
        let files = self.trusted_files(host);
        let hint = if detail.contains("NotValidForName") {
            format!(
                "the registry's certificate does not name {0}: use a name it was issued for, or reissue it with subjectAltName=DNS:NAME (or IP:ADDRESS) for {0}",
                host_name(host)
            )
        } else if detail.contains("Expired") || detail.contains("NotValidYet") {
            "the registry's certificate is outside its validity dates: renew it (and check this machine's clock)".to_string()
        } else if files.is_empty() {
            format!(
                "the registry's TLS certificate is not trusted: save the CA certificate that signed it — or, for a self-signed registry, the registry's own certificate (the .crt file it serves) — as {places}, or pass --ca-cert FILE"
            )
        } else {
            format!(
                "the registry's certificate is neither signed by nor identical to the certificates trusted for {host} ({}): put the right one (the signing CA, or the registry's own self-signed certificate) as {places}, or pass it with --ca-cert FILE",
                files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        RegistryError::Transport {
            registry: host.to_string(),
            operation: "connecting".into(),
            detail,
            hint: Some(hint),
        }
    }

    fn remember_challenge(&self, host: &str, r: &Response) {
        let ch = if r.status() == StatusCode::UNAUTHORIZED {
            r.headers()
                .get_all(header::WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(parse_www_authenticate)
                .next()
        } else {
            None
        };
        if let Ok(mut m) = self.challenges.lock() {
            m.insert(host.to_string(), ch);
        }
    }

    /// Base URL (`https://host`) of a registry host.
    pub fn base_url(&self, host: &str) -> Result<String> {
        Ok(self.host(host)?.base.clone())
    }

    fn scopes(op: &Op<'_>) -> Vec<String> {
        let mut s = if op.repo.is_empty() {
            vec![]
        } else {
            vec![scope(op.repo, op.actions)]
        };
        s.extend(op.extra_scopes.iter().cloned());
        s
    }

    fn authorize(&self, op: &Op<'_>, ch: &Challenge) -> Result<HeaderValue> {
        let cred = self
            .keychain
            .resolve(&self.host(op.host)?.client, op.host)?;
        let value = match ch.scheme.as_str() {
            "basic" => match &cred {
                Some((Credential::Basic { username, password }, _)) => {
                    use base64::Engine as _;
                    let enc = base64::engine::general_purpose::STANDARD
                        .encode(format!("{username}:{}", password.expose()));
                    format!("Basic {enc}")
                }
                _ => {
                    return Err(RegistryError::Status {
                        registry: op.host.to_string(),
                        repository: op.repo.to_string(),
                        operation: op.what.to_string(),
                        status: 401,
                        message: "the registry wants a username and password and none were found"
                            .into(),
                        hint: Some(format!(
                            "run `ocibuild login {}` or pass --creds USER:PASS",
                            op.host
                        )),
                    });
                }
            },
            "bearer" => {
                if let Some((Credential::RegistryToken(t), _)) = &cred {
                    format!("Bearer {}", t.expose())
                } else {
                    let host = self.host(op.host)?;
                    let token = self.tokens.get_or_fetch(
                        &host.client,
                        Some(op.host),
                        ch,
                        &Self::scopes(op),
                        cred.as_ref().map(|(c, _)| c),
                    )?;
                    format!("Bearer {}", token.token.expose())
                }
            }
            other => {
                return Err(RegistryError::Protocol {
                    registry: op.host.to_string(),
                    repository: op.repo.to_string(),
                    what: format!(
                        "the registry asks for `{other}` authentication, which is not supported (Basic and Bearer are)"
                    ),
                });
            }
        };
        let mut hv = HeaderValue::from_str(&value).map_err(|_| RegistryError::Invalid {
            what: "credentials".into(),
            detail: "they contain characters that cannot go in an HTTP header".into(),
        })?;
        hv.set_sensitive(true);
        Ok(hv)
    }

    /// Send a request (built anew for each attempt), authenticating and retrying as needed.
    /// Returns the final response whatever its status; `check` turns bad statuses into errors.
    pub fn send(
        &self,
        op: &Op<'_>,
        build: &dyn Fn(&Client, &str) -> RequestBuilder,
    ) -> Result<Response> {
        let host = self.host(op.host)?;
        let key = (op.host.to_string(), Self::scopes(op).join(" "));
        let mut auth = self.auth.lock().map_err(poisoned)?.get(&key).cloned();
        if auth.is_none() {
            let ch = self
                .challenges
                .lock()
                .map_err(poisoned)?
                .get(op.host)
                .cloned()
                .flatten();
            if let Some(ch) = ch {
                auth = Some(self.authorize(op, &ch)?);
                self.auth.lock().map_err(poisoned)?.insert(
                    key.clone(),
                    auth.clone().unwrap_or(HeaderValue::from_static("")),
                );
            }
        }
        let mut attempt = 0u32;
        let mut reauthed = false;
        loop {
            attempt += 1;
            let mut rb = build(&host.client, &host.base);
            if let Some(a) = &auth {
                rb = rb.header(header::AUTHORIZATION, a.clone());
            }
            match rb.send() {
                Ok(r) if r.status() == StatusCode::UNAUTHORIZED && !reauthed => {
                    let ch = r
                        .headers()
                        .get_all(header::WWW_AUTHENTICATE)
                        .iter()
                        .filter_map(|v| v.to_str().ok())
                        .flat_map(parse_www_authenticate)
                        .next();
                    let Some(ch) = ch else { return Ok(r) };
                    self.tokens.invalidate(&ch, &Self::scopes(op));
                    let a = self.authorize(op, &ch)?;
                    self.auth
                        .lock()
                        .map_err(poisoned)?
                        .insert(key.clone(), a.clone());
                    auth = Some(a);
                    reauthed = true;
                }
                Ok(r) if retryable(r.status()) && attempt < self.opts.retries => {
                    let wait = retry_after(r.headers())
                        .unwrap_or_else(|| backoff(attempt))
                        .min(self.opts.max_backoff);
                    tracing::info!(
                        registry = op.host,
                        status = r.status().as_u16(),
                        "retrying {} in {:?}",
                        op.what,
                        wait
                    );
                    drop(r);
                    std::thread::sleep(wait);
                }
                Ok(r) => return Ok(r),
                Err(e)
                    if attempt < Failure::of(&e).attempts(self.opts.retries)
                        && (e.is_connect() || e.is_request() || e.is_timeout() || e.is_body()) =>
                {
                    let kind = Failure::of(&e);
                    let wait = kind.wait(attempt).min(self.opts.max_backoff);
                    tracing::info!(
                        registry = op.host,
                        "retrying {} {} in {wait:?} after {} (attempt {} of {})",
                        op.what,
                        op.host,
                        kind.describe(),
                        attempt + 1,
                        kind.attempts(self.opts.retries)
                    );
                    std::thread::sleep(wait);
                }
                Err(e) => return Err(transport(op.host, op.what, &e)),
            }
        }
    }

    /// `send`, then fail unless the status is one of `ok`.
    pub fn send_ok(
        &self,
        op: &Op<'_>,
        ok: &[u16],
        build: &dyn Fn(&Client, &str) -> RequestBuilder,
    ) -> Result<Response> {
        let r = self.send(op, build)?;
        if ok.contains(&r.status().as_u16()) {
            Ok(r)
        } else {
            Err(status_error(op, r))
        }
    }

    /// Check credentials the way `docker login` does: `GET /v2/` authenticated.
    pub fn check_login(&self, host: &str) -> Result<()> {
        let op = Op {
            host,
            repo: "",
            what: "logging in to",
            actions: &[],
            extra_scopes: vec![],
        };
        match self.send_ok(&op, &[200], &|c, base| c.get(format!("{base}/v2/"))) {
            Ok(_) => Ok(()),
            Err(RegistryError::Status {
                status: 401,
                message,
                ..
            }) => Err(RegistryError::LoginRejected {
                registry: host.to_string(),
                detail: format!("401 {message}"),
            }),
            Err(RegistryError::Auth(crate::auth::AuthError::Rejected {
                anonymous: false,
                status,
                realm_host,
                detail,
                ..
            })) => Err(RegistryError::LoginRejected {
                registry: host.to_string(),
                detail: format!(
                    "{status} from its token server {realm_host}{}",
                    detail.map(|d| format!(": {d}")).unwrap_or_default()
                ),
            }),
            Err(e) => Err(e),
        }
    }

    // ---- blobs -------------------------------------------------------------------------------

    /// Size of a blob if the repository has it.
    pub fn blob_exists(&self, host: &str, repo: &str, d: &Digest) -> Result<Option<u64>> {
        let op = Op {
            host,
            repo,
            what: "checking a blob in",
            actions: &["pull"],
            extra_scopes: vec![],
        };
        let url = format!("/v2/{repo}/blobs/{d}");
        let r = self.send(&op, &|c, base| c.head(format!("{base}{url}")))?;
        match r.status().as_u16() {
            200 => Ok(Some(
                r.headers()
                    .get(header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            )),
            404 => Ok(None),
            _ => Err(status_error(&op, r)),
        }
    }

    /// A blob's bytes as a stream (unverified: wrap it in a `VerifyingReader`).
    pub fn get_blob(&self, host: &str, repo: &str, d: &Digest) -> Result<Response> {
        let op = Op {
            host,
            repo,
            what: "pulling a blob from",
            actions: &["pull"],
            extra_scopes: vec![],
        };
        let url = format!("/v2/{repo}/blobs/{d}");
        self.send_ok(&op, &[200], &|c, base| c.get(format!("{base}{url}")))
    }

    /// A blob's bytes from `offset` on (HTTP Range). Returns the response and whether the
    /// registry honoured the range (if not, the body starts at 0).
    pub fn get_blob_from(
        &self,
        host: &str,
        repo: &str,
        d: &Digest,
        offset: u64,
    ) -> Result<(Response, bool)> {
        if offset == 0 {
            return Ok((self.get_blob(host, repo, d)?, true));
        }
        let op = Op {
            host,
            repo,
            what: "resuming a blob download from",
            actions: &["pull"],
            extra_scopes: vec![],
        };
        let url = format!("/v2/{repo}/blobs/{d}");
        let r = self.send_ok(&op, &[200, 206], &|c, base| {
            c.get(format!("{base}{url}"))
                .header(header::RANGE, format!("bytes={offset}-"))
        })?;
        let ranged = r.status().as_u16() == 206;
        Ok((r, ranged))
    }

    pub fn retries(&self) -> u32 {
        self.opts.retries
    }

    /// Upload a blob unless it is there already; try a cross-repository mount from `mount_from`
    /// first (on the same registry). `open(offset)` gives the blob's bytes from `offset` on; it is
    /// called again for each attempt. Returns how the blob got there.
    pub fn put_blob(
        &self,
        host: &str,
        repo: &str,
        desc: &Descriptor,
        mount_from: Option<&str>,
        open: &dyn Fn(u64) -> std::io::Result<Box<dyn Read + Send>>,
    ) -> Result<BlobOutcome> {
        self.put_blob_with_progress(host, repo, desc, mount_from, open, None)
    }

    /// [`Registry::put_blob`], reporting bytes uploaded (per chunk, and at the end).
    pub fn put_blob_with_progress(
        &self,
        host: &str,
        repo: &str,
        desc: &Descriptor,
        mount_from: Option<&str>,
        open: &dyn Fn(u64) -> std::io::Result<Box<dyn Read + Send>>,
        progress: Option<ocibuild_oci::layout::ByteProgress<'_>>,
    ) -> Result<BlobOutcome> {
        if self.blob_exists(host, repo, &desc.digest)?.is_some() {
            return Ok(BlobOutcome::Existed);
        }
        let extra = mount_from
            .filter(|f| *f != repo)
            .map(|f| vec![scope(f, &["pull"])])
            .unwrap_or_default();
        let op = Op {
            host,
            repo,
            what: "pushing a blob to",
            actions: &["pull", "push"],
            extra_scopes: extra,
        };
        let d = desc.digest.to_string();
        if let Some(from) = mount_from.filter(|f| *f != repo) {
            let url = format!("/v2/{repo}/blobs/uploads/?mount={d}&from={from}");
            let r = self.send(&op, &|c, base| {
                c.post(format!("{base}{url}"))
                    .header(header::CONTENT_LENGTH, "0")
            })?;
            match r.status().as_u16() {
                201 => return Ok(BlobOutcome::Mounted),
                // 202: the registry declined the mount and opened an upload session instead.
                202 => {
                    let loc = location(&op, &r)?;
                    return self.upload(&op, loc, desc, open, progress);
                }
                _ => {} // fall back to a plain upload
            }
        }
        let url = format!("/v2/{repo}/blobs/uploads/");
        let r = self.send_ok(&op, &[202], &|c, base| {
            c.post(format!("{base}{url}"))
                .header(header::CONTENT_LENGTH, "0")
        })?;
        let loc = location(&op, &r)?;
        self.upload(&op, loc, desc, open, progress)
    }

    fn absolute(&self, op: &Op<'_>, loc: &str) -> Result<String> {
        if loc.starts_with("http://") || loc.starts_with("https://") {
            Ok(loc.to_string())
        } else {
            Ok(format!("{}{loc}", self.base_url(op.host)?))
        }
    }

    fn upload(
        &self,
        op: &Op<'_>,
        loc: String,
        desc: &Descriptor,
        open: &dyn Fn(u64) -> std::io::Result<Box<dyn Read + Send>>,
        progress: Option<ocibuild_oci::layout::ByteProgress<'_>>,
    ) -> Result<BlobOutcome> {
        let d = desc.digest.to_string();
        let mut loc = self.absolute(op, &loc)?;
        ocibuild_oci::failpoint::hit("blob-upload");
        if desc.size <= CHUNK {
            let url = with_query(&loc, &format!("digest={d}"));
            let size = desc.size;
            let io_err = std::sync::Mutex::new(None);
            let r = self.send(op, &|c, _| {
                let body = match open(0) {
                    Ok(r) => reqwest::blocking::Body::sized(r, size),
                    Err(e) => {
                        if let Ok(mut g) = io_err.lock() {
                            *g = Some(e.to_string());
                        }
                        reqwest::blocking::Body::from(Vec::new())
                    }
                };
                c.put(&url)
                    .header(header::CONTENT_TYPE, "application/octet-stream")
                    .body(body)
            })?;
            if let Some(e) = io_err.lock().ok().and_then(|mut g| g.take()) {
                return Err(RegistryError::Io {
                    what: format!("reading blob {d} to push it"),
                    source: std::io::Error::other(e),
                });
            }
            if r.status().as_u16() != 201 {
                return Err(status_error(op, r));
            }
            if let Some(p) = progress {
                p(&desc.digest, desc.size, desc.size);
            }
            return Ok(BlobOutcome::Uploaded);
        }
        // Chunked: PATCH CHUNK-sized pieces; after a failed chunk, ask the registry how far it
        // got (GET on the session) and resume from there.
        let mut offset = 0u64;
        let mut failures = 0u32;
        while offset < desc.size {
            let len = CHUNK.min(desc.size - offset);
            let start = offset;
            let cur = loc.clone();
            let res = (|| -> Result<Response> {
                let mut r = open(start).map_err(|source| RegistryError::Io {
                    what: format!("reading blob {d} to push it"),
                    source,
                })?;
                let mut buf = Vec::with_capacity(len as usize);
                (&mut r)
                    .take(len)
                    .read_to_end(&mut buf)
                    .map_err(|source| RegistryError::Io {
                        what: format!("reading blob {d} to push it"),
                        source,
                    })?;
                let host = self.host(op.host)?;
                let key = (op.host.to_string(), Self::scopes(op).join(" "));
                let auth = self.auth.lock().map_err(poisoned)?.get(&key).cloned();
                let mut rb = host
                    .client
                    .patch(&cur)
                    .header(header::CONTENT_TYPE, "application/octet-stream")
                    .header(
                        header::CONTENT_RANGE,
                        format!("{}-{}", start, start + len - 1),
                    )
                    .body(buf);
                if let Some(a) = auth {
                    rb = rb.header(header::AUTHORIZATION, a);
                }
                rb.send().map_err(|e| transport(op.host, op.what, &e))
            })();
            match res {
                Ok(r) if r.status().as_u16() == 202 => {
                    loc = self.absolute(op, &location(op, &r)?)?;
                    offset = start + len;
                    failures = 0;
                    if let Some(p) = progress {
                        p(&desc.digest, offset, desc.size);
                    }
                }
                other => {
                    failures += 1;
                    if failures >= self.opts.retries {
                        return match other {
                            Ok(r) => Err(status_error(op, r)),
                            Err(e) => Err(e),
                        };
                    }
                    std::thread::sleep(backoff(failures).min(self.opts.max_backoff));
                    // where does the session stand?
                    let st = self.send(op, &|c, _| c.get(&loc))?;
                    match st.status().as_u16() {
                        204 | 202 => {
                            if let Some(new) = st
                                .headers()
                                .get(header::LOCATION)
                                .and_then(|v| v.to_str().ok())
                            {
                                loc = self.absolute(op, new)?;
                            }
                            offset = st
                                .headers()
                                .get(header::RANGE)
                                .and_then(|v| v.to_str().ok())
                                .map_or(0, upload_offset);
                        }
                        _ => {
                            // the session is gone: start a new one
                            let url = format!("/v2/{}/blobs/uploads/", op.repo);
                            let r = self.send_ok(op, &[202], &|c, base| {
                                c.post(format!("{base}{url}"))
                                    .header(header::CONTENT_LENGTH, "0")
                            })?;
                            loc = self.absolute(op, &location(op, &r)?)?;
                            offset = 0;
                        }
                    }
                }
            }
        }
        let url = with_query(&loc, &format!("digest={d}"));
        self.send_ok(op, &[201], &|c, _| {
            c.put(&url).header(header::CONTENT_LENGTH, "0")
        })?;
        Ok(BlobOutcome::Uploaded)
    }

    // ---- manifests ---------------------------------------------------------------------------

    /// Fetch a manifest or index by tag or digest: (bytes, media type, digest). The digest is
    /// computed from the bytes and checked when `reference` is a digest.
    pub fn get_manifest(
        &self,
        host: &str,
        repo: &str,
        reference: &str,
    ) -> Result<(Vec<u8>, String, Digest)> {
        let op = Op {
            host,
            repo,
            what: "pulling the manifest of",
            actions: &["pull"],
            extra_scopes: vec![],
        };
        let url = format!("/v2/{repo}/manifests/{reference}");
        let r = self.send(&op, &|c, base| {
            c.get(format!("{base}{url}"))
                .header(header::ACCEPT, MANIFEST_ACCEPT)
        })?;
        if r.status().as_u16() == 404 {
            return Err(RegistryError::Status {
                registry: host.into(),
                repository: repo.into(),
                operation: op.what.into(),
                status: 404,
                message: format!("no manifest `{reference}`"),
                hint: Some(format!(
                    "check the tag; `ocibuild tags docker://{host}/{repo}` lists them"
                )),
            });
        }
        if r.status().as_u16() != 200 {
            return Err(status_error(&op, r));
        }
        let mt = r
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.split(';').next().unwrap_or(s).trim().to_string())
            .unwrap_or_default();
        let mut bytes = Vec::new();
        r.take(ocibuild_oci::image::MAX_JSON_BLOB + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| RegistryError::Io {
                what: format!("reading the manifest of {host}/{repo}:{reference}"),
                source,
            })?;
        let d = Digest::of_bytes(&bytes);
        if let Ok(want) = Digest::parse(reference)
            && want != d
        {
            return Err(RegistryError::Oci(ocibuild_oci::OciError::DigestMismatch {
                what: format!("manifest {host}/{repo}@{reference}"),
                expected: want,
                actual: d,
            }));
        }
        let mt = if mt.is_empty() || mt == "application/json" || mt == "text/plain" {
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| {
                    v.get("mediaType")
                        .and_then(|m| m.as_str())
                        .map(str::to_string)
                })
                .unwrap_or_else(|| media::OCI_MANIFEST.to_string())
        } else {
            mt
        };
        if media::is_schema1(&mt) {
            return Err(RegistryError::Oci(ocibuild_oci::OciError::Unsupported {
                what: format!("{host}/{repo}:{reference} (a Docker schema 1 manifest)"),
                hint: "schema 1 is deprecated and unsigned; re-push the image with a current tool to convert it".into(),
            }));
        }
        Ok((bytes, mt, d))
    }

    /// Push a manifest under a tag or its digest. Returns the `OCI-Subject` header if the
    /// registry set one (it processed the subject: it has the referrers API).
    pub fn put_manifest(
        &self,
        host: &str,
        repo: &str,
        reference: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<Option<String>> {
        let op = Op {
            host,
            repo,
            what: "pushing a manifest to",
            actions: &["pull", "push"],
            extra_scopes: vec![],
        };
        let url = format!("/v2/{repo}/manifests/{reference}");
        let body = bytes.to_vec();
        let r = self.send_ok(&op, &[200, 201, 202], &|c, base| {
            c.put(format!("{base}{url}"))
                .header(header::CONTENT_TYPE, media_type)
                .body(body.clone())
        })?;
        Ok(r.headers()
            .get("oci-subject")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string))
    }

    /// Every tag of a repository (following `Link` pagination).
    pub fn list_tags(&self, host: &str, repo: &str) -> Result<Vec<String>> {
        let op = Op {
            host,
            repo,
            what: "listing the tags of",
            actions: &["pull"],
            extra_scopes: vec![],
        };
        let mut url = format!("/v2/{repo}/tags/list?n=1000");
        let mut tags = Vec::new();
        for _ in 0..1000 {
            let u = url.clone();
            let r = self.send_ok(&op, &[200], &|c, base| c.get(format!("{base}{u}")))?;
            let next = r
                .headers()
                .get(header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| l.split(';').next())
                .map(|s| {
                    s.trim()
                        .trim_start_matches('<')
                        .trim_end_matches('>')
                        .to_string()
                });
            #[derive(serde::Deserialize)]
            struct Tags {
                tags: Option<Vec<String>>,
            }
            let t: Tags = r.json().map_err(|e| RegistryError::Protocol {
                registry: host.into(),
                repository: repo.into(),
                what: format!("the tag list is not valid JSON: {e}"),
            })?;
            tags.extend(t.tags.unwrap_or_default());
            match next {
                Some(n) if !n.is_empty() => {
                    url = n.trim_start_matches(&self.base_url(host)?).to_string()
                }
                _ => break,
            }
        }
        Ok(tags)
    }

    /// Referrers of a manifest (OCI 1.1): the referrers API, or the `sha256-<hex>` tag-schema
    /// index when the registry answers 404 to it.
    pub fn referrers(
        &self,
        host: &str,
        repo: &str,
        subject: &Digest,
    ) -> Result<(ocibuild_oci::image::Index, bool)> {
        let op = Op {
            host,
            repo,
            what: "listing the referrers in",
            actions: &["pull"],
            extra_scopes: vec![],
        };
        let url = format!("/v2/{repo}/referrers/{subject}");
        let r = self.send(&op, &|c, base| {
            c.get(format!("{base}{url}"))
                .header(header::ACCEPT, media::OCI_INDEX)
        })?;
        match r.status().as_u16() {
            200 => {
                let idx = r.json().map_err(|e| RegistryError::Protocol {
                    registry: host.into(),
                    repository: repo.into(),
                    what: format!("the referrers response is not an index: {e}"),
                })?;
                Ok((idx, true))
            }
            404 => match self.get_manifest(host, repo, &fallback_tag(subject)) {
                Ok((bytes, _, _)) => {
                    let idx =
                        serde_json::from_slice(&bytes).map_err(|e| RegistryError::Protocol {
                            registry: host.into(),
                            repository: repo.into(),
                            what: format!(
                                "the referrers tag {} is not an index: {e}",
                                fallback_tag(subject)
                            ),
                        })?;
                    Ok((idx, false))
                }
                Err(RegistryError::Status { status: 404, .. }) => {
                    Ok((ocibuild_oci::image::Index::new(), false))
                }
                Err(e) => Err(e),
            },
            _ => Err(status_error(&op, r)),
        }
    }

    /// Push an artifact manifest that has a `subject`, and keep the tag-schema fallback index up
    /// to date when the registry does not process subjects itself.
    pub fn push_referrer(
        &self,
        host: &str,
        repo: &str,
        subject: &Digest,
        manifest: &[u8],
        media_type: &str,
        artifact_type: Option<&str>,
    ) -> Result<Digest> {
        let d = Digest::of_bytes(manifest);
        let processed = self.put_manifest(host, repo, &d.to_string(), manifest, media_type)?;
        if processed.is_none() {
            let (mut idx, api) = self.referrers(host, repo, subject)?;
            if !api {
                let mut desc = Descriptor::new(media_type, d.clone(), manifest.len() as u64);
                desc.artifact_type = artifact_type.map(str::to_string).or_else(|| {
                    serde_json::from_slice::<serde_json::Value>(manifest)
                        .ok()
                        .and_then(|v| {
                            v.pointer("/config/mediaType")
                                .and_then(|m| m.as_str())
                                .map(str::to_string)
                        })
                });
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(manifest)
                    && let Some(a) = v.get("annotations").and_then(|a| a.as_object())
                {
                    for (k, val) in a {
                        if let Some(s) = val.as_str() {
                            desc.annotations.insert(k.clone(), s.to_string());
                        }
                    }
                }
                idx.manifests.retain(|m| m.digest != d);
                idx.manifests.push(desc);
                let bytes = ocibuild_oci::image::to_json_bytes(&idx, "referrers index")?;
                self.put_manifest(host, repo, &fallback_tag(subject), &bytes, media::OCI_INDEX)?;
            }
        }
        Ok(d)
    }
}

/// The tag-schema fallback tag for a subject: `sha256-<hex>`.
pub fn fallback_tag(subject: &Digest) -> String {
    format!("sha256-{}", subject.hex())
}

/// How a blob reached the registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobOutcome {
    Existed,
    Mounted,
    Uploaded,
}

/// The next byte to send, from an upload session's `Range: 0-<last>` header. An empty session
/// says `0-0` (distribution) or `0--1`: both mean 0 — a one-byte session is indistinguishable,
/// and resending its byte is refused by the registry, which restarts the upload. Anything
/// unparsable restarts at 0.
fn upload_offset(range: &str) -> u64 {
    let r = range.trim().trim_start_matches("bytes=");
    match r.split_once('-') {
        Some(("0", end)) => end
            .parse::<i64>()
            .ok()
            .filter(|e| *e > 0)
            .map_or(0, |e| e as u64 + 1),
        _ => 0,
    }
}

fn with_query(url: &str, q: &str) -> String {
    if url.contains('?') {
        format!("{url}&{q}")
    } else {
        format!("{url}?{q}")
    }
}

fn location(op: &Op<'_>, r: &Response) -> Result<String> {
    r.headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| RegistryError::Protocol {
            registry: op.host.into(),
            repository: op.repo.into(),
            what: format!("{} got {} without a Location header", op.what, r.status()),
        })
}

fn retryable(s: StatusCode) -> bool {
    s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error()
}

fn retry_after(h: &HeaderMap) -> Option<Duration> {
    h.get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << attempt.min(7)))
}

fn poisoned<T>(_: std::sync::PoisonError<T>) -> RegistryError {
    RegistryError::Invalid {
        what: "registry client".into(),
        detail: "an internal lock was poisoned by a panic in another thread".into(),
    }
}

fn error_chain(e: &reqwest::Error) -> String {
    let mut detail = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        detail.push_str(&format!(": {s}"));
        src = s.source();
    }
    detail
}

fn is_certificate_error(e: &reqwest::Error) -> bool {
    let d = error_chain(e);
    d.contains("certificate") || d.contains("UnknownIssuer") || d.contains("NotValidForName")
}

/// What kind of connection failure an error is: it decides the retries and the hint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failure {
    /// Nothing listening at the address (RST to the SYN).
    Refused,
    /// The name does not resolve.
    Dns,
    /// No answer in time.
    Timeout,
    /// No route to the network or host.
    Unreachable,
    /// The TLS handshake failed for another reason than the certificate (often: the server
    /// speaks plain HTTP).
    Tls,
    Other,
}

impl Failure {
    fn of(e: &reqwest::Error) -> Failure {
        let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(s) = src {
            if let Some(io) = s.downcast_ref::<std::io::Error>() {
                match io.kind() {
                    std::io::ErrorKind::ConnectionRefused => return Failure::Refused,
                    std::io::ErrorKind::TimedOut => return Failure::Timeout,
                    std::io::ErrorKind::HostUnreachable
                    | std::io::ErrorKind::NetworkUnreachable => return Failure::Unreachable,
                    _ => {}
                }
            }
            src = s.source();
        }
        let d = error_chain(e).to_ascii_lowercase();
        if e.is_timeout() {
            Failure::Timeout
        } else if d.contains("dns error")
            || d.contains("failed to lookup address")
            || d.contains("name or service not known")
            || d.contains("no address associated")
            || d.contains("temporary failure in name resolution")
        {
            Failure::Dns
        } else if d.contains("connection refused") {
            Failure::Refused
        } else if d.contains("network is unreachable") || d.contains("no route to host") {
            Failure::Unreachable
        } else if d.contains("tls") || d.contains("handshake") || d.contains("corrupt message") {
            Failure::Tls
        } else {
            Failure::Other
        }
    }

    /// Attempts in all: a refused connection or an unknown name gets one quick retry, a
    /// timeout one more wait; resets and the like the configured retries.
    fn attempts(self, retries: u32) -> u32 {
        match self {
            Failure::Refused | Failure::Dns | Failure::Timeout | Failure::Tls => retries.min(2),
            Failure::Unreachable | Failure::Other => retries,
        }
    }

    fn wait(self, attempt: u32) -> Duration {
        match self {
            Failure::Refused | Failure::Dns => Duration::from_millis(200),
            _ => backoff(attempt),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Failure::Refused => "connection refused",
            Failure::Dns => "the name does not resolve",
            Failure::Timeout => "no answer in time",
            Failure::Unreachable => "no route",
            Failure::Tls => "TLS handshake failed",
            Failure::Other => "connection error",
        }
    }
}

/// `host:port`, with the HTTPS port when the host names none.
fn address(host: &str) -> String {
    let has_port = if let Some(rest) = host.strip_prefix('[') {
        rest.contains("]:")
    } else {
        host.rsplit_once(':')
            .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    };
    if has_port {
        host.to_string()
    } else {
        format!("{host}:443")
    }
}

/// What to do about a connection failure to `host`.
fn connect_hint(host: &str, kind: Failure) -> String {
    let addr = address(host);
    // mirrors are configured per registry name: Docker Hub's is not its API host's
    let registry = if host == ocibuild_oci::reference::DOCKER_HUB_API {
        ocibuild_oci::reference::DOCKER_HUB
    } else {
        host
    };
    let mirror = format!(
        "if this machine cannot reach {host}, pull through a mirror that it can reach: --registry-mirror {registry}=MIRROR[:PORT]"
    );
    match kind {
        Failure::Refused => format!(
            "nothing is listening at {addr} (connection refused): is the registry running, and on that port?"
        ),
        Failure::Dns => format!(
            "the name `{}` does not resolve: check the registry name; {mirror}",
            host_name(host)
        ),
        Failure::Timeout => format!(
            "{addr} did not answer in time: check the network, a firewall, and the proxy settings (HTTPS_PROXY, NO_PROXY); {mirror}"
        ),
        Failure::Unreachable => format!(
            "there is no route to {addr}: check the network and the proxy settings (HTTPS_PROXY, NO_PROXY); {mirror}"
        ),
        Failure::Tls if !is_loopback(host) => format!(
            "the TLS handshake with {addr} failed: if it is a plain-HTTP registry, add --insecure-registry {host}"
        ),
        Failure::Tls => format!("the TLS handshake with {addr} failed"),
        Failure::Other => format!("is the registry at {addr} running and reachable?"),
    }
}

/// The host name without its port.
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(host);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

fn transport(host: &str, what: &str, e: &reqwest::Error) -> RegistryError {
    // reqwest errors carry the URL; ours never contain credentials (they go in headers).
    let detail = error_chain(e);
    let hint = if is_certificate_error(e) {
        Some(format!(
            "the registry's TLS certificate is not trusted: pass --ca-cert FILE, or put the CA (or a self-signed registry's own certificate) in /etc/containers/certs.d/{host}/ca.crt"
        ))
    } else if e.is_connect() || e.is_timeout() || e.is_request() {
        Some(connect_hint(host, Failure::of(e)))
    } else {
        None
    };
    RegistryError::Transport {
        registry: host.to_string(),
        operation: what.to_string(),
        detail,
        hint,
    }
}

/// An error from a response, with the spec's error envelope parsed.
pub fn status_error(op: &Op<'_>, r: Response) -> RegistryError {
    let status = r.status().as_u16();
    let body = r.text().unwrap_or_default();
    #[derive(serde::Deserialize)]
    struct Env {
        errors: Vec<E>,
    }
    #[derive(serde::Deserialize)]
    struct E {
        code: Option<String>,
        message: Option<String>,
    }
    let message = serde_json::from_str::<Env>(&body)
        .ok()
        .map(|e| {
            e.errors
                .iter()
                .map(|e| {
                    format!(
                        "{}: {}",
                        e.code.as_deref().unwrap_or("ERROR"),
                        e.message.as_deref().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| {
            let b: String = body.chars().take(200).collect();
            if b.trim().is_empty() {
                StatusCode::from_u16(status)
                    .map(|s| s.canonical_reason().unwrap_or("").to_string())
                    .unwrap_or_default()
            } else {
                b
            }
        });
    let hint = match status {
        401 => Some(format!(
            "no credentials were accepted: run `ocibuild login {}` or pass --creds USER:PASS",
            op.host
        )),
        403 => {
            Some("the credentials are valid but lack permission for this repository".to_string())
        }
        404 => Some("check the repository name and tag".to_string()),
        429 => Some("the registry is rate-limiting; try again later".to_string()),
        _ => None,
    };
    RegistryError::Status {
        registry: op.host.to_string(),
        repository: op.repo.to_string(),
        operation: op.what.to_string(),
        status,
        message,
        hint,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn mirror_flags() {
        let m = parse_mirror_flag("docker.io=a:5000,b:5000;exclusive").unwrap();
        assert_eq!(m.mirrors, vec!["a:5000", "b:5000"]);
        assert!(m.exclusive);
        assert!(!parse_mirror_flag("index.docker.io=a").unwrap().exclusive);
        assert_eq!(
            parse_mirror_flag("index.docker.io=a").unwrap().registry,
            "docker.io"
        );
        assert!(parse_mirror_flag("docker.io").is_err());
        assert!(parse_mirror_flag("docker.io=a;sometimes").is_err());
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("myregistry.azurecr.io"));
        assert!(!is_loopback("10.0.0.1:5000"));
    }

    #[test]
    fn addresses_and_hints() {
        assert_eq!(address("127.0.0.1:25599"), "127.0.0.1:25599");
        assert_eq!(address("reg.example"), "reg.example:443");
        assert_eq!(address("[::1]:5000"), "[::1]:5000");
        assert_eq!(address("[::1]"), "[::1]:443");
        assert_eq!(host_name("reg.example:5000"), "reg.example");
        let h = connect_hint("127.0.0.1:25599", Failure::Refused);
        assert!(h.contains("nothing is listening at 127.0.0.1:25599"), "{h}");
        assert!(!h.contains("insecure"), "{h}");
        let h = connect_hint("reg.example", Failure::Dns);
        assert!(
            h.contains("--registry-mirror reg.example=") && h.contains("`reg.example`"),
            "{h}"
        );
        assert!(connect_hint("reg.example", Failure::Timeout).contains("--registry-mirror"));
        let hub = ocibuild_oci::reference::DOCKER_HUB;
        let api = ocibuild_oci::reference::DOCKER_HUB_API;
        assert!(connect_hint(api, Failure::Dns).contains(&format!("--registry-mirror {hub}=")));
        assert!(
            connect_hint("reg.example:5000", Failure::Tls)
                .contains("--insecure-registry reg.example:5000")
        );
        assert!(!connect_hint("localhost:5000", Failure::Tls).contains("insecure"));
        assert_eq!(Failure::Refused.attempts(6), 2);
        assert_eq!(Failure::Other.attempts(6), 6);
        assert!(Failure::Refused.wait(5) < Duration::from_secs(1));
    }

    #[test]
    fn retry_after_and_backoff() {
        let mut h = HeaderMap::new();
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        assert!(backoff(1) < backoff(2));
        assert_eq!(
            with_query("http://a/x?_state=1", "digest=d"),
            "http://a/x?_state=1&digest=d"
        );
    }
}
