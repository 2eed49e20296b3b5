//! Artifacts attached to an image inside an OCI layout directory: signatures, attestations and
//! SBOMs, in the two forms tools use.
//!
//! - **cosign's tag form**: a manifest tagged `sha256-<hex>.sig` / `.att` / `.sbom` (the image's
//!   manifest digest with `:` replaced by `-`), kept in `index.json` under that tag name, so
//!   `oci:DIR:sha256-<hex>.sig` names it and a push of the layout can carry it.
//! - **OCI 1.1 referrers**: a manifest whose `subject` is the image; in a layout it is listed in
//!   `index.json` without a tag, and [`referrers`] finds it by reading the untagged entries.
//!
//! [`attach`] is the one call "attach this artifact manifest to subject S" for layouts; the
//! registry side is `ocibuild_registry::artifacts`. Every write goes through a temp file and a
//! rename, under the same directory lock the layout writers take.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::Path;

use crate::digest::Digest;
use crate::error::{OciError, Result};
use crate::image::{
    Descriptor, Index, MAX_JSON_BLOB, Manifest, REF_NAME, parse_index, to_json_bytes,
};
use crate::media;

/// The cosign tag of an artifact kind for a subject: `sha256-<hex>.<suffix>` (`sig`, `att`, `sbom`).
pub fn cosign_tag(subject: &Digest, suffix: &str) -> String {
    format!("{}-{}.{suffix}", subject.algorithm(), subject.hex())
}

/// The cosign tag suffixes ocibuild carries with an image.
pub const COSIGN_SUFFIXES: [&str; 3] = ["sig", "att", "sbom"];

/// True for an `index.json` entry that is attached to an image rather than an image itself: a
/// cosign tag (`sha256-<hex>`, `.sig`, `.att`, `.sbom`) or an untagged referrer (`artifactType`).
pub fn is_attached(entry: &Descriptor) -> bool {
    match entry.ref_name() {
        Some(name) => {
            let Some(rest) = name.strip_prefix("sha256-") else {
                return false;
            };
            let hex = rest.split('.').next().unwrap_or(rest);
            let suffix_ok = rest.len() == hex.len()
                || COSIGN_SUFFIXES
                    .iter()
                    .any(|s| rest.len() == hex.len() + 1 + s.len() && rest.ends_with(s));
            hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) && suffix_ok
        }
        None => entry.artifact_type.is_some(),
    }
}

/// The empty config blob of OCI 1.1 artifacts (`{}`).
pub const EMPTY_JSON: &[u8] = b"{}";

/// An artifact manifest: `artifactType`, the empty config, `layers`, an optional `subject`.
pub fn artifact_manifest(
    artifact_type: &str,
    layers: Vec<Descriptor>,
    subject: Option<Descriptor>,
    annotations: std::collections::BTreeMap<String, String>,
) -> Manifest {
    Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.into()),
        artifact_type: Some(artifact_type.into()),
        config: Descriptor::of_bytes(media::OCI_EMPTY, EMPTY_JSON),
        layers,
        subject,
        annotations,
    }
}

fn location(dir: &Path) -> String {
    format!("oci:{}", dir.display())
}

use crate::layout::write_atomically;

/// Read `index.json` of a layout (an error when the directory is not a layout).
pub fn read_index(dir: &Path) -> Result<Index> {
    let ip = dir.join("index.json");
    let bytes = fs::read(&ip).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            OciError::defect(
                location(dir),
                "no index.json: this is not an OCI image layout directory",
            )
        } else {
            OciError::Io {
                op: "read",
                path: ip.clone(),
                source: e,
            }
        }
    })?;
    let d = Descriptor::of_bytes(media::OCI_INDEX, &bytes);
    parse_index(&bytes, &d, &format!("{}/index.json", location(dir)))
}

/// The descriptor tagged `tag` in the layout's `index.json`, if any.
pub fn tagged(dir: &Path, tag: &str) -> Result<Option<Descriptor>> {
    Ok(read_index(dir)?
        .manifests
        .into_iter()
        .find(|d| d.ref_name() == Some(tag)))
}

