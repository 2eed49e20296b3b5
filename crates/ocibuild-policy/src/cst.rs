//! container-structure-test YAML suites, run statically: `fileExistenceTests`,
//! `fileContentTests` and `metadataTest` (commandTests need a container and are reported as
//! not run).

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::PolicyError;
use crate::index::{Kind, Scanned};

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Suite {
    #[serde(default)]
    pub file_existence_tests: Vec<FileExistence>,
    #[serde(default)]
    pub file_content_tests: Vec<FileContent>,
    pub metadata_test: Option<Metadata>,
    #[serde(default)]
    pub command_tests: Vec<serde_norway::Value>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileExistence {
    pub name: String,
    pub path: String,
    #[serde(default = "yes")]
    pub should_exist: bool,
    pub permissions: Option<String>,
    pub uid: Option<u64>,
    pub gid: Option<u64>,
    pub is_executable_by: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileContent {
    pub name: String,
    pub path: String,
    #[serde(default)]
    pub expected_contents: Vec<String>,
    #[serde(default)]
    pub excluded_contents: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyValue {
    pub key: String,
    pub value: String,
    #[serde(default)]
    pub is_regex: bool,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    #[serde(default, alias = "env")]
    pub env_vars: Vec<KeyValue>,
    #[serde(default)]
    pub labels: Vec<KeyValue>,
    #[serde(default)]
    pub exposed_ports: Vec<String>,
    #[serde(default)]
    pub unexposed_ports: Vec<String>,
    #[serde(default)]
    pub volumes: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub workdir: Option<String>,
    pub user: Option<String>,
}

impl Suite {
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            PolicyError::file(path, format!("cannot read the structure-test file: {e}"))
        })?;
        let suite: Suite = serde_norway::from_str(&text).map_err(|e| {
            PolicyError::file(path, format!("is not a container-structure-test file: {e}"))
        })?;
        for t in &suite.file_content_tests {
            for re in t.expected_contents.iter().chain(&t.excluded_contents) {
                regex::bytes::Regex::new(re).map_err(|e| {
                    PolicyError::file(path, format!("test `{}`: bad regex `{re}`: {e}", t.name))
                })?;
            }
        }
        Ok(suite)
    }

    /// The paths whose contents the content tests read.
    pub fn content_paths(&self) -> BTreeSet<String> {
        self.file_content_tests
            .iter()
            .map(|t| ocibuild_elf::normalize(&t.path))
            .collect()
    }

    /// Run the file and metadata tests: (test name, why it failed) for each failure.
    pub fn run(&self, s: &Scanned) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for t in &self.file_existence_tests {
            let p = ocibuild_elf::normalize(&t.path);
            let real = ocibuild_elf::resolve(s, &p);
            let e = real.as_ref().and_then(|r| s.fs.get(r));
            let exists = real.is_some();
            if exists != t.should_exist {
                out.push((
                    t.name.clone(),
                    format!(
                        "{p} {}",
                        if t.should_exist {
                            "should exist but does not"
                        } else {
                            "should not exist but does"
                        }
                    ),
                ));
                continue;
            }
            let Some(e) = e else { continue };
            if let Some(want) = &t.permissions {
                let have = perm_string(e.kind, e.mode);
                if &have != want {
                    out.push((
                        t.name.clone(),
                        format!("{p} has permissions {have}, expected {want}"),
                    ));
                }
            }
            if let Some(u) = t.uid
                && e.uid != u
            {
                out.push((
                    t.name.clone(),
                    format!("{p} is owned by uid {}, expected {u}", e.uid),
                ));
            }
            if let Some(g) = t.gid
                && e.gid != g
            {
                out.push((
                    t.name.clone(),
                    format!("{p} has gid {}, expected {g}", e.gid),
                ));
            }
            if let Some(by) = &t.is_executable_by {
                let bits = match by.as_str() {
                    "owner" => 0o100,
                    "group" => 0o010,
                    "other" => 0o001,
                    _ => 0o111,
                };
                if e.mode & bits == 0 {
                    out.push((
                        t.name.clone(),
                        format!("{p} is not executable by {by} (mode {:o})", e.mode),
                    ));
                }
            }
        }
        for t in &self.file_content_tests {
            let p = ocibuild_elf::normalize(&t.path);
            let Some(bytes) = s.contents.get(&p) else {
                out.push((
                    t.name.clone(),
                    format!("{p} is not a regular file in the image"),
                ));
                continue;
            };
            for re in &t.expected_contents {
                if let Ok(r) = regex::bytes::Regex::new(re)
                    && !r.is_match(bytes)
                {
                    out.push((t.name.clone(), format!("{p} does not contain /{re}/")));
                }
            }
            for re in &t.excluded_contents {
                if let Ok(r) = regex::bytes::Regex::new(re)
                    && r.is_match(bytes)
                {
                    out.push((t.name.clone(), format!("{p} contains the excluded /{re}/")));
                }
            }
        }
        if let Some(m) = &self.metadata_test {
            metadata(m, &s.config, &mut out);
        }
        if !self.command_tests.is_empty() {
            out.push((
                "commandTests".into(),
                format!(
                    "{} command test(s) need a running container and were not run; run them with container-structure-test, or drop them from the static suite",
                    self.command_tests.len()
                ),
            ));
        }
        out
    }
}

