//! Authentication tests: WWW-Authenticate parsing, the Docker token protocol against a token-server
//! fixture, the ACR exchange against `AcrFixture` (an in-process stand-in for ACR's
//! `/oauth2/exchange` and `/oauth2/token`) with fake Entra/IMDS fixtures, the keychain's resolution
//! order, docker config credentials and helpers, login/logout.
//!
//! Everything runs on loopback; no test touches the process environment or 169.254.169.254.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use ocibuild_registry::acr;
use ocibuild_registry::auth::{
    AuthError, Challenge, Credential, Env, Keychain, KeychainOptions, Secret, TokenCache,
    fetch_token, parse_www_authenticate, scope,
};
use ocibuild_registry::config;
use serde_json::json;

// ---------------------------------------------------------------------------------------------
// a tiny HTTP/1.1 fixture server

#[derive(Clone, Debug)]
struct Req {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    headers: BTreeMap<String, String>,
    body: String,
}

impl Req {
    fn q(&self, k: &str) -> Vec<String> {
        self.query
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .collect()
    }
    fn q1(&self, k: &str) -> Option<String> {
        self.q(k).into_iter().next()
    }
    fn header(&self, k: &str) -> Option<&str> {
        self.headers
            .get(&k.to_ascii_lowercase())
            .map(String::as_str)
    }
    fn form(&self) -> BTreeMap<String, String> {
        url::form_urlencoded::parse(self.body.as_bytes())
            .into_owned()
            .collect()
    }
    fn basic(&self) -> Option<(String, String)> {
        let v = self.header("authorization")?.strip_prefix("Basic ")?;
        let raw =
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(v).ok()?).ok()?;
        let (u, p) = raw.split_once(':')?;
        Some((u.to_string(), p.to_string()))
    }
    fn host(&self) -> String {
        self.header("host").unwrap_or_default().to_string()
    }
}

struct Resp {
    status: u16,
    body: String,
}

fn json_resp(status: u16, v: serde_json::Value) -> Resp {
    Resp {
        status,
        body: v.to_string(),
    }
}

type Handler = dyn Fn(&Req) -> Resp + Send + Sync;

struct HttpFixture {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Req>>>,
}

impl HttpFixture {
    fn start(handler: impl Fn(&Req) -> Resp + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let log2 = log.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (h, l) = (handler.clone(), log2.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &*h, &l);
                });
            }
        });
        HttpFixture { addr, log }
    }
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
    fn host(&self) -> String {
        self.addr.to_string()
    }
    fn requests(&self) -> Vec<Req> {
        self.log.lock().unwrap().clone()
    }
}

fn serve(conn: TcpStream, handler: &Handler, log: &Mutex<Vec<Req>>) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut r = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    let (path, qs) = target.split_once('?').unwrap_or((&target, ""));
    let req = Req {
        method,
        path: path.to_string(),
        query: url::form_urlencoded::parse(qs.as_bytes())
            .into_owned()
            .collect(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    log.lock().unwrap().push(req.clone());
    let resp = handler(&req);
    let mut w = conn;
    write!(
        w,
        "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        resp.status,
        resp.body.len(),
        resp.body
    )?;
    w.flush()
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// A loopback URL nobody listens on.
fn closed_port_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    format!("http://{a}/metadata/identity/oauth2/token")
}

/// A minimal environment: HOME in a temp dir, PATH = an empty bin dir, IMDS pointed at a closed
/// loopback port (never 169.254.169.254).
struct TestEnv {
    dir: tempfile::TempDir,
    env: Env,
}

impl TestEnv {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&bin).unwrap();
        let mut env = Env::new();
        env.insert("HOME".into(), home.display().to_string());
        env.insert("PATH".into(), bin.display().to_string());
        env.insert("OCIBUILD_IMDS_ENDPOINT".into(), closed_port_url());
        TestEnv { dir, env }
    }
    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }
    fn bin(&self) -> PathBuf {
        self.dir.path().join("bin")
    }
    fn set(&mut self, k: &str, v: impl Into<String>) -> &mut Self {
        self.env.insert(k.into(), v.into());
        self
    }
    fn docker_config(&self) -> PathBuf {
        self.home().join(".docker/config.json")
    }
    fn write_docker_config(&self, v: serde_json::Value) {
        write_json(&self.docker_config(), &v);
    }
    /// Write an executable shell script into the env's bin dir.
    fn script(&self, name: &str, body: &str) -> PathBuf {
        let p = self.bin().join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }
    fn keychain(&self) -> Keychain {
        Keychain::new(KeychainOptions::with_env(self.env.clone()))
    }
}

fn write_json(path: &Path, v: &serde_json::Value) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, serde_json::to_string_pretty(v).unwrap()).unwrap();
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn basic(u: &str, p: &str) -> Credential {
    Credential::basic(u, p)
}

fn assert_no_secret(e: &AuthError, secret: &str) {
    assert!(!format!("{e}").contains(secret), "secret in Display: {e}");
    assert!(!format!("{e:?}").contains(secret), "secret in Debug: {e:?}");
}

// ---------------------------------------------------------------------------------------------
// WWW-Authenticate, scopes, secrets

