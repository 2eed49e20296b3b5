//! Signing in cosign's format, checked by implementations that are not ocibuild's: openssl
//! verifies the signatures ocibuild stores (fetched with curl from a real docker-registry),
//! signatures openssl makes (stored in cosign's layout by curl) verify with `ocibuild verify`,
//! and a cosign-format encrypted key written by an independent Python implementation (PyNaCl's
//! secretbox, hashlib's scrypt, `cryptography`'s PKCS#8) is read by `ocibuild sign`.
//!
//! `build --sign --provenance --attest-sbom` (both frontends) is checked the same way: openssl
//! verifies the signature and the attestations in the layout and the registry the build wrote, the
//! provenance validates against the SLSA v1 schema (Python `jsonschema`) and holds no secret; and
//! the terminal password prompt is driven through a pseudo-terminal (Python's `pty`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use ocibuild_testkit as tk;
use ocibuild_testkit::registry::{RegistryOptions, start_registry};
use serde_json::{Value, json};
use support::{openssl, openssl_ca, openssl_leaf, openssl_verifies};

mod cosign_support;
use cosign_support::*;

fn openssl_key_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub.pem"));
    tk::run_ok(openssl().args([
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        key.to_str().unwrap(),
    ]));
    tk::run_ok(openssl().args([
        "pkey",
        "-in",
        key.to_str().unwrap(),
        "-pubout",
        "-out",
        public.to_str().unwrap(),
    ]));
    (key, public)
}

fn openssl_sign(key: &Path, data: &[u8], dir: &Path) -> Vec<u8> {
    let (d, s) = (dir.join("tosign"), dir.join("signed"));
    fs::write(&d, data).unwrap();
    tk::run_ok(openssl().args([
        "dgst",
        "-sha256",
        "-sign",
        key.to_str().unwrap(),
        "-out",
        s.to_str().unwrap(),
        d.to_str().unwrap(),
    ]));
    fs::read(&s).unwrap()
}

/// Check every signature in `sha256-<hex>.sig` with openssl; returns the verified payloads.
fn openssl_check_sig_tag(src: &Src, digest: &str, public: &Path, dir: &Path) -> Vec<Value> {
    check_sig_tag(src, digest, dir, |sig, data| {
        openssl_verifies(public, sig, data, dir)
    })
}

/// Check the attestations in `sha256-<hex>.att` with openssl; returns the verified statements.
fn openssl_check_att_tag(src: &Src, digest: &str, public: &Path, dir: &Path) -> Vec<Value> {
    check_att_tag(src, digest, dir, |sig, data| {
        openssl_verifies(public, sig, data, dir)
    })
}

fn provenance(dir: &Path) -> PathBuf {
    let p = dir.join("provenance.json");
    let v = json!({
        "buildDefinition": {
            "buildType": "https://ocibuild.dev/build/v1",
            "externalParameters": {"context": "."},
            "resolvedDependencies": [{"uri": "git+https://example.invalid/app", "digest": {"gitCommit": "0123456789abcdef0123456789abcdef01234567"}}]
        },
        "runDetails": {"builder": {"id": "https://ci.example.invalid/ocibuild"}}
    });
    fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
    p
}

