//! Hostile `WWW-Authenticate` headers: a valid header (Bearer and Basic challenges with realm,
//! service, scope, quoted values with commas and escapes) with one piece mutated (an
//! unterminated quote, a trailing backslash, stray `=`/`,`, control and non-ASCII characters,
//! a huge value, a cut). The parser never panics or hangs; an unmutated header parses back to
//! its realm, service and scope. Each run prints how many cases got past the first parse
//! stage (at least one challenge came out) and how many kept their realm.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};

use ocibuild_registry::auth::parse_www_authenticate;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};

fn cases() -> u32 {
    std::env::var("OCIBUILD_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

#[derive(Clone, Debug)]
enum Mutation {
    None,
    Cut(u16),
    Insert(u16, String),
    Replace(u16, char),
}

fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9:/._-]{0,40}",
        "[ -~]{0,40}",
        Just("repository:app/web:pull,push".to_string()),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => Just(Mutation::None),
        1 => (0u16..1000).prop_map(Mutation::Cut),
        2 => (
            0u16..1000,
            prop_oneof![
                Just("\"".to_string()),
                Just("\\".to_string()),
                Just("=".to_string()),
                Just(",,,".to_string()),
                Just("==".to_string()),
                Just("\u{0}".to_string()),
                Just("\u{7f}é漢\u{202e}".to_string()),
                Just("x".repeat(100_000)),
                Just(" Basic realm=".to_string()),
                any::<String>(),
            ]
        )
            .prop_map(|(a, s)| Mutation::Insert(a, s)),
        1 => (0u16..1000, any::<char>()).prop_map(|(a, c)| Mutation::Replace(a, c)),
    ]
}

#[test]
fn hostile_www_authenticate_headers() {
    let (n, past, kept) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/hostile_auth.proptest-regressions"
        )))),
        ..Config::default()
    });
    let strategy = (
        value(),
        value(),
        value(),
        any::<bool>(),
        any::<bool>(),
        mutation(),
    );
    let result = runner.run(
        &strategy,
        |(realm, service, scope, basic_first, quote_service, m)| {
            n.fetch_add(1, Ordering::Relaxed);
            let bearer = format!(
                "Bearer realm={},service={},scope={}",
                quoted(&realm),
                if quote_service
                    || service.is_empty()
                    || !service
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || ".-_:/".contains(c))
                {
                    quoted(&service)
                } else {
                    service.clone()
                },
                quoted(&scope)
            );
            let header = if basic_first {
                format!("Basic realm=\"basic\", {bearer}")
            } else {
                bearer
            };
            let at = |pm: u16, s: &str| {
                let i = s.len() * usize::from(pm) / 1000;
                (0..=i).rev().find(|j| s.is_char_boundary(*j)).unwrap_or(0)
            };
            let hostile = match &m {
                Mutation::None => header.clone(),
                Mutation::Cut(pm) => header[..at(*pm, &header)].to_string(),
                Mutation::Insert(pm, ins) => {
                    let i = at(*pm, &header);
                    format!("{}{ins}{}", &header[..i], &header[i..])
                }
                Mutation::Replace(pm, c) => {
                    let i = at(*pm, &header);
                    let mut s = header[..i].to_string();
                    s.push(*c);
                    s.push_str(header[i..].get(1..).unwrap_or(""));
                    s
                }
            };
            let got = parse_www_authenticate(&hostile);
            if !got.is_empty() {
                past.fetch_add(1, Ordering::Relaxed);
            }
            let bearer = got.iter().find(|c| c.is_bearer());
            if bearer.and_then(|c| c.realm()) == Some(realm.as_str()) {
                kept.fetch_add(1, Ordering::Relaxed);
            }
            if matches!(m, Mutation::None) {
                let b = bearer.expect("the bearer challenge");
                prop_assert_eq!(b.realm(), Some(realm.as_str()));
                prop_assert_eq!(b.service(), Some(service.as_str()));
                prop_assert_eq!(b.param("scope"), Some(scope.as_str()));
                if basic_first {
                    prop_assert!(got.iter().any(|c| c.is_basic()));
                }
            }
            Ok(())
        },
    );
    eprintln!(
        "hostile WWW-Authenticate: {} cases, {} past the first parse stage (a challenge), {} kept the bearer realm",
        n.load(Ordering::Relaxed),
        past.load(Ordering::Relaxed),
        kept.load(Ordering::Relaxed)
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}
