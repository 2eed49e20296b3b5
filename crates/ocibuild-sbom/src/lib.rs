//! SBOMs of container images.
//!
//! The catalogers read any image (an `ImageSource`), streaming each layer once and never
//! unpacking to disk: whiteouts are applied as the layers go by, so only files present in the
//! final filesystem count. Each component records the layer (its diff_id) and the path it came
//! from. Writers emit CycloneDX 1.6 JSON and SPDX 2.3 JSON, deterministically for the same image;
//! `validate` checks a document against the official schemas bundled in this crate; `policy`
//! gates on licences.
//!
//! Catalogers: Debian (`var/lib/dpkg/status`, distroless `var/lib/dpkg/status.d/*`, licences from
//! machine-readable `usr/share/doc/<pkg>/copyright`), Go (the buildinfo embedded in ELF binaries),
//! npm (`node_modules/**/package.json`), Python (`*.dist-info/METADATA`) and Java (jars' Maven
//! `pom.properties` and manifests, including the jars nested in a Spring Boot fat jar).
//!
//! For an image ocibuild built, [`catalog_build`] takes the build's record ([`BuildFacts`]: the
//! seam both build frontends provide) and lays what the build knows over what the catalogers
//! find: the bases' Debian locks, the app's lockfiles, each layer's origin (see [`record`]).

pub mod cyclonedx;
pub mod dep5;
pub mod dpkg;
pub mod golang;
pub mod java;
pub mod license;
pub mod npm;
pub mod policy;
pub mod purl;
pub mod python;
pub mod record;
pub mod spdx_doc;
pub mod validate;
mod walk;

use std::collections::BTreeMap;

use ocibuild_oci::{Digest, ImageSource, OciError, Platform};
use serde::Serialize;

pub use license::License;
pub use record::{BuildFacts, catalog_build};
pub use walk::catalog_image;

/// What went wrong while cataloguing, writing or validating.
#[derive(Debug, thiserror::Error)]
pub enum SbomError {
    #[error(transparent)]
    Oci(#[from] OciError),
    #[error("reading layer {layer} of {image}: {source}")]
    Layer {
        layer: String,
        image: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} is not valid JSON: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{what}: {detail}")]
    Invalid { what: String, detail: String },
}

pub type Result<T, E = SbomError> = std::result::Result<T, E>;

/// Which ecosystem a component belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ecosystem {
    Debian,
    Go,
    Npm,
    Pypi,
    Maven,
}

impl Ecosystem {
    pub fn name(self) -> &'static str {
        match self {
            Ecosystem::Debian => "debian",
            Ecosystem::Go => "go",
            Ecosystem::Npm => "npm",
            Ecosystem::Pypi => "pypi",
            Ecosystem::Maven => "maven",
        }
    }
}

/// One software component found in an image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Component {
    pub ecosystem: Ecosystem,
    /// The name as the ecosystem spells it (`@scope/name`, `group:artifact`, a Go module path).
    pub name: String,
    pub version: String,
    pub purl: String,
    /// Licences as found: validated SPDX expressions, or names that map to none (unknown).
    pub licenses: Vec<License>,
    /// The diff_id of the layer the file came from.
    pub layer: String,
    /// The path in the image of the file that recorded it (no leading `/`).
    pub path: String,
    /// `(algorithm, lowercase hex)` in CycloneDX's spelling (`SHA-256`, `SHA-1`).
    pub hashes: Vec<(String, String)>,
    /// Extra `ocibuild:*` properties (sorted).
    pub properties: BTreeMap<String, String>,
}

impl Component {
    /// True when no licence is known, or one of them is not a valid SPDX expression.
    pub fn license_unknown(&self) -> bool {
        self.licenses.is_empty()
            || self
                .licenses
                .iter()
                .any(|l| matches!(l, License::Unknown(_)))
    }

    fn sort_key(&self) -> (String, String, String) {
        (self.purl.clone(), self.path.clone(), self.layer.clone())
    }
}

/// What an image is, for the document's metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    /// How the user named it (`oci:dir:tag`, `docker://…`), for the document name.
    pub name: String,
    /// The manifest digest: the document's identity (serial number, namespace).
    pub manifest_digest: Digest,
    /// The config's `created`, RFC 3339, if it has one: the document's timestamp.
    pub created: Option<String>,
    pub platform: Option<Platform>,
    /// `etc/os-release` of the final filesystem: `ID` and `VERSION_ID`.
    pub os_id: Option<String>,
    pub os_version_id: Option<String>,
}

/// The catalogue of one image: its identity and its components, sorted.
#[derive(Clone, Debug)]
pub struct Sbom {
    pub image: ImageInfo,
    pub components: Vec<Component>,
}

impl Sbom {
    pub fn new(image: ImageInfo, mut components: Vec<Component>) -> Self {
        components.sort_by_key(Component::sort_key);
        components.dedup();
        Sbom { image, components }
    }
}

/// Catalogue the selected image of a source (one platform of an index).
pub fn catalog(src: &dyn ImageSource, platform: Option<&Platform>, name: &str) -> Result<Sbom> {
    let image = ocibuild_oci::image::load_image(src, platform)?;
    catalog_image(src, &image, name)
}
