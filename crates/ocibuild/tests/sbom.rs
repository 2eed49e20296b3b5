//! `ocibuild sbom` on the testdata apps built zero-config: the CycloneDX and SPDX documents pass
//! ocibuild's own `--validate` and the independent validators from PyPI (cyclonedx-python-lib's
//! JSON validator, `pyspdxtools -i`); every Debian package, Go module, npm package, Python
//! distribution and Maven artefact present in the unpacked image (read by umoci, not by ocibuild)
//! is listed with the right purl, and nothing that is not in the image (dev dependencies, the
//! toolchain root's packages) is. The licence gate exits 3 naming the package.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use ocibuild_testkit::{TestContext, run_ok_stdout, umoci_unpack};
use serde_json::Value;

const ORACLES: &[&str] = &["cyclonedx-python-lib[json-validation]", "spdx-tools"];

/// The same store as the other build tests: bases and toolchain roots are built once.
fn shared_store() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ocibuild-build-tests-store")
}

fn ocibuild() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ocibuild"));
    c.arg("--root")
        .arg(shared_store())
        .args(["--progress", "plain"])
        .env_remove("SOURCE_DATE_EPOCH");
    c
}

/// Build `testdata/apps/NAME` into `oci:LAYOUT:NAME`.
fn build(name: &str, layout: &Path) {
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("ocibuild-build-tests-store")
        .join("debian");
    fs::create_dir_all(&cache).unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/apps")
        .join(name);
    run_ok_stdout(
        ocibuild()
            .arg("build")
            .arg(&dir)
            .arg("--cache-dir")
            .arg(&cache)
            .arg("--output")
            .arg(format!("oci:{}:{name}", layout.display())),
    );
}

struct Sboms {
    cdx: Value,
    spdx: Value,
    rootfs: PathBuf,
    /// purl → the CycloneDX component
    purls: Vec<(String, Value)>,
}

impl Sboms {
    fn has(&self, purl: &str) -> bool {
        self.purls.iter().any(|(p, _)| p == purl)
    }
    fn with_prefix(&self, prefix: &str) -> Vec<&str> {
        self.purls
            .iter()
            .filter(|(p, _)| p.starts_with(prefix))
            .map(|(p, _)| p.as_str())
            .collect()
    }
    fn component(&self, purl: &str) -> &Value {
        &self.purls.iter().find(|(p, _)| p == purl).unwrap().1
    }
}

fn prop<'a>(c: &'a Value, name: &str) -> Option<&'a str> {
    c["properties"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["value"].as_str())
}

/// Build, write both documents (`ocibuild sbom` on the store that built the image: from its
/// build record), validate them three ways, and unpack the image with umoci.
fn sboms(ctx: &TestContext, name: &str) -> Sboms {
    let layout = ctx.path("layout");
    build(name, &layout);
    let image = format!("oci:{}:{name}", layout.display());
    let cdx_path = ctx.path(format!("{name}.cdx.json"));
    let spdx_path = ctx.path(format!("{name}.spdx.json"));
    run_ok_stdout(
        ocibuild()
            .args(["sbom", &image, "--format", "cyclonedx", "--output"])
            .arg(&cdx_path),
    );
    run_ok_stdout(
        ocibuild()
            .args(["sbom", &image, "--format", "spdx", "--output"])
            .arg(&spdx_path),
    );
    // deterministic: the same image gives the same bytes
    let again = run_ok_stdout(ocibuild().args(["sbom", &image, "--format", "cyclonedx"]));
    assert_eq!(
        again.as_bytes(),
        fs::read(&cdx_path).unwrap(),
        "{name}: SBOM not deterministic"
    );
    let s = validated(ctx, name, &cdx_path, &spdx_path, &layout);
    assert_from_build_record(&s);
    s
}

