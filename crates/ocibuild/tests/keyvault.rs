//! Signing with a key in Azure Key Vault (`--key azurekms://…`), against an in-process fixture
//! that speaks Key Vault's REST API 7.4 on loopback: keys as JWK, `sign` answering base64url raw
//! `r‖s`, `create`, certificates with `cer`, bearer-token checks and a `401` challenge
//! (`WWW-Authenticate: Bearer authorization=…, resource=…`) first, and Microsoft Entra's token
//! endpoint for a service principal. Keys are EC P-256 (ES256), EC P-384 (ES384) and RSA (RS256
//! for cosign, PS256 for notation). The signatures are checked with openssl and with
//! `ocibuild verify`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use ocibuild_testkit as tk;
use p256::ecdsa::SigningKey;
use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::pkcs8::{DecodePrivateKey, EncodePublicKey, LineEnding};
use serde_json::{Value, json};
use support::{
    openssl, openssl_ca, openssl_ca_with, openssl_leaf, openssl_leaf_with, openssl_verifies,
    openssl_verifies_with, s,
};

const GOOD_TOKEN: &str = "kv-token-accepted-3f9a";
const VAULT: &str = "kv-oversight.vault.azure.net";
const TENANT: &str = "0b9e4d2a-7c1f-4e55-9d63-2a8f1c0e7b41";
const CLIENT_ID: &str = "5d1c9e7a-3b2f-4a60-8e91-c47d2b0f6a13";
const CLIENT_SECRET: &str = "sp-s3cret-Qx8~vault-9d41";

/// One logged request: method, path, whether it carried a bearer token, and that token's verdict.
#[derive(Clone, Debug)]
struct Logged {
    method: String,
    path: String,
    bearer: Option<bool>,
}

/// A vault key: EC P-256, EC P-384 or RSA.
enum Sk {
    Ec(SigningKey),
    Ec384(p384::ecdsa::SigningKey),
    Rsa(Box<rsa::RsaPrivateKey>),
}

struct Key {
    version: String,
    sk: Sk,
}

#[derive(Default)]
struct State {
    keys: BTreeMap<String, Key>,
    certs: BTreeMap<String, Vec<u8>>,
    /// A certificate's secret: its key and chain, PEM.
    secrets: BTreeMap<String, String>,
    log: Vec<Logged>,
    /// `KEY ALG` of each sign request.
    signed: Vec<String>,
    /// The token endpoint's requests: (tenant, form fields).
    token_requests: Vec<(String, BTreeMap<String, String>)>,
}

struct KeyVaultFixture {
    url: String,
    state: Arc<Mutex<State>>,
}

fn jwk(name: &str, k: &Key) -> Value {
    let kid = format!("https://{VAULT}/keys/{name}/{}", k.version);
    match &k.sk {
        Sk::Ec(sk) => {
            let p = sk.verifying_key().to_encoded_point(false);
            json!({
                "kid": kid,
                "kty": "EC",
                "crv": "P-256",
                "key_ops": ["sign", "verify"],
                "x": B64URL.encode(p.x().unwrap()),
                "y": B64URL.encode(p.y().unwrap()),
            })
        }
        Sk::Ec384(sk) => {
            let p = sk.verifying_key().to_encoded_point(false);
            json!({
                "kid": kid,
                "kty": "EC",
                "crv": "P-384",
                "key_ops": ["sign", "verify"],
                "x": B64URL.encode(p.x().unwrap()),
                "y": B64URL.encode(p.y().unwrap()),
            })
        }
        Sk::Rsa(sk) => {
            use rsa::traits::PublicKeyParts;
            json!({
                "kid": kid,
                "kty": "RSA",
                "key_ops": ["sign", "verify", "encrypt", "decrypt", "wrapKey", "unwrapKey"],
                "n": B64URL.encode(sk.n().to_bytes_be()),
                "e": B64URL.encode(sk.e().to_bytes_be()),
            })
        }
    }
}

fn respond(mut s: &TcpStream, status: u16, extra: &[(&str, String)], body: &Value) {
    let b = body.to_string();
    let mut h = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n",
        b.len()
    );
    for (k, v) in extra {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    h.push_str("\r\n");
    s.write_all(h.as_bytes()).unwrap();
    s.write_all(b.as_bytes()).unwrap();
}

/// `application/x-www-form-urlencoded` fields.
fn form_fields(body: &[u8]) -> BTreeMap<String, String> {
    let decode = |t: &str| {
        let b = t.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < b.len() => {
                    out.push(u8::from_str_radix(&t[i + 1..i + 3], 16).unwrap());
                    i += 2;
                }
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8(out).unwrap()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn error(code: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message}})
}

