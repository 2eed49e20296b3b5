//! One module per subcommand.

mod assemble;
mod base;
mod build;
mod build_flags;
mod buildsign;
mod cache;
mod dockerfile;
mod doctor;
mod inspect;
mod multiplatform;
pub mod policy;
mod record;
pub mod registry;
mod release;
mod run;
mod sbom;
mod scan;
mod sign;
mod sign_notation;
mod summary;
mod supply;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use ocibuild_oci::store::ContentStore;

use crate::cli::{Cli, Command, Global};

pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Assemble(a) => assemble::run(&cli.global, *a),
        Command::Inspect(a) => inspect::run(&cli.global, a),
        Command::Validate(a) => validate::run(&cli.global, a),
        Command::Cache(c) => cache::run(&cli.global, c),
        Command::Run(a) => run::run(&cli.global, a),
        Command::Pull(a) => registry::pull(&cli.global, a),
        Command::Push(a) => registry::push_cmd(&cli.global, a),
        Command::Copy(a) => registry::copy(&cli.global, a),
        Command::Tags(a) => registry::tags(&cli.global, a),
        Command::Login(a) => registry::login(&cli.global, a),
        Command::Logout(a) => registry::logout(&cli.global, a),
        Command::Doctor(a) => doctor::run(&cli.global, a),
        Command::Base(c) => base::run(&cli.global, c),
        Command::Build(a) => build::run(&cli.global, *a),
        Command::Check(a) => policy::check(&cli.global, a),
        Command::Size(a) => policy::size(&cli.global, a),
        Command::Scan(a) => scan::run(&cli.global, *a),
        Command::Db(c) => scan::db(&cli.global, c),
        Command::GenerateKeyPair(a) => sign::generate_key_pair(a),
        Command::Sign(a) => sign::sign(&cli.global, a),
        Command::Verify(a) => sign::verify(&cli.global, a),
        Command::Attest(a) => sign::attest(&cli.global, a),
        Command::VerifyAttestation(a) => sign::verify_attestation(&cli.global, a),
        Command::Sbom(a) => sbom::run(&cli.global, *a),
    }
}

/// The content store at --root / $OCIBUILD_ROOT / $XDG_CACHE_HOME/ocibuild.
pub fn open_store(g: &Global) -> Result<ContentStore> {
    let root: PathBuf = match &g.root {
        Some(r) => r.clone(),
        None => ContentStore::default_root()
            .context("no --root given and neither OCIBUILD_ROOT, XDG_CACHE_HOME nor HOME is set")?,
    };
    ContentStore::open(&root)
        .with_context(|| format!("opening the content store at {}", root.display()))
}

/// Write a small file (metadata) through a temp file and a rename.
pub fn write_file_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temp file in {}", dir.display()))?;
    tmp.write_all(bytes)?;
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
