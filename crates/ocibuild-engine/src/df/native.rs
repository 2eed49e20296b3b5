//! `FROM ocibuild:PROFILE[:VARIANT][+PACKAGE[,PACKAGE…]]`: a stage on a base assembled from Debian
//! packages in the store (the profiles of `ocibuild base list`), with no registry involved.
//!
//! `ocibuild:static:nonroot`, `ocibuild:python-build`, `ocibuild:build-base+golang-go,git`:
//! the profile and variant as `ocibuild base build --profile` takes them, then after a `+` the
//! extra packages, comma-separated (`NAME/backports` takes one from `<release>-backports`), in
//! their own layer. Toolchain profiles (`toolchain: true`: `build-base`, `go`, `node-build`, …) are built
//! as the zero-config builders build their roots (fast zstd layers: they are run in, not
//! shipped), so a Dockerfile and a zero-config build of the same app share them. A built base
//! is remembered by the hash of its lock ([`crate::roots`]): the second build assembles nothing.

use std::path::PathBuf;

use ocibuild_debian::base::{Lockfile, Variant, parse_profile_spec, profile_chain};
use ocibuild_oci::image::Image;

use crate::Event;
use crate::error::{EngineError, Result};
use crate::roots::Bases;

/// The prefix of a native base reference.
pub const PREFIX: &str = "ocibuild:";

/// Where native bases come from.
#[derive(Clone, Debug)]
pub struct NativeBases {
    /// The package cache, release and architecture (the target platform's).
    pub bases: Bases,
    /// `--base-lock FILE`s: a `FROM ocibuild:…` whose profile, variant and extra packages match
    /// a lockfile's is built from exactly its packages.
    pub locks: Vec<(PathBuf, Lockfile)>,
    /// Zero-config `--toolchain host`: `FROM ocibuild:host` is the host's own programs, and
    /// this is what the host probe found (one line per program, with its version), which keys
    /// the steps run there. `None`: `ocibuild:host` is refused.
    pub host: Option<String>,
}

/// The base of a stage that runs the host's own programs (zero-config `--toolchain host`).
pub const HOST: &str = "ocibuild:host";

/// The label that marks [`HOST`]'s image (its value: the host programs and their versions).
pub const HOST_LABEL: &str = "ocibuild.host-toolchain";

/// The host's `/` as a stage base: a skeleton layer (`/usr`, `/etc`, `/opt`, `/tmp`, `/root`,
/// and `/bin`, `/sbin`, `/lib*` as the host has them: links where the host's are links), whose
/// config names the host programs. A RUN over it gets the host's directories bound read-only
/// ([`host_binds`]); only what the steps write under their own directories is kept.
pub fn host_image(
    store: &ocibuild_oci::store::ContentStore,
    tools: &str,
    platform: &ocibuild_oci::image::Platform,
    source_date_epoch: u64,
) -> Result<Image> {
    use ocibuild_oci::assemble::{AssembleSpec, ConfigEdits, LayerInput, assemble};
    use std::fs;
    use std::path::Path;
    let work = store.root().join("engine").join("work");
    fs::create_dir_all(&work).map_err(EngineError::io("creating the work dir", &work))?;
    let t = tempfile::Builder::new()
        .prefix("host-root-")
        .tempdir_in(&work)
        .map_err(EngineError::io("creating a work dir", &work))?;
    let skel = t.path().join("root");
    for d in ["usr", "etc", "tmp", "root", "opt"] {
        fs::create_dir_all(skel.join(d))
            .map_err(EngineError::io("creating the host root", &skel))?;
    }
    for d in ["bin", "sbin", "lib", "lib32", "lib64"] {
        let host = Path::new("/").join(d);
        let here = skel.join(d);
        match fs::read_link(&host) {
            Ok(target) => std::os::unix::fs::symlink(&target, &here)
                .map_err(EngineError::io("linking in the host root", &here))?,
            Err(_) if host.is_dir() => {
                fs::create_dir_all(&here)
                    .map_err(EngineError::io("creating the host root", &here))?;
            }
            Err(_) => {}
        }
    }
    let assembled = assemble(
        store,
        AssembleSpec {
            base: None,
            layers: vec![LayerInput::new(&skel, String::new())],
            config: ConfigEdits {
                labels: std::collections::BTreeMap::from([(
                    HOST_LABEL.to_string(),
                    tools.to_string(),
                )]),
                ..ConfigEdits::default()
            },
            annotations: std::collections::BTreeMap::new(),
            platform: Some(platform.clone()),
            compression: ocibuild_oci::media::Compression::Gzip,
            level: None,
            source_date_epoch,
            owner: Some((0, 0)),
            keep_modes: false,
            history: None,
        },
    )?;
    Ok(assembled.image)
}

