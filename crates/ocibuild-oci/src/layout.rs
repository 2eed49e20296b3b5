//! Where images live on disk: OCI image layout directories (`oci:`), OCI archives (`oci-archive:`,
//! a tar of a layout), Docker archives (`docker-archive:`, what `docker save` writes and
//! `docker load`/`podman load` read), and the content store.
//!
//! Readers implement [`ImageSource`]; reading never trusts a blob: callers verify through
//! [`read_verified`](crate::image::read_verified) and [`VerifyingReader`]. Writers go through a temp file and a rename, so an
//! interrupted export never leaves a half-written blob, index or archive under its final name.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::{Digest, HashingWriter};
use crate::error::{OciError, Result};
use crate::image::{
    Descriptor, Image, ImageSource, Index, REF_NAME, VerifyingReader, parse_index, to_json_bytes,
};
use crate::media::{self, Compression};
use crate::reference::{Location, Reference};
use crate::store::ContentStore;

const OCI_LAYOUT_JSON: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Pick the descriptor named `tag` (or the only one) from an index.json.
fn select(index: &Index, tag: Option<&str>, location: &str) -> Result<Descriptor> {
    let available: Vec<String> = index
        .manifests
        .iter()
        .filter_map(|d| d.ref_name().map(str::to_string))
        .collect();
    match tag {
        Some(t) => index
            .manifests
            .iter()
            .find(|d| d.ref_name() == Some(t))
            .cloned()
            .ok_or_else(|| OciError::TagNotFound {
                location: location.to_string(),
                tag: t.to_string(),
                available,
            }),
        // signatures, attestations and SBOMs kept beside an image are not images to choose from
        None => match index.manifests.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(OciError::defect(location, "index.json lists no images")),
            many if many
                .iter()
                .filter(|d| !crate::artifact::is_attached(d))
                .count()
                == 1 =>
            {
                Ok(many
                    .iter()
                    .find(|d| !crate::artifact::is_attached(d))
                    .cloned()
                    .unwrap_or_else(|| many[0].clone()))
            }
            many => Err(OciError::AmbiguousImage {
                location: location.to_string(),
                count: many.len(),
                available,
            }),
        },
    }
}

fn check_oci_layout(bytes: &[u8], location: &str) -> Result<()> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct L {
        image_layout_version: String,
    }
    let l: L =
        serde_json::from_slice(bytes).map_err(OciError::json(format!("{location}/oci-layout")))?;
    if l.image_layout_version != "1.0.0" {
        return Err(OciError::defect(
            location,
            format!(
                "oci-layout says imageLayoutVersion {}, expected 1.0.0",
                l.image_layout_version
            ),
        ));
    }
    Ok(())
}

fn parse_top_index(bytes: &[u8], location: &str) -> Result<Index> {
    let d = Descriptor::of_bytes(media::OCI_INDEX, bytes);
    parse_index(bytes, &d, &format!("{location}/index.json"))
}

/// An image in an OCI layout directory.
pub struct LayoutSource {
    dir: PathBuf,
    tag: Option<String>,
    root: Descriptor,
    pub index: Index,
}

impl LayoutSource {
    pub fn open(dir: &Path, tag: Option<&str>) -> Result<Self> {
        let loc = format!("oci:{}", dir.display());
        if fs::symlink_metadata(dir).is_err_and(|e| e.kind() == io::ErrorKind::NotFound) {
            return Err(OciError::Invalid {
                what: format!("location {loc}"),
                detail: format!(
                    "the directory {} does not exist; an oci: layout is a directory holding `oci-layout`, `index.json` and `blobs/` (check the path, or write one with --output oci:DIR:TAG)",
                    dir.display()
                ),
            });
        }
        let ol = dir.join("oci-layout");
        let bytes = fs::read(&ol).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                OciError::defect(
                    &loc,
                    "no `oci-layout` file: this is not an OCI image layout directory",
                )
            } else {
                OciError::Io {
                    op: "read",
                    path: ol.clone(),
                    source: e,
                }
            }
        })?;
        check_oci_layout(&bytes, &loc)?;
        let ip = dir.join("index.json");
        let bytes = fs::read(&ip).map_err(OciError::io("read", &ip))?;
        let index = parse_top_index(&bytes, &loc)?;
        let root = select(&index, tag, &loc)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            tag: tag.map(str::to_string),
            root,
            index,
        })
    }
}

impl ImageSource for LayoutSource {
    fn describe(&self) -> String {
        match &self.tag {
            Some(t) => format!("oci:{}:{t}", self.dir.display()),
            None => format!("oci:{}", self.dir.display()),
        }
    }
    fn root(&self) -> Result<Descriptor> {
        Ok(self.root.clone())
    }
    fn blob_file(&self, desc: &Descriptor) -> Option<PathBuf> {
        let p = self.dir.join(desc.digest.layout_path());
        fs::metadata(&p)
            .is_ok_and(|m| m.is_file() && m.len() == desc.size)
            .then_some(p)
    }
    fn open_blob(&self, desc: &Descriptor) -> Result<Box<dyn Read + '_>> {
        let p = self.dir.join(desc.digest.layout_path());
        match File::open(&p) {
            Ok(f) => Ok(Box::new(BufReader::with_capacity(256 * 1024, f))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(OciError::BlobMissing {
                digest: desc.digest.clone(),
                location: self.describe(),
            }),
            Err(e) => Err(OciError::Io {
                op: "open",
                path: p,
                source: e,
            }),
        }
    }
}

/// Byte ranges of the regular files in an uncompressed tar, by normalised name.
fn index_tar(file: &Path) -> Result<HashMap<String, (u64, u64)>> {
    let f = File::open(file).map_err(OciError::io("open", file))?;
    let mut ar = crate::limited::Archive::new(
        f,
        &crate::extract::Limits::from_env()?,
        format!("the archive {}", file.display()),
    );
    let mut out = HashMap::new();
    let what = format!("reading the tar archive {}", file.display());
    for e in ar
        .entries_with_seek()
        .map_err(OciError::stream(what.clone()))?
    {
        let e = e.map_err(OciError::stream(what.clone()))?;
        if !e.header().entry_type().is_file() {
            continue;
        }
        let name = e
            .path()
            .map_err(OciError::stream(what.clone()))?
            .to_string_lossy()
            .to_string();
        let name = name.trim_start_matches("./").to_string();
        out.insert(name, (e.raw_file_position(), e.size()));
    }
    Ok(out)
}

fn open_range(file: &Path, (off, len): (u64, u64)) -> Result<Box<dyn Read + 'static>> {
    let mut f = File::open(file).map_err(OciError::io("open", file))?;
    f.seek(SeekFrom::Start(off))
        .map_err(OciError::io("seek in", file))?;
    Ok(Box::new(BufReader::with_capacity(256 * 1024, f).take(len)))
}

/// Read a small file (JSON) from an archive, refusing an implausibly large one.
fn read_small_entry(
    file: &Path,
    entries: &HashMap<String, (u64, u64)>,
    name: &str,
    loc: &str,
    missing_hint: &str,
) -> Result<Vec<u8>> {
    let r = entries.get(name).ok_or_else(|| {
        OciError::defect(loc, format!("the archive has no `{name}`{missing_hint}"))
    })?;
    if r.1 > crate::image::MAX_JSON_BLOB {
        return Err(OciError::defect(
            loc,
            format!("`{name}` is implausibly large ({} bytes)", r.1),
        ));
    }
    let mut buf = Vec::new();
    open_range(file, *r)?
        .read_to_end(&mut buf)
        .map_err(OciError::io("read", file))?;
    Ok(buf)
}

/// An image in an oci-archive (a tar of an OCI layout), read in place without extracting it.
pub struct ArchiveSource {
    file: PathBuf,
    tag: Option<String>,
    entries: HashMap<String, (u64, u64)>,
    root: Descriptor,
}