/// What the build record adds to a zero-config image's SBOM: every Debian package of the
/// runtime base listed from its lock (with the `.deb`'s SHA-256 and the base layer it was
/// placed in), and every component's layer origin.
fn assert_from_build_record(s: &Sboms) {
    for (p, c) in &s.purls {
        let origin = prop(c, "ocibuild:layer-origin").unwrap_or_else(|| panic!("{p}: no origin"));
        if p.starts_with("pkg:deb/") {
            assert!(origin.starts_with("base:runtime/"), "{p}: {origin}");
            assert_eq!(
                prop(c, "ocibuild:catalogued-from"),
                Some("build-record"),
                "{p}"
            );
            let sha = c["hashes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|h| h["alg"] == "SHA-256")
                .unwrap_or_else(|| panic!("{p}: no .deb SHA-256"));
            assert_eq!(sha["content"].as_str().unwrap().len(), 64, "{p}");
        } else {
            assert!(
                origin.starts_with("app:") || origin.starts_with("base:runtime/"),
                "{p}: {origin}"
            );
        }
    }
}

/// Validate both documents three ways (ocibuild's own `--validate`, cyclonedx-python-lib,
/// `pyspdxtools -i`), check they list the same packages, and unpack `layout:name` with umoci.
fn validated(
    ctx: &TestContext,
    name: &str,
    cdx_path: &Path,
    spdx_path: &Path,
    layout: &Path,
) -> Sboms {
    for f in [cdx_path, spdx_path] {
        let out = run_ok_stdout(ocibuild().arg("sbom").arg("--validate").arg(f));
        assert!(out.contains(": valid "), "{out}");
    }
    let ok = ocibuild_testkit::oracles::python_eval(
        ORACLES,
        "import sys\n\
         from cyclonedx.schema import SchemaVersion\n\
         from cyclonedx.validation.json import JsonStrictValidator\n\
         err = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())\n\
         print('invalid: ' + repr(err) if err else 'cyclonedx ok')",
        &[cdx_path.to_str().unwrap()],
    );
    assert_eq!(ok.trim(), "cyclonedx ok", "{name}: {ok}");
    let pyspdx = ocibuild_testkit::oracles::python_venv(ORACLES)
        .parent()
        .unwrap()
        .join("pyspdxtools");
    let out = Command::new(&pyspdx)
        .arg("-i")
        .arg(spdx_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name}: pyspdxtools -i rejects the SPDX document:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let cdx: Value = serde_json::from_slice(&fs::read(cdx_path).unwrap()).unwrap();
    let spdx: Value = serde_json::from_slice(&fs::read(spdx_path).unwrap()).unwrap();
    let purls: Vec<(String, Value)> = cdx["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["purl"].as_str().unwrap().to_string(), c.clone()))
        .collect();
    // both documents list the same packages
    let spdx_purls: BTreeSet<&str> = spdx["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["externalRefs"][0]["referenceLocator"].as_str())
        .collect();
    let cdx_purls: BTreeSet<&str> = purls.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(spdx_purls, cdx_purls);
    for (p, c) in &purls {
        let layer = prop(c, "ocibuild:layer").unwrap();
        assert!(layer.starts_with("sha256:"), "{p}: {layer}");
        assert!(prop(c, "ocibuild:path").is_some(), "{p}");
    }
    let rootfs = umoci_unpack(layout, name, &ctx.path("bundle"));
    Sboms {
        cdx,
        spdx,
        rootfs,
        purls,
    }
}

fn os_major(rootfs: &Path) -> String {
    let text = fs::read_to_string(rootfs.join("etc/os-release"))
        .or_else(|_| fs::read_to_string(rootfs.join("usr/lib/os-release")))
        .unwrap();
    let v = text
        .lines()
        .find_map(|l| l.strip_prefix("VERSION_ID="))
        .unwrap()
        .trim_matches('"');
    v.split('.').next().unwrap().to_string()
}

/// Every dpkg record in the unpacked image is a component `pkg:deb/debian/<name>@…&distro=debian-N…`.
fn assert_debian_packages(s: &Sboms) {
    let major = os_major(&s.rootfs);
    let dir = s.rootfs.join("var/lib/dpkg/status.d");
    let mut n = 0;
    for e in fs::read_dir(&dir).unwrap() {
        let e = e.unwrap();
        let f = e.file_name().to_string_lossy().to_string();
        if f.ends_with(".md5sums") {
            continue;
        }
        let text = fs::read_to_string(e.path()).unwrap();
        let field = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}: ")))
                .map(str::to_string)
        };
        let pkg = field("Package").unwrap();
        let arch = field("Architecture").unwrap();
        let source = field("Source")
            .map(|s| s.split_whitespace().next().unwrap().to_string())
            .unwrap_or_else(|| pkg.clone());
        // the purl spec percent-encodes `+` (libstdc++6 → libstdc%2B%2B6)
        let prefix = format!("pkg:deb/debian/{}@", pkg.replace('+', "%2B"));
        let found = s.with_prefix(&prefix);
        assert_eq!(found.len(), 1, "{pkg}: {found:?}");
        assert!(
            found[0].ends_with(&format!(
                "?arch={arch}&distro=debian-{major}&upstream={}",
                source.replace('+', "%2B")
            )),
            "{}",
            found[0]
        );
        n += 1;
    }
    assert!(n > 0, "the base has dpkg records");
    assert_eq!(
        s.with_prefix("pkg:deb/").len(),
        n,
        "no Debian package beyond the image's"
    );
    // nothing of the build roots: compilers, package managers, language toolchains
    let names: Vec<&str> = s
        .with_prefix("pkg:deb/debian/")
        .iter()
        .map(|p| p["pkg:deb/debian/".len()..].split('@').next().unwrap())
        .collect();
    for bad in [
        "gcc",
        "gcc-14",
        "cpp",
        "cpp-14",
        "golang-go",
        "npm",
        "python3-pip",
        "python3-dev",
        "maven",
        "make",
        "dpkg-dev",
        "default-jdk-headless",
    ] {
        assert!(
            !names.contains(&bad),
            "{bad} is a build-root package: {names:?}"
        );
    }
}

#[test]
fn go_app_sbom_lists_stdlib_main_module_and_debian_packages() {
    let ctx = TestContext::new();
    let s = sboms(&ctx, "go-http");
    assert_debian_packages(&s);
    let std = s.with_prefix("pkg:golang/stdlib@");
    assert_eq!(std.len(), 1, "{std:?}");
    let c = s.component(std[0]);
    assert_eq!(prop(c, "ocibuild:goos"), Some("linux"));
    let arch = s.cdx["metadata"]["component"]["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "ocibuild:platform")
        .unwrap()["value"]
        .as_str()
        .unwrap()
        .split('/')
        .nth(1)
        .unwrap()
        .to_string();
    assert_eq!(prop(c, "ocibuild:goarch"), Some(arch.as_str()));
    // the binary is in a layer the zero-config builder made, not in the base
    assert!(
        prop(c, "ocibuild:layer-origin").is_some_and(|o| o.starts_with("app:")),
        "{c:#}"
    );
    let v = std[0].strip_prefix("pkg:golang/stdlib@").unwrap();
    assert!(v.starts_with("1.") && !v.starts_with("go"), "{v}");
    assert!(s.has("pkg:golang/example.com/gohttp"), "{:?}", s.purls);
    assert_eq!(
        s.with_prefix("pkg:npm/").len() + s.with_prefix("pkg:pypi/").len(),
        0
    );
    assert_eq!(s.spdx["spdxVersion"], "SPDX-2.3");
}

/// `scan IMAGE` catalogues the image as `sbom` does: a Go stdlib advisory for the image's Go
/// version is found (exit 3) and one limited to another architecture is not.
#[test]
fn scan_of_a_go_image_finds_stdlib_by_its_toolchain_version() {
    let ctx = TestContext::new();
    let layout = ctx.path("layout");
    build("go-http", &layout);
    let image = format!("oci:{}:go-http", layout.display());
    let osv = ctx.path("osv");
    fs::create_dir_all(&osv).unwrap();
    let record = |id: &str, imports: &str| {
        format!(
            r#"{{"schema_version": "1.6.0", "id": "{id}", "modified": "2026-12-01T00:00:00Z",
  "affected": [{{"package": {{"ecosystem": "Go", "name": "stdlib"}},
    "ranges": [{{"type": "SEMVER", "events": [{{"introduced": "0"}}, {{"fixed": "1.999.0"}}]}}]{imports}}}]}}"#
        )
    };
    fs::write(osv.join("GO-TEST-1.json"), record("GO-TEST-1", "")).unwrap();
    fs::write(
        osv.join("GO-TEST-2.json"),
        record(
            "GO-TEST-2",
            r#", "ecosystem_specific": {"imports": [{"path": "net/http", "goos": ["linux"], "goarch": ["s390x"]}]}"#,
        ),
    )
    .unwrap();
    let report = ctx.path("scan.json");
    let out = ocibuild()
        .args(["scan", &image, "--db"])
        .arg(&osv)
        .args(["--format", "json", "--output"])
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&fs::read(&report).unwrap()).unwrap();
    let ids: Vec<&str> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["GO-TEST-1"], "{r:#}");
    assert_eq!(r["findings"][0]["package"], "stdlib");
}

