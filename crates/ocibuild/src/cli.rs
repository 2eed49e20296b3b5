//! Flags, as docker, buildah and skopeo users expect them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(name = "ocibuild", version, about = "Daemonless, rootless OCI image builder", long_about = None, args_override_self = true)]
#[command(after_help = "Exit codes: 0 ok, 1 error, 2 usage error, 3 a policy gate failed.")]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Content store and cache directory [default: $XDG_CACHE_HOME/ocibuild]
    #[arg(long, global = true, env = "OCIBUILD_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Progress output: auto (tty when stderr is a terminal, else plain), tty, plain, or json lines
    #[arg(long, global = true, value_enum, default_value_t = Progress::Auto)]
    pub progress: Progress,
    /// More log output (-v info, -vv debug, -vvv trace)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Registry that may be reached over plain HTTP (loopback always may); repeatable
    #[arg(long = "insecure-registry", global = true, value_name = "HOST[:PORT]")]
    pub insecure_registries: Vec<String>,
    /// Extra CA certificate (PEM) to trust for registries; repeatable. Also read:
    /// /etc/docker/certs.d/HOST/*.crt and /etc/containers/certs.d/HOST/*.crt
    #[arg(long = "ca-cert", global = true, value_name = "FILE")]
    pub ca_certs: Vec<PathBuf>,
    /// Registry credentials, overriding every other source (prefer `ocibuild login` or
    /// OCIBUILD_REGISTRY_USER/OCIBUILD_REGISTRY_PASSWORD: a flag shows in `ps`)
    #[arg(long, global = true, value_name = "USER:PASS", hide_env_values = true)]
    pub creds: Option<String>,
    /// Hosts to treat as Azure Container Registry besides *.azurecr.io; repeatable
    #[arg(long = "acr-host", global = true, value_name = "HOST")]
    pub acr_hosts: Vec<String>,
    /// Pull-through mirror for a registry: docker.io=mirror.local:5000[;exclusive] (repeatable).
    /// Exclusive mirrors never fall back to the registry itself.
    #[arg(
        long = "registry-mirror",
        global = true,
        value_name = "REGISTRY=MIRROR[;exclusive]"
    )]
    pub registry_mirrors: Vec<String>,
    /// Registries config (JSON: mirrors, insecure, acr_hosts)
    /// [default: $OCIBUILD_REGISTRIES_CONFIG, else $XDG_CONFIG_HOME/ocibuild/registries.json if present]
    #[arg(
        long = "registries-config",
        global = true,
        env = "OCIBUILD_REGISTRIES_CONFIG",
        value_name = "FILE"
    )]
    pub registries_config: Option<PathBuf>,
    /// Parallel blob transfers
    #[arg(long, global = true, default_value_t = 4, value_name = "N")]
    pub jobs: usize,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    Auto,
    Tty,
    Plain,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Build an image: zero-config from source (Go, Node.js, Python, Java) when CONTEXT has no Dockerfile
    Build(Box<BuildArgs>),
    /// Make an image without a Dockerfile: a base plus directories as layers plus config
    Assemble(Box<AssembleArgs>),
    /// Show an image's manifest, config and layers
    Inspect(InspectArgs),
    /// Check every digest, size, diff_id, media type and schema version of an image
    Validate(ValidateArgs),
    /// Manage the local content store and cache
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Run a command in the build sandbox over a root filesystem (what a build step does)
    Run(RunArgs),
    /// Pull an image from a registry into a layout or archive
    Pull(PullArgs),
    /// Push a local image (oci:, oci-archive:, docker-archive:) to a registry
    Push(PushArgs),
    /// Copy an image between any two locations (registry to registry included)
    Copy(CopyArgs),
    /// List the tags of a repository
    Tags(TagsArgs),
    /// Store credentials for a registry in ~/.docker/config.json (or its credential helper)
    Login(LoginArgs),
    /// Remove stored credentials for a registry
    Logout(LogoutArgs),
    /// Report what isolation this host allows, and how to get more
    Doctor(DoctorArgs),
    /// Distroless bases and toolchain roots from Debian packages, pinned by a lockfile
    #[command(subcommand)]
    Base(BaseCommand),
    /// Check an image statically: entrypoint runnable, no secrets, setuid, dev dependencies or build tools, and a policy (exit 3 on failure)
    Check(CheckArgs),
    /// Where an image's bytes are: layers, directories, files, duplicates, waste; compare and budget (exit 3 over budget)
    Size(SizeArgs),
    /// Gate an image (or its CycloneDX SBOM) on known vulnerabilities, offline, against an OSV database
    Scan(Box<ScanArgs>),
    /// Import and describe the offline OSV vulnerability database that `scan` reads
    #[command(subcommand)]
    Db(DbCommand),
    /// Write a cosign key pair: PREFIX.key (encrypted) and PREFIX.pub
    GenerateKeyPair(crate::sign_cli::GenerateKeyPairArgs),
    /// Sign an image in cosign's format (registry or OCI layout)
    Sign(crate::sign_cli::SignArgs),
    /// Verify an image's cosign signatures with a public key (exit 3 when none is valid)
    Verify(crate::sign_cli::VerifyArgs),
    /// Attach a signed in-toto attestation (DSSE) to an image, as `cosign attest`
    Attest(crate::sign_cli::AttestArgs),
    /// Verify an image's attestations with a public key (exit 3 when none is valid)
    VerifyAttestation(crate::sign_cli::VerifyAttestationArgs),
    /// Write the SBOM of any image (CycloneDX 1.6 or SPDX 2.3 JSON), validate an SBOM, gate on licences
    Sbom(Box<SbomArgs>),
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportFormat {
    Table,
    Json,
    Markdown,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Default checks: runnable, healthcheck, native-libs, symlink-dir, world-writable, setuid,\nsecrets, dev-dependencies, build-tools, sources (a policy's `disable` switches one off).\nExit codes: 0 all passed, 3 a check failed, 1 the check could not run.\n\nExamples:\n  ocibuild check oci:out:v1\n  ocibuild check docker://127.0.0.1:5000/app:v1 --policy policy.toml --format json\n  ocibuild check oci:out:v1 --config cst.yaml"
)]
pub struct CheckArgs {
    /// oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG] or
    /// docker://REGISTRY/REPO[:TAG|@DIGEST]
    pub image: String,
    /// Policy file (TOML): forbidden_executables, forbidden_paths, required_files,
    /// required_executables, non_root, required_labels, max_*_size, disable, base_layers,
    /// structure_test
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// A container-structure-test YAML file: its fileExistenceTests, fileContentTests and
    /// metadataTest run statically
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Output format: table or json
    #[arg(long, value_enum, default_value = "table")]
    pub format: ReportFormat,
    /// Platform to pick from a multi-platform index
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Exit codes: 0 ok (within budget), 3 over budget, 1 the image could not be read.\n\nExamples:\n  ocibuild size oci:out:v1\n  ocibuild size oci:out:v1 --compare oci:naive:v1 --format markdown >> $GITHUB_STEP_SUMMARY\n  ocibuild size docker://127.0.0.1:5000/app:v1 --budget budget.toml"
)]
pub struct SizeArgs {
    /// oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG] or
    /// docker://REGISTRY/REPO[:TAG|@DIGEST]
    pub image: String,
    /// Another image to compare with (the reduction in % is against it)
    #[arg(long, value_name = "IMAGE")]
    pub compare: Option<String>,
    /// Budget file (TOML): max_compressed_size, max_uncompressed_size, max_layer_compressed_size
    #[arg(long, value_name = "FILE")]
    pub budget: Option<PathBuf>,
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    pub format: ReportFormat,
    /// How many directories, files and duplicates to list
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub top: usize,
    /// Platform to pick from a multi-platform index
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  ocibuild pull docker://127.0.0.1:5000/app:v1 --output oci:app:v1\n  ocibuild pull docker://myreg.azurecr.io/base:1 --platform linux/arm64 --output oci-archive:base.tar"
)]
pub struct PullArgs {
    /// docker://REGISTRY/REPO[:TAG|@DIGEST]
    pub image: String,
    /// Pull only this platform of a multi-platform image (default: all of them, into oci:/oci-archive:)
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE[:NAME:TAG] (repeatable)
    #[arg(short = 'o', long = "output", value_name = "DEST", required = true)]
    pub outputs: Vec<String>,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Example:\n  ocibuild push oci:out:v1 docker://myreg.azurecr.io/app --tag $BUILD_NUMBER --tag latest"
)]
pub struct PushArgs {
    /// oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG] or
    /// docker://REGISTRY/REPO[:TAG|@DIGEST] (copied registry to registry)
    pub source: String,
    /// docker://REGISTRY/REPO[:TAG]
    pub destination: String,
    /// Another tag to push (repeatable): the destination's own tag and every --tag are pushed
    /// [default: the destination's tag, else latest]
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Write the pushed digest, tags and blobs as JSON to FILE
    #[arg(long, value_name = "FILE")]
    pub metadata_file: Option<PathBuf>,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  ocibuild copy docker://src.example:5000/app:v1 docker://dst.azurecr.io/app:v1\n  ocibuild copy oci-archive:app.tar:v1 oci:layout:v1"
)]
pub struct CopyArgs {
    pub source: String,
    pub destination: String,
}