impl ArchiveSource {
    pub fn open(file: &Path, tag: Option<&str>) -> Result<Self> {
        let loc = format!("oci-archive:{}", file.display());
        let entries = index_tar(file)?;
        let read_entry =
            |name: &str| read_small_entry(file, &entries, name, &loc, ": not an OCI archive");
        check_oci_layout(&read_entry("oci-layout")?, &loc)?;
        let index = parse_top_index(&read_entry("index.json")?, &loc)?;
        let root = select(&index, tag, &loc)?;
        Ok(Self {
            file: file.to_path_buf(),
            tag: tag.map(str::to_string),
            entries,
            root,
        })
    }
}

impl ImageSource for ArchiveSource {
    fn describe(&self) -> String {
        match &self.tag {
            Some(t) => format!("oci-archive:{}:{t}", self.file.display()),
            None => format!("oci-archive:{}", self.file.display()),
        }
    }
    fn root(&self) -> Result<Descriptor> {
        Ok(self.root.clone())
    }
    fn open_blob(&self, desc: &Descriptor) -> Result<Box<dyn Read + '_>> {
        let r = self
            .entries
            .get(&desc.digest.layout_path())
            .ok_or_else(|| OciError::BlobMissing {
                digest: desc.digest.clone(),
                location: self.describe(),
            })?;
        open_range(&self.file, *r)
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct DockerManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// An image in a docker-archive (`docker save` format). Its manifest is synthesised as Docker
/// schema2 from `manifest.json`, the config and the layer files, as containers-image does.
pub struct DockerArchiveSource {
    file: PathBuf,
    name: Option<String>,
    entries: HashMap<String, (u64, u64)>,
    blobs: HashMap<Digest, String>,
    manifest: Vec<u8>,
    root: Descriptor,
}

impl DockerArchiveSource {
    pub fn open(file: &Path, reference: Option<&Reference>) -> Result<Self> {
        let loc = format!("docker-archive:{}", file.display());
        let entries = index_tar(file)?;
        let read_small = |name: &str| read_small_entry(file, &entries, name, &loc, "");
        let list: Vec<DockerManifestEntry> = serde_json::from_slice(&read_small("manifest.json")?)
            .map_err(OciError::json(format!("{loc}/manifest.json")))?;
        let entry = match reference {
            Some(r) => {
                let want_full = r.to_string();
                let want_familiar = r.familiar();
                let all: Vec<String> = list
                    .iter()
                    .flat_map(|e| e.repo_tags.clone().unwrap_or_default())
                    .collect();
                list.iter()
                    .find(|e| {
                        e.repo_tags.iter().flatten().any(|t| {
                            t == &want_familiar
                                || t == &want_full
                                || Reference::parse(t).is_ok_and(|p| p.to_string() == want_full)
                        })
                    })
                    .ok_or_else(|| OciError::TagNotFound {
                        location: loc.clone(),
                        tag: want_familiar.clone(),
                        available: all,
                    })?
            }
            None => match list.as_slice() {
                [one] => one,
                [] => return Err(OciError::defect(&loc, "manifest.json lists no images")),
                many => {
                    let available = many
                        .iter()
                        .flat_map(|e| e.repo_tags.clone().unwrap_or_default())
                        .collect();
                    return Err(OciError::AmbiguousImage {
                        location: loc,
                        count: many.len(),
                        available,
                    });
                }
            },
        };
        let config_bytes = read_small(&entry.config)?;
        let config_desc = Descriptor::of_bytes(media::DOCKER_CONFIG, &config_bytes);
        let mut blobs = HashMap::new();
        blobs.insert(config_desc.digest.clone(), entry.config.clone());
        let mut layers = Vec::new();
        for l in &entry.layers {
            let name = l.trim_start_matches("./");
            let range = *entries.get(name).ok_or_else(|| {
                OciError::defect(
                    &loc,
                    format!("manifest.json names layer `{l}`, which is not in the archive"),
                )
            })?;
            let mut r = open_range(file, range)?;
            let mut magic = [0u8; 4];
            let n = read_up_to(&mut r, &mut magic).map_err(OciError::io("read", file))?;
            let mut hw = HashingWriter::new(io::sink());
            hw.write_all(&magic[..n])
                .map_err(OciError::io("read", file))?;
            io::copy(&mut r, &mut hw).map_err(OciError::io("read", file))?;
            let (_, digest, size) = hw.finish();
            let mt = match &magic[..n] {
                [0x1f, 0x8b, ..] => media::DOCKER_LAYER_GZIP,
                [0x28, 0xb5, 0x2f, 0xfd] => media::OCI_LAYER_ZSTD,
                _ => media::DOCKER_LAYER_TAR,
            };
            blobs.insert(digest.clone(), name.to_string());
            layers.push(Descriptor::new(mt, digest, size));
        }
        let manifest = crate::image::Manifest {
            schema_version: 2,
            media_type: Some(media::DOCKER_MANIFEST.into()),
            artifact_type: None,
            config: config_desc,
            layers,
            subject: None,
            annotations: BTreeMap::new(),
        };
        let manifest = to_json_bytes(&manifest, "synthesised manifest")?;
        let root = Descriptor::of_bytes(media::DOCKER_MANIFEST, &manifest);
        Ok(Self {
            file: file.to_path_buf(),
            name: reference.map(|r| r.familiar()),
            entries,
            blobs,
            manifest,
            root,
        })
    }
}

fn read_up_to(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

impl ImageSource for DockerArchiveSource {
    fn describe(&self) -> String {
        match &self.name {
            Some(n) => format!("docker-archive:{}:{n}", self.file.display()),
            None => format!("docker-archive:{}", self.file.display()),
        }
    }
    fn root(&self) -> Result<Descriptor> {
        Ok(self.root.clone())
    }
    fn open_blob(&self, desc: &Descriptor) -> Result<Box<dyn Read + '_>> {
        if desc.digest == self.root.digest {
            return Ok(Box::new(io::Cursor::new(self.manifest.clone())));
        }
        let name = self
            .blobs
            .get(&desc.digest)
            .ok_or_else(|| OciError::BlobMissing {
                digest: desc.digest.clone(),
                location: self.describe(),
            })?;
        let range = *self
            .entries
            .get(name)
            .ok_or_else(|| OciError::BlobMissing {
                digest: desc.digest.clone(),
                location: self.describe(),
            })?;
        open_range(&self.file, range)
    }
}

/// An image whose blobs are all in the content store.
pub struct StoreSource {
    store: ContentStore,
    root: Descriptor,
    label: String,
}

impl StoreSource {
    pub fn new(store: ContentStore, root: Descriptor, label: impl Into<String>) -> Self {
        Self {
            store,
            root,
            label: label.into(),
        }
    }
}

impl ImageSource for StoreSource {
    fn describe(&self) -> String {
        self.label.clone()
    }
    fn root(&self) -> Result<Descriptor> {
        Ok(self.root.clone())
    }
    fn open_blob(&self, desc: &Descriptor) -> Result<Box<dyn Read + '_>> {
        Ok(Box::new(BufReader::with_capacity(
            256 * 1024,
            self.store.open_blob(&desc.digest)?,
        )))
    }
    fn verified_blob_path(&self, desc: &Descriptor) -> Option<PathBuf> {
        (self.store.size(&desc.digest) == Some(desc.size))
            .then(|| self.store.blob_path(&desc.digest))
    }
}

/// Open any local location as an image source. Registries come with the registry client.
pub fn open_location(loc: &Location) -> Result<Box<dyn ImageSource>> {
    match loc {
        Location::Layout { dir, tag } => Ok(Box::new(LayoutSource::open(dir, tag.as_deref())?)),
        Location::OciArchive { file, tag } => Ok(Box::new(ArchiveSource::open(file, tag.as_deref())?)),
        Location::DockerArchive { file, reference } => Ok(Box::new(DockerArchiveSource::open(file, reference.as_ref())?)),
        Location::Registry(r) => Err(OciError::Unsupported {
            what: format!("reading docker://{r}"),
            hint: "registry access is not built yet; copy the image to a layout first (`skopeo copy docker://… oci:DIR:TAG`) and use oci:DIR:TAG".into(),
        }),
        Location::Scratch => Err(OciError::invalid("image location", "`scratch` is the empty image; it can only be a base")),
    }
}