#[test]
fn sign_verify_attest_and_copy_against_docker_registry() {
    let ctx = tk::TestContext::new();
    let reg = start_registry(&ctx, RegistryOptions::default());
    let dir = ctx.path("work");
    fs::create_dir_all(&dir).unwrap();
    let layout = ctx.path("layout");
    let digest = image(&ctx, &layout, "v1", "hello\n");
    let img = reg.docker_ref("app:1");
    tk::run_ok(ocibuild(&ctx).args(["push", &format!("oci:{}:v1", layout.display()), &img]));

    // keys: cosign's encrypted format, 0600, never overwritten without --force
    let prefix = dir.join("cosign");
    tk::run_ok(ocibuild(&ctx).args([
        "generate-key-pair",
        "--output-key-prefix",
        prefix.to_str().unwrap(),
    ]));
    let key = dir.join("cosign.key");
    let public = dir.join("cosign.pub");
    let text = fs::read_to_string(&key).unwrap();
    assert!(
        text.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"),
        "{text}"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let (c, _, err) = code(ocibuild(&ctx).args([
        "generate-key-pair",
        "--output-key-prefix",
        prefix.to_str().unwrap(),
    ]));
    assert_eq!(c, 1, "{err}");
    assert!(err.contains("--force"), "{err}");
    assert_eq!(
        fs::read_to_string(&key).unwrap(),
        text,
        "the key was overwritten"
    );
    // a wrong password says so and leaks nothing
    let (c, _, err) = code(ocibuild(&ctx).env("COSIGN_PASSWORD", "wrong-pw-123").args([
        "sign",
        "--key",
        key.to_str().unwrap(),
        &img,
    ]));
    assert_eq!(c, 1, "{err}");
    assert!(
        err.contains("password") && !err.contains("wrong-pw-123"),
        "{err}"
    );

    // sign twice (two keys): both signatures are kept, and openssl verifies ocibuild's
    tk::run_ok(ocibuild(&ctx).args([
        "sign",
        "--key",
        key.to_str().unwrap(),
        "-a",
        "ci=test",
        &img,
    ]));
    let (other_key, other_pub) = openssl_key_pair(&dir, "other");
    tk::run_ok(ocibuild(&ctx).args([
        "sign",
        "--key",
        other_key.to_str().unwrap(),
        "--tlog-upload=false",
        "-y",
        &img,
    ]));
    let (c, _, err) = code(ocibuild(&ctx).args([
        "sign",
        "--key",
        other_key.to_str().unwrap(),
        "--tlog-upload=true",
        &img,
    ]));
    assert_eq!(c, 2, "{err}");
    assert!(err.contains("transparency log"), "{err}");
    let m = get_manifest(&reg, "app", &format!("sha256-{}.sig", hex_of(&digest)));
    assert_eq!(
        m["layers"].as_array().unwrap().len(),
        2,
        "appended, not replaced: {m}"
    );
    let payloads = openssl_check_sig_tag(&Src::Reg(&reg, "app"), &digest, &public, &dir);
    assert_eq!(payloads.len(), 1);
    assert_eq!(payloads[0]["optional"]["ci"], "test");
    assert_eq!(
        payloads[0]["critical"]["identity"]["docker-reference"],
        format!("{}/app", reg.host)
    );
    assert_eq!(
        openssl_check_sig_tag(&Src::Reg(&reg, "app"), &digest, &other_pub, &dir).len(),
        1
    );

    // verify: 0 with the key, annotations required; 3 with a wrong key or a missing annotation
    let (c, stdout, err) =
        code(ocibuild(&ctx).args(["verify", "--key", public.to_str().unwrap(), &img]));
    assert_eq!(c, 0, "{err}");
    let v: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v[0]["critical"]["image"]["docker-manifest-digest"], digest);
    let (c, _, err) = code(ocibuild(&ctx).args([
        "verify",
        "--key",
        public.to_str().unwrap(),
        "-a",
        "ci=test",
        "--insecure-ignore-tlog=true",
        &img,
    ]));
    assert_eq!(c, 0, "{err}");
    let (c, _, err) = code(ocibuild(&ctx).args([
        "verify",
        "--key",
        public.to_str().unwrap(),
        "-a",
        "ci=other",
        &img,
    ]));
    assert_eq!(c, 3, "{err}");
    assert!(err.contains("ci=other"), "{err}");
    let (_, wrong_pub) = openssl_key_pair(&dir, "wrong");
    let (c, _, err) =
        code(ocibuild(&ctx).args(["verify", "--key", wrong_pub.to_str().unwrap(), &img]));
    assert_eq!(c, 3, "{err}");
    assert!(err.contains("does not verify with this key"), "{err}");

    // attest; openssl checks the DSSE signature over PAE and the subject digest
    let prov = provenance(&dir);
    tk::run_ok(ocibuild(&ctx).args([
        "attest",
        "--key",
        key.to_str().unwrap(),
        "--type",
        "slsaprovenance1",
        "--predicate",
        prov.to_str().unwrap(),
        &img,
    ]));
    let sts = openssl_check_att_tag(&Src::Reg(&reg, "app"), &digest, &public, &dir);
    assert_eq!(sts.len(), 1);
    assert_eq!(sts[0]["predicateType"], "https://slsa.dev/provenance/v1");
    assert_eq!(
        sts[0]["predicate"]["runDetails"]["builder"]["id"],
        "https://ci.example.invalid/ocibuild"
    );
    let (c, stdout, err) = code(ocibuild(&ctx).args([
        "verify-attestation",
        "--key",
        public.to_str().unwrap(),
        "--type",
        "slsaprovenance1",
        &img,
    ]));
    assert_eq!(c, 0, "{err}");
    assert!(stdout.contains("application/vnd.in-toto+json"), "{stdout}");
    let (c, _, err) = code(ocibuild(&ctx).args([
        "verify-attestation",
        "--key",
        public.to_str().unwrap(),
        "--type",
        "cyclonedx",
        &img,
    ]));
    assert_eq!(c, 3, "{err}");
    let (c, _, err) = code(ocibuild(&ctx).args([
        "verify-attestation",
        "--key",
        wrong_pub.to_str().unwrap(),
        &img,
    ]));
    assert_eq!(c, 3, "{err}");

    // copy to another repository carries signatures and attestations; verify passes there,
    // except with --check-reference (the payload names the first repository)
    let copied = reg.docker_ref("copied:1");
    tk::run_ok(ocibuild(&ctx).args(["copy", &img, &copied]));
    let (c, _, err) =
        code(ocibuild(&ctx).args(["verify", "--key", public.to_str().unwrap(), &copied]));
    assert_eq!(c, 0, "{err}");
    let (c, _, err) = code(ocibuild(&ctx).args([
        "verify-attestation",
        "--key",
        public.to_str().unwrap(),
        "--type",
        "slsaprovenance1",
        &copied,
    ]));
    assert_eq!(c, 0, "{err}");
    assert_eq!(
        openssl_check_sig_tag(&Src::Reg(&reg, "copied"), &digest, &public, &dir).len(),
        1
    );
    let (c, _, err) = code(ocibuild(&ctx).args([
        "verify",
        "--key",
        public.to_str().unwrap(),
        "--check-reference",
        &copied,
    ]));
    assert_eq!(c, 3, "{err}");
    let (c, _, err) = code(ocibuild(&ctx).args([
        "verify",
        "--key",
        public.to_str().unwrap(),
        "--check-reference",
        &img,
    ]));
    assert_eq!(c, 0, "{err}");

    // an image re-pushed under the same tag: its digest has no signature
    let layout2 = ctx.path("layout2");
    image(&ctx, &layout2, "v1", "changed\n");
    tk::run_ok(ocibuild(&ctx).args(["push", &format!("oci:{}:v1", layout2.display()), &img]));
    let (c, _, err) =
        code(ocibuild(&ctx).args(["verify", "--key", public.to_str().unwrap(), &img]));
    assert_eq!(c, 3, "{err}");
    assert!(err.contains("no signature found"), "{err}");

    // verification that cannot run is exit 1, not 3
    let (c, _, err) = code(ocibuild(&ctx).args([
        "verify",
        "--key",
        public.to_str().unwrap(),
        "docker://127.0.0.1:1/app:1",
    ]));
    assert_eq!(c, 1, "{err}");
    let (c, _, err) = code(ocibuild(&ctx).args([
        "verify",
        "--key",
        dir.join("missing.pub").to_str().unwrap(),
        &copied,
    ]));
    assert_eq!(c, 1, "{err}");
}

