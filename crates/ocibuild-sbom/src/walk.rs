//! One pass over the layers: keep what the catalogers need of each file that is still present in
//! the final filesystem (whiteouts, opaque directories and overwrites applied as they come).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};

use ocibuild_oci::image::VerifyingReader;
use ocibuild_oci::{Image, ImageSource, media};

use crate::{Component, ImageInfo, Result, Sbom, SbomError};

/// Text files larger than this are not catalogued (a dpkg status file of a large system is a
/// few MB; a package.json or METADATA is a few KB).
const MAX_TEXT: u64 = 32 << 20;
/// Binaries and archives larger than this are not read into memory.
const MAX_BINARY: u64 = 1 << 30;

#[derive(Clone, Debug)]
pub(crate) enum Found {
    Text(Vec<u8>),
    Parsed(Vec<Component>),
}

#[derive(Clone, Debug)]
pub(crate) struct FsEntry {
    pub layer: String,
    pub found: Found,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Text,
    Jar,
    MaybeElf,
}

fn classify(path: &str, mode: u32) -> Option<Kind> {
    if path == "var/lib/dpkg/status" || path == "etc/os-release" || path == "usr/lib/os-release" {
        return Some(Kind::Text);
    }
    if let Some(rest) = path.strip_prefix("var/lib/dpkg/status.d/") {
        if !rest.contains('/') && !rest.ends_with(".md5sums") && !rest.ends_with(".list") {
            return Some(Kind::Text);
        }
        return None;
    }
    if let Some(rest) = path.strip_prefix("usr/share/doc/") {
        return rest
            .strip_suffix("/copyright")
            .filter(|p| !p.contains('/'))
            .map(|_| Kind::Text);
    }
    if crate::npm::is_package_manifest(path) || path.ends_with(".dist-info/METADATA") {
        return Some(Kind::Text);
    }
    // an app's npm lockfile (not one a package ships): a build record names it by its digest
    if !path.contains("node_modules/")
        && (path.ends_with("package-lock.json") || path.ends_with("npm-shrinkwrap.json"))
        && matches!(
            path.rsplit('/').next(),
            Some("package-lock.json" | "npm-shrinkwrap.json")
        )
    {
        return Some(Kind::Text);
    }
    let lower = path.to_ascii_lowercase();
    if lower.ends_with(".jar") || lower.ends_with(".war") || lower.ends_with(".ear") {
        return Some(Kind::Jar);
    }
    if mode & 0o111 != 0 {
        return Some(Kind::MaybeElf);
    }
    None
}

fn normalize(p: &str) -> String {
    let p = p.trim_start_matches("./").trim_start_matches('/');
    p.trim_end_matches('/').to_string()
}

fn remove_tree(files: &mut BTreeMap<String, FsEntry>, dir: &str, keep: Option<&BTreeSet<String>>) {
    let prefix = format!("{dir}/");
    let doomed: Vec<String> = files
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map(|(k, _)| k.clone())
        .filter(|k| keep.is_none_or(|s| !s.contains(k)))
        .collect();
    for k in doomed {
        files.remove(&k);
    }
}

/// Catalogue an already loaded image of `src`.
pub fn catalog_image(src: &dyn ImageSource, image: &Image, name: &str) -> Result<Sbom> {
    let files = walk_image(src, image, name)?;
    let info = image_info(image, name, &files);
    let comps = components(&files, &info);
    Ok(Sbom::new(info, comps))
}

