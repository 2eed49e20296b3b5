//! Cataloguing an image ocibuild built, from what the build knows: the seam between the build
//! engine and the catalogers.
//!
//! Both build frontends (Dockerfile and zero-config) return an `ocibuild_record::BuildRecord`;
//! its [`PlatformImage`] and the app's lockfiles as the build read them are the [`BuildFacts`]
//! handed to [`catalog_build`]. The layers are still streamed once (the final filesystem is the
//! truth of what is in the image: a package a later layer removed is not listed), and what the
//! record knows is laid over what the catalogers find:
//!
//! - **Debian packages of the bases** ocibuild assembled come from the bases' locks: name,
//!   version, architecture, the source package, the `.deb`'s SHA-256 from the signed index, and
//!   the base layer they were placed in. The image's dpkg records confirm each one is still
//!   there (and give the licence from its DEP-5 `copyright`); a base whose layers hold no dpkg
//!   records at all is listed from its lock alone. Packages of a toolchain root are never listed:
//!   the record keeps them apart from the image's bases.
//! - **npm packages** are matched to the app's `package-lock.json` (the one the record names by
//!   its SHA-256, from the build context or from the image): each gets the lockfile's integrity
//!   hash, and one the lockfile marks as a development dependency is flagged
//!   (`ocibuild:npm-development`): production installs never place those, so a flagged one
//!   means a Dockerfile installed development dependencies into the image.
//! - **Every component** names the origin of its layer (`ocibuild:layer-origin`: `base:NAME/LAYER`,
//!   `app:NAME` or `step:ID`).
//!
//! What the record does not know (packages a Dockerfile `RUN` installed, Go buildinfo, Python
//! distributions, jars) is what the catalogers find in the layers, as for any image.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component as PathComponent, Path};

use base64::Engine as _;
use ocibuild_oci::{Image, ImageSource};
use ocibuild_record::{LayerOrigin, LockfileKind, PlatformImage};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::walk::{Found, FsEntry, components, image_info, walk_image};
use crate::{Component, Ecosystem, ImageInfo, Result, Sbom, SbomError};

/// What a build knows about one image it made.
#[derive(Clone, Debug)]
pub struct BuildFacts<'a> {
    /// The record's image of this platform.
    pub image: &'a PlatformImage,
    /// The app's lockfiles as the build read them: (path relative to the build context,
    /// content). One whose SHA-256 is not the record's is not used. Lockfiles the image holds
    /// are found by their SHA-256 too, so this may be empty (`ocibuild sbom` of a stored build).
    pub lockfiles: Vec<(String, Vec<u8>)>,
}

impl<'a> BuildFacts<'a> {
    /// The facts of `image`, with the lockfiles the record names read from the build context
    /// `context` (a lockfile that is gone or unreadable is left out: the image may hold it).
    pub fn from_context(image: &'a PlatformImage, context: &Path) -> Self {
        let lockfiles = image
            .lockfiles
            .iter()
            .filter(|l| {
                Path::new(&l.path)
                    .components()
                    .all(|c| matches!(c, PathComponent::Normal(_)))
            })
            .filter_map(|l| {
                std::fs::read(context.join(&l.path))
                    .ok()
                    .map(|b| (l.path.clone(), b))
            })
            .collect();
        Self { image, lockfiles }
    }
}

/// Catalogue `image` (read from `src`), which the build described by `facts` made.
pub fn catalog_build(
    src: &dyn ImageSource,
    image: &Image,
    name: &str,
    facts: &BuildFacts<'_>,
) -> Result<Sbom> {
    if facts.image.manifest.digest != image.manifest_desc.digest {
        return Err(SbomError::Invalid {
            what: format!("the build record of {name}"),
            detail: format!(
                "it describes image {}, not {}: catalogue the image without the record",
                facts.image.manifest.digest, image.manifest_desc.digest
            ),
        });
    }
    let files = walk_image(src, image, name)?;
    let info = image_info(image, name, &files);
    let mut comps = components(&files, &info);
    apply_facts(&mut comps, facts, &files, &info);
    Ok(Sbom::new(info, comps))
}

/// Lay what the build knows over the components the catalogers found.
pub(crate) fn apply_facts(
    comps: &mut Vec<Component>,
    facts: &BuildFacts<'_>,
    files: &BTreeMap<String, FsEntry>,
    info: &ImageInfo,
) {
    debian_from_locks(comps, facts.image, info);
    npm_from_lockfiles(comps, facts, files);
    let origins = layer_origins(facts.image);
    for c in comps.iter_mut() {
        if let Some(o) = origins.get(&c.layer) {
            c.properties
                .insert("ocibuild:layer-origin".into(), o.clone());
        }
    }
}

