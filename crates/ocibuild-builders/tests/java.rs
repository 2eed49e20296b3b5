#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ocibuild_builders::{BuildersError, Distro, Options, glob_filter};

/// What every Debian-JDK mvn step gets in MAVEN_OPTS.
const OPTS: &str = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:-UsePerfData";
/// What JDK 21 adds: Maven's classes in a class-data-sharing archive in the `jvm` cache mount.
const CDS21: &str = " -XX:+AutoCreateSharedArchive \
    -XX:SharedArchiveFile=/root/.cache/ocibuild-jvm/maven-jdk21.jsa -XX:+VerifySharedSpaces \
    -Xlog:cds=off";
/// The dependency step reads the archive but never writes it (its JVM loads other classes than
/// the compiler's, and writing costs seconds).
const CDS21_DEPS: &str = " -XX:SharedArchiveFile=/root/.cache/ocibuild-jvm/maven-jdk21.jsa \
    -XX:+VerifySharedSpaces -Xlog:cds=off";

fn pom(props: &str, rest: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?>\n<project>\n  <modelVersion>4.0.0</modelVersion>\n  <groupId>g</groupId>\n  \
         <artifactId>a</artifactId>\n  <version>3.1.4</version>\n  <properties>{props}</properties>\n{rest}\n</project>\n"
    )
}

const APP: &str =
    "package com.example;\npublic class App { public static void main(String[] a) {} }\n";

/// The argv of the remote (default) Maven compile step of a single-module project.
const REMOTE_ARGV: &[&str] = &["mvn", "-B", "-q", "process-classes"];

/// The argv of the remote (default) Maven dependency step.
const REMOTE_DEPS_ARGV: &[&str] = &[
    "mvn",
    "-B",
    "-q",
    "dependency:copy-dependencies",
    "-DoutputDirectory=/out/libs",
    "-DincludeScope=runtime",
];

/// What a single-module project's dependency step reads: the pom and Maven's own config files
/// (the app's settings too, when Maven resolves remotely).
const DEPS_INPUTS: &[&str] = &[
    "pom.xml",
    ".mvn/maven.config",
    ".mvn/jvm.config",
    ".mvn/extensions.xml",
];

/// The Debian packages of the plugins an air-gapped Maven build adds to the root.
const PLUGIN_PACKAGES: &[&str] = &[
    "libmaven-resources-plugin-java",
    "libmaven-compiler-plugin-java",
    "libsurefire-java",
    "libmaven-jar-plugin-java",
    "libmaven-dependency-plugin-java",
];

const DEBIAN: &str = "<ocibuild.maven.repository>debian</ocibuild.maven.repository>";

