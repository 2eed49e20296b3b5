//! Referrers against the real `docker-registry` 2.8, which has no referrers API: artifacts pushed
//! with a `subject` are listed through the `sha256-<hex>` tag-schema fallback index, which stays
//! correct as referrers are added.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{self, Read};

use ocibuild_oci::image::{Descriptor, Manifest, to_json_bytes};
use ocibuild_oci::{Digest, media};
use ocibuild_registry::auth::KeychainOptions;
use ocibuild_registry::client::{BlobOutcome, Registry, RegistryOptions, fallback_tag};
use ocibuild_testkit as tk;
use ocibuild_testkit::registry::{RegistryOptions as PeerOptions, start_registry};

fn put(reg: &Registry, host: &str, repo: &str, bytes: &[u8], mt: &str) -> Descriptor {
    let d = Descriptor::of_bytes(mt, bytes);
    let data = bytes.to_vec();
    let open = move |off: u64| -> io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(io::Cursor::new(data[off as usize..].to_vec())))
    };
    let outcome = reg.put_blob(host, repo, &d, None, &open).unwrap();
    assert_ne!(outcome, BlobOutcome::Mounted);
    d
}

fn manifest(
    config: Descriptor,
    layers: Vec<Descriptor>,
    subject: Option<Descriptor>,
    artifact_type: Option<&str>,
) -> Vec<u8> {
    let mut annotations = BTreeMap::new();
    annotations.insert(
        "org.example.kind".to_string(),
        artifact_type.unwrap_or("image").to_string(),
    );
    let m = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.into()),
        artifact_type: artifact_type.map(str::to_string),
        config,
        layers,
        subject,
        annotations,
    };
    to_json_bytes(&m, "manifest").unwrap()
}

#[test]
fn referrers_fall_back_to_the_tag_schema() {
    let ctx = tk::TestContext::new();
    let peer = start_registry(&ctx, PeerOptions::default());
    let reg = Registry::new(RegistryOptions {
        keychain: KeychainOptions::with_env(Default::default()),
        ..RegistryOptions::default()
    });
    let (host, repo) = (peer.host.as_str(), "app");

    // the subject: a tiny image
    let cfg = put(
        &reg,
        host,
        repo,
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#,
        media::OCI_CONFIG,
    );
    let subject_bytes = manifest(cfg, vec![], None, None);
    reg.put_manifest(host, repo, "v1", &subject_bytes, media::OCI_MANIFEST)
        .unwrap();
    let subject = Descriptor::of_bytes(media::OCI_MANIFEST, &subject_bytes);

    // nothing refers to it yet
    let (idx, api) = reg.referrers(host, repo, &subject.digest).unwrap();
    assert!(!api, "docker-registry 2.8 has no referrers API");
    assert!(idx.manifests.is_empty());

    // two artifacts with a subject
    let empty = put(&reg, host, repo, b"{}", media::OCI_EMPTY);
    let mut ids: Vec<Digest> = vec![];
    for (kind, payload) in [
        ("application/vnd.example.sbom", &b"sbom"[..]),
        ("application/vnd.example.sig", &b"sig"[..]),
    ] {
        let layer = put(&reg, host, repo, payload, "application/octet-stream");
        let bytes = manifest(
            empty.clone(),
            vec![layer],
            Some(subject.clone()),
            Some(kind),
        );
        let d = reg
            .push_referrer(
                host,
                repo,
                &subject.digest,
                &bytes,
                media::OCI_MANIFEST,
                Some(kind),
            )
            .unwrap();
        ids.push(d);
        // pushing the same one again does not duplicate it
        reg.push_referrer(
            host,
            repo,
            &subject.digest,
            &bytes,
            media::OCI_MANIFEST,
            Some(kind),
        )
        .unwrap();
    }
    let (idx, _) = reg.referrers(host, repo, &subject.digest).unwrap();
    let got: Vec<(Digest, Option<String>)> = idx
        .manifests
        .iter()
        .map(|m| (m.digest.clone(), m.artifact_type.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (ids[0].clone(), Some("application/vnd.example.sbom".into())),
            (ids[1].clone(), Some("application/vnd.example.sig".into()))
        ]
    );
    assert_eq!(
        idx.manifests[1]
            .annotations
            .get("org.example.kind")
            .map(String::as_str),
        Some("application/vnd.example.sig")
    );
    // the fallback tag is a real index in the registry
    let tags = reg.list_tags(host, repo).unwrap();
    assert!(tags.contains(&fallback_tag(&subject.digest)), "{tags:?}");
}
