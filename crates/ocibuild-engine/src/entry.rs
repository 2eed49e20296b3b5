//! The engine's one entry point: [`build`] with one [`BuildOptions`], for both frontends and
//! any number of platforms.
//!
//! ```text
//! BuildOptions ─▶ per platform (Dockerfile: in the order asked; zero-config: foreign ones first)
//!                   Frontend::Dockerfile  the file as written, FROM ocibuild:… from Debian packages
//!                   Frontend::ZeroConfig  the plan for that platform, lowered ([`crate::lowered`])
//!                   └▶ the one executor ([`crate::df`])
//!               ─▶ one platform: its image and record; several: an OCI index of them, put in the
//!                  store, and one record for the whole build
//! ```
//!
//! What the command line does around it is flag parsing (into these options), writing the
//! outputs, and rendering the [`Event`]s this reports: the phases, steps and layers of the
//! executor, and the frontend's own (the plan with `--explain`, each platform as it starts, the
//! zero-config runtime base, the naive image's size, every image as it lands in the store).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ocibuild_builders::Plan;
use ocibuild_cache::{CacheBackend, Mode};
use ocibuild_debian::apt::Release;
use ocibuild_debian::base::{Lockfile, Progress};
use ocibuild_oci::Digest;
use ocibuild_oci::image::{Descriptor, Image, Index, Platform, to_json_bytes};
use ocibuild_oci::media::{self, Compression};
use ocibuild_oci::store::ContentStore;
use ocibuild_record::BuildRecord;
use ocibuild_sandbox::probe::Isolation;
use ocibuild_sandbox::run::Tier;

use crate::Event;
use crate::df::{ImageResolver, NamedContext, SecretSource};
use crate::error::{EngineError, Result};
use crate::lowered::Lent;
use crate::roots::Bases;

/// Everything a build needs, the same for both frontends: [`build`] takes it.
pub struct BuildOptions<'a> {
    /// The content store the build writes into (bases, layers, step and build caches).
    pub store: ContentStore,
    /// The build context (the app directory of a zero-config build).
    pub context: PathBuf,
    /// Paths relative to the context left out of it whatever `.dockerignore` says: the build's
    /// own outputs when they lie inside the context.
    pub context_excludes: Vec<String>,
    /// What to build and how it is described.
    pub frontend: Frontend<'a>,
    /// The target platforms (at least one): several make an OCI image index.
    pub platforms: Vec<Platform>,
    /// Added to the final image's labels.
    pub labels: BTreeMap<String, String>,
    /// The image's `created`, its files' times and the steps' `SOURCE_DATE_EPOCH`.
    pub source_date_epoch: u64,
    pub compression: Compression,
    pub level: Option<u32>,
    pub isolation: Isolation,
    /// `--network none` makes this false: no step gets the network.
    pub network: bool,
    /// Bound at [`crate::zeroconfig::CA_PATH`] in every step, with the CA variables set.
    pub ca_bundle: Option<PathBuf>,
    /// Extra variables for every step (proxy settings, `--build-env`): never part of a cache
    /// key or the image.
    pub pass_env: Vec<(String, String)>,
    /// `--no-cache`: run every step even when nothing changed.
    pub no_cache: bool,
    /// Remote caches read on a local miss (`--cache-from`), in order.
    pub cache_from: Vec<Box<dyn CacheBackend + 'a>>,
    /// Remote caches written after the build (`--cache-to`), with their mode and whether an
    /// export error is only a warning (`ignore-error=true`).
    pub cache_to: Vec<(Box<dyn CacheBackend + 'a>, Mode, bool)>,
    /// `--explain-cache`: say, for every step that misses the cache, what changed.
    pub explain_cache: bool,
    /// `cache warm`: fetch what the caches have, run nothing, export nothing.
    pub warm_only: bool,
    /// `--offline`: checked before anything runs ([`crate::offline`]); nothing is downloaded.
    pub offline: bool,
    /// Where Debian bases and toolchain roots come from.
    pub debian: DebianSource,
    /// The progress sink of the Debian bases a build assembles, by what they are (`toolchain
    /// root`, `runtime base`, `native base`).
    pub base_progress: &'a (dyn Fn(&str) -> Progress + Sync),
}

