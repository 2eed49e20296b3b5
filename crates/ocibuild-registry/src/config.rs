//! Docker `config.json` and containers `auth.json`: reading credentials (`auths`, `credHelpers`,
//! `credsStore`), `login`/`logout` that preserve every other field, and the
//! `docker-credential-*` helper protocol. Helper programs are found through the injected
//! environment's `PATH` and run with exactly that environment.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use serde_json::{Map, Value};

use crate::auth::{AuthError, Credential, Env, Secret};

/// The key docker uses for Docker Hub.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
pub fn docker_config_path(env: &Env) -> PathBuf {
    if let Some(d) = env.get("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("config.json");
    }
    home(env).join(".docker").join("config.json")
}

fn home(env: &Env) -> PathBuf {
    PathBuf::from(
        env.get("HOME")
            .filter(|h| !h.is_empty())
            .map(String::as_str)
            .unwrap_or("/"),
    )
}

/// containers auth files, in lookup order: `$REGISTRY_AUTH_FILE`, then
/// `$XDG_RUNTIME_DIR/containers/auth.json`.
pub fn containers_auth_paths(env: &Env) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(f) = env.get("REGISTRY_AUTH_FILE").filter(|f| !f.is_empty()) {
        v.push(PathBuf::from(f));
    }
    if let Some(d) = env.get("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        v.push(PathBuf::from(d).join("containers").join("auth.json"));
    }
    v
}

/// A path as users know it: `~/.docker/config.json` under `$HOME`.
pub fn display_path(path: &Path, env: &Env) -> String {
    if let Some(h) = env
        .get("HOME")
        .filter(|h| !h.is_empty() && h.as_str() != "/")
        && let Ok(rest) = path.strip_prefix(h)
    {
        return format!("~/{}", rest.display());
    }
    path.display().to_string()
}

/// The host part of a registry or a config key, as docker matches them: scheme and trailing path
/// dropped, lowercased; `index.docker.io`, `registry-1.docker.io` and `docker.io` are `docker.io`.
pub fn normalize_registry(key: &str) -> String {
    let k = key.trim().to_ascii_lowercase();
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(&k);
    let host = k.split('/').next().unwrap_or(k).to_string();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io".to_string(),
        _ => host,
    }
}

/// The server URL docker uses for `host` in config keys and with credential helpers.
pub fn server_url(host: &str) -> String {
    let h = normalize_registry(host);
    if h == "docker.io" {
        DOCKER_HUB_KEY.to_string()
    } else {
        h
    }
}

fn config_err(path: &Path, detail: impl Into<String>) -> AuthError {
    AuthError::Config {
        path: path.display().to_string(),
        detail: detail.into(),
    }
}

/// Read a config file as a JSON object; `Ok(None)` when it does not exist.
fn read_config(path: &Path) -> Result<Option<Map<String, Value>>, AuthError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(config_err(path, format!("cannot read: {e}"))),
    };
    if text.trim().is_empty() {
        return Ok(Some(Map::new()));
    }
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(m)) => Ok(Some(m)),
        Ok(_) => Err(config_err(path, "not a JSON object")),
        // serde_json errors carry line/column only, never content
        Err(e) => Err(config_err(path, format!("invalid JSON: {e}"))),
    }
}

/// The key of `map` that matches `host` (exact first, then normalized).
fn matching_key<'a>(map: &'a Map<String, Value>, host: &str) -> Option<&'a String> {
    let want = normalize_registry(host);
    map.keys()
        .find(|k| k.as_str() == host)
        .or_else(|| map.keys().find(|k| k.as_str() == server_url(&want)))
        .or_else(|| map.keys().find(|k| normalize_registry(k) == want))
}

