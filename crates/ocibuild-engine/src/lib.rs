//! # ocibuild-engine — runs build plans
//!
//! A frontend (the zero-config builders, the Dockerfile frontend) turns an app into a
//! plan; this crate runs it: it assembles the toolchain root and the runtime base from Debian
//! packages ([`roots`]), and runs both frontends' builds on one executor ([`df`]): the
//! Dockerfile as written, a zero-config plan lowered to the same graph ([`lowered`],
//! [`zeroconfig`]). Each step runs in the sandbox over its stage's root with its mounts; its
//! changes become a layer, keyed by its inputs; the final image is written into the content
//! store. Progress is reported through
//! [`Event`]s; the library never prints.
//!
//! ## The entry point
//!
//! Callers (the command line) fill one [`BuildOptions`] — the store, the context, the target
//! platforms, labels, epoch, compression, network, CA bundle and proxy variables, the caches,
//! `--offline`, where Debian bases come from and their progress sink — with the frontend as a
//! [`Frontend`]: `Frontend::Dockerfile { file, target, build_args, secrets, contexts, resolver,
//! base_locks }` or `Frontend::ZeroConfig { plan, host_toolchain, compare_naive, explain }`.
//! [`build`] builds every platform on the one executor (a zero-config plan is made for each
//! platform and lowered first), puts an OCI index of several platforms' images in the store, and
//! returns a [`BuildOutcome`]: each platform's image and record, the index, and one record for
//! the whole build. The gates, SBOMs, signatures and outputs are `ocibuild-release`'s, which
//! reports through the same [`Event`]s.
//!
//! May depend on the oci, debian, sandbox and builders crates; must never print, and never
//! modify the app directory it builds.

pub mod df;
pub mod eject;
pub mod elf;
mod entry;
pub mod error;
pub mod lowered;
pub mod mountcache;
pub mod offline;
pub mod roots;
pub mod steplog;
pub mod storeusage;
pub mod zeroconfig;

pub use entry::{
    BuildOptions, BuildOutcome, DebianSource, Frontend, FrontendDetail, PlatformBuilt, build,
    merge_records, put_index, zero_config_labels, zero_config_plan,
};
pub use error::EngineError;
pub use ocibuild_record as record;

