//! Notary Project (notation) signatures, checked by tools that are not ocibuild's: openssl makes
//! the CA and signing certificates, verifies ocibuild's JWS signature over the signing input the
//! test computes itself, and verifies the `x5c` chain (`openssl verify`); an envelope the test
//! builds and signs with openssl verifies with `ocibuild verify --format notation`. Trust-policy
//! cases cover each level, an untrusted identity and CA, an expired signature, a wrong scope and
//! tampered envelopes; against docker-registry (no referrers API) the signature is attached
//! through the `sha256-<hex>` fallback tag, listed there, verified, and carried by `copy`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use ocibuild_testkit as tk;
use ocibuild_testkit::registry::{RegistryOptions, start_registry};
use serde_json::{Value, json};
use support::{
    openssl, openssl_ca, openssl_ca_with, openssl_leaf, openssl_leaf_with, openssl_verifies,
    openssl_verifies_with, s,
};

fn ocibuild(ctx: &tk::TestContext) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ocibuild"));
    c.arg("--root")
        .arg(ctx.path("store"))
        .arg("--progress")
        .arg("plain");
    c.env("DOCKER_CONFIG", ctx.path("docker"));
    c.env("HOME", ctx.path("home"));
    c.env_remove("XDG_CONFIG_HOME");
    for v in [
        "OCIBUILD_REGISTRY_USER",
        "OCIBUILD_REGISTRY_PASSWORD",
        "OCIBUILD_CERTS_D",
        "REGISTRY_AUTH_FILE",
    ] {
        c.env_remove(v);
    }
    c
}

fn out(o: std::process::Output) -> String {
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

fn code(cmd: &mut Command) -> (i32, String, String) {
    let o = tk::run(cmd);
    (
        tk::exit_code(o.status),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A one-file image in a layout at `dir:tag`; returns its digest.
fn image(ctx: &tk::TestContext, dir: &Path, tag: &str, content: &str) -> String {
    let rootfs = ctx.path(format!("rootfs-{tag}"));
    fs::create_dir_all(&rootfs).unwrap();
    fs::write(rootfs.join("msg"), content).unwrap();
    out(tk::run_ok(
        ocibuild(ctx)
            .arg("assemble")
            .arg("--layer")
            .arg(format!("{}:/", rootfs.display()))
            .args(["--entrypoint", "/msg", "--platform", "linux/amd64"])
            .arg("--output")
            .arg(format!("oci:{}:{tag}", dir.display())),
    ))
}

fn der_of(crt: &Path) -> Vec<u8> {
    tk::run_ok(openssl().args(["x509", "-in", s(crt), "-outform", "DER"])).stdout
}

/// ECDSA raw r‖s (JWS) → ASN.1 DER (openssl).
fn raw_to_der(raw: &[u8]) -> Vec<u8> {
    assert!(
        raw.len() == 64 || raw.len() == 96,
        "an ES256 signature is 64 bytes, an ES384 one 96: {}",
        raw.len()
    );
    let half = raw.len() / 2;
    let int = |x: &[u8]| {
        let mut v: Vec<u8> = x.iter().copied().skip_while(|b| *b == 0).collect();
        if v.first().is_none_or(|b| b & 0x80 != 0) {
            v.insert(0, 0);
        }
        let mut o = vec![0x02, v.len() as u8];
        o.extend(v);
        o
    };
    let mut body = int(&raw[..half]);
    body.extend(int(&raw[half..]));
    let mut o = vec![0x30, body.len() as u8];
    o.extend(body);
    o
}

/// ASN.1 DER (openssl) → raw r‖s of a P-256 signature.
fn der_to_raw(der: &[u8]) -> Vec<u8> {
    der_to_raw_n(der, 32)
}

/// ASN.1 DER (openssl) → raw r‖s, each `half` bytes.
fn der_to_raw_n(der: &[u8], half: usize) -> Vec<u8> {
    assert_eq!(der[0], 0x30);
    let mut i = 2;
    let mut out = Vec::new();
    for _ in 0..2 {
        assert_eq!(der[i], 0x02);
        let len = der[i + 1] as usize;
        let v: Vec<u8> = der[i + 2..i + 2 + len]
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        out.extend(std::iter::repeat_n(0u8, half - v.len()));
        out.extend(v);
        i += 2 + len;
    }
    out
}

fn openssl_sign(key: &Path, data: &[u8], dir: &Path) -> Vec<u8> {
    openssl_sign_with(key, data, dir, "-sha256", &[])
}

fn openssl_sign_with(key: &Path, data: &[u8], dir: &Path, hash: &str, sigopts: &[&str]) -> Vec<u8> {
    let (d, sp) = (dir.join("tosign"), dir.join("signed"));
    fs::write(&d, data).unwrap();
    let mut c = openssl();
    c.args(["dgst", hash]);
    for o in sigopts {
        c.args(["-sigopt", o]);
    }
    tk::run_ok(c.args(["-sign", s(key), "-out", s(&sp), s(&d)]));
    fs::read(&sp).unwrap()
}

fn blob(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
}

fn write_blob(layout: &Path, bytes: &[u8]) -> String {
    let d = format!("sha256:{}", sha256_hex(bytes));
    fs::write(blob(layout, &d), bytes).unwrap();
    d
}

/// Store `envelope` as a notation signature of `subject` in a layout, the way the spec lays it
/// out (built here, not by ocibuild).
fn store_referrer(layout: &Path, subject: &Value, envelope: &[u8]) {
    store_referrer_as(layout, subject, envelope, "application/jose+json")
}

fn store_referrer_as(layout: &Path, subject: &Value, envelope: &[u8], media_type: &str) {
    let ed = write_blob(layout, envelope);
    let cd = write_blob(layout, b"{}");
    let m = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.cncf.notary.signature",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": cd, "size": 2},
        "layers": [{"mediaType": media_type, "digest": ed, "size": envelope.len()}],
        "subject": subject,
        "annotations": {"io.cncf.notary.x509chain.thumbprint#S256": "[]"}
    });
    let mb = serde_json::to_vec(&m).unwrap();
    let md = write_blob(layout, &mb);
    let ip = layout.join("index.json");
    let mut idx: Value = serde_json::from_slice(&fs::read(&ip).unwrap()).unwrap();
    idx["manifests"].as_array_mut().unwrap().push(json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": md,
        "size": mb.len(),
        "artifactType": "application/vnd.cncf.notary.signature"
    }));
    fs::write(&ip, serde_json::to_vec(&idx).unwrap()).unwrap();
}