/// Decode one `auths` entry. Empty entries (what docker writes next to a `credsStore`) give `None`.
pub fn credential_from_auth_entry(
    entry: &Value,
    path: &Path,
    key: &str,
) -> Result<Option<Credential>, AuthError> {
    let s = |k: &str| {
        entry
            .get(k)
            .and_then(|v| v.as_str())
            .filter(|v| !v.is_empty())
    };
    if let Some(t) = s("identitytoken") {
        return Ok(Some(Credential::IdentityToken(Secret::new(t))));
    }
    if let Some(t) = s("registrytoken") {
        return Ok(Some(Credential::RegistryToken(Secret::new(t))));
    }
    if let Some(a) = s("auth") {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(a.trim())
            .or_else(|_| {
                base64::engine::general_purpose::STANDARD_NO_PAD
                    .decode(a.trim().trim_end_matches('='))
            })
            .map_err(|_| config_err(path, format!("auths[\"{key}\"].auth is not base64")))?;
        let text = String::from_utf8(raw)
            .map_err(|_| config_err(path, format!("auths[\"{key}\"].auth is not UTF-8")))?;
        let Some((u, p)) = text.split_once(':') else {
            return Err(config_err(
                path,
                format!("auths[\"{key}\"].auth is not base64 of `user:password`"),
            ));
        };
        if u.is_empty() && p.is_empty() {
            return Ok(None);
        }
        return Ok(Some(Credential::basic(u, p)));
    }
    if let (Some(u), Some(p)) = (s("username"), s("password")) {
        return Ok(Some(Credential::basic(u, p)));
    }
    Ok(None)
}

/// Look `host` up in a docker config.json or containers auth.json: `credHelpers[host]`, then
/// `credsStore`, then `auths[host]`. `Ok(None)` when the file is missing or has nothing for `host`.
/// The second element names the source (`~/.docker/config.json auths`, `docker-credential-pass`…).
pub fn lookup(
    path: &Path,
    host: &str,
    env: &Env,
) -> Result<Option<(Credential, String)>, AuthError> {
    let Some(cfg) = read_config(path)? else {
        return Ok(None);
    };
    let shown = display_path(path, env);
    let url = server_url(host);
    if let Some(helpers) = cfg.get("credHelpers").and_then(|h| h.as_object())
        && let Some(k) = matching_key(helpers, host)
        && let Some(name) = helpers
            .get(k)
            .and_then(|n| n.as_str())
            .filter(|n| !n.is_empty())
    {
        let key = format!("credHelpers[\"{k}\"]");
        if let Some(c) = helper_get_keyed(name, &url, env, &key, &shown)? {
            return Ok(Some((
                c,
                format!("docker-credential-{name} (credHelpers in {shown})"),
            )));
        }
        // docker does not fall back when a host's helper has nothing; neither do we
        return Ok(None);
    }
    if let Some(name) = cfg
        .get("credsStore")
        .and_then(|n| n.as_str())
        .filter(|n| !n.is_empty())
        && let Some(c) = helper_get_keyed(name, &url, env, "credsStore", &shown)?
    {
        return Ok(Some((
            c,
            format!("docker-credential-{name} (credsStore in {shown})"),
        )));
    }
    if let Some(auths) = cfg.get("auths").and_then(|a| a.as_object())
        && let Some(k) = matching_key(auths, host)
        && let Some(c) = credential_from_auth_entry(&auths[k.as_str()], path, k)?
    {
        return Ok(Some((c, format!("{shown} auths"))));
    }
    Ok(None)
}

/// Store credentials for `registry` in the docker config at `path`: through
/// `docker-credential-<name> store` when `credHelpers[host]` or `credsStore` is set, else as
/// `auths[host].auth`. Every other field of the file is kept; the file is written by temp file +
/// rename with mode 0600. Returns where the credentials went.
pub fn login(
    path: &Path,
    registry: &str,
    username: &str,
    password: &Secret,
    env: &Env,
) -> Result<String, AuthError> {
    let mut cfg = read_config(path)?.unwrap_or_default();
    let url = server_url(registry);
    let shown = display_path(path, env);
    if let Some((name, key)) = helper_for(&cfg, registry) {
        helper_store(&name, &url, username, password, env, &key, &shown)?;
        return Ok(format!("docker-credential-{name} ({key} in {shown})"));
    }
    let auths = cfg
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    if !auths.is_object() {
        *auths = Value::Object(Map::new());
    }
    let Value::Object(auths) = auths else {
        return Err(config_err(path, "`auths` is not an object"));
    };
    let key = matching_key(auths, registry).cloned().unwrap_or(url);
    let encoded = base64::engine::general_purpose::STANDARD
        .encode(format!("{username}:{}", password.expose()));
    let entry = auths
        .entry(key)
        .or_insert_with(|| Value::Object(Map::new()));
    match entry {
        Value::Object(e) => {
            // replace whatever credential form was there
            for k in ["username", "password", "identitytoken", "registrytoken"] {
                e.remove(k);
            }
            e.insert("auth".into(), Value::String(encoded));
        }
        other => {
            let mut e = Map::new();
            e.insert("auth".into(), Value::String(encoded));
            *other = Value::Object(e);
        }
    }
    write_config(path, &cfg)?;
    Ok(shown)
}