/// Where a build's Debian bases come from (`--distro`, `--cache-dir`, `--refresh`).
#[derive(Clone, Debug)]
pub struct DebianSource {
    pub release: Release,
    /// The package cache (created when missing).
    pub package_cache: PathBuf,
    /// Reuse a resolution younger than this (`None`: resolve against fresh indexes).
    pub index_max_age: Option<std::time::Duration>,
}

/// The frontend of a build, with what only it takes.
pub enum Frontend<'a> {
    /// `build -f Dockerfile CONTEXT`.
    Dockerfile {
        /// The Dockerfile (error locations, `<Dockerfile>.dockerignore`).
        file: PathBuf,
        target: Option<String>,
        build_args: BTreeMap<String, String>,
        secrets: BTreeMap<String, SecretSource>,
        contexts: BTreeMap<String, NamedContext>,
        /// Pulls the registry images `FROM` names.
        resolver: &'a dyn ImageResolver,
        /// `--base-lock` files for `FROM ocibuild:…` bases.
        base_locks: Vec<(PathBuf, Lockfile)>,
    },
    /// `build DIR`: the builders' plan for each platform, lowered to the build graph.
    ZeroConfig {
        /// The builders' options (`goos`/`goarch` are set per platform).
        plan: ocibuild_builders::Options,
        /// `--toolchain host`.
        host_toolchain: bool,
        /// `--compare-naive`.
        compare_naive: bool,
        /// `--explain`: report why the plan is what it is ([`Event::Reason`], [`Event::Plan`]).
        explain: bool,
    },
}

/// What [`build`] made.
#[derive(Clone, Debug)]
pub struct BuildOutcome {
    /// Each platform's image, in the order asked.
    pub platforms: Vec<PlatformBuilt>,
    /// Several platforms (and not warm-only): the index of their images, in the store.
    pub index: Option<Descriptor>,
    /// The build record: the one platform's, or every platform's merged with the index
    /// ([`merge_records`]).
    pub record: BuildRecord,
}

impl BuildOutcome {
    /// The digest outputs get: the index's, or the one image's.
    pub fn digest(&self) -> Option<&Digest> {
        match &self.index {
            Some(i) => Some(&i.digest),
            None => self
                .platforms
                .first()
                .map(|p| &p.image.manifest_desc.digest),
        }
    }

    /// The images, each with its platform.
    pub fn images(&self) -> Vec<(Platform, Image)> {
        self.platforms
            .iter()
            .map(|p| (p.platform.clone(), p.image.clone()))
            .collect()
    }
}

/// One platform's image.
#[derive(Clone, Debug)]
pub struct PlatformBuilt {
    pub platform: Platform,
    pub image: Image,
    /// This platform's build record.
    pub record: BuildRecord,
    /// Steps taken from a cache.
    pub cached: Vec<String>,
    /// With [`BuildOptions::warm_only`]: the first step of each stage no cache had.
    pub stopped: Vec<String>,
    pub detail: FrontendDetail,
}

/// What a frontend tells about its build beyond the record.
#[derive(Clone, Debug)]
pub enum FrontendDetail {
    Dockerfile {
        /// The stages built, in order.
        stages: Vec<String>,
    },
    ZeroConfig {
        /// The app's language.
        lang: String,
        /// The toolchain root's lock key (`None` with `--toolchain host`).
        toolchain: Option<String>,
        /// The runtime base's manifest digest.
        runtime: String,
        /// With `--compare-naive`: the naive image's compressed size.
        naive_size: Option<u64>,
        /// The sandbox tier the steps ran in.
        tier: Tier,
    },
}

