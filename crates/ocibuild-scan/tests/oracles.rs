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

// ---------------------------------------------------------------------------------------------
// Ranges: the scan gate's OSV range matching (`matcher::affects`) against PEP 440 specifiers
// (`packaging.specifiers`) and npm ranges (`semver.satisfies`).
//
// Each case is an installed version and one to three affected intervals, each an OSV range
// (`introduced` lo or "0", then `fixed` hi, `last_affected` hi or nothing). The same intervals
// are written as a specifier set per interval (`>=lo,<hi`, `>=lo,<=hi`; the union is "any set
// contains it") and as one npm range (`>=lo <hi || ...`).

/// One interval: a lower bound (None: introduced "0") and an upper bound (fixed or last_affected).
type Interval = (Option<String>, Option<(bool, String)>);

fn osv_record(ecosystem: &str, intervals: &[Interval]) -> ocibuild_scan::osv::Record {
    let ranges: Vec<serde_json::Value> = intervals
        .iter()
        .map(|(lo, hi)| {
            let mut events =
                vec![serde_json::json!({"introduced": lo.clone().unwrap_or("0".into())})];
            match hi {
                Some((true, v)) => events.push(serde_json::json!({ "fixed": v })),
                Some((false, v)) => events.push(serde_json::json!({ "last_affected": v })),
                None => {}
            }
            serde_json::json!({"type": "ECOSYSTEM", "events": events})
        })
        .collect();
    serde_json::from_value(serde_json::json!({
        "id": "TEST-1",
        "affected": [{"package": {"ecosystem": ecosystem, "name": "pkg"}, "ranges": ranges}],
    }))
    .unwrap()
}

fn installed(eco: ocibuild_scan::Ecosystem, version: &str) -> ocibuild_scan::Package {
    ocibuild_scan::Package {
        ecosystem: eco,
        name: "pkg".into(),
        version: version.into(),
        source: None,
        distro: None,
        arch: None,
        goos: None,
        goarch: None,
        purl: String::new(),
        layer: None,
        path: None,
    }
}

/// Intervals whose bounds come from `gen_one` (ordered with `cmp`, which the ordering tests above
/// check against the same oracles), plus an installed version that is often one of the bounds
/// or a near variant of one.
fn range_case(
    r: &mut Rng,
    gen_one: &dyn Fn(&mut Rng) -> String,
    cmp: &dyn Fn(&str, &str) -> Option<Ordering>,
    near: &[&str],
) -> Option<(String, Vec<Interval>)> {
    let mut intervals = Vec::new();
    let mut bounds = Vec::new();
    for _ in 0..=r.below(3) {
        let lo = (!r.chance(20)).then(|| gen_one(r));
        let hi = (!r.chance(15)).then(|| (r.chance(70), gen_one(r)));
        let (lo, hi) = match (lo, hi) {
            (Some(l), Some((k, h))) => match cmp(&l, &h)? {
                Ordering::Less => (Some(l), Some((k, h))),
                Ordering::Greater => (Some(h), Some((k, l))),
                Ordering::Equal => (Some(l), Some((false, h))),
            },
            other => other,
        };
        // "0" is OSV's "from the beginning" sentinel; as a fixed or last_affected version it
        // means nothing (no advisory has one)
        if hi.as_ref().is_some_and(|(_, h)| h == "0") {
            return None;
        }
        bounds.extend(lo.clone());
        bounds.extend(hi.as_ref().map(|(_, h)| h.clone()));
        intervals.push((lo, hi));
    }
    let v = if !bounds.is_empty() && r.chance(60) {
        let b = bounds[r.below(bounds.len() as u64) as usize].clone();
        if r.chance(50) {
            format!("{b}{}", r.pick(near))
        } else {
            b
        }
    } else {
        gen_one(r)
    };
    Some((v, intervals))
}

/// The upper bound's public part, for PEP 440 bounds (a local label is not allowed in `<`/`<=`).
fn public(v: String) -> String {
    v.split_once('+').map_or(v.clone(), |(p, _)| p.to_string())
}