/// Read a blob of the layout, at most `limit` bytes, checked against its digest and size.
pub fn read_blob(dir: &Path, desc: &Descriptor, limit: u64) -> Result<Vec<u8>> {
    if desc.size > limit {
        return Err(OciError::defect(
            location(dir),
            format!(
                "blob {} claims {} bytes, more than the {limit} allowed here",
                desc.digest, desc.size
            ),
        ));
    }
    let p = dir.join(desc.digest.layout_path());
    let mut bytes = Vec::with_capacity(desc.size as usize);
    match File::open(&p) {
        Ok(f) => f
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map(|_| ())
            .map_err(OciError::io("read", &p))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(OciError::BlobMissing {
                digest: desc.digest.clone(),
                location: location(dir),
            });
        }
        Err(e) => {
            return Err(OciError::Io {
                op: "open",
                path: p,
                source: e,
            });
        }
    }
    let got = Digest::of_bytes(&bytes);
    if got != desc.digest || bytes.len() as u64 != desc.size {
        return Err(OciError::DigestMismatch {
            what: format!("blob in {}", location(dir)),
            expected: desc.digest.clone(),
            actual: got,
        });
    }
    Ok(bytes)
}

/// Store `bytes` as a blob of the layout (kept when already there).
pub fn write_blob(dir: &Path, bytes: &[u8]) -> Result<Digest> {
    let d = Digest::of_bytes(bytes);
    let blobs = dir.join("blobs").join(d.algorithm());
    fs::create_dir_all(&blobs).map_err(OciError::io("create", &blobs))?;
    let dest = dir.join(d.layout_path());
    if fs::metadata(&dest).is_ok_and(|m| m.len() == bytes.len() as u64) {
        return Ok(d);
    }
    write_atomically(&dest, bytes)?;
    Ok(d)
}

