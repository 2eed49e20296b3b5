//! The registry harness against the real peers: CNCF `docker-registry` in every setup (plain,
//! TLS, htpasswd, bearer tokens from the token server fixture), driven by skopeo and curl, and the
//! fault proxy in front of it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use ocibuild_testkit as tk;
use serde_json::Value;
use tk::proxy::{FaultPlan, start_fault_proxy};
use tk::registry::{Registry, RegistryOptions, SigningKey, start_registry};

/// A tiny OCI layout with tag `v1`: one layer holding `/hello.txt`, made with umoci alone.
fn small_layout(ctx: &tk::TestContext) -> PathBuf {
    let layout = ctx.path("layout");
    let payload = ctx.path("payload/hello.txt");
    fs::write(&payload, "hello from the registry harness\n").unwrap();
    let umoci = tk::require_tool("umoci", "umoci");
    let image = format!("{}:v1", layout.display());
    tk::run_ok(Command::new(&umoci).args(["init", "--layout"]).arg(&layout));
    tk::run_ok(Command::new(&umoci).args(["new", "--image", &image]));
    tk::run_ok(
        Command::new(&umoci)
            .args(["insert", "--image", &image])
            .arg(&payload)
            .arg("/hello.txt"),
    );
    tk::run_ok(Command::new(&umoci).args(["gc", "--layout"]).arg(&layout));
    layout
}

fn skopeo() -> Command {
    let mut c = Command::new(tk::require_tool("skopeo", "skopeo"));
    c.arg("--insecure-policy");
    c
}

fn digest_of(args: &[String], transport_ref: &str) -> String {
    let out = tk::run_ok_stdout(skopeo().arg("inspect").args(args).arg(transport_ref));
    let v: Value = serde_json::from_str(&out).unwrap();
    v["Digest"].as_str().unwrap().to_string()
}

/// Push the layout to `REG/test/small:v1` (as `dest_ref` says) and pull it back; every digest
/// must match. Returns the manifest digest.
fn round_trip(ctx: &tk::TestContext, reg: &Registry, layout: &Path, dest_ref: &str) -> String {
    let src = format!("oci:{}:v1", layout.display());
    let want = digest_of(&[], &src);
    tk::run_ok(
        skopeo()
            .args(["copy", "--quiet"])
            .args(reg.skopeo_dest_args())
            .arg(&src)
            .arg(dest_ref),
    );
    let mut inspect_args = reg.skopeo_tls_args();
    inspect_args.extend(reg.skopeo_creds_args());
    assert_eq!(digest_of(&inspect_args, dest_ref), want);
    let back = ctx.path(format!("back-{}", want.replace(':', "-")));
    let back_ref = format!("oci:{}:v1", back.display());
    tk::run_ok(
        skopeo()
            .args(["copy", "--quiet"])
            .args(reg.skopeo_src_args())
            .arg(dest_ref)
            .arg(&back_ref),
    );
    assert_eq!(digest_of(&[], &back_ref), want);
    want
}

struct Curl {
    exit: i32,
    status: u16,
    headers: String,
    body: String,
    stderr: String,
}

