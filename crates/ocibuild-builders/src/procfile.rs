//! Heroku's `Procfile`: the `web` process is the command a platform runs to serve the app
//! (Heroku, Dokku, Cloud Native Buildpacks' procfile buildpack). The image has no shell, so
//! only a plain command is used: words, leading `VAR=value` assignments, and `$PORT` (a
//! platform's port), which becomes the image's `PORT` and the port it exposes.

use std::path::Path;

use crate::error::{BuildersError, Result};
use crate::node::shell_words;

impl WebProcess {
    /// `Procfile:N web "command"`, for the plan's reasons.
    pub fn describe(&self) -> String {
        format!("{} web {:?}", self.at, self.command)
    }

    /// ` ($PORT is P, the image's PORT)` when the command named `$PORT`.
    pub fn port_note(&self, port: &str) -> String {
        if self.uses_port {
            format!(" ($PORT is {port}, the image's PORT)")
        } else {
            String::new()
        }
    }
}

/// The file name.
pub(crate) const PROCFILE: &str = "Procfile";

/// The `web` line of a Procfile, as the image can run it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WebProcess {
    /// `Procfile:N`.
    pub at: String,
    /// The command as written.
    pub command: String,
    pub env: Vec<(String, String)>,
    pub argv: Vec<String>,
    /// `$PORT` was replaced by the port.
    pub uses_port: bool,
}

/// What the Procfile says of the web process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Web {
    /// No Procfile, or no `web` line.
    Absent,
    Usable(WebProcess),
    /// A web line the image cannot run as it is (`at`, the command, why).
    Unusable(String, String, String),
}

/// The `web` process of `dir/Procfile`, with `$PORT` / `${PORT}` replaced by `port`.
pub(crate) fn web_process(dir: &Path, port: &str) -> Result<Web> {
    let path = dir.join(PROCFILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Web::Absent),
        Err(e) => return Err(BuildersError::Io { path, source: e }),
    };
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some((name, command)) = line.split_once(':') else {
            continue;
        };
        if name.trim() != "web" {
            continue;
        }
        let at = format!("{PROCFILE}:{}", i + 1);
        let command = command.trim().to_string();
        let uses_port = command.contains("$PORT") || command.contains("${PORT}");
        let replaced = command.replace("${PORT}", port).replace("$PORT", port);
        let Some(words) = shell_words(&replaced) else {
            return Ok(Web::Unusable(
                at,
                command,
                "it uses the shell beyond plain words (other variables, operators, \
                 redirections), and the image has no shell"
                    .into(),
            ));
        };
        let (env, i) = crate::node::leading_env(&words);
        let argv = words[i..].to_vec();
        if argv.is_empty() {
            return Ok(Web::Unusable(at, command, "it names no program".into()));
        }
        return Ok(Web::Usable(WebProcess {
            at,
            command,
            env,
            argv,
            uses_port,
        }));
    }
    Ok(Web::Absent)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn web(text: &str) -> Web {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(PROCFILE), text).unwrap();
        web_process(d.path(), "8000").unwrap()
    }

    #[test]
    fn the_web_line_is_read_as_plain_words() {
        let Web::Usable(w) = web(
            "# processes\nrelease: python manage.py migrate\nweb: WEB_CONCURRENCY=3 gunicorn shop.wsgi --bind 0.0.0.0:$PORT --log-file -\nworker: celery -A shop worker\n",
        ) else {
            panic!("web line not usable");
        };
        assert_eq!(w.at, "Procfile:3");
        assert_eq!(w.env, [("WEB_CONCURRENCY".to_string(), "3".to_string())]);
        assert_eq!(
            w.argv,
            [
                "gunicorn",
                "shop.wsgi",
                "--bind",
                "0.0.0.0:8000",
                "--log-file",
                "-"
            ]
        );
        assert!(w.uses_port);
        let Web::Usable(w) = web("web:node server.js\n") else {
            panic!("web line not usable");
        };
        assert_eq!(w.argv, ["node", "server.js"]);
        assert!(!w.uses_port);
        assert!(matches!(
            web("web: bin/start-nginx && gunicorn app:app\n"),
            Web::Unusable(..)
        ));
        assert!(matches!(
            web("web: gunicorn app:app --workers $WEB_CONCURRENCY\n"),
            Web::Unusable(..)
        ));
        assert_eq!(web("worker: python worker.py\n"), Web::Absent);
        let d = tempfile::tempdir().unwrap();
        assert_eq!(web_process(d.path(), "8000").unwrap(), Web::Absent);
    }
}