#[test]
fn pep440_ranges_agree_with_packaging_specifiers() {
    let mut rng = Rng(0x5eed_0006);
    let gen_bound = |r: &mut Rng| public(pep_version(r));
    let mut cases = Vec::new();
    while cases.len() < 4000 {
        if let Some(c) = range_case(
            &mut rng,
            &gen_bound,
            &pep440::compare,
            &["rc1", ".dev0", "+local.1", ".post1", "a1", ".0", ".1"],
        ) {
            cases.push(c);
        }
    }
    // one line per case: installed, then each interval as a specifier set, then the bounds
    // needed to explain PEP 440's exclusive-comparison rules
    let mut input = tempfile::NamedTempFile::new().unwrap();
    for (v, ivs) in &cases {
        let sets: Vec<String> = ivs
            .iter()
            .map(|(lo, hi)| {
                let mut s = Vec::new();
                // introduced "0" is OSV's "from the beginning": no lower bound
                if let Some(l) = lo.as_ref().filter(|l| *l != "0") {
                    s.push(format!(">={l}"));
                }
                match hi {
                    Some((true, h)) => s.push(format!("<{h}")),
                    Some((false, h)) => s.push(format!("<={h}")),
                    None => {}
                }
                s.join(",")
            })
            .collect();
        writeln!(input, "{v}\t{}", sets.join("\t")).unwrap();
    }
    // For each case: whether a specifier set contains the version (pre-releases allowed, as
    // OSV's ordering does), and which of packaging's documented exclusions applied:
    //   excl: `<V` (V not a pre-release) refuses the pre-releases of V's own release;
    //   local: `<=V` compares the candidate's public part, so `V+local` is contained.
    let script = r#"
import sys
from packaging.version import Version, InvalidVersion
from packaging.specifiers import SpecifierSet, Specifier
for line in open(sys.argv[1]):
    parts = line.rstrip('\n').split('\t')
    try:
        v = Version(parts[0])
    except InvalidVersion:
        print('invalid'); continue
    hit = any(SpecifierSet(s).contains(v, prereleases=True) for s in parts[1:])
    excl = local = False
    for s in parts[1:]:
        for sp in SpecifierSet(s):
            h = Version(sp.version)
            if sp.operator == '<' and not h.is_prerelease and v.is_prerelease \
                    and Version(v.base_version) == Version(h.base_version):
                excl = True
            if sp.operator == '<=' and v.local is not None and Version(v.public) == h:
                local = True
    print(('1' if hit else '0') + (' excl' if excl else '') + (' local' if local else ''))
"#;
    let out = python_eval(
        &["packaging==24.*"],
        script,
        &[input.path().to_str().unwrap()],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), cases.len());
    let (mut hits, mut explained, mut invalid, mut bad) = (0, 0, 0, Vec::new());
    for ((v, ivs), line) in cases.iter().zip(lines) {
        let ours = ocibuild_scan::matcher::affects(
            &osv_record("PyPI", ivs),
            &installed(ocibuild_scan::Ecosystem::PyPI, v),
        )
        .is_some();
        if line == "invalid" {
            invalid += 1;
            if ours {
                bad.push(format!("{v} (not a PEP 440 version) matched {ivs:?}"));
            }
            continue;
        }
        let theirs = line.starts_with('1');
        hits += usize::from(theirs);
        if ours == theirs {
            continue;
        }
        // OSV ranges follow the version ordering alone: where packaging's specifier rules
        // exclude or include by a documented special case, the ordering decides.
        if (ours && !theirs && line.contains("excl")) || (!ours && theirs && line.contains("local"))
        {
            explained += 1;
            continue;
        }
        bad.push(format!(
            "{v} in {ivs:?}: packaging {theirs} ({line}), ours {ours}"
        ));
    }
    eprintln!(
        "oracle pep440 ranges: {} cases, {hits} contained, {invalid} not versions, {explained} \
         differ only by packaging's documented specifier exceptions, {} disagreements",
        cases.len(),
        bad.len()
    );
    assert!(
        hits > 800 && cases.len() - hits > 800,
        "the generator is too narrow"
    );
    bad.truncate(50);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn npm_ranges_agree_with_semver_satisfies() {
    let mut rng = Rng(0x5eed_0007);
    let mut cases = Vec::new();
    while cases.len() < 4000 {
        if let Some(c) = range_case(
            &mut rng,
            &sem_version,
            &semver::compare,
            &["-rc.1", "-0", "-alpha", "+build.5"],
        ) {
            cases.push(c);
        }
    }
    let mut input = tempfile::NamedTempFile::new().unwrap();
    for (v, ivs) in &cases {
        let range: Vec<String> = ivs
            .iter()
            .map(|(lo, hi)| {
                let mut s = Vec::new();
                if let Some(l) = lo {
                    s.push(format!(">={l}"));
                }
                match hi {
                    Some((true, h)) => s.push(format!("<{h}")),
                    Some((false, h)) => s.push(format!("<={h}")),
                    None => {}
                }
                if s.is_empty() {
                    "*".to_string()
                } else {
                    s.join(" ")
                }
            })
            .collect();
        writeln!(input, "{v}\t{}", range.join(" || ")).unwrap();
    }
    let script = "const semver = require('semver'); const fs = require('fs');\n\
const out = [];\n\
for (const line of fs.readFileSync(process.argv[1], 'utf8').split('\\n')) {\n\
  if (!line) continue; const [v, r] = line.split('\\t');\n\
  if (semver.valid(v) === null) { out.push('invalid'); continue; }\n\
  if (semver.validRange(r) === null) { out.push('badrange ' + r); continue; }\n\
  out.push(semver.satisfies(v, r, { includePrerelease: true }) ? '1' : '0');\n\
}\n\
console.log(out.join('\\n'));";
    let out = node_eval(&["semver@7"], script, &[input.path().to_str().unwrap()]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), cases.len());
    let (mut hits, mut bad) = (0, Vec::new());
    let mut invalid = 0;
    for ((v, ivs), line) in cases.iter().zip(lines) {
        assert!(!line.starts_with("badrange"), "{v} {ivs:?}: {line}");
        let ours = ocibuild_scan::matcher::affects(
            &osv_record("npm", ivs),
            &installed(ocibuild_scan::Ecosystem::Npm, v),
        )
        .is_some();
        if line == "invalid" {
            invalid += 1;
            if ours {
                bad.push(format!("{v} (not a semver version) matched {ivs:?}"));
            }
            continue;
        }
        let theirs = line == "1";
        hits += usize::from(theirs);
        if ours != theirs {
            bad.push(format!("{v} in {ivs:?}: semver {theirs}, ours {ours}"));
        }
    }
    eprintln!(
        "oracle npm ranges: {} cases, {hits} satisfied, {invalid} not versions, {} disagreements",
        cases.len(),
        bad.len()
    );
    assert!(
        hits > 800 && cases.len() - hits > 800,
        "the generator is too narrow"
    );
    bad.truncate(50);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Go module versions against the rules of golang.org/x/mod/semver as its documentation states
