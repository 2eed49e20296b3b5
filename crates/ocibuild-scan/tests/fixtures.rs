//! The OSV fixtures in testdata/osv against the SBOM in testdata/scan: every ecosystem's version
//! rules, source-package mapping, goarch limits, withdrawn records, several ranges, versions
//! lists, `last_affected`, records without a fix; and a database imported from a zip archive.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ocibuild_scan::{Action, Database, Options, Severity, from_cyclonedx};

fn testdata(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata")
        .join(p)
}

fn sbom(name: &str) -> Vec<ocibuild_scan::Package> {
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(testdata(&format!("scan/{name}"))).unwrap()).unwrap();
    from_cyclonedx(&doc).unwrap()
}

fn import(tmp: &Path) -> Database {
    let dest = tmp.join("db");
    let info = ocibuild_scan::db::import(&testdata("osv"), &dest).unwrap();
    assert_eq!(info.records, 12, "{info:?}");
    assert_eq!(info.withdrawn, 1);
    Database::open(&dest).unwrap()
}

#[test]
fn every_fixture_matches_as_its_ecosystem_says() {
    let tmp = tempfile::tempdir().unwrap();
    let db = import(tmp.path());
    let info = db.info();
    assert_eq!(info.ecosystems["Debian"], 3);
    assert_eq!(info.ecosystems["Go"], 3);
    assert_eq!(info.ecosystems["npm"], 3);
    assert_eq!(info.ecosystems["PyPI"], 2);
    assert_eq!(info.ecosystems["Maven"], 1);
    assert_eq!(
        info.newest_modified.as_deref(),
        Some("2026-11-30T12:00:00Z")
    );

    let pkgs = sbom("app.cdx.json");
    assert_eq!(
        pkgs.len(),
        18,
        "the file component is skipped, nested ones read"
    );
    let report = ocibuild_scan::scan(&pkgs, &db, &Options::default()).unwrap();
    let got: BTreeSet<(String, String, String, Option<String>, Severity)> = report
        .findings
        .iter()
        .map(|f| {
            (
                f.id.clone(),
                f.package.clone(),
                f.installed.clone(),
                f.fixed.clone(),
                f.severity,
            )
        })
        .collect();
    let s = |x: &str| x.to_string();
    let want: BTreeSet<_> = [
        // source package openssl, tilde ordering, Debian:12 (not :13's fix)
        (
            s("DSA-9001-1"),
            s("libssl3"),
            s("3.0.11-1~deb12u2"),
            Some(s("3.0.13-1~deb12u1")),
            Severity::Critical,
        ),
        // epoch; no severity → UNKNOWN
        (
            s("DSA-9002-1"),
            s("login"),
            s("1:4.13+dfsg1-1"),
            Some(s("1:4.13+dfsg1-1+deb12u1")),
            Severity::Unknown,
        ),
        // no fix; CVSS v4 8.5; the withdrawn DSA-9004-1 is not reported
        (
            s("DEBIAN-CVE-2099-0003"),
            s("zlib1g"),
            s("1:1.2.13.dfsg-1"),
            None,
            Severity::High,
        ),
        // stdlib by toolchain version; the ppc64le binary's 1.22.1 is fixed
        (
            s("GO-2099-0101"),
            s("stdlib"),
            s("1.21.3"),
            Some(s("1.21.5")),
            Severity::Unknown,
        ),
        // two ranges: the second one's fix
        (
            s("GO-2099-0103"),
            s("golang.org/x/net"),
            s("v0.10.0"),
            Some(s("v0.17.0")),
            Severity::Unknown,
        ),
        // only the ppc64le binary's x/sys: the amd64 one is not affected
        (
            s("GO-2099-0102"),
            s("golang.org/x/sys"),
            s("v0.10.0"),
            Some(s("v0.15.0")),
            Severity::Unknown,
        ),
        (
            s("GHSA-9101-npm1-scop"),
            s("@acme/parser"),
            s("2.1.3"),
            Some(s("2.1.4")),
            Severity::High,
        ),
        // a prerelease-introduced second range
        (
            s("GHSA-9101-npm1-scop"),
            s("@acme/parser"),
            s("3.0.0"),
            Some(s("3.0.1")),
            Severity::High,
        ),
        // last_affected: no fix
        (
            s("GHSA-9102-npm2-last"),
            s("express-session-lite"),
            s("1.4.2"),
            None,
            Severity::Low,
        ),
        // versions list
        (
            s("MAL-2099-0203"),
            s("tiny-colors"),
            s("1.4.1"),
            None,
            Severity::Critical,
        ),
        // PEP 440 pre-releases: 4.2a1 <= 4.2rc1 < 4.2.8; the record names "Django"
        (
            s("PYSEC-2099-301"),
            s("django"),
            s("4.2rc1"),
            Some(s("4.2.8")),
            Severity::Medium,
        ),
        (
            s("PYSEC-2099-302"),
            s("flask-uploads-ng"),
            s("2.0.0rc1"),
            Some(s("2.0.0rc2")),
            Severity::Unknown,
        ),
        // Maven ordering: 2.0-beta9 <= 2.14.1 < 2.15.0
        (
            s("GHSA-9401-mvn1-log4"),
            s("org.apache.logging.log4j:log4j-core"),
            s("2.14.1"),
            Some(s("2.15.0")),
            Severity::Critical,
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, want);

    let ppc = report
        .findings
        .iter()
        .find(|f| f.id == "GO-2099-0102")
        .unwrap();
    assert_eq!(ppc.path.as_deref(), Some("/app/tool"));
    let ssl = report
        .findings
        .iter()
        .find(|f| f.id == "DSA-9001-1")
        .unwrap();
    assert_eq!(ssl.action, Action::RebuildRefresh);
    assert_eq!(ssl.source_package.as_deref(), Some("openssl"));
    assert_eq!(ssl.score, Some(9.8));
    assert!(ssl.layer.as_deref().unwrap().starts_with("sha256:1111"));
    let log4j = report
        .findings
        .iter()
        .find(|f| f.id == "GHSA-9401-mvn1-log4")
        .unwrap();
    assert_eq!(log4j.action, Action::BumpLockfile);
    assert_eq!(log4j.score, Some(10.0));
    let zlib = report
        .findings
        .iter()
        .find(|f| f.package == "zlib1g")
        .unwrap();
    assert_eq!(zlib.action, Action::NoFix);

    // the fixed versions of everything: nothing
    let clean = ocibuild_scan::scan(&sbom("clean.cdx.json"), &db, &Options::default()).unwrap();
    assert!(clean.findings.is_empty(), "{:#?}", clean.findings);
}

#[test]
fn filters_threshold_unfixed_and_unknown() {
    let tmp = tempfile::tempdir().unwrap();
    let db = import(tmp.path());
    let pkgs = sbom("app.cdx.json");
    let opts = Options {
        severities: Severity::High.at_or_above(),
        ..Options::default()
    };
    let r = ocibuild_scan::scan(&pkgs, &db, &opts).unwrap();
    assert!(r.findings.iter().all(|f| matches!(
        f.severity,
        Severity::High | Severity::Critical | Severity::Unknown
    )));
    assert_eq!(r.findings.len(), 11, "UNKNOWN counts at any threshold");
    let opts = Options {
        severities: Severity::High.at_or_above(),
        ignore_unknown: true,
        ignore_unfixed: true,
        ..Options::default()
    };
    let r = ocibuild_scan::scan(&pkgs, &db, &opts).unwrap();
    let ids: BTreeSet<&str> = r.findings.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(
        ids,
        ["DSA-9001-1", "GHSA-9101-npm1-scop", "GHSA-9401-mvn1-log4"]
            .into_iter()
            .collect()
    );
}

/// osv.dev's per-ecosystem all.zip, written by Python's zipfile (deflated) as the real one is.
#[test]
fn a_zip_archive_imports_like_the_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let zip = tmp.path().join("all.zip");
    let script = "import sys, zipfile, pathlib\n\
                  src = pathlib.Path(sys.argv[1])\n\
                  with zipfile.ZipFile(sys.argv[2], 'w', zipfile.ZIP_DEFLATED) as z:\n\
                  \x20   for p in sorted(src.rglob('*.json')):\n\
                  \x20       z.write(p, p.name)\n";
    let python = ocibuild_testkit::require_tool("python3", "python3");
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(testdata("osv"))
        .arg(&zip)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = tmp.path().join("store");
    let db = Database::open_or_import(&zip, &store).unwrap();
    assert_eq!(db.info().records, 12);
    assert!(db.dir().starts_with(&store));
    let r = ocibuild_scan::scan(&sbom("app.cdx.json"), &db, &Options::default()).unwrap();
    assert_eq!(r.findings.len(), 13);
    // imported once: the same content reuses the index
    let again = Database::open_or_import(&zip, &store).unwrap();
    assert_eq!(again.dir(), db.dir());
    let dbs = |store: &Path| -> usize {
        std::fs::read_dir(store)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("sha256-")
            })
            .count()
    };
    assert_eq!(dbs(&store), 1);
    // a changed archive (the same name, other content) is imported again, not taken for the old
    let out = std::process::Command::new(ocibuild_testkit::require_tool("python3", "python3"))
        .arg("-c")
        .arg(script)
        .arg(testdata("osv/pypi"))
        .arg(&zip)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let changed = Database::open_or_import(&zip, &store).unwrap();
    assert_ne!(changed.dir(), db.dir());
    assert_eq!(changed.info().records, 2);
    assert_eq!(dbs(&store), 2);
}