/// Remove the credentials for `registry` (from the helper and/or `auths`). `Ok(false)` when there
/// were none.
pub fn logout(path: &Path, registry: &str, env: &Env) -> Result<bool, AuthError> {
    let Some(mut cfg) = read_config(path)? else {
        return Ok(false);
    };
    let mut removed = false;
    let shown = display_path(path, env);
    if let Some((name, key)) = helper_for(&cfg, registry) {
        removed |= helper_erase(&name, &server_url(registry), env, &key, &shown)?;
    }
    let mut changed = false;
    if let Some(Value::Object(auths)) = cfg.get_mut("auths") {
        let want = normalize_registry(registry);
        let keys: Vec<String> = auths
            .keys()
            .filter(|k| normalize_registry(k) == want)
            .cloned()
            .collect();
        for k in keys {
            auths.remove(&k);
            changed = true;
        }
    }
    if changed {
        write_config(path, &cfg)?;
    }
    Ok(removed || changed)
}

/// `(helper name, config key)` configured for `registry`, if any.
fn helper_for(cfg: &Map<String, Value>, registry: &str) -> Option<(String, String)> {
    if let Some(helpers) = cfg.get("credHelpers").and_then(|h| h.as_object())
        && let Some(k) = matching_key(helpers, registry)
        && let Some(name) = helpers
            .get(k)
            .and_then(|n| n.as_str())
            .filter(|n| !n.is_empty())
    {
        return Some((name.to_string(), format!("credHelpers[\"{k}\"]")));
    }
    cfg.get("credsStore")
        .and_then(|n| n.as_str())
        .filter(|n| !n.is_empty())
        .map(|n| (n.to_string(), "credsStore".to_string()))
}

fn write_config(path: &Path, cfg: &Map<String, Value>) -> Result<(), AuthError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| config_err(path, format!("cannot create {}: {e}", dir.display())))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".config.json.")
        .tempfile_in(dir)
        .map_err(|e| {
            config_err(
                path,
                format!("cannot create a temporary file in {}: {e}", dir.display()),
            )
        })?;
    let mut text = serde_json::to_string_pretty(cfg)
        .map_err(|e| config_err(path, format!("cannot serialise: {e}")))?;
    text.push('\n');
    tmp.write_all(text.as_bytes())
        .map_err(|e| config_err(path, format!("cannot write: {e}")))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| config_err(path, format!("cannot sync: {e}")))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o600))
            .map_err(|e| config_err(path, format!("cannot set mode 0600: {e}")))?;
    }
    // keep a symlinked config (dotfile managers) pointing where it did
    let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    tmp.persist(&target)
        .map_err(|e| config_err(path, format!("cannot replace: {}", e.error)))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// credential helpers

