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

/// A CA (self-signed, P-256) named `name`: (key, certificate).
pub fn openssl_ca(dir: &Path, name: &str, subject: &str) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{name}.key"));
    let crt = dir.join(format!("{name}.crt"));
    tk::run_ok(openssl().args([
        "req",
        "-x509",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-sha256",
        "-days",
        "30",
        "-keyout",
        s(&key),
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

/// A code-signing leaf issued by the CA: (key, certificate, public key).
pub fn openssl_leaf(
    dir: &Path,
    name: &str,
    subject: &str,
    ca: &(PathBuf, PathBuf),
) -> (PathBuf, PathBuf, PathBuf) {
    let key = dir.join(format!("{name}.key"));
    let csr = dir.join(format!("{name}.csr"));
    let crt = dir.join(format!("{name}.crt"));
    let public = dir.join(format!("{name}.pub"));
    let ext = dir.join(format!("{name}.ext"));
    tk::run_ok(openssl().args([
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        s(&key),
    ]));
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
        "-sha256",
        "-extfile",
        s(&ext),
        "-out",
        s(&crt),
    ]));
    (key, crt, public)
}
