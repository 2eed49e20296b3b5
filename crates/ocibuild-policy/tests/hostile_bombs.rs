//! The archive limits (`OCIBUILD_LAYER_MAX_*`) apply to the readers of image layers outside the
//! OCI crate too (`check`/`size`'s index and the SBOM catalogers): a layer whose GNU long name is
//! 8 MiB is refused by OCIBUILD_LAYER_MAX_METADATA (1 MiB by default) instead of being read into
//! memory (issue 22).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::Write;

use ocibuild_oci::Digest;
use ocibuild_oci::image::{Descriptor, config_bytes, load_image, new_manifest, to_json_bytes};
use ocibuild_oci::layout::StoreSource;
use ocibuild_oci::media;
use ocibuild_oci::store::ContentStore;

/// A one-layer image in a content store.
fn image_with_layer(store: &ContentStore, layer: &[u8]) -> StoreSource {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(layer).unwrap();
    let gz = e.finish().unwrap();
    let d = store.put_bytes(&gz).unwrap();
    let config = serde_json::json!({"architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [Digest::of_bytes(layer).to_string()]}});
    let cb = config_bytes(&config).unwrap();
    let cd = store.put_bytes(&cb).unwrap();
    let m = new_manifest(
        Descriptor::new(media::OCI_CONFIG, cd, cb.len() as u64),
        vec![Descriptor::new(media::OCI_LAYER_GZIP, d, gz.len() as u64)],
        BTreeMap::new(),
    );
    let mb = to_json_bytes(&m, "manifest").unwrap();
    let md = store.put_bytes(&mb).unwrap();
    StoreSource::new(
        store.clone(),
        Descriptor::new(media::OCI_MANIFEST, md, mb.len() as u64),
        "bomb",
    )
}

/// A layer tar whose first entry is a GNU long name of `len` bytes (the `tar` crate reads one
/// whole into memory unless the limited reader stops it): over the 1 MiB default of
/// OCIBUILD_LAYER_MAX_METADATA.
fn long_name_bomb(len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut h = tar::Header::new_gnu();
    h.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"././@LongLink");
    h.set_entry_type(tar::EntryType::GNULongName);
    h.set_size(len as u64);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.resize(out.len() + len, b'a');
    out.resize(out.len().div_ceil(512) * 512, 0);
    let mut f = tar::Header::new_gnu();
    f.as_gnu_mut().unwrap().name[..1].copy_from_slice(b"x");
    f.set_entry_type(tar::EntryType::Regular);
    f.set_size(0);
    f.set_mode(0o644);
    f.set_uid(0);
    f.set_gid(0);
    f.set_mtime(0);
    f.set_cksum();
    out.extend_from_slice(f.as_bytes());
    out.extend_from_slice(&[0u8; 1024]);
    out
}

#[test]
fn the_catalogers_refuse_a_long_name_bomb() {
    let t = tempfile::tempdir().unwrap();
    let store = ContentStore::open(t.path().join("store")).unwrap();
    let src = image_with_layer(&store, &long_name_bomb(8 << 20));
    let Err(e) = ocibuild_sbom::catalog(&src, None, "bomb") else {
        panic!("the bomb layer was catalogued")
    };
    let e = e.to_string();
    assert!(e.contains("OCIBUILD_LAYER_MAX_METADATA"), "{e}");
}

#[test]
fn check_and_size_refuse_a_long_name_bomb() {
    let t = tempfile::tempdir().unwrap();
    let store = ContentStore::open(t.path().join("store")).unwrap();
    let src = image_with_layer(&store, &long_name_bomb(8 << 20));
    let img = load_image(&src, None).unwrap();
    let Err(e) = ocibuild_policy::scan(&src, &img, &Default::default()) else {
        panic!("the bomb layer was indexed")
    };
    let e = e.to_string();
    assert!(e.contains("OCIBUILD_LAYER_MAX_METADATA"), "{e}");
}