#[test]
fn openssl_signatures_verify_and_tampering_fails_with_exit_3() {
    let ctx = tk::TestContext::new();
    let reg = start_registry(&ctx, RegistryOptions::default());
    let dir = ctx.path("work");
    fs::create_dir_all(&dir).unwrap();
    let layout = ctx.path("layout");
    let digest = image(&ctx, &layout, "v1", "signed elsewhere\n");
    let img = reg.docker_ref("app:1");
    tk::run_ok(ocibuild(&ctx).args(["push", &format!("oci:{}:v1", layout.display()), &img]));
    let (key, public) = openssl_key_pair(&dir, "ext");
    let tag = format!("sha256-{}.sig", hex_of(&digest));

    // store a signature the way cosign does, with curl: payload blob, config, manifest
    let store = |payload: &[u8], sig: &[u8]| {
        put_cosign_signature(&ctx, &reg, "app", &tag, payload, sig);
    };
    let payload_for = |d: &str| simple_signing_payload(&format!("{}/app", reg.host), d);
    let verify =
        |key: &Path| code(ocibuild(&ctx).args(["verify", "--key", key.to_str().unwrap(), &img]));

    let payload = payload_for(&digest);
    let sig = openssl_sign(&key, &payload, &dir);
    store(&payload, &sig);
    let (c, stdout, err) = verify(&public);
    assert_eq!(c, 0, "{err}");
    assert!(stdout.contains(&digest), "{stdout}");

    // a wrong key
    let (_, other_pub) = openssl_key_pair(&dir, "other");
    let (c, _, err) = verify(&other_pub);
    assert_eq!(c, 3, "{err}");
    assert!(err.contains("does not verify"), "{err}");

    // a tampered payload (stored with the original signature)
    let mut tampered = payload.clone();
    let at = tampered.len() - 3;
    tampered[at] = b' ';
    store(&tampered, &sig);
    let (c, _, err) = verify(&public);
    assert_eq!(c, 3, "{err}");
    assert!(err.contains("does not verify"), "{err}");

    // one flipped signature byte
    let mut flipped = sig.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x01;
    store(&payload, &flipped);
    let (c, _, err) = verify(&public);
    assert_eq!(c, 3, "{err}");

    // a validly signed payload that names another digest
    let elsewhere = payload_for(&format!("sha256:{}", "ab".repeat(32)));
    store(&elsewhere, &openssl_sign(&key, &elsewhere, &dir));
    let (c, _, err) = verify(&public);
    assert_eq!(c, 3, "{err}");
    assert!(err.contains("digest mismatch"), "{err}");

    // a cosign-format encrypted key made by an independent implementation signs with ocibuild
    let script = r#"
import base64, hashlib, json, os, sys
import nacl.secret
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
key = ec.generate_private_key(ec.SECP256R1())
der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
salt, nonce = os.urandom(32), os.urandom(24)
k = hashlib.scrypt(sys.argv[1].encode(), salt=salt, n=32768, r=8, p=1, dklen=32, maxmem=64*1024*1024)
ct = nacl.secret.SecretBox(k).encrypt(der, nonce).ciphertext
doc = {"kdf": {"name": "scrypt", "params": {"N": 32768, "r": 8, "p": 1}, "salt": base64.b64encode(salt).decode()},
       "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
       "ciphertext": base64.b64encode(ct).decode()}
b = base64.b64encode(json.dumps(doc).encode()).decode()
pem = "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n" + "\n".join(b[i:i+64] for i in range(0, len(b), 64)) + "\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"
open(sys.argv[2], "w").write(pem)
open(sys.argv[3], "wb").write(key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
"#;
    let (pykey, pypub) = (dir.join("py.key"), dir.join("py.pub"));
    tk::oracles::python_eval(
        &["pynacl", "cryptography"],
        script,
        &[PASSWORD, pykey.to_str().unwrap(), pypub.to_str().unwrap()],
    );
    tk::run_ok(ocibuild(&ctx).args(["sign", "--key", pykey.to_str().unwrap(), &img]));
    let good = openssl_check_sig_tag(&Src::Reg(&reg, "app"), &digest, &pypub, &dir);
    assert_eq!(
        good.len(),
        1,
        "openssl verifies the signature made with the Python-written key"
    );
    let (c, _, err) = verify(&pypub);
    assert_eq!(c, 0, "{err}");
    // and the other way: a key pair ocibuild writes is decrypted by the same independent code,
    // whose public key is ocibuild's cosign.pub
    let prefix = dir.join("ours");
    tk::run_ok(ocibuild(&ctx).args([
        "generate-key-pair",
        "--output-key-prefix",
        prefix.to_str().unwrap(),
    ]));
    let decrypt = r#"
import base64, hashlib, json, sys
import nacl.secret
from cryptography.hazmat.primitives import serialization
pem = open(sys.argv[2]).read().strip().splitlines()
assert pem[0] == "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----", pem[0]
doc = json.loads(base64.b64decode("".join(pem[1:-1])))
assert doc["kdf"]["name"] == "scrypt" and doc["kdf"]["params"] == {"N": 32768, "r": 8, "p": 1}, doc["kdf"]
assert doc["cipher"]["name"] == "nacl/secretbox"
salt = base64.b64decode(doc["kdf"]["salt"])
k = hashlib.scrypt(sys.argv[1].encode(), salt=salt, n=32768, r=8, p=1, dklen=32, maxmem=64*1024*1024)
der = nacl.secret.SecretBox(k).decrypt(base64.b64decode(doc["ciphertext"]), base64.b64decode(doc["cipher"]["nonce"]))
key = serialization.load_der_private_key(der, password=None)
sys.stdout.write(key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode())
"#;
    let py_pub = tk::oracles::python_eval(
        &["pynacl", "cryptography"],
        decrypt,
        &[PASSWORD, dir.join("ours.key").to_str().unwrap()],
    );
    assert_eq!(
        py_pub.trim(),
        fs::read_to_string(dir.join("ours.pub")).unwrap().trim()
    );

    // the old label reads too
    let old = dir.join("old.key");
    fs::write(
        &old,
        fs::read_to_string(&pykey)
            .unwrap()
            .replace("SIGSTORE", "COSIGN"),
    )
    .unwrap();
    tk::run_ok(ocibuild(&ctx).args(["sign", "--key", old.to_str().unwrap(), &img]));
}

#[test]
fn sign_in_a_layout_then_push_and_copy_carry_signatures() {
    let ctx = tk::TestContext::new();
    let reg = start_registry(&ctx, RegistryOptions::default());
    let dir = ctx.path("work");
    fs::create_dir_all(&dir).unwrap();
    let layout = ctx.path("layout");
    let digest = image(&ctx, &layout, "v1", "air-gapped\n");
    let src = format!("oci:{}:v1", layout.display());
    let (key, public) = openssl_key_pair(&dir, "site");
    let (k, p) = (key.to_str().unwrap(), public.to_str().unwrap());
    let identity = format!("{}/app", reg.host);

    tk::run_ok(ocibuild(&ctx).args([
        "sign",
        "--key",
        k,
        "--sign-container-identity",
        &identity,
        &src,
    ]));
    tk::run_ok(ocibuild(&ctx).args([
        "sign",
        "--key",
        k,
        "--registry-referrers-mode",
        "oci-1-1",
        &src,
    ]));
    let prov = provenance(&dir);
    tk::run_ok(ocibuild(&ctx).args([
        "attest",
        "--key",
        k,
        "--type",
        "slsaprovenance1",
        "--predicate",
        prov.to_str().unwrap(),
        &src,
    ]));
    let index: Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let names: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .collect();
    assert!(
        names.contains(&format!("sha256-{}.sig", hex_of(&digest)).as_str()),
        "{index}"
    );
    assert!(
        names.contains(&format!("sha256-{}.att", hex_of(&digest)).as_str()),
        "{index}"
    );
    let (c, stdout, err) = code(ocibuild(&ctx).args(["verify", "--key", p, &src]));
    assert_eq!(c, 0, "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(stdout.trim())
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        2,
        "the tag form and the referrer"
    );
    let (c, _, err) = code(ocibuild(&ctx).args(["verify-attestation", "--key", p, &src]));
    assert_eq!(c, 0, "{err}");

    // push the layout: the signature, the attestation and the referrer go along
    let img = reg.docker_ref("app:1");
    tk::run_ok(ocibuild(&ctx).args(["push", &src, &img]));
    let payloads = openssl_check_sig_tag(&Src::Reg(&reg, "app"), &digest, &public, &dir);
    assert_eq!(payloads.len(), 1);
    assert_eq!(
        payloads[0]["critical"]["identity"]["docker-reference"],
        identity
    );
    assert_eq!(
        openssl_check_att_tag(&Src::Reg(&reg, "app"), &digest, &public, &dir).len(),
        1
    );
    let (c, stdout, err) =
        code(ocibuild(&ctx).args(["verify", "--key", p, "--check-reference", &img]));
    assert_eq!(c, 0, "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(stdout.trim())
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        1,
        "only the tag-form payload names the repository"
    );
    let (c, stdout, _) = code(ocibuild(&ctx).args(["verify", "--key", p, &img]));
    assert_eq!(c, 0);
    assert_eq!(
        serde_json::from_str::<Value>(stdout.trim())
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        2,
        "the referrer was carried: {stdout}"
    );

    // the layout named without a tag: its signatures are not images to choose between
    let untagged = reg.docker_ref("untagged:1");
    tk::run_ok(ocibuild(&ctx).args(["push", &format!("oci:{}", layout.display()), &untagged]));
    let (c, _, err) = code(ocibuild(&ctx).args(["verify", "--key", p, &untagged]));
    assert_eq!(c, 0, "{err}");

    // and back into a new layout (registry to layout)
    let back = ctx.path("back");
    tk::run_ok(ocibuild(&ctx).args(["copy", &img, &format!("oci:{}:v1", back.display())]));
    let (c, _, err) =
        code(ocibuild(&ctx).args(["verify", "--key", p, &format!("oci:{}:v1", back.display())]));
    assert_eq!(c, 0, "{err}");
    let (c, _, err) = code(ocibuild(&ctx).args([
        "verify-attestation",
        "--key",
        p,
        "--type",
        "slsaprovenance1",
        &format!("oci:{}:v1", back.display()),
    ]));
    assert_eq!(c, 0, "{err}");

    // through an exclusive mirror: the origin (nothing listens there) is never asked, not even
    // for the signatures
    let mirrored = ctx.path("mirrored");
    let flag = format!("127.0.0.1:1={};exclusive", reg.host);
    tk::run_ok(ocibuild(&ctx).args([
        "--registry-mirror",
        &flag,
        "copy",
        "docker://127.0.0.1:1/app:1",
        &format!("oci:{}:v1", mirrored.display()),
    ]));
    let (c, _, err) = code(ocibuild(&ctx).args([
        "verify",
        "--key",
        p,
        &format!("oci:{}:v1", mirrored.display()),
    ]));
    assert_eq!(c, 0, "{err}");
}

/// An index of the two images tagged `a` and `b`, tagged `multi`; returns its digest.
fn make_index(layout: &Path, a: &str, b: &str) -> String {
    let idx: Value = serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let pick = |t: &str| {
        let mut m = idx["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == t)
            .unwrap()
            .clone();
        m.as_object_mut().unwrap().remove("annotations");
        m
    };
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [pick(a), pick(b)]});
    let bytes = serde_json::to_vec(&index).unwrap();
    let d = sha256(&bytes);
    fs::write(layout.join("blobs/sha256").join(hex_of(&d)), &bytes).unwrap();
    let mut top = idx.clone();
    top["manifests"].as_array_mut().unwrap().push(json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": d, "size": bytes.len(), "annotations": {"org.opencontainers.image.ref.name": "multi"}}));
    fs::write(layout.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
    d
}

#[test]
fn recursive_signatures_of_an_index_travel_with_copy() {
    let ctx = tk::TestContext::new();
    let reg = start_registry(&ctx, RegistryOptions::default());
    let dir = ctx.path("work");
    fs::create_dir_all(&dir).unwrap();
    let layout = ctx.path("layout");
    let amd = image_for(&ctx, &layout, "amd", "amd64\n", "linux/amd64");
    let arm = image_for(&ctx, &layout, "arm", "arm64\n", "linux/arm64");
    let index = make_index(&layout, "amd", "arm");
    let img = reg.docker_ref("multi:1");
    tk::run_ok(ocibuild(&ctx).args(["push", &format!("oci:{}:multi", layout.display()), &img]));
    let (key, public) = openssl_key_pair(&dir, "k");
    tk::run_ok(ocibuild(&ctx).args(["sign", "--key", key.to_str().unwrap(), "--recursive", &img]));
    for d in [&index, &amd, &arm] {
        assert_eq!(
            openssl_check_sig_tag(&Src::Reg(&reg, "multi"), d, &public, &dir).len(),
            1,
            "{d}"
        );
    }
    let copied = reg.docker_ref("multi-copy:1");
    tk::run_ok(ocibuild(&ctx).args(["copy", &img, &copied]));
    for d in [&index, &amd, &arm] {
        assert_eq!(
            openssl_check_sig_tag(&Src::Reg(&reg, "multi-copy"), d, &public, &dir).len(),
            1,
            "{d}"
        );
        let by_digest = format!(
            "{}/multi-copy@{d}",
            reg.docker_ref("").trim_end_matches('/')
        );
        let (c, _, err) =
            code(ocibuild(&ctx).args(["verify", "--key", public.to_str().unwrap(), &by_digest]));
        assert_eq!(c, 0, "{by_digest}: {err}");
    }
}

/// The verified in-toto statement of `predicate_type` among `statements`.
fn statement<'a>(statements: &'a [Value], predicate_type: &str) -> &'a Value {
    statements
        .iter()
        .find(|s| s["predicateType"] == predicate_type)
        .unwrap_or_else(|| panic!("no verified {predicate_type} statement in {statements:#?}"))
}

