//! Validation of a whole image: every reachable blob, read once.
//!
//! [`validate`] walks from the root descriptor of an [`ImageSource`] through nested indexes to
//! every image manifest, its config and its layers, and stops at the first defect, returning it as
//! an error that says which blob, which field, what was expected and what was found, and where
//! (`src.describe()`). What it checks is the union of what the independent validators in
//! `docs/peers.md` §2 catch (skopeo, umoci, oci-image-tool and the shell check), so an image that
//! passes here passes there too:
//!
//! - indexes: media type, size and digest, `schemaVersion` 2, `mediaType` consistent with the
//!   descriptor, every child is a manifest or an index (descended into);
//! - manifests: size and digest, `schemaVersion` 2 (schema 1 is refused), `mediaType` consistent,
//!   sha256 digests in every descriptor, an image config media type, known layer media types;
//! - configs: size and digest, `os`, `architecture`, `rootfs.type == "layers"`, one well-formed
//!   `rootfs.diff_ids` entry per layer, and the platform an index claims for it;
//! - layers, streamed in a single pass: size and digest of the blob, decompression per the media
//!   type, the diff_id of the uncompressed stream, and a tar that parses to its end.
//!
//! With [`ValidateOptions::strict`], each image's layers are also read as a filesystem, in
//! order, and [`ValidationReport::warnings`] lists what is valid but breaks images when applied:
//! a layer whose directory entry replaces a symlink of a lower layer (a `bin/` directory over a
//! merged-/usr base's `bin -> usr/bin` hides every program under `/usr/bin`).
//!
//! Memory stays bounded: JSON blobs are read through [`read_verified`] (at most [`MAX_JSON_BLOB`]),
//! layers are streamed and never read twice.
//!
//! [`MAX_JSON_BLOB`]: crate::image::MAX_JSON_BLOB

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::{self, Read};

use serde::Serialize;
use serde_json::Value;

use crate::digest::{Digest, HashingReader};
use crate::error::{OciError, Result};
use crate::image::{
    Descriptor, ImageSource, Index, Manifest, Platform, VerifyingReader, read_verified,
};
use crate::media::{self, Compression};

/// Indexes nest at most this deep (an index of indexes of manifests is depth 2).
const MAX_DEPTH: usize = 8;

/// What to check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidateOptions {
    /// Validate every image manifest of an index (default). When false, only the one image that
    /// would be used on this host: the only image of each index, else the host platform's.
    pub all_platforms: bool,
    /// Stream and check every layer blob (default). When false, layers are checked from their
    /// descriptors only (media type, and the diff_id count), and their blobs are not read.
    pub check_layers: bool,
    /// Also warn about layers that are well-formed but break the image when applied (see
    /// [`ValidationReport::warnings`]). Needs `check_layers`.
    pub strict: bool,
}

impl Default for ValidateOptions {
    fn default() -> Self {
        Self {
            all_platforms: true,
            check_layers: true,
            strict: false,
        }
    }
}

/// The role of a checked blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobKind {
    Index,
    Manifest,
    Config,
    Layer,
}

impl BlobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BlobKind::Index => "index",
            BlobKind::Manifest => "manifest",
            BlobKind::Config => "config",
            BlobKind::Layer => "layer",
        }
    }
}

impl fmt::Display for BlobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One blob that was read and found correct.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckedBlob {
    pub kind: BlobKind,
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    /// For layers: the digest of the uncompressed tar (equal to the config's diff_id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff_id: Option<Digest>,
}

/// What [`validate`] checked. A blob shared by several images (a layer common to two platforms)
/// is read and listed once.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ValidationReport {
    /// `src.describe()`.
    pub location: String,
    pub checked: Vec<CheckedBlob>,
    /// Image manifests validated.
    pub images: usize,
    /// Layers whose blob was not read: foreign / non-distributable layers absent from the source,
    /// or every layer when `check_layers` is off.
    pub layers_not_read: usize,
    /// With [`ValidateOptions::strict`]: what is valid but wrong, one sentence each (a layer
    /// replacing a lower layer's symlink with a directory).
    pub warnings: Vec<String>,
}

impl ValidationReport {
    /// Total bytes of the blobs checked.
    pub fn bytes(&self) -> u64 {
        self.checked.iter().map(|b| b.size).sum()
    }

    pub fn count(&self, kind: BlobKind) -> usize {
        self.checked.iter().filter(|b| b.kind == kind).count()
    }
}

