//! One stage, instruction by instruction.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ocibuild_dockerfile::{
    Command, CopyArgs, Instruction, InstructionKind, MountType, RunMount, expand, expand_words,
    parse_onbuild_triggers,
};
use ocibuild_oci::Digest;
use ocibuild_oci::image::Descriptor;
use ocibuild_oci::layer::{LayerBuilder, LayerOptions};
use ocibuild_sandbox::run::{Mount, Network, RootfsSource, Spec, run_streaming};
use serde_json::{Map, Value, json};

use super::{Chain, Exec, SecretSource, StageOut, fsops, materialize, plat_str};
use crate::Event;
use crate::error::{EngineError, Result};
use crate::zeroconfig::{CA_PATH, CA_VARS};

pub(crate) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Build args every RUN sees without an ARG instruction (BuildKit's predefined args); like
/// BuildKit, they are left out of cache keys and never stored in the image.
const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// A stage being built.
pub(crate) struct StageRun {
    pub i: usize,
    pub name: String,
    pub chain: Chain,
    /// The platform the stage runs for (`os/arch[/variant]`): its `FROM --platform`, else the
    /// target's.
    pub platform: String,
    /// The materialised root, once a step needed it.
    pub merged: Option<PathBuf>,
    /// Declared ARGs with their values (None: declared without a value).
    pub args: BTreeMap<String, Option<String>>,
    pub cmd_set: bool,
    /// Warm mode: a step missed; the rest of the stage is skipped.
    pub stopped: bool,
    /// Position of the current instruction in the stage (every instruction counts).
    pub step_no: usize,
    /// Position of the current filesystem step (RUN, COPY, ADD, WORKDIR) among the stage's,
    /// and their number: what `[stage N/M]` shows, as BuildKit numbers them.
    pub fs_no: usize,
    pub fs_total: usize,
    /// How the current step ended (ran, or from a cache), recorded when it is taken into the
    /// chain ([`Exec::push_step`]).
    pub pending: Option<ocibuild_record::StepStatus>,
    /// The Dockerfile line of the current instruction.
    pub line: usize,
}

/// The instructions that are steps of their own in the progress output (`[stage N/M]`).
fn is_fs_step(k: &InstructionKind) -> bool {
    matches!(
        k,
        InstructionKind::Run(_)
            | InstructionKind::Copy(_)
            | InstructionKind::Add(_)
            | InstructionKind::Workdir(_)
    )
}

impl StageRun {
    fn cfg(&mut self) -> &mut Map<String, Value> {
        if !self.chain.config.is_object() {
            self.chain.config = json!({});
        }
        let c = &mut self.chain.config["config"];
        if !c.is_object() {
            *c = Value::Object(Map::new());
        }
        match c {
            Value::Object(m) => m,
            // made an object just above
            _ => unreachable!("config is an object"),
        }
    }

    fn config_get(&self, k: &str) -> Option<&Value> {
        self.chain.config.get("config").and_then(|c| c.get(k))
    }

    /// ENV of the image config, in order.
    pub fn env(&self) -> Vec<(String, String)> {
        self.config_get("Env")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(|kv| match kv.split_once('=') {
                        Some((k, v)) => (k.to_string(), v.to_string()),
                        None => (kv.to_string(), String::new()),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn set_env(&mut self, k: &str, v: &str) {
        let mut env = self.env();
        if let Some(e) = env.iter_mut().find(|(ek, _)| ek == k) {
            e.1 = v.to_string();
        } else {
            env.push((k.to_string(), v.to_string()));
        }
        let list: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        self.cfg().insert("Env".into(), json!(list));
    }

    /// A variable for expansion: ENV first, then declared ARGs.
    pub fn lookup(&self, name: &str) -> Option<String> {
        if let Some((_, v)) = self.env().into_iter().find(|(k, _)| k == name) {
            return Some(v);
        }
        self.args.get(name).cloned().flatten()
    }

    pub fn workdir(&self) -> String {
        self.config_get("WorkingDir")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or("/")
            .to_string()
    }

    pub fn user(&self) -> Option<String> {
        self.config_get("User")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    pub fn shell(&self) -> Vec<String> {
        self.config_get("Shell")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect::<Vec<_>>()
            })
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
    }

    fn history(&mut self, created_by: &str, empty: bool, epoch: &str) {
        let Some(obj) = self.chain.config.as_object_mut() else {
            return;
        };
        let h = obj.entry("history").or_insert_with(|| json!([]));
        if !h.is_array() {
            *h = json!([]);
        }
        if let Some(a) = h.as_array_mut() {
            let mut e = json!({"created": epoch, "created_by": created_by, "comment": "buildkit.dockerfile.v0"});
            if empty {
                e["empty_layer"] = json!(true);
            }
            a.push(e);
        }
    }
}

/// A cached step's layer and diff_id (`None`: the step changed no file).
pub(crate) type CachedLayer = Option<(Descriptor, Digest)>;

/// A step's record in the cache.
#[derive(serde::Serialize, serde::Deserialize)]
struct Record {
    layer: Option<(Descriptor, Digest)>,
    /// How the layer was compressed ([`ocibuild_oci::assemble::compression_key`]): a build
    /// stage's layers are written fast (zstd -1) and converted only when an image takes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    compressed_as: Option<String>,
}

/// How the layers of steps in a stage no image takes (a build stage's) are compressed: zstd at
/// level 1, several times faster than gzip -6 at about its ratio. They only live in the store
/// and in `--cache-to` caches; a stage that ends up in an image (another `--target`) has them
/// converted to the build's compression when the image is written
/// ([`ocibuild_oci::assemble::layer_compressed_as`]), giving the bytes a build writing them so
/// gives.
pub(crate) const BUILD_STAGE_COMPRESSION: (ocibuild_oci::Compression, Option<u32>) =
    (ocibuild_oci::Compression::Zstd, Some(1));

/// A `COPY --from=STAGE` step's second key: the stage by its chain key (what its steps' keys
/// say it holds) instead of by the content of the paths copied, which needs the stage's root
/// and so its base. A cold runner whose source stage came whole from the cache (its base not
/// assembled) looks this up first; the record names the step's content key, which the chain
/// continues with, so every later key is the one the exporting runner computed.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct AliasRecord {
    pub alias_of: String,
}

/// A `--cache-from` backend as a build record names it (no host paths, no accounts):
/// `registry`, `azblob`, `local-dir`.
pub(crate) fn cache_kind(describe: &str) -> String {
    match describe.split_whitespace().next() {
        Some("local") => "local-dir".into(),
        Some(w) => w.to_string(),
        None => "remote".into(),
    }
}

/// A cache key as this executor makes them (64 lowercase hex digits).
fn is_hex_key(k: &str) -> bool {
    k.len() == 64
        && k.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub(crate) fn key_of(v: Value) -> String {
    use sha2::Digest as _;
    let bytes = serde_json::to_vec(&v).unwrap_or_default();
    hex::encode(sha2::Sha256::digest(&bytes))
}

impl Exec<'_> {
    pub(crate) fn run_stage(&self, i: usize) -> Result<()> {
        let stage = &self.df.stages[i];
        let name = stage.display_name(i);
        let (chain, triggers) = self.start_chain(i)?;
        let platform = plat_str(&self.stage_platform(i)?);
        let mut st = StageRun {
            i,
            name: name.clone(),
            chain,
            platform,
            merged: None,
            args: BTreeMap::new(),
            cmd_set: false,
            stopped: false,
            step_no: 0,
            fs_no: 0,
            fs_total: stage
                .instructions
                .iter()
                .filter(|i| is_fs_step(&i.kind))
                .count(),
            pending: None,
            line: 0,
        };
        if !triggers.is_empty() {
            let ins = parse_onbuild_triggers(&triggers).map_err(|e| EngineError::Invalid {
                what: format!(
                    "{}: ONBUILD triggers of the base",
                    self.loc(stage.span.line)
                ),
                detail: e.to_string(),
            })?;
            st.fs_total += ins.iter().filter(|i| is_fs_step(&i.kind)).count();
            for ins in &ins {
                (self.ev)(Event::Note(format!("[{name}] ONBUILD {}", ins.original)));
                self.step(&mut st, ins)?;
            }
        }
        for ins in &stage.instructions {
            self.step(&mut st, ins)?;
        }
        let out = StageOut {
            name,
            chain: st.chain,
            merged: Mutex::new(st.merged),
            stopped: st.stopped,
        };
        let _ = self.stages[i].set(Arc::new(out));
        Ok(())
    }

    fn expand(&self, st: &StageRun, word: &str, line: usize) -> Result<String> {
        expand(word, &|n: &str| st.lookup(n), self.df.escape()).map_err(|e| EngineError::Invalid {
            what: self.loc(line),
            detail: format!("{e}"),
        })
    }

    fn step(&self, st: &mut StageRun, ins: &Instruction) -> Result<()> {
        st.step_no += 1;
        st.line = ins.span.line;
        if is_fs_step(&ins.kind) {
            st.fs_no += 1;
        }
        let label = format!(
            "[{} {}/{}] {}",
            st.name,
            st.fs_no,
            st.fs_total,
            one_line(&ins.original)
        );
        let was_stopped = st.stopped;
        if !was_stopped {
            self.step_inner(st, ins, &label)?;
        }
        // `--offline`'s walk: the step that stopped the stage and every filesystem step after it
        // would run
        if let Some(p) = &self.probe
            && st.stopped
            && is_fs_step(&ins.kind)
        {
            p.lock()
                .map_err(super::poison)?
                .push(crate::offline::WouldRun {
                    label,
                    kind: ins.kind.clone(),
                });
        }
        Ok(())
    }

    fn step_inner(&self, st: &mut StageRun, ins: &Instruction, label: &str) -> Result<()> {
        let line = ins.span.line;
        let epoch = ocibuild_oci::image::rfc3339(self.o.source_date_epoch);
        let created_by = one_line(&ins.original);
        match &ins.kind {
            InstructionKind::Arg(args) => {
                for a in args {
                    let v = if let Some(v) = self.o.build_args.get(&a.name) {
                        Some(v.clone())
                    } else if let Some(d) = &a.default {
                        Some(self.expand(st, d, line)?)
                    } else if let Some(g) = self.plan.global_args.get(&a.name) {
                        Some(g.clone())
                    } else {
                        ocibuild_dockerfile::platform_args(
                            &plat_str(&self.o.platform),
                            &plat_str(&ocibuild_oci::image::Platform::host()),
                        )
                        .get(&a.name)
                        .cloned()
                    };
                    st.args.insert(a.name.clone(), v);
                }
                self.chain_config(st, "ARG", &json!(st.args));
                return Ok(());
            }
            InstructionKind::Env(kvs) => {
                for kv in kvs {
                    let k = self.expand(st, &kv.key, line)?;
                    let v = self.expand(st, &kv.value, line)?;
                    st.set_env(&k, &v);
                }
            }
            InstructionKind::Label(kvs) => {
                for kv in kvs {
                    let k = self.expand(st, &kv.key, line)?;
                    let v = self.expand(st, &kv.value, line)?;
                    let c = st.cfg();
                    let l = c.entry("Labels").or_insert_with(|| json!({}));
                    if !l.is_object() {
                        *l = json!({});
                    }
                    if let Some(l) = l.as_object_mut() {
                        l.insert(k, json!(v));
                    }
                }
            }
            InstructionKind::User(u) => {
                let u = self.expand(st, u, line)?;
                st.cfg().insert("User".into(), json!(u));
            }
            InstructionKind::Expose(ports) => {
                let mut all = Vec::new();
                for p in ports {
                    let words = expand_words(p, &|n: &str| st.lookup(n), self.df.escape())
                        .map_err(|e| EngineError::Invalid {
                            what: self.loc(line),
                            detail: e.to_string(),
                        })?;
                    all.extend(words);
                }
                let c = st.cfg();
                let e = c.entry("ExposedPorts").or_insert_with(|| json!({}));
                if !e.is_object() {
                    *e = json!({});
                }
                for p in all {
                    let ports = ocibuild_oci::assemble::normalize_ports(&p).map_err(|e| {
                        EngineError::Invalid {
                            what: self.loc(line),
                            detail: format!("EXPOSE {p}: {e}"),
                        }
                    })?;
                    if let Some(e) = e.as_object_mut() {
                        for p in ports {
                            e.insert(p, json!({}));
                        }
                    }
                }
            }
            InstructionKind::Volume(vols) => {
                let mut vs = Vec::new();
                for v in vols {
                    vs.push(self.expand(st, v, line)?);
                }
                let c = st.cfg();
                let e = c.entry("Volumes").or_insert_with(|| json!({}));
                if !e.is_object() {
                    *e = json!({});
                }
                for v in vs {
                    if let Some(e) = e.as_object_mut() {
                        e.insert(v, json!({}));
                    }
                }
            }
            InstructionKind::Entrypoint(cmd) => {
                let v = self.command_vec(st, cmd);
                let cmd_set = st.cmd_set;
                let c = st.cfg();
                c.insert("Entrypoint".into(), json!(v));
                if !cmd_set {
                    c.remove("Cmd");
                }
            }
            InstructionKind::Cmd(cmd) => {
                let v = self.command_vec(st, cmd);
                st.cfg().insert("Cmd".into(), json!(v));
                st.cmd_set = true;
            }
            InstructionKind::Shell(sh) => {
                st.cfg().insert("Shell".into(), json!(sh));
            }
            InstructionKind::StopSignal(s) => {
                let s = self.expand(st, s, line)?;
                st.cfg().insert("StopSignal".into(), json!(s));
            }
            InstructionKind::Healthcheck(hc) => {
                let mut h = Map::new();
                match &hc.test {
                    None => {
                        h.insert("Test".into(), json!(["NONE"]));
                    }
                    Some(t) => {
                        h.insert("Test".into(), json!(t));
                        let ns = |d: &std::time::Duration| json!(d.as_nanos() as u64);
                        if let Some(d) = &hc.interval {
                            h.insert("Interval".into(), ns(d));
                        }
                        if let Some(d) = &hc.timeout {
                            h.insert("Timeout".into(), ns(d));
                        }
                        if let Some(d) = &hc.start_period {
                            h.insert("StartPeriod".into(), ns(d));
                        }
                        if let Some(d) = &hc.start_interval {
                            h.insert("StartInterval".into(), ns(d));
                        }
                        if let Some(r) = hc.retries {
                            h.insert("Retries".into(), json!(r));
                        }
                    }
                }
                st.cfg().insert("Healthcheck".into(), Value::Object(h));
            }
            InstructionKind::OnBuild(ob) => {
                let c = st.cfg();
                let e = c.entry("OnBuild").or_insert_with(|| json!([]));
                if !e.is_array() {
                    *e = json!([]);
                }
                if let Some(a) = e.as_array_mut() {
                    a.push(json!(ob.trigger));
                }
            }
            InstructionKind::Maintainer(m) => {
                if let Some(o) = st.chain.config.as_object_mut() {
                    o.insert("author".into(), json!(m));
                }
            }
            InstructionKind::Workdir(w) => {
                let w = self.expand(st, w, line)?;
                let abs = join_abs(&st.workdir(), &w);
                st.cfg().insert("WorkingDir".into(), json!(abs));
                self.workdir_step(st, &abs, label)?;
                // the layer (if any) got its history entry
                return Ok(());
            }
            InstructionKind::Run(r) => {
                return self.run_step(st, ins, r, label, &created_by);
            }
            InstructionKind::Copy(a) => {
                return self.copy_step(st, ins, a, false, label, &created_by);
            }
            InstructionKind::Add(a) => {
                return self.copy_step(st, ins, a, true, label, &created_by);
            }
        }
        let snapshot = st
            .chain
            .config
            .get("config")
            .cloned()
            .unwrap_or(Value::Null);
        self.chain_config(st, ins.keyword(), &snapshot);
        st.history(&created_by, true, &epoch);
        Ok(())
    }

    /// A config-only step: the chain key moves on, nothing runs.
    fn chain_config(&self, st: &mut StageRun, kw: &str, what: &Value) {
        st.chain.key = key_of(json!([st.chain.key, kw, what]));
    }

    fn command_vec(&self, st: &StageRun, cmd: &Command) -> Vec<String> {
        match cmd {
            Command::Exec(v) => v.clone(),
            Command::Shell(s) => {
                let mut v = st.shell();
                v.push(s.clone());
                v
            }
        }
    }

    /// A read-only view of the stage's filesystem: its materialised root when there is one,
    /// else the extracted base and the change dirs as layers (nothing copied).
    pub(crate) fn view(&self, st: &StageRun) -> Result<fsops::View> {
        self.view_of(&st.chain, st.merged.as_ref())
    }

    /// The view of a chain (see [`Self::view`]).
    pub(crate) fn view_of(&self, chain: &Chain, merged: Option<&PathBuf>) -> Result<fsops::View> {
        if let Some(m) = merged {
            return Ok(fsops::View {
                layers: vec![m.clone()],
            });
        }
        let mut layers = Vec::new();
        if let Some(img) = &chain.base {
            layers.push(self.base_rootfs(img)?);
        } else {
            // scratch: an empty bottom layer
            let empty = self.work.join("empty-root");
            fs::create_dir_all(&empty)
                .map_err(EngineError::io("creating an empty root", &empty))?;
            layers.push(empty);
        }
        layers.extend(chain.uppers.iter().cloned());
        Ok(fsops::View { layers })
    }

    /// A view of the earlier stage `j` for a copy that reads `pattern` from it: its
    /// materialised root when it has one, else its base and change dirs (`None`: the stage was
    /// not built).
    ///
    /// On a native base that is not here, the view's bottom is the base's skeleton
    /// ([`super::listing`]) when the listing shows nothing but directories at and beneath
    /// what `pattern` names (its part before any wildcard): then the skeleton shows all the
    /// copy reads, and the base is not assembled for it.
    pub(crate) fn stage_view(&self, j: usize, pattern: &str) -> Result<Option<fsops::View>> {
        let Some(out) = self.stages[j].get() else {
            return Ok(None);
        };
        let merged = out.merged.lock().map_err(super::poison)?.clone();
        if merged.is_none()
            && let Some(img) = &out.chain.base
            && let Some((skeleton, listing)) = self.skeleton_of(img)?
        {
            let mut layers = vec![skeleton];
            layers.extend(out.chain.uppers.iter().cloned());
            let view = fsops::View { layers };
            let prefix: Vec<&str> = pattern
                .split('/')
                .take_while(|c| !c.contains(['*', '?', '[']))
                .collect();
            if let Ok(rel) = view.resolve(&format!("/{}", prefix.join("/")))
                && listing.complete_under(&rel.to_string_lossy())
            {
                return Ok(Some(view));
            }
        }
        Ok(Some(self.view_of(&out.chain, merged.as_ref())?))
    }

    /// The view a COPY or WORKDIR onto the stage writes against: [`Self::view`], with the base's
    /// skeleton at the bottom when the base is a native one that is not here and its listing
    /// came from the cache (a copy's layer holds only what it copies and the parents, whose
    /// modes and owners the skeleton has).
    ///
    /// Not when a RUN follows in the stage: that step runs on the base's root, so the root is
    /// made now and the skeleton would be work for nothing.
    pub(crate) fn copy_view(&self, st: &StageRun) -> Result<fsops::View> {
        let run_follows = self.df.stages[st.i]
            .instructions
            .iter()
            .any(|i| matches!(i.kind, InstructionKind::Run(_)) && i.span.line > st.line);
        if st.merged.is_none()
            && !run_follows
            && let Some(img) = &st.chain.base
            && let Some((skeleton, _)) = self.skeleton_of(img)?
        {
            let mut layers = vec![skeleton];
            layers.extend(st.chain.uppers.iter().cloned());
            return Ok(fsops::View { layers });
        }
        self.view(st)
    }

    /// The stage's root, materialised now if it was not yet.
    pub(crate) fn merged(&self, st: &mut StageRun) -> Result<PathBuf> {
        if let Some(m) = &st.merged {
            return Ok(m.clone());
        }
        let dir = self.work.join(format!("stage-{}", st.i));
        let t0 = Instant::now();
        materialize(self, &st.chain, &dir)?;
        (self.ev)(Event::Note(format!(
            "[{}] root materialised ({} change dirs on the base) in {:.2}s",
            st.name,
            st.chain.uppers.len(),
            t0.elapsed().as_secs_f64()
        )));
        st.merged = Some(dir.clone());
        Ok(dir)
    }

    /// Look a step up in the cache: its layer and change dir, when both are still there.
    pub(crate) fn lookup(&self, key: &str) -> Option<(Option<(Descriptor, Digest)>, PathBuf)> {
        if self.o.no_cache {
            return None;
        }
        self.lookup_local(key).or_else(|| self.lookup_remote(key))
    }

    /// Look a `COPY --from=STAGE` step up by its chain key ([`AliasRecord`]): the step's content
    /// key, layer and change dir, local first, then each `--cache-from` cache.
    pub(crate) fn lookup_alias(&self, alias: &str) -> Option<(String, CachedLayer, PathBuf)> {
        if self.o.no_cache {
            return None;
        }
        let local = fs::read(self.cache_dir.join(format!("{alias}.json")))
            .ok()
            .and_then(|b| serde_json::from_slice::<AliasRecord>(&b).ok());
        if let Some(a) = local
            && is_hex_key(&a.alias_of)
            && let Some((layer, upper)) = self.lookup(&a.alias_of)
        {
            return Some((a.alias_of, layer, upper));
        }
        for be in &self.o.cache_from {
            let Ok(Some(bytes)) = be.get_index(alias) else {
                continue;
            };
            let Ok(a) = serde_json::from_slice::<AliasRecord>(&bytes) else {
                continue;
            };
            if !is_hex_key(&a.alias_of) {
                continue;
            }
            if let Some((layer, upper)) = self.lookup(&a.alias_of) {
                let _ = self.save_alias(alias, &a.alias_of);
                return Some((a.alias_of, layer, upper));
            }
        }
        None
    }

    /// Keep `alias` → `key` ([`AliasRecord`]) here, and for `--cache-to`.
    pub(crate) fn save_alias(&self, alias: &str, key: &str) -> Result<()> {
        if let Ok(mut m) = self.aliases.lock() {
            m.insert(key.to_string(), alias.to_string());
        }
        let bytes = serde_json::to_vec(&AliasRecord {
            alias_of: key.to_string(),
        })
        .map_err(|e| EngineError::Invalid {
            what: "step alias".into(),
            detail: e.to_string(),
        })?;
        crate::roots::write_atomically(&self.cache_dir.join(format!("{alias}.json")), &bytes)
    }

    fn lookup_local(&self, key: &str) -> Option<(Option<(Descriptor, Digest)>, PathBuf)> {
        let rec: Record =
            serde_json::from_slice(&fs::read(self.cache_dir.join(format!("{key}.json"))).ok()?)
                .ok()?;
        let upper = self.cache_dir.join(key);
        if !upper.is_dir() {
            return None;
        }
        if let Some((d, _)) = &rec.layer
            && self.o.store.size(&d.digest) != Some(d.size)
        {
            return None;
        }
        // used now: `cache prune --older-than` keeps recently used steps
        let _ = fs::File::options()
            .write(true)
            .open(self.cache_dir.join(format!("{key}.json")))
            .and_then(|f| f.set_modified(std::time::SystemTime::now()));
        if let Some((d, _)) = &rec.layer {
            self.o.store.touch(&d.digest);
        }
        Some((rec.layer, upper))
    }

    /// A step from a `--cache-from` cache: the record, the layer blob (verified by digest while
    /// it is fetched), and the change dir rebuilt from the layer. A missing or corrupt entry is a
    /// miss, never a wrong layer.
    fn lookup_remote(&self, key: &str) -> Option<(Option<(Descriptor, Digest)>, PathBuf)> {
        for be in &self.o.cache_from {
            let bytes = match be.get_index(key) {
                Ok(Some(b)) => b,
                Ok(None) => continue,
                Err(e) => {
                    (self.ev)(Event::Note(format!(
                        "cache {}: {e} (treated as a miss)",
                        be.describe()
                    )));
                    continue;
                }
            };
            match import_step_record(
                &self.o.store,
                &self.cache_dir,
                key,
                &bytes,
                be.as_ref(),
                self.ev,
            ) {
                Ok(Some(layer)) => {
                    if let Ok(mut h) = self.remote_hits.lock() {
                        h.insert(key.to_string(), cache_kind(&be.describe()));
                    }
                    return Some((layer, self.cache_dir.join(key)));
                }
                Ok(None) => continue,
                Err(e) => {
                    (self.ev)(Event::Note(format!(
                        "cache {}: step {}: {e} (treated as a miss)",
                        be.describe(),
                        short_key(key)
                    )));
                }
            }
        }
        None
    }

    /// The steps of stage `i` whose layer ends up in the final image: the final image copies
    /// (`COPY --from`) everything their change dir holds (directories leading to a copied path
    /// aside). Steps that changed nothing are taken too (a record without a layer). `None`: the
    /// final image copies nothing from the stage.
    fn steps_copied_out(&self, i: usize, chain: &Chain) -> Option<Vec<usize>> {
        let copied: Vec<String> = self
            .copied_from
            .lock()
            .ok()?
            .iter()
            .filter(|(j, _)| *j == i)
            .map(|(_, p)| copy_prefix(p))
            .collect();
        if copied.is_empty() {
            return None;
        }
        let mut uppers = chain.uppers.iter();
        let mut out = Vec::new();
        for (n, (_, layer)) in chain.steps.iter().enumerate() {
            if layer.is_none() {
                out.push(n);
                continue;
            }
            let Some(upper) = uppers.next() else { break };
            if only_copied(upper, &copied) {
                out.push(n);
            }
        }
        Some(out)
    }

    /// Write this build's steps to every `--cache-to` cache: each layer blob, then the step's
    /// record (a conditional create: an existing record is left alone). `mode=min` exports
    /// every step whose layer ends up in the final image: the target stage's, and those of the
    /// stages it copies from whose change dirs hold what it copies (the dependency install whose
    /// `node_modules` the final stage copies, not a test run's); `mode=max` every stage's.
    pub(crate) fn export_cache(&self) -> Result<()> {
        if self.o.cache_to.is_empty() {
            return Ok(());
        }
        let target = self.plan.target;
        for (be, mode, ignore_error) in &self.o.cache_to {
            let mut seen = std::collections::HashSet::new();
            let mut steps = Vec::new();
            // the target stage first (its steps include those of the stage it is FROM)
            let mut order: Vec<usize> = vec![target];
            order.extend((0..self.stages.len()).filter(|&i| i != target));
            for i in order {
                let Some(out) = self.stages[i].get() else {
                    continue;
                };
                let take: Option<Vec<usize>> = if *mode == ocibuild_cache::Mode::Min && i != target
                {
                    match self.steps_copied_out(i, &out.chain) {
                        Some(t) => Some(t),
                        None => continue,
                    }
                } else {
                    None
                };
                for (n, (k, l)) in out.chain.steps.iter().enumerate() {
                    if take.as_ref().is_some_and(|t| !t.contains(&n)) {
                        continue;
                    }
                    if seen.insert(k.clone()) {
                        steps.push((k.clone(), l.clone()));
                    }
                }
            }
            let t0 = Instant::now();
            let aliases = self.aliases.lock().map_err(super::poison)?.clone();
            let r = (|| -> Result<(usize, usize)> {
                let (mut created, mut existing) = (0, 0);
                let bases = self.export_bases(be.as_ref())?;
                created += bases.0;
                existing += bases.1;
                for (k, layer) in &steps {
                    if let Some((d, _)) = layer {
                        be.push_blob(&d.digest, &self.o.store).map_err(|e| {
                            EngineError::Invalid {
                                what: format!("exporting layer {} to {}", d.digest, be.describe()),
                                detail: e.to_string(),
                            }
                        })?;
                    }
                    let compressed_as = layer
                        .as_ref()
                        .and_then(|(d, diff_id)| self.o.store.layer_key_of(diff_id, &d.digest));
                    let bytes = serde_json::to_vec(&Record {
                        layer: layer.clone(),
                        compressed_as,
                    })
                    .map_err(|e| EngineError::Invalid {
                        what: "step record".into(),
                        detail: e.to_string(),
                    })?;
                    match be.put_index(k, &bytes).map_err(|e| EngineError::Invalid {
                        what: format!("exporting a step record to {}", be.describe()),
                        detail: e.to_string(),
                    })? {
                        ocibuild_cache::PutOutcome::Created => created += 1,
                        ocibuild_cache::PutOutcome::AlreadyExists => existing += 1,
                    }
                    if let Some(alias) = aliases.get(k) {
                        let bytes = serde_json::to_vec(&AliasRecord {
                            alias_of: k.clone(),
                        })
                        .map_err(|e| EngineError::Invalid {
                            what: "step alias".into(),
                            detail: e.to_string(),
                        })?;
                        be.put_index(alias, &bytes)
                            .map_err(|e| EngineError::Invalid {
                                what: format!("exporting a step record to {}", be.describe()),
                                detail: e.to_string(),
                            })?;
                    }
                }
                Ok((created, existing))
            })();
            match r {
                Ok((c, e)) => (self.ev)(Event::Note(format!(
                    "cache export to {}: {c} step records written, {e} already there, in {:.2}s",
                    be.describe(),
                    t0.elapsed().as_secs_f64()
                ))),
                Err(e) if *ignore_error => (self.ev)(Event::Note(format!(
                    "cache export failed (ignore-error=true): {e}"
                ))),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Export the native bases (`FROM ocibuild:…`) this build used, by lock key: each one's
    /// manifest and config, so a cold runner keys and walks the build without assembling it,
    /// and the layers of the final image's base, so it fetches them instead of assembling
    /// them. A toolchain root's layers stay here; a toolchain root a step ran on is exported as
    /// one ready tree instead ([`super::rootblob`]), which a cold runner extracts rather than
    /// assembling the root from packages. Returns (created, existing).
    fn export_bases(&self, be: &dyn ocibuild_cache::CacheBackend) -> Result<(usize, usize)> {
        let natives: Vec<super::NativeUse> = self
            .natives
            .lock()
            .map_err(super::poison)?
            .values()
            .cloned()
            .collect();
        let final_base = self.stages[self.plan.target].get().and_then(|o| {
            o.chain
                .base
                .as_ref()
                .map(|b| b.manifest_desc.digest.clone())
        });
        let (mut created, mut existing) = (0, 0);
        let push = |d: &Digest| {
            be.push_blob(d, &self.o.store)
                .map_err(|e| EngineError::Invalid {
                    what: format!("exporting blob {d} to {}", be.describe()),
                    detail: e.to_string(),
                })
        };
        for n in natives {
            let img = &n.image;
            let in_image = final_base.as_ref() == Some(&img.manifest_desc.digest);
            if in_image && !self.has_layers(img) {
                // never a record whose layers this cache cannot give
                continue;
            }
            if in_image {
                for l in &img.manifest.layers {
                    push(&l.digest)?;
                }
            }
            push(&img.manifest.config.digest)?;
            push(&img.manifest_desc.digest)?;
            let listing = self.base_listing(&n)?;
            if let Some(d) = &listing {
                push(d)?;
            }
            // a toolchain root this runner has (a step ran on it, now or in an earlier
            // build): its ready tree, so a cold runner fetches it instead of assembling it
            // ([`super::rootblob`])
            if n.toolchain
                && let Some(root) = self.toolchain_root_here(&n)?
            {
                match super::rootblob::export(be, &self.o.store, &n.key, &n.reference, &root)? {
                    true => created += 1,
                    false => existing += 1,
                }
            }
            let mut record = json!({
                "kind": "native-base",
                "reference": n.reference,
                "manifest": img.manifest_desc,
            });
            if let Some(d) = listing {
                record["listing"] = json!({ "digest": d.to_string() });
            }
            let bytes = serde_json::to_vec(&record).map_err(|e| EngineError::Invalid {
                what: "base record".into(),
                detail: e.to_string(),
            })?;
            match be
                .put_index(&super::native_base_index_key(&n.key), &bytes)
                .map_err(|e| EngineError::Invalid {
                    what: format!("exporting a base record to {}", be.describe()),
                    detail: e.to_string(),
                })? {
                ocibuild_cache::PutOutcome::Created => created += 1,
                ocibuild_cache::PutOutcome::AlreadyExists => existing += 1,
            }
        }
        Ok((created, existing))
    }

    /// The directory of a native toolchain base's root when this runner has it: the one a step
    /// ran on in this build, else the lock's root in the store (`engine/rootfs/lock-<key>`, or
    /// its image's extracted layers when it was built as an image).
    fn toolchain_root_here(&self, n: &super::NativeUse) -> Result<Option<PathBuf>> {
        let d = &n.image.manifest_desc.digest;
        if let Some(r) = self.base_roots.lock().map_err(super::poison)?.get(d) {
            return Ok(Some(r.clone()));
        }
        let roots = self.o.store.root().join("engine").join("rootfs");
        Ok([format!("lock-{}", n.key), super::rootfs_name(&n.image)?]
            .into_iter()
            .map(|name| roots.join(name))
            .find(|r| r.join("complete").is_file() && r.join("rootfs").is_dir())
            .map(|r| r.join("rootfs")))
    }

    /// The listing of a native base for its cache record, as a blob in the store: from its
    /// root when a step or copy used it in this build or the store has it (an assembled
    /// toolchain root, an extracted base; a base whose layers are here is extracted for it),
    /// else the one the cache gave; `None` when neither (the record then has none, and a cold
    /// runner assembles the base for a copy onto it).
    fn base_listing(&self, n: &super::NativeUse) -> Result<Option<Digest>> {
        let img = &n.image;
        let d = &img.manifest_desc.digest;
        let mut root = self
            .used_roots
            .lock()
            .map_err(super::poison)?
            .get(d)
            .cloned();
        if root.is_none() {
            let roots = self.o.store.root().join("engine").join("rootfs");
            let here = [format!("lock-{}", n.key), super::rootfs_name(img)?]
                .into_iter()
                .map(|name| roots.join(name))
                .find(|r| r.join("complete").is_file() && r.join("rootfs").is_dir());
            root = match here {
                Some(r) => Some(r.join("rootfs")),
                None if self.has_layers(img) => Some(self.base_rootfs(img)?),
                None => None,
            };
        }
        if let Some(root) = root {
            let Some(l) = super::listing::Listing::of_root(&root)? else {
                return Ok(None);
            };
            return Ok(Some(self.o.store.put_bytes(&l.to_blob()?)?));
        }
        Ok(self.listings.lock().map_err(super::poison)?.get(d).cloned())
    }

    /// Take a cached step into the stage.
    pub(crate) fn use_cached(
        &self,
        st: &mut StageRun,
        key: String,
        layer: Option<(Descriptor, Digest)>,
        upper: PathBuf,
        label: &str,
        created_by: &str,
    ) -> Result<()> {
        let from = self.note_cached(label, &key);
        st.pending = Some(ocibuild_record::StepStatus::Cached { from });
        self.push_step(st, key, layer, upper, created_by)
    }

    /// A step ran for `seconds`: counted for the summary, recorded when its layer is taken.
    pub(crate) fn note_ran(&self, st: &mut StageRun, label: &str, seconds: f64) {
        if let Ok(mut r) = self.ran.lock() {
            r.push((label.to_string(), seconds));
        }
        st.pending = Some(ocibuild_record::StepStatus::Ran { seconds });
    }

    fn push_step(
        &self,
        st: &mut StageRun,
        key: String,
        layer: Option<(Descriptor, Digest)>,
        upper: PathBuf,
        created_by: &str,
    ) -> Result<()> {
        let epoch = ocibuild_oci::image::rfc3339(self.o.source_date_epoch);
        let id = format!("{}/{}", st.name, st.step_no);
        let status = st
            .pending
            .take()
            .unwrap_or(ocibuild_record::StepStatus::Ran { seconds: 0.0 });
        if let Ok(mut l) = self.labels.lock() {
            l.push(format!(
                "[{} {}/{}] {created_by}",
                st.name, st.fs_no, st.fs_total
            ));
        }
        if let Ok(mut r) = self.records.lock() {
            r.push(ocibuild_record::Step {
                id: id.clone(),
                stage: st.name.clone(),
                name: created_by.to_string(),
                platform: st.platform.clone(),
                key: key.clone(),
                status,
                layer: layer.as_ref().map(|(d, _)| d.digest.clone()),
            });
        }
        st.chain.key = key.clone();
        st.chain.steps.push((key, layer.clone()));
        match layer {
            Some(l) => {
                st.chain.layers.push(l);
                st.chain
                    .origins
                    .push(ocibuild_record::LayerOrigin::Step { step: id });
                if let Some(m) = &st.merged {
                    fsops::apply_upper(m, &upper)?;
                }
                st.chain.uppers.push(upper);
                st.history(created_by, false, &epoch);
            }
            None => st.history(created_by, true, &epoch),
        }
        Ok(())
    }

    /// The context's lockfiles, which key shared cache mounts.
    fn lockfiles(&self) -> Result<&crate::mountcache::LockDigest> {
        self.lockfiles
            .get_or_init(|| {
                crate::mountcache::lock_digest(&self.o.context).map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| EngineError::Invalid {
                what: "the build context's lockfiles".into(),
                detail: e.clone(),
            })
    }

    fn mount_key(&self, id: &str) -> Result<String> {
        Ok(crate::mountcache::mount_key(
            &format!("df:{id}"),
            &plat_str(&self.o.platform),
            self.lockfiles()?,
        ))
    }

    /// Fill the step's empty cache mounts from the `--cache-from` caches (keyed by the
    /// context's lockfiles), then give them the mount's mode and owner again.
    fn import_mounts(&self, mounts: &[Mount]) -> Result<()> {
        if self.o.cache_from.is_empty() {
            return Ok(());
        }
        for m in mounts {
            let Mount::Cache { src, .. } = m else {
                continue;
            };
            let Some(u) = self
                .cache_mounts
                .lock()
                .ok()
                .and_then(|used| used.get(src).cloned())
            else {
                continue;
            };
            let key = self.mount_key(&u.id)?;
            // one import at a time: parallel stages sharing an id must not both unpack it
            let _g = self.import_lock.lock().map_err(|_| EngineError::Invalid {
                what: "cache mount import".into(),
                detail: "a parallel stage failed while importing".into(),
            })?;
            let filled = crate::mountcache::import(
                &self.o.store,
                &self.o.cache_from,
                &format!("id={}", u.id),
                &key,
                src,
                self.ev,
            )?;
            if filled {
                if let Some(mode) = u.mode {
                    let _ = fs::set_permissions(
                        src,
                        std::os::unix::fs::PermissionsExt::from_mode(mode),
                    );
                }
                if fsops::is_root() {
                    let _ = std::os::unix::fs::lchown(
                        src,
                        Some(u.uid.unwrap_or(0)),
                        Some(u.gid.unwrap_or(0)),
                    );
                }
            }
        }
        Ok(())
    }

    /// Export every cache mount the build used to the `--cache-to` caches.
    pub(crate) fn export_mounts(&self) -> Result<()> {
        if self.o.cache_to.is_empty() {
            return Ok(());
        }
        let used: Vec<(PathBuf, super::CacheMountUse)> = self
            .cache_mounts
            .lock()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        for (dir, u) in used {
            let key = self.mount_key(&u.id)?;
            crate::mountcache::export(
                &self.o.store,
                &self.o.cache_to,
                &format!("id={}", u.id),
                &key,
                self.lockfiles()?,
                &dir,
                self.ev,
            )?;
        }
        Ok(())
    }

    /// The host directory of the cache mount `id` (`RUN --mount=type=cache,id=…`).
    pub(crate) fn cache_mount_dir(&self, id: &str) -> PathBuf {
        self.o
            .store
            .root()
            .join("engine")
            .join("cache")
            .join(format!("df-{}", &key_of(json!(id))[..16]))
    }

    /// Warm mode (and `--offline`'s walk): a step that is not in any cache stops its stage
    /// (returns true).
    pub(crate) fn warm_stop(&self, st: &mut StageRun, label: &str) -> bool {
        if !self.o.warm_only && self.probe.is_none() {
            return false;
        }
        st.stopped = true;
        (self.ev)(Event::Note(format!(
            "warm: {label} is not in the cache; the rest of [{}] would run",
            st.name
        )));
        if let Ok(mut s) = self.stopped.lock() {
            s.push(label.to_string());
        }
        true
    }

    /// A fresh, empty change dir for a step (renamed to its key when the step succeeds).
    pub(crate) fn new_upper(&self) -> Result<PathBuf> {
        let t = tempfile::Builder::new()
            .prefix(".step-")
            .tempdir_in(&self.cache_dir)
            .map_err(EngineError::io("creating a step dir", &self.cache_dir))?;
        Ok(t.keep())
    }

    /// How stage `i`'s step layers are compressed: as the build asks when the target's image
    /// takes them (the target stage and the stages it is `FROM`), else
    /// [`BUILD_STAGE_COMPRESSION`].
    pub(crate) fn step_compression(&self, i: usize) -> (ocibuild_oci::Compression, Option<u32>) {
        let mut t = self.plan.target;
        loop {
            if t == i {
                return (self.o.compression, self.o.level);
            }
            match self.plan.stages.get(t).map(|s| &s.base) {
                Some(ocibuild_dockerfile::plan::BaseRef::Stage(j)) if *j < t => t = *j,
                _ => return BUILD_STAGE_COMPRESSION,
            }
        }
    }

    /// Turn a finished step's change dir into a layer (compressed as
    /// [`Exec::step_compression`] says), keep both in the cache, and take them into the stage.
    pub(crate) fn commit_step(
        &self,
        st: &mut StageRun,
        key: String,
        upper: PathBuf,
        created_by: &str,
    ) -> Result<()> {
        let mut compressed_as = None;
        let layer = if fsops::is_empty_dir(&upper) {
            None
        } else {
            let entries = fsops::upper_entries(&upper)?;
            let (compression, level) = self.step_compression(st.i);
            let mut b = LayerBuilder::new(LayerOptions {
                compression,
                level,
                source_date_epoch: self.o.source_date_epoch,
                owner: None,
                normalize_modes: false,
            });
            for e in entries {
                b.add_entry(e)?;
            }
            let w = self.o.store.writer()?;
            let (w, info) = b.write(w)?;
            let digest = w.commit()?;
            let key = ocibuild_oci::assemble::compression_key(compression, level);
            self.o.store.record_layer(&info.diff_id, &key, &digest)?;
            compressed_as = Some(key);
            (self.ev)(Event::Layer {
                name: format!("{}/{}", st.name, st.step_no),
                digest: digest.to_string(),
                size: info.size,
                reused: false,
            });
            Some((
                Descriptor::new(info.media_type, digest, info.size),
                info.diff_id,
            ))
        };
        let dest = self.cache_dir.join(&key);
        if dest.exists() {
            let _ = ocibuild_sandbox::mounts::remove_tree(&dest);
        }
        // copy-mode steps leave OCI `.wh.` markers, which overlayfs would not understand
        let flag = dest.with_extension("oci");
        if fsops::View::dir_has_oci_markers(&upper) {
            fs::write(&flag, b"").map_err(EngineError::io("flagging a step", &flag))?;
        } else {
            let _ = fs::remove_file(&flag);
        }
        fs::rename(&upper, &dest).map_err(EngineError::io("keeping a step's changes", &dest))?;
        let rec = serde_json::to_vec(&Record {
            layer: layer.clone(),
            compressed_as,
        })
        .map_err(|e| EngineError::Invalid {
            what: "step record".into(),
            detail: e.to_string(),
        })?;
        crate::roots::write_atomically(&self.cache_dir.join(format!("{key}.json")), &rec)?;
        self.push_step(st, key, layer, dest, created_by)
    }

    /// Remember what a step's key is made of; with `--explain-cache`, say for a miss what
    /// changed since the last build of the same step (same Dockerfile, stage and position).
    pub(crate) fn explain(&self, st: &StageRun, label: &str, parts: &Value, hit: bool) {
        let slot = key_of(json!([
            self.o.dockerfile.to_string_lossy(),
            st.name,
            st.step_no
        ]));
        let dir = self.cache_dir.join("explain");
        let path = dir.join(format!("{}.json", &slot[..32]));
        if self.o.explain_cache && !hit {
            let reason = match fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            {
                None => "not built before with this cache".to_string(),
                Some(old) => explain_diff(&old, parts),
            };
            (self.ev)(Event::Note(format!("MISS {label}: {reason}")));
        }
        if fs::create_dir_all(&dir).is_ok()
            && let Ok(b) = serde_json::to_vec(parts)
        {
            let _ = crate::roots::write_atomically(&path, &b);
        }
    }

    fn workdir_step(&self, st: &mut StageRun, abs: &str, label: &str) -> Result<()> {
        let created_by = format!("WORKDIR {abs}");
        let parts =
            json!({"parent": st.chain.key, "instruction": ["WORKDIR", abs], "user": st.user()});
        let key = key_of(parts.clone());
        let hit = self.lookup(&key);
        self.explain(st, label, &parts, hit.is_some());
        if let Some((layer, upper)) = hit {
            st.chain.key = key.clone();
            if layer.is_none() {
                // nothing was created: not worth a CACHED line
                st.pending = Some(ocibuild_record::StepStatus::Cached {
                    from: self.cached_from(&key),
                });
                return self.push_step(st, key, None, upper, &created_by);
            }
            return self.use_cached(st, key, layer, upper, label, &created_by);
        }
        if self.warm_stop(st, label) {
            return Ok(());
        }
        let view = self.copy_view(st)?;
        let upper = self.new_upper()?;
        if abs == "/" {
            return self.commit_step(st, key, upper, &created_by);
        }
        let rel = view.resolve(abs)?;
        if view.lstat(&rel).is_none() && !rel.as_os_str().is_empty() {
            // created as the current USER, as BuildKit and buildah do
            let owner = st
                .user()
                .and_then(|u| super::copy::parse_chown(&u, Some(&view), "").ok())
                .unwrap_or((0, 0));
            fsops::mirror_parents(&view, &upper, &rel.join("x"), owner)?;
        }
        self.commit_step(st, key, upper, &created_by)
    }

    /// A RUN of a foreign-platform stage needs qemu-user through binfmt_misc: fail before the
    /// step runs, naming the fix, when it is not registered.
    fn check_emulation(&self, st: &StageRun, loc: &str) -> Result<()> {
        use ocibuild_sandbox::emulation::{Emulation, check, fix_hint, host_arch};
        let arch = st.platform.split('/').nth(1).unwrap_or_default();
        match check(arch) {
            Emulation::Native | Emulation::Registered(_) => Ok(()),
            Emulation::Unavailable(why) => Err(EngineError::Invalid {
                what: format!("{loc} (stage {}, {})", st.name, st.platform),
                detail: format!(
                    "this RUN step runs {} binaries on this linux/{} host, which needs emulation, and {why}\nhelp: {}",
                    st.platform,
                    host_arch(),
                    fix_hint(arch)
                ),
            }),
        }
    }

    fn run_step(
        &self,
        st: &mut StageRun,
        ins: &Instruction,
        r: &ocibuild_dockerfile::Run,
        label: &str,
        created_by: &str,
    ) -> Result<()> {
        let line = ins.span.line;
        let loc = self.loc(line);
        // argv
        let mut heredoc_files: Vec<(String, String)> = Vec::new();
        let argv: Vec<String> = match (&r.command, r.heredoc_command()) {
            (Command::Exec(v), _) => v.clone(),
            (_, Some(ocibuild_dockerfile::HeredocCommand::Script { name, content })) => {
                let path = format!("/run/ocibuild/heredoc-{}", sanitize(&name));
                heredoc_files.push((path.clone(), content));
                vec![path]
            }
            (_, Some(ocibuild_dockerfile::HeredocCommand::Inline(s)))
            | (_, Some(ocibuild_dockerfile::HeredocCommand::Shell(s))) => {
                let mut v = st.shell();
                v.push(s);
                v
            }
            (Command::Shell(s), None) => {
                let mut v = st.shell();
                v.push(s.clone());
                v
            }
        };
        // env: declared args, then ENV over them
        let mut env: Vec<(String, String)> = st
            .args
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.clone())))
            .collect();
        for (k, v) in st.env() {
            env.retain(|(ek, _)| *ek != k);
            env.push((k, v));
        }
        if !env.iter().any(|(k, _)| k == "PATH") {
            env.push(("PATH".into(), DEFAULT_PATH.into()));
        }
        let keyed_env = env.clone();
        // mounts
        let mut mounts: Vec<Mount> = Vec::new();
        let mut mount_keys: Vec<Value> = Vec::new();
        let mut secret_env: Vec<(String, String)> = Vec::new();
        let private = tempfile::Builder::new()
            .prefix(".run-")
            .tempdir_in(&self.work)
            .map_err(EngineError::io("creating a step's private dir", &self.work))?;
        for m in &r.mounts {
            let m = m
                .expanded(&|n: &str| st.lookup(n), self.df.escape())
                .map_err(|e| EngineError::Invalid {
                    what: loc.clone(),
                    detail: e.to_string(),
                })?;
            self.run_mount(
                st,
                &m,
                &loc,
                private.path(),
                &mut mounts,
                &mut mount_keys,
                &mut secret_env,
            )?;
        }
        let network = match r.network {
            Some(ocibuild_dockerfile::Network::None) => Network::None,
            _ if !self.o.network => Network::None,
            _ => Network::Host,
        };
        // `--offline` takes the network away without changing the key: an online build's
        // step is a hit, and a step that runs offline makes what it makes online
        let run_network = if self.o.offline.is_some() {
            Network::None
        } else {
            network
        };
        let parts = json!({
            "parent": st.chain.key,
            "instruction": ["RUN", argv, heredoc_files],
            "env": keyed_env,
            "user": st.user(),
            "workdir": st.workdir(),
            "mounts": mount_keys,
            "network": matches!(network, Network::Host),
            "platform": st.platform,
        });
        let key = key_of(parts.clone());
        let hit = self.lookup(&key);
        self.explain(st, label, &parts, hit.is_some());
        if let Some((layer, upper)) = hit {
            return self.use_cached(st, key, layer, upper, label, created_by);
        }
        // the step runs (or, warming, would): its cache mounts from --cache-from
        self.import_mounts(&mounts)?;
        if self.warm_stop(st, label) {
            return Ok(());
        }
        self.check_emulation(st, &loc)?;
        let (tier, overlay) = self.tier()?;
        // Over overlayfs, the base and the change dirs are the lower layers as they are;
        // otherwise (copy mode, OCI markers from a remote cache, very many layers) the stage's
        // root is materialised once and used as the single lower.
        let mut view = self.view(st)?;
        if view.layers.len() > 1 && (!overlay || view.layers.len() > 24 || view.has_oci_markers()) {
            view = fsops::View {
                layers: vec![self.merged(st)?],
            };
        }
        if !env.iter().any(|(k, _)| k == "HOME") {
            // as docker: the user's home from the stage's /etc/passwd, else /root for root
            env.push(("HOME".into(), home_of(&view, st.user().as_deref())));
        }
        for (i, (path, content)) in heredoc_files.iter().enumerate() {
            let f = private.path().join(format!("heredoc-{i}"));
            fs::write(&f, content).map_err(EngineError::io("writing a heredoc", &f))?;
            fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .map_err(EngineError::io("writing a heredoc", &f))?;
            mounts.push(Mount::Bind {
                src: f,
                dest: path.clone(),
                readonly: true,
            });
        }
        // proxy args given with --build-arg, then the host's proxy/CA settings
        for a in PROXY_ARGS {
            if let Some(v) = self.o.build_args.get(*a) {
                env.retain(|(k, _)| k != a);
                env.push(((*a).to_string(), v.clone()));
            }
        }
        if let Some(ca) = &self.o.ca_bundle {
            mounts.push(Mount::Bind {
                src: ca.clone(),
                dest: CA_PATH.into(),
                readonly: true,
            });
            for v in CA_VARS {
                if !env.iter().any(|(k, _)| k == v) {
                    env.push(((*v).into(), CA_PATH.into()));
                }
            }
        }
        for (k, v) in &self.o.pass_env {
            if !env.iter().any(|(ek, _)| ek == k) {
                env.push((k.clone(), v.clone()));
            }
        }
        env.extend(secret_env);
        // a stage on the host's own programs (`--toolchain host`) sees them read-only
        if super::native::is_host(&st.chain.config) {
            mounts.extend(super::native::host_binds());
        }
        let upper = self.new_upper()?;
        let layered = view.layers.len() > 1;
        let mut spec = Spec {
            rootfs: RootfsSource::Dirs(view.layers.clone()),
            upper: upper.clone(),
            mounts,
            env,
            cwd: st.workdir(),
            user: st.user(),
            args: argv.clone(),
            network: run_network,
            capture: true,
            keep_tmp: true,
            ..Spec::default()
        };
        (self.ev)(Event::StepStarted {
            name: label.to_string(),
            argv: argv.clone(),
        });
        let t0 = Instant::now();
        let mut on_line = |_: ocibuild_sandbox::run::Stream, line: &str| {
            (self.ev)(Event::StepOutput {
                name: label.to_string(),
                line: line.to_string(),
            })
        };
        let mut out = run_streaming(&spec, tier, &mut on_line);
        if layered && out.as_ref().is_ok_and(|o| !o.overlay) {
            // overlayfs was refused after all: the copy fallback cannot read overlay
            // whiteouts in the lower layers, so run again over the materialised root
            (self.ev)(Event::Note(format!(
                "[{}] overlayfs refused: running the step again over a materialised root",
                st.name
            )));
            let _ = ocibuild_sandbox::mounts::remove_tree(&upper);
            fs::create_dir_all(&upper).map_err(EngineError::io("creating a step dir", &upper))?;
            spec.rootfs = RootfsSource::Dirs(vec![self.merged(st)?]);
            out = run_streaming(&spec, tier, &mut on_line);
        }
        drop(private);
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                let _ = ocibuild_sandbox::mounts::remove_tree(&upper);
                return Err(EngineError::Invalid {
                    what: format!("{loc}: {}", one_line(&ins.original)),
                    detail: e.to_string(),
                });
            }
        };
        let secs = t0.elapsed().as_secs_f64();
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        (self.ev)(Event::StepFinished {
            name: label.to_string(),
            status: out.status,
            seconds: secs,
            output: text.clone(),
        });
        let log = crate::steplog::save(&self.log_dir(), line, label, &text);
        if out.status != 0 {
            let _ = ocibuild_sandbox::mounts::remove_tree(&upper);
            return Err(crate::steplog::failed(
                format!("{loc} {}", one_line(&ins.original)),
                argv.join(" "),
                out.status,
                &text,
                log.as_deref(),
                if self.o.offline.is_some() && matches!(network, Network::Host) {
                    "the build is --offline, so RUN steps have no network: if the step downloads (apt-get, npm, pip, go, curl …), run the build once online so the step is cached, or vendor what it downloads into the build context".into()
                } else {
                    "the output above says what failed; fix the command in the Dockerfile (the steps before it are cached)".into()
                },
            ));
        }
        self.note_ran(st, label, secs);
        self.commit_step(st, key, upper, created_by)
    }

    #[allow(clippy::too_many_arguments)]
    fn run_mount(
        &self,
        st: &mut StageRun,
        m: &RunMount,
        loc: &str,
        private: &Path,
        mounts: &mut Vec<Mount>,
        keys: &mut Vec<Value>,
        secret_env: &mut Vec<(String, String)>,
    ) -> Result<()> {
        let invalid = |detail: String| EngineError::Invalid {
            what: format!("{loc}: RUN --mount={}", m.spec),
            detail,
        };
        // A relative target is below the working directory (BuildKit: `target=.` with the
        // context bound at WORKDIR, as Docker's Go guide does); the root itself is refused.
        let resolved;
        let m = match &m.target {
            Some(t) if !t.starts_with('/') => {
                let mut r = m.clone();
                r.target = Some(join_abs(&st.workdir(), t));
                resolved = r;
                &resolved
            }
            _ => m,
        };
        if m.target.as_deref() == Some("/") {
            return Err(invalid(
                "the mount target is the root itself; mount at a directory below it (a relative \
                 target is taken from the WORKDIR, which is / here)"
                    .into(),
            ));
        }
        match m.kind {
            MountType::Ssh => Err(invalid(
                "type=ssh is not supported yet; pass what the step needs with --secret instead"
                    .into(),
            )),
            MountType::Tmpfs => {
                let target = m
                    .target
                    .clone()
                    .ok_or_else(|| invalid("a tmpfs mount needs target=".into()))?;
                keys.push(json!(["tmpfs", target]));
                mounts.push(Mount::Tmpfs { dest: target });
                Ok(())
            }
            MountType::Cache => {
                let target = m
                    .target
                    .clone()
                    .ok_or_else(|| invalid("a cache mount needs target=".into()))?;
                let id = m.id.clone().unwrap_or_else(|| target.clone());
                let dir = self.cache_mount_dir(&id);
                if !dir.exists() {
                    fs::create_dir_all(&dir)
                        .map_err(EngineError::io("creating a cache mount", &dir))?;
                    let mode = m.mode.unwrap_or(0o755);
                    let _ = fs::set_permissions(
                        &dir,
                        std::os::unix::fs::PermissionsExt::from_mode(mode),
                    );
                    if fsops::is_root() {
                        let _ = std::os::unix::fs::lchown(
                            &dir,
                            Some(m.uid.unwrap_or(0)),
                            Some(m.gid.unwrap_or(0)),
                        );
                    }
                }
                crate::storeusage::touch_dir(&dir);
                if let Ok(mut used) = self.cache_mounts.lock() {
                    used.insert(
                        dir.clone(),
                        super::CacheMountUse {
                            id: id.clone(),
                            mode: m.mode,
                            uid: m.uid,
                            gid: m.gid,
                        },
                    );
                }
                // cache contents are not inputs: like BuildKit, the key names the mount only
                keys.push(json!(["cache", target, id]));
                mounts.push(Mount::Cache {
                    src: dir,
                    dest: target,
                });
                Ok(())
            }
            MountType::Secret => {
                let id =
                    m.id.clone()
                        .or_else(|| {
                            m.target
                                .as_deref()
                                .and_then(|t| Path::new(t).file_name())
                                .map(|n| n.to_string_lossy().into_owned())
                        })
                        .ok_or_else(|| invalid("a secret mount needs id= or target=".into()))?;
                keys.push(json!(["secret", id, m.target, m.env]));
                let Some(src) = self.o.secrets.get(&id) else {
                    if m.required {
                        return Err(invalid(format!(
                            "the secret `{id}` is required but was not given; pass it with --secret id={id},src=FILE (or env=VAR)"
                        )));
                    }
                    return Ok(());
                };
                let value = match src {
                    SecretSource::File(p) => fs::read(p).map_err(|e| {
                        invalid(format!("reading the secret `{id}` from {}: {e}", p.display()))
                    })?,
                    SecretSource::Env(v) => std::env::var_os(v)
                        .ok_or_else(|| {
                            invalid(format!(
                                "the secret `{id}` comes from the environment variable {v}, which is not set"
                            ))
                        })?
                        .into_encoded_bytes(),
                };
                if let Some(var) = &m.env {
                    secret_env.push((var.clone(), String::from_utf8_lossy(&value).into_owned()));
                    if m.target.is_none() {
                        return Ok(());
                    }
                }
                let f = private.join(format!("secret-{}", sanitize(&id)));
                {
                    use std::io::Write;
                    use std::os::unix::fs::OpenOptionsExt;
                    let mut file = fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(m.mode.unwrap_or(0o400))
                        .open(&f)
                        .map_err(EngineError::io("writing a secret to a private file", &f))?;
                    file.write_all(&value)
                        .map_err(EngineError::io("writing a secret to a private file", &f))?;
                }
                if fsops::is_root() {
                    let _ = std::os::unix::fs::lchown(
                        &f,
                        Some(m.uid.unwrap_or(0)),
                        Some(m.gid.unwrap_or(0)),
                    );
                }
                let dest = m
                    .target
                    .clone()
                    .unwrap_or_else(|| format!("/run/secrets/{id}"));
                mounts.push(Mount::Bind {
                    src: f,
                    dest,
                    readonly: true,
                });
                Ok(())
            }
            MountType::Bind => {
                let target = m
                    .target
                    .clone()
                    .ok_or_else(|| invalid("a bind mount needs target=".into()))?;
                let source = m.source.clone().unwrap_or_else(|| ".".into());
                let (host, content) = self.mount_source(st, m.from.as_deref(), &source, loc)?;
                keys.push(json!(["bind", target, m.from, source, content, m.readonly]));
                let src = if m.readonly {
                    host
                } else {
                    // rw: writes are discarded, so bind a copy
                    let copy = private.join(format!("bind-{}", keys.len()));
                    copy_any(&host, &copy)?;
                    copy
                };
                mounts.push(Mount::Bind {
                    src,
                    dest: target,
                    readonly: m.readonly,
                });
                Ok(())
            }
        }
    }

    /// A bind mount's host path and an id of its content.
    fn mount_source(
        &self,
        _st: &mut StageRun,
        from: Option<&str>,
        source: &str,
        loc: &str,
    ) -> Result<(PathBuf, String)> {
        let src = super::copy::Source::open(self, from, loc)?;
        let rel = source.trim_start_matches('/');
        let host = src.resolve_in(self, rel)?;
        let content = src.content_id(self, rel)?;
        Ok((host, content))
    }
}

/// Copy a file or tree (for rw bind mounts).
fn copy_any(src: &Path, dst: &Path) -> Result<()> {
    let m = fs::symlink_metadata(src).map_err(EngineError::io("reading", src))?;
    if m.is_dir() {
        ocibuild_sandbox::mounts::copy_tree(src, dst)
            .or_else(|_| {
                fs::create_dir_all(dst).and_then(|_| ocibuild_sandbox::mounts::copy_tree(src, dst))
            })
            .map_err(EngineError::io("copying a bind mount's source", src))
    } else {
        fs::copy(src, dst)
            .map(|_| ())
            .map_err(EngineError::io("copying a bind mount's source", src))
    }
}

/// What differs between two steps' key components, in words.
fn explain_diff(old: &Value, new: &Value) -> String {
    let mut why = Vec::new();
    let (Some(o), Some(n)) = (old.as_object(), new.as_object()) else {
        return "the step changed".into();
    };
    for (k, nv) in n {
        let ov = o.get(k).unwrap_or(&Value::Null);
        if ov == nv {
            continue;
        }
        match k.as_str() {
            "parent" => {}
            "content" => {
                let map = |v: &Value| -> BTreeMap<String, String> {
                    v.as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|e| {
                                    Some((e.get(0)?.as_str()?.to_string(), e.get(1)?.to_string()))
                                })
                                .collect()
                        })
                        .unwrap_or_default()
                };
                let (om, nm) = (map(ov), map(nv));
                let mut files = Vec::new();
                for (p, h) in &nm {
                    match om.get(p) {
                        None => files.push(format!("{p} (new)")),
                        Some(oh) if oh != h => files.push(format!("{p} (changed)")),
                        _ => {}
                    }
                }
                for p in om.keys().filter(|p| !nm.contains_key(*p)) {
                    files.push(format!("{p} (removed)"));
                }
                let n = files.len();
                files.truncate(8);
                if n > 8 {
                    files.push(format!("and {} more", n - 8));
                }
                why.push(format!("source files: {}", files.join(", ")));
            }
            "env" => why.push("the environment (ENV/ARG values) changed".into()),
            other => why.push(format!("its {other} changed")),
        }
    }
    if why.is_empty() && o.get("parent") != n.get("parent") {
        return "an earlier step changed (its result is an input of this one)".into();
    }
    if why.is_empty() {
        "the step changed".into()
    } else {
        why.join("; ")
    }
}

