//! Assemble an image without a Dockerfile: a base (or scratch), directories appended as layers,
//! and config edits — what `crane append` / rules_oci do. The result lands in the content store.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value, json};

use crate::digest::Digest;
use crate::error::{OciError, Result};
use crate::image::{
    Descriptor, Image, ImageSource, Platform, config_bytes, new_manifest, rfc3339, to_json_bytes,
};
use crate::layer::{LayerBuilder, LayerOptions};
use crate::layout::{LayoutWriter, StoreSource, Writeback, import_into_store};
use crate::media::{self, Compression};
use crate::store::ContentStore;

/// One directory to append as one layer.
#[derive(Clone, Debug)]
pub struct LayerInput {
    pub src: PathBuf,
    /// Where it lands in the image, relative to `/` (`""` for the root).
    pub dest: String,
    /// Image paths (relative to `/`) that, with everything below them, get their own owner
    /// (`uid`, `gid`) instead of [`AssembleSpec::owner`]; their parents keep the layer's.
    pub owners: Vec<(String, (u32, u32))>,
}

impl LayerInput {
    /// `src` at `dest`, owned as the spec says.
    pub fn new(src: impl Into<PathBuf>, dest: impl Into<String>) -> Self {
        LayerInput {
            src: src.into(),
            dest: dest.into(),
            owners: Vec::new(),
        }
    }

    /// Add everything of `src` to `b`, with the input's owners.
    fn add_to(&self, b: &mut LayerBuilder) -> Result<()> {
        b.add_dir(&self.src, &self.dest)?;
        for (p, (uid, gid)) in &self.owners {
            b.set_owner_under(p, *uid, *gid)?;
        }
        Ok(())
    }
}

/// Edits to the image config, applied in Docker's way.
#[derive(Clone, Debug, Default)]
pub struct ConfigEdits {
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<(String, String)>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub exposed_ports: Vec<String>,
    /// Other fields of the config's `config` object set as they are (`Healthcheck`,
    /// `StopSignal`, `OnBuild`, `Volumes` …); `null` removes a field.
    pub extra: BTreeMap<String, Value>,
}

pub struct AssembleSpec<'a> {
    /// The base image and its source; `None` is `scratch`.
    pub base: Option<(&'a dyn ImageSource, Image)>,
    pub layers: Vec<LayerInput>,
    pub config: ConfigEdits,
    pub annotations: BTreeMap<String, String>,
    /// Required for scratch; for a base, must match it.
    pub platform: Option<Platform>,
    pub compression: Compression,
    pub level: Option<u32>,
    pub source_date_epoch: u64,
    /// Owner of every file in the new layers (`None`: 0:0).
    pub owner: Option<(u32, u32)>,
    /// Keep permission bits exactly instead of normalising them git-style (see
    /// [`LayerOptions::normalize_modes`]).
    pub keep_modes: bool,
    /// The history entries appended for this assemble (default: one per layer, `ocibuild
    /// assemble: layer DEST`). Entries without `empty_layer` must be one per layer.
    pub history: Option<Vec<Value>>,
}

/// What `assemble` made.
pub struct Assembled {
    pub image: Image,
    /// For each new layer: its descriptor, diff_id, and whether its compressed blob was in the
    /// store already.
    pub new_layers: Vec<(Descriptor, Digest, bool)>,
    /// For each new layer: whether it was found by its inputs' source key, so no file of it
    /// was read or compressed.
    pub unread: Vec<bool>,
}

impl Assembled {
    /// An image source over the content store for exporters.
    pub fn source(&self, store: &ContentStore) -> StoreSource {
        StoreSource::new(
            store.clone(),
            self.image.manifest_desc.clone(),
            format!("the built image {}", self.image.manifest_desc.digest),
        )
    }
}

/// The key under which a compressed form of a layer is remembered in the store.
pub fn compression_key(c: Compression, level: Option<u32>) -> String {
    match c {
        Compression::Gzip => format!("gzip-{}-zlib-rs-chunked-v1", level.unwrap_or(6)),
        Compression::Zstd => format!("zstd-{}-mt-v1", level.unwrap_or(3)),
        Compression::None => "none".into(),
    }
}

