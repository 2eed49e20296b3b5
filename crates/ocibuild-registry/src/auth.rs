//! Registry authentication: secrets that never print, credentials, `WWW-Authenticate` challenges,
//! the Docker token protocol (GET with Basic, OAuth2 refresh-token POST), a token cache, and the
//! [`Keychain`] that finds credentials for a registry the way docker/podman users expect
//! (`--creds`, environment, containers `auth.json`, `~/.docker/config.json` with credential helpers,
//! and Azure Container Registry's Entra exchange built in).
//!
//! Nothing here reads the process environment except [`KeychainOptions::from_process_env`]: every
//! lookup goes through an injected environment map, so tests never mutate the process env.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;

use crate::{acr, config};

/// A snapshot of environment variables (the process's, or a test's).
pub type Env = BTreeMap<String, String>;

/// Authentication failures. Never carries a secret: messages are built from hosts, key names,
/// status codes and server-provided descriptions only.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The token server answered 401/403 to our credentials (or to an anonymous request).
    #[error(
        "{} for {registry} {} rejected by {realm_host} ({status}){} — {}",
        if *.anonymous { "an anonymous token request" } else { "credentials" },
        if *.anonymous { "was" } else { "were" },
        detail.as_ref().map(|d| format!(": {d}")).unwrap_or_default(),
        if *.anonymous { format!("this repository needs credentials: run `ocibuild login {registry}` or pass --creds") }
        else { format!("check them, or run `ocibuild login {registry}` to store new ones") }
    )]
    Rejected {
        registry: String,
        realm_host: String,
        status: u16,
        anonymous: bool,
        detail: Option<String>,
    },

    /// The token server failed in another way (5xx, malformed answer…).
    #[error("token server {realm_host} for {registry}: {detail}")]
    TokenServer {
        registry: String,
        realm_host: String,
        detail: String,
    },

    /// A `WWW-Authenticate` challenge we cannot use.
    #[error("unusable authentication challenge from {registry}: {detail}")]
    Challenge { registry: String, detail: String },

    /// A docker config.json / auth.json that cannot be read or written.
    #[error("{path}: {detail}")]
    Config { path: String, detail: String },

    /// A credential helper named in a config file is not installed.
    #[error(
        "{key} says `{name}` but docker-credential-{name} is not on PATH — install it, or remove {key} from {config}"
    )]
    HelperMissing {
        key: String,
        name: String,
        config: String,
    },

    /// A credential helper ran and failed.
    #[error("docker-credential-{name} {action} for {server}: {detail}")]
    Helper {
        name: String,
        action: String,
        server: String,
        detail: String,
    },

    /// Every Microsoft Entra token source failed for an ACR registry.
    #[error("{}", acr::describe_failure(registry, attempts))]
    AcrNoToken {
        registry: String,
        attempts: Vec<acr::Attempt>,
    },

    /// ACR's `/oauth2/exchange` or `/oauth2/token` refused.
    #[error("ACR {registry} {endpoint}: {detail}")]
    Acr {
        registry: String,
        endpoint: String,
        detail: String,
    },

    /// Network failure talking to an auth endpoint.
    #[error("cannot reach {what}: {detail}")]
    Transport { what: String, detail: String },

    #[error("{0}")]
    Other(String),
}

// ---------------------------------------------------------------------------------------------
// Secrets and credentials

/// A password or token. `Debug` and `Display` print `<redacted>`; use [`Secret::expose`] only at
/// the point where the value goes on the wire.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}
impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_string())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}
impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// What we present to a registry's token server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    Basic {
        username: String,
        password: Secret,
    },
    /// docker config `identitytoken`: an OAuth2 refresh token.
    IdentityToken(Secret),
    /// A pre-issued bearer token (docker config `registrytoken`), used as is.
    RegistryToken(Secret),
}