/// The SLSA provenance predicate is valid against the SLSA v1 schema (Python `jsonschema`), starts
/// no later than it finishes, names its builder, and carries none of `secrets`.
fn assert_provenance(p: &Value, secrets: &[&str]) {
    let errors = tk::oracles::json_schema_errors(&tk::oracles::slsa_provenance_schema(), p);
    assert!(errors.is_empty(), "{errors:#?}\n{p:#}");
    let m = &p["runDetails"]["metadata"];
    assert!(
        m["startedOn"].as_str().unwrap() <= m["finishedOn"].as_str().unwrap(),
        "{m}"
    );
    assert_eq!(
        p["runDetails"]["builder"]["id"],
        "https://ocibuild.dev/builder/v1"
    );
    assert_eq!(
        p["runDetails"]["builder"]["version"]["ocibuild"],
        env!("CARGO_PKG_VERSION")
    );
    let text = p.to_string();
    for s in secrets {
        assert!(
            !text.contains(s),
            "the secret {s} is in the provenance: {p:#}"
        );
    }
}

/// The resolved dependency called `name`.
fn dependency<'a>(p: &'a Value, name: &str) -> &'a Value {
    p["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("no resolved dependency {name}: {p:#}"))
}

/// A small static-site app with a Dockerfile on the base `base` (an `oci:` reference), a
/// lockfile, and build args; returns its directory.
fn site_app(ctx: &tk::TestContext, base: &str) -> PathBuf {
    let app = ctx.path("site");
    fs::create_dir_all(app.join("public")).unwrap();
    fs::write(app.join("public/index.html"), "<h1>orders</h1>\n").unwrap();
    fs::write(
        app.join("package-lock.json"),
        "{\"name\": \"site\", \"lockfileVersion\": 3, \"packages\": {}}\n",
    )
    .unwrap();
    fs::write(app.join(".dockerignore"), "*.log\n").unwrap();
    fs::write(
        app.join("Dockerfile"),
        format!(
            "FROM {base}\nARG NPM_TOKEN\nARG VERSION=dev\nWORKDIR /srv\nCOPY package-lock.json ./\n\
             COPY public/ /srv/public/\nLABEL org.opencontainers.image.version=$VERSION\n"
        ),
    )
    .unwrap();
    app
}

#[test]
fn build_signs_and_attests_in_a_layout_and_a_registry_before_the_push() {
    let ctx = tk::TestContext::new();
    let reg = start_registry(&ctx, RegistryOptions::default());
    let dir = ctx.path("work");
    fs::create_dir_all(&dir).unwrap();
    let base_layout = ctx.path("base");
    let base_digest = image(&ctx, &base_layout, "v1", "base\n");
    let app = site_app(&ctx, &format!("oci:{}:v1", base_layout.display()));
    let prefix = dir.join("cosign");
    tk::run_ok(ocibuild(&ctx).args([
        "generate-key-pair",
        "--output-key-prefix",
        prefix.to_str().unwrap(),
    ]));
    let (key, public) = (dir.join("cosign.key"), dir.join("cosign.pub"));
    let (k, p) = (key.to_str().unwrap(), public.to_str().unwrap());
    let layout = ctx.path("out");
    let src = format!("oci:{}:1", layout.display());
    let img = reg.docker_ref("app:1");
    let prov_file = dir.join("provenance.json");
    let (arg_secret, env_secret) = ("argtok-s3cret-7731", "env-s3cret-4410");
    let build = |extra: &[&str]| {
        let mut c = ocibuild(&ctx);
        c.env("SITE_NPM_SECRET", env_secret)
            .arg("build")
            .arg(&app)
            .args(["--build-arg", &format!("NPM_TOKEN={arg_secret}")])
            .args(["--build-arg", "VERSION=2.1"])
            .args(["--secret", "id=npm,env=SITE_NPM_SECRET"])
            .args(extra);
        code(&mut c)
    };
    // usage errors before anything is built: no key; no output that can hold a signature
    let (c, _, err) = build(&["--sign", "--output", &src]);
    assert_eq!(c, 2, "{err}");
    assert!(err.contains("--key"), "{err}");
    let archive = dir.join("app.tar");
    let (c, _, err) = build(&[
        "--sign",
        "--key",
        k,
        "--output",
        &format!("oci-archive:{}", archive.display()),
    ]);
    assert_eq!(c, 2, "{err}");
    assert!(err.contains("oci:DIR"), "{err}");
    let (c, _, err) = build(&["--provenance", "--output", &src]);
    assert_eq!(c, 2, "{err}");
    assert!(err.contains("--provenance needs --sign"), "{err}");
    assert!(!archive.exists() && !layout.exists());

    let sbom_dir = dir.join("sbom");
    let (c, stdout, err) = build(&[
        "--sign",
        "--key",
        k,
        "--provenance",
        "--provenance-file",
        prov_file.to_str().unwrap(),
        "--sbom=cyclonedx",
        "--sbom-dir",
        sbom_dir.to_str().unwrap(),
        "--attest-sbom",
        "-t",
        &format!("{}/app:1", reg.host),
        "--push",
        "--output",
        &src,
    ]);
    assert_eq!(c, 0, "{err}");
    let digest = stdout.lines().last().unwrap().to_string();
    assert!(err.contains(&format!("signed {src}")), "{err}");
    assert!(err.contains("attested docker://"), "{err}");

    // ocibuild verifies both places
    for target in [src.as_str(), img.as_str()] {
        let (c, _, err) = code(ocibuild(&ctx).args(["verify", "--key", p, target]));
        assert_eq!(c, 0, "{target}: {err}");
        for t in ["slsaprovenance1", "cyclonedx"] {
            let (c, _, err) =
                code(ocibuild(&ctx).args(["verify-attestation", "--key", p, "--type", t, target]));
            assert_eq!(c, 0, "{target} {t}: {err}");
        }
    }
    // openssl verifies both places; the layout's payload names the -t repository, so it holds
    // after the later push
    let identity = format!("{}/app", reg.host);
    let places = [Src::Layout(&layout), Src::Reg(&reg, "app")];
    let mut provenances = Vec::new();
    for place in &places {
        let payloads = openssl_check_sig_tag(place, &digest, &public, &dir);
        assert_eq!(payloads.len(), 1);
        assert_eq!(
            payloads[0]["critical"]["identity"]["docker-reference"],
            identity
        );
        let sts = openssl_check_att_tag(place, &digest, &public, &dir);
        assert_eq!(sts.len(), 2, "{sts:#?}");
        let sbom = statement(&sts, "https://cyclonedx.org/bom");
        assert_eq!(sbom["predicate"]["bomFormat"], "CycloneDX");
        let prov = statement(&sts, "https://slsa.dev/provenance/v1");
        assert_eq!(prov["subject"][0]["name"], identity.as_str());
        provenances.push(prov["predicate"].clone());
    }
    let prov = &provenances[0];
    assert_eq!(prov, &provenances[1]);
    let written: Value = serde_json::from_slice(&fs::read(&prov_file).unwrap()).unwrap();
    assert_eq!(
        &written, prov,
        "--provenance-file is the attested predicate"
    );
    assert_provenance(prov, &[arg_secret, env_secret]);
    let params = &prov["buildDefinition"]["externalParameters"];
    assert_eq!(params["buildArgs"]["NPM_TOKEN"], "<redacted>", "{params:#}");
    assert_eq!(params["buildArgs"]["VERSION"], "2.1", "{params:#}");
    assert_eq!(params["secrets"], json!(["npm"]), "{params:#}");
    assert_eq!(params["frontend"]["kind"], "dockerfile", "{params:#}");
    let base = dependency(prov, "base:stage-0");
    assert_eq!(base["digest"]["sha256"], hex_of(&base_digest), "{base}");
    let lock = dependency(prov, "package-lock.json");
    assert_eq!(
        lock["digest"]["sha256"],
        hex_of(&sha256(&fs::read(app.join("package-lock.json")).unwrap())),
        "{lock}"
    );
    let context = dependency(prov, "context")["digest"]["sha256"].clone();

    // air-gapped: the layout goes to another repository later, its signature and attestations along
    let air = reg.docker_ref("air:1");
    tk::run_ok(ocibuild(&ctx).args(["copy", &src, &air]));
    assert_eq!(
        openssl_check_sig_tag(&Src::Reg(&reg, "air"), &digest, &public, &dir).len(),
        1
    );
    let (c, _, err) = code(ocibuild(&ctx).args([
        "verify-attestation",
        "--key",
        p,
        "--type",
        "slsaprovenance1",
        &air,
    ]));
    assert_eq!(c, 0, "{err}");

    // the context digest follows the files the build reads (a .dockerignore'd one is not read)
    fs::write(app.join("debug.log"), "noise\n").unwrap();
    let prov2 = dir.join("provenance2.json");
    let again = |file: &Path| {
        let (c, _, err) = build(&[
            "--sign",
            "--key",
            k,
            "--provenance",
            "--provenance-file",
            file.to_str().unwrap(),
            "--output",
            &format!("oci:{}:2", ctx.path("out2").display()),
        ]);
        assert_eq!(c, 0, "{err}");
        let v: Value = serde_json::from_slice(&fs::read(file).unwrap()).unwrap();
        dependency(&v, "context")["digest"]["sha256"].clone()
    };
    assert_eq!(
        again(&prov2),
        context,
        "an ignored file changed the context digest"
    );
    fs::write(app.join("public/index.html"), "<h1>orders v2</h1>\n").unwrap();
    assert_ne!(
        again(&prov2),
        context,
        "a changed file left the context digest as it was"
    );
}

/// The build tests' shared store and package cache (toolchain roots are assembled once).
fn shared_store() -> (PathBuf, PathBuf) {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let cache = tmp.join("ocibuild-build-tests-store").join("debian");
    fs::create_dir_all(&cache).unwrap();
    (tmp.join("ocibuild-build-tests-store"), cache)
}

#[test]
fn zero_config_build_signs_with_provenance_of_its_toolchain_and_runtime_base() {
    let ctx = tk::TestContext::new();
    let (root, cache) = shared_store();
    let dir = ctx.path("work");
    fs::create_dir_all(&dir).unwrap();
    let (key, public) = openssl_key_pair(&dir, "ci");
    let app = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/apps/go-hello");
    let layout = ctx.path("out");
    let src = format!("oci:{}:hello", layout.display());
    let prov_file = dir.join("provenance.json");
    let out = tk::run_ok(
        ocibuild_at(&ctx, &root)
            .env("OCIBUILD_BUILDER_ID", "https://ci.example.invalid/job/7")
            .env("BUILD_SECRET_ENV", "zc-s3cret-0913")
            .arg("build")
            .arg(&app)
            .arg("--cache-dir")
            .arg(&cache)
            .args(["--build-env", "GOFLAGS=-trimpath"])
            .args(["--sign", "--key", key.to_str().unwrap(), "--provenance"])
            .arg("--provenance-file")
            .arg(&prov_file)
            .args(["--output", &src]),
    );
    let digest = out_last_line(&out);
    let p = public.to_str().unwrap();
    let (c, _, err) = code(ocibuild(&ctx).args(["verify", "--key", p, &src]));
    assert_eq!(c, 0, "{err}");
    let sts = openssl_check_att_tag(&Src::Layout(&layout), &digest, &public, &dir);
    let prov = &statement(&sts, "https://slsa.dev/provenance/v1")["predicate"];
    assert_eq!(
        prov["runDetails"]["builder"]["id"],
        "https://ci.example.invalid/job/7"
    );
    let mut without_id = prov.clone();
    without_id["runDetails"]["builder"]["id"] = json!("https://ocibuild.dev/builder/v1");
    assert_provenance(&without_id, &["zc-s3cret-0913"]);
    let params = &prov["buildDefinition"]["externalParameters"];
    assert_eq!(params["frontend"]["kind"], "zero_config", "{params:#}");
    assert_eq!(params["frontend"]["language"], "go", "{params:#}");
    let runtime = dependency(prov, "base:runtime");
    assert_eq!(
        runtime["digest"]["sha256"].as_str().unwrap().len(),
        64,
        "{runtime}"
    );
    let go = prov["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| {
            d["name"]
                .as_str()
                .unwrap_or_default()
                .starts_with("toolchain:")
        })
        .unwrap_or_else(|| panic!("no toolchain root: {prov:#}"));
    assert_eq!(go["digest"]["sha256"].as_str().unwrap().len(), 64, "{go}");
    dependency(prov, "context");
    let written: Value = serde_json::from_slice(&fs::read(&prov_file).unwrap()).unwrap();
    assert_eq!(&written, prov);

    // OCI 1.1 referrers instead of cosign's tags: no .sig/.att tag, and both still verify
    let layout = ctx.path("out-referrers");
    let src = format!("oci:{}:hello", layout.display());
    tk::run_ok(
        ocibuild_at(&ctx, &root)
            .arg("build")
            .arg(&app)
            .arg("--cache-dir")
            .arg(&cache)
            .args(["--sign", "--key", key.to_str().unwrap(), "--provenance"])
            .args(["--sign-referrers-mode", "oci-1-1", "--output", &src]),
    );
    let index = fs::read_to_string(layout.join("index.json")).unwrap();
    assert!(
        !index.contains(".sig\"") && !index.contains(".att\""),
        "{index}"
    );
    for args in [
        vec!["verify", "--key", p, &src],
        vec![
            "verify-attestation",
            "--key",
            p,
            "--type",
            "slsaprovenance1",
            &src,
        ],
    ] {
        let (c, _, err) = code(ocibuild(&ctx).args(&args));
        assert_eq!(c, 0, "{args:?}: {err}");
    }

    // a Notary Project signature instead (the build itself comes from the cache): it verifies
    // under a notation trust policy
    let ca = openssl_ca(&dir, "ca", "/C=US/ST=WA/O=Acme Rockets/CN=Acme Rockets CA");
    let leaf = openssl_leaf(
        &dir,
        "leaf",
        "/C=US/ST=WA/L=Seattle/O=Acme Rockets/CN=zero-config",
        &ca,
    );
    let chain = dir.join("chain.pem");
    let mut text = fs::read(&leaf.1).unwrap();
    text.extend(fs::read(&ca.1).unwrap());
    fs::write(&chain, text).unwrap();
    let layout = ctx.path("out-notation");
    let src = format!("oci:{}:hello", layout.display());
    tk::run_ok(
        ocibuild_at(&ctx, &root)
            .arg("build")
            .arg(&app)
            .arg("--cache-dir")
            .arg(&cache)
            .args(["--sign=notation", "--key", leaf.0.to_str().unwrap()])
            .args(["--cert", chain.to_str().unwrap(), "--output", &src]),
    );
    let store = dir.join("truststore");
    fs::create_dir_all(store.join("x509/ca/acme")).unwrap();
    fs::copy(&ca.1, store.join("x509/ca/acme/ca.crt")).unwrap();
    let tp = dir.join("trustpolicy.json");
    fs::write(
        &tp,
        json!({"version": "1.0", "trustPolicies": [{
            "name": "all", "registryScopes": ["*"],
            "signatureVerification": {"level": "strict"},
            "trustStores": ["ca:acme"],
            "trustedIdentities": ["x509.subject: C=US, ST=WA, O=Acme Rockets, CN=zero-config"]}]})
        .to_string(),
    )
    .unwrap();
    let (c, _, err) = code(ocibuild(&ctx).args([
        "verify",
        "--format",
        "notation",
        "--trust-policy",
        tp.to_str().unwrap(),
        "--trust-store",
        store.to_str().unwrap(),
        &src,
    ]));
    assert_eq!(c, 0, "{err}");
    // and no cosign signature was made
    let (c, _, err) = code(ocibuild(&ctx).args(["verify", "--key", p, &src]));
    assert_eq!(c, 3, "{err}");
}

