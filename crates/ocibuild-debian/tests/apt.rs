//! The apt client against the machine's real mirror (read from its apt sources), plus local
//! `file://` mirror copies with one byte changed for the negative cases.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ocibuild_debian::DebianError;
use ocibuild_debian::apt::{
    Keyring, Release, Repo, Source, SuiteIndex, sources_for_release, system_sources,
};
use ocibuild_debian::control::Paragraph;

/// Sources for a release, from the machine's apt configuration.
fn release_sources(rel: Release) -> Vec<Source> {
    let sys = system_sources().expect("the machine has apt sources");
    sources_for_release(&sys, rel, false).unwrap()
}

/// A cache shared by the tests of this binary (kept between runs under cargo's test tmpdir).
fn shared_cache() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("ocibuild-build-tests-store")
            .join("debian");
        fs::create_dir_all(&d).unwrap();
        d
    })
}

fn online() -> Repo {
    Repo::new(shared_cache(), false).unwrap()
}

/// The main archive source and a suite of it for `rel`.
fn main_source(rel: Release) -> Source {
    release_sources(rel).into_iter().next().unwrap()
}

fn check_release(rel: Release) {
    let repo = online();
    let mut n = 0;
    for src in release_sources(rel) {
        let keyring = Keyring::for_source(&src).unwrap();
        for suite in &src.suites {
            let idx = repo
                .fetch_suite(&src, suite, &keyring)
                .unwrap_or_else(|e| panic!("{suite}: {e}"));
            assert!(
                idx.release
                    .get("Codename")
                    .unwrap()
                    .starts_with(rel.codename())
            );
            assert!(
                idx.files
                    .keys()
                    .any(|f| f.starts_with("main/binary-amd64/Packages")),
                "{suite} lists amd64 Packages"
            );
            eprintln!(
                "{suite}: signed by {} ({} files, Date {:?}, Valid-Until {:?})",
                idx.signer,
                idx.files.len(),
                idx.date,
                idx.valid_until
            );
            n += 1;
        }
    }
    assert_eq!(n, 3, "release, -updates and -security");
}

#[test]
fn trixie_inrelease_verifies_with_the_machine_keyring() {
    check_release(Release::Trixie);
}

#[test]
fn bookworm_inrelease_verifies_with_the_machine_keyring() {
    check_release(Release::Bookworm);
}

/// A local mirror under `dir` holding the real `InRelease` of `<rel>-updates` (small), and that
/// suite's verified index from the real mirror.
fn local_updates_mirror(dir: &Path) -> (Source, String, SuiteIndex, Keyring) {
    let rel = Release::Trixie;
    let src = main_source(rel);
    let suite = format!("{rel}-updates");
    let keyring = Keyring::for_source(&src).unwrap();
    let repo = online();
    let idx = repo.fetch_suite(&src, &suite, &keyring).unwrap();
    let raw = repo
        .get(&format!(
            "{}/dists/{suite}/InRelease",
            src.uri.trim_end_matches('/')
        ))
        .unwrap();
    let d = dir.join("dists").join(&suite);
    fs::create_dir_all(&d).unwrap();
    fs::write(d.join("InRelease"), &raw).unwrap();
    let local = Source {
        uri: format!("file://{}", dir.display()),
        suites: vec![suite.clone()],
        components: vec!["main".into()],
        signed_by: src.signed_by.clone(),
    };
    (local, suite, idx, keyring)
}

#[test]
fn tampered_inrelease_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let (local, suite, _, keyring) = local_updates_mirror(tmp.path());
    let cache = tempfile::tempdir().unwrap();
    let repo = Repo::new(cache.path(), true).unwrap();
    // The untouched copy verifies from the local mirror, even offline.
    let idx = repo.fetch_suite(&local, &suite, &keyring).unwrap();
    assert!(!idx.files.is_empty());

    // Change one digit of the signed Date line.
    let path = tmp.path().join("dists").join(&suite).join("InRelease");
    let mut bytes = fs::read(&path).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    let date = text.find("\nDate: ").unwrap() + 7;
    let pos = date + text[date..].find(|c: char| c.is_ascii_digit()).unwrap();
    bytes[pos] = if bytes[pos] == b'1' { b'2' } else { b'1' };
    fs::write(&path, &bytes).unwrap();
    let err = repo.fetch_suite(&local, &suite, &keyring).unwrap_err();
    eprintln!("tampered InRelease: {err}");
    assert!(matches!(err, DebianError::Signature { .. }), "{err:?}");
    assert!(err.to_string().contains("does not verify"));
    assert!(err.to_string().contains("BAD signature"));

    // Not signed at all.
    fs::write(
        &path,
        text.split("-----BEGIN PGP SIGNATURE").next().unwrap(),
    )
    .unwrap();
    let err = repo.fetch_suite(&local, &suite, &keyring).unwrap_err();
    assert!(matches!(err, DebianError::Signature { .. }), "{err:?}");
}

