//! `--offline`: a build that reaches no network, checked before any step runs.
//!
//! The preflight walks the build graph (a Dockerfile's, or a zero-config plan lowered to one)
//! and collects everything the build would have to fetch, then reports it all at once:
//!
//! - every `FROM ocibuild:…` base of a needed stage: its lock (from the store's lock cache, a
//!   `--base-lock`, or the cached signed indexes), then, unless the base is built in the store
//!   already, each of its Debian packages in the package cache by the locked SHA-256;
//! - every registry base: pulled into this store before (`--pull never` semantics: the
//!   reference's remembered digest, with all its blobs);
//! - every `ADD https://…` (a download's content is part of the step's key, so it is fetched on
//!   every build);
//! - then, when every base is there, the steps that are not in the step cache and would run
//!   (a walk of the graph that runs nothing, as `cache warm` does). Such steps run without the
//!   network. In a zero-config graph, a download step (`npm ci`, `pip install`, …) that must run
//!   is only possible from a warm cache mount of a tool that has an offline mode (npm, Go); any
//!   other is reported.
//!
//! Nothing is fetched and nothing runs before the report. RUN steps' cache keys are the ones an
//! online build gives (the network switch of `--offline` is not an input): a warm store built
//! online gives the same image offline.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ocibuild_dockerfile::{BaseRef, Dockerfile, InstructionKind, MountType, StagePlan};
use ocibuild_oci::image::Platform;

use crate::error::{EngineError, Result};

/// How an offline build treats the steps that must run.
#[derive(Clone, Debug, Default)]
pub struct Offline {
    /// The graph is a zero-config plan's, whose download steps the builders know: a download
    /// step that must run and cannot run from a warm cache is a missing item. Otherwise (a
    /// Dockerfile) such steps run without the network, and one that tries to download fails
    /// with a hint that names `--offline`.
    pub strict_downloads: bool,
}

/// The variables that make download tools work from their caches (set in the steps of an
/// offline zero-config build; never part of a cache key).
pub const OFFLINE_ENV: &[(&str, &str)] = &[("npm_config_offline", "true"), ("GOPROXY", "off")];

/// Something an offline build would need that is not on this machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Missing {
    /// A native base whose packages could not be locked from the cached indexes.
    Lock { base: String, detail: String },
    /// A Debian package of a native base that is neither built in the store nor in the package
    /// cache.
    Package {
        base: String,
        /// The base's release and architecture (`trixie`, `amd64`).
        release: String,
        base_arch: String,
        name: String,
        version: String,
        arch: String,
        sha256: String,
    },
    /// A registry base never pulled into this store.
    Image {
        base: String,
        platform: String,
        at: String,
    },
    /// `ADD <url>`.
    Url { at: String, url: String },
    /// A step that is not in the step cache and cannot run without the network.
    Step { at: String, why: String },
}

/// A filesystem step a walk found not in the cache: it (and the rest of its stage) would run.
#[derive(Clone, Debug)]
pub(crate) struct WouldRun {
    /// `[stage n/m] INSTRUCTION`.
    pub label: String,
    pub kind: InstructionKind,
}

