#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ocibuild_builders::{BuildersError, Lang, detect};

#[test]
fn every_testdata_app_is_detected() {
    let cases: &[(&str, Lang, &str)] = &[
        (
            "go-hello",
            Lang::Go,
            "go.mod found at go.mod (module example.com/hello, go 1.22)",
        ),
        (
            "go-cmd",
            Lang::Go,
            "go.mod found at go.mod (module example.com/gocmd, go 1.22)",
        ),
        (
            "go-new",
            Lang::Go,
            "go.mod found at go.mod (module example.com/gonew, go 1.26)",
        ),
        (
            "node-app",
            Lang::Node,
            "package.json found (name node-app, version 1.0.0)",
        ),
        ("python-app", Lang::Python, "requirements.txt found"),
        (
            "python-pyproject",
            Lang::Python,
            "pyproject.toml found (project hello-app, version 0.1.0, requires-python >=3.11)",
        ),
        (
            "java-maven",
            Lang::Java,
            "pom.xml found (com.example:demo:1.0.0, Java 17)",
        ),
        ("java-plain", Lang::Java, "src/com/example/Hello.java"),
    ];
    for (name, lang, reason) in cases {
        let d = detect(&testdata(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(d.lang, *lang, "{name}");
        assert!(
            d.reasons.iter().any(|r| r.contains(reason)),
            "{name}: {:?} lacks {reason:?}",
            d.reasons
        );
    }
}

#[test]
fn ambiguous_directory_names_both_and_suggests_lang() {
    let d = app(&[("go.mod", "module x\ngo 1.22\n"), ("package.json", "{}")]);
    let err = detect(d.path()).unwrap_err();
    assert!(matches!(err, BuildersError::Ambiguous { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("go: go.mod"), "{msg}");
    assert!(msg.contains("node: package.json"), "{msg}");
    assert!(msg.contains("--lang"), "{msg}");
}

#[test]
fn empty_directory_names_the_files_looked_for() {
    let d = app(&[("README.md", "hi")]);
    let err = detect(d.path()).unwrap_err();
    assert!(matches!(err, BuildersError::NotDetected { .. }), "{err:?}");
    let msg = err.to_string();
    for f in [
        "go.mod",
        "package.json",
        "requirements.txt",
        "pyproject.toml",
        "setup.py",
        "uv.lock",
        "pom.xml",
        "*.java",
    ] {
        assert!(msg.contains(f), "{msg} lacks {f}");
    }
}

#[test]
fn java_sources_do_not_compete_with_a_manifest() {
    let d = app(&[
        ("package.json", "{\"name\":\"x\"}"),
        ("tools/Gen.java", "class Gen {}"),
    ]);
    assert_eq!(detect(d.path()).unwrap().lang, Lang::Node);
    let d = app(&[("Main.java", "class Main {}")]);
    assert_eq!(detect(d.path()).unwrap().lang, Lang::Java);
    // sources in skipped directories do not count
    let d = app(&[("node_modules/x/A.java", "class A {}")]);
    assert!(detect(d.path()).is_err());
}

#[test]
fn python_manifests_alone_or_together_are_python() {
    for files in [
        vec![("setup.py", "")],
        vec![("uv.lock", ""), ("pyproject.toml", "")],
        vec![("requirements.txt", ""), ("pyproject.toml", "")],
    ] {
        let d = app(&files);
        assert_eq!(detect(d.path()).unwrap().lang, Lang::Python, "{files:?}");
    }
}

#[test]
fn gradle_is_detected_as_java_and_refused_when_planning() {
    let d = app(&[("build.gradle", "plugins { id 'java' }")]);
    assert_eq!(detect(d.path()).unwrap().lang, Lang::Java);
    let err = plan_err(d.path(), &opts());
    assert!(matches!(err, BuildersError::Unsupported { .. }), "{err:?}");
    assert!(err.to_string().contains("Gradle"), "{err}");
}

#[test]
fn missing_directory_is_an_io_error() {
    let err = detect(std::path::Path::new("/nonexistent/ocibuild/app")).unwrap_err();
    assert!(matches!(err, BuildersError::Io { .. }), "{err:?}");
    assert!(
        err.to_string().contains("/nonexistent/ocibuild/app"),
        "{err}"
    );
}

#[test]
fn lang_and_distro_parse_and_print() {
    for (s, l) in [
        ("go", Lang::Go),
        ("node", Lang::Node),
        ("python", Lang::Python),
        ("java", Lang::Java),
    ] {
        assert_eq!(s.parse::<Lang>().unwrap(), l);
        assert_eq!(l.to_string(), s);
    }
    assert!("rust".parse::<Lang>().is_err());
    use ocibuild_builders::Distro;
    for (s, d) in [
        ("trixie", Distro::Trixie),
        ("debian13", Distro::Trixie),
        ("bookworm", Distro::Bookworm),
        ("debian12", Distro::Bookworm),
    ] {
        assert_eq!(s.parse::<Distro>().unwrap(), d);
    }
    assert_eq!(Distro::default(), Distro::Trixie);
    let err = "sid".parse::<Distro>().unwrap_err();
    assert!(err.to_string().contains("bookworm"), "{err}");
}

#[test]
fn forced_lang_skips_detection_but_needs_the_manifest() {
    let d = app(&[("go.mod", "module x\ngo 1.22\n"), ("package.json", "{}")]);
    let mut o = opts();
    o.lang = Some(Lang::Go);
    let err = plan_err(d.path(), &o);
    // go.mod is there: the failure is about the missing main package, not ambiguity
    assert!(matches!(err, BuildersError::Entrypoint { .. }), "{err:?}");
    o.lang = Some(Lang::Python);
    let err = plan_err(d.path(), &o);
    assert!(matches!(err, BuildersError::NotDetected { .. }), "{err:?}");
}
