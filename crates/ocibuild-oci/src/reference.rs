//! Image references (`alpine`, `ghcr.io/org/app:v1@sha256:…`) with Docker's normalisation, and
//! [`Location`]: where an image lives, written the way containers-image (skopeo, podman, buildah)
//! names its transports (`oci:DIR:TAG`, `oci-archive:FILE:TAG`, `docker-archive:FILE:NAME:TAG`,
//! `docker://REF`).
//!
//! The grammar follows `github.com/distribution/reference`:
//!
//! ```text
//! reference  := name [ ":" tag ] [ "@" digest ]
//! name       := [ domain "/" ] component ( "/" component )*
//! domain     := host [ ":" port ]            (the first component, iff it has '.' or ':' or is `localhost`)
//! component  := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
//! tag        := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
//! ```
//!
//! Normalisation: no domain means `docker.io`; a single docker.io component gets `library/`;
//! `index.docker.io` and `registry-1.docker.io` are spelled `docker.io`; a reference without tag and
//! without digest is tagged `latest`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::digest::Digest;
use crate::error::{OciError, Result};

/// The canonical name of Docker Hub in references.
pub const DOCKER_HUB: &str = "docker.io";
/// The host that actually serves Docker Hub's registry API.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// Longest allowed `registry/repository`, as in distribution/reference.
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;
/// Longest allowed tag.
pub const TAG_LENGTH_MAX: usize = 128;

const VALID_FORMS: &str = "a valid reference looks like `alpine`, `alpine:3.19`, `user/app:v1`, \
     `ghcr.io/org/app:v1`, `localhost:5000/app@sha256:<64 hex>`";

/// A normalised image reference: `registry/repository[:tag][@digest]`.
///
/// After [`Reference::parse`] the registry is never empty, Docker Hub is always `docker.io`, its
/// official images carry `library/`, and `tag` is `Some` unless a digest was given without one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    /// Parse and normalise a reference the way `docker pull` does.
    ///
    /// `alpine` → `docker.io/library/alpine:latest`; `user/app` → `docker.io/user/app:latest`;
    /// `localhost:5000/a/b:t@sha256:…` keeps both tag and digest; a tag defaults to `latest` only
    /// when there is no digest.
    pub fn parse(s: &str) -> Result<Reference> {
        let bad = |why: String| OciError::InvalidReference {
            input: s.to_string(),
            why,
        };
        if s.is_empty() {
            return Err(bad(format!("the reference is empty; {VALID_FORMS}")));
        }
        if let Some(c) = s.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad(format!(
                "it contains the character {c:?}; references have no spaces or control characters"
            )));
        }

        // name[:tag]@digest — '@' cannot occur in a name or a tag.
        let (name_tag, digest) = match s.split_once('@') {
            Some((nt, d)) => {
                let digest = Digest::parse(d).map_err(|e| {
                    bad(format!(
                        "the part after '@' is not a valid digest ({}); write `NAME@sha256:<64 lower-case hex digits>`",
                        match &e {
                            OciError::InvalidDigest { why, .. } => why.clone(),
                            other => other.to_string(),
                        }
                    ))
                })?;
                (nt, Some(digest))
            }
            None => (s, None),
        };
        if name_tag.is_empty() {
            return Err(bad(format!(
                "there is no name before '@'; write `NAME@sha256:<hex>`; {VALID_FORMS}"
            )));
        }

        // A ':' after the last '/' starts the tag; one before it belongs to the registry's port.
        let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_tag[last_slash..].rfind(':') {
            Some(i) => {
                let i = last_slash + i;
                (&name_tag[..i], Some(&name_tag[i + 1..]))
            }
            None => (name_tag, None),
        };
        if let Some(t) = tag {
            check_tag(t).map_err(bad)?;
        }
        if name.is_empty() {
            return Err(bad(format!(
                "there is no repository name before ':'; {VALID_FORMS}"
            )));
        }
        if digest.is_none() && tag.is_none() && is_hex64(name) {
            return Err(bad(
                "a name cannot be 64 hex digits (that looks like an image ID); write `NAME@sha256:<hex>` \
                 to pin a digest"
                    .to_string(),
            ));
        }

        // The first component is a registry iff it contains '.' or ':' or is `localhost`.
        let (registry, path) = match name.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
                check_registry(first).map_err(&bad)?;
                (first, rest)
            }
            _ => (DOCKER_HUB, name),
        };
        let registry = match registry {
            "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB,
            r => r,
        };
        check_repository(path).map_err(&bad)?;
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_string()
        };
        let total = registry.len() + 1 + repository.len();
        if total > NAME_TOTAL_LENGTH_MAX {
            return Err(bad(format!(
                "the full name `{registry}/{repository}` is {total} characters long; at most \
                 {NAME_TOTAL_LENGTH_MAX} are allowed"
            )));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, None) => Some("latest".to_string()),
            (None, Some(_)) => None,
        };
        Ok(Reference {
            registry: registry.to_string(),
            repository,
            tag,
            digest,
        })
    }

    /// The tag, or `latest` when the reference has none (it is pinned by digest only).
    pub fn tag_or_latest(&self) -> &str {
        self.tag.as_deref().unwrap_or("latest")
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The repository as Docker shows it: `alpine` for `docker.io/library/alpine`, `user/app` for
    /// `docker.io/user/app`, the full name elsewhere.
    pub fn familiar_name(&self) -> String {
        if self.registry == DOCKER_HUB {
            match self.repository.strip_prefix("library/") {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => self.repository.clone(),
            }
        } else {
            self.name()
        }
    }

    /// Docker's short form, with tag and digest: `alpine:latest`, `user/app:v1`,
    /// `ghcr.io/org/app:v1@sha256:…`.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        self.push_suffix(&mut s);
        s
    }

    /// The host to talk to for the registry API: `registry-1.docker.io` for Docker Hub.
    pub fn api_registry(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// The same reference pinned to `d` (the tag, if any, is kept).
    pub fn with_digest(&self, d: Digest) -> Reference {
        Reference {
            digest: Some(d),
            ..self.clone()
        }
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<Reference> {
        check_tag(tag).map_err(|why| OciError::InvalidReference {
            input: format!("{}:{tag}", self.name()),
            why,
        })?;
        Ok(Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        })
    }

    fn push_suffix(&self, s: &mut String) {
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
    }
}