/// What the engine reports while it works, the same for both frontends (the CLI renders these
/// through one renderer: plain lines, a terminal's bars, or `--progress json`; the JSON form is
/// documented in `docs/progress-events.md`).
#[derive(Clone, Debug)]
pub enum Event {
    /// A phase started: `toolchain go (trixie)`, `runtime static:nonroot` …
    Phase(String),
    /// A step is about to run.
    StepStarted { name: String, argv: Vec<String> },
    /// A line a running step printed (stdout or stderr), as soon as it was printed.
    StepOutput { name: String, line: String },
    /// A step was not run: its result came from a cache (`local`, or the `--cache-from`
    /// backend that had it).
    StepCached { name: String, from: String },
    /// A step finished; `output` is what it printed (stdout then stderr), for logs.
    StepFinished {
        name: String,
        status: i32,
        seconds: f64,
        output: String,
    },
    /// A layer of the final image was written (or reused).
    Layer {
        name: String,
        digest: String,
        size: u64,
        reused: bool,
    },
    /// Anything else worth saying.
    Note(String),
    /// Something the user should act on (it does not stop the build).
    Warning(String),
    /// A multi-platform build starts one of its platforms (`linux/arm64`): the events until
    /// the next one are that platform's.
    Platform(String),
    /// `--explain`: why the zero-config plan is what it is, one reason.
    Reason(String),
    /// `--explain`: the zero-config plan for the platform being built.
    Plan(Box<ocibuild_builders::Plan>),
    /// A zero-config build came whole from the cache: no step ran.
    BuildCached,
    /// The zero-config runtime base (`static:nonroot`) and its manifest digest.
    Runtime {
        profile: String,
        variant: String,
        digest: String,
    },
    /// An image is in the store, described by its record (a multi-platform build: each
    /// zero-config platform's, then the index's); `seconds` since its build started.
    Image {
        record: Box<ocibuild_record::BuildRecord>,
        seconds: f64,
    },
    /// `--compare-naive`: the image's compressed size against the naive single-stage image's.
    NaiveSize { compressed: u64, naive: u64 },
    // What is done with the built image (`ocibuild-release`): the gates, SBOMs, outputs and
    // signatures.
    /// A report to show whole, as it is (a gate's table).
    Report(String),
    /// `--check`/`--policy` ran on a built image (`findings`: the policy crate's, as JSON).
    Checked {
        checks: usize,
        passed: bool,
        findings: serde_json::Value,
        platform: Option<String>,
        digest: String,
    },
    /// The packages of a built image were catalogued (`from_record`: over its build record).
    SbomCatalogued {
        components: usize,
        seconds: f64,
        from_record: bool,
    },
    /// The scan gate ran on a built image's packages.
    Scanned {
        packages: usize,
        passed: bool,
        platform: Option<String>,
    },
    /// An SBOM document was written to its directory.
    SbomWritten {
        path: std::path::PathBuf,
        artifact_type: String,
        platform: Option<String>,
    },
    /// The provenance predicate was written to its file.
    ProvenanceWritten { path: std::path::PathBuf },
    /// The image (or a multi-platform index of `platforms`) was written to an output or pushed.
    Output {
        location: String,
        digest: String,
        platforms: Vec<String>,
    },
    /// An SBOM was attached in an output: an OCI 1.1 referrer (`digest`), or cosign's tag
    /// form (`tag`).
    SbomAttached {
        location: String,
        file: String,
        artifact_type: Option<String>,
        digest: Option<String>,
        tag: Option<String>,
    },
    /// A manifest in an output was signed: cosign's format, or notation's (`envelope`).
    Signed {
        location: String,
        digest: String,
        signature: String,
        tag: Option<String>,
        envelope: Option<String>,
    },
    /// A signed attestation was attached to a manifest in an output.
    Attested {
        location: String,
        what: String,
        predicate_type: String,
        digest: String,
        attestation: String,
        tag: Option<String>,
    },
    /// The build has no output: the image (`what`: `image`) or index (`index`) is only in the
    /// content store.
    NoOutput { what: String },
    /// A blob of a push is done: `outcome` is `existed`, `mounted` or `uploaded`.
    Blob {
        digest: String,
        size: u64,
        outcome: String,
    },
    /// Bytes of a blob in flight.
    Bytes {
        digest: ocibuild_oci::Digest,
        done: u64,
        total: u64,
    },
}

/// Where the build record of the image `manifest` is kept in a store:
/// `ROOT/engine/builds/image-<hex>.json` (a step record for `cache du`/`prune`).
pub fn record_path(
    store: &ocibuild_oci::store::ContentStore,
    manifest: &ocibuild_oci::Digest,
) -> std::path::PathBuf {
    store
        .root()
        .join("engine")
        .join("builds")
        .join(format!("image-{}.json", manifest.hex()))
}

/// Keep a build record in the store, keyed by its image's digest (the index for a
/// multi-platform build): SBOM and provenance steps read it with [`load_record`].
pub fn save_record(
    store: &ocibuild_oci::store::ContentStore,
    record: &ocibuild_record::BuildRecord,
) -> Result<std::path::PathBuf, EngineError> {
    let Some(d) = record.digest() else {
        return Err(EngineError::Invalid {
            what: "build record".into(),
            detail: "it names no image".into(),
        });
    };
    let path = record_path(store, d);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(EngineError::io("creating the build records", dir))?;
    }
    roots::write_atomically(&path, &record.to_json())?;
    Ok(path)
}

/// The build record of the image `manifest`, if this store built it.
pub fn load_record(
    store: &ocibuild_oci::store::ContentStore,
    manifest: &ocibuild_oci::Digest,
) -> Result<Option<ocibuild_record::BuildRecord>, EngineError> {
    let path = record_path(store, manifest);
    match std::fs::read(&path) {
        Ok(b) => ocibuild_record::BuildRecord::from_json(&b)
            .map(Some)
            .map_err(|e| EngineError::Invalid {
                what: format!("build record {}", path.display()),
                detail: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(EngineError::Io {
            what: "reading a build record".into(),
            path,
            source: e,
        }),
    }
}
