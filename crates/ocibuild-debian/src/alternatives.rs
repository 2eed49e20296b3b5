//! The links `update-alternatives` would make, read from maintainer scripts without running them.
//!
//! Debian packages register commands such as `/usr/bin/cc`, `/usr/bin/c++` or `/usr/bin/mvn`
//! from their `postinst` (`update-alternatives --install LINK NAME PATH PRIORITY [--slave LINK
//! NAME PATH]…`). ocibuild never runs maintainer scripts, so it reads those calls: shell line
//! continuations are joined, comments dropped, and `$var` / `${var}` replaced by the script's
//! own simple top-level assignments (`basedir=/usr/share/maven`). A call that still holds an
//! unresolved expansion (a loop variable, a command substitution) is skipped: it is not a link
//! ocibuild can know. JDKs register through such loops; [`crate::fixups::java_alternatives`]
//! covers them.

use std::collections::BTreeMap;

/// One `--slave` of an alternative.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slave {
    pub link: String,
    pub name: String,
    pub path: String,
}

/// One `update-alternatives --install` call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alternative {
    /// The generic name (`/usr/bin/cc`), absolute as in the script.
    pub link: String,
    pub name: String,
    /// The implementation it points to (`/usr/bin/gcc`).
    pub path: String,
    pub priority: i64,
    pub slaves: Vec<Slave>,
}

/// Every `update-alternatives --install` call of a maintainer script that can be read statically.
pub fn parse_alternatives(script: &str) -> Vec<Alternative> {
    let vars = assignments(script);
    let mut out = Vec::new();
    for line in logical_lines(script) {
        let words = shell_words(&line);
        let Some(start) = words.iter().position(|w| w == "update-alternatives") else {
            continue;
        };
        let words: Vec<String> = words[start + 1..]
            .iter()
            .filter_map(|w| substitute(w, &vars))
            .collect();
        // A word that could not be resolved was dropped: the call is not static, skip it.
        if words.len() != shell_words(&line)[start + 1..].len() {
            continue;
        }
        if let Some(a) = install_call(&words) {
            out.push(a);
        }
    }
    out
}

fn install_call(words: &[String]) -> Option<Alternative> {
    let i = words.iter().position(|w| w == "--install")?;
    let [link, name, path, prio] = words.get(i + 1..i + 5)? else {
        return None;
    };
    let priority = prio.parse().ok()?;
    let mut slaves = Vec::new();
    let mut j = i + 5;
    while j < words.len() {
        if words[j] == "--slave"
            && let Some([l, n, p]) = words.get(j + 1..j + 4)
        {
            slaves.push(Slave {
                link: l.clone(),
                name: n.clone(),
                path: p.clone(),
            });
            j += 4;
        } else {
            j += 1;
        }
    }
    Some(Alternative {
        link: link.clone(),
        name: name.clone(),
        path: path.clone(),
        priority,
        slaves,
    })
}

/// Lines with backslash-newline continuations joined.
fn logical_lines(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in script.lines() {
        if let Some(body) = line.strip_suffix('\\') {
            cur.push_str(body);
            cur.push(' ');
        } else {
            cur.push_str(line);
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Whitespace-separated words with simple quoting; a word starting with `#` ends the line.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None => match c {
                '\'' | '"' => {
                    quote = Some(c);
                    in_word = true;
                }
                '#' if !in_word => break,
                ';' | '&' | '|' => {
                    if in_word {
                        words.push(std::mem::take(&mut cur));
                        in_word = false;
                    }
                    words.push(c.to_string());
                }
                c if c.is_whitespace() => {
                    if in_word {
                        words.push(std::mem::take(&mut cur));
                        in_word = false;
                    }
                }
                c => {
                    cur.push(c);
                    in_word = true;
                }
            },
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// `NAME=value` assignments alone on their line, whose value has no expansion.
fn assignments(script: &str) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    for line in logical_lines(script) {
        let words = shell_words(&line);
        let [w] = words.as_slice() else { continue };
        let Some((k, v)) = w.split_once('=') else {
            continue;
        };
        let valid_name = !k.is_empty()
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !k.starts_with(|c: char| c.is_ascii_digit());
        if valid_name && !v.contains(['$', '`']) {
            vars.insert(k.to_string(), v.to_string());
        }
    }
    vars
}

/// `$x` / `${x}` replaced from `vars`; `None` if something stays unresolved.
fn substitute(word: &str, vars: &BTreeMap<String, String>) -> Option<String> {
    if word.contains('`') {
        return None;
    }
    let mut out = String::new();
    let mut rest = word;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, tail) = if let Some(b) = after.strip_prefix('{') {
            let end = b.find('}')?;
            (&b[..end], &b[end + 1..])
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        out.push_str(vars.get(name)?);
        rest = tail;
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn gcc_style_with_commented_slave() {
        let s = "#!/bin/sh\nset -e\nupdate-alternatives --quiet \\\n    --install /usr/bin/cc cc /usr/bin/gcc 20 \\\n    #--slave /usr/share/man/man1/cc.1.gz cc.1.gz /usr/share/man/man1/gcc.1.gz\n";
        let a = parse_alternatives(s);
        assert_eq!(a.len(), 1);
        assert_eq!(
            (a[0].link.as_str(), a[0].path.as_str(), a[0].priority),
            ("/usr/bin/cc", "/usr/bin/gcc", 20)
        );
        assert!(a[0].slaves.is_empty());
    }

    #[test]
    fn maven_style_with_variables_and_slaves() {
        let s = "basedir=/usr/share/maven\npriority=300\ncase \"$1\" in\nconfigure)\n    update-alternatives \\\n    --install /usr/bin/mvn mvn $basedir/bin/mvn $priority \\\n    --slave \\\n        /usr/bin/mvnDebug \\\n        mvnDebug \\\n        ${basedir}/bin/mvnDebug\n    ;;\nesac\n";
        let a = parse_alternatives(s);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].path, "/usr/share/maven/bin/mvn");
        assert_eq!(a[0].priority, 300);
        assert_eq!(
            a[0].slaves,
            vec![Slave {
                link: "/usr/bin/mvnDebug".into(),
                name: "mvnDebug".into(),
                path: "/usr/share/maven/bin/mvnDebug".into()
            }]
        );
    }

    #[test]
    fn loops_and_substitutions_are_skipped() {
        let s = "for i in java keytool; do\n  update-alternatives --install /usr/bin/$i $i $basedir/bin/$i 2111\ndone\nupdate-alternatives --install /usr/bin/x x `which y` 1\nupdate-alternatives --remove x /usr/bin/x\n";
        assert!(parse_alternatives(s).is_empty());
    }
}