impl KeyVaultFixture {
    fn start() -> Self {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(c) = conn else { continue };
                Self::serve(&c, &st);
            }
        });
        KeyVaultFixture { url, state }
    }

    fn add_key(&self, name: &str, sk: SigningKey) {
        self.add(name, Sk::Ec(sk));
    }

    fn add(&self, name: &str, sk: Sk) {
        self.state.lock().unwrap().keys.insert(
            name.into(),
            Key {
                version: "6a1e0c3b9f2d4e8a8b7c5d4e3f2a1b0c".into(),
                sk,
            },
        );
    }

    fn public_pem(&self, name: &str, to: &Path) {
        let st = self.state.lock().unwrap();
        let pem = match &st.keys[name].sk {
            Sk::Ec(sk) => sk.verifying_key().to_public_key_pem(LineEnding::LF),
            Sk::Ec384(sk) => sk.verifying_key().to_public_key_pem(LineEnding::LF),
            Sk::Rsa(sk) => sk.to_public_key().to_public_key_pem(LineEnding::LF),
        }
        .unwrap();
        fs::write(to, pem).unwrap();
    }

    fn log(&self) -> Vec<Logged> {
        self.state.lock().unwrap().log.clone()
    }

    fn serve(c: &TcpStream, st: &Mutex<State>) {
        let mut r = BufReader::new(c);
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let mut it = line.split_whitespace();
        let (method, target) = (
            it.next().unwrap_or("").to_string(),
            it.next().unwrap_or("").to_string(),
        );
        let (mut len, mut auth) = (0usize, None::<String>);
        loop {
            let mut h = String::new();
            r.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').unwrap();
            match k.to_ascii_lowercase().as_str() {
                "content-length" => len = v.trim().parse().unwrap(),
                "authorization" => auth = Some(v.trim().to_string()),
                _ => {}
            }
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let path = path.trim_matches('/').to_string();
        let bearer = auth.as_ref().map(|a| a == &format!("Bearer {GOOD_TOKEN}"));
        let mut s = st.lock().unwrap();
        // Microsoft Entra's token endpoint (AZURE_AUTHORITY_HOST points here): client credentials
        if let ("POST", [tenant, "oauth2", "v2.0", "token"]) = (
            method.as_str(),
            path.split('/').collect::<Vec<_>>().as_slice(),
        ) {
            let form = form_fields(&body);
            s.token_requests.push((tenant.to_string(), form.clone()));
            let f = |k: &str| form.get(k).map(String::as_str);
            if f("grant_type") != Some("client_credentials")
                || f("client_id") != Some(CLIENT_ID)
                || f("client_secret") != Some(CLIENT_SECRET)
                || *tenant != TENANT
            {
                return respond(
                    c,
                    401,
                    &[],
                    &json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."}),
                );
            }
            if f("scope") != Some("https://vault.azure.net/.default") {
                return respond(
                    c,
                    400,
                    &[],
                    &json!({"error": "invalid_scope", "error_description": "AADSTS70011: the scope is not valid."}),
                );
            }
            return respond(
                c,
                200,
                &[],
                &json!({"token_type": "Bearer", "expires_in": 3599, "access_token": GOOD_TOKEN}),
            );
        }
        s.log.push(Logged {
            method: method.clone(),
            path: path.clone(),
            bearer,
        });
        match bearer {
            None => {
                let ch = format!(
                    "Bearer authorization=\"https://login.microsoftonline.com/{TENANT}\", resource=\"https://vault.azure.net\""
                );
                return respond(
                    c,
                    401,
                    &[("WWW-Authenticate", ch)],
                    &error(
                        "Unauthorized",
                        "AKV10000: Request is missing a Bearer or PoP token.",
                    ),
                );
            }
            Some(false) => {
                return respond(
                    c,
                    401,
                    &[],
                    &error(
                        "Unauthorized",
                        "AKV10032: Invalid issuer. Expected one of https://sts.windows.net/...",
                    ),
                );
            }
            Some(true) => {}
        }
        if query != "api-version=7.4" {
            return respond(c, 400, &[], &error("BadParameter", "api-version"));
        }
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let parts: Vec<&str> = path.split('/').collect();
        match (method.as_str(), parts.as_slice()) {
            ("GET", ["keys", name] | ["keys", name, _]) => match s.keys.get(*name) {
                Some(k) => {
                    if parts.len() == 3 && parts[2] != k.version {
                        return respond(c, 404, &[], &error("KeyNotFound", "no such version"));
                    }
                    let j = jwk(name, k);
                    respond(
                        c,
                        200,
                        &[],
                        &json!({"key": j, "attributes": {"enabled": true}}),
                    )
                }
                None => respond(
                    c,
                    404,
                    &[],
                    &error(
                        "KeyNotFound",
                        &format!("A key with (name/id) {name} was not found in this key vault."),
                    ),
                ),
            },
            ("POST", ["keys", name, version, "sign"]) => {
                let Some(k) = s.keys.get(*name).filter(|k| k.version == *version) else {
                    return respond(c, 404, &[], &error("KeyNotFound", "no such key"));
                };
                let digest = B64URL.decode(body["value"].as_str().unwrap()).unwrap();
                let alg = body["alg"].as_str().unwrap();
                let want = match &alg[2..] {
                    "256" => 32,
                    "384" => 48,
                    _ => 64,
                };
                if digest.len() != want {
                    return respond(
                        c,
                        400,
                        &[],
                        &error("BadParameter", &format!("{alg} takes a {want}-byte digest")),
                    );
                }
                let sig = match (&k.sk, alg) {
                    (Sk::Ec(sk), "ES256") => {
                        let sig: p256::ecdsa::Signature = sk.sign_prehash(&digest).unwrap();
                        sig.to_bytes().to_vec()
                    }
                    (Sk::Ec384(sk), "ES384") => {
                        let sig: p384::ecdsa::Signature = sk.sign_prehash(&digest).unwrap();
                        sig.to_bytes().to_vec()
                    }
                    (Sk::Rsa(sk), "PS256") => {
                        use rsa::signature::hazmat::RandomizedPrehashSigner;
                        let sk = rsa::pss::SigningKey::<sha2_10::Sha256>::new((**sk).clone());
                        let sig: rsa::pss::Signature = sk
                            .sign_prehash_with_rng(
                                &mut p256::elliptic_curve::rand_core::OsRng,
                                &digest,
                            )
                            .unwrap();
                        Box::<[u8]>::from(sig).to_vec()
                    }
                    (Sk::Rsa(sk), "RS256") => {
                        let sk = rsa::pkcs1v15::SigningKey::<sha2_10::Sha256>::new((**sk).clone());
                        let sig: rsa::pkcs1v15::Signature = sk.sign_prehash(&digest).unwrap();
                        Box::<[u8]>::from(sig).to_vec()
                    }
                    (_, alg) => {
                        return respond(
                            c,
                            400,
                            &[],
                            &error("BadParameter", &format!("alg {alg} does not fit the key")),
                        );
                    }
                };
                s.signed.push(format!("{name} {alg}"));
                let kid = format!("https://{VAULT}/keys/{name}/{version}");
                respond(
                    c,
                    200,
                    &[],
                    &json!({"kid": kid, "value": B64URL.encode(&sig)}),
                )
            }
            ("POST", ["keys", name, "create"]) => {
                assert_eq!(body["kty"], "EC", "{body}");
                assert_eq!(body["crv"], "P-256", "{body}");
                let k = Key {
                    version: "0f1e2d3c4b5a69788796a5b4c3d2e1f0".into(),
                    sk: Sk::Ec(SigningKey::random(
                        &mut p256::elliptic_curve::rand_core::OsRng,
                    )),
                };
                let j = jwk(name, &k);
                s.keys.insert(name.to_string(), k);
                respond(
                    c,
                    200,
                    &[],
                    &json!({"key": j, "attributes": {"enabled": true}}),
                )
            }
            ("GET", ["certificates", name]) => match s.certs.get(*name) {
                Some(der) => respond(
                    c,
                    200,
                    &[],
                    &json!({
                        "id": format!("https://{VAULT}/certificates/{name}/c0ffee"),
                        "kid": format!("https://{VAULT}/keys/{name}/c0ffee"),
                        "sid": format!("https://{VAULT}/secrets/{name}/c0ffee"),
                        "cer": B64.encode(der),
                        "attributes": {"enabled": true},
                    }),
                ),
                None => respond(
                    c,
                    404,
                    &[],
                    &error("CertificateNotFound", "no such certificate"),
                ),
            },
            ("GET", ["secrets", name, _]) => match s.secrets.get(*name) {
                Some(pem) => respond(
                    c,
                    200,
                    &[],
                    &json!({
                        "id": format!("https://{VAULT}/secrets/{name}/c0ffee"),
                        "contentType": "application/x-pem-file",
                        "value": pem,
                        "kid": format!("https://{VAULT}/keys/{name}/c0ffee"),
                        "managed": true,
                    }),
                ),
                None => respond(
                    c,
                    403,
                    &[],
                    &error("Forbidden", "The user does not have secrets get permission"),
                ),
            },
            _ => respond(c, 400, &[], &error("BadParameter", "unknown operation")),
        }
    }
}

