//! Multi-platform builds: `ocibuild build -f Dockerfile --platform linux/amd64,linux/arm64`
//! gives one OCI image index with a manifest per platform, in layouts, oci-archives and
//! registries. A Go build stage on `FROM --platform=$BUILDPLATFORM` runs natively and
//! cross-compiles with GOARCH=$TARGETARCH; the runtime stage is each architecture's Debian base.
//! The arm64 binary is run with `qemu-aarch64-static` directly (binfmt_misc may not be
//! registrable where the tests run), and must answer as the amd64 one does under runc.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use ocibuild_testkit::registry::{RegistryOptions, start_registry};
use ocibuild_testkit::{
    TestContext, require_tool, run, run_ok_stdout, runc_run, skopeo_inspect_config, umoci_unpack,
};
use serde_json::Value;

fn cache() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("ocibuild-build-tests-store")
        .join("debian");
    fs::create_dir_all(&d).unwrap();
    d
}

/// The store the app tests share (toolchain roots and bases are reused across test binaries).
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

/// A small Go service's CLI: computes an answer that does not depend on the architecture, and
/// says which architecture it was compiled for.
fn go_source(dir: &Path) {
    fs::write(dir.join("go.mod"), "module example.com/tally\n\ngo 1.21\n").unwrap();
    fs::write(
        dir.join("main.go"),
        r#"package main

import (
	"fmt"
	"hash/crc32"
	"os"
	"runtime"
	"strings"
)

// tally counts the primes below n and checksums their decimal forms.
func tally(n int) (int, uint32) {
	sieve := make([]bool, n)
	var b strings.Builder
	count := 0
	for i := 2; i < n; i++ {
		if sieve[i] {
			continue
		}
		count++
		fmt.Fprintf(&b, "%d,", i)
		for j := i * i; j < n; j += i {
			sieve[j] = true
		}
	}
	return count, crc32.ChecksumIEEE([]byte(b.String()))
}

func main() {
	n := 10000
	if len(os.Args) > 1 {
		fmt.Sscanf(os.Args[1], "%d", &n)
	}
	count, sum := tally(n)
	fmt.Printf("answer: %d primes below %d, crc %08x\n", count, n, sum)
	fmt.Printf("arch: %s\n", runtime.GOARCH)
}
"#,
    )
    .unwrap();
}

/// [`go_source`] with a two-stage Dockerfile whose build stage cross-compiles.
fn go_app(dir: &Path) {
    go_source(dir);
    fs::write(
        dir.join("Dockerfile"),
        "# the build stage runs on the build platform and cross-compiles for the target\n\
         FROM --platform=$BUILDPLATFORM ocibuild:build-base+golang-go AS build\n\
         ARG TARGETPLATFORM TARGETOS TARGETARCH BUILDPLATFORM BUILDARCH\n\
         WORKDIR /src\n\
         COPY go.mod main.go ./\n\
         RUN mkdir -p /out && echo \"$BUILDPLATFORM ($BUILDARCH) -> $TARGETPLATFORM ($TARGETOS/$TARGETARCH) on $(uname -m)\" > /out/built-on\n\
         RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH GOTOOLCHAIN=local GOPROXY=off GOCACHE=/tmp/gocache \\\n\
             go build -trimpath -ldflags=-buildid= -o /out/tally .\n\
         FROM ocibuild:static:nonroot\n\
         COPY --from=build /out/tally /bin/tally\n\
         COPY --from=build /out/built-on /built-on\n\
         ENTRYPOINT [\"/bin/tally\"]\n",
    )
    .unwrap();
}

fn elf_machine(p: &Path) -> Option<u16> {
    let b = fs::read(p).ok()?;
    (b.len() > 20 && b.starts_with(b"\x7fELF")).then(|| u16::from_le_bytes([b[18], b[19]]))
}

/// Every ELF file under `root` with its e_machine.
fn elf_files(root: &Path) -> Vec<(PathBuf, u16)> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| elf_machine(e.path()).map(|m| (e.path().to_path_buf(), m)))
        .collect()
}

const EM_X86_64: u16 = 0x3e;
const EM_AARCH64: u16 = 0xb7;