fn ch(scheme: &str, params: &[(&str, &str)]) -> Challenge {
    Challenge {
        scheme: scheme.into(),
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

#[test]
fn www_authenticate_table() {
    let cases: Vec<(&str, Vec<Challenge>)> = vec![
        // docker-registry (distribution) token auth
        (
            r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:samalba/my-app:pull,push""#,
            vec![ch(
                "bearer",
                &[
                    ("realm", "https://auth.example.com/token"),
                    ("service", "registry.example.com"),
                    ("scope", "repository:samalba/my-app:pull,push"),
                ],
            )],
        ),
        // distribution with an error parameter
        (
            r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:app:pull,push",error="insufficient_scope""#,
            vec![ch(
                "bearer",
                &[
                    ("realm", "https://auth.example.com/token"),
                    ("service", "registry.example.com"),
                    ("scope", "repository:app:pull,push"),
                    ("error", "insufficient_scope"),
                ],
            )],
        ),
        // docker-registry htpasswd
        (
            r#"Basic realm="Registry Realm""#,
            vec![ch("basic", &[("realm", "Registry Realm")])],
        ),
        // ACR on /v2/
        (
            r#"Bearer realm="https://myregistry.azurecr.io/oauth2/token",service="myregistry.azurecr.io""#,
            vec![ch(
                "bearer",
                &[
                    ("realm", "https://myregistry.azurecr.io/oauth2/token"),
                    ("service", "myregistry.azurecr.io"),
                ],
            )],
        ),
        // ACR on a repository
        (
            r#"Bearer realm="https://myregistry.azurecr.io/oauth2/token",service="myregistry.azurecr.io",scope="repository:team/app:pull,push""#,
            vec![ch(
                "bearer",
                &[
                    ("realm", "https://myregistry.azurecr.io/oauth2/token"),
                    ("service", "myregistry.azurecr.io"),
                    ("scope", "repository:team/app:pull,push"),
                ],
            )],
        ),
        // Docker Hub
        (
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#,
            vec![ch(
                "bearer",
                &[
                    ("realm", "https://auth.docker.io/token"),
                    ("service", "registry.docker.io"),
                    ("scope", "repository:library/alpine:pull"),
                ],
            )],
        ),
        // GHCR
        (
            r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:user/image:pull""#,
            vec![ch(
                "bearer",
                &[
                    ("realm", "https://ghcr.io/token"),
                    ("service", "ghcr.io"),
                    ("scope", "repository:user/image:pull"),
                ],
            )],
        ),
        // several challenges in one header, spaces after commas, case
        (
            r#"Basic realm="Registry", BEARER Realm="https://t.example/token", service="svc", scope="repository:a:pull""#,
            vec![
                ch("basic", &[("realm", "Registry")]),
                ch(
                    "bearer",
                    &[
                        ("realm", "https://t.example/token"),
                        ("service", "svc"),
                        ("scope", "repository:a:pull"),
                    ],
                ),
            ],
        ),
        // escapes inside quoted strings, unquoted values
        (
            r#"Bearer realm="https://t.example/token",service=reg.example,error_description="a \"quoted\" word, and a \\ backslash""#,
            vec![ch(
                "bearer",
                &[
                    ("realm", "https://t.example/token"),
                    ("service", "reg.example"),
                    ("error_description", r#"a "quoted" word, and a \ backslash"#),
                ],
            )],
        ),
        // token68 and bare schemes
        (
            "Negotiate abc123==, Basic realm=\"x\"",
            vec![
                ch("negotiate", &[("token68", "abc123==")]),
                ch("basic", &[("realm", "x")]),
            ],
        ),
        (
            "Negotiate, NTLM",
            vec![ch("negotiate", &[]), ch("ntlm", &[])],
        ),
        ("", vec![]),
    ];
    for (header, want) in cases {
        assert_eq!(parse_www_authenticate(header), want, "header: {header}");
    }
}

#[test]
fn scope_strings() {
    assert_eq!(scope("app", &["pull", "push"]), "repository:app:pull,push");
    assert_eq!(scope("team/app", &["pull"]), "repository:team/app:pull");
}

#[test]
fn secrets_never_print() {
    let s = Secret::new("hunter2");
    assert_eq!(format!("{s}"), "<redacted>");
    assert_eq!(format!("{s:?}"), "<redacted>");
    assert_eq!(s.expose(), "hunter2");
    let c = basic("alice", "hunter2");
    assert!(!format!("{c:?}").contains("hunter2"));
    let mut o = KeychainOptions {
        creds: Some(("u".into(), Secret::new("hunter2"))),
        ..Default::default()
    };
    o.env
        .insert("AZURE_CLIENT_SECRET".into(), "env-secret-value".into());
    let shown = format!("{o:?}");
    assert!(
        !shown.contains("hunter2") && !shown.contains("env-secret-value"),
        "{shown}"
    );
    assert!(shown.contains("AZURE_CLIENT_SECRET"), "{shown}");
}

// ---------------------------------------------------------------------------------------------
// token server fixture

const USER: &str = "alice";
const PASSWORD: &str = "pa55-W0rd-xyzzy";
const REFRESH: &str = "refresh-token-0123456789";

/// A docker-registry style token server: GET with Basic (or anonymous, pull only), POST with a
/// refresh token; issues `tok:<account>:<scopes>`.
fn token_server() -> HttpFixture {
    HttpFixture::start(|r: &Req| {
        if r.path != "/token" {
            return json_resp(404, json!({}));
        }
        if r.q1("service").as_deref() == Some("broken.example") {
            return json_resp(
                500,
                json!({"errors": [{"code": "UNKNOWN", "message": "database on fire"}]}),
            );
        }
        match r.method.as_str() {
            "GET" => {
                let scopes = r.q("scope").join(" ");
                match r.basic() {
                    Some((u, p)) if u == USER && p == PASSWORD => json_resp(
                        200,
                        json!({"token": format!("tok:{u}:{scopes}"), "expires_in": 300}),
                    ),
                    Some(_) => json_resp(401, json!({"details": "incorrect username or password"})),
                    None if scopes.split(' ').all(|s| s.ends_with(":pull")) => {
                        json_resp(200, json!({"access_token": format!("tok:anon:{scopes}")}))
                    }
                    None => json_resp(401, json!({"details": "authentication required"})),
                }
            }
            "POST" => {
                let f = r.form();
                if f.get("grant_type").map(String::as_str) != Some("refresh_token")
                    || f.get("client_id").map(String::as_str) != Some("ocibuild")
                {
                    return json_resp(400, json!({"error": "invalid_request"}));
                }
                if f.get("refresh_token").map(String::as_str) != Some(REFRESH) {
                    return json_resp(401, json!({"error": "invalid_grant"}));
                }
                let scopes = f.get("scope").cloned().unwrap_or_default();
                json_resp(
                    200,
                    json!({"access_token": format!("tok:oauth:{scopes}"), "expires_in": 120, "refresh_token": REFRESH}),
                )
            }
            _ => json_resp(405, json!({})),
        }
    })
}

fn bearer(realm: &str, service: &str) -> Challenge {
    ch("bearer", &[("realm", realm), ("service", service)])
}

#[test]
fn fetch_token_basic_sends_credentials_service_and_scopes() {
    let ts = token_server();
    let c = bearer(&format!("{}/token", ts.url()), "registry.test");
    let scopes = vec![scope("app", &["pull", "push"]), scope("base", &["pull"])];
    let t = fetch_token(&http(), &c, &scopes, Some(&basic(USER, PASSWORD))).unwrap();
    assert_eq!(
        t.token.expose(),
        "tok:alice:repository:app:pull,push repository:base:pull"
    );
    let remaining = t
        .expires_at
        .saturating_duration_since(std::time::Instant::now());
    assert!(
        remaining > Duration::from_secs(250) && remaining <= Duration::from_secs(300),
        "{remaining:?}"
    );
    let req = &ts.requests()[0];
    assert_eq!(req.method, "GET");
    assert_eq!(req.q("scope"), scopes);
    assert_eq!(req.q1("service").as_deref(), Some("registry.test"));
    assert_eq!(req.q1("account").as_deref(), Some(USER));
    assert_eq!(req.basic(), Some((USER.to_string(), PASSWORD.to_string())));
}

#[test]
fn fetch_token_anonymous_defaults_expiry_to_60s() {
    let ts = token_server();
    let c = bearer(&format!("{}/token", ts.url()), "registry.test");
    let t = fetch_token(&http(), &c, &[scope("app", &["pull"])], None).unwrap();
    assert_eq!(t.token.expose(), "tok:anon:repository:app:pull");
    let remaining = t
        .expires_at
        .saturating_duration_since(std::time::Instant::now());
    assert!(
        remaining > Duration::from_secs(50) && remaining <= Duration::from_secs(60),
        "{remaining:?}"
    );
    assert!(ts.requests()[0].header("authorization").is_none());

    let e = fetch_token(&http(), &c, &[scope("app", &["push"])], None).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("anonymous") && msg.contains("ocibuild login registry.test"),
        "{msg}"
    );
}

#[test]
fn fetch_token_rejected_credentials_say_what_to_do_and_never_the_password() {
    let ts = token_server();
    let c = bearer(&format!("{}/token", ts.url()), "registry.test");
    let wrong = "not-the-password-42";
    let e = fetch_token(
        &http(),
        &c,
        &[scope("app", &["pull"])],
        Some(&basic(USER, wrong)),
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, AuthError::Rejected { status: 401, .. }),
        "{e:?}"
    );
    assert!(
        msg.contains(&format!(
            "credentials for registry.test were rejected by {}",
            ts.host()
        )),
        "{msg}"
    );
    assert!(msg.contains("ocibuild login registry.test"), "{msg}");
    assert!(msg.contains("incorrect username or password"), "{msg}");
    assert_no_secret(&e, wrong);

    // refresh token rejected
    let e = fetch_token(
        &http(),
        &c,
        &[],
        Some(&Credential::IdentityToken(Secret::new("bogus-refresh-999"))),
    )
    .unwrap_err();
    assert!(matches!(e, AuthError::Rejected { .. }), "{e:?}");
    assert_no_secret(&e, "bogus-refresh-999");
}

#[test]
fn fetch_token_server_failure_and_bad_challenges() {
    let ts = token_server();
    let c = bearer(&format!("{}/token", ts.url()), "broken.example");
    let e = fetch_token(&http(), &c, &[], Some(&basic(USER, PASSWORD))).unwrap_err();
    assert!(matches!(e, AuthError::TokenServer { .. }), "{e:?}");
    assert!(e.to_string().contains("database on fire"), "{e}");
    assert_no_secret(&e, PASSWORD);

    let e = fetch_token(&http(), &ch("basic", &[("realm", "x")]), &[], None).unwrap_err();
    assert!(matches!(e, AuthError::Challenge { .. }), "{e:?}");
    let e = fetch_token(&http(), &ch("bearer", &[("service", "x")]), &[], None).unwrap_err();
    assert!(matches!(e, AuthError::Challenge { .. }), "{e:?}");

    // nobody listening
    let dead = closed_port_url();
    let e = fetch_token(
        &http(),
        &bearer(&dead, "svc"),
        &[],
        Some(&basic(USER, PASSWORD)),
    )
    .unwrap_err();
    assert!(matches!(e, AuthError::Transport { .. }), "{e:?}");
    assert_no_secret(&e, PASSWORD);
}

#[test]
fn fetch_token_identity_token_posts_refresh_grant() {
    let ts = token_server();
    let c = bearer(&format!("{}/token", ts.url()), "registry.test");
    let scopes = vec![scope("app", &["pull", "push"]), scope("other", &["pull"])];
    let t = fetch_token(
        &http(),
        &c,
        &scopes,
        Some(&Credential::IdentityToken(Secret::new(REFRESH))),
    )
    .unwrap();
    assert_eq!(
        t.token.expose(),
        "tok:oauth:repository:app:pull,push repository:other:pull"
    );
    let req = &ts.requests()[0];
    assert_eq!(req.method, "POST");
    assert_eq!(
        req.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let f = req.form();
    assert_eq!(f["grant_type"], "refresh_token");
    assert_eq!(f["refresh_token"], REFRESH);
    assert_eq!(f["service"], "registry.test");
    assert_eq!(f["client_id"], "ocibuild");
    assert_eq!(f["scope"], "repository:app:pull,push repository:other:pull");
}

#[test]
fn registry_token_is_used_as_is() {
    let c = bearer("http://127.0.0.1:1/token", "svc");
    let t = fetch_token(
        &http(),
        &c,
        &[],
        Some(&Credential::RegistryToken(Secret::new("pre-issued"))),
    )
    .unwrap();
    assert_eq!(t.token.expose(), "pre-issued");
}

#[test]
fn token_cache_reuses_until_expiry_and_keys_on_sorted_scopes() {
    let ts = token_server();
    let c = bearer(&format!("{}/token", ts.url()), "registry.test");
    let cred = basic(USER, PASSWORD);
    let cache = TokenCache::new();
    let a = vec![scope("a", &["pull"]), scope("b", &["pull"])];
    let b = vec![scope("b", &["pull"]), scope("a", &["pull"])];
    let t1 = cache
        .get_or_fetch(&http(), None, &c, &a, Some(&cred))
        .unwrap();
    let t2 = cache
        .get_or_fetch(&http(), None, &c, &b, Some(&cred))
        .unwrap();
    assert_eq!(t1.token, t2.token);
    assert_eq!(ts.requests().len(), 1);
    cache
        .get_or_fetch(&http(), None, &c, &[scope("a", &["pull"])], Some(&cred))
        .unwrap();
    assert_eq!(ts.requests().len(), 2);
    cache.invalidate(&c, &a);
    cache
        .get_or_fetch(&http(), None, &c, &a, Some(&cred))
        .unwrap();
    assert_eq!(ts.requests().len(), 3);

    // a margin longer than the token's life: never served from the cache
    let strict = TokenCache::with_margin(Duration::from_secs(3600));
    strict
        .get_or_fetch(&http(), None, &c, &a, Some(&cred))
        .unwrap();
    strict
        .get_or_fetch(&http(), None, &c, &a, Some(&cred))
        .unwrap();
    assert_eq!(ts.requests().len(), 5);

    // shared across threads
    let cache = Arc::new(TokenCache::new());
    let c = Arc::new(c);
    std::thread::scope(|s| {
        for _ in 0..4 {
            let (cache, c, cred) = (cache.clone(), c.clone(), cred.clone());
            s.spawn(move || {
                cache
                    .get_or_fetch(&http(), None, &c, &[scope("z", &["pull"])], Some(&cred))
                    .unwrap();
            });
        }
    });
    assert!(cache.get(&c, &[scope("z", &["pull"])]).is_some());
}

// ---------------------------------------------------------------------------------------------
// ACR

const ENTRA_TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const SP_CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";
const SP_SECRET: &str = "sp-secret-~Qx8Q~abcdefghijklmnop";
const FEDERATED: &str = "eyJhbGciOiJSUzI1NiJ9.federated-service-account-token.sig";

/// A JWT-shaped Entra access token with a `tid` claim (unsigned: the fixtures compare strings).
fn entra_jwt(who: &str) -> String {
    let e = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    format!(
        "{}.{}.sig",
        e(json!({"alg": "RS256", "typ": "JWT"})),
        e(json!({"aud": "https://containerregistry.azure.net", "tid": ENTRA_TENANT, "oid": who}))
    )
}

/// **Fixture**, not ACR: an in-process implementation of ACR's `/oauth2/exchange` and
/// `/oauth2/token` as documented in ACR's AAD-OAuth docs. `/oauth2/exchange` turns an accepted
/// Entra access token into a refresh token; `/oauth2/token` gives an access token for GET with Basic
/// `00000000-0000-0000-0000-000000000000:<refresh>` or POST `grant_type=refresh_token`.
struct AcrFixture {
    http: HttpFixture,
    state: Arc<Mutex<AcrState>>,
}

#[derive(Default)]
struct AcrState {
    accepted_entra: HashSet<String>,
    issued_refresh: Vec<String>,
    exchange_tenants: Vec<Option<String>>,
}

impl AcrFixture {
    fn start(accepted_entra: &[String]) -> Self {
        let state = Arc::new(Mutex::new(AcrState {
            accepted_entra: accepted_entra.iter().cloned().collect(),
            ..Default::default()
        }));
        let st = state.clone();
        let http = HttpFixture::start(move |r: &Req| {
            let mut s = st.lock().unwrap();
            let unauthorized = || {
                json_resp(
                    401,
                    json!({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}),
                )
            };
            match (r.method.as_str(), r.path.as_str()) {
                ("POST", "/oauth2/exchange") => {
                    let f = r.form();
                    if f.get("grant_type").map(String::as_str) != Some("access_token")
                        || f.get("service") != Some(&r.host())
                    {
                        return json_resp(
                            400,
                            json!({"errors": [{"code": "BAD_REQUEST", "message": "grant_type/service"}]}),
                        );
                    }
                    match f.get("access_token") {
                        Some(t) if s.accepted_entra.contains(t) => {
                            let refresh = format!("acr-refresh-{}", s.issued_refresh.len() + 1);
                            s.issued_refresh.push(refresh.clone());
                            s.exchange_tenants.push(f.get("tenant").cloned());
                            json_resp(200, json!({"refresh_token": refresh}))
                        }
                        _ => unauthorized(),
                    }
                }
                ("GET", "/oauth2/token") => {
                    if r.q1("service") != Some(r.host()) {
                        return unauthorized();
                    }
                    match r.basic() {
                        Some((u, p))
                            if u == acr::REFRESH_TOKEN_USERNAME
                                && s.issued_refresh.contains(&p) =>
                        {
                            json_resp(
                                200,
                                json!({"access_token": format!("acr-access:{}", r.q("scope").join(" "))}),
                            )
                        }
                        _ => unauthorized(),
                    }
                }
                ("POST", "/oauth2/token") => {
                    let f = r.form();
                    let ok = f.get("grant_type").map(String::as_str) == Some("refresh_token")
                        && f.get("service") == Some(&r.host())
                        && f.get("refresh_token")
                            .is_some_and(|t| s.issued_refresh.contains(t));
                    if !ok {
                        return unauthorized();
                    }
                    json_resp(
                        200,
                        json!({"access_token": format!("acr-access:{}", f.get("scope").cloned().unwrap_or_default())}),
                    )
                }
                _ => json_resp(
                    404,
                    json!({"errors": [{"code": "NOT_FOUND", "message": "no such endpoint"}]}),
                ),
            }
        });
        AcrFixture { http, state }
    }
    fn host(&self) -> String {
        self.http.host()
    }
    fn challenge(&self) -> Challenge {
        bearer(&format!("{}/oauth2/token", self.http.url()), &self.host())
    }
}

/// Fake Microsoft Entra authority: `/{tenant}/oauth2/v2.0/token` for client credentials with a
/// secret or a federated client assertion.
fn entra_authority() -> HttpFixture {
    HttpFixture::start(|r: &Req| {
        if r.method != "POST" || r.path != format!("/{ENTRA_TENANT}/oauth2/v2.0/token") {
            return json_resp(
                400,
                json!({"error": "invalid_request", "error_description": "AADSTS90002: Tenant not found."}),
            );
        }
        let f = r.form();
        let bad = |d: &str| {
            json_resp(
                401,
                json!({"error": "invalid_client", "error_description": d}),
            )
        };
        if f.get("grant_type").map(String::as_str) != Some("client_credentials")
            || f.get("scope").map(String::as_str) != Some(acr::ACR_SCOPE)
            || f.get("client_id").map(String::as_str) != Some(SP_CLIENT_ID)
        {
            return bad("AADSTS700016: Application not found in the directory.");
        }
        if let Some(s) = f.get("client_secret") {
            return if s == SP_SECRET {
                json_resp(
                    200,
                    json!({"token_type": "Bearer", "expires_in": 3599, "access_token": entra_jwt("sp")}),
                )
            } else {
                bad("AADSTS7000215: Invalid client secret provided.")
            };
        }
        if f.get("client_assertion_type").map(String::as_str)
            == Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
            && f.get("client_assertion").map(String::as_str) == Some(FEDERATED)
        {
            return json_resp(
                200,
                json!({"token_type": "Bearer", "expires_in": 3599, "access_token": entra_jwt("workload")}),
            );
        }
        bad("AADSTS70021: No matching federated identity record found.")
    })
}

/// Fake IMDS (and App Service identity endpoint).
fn imds() -> HttpFixture {
    HttpFixture::start(|r: &Req| {
        let resource_ok =
            r.q1("resource").as_deref() == Some("https://containerregistry.azure.net/");
        match r.path.as_str() {
            "/metadata/identity/oauth2/token"
                if r.header("metadata") == Some("true")
                    && r.q1("api-version").as_deref() == Some("2018-02-01")
                    && resource_ok =>
            {
                json_resp(
                    200,
                    json!({"access_token": entra_jwt("vm-mi"), "expires_in": "86399", "token_type": "Bearer"}),
                )
            }
            "/msi/token"
                if r.header("x-identity-header") == Some("app-service-header")
                    && r.q1("api-version").as_deref() == Some("2019-08-01")
                    && resource_ok =>
            {
                json_resp(
                    200,
                    json!({"access_token": entra_jwt("app-service-mi"), "expires_on": "1700000000"}),
                )
            }
            _ => json_resp(
                400,
                json!({"error": "invalid_request", "error_description": "Required metadata header not specified"}),
            ),
        }
    })
}

/// Resolve through the keychain, then finish the flow: an ACR access token via the standard
/// challenge (GET with Basic refresh) and via POST grant_type=refresh_token.
fn acr_flow(te: &TestEnv, acr: &AcrFixture) -> String {
    let kc = Keychain::new(KeychainOptions {
        acr_hosts: vec![acr.host()],
        ..KeychainOptions::with_env(te.env.clone())
    });
    assert!(kc.is_acr(&acr.host()));
    let (cred, source) = kc
        .resolve(&http(), &acr.host())
        .unwrap()
        .expect("credential");
    let Credential::Basic { username, password } = &cred else {
        panic!("{cred:?}")
    };
    assert_eq!(username, acr::REFRESH_TOKEN_USERNAME);
    assert!(password.expose().starts_with("acr-refresh-"));
    let scopes = vec![scope("app", &["pull", "push"])];
    let t = fetch_token(&http(), &acr.challenge(), &scopes, Some(&cred)).unwrap();
    assert_eq!(t.token.expose(), "acr-access:repository:app:pull,push");
    let t = acr::access_token(&http(), &acr.http.url(), &acr.host(), password, &scopes).unwrap();
    assert_eq!(t.token.expose(), "acr-access:repository:app:pull,push");
    assert_eq!(
        acr.state
            .lock()
            .unwrap()
            .exchange_tenants
            .last()
            .cloned()
            .flatten()
            .as_deref(),
        Some(ENTRA_TENANT)
    );
    // cached for the process lifetime: a second resolve makes no new exchange
    let before = acr.http.requests().len();
    kc.resolve(&http(), &acr.host()).unwrap();
    assert_eq!(acr.http.requests().len(), before);
    source
}

#[test]
fn acr_host_detection() {
    assert!(acr::is_acr_host("myreg.azurecr.io", &[]));
    assert!(acr::is_acr_host("MyReg.AzureCR.io", &[]));
    assert!(acr::is_acr_host("myreg.azurecr.io:443", &[]));
    assert!(!acr::is_acr_host("azurecr.io", &[]));
    assert!(!acr::is_acr_host("evil-azurecr.io.example.com", &[]));
    assert!(!acr::is_acr_host("ghcr.io", &[]));
    assert!(acr::is_acr_host(
        "registry.corp:5000",
        &["registry.corp:5000".into()]
    ));
    assert_eq!(
        acr::registry_base_url("127.0.0.1:5000", &[]),
        "http://127.0.0.1:5000"
    );
    assert_eq!(
        acr::registry_base_url("myreg.azurecr.io", &[]),
        "https://myreg.azurecr.io"
    );
    assert_eq!(
        acr::jwt_tenant(&entra_jwt("x")).as_deref(),
        Some(ENTRA_TENANT)
    );
}

#[test]
fn acr_from_azure_access_token() {
    let token = entra_jwt("user");
    let acr = AcrFixture::start(std::slice::from_ref(&token));
    let mut te = TestEnv::new();
    te.set("AZURE_ACCESS_TOKEN", token);
    assert_eq!(acr_flow(&te, &acr), "ACR exchange (AZURE_ACCESS_TOKEN)");
}

#[test]
fn acr_from_service_principal() {
    let entra = entra_authority();
    let acr = AcrFixture::start(&[entra_jwt("sp")]);
    let mut te = TestEnv::new();
    te.set("AZURE_CLIENT_ID", SP_CLIENT_ID)
        .set("AZURE_CLIENT_SECRET", SP_SECRET)
        .set("AZURE_TENANT_ID", ENTRA_TENANT);
    te.set("AZURE_AUTHORITY_HOST", format!("{}/", entra.url()));
    assert_eq!(acr_flow(&te, &acr), "ACR exchange (service principal)");
    assert_eq!(entra.requests().len(), 1);
}

#[test]
fn acr_from_workload_identity() {
    let entra = entra_authority();
    let acr = AcrFixture::start(&[entra_jwt("workload")]);
    let mut te = TestEnv::new();
    let file = te.dir.path().join("azure-identity-token");
    std::fs::write(&file, format!("{FEDERATED}\n")).unwrap();
    te.set("AZURE_CLIENT_ID", SP_CLIENT_ID)
        .set("AZURE_TENANT_ID", ENTRA_TENANT)
        .set("AZURE_FEDERATED_TOKEN_FILE", file.display().to_string())
        .set("AZURE_AUTHORITY_HOST", entra.url());
    assert_eq!(acr_flow(&te, &acr), "ACR exchange (workload identity)");
}

#[test]
fn acr_from_managed_identity_imds() {
    let md = imds();
    let acr = AcrFixture::start(&[entra_jwt("vm-mi")]);
    let mut te = TestEnv::new();
    te.set(
        "OCIBUILD_IMDS_ENDPOINT",
        format!("{}/metadata/identity/oauth2/token", md.url()),
    );
    assert_eq!(acr_flow(&te, &acr), "ACR exchange (managed identity)");
    assert_eq!(md.requests().len(), 1);
}

#[test]
fn acr_from_app_service_identity_endpoint() {
    let md = imds();
    let acr = AcrFixture::start(&[entra_jwt("app-service-mi")]);
    let mut te = TestEnv::new();
    te.set("IDENTITY_ENDPOINT", format!("{}/msi/token", md.url()))
        .set("IDENTITY_HEADER", "app-service-header");
    assert_eq!(acr_flow(&te, &acr), "ACR exchange (managed identity)");
}

#[test]
fn acr_from_az_cli() {
    let acr = AcrFixture::start(&[entra_jwt("az-user")]);
    let te = TestEnv::new();
    let tok = entra_jwt("az-user");
    te.script(
        "az",
        &format!(
            r#"[ "$1 $2 $3 $4" = "account get-access-token --resource https://containerregistry.azure.net" ] || {{ echo "unexpected args: $*" >&2; exit 2; }}
printf '%s\n' '{{"accessToken": "{tok}", "expiresOn": "2030-01-01 00:00:00.000000", "tenant": "{ENTRA_TENANT}", "tokenType": "Bearer"}}'"#
        ),
    );
    assert_eq!(acr_flow(&te, &acr), "ACR exchange (az CLI)");
}

#[test]
fn acr_earlier_source_failing_falls_through_to_a_later_one() {
    // a wrong service principal secret, then IMDS works
    let entra = entra_authority();
    let md = imds();
    let acr = AcrFixture::start(&[entra_jwt("vm-mi")]);
    let mut te = TestEnv::new();
    te.set("AZURE_CLIENT_ID", SP_CLIENT_ID)
        .set("AZURE_CLIENT_SECRET", "wrong-secret-777")
        .set("AZURE_TENANT_ID", ENTRA_TENANT);
    te.set("AZURE_AUTHORITY_HOST", entra.url());
    te.set(
        "OCIBUILD_IMDS_ENDPOINT",
        format!("{}/metadata/identity/oauth2/token", md.url()),
    );
    assert_eq!(acr_flow(&te, &acr), "ACR exchange (managed identity)");
}

#[test]
fn acr_all_sources_fail_lists_every_source() {
    let entra = entra_authority();
    let acr = AcrFixture::start(&[]);
    let mut te = TestEnv::new();
    te.set("AZURE_CLIENT_ID", SP_CLIENT_ID)
        .set("AZURE_CLIENT_SECRET", "wrong-secret-777")
        .set("AZURE_TENANT_ID", ENTRA_TENANT);
    te.set("AZURE_AUTHORITY_HOST", entra.url());
    te.set(
        "AZURE_FEDERATED_TOKEN_FILE",
        te.dir
            .path()
            .join("missing-token-file")
            .display()
            .to_string(),
    );
    let kc = Keychain::new(KeychainOptions {
        acr_hosts: vec![acr.host()],
        ..KeychainOptions::with_env(te.env.clone())
    });
    let e = kc.resolve(&http(), &acr.host()).unwrap_err();
    let AuthError::AcrNoToken { attempts, .. } = &e else {
        panic!("{e:?}")
    };
    let names: Vec<&str> = attempts.iter().map(|a| a.source.as_str()).collect();
    assert_eq!(
        names,
        [
            "AZURE_ACCESS_TOKEN",
            "service principal",
            "workload identity",
            "managed identity",
            "az CLI"
        ]
    );
    let msg = e.to_string();
    eprintln!("{msg}");
    for needle in [
        "AZURE_ACCESS_TOKEN: skipped: AZURE_ACCESS_TOKEN is not set",
        "service principal: failed",
        "AADSTS7000215",
        "workload identity: failed: cannot read AZURE_FEDERATED_TOKEN_FILE",
        "managed identity: failed",
        "az CLI: skipped: `az` is not installed",
        "az login",
        &format!("ocibuild login {}", acr.host()),
    ] {
        assert!(msg.contains(needle), "missing {needle:?} in:\n{msg}");
    }
    assert_no_secret(&e, "wrong-secret-777");

    // an Entra token the registry refuses: the exchange failure is reported against its source
    let mut te = TestEnv::new();
    te.set("AZURE_ACCESS_TOKEN", entra_jwt("stranger"));
    let kc = Keychain::new(KeychainOptions {
        acr_hosts: vec![acr.host()],
        ..KeychainOptions::with_env(te.env.clone())
    });
    let e = kc.resolve(&http(), &acr.host()).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("AZURE_ACCESS_TOKEN: got an Entra token, but the exchange failed"),
        "{msg}"
    );
    assert!(
        msg.contains("/oauth2/exchange") && msg.contains("401"),
        "{msg}"
    );
    assert_no_secret(&e, &entra_jwt("stranger"));
}

#[test]
fn acr_stored_credentials_win_over_the_exchange() {
    let acr = AcrFixture::start(&[]);
    let te = TestEnv::new();
    te.write_docker_config(json!({"auths": {acr.host(): {"auth": b64("acr-admin:admin-pass")}}}));
    let kc = Keychain::new(KeychainOptions {
        acr_hosts: vec![acr.host()],
        ..KeychainOptions::with_env(te.env.clone())
    });
    let (c, src) = kc.resolve(&http(), &acr.host()).unwrap().unwrap();
    assert_eq!(c, basic("acr-admin", "admin-pass"));
    assert_eq!(src, "~/.docker/config.json auths");
    assert!(acr.http.requests().is_empty());
}

// ---------------------------------------------------------------------------------------------
// keychain and docker config

#[test]
fn keychain_resolution_order() {
    let host = "registry.test:5000";
    let mut te = TestEnv::new();
    let xdg = te.dir.path().join("run");
    let auth_file = te.dir.path().join("auth.json");
    write_json(
        &auth_file,
        &json!({"auths": {host: {"auth": b64("from-auth-file:p1")}}}),
    );
    write_json(
        &xdg.join("containers/auth.json"),
        &json!({"auths": {host: {"auth": b64("from-xdg:p2")}}}),
    );
    te.write_docker_config(json!({"auths": {host: {"auth": b64("from-docker:p3")}}}));
    te.set("XDG_RUNTIME_DIR", xdg.display().to_string());
    te.set("REGISTRY_AUTH_FILE", auth_file.display().to_string());
    te.set("OCIBUILD_REGISTRY_USER", "from-env")
        .set("OCIBUILD_REGISTRY_PASSWORD", "p4");

    let resolve = |env: &Env, creds: Option<(String, Secret)>| {
        Keychain::new(KeychainOptions {
            creds,
            ..KeychainOptions::with_env(env.clone())
        })
        .resolve(&http(), host)
        .unwrap()
    };
    let (c, s) = resolve(&te.env, Some(("from-flag".into(), Secret::new("p0")))).unwrap();
    assert_eq!((c, s.as_str()), (basic("from-flag", "p0"), "--creds"));
    let (c, s) = resolve(&te.env, None).unwrap();
    assert_eq!(
        (c, s.as_str()),
        (
            basic("from-env", "p4"),
            "OCIBUILD_REGISTRY_USER/OCIBUILD_REGISTRY_PASSWORD"
        )
    );
    te.env.remove("OCIBUILD_REGISTRY_USER");
    let (c, s) = resolve(&te.env, None).unwrap();
    assert_eq!(c, basic("from-auth-file", "p1"));
    assert_eq!(s, format!("{} auths", auth_file.display()));
    te.env.remove("REGISTRY_AUTH_FILE");
    let (c, s) = resolve(&te.env, None).unwrap();
    assert_eq!(c, basic("from-xdg", "p2"));
    assert!(s.ends_with("containers/auth.json auths"), "{s}");
    te.env.remove("XDG_RUNTIME_DIR");
    let (c, s) = resolve(&te.env, None).unwrap();
    assert_eq!(
        (c, s.as_str()),
        (basic("from-docker", "p3"), "~/.docker/config.json auths")
    );
    // DOCKER_CONFIG moves the docker config
    let other = te.dir.path().join("dockercfg");
    write_json(
        &other.join("config.json"),
        &json!({"auths": {host: {"username": "from-docker-config-env", "password": "p5"}}}),
    );
    te.set("DOCKER_CONFIG", other.display().to_string());
    let (c, _) = resolve(&te.env, None).unwrap();
    assert_eq!(c, basic("from-docker-config-env", "p5"));
    // an explicit override wins over DOCKER_CONFIG
    let kc = Keychain::new(KeychainOptions {
        docker_config: Some(te.docker_config()),
        ..KeychainOptions::with_env(te.env.clone())
    });
    assert_eq!(
        kc.resolve(&http(), host).unwrap().unwrap().0,
        basic("from-docker", "p3")
    );
    // nothing for another host: anonymous
    assert!(resolve(&te.env, None).is_some());
    assert_eq!(
        Keychain::new(KeychainOptions::with_env(te.env.clone()))
            .resolve(&http(), "elsewhere.test")
            .unwrap(),
        None
    );
}

#[test]
fn docker_config_auth_forms_and_host_matching() {
    let te = TestEnv::new();
    te.write_docker_config(json!({
        "auths": {
            "https://index.docker.io/v1/": {"auth": b64("hubuser:hub:pass:with:colons")},
            "https://scheme.test/v2/": {"auth": b64("schemed:pw")},
            "plain.test": {"username": "plainuser", "password": "plainpw"},
            "oauth.test": {"auth": b64("<token>:"), "identitytoken": "idtok-123"},
            "bearer.test": {"registrytoken": "regtok-456"},
            "empty.test": {},
            "emptyauth.test": {"auth": b64(":")}
        },
        "psFormat": "table {{.ID}}",
        "experimental": "enabled"
    }));
    let kc = te.keychain();
    let get = |h: &str| kc.resolve(&http(), h).unwrap().map(|(c, _)| c);
    assert_eq!(
        get("docker.io"),
        Some(basic("hubuser", "hub:pass:with:colons"))
    );
    assert_eq!(
        get("index.docker.io"),
        Some(basic("hubuser", "hub:pass:with:colons"))
    );
    assert_eq!(
        get("registry-1.docker.io"),
        Some(basic("hubuser", "hub:pass:with:colons"))
    );
    assert_eq!(get("scheme.test"), Some(basic("schemed", "pw")));
    assert_eq!(
        get("https://plain.test/"),
        Some(basic("plainuser", "plainpw"))
    );
    assert_eq!(
        get("oauth.test"),
        Some(Credential::IdentityToken(Secret::new("idtok-123")))
    );
    assert_eq!(
        get("bearer.test"),
        Some(Credential::RegistryToken(Secret::new("regtok-456")))
    );
    assert_eq!(get("empty.test"), None);
    assert_eq!(get("emptyauth.test"), None);
    assert_eq!(
        config::normalize_registry("HTTPS://Index.Docker.IO/v1/"),
        "docker.io"
    );
    assert_eq!(config::server_url("docker.io"), config::DOCKER_HUB_KEY);

    // a broken file is an error naming the file, not anonymous access
    std::fs::write(te.docker_config(), "{\"auths\": {").unwrap();
    let e = te.keychain().resolve(&http(), "plain.test").unwrap_err();
    assert!(
        matches!(e, AuthError::Config { .. }) && e.to_string().contains("config.json"),
        "{e}"
    );
}

/// A credential helper in sh (builtins only: the helper's PATH is the test's bin dir). It stores
/// the last `store` payload in `dir/payload` and answers `get` for that server.
fn store_helper(te: &TestEnv, name: &str) -> PathBuf {
    let dir = te.dir.path().join(format!("helper-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    te.script(
        &format!("docker-credential-{name}"),
        &format!(
            r#"d='{d}'
printf '%s\n' "$1" >> "$d/calls"
case "$1" in
  store) IFS= read -r payload; printf '%s\n' "$payload" > "$d/payload" ;;
  get)
    IFS= read -r server
    [ -s "$d/payload" ] || {{ echo "credentials not found in native keychain"; exit 1; }}
    IFS= read -r payload < "$d/payload"
    case "$payload" in
      *"\"ServerURL\":\"$server\""*) printf '%s\n' "$payload" ;;
      *) echo "credentials not found in native keychain"; exit 1 ;;
    esac ;;
  erase)
    IFS= read -r server
    [ -s "$d/payload" ] || {{ echo "credentials not found in native keychain"; exit 1; }}
    : > "$d/payload" ;;
  *) echo "unknown action $1" >&2; exit 2 ;;