/// Stream every layer once: what the catalogers need of each file present in the final
/// filesystem, with the layer it came from.
pub(crate) fn walk_image(
    src: &dyn ImageSource,
    image: &Image,
    name: &str,
) -> Result<BTreeMap<String, FsEntry>> {
    let diff_ids = image.diff_ids()?;
    if diff_ids.len() != image.manifest.layers.len() {
        return Err(SbomError::Invalid {
            what: format!("image {name}"),
            detail: format!(
                "the manifest lists {} layers but the config {} diff_ids; the image is corrupt",
                image.manifest.layers.len(),
                diff_ids.len()
            ),
        });
    }
    let platform = image.platform();
    let mut files: BTreeMap<String, FsEntry> = BTreeMap::new();
    for (desc, diff_id) in image.manifest.layers.iter().zip(&diff_ids) {
        let compression =
            media::layer_compression(&desc.media_type).ok_or_else(|| SbomError::Invalid {
                what: format!("layer {} of {name}", desc.digest),
                detail: format!("media type `{}` is not a layer type", desc.media_type),
            })?;
        let what = format!("layer {} of {}", desc.digest, src.describe());
        let raw = VerifyingReader::new(src.open_blob(desc)?, desc, what);
        let mut dec = ocibuild_oci::extract::decompress(io::BufReader::new(raw), compression)?;
        let layer = diff_id.to_string();
        read_layer(&mut dec, &layer, platform.as_ref(), &mut files).map_err(|e| {
            SbomError::Layer {
                layer: layer.clone(),
                image: name.to_string(),
                source: e,
            }
        })?;
        // the rest of the stream: the digest check happens at its end
        io::copy(&mut dec, &mut io::sink()).map_err(|e| SbomError::Layer {
            layer: layer.clone(),
            image: name.to_string(),
            source: e,
        })?;
    }
    Ok(files)
}

fn read_layer(
    tar_stream: &mut dyn Read,
    layer: &str,
    platform: Option<&ocibuild_oci::Platform>,
    files: &mut BTreeMap<String, FsEntry>,
) -> io::Result<()> {
    let mut archive =
        ocibuild_oci::limited::Archive::from_env(tar_stream, format!("layer {layer}"))?;
    let mut this_layer: BTreeSet<String> = BTreeSet::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = normalize(&String::from_utf8_lossy(&entry.path_bytes()));
        if path.is_empty() {
            continue;
        }
        let (dir, base) = match path.rsplit_once('/') {
            Some((d, b)) => (d.to_string(), b.to_string()),
            None => (String::new(), path.clone()),
        };
        if base == ".wh..wh..opq" {
            if dir.is_empty() {
                let keep = this_layer.clone();
                files.retain(|k, _| keep.contains(k));
            } else {
                remove_tree(files, &dir, Some(&this_layer));
            }
            continue;
        }
        if let Some(hidden) = base.strip_prefix(".wh.") {
            let target = if dir.is_empty() {
                hidden.to_string()
            } else {
                format!("{dir}/{hidden}")
            };
            files.remove(&target);
            remove_tree(files, &target, None);
            continue;
        }
        let etype = entry.header().entry_type();
        // anything written here replaces what lower layers had at this path
        files.remove(&path);
        if !etype.is_dir() {
            remove_tree(files, &path, Some(&this_layer));
        }
        this_layer.insert(path.clone());
        if etype.is_hard_link() {
            if let Some(target) = entry.link_name_bytes() {
                let target = normalize(&String::from_utf8_lossy(&target));
                if let Some(e) = files.get(&target).cloned() {
                    let e = relocate(e, &path, layer);
                    files.insert(path, e);
                }
            }
            continue;
        }
        if !etype.is_file() {
            continue;
        }
        let mode = entry.header().mode().unwrap_or(0);
        let Some(kind) = classify(&path, mode) else {
            continue;
        };
        let size = entry.size();
        match kind {
            Kind::Text => {
                if size > MAX_TEXT {
                    continue;
                }
                let mut buf = Vec::with_capacity(size as usize);
                entry.read_to_end(&mut buf)?;
                files.insert(
                    path,
                    FsEntry {
                        layer: layer.to_string(),
                        found: Found::Text(buf),
                    },
                );
            }
            Kind::Jar => {
                if size > MAX_BINARY {
                    continue;
                }
                let mut buf = Vec::with_capacity(size as usize);
                entry.read_to_end(&mut buf)?;
                let comps = crate::java::catalog_jar(&buf, &path, layer);
                if !comps.is_empty() {
                    files.insert(
                        path,
                        FsEntry {
                            layer: layer.to_string(),
                            found: Found::Parsed(comps),
                        },
                    );
                }
            }
            Kind::MaybeElf => {
                if !(64..=MAX_BINARY).contains(&size) {
                    continue;
                }
                let mut magic = [0u8; 4];
                entry.read_exact(&mut magic)?;
                if &magic != b"\x7fELF" {
                    continue;
                }
                let mut buf = Vec::with_capacity(size as usize);
                buf.extend_from_slice(&magic);
                entry.read_to_end(&mut buf)?;
                let comps = crate::golang::catalog_binary(&buf, &path, layer, platform);
                if !comps.is_empty() {
                    files.insert(
                        path,
                        FsEntry {
                            layer: layer.to_string(),
                            found: Found::Parsed(comps),
                        },
                    );
                }
            }
        }
    }
    Ok(())
}