#[derive(Args, Debug)]
#[command(after_help = "Example:\n  ocibuild tags docker://127.0.0.1:5000/app")]
pub struct TagsArgs {
    /// docker://REGISTRY/REPO
    pub repository: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  echo \"$TOKEN\" | ocibuild login myreg.azurecr.io -u 00000000-0000-0000-0000-000000000000 --password-stdin\n  ocibuild login 127.0.0.1:5000 -u alice --password-stdin < pass.txt"
)]
pub struct LoginArgs {
    /// Registry host[:port]
    pub registry: String,
    #[arg(short, long)]
    pub username: Option<String>,
    /// Read the password from standard input
    #[arg(long)]
    pub password_stdin: bool,
    /// Password (insecure: prefer --password-stdin)
    #[arg(short, long, hide_env_values = true)]
    pub password: Option<String>,
}

#[derive(Args, Debug)]
pub struct LogoutArgs {
    /// Registry host[:port]
    pub registry: String,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  ocibuild assemble --layer ./rootfs --entrypoint /hello -t hello:v1 --output oci:out:v1\n  ocibuild assemble --base oci:base:latest --layer dist:/app --cmd '[\"node\",\"/app/index.js\"]' \\\n      --user 65532:65532 --output oci-archive:app.tar --output docker-archive:app-docker.tar"
)]
pub struct AssembleArgs {
    /// Base image: scratch, oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG]
    /// or docker://REGISTRY/REPO[:TAG|@DIGEST]
    #[arg(long, default_value = "scratch", value_name = "IMAGE")]
    pub base: String,
    /// Add SRC_DIR as one layer, at DEST in the image (default /). Repeatable, in order.
    #[arg(long = "layer", value_name = "SRC_DIR[:DEST]")]
    pub layers: Vec<String>,
    /// Entrypoint, as a JSON array or plain words
    #[arg(long, value_name = "CMD")]
    pub entrypoint: Option<String>,
    /// Default arguments (CMD), as a JSON array or plain words
    #[arg(long, value_name = "CMD")]
    pub cmd: Option<String>,
    /// Set an environment variable (repeatable)
    #[arg(long = "env", short = 'e', value_name = "K=V")]
    pub env: Vec<String>,
    /// Working directory
    #[arg(long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// User to run as (name, uid, or uid:gid)
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Config label (repeatable)
    #[arg(long = "label", value_name = "K=V")]
    pub labels: Vec<String>,
    /// Manifest annotation (repeatable)
    #[arg(long = "annotation", value_name = "K=V")]
    pub annotations: Vec<String>,
    /// Exposed port, like 8080/tcp (repeatable)
    #[arg(long = "expose", value_name = "PORT[/PROTO]")]
    pub expose: Vec<String>,
    /// Target platform, like linux/amd64
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// Name and tag, like hello:v1; the tag names the image in oci:/oci-archive: outputs without a tag
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    pub tags: Vec<String>,
    /// Where to write: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG] (repeatable)
    #[arg(short = 'o', long = "output", value_name = "DEST")]
    pub outputs: Vec<String>,
    /// Layer compression
    #[arg(long, value_enum, default_value_t = CompressionArg::Gzip)]
    pub compression: CompressionArg,
    /// Compression level [default: gzip 6, zstd 3]
    #[arg(long, value_name = "N")]
    pub compression_level: Option<u32>,
    /// Owner of every file in the new layers, like 65532:65532 [default: 0:0]
    #[arg(long, value_name = "UID:GID")]
    pub owner: Option<String>,
    /// Keep file permission bits exactly (default: normalised like a git checkout: 0644/0755,
    /// so the umask that wrote the files does not change the digest)
    #[arg(long)]
    pub keep_modes: bool,
    /// Clamp file mtimes and set `created` to this Unix time
    #[arg(
        long,
        env = "SOURCE_DATE_EPOCH",
        default_value_t = 0,
        value_name = "SECONDS"
    )]
    pub source_date_epoch: u64,
    /// Write the digest, tags, layers and sizes as JSON to FILE
    #[arg(long, value_name = "FILE")]
    pub metadata_file: Option<PathBuf>,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum CompressionArg {
    Gzip,
    Zstd,
    None,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  ocibuild inspect oci:out:v1\n  ocibuild inspect --json docker-archive:app.tar | jq .layers\n  ocibuild inspect docker://127.0.0.1:5000/app:v1"
)]
pub struct InspectArgs {
    /// oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG] or
    /// docker://REGISTRY/REPO[:TAG|@DIGEST]
    pub image: String,
    /// Machine-readable output
    #[arg(long)]
    pub json: bool,
    /// Platform to pick from a multi-platform index
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  ocibuild validate oci:out:v1 && echo valid\n  ocibuild validate docker://127.0.0.1:5000/app:v1"
)]
pub struct ValidateArgs {
    /// oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG] or
    /// docker://REGISTRY/REPO[:TAG|@DIGEST]
    pub image: String,
    /// Machine-readable output
    #[arg(long)]
    pub json: bool,
    /// Also read the layers as a filesystem and warn about what is valid but breaks the image
    /// when applied (a layer replacing a lower layer's symlink, such as a merged-/usr base's
    /// `bin -> usr/bin`, with a directory); warnings do not change the exit code
    #[arg(long)]
    pub strict: bool,
}