/// Whether an image config is [`host_image`]'s (or a stage built on it).
pub fn is_host(config: &serde_json::Value) -> bool {
    config
        .get("config")
        .and_then(|c| c.get("Labels"))
        .and_then(|l| l.get(HOST_LABEL))
        .is_some()
}

/// The host directories a RUN over [`host_image`] sees, read-only: `/usr`, `/etc`, `/opt`,
/// and each of `/bin`, `/sbin`, `/lib*` that is a directory (not a link) on the host.
pub fn host_binds() -> Vec<ocibuild_sandbox::run::Mount> {
    use std::path::Path;
    let mut out = Vec::new();
    for d in ["usr", "etc", "opt"] {
        if Path::new("/").join(d).is_dir() {
            out.push(ocibuild_sandbox::run::Mount::Bind {
                src: Path::new("/").join(d),
                dest: format!("/{d}"),
                readonly: true,
            });
        }
    }
    for d in ["bin", "sbin", "lib", "lib32", "lib64"] {
        let host = Path::new("/").join(d);
        if std::fs::read_link(&host).is_err() && host.is_dir() {
            out.push(ocibuild_sandbox::run::Mount::Bind {
                src: host,
                dest: format!("/{d}"),
                readonly: true,
            });
        }
    }
    out
}

/// A parsed `ocibuild:…` reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NativeRef {
    pub profile: String,
    pub variant: Variant,
    pub packages: Vec<String>,
    pub backports: bool,
    /// A build root rather than a runtime base.
    pub toolchain: bool,
    /// What followed `ocibuild:`.
    pub spec: String,
}

impl NativeRef {
    /// The reference as the Dockerfile wrote it (`ocibuild:` + the spec).
    pub fn reference(&self) -> String {
        format!("{PREFIX}{}", self.spec)
    }

    /// What the base is for, as the build's notes name it.
    pub fn role(&self) -> &'static str {
        if self.toolchain {
            "a build root"
        } else {
            "a runtime base"
        }
    }
}

/// `, from the lockfile PATH` when a `--base-lock` file gave the base's lock, else nothing (for
/// the build's notes).
pub(crate) fn lockfile_note(from_lock: Option<&std::path::Path>) -> String {
    match from_lock {
        Some(p) => format!(", from the lockfile {}", p.display()),
        None => String::new(),
    }
}