#[test]
fn java_maven_plan() {
    // testdata/apps/java-maven builds air-gapped from Debian's Maven repository
    let p = plan_ok(&testdata("java-maven"), &opts());
    assert_eq!(p.lang.to_string(), "java");
    assert_eq!(p.toolchain.profile, "java-build");
    assert_eq!(p.toolchain.version, "JDK 21");
    let mut want = strs(PLUGIN_PACKAGES);
    want.push("libcommons-lang3-java".into());
    assert_eq!(p.toolchain.packages, want);
    assert!(
        p.toolchain
            .path_prepend
            .iter()
            .any(|d| d.starts_with("/usr/lib/jvm/java-21-openjdk-") && d.ends_with("/bin")),
        "{:?}",
        p.toolchain.path_prepend
    );
    assert!(
        p.toolchain
            .path_prepend
            .contains(&"/usr/share/maven/bin".to_string())
    );
    assert_eq!(p.runtime.profile, "java");
    // the dependency jars from the pom alone (a source edit reuses the step), then the
    // classes: the lifecycle up to process-classes, no test compilation, no jar
    assert_eq!(step_names(&p), ["mvn-dependencies", "mvn-compile"]);
    let dep = step(&p, "mvn-dependencies");
    assert_eq!(
        dep.argv,
        strs(&[
            "mvn",
            "-B",
            "-q",
            "--offline",
            "-Dmaven.repo.local=/usr/share/maven-repo",
            "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies",
            "-DoutputDirectory=/out/libs",
            "-DincludeScope=runtime"
        ])
    );
    assert_eq!(dep.inputs.as_deref(), Some(&strs(DEPS_INPUTS)[..]));
    assert!(!dep.network, "nothing to download");
    assert_eq!(
        env_of(dep, "MAVEN_OPTS"),
        Some(&*format!("{OPTS}{CDS21_DEPS}"))
    );
    let s = step(&p, "mvn-compile");
    assert_eq!(
        s.argv,
        strs(&[
            "mvn",
            "-B",
            "-q",
            "--offline",
            "-Dmaven.repo.local=/usr/share/maven-repo",
            "process-classes",
        ])
    );
    assert_eq!(s.inputs, None, "the whole source");
    assert!(!s.network, "nothing to download");
    assert!(
        env_of(s, "JAVA_HOME")
            .unwrap()
            .starts_with("/usr/lib/jvm/java-21-openjdk-")
    );
    // no ~/.m2 local repository; the JIT's first tier only (a short-lived mvn runs about
    // twice as fast: what dominates a cold runner's rebuild after a source edit); JDK 21 keeps
    // Maven's classes in a class-data-sharing archive in the `jvm` cache mount, one per JDK,
    // checked by the JVM before use
    assert_eq!(env_of(s, "MAVEN_OPTS"), Some(&*format!("{OPTS}{CDS21}")));
    assert_eq!(p.cache_mounts.len(), 1, "{:?}", p.cache_mounts);
    assert_eq!(p.cache_mounts[0].name, "jvm");
    assert_eq!(p.cache_mounts[0].target, "/root/.cache/ocibuild-jvm");
    assert!(reasons_contain(
        &p,
        "offline from Debian's Maven repository"
    ));
    assert!(reasons_contain(
        &p,
        "libcommons-lang3-java for the app's dependencies"
    ));
    // commons-lang3 is a runtime dependency: the jar layers come first
    assert_eq!(
        layer_names(&p),
        ["dependency-jars", "snapshot-jars", "resources", "classes"]
    );
    assert!(
        p.layers[..2]
            .iter()
            .all(|l| l.from == "/out/libs" && l.to == "/app/libs")
    );
    let res = glob_filter(&p.layers[2].include, &p.layers[2].exclude).unwrap();
    let cls = glob_filter(&p.layers[3].include, &p.layers[3].exclude).unwrap();
    assert!(res.matches("app.properties", false));
    assert!(!res.matches("com/example/App.class", false));
    assert!(cls.matches("com/example/App.class", false));
    assert!(!cls.matches("app.properties", false));
    assert!(
        p.layers[2..]
            .iter()
            .all(|l| l.to == "/app/classes" && l.from == "/src/target/classes")
    );
    assert_eq!(
        p.config.entrypoint,
        [
            "/usr/bin/java",
            "-cp",
            "/app/classes:/app/libs/*",
            "com.example.App"
        ]
    );
    assert_eq!(p.config.labels["org.opencontainers.image.version"], "1.0.0");
    assert!(p.source_exclude.contains(&"target".to_string()));

    // bookworm: JDK 17, and the dependency plugin version Debian 12 ships
    let p = plan_ok(&testdata("java-maven"), &on(Distro::Bookworm));
    assert_eq!(p.toolchain.version, "JDK 17");
    assert_eq!(p.runtime.profile, "java");
    assert_eq!(
        step(&p, "mvn-dependencies").argv[5],
        "org.apache.maven.plugins:maven-dependency-plugin:3.5.0:copy-dependencies"
    );
    assert_eq!(p.toolchain.packages, want);
    // JDK 17's java has no -XX:+AutoCreateSharedArchive: no archive, no `jvm` mount
    for name in ["mvn-dependencies", "mvn-compile"] {
        assert_eq!(env_of(step(&p, name), "MAVEN_OPTS"), Some(OPTS));
    }
    assert!(p.cache_mounts.is_empty(), "{:?}", p.cache_mounts);
}

