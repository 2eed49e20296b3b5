//! `--cache-to` / `--cache-from` values, in docker's flag syntax: comma-separated `key=value`
//! fields (a field may be double-quoted, CSV style, to hold a comma).
//!
//! ```text
//! type=local,dest=DIR                      (--cache-to)
//! type=local,src=DIR                       (--cache-from)
//! type=azblob,account_url=URL,container=NAME[,name=PREFIX][,mode=min|max]
//!             [,account_name=ACCOUNT][,secret_access_key=KEY][,sas_token=SAS]
//! type=registry,ref=HOST/REPO:TAG[,mode=min|max]
//! HOST/REPO:TAG                            (as docker: type=registry,ref=HOST/REPO:TAG)
//! type=inline                              (--cache-to: the step records beside a pushed image)
//! ```
//!
//! Every type also takes `mode=min|max` (default `min`: only the final stage's steps are
//! exported; `max`: every step) and `ignore-error=true|false`. Options docker defines that do not
//! apply to ocibuild's cache (`compression`, `compression-level`, `force-compression`,
//! `oci-mediatypes`, `image-manifest`, `tag`, `touch_refresh`, `upload_parallelism`) are accepted
//! and listed in [`CacheSpec::ignored`]; anything else is an error naming the options that exist.
//!
//! Secrets (`secret_access_key`, `sas_token`, a SAS query on `account_url`) are held in
//! [`Secret`], whose `Debug` and `Display` print `<redacted>`; [`CacheSpec`]'s `Display` is the
//! spec with every secret redacted, safe for logs.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use ocibuild_oci::reference::{Reference, TAG_LENGTH_MAX};

use crate::azure::scrub;
use crate::error::CacheError;

/// A credential from a spec or the environment: never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself, for the request that needs it. Never log or format it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// What a cache export holds: `min` (docker's default) exports the steps of the final stage,
/// `max` every step of every stage. Backends store whatever they are given; the engine decides.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    #[default]
    Min,
    Max,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Min => "min",
            Mode::Max => "max",
        }
    }
}

/// Where an Azure Blob Storage cache lives, and the credentials given on the flag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AzblobSpec {
    /// `https://ACCOUNT.blob.core.windows.net` or a path-style endpoint such as Azurite's
    /// `http://127.0.0.1:10000/devstoreaccount1`; normalised (no trailing `/`, no query: a SAS
    /// query is moved to `sas_token`). `None` when it comes from the environment
    /// (`AZURE_STORAGE_CONNECTION_STRING`'s `BlobEndpoint` or `AzureStorageAccount`).
    pub account_url: Option<String>,
    pub container: String,
    /// The prefix of every blob name (`name=`, default `ocibuild-cache`).
    pub name: String,
    pub account_name: Option<String>,
    pub secret_access_key: Option<Secret>,
    pub sas_token: Option<Secret>,
}

/// Which backend, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A directory (`dest=` for export, `src=` for import).
    Local {
        dir: PathBuf,
    },
    Azblob(AzblobSpec),
    /// A repository in an OCI registry; the tag names the cache (`<tag>-<key prefix>` tags).
    Registry {
        reference: Reference,
    },
    /// `type=inline` (`--cache-to` only): the build's step records are pushed beside the image
    /// (`--push`) under the tag prefix [`INLINE_TAG`], and the image's config label
    /// [`INLINE_LABEL`] points to them, so `--cache-from IMAGE` finds them. The caller turns it
    /// into a [`Backend::Registry`] per pushed repository ([`CacheSpec::inline_for`]).
    Inline,
}

/// The config label of an image pushed with an inline cache: the tag prefix of its cache.
pub const INLINE_LABEL: &str = "org.ocibuild.cache.inline";
/// The tag prefix inline caches are written under, in the image's own repository.
pub const INLINE_TAG: &str = "buildcache-inline";

/// A parsed `--cache-to` / `--cache-from` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheSpec {
    pub backend: Backend,
    pub mode: Mode,
    /// Parsed for `--cache-to` (the backend may create its container or directory).
    pub for_export: bool,
    /// `ignore-error=true`: the caller should warn instead of failing on cache errors.
    pub ignore_error: bool,
    /// Docker options that were accepted but mean nothing here, to warn about.
    pub ignored: Vec<String>,
}

