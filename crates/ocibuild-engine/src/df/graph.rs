//! The whole-graph key: one key over everything a build reads from outside its graph, checked
//! before the per-step walk.
//!
//! ```text
//! key = the Dockerfile text, target, build args, platform, labels, epoch, compression
//!     + each needed stage's base image (its manifest digest; a native base: its lock key,
//!       known before the base is assembled)
//!     + what every COPY/ADD and RUN --mount=type=bind reads from the context, a named context
//!       or an image (the selected files by content, --exclude applied; never mtimes)
//!     + the context's lockfiles (the build record lists them)
//! ```
//!
//! A match with a stored result whose blobs are all in the store is the build: nothing is
//! walked, no stage root is touched (a no-change rebuild). Anything that cannot be keyed before
//! it runs (ADD of a URL, a variable in a COPY source or `--from`, ONBUILD triggers of a base)
//! leaves the build on the per-step walk, which is always right. Results live in
//! `ROOT/engine/builds/graph-<key>.json`, written after the image is in the store.

use std::fs;
use std::path::PathBuf;

use ocibuild_dockerfile::{BaseRef, InstructionKind, MountType};
use ocibuild_oci::image::{Descriptor, Image, load_image};
use ocibuild_oci::store::ContentStore;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Exec, NamedContext, fsops, native, plat_str};
use crate::error::{EngineError, Result};

const KIND: &str = "graph-result";

/// A stored build result.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Stored {
    kind: String,
    pub manifest: Descriptor,
    /// The stages built, in order.
    pub stages: Vec<String>,
    /// What the frontend keeps beside the image (the build record, layer names…).
    pub data: Value,
}

/// Where the result of `key` is kept: beside the build records (`cache du`, `prune` and
/// `verify` treat it as one: a result whose image is gone is pruned or repaired away).
fn path(store: &ContentStore, key: &str) -> PathBuf {
    store
        .root()
        .join("engine")
        .join("builds")
        .join(format!("graph-{key}.json"))
}

/// SHA-256 of a JSON value (its compact serialisation).
pub(crate) fn digest(v: &Value) -> String {
    use sha2::{Digest as _, Sha256};
    hex::encode(Sha256::digest(v.to_string().as_bytes()))
}