/// The static part of the preflight: the bases, images (`FROM`, `COPY --from`,
/// `RUN --mount=from=`; a registry one through [`crate::df::ImageResolver::in_store`]) and
/// `ADD` URLs of the stages the build needs. `stage_platform` gives a stage's platform.
pub(crate) fn check_sources(
    o: &crate::df::Options<'_>,
    df: &Dockerfile,
    plan: &StagePlan,
    stage_platform: &dyn Fn(usize) -> Result<Platform>,
) -> Result<Vec<Missing>> {
    let file = o.dockerfile.display().to_string();
    let mut missing = Vec::new();
    let mut seen: Vec<(String, String)> = Vec::new();
    // an image a stage needs (FROM, COPY --from, RUN --mount=from=): native, local or registry
    let mut image = |name: &str, platform: &Platform, at: String| -> Result<()> {
        let reference = match o.contexts.get(name) {
            Some(crate::df::NamedContext::Image(r)) => r.clone(),
            // a directory context is local (and the executor's error to give under FROM)
            Some(crate::df::NamedContext::Dir(_)) => return Ok(()),
            None => name.to_string(),
        };
        let memo = (reference.clone(), crate::df::plat_str(platform));
        if seen.contains(&memo) || is_local(&reference) {
            return Ok(());
        }
        seen.push(memo);
        if let Some(spec) = reference.strip_prefix(crate::df::native::PREFIX) {
            if let Some(nb) = &o.native {
                let r = crate::df::native::parse(spec)?;
                missing.extend(nb.offline_missing(&r, &platform.architecture));
            }
            return Ok(());
        }
        let r = reference
            .strip_prefix("docker-image://")
            .unwrap_or(&reference);
        let r = r.strip_prefix("docker://").unwrap_or(r);
        if !o.resolver.in_store(r, platform) {
            missing.push(Missing::Image {
                base: r.to_string(),
                platform: crate::df::plat_str(platform),
                at,
            });
        }
        Ok(())
    };
    let mut urls = Vec::new();
    for (i, ps) in plan.stages.iter().enumerate() {
        if !ps.needed {
            continue;
        }
        let platform = stage_platform(i)?;
        if let BaseRef::Image(name) = &ps.base {
            image(
                name,
                &platform,
                format!("{file}:{}", df.stages[i].span.line),
            )?;
        }
        for ins in &df.stages[i].instructions {
            let at = format!("{file}:{}", ins.span.line);
            let from: Vec<&str> = match &ins.kind {
                InstructionKind::Copy(a) | InstructionKind::Add(a) => {
                    a.from.iter().map(String::as_str).collect()
                }
                InstructionKind::Run(r) => {
                    r.mounts.iter().filter_map(|m| m.from.as_deref()).collect()
                }
                _ => Vec::new(),
            };
            for f in from {
                // an ARG in --from is the executor's to expand; stages are local
                if !f.contains('$') && df.find_stage(f).is_none() {
                    image(f, &o.platform, at.clone())?;
                }
            }
            if let InstructionKind::Add(a) = &ins.kind {
                for s in &a.sources {
                    if s.starts_with("http://") || s.starts_with("https://") {
                        urls.push(Missing::Url {
                            at: at.clone(),
                            url: redact_url(s),
                        });
                    }
                }
            }
        }
    }
    missing.extend(urls);
    Ok(missing)
}

fn is_local(reference: &str) -> bool {
    ["oci-layout://", "oci:", "oci-archive:", "docker-archive:"]
        .iter()
        .any(|p| reference.starts_with(p))
}

/// The steps a walk found would run: in a strict (zero-config) graph, each download step that
/// cannot run from a warm cache is missing; the rest run without the network. Returns the
/// missing items and the labels of the steps that will run.
pub(crate) fn check_steps(
    off: &Offline,
    would: &[WouldRun],
    cache_dir_of: &dyn Fn(&str) -> PathBuf,
) -> (Vec<Missing>, Vec<String>) {
    let mut missing = Vec::new();
    let mut run = Vec::new();
    for w in would {
        run.push(w.label.clone());
        let InstructionKind::Run(r) = &w.kind else {
            continue;
        };
        if matches!(r.network, Some(ocibuild_dockerfile::Network::None)) || !off.strict_downloads {
            continue;
        }
        let caches: Vec<(String, PathBuf)> = r
            .mounts
            .iter()
            .filter(|m| m.kind == MountType::Cache)
            .filter_map(|m| {
                let id = m.id.clone().or_else(|| m.target.clone())?;
                Some((m.target.clone().unwrap_or_default(), cache_dir_of(&id)))
            })
            .collect();
        let tool = tool_of(&r.command);
        let warm = |target: &str| {
            caches
                .iter()
                .find(|(t, _)| t == target)
                .is_some_and(|(_, d)| is_warm(d))
        };
        let (tool, ok, cache) = match tool {
            Some("npm") => ("npm", warm("/root/.npm"), Some("/root/.npm")),
            Some("go") => ("go", warm("/root/go/pkg/mod"), Some("/root/go/pkg/mod")),
            Some(t) => (t, false, None),
            None => ("a program", false, None),
        };
        if ok {
            continue;
        }
        let why = match cache {
            Some(c) => format!(
                "it runs {tool}, which downloads dependencies, and {tool}'s cache ({c}, a cache mount) is empty in this store, so it cannot run from it offline"
            ),
            None => format!(
                "it runs {tool}, which downloads dependencies and cannot install from its cache without the network"
            ),
        };
        missing.push(Missing::Step {
            at: w.label.clone(),
            why,
        });
    }
    (missing, run)
}