/// Check everything reachable from `src.root()`, stop at the first defect and return it as an
/// error that names the blob, the field, the expected and the actual value, and the source.
pub fn validate(src: &dyn ImageSource, opts: &ValidateOptions) -> Result<ValidationReport> {
    let loc = src.describe();
    let root = src.root()?;
    let mut v = Validator {
        src,
        opts,
        loc: loc.clone(),
        report: ValidationReport {
            location: loc,
            ..ValidationReport::default()
        },
        seen: HashSet::new(),
        layers_seen: HashMap::new(),
        layer_paths: HashMap::new(),
    };
    v.node(&root, "the root descriptor".to_string(), None, 0)?;
    Ok(v.report)
}

struct Validator<'a> {
    src: &'a dyn ImageSource,
    opts: &'a ValidateOptions,
    loc: String,
    report: ValidationReport,
    /// JSON blobs already validated (an index may list the same manifest twice).
    seen: HashSet<Digest>,
    /// Layer blob digest → its diff_id, once streamed.
    layers_seen: HashMap<Digest, Digest>,
    /// With `strict`: layer blob digest → the filesystem entries it holds.
    layer_paths: HashMap<Digest, Vec<TarItem>>,
}

impl Validator<'_> {
    fn defect(&self, msg: impl Into<String>) -> OciError {
        OciError::defect(&self.loc, msg)
    }

    fn record(&mut self, kind: BlobKind, d: &Descriptor, diff_id: Option<Digest>) {
        self.report.checked.push(CheckedBlob {
            kind,
            digest: d.digest.clone(),
            size: d.size,
            media_type: d.media_type.clone(),
            diff_id,
        });
    }

    /// Read a JSON blob through `read_verified`, saying what it is (`role`) when it is missing or
    /// does not match its descriptor.
    fn read_json(&self, d: &Descriptor, what: &str, role: &str) -> Result<Value> {
        let bytes = read_verified(self.src, d, what).map_err(|e| with_role(e, role))?;
        serde_json::from_slice(&bytes).map_err(OciError::json(format!(
            "{what} {} ({role}) in {}",
            d.digest, self.loc
        )))
    }

    /// A manifest or an index, named `role` in messages (`manifests[1] of index sha256:…`).
    fn node(
        &mut self,
        d: &Descriptor,
        role: String,
        platform: Option<&Platform>,
        depth: usize,
    ) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(self.defect(format!(
                "indexes nest more than {MAX_DEPTH} levels deep at {} ({role})",
                d.digest
            )));
        }
        if media::is_schema1(&d.media_type) {
            return Err(self.defect(format!("{role} {} has media type `{}`: Docker schema 1 manifests are refused (deprecated and unsigned; re-push the image with a current tool to convert it to schema 2)", d.digest, d.media_type)));
        }
        if media::is_index(&d.media_type) {
            self.index(d, &role, depth)
        } else if media::is_manifest(&d.media_type) {
            self.manifest(d, &role, platform)
        } else {
            Err(self.defect(format!(
                "{role} {} has media type `{}`, which is neither an image manifest media type ({} or {}) nor an index media type ({} or {})",
                d.digest,
                d.media_type,
                media::OCI_MANIFEST,
                media::DOCKER_MANIFEST,
                media::OCI_INDEX,
                media::DOCKER_MANIFEST_LIST
            )))
        }
    }

    fn index(&mut self, d: &Descriptor, role: &str, depth: usize) -> Result<()> {
        if self.seen.contains(&d.digest) {
            return Ok(());
        }
        let name = format!("index {}", d.digest);
        let v = self.read_json(d, "index", &format!("named by {role}"))?;
        let obj = v
            .as_object()
            .ok_or_else(|| self.defect(format!("{name} is not a JSON object")))?;
        self.schema_version(obj, &name)?;
        self.media_type_field(obj, d, &name)?;
        let children = obj
            .get("manifests")
            .and_then(Value::as_array)
            .ok_or_else(|| self.defect(format!("{name} has no `manifests` array")))?;
        for (i, c) in children.iter().enumerate() {
            self.descriptor_fields(c, &format!("{name}: manifests[{i}]"))?;
        }
        if let Some(s) = obj.get("subject") {
            self.descriptor_fields(s, &format!("{name}: subject"))?;
        }
        let idx: Index = serde_json::from_value(v.clone())
            .map_err(OciError::json(format!("{name} in {}", self.loc)))?;
        for (i, c) in idx.manifests.iter().enumerate() {
            if media::is_schema1(&c.media_type) {
                return Err(self.defect(format!("{name}: manifests[{i}] ({}) has media type `{}`: Docker schema 1 manifests are refused", c.digest, c.media_type)));
            }
            if !media::is_manifest(&c.media_type) && !media::is_index(&c.media_type) {
                return Err(self.defect(format!(
                    "{name}: manifests[{i}] ({}) has media type `{}`, which is neither an image manifest nor an index media type",
                    c.digest, c.media_type
                )));
            }
        }
        self.seen.insert(d.digest.clone());
        self.record(BlobKind::Index, d, None);
        let chosen: Vec<usize> = if self.opts.all_platforms {
            (0..idx.manifests.len()).collect()
        } else {
            choose(&idx).into_iter().collect()
        };
        if chosen.is_empty() && !idx.manifests.is_empty() {
            return Err(self.defect(format!(
                "{name} has no image for this host's platform {}",
                Platform::host()
            )));
        }
        for i in chosen {
            let c = &idx.manifests[i];
            if is_attestation(c) {
                self.artifact(c, &format!("manifests[{i}] of {name}"))?;
                continue;
            }
            self.node(
                c,
                format!("manifests[{i}] of {name}"),
                c.platform.as_ref(),
                depth + 1,
            )?;
        }
        Ok(())
    }

    fn manifest(&mut self, d: &Descriptor, role: &str, platform: Option<&Platform>) -> Result<()> {
        if self.seen.contains(&d.digest) {
            return Ok(());
        }
        let name = format!("manifest {}", d.digest);
        let v = self.read_json(d, "manifest", &format!("named by {role}"))?;
        let obj = v
            .as_object()
            .ok_or_else(|| self.defect(format!("{name} is not a JSON object")))?;
        self.schema_version(obj, &name)?;
        self.media_type_field(obj, d, &name)?;
        let config = obj
            .get("config")
            .ok_or_else(|| self.defect(format!("{name} has no `config` descriptor")))?;
        self.descriptor_fields(config, &format!("{name}: config"))?;
        let layers = obj
            .get("layers")
            .and_then(Value::as_array)
            .ok_or_else(|| self.defect(format!("{name} has no `layers` array")))?;
        for (i, l) in layers.iter().enumerate() {
            self.descriptor_fields(l, &format!("{name}: layers[{i}]"))?;
        }
        if let Some(s) = obj.get("subject") {
            self.descriptor_fields(s, &format!("{name}: subject"))?;
        }
        let m: Manifest = serde_json::from_value(v.clone())
            .map_err(OciError::json(format!("{name} in {}", self.loc)))?;
        self.seen.insert(d.digest.clone());
        self.record(BlobKind::Manifest, d, None);

        // config
        if !media::is_config(&m.config.media_type) {
            return Err(self.defect(format!(
                "{name}: config ({}) has media type `{}`, which is not an image config media type ({} or {})",
                m.config.digest,
                m.config.media_type,
                media::OCI_CONFIG,
                media::DOCKER_CONFIG
            )));
        }
        let cname = format!("config {} of {name}", m.config.digest);
        let cfg = self.read_json(&m.config, "config", &format!("the config of {name}"))?;
        let cobj = cfg
            .as_object()
            .ok_or_else(|| self.defect(format!("{cname} is not a JSON object")))?;
        let field = |k: &str| -> Result<String> {
            match cobj.get(k) {
                Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
                Some(Value::String(_)) => Err(self.defect(format!("{cname}: `{k}` is empty"))),
                Some(other) => {
                    Err(self.defect(format!("{cname}: `{k}` is {other}, expected a string")))
                }
                None => Err(self.defect(format!(
                    "{cname} has no `{k}` field (required by the image spec)"
                ))),
            }
        };
        let os = field("os")?;
        let arch = field("architecture")?;
        if let Some(want) = platform {
            let variant = cobj.get("variant").and_then(Value::as_str);
            let spec = match variant {
                Some(v) => format!("{os}/{arch}/{v}"),
                None => format!("{os}/{arch}"),
            };
            if let Ok(mut have) = Platform::parse(&spec) {
                // The index's variant is informative; compare os and architecture.
                have.variant = None;
                if !have.matches(want) {
                    return Err(self.defect(format!("{role} ({}) is listed for platform {want}, but its {cname} says {os}/{arch}", d.digest)));
                }
            }
        }
        let rootfs = cobj
            .get("rootfs")
            .and_then(Value::as_object)
            .ok_or_else(|| self.defect(format!("{cname} has no `rootfs` object")))?;
        match rootfs.get("type") {
            Some(Value::String(t)) if t == "layers" => {}
            Some(other) => {
                return Err(self.defect(format!(
                    "{cname}: rootfs.type is {other}, expected \"layers\""
                )));
            }
            None => {
                return Err(self.defect(format!(
                    "{cname}: rootfs.type is missing, expected \"layers\""
                )));
            }
        }
        let ids = rootfs
            .get("diff_ids")
            .and_then(Value::as_array)
            .ok_or_else(|| self.defect(format!("{cname} has no rootfs.diff_ids array")))?;
        let mut diff_ids = Vec::with_capacity(ids.len());
        for (i, id) in ids.iter().enumerate() {
            let s = id.as_str().ok_or_else(|| {
                self.defect(format!(
                    "{cname}: rootfs.diff_ids[{i}] is {id}, expected a digest string"
                ))
            })?;
            let dg = Digest::parse(s)
                .map_err(|e| self.defect(format!("{cname}: rootfs.diff_ids[{i}]: {e}")))?;
            diff_ids.push(dg);
        }
        if diff_ids.len() != m.layers.len() {
            return Err(self.defect(format!(
                "{cname} lists {} rootfs.diff_ids but the manifest has {} layers: there must be one diff_id per layer",
                diff_ids.len(),
                m.layers.len()
            )));
        }
        self.record(BlobKind::Config, &m.config, None);

        // layer media types first: a cheap defect is reported before a long read
        let mut comps = Vec::with_capacity(m.layers.len());
        for (i, l) in m.layers.iter().enumerate() {
            let c = media::layer_compression(&l.media_type).ok_or_else(|| {
                self.defect(format!("{name}: layers[{i}] ({}) has media type `{}`, which is not a known layer media type", l.digest, l.media_type))
            })?;
            comps.push(c);
        }
        for (i, (l, c)) in m.layers.iter().zip(comps).enumerate() {
            if !self.opts.check_layers {
                self.report.layers_not_read += 1;
                continue;
            }
            self.layer(
                l,
                c,
                &diff_ids[i],
                &format!("layer {i} ({}) of {name}", l.digest),
                &format!("layer {i} of {name}"),
                i,
            )?;
        }
        if self.opts.strict && self.opts.check_layers {
            let layers: Vec<(&Digest, &[TarItem])> = m
                .layers
                .iter()
                .filter_map(|l| {
                    self.layer_paths
                        .get(&l.digest)
                        .map(|v| (&l.digest, v.as_slice()))
                })
                .collect();
            for (i, digest, path, target) in symlinks_replaced(&layers) {
                self.report.warnings.push(format!(
                    "layer {i} ({digest}) of {name} replaces the symlink /{path} -> {target} of a lower layer with a directory: whatever the link led to is hidden at /{path} once the layers are applied (over a merged-/usr base's /bin, every program in /usr/bin); rebuild the layer with its files at the link's target (/{target} resolved), or delete the link explicitly first if the directory is meant"
                ));
            }
        }
        self.report.images += 1;
        Ok(())
    }

    /// Stream one layer blob once: count and hash the raw bytes, decompress, hash the tar and
    /// parse it to the end.
    fn layer(
        &mut self,
        l: &Descriptor,
        comp: Compression,
        diff_id: &Digest,
        what: &str,
        role: &str,
        i: usize,
    ) -> Result<()> {
        if let Some(seen) = self.layers_seen.get(&l.digest) {
            if seen != diff_id {
                return Err(self.defect(format!("{what}: the config's rootfs.diff_ids[{i}] is {diff_id}, but the layer's uncompressed content hashes to {seen} (wrong diff_id)")));
            }
            return Ok(());
        }
        let blob = match self.src.open_blob(l) {
            Ok(b) => b,
            Err(OciError::BlobMissing { .. }) if is_foreign(l) => {
                self.report.layers_not_read += 1;
                return Ok(());
            }
            Err(e) => return Err(with_role(e, role)),
        };
        let mut raw = HashingReader::new(blob.take(l.size.saturating_add(1)));
        let mut items = self.opts.strict.then(Vec::new);
        let (stream, diff, tar) = {
            let dec = match decoder(comp, &mut raw) {
                Ok(d) => d,
                Err(e) => return Err(self.defect(format!("{what}: {e}"))),
            };
            let mut diff = HashingReader::new(Capture {
                inner: dec,
                error: None,
            });
            let tar = check_tar(&mut diff, items.as_mut());
            // hash whatever the tar reader left: end-of-archive blocks and padding
            let drained = if diff.get_mut().error.is_none() {
                io::copy(&mut diff, &mut io::sink()).map(drop)
            } else {
                Ok(())
            };
            let stream_err = diff
                .get_mut()
                .error
                .take()
                .or_else(|| drained.err().map(|e| e.to_string()));
            (stream_err, diff.finish().1, tar)
        };
        // the rest of the raw blob (trailing bytes the decompressor did not want)
        let rest = io::copy(&mut raw, &mut io::sink());
        let (_, digest, count) = raw.finish();
        if let Err(e) = rest {
            return Err(OciError::Stream {
                what: format!("reading {what} from {}", self.loc),
                source: e,
            });
        }
        if count > l.size {
            return Err(self.defect(format!(
                "{what} has the wrong size: its descriptor says {} bytes, the blob is larger",
                l.size
            )));
        }
        if count != l.size {
            return Err(OciError::SizeMismatch {
                what: format!("{what} in {}", self.loc),
                expected: l.size,
                actual: count,
            });
        }
        if digest != l.digest {
            return Err(OciError::DigestMismatch {
                what: format!("{what} in {}", self.loc),
                expected: l.digest.clone(),
                actual: digest,
            });
        }
        if let Some(e) = stream {
            return Err(match comp {
                Compression::None => self.defect(format!("{what}: reading it failed: {e}")),
                _ => self.defect(format!(
                    "{what} is not a valid {} stream, as its media type `{}` says: {e}",
                    comp.name(),
                    l.media_type
                )),
            });
        }
        if &diff != diff_id {
            return Err(self.defect(format!(
                "{what}: the config's rootfs.diff_ids[{i}] is {diff_id}, but the layer's uncompressed content hashes to {diff} (wrong diff_id)"
            )));
        }
        if let Err(e) = tar {
            return Err(self.defect(format!("{what} is not a well-formed tar archive: {e}")));
        }
        self.layers_seen.insert(l.digest.clone(), diff.clone());
        if let Some(items) = items {
            self.layer_paths.insert(l.digest.clone(), items);
        }
        self.record(BlobKind::Layer, l, Some(diff));
        Ok(())
    }

    /// An attestation manifest in an index (BuildKit's `unknown/unknown` entries): not an image,
    /// so only its blobs' presence, sizes and digests are checked.
    fn artifact(&mut self, d: &Descriptor, role: &str) -> Result<()> {
        if self.seen.contains(&d.digest) {
            return Ok(());
        }
        let name = format!("attestation manifest {}", d.digest);
        let v = self.read_json(d, "manifest", &format!("named by {role}"))?;
        let obj = v
            .as_object()
            .ok_or_else(|| self.defect(format!("{name} is not a JSON object")))?;
        self.schema_version(obj, &name)?;
        self.media_type_field(obj, d, &name)?;
        if let Some(c) = obj.get("config") {
            self.descriptor_fields(c, &format!("{name}: config"))?;
        }
        if let Some(ls) = obj.get("layers").and_then(Value::as_array) {
            for (i, l) in ls.iter().enumerate() {
                self.descriptor_fields(l, &format!("{name}: layers[{i}]"))?;
            }
        }
        let m: Manifest = serde_json::from_value(v.clone())
            .map_err(OciError::json(format!("{name} in {}", self.loc)))?;
        self.seen.insert(d.digest.clone());
        self.record(BlobKind::Manifest, d, None);
        let blobs = std::iter::once((BlobKind::Config, "config".to_string(), &m.config)).chain(
            m.layers
                .iter()
                .enumerate()
                .map(|(i, l)| (BlobKind::Layer, format!("layers[{i}]"), l)),
        );
        for (kind, field, b) in blobs {
            let what = format!("{field} ({}) of {name}", b.digest);
            let r = self
                .src
                .open_blob(b)
                .map_err(|e| with_role(e, &format!("{field} of {name}")))?;
            let mut vr = VerifyingReader::new(r, b, what.clone());
            io::copy(&mut vr, &mut io::sink()).map_err(|e| self.defect(format!("{what}: {e}")))?;
            self.record(kind, b, None);
        }
        Ok(())
    }

    fn schema_version(&self, obj: &serde_json::Map<String, Value>, name: &str) -> Result<()> {
        match obj.get("schemaVersion") {
            Some(Value::Number(n)) if n.as_u64() == Some(2) => Ok(()),
            Some(Value::Number(n)) if n.as_u64() == Some(1) => Err(self.defect(format!(
                "{name} has schemaVersion 1, expected 2: Docker schema 1 manifests are refused (deprecated and unsigned; re-push the image with a current tool to convert it to schema 2)"
            ))),
            Some(other) => Err(self.defect(format!("{name} has schemaVersion {other}, expected 2"))),
            None => Err(self.defect(format!("{name} has no schemaVersion, expected 2"))),
        }
    }

    fn media_type_field(
        &self,
        obj: &serde_json::Map<String, Value>,
        d: &Descriptor,
        name: &str,
    ) -> Result<()> {
        match obj.get("mediaType") {
            None => Ok(()),
            Some(Value::String(s)) if *s == d.media_type => Ok(()),
            Some(other) => Err(self.defect(format!(
                "{name}: its mediaType field is {other}, but the descriptor pointing to it says media type `{}`",
                d.media_type
            ))),
        }
    }

    /// The fields of a descriptor, checked one by one so a defect names the field.
    fn descriptor_fields(&self, v: &Value, name: &str) -> Result<()> {
        let obj = v
            .as_object()
            .ok_or_else(|| self.defect(format!("{name} is not a descriptor object")))?;
        match obj.get("mediaType") {
            Some(Value::String(_)) => {}
            Some(other) => {
                return Err(self.defect(format!(
                    "{name}.mediaType is {other}, expected a media type string"
                )));
            }
            None => return Err(self.defect(format!("{name} has no mediaType"))),
        }
        match obj.get("digest") {
            Some(Value::String(s)) => {
                Digest::parse(s).map_err(|e| self.defect(format!("{name}.digest: {e}")))?;
            }
            Some(other) => {
                return Err(self.defect(format!(
                    "{name}.digest is {other}, expected a digest string"
                )));
            }
            None => return Err(self.defect(format!("{name} has no digest"))),
        }
        match obj.get("size") {
            Some(Value::Number(n)) if n.as_u64().is_some() => {}
            Some(other) => {
                return Err(self.defect(format!(
                    "{name}.size is {other}, expected a non-negative integer"
                )));
            }
            None => return Err(self.defect(format!("{name} has no size"))),
        }
        Ok(())
    }
}

