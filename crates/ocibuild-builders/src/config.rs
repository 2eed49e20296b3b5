//! `ocibuild.toml` beside the app: optional overrides of what detection chose.
//!
//! ```toml
//! entrypoint = ["/app/server"]      # replaces the detected entrypoint
//! cmd = ["--port", "8080"]
//! expose = [8080, "9090/udp"]
//! healthcheck = ["CMD", "/app/server", "-health"]
//! env = { GREETING = "hi" }         # image environment
//! labels = { "org.example.team" = "web" }
//! main = "./cmd/server"             # Go main package / Java main class / entry file
//! runtime = "java21"                # distroless runtime profile (optionally `:variant`)
//! writable = ["instance", "/data"]  # directories the app writes at run time (relative: to /app)
//! [build]
//! env = { GOFLAGS = "-tags=prod" }  # environment of every build step
//! ```
//!
//! Unknown keys are errors. Command-line flags win over this file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{BuildersError, Result, line_of};

/// The file name.
pub const CONFIG_FILE: &str = "ocibuild.toml";

/// The parsed `ocibuild.toml` (all fields optional).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppConfig {
    pub path: Option<PathBuf>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    /// Normalised `PORT/PROTO`.
    pub expose: Vec<String>,
    pub healthcheck: Option<Vec<String>>,
    pub env: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub main: Option<String>,
    /// Profile name and optional variant (`java21`, `python3:debug`).
    pub runtime: Option<(String, Option<String>)>,
    pub build_env: BTreeMap<String, String>,
    /// Extra Debian packages for the runtime image (`packages = ["git"]`).
    pub packages: Vec<String>,
    /// The image's `USER` (default `65532:65532`).
    pub user: Option<String>,
    /// Directories the app writes at run time, as written (relative to the app dir, or
    /// absolute); each is a plain path without `..`.
    pub writable: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    #[serde(default)]
    expose: Vec<RawPort>,
    healthcheck: Option<Vec<String>>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    main: Option<String>,
    runtime: Option<String>,
    #[serde(default)]
    packages: Vec<String>,
    user: Option<String>,
    #[serde(default)]
    writable: Vec<String>,
    #[serde(default)]
    build: RawBuild,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBuild {
    #[serde(default)]
    env: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawPort {
    Num(u16),
    Text(String),
}

impl AppConfig {
    /// Read `dir/ocibuild.toml`; the default (empty) config when there is none.
    pub fn load(dir: &Path) -> Result<AppConfig> {
        let path = dir.join(CONFIG_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => AppConfig::parse(&text, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(AppConfig::default()),
            Err(e) => Err(BuildersError::io(&path)(e)),
        }
    }

    /// Parse the text of an `ocibuild.toml` read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<AppConfig> {
        let raw: Raw = toml::from_str(text).map_err(|e| BuildersError::Config {
            path: path.to_path_buf(),
            line: e.span().map(|s| line_of(text, s.start)),
            detail: e.message().trim().to_string(),
        })?;
        let bad = |detail: String| BuildersError::Config {
            path: path.to_path_buf(),
            line: None,
            detail,
        };
        let mut expose = Vec::new();
        for p in raw.expose {
            expose.push(match p {
                RawPort::Num(0) => return Err(bad("expose: port 0 is not a port".into())),
                RawPort::Num(n) => format!("{n}/tcp"),
                RawPort::Text(t) => normalize_port(&t).ok_or_else(|| {
                    bad(format!("expose: {t:?} is not PORT or PORT/tcp|udp|sctp"))
                })?,
            });
        }
        if let Some(hc) = &raw.healthcheck {
            match hc.first().map(String::as_str) {
                Some("CMD") | Some("CMD-SHELL") if hc.len() > 1 => {}
                Some("NONE") if hc.len() == 1 => {}
                _ => {
                    return Err(bad(format!(
                        "healthcheck {hc:?} must be [\"CMD\", program, args…], [\"CMD-SHELL\", \"command\"] or [\"NONE\"]"
                    )));
                }
            }
        }
        for p in &raw.packages {
            let ok = !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.:=/".contains(c));
            if !ok {
                return Err(bad(format!(
                    "packages: {p:?} is not a Debian package name (name, name=version or name/suite)"
                )));
            }
        }
        if let Some(u) = &raw.user
            && (u.is_empty() || u.contains(char::is_whitespace))
        {
            return Err(bad(format!(
                "user: {u:?} is not a user (NAME, UID or UID:GID)"
            )));
        }
        if raw.entrypoint.as_ref().is_some_and(Vec::is_empty) {
            return Err(bad("entrypoint must not be empty".into()));
        }
        for k in raw.env.keys().chain(raw.build.env.keys()) {
            if k.is_empty() || k.contains('=') {
                return Err(bad(format!("env: {k:?} is not a variable name")));
            }
        }
        let runtime = match raw.runtime {
            None => None,
            Some(r) => {
                let (p, v) = match r.split_once(':') {
                    Some((p, v)) => (p.to_string(), Some(v.to_string())),
                    None => (r.clone(), None),
                };
                let ok = |s: &str| {
                    !s.is_empty()
                        && s.chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                };
                if !ok(&p) || v.as_deref().is_some_and(|v| !ok(v)) {
                    return Err(bad(format!(
                        "runtime {r:?} is not a profile name like java21 or python3:nonroot"
                    )));
                }
                Some((p, v))
            }
        };
        if raw.main.as_deref().is_some_and(|m| m.trim().is_empty()) {
            return Err(bad("main must not be empty".into()));
        }
        for w in &raw.writable {
            let parts: Vec<&str> = w
                .trim_start_matches('/')
                .split('/')
                .filter(|c| !c.is_empty() && *c != ".")
                .collect();
            if parts.is_empty() {
                return Err(bad(format!(
                    "writable: {w:?} names no directory (a directory the app writes, like \
                     \"instance\" or \"/data\")"
                )));
            }
            if parts.iter().any(|c| *c == ".." || c.contains(['\0', '\\'])) {
                return Err(bad(format!(
                    "writable: {w:?} must be a plain directory path without `..`"
                )));
            }
        }
        Ok(AppConfig {
            path: Some(path.to_path_buf()),
            entrypoint: raw.entrypoint,
            cmd: raw.cmd,
            expose,
            healthcheck: raw.healthcheck,
            env: raw.env,
            labels: raw.labels,
            main: raw.main,
            runtime,
            build_env: raw.build.env,
            packages: raw.packages,
            user: raw.user,
            writable: raw.writable,
        })
    }
}

/// `8080` → `8080/tcp`; `53/udp` stays; anything else → None.
pub(crate) fn normalize_port(s: &str) -> Option<String> {
    let (port, proto) = match s.trim().split_once('/') {
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
        None => (s.trim(), "tcp".to_string()),
    };
    let n: u16 = port.parse().ok()?;
    if n == 0 || !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return None;
    }
    Some(format!("{n}/{proto}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn parse(t: &str) -> Result<AppConfig> {
        AppConfig::parse(t, Path::new("/app/ocibuild.toml"))
    }

    #[test]
    fn full_file() {
        let c = parse(
            r#"
entrypoint = ["/app/x", "serve"]
cmd = ["--port", "80"]
expose = [8080, "53/udp"]
healthcheck = ["CMD", "/app/x", "health"]
env = { A = "1" }
labels = { "org.example.team" = "web" }
main = "./cmd/x"
runtime = "java21:debug"
[build]
env = { GOFLAGS = "-tags=prod" }
"#,
        )
        .unwrap();
        assert_eq!(c.entrypoint.unwrap(), ["/app/x", "serve"]);
        assert_eq!(c.cmd.unwrap(), ["--port", "80"]);
        assert_eq!(c.expose, ["8080/tcp", "53/udp"]);
        assert_eq!(c.healthcheck.unwrap()[0], "CMD");
        assert_eq!(c.env["A"], "1");
        assert_eq!(c.labels["org.example.team"], "web");
        assert_eq!(c.main.as_deref(), Some("./cmd/x"));
        assert_eq!(c.runtime, Some(("java21".into(), Some("debug".into()))));
        assert_eq!(c.build_env["GOFLAGS"], "-tags=prod");
    }

    #[test]
    fn unknown_key_names_key_file_and_line() {
        let err = parse("cmd = [\"a\"]\nentrypiont = [\"x\"]\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("entrypiont"), "{msg}");
        assert!(msg.contains("/app/ocibuild.toml:2"), "{msg}");
        let err = parse("[build]\nenvv = {}\n").unwrap_err();
        assert!(err.to_string().contains("envv"), "{err}");
    }

    #[test]
    fn bad_values() {
        assert!(parse("expose = [\"http\"]").is_err());
        assert!(parse("expose = [0]").is_err());
        assert!(parse("healthcheck = [\"/bin/true\"]").is_err());
        assert!(parse("healthcheck = [\"NONE\"]").is_ok());
        assert!(parse("runtime = \"Java 21\"").is_err());
        assert!(parse("entrypoint = []").is_err());
        assert!(parse("entrypoint = \"x\"").is_err());
    }

    #[test]
    fn writable_directories() {
        let c = parse("writable = [\"instance\", \"/data\"]").unwrap();
        assert_eq!(c.writable, ["instance", "/data"]);
        for bad in [
            "writable = [\"../x\"]",
            "writable = [\"/\"]",
            "writable = [\"a/../../b\"]",
            "writable = \"x\"",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn missing_file_is_empty_config() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(AppConfig::load(d.path()).unwrap(), AppConfig::default());
    }
}
