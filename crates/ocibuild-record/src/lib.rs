//! # ocibuild-record — what a build made, and what it knows about it
//!
//! The seam between building and everything that happens to a finished image: the engine (both
//! frontends, Dockerfile and zero-config) returns a [`BuildRecord`] beside the image; SBOM
//! catalogers, the scan gate, provenance, image checks, size reports and the `--metadata-file`
//! read it instead of guessing from the image. For an image ocibuild did not build there is no
//! record, and those readers fall back to the image's filesystem.
//!
//! The record says, per platform: the image (manifest, config, layers with where each layer
//! came from), the bases it was built on (with the Debian packages ocibuild placed in them), the
//! toolchain roots the steps ran in (never part of the image), the app's lockfiles (which say what
//! is a development-only dependency), and every step with its content key and whether it ran or
//! came from the cache. It holds no secrets (a `--secret` is named by its id only), no host paths
//! and no timestamps, so the same build gives the same record on any machine (durations aside).
//!
//! May depend on `ocibuild-oci` (digests, descriptors) and serde only; must never do I/O beyond
//! (de)serialising. The JSON form is documented in `docs/build-record.md`.

use std::collections::BTreeMap;

use ocibuild_oci::digest::Digest;
use ocibuild_oci::image::Descriptor;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The schema version this crate writes and reads. A record with another major version is
/// refused with [`RecordError::Version`].
pub const SCHEMA_VERSION: u32 = 1;

/// What went wrong reading a record.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("build record is not valid JSON of schema {SCHEMA_VERSION}: {0}")]
    Json(#[from] serde_json::Error),
    #[error(
        "build record has schema version {found}, this ocibuild reads version {SCHEMA_VERSION}: \
         rebuild the image with this ocibuild, or use the ocibuild that wrote the record"
    )]
    Version { found: u32 },
    #[error("build record has no image for platform {platform} (it has: {available})")]
    NoPlatform { platform: String, available: String },
}

/// Everything one `ocibuild build` made and knows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildRecord {
    pub schema_version: u32,
    /// Who built it (the SLSA provenance's builder id comes from here).
    pub builder: Builder,
    /// Which frontend lowered the build, and its own facts.
    pub frontend: Frontend,
    /// The source the build read.
    pub source: Source,
    /// The parameters that shaped the build (never secret values).
    pub parameters: Parameters,
    /// One image per platform, in the order of `--platform`.
    pub images: Vec<PlatformImage>,
    /// The image index, for a multi-platform build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<Descriptor>,
    /// Every step of every platform, in the order they finished.
    #[serde(default)]
    pub steps: Vec<Step>,
}

/// The builder's identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Builder {
    /// `ocibuild`.
    pub id: String,
    /// The ocibuild version (`CARGO_PKG_VERSION` of the binary).
    pub version: String,
}

impl Builder {
    /// ocibuild at `version`.
    pub fn ocibuild(version: &str) -> Self {
        Self {
            id: "ocibuild".to_string(),
            version: version.to_string(),
        }
    }
}

/// The frontend and what only it knows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Frontend {
    /// `ocibuild build -f Dockerfile CONTEXT`.
    Dockerfile {
        /// The Dockerfile's path relative to the context (or its file name when outside it).
        file: String,
        /// `--target`, if given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<String>,
        /// The stages built, in order.
        stages: Vec<String>,
    },
    /// `ocibuild build DIR` without a Dockerfile.
    ZeroConfig {
        /// `go`, `node`, `python`, `java`.
        language: String,
        /// What the builder detected and chose, as `--explain` says it (`entrypoint`,
        /// `package_manager`, `lockfile`, …).
        #[serde(default)]
        facts: BTreeMap<String, String>,
    },
}

/// Where the source came from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// The VCS revision (`.git` HEAD), when the context is a checkout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// The repository URL (remote `origin`), credentials stripped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The digest of the context's content as the build read it (`.dockerignore` applied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_digest: Option<Digest>,
}