/// Fully qualified: `docker.io/library/alpine:latest`, `host:5000/repo:tag@sha256:…`.
impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.name();
        self.push_suffix(&mut s);
        f.write_str(&s)
    }
}

impl FromStr for Reference {
    type Err = OciError;
    fn from_str(s: &str) -> Result<Self> {
        Reference::parse(s)
    }
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn check_tag(t: &str) -> std::result::Result<(), String> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    if t.is_empty() {
        return Err(
            "the tag after ':' is empty; drop the ':' or write a tag like `:v1` or `:latest`"
                .into(),
        );
    }
    if t.len() > TAG_LENGTH_MAX {
        return Err(format!(
            "the tag is {} characters long; at most {TAG_LENGTH_MAX} are allowed",
            t.len()
        ));
    }
    let bytes = t.as_bytes();
    if !word(bytes[0]) || !bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-') {
        return Err(format!(
            "`{t}` is not a valid tag: a tag is letters, digits, '_', '.' and '-', not starting \
             with '.' or '-', at most {TAG_LENGTH_MAX} characters (like `v1.2-rc_3`)"
        ));
    }
    Ok(())
}

fn check_registry(r: &str) -> std::result::Result<(), String> {
    if r.starts_with('[') {
        return Err(format!(
            "IPv6 registry addresses (`{r}`) are not supported; use a host name or an IPv4 address"
        ));
    }
    let (host, port) = match r.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (r, None),
    };
    let label_ok = |l: &str| {
        let b = l.as_bytes();
        !b.is_empty()
            && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-'
    };
    if host.is_empty() || !host.split('.').all(label_ok) {
        return Err(format!(
            "`{r}` is not a valid registry host: use dot-separated labels of letters, digits and \
             '-', optionally with `:PORT` (like `ghcr.io` or `localhost:5000`)"
        ));
    }
    let bad_port = |p: &&str| !p.bytes().all(|b| b.is_ascii_digit()) || p.parse::<u16>().is_err();
    if let Some(p) = port.filter(bad_port) {
        return Err(format!(
            "`{p}` in `{r}` is not a valid port: write a number from 0 to 65535 \
             (like `localhost:5000`)"
        ));
    }
    Ok(())
}

