//! `--platform linux/amd64,linux/arm64`: the flags. The engine builds one image per platform and
//! their index (`ocibuild_engine::build`); [`super::release`] writes it as it writes one image
//! (registries get the index and all its manifests; `oci:` layouts and `oci-archive:` files hold
//! the index; `docker-archive:` holds one image and so takes one platform).

use anyhow::{Context, Result};
use ocibuild_oci::image::Platform;
use ocibuild_oci::reference::Location;

use crate::cli::BuildArgs;
use crate::output::usage;

/// `--platform`: one or more comma-separated `os/arch[/variant]`, each at most once.
pub(super) fn parse_platforms(s: &str) -> Result<Vec<Platform>> {
    let mut out: Vec<Platform> = Vec::new();
    for p in s.split(',').map(str::trim) {
        if p.is_empty() {
            return Err(usage(format!(
                "--platform {s}: an empty platform; write OS/ARCH[,OS/ARCH…], like linux/amd64,linux/arm64"
            )));
        }
        let platform = Platform::parse(p).with_context(|| format!("--platform {s}"))?;
        if out.contains(&platform) {
            return Err(usage(format!("--platform {s}: {p} is named twice")));
        }
        out.push(platform);
    }
    Ok(out)
}

/// What a multi-platform build cannot write or do, said before anything is built.
pub(super) fn check_args(a: &BuildArgs, platforms: &[Platform]) -> Result<()> {
    if platforms.len() < 2 {
        return Ok(());
    }
    let names = platform_list(platforms);
    for o in &a.outputs {
        if let Ok(Location::DockerArchive { .. }) = Location::parse(o) {
            return Err(usage(format!(
                "--output {o}: a docker-archive holds one image, and --platform {names} builds {}; give one --platform for a docker-archive, or write the index to oci:DIR[:TAG] or oci-archive:FILE[:TAG]",
                platforms.len()
            )));
        }
    }
    Ok(())
}

pub(super) fn platform_list(platforms: &[Platform]) -> String {
    platforms
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn platform_lists_parse_and_refuse_repeats() {
        let p = parse_platforms("linux/amd64, linux/arm64").unwrap();
        assert_eq!(platform_list(&p), "linux/amd64,linux/arm64");
        assert!(parse_platforms("linux/amd64,linux/amd64").is_err());
        assert!(parse_platforms("linux/amd64,").is_err());
        assert!(parse_platforms("linux").is_err());
    }
}