/// The compression a [`compression_key`] names (`None`: not such a key).
pub fn compression_of_key(key: &str) -> Option<Compression> {
    if key == "none" {
        Some(Compression::None)
    } else if key.starts_with("gzip-") && key.ends_with("-zlib-rs-chunked-v1") {
        Some(Compression::Gzip)
    } else if key.starts_with("zstd-") && key.ends_with("-mt-v1") {
        Some(Compression::Zstd)
    } else {
        None
    }
}

/// `layer` (with `diff_id`) as a blob compressed as `to` at `level` (None: the default), in the
/// store: the layer itself when it was written so (recorded with [`ContentStore::record_layer`]
/// under [`compression_key`]), one converted earlier, else it is converted now — decompressed
/// and compressed again ([`crate::layer::recompress`]), giving the bytes a build writing it so
/// in the first place gives — checked against `diff_id`, stored and recorded. The flag says it
/// was converted now.
pub fn layer_compressed_as(
    store: &ContentStore,
    layer: &Descriptor,
    diff_id: &Digest,
    to: Compression,
    level: Option<u32>,
) -> Result<(Descriptor, bool)> {
    let key = compression_key(to, level);
    if let Some(d) = store.lookup_layer(diff_id, &key)
        && let Some(size) = store.size(&d)
    {
        return Ok((Descriptor::new(to.oci_layer_media_type(), d, size), false));
    }
    let from = media::layer_compression(&layer.media_type).ok_or_else(|| {
        OciError::invalid(
            format!("layer {}", layer.digest),
            format!("its media type {} is not a layer's", layer.media_type),
        )
    })?;
    let blob = io::BufReader::new(store.open_blob(&layer.digest)?);
    let (w, info) = crate::layer::recompress(blob, from, to, level, store.writer()?)?;
    if info.diff_id != *diff_id {
        return Err(OciError::invalid(
            format!("layer {}", layer.digest),
            format!(
                "its tar stream is {}, but {diff_id} was recorded for it; the store is damaged: `ocibuild cache verify` lists what is broken, `ocibuild cache prune` (with no option) empties the store",
                info.diff_id
            ),
        ));
    }
    let d = w.commit()?;
    store.record_layer(diff_id, &key, &d)?;
    Ok((Descriptor::new(info.media_type, d, info.size), true))
}

/// How long before the assemble started its files' last change must be for a source key to be
/// remembered: longer than the filesystem clock's granularity (a coarse tick), so a file written
/// again within the same tick (same stamp, other bytes) can never match a remembered key.
const SETTLE: Duration = Duration::from_secs(2);

pub fn assemble(store: &ContentStore, spec: AssembleSpec<'_>) -> Result<Assembled> {
    assemble_at(store, spec, Vec::new(), SystemTime::now())
}

/// [`assemble`], also writing the image into the OCI layouts `outputs` (opened and locked by
/// the caller, with their tags): each new layer goes into every layout's temp file as it is
/// compressed (no copy afterwards), and the store's new files and the layouts' are made durable
/// in one batch of concurrent fsyncs before any of them is named — the store's first, then each
/// layout's, `index.json` last. On error no layout names anything.
pub fn assemble_into(
    store: &ContentStore,
    spec: AssembleSpec<'_>,
    outputs: Vec<LayoutWriter>,
) -> Result<Assembled> {
    assemble_at(store, spec, outputs, SystemTime::now())
}

/// The compressed layer on its way into several files at once (the store's temp file and each
/// layout's): every write goes to each of them in turn, and each file's writeback is started
/// every few MiB, so the fsync at the end waits for the tail only.
struct Tee<'a>(Vec<(&'a File, &'a Path, Writeback)>);