impl Credential {
    pub fn basic(username: impl Into<String>, password: impl Into<Secret>) -> Self {
        Credential::Basic {
            username: username.into(),
            password: password.into(),
        }
    }
    /// The secret part, for scrubbing it out of any server text we might quote.
    fn secret(&self) -> &Secret {
        match self {
            Credential::Basic { password, .. } => password,
            Credential::IdentityToken(s) | Credential::RegistryToken(s) => s,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// WWW-Authenticate

/// One challenge of a `WWW-Authenticate` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// Lowercased scheme: `bearer`, `basic`, …
    pub scheme: String,
    /// Lowercased parameter names → values (`realm`, `service`, `scope`, `error`…). A bare token68
    /// is stored under `token68`.
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
    pub fn realm(&self) -> Option<&str> {
        self.param("realm")
    }
    pub fn service(&self) -> Option<&str> {
        self.param("service")
    }
    pub fn is_bearer(&self) -> bool {
        self.scheme == "bearer"
    }
    pub fn is_basic(&self) -> bool {
        self.scheme == "basic"
    }
}

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// Parse a `WWW-Authenticate` header (RFC 9110 §11.6.1): several challenges, comma-separated
/// parameters, quoted strings with commas and backslash escapes. Lenient with unquoted values
/// (they run to the next comma) and stray commas.
pub fn parse_www_authenticate(header: &str) -> Vec<Challenge> {
    let s: Vec<char> = header.chars().collect();
    let mut pos = 0usize;
    let mut out = Vec::new();
    let skip_ws = |pos: &mut usize| {
        while *pos < s.len() && s[*pos].is_whitespace() {
            *pos += 1;
        }
    };
    let read_token = |pos: &mut usize| {
        let start = *pos;
        while *pos < s.len() && is_tchar(s[*pos]) {
            *pos += 1;
        }
        s[start..*pos].iter().collect::<String>()
    };
    loop {
        while pos < s.len() && (s[pos].is_whitespace() || s[pos] == ',') {
            pos += 1;
        }
        if pos >= s.len() {
            break;
        }
        let scheme = read_token(&mut pos);
        if scheme.is_empty() {
            pos += 1; // garbage character: skip it
            continue;
        }
        let mut params = BTreeMap::new();
        let mut saw_comma = false;
        loop {
            skip_ws(&mut pos);
            if pos >= s.len() {
                break;
            }
            if s[pos] == ',' {
                saw_comma = true;
                pos += 1;
                continue;
            }
            let save = pos;
            let name = read_token(&mut pos);
            if name.is_empty() {
                pos += 1;
                continue;
            }
            skip_ws(&mut pos);
            if pos < s.len() && s[pos] == '=' {
                pos += 1;
                // token68 ("abc==") : '=' padding, then end or comma
                if pos >= s.len() || s[pos] == '=' || s[pos] == ',' {
                    if !params.is_empty() || saw_comma {
                        params.insert(name.to_ascii_lowercase(), String::new());
                        continue;
                    }
                    let mut t = name.clone();
                    t.push('=');
                    while pos < s.len() && s[pos] == '=' {
                        t.push('=');
                        pos += 1;
                    }
                    params.insert("token68".to_string(), t);
                    continue;
                }
                skip_ws(&mut pos);
                let value = if pos < s.len() && s[pos] == '"' {
                    pos += 1;
                    let mut v = String::new();
                    while pos < s.len() && s[pos] != '"' {
                        if s[pos] == '\\' && pos + 1 < s.len() {
                            pos += 1;
                        }
                        v.push(s[pos]);
                        pos += 1;
                    }
                    pos += 1; // closing quote (or past the end)
                    v
                } else {
                    let start = pos;
                    while pos < s.len() && s[pos] != ',' && !s[pos].is_whitespace() {
                        pos += 1;
                    }
                    s[start..pos].iter().collect()
                };
                params.insert(name.to_ascii_lowercase(), value);
            } else if params.is_empty() && !saw_comma && (pos >= s.len() || s[pos] == ',') {
                // a bare token68 right after the scheme
                params.insert("token68".to_string(), name);
            } else {
                // the start of the next challenge
                pos = save;
                break;
            }
        }
        out.push(Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params,
        });
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Tokens

/// A bearer token and when it stops being usable.
#[derive(Clone, Debug)]
pub struct Token {
    pub token: Secret,
    pub expires_at: Instant,
}

/// `repository:<repo>:<actions,…>`, e.g. `scope("app", &["pull", "push"])`.
pub fn scope(repo: &str, actions: &[&str]) -> String {
    format!("repository:{repo}:{}", actions.join(","))
}

/// Lifetime assumed when the token server does not say (the distribution spec's minimum).
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// Lifetime given to a pre-issued [`Credential::RegistryToken`].
const REGISTRY_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// An error and its sources, `: `-joined (reqwest's own message alone says little). Callers pass
/// errors whose URL has been dropped (`without_url`), so no query string is quoted.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

fn host_of(url: &url::Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => url.as_str().to_string(),
    }
}

/// Run the Docker token protocol against `ch`'s realm for `scopes`.
///
/// - no credential: anonymous `GET realm?service=…&scope=…`;
/// - [`Credential::Basic`]: the same GET with Basic auth (and `account=<user>`);
/// - [`Credential::IdentityToken`]: `POST realm` form `grant_type=refresh_token` (docker's OAuth2
///   flow, what ACR uses);
/// - [`Credential::RegistryToken`]: returned as is.
///
/// The registry named in errors is the challenge's `service`; see [`fetch_token_for`].
pub fn fetch_token(
    http: &Client,
    ch: &Challenge,
    scopes: &[String],
    cred: Option<&Credential>,
) -> Result<Token, AuthError> {
    fetch_token_for(http, None, ch, scopes, cred)
}

/// [`fetch_token`] with the registry host to name in errors (`ocibuild login <registry>`).
pub fn fetch_token_for(
    http: &Client,
    registry: Option<&str>,
    ch: &Challenge,
    scopes: &[String],
    cred: Option<&Credential>,
) -> Result<Token, AuthError> {
    let realm_s = ch.realm().unwrap_or_default();
    let registry = registry
        .map(str::to_string)
        .or_else(|| ch.service().map(str::to_string))
        .unwrap_or_else(|| realm_s.to_string());
    if !ch.is_bearer() {
        return Err(AuthError::Challenge {
            registry,
            detail: format!("scheme `{}` is not a bearer challenge", ch.scheme),
        });
    }
    if let Some(Credential::RegistryToken(t)) = cred {
        return Ok(Token {
            token: t.clone(),
            expires_at: Instant::now() + REGISTRY_TOKEN_LIFETIME,
        });
    }
    let mut realm = url::Url::parse(realm_s).map_err(|e| AuthError::Challenge {
        registry: registry.clone(),
        detail: format!("realm `{realm_s}` is not a URL: {e}"),
    })?;
    let realm_host = host_of(&realm);
    let service = ch.service();

    let req = match cred {
        Some(Credential::IdentityToken(refresh)) => {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "refresh_token");
            form.append_pair("refresh_token", refresh.expose());
            if let Some(s) = service {
                form.append_pair("service", s);
            }
            if !scopes.is_empty() {
                form.append_pair("scope", &scopes.join(" "));
            }
            form.append_pair("client_id", "ocibuild");
            http.post(realm.clone())
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(form.finish())
        }
        _ => {
            {
                let mut q = realm.query_pairs_mut();
                if let Some(s) = service {
                    q.append_pair("service", s);
                }
                for sc in scopes {
                    q.append_pair("scope", sc);
                }
                if let Some(Credential::Basic { username, .. }) = cred {
                    q.append_pair("account", username);
                }
                q.append_pair("client_id", "ocibuild");
            }
            let rb = http.get(realm.clone());
            match cred {
                Some(Credential::Basic { username, password }) => {
                    rb.basic_auth(username, Some(password.expose()))
                }
                _ => rb,
            }
        }
    };

    let resp = req.send().map_err(|e| AuthError::Transport {
        what: format!("token server {realm_host} for {registry}"),
        detail: error_chain(&e.without_url()),
    })?;
    let status = resp.status();
    let body = resp.text().unwrap_or_default();
    let scrub = |t: String| match cred {
        Some(c) if !c.secret().is_empty() => t.replace(c.secret().expose(), "<redacted>"),
        _ => t,
    };
    if status.as_u16() == 401 || status.as_u16() == 403 {
        return Err(AuthError::Rejected {
            registry,
            realm_host,
            status: status.as_u16(),
            anonymous: cred.is_none(),
            detail: server_error_text(&body).map(scrub),
        });
    }
    if !status.is_success() {
        let detail = server_error_text(&body).map(scrub).unwrap_or_default();
        return Err(AuthError::TokenServer {
            registry,
            realm_host,
            detail: format!("HTTP {status} {detail}").trim().to_string(),
        });
    }
    parse_token_response(&body).map_err(|detail| AuthError::TokenServer {
        registry,
        realm_host,
        detail,
    })
}

/// `{"token"|"access_token": …, "expires_in": …}` → [`Token`].
pub(crate) fn parse_token_response(body: &str) -> Result<Token, String> {
    let v: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("answer is not JSON ({e})"))?;
    let tok = v
        .get("token")
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())
        .or_else(|| v.get("access_token").and_then(|t| t.as_str()))
        .filter(|t| !t.is_empty())
        .ok_or_else(|| "answer has neither `token` nor `access_token`".to_string())?;
    let secs = v
        .get("expires_in")
        .and_then(|e| {
            e.as_u64()
                .or_else(|| e.as_str().and_then(|s| s.parse().ok()))
        })
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TOKEN_LIFETIME)
        .max(DEFAULT_TOKEN_LIFETIME);
    Ok(Token {
        token: Secret::new(tok),
        expires_at: Instant::now() + secs,
    })
}