/// diff_id → `base:NAME/LAYER`, `app:NAME`, `step:ID`.
fn layer_origins(rec: &PlatformImage) -> BTreeMap<String, String> {
    rec.layers
        .iter()
        .map(|l| {
            let o = match &l.origin {
                LayerOrigin::Base { base, name } => {
                    let b = rec
                        .bases
                        .get(*base)
                        .map_or_else(|| base.to_string(), |b| b.name.clone());
                    match name {
                        Some(n) => format!("base:{b}/{n}"),
                        None => format!("base:{b}"),
                    }
                }
                LayerOrigin::App { name } => format!("app:{name}"),
                LayerOrigin::Step { step } => format!("step:{step}"),
            };
            (l.diff_id.to_string(), o)
        })
        .collect()
}

fn debian_from_locks(comps: &mut Vec<Component>, rec: &PlatformImage, info: &ImageInfo) {
    let distro = crate::dpkg::distro(info);
    for (bi, base) in rec.bases.iter().enumerate() {
        let Some(set) = base.debian.as_ref().filter(|_| base.in_image) else {
            continue;
        };
        // this base's layers: (the lock's layer name, diff_id)
        let layers: Vec<(Option<&str>, String)> = rec
            .layers
            .iter()
            .filter_map(|l| match &l.origin {
                LayerOrigin::Base { base, name } if *base == bi => {
                    Some((name.as_deref(), l.diff_id.to_string()))
                }
                _ => None,
            })
            .collect();
        let in_base = |c: &Component| {
            c.ecosystem == Ecosystem::Debian && layers.iter().any(|(_, d)| *d == c.layer)
        };
        let confirmed_by_image = comps.iter().any(in_base);
        for pkg in &set.packages {
            let found = comps.iter().position(|c| in_base(c) && c.name == pkg.name);
            match found {
                Some(i) => {
                    let c = &mut comps[i];
                    if c.version != pkg.version {
                        // the image's record is the truth; say what the lock expected
                        c.properties
                            .insert("ocibuild:lock-version".into(), pkg.version.clone());
                        continue;
                    }
                    if let Some(h) = &pkg.sha256
                        && !c.hashes.iter().any(|(a, _)| a == "SHA-256")
                    {
                        c.hashes.push(("SHA-256".into(), h.clone()));
                    }
                    c.properties
                        .insert("ocibuild:catalogued-from".into(), "build-record".into());
                    if let Some(v) = &pkg.source_version {
                        c.properties
                            .insert("ocibuild:deb-source-version".into(), v.clone());
                    }
                }
                // placed by the base, then removed by a later layer: not in the image
                None if confirmed_by_image => {}
                None => {
                    let layer = layers
                        .iter()
                        .find(|(n, _)| pkg.layer.is_some() && *n == pkg.layer.as_deref())
                        .or(layers.first())
                        .map(|(_, d)| d.clone())
                        .unwrap_or_default();
                    let source = pkg.source.clone().unwrap_or_else(|| pkg.name.clone());
                    let mut properties = BTreeMap::from([(
                        "ocibuild:catalogued-from".to_string(),
                        "build-record".to_string(),
                    )]);
                    if let Some(v) = &pkg.source_version {
                        properties.insert("ocibuild:deb-source-version".into(), v.clone());
                    }
                    comps.push(Component {
                        ecosystem: Ecosystem::Debian,
                        purl: crate::purl::deb(
                            &pkg.name,
                            &pkg.version,
                            &pkg.architecture,
                            distro.as_deref(),
                            &source,
                        ),
                        name: pkg.name.clone(),
                        version: pkg.version.clone(),
                        licenses: Vec::new(),
                        layer,
                        path: format!("var/lib/dpkg/status.d/{}", pkg.name),
                        hashes: pkg
                            .sha256
                            .iter()
                            .map(|h| ("SHA-256".to_string(), h.clone()))
                            .collect(),
                        properties,
                    });
                }
            }
        }
    }
}

