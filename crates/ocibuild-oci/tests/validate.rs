//! `validate` against a hand-built image layout and broken copies of it, each with exactly one
//! defect (the matrix of `docs/peers.md` §2). The image builder (`fixture`) and the mutations
//! (`mutate`) are written to be reused by end-to-end tests of the CLI.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use ocibuild_oci::image::ImageSource;
use ocibuild_oci::validate::{BlobKind, ValidateOptions, ValidationReport, validate};

/// Build OCI image layouts by hand, with `tar`, `flate2` and `serde_json` only (no ocibuild code),
/// so the fixture does not share bugs with the code under test.
pub mod fixture {
    use std::fs;
    use std::io::Write;
    use std::path::Path;

    use serde_json::{Value, json};

    use super::mutate::{put_blob, sha, write_json};

    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

    /// One entry of a layer tar.
    pub enum Entry<'a> {
        Dir(&'a str),
        File(&'a str, Vec<u8>),
        /// A regular file with mode 0755.
        Exec(&'a str, Vec<u8>),
    }

    /// A deterministic tar (mtime 0, uid/gid 0) with the two end-of-archive blocks.
    pub fn tar(entries: &[Entry<'_>]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in entries {
            let mut h = tar::Header::new_ustar();
            h.set_mtime(0);
            h.set_uid(0);
            h.set_gid(0);
            let (path, data, kind, mode): (&str, &[u8], _, u32) = match e {
                Entry::Dir(p) => (p, &[], tar::EntryType::Directory, 0o755),
                Entry::File(p, d) => (p, d, tar::EntryType::Regular, 0o644),
                Entry::Exec(p, d) => (p, d, tar::EntryType::Regular, 0o755),
            };
            h.set_entry_type(kind);
            h.set_mode(mode);
            h.set_size(data.len() as u64);
            b.append_data(&mut h, path, data).unwrap();
        }
        b.into_inner().unwrap()
    }

    /// Deterministic, poorly compressible bytes.
    pub fn noise(len: usize, seed: u32) -> Vec<u8> {
        let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                b'a' + (x % 26) as u8
            })
            .collect()
    }

    pub fn gzip(raw: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        e.write_all(raw).unwrap();
        e.finish().unwrap()
    }

    pub fn zstd(raw: &[u8]) -> Vec<u8> {
        zstd::stream::encode_all(raw, 3).unwrap()
    }

    /// A layer: its media type, its blob and its uncompressed tar.
    pub struct Layer {
        pub media_type: &'static str,
        pub blob: Vec<u8>,
        pub tar: Vec<u8>,
    }

    impl Layer {
        pub fn gzip(tar: Vec<u8>) -> Self {
            Self {
                media_type: LAYER_GZIP,
                blob: gzip(&tar),
                tar,
            }
        }
        pub fn zstd(tar: Vec<u8>) -> Self {
            Self {
                media_type: LAYER_ZSTD,
                blob: zstd(&tar),
                tar,
            }
        }
        pub fn plain(tar: Vec<u8>) -> Self {
            Self {
                media_type: LAYER_TAR,
                blob: tar.clone(),
                tar,
            }
        }
    }

    /// The two layers of the control image: files, then a whiteout and an executable.
    /// Layer 0's last file is 6000 bytes, so cutting 1700 bytes off the tar cuts inside it.
    pub fn control_layers() -> Vec<Layer> {
        vec![
            Layer::gzip(tar(&[
                Entry::Dir("etc/"),
                Entry::File("etc/motd", b"hello\n".to_vec()),
                Entry::File("etc/hello.txt", noise(6000, 1)),
            ])),
            Layer::gzip(tar(&[
                Entry::File("etc/.wh.motd", Vec::new()),
                Entry::Dir("usr/"),
                Entry::Dir("usr/bin/"),
                Entry::Exec("usr/bin/app", noise(3000, 2)),
            ])),
        ]
    }