#[test]
fn node_app_sbom_has_production_dependencies_only() {
    let ctx = TestContext::new();
    let s = sboms(&ctx, "node-ts-express");
    assert_debian_packages(&s);
    assert!(
        s.has("pkg:npm/express@4.21.2"),
        "{:?}",
        s.with_prefix("pkg:npm/")
    );
    let c = s.component("pkg:npm/express@4.21.2");
    assert_eq!(c["licenses"][0]["expression"], "MIT");
    // from the app's package-lock.json, which the build record names by its digest
    assert_eq!(
        prop(c, "ocibuild:lockfile"),
        Some("/app/package-lock.json"),
        "{c:#}"
    );
    let lock: Value =
        serde_json::from_slice(&fs::read(s.rootfs.join("app/package-lock.json")).unwrap()).unwrap();
    let sri = lock["packages"]["node_modules/express"]["integrity"]
        .as_str()
        .unwrap();
    use base64::Engine as _;
    let want = base64::engine::general_purpose::STANDARD
        .decode(sri.strip_prefix("sha512-").unwrap())
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    assert!(
        c["hashes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["alg"] == "SHA-512" && h["content"] == want.as_str()),
        "{c:#}"
    );
    // a production install: nothing the lockfile marks as a development dependency
    assert!(
        s.purls
            .iter()
            .all(|(_, c)| prop(c, "ocibuild:npm-development").is_none())
    );
    for dev in ["pkg:npm/typescript@", "pkg:npm/%40types/"] {
        assert!(s.with_prefix(dev).is_empty(), "dev dependency {dev} listed");
    }
    // every package.json of node_modules in the image is listed
    let expected = npm_purls_in(&s.rootfs);
    assert!(
        expected.len() > 10,
        "express has dependencies: {expected:?}"
    );
    let listed: BTreeSet<String> = s
        .with_prefix("pkg:npm/")
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert_eq!(listed, expected);
    node_licence_gate_and_validation(&ctx, &s);
}

/// The purl of every package manifest under a `node_modules` of the unpacked image.
fn npm_purls_in(rootfs: &Path) -> BTreeSet<String> {
    let mut expected = BTreeSet::new();
    for p in ocibuild_testkit::walk(rootfs) {
        let rel = p
            .strip_prefix(rootfs)
            .unwrap()
            .to_string_lossy()
            .to_string();
        let segs: Vec<&str> = rel.split('/').collect();
        let Some(nm) = segs.iter().rposition(|x| *x == "node_modules") else {
            continue;
        };
        let is_manifest = match &segs[nm + 1..] {
            [n, "package.json"] => !n.starts_with('.') && !n.starts_with('@'),
            [scope, _, "package.json"] => scope.starts_with('@'),
            _ => false,
        };
        if !is_manifest {
            continue;
        }
        let v: Value = serde_json::from_slice(&fs::read(&p).unwrap()).unwrap();
        if let (Some(n), Some(ver)) = (v["name"].as_str(), v["version"].as_str()) {
            let purl = match n.split_once('/') {
                Some((scope, rest)) => format!("pkg:npm/%40{}/{rest}@{ver}", &scope[1..]),
                None => format!("pkg:npm/{n}@{ver}"),
            };
            expected.insert(purl);
        }
    }
    expected
}

fn node_licence_gate_and_validation(ctx: &TestContext, s: &Sboms) {
    // the licence gate names the package and exits 3; the document is still written
    let image = format!("oci:{}:node-ts-express", ctx.path("layout").display());
    let out_file = ctx.path("gated.json");
    let out = ocibuild()
        .args(["sbom", &image, "--license-deny", "MIT", "--output"])
        .arg(&out_file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("licence denied: express 4.21.2 (pkg:npm/express@4.21.2)"),
        "{err}"
    );
    assert!(out_file.is_file());
    let out = ocibuild()
        .args(["sbom", &image, "--license-deny", "GPL3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an SPDX licence identifier"));

    // a broken document: --validate names where
    let mut bad = s.cdx.clone();
    bad["components"][0]["type"] = "gadget".into();
    let bad_file = ctx.path("bad.cdx.json");
    fs::write(&bad_file, serde_json::to_vec(&bad).unwrap()).unwrap();
    let out = ocibuild()
        .arg("sbom")
        .arg("--validate")
        .arg(&bad_file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/components/0/type"), "{err}");
}

#[test]
fn python_app_sbom_lists_the_venv_distributions() {
    let ctx = TestContext::new();
    let s = sboms(&ctx, "python-flask");
    assert_debian_packages(&s);
    for p in [
        "pkg:pypi/flask@3.1.0",
        "pkg:pypi/markupsafe@3.0.2",
        "pkg:pypi/gunicorn@23.0.0",
    ] {
        assert!(s.has(p), "{p} missing: {:?}", s.with_prefix("pkg:pypi/"));
    }
    let mut expected = BTreeSet::new();
    for p in ocibuild_testkit::walk(&s.rootfs) {
        let f = p.to_string_lossy().to_string();
        if !f.ends_with(".dist-info/METADATA") {
            continue;
        }
        let text = fs::read_to_string(&p).unwrap();
        let field = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k))
                .unwrap()
                .trim()
                .to_string()
        };
        let name = field("Name:").to_lowercase().replace(['_', '.'], "-");
        expected.insert(format!("pkg:pypi/{name}@{}", field("Version:")));
    }
    let listed: BTreeSet<String> = s
        .with_prefix("pkg:pypi/")
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert_eq!(listed, expected);
    // the build root's compilers are not in the image, so not in the SBOM
    assert!(s.with_prefix("pkg:deb/debian/python3-dev").is_empty());
}