/// The build's parameters: what provenance lists as external parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parameters {
    /// `--build-arg`s as given (values included: build args are not secrets; use `--secret`).
    #[serde(default)]
    pub build_args: BTreeMap<String, String>,
    /// `--secret` ids: names only, never values or sources.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// The target platforms.
    #[serde(default)]
    pub platforms: Vec<String>,
    /// `SOURCE_DATE_EPOCH` the image's times follow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_date_epoch: Option<u64>,
    /// Other flags that change the result (`--network`, `--distro`, `--compression`, …).
    #[serde(default)]
    pub flags: BTreeMap<String, String>,
}

/// The image of one platform.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformImage {
    /// `os/arch[/variant]`.
    pub platform: String,
    pub manifest: Descriptor,
    pub config: Descriptor,
    /// The manifest's layers, in order, each with its diff_id and origin.
    pub layers: Vec<Layer>,
    /// The bases the final image stands on (zero-config: the runtime base; Dockerfile: the final
    /// stage's `FROM`, then the bases of the stages it copies from, marked `in_image: false`).
    #[serde(default)]
    pub bases: Vec<Base>,
    /// The toolchain roots the steps ran in (never in the image).
    #[serde(default)]
    pub toolchains: Vec<Toolchain>,
    /// The app's lockfiles the build read.
    #[serde(default)]
    pub lockfiles: Vec<Lockfile>,
    /// Paths of the image the build produced (binaries, app dirs), with their layer.
    #[serde(default)]
    pub outputs: Vec<Output>,
}

impl PlatformImage {
    /// The compressed size of the image: config plus layers.
    pub fn compressed_size(&self) -> u64 {
        self.config.size + self.layers.iter().map(|l| l.descriptor.size).sum::<u64>()
    }

    /// The layer with this diff_id, and its index.
    pub fn layer_by_diff_id(&self, diff_id: &Digest) -> Option<(usize, &Layer)> {
        self.layers
            .iter()
            .enumerate()
            .find(|(_, l)| &l.diff_id == diff_id)
    }

    /// Every Debian package placed in the image (the bases that are in the image).
    pub fn debian_packages(&self) -> impl Iterator<Item = &DebianPackage> {
        self.bases
            .iter()
            .filter(|b| b.in_image)
            .filter_map(|b| b.debian.as_ref())
            .flat_map(|d| d.packages.iter())
    }
}

/// One layer of the image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    pub descriptor: Descriptor,
    pub diff_id: Digest,
    pub origin: LayerOrigin,
}

/// Where a layer came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LayerOrigin {
    /// A layer of a base: `base` indexes [`PlatformImage::bases`]; `name` is the base's own name
    /// for it (a Debian base's layer names its profile, e.g. `cc`, `python3`).
    Base {
        base: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// Made by a step: `step` is [`Step::id`].
    Step { step: String },
    /// A named layer of a zero-config builder (`deps`, `app`, `snapshots`, `writable`, …).
    App { name: String },
}

/// A base image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Base {
    /// The stage name (Dockerfile) or `runtime` (zero-config).
    pub name: String,
    /// What the build named: `FROM` as written after expansion, a `--build-context`, or a Debian
    /// base profile (`static:nonroot`, `python3:nonroot`).
    pub reference: String,
    /// The base's manifest digest (`None` for `scratch`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    /// Whether its layers are part of the final image (false: a build stage's base).
    pub in_image: bool,
    /// For a base ocibuild assembled from Debian packages: the packages, from its lock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debian: Option<DebianSet>,
}

/// A toolchain root: the Debian packages the steps ran over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Toolchain {
    /// The profile (`go`, `node-build`, `python-build`, `java-build`, `build-base`).
    pub name: String,
    /// The lock key the root is stored under (`engine/rootfs/lock-<key>`): its identity.
    pub lock_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debian: Option<DebianSet>,
}