#[test]
fn a_go_dockerfile_builds_an_amd64_arm64_index_whose_arm64_binary_answers_alike() {
    let ctx = TestContext::new();
    let dir = ctx.tmp_dir("ctx");
    go_app(&dir);
    let layout = ctx.path("layout");
    let archive = ctx.path("multi.tar");
    let meta = ctx.path("meta.json");
    let reg = start_registry(&ctx, RegistryOptions::default());
    let pushed = format!("docker://{}/tally:multi", reg.host);
    let mut c = ocibuild();
    c.args(["build", "-f"])
        .arg(dir.join("Dockerfile"))
        .args(["--platform", "linux/amd64,linux/arm64", "--cache-dir"])
        .arg(cache())
        .arg("--output")
        .arg(format!("oci:{}:multi", layout.display()))
        .arg("--output")
        .arg(format!("oci-archive:{}", archive.display()))
        .args(["--output", &pushed])
        .arg("--metadata-file")
        .arg(&meta)
        .arg(&dir);
    let out = run(&mut c);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    let digest = stdout.lines().last().unwrap().to_string();
    assert!(digest.starts_with("sha256:"), "{stdout}");

    // One index with both manifests, the same in the layout, the archive and the registry.
    let raw = |r: &str, extra: &[&str]| -> (Value, String) {
        let o = run_ok_stdout(
            Command::new("skopeo")
                .arg("inspect")
                .args(extra)
                .args(["--raw", r]),
        );
        let d = format!(
            "sha256:{}",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(o.as_bytes()))
        );
        (serde_json::from_str(&o).unwrap(), d)
    };
    let (index, d) = raw(&format!("oci:{}:multi", layout.display()), &[]);
    assert_eq!(d, digest, "the printed digest is the index's");
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let manifests = index["manifests"].as_array().unwrap();
    let archs: Vec<&str> = manifests
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(archs, ["amd64", "arm64"], "{index}");
    assert!(manifests.iter().all(|m| m["platform"]["os"] == "linux"));
    let (_, d) = raw(&format!("oci-archive:{}", archive.display()), &[]);
    assert_eq!(d, digest, "the oci-archive holds the index");
    let (_, d) = raw(&pushed, &["--tls-verify=false"]);
    assert_eq!(d, digest, "the registry holds the index");
    for m in manifests {
        let r = format!(
            "docker://{}/tally@{}",
            reg.host,
            m["digest"].as_str().unwrap()
        );
        let (man, _) = raw(&r, &["--tls-verify=false"]);
        assert!(
            man["layers"].as_array().is_some_and(|l| !l.is_empty()),
            "{r}: {man}"
        );
    }

    // A Dockerfile on that multi-arch image pulls each platform's manifest for each platform.
    let derived_ctx = ctx.tmp_dir("derived");
    fs::write(
        derived_ctx.join("Dockerfile"),
        format!("FROM {}/tally:multi\nLABEL derived=yes\n", reg.host),
    )
    .unwrap();
    let derived = ctx.path("derived-layout");
    let out = run(ocibuild()
        .args(["build", "--platform", "linux/arm64,linux/amd64", "--output"])
        .arg(format!("oci:{}:d", derived.display()))
        .arg(&derived_ctx));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (dindex, _) = raw(&format!("oci:{}:d", derived.display()), &[]);
    let dm = dindex["manifests"].as_array().unwrap();
    assert_eq!(dm.len(), 2, "{dindex}");
    for (i, want) in ["arm64", "amd64"].iter().enumerate() {
        assert_eq!(dm[i]["platform"]["architecture"], *want, "{dindex}");
        let base = manifests
            .iter()
            .find(|m| m["platform"]["architecture"] == *want)
            .unwrap();
        let (bm, _) = raw(
            &format!(
                "docker://{}/tally@{}",
                reg.host,
                base["digest"].as_str().unwrap()
            ),
            &["--tls-verify=false"],
        );
        let layout_blob = derived.join("blobs/sha256").join(
            dm[i]["digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:"),
        );
        let dman: Value = serde_json::from_slice(&fs::read(layout_blob).unwrap()).unwrap();
        let digests = |v: &Value| -> Vec<String> {
            v["layers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["digest"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(
            digests(&dman),
            digests(&bm),
            "{want}: the derived image is on the {want} base"
        );
    }

    // Each platform's config says its architecture.
    for (arch, want) in [("amd64", "amd64"), ("arm64", "arm64")] {
        let cfg = skopeo_inspect_config_for(&layout, "multi", arch);
        assert_eq!(cfg["architecture"], want, "{cfg}");
    }

    // Unpack each platform (skopeo picks the manifest; umoci unpacks it).
    let mut answers = Vec::new();
    for (arch, machine) in [("amd64", EM_X86_64), ("arm64", EM_AARCH64)] {
        let one = ctx.path(format!("one-{arch}"));
        run_ok_stdout(Command::new("skopeo").args([
            "copy",
            "--override-arch",
            arch,
            &format!("oci:{}:multi", layout.display()),
            &format!("oci:{}:{arch}", one.display()),
        ]));
        let bundle = ctx.path(format!("bundle-{arch}"));
        umoci_unpack(&one, arch, &bundle);
        let rootfs = bundle.join("rootfs");
        let elves = elf_files(&rootfs);
        assert!(
            elves.iter().any(|(p, _)| p.ends_with("bin/tally")),
            "{arch}: {elves:?}"
        );
        let foreign: Vec<_> = elves.iter().filter(|(_, m)| *m != machine).collect();
        assert!(
            foreign.is_empty(),
            "{arch} image holds other ELF machines: {foreign:?}"
        );
        let built_on = fs::read_to_string(rootfs.join("built-on")).unwrap();
        assert_eq!(
            built_on.trim(),
            format!("linux/amd64 (amd64) -> linux/{arch} (linux/{arch}) on x86_64"),
            "the build stage ran natively with the platform ARGs set as BuildKit sets them"
        );
        if arch == "amd64" {
            let (rc, out, e) = runc_run(&bundle, None);
            assert_eq!(rc, 0, "{out}{e}");
            answers.push(out);
        } else {
            let qemu = require_tool("qemu-aarch64-static", "qemu-user-static");
            let o = run_ok_stdout(Command::new(qemu).arg(rootfs.join("bin/tally")));
            answers.push(o);
        }
    }
    let line = |s: &str, k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(
        line(&answers[0], "answer:"),
        line(&answers[1], "answer:"),
        "{answers:?}"
    );
    assert!(
        line(&answers[0], "answer:").contains("1229 primes below 10000"),
        "{answers:?}"
    );
    assert_eq!(line(&answers[0], "arch:"), "arch: amd64");
    assert_eq!(line(&answers[1], "arch:"), "arch: arm64");

    // The metadata file lists the platforms and names the index.
    let m: Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
    assert_eq!(m["containerimage.digest"], digest.as_str(), "{m}");
    assert_eq!(
        m["ocibuild.platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64"]),
        "{m}"
    );
    assert_eq!(m["ocibuild.images"].as_array().unwrap().len(), 2, "{m}");
    let errors = schema_errors(&m);
    assert!(errors.is_empty(), "{errors:#?}\n{m:#}");
    let steps = m["ocibuild.steps"].as_array().unwrap();
    assert!(
        steps
            .iter()
            .any(|s| s["id"].as_str().unwrap().starts_with("linux/arm64/")
                && s["platform"] == "linux/amd64"),
        "the arm64 build's build-stage steps ran on the build platform: {steps:#?}"
    );

    // Again: everything is cached, the same index.
    let out = run(&mut c);
    let again = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    assert_eq!(again.lines().last().unwrap(), digest, "{err}");
    assert!(err.contains("0 steps ran"), "{err}");
}