impl Write for Tee<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for (f, p, wb) in &mut self.0 {
            let mut out: &File = f;
            out.write_all(buf)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))?;
            wb.wrote(f, buf.len());
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// [`assemble_into`], with `started` the moment its inputs are read from (tests move it on).
fn assemble_at(
    store: &ContentStore,
    spec: AssembleSpec<'_>,
    mut outputs: Vec<LayoutWriter>,
    started: SystemTime,
) -> Result<Assembled> {
    for w in &mut outputs {
        w.lock()?;
    }
    let created = rfc3339(spec.source_date_epoch);
    let (mut config, mut layers) = match &spec.base {
        Some((src, img)) => {
            import_into_store(*src, img, store)?;
            if let (Some(want), Some(have)) = (&spec.platform, img.platform())
                && !want.matches(&have)
            {
                return Err(OciError::invalid(
                    "platform",
                    format!(
                        "the base {} is {have}, but {want} was asked for; choose a base for {want} (or drop --platform)",
                        src.describe()
                    ),
                ));
            }
            (img.config.clone(), img.manifest.layers.clone())
        }
        None => {
            let p = spec.platform.clone().unwrap_or_else(Platform::host);
            let mut c = json!({
                "architecture": p.architecture,
                "os": p.os,
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": []},
                "history": [],
            });
            if let Some(v) = &p.variant {
                c["variant"] = json!(v);
            }
            (c, Vec::new())
        }
    };
    // Docker-schema2 bases may carry docker-only layer media types: convert the descriptors to
    // their OCI names, the blobs are identical.
    for l in &mut layers {
        l.media_type = match media::layer_compression(&l.media_type) {
            Some(c) => c.oci_layer_media_type().to_string(),
            None => l.media_type.clone(),
        };
        l.annotations.clear();
    }
    let obj = config
        .as_object_mut()
        .ok_or_else(|| OciError::invalid("base image config", "it is not a JSON object"))?;
    // Per-image fields of the base do not describe the new image.
    for k in [
        "container",
        "container_config",
        "docker_version",
        "id",
        "parent",
    ] {
        obj.remove(k);
    }
    obj.insert("created".into(), json!(created));

    let key = compression_key(spec.compression, spec.level);
    let opts = || LayerOptions {
        compression: spec.compression,
        level: spec.level,
        source_date_epoch: spec.source_date_epoch,
        owner: spec.owner,
        normalize_modes: !spec.keep_modes,
    };
    // The base's symlinks: new layers follow them (a layer for `/bin` over a merged-/usr base
    // lands in `/usr/bin` instead of replacing the `bin -> usr/bin` link).
    let links = match &spec.base {
        Some((_, img)) if !spec.layers.is_empty() => {
            crate::validate::image_symlinks(store, &img.manifest.layers)?
        }
        _ => BTreeMap::new(),
    };
    let mut new_layers = Vec::new();
    let mut new_diff_ids = Vec::new();
    let mut history = Vec::new();
    let mut unread = Vec::new();
    let mut finish_layer =
        |input: &LayerInput, desc: Descriptor, diff_id: Digest, stored: bool, not_read: bool| {
            let dest = if input.dest.is_empty() {
                "/".to_string()
            } else {
                format!("/{}", input.dest.trim_matches('/'))
            };
            history.push(
            json!({"created": created, "created_by": format!("ocibuild assemble: layer {dest}")}),
        );
            new_diff_ids.push(diff_id.clone());
            new_layers.push((desc.clone(), diff_id, stored));
            unread.push(not_read);
            layers.push(desc);
        };
    // New layers, written but neither fsynced nor named yet: they become durable together with
    // the config, the manifest and the layouts' files, in one batch of concurrent fsyncs (each
    // fsync of its own waits for a journal commit: on a busy disk that, not the bytes, is the
    // cost).
    let mut written = Vec::new();
    let mut pending = Vec::new();
    for input in &spec.layers {
        // One pass: the tar stream is hashed (diff_id), compressed and hashed again (digest) on
        // its way into the store. Reuse is decided from what is known before reading any file:
        // the inputs' source key (paths, metadata and each file's stamp) names the layer it made
        // last time, when that layer is still stored.
        let mut b = LayerBuilder::new(opts());
        input.add_to(&mut b)?;
        b.follow_lower_links(&links)?;
        // every file must be, once read, as the walk (the source key) saw it
        b.check_stamps();
        let source = b.source_key();
        if let Some(sk) = &source
            && let Some((diff_id, d)) = store.lookup_source(&sk.key, &key)
            && let Some(size) = store.size(&d)
        {
            let desc = Descriptor::new(spec.compression.oci_layer_media_type(), d, size);
            finish_layer(input, desc, diff_id, true, true);
            continue;
        }
        // The layer writer hashes the compressed stream as it hands it on (`info.digest`); it
        // goes through one buffer into the store's temp file and every layout's.
        let tmp = store.temp_blob()?;
        let tees = outputs
            .iter()
            .map(LayoutWriter::temp_blob)
            .collect::<Result<Vec<_>>>()?;
        let files: Vec<(&File, &Path, Writeback)> = std::iter::once(&tmp)
            .chain(&tees)
            .map(|t| (t.as_file(), t.path(), Writeback::every(4 << 20)))
            .collect();
        let (out, info) = b.write(io::BufWriter::with_capacity(256 * 1024, Tee(files)))?;
        out.into_inner()
            .map_err(|e| OciError::stream("writing the layer blob")(e.into_error()))?;
        let existed = store.has(&info.digest);
        let desc = Descriptor::new(info.media_type, info.digest.clone(), info.size);
        for (w, t) in outputs.iter_mut().zip(tees) {
            if !w.has(&desc) {
                w.stage(&desc, t);
            }
        }
        if existed {
            store.touch(&info.digest);
        } else {
            pending.push(store.pending_verified(tmp, info.digest.clone()));
        }
        finish_layer(input, desc, info.diff_id.clone(), existed, false);
        written.push((input, source, info.diff_id, info.digest));
    }
    if let Some(h) = &spec.history {
        let with_layer = h
            .iter()
            .filter(|e| e.get("empty_layer").and_then(Value::as_bool) != Some(true))
            .count();
        if with_layer != new_diff_ids.len() {
            return Err(OciError::invalid(
                "history",
                format!(
                    "{with_layer} entries name a layer, but {} layers were added",
                    new_diff_ids.len()
                ),
            ));
        }
        history = h.clone();
    }
    apply_edits(obj, &spec.config, &new_diff_ids, history)?;
    let cfg_bytes = config_bytes(&config)?;
    let cfg_digest = Digest::of_bytes(&cfg_bytes);
    let cfg_desc = Descriptor::new(media::OCI_CONFIG, cfg_digest, cfg_bytes.len() as u64);
    let manifest = new_manifest(cfg_desc, layers, spec.annotations.clone());
    let manifest_bytes = to_json_bytes(&manifest, "manifest")?;
    let md = Digest::of_bytes(&manifest_bytes);
    let manifest_desc = Descriptor::new(media::OCI_MANIFEST, md, manifest_bytes.len() as u64);

    let image = Image {
        index: None,
        manifest_desc,
        manifest_bytes,
        manifest,
        config_bytes: cfg_bytes,
        config,
    };
    for w in &mut outputs {
        w.stage_image(store, &image)?;
    }

    // Layers first, then the config, the manifest last: a crash never leaves a manifest whose
    // blobs are missing. (Each input file was re-stamped as soon as it was read, see
    // `check_stamps`: a file that changed since the walk failed the write, before any blob
    // was named.)
    pending.extend(store.pending_bytes(&image.config_bytes)?);
    pending.extend(store.pending_bytes(&image.manifest_bytes)?);
    let also: Vec<(&File, &Path)> = outputs.iter().flat_map(LayoutWriter::files).collect();
    crate::store::commit_pending_with(pending, &also, || Ok(()))?;
    drop(also);
    for (_, source, diff_id, digest) in written {
        store.record_layer(&diff_id, &key, &digest)?;
        if let Some(sk) = &source
            && sk.settled_before(started, SETTLE)
        {
            store.record_source(&sk.key, &key, &diff_id, &digest)?;
        }
    }
    for w in outputs {
        w.name_all()?;
    }
    Ok(Assembled {
        image,
        new_layers,
        unread,
    })
}

