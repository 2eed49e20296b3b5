//! Helpers shared by the signing tests: openssl as the independent checker, and a small PKI
//! (a CA and a code-signing leaf) made with it.
#![allow(dead_code)] // each test binary uses a part
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use ocibuild_testkit as tk;

pub fn openssl() -> Command {
    Command::new(tk::require_tool("openssl", "openssl"))
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `openssl dgst -sha256 -verify PUB -signature SIG DATA` succeeds.
pub fn openssl_verifies(public: &Path, sig_der: &[u8], data: &[u8], dir: &Path) -> bool {
    let (sp, dp) = (dir.join("check.sig"), dir.join("check.data"));
    fs::write(&sp, sig_der).unwrap();
    fs::write(&dp, data).unwrap();
    let o = tk::run(openssl().args([
        "dgst",
        "-sha256",
        "-verify",
        s(public),
        "-signature",
        s(&sp),
        s(&dp),
    ]));
    o.status.success() && String::from_utf8_lossy(&o.stdout).contains("Verified OK")
}

/// `openssl genpkey` options of a key type: `P-256`, `P-384`, `RSA-2048`, …
pub fn key_options(kind: &str) -> Vec<String> {
    match kind.strip_prefix("RSA-") {
        Some(bits) => vec![
            "-algorithm".into(),
            "RSA".into(),
            "-pkeyopt".into(),
            format!("rsa_keygen_bits:{bits}"),
        ],
        None => vec![
            "-algorithm".into(),
            "EC".into(),
            "-pkeyopt".into(),
            format!("ec_paramgen_curve:{kind}"),
        ],
    }
}

/// `openssl dgst` checks `sig` over `data` with `public` (ECDSA: DER) for a hash (`-sha384`)
/// and extra `-sigopt`s (RSASSA-PSS: `rsa_padding_mode:pss`, `rsa_pss_saltlen:32`).
pub fn openssl_verifies_with(
    public: &Path,
    sig: &[u8],
    data: &[u8],
    dir: &Path,
    hash: &str,
    sigopts: &[&str],
) -> bool {
    let (sp, dp) = (dir.join("check.sig"), dir.join("check.data"));
    fs::write(&sp, sig).unwrap();
    fs::write(&dp, data).unwrap();
    let mut c = openssl();
    c.args(["dgst", hash]);
    for o in sigopts {
        c.args(["-sigopt", o]);
    }
    c.args(["-verify", s(public), "-signature", s(&sp), s(&dp)]);
    let o = tk::run(&mut c);
    o.status.success() && String::from_utf8_lossy(&o.stdout).contains("Verified OK")
}

/// A CA (self-signed, P-256) named `name`: (key, certificate).
pub fn openssl_ca(dir: &Path, name: &str, subject: &str) -> (PathBuf, PathBuf) {
    openssl_ca_with(dir, name, subject, "P-256", "-sha256")
}

/// A CA (self-signed) with a key of `kind` (see [`key_options`]) signing with `hash`.
pub fn openssl_ca_with(
    dir: &Path,
    name: &str,
    subject: &str,
    kind: &str,
    hash: &str,
) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{name}.key"));
    let crt = dir.join(format!("{name}.crt"));
    tk::run_ok(
        openssl()
            .arg("genpkey")
            .args(key_options(kind))
            .args(["-out", s(&key)]),
    );
    tk::run_ok(openssl().args([
        "req",
        "-x509",
        "-new",
        "-key",
        s(&key),
        "-nodes",
        hash,
        "-days",
        "30",
        "-out",
        s(&crt),
        "-subj",
        subject,
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]));
    (key, crt)
}

/// A code-signing leaf (P-256) issued by the CA: (key, certificate, public key).
pub fn openssl_leaf(
    dir: &Path,
    name: &str,
    subject: &str,
    ca: &(PathBuf, PathBuf),
) -> (PathBuf, PathBuf, PathBuf) {
    openssl_leaf_with(dir, name, subject, ca, "P-256", "-sha256")
}

/// A code-signing leaf with a key of `kind` (see [`key_options`]), issued by the CA with `hash`.
pub fn openssl_leaf_with(
    dir: &Path,
    name: &str,
    subject: &str,
    ca: &(PathBuf, PathBuf),
    kind: &str,
    hash: &str,
) -> (PathBuf, PathBuf, PathBuf) {
    let key = dir.join(format!("{name}.key"));
    let csr = dir.join(format!("{name}.csr"));
    let crt = dir.join(format!("{name}.crt"));
    let public = dir.join(format!("{name}.pub"));
    let ext = dir.join(format!("{name}.ext"));
    tk::run_ok(
        openssl()
            .arg("genpkey")
            .args(key_options(kind))
            .args(["-out", s(&key)]),
    );
    tk::run_ok(openssl().args(["pkey", "-in", s(&key), "-pubout", "-out", s(&public)]));
    tk::run_ok(openssl().args([
        "req",
        "-new",
        "-key",
        s(&key),
        "-subj",
        subject,
        "-out",
        s(&csr),
    ]));
    fs::write(
        &ext,
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\n",
    )
    .unwrap();
    tk::run_ok(openssl().args([
        "x509",
        "-req",
        "-in",
        s(&csr),
        "-CA",
        s(&ca.1),
        "-CAkey",
        s(&ca.0),
        "-CAcreateserial",
        "-days",
        "7",
        hash,
        "-extfile",
        s(&ext),
        "-out",
        s(&crt),
    ]));
    (key, crt, public)
}