/// Every blob of an image, in the order a writer wants them: layers, config, manifest.
fn image_blobs(img: &Image) -> Vec<(Descriptor, &'static str)> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for l in &img.manifest.layers {
        if seen.insert(l.digest.clone()) {
            out.push((l.clone(), "layer"));
        }
    }
    if seen.insert(img.manifest.config.digest.clone()) {
        out.push((img.manifest.config.clone(), "config"));
    }
    if seen.insert(img.manifest_desc.digest.clone()) {
        out.push((img.manifest_desc.clone(), "manifest"));
    }
    out
}

/// Copy every blob of `img` into the content store, verifying each one: digest and size of every
/// blob, and the diff_id of every layer — in the same pass as the download (the stream is teed
/// into the store and into the decompressor), four blobs at a time. A verified layer is
/// remembered in the store's diff_id → blob map, so it is not checked again.
pub fn import_into_store(src: &dyn ImageSource, img: &Image, store: &ContentStore) -> Result<()> {
    import_into_store_with(src, img, store, 4, None)
}

/// Bytes moved so far for one blob: `(digest, done, total)`, reported about every MiB and at
/// the end, for progress bars.
pub type ByteProgress<'a> = &'a (dyn Fn(&Digest, u64, u64) + Sync);

/// Counts the bytes read through it and reports them.
pub struct ProgressReader<'a, R> {
    inner: R,
    digest: Digest,
    total: u64,
    done: u64,
    last: u64,
    progress: ByteProgress<'a>,
}

impl<'a, R> ProgressReader<'a, R> {
    /// Start counting at `offset` (a resumed transfer).
    pub fn skip(&mut self, offset: u64) {
        self.done = offset;
        self.last = offset;
    }

    pub fn new(inner: R, desc: &Descriptor, progress: ByteProgress<'a>) -> Self {
        Self {
            inner,
            digest: desc.digest.clone(),
            total: desc.size,
            done: 0,
            last: 0,
            progress,
        }
    }
}

impl<R: Read> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if (n == 0 && self.last != self.done) || self.done - self.last >= 1 << 20 {
            self.last = self.done;
            (self.progress)(&self.digest, self.done, self.total);
        }
        Ok(n)
    }
}

/// A layer's diff_id, checked while its blob streams in.
#[derive(Clone, Debug)]
pub struct LayerCheck {
    /// The layer's position in the manifest (for messages: `rootfs.diff_ids[i]`).
    pub index: usize,
    pub diff_id: Digest,
    pub compression: Compression,
}

/// Chunks handed from the download thread to the decompressing hasher.
const STREAM_CHUNK: usize = 256 * 1024;

/// Reads the chunks a [`stream_verified`] download sends; hands emptied buffers back.
struct ChunkReader {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    back: std::sync::mpsc::Sender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

impl io::BufRead for ChunkReader {
    /// The rest of the current chunk (the decompressor reads it in place: no copy).
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos >= self.cur.len() {
            match self.rx.recv() {
                Ok(next) => {
                    let old = std::mem::replace(&mut self.cur, next);
                    let _ = self.back.send(old);
                    self.pos = 0;
                }
                Err(_) => return Ok(&[]),
            }
        }
        Ok(&self.cur[self.pos..])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.cur.len());
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use io::BufRead as _;
        let avail = self.fill_buf()?;
        let n = buf.len().min(avail.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// The uncompressed bytes of a layer streaming in as chunks: gzip is inflated straight from the
/// chunks (no intermediate buffer); zstd and uncompressed go through [`crate::extract::decompress`].
fn decompress_chunks<'a>(cr: &'a mut ChunkReader, c: Compression) -> Result<Box<dyn Read + 'a>> {
    Ok(match c {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(cr)),
        other => crate::extract::decompress(cr, other)?,
    })
}

/// SHA-256 and length of everything `r` yields, read in large blocks (fewer calls into the
/// decompressor than `io::copy`'s 8 KiB).
fn hash_all(r: &mut dyn Read) -> io::Result<Digest> {
    let mut w = HashingWriter::new(io::sink());
    let mut buf = vec![0u8; STREAM_CHUNK];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(w.finish().1),
            Ok(n) => w.write_all(&buf[..n])?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Starts the kernel's writeback of a blob's temp file every few MiB while it is being written, so
/// the fsync before its rename waits only for the tail instead of the whole blob (the disk writes
/// overlap the download). Advisory: a failure changes nothing but the timing.
pub(crate) struct Writeback {
    written: u64,
    kicked: u64,
    step: u64,
}

impl Writeback {
    pub(crate) fn new() -> Self {
        Self::every(8 << 20)
    }

    /// Kick the writeback every `step` bytes.
    pub(crate) fn every(step: u64) -> Self {
        Self {
            written: 0,
            kicked: 0,
            step,
        }
    }

    pub(crate) fn wrote(&mut self, out: &File, n: usize) {
        self.written += n as u64;
        let len = self.written - self.kicked;
        if len >= self.step {
            // POSIX_FADV_DONTNEED starts asynchronous writeback of the dirty range (and drops
            // only pages that are already clean)
            let _ = rustix::fs::fadvise(
                out,
                self.kicked,
                std::num::NonZeroU64::new(len),
                rustix::fs::Advice::DontNeed,
            );
            self.kicked = self.written;
        }
    }
}

/// Fill `buf` from `r` (short only at the end of the stream).
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Stream the blob `d` of `src` into `out` in one pass: its digest and size are verified as the
/// bytes go by, and a layer (`layer`) is decompressed and hashed on a second thread as they
/// arrive, its diff_id checked at the end — download, write, digest and diff_id overlap, and
/// nothing is read twice. On any error `out` holds unverified bytes the caller must discard.
pub fn stream_verified(
    src: &dyn ImageSource,
    d: &Descriptor,
    what: &str,
    layer: Option<&LayerCheck>,
    progress: Option<ByteProgress<'_>>,
    out: &mut File,
) -> Result<()> {
    let blob: Box<dyn Read + '_> = match progress {
        Some(p) => Box::new(ProgressReader::new(src.open_blob(d)?, d, p)),
        None => src.open_blob(d)?,
    };
    let mut raw = VerifyingReader::new(blob, d, what.to_string());
    let dest = || format!("writing {what}");
    let mut wb = Writeback::new();
    let Some(layer) = layer else {
        let mut buf = vec![0u8; STREAM_CHUNK];
        loop {
            let n = read_full(&mut raw, &mut buf).map_err(OciError::stream(what.to_string()))?;
            if n == 0 {
                return Ok(());
            }
            out.write_all(&buf[..n]).map_err(OciError::stream(dest()))?;
            wb.wrote(out, n);
        }
    };
    let c = layer.compression;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(8);
    let (back_tx, back_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::scope(|s| {
        let hasher = s.spawn(move || -> Result<Digest> {
            let mut cr = ChunkReader {
                rx,
                back: back_tx,
                cur: Vec::new(),
                pos: 0,
            };
            let got = {
                let mut dec = decompress_chunks(&mut cr, c)?;
                hash_all(&mut dec).map_err(OciError::stream(format!("decompressing {what}")))?
            };
            // trailing bytes after the compressed stream: read them so the sender never blocks
            io::copy(&mut cr, &mut io::sink())
                .map_err(OciError::stream(format!("decompressing {what}")))?;
            Ok(got)
        });
        // Download → file, and each chunk on to the hasher. When the hasher has failed (a
        // corrupt stream), the download still runs to its end so that a digest mismatch (the
        // clearer verdict) is the one reported.
        let mut tx = Some(tx);
        let downloaded = (|| -> Result<()> {
            loop {
                let mut buf = back_rx.try_recv().unwrap_or_default();
                buf.resize(STREAM_CHUNK, 0);
                let n =
                    read_full(&mut raw, &mut buf).map_err(OciError::stream(what.to_string()))?;
                if n == 0 {
                    return Ok(());
                }
                buf.truncate(n);
                out.write_all(&buf).map_err(OciError::stream(dest()))?;
                wb.wrote(out, n);
                if let Some(t) = &tx
                    && t.send(buf).is_err()
                {
                    tx = None;
                }
            }
        })();
        drop(tx);
        let hashed = hasher.join();
        downloaded?;
        let got = match hashed {
            Ok(r) => r?,
            Err(_) => {
                return Err(OciError::Stream {
                    what: format!("decompressing {what}"),
                    source: io::Error::other("the decompressing thread panicked"),
                });
            }
        };
        if got != layer.diff_id {
            return Err(OciError::DigestMismatch {
                what: format!("uncompressed {what} (rootfs.diff_ids[{}])", layer.index),
                expected: layer.diff_id.clone(),
                actual: got,
            });
        }
        Ok(())
    })
}

/// Run `f` on every item, `jobs` at a time; the first error stops the rest and is returned.
fn for_each_parallel<T: Sync>(
    items: &[T],
    jobs: usize,
    f: impl Fn(&T) -> Result<()> + Sync,
) -> Result<()> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let first_err: std::sync::Mutex<Option<OciError>> = std::sync::Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, 16).min(items.len().max(1)) {
            s.spawn(|| {
                loop {
                    let k = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(item) = items.get(k) else { break };
                    if first_err.lock().map(|e| e.is_some()).unwrap_or(true) {
                        break;
                    }
                    if let Err(e) = f(item) {
                        if let Ok(mut fe) = first_err.lock()
                            && fe.is_none()
                        {
                            *fe = Some(e);
                        }
                        break;
                    }
                }
            });
        }
    });
    match first_err.into_inner() {
        Ok(Some(e)) => Err(e),
        _ => Ok(()),
    }
}