#[test]
fn inrelease_from_a_key_outside_the_keyring_is_refused() {
    // A keyring that holds other Debian keys, but not the ones signing current suites.
    let other = PathBuf::from("/usr/share/keyrings/debian-archive-bullseye-stable.gpg");
    if !other.exists() {
        eprintln!("skipped: {} is not installed", other.display());
        return;
    }
    let src = main_source(Release::Trixie);
    let keyring = Keyring::load(&[other]).unwrap();
    let err = online().fetch_suite(&src, "trixie", &keyring).unwrap_err();
    eprintln!("unknown key: {err}");
    assert!(matches!(err, DebianError::Signature { .. }), "{err:?}");
    assert!(err.to_string().contains("not in the keyring"));
}

#[test]
fn packages_and_deb_with_wrong_hashes_are_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let (local, suite, real_idx, keyring) = local_updates_mirror(tmp.path());
    let name = "main/binary-amd64/Packages.xz";
    let good = online().fetch_index_file(&real_idx, name).unwrap();
    let pkg_path = tmp.path().join("dists").join(&suite).join(name);
    fs::create_dir_all(pkg_path.parent().unwrap()).unwrap();
    fs::write(&pkg_path, &good).unwrap();

    // A fresh cache, so the local files are what gets read.
    let cache = tempfile::tempdir().unwrap();
    let repo = Repo::new(cache.path(), true).unwrap();
    let idx = repo.fetch_suite(&local, &suite, &keyring).unwrap();
    let pkgs = repo.fetch_packages(&idx, "main", "amd64").unwrap();
    assert!(!pkgs.is_empty(), "{suite} main/amd64 has packages");

    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x01;
    fs::write(&pkg_path, &bad).unwrap();
    let err = repo.fetch_packages(&idx, "main", "amd64").unwrap_err();
    eprintln!("modified Packages.xz: {err}");
    assert!(matches!(err, DebianError::Hash { .. }), "{err:?}");
    assert!(err.to_string().contains("does not match"));

    // The smallest .deb of the suite: download it from the real mirror, then serve a modified
    // copy from the local mirror.
    let pkg: &Paragraph = pkgs
        .iter()
        .min_by_key(|p| {
            p.get("Size")
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(u64::MAX)
        })
        .unwrap();
    let src = main_source(Release::Trixie);
    let deb = online().fetch_deb(&src.uri, pkg).unwrap();
    let deb_bytes = fs::read(&deb).unwrap();
    assert!(
        deb_bytes.starts_with(b"!<arch>\n"),
        "a .deb is an ar archive"
    );
    let filename = pkg.get("Filename").unwrap();
    let local_deb = tmp.path().join(filename);
    fs::create_dir_all(local_deb.parent().unwrap()).unwrap();
    let mut bad = deb_bytes.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    fs::write(&local_deb, &bad).unwrap();
    let err = repo.fetch_deb(&local.uri, pkg).unwrap_err();
    eprintln!("modified .deb: {err}");
    assert!(matches!(err, DebianError::Hash { .. }), "{err:?}");
    assert!(
        !repo.cache_path(pkg.get("SHA256").unwrap()).exists(),
        "nothing cached"
    );

    // The right bytes from the local mirror are accepted and cached by hash.
    fs::write(&local_deb, &deb_bytes).unwrap();
    let p = repo.fetch_deb(&local.uri, pkg).unwrap();
    assert_eq!(p, repo.cache_path(pkg.get("SHA256").unwrap()));

    // A paragraph whose SHA256 does not match the file.
    let mut wrong = pkg.clone();
    wrong.insert("SHA256", &"0".repeat(64));
    let err = repo.fetch_deb(&local.uri, &wrong).unwrap_err();
    assert!(matches!(err, DebianError::Hash { .. }), "{err:?}");

    // An unsafe Filename is refused before anything is read.
    let mut evil = pkg.clone();
    evil.insert("Filename", "../../etc/passwd");
    assert!(matches!(
        repo.fetch_deb(&local.uri, &evil),
        Err(DebianError::Invalid { .. })
    ));
}