/// Blob-name prefix when `name=` is not given.
pub const DEFAULT_NAME: &str = "ocibuild-cache";

/// The registry backend appends `-` and up to 32 hex digits of the key to the ref's tag.
pub const REGISTRY_TAG_SUFFIX: usize = 33;

const IGNORED: &[&str] = &[
    "compression",
    "compression-level",
    "force-compression",
    "oci-mediatypes",
    "image-manifest",
    "tag",
    "touch_refresh",
    "upload_parallelism",
];

const SECRET_KEYS: &[&str] = &["secret_access_key", "sas_token", "account_key"];

impl CacheSpec {
    /// Parse a `--cache-to` (`for_export`) or `--cache-from` value. For `type=local` the
    /// direction decides the key: `dest=` to export, `src=` to import, as docker has it.
    pub fn parse(s: &str, for_export: bool) -> Result<CacheSpec, CacheError> {
        parse(s, Some(for_export))
    }

    /// The registry cache an inline cache (`type=inline`) is written to for an image pushed
    /// to `image`: its repository, tag prefix [`INLINE_TAG`], every stage's steps (the image
    /// carries only the final stage's layers, so the other stages' records and layers are
    /// pushed beside it too; that is what lets a cold runner skip the build stages).
    pub fn inline_for(&self, image: &Reference) -> CacheSpec {
        let mut reference = image.clone();
        reference.tag = Some(INLINE_TAG.to_string());
        reference.digest = None;
        CacheSpec {
            backend: Backend::Registry { reference },
            mode: Mode::Max,
            for_export: true,
            ignore_error: self.ignore_error,
            ignored: Vec::new(),
        }
    }

    /// A redacted, human form of the spec (what `Display` prints).
    pub fn redacted(&self) -> String {
        self.to_string()
    }
}

impl FromStr for CacheSpec {
    type Err = CacheError;

    /// Direction-agnostic parsing: `type=local` takes `src=` or `dest=` (and is an export with
    /// `dest=`); every other type parses as an import (`for_export` false).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s, None)
    }
}

impl fmt::Display for CacheSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.backend {
            Backend::Local { dir } => {
                let key = if self.for_export { "dest" } else { "src" };
                write!(f, "type=local,{key}={}", dir.display())?;
            }
            Backend::Azblob(a) => {
                f.write_str("type=azblob")?;
                if let Some(u) = &a.account_url {
                    write!(f, ",account_url={u}")?;
                }
                write!(f, ",container={},name={}", a.container, a.name)?;
                if let Some(n) = &a.account_name {
                    write!(f, ",account_name={n}")?;
                }
                if a.secret_access_key.is_some() {
                    f.write_str(",secret_access_key=<redacted>")?;
                }
                if a.sas_token.is_some() {
                    f.write_str(",sas_token=<redacted>")?;
                }
            }
            Backend::Registry { reference } => {
                write!(f, "type=registry,ref={}", reference.familiar())?;
            }
            Backend::Inline => f.write_str("type=inline")?,
        }
        write!(f, ",mode={}", self.mode.as_str())?;
        if self.ignore_error {
            f.write_str(",ignore-error=true")?;
        }
        Ok(())
    }
}

/// Split docker's CSV-style field list. Double quotes group (and `""` is a quote inside them).
fn split_fields(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    if quoted {
        return Err("a double quote is not closed".into());
    }
    out.push(cur);
    Ok(out)
}