    /// Write the layers and config of one image, and its manifest; return the manifest descriptor.
    pub fn write_image(dir: &Path, layers: &[Layer], os: &str, arch: &str) -> Value {
        let mut descs = Vec::new();
        let mut diff_ids = Vec::new();
        for l in layers {
            let (d, n) = put_blob(dir, &l.blob);
            descs.push(json!({"mediaType": l.media_type, "digest": d, "size": n}));
            diff_ids.push(sha(&l.tar));
        }
        let config = json!({
            "architecture": arch,
            "os": os,
            "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], "Cmd": ["/usr/bin/app"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": layers.iter().map(|_| json!({"created_by": "fixture"})).collect::<Vec<_>>(),
        });
        let (cd, cn) = put_blob(dir, &serde_json::to_vec(&config).unwrap());
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": cd, "size": cn},
            "layers": descs,
        });
        let (md, mn) = put_blob(dir, &serde_json::to_vec(&manifest).unwrap());
        json!({"mediaType": OCI_MANIFEST, "digest": md, "size": mn})
    }

    /// Write an index blob over `children`; return its descriptor.
    pub fn write_index(dir: &Path, children: Vec<Value>) -> Value {
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children});
        let (d, n) = put_blob(dir, &serde_json::to_vec(&index).unwrap());
        json!({"mediaType": OCI_INDEX, "digest": d, "size": n})
    }

    /// `oci-layout` and `index.json` naming `root` as `tag`.
    pub fn write_layout(dir: &Path, mut root: Value, tag: &str) {
        fs::create_dir_all(dir).unwrap();
        fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        root["annotations"] = json!({REF_NAME: tag});
        write_json(
            &dir.join("index.json"),
            &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [root]}),
        );
    }

    /// The control image: linux/amd64, two gzip layers, `index.json` → manifest (umoci's shape).
    pub fn control(dir: &Path, tag: &str) {
        let m = write_image(dir, &control_layers(), "linux", "amd64");
        write_layout(dir, m, tag);
    }

    /// The control image behind a nested index: `index.json` → index blob → manifest with a
    /// platform (the shape docker buildx and ocibuild write).
    pub fn control_nested(dir: &Path, tag: &str) {
        let mut m = write_image(dir, &control_layers(), "linux", "amd64");
        m["platform"] = json!({"os": "linux", "architecture": "amd64"});
        let idx = write_index(dir, vec![m]);
        write_layout(dir, idx, tag);
    }
}

/// Make broken copies of an OCI image layout, one defect at a time, like
/// `/work/shared/tools/oci-mutate.py`: where the defect is in a JSON document, the digests and
/// sizes of every descriptor above it (config → manifest → nested indexes → `index.json`) are
/// recomputed, so the image is otherwise consistent and only the named defect is present.
///
/// Works on any layout whose image is reached from `index.json` through nested indexes (the first
/// child of each), so it can break images ocibuild itself wrote. Blobs are JSON-reserialised
/// compactly when rewritten; old blobs are left behind, as umoci does.
pub mod mutate {
    use std::fs;
    use std::path::{Path, PathBuf};

    use serde_json::Value;
    use sha2::Digest as _;

    /// The media type every `*MediaType` mutation writes.
    pub const BOGUS: &str = "application/vnd.example.bogus";