fn apply_edits(
    obj: &mut Map<String, Value>,
    e: &ConfigEdits,
    new_diff_ids: &[Digest],
    history: Vec<Value>,
) -> Result<()> {
    let rootfs = obj
        .entry("rootfs")
        .or_insert_with(|| json!({"type": "layers", "diff_ids": []}));
    let ids = rootfs
        .as_object_mut()
        .and_then(|r| {
            r.insert("type".into(), json!("layers"));
            r.entry("diff_ids")
                .or_insert_with(|| json!([]))
                .as_array_mut()
        })
        .ok_or_else(|| OciError::invalid("base image config", "rootfs.diff_ids is not an array"))?;
    ids.extend(new_diff_ids.iter().map(|d| json!(d.to_string())));
    if !history.is_empty() {
        let h = obj.entry("history").or_insert_with(|| json!([]));
        if let Some(a) = h.as_array_mut() {
            a.extend(history);
        }
    }
    let c = obj.entry("config").or_insert_with(|| json!({}));
    if c.is_null() {
        *c = json!({});
    }
    let c = c
        .as_object_mut()
        .ok_or_else(|| OciError::invalid("base image config", "`config` is not an object"))?;
    if let Some(ep) = &e.entrypoint {
        c.insert("Entrypoint".into(), json!(ep));
        // As in a Dockerfile: a new ENTRYPOINT drops the base's CMD.
        if e.cmd.is_none() {
            c.remove("Cmd");
        }
    }
    if let Some(cmd) = &e.cmd {
        c.insert("Cmd".into(), json!(cmd));
    }
    if !e.env.is_empty() {
        let mut env: Vec<String> = c
            .get("Env")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        // As a Dockerfile's ENV: a variable the base sets is replaced where it is.
        for (k, v) in &e.env {
            let prefix = format!("{k}=");
            let kv = format!("{k}={v}");
            match env.iter().position(|s| s.starts_with(&prefix) || s == k) {
                Some(i) => {
                    env[i] = kv;
                    let mut j = i + 1;
                    while j < env.len() {
                        if env[j].starts_with(&prefix) || env[j] == *k {
                            env.remove(j);
                        } else {
                            j += 1;
                        }
                    }
                }
                None => env.push(kv),
            }
        }
        c.insert("Env".into(), json!(env));
    }
    if let Some(w) = &e.workdir {
        c.insert("WorkingDir".into(), json!(w));
    }
    if let Some(u) = &e.user {
        c.insert("User".into(), json!(u));
    }
    if !e.labels.is_empty() {
        let l = c.entry("Labels").or_insert_with(|| json!({}));
        if l.is_null() {
            *l = json!({});
        }
        if let Some(l) = l.as_object_mut() {
            for (k, v) in &e.labels {
                l.insert(k.clone(), json!(v));
            }
        }
    }
    for (k, v) in &e.extra {
        if v.is_null() {
            c.remove(k);
        } else {
            c.insert(k.clone(), v.clone());
        }
    }
    if !e.exposed_ports.is_empty() {
        let p = c.entry("ExposedPorts").or_insert_with(|| json!({}));
        if p.is_null() {
            *p = json!({});
        }
        if let Some(p) = p.as_object_mut() {
            for port in &e.exposed_ports {
                p.insert(normalize_port(port)?, json!({}));
            }
        }
    }
    Ok(())
}

