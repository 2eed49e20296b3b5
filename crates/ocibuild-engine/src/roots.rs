//! Toolchain roots and runtime bases, from Debian packages, cached.
//!
//! Each request is locked first ([`lock_base`]: the release's signed indexes, cheap), and the
//! lockfile's hash names the result: `ROOT/engine/bases/<hash>.json` remembers the manifest of a
//! built image so an unchanged lock costs no unpacking, and `ROOT/engine/rootfs/<manifest>/`
//! holds a toolchain image extracted once (safely, verified against its diff_ids) for the
//! sandbox to run over. Both are written to a temp name and renamed into place, so a killed
//! build leaves nothing half-made behind.

use std::fs;
use std::path::{Path, PathBuf};

use ocibuild_debian::apt::Release;
use ocibuild_debian::base::{
    BaseOptions, ExtractTo, Lockfile, Variant, build_from_lock_into, build_rootfs_from_lock,
    lock_base,
};
use ocibuild_oci::image::{Descriptor, Image, load_image};
use ocibuild_oci::layout::StoreSource;
use ocibuild_oci::media::Compression;
use ocibuild_oci::store::ContentStore;
use sha2::{Digest as _, Sha256};

use crate::error::{EngineError, Result};

/// Where bases come from.
#[derive(Clone, Debug)]
pub struct Bases {
    pub store: ContentStore,
    /// The Debian package cache.
    pub cache_dir: PathBuf,
    pub release: Release,
    pub arch: String,
    pub offline: bool,
    /// `created` and file times of the bases (`None`: the release's date).
    pub source_date_epoch: Option<u64>,
    /// Reuse a resolution (lock) and the signed indexes it came from when younger than this;
    /// `None`: resolve against freshly fetched indexes every time.
    pub index_max_age: Option<std::time::Duration>,
    /// Where the packages' downloads and unpacking are reported.
    pub progress: ocibuild_debian::base::Progress,
}

/// A resolved base request: the lock, the options it came from, and the key of its image.
#[derive(Clone, Debug)]
pub struct Locked {
    pub opts: BaseOptions,
    pub lock: Lockfile,
    /// SHA256 hex over the lock, the build's fingerprint, the image's time and compression:
    /// equal keys give equal images.
    pub key: String,
}

/// A base image in the content store, and the lock it was built from.
#[derive(Clone, Debug)]
pub struct Base {
    pub image: Image,
    pub lock: Lockfile,
    /// Whether it was found already built.
    pub cached: bool,
}

/// A toolchain root to run build steps in ([`Bases::toolchain_locked_root`]).
#[derive(Clone, Debug)]
pub struct ToolchainRoot {
    /// The directory (a cached rootfs: steps run over it, never in it).
    pub root: PathBuf,
    /// The lock key that names it ([`Locked::key`]).
    pub key: String,
    /// Whether it was found in the store.
    pub cached: bool,
    /// The root as an image in the store, when one was asked for or was there already.
    pub image: Option<Base>,
}

impl Base {
    pub fn source(&self, store: &ContentStore) -> StoreSource {
        StoreSource::new(
            store.clone(),
            self.image.manifest_desc.clone(),
            format!(
                "the {} base {}",
                self.lock.profile, self.image.manifest_desc.digest
            ),
        )
    }
}

impl Bases {
    fn engine_dir(&self, sub: &str) -> Result<PathBuf> {
        let d = self.store.root().join("engine").join(sub);
        fs::create_dir_all(&d).map_err(EngineError::io("creating the engine cache", &d))?;
        Ok(d)
    }

    fn options(
        &self,
        profile: &str,
        variant: Variant,
        packages: &[String],
        backports: bool,
    ) -> BaseOptions {
        let mut o = BaseOptions::new(profile, &self.cache_dir);
        o.variant = variant;
        o.release = self.release;
        o.arch = self.arch.clone();
        o.offline = self.offline;
        o.extra_packages = packages.to_vec();
        o.backports = backports;
        o.source_date_epoch = self.source_date_epoch;
        o.index_max_age = self.index_max_age;
        o.progress = self.progress.clone();
        o
    }