#[derive(Subcommand, Debug)]
pub enum CacheCommand {
    /// Prefetch from a remote cache what a Dockerfile build of CONTEXT will need (the steps'
    /// layers and records, and its bases), stopping each stage at its first miss; runs nothing
    #[command(
        after_help = "Example:\n  ocibuild cache warm --from type=azblob,account_url=https://acct.blob.core.windows.net,container=cache ./app"
    )]
    Warm(Box<WarmArgs>),
    /// Show what the store root holds, by kind (blobs, toolchain roots, package cache, cache
    /// mounts, step change dirs and records, logs, temp, other): every byte under the root
    Du {
        #[arg(long)]
        json: bool,
    },
    /// Re-hash every blob and check that every layer mapping and record points to a stored,
    /// correct blob; exit 3 with the list when something is broken, 1 when it could not run
    #[command(
        after_help = "Examples:\n  ocibuild cache verify\n  ocibuild cache verify --repair --json\n\nChecks blobs/ (each blob's bytes hash to its name), layers/ (each mapping names a stored,\ncorrect blob) and the records under engine/ (each parses, each descriptor in it names a stored\nblob of that size). --repair removes what is broken (then exits 0 when all of it went)."
    )]
    Verify {
        /// Remove every broken blob, mapping and record (waits for running builds)
        #[arg(long)]
        repair: bool,
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Remove what was not used recently, or the least recently used until the store fits a
    /// budget, of every kind (with neither: everything, leaving the store's skeleton); never
    /// what a running build uses
    #[command(
        after_help = "Examples:\n  ocibuild cache prune --older-than 7d\n  ocibuild cache prune --keep-storage 10GB"
    )]
    Prune {
        /// Remove what was not used for this long: 30m, 12h, 7d, 2w
        #[arg(long, value_name = "AGE")]
        older_than: Option<String>,
        /// Then remove the least recently used until at most this much is kept: 500MB, 10GB
        #[arg(long, value_name = "SIZE")]
        keep_storage: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
#[command(
    after_help = "Probes (in throwaway child processes) user namespaces, overlayfs and /proc inside them, and\nmount namespaces as root; prints each check, the tiers, the chosen one and the exact fixes.\nAlways exits 0: it reports, it does not judge.\n\nExamples:\n  ocibuild doctor\n  ocibuild doctor --json | jq -r .chosen"
)]
pub struct DoctorArgs {
    /// Machine-readable output (the whole probe report)
    #[arg(long)]
    pub json: bool,
    /// Force the helper executable the probe re-executes (tests)
    #[arg(long, hide = true, value_name = "EXE")]
    pub helper: Option<PathBuf>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum IsolationArg {
    /// The strongest tier available (userns, then chroot); never host unless --allow-host
    Auto,
    Userns,
    Chroot,
    Host,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetworkArg {
    None,
    Host,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  ocibuild run --rootfs ./rootfs -- /bin/sh -c 'id -u; echo hi > /out'\n  ocibuild run --isolation chroot --rootfs base --rootfs app --upper changes --network host -- make\n\nThe step's changes land in --upper (an overlay upper dir, or a diff with .wh. whiteouts when\noverlayfs is refused). Exit status: the step's own (128+signal when killed), 1 when the sandbox\ncould not be set up. See `ocibuild doctor` for what this host allows."
)]
pub struct RunArgs {
    /// A root filesystem directory; repeat to stack layers (first = lowest). Never modified.
    #[arg(long = "rootfs", value_name = "DIR", required = true)]
    pub rootfs: Vec<PathBuf>,
    /// Empty directory that receives the step's changes [default: a temp dir, removed after]
    #[arg(long, value_name = "DIR")]
    pub upper: Option<PathBuf>,
    /// Isolation tier
    #[arg(long, value_enum, default_value_t = IsolationArg::Auto)]
    pub isolation: IsolationArg,
    /// With --isolation auto: fall back to no isolation when nothing else works (said loudly)
    #[arg(long)]
    pub allow_host: bool,
    /// Network inside the sandbox
    #[arg(long, value_enum, default_value_t = NetworkArg::None)]
    pub network: NetworkArg,
    /// Environment variable (repeatable); nothing else is inherited except PATH's default
    #[arg(long = "env", short = 'e', value_name = "K=V")]
    pub env: Vec<String>,
    /// Working directory inside the rootfs
    #[arg(long, default_value = "/", value_name = "DIR")]
    pub workdir: String,
    /// uid[:gid] or a name from the rootfs's /etc/passwd
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Kill the step (and everything it started) after this many seconds
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Bind-mount a host directory: SRC:DEST[:ro] (repeatable)
    #[arg(long = "mount", value_name = "SRC:DEST[:ro]")]
    pub mounts: Vec<String>,
    /// The command and its arguments
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum BaseCommand {
    /// Build a distroless base (or toolchain root) from Debian packages
    Build(BaseBuildArgs),
    /// Resolve a profile and write its lockfile (exact versions, sha256, suite, source)
    Lock(BaseLockArgs),
    /// List the profiles and their packages
    List(BaseListArgs),
}

/// What `base build` and `base lock` share.
#[derive(Args, Debug, Clone)]
pub struct BaseSelectArgs {
    /// Profile, with an optional variant: static, cc, python3:nonroot, nodejs:debug … (see `base list`)
    #[arg(long, value_name = "NAME[:nonroot|:debug]")]
    pub profile: String,
    /// Extra packages, in their own layer (comma-separated, repeatable)
    #[arg(long = "packages", value_name = "A,B", value_delimiter = ',')]
    pub packages: Vec<String>,
    /// Debian release: trixie (13) or bookworm (12)
    #[arg(long, default_value = "trixie", value_name = "RELEASE")]
    pub distro: String,
    /// Debian architecture: amd64 or arm64
    #[arg(long, default_value = "amd64", value_name = "ARCH")]
    pub arch: String,
    /// Use no network: indexes and packages come from the cache
    #[arg(long)]
    pub offline: bool,
    /// Add <release>-backports (apt priority 100: only for packages asked for by name or missing
    /// from the release, e.g. --packages golang-1.26-go)
    #[arg(long)]
    pub backports: bool,
    /// An apt source to use instead of the machine's: "URI SUITE COMPONENT…" (a local mirror
    /// directory or file:// URL for air-gapped sites); repeatable
    #[arg(long = "apt-source", value_name = "URI SUITE COMPONENT…")]
    pub apt_sources: Vec<String>,
    /// The package cache [default: ROOT/debian]
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  ocibuild base build --profile static --output oci:base:static\n  ocibuild base build --profile python3:nonroot --distro bookworm --output oci-archive:py.tar\n  ocibuild base build --profile cc --lock ocibuild.lock --offline --output oci:base:cc"
)]
pub struct BaseBuildArgs {
    #[command(flatten)]
    pub select: BaseSelectArgs,
    /// Build exactly the packages of this lockfile (written by `ocibuild base lock`)
    #[arg(long, value_name = "FILE")]
    pub lock: Option<PathBuf>,
    /// SOURCE_DATE_EPOCH for `created` and file times [default: the lockfile's, i.e. the
    /// release's InRelease date]
    #[arg(long, env = "SOURCE_DATE_EPOCH", value_name = "SECONDS")]
    pub source_date_epoch: Option<u64>,
    /// oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG] or
    /// docker://REGISTRY/REPO:TAG (pushed) (repeatable)
    #[arg(short = 'o', long = "output", value_name = "DEST")]
    pub outputs: Vec<String>,
}

#[derive(Args, Debug)]
pub struct BaseLockArgs {
    #[command(flatten)]
    pub select: BaseSelectArgs,
    /// Where to write the lockfile
    #[arg(
        short = 'o',
        long = "output",
        default_value = "ocibuild.lock",
        value_name = "FILE"
    )]
    pub output: PathBuf,
}