/// The input with secret values replaced, for error messages.
fn redact_input(s: &str) -> String {
    let Ok(fields) = split_fields(s) else {
        return "<unparsable spec, not shown: it may hold a secret>".into();
    };
    fields
        .iter()
        .map(|f| match f.split_once('=') {
            Some((k, _)) if SECRET_KEYS.contains(&k.trim()) => format!("{k}=<redacted>"),
            Some((k, v)) if k.trim() == "account_url" && v.contains('?') => {
                format!("{k}={}?<redacted>", v.split('?').next().unwrap_or(""))
            }
            None if SECRET_KEYS.iter().any(|k| f.trim().starts_with(k)) => "<redacted>".into(),
            _ => f.clone(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn parse(s: &str, for_export: Option<bool>) -> Result<CacheSpec, CacheError> {
    // A SAS holding a comma splits into several fields: scrub signatures wherever they end up.
    let bad = |why: String| CacheError::Spec {
        input: scrub(&redact_input(s), &[]),
        why: scrub(&why, &[]),
    };
    // A bare image reference, as docker takes it: `--cache-from HOST/REPO:TAG`.
    let trimmed = s.trim();
    if !trimmed.is_empty()
        && !trimmed.contains(['=', ',', '"'])
        && !trimmed.chars().any(char::is_whitespace)
    {
        return parse(&format!("type=registry,ref={trimmed}"), for_export).map_err(|e| match e {
            CacheError::Spec { why, .. } => bad(format!(
                "{why} (a value without `=` is taken as an image reference, as docker does: type=registry,ref=VALUE)"
            )),
            other => other,
        });
    }
    let fields = split_fields(s).map_err(&bad)?;
    let mut kv: Vec<(String, String)> = Vec::new();
    for f in fields.iter().map(|f| f.trim()).filter(|f| !f.is_empty()) {
        let Some((k, v)) = f.split_once('=') else {
            return Err(bad(format!(
                "`{}` is not KEY=VALUE; write fields like type=local,dest=DIR",
                if SECRET_KEYS.iter().any(|k| f.starts_with(k)) {
                    "<redacted>"
                } else {
                    f
                }
            )));
        };
        let k = k.trim().to_ascii_lowercase();
        if kv.iter().any(|(have, _)| *have == k) {
            return Err(bad(format!("`{k}` is given twice")));
        }
        kv.push((k, v.trim().to_string()));
    }
    let take = |kv: &mut Vec<(String, String)>, key: &str| -> Option<String> {
        let i = kv.iter().position(|(k, _)| k == key)?;
        Some(kv.remove(i).1)
    };
    let ty = take(&mut kv, "type").ok_or_else(|| {
        bad("no `type=`; use type=local, type=azblob or type=registry".to_string())
    })?;
    let mode = match take(&mut kv, "mode").as_deref() {
        None => Mode::Min,
        Some("min") => Mode::Min,
        Some("max") => Mode::Max,
        Some(other) => return Err(bad(format!("mode=`{other}`: use mode=min or mode=max"))),
    };
    let ignore_error = match take(&mut kv, "ignore-error").as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(bad(format!(
                "ignore-error=`{other}`: use ignore-error=true or false"
            )));
        }
    };
    let mut ignored = Vec::new();
    for k in IGNORED {
        if take(&mut kv, k).is_some() {
            ignored.push((*k).to_string());
        }
    }
    let mut export = for_export.unwrap_or(false);
    let (backend, allowed): (Backend, &[&str]) = match ty.as_str() {
        "local" => {
            let src = take(&mut kv, "src");
            let dest = take(&mut kv, "dest");
            let dir = match (for_export, src, dest) {
                (Some(true), None, Some(d)) | (Some(false), Some(d), None) => d,
                (None, Some(d), None) => d,
                (None, None, Some(d)) => {
                    export = true;
                    d
                }
                (Some(true), Some(_), _) => {
                    return Err(bad(
                        "--cache-to takes type=local,dest=DIR (src= is for --cache-from)".into(),
                    ));
                }
                (Some(false), _, Some(_)) => {
                    return Err(bad(
                        "--cache-from takes type=local,src=DIR (dest= is for --cache-to)".into(),
                    ));
                }
                (None, Some(_), Some(_)) => {
                    return Err(bad("give either src= or dest=, not both".into()));
                }
                (_, _, _) => {
                    return Err(bad(format!(
                        "type=local needs {}=DIR",
                        if for_export == Some(false) {
                            "src"
                        } else {
                            "dest"
                        }
                    )));
                }
            };
            if dir.is_empty() {
                return Err(bad("the directory is empty".into()));
            }
            (
                Backend::Local {
                    dir: PathBuf::from(dir),
                },
                &["type", "mode", "ignore-error", "src", "dest"],
            )
        }
        "azblob" => {
            let container = take(&mut kv, "container").ok_or_else(|| {
                bad("type=azblob needs container=NAME (it is created when missing)".into())
            })?;
            check_container(&container).map_err(&bad)?;
            let name = take(&mut kv, "name").unwrap_or_else(|| DEFAULT_NAME.to_string());
            check_prefix(&name).map_err(&bad)?;
            let account_name = take(&mut kv, "account_name");
            if let Some(a) = &account_name {
                check_account(a).map_err(&bad)?;
            }
            let secret_access_key = take(&mut kv, "secret_access_key").map(Secret);
            let mut sas_token = take(&mut kv, "sas_token").map(Secret);
            let account_url = match take(&mut kv, "account_url") {
                None => None,
                Some(u) => {
                    let (url, sas) = normalise_account_url(&u).map_err(&bad)?;
                    if let Some(sas) = sas {
                        if sas_token.is_some() {
                            return Err(bad(
                                "account_url carries a SAS query and sas_token= is given too; keep one"
                                    .into(),
                            ));
                        }
                        sas_token = Some(Secret(sas));
                    }
                    Some(url)
                }
            };
            if secret_access_key.is_some() && sas_token.is_some() {
                return Err(bad(
                    "give secret_access_key= or a SAS token, not both".into()
                ));
            }
            if secret_access_key
                .as_ref()
                .is_some_and(|k| k.expose().is_empty())
            {
                return Err(bad("secret_access_key= is empty".into()));
            }
            (
                Backend::Azblob(AzblobSpec {
                    account_url,
                    container,
                    name,
                    account_name,
                    secret_access_key,
                    sas_token,
                }),
                &[
                    "type",
                    "mode",
                    "ignore-error",
                    "account_url",
                    "container",
                    "name",
                    "account_name",
                    "secret_access_key",
                    "sas_token",
                ],
            )
        }
        "registry" => {
            let r = take(&mut kv, "ref").ok_or_else(|| {
                bad("type=registry needs ref=HOST/REPO:TAG, like ref=registry.example:5000/app:buildcache".into())
            })?;
            let reference = Reference::parse(&r).map_err(|e| bad(e.to_string()))?;
            if reference.digest.is_some() {
                return Err(bad(
                    "ref= names a tag to write under, not a digest; drop the @sha256:… part".into(),
                ));
            }
            let tag = reference.tag_or_latest();
            if tag.len() + REGISTRY_TAG_SUFFIX > TAG_LENGTH_MAX {
                return Err(bad(format!(
                    "the tag `{tag}` is {} characters; the cache appends {REGISTRY_TAG_SUFFIX} (`-` and 32 hex digits of each key) and tags hold at most {TAG_LENGTH_MAX}, so use a tag of at most {} characters",
                    tag.len(),
                    TAG_LENGTH_MAX - REGISTRY_TAG_SUFFIX
                )));
            }
            (
                Backend::Registry { reference },
                &["type", "mode", "ignore-error", "ref"],
            )
        }
        "inline" => {
            if for_export == Some(false) {
                return Err(bad(
                    "type=inline is for --cache-to; import an inline cache with --cache-from IMAGE (the pushed image's reference)".into(),
                ));
            }
            export = true;
            (Backend::Inline, &["type", "mode", "ignore-error"])
        }
        "gha" | "s3" => {
            return Err(bad(format!(
                "type={ty} is not supported by ocibuild; use type=local, type=azblob or type=registry"
            )));
        }
        other => {
            return Err(bad(format!(
                "unknown type `{other}`; use type=local, type=azblob, type=registry or type=inline"
            )));
        }
    };
    if let Some((k, _)) = kv.first() {
        let mut known: Vec<&str> = allowed.to_vec();
        known.extend(IGNORED);
        return Err(bad(format!(
            "type={ty} has no option `{k}` (options: {})",
            known.join(", ")
        )));
    }
    Ok(CacheSpec {
        backend,
        mode,
        for_export: export,
        ignore_error,
        ignored,
    })
}

/// Azure container names: 3–63 of `a-z0-9-`, starting with a letter or digit, no `--`, not
/// ending with `-`.
fn check_container(c: &str) -> Result<(), String> {
    let ok = (3..=63).contains(&c.len())
        && c.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && c.bytes().next().is_some_and(|b| b != b'-')
        && !c.ends_with('-')
        && !c.contains("--");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "container=`{c}` is not a valid Azure container name: 3 to 63 lower-case letters, digits and single hyphens, starting and ending with a letter or digit"
        ))
    }
}

