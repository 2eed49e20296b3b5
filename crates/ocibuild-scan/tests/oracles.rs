//! Differential tests: the native version orderings against the real tools on many generated
//! pairs — `dpkg --compare-versions`, Python's `packaging` (PEP 440) and npm's `semver` — and
//! the CVSS calculators against PyPI's `cvss` package (RedHat's implementation of the FIRST
//! specifications).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cmp::Ordering;
use std::io::Write;

use ocibuild_scan::version::{dpkg, pep440, semver};
use ocibuild_testkit::oracles::{node_eval, python_eval};

/// A small deterministic generator (xorshift64*), so a failure reproduces.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
    fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}

/// Pairs of a version and either a fresh one or a near variant of it (so equal and adjacent
/// versions are common).
fn pairs(rng: &mut Rng, n: usize, gen_one: impl Fn(&mut Rng) -> String) -> Vec<(String, String)> {
    (0..n)
        .map(|_| {
            let a = gen_one(rng);
            let b = if rng.chance(40) {
                a.clone()
            } else {
                gen_one(rng)
            };
            // perturb: a trailing part appended or the last char changed
            let b = if rng.chance(30) {
                format!("{b}{}", rng.pick(&[".0", "1", "~1", "+1", ".1", "a"]))
            } else {
                b
            };
            (a, b)
        })
        .collect()
}

fn deb_version(r: &mut Rng) -> String {
    let mut s = String::new();
    if r.chance(20) {
        s.push_str(&format!("{}:", r.below(3)));
    }
    s.push_str(&r.below(12).to_string());
    for _ in 0..r.below(4) {
        s.push_str(r.pick(&[".", ".", "+", "~", "", "."]));
        if r.chance(70) {
            s.push_str(&r.below(20).to_string());
        } else {
            s.push_str(r.pick(&["a", "b", "rc", "dfsg", "git", "beta", "z"]));
        }
    }
    if r.chance(70) {
        s.push('-');
        s.push_str(&r.below(10).to_string());
        if r.chance(40) {
            s.push_str(r.pick(&[
                "+deb12u", "~deb12u", "+b", "ubuntu", "~bpo12+", ".", "+deb13u",
            ]));
            s.push_str(&r.below(5).to_string());
        }
    }
    s
}

fn ord(c: &str) -> Ordering {
    match c.trim() {
        "-1" => Ordering::Less,
        "0" => Ordering::Equal,
        "1" => Ordering::Greater,
        other => panic!("oracle said {other}"),
    }
}