/// Change `index.json` under the layout's lock: `f` edits the index.
pub fn update_index(dir: &Path, f: impl FnOnce(&mut Index)) -> Result<()> {
    let lock = File::open(dir).map_err(OciError::io("open", dir))?;
    lock.lock().map_err(OciError::io("lock", dir))?;
    let mut index = match read_index(dir) {
        Ok(i) => i,
        Err(_) if !dir.join("index.json").exists() => Index::new(),
        Err(e) => return Err(e),
    };
    let ol = dir.join("oci-layout");
    if !ol.exists() {
        write_atomically(&ol, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    }
    f(&mut index);
    write_atomically(
        &dir.join("index.json"),
        &to_json_bytes(&index, "index.json")?,
    )?;
    drop(lock);
    Ok(())
}

/// Store a manifest (its blobs must be in the layout already) and tag it `tag` in `index.json`,
/// replacing what had that tag; untagged (`None`), it is listed once by digest.
pub fn put_manifest(
    dir: &Path,
    tag: Option<&str>,
    bytes: &[u8],
    media_type: &str,
    artifact_type: Option<&str>,
) -> Result<Descriptor> {
    write_blob(dir, bytes)?;
    let mut desc = Descriptor::of_bytes(media_type, bytes);
    // a referrer's entry says what it is (its artifactType, else its config's media type)
    desc.artifact_type = artifact_type.map(str::to_string).or_else(|| {
        serde_json::from_slice::<Manifest>(bytes)
            .ok()
            .filter(|m| m.subject.is_some())
            .map(|m| m.artifact_type.unwrap_or(m.config.media_type))
    });
    if let Some(t) = tag {
        desc.annotations.insert(REF_NAME.into(), t.to_string());
    }
    let entry = desc.clone();
    update_index(dir, |index| {
        index.manifests.retain(|m| match tag {
            Some(t) => m.ref_name() != Some(t),
            None => !(m.ref_name().is_none() && m.digest == entry.digest),
        });
        index.manifests.push(entry);
    })?;
    Ok(desc)
}

/// Attach an artifact manifest to `subject` as an OCI 1.1 referrer of the layout: the manifest
/// (whose `subject` must name the subject) is stored and listed in `index.json` without a tag.
pub fn attach(
    dir: &Path,
    subject: &Digest,
    manifest: &[u8],
    media_type: &str,
    artifact_type: Option<&str>,
) -> Result<Descriptor> {
    let m: Manifest = serde_json::from_slice(manifest)
        .map_err(OciError::json("the artifact manifest to attach"))?;
    if m.subject.as_ref().map(|s| &s.digest) != Some(subject) {
        return Err(OciError::Invalid {
            what: "the artifact manifest to attach".into(),
            detail: format!("its subject is not {subject}"),
        });
    }
    put_manifest(dir, None, manifest, media_type, artifact_type)
}

/// The referrers of `subject` in a layout: untagged manifests in `index.json` whose `subject` is
/// it, as an index (descriptors with `artifactType` and the manifest's annotations).
pub fn referrers(dir: &Path, subject: &Digest) -> Result<Index> {
    let mut out = Index::new();
    for d in read_index(dir)?.manifests {
        if d.ref_name().is_some() || !media::is_manifest(&d.media_type) {
            continue;
        }
        let bytes = read_blob(dir, &d, MAX_JSON_BLOB)?;
        let Ok(m) = serde_json::from_slice::<Manifest>(&bytes) else {
            continue;
        };
        if m.subject.as_ref().map(|s| &s.digest) == Some(subject) {
            let mut r = Descriptor::new(d.media_type.clone(), d.digest.clone(), d.size);
            r.artifact_type = m
                .artifact_type
                .clone()
                .or_else(|| Some(m.config.media_type.clone()));
            r.annotations = m.annotations.clone();
            out.manifests.push(r);
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn attach_tag_and_find_referrers_in_a_layout() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path();
        let subject_bytes = br#"{"schemaVersion":2}"#;
        let subject = Descriptor::of_bytes(media::OCI_MANIFEST, subject_bytes);
        put_manifest(dir, Some("v1"), subject_bytes, media::OCI_MANIFEST, None).unwrap();
        write_blob(dir, EMPTY_JSON).unwrap();
        let layer = write_blob(dir, b"payload").unwrap();
        let m = artifact_manifest(
            "application/example",
            vec![Descriptor::new("text/plain", layer, 7)],
            Some(subject.clone()),
            Default::default(),
        );
        let bytes = to_json_bytes(&m, "m").unwrap();
        attach(
            dir,
            &subject.digest,
            &bytes,
            media::OCI_MANIFEST,
            Some("application/example"),
        )
        .unwrap();
        // attaching twice lists it once
        attach(dir, &subject.digest, &bytes, media::OCI_MANIFEST, None).unwrap();
        let r = referrers(dir, &subject.digest).unwrap();
        assert_eq!(r.manifests.len(), 1);
        assert_eq!(
            r.manifests[0].artifact_type.as_deref(),
            Some("application/example")
        );
        assert_eq!(r.manifests[0].digest, Digest::of_bytes(&bytes));
        let tag = cosign_tag(&subject.digest, "sig");
        assert!(tag.starts_with("sha256-") && tag.ends_with(".sig"));
        put_manifest(dir, Some(&tag), &bytes, media::OCI_MANIFEST, None).unwrap();
        assert_eq!(
            tagged(dir, &tag).unwrap().unwrap().digest,
            Digest::of_bytes(&bytes)
        );
        assert!(tagged(dir, "nope").unwrap().is_none());
        // a wrong subject is refused
        let other = Digest::of_bytes(b"other");
        assert!(attach(dir, &other, &bytes, media::OCI_MANIFEST, None).is_err());
        // the image is still the only image of the layout
        assert!(!is_attached(&tagged(dir, "v1").unwrap().unwrap()));
        assert!(is_attached(&tagged(dir, &tag).unwrap().unwrap()));
        let src = crate::layout::LayoutSource::open(dir, None).unwrap();
        assert_eq!(
            crate::image::ImageSource::root(&src).unwrap().digest,
            subject.digest
        );
        // a tampered blob is refused when read
        let p = dir.join(Digest::of_bytes(b"payload").layout_path());
        fs::write(&p, b"paylaod").unwrap();
        let d = Descriptor::new("text/plain", Digest::of_bytes(b"payload"), 7);
        assert!(read_blob(dir, &d, 100).is_err());
    }
}