fn out_last_line(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

/// Run `cmd` on a pseudo-terminal (Python's `pty`), typing each of `answers` when the program
/// asks `Enter password` (after it turned echo off); returns (exit code, what the terminal showed).
fn on_a_terminal(cmd: &Command, answers: &[&str]) -> (i32, String) {
    const DRIVE: &str = r#"
import os, pty, sys
answers = os.environ.pop("PTY_ANSWERS").split("\n")
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
out, asked = b"", 0
while True:
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
    while out.count(b"Enter password") > asked and asked < len(answers):
        os.write(fd, answers[asked].encode() + b"\n")
        asked += 1
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
"#;
    let mut py = Command::new(tk::require_tool("python3", "python3"));
    py.arg("-c")
        .arg(DRIVE)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => py.env(k, v),
            None => py.env_remove(k),
        };
    }
    py.env("PTY_ANSWERS", answers.join("\n"));
    let (c, stdout, _) = code(&mut py);
    (c, stdout)
}

#[test]
fn the_password_is_asked_on_the_terminal_without_echo() {
    let ctx = tk::TestContext::new();
    let dir = ctx.path("work");
    fs::create_dir_all(&dir).unwrap();
    let prefix = dir.join("tty");
    let pw = "typed-pw-5521";
    let keygen = |answers: &[&str]| {
        let mut c = ocibuild(&ctx);
        c.env_remove("COSIGN_PASSWORD").args([
            "generate-key-pair",
            "--force",
            "--output-key-prefix",
            prefix.to_str().unwrap(),
        ]);
        on_a_terminal(&c, answers)
    };
    let (c, shown) = keygen(&[pw, "something-else"]);
    assert_eq!(c, 1, "{shown}");
    assert!(shown.contains("differ"), "{shown}");
    assert!(!dir.join("tty.key").exists());
    let (c, shown) = keygen(&[pw, pw]);
    assert_eq!(c, 0, "{shown}");
    assert!(!shown.contains(pw), "the password was echoed: {shown}");

    // the typed password opens the key in `build --sign` (asked before the build) ...
    let app = ctx.path("app");
    fs::create_dir_all(&app).unwrap();
    fs::write(app.join("motd"), "hello\n").unwrap();
    fs::write(
        app.join("Dockerfile"),
        "FROM scratch\nCOPY motd /etc/motd\n",
    )
    .unwrap();
    let layout = ctx.path("out");
    let src = format!("oci:{}:1", layout.display());
    let mut b = ocibuild(&ctx);
    b.env_remove("COSIGN_PASSWORD")
        .arg("build")
        .arg(&app)
        .args(["--sign", "--key"])
        .arg(dir.join("tty.key"))
        .args(["--output", &src]);
    let (c, shown) = on_a_terminal(&b, &["wrong-pw"]);
    assert_eq!(c, 1, "{shown}");
    assert!(shown.contains("password"), "{shown}");
    assert!(
        !layout.exists(),
        "a build with a wrong password wrote its output"
    );
    let (c, shown) = on_a_terminal(&b, &[pw]);
    assert_eq!(c, 0, "{shown}");
    assert!(!shown.contains(pw), "the password was echoed: {shown}");
    // ... and what it signed verifies with the public key
    let (c, _, err) = code(ocibuild(&ctx).args([
        "verify",
        "--key",
        dir.join("tty.pub").to_str().unwrap(),
        &src,
    ]));
    assert_eq!(c, 0, "{err}");
}