    /// `sha256:<hex>` of some bytes.
    pub fn sha(b: &[u8]) -> String {
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(b)))
    }

    /// `DIR/blobs/<algo>/<hex>`.
    pub fn blob_path(dir: &Path, digest: &str) -> PathBuf {
        let (algo, hex) = digest.split_once(':').expect("digest has an algorithm");
        dir.join("blobs").join(algo).join(hex)
    }

    /// Store a blob under its sha256; return its digest and size.
    pub fn put_blob(dir: &Path, bytes: &[u8]) -> (String, u64) {
        let d = sha(bytes);
        let p = blob_path(dir, &d);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, bytes).unwrap();
        (d, bytes.len() as u64)
    }

    pub fn read_json(path: &Path) -> Value {
        serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
    }

    pub fn write_json(path: &Path, v: &Value) {
        fs::write(path, serde_json::to_vec(v).unwrap()).unwrap();
    }

    fn blob_json(dir: &Path, desc: &Value) -> Value {
        read_json(&blob_path(dir, desc["digest"].as_str().unwrap()))
    }

    /// Store `v` as a blob and point `desc` at it.
    fn repoint(dir: &Path, desc: &mut Value, v: &Value) {
        let (d, n) = put_blob(dir, &serde_json::to_vec(v).unwrap());
        desc["digest"] = d.into();
        desc["size"] = n.into();
    }

    /// Copy a layout directory (`dst` must not exist).
    pub fn copy_layout(src: &Path, dst: &Path) {
        assert!(!dst.exists(), "{} exists", dst.display());
        fs::create_dir_all(dst).unwrap();
        for e in fs::read_dir(src).unwrap() {
            let e = e.unwrap();
            let to = dst.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                copy_layout(&e.path(), &to);
            } else {
                fs::copy(e.path(), &to).unwrap();
            }
        }
    }

    fn is_index(desc: &Value) -> bool {
        matches!(
            desc["mediaType"].as_str(),
            Some(
                "application/vnd.oci.image.index.v1+json"
                    | "application/vnd.docker.distribution.manifest.list.v2+json"
            )
        )
    }

    /// Position in `index.json` of the entry tagged `tag`, or the first entry.
    fn entry(index: &Value, tag: Option<&str>) -> usize {
        let ms = index["manifests"].as_array().unwrap();
        match tag {
            None => 0,
            Some(t) => ms
                .iter()
                .position(|m| m["annotations"]["org.opencontainers.image.ref.name"] == t)
                .unwrap_or_else(|| panic!("no entry tagged {t} in index.json")),
        }
    }

    fn edit_under(dir: &Path, desc: &mut Value, f: &mut dyn FnMut(&mut Value, &mut Value)) {
        if is_index(desc) {
            let mut idx = blob_json(dir, desc);
            edit_under(dir, &mut idx["manifests"][0], f);
            repoint(dir, desc, &idx);
        } else {
            let mut m = blob_json(dir, desc);
            f(desc, &mut m);
            repoint(dir, desc, &m);
        }
    }

    /// Edit the image manifest of `tag` and the descriptor that points at it (in `index.json` or
    /// in the nested index above it), then rewrite every blob above, recomputing digests.
    pub fn edit_image(dir: &Path, tag: Option<&str>, mut f: impl FnMut(&mut Value, &mut Value)) {
        let p = dir.join("index.json");
        let mut index = read_json(&p);
        let i = entry(&index, tag);
        edit_under(dir, &mut index["manifests"][i], &mut f);
        write_json(&p, &index);
    }

    /// Edit the image manifest of `tag`, recomputing the digests above it.
    pub fn edit_manifest(dir: &Path, tag: Option<&str>, f: impl FnOnce(&mut Value)) {
        let mut f = Some(f);
        edit_image(dir, tag, |_, m| (f.take().unwrap())(m));
    }

    /// Edit the config of `tag`, recomputing the digests above it.
    pub fn edit_config(dir: &Path, tag: Option<&str>, f: impl FnOnce(&mut Value)) {
        edit_manifest(dir, tag, |m| {
            let mut c = blob_json(dir, &m["config"]);
            f(&mut c);
            repoint(dir, &mut m["config"], &c);
        });
    }

    /// The descriptor of the image manifest of `tag` (following nested indexes).
    pub fn manifest_descriptor(dir: &Path, tag: Option<&str>) -> Value {
        let index = read_json(&dir.join("index.json"));
        let mut d = index["manifests"][entry(&index, tag)].clone();
        while is_index(&d) {
            d = blob_json(dir, &d)["manifests"][0].clone();
        }
        d
    }

    pub fn manifest(dir: &Path, tag: Option<&str>) -> Value {
        blob_json(dir, &manifest_descriptor(dir, tag))
    }

    pub fn config(dir: &Path, tag: Option<&str>) -> Value {
        blob_json(dir, &manifest(dir, tag)["config"])
    }

    /// The blob file of layer `i` of `tag`.
    pub fn layer_path(dir: &Path, tag: Option<&str>, i: usize) -> PathBuf {
        blob_path(
            dir,
            manifest(dir, tag)["layers"][i]["digest"].as_str().unwrap(),
        )
    }

    /// Replace layer `i`'s blob by `blob` (digest and size recomputed); when `diff_id` is given,
    /// it becomes `rootfs.diff_ids[i]`.
    pub fn replace_layer(
        dir: &Path,
        tag: Option<&str>,
        i: usize,
        blob: &[u8],
        diff_id: Option<String>,
    ) {
        let old = layer_path(dir, tag, i);
        fs::remove_file(old).unwrap();
        edit_manifest(dir, tag, |m| {
            let (d, n) = put_blob(dir, blob);
            m["layers"][i]["digest"] = d.into();
            m["layers"][i]["size"] = n.into();
            if let Some(id) = diff_id {
                let mut c = blob_json(dir, &m["config"]);
                c["rootfs"]["diff_ids"][i] = id.into();
                repoint(dir, &mut m["config"], &c);
            }
        });
    }

    /// Decompress a gzip blob (all members).
    pub fn gunzip(blob: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(blob), &mut out).unwrap();
        out
    }

    /// Change the last hex digit of the first occurrence of `needle` inside a blob file, in place:
    /// same length, so only the digest no longer matches.
    fn flip_in_place(path: &Path, needle: &str) {
        let mut b = fs::read(path).unwrap();
        let at = b
            .windows(needle.len())
            .position(|w| w == needle.as_bytes())
            .expect("needle in blob")
            + needle.len()
            - 1;
        b[at] = if b[at] == b'0' { b'1' } else { b'0' };
        fs::write(path, b).unwrap();
    }

    /// One defect each.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Mutation {
        /// One byte in the middle of layer 0's blob flipped (the blob no longer matches its digest).
        BlobCorrupt,
        /// Layer 0's blob file deleted.
        BlobMissing,
        /// Layer 0's descriptor size one more than the blob.
        LayerSize,
        /// `rootfs.diff_ids[0]` replaced by a well-formed wrong digest.
        DiffId,
        /// `rootfs.diff_ids` one entry shorter than the manifest's layers.
        DiffIdCount,
        /// Layer 0's media type [`BOGUS`].
        LayerMediaType,
        /// The config descriptor's media type [`BOGUS`].
        ConfigMediaType,
        /// The media type of the descriptor pointing at the manifest ([`BOGUS`]): the entry of
        /// `index.json`, or of the nested index when there is one.
        ManifestMediaType,
        /// Manifest `schemaVersion` 1.
        ManifestSchema,
        /// One hex digit of a diff_id changed inside the config blob, in place.
        ConfigCorrupt,
        /// One hex digit of the config digest changed inside the manifest blob, in place.
        ManifestCorrupt,
        /// Layer 0 replaced by its uncompressed tar, still labelled gzip (digests consistent).
        NotGzip,
        /// Layer 0's tar cut short inside its last file, re-gzipped, digests and diff_id
        /// recomputed.
        TarTruncated,
        /// Config without `os` and `architecture`.
        ConfigOsMissing,
        /// Layer 0's digest written as `sha512:…`.
        DigestAlgo,
        /// The `oci-layout` marker file removed.
        OciLayoutMissing,
    }

    impl Mutation {
        pub const ALL: [Mutation; 16] = [
            Mutation::BlobCorrupt,
            Mutation::BlobMissing,
            Mutation::LayerSize,
            Mutation::DiffId,
            Mutation::DiffIdCount,
            Mutation::LayerMediaType,
            Mutation::ConfigMediaType,
            Mutation::ManifestMediaType,
            Mutation::ManifestSchema,
            Mutation::ConfigCorrupt,
            Mutation::ManifestCorrupt,
            Mutation::NotGzip,
            Mutation::TarTruncated,
            Mutation::ConfigOsMissing,
            Mutation::DigestAlgo,
            Mutation::OciLayoutMissing,
        ];

        /// The name `oci-mutate.py` uses.
        pub fn name(self) -> &'static str {
            match self {
                Mutation::BlobCorrupt => "blob-corrupt",
                Mutation::BlobMissing => "blob-missing",
                Mutation::LayerSize => "layer-size",
                Mutation::DiffId => "diffid",
                Mutation::DiffIdCount => "diffid-count",
                Mutation::LayerMediaType => "layer-mediatype",
                Mutation::ConfigMediaType => "config-mediatype",
                Mutation::ManifestMediaType => "manifest-mediatype",
                Mutation::ManifestSchema => "manifest-schema",
                Mutation::ConfigCorrupt => "config-corrupt",
                Mutation::ManifestCorrupt => "manifest-corrupt",
                Mutation::NotGzip => "not-gzip",
                Mutation::TarTruncated => "tar-truncated",
                Mutation::ConfigOsMissing => "config-os-missing",
                Mutation::DigestAlgo => "digest-algo",
                Mutation::OciLayoutMissing => "oci-layout-missing",
            }
        }

        /// Substrings ocibuild's error message for this defect contains (all of them).
        pub fn needles(self) -> &'static [&'static str] {
            match self {
                Mutation::BlobCorrupt => &["layer 0", "does not match its digest"],
                Mutation::BlobMissing => &["missing", "layer 0"],
                Mutation::LayerSize => &["layer 0", "wrong size"],
                Mutation::DiffId => &["layer 0", "diff_id"],
                Mutation::DiffIdCount => &["1 rootfs.diff_ids", "2 layers"],
                Mutation::LayerMediaType => &["layers[0]", "media type", BOGUS],
                Mutation::ConfigMediaType => &["config", "media type", BOGUS],
                Mutation::ManifestMediaType => &["media type", BOGUS],
                Mutation::ManifestSchema => &["schemaVersion 1"],
                Mutation::ConfigCorrupt => &["config", "does not match its digest"],
                Mutation::ManifestCorrupt => &["manifest", "does not match its digest"],
                Mutation::NotGzip => &["layer 0", "gzip"],
                Mutation::TarTruncated => &["layer 0", "tar", "truncated"],
                Mutation::ConfigOsMissing => &["config", "`os`"],
                Mutation::DigestAlgo => &["layers[0].digest", "sha512"],
                Mutation::OciLayoutMissing => &["oci-layout"],
            }
        }
    }

    /// Introduce `m` into the image `tag` of the layout `dir`, in place.
    pub fn apply(dir: &Path, tag: Option<&str>, m: Mutation) {
        match m {
            Mutation::BlobCorrupt => {
                let p = layer_path(dir, tag, 0);
                let mut b = fs::read(&p).unwrap();
                let mid = b.len() / 2;
                b[mid] ^= 0xff;
                fs::write(&p, b).unwrap();
            }
            Mutation::BlobMissing => fs::remove_file(layer_path(dir, tag, 0)).unwrap(),
            Mutation::LayerSize => edit_manifest(dir, tag, |m| {
                m["layers"][0]["size"] = (m["layers"][0]["size"].as_u64().unwrap() + 1).into();
            }),
            Mutation::DiffId => edit_config(dir, tag, |c| {
                c["rootfs"]["diff_ids"][0] = sha(b"not the layer").into()
            }),
            Mutation::DiffIdCount => edit_config(dir, tag, |c| {
                c["rootfs"]["diff_ids"].as_array_mut().unwrap().pop();
            }),
            Mutation::LayerMediaType => {
                edit_manifest(dir, tag, |m| m["layers"][0]["mediaType"] = BOGUS.into())
            }
            Mutation::ConfigMediaType => {
                edit_manifest(dir, tag, |m| m["config"]["mediaType"] = BOGUS.into())
            }
            Mutation::ManifestMediaType => {
                edit_image(dir, tag, |d, _| d["mediaType"] = BOGUS.into())
            }
            Mutation::ManifestSchema => edit_manifest(dir, tag, |m| m["schemaVersion"] = 1.into()),
            Mutation::ConfigCorrupt => {
                let c = config(dir, tag);
                let id = c["rootfs"]["diff_ids"][0].as_str().unwrap().to_string();
                flip_in_place(
                    &blob_path(
                        dir,
                        manifest(dir, tag)["config"]["digest"].as_str().unwrap(),
                    ),
                    &id,
                );
            }
            Mutation::ManifestCorrupt => {
                let m = manifest(dir, tag);
                let cd = m["config"]["digest"].as_str().unwrap().to_string();
                flip_in_place(
                    &blob_path(
                        dir,
                        manifest_descriptor(dir, tag)["digest"].as_str().unwrap(),
                    ),
                    &cd,
                );
            }
            Mutation::NotGzip => {
                let raw = gunzip(&fs::read(layer_path(dir, tag, 0)).unwrap());
                replace_layer(dir, tag, 0, &raw, None);
            }
            Mutation::TarTruncated => {
                let mut raw = gunzip(&fs::read(layer_path(dir, tag, 0)).unwrap());
                let keep = if raw.len() > 4096 {
                    raw.len() - 1700
                } else {
                    raw.len() / 2
                };
                raw.truncate(keep);
                let blob = super::fixture::gzip(&raw);
                replace_layer(dir, tag, 0, &blob, Some(sha(&raw)));
            }
            Mutation::ConfigOsMissing => edit_config(dir, tag, |c| {
                let o = c.as_object_mut().unwrap();
                o.remove("os");
                o.remove("architecture");
            }),
            Mutation::DigestAlgo => edit_manifest(dir, tag, |m| {
                let hex = m["layers"][0]["digest"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("sha256:")
                    .to_string();
                m["layers"][0]["digest"] = format!("sha512:{hex}{hex}").into();
            }),
            Mutation::OciLayoutMissing => fs::remove_file(dir.join("oci-layout")).unwrap(),
        }
    }

    /// Copy `src` to `dst` and introduce `m` into the copy.
    pub fn mutated_copy(src: &Path, dst: &Path, tag: Option<&str>, m: Mutation) {
        copy_layout(src, dst);
        apply(dst, tag, m);
    }
}