/// Parse what follows `ocibuild:`. An unknown profile or variant is an error naming the
/// nearest known one and every profile.
pub fn parse(spec: &str) -> Result<NativeRef> {
    let bad = |detail: String| EngineError::Invalid {
        what: format!("FROM {PREFIX}{spec}"),
        detail,
    };
    // the first `+` ends the profile (package names hold `+`, as in g++; never `,`)
    let (head, list) = match spec.split_once('+') {
        Some((h, l)) => (h, Some(l)),
        None => (spec, None),
    };
    let parts = list.into_iter().flat_map(|l| l.split(','));
    let (profile, variant) = parse_profile_spec(head).map_err(|e| bad(e.to_string()))?;
    let chain = profile_chain(&profile).map_err(|e| bad(e.to_string()))?;
    let toolchain = chain.last().is_some_and(|p| p.toolchain);
    let mut packages = Vec::new();
    let mut backports = false;
    for p in parts {
        let (name, suite) = p.split_once('/').unwrap_or((p, ""));
        match suite {
            "" => {}
            "backports" => backports = true,
            other => {
                return Err(bad(format!(
                    "package {name}/{other}: only `/backports` can follow a package name (it takes the package from <release>-backports)"
                )));
            }
        }
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
        {
            return Err(bad(format!(
                "`{p}` is not a Debian package name; write ocibuild:PROFILE[:VARIANT][+PACKAGE[,PACKAGE…]], e.g. ocibuild:build-base+golang-go,git"
            )));
        }
        packages.push(name.to_string());
    }
    Ok(NativeRef {
        profile,
        variant,
        packages,
        backports,
        toolchain,
        spec: spec.to_string(),
    })
}

impl NativeBases {
    /// The lock of `r` for `arch` (its `--base-lock`'s packages when one matches), the bases it
    /// comes from, and the matching lockfile's path: nothing is built.
    pub(crate) fn locked_for_arch(
        &self,
        r: &NativeRef,
        arch: &str,
    ) -> Result<(Bases, crate::roots::Locked, Option<PathBuf>)> {
        let b = if arch == self.bases.arch {
            self.bases.clone()
        } else {
            Bases {
                arch: arch.to_string(),
                ..self.bases.clone()
            }
        };
        let mut from_lock = None;
        let mut other_arch = None;
        for (path, lock) in &self.locks {
            if lock.profile != r.profile || lock.variant != r.variant {
                continue;
            }
            let mut want = r.packages.clone();
            want.sort();
            let mut have = lock.extra_packages.clone();
            have.sort();
            if want != have {
                return Err(EngineError::Invalid {
                    what: format!("--base-lock {}", path.display()),
                    detail: format!(
                        "it locks {} with the extra packages [{}], but the Dockerfile asks for {} with [{}]; lock what the FROM line names (`ocibuild base lock --profile {}{} --package …`) or change the FROM line",
                        r.profile,
                        have.join(", "),
                        r.reference(),
                        want.join(", "),
                        r.profile,
                        if r.variant == Variant::Default {
                            String::new()
                        } else {
                            format!(":{}", r.variant)
                        }
                    ),
                });
            }
            if lock.arch != b.arch {
                // another --base-lock may lock the same base for this architecture (one per
                // platform of a multi-platform build)
                other_arch.get_or_insert((path, lock.arch.clone()));
                continue;
            }
            from_lock = Some((path, lock.clone()));
            break;
        }
        if let (None, Some((path, arch))) = (&from_lock, other_arch) {
            return Err(EngineError::Invalid {
                what: format!("--base-lock {}", path.display()),
                detail: format!(
                    "it locks {arch} packages, the build is for {}; lock for each target platform (`ocibuild base lock --arch {}`) and give one --base-lock per platform",
                    b.arch, b.arch
                ),
            });
        }
        let locked = match &from_lock {
            Some((_, lock)) => b.locked_from(lock.clone(), r.toolchain)?,
            None if r.toolchain => {
                b.toolchain_locked(&r.profile, r.variant, &r.packages, r.backports)?
            }
            None => b.locked(&r.profile, r.variant, &r.packages, r.backports)?,
        };
        Ok((b, locked, from_lock.map(|(p, _)| p.clone())))
    }

