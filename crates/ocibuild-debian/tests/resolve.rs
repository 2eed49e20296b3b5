//! The resolver on synthetic universes, plus (when the machine has one) a real Debian index.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ocibuild_debian::DebianError;
use ocibuild_debian::control;
use ocibuild_debian::resolve::{Resolution, Universe, resolve};

/// Packages paragraphs from a compact text: blank-line separated, `Architecture` defaults to amd64.
fn paras(text: &str) -> Vec<control::Paragraph> {
    control::parse(text)
        .into_iter()
        .map(|mut p| {
            if p.get("Architecture").is_none() {
                p.insert("Architecture", "amd64");
            }
            p
        })
        .collect()
}

fn universe(suites: &[(&str, i32, &str)]) -> Universe {
    let mut u = Universe::new("amd64");
    for (suite, prio, text) in suites {
        u.add(&paras(text), suite, *prio).unwrap();
    }
    u
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn ok(u: &Universe, wanted: &[&str], exclude: &[&str]) -> Resolution {
    resolve(u, &s(wanted), &s(exclude)).unwrap_or_else(|e| panic!("{wanted:?}: {e}"))
}

/// `name=version@suite` for each resolved package.
fn picked(r: &Resolution) -> Vec<String> {
    r.packages
        .iter()
        .map(|p| format!("{}={}@{}", p.name, p.version, p.suite))
        .collect()
}

fn err(u: &Universe, wanted: &[&str], exclude: &[&str]) -> String {
    match resolve(u, &s(wanted), &s(exclude)) {
        Ok(r) => panic!("{wanted:?} resolved to {:?}", picked(&r)),
        Err(e) => e.to_string(),
    }
}

const BASE: &str = "
Package: libc6
Version: 2.36-9+deb12u4
Multi-Arch: same
Depends: libgcc-s1

Package: libgcc-s1
Version: 12.2.0-14
Multi-Arch: same
Depends: gcc-12-base (= 12.2.0-14), libc6 (>= 2.35)

Package: gcc-12-base
Version: 12.2.0-14
Multi-Arch: same
";

#[test]
fn closure_follows_depends_and_pre_depends_through_cycles() {
    let u = universe(&[(
        "bookworm",
        500,
        &format!(
            "{BASE}
Package: app
Version: 1.0
Pre-Depends: libc6 (>= 2.34)
Depends: libssl3 (>= 3.0.0)
Recommends: ca-certificates
Suggests: doc

Package: libssl3
Version: 3.0.11-1~deb12u2
Depends: libc6 (>= 2.34)

Package: ca-certificates
Version: 20230311
Architecture: all
"
        ),
    )]);
    let r = ok(&u, &["app"], &[]);
    assert_eq!(
        picked(&r),
        [
            "app=1.0@bookworm",
            "gcc-12-base=12.2.0-14@bookworm",
            "libc6=2.36-9+deb12u4@bookworm",
            "libgcc-s1=12.2.0-14@bookworm",
            "libssl3=3.0.11-1~deb12u2@bookworm",
        ]
    );
    assert!(r.excluded.is_empty());
    // Pre-Depends come first in `depends`.
    assert_eq!(r.packages[0].depends[0][0].name, "libc6");
}

#[test]
fn alternatives_take_the_first_that_works() {
    let u = universe(&[(
        "trixie",
        500,
        "
Package: a
Version: 1
Depends: missing | libgcc1 (>= 9) | libgcc-s1, old (>= 2) | new

Package: libgcc1
Version: 8.3.0-6

Package: libgcc-s1
Version: 14.2.0-19

Package: old
Version: 1.5

Package: new
Version: 1.0

Package: b
Version: 1
Depends: x | y

Package: x
Version: 1

Package: y
Version: 1

Package: c
Version: 1
Depends: y, x | y
",
    )]);
    assert_eq!(
        picked(&ok(&u, &["a"], &[])),
        ["a=1@trixie", "libgcc-s1=14.2.0-19@trixie", "new=1.0@trixie"]
    );
    assert_eq!(picked(&ok(&u, &["b"], &[])), ["b=1@trixie", "x=1@trixie"]);
    // A group already satisfied by a selected package (here: y, selected first) adds nothing.
    assert_eq!(picked(&ok(&u, &["c"], &[])), ["c=1@trixie", "y=1@trixie"]);
}

#[test]
fn virtual_packages_prefer_real_then_alphabetical_provider() {
    let u = universe(&[(
        "trixie",
        500,
        "
Package: postfix
Version: 3.7
Provides: mail-transport-agent

Package: exim4-daemon-light
Version: 4.96
Provides: mail-transport-agent

Package: wants-mta
Version: 1
Depends: mail-transport-agent

Package: wants-default
Version: 1
Depends: default-mta | mail-transport-agent

Package: default-mta
Version: 1
Depends: postfix

Package: awk
Version: 1.0
Description: a real package that is also provided

Package: mawk
Version: 1.3.4
Provides: awk

Package: wants-awk
Version: 1
Depends: awk

Package: libfoo-new
Version: 3.0
Provides: libfoo-abi (= 3)

Package: libfoo-old
Version: 2.0
Provides: libfoo-abi (= 2)

Package: aaa-unversioned
Version: 1
Provides: libfoo-abi

Package: wants-abi
Version: 1
Depends: libfoo-abi (>= 3)

Package: wants-postfix-and-mta
Version: 1
Depends: postfix, mail-transport-agent
",
    )]);
    // Several providers: the alphabetically first.
    assert_eq!(
        picked(&ok(&u, &["wants-mta"], &[])),
        ["exim4-daemon-light=4.96@trixie", "wants-mta=1@trixie"]
    );
    // The first alternative is real: taken.
    assert_eq!(
        picked(&ok(&u, &["wants-default"], &[])),
        [
            "default-mta=1@trixie",
            "postfix=3.7@trixie",
            "wants-default=1@trixie"
        ]
    );
    // A real package of the name beats a provider.
    assert_eq!(
        picked(&ok(&u, &["wants-awk"], &[])),
        ["awk=1.0@trixie", "wants-awk=1@trixie"]
    );
    // A versioned dependency needs a versioned Provides that satisfies it.
    assert_eq!(
        picked(&ok(&u, &["wants-abi"], &[])),
        ["libfoo-new=3.0@trixie", "wants-abi=1@trixie"]
    );
    // An already-selected provider satisfies the virtual dependency.
    assert_eq!(
        picked(&ok(&u, &["wants-postfix-and-mta"], &[])),
        ["postfix=3.7@trixie", "wants-postfix-and-mta=1@trixie"]
    );
    // Asking for a virtual name: one provider is fine, several is an error naming them.
    let e = err(&u, &["mail-transport-agent"], &[]);
    assert!(
        e.contains("virtual package provided by exim4-daemon-light, postfix"),
        "{e}"
    );
    let u2 = universe(&[(
        "trixie",
        500,
        "Package: mawk\nVersion: 1.3.4\nProvides: awk\n",
    )]);
    assert_eq!(picked(&ok(&u2, &["awk"], &[])), ["mawk=1.3.4@trixie"]);
}

const FOO: &str = "
Package: libfoo
Version: 1.4-2

Package: tool
Version: 1
Depends: libfoo

Package: app
Version: 1
Depends: libfoo (>= 2.0)

Package: legacy
Version: 1
Depends: libfoo (<< 1.4-2)
";

#[test]
fn priorities_updates_win_backports_only_when_needed_or_asked() {
    let u = universe(&[
        ("trixie", 500, FOO),
        (
            "trixie-updates",
            500,
            "Package: libfoo\nVersion: 1.4-2+deb13u1\n",
        ),
        (
            "trixie-backports",
            100,
            "Package: libfoo\nVersion: 2.1-1~bpo13+1\n",
        ),
        ("trixie-oldies", 500, "Package: libfoo\nVersion: 1.2-1\n"),
    ]);
    // Same priority: the newest (updates); backports' newer version is not chosen.
    assert_eq!(
        picked(&ok(&u, &["tool"], &[])),
        ["libfoo=1.4-2+deb13u1@trixie-updates", "tool=1@trixie"]
    );
    // A constraint only backports can meet forces it.
    assert_eq!(
        picked(&ok(&u, &["app"], &[])),
        ["app=1@trixie", "libfoo=2.1-1~bpo13+1@trixie-backports"]
    );
    // A constraint forcing an older version.
    assert_eq!(
        picked(&ok(&u, &["legacy"], &[])),
        ["legacy=1@trixie", "libfoo=1.2-1@trixie-oldies"]
    );
    // Asked for by suite or by version.
    assert_eq!(
        picked(&ok(&u, &["libfoo/trixie-backports"], &[])),
        ["libfoo=2.1-1~bpo13+1@trixie-backports"]
    );
    assert_eq!(
        picked(&ok(&u, &["libfoo=1.4-2"], &[])),
        ["libfoo=1.4-2@trixie"]
    );
    assert_eq!(
        picked(&ok(&u, &["tool", "libfoo/trixie"], &[])),
        ["libfoo=1.4-2@trixie", "tool=1@trixie"]
    );
    // Pinned higher, backports wins.
    let pinned = universe(&[
        ("trixie", 500, FOO),
        (
            "trixie-backports",
            990,
            "Package: libfoo\nVersion: 2.1-1~bpo13+1\n",
        ),
    ]);
    assert_eq!(
        picked(&ok(&pinned, &["tool"], &[])),
        ["libfoo=2.1-1~bpo13+1@trixie-backports", "tool=1@trixie"]
    );
    // Unknown requests.
    let e = err(&u, &["libfoo=9.9"], &[]);
    assert!(
        e.contains(
            "version 9.9 of libfoo is not available (available: 1.4-2+deb13u1 in trixie-updates"
        ),
        "{e}"
    );
    let e = err(&u, &["libfoo/sid"], &[]);
    assert!(e.contains("libfoo in suite sid is not available"), "{e}");
    assert_eq!(
        err(&u, &["nope"], &[]),
        "cannot resolve nope: no package named nope for amd64 (or all)"
    );
}

#[test]
fn a_later_constraint_rules_out_an_earlier_choice() {
    let u = universe(&[
        ("trixie", 500, FOO),
        (
            "trixie-backports",
            100,
            "Package: libfoo\nVersion: 2.1-1~bpo13+1\n",
        ),
    ]);
    // tool selects libfoo 1.4-2 first; app needs >= 2.0: 1.4-2 is ruled out and both share 2.1.
    assert_eq!(
        picked(&ok(&u, &["tool", "app"], &[])),
        [
            "app=1@trixie",
            "libfoo=2.1-1~bpo13+1@trixie-backports",
            "tool=1@trixie"
        ]
    );
    // An explicit request is never ruled out: the conflict is reported.
    let e = err(&u, &["libfoo=1.4-2", "app"], &[]);
    assert_eq!(
        e,
        "cannot resolve app: app → libfoo (>= 2.0) → libfoo is already selected at 1.4-2 (trixie), which does not satisfy >= 2.0"
    );
    // Contradictory constraints: the message says why the other version was ruled out.
    let u = universe(&[
        ("trixie", 500, FOO),
        (
            "trixie-backports",
            100,
            "Package: libfoo\nVersion: 2.1-1~bpo13+1\n",
        ),
        ("trixie-oldies", 500, "Package: libfoo\nVersion: 1.2-1\n"),
    ]);
    assert_eq!(
        err(&u, &["legacy", "app"], &[]),
        "cannot resolve legacy: legacy → libfoo (<< 1.4-2) → no version of libfoo satisfies << 1.4-2 (available: \
         1.4-2 in trixie, 1.2-1 in trixie-oldies, ruled out by app → libfoo (>= 2.0), 2.1-1~bpo13+1 in trixie-backports)"
    );
}

#[test]
fn unsatisfiable_chains_are_named() {
    let u = universe(&[(
        "trixie",
        500,
        "
Package: libfoo
Version: 1.4-2

Package: app
Version: 1
Depends: libfoo (>= 2.0)

Package: top
Version: 1
Depends: mid

Package: mid
Version: 1
Depends: libc6, app

Package: libc6
Version: 2.41-12

Package: alt
Version: 1
Depends: nothere | libfoo (>= 3)

Package: virt
Version: 1
Depends: libfoo-abi (>= 2)

Package: p
Version: 1
Provides: libfoo-abi (= 1)
",
    )]);
    assert_eq!(
        err(&u, &["app"], &[]),
        "cannot resolve app: app → libfoo (>= 2.0) → no version of libfoo satisfies >= 2.0 (available: 1.4-2 in trixie)"
    );
    assert_eq!(
        err(&u, &["top"], &[]),
        "cannot resolve top: top → mid → app → libfoo (>= 2.0) → no version of libfoo satisfies >= 2.0 (available: 1.4-2 in trixie)"
    );
    assert_eq!(
        err(&u, &["alt"], &[]),
        "cannot resolve alt: alt → nothere | libfoo (>= 3) → no alternative can be installed (nothere: no package named \
         nothere for amd64 (or all); libfoo: no version of libfoo satisfies >= 3 (available: 1.4-2 in trixie))"
    );
    assert_eq!(
        err(&u, &["virt"], &[]),
        "cannot resolve virt: virt → libfoo-abi (>= 2) → no provider of the virtual package libfoo-abi satisfies >= 2 \
         (providers: p (libfoo-abi = 1))"
    );
    assert!(matches!(
        resolve(&u, &s(&["app"]), &[]),
        Err(DebianError::Unresolvable { package, .. }) if package == "app"
    ));
}

#[test]
fn architectures_and_qualifiers() {
    let u = universe(&[(
        "trixie",
        500,
        "
Package: py
Version: 1
Depends: python3:any (>= 3.11~), libarm

Package: python3
Version: 3.13.5-1
Multi-Arch: allowed

Package: python3
Version: 3.99
Architecture: arm64
Multi-Arch: allowed

Package: libarm
Version: 1
Architecture: arm64

Package: libarm
Version: 0.9
Architecture: all

Package: strict
Version: 1
Depends: libnotallowed:any

Package: libnotallowed
Version: 1

Package: native
Version: 1
Depends: libnotallowed:amd64, tzdata:native, make:any

Package: tzdata
Version: 2025b
Architecture: all

Package: make
Version: 4.4
Multi-Arch: foreign

Package: wrongarch
Version: 1
Depends: libnotallowed:arm64

Package: restricted
Version: 1
Depends: libarm [amd64], libnotthere [arm64]
",
    )]);
    assert_eq!(u.versions("python3").len(), 1);
    assert_eq!(
        picked(&ok(&u, &["py"], &[])),
        [
            "libarm=0.9@trixie",
            "py=1@trixie",
            "python3=3.13.5-1@trixie"
        ]
    );
    assert_eq!(
        err(&u, &["strict"], &[]),
        "cannot resolve strict: strict → libnotallowed:any → libnotallowed 1 is Multi-Arch: no, which does not satisfy \
         libnotallowed:any (available: 1 in trixie)"
    );
    assert_eq!(
        picked(&ok(&u, &["native"], &[])),
        [
            "libnotallowed=1@trixie",
            "make=4.4@trixie",
            "native=1@trixie",
            "tzdata=2025b@trixie"
        ]
    );
    assert!(err(&u, &["wrongarch"], &[]).contains("does not satisfy"));
    assert_eq!(
        picked(&ok(&u, &["restricted"], &[])),
        ["libarm=0.9@trixie", "restricted=1@trixie"]
    );

    let arm = {
        let mut u = Universe::new("arm64");
        u.add(&paras("Package: python3\nVersion: 3.99\nArchitecture: arm64\n\nPackage: python3\nVersion: 3.13\n"), "t", 500)
            .unwrap();
        u
    };
    assert_eq!(picked(&ok(&arm, &["python3"], &[])), ["python3=3.99@t"]);
}

#[test]
fn excluded_packages_are_skipped() {
    let u = universe(&[(
        "trixie",
        500,
        "
Package: app
Version: 1
Pre-Depends: perl-base
Depends: libc6, debconf (>= 0.5) | debconf-2.0, needs-virtual

Package: needs-virtual
Version: 1
Depends: debconf-2.0

Package: libc6
Version: 2.41-12

Package: perl-base
Version: 5.40
Essential: yes

Package: debconf
Version: 1.5.91
Provides: debconf-2.0

Package: cdebconf
Version: 0.270
Provides: debconf-2.0
",
    )]);
    assert!(u.candidate("perl-base").unwrap().essential);
    let r = ok(&u, &["app"], &["perl-base", "debconf", "dpkg"]);
    assert_eq!(
        picked(&r),
        [
            "app=1@trixie",
            "libc6=2.41-12@trixie",
            "needs-virtual=1@trixie"
        ]
    );
    assert_eq!(r.excluded, ["debconf", "perl-base"]);
    // Without exclusions they come in (and the virtual one is satisfied by the selected debconf).
    let r = ok(&u, &["app"], &[]);
    assert_eq!(
        picked(&r),
        [
            "app=1@trixie",
            "debconf=1.5.91@trixie",
            "libc6=2.41-12@trixie",
            "needs-virtual=1@trixie",
            "perl-base=5.40@trixie"
        ]
    );
    let e = resolve(&u, &s(&["debconf"]), &s(&["debconf"])).unwrap_err();
    assert!(matches!(e, DebianError::Invalid { .. }), "{e}");
}

#[test]
fn deterministic_regardless_of_paragraph_order() {
    let text = format!(
        "{BASE}\n\nPackage: app\nVersion: 1\nDepends: libc6, mta\n\nPackage: z\nVersion: 1\nProvides: mta\n\nPackage: b\nVersion: 1\nProvides: mta\n"
    );
    let fwd = paras(&text);
    let mut rev = fwd.clone();
    rev.reverse();
    let mut u1 = Universe::new("amd64");
    u1.add(&fwd, "trixie", 500).unwrap();
    let mut u2 = Universe::new("amd64");
    u2.add(&rev, "trixie", 500).unwrap();
    let a = picked(&ok(&u1, &["app"], &[]));
    assert_eq!(a, picked(&ok(&u2, &["app"], &[])));
    assert_eq!(a, picked(&ok(&u1, &["app"], &[])));
    assert!(a.contains(&"b=1@trixie".to_string()), "{a:?}");
}

#[test]
fn malformed_paragraphs_are_errors() {
    let mut u = Universe::new("amd64");
    let e = u
        .add(&paras("Package: x\nVersion: 1.0 beta\n"), "trixie", 500)
        .unwrap_err();
    assert!(e.to_string().contains("trixie: package x: Version"), "{e}");
    let e = u
        .add(
            &paras("Package: x\nVersion: 1\nDepends: a (>= 1\n"),
            "trixie",
            500,
        )
        .unwrap_err();
    assert!(e.to_string().contains("trixie: package x: Depends"), "{e}");
    // Other architectures are skipped before parsing.
    u.add(
        &paras("Package: x\nVersion: ???\nArchitecture: s390x\n"),
        "trixie",
        500,
    )
    .unwrap();
    assert!(u.packages().is_empty());
}

/// The real trixie main amd64 indexes (release, -updates, -security) from this machine's Debian
/// mirror, fetched and verified by the apt client, cached under the target dir. A machine that
/// cannot reach its mirror fails this test with the reason: it never skips.
fn real_indexes() -> Vec<(String, Vec<control::Paragraph>)> {
    use ocibuild_debian::apt::{Keyring, Release, Repo, sources_for_release, system_sources};
    let cache = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("ocibuild-build-tests-store")
        .join("debian");
    let system = system_sources().expect("reading this machine's apt sources");
    let sources = sources_for_release(&system, Release::Trixie, false)
        .expect("trixie sources from the machine's mirror");
    let repo = Repo::new(&cache, false).expect("apt cache");
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
    // The release first, so that ties between equal versions keep the release's entry.
    out.sort_by_key(|(suite, _)| (suite.contains('-'), suite.clone()));
    out
}

#[test]
fn real_debian_index() {
    let indexes = real_indexes();
    assert!(!indexes.is_empty(), "no trixie index was fetched");
    let mut u = Universe::new("amd64");
    for (suite, paragraphs) in &indexes {
        u.add(paragraphs, suite, 500).unwrap();
        eprintln!(
            "{suite}: {} package versions for amd64/all so far",
            u.packages().len()
        );
    }
    assert!(u.packages().len() > 30_000);
    let exclude = ["perl-base", "dpkg", "debconf"];
    for wanted in [
        &["python3"][..],
        &["libc6", "libgcc-s1", "libstdc++6", "libssl3t64", "zlib1g"],
        &["ca-certificates"],
    ] {
        let t = std::time::Instant::now();
        let r = ok(&u, wanted, &exclude);
        let took = t.elapsed();
        eprintln!(
            "{wanted:?}: {} packages in {took:?}: {:?} (excluded: {:?})",
            r.packages.len(),
            picked(&r),
            r.excluded
        );
        assert!(took < std::time::Duration::from_secs(1), "{took:?}");
        assert!(r.packages.iter().any(|p| p.name == "libc6"));
        let again = ok(&u, wanted, &exclude);
        assert_eq!(picked(&r), picked(&again));
        // Each name once; every package's newest version at priority 500 unless constrained.
        for p in &r.packages {
            assert_eq!(
                u.candidate(&p.name).map(|c| c.version.to_string()),
                Some(p.version.to_string()),
                "{}",
                p.name
            );
        }
    }
    let r = ok(&u, &["python3"], &[]);
    assert!(
        r.packages
            .iter()
            .any(|p| p.name.starts_with("libpython3.") && p.name.ends_with("-stdlib"))
    );
    assert!(r.packages.iter().any(|p| p.name == "python3-minimal"));
}
