//! Azure Container Registry, natively: get a Microsoft Entra access token from the first source
//! that works, exchange it at `https://<registry>/oauth2/exchange` for an ACR refresh token, and use
//! that as Basic `00000000-0000-0000-0000-000000000000:<refresh token>` (or POST it to
//! `/oauth2/token`) for access tokens.
//!
//! Entra token sources, in order, each reported by name:
//! 1. `AZURE_ACCESS_TOKEN`;
//! 2. service principal: `AZURE_CLIENT_ID` + `AZURE_CLIENT_SECRET` + `AZURE_TENANT_ID`
//!    (authority `AZURE_AUTHORITY_HOST`, default `https://login.microsoftonline.com`);
//! 3. workload identity: `AZURE_FEDERATED_TOKEN_FILE` + `AZURE_CLIENT_ID` + `AZURE_TENANT_ID`;
//! 4. managed identity: IMDS, or App Service's `IDENTITY_ENDPOINT`/`IDENTITY_HEADER`
//!    (`OCIBUILD_IMDS_ENDPOINT` overrides the IMDS URL, for tests);
//! 5. the `az` CLI, when it is on `PATH`.

use std::time::Duration;

use base64::Engine;
use reqwest::blocking::Client;

use crate::auth::{
    AuthError, Env, Secret, Token, error_chain, parse_token_response, server_error_text,
};
use crate::config::{find_program, run_program};

/// The username ACR expects with a refresh token as password.
pub const REFRESH_TOKEN_USERNAME: &str = "00000000-0000-0000-0000-000000000000";
/// The Entra resource of every ACR.
pub const ACR_RESOURCE: &str = "https://containerregistry.azure.net";
/// OAuth2 v2 scope for [`ACR_RESOURCE`].
pub const ACR_SCOPE: &str = "https://containerregistry.azure.net/.default";
/// The default IMDS token endpoint.
pub const IMDS_ENDPOINT: &str = "http://169.254.169.254/metadata/identity/oauth2/token";
/// How long to wait for IMDS (absent on most machines that are not Azure VMs).
pub const IMDS_TIMEOUT: Duration = Duration::from_secs(2);
const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";
const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Is `host` an Azure Container Registry: `*.azurecr.io` (and the sovereign clouds' suffixes) or a
/// host listed in `extra`? Ports and case are ignored for the suffix check.
pub fn is_acr_host(host: &str, extra: &[String]) -> bool {
    let h = host.trim().to_ascii_lowercase();
    if extra.iter().any(|e| e.trim().eq_ignore_ascii_case(&h)) {
        return true;
    }
    let name = h.split(':').next().unwrap_or(&h);
    [".azurecr.io", ".azurecr.cn", ".azurecr.us"]
        .iter()
        .any(|s| name.ends_with(s) && name.len() > s.len())
}

/// `https://<host>`, or `http://<host>` for loopback hosts and those in `plain_http`.
pub fn registry_base_url(host: &str, plain_http: &[String]) -> String {
    let name = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
    let loopback = matches!(name, "localhost" | "127.0.0.1" | "[::1]") || name.starts_with("127.");
    if loopback || plain_http.iter().any(|p| p.eq_ignore_ascii_case(host)) {
        format!("http://{host}")
    } else {
        format!("https://{host}")
    }
}

/// One Entra token source's outcome, for the error when every source fails.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub source: String,
    pub outcome: String,
}

/// An Entra access token and its tenant (from the source or the token's `tid` claim).
#[derive(Clone, Debug)]
pub struct EntraToken {
    pub token: Secret,
    pub tenant: Option<String>,
}

