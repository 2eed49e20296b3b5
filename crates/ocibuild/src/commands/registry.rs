//! pull, push, copy, tags, login, logout — and opening any location, registries included.

use std::io::Read as _;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use ocibuild_oci::image::{ImageSource, Platform, load_image};
use ocibuild_oci::layout::{
    StoreSource, import_into_store_with, open_location, write_layout_root, write_location,
    write_oci_archive_root,
};
use ocibuild_oci::media;
use ocibuild_oci::reference::{Location, Reference};
use ocibuild_registry::auth::{KeychainOptions, Secret};
use ocibuild_registry::client::{
    BlobOutcome, RegistriesConfig, Registry, RegistryOptions, parse_mirror_flag,
};
use ocibuild_registry::config;
use ocibuild_registry::copy::{PushOptions, RegistrySource, push, push_tags};
use serde_json::json;

use super::open_store;
use crate::cli::{CopyArgs, Global, LoginArgs, LogoutArgs, PullArgs, PushArgs, TagsArgs};
use crate::output::{Reporter, human_size};

/// The registry client configured from the global flags and the environment.
pub fn registry(g: &Global) -> Result<Registry> {
    let mut keychain = KeychainOptions::from_process_env();
    if let Some(c) = &g.creds {
        let (u, p) = c
            .split_once(':')
            .ok_or_else(|| anyhow!("--creds: expected USER:PASSWORD"))?;
        keychain.creds = Some((u.to_string(), Secret::new(p.to_string())));
    }
    keychain.acr_hosts.extend(g.acr_hosts.iter().cloned());
    let mut insecure = g.insecure_registries.clone();
    let mut mirrors = Vec::new();
    // flags first, then the config file
    for m in &g.registry_mirrors {
        mirrors.push(parse_mirror_flag(m)?);
    }
    let default_cfg = std::env::var_os("XDG_CONFIG_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".config")))
        .map(|d| d.join("ocibuild/registries.json"))
        .filter(|p| p.is_file());
    if let Some(path) = g.registries_config.clone().or(default_cfg) {
        let cfg = RegistriesConfig::load(&path)?;
        mirrors.extend(cfg.mirrors);
        insecure.extend(cfg.insecure);
        keychain.acr_hosts.extend(cfg.acr_hosts);
    }
    let mut opts = RegistryOptions {
        insecure,
        ca_certs: g.ca_certs.clone(),
        keychain,
        mirrors,
        ..RegistryOptions::default()
    };
    // OCIBUILD_CERTS_D=DIR[:DIR…] replaces /etc/docker/certs.d and /etc/containers/certs.d
    // (each laid out as DIR/HOST[:PORT]/*.crt), for unprivileged users and tests.
    if let Some(dirs) = std::env::var_os("OCIBUILD_CERTS_D") {
        opts.cert_dirs = std::env::split_paths(&dirs)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
    }
    Ok(Registry::new(opts))
}

/// A bare `host/repo:tag` is accepted where only a registry makes sense.
fn registry_ref(s: &str, what: &str) -> Result<Reference> {
    match Location::parse(s) {
        Ok(Location::Registry(r)) => Ok(r),
        Ok(other) => {
            bail!("{what} must be a registry reference (docker://REGISTRY/REPO[:TAG]), not {other}")
        }
        Err(_) => Reference::parse(s).with_context(|| format!("{what} `{s}`")),
    }
}

/// Open any location as an image source; `reg` serves docker:// ones.
pub fn open_any<'r>(loc: &Location, reg: &'r Registry) -> Result<Box<dyn ImageSource + 'r>> {
    match loc {
        Location::Registry(r) => Ok(Box::new(
            RegistrySource::open(reg, r).with_context(|| format!("opening docker://{r}"))?,
        )),
        other => Ok(open_location(other).with_context(|| format!("opening {other}"))?),
    }
}

