//! The SLSA v1 provenance predicate of a build, made from its build record: the builder, the
//! parameters (build-args with secret-named values redacted, `--secret` ids only), and as
//! resolved dependencies the source revision, the context, the bases, the toolchain roots (by
//! their lock key) and the lockfiles, each by digest.

use std::collections::BTreeMap;

use ocibuild_oci::reference::{Location, Reference};
use ocibuild_record::BuildRecord;
use ocibuild_sign::slsa::{BuildMetadata, Provenance, ResourceDescriptor};
use serde_json::{Value, json};

/// The builder id a provenance names when none is given (`--builder-id`).
pub const DEFAULT_BUILDER_ID: &str = "https://ocibuild.dev/builder/v1";

/// Whether a build-arg's name says it holds a secret (Docker's `SecretsUsedInArgOrEnv` words:
/// `NPM_TOKEN`, `DB_PASSWORD`, `API_KEY`, `AUTH`, …, also run together: `APITOKEN`).
pub fn secret_name(name: &str) -> bool {
    const EXACT: &[&str] = &[
        "apikey",
        "auth",
        "credential",
        "credentials",
        "key",
        "password",
        "pass",
        "pword",
        "passwd",
        "secret",
        "token",
        "pat",
        "sas",
    ];
    const SUFFIX: &[&str] = &[
        "apikey",
        "token",
        "password",
        "passwd",
        "secret",
        "credential",
        "credentials",
    ];
    name.to_ascii_lowercase()
        .split(['_', '-', '.'])
        .any(|w| EXACT.contains(&w) || SUFFIX.iter().any(|s| w.ends_with(s)))
}

/// A build-arg value as the provenance shows it: `<redacted>` when its name says secret, and a
/// URL's `user:password@` cut out.
fn shown_value(name: &str, value: &str) -> String {
    if secret_name(name) {
        return "<redacted>".to_string();
    }
    let Some(i) = value.find("://") else {
        return value.to_string();
    };
    let rest = &value[i + 3..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{}<redacted>{}", &value[..i + 3], &rest[at..]),
        None => value.to_string(),
    }
}

/// The SLSA v1 provenance predicate of a build, from its record: the builder, the parameters
/// (build-args with secret-named values redacted, `--secret` ids only), and as resolved
/// dependencies the source revision, the context, the bases, the toolchain roots (by their lock
/// key) and the lockfiles, each by digest.
pub fn provenance(
    record: &BuildRecord,
    builder_id: &str,
    context_digest: Option<&str>,
    started: u64,
    finished: u64,
) -> Provenance {
    let p = &record.parameters;
    let mut params = serde_json::Map::new();
    params.insert(
        "frontend".into(),
        serde_json::to_value(&record.frontend).unwrap_or(Value::Null),
    );
    let args: serde_json::Map<String, Value> = p
        .build_args
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(shown_value(k, v))))
        .collect();
    params.insert("buildArgs".into(), Value::Object(args));
    params.insert("secrets".into(), json!(p.secrets));
    params.insert("platforms".into(), json!(p.platforms));
    if let Some(e) = p.source_date_epoch {
        params.insert("sourceDateEpoch".into(), json!(e));
    }
    params.insert("flags".into(), json!(p.flags));
    let mut source = serde_json::Map::new();
    if let Some(u) = &record.source.url {
        source.insert("uri".into(), json!(u));
    }
    if let Some(r) = &record.source.revision {
        source.insert("revision".into(), json!(r));
    }
    if !source.is_empty() {
        params.insert("source".into(), Value::Object(source));
    }

    let mut deps: Vec<ResourceDescriptor> = Vec::new();
    if let Some(rev) = &record.source.revision {
        let mut d = match &record.source.url {
            Some(u) => ResourceDescriptor::new(format!("git+{u}"), "gitCommit", rev),
            None => ResourceDescriptor {
                digest: BTreeMap::from([("gitCommit".to_string(), rev.clone())]),
                ..ResourceDescriptor::default()
            },
        };
        d.name = Some("source".into());
        deps.push(d);
    }
    if let Some(c) =
        context_digest.or_else(|| record.source.context_digest.as_ref().map(|d| d.hex()))
    {
        deps.push(ResourceDescriptor {
            name: Some("context".into()),
            digest: BTreeMap::from([("sha256".to_string(), c.to_string())]),
            ..ResourceDescriptor::default()
        });
    }
    let annotated = |mut d: ResourceDescriptor, ann: Value| {
        if let Value::Object(m) = ann {
            d.annotations = Some(m);
        }
        d
    };
    for img in &record.images {
        for b in &img.bases {
            let Some(digest) = &b.digest else { continue };
            let d = ResourceDescriptor {
                name: Some(format!("base:{}", b.name)),
                ..ResourceDescriptor::new(
                    base_uri(b, &img.platform),
                    digest.algorithm(),
                    digest.hex(),
                )
            };
            deps.push(annotated(
                d,
                json!({"platform": img.platform, "inImage": b.in_image}),
            ));
        }
        for t in &img.toolchains {
            let d = ResourceDescriptor {
                name: Some(format!("toolchain:{}", t.name)),
                ..ResourceDescriptor::new(
                    format!("ocibuild:toolchain/{}", t.name),
                    "sha256",
                    &t.lock_key,
                )
            };
            deps.push(annotated(
                d,
                json!({"platform": img.platform, "digestOf": "the toolchain root's lock: its Debian packages by version and .deb SHA-256"}),
            ));
        }
        for l in &img.lockfiles {
            let d = ResourceDescriptor {
                name: Some(l.path.clone()),
                ..ResourceDescriptor::new(format!("file:{}", l.path), "sha256", &l.sha256)
            };
            if !deps.contains(&d) {
                deps.push(d);
            }
        }
    }
    let metadata = BuildMetadata {
        invocation_id: None,
        started_on: Some(ocibuild_oci::image::rfc3339(started)),
        finished_on: Some(ocibuild_oci::image::rfc3339(finished.max(started))),
    };
    Provenance::new(
        builder_id,
        &record.builder.version,
        deps,
        params,
        Some(metadata),
    )
}