/// The download tool a RUN command runs (`npm`, `go`, `pip`, `yarn`, `pnpm`, `mvn`): its first
/// word that names one, leaving out variable assignments and quotes.
fn tool_of(c: &ocibuild_dockerfile::Command) -> Option<&'static str> {
    let text = match c {
        ocibuild_dockerfile::Command::Shell(s) => s.clone(),
        ocibuild_dockerfile::Command::Exec(v) => v.join(" "),
    };
    text.split_whitespace()
        .map(|w| w.trim_matches(|c: char| "'\"();&|".contains(c)))
        .filter(|w| !w.contains('='))
        .map(|w| w.rsplit('/').next().unwrap_or(w))
        .find_map(|w| match w {
            "npm" => Some("npm"),
            "go" => Some("go"),
            "pip" | "pip3" => Some("pip"),
            "yarn" => Some("yarn"),
            "pnpm" => Some("pnpm"),
            "mvn" => Some("mvn"),
            _ => None,
        })
}

/// A cache mount's directory holds something.
fn is_warm(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some())
}

/// A URL without credentials, for messages.
fn redact_url(u: &str) -> String {
    match (u.find("://"), u.find('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &u[..s], &u[at + 1..]),
        _ => u.to_string(),
    }
}

/// `ocibuild base build` for a native base reference (`ocibuild:PROFILE[:VARIANT][+A,B]`):
/// what fills the package cache with its packages.
fn base_build_command(base: &str, release: &str, arch: &str, cache_dir: Option<&Path>) -> String {
    let spec = base.strip_prefix(crate::df::native::PREFIX).unwrap_or(base);
    let (head, list) = spec.split_once('+').unwrap_or((spec, ""));
    let mut c = format!("ocibuild base build --profile {head}");
    let mut backports = false;
    let pkgs: Vec<&str> = list
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('/') {
            Some((n, _)) => {
                backports = true;
                n
            }
            None => p,
        })
        .collect();
    if !pkgs.is_empty() {
        let _ = write!(c, " --packages {}", pkgs.join(","));
    }
    if backports {
        c.push_str(" --backports");
    }
    let _ = write!(c, " --distro {release} --arch {arch}");
    if let Some(d) = cache_dir {
        let _ = write!(c, " --cache-dir {}", d.display());
    }
    c
}