/// An npm lockfile the record vouches for: where it is, the directory (in the image) whose
/// `node_modules` it describes, if known, and its `packages`.
struct NpmLock {
    label: String,
    image_dir: Option<String>,
    packages: serde_json::Map<String, Value>,
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn npm_locks(facts: &BuildFacts<'_>, files: &BTreeMap<String, FsEntry>) -> Vec<NpmLock> {
    let vouched: BTreeSet<&str> = facts
        .image
        .lockfiles
        .iter()
        .filter(|l| l.kind == LockfileKind::NpmLock)
        .map(|l| l.sha256.as_str())
        .collect();
    if vouched.is_empty() {
        return Vec::new();
    }
    let parse = |b: &[u8]| -> Option<serde_json::Map<String, Value>> {
        let v: Value = serde_json::from_slice(b).ok()?;
        // lockfileVersion 2 and 3 list every installed path; version 1 has no `packages`
        v.get("packages")?.as_object().cloned()
    };
    let mut out = Vec::new();
    for (path, e) in files {
        let Found::Text(t) = &e.found else { continue };
        if !matches!(
            path.rsplit('/').next(),
            Some("package-lock.json" | "npm-shrinkwrap.json")
        ) || !vouched.contains(sha256_hex(t).as_str())
        {
            continue;
        }
        if let Some(packages) = parse(t) {
            let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
            out.push(NpmLock {
                label: format!("/{path}"),
                image_dir: Some(dir.to_string()),
                packages,
            });
        }
    }
    for (path, bytes) in &facts.lockfiles {
        if !vouched.contains(sha256_hex(bytes).as_str()) {
            continue;
        }
        if let Some(packages) = parse(bytes) {
            out.push(NpmLock {
                label: path.clone(),
                image_dir: None,
                packages,
            });
        }
    }
    out
}

/// `sha512-<base64>` (npm's Subresource Integrity) as CycloneDX's (algorithm, hex); nothing
/// for a digest of the wrong length (the documents' schemas would refuse it).
fn integrity(sri: &str) -> Option<(String, String)> {
    let (alg, b64) = sri.split_whitespace().next()?.split_once('-')?;
    let (alg, len) = match alg {
        "sha512" => ("SHA-512", 64),
        "sha384" => ("SHA-384", 48),
        "sha256" => ("SHA-256", 32),
        "sha1" => ("SHA-1", 20),
        _ => return None,
    };
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    (bytes.len() == len).then(|| (alg.to_string(), hex::encode(bytes)))
}

fn npm_from_lockfiles(
    comps: &mut [Component],
    facts: &BuildFacts<'_>,
    files: &BTreeMap<String, FsEntry>,
) {
    let locks = npm_locks(facts, files);
    if locks.is_empty() {
        return;
    }
    for c in comps.iter_mut().filter(|c| c.ecosystem == Ecosystem::Npm) {
        // `app/node_modules/a/node_modules/b/package.json` → root `app`, key
        // `node_modules/a/node_modules/b`
        let Some(i) = c.path.find("node_modules/") else {
            continue;
        };
        let root = c.path[..i].trim_end_matches('/');
        let Some(key) = c.path[i..].strip_suffix("/package.json") else {
            continue;
        };
        // the lockfile beside this node_modules in the image, else the build context's
        let lock = locks
            .iter()
            .find(|l| l.image_dir.as_deref() == Some(root))
            .or_else(|| locks.iter().find(|l| l.image_dir.is_none()));
        let Some(lock) = lock else { continue };
        let Some(entry) = lock.packages.get(key) else {
            continue;
        };
        if entry.get("version").and_then(Value::as_str) != Some(c.version.as_str()) {
            continue;
        }
        if let Some((alg, h)) = entry
            .get("integrity")
            .and_then(Value::as_str)
            .and_then(integrity)
            && !c.hashes.iter().any(|(a, _)| *a == alg)
        {
            c.hashes.push((alg, h));
        }
        c.properties
            .insert("ocibuild:lockfile".into(), lock.label.clone());
        if entry.get("dev").and_then(Value::as_bool) == Some(true) {
            c.properties
                .insert("ocibuild:npm-development".into(), "true".into());
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use ocibuild_oci::Digest;
    use ocibuild_oci::image::Descriptor;
    use ocibuild_record as r;

    fn desc(b: u8) -> Descriptor {
        Descriptor::new(
            "application/vnd.oci.image.layer.v1.tar+gzip",
            Digest::of_bytes(&[b]),
            1,
        )
    }

    fn pkg(name: &str, version: &str, source: Option<&str>, layer: &str) -> r::DebianPackage {
        r::DebianPackage {
            name: name.into(),
            version: version.into(),
            architecture: "amd64".into(),
            source: source.map(str::to_string),
            source_version: None,
            sha256: Some(format!("{:0>64}", name.len())),
            layer: Some(layer.into()),
        }
    }

    /// A record: two base layers (`static`, `cc`) of a Debian base, an app layer.
    fn record(lock_sha: &str) -> PlatformImage {
        let layer = |b: u8, origin| r::Layer {
            descriptor: desc(b),
            diff_id: Digest::of_bytes(&[b, b]),
            origin,
        };
        PlatformImage {
            platform: "linux/amd64".into(),
            manifest: desc(9),
            config: desc(8),
            layers: vec![
                layer(
                    1,
                    LayerOrigin::Base {
                        base: 0,
                        name: Some("static".into()),
                    },
                ),
                layer(
                    2,
                    LayerOrigin::Base {
                        base: 0,
                        name: Some("cc".into()),
                    },
                ),
                layer(
                    3,
                    LayerOrigin::App {
                        name: "node_modules".into(),
                    },
                ),
            ],
            bases: vec![r::Base {
                name: "runtime".into(),
                reference: "nodejs:nonroot".into(),
                digest: None,
                in_image: true,
                debian: Some(r::DebianSet {
                    release: "trixie".into(),
                    architecture: "amd64".into(),
                    packages: vec![
                        pkg("base-files", "13.8", None, "static"),
                        pkg("libc6", "2.41-12", Some("glibc"), "cc"),
                        pkg("gone", "1", None, "cc"),
                    ],
                }),
            }],
            toolchains: vec![r::Toolchain {
                name: "node-build".into(),
                lock_key: "k".into(),
                debian: Some(r::DebianSet {
                    release: "trixie".into(),
                    architecture: "amd64".into(),
                    packages: vec![pkg("npm", "9.2.0", None, "node-build")],
                }),
            }],
            lockfiles: vec![r::Lockfile {
                path: "package-lock.json".into(),
                kind: LockfileKind::NpmLock,
                sha256: lock_sha.into(),
                packages: None,
            }],
            outputs: Vec::new(),
        }
    }

    fn diff(b: u8) -> String {
        Digest::of_bytes(&[b, b]).to_string()
    }

    fn text(layer: u8, t: &str) -> FsEntry {
        FsEntry {
            layer: diff(layer),
            found: Found::Text(t.as_bytes().to_vec()),
        }
    }

    const LOCK: &str = r#"{"lockfileVersion": 3, "packages": {
        "": {"name": "app"},
        "node_modules/express": {"version": "4.21.2", "integrity": "sha1-AAECAwQFBgcICQoLDA0ODxAREhM="},
        "node_modules/typescript": {"version": "5.7.2", "dev": true, "integrity": "sha1-BAU="},
        "node_modules/missing": {"version": "1.0.0"}}}"#;

    fn files(with_status: bool) -> BTreeMap<String, FsEntry> {
        let mut f = BTreeMap::new();
        f.insert(
            "etc/os-release".into(),
            text(1, "ID=debian\nVERSION_ID=\"13\"\n"),
        );
        if with_status {
            f.insert(
                "var/lib/dpkg/status.d/base-files".into(),
                text(
                    1,
                    "Package: base-files\nVersion: 13.8\nArchitecture: amd64\n",
                ),
            );
            f.insert(
                "var/lib/dpkg/status.d/libc6".into(),
                text(
                    2,
                    "Package: libc6\nVersion: 2.41-12\nArchitecture: amd64\nSource: glibc\n",
                ),
            );
        }
        f.insert("app/package-lock.json".into(), text(3, LOCK));
        f.insert(
            "app/node_modules/express/package.json".into(),
            text(
                3,
                r#"{"name": "express", "version": "4.21.2", "license": "MIT"}"#,
            ),
        );
        // a Dockerfile that ran `npm ci` without --omit=dev
        f.insert(
            "app/node_modules/typescript/package.json".into(),
            text(3, r#"{"name": "typescript", "version": "5.7.2"}"#),
        );
        f
    }

    fn catalogue(with_status: bool, lock_sha: &str) -> Vec<Component> {
        let files = files(with_status);
        let rec = record(lock_sha);
        let info = ImageInfo {
            name: "t".into(),
            manifest_digest: Digest::of_bytes(&[9]),
            created: None,
            platform: None,
            os_id: Some("debian".into()),
            os_version_id: Some("13".into()),
        };
        let mut comps = components(&files, &info);
        let facts = BuildFacts {
            image: &rec,
            lockfiles: Vec::new(),
        };
        apply_facts(&mut comps, &facts, &files, &info);
        comps
    }

    fn by_name<'a>(comps: &'a [Component], name: &str) -> &'a Component {
        comps.iter().find(|c| c.name == name).unwrap()
    }