/// The subject descriptor of a layout's tag.
fn subject_of(layout: &Path, tag: &str) -> Value {
    let idx: Value = serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let d = idx["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap();
    json!({"mediaType": d["mediaType"], "digest": d["digest"], "size": d["size"]})
}

/// The notation signature manifests of `digest` in a layout.
fn layout_signatures(layout: &Path, digest: &str) -> Vec<Value> {
    let idx: Value = serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    idx["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| {
            let m: Value =
                serde_json::from_slice(&fs::read(blob(layout, d["digest"].as_str()?)).ok()?)
                    .ok()?;
            (m["artifactType"] == "application/vnd.cncf.notary.signature"
                && m["subject"]["digest"] == digest)
                .then_some(m)
        })
        .collect()
}

fn policy(path: &Path, scope: &str, level: &str, stores: &[&str], identity: &str) {
    let p = if level == "skip" {
        json!({"version": "1.0", "trustPolicies": [{
            "name": "images", "registryScopes": [scope],
            "signatureVerification": {"level": "skip"}}]})
    } else {
        json!({"version": "1.0", "trustPolicies": [{
            "name": "images", "registryScopes": [scope],
            "signatureVerification": {"level": level},
            "trustStores": stores,
            "trustedIdentities": [identity]}]})
    };
    fs::write(path, serde_json::to_vec_pretty(&p).unwrap()).unwrap();
}

const LEAF_SUBJECT: &str = "/C=US/ST=WA/L=Seattle/O=Acme Rockets/CN=image-builder";
const TRUSTED: &str = "x509.subject: C=US, ST=WA, O=Acme Rockets, CN=image-builder";

struct Pki {
    ca: (PathBuf, PathBuf),
    leaf: (PathBuf, PathBuf, PathBuf),
    chain: PathBuf,
    store: PathBuf,
}

fn pki(dir: &Path) -> Pki {
    let ca = openssl_ca(
        dir,
        "ca",
        "/C=US/ST=WA/O=Acme Rockets/CN=Acme Rockets Test CA",
    );
    let other = openssl_ca(dir, "other-ca", "/C=US/ST=WA/O=Other/CN=Other CA");
    let leaf = openssl_leaf(dir, "leaf", LEAF_SUBJECT, &ca);
    let chain = dir.join("chain.pem");
    let mut text = fs::read(&leaf.1).unwrap();
    text.extend(fs::read(&ca.1).unwrap());
    fs::write(&chain, text).unwrap();
    // notation's trust store layout: x509/ca/NAME/*.crt
    let store = dir.join("truststore");
    for (name, crt) in [("acme", &ca.1), ("other", &other.1)] {
        let d = store.join("x509/ca").join(name);
        fs::create_dir_all(&d).unwrap();
        fs::copy(crt, d.join(format!("{name}.crt"))).unwrap();
    }
    Pki {
        ca,
        leaf,
        chain,
        store,
    }
}

