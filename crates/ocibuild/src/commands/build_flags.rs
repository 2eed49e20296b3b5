//! `ocibuild build`'s flags that become [`ocibuild_engine::BuildOptions`] fields: the caches
//! (`--cache-from`/`--cache-to`, inline caches), `--offline`'s refusals, the CA bundle and proxy
//! variables steps see, the isolation tier, compression, and the outputs left out of the context.
//! Each is checked before anything is built: a usage error says so first.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use ocibuild_engine::zeroconfig::PROXY_VARS;
use ocibuild_oci::media::Compression;
use ocibuild_oci::reference::{Location, Reference};
use ocibuild_sandbox::probe::Isolation;
use ocibuild_sandbox::run::Tier;
use serde_json::json;

use crate::cli::{BuildArgs, CompressionArg, Global, IsolationArg};
use crate::output::Reporter;

/// Where the host's trust store usually is (Debian/Ubuntu, then Fedora/RHEL, then Alpine/SUSE).
const HOST_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
];

/// What the build writes that lies inside its context (`--output oci:DIR`/`oci-archive:FILE`/
/// `docker-archive:FILE`, `--iidfile`, `--metadata-file`), as paths relative to the context:
/// they are left out of the context, so the next identical build does not see them as new
/// files and runs nothing. Said once on stderr.
pub(super) fn outputs_in_context(a: &BuildArgs, ctx: &Path, rep: &Reporter) -> Vec<String> {
    let (out, said) = output_paths_in_context(a, ctx);
    if !said.is_empty() {
        rep.event(
            &format!(
                "left out of the build context because this build writes them: {}",
                said.join(", ")
            ),
            json!({"event": "context-exclude", "paths": out}),
        );
    }
    out
}

/// [`outputs_in_context`] without saying it: the paths, and each with the flag that names it.
pub(super) fn output_paths_in_context(a: &BuildArgs, ctx: &Path) -> (Vec<String>, Vec<String>) {
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for o in &a.outputs {
        match Location::parse(o) {
            Ok(Location::Layout { dir, .. }) => files.push((format!("--output {o}"), dir)),
            Ok(Location::OciArchive { file, .. } | Location::DockerArchive { file, .. }) => {
                files.push((format!("--output {o}"), file))
            }
            _ => {}
        }
    }
    if let Some(f) = &a.iidfile {
        files.push(("--iidfile".into(), f.clone()));
    }
    if let Some(f) = &a.metadata_file {
        files.push(("--metadata-file".into(), f.clone()));
    }
    if let Some(f) = &a.summary {
        files.push(("--summary".into(), f.clone()));
    }
    let mut out: Vec<String> = Vec::new();
    let mut said: Vec<String> = Vec::new();
    for (flag, p) in files {
        let Some(abs) = absolute(&p) else { continue };
        let Ok(rel) = abs.strip_prefix(ctx) else {
            continue;
        };
        let rel = rel.to_string_lossy().replace('\\', "/");
        if rel.is_empty() || out.contains(&rel) {
            continue;
        }
        said.push(format!("{rel} ({flag})"));
        out.push(rel);
    }
    (out, said)
}

/// `p` made absolute with symlinks resolved, also when it does not exist yet (its nearest
/// existing ancestor is resolved).
fn absolute(p: &Path) -> Option<PathBuf> {
    let p = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(p)
    };
    let mut rest: Vec<std::ffi::OsString> = Vec::new();
    let mut cur = p.as_path();
    loop {
        if let Ok(c) = cur.canonicalize() {
            let mut out = c;
            for r in rest.iter().rev() {
                if r == ".." {
                    out.pop();
                } else if r != "." {
                    out.push(r);
                }
            }
            return Some(out);
        }
        rest.push(
            cur.file_name()
                .map_or_else(|| "..".into(), |n| n.to_os_string()),
        );
        cur = cur.parent()?;
    }
}