/// EXPOSE's port specs as Docker reads them: [`normalize_port`], and a range
/// `START-END[/proto]` (`9000-9002` → `9000/tcp`, `9001/tcp`, `9002/tcp`), START ≤ END.
pub fn normalize_ports(p: &str) -> Result<Vec<String>> {
    let (num, proto) = p.split_once('/').unwrap_or((p, "tcp"));
    let Some((a, b)) = num.split_once('-') else {
        return Ok(vec![normalize_port(p)?]);
    };
    let bad = || {
        OciError::invalid(
            "port",
            format!(
                "`{p}`: expected PORT[/tcp|udp|sctp] or START-END[/tcp|udp|sctp], like 8000-8010/tcp"
            ),
        )
    };
    let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) else {
        return Err(bad());
    };
    if a == 0 || a > b {
        return Err(bad());
    }
    (a..=b)
        .map(|n| normalize_port(&format!("{n}/{proto}")))
        .collect()
}

/// `8080` → `8080/tcp`; `53/udp` stays; anything else is an error.
pub fn normalize_port(p: &str) -> Result<String> {
    let (num, proto) = p.split_once('/').unwrap_or((p, "tcp"));
    let ok_num = num.parse::<u16>().is_ok_and(|n| n > 0);
    let proto = proto.to_ascii_lowercase();
    if !ok_num || !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(OciError::invalid(
            "port",
            format!("`{p}`: expected PORT[/tcp|udp|sctp], like 8080/tcp"),
        ));
    }
    Ok(format!("{num}/{proto}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn edits_follow_docker() {
        let mut cfg = json!({"config": {"Cmd": ["sh"], "Env": ["PATH=/bin", "A=1"]}, "rootfs": {"type": "layers", "diff_ids": []}});
        let e = ConfigEdits {
            entrypoint: Some(vec!["/app".into()]),
            env: vec![("A".into(), "2".into()), ("B".into(), "x=y".into())],
            exposed_ports: vec!["8080".into()],
            ..Default::default()
        };
        apply_edits(
            cfg.as_object_mut().unwrap(),
            &e,
            &[Digest::of_bytes(b"")],
            vec![],
        )
        .unwrap();
        assert_eq!(cfg["config"]["Entrypoint"], json!(["/app"]));
        assert!(cfg["config"].get("Cmd").is_none());
        assert_eq!(cfg["config"]["Env"], json!(["PATH=/bin", "A=2", "B=x=y"]));
        assert_eq!(cfg["config"]["ExposedPorts"], json!({"8080/tcp": {}}));
        assert_eq!(cfg["rootfs"]["diff_ids"].as_array().unwrap().len(), 1);
    }

    fn spec_for(dir: &std::path::Path) -> AssembleSpec<'static> {
        AssembleSpec {
            base: None,
            layers: vec![LayerInput::new(dir, "app")],
            config: ConfigEdits::default(),
            annotations: BTreeMap::new(),
            platform: Some(Platform::parse("linux/amd64").unwrap()),
            compression: Compression::Gzip,
            level: None,
            source_date_epoch: 0,
            owner: None,
            keep_modes: false,
            history: None,
        }
    }

    fn tree(dir: &std::path::Path) {
        std::fs::create_dir_all(dir.join("lib")).unwrap();
        std::fs::write(dir.join("main.js"), "console.log('one')\n".repeat(5000)).unwrap();
        std::fs::write(dir.join("lib/util.js"), "module.exports = 1\n").unwrap();
        std::os::unix::fs::symlink("main.js", dir.join("index.js")).unwrap();
    }

    /// The one-pass layer is byte for byte the layer the writer makes of the same tree (so the
    /// digests are what the two-pass assemble made), and it is recorded for the next time.
    #[test]
    fn one_pass_gives_the_writers_layer_and_records_its_mapping() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ContentStore::open(tmp.path().join("store")).unwrap();
        let dir = tmp.path().join("src");
        tree(&dir);
        let mut b = LayerBuilder::new(LayerOptions {
            normalize_modes: true,
            ..LayerOptions::default()
        });
        b.add_dir(&dir, "app").unwrap();
        let (_, want) = b.write(std::io::sink()).unwrap();

        let a = assemble(&store, spec_for(&dir)).unwrap();
        let (desc, diff_id, stored) = &a.new_layers[0];
        assert_eq!(desc.digest, want.digest);
        assert_eq!(*diff_id, want.diff_id);
        assert_eq!(desc.size, want.size);
        assert!(!stored);
        assert_eq!(a.unread, vec![false]);
        let key = compression_key(Compression::Gzip, None);
        assert_eq!(store.lookup_layer(diff_id, &key), Some(want.digest.clone()));
        // the blob in the store is the one described
        let (d, n) = Digest::of_reader(store.open_blob(&want.digest).unwrap()).unwrap();
        assert_eq!((d, n), (want.digest.clone(), want.size));
        // the files were written just now: no source key is remembered (a file rewritten
        // within the clock's tick could keep its stamp), so the next run packs again
        let again = assemble(&store, spec_for(&dir)).unwrap();
        assert_eq!(again.image.manifest_desc, a.image.manifest_desc);
        assert_eq!(again.unread, vec![false]);
        assert!(
            again.new_layers[0].2,
            "the second write finds its blob stored"
        );
    }

    /// Settled inputs are remembered by their source key: the next assemble reads no file, and
    /// any change to a file (contents, even at the same size) or to the tree packs again.
    #[test]
    fn unchanged_inputs_are_not_read_again_and_changed_ones_are() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ContentStore::open(tmp.path().join("store")).unwrap();
        let dir = tmp.path().join("src");
        tree(&dir);
        let later = SystemTime::now() + Duration::from_secs(60);
        let first = assemble_at(&store, spec_for(&dir), Vec::new(), later).unwrap();
        assert_eq!(first.unread, vec![false]);

        let second = assemble_at(&store, spec_for(&dir), Vec::new(), later).unwrap();
        assert_eq!(second.unread, vec![true]);
        assert_eq!(second.image.manifest_desc, first.image.manifest_desc);
        assert_eq!(second.new_layers[0].1, first.new_layers[0].1);

        // same size, other bytes (a new inode: an in-place rewrite within the same clock tick
        // keeps every stamp, which is why keys of files changed that recently are never kept)
        std::fs::write(dir.join("lib/util.js.new"), "module.exports = 2\n").unwrap();
        std::fs::rename(dir.join("lib/util.js.new"), dir.join("lib/util.js")).unwrap();
        let third = assemble_at(&store, spec_for(&dir), Vec::new(), later).unwrap();
        assert_eq!(third.unread, vec![false]);
        assert_ne!(third.new_layers[0].1, first.new_layers[0].1);

        // a new file
        std::fs::write(dir.join("lib/new.js"), "x").unwrap();
        let fourth = assemble_at(&store, spec_for(&dir), Vec::new(), later).unwrap();
        assert_eq!(fourth.unread, vec![false]);
        assert_ne!(fourth.new_layers[0].1, third.new_layers[0].1);

        // other options are another key
        let mut owned = spec_for(&dir);
        owned.owner = Some((1000, 1000));
        let fifth = assemble_at(&store, owned, Vec::new(), later).unwrap();
        assert_eq!(fifth.unread, vec![false]);

        // a pruned blob is never named: the layer is packed again
        let d = fourth.new_layers[0].0.digest.clone();
        std::fs::remove_file(store.blob_path(&d)).unwrap();
        let sixth = assemble_at(&store, spec_for(&dir), Vec::new(), later).unwrap();
        assert_eq!(sixth.unread, vec![false]);
        assert_eq!(sixth.new_layers[0].0.digest, d);
        assert!(store.has(&d));
    }

    /// Every name under `dir` (files and directories), relative, sorted.
    fn names(dir: &std::path::Path) -> Vec<String> {
        let mut v: Vec<String> = walkdir::WalkDir::new(dir)
            .min_depth(1)
            .into_iter()
            .map(|e| {
                let e = e.unwrap();
                e.path()
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        v.sort();
        v
    }

    /// Layouts written by the assemble itself (the layer teed into them while it is
    /// compressed, one batch of fsyncs with the store) hold what `write_layout` writes from the
    /// store: the same blobs, and the image under every tag in `index.json`; an assemble that
    /// fails after its layer was written names nothing in the layout and leaves no temp file
    /// (nor the directories it created) behind, and nothing in the store.
    #[test]
    fn layouts_written_during_the_assemble_match_and_a_failed_one_names_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ContentStore::open(tmp.path().join("store")).unwrap();
        let dir = tmp.path().join("src");
        tree(&dir);

        // fails after the layer is written and teed: the history names no layer
        std::fs::create_dir(tmp.path().join("out")).unwrap();
        let out = tmp.path().join("out/new");
        let w = LayoutWriter::open(&out).unwrap();
        let mut bad = spec_for(&dir);
        bad.history = Some(vec![json!({"created_by": "x", "empty_layer": true})]);
        let e = assemble_at(&store, bad, vec![w], SystemTime::now())
            .err()
            .unwrap();
        assert!(e.to_string().contains("history"), "{e}");
        assert!(!out.exists(), "left behind: {:?}", names(&out));
        assert!(
            tmp.path().join("out").is_dir(),
            "only what it created is removed"
        );
        assert!(names(&tmp.path().join("out")).is_empty());
        assert_eq!(store.du().unwrap().blobs, 0);
        assert_eq!(store.du().unwrap().temp_files, 0);

        // an existing layout keeps its directories and gets no temp file either
        std::fs::create_dir_all(&out).unwrap();
        let mut bad = spec_for(&dir);
        bad.history = Some(Vec::new());
        let e = assemble_at(
            &store,
            bad,
            vec![LayoutWriter::open(&out).unwrap()],
            SystemTime::now(),
        );
        assert!(e.is_err());
        assert_eq!(names(&out), Vec::<String>::new());

        // written during the assemble, under two tags
        let mut w = LayoutWriter::open(&out).unwrap();
        w.add_tag(Some("a"));
        w.add_tag(Some("b"));
        let a = assemble_at(&store, spec_for(&dir), vec![w], SystemTime::now()).unwrap();
        // written afterwards from the store
        let copy = tmp.path().join("copy");
        let src = a.source(&store);
        crate::layout::write_layout(&copy, Some("a"), &src, &a.image).unwrap();
        crate::layout::write_layout(&copy, Some("b"), &src, &a.image).unwrap();
        assert_eq!(names(&out), names(&copy));
        assert!(!names(&out).iter().any(|n| n.contains(".tmp-")));
        for n in names(&out) {
            let p = out.join(&n);
            if p.is_file() {
                assert_eq!(
                    std::fs::read(&p).unwrap(),
                    std::fs::read(copy.join(&n)).unwrap(),
                    "{n}"
                );
            }
        }
        let layer = &a.new_layers[0].0.digest;
        let (d, _) =
            Digest::of_reader(std::fs::File::open(out.join(layer.layout_path())).unwrap()).unwrap();
        assert_eq!(d, *layer);
        assert!(store.has(layer));
        assert_eq!(store.du().unwrap().temp_files, 0);
    }

    /// A writer waiting for (or about to take) a layout's lock while another one that created
    /// the directory fails and removes it makes the directory again and writes a whole layout.
    #[test]
    fn a_layout_removed_by_a_failed_writer_is_made_again_by_the_next() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ContentStore::open(tmp.path().join("store")).unwrap();
        let dir = tmp.path().join("src");
        tree(&dir);
        let out = tmp.path().join("out");
        let first = LayoutWriter::open(&out).unwrap();
        let mut next = LayoutWriter::create(&out).unwrap();
        next.add_tag(Some("t"));
        std::thread::scope(|s| {
            let h = s.spawn(|| {
                next.lock().unwrap();
                next
            });
            drop(first); // never committed: removes the directories it created
            let next = h.join().unwrap();
            assemble_at(&store, spec_for(&dir), vec![next], SystemTime::now()).unwrap();
        });
        let src = crate::layout::LayoutSource::open(&out, Some("t")).unwrap();
        let img = crate::image::load_image(&src, None).unwrap();
        assert_eq!(img.manifest.layers.len(), 1);
        assert!(out.join("oci-layout").is_file());
    }

    #[test]
    fn ports() {
        assert_eq!(normalize_port("53/UDP").unwrap(), "53/udp");
        assert!(normalize_port("0").is_err());
        assert!(normalize_port("80/icmp").is_err());
        // ranges, as Docker's EXPOSE (found by the buildah oracle)
        assert_eq!(
            normalize_ports("9000-9002").unwrap(),
            ["9000/tcp", "9001/tcp", "9002/tcp"]
        );
        assert_eq!(normalize_ports("53-54/UDP").unwrap(), ["53/udp", "54/udp"]);
        assert_eq!(normalize_ports("80").unwrap(), ["80/tcp"]);
        assert!(normalize_ports("9002-9000").is_err());
        assert!(normalize_ports("0-2").is_err());
        assert!(normalize_ports("1-x").is_err());
        assert!(normalize_ports("1-2/icmp").is_err());
    }
}