fn check_repository(path: &str) -> std::result::Result<(), String> {
    if path.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "repository names must be lowercase: write `{}`",
            path.to_ascii_lowercase()
        ));
    }
    for comp in path.split('/') {
        if comp.is_empty() {
            return Err(format!(
                "`{path}` has an empty path component (a leading, trailing or doubled '/'); write \
                 components separated by single slashes, like `org/app`"
            ));
        }
        if comp.contains(':') {
            return Err(format!(
                "`{comp}` contains ':'; a reference has at most one tag (`NAME:TAG`), and a port \
                 belongs to a registry host (like `localhost:5000/app`)"
            ));
        }
        if !component_ok(comp) {
            return Err(format!(
                "`{comp}` is not a valid repository component: use lowercase letters and digits, \
                 separated by '.', '_', '__' or dashes, starting and ending with a letter or digit \
                 (like `my-app` or `org/my_app.v2`)"
            ));
        }
    }
    Ok(())
}

/// `[a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*`
fn component_ok(c: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let b = c.as_bytes();
    let mut i = 0;
    loop {
        // a run of alphanumerics
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        // a separator
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// The transports [`Location::parse`] understands, for error messages.
pub const TRANSPORTS: &str = "oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME[:TAG]], \
     docker://REFERENCE, or `scratch` (as a base)";

/// The transports' names, for "did you mean" suggestions.
const TRANSPORT_NAMES: [&str; 4] = ["oci", "oci-archive", "docker-archive", "docker"];

/// containers-image transports ocibuild does not implement, so the error can say so rather than
/// calling them unknown.
const OTHER_CI_TRANSPORTS: &[&str] = &[
    "dir",
    "docker-daemon",
    "containers-storage",
    "ostree",
    "sif",
    "tarball",
];

/// Where an image lives, named the way containers-image transports name it.
///
/// The part after the transport splits at the **first** `':'`, as containers-image does: a path
/// cannot contain `':'` (`oci:/a:b:c` is directory `/a` with tag `b:c`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Location {
    /// `oci:DIR[:TAG]` — an OCI image layout directory; TAG is `org.opencontainers.image.ref.name`.
    Layout { dir: PathBuf, tag: Option<String> },
    /// `oci-archive:FILE[:TAG]` — a tar of an OCI image layout.
    OciArchive { file: PathBuf, tag: Option<String> },
    /// `docker-archive:FILE[:NAME[:TAG]]` — a `docker save` tarball; the name is a Docker reference,
    /// normalised (`hello:v1` is `docker.io/library/hello:v1`).
    DockerArchive {
        file: PathBuf,
        reference: Option<Reference>,
    },
    /// `docker://REFERENCE` — an image in a registry.
    Registry(Reference),
    /// `scratch` — the empty image (as a base only).
    Scratch,
}

impl Location {
    /// Parse `TRANSPORT:DETAILS`. A bare name without a transport is refused (ocibuild does not
    /// guess between a registry and a directory); only the word `scratch` stands alone.
    ///
    /// After `oci:`, `oci-archive:` and `docker-archive:`, the path ends at the **first** `':'`,
    /// exactly as in containers-image: paths with a `':'` cannot be named, and everything after it
    /// is the tag (or, for docker-archive, a Docker reference that may itself contain ':').
    pub fn parse(s: &str) -> Result<Location> {
        let bad = |why: String| OciError::InvalidReference {
            input: s.to_string(),
            why,
        };
        if s == "scratch" {
            return Ok(Location::Scratch);
        }
        if s.is_empty() {
            return Err(bad(format!(
                "the image location is empty; write one of {TRANSPORTS}"
            )));
        }
        let Some((transport, rest)) = s.split_once(':') else {
            return Err(bad(no_transport(s)));
        };
        match transport {
            "oci" => {
                let (dir, tag) = split_path_tag(rest, "oci", "DIR").map_err(bad)?;
                Ok(Location::Layout { dir, tag })
            }
            "oci-archive" => {
                let (file, tag) = split_path_tag(rest, "oci-archive", "FILE").map_err(bad)?;
                Ok(Location::OciArchive { file, tag })
            }
            "docker-archive" => {
                let (file, name) = split_path(rest, "docker-archive", "FILE").map_err(&bad)?;
                let reference = match name {
                    None => None,
                    Some(n) => {
                        let r = Reference::parse(n).map_err(|e| {
                            bad(format!(
                                "the name after the file is not a valid image name ({}); write \
                                 `docker-archive:FILE:NAME[:TAG]` like `docker-archive:out.tar:hello:v1`",
                                match &e {
                                    OciError::InvalidReference { why, .. } => why.clone(),
                                    other => other.to_string(),
                                }
                            ))
                        })?;
                        if r.digest.is_some() {
                            return Err(bad("a docker-archive name cannot carry a digest; write \
                                 `docker-archive:FILE:NAME[:TAG]`"
                                .to_string()));
                        }
                        Some(r)
                    }
                };
                Ok(Location::DockerArchive {
                    file: PathBuf::from(file),
                    reference,
                })
            }
            "docker" => {
                let Some(r) = rest.strip_prefix("//") else {
                    return Err(bad(format!(
                        "the registry transport is written `docker://REFERENCE`, like `docker://{}`",
                        rest.trim_start_matches('/')
                    )));
                };
                Reference::parse(r)
                    .map(Location::Registry)
                    .map_err(|e| match e {
                        OciError::InvalidReference { why, .. } => bad(why),
                        other => other,
                    })
            }
            t if OTHER_CI_TRANSPORTS.contains(&t) => Err(bad(format!(
                "the containers-image transport `{t}:` is not supported by ocibuild; use {TRANSPORTS}"
            ))),
            "oci-layout" => Err(bad(format!(
                "`oci-layout://` is how `--build-context NAME=oci-layout://DIR` names a layout; as an \
                 image location write `oci:{}`",
                rest.trim_start_matches("//")
            ))),
            "docker-image" => Err(bad(format!(
                "`docker-image://` is how `--build-context NAME=docker-image://REF` names a registry \
                 image; as an image location write `docker://{}`",
                rest.trim_start_matches("//")
            ))),
            t if crate::suggest::nearest(t, TRANSPORT_NAMES).is_some() => Err(bad(format!(
                "unknown transport `{t}:`; did you mean `{}:`? (valid: {TRANSPORTS})",
                crate::suggest::nearest(t, TRANSPORT_NAMES).unwrap_or_default()
            ))),
            _ if Reference::parse(s).is_ok() => Err(bad(no_transport(s))),
            t => Err(bad(format!(
                "unknown transport `{t}:`; valid transports are {TRANSPORTS}"
            ))),
        }
    }

    /// The tag this location names, if any (for a docker archive or registry: the reference's tag).
    pub fn tag(&self) -> Option<&str> {
        match self {
            Location::Layout { tag, .. } | Location::OciArchive { tag, .. } => tag.as_deref(),
            Location::DockerArchive { reference, .. } => {
                reference.as_ref().and_then(|r| r.tag.as_deref())
            }
            Location::Registry(r) => r.tag.as_deref(),
            Location::Scratch => None,
        }
    }

    /// The transport's name: `oci`, `oci-archive`, `docker-archive`, `docker` or `scratch`.
    pub fn transport(&self) -> &'static str {
        match self {
            Location::Layout { .. } => "oci",
            Location::OciArchive { .. } => "oci-archive",
            Location::DockerArchive { .. } => "docker-archive",
            Location::Registry(_) => "docker",
            Location::Scratch => "scratch",
        }
    }
}

