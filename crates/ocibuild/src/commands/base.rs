//! `ocibuild base build|lock|list`: distroless bases and toolchain roots from Debian packages.

use std::process::ExitCode;

use anyhow::{Context, Result};
use ocibuild_debian::apt::{Release, parse_apt_source_flag};
use ocibuild_debian::base::{
    BaseOptions, build_base, lock_base, parse_profile_spec, profile_chain, profiles,
};
use ocibuild_oci::layout::write_location;
use ocibuild_oci::reference::Location;
use ocibuild_oci::store::ContentStore;
use serde_json::json;

use super::open_store;
use crate::cli::{BaseBuildArgs, BaseCommand, BaseListArgs, BaseLockArgs, BaseSelectArgs, Global};
use crate::output::{Reporter, human_size, plural};

/// Google distroless's published compressed sizes, for comparison.
pub const DISTROLESS_SIZES: &[(&str, &str)] = &[
    ("static", "≈2 MiB"),
    ("cc", "≈20 MB (base)"),
    ("nodejs", "≈55 MB"),
    ("python3", "≈50 MB"),
    ("java", "≈230 MB uncompressed"),
];

pub fn run(g: &Global, c: BaseCommand) -> Result<ExitCode> {
    match c {
        BaseCommand::Build(a) => build(g, a),
        BaseCommand::Lock(a) => lock(g, a),
        BaseCommand::List(a) => list(a),
    }
}

fn options(g: &Global, store: Option<&ContentStore>, s: &BaseSelectArgs) -> Result<BaseOptions> {
    let (profile, variant) = parse_profile_spec(&s.profile)?;
    let cache_dir = match (&s.cache_dir, store) {
        (Some(d), _) => d.clone(),
        (None, Some(st)) => st.root().join("debian"),
        (None, None) => open_store(g)?.root().join("debian"),
    };
    std::fs::create_dir_all(&cache_dir)
        .with_context(|| format!("creating the package cache {}", cache_dir.display()))?;
    let mut o = BaseOptions::new(&profile, cache_dir);
    o.variant = variant;
    o.release = s.distro.parse()?;
    o.arch = s.arch.clone();
    o.offline = s.offline;
    o.backports = s.backports;
    o.extra_packages = s
        .packages
        .iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    o.apt_sources = s
        .apt_sources
        .iter()
        .map(|a| parse_apt_source_flag(a))
        .collect::<Result<_, _>>()?;
    Ok(o)
}

fn build(g: &Global, a: BaseBuildArgs) -> Result<ExitCode> {
    let rep = Reporter::new(g.progress);
    let store = open_store(g)?;
    let _lock = store.lock_shared()?;
    let outputs: Vec<Location> = a
        .outputs
        .iter()
        .map(|o| Location::parse(o).with_context(|| format!("--output {o}")))
        .collect::<Result<_>>()?;
    let mut opts = options(g, Some(&store), &a.select)?;
    opts.lock = a.lock.clone();
    opts.source_date_epoch = a.source_date_epoch;
    opts.progress = crate::output::base_progress(g.progress, &a.select.profile);
    let built = build_base(&store, &opts).with_context(|| {
        format!(
            "building base {} ({})",
            a.select.profile,
            if a.lock.is_some() {
                "from the lockfile"
            } else {
                "resolving"
            }
        )
    })?;
    for l in &built.layers {
        rep.event(
            &format!(
                "layer {}: {}, {} compressed, {} uncompressed{}",
                l.name,
                plural(l.packages, "package"),
                human_size(l.descriptor.size),
                human_size(l.uncompressed_size),
                if l.reused { " (reused)" } else { "" }
            ),
            json!({"event": "layer", "name": l.name, "packages": l.packages, "digest": l.descriptor.digest,
                   "diff_id": l.diff_id, "size": l.descriptor.size, "uncompressed_size": l.uncompressed_size, "reused": l.reused}),
        );
    }
    let src = built.source(&store);
    let reg = if outputs.iter().any(|o| matches!(o, Location::Registry(_))) {
        Some(super::registry::registry(g)?)
    } else {
        None
    };
    for o in &outputs {
        match &reg {
            Some(reg) => {
                super::registry::export(g, reg, &rep, &src, &built.image, o)?;
            }
            None => {
                write_location(o, &src, &built.image).with_context(|| format!("writing {o}"))?;
            }
        }
        rep.event(
            &format!("wrote {o}"),
            json!({"event": "output", "location": o.to_string()}),
        );
    }
    if outputs.is_empty() {
        rep.event(
            "no --output given: the image is only in the content store; add --output oci:DIR:TAG to write it",
            json!({"event": "warning", "message": "no output"}),
        );
    }
    let theirs = DISTROLESS_SIZES
        .iter()
        .find(|(n, _)| *n == built.lock.profile)
        .map(|(_, s)| format!(" (distroless: {s})"))
        .unwrap_or_default();
    rep.event(
        &format!(
            "size: {} compressed, {} uncompressed{theirs}",
            human_size(built.compressed_size),
            human_size(built.uncompressed_size)
        ),
        json!({"event": "size", "compressed": built.compressed_size, "uncompressed": built.uncompressed_size}),
    );
    // stdout is the digest alone, so `$(ocibuild base build …)` captures one line; the size
    // goes to stderr for scripts that want it
    eprintln!("compressed-size: {}", built.compressed_size);
    println!("{}", built.image.manifest_desc.digest);
    Ok(ExitCode::SUCCESS)
}

fn lock(g: &Global, a: BaseLockArgs) -> Result<ExitCode> {
    let opts = options(g, None, &a.select)?;
    let l = lock_base(&opts).with_context(|| format!("locking base {}", a.select.profile))?;
    l.save(&a.output)
        .with_context(|| format!("writing {}", a.output.display()))?;
    let n = l.packages().count();
    let size: u64 = l.packages().map(|p| p.size).sum();
    eprintln!(
        "locked {} for {} {}: {} ({} of .debs) in {}",
        a.select.profile,
        l.release,
        l.arch,
        plural(n, "package"),
        human_size(size),
        plural(l.layers.len(), "layer")
    );
    println!("{}", a.output.display());
    Ok(ExitCode::SUCCESS)
}

fn list(a: BaseListArgs) -> Result<ExitCode> {
    let rel: Release = a.distro.parse()?;
    let all = profiles()?;
    let mut out = Vec::new();
    for (name, p) in &all {
        let chain = profile_chain(name)?;
        let parents: Vec<&str> = chain[..chain.len() - 1]
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        if a.json {
            out.push(json!({
                "name": name, "description": p.description, "base": p.base,
                "packages": p.packages_for(rel), "exclude": p.exclude, "toolchain": p.toolchain,
            }));
        } else {
            println!(
                "{name}{}{}: {}\n    packages ({rel}): {}\n    exclude: {}",
                if p.toolchain { " (toolchain)" } else { "" },
                if parents.is_empty() {
                    String::new()
                } else {
                    format!(" [on {}]", parents.join(" → "))
                },
                p.description,
                p.packages_for(rel).join(" "),
                p.exclude.join(" ")
            );
        }
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("\nvariants: NAME:nonroot (USER 65532), NAME:debug (busybox sh)");
    }
    Ok(ExitCode::SUCCESS)
}