const TAG: &str = "t";

/// The layout reader under test.
fn open(dir: &Path) -> ocibuild_oci::Result<Box<dyn ImageSource>> {
    Ok(Box::new(ocibuild_oci::layout::LayoutSource::open(
        dir,
        Some(TAG),
    )?))
}

/// Open and validate; opening is part of validating a layout (a missing `oci-layout` fails there).
fn check(dir: &Path, opts: &ValidateOptions) -> ocibuild_oci::Result<ValidationReport> {
    let src = open(dir)?;
    validate(src.as_ref(), opts)
}

fn assert_defect(nested: bool, m: mutate::Mutation) {
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good");
    if nested {
        fixture::control_nested(&good, TAG);
    } else {
        fixture::control(&good, TAG);
    }
    check(&good, &ValidateOptions::default()).expect("the control image is valid");
    let bad = tmp.path().join(m.name());
    mutate::mutated_copy(&good, &bad, Some(TAG), m);
    let err = match check(&bad, &ValidateOptions::default()) {
        Ok(r) => panic!("{} was not detected; checked {:?}", m.name(), r.checked),
        Err(e) => e.to_string(),
    };
    for n in m.needles() {
        assert!(err.contains(n), "{}: message lacks `{n}`: {err}", m.name());
    }
    // says where
    if m != mutate::Mutation::OciLayoutMissing {
        assert!(
            err.contains(&format!("oci:{}", bad.display())),
            "{}: message does not say where: {err}",
            m.name()
        );
    }
}

