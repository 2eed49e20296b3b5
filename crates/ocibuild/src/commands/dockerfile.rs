//! `ocibuild build -f Dockerfile CONTEXT`: the Dockerfile frontend's flags (build args,
//! secrets, named contexts, `--pull`, `--base-lock`) and the registry resolver of its `FROM`s.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use ocibuild_engine::df::{ImageResolver, NamedContext, SecretSource};
use ocibuild_engine::{EngineError, Frontend};
use ocibuild_oci::image::{Image, Platform, load_image};
use ocibuild_oci::layout::import_into_store_with;
use ocibuild_oci::reference::Reference;
use ocibuild_oci::store::ContentStore;
use ocibuild_registry::client::Registry;
use ocibuild_registry::copy::RegistrySource;

use super::build::FrontendFlags;
use crate::cli::{BuildArgs, Global};
use crate::output::Reporter;

/// Pulls registry bases through the registry client, remembering what a reference resolved to
/// (`ROOT/engine/pulled/`) for `--pull missing|never`.
pub(super) struct Puller<'a> {
    reg: std::sync::OnceLock<std::result::Result<Registry, String>>,
    g: &'a Global,
    store: ContentStore,
    policy: String,
    /// Byte progress of the base's layers (bars, or `bytes` events with `--progress json`).
    rep: &'a Reporter,
}

impl<'a> Puller<'a> {
    pub(super) fn new(
        g: &'a Global,
        a: &BuildArgs,
        store: &ContentStore,
        rep: &'a Reporter,
    ) -> Self {
        Puller {
            reg: std::sync::OnceLock::new(),
            g,
            store: store.clone(),
            // --offline pulls nothing: the bases this store pulled before (as --pull never)
            policy: if a.offline {
                "never".into()
            } else {
                a.pull.clone()
            },
            rep,
        }
    }

    fn pin_path(&self, reference: &str, platform: &Platform) -> PathBuf {
        use sha2::Digest as _;
        let h = hex::encode(sha2::Sha256::digest(
            format!("{reference}\n{}/{}", platform.os, platform.architecture).as_bytes(),
        ));
        self.store
            .root()
            .join("engine")
            .join("pulled")
            .join(format!("{h}.json"))
    }

    fn pinned(&self, path: &Path) -> Option<Image> {
        let d: ocibuild_oci::image::Descriptor =
            serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
        let src = ocibuild_oci::layout::StoreSource::new(self.store.clone(), d, "a pulled base");
        let img = load_image(&src, None).ok()?;
        img.manifest
            .layers
            .iter()
            .all(|l| self.store.has(&l.digest))
            .then_some(img)
    }

    /// A reference by digest (`NAME@sha256:…`) whose manifest or index, and every layer, is in
    /// the store already: no tag to resolve, so nothing to pull (what `--offline` builds on).
    fn by_digest(&self, reference: &str, platform: &Platform) -> Option<Image> {
        let d = Reference::parse(reference).ok()?.digest?;
        if !self.store.has(&d) {
            return None;
        }
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut self.store.open_blob(&d).ok()?, &mut bytes).ok()?;
        let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        let media_type = match v.get("mediaType").and_then(|m| m.as_str()) {
            Some(m) => m.to_string(),
            None if v.get("manifests").is_some() => ocibuild_oci::media::OCI_INDEX.to_string(),
            None => ocibuild_oci::media::OCI_MANIFEST.to_string(),
        };
        let desc = ocibuild_oci::image::Descriptor::new(&media_type, d, bytes.len() as u64);
        let src =
            ocibuild_oci::layout::StoreSource::new(self.store.clone(), desc, "a base in the store");
        let img = load_image(&src, Some(platform)).ok()?;
        img.manifest
            .layers
            .iter()
            .all(|l| self.store.has(&l.digest))
            .then_some(img)
    }

    fn pull(&self, reference: &str, platform: &Platform) -> anyhow::Result<Image> {
        let r = Reference::parse(reference).with_context(|| format!("`{reference}`"))?;
        let reg = self
            .reg
            .get_or_init(|| super::registry::registry(self.g).map_err(|e| format!("{e:#}")))
            .as_ref()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let src = RegistrySource::open(reg, &r).with_context(|| format!("opening docker://{r}"))?;
        let img = load_image(&src, Some(platform))?;
        // `--jobs` blobs at a time, each streamed straight into the store and verified on the
        // way (digest, size, and diff_id on a second thread): nothing is read twice.
        let bf = |d: &ocibuild_oci::Digest, n: u64, t: u64| self.rep.bytes(d, n, t);
        import_into_store_with(&src, &img, &self.store, self.g.jobs, Some(&bf))?;
        Ok(img)
    }
}