/// Build what `o` says: every platform on the one executor, then (several platforms) one
/// index of their images. Reports progress through `ev`; prints nothing.
pub fn build(o: &BuildOptions<'_>, ev: &(dyn Fn(Event) + Sync)) -> Result<BuildOutcome> {
    let t0 = Instant::now();
    if o.platforms.is_empty() {
        return Err(EngineError::Invalid {
            what: "build".into(),
            detail: "no target platform".into(),
        });
    }
    std::fs::create_dir_all(&o.debian.package_cache).map_err(EngineError::io(
        "creating the package cache",
        &o.debian.package_cache,
    ))?;
    let multi = o.platforms.len() > 1;
    let mut built: Vec<PlatformBuilt> = Vec::new();
    match &o.frontend {
        Frontend::Dockerfile { file, .. } => {
            let text = std::fs::read_to_string(file)
                .map_err(EngineError::io("reading the Dockerfile", file))?;
            for p in &o.platforms {
                if multi {
                    ev(Event::Platform(p.to_string()));
                }
                let b = dockerfile_platform(o, &text, p, ev).map_err(|e| {
                    e.context(format!(
                        "building {} with {}{}",
                        o.context.display(),
                        file.display(),
                        if multi {
                            format!(" for {p}")
                        } else {
                            String::new()
                        }
                    ))
                })?;
                built.push(b);
            }
        }
        Frontend::ZeroConfig { .. } => {
            // Foreign platforms first: what stops a build for them (native code that needs
            // emulation) stops it before the host's platform was built; the index keeps the
            // order asked for.
            let mut order: Vec<&Platform> = o.platforms.iter().collect();
            order.sort_by_key(|p| p.architecture == ocibuild_sandbox::emulation::host_arch());
            for p in order {
                if multi {
                    ev(Event::Platform(p.to_string()));
                }
                let b = zero_config_platform(o, p, ev);
                built.push(if multi {
                    b.map_err(|e| e.context(format!("building {} for {p}", o.context.display())))?
                } else {
                    b?
                });
            }
            built.sort_by_key(|b| o.platforms.iter().position(|q| *q == b.platform));
        }
    }
    if !multi {
        let one = built.remove(0);
        if !o.warm_only && matches!(one.detail, FrontendDetail::Dockerfile { .. }) {
            ev(Event::Image {
                record: Box::new(one.record.clone()),
                seconds: t0.elapsed().as_secs_f64(),
            });
        }
        let record = one.record.clone();
        return Ok(BuildOutcome {
            platforms: vec![one],
            index: None,
            record,
        });
    }
    if o.warm_only {
        let record = built[0].record.clone();
        return Ok(BuildOutcome {
            platforms: built,
            index: None,
            record,
        });
    }
    let images: Vec<(Platform, Image)> = built
        .iter()
        .map(|b| (b.platform.clone(), b.image.clone()))
        .collect();
    let index = put_index(&o.store, &images)?;
    let record = merge_records(built.iter().map(|b| b.record.clone()).collect(), &index)
        .ok_or_else(|| EngineError::Invalid {
            what: "build".into(),
            detail: "no platform was built".into(),
        })?;
    if matches!(o.frontend, Frontend::ZeroConfig { .. }) {
        // each platform's record beside its image, for the SBOM and provenance steps of a
        // later command given that platform's manifest
        for b in &built {
            crate::save_record(&o.store, &b.record)?;
        }
    }
    ev(Event::Image {
        record: Box::new(record.clone()),
        seconds: t0.elapsed().as_secs_f64(),
    });
    Ok(BuildOutcome {
        platforms: built,
        index: Some(index),
        record,
    })
}

impl DebianSource {
    fn bases(&self, o: &BuildOptions<'_>, arch: &str, what: &str) -> Bases {
        Bases {
            store: o.store.clone(),
            cache_dir: self.package_cache.clone(),
            release: self.release,
            arch: arch.to_string(),
            offline: o.offline,
            source_date_epoch: None,
            index_max_age: self.index_max_age,
            progress: (o.base_progress)(what),
        }
    }
}

/// The Dockerfile built for `platform`.
fn dockerfile_platform(
    o: &BuildOptions<'_>,
    text: &str,
    platform: &Platform,
    ev: &(dyn Fn(Event) + Sync),
) -> Result<PlatformBuilt> {
    let Frontend::Dockerfile {
        file,
        target,
        build_args,
        secrets,
        contexts,
        resolver,
        base_locks,
    } = &o.frontend
    else {
        return Err(EngineError::Invalid {
            what: "build".into(),
            detail: "not a Dockerfile build".into(),
        });
    };
    let opts = crate::df::Options {
        store: o.store.clone(),
        context: o.context.clone(),
        context_excludes: o.context_excludes.clone(),
        dockerfile: file.clone(),
        target: target.clone(),
        build_args: build_args.clone(),
        platform: platform.clone(),
        secrets: secrets.clone(),
        contexts: contexts.clone(),
        resolver: *resolver,
        native: Some(crate::df::native::NativeBases {
            bases: o.debian.bases(o, &platform.architecture, "native base"),
            locks: base_locks.clone(),
            host: None,
        }),
        isolation: o.isolation,
        network: o.network,
        ca_bundle: o.ca_bundle.clone(),
        pass_env: o.pass_env.clone(),
        source_date_epoch: o.source_date_epoch,
        compression: o.compression,
        level: o.level,
        no_cache: o.no_cache,
        labels: o.labels.clone(),
        cache_from: lend_from(&o.cache_from),
        cache_to: o
            .cache_to
            .iter()
            .map(|(b, m, ig)| (Box::new(Lent(b.as_ref())) as Box<dyn CacheBackend>, *m, *ig))
            .collect(),
        explain_cache: o.explain_cache,
        warm_only: o.warm_only,
        offline: o.offline.then(crate::offline::Offline::default),
    };
    let b = crate::df::build(text, &opts, ev)?;
    Ok(PlatformBuilt {
        platform: platform.clone(),
        image: b.image,
        record: b.record,
        cached: b.cached,
        stopped: b.stopped,
        detail: FrontendDetail::Dockerfile { stages: b.stages },
    })
}

