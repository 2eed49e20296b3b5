//! Differential test (issue 22): Debian version ordering — the resolver's
//! [`ocibuild_debian::version::Version`] and the scan gate's `ocibuild_scan::version::dpkg` —
//! against dpkg's own implementations.
//!
//! `dpkg --compare-versions` compares one pair per process (about 3 ms each here), so 100,000
//! pairs through it would take minutes. The bulk runs through `Dpkg::Version` (Debian's
//! `libdpkg-perl`, dpkg's own Perl implementation, maintained with dpkg in the same source
//! tree), all pairs in one `perl` process; a slice of every set also goes through the real
//! `dpkg --compare-versions` binary in one shell loop, and the two oracles must agree on it too,
//! so the fast oracle is itself checked against dpkg on every run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::process::Command;

use ocibuild_debian::version::Version;

/// xorshift64*: deterministic, so a failure reproduces.
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

fn digits(r: &mut Rng) -> String {
    match r.below(10) {
        0 => format!("0{}", r.below(10)), // leading zeros compare numerically
        1 => format!("{}", 20_000 + r.below(99_999)), // dates and long runs
        2 => "0".into(),
        _ => r.below(12).to_string(),
    }
}

/// One run of an upstream version or revision: digits, letters, or a separator.
fn run(r: &mut Rng, seps: &[&str]) -> String {
    match r.below(10) {
        0..=3 => digits(r),
        4..=5 => r
            .pick(&[
                "a", "b", "rc", "dfsg", "git", "beta", "z", "A", "Z", "ds", "really", "alpha",
            ])
            .to_string(),
        _ => r.pick(seps).to_string(),
    }
}

/// A valid Debian version: epochs, tildes (also doubled and trailing), `+`, `.`, hyphens inside
/// the upstream part when there is a revision, colons inside it when there is an epoch, digit
/// runs with leading zeros, letters, and revisions like Debian's (`+deb13u1`, `~bpo13+1`, `+b2`).
fn deb_version(r: &mut Rng) -> String {
    let epoch = r.chance(20);
    let revision = r.chance(70);
    let mut s = String::new();
    if epoch {
        s.push_str(&format!("{}:", r.pick(&["0", "1", "2", "10", "00"])));
    }
    s.push_str(&digits(r));
    let mut upstream_seps = vec![".", ".", "+", "~", "~~"];
    if revision {
        upstream_seps.push("-");
    }
    if epoch {
        upstream_seps.push(":");
    }
    for _ in 0..r.below(6) {
        s.push_str(&run(r, &upstream_seps));
    }
    // a separator may not end the upstream part before the revision's `-`... except these
    // are all allowed by dpkg (`1.-1`, `1+-1`), so keep whatever came out
    if revision {
        s.push('-');
        s.push_str(&digits(r));
        for _ in 0..r.below(3) {
            s.push_str(&run(r, &[".", "+", "~"]));
        }
        if r.chance(30) {
            s.push_str(r.pick(&[
                "+deb13u", "~deb13u", "+b", "~bpo13+", "+deb12u", "ubuntu", "+really",
            ]));
            s.push_str(&r.below(5).to_string());
        }
    }
    s
}

/// Near variants, so equal and adjacent versions are common.
fn variant(r: &mut Rng, v: &str) -> String {
    match r.below(8) {
        0 => format!("{v}~"),
        1 => format!("{v}+1"),
        2 => format!("{v}.0"),
        3 => format!("0:{v}").replace("0:0:", "0:").replace("0:1:", "1:"),
        4 => {
            let mut s = v.to_string();
            s.pop();
            if s.is_empty() || s.ends_with(['-', ':']) {
                v.to_string()
            } else {
                s
            }
        }
        5 if !v.contains('-') => format!("{v}-0"),
        _ => v.to_string(),
    }
}

fn write_pairs(pairs: &[(String, String)]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    let mut buf = String::new();
    for (a, b) in pairs {
        buf.push_str(a);
        buf.push('\t');
        buf.push_str(b);
        buf.push('\n');
    }
    f.write_all(buf.as_bytes()).unwrap();
    f
}

fn ord(o: &str) -> Ordering {
    match o.trim() {
        "-1" => Ordering::Less,
        "0" => Ordering::Equal,
        "1" => Ordering::Greater,
        other => panic!("oracle printed {other:?}"),
    }
}