macro_rules! defect_tests {
    ($($name:ident => $m:ident,)*) => {
        mod defects {
            use super::*;
            $(
                #[test]
                fn $name() {
                    assert_defect(false, mutate::Mutation::$m);
                }
            )*
        }
        mod defects_nested {
            use super::*;
            $(
                #[test]
                fn $name() {
                    assert_defect(true, mutate::Mutation::$m);
                }
            )*
        }
    };
}

defect_tests! {
    blob_corrupt => BlobCorrupt,
    blob_missing => BlobMissing,
    layer_size_off_by_one => LayerSize,
    wrong_diff_id => DiffId,
    fewer_diff_ids_than_layers => DiffIdCount,
    bogus_layer_media_type => LayerMediaType,
    bogus_config_media_type => ConfigMediaType,
    bogus_index_child_media_type => ManifestMediaType,
    manifest_schema_version_1 => ManifestSchema,
    config_bytes_not_matching_digest => ConfigCorrupt,
    manifest_bytes_not_matching_digest => ManifestCorrupt,
    gzip_labelled_plain_tar => NotGzip,
    tar_truncated_inside_a_file => TarTruncated,
    config_without_os_and_architecture => ConfigOsMissing,
    unknown_digest_algorithm => DigestAlgo,
    no_oci_layout_file => OciLayoutMissing,
}