/// [`import_into_store`] with `jobs` blobs in flight and optional byte progress.
pub fn import_into_store_with(
    src: &dyn ImageSource,
    img: &Image,
    store: &ContentStore,
    jobs: usize,
    progress: Option<ByteProgress<'_>>,
) -> Result<()> {
    let diff_ids = img.diff_ids()?;
    if diff_ids.len() != img.manifest.layers.len() {
        return Err(OciError::defect(
            src.describe(),
            format!(
                "config lists {} diff_ids but the manifest has {} layers",
                diff_ids.len(),
                img.manifest.layers.len()
            ),
        ));
    }
    // Layers first (the big ones), then config and manifest.
    let mut work: Vec<(Descriptor, Option<(usize, Digest)>)> = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, (l, d)) in img.manifest.layers.iter().zip(&diff_ids).enumerate() {
        if seen.insert(l.digest.clone()) {
            work.push((l.clone(), Some((i, d.clone()))));
        }
    }
    for d in [&img.manifest.config, &img.manifest_desc] {
        if seen.insert(d.digest.clone()) {
            work.push((d.clone(), None));
        }
    }
    for_each_parallel(&work, jobs, |(d, layer)| match layer {
        Some((i, diff_id)) => import_layer(src, store, d, *i, diff_id, progress),
        None => import_blob(src, store, d, "blob"),
    })
}

fn import_blob(
    src: &dyn ImageSource,
    store: &ContentStore,
    d: &Descriptor,
    what: &str,
) -> Result<()> {
    if store.size(&d.digest) == Some(d.size) {
        store.touch(&d.digest);
        return Ok(());
    }
    let what = format!("{what} {} of {}", d.digest, src.describe());
    let mut r = src.open_blob(d)?;
    store.put_verified(&mut r, &d.digest, Some(d.size), &what)
}

fn import_layer(
    src: &dyn ImageSource,
    store: &ContentStore,
    l: &Descriptor,
    i: usize,
    diff_id: &Digest,
    progress: Option<ByteProgress<'_>>,
) -> Result<()> {
    let c = layer_compression_of(l, &src.describe())?;
    let key = format!("verified-{}", c.name());
    let what = format!("layer {i} ({}) of {}", l.digest, src.describe());
    let check = |got: Digest| -> Result<()> {
        if &got != diff_id {
            return Err(OciError::DigestMismatch {
                what: format!("uncompressed {what} (rootfs.diff_ids[{i}])"),
                expected: diff_id.clone(),
                actual: got,
            });
        }
        Ok(())
    };
    if store.size(&l.digest) == Some(l.size) {
        if store.lookup_layer(diff_id, &key).as_ref() == Some(&l.digest) {
            store.touch(&l.digest);
            return Ok(());
        }
        let f = store.open_blob(&l.digest)?;
        let mut dec = crate::extract::decompress(BufReader::with_capacity(256 * 1024, f), c)?;
        let (got, _) = Digest::of_reader(&mut dec)
            .map_err(OciError::stream(format!("decompressing {what}")))?;
        check(got)?;
        return store.record_layer(diff_id, &key, &l.digest);
    }
    // One pass: download → store temp file, digest on the fly, diff_id on a second thread.
    let check = LayerCheck {
        index: i,
        diff_id: diff_id.clone(),
        compression: c,
    };
    let mut tmp = store.temp_blob()?;
    stream_verified(src, l, &what, Some(&check), progress, tmp.as_file_mut())?;
    store.adopt_verified(tmp, &l.digest)?;
    store.record_layer(diff_id, &key, &l.digest)
}

/// The descriptor for `index.json`: the manifest, its platform, and the tag.
fn index_entry(img: &Image, tag: Option<&str>) -> Descriptor {
    let mut d = img.manifest_desc.clone();
    d.annotations.clear();
    d.urls = None;
    d.platform = img.platform();
    if let Some(t) = tag {
        d.annotations.insert(REF_NAME.into(), t.to_string());
    }
    d
}

/// `bytes` in a new temp file beside `dir`'s entries (`.tmp-*`), not yet fsynced.
fn temp_with(dir: &Path, bytes: &[u8]) -> Result<tempfile::NamedTempFile> {
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(OciError::io("create temp file in", dir))?;
    tmp.write_all(bytes)
        .map_err(OciError::io("write", tmp.path()))?;
    Ok(tmp)
}

