//! What the signing tests share (`tests/sign.rs` here, and the sigstore-crate interop tests in
//! `crates/ocibuild-interop`, which include this file by path): running ocibuild on a test
//! store, one-file images in a layout, and reading and writing cosign's tags in a real
//! docker-registry (curl) or an OCI layout's files, without ocibuild.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ocibuild_testkit as tk;
use ocibuild_testkit::registry::Registry;
use serde_json::{Value, json};

/// The `ocibuild` binary: cargo's own inside the `ocibuild` crate, else the testkit's lookup
/// (next to the test binary, or `$OCIBUILD_BIN`).
pub fn ocibuild_bin() -> PathBuf {
    option_env!("CARGO_BIN_EXE_ocibuild")
        .map(PathBuf::from)
        .unwrap_or_else(tk::ocibuild_bin)
}

pub const PASSWORD: &str = "correct horse battery staple";

pub fn ocibuild(ctx: &tk::TestContext) -> Command {
    ocibuild_at(ctx, &ctx.path("store"))
}

/// `ocibuild` on the store `root`.
pub fn ocibuild_at(ctx: &tk::TestContext, root: &Path) -> Command {
    let mut c = Command::new(ocibuild_bin());
    c.arg("--root").arg(root).arg("--progress").arg("plain");
    c.env("DOCKER_CONFIG", ctx.path("docker"));
    c.env("HOME", ctx.path("home"));
    c.env("COSIGN_PASSWORD", PASSWORD);
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

pub fn out(o: std::process::Output) -> String {
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

/// Run and return (exit code, stdout, stderr).
pub fn code(cmd: &mut Command) -> (i32, String, String) {
    let o = tk::run(cmd);
    (
        tk::exit_code(o.status),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A one-file image in a layout at `dir:tag`; returns its digest.
pub fn image(ctx: &tk::TestContext, dir: &Path, tag: &str, content: &str) -> String {
    image_for(ctx, dir, tag, content, "linux/amd64")
}

pub fn image_for(
    ctx: &tk::TestContext,
    dir: &Path,
    tag: &str,
    content: &str,
    platform: &str,
) -> String {
    let rootfs = ctx.path(format!("rootfs-{tag}-{}", content.len()));
    fs::create_dir_all(&rootfs).unwrap();
    fs::write(rootfs.join("msg"), content).unwrap();
    out(tk::run_ok(
        ocibuild(ctx)
            .arg("assemble")
            .arg("--layer")
            .arg(format!("{}:/", rootfs.display()))
            .args(["--entrypoint", "/msg", "--platform", platform])
            .arg("--output")
            .arg(format!("oci:{}:{tag}", dir.display())),
    ))
}

pub fn curl() -> Command {
    let mut c = Command::new(tk::require_tool("curl", "curl"));
    c.args(["-sS", "--fail"]);
    c
}

pub fn get_manifest(reg: &Registry, repo: &str, reference: &str) -> Value {
    let body = out(tk::run_ok(curl().args([
        "-H",
        "Accept: application/vnd.oci.image.manifest.v1+json",
        &format!("{}/v2/{repo}/manifests/{reference}", reg.url),
    ])));
    serde_json::from_str(&body).unwrap()
}

pub fn get_blob(reg: &Registry, repo: &str, digest: &str, to: &Path) {
    tk::run_ok(curl().args([
        "-L",
        "-o",
        to.to_str().unwrap(),
        &format!("{}/v2/{repo}/blobs/{digest}", reg.url),
    ]));
}

pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// Upload a blob with the distribution API (POST, then a monolithic PUT).
pub fn put_blob(ctx: &tk::TestContext, reg: &Registry, repo: &str, bytes: &[u8]) -> String {
    let d = sha256(bytes);
    let headers = out(tk::run_ok(curl().args([
        "-X",
        "POST",
        "-D",
        "-",
        "-o",
        "/dev/null",
        &format!("{}/v2/{repo}/blobs/uploads/", reg.url),
    ])));
    let loc = headers
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("location"))
                .map(|(_, v)| v.trim().to_string())
        })
        .expect("a Location header");
    let loc = if loc.starts_with("http") {
        loc
    } else {
        format!("{}{loc}", reg.url)
    };
    let sep = if loc.contains('?') { '&' } else { '?' };
    let f = ctx.path(format!("upload-{}", &d[7..19]));
    fs::write(&f, bytes).unwrap();
    tk::run_ok(curl().args([
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/octet-stream",
        "--data-binary",
        &format!("@{}", f.display()),
        &format!("{loc}{sep}digest={d}"),
    ]));
    d
}

pub fn put_manifest(ctx: &tk::TestContext, reg: &Registry, repo: &str, tag: &str, m: &Value) {
    let f = ctx.path(format!("manifest-{tag}"));
    fs::write(&f, serde_json::to_vec(m).unwrap()).unwrap();
    tk::run_ok(curl().args([
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/vnd.oci.image.manifest.v1+json",
        "--data-binary",
        &format!("@{}", f.display()),
        &format!("{}/v2/{repo}/manifests/{tag}", reg.url),
    ]));
}

pub fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap()
}

/// Where the test reads cosign's tags from, without ocibuild: a registry over HTTP (curl), or
/// an OCI layout's files.
pub enum Src<'a> {
    Reg(&'a Registry, &'a str),
    Layout(&'a Path),
}