/// Add the role of a blob to the errors `read_verified` and `open_blob` return.
fn with_role(e: OciError, role: &str) -> OciError {
    match e {
        OciError::BlobMissing { digest, location } => OciError::BlobMissing {
            digest,
            location: format!("{location} ({role})"),
        },
        OciError::SizeMismatch {
            what,
            expected,
            actual,
        } => OciError::SizeMismatch {
            what: format!("{what} ({role})"),
            expected,
            actual,
        },
        OciError::DigestMismatch {
            what,
            expected,
            actual,
        } => OciError::DigestMismatch {
            what: format!("{what} ({role})"),
            expected,
            actual,
        },
        other => other,
    }
}

/// The children of an index that `all_platforms: false` validates: the only image, else the host's.
fn choose(idx: &Index) -> Option<usize> {
    let images: Vec<usize> = (0..idx.manifests.len())
        .filter(|&i| !is_attestation(&idx.manifests[i]))
        .collect();
    if let [one] = images.as_slice() {
        return Some(*one);
    }
    let host = Platform::host();
    images.into_iter().find(|&i| {
        idx.manifests[i]
            .platform
            .as_ref()
            .is_some_and(|p| host.matches(p))
    })
}

fn is_attestation(d: &Descriptor) -> bool {
    d.annotations
        .get("vnd.docker.reference.type")
        .is_some_and(|t| t == "attestation-manifest")
        || d.platform
            .as_ref()
            .is_some_and(|p| p.os == "unknown" && p.architecture == "unknown")
}