#[derive(Args, Debug)]
pub struct BaseListArgs {
    /// Show the packages of this release
    #[arg(long, default_value = "trixie", value_name = "RELEASE")]
    pub distro: String,
    /// JSON output
    #[arg(long)]
    pub json: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolchainArg {
    /// A toolchain root assembled from the release's Debian packages (default)
    Debian,
    /// The host's own toolchain, run over the host's `/` (sandboxed when possible)
    Host,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildNetworkArg {
    /// Steps that download dependencies get the host's network
    Default,
    /// No step gets a network (vendored or cached dependencies only)
    None,
}

#[derive(Args, Debug, Clone)]
#[command(
    after_help = "Examples:\n  ocibuild build ./app -t registry.example/app:1 --push\n  ocibuild build ./app --output oci:out:app --explain\n  ocibuild build ./svc --lang go --main ./cmd/server --platform linux/arm64 --output oci-archive:svc.tar\n  ocibuild build ./web --distro bookworm --build-ca /etc/corp/ca.pem --output docker-archive:web.tar:web:1\n\nOutputs: --output oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG],\ndocker://REGISTRY/REPO:TAG; --push pushes every -t. Without either the image stays in the content store\n(its digest is printed)."
)]
pub struct BuildArgs {
    /// The app directory (build context)
    #[arg(default_value = ".", value_name = "CONTEXT")]
    pub context: PathBuf,
    /// Name and tag (repeatable); with --push each is pushed
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    pub tags: Vec<String>,
    /// Where to write the image (repeatable)
    #[arg(short = 'o', long = "output", value_name = "DEST")]
    pub outputs: Vec<String>,
    /// Push the image to every -t name
    #[arg(long)]
    pub push: bool,
    /// Dockerfile to use [default: CONTEXT/Dockerfile or CONTEXT/Containerfile when present;
    /// without one, a zero-config build from source]
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Dockerfile: the stage to build [default: the last]
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,
    /// Dockerfile: a build-time variable (repeatable); `KEY` alone takes it from the environment
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    /// Dockerfile: a secret for `RUN --mount=type=secret` (repeatable): id=ID,src=FILE or
    /// id=ID,env=VAR; never stored in a layer, the cache or the logs
    #[arg(long = "secret", value_name = "id=ID,src=FILE|env=VAR")]
    pub secrets: Vec<String>,
    /// Dockerfile: an extra named context (repeatable): NAME=oci-layout://DIR[:TAG],
    /// NAME=docker-image://REF, NAME=oci-archive:FILE or NAME=DIR
    #[arg(long = "build-context", value_name = "NAME=SOURCE")]
    pub build_contexts: Vec<String>,
    /// Import build cache from (repeatable): type=azblob,account_url=URL,container=NAME[,name=PREFIX],
    /// type=registry,ref=REG/REPO:TAG, type=local,src=DIR, or an image REG/REPO:TAG (as docker:
    /// its inline cache, else type=registry,ref=REG/REPO:TAG)
    #[arg(long = "cache-from", alias = "from", value_name = "type=…|IMAGE")]
    pub cache_from: Vec<String>,
    /// Export build cache to (repeatable): type=azblob,…[,mode=min|max][,ignore-error=true],
    /// type=registry,ref=…, type=local,dest=DIR, type=inline (with --push: the steps pushed
    /// beside the image, for --cache-from IMAGE; also --build-arg BUILDKIT_INLINE_CACHE=1)
    #[arg(long = "cache-to", value_name = "type=…")]
    pub cache_to: Vec<String>,
    /// For every step that misses the cache, say which input changed since the last build
    #[arg(long)]
    pub explain_cache: bool,
    /// Dockerfile: when to pull registry bases: always, missing (use a pulled copy) or never
    #[arg(long, default_value = "missing", value_name = "always|missing|never")]
    pub pull: String,
    /// Force a language instead of detecting it: go, node, python, java
    #[arg(long, value_name = "LANG")]
    pub lang: Option<String>,
    /// Go main package (./cmd/x), Java main class, Node or Python entry file
    #[arg(long, value_name = "MAIN")]
    pub main: Option<String>,
    /// Multi-module Maven: the module to build and run (its directory or artifactId); by
    /// default the one with a main class
    #[arg(long, value_name = "NAME")]
    pub module: Option<String>,
    /// npm/pnpm/Yarn workspaces monorepo: the workspace to build and run (its directory, as
    /// npm's -w takes it, or its package name); Go monorepo: the module's directory (go.work,
    /// or local replace targets beside it). The context is the root. `ocibuild build
    /// ROOT/apps/api` does the same [default: the one workspace with a start script]
    #[arg(long, value_name = "DIR|NAME")]
    pub workspace: Option<String>,
    /// The image entrypoint (JSON array or words), instead of the detected one
    #[arg(long, value_name = "CMD")]
    pub entrypoint: Option<String>,
    /// Debian release of the toolchain and the runtime: trixie (13) or bookworm (12)
    #[arg(long, default_value = "trixie", value_name = "RELEASE")]
    pub distro: String,
    /// Target platform; several, comma-separated, build one image index with a manifest per
    /// platform (linux/amd64,linux/arm64). Go cross-compiles; a Dockerfile's RUN steps for a
    /// foreign platform need qemu-user-static (see `ocibuild doctor`) unless their stage is
    /// `FROM --platform=$BUILDPLATFORM`
    #[arg(long, default_value = "linux/amd64", value_name = "OS/ARCH[,OS/ARCH…]")]
    pub platform: String,
    /// Which toolchain runs the build steps
    #[arg(long, value_enum, default_value = "debian")]
    pub toolchain: ToolchainArg,
    /// Network for steps that download dependencies
    #[arg(long, value_enum, default_value = "default")]
    pub network: BuildNetworkArg,
    /// CA bundle for steps that download: `host` (this machine's trust store, so intercepting
    /// proxies work), `none` (the toolchain root's own), or a PEM file
    #[arg(
        long = "build-ca",
        default_value = "host",
        value_name = "host|none|FILE"
    )]
    pub build_ca: String,
    /// Do not pass the host's HTTP(S)_PROXY/NO_PROXY variables into build steps
    #[arg(long)]
    pub no_proxy_env: bool,
    /// Extra environment for every build step (repeatable)
    #[arg(long = "build-env", value_name = "KEY=VALUE")]
    pub build_env: Vec<String>,
    /// Print why the language, versions and entrypoint were chosen, and the plan, then build
    #[arg(long)]
    pub explain: bool,
    /// Print the plan and stop: `plan` (JSON, the default) or `dockerfile` (an equivalent
    /// Dockerfile on the same native bases, for `ocibuild build -f`)
    #[arg(
        long,
        value_enum,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "plan",
        value_name = "plan|dockerfile"
    )]
    pub dry_run: Option<DryRunArg>,
    /// Also assemble the naive single-stage image (toolchain + sources + outputs) and print the
    /// size reduction
    #[arg(long)]
    pub compare_naive: bool,
    /// Check the built image (`ocibuild check`'s default checks) before writing or pushing
    /// anything; a failure exits 3 with the table of failures and writes no output
    #[arg(long)]
    pub check: bool,
    /// Policy file for --check (implies --check)
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Write the image's SBOM (cyclonedx, spdx, or both: `--sbom` alone or `--sbom=true`, buildx's
    /// spelling) into --sbom-dir and attach it to every oci: and docker:// output as an OCI 1.1
    /// referrer
    #[arg(long, value_name = "FORMATS", num_args = 0..=1, default_missing_value = "true", value_delimiter = ',')]
    pub sbom: Vec<String>,
    /// Where --sbom writes sbom.cdx.json and sbom.spdx.json [default: beside --metadata-file, else
    /// the working directory]
    #[arg(long, value_name = "DIR")]
    pub sbom_dir: Option<PathBuf>,
    /// How --sbom attaches to the outputs: `referrers` (OCI 1.1, default), or also `cosign`'s tag
    /// form (`sha256-<hex>.sbom`, what `cosign download sbom` reads)
    #[arg(long, value_name = "MODE", default_value = "referrers", value_parser = ["referrers", "cosign"])]
    pub sbom_attach: String,
    /// Scan the built image against an offline OSV database before writing or pushing anything;
    /// findings at or above --severity exit 3 and write nothing
    #[arg(long)]
    pub scan: bool,
    /// The database for --scan, as `ocibuild scan --db` [default: the last `ocibuild db import`]
    #[arg(long, value_name = "DIR", requires = "scan")]
    pub db: Option<PathBuf>,
    /// Write --scan's JSON report here (the table goes to standard error either way)
    #[arg(long, value_name = "FILE", requires = "scan")]
    pub scan_report: Option<PathBuf>,
    /// Severities --scan gates on (comma-separated: UNKNOWN,LOW,MEDIUM,HIGH,CRITICAL) [default: all]
    #[arg(long, value_name = "LIST", value_delimiter = ',', requires = "scan")]
    pub severity: Vec<String>,
    /// --scan leaves out vulnerabilities that have no fixed version yet
    #[arg(long, requires = "scan")]
    pub ignore_unfixed: bool,
    /// --scan leaves out vulnerabilities without a severity
    #[arg(long, requires = "scan")]
    pub ignore_unknown: bool,
    /// --scan's allowlist (as `ocibuild scan --allowlist`)
    #[arg(long, value_name = "FILE", requires = "scan")]
    pub allowlist: Option<PathBuf>,
    /// --scan's OpenVEX documents (repeatable)
    #[arg(long, value_name = "FILE", requires = "scan")]
    pub vex: Vec<PathBuf>,
    /// Reach no network: bases, packages and steps come from the store and the package cache
    /// (checked before anything runs; every missing item is named), RUN steps get no network,
    /// registry bases are never pulled (as --pull never)
    #[arg(long)]
    pub offline: bool,
    /// Run every step even when nothing the build reads changed
    #[arg(long)]
    pub no_cache: bool,
    /// Fetch the Debian indexes and resolve the roots again now [default: reuse them for an hour]
    #[arg(long)]
    pub refresh: bool,
    /// Sandbox isolation tier for build steps
    #[arg(long, value_enum, default_value = "auto")]
    pub isolation: IsolationArg,
    /// Allow the host tier (no isolation) when nothing else works
    #[arg(long)]
    pub allow_host: bool,
    /// `created` and file times [default: 0, so digests reproduce]
    #[arg(long, env = "SOURCE_DATE_EPOCH", value_name = "SECONDS")]
    pub source_date_epoch: Option<u64>,
    /// Compression of the layers this build writes (steps taken from the cache keep theirs)
    #[arg(long, value_enum, default_value_t = CompressionArg::Gzip)]
    pub compression: CompressionArg,
    /// Compression level [default: gzip 6, zstd 3]
    #[arg(long, value_name = "N")]
    pub compression_level: Option<u32>,
    /// Write the image digest to this file
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<PathBuf>,
    /// Write build metadata (digest, names, plan) as JSON to this file
    #[arg(long, value_name = "FILE")]
    pub metadata_file: Option<PathBuf>,
    /// Append a markdown summary of the build to this file (digest, size per layer, steps ran
    /// and cached, the reduction against the naive image, checks, scan, SBOMs, outputs; also
    /// when the build fails): `--summary "$GITHUB_STEP_SUMMARY"`
    #[arg(long, value_name = "FILE")]
    pub summary: Option<PathBuf>,
    /// The package cache for Debian roots [default: ROOT/debian]
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Dockerfile: build the `FROM ocibuild:PROFILE` base whose profile, variant and packages
    /// this lockfile (`ocibuild base lock`) names from exactly its packages (repeatable)
    #[arg(long = "base-lock", value_name = "FILE")]
    pub base_locks: Vec<PathBuf>,
    #[command(flatten)]
    pub signing: crate::sign_cli::BuildSignArgs,
}

