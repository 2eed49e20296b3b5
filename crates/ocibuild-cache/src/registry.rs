//! `type=registry,ref=HOST/REPO:TAG`: the cache in an OCI registry, through `ocibuild-registry`
//! (its auth, mirrors, TLS and retries).
//!
//! - Every cache blob is a blob of `REPO`.
//! - Every index object is an OCI artifact manifest tagged `<TAG>-<first 32 hex digits of the
//!   key>`: `artifactType` [`ARTIFACT_TYPE`], `config` the empty descriptor (`{}`), `layers[0]`
//!   the index JSON ([`INDEX_MEDIA_TYPE`]), `layers[1..]` the blobs the index names that the
//!   repository holds ([`BLOB_MEDIA_TYPE`]: referenced, so `registry garbage-collect` keeps
//!   them), and the annotation [`KEY_ANNOTATION`] holding the full key (a tag that carries
//!   another key is never read as ours, nor overwritten).
//!
//! Inline caches: when the tag of `ref=` holds an image (not an index object) whose config has the
//! label [`crate::INLINE_LABEL`], lookups use the tag prefix that label names (the inline cache a
//! build with `--cache-to type=inline --push` wrote beside the image), so `--cache-from IMAGE`
//! reuses the steps of the build that pushed IMAGE.
//!
//! Conditional create: registries offer no `If-None-Match` on manifests, so `put_index` looks the
//! tag up first and pushes only when it is absent. Two runners racing on one key may both push;
//! the last tag wins. Both describe the same step with the same inputs, and every blob is
//! verified on fetch, so the race costs at most a rebuild.
//!
//! Corruption: a registry verifies digests on upload, so a corrupt blob can only come from its
//! storage. It is detected on fetch ([`crate::Fetch::Corrupt`]) but cannot be repaired through the
//! distribution API (an upload of a digest the registry already stores keeps the stored bytes);
//! the registry's operator has to delete it (`DELETE /v2/REPO/blobs/DIGEST`, then garbage-collect).

use std::io::{Read, Seek, SeekFrom};

use ocibuild_oci::image::{Descriptor, MAX_JSON_BLOB, Manifest};
use ocibuild_oci::reference::Reference;
use ocibuild_oci::store::ContentStore;
use ocibuild_oci::{Digest, media};
use ocibuild_registry::RegistryError;
use ocibuild_registry::client::{Registry, RegistryOptions};

use crate::error::CacheError;
use crate::{
    CacheBackend, Fetch, Incoming, MAX_INDEX_BYTES, PutOutcome, check_index_size, check_key,
};

/// `artifactType` of index-object manifests.
pub const ARTIFACT_TYPE: &str = "application/vnd.ocibuild.cache.v1+json";
/// Media type of the layer that holds the index JSON.
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.ocibuild.cache.index.v1+json";
/// Media type of the layers that reference the blobs an index names.
pub const BLOB_MEDIA_TYPE: &str = "application/vnd.ocibuild.cache.blob.v1";
/// Manifest annotation holding the full cache key.
pub const KEY_ANNOTATION: &str = "org.ocibuild.cache.key";
/// The empty JSON object, the config of artifact manifests.
pub const EMPTY_JSON: &[u8] = b"{}";

enum Handle<'a> {
    Borrowed(&'a Registry),
    Owned(Box<Registry>),
}

/// A registry cache.
pub struct RegistryCache<'a> {
    reg: Handle<'a>,
    host: String,
    repo: String,
    tag: String,
    describe: String,
    /// The tag prefix lookups use: `tag`, or the inline cache the image under `tag` names.
    lookup_tag: std::sync::OnceLock<String>,
}

impl<'a> RegistryCache<'a> {
    /// A cache in `reference`'s repository, tagged from its tag; `registry` is the build's
    /// client (else one with default options is made).
    pub fn new(reference: &Reference, registry: Option<&'a Registry>) -> Self {
        let reg = match registry {
            Some(r) => Handle::Borrowed(r),
            None => Handle::Owned(Box::new(Registry::new(RegistryOptions::default()))),
        };
        RegistryCache {
            reg,
            host: reference.api_registry().to_string(),
            repo: reference.repository.clone(),
            tag: reference.tag_or_latest().to_string(),
            describe: format!(
                "registry cache {}/{}:{}",
                reference.registry,
                reference.repository,
                reference.tag_or_latest()
            ),
            lookup_tag: std::sync::OnceLock::new(),
        }
    }

    /// The tag prefix index objects are looked up under (see the module doc on inline caches).
    fn lookup_prefix(&self) -> &str {
        self.lookup_tag.get_or_init(|| match self.inline_prefix() {
            Some(t) => {
                tracing::debug!(cache = %self.describe, prefix = %t, "the image names an inline cache");
                t
            }
            None => self.tag.clone(),
        })
    }