#[test]
fn a_damaged_database_is_an_error_that_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let db = import(tmp.path());
    let dir = db.dir().to_path_buf();
    drop(db);
    // truncate the records file
    let rec = dir.join("records.json");
    let len = std::fs::metadata(&rec).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&rec).unwrap();
    f.set_len(len / 2).unwrap();
    let e = Database::open(&dir).err().unwrap().to_string();
    assert!(e.contains("corrupt") && e.contains("db import"), "{e}");
    // garbage metadata
    std::fs::write(dir.join("ocibuild-vulndb.json"), b"{not json").unwrap();
    let e = Database::open(&dir).err().unwrap().to_string();
    assert!(e.contains("corrupt"), "{e}");
    // nothing there
    let e = Database::open(&tmp.path().join("none"))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("no vulnerability database"), "{e}");
}

/// A record changed inside `records.json` after the import (same length, still valid OSV JSON:
/// here its fixed version) is found when it is read, and the scan fails saying so, instead of
/// matching against the altered record.
#[test]
fn a_record_altered_in_place_is_an_error_that_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let db = import(tmp.path());
    let dir = db.dir().to_path_buf();
    let pkgs = sbom("app.cdx.json");
    assert!(
        !ocibuild_scan::scan(&pkgs, &db, &Options::default())
            .unwrap()
            .findings
            .is_empty()
    );
    drop(db);
    let rec = dir.join("records.json");
    let text = std::fs::read_to_string(&rec).unwrap();
    let (from, to) = ("3.0.13-1~deb12u1", "3.0.13-1~deb12u0");
    assert!(text.contains(from), "the fixture's fixed version is there");
    std::fs::write(&rec, text.replacen(from, to, 1)).unwrap();
    // the sizes still match: the database opens, the altered record is caught when read
    let db = Database::open(&dir).unwrap();
    let e = ocibuild_scan::scan(&pkgs, &db, &Options::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("altered after the import") && e.contains("db import"),
        "{e}"
    );
}
