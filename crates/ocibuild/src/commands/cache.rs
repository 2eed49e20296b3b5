use std::process::ExitCode;

use anyhow::Result;
use ocibuild_engine::storeusage::{self, Kind};
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
            let all = storeusage::usage(&store);
            let (steps, bytes) = ocibuild_engine::df::step_cache_usage(&store);
            if json {
                let mut kinds = serde_json::Map::new();
                for (k, v) in &all.kinds {
                    kinds.insert(
                        (*k).to_string(),
                        serde_json::json!({"bytes": v.bytes, "items": v.items}),
                    );
                }
                println!(
                    "{}",
                    serde_json::json!({
                        "root": store.root(),
                        "total_bytes": all.total_bytes,
                        "kinds": kinds,
                        "other_paths": all.other_paths,
                        "usage": u,
                        "dockerfile_steps": {"records": steps, "bytes": bytes},
                    })
                );
            } else {
                println!("{}", store.root().display());
                for k in Kind::ALL {
                    let v = all.kinds.get(k.as_str()).copied().unwrap_or_default();
                    println!(
                        "  {:<16} {:>10}  {:>7} items  {}",
                        k.as_str(),
                        human_size(v.bytes),
                        v.items,
                        k.what()
                    );
                }
                println!("  {:<16} {:>10}", "total", human_size(all.total_bytes));
                for p in &all.other_paths {
                    println!(
                        "  other: {} (not made by ocibuild; prune leaves it)",
                        p.display()
                    );
                }
            }
        }
        CacheCommand::Verify { repair, json } => {
            // shared: builds may run meanwhile (blobs appear whole, by rename), prune may not;
            // exclusive to repair
            let _lock = if repair {
                match store.try_lock_exclusive()? {
                    Some(l) => l,
                    None => {
                        eprintln!(
                            "waiting for the builds that use {} to finish before repairing…",
                            store.root().display()
                        );
                        store.lock_exclusive()?
                    }
                }
            } else {
                store.lock_shared()?
            };
            let mut r = ocibuild_oci::verify::verify(&store, repair)?;
            // the unpacked-package cache beside the store's Debian package cache: every file
            // re-hashed, every manifest read (a broken entry is unpacked again when needed)
            let (_, broken) =
                ocibuild_debian::unpacked::verify(&store.root().join("debian"), repair);
            for b in broken {
                r.problems.push(ocibuild_oci::verify::Problem {
                    kind: "broken-unpacked-package",
                    path: b
                        .path
                        .strip_prefix(store.root())
                        .unwrap_or(&b.path)
                        .to_path_buf(),
                    detail: b.detail,
                    repaired: repair,
                });
            }
            let unrepaired = r.problems.iter().filter(|p| !p.repaired).count();
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "root": store.root(),
                        "ok": r.ok(),
                        "blobs": r.blobs,
                        "blob_bytes": r.blob_bytes,
                        "mappings": r.mappings,
                        "records": r.records,
                        "problems": r.problems,
                    })
                );
            } else {
                println!(
                    "{}: {} blobs ({}), {} layer mappings, {} records checked",
                    store.root().display(),
                    r.blobs,
                    human_size(r.blob_bytes),
                    r.mappings,
                    r.records
                );
                for p in &r.problems {
                    println!(
                        "  {}{}: {} ({})",
                        if p.repaired { "removed " } else { "" },
                        p.kind,
                        p.path.display(),
                        p.detail
                    );
                }
                if r.ok() {
                    println!("nothing broken");
                } else if unrepaired == 0 {
                    println!("{} broken items removed", r.problems.len());
                } else {
                    println!(
                        "{} broken{}; `ocibuild cache verify --repair` removes {}",
                        unrepaired,
                        if repair { " and not removable" } else { "" },
                        if repair {
                            "what it can"
                        } else {
                            "them (a later build re-creates what it needs)"
                        }
                    );
                }
            }
            if unrepaired > 0 {
                return Ok(ExitCode::from(3));
            }
        }
        CacheCommand::Prune {
            older_than,
            keep_storage,
            json,
        } => {
            let older = older_than.as_deref().map(parse_duration).transpose()?;
            let keep = keep_storage.as_deref().map(parse_size).transpose()?;
            match store.try_lock_exclusive()? {
                Some(l) => drop(l),
                None => eprintln!(
                    "waiting for the builds that use {} to finish (prune never removes what a build uses)…",
                    store.root().display()
                ),
            }
            let r = storeusage::prune(&store, older, keep)?;
            let n = |m: &std::collections::BTreeMap<&str, storeusage::KindUsage>, k: Kind| {
                m.get(k.as_str()).copied().unwrap_or_default()
            };
            if json {
                let (rb, kb) = (n(&r.removed, Kind::Blobs), n(&r.kept, Kind::Blobs));
                println!(
                    "{}",
                    serde_json::json!({
                        "root": store.root(),
                        "removed": r.removed,
                        "kept": r.kept,
                        "removed_bytes": r.removed_bytes,
                        "kept_bytes": r.kept_bytes,
                        "held": r.held,
                        "other_paths": r.other_paths,
                        "pruned": {
                            "removed_blobs": rb.items,
                            "removed_bytes": rb.bytes,
                            "kept_blobs": kb.items,
                            "kept_bytes": kb.bytes,
                            "removed_temp_files": n(&r.removed, Kind::Temp).items,
                        },
                        "steps_removed": n(&r.removed, Kind::StepRecords).items,
                    })
                );
            } else {
                println!(
                    "removed {}, kept {}",
                    human_size(r.removed_bytes),
                    human_size(r.kept_bytes)
                );
                for k in Kind::ALL {
                    let (rm, kp) = (n(&r.removed, k), n(&r.kept, k));
                    if rm.items + kp.items == 0 {
                        continue;
                    }
                    println!(
                        "  {:<16} removed {:>10} ({} items), kept {:>10} ({} items)",
                        k.as_str(),
                        human_size(rm.bytes),
                        rm.items,
                        human_size(kp.bytes),
                        kp.items
                    );
                }
                for p in &r.held {
                    println!("  kept {}: a running process holds it", p.display());
                }
                for p in &r.other_paths {
                    println!("  kept {}: not made by ocibuild", p.display());
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