/// `Dpkg::Version::version_compare` on every pair, in one perl process.
fn perl_compare(pairs: &[(String, String)]) -> Vec<Option<Ordering>> {
    let perl = ocibuild_testkit::require_tool("perl", "perl");
    let input = write_pairs(pairs);
    let out = Command::new(perl)
        .arg("-MDpkg::Version")
        .arg("-ne")
        .arg(
            "chomp; my ($a, $b) = split /\\t/; my $c = eval { version_compare($a, $b) }; \
             print(!defined($c) ? \"invalid\" : $c < 0 ? -1 : $c > 0 ? 1 : 0, \"\\n\");",
        )
        .arg(input.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "perl's Dpkg::Version failed (is `libdpkg-perl` installed? `apt-get install \
         libdpkg-perl`): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let res: Vec<Option<Ordering>> = text
        .lines()
        .map(|l| (l != "invalid").then(|| ord(l)))
        .collect();
    assert_eq!(res.len(), pairs.len(), "one answer per pair from perl");
    res
}

/// The real `dpkg --compare-versions`, one process per comparison, in one shell loop.
fn dpkg_compare(pairs: &[(String, String)]) -> Vec<Ordering> {
    let dpkg = ocibuild_testkit::require_tool("dpkg", "dpkg");
    let input = write_pairs(pairs);
    let script = format!(
        "while IFS='\t' read -r a b; do if {d} --compare-versions \"$a\" lt \"$b\"; then echo -1; \
         elif {d} --compare-versions \"$a\" eq \"$b\"; then echo 0; else echo 1; fi; done < {f}",
        d = dpkg.display(),
        f = input.path().display()
    );
    let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let res: Vec<Ordering> = text.lines().map(ord).collect();
    assert_eq!(res.len(), pairs.len(), "one answer per pair from dpkg");
    res
}

/// Both of ours against an oracle's answers; the disagreements, described.
fn disagreements(pairs: &[(String, String)], theirs: &[Ordering], oracle: &str) -> Vec<String> {
    let mut bad = Vec::new();
    for ((a, b), t) in pairs.iter().zip(theirs) {
        let resolver = match (Version::parse(a), Version::parse(b)) {
            (Ok(x), Ok(y)) => Some(x.cmp(&y)),
            _ => None,
        };
        let scan = ocibuild_scan::version::dpkg::compare(a, b);
        if resolver != Some(*t) || scan != Some(*t) {
            bad.push(format!(
                "{a} vs {b}: {oracle} {t:?}, resolver {resolver:?}, scan gate {scan:?}"
            ));
        }
    }
    bad
}

fn check(pairs: &[(String, String)], anchor: usize, what: &str, need_equal: bool) -> usize {
    let t = std::time::Instant::now();
    let answers = perl_compare(pairs);
    let perl_took = t.elapsed();
    // pairs with a version Dpkg::Version calls invalid are the malformed test's business
    let before = pairs.len();
    let (pairs, perl): (Vec<(String, String)>, Vec<Ordering>) = pairs
        .iter()
        .zip(answers)
        .filter_map(|(p, o)| o.map(|o| (p.clone(), o)))
        .unzip();
    let pairs = &pairs[..];
    assert!(
        pairs.len() * 100 >= before * 99,
        "{} of {before} pairs invalid",
        before - pairs.len()
    );
    let t = std::time::Instant::now();
    let slice = &pairs[..anchor.min(pairs.len())];
    let dpkg = dpkg_compare(slice);
    let dpkg_took = t.elapsed();
    let mut bad: Vec<String> = slice
        .iter()
        .zip(perl.iter().zip(&dpkg))
        .filter(|(_, (p, d))| p != d)
        .map(|((a, b), (p, d))| format!("{a} vs {b}: dpkg {d:?} but Dpkg::Version {p:?}"))
        .collect();
    bad.extend(disagreements(slice, &dpkg, "dpkg"));
    bad.extend(disagreements(pairs, &perl, "Dpkg::Version"));
    let count = |o: Ordering| perl.iter().filter(|x| **x == o).count();
    eprintln!(
        "oracle dpkg {what}: {} pairs through Dpkg::Version ({perl_took:?}), {} of them through \
         dpkg --compare-versions ({dpkg_took:?}); less {}, equal {}, greater {}; {} disagreements",
        pairs.len(),
        slice.len(),
        count(Ordering::Less),
        count(Ordering::Equal),
        count(Ordering::Greater),
        bad.len()
    );
    for o in [Ordering::Less, Ordering::Equal, Ordering::Greater] {
        if o == Ordering::Equal && !need_equal {
            continue;
        }
        assert!(
            count(o) * 20 > pairs.len().min(2000),
            "only {} pairs compare {o:?}: the set is too narrow",
            count(o)
        );
    }
    bad.truncate(50);
    assert!(
        bad.is_empty(),
        "disagreements (first 50):\n{}",
        bad.join("\n")
    );
    pairs.len()
}

#[test]
fn generated_pairs_agree_with_dpkg() {
    let mut rng = Rng(0x5eed_d9c6);
    let mut pairs = Vec::with_capacity(100_000);
    while pairs.len() < 100_500 {
        let a = deb_version(&mut rng);
        let b = if rng.chance(40) {
            variant(&mut rng, &a)
        } else {
            deb_version(&mut rng)
        };
        let b = if rng.chance(15) {
            variant(&mut rng, &b)
        } else {
            b
        };
        pairs.push((a, b));
    }
    let checked = check(&pairs, 300, "generated", true);
    assert!(checked >= 100_000, "only {checked} valid pairs");
}

/// What dpkg refuses, the resolver refuses too: each string goes through
/// `dpkg --compare-versions S eq S`, whose exit code 2 means a syntax error. (dpkg only warns
/// about invalid characters and a first character that is not a digit when comparing; the
/// resolver refuses the former, as `dpkg-deb` and `dpkg -i` do, and accepts the latter.)
#[test]
fn malformed_versions_are_refused_like_dpkg() {
    let dpkg = ocibuild_testkit::require_tool("dpkg", "dpkg");
    let mut rng = Rng(0x5eed_bad0);
    let mut vs: BTreeSet<String> = BTreeSet::new();
    for fixed in [
        ":",
        "1:",
        ":1",
        "1-",
        "a:1",
        "1:-1",
        "1.0^1",
        "1 0",
        "1.0_1",
        "1:1:",
        "1.0-a^",
        "99999999999999999999:1",
        "1:1-a-b",
        "1-a:b",
        "~",
        "1.0@2",
    ] {
        vs.insert(fixed.to_string());
    }
    while vs.len() < 400 {
        let mut v = deb_version(&mut rng);
        let i = rng.below(v.len() as u64 + 1) as usize;
        let i = (0..=i).rev().find(|i| v.is_char_boundary(*i)).unwrap_or(0);
        match rng.below(5) {
            0 => v.insert_str(i, rng.pick(&["^", "_", "@", "!", " ", "/", "é"])),
            1 => v.insert(i, ':'),
            2 => v.insert(i, '-'),
            3 => v.truncate(i),
            _ => v.insert_str(0, rng.pick(&[":", "x", "a:", "~"])),
        }
        // dpkg reads a leading `-` as an option, and compares "" as "no version"
        if !v.is_empty() && !v.starts_with('-') {
            vs.insert(v);
        }
    }
    let vs: Vec<String> = vs.into_iter().collect();
    let input = write_pairs(
        &vs.iter()
            .map(|v| (v.clone(), v.clone()))
            .collect::<Vec<_>>(),
    );
    // rc and the first line dpkg printed on stderr, per string
    let script = format!(
        "while IFS='\t' read -r a b; do e=$({d} --compare-versions \"$a\" eq \"$a\" 2>&1 >/dev/null); \
         rc=$?; printf '%s\\t%s\\n' \"$rc\" \"$(printf '%s' \"$e\" | head -n1)\"; done < {f}",
        d = dpkg.display(),
        f = input.path().display()
    );
    let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), vs.len());
    let (mut refused, mut warned, mut bad) = (0, 0, Vec::new());
    for (v, line) in vs.iter().zip(lines) {
        let (rc, msg) = line.split_once('\t').unwrap();
        let ours = Version::parse(v);
        let invalid_char = msg.contains("invalid character");
        if rc == "2" || invalid_char {
            if rc == "2" {
                refused += 1;
            } else {
                warned += 1;
            }
            if ours.is_ok() {
                bad.push(format!("{v:?}: dpkg says {msg:?}, the resolver accepts it"));
            }
        } else if rc == "0" && msg.is_empty() && ours.is_err() {
            bad.push(format!(
                "{v:?}: dpkg accepts it, the resolver refuses it: {}",
                ours.as_ref().unwrap_err()
            ));
        }
        if let Err(e) = ours {
            let e = e.to_string();
            assert!(e.contains("version"), "{v:?}: unclear error {e}");
        }
    }
    eprintln!(
        "oracle dpkg malformed: {} strings, dpkg refused {refused}, warned about invalid \
         characters in {warned}; {} disagreements",
        vs.len(),
        bad.len()
    );
    assert!(refused > 50 && warned > 30, "the generator is too narrow");
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// The real trixie main amd64 indexes (release, -updates, -security) from this machine's Debian
/// mirror, through the apt client and its cache under the target dir (nothing is downloaded
/// when the shared package cache has them). A machine that cannot reach its mirror and has no
/// cached copy fails this test with the reason: it never skips.
fn real_indexes() -> Vec<(String, Vec<ocibuild_debian::control::Paragraph>)> {
    use ocibuild_debian::apt::{Keyring, Release, Repo, sources_for_release, system_sources};
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("ocibuild-build-tests-store")
        .join("debian");
    let system = system_sources().expect("reading this machine's apt sources");
    let sources = sources_for_release(&system, Release::Trixie, false)
        .expect("trixie sources from the machine's mirror");
    let mut repo = Repo::new(&cache, false).expect("apt cache");
    // a cached InRelease of the last day is reused (still signature-checked)
    repo.set_max_age(Some(std::time::Duration::from_secs(24 * 3600)));
    let mut out = Vec::new();
    for src in &sources {
        let keyring = Keyring::for_source(src).expect("keyring");
        for suite in &src.suites {
            let idx = repo
                .fetch_suite(src, suite, &keyring)
                .unwrap_or_else(|e| panic!("fetching {suite}: {e}"));
            let paragraphs = repo
                .fetch_packages(&idx, "main", "amd64")
                .unwrap_or_else(|e| panic!("Packages of {suite}: {e}"));
            out.push((suite.clone(), paragraphs));
        }
    }
    out
}