/// The complaints of `docs/metadata.schema.json` (Python's `jsonschema`) about a metadata file.
fn schema_errors(instance: &Value) -> Vec<String> {
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/metadata.schema.json");
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("instance.json");
    fs::write(&f, serde_json::to_vec(instance).unwrap()).unwrap();
    let out = ocibuild_testkit::oracles::python_eval(
        &["jsonschema==4.*"],
        "import json, sys, jsonschema\n\
         v = jsonschema.Draft202012Validator(json.load(open(sys.argv[1])))\n\
         for e in v.iter_errors(json.load(open(sys.argv[2]))):\n    \
             print('/'.join(str(p) for p in e.absolute_path) + ': ' + e.message)\n",
        &[schema.to_str().unwrap(), f.to_str().unwrap()],
    );
    out.lines().map(str::to_string).collect()
}

/// Unpack one platform of the index `oci:LAYOUT:TAG` (skopeo picks the manifest, umoci unpacks
/// it) and return the bundle.
fn unpack_platform(ctx: &TestContext, layout: &Path, tag: &str, arch: &str) -> PathBuf {
    let one = ctx.path(format!("{tag}-one-{arch}"));
    run_ok_stdout(Command::new("skopeo").args([
        "copy",
        "--override-arch",
        arch,
        &format!("oci:{}:{tag}", layout.display()),
        &format!("oci:{}:{arch}", one.display()),
    ]));
    let bundle = ctx.path(format!("{tag}-bundle-{arch}"));
    umoci_unpack(&one, arch, &bundle);
    bundle
}

#[test]
fn a_zero_config_go_app_builds_an_amd64_arm64_index_by_cross_compiling() {
    let ctx = TestContext::new();
    let dir = ctx.tmp_dir("app");
    go_source(&dir);
    let layout = ctx.path("layout");
    let meta = ctx.path("meta.json");
    let out = run(ocibuild()
        .args([
            "build",
            "--platform",
            "linux/amd64,linux/arm64",
            "--cache-dir",
        ])
        .arg(cache())
        .arg("--output")
        .arg(format!("oci:{}:z", layout.display()))
        .arg("--metadata-file")
        .arg(&meta)
        .arg(&dir));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert_eq!(
        stdout.lines().count(),
        1,
        "only the index's digest: {stdout}"
    );
    let index: Value = serde_json::from_str(&run_ok_stdout(Command::new("skopeo").args([
        "inspect",
        "--raw",
        &format!("oci:{}:z", layout.display()),
    ])))
    .unwrap();
    let archs: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(archs, ["amd64", "arm64"], "{index}");
    let mut answers = Vec::new();
    for (arch, machine) in [("amd64", EM_X86_64), ("arm64", EM_AARCH64)] {
        let bundle = unpack_platform(&ctx, &layout, "z", arch);
        let rootfs = bundle.join("rootfs");
        let cfg = skopeo_inspect_config_for(&layout, "z", arch);
        assert_eq!(cfg["architecture"], arch, "{cfg}");
        let entry = cfg["config"]["Entrypoint"][0].as_str().unwrap().to_string();
        let elves = elf_files(&rootfs);
        assert!(
            elves.iter().any(|(_, m)| *m == machine),
            "{arch}: {elves:?}"
        );
        let foreign: Vec<_> = elves.iter().filter(|(_, m)| *m != machine).collect();
        assert!(
            foreign.is_empty(),
            "{arch} image holds other ELF machines: {foreign:?}"
        );
        if arch == "amd64" {
            let (rc, out, e) = runc_run(&bundle, None);
            assert_eq!(rc, 0, "{out}{e}");
            answers.push(out);
        } else {
            let qemu = require_tool("qemu-aarch64-static", "qemu-user-static");
            let bin = rootfs.join(entry.trim_start_matches('/'));
            answers.push(run_ok_stdout(Command::new(qemu).arg(bin)));
        }
    }
    assert!(
        answers[0].contains("1229 primes below 10000"),
        "{answers:?}"
    );
    assert_eq!(
        answers[0].replace("arch: amd64", "arch: ARCH"),
        answers[1].replace("arch: arm64", "arch: ARCH"),
        "the arm64 binary answers as the amd64 one"
    );
    let m: Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
    assert_eq!(
        m["ocibuild.platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64"]),
        "{m}"
    );
    assert_eq!(m["ocibuild.images"].as_array().unwrap().len(), 2, "{m}");
    let errors = schema_errors(&m);
    assert!(errors.is_empty(), "{errors:#?}\n{m:#}");

    // --sign: the index and each platform's manifest get a cosign signature in the layout
    let prefix = ctx.path("cosign");
    run(ocibuild()
        .env("COSIGN_PASSWORD", "multi")
        .args(["generate-key-pair", "--output-key-prefix"])
        .arg(&prefix));
    let signed = ctx.path("signed");
    let out = run(ocibuild()
        .env("COSIGN_PASSWORD", "multi")
        .args([
            "build",
            "--platform",
            "linux/amd64,linux/arm64",
            "--sign",
            "--key",
        ])
        .arg(ctx.path("cosign.key"))
        .arg("--cache-dir")
        .arg(cache())
        .arg("--output")
        .arg(format!("oci:{}:z", signed.display()))
        .arg(&dir));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names: Value =
        serde_json::from_slice(&fs::read(signed.join("index.json")).unwrap()).unwrap();
    let tags: Vec<String> = names["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .map(str::to_string)
        .collect();
    // each platform's manifest; the index's own signature is checked by verify below
    let wanted: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["digest"].as_str().map(str::to_string))
        .collect();
    assert_eq!(wanted.len(), 2, "{index}");
    for d in &wanted {
        let tag = format!("{}.sig", d.replace(':', "-"));
        assert!(tags.contains(&tag), "no {tag} in {tags:?}");
    }
    let verify = run(ocibuild()
        .args(["verify", "--key"])
        .arg(ctx.path("cosign.pub"))
        .arg(format!("oci:{}:z", signed.display())));
    assert!(
        verify.status.success(),
        "verify of the signed index: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    // --attest-sbom: each platform's SBOM is attested to its own manifest (the one written to
    // SBOM-DIR/OS_ARCH/), in the layout beside the index
    let attested = ctx.path("attested");
    let sbom_dir = ctx.path("sboms");
    let out = run(ocibuild()
        .env("COSIGN_PASSWORD", "multi")
        .args([
            "build",
            "--platform",
            "linux/amd64,linux/arm64",
            "--sign",
            "--attest-sbom",
            "--sbom=cyclonedx",
            "--key",
        ])
        .arg(ctx.path("cosign.key"))
        .arg("--sbom-dir")
        .arg(&sbom_dir)
        .arg("--cache-dir")
        .arg(cache())
        .arg("--output")
        .arg(format!("oci:{}:z", attested.display()))
        .arg(&dir));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    for (arch, digest) in ["amd64", "arm64"].iter().zip(&wanted) {
        let statements = layout_attestations(&attested, digest);
        assert_eq!(statements.len(), 1, "{arch}: {statements:#?}");
        let st = &statements[0];
        assert_eq!(st["predicateType"], "https://cyclonedx.org/bom", "{st:#}");
        assert_eq!(
            format!(
                "sha256:{}",
                st["subject"][0]["digest"]["sha256"].as_str().unwrap()
            ),
            *digest,
            "{arch}: the SBOM is attested to its own manifest"
        );
        let written: Value = serde_json::from_slice(
            &fs::read(sbom_dir.join(format!("linux_{arch}")).join("sbom.cdx.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(
            st["predicate"], written,
            "{arch}: the attested SBOM is that platform's"
        );
        let text = st["predicate"].to_string();
        let other = if *arch == "amd64" { "arm64" } else { "amd64" };
        assert!(text.contains(&format!("arch={arch}")), "{arch}: {text}");
        assert!(!text.contains(&format!("arch={other}")), "{arch}: {text}");
    }
}

/// The in-toto statements of the cosign attestations (`sha256-<hex>.att`) of `digest` in a layout.
fn layout_attestations(layout: &Path, digest: &str) -> Vec<Value> {
    use base64::Engine as _;
    let blob = |d: &str| {
        fs::read(
            layout
                .join("blobs/sha256")
                .join(d.trim_start_matches("sha256:")),
        )
        .unwrap()
    };
    let names: Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let tag = format!("{}.att", digest.replace(':', "-"));
    let Some(m) = names["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag.as_str())
    else {
        panic!("no {tag} in {names:#}");
    };
    let manifest: Value = serde_json::from_slice(&blob(m["digest"].as_str().unwrap())).unwrap();
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let envelope: Value =
                serde_json::from_slice(&blob(l["digest"].as_str().unwrap())).unwrap();
            let payload = base64::engine::general_purpose::STANDARD
                .decode(envelope["payload"].as_str().unwrap())
                .unwrap();
            serde_json::from_slice(&payload).unwrap()
        })
        .collect()
}

/// The config of one platform of an index in a layout.
fn skopeo_inspect_config_for(layout: &Path, tag: &str, arch: &str) -> Value {
    let o = run_ok_stdout(Command::new("skopeo").args([
        "inspect",
        "--override-arch",
        arch,
        "--config",
        &format!("oci:{}:{tag}", layout.display()),
    ]));
    serde_json::from_str(&o).unwrap()
}

#[test]
fn a_docker_archive_takes_one_platform() {
    let ctx = TestContext::new();
    let dir = ctx.tmp_dir("ctx");
    fs::write(dir.join("Dockerfile"), "FROM scratch\nCOPY Dockerfile /\n").unwrap();
    let out = run(ocibuild()
        .args(["build", "--platform", "linux/amd64,linux/arm64", "--output"])
        .arg(format!("docker-archive:{}", ctx.path("x.tar").display()))
        .arg(&dir));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("a docker-archive holds one image") && err.contains("give one --platform"),
        "{err}"
    );
    assert!(!ctx.path("x.tar").exists());

    // one platform of the same build writes a docker-archive whose config names it
    let layout = ctx.path("l");
    let out = run(ocibuild()
        .args(["build", "--platform", "linux/arm64", "--output"])
        .arg(format!("docker-archive:{}", ctx.path("x.tar").display()))
        .arg("--output")
        .arg(format!("oci:{}:a", layout.display()))
        .arg(&dir));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg = skopeo_inspect_config(&format!("docker-archive:{}", ctx.path("x.tar").display()));
    assert_eq!(cfg["architecture"], "arm64", "{cfg}");
}

