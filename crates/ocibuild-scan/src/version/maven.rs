//! Maven's `ComparableVersion` ordering: versions split into numbers and qualifiers at `.`, `-`
//! and digit/letter transitions; `alpha < beta < milestone < rc < snapshot < "" (release) < sp`,
//! unknown qualifiers after those (as text); `ga`, `final` and `release` are the release itself,
//! `cr` is `rc`, and `a1`/`b1`/`m1` are alpha/beta/milestone; trailing zeros and release
//! qualifiers are dropped before comparing. Maven 3.8's parsing: a qualifier after other items
//! (`1.0.0.X1`, a trailing `2.11.android`) opens a sub-list, as if written with `-`.

use std::cmp::Ordering;

use super::cmp_digits;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Int(String),
    Str(String),
    List(Vec<Item>),
}

const QUALIFIERS: [&str; 7] = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"];

fn comparable_qualifier(q: &str) -> String {
    match QUALIFIERS.iter().position(|x| *x == q) {
        Some(i) => i.to_string(),
        None => format!("{}-{q}", QUALIFIERS.len()),
    }
}

const RELEASE_INDEX: &str = "5";

fn string_item(v: &str, followed_by_digit: bool) -> Item {
    let mut v = v;
    if followed_by_digit && v.len() == 1 {
        v = match v {
            "a" => "alpha",
            "b" => "beta",
            "m" => "milestone",
            other => other,
        };
    }
    let v = match v {
        "ga" | "final" | "release" => "",
        "cr" => "rc",
        other => other,
    };
    Item::Str(v.to_string())
}

fn parse_item(is_digit: bool, s: &str) -> Item {
    if is_digit {
        let t = s.trim_start_matches('0');
        Item::Int(if t.is_empty() { "0".into() } else { t.into() })
    } else {
        string_item(s, false)
    }
}

impl Item {
    fn is_null(&self) -> bool {
        match self {
            Item::Int(v) => v == "0",
            Item::Str(v) => comparable_qualifier(v) == RELEASE_INDEX,
            Item::List(l) => l.is_empty(),
        }
    }

    fn cmp_opt(&self, other: Option<&Item>) -> Ordering {
        match (self, other) {
            (Item::Int(v), None) => {
                if v == "0" {
                    Ordering::Equal
                } else {
                    Ordering::Greater
                }
            }
            (Item::Int(a), Some(Item::Int(b))) => cmp_digits(a, b),
            (Item::Int(_), Some(_)) => Ordering::Greater,
            (Item::Str(v), None) => comparable_qualifier(v).as_str().cmp(RELEASE_INDEX),
            (Item::Str(_), Some(Item::Int(_))) => Ordering::Less,
            (Item::Str(a), Some(Item::Str(b))) => {
                comparable_qualifier(a).cmp(&comparable_qualifier(b))
            }
            (Item::Str(_), Some(Item::List(_))) => Ordering::Less,
            // the whole list against nothing, not just its first item (MNG-6964)
            (Item::List(l), None) => l
                .iter()
                .map(|i| i.cmp_opt(None))
                .find(|o| *o != Ordering::Equal)
                .unwrap_or(Ordering::Equal),
            (Item::List(_), Some(Item::Int(_))) => Ordering::Less,
            (Item::List(_), Some(Item::Str(_))) => Ordering::Greater,
            (Item::List(a), Some(Item::List(b))) => {
                for i in 0..a.len().max(b.len()) {
                    let r = match (a.get(i), b.get(i)) {
                        (None, None) => Ordering::Equal,
                        (None, Some(r)) => r.cmp_opt(None).reverse(),
                        (Some(l), r) => l.cmp_opt(r),
                    };
                    if r != Ordering::Equal {
                        return r;
                    }
                }
                Ordering::Equal
            }
        }
    }
}

fn normalize(list: &mut Vec<Item>) {
    let mut i = list.len();
    while i > 0 {
        i -= 1;
        if list[i].is_null() {
            list.remove(i);
        } else if !matches!(list[i], Item::List(_)) {
            break;
        }
    }
}