/// The whole-graph key of the build `exec` is about to run (`Ok(None)`: the graph reads
/// something that cannot be keyed before it runs).
pub(crate) fn key(exec: &Exec<'_>, text: &str) -> Result<Option<String>> {
    let o = exec.o;
    let mut parts: Vec<Value> = vec![
        json!("ocibuild-graph-v5"),
        json!(env!("CARGO_PKG_VERSION")),
        json!(text),
        json!(o.target),
        json!(o.build_args),
        json!(plat_str(&o.platform)),
        json!(o.labels),
        json!(o.source_date_epoch),
        json!(format!("{:?} {:?}", o.compression, o.level)),
        json!(o.network),
        json!(o.context_excludes),
        json!(o.secrets.keys().collect::<Vec<_>>()),
        json!(fsops::is_root()),
        json!(
            o.contexts
                .iter()
                .map(|(k, v)| match v {
                    NamedContext::Dir(d) => format!("{k}=dir:{}", d.display()),
                    NamedContext::Image(r) => format!("{k}=image:{r}"),
                })
                .collect::<Vec<_>>()
        ),
        json!(
            super::lockfiles_of(&o.context)
                .iter()
                .map(|l| format!("{} {}", l.path, l.sha256))
                .collect::<Vec<_>>()
        ),
    ];
    for &i in &exec.plan.order {
        let ps = &exec.plan.stages[i];
        let platform = exec.stage_platform(i)?;
        match &ps.base {
            BaseRef::Scratch => parts.push(json!([i, "scratch", plat_str(&platform), "PATH"])),
            BaseRef::Stage(j) => parts.push(json!([i, "stage", j])),
            BaseRef::Image(name) => {
                let reference = match o.contexts.get(name) {
                    Some(NamedContext::Image(r)) => r.clone(),
                    Some(NamedContext::Dir(_)) => return Ok(None),
                    None => name.clone(),
                };
                // a native base by its lock (cheap: the signed indexes), not by the image it
                // gives: a cold runner looks its build up before assembling anything
                let native = match (reference.strip_prefix(super::native::PREFIX), &o.native) {
                    (Some(spec), Some(nb)) if reference != super::native::HOST => {
                        let r = super::native::parse(spec)?;
                        let (_, locked, from_lock) =
                            nb.locked_for_arch(&r, &platform.architecture)?;
                        // what a hit says of the base (its digest is the stored record's)
                        if let Ok(mut n) = exec.graph_notes.lock() {
                            n.push((
                                r.reference(),
                                format!(
                                    "(cached, {} {}, {} packages{}), {}",
                                    locked.lock.release,
                                    locked.lock.arch,
                                    locked.lock.packages().count(),
                                    native::lockfile_note(from_lock.as_deref()),
                                    r.role()
                                ),
                            ));
                        }
                        Some(locked.key)
                    }
                    _ => None,
                };
                if let Some(k) = native {
                    parts.push(json!([i, "native", k]));
                } else {
                    let img = exec.image_for(&reference, &platform)?;
                    let triggers = img
                        .config
                        .get("config")
                        .and_then(|c| c.get("OnBuild"))
                        .and_then(Value::as_array)
                        .is_some_and(|t| !t.is_empty());
                    if triggers {
                        return Ok(None);
                    }
                    parts.push(json!([i, "image", img.manifest_desc.digest.to_string()]));
                }
            }
        }
        for ins in &exec.df.stages[i].instructions {
            match &ins.kind {
                InstructionKind::Copy(a) | InstructionKind::Add(a) => {
                    match exec.copy_inputs_id(a)? {
                        Some(v) => parts.push(json!([i, ins.span.line, v])),
                        None => return Ok(None),
                    }
                }
                InstructionKind::Run(r) => {
                    for m in &r.mounts {
                        if matches!(m.kind, MountType::Bind)
                            || (matches!(m.kind, MountType::Cache) && m.from.is_some())
                        {
                            match exec.tree_inputs_id(m.from.as_deref())? {
                                Some(v) => parts.push(json!([i, ins.span.line, v])),
                                None => return Ok(None),
                            }
                        }
                    }
                }
                // a trigger runs in a stage built on this one, reading what it names
                InstructionKind::OnBuild(_) => return Ok(None),
                _ => {}
            }
        }
    }
    Ok(Some(digest(&Value::Array(parts))))
}

/// The stored result of `key` and its image, when every blob the image needs is in the store
/// (a pruned or damaged entry is a miss, never a wrong image).
pub(crate) fn lookup(store: &ContentStore, key: &str) -> Option<(Stored, Image)> {
    let p = path(store, key);
    let s: Stored = serde_json::from_slice(&fs::read(&p).ok()?).ok()?;
    if s.kind != KIND || !store.has(&s.manifest.digest) {
        return None;
    }
    let src = ocibuild_oci::layout::StoreSource::new(
        store.clone(),
        s.manifest.clone(),
        "a stored build".to_string(),
    );
    let image = load_image(&src, None).ok()?;
    let complete = store.has(&image.manifest.config.digest)
        && image.manifest.layers.iter().all(|l| store.has(&l.digest));
    if !complete {
        return None;
    }
    crate::storeusage::touch_dir(&p);
    Some((s, image))
}

/// Keep the result of `key` (after the image is in the store).
pub(crate) fn save(
    store: &ContentStore,
    key: &str,
    image: &Image,
    stages: &[String],
    data: Value,
) -> Result<()> {
    let p = path(store, key);
    if let Some(d) = p.parent() {
        fs::create_dir_all(d).map_err(EngineError::io("creating the build records", d))?;
    }
    let s = Stored {
        kind: KIND.into(),
        manifest: image.manifest_desc.clone(),
        stages: stages.to_vec(),
        data,
    };
    let bytes = serde_json::to_vec(&s).map_err(|e| EngineError::Invalid {
        what: "a graph result".into(),
        detail: e.to_string(),
    })?;
    crate::roots::write_atomically(&p, &bytes)
}