impl ImageResolver for Puller<'_> {
    fn in_store(&self, reference: &str, platform: &Platform) -> bool {
        self.pinned(&self.pin_path(reference, platform)).is_some()
            || self.by_digest(reference, platform).is_some()
    }

    fn resolve(&self, reference: &str, platform: &Platform) -> Result<Image, EngineError> {
        let pin = self.pin_path(reference, platform);
        if self.policy != "always"
            && let Some(img) = self
                .pinned(&pin)
                .or_else(|| self.by_digest(reference, platform))
        {
            return Ok(img);
        }
        if self.policy == "never" {
            return Err(EngineError::Invalid {
                what: format!("image {reference}"),
                detail: "--pull never (or --offline), and it was never pulled into this store; pull it once (--pull missing) or use a local oci: layout".into(),
            });
        }
        let img = self
            .pull(reference, platform)
            .map_err(|e| EngineError::Invalid {
                what: format!("pulling {reference}"),
                detail: format!("{e:#}"),
            })?;
        if let Some(d) = pin.parent() {
            let _ = std::fs::create_dir_all(d);
        }
        if let Ok(bytes) = serde_json::to_vec(&img.manifest_desc) {
            let _ = ocibuild_engine::roots::write_atomically(&pin, &bytes);
        }
        Ok(img)
    }
}

fn parse_secret(s: &str) -> Result<(String, SecretSource)> {
    let mut id = None;
    let mut src = None;
    let mut env = None;
    for part in s.split(',') {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        match k {
            "id" => id = Some(v.to_string()),
            "src" | "source" => src = Some(PathBuf::from(v)),
            "env" => env = Some(v.to_string()),
            "type" if v == "file" || v == "env" => {}
            _ => bail!("--secret: unknown field `{k}` (expected id=ID,src=FILE or id=ID,env=VAR)"),
        }
    }
    let id = match id {
        Some(i) => i,
        None => match (&src, &env) {
            (Some(p), _) => p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .context("--secret: give id=ID")?,
            (_, Some(e)) => e.clone(),
            _ => bail!("--secret: give id=ID with src=FILE or env=VAR"),
        },
    };
    let source = match (src, env) {
        (Some(p), None) => {
            if !p.is_file() {
                bail!(
                    "--secret id={id}: the file {} does not exist or is not a file",
                    p.display()
                );
            }
            SecretSource::File(p.canonicalize().unwrap_or(p))
        }
        (None, Some(e)) => SecretSource::Env(e),
        (None, None) => SecretSource::Env(id.clone()),
        (Some(_), Some(_)) => bail!("--secret id={id}: give src= or env=, not both"),
    };
    Ok((id, source))
}

