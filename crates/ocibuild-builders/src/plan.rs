//! The data this crate hands to the executor: options in, a [`Plan`] out.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::error::BuildersError;

/// A language this crate builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Go,
    Node,
    Python,
    Java,
}

impl Lang {
    /// Every language, in detection order.
    pub const ALL: [Lang; 4] = [Lang::Go, Lang::Node, Lang::Python, Lang::Java];

    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Go => "go",
            Lang::Node => "node",
            Lang::Python => "python",
            Lang::Java => "java",
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Lang {
    type Err = BuildersError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "go" | "golang" => Ok(Lang::Go),
            "node" | "nodejs" | "node.js" | "js" | "javascript" | "typescript" => Ok(Lang::Node),
            "python" | "python3" | "py" => Ok(Lang::Python),
            "java" | "jvm" | "maven" => Ok(Lang::Java),
            _ => Err(BuildersError::InvalidOption {
                option: "--lang".into(),
                value: s.into(),
                detail: "expected one of go, node, python, java".into(),
            }),
        }
    }
}

/// The Debian release toolchains and runtimes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Distro {
    /// Debian 13.
    #[default]
    Trixie,
    /// Debian 12.
    Bookworm,
}

impl Distro {
    pub fn as_str(self) -> &'static str {
        match self {
            Distro::Trixie => "trixie",
            Distro::Bookworm => "bookworm",
        }
    }
}

impl fmt::Display for Distro {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Distro {
    type Err = BuildersError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "trixie" | "debian13" | "debian-13" | "13" => Ok(Distro::Trixie),
            "bookworm" | "debian12" | "debian-12" | "12" => Ok(Distro::Bookworm),
            _ => Err(BuildersError::InvalidOption {
                option: "--distro".into(),
                value: s.into(),
                detail: "expected trixie (debian13) or bookworm (debian12)".into(),
            }),
        }
    }
}

/// What the user asked for on the command line. Flags win over `ocibuild.toml`, which wins over
/// detection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `--lang`: skip detection.
    pub lang: Option<Lang>,
    /// `--main`: the Go main package (`./cmd/x`), the Java main class, the Node entry file or
    /// the Python entry script (`x.py`) or module.
    pub main: Option<String>,
    /// `--entrypoint`: replaces the detected entrypoint.
    pub entrypoint: Option<Vec<String>>,
    /// `--module`: the module of a multi-module Maven project to build (its directory or
    /// artifactId); by default the one with a main class.
    pub module: Option<String>,
    /// `--workspace`: the package of an npm workspace root to build (its directory, as npm's
    /// `-w` takes it, or its package name); by default the one workspace with a start script.
    pub workspace: Option<String>,
    /// `--distro`.
    pub distro: Distro,
    /// From `--platform`: only `linux`.
    pub goos: String,
    /// From `--platform`: `amd64` or `arm64`.
    pub goarch: String,
    /// `--toolchain host`: build with the host's toolchain; version checks against the Debian
    /// release's toolchain are skipped (the runtime still comes from the release).
    pub toolchain_host: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            lang: None,
            main: None,
            entrypoint: None,
            module: None,
            workspace: None,
            distro: Distro::Trixie,
            goos: "linux".into(),
            goarch: "amd64".into(),
            toolchain_host: false,
        }
    }
}

/// The result of [`crate::detect`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Detection {
    pub lang: Lang,
    /// What was found, e.g. `go.mod found at go.mod (module example.com/hello, go 1.22)`.
    pub reasons: Vec<String>,
}

/// A cache directory the executor bind-mounts into every step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CacheMount {
    /// Stable directory name under the cache dir (`go-build`, `go-mod`, `npm`, `pip`, `m2`).
    pub name: String,
    /// Sandbox path.
    pub target: String,
    /// The variables that point the tool at `target` (informational: they are already part of
    /// every [`Step::env`]).
    pub env: Vec<(String, String)>,
}

/// One command run in the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub name: String,
    /// Run directly (no shell unless `argv[0]` is `sh`), resolved through the plan's `PATH`.
    pub argv: Vec<String>,
    /// Complete extra environment of the step, on top of the executor's `HOME`, `PATH` and
    /// `SOURCE_DATE_EPOCH`.
    pub env: Vec<(String, String)>,
    /// Sandbox working directory.
    pub cwd: String,
    /// Whether the step needs the network (package downloads).
    pub network: bool,
    /// The only app files (relative to the app dir; those that exist) the step reads, when the
    /// builder declares them: the dependency install reads the lockfiles only, so the engine
    /// runs it before the rest of the source is copied and a source edit reuses its layer.
    /// `None`: the whole source.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Vec<String>>,
}

/// One image layer, made from a directory of the sandbox after all steps ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerSpec {
    pub name: String,
    /// Sandbox directory (under `/src` or one of `outputs`) whose contents become the layer. A
    /// directory that does not exist after the steps gives no layer.
    pub from: String,
    /// Image directory the contents land in.
    pub to: String,
    /// Globs relative to `from` ([`crate::glob_filter`] semantics); empty = everything.
    pub include: Vec<String>,
    /// Globs relative to `from`.
    pub exclude: Vec<String>,
    /// Files (relative to the app dir) whose content keys this layer; empty = its own content.
    pub key_files: Vec<String>,
}

