//! # ocibuild-engine — runs build plans
//!
//! A frontend (the zero-config builders today, the Dockerfile frontend next) turns an app into a
//! plan; this crate runs it: it assembles the toolchain root and the runtime base from Debian
//! packages ([`roots`]), runs each step in the sandbox over the toolchain root with the app's
//! source, outputs and persistent cache mounts bound in ([`zeroconfig`]), turns the outputs
//! into layers and writes the final image into the content store. Progress is reported through
//! [`Event`]s; the library never prints.
//!
//! May depend on the oci, debian, sandbox and builders crates; must never print, and never
//! modify the app directory it builds.

pub mod df;
pub mod eject;
pub mod elf;
pub mod error;
pub mod mountcache;
pub mod roots;
pub mod steplog;
pub mod storeusage;
pub mod zeroconfig;

pub use error::EngineError;

/// What the engine reports while it works (the CLI renders these).
#[derive(Clone, Debug)]
pub enum Event {
    /// A phase started: `toolchain go (trixie)`, `runtime static:nonroot` …
    Phase(String),
    /// A step is about to run.
    StepStarted { name: String, argv: Vec<String> },
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
}