    /// What building `r` for `arch` would fetch ([`crate::offline`]): nothing when the base is
    /// built in the store; else each locked package whose `.deb` is not in the package cache;
    /// or the lock itself when the cached indexes cannot give it.
    pub(crate) fn offline_missing(
        &self,
        r: &NativeRef,
        arch: &str,
    ) -> Vec<crate::offline::Missing> {
        use crate::offline::Missing;
        let base = r.reference();
        let (b, locked, _) = match self.locked_for_arch(r, arch) {
            Ok(l) => l,
            Err(e) => {
                return vec![Missing::Lock {
                    base,
                    detail: e.to_string(),
                }];
            }
        };
        if b.is_built(&locked) {
            return Vec::new();
        }
        locked
            .lock
            .packages()
            .filter(|p| !b.has_package(p))
            .map(|p| Missing::Package {
                base: base.clone(),
                release: locked.lock.release.clone(),
                base_arch: locked.lock.arch.clone(),
                name: p.name.clone(),
                version: p.version.clone(),
                arch: p.arch.clone(),
                sha256: p.sha256.clone(),
            })
            .collect()
    }

    /// The image of `r`: found in the store, or assembled from its packages (its lockfile's,
    /// when a `--base-lock` matches it).
    pub fn image(&self, r: &NativeRef, ev: &(dyn Fn(Event) + Sync)) -> Result<Image> {
        self.image_for_arch(r, &self.bases.arch, ev)
    }

    /// [`NativeBases::image`] from `arch`'s packages (`amd64`, `arm64`): a stage's
    /// `FROM --platform=…` may differ from the target platform.
    pub fn image_for_arch(
        &self,
        r: &NativeRef,
        arch: &str,
        ev: &(dyn Fn(Event) + Sync),
    ) -> Result<Image> {
        let (b, locked, from_lock) = self.locked_for_arch(r, arch)?;
        let b = &b;
        let base = if r.toolchain {
            let tc = b.toolchain_locked_root(&locked, true)?;
            match tc.image {
                Some(img) => img,
                None => b.image_locked(&locked)?,
            }
        } else {
            b.image_locked(&locked)?
        };
        let n = locked.lock.packages().count();
        ev(Event::Note(format!(
            "{}: {} ({}, {} {}, {n} packages{}), {}",
            r.reference(),
            base.image.manifest_desc.digest,
            if base.cached { "cached" } else { "assembled" },
            locked.lock.release,
            locked.lock.arch,
            lockfile_note(from_lock.as_deref()),
            r.role()
        )));
        Ok(base.image)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_profiles_variants_and_packages() {
        let r = parse("static:nonroot").unwrap();
        assert_eq!(
            (r.profile.as_str(), r.variant, r.toolchain),
            ("static", Variant::Nonroot, false)
        );
        assert!(r.packages.is_empty());
        let r = parse("build-base+golang-1.26-go/backports,git").unwrap();
        assert_eq!(r.profile, "build-base");
        assert!(r.toolchain && r.backports);
        assert_eq!(r.packages, ["golang-1.26-go", "git"]);
        assert_eq!(
            r.reference(),
            "ocibuild:build-base+golang-1.26-go/backports,git"
        );
        let r = parse("node-build+python3,make,g++").unwrap();
        assert_eq!(r.packages, ["python3", "make", "g++"]);
        assert_eq!(
            parse("python-build").unwrap().reference(),
            "ocibuild:python-build"
        );
    }

    #[test]
    fn unknown_profiles_suggest_and_list() {
        let e = parse("statik:nonroot").unwrap_err().to_string();
        assert!(e.contains("did you mean `static`"), "{e}");
        assert!(e.contains("python-build") && e.contains("nodejs"), "{e}");
        assert!(e.contains("ocibuild base list"), "{e}");
        let e = parse("static:nonrot").unwrap_err().to_string();
        assert!(e.contains("did you mean `nonroot`"), "{e}");
        let e = parse("static+Bad_Name").unwrap_err().to_string();
        assert!(e.contains("not a Debian package name"), "{e}");
        let e = parse("static+x/sid").unwrap_err().to_string();
        assert!(e.contains("/backports"), "{e}");
    }
}