esac"#,
            d = dir.display()
        ),
    );
    dir
}

#[test]
fn cred_helpers_and_creds_store() {
    let te = TestEnv::new();
    // a read-only helper for one host
    te.script(
        "docker-credential-fixed",
        r#"IFS= read -r server
case "$server" in
  helper.test) printf '%s\n' '{"ServerURL":"helper.test","Username":"helper-user","Secret":"helper-secret"}' ;;
  token.test) printf '%s\n' '{"ServerURL":"token.test","Username":"<token>","Secret":"helper-refresh"}' ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac"#,
    );
    let store_dir = store_helper(&te, "teststore");
    std::fs::write(
        store_dir.join("payload"),
        "{\"Secret\":\"store-pw\",\"ServerURL\":\"stored.test\",\"Username\":\"store-user\"}\n",
    )
    .unwrap();
    te.write_docker_config(json!({
        "credHelpers": {"helper.test": "fixed", "token.test": "fixed", "https://nothing.test": "fixed", "gone.test": "desktop"},
        "credsStore": "teststore",
        "auths": {"fallback.test": {"auth": b64("fb-user:fb-pw")}, "nothing.test": {"auth": b64("ignored:x")}}
    }));
    let kc = te.keychain();
    let (c, s) = kc.resolve(&http(), "helper.test").unwrap().unwrap();
    assert_eq!(c, basic("helper-user", "helper-secret"));
    assert_eq!(
        s,
        "docker-credential-fixed (credHelpers in ~/.docker/config.json)"
    );
    let (c, _) = kc.resolve(&http(), "token.test").unwrap().unwrap();
    assert_eq!(c, Credential::IdentityToken(Secret::new("helper-refresh")));
    // the host's helper has nothing: docker does not fall back to auths
    assert_eq!(kc.resolve(&http(), "nothing.test").unwrap(), None);
    // credsStore
    let (c, s) = kc.resolve(&http(), "stored.test").unwrap().unwrap();
    assert_eq!(c, basic("store-user", "store-pw"));
    assert_eq!(
        s,
        "docker-credential-teststore (credsStore in ~/.docker/config.json)"
    );
    // credsStore has nothing: auths
    let (c, s) = kc.resolve(&http(), "fallback.test").unwrap().unwrap();
    assert_eq!(c, basic("fb-user", "fb-pw"));
    assert_eq!(s, "~/.docker/config.json auths");
    // a helper that is not installed
    let e = kc.resolve(&http(), "gone.test").unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains(
            "credHelpers[\"gone.test\"] says `desktop` but docker-credential-desktop is not on PATH"
        ),
        "{msg}"
    );
    assert!(msg.contains("~/.docker/config.json"), "{msg}");
    // the process PATH is never used: with an empty PATH the helper is missing
    let mut env = te.env.clone();
    env.insert("PATH".into(), String::new());
    let e = Keychain::new(KeychainOptions::with_env(env))
        .resolve(&http(), "stored.test")
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("credsStore says `teststore` but docker-credential-teststore is not on PATH"),
        "{e}"
    );
}