impl Src<'_> {
    /// The manifest tagged `tag`.
    pub fn manifest(&self, tag: &str) -> Value {
        match self {
            Src::Reg(reg, repo) => get_manifest(reg, repo, tag),
            Src::Layout(dir) => {
                let index: Value =
                    serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
                let d = index["manifests"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
                    .unwrap_or_else(|| panic!("no {tag} in {}: {index}", dir.display()));
                serde_json::from_slice(&self.blob(d["digest"].as_str().unwrap(), dir)).unwrap()
            }
        }
    }

    /// A blob's bytes (`scratch` holds the download).
    pub fn blob(&self, digest: &str, scratch: &Path) -> Vec<u8> {
        match self {
            Src::Reg(reg, repo) => {
                let p = scratch.join("blob");
                get_blob(reg, repo, digest, &p);
                fs::read(&p).unwrap()
            }
            Src::Layout(dir) => fs::read(dir.join("blobs/sha256").join(hex_of(digest))).unwrap(),
        }
    }
}
/// DSSE PAE, computed here independently of ocibuild.
pub fn pae(t: &str, body: &[u8]) -> Vec<u8> {
    let mut v = format!("DSSEv1 {} {t} {} ", t.len(), body.len()).into_bytes();
    v.extend_from_slice(body);
    v
}

/// Check every signature in `sha256-<hex>.sig` with `verifies(signature, payload)` (a verifier
/// that is not ocibuild's); returns the verified payloads, each checked to name `digest`.
pub fn check_sig_tag(
    src: &Src,
    digest: &str,
    dir: &Path,
    verifies: impl Fn(&[u8], &[u8]) -> bool,
) -> Vec<Value> {
    let m = src.manifest(&format!("sha256-{}.sig", hex_of(digest)));
    let mut payloads = Vec::new();
    for l in m["layers"].as_array().unwrap() {
        assert_eq!(
            l["mediaType"], "application/vnd.dev.cosign.simplesigning.v1+json",
            "{m}"
        );
        let sig = B64
            .decode(
                l["annotations"]["dev.cosignproject.cosign/signature"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap();
        let payload = src.blob(l["digest"].as_str().unwrap(), dir);
        if verifies(&sig, &payload) {
            let v: Value = serde_json::from_slice(&payload).unwrap();
            assert_eq!(v["critical"]["image"]["docker-manifest-digest"], digest);
            assert_eq!(v["critical"]["type"], "cosign container image signature");
            payloads.push(v);
        }
    }
    payloads
}

/// Check the DSSE signatures in `sha256-<hex>.att` with `verifies(signature, PAE bytes)`, the PAE
/// computed here; returns the verified statements, each checked to have `digest` as subject.
pub fn check_att_tag(
    src: &Src,
    digest: &str,
    dir: &Path,
    verifies: impl Fn(&[u8], &[u8]) -> bool,
) -> Vec<Value> {
    let m = src.manifest(&format!("sha256-{}.att", hex_of(digest)));
    let mut out = Vec::new();
    for l in m["layers"].as_array().unwrap() {
        assert_eq!(l["mediaType"], "application/vnd.dsse.envelope.v1+json");
        let env: Value =
            serde_json::from_slice(&src.blob(l["digest"].as_str().unwrap(), dir)).unwrap();
        assert_eq!(env["payloadType"], "application/vnd.in-toto+json");
        let body = B64.decode(env["payload"].as_str().unwrap()).unwrap();
        let sig = B64
            .decode(env["signatures"][0]["sig"].as_str().unwrap())
            .unwrap();
        if verifies(&sig, &pae("application/vnd.in-toto+json", &body)) {
            let st: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(st["_type"], "https://in-toto.io/Statement/v1");
            assert_eq!(st["subject"][0]["digest"]["sha256"], hex_of(digest));
            assert_eq!(l["annotations"]["predicateType"], st["predicateType"]);
            out.push(st);
        }
    }
    out
}

/// Store a signature the way cosign does, with curl: the payload blob, a config, and a manifest
/// tagged `tag` whose one layer carries the signature annotation (replacing what the tag held).
pub fn put_cosign_signature(
    ctx: &tk::TestContext,
    reg: &Registry,
    repo: &str,
    tag: &str,
    payload: &[u8],
    sig: &[u8],
) {
    let pd = put_blob(ctx, reg, repo, payload);
    let cfg = serde_json::to_vec(&json!({"architecture": "", "os": "", "rootfs": {"type": "layers", "diff_ids": [pd]}, "config": {}})).unwrap();
    let cd = put_blob(ctx, reg, repo, &cfg);
    put_manifest(
        ctx,
        reg,
        repo,
        tag,
        &json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cfg.len()},
            "layers": [{
                "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
                "digest": pd, "size": payload.len(),
                "annotations": {"dev.cosignproject.cosign/signature": B64.encode(sig)}
            }]
        }),
    );
}

/// cosign's simple-signing payload for `digest`, written here (not by ocibuild).
pub fn simple_signing_payload(docker_reference: &str, digest: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"critical": {"identity": {"docker-reference": docker_reference}, "image": {"docker-manifest-digest": digest}, "type": "cosign container image signature"}, "optional": null})).unwrap()
}
