//! Layout, oci-archive and docker-archive writers and readers round-trip through each other and
//! through the validator; index.json keeps other tags; nothing half-written is left behind.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;

use ocibuild_oci::image::{
    Descriptor, Image, ImageSource, config_bytes, load_image, new_manifest, to_json_bytes,
};
use ocibuild_oci::layout::{
    ArchiveSource, DockerArchiveSource, LayoutSource, StoreSource, import_into_store,
    write_docker_archive, write_layout, write_oci_archive,
};
use ocibuild_oci::media;
use ocibuild_oci::reference::Reference;
use ocibuild_oci::store::ContentStore;
use ocibuild_oci::validate::{ValidateOptions, validate};
use ocibuild_oci::{Digest, OciError};
use serde_json::json;

fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (p, data) in files {
        let mut h = tar::Header::new_ustar();
        h.set_path(p).unwrap();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A two-layer image built by hand into a store.
fn image_in_store(store: &ContentStore, greeting: &str) -> (StoreSource, Image) {
    let l1 = tar_of(&[("etc/a", b"first layer\n")]);
    let l2 = tar_of(&[("etc/b", greeting.as_bytes())]);
    let mut layers = vec![];
    let mut diff_ids = vec![];
    for l in [&l1, &l2] {
        let gz = gzip(l);
        let d = store.put_bytes(&gz).unwrap();
        layers.push(Descriptor::new(media::OCI_LAYER_GZIP, d, gz.len() as u64));
        diff_ids.push(Digest::of_bytes(l).to_string());
    }
    let config = json!({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/true"]},
                        "rootfs": {"type": "layers", "diff_ids": diff_ids}});
    let cb = config_bytes(&config).unwrap();
    let cd = store.put_bytes(&cb).unwrap();
    let m = new_manifest(
        Descriptor::new(media::OCI_CONFIG, cd, cb.len() as u64),
        layers,
        BTreeMap::new(),
    );
    let mb = to_json_bytes(&m, "manifest").unwrap();
    let md = store.put_bytes(&mb).unwrap();
    let desc = Descriptor::new(media::OCI_MANIFEST, md, mb.len() as u64);
    let src = StoreSource::new(store.clone(), desc, "test image");
    let img = load_image(&src, None).unwrap();
    (src, img)
}

fn no_temp_files(dir: &Path) {
    for e in walkdir::WalkDir::new(dir) {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().to_string();
        assert!(
            !name.starts_with(".tmp-"),
            "temp file left behind: {}",
            e.path().display()
        );
    }
}

#[test]
fn layout_roundtrip_keeps_other_tags() {
    let t = tempfile::tempdir().unwrap();
    let store = ContentStore::open(t.path().join("store")).unwrap();
    let (src1, img1) = image_in_store(&store, "one");
    let (src2, img2) = image_in_store(&store, "two");
    let dir = t.path().join("layout");
    write_layout(&dir, Some("a"), &src1, &img1).unwrap();
    write_layout(&dir, Some("b"), &src2, &img2).unwrap();
    // re-tagging `a` with the second image replaces only `a`
    write_layout(&dir, Some("a"), &src2, &img2).unwrap();
    let l = LayoutSource::open(&dir, Some("b")).unwrap();
    assert_eq!(l.index.manifests.len(), 2);
    assert_eq!(l.root().unwrap().digest, img2.manifest_desc.digest);
    assert_eq!(
        l.root().unwrap().platform.unwrap().to_string(),
        "linux/amd64"
    );
    let back = load_image(&l, None).unwrap();
    assert_eq!(
        back.manifest_bytes, img2.manifest_bytes,
        "bytes are copied, never re-serialised"
    );
    validate(&l, &ValidateOptions::default()).unwrap();
    no_temp_files(&dir);

    // without a tag, two images are ambiguous; a missing tag names the available ones
    let e = LayoutSource::open(&dir, None).err().unwrap();
    assert!(matches!(e, OciError::AmbiguousImage { .. }), "{e}");
    let e = LayoutSource::open(&dir, Some("zzz")).err().unwrap();
    let msg = e.to_string();
    assert!(
        msg.contains("zzz") && msg.contains("a") && msg.contains("b"),
        "{msg}"
    );
}

#[test]
fn oci_archive_roundtrip_is_deterministic() {
    let t = tempfile::tempdir().unwrap();
    let store = ContentStore::open(t.path().join("store")).unwrap();
    let (src, img) = image_in_store(&store, "hi");
    let f1 = t.path().join("one.tar");
    let f2 = t.path().join("sub/two.tar");
    write_oci_archive(&f1, Some("v1"), &src, &img).unwrap();
    write_oci_archive(&f2, Some("v1"), &src, &img).unwrap();
    assert_eq!(fs::read(&f1).unwrap(), fs::read(&f2).unwrap());
    let a = ArchiveSource::open(&f1, Some("v1")).unwrap();
    let back = load_image(&a, None).unwrap();
    assert_eq!(back.manifest_desc.digest, img.manifest_desc.digest);
    let r = validate(&a, &ValidateOptions::default()).unwrap();
    assert_eq!(r.images, 1);
    no_temp_files(t.path());

    // a truncated archive is an error, not a panic
    let bytes = fs::read(&f1).unwrap();
    let cut = t.path().join("cut.tar");
    fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let res = ArchiveSource::open(&cut, Some("v1"))
        .and_then(|a| validate(&a, &ValidateOptions::default()).map(|_| ()));
    assert!(res.is_err());
}

#[test]
fn docker_archive_roundtrip_and_import() {
    let t = tempfile::tempdir().unwrap();
    let store = ContentStore::open(t.path().join("store")).unwrap();
    let (src, img) = image_in_store(&store, "docker");
    let f = t.path().join("d.tar");
    let r = Reference::parse("hello:v1").unwrap();
    write_docker_archive(&f, Some(&r), &src, &img).unwrap();

    // manifest.json as docker writes it
    let mut ar = tar::Archive::new(fs::File::open(&f).unwrap());
    let mut names = vec![];
    let mut manifest = None;
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().to_string_lossy().to_string();
        if p == "manifest.json" {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut e, &mut s).unwrap();
            manifest = Some(s);
        }
        names.push(p);
    }
    let m: serde_json::Value = serde_json::from_str(&manifest.unwrap()).unwrap();
    assert_eq!(m[0]["RepoTags"][0], "hello:v1");
    assert!(names.contains(&"repositories".to_string()));

    // reading it back gives the same config and diff_ids; layers are now uncompressed
    for which in [Some(&r), None] {
        let d = DockerArchiveSource::open(&f, which).unwrap();
        let back = load_image(&d, None).unwrap();
        assert_eq!(back.config_bytes, img.config_bytes);
        assert_eq!(back.manifest.layers[0].media_type, media::DOCKER_LAYER_TAR);
        validate(&d, &ValidateOptions::default()).unwrap();
        // and it imports into a fresh store with every diff_id checked
        let s2 = ContentStore::open(t.path().join("store2")).unwrap();
        import_into_store(&d, &back, &s2).unwrap();
    }
    let e = DockerArchiveSource::open(&f, Some(&Reference::parse("other:v1").unwrap()))
        .err()
        .unwrap();
    assert!(e.to_string().contains("hello:v1"), "{e}");
}