/// The home directory of `user` (`name`, `uid`, `name:group` …) in the root's /etc/passwd.
fn home_of(view: &fsops::View, user: Option<&str>) -> String {
    let u = user.unwrap_or("root");
    let u = u.split(':').next().unwrap_or(u);
    let passwd = view.read_to_string("/etc/passwd").unwrap_or_default();
    for l in passwd.lines() {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() >= 6 && (f[0] == u || f[2] == u) && !f[5].is_empty() {
            return f[5].to_string();
        }
    }
    if u == "root" || u == "0" {
        "/root".into()
    } else {
        "/".into()
    }
}

pub(crate) fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

pub(crate) fn one_line(s: &str) -> String {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() > 200 {
        let t: String = s.chars().take(200).collect();
        format!("{t}…")
    } else {
        s
    }
}

/// `p` against the working dir `wd`, as an absolute, cleaned path.
pub(crate) fn join_abs(wd: &str, p: &str) -> String {
    let full = if p.starts_with('/') {
        p.to_string()
    } else {
        format!("{}/{p}", wd.trim_end_matches('/'))
    };
    let mut out: Vec<&str> = Vec::new();
    for c in full.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    format!("/{}", out.join("/"))
}

#[allow(dead_code)]
fn _unused(_: &CopyArgs) {}