/// A short human text out of an error body: the distribution envelope, OAuth2's
/// `error_description`, or the first line of plain text (clipped).
pub(crate) fn server_error_text(body: &str) -> Option<String> {
    let clip = |s: &str| {
        let s = s.trim();
        if s.chars().count() > 300 {
            format!("{}…", s.chars().take(300).collect::<String>())
        } else {
            s.to_string()
        }
    };
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(body) {
        if let Some(errs) = v.get("errors").and_then(|e| e.as_array()) {
            let msgs: Vec<String> = errs
                .iter()
                .filter_map(|e| {
                    let code = e.get("code").and_then(|c| c.as_str()).unwrap_or_default();
                    let msg = e
                        .get("message")
                        .and_then(|c| c.as_str())
                        .unwrap_or_default();
                    let t = format!("{code} {msg}");
                    (!t.trim().is_empty()).then(|| t.trim().to_string())
                })
                .collect();
            if !msgs.is_empty() {
                return Some(clip(&msgs.join("; ")));
            }
        }
        for k in ["error_description", "details", "message", "error"] {
            if let Some(s) = v.get(k).and_then(|x| x.as_str()) {
                return Some(clip(s));
            }
        }
        return None;
    }
    let first = body.lines().find(|l| !l.trim().is_empty())?;
    Some(clip(first))
}