fn no_transport(s: &str) -> String {
    format!(
        "no transport given; ocibuild does not guess: write `docker://{s}` for an image in a \
         registry, or `oci:DIR[:TAG]` for an OCI layout directory (valid: {TRANSPORTS})"
    )
}

/// `PATH[:REST]`, split at the first ':'; the path must not be empty.
fn split_path<'a>(
    rest: &'a str,
    transport: &str,
    what: &str,
) -> std::result::Result<(&'a str, Option<&'a str>), String> {
    let (path, tail) = match rest.split_once(':') {
        Some((p, t)) => (p, Some(t)),
        None => (rest, None),
    };
    if path.is_empty() {
        return Err(format!(
            "the {what} after `{transport}:` is empty; write `{transport}:{what}[:TAG]`, like \
             `{transport}:./out{}:v1`",
            if transport == "oci" { "" } else { ".tar" }
        ));
    }
    if tail == Some("") {
        return Err(format!(
            "nothing follows the ':' after `{path}`; drop the ':' or name a tag, like \
             `{transport}:{path}:v1`"
        ));
    }
    Ok((path, tail))
}

fn split_path_tag(
    rest: &str,
    transport: &str,
    what: &str,
) -> std::result::Result<(PathBuf, Option<String>), String> {
    let (path, tag) = split_path(rest, transport, what)?;
    let bad_char = |t: &str| t.chars().find(|c| c.is_whitespace() || c.is_control());
    if let Some((t, c)) = tag.and_then(|t| bad_char(t).map(|c| (t, c))) {
        return Err(format!(
            "the tag `{t}` contains the character {c:?}; layout tags have no spaces or \
             control characters (like `v1` or `1.0.0-rc1`)"
        ));
    }
    Ok((PathBuf::from(path), tag.map(str::to_string)))
}