    /// The inline-cache tag prefix the image under `tag` names in its config, if it is one.
    fn inline_prefix(&self) -> Option<String> {
        let (bytes, _, _) = self
            .reg()
            .get_manifest(&self.host, &self.repo, &self.tag)
            .ok()?;
        let m: Manifest = serde_json::from_slice(&bytes).ok()?;
        if m.artifact_type.as_deref() == Some(ARTIFACT_TYPE) || m.config.size > MAX_JSON_BLOB {
            return None;
        }
        let r = self
            .reg()
            .get_blob(&self.host, &self.repo, &m.config.digest)
            .ok()?;
        let mut cfg = Vec::new();
        r.take(m.config.size + 1).read_to_end(&mut cfg).ok()?;
        if Digest::of_bytes(&cfg) != m.config.digest {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&cfg).ok()?;
        let t = v
            .get("config")?
            .get("Labels")?
            .get(crate::INLINE_LABEL)?
            .as_str()?;
        let valid = !t.is_empty()
            && t.len() + crate::spec::REGISTRY_TAG_SUFFIX
                <= ocibuild_oci::reference::TAG_LENGTH_MAX
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        valid.then(|| t.to_string())
    }

    fn reg(&self) -> &Registry {
        match &self.reg {
            Handle::Borrowed(r) => r,
            Handle::Owned(r) => r,
        }
    }

    /// The tag of the index object for `key`.
    pub fn tag_for(&self, key: &str) -> String {
        format!("{}-{}", self.tag, &key[..key.len().min(32)])
    }

    fn err(&self, op: impl Into<String>) -> impl FnOnce(RegistryError) -> CacheError + '_ {
        let op = op.into();
        move |source| CacheError::Registry {
            cache: self.describe.clone(),
            op,
            source: Box::new(source),
        }
    }

    /// The index manifest under `tag`, if any.
    fn manifest(&self, tag: &str) -> Result<Option<Manifest>, CacheError> {
        match self.reg().get_manifest(&self.host, &self.repo, tag) {
            Ok((bytes, _, _)) => match serde_json::from_slice::<Manifest>(&bytes) {
                Ok(m) => Ok(Some(m)),
                Err(e) => Err(CacheError::Foreign {
                    cache: self.describe.clone(),
                    what: format!(
                        "the tag {tag} holds something that is not an image manifest ({e})"
                    ),
                }),
            },
            Err(RegistryError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(self.err(format!("looking up the tag {tag}"))(e)),
        }
    }

    fn is_ours(m: &Manifest, key: &str) -> bool {
        m.artifact_type.as_deref() == Some(ARTIFACT_TYPE)
            && m.annotations.get(KEY_ANNOTATION).map(String::as_str) == Some(key)
            && m.layers
                .first()
                .is_some_and(|l| l.media_type == INDEX_MEDIA_TYPE)
    }

    fn push_bytes(
        &self,
        bytes: &[u8],
        media_type: &str,
        what: &str,
    ) -> Result<Descriptor, CacheError> {
        let desc = Descriptor::of_bytes(media_type, bytes);
        let owned = bytes.to_vec();
        let open = move |off: u64| -> std::io::Result<Box<dyn Read + Send>> {
            let start = (off as usize).min(owned.len());
            Ok(Box::new(std::io::Cursor::new(owned[start..].to_vec())))
        };
        self.reg()
            .put_blob(&self.host, &self.repo, &desc, None, &open)
            .map_err(self.err(format!("pushing {what}")))?;
        Ok(desc)
    }
}