/// What `--dry-run` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DryRunArg {
    /// The zero-config plan, as JSON
    Plan,
    /// A Dockerfile equivalent to the plan
    Dockerfile,
}

/// `ocibuild cache warm`: only the flags that decide what a build of CONTEXT would look up
/// (its step and build keys), not what a build would write.
#[derive(Args, Debug)]
#[command(
    after_help = "Example:\n  ocibuild cache warm --from type=azblob,account_url=https://acct.blob.core.windows.net,container=cache ./app\n\nGive the flags the build will run with that change what it looks up (-f, --target, --build-arg,\n--platform, …): the warm then fetches exactly what that build will need."
)]
pub struct WarmArgs {
    /// The app directory (build context)
    #[arg(default_value = ".", value_name = "CONTEXT")]
    pub context: PathBuf,
    /// The cache to fetch from (repeatable): type=azblob,account_url=URL,container=NAME[,name=PREFIX],
    /// type=registry,ref=REG/REPO:TAG, type=local,src=DIR
    #[arg(
        long = "from",
        alias = "cache-from",
        value_name = "type=…",
        required = true
    )]
    pub from: Vec<String>,
    /// Dockerfile to use [default: CONTEXT/Dockerfile or CONTEXT/Containerfile when present;
    /// without one, the zero-config build of CONTEXT]
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Dockerfile: the stage to build [default: the last]
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,
    /// Dockerfile: a build-time variable (repeatable); `KEY` alone takes it from the environment
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    /// Dockerfile: an extra named context (repeatable), as for `build`
    #[arg(long = "build-context", value_name = "NAME=SOURCE")]
    pub build_contexts: Vec<String>,
    /// Dockerfile: when to pull registry bases: always, missing or never
    #[arg(long, default_value = "missing", value_name = "always|missing|never")]
    pub pull: String,
    /// Target platform
    #[arg(long, default_value = "linux/amd64", value_name = "OS/ARCH")]
    pub platform: String,
    /// Zero-config: force a language instead of detecting it: go, node, python, java
    #[arg(long, value_name = "LANG")]
    pub lang: Option<String>,
    /// Zero-config: Go main package, Java main class, Node or Python entry file
    #[arg(long, value_name = "MAIN")]
    pub main: Option<String>,
    /// Zero-config: the image entrypoint (JSON array or words)
    #[arg(long, value_name = "CMD")]
    pub entrypoint: Option<String>,
    /// Zero-config: Debian release of the toolchain and the runtime
    #[arg(long, default_value = "trixie", value_name = "RELEASE")]
    pub distro: String,
    /// Zero-config: which toolchain runs the build steps
    #[arg(long, value_enum, default_value = "debian")]
    pub toolchain: ToolchainArg,
    /// Zero-config: extra environment for every build step (repeatable)
    #[arg(long = "build-env", value_name = "KEY=VALUE")]
    pub build_env: Vec<String>,
    /// `created` and file times [default: 0]
    #[arg(long, env = "SOURCE_DATE_EPOCH", value_name = "SECONDS")]
    pub source_date_epoch: Option<u64>,
    /// Layer compression the build will use
    #[arg(long, value_enum, default_value_t = CompressionArg::Gzip)]
    pub compression: CompressionArg,
    /// Compression level the build will use
    #[arg(long, value_name = "N")]
    pub compression_level: Option<u32>,
    /// Build Debian roots from cached packages only
    #[arg(long)]
    pub offline: bool,
    /// The package cache for Debian roots [default: ROOT/debian]
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