pub(crate) fn lend_from<'b>(
    from: &'b [Box<dyn CacheBackend + '_>],
) -> Vec<Box<dyn CacheBackend + 'b>> {
    from.iter()
        .map(|b| Box::new(Lent(b.as_ref())) as Box<dyn CacheBackend>)
        .collect()
}

/// The zero-config plan of the app in `app` for `platform` (what `--dry-run=plan` prints).
pub fn zero_config_plan(
    app: &Path,
    plan: &ocibuild_builders::Options,
    platform: &Platform,
) -> Result<Plan> {
    let mut popts = plan.clone();
    popts.goos = platform.os.clone();
    popts.goarch = platform.architecture.clone();
    ocibuild_builders::plan(app, &popts).map_err(|e| {
        EngineError::from(e).context(format!("planning the build of {}", app.display()))
    })
}

/// The labels a zero-config build sets: the app's git labels and `created`.
pub fn zero_config_labels(app: &Path, source_date_epoch: u64) -> BTreeMap<String, String> {
    let mut labels = ocibuild_builders::git_labels(app);
    labels.insert(
        "org.opencontainers.image.created".into(),
        ocibuild_oci::image::rfc3339(source_date_epoch),
    );
    labels
}

/// The zero-config app built for `platform`.
fn zero_config_platform(
    o: &BuildOptions<'_>,
    platform: &Platform,
    ev: &(dyn Fn(Event) + Sync),
) -> Result<PlatformBuilt> {
    let Frontend::ZeroConfig {
        plan: popts,
        host_toolchain,
        compare_naive,
        explain,
    } = &o.frontend
    else {
        return Err(EngineError::Invalid {
            what: "build".into(),
            detail: "not a zero-config build".into(),
        });
    };
    let ctx = &o.context;
    let mut plan = zero_config_plan(ctx, popts, platform)?;
    if *host_toolchain {
        // Before anything is built: the host's programs exist and are new enough.
        let found = crate::zeroconfig::probe_host_tools(&plan).map_err(|e| {
            e.context(format!(
                "checking the host's toolchain for {}",
                ctx.display()
            ))
        })?;
        plan.reasons.extend(found);
    }
    if *explain {
        for r in &plan.reasons {
            ev(Event::Reason(r.clone()));
        }
        ev(Event::Plan(Box::new(plan.clone())));
    }
    let mut labels = zero_config_labels(ctx, o.source_date_epoch);
    labels.extend(o.labels.clone());
    let run = crate::zeroconfig::Run {
        common: o,
        toolchain_bases: o.debian.bases(
            o,
            ocibuild_sandbox::emulation::host_arch(),
            "toolchain root",
        ),
        runtime_bases: o.debian.bases(o, &platform.architecture, "runtime base"),
        host_toolchain: *host_toolchain,
        compare_naive: *compare_naive,
        labels,
    };
    let t0 = Instant::now();
    let (b, stopped) = crate::lowered::build(ctx, &plan, &run, o.warm_only, ev).map_err(|e| {
        e.context(if o.warm_only {
            format!("warming the cache for {}", ctx.display())
        } else {
            format!("building {} ({} app)", ctx.display(), plan.lang)
        })
    })?;
    if !o.warm_only {
        // this frontend's own events once the image is in the store
        if b.cached {
            ev(Event::BuildCached);
        }
        ev(Event::Runtime {
            profile: plan.runtime.profile.clone(),
            variant: plan.runtime.variant.clone(),
            digest: b.runtime.clone(),
        });
        ev(Event::Image {
            record: Box::new(b.record.clone()),
            seconds: t0.elapsed().as_secs_f64(),
        });
        if let Some(naive) = b.naive_size {
            ev(Event::NaiveSize {
                compressed: b.image.manifest.layers.iter().map(|l| l.size).sum(),
                naive,
            });
        }
    }
    Ok(PlatformBuilt {
        platform: platform.clone(),
        image: b.image,
        record: b.record,
        cached: Vec::new(),
        stopped,
        detail: FrontendDetail::ZeroConfig {
            lang: plan.lang.to_string(),
            toolchain: b.toolchain,
            runtime: b.runtime,
            naive_size: b.naive_size,
            tier: b.tier,
        },
    })
}