#[test]
fn java_app_sbom_lists_the_dependency_jars() {
    let ctx = TestContext::new();
    let s = sboms(&ctx, "java-maven");
    assert_debian_packages(&s);
    let lang3 = s.with_prefix("pkg:maven/org.apache.commons/commons-lang3@");
    assert_eq!(lang3.len(), 1, "{:?}", s.with_prefix("pkg:maven/"));
    let c = s.component(lang3[0]);
    assert!(
        c["hashes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["alg"] == "SHA-256")
    );
    // Maven and its plugins built the app; none of them is in the image
    assert!(
        s.with_prefix("pkg:maven/org.apache.maven").is_empty(),
        "{:?}",
        s.with_prefix("pkg:maven/")
    );
}

fn go_http_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/apps/go-http")
}

fn stdlib_db(ctx: &TestContext) -> PathBuf {
    let osv = ctx.path("osv-stdlib");
    fs::create_dir_all(&osv).unwrap();
    fs::write(
        osv.join("GO-TEST-9.json"),
        r#"{"schema_version": "1.6.0", "id": "GO-TEST-9", "aliases": ["CVE-2099-9999"],
  "modified": "2026-12-01T00:00:00Z",
  "affected": [{"package": {"ecosystem": "Go", "name": "stdlib"},
    "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.999.0"}]}]}]}"#,
    )
    .unwrap();
    osv
}

