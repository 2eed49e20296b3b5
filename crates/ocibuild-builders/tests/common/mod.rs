//! Helpers shared by the integration tests.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::path::{Path, PathBuf};

use ocibuild_builders::{BuildersError, Distro, Options, Plan, Step, plan};

/// `testdata/apps/NAME` of the workspace.
pub fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/apps")
        .join(name)
}

/// A temp app dir holding `files` (path, content).
pub fn app(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (p, c) in files {
        let path = d.path().join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, c).unwrap();
    }
    d
}

pub fn opts() -> Options {
    Options::default()
}

pub fn on(distro: Distro) -> Options {
    Options {
        distro,
        ..Options::default()
    }
}

pub fn plan_ok(dir: &Path, o: &Options) -> Plan {
    match plan(dir, o) {
        Ok(p) => p,
        Err(e) => panic!("plan of {} failed: {e}", dir.display()),
    }
}

pub fn plan_err(dir: &Path, o: &Options) -> BuildersError {
    match plan(dir, o) {
        Ok(p) => panic!("plan of {} should fail, got {p:#?}", dir.display()),
        Err(e) => e,
    }
}

pub fn step<'a>(p: &'a Plan, name: &str) -> &'a Step {
    p.steps
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no step {name} in {:?}", step_names(p)))
}

pub fn step_names(p: &Plan) -> Vec<String> {
    p.steps.iter().map(|s| s.name.clone()).collect()
}

pub fn layer_names(p: &Plan) -> Vec<String> {
    p.layers.iter().map(|l| l.name.clone()).collect()
}

pub fn env_of<'a>(s: &'a Step, k: &str) -> Option<&'a str> {
    s.env
        .iter()
        .find(|(ek, _)| ek == k)
        .map(|(_, v)| v.as_str())
}

pub fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

pub fn reasons_contain(p: &Plan, needle: &str) -> bool {
    p.reasons.iter().any(|r| r.contains(needle))
}
