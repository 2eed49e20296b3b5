//! `ocibuild scan` and `ocibuild db` as a CI job runs them: exit codes (0 clean, 3 findings,
//! 1 the scan failed, 2 usage), trivy's and snyk's spellings, the JSON report and SARIF,
//! allowlist expiry, OpenVEX, stale and corrupt databases, and a zip source imported once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use ocibuild_testkit as tk;
use serde_json::Value;

fn testdata(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata")
        .join(p)
}

fn ocibuild(ctx: &tk::TestContext) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ocibuild"));
    c.arg("--root")
        .arg(ctx.root_dir())
        .env_remove("OCIBUILD_LOG")
        .stdin(Stdio::null());
    c
}

fn scan(ctx: &tk::TestContext, sbom: &str, db: &Path, extra: &[&str]) -> Output {
    tk::run(
        ocibuild(ctx)
            .arg("scan")
            .arg("--sbom")
            .arg(testdata(&format!("scan/{sbom}")))
            .arg("--db")
            .arg(db)
            .args(extra),
    )
}

fn code(o: &Output) -> i32 {
    tk::exit_code(o.status)
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&o.stdout)))
}

/// The fixtures imported into ctx's store; returns the database directory.
fn imported(ctx: &tk::TestContext) -> PathBuf {
    let out = tk::run_ok(ocibuild(ctx).args(["db", "import"]).arg(testdata("osv")));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("imported 12 records (1 withdrawn left out)"),
        "{text}"
    );
    let dir = ctx.root_dir().join("vulndb");
    let latest = fs::read_to_string(dir.join("latest")).unwrap();
    dir.join(latest.trim())
}

#[test]
fn exit_codes_tell_findings_from_failures() {
    let ctx = tk::TestContext::new();
    let db = imported(&ctx);

    // 0: nothing affected
    let o = scan(&ctx, "clean.cdx.json", &db, &[]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("no vulnerabilities found"));

    // 3: findings (every severity by default; the last import is the default --db)
    let o = tk::run(
        ocibuild(&ctx)
            .arg("scan")
            .arg("--sbom")
            .arg(testdata("scan/app.cdx.json")),
    );
    assert_eq!(code(&o), 3, "{}", err(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("DSA-9001-1") && table.contains("libssl3 (openssl)"),
        "{table}"
    );
    assert!(table.contains("13 finding(s)"), "{table}");

    // trivy's --exit-code and snyk's --severity-threshold
    let o = scan(&ctx, "app.cdx.json", &db, &["--exit-code", "5"]);
    assert_eq!(code(&o), 5);
    let o = scan(
        &ctx,
        "app.cdx.json",
        &db,
        &[
            "--severity-threshold=critical",
            "--ignore-unknown",
            "--format",
            "json",
        ],
    );
    assert_eq!(code(&o), 3);
    let r = json(&o);
    let sev: Vec<&str> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["severity"].as_str().unwrap())
        .collect();
    assert_eq!(sev, ["CRITICAL", "CRITICAL", "CRITICAL"]);
    // --severity lists what counts; only LOW things and no UNKNOWN: exit 3 for the LOW one
    let o = scan(
        &ctx,
        "app.cdx.json",
        &db,
        &["--severity", "LOW", "--ignore-unknown", "--format", "json"],
    );
    assert_eq!(code(&o), 3);
    assert_eq!(json(&o)["findings"].as_array().unwrap().len(), 1);
    // the same with --ignore-unfixed: the LOW one has no fix, so nothing is left
    let o = scan(
        &ctx,
        "app.cdx.json",
        &db,
        &["--severity", "LOW", "--ignore-unknown", "--ignore-unfixed"],
    );
    assert_eq!(code(&o), 0, "{}", err(&o));

    // 1: the scan itself failed
    let o = scan(&ctx, "app.cdx.json", &ctx.path("no-such-db"), &[]);
    assert_eq!(code(&o), 1);
    assert!(err(&o).contains("no vulnerability database"), "{}", err(&o));
    let o = tk::run(
        ocibuild(&ctx)
            .args(["scan", "--db"])
            .arg(&db)
            .arg("--sbom")
            .arg(ctx.path("missing.cdx.json")),
    );
    assert_eq!(code(&o), 1);
    assert!(err(&o).contains("reading the SBOM"), "{}", err(&o));
    let o = tk::run(
        ocibuild(&ctx)
            .args(["scan", "oci:somewhere:v1", "--db"])
            .arg(&db),
    );
    // an image that cannot be read is a failed scan (1), never "clean" or "findings"
    assert_eq!(code(&o), 1);
    assert!(err(&o).contains("somewhere"), "{}", err(&o));

    // a corrupt database: 1, and it says to import again
    let broken = ctx.path("broken-db");
    tk::run_ok(
        ocibuild(&ctx)
            .args(["db", "import"])
            .arg(testdata("osv"))
            .arg("--db")
            .arg(&broken),
    );
    // a record altered in place (same length, valid JSON): 1, "altered after the import"
    let rec = broken.join("records.json");
    let records = fs::read_to_string(&rec).unwrap();
    fs::write(
        &rec,
        records.replacen("3.0.13-1~deb12u1", "3.0.13-1~deb12u0", 1),
    )
    .unwrap();
    let o = scan(&ctx, "app.cdx.json", &broken, &[]);
    assert_eq!(code(&o), 1, "{}", err(&o));
    assert!(err(&o).contains("altered after the import"), "{}", err(&o));
    fs::write(&rec, records).unwrap();
    let idx = broken.join("index.tsv");
    let text = fs::read_to_string(&idx).unwrap();
    fs::write(&idx, text.replace('\t', " ")).unwrap();
    let o = scan(&ctx, "app.cdx.json", &broken, &[]);
    assert_eq!(code(&o), 1, "{}", err(&o));
    assert!(
        err(&o).contains("corrupt") && err(&o).contains("db import"),
        "{}",
        err(&o)
    );
    fs::write(broken.join("index.tsv"), b"").unwrap();
    let o = scan(&ctx, "app.cdx.json", &broken, &[]);
    assert_eq!(code(&o), 1, "{}", err(&o));

    // 2: usage
    let o = scan(&ctx, "app.cdx.json", &db, &["--severity", "SEVERE"]);
    assert_eq!(code(&o), 2, "{}", err(&o));
}

