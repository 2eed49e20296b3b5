use std::process::ExitCode;

use anyhow::Result;
use ocibuild_oci::store::{parse_duration, parse_size};

use super::open_store;
use crate::cli::{CacheCommand, Global};
use crate::output::human_size;

pub fn run(g: &Global, c: CacheCommand) -> Result<ExitCode> {
    if let CacheCommand::Warm(a) = c {
        return super::dockerfile::warm(g, &(*a).into_build_args()?);
    }
    let store = open_store(g)?;
    match c {
        CacheCommand::Warm(_) => {}
        CacheCommand::Du { json } => {
            let u = store.du()?;
            if json {
                let (steps, bytes) = ocibuild_engine::df::step_cache_usage(&store);
                println!(
                    "{}",
                    serde_json::json!({"root": store.root(), "usage": u, "dockerfile_steps": {"records": steps, "bytes": bytes}})
                );
            } else {
                println!("{}", store.root().display());
                println!(
                    "  blobs            {:>10}  {}",
                    u.blobs,
                    human_size(u.bytes)
                );
                println!("  layer mappings   {:>10}", u.layer_mappings);
                println!(
                    "  temp files       {:>10}  {}",
                    u.temp_files,
                    human_size(u.temp_bytes)
                );
                let (steps, bytes) = ocibuild_engine::df::step_cache_usage(&store);
                println!(
                    "  Dockerfile steps {:>10}  {} (change dirs; their layers are blobs)",
                    steps,
                    human_size(bytes)
                );
            }
        }
        CacheCommand::Prune {
            older_than,
            keep_storage,
            json,
        } => {
            let older = older_than.as_deref().map(parse_duration).transpose()?;
            let keep = keep_storage.as_deref().map(parse_size).transpose()?;
            let r = store.prune(older, keep)?;
            let steps = {
                let _lock = store.lock_exclusive()?;
                ocibuild_engine::df::prune_steps(
                    &store,
                    if keep.is_some() && older.is_none() {
                        // a size budget prunes blobs; the records of pruned layers go with them
                        Some(std::time::Duration::MAX)
                    } else {
                        older
                    },
                )?
            };
            let logs = {
                let _lock = store.lock_exclusive()?;
                ocibuild_engine::steplog::prune(&store, older)?
            };
            if json {
                println!(
                    "{}",
                    serde_json::json!({"root": store.root(), "pruned": r, "steps_removed": steps, "step_logs_removed": logs})
                );
            } else {
                println!(
                    "removed {} blobs ({}), kept {} ({}), removed {} stale temp files",
                    r.removed_blobs,
                    human_size(r.removed_bytes),
                    r.kept_blobs,
                    human_size(r.kept_bytes),
                    r.removed_temp_files
                );
                println!("removed {steps} Dockerfile step records");
                println!("removed the step logs of {logs} builds");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