/// Builds the item tree. Sub-lists are kept as a stack of open lists and folded into their
/// parent (normalised) at the end, as Maven does.
fn parse(version: &str) -> Item {
    let v = version.trim().to_ascii_lowercase();
    let b = v.as_bytes();
    // stack of open lists; the last one is the current list
    let mut stack: Vec<Vec<Item>> = vec![Vec::new()];
    let mut is_digit = false;
    let mut start = 0;
    let push_item = |stack: &mut Vec<Vec<Item>>, item: Item| {
        if let Some(cur) = stack.last_mut() {
            cur.push(item);
        }
    };
    for (i, &c) in b.iter().enumerate() {
        if c == b'.' {
            let item = if i == start {
                Item::Int("0".into())
            } else {
                parse_item(is_digit, &v[start..i])
            };
            push_item(&mut stack, item);
            start = i + 1;
        } else if c == b'-' {
            let item = if i == start {
                Item::Int("0".into())
            } else {
                parse_item(is_digit, &v[start..i])
            };
            push_item(&mut stack, item);
            start = i + 1;
            stack.push(Vec::new());
        } else if c.is_ascii_digit() {
            if !is_digit && i > start {
                // 1.0.0.X1 < 1.0.0-X2: a qualifier after other items opens its own list
                if stack.last().is_some_and(|l| !l.is_empty()) {
                    stack.push(Vec::new());
                }
                push_item(&mut stack, string_item(&v[start..i], true));
                start = i;
                stack.push(Vec::new());
            }
            is_digit = true;
        } else {
            if is_digit && i > start {
                push_item(&mut stack, parse_item(true, &v[start..i]));
                start = i;
                stack.push(Vec::new());
            }
            is_digit = false;
        }
    }
    if v.len() > start {
        // a trailing `.X` qualifier is read as `-X`
        if !is_digit && stack.last().is_some_and(|l| !l.is_empty()) {
            stack.push(Vec::new());
        }
        push_item(&mut stack, parse_item(is_digit, &v[start..]));
    }
    // close the lists innermost first: each is normalised, then becomes its parent's last item
    while stack.len() > 1 {
        let mut inner = stack.pop().unwrap_or_default();
        normalize(&mut inner);
        push_item(&mut stack, Item::List(inner));
    }
    let mut root = stack.pop().unwrap_or_default();
    normalize(&mut root);
    Item::List(root)
}

/// Compares two Maven versions (every string is a Maven version).
pub fn compare(a: &str, b: &str) -> Ordering {
    parse(a).cmp_opt(Some(&parse(b)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn maven_orderings() {
        // from Maven's ComparableVersionTest
        let chain = [
            "1-alpha2snapshot",
            "1-alpha2",
            "1-alpha-123",
            "1-beta-2",
            "1-beta123",
            "1-m2",
            "1-m11",
            "1-rc",
            "1-cr2",
            "1-rc123",
            "1-SNAPSHOT",
            "1",
            "1-sp",
            "1-sp2",
            "1-sp123",
            "1-abc",
            "1-def",
            "1-pom-1",
            "1-1-snapshot",
            "1-1",
            "1-2",
            "1-123",
            "2.0.0",
            "2.0.1",
            "2.10",
        ];
        for w in chain.windows(2) {
            assert_eq!(compare(w[0], w[1]), Ordering::Less, "{w:?}");
            assert_eq!(compare(w[1], w[0]), Ordering::Greater, "{w:?}");
        }
        for (a, b) in [
            ("1", "1.0.0"),
            ("1-ga", "1"),
            ("1-final", "1.0"),
            ("1.0.RELEASE", "1"),
            ("1cr1", "1rc1"),
            ("1a1", "1-alpha-1"),
            ("2.17.1", "2.17.1"),
        ] {
            assert_eq!(compare(a, b), Ordering::Equal, "{a} == {b}");
        }
        assert_eq!(compare("2.14.1", "2.15.0"), Ordering::Less);
        assert_eq!(compare("2.15.0-rc1", "2.15.0"), Ordering::Less);
    }
}