/// Find `name` on the injected environment's `PATH` (an absolute or relative path with a `/` is
/// taken as is).
pub fn find_program(name: &str, env: &Env) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    if name.contains('/') {
        let p = PathBuf::from(name);
        return p.is_file().then_some(p);
    }
    let path = env.get("PATH")?;
    std::env::split_paths(path)
        .filter(|d| !d.as_os_str().is_empty())
        .map(|d| d.join(name))
        .find(|p| {
            std::fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// Run `program args…` with exactly `env`, `stdin` fed and closed; retries the spawn when the
/// program file is momentarily busy (another thread still had it open for writing).
pub(crate) fn run_program(
    program: &Path,
    args: &[&str],
    env: &Env,
    stdin: &[u8],
) -> std::io::Result<std::process::Output> {
    let mut tries = 0;
    let mut child = loop {
        let r = Command::new(program)
            .args(args)
            .env_clear()
            .envs(env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        match r {
            Err(e) if e.raw_os_error() == Some(26) && tries < 20 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(25));
            }
            other => break other?,
        }
    };
    if let Some(mut i) = child.stdin.take() {
        // a helper that exits without reading stdin is not an error here
        let _ = i.write_all(stdin);
    }
    child.wait_with_output()
}

fn helper_program(name: &str, env: &Env, key: &str, config: &str) -> Result<PathBuf, AuthError> {
    find_program(&format!("docker-credential-{name}"), env).ok_or_else(|| {
        AuthError::HelperMissing {
            key: key.to_string(),
            name: name.to_string(),
            config: config.to_string(),
        }
    })
}

fn is_not_found(out: &str) -> bool {
    let l = out.to_ascii_lowercase();
    l.contains("credentials not found")
        || l.contains("not found in native keychain")
        || l.contains("no credentials")
}

fn helper_failure(name: &str, action: &str, server: &str, out: &std::process::Output) -> AuthError {
    // helpers print errors on stdout (the protocol) or stderr; neither carries the secret we sent
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    let detail = [text, err]
        .into_iter()
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let detail = if detail.is_empty() {
        format!("exited with {}", out.status)
    } else {
        format!("{} ({})", detail, out.status)
    };
    AuthError::Helper {
        name: name.into(),
        action: action.into(),
        server: server.into(),
        detail,
    }
}

fn helper_get_keyed(
    name: &str,
    server: &str,
    env: &Env,
    key: &str,
    config: &str,
) -> Result<Option<Credential>, AuthError> {
    let prog = helper_program(name, env, key, config)?;
    let out =
        run_program(&prog, &["get"], env, server.as_bytes()).map_err(|e| AuthError::Helper {
            name: name.into(),
            action: "get".into(),
            server: server.into(),
            detail: format!("cannot run {}: {e}", prog.display()),
        })?;
    if !out.status.success() {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if is_not_found(&text) {
            return Ok(None);
        }
        return Err(helper_failure(name, "get", server, &out));
    }
    let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| AuthError::Helper {
        name: name.into(),
        action: "get".into(),
        server: server.into(),
        detail: format!("answer is not JSON ({e})"),
    })?;
    let user = v
        .get("Username")
        .and_then(|u| u.as_str())
        .unwrap_or_default();
    let secret = v.get("Secret").and_then(|u| u.as_str()).unwrap_or_default();
    if secret.is_empty() {
        return Ok(None);
    }
    if user == "<token>" {
        return Ok(Some(Credential::IdentityToken(Secret::new(secret))));
    }
    Ok(Some(Credential::basic(user, secret)))
}

/// `docker-credential-<name> get` for `server`: `Ok(None)` when the helper has nothing for it.
pub fn helper_get(name: &str, server: &str, env: &Env) -> Result<Option<Credential>, AuthError> {
    helper_get_keyed(name, server, env, "credsStore", "the docker config")
}

fn helper_store(
    name: &str,
    server: &str,
    username: &str,
    secret: &Secret,
    env: &Env,
    key: &str,
    config: &str,
) -> Result<(), AuthError> {
    let prog = helper_program(name, env, key, config)?;
    let payload =
        serde_json::json!({ "ServerURL": server, "Username": username, "Secret": secret.expose() });
    let out = run_program(&prog, &["store"], env, payload.to_string().as_bytes()).map_err(|e| {
        AuthError::Helper {
            name: name.into(),
            action: "store".into(),
            server: server.into(),
            detail: format!("cannot run {}: {e}", prog.display()),
        }
    })?;
    if !out.status.success() {
        let mut err = helper_failure(name, "store", server, &out);
        if let AuthError::Helper { detail, .. } = &mut err {
            *detail = detail.replace(secret.expose(), "<redacted>");
        }
        return Err(err);
    }
    Ok(())
}

fn helper_erase(
    name: &str,
    server: &str,
    env: &Env,
    key: &str,
    config: &str,
) -> Result<bool, AuthError> {
    let prog = helper_program(name, env, key, config)?;
    let out =
        run_program(&prog, &["erase"], env, server.as_bytes()).map_err(|e| AuthError::Helper {
            name: name.into(),
            action: "erase".into(),
            server: server.into(),
            detail: format!("cannot run {}: {e}", prog.display()),
        })?;
    if out.status.success() {
        return Ok(true);
    }
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if is_not_found(&text) {
        return Ok(false);
    }
    Err(helper_failure(name, "erase", server, &out))
}