/// Whether every entry of the change dir `upper` lies under one of the `copied` paths
/// (relative), or is a directory leading to one.
fn only_copied(upper: &Path, copied: &[String]) -> bool {
    if copied.iter().any(String::is_empty) {
        return true;
    }
    let mut it = walkdir::WalkDir::new(upper).min_depth(1).into_iter();
    let mut any = false;
    while let Some(e) = it.next() {
        let Ok(e) = e else { return false };
        let Ok(rel) = e.path().strip_prefix(upper) else {
            return false;
        };
        let rel = rel.to_string_lossy();
        any = true;
        if copied
            .iter()
            .any(|p| *rel == **p || rel.starts_with(&format!("{p}/")))
        {
            if e.file_type().is_dir() {
                it.skip_current_dir();
            }
            continue;
        }
        let leads =
            e.file_type().is_dir() && copied.iter().any(|p| p.starts_with(&format!("{rel}/")));
        if !leads {
            return false;
        }
    }
    any
}

/// The fixed directory part of a COPY source (relative to the source's root): up to the first
/// component with a wildcard, or to a `/./` pivot.
fn copy_prefix(src: &str) -> String {
    let src = src.split("/./").next().unwrap_or(src);
    src.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .take_while(|c| !c.contains(['*', '?', '[']))
        .collect::<Vec<_>>()
        .join("/")
}