#[test]
fn import_rejects_a_wrong_diff_id() {
    let t = tempfile::tempdir().unwrap();
    let store = ContentStore::open(t.path().join("store")).unwrap();
    let (src, img) = image_in_store(&store, "x");
    // same layers, config claiming another diff_id for layer 1
    let mut config = img.config.clone();
    config["rootfs"]["diff_ids"][1] = json!(Digest::of_bytes(b"nope").to_string());
    let cb = config_bytes(&config).unwrap();
    let cd = store.put_bytes(&cb).unwrap();
    let m = new_manifest(
        Descriptor::new(media::OCI_CONFIG, cd, cb.len() as u64),
        img.manifest.layers.clone(),
        BTreeMap::new(),
    );
    let mb = to_json_bytes(&m, "manifest").unwrap();
    let md = store.put_bytes(&mb).unwrap();
    let bad = StoreSource::new(
        store.clone(),
        Descriptor::new(media::OCI_MANIFEST, md, mb.len() as u64),
        "bad",
    );
    let bad_img = load_image(&bad, None).unwrap();
    let dir = t.path().join("l");
    write_layout(&dir, Some("bad"), &bad, &bad_img).unwrap();
    let l = LayoutSource::open(&dir, Some("bad")).unwrap();
    let s2 = ContentStore::open(t.path().join("store2")).unwrap();
    let e = import_into_store(&l, &bad_img, &s2).unwrap_err();
    assert!(e.to_string().contains("diff_ids[1]"), "{e}");
    drop(src);
}