/// A flag value with anything secret-looking (keys, SAS signatures) cut out, for messages.
pub(super) fn redact(s: &str) -> String {
    s.split(',')
        .map(|kv| match kv.split_once('=') {
            Some((k, _))
                if k.contains("key")
                    || k.contains("sas")
                    || k.contains("secret")
                    || k.contains("token") =>
            {
                format!("{k}=<redacted>")
            }
            _ if kv.contains("sig=") => "<redacted>".to_string(),
            _ => kv.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Caches opened from `--cache-from`.
pub(super) type CacheFrom<'r> = Vec<Box<dyn ocibuild_cache::CacheBackend + 'r>>;
/// Caches opened from `--cache-to`, with their mode and `ignore-error`.
pub(super) type CacheTo<'r> = Vec<(
    Box<dyn ocibuild_cache::CacheBackend + 'r>,
    ocibuild_cache::Mode,
    bool,
)>;

/// `--cache-from` and `--cache-to`, parsed (secrets redacted from errors), and whether an
/// inline cache is written (`--cache-to type=inline`, or docker's `--build-arg
/// BUILDKIT_INLINE_CACHE=1`, with `--push`): then the `--cache-to` list holds a registry cache
/// beside every pushed image ([`ocibuild_cache::CacheSpec::inline_for`]), and the image needs
/// the label [`ocibuild_cache::INLINE_LABEL`] that points to it.
pub(super) fn cache_specs(
    a: &BuildArgs,
) -> Result<(
    Vec<ocibuild_cache::CacheSpec>,
    Vec<ocibuild_cache::CacheSpec>,
    bool,
)> {
    let from = a
        .cache_from
        .iter()
        .map(|c| {
            ocibuild_cache::CacheSpec::parse(c, false)
                .with_context(|| format!("--cache-from {}", redact(c)))
        })
        .collect::<Result<Vec<_>>>()?;
    let from = if a.offline {
        // as docker's `--pull=never` for bases: a cache read over the network is left out
        // (said once); a local directory cache is still read
        let (local, remote): (Vec<_>, Vec<_>) = from
            .into_iter()
            .zip(&a.cache_from)
            .partition(|(s, _)| matches!(s.backend, ocibuild_cache::Backend::Local { .. }));
        for (_, c) in remote {
            eprintln!(
                "warning: --cache-from {} is ignored: the build is --offline and that cache is read over the network; the store's own step cache (and type=local caches) are used",
                redact(c)
            );
        }
        local.into_iter().map(|(s, _)| s).collect()
    } else {
        from
    };
    let mut to = Vec::new();
    let mut inline = None;
    for c in &a.cache_to {
        let s = ocibuild_cache::CacheSpec::parse(c, true)
            .with_context(|| format!("--cache-to {}", redact(c)))?;
        if s.backend == ocibuild_cache::Backend::Inline {
            inline = Some(s);
        } else {
            to.push(s);
        }
    }
    let inline_arg = a.build_args.iter().any(|b| {
        b.split_once('=')
            .is_some_and(|(k, v)| k == "BUILDKIT_INLINE_CACHE" && matches!(v.trim(), "1" | "true"))
    });
    if inline.is_none() && inline_arg {
        inline = Some(ocibuild_cache::CacheSpec::parse("type=inline", true)?);
    }
    let Some(inline) = inline else {
        return Ok((from, to, false));
    };
    if !a.push {
        eprintln!(
            "warning: an inline cache (--cache-to type=inline or --build-arg BUILDKIT_INLINE_CACHE=1) is written beside a pushed image; without --push nothing is exported"
        );
        return Ok((from, to, false));
    }
    for t in &a.tags {
        let r = Reference::parse(t).with_context(|| format!("-t {t}"))?;
        let spec = inline.inline_for(&r);
        if !to.contains(&spec) {
            to.push(spec);
        }
    }
    Ok((from, to, true))
}

/// `--offline` with a flag that needs the network is a usage error, said before any work:
/// pushing, a registry output, a cache exported over the network, `--pull always`.
pub(super) fn offline_usage(a: &BuildArgs) -> Result<()> {
    if !a.offline {
        return Ok(());
    }
    let mut bad: Vec<String> = Vec::new();
    if a.push {
        bad.push("--push".into());
    }
    for o in &a.outputs {
        if matches!(Location::parse(o), Ok(Location::Registry(_))) {
            bad.push(format!("--output {o}"));
        }
    }
    for c in &a.cache_to {
        if let Ok(s) = ocibuild_cache::CacheSpec::parse(c, true)
            && !matches!(s.backend, ocibuild_cache::Backend::Local { .. })
        {
            bad.push(format!("--cache-to {}", redact(c)));
        }
    }
    if a.pull == "always" {
        bad.push("--pull always".into());
    }
    if bad.is_empty() {
        return Ok(());
    }
    Err(crate::output::usage(format!(
        "--offline reaches no network, and {} need{} it; write the image to a local output (--output oci:DIR:TAG, oci-archive:FILE) and push it later with `ocibuild push`, export the cache to type=local,dest=DIR, and let --offline use the bases in the store (as --pull never)",
        bad.join(", "),
        if bad.len() == 1 { "s" } else { "" }
    )))
}

/// The registry client `type=registry` caches use (the build's auth and TLS settings).
pub(super) fn cache_registry(
    g: &Global,
    from: &[ocibuild_cache::CacheSpec],
    to: &[ocibuild_cache::CacheSpec],
) -> Result<Option<ocibuild_registry::client::Registry>> {
    if from
        .iter()
        .chain(to)
        .any(|s| matches!(s.backend, ocibuild_cache::Backend::Registry { .. }))
    {
        Ok(Some(super::registry::registry(g)?))
    } else {
        Ok(None)
    }
}

/// Open the caches the specs name.
pub(super) fn open_caches<'r>(
    from: &[ocibuild_cache::CacheSpec],
    to: &[ocibuild_cache::CacheSpec],
    reg: Option<&'r ocibuild_registry::client::Registry>,
) -> Result<(CacheFrom<'r>, CacheTo<'r>)> {
    let mut cache_from = Vec::new();
    for s in from {
        cache_from.push(ocibuild_cache::open(s, reg).with_context(|| format!("--cache-from {s}"))?);
    }
    let mut cache_to = Vec::new();
    for s in to {
        cache_to.push((
            ocibuild_cache::open(s, reg).with_context(|| format!("--cache-to {s}"))?,
            s.mode,
            s.ignore_error,
        ));
    }
    Ok((cache_from, cache_to))
}

/// `--build-ca`: the CA bundle bound into build steps.
pub(super) fn ca_bundle(a: &BuildArgs) -> Result<Option<PathBuf>> {
    Ok(match a.build_ca.as_str() {
        "none" => None,
        "host" => HOST_CA_BUNDLES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file()),
        f => {
            let p = Path::new(f)
                .canonicalize()
                .with_context(|| format!("--build-ca {f}: cannot read it"))?;
            let text = std::fs::read_to_string(&p)
                .with_context(|| format!("--build-ca {f}: cannot read it"))?;
            if !text.contains("-----BEGIN CERTIFICATE-----") {
                bail!("--build-ca {f}: not a PEM bundle (no BEGIN CERTIFICATE line)");
            }
            Some(p)
        }
    })
}