/// A set of Debian packages from one release and architecture.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DebianSet {
    /// `trixie`, `bookworm`, …
    pub release: String,
    /// Debian's architecture name (`amd64`, `arm64`).
    pub architecture: String,
    pub packages: Vec<DebianPackage>,
}

/// One Debian package.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DebianPackage {
    pub name: String,
    pub version: String,
    pub architecture: String,
    /// The source package, when it differs from the name (advisories name source packages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The source version, when it differs from `version` (binNMUs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    /// The `.deb`'s SHA-256, from the signed index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The layer (name) of its base it was placed in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
}

impl DebianPackage {
    /// The package's purl (`pkg:deb/debian/NAME@VERSION?arch=ARCH&distro=debian-RELEASE`).
    pub fn purl(&self, release: Option<&str>) -> String {
        let mut p = format!(
            "pkg:deb/debian/{}@{}?arch={}",
            purl_escape(&self.name),
            purl_escape(&self.version),
            purl_escape(&self.architecture)
        );
        if let Some(r) = release {
            p.push_str("&distro=debian-");
            p.push_str(&purl_escape(r));
        }
        p
    }
}

/// Percent-encode what a purl's name, version or qualifier value must not carry raw.
fn purl_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' | b'~' | b'+' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A lockfile of the app.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lockfile {
    /// The path relative to the context (`package-lock.json`, `services/api/go.sum`).
    pub path: String,
    pub kind: LockfileKind,
    /// SHA-256 of the file as read.
    pub sha256: String,
    /// How many packages it pins (when the builder parsed it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packages: Option<u64>,
}

/// The kinds of lockfile the builders read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LockfileKind {
    GoSum,
    NpmLock,
    YarnLock,
    PnpmLock,
    UvLock,
    PoetryLock,
    PipfileLock,
    PdmLock,
    Requirements,
    MavenPom,
    Other,
}

impl LockfileKind {
    /// The kind a file name says, if it is a lockfile the builders know.
    pub fn of_file_name(name: &str) -> Option<Self> {
        Some(match name {
            "go.sum" => Self::GoSum,
            "package-lock.json" | "npm-shrinkwrap.json" => Self::NpmLock,
            "yarn.lock" => Self::YarnLock,
            "pnpm-lock.yaml" => Self::PnpmLock,
            "uv.lock" => Self::UvLock,
            "poetry.lock" => Self::PoetryLock,
            "Pipfile.lock" => Self::PipfileLock,
            "pdm.lock" => Self::PdmLock,
            "requirements.txt" => Self::Requirements,
            "pom.xml" => Self::MavenPom,
            _ => return None,
        })
    }
}

/// A path the build produced in the image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    /// Absolute path in the image (`/app/server`, `/app/node_modules`).
    pub path: String,
    /// What it is: `binary`, `dependencies`, `app`, `classes`, …
    pub kind: String,
    /// Index into [`PlatformImage::layers`].
    pub layer: usize,
}

/// One step of the build.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Unique within the record: `<stage>/<n>` (Dockerfile) or the builder's step name.
    pub id: String,
    /// The stage it belongs to.
    pub stage: String,
    /// What it does, as the user reads it (`RUN go build …`, `npm ci --omit=dev`).
    pub name: String,
    /// The platform it was built for.
    pub platform: String,
    /// Its content key (the cache key).
    pub key: String,
    pub status: StepStatus,
    /// The layer it made, if any (its digest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<Digest>,
}

/// Whether a step ran or was taken from a cache.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum StepStatus {
    /// It ran, for this many wall seconds.
    Ran { seconds: f64 },
    /// Taken from the local store or a remote cache (`local`, `azblob`, `registry`, `inline`…).
    Cached { from: String },
}