/// Foreign (Windows base) and non-distributable layers may legitimately be absent.
fn is_foreign(d: &Descriptor) -> bool {
    matches!(
        d.media_type.as_str(),
        media::DOCKER_FOREIGN_LAYER_GZIP
            | media::OCI_LAYER_ND_TAR
            | media::OCI_LAYER_ND_GZIP
            | media::OCI_LAYER_ND_ZSTD
    )
}

fn decoder<'a>(comp: Compression, r: &'a mut dyn Read) -> io::Result<Box<dyn Read + 'a>> {
    match comp {
        Compression::None => Ok(Box::new(r)),
        Compression::Gzip => Ok(Box::new(flate2::read::MultiGzDecoder::new(r))),
        #[cfg(feature = "zstd")]
        Compression::Zstd => Ok(Box::new(zstd::stream::read::Decoder::new(r)?)),
        #[cfg(not(feature = "zstd"))]
        Compression::Zstd => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this build of ocibuild cannot read zstd layers",
        )),
    }
}

/// Remembers the first error of the decompressed stream, to tell a bad compressed stream from a
/// bad tar.
struct Capture<R> {
    inner: R,
    error: Option<String>,
}

impl<R: Read> Read for Capture<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                if self.error.is_none() {
                    self.error = Some(e.to_string());
                }
                Err(e)
            }
            ok => ok,
        }
    }
}