    /// `lock_base`, remembered for [`Bases::index_max_age`] (always, when offline) under a key
    /// of everything that selects the packages.
    fn lock(&self, opts: &BaseOptions) -> Result<Lockfile> {
        let key = {
            let mut h = Sha256::new();
            h.update(
                format!(
                    "lock-v1\0{}\0{:?}\0{:?}\0{}\0{}\0{}",
                    opts.profile,
                    opts.variant,
                    opts.extra_packages,
                    opts.backports,
                    opts.release.codename(),
                    opts.arch
                )
                .as_bytes(),
            );
            hex::encode(h.finalize())
        };
        let path = self.engine_dir("locks")?.join(format!("{key}.json"));
        let young = |p: &Path| {
            fs::metadata(p)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|e| self.index_max_age.is_some_and(|max| e < max))
        };
        if (self.offline || young(&path))
            && let Ok(l) = Lockfile::load(&path)
        {
            return Ok(l);
        }
        let t0 = std::time::Instant::now();
        let lock = lock_base(opts)?;
        tracing::debug!(target: "ocibuild::timing", profile = %opts.profile, ms = t0.elapsed().as_millis() as u64, "lock");
        let json = serde_json::to_vec_pretty(&lock).map_err(|e| EngineError::Invalid {
            what: "lockfile".into(),
            detail: e.to_string(),
        })?;
        write_atomically(&path, &json)?;
        Ok(lock)
    }

    /// The image of `profile` (+ `packages`), built or found in the cache.
    pub fn image(
        &self,
        profile: &str,
        variant: Variant,
        packages: &[String],
        backports: bool,
    ) -> Result<Base> {
        let l = self.locked(profile, variant, packages, backports)?;
        self.image_locked(&l)
    }

    /// Resolve `profile` (+ `packages`) into a lock (cheap: the signed indexes, reused for
    /// [`Bases::index_max_age`]), without building anything. [`Locked::key`] names the image the
    /// lock gives, so it can key a build before the image exists.
    pub fn locked(
        &self,
        profile: &str,
        variant: Variant,
        packages: &[String],
        backports: bool,
    ) -> Result<Locked> {
        let opts = self.options(profile, variant, packages, backports);
        self.lock_key(opts)
    }

    /// As [`Bases::locked`], for a toolchain root ([`Bases::toolchain_locked_root`]): a
    /// toolchain image (only built for `--compare-naive`) never leaves the machine, so its
    /// layers are written with fast zstd (`-1`) instead of gzip.
    pub fn toolchain_locked(
        &self,
        profile: &str,
        variant: Variant,
        packages: &[String],
        backports: bool,
    ) -> Result<Locked> {
        let mut opts = self.options(profile, variant, packages, backports);
        opts.compression = Compression::Zstd;
        opts.level = Some(1);
        self.lock_key(opts)
    }

    /// The image of a lock, built or found in the cache.
    pub fn image_locked(&self, l: &Locked) -> Result<Base> {
        Ok(self.image_with(l, false)?.0)
    }

    /// A toolchain root for a lock from [`Bases::toolchain_locked`], found in the store or
    /// assembled. Without `with_image` it is assembled straight into a directory
    /// (`ROOT/engine/rootfs/lock-<key>`): the packages are unpacked once and their files
    /// hard-linked into place, with no layer written, compressed, hashed or extracted — a
    /// toolchain root is only ever run in. With `with_image` (`--compare-naive`, which reuses the
    /// root's layers) the image is built into the store too, and the directory is the by-product
    /// of writing its layers.
    pub fn toolchain_locked_root(&self, l: &Locked, with_image: bool) -> Result<ToolchainRoot> {
        let key = l.key.clone();
        let name = format!("lock-{key}");
        let done = self.engine_dir("rootfs")?.join(&name);
        let assembled = done.join("complete").is_file() && done.join("rootfs").is_dir();
        if with_image && assembled {
            crate::storeusage::hold_root(&done);
            // The directory is there already: only the image is missing (or cached).
            let (base, _) = self.image_with(l, false)?;
            return Ok(ToolchainRoot {
                root: done.join("rootfs"),
                key,
                cached: base.cached,
                image: Some(base),
            });
        }
        if with_image {
            let (base, root) = self.image_with(l, true)?;
            let root = match root {
                Some(r) => r,
                None => self.rootfs(&base.image)?,
            };
            return Ok(ToolchainRoot {
                root,
                key,
                cached: base.cached,
                image: Some(base),
            });
        }
        if assembled {
            crate::storeusage::hold_root(&done);
            return Ok(ToolchainRoot {
                root: done.join("rootfs"),
                key,
                cached: true,
                image: None,
            });
        }
        // The image of this lock is in the store already (an earlier --compare-naive build).
        if let Some(base) = self.cached_image(l)? {
            return Ok(ToolchainRoot {
                root: self.rootfs(&base.image)?,
                key,
                cached: true,
                image: Some(base),
            });
        }
        let t0 = std::time::Instant::now();
        // The staging dir goes beside the root (one filesystem: its files are hard-linked in).
        let (tmp, root) = crate::df::rootfs_tmp(&self.store)?;
        build_rootfs_from_lock(
            &l.lock,
            &l.opts,
            &root,
            &crate::df::rootfs_extract_options(),
            tmp.path(),
        )?;
        let root = crate::df::publish_rootfs(tmp, &name)?;
        tracing::debug!(target: "ocibuild::timing", profile = %l.opts.profile, ms = t0.elapsed().as_millis() as u64, "build_rootfs_from_lock");
        Ok(ToolchainRoot {
            root,
            key,
            cached: false,
            image: None,
        })
    }

    /// A lock read from a file (`--base-lock`), as [`Bases::locked`] (or, with `toolchain`,
    /// [`Bases::toolchain_locked`]) would give it: exactly its packages, nothing resolved. Its
    /// release and architecture are the lockfile's.
    pub fn locked_from(&self, lock: Lockfile, toolchain: bool) -> Result<Locked> {
        let mut opts = self.options(&lock.profile, lock.variant, &lock.extra_packages, false);
        opts.release = lock.release()?;
        opts.arch = lock.arch.clone();
        if toolchain {
            opts.compression = Compression::Zstd;
            opts.level = Some(1);
        }
        self.key_for(opts, lock)
    }

    fn lock_key(&self, opts: BaseOptions) -> Result<Locked> {
        let lock = self.lock(&opts)?;
        self.key_for(opts, lock)
    }

    fn key_for(&self, opts: BaseOptions, lock: Lockfile) -> Result<Locked> {
        let key = {
            // the lock's identity: source package names describe the packages, they do not
            // change the image (a lock that gained them keys the image it keyed before)
            let json = serde_json::to_vec(&lock.identity()).map_err(|e| EngineError::Invalid {
                what: "lockfile".into(),
                detail: e.to_string(),
            })?;
            let mut h = Sha256::new();
            h.update(&json);
            h.update(ocibuild_debian::base::build_fingerprint().as_bytes());
            h.update(format!("{:?}", self.source_date_epoch).as_bytes());
            if opts.compression != Compression::Gzip || opts.level.is_some() {
                h.update(format!("\0{:?}\0{:?}", opts.compression, opts.level).as_bytes());
            }
            hex::encode(h.finalize())
        };
        Ok(Locked { opts, lock, key })
    }

    /// Whether the image of a lock is in the store whole (building it fetches nothing).
    pub fn is_built(&self, l: &Locked) -> bool {
        self.cached_image(l).is_ok_and(|b| b.is_some())
    }

    /// Whether a locked package can be had without the network: its `.deb` in the package
    /// cache (by its SHA-256), or in a local (`file://` or path) repository.
    pub fn has_package(&self, p: &ocibuild_debian::base::LockedPackage) -> bool {
        if self
            .cache_dir
            .join("sha256")
            .join(p.sha256.to_ascii_lowercase())
            .is_file()
        {
            return true;
        }
        let local = match p.source.strip_prefix("file://") {
            Some(rest) => Some(rest.strip_prefix("localhost").unwrap_or(rest)),
            None if !p.source.contains("://") => Some(p.source.as_str()),
            None => None,
        };
        local.is_some_and(|d| Path::new(d).join(&p.filename).is_file())
    }

    /// Whether every package of a lock is ready in the unpacked-package cache (an entry that
    /// is there, whether or not intact: it is checked when used), so assembling the lock's root
    /// links ready files and decompresses nothing: cheaper than fetching and extracting a ready
    /// root ([`crate::df`]'s root blobs), which a runner without them prefers.
    pub fn unpacked_here(&self, l: &Locked) -> bool {
        use ocibuild_debian::unpacked::UnpackedCache;
        let Ok(chain) = ocibuild_debian::base::profile_chain(&l.lock.profile) else {
            return false;
        };
        let trim = ocibuild_debian::base::chain_trim(&chain);
        let cache = UnpackedCache::new(&self.cache_dir);
        UnpackedCache::enabled()
            && l.lock.packages().all(|p| {
                cache
                    .entry_dir(&p.sha256, &trim)
                    .join("entries.json")
                    .is_file()
            })
    }

    /// The image of a lock, when the store has it whole.
    fn cached_image(&self, l: &Locked) -> Result<Option<Base>> {
        let profile = l.opts.profile.as_str();
        let marker = self.engine_dir("bases")?.join(format!("{}.json", l.key));
        if let Ok(bytes) = fs::read(&marker)
            && let Ok(desc) = serde_json::from_slice::<Descriptor>(&bytes)
            && self.store.has(&desc.digest)
        {
            let src = StoreSource::new(self.store.clone(), desc, format!("the {profile} base"));
            // Any blob missing or corrupt (pruned, damaged) → rebuild.
            if let Ok(image) = load_image(&src, None)
                && image
                    .manifest
                    .layers
                    .iter()
                    .all(|l| self.store.has(&l.digest))
            {
                return Ok(Some(Base {
                    image,
                    lock: l.lock.clone(),
                    cached: true,
                }));
            }
        }
        Ok(None)
    }

    /// The image of a lock as far as the store knows it without building anything: its
    /// manifest and config (remembered under the lock key, by an earlier build or from a
    /// `--cache-from` cache's base record), whether or not its layer blobs are here. A cold
    /// runner keys and walks a build on it; the layers are fetched or assembled only when a
    /// step runs on it or the final image needs them ([`Bases::remember`]).
    pub fn known_image(&self, l: &Locked) -> Option<Image> {
        let marker = self
            .engine_dir("bases")
            .ok()?
            .join(format!("{}.json", l.key));
        let desc: Descriptor = serde_json::from_slice(&fs::read(&marker).ok()?).ok()?;
        if !self.store.has(&desc.digest) {
            return None;
        }
        let src = StoreSource::new(
            self.store.clone(),
            desc,
            format!("the {} base", l.opts.profile),
        );
        load_image(&src, None).ok()
    }

    /// Remember `image` (its manifest and config in the store) as the image of lock `l`: what
    /// a `--cache-from` cache's base record says the lock gives ([`Bases::known_image`]).
    pub fn remember(&self, l: &Locked, image: &Image) -> Result<()> {
        let marker = self.engine_dir("bases")?.join(format!("{}.json", l.key));
        let desc = serde_json::to_vec(&image.manifest_desc).map_err(|e| EngineError::Invalid {
            what: "manifest descriptor".into(),
            detail: e.to_string(),
        })?;
        write_atomically(&marker, &desc)
    }

    /// The image for a lock, built or found in the cache; with `extract`, a fresh build is also
    /// extracted (as [`Bases::rootfs`] would) and the directory returned.
    fn image_with(&self, l: &Locked, extract: bool) -> Result<(Base, Option<PathBuf>)> {
        let (opts, lock, key) = (&l.opts, l.lock.clone(), &l.key);
        let profile = opts.profile.as_str();
        let marker = self.engine_dir("bases")?.join(format!("{key}.json"));
        if let Some(base) = self.cached_image(l)? {
            return Ok((base, None));
        }
        let t0 = std::time::Instant::now();
        let (built, root) = if extract {
            let (tmp, root) = crate::df::rootfs_tmp(&self.store)?;
            let to = ExtractTo {
                root: &root,
                options: crate::df::rootfs_extract_options(),
            };
            let built = build_from_lock_into(&self.store, &lock, opts, Some(&to))?;
            let done = crate::df::publish_rootfs(tmp, &crate::df::rootfs_name(&built.image)?)?;
            (built, Some(done))
        } else {
            (build_from_lock_into(&self.store, &lock, opts, None)?, None)
        };
        tracing::debug!(target: "ocibuild::timing", profile, ms = t0.elapsed().as_millis() as u64, "build_from_lock");
        let desc =
            serde_json::to_vec(&built.image.manifest_desc).map_err(|e| EngineError::Invalid {
                what: "manifest descriptor".into(),
                detail: e.to_string(),
            })?;
        write_atomically(&marker, &desc)?;
        Ok((
            Base {
                image: built.image,
                lock,
                cached: false,
            },
            root,
        ))
    }

    /// `image` extracted into a directory (once; later calls return the same directory).
    pub fn rootfs(&self, image: &Image) -> Result<PathBuf> {
        let t0 = std::time::Instant::now();
        let r = crate::df::extract_rootfs(&self.store, image);
        tracing::debug!(target: "ocibuild::timing", ms = t0.elapsed().as_millis() as u64, "rootfs");
        r
    }
}

/// Write `bytes` to `path` through a temp file in the same directory and a rename.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    // `cache prune` removes the store's record dirs when it empties them
    fs::create_dir_all(dir).map_err(EngineError::io("creating a directory", dir))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .map_err(EngineError::io("creating a temp file", dir))?;
    std::io::Write::write_all(&mut tmp, bytes).map_err(EngineError::io("writing", path))?;
    ocibuild_oci::failpoint::hit("record-commit");
    tmp.persist(path)
        .map_err(|e| EngineError::io("renaming into place", path)(e.error))?;
    Ok(())
}
