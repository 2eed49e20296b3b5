//! One module per subcommand.

mod assemble;
mod cache;
mod inspect;
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
