#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Variable expansion and word splitting, as BuildKit's shell lexer.

use ocibuild_dockerfile::{ExpandError, expand, expand_words, split_words};

fn vars(name: &str) -> Option<String> {
    match name {
        "a" => Some("A".into()),
        "empty" => Some(String::new()),
        "sp" => Some("x  y".into()),
        "path" => Some("/usr/local/bin".into()),
        "file" => Some("archive.tar.gz".into()),
        "HOME" => Some("/root".into()),
        _ => None,
    }
}

#[test]
fn expansion_table() {
    let cases: &[(&str, &str)] = &[
        ("$a", "A"),
        ("${a}", "A"),
        ("pre${a}post", "preApost"),
        ("$a/$a", "A/A"),
        ("$unset", ""),
        ("x${unset}y", "xy"),
        ("${unset:-def}", "def"),
        ("${empty:-def}", "def"),
        ("${a:-def}", "A"),
        ("${unset-def}", "def"),
        ("${empty-def}", ""),
        ("${a:+alt}", "alt"),
        ("${empty:+alt}", ""),
        ("${unset:+alt}", ""),
        ("${empty+alt}", "alt"),
        ("${unset+alt}", ""),
        ("${a?msg}", "A"),
        ("${empty?msg}", ""),
        ("${a:?msg}", "A"),
        // default words are expanded themselves, quotes processed
        ("${unset:-${a}-x}", "A-x"),
        ("${unset:-$HOME/.cache}", "/root/.cache"),
        ("${unset:-'$a'}", "$a"),
        ("${unset:-\"q $a\"}", "q A"),
        ("${unset:-${unset2:-deep}}", "deep"),
        // escapes and quotes
        ("\\$a", "$a"),
        ("\\${a}", "${a}"),
        ("'$a'", "$a"),
        ("'a  b'", "a  b"),
        ("\"$a  b\"", "A  b"),
        ("\"\\$a\"", "$a"),
        ("\"a\\b\"", "a\\b"),
        ("\"say \\\"hi\\\"\"", "say \"hi\""),
        ("a\\ b", "a b"),
        ("it's'", "its"),
        ("\"it's\"", "it's"),
        // a lone `$` stays
        ("$", "$"),
        ("a$", "a$"),
        ("$ a", "$ a"),
        ("$1", ""),
        // pattern operators
        ("${path%/*}", "/usr/local"),
        ("${path%%/*}", ""),
        ("${path#*/}", "usr/local/bin"),
        ("${path##*/}", "bin"),
        ("${file%.*}", "archive.tar"),
        ("${file%%.*}", "archive"),
        ("${file#*.}", "tar.gz"),
        ("${path/local/opt}", "/usr/opt/bin"),
        ("${path//\\//:}", ":usr:local:bin"),
        ("${file/[a-c]/X}", "Xrchive.tar.gz"),
        ("${file%.t?r.gz}", "archive"),
    ];
    for &(word, want) in cases {
        assert_eq!(expand(word, &vars, '\\').unwrap(), want, "word: {word}");
    }
}

#[test]
fn backtick_escape() {
    assert_eq!(expand("`$a", &vars, '`').unwrap(), "$a");
    assert_eq!(expand("c:\\$a", &vars, '`').unwrap(), "c:\\A");
    assert_eq!(expand("\"x`\"y\"", &vars, '`').unwrap(), "x\"y");
}

#[test]
fn expansion_errors() {
    assert_eq!(
        expand("${unset?must be set}", &vars, '\\').unwrap_err(),
        ExpandError::Required {
            name: "unset".into(),
            message: "must be set".into()
        }
    );
    assert_eq!(
        expand("${unset?must be set}", &vars, '\\')
            .unwrap_err()
            .to_string(),
        "unset: must be set"
    );
    assert_eq!(
        expand("${unset:?}", &vars, '\\').unwrap_err().to_string(),
        "unset: is not allowed to be unset"
    );
    assert_eq!(
        expand("${empty:?}", &vars, '\\').unwrap_err().to_string(),
        "empty: is not allowed to be empty"
    );
    assert_eq!(
        expand("${empty:?need a value}", &vars, '\\')
            .unwrap_err()
            .to_string(),
        "empty: need a value"
    );
    assert!(matches!(
        expand("${a", &vars, '\\').unwrap_err(),
        ExpandError::MissingBrace { .. }
    ));
    assert!(matches!(
        expand("${unset:-abc", &vars, '\\').unwrap_err(),
        ExpandError::MissingBrace { .. }
    ));
    assert!(matches!(
        expand("${}", &vars, '\\').unwrap_err(),
        ExpandError::BadSubstitution { .. }
    ));
    assert!(matches!(
        expand("${:-x}", &vars, '\\').unwrap_err(),
        ExpandError::BadSubstitution { .. }
    ));
    assert_eq!(
        expand("${a:x}", &vars, '\\').unwrap_err(),
        ExpandError::UnsupportedModifier {
            modifier: 'x',
            word: "${a:x}".into()
        }
    );
    assert!(matches!(
        expand("'abc", &vars, '\\').unwrap_err(),
        ExpandError::UnterminatedQuote { quote: '\'', .. }
    ));
    assert!(matches!(
        expand("\"abc", &vars, '\\').unwrap_err(),
        ExpandError::UnterminatedQuote { quote: '"', .. }
    ));
}

#[test]
fn word_splitting() {
    let w = |s: &str| expand_words(s, &vars, '\\').unwrap();
    assert_eq!(w("80 443/tcp"), vec!["80", "443/tcp"]);
    assert_eq!(w("a $sp \"b c\""), vec!["a", "x", "y", "b c"]);
    assert_eq!(w("\"$sp\""), vec!["x  y"]);
    assert_eq!(w("pre$sp"), vec!["prex", "y"]);
    assert_eq!(w("\"\""), vec![""]);
    assert_eq!(w("a\\ b c"), vec!["a b", "c"]);
    assert_eq!(w("$unset"), Vec::<String>::new());

    // split_words keeps quotes and escapes for a later expand()
    assert_eq!(
        split_words(r#"a "b c" d\ e 'f g'h"#, '\\'),
        vec!["a", r#""b c""#, r"d\ e", "'f g'h"]
    );
    assert_eq!(split_words(r#"k="v 2" x="#, '\\'), vec![r#"k="v 2""#, "x="]);
    assert_eq!(split_words("c:\\ d", '`'), vec!["c:\\", "d"]);
    assert_eq!(split_words("  ", '\\'), Vec::<String>::new());
}
