use std::process::ExitCode;

use anyhow::{Context, Result};
use ocibuild_oci::image::{Platform, load_image};
use ocibuild_oci::reference::Location;
use serde_json::json;

use crate::cli::{Global, InspectArgs};
use crate::output::human_size;

pub fn run(g: &Global, a: InspectArgs) -> Result<ExitCode> {
    let loc = Location::parse(&a.image)?;
    let reg = super::registry::registry(g)?;
    let src = super::registry::open_any(&loc, &reg)?;
    let platform = a.platform.as_deref().map(Platform::parse).transpose()?;
    let img = load_image(src.as_ref(), platform.as_ref())
        .with_context(|| format!("reading {}", src.describe()))?;
    let diff_ids = img.diff_ids().unwrap_or_default();
    let total: u64 = img.manifest.layers.iter().map(|l| l.size).sum();
    if a.json {
        let layers: Vec<_> = img
            .manifest
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| json!({"digest": l.digest, "size": l.size, "mediaType": l.media_type, "diff_id": diff_ids.get(i)}))
            .collect();
        let manifest: serde_json::Value = serde_json::from_slice(&img.manifest_bytes)?;
        let out = json!({
            "location": src.describe(),
            "digest": img.manifest_desc.digest,
            "mediaType": img.manifest_desc.media_type,
            "index": img.index.as_ref().map(|(d, _, _)| d.digest.clone()),
            "platform": img.platform().map(|p| p.to_string()),
            "manifest": manifest,
            "config": img.config,
            "layers": layers,
            "layers_size": total,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    let c = img.config.get("config");
    let field = |k: &str| {
        c.and_then(|c| c.get(k))
            .filter(|v| !v.is_null())
            .map(|v| v.to_string())
    };
    println!("Image:       {}", src.describe());
    if let Some((d, _, _)) = &img.index {
        println!("Index:       {}", d.digest);
    }
    println!(
        "Manifest:    {} ({}, {} bytes)",
        img.manifest_desc.digest, img.manifest_desc.media_type, img.manifest_desc.size
    );
    println!(
        "Config:      {} ({} bytes)",
        img.manifest.config.digest, img.manifest.config.size
    );
    if let Some(p) = img.platform() {
        println!("Platform:    {p}");
    }
    if let Some(cr) = img.config.get("created").and_then(|v| v.as_str()) {
        println!("Created:     {cr}");
    }
    for (label, key) in [
        ("Entrypoint", "Entrypoint"),
        ("Cmd", "Cmd"),
        ("User", "User"),
        ("WorkingDir", "WorkingDir"),
        ("Env", "Env"),
        ("Ports", "ExposedPorts"),
        ("Labels", "Labels"),
    ] {
        if let Some(v) = field(key) {
            println!("{:<12} {v}", format!("{label}:"));
        }
    }
    println!(
        "Layers:      {} ({} compressed)",
        img.manifest.layers.len(),
        human_size(total)
    );
    for (i, l) in img.manifest.layers.iter().enumerate() {
        println!(
            "  {i:>2}  {}  {:>10}  {}",
            l.digest,
            human_size(l.size),
            l.media_type
        );
        if let Some(d) = diff_ids.get(i) {
            println!("      diff_id {d}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