/// `name=`: `/`-separated segments of `A-Za-z0-9._-`, none `.` or `..`.
fn check_prefix(p: &str) -> Result<(), String> {
    let ok = !p.is_empty()
        && p.len() <= 512
        && p.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "name=`{p}` is not a valid blob-name prefix: use `/`-separated parts of letters, digits, `.`, `_` and `-` (like ocibuild-cache or team/app)"
        ))
    }
}

/// Storage account names: 3–24 lower-case letters and digits.
pub(crate) fn check_account(a: &str) -> Result<(), String> {
    if (3..=24).contains(&a.len())
        && a.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        Ok(())
    } else {
        Err(format!(
            "account name `{a}` is not a valid storage account name (3 to 24 lower-case letters and digits)"
        ))
    }
}

/// Check and normalise `account_url`: http(s), no credentials in it, at most one path segment
/// (the account, path-style); a query is taken as a SAS token and returned apart.
pub(crate) fn normalise_account_url(u: &str) -> Result<(String, Option<String>), String> {
    let (base, query) = match u.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (u, None),
    };
    let parsed = url::Url::parse(base).map_err(|e| {
        format!(
            "account_url=`{base}` is not a URL ({e}); write https://ACCOUNT.blob.core.windows.net"
        )
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "account_url=`{base}` must be an http:// or https:// URL"
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("account_url=`{base}` has no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(
            "account_url must not carry a user or password; pass the key as secret_access_key= or in AZURE_STORAGE_KEY"
                .into(),
        );
    }
    if parsed.fragment().is_some() {
        return Err(format!("account_url=`{base}` must not have a #fragment"));
    }
    let segments: Vec<&str> = parsed
        .path_segments()
        .map(|s| s.filter(|p| !p.is_empty()).collect())
        .unwrap_or_default();
    if segments.len() > 1 {
        return Err(format!(
            "account_url=`{base}` has a path beyond the account; give the account's endpoint (https://ACCOUNT.blob.core.windows.net, or http://HOST:PORT/ACCOUNT for Azurite) and the container as container="
        ));
    }
    let normal = base.trim_end_matches('/').to_string();
    let sas = query.map(str::to_string).filter(|q| !q.is_empty());
    Ok((normal, sas))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn az(s: &CacheSpec) -> &AzblobSpec {
        match &s.backend {
            Backend::Azblob(a) => a,
            other => panic!("not azblob: {other:?}"),
        }
    }

    #[test]
    fn a_bare_image_reference_is_a_registry_cache_and_inline_is_for_export() {
        let s = CacheSpec::parse("127.0.0.1:5000/app:latest", false).unwrap();
        match &s.backend {
            Backend::Registry { reference } => {
                assert_eq!(reference.repository, "app");
                assert_eq!(reference.tag.as_deref(), Some("latest"));
            }
            other => panic!("not a registry cache: {other:?}"),
        }
        assert_eq!(s.mode, Mode::Min);
        let e = CacheSpec::parse("127.0.0.1:5000/App:latest", false).unwrap_err();
        assert!(e.to_string().contains("image reference"), "{e}");
        let s = CacheSpec::parse("type=inline", true).unwrap();
        assert_eq!(s.backend, Backend::Inline);
        assert_eq!(s.to_string(), "type=inline,mode=min");
        let e = CacheSpec::parse("type=inline", false).unwrap_err();
        assert!(e.to_string().contains("--cache-from IMAGE"), "{e}");
        let img = Reference::parse("127.0.0.1:5000/team/app:1").unwrap();
        let r = s.inline_for(&img);
        assert_eq!(r.mode, Mode::Max);
        match r.backend {
            Backend::Registry { reference } => {
                assert_eq!(reference.repository, "team/app");
                assert_eq!(reference.tag.as_deref(), Some(INLINE_TAG));
            }
            other => panic!("not a registry cache: {other:?}"),
        }
    }

    #[test]
    fn local_directions() {
        let s = CacheSpec::parse("type=local,dest=/tmp/c", true).unwrap();
        assert_eq!(
            s.backend,
            Backend::Local {
                dir: "/tmp/c".into()
            }
        );
        assert!(s.for_export);
        assert_eq!(s.mode, Mode::Min);
        let s = CacheSpec::parse("type=local,src=/tmp/c,mode=max", false).unwrap();
        assert!(!s.for_export);
        assert_eq!(s.mode, Mode::Max);
        let e = CacheSpec::parse("type=local,src=/tmp/c", true).unwrap_err();
        assert!(e.to_string().contains("dest=DIR"), "{e}");
        let e = CacheSpec::parse("type=local,dest=/tmp/c", false).unwrap_err();
        assert!(e.to_string().contains("src=DIR"), "{e}");
        assert!(CacheSpec::parse("type=local", true).is_err());
        let any: CacheSpec = "type=local,dest=/c".parse().unwrap();
        assert!(any.for_export);
        let any: CacheSpec = "type=local,src=/c".parse().unwrap();
        assert!(!any.for_export);
        assert!("type=local,src=/a,dest=/b".parse::<CacheSpec>().is_err());
    }

    #[test]
    fn azblob_fields_and_defaults() {
        let s = CacheSpec::parse(
            "type=azblob,account_url=https://acct.blob.core.windows.net/,container=ci-cache,mode=max",
            true,
        )
        .unwrap();
        let a = az(&s);
        assert_eq!(
            a.account_url.as_deref(),
            Some("https://acct.blob.core.windows.net")
        );
        assert_eq!(a.container, "ci-cache");
        assert_eq!(a.name, DEFAULT_NAME);
        assert_eq!(s.mode, Mode::Max);
        assert!(s.for_export);

        let s = CacheSpec::parse(
            "type=azblob,account_url=http://127.0.0.1:10000/devstoreaccount1,container=c01,name=team/app,secret_access_key=S3CRET==",
            false,
        )
        .unwrap();
        let a = az(&s);
        assert_eq!(
            a.account_url.as_deref(),
            Some("http://127.0.0.1:10000/devstoreaccount1")
        );
        assert_eq!(a.name, "team/app");
        assert_eq!(a.secret_access_key.as_ref().unwrap().expose(), "S3CRET==");
    }

    #[test]
    fn azblob_sas_in_url_moves_to_sas_token() {
        let s = CacheSpec::parse(
            "type=azblob,account_url=https://acct.blob.core.windows.net?sv=2022-11-02&sig=abc%2Bdef,container=cache",
            true,
        )
        .unwrap();
        let a = az(&s);
        assert_eq!(
            a.account_url.as_deref(),
            Some("https://acct.blob.core.windows.net")
        );
        assert_eq!(
            a.sas_token.as_ref().unwrap().expose(),
            "sv=2022-11-02&sig=abc%2Bdef"
        );
        let shown = s.to_string();
        assert!(!shown.contains("sig="), "{shown}");
        assert!(shown.contains("sas_token=<redacted>"), "{shown}");
    }

    #[test]
    fn azblob_rejections_name_the_problem() {
        for (spec, needle) in [
            (
                "type=azblob,account_url=https://a.blob.core.windows.net",
                "container=NAME",
            ),
            (
                "type=azblob,container=Bad_Name",
                "not a valid Azure container name",
            ),
            (
                "type=azblob,container=ab",
                "not a valid Azure container name",
            ),
            (
                "type=azblob,container=a--b",
                "not a valid Azure container name",
            ),
            ("type=azblob,container=cache,name=../x", "prefix"),
            ("type=azblob,container=cache,account_url=ftp://x", "http"),
            (
                "type=azblob,container=cache,account_url=https://h/acct/extra",
                "path beyond",
            ),
            (
                "type=azblob,container=cache,account_url=https://u:p@h",
                "user or password",
            ),
            (
                "type=azblob,container=cache,colour=blue",
                "no option `colour`",
            ),
            (
                "type=azblob,container=cache,mode=all",
                "mode=min or mode=max",
            ),
            ("type=azblob,container=cache,container=other", "given twice"),
            (
                "type=azblob,container=cache,secret_access_key=k,sas_token=t",
                "not both",
            ),
            (
                "type=azblob,container=cache,account_name=UPPER",
                "storage account name",
            ),
            ("type=gha", "not supported"),
            ("type=nope", "unknown type"),
            ("mode=max", "no `type=`"),
            ("type=azblob,\"container=cache", "quote"),
        ] {
            let e = CacheSpec::parse(spec, true).unwrap_err().to_string();
            assert!(e.contains(needle), "{spec}: {e}");
        }
    }

    #[test]
    fn secrets_never_reach_errors_or_display() {
        let key = "c2VjcmV0LWtleS1kby1ub3Qtc2hvdw==";
        let spec = format!("type=azblob,container=cache,secret_access_key={key},colour=blue");
        let e = CacheSpec::parse(&spec, true).unwrap_err();
        assert!(!e.to_string().contains(key), "{e}");
        assert!(!format!("{e:?}").contains(key), "{e:?}");
        let spec = format!("type=azblob,container=cache,secret_access_key={key}");
        let s = CacheSpec::parse(&spec, true).unwrap();
        assert!(!s.to_string().contains(key));
        assert!(!format!("{s:?}").contains(key));
        // a SAS query on the URL, in an error
        let e = CacheSpec::parse(
            "type=azblob,container=cache,account_url=https://a.blob.core.windows.net?sig=TOPSECRET,sas_token=x",
            true,
        )
        .unwrap_err();
        assert!(!e.to_string().contains("TOPSECRET"), "{e}");
        // an unquoted SAS with a comma (spr=https,http) splits; its signature is still hidden
        let e = CacheSpec::parse(
            "type=azblob,container=cache,account_url=https://a.blob.core.windows.net?sv=1&spr=https,http&sig=TOPSECRET",
            true,
        )
        .unwrap_err();
        assert!(!e.to_string().contains("TOPSECRET"), "{e}");
        assert!(!format!("{e:?}").contains("TOPSECRET"), "{e:?}");
        // quoted, it parses
        let s = CacheSpec::parse(
            "type=azblob,container=cache,\"account_url=https://a.blob.core.windows.net?sv=1&spr=https,http&sig=TOPSECRET\"",
            true,
        )
        .unwrap();
        assert_eq!(
            az(&s).sas_token.as_ref().unwrap().expose(),
            "sv=1&spr=https,http&sig=TOPSECRET"
        );
        // a bare secret field without '='
        let e =
            CacheSpec::parse("type=azblob,container=cache,secret_access_keyXYZ", true).unwrap_err();
        assert!(!e.to_string().contains("XYZ"), "{e}");
    }

    #[test]
    fn quoted_fields_and_ignored_docker_options() {
        let s = CacheSpec::parse(
            "type=registry,\"ref=127.0.0.1:5000/app:cache\",compression=zstd,oci-mediatypes=true,ignore-error=true",
            true,
        )
        .unwrap();
        assert_eq!(s.ignored, vec!["compression", "oci-mediatypes"]);
        assert!(s.ignore_error);
        match &s.backend {
            Backend::Registry { reference } => {
                assert_eq!(reference.registry, "127.0.0.1:5000");
                assert_eq!(reference.repository, "app");
                assert_eq!(reference.tag.as_deref(), Some("cache"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            s.to_string(),
            "type=registry,ref=127.0.0.1:5000/app:cache,mode=min,ignore-error=true"
        );
    }

    #[test]
    fn registry_refs() {
        let s = CacheSpec::parse("type=registry,ref=user/app", false).unwrap();
        match &s.backend {
            Backend::Registry { reference } => {
                assert_eq!(reference.registry, "docker.io");
                assert_eq!(reference.tag.as_deref(), Some("latest"));
            }
            other => panic!("{other:?}"),
        }
        let d = format!(
            "type=registry,ref=127.0.0.1:5000/app@sha256:{}",
            "a".repeat(64)
        );
        assert!(
            CacheSpec::parse(&d, true)
                .unwrap_err()
                .to_string()
                .contains("not a digest")
        );
        let long = format!("type=registry,ref=127.0.0.1:5000/app:{}", "t".repeat(100));
        assert!(
            CacheSpec::parse(&long, true)
                .unwrap_err()
                .to_string()
                .contains("at most 95")
        );
        assert!(CacheSpec::parse("type=registry", true).is_err());
        assert!(CacheSpec::parse("type=registry,ref=UPPER/x", true).is_err());
    }
}
