//! What both build frontends do with their build record: keep it in the store beside the image
//! (for SBOM and provenance steps that come later) and write the `--metadata-file` from it — one
//! schema for both (`docs/build-record.md`, checked against `docs/metadata.schema.json`).

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use ocibuild_oci::store::ContentStore;
use ocibuild_record::BuildRecord;
use serde_json::{Value, json};

use crate::cli::BuildArgs;

/// Keep `record` in the store (`ROOT/engine/builds/image-<digest hex>.json`) and write the
/// `--metadata-file`: [`BuildRecord::metadata`], the frontend's own keys in `extra`, and
/// `ocibuild.layers` (the layers this build made, named) and `ocibuild.cached` (no step ran).
pub(super) fn finish(
    a: &BuildArgs,
    store: &ContentStore,
    record: &BuildRecord,
    mut extra: BTreeMap<String, Value>,
) -> Result<()> {
    ocibuild_engine::save_record(store, record).context("keeping the build record in the store")?;
    super::summary::built(a, record, &extra)?;
    let Some(f) = &a.metadata_file else {
        return Ok(());
    };
    let (ran, _) = record.step_counts();
    extra.insert("ocibuild.cached".into(), json!(ran == 0));
    // every platform's layers (a multi-platform build's step ids name their platform)
    {
        let mut seen = std::collections::BTreeSet::new();
        let made: Vec<Value> = record
            .images
            .iter()
            .flat_map(|i| &i.layers)
            .filter(|l| seen.insert(l.descriptor.digest.clone()))
            .filter_map(|l| {
                let name = match &l.origin {
                    ocibuild_record::LayerOrigin::App { name } => name.clone(),
                    ocibuild_record::LayerOrigin::Step { step } => step.clone(),
                    ocibuild_record::LayerOrigin::Base { .. } => return None,
                };
                Some(json!({
                    "name": name,
                    "digest": l.descriptor.digest.to_string(),
                    "size": l.descriptor.size,
                    "diff_id": l.diff_id.to_string(),
                    "origin": l.origin,
                }))
            })
            .collect();
        extra.entry("ocibuild.layers".into()).or_insert(json!(made));
    }
    let meta = record.metadata(&a.tags, extra);
    super::write_file_atomically(f, &serde_json::to_vec_pretty(&meta)?)
        .with_context(|| format!("writing --metadata-file {}", f.display()))
}
