use std::process::ExitCode;

use anyhow::{Context, Result};
use ocibuild_oci::reference::Location;
use ocibuild_oci::validate::{ValidateOptions, validate};
use serde_json::json;

use crate::cli::{Global, ValidateArgs};

pub fn run(g: &Global, a: ValidateArgs) -> Result<ExitCode> {
    let loc = Location::parse(&a.image)?;
    let reg = super::registry::registry(g)?;
    let src = super::registry::open_any(&loc, &reg)?;
    let opts = ValidateOptions {
        strict: a.strict,
        ..ValidateOptions::default()
    };
    let report = validate(src.as_ref(), &opts)
        .with_context(|| format!("{} is not valid", src.describe()))?;
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    if a.json {
        println!(
            "{}",
            json!({"location": src.describe(), "valid": true, "images": report.images, "blobs": report.checked.len(), "warnings": report.warnings})
        );
    } else {
        println!(
            "valid: {} ({} image(s), {} blobs checked: digests, sizes, media types, diff_ids, tar streams)",
            src.describe(),
            report.images,
            report.checked.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}