/// Round-trips through [`Location::parse`]. Names are written the familiar way
/// (`docker://alpine:latest`, `docker-archive:out.tar:hello:v1`), as containers-image prints them.
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Layout { dir: p, tag } | Location::OciArchive { file: p, tag } => {
                write!(f, "{}:{}", self.transport(), p.display())?;
                if let Some(t) = tag {
                    write!(f, ":{t}")?;
                }
                Ok(())
            }
            Location::DockerArchive { file, reference } => {
                write!(f, "docker-archive:{}", file.display())?;
                if let Some(r) = reference {
                    write!(f, ":{}", r.familiar())?;
                }
                Ok(())
            }
            Location::Registry(r) => write!(f, "docker://{}", r.familiar()),
            Location::Scratch => f.write_str("scratch"),
        }
    }
}

impl FromStr for Location {
    type Err = OciError;
    fn from_str(s: &str) -> Result<Self> {
        Location::parse(s)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn why(r: Result<impl fmt::Debug>) -> String {
        match r {
            Err(OciError::InvalidReference { why, .. }) => why,
            other => panic!("expected InvalidReference, got {other:?}"),
        }
    }

    #[test]
    fn normalisation() {
        // input, registry, repository, tag, Display, familiar
        #[rustfmt::skip]
        let cases: &[(&str, &str, &str, &str, &str, &str)] = &[
            ("alpine", "docker.io", "library/alpine", "latest", "docker.io/library/alpine:latest", "alpine:latest"),
            ("alpine:3.19", "docker.io", "library/alpine", "3.19", "docker.io/library/alpine:3.19", "alpine:3.19"),
            ("user/app", "docker.io", "user/app", "latest", "docker.io/user/app:latest", "user/app:latest"),
            ("user/app:v1", "docker.io", "user/app", "v1", "docker.io/user/app:v1", "user/app:v1"),
            ("docker.io/alpine", "docker.io", "library/alpine", "latest", "docker.io/library/alpine:latest", "alpine:latest"),
            ("docker.io/library/alpine:edge", "docker.io", "library/alpine", "edge", "docker.io/library/alpine:edge", "alpine:edge"),
            ("index.docker.io/library/busybox", "docker.io", "library/busybox", "latest", "docker.io/library/busybox:latest", "busybox:latest"),
            ("registry-1.docker.io/user/x:1", "docker.io", "user/x", "1", "docker.io/user/x:1", "user/x:1"),
            ("docker.io/library/a/b", "docker.io", "library/a/b", "latest", "docker.io/library/a/b:latest", "library/a/b:latest"),
            ("ghcr.io/org/app:v1", "ghcr.io", "org/app", "v1", "ghcr.io/org/app:v1", "ghcr.io/org/app:v1"),
            ("ghcr.io/app", "ghcr.io", "app", "latest", "ghcr.io/app:latest", "ghcr.io/app:latest"),
            ("localhost/app", "localhost", "app", "latest", "localhost/app:latest", "localhost/app:latest"),
            ("localhost:5000/a/b:t", "localhost:5000", "a/b", "t", "localhost:5000/a/b:t", "localhost:5000/a/b:t"),
            ("127.0.0.1:5000/test/hello", "127.0.0.1:5000", "test/hello", "latest", "127.0.0.1:5000/test/hello:latest", "127.0.0.1:5000/test/hello:latest"),
            ("myreg.azurecr.io/x/y/z:1.0-rc_1", "myreg.azurecr.io", "x/y/z", "1.0-rc_1", "myreg.azurecr.io/x/y/z:1.0-rc_1", "myreg.azurecr.io/x/y/z:1.0-rc_1"),
            ("MyReg.AzureCR.io/x", "MyReg.AzureCR.io", "x", "latest", "MyReg.AzureCR.io/x:latest", "MyReg.AzureCR.io/x:latest"),
            // "localhost:5000" alone is repository `localhost` with tag `5000`, as in docker
            ("localhost:5000", "docker.io", "library/localhost", "5000", "docker.io/library/localhost:5000", "localhost:5000"),
            // without '.', ':' or `localhost` the first component is not a registry
            ("myregistry/app", "docker.io", "myregistry/app", "latest", "docker.io/myregistry/app:latest", "myregistry/app:latest"),
            ("my-app_x.y__z--w", "docker.io", "library/my-app_x.y__z--w", "latest", "docker.io/library/my-app_x.y__z--w:latest", "my-app_x.y__z--w:latest"),
            ("a:Tag_9.-x", "docker.io", "library/a", "Tag_9.-x", "docker.io/library/a:Tag_9.-x", "a:Tag_9.-x"),
            ("a:_", "docker.io", "library/a", "_", "docker.io/library/a:_", "a:_"),
        ];
        for &(input, reg, repo, tag, display, familiar) in cases {
            let r = Reference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.registry, reg, "{input}: registry");
            assert_eq!(r.repository, repo, "{input}: repository");
            assert_eq!(r.tag.as_deref(), Some(tag), "{input}: tag");
            assert!(r.digest.is_none(), "{input}: digest");
            assert_eq!(r.to_string(), display, "{input}: Display");
            assert_eq!(r.familiar(), familiar, "{input}: familiar");
            // both forms parse back to the same reference
            assert_eq!(
                Reference::parse(&r.to_string()).unwrap(),
                r,
                "{input}: Display round-trip"
            );
            assert_eq!(
                Reference::parse(&r.familiar()).unwrap(),
                r,
                "{input}: familiar round-trip"
            );
            assert_eq!(input.parse::<Reference>().unwrap(), r);
        }
    }

