//! `build --scan` and `build --sbom` on the command line: the flags as
//! [`ocibuild_release::SbomOptions`], and the scan gate ([`ocibuild_release::ScanGate`]) as
//! `ocibuild scan` runs it (its database, thresholds, suppressions and report files). What a build
//! does with them, in which order, is `ocibuild-release`'s.

use std::path::{Path, PathBuf};

use anyhow::Result;
use ocibuild_oci::image::{Image, Platform};
use ocibuild_release::SbomOptions;

use crate::cli::{BuildArgs, Global, ScanArgs, ScanFormat};
use crate::output::usage;

/// The SBOM formats `--sbom` asks for: `cyclonedx`, `spdx`, `true` (both), `false`/`none`.
fn formats(a: &BuildArgs) -> Result<(bool, bool)> {
    let (mut cdx, mut spdx) = (false, false);
    for v in &a.sbom {
        match v.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => (cdx, spdx) = (true, true),
            "false" | "0" | "none" => {}
            "cyclonedx" | "cdx" => cdx = true,
            "spdx" => spdx = true,
            other => {
                return Err(usage(format!(
                    "--sbom {other}: not a format — give cyclonedx, spdx, both (cyclonedx,spdx) or true"
                )));
            }
        }
    }
    Ok((cdx, spdx))
}

/// `--sbom`, `--sbom-dir` and `--sbom-attach`.
pub(super) fn sbom_options(a: &BuildArgs) -> Result<SbomOptions> {
    let (cyclonedx, spdx) = formats(a)?;
    Ok(SbomOptions {
        cyclonedx,
        spdx,
        dir: sbom_dir(a),
        cosign_tag: a.sbom_attach == "cosign",
    })
}

/// `build --scan`: the scan gate as `ocibuild scan` runs it, the report on stderr (standard
/// output is the digest) and in `--scan-report` (one file per platform of a multi-platform build:
/// `FILE` with `.OS_ARCH` before its extension).
pub(super) struct BuildScan<'g> {
    pub g: &'g Global,
    pub a: &'g BuildArgs,
}

impl ocibuild_release::ScanGate for BuildScan<'_> {
    fn scan(
        &self,
        packages: &[ocibuild_scan::Package],
        platform: Option<&Platform>,
    ) -> Result<bool, Box<dyn std::error::Error + Send + Sync>> {
        let a = self.a;
        let sa = ScanArgs {
            image: None,
            sbom: None,
            platform: None,
            db: a.db.clone(),
            severity: a.severity.clone(),
            severity_threshold: None,
            ignore_unfixed: a.ignore_unfixed,
            ignore_unknown: a.ignore_unknown,
            format: ScanFormat::Json,
            output: a.scan_report.as_ref().map(|f| match platform {
                Some(p) => platform_file(f, &ocibuild_release::sbom::platform_dir(p)),
                None => f.clone(),
            }),
            allowlist: a.allowlist.clone(),
            vex: a.vex.clone(),
            db_max_age: None,
            exit_code: 3,
        };
        super::scan::scan_packages(self.g, &sa, packages, None, true).map_err(|e| e.into())
    }
}

/// [`ocibuild_release::sbom::inherit_base_locks`] in the store this command uses (if it has
/// build records).
pub(super) fn inherit_base_locks(
    g: &Global,
    pi: &ocibuild_record::PlatformImage,
) -> ocibuild_record::PlatformImage {
    match records_store(g) {
        Some(store) => {
            ocibuild_release::sbom::inherit_base_locks(&store, pi, &|w| eprintln!("warning: {w}"))
        }
        None => pi.clone(),
    }
}

/// The store of `--root`, when it keeps build records; never created here.
fn records_store(g: &Global) -> Option<ocibuild_oci::store::ContentStore> {
    let root = match &g.root {
        Some(r) => r.clone(),
        None => ocibuild_oci::store::ContentStore::default_root()?,
    };
    if !root.join("engine").join("builds").is_dir() {
        return None;
    }
    ocibuild_oci::store::ContentStore::open(&root).ok()
}

/// The build record this store keeps for `image` (`ROOT/engine/builds/`), if this store built
/// it: `ocibuild sbom` of a stored build catalogues from it as `build --sbom` does. Never creates
/// the store; a record that cannot be read is warned about and left out.
pub(super) fn stored_record(g: &Global, image: &Image) -> Option<ocibuild_record::BuildRecord> {
    let mut digests = vec![&image.manifest_desc.digest];
    if let Some((d, _, _)) = &image.index {
        digests.push(&d.digest);
    }
    stored_record_of(g, &digests)
}

/// The first build record this store keeps for one of `digests`.
fn stored_record_of(
    g: &Global,
    digests: &[&ocibuild_oci::Digest],
) -> Option<ocibuild_record::BuildRecord> {
    let store = records_store(g)?;
    for d in digests.iter().copied() {
        match ocibuild_engine::load_record(&store, d) {
            Ok(Some(r)) => return Some(r),
            Ok(None) => {}
            Err(e) => {
                eprintln!(
                    "warning: {e:#}; the SBOM is catalogued from the image's layers alone (rebuild the \
                     image to write a new record)"
                );
                return None;
            }
        }
    }
    None
}

/// `FILE` with `.PLATFORM` before its extension (`report.json` → `report.linux_arm64.json`).
fn platform_file(f: &Path, platform: &str) -> PathBuf {
    let stem = f
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match f.extension() {
        Some(e) => format!("{stem}.{platform}.{}", e.to_string_lossy()),
        None => format!("{stem}.{platform}"),
    };
    f.with_file_name(name)
}

/// `--sbom-dir`, else the directory of `--metadata-file`, else the working directory.
fn sbom_dir(a: &BuildArgs) -> PathBuf {
    if let Some(d) = &a.sbom_dir {
        return d.clone();
    }
    a.metadata_file
        .as_ref()
        .and_then(|m| m.parent())
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), |p| p.to_path_buf())
}