#[test]
fn a_foreign_run_step_runs_under_binfmt_or_fails_early_naming_the_fix() {
    let ctx = TestContext::new();
    let dir = ctx.tmp_dir("ctx");
    // the RUN step runs an arm64 binary on this (amd64) host
    fs::write(
        dir.join("Dockerfile"),
        "FROM ocibuild:static\nRUN [\"/definitely-not-run\"]\n",
    )
    .unwrap();
    if std::env::consts::ARCH != "x86_64" {
        panic!("this test expects an amd64 host (arm64 is the foreign platform it builds)");
    }
    let doctor = run_ok_stdout(ocibuild().args(["doctor", "--json"]));
    let d: Value = serde_json::from_str(&doctor).unwrap();
    let arm = d["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["platform"] == "linux/arm64")
        .cloned()
        .unwrap();
    let text = run_ok_stdout(ocibuild().arg("doctor"));
    assert!(
        text.contains("linux/arm64") && text.contains("platforms:"),
        "{text}"
    );
    let out = run(ocibuild()
        .args(["build", "--platform", "linux/arm64", "--cache-dir"])
        .arg(cache())
        .arg(&dir));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    if arm["can_run"] == true {
        // emulated: the step ran and failed only because the file is not there
        assert!(err.contains("definitely-not-run"), "{err}");
        assert!(!err.contains("needs emulation"), "{err}");
    } else {
        assert!(
            err.contains("needs emulation") && err.contains("qemu-user-static"),
            "{err}"
        );
        assert!(err.contains("FROM --platform=$BUILDPLATFORM"), "{err}");
        assert!(text.contains("NO") && text.contains("fix:"), "{text}");
    }
}

#[test]
fn base_locks_pin_each_platform_of_a_multi_platform_build() {
    let ctx = TestContext::new();
    let mut locks = Vec::new();
    // bookworm locks: the default --distro is trixie, so only the locks can make it bookworm
    for arch in ["amd64", "arm64"] {
        let lock = ctx.path(format!("static-{arch}.lock"));
        run_ok_stdout(
            ocibuild()
                .args([
                    "base",
                    "lock",
                    "--profile",
                    "static",
                    "--distro",
                    "bookworm",
                ])
                .args(["--arch", arch, "--cache-dir"])
                .arg(cache())
                .arg("--output")
                .arg(&lock),
        );
        locks.push(lock);
    }
    let dir = ctx.tmp_dir("ctx");
    fs::write(
        dir.join("Dockerfile"),
        "FROM ocibuild:static\nCOPY Dockerfile /\n",
    )
    .unwrap();
    let layout = ctx.path("layout");
    let build = |locks: &[&PathBuf]| {
        let mut c = ocibuild();
        c.args([
            "build",
            "--platform",
            "linux/amd64,linux/arm64",
            "--cache-dir",
        ])
        .arg(cache())
        .arg("--output")
        .arg(format!("oci:{}:a", layout.display()));
        for l in locks {
            c.arg("--base-lock").arg(l);
        }
        run(c.arg(&dir))
    };
    let out = build(&[&locks[0], &locks[1]]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(err.matches("from the lockfile").count(), 2, "{err}");
    for arch in ["amd64", "arm64"] {
        let cfg = skopeo_inspect_config_for(&layout, "a", arch);
        assert_eq!(cfg["architecture"], arch, "{cfg}");
        let release = cfg["config"]["Labels"]["dev.ocibuild.base.release"].to_string();
        assert!(release.contains("bookworm"), "{arch}: {cfg}");
    }
    // only the amd64 lock: the arm64 platform has none of its architecture, and says so
    let out = build(&[&locks[0]]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("locks amd64 packages, the build is for arm64")
            && err.contains("one --base-lock per platform"),
        "{err}"
    );
}

/// A small express-like Node service with two pure-JavaScript dependencies:
/// `node server.js --answer` prints what its routes answer and exits.
fn node_app(dir: &Path) {
    fs::write(
        dir.join("package.json"),
        r#"{
  "name": "greeter",
  "version": "1.2.0",
  "private": true,
  "main": "server.js",
  "scripts": { "start": "node server.js" },
  "dependencies": { "ms": "2.1.3", "escape-html": "1.0.3" }
}
"#,
    )
    .unwrap();
    fs::write(
        dir.join("package-lock.json"),
        r#"{
  "name": "greeter",
  "version": "1.2.0",
  "lockfileVersion": 3,
  "requires": true,
  "packages": {
    "": {
      "name": "greeter",
      "version": "1.2.0",
      "dependencies": { "escape-html": "1.0.3", "ms": "2.1.3" }
    },
    "node_modules/escape-html": {
      "version": "1.0.3",
      "integrity": "sha512-NiSupZ4OeuGwr68lGIeym/ksIZMJodUGOSCZ/FSnTxcrekbvqrgdUxlJOMpijaKZVjAJrWrGs/6Jy8OMuyj9ow==",
      "license": "MIT"
    },
    "node_modules/ms": {
      "version": "2.1.3",
      "integrity": "sha512-6FlzubTLZG3J2a/NVCAleEhjzq5oxgHyaCU9yYXvcLsvoVaHJq/s5xXI6/XXP6tz7R9xAOtHnSO/tXtF3WRTlA==",
      "license": "MIT"
    }
  }
}
"#,
    )
    .unwrap();
    fs::write(
        dir.join("server.js"),
        r#"'use strict';
// GET /greet/:name answers a greeting, GET /timeout a duration; `--answer` prints what the
// routes answer for fixed inputs and exits.
const http = require('http');
const ms = require('ms');
const escapeHtml = require('escape-html');

const routes = [
  [/^\/greet\/([^/]+)$/, (m) => ({ status: 200, body: `<p>Hello, ${escapeHtml(decodeURIComponent(m[1]))}!</p>` })],
  [/^\/timeout$/, () => ({ status: 200, body: `timeout ${ms(90061000, { long: true })} = ${ms('25h')} ms` })],
];

function handle(path) {
  for (const [re, fn] of routes) {
    const m = path.match(re);
    if (m) return fn(m);
  }
  return { status: 404, body: 'not found' };
}

if (process.argv.includes('--answer')) {
  for (const p of ['/greet/%3Cb%3EAda', '/timeout', '/nope']) {
    const r = handle(p);
    console.log(`${p} ${r.status} ${r.body}`);
  }
  console.log(`arch: ${process.arch}`);
} else {
  const port = Number(process.env.PORT || 3000);
  http.createServer((req, res) => {
    const r = handle(req.url);
    res.writeHead(r.status, { 'content-type': 'text/html; charset=utf-8' });
    res.end(r.body);
  }).listen(port, () => console.log(`listening on ${port}`));
}
"#,
    )
    .unwrap();
}