pub(crate) fn describe_failure(registry: &str, attempts: &[Attempt]) -> String {
    let mut s = format!("no Microsoft Entra token to sign in to ACR {registry}; tried:");
    for a in attempts {
        s.push_str(&format!("\n  - {}: {}", a.source, a.outcome));
    }
    s.push_str(&format!(
        "\nset AZURE_ACCESS_TOKEN, or AZURE_CLIENT_ID + AZURE_CLIENT_SECRET + AZURE_TENANT_ID (service principal), \
         or AZURE_FEDERATED_TOKEN_FILE + AZURE_CLIENT_ID + AZURE_TENANT_ID (workload identity), run on Azure with a \
         managed identity, run `az login`, or store credentials with `ocibuild login {registry}`"
    ));
    s
}

fn get<'a>(env: &'a Env, k: &str) -> Option<&'a str> {
    env.get(k).map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// The `tid` claim of a JWT, if it is one.
pub fn jwt_tenant(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&raw).ok()?;
    v.get("tid").and_then(|t| t.as_str()).map(str::to_string)
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut f = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        f.append_pair(k, v);
    }
    f.finish()
}

/// POST a form, expect a JSON body with `field`; errors are short texts without secrets.
fn post_for(
    http: &Client,
    url: &str,
    body: String,
    field: &str,
    secrets: &[&str],
) -> Result<serde_json::Value, String> {
    let resp = http
        .post(url)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(reqwest::header::ACCEPT, "application/json")
        .body(body)
        .send()
        .map_err(|e| {
            format!(
                "cannot reach {}: {}",
                host_for_msg(url),
                error_chain(&e.without_url())
            )
        })?;
    json_answer(resp, url, field, secrets)
}

fn json_answer(
    resp: reqwest::blocking::Response,
    url: &str,
    field: &str,
    secrets: &[&str],
) -> Result<serde_json::Value, String> {
    let status = resp.status();
    let text = resp.text().unwrap_or_default();
    let scrub = |mut t: String| {
        for s in secrets.iter().filter(|s| !s.is_empty()) {
            t = t.replace(s, "<redacted>");
        }
        t
    };
    if !status.is_success() {
        let d = server_error_text(&text)
            .map(scrub)
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        return Err(format!(
            "{} answered HTTP {}{d}",
            host_for_msg(url),
            status.as_u16()
        ));
    }
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|_| format!("{} answered something that is not JSON", host_for_msg(url)))?;
    if v.get(field)
        .and_then(|t| t.as_str())
        .is_none_or(str::is_empty)
    {
        return Err(format!("{} answered without `{field}`", host_for_msg(url)));
    }
    Ok(v)
}

fn host_for_msg(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_string(),
            })
        })
        .unwrap_or_else(|| url.to_string())
}

fn field(v: &serde_json::Value, k: &str) -> String {
    v.get(k)
        .and_then(|t| t.as_str())
        .unwrap_or_default()
        .to_string()
}

/// The outcome of one source: not configured (skip, with what to set), failed, or a token.
enum Outcome {
    Skipped(String),
    Failed(String),
    Got(EntraToken),
}

/// A source: the HTTP client, the environment, and the Entra resource the token is for
/// (e.g. [`ACR_RESOURCE`], or `https://vault.azure.net` for Key Vault).
type SourceFn = fn(&Client, &Env, &str) -> Outcome;

/// The sources in order, by name.
const SOURCES: &[(&str, SourceFn)] = &[
    ("AZURE_ACCESS_TOKEN", from_access_token_env),
    ("service principal", from_service_principal),
    ("workload identity", from_workload_identity),
    ("managed identity", from_managed_identity),
    ("az CLI", from_az_cli),
];

fn from_access_token_env(_: &Client, env: &Env, _resource: &str) -> Outcome {
    match get(env, "AZURE_ACCESS_TOKEN") {
        Some(t) => Outcome::Got(EntraToken {
            token: Secret::new(t),
            tenant: get(env, "AZURE_TENANT_ID")
                .map(str::to_string)
                .or_else(|| jwt_tenant(t)),
        }),
        None => Outcome::Skipped("AZURE_ACCESS_TOKEN is not set".into()),
    }
}

