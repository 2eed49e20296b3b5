//! Independent oracles from the package registries, installed once per target dir and shared by
//! every test process: Python tools in a virtualenv (`cyclonedx-python-lib`, `spdx-tools`,
//! `packaging`, `jsonschema`, …) and npm packages (`semver`, …).
//!
//! Each set of packages gets its own directory under [`testkit_cache_dir`], named after the
//! packages, installed under a file lock and marked complete only at the end, so parallel test
//! processes install it once and a killed install is redone rather than used half-made.
//! A failed install panics with pip's or npm's whole output: these oracles are never skipped.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use crate::azurite::{CA_BUNDLE, testkit_cache_dir};
use crate::{command_line, require_tool, run};

/// A virtualenv holding `packages` (pip requirement strings, e.g. `"cyclonedx-python-lib[json-validation]==8.*"`).
/// Returns the venv's `bin/python`; its console scripts (e.g. `pyspdxtools`) are beside it.
pub fn python_venv(packages: &[&str]) -> PathBuf {
    let dir = installed("pyvenv", packages, |staging| {
        let python3 = require_tool("python3", "python3 python3-venv");
        let mut venv = Command::new(&python3);
        venv.arg("-m").arg("venv").arg(staging).stdin(Stdio::null());
        check(
            &mut venv,
            "creating a Python virtualenv (Debian package python3-venv)",
        );
        let mut pip = Command::new(staging.join("bin/python"));
        pip.args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
        ])
        .args(packages)
        .stdin(Stdio::null());
        if Path::new(CA_BUNDLE).is_file() && std::env::var_os("PIP_CERT").is_none() {
            pip.env("PIP_CERT", CA_BUNDLE);
        }
        check(&mut pip, "installing Python oracles from PyPI with pip");
    });
    dir.join("bin/python")
}

/// A directory whose `node_modules` holds `packages` (npm specs, e.g. `"semver@7"`). Run a script
/// against it with `node` and `NODE_PATH=<dir>/node_modules`, or use [`node_eval`].
pub fn npm_packages(packages: &[&str]) -> PathBuf {
    installed("npm", packages, |staging| {
        require_tool("node", "nodejs");
        let npm = require_tool("npm", "nodejs npm");
        let mut cmd = Command::new(npm);
        cmd.arg("install")
            .arg("--prefix")
            .arg(staging)
            .args([
                "--no-audit",
                "--no-fund",
                "--no-save",
                "--no-update-notifier",
            ])
            .args(packages)
            .stdin(Stdio::null());
        if Path::new(CA_BUNDLE).is_file() {
            if std::env::var_os("NODE_EXTRA_CA_CERTS").is_none() {
                cmd.env("NODE_EXTRA_CA_CERTS", CA_BUNDLE);
            }
            if std::env::var_os("npm_config_cafile").is_none() {
                cmd.env("npm_config_cafile", CA_BUNDLE);
            }
        }
        check(&mut cmd, "installing npm oracles");
    })
}

/// Runs `node -e SCRIPT ARGS…` with `packages` (see [`npm_packages`]) resolvable by `require`,
/// and returns its stdout. Panics with node's output when it fails.
pub fn node_eval(packages: &[&str], script: &str, args: &[&str]) -> String {
    let dir = npm_packages(packages);
    let mut cmd = Command::new(require_tool("node", "nodejs"));
    cmd.arg("-e")
        .arg(script)
        .args(args)
        .env("NODE_PATH", dir.join("node_modules"))
        .stdin(Stdio::null());
    String::from_utf8_lossy(&check(&mut cmd, "running a node oracle")).into_owned()
}

/// Runs `python -c SCRIPT ARGS…` in the venv of `packages` (see [`python_venv`]) and returns its
/// stdout. Panics with Python's output when it fails.
pub fn python_eval(packages: &[&str], script: &str, args: &[&str]) -> String {
    let mut cmd = Command::new(python_venv(packages));
    cmd.arg("-c").arg(script).args(args).stdin(Stdio::null());
    String::from_utf8_lossy(&check(&mut cmd, "running a Python oracle")).into_owned()
}

fn check(cmd: &mut Command, what: &str) -> Vec<u8> {
    let out = run(cmd);
    if !out.status.success() {
        panic!(
            "{what} failed: `{}` exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}\n\
             these oracles come from PyPI/npm; the test needs them and never skips",
            command_line(cmd),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out.stdout
}

/// `<cache>/<kind>-<hash of packages>`, made by `install(staging)` under a lock when missing.
fn installed(kind: &str, packages: &[&str], install: impl FnOnce(&Path)) -> PathBuf {
    let mut h = Sha256::new();
    for p in packages {
        h.update(p.as_bytes());
        h.update([0]);
    }
    let hex: String = h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let cache = testkit_cache_dir();
    let dest = cache.join(format!("{kind}-{hex}"));
    // The marker names the directory the tools were installed at: a venv's console scripts carry
    // its absolute path in their `#!` line, so a cache that was moved or copied is installed again.
    let done = dest.join(".installed");
    let marker = format!("{}\n{}", dest.display(), packages.join("\n"));
    let complete = || fs::read_to_string(&done).is_ok_and(|m| m == marker);
    if complete() {
        return dest;
    }
    let lock_path = cache.join(format!("{kind}-{hex}.lock"));
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", lock_path.display()));
    lock.lock()
        .unwrap_or_else(|e| panic!("cannot lock {}: {e}", lock_path.display()));
    if complete() {
        return dest;
    }
    // A venv records its own path, so it is installed where it will live; the marker file says
    // it is complete, and a leftover from a killed install is removed first.
    let _ = fs::remove_dir_all(&dest);
    fs::create_dir_all(&dest).unwrap_or_else(|e| panic!("cannot create {}: {e}", dest.display()));
    install(&dest);
    fs::write(&done, &marker).unwrap_or_else(|e| panic!("cannot write {}: {e}", done.display()));
    dest
}

/// The SLSA Provenance v1 predicate schema in the repository's testdata (SLSA publishes only
/// CUE; this JSON Schema is written from the specification).
pub fn slsa_provenance_schema() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/schemas/slsa-provenance-v1.schema.json")
}

/// Python `jsonschema`'s (Draft 2020-12, with format checks) errors for `doc` against the
/// schema file `schema`, each as `[path]: message`, sorted; empty when it is valid.
pub fn json_schema_errors(schema: &Path, doc: &serde_json::Value) -> Vec<String> {
    const VALIDATE: &str = r#"
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
doc = json.loads(sys.argv[2])
v = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
errors = sorted(v.iter_errors(doc), key=str)
print(json.dumps([f"{list(e.path)}: {e.message}" for e in errors]))
"#;
    let out = python_eval(
        &["jsonschema[format]==4.*"],
        VALIDATE,
        &[&schema.to_string_lossy(), &doc.to_string()],
    );
    serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("the jsonschema oracle printed no JSON list ({e}): {out}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn the_version_oracles_answer() {
        let py = python_eval(
            &["packaging==24.*"],
            "import sys; from packaging.version import Version as V; print(V(sys.argv[1]) < V(sys.argv[2]))",
            &["1.0rc1", "1.0"],
        );
        assert_eq!(py.trim(), "True");
        let js = node_eval(
            &["semver@7"],
            "const s = require('semver'); console.log(s.satisfies(process.argv[1], process.argv[2]))",
            &["1.2.3", "^1.0.0"],
        );
        assert_eq!(js.trim(), "true");
    }
}