/// A small Python service with one pure dependency (a none-any wheel):
/// `python app.py --answer` prints its answers for fixed cases and exits.
fn python_app(dir: &Path) {
    fs::write(dir.join("requirements.txt"), "packaging==24.2\n").unwrap();
    fs::write(
        dir.join("app.py"),
        r#""""Answers whether a release satisfies a version range: GET /check/<version>?spec=<spec>."""
import platform
import sys

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version


def check(version: str, spec: str) -> str:
    try:
        ok = Version(version) in SpecifierSet(spec, prereleases=True)
    except (InvalidVersion, InvalidSpecifier) as e:
        return f"invalid: {e}"
    return "yes" if ok else "no"


def serve(port: int) -> None:
    # imported here: --answer needs none of the server's modules
    from http.server import BaseHTTPRequestHandler, HTTPServer
    from urllib.parse import parse_qs, urlsplit

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path.startswith("/check/"):
                spec = parse_qs(url.query).get("spec", [""])[0]
                body, status = check(url.path[len("/check/"):], spec), 200
            else:
                body, status = "not found", 404
            self.send_response(status)
            self.send_header("content-type", "text/plain; charset=utf-8")
            self.end_headers()
            self.wfile.write(body.encode())

    HTTPServer(("", port), Handler).serve_forever()


def main() -> None:
    if "--answer" in sys.argv:
        for v, s in [("2.4.1", ">=2.0,<3"), ("3.0.0rc1", "<3"), ("1.0", "~=1.0.0"), ("x", ">1")]:
            print(f"{v} {s}: {check(v, s)}")
        print(f"arch: {platform.machine()}")
        return
    serve(8000)


if __name__ == "__main__":
    main()
"#,
    )
    .unwrap();
}