    #[test]
    fn digests_and_tags() {
        let r = Reference::parse(&format!("alpine@{D}")).unwrap();
        assert_eq!(r.tag, None, "no `latest` when pinned by digest");
        assert_eq!(r.tag_or_latest(), "latest");
        assert_eq!(r.digest.as_ref().unwrap().to_string(), D);
        assert_eq!(r.to_string(), format!("docker.io/library/alpine@{D}"));
        assert_eq!(r.familiar(), format!("alpine@{D}"));

        let r = Reference::parse(&format!("localhost:5000/a/b:t@{D}")).unwrap();
        assert_eq!(r.registry, "localhost:5000");
        assert_eq!(r.repository, "a/b");
        assert_eq!(r.tag.as_deref(), Some("t"));
        assert_eq!(r.digest.as_ref().unwrap().to_string(), D);
        assert_eq!(r.to_string(), format!("localhost:5000/a/b:t@{D}"));
        assert_eq!(Reference::parse(&r.to_string()).unwrap(), r);

        let r = Reference::parse(&format!("localhost:5000/a@{D}")).unwrap();
        assert_eq!(r.registry, "localhost:5000");
        assert_eq!(r.repository, "a");
        assert_eq!(r.tag, None);

        let r = Reference::parse("ghcr.io/o/a:v1").unwrap();
        assert_eq!(r.tag_or_latest(), "v1");
        let d = Digest::parse(D).unwrap();
        let pinned = r.with_digest(d.clone());
        assert_eq!(
            pinned.tag.as_deref(),
            Some("v1"),
            "with_digest keeps the tag"
        );
        assert_eq!(pinned.digest, Some(d));
        assert_eq!(pinned.to_string(), format!("ghcr.io/o/a:v1@{D}"));
        let retagged = pinned.with_tag("v2").unwrap();
        assert_eq!(retagged.to_string(), "ghcr.io/o/a:v2");
        assert!(r.with_tag("-bad").is_err());

        // a 128-character tag is fine, 129 is not
        assert!(Reference::parse(&format!("a:{}", "t".repeat(128))).is_ok());
        let w = why(Reference::parse(&format!("a:{}", "t".repeat(129))));
        assert!(w.contains("at most 128"), "{w}");
    }

    #[test]
    fn names_and_api_registry() {
        let p = |s: &str| Reference::parse(s).unwrap();
        assert_eq!(p("alpine").api_registry(), "registry-1.docker.io");
        assert_eq!(
            p("index.docker.io/x/y").api_registry(),
            "registry-1.docker.io"
        );
        assert_eq!(p("ghcr.io/x/y").api_registry(), "ghcr.io");
        assert_eq!(p("localhost:5000/y").api_registry(), "localhost:5000");
        assert_eq!(p("user/app").name(), "docker.io/user/app");
        assert_eq!(p("alpine:3").familiar_name(), "alpine");
        assert_eq!(p("ghcr.io/x/y:1").familiar_name(), "ghcr.io/x/y");
    }