fn authority(env: &Env) -> String {
    get(env, "AZURE_AUTHORITY_HOST")
        .unwrap_or(DEFAULT_AUTHORITY)
        .trim_end_matches('/')
        .to_string()
}

fn missing(env: &Env, names: &[&str]) -> Vec<String> {
    names
        .iter()
        .filter(|n| get(env, n).is_none())
        .map(|n| n.to_string())
        .collect()
}

fn from_service_principal(http: &Client, env: &Env, resource: &str) -> Outcome {
    let miss = missing(
        env,
        &["AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID"],
    );
    if !miss.is_empty() {
        return Outcome::Skipped(format!("{} not set", miss.join(", ")));
    }
    let (id, secret, tenant) = (
        get(env, "AZURE_CLIENT_ID").unwrap_or_default(),
        get(env, "AZURE_CLIENT_SECRET").unwrap_or_default(),
        get(env, "AZURE_TENANT_ID").unwrap_or_default(),
    );
    let url = format!("{}/{tenant}/oauth2/v2.0/token", authority(env));
    let body = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", id),
        ("client_secret", secret),
        ("scope", &scope_of(resource)),
    ]);
    match post_for(http, &url, body, "access_token", &[secret]) {
        Ok(v) => Outcome::Got(EntraToken {
            token: Secret::new(field(&v, "access_token")),
            tenant: Some(tenant.to_string()),
        }),
        Err(e) => Outcome::Failed(format!(
            "{e} (check AZURE_CLIENT_ID, AZURE_CLIENT_SECRET and AZURE_TENANT_ID)"
        )),
    }
}

fn from_workload_identity(http: &Client, env: &Env, resource: &str) -> Outcome {
    let Some(file) = get(env, "AZURE_FEDERATED_TOKEN_FILE") else {
        return Outcome::Skipped("AZURE_FEDERATED_TOKEN_FILE is not set".into());
    };
    let miss = missing(env, &["AZURE_CLIENT_ID", "AZURE_TENANT_ID"]);
    if !miss.is_empty() {
        return Outcome::Failed(format!(
            "AZURE_FEDERATED_TOKEN_FILE is set but {} not",
            miss.join(", ")
        ));
    }
    let assertion = match std::fs::read_to_string(file) {
        Ok(a) if !a.trim().is_empty() => a.trim().to_string(),
        Ok(_) => return Outcome::Failed(format!("{file} is empty")),
        Err(e) => {
            return Outcome::Failed(format!(
                "cannot read AZURE_FEDERATED_TOKEN_FILE {file}: {e}"
            ));
        }
    };
    let (id, tenant) = (
        get(env, "AZURE_CLIENT_ID").unwrap_or_default(),
        get(env, "AZURE_TENANT_ID").unwrap_or_default(),
    );
    let url = format!("{}/{tenant}/oauth2/v2.0/token", authority(env));
    let body = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", id),
        ("client_assertion_type", CLIENT_ASSERTION_TYPE),
        ("client_assertion", &assertion),
        ("scope", &scope_of(resource)),
    ]);
    match post_for(http, &url, body, "access_token", &[&assertion]) {
        Ok(v) => Outcome::Got(EntraToken {
            token: Secret::new(field(&v, "access_token")),
            tenant: Some(tenant.to_string()),
        }),
        Err(e) => Outcome::Failed(format!(
            "{e} (check the federated credential of AZURE_CLIENT_ID)"
        )),
    }
}