/// The index of `images` (each with its config's platform), put into the store.
pub fn put_index(store: &ContentStore, images: &[(Platform, Image)]) -> Result<Descriptor> {
    let mut index = Index::new();
    for (p, img) in images {
        let mut d = Descriptor::new(
            img.manifest_desc.media_type.clone(),
            img.manifest_desc.digest.clone(),
            img.manifest_desc.size,
        );
        // the platform as the image's config says it (e.g. arm64's variant v8 from a base)
        let mut platform = img.platform().unwrap_or_else(|| p.clone());
        platform.os_features = None;
        d.platform = Some(platform);
        index.manifests.push(d);
    }
    let bytes = to_json_bytes(&index, "image index")?;
    let digest = store.put_bytes(&bytes)?;
    Ok(Descriptor::new(
        media::OCI_INDEX,
        digest,
        bytes.len() as u64,
    ))
}

/// One record for the whole build: the first platform's, with every platform's image and steps
/// (step ids prefixed with their platform: `linux/arm64/build/3`) and the index.
pub fn merge_records(mut records: Vec<BuildRecord>, index: &Descriptor) -> Option<BuildRecord> {
    if records.is_empty() {
        return None;
    }
    let mut all = records.remove(0);
    let mut rest = records;
    let prefix = |r: &mut BuildRecord| {
        let p = r
            .images
            .first()
            .map(|i| i.platform.clone())
            .unwrap_or_default();
        for s in &mut r.steps {
            s.id = format!("{p}/{}", s.id);
        }
        for i in &mut r.images {
            for l in &mut i.layers {
                if let ocibuild_record::LayerOrigin::Step { step } = &mut l.origin {
                    *step = format!("{p}/{step}");
                }
            }
        }
    };
    prefix(&mut all);
    for r in &mut rest {
        prefix(r);
        all.images.append(&mut r.images);
        all.steps.append(&mut r.steps);
    }
    all.parameters.platforms = all.images.iter().map(|i| i.platform.clone()).collect();
    all.index = Some(index.clone());
    Some(all)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::fs;
    use std::sync::Mutex;

    const TWO_STAGES: &str = "FROM scratch AS build\nCOPY app.txt /out/app.txt\n\
                              FROM scratch\nCOPY --from=build /out/app.txt /app/app.txt\n";

    fn options<'a>(
        store: &ContentStore,
        ctx: &Path,
        resolver: &'a crate::df::tests::NoRegistry,
        progress: &'a (dyn Fn(&str) -> Progress + Sync),
        platforms: &[&str],
    ) -> BuildOptions<'a> {
        BuildOptions {
            store: store.clone(),
            context: ctx.to_path_buf(),
            context_excludes: Vec::new(),
            frontend: Frontend::Dockerfile {
                file: ctx.join("Dockerfile"),
                target: None,
                build_args: BTreeMap::new(),
                secrets: BTreeMap::new(),
                contexts: BTreeMap::new(),
                resolver,
                base_locks: Vec::new(),
            },
            platforms: platforms
                .iter()
                .map(|p| Platform::parse(p).unwrap())
                .collect(),
            labels: BTreeMap::new(),
            source_date_epoch: 0,
            compression: Compression::Gzip,
            level: None,
            isolation: Isolation::Auto { allow_host: false },
            network: false,
            ca_bundle: None,
            pass_env: Vec::new(),
            no_cache: false,
            cache_from: Vec::new(),
            cache_to: Vec::new(),
            explain_cache: false,
            warm_only: false,
            offline: false,
            debian: DebianSource {
                release: "trixie".parse().unwrap(),
                package_cache: store.root().join("debian"),
                index_max_age: None,
            },
            base_progress: progress,
        }
    }

    /// One entry point, one platform or several: several give an index in the store (in the
    /// order asked) and one record whose step ids name their platform; the image events are
    /// the one image's, or the index's.
    #[test]
    fn one_entry_point_builds_one_image_or_an_index_of_several() {
        let t = tempfile::tempdir().unwrap();
        let ctx = t.path().join("ctx");
        fs::create_dir_all(&ctx).unwrap();
        fs::write(ctx.join("app.txt"), "v1").unwrap();
        fs::write(ctx.join("Dockerfile"), TWO_STAGES).unwrap();
        let store = ContentStore::open(t.path().join("store")).unwrap();
        let r = crate::df::tests::NoRegistry;
        let progress = |_: &str| Progress::default();
        let events = Mutex::new(Vec::new());
        let ev = |e: Event| {
            if let Event::Platform(p) = &e {
                events.lock().unwrap().push(format!("platform {p}"));
            }
            if let Event::Image { record, .. } = &e {
                events
                    .lock()
                    .unwrap()
                    .push(format!("image {}", record.digest().unwrap()));
            }
        };

        let one = build(&options(&store, &ctx, &r, &progress, &["linux/amd64"]), &ev).unwrap();
        assert!(one.index.is_none());
        let image = one.platforms[0].image.manifest_desc.digest.clone();
        assert_eq!(one.digest(), Some(&image));
        assert_eq!(one.record.digest(), Some(&image));
        let FrontendDetail::Dockerfile { stages } = &one.platforms[0].detail else {
            panic!("not the Dockerfile frontend's detail");
        };
        assert_eq!(stages.len(), 2);
        assert_eq!(
            std::mem::take(&mut *events.lock().unwrap()),
            [format!("image {image}")]
        );

        let both = build(
            &options(&store, &ctx, &r, &progress, &["linux/arm64", "linux/amd64"]),
            &ev,
        )
        .unwrap();
        let index = both.index.clone().unwrap();
        assert_eq!(both.digest(), Some(&index.digest));
        assert!(store.has(&index.digest));
        let platforms: Vec<String> = both
            .platforms
            .iter()
            .map(|p| p.platform.to_string())
            .collect();
        assert_eq!(platforms, ["linux/arm64", "linux/amd64"]);
        assert_eq!(both.record.index.as_ref(), Some(&index));
        assert_eq!(
            both.record.parameters.platforms,
            ["linux/arm64", "linux/amd64"]
        );
        assert!(
            both.record
                .steps
                .iter()
                .all(|s| s.id.starts_with("linux/arm64/") || s.id.starts_with("linux/amd64/")),
            "{:?}",
            both.record.steps
        );
        assert_eq!(
            std::mem::take(&mut *events.lock().unwrap()),
            [
                "platform linux/arm64".to_string(),
                "platform linux/amd64".to_string(),
                format!("image {}", index.digest)
            ]
        );
    }

    /// A platform's failure says what was being built, for which platform, and why.
    #[test]
    fn a_failed_platform_is_named_in_the_error() {
        let t = tempfile::tempdir().unwrap();
        let ctx = t.path().join("ctx");
        fs::create_dir_all(&ctx).unwrap();
        fs::write(ctx.join("Dockerfile"), TWO_STAGES).unwrap();
        let store = ContentStore::open(t.path().join("store")).unwrap();
        let r = crate::df::tests::NoRegistry;
        let progress = |_: &str| Progress::default();
        let e = build(
            &options(&store, &ctx, &r, &progress, &["linux/amd64", "linux/arm64"]),
            &|_| {},
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with("building ") && e.to_string().ends_with(" for linux/amd64"),
            "{e}"
        );
        assert!(
            std::error::Error::source(&e)
                .unwrap()
                .to_string()
                .contains("app.txt"),
            "{e:?}"
        );
        let none = build(&options(&store, &ctx, &r, &progress, &[]), &|_| {}).unwrap_err();
        assert!(none.to_string().contains("no target platform"), "{none}");
    }
}