/// The error that lists every missing item, grouped, each group with what to run while online.
/// `steps_checked`: whether the walk of the steps ran (it needs every base).
pub(crate) fn report(
    missing: &[Missing],
    cache_dir: Option<&Path>,
    steps_checked: bool,
) -> EngineError {
    let mut d = String::from(
        "the build needs what is not on this machine; nothing was fetched and no step ran:",
    );
    // native bases: locks, then packages per base
    let mut bases: Vec<&str> = Vec::new();
    for m in missing {
        if let Missing::Lock { base, .. } | Missing::Package { base, .. } = m
            && !bases.contains(&base.as_str())
        {
            bases.push(base);
        }
    }
    for b in &bases {
        for m in missing {
            if let Missing::Lock { base, detail } = m
                && base == b
            {
                let _ = write!(
                    d,
                    "\n  {b}: its packages cannot be resolved offline: {detail}\n    fix: while online, run `ocibuild base lock --profile {} --output FILE` and pass --base-lock FILE, or run this build once without --offline",
                    b.strip_prefix(crate::df::native::PREFIX).unwrap_or(b)
                );
            }
        }
        let pkgs: Vec<&Missing> = missing
            .iter()
            .filter(|m| matches!(m, Missing::Package { base, .. } if base == b))
            .collect();
        if !pkgs.is_empty() {
            let _ = write!(
                d,
                "\n  {b}: {} Debian package{} not in the package cache{}:",
                pkgs.len(),
                if pkgs.len() == 1 { "" } else { "s" },
                cache_dir
                    .map(|c| format!(" {}", c.display()))
                    .unwrap_or_default()
            );
            for p in &pkgs {
                if let Missing::Package {
                    name,
                    version,
                    arch,
                    sha256,
                    ..
                } = p
                {
                    let _ = write!(d, "\n    {name}_{version}_{arch}.deb (sha256:{sha256})");
                }
            }
            let fill = match pkgs[0] {
                Missing::Package {
                    release, base_arch, ..
                } => base_build_command(b, release, base_arch, cache_dir),
                _ => String::new(),
            };
            let _ = write!(
                d,
                "\n    fix: while online, run this build once without --offline, or `{fill}`, to fill the package cache"
            );
        }
    }
    for m in missing {
        match m {
            Missing::Image { base, platform, at } => {
                let _ = write!(
                    d,
                    "\n  {at}: image {base} ({platform}) was never pulled into this store, and --offline pulls nothing (as --pull never)\n    fix: while online, build once with --pull missing (the store remembers the image), or `ocibuild pull docker://{base} --output oci:DIR:TAG` and build FROM oci:DIR:TAG"
                );
            }
            Missing::Url { at, url } => {
                let _ = write!(
                    d,
                    "\n  {at}: ADD {url} downloads on every build (the download is the step's input)\n    fix: download it into the build context while online and COPY it"
                );
            }
            Missing::Step { at, why } => {
                let _ = write!(
                    d,
                    "\n  {at}: not in the step cache: {why}\n    fix: while online, run this build once (or `ocibuild cache warm --from …` from a shared cache) so the step is cached"
                );
            }
            Missing::Lock { .. } | Missing::Package { .. } => {}
        }
    }
    if !steps_checked {
        d.push_str(
            "\n  (the steps were not checked: they need the bases above; once those are here, a step that must download is reported too)",
        );
    }
    EngineError::Invalid {
        what: "--offline".into(),
        detail: d,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn run_of(text: &str) -> WouldRun {
        let df =
            ocibuild_dockerfile::parse(&format!("FROM scratch\n{text}\n"), "Dockerfile").unwrap();
        WouldRun {
            label: format!("[build 1/1] {text}"),
            kind: df.stages[0].instructions[0].kind.clone(),
        }
    }

    #[test]
    fn download_steps_need_a_warm_cache_of_a_tool_with_an_offline_mode() {
        let warm = tempfile::tempdir().unwrap();
        std::fs::write(warm.path().join("x"), b"x").unwrap();
        let cold = tempfile::tempdir().unwrap();
        let strict = Offline {
            strict_downloads: true,
        };
        let npm = run_of("RUN --mount=type=cache,id=npm,target=/root/.npm npm ci --no-audit");
        let pip = run_of(
            "RUN --mount=type=cache,id=pip,target=/root/.cache/pip python3 -m pip install -r requirements.txt",
        );
        let local = run_of("RUN --network=none go build -o /out/app .");
        // npm with a warm cache runs; pip never can; --network=none steps always run
        let dir = |_: &str| warm.path().to_path_buf();
        let (m, run) = check_steps(&strict, &[npm.clone(), pip.clone(), local.clone()], &dir);
        assert_eq!(run.len(), 3);
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(
            matches!(&m[0], Missing::Step { why, .. } if why.contains("it runs pip, which downloads"))
        );
        // a cold npm cache is reported, naming the cache
        let dir = |_: &str| cold.path().to_path_buf();
        let (m, _) = check_steps(&strict, std::slice::from_ref(&npm), &dir);
        assert!(matches!(&m[0], Missing::Step { why, .. } if why.contains("/root/.npm")));
        // a Dockerfile's steps run without the network: nothing is missing
        let (m, _) = check_steps(&Offline::default(), &[npm, pip], &dir);
        assert!(m.is_empty());
    }

    #[test]
    fn the_report_groups_items_and_says_how_to_fix_each() {
        let m = vec![
            Missing::Package {
                base: "ocibuild:static+libssl3t64,curl/backports".into(),
                release: "trixie".into(),
                base_arch: "amd64".into(),
                name: "libc6".into(),
                version: "2.41-12".into(),
                arch: "amd64".into(),
                sha256: "ab".into(),
            },
            Missing::Image {
                base: "127.0.0.1:5000/x:1".into(),
                platform: "linux/amd64".into(),
                at: "Dockerfile:1".into(),
            },
            Missing::Url {
                at: "Dockerfile:3".into(),
                url: redact_url("https://u:p@h/x.tgz"),
            },
        ];
        let e = report(&m, Some(Path::new("/cache")), false).to_string();
        assert!(e.contains("libc6_2.41-12_amd64.deb (sha256:ab)"), "{e}");
        assert!(
            e.contains("1 Debian package not in the package cache /cache"),
            "{e}"
        );
        assert!(
            e.contains("`ocibuild base build --profile static --packages libssl3t64,curl --backports --distro trixie --arch amd64 --cache-dir /cache`"),
            "{e}"
        );
        assert!(e.contains("--pull missing"), "{e}");
        assert!(e.contains("ADD https://***@h/x.tgz"), "{e}");
        assert!(!e.contains("u:p"), "{e}");
        assert!(e.contains("steps were not checked"), "{e}");
    }
}