/// Write what `src` holds to a local location: the whole index when no platform is chosen and
/// the destination can hold one, else one image, imported into the store first (every digest,
/// size and diff_id verified).
pub fn write_local(
    g: &Global,
    rep: &Reporter,
    src: &dyn ImageSource,
    dest: &Location,
    platform: Option<&Platform>,
) -> Result<String> {
    let root = src.root()?;
    let whole = platform.is_none() && media::is_index(&root.media_type);
    match dest {
        Location::Layout { dir, tag } if whole => {
            let d = write_layout_root(dir, tag.as_deref(), src)?;
            return Ok(d.digest.to_string());
        }
        Location::OciArchive { file, tag } if whole => {
            let d = write_oci_archive_root(file, tag.as_deref(), src)?;
            return Ok(d.digest.to_string());
        }
        _ => {}
    }
    let store = open_store(g)?;
    let _lock = store.lock_shared()?;
    let img = load_image(src, platform).with_context(|| format!("reading {}", src.describe()))?;
    // A single-platform image is what it is: --platform must match it, never silently not.
    if let (Some(want), false) = (platform, media::is_index(&root.media_type)) {
        match img.platform() {
            Some(have) if want.matches(&have) => {}
            have => bail!(
                "{} has no image for {want}: it is a single-platform image, and the one platform it has is {} — pick that platform (or drop --platform), or use a multi-platform tag",
                src.describe(),
                have.map_or_else(
                    || "unknown (its config names no os/architecture)".to_string(),
                    |p| p.to_string()
                )
            ),
        }
    }
    let bf = |d: &ocibuild_oci::Digest, n: u64, t: u64| rep.bytes(d, n, t);
    import_into_store_with(src, &img, &store, g.jobs, Some(&bf))
        .with_context(|| format!("pulling {}", src.describe()))?;
    let from_store = StoreSource::new(store.clone(), img.manifest_desc.clone(), src.describe());
    write_location(dest, &from_store, &img).with_context(|| format!("writing {dest}"))?;
    Ok(img.manifest_desc.digest.to_string())
}

/// Write an image to any location: a push for `docker://`, else a local layout/archive.
/// Returns the manifest digest at the destination.
pub fn export(
    g: &Global,
    reg: &Registry,
    rep: &Reporter,
    src: &dyn ImageSource,
    img: &ocibuild_oci::image::Image,
    dest: &Location,
) -> Result<String> {
    match dest {
        Location::Registry(r) => {
            let pf = progress_fn(rep);
            let bf = |d: &ocibuild_oci::Digest, n: u64, t: u64| rep.bytes(d, n, t);
            let report = push(
                reg,
                src,
                r,
                &PushOptions {
                    tags: &[],
                    jobs: g.jobs,
                    mount_from: None,
                    on_blob: &pf,
                    on_bytes: Some(&bf),
                },
            )
            .with_context(|| format!("pushing {} to docker://{r}", src.describe()))?;
            Ok(report.digest.map(|d| d.to_string()).unwrap_or_default())
        }
        Location::Scratch => bail!("cannot write an image to `scratch`"),
        local => {
            write_location(local, src, img).with_context(|| format!("writing {local}"))?;
            Ok(img.manifest_desc.digest.to_string())
        }
    }
}

fn progress_fn(rep: &Reporter) -> impl Fn(&ocibuild_oci::Digest, u64, BlobOutcome) + Sync + '_ {
    move |d, size, outcome| {
        let word = match outcome {
            BlobOutcome::Existed => "exists",
            BlobOutcome::Mounted => "mounted",
            BlobOutcome::Uploaded => "pushed",
        };
        rep.event(
            &format!("{word} {} ({})", d, human_size(size)),
            json!({"event": "blob", "digest": d, "size": size, "outcome": outcome}),
        );
    }
}

pub fn pull(g: &Global, a: PullArgs) -> Result<ExitCode> {
    let rep = Reporter::new(g.progress);
    let reg = registry(g)?;
    let r = registry_ref(&a.image, "the image to pull")?;
    let platform = a.platform.as_deref().map(Platform::parse).transpose()?;
    let src = RegistrySource::open(&reg, &r).with_context(|| format!("pulling docker://{r}"))?;
    let mut digest = String::new();
    for o in &a.outputs {
        let dest = Location::parse(o).with_context(|| format!("--output {o}"))?;
        if matches!(dest, Location::Registry(_)) {
            bail!("--output {o}: pull writes local images; use `ocibuild copy` between registries");
        }
        digest = write_local(g, &rep, &src, &dest, platform.as_ref())?;
        rep.event(
            &format!("wrote {dest}"),
            json!({"event": "output", "location": dest.to_string(), "digest": digest}),
        );
    }
    println!("{digest}");
    Ok(ExitCode::SUCCESS)
}