#[test]
fn java_maven_remote_by_default() {
    // no property (or `remote`): Maven downloads, with the network and the ~/.m2 cache
    for props in [
        "<maven.compiler.release>17</maven.compiler.release>",
        "<maven.compiler.release>17</maven.compiler.release>\
         <ocibuild.maven.repository>remote</ocibuild.maven.repository>",
    ] {
        let d = app(&[
            ("pom.xml", &pom(props, "")),
            ("src/main/java/com/example/App.java", APP),
        ]);
        let p = plan_ok(d.path(), &opts());
        assert!(p.toolchain.packages.is_empty(), "{props}");
        // no dependencies, no parent: no dependency step
        assert_eq!(step_names(&p), ["mvn-compile"], "{props}");
        let s = step(&p, "mvn-compile");
        assert_eq!(s.argv, strs(REMOTE_ARGV), "{props}");
        assert!(s.network);
        assert_eq!(
            env_of(s, "MAVEN_OPTS"),
            Some(&*format!(
                "-Dmaven.repo.local=/root/.m2/repository {OPTS}{CDS21}"
            ))
        );
        assert_eq!(p.cache_mounts[0].name, "m2");
        assert_eq!(p.cache_mounts[0].target, "/root/.m2");
        assert_eq!(p.cache_mounts[1].name, "jvm");
        assert_eq!(p.cache_mounts.len(), 2);
        // no dependencies, no parent: no jar layers
        assert_eq!(layer_names(&p), ["resources", "classes"]);
        assert!(reasons_contain(&p, "Maven resolves remotely"));
        assert!(
            reasons_contain(&p, DEBIAN),
            "the explanation names the switch: {:?}",
            p.reasons
        );
    }
}