    #[test]
    fn debian_packages_come_from_the_lock_as_far_as_the_image_confirms_them() {
        let comps = catalogue(true, &sha256_hex(LOCK.as_bytes()));
        let libc = by_name(&comps, "libc6");
        assert_eq!(
            libc.purl,
            "pkg:deb/debian/libc6@2.41-12?arch=amd64&distro=debian-13&upstream=glibc"
        );
        assert_eq!(libc.layer, diff(2));
        assert_eq!(libc.properties["ocibuild:layer-origin"], "base:runtime/cc");
        assert_eq!(libc.properties["ocibuild:catalogued-from"], "build-record");
        assert_eq!(
            libc.hashes,
            vec![("SHA-256".to_string(), format!("{:0>64}", 5))]
        );
        // placed by the base but not in the final filesystem; the toolchain's npm never
        assert!(comps.iter().all(|c| c.name != "gone" && c.name != "npm"));
        assert_eq!(
            comps
                .iter()
                .filter(|c| c.ecosystem == Ecosystem::Debian)
                .count(),
            2
        );
    }

    #[test]
    fn a_base_without_dpkg_records_is_listed_from_its_lock() {
        let comps = catalogue(false, &sha256_hex(LOCK.as_bytes()));
        let debs: Vec<&Component> = comps
            .iter()
            .filter(|c| c.ecosystem == Ecosystem::Debian)
            .collect();
        assert_eq!(debs.len(), 3, "{debs:?}");
        let libc = by_name(&comps, "libc6");
        assert!(libc.purl.ends_with("&upstream=glibc"), "{}", libc.purl);
        assert_eq!(libc.layer, diff(2), "the lock's layer name gives the layer");
        assert!(comps.iter().all(|c| c.name != "npm"));
    }