// them (no Go toolchain on the test machine): the form is vMAJOR[.MINOR[.PATCH[-PRE][+BUILD]]];
// MAJOR, MINOR, PATCH are decimal without extra leading zeros; PRE and BUILD are non-empty
// dot-separated identifiers of [0-9A-Za-z-], numeric PRE identifiers without leading zeros;
// vMAJOR and vMAJOR.MINOR (with no suffix) are shorthands for vMAJOR.0.0 and vMAJOR.MINOR.0;
// build metadata is ignored; precedence is Semantic Versioning 2.0.0's; an invalid version is
// less than a valid one and all invalid ones are equal. The model below is written from those
// sentences alone.

fn go_num(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
}

fn go_idents(s: &str, pre: bool) -> bool {
    !s.is_empty()
        && s.split('.').all(|id| {
            !id.is_empty()
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && (!pre || !id.bytes().all(|b| b.is_ascii_digit()) || go_num(id))
        })
}

/// (major, minor, patch, prerelease identifiers) of a valid version, per the documentation.
fn go_model(v: &str) -> Option<([String; 3], Vec<String>)> {
    let rest = v.strip_prefix('v')?;
    let (rest, build) = match rest.split_once('+') {
        Some((r, b)) => (r, Some(b)),
        None => (rest, None),
    };
    if let Some(b) = build
        && !go_idents(b, false)
    {
        return None;
    }
    let (core, pre) = match rest.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (rest, None),
    };
    if let Some(p) = pre
        && !go_idents(p, true)
    {
        return None;
    }
    let nums: Vec<&str> = core.split('.').collect();
    if nums.len() > 3 || !nums.iter().all(|n| go_num(n)) {
        return None;
    }
    if nums.len() < 3 && (pre.is_some() || build.is_some()) {
        return None;
    }
    let get = |i: usize| nums.get(i).map_or("0".to_string(), |s| s.to_string());
    let pre = pre.map_or(Vec::new(), |p| p.split('.').map(String::from).collect());
    Some(([get(0), get(1), get(2)], pre))
}