/// A hard link to a catalogued file: the same content at another path, in this layer.
fn relocate(mut e: FsEntry, path: &str, layer: &str) -> FsEntry {
    e.layer = layer.to_string();
    if let Found::Parsed(comps) = &mut e.found {
        for c in comps {
            c.path = path.to_string();
            c.layer = layer.to_string();
        }
    }
    e
}

/// The image's identity and OS, for the document.
pub(crate) fn image_info(
    image: &Image,
    name: &str,
    files: &BTreeMap<String, FsEntry>,
) -> ImageInfo {
    let os = ["etc/os-release", "usr/lib/os-release"]
        .iter()
        .find_map(|p| match files.get(*p).map(|e| &e.found) {
            Some(Found::Text(t)) => Some(parse_os_release(&String::from_utf8_lossy(t))),
            _ => None,
        })
        .unwrap_or_default();
    let created = image
        .config
        .get("created")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    ImageInfo {
        name: name.to_string(),
        manifest_digest: image.manifest_desc.digest.clone(),
        created,
        platform: image.platform(),
        os_id: os.get("ID").cloned(),
        os_version_id: os.get("VERSION_ID").cloned(),
    }
}

/// Every component the catalogers find in the walked files.
pub(crate) fn components(files: &BTreeMap<String, FsEntry>, info: &ImageInfo) -> Vec<Component> {
    let mut comps = Vec::new();
    comps.extend(crate::dpkg::catalog(files, info));
    for (path, e) in files {
        match &e.found {
            Found::Parsed(c) => comps.extend(c.iter().cloned()),
            Found::Text(t) => {
                if crate::npm::is_package_manifest(path) {
                    comps.extend(crate::npm::catalog(t, path, &e.layer));
                } else if path.ends_with(".dist-info/METADATA") {
                    comps.extend(crate::python::catalog(t, path, &e.layer));
                }
            }
        }
    }
    comps
}

/// `KEY=value` lines of an os-release file, quotes removed.
pub(crate) fn parse_os_release(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            (k.trim().to_string(), v.to_string())
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in entries {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, path, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn whiteouts_and_opaque_dirs_hide_lower_files() {
        let mut files = BTreeMap::new();
        let l1 = tar_of(&[
            ("var/lib/dpkg/status.d/old", b"Package: old\nVersion: 1\n"),
            (
                "app/node_modules/a/package.json",
                br#"{"name":"a","version":"1.0.0"}"#,
            ),
            (
                "app/node_modules/b/package.json",
                br#"{"name":"b","version":"1.0.0"}"#,
            ),
            (
                "srv/node_modules/c/package.json",
                br#"{"name":"c","version":"1.0.0"}"#,
            ),
        ]);
        read_layer(&mut l1.as_slice(), "sha256:l1", None, &mut files).unwrap();
        let l2 = tar_of(&[
            // opaque: what lower layers had in status.d is gone, this layer's entry stays
            ("var/lib/dpkg/status.d/new", b"Package: new\nVersion: 2\n"),
            ("var/lib/dpkg/status.d/.wh..wh..opq", b""),
            ("app/node_modules/.wh.a", b""),
            (
                "app/node_modules/b/package.json",
                br#"{"name":"b","version":"2.0.0"}"#,
            ),
            (".wh.srv", b""),
        ]);
        read_layer(&mut l2.as_slice(), "sha256:l2", None, &mut files).unwrap();
        let keys: Vec<&str> = files.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "app/node_modules/b/package.json",
                "var/lib/dpkg/status.d/new"
            ]
        );
        assert_eq!(files["app/node_modules/b/package.json"].layer, "sha256:l2");
    }
}
