use std::process::ExitCode;

use anyhow::{Context, Result};
use ocibuild_oci::layout::open_location;
use ocibuild_oci::reference::Location;
use ocibuild_oci::validate::{ValidateOptions, validate};
use serde_json::json;

use crate::cli::{Global, ValidateArgs};

pub fn run(_g: &Global, a: ValidateArgs) -> Result<ExitCode> {
    let loc = Location::parse(&a.image)?;
    let src = open_location(&loc).with_context(|| format!("opening {}", a.image))?;
    let report = validate(src.as_ref(), &ValidateOptions::default())
        .with_context(|| format!("{} is not valid", src.describe()))?;
    if a.json {
        println!(
            "{}",
            json!({"location": src.describe(), "valid": true, "images": report.images, "blobs": report.checked.len()})
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