/// The host's proxy variables (unless `--no-proxy-env`) and `--build-env`.
pub(super) fn pass_env(a: &BuildArgs) -> Result<Vec<(String, String)>> {
    let mut pass_env: Vec<(String, String)> = Vec::new();
    if !a.no_proxy_env {
        for v in PROXY_VARS {
            if let Ok(val) = std::env::var(v) {
                pass_env.push(((*v).to_string(), val));
            }
        }
    }
    for e in &a.build_env {
        let (k, v) = e
            .split_once('=')
            .with_context(|| format!("--build-env {e}: expected KEY=VALUE"))?;
        pass_env.push((k.to_string(), v.to_string()));
    }
    Ok(pass_env)
}

pub(super) fn isolation(a: &BuildArgs) -> Isolation {
    match a.isolation {
        IsolationArg::Auto => Isolation::Auto {
            allow_host: a.allow_host,
        },
        IsolationArg::Userns => Isolation::Force(Tier::Userns),
        IsolationArg::Chroot => Isolation::Force(Tier::Chroot),
        IsolationArg::Host => Isolation::Force(Tier::Host),
    }
}

/// `--compression` and `--compression-level`, checked before anything is built.
pub(super) fn compression(a: &BuildArgs) -> Result<(Compression, Option<u32>)> {
    let c = match a.compression {
        CompressionArg::Gzip => Compression::Gzip,
        CompressionArg::Zstd => Compression::Zstd,
        CompressionArg::None => Compression::None,
    };
    if let Some(l) = a.compression_level {
        let range = match c {
            Compression::Gzip => 0..=9,
            Compression::Zstd => 1..=22,
            Compression::None => {
                return Err(crate::output::usage(format!(
                    "--compression-level {l}: --compression none has no level; drop one of the two"
                )));
            }
        };
        if !range.contains(&l) {
            return Err(crate::output::usage(format!(
                "--compression-level {l}: {} levels are {}..={}",
                c.name(),
                range.start(),
                range.end()
            )));
        }
    }
    Ok((c, a.compression_level))
}