fn ocibuild(ctx: &tk::TestContext, kv: &KeyVaultFixture, token: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ocibuild"));
    c.arg("--root")
        .arg(ctx.path("store"))
        .arg("--progress")
        .arg("plain");
    c.env("DOCKER_CONFIG", ctx.path("docker"));
    c.env("HOME", ctx.path("home"));
    c.env_remove("XDG_CONFIG_HOME");
    for (k, _) in std::env::vars() {
        if k.starts_with("AZURE_") || k == "IDENTITY_ENDPOINT" || k == "IDENTITY_HEADER" {
            c.env_remove(k);
        }
    }
    c.env("AZURE_ACCESS_TOKEN", token);
    c.env("OCIBUILD_AZURE_KEYVAULT_URL", &kv.url);
    c
}

fn code(cmd: &mut Command) -> (i32, String, String) {
    let o = tk::run(cmd);
    (
        tk::exit_code(o.status),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A one-file image in a layout at `dir:tag`; returns its digest.
fn image(ctx: &tk::TestContext, kv: &KeyVaultFixture, dir: &Path, tag: &str) -> String {
    let rootfs = ctx.path(format!("rootfs-{tag}"));
    fs::create_dir_all(&rootfs).unwrap();
    fs::write(rootfs.join("msg"), format!("signed in the vault: {tag}\n")).unwrap();
    let o = tk::run_ok(
        ocibuild(ctx, kv, GOOD_TOKEN)
            .arg("assemble")
            .arg("--layer")
            .arg(format!("{}:/", rootfs.display()))
            .args(["--entrypoint", "/msg", "--platform", "linux/amd64"])
            .arg("--output")
            .arg(format!("oci:{}:{tag}", dir.display())),
    );
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

fn layout_blob(layout: &Path, digest: &str) -> Vec<u8> {
    fs::read(
        layout
            .join("blobs/sha256")
            .join(digest.strip_prefix("sha256:").unwrap()),
    )
    .unwrap()
}

fn tagged(layout: &Path, tag: &str) -> Value {
    let idx: Value = serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let d = idx["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no {tag} in {idx}"))
        .clone();
    serde_json::from_slice(&layout_blob(layout, d["digest"].as_str().unwrap())).unwrap()
}

#[test]
fn cosign_signature_made_in_key_vault_verifies_with_openssl_and_ocibuild() {
    let ctx = tk::TestContext::new();
    let dir = ctx.path("work");
    fs::create_dir_all(&dir).unwrap();
    let kv = KeyVaultFixture::start();
    kv.add_key(
        "image-signing",
        SigningKey::random(&mut p256::elliptic_curve::rand_core::OsRng),
    );
    let public = dir.join("kv.pub");
    kv.public_pem("image-signing", &public);
    let layout = ctx.path("layout");
    let digest = image(&ctx, &kv, &layout, "v1");
    let loc = format!("oci:{}:v1", layout.display());

    // the seed's form, with `keys/`
    let (c, _, e) = code(ocibuild(&ctx, &kv, GOOD_TOKEN).args([
        "sign",
        "--key",
        &format!("azurekms://{VAULT}/keys/image-signing"),
        &loc,
    ]));
    assert_eq!(c, 0, "{e}");
    assert!(!e.contains(GOOD_TOKEN), "{e}");
    // the challenge first: no token, 401; then the token on every request
    let log = kv.log();
    assert_eq!(log[0].bearer, None, "{log:?}");
    assert!(log[1..].iter().all(|l| l.bearer == Some(true)), "{log:?}");
    assert!(
        log.iter().any(|l| l.method == "POST"
            && l.path == "keys/image-signing/6a1e0c3b9f2d4e8a8b7c5d4e3f2a1b0c/sign"),
        "{log:?}"
    );

    // openssl checks the signature in the `.sig` tag over the payload
    let hex = digest.strip_prefix("sha256:").unwrap();
    let m = tagged(&layout, &format!("sha256-{hex}.sig"));
    let l = &m["layers"][0];
    let sig = B64
        .decode(
            l["annotations"]["dev.cosignproject.cosign/signature"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    let payload = layout_blob(&layout, l["digest"].as_str().unwrap());
    assert!(openssl_verifies(&public, &sig, &payload, &dir), "{m}");
    let p: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(p["critical"]["image"]["docker-manifest-digest"], digest);
    let (c, _, e) =
        code(ocibuild(&ctx, &kv, GOOD_TOKEN).args(["verify", "--key", s(&public), &loc]));
    assert_eq!(c, 0, "{e}");

    // verifying with the vault key: its public half from the vault
    let (c, _, e) = code(ocibuild(&ctx, &kv, GOOD_TOKEN).args([
        "verify",
        "--key",
        &format!("azurekms://{VAULT}/image-signing"),
        &loc,
    ]));
    assert_eq!(c, 0, "{e}");

    // cosign's form without `keys/`, with a version; and the full key id
    for key in [
        format!("azurekms://{VAULT}/image-signing/6a1e0c3b9f2d4e8a8b7c5d4e3f2a1b0c"),
        format!("https://{VAULT}/keys/image-signing/6a1e0c3b9f2d4e8a8b7c5d4e3f2a1b0c"),
    ] {
        let (c, _, e) = code(ocibuild(&ctx, &kv, GOOD_TOKEN).args(["sign", "--key", &key, &loc]));
        assert_eq!(c, 0, "{key}: {e}");
    }
    // an RSA key signs RS256 (RSASSA-PKCS1-v1_5, as cosign does with RSA)
    let rsa_pem = dir.join("rsa.pem");
    tk::run_ok(openssl().args([
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        s(&rsa_pem),
    ]));
    let rk = rsa::RsaPrivateKey::from_pkcs8_pem(&fs::read_to_string(&rsa_pem).unwrap()).unwrap();
    kv.add("rsa-signing", Sk::Rsa(Box::new(rk)));
    let rsa_pub = dir.join("rsa.pub");
    kv.public_pem("rsa-signing", &rsa_pub);
    let (c, _, e) = code(ocibuild(&ctx, &kv, GOOD_TOKEN).args([
        "sign",
        "--key",
        &format!("azurekms://{VAULT}/rsa-signing"),
        &loc,
    ]));
    assert_eq!(c, 0, "{e}");
    let m = tagged(&layout, &format!("sha256-{hex}.sig"));
    let by_rsa = m["layers"].as_array().unwrap().iter().any(|l| {
        let sig = B64
            .decode(
                l["annotations"]["dev.cosignproject.cosign/signature"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap();
        let payload = layout_blob(&layout, l["digest"].as_str().unwrap());
        openssl_verifies(&rsa_pub, &sig, &payload, &dir)
    });
    assert!(by_rsa, "{m}");
    let (c, _, e) =
        code(ocibuild(&ctx, &kv, GOOD_TOKEN).args(["verify", "--key", s(&rsa_pub), &loc]));
    assert_eq!(c, 0, "{e}");

    // a missing key: the vault's reason
    let (c, _, e) = code(ocibuild(&ctx, &kv, GOOD_TOKEN).args([
        "sign",
        "--key",
        &format!("azurekms://{VAULT}/no-such-key"),
        &loc,
    ]));
    assert_eq!(c, 1, "{e}");
    assert!(e.contains("no-such-key") && e.contains("404"), "{e}");

    // generate-key-pair --kms creates the key in the vault and writes its public key
    let prefix = dir.join("created");
    let (c, _, e) = code(ocibuild(&ctx, &kv, GOOD_TOKEN).args([
        "generate-key-pair",
        "--kms",
        &format!("azurekms://{VAULT}/release-signing"),
        "--output-key-prefix",
        s(&prefix),
    ]));
    assert_eq!(c, 0, "{e}");
    assert!(!dir.join("created.key").exists());
    let created = dir.join("created-expected.pub");
    kv.public_pem("release-signing", &created);
    assert_eq!(
        fs::read_to_string(dir.join("created.pub")).unwrap(),
        fs::read_to_string(&created).unwrap()
    );
    // and it signs
    let (c, _, e) = code(ocibuild(&ctx, &kv, GOOD_TOKEN).args([
        "sign",
        "--key",
        &format!("azurekms://{VAULT}/release-signing"),
        &loc,
    ]));
    assert_eq!(c, 0, "{e}");
    let (c, _, e) = code(ocibuild(&ctx, &kv, GOOD_TOKEN).args([
        "verify",
        "--key",
        s(&dir.join("created.pub")),
        &loc,
    ]));
    assert_eq!(c, 0, "{e}");
}

#[test]
fn a_refused_token_names_its_source_and_nothing_is_signed() {
    let ctx = tk::TestContext::new();
    let kv = KeyVaultFixture::start();
    kv.add_key(
        "image-signing",
        SigningKey::random(&mut p256::elliptic_curve::rand_core::OsRng),
    );
    let layout = ctx.path("layout");
    image(&ctx, &kv, &layout, "v1");
    let before = fs::read(layout.join("index.json")).unwrap();
    let wrong = "kv-token-from-another-tenant-77e1";
    let (c, _, e) = code(ocibuild(&ctx, &kv, wrong).args([
        "sign",
        "--key",
        &format!("azurekms://{VAULT}/image-signing"),
        &format!("oci:{}:v1", layout.display()),
    ]));
    assert_eq!(c, 1, "{e}");
    assert!(e.contains("refused"), "{e}");
    assert!(e.contains("AZURE_ACCESS_TOKEN"), "{e}");
    assert!(e.contains(VAULT), "{e}");
    assert!(!e.contains(wrong), "the token is never shown: {e}");
    assert_eq!(fs::read(layout.join("index.json")).unwrap(), before);

    // no credentials at all: every source is listed with why, and what to set
    let empty_path = ctx.path("empty-bin");
    fs::create_dir_all(&empty_path).unwrap();
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (c, _, e) = code(
        ocibuild(&ctx, &kv, "")
            .env_remove("AZURE_ACCESS_TOKEN")
            .env("PATH", &empty_path)
            .env(
                "OCIBUILD_IMDS_ENDPOINT",
                format!("http://{closed}/metadata/identity/oauth2/token"),
            )
            .args([
                "sign",
                "--key",
                &format!("azurekms://{VAULT}/image-signing"),
                &format!("oci:{}:v1", layout.display()),
            ]),
    );
    assert_eq!(c, 1, "{e}");
    for source in [
        "AZURE_ACCESS_TOKEN",
        "service principal",
        "workload identity",
        "managed identity",
        "az CLI",
    ] {
        assert!(e.contains(source), "{source}: {e}");
    }
    assert!(e.contains("https://vault.azure.net"), "{e}");
    assert_eq!(fs::read(layout.join("index.json")).unwrap(), before);
}

#[test]
fn notation_signature_made_in_key_vault_verifies() {
    let ctx = tk::TestContext::new();
    let dir = ctx.path("work");
    fs::create_dir_all(&dir).unwrap();
    let ca = openssl_ca(
        &dir,
        "ca",
        "/C=US/ST=WA/O=Acme Rockets/CN=Acme Rockets Vault CA",
    );
    let leaf = openssl_leaf(
        &dir,
        "leaf",
        "/C=US/ST=WA/L=Seattle/O=Acme Rockets/CN=vault-signer",
        &ca,
    );
    let kv = KeyVaultFixture::start();
    let sk = SigningKey::from_pkcs8_pem(&fs::read_to_string(&leaf.0).unwrap()).unwrap();
    kv.add_key("vault-signer", sk);
    // Key Vault's `cer` is the leaf only, DER
    let der = tk::run_ok(openssl().args(["x509", "-in", s(&leaf.1), "-outform", "DER"])).stdout;
    kv.state
        .lock()
        .unwrap()
        .certs
        .insert("vault-signer".into(), der);
    let layout = ctx.path("layout");
    let digest = image(&ctx, &kv, &layout, "v1");
    let loc = format!("oci:{}:v1", layout.display());

    let (c, _, e) = code(ocibuild(&ctx, &kv, GOOD_TOKEN).args([
        "sign",
        "--format",
        "notation",
        "--key",
        &format!("azurekms://{VAULT}/keys/vault-signer"),
        "--cert",
        &format!("azurekv://{VAULT}/certificates/vault-signer"),
        "--cert-chain",
        s(&ca.1),
        &loc,
    ]));
    assert_eq!(c, 0, "{e}");
    assert!(e.contains(&digest), "{e}");

    let store = dir.join("truststore");
    let d = store.join("x509/ca/acme");
    fs::create_dir_all(&d).unwrap();
    fs::copy(&ca.1, d.join("acme.crt")).unwrap();
    let tp = dir.join("trustpolicy.json");
    fs::write(
        &tp,
        json!({"version": "1.0", "trustPolicies": [{
            "name": "images", "registryScopes": ["*"],
            "signatureVerification": {"level": "strict"},
            "trustStores": ["ca:acme"],
            "trustedIdentities": ["x509.subject: C=US, ST=WA, L=Seattle, O=Acme Rockets, CN=vault-signer"]}]})
        .to_string(),
    )
    .unwrap();
    let (c, o, e) = code(ocibuild(&ctx, &kv, GOOD_TOKEN).args([
        "verify",
        "--format",
        "notation",
        "--trust-policy",
        s(&tp),
        "--trust-store",
        s(&store),
        &loc,
    ]));
    assert_eq!(c, 0, "{e}");
    let r: Value = serde_json::from_str(o.trim()).unwrap();
    assert_eq!(r["signatures"][0]["verified"], true, "{o}");

    // without --cert-chain: the chain from the certificate's secret (key and certificates, PEM)
    let mut pem = fs::read_to_string(&leaf.0).unwrap();
    pem.push_str(&fs::read_to_string(&leaf.1).unwrap());
    pem.push_str(&fs::read_to_string(&ca.1).unwrap());
    kv.state
        .lock()
        .unwrap()
        .secrets
        .insert("vault-signer".into(), pem);
    let layout2 = ctx.path("layout2");
    image(&ctx, &kv, &layout2, "v2");
    let loc2 = format!("oci:{}:v2", layout2.display());
    let (c, _, e) = code(ocibuild(&ctx, &kv, GOOD_TOKEN).args([
        "sign",
        "--format",
        "notation",
        "--key",
        &format!("azurekms://{VAULT}/keys/vault-signer"),
        "--cert",
        &format!("azurekv://{VAULT}/certificates/vault-signer"),
        &loc2,
    ]));
    assert_eq!(c, 0, "{e}");
    let (c, _, e) = code(ocibuild(&ctx, &kv, GOOD_TOKEN).args([
        "verify",
        "--format",
        "notation",
        "--trust-policy",
        s(&tp),
        "--trust-store",
        s(&store),
        &loc2,
    ]));
    assert_eq!(c, 0, "{e}");

    // the same through COSE
    let (c, _, e) = code(ocibuild(&ctx, &kv, GOOD_TOKEN).args([
        "sign",
        "--format",
        "notation",
        "--signature-format",
        "cose",
        "--key",
        &format!("azurekms://{VAULT}/vault-signer"),
        "--cert",
        &format!("azurekv://{VAULT}/certificates/vault-signer"),
        "--cert-chain",
        s(&ca.1),
        &loc,
    ]));
    assert_eq!(c, 0, "{e}");
    let (c, _, e) = code(ocibuild(&ctx, &kv, GOOD_TOKEN).args([
        "verify",
        "--format",
        "notation",
        "--trust-policy",
        s(&tp),
        "--trust-store",
        s(&store),
        &loc,
    ]));
    assert_eq!(c, 0, "{e}");
}

#[test]
fn build_signs_with_a_key_vault_key() {
    let ctx = tk::TestContext::new();
    let dir = ctx.path("work");
    fs::create_dir_all(&dir).unwrap();
    let kv = KeyVaultFixture::start();
    kv.add_key(
        "image-signing",
        SigningKey::random(&mut p256::elliptic_curve::rand_core::OsRng),
    );
    let public = dir.join("kv.pub");
    kv.public_pem("image-signing", &public);
    let app = ctx.path("app");
    fs::create_dir_all(&app).unwrap();
    fs::write(app.join("motd"), "built and signed in the vault\n").unwrap();
    fs::write(
        app.join("Dockerfile"),
        "FROM scratch\nCOPY motd /etc/motd\nLABEL org.opencontainers.image.title=motd\n",
    )
    .unwrap();
    let layout = ctx.path("layout");
    let src = format!("oci:{}:app", layout.display());
    let (c, o, e) = code(
        ocibuild(&ctx, &kv, GOOD_TOKEN)
            .arg("build")
            .arg(&app)
            .args([
                "--sign",
                "--key",
                &format!("azurekms://{VAULT}/image-signing"),
                "--provenance",
                "--output",
                &src,
            ]),
    );
    assert_eq!(c, 0, "{e}");
    let digest = o.lines().last().unwrap().trim().to_string();
    let (c, _, e) =
        code(ocibuild(&ctx, &kv, GOOD_TOKEN).args(["verify", "--key", s(&public), &src]));
    assert_eq!(c, 0, "{e}");
    let (c, _, e) = code(ocibuild(&ctx, &kv, GOOD_TOKEN).args([
        "verify-attestation",
        "--key",
        s(&public),
        "--type",
        "slsaprovenance1",
        &src,
    ]));
    assert_eq!(c, 0, "{e}");
    // openssl agrees on the signature
    let hex = digest.strip_prefix("sha256:").unwrap();
    let m = tagged(&layout, &format!("sha256-{hex}.sig"));
    let l = &m["layers"][0];
    let sig = B64
        .decode(
            l["annotations"]["dev.cosignproject.cosign/signature"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    let payload = layout_blob(&layout, l["digest"].as_str().unwrap());
    assert!(openssl_verifies(&public, &sig, &payload, &dir), "{m}");
}

/// A notation trust store with `cas` under `ca:acme`, and a strict policy trusting Acme Rockets.
fn trust(dir: &Path, cas: &[&Path]) -> (std::path::PathBuf, std::path::PathBuf) {
    let store = dir.join("truststore");
    let d = store.join("x509/ca/acme");
    fs::create_dir_all(&d).unwrap();
    for (i, ca) in cas.iter().enumerate() {
        fs::copy(ca, d.join(format!("ca-{i}.crt"))).unwrap();
    }
    let tp = dir.join("trustpolicy.json");
    fs::write(
        &tp,
        json!({"version": "1.0", "trustPolicies": [{
            "name": "images", "registryScopes": ["*"],
            "signatureVerification": {"level": "strict"},
            "trustStores": ["ca:acme"],
            "trustedIdentities": ["x509.subject: C=US, ST=WA, O=Acme Rockets"]}]})
        .to_string(),
    )
    .unwrap();
    (tp, store)
}

/// The notation signature manifests of a layout's `tag`.
fn notation_signatures(layout: &Path, tag: &str) -> Vec<Value> {
    let idx: Value = serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let digest = idx["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap()["digest"]
        .clone();
    idx["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["artifactType"] == "application/vnd.cncf.notary.signature")
        .map(|d| {
            serde_json::from_slice::<Value>(&layout_blob(layout, d["digest"].as_str().unwrap()))
                .unwrap()
        })
        .filter(|m| m["subject"]["digest"] == digest)
        .collect()
}

#[test]
fn p384_and_rsa_vault_keys_sign_es384_and_ps256_for_cosign_notation_and_build() {
    let ctx = tk::TestContext::new();
    let dir = ctx.path("work");
    fs::create_dir_all(&dir).unwrap();
    let ca = openssl_ca(
        &dir,
        "ca",
        "/C=US/ST=WA/O=Acme Rockets/CN=Acme Rockets Vault CA",
    );
    let ca384 = openssl_ca_with(
        &dir,
        "ca384",
        "/C=US/ST=WA/O=Acme Rockets/CN=Acme Rockets P-384 CA",
        "P-384",
        "-sha384",
    );
    let ec384 = openssl_leaf_with(
        &dir,
        "ec384",
        "/C=US/ST=WA/L=Seattle/O=Acme Rockets/CN=p384-signer",
        &ca384,
        "P-384",
        "-sha384",
    );
    let rsa_leaf = openssl_leaf_with(
        &dir,
        "rsa",
        "/C=US/ST=WA/L=Seattle/O=Acme Rockets/CN=rsa-signer",
        &ca,
        "RSA-2048",
        "-sha256",
    );
    let kv = KeyVaultFixture::start();
    kv.add(
        "p384-signer",
        Sk::Ec384(
            p384::ecdsa::SigningKey::from_pkcs8_pem(&fs::read_to_string(&ec384.0).unwrap())
                .unwrap(),
        ),
    );
    kv.add(
        "rsa-signer",
        Sk::Rsa(Box::new(
            rsa::RsaPrivateKey::from_pkcs8_pem(&fs::read_to_string(&rsa_leaf.0).unwrap()).unwrap(),
        )),
    );
    for (name, crt) in [("p384-signer", &ec384.1), ("rsa-signer", &rsa_leaf.1)] {
        let der = tk::run_ok(openssl().args(["x509", "-in", s(crt), "-outform", "DER"])).stdout;
        kv.state.lock().unwrap().certs.insert(name.into(), der);
    }
    let (tp, store) = trust(&dir, &[&ca.1, &ca384.1]);
    let verify = |loc: &str| {
        code(ocibuild(&ctx, &kv, GOOD_TOKEN).args([
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
    let layout = ctx.path("layout");
    let digest = image(&ctx, &kv, &layout, "v1");
    let loc = format!("oci:{}:v1", layout.display());

    // cosign with the P-384 vault key: ES384 in the vault, DER for cosign, SHA-384 for openssl
    let (c, _, e) = code(ocibuild(&ctx, &kv, GOOD_TOKEN).args([
        "sign",
        "--key",
        &format!("azurekms://{VAULT}/p384-signer"),
        &loc,
    ]));
    assert_eq!(c, 0, "{e}");
    let m = tagged(
        &layout,
        &format!("sha256-{}.sig", digest.strip_prefix("sha256:").unwrap()),
    );
    let l = &m["layers"][0];
    let sig = B64
        .decode(
            l["annotations"]["dev.cosignproject.cosign/signature"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    let payload = layout_blob(&layout, l["digest"].as_str().unwrap());
    assert!(
        openssl_verifies_with(&ec384.2, &sig, &payload, &dir, "-sha384", &[]),
        "{m}"
    );
    let (c, _, e) =
        code(ocibuild(&ctx, &kv, GOOD_TOKEN).args(["verify", "--key", s(&ec384.2), &loc]));
    assert_eq!(c, 0, "{e}");

    // notation with both keys, the certificates from the vault: ES384 and PS256
    for (name, ca_crt, format) in [
        ("p384-signer", &ca384.1, "cose"),
        ("rsa-signer", &ca.1, "jws"),
    ] {
        let (c, _, e) = code(ocibuild(&ctx, &kv, GOOD_TOKEN).args([
            "sign",
            "--format",
            "notation",
            "--signature-format",
            format,
            "--key",
            &format!("azurekms://{VAULT}/keys/{name}"),
            "--cert",
            &format!("azurekv://{VAULT}/certificates/{name}"),
            "--cert-chain",
            s(ca_crt),
            &loc,
        ]));
        assert_eq!(c, 0, "{name}: {e}");
    }
    let (c, o, e) = verify(&loc);
    assert_eq!(c, 0, "{e}");
    let r: Value = serde_json::from_str(o.trim()).unwrap();
    assert_eq!(
        r["signatures"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["verified"] == true)
            .count(),
        2,
        "{o}"
    );
    // openssl checks the PS256 JWS (salt length 32) over its signing input
    let jws = notation_signatures(&layout, "v1")
        .into_iter()
        .find(|m| m["layers"][0]["mediaType"] == "application/jose+json")
        .unwrap();
    let env: Value = serde_json::from_slice(&layout_blob(
        &layout,
        jws["layers"][0]["digest"].as_str().unwrap(),
    ))
    .unwrap();
    let ph = env["protected"].as_str().unwrap();
    let protected: Value = serde_json::from_slice(&B64URL.decode(ph).unwrap()).unwrap();
    assert_eq!(protected["alg"], "PS256");
    let input = format!("{ph}.{}", env["payload"].as_str().unwrap());
    let sig = B64URL.decode(env["signature"].as_str().unwrap()).unwrap();
    assert!(openssl_verifies_with(
        &rsa_leaf.2,
        &sig,
        input.as_bytes(),
        &dir,
        "-sha256",
        &["rsa_padding_mode:pss", "rsa_pss_saltlen:32"],
    ));
    let signed = kv.state.lock().unwrap().signed.clone();
    for want in ["p384-signer ES384", "rsa-signer PS256"] {
        assert!(signed.iter().any(|s| s == want), "{want}: {signed:?}");
    }

    // build --sign=notation with the vault key and certificate (a Dockerfile build)
    let app = ctx.path("app");
    fs::create_dir_all(&app).unwrap();
    fs::write(app.join("motd"), "built, signed by notation in the vault\n").unwrap();
    fs::write(
        app.join("Dockerfile"),
        "FROM scratch\nCOPY motd /etc/motd\n",
    )
    .unwrap();
    let out = ctx.path("built");
    let built = format!("oci:{}:app", out.display());
    let (c, _, e) = code(
        ocibuild(&ctx, &kv, GOOD_TOKEN)
            .arg("build")
            .arg(&app)
            .args([
                "--sign=notation",
                "--key",
                &format!("azurekms://{VAULT}/rsa-signer"),
                "--cert",
                &format!("azurekv://{VAULT}/certificates/rsa-signer"),
                "--cert-chain",
                s(&ca.1),
                "--output",
                &built,
            ]),
    );
    assert_eq!(c, 0, "{e}");
    let (c, _, e) = verify(&built);
    assert_eq!(c, 0, "{e}");
}

#[test]
fn a_service_principal_gets_the_vault_token_and_its_secret_stays_hidden() {
    let ctx = tk::TestContext::new();
    let kv = KeyVaultFixture::start();
    kv.add_key(
        "image-signing",
        SigningKey::random(&mut p256::elliptic_curve::rand_core::OsRng),
    );
    let public = ctx.path("kv.pub");
    kv.public_pem("image-signing", &public);
    let layout = ctx.path("layout");
    image(&ctx, &kv, &layout, "v1");
    let loc = format!("oci:{}:v1", layout.display());
    let empty_path = ctx.path("empty-bin");
    fs::create_dir_all(&empty_path).unwrap();
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    // client credentials against the fixture's Entra token endpoint; the tenant is the one the
    // vault's challenge names (AZURE_TENANT_ID unset)
    let sp = |secret: &str| {
        let mut c = ocibuild(&ctx, &kv, "");
        c.env_remove("AZURE_ACCESS_TOKEN")
            .env("AZURE_CLIENT_ID", CLIENT_ID)
            .env("AZURE_CLIENT_SECRET", secret)
            .env("AZURE_AUTHORITY_HOST", &kv.url)
            .env("PATH", &empty_path)
            .env(
                "OCIBUILD_IMDS_ENDPOINT",
                format!("http://{closed}/metadata/identity/oauth2/token"),
            )
            .args([
                "sign",
                "--key",
                &format!("azurekms://{VAULT}/image-signing"),
                &loc,
            ]);
        code(&mut c)
    };
    let (c, o, e) = sp(CLIENT_SECRET);
    assert_eq!(c, 0, "{e}");
    assert!(
        !e.contains(CLIENT_SECRET) && !o.contains(CLIENT_SECRET),
        "{e}"
    );
    assert!(!e.contains(GOOD_TOKEN) && !o.contains(GOOD_TOKEN), "{e}");
    let reqs = kv.state.lock().unwrap().token_requests.clone();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    let (tenant, form) = &reqs[0];
    assert_eq!(tenant, TENANT);
    assert_eq!(form["grant_type"], "client_credentials");
    assert_eq!(form["client_id"], CLIENT_ID);
    assert_eq!(form["scope"], "https://vault.azure.net/.default");
    // the vault saw the challenge first, then the service principal's token
    let log = kv.log();
    let vault: Vec<_> = log.iter().filter(|l| l.path.starts_with("keys/")).collect();
    assert_eq!(vault[0].bearer, None, "{log:?}");
    assert!(vault[1..].iter().all(|l| l.bearer == Some(true)), "{log:?}");
    let (c, _, e) =
        code(ocibuild(&ctx, &kv, GOOD_TOKEN).args(["verify", "--key", s(&public), &loc]));
    assert_eq!(c, 0, "{e}");

    // a wrong secret: Entra's refusal, naming the source, never the secret; nothing signed
    let before = fs::read(layout.join("index.json")).unwrap();
    let wrong = "sp-wrong-s3cret-7Hq";
    let (c, o, e) = sp(wrong);
    assert_eq!(c, 1, "{e}");
    assert!(e.contains("service principal"), "{e}");
    assert!(e.contains("AADSTS7000215") || e.contains("401"), "{e}");
    assert!(!e.contains(wrong) && !o.contains(wrong), "{e}");
    assert_eq!(fs::read(layout.join("index.json")).unwrap(), before);
}