    #[test]
    fn npm_packages_get_the_lockfiles_integrity_and_dev_flag() {
        let comps = catalogue(true, &sha256_hex(LOCK.as_bytes()));
        let express = by_name(&comps, "express");
        assert_eq!(
            express.hashes,
            vec![(
                "SHA-1".to_string(),
                "000102030405060708090a0b0c0d0e0f10111213".to_string()
            )]
        );
        assert_eq!(
            express.properties["ocibuild:lockfile"],
            "/app/package-lock.json"
        );
        assert_eq!(
            express.properties["ocibuild:layer-origin"],
            "app:node_modules"
        );
        assert!(!express.properties.contains_key("ocibuild:npm-development"));
        let ts = by_name(&comps, "typescript");
        assert_eq!(ts.properties["ocibuild:npm-development"], "true");
        // in the lockfile but not in the image: not listed
        assert!(comps.iter().all(|c| c.name != "missing"));
    }

    #[test]
    fn a_lockfile_the_record_does_not_vouch_for_is_not_used() {
        let comps = catalogue(true, &"0".repeat(64));
        let express = by_name(&comps, "express");
        assert!(express.hashes.is_empty());
        assert!(!express.properties.contains_key("ocibuild:lockfile"));
    }

    #[test]
    fn context_lockfiles_are_read_safely() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("package-lock.json"), LOCK).unwrap();
        let mut rec = record(&sha256_hex(LOCK.as_bytes()));
        rec.lockfiles.push(r::Lockfile {
            path: "../outside.json".into(),
            kind: LockfileKind::NpmLock,
            sha256: String::new(),
            packages: None,
        });
        let facts = BuildFacts::from_context(&rec, dir.path());
        assert_eq!(facts.lockfiles.len(), 1);
        assert_eq!(facts.lockfiles[0].0, "package-lock.json");
        let sha1 = "sha1-ZGVmZ2hpamtsbW5vcHFyc3R1dnc=";
        assert_eq!(
            integrity(sha1),
            Some((
                "SHA-1".into(),
                "6465666768696a6b6c6d6e6f7071727374757677".into()
            ))
        );
        // a digest of the wrong length for its algorithm is not a hash
        assert_eq!(integrity("sha512-ZGVmZ2hpamtsbW5vcHFyc3R1dnc="), None);
        assert_eq!(integrity("md5-xx"), None);
    }
}