#[test]
fn every_mutation_has_a_test() {
    // the macro above lists each once; keep ALL and the tests in step
    assert_eq!(mutate::Mutation::ALL.len(), 16);
}

#[test]
fn control_passes_and_reports_what_it_read() {
    let tmp = tempfile::tempdir().unwrap();
    fixture::control(tmp.path(), TAG);
    let r = check(tmp.path(), &ValidateOptions::default()).unwrap();
    assert_eq!(r.images, 1);
    assert_eq!(r.count(BlobKind::Manifest), 1);
    assert_eq!(r.count(BlobKind::Config), 1);
    assert_eq!(r.count(BlobKind::Layer), 2);
    assert_eq!(r.count(BlobKind::Index), 0);
    let cfg = mutate::config(tmp.path(), Some(TAG));
    let ids: Vec<String> = r
        .checked
        .iter()
        .filter_map(|b| b.diff_id.as_ref().map(|d| d.to_string()))
        .collect();
    assert_eq!(serde_json::Value::from(ids), cfg["rootfs"]["diff_ids"]);
    assert_eq!(r.layers_not_read, 0);
    assert!(r.location.starts_with("oci:"));

    let nested = tmp.path().join("nested");
    fixture::control_nested(&nested, TAG);
    let r = check(&nested, &ValidateOptions::default()).unwrap();
    assert_eq!(
        (r.images, r.count(BlobKind::Index), r.count(BlobKind::Layer)),
        (1, 1, 2)
    );
}