fn from_managed_identity(http: &Client, env: &Env, resource: &str) -> Outcome {
    let client_id = get(env, "AZURE_CLIENT_ID");
    let (mut url, header, what) =
        if let (Some(ep), Some(h)) = (get(env, "IDENTITY_ENDPOINT"), get(env, "IDENTITY_HEADER")) {
            let Ok(mut u) = url::Url::parse(ep) else {
                return Outcome::Failed(format!("IDENTITY_ENDPOINT `{ep}` is not a URL"));
            };
            u.query_pairs_mut().append_pair("api-version", "2019-08-01");
            (u, Some(("X-IDENTITY-HEADER", h)), "IDENTITY_ENDPOINT")
        } else {
            let ep = get(env, "OCIBUILD_IMDS_ENDPOINT").unwrap_or(IMDS_ENDPOINT);
            let Ok(mut u) = url::Url::parse(ep) else {
                return Outcome::Failed(format!("OCIBUILD_IMDS_ENDPOINT `{ep}` is not a URL"));
            };
            u.query_pairs_mut().append_pair("api-version", "2018-02-01");
            (u, None, "IMDS")
        };
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("resource", &format!("{}/", resource.trim_end_matches('/')));
        if let Some(id) = client_id {
            q.append_pair("client_id", id);
        }
    }
    let mut req = http.get(url.clone()).timeout(IMDS_TIMEOUT);
    req = match header {
        Some((k, v)) => req.header(k, v),
        None => req.header("Metadata", "true"),
    };
    let resp = match req.send() {
        Ok(r) => r,
        Err(e) => {
            return Outcome::Failed(format!(
                "{what} at {} did not answer ({}); not on Azure, or no managed identity assigned",
                host_for_msg(url.as_str()),
                error_chain(&e.without_url())
            ));
        }
    };
    let secrets: Vec<&str> = header.map(|(_, v)| v).into_iter().collect();
    match json_answer(resp, url.as_str(), "access_token", &secrets) {
        Ok(v) => {
            let t = field(&v, "access_token");
            let tenant = jwt_tenant(&t);
            Outcome::Got(EntraToken {
                token: Secret::new(t),
                tenant,
            })
        }
        Err(e) => Outcome::Failed(format!(
            "{what}: {e} (is a managed identity assigned, with AcrPull/AcrPush?)"
        )),
    }
}

fn from_az_cli(_: &Client, env: &Env, resource: &str) -> Outcome {
    let Some(az) = find_program("az", env) else {
        return Outcome::Skipped("`az` is not installed (not on PATH)".into());
    };
    let args = [
        "account",
        "get-access-token",
        "--resource",
        resource,
        "--output",
        "json",
    ];
    let out = match run_program(&az, &args, env, b"") {
        Ok(o) => o,
        Err(e) => return Outcome::Failed(format!("cannot run {}: {e}", az.display())),
    };
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let line = err
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim();
        return Outcome::Failed(format!(
            "`az account get-access-token` failed ({}): {line} — run `az login`",
            out.status
        ));
    }
    let v: serde_json::Value = match serde_json::from_slice(&out.stdout) {
        Ok(v) => v,
        Err(_) => {
            return Outcome::Failed(
                "`az account get-access-token` printed something that is not JSON".into(),
            );
        }
    };
    let t = field(&v, "accessToken");
    if t.is_empty() {
        return Outcome::Failed("`az account get-access-token` gave no accessToken".into());
    }
    let tenant = v
        .get("tenant")
        .and_then(|x| x.as_str())
        .map(str::to_string)
        .or_else(|| jwt_tenant(&t));
    Outcome::Got(EntraToken {
        token: Secret::new(t),
        tenant,
    })
}

/// `POST {registry_base}/oauth2/exchange` (`grant_type=access_token`) → ACR refresh token.
/// `registry_base` is `https://<registry>` (or `http://127.0.0.1:<port>` for a loopback fixture);
/// `service` is the registry host.
pub fn exchange(
    http: &Client,
    registry_base: &str,
    service: &str,
    entra: &EntraToken,
) -> Result<Secret, AuthError> {
    let url = format!("{}/oauth2/exchange", registry_base.trim_end_matches('/'));
    let mut pairs = vec![("grant_type", "access_token"), ("service", service)];
    if let Some(t) = &entra.tenant {
        pairs.push(("tenant", t));
    }
    pairs.push(("access_token", entra.token.expose()));
    let body = form(&pairs);
    post_for(http, &url, body, "refresh_token", &[entra.token.expose()])
        .map(|v| Secret::new(field(&v, "refresh_token")))
        .map_err(|detail| AuthError::Acr {
            registry: service.to_string(),
            endpoint: "/oauth2/exchange".into(),
            detail,
        })
}

