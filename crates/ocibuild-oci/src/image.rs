//! The image model: descriptors, manifests, indexes and configs, one `ImageSource` trait for every
//! place an image can be read from, and verified reads.
//!
//! Reading keeps the original bytes of every manifest, index and config, and their digest: JSON
//! that was read is never re-serialised. Writing serialises our own structs, whose maps are
//! `BTreeMap`s, so the same image always gives the same bytes (oci-spec's `HashMap` annotations
//! would not). Configs are edited as JSON values (sorted keys), so fields this crate does not model
//! (Docker's `Healthcheck`, `OnBuild`, …) survive a rebase.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read};

use serde::{Deserialize, Serialize};

use crate::digest::{Digest, HashingReader};
use crate::error::{OciError, Result};
use crate::media;

/// Manifests, indexes and configs larger than this are refused (registries cap manifests at 4 MiB).
pub const MAX_JSON_BLOB: u64 = 16 * 1024 * 1024;

fn is_empty_map(m: &BTreeMap<String, String>) -> bool {
    m.is_empty()
}

/// An OCI content descriptor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "is_empty_map")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    pub fn new(media_type: impl Into<String>, digest: Digest, size: u64) -> Self {
        Self {
            media_type: media_type.into(),
            digest,
            size,
            urls: None,
            annotations: BTreeMap::new(),
            platform: None,
            artifact_type: None,
        }
    }

    /// The descriptor of a JSON blob.
    pub fn of_bytes(media_type: impl Into<String>, bytes: &[u8]) -> Self {
        Self::new(media_type, Digest::of_bytes(bytes), bytes.len() as u64)
    }

    /// `org.opencontainers.image.ref.name`, the tag inside an OCI layout.
    pub fn ref_name(&self) -> Option<&str> {
        self.annotations.get(REF_NAME).map(String::as_str)
    }
}

pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A platform: `os/architecture[/variant]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// Parse `linux/amd64`, `linux/arm64/v8`, `linux/arm/v7`.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |why: &str| {
            OciError::invalid(
                "platform",
                format!(
                    "`{s}`: {why} (expected OS/ARCH[/VARIANT], like linux/amd64 or linux/arm64/v8)"
                ),
            )
        };
        let parts: Vec<&str> = s.split('/').collect();
        if parts.len() < 2 || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(bad("wrong number of parts"));
        }
        if parts.iter().any(|p| {
            !p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        }) {
            return Err(bad("unexpected characters"));
        }
        let os = parts[0].to_ascii_lowercase();
        let architecture = normalize_arch(&parts[1].to_ascii_lowercase()).to_string();
        let mut variant = parts.get(2).map(|v| v.to_ascii_lowercase());
        if architecture == "arm64" && variant.as_deref() == Some("v8") {
            variant = None;
        }
        Ok(Self {
            architecture,
            os,
            os_version: None,
            os_features: None,
            variant,
        })
    }

    /// The platform this process runs on.
    pub fn host() -> Self {
        let architecture = normalize_arch(std::env::consts::ARCH).to_string();
        Self {
            architecture,
            os: "linux".into(),
            os_version: None,
            os_features: None,
            variant: None,
        }
    }

    /// Does `other` (from an index) satisfy this request?
    pub fn matches(&self, other: &Platform) -> bool {
        let norm_variant = |p: &Platform| match (p.architecture.as_str(), p.variant.as_deref()) {
            ("arm64", Some("v8")) => None,
            (_, v) => v.map(str::to_string),
        };
        self.os == other.os
            && self.architecture == normalize_arch(&other.architecture)
            && (self.variant.is_none() || norm_variant(self) == norm_variant(other))
    }
}

fn normalize_arch(a: &str) -> &str {
    match a {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        "i386" | "i686" | "x86" => "386",
        "powerpc64le" => "ppc64le",
        other => other,
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// An image manifest (OCI, or Docker schema2 — same shape).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "is_empty_map")]
    pub annotations: BTreeMap<String, String>,
}

/// An image index (OCI, or a Docker manifest list).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "is_empty_map")]
    pub annotations: BTreeMap<String, String>,
}

impl Index {
    pub fn new() -> Self {
        Self {
            schema_version: 2,
            media_type: Some(media::OCI_INDEX.into()),
            artifact_type: None,
            manifests: Vec::new(),
            subject: None,
            annotations: BTreeMap::new(),
        }
    }
}

impl Default for Index {
    fn default() -> Self {
        Self::new()
    }
}

/// Serialise one of our own structs as compact JSON (the bytes that get digested).
pub fn to_json_bytes<T: Serialize>(v: &T, what: &str) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(OciError::json(what))
}

/// Anywhere an image can be read from: a layout dir, an archive, the content store, a registry.
pub trait ImageSource: Sync {
    /// Where this is, for messages: `oci:/path/to/dir:tag`.
    fn describe(&self) -> String;
    /// The descriptor of the selected image (a manifest or an index).
    fn root(&self) -> Result<Descriptor>;
    /// The raw bytes of a blob, unverified; callers verify (`read_verified`, `VerifyingReader`).
    fn open_blob(&self, desc: &Descriptor) -> Result<Box<dyn Read + '_>>;
    /// A file holding the blob's bytes, already verified against its digest when it was stored
    /// (the content store), so writers may copy it in the kernel instead of streaming it.
    fn verified_blob_path(&self, _desc: &Descriptor) -> Option<std::path::PathBuf> {
        None
    }
    /// A file on disk holding the blob as stored (not verified here), for readers that need to
    /// seek (resumed uploads) and check the digest elsewhere.
    fn blob_file(&self, desc: &Descriptor) -> Option<std::path::PathBuf> {
        self.verified_blob_path(desc)
    }
}

/// Read a small blob (manifest, index, config) fully and check its size and digest.
pub fn read_verified(src: &dyn ImageSource, desc: &Descriptor, what: &str) -> Result<Vec<u8>> {
    if desc.size > MAX_JSON_BLOB {
        return Err(OciError::defect(
            src.describe(),
            format!(
                "{what} {} claims {} bytes, more than the {} allowed for JSON blobs",
                desc.digest, desc.size, MAX_JSON_BLOB
            ),
        ));
    }
    let r = src.open_blob(desc)?;
    let mut buf = Vec::with_capacity(desc.size as usize);
    r.take(desc.size + 1)
        .read_to_end(&mut buf)
        .map_err(OciError::stream(format!(
            "reading {what} {} from {}",
            desc.digest,
            src.describe()
        )))?;
    if buf.len() as u64 != desc.size {
        return Err(OciError::SizeMismatch {
            what: format!("{what} {} in {}", desc.digest, src.describe()),
            expected: desc.size,
            actual: if buf.len() as u64 > desc.size {
                desc.size + 1
            } else {
                buf.len() as u64
            },
        });
    }
    let actual = Digest::of_bytes(&buf);
    if actual != desc.digest {
        return Err(OciError::DigestMismatch {
            what: format!("{what} in {}", src.describe()),
            expected: desc.digest.clone(),
            actual,
        });
    }
    Ok(buf)
}

/// Wraps a blob stream: at end of stream, fails unless the size and digest match the descriptor.
/// Reading past the expected size also fails.
pub struct VerifyingReader<R> {
    inner: HashingReader<R>,
    expected: Descriptor,
    what: String,
    done: bool,
}

impl<R: Read> VerifyingReader<R> {
    pub fn new(inner: R, expected: &Descriptor, what: impl Into<String>) -> Self {
        Self {
            inner: HashingReader::new(inner),
            expected: expected.clone(),
            what: what.into(),
            done: false,
        }
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        let count = self.inner.count();
        if count > self.expected.size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} {} is larger than the {} bytes its descriptor says",
                    self.what, self.expected.digest, self.expected.size
                ),
            ));
        }
        if n == 0 && !buf.is_empty() {
            self.done = true;
            if count != self.expected.size {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "{} {} is truncated: {} of {} bytes",
                        self.what, self.expected.digest, count, self.expected.size
                    ),
                ));
            }
            let d = self.inner.current();
            if d != self.expected.digest {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{} does not match its digest: expected {}, content hashes to {}",
                        self.what, self.expected.digest, d
                    ),
                ));
            }
        }
        Ok(n)
    }
}

/// The verified JSON of one image: its manifest and config, and the index it was chosen from.
#[derive(Clone, Debug)]
pub struct Image {
    pub index: Option<(Descriptor, Vec<u8>, Index)>,
    pub manifest_desc: Descriptor,
    pub manifest_bytes: Vec<u8>,
    pub manifest: Manifest,
    pub config_bytes: Vec<u8>,
    pub config: serde_json::Value,
}

impl Image {
    /// The layers' uncompressed digests from the config.
    pub fn diff_ids(&self) -> Result<Vec<Digest>> {
        diff_ids(&self.config)
    }

    pub fn platform(&self) -> Option<Platform> {
        let s = |k: &str| {
            self.config
                .get(k)
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        Some(Platform {
            architecture: s("architecture")?,
            os: s("os")?,
            os_version: s("os.version"),
            os_features: None,
            variant: s("variant"),
        })
    }
}

/// `rootfs.diff_ids` of a config.
pub fn diff_ids(config: &serde_json::Value) -> Result<Vec<Digest>> {
    let arr = config
        .pointer("/rootfs/diff_ids")
        .and_then(|v| v.as_array())
        .ok_or_else(|| OciError::invalid("image config", "it has no rootfs.diff_ids array"))?;
    arr.iter()
        .map(|v| {
            v.as_str()
                .ok_or_else(|| {
                    OciError::invalid("image config", "a rootfs.diff_ids entry is not a string")
                })
                .and_then(Digest::parse)
        })
        .collect()
}

/// Parse a manifest's bytes, refusing schema1 and anything that is not an image manifest.
pub fn parse_manifest(bytes: &[u8], desc: &Descriptor, location: &str) -> Result<Manifest> {
    let peek: serde_json::Value = serde_json::from_slice(bytes).map_err(OciError::json(
        format!("manifest {} in {location}", desc.digest),
    ))?;
    let schema = peek.get("schemaVersion").and_then(|v| v.as_u64());
    let mt = peek
        .get("mediaType")
        .and_then(|v| v.as_str())
        .unwrap_or(desc.media_type.as_str());
    if schema == Some(1) || media::is_schema1(mt) || media::is_schema1(&desc.media_type) {
        return Err(OciError::Unsupported {
            what: format!("manifest {} in {location} (Docker schema 1)", desc.digest),
            hint: "schema 1 manifests are deprecated and unsigned; re-push the image with a current tool (docker, skopeo, crane) to convert it to schema 2".into(),
        });
    }
    if schema != Some(2) {
        return Err(OciError::defect(
            location,
            format!(
                "manifest {} has schemaVersion {:?}, expected 2",
                desc.digest, schema
            ),
        ));
    }
    serde_json::from_slice(bytes).map_err(OciError::json(format!(
        "manifest {} in {location}",
        desc.digest
    )))
}

/// Parse an index's bytes.
pub fn parse_index(bytes: &[u8], desc: &Descriptor, location: &str) -> Result<Index> {
    let idx: Index = serde_json::from_slice(bytes).map_err(OciError::json(format!(
        "index {} in {location}",
        desc.digest
    )))?;
    if idx.schema_version != 2 {
        return Err(OciError::defect(
            location,
            format!(
                "index {} has schemaVersion {}, expected 2",
                desc.digest, idx.schema_version
            ),
        ));
    }
    Ok(idx)
}

/// Resolve the selected image of a source to one platform's manifest and config, verifying the
/// digest and size of each JSON blob on the way.
pub fn load_image(src: &dyn ImageSource, platform: Option<&Platform>) -> Result<Image> {
    let loc = src.describe();
    let mut desc = src.root()?;
    let mut index = None;
    for _depth in 0..4 {
        if media::is_index(&desc.media_type) {
            let bytes = read_verified(src, &desc, "index")?;
            let idx = parse_index(&bytes, &desc, &loc)?;
            let chosen = choose_manifest(&idx, platform, &loc)?;
            index = Some((desc.clone(), bytes, idx));
            desc = chosen;
            continue;
        }
        if media::is_schema1(&desc.media_type) || media::is_manifest(&desc.media_type) {
            let manifest_bytes = read_verified(src, &desc, "manifest")?;
            let manifest = parse_manifest(&manifest_bytes, &desc, &loc)?;
            if !media::is_config(&manifest.config.media_type) {
                return Err(OciError::defect(
                    &loc,
                    format!(
                        "manifest {} has config media type `{}`: not a container image (an artifact?)",
                        desc.digest, manifest.config.media_type
                    ),
                ));
            }
            let config_bytes = read_verified(src, &manifest.config, "config")?;
            let config: serde_json::Value = serde_json::from_slice(&config_bytes).map_err(
                OciError::json(format!("config {} in {loc}", manifest.config.digest)),
            )?;
            if !config.is_object() {
                return Err(OciError::defect(
                    &loc,
                    format!("config {} is not a JSON object", manifest.config.digest),
                ));
            }
            return Ok(Image {
                index,
                manifest_desc: desc,
                manifest_bytes,
                manifest,
                config_bytes,
                config,
            });
        }
        return Err(OciError::defect(
            &loc,
            format!(
                "{} has media type `{}`, which is neither an image manifest nor an index",
                desc.digest, desc.media_type
            ),
        ));
    }
    Err(OciError::defect(
        &loc,
        "indexes nest more than 4 levels deep",
    ))
}

fn choose_manifest(idx: &Index, platform: Option<&Platform>, loc: &str) -> Result<Descriptor> {
    let images: Vec<&Descriptor> = idx
        .manifests
        .iter()
        .filter(|d| media::is_manifest(&d.media_type) || media::is_index(&d.media_type))
        // attestation manifests (BuildKit's unknown/unknown) are not images
        .filter(|d| d.platform.as_ref().is_none_or(|p| p.os != "unknown"))
        .collect();
    let available = || {
        images
            .iter()
            .map(|d| {
                d.platform.as_ref().map_or_else(
                    || format!("{} (no platform)", d.digest.short()),
                    |p| p.to_string(),
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let want = platform.cloned();
    if want.is_none() && images.len() == 1 {
        return Ok(images[0].clone());
    }
    let want = want.unwrap_or_else(Platform::host);
    images
        .iter()
        .find(|d| d.platform.as_ref().is_some_and(|p| want.matches(p)))
        .map(|d| (*d).clone())
        .ok_or_else(|| OciError::defect(loc, format!("no image for platform {want} in the index (available: {}); choose one with --platform", available())))
}

/// The JSON of a new image config with sorted keys: the bytes that get digested.
pub fn config_bytes(config: &serde_json::Value) -> Result<Vec<u8>> {
    to_json_bytes(config, "image config")
}

/// The manifest of a new image.
pub fn new_manifest(
    config: Descriptor,
    layers: Vec<Descriptor>,
    annotations: BTreeMap<String, String>,
) -> Manifest {
    Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.into()),
        artifact_type: None,
        config,
        layers,
        subject: None,
        annotations,
    }
}

/// RFC 3339 UTC (`2024-01-02T03:04:05Z`) for a Unix time, without a date library.
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // civil-from-days (Howard Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if mo <= 2 { y + 1 } else { y };
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn platform_parse_and_match() {
        let p = Platform::parse("linux/amd64").unwrap();
        assert_eq!(p.to_string(), "linux/amd64");
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux/amd64/v1/x").is_err());
        let arm = Platform::parse("linux/arm64/v8").unwrap();
        assert_eq!(arm.variant, None);
        let mut idx_arm = Platform::parse("linux/arm64").unwrap();
        idx_arm.variant = Some("v8".into());
        assert!(arm.matches(&idx_arm));
        assert!(!p.matches(&idx_arm));
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn descriptor_json_is_stable() {
        let mut d = Descriptor::of_bytes(media::OCI_MANIFEST, b"{}");
        d.annotations.insert("z".into(), "1".into());
        d.annotations.insert("a".into(), "2".into());
        let s = String::from_utf8(to_json_bytes(&d, "d").unwrap()).unwrap();
        assert!(s.find("\"a\"").unwrap() < s.find("\"z\"").unwrap(), "{s}");
        assert!(s.starts_with("{\"mediaType\""), "{s}");
    }

    struct Mem(Vec<(Descriptor, Vec<u8>)>, Descriptor);
    impl ImageSource for Mem {
        fn describe(&self) -> String {
            "memory".into()
        }
        fn root(&self) -> Result<Descriptor> {
            Ok(self.1.clone())
        }
        fn open_blob(&self, desc: &Descriptor) -> Result<Box<dyn Read + '_>> {
            let b = self
                .0
                .iter()
                .find(|(d, _)| d.digest == desc.digest)
                .map(|(_, b)| b.clone())
                .unwrap_or_default();
            Ok(Box::new(io::Cursor::new(b)))
        }
    }

    #[test]
    fn loads_and_verifies() {
        let cfg =
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
                .to_vec();
        let cd = Descriptor::of_bytes(media::OCI_CONFIG, &cfg);
        let m = new_manifest(cd.clone(), vec![], BTreeMap::new());
        let mb = to_json_bytes(&m, "m").unwrap();
        let md = Descriptor::of_bytes(media::OCI_MANIFEST, &mb);
        let src = Mem(
            vec![(cd.clone(), cfg.clone()), (md.clone(), mb.clone())],
            md.clone(),
        );
        let img = load_image(&src, None).unwrap();
        assert_eq!(img.manifest_bytes, mb);
        assert_eq!(img.platform().unwrap().to_string(), "linux/amd64");

        // corrupt config
        let mut bad = cfg.clone();
        bad[2] = b'X';
        let src = Mem(vec![(cd, bad), (md.clone(), mb)], md);
        let e = load_image(&src, None).unwrap_err();
        assert!(e.to_string().contains("does not match its digest"), "{e}");
    }

    #[test]
    fn verifying_reader_catches_defects() {
        let data = b"hello world".to_vec();
        let d = Descriptor::of_bytes(media::OCI_LAYER_TAR, &data);
        let mut out = Vec::new();
        VerifyingReader::new(&data[..], &d, "layer")
            .read_to_end(&mut out)
            .unwrap();
        let e = VerifyingReader::new(&data[..5], &d, "layer")
            .read_to_end(&mut out)
            .unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
        let mut other = data.clone();
        other[0] = b'H';
        let e = VerifyingReader::new(&other[..], &d, "layer")
            .read_to_end(&mut out)
            .unwrap_err();
        assert!(e.to_string().contains("digest"), "{e}");
    }
}