/// A base's URI: `ocibuild:base/PROFILE` for a base assembled from Debian packages, the
/// reference as written for `oci:`/`oci-archive:` bases, else BuildKit's purl form
/// (`pkg:docker/REGISTRY/REPO@TAG?platform=OS%2FARCH`).
fn base_uri(b: &ocibuild_record::Base, platform: &str) -> String {
    if b.debian.is_some() {
        return format!("ocibuild:base/{}", b.reference);
    }
    match Reference::parse(&b.reference) {
        Ok(r) if !b.reference.contains("://") && Location::parse(&b.reference).is_err() => format!(
            "pkg:docker/{}/{}@{}?platform={}",
            r.registry,
            r.repository,
            r.tag_or_latest(),
            platform.replace('/', "%2F")
        ),
        _ => b.reference.clone(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_are_recognised() {
        for n in [
            "NPM_TOKEN",
            "GITHUB_TOKEN",
            "DB_PASSWORD",
            "API_KEY",
            "AUTH",
            "APITOKEN",
            "aws-secret",
            "REGISTRY_CREDENTIALS",
        ] {
            assert!(secret_name(n), "{n}");
        }
        for n in [
            "VERSION",
            "KEYBOARD",
            "MONKEY",
            "PASSAGE",
            "BASE_IMAGE",
            "TOKENIZER_MODEL",
        ] {
            assert!(!secret_name(n), "{n}");
        }
    }

    #[test]
    fn base_uris_name_debian_profiles_layouts_and_registry_images() {
        let base = |reference: &str, debian: bool| ocibuild_record::Base {
            name: "runtime".into(),
            reference: reference.into(),
            digest: None,
            in_image: true,
            debian: debian.then(|| ocibuild_record::DebianSet {
                release: "trixie".into(),
                architecture: "amd64".into(),
                packages: Vec::new(),
            }),
        };
        assert_eq!(
            base_uri(&base("static:nonroot", true), "linux/amd64"),
            "ocibuild:base/static:nonroot"
        );
        assert_eq!(
            base_uri(&base("oci:base:v1", false), "linux/amd64"),
            "oci:base:v1"
        );
        assert_eq!(
            base_uri(
                &base("reg.example.invalid/team/app:1.2", false),
                "linux/arm64"
            ),
            "pkg:docker/reg.example.invalid/team/app@1.2?platform=linux%2Farm64"
        );
    }

    #[test]
    fn values_lose_secrets_and_url_credentials() {
        assert_eq!(shown_value("NPM_TOKEN", "abc"), "<redacted>");
        assert_eq!(shown_value("VERSION", "1.2"), "1.2");
        assert_eq!(
            shown_value("MIRROR", "https://me:pw@mirror.example.invalid/x@y"),
            "https://<redacted>@mirror.example.invalid/x@y"
        );
        assert_eq!(
            shown_value("MIRROR", "https://mirror.example.invalid/x@y"),
            "https://mirror.example.invalid/x@y"
        );
    }
}