    #[test]
    fn bad_references() {
        // input, a fragment the explanation must contain
        #[rustfmt::skip]
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("Alpine", "must be lowercase: write `alpine`"),
            ("user/MyApp:v1", "must be lowercase: write `user/myapp`"),
            ("ghcr.io/Org/app", "must be lowercase"),
            ("a//b", "empty path component"),
            ("/a", "empty path component"),
            ("a/", "empty path component"),
            ("ghcr.io/", "empty path component"),
            ("a:", "tag after ':' is empty"),
            ("localhost:5000/a:", "tag after ':' is empty"),
            ("a:-v1", "not a valid tag"),
            ("a:.v1", "not a valid tag"),
            ("a:v1+x", "not a valid tag"),
            ("a:b:c", "at most one tag"),
            ("a@sha256:abc", "not a valid digest"),
            ("a@md5:0123", "not a valid digest"),
            ("a@", "not a valid digest"),
            (&format!("@{D}"), "no name before '@'"),
            (&format!("a@{}", D.to_uppercase()), "not a valid digest"),
            (&format!("a:@{D}"), "tag after ':' is empty"),
            (":v1", "no repository name"),
            ("a b", "no spaces"),
            ("a\tb", "no spaces"),
            ("a\n", "no spaces"),
            ("-app", "not a valid repository component"),
            ("app-", "not a valid repository component"),
            ("a..b", "not a valid repository component"),
            ("a___b", "not a valid repository component"),
            ("a/b.", "not a valid repository component"),
            ("a%b", "not a valid repository component"),
            ("my_reg.io/x", "not a valid registry host"),
            ("-reg.io/x", "not a valid registry host"),
            ("reg..io/x", "not a valid registry host"),
            ("localhost:/x", "not a valid port"),
            ("localhost:99999/x", "not a valid port"),
            ("localhost:50a/x", "not a valid port"),
            ("[::1]:5000/x", "IPv6"),
            ("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "64 hex digits"),
        ];
        for (input, fragment) in cases {
            let w = why(Reference::parse(input));
            assert!(
                w.contains(fragment),
                "{input:?}: `{w}` should contain `{fragment}`"
            );
        }
        // the message names the input and shows what a valid reference looks like
        let e = Reference::parse("").unwrap_err().to_string();
        assert!(
            e.contains("invalid image reference ``") && e.contains("alpine:3.19"),
            "{e}"
        );
        let e = Reference::parse("a//b").unwrap_err().to_string();
        assert!(e.contains("`a//b`") && e.contains("org/app"), "{e}");
    }

    #[test]
    fn name_length_limit() {
        // "docker.io/library/" + 237 characters = 255
        let ok = "a".repeat(255 - "docker.io/library/".len());
        assert!(Reference::parse(&ok).is_ok());
        let too_long = "a".repeat(256 - "docker.io/library/".len());
        assert!(why(Reference::parse(&too_long)).contains("at most 255"));
        let comp = "b".repeat(100);
        let long = format!("ghcr.io/{comp}/{comp}/{comp}:v1");
        assert!(why(Reference::parse(&long)).contains("at most 255"));
    }