/// Thread-safe cache of bearer tokens, keyed by realm + service + sorted scopes. A token is
/// handed out only while it has more than `margin` left to live.
pub struct TokenCache {
    margin: Duration,
    map: Mutex<HashMap<String, Token>>,
}

impl Default for TokenCache {
    fn default() -> Self {
        Self::new()
    }
}

impl TokenCache {
    /// Margin of 10 s (tokens live at least 60 s).
    pub fn new() -> Self {
        Self::with_margin(Duration::from_secs(10))
    }
    pub fn with_margin(margin: Duration) -> Self {
        TokenCache {
            margin,
            map: Mutex::new(HashMap::new()),
        }
    }
    pub fn key(ch: &Challenge, scopes: &[String]) -> String {
        let mut s: Vec<&str> = scopes.iter().map(String::as_str).collect();
        s.sort_unstable();
        s.dedup();
        format!(
            "{}\n{}\n{}",
            ch.realm().unwrap_or_default(),
            ch.service().unwrap_or_default(),
            s.join(" ")
        )
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Token>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
    pub fn get(&self, ch: &Challenge, scopes: &[String]) -> Option<Token> {
        let key = Self::key(ch, scopes);
        let mut m = self.lock();
        match m.get(&key) {
            Some(t) if t.expires_at > Instant::now() + self.margin => Some(t.clone()),
            Some(_) => {
                m.remove(&key);
                None
            }
            None => None,
        }
    }
    pub fn insert(&self, ch: &Challenge, scopes: &[String], token: Token) {
        self.lock().insert(Self::key(ch, scopes), token);
    }
    /// Forget a token the registry refused.
    pub fn invalidate(&self, ch: &Challenge, scopes: &[String]) {
        self.lock().remove(&Self::key(ch, scopes));
    }
    pub fn clear(&self) {
        self.lock().clear();
    }
    /// The cached token, or a fresh one from [`fetch_token_for`] (then cached).
    pub fn get_or_fetch(
        &self,
        http: &Client,
        registry: Option<&str>,
        ch: &Challenge,
        scopes: &[String],
        cred: Option<&Credential>,
    ) -> Result<Token, AuthError> {
        if let Some(t) = self.get(ch, scopes) {
            return Ok(t);
        }
        let t = fetch_token_for(http, registry, ch, scopes, cred)?;
        self.insert(ch, scopes, t.clone());
        Ok(t)
    }
}

// ---------------------------------------------------------------------------------------------
// Keychain

/// Where the [`Keychain`] looks. `Debug` shows the environment's names, never its values.
#[derive(Clone, Default)]
pub struct KeychainOptions {
    /// `--creds USER:PASS`.
    pub creds: Option<(String, Secret)>,
    /// A snapshot of the environment (see [`KeychainOptions::from_process_env`]).
    pub env: Env,
    /// Override of the docker config file; default `$DOCKER_CONFIG/config.json` or
    /// `~/.docker/config.json`.
    pub docker_config: Option<PathBuf>,
    /// Hosts treated as ACR in addition to `*.azurecr.io`.
    pub acr_hosts: Vec<String>,
    /// Hosts reached over plain HTTP for the ACR exchange besides loopback ones
    /// (`--insecure-registry`).
    pub plain_http_hosts: Vec<String>,
}

impl fmt::Debug for KeychainOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeychainOptions")
            .field("creds", &self.creds.as_ref().map(|(u, p)| (u, p)))
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("docker_config", &self.docker_config)
            .field("acr_hosts", &self.acr_hosts)
            .field("plain_http_hosts", &self.plain_http_hosts)
            .finish()
    }
}