/// Every layer flavour: zstd, uncompressed, multi-member gzip, an empty tar, a 0-byte tar, a
/// whiteout-only layer; two platforms sharing a layer, and a BuildKit attestation manifest.
#[test]
fn every_kind_of_valid_layer_and_a_multi_platform_index_pass() {
    use fixture::{Entry, Layer, tar};
    use serde_json::json;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let base = tar(&[
        Entry::Dir("a/"),
        Entry::File("a/one", fixture::noise(70_000, 3)),
    ]);
    let multi = {
        // two gzip members: the first half of the tar, then the rest
        let (x, y) = base.split_at(base.len() / 2);
        let mut b = fixture::gzip(x);
        b.extend(fixture::gzip(y));
        Layer {
            media_type: fixture::LAYER_GZIP,
            blob: b,
            tar: base.clone(),
        }
    };
    let layers = |arch_seed: u32| {
        vec![
            Layer::gzip(base.clone()),
            Layer::zstd(tar(&[Entry::File("z", fixture::noise(5000, arch_seed))])),
            Layer::plain(tar(&[Entry::File("p", b"plain".to_vec())])),
            Layer::gzip(tar(&[])),
            Layer::plain(Vec::new()),
            Layer::gzip(tar(&[
                Entry::File("a/.wh.one", Vec::new()),
                Entry::File("a/.wh..wh..opq", Vec::new()),
            ])),
        ]
    };
    let mut amd = fixture::write_image(dir, &layers(10), "linux", "amd64");
    amd["platform"] = json!({"os": "linux", "architecture": "amd64"});
    let mut arm_layers = layers(11);
    arm_layers.push(multi);
    let mut arm = fixture::write_image(dir, &arm_layers, "linux", "arm64");
    arm["platform"] = json!({"os": "linux", "architecture": "arm64", "variant": "v8"});
    // an attestation manifest: not an image (in-toto layer), skipped as an image but its blobs verified
    let (sd, sn) = mutate::put_blob(dir, br#"{"_type":"https://in-toto.io/Statement/v0.1"}"#);
    let (cd, cn) = mutate::put_blob(dir, b"{}");
    let att = json!({"schemaVersion": 2, "mediaType": fixture::OCI_MANIFEST,
        "config": {"mediaType": fixture::OCI_CONFIG, "digest": cd, "size": cn},
        "layers": [{"mediaType": "application/vnd.in-toto+json", "digest": sd, "size": sn}]});
    let (ad, an) = mutate::put_blob(dir, &serde_json::to_vec(&att).unwrap());
    let att_desc = json!({"mediaType": fixture::OCI_MANIFEST, "digest": ad, "size": an,
        "platform": {"os": "unknown", "architecture": "unknown"},
        "annotations": {"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": amd["digest"].clone()}});
    let idx = fixture::write_index(dir, vec![amd, arm, att_desc]);
    fixture::write_layout(dir, idx, TAG);

    let r = check(dir, &ValidateOptions::default()).unwrap();
    assert_eq!(r.images, 2);
    // the shared base layer is read once; empty gzip tars of both images are the same blob
    let layers: Vec<_> = r
        .checked
        .iter()
        .filter(|b| b.kind == BlobKind::Layer && b.diff_id.is_some())
        .collect();
    let mut uniq: Vec<_> = layers.iter().map(|b| b.digest.clone()).collect();
    uniq.sort();
    uniq.dedup();
    assert_eq!(uniq.len(), layers.len(), "a shared layer was read twice");
    assert_eq!(
        layers.len(),
        6 + 2 /* arm's zstd, arm's multi-member */
    );
    assert!(
        r.checked
            .iter()
            .any(|b| b.media_type == "application/vnd.in-toto+json")
    );

    // only this host's image
    let one = check(
        dir,
        &ValidateOptions {
            all_platforms: false,
            check_layers: true,
            strict: false,
        },
    );
    let host = ocibuild_oci::image::Platform::host();
    if host.architecture == "amd64" || host.architecture == "arm64" {
        assert_eq!(one.unwrap().images, 1);
    } else {
        assert!(one.unwrap_err().to_string().contains("platform"));
    }
}

#[test]
fn check_layers_off_reads_no_layer_blob() {
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good");
    fixture::control(&good, TAG);
    let bad = tmp.path().join("bad");
    mutate::mutated_copy(&good, &bad, Some(TAG), mutate::Mutation::BlobMissing);
    let opts = ValidateOptions {
        all_platforms: true,
        check_layers: false,
        strict: false,
    };
    let r = check(&bad, &opts).unwrap();
    assert_eq!(
        (r.images, r.layers_not_read, r.count(BlobKind::Layer)),
        (1, 2, 0)
    );
    // descriptor-level layer defects are still found
    let bad2 = tmp.path().join("bad2");
    mutate::mutated_copy(&good, &bad2, Some(TAG), mutate::Mutation::DiffIdCount);
    assert!(
        check(&bad2, &opts)
            .unwrap_err()
            .to_string()
            .contains("diff_ids")
    );
}

#[test]
fn layer_blob_larger_than_its_size_is_a_size_defect() {
    let tmp = tempfile::tempdir().unwrap();
    fixture::control(tmp.path(), TAG);
    mutate::edit_manifest(tmp.path(), Some(TAG), |m| {
        m["layers"][1]["size"] = (m["layers"][1]["size"].as_u64().unwrap() - 1).into();
    });
    let err = check(tmp.path(), &ValidateOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("layer 1") && err.contains("wrong size"),
        "{err}"
    );
}

#[test]
fn index_platform_must_match_the_config() {
    let tmp = tempfile::tempdir().unwrap();
    fixture::control_nested(tmp.path(), TAG);
    mutate::edit_image(tmp.path(), Some(TAG), |d, _| {
        d["platform"]["architecture"] = "arm64".into()
    });
    let err = check(tmp.path(), &ValidateOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("linux/arm64") && err.contains("linux/amd64"),
        "{err}"
    );
}

#[test]
fn manifest_media_type_field_must_match_its_descriptor() {
    let tmp = tempfile::tempdir().unwrap();
    fixture::control(tmp.path(), TAG);
    mutate::edit_manifest(tmp.path(), Some(TAG), |m| {
        m["mediaType"] = "application/vnd.docker.distribution.manifest.v2+json".into()
    });
    let err = check(tmp.path(), &ValidateOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("mediaType") && err.contains("docker.distribution.manifest.v2"),
        "{err}"
    );
}

#[test]
fn config_rootfs_type_and_diff_id_syntax_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good");
    fixture::control(&good, TAG);
    let a = tmp.path().join("a");
    mutate::copy_layout(&good, &a);
    mutate::edit_config(&a, Some(TAG), |c| c["rootfs"]["type"] = "overlay".into());
    let err = check(&a, &ValidateOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("rootfs.type"), "{err}");
    let b = tmp.path().join("b");
    mutate::copy_layout(&good, &b);
    mutate::edit_config(&b, Some(TAG), |c| {
        c["rootfs"]["diff_ids"][1] = "sha256:nothex".into()
    });
    let err = check(&b, &ValidateOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("rootfs.diff_ids[1]"), "{err}");
}

#[test]
fn wrong_diff_id_on_the_second_layer_names_it() {
    let tmp = tempfile::tempdir().unwrap();
    fixture::control(tmp.path(), TAG);
    mutate::edit_config(tmp.path(), Some(TAG), |c| {
        c["rootfs"]["diff_ids"][1] = mutate::sha(b"x").into()
    });
    let err = check(tmp.path(), &ValidateOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("layer 1")
            && err.contains("rootfs.diff_ids[1]")
            && err.contains(&mutate::sha(b"x")),
        "{err}"
    );
}