#[test]
fn notation_jws_signature_checks_with_openssl_and_trust_policies_gate() {
    let ctx = tk::TestContext::new();
    let dir = ctx.path("work");
    fs::create_dir_all(&dir).unwrap();
    let pki = pki(&dir);
    let layout = ctx.path("layout");
    let digest = image(&ctx, &layout, "v1", "hello notation\n");
    let loc = format!("oci:{}:v1", layout.display());

    // an RSA or CA certificate is refused with the reason; a chain for another key too
    let (c, _, e) = code(ocibuild(&ctx).args([
        "sign",
        "--format",
        "notation",
        "--key",
        s(&pki.leaf.0),
        &loc,
    ]));
    assert_eq!(c, 2, "{e}");
    assert!(e.contains("--cert"), "{e}");
    let (c, _, e) = code(ocibuild(&ctx).args([
        "sign",
        "--format",
        "notation",
        "--key",
        s(&pki.ca.0),
        "--cert",
        s(&pki.chain),
        &loc,
    ]));
    assert_eq!(c, 1, "{e}");
    assert!(e.contains("public key differs"), "{e}");

    let stdout = out(tk::run_ok(ocibuild(&ctx).args([
        "sign",
        "--format",
        "notation",
        "--key",
        s(&pki.leaf.0),
        "--cert",
        s(&pki.chain),
        "--expiry",
        "24h",
        "-m",
        "build=42",
        &loc,
    ])));
    let sigs = layout_signatures(&layout, &digest);
    assert_eq!(sigs.len(), 1);
    let m = &sigs[0];
    assert!(stdout.starts_with("sha256:"), "{stdout}");
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );
    assert_eq!(m["layers"][0]["mediaType"], "application/jose+json");
    let thumbs: Vec<String> = serde_json::from_str(
        m["annotations"]["io.cncf.notary.x509chain.thumbprint#S256"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let (leaf_der, ca_der) = (der_of(&pki.leaf.1), der_of(&pki.ca.1));
    assert_eq!(thumbs, vec![sha256_hex(&leaf_der), sha256_hex(&ca_der)]);

    // the envelope, read as the JWS JSON serialization
    let env_bytes = fs::read(blob(&layout, m["layers"][0]["digest"].as_str().unwrap())).unwrap();
    let env: Value = serde_json::from_slice(&env_bytes).unwrap();
    let protected: Value =
        serde_json::from_slice(&B64URL.decode(env["protected"].as_str().unwrap()).unwrap())
            .unwrap();
    assert_eq!(protected["alg"], "ES256");
    assert_eq!(
        protected["cty"],
        "application/vnd.cncf.notary.payload.v1+json"
    );
    assert_eq!(protected["io.cncf.notary.signingScheme"], "notary.x509");
    assert!(protected["io.cncf.notary.signingTime"].is_string());
    assert!(protected["io.cncf.notary.expiry"].is_string());
    let crit: Vec<&str> = protected["crit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(crit.contains(&"io.cncf.notary.signingScheme"));
    assert!(crit.contains(&"io.cncf.notary.expiry"));
    let payload: Value =
        serde_json::from_slice(&B64URL.decode(env["payload"].as_str().unwrap()).unwrap()).unwrap();
    let subject = subject_of(&layout, "v1");
    assert_eq!(payload["targetArtifact"]["digest"], digest);
    assert_eq!(payload["targetArtifact"]["mediaType"], subject["mediaType"]);
    assert_eq!(payload["targetArtifact"]["size"], subject["size"]);
    assert_eq!(payload["targetArtifact"]["annotations"]["build"], "42");
    let x5c: Vec<Vec<u8>> = env["header"]["x5c"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| B64.decode(c.as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(x5c, vec![leaf_der.clone(), ca_der.clone()]);

    // openssl: the signature over ASCII(protected '.' payload), and the x5c chain
    let input = format!(
        "{}.{}",
        env["protected"].as_str().unwrap(),
        env["payload"].as_str().unwrap()
    );
    let raw = B64URL.decode(env["signature"].as_str().unwrap()).unwrap();
    assert!(openssl_verifies(
        &pki.leaf.2,
        &raw_to_der(&raw),
        input.as_bytes(),
        &dir
    ));
    assert!(!openssl_verifies(
        &pki.leaf.2,
        &raw_to_der(&raw),
        b"other",
        &dir
    ));
    let (x5c_leaf, x5c_root) = (dir.join("x5c-leaf.der"), dir.join("x5c-root.der"));
    fs::write(&x5c_leaf, &x5c[0]).unwrap();
    fs::write(&x5c_root, &x5c[1]).unwrap();
    let to_pem = |d: &Path| {
        let p = d.with_extension("pem");
        tk::run_ok(openssl().args(["x509", "-inform", "DER", "-in", s(d), "-out", s(&p)]));
        p
    };
    let (leaf_pem, root_pem) = (to_pem(&x5c_leaf), to_pem(&x5c_root));
    let v = out(tk::run_ok(openssl().args([
        "verify",
        "-CAfile",
        s(&root_pem),
        "-purpose",
        "any",
        s(&leaf_pem),
    ])));
    assert!(v.ends_with("OK"), "{v}");

    // trust policies: each level, identities, stores, scope
    let tp = dir.join("trustpolicy.json");
    let verify = |scope_flag: Option<&str>| {
        let mut c = ocibuild(&ctx);
        c.args([
            "verify",
            "--format",
            "notation",
            "--trust-policy",
            s(&tp),
            "--trust-store",
            s(&pki.store),
        ]);
        if let Some(sc) = scope_flag {
            c.args(["--scope", sc]);
        }
        c.arg(&loc);
        code(&mut c)
    };
    let scope = "reg.test/acme/app";
    for level in ["strict", "permissive", "audit"] {
        policy(&tp, scope, level, &["ca:acme"], TRUSTED);
        let (c, o, e) = verify(Some(scope));
        assert_eq!(c, 0, "{level}: {e}");
        assert!(e.contains("Successfully verified"), "{e}");
        assert!(e.contains("revocation: not checked"), "{e}");
        let r: Value = serde_json::from_str(o.trim()).unwrap();
        assert_eq!(r["signatures"][0]["verified"], true, "{o}");
    }
    // the wildcard identity, and the default locations under ~/.config/notation
    let home_notation = ctx.path("home/.config/notation");
    fs::create_dir_all(&home_notation).unwrap();
    policy(
        &home_notation.join("trustpolicy.json"),
        "*",
        "strict",
        &["ca:acme"],
        "*",
    );
    tk::run_ok(Command::new("cp").args([
        "-r",
        s(&pki.store),
        s(&home_notation.join("truststore")),
    ]));
    let (c, _, e) = code(ocibuild(&ctx).args(["verify", "--format", "notation", &loc]));
    assert_eq!(c, 0, "{e}");

    // an untrusted identity: strict and permissive refuse, audit logs, skip skips
    let stranger = "x509.subject: C=US, ST=WA, O=Acme Rockets, CN=someone-else";
    for (level, want) in [("strict", 3), ("permissive", 3), ("audit", 0), ("skip", 0)] {
        policy(&tp, scope, level, &["ca:acme"], stranger);
        let (c, _, e) = verify(Some(scope));
        assert_eq!(c, want, "{level}: {e}");
        match level {
            "audit" => assert!(
                e.contains("warning") && e.contains("trustedIdentities"),
                "{e}"
            ),
            "skip" => assert!(e.contains("skips signature verification"), "{e}"),
            _ => assert!(
                e.contains("not one of the policy's trustedIdentities"),
                "{e}"
            ),
        }
    }
    // a trust store whose CA did not issue the chain
    policy(&tp, scope, "strict", &["ca:other"], TRUSTED);
    let (c, _, e) = verify(Some(scope));
    assert_eq!(c, 3, "{e}");
    assert!(
        e.contains("does not lead to a certificate of the policy's trust stores"),
        "{e}"
    );
    // a scope no policy names: the verification cannot run
    policy(&tp, "reg.test/acme/other", "strict", &["ca:acme"], TRUSTED);
    let (c, _, e) = verify(Some(scope));
    assert_eq!(c, 1, "{e}");
    assert!(
        e.contains("no policy's registryScopes names `reg.test/acme/app`"),
        "{e}"
    );
    // a layout without --scope only matches `*`
    let (c, _, e) = verify(None);
    assert_eq!(c, 1, "{e}");
    assert!(e.contains("--scope"), "{e}");

    // an envelope the test makes with openssl: expired an hour after it was signed, years ago
    let layout2 = ctx.path("layout2");
    let digest2 = image(&ctx, &layout2, "v2", "expired\n");
    let loc2 = format!("oci:{}:v2", layout2.display());
    let subject2 = subject_of(&layout2, "v2");
    let make_envelope = |protected: Value, target: &Value| {
        let ph = B64URL.encode(serde_json::to_vec(&protected).unwrap());
        let pl = B64URL.encode(serde_json::to_vec(&json!({ "targetArtifact": target })).unwrap());
        let sig = openssl_sign(&pki.leaf.0, format!("{ph}.{pl}").as_bytes(), &dir);
        serde_json::to_vec(&json!({
            "payload": pl,
            "protected": ph,
            "header": {"x5c": [B64.encode(&leaf_der), B64.encode(&ca_der)],
                       "io.cncf.notary.signingAgent": "test/openssl"},
            "signature": B64URL.encode(der_to_raw(&sig)),
        }))
        .unwrap()
    };
    let expired = json!({
        "alg": "ES256",
        "cty": "application/vnd.cncf.notary.payload.v1+json",
        "crit": ["io.cncf.notary.signingScheme", "io.cncf.notary.expiry"],
        "io.cncf.notary.signingScheme": "notary.x509",
        "io.cncf.notary.signingTime": "2021-03-04T10:00:00-08:00",
        "io.cncf.notary.expiry": "2021-03-04T11:00:00-08:00",
    });
    store_referrer(&layout2, &subject2, &make_envelope(expired, &subject2));
    let verify2 = |level: &str| {
        policy(&tp, "*", level, &["ca:acme"], TRUSTED);
        code(ocibuild(&ctx).args([
            "verify",
            "--format",
            "notation",
            "--trust-policy",
            s(&tp),
            "--trust-store",
            s(&pki.store),
            &loc2,
        ]))
    };
    let (c, _, e) = verify2("strict");
    assert_eq!(c, 3, "{e}");
    assert!(e.contains("expired at 2021-03-04T11:00:00-08:00"), "{e}");
    let (c, _, e) = verify2("permissive");
    assert_eq!(c, 0, "{e}");
    assert!(e.contains("warning") && e.contains("expired"), "{e}");

    // tampered: a payload naming another image under a valid signature of it
    let layout3 = ctx.path("layout3");
    image(&ctx, &layout3, "v3", "third\n");
    let subject3 = subject_of(&layout3, "v3");
    let fresh = json!({
        "alg": "ES256",
        "cty": "application/vnd.cncf.notary.payload.v1+json",
        "crit": ["io.cncf.notary.signingScheme"],
        "io.cncf.notary.signingScheme": "notary.x509",
        "io.cncf.notary.signingTime": "2026-01-01T00:00:00Z",
    });
    store_referrer(
        &layout3,
        &subject3,
        &make_envelope(fresh.clone(), &subject2),
    );
    let loc3 = format!("oci:{}:v3", layout3.display());
    policy(&tp, "*", "audit", &["ca:acme"], TRUSTED);
    let verify3 = || {
        code(ocibuild(&ctx).args([
            "verify",
            "--format",
            "notation",
            "--trust-policy",
            s(&tp),
            "--trust-store",
            s(&pki.store),
            &loc3,
        ]))
    };
    let (c, _, e) = verify3();
    assert_eq!(c, 3, "{e}");
    assert!(
        e.contains(&format!("the signature covers {digest2}")),
        "{e}"
    );
    // tampered: the protected header changed after signing (the blob re-stored with its digest)
    let mut env: Value = serde_json::from_slice(&make_envelope(fresh.clone(), &subject3)).unwrap();
    let mut altered = fresh.clone();
    altered["io.cncf.notary.signingTime"] = json!("2026-01-02T00:00:00Z");
    env["protected"] = json!(B64URL.encode(serde_json::to_vec(&altered).unwrap()));
    let layout4 = ctx.path("layout4");
    image(&ctx, &layout4, "v4", "fourth\n");
    let subject4 = subject_of(&layout4, "v4");
    let mut env4: Value = serde_json::from_slice(&make_envelope(fresh, &subject4)).unwrap();
    env4["protected"] = env["protected"].clone();
    store_referrer(&layout4, &subject4, &serde_json::to_vec(&env4).unwrap());
    let (c, _, e) = code(ocibuild(&ctx).args([
        "verify",
        "--format",
        "notation",
        "--trust-policy",
        s(&tp),
        "--trust-store",
        s(&pki.store),
        &format!("oci:{}:v4", layout4.display()),
    ]));
    assert_eq!(c, 3, "{e}");
    assert!(e.contains("the signature does not verify"), "{e}");
    // tampered in place: ocibuild's own envelope edited on disk (its digest no longer matches)
    let ep = blob(&layout, m["layers"][0]["digest"].as_str().unwrap());
    let text = fs::read_to_string(&ep).unwrap();
    assert!(
        text.contains("\"io.cncf.notary.signingAgent\":\"ocibuild/"),
        "{text}"
    );
    let text = text.replacen("\"ocibuild/", "\"notation/", 1);
    fs::write(&ep, text).unwrap();
    policy(&tp, scope, "audit", &["ca:acme"], TRUSTED);
    let (c, _, e) = verify(Some(scope));
    assert_eq!(c, 3, "{e}");
    assert!(e.contains("tampered"), "{e}");
}

#[test]
fn notation_signature_by_fallback_tag_in_docker_registry_travels_with_copy() {
    let ctx = tk::TestContext::new();
    let reg = start_registry(&ctx, RegistryOptions::default());
    let dir = ctx.path("work");
    fs::create_dir_all(&dir).unwrap();
    let pki = pki(&dir);
    let layout = ctx.path("layout");
    let digest = image(&ctx, &layout, "v1", "registry notation\n");
    let img = reg.docker_ref("acme/app:1");
    tk::run_ok(ocibuild(&ctx).args(["push", &format!("oci:{}:v1", layout.display()), &img]));
    let sig = out(tk::run_ok(ocibuild(&ctx).args([
        "sign",
        "--format",
        "notation",
        "--key",
        s(&pki.leaf.0),
        "--cert",
        s(&pki.chain),
        &img,
    ])));

    // docker-registry has no referrers API: the signature is listed in the sha256-<hex> index
    let fallback = |repo: &str| -> Value {
        let body = out(tk::run_ok(
            Command::new(tk::require_tool("curl", "curl")).args([
                "-sS",
                "--fail",
                "-H",
                "Accept: application/vnd.oci.image.index.v1+json",
                &format!(
                    "{}/v2/{repo}/manifests/sha256-{}",
                    reg.url,
                    digest.strip_prefix("sha256:").unwrap()
                ),
            ]),
        ));
        serde_json::from_str(&body).unwrap()
    };
    let idx = fallback("acme/app");
    let listed: Vec<&Value> = idx["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["artifactType"] == "application/vnd.cncf.notary.signature")
        .collect();
    assert_eq!(listed.len(), 1, "{idx}");
    assert_eq!(listed[0]["digest"], sig);

    let tp = dir.join("trustpolicy.json");
    let verify = |image: &str| {
        code(ocibuild(&ctx).args([
            "verify",
            "--format",
            "notation",
            "--trust-policy",
            s(&tp),
            "--trust-store",
            s(&pki.store),
            image,
        ]))
    };
    policy(
        &tp,
        &format!("{}/acme/app", reg.host),
        "strict",
        &["ca:acme"],
        TRUSTED,
    );
    let (c, o, e) = verify(&img);
    assert_eq!(c, 0, "{e}");
    let r: Value = serde_json::from_str(o.trim()).unwrap();
    assert_eq!(
        r["signatures"][0]["source"],
        format!("docker://{}/acme/app@{sig}", reg.host)
    );
    // copy carries the signature (fallback tag and all); it verifies under the copy's scope
    let copy = reg.docker_ref("acme/copied:1");
    tk::run_ok(ocibuild(&ctx).args(["copy", &img, &copy]));
    // the scope is the repository: the policy for acme/app does not cover the copy
    let (c, _, e) = verify(&copy);
    assert_eq!(c, 1, "{e}");
    assert!(e.contains("no policy's registryScopes names"), "{e}");
    let idx = fallback("acme/copied");
    assert!(
        idx["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["digest"] == sig),
        "{idx}"
    );
    policy(
        &tp,
        &format!("{}/acme/copied", reg.host),
        "strict",
        &["ca:acme"],
        TRUSTED,
    );
    let (c, _, e) = verify(&copy);
    assert_eq!(c, 0, "{e}");
    // and an image nobody signed has none
    let unsigned = reg.docker_ref("acme/unsigned:1");
    let layout2 = ctx.path("layout2");
    image(&ctx, &layout2, "v1", "nobody signed this\n");
    tk::run_ok(ocibuild(&ctx).args(["push", &format!("oci:{}:v1", layout2.display()), &unsigned]));
    policy(&tp, "*", "strict", &["ca:acme"], TRUSTED);
    let (c, _, e) = verify(&unsigned);
    assert_eq!(c, 3, "{e}");
    assert!(e.contains("no notation signature found"), "{e}");
}

/// A CBOR byte string's encoding (RFC 8949 major type 2).
fn cbor_bstr(b: &[u8]) -> Vec<u8> {
    let mut o = match b.len() {
        n if n < 24 => vec![0x40 | n as u8],
        n if n < 256 => vec![0x58, n as u8],
        n => vec![0x59, (n >> 8) as u8, n as u8],
    };
    o.extend_from_slice(b);
    o
}

fn cbor_map_get<'a>(m: &'a ciborium::Value, key: &ciborium::Value) -> Option<&'a ciborium::Value> {
    m.as_map()?.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

#[test]
fn notation_cose_signature_checks_with_openssl_and_verifies() {
    use ciborium::Value as Cbor;
    let ctx = tk::TestContext::new();
    let dir = ctx.path("work");
    fs::create_dir_all(&dir).unwrap();
    let pki = pki(&dir);
    let layout = ctx.path("layout");
    let digest = image(&ctx, &layout, "v1", "hello cose\n");
    let loc = format!("oci:{}:v1", layout.display());
    tk::run_ok(ocibuild(&ctx).args([
        "sign",
        "--format",
        "notation",
        "--signature-format",
        "cose",
        "--key",
        s(&pki.leaf.0),
        "--cert",
        s(&pki.chain),
        "--expiry",
        "1h",
        &loc,
    ]));
    let sigs = layout_signatures(&layout, &digest);
    assert_eq!(sigs.len(), 1);
    assert_eq!(sigs[0]["layers"][0]["mediaType"], "application/cose");
    let bytes = fs::read(blob(
        &layout,
        sigs[0]["layers"][0]["digest"].as_str().unwrap(),
    ))
    .unwrap();

    // COSE_Sign1_Tagged: tag 18 around [protected bstr, unprotected map, payload, signature]
    let v: Cbor = ciborium::from_reader(&bytes[..]).unwrap();
    let Cbor::Tag(18, inner) = v else {
        panic!("not tag 18: {v:?}")
    };
    let parts = inner.as_array().unwrap();
    let protected_bytes = parts[0].as_bytes().unwrap().clone();
    let payload = parts[2].as_bytes().unwrap().clone();
    let sig = parts[3].as_bytes().unwrap().clone();
    let ph: Cbor = ciborium::from_reader(&protected_bytes[..]).unwrap();
    let text = |k: &str| Cbor::Text(k.into());
    assert_eq!(
        cbor_map_get(&ph, &Cbor::Integer(1.into())),
        Some(&Cbor::Integer((-7).into()))
    );
    assert_eq!(
        cbor_map_get(&ph, &Cbor::Integer(3.into())),
        Some(&text("application/vnd.cncf.notary.payload.v1+json"))
    );
    assert_eq!(
        cbor_map_get(&ph, &text("io.cncf.notary.signingScheme")),
        Some(&text("notary.x509"))
    );
    let crit = cbor_map_get(&ph, &Cbor::Integer(2.into()))
        .unwrap()
        .as_array()
        .unwrap();
    assert!(
        crit.contains(&text("io.cncf.notary.signingScheme")),
        "{crit:?}"
    );
    assert!(crit.contains(&text("io.cncf.notary.expiry")), "{crit:?}");
    for k in ["io.cncf.notary.signingTime", "io.cncf.notary.expiry"] {
        assert!(
            matches!(cbor_map_get(&ph, &text(k)), Some(Cbor::Tag(1, t)) if t.is_integer()),
            "{k}: {ph:?}"
        );
    }
    let chain = cbor_map_get(&parts[1], &Cbor::Integer(33.into())).unwrap();
    let (leaf_der, ca_der) = (der_of(&pki.leaf.1), der_of(&pki.ca.1));
    assert_eq!(
        chain,
        &Cbor::Array(vec![Cbor::Bytes(leaf_der), Cbor::Bytes(ca_der)])
    );
    let p: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(p["targetArtifact"]["digest"], digest);

    // openssl over Sig_structure = ["Signature1", protected, h'', payload], built here
    let mut tbs = vec![0x84, 0x6a];
    tbs.extend_from_slice(b"Signature1");
    tbs.extend(cbor_bstr(&protected_bytes));
    tbs.push(0x40);
    tbs.extend(cbor_bstr(&payload));
    assert!(openssl_verifies(&pki.leaf.2, &raw_to_der(&sig), &tbs, &dir));

    let tp = dir.join("trustpolicy.json");
    policy(&tp, "*", "strict", &["ca:acme"], TRUSTED);
    let verify = |l: &Path, tag: &str| {
        code(ocibuild(&ctx).args([
            "verify",
            "--format",
            "notation",
            "--trust-policy",
            s(&tp),
            "--trust-store",
            s(&pki.store),
            &format!("oci:{}:{tag}", l.display()),
        ]))
    };
    let (c, o, e) = verify(&layout, "v1");
    assert_eq!(c, 0, "{e}");
    let r: Value = serde_json::from_str(o.trim()).unwrap();
    assert!(r["signatures"][0]["expiry"].is_string(), "{o}");

    // tampered: the payload swapped for one naming another image, the signature kept
    let layout2 = ctx.path("layout2");
    image(&ctx, &layout2, "v2", "other cose\n");
    let subject2 = subject_of(&layout2, "v2");
    let forged_payload = serde_json::to_vec(&json!({ "targetArtifact": subject2 })).unwrap();
    let mut forged = parts.clone();
    forged[2] = Cbor::Bytes(forged_payload);
    let mut out_bytes = Vec::new();
    ciborium::into_writer(
        &Cbor::Tag(18, Box::new(Cbor::Array(forged))),
        &mut out_bytes,
    )
    .unwrap();
    store_referrer_as(&layout2, &subject2, &out_bytes, "application/cose");
    let (c, _, e) = verify(&layout2, "v2");
    assert_eq!(c, 3, "{e}");
    assert!(e.contains("the signature does not verify"), "{e}");
}

/// The signed bytes and signature of a notation envelope: JWS (signing input, raw signature) or
/// COSE (Sig_structure, raw signature), with the protected header's algorithm.
fn signed_parts(layout: &Path, sig_manifest: &Value) -> (String, Vec<u8>, Vec<u8>) {
    use ciborium::Value as Cbor;
    let layer = &sig_manifest["layers"][0];
    let bytes = fs::read(blob(layout, layer["digest"].as_str().unwrap())).unwrap();
    if layer["mediaType"] == "application/jose+json" {
        let env: Value = serde_json::from_slice(&bytes).unwrap();
        let (ph, pl) = (
            env["protected"].as_str().unwrap(),
            env["payload"].as_str().unwrap(),
        );
        let protected: Value = serde_json::from_slice(&B64URL.decode(ph).unwrap()).unwrap();
        let sig = B64URL.decode(env["signature"].as_str().unwrap()).unwrap();
        return (
            protected["alg"].as_str().unwrap().to_string(),
            format!("{ph}.{pl}").into_bytes(),
            sig,
        );
    }
    assert_eq!(layer["mediaType"], "application/cose");
    let v: Cbor = ciborium::from_reader(&bytes[..]).unwrap();
    let Cbor::Tag(18, inner) = v else {
        panic!("not tag 18: {v:?}")
    };
    let parts = inner.as_array().unwrap();
    let protected_bytes = parts[0].as_bytes().unwrap().clone();
    let ph: Cbor = ciborium::from_reader(&protected_bytes[..]).unwrap();
    let alg = match cbor_map_get(&ph, &Cbor::Integer(1.into())).unwrap() {
        Cbor::Integer(i) => match i128::from(*i) {
            -7 => "ES256",
            -35 => "ES384",
            -37 => "PS256",
            -38 => "PS384",
            other => panic!("COSE alg {other}"),
        },
        other => panic!("COSE alg {other:?}"),
    };
    let mut tbs = vec![0x84, 0x6a];
    tbs.extend_from_slice(b"Signature1");
    tbs.extend(cbor_bstr(&protected_bytes));
    tbs.push(0x40);
    tbs.extend(cbor_bstr(parts[2].as_bytes().unwrap()));
    (alg.to_string(), tbs, parts[3].as_bytes().unwrap().clone())
}

#[test]
fn notation_signatures_with_rsa_pss_and_p384_keys_check_with_openssl() {
    let ctx = tk::TestContext::new();
    let dir = ctx.path("work");
    fs::create_dir_all(&dir).unwrap();
    let ca = openssl_ca(
        &dir,
        "ca",
        "/C=US/ST=WA/O=Acme Rockets/CN=Acme Rockets Test CA",
    );
    // a P-384 CA signing with ecdsa-with-SHA384
    let ca384 = openssl_ca_with(
        &dir,
        "ca384",
        "/C=US/ST=WA/O=Acme Rockets/CN=Acme Rockets P-384 CA",
        "P-384",
        "-sha384",
    );
    let rsa = openssl_leaf_with(
        &dir,
        "rsa",
        "/C=US/ST=WA/L=Seattle/O=Acme Rockets/CN=rsa-builder",
        &ca,
        "RSA-2048",
        "-sha256",
    );
    let ec384 = openssl_leaf_with(
        &dir,
        "ec384",
        "/C=US/ST=WA/L=Seattle/O=Acme Rockets/CN=p384-builder",
        &ca384,
        "P-384",
        "-sha384",
    );
    // RSA 3072 signs PS384 (salt length 48), as the Notary Project selects by key size
    let rsa3072 = openssl_leaf_with(
        &dir,
        "rsa3072",
        "/C=US/ST=WA/L=Seattle/O=Acme Rockets/CN=rsa3072-builder",
        &ca384,
        "RSA-3072",
        "-sha384",
    );
    let store = dir.join("truststore");
    let d = store.join("x509/ca/acme");
    fs::create_dir_all(&d).unwrap();
    fs::copy(&ca.1, d.join("acme.crt")).unwrap();
    fs::copy(&ca384.1, d.join("acme-p384.crt")).unwrap();
    let tp = dir.join("trustpolicy.json");
    policy(
        &tp,
        "*",
        "strict",
        &["ca:acme"],
        "x509.subject: C=US, ST=WA, O=Acme Rockets",
    );
    let verify = |loc: &str| {
        code(ocibuild(&ctx).args([
            "verify",
            "--format",
            "notation",
            "--trust-policy",
            s(&tp),
            "--trust-store",
            s(&store),
            loc,
        ]))
    };
    let chain = |leaf: &Path, ca: &Path, name: &str| {
        let p = dir.join(format!("{name}-chain.pem"));
        let mut t = fs::read(leaf).unwrap();
        t.extend(fs::read(ca).unwrap());
        fs::write(&p, t).unwrap();
        p
    };
    let pss: &[&str] = &["rsa_padding_mode:pss", "rsa_pss_saltlen:32"];
    let pss384: &[&str] = &["rsa_padding_mode:pss", "rsa_pss_saltlen:48"];
    for (name, leaf, ca_crt, alg, hash, opts) in [
        ("rsa", &rsa, &ca.1, "PS256", "-sha256", pss),
        ("rsa3072", &rsa3072, &ca384.1, "PS384", "-sha384", pss384),
        ("ec384", &ec384, &ca384.1, "ES384", "-sha384", &[][..]),
    ] {
        let chain = chain(&leaf.1, ca_crt, name);
        let layout = ctx.path(format!("layout-{name}"));
        let digest = image(&ctx, &layout, name, &format!("signed by {name}\n"));
        let loc = format!("oci:{}:{name}", layout.display());
        for format in ["jws", "cose"] {
            tk::run_ok(ocibuild(&ctx).args([
                "sign",
                "--format",
                "notation",
                "--signature-format",
                format,
                "--key",
                s(&leaf.0),
                "--cert",
                s(&chain),
                &loc,
            ]));
        }
        let sigs = layout_signatures(&layout, &digest);
        assert_eq!(sigs.len(), 2, "{name}");
        for m in &sigs {
            // openssl, not ocibuild, checks each signature over what the envelope signs
            let (got, signed, sig) = signed_parts(&layout, m);
            assert_eq!(got, alg, "{name}: {m}");
            let sig = if name.starts_with("rsa") {
                assert_eq!(sig.len(), if name == "rsa" { 256 } else { 384 }, "{name}");
                sig
            } else {
                assert_eq!(sig.len(), 96, "an ES384 signature is raw r‖s");
                raw_to_der(&sig)
            };
            assert!(
                openssl_verifies_with(&leaf.2, &sig, &signed, &dir, hash, opts),
                "{name} {}: openssl does not verify it",
                m["layers"][0]["mediaType"]
            );
            assert!(!openssl_verifies_with(
                &leaf.2,
                &sig,
                b"something else",
                &dir,
                hash,
                opts
            ));
        }
        let (c, o, e) = verify(&loc);
        assert_eq!(c, 0, "{name}: {e}");
        let r: Value = serde_json::from_str(o.trim()).unwrap();
        let verified = r["signatures"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["verified"] == true)
            .count();
        assert_eq!(verified, 2, "{name}: {o}");
    }
    // the salt length is the hash's: openssl refuses the RSA signature with another one
    let layout = ctx.path("layout-rsa");
    let rsa_digest = subject_of(&layout, "rsa")["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let sigs = layout_signatures(&layout, &rsa_digest);
    let (_, signed, sig) = signed_parts(&layout, &sigs[0]);
    assert!(!openssl_verifies_with(
        &rsa.2,
        &sig,
        &signed,
        &dir,
        "-sha256",
        &["rsa_padding_mode:pss", "rsa_pss_saltlen:20"]
    ));

    // a P-384 key makes cosign signatures too: ECDSA with SHA-384 (sigstore's pairing), DER
    let loc = format!("oci:{}:ec384", ctx.path("layout-ec384").display());
    tk::run_ok(ocibuild(&ctx).args(["sign", "--key", s(&ec384.0), &loc]));
    let layout = ctx.path("layout-ec384");
    let idx: Value = serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let hex = subject_of(&layout, "ec384")["digest"]
        .as_str()
        .unwrap()
        .strip_prefix("sha256:")
        .unwrap()
        .to_string();
    let tag = idx["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| {
            m["annotations"]["org.opencontainers.image.ref.name"] == format!("sha256-{hex}.sig")
        })
        .unwrap();
    let sm: Value =
        serde_json::from_slice(&fs::read(blob(&layout, tag["digest"].as_str().unwrap())).unwrap())
            .unwrap();
    let l = &sm["layers"][0];
    let sig = B64
        .decode(
            l["annotations"]["dev.cosignproject.cosign/signature"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    let payload = fs::read(blob(&layout, l["digest"].as_str().unwrap())).unwrap();
    assert!(openssl_verifies_with(
        &ec384.2,
        &sig,
        &payload,
        &dir,
        "-sha384",
        &[]
    ));
    let (c, _, e) = code(ocibuild(&ctx).args(["verify", "--key", s(&ec384.2), &loc]));
    assert_eq!(c, 0, "{e}");

    // envelopes openssl signs: RSASSA-PSS verifies; ES256 claimed for a P-384 key does not
    let make = |leaf: &Path, protected: Value, target: &Value, hash: &str, opts: &[&str], half| {
        let ph = B64URL.encode(serde_json::to_vec(&protected).unwrap());
        let pl = B64URL.encode(serde_json::to_vec(&json!({ "targetArtifact": target })).unwrap());
        let sig = openssl_sign_with(leaf, format!("{ph}.{pl}").as_bytes(), &dir, hash, opts);
        let sig = if half == 0 {
            sig
        } else {
            der_to_raw_n(&sig, half)
        };
        (ph, pl, sig)
    };
    let header = |alg: &str| {
        json!({
            "alg": alg,
            "cty": "application/vnd.cncf.notary.payload.v1+json",
            "crit": ["io.cncf.notary.signingScheme"],
            "io.cncf.notary.signingScheme": "notary.x509",
            "io.cncf.notary.signingTime": "2026-01-01T00:00:00Z",
        })
    };
    for (name, leaf, ca_crt, alg, hash, opts, half, want) in [
        ("openssl-pss", &rsa, &ca.1, "PS256", "-sha256", pss, 0, 0),
        (
            "openssl-es384",
            &ec384,
            &ca384.1,
            "ES384",
            "-sha384",
            &[][..],
            48,
            0,
        ),
        (
            "es256-on-p384",
            &ec384,
            &ca384.1,
            "ES256",
            "-sha256",
            &[][..],
            48,
            3,
        ),
    ] {
        let layout = ctx.path(format!("layout-{name}"));
        image(&ctx, &layout, "v1", &format!("{name}\n"));
        let subject = subject_of(&layout, "v1");
        let (ph, pl, sig) = make(&leaf.0, header(alg), &subject, hash, opts, half);
        let env = json!({
            "payload": pl,
            "protected": ph,
            "header": {"x5c": [B64.encode(der_of(&leaf.1)), B64.encode(der_of(ca_crt))]},
            "signature": B64URL.encode(sig),
        });
        store_referrer(&layout, &subject, &serde_json::to_vec(&env).unwrap());
        let (c, _, e) = verify(&format!("oci:{}:v1", layout.display()));
        assert_eq!(c, want, "{name}: {e}");
        if want == 3 {
            assert!(
                e.contains("algorithm ES256 does not fit the signing certificate's key"),
                "{e}"
            );
        }
    }
}

#[test]
fn build_sign_notation_signs_the_index_and_each_platform_and_checks_flags_before_building() {
    let ctx = tk::TestContext::new();
    let dir = ctx.path("work");
    fs::create_dir_all(&dir).unwrap();
    let pki = pki(&dir);
    let app = ctx.path("app");
    fs::create_dir_all(&app).unwrap();
    fs::write(app.join("motd"), "built and signed by notation\n").unwrap();
    fs::write(
        app.join("Dockerfile"),
        "FROM scratch\nCOPY motd /etc/motd\n",
    )
    .unwrap();
    let layout = ctx.path("out");
    let dest = format!("oci:{}:app", layout.display());
    let build = |extra: &[&str]| {
        let mut c = ocibuild(&ctx);
        c.arg("build")
            .arg(&app)
            .args(extra)
            .args(["--output", &dest]);
        code(&mut c)
    };
    let (key, chain) = (s(&pki.leaf.0), s(&pki.chain));

    // usage errors (exit 2) and a chain of another key (exit 1): nothing is built
    for (args, want, says) in [
        (
            vec!["--sign=notation", "--key", key],
            2,
            "--sign=notation needs --cert",
        ),
        (
            vec!["--sign", "--key", key, "--cert", chain],
            2,
            "pass --sign=notation",
        ),
        (
            vec!["--sign=notation", "--key", s(&pki.ca.0), "--cert", chain],
            1,
            "public key differs",
        ),
    ] {
        let (c, _, e) = build(&args);
        assert_eq!(c, want, "{args:?}: {e}");
        assert!(e.contains(says), "{args:?}: {e}");
        assert!(!layout.exists(), "{args:?} built something");
    }

    // two platforms, COSE, a layout and a registry: the index and each platform manifest carry a
    // notation signature in both; the provenance is a cosign attestation signed with the same key
    let reg = start_registry(&ctx, RegistryOptions::default());
    let pushed = format!("{}/acme/built:1", reg.host);
    let (c, o, e) = build(&[
        "-t",
        &pushed,
        "--push",
        "--sign=notation",
        "--key",
        key,
        "--cert",
        chain,
        "--signature-format",
        "cose",
        "--provenance",
        "--platform",
        "linux/amd64,linux/arm64",
    ]);
    assert_eq!(c, 0, "{e}");
    let root = o.lines().last().unwrap().trim().to_string();
    let index: Value = serde_json::from_slice(&fs::read(blob(&layout, &root)).unwrap()).unwrap();
    let mut subjects = vec![root.clone()];
    for m in index["manifests"].as_array().unwrap() {
        subjects.push(m["digest"].as_str().unwrap().to_string());
    }
    assert_eq!(subjects.len(), 3, "{index}");
    for d in &subjects {
        let sigs = layout_signatures(&layout, d);
        assert_eq!(sigs.len(), 1, "{d}");
        assert_eq!(sigs[0]["layers"][0]["mediaType"], "application/cose");
    }
    let tp = dir.join("trustpolicy.json");
    policy(&tp, "*", "strict", &["ca:acme"], TRUSTED);
    let (c, _, e) = code(ocibuild(&ctx).args([
        "verify",
        "--format",
        "notation",
        "--trust-policy",
        s(&tp),
        "--trust-store",
        s(&pki.store),
        &dest,
    ]));
    assert_eq!(c, 0, "{e}");
    // in the registry (docker-registry: the sha256-<hex> fallback tag), under its scope
    policy(
        &tp,
        &format!("{}/acme/built", reg.host),
        "strict",
        &["ca:acme"],
        TRUSTED,
    );
    let (c, o, e) = code(ocibuild(&ctx).args([
        "verify",
        "--format",
        "notation",
        "--trust-policy",
        s(&tp),
        "--trust-store",
        s(&pki.store),
        &reg.docker_ref("acme/built:1"),
    ]));
    assert_eq!(c, 0, "{e}");
    let r: Value = serde_json::from_str(o.trim()).unwrap();
    assert_eq!(r["signatures"].as_array().unwrap().len(), 1, "{o}");
    let (c, _, e) = code(ocibuild(&ctx).args([
        "verify-attestation",
        "--key",
        s(&pki.leaf.2),
        "--type",
        "slsaprovenance1",
        &dest,
    ]));
    assert_eq!(c, 0, "{e}");
}