/// `build --platform linux/amd64,linux/arm64 DIR` into `oci:LAYOUT:TAG`, with `extra` flags:
/// the index's digest, after checking that it succeeded.
fn build_index(dir: &Path, layout: &Path, tag: &str, extra: &[&str]) -> (String, String) {
    let out = run(ocibuild()
        .args([
            "build",
            "--platform",
            "linux/amd64,linux/arm64",
            "--cache-dir",
        ])
        .arg(cache())
        .args(extra)
        .arg("--output")
        .arg(format!("oci:{}:{tag}", layout.display()))
        .arg(dir));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    (stdout.trim().to_string(), stderr)
}

/// The index in `oci:LAYOUT:TAG` as skopeo reads it, and each platform's manifest (by
/// architecture, from the layout's blobs).
fn index_and_manifests(layout: &Path, tag: &str) -> (Value, Vec<(String, String, Value)>) {
    let index: Value = serde_json::from_str(&run_ok_stdout(Command::new("skopeo").args([
        "inspect",
        "--raw",
        &format!("oci:{}:{tag}", layout.display()),
    ])))
    .unwrap();
    let manifests = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let d = m["digest"].as_str().unwrap().to_string();
            let blob = layout
                .join("blobs/sha256")
                .join(d.trim_start_matches("sha256:"));
            let man: Value = serde_json::from_slice(&fs::read(blob).unwrap()).unwrap();
            (
                m["platform"]["architecture"].as_str().unwrap().to_string(),
                d,
                man,
            )
        })
        .collect();
    (index, manifests)
}