#[test]
fn dpkg_ordering_agrees_with_dpkg() {
    let dpkg_bin = ocibuild_testkit::require_tool("dpkg", "dpkg");
    let mut rng = Rng(0x5eed_0001);
    let ps = pairs(&mut rng, 600, deb_version);
    let mut input = tempfile::NamedTempFile::new().unwrap();
    for (a, b) in &ps {
        writeln!(input, "{a} {b}").unwrap();
    }
    let script = format!(
        "while read a b; do if {d} --compare-versions \"$a\" lt \"$b\"; then echo -1; \
         elif {d} --compare-versions \"$a\" eq \"$b\"; then echo 0; else echo 1; fi; done < {f}",
        d = dpkg_bin.display(),
        f = input.path().display()
    );
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(lines.len(), ps.len());
    let mut bad = Vec::new();
    for ((a, b), o) in ps.iter().zip(lines) {
        let mine = dpkg::compare(a, b);
        if mine != Some(ord(o)) {
            bad.push(format!("{a} vs {b}: dpkg {o}, ours {mine:?}"));
        }
    }
    assert!(
        bad.is_empty(),
        "{} disagreements:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

fn pep_version(r: &mut Rng) -> String {
    let mut s = String::new();
    if r.chance(8) {
        s.push_str(&format!("{}!", r.below(3)));
    }
    s.push_str(&r.below(6).to_string());
    for _ in 0..r.below(4) {
        s.push('.');
        s.push_str(&r.below(12).to_string());
    }
    if r.chance(35) {
        s.push_str(r.pick(&["", ".", "-", "_"]));
        s.push_str(r.pick(&["a", "b", "rc", "c", "alpha", "beta", "pre", "preview", "RC"]));
        if r.chance(80) {
            s.push_str(&r.below(12).to_string());
        }
    }
    if r.chance(20) {
        if r.chance(30) {
            s.push_str(&format!("-{}", r.below(5)));
        } else {
            s.push_str(r.pick(&[".post", "post", "-post", ".r", ".rev", "_post"]));
            if r.chance(80) {
                s.push_str(&r.below(5).to_string());
            }
        }
    }
    if r.chance(20) {
        s.push_str(r.pick(&[".dev", "dev", "-dev", "_dev"]));
        if r.chance(80) {
            s.push_str(&r.below(5).to_string());
        }
    }
    if r.chance(10) {
        s.push('+');
        s.push_str(r.pick(&["ubuntu.1", "5", "abc.7", "local-2", "1.deb", "x_3"]));
    }
    s
}

#[test]
fn pep440_ordering_agrees_with_packaging() {
    let mut rng = Rng(0x5eed_0002);
    let mut ps = pairs(&mut rng, 3000, pep_version);
    // and a few that are not versions at all
    for bad in ["1.0.x", "latest", "1..0", "1.0+", "v", "1.0-dev-1-"] {
        ps.push((bad.to_string(), "1.0".to_string()));
    }
    let mut input = tempfile::NamedTempFile::new().unwrap();
    for (a, b) in &ps {
        writeln!(input, "{a}\t{b}").unwrap();
    }
    let script = r#"
import sys
from packaging.version import Version, InvalidVersion
for line in open(sys.argv[1]):
    a, b = line.rstrip('\n').split('\t')
    try:
        va, vb = Version(a), Version(b)
    except InvalidVersion:
        print('invalid'); continue
    print(-1 if va < vb else (0 if va == vb else 1))
"#;
    let out = python_eval(
        &["packaging==24.*"],
        script,
        &[input.path().to_str().unwrap()],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), ps.len());
    for want in ["-1", "0", "1"] {
        let n = lines.iter().filter(|l| **l == want).count();
        assert!(
            n > 300,
            "only {n} pairs compare {want}: the generator is too narrow"
        );
    }
    let mut bad = Vec::new();
    for ((a, b), o) in ps.iter().zip(lines) {
        let mine = pep440::compare(a, b);
        let theirs = (o != "invalid").then(|| ord(o));
        if mine != theirs {
            bad.push(format!("{a} vs {b}: packaging {o}, ours {mine:?}"));
        }
    }
    assert!(
        bad.is_empty(),
        "{} disagreements:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

fn sem_version(r: &mut Rng) -> String {
    let mut s = format!("{}.{}.{}", r.below(4), r.below(12), r.below(12));
    if r.chance(40) {
        s.push('-');
        for i in 0..=r.below(3) {
            if i > 0 {
                s.push('.');
            }
            if r.chance(50) {
                s.push_str(&r.below(15).to_string());
            } else {
                s.push_str(r.pick(&["alpha", "beta", "rc", "pre", "x-1", "Alpha", "0a"]));
            }
        }
    }
    if r.chance(15) {
        s.push_str(r.pick(&["+build.1", "+sha.5114f85", "+001"]));
    }
    s
}

#[test]
fn semver_ordering_agrees_with_npm_semver() {
    let mut rng = Rng(0x5eed_0003);
    let ps: Vec<(String, String)> = (0..3000)
        .map(|_| {
            let a = sem_version(&mut rng);
            let b = if rng.chance(30) {
                a.clone()
            } else {
                sem_version(&mut rng)
            };
            (a, b)
        })
        .collect();
    let mut input = tempfile::NamedTempFile::new().unwrap();
    for (a, b) in &ps {
        writeln!(input, "{a} {b}").unwrap();
    }
    let script = "const semver = require('semver'); const fs = require('fs');\n\
const out = [];\n\
for (const line of fs.readFileSync(process.argv[1], 'utf8').split('\\n')) {\n\
  if (!line) continue; const [a, b] = line.split(' ');\n\
  out.push(String(semver.compare(a, b)));\n\
}\n\
console.log(out.join('\\n'));";
    let out = node_eval(&["semver@7"], script, &[input.path().to_str().unwrap()]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), ps.len());
    let mut bad = Vec::new();
    for ((a, b), o) in ps.iter().zip(lines) {
        let mine = semver::compare(a, b);
        if mine != Some(ord(o)) {
            bad.push(format!("{a} vs {b}: semver {o}, ours {mine:?}"));
        }
    }
    assert!(
        bad.is_empty(),
        "{} disagreements:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

fn v3_vector(r: &mut Rng) -> String {
    format!(
        "CVSS:{}/AV:{}/AC:{}/PR:{}/UI:{}/S:{}/C:{}/I:{}/A:{}",
        r.pick(&["3.0", "3.1"]),
        r.pick(&["N", "A", "L", "P"]),
        r.pick(&["L", "H"]),
        r.pick(&["N", "L", "H"]),
        r.pick(&["N", "R"]),
        r.pick(&["U", "C"]),
        r.pick(&["H", "L", "N"]),
        r.pick(&["H", "L", "N"]),
        r.pick(&["H", "L", "N"]),
    )
}

fn v2_vector(r: &mut Rng) -> String {
    let mut s = format!(
        "AV:{}/AC:{}/Au:{}/C:{}/I:{}/A:{}",
        r.pick(&["L", "A", "N"]),
        r.pick(&["H", "M", "L"]),
        r.pick(&["M", "S", "N"]),
        r.pick(&["N", "P", "C"]),
        r.pick(&["N", "P", "C"]),
        r.pick(&["N", "P", "C"]),
    );
    if r.chance(25) {
        s.push_str(&format!(
            "/E:{}/RL:{}/RC:{}",
            r.pick(&["U", "POC", "F", "H", "ND"]),
            r.pick(&["OF", "TF", "W", "U", "ND"]),
            r.pick(&["UC", "UR", "C", "ND"])
        ));
    }
    s
}

fn v4_vector(r: &mut Rng) -> String {
    let mut s = format!(
        "CVSS:4.0/AV:{}/AC:{}/AT:{}/PR:{}/UI:{}/VC:{}/VI:{}/VA:{}/SC:{}/SI:{}/SA:{}",
        r.pick(&["N", "A", "L", "P"]),
        r.pick(&["L", "H"]),
        r.pick(&["N", "P"]),
        r.pick(&["N", "L", "H"]),
        r.pick(&["N", "P", "A"]),
        r.pick(&["H", "L", "N"]),
        r.pick(&["H", "L", "N"]),
        r.pick(&["H", "L", "N"]),
        r.pick(&["H", "L", "N"]),
        r.pick(&["H", "L", "N"]),
        r.pick(&["H", "L", "N"]),
    );
    if r.chance(30) {
        s.push_str(&format!("/E:{}", r.pick(&["A", "P", "U"])));
    }
    if r.chance(20) {
        s.push_str(&format!(
            "/CR:{}/IR:{}/AR:{}",
            r.pick(&["H", "M", "L"]),
            r.pick(&["H", "M", "L"]),
            r.pick(&["H", "M", "L"])
        ));
    }
    if r.chance(15) {
        s.push_str(&format!("/MSI:{}", r.pick(&["S", "H", "L", "N"])));
    }
    s
}

#[test]
fn cvss_scores_agree_with_the_cvss_package() {
    let mut rng = Rng(0x5eed_0004);
    let mut vectors: Vec<String> = (0..1500).map(|_| v3_vector(&mut rng)).collect();
    vectors.extend((0..2500).map(|_| v4_vector(&mut rng)));
    vectors.extend((0..1500).map(|_| v2_vector(&mut rng)));
    let mut input = tempfile::NamedTempFile::new().unwrap();
    for v in &vectors {
        writeln!(input, "{v}").unwrap();
    }
    let script = r#"
import sys
from cvss import CVSS2, CVSS3, CVSS4
for line in open(sys.argv[1]):
    v = line.strip()
    if v.startswith('CVSS:4.0/'):
        s = CVSS4(v).base_score
    elif v.startswith('CVSS:3'):
        s = CVSS3(v).base_score
    else:
        s = CVSS2(v).base_score
    print(float(s))
"#;
    let out = python_eval(&["cvss==3.*"], script, &[input.path().to_str().unwrap()]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), vectors.len());
    let mut bad = Vec::new();
    for (v, o) in vectors.iter().zip(lines) {
        let theirs: f64 = o.parse().unwrap();
        let mine = ocibuild_scan::cvss::base_score(v).unwrap();
        if (mine - theirs).abs() > 1e-9 {
            bad.push(format!("{v}: cvss {theirs}, ours {mine}"));
        }
    }
    assert!(
        bad.is_empty(),
        "{} disagreements:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

fn maven_version(r: &mut Rng) -> String {
    let mut s = r.below(4).to_string();
    for _ in 0..r.below(4) {
        s.push_str(r.pick(&[".", ".", "-", ""]));
        if r.chance(65) {
            s.push_str(&r.below(12).to_string());
        } else {
            s.push_str(r.pick(&[
                "alpha",
                "a",
                "beta",
                "b",
                "m",
                "milestone",
                "rc",
                "cr",
                "SNAPSHOT",
                "ga",
                "final",
                "Final",
                "RELEASE",
                "sp",
                "abc",
                "jre",
                "android",
            ]));
        }
    }
    s
}

/// Maven's own `ComparableVersion` (its `main` prints each consecutive comparison), from the
/// Debian `maven` package's maven-artifact jar.
#[test]
fn maven_ordering_agrees_with_maven() {
    let java = ocibuild_testkit::require_tool("java", "default-jre-headless");
    let mvn = ocibuild_testkit::require_tool("mvn", "maven");
    let lib = std::fs::canonicalize(&mvn)
        .unwrap()
        .parent()
        .and_then(|b| b.parent())
        .unwrap()
        .join("lib");
    let jar = std::fs::read_dir(&lib)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("maven-artifact")
        })
        .unwrap_or_else(|| panic!("no maven-artifact jar in {}", lib.display()));
    let mut rng = Rng(0x5eed_0005);
    let mut versions: Vec<String> = Vec::new();
    for _ in 0..4000 {
        let v = maven_version(&mut rng);
        // near neighbours too
        if rng.chance(30) {
            versions.push(format!(
                "{v}{}",
                rng.pick(&[".0", "-0", ".1", "-1", "-ga", "-sp"])
            ));
        }
        versions.push(v);
    }
    let out = std::process::Command::new(java)
        .arg("-cp")
        .arg(&jar)
        .arg("org.apache.maven.artifact.versioning.ComparableVersion")
        .args(&versions)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut n = 0;
    let mut bad = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("   ")) {
        let t: Vec<&str> = line.split_whitespace().collect();
        let [a, op, b] = t[..] else {
            panic!("unexpected line {line:?}")
        };
        let theirs = match op {
            "<" => Ordering::Less,
            "==" => Ordering::Equal,
            ">" => Ordering::Greater,
            other => panic!("unexpected comparison {other} in {line:?}"),
        };
        n += 1;
        let mine = ocibuild_scan::version::maven::compare(a, b);
        if mine != theirs {
            bad.push(format!("{a} vs {b}: maven {op}, ours {mine:?}"));
        }
    }
    assert_eq!(n, versions.len() - 1, "one comparison per consecutive pair");
    assert!(
        bad.is_empty(),
        "{} disagreements:\n{}",
        bad.len(),
        bad.join("\n")
    );
}