pub fn push_cmd(g: &Global, a: PushArgs) -> Result<ExitCode> {
    let rep = Reporter::new(g.progress);
    let reg = registry(g)?;
    let dest = registry_ref(&a.destination, "the push destination")?;
    let loc =
        Location::parse(&a.source).with_context(|| format!("the push source `{}`", a.source))?;
    let src = open_any(&loc, &reg)?;
    let mount = match &loc {
        Location::Registry(r) if r.registry == dest.registry => Some(r.repository.clone()),
        _ => None,
    };
    let pf = progress_fn(&rep);
    let bf = |d: &ocibuild_oci::Digest, n: u64, t: u64| rep.bytes(d, n, t);
    let tags = push_tags(&a.destination, &dest, &a.tags);
    let report = push(
        &reg,
        src.as_ref(),
        &dest,
        &PushOptions {
            tags: &tags,
            jobs: g.jobs,
            mount_from: mount.as_deref(),
            on_blob: &pf,
            on_bytes: Some(&bf),
        },
    )
    .with_context(|| format!("pushing {} to docker://{dest}", src.describe()))?;
    // signatures, attestations, SBOMs and other referrers go along
    super::sign::carry_artifacts(
        &reg,
        &rep,
        &loc,
        &Location::Registry(dest.clone()),
        src.as_ref(),
    )?;
    let digest = report
        .digest
        .as_ref()
        .map(|d| d.to_string())
        .unwrap_or_default();
    report_tags(&rep, &dest, &report.tags, &digest);
    if let Some(f) = &a.metadata_file {
        let meta = json!({"containerimage.digest": digest, "image.name": report.tags.iter().map(|t| format!("{}/{}:{t}", dest.registry, dest.repository)).collect::<Vec<_>>().join(","), "push": report});
        super::write_file_atomically(f, &serde_json::to_vec_pretty(&meta)?)?;
    }
    println!("{digest}");
    Ok(ExitCode::SUCCESS)
}

/// One `tagged REGISTRY/REPO:TAG` line per tag pushed.
pub fn report_tags(rep: &Reporter, dest: &Reference, tags: &[String], digest: &str) {
    for t in tags {
        let sep = if t.contains(':') { "@" } else { ":" };
        rep.event(
            &format!("tagged {}/{}{sep}{t}", dest.registry, dest.repository),
            json!({"event": "tag", "tag": t, "digest": digest}),
        );
    }
}

pub fn copy(g: &Global, a: CopyArgs) -> Result<ExitCode> {
    let rep = Reporter::new(g.progress);
    let reg = registry(g)?;
    let from =
        Location::parse(&a.source).with_context(|| format!("the copy source `{}`", a.source))?;
    let to = Location::parse(&a.destination)
        .with_context(|| format!("the copy destination `{}`", a.destination))?;
    let src = open_any(&from, &reg)?;
    let digest = match &to {
        Location::Registry(dest) => {
            let mount = match &from {
                Location::Registry(r) if r.registry == dest.registry => Some(r.repository.clone()),
                _ => None,
            };
            let pf = progress_fn(&rep);
            let bf = |d: &ocibuild_oci::Digest, n: u64, t: u64| rep.bytes(d, n, t);
            let tags = push_tags(&a.destination, dest, &[]);
            let report = push(
                &reg,
                src.as_ref(),
                dest,
                &PushOptions {
                    tags: &tags,
                    jobs: g.jobs,
                    mount_from: mount.as_deref(),
                    on_blob: &pf,
                    on_bytes: Some(&bf),
                },
            )
            .with_context(|| format!("copying {} to docker://{dest}", src.describe()))?;
            let digest = report.digest.map(|d| d.to_string()).unwrap_or_default();
            report_tags(&rep, dest, &report.tags, &digest);
            digest
        }
        Location::Scratch => bail!("cannot copy to `scratch`"),
        local => write_local(g, &rep, src.as_ref(), local, None)?,
    };
    // signatures, attestations, SBOMs and other referrers go along
    super::sign::carry_artifacts(&reg, &rep, &from, &to, src.as_ref())?;
    rep.event(
        &format!("copied {} to {to}", src.describe()),
        json!({"event": "copied", "digest": digest}),
    );
    println!("{digest}");
    Ok(ExitCode::SUCCESS)
}

