use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, anyhow, bail};
use ocibuild_oci::Compression;
use ocibuild_oci::assemble::{AssembleSpec, ConfigEdits, LayerInput, assemble_into};
use ocibuild_oci::image::{Platform, load_image, rfc3339};
use ocibuild_oci::layout::{LayoutWriter, write_location};
use ocibuild_oci::reference::{Location, Reference};
use serde_json::json;

use super::open_store;
use crate::cli::{AssembleArgs, CompressionArg, Global};
use crate::output::{Reporter, human_size};

pub fn run(g: &Global, a: AssembleArgs) -> Result<ExitCode> {
    let rep = Reporter::new(g.progress);
    let store = open_store(g)?;
    let _lock = store.lock_shared()?;

    let platform = a.platform.as_deref().map(Platform::parse).transpose()?;
    let tags: Vec<Reference> = a
        .tags
        .iter()
        .map(|t| Reference::parse(t).with_context(|| format!("-t {t}")))
        .collect::<Result<_>>()?;
    let mut outputs: Vec<Location> = a
        .outputs
        .iter()
        .map(|o| Location::parse(o).with_context(|| format!("--output {o}")))
        .collect::<Result<_>>()?;
    for o in &mut outputs {
        apply_tag(o, tags.first());
    }
    let layers = a
        .layers
        .iter()
        .map(|l| parse_layer(l))
        .collect::<Result<Vec<_>>>()?;

    let mut labels = parse_kv(&a.labels, "--label")?;
    labels
        .entry("org.opencontainers.image.created".into())
        .or_insert_with(|| rfc3339(a.source_date_epoch));
    if let Some((rev, src)) = layers.first().and_then(|l| git_info(&l.src)) {
        labels
            .entry("org.opencontainers.image.revision".into())
            .or_insert(rev);
        if let Some(s) = src {
            labels
                .entry("org.opencontainers.image.source".into())
                .or_insert(s);
        }
    }
    let edits = ConfigEdits {
        entrypoint: a
            .entrypoint
            .as_deref()
            .map(|s| parse_command(s, "--entrypoint"))
            .transpose()?,
        cmd: a
            .cmd
            .as_deref()
            .map(|s| parse_command(s, "--cmd"))
            .transpose()?,
        env: parse_kv(&a.env, "--env")?.into_iter().collect(),
        workdir: a.workdir.clone(),
        user: a.user.clone(),
        labels,
        exposed_ports: a.expose.clone(),
        extra: Default::default(),
    };
    let owner = a.owner.as_deref().map(parse_owner).transpose()?;
    let compression = match a.compression {
        CompressionArg::Gzip => Compression::Gzip,
        CompressionArg::Zstd => Compression::Zstd,
        CompressionArg::None => Compression::None,
    };

    let base_loc = Location::parse(&a.base).with_context(|| format!("--base {}", a.base))?;
    let reg = super::registry::registry(g)?;
    let base_src = match &base_loc {
        Location::Scratch => None,
        loc => Some(
            super::registry::open_any(loc, &reg)
                .with_context(|| format!("opening the base image {}", a.base))?,
        ),
    };
    let base = match &base_src {
        Some(src) => {
            let img = load_image(src.as_ref(), platform.as_ref())
                .with_context(|| format!("reading the base image {}", src.describe()))?;
            rep.event(
                &format!("base {} ({})", src.describe(), img.manifest_desc.digest),
                json!({"event": "base", "image": src.describe(), "digest": img.manifest_desc.digest}),
            );
            Some((src.as_ref(), img))
        }
        None => None,
    };
    let spec = AssembleSpec {
        base,
        layers: layers.clone(),
        config: edits,
        annotations: parse_kv(&a.annotations, "--annotation")?,
        platform,
        compression,
        level: a.compression_level,
        source_date_epoch: a.source_date_epoch,
        owner,
        keep_modes: a.keep_modes,
        history: None,
    };
    // `oci:` outputs are written by the assemble itself: each new layer goes into the layout as
    // it is compressed, and the layouts' files are made durable with the store's.
    let layouts = open_layouts(&outputs)?;
    let built = assemble_into(&store, spec, layouts)?;
    for (((d, diff_id, reused), unread), input) in
        built.new_layers.iter().zip(&built.unread).zip(&layers)
    {
        let dest = format!("/{}", input.dest);
        let note = match (*unread, *reused) {
            (true, _) => " (reused: its files are unchanged, not read again)",
            (false, true) => " (already stored)",
            (false, false) => "",
        };
        rep.event(
            &format!("layer {} -> {dest}: {} {}{note}", input.src.display(), d.digest, human_size(d.size)),
            json!({"event": "layer", "src": input.src, "dest": dest, "digest": d.digest, "diff_id": diff_id, "size": d.size, "reused": reused, "unread": unread}),
        );
    }
    let img = &built.image;
    let src = built.source(&store);
    for (o, text) in outputs.iter().zip(&a.outputs) {
        if let Location::Registry(dest) = o {
            // the output's own tag, and every -t naming the same repository
            let same_repo: Vec<String> = tags
                .iter()
                .filter(|t| t.registry == dest.registry && t.repository == dest.repository)
                .filter_map(|t| t.tag.clone())
                .collect();
            let push_tags = ocibuild_registry::copy::push_tags(text, dest, &same_repo);
            let done = |d: &ocibuild_oci::Digest,
                        size: u64,
                        outcome: ocibuild_registry::client::BlobOutcome| {
                rep.event(
                    &format!("{outcome:?} {d} ({})", human_size(size)).to_lowercase(),
                    json!({"event": "blob", "digest": d, "size": size, "outcome": outcome}),
                );
            };
            let report = ocibuild_registry::copy::push(
                &reg,
                &src,
                dest,
                &ocibuild_registry::copy::PushOptions {
                    tags: &push_tags,
                    jobs: g.jobs,
                    mount_from: None,
                    on_blob: &done,
                    on_bytes: Some(&|d: &ocibuild_oci::Digest, n: u64, t: u64| rep.bytes(d, n, t)),
                },
            )
            .with_context(|| format!("pushing to {o}"))?;
            super::registry::report_tags(
                &rep,
                dest,
                &report.tags,
                &img.manifest_desc.digest.to_string(),
            );
            rep.event(
                &format!("pushed {o}"),
                json!({"event": "output", "location": o.to_string()}),
            );
            continue;
        }
        if !matches!(o, Location::Layout { .. }) {
            write_location(o, &src, img).with_context(|| format!("writing {o}"))?;
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
    let total: u64 = img.manifest.layers.iter().map(|l| l.size).sum::<u64>()
        + img.manifest.config.size
        + img.manifest_desc.size;
    if let Some(f) = &a.metadata_file {
        let layers_json: Vec<_> = img
            .manifest
            .layers
            .iter()
            .zip(img.diff_ids()?)
            .map(|(l, d)| json!({"digest": l.digest, "diff_id": d, "size": l.size, "mediaType": l.media_type}))
            .collect();
        let meta = json!({
            "containerimage.digest": img.manifest_desc.digest,
            "containerimage.config.digest": img.manifest.config.digest,
            "image.name": tags.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(","),
            "digest": img.manifest_desc.digest,
            "tags": tags.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
            "manifest": {"digest": img.manifest_desc.digest, "size": img.manifest_desc.size, "mediaType": img.manifest_desc.media_type},
            "config": {"digest": img.manifest.config.digest, "size": img.manifest.config.size},
            "layers": layers_json,
            "size": total,
            "outputs": outputs.iter().map(|o| o.to_string()).collect::<Vec<_>>(),
        });
        super::write_file_atomically(f, serde_json::to_vec_pretty(&meta)?.as_slice())
            .with_context(|| format!("writing --metadata-file {}", f.display()))?;
    }
    println!("{}", img.manifest_desc.digest);
    Ok(ExitCode::SUCCESS)
}

/// One locked writer for each layout directory among `outputs`, with every tag it gets (two
/// outputs naming the same directory, even by other paths, share one: a second lock on it would
/// wait for the first forever). They are locked in the order of their canonical paths, so two
/// processes writing the same layouts never wait for each other.
fn open_layouts(outputs: &[Location]) -> Result<Vec<LayoutWriter>> {
    let mut open: Vec<(PathBuf, LayoutWriter)> = Vec::new();
    for o in outputs {
        let Location::Layout { dir, tag } = o else {
            continue;
        };
        let w = LayoutWriter::create(dir).with_context(|| format!("writing {o}"))?;
        let c = std::fs::canonicalize(dir)
            .with_context(|| format!("resolving the output directory {}", dir.display()))?;
        match open.iter_mut().find(|(p, _)| *p == c) {
            // the same directory again: `w` created nothing, dropping it removes nothing
            Some((_, same)) => same.add_tag(tag.as_deref()),
            None => {
                let mut w = w;
                w.add_tag(tag.as_deref());
                open.push((c, w));
            }
        }
    }
    open.sort_by(|a, b| a.0.cmp(&b.0));
    let mut writers = Vec::with_capacity(open.len());
    for (c, mut w) in open {
        w.lock()
            .with_context(|| format!("locking the output directory {}", c.display()))?;
        writers.push(w);
    }
    Ok(writers)
}

fn apply_tag(o: &mut Location, tag: Option<&Reference>) {
    let Some(t) = tag else { return };
    match o {
        Location::Layout {
            tag: slot @ None, ..
        }
        | Location::OciArchive {
            tag: slot @ None, ..
        } => {
            *slot = Some(t.tag_or_latest().to_string());
        }
        Location::DockerArchive {
            reference: slot @ None,
            ..
        } => *slot = Some(t.clone()),
        _ => {}
    }
}

fn parse_layer(s: &str) -> Result<LayerInput> {
    let (src, dest) = match s.split_once(':') {
        Some((src, dest)) => (src, dest),
        None => (s, "/"),
    };
    if src.is_empty() {
        bail!(
            "--layer {s}: the source directory is empty; expected SRC_DIR[:DEST], like ./dist:/app"
        );
    }
    let src = PathBuf::from(src);
    let meta = std::fs::metadata(&src)
        .with_context(|| format!("--layer {s}: cannot read {}", src.display()))?;
    if !meta.is_dir() {
        bail!(
            "--layer {s}: {} is not a directory; put the file in a directory and add that",
            src.display()
        );
    }
    if !dest.starts_with('/') {
        bail!(
            "--layer {s}: the destination `{dest}` must be an absolute path in the image, like /app"
        );
    }
    let mut parts = Vec::new();
    for c in dest.split('/') {
        match c {
            "" | "." => {}
            ".." => bail!("--layer {s}: the destination may not contain `..`"),
            c => parts.push(c),
        }
    }
    Ok(LayerInput::new(src, parts.join("/")))
}

fn parse_kv(items: &[String], flag: &str) -> Result<BTreeMap<String, String>> {
    let mut m = BTreeMap::new();
    for it in items {
        let (k, v) = it
            .split_once('=')
            .ok_or_else(|| anyhow!("{flag} {it}: expected KEY=VALUE"))?;
        if k.is_empty() {
            bail!("{flag} {it}: the key is empty; expected KEY=VALUE");
        }
        m.insert(k.to_string(), v.to_string());
    }
    Ok(m)
}

/// A JSON array (`["/app","--port","80"]`), or plain words split on whitespace.
pub(crate) fn parse_command(s: &str, flag: &str) -> Result<Vec<String>> {
    let t = s.trim();
    if t.starts_with('[') {
        return serde_json::from_str::<Vec<String>>(t).with_context(|| {
            format!("{flag} {s}: looks like a JSON array but is not a valid array of strings")
        });
    }
    Ok(t.split_whitespace().map(str::to_string).collect())
}

fn parse_owner(s: &str) -> Result<(u32, u32)> {
    let bad = || anyhow!("--owner {s}: expected UID:GID as numbers, like 65532:65532");
    let (u, g) = s.split_once(':').unwrap_or((s, s));
    Ok((u.parse().map_err(|_| bad())?, g.parse().map_err(|_| bad())?))
}

/// (revision, source URL) when `dir` is inside a git checkout.
fn git_info(dir: &Path) -> Option<(String, Option<String>)> {
    // Starting git costs milliseconds of every assemble: only ask it when a `.git` is above `dir`
    // (or the environment points git elsewhere).
    if !in_git_checkout(dir) {
        return None;
    }
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let rev = git(&["rev-parse", "HEAD"])?;
    let src = git(&["config", "--get", "remote.origin.url"]).map(|u| strip_credentials(&u));
    Some((rev, src))
}

/// Whether `dir` or a parent holds `.git` (a directory, or a file for worktrees and submodules),
/// or `GIT_DIR` is set.
fn in_git_checkout(dir: &Path) -> bool {
    if std::env::var_os("GIT_DIR").is_some() {
        return true;
    }
    // physical parents, as git walks them (a symlink into a checkout is in it)
    let Ok(abs) = std::fs::canonicalize(dir) else {
        return true;
    };
    abs.ancestors()
        .any(|d| std::fs::symlink_metadata(d.join(".git")).is_ok())
}

/// Never put `user:token@` from a remote URL into an image.
fn strip_credentials(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((_, host))
                if !rest.split('/').next().unwrap_or("").is_empty()
                    && rest.find('@') < rest.find('/') =>
            {
                format!("{scheme}://{host}")
            }
            _ => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        assert_eq!(
            parse_command(r#"["/a", "b c"]"#, "x").unwrap(),
            vec!["/a", "b c"]
        );
        assert_eq!(parse_command("/a  b", "x").unwrap(), vec!["/a", "b"]);
        assert!(parse_command("[/a", "x").is_err());
    }

    #[test]
    fn credentials_are_stripped() {
        assert_eq!(
            strip_credentials("https://user:tok@example.test/a.git"),
            "https://example.test/a.git"
        );
        assert_eq!(
            strip_credentials("https://example.test/a@b.git"),
            "https://example.test/a@b.git"
        );
        assert_eq!(
            strip_credentials("git@example.test:a.git"),
            "git@example.test:a.git"
        );
    }

    #[test]
    fn owners() {
        assert_eq!(parse_owner("65532:65532").unwrap(), (65532, 65532));
        assert_eq!(parse_owner("1000").unwrap(), (1000, 1000));
        assert!(parse_owner("nobody").is_err());
    }
}