/// Every pair of versions of each package that has several in the trixie indexes (release,
/// -updates, -security; `Version:` and `Source: name (version)` fields both).
#[test]
fn every_version_pair_of_the_trixie_index_agrees_with_dpkg() {
    let indexes = real_indexes();
    let mut versions: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut paragraphs = 0;
    for (_, ps) in &indexes {
        for p in ps {
            paragraphs += 1;
            let (Some(name), Some(v)) = (p.get("Package"), p.get("Version")) else {
                continue;
            };
            versions
                .entry(name.to_string())
                .or_default()
                .insert(v.to_string());
            // `Source: foo (1.2-3)`: the source version differs from the binary's (binNMUs)
            if let Some(src) = p.get("Source")
                && let Some((sname, rest)) = src.split_once(" (")
                && let Some(sv) = rest.strip_suffix(')')
            {
                versions
                    .entry(format!("src:{sname}"))
                    .or_default()
                    .insert(sv.to_string());
                versions
                    .entry(format!("src:{sname}"))
                    .or_default()
                    .insert(v.to_string());
            }
        }
    }
    let mut pairs = Vec::new();
    let mut several = 0;
    for vs in versions.values().filter(|vs| vs.len() > 1) {
        several += 1;
        let vs: Vec<&String> = vs.iter().collect();
        for i in 0..vs.len() {
            for j in 0..vs.len() {
                if i != j {
                    pairs.push((vs[i].clone(), vs[j].clone()));
                }
            }
        }
    }
    eprintln!(
        "oracle dpkg trixie: {paragraphs} paragraphs in {} indexes, {several} packages with \
         several versions",
        indexes.len()
    );
    assert!(
        several > 100,
        "only {several} packages with several versions"
    );
    // every index pair through Dpkg::Version; the first 300 also through dpkg itself
    check(&pairs, 300, "trixie index", false);
}