pub(crate) fn write_atomically(dest: &Path, bytes: &[u8]) -> Result<()> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(OciError::io("create temp file in", dir))?;
    tmp.write_all(bytes)
        .map_err(OciError::io("write", tmp.path()))?;
    tmp.as_file()
        .sync_all()
        .map_err(OciError::io("fsync", tmp.path()))?;
    tmp.persist(dest).map_err(|e| OciError::Io {
        op: "rename into",
        path: dest.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

/// Write (or add to) an OCI layout directory. Blobs already present are kept; `index.json` gets
/// the image under `tag`, replacing an older image of the same tag.
pub fn write_layout(
    dir: &Path,
    tag: Option<&str>,
    src: &dyn ImageSource,
    img: &Image,
) -> Result<Descriptor> {
    write_layout_plan(
        dir,
        src,
        image_blobs(img),
        index_entry(img, tag),
        &WriteOptions::default(),
    )
}

/// Write one image into a layout straight from its source (a registry: no content store in
/// between), `opts.jobs` blobs at a time, each blob's digest and size and each layer's diff_id
/// verified while it streams in; a blob only gets its name once all of that has passed, and
/// `index.json` names the image only once every blob is in place.
pub fn write_layout_verified(
    dir: &Path,
    tag: Option<&str>,
    src: &dyn ImageSource,
    img: &Image,
    jobs: usize,
    progress: Option<ByteProgress<'_>>,
) -> Result<Descriptor> {
    let diff_ids = img.diff_ids()?;
    if diff_ids.len() != img.manifest.layers.len() {
        return Err(OciError::defect(
            src.describe(),
            format!(
                "config lists {} diff_ids but the manifest has {} layers",
                diff_ids.len(),
                img.manifest.layers.len()
            ),
        ));
    }
    let mut layers = HashMap::new();
    for (i, (l, diff_id)) in img.manifest.layers.iter().zip(diff_ids).enumerate() {
        let compression = layer_compression_of(l, &src.describe())?;
        layers.entry(l.digest.clone()).or_insert(LayerCheck {
            index: i,
            diff_id,
            compression,
        });
    }
    let opts = WriteOptions {
        jobs,
        layers,
        progress,
    };
    write_layout_plan(dir, src, image_blobs(img), index_entry(img, tag), &opts)
}

/// Everything reachable from a source's root, verified on the way: the blobs (configs and
/// layers, each once) and the manifests and indexes with their bytes, children before parents
/// (the root last).
#[derive(Debug, Default)]
pub struct RootGraph {
    pub blobs: Vec<Descriptor>,
    pub manifests: Vec<(Descriptor, Vec<u8>)>,
}

/// Walk the root of a source (an index with all its platforms, or one manifest).
pub fn walk_root(src: &dyn ImageSource) -> Result<RootGraph> {
    let root = src.root()?;
    let mut seen = BTreeSet::new();
    let mut g = RootGraph::default();
    walk(src, &root, &mut seen, &mut g, 0)?;
    Ok(g)
}

fn walk(
    src: &dyn ImageSource,
    desc: &Descriptor,
    seen: &mut BTreeSet<Digest>,
    g: &mut RootGraph,
    depth: u32,
) -> Result<()> {
    if depth > 4 || !seen.insert(desc.digest.clone()) {
        return Ok(());
    }
    let loc = src.describe();
    if media::is_index(&desc.media_type) {
        let bytes = crate::image::read_verified(src, desc, "index")?;
        let idx = parse_index(&bytes, desc, &loc)?;
        for m in &idx.manifests {
            walk(src, m, seen, g, depth + 1)?;
        }
        g.manifests.push((desc.clone(), bytes));
    } else if media::is_manifest(&desc.media_type) {
        let bytes = crate::image::read_verified(src, desc, "manifest")?;
        let m = crate::image::parse_manifest(&bytes, desc, &loc)?;
        for l in m.layers.iter().chain(std::iter::once(&m.config)) {
            if seen.insert(l.digest.clone()) {
                g.blobs.push(l.clone());
            }
        }
        g.manifests.push((desc.clone(), bytes));
    } else {
        return Err(OciError::defect(
            loc,
            format!(
                "{} has media type `{}`, neither a manifest nor an index",
                desc.digest, desc.media_type
            ),
        ));
    }
    Ok(())
}

/// Every blob reachable from the source's root in the order a writer wants them (blobs, then
/// manifests and indexes children first), and the root's descriptor for `index.json`.
pub fn plan_root(
    src: &dyn ImageSource,
    tag: Option<&str>,
) -> Result<(Vec<(Descriptor, &'static str)>, Descriptor)> {
    let g = walk_root(src)?;
    let mut out: Vec<(Descriptor, &'static str)> =
        g.blobs.into_iter().map(|b| (b, "blob")).collect();
    out.extend(g.manifests.into_iter().map(|(d, _)| {
        let kind = if media::is_index(&d.media_type) {
            "index"
        } else {
            "manifest"
        };
        (d, kind)
    }));
    let mut entry = src.root()?;
    entry.annotations.clear();
    entry.urls = None;
    if let Some(t) = tag {
        entry.annotations.insert(REF_NAME.into(), t.to_string());
    }
    Ok((out, entry))
}

/// Write the whole root of a source (every platform of an index) into a layout directory.
pub fn write_layout_root(
    dir: &Path,
    tag: Option<&str>,
    src: &dyn ImageSource,
) -> Result<Descriptor> {
    write_layout_root_with(dir, tag, src, &WriteOptions::default())
}

/// [`write_layout_root`] with options (blobs in flight, progress).
pub fn write_layout_root_with(
    dir: &Path,
    tag: Option<&str>,
    src: &dyn ImageSource,
    opts: &WriteOptions<'_>,
) -> Result<Descriptor> {
    let (blobs, entry) = plan_root(src, tag)?;
    write_layout_plan(dir, src, blobs, entry, opts)
}

/// Write the whole root of a source into an oci-archive.
pub fn write_oci_archive_root(
    file: &Path,
    tag: Option<&str>,
    src: &dyn ImageSource,
) -> Result<Descriptor> {
    let (blobs, entry) = plan_root(src, tag)?;
    write_oci_archive_plan(file, src, blobs, entry)
}

/// How a layout is written: blobs in flight, the layers whose diff_id is checked on the way (by
/// blob digest), and byte progress.
pub struct WriteOptions<'a> {
    pub jobs: usize,
    pub layers: HashMap<Digest, LayerCheck>,
    pub progress: Option<ByteProgress<'a>>,
}

impl Default for WriteOptions<'_> {
    fn default() -> Self {
        Self {
            jobs: 4,
            layers: HashMap::new(),
            progress: None,
        }
    }
}

fn write_layout_plan(
    dir: &Path,
    src: &dyn ImageSource,
    plan: Vec<(Descriptor, &'static str)>,
    entry: Descriptor,
    opts: &WriteOptions<'_>,
) -> Result<Descriptor> {
    let mut w = LayoutWriter::open(dir)?;
    let blobs = w.blobs.clone();
    let write_one = |(d, what): &(Descriptor, &'static str)| -> Result<Option<(Descriptor, tempfile::NamedTempFile)>> {
        if w.has(d) {
            return Ok(None);
        }
        let mut tmp = w.temp_blob()?;
        if let Some(p) = src.verified_blob_path(d) {
            // copy_file_range: no bytes through user space
            fs::copy(&p, tmp.path()).map_err(OciError::io("copy", &p))?;
        } else {
            let check = opts.layers.get(&d.digest);
            let what = match check {
                Some(c) => format!("layer {} ({}) of {}", c.index, d.digest, src.describe()),
                None => format!("{what} {} of {}", d.digest, src.describe()),
            };
            stream_verified(src, d, &what, check, opts.progress, tmp.as_file_mut())?;
            // Streamed from elsewhere (a registry): named as soon as it is durable, so an
            // interrupted pull keeps what it fetched, and its fsync overlaps the next download.
            tmp.as_file()
                .sync_all()
                .map_err(OciError::io("fsync", tmp.path()))?;
            let dest = blobs.join(d.digest.hex());
            tmp.persist(&dest).map_err(|e| OciError::Io {
                op: "rename into",
                path: dest.clone(),
                source: e.error,
            })?;
            return Ok(None);
        }
        Ok(Some((d.clone(), tmp)))
    };
    let (manifests, others): (Vec<_>, Vec<_>) = plan
        .into_iter()
        .partition(|(d, _)| media::is_manifest(&d.media_type) || media::is_index(&d.media_type));
    // Layers and configs `jobs` at a time, then the manifests and indexes.
    let written = std::sync::Mutex::new(Vec::new());
    for_each_parallel(&others, opts.jobs, |item| {
        if let Some(t) = write_one(item)? {
            let mut w = written.lock().map_err(|_| OciError::Stream {
                what: "layout writer".into(),
                source: io::Error::other("a writer thread panicked"),
            })?;
            w.push(t);
        }
        Ok(())
    })?;
    let written = written.into_inner().map_err(|_| OciError::Stream {
        what: "layout writer".into(),
        source: io::Error::other("a writer thread panicked"),
    })?;
    let mut manifests_written = Vec::new();
    for m in &manifests {
        manifests_written.extend(write_one(m)?);
    }
    for (d, tmp) in written.into_iter().chain(manifests_written) {
        w.stage(&d, tmp);
    }
    w.stage_index(std::slice::from_ref(&entry))?;
    w.commit()?;
    Ok(entry)
}

/// A layout directory open for writing one image (or one image under several tags): created
/// and locked (other writers of the same directory wait), the temp files an interrupted writer
/// left cleared. Every file is staged as a temp file (`.tmp-*`) and nothing is named before
/// [`LayoutWriter::commit`] — or, for a caller that makes other files durable in the same
/// batch, [`LayoutWriter::files`] fsynced and then [`LayoutWriter::name_all`]: blobs first,
/// then `oci-layout`, manifests and indexes (children first), `index.json` last, so a name
/// never points at bytes that are not on disk. Dropped before that, it leaves no temp file
/// behind, and the directories it created (while they are empty).
pub struct LayoutWriter {
    dir: PathBuf,
    blobs: PathBuf,
    tags: Vec<Option<String>>,
    /// Directories this writer created, the deepest last (removed again when nothing is named).
    created: Vec<PathBuf>,
    lock: Option<File>,
    oci_layout: Option<tempfile::NamedTempFile>,
    /// Layers and configs, then manifests and indexes, each in staging order.
    staged_blobs: Vec<(PathBuf, tempfile::NamedTempFile)>,
    staged_manifests: Vec<(PathBuf, tempfile::NamedTempFile)>,
    staged: BTreeSet<Digest>,
    index: Option<tempfile::NamedTempFile>,
    committed: bool,
}

impl LayoutWriter {
    /// Create (when needed) and lock the layout directory `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        let mut w = Self::create(dir)?;
        w.lock()?;
        Ok(w)
    }

    /// Create (when needed) the layout directory `dir`, not locked yet: [`LayoutWriter::lock`]
    /// it before staging anything. (A process writing several layouts creates them all, then
    /// locks them in one order — by canonical path — so that two processes never wait for each
    /// other.)
    pub fn create(dir: &Path) -> Result<Self> {
        let mut w = LayoutWriter {
            dir: dir.to_path_buf(),
            blobs: dir.join("blobs/sha256"),
            tags: Vec::new(),
            created: Vec::new(),
            lock: None,
            oci_layout: None,
            staged_blobs: Vec::new(),
            staged_manifests: Vec::new(),
            staged: BTreeSet::new(),
            index: None,
            committed: false,
        };
        w.make_dirs()?;
        Ok(w)
    }

    fn make_dirs(&mut self) -> Result<()> {
        for d in [self.dir.clone(), self.dir.join("blobs"), self.blobs.clone()] {
            match fs::create_dir(&d) {
                Ok(()) => self.created.push(d),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound && d == self.dir => {
                    // a missing parent: created (and kept), then the layout's own directory
                    if let Some(parent) = d.parent() {
                        fs::create_dir_all(parent).map_err(OciError::io("create", parent))?;
                    }
                    match fs::create_dir(&d) {
                        Ok(()) => self.created.push(d),
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                        Err(e) => return Err(OciError::io("create", &d)(e)),
                    }
                }
                Err(e) => return Err(OciError::io("create", &d)(e)),
            }
        }
        Ok(())
    }

    /// Take the layout's lock (another writer of the directory waits for it), clear the temp
    /// files an interrupted writer left, and stage `oci-layout` when it is missing.
    pub fn lock(&mut self) -> Result<()> {
        if self.lock.is_some() {
            return Ok(());
        }
        let dir = self.dir.clone();
        // A writer that failed removes the directories it created: one that was waiting for its
        // lock then holds a directory no longer at `dir`, and makes it again.
        let mut tries = 0;
        let lock = loop {
            let same = match File::open(&dir) {
                Ok(lock) => {
                    lock.lock().map_err(OciError::io("lock", &dir))?;
                    let held = lock.metadata().map_err(OciError::io("stat", &dir))?;
                    let same = fs::metadata(&self.blobs).is_ok()
                        && fs::metadata(&dir)
                            .is_ok_and(|m| (m.dev(), m.ino()) == (held.dev(), held.ino()));
                    same.then_some(lock)
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(OciError::io("open", &dir)(e)),
            };
            if let Some(lock) = same {
                break lock;
            }
            tries += 1;
            if tries > 5 {
                return Err(OciError::invalid(
                    format!("layout directory {}", dir.display()),
                    "it keeps being removed while this writer waits for it; run again when nothing else removes it",
                ));
            }
            self.make_dirs()?;
        };
        self.lock = Some(lock);
        // Temp files an interrupted writer left behind (never under a blob's name): nobody else
        // writes while we hold the lock.
        if let Ok(rd) = fs::read_dir(&self.blobs) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with(".tmp-") {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        if !dir.join("oci-layout").exists() {
            self.oci_layout = Some(temp_with(&dir, OCI_LAYOUT_JSON)?);
        }
        Ok(())
    }

    /// The directory, as it was given.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Nothing is written into an unlocked layout: taking the lock clears temp files.
    fn locked(&self) -> Result<()> {
        match self.lock {
            Some(_) => Ok(()),
            None => Err(OciError::defect(
                format!("layout {}", self.dir.display()),
                "written before it was locked (LayoutWriter::lock)",
            )),
        }
    }

    /// Also name the image under `tag` in `index.json` (`None`: untagged) — for
    /// [`LayoutWriter::stage_image`].
    pub fn add_tag(&mut self, tag: Option<&str>) {
        let t = tag.map(str::to_string);
        if !self.tags.contains(&t) {
            self.tags.push(t);
        }
    }

    /// Whether the blob is in the layout already (with its size) or staged.
    pub fn has(&self, d: &Descriptor) -> bool {
        self.staged.contains(&d.digest)
            || fs::metadata(self.blobs.join(d.digest.hex())).is_ok_and(|m| m.len() == d.size)
    }

    /// A new temp file among the layout's blobs, for the caller to fill and hand to
    /// [`LayoutWriter::stage`] (dropped, it is removed).
    pub fn temp_blob(&self) -> Result<tempfile::NamedTempFile> {
        self.locked()?;
        tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(&self.blobs)
            .map_err(OciError::io("create temp file in", &self.blobs))
    }

    /// Stage `tmp` (holding exactly the blob `d`, which the caller has verified) under the
    /// blob's name. A blob staged already is not staged twice (`tmp` is dropped).
    pub fn stage(&mut self, d: &Descriptor, tmp: tempfile::NamedTempFile) {
        if !self.staged.insert(d.digest.clone()) {
            return;
        }
        let dest = self.blobs.join(d.digest.hex());
        if media::is_manifest(&d.media_type) || media::is_index(&d.media_type) {
            self.staged_manifests.push((dest, tmp));
        } else {
            self.staged_blobs.push((dest, tmp));
        }
    }

    /// Stage a blob from its bytes, unless the layout has it.
    pub fn stage_bytes(&mut self, d: &Descriptor, bytes: &[u8]) -> Result<()> {
        if self.has(d) {
            return Ok(());
        }
        self.locked()?;
        let tmp = temp_with(&self.blobs, bytes)?;
        self.stage(d, tmp);
        Ok(())
    }

    /// Stage a copy of a verified local file holding the blob `d` (copy_file_range), unless the
    /// layout has it.
    pub fn stage_copy(&mut self, d: &Descriptor, from: &Path) -> Result<()> {
        if self.has(d) {
            return Ok(());
        }
        let tmp = self.temp_blob()?;
        fs::copy(from, tmp.path()).map_err(OciError::io("copy", from))?;
        self.stage(d, tmp);
        Ok(())
    }

    /// Stage the whole of `img` (whose blobs are all in `store`: layers and config are copied
    /// unless the layout has them, the manifest written from its bytes) and `index.json`
    /// naming it under every tag of [`LayoutWriter::add_tag`] (untagged when none was added).
    pub fn stage_image(&mut self, store: &ContentStore, img: &Image) -> Result<()> {
        for (d, _) in image_blobs(img) {
            if d.digest == img.manifest_desc.digest {
                self.stage_bytes(&d, &img.manifest_bytes)?;
            } else if d.digest == img.manifest.config.digest {
                self.stage_bytes(&d, &img.config_bytes)?;
            } else if !self.has(&d) {
                if store.size(&d.digest) != Some(d.size) {
                    return Err(OciError::BlobMissing {
                        digest: d.digest.clone(),
                        location: format!("the content store {}", store.root().display()),
                    });
                }
                self.stage_copy(&d, &store.blob_path(&d.digest))?;
            }
        }
        let tags = if self.tags.is_empty() {
            vec![None]
        } else {
            self.tags.clone()
        };
        let entries: Vec<Descriptor> = tags
            .iter()
            .map(|t| index_entry(img, t.as_deref()))
            .collect();
        self.stage_index(&entries)
    }

    /// Stage `index.json`: the current one (read under the lock) with `entries` added, each
    /// replacing the older image of its tag (an untagged entry replaces only itself).
    pub fn stage_index(&mut self, entries: &[Descriptor]) -> Result<()> {
        self.locked()?;
        let ip = self.dir.join("index.json");
        let mut index = match fs::read(&ip) {
            Ok(b) => parse_top_index(&b, &format!("oci:{}", self.dir.display()))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Index::new(),
            Err(e) => {
                return Err(OciError::Io {
                    op: "read",
                    path: ip,
                    source: e,
                });
            }
        };
        for entry in entries {
            let tag = entry.ref_name().map(str::to_string);
            index.manifests.retain(|m| match &tag {
                Some(t) => m.ref_name() != Some(t.as_str()),
                None => !(m.ref_name().is_none() && m.digest == entry.digest),
            });
            index.manifests.push(entry.clone());
        }
        self.index = Some(temp_with(&self.dir, &to_json_bytes(&index, "index.json")?)?);
        Ok(())
    }

    /// Every staged file, for the caller's batch of fsyncs before [`LayoutWriter::name_all`].
    pub fn files(&self) -> Vec<(&File, &Path)> {
        self.staged_blobs
            .iter()
            .chain(&self.staged_manifests)
            .map(|(_, t)| t)
            .chain(&self.oci_layout)
            .chain(&self.index)
            .map(|t| (t.as_file(), t.path()))
            .collect()
    }

    /// Name every staged file, in order (blobs, `oci-layout`, manifests, `index.json`); the
    /// caller has made them durable ([`LayoutWriter::files`]).
    pub fn name_all(mut self) -> Result<()> {
        self.committed = true;
        let rename = |tmp: tempfile::NamedTempFile, dest: &Path| {
            tmp.persist(dest).map(|_| ()).map_err(|e| OciError::Io {
                op: "rename into",
                path: dest.to_path_buf(),
                source: e.error,
            })
        };
        for (dest, tmp) in std::mem::take(&mut self.staged_blobs) {
            rename(tmp, &dest)?;
        }
        if let Some(t) = self.oci_layout.take() {
            rename(t, &self.dir.join("oci-layout"))?;
        }
        for (dest, tmp) in std::mem::take(&mut self.staged_manifests) {
            rename(tmp, &dest)?;
        }
        if let Some(t) = self.index.take() {
            rename(t, &self.dir.join("index.json"))?;
        }
        Ok(())
    }

    /// fsync every staged file at once, then name them ([`LayoutWriter::name_all`]).
    pub fn commit(self) -> Result<()> {
        crate::store::fsync_all(&self.files())?;
        self.name_all()
    }
}

impl Drop for LayoutWriter {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        // the temp files first (their own drops would run after this), then the directories
        // this writer created, while they are empty
        self.staged_blobs.clear();
        self.staged_manifests.clear();
        self.oci_layout = None;
        self.index = None;
        for d in self.created.iter().rev() {
            let _ = fs::remove_dir(d);
        }
    }
}

fn tar_header(path: &str, size: u64, dir: bool) -> Result<tar::Header> {
    let mut h = tar::Header::new_ustar();
    h.set_path(path)
        .map_err(OciError::stream(format!("tar entry {path}")))?;
    h.set_size(size);
    h.set_mode(if dir { 0o755 } else { 0o644 });
    h.set_entry_type(if dir {
        tar::EntryType::Directory
    } else {
        tar::EntryType::Regular
    });
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    Ok(h)
}

/// Write into a temp file beside `dest`, then rename it over `dest`.
fn write_tar_atomically(
    dest: &Path,
    f: impl FnOnce(&mut tar::Builder<io::BufWriter<&mut File>>) -> Result<()>,
) -> Result<()> {
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir).map_err(OciError::io("create", dir))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(OciError::io("create temp file in", dir))?;
    {
        let mut b = tar::Builder::new(io::BufWriter::with_capacity(256 * 1024, tmp.as_file_mut()));
        f(&mut b)?;
        let w = b.into_inner().map_err(OciError::io("write", dest))?;
        w.into_inner().map_err(|e| OciError::Io {
            op: "write",
            path: dest.to_path_buf(),
            source: e.into_error(),
        })?;
    }
    tmp.as_file()
        .sync_all()
        .map_err(OciError::io("fsync", tmp.path()))?;
    tmp.persist(dest).map_err(|e| OciError::Io {
        op: "rename into",
        path: dest.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

/// Write an oci-archive: a tar of a layout holding this one image, deterministic byte for byte.
pub fn write_oci_archive(
    file: &Path,
    tag: Option<&str>,
    src: &dyn ImageSource,
    img: &Image,
) -> Result<Descriptor> {
    write_oci_archive_plan(file, src, image_blobs(img), index_entry(img, tag))
}

fn write_oci_archive_plan(
    file: &Path,
    src: &dyn ImageSource,
    plan: Vec<(Descriptor, &'static str)>,
    entry: Descriptor,
) -> Result<Descriptor> {
    let mut index = Index::new();
    index.manifests.push(entry.clone());
    let index_bytes = to_json_bytes(&index, "index.json")?;
    write_tar_atomically(file, |b| {
        let e = |p: &str| OciError::stream(format!("writing {p} into {}", file.display()));
        b.append(
            &tar_header("oci-layout", OCI_LAYOUT_JSON.len() as u64, false)?,
            OCI_LAYOUT_JSON,
        )
        .map_err(e("oci-layout"))?;
        b.append(
            &tar_header("index.json", index_bytes.len() as u64, false)?,
            &index_bytes[..],
        )
        .map_err(e("index.json"))?;
        b.append(&tar_header("blobs/", 0, true)?, io::empty())
            .map_err(e("blobs/"))?;
        b.append(&tar_header("blobs/sha256/", 0, true)?, io::empty())
            .map_err(e("blobs/sha256/"))?;
        for (d, what) in plan {
            let path = d.digest.layout_path();
            let what = format!("{what} {} of {}", d.digest, src.describe());
            let r = VerifyingReader::new(src.open_blob(&d)?, &d, what.clone());
            b.append(&tar_header(&path, d.size, false)?, r)
                .map_err(OciError::stream(format!(
                    "writing {what} into {}",
                    file.display()
                )))?;
        }
        Ok(())
    })?;
    Ok(entry)
}

/// Write a docker-archive (`docker save` format: `manifest.json`, `repositories`, the config and
/// uncompressed layers named by their diff_id), loadable by `docker load` and `podman load`.
pub fn write_docker_archive(
    file: &Path,
    reference: Option<&Reference>,
    src: &dyn ImageSource,
    img: &Image,
) -> Result<()> {
    let diff_ids = img.diff_ids()?;
    if diff_ids.len() != img.manifest.layers.len() {
        return Err(OciError::defect(
            src.describe(),
            format!(
                "config lists {} diff_ids but the manifest has {} layers",
                diff_ids.len(),
                img.manifest.layers.len()
            ),
        ));
    }
    let scratch_dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let config_name = format!("{}.json", img.manifest.config.digest.hex());
    let layer_names: Vec<String> = diff_ids
        .iter()
        .map(|d| format!("{}.tar", d.hex()))
        .collect();
    let repo_tags: Option<Vec<String>> = reference.map(|r| vec![r.familiar()]);
    let manifest = vec![DockerManifestEntry {
        config: config_name.clone(),
        repo_tags: repo_tags.clone(),
        layers: layer_names.clone(),
    }];
    let manifest_bytes = to_json_bytes(&manifest, "manifest.json")?;
    write_tar_atomically(file, |b| {
        let e = |p: String| OciError::stream(format!("writing {p} into {}", file.display()));
        let mut written = BTreeSet::new();
        for ((layer, diff_id), name) in img.manifest.layers.iter().zip(&diff_ids).zip(&layer_names)
        {
            if !written.insert(name.clone()) {
                continue;
            }
            let compression = media::layer_compression(&layer.media_type).ok_or_else(|| {
                OciError::defect(
                    src.describe(),
                    format!(
                        "layer {} has media type `{}`, not a layer type",
                        layer.digest, layer.media_type
                    ),
                )
            })?;
            // The tar header needs the uncompressed size first: decompress into a temp file,
            // checking the diff_id on the way.
            let mut tmp = tempfile::Builder::new()
                .prefix(".tmp-layer-")
                .tempfile_in(scratch_dir)
                .map_err(OciError::io("create temp file in", scratch_dir))?;
            let what = format!("layer {} of {}", layer.digest, src.describe());
            let raw = VerifyingReader::new(src.open_blob(layer)?, layer, what.clone());
            let mut dec = crate::extract::decompress(raw, compression)?;
            let mut hw = HashingWriter::new(io::BufWriter::new(tmp.as_file_mut()));
            io::copy(&mut dec, &mut hw)
                .map_err(OciError::stream(format!("decompressing {what}")))?;
            let (w, got, size) = hw.finish();
            w.into_inner().map_err(|e| OciError::Stream {
                what: what.clone(),
                source: e.into_error(),
            })?;
            if &got != diff_id {
                return Err(OciError::DigestMismatch {
                    what: format!("uncompressed {what} (its diff_id)"),
                    expected: diff_id.clone(),
                    actual: got,
                });
            }
            let f = tmp.as_file_mut();
            f.seek(SeekFrom::Start(0))
                .map_err(OciError::io("seek", scratch_dir))?;
            b.append(&tar_header(name, size, false)?, BufReader::new(f))
                .map_err(e(name.clone()))?;
        }
        let mut cfg = VerifyingReader::new(
            src.open_blob(&img.manifest.config)?,
            &img.manifest.config,
            "config",
        );
        b.append(
            &tar_header(&config_name, img.manifest.config.size, false)?,
            &mut cfg,
        )
        .map_err(e(config_name.clone()))?;
        b.append(
            &tar_header("manifest.json", manifest_bytes.len() as u64, false)?,
            &manifest_bytes[..],
        )
        .map_err(e("manifest.json".into()))?;
        if let (Some(r), Some(last)) = (reference, diff_ids.last()) {
            let name = r.familiar();
            let (repo, tag) = name.rsplit_once(':').unwrap_or((name.as_str(), "latest"));
            let mut inner = BTreeMap::new();
            inner.insert(tag.to_string(), last.hex().to_string());
            let mut repos = BTreeMap::new();
            repos.insert(repo.to_string(), inner);
            let rb = to_json_bytes(&repos, "repositories")?;
            b.append(
                &tar_header("repositories", rb.len() as u64, false)?,
                &rb[..],
            )
            .map_err(e("repositories".into()))?;
        }
        Ok(())
    })
}

/// Write `img` to a location.
pub fn write_location(loc: &Location, src: &dyn ImageSource, img: &Image) -> Result<()> {
    match loc {
        Location::Layout { dir, tag } => write_layout(dir, tag.as_deref(), src, img).map(|_| ()),
        Location::OciArchive { file, tag } => {
            write_oci_archive(file, tag.as_deref(), src, img).map(|_| ())
        }
        Location::DockerArchive { file, reference } => {
            write_docker_archive(file, reference.as_ref(), src, img)
        }
        Location::Registry(r) => Err(OciError::Unsupported {
            what: format!("pushing to docker://{r}"),
            hint:
                "registry push is not built yet; write oci:DIR:TAG and push it with `skopeo copy`"
                    .into(),
        }),
        Location::Scratch => Err(OciError::invalid(
            "output",
            "`scratch` cannot be written to",
        )),
    }
}

/// The compression of a layer descriptor, or a defect naming it.
pub fn layer_compression_of(d: &Descriptor, location: &str) -> Result<Compression> {
    media::layer_compression(&d.media_type).ok_or_else(|| {
        OciError::defect(
            location,
            format!(
                "layer {} has media type `{}`, which is not a layer type",
                d.digest, d.media_type
            ),
        )
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// One blob in memory, served as is.
    struct OneBlob(Vec<u8>);

    impl ImageSource for OneBlob {
        fn describe(&self) -> String {
            "memory".into()
        }
        fn root(&self) -> Result<Descriptor> {
            Err(OciError::invalid("root", "none"))
        }
        fn open_blob(&self, _desc: &Descriptor) -> Result<Box<dyn Read + '_>> {
            Ok(Box::new(io::Cursor::new(self.0.clone())))
        }
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    /// ~3 MB of text-like data: several chunks through the hasher thread.
    fn data() -> Vec<u8> {
        (0..200_000u32)
            .flat_map(|i| format!("line {i} of a layer\n").into_bytes())
            .collect()
    }

    fn check(data: &[u8]) -> LayerCheck {
        LayerCheck {
            index: 0,
            diff_id: Digest::of_bytes(data),
            compression: Compression::Gzip,
        }
    }

    #[test]
    fn a_layer_streams_whole_with_digest_and_diff_id_checked() {
        let data = data();
        let blob = gzip(&data);
        let d = Descriptor::of_bytes(media::OCI_LAYER_GZIP, &blob);
        let mut out = tempfile::tempfile().unwrap();
        stream_verified(
            &OneBlob(blob.clone()),
            &d,
            "layer",
            Some(&check(&data)),
            None,
            &mut out,
        )
        .unwrap();
        let mut got = Vec::new();
        out.seek(SeekFrom::Start(0)).unwrap();
        out.read_to_end(&mut got).unwrap();
        assert_eq!(got, blob);
    }

    #[test]
    fn a_wrong_diff_id_and_a_corrupt_stream_are_refused() {
        let data = data();
        let blob = gzip(&data);
        let d = Descriptor::of_bytes(media::OCI_LAYER_GZIP, &blob);
        let mut wrong = check(&data);
        wrong.diff_id = Digest::of_bytes(b"something else");
        let e = stream_verified(
            &OneBlob(blob.clone()),
            &d,
            "layer",
            Some(&wrong),
            None,
            &mut tempfile::tempfile().unwrap(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("rootfs.diff_ids[0]"), "{e}");
        // corrupted in transit: the digest mismatch is what is reported, not the inflate error
        let mut bad = blob.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0x5a;
        let e = stream_verified(
            &OneBlob(bad),
            &d,
            "layer",
            Some(&check(&data)),
            None,
            &mut tempfile::tempfile().unwrap(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("does not match its digest"), "{e}");
        // cut short
        let e = stream_verified(
            &OneBlob(blob[..mid].to_vec()),
            &d,
            "layer",
            Some(&check(&data)),
            None,
            &mut tempfile::tempfile().unwrap(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("truncated"), "{e}");
    }
}
