use std::process::ExitCode;

use anyhow::Result;
use ocibuild_oci::store::{parse_duration, parse_size};

use super::open_store;
use crate::cli::{CacheCommand, Global};
use crate::output::human_size;

pub fn run(g: &Global, c: CacheCommand) -> Result<ExitCode> {
    if let CacheCommand::Warm(a) = c {
        return super::dockerfile::warm(g, &a);
    }
    let store = open_store(g)?;
    match c {
        CacheCommand::Warm(_) => {}
        CacheCommand::Du { json } => {
            let u = store.du()?;
            if json {
                println!("{}", serde_json::json!({"root": store.root(), "usage": u}));
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
            if json {
                println!("{}", serde_json::json!({"root": store.root(), "pruned": r}));
            } else {
                println!(
                    "removed {} blobs ({}), kept {} ({}), removed {} stale temp files",
                    r.removed_blobs,
                    human_size(r.removed_bytes),
                    r.kept_blobs,
                    human_size(r.kept_bytes),
                    r.removed_temp_files
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