/// Issue 17's build gate end to end: a Go app built with `--scan` against a database with a
/// stdlib advisory for its Go version exits 3 and writes no output; with an allowlist entry for
/// it the build passes, pushes, writes the SBOMs with `--sbom` and attaches them to the layout
/// and to the registry image (tag-schema fallback on docker-registry).
#[test]
fn build_scan_gate_and_sbom_attachment() {
    use ocibuild_testkit::registry::{RegistryOptions, start_registry};
    let ctx = TestContext::new();
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("ocibuild-build-tests-store")
        .join("debian");
    let db = stdlib_db(&ctx);
    let blocked = ctx.path("blocked");
    let report = ctx.path("scan.json");
    let out = ocibuild()
        .arg("build")
        .arg(go_http_dir())
        .arg("--cache-dir")
        .arg(&cache)
        .args(["--scan", "--db"])
        .arg(&db)
        .arg("--scan-report")
        .arg(&report)
        .arg("--output")
        .arg(format!("oci:{}:go-http", blocked.display()))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("GO-TEST-9") && err.contains("nothing was"),
        "{err}"
    );
    assert!(!blocked.exists(), "the gate wrote the output");
    let r: Value = serde_json::from_slice(&fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["findings"][0]["id"], "GO-TEST-9", "{r:#}");

    // allowed: passes, writes both SBOMs, attaches them to the layout and the registry image
    let allow = ctx.path("allow.toml");
    fs::write(
        &allow,
        "[[ignore]]\nid = \"CVE-2099-9999\"\nreason = \"test: not reachable\"\nexpires = \"2099-01-01\"\n",
    )
    .unwrap();
    let reg = start_registry(&ctx, RegistryOptions::default());
    let layout = ctx.path("out");
    let sboms = ctx.path("sboms");
    let tag = format!("{}/app:1", reg.host);
    let digest = run_ok_stdout(
        ocibuild()
            .arg("build")
            .arg(go_http_dir())
            .arg("--cache-dir")
            .arg(&cache)
            .args(["--scan", "--db"])
            .arg(&db)
            .arg("--allowlist")
            .arg(&allow)
            .args(["--sbom", "--sbom-attach", "cosign", "--sbom-dir"])
            .arg(&sboms)
            .args(["--insecure-registry", &reg.host, "-t", &tag, "--push"])
            .arg("--output")
            .arg(format!("oci:{}:go-http", layout.display())),
    );
    let digest = digest.trim().to_string();
    assert!(digest.starts_with("sha256:"), "{digest}");
    for f in ["sbom.cdx.json", "sbom.spdx.json"] {
        let v = run_ok_stdout(ocibuild().arg("sbom").arg("--validate").arg(sboms.join(f)));
        assert!(v.contains(": valid "), "{v}");
    }
    // catalogued from the zero-config build's record: the runtime base's packages from its lock
    let cdx: Value =
        serde_json::from_slice(&fs::read(sboms.join("sbom.cdx.json")).unwrap()).unwrap();
    let debs: Vec<&Value> = cdx["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["purl"].as_str().unwrap().starts_with("pkg:deb/"))
        .collect();
    assert!(!debs.is_empty());
    for c in debs {
        assert_eq!(
            prop(c, "ocibuild:catalogued-from"),
            Some("build-record"),
            "{c:#}"
        );
    }
    // the layout: two referrers of the image, one per format
    let index: Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let mut kinds: Vec<String> = Vec::new();
    for m in index["manifests"].as_array().unwrap() {
        if let Some(t) = m["artifactType"].as_str() {
            let hex = m["digest"].as_str().unwrap().trim_start_matches("sha256:");
            let man: Value =
                serde_json::from_slice(&fs::read(layout.join("blobs/sha256").join(hex)).unwrap())
                    .unwrap();
            assert_eq!(man["subject"]["digest"], digest.as_str(), "{man:#}");
            kinds.push(t.to_string());
        }
    }
    kinds.sort();
    assert_eq!(
        kinds,
        ["application/spdx+json", "application/vnd.cyclonedx+json"],
        "{index:#}"
    );
    // the registry: the referrers (docker-registry has no referrers API: the sha256-<hex> tag)
    let fallback = format!(
        "http://{}/v2/app/manifests/sha256-{}",
        reg.host,
        digest.trim_start_matches("sha256:")
    );
    let body = run_ok_stdout(Command::new("curl").args([
        "-sf",
        "-H",
        "Accept: application/vnd.oci.image.index.v1+json",
        &fallback,
    ]));
    let idx: Value = serde_json::from_str(&body).unwrap();
    let mut kinds: Vec<&str> = idx["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["artifactType"].as_str())
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        ["application/spdx+json", "application/vnd.cyclonedx+json"],
        "{idx:#}"
    );
    // --sbom-attach cosign: also the `sha256-<hex>.sbom` tag, a layer per document, in the
    // registry and in the layout
    let cosign = format!(
        "http://{}/v2/app/manifests/sha256-{}.sbom",
        reg.host,
        digest.trim_start_matches("sha256:")
    );
    let body = run_ok_stdout(Command::new("curl").args([
        "-sf",
        "-H",
        "Accept: application/vnd.oci.image.manifest.v1+json",
        &cosign,
    ]));
    let m: Value = serde_json::from_str(&body).unwrap();
    let mut types: Vec<&str> = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap())
        .collect();
    types.sort();
    assert_eq!(
        types,
        ["application/vnd.cyclonedx+json", "text/spdx+json"],
        "{m:#}"
    );
    // copy to another repository carries both forms
    run_ok_stdout(ocibuild().args([
        "copy",
        "--insecure-registry",
        &reg.host,
        &format!("docker://{tag}"),
        &format!("docker://{}/copied:1", reg.host),
    ]));
    for (path, accept) in [
        (
            format!("sha256-{}.sbom", digest.trim_start_matches("sha256:")),
            "application/vnd.oci.image.manifest.v1+json",
        ),
        (
            format!("sha256-{}", digest.trim_start_matches("sha256:")),
            "application/vnd.oci.image.index.v1+json",
        ),
    ] {
        let url = format!("http://{}/v2/copied/manifests/{path}", reg.host);
        let out = std::process::Command::new("curl")
            .args([
                "-sf",
                "-o",
                "/dev/null",
                "-H",
                &format!("Accept: {accept}"),
                &url,
            ])
            .status()
            .unwrap();
        assert!(out.success(), "copy did not carry {path} to copied");
    }
    let sbom_tag = format!("sha256-{}.sbom", digest.trim_start_matches("sha256:"));
    assert!(
        index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["annotations"]["org.opencontainers.image.ref.name"] == sbom_tag.as_str()),
        "{index:#}"
    );
}