#[test]
fn the_json_report_groups_by_action_and_sarif_is_2_1_0() {
    let ctx = tk::TestContext::new();
    let db = imported(&ctx);
    let out = ctx.path("report.json");
    let o = scan(
        &ctx,
        "app.cdx.json",
        &db,
        &["--format", "json", "--output", out.to_str().unwrap()],
    );
    assert_eq!(code(&o), 3);
    assert!(o.stdout.is_empty(), "--output leaves stdout empty");
    let r: Value = serde_json::from_slice(&fs::read(&out).unwrap()).unwrap();
    let f = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "DSA-9001-1")
        .unwrap();
    for k in [
        "id",
        "aliases",
        "ecosystem",
        "package",
        "installed",
        "fixed",
        "severity",
        "layer",
        "path",
        "action",
    ] {
        assert!(f.get(k).is_some(), "finding lacks {k}: {f}");
    }
    assert_eq!(f["aliases"][0], "CVE-2099-0001");
    assert_eq!(f["ecosystem"], "Debian");
    assert_eq!(f["fixed"], "3.0.13-1~deb12u1");
    assert_eq!(f["action"], "rebuild-refresh");
    assert_eq!(f["path"], "/var/lib/dpkg/status.d/libssl3");
    let groups: Vec<(&str, usize)> = r["remediation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["action"].as_str().unwrap(),
                g["findings"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(
        groups,
        [("rebuild-refresh", 2), ("bump-lockfile", 8), ("no-fix", 3)]
    );
    assert_eq!(r["db"]["records"], 12);
    assert!(r["suppressed"].as_array().unwrap().is_empty());

    let o = scan(&ctx, "app.cdx.json", &db, &["--format", "sarif"]);
    assert_eq!(code(&o), 3);
    let s = json(&o);
    assert_eq!(s["version"], "2.1.0");
    assert_eq!(s["runs"][0]["tool"]["driver"]["name"], "ocibuild");
    assert_eq!(s["runs"][0]["results"].as_array().unwrap().len(), 13);
    let rule = s["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "GHSA-9401-mvn1-log4")
        .unwrap();
    assert_eq!(rule["properties"]["security-severity"], "10.0");
    // an independent reading: sarif-pydantic's SARIF 2.1.0 object model (required properties,
    // types and enumerations such as `level`)
    let sarif = ctx.path("scan.sarif");
    fs::write(&sarif, &o.stdout).unwrap();
    let checked = tk::oracles::python_eval(
        &["sarif-pydantic==0.6.*"],
        "import json, sys\nfrom sarif_pydantic import Sarif\n\
         s = Sarif.model_validate(json.load(open(sys.argv[1])))\n\
         print(s.version, len(s.runs[0].results))\n",
        &[sarif.to_str().unwrap()],
    );
    assert!(checked.contains("13"), "{checked}");
}

#[test]
fn allowlist_entries_expire_and_vex_needs_a_justification() {
    let ctx = tk::TestContext::new();
    let db = imported(&ctx);
    let allow = ctx.path("allow.toml");
    fs::write(
        &allow,
        r#"
[[ignore]]
id = "CVE-2099-0001"          # an alias of DSA-9001-1
reason = "the X.509 name constraints code is not reachable from the app"
expires = "2999-12-31"

[[ignore]]
id = "GHSA-9401-mvn1-log4"
reason = "lookups disabled by configuration"
expires = "2020-01-31"
"#,
    )
    .unwrap();
    let vex = ctx.path("app.openvex.json");
    fs::write(
        &vex,
        serde_json::json!({
            "@context": "https://openvex.dev/ns/v0.2.0",
            "@id": "https://example.com/vex/app-1",
            "author": "app team",
            "timestamp": "2026-11-30T00:00:00Z",
            "version": 1,
            "statements": [
                {"vulnerability": {"name": "CVE-2099-0003"},
                 "products": [{"@id": "pkg:deb/debian/zlib1g"}],
                 "status": "not_affected",
                 "justification": "vulnerable_code_not_in_execute_path"},
                {"vulnerability": {"name": "MAL-2099-0203"},
                 "products": [{"@id": "pkg:npm/tiny-colors@1.4.1"}],
                 "status": "not_affected"},
                {"vulnerability": {"name": "CVE-2099-0301"},
                 "products": [{"@id": "pkg:pypi/django@4.2rc1"}],
                 "status": "affected"}
            ]
        })
        .to_string(),
    )
    .unwrap();
    let o = scan(
        &ctx,
        "app.cdx.json",
        &db,
        &[
            "--format",
            "json",
            "--allowlist",
            allow.to_str().unwrap(),
            "--vex",
            vex.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&o), 3, "{}", err(&o));
    let r = json(&o);
    let ids = |k: &str| -> Vec<String> {
        let mut v: Vec<String> = r[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["id"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(ids("suppressed"), ["DEBIAN-CVE-2099-0003", "DSA-9001-1"]);
    let found = ids("findings");
    assert!(
        found.contains(&"GHSA-9401-mvn1-log4".to_string()),
        "expired: still reported"
    );
    assert!(
        found.contains(&"MAL-2099-0203".to_string()),
        "no justification: still reported"
    );
    assert_eq!(found.len(), 11);
    let stderr = err(&o);
    assert!(
        stderr.contains("allowlist entry GHSA-9401-mvn1-log4 expired on 2020-01-31"),
        "{stderr}"
    );
    assert!(stderr.contains("no justification"), "{stderr}");
    let by: Vec<&str> = r["suppressed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["by"].as_str().unwrap())
        .collect();
    assert!(
        by.iter().any(|b| b.starts_with("allowlist: the X.509")),
        "{by:?}"
    );
    assert!(
        by.iter()
            .any(|b| b.contains("vulnerable_code_not_in_execute_path")),
        "{by:?}"
    );

    // a malformed allowlist is a failed scan, not a pass
    fs::write(
        &allow,
        "[[ignore]]\nid = \"X\"\nreason = \"r\"\nexpires = \"soon\"\n",
    )
    .unwrap();
    let o = scan(
        &ctx,
        "clean.cdx.json",
        &db,
        &["--allowlist", allow.to_str().unwrap()],
    );
    assert_eq!(code(&o), 1);
    assert!(err(&o).contains("not YYYY-MM-DD"), "{}", err(&o));
}

#[test]
fn stale_databases_warn_or_fail_and_a_zip_source_is_imported_once() {
    let ctx = tk::TestContext::new();
    // a raw directory whose newest record is years old
    let old = ctx.path("old-osv");
    fs::create_dir_all(&old).unwrap();
    fs::write(
        old.join("PYSEC-2020-1.json"),
        r#"{"id": "PYSEC-2020-1", "modified": "2020-01-01T00:00:00Z",
            "affected": [{"package": {"ecosystem": "PyPI", "name": "django"},
                          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0"}]}]}]}"#,
    )
    .unwrap();
    let o = scan(&ctx, "clean.cdx.json", &old, &[]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    assert!(
        err(&o).contains("warning: the vulnerability database"),
        "{}",
        err(&o)
    );
    assert!(err(&o).contains("days old"), "{}", err(&o));
    let o = scan(&ctx, "clean.cdx.json", &old, &["--db-max-age", "30d"]);
    assert_eq!(code(&o), 1);
    assert!(
        err(&o).contains("older than --db-max-age 30d"),
        "{}",
        err(&o)
    );

    // osv.dev's all.zip (Python's zipfile writes it here), scanned directly: imported into the
    // store once, reused the second time
    let zip = ctx.path("all.zip");
    let python = tk::require_tool("python3", "python3");
    tk::run_ok(
        Command::new(python)
            .arg("-c")
            .arg(
                "import sys, zipfile, pathlib\n\
                 with zipfile.ZipFile(sys.argv[2], 'w', zipfile.ZIP_DEFLATED) as z:\n\
                 \x20   [z.write(p, p.name) for p in sorted(pathlib.Path(sys.argv[1]).rglob('*.json'))]\n",
            )
            .arg(testdata("osv"))
            .arg(&zip),
    );
    for _ in 0..2 {
        let o = scan(&ctx, "app.cdx.json", &zip, &["--format", "json"]);
        assert_eq!(code(&o), 3, "{}", err(&o));
        assert_eq!(json(&o)["findings"].as_array().unwrap().len(), 13);
    }
    let dbs: Vec<_> = fs::read_dir(ctx.root_dir().join("vulndb"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("sha256-"))
        .collect();
    assert_eq!(
        dbs.len(),
        2,
        "the old directory and the zip, each once: {dbs:?}"
    );
    let info = tk::run_ok(
        ocibuild(&ctx)
            .args(["db", "info", "--json", "--db"])
            .arg(&zip),
    );
    let info: Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(info["records"], 12);
    assert_eq!(info["ecosystems"]["Go"], 3);
    assert_eq!(info["newest_modified"], "2026-11-30T12:00:00Z");
}