#[test]
fn java_maven_debian_repository_packages_and_errors() {
    let with = |props: &str, extra: &[(&str, &str)]| {
        let pom = pom(props, "");
        let mut files = vec![
            ("pom.xml", pom.as_str()),
            ("src/main/java/com/example/App.java", APP),
        ];
        files.extend_from_slice(extra);
        app(&files)
    };
    // the app's packages: commas or spaces, duplicates dropped; a property may be referenced
    let d = with(
        "<repo>debian</repo><ocibuild.maven.repository>${repo}</ocibuild.maven.repository>\
         <ocibuild.debian.packages>libgson-java, libcommons-lang3-java\n  libgson-java \
         libsurefire-java</ocibuild.debian.packages>",
        &[],
    );
    let p = plan_ok(d.path(), &opts());
    let mut want = strs(PLUGIN_PACKAGES);
    want.extend(strs(&["libgson-java", "libcommons-lang3-java"]));
    assert_eq!(p.toolchain.packages, want);
    assert!(!step(&p, "mvn-compile").network);

    // a newer JDK's package comes first
    let d = with(
        &format!("<maven.compiler.release>25</maven.compiler.release>{DEBIAN}"),
        &[],
    );
    let p = plan_ok(d.path(), &opts());
    let mut want = strs(&["openjdk-25-jdk-headless"]);
    want.extend(strs(PLUGIN_PACKAGES));
    assert_eq!(p.toolchain.packages, want);

    // --toolchain host: the host's own repository, no packages, still offline
    let mut o = opts();
    o.toolchain_host = true;
    let p = plan_ok(d.path(), &o);
    assert!(p.toolchain.packages.is_empty());
    let s = step(&p, "mvn-compile");
    assert!(s.argv.contains(&"--offline".to_string()));
    assert_eq!(env_of(s, "JAVA_HOME"), None);

    // errors name pom.xml, the property's line and the way out
    // (properties, extra files, what the message must say)
    type Case<'a> = (String, Vec<(&'a str, &'a str)>, &'a [&'a str]);
    let cases: Vec<Case> = vec![
        (
            "<ocibuild.maven.repository>central</ocibuild.maven.repository>".into(),
            vec![],
            &["\"central\"", "remote", "debian"],
        ),
        (
            DEBIAN.into(),
            vec![(".mvn/settings.xml", "<settings/>")],
            &[".mvn/settings.xml", "drop"],
        ),
        (
            DEBIAN.into(),
            vec![("settings.xml", "<settings/>")],
            &["settings.xml"],
        ),
        (
            "<ocibuild.debian.packages>libgson-java</ocibuild.debian.packages>".into(),
            vec![],
            &["resolves remotely", DEBIAN],
        ),
        (
            format!("{DEBIAN}<ocibuild.debian.packages>libgson-java;rm</ocibuild.debian.packages>"),
            vec![],
            &["\"libgson-java;rm\"", "not a Debian package name"],
        ),
        (
            format!("{DEBIAN}<ocibuild.debian.packages>LibFoo</ocibuild.debian.packages>"),
            vec![],
            &["\"LibFoo\""],
        ),
    ];
    for (props, extra, needles) in cases {
        let d = with(&props, &extra);
        let err = plan_err(d.path(), &opts());
        assert!(matches!(err, BuildersError::Parse { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("pom.xml:7:"), "{props}: {msg}");
        for n in needles {
            assert!(msg.contains(n), "{props}: {msg} lacks {n}");
        }
    }
}

#[test]
fn jdk_choice_table() {
    // (release, distro, Ok((jdk version, packages, runtime)) | Err(needle))
    type Want = Result<(&'static str, Vec<&'static str>, &'static str), &'static str>;
    let cases: Vec<(&str, Distro, Want)> = vec![
        ("8", Distro::Trixie, Ok(("JDK 21", vec![], "java"))),
        ("1.8", Distro::Bookworm, Ok(("JDK 17", vec![], "java"))),
        ("17", Distro::Bookworm, Ok(("JDK 17", vec![], "java"))),
        ("21", Distro::Trixie, Ok(("JDK 21", vec![], "java"))),
        (
            "22",
            Distro::Trixie,
            Ok(("JDK 25", vec!["openjdk-25-jdk-headless"], "java25")),
        ),
        (
            "25",
            Distro::Trixie,
            Ok(("JDK 25", vec!["openjdk-25-jdk-headless"], "java25")),
        ),
        ("26", Distro::Trixie, Err("release 25 or older")),
        ("21", Distro::Bookworm, Err("--distro trixie")),
    ];
    for (release, distro, want) in cases {
        let d = app(&[
            (
                "pom.xml",
                &pom(
                    &format!(
                        "<maven.compiler.release>{release}</maven.compiler.release><mainClass>com.example.App</mainClass>"
                    ),
                    "",
                ),
            ),
            ("src/main/java/com/example/App.java", APP),
        ]);
        match want {
            Ok((v, pkgs, rt)) => {
                let p = plan_ok(d.path(), &on(distro));
                assert_eq!(p.toolchain.version, v, "{release} {distro}");
                assert_eq!(p.toolchain.packages, strs(&pkgs), "{release} {distro}");
                assert_eq!(p.runtime.profile, rt, "{release} {distro}");
                let jdk = v.trim_start_matches("JDK ");
                assert!(
                    p.toolchain.path_prepend[0].contains(&format!("java-{jdk}-openjdk")),
                    "{:?}",
                    p.toolchain.path_prepend
                );
            }
            Err(needle) => {
                let err = plan_err(d.path(), &on(distro));
                assert!(matches!(err, BuildersError::Version { .. }), "{err:?}");
                assert!(err.to_string().contains(needle), "{err}");
            }
        }
    }
}

#[test]
fn settings_dependencies_and_main_from_sources() {
    let d = app(&[
        (
            "pom.xml",
            &pom(
                "<maven.compiler.release>17</maven.compiler.release>",
                "<dependencies><dependency><groupId>com.google.code.gson</groupId><artifactId>gson</artifactId><version>2.10.1</version></dependency></dependencies>",
            ),
        ),
        (".mvn/settings.xml", "<settings/>"),
        ("src/main/java/com/example/App.java", APP),
        (
            "src/test/java/com/example/AppTest.java",
            "package com.example;\nclass AppTest { public static void main(String[] a) {} }\n",
        ),
    ]);
    let p = plan_ok(d.path(), &opts());
    assert_eq!(step_names(&p), ["mvn-dependencies", "mvn-compile"]);
    let dep = step(&p, "mvn-dependencies");
    let mut want = strs(&REMOTE_DEPS_ARGV[..3]);
    want.extend(strs(&["-s", "/src/.mvn/settings.xml"]));
    want.extend(strs(&REMOTE_DEPS_ARGV[3..]));
    assert_eq!(dep.argv, want);
    // the settings are an input of the dependency step: a mirror change resolves again
    let mut inputs = strs(&["pom.xml", ".mvn/settings.xml", "settings.xml"]);
    inputs.extend(strs(&DEPS_INPUTS[1..]));
    assert_eq!(dep.inputs.as_deref(), Some(&inputs[..]));
    assert!(dep.network);
    assert_eq!(
        env_of(dep, "MAVEN_OPTS"),
        Some(&*format!(
            "-Dmaven.repo.local=/root/.m2/repository {OPTS}{CDS21_DEPS}"
        ))
    );
    let s = step(&p, "mvn-compile");
    assert_eq!(
        s.argv,
        strs(&[
            "mvn",
            "-B",
            "-q",
            "-s",
            "/src/.mvn/settings.xml",
            "process-classes"
        ])
    );
    // the app's settings (a corporate mirror, say) keep Maven remote
    assert!(s.network);
    assert!(p.toolchain.packages.is_empty());
    assert!(reasons_contain(
        &p,
        "through the app's settings .mvn/settings.xml"
    ));
    assert_eq!(
        layer_names(&p),
        ["dependency-jars", "snapshot-jars", "resources", "classes"]
    );
    let deps = glob_filter(&p.layers[0].include, &p.layers[0].exclude).unwrap();
    let snaps = glob_filter(&p.layers[1].include, &p.layers[1].exclude).unwrap();
    assert!(deps.matches("gson-2.10.1.jar", false));
    assert!(!deps.matches("mylib-1.0-SNAPSHOT.jar", false));
    assert!(snaps.matches("mylib-1.0-SNAPSHOT.jar", false));
    assert!(!snaps.matches("gson-2.10.1.jar", false));
    assert_eq!(p.layers[0].key_files, ["pom.xml"]);
    assert!(p.layers[1].key_files.is_empty());
    assert_eq!(p.layers[0].to, "/app/libs");
    // the test class's main does not compete
    assert_eq!(p.config.entrypoint.last().unwrap(), "com.example.App");
    assert!(reasons_contain(&p, "src/main/java/com/example/App.java"));

    // two mains under src/main/java: an error listing them; --main picks
    std::fs::write(
        d.path().join("src/main/java/com/example/Tool.java"),
        "package com.example;\nclass Tool { static void main(String[] a) {} }\n",
    )
    .unwrap();
    let err = plan_err(d.path(), &opts());
    assert!(matches!(err, BuildersError::Entrypoint { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("com.example.App, com.example.Tool"),
        "{err}"
    );
    let mut o = opts();
    o.main = Some("com.example.Tool".into());
    assert_eq!(
        plan_ok(d.path(), &o).config.entrypoint.last().unwrap(),
        "com.example.Tool"
    );
}

#[test]
fn unsupported_maven_shapes() {
    // an aggregator is <packaging>pom</packaging>
    let d = app(&[(
        "pom.xml",
        &pom("", "<modules><module>core</module></modules>"),
    )]);
    let err = plan_err(d.path(), &opts()).to_string();
    assert!(
        err.contains("<modules>") && err.contains("not pom"),
        "{err}"
    );
    let d = app(&[("pom.xml", &pom("", "<packaging>war</packaging>"))]);
    assert!(plan_err(d.path(), &opts()).to_string().contains("war"));
    let d = app(&[("pom.xml", "<project>\n  <properties>\n</project>\n")]);
    let err = plan_err(d.path(), &opts());
    assert!(matches!(err, BuildersError::Parse { .. }), "{err:?}");
    assert!(err.to_string().contains("pom.xml:3"), "{err}");
}

#[test]
fn java_plain_plan() {
    let p = plan_ok(&testdata("java-plain"), &opts());
    assert_eq!(step_names(&p), ["javac"]);
    let s = step(&p, "javac");
    assert_eq!(
        s.argv,
        strs(&[
            "javac",
            "--release",
            "21",
            "-encoding",
            "UTF-8",
            "-d",
            "/out/classes",
            "src/com/example/Hello.java"
        ])
    );
    assert!(!s.network);
    assert!(p.cache_mounts.is_empty());
    assert_eq!(layer_names(&p), ["classes"]);
    assert_eq!(p.layers[0].from, "/out/classes");
    assert_eq!(p.layers[0].to, "/app/classes");
    assert_eq!(
        p.config.entrypoint,
        ["/usr/bin/java", "-cp", "/app/classes", "com.example.Hello"]
    );
    assert_eq!(p.runtime.profile, "java");
    let p = plan_ok(&testdata("java-plain"), &on(Distro::Bookworm));
    assert_eq!(step(&p, "javac").argv[2], "17");
}

#[test]
fn plain_main_discovery() {
    let d = app(&[
        (
            "A.java",
            "public class A { public static void main(String[] x) {} }",
        ),
        (
            "b/B.java",
            "package b;\n// public static void main(String[] x)\nclass B {}",
        ),
        (
            "c/C.java",
            "package c;\nclass C { public static void main(String... x) {} }",
        ),
        (
            "test/T.java",
            "class T { public static void main(String[] x) {} }",
        ),
    ]);
    let err = plan_err(d.path(), &opts());
    let msg = err.to_string();
    assert!(msg.contains("A, c.C"), "{msg}");
    assert!(!msg.contains("b.B") && !msg.contains(" T"), "{msg}");
    let mut o = opts();
    o.main = Some("c.C".into());
    let p = plan_ok(d.path(), &o);
    assert_eq!(p.config.entrypoint.last().unwrap(), "c.C");
    assert_eq!(
        &step(&p, "javac").argv[7..],
        &strs(&["A.java", "b/B.java", "c/C.java"])[..]
    );
    o.main = Some("nope.Main".into());
    let msg = plan_err(d.path(), &o).to_string();
    assert!(msg.contains("nope.Main") && msg.contains("A, c.C"), "{msg}");
    // no main at all
    let d = app(&[("Lib.java", "class Lib {}")]);
    assert!(
        plan_err(d.path(), &opts())
            .to_string()
            .contains("static void main")
    );
    // an --entrypoint makes the main class unnecessary
    let mut o = opts();
    o.entrypoint = Some(strs(&["/usr/bin/java", "-version"]));
    assert_eq!(
        plan_ok(d.path(), &o).config.entrypoint,
        ["/usr/bin/java", "-version"]
    );
}

#[test]
fn host_toolchain_drops_java_home() {
    let mut o = opts();
    o.toolchain_host = true;
    let p = plan_ok(&testdata("java-maven"), &o);
    assert_eq!(p.toolchain.profile, "host");
    // the host's java is unknown: no JVM flags, no class-data-sharing archive
    for name in ["mvn-dependencies", "mvn-compile"] {
        assert_eq!(env_of(step(&p, name), "JAVA_HOME"), None);
        assert_eq!(env_of(step(&p, name), "MAVEN_OPTS"), None);
    }
    assert!(p.cache_mounts.iter().all(|c| c.name != "jvm"));
}

/// A reactor pom (packaging pom) listing `modules`, resolving from Debian's repository.
fn root_pom(modules: &[&str]) -> String {
    pom(
        &format!(
            "{DEBIAN}<ocibuild.debian.packages>libcommons-lang3-java</ocibuild.debian.packages>"
        ),
        &format!(
            "<packaging>pom</packaging><modules>{}</modules>",
            modules
                .iter()
                .map(|m| format!("<module>{m}</module>"))
                .collect::<String>()
        ),
    )
}

fn module_pom(artifact: &str, rest: &str) -> String {
    format!(
        "<project><modelVersion>4.0.0</modelVersion><parent><groupId>g</groupId><artifactId>a</artifactId>\
         <version>3.1.4</version></parent><artifactId>{artifact}</artifactId>{rest}</project>"
    )
}

fn main_src(pkg: &str, class: &str) -> String {
    format!("package {pkg};\npublic class {class} {{ public static void main(String[] a) {{}} }}\n")
}

#[test]
fn multi_module_builds_the_module_with_a_main_class() {
    let p = plan_ok(&testdata("java-multimodule"), &opts());
    let s = step(&p, "mvn-package");
    let argv = s.argv.join(" ");
    assert!(argv.contains(" -pl app -am package "), "{argv}");
    assert!(argv.contains("--offline"), "{argv}");
    assert!(
        argv.contains("-DoutputDirectory=target/ocibuild-libs"),
        "{argv}"
    );
    assert!(!s.network);
    let mut want = strs(PLUGIN_PACKAGES);
    want.push("libcommons-lang3-java".into());
    assert_eq!(p.toolchain.packages, want);
    assert_eq!(
        layer_names(&p),
        ["dependency-jars", "snapshot-jars", "resources", "classes"]
    );
    let l = |n: &str| p.layers.iter().find(|l| l.name == n).unwrap();
    assert_eq!(l("dependency-jars").from, "/src/app/target/ocibuild-libs");
    assert_eq!(l("classes").from, "/src/app/target/classes");
    assert_eq!(l("resources").from, "/src/app/target/classes");
    // sibling modules are snapshot jars (whatever their version), never dependency jars
    let snap = &l("snapshot-jars").include;
    for j in [
        "*-SNAPSHOT.jar",
        "shop-api-1.0.0-SNAPSHOT.jar",
        "shop-core-1.0.0-SNAPSHOT.jar",
    ] {
        assert!(snap.contains(&j.to_string()), "{snap:?}");
    }
    assert_eq!(&l("dependency-jars").exclude, snap);
    assert_eq!(
        p.config.entrypoint,
        [
            "/usr/bin/java",
            "-cp",
            "/app/classes:/app/libs/*",
            "com.example.app.ShopServer"
        ]
    );
    assert!(reasons_contain(
        &p,
        "module app the only module with a main class"
    ));
    assert!(reasons_contain(&p, "mvn -pl app -am"));
    // the release comes from the root pom (the modules inherit it): JDK 21 for release 17
    assert!(
        reasons_contain(&p, "Java 17 from pom.xml"),
        "{:#?}",
        p.reasons
    );
}

#[test]
fn multi_module_choice_and_errors() {
    let lib = module_pom("lib", "");
    let cli = module_pom("cli", "");
    let web = module_pom(
        "web-server",
        "<properties><mainClass>w.Web</mainClass></properties>",
    );
    let d = app(&[
        ("pom.xml", &root_pom(&["lib", "tools/cli", "web"])),
        ("lib/pom.xml", &lib),
        (
            "lib/src/main/java/l/Lib.java",
            "package l;\npublic class Lib {}\n",
        ),
        ("tools/cli/pom.xml", &cli),
        ("tools/cli/src/main/java/c/Cli.java", &main_src("c", "Cli")),
        ("web/pom.xml", &web),
    ]);
    // two modules with a main class and no --module: an error listing them
    let err = plan_err(d.path(), &opts()).to_string();
    assert!(err.contains("several modules have a main class"), "{err}");
    assert!(err.contains("tools/cli: c.Cli"), "{err}");
    assert!(err.contains("web (web-server): w.Web"), "{err}");
    assert!(err.contains("--module"), "{err}");
    // --module by directory, last component or artifactId
    for name in ["tools/cli", "cli"] {
        let o = Options {
            module: Some(name.into()),
            ..Options::default()
        };
        let p = plan_ok(d.path(), &o);
        assert!(
            step(&p, "mvn-package")
                .argv
                .join(" ")
                .contains("-pl tools/cli -am")
        );
        assert_eq!(p.config.entrypoint.last().unwrap(), "c.Cli");
        assert!(reasons_contain(&p, "chosen with --module"));
    }
    let o = Options {
        module: Some("web-server".into()),
        ..Options::default()
    };
    let p = plan_ok(d.path(), &o);
    assert_eq!(p.config.entrypoint.last().unwrap(), "w.Web");
    assert!(
        reasons_contain(&p, "web/pom.xml property mainClass"),
        "{:#?}",
        p.reasons
    );
    // --main picks the module that has it
    let o = Options {
        main: Some("c.Cli".into()),
        ..Options::default()
    };
    assert!(
        step(&plan_ok(d.path(), &o), "mvn-package")
            .argv
            .contains(&"tools/cli".to_string())
    );
    // an unknown module names the modules there are
    let o = Options {
        module: Some("nope".into()),
        ..Options::default()
    };
    let err = plan_err(d.path(), &o).to_string();
    assert!(
        err.contains("--module") && err.contains("lib") && err.contains("tools/cli"),
        "{err}"
    );
    // a module without a main class needs --main
    let o = Options {
        module: Some("lib".into()),
        ..Options::default()
    };
    let err = plan_err(d.path(), &o).to_string();
    assert!(
        err.contains("no class with `static void main(` in lib/src/main/java"),
        "{err}"
    );
    // --module on a single-module project or another language is an error, not ignored
    let single = app(&[
        ("pom.xml", &pom("", "")),
        ("src/main/java/com/example/App.java", APP),
    ]);
    let o = Options {
        module: Some("app".into()),
        ..Options::default()
    };
    assert!(
        plan_err(single.path(), &o)
            .to_string()
            .contains("not a multi-module")
    );
    assert!(
        plan_err(&testdata("go-hello"), &o)
            .to_string()
            .contains("--module")
    );

    // no module with a main class
    let d = app(&[("pom.xml", &root_pom(&["lib"])), ("lib/pom.xml", &lib)]);
    let err = plan_err(d.path(), &opts()).to_string();
    assert!(
        err.contains("no module has a main class") && err.contains("--module"),
        "{err}"
    );
    // modules outside the app dir, missing poms
    for (m, want) in [
        ("../other", "not a directory inside the app"),
        ("gone", "gone/pom.xml does not exist"),
    ] {
        let d = app(&[("pom.xml", &root_pom(&[m]))]);
        let err = plan_err(d.path(), &opts()).to_string();
        assert!(err.contains(want), "{err}");
    }
}