/// `POST {registry_base}/oauth2/token` (`grant_type=refresh_token`) → an ACR access token for
/// `scopes` (space-joined, as ACR expects).
pub fn access_token(
    http: &Client,
    registry_base: &str,
    service: &str,
    refresh: &Secret,
    scopes: &[String],
) -> Result<Token, AuthError> {
    let url = format!("{}/oauth2/token", registry_base.trim_end_matches('/'));
    let scope = scopes.join(" ");
    let body = form(&[
        ("grant_type", "refresh_token"),
        ("service", service),
        ("scope", &scope),
        ("refresh_token", refresh.expose()),
    ]);
    let v = post_for(http, &url, body, "access_token", &[refresh.expose()]).map_err(|detail| {
        AuthError::Acr {
            registry: service.to_string(),
            endpoint: "/oauth2/token".into(),
            detail,
        }
    })?;
    parse_token_response(&v.to_string()).map_err(|detail| AuthError::Acr {
        registry: service.to_string(),
        endpoint: "/oauth2/token".into(),
        detail,
    })
}

/// Try every Entra source in order and exchange the first token that works for an ACR refresh
/// token. Returns the refresh token and the name of the source that produced it. A source whose
/// token the exchange refuses counts as failed and the next one is tried. When all fail, the
/// error lists each source and why.
pub fn refresh_token(
    http: &Client,
    registry_base: &str,
    registry: &str,
    env: &Env,
) -> Result<(Secret, String), AuthError> {
    let mut attempts = Vec::new();
    for (name, source) in SOURCES {
        match source(http, env, ACR_RESOURCE) {
            Outcome::Skipped(why) => attempts.push(Attempt {
                source: name.to_string(),
                outcome: format!("skipped: {why}"),
            }),
            Outcome::Failed(why) => attempts.push(Attempt {
                source: name.to_string(),
                outcome: format!("failed: {why}"),
            }),
            Outcome::Got(tok) => match exchange(http, registry_base, registry, &tok) {
                Ok(r) => {
                    tracing::debug!(registry, source = name, "ACR refresh token obtained");
                    return Ok((r, name.to_string()));
                }
                Err(e) => attempts.push(Attempt {
                    source: name.to_string(),
                    outcome: format!("got an Entra token, but the exchange failed: {e}"),
                }),
            },
        }
    }
    Err(AuthError::AcrNoToken {
        registry: registry.to_string(),
        attempts,
    })
}

/// The first Entra token for ACR any source gives, with the source's name (no exchange).
pub fn entra_token(http: &Client, env: &Env) -> Result<(EntraToken, String), Vec<Attempt>> {
    entra_token_for(http, env, ACR_RESOURCE)
}

/// The OAuth2 v2 scope of an Entra resource: `<resource>/.default`.
pub fn scope_of(resource: &str) -> String {
    format!("{}/.default", resource.trim_end_matches('/'))
}

/// The first Entra token for `resource` (e.g. `https://vault.azure.net`) any source gives, with
/// the source's name. When all fail, each source and why.
pub fn entra_token_for(
    http: &Client,
    env: &Env,
    resource: &str,
) -> Result<(EntraToken, String), Vec<Attempt>> {
    let mut attempts = Vec::new();
    for (name, source) in SOURCES {
        match source(http, env, resource) {
            Outcome::Got(t) => return Ok((t, name.to_string())),
            Outcome::Skipped(why) => attempts.push(Attempt {
                source: name.to_string(),
                outcome: format!("skipped: {why}"),
            }),
            Outcome::Failed(why) => attempts.push(Attempt {
                source: name.to_string(),
                outcome: format!("failed: {why}"),
            }),
        }
    }
    Err(attempts)
}