fn layer_digests(manifest: &Value) -> Vec<String> {
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

/// The app's last `n` layers are the same blobs in both platforms' manifests (built once on
/// the build platform), and the runtime bases differ (each architecture's packages).
fn assert_app_layers_shared(manifests: &[(String, String, Value)], n: usize) {
    let archs: Vec<&str> = manifests.iter().map(|(a, _, _)| a.as_str()).collect();
    assert_eq!(archs, ["amd64", "arm64"]);
    let amd = layer_digests(&manifests[0].2);
    let arm = layer_digests(&manifests[1].2);
    assert_eq!(amd.len(), arm.len(), "{amd:?}\n{arm:?}");
    assert!(amd.len() > n);
    assert_eq!(
        amd[amd.len() - n..],
        arm[arm.len() - n..],
        "the app layers are shared by both manifests"
    );
    assert_ne!(amd[0], arm[0], "each platform has its own runtime base");
}

/// Unpack both platforms of `oci:LAYOUT:TAG`: every ELF file of each is of its machine, and
/// `program` (an image path) is one. Returns the amd64 and arm64 bundles.
fn unpack_and_check_elves(
    ctx: &TestContext,
    layout: &Path,
    tag: &str,
    program: &str,
) -> (PathBuf, PathBuf) {
    let mut bundles = Vec::new();
    for (arch, machine) in [("amd64", EM_X86_64), ("arm64", EM_AARCH64)] {
        let bundle = unpack_platform(ctx, layout, tag, arch);
        let rootfs = bundle.join("rootfs");
        let prog = rootfs.join(program.trim_start_matches('/'));
        assert_eq!(
            elf_machine(&fs::canonicalize(&prog).unwrap()),
            Some(machine),
            "{arch}: {program}"
        );
        let foreign: Vec<_> = elf_files(&rootfs)
            .into_iter()
            .filter(|(_, m)| *m != machine)
            .collect();
        assert!(
            foreign.is_empty(),
            "{arch} image holds other ELF machines: {foreign:?}"
        );
        bundles.push(bundle);
    }
    let arm = bundles.pop().unwrap();
    (bundles.pop().unwrap(), arm)
}

/// Run the arm64 image's `program` with `args` under `qemu-aarch64-static` directly (its
/// libraries from the image's root; `argv0` as the image names the program), in `cwd` (an
/// image path).
fn run_arm64(bundle: &Path, argv0: &str, program: &str, cwd: &str, args: &[&str]) -> String {
    let qemu = require_tool("qemu-aarch64-static", "qemu-user-static");
    let rootfs = bundle.join("rootfs");
    run_ok_stdout(
        Command::new(qemu)
            .arg("-L")
            .arg(&rootfs)
            .args(["-0", argv0])
            .arg(rootfs.join(program.trim_start_matches('/')))
            .args(args)
            .current_dir(rootfs.join(cwd.trim_start_matches('/')))
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("LANG", "C.UTF-8"),
    )
}

#[test]
fn a_zero_config_node_app_builds_an_amd64_arm64_index_sharing_its_app_layers() {
    let ctx = TestContext::new();
    let dir = ctx.tmp_dir("greeter");
    node_app(&dir);
    let layout = ctx.path("layout");
    let (digest, _) = build_index(&dir, &layout, "n", &[]);
    assert!(digest.starts_with("sha256:"), "{digest}");
    let (index, manifests) = index_and_manifests(&layout, "n");
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2, "{index}");
    // node_modules (npm ci --omit=dev) and the app: built once, in both manifests
    assert_app_layers_shared(&manifests, 2);

    let (amd, arm) = unpack_and_check_elves(&ctx, &layout, "n", "/usr/bin/node");
    let cfg = skopeo_inspect_config_for(&layout, "n", "arm64");
    let entry: Vec<String> = cfg["config"]["Entrypoint"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(entry, ["/usr/bin/node", "server.js"], "{cfg}");
    let workdir = cfg["config"]["WorkingDir"].as_str().unwrap().to_string();
    let mut args: Vec<&str> = entry.iter().map(String::as_str).collect();
    args.push("--answer");
    let (rc, amd_out, e) = runc_run(&amd, Some(&args));
    assert_eq!(rc, 0, "{amd_out}{e}");
    let arm_out = run_arm64(
        &arm,
        "/usr/bin/node",
        "/usr/bin/node",
        &workdir,
        &["server.js", "--answer"],
    );
    assert!(
        amd_out.contains("/greet/%3Cb%3EAda 200 <p>Hello, &lt;b&gt;Ada!</p>")
            && amd_out.contains("timeout 1 day = 90000000 ms"),
        "{amd_out}"
    );
    assert_eq!(
        amd_out.replace("arch: x64", "arch: ARCH"),
        arm_out.replace("arch: arm64", "arch: ARCH"),
        "the arm64 image answers as the amd64 one"
    );

    // --scan on each platform: a finding in the shared node_modules stops the build (exit 3)
    // before anything is written, naming the platform; each platform gets its own report
    let db = ctx.tmp_dir("osv");
    fs::write(
        db.join("GHSA-TEST-ms01.json"),
        r#"{"schema_version": "1.6.0", "id": "GHSA-TEST-ms01", "aliases": ["CVE-2099-7001"],
  "modified": "2026-12-01T00:00:00Z",
  "affected": [{"package": {"ecosystem": "npm", "name": "ms"},
    "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "2.1.4"}]}]}]}"#,
    )
    .unwrap();
    let blocked = ctx.path("blocked");
    let summary = ctx.path("summary.md");
    let out = run(ocibuild()
        .args([
            "build",
            "--platform",
            "linux/amd64,linux/arm64",
            "--scan",
            "--db",
        ])
        .arg(&db)
        .arg("--scan-report")
        .arg(ctx.path("scan.json"))
        .arg("--summary")
        .arg(&summary)
        .arg("--cache-dir")
        .arg(cache())
        .arg("--output")
        .arg(format!("oci:{}:n", blocked.display()))
        .arg(&dir));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("GHSA-TEST-ms01") && err.contains("image for linux/amd64 has vulnerabilities"),
        "{err}"
    );
    assert!(!blocked.exists(), "the gate wrote the output");
    let report: Value =
        serde_json::from_slice(&fs::read(ctx.path("scan.linux_amd64.json")).unwrap()).unwrap();
    assert_eq!(report["findings"][0]["id"], "GHSA-TEST-ms01", "{report:#}");
    let md = fs::read_to_string(&summary).unwrap();
    assert!(md.contains("| vulnerability scan (linux/amd64) |"), "{md}");

    // allowed, with --sbom and --check: an SBOM per platform (its architecture's Debian
    // packages), attached to that platform's manifest; the summary's rows name the platform
    let allow = ctx.path("allow.toml");
    fs::write(
        &allow,
        "[[ignore]]\nid = \"GHSA-TEST-ms01\"\nreason = \"test: not reachable\"\nexpires = \"2099-01-01\"\n",
    )
    .unwrap();
    let sboms = ctx.path("sboms");
    let summary = ctx.path("summary2.md");
    let (again, _) = build_index(
        &dir,
        &layout,
        "n",
        &[
            "--scan",
            "--db",
            db.to_str().unwrap(),
            "--allowlist",
            allow.to_str().unwrap(),
            "--sbom",
            "--sbom-dir",
            sboms.to_str().unwrap(),
            "--check",
            "--summary",
            summary.to_str().unwrap(),
        ],
    );
    assert_eq!(again, digest, "the same index");
    assert!(!sboms.join("sbom.cdx.json").exists(), "only per platform");
    for (arch, _, _) in &manifests {
        let cdx: Value = serde_json::from_slice(
            &fs::read(sboms.join(format!("linux_{arch}/sbom.cdx.json"))).unwrap(),
        )
        .unwrap();
        let purls: Vec<&str> = cdx["components"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["purl"].as_str())
            .collect();
        assert!(
            purls
                .iter()
                .any(|p| p.starts_with("pkg:deb/debian/nodejs@")
                    && p.contains(&format!("arch={arch}"))),
            "{arch}: {purls:?}"
        );
        assert!(
            !purls.iter().any(|p| p.starts_with("pkg:deb/")
                && !p.contains(&format!("arch={arch}"))
                && !p.contains("arch=all")),
            "{arch}: another architecture's packages: {purls:?}"
        );
        assert!(purls.contains(&"pkg:npm/ms@2.1.3"), "{arch}: {purls:?}");
        assert!(sboms.join(format!("linux_{arch}/sbom.spdx.json")).is_file());
    }
    // the layout: each platform's manifest is the subject of its two SBOM referrers
    let names: Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let mut subjects: Vec<String> = names["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| {
            m["artifactType"]
                .as_str()
                .is_some_and(|t| t.contains("cyclonedx") || t.contains("spdx"))
        })
        .map(|m| {
            let blob = layout
                .join("blobs/sha256")
                .join(m["digest"].as_str().unwrap().trim_start_matches("sha256:"));
            let a: Value = serde_json::from_slice(&fs::read(blob).unwrap()).unwrap();
            a["subject"]["digest"].as_str().unwrap().to_string()
        })
        .collect();
    subjects.sort();
    let mut want: Vec<String> = manifests
        .iter()
        .flat_map(|(_, d, _)| [d.clone(), d.clone()])
        .collect();
    want.sort();
    assert_eq!(subjects, want, "{names:#}");
    let md = fs::read_to_string(&summary).unwrap();
    for p in ["linux/amd64", "linux/arm64"] {
        for row in ["checks", "vulnerability scan", "SBOM"] {
            assert!(
                md.contains(&format!("| {row} ({p}) |")),
                "{row} ({p}): {md}"
            );
        }
    }
}

#[test]
fn a_zero_config_python_app_builds_an_amd64_arm64_index_sharing_its_venv() {
    let ctx = TestContext::new();
    let dir = ctx.tmp_dir("versions");
    python_app(&dir);
    let layout = ctx.path("layout");
    let (digest, _) = build_index(&dir, &layout, "p", &[]);
    assert!(digest.starts_with("sha256:"), "{digest}");
    let (_, manifests) = index_and_manifests(&layout, "p");
    // the venv (pip install of a none-any wheel) and the app: built once, in both manifests
    assert_app_layers_shared(&manifests, 2);
    let (amd, arm) = unpack_and_check_elves(&ctx, &layout, "p", "/usr/bin/python3");
    let cfg = skopeo_inspect_config_for(&layout, "p", "arm64");
    let entry: Vec<String> = cfg["config"]["Entrypoint"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(entry[1], "app.py", "{cfg}");
    let workdir = cfg["config"]["WorkingDir"].as_str().unwrap().to_string();
    let mut args: Vec<&str> = entry.iter().map(String::as_str).collect();
    args.push("--answer");
    let (rc, amd_out, e) = runc_run(&amd, Some(&args));
    assert_eq!(rc, 0, "{amd_out}{e}");
    // the venv's python is a symlink to the image's /usr/bin/python3: run that under qemu,
    // named as the venv's (Python finds its venv from argv[0])
    let real = fs::read_link(arm.join("rootfs/usr/bin/python3")).unwrap();
    let program = format!("/usr/bin/{}", real.display());
    let arm_out = run_arm64(&arm, &entry[0], &program, &workdir, &["app.py", "--answer"]);
    assert!(
        amd_out.contains("2.4.1 >=2.0,<3: yes") && amd_out.contains("3.0.0rc1 <3: no"),
        "{amd_out}"
    );
    assert_eq!(
        amd_out.replace("arch: x86_64", "arch: ARCH"),
        arm_out.replace("arch: aarch64", "arch: ARCH"),
        "the arm64 image answers as the amd64 one"
    );
}

/// Native code cannot be shared: a Node addon (the lockfile says it has an install script)
/// or a Python wheel with a compiled module (found as an x86-64 ELF file in the venv built on
/// this host) must be built for arm64, which needs emulation: without binfmt_misc the build
/// stops before building anything for the host's platform, saying what it found and the fix.
#[test]
fn native_addons_and_wheels_need_emulation_for_another_platform_and_say_so() {
    let ctx = TestContext::new();
    if std::env::consts::ARCH != "x86_64" {
        panic!("this test expects an amd64 host (arm64 is the foreign platform it builds)");
    }
    let doctor = run_ok_stdout(ocibuild().args(["doctor", "--json"]));
    let d: Value = serde_json::from_str(&doctor).unwrap();
    let can_run = d["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["platform"] == "linux/arm64" && p["can_run"] == true);

    let node = ctx.tmp_dir("hasher");
    fs::write(
        node.join("package.json"),
        r#"{"name": "hasher", "version": "0.1.0", "main": "index.js", "dependencies": {"bcrypt": "5.1.1"}}"#,
    )
    .unwrap();
    fs::write(
        node.join("package-lock.json"),
        r#"{"name": "hasher", "version": "0.1.0", "lockfileVersion": 3, "requires": true,
 "packages": {"": {"name": "hasher", "version": "0.1.0", "dependencies": {"bcrypt": "5.1.1"}},
  "node_modules/bcrypt": {"version": "5.1.1", "hasInstallScript": true, "license": "MIT",
   "integrity": "sha512-AGBHOG5hPYZ5Xl9KXzU5iKq9516yEmvCKDg3ecP5kX2aB6UqTeXZxk2ELnDgDm6BQSMlLt9rDB4LoSMx0rYwww=="}}}"#,
    )
    .unwrap();
    fs::write(
        node.join("index.js"),
        "console.log(require('bcrypt').hashSync('x', 4).length)\n",
    )
    .unwrap();
    let out = run(ocibuild()
        .args([
            "build",
            "--platform",
            "linux/amd64,linux/arm64",
            "--network",
            "none",
            "--cache-dir",
        ])
        .arg(cache())
        .arg(&node));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    if !can_run {
        assert!(
            err.contains("building the node app for linux/arm64")
                && err.contains("package-lock.json: 1 package with install scripts (bcrypt)")
                && err.contains("needs emulation")
                && err.contains("qemu-user-static"),
            "{err}"
        );
        assert!(
            !err.contains("platform linux/amd64") && !err.contains("npm ci"),
            "nothing was built for amd64 first: {err}"
        );
    }

    // A wheel with a compiled module: the plan cannot tell from requirements.txt; the venv
    // built on this host holds an x86-64 ELF file, which is named.
    let py = ctx.tmp_dir("markup");
    fs::write(py.join("requirements.txt"), "markupsafe==3.0.2\n").unwrap();
    fs::write(
        py.join("main.py"),
        "from markupsafe import escape\nprint(escape('<b>x</b>'))\n",
    )
    .unwrap();
    let out = run(ocibuild()
        .args(["build", "--platform", "linux/arm64", "--cache-dir"])
        .arg(cache())
        .arg(&py));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    if !can_run {
        assert!(
            err.contains("the layers built on linux/amd64 hold its native code")
                && err.contains("markupsafe/_speedups.")
                && err.contains("(x86-64)")
                && err.contains("needs emulation")
                && err.contains("qemu-user-static"),
            "{err}"
        );
    }
}

/// Java: the compiled classes are built once (javac on the build platform) and shared; each
/// platform runs on its architecture's JRE. (Cheap: the manifests only; the JVM is not run.)
#[test]
fn a_zero_config_java_app_shares_its_classes_between_platforms() {
    let ctx = TestContext::new();
    let app = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/apps/java-plain");
    let layout = ctx.path("layout");
    let (digest, _) = build_index(&app, &layout, "j", &[]);
    assert!(digest.starts_with("sha256:"), "{digest}");
    let (_, manifests) = index_and_manifests(&layout, "j");
    assert_app_layers_shared(&manifests, 1);
    for arch in ["amd64", "arm64"] {
        let cfg = skopeo_inspect_config_for(&layout, "j", arch);
        assert_eq!(cfg["architecture"], arch, "{cfg}");
    }
}