#[test]
fn helper_failure_is_reported() {
    let te = TestEnv::new();
    te.script(
        "docker-credential-broken",
        "echo 'keyring locked' >&2; exit 3",
    );
    te.write_docker_config(json!({"credsStore": "broken"}));
    let e = te.keychain().resolve(&http(), "any.test").unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("docker-credential-broken get for any.test") && msg.contains("keyring locked"),
        "{msg}"
    );
}

#[test]
fn login_logout_round_trip_preserves_other_fields() {
    let te = TestEnv::new();
    let path = te.docker_config();
    te.write_docker_config(json!({
        "auths": {"other.test": {"auth": b64("o:p")}, "https://login.test/v1/": {"auth": b64("old:old"), "email": "x@y"}},
        "HttpHeaders": {"User-Agent": "Docker-Client/24"},
        "currentContext": "rootless",
        "proxies": {"default": {"httpProxy": "http://proxy:3128"}}
    }));
    let before: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let secret = Secret::new("new-pass-31337");
    let env = te.env.clone();
    let r#where = config::login(&path, "login.test", "newuser", &secret, &env).unwrap();
    assert_eq!(r#where, "~/.docker/config.json");
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let after: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for k in ["HttpHeaders", "currentContext", "proxies"] {
        assert_eq!(after[k], before[k], "{k}");
    }
    assert_eq!(after["auths"]["other.test"], before["auths"]["other.test"]);
    // the existing key form is kept, its other fields too
    assert_eq!(
        after["auths"]["https://login.test/v1/"]["auth"],
        b64("newuser:new-pass-31337")
    );
    assert_eq!(after["auths"]["https://login.test/v1/"]["email"], "x@y");
    assert_eq!(
        te.keychain()
            .resolve(&http(), "login.test")
            .unwrap()
            .unwrap()
            .0,
        basic("newuser", "new-pass-31337")
    );

    // Docker Hub goes under docker's key
    config::login(&path, "docker.io", "hub", &Secret::new("hubpw"), &env).unwrap();
    let after: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        after["auths"][config::DOCKER_HUB_KEY]["auth"],
        b64("hub:hubpw")
    );

    assert!(config::logout(&path, "login.test", &env).unwrap());
    assert!(!config::logout(&path, "login.test", &env).unwrap());
    let after: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(after["auths"].get("https://login.test/v1/").is_none());
    assert_eq!(after["auths"]["other.test"], before["auths"]["other.test"]);
    assert_eq!(after["proxies"], before["proxies"]);
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(te.keychain().resolve(&http(), "login.test").unwrap(), None);

    // login into a missing file (and directory) creates it, 0600
    let fresh = te.dir.path().join("new/.docker/config.json");
    config::login(&fresh, "127.0.0.1:5000", "u", &Secret::new("p"), &env).unwrap();
    assert_eq!(
        std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&fresh).unwrap()).unwrap();
    assert_eq!(v["auths"]["127.0.0.1:5000"]["auth"], b64("u:p"));
    assert!(!config::logout(&te.dir.path().join("absent.json"), "x", &env).unwrap());
}