fn go_model_compare(a: &str, b: &str) -> Ordering {
    let num = |x: &str, y: &str| x.len().cmp(&y.len()).then_with(|| x.cmp(y));
    match (go_model(a), go_model(b)) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some((x, xp)), Some((y, yp))) => (0..3)
            .map(|i| num(&x[i], &y[i]))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
            .then_with(|| match (xp.is_empty(), yp.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => {
                    for (p, q) in xp.iter().zip(&yp) {
                        let pn = p.bytes().all(|b| b.is_ascii_digit());
                        let qn = q.bytes().all(|b| b.is_ascii_digit());
                        let o = match (pn, qn) {
                            (true, true) => num(p, q),
                            (true, false) => Ordering::Less,
                            (false, true) => Ordering::Greater,
                            (false, false) => p.cmp(q),
                        };
                        if o.is_ne() {
                            return o;
                        }
                    }
                    xp.len().cmp(&yp.len())
                }
            }),
    }
}

fn go_version(r: &mut Rng) -> String {
    let n = |r: &mut Rng| {
        r.pick(&["0", "1", "2", "10", "01", "9", "11", "100"])
            .to_string()
    };
    let mut s = String::from(if r.chance(97) { "v" } else { "" });
    s.push_str(&n(r));
    let parts = match r.below(10) {
        0 => 1,
        1 => 2,
        _ => 3,
    };
    for _ in 1..parts {
        s.push('.');
        s.push_str(&n(r));
    }
    if r.chance(40) {
        s.push('-');
        for i in 0..=r.below(3) {
            if i > 0 {
                s.push('.');
            }
            s.push_str(r.pick(&[
                "0",
                "1",
                "2",
                "10",
                "01",
                "rc",
                "alpha",
                "beta",
                "pre",
                "x-y",
                "0a",
                "A",
                "",
                "20240102150405-abcdef123456",
            ]));
        }
    }
    if r.chance(15) {
        s.push('+');
        s.push_str(r.pick(&["incompatible", "build.1", "meta-1", "", "a..b"]));
    }
    s
}

#[test]
fn go_module_versions_follow_the_documented_rules() {
    let mut rng = Rng(0x5eed_0008);
    let (mut valid_pairs, mut lenient, mut bad) = (0, 0, Vec::new());
    let mut orders = [0usize; 3];
    for _ in 0..50_000 {
        let a = go_version(&mut rng);
        let b = if rng.chance(25) {
            a.clone()
        } else {
            go_version(&mut rng)
        };
        let want = go_model_compare(&a, &b);
        let ours = semver::compare_go(&a, &b);
        match (go_model(&a).is_some(), go_model(&b).is_some()) {
            (true, true) => {
                valid_pairs += 1;
                orders[(want as i32 + 1) as usize] += 1;
                if ours != Some(want) {
                    bad.push(format!("{a} vs {b}: Go {want:?}, ours {ours:?}"));
                }
            }
            // Go orders invalid strings below valid ones; the gate does not guess: it reads
            // no order (None) and skips the range, unless it reads a Go toolchain spelling
            // (`1.21`, `go1.21rc2`) or leading zeros, which it accepts on purpose
            _ => {
                if ours.is_some() {
                    lenient += 1;
                }
            }
        }
    }
    eprintln!(
        "oracle go semver: {valid_pairs} valid pairs (less {}, equal {}, greater {}), {lenient} \
         pairs with a string Go refuses that the gate still reads, {} disagreements",
        orders[0],
        orders[1],
        orders[2],
        bad.len()
    );
    assert!(
        orders.iter().all(|n| *n > 2000),
        "the generator is too narrow"
    );
    bad.truncate(50);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