/// Every distinct `sha256:<hex>` string value in a JSON document, in order.
fn digests_in(json: &[u8]) -> Vec<Digest> {
    fn walk(v: &serde_json::Value, out: &mut Vec<Digest>) {
        match v {
            serde_json::Value::String(s) => {
                if let Ok(d) = Digest::parse(s)
                    && !out.contains(&d)
                {
                    out.push(d);
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            serde_json::Value::Object(o) => o.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(json) {
        walk(&v, &mut out);
    }
    out
}

impl CacheBackend for RegistryCache<'_> {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn get_index(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        check_key(key)?;
        let tag = format!("{}-{}", self.lookup_prefix(), &key[..key.len().min(32)]);
        let m = match self.manifest(&tag) {
            Ok(Some(m)) => m,
            Ok(None) => return Ok(None),
            Err(CacheError::Foreign { what, .. }) => {
                tracing::warn!(cache = %self.describe, "{what}: treated as a miss");
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        if !Self::is_ours(&m, key) {
            tracing::warn!(cache = %self.describe, tag, "the tag holds another artifact or another key: treated as a miss");
            return Ok(None);
        }
        let Some(layer) = m.layers.first() else {
            return Ok(None);
        };
        if layer.size > MAX_INDEX_BYTES.min(MAX_JSON_BLOB) {
            tracing::warn!(cache = %self.describe, tag, "index object too large: treated as a miss");
            return Ok(None);
        }
        let r = match self.reg().get_blob(&self.host, &self.repo, &layer.digest) {
            Ok(r) => r,
            Err(RegistryError::Status { status: 404, .. }) => return Ok(None),
            Err(e) => return Err(self.err(format!("pulling the index object {tag}"))(e)),
        };
        let mut bytes = Vec::new();
        r.take(layer.size + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| {
                self.err(format!("pulling the index object {tag}"))(RegistryError::Io {
                    what: format!("reading blob {}", layer.digest),
                    source,
                })
            })?;
        if bytes.len() as u64 != layer.size || Digest::of_bytes(&bytes) != layer.digest {
            tracing::warn!(cache = %self.describe, tag, "the index object does not match its descriptor: treated as a miss");
            return Ok(None);
        }
        Ok(Some(bytes))
    }

    fn put_index(&self, key: &str, bytes: &[u8]) -> Result<PutOutcome, CacheError> {
        ocibuild_oci::failpoint::hit("cache-export");
        check_key(key)?;
        check_index_size(key, bytes)?;
        let tag = self.tag_for(key);
        if let Some(m) = self.manifest(&tag)? {
            if Self::is_ours(&m, key) {
                return Ok(PutOutcome::AlreadyExists);
            }
            return Err(CacheError::Foreign {
                cache: self.describe.clone(),
                what: format!(
                    "the tag {tag} holds another artifact (or the index of a key that shares its first 32 hex digits); it was left alone"
                ),
            });
        }
        let config = self.push_bytes(EMPTY_JSON, media::OCI_EMPTY, "the empty config")?;
        let index = self.push_bytes(bytes, INDEX_MEDIA_TYPE, &format!("the index object {tag}"))?;
        let mut layers = vec![index.clone()];
        for d in digests_in(bytes) {
            if d == index.digest || d == config.digest {
                continue;
            }
            if let Some(size) = self
                .reg()
                .blob_exists(&self.host, &self.repo, &d)
                .map_err(self.err(format!("checking blob {d}")))?
            {
                layers.push(Descriptor::new(BLOB_MEDIA_TYPE, d, size));
            }
        }
        let mut annotations = std::collections::BTreeMap::new();
        annotations.insert(KEY_ANNOTATION.to_string(), key.to_string());
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.to_string()),
            artifact_type: Some(ARTIFACT_TYPE.to_string()),
            config,
            layers,
            subject: None,
            annotations,
        };
        let mbytes = ocibuild_oci::image::to_json_bytes(&manifest, "cache index manifest")?;
        self.reg()
            .put_manifest(&self.host, &self.repo, &tag, &mbytes, media::OCI_MANIFEST)
            .map_err(self.err(format!("tagging the index object {tag}")))?;
        Ok(PutOutcome::Created)
    }

    fn has_blob(&self, d: &Digest) -> Result<bool, CacheError> {
        Ok(self
            .reg()
            .blob_exists(&self.host, &self.repo, d)
            .map_err(self.err(format!("checking blob {d}")))?
            .is_some())
    }

    fn fetch_blob(&self, d: &Digest, store: &ContentStore) -> Result<Fetch, CacheError> {
        if store.has(d) {
            store.touch(d);
            return Ok(Fetch::Present);
        }
        let mut r = match self.reg().get_blob(&self.host, &self.repo, d) {
            Ok(r) => r,
            Err(RegistryError::Status { status: 404, .. }) => return Ok(Fetch::Missing),
            Err(e) => return Err(self.err(format!("pulling blob {d}"))(e)),
        };
        let mut inc = Incoming::new(store, d, format!("blob {d} from {}", self.describe))?;
        inc.copy_from(&mut r)?.map_err(|source| {
            self.err(format!("pulling blob {d}"))(RegistryError::Io {
                what: format!("reading blob {d}"),
                source,
            })
        })?;
        inc.finish()
    }

    fn push_blob(&self, d: &Digest, store: &ContentStore) -> Result<(), CacheError> {
        let Some(size) = store.size(d) else {
            store.open_blob(d)?;
            return Ok(());
        };
        let desc = Descriptor::new("application/octet-stream", d.clone(), size);
        let open = |off: u64| -> std::io::Result<Box<dyn Read + Send>> {
            let mut f = store
                .open_blob(d)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            f.seek(SeekFrom::Start(off))?;
            Ok(Box::new(f))
        };
        self.reg()
            .put_blob(&self.host, &self.repo, &desc, None, &open)
            .map_err(self.err(format!("pushing blob {d}")))?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn finds_digests_in_index_json() {
        let a = Digest::of_bytes(b"a");
        let b = Digest::of_bytes(b"b");
        let json = serde_json::json!({
            "layers": [{"digest": a.to_string(), "size": 1}, {"digest": b.to_string()}],
            "config": a.to_string(),
            "note": "sha256:short",
            "n": 3
        });
        let d = digests_in(json.to_string().as_bytes());
        assert_eq!(d.len(), 2);
        assert!(d.contains(&a) && d.contains(&b));
        assert!(digests_in(b"not json").is_empty());
    }

    #[test]
    fn tags_for_keys() {
        let r = Reference::parse("127.0.0.1:5000/app:cache").unwrap();
        let c = RegistryCache::new(&r, None);
        let key = "0123456789abcdef".repeat(4);
        assert_eq!(c.tag_for(&key), "cache-0123456789abcdef0123456789abcdef");
        assert_eq!(c.tag_for("abc"), "cache-abc");
        assert_eq!(c.describe(), "registry cache 127.0.0.1:5000/app:cache");
    }
}
