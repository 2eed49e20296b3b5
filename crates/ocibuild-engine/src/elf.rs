//! The shared libraries ELF files need, and the libraries a set of layers needs that the
//! runtime base lacks, copied from the build root: the one resolver of `ocibuild-elf` (which
//! `ocibuild check` uses too), with the engine's errors.

use std::path::{Path, PathBuf};

pub use ocibuild_elf::{NativeLibs, is_elf, needed};

use crate::error::{EngineError, Result};

impl From<ocibuild_elf::ElfError> for EngineError {
    fn from(e: ocibuild_elf::ElfError) -> Self {
        match e {
            ocibuild_elf::ElfError::Io { what, path, source } => {
                EngineError::Io { what, path, source }
            }
        }
    }
}

/// See [`ocibuild_elf::missing_libs`].
pub fn missing_libs(
    layers: &[PathBuf],
    runtime: &mut dyn FnMut() -> Result<PathBuf>,
    build_root: &mut dyn FnMut() -> Result<PathBuf>,
    out: &Path,
) -> Result<NativeLibs> {
    ocibuild_elf::missing_libs(layers, runtime, build_root, out)
}

/// Tell the user what [`missing_libs`] found: a warning per library nothing provides, and a
/// note naming the libraries copied from the build root (the same words on every executor path).
pub fn report_missing_libs(libs: &NativeLibs, ev: &(dyn Fn(crate::Event) + Sync)) {
    for (lib, by) in &libs.unresolved {
        ev(crate::Event::Warning(format!(
            "{by} needs {lib}, which neither the runtime base nor the build root has; \
             it fails to load at run time unless the app ships it (add the Debian package \
             with `packages` in ocibuild.toml)"
        )));
    }
    if !libs.copied.is_empty() {
        ev(crate::Event::Note(format!(
            "native code needs libraries the runtime base lacks; copied from the build root: {}",
            libs.copied
                .iter()
                .map(|(_, p)| p.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
}
