//! # ocibuild-builders — zero-config build plans for Go, Node.js, Python and Java apps
//!
//! This room turns an app directory into a [`Plan`]: which language it is ([`detect`]), which
//! Debian toolchain builds it and which distroless runtime carries it, the commands to run in
//! the sandbox, the layers to take from it and the image config. The per-language facts
//! (detection files, version tables, profiles, commands, layering, entrypoint forms) are data
//! in `builders/*.toml`, embedded in the binary; reading the app's own manifests (go.mod,
//! package.json, pyproject.toml, pom.xml) is Rust, one module per language.
//!
//! It is a pure planning library: it may read the app directory, and depends only on serde
//! (json, toml), thiserror, globset and walkdir. It must never run a program (not even git: see [`git_labels`];
//! `--toolchain host`'s version probes are run by the executor and judged by [`check_host_tool`]),
//! touch the network, write files, or print. The executor runs the plan.

pub mod config;
pub mod error;
pub mod filter;
pub mod git;
pub mod host;
pub mod ignore;
pub mod plan;

mod common;
mod go;
mod gows;
mod java;
mod markers;
mod node;
mod npmws;
mod procfile;
mod pyentry;
mod pylock;
mod python;
mod spec;
mod version;
mod xml;

use std::path::Path;

pub use config::AppConfig;
pub use error::BuildersError;
pub use filter::{Filter, glob_filter, walk_filtered};
pub use git::git_labels;
pub use host::{HostVersion, ProbeOutcome, check_host_tool, parse_host_version};
pub use ignore::DockerIgnore;
pub use plan::{
    CacheMount, Constraint, Detection, Distro, GeneratedFile, HostTool, ImageConfig, Lang,
    LayerSpec, Options, Plan, Requirement, Runtime, Step, Toolchain, Writable,
};

use error::Result;

/// Which language the app in `dir` is written in, and why.
///
/// Manifests decide (`go.mod`, `package.json`, `requirements.txt`/`pyproject.toml`/`setup.py`/
/// `uv.lock`, `pom.xml`, and files of unsupported build tools such as `build.gradle`, which
/// select Java only to refuse it with a clear message when planning); when none is there,
/// `.java` sources select Java. Several manifests of different languages are an error that
/// names them and suggests `--lang`.
pub fn detect(dir: &Path) -> Result<Detection> {
    common::detect(dir)
}

/// Where a zero-config build of `dir` starts, when its context is a directory above it: for a
/// package of an npm, pnpm or Yarn workspace with no lockfile of its own, the workspace root;
/// for a Go module listed by a go.work above it, go.work's directory; for a Go module whose
/// go.mod replaces modules with directories outside it, the common parent. Returns that root
/// and `dir` relative to it (the build's `--workspace`); `None` for any other directory.
pub fn workspace_of(dir: &Path) -> Result<Option<(std::path::PathBuf, String)>> {
    if dir.join("go.mod").is_file() {
        gows::workspace_of(dir)
    } else {
        npmws::workspace_of(dir)
    }
}

/// The build plan for the app in `dir`.
pub fn plan(dir: &Path, opts: &Options) -> Result<Plan> {
    common::plan(dir, opts)
}