/// The build root to assemble.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Toolchain {
    /// Debian toolchain profile (`go`, `node-build`, `python-build`, `java-build`), or `host`
    /// with `--toolchain host`.
    pub profile: String,
    /// Extra Debian packages on top of the profile.
    pub packages: Vec<String>,
    /// Whether `packages` come from `<release>-backports`.
    pub backports: bool,
    /// Directories put in front of `PATH` in every step.
    pub path_prepend: Vec<String>,
    /// The chosen toolchain version, for humans.
    pub version: String,
    /// With `--toolchain host`: the host programs the steps run, which the executor probes
    /// ([`crate::check_host_tool`]) before building. Empty otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub host_tools: Vec<HostTool>,
}

/// A program `--toolchain host` takes from the host, and what the app needs of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostTool {
    /// The program looked up on the steps' `PATH` (`go`, `node`, `npm`, `python3`, `javac`…).
    pub program: String,
    /// The command printing its version (`["go", "env", "GOVERSION"]`, `["node", "--version"]`).
    pub version_argv: Vec<String>,
    /// What its version must satisfy (none: only its presence is checked).
    pub requirements: Vec<Requirement>,
}

/// A version requirement of the app on a toolchain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Requirement {
    /// The toolchain, for messages: `Go`, `Node.js`, `Python`, `Java`.
    pub what: String,
    pub constraint: Constraint,
    /// Where it comes from: `go.mod:3`, `package.json:6 (engines.node)`.
    pub origin: String,
    /// What to do when the host's version does not satisfy it.
    pub hint: String,
}

/// The constraint languages of [`Requirement`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "value")]
pub enum Constraint {
    /// Go: at least this version (`1.24`, `1.23.4`).
    GoAtLeast(String),
    /// An npm semver range (`>=20`, `^18 || ^20`).
    NpmRange(String),
    /// A PEP 440 specifier set (`>=3.11`, `==3.13.*`).
    Pep440(String),
    /// Java: a compiler that can target at least this release.
    JavaRelease(u32),
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Constraint::GoAtLeast(v) => write!(f, ">= {v}"),
            Constraint::NpmRange(r) => write!(f, "{r}"),
            Constraint::Pep440(s) => write!(f, "{s}"),
            Constraint::JavaRelease(r) => write!(f, ">= {r}"),
        }
    }
}

/// The base of the final image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Runtime {
    /// Distroless profile: `static`, `nodejs`, `python3`, `java`, `java17`, `java21`, `java25`.
    pub profile: String,
    /// `nonroot`.
    pub variant: String,
    /// Extra Debian packages on top of the profile.
    pub packages: Vec<String>,
}

/// The final image's config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub workdir: String,
    pub user: String,
    /// `K=V`.
    pub env: Vec<String>,
    /// `8080/tcp`.
    pub exposed_ports: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// `["CMD", …]`.
    pub healthcheck: Option<Vec<String>>,
}

/// Directories the app writes at run time (`writable` in `ocibuild.toml`): created, with what
/// the app ships in them, in a layer of their own owned by `uid:gid` (the image's user).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Writable {
    /// Absolute image paths, normalised (`/app/instance`, `/data`), in the order given.
    pub dirs: Vec<String>,
    pub uid: u32,
    pub gid: u32,
}

/// Everything the executor needs to build the app: pure data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub lang: Lang,
    /// Why this language, version, main package and entrypoint were chosen.
    pub reasons: Vec<String>,
    pub toolchain: Toolchain,
    pub runtime: Runtime,
    /// Sandbox path of the writable copy of the app dir (`/src`).
    pub source_dir: String,
    /// Globs (relative to the app dir, [`crate::glob_filter`] semantics) not copied into
    /// `source_dir`; `.dockerignore` is already expanded into literal paths here.
    pub source_exclude: Vec<String>,
    /// Sandbox directories bind-mounted as fresh empty host directories.
    pub outputs: Vec<String>,
    pub cache_mounts: Vec<CacheMount>,
    pub steps: Vec<Step>,
    /// Bottom first.
    pub layers: Vec<LayerSpec>,
    /// The writable directories' layer, on top of `layers`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub writable: Option<Writable>,
    pub config: ImageConfig,
    /// Files the executor writes before the first step (a lockfile converted into what the
    /// build's tools read, such as a hashed requirements list for pip).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<GeneratedFile>,
    /// What makes the app's layers depend on the build machine's architecture (native addons,
    /// platform wheels, packages chosen by CPU, Go's cgo), as the lockfiles and the app say before
    /// anything is built. Empty: the layers are taken to be architecture-independent (a build
    /// for another platform builds them on the build platform and checks the result for ELF
    /// files); else a build for another platform must run its steps on that platform.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub arch_specific: Vec<String>,
}

/// A file made while planning, written into the sandbox before the steps run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GeneratedFile {
    /// Sandbox path under one of the plan's `outputs` (never the source copy).
    pub path: String,
    pub content: String,
}