#[test]
fn login_through_creds_store_helper() {
    let te = TestEnv::new();
    let path = te.docker_config();
    let store_dir = store_helper(&te, "teststore");
    te.write_docker_config(
        json!({"credsStore": "teststore", "auths": {}, "detachKeys": "ctrl-p,ctrl-q"}),
    );
    let env = te.env.clone();
    let r#where = config::login(
        &path,
        "helper-login.test",
        "hu",
        &Secret::new("helper-pw-1"),
        &env,
    )
    .unwrap();
    assert_eq!(
        r#where,
        "docker-credential-teststore (credsStore in ~/.docker/config.json)"
    );
    let payload: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(store_dir.join("payload")).unwrap()).unwrap();
    assert_eq!(
        payload,
        json!({"ServerURL": "helper-login.test", "Username": "hu", "Secret": "helper-pw-1"})
    );
    // the secret is not written into the config file
    assert!(
        !std::fs::read_to_string(&path)
            .unwrap()
            .contains("helper-pw-1")
    );
    assert_eq!(
        te.keychain()
            .resolve(&http(), "helper-login.test")
            .unwrap()
            .unwrap()
            .0,
        basic("hu", "helper-pw-1")
    );
    assert!(config::logout(&path, "helper-login.test", &env).unwrap());
    assert!(!config::logout(&path, "helper-login.test", &env).unwrap());
    assert_eq!(
        te.keychain().resolve(&http(), "helper-login.test").unwrap(),
        None
    );
    let calls = std::fs::read_to_string(store_dir.join("calls")).unwrap();
    assert_eq!(
        calls.lines().collect::<Vec<_>>(),
        ["store", "get", "erase", "erase", "get"]
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(v["detachKeys"], "ctrl-p,ctrl-q");
}

#[test]
fn registry_auth_file_identity_token_and_paths() {
    let mut te = TestEnv::new();
    let f = te.dir.path().join("containers-auth.json");
    write_json(
        &f,
        &json!({"auths": {"quay.test": {"auth": b64("robot+ci:tok")}}}),
    );
    te.set("REGISTRY_AUTH_FILE", f.display().to_string());
    let (c, s) = te
        .keychain()
        .resolve(&http(), "quay.test")
        .unwrap()
        .unwrap();
    assert_eq!(c, basic("robot+ci", "tok"));
    assert_eq!(s, format!("{} auths", f.display()));
    assert_eq!(config::containers_auth_paths(&te.env), vec![f]);
    assert_eq!(config::docker_config_path(&te.env), te.docker_config());
    let o = KeychainOptions::from_process_env();
    assert!(o.creds.is_none() && o.acr_hosts.is_empty());
}