pub fn tags(g: &Global, a: TagsArgs) -> Result<ExitCode> {
    let reg = registry(g)?;
    let r = registry_ref(&a.repository, "the repository")?;
    let mut tags = reg
        .list_tags(r.api_registry(), &r.repository)
        .with_context(|| format!("listing tags of {}/{}", r.registry, r.repository))?;
    // registries list tags in their own order (lexical at best: 1, 10, 2): sort them as
    // people number builds, numbers by value
    tags.sort_by(|a, b| natural_cmp(a, b));
    tags.dedup();
    if a.json {
        println!(
            "{}",
            json!({"repository": format!("{}/{}", r.registry, r.repository), "tags": tags})
        );
    } else {
        for t in tags {
            println!("{t}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn login(g: &Global, a: LoginArgs) -> Result<ExitCode> {
    let username = match &a.username {
        Some(u) => u.clone(),
        None => bail!("login needs -u USERNAME (and the password on stdin with --password-stdin)"),
    };
    let password = match (&a.password, a.password_stdin) {
        (Some(_), true) => bail!("--password and --password-stdin are mutually exclusive"),
        (Some(p), false) => p.clone(),
        (None, true) => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("reading the password from stdin")?;
            s.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => {
            bail!("give the password with --password-stdin (or -p, which shows in `ps`)")
        }
    };
    if password.is_empty() {
        bail!("the password is empty");
    }
    let secret = Secret::new(password);
    // Check the credentials against the registry before storing them, as docker does.
    let mut kg = g.clone();
    kg.creds = Some(format!("{username}:{}", secret.expose()));
    let reg = registry(&kg)?;
    reg.check_login(&a.registry)
        .with_context(|| format!("logging in to {}", a.registry))?;
    let env = KeychainOptions::from_process_env().env;
    let path = config::docker_config_path(&env);
    let stored = config::login(&path, &a.registry, &username, &secret, &env)
        .with_context(|| format!("storing credentials in {}", path.display()))?;
    eprintln!("Login Succeeded ({stored})");
    Ok(ExitCode::SUCCESS)
}

pub fn logout(_g: &Global, a: LogoutArgs) -> Result<ExitCode> {
    let env = KeychainOptions::from_process_env().env;
    let path = config::docker_config_path(&env);
    if config::logout(&path, &a.registry, &env)? {
        eprintln!("Removed login credentials for {}", a.registry);
    } else {
        eprintln!("Not logged in to {}", a.registry);
    }
    Ok(ExitCode::SUCCESS)
}

/// Natural order: runs of digits compare by value (`2` < `10`), the rest as text.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn chunks(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = s.as_bytes();
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
                out.push((bytes[start].is_ascii_digit(), &s[start..i]));
                start = i;
            }
        }
        out
    }
    let (ca, cb) = (chunks(a), chunks(b));
    for ((da, x), (db, y)) in ca.iter().zip(cb.iter()) {
        let o = if *da && *db {
            let (xt, yt) = (x.trim_start_matches('0'), y.trim_start_matches('0'));
            xt.len().cmp(&yt.len()).then_with(|| xt.cmp(yt))
        } else {
            x.cmp(y)
        };
        if o != std::cmp::Ordering::Equal {
            return o;
        }
    }
    ca.len().cmp(&cb.len()).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    #[test]
    fn tags_sort_numbers_by_value() {
        let mut t = vec!["latest", "10", "2", "1.10.0", "1.9.1", "v2", "1", "v10"];
        t.sort_by(|a, b| super::natural_cmp(a, b));
        assert_eq!(
            t,
            ["1", "1.9.1", "1.10.0", "2", "10", "latest", "v2", "v10"]
        );
    }
}