impl WarmArgs {
    /// The build these flags describe, every other build flag at its default.
    pub fn into_build_args(self) -> Result<BuildArgs, clap::Error> {
        use clap::FromArgMatches as _;
        let m = BuildArgs::augment_args(clap::Command::new("build").no_binary_name(true))
            .try_get_matches_from(std::iter::empty::<String>())?;
        let mut b = BuildArgs::from_arg_matches(&m)?;
        b.context = self.context;
        b.cache_from = self.from;
        b.file = self.file;
        b.target = self.target;
        b.build_args = self.build_args;
        b.build_contexts = self.build_contexts;
        b.pull = self.pull;
        b.platform = self.platform;
        b.lang = self.lang;
        b.main = self.main;
        b.entrypoint = self.entrypoint;
        b.distro = self.distro;
        b.toolchain = self.toolchain;
        b.build_env = self.build_env;
        b.source_date_epoch = self.source_date_epoch;
        b.compression = self.compression;
        b.compression_level = self.compression_level;
        b.offline = self.offline;
        b.cache_dir = self.cache_dir;
        Ok(b)
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanFormat {
    Table,
    Json,
    Sarif,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Exit codes: 0 no finding at or above the threshold, 3 findings at or above it (or --exit-code N),\n1 the scan itself failed (missing or corrupt database, unreadable SBOM). UNKNOWN severities count\nas at or above any threshold unless --ignore-unknown.\n\nExamples:\n  ocibuild db import ./osv\n  ocibuild scan --sbom sbom.cdx.json --severity HIGH,CRITICAL --format json --output report.json\n  ocibuild scan --sbom sbom.cdx.json --db ./osv --allowlist scan-allow.toml --vex app.openvex.json"
)]
pub struct ScanArgs {
    /// The image to scan (oci:DIR[:TAG], oci-archive:FILE[:TAG], docker://…); or give --sbom
    #[arg(
        value_name = "IMAGE",
        required_unless_present = "sbom",
        conflicts_with = "sbom"
    )]
    pub image: Option<String>,
    /// Scan the packages of this CycloneDX JSON SBOM instead of an image
    #[arg(long, value_name = "FILE")]
    pub sbom: Option<PathBuf>,
    /// Platform to pick from a multi-platform IMAGE
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", conflicts_with = "sbom")]
    pub platform: Option<String>,
    /// An imported database, or a raw OSV directory/all.zip (imported into the store once, by its
    /// content) [default: the last `ocibuild db import` into the store]
    #[arg(long, value_name = "DIR")]
    pub db: Option<PathBuf>,
    /// Report and gate only these severities (comma-separated: UNKNOWN,LOW,MEDIUM,HIGH,CRITICAL) [default: all]
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub severity: Vec<String>,
    /// snyk's spelling: report and gate this severity and above (low, medium, high, critical)
    #[arg(long, value_name = "LEVEL", conflicts_with = "severity")]
    pub severity_threshold: Option<String>,
    /// Leave out vulnerabilities that have no fixed version yet
    #[arg(long)]
    pub ignore_unfixed: bool,
    /// Leave out vulnerabilities without a severity (by default UNKNOWN counts at any threshold)
    #[arg(long)]
    pub ignore_unknown: bool,
    #[arg(long, value_enum, default_value_t = ScanFormat::Table)]
    pub format: ScanFormat,
    /// Write the report to FILE instead of standard output
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Suppress advisories: TOML `[[ignore]]` entries with id, reason and expires = "YYYY-MM-DD"
    #[arg(long, value_name = "FILE")]
    pub allowlist: Option<PathBuf>,
    /// OpenVEX document: `not_affected` statements with a justification suppress (repeatable)
    #[arg(long, value_name = "FILE")]
    pub vex: Vec<PathBuf>,
    /// Fail (exit 1) when the newest record is older than this (7d, 48h, …); older than 7 days warns
    #[arg(long, value_name = "DURATION")]
    pub db_max_age: Option<String>,
    /// trivy's spelling: the exit code when findings remain [default: 3]
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub exit_code: u8,
}