#[test]
fn second_fetch_works_offline_from_the_cache() {
    let src = main_source(Release::Trixie);
    let keyring = Keyring::for_source(&src).unwrap();
    let idx = online().fetch_suite(&src, "trixie", &keyring).unwrap();
    let t = std::time::Instant::now();
    let pkgs = online().fetch_packages(&idx, "main", "amd64").unwrap();
    eprintln!(
        "trixie main/amd64: {} packages in {:?}",
        pkgs.len(),
        t.elapsed()
    );
    assert!(pkgs.len() > 30_000);
    assert!(pkgs.iter().any(|p| p.get("Package") == Some("base-files")));

    let offline = Repo::new(shared_cache(), true).unwrap();
    let idx2 = offline.fetch_suite(&src, "trixie", &keyring).unwrap();
    assert_eq!(idx2.files, idx.files);
    let pkgs2 = offline.fetch_packages(&idx2, "main", "amd64").unwrap();
    assert_eq!(pkgs2.len(), pkgs.len());
}

#[test]
fn offline_with_an_empty_cache_fails_clearly() {
    let src = main_source(Release::Trixie);
    let keyring = Keyring::for_source(&src).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let repo = Repo::new(cache.path(), true).unwrap();
    let err = repo.fetch_suite(&src, "trixie", &keyring).unwrap_err();
    eprintln!("offline, empty cache: {err}");
    assert!(matches!(err, DebianError::Fetch { .. }), "{err:?}");
    assert!(err.to_string().contains("offline"));

    let mut pkg = Paragraph::default();
    pkg.insert("Package", "base-files");
    pkg.insert("Filename", "pool/main/b/base-files/base-files_0_amd64.deb");
    pkg.insert("SHA256", &"a".repeat(64));
    pkg.insert("Size", "1");
    let err = repo.fetch_deb(&src.uri, &pkg).unwrap_err();
    assert!(err.to_string().contains("offline"), "{err}");
}

#[test]
fn expired_keys_and_stale_suites_are_refused() {
    use ocibuild_debian::apt::parse_release_date;
    let src = main_source(Release::Trixie);
    let keyring = Keyring::for_source(&src).unwrap();
    let repo = online();
    let raw = repo
        .get(&format!(
            "{}/dists/trixie/InRelease",
            src.uri.trim_end_matches('/')
        ))
        .unwrap();
    let text = String::from_utf8(raw).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (_, signer) = keyring
        .verify_cleartext("trixie InRelease", &text, now)
        .unwrap();
    // Every Debian archive key carries an expiry date; far in the future all of them have
    // expired, and the same bytes are refused.
    let far = parse_release_date("Mon, 01 Jan 2120 00:00:00 UTC").unwrap();
    let err = keyring
        .verify_cleartext("trixie InRelease", &text, far)
        .unwrap_err();
    eprintln!("signed by {signer}; in 2120: {err}");
    assert!(matches!(err, DebianError::Signature { .. }), "{err:?}");
    assert!(err.to_string().contains("expired"), "{err}");

    // A suite whose Valid-Until has passed is refused (a replayed or stale file).
    let suite = "trixie-updates";
    let idx = repo.fetch_suite(&src, suite, &keyring).unwrap();
    let until = parse_release_date(
        idx.valid_until
            .as_deref()
            .expect("-updates has Valid-Until"),
    )
    .unwrap();
    let mut late = online();
    late.set_clock(Some(until + 1));
    let err = late.fetch_suite(&src, suite, &keyring).unwrap_err();
    eprintln!("after Valid-Until: {err}");
    assert!(err.to_string().contains("Valid-Until"), "{err}");
    late.set_check_valid_until(false);
    late.fetch_suite(&src, suite, &keyring).unwrap();
}