impl KeychainOptions {
    /// Options with `env` = the current process environment (non-UTF-8 entries skipped).
    pub fn from_process_env() -> Self {
        KeychainOptions {
            env: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
            ..Default::default()
        }
    }
    /// Options with exactly this environment (tests).
    pub fn with_env(env: Env) -> Self {
        KeychainOptions {
            env,
            ..Default::default()
        }
    }
}

/// Finds credentials for a registry; results are cached per host for the process lifetime.
pub struct Keychain {
    opts: KeychainOptions,
    cache: Mutex<HashMap<String, Option<(Credential, String)>>>,
}

fn nonempty<'a>(env: &'a Env, k: &str) -> Option<&'a str> {
    env.get(k).map(String::as_str).filter(|v| !v.is_empty())
}

impl Keychain {
    pub fn new(opts: KeychainOptions) -> Self {
        Keychain {
            opts,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn options(&self) -> &KeychainOptions {
        &self.opts
    }

    /// The docker config file this keychain reads.
    pub fn docker_config_path(&self) -> PathBuf {
        self.opts
            .docker_config
            .clone()
            .unwrap_or_else(|| config::docker_config_path(&self.opts.env))
    }

    /// Is `registry` an Azure Container Registry (by name or configuration)?
    pub fn is_acr(&self, registry: &str) -> bool {
        acr::is_acr_host(&config::normalize_registry(registry), &self.opts.acr_hosts)
    }

    /// Drop the cached credential for `registry` (after the registry rejected it).
    pub fn forget(&self, registry: &str) {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&config::normalize_registry(registry));
    }

    /// The credential for `registry` and where it came from, or `None` (anonymous).
    ///
    /// Order: `--creds`; `OCIBUILD_REGISTRY_USER`/`OCIBUILD_REGISTRY_PASSWORD`;
    /// `REGISTRY_AUTH_FILE`; `$XDG_RUNTIME_DIR/containers/auth.json`; docker config
    /// (`credHelpers[host]`, `credsStore`, `auths[host]`); for ACR hosts the Entra exchange.
    /// For an ACR host where every Entra source fails, the error is [`AuthError::AcrNoToken`]
    /// (callers may still try anonymously).
    pub fn resolve(
        &self,
        http: &Client,
        registry: &str,
    ) -> Result<Option<(Credential, String)>, AuthError> {
        let host = config::normalize_registry(registry);
        if let Some(hit) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&host)
        {
            return Ok(hit.clone());
        }
        let found = self.resolve_uncached(http, &host)?;
        if let Some((_, src)) = &found {
            tracing::debug!(registry = %host, source = %src, "credentials found");
        }
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(host, found.clone());
        Ok(found)
    }

    fn resolve_uncached(
        &self,
        http: &Client,
        host: &str,
    ) -> Result<Option<(Credential, String)>, AuthError> {
        let env = &self.opts.env;
        if let Some((u, p)) = &self.opts.creds {
            return Ok(Some((
                Credential::Basic {
                    username: u.clone(),
                    password: p.clone(),
                },
                "--creds".into(),
            )));
        }
        if let (Some(u), Some(p)) = (
            nonempty(env, "OCIBUILD_REGISTRY_USER"),
            env.get("OCIBUILD_REGISTRY_PASSWORD"),
        ) {
            return Ok(Some((
                Credential::basic(u, p.as_str()),
                "OCIBUILD_REGISTRY_USER/OCIBUILD_REGISTRY_PASSWORD".into(),
            )));
        }
        for path in config::containers_auth_paths(env) {
            if let Some(found) = config::lookup(&path, host, env)? {
                return Ok(Some(found));
            }
        }
        if let Some(found) = config::lookup(&self.docker_config_path(), host, env)? {
            return Ok(Some(found));
        }
        if acr::is_acr_host(host, &self.opts.acr_hosts) {
            let base = acr::registry_base_url(host, &self.opts.plain_http_hosts);
            let (refresh, source) = acr::refresh_token(http, &base, host, env)?;
            return Ok(Some((
                Credential::Basic {
                    username: acr::REFRESH_TOKEN_USERNAME.to_string(),
                    password: refresh,
                },
                format!("ACR exchange ({source})"),
            )));
        }
        Ok(None)
    }
}