fn perm_string(kind: Kind, mode: u32) -> String {
    let mut s = String::from(match kind {
        Kind::Dir => "d",
        Kind::Symlink => "L",
        _ => "-",
    });
    for (i, c) in "rwxrwxrwx".chars().enumerate() {
        s.push(if mode & (0o400 >> i) != 0 { c } else { '-' });
    }
    s
}

fn matches(want: &KeyValue, have: Option<&str>) -> bool {
    match have {
        None => false,
        Some(h) if want.is_regex => regex::Regex::new(&want.value).is_ok_and(|r| r.is_match(h)),
        Some(h) => h == want.value,
    }
}

fn metadata(m: &Metadata, config: &Value, out: &mut Vec<(String, String)>) {
    let c = config.get("config").cloned().unwrap_or(Value::Null);
    let env: Vec<(String, String)> = c
        .get("Env")
        .and_then(|e| e.as_array())
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv.to_string(), String::new()),
        })
        .collect();
    for kv in &m.env_vars {
        let have = env
            .iter()
            .find(|(k, _)| k == &kv.key)
            .map(|(_, v)| v.as_str());
        if !matches(kv, have) {
            out.push((
                "metadataTest".into(),
                format!("env {} is {:?}, expected {:?}", kv.key, have, kv.value),
            ));
        }
    }
    for kv in &m.labels {
        let have = c
            .get("Labels")
            .and_then(|l| l.get(&kv.key))
            .and_then(|v| v.as_str());
        if !matches(kv, have) {
            out.push((
                "metadataTest".into(),
                format!("label {} is {:?}, expected {:?}", kv.key, have, kv.value),
            ));
        }
    }
    let ports: BTreeSet<String> = c
        .get("ExposedPorts")
        .and_then(|p| p.as_object())
        .map(|o| {
            o.keys()
                .map(|k| k.trim_end_matches("/tcp").to_string())
                .collect()
        })
        .unwrap_or_default();
    for p in &m.exposed_ports {
        if !ports.contains(p.trim_end_matches("/tcp")) {
            out.push(("metadataTest".into(), format!("port {p} is not exposed")));
        }
    }
    for p in &m.unexposed_ports {
        if ports.contains(p.trim_end_matches("/tcp")) {
            out.push((
                "metadataTest".into(),
                format!("port {p} is exposed but should not be"),
            ));
        }
    }
    for v in &m.volumes {
        if c.get("Volumes").and_then(|o| o.get(v)).is_none() {
            out.push(("metadataTest".into(), format!("volume {v} is not declared")));
        }
    }
    let list = |k: &str| -> Vec<String> {
        c.get(k)
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    };
    if let Some(e) = &m.entrypoint
        && &list("Entrypoint") != e
    {
        out.push((
            "metadataTest".into(),
            format!("entrypoint is {:?}, expected {e:?}", list("Entrypoint")),
        ));
    }
    if let Some(e) = &m.cmd
        && &list("Cmd") != e
    {
        out.push((
            "metadataTest".into(),
            format!("cmd is {:?}, expected {e:?}", list("Cmd")),
        ));
    }
    let s = |k: &str| c.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
    if let Some(w) = &m.workdir
        && &s("WorkingDir") != w
    {
        out.push((
            "metadataTest".into(),
            format!("workdir is {:?}, expected {w:?}", s("WorkingDir")),
        ));
    }
    if let Some(u) = &m.user
        && &s("User") != u
    {
        out.push((
            "metadataTest".into(),
            format!("user is {:?}, expected {u:?}", s("User")),
        ));
    }
}