fn short_key(key: &str) -> &str {
    key.get(..16).unwrap_or(key)
}

/// Import the step record `bytes` that a `--cache-from` backend `be` holds for the step `key`:
/// parse it, fetch its layer blob into `store` (verified by digest and size), extract the layer
/// into a fresh change dir under `cache_dir` (verified against the record's diff id), and keep
/// both as the local cache entry `cache_dir/KEY` (+ `KEY.json`). `Ok(Some(layer))`: adopted;
/// `Ok(None)`: a miss (not a step record, a missing or corrupt blob, a size that is not the
/// blob's), reported through `ev`; `Err`: the entry is unusable (also a miss for the caller).
/// Nothing is written outside `store` and `cache_dir`. Public for the hostile-record property
/// test (`tests/hostile_cache_records.rs`); the build calls it for every remote lookup.
#[doc(hidden)]
pub fn import_step_record(
    store: &ocibuild_oci::store::ContentStore,
    cache_dir: &Path,
    key: &str,
    bytes: &[u8],
    be: &dyn ocibuild_cache::CacheBackend,
    ev: &(dyn Fn(Event) + Sync),
) -> Result<Option<Option<(Descriptor, Digest)>>> {
    let Ok(rec) = serde_json::from_slice::<Record>(bytes) else {
        ev(Event::Note(format!(
            "cache {}: the entry for step {} is not a step record (ignored)",
            be.describe(),
            short_key(key)
        )));
        return Ok(None);
    };
    let t = tempfile::Builder::new()
        .prefix(".step-")
        .tempdir_in(cache_dir)
        .map_err(EngineError::io("creating a step dir", cache_dir))?;
    let tmp = t.keep();
    let adopted = adopt_remote(store, cache_dir, tmp.clone(), key, &rec, be, ev);
    if !matches!(adopted, Ok(true)) {
        // every way out but adoption leaves no change dir behind
        let _ = ocibuild_sandbox::mounts::remove_tree(&tmp);
    }
    match adopted? {
        true => Ok(Some(rec.layer)),
        false => Ok(None),
    }
}