    #[test]
    fn locations() {
        let full = |s: &str| Some(Reference::parse(s).unwrap());
        let layout = |d: &str, t: Option<&str>| Location::Layout {
            dir: d.into(),
            tag: t.map(Into::into),
        };
        let archive = |f: &str, t: Option<&str>| Location::OciArchive {
            file: f.into(),
            tag: t.map(Into::into),
        };
        let docker = |f: &str, r: Option<Reference>| Location::DockerArchive {
            file: f.into(),
            reference: r,
        };
        let registry = |s: &str| Location::Registry(Reference::parse(s).unwrap());
        // input, parsed, tag(), Display
        #[rustfmt::skip]
        let cases: Vec<(&str, Location, Option<&str>, &str)> = vec![
            ("scratch", Location::Scratch, None, "scratch"),
            ("oci:out", layout("out", None), None, "oci:out"),
            ("oci:/abs/dir:v1", layout("/abs/dir", Some("v1")), Some("v1"), "oci:/abs/dir:v1"),
            ("oci:./rel/dir:1.0", layout("./rel/dir", Some("1.0")), Some("1.0"), "oci:./rel/dir:1.0"),
            // the first ':' splits; OCI ref names may contain ':', '/', '@', '+'
            ("oci:dir:example.com/app:v1+x@y", layout("dir", Some("example.com/app:v1+x@y")), Some("example.com/app:v1+x@y"), "oci:dir:example.com/app:v1+x@y"),
            ("oci-archive:img.tar", archive("img.tar", None), None, "oci-archive:img.tar"),
            ("oci-archive:/t/img.tar:latest", archive("/t/img.tar", Some("latest")), Some("latest"), "oci-archive:/t/img.tar:latest"),
            ("docker-archive:d.tar", docker("d.tar", None), None, "docker-archive:d.tar"),
            ("docker-archive:d.tar:hello", docker("d.tar", full("hello")), Some("latest"), "docker-archive:d.tar:hello:latest"),
            ("docker-archive:d.tar:hello:v1", docker("d.tar", full("hello:v1")), Some("v1"), "docker-archive:d.tar:hello:v1"),
            ("docker-archive:d.tar:docker.io/library/hello:v1", docker("d.tar", full("hello:v1")), Some("v1"), "docker-archive:d.tar:hello:v1"),
            ("docker-archive:/x/d.tar:localhost:5000/a/b:v2", docker("/x/d.tar", full("localhost:5000/a/b:v2")), Some("v2"), "docker-archive:/x/d.tar:localhost:5000/a/b:v2"),
            ("docker://alpine", registry("alpine"), Some("latest"), "docker://alpine:latest"),
            ("docker://docker.io/library/alpine:3.19", registry("alpine:3.19"), Some("3.19"), "docker://alpine:3.19"),
            ("docker://localhost:5000/test/hello:v1", registry("localhost:5000/test/hello:v1"), Some("v1"), "docker://localhost:5000/test/hello:v1"),
        ];
        for (input, want, tag, display) in cases {
            let got = Location::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(got, want, "{input}");
            assert_eq!(got.tag(), tag, "{input}: tag()");
            assert_eq!(got.to_string(), display, "{input}: Display");
            assert_eq!(
                Location::parse(&got.to_string()).unwrap(),
                got,
                "{input}: round-trip"
            );
            assert_eq!(input.parse::<Location>().unwrap(), got);
        }

        let pinned = format!("docker://ghcr.io/o/a@{D}");
        let got = Location::parse(&pinned).unwrap();
        assert_eq!(got, registry(&format!("ghcr.io/o/a@{D}")));
        assert_eq!((got.tag(), got.to_string()), (None, pinned));

        assert_eq!(Location::Scratch.transport(), "scratch");
        assert_eq!(layout("x", None).transport(), "oci");
        assert_eq!(registry("x").transport(), "docker");
    }

    #[test]
    fn bad_locations() {
        #[rustfmt::skip]
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("alpine", "docker://alpine"),
            ("alpine", "oci:DIR"),
            ("./out", "no transport"),
            ("Scratch", "no transport"),
            ("alpine:3.19", "docker://alpine:3.19"),
            ("foo:bar", "docker://foo:bar"),
            ("ghcr.io/org/app:v1", "docker://ghcr.io/org/app:v1"),
            ("localhost:5000/app", "docker://localhost:5000/app"),
            ("foo:/x", "unknown transport `foo:`"),
            ("http://x", "docker-archive:FILE"),
            ("dir:/x", "not supported by ocibuild"),
            ("containers-storage:x", "not supported"),
            ("oci:", "DIR after `oci:` is empty"),
            ("oci::v1", "DIR after `oci:` is empty"),
            ("oci:dir:", "nothing follows"),
            ("oci:dir:a b", "no spaces"),
            ("oci:dir:a\u{7}", "control"),
            ("oci-archive:", "FILE after `oci-archive:` is empty"),
            ("oci-archive:f.tar:", "nothing follows"),
            ("docker-archive:", "FILE after `docker-archive:` is empty"),
            ("docker-archive:d.tar:", "nothing follows"),
            ("docker-archive:d.tar:Hello", "must be lowercase"),
            ("docker-archive:d.tar:hello:", "tag after ':' is empty"),
            (&format!("docker-archive:d.tar:hello@{D}"), "cannot carry a digest"),
            ("docker:alpine", "docker://alpine"),
            ("docker:/alpine", "docker://alpine"),
            ("docker://", "empty"),
            ("docker://Alpine", "must be lowercase"),
            ("docker://a//b", "empty path component"),
            ("docker://a@sha256:1", "not a valid digest"),
        ];
        for (input, fragment) in cases {
            let w = why(Location::parse(input));
            assert!(
                w.contains(fragment),
                "{input:?}: `{w}` should contain `{fragment}`"
            );
        }
        let e = Location::parse("docker://Alpine").unwrap_err().to_string();
        assert!(
            e.starts_with("invalid image reference `docker://Alpine`"),
            "{e}"
        );
    }
}