#[derive(Subcommand, Debug)]
pub enum DbCommand {
    /// Index OSV records (a directory of *.json, osv.dev's per-ecosystem all.zip, or a directory of those)
    #[command(
        after_help = "Examples:\n  ocibuild db import ./osv            # into the store; `scan` uses the last import\n  ocibuild db import Debian/all.zip --db ./vulndb"
    )]
    Import(DbImportArgs),
    /// Records per ecosystem, the newest `modified` date and the database's age
    Info(DbInfoArgs),
}

#[derive(Args, Debug)]
pub struct DbImportArgs {
    /// A directory of OSV JSON records and/or all.zip archives, or one all.zip
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    /// Write the database here instead of the store
    #[arg(long, value_name = "DIR")]
    pub db: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct DbInfoArgs {
    /// The database to describe [default: the last import into the store]
    #[arg(long, value_name = "DIR")]
    pub db: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SbomFormat {
    Cyclonedx,
    Spdx,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  ocibuild sbom oci:out:v1 --format cyclonedx --output sbom.cdx.json\n  ocibuild sbom docker://127.0.0.1:5000/app:v1 --format spdx --platform linux/arm64\n  ocibuild sbom oci:out:v1 --license-deny GPL-3.0-only,AGPL-3.0-only --license-fail-unknown\n  ocibuild sbom --validate sbom.cdx.json\n\nExit codes: 0 ok, 1 error (or an invalid document with --validate), 2 usage, 3 the licence policy failed."
)]
pub struct SbomArgs {
    /// oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG] or
    /// docker://REGISTRY/REPO[:TAG|@DIGEST]
    #[arg(required_unless_present = "validate", conflicts_with = "validate")]
    pub image: Option<String>,
    /// Document format
    #[arg(long, value_enum, default_value_t = SbomFormat::Cyclonedx)]
    pub format: SbomFormat,
    /// Write the document here (through a temp file and a rename) instead of standard output
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Platform to pick from a multi-platform index
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// Validate a CycloneDX 1.6 or SPDX 2.3 JSON document against the official schema (bundled)
    /// and say where it fails; exit 1 when it does
    #[arg(long, value_name = "FILE")]
    pub validate: Option<PathBuf>,
    /// Fail (exit 3) when a package's licence is one of these SPDX ids (comma-separated)
    #[arg(long, value_name = "IDS", value_delimiter = ',')]
    pub license_deny: Vec<String>,
    /// Licence policy file: JSON {"deny": ["GPL-3.0-only", ...], "failUnknown": true} or one
    /// denied SPDX id per line
    #[arg(long, value_name = "FILE")]
    pub license_policy: Option<PathBuf>,
    /// Also fail (exit 3) when a package's licence is unknown (none found, or not SPDX)
    #[arg(long)]
    pub license_fail_unknown: bool,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every command and subcommand says in `--help` what it does: a doc comment moved onto
    /// the wrong variant leaves one without (and gives its neighbour two).
    #[test]
    fn every_command_says_what_it_does() {
        fn walk(c: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for sub in c.get_subcommands() {
                let p = format!("{path} {}", sub.get_name());
                if sub.get_name() != "help" && sub.get_about().is_none() {
                    missing.push(p.clone());
                }
                walk(sub, &p, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "ocibuild", &mut missing);
        assert!(
            missing.is_empty(),
            "commands without a description: {missing:?}"
        );
    }
}