impl Curl {
    fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// `curl -sS -i ARGS`, split into the final status, its headers and the body.
fn curl(args: &[&str]) -> Curl {
    let mut c = Command::new(tk::require_tool("curl", "curl"));
    c.args(["-sS", "-i", "--max-time", "60"]).args(args);
    let out = tk::run(&mut c);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut rest = text.as_str();
    let mut headers = String::new();
    // skip interim (1xx) header blocks
    while rest.starts_with("HTTP/") {
        let (h, b) = rest.split_once("\r\n\r\n").unwrap_or((rest, ""));
        headers = h.to_string();
        rest = b;
        if !h.split(' ').nth(1).is_some_and(|s| s.starts_with('1')) {
            break;
        }
    }
    let status = headers
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Curl {
        exit: tk::exit_code(out.status),
        status,
        headers,
        body: rest.to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn plain_registry_round_trip_and_delete() {
    let ctx = tk::TestContext::new();
    let layout = small_layout(&ctx);
    let reg = start_registry(&ctx, RegistryOptions::default());
    assert!(reg.url.starts_with("http://127.0.0.1:"), "{}", reg.url);
    assert_eq!(reg.skopeo_tls_args(), ["--tls-verify=false"]);
    assert!(reg.skopeo_creds_args().is_empty() && reg.creds.is_none());
    let digest = round_trip(&ctx, &reg, &layout, &reg.docker_ref("test/small:v1"));

    let r = curl(&[&format!("{}/v2/test/small/tags/list", reg.url)]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["tags"][0], "v1");
    let r = curl(&[
        "-X",
        "DELETE",
        &format!("{}/v2/test/small/manifests/{digest}", reg.url),
    ]);
    assert_eq!(r.status, 202, "{}\n{}", r.body, reg.log());
    assert!(
        reg.storage
            .join("docker/registry/v2/repositories/test/small")
            .is_dir()
    );
    assert!(reg.log().contains("/v2/test/small/tags/list"));
}

#[test]
fn tls_registry_needs_its_ca() {
    let ctx = tk::TestContext::new();
    let layout = small_layout(&ctx);
    let reg = start_registry(
        &ctx,
        RegistryOptions {
            tls: true,
            ..Default::default()
        },
    );
    assert!(reg.url.starts_with("https://127.0.0.1:"), "{}", reg.url);
    let cert_dir = reg.cert_dir.clone().unwrap();
    assert!(cert_dir.join("ca.crt").is_file());
    assert_eq!(cert_dir.file_name().unwrap().to_str().unwrap(), reg.host);
    assert_eq!(reg.certs_d.as_deref(), cert_dir.parent());
    round_trip(&ctx, &reg, &layout, &reg.docker_ref("test/small:v1"));

    // curl with the CA, by IP and by name
    let ca = reg.ca_cert.clone().unwrap();
    let ca = ca.to_str().unwrap();
    let r = curl(&["--cacert", ca, &format!("{}/v2/", reg.url)]);
    assert_eq!(r.status, 200, "{}", r.stderr);
    let by_name = reg.url.replace("127.0.0.1", "localhost");
    let r = curl(&["--cacert", ca, &format!("{by_name}/v2/")]);
    assert_eq!(r.status, 200, "{}", r.stderr);

    // without the CA: TLS errors
    let r = curl(&[&format!("{}/v2/", reg.url)]);
    assert_eq!(r.exit, 60, "curl should fail verification: {}", r.stderr);
    let err = tk::run_fail(skopeo().args(["inspect", &reg.docker_ref("test/small:v1")]));
    assert!(
        err.contains("x509") || err.contains("certificate"),
        "skopeo should fail on the unknown CA: {err}"
    );
}

#[test]
fn self_signed_registry_is_trusted_by_its_own_certificate() {
    let ctx = tk::TestContext::new();
    let layout = small_layout(&ctx);
    let reg = start_registry(
        &ctx,
        RegistryOptions {
            self_signed: true,
            ..Default::default()
        },
    );
    assert!(reg.url.starts_with("https://127.0.0.1:"), "{}", reg.url);
    let cert = reg.ca_cert.clone().unwrap();
    let text = tk::run_ok(
        Command::new(tk::require_tool("openssl", "openssl"))
            .args(["x509", "-noout", "-text", "-in"])
            .arg(&cert),
    );
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("CA:TRUE"), "{text}");
    assert!(text.contains("IP Address:127.0.0.1"), "{text}");
    assert_eq!(
        fs::read(reg.cert_dir.clone().unwrap().join("ca.crt")).unwrap(),
        fs::read(&cert).unwrap()
    );
    // skopeo (Go) trusts the certificate itself given as the CA
    round_trip(&ctx, &reg, &layout, &reg.docker_ref("test/small:v1"));
    let r = curl(&[
        "--cacert",
        cert.to_str().unwrap(),
        &format!("{}/v2/", reg.url),
    ]);
    assert_eq!(r.status, 200, "{}", r.stderr);
}

#[test]
fn htpasswd_registry_checks_bcrypt_credentials() {
    let ctx = tk::TestContext::new();
    let layout = small_layout(&ctx);
    let reg = start_registry(
        &ctx,
        RegistryOptions {
            htpasswd: Some(("alice".into(), "s3cret pass".into())),
            ..Default::default()
        },
    );
    assert_eq!(reg.skopeo_creds_args(), ["--creds", "alice:s3cret pass"]);
    round_trip(&ctx, &reg, &layout, &reg.docker_ref("test/small:v1"));

    let url = format!("{}/v2/test/small/tags/list", reg.url);
    assert_eq!(curl(&["-u", "alice:s3cret pass", &url]).status, 200);
    let r = curl(&["-u", "alice:wrong", &url]);
    assert_eq!(r.status, 401);
    assert_eq!(curl(&[&url]).status, 401);
    let mut c = skopeo();
    c.arg("inspect").args(reg.skopeo_tls_args()).args([
        "--creds",
        "alice:wrong",
        &reg.docker_ref("test/small:v1"),
    ]);
    let err = tk::run_fail(&mut c);
    assert!(
        err.to_lowercase().contains("unauthorized") || err.contains("401"),
        "{err}"
    );
}

#[test]
fn tls_with_htpasswd() {
    let ctx = tk::TestContext::new();
    let layout = small_layout(&ctx);
    let reg = start_registry(
        &ctx,
        RegistryOptions {
            tls: true,
            htpasswd: Some(("bob".into(), "pw".into())),
            ..Default::default()
        },
    );
    round_trip(&ctx, &reg, &layout, &reg.docker_ref("team/app:v1"));
    let ca = reg.ca_cert.clone().unwrap();
    let url = format!("{}/v2/team/app/tags/list", reg.url);
    let r = curl(&["--cacert", ca.to_str().unwrap(), "-u", "bob:nope", &url]);
    assert_eq!(r.status, 401, "{}", r.stderr);
}

fn token_registry(ctx: &tk::TestContext, anonymous_pull: bool) -> Registry {
    start_registry(
        ctx,
        RegistryOptions {
            token_auth: true,
            htpasswd: Some(("tokuser".into(), "tokpass".into())),
            anonymous_pull,
            ..Default::default()
        },
    )
}

/// GET the realm with curl; returns the token (or panics with the answer).
fn get_token(reg: &Registry, user: Option<&str>, scopes: &[&str]) -> Curl {
    let ts = reg.token_server.as_ref().unwrap();
    let mut url = format!("{}?service={}", ts.realm, ts.service);
    for s in scopes {
        url.push_str(&format!("&scope={s}"));
    }
    let mut args: Vec<&str> = Vec::new();
    if let Some(u) = user {
        args.extend(["-u", u]);
    }
    args.push(&url);
    curl(&args)
}

/// `curl -sS -o FILE URL` (no headers in the file): (exit code, status).
fn curl_to_file(file: &Path, url: &str) -> (i32, u16, String) {
    let mut c = Command::new(tk::require_tool("curl", "curl"));
    c.args(["-sS", "--max-time", "60", "-w", "%{http_code}", "-o"])
        .arg(file)
        .arg(url);
    let out = tk::run(&mut c);
    let status = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    (
        tk::exit_code(out.status),
        status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}")
}

#[test]
fn token_registry_with_skopeo() {
    let ctx = tk::TestContext::new();
    let layout = small_layout(&ctx);
    let reg = token_registry(&ctx, false);
    assert_eq!(reg.skopeo_creds_args(), ["--creds", "tokuser:tokpass"]);
    round_trip(&ctx, &reg, &layout, &reg.docker_ref("test/small:v1"));
    let ts = reg.token_server.as_ref().unwrap();
    let reqs = ts.requests();
    assert!(
        reqs.iter().any(|r| r.status == 200
            && r.subject.as_deref() == Some("tokuser")
            && r.scopes
                .iter()
                .any(|s| s.contains("test/small") && s.contains("push"))),
        "{reqs:?}"
    );

    let mut c = skopeo();
    c.args(["inspect", "--tls-verify=false", "--creds", "tokuser:bad"])
        .arg(reg.docker_ref("test/small:v1"));
    let err = tk::run_fail(&mut c);
    assert!(
        err.to_lowercase().contains("unauthorized") || err.contains("401"),
        "{err}"
    );
    // no anonymous access configured
    let err = tk::run_fail(
        skopeo()
            .args(["inspect", "--tls-verify=false"])
            .arg(reg.docker_ref("test/small:v1")),
    );
    assert!(
        err.to_lowercase().contains("unauthorized") || err.contains("401"),
        "{err}"
    );
}

#[test]
fn token_flow_by_hand_is_verified_by_the_registry() {
    let ctx = tk::TestContext::new();
    let layout = small_layout(&ctx);
    let reg = token_registry(&ctx, false);
    round_trip(&ctx, &reg, &layout, &reg.docker_ref("test/small:v1"));
    let ts = reg.token_server.as_ref().unwrap();
    let tags = format!("{}/v2/test/small/tags/list", reg.url);

    // the challenge names our realm and service
    let r = curl(&[&tags]);
    assert_eq!(r.status, 401);
    let challenge = r.header("www-authenticate").unwrap();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(
        challenge.contains(&format!("realm=\"{}\"", ts.realm)),
        "{challenge}"
    );
    assert!(
        challenge.contains(&format!("service=\"{}\"", ts.service)),
        "{challenge}"
    );
    assert!(
        challenge.contains("scope=\"repository:test/small:pull\""),
        "{challenge}"
    );

    // GET realm with Basic credentials
    let r = get_token(
        &reg,
        Some("tokuser:tokpass"),
        &["repository:test/small:pull"],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let token = r.json()["token"].as_str().unwrap().to_string();
    assert_eq!(r.json()["access_token"], r.json()["token"]);
    let r = curl(&["-H", &bearer(&token), &tags]);
    assert_eq!(r.status, 200, "{}\n{}", r.body, reg.log());
    assert_eq!(r.json()["tags"][0], "v1");
    // a pull token does not allow a push
    let uploads = format!("{}/v2/test/small/blobs/uploads/", reg.url);
    let r = curl(&["-X", "POST", "-H", &bearer(&token), &uploads]);
    assert_eq!(r.status, 401, "{}", r.body);
    // a pull,push token does
    let r = get_token(
        &reg,
        Some("tokuser:tokpass"),
        &["repository:test/small:pull,push"],
    );
    let push_token = r.json()["token"].as_str().unwrap().to_string();
    let r = curl(&["-X", "POST", "-H", &bearer(&push_token), &uploads]);
    assert_eq!(r.status, 202, "{}\n{}", r.body, reg.log());
    // a token for another repository does not open this one
    let other = ts.token(Some("tokuser"), &["repository:other/repo:pull"]);
    assert_eq!(curl(&["-H", &bearer(&other), &tags]).status, 401);

    // wrong password / anonymous: refused by the token server
    let r = get_token(&reg, Some("tokuser:nope"), &["repository:test/small:pull"]);
    assert_eq!(r.status, 401, "{}", r.body);
    let r = get_token(&reg, None, &["repository:test/small:pull"]);
    assert_eq!(r.status, 401, "{}", r.body);

    // the registry rejects the same claims signed by a key it does not trust
    let rogue = SigningKey::generate(&ctx.path("rogue"), "rogue-signer");
    let forged = rogue.sign_jwt(&ts.claims(Some("tokuser"), &["repository:test/small:pull"]));
    let r = curl(&["-H", &bearer(&forged), &tags]);
    assert_eq!(r.status, 401, "{}", r.body);
    // while the server's own key, minting the same claims, is accepted
    let good = ts.token(Some("tokuser"), &["repository:test/small:pull"]);
    assert_eq!(curl(&["-H", &bearer(&good), &tags]).status, 200);

    // OAuth2 POST: password grant with a refresh token, then a refresh grant
    let r = curl(&[
        "-X",
        "POST",
        "--data-urlencode",
        "grant_type=password",
        "--data-urlencode",
        "username=tokuser",
        "--data-urlencode",
        "password=tokpass",
        "--data-urlencode",
        &format!("service={}", ts.service),
        "--data-urlencode",
        "scope=repository:test/small:pull",
        "--data-urlencode",
        "client_id=ocibuild-test",
        "--data-urlencode",
        "access_type=offline",
        &ts.realm,
    ]);
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    let access = v["access_token"].as_str().unwrap();
    let refresh = v["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(curl(&["-H", &bearer(access), &tags]).status, 200);
    let r = curl(&[
        "-X",
        "POST",
        "--data-urlencode",
        "grant_type=refresh_token",
        "--data-urlencode",
        &format!("refresh_token={refresh}"),
        "--data-urlencode",
        &format!("service={}", ts.service),
        "--data-urlencode",
        "scope=repository:test/small:pull",
        &ts.realm,
    ]);
    assert_eq!(r.status, 200, "{}", r.body);
    let access = r.json()["access_token"].as_str().unwrap().to_string();
    assert_eq!(curl(&["-H", &bearer(&access), &tags]).status, 200);
    // without access_type=offline: no refresh token; unknown refresh tokens are refused
    let r = curl(&[
        "-X",
        "POST",
        "-d",
        &format!(
            "grant_type=password&username=tokuser&password=tokpass&service={}&scope=repository%3Atest%2Fsmall%3Apull",
            ts.service
        ),
        &ts.realm,
    ]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json().get("refresh_token").is_none(), "{}", r.body);
    let r = curl(&[
        "-X",
        "POST",
        "-d",
        &format!(
            "grant_type=refresh_token&refresh_token=bogus&service={}",
            ts.service
        ),
        &ts.realm,
    ]);
    assert_eq!(r.status, 401, "{}", r.body);
    // a wrong service is a client bug: 400
    let r = curl(&[&format!(
        "{}?service=elsewhere&scope=repository:x:pull",
        ts.realm
    )]);
    assert_eq!(r.status, 400, "{}", r.body);
}

#[test]
fn token_registry_with_anonymous_pull() {
    let ctx = tk::TestContext::new();
    let layout = small_layout(&ctx);
    let reg = token_registry(&ctx, true);
    round_trip(&ctx, &reg, &layout, &reg.docker_ref("test/small:v1"));
    // skopeo without creds can pull
    let back = ctx.path("anon-back");
    tk::run_ok(
        skopeo()
            .args(["copy", "--quiet", "--src-tls-verify=false"])
            .arg(reg.docker_ref("test/small:v1"))
            .arg(format!("oci:{}:v1", back.display())),
    );
    // an anonymous pull,push request only gets pull
    let r = get_token(&reg, None, &["repository:test/small:pull,push"]);
    assert_eq!(r.status, 200, "{}", r.body);
    let token = r.json()["token"].as_str().unwrap().to_string();
    let tags = format!("{}/v2/test/small/tags/list", reg.url);
    assert_eq!(curl(&["-H", &bearer(&token), &tags]).status, 200);
    let uploads = format!("{}/v2/test/small/blobs/uploads/", reg.url);
    let r = curl(&["-X", "POST", "-H", &bearer(&token), &uploads]);
    assert_eq!(r.status, 401, "{}", r.body);
    // and anonymous skopeo pushes fail
    let mut c = skopeo();
    c.args(["copy", "--quiet", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:v1", layout.display()))
        .arg(reg.docker_ref("test/other:v1"));
    tk::run_fail(&mut c);
}

#[test]
fn proxy_forwards_without_faults() {
    let ctx = tk::TestContext::new();
    let layout = small_layout(&ctx);
    let reg = start_registry(&ctx, RegistryOptions::default());
    let proxy = start_fault_proxy(&reg.host, FaultPlan::default());
    assert_eq!(proxy.target(), reg.host);
    let via = format!("docker://{}/test/small:v1", proxy.host);
    let digest = round_trip(&ctx, &reg, &layout, &via);
    // it really went through the proxy, and is in the registry
    let f = proxy.faults();
    assert!(f.requests >= 6 && f.forwarded == f.requests, "{f:?}");
    assert_eq!((f.resets, f.statuses, f.truncations), (0, 0, 0));
    assert_eq!(
        digest_of(&reg.skopeo_tls_args(), &reg.docker_ref("test/small:v1")),
        digest
    );
    // upload Locations point at the proxy
    let r = curl(&[
        "-X",
        "POST",
        &format!("{}/v2/test/small/blobs/uploads/", proxy.url),
    ]);
    assert_eq!(r.status, 202);
    let loc = r.header("location").unwrap();
    assert!(
        loc.starts_with(&format!("{}/v2/", proxy.url)) || loc.starts_with("/v2/"),
        "{loc}"
    );
    assert!(!loc.contains(&reg.host), "{loc}");
    assert!(
        r.header("connection")
            .unwrap()
            .eq_ignore_ascii_case("close")
    );
}

#[test]
fn proxy_injects_statuses_and_resets() {
    let ctx = tk::TestContext::new();
    let reg = start_registry(&ctx, RegistryOptions::default());
    let proxy = start_fault_proxy(
        &reg.host,
        FaultPlan {
            status_every: Some((3, 500, None)),
            ..Default::default()
        },
    );
    let v2 = format!("{}/v2/", proxy.url);
    let codes: Vec<u16> = (0..6).map(|_| curl(&[&v2]).status).collect();
    assert_eq!(codes, [200, 200, 500, 200, 200, 500], "{:?}", proxy.log());
    assert_eq!(proxy.faults().statuses, 2);
    assert_eq!(proxy.faults().forwarded, 4);

    proxy.set_plan(FaultPlan {
        status_every: Some((2, 429, Some(7))),
        ..Default::default()
    });
    assert_eq!(curl(&[&v2]).status, 200);
    let r = curl(&[&v2]);
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after").as_deref(), Some("7"));
    assert_eq!(r.json()["errors"][0]["code"], "TOOMANYREQUESTS");

    proxy.set_plan(FaultPlan {
        reset_every: Some(2),
        status_every: Some((4, 503, None)),
        ..Default::default()
    });
    let r1 = curl(&[&v2]);
    let r2 = curl(&[&v2]);
    assert_eq!(r1.status, 200);
    assert_ne!(
        r2.exit, 0,
        "the 2nd request should be reset: {}",
        r2.headers
    );
    assert_eq!(r2.status, 0);
    assert_eq!(curl(&[&v2]).status, 200);
    // request 4 matches both rules: reset wins
    assert_ne!(curl(&[&v2]).exit, 0);
    let f = proxy.faults();
    assert_eq!((f.requests, f.resets, f.statuses), (4, 2, 0), "{f:?}");
}

#[test]
fn proxy_truncates_blobs() {
    let ctx = tk::TestContext::new();
    let layout = small_layout(&ctx);
    let reg = start_registry(&ctx, RegistryOptions::default());
    round_trip(&ctx, &reg, &layout, &reg.docker_ref("test/small:v1"));
    let r = curl(&[
        "-H",
        "Accept: application/vnd.oci.image.manifest.v1+json",
        &format!("{}/v2/test/small/manifests/v1", reg.url),
    ]);
    assert_eq!(r.status, 200, "{}", r.body);
    let layer = r.json()["layers"][0].clone();
    let (digest, size) = (
        layer["digest"].as_str().unwrap().to_string(),
        layer["size"].as_u64().unwrap(),
    );

    let proxy = start_fault_proxy(
        &reg.host,
        FaultPlan {
            truncate_blob_every: Some(2),
            ..Default::default()
        },
    );
    let blob_url = format!("{}/v2/test/small/blobs/{digest}", proxy.url);
    let out = ctx.path("blob");
    // a manifest GET and a HEAD do not count as blob GETs
    let r = curl(&[
        "-H",
        "Accept: application/vnd.oci.image.manifest.v1+json",
        &format!("{}/v2/test/small/manifests/v1", proxy.url),
    ]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(curl(&["-I", &blob_url]).status, 200);
    // blob GET #1: whole
    let (exit, status, err) = curl_to_file(&out, &blob_url);
    assert_eq!((exit, status), (0, 200), "{err}");
    assert_eq!(fs::metadata(&out).unwrap().len(), size);
    // blob GET #2: cut in half
    let (exit, status, err) = curl_to_file(&out, &blob_url);
    assert_eq!(status, 200);
    assert_eq!(exit, 18, "curl should see a partial body: {err}");
    assert_eq!(fs::metadata(&out).unwrap().len(), size / 2);
    let f = proxy.faults();
    assert_eq!((f.blob_gets, f.truncations), (2, 1), "{f:?}");

    // skopeo pulling through a proxy that truncates every blob fails on the digest or length
    proxy.set_plan(FaultPlan {
        truncate_blob_every: Some(1),
        ..Default::default()
    });
    let mut c = skopeo();
    c.args([
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        "--retry-times",
        "0",
    ])
    .arg(format!("docker://{}/test/small:v1", proxy.host))
    .arg(format!("oci:{}:v1", ctx.path("never").display()));
    let err = tk::run_fail(&mut c);
    assert!(proxy.faults().truncations >= 1, "{:?}", proxy.log());
    assert!(
        err.contains("EOF") || err.contains("digest") || err.contains("size"),
        "{err}"
    );
}

fn sha256_file(p: &Path) -> String {
    let out = tk::run_ok_stdout(Command::new("sha256sum").arg(p));
    format!("sha256:{}", out.split_whitespace().next().unwrap())
}

#[test]
fn proxy_streams_large_bodies_both_ways() {
    let ctx = tk::TestContext::new();
    let reg = start_registry(&ctx, RegistryOptions::default());
    let proxy = start_fault_proxy(&reg.host, FaultPlan::default());

    // 48 MiB of non-repeating bytes
    let big = ctx.path("big.bin");
    {
        let mut f = std::io::BufWriter::new(fs::File::create(&big).unwrap());
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut buf = vec![0u8; 1 << 20];
        for _ in 0..48 {
            for chunk in buf.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                chunk.copy_from_slice(&x.to_le_bytes());
            }
            f.write_all(&buf).unwrap();
        }
        f.flush().unwrap();
    }
    let digest = sha256_file(&big);
    let big_s = big.to_str().unwrap();
    let with_digest = |loc: &str| {
        let sep = if loc.contains('?') { '&' } else { '?' };
        format!("{loc}{sep}digest={digest}")
    };
    let absolute = |loc: String| {
        if loc.starts_with('/') {
            format!("{}{loc}", proxy.url)
        } else {
            loc
        }
    };

    // Content-Length: PATCH the whole blob, then PUT to close the upload
    let r = curl(&[
        "-X",
        "POST",
        &format!("{}/v2/big/a/blobs/uploads/", proxy.url),
    ]);
    assert_eq!(r.status, 202, "{}", r.body);
    let loc = absolute(r.header("location").unwrap());
    let r = curl(&[
        "-X",
        "PATCH",
        "-H",
        "Content-Type: application/octet-stream",
        "-T",
        big_s,
        &loc,
    ]);
    assert_eq!(r.status, 202, "{} {:?}", r.body, proxy.log());
    let loc = absolute(r.header("location").unwrap());
    let r = curl(&["-X", "PUT", &with_digest(&loc)]);
    assert_eq!(r.status, 201, "{} {:?}", r.body, proxy.log());

    // chunked: a monolithic PUT with Transfer-Encoding: chunked (and Expect: 100-continue)
    let r = curl(&[
        "-X",
        "POST",
        &format!("{}/v2/big/b/blobs/uploads/", proxy.url),
    ]);
    let loc = absolute(r.header("location").unwrap());
    let r = curl(&[
        "-X",
        "PUT",
        "-H",
        "Transfer-Encoding: chunked",
        "-H",
        "Content-Type: application/octet-stream",
        "-T",
        big_s,
        &with_digest(&loc),
    ]);
    assert_eq!(r.status, 201, "{} {:?}\n{}", r.body, proxy.log(), reg.log());

    // download both through the proxy
    for repo in ["big/a", "big/b"] {
        let out = ctx.path(format!("down-{}", repo.replace('/', "-")));
        let url = format!("{}/v2/{repo}/blobs/{digest}", proxy.url);
        let (exit, status, err) = curl_to_file(&out, &url);
        assert_eq!((exit, status), (0, 200), "{err}");
        assert_eq!(sha256_file(&out), digest);
    }
    let f = proxy.faults();
    assert_eq!(f.forwarded, f.requests, "{f:?}");
}

#[test]
fn tls_with_token_auth() {
    let ctx = tk::TestContext::new();
    let layout = small_layout(&ctx);
    let reg = start_registry(
        &ctx,
        RegistryOptions {
            tls: true,
            token_auth: true,
            ..Default::default()
        },
    );
    let (user, pass) = tk::registry::DEFAULT_TOKEN_USER;
    assert_eq!(reg.creds, Some((user.to_string(), pass.to_string())));
    round_trip(&ctx, &reg, &layout, &reg.docker_ref("secure/app:v1"));
    let ts = reg.token_server.as_ref().unwrap();
    let token = ts.token(Some(user), &["repository:secure/app:pull"]);
    let mut args = reg.curl_tls_args();
    args.extend([
        "-H".to_string(),
        bearer(&token),
        format!("{}/v2/secure/app/tags/list", reg.url),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = curl(&args);
    assert_eq!(r.status, 200, "{} {}", r.body, r.stderr);
}