fn adopt_remote(
    store: &ocibuild_oci::store::ContentStore,
    cache_dir: &Path,
    tmp: PathBuf,
    key: &str,
    rec: &Record,
    be: &dyn ocibuild_cache::CacheBackend,
    ev: &(dyn Fn(Event) + Sync),
) -> Result<bool> {
    if let Some((d, diff_id)) = &rec.layer {
        let fetched = be
            .fetch_blob(&d.digest, store)
            .map_err(|e| EngineError::Invalid {
                what: format!("cache blob {}", d.digest),
                detail: e.to_string(),
            })?;
        match fetched {
            ocibuild_cache::Fetch::Fetched { .. } | ocibuild_cache::Fetch::Present => {}
            ocibuild_cache::Fetch::Missing => {
                let _ = ocibuild_sandbox::mounts::remove_tree(&tmp);
                ev(Event::Note(format!(
                    "cache {}: layer {} of step {} is missing (a miss: the step runs)",
                    be.describe(),
                    d.digest,
                    short_key(key)
                )));
                return Ok(false);
            }
            ocibuild_cache::Fetch::Corrupt { why } => {
                let _ = ocibuild_sandbox::mounts::remove_tree(&tmp);
                ev(Event::Note(format!(
                    "cache {}: layer {} of step {} is corrupt ({why}); skipped, the step runs",
                    be.describe(),
                    d.digest,
                    short_key(key)
                )));
                return Ok(false);
            }
        }
        // the digest was verified while fetching; the size is the record's claim, and the
        // image's layer descriptor is taken from it
        if store.size(&d.digest) != Some(d.size) {
            ev(Event::Note(format!(
                "cache {}: step {} names layer {} with size {}, but the blob is {} bytes; \
                 skipped, the step runs",
                be.describe(),
                short_key(key),
                d.digest,
                d.size,
                store
                    .size(&d.digest)
                    .map_or_else(|| "unreadable".to_string(), |n| n.to_string())
            )));
            return Ok(false);
        }
        let c = ocibuild_oci::media::layer_compression(&d.media_type).ok_or_else(|| {
            EngineError::Invalid {
                what: format!("cache layer {}", d.digest),
                detail: format!("unsupported media type {}", d.media_type),
            }
        })?;
        let f = store.open_blob(&d.digest)?;
        let opts = ocibuild_oci::extract::ExtractOptions {
            privileged: false,
            preserve_owner: fsops::is_root(),
            apply_whiteouts: false,
        };
        if let Err(e) = ocibuild_oci::extract::extract_layer_blob(
            std::io::BufReader::new(f),
            c,
            Some(diff_id),
            &tmp,
            &opts,
        ) {
            let _ = ocibuild_sandbox::mounts::remove_tree(&tmp);
            return Err(e.into());
        }
        // How it was compressed, when the record says so and its media type agrees: an image
        // taking the layer then takes it as it is instead of converting it.
        if let Some(k) = &rec.compressed_as
            && ocibuild_oci::assemble::compression_of_key(k) == Some(c)
        {
            store.record_layer(diff_id, k, &d.digest)?;
        }
    }
    let dest = cache_dir.join(key);
    if dest.exists() {
        let _ = ocibuild_sandbox::mounts::remove_tree(&dest);
    }
    let flag = dest.with_extension("oci");
    if fsops::View::dir_has_oci_markers(&tmp) {
        fs::write(&flag, b"").map_err(EngineError::io("flagging a cached step", &flag))?;
    } else {
        let _ = fs::remove_file(&flag);
    }
    fs::rename(&tmp, &dest).map_err(EngineError::io("keeping a cached step", &dest))?;
    let bytes = serde_json::to_vec(rec).map_err(|e| EngineError::Invalid {
        what: "step record".into(),
        detail: e.to_string(),
    })?;
    crate::roots::write_atomically(&cache_dir.join(format!("{key}.json")), &bytes)?;
    Ok(true)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn only_a_change_dir_wholly_copied_out_counts() {
        let t = tempfile::tempdir().unwrap();
        let u = t.path();
        fs::create_dir_all(u.join("src/node_modules/x")).unwrap();
        fs::write(u.join("src/node_modules/x/i.js"), "x").unwrap();
        let copied = vec!["src/node_modules".to_string()];
        assert!(only_copied(u, &copied));
        fs::create_dir_all(u.join("root/.cache")).unwrap();
        fs::write(u.join("root/.cache/log"), "random").unwrap();
        assert!(!only_copied(u, &copied), "a log beside the copied tree");
        assert!(only_copied(u, &["".to_string()]));
        assert!(!only_copied(
            &u.join("src/node_modules/x"),
            &["y".to_string()]
        ));
    }

    #[test]
    fn copy_prefixes_stop_at_wildcards_and_pivots() {
        assert_eq!(copy_prefix("/src/node_modules/"), "src/node_modules");
        assert_eq!(copy_prefix("/out/libs/*-SNAPSHOT.jar"), "out/libs");
        assert_eq!(
            copy_prefix("/src/target/classes/./**/*.class"),
            "src/target/classes"
        );
        assert_eq!(copy_prefix("/"), "");
        assert_eq!(copy_prefix("*.txt"), "");
    }

    #[test]
    fn paths_join_like_docker() {
        assert_eq!(join_abs("/", "app"), "/app");
        assert_eq!(join_abs("/a/b", "../c/./d/"), "/a/c/d");
        assert_eq!(join_abs("/x", "/abs"), "/abs");
    }
}