/// A layer entry as a filesystem change, for the strict checks (paths relative, no `./`, no
/// trailing `/`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TarItem {
    Dir(String),
    Symlink(String, String),
    /// `.wh.NAME`: the path NAME deleted.
    Whiteout(String),
    /// `.wh..wh..opq`: the lower contents of the directory hidden.
    Opaque(String),
    Other(String),
}

fn clean_entry_path(p: &str) -> String {
    p.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

pub(crate) fn tar_item(e: &tar::Entry<'_, impl Read>) -> Option<TarItem> {
    let raw = e.path_bytes();
    let path = clean_entry_path(&String::from_utf8_lossy(&raw));
    let (parent, name) = match path.rsplit_once('/') {
        Some((p, n)) => (p.to_string(), n.to_string()),
        None => (String::new(), path.clone()),
    };
    if name == ".wh..wh..opq" {
        return Some(TarItem::Opaque(parent));
    }
    if let Some(n) = name.strip_prefix(".wh.") {
        let p = if parent.is_empty() {
            n.to_string()
        } else {
            format!("{parent}/{n}")
        };
        return Some(TarItem::Whiteout(p));
    }
    if path.is_empty() {
        return None;
    }
    Some(match e.header().entry_type() {
        tar::EntryType::Directory => TarItem::Dir(path),
        tar::EntryType::Symlink => {
            let t = e
                .link_name_bytes()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            TarItem::Symlink(path, t)
        }
        _ => TarItem::Other(path),
    })
}

/// The symlinks the layers applied so far leave: path → target.
pub(crate) type Links = std::collections::BTreeMap<String, String>;

/// Apply one layer's entries to `links`: whiteouts and opaque directories first (they hide the
/// layers below), then the layer's own entries.
pub(crate) fn apply_links(links: &mut Links, items: &[TarItem]) {
    let below = |links: &mut Links, dir: &str| {
        if dir.is_empty() {
            links.clear();
        } else {
            let prefix = format!("{dir}/");
            links.retain(|k, _| !k.starts_with(&prefix));
        }
    };
    for it in items {
        match it {
            TarItem::Opaque(d) => below(links, d),
            TarItem::Whiteout(p) => {
                links.remove(p);
                below(links, p);
            }
            _ => {}
        }
    }
    for it in items {
        match it {
            TarItem::Symlink(p, t) => {
                links.insert(p.clone(), t.clone());
            }
            TarItem::Dir(p) | TarItem::Other(p) => {
                links.remove(p);
            }
            _ => {}
        }
    }
}

/// The directories of each layer (bottom first) that replace a symlink the layers below left
/// at that path: (layer index, layer digest, path, link target).
fn symlinks_replaced<'a>(
    layers: &[(&'a Digest, &[TarItem])],
) -> Vec<(usize, &'a Digest, String, String)> {
    let mut links = Links::new();
    let mut out = Vec::new();
    for (i, (digest, items)) in layers.iter().enumerate() {
        for it in items.iter() {
            if let TarItem::Dir(p) = it
                && let Some(t) = links.get(p)
            {
                out.push((i, *digest, p.clone(), t.clone()));
            }
        }
        apply_links(&mut links, items);
    }
    out
}

/// The symlinks an image's layers leave when applied in order (path → target), read from the
/// layer blobs in `store` (tar headers only; contents are skipped). A foreign layer whose blob
/// is not in the store is left out.
pub fn image_symlinks(
    store: &crate::store::ContentStore,
    layers: &[Descriptor],
) -> Result<std::collections::BTreeMap<String, String>> {
    let mut links = Links::new();
    for l in layers {
        let c = media::layer_compression(&l.media_type).ok_or_else(|| {
            OciError::invalid(
                format!("layer {}", l.digest),
                format!("unsupported media type {}", l.media_type),
            )
        })?;
        let f = match store.open_blob(&l.digest) {
            Ok(f) => f,
            Err(OciError::BlobMissing { .. }) if is_foreign(l) => continue,
            Err(e) => return Err(e),
        };
        let dec = crate::extract::decompress(io::BufReader::new(f), c)?;
        let mut ar = crate::limited::Archive::new(
            dec,
            &crate::extract::Limits::from_env()?,
            format!("layer {}", l.digest),
        );
        let mut items = Vec::new();
        for e in ar
            .entries()
            .map_err(OciError::stream(format!("reading layer {}", l.digest)))?
        {
            let e = e.map_err(OciError::stream(format!("reading layer {}", l.digest)))?;
            if let Some(it) = tar_item(&e) {
                items.push(it);
            }
        }
        apply_links(&mut links, &items);
    }
    Ok(links)
}

/// Parse a tar to its end, reading every entry's data and checking it has the size its header
/// says; with `items`, the entries as filesystem changes are collected there.
fn check_tar(
    r: &mut dyn Read,
    mut items: Option<&mut Vec<TarItem>>,
) -> std::result::Result<(), String> {
    let limits = crate::extract::Limits::from_env().map_err(|e| e.to_string())?;
    let mut ar = crate::limited::Archive::new(r, &limits, "the layer");
    let entries = ar.entries().map_err(|e| e.to_string())?;
    for (n, e) in entries.enumerate() {
        let mut e = e.map_err(|e| format!("after {n} entries: {e}"))?;
        let path = e
            .path()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "<unreadable path>".into());
        if let Some(v) = items.as_mut()
            && let Some(it) = tar_item(&e)
        {
            v.push(it);
        }
        let size = e.size();
        let got =
            io::copy(&mut e, &mut io::sink()).map_err(|err| format!("entry `{path}`: {err}"))?;
        if got != size {
            return Err(format!(
                "entry `{path}` is truncated: its header says {size} bytes, the archive holds {got}"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn d(n: u8) -> Digest {
        Digest::parse(&format!("sha256:{}", format!("{n:02x}").repeat(32))).unwrap()
    }

    #[test]
    fn a_directory_over_a_lower_symlink_is_reported() {
        use TarItem::*;
        let base = vec![
            Symlink("bin".into(), "usr/bin".into()),
            Symlink("lib".into(), "usr/lib".into()),
            Dir("usr".into()),
            Dir("usr/bin".into()),
            Symlink("usr/bin/sh".into(), "dash".into()),
        ];
        // a COPY that wrote bin/ as a directory (the broken layer)
        let bad = vec![Dir("bin".into()), Other("bin/app".into())];
        // a layer with files at the link's target: fine
        let good = vec![
            Dir("usr".into()),
            Dir("usr/bin".into()),
            Other("usr/bin/app".into()),
        ];
        // the link deleted, then a directory in a later layer: explicit, fine
        let rm = vec![Whiteout("lib".into())];
        let mkdir = vec![Dir("lib".into())];
        // a file over a link to a file is no directory: fine
        let file = vec![Other("usr/bin/sh".into())];
        let (d0, d1, d2, d3, d4, d5) = (d(0), d(1), d(2), d(3), d(4), d(5));
        let layers: Vec<(&Digest, &[TarItem])> = vec![
            (&d0, &base),
            (&d1, &good),
            (&d2, &rm),
            (&d3, &mkdir),
            (&d4, &file),
            (&d5, &bad),
        ];
        let r = symlinks_replaced(&layers);
        assert_eq!(r, vec![(5, &d5, "bin".to_string(), "usr/bin".to_string())]);
        // an opaque parent hides the lower links below it
        let opq = vec![Dir("usr".into()), Opaque("usr".into())];
        let dir_sh = vec![Dir("usr/bin/sh".into())];
        let layers: Vec<(&Digest, &[TarItem])> = vec![(&d0, &base), (&d1, &opq), (&d2, &dir_sh)];
        assert!(symlinks_replaced(&layers).is_empty());
        let layers: Vec<(&Digest, &[TarItem])> = vec![(&d0, &base), (&d2, &dir_sh)];
        assert_eq!(symlinks_replaced(&layers).len(), 1);
        assert_eq!(clean_entry_path("./bin/"), "bin");
    }
}