fn parse_context(s: &str) -> Result<(String, NamedContext)> {
    let (name, v) = s
        .split_once('=')
        .with_context(|| format!("--build-context {s}: expected NAME=SOURCE"))?;
    let c = if let Some(rest) = v.strip_prefix("oci-layout://") {
        let (dir, tag) = match rest.rsplit_once(':') {
            Some((d, t)) if !t.contains('/') => (d, Some(t)),
            _ => (rest, None),
        };
        let dir = Path::new(dir)
            .canonicalize()
            .with_context(|| format!("--build-context {name}: {dir} does not exist"))?;
        NamedContext::Image(match tag {
            Some(t) => format!("oci:{}:{t}", dir.display()),
            None => format!("oci:{}", dir.display()),
        })
    } else if v.starts_with("docker-image://")
        || v.starts_with("oci:")
        || v.starts_with("oci-archive:")
        || v.starts_with("docker-archive:")
    {
        NamedContext::Image(v.to_string())
    } else if v.starts_with("http://") || v.starts_with("https://") {
        bail!(
            "--build-context {name}: URL contexts are not supported yet; download into a directory and give its path"
        )
    } else {
        let p = v.strip_prefix("dir:").unwrap_or(v);
        let p = Path::new(p)
            .canonicalize()
            .with_context(|| format!("--build-context {name}: {p} does not exist"))?;
        if !p.is_dir() {
            bail!("--build-context {name}: {} is not a directory", p.display());
        }
        NamedContext::Dir(p)
    };
    Ok((name.to_string(), c))
}

/// `ocibuild cache warm`: a build that only fetches from `--from` caches.
pub fn warm(g: &Global, a: &BuildArgs) -> Result<ExitCode> {
    super::build::run_mode(g, a, true)
}

/// The Dockerfile frontend's own flags, checked before the store is opened.
pub(super) struct Flags {
    file: PathBuf,
    target: Option<String>,
    build_args: BTreeMap<String, String>,
    secrets: BTreeMap<String, SecretSource>,
    contexts: BTreeMap<String, NamedContext>,
    base_locks: Vec<(PathBuf, ocibuild_debian::base::Lockfile)>,
    release: ocibuild_debian::apt::Release,
}

impl Flags {
    pub(super) fn parse(
        a: &BuildArgs,
        warm_only: bool,
        dockerfile: &Path,
    ) -> Result<FrontendFlags> {
        if warm_only && a.cache_from.is_empty() {
            bail!("cache warm needs --from type=azblob,…|type=registry,…|type=local,src=DIR");
        }
        if !matches!(a.pull.as_str(), "always" | "missing" | "never") {
            bail!("--pull {}: use always, missing or never", a.pull);
        }
        let mut build_args = BTreeMap::new();
        for b in &a.build_args {
            match b.split_once('=') {
                Some((k, v)) => build_args.insert(k.to_string(), v.to_string()),
                None => match std::env::var(b) {
                    Ok(v) => build_args.insert(b.clone(), v),
                    Err(_) => continue,
                },
            };
        }
        let secrets = a
            .secrets
            .iter()
            .map(|s| parse_secret(s))
            .collect::<Result<BTreeMap<_, _>>>()?;
        let contexts = a
            .build_contexts
            .iter()
            .map(|s| parse_context(s))
            .collect::<Result<BTreeMap<_, _>>>()?;
        // where `FROM ocibuild:PROFILE` bases come from: `--distro` and the `--base-lock` files
        let release: ocibuild_debian::apt::Release = a
            .distro
            .parse()
            .map_err(|e| crate::output::usage(format!("--distro {}: {e}", a.distro)))?;
        let base_locks = a
            .base_locks
            .iter()
            .map(|p| {
                ocibuild_debian::base::Lockfile::load(p)
                    .map(|l| (p.clone(), l))
                    .with_context(|| format!("--base-lock {}", p.display()))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(FrontendFlags::Dockerfile(Flags {
            file: dockerfile.to_path_buf(),
            target: a.target.clone(),
            build_args,
            secrets,
            contexts,
            base_locks,
            release,
        }))
    }

    /// The engine's frontend, pulling registry bases through `puller`.
    pub(super) fn into_frontend<'a>(
        self,
        puller: &'a Puller<'a>,
    ) -> (Frontend<'a>, ocibuild_debian::apt::Release) {
        (
            Frontend::Dockerfile {
                file: self.file,
                target: self.target,
                build_args: self.build_args,
                secrets: self.secrets,
                contexts: self.contexts,
                resolver: puller,
                base_locks: self.base_locks,
            },
            self.release,
        )
    }
}
