//! Debian version ordering, as `dpkg --compare-versions` does it: `[epoch:]upstream[-revision]`,
//! compared part by part with dpkg's `verrevcmp` (a tilde sorts before everything, even the end).

use std::cmp::Ordering;

/// A Debian version split into epoch, upstream version and revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebVersion<'a> {
    pub epoch: u64,
    pub upstream: &'a str,
    pub revision: &'a str,
}

/// Splits `v`; `None` when the epoch is not a number.
pub fn parse(v: &str) -> Option<DebVersion<'_>> {
    let v = v.trim();
    let (epoch, rest) = match v.split_once(':') {
        Some((e, rest)) => (e.parse::<u64>().ok()?, rest),
        None => (0, v),
    };
    let (upstream, revision) = match rest.rfind('-') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    Some(DebVersion {
        epoch,
        upstream,
        revision,
    })
}

/// dpkg's `order()`: a tilde before the end, the end and digits, then letters, then the rest.
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

fn verrevcmp(a: &[u8], b: &[u8]) -> Ordering {
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let mut first_diff = 0;
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let ac = order(a.get(i).copied());
            let bc = order(b.get(j).copied());
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        while i < a.len() && a[i].is_ascii_digit() && j < b.len() && b[j].is_ascii_digit() {
            if first_diff == 0 {
                first_diff = i32::from(a[i]) - i32::from(b[j]);
            }
            i += 1;
            j += 1;
        }
        if i < a.len() && a[i].is_ascii_digit() {
            return Ordering::Greater;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            return Ordering::Less;
        }
        if first_diff != 0 {
            return first_diff.cmp(&0);
        }
    }
    Ordering::Equal
}

/// Compares two Debian versions; `None` when either epoch is malformed.
pub fn compare(a: &str, b: &str) -> Option<Ordering> {
    let (a, b) = (parse(a)?, parse(b)?);
    Some(
        a.epoch
            .cmp(&b.epoch)
            .then_with(|| verrevcmp(a.upstream.as_bytes(), b.upstream.as_bytes()))
            .then_with(|| verrevcmp(a.revision.as_bytes(), b.revision.as_bytes())),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn known_orderings() {
        let lt = [
            ("1.0~rc1", "1.0"),
            ("1.0", "1:0.1"),
            ("1.0-1", "1.0-1+deb12u1"),
            ("2.36-9", "2.36-9+deb12u4"),
            ("1.0~~", "1.0~"),
            ("1.0", "1.0a"),
            ("1.0a", "1.0+"),
            ("9", "10"),
            ("1.2.3-1~bpo12+1", "1.2.3-1"),
        ];
        for (a, b) in lt {
            assert_eq!(compare(a, b), Some(Ordering::Less), "{a} < {b}");
            assert_eq!(compare(b, a), Some(Ordering::Greater), "{b} > {a}");
        }
        assert_eq!(compare("0:1.0", "1.0"), Some(Ordering::Equal));
        assert_eq!(compare("1.00", "1.0"), Some(Ordering::Equal));
        assert_eq!(compare("x:1", "1"), None);
    }
}