impl BuildRecord {
    /// A record with nothing built yet.
    pub fn new(builder: Builder, frontend: Frontend) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            builder,
            frontend,
            source: Source::default(),
            parameters: Parameters::default(),
            images: Vec::new(),
            index: None,
            steps: Vec::new(),
        }
    }

    /// Parse a record, refusing another schema version.
    pub fn from_json(bytes: &[u8]) -> Result<Self, RecordError> {
        #[derive(Deserialize)]
        struct Probe {
            schema_version: u32,
        }
        let probe: Probe = serde_json::from_slice(bytes)?;
        if probe.schema_version != SCHEMA_VERSION {
            return Err(RecordError::Version {
                found: probe.schema_version,
            });
        }
        Ok(serde_json::from_slice(bytes)?)
    }

    /// The record as pretty JSON.
    pub fn to_json(&self) -> Vec<u8> {
        // A record is plain data (strings, numbers, maps with string keys): it always serialises.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// The image of `platform` (`os/arch[/variant]`).
    pub fn image(&self, platform: &str) -> Result<&PlatformImage, RecordError> {
        self.images
            .iter()
            .find(|i| i.platform == platform)
            .ok_or_else(|| RecordError::NoPlatform {
                platform: platform.to_string(),
                available: self
                    .images
                    .iter()
                    .map(|i| i.platform.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// The digest users refer to: the index for a multi-platform build, else the manifest.
    pub fn digest(&self) -> Option<&Digest> {
        self.index
            .as_ref()
            .map(|d| &d.digest)
            .or_else(|| self.images.first().map(|i| &i.manifest.digest))
    }

    /// Steps that ran, and steps taken from a cache.
    pub fn step_counts(&self) -> (usize, usize) {
        let ran = self
            .steps
            .iter()
            .filter(|s| matches!(s.status, StepStatus::Ran { .. }))
            .count();
        (ran, self.steps.len() - ran)
    }

    /// The `--metadata-file` object, the same for both frontends (docker buildx's keys, then
    /// ocibuild's). `tags` are the image names the build was given; `extra` adds keys later
    /// stages of the pipeline own (`ocibuild.sbom`, `ocibuild.signatures`, …).
    pub fn metadata(&self, tags: &[String], extra: BTreeMap<String, Value>) -> Value {
        let (ran, cached) = self.step_counts();
        let mut m = serde_json::Map::new();
        if let Some(d) = self.digest() {
            m.insert("containerimage.digest".into(), json!(d.to_string()));
        }
        if let Some(desc) = self
            .index
            .as_ref()
            .or(self.images.first().map(|i| &i.manifest))
        {
            m.insert("containerimage.descriptor".into(), json!(desc));
        }
        if let [one] = self.images.as_slice() {
            m.insert(
                "containerimage.config.digest".into(),
                json!(one.config.digest.to_string()),
            );
        }
        m.insert("image.name".into(), json!(tags.join(",")));
        m.insert("ocibuild.frontend".into(), json!(self.frontend));
        m.insert("ocibuild.steps.ran".into(), json!(ran));
        m.insert("ocibuild.steps.cached".into(), json!(cached));
        m.insert(
            "ocibuild.steps".into(),
            json!(
                self.steps
                    .iter()
                    .map(|s| {
                        let mut o = json!({"id": s.id, "stage": s.stage, "name": s.name, "platform": s.platform});
                        match &s.status {
                            StepStatus::Ran { seconds } => {
                                o["ran"] = json!(true);
                                o["seconds"] = json!(seconds);
                            }
                            StepStatus::Cached { from } => {
                                o["ran"] = json!(false);
                                o["cached_from"] = json!(from);
                            }
                        }
                        o
                    })
                    .collect::<Vec<_>>()
            ),
        );
        m.insert(
            "ocibuild.platforms".into(),
            json!(self.images.iter().map(|i| &i.platform).collect::<Vec<_>>()),
        );
        m.insert(
            "ocibuild.images".into(),
            json!(
                self.images
                    .iter()
                    .map(|i| json!({
                        "platform": i.platform,
                        "digest": i.manifest.digest.to_string(),
                        "size": i.compressed_size(),
                        "layers": i.layers.iter().map(|l| json!({
                            "digest": l.descriptor.digest.to_string(),
                            "size": l.descriptor.size,
                            "diff_id": l.diff_id.to_string(),
                            "media_type": l.descriptor.media_type,
                            "origin": l.origin,
                        })).collect::<Vec<_>>(),
                    }))
                    .collect::<Vec<_>>()
            ),
        );
        if let [one] = self.images.as_slice() {
            m.insert("ocibuild.size".into(), json!(one.compressed_size()));
        }
        for (k, v) in extra {
            m.insert(k, v);
        }
        Value::Object(m)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn desc(media: &str, byte: u8, size: u64) -> Descriptor {
        Descriptor::new(media, Digest::of_bytes(&[byte]), size)
    }

    fn sample() -> BuildRecord {
        let mut r = BuildRecord::new(
            Builder::ocibuild("0.1.0"),
            Frontend::ZeroConfig {
                language: "go".into(),
                facts: BTreeMap::from([("entrypoint".into(), "/app/server".into())]),
            },
        );
        r.source.revision = Some("0123abcd".into());
        r.parameters.platforms = vec!["linux/amd64".into()];
        r.parameters.secrets = vec!["npmrc".into()];
        r.images.push(PlatformImage {
            platform: "linux/amd64".into(),
            manifest: desc("application/vnd.oci.image.manifest.v1+json", 1, 500),
            config: desc("application/vnd.oci.image.config.v1+json", 2, 100),
            layers: vec![
                Layer {
                    descriptor: desc("application/vnd.oci.image.layer.v1.tar+gzip", 3, 1000),
                    diff_id: Digest::of_bytes(b"base"),
                    origin: LayerOrigin::Base {
                        base: 0,
                        name: Some("static".into()),
                    },
                },
                Layer {
                    descriptor: desc("application/vnd.oci.image.layer.v1.tar+gzip", 4, 2000),
                    diff_id: Digest::of_bytes(b"app"),
                    origin: LayerOrigin::App { name: "app".into() },
                },
            ],
            bases: vec![Base {
                name: "runtime".into(),
                reference: "static:nonroot".into(),
                digest: Some(Digest::of_bytes(b"runtime")),
                in_image: true,
                debian: Some(DebianSet {
                    release: "trixie".into(),
                    architecture: "amd64".into(),
                    packages: vec![DebianPackage {
                        name: "libc6".into(),
                        version: "2.41-12".into(),
                        architecture: "amd64".into(),
                        source: Some("glibc".into()),
                        source_version: None,
                        sha256: None,
                        layer: Some("static".into()),
                    }],
                }),
            }],
            toolchains: vec![Toolchain {
                name: "build-base".into(),
                lock_key: "15f3cd198779c3d3".into(),
                debian: None,
            }],
            lockfiles: vec![Lockfile {
                path: "go.sum".into(),
                kind: LockfileKind::GoSum,
                sha256: "00".repeat(32),
                packages: Some(3),
            }],
            outputs: vec![Output {
                path: "/app/server".into(),
                kind: "binary".into(),
                layer: 1,
            }],
        });
        r.steps = vec![
            Step {
                id: "go-build".into(),
                stage: "build".into(),
                name: "go build".into(),
                platform: "linux/amd64".into(),
                key: "k1".into(),
                status: StepStatus::Ran { seconds: 7.5 },
                layer: None,
            },
            Step {
                id: "app".into(),
                stage: "final".into(),
                name: "app layer".into(),
                platform: "linux/amd64".into(),
                key: "k2".into(),
                status: StepStatus::Cached {
                    from: "local".into(),
                },
                layer: Some(Digest::of_bytes(&[4])),
            },
        ];
        r
    }

    #[test]
    fn round_trips_through_json() {
        let r = sample();
        let back = BuildRecord::from_json(&r.to_json()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn another_schema_version_is_refused_with_what_to_do() {
        let mut v: Value = serde_json::from_slice(&sample().to_json()).unwrap();
        v["schema_version"] = json!(2);
        let err = BuildRecord::from_json(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(matches!(err, RecordError::Version { found: 2 }));
        assert!(err.to_string().contains("rebuild the image"), "{err}");
        assert!(BuildRecord::from_json(b"{").is_err());
    }

    #[test]
    fn unknown_fields_are_refused() {
        let mut v: Value = serde_json::from_slice(&sample().to_json()).unwrap();
        v["images"][0]["surprise"] = json!(1);
        assert!(BuildRecord::from_json(&serde_json::to_vec(&v).unwrap()).is_err());
    }

    #[test]
    fn metadata_has_the_documented_keys_for_both_frontends() {
        let r = sample();
        let m = r.metadata(&["reg/app:1".into()], BTreeMap::new());
        assert_eq!(
            m["containerimage.digest"],
            json!(r.images[0].manifest.digest.to_string())
        );
        assert_eq!(m["ocibuild.steps.ran"], json!(1));
        assert_eq!(m["ocibuild.steps.cached"], json!(1));
        assert_eq!(m["ocibuild.platforms"], json!(["linux/amd64"]));
        assert_eq!(m["ocibuild.size"], json!(3100));
        assert_eq!(m["image.name"], json!("reg/app:1"));
        assert_eq!(
            m["ocibuild.images"][0]["layers"][1]["origin"]["kind"],
            "app"
        );
        assert_eq!(
            m["ocibuild.images"][0]["layers"][1]["diff_id"],
            json!(Digest::of_bytes(b"app").to_string())
        );
        let mut df = r.clone();
        df.frontend = Frontend::Dockerfile {
            file: "Dockerfile".into(),
            target: Some("production".into()),
            stages: vec!["build".into(), "production".into()],
        };
        let m2 = df.metadata(&[], BTreeMap::from([("ocibuild.sbom".into(), json!([]))]));
        assert_eq!(m2["ocibuild.frontend"]["kind"], "dockerfile");
        assert_eq!(m2["ocibuild.sbom"], json!([]));
    }

    #[test]
    fn a_multi_platform_record_is_referred_to_by_its_index() {
        let mut r = sample();
        let mut arm = r.images[0].clone();
        arm.platform = "linux/arm64".into();
        arm.manifest = desc("application/vnd.oci.image.manifest.v1+json", 9, 500);
        r.images.push(arm);
        let index = desc("application/vnd.oci.image.index.v1+json", 10, 700);
        r.index = Some(index.clone());
        assert_eq!(r.digest(), Some(&index.digest));
        let m = r.metadata(&[], BTreeMap::new());
        assert!(m.get("ocibuild.size").is_none());
        assert!(m.get("containerimage.config.digest").is_none());
        assert!(r.image("linux/arm64").is_ok());
        let err = r.image("linux/s390x").unwrap_err().to_string();
        assert!(err.contains("linux/amd64, linux/arm64"), "{err}");
    }

    #[test]
    fn debian_purls_and_packages_in_the_image() {
        let r = sample();
        let img = &r.images[0];
        let pkgs: Vec<_> = img.debian_packages().collect();
        assert_eq!(pkgs.len(), 1);
        assert_eq!(
            pkgs[0].purl(Some("trixie")),
            "pkg:deb/debian/libc6@2.41-12?arch=amd64&distro=debian-trixie"
        );
        let epoch = DebianPackage {
            version: "1:2.3~rc1".into(),
            ..pkgs[0].clone()
        };
        assert_eq!(
            epoch.purl(None),
            "pkg:deb/debian/libc6@1%3A2.3~rc1?arch=amd64"
        );
        assert_eq!(
            img.layer_by_diff_id(&Digest::of_bytes(b"app"))
                .map(|(i, _)| i),
            Some(1)
        );
        assert_eq!(
            LockfileKind::of_file_name("uv.lock"),
            Some(LockfileKind::UvLock)
        );
        assert_eq!(LockfileKind::of_file_name("main.go"), None);
    }
}