/// The Dockerfile frontend hands the catalogers its build record too. `build --sbom` of a
/// Dockerfile that starts `FROM` the zero-config go-http image and copies an npm tree in: the
/// npm packages carry the context lockfile's integrity hashes (the record names that lockfile by
/// its digest) and its development flag, every component names its layer's origin (`base:` for
/// the FROM image's layers, `step:` for the COPY), and the documents still validate and match
/// what umoci unpacks.
#[test]
fn dockerfile_build_sbom_comes_from_the_build_record() {
    let ctx = TestContext::new();
    let base = ctx.path("base");
    build("go-http", &base);
    let app = ctx.path("svc");
    let pkg = |dir: &str, json: &str| {
        let d = app.join(dir);
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("package.json"), json).unwrap();
    };
    pkg(
        "",
        r#"{"name": "svc", "version": "1.0.0", "dependencies": {"left-pad": "^1.3.0"}, "devDependencies": {"typescript": "^5.7.2"}}"#,
    );
    pkg(
        "node_modules/left-pad",
        r#"{"name": "left-pad", "version": "1.3.0", "license": "WTFPL"}"#,
    );
    pkg(
        "node_modules/left-pad/node_modules/repeat-string",
        r#"{"name": "repeat-string", "version": "1.6.1", "license": "MIT"}"#,
    );
    // `npm ci` without --omit=dev: a development dependency in the image (its lockfile entry
    // has a malformed integrity: a SHA-512 of 20 bytes)
    pkg(
        "node_modules/typescript",
        r#"{"name": "typescript", "version": "5.7.2", "license": "Apache-2.0"}"#,
    );
    fs::write(
        app.join("package-lock.json"),
        r#"{"name": "svc", "version": "1.0.0", "lockfileVersion": 3, "requires": true, "packages": {
  "": {"name": "svc", "version": "1.0.0", "dependencies": {"left-pad": "^1.3.0"}, "devDependencies": {"typescript": "^5.7.2"}},
  "node_modules/left-pad": {"version": "1.3.0", "license": "WTFPL",
    "integrity": "sha512-AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw=="},
  "node_modules/left-pad/node_modules/repeat-string": {"version": "1.6.1", "integrity": "sha1-ZGVmZ2hpamtsbW5vcHFyc3R1dnc="},
  "node_modules/typescript": {"version": "5.7.2", "dev": true, "license": "Apache-2.0",
    "integrity": "sha512-ZGVmZ2hpamtsbW5vcHFyc3R1dnc="}
}}
"#,
    )
    .unwrap();
    fs::write(
        app.join("Dockerfile"),
        format!(
            "FROM oci:{}:go-http\nCOPY package.json package-lock.json /srv/\nCOPY node_modules /srv/node_modules\n",
            base.display()
        ),
    )
    .unwrap();
    let layout = ctx.path("out");
    let sbom_dir = ctx.path("sboms");
    run_ok_stdout(
        ocibuild()
            .arg("build")
            .arg(&app)
            .args(["--sbom", "cyclonedx,spdx", "--sbom-dir"])
            .arg(&sbom_dir)
            .arg("--output")
            .arg(format!("oci:{}:svc", layout.display())),
    );
    let s = validated(
        &ctx,
        "svc",
        &sbom_dir.join("sbom.cdx.json"),
        &sbom_dir.join("sbom.spdx.json"),
        &layout,
    );
    assert_debian_packages(&s);
    let listed: BTreeSet<String> = s
        .with_prefix("pkg:npm/")
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert_eq!(listed, npm_purls_in(&s.rootfs));
    let hash = |c: &Value, alg: &str| {
        c["hashes"]
            .as_array()
            .and_then(|hs| hs.iter().find(|h| h["alg"] == alg))
            .and_then(|h| h["content"].as_str())
            .map(str::to_string)
    };
    let left_pad = s.component("pkg:npm/left-pad@1.3.0");
    assert_eq!(
        hash(left_pad, "SHA-512").as_deref(),
        Some(
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
        ),
        "{left_pad:#}"
    );
    assert_eq!(
        prop(left_pad, "ocibuild:lockfile"),
        Some("/srv/package-lock.json")
    );
    assert!(prop(left_pad, "ocibuild:npm-development").is_none());
    let nested = s.component("pkg:npm/repeat-string@1.6.1");
    assert_eq!(
        hash(nested, "SHA-1").as_deref(),
        Some("6465666768696a6b6c6d6e6f7071727374757677")
    );
    let ts = s.component("pkg:npm/typescript@5.7.2");
    assert_eq!(prop(ts, "ocibuild:npm-development"), Some("true"), "{ts:#}");
    // its lockfile entry's integrity is 20 bytes long for sha512: not a hash, left out
    assert_eq!(hash(ts, "SHA-512"), None, "{ts:#}");
    for (p, c) in &s.purls {
        let origin = prop(c, "ocibuild:layer-origin").unwrap_or_else(|| panic!("{p}: no origin"));
        if p.starts_with("pkg:npm/") {
            assert!(origin.starts_with("step:"), "{p}: {origin}");
        } else {
            // the Debian packages and the Go binary came with the FROM image
            assert!(origin.starts_with("base:"), "{p}: {origin}");
        }
        // the FROM image was built by this store: its record's Debian lock is the base's
        if p.starts_with("pkg:deb/") {
            assert_eq!(
                prop(c, "ocibuild:catalogued-from"),
                Some("build-record"),
                "{p}"
            );
        }
    }
    // the SPDX document carries the lockfile's SHA-512 as a checksum
    let spdx_left_pad = s.spdx["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "left-pad")
        .unwrap();
    assert!(
        spdx_left_pad["checksums"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["algorithm"] == "SHA512"),
        "{spdx_left_pad:#}"
    );
}
