//! Debian package versions, parsed and compared exactly as dpkg does
//! (`lib/dpkg/parsehelp.c` `parseversion`, `lib/dpkg/version.c` `dpkg_version_compare`).
//!
//! A version is `[epoch:]upstream[-revision]`: the epoch is everything before the first `:`
//! (a non-negative integer, default 0), the revision everything after the last `-` (absent
//! when there is no `-`). Epochs compare numerically; upstream and revision compare with
//! dpkg's `verrevcmp`: alternating non-digit and digit runs, where in non-digit runs `~` sorts
//! before everything (even the end of the string), letters before non-letters, and digit runs
//! compare numerically. An absent revision compares equal to `0` (so `1.0 == 1.0-0`), and
//! `0:1.0 == 1.0`; [`Version`]'s equality is dpkg's, while [`Display`](fmt::Display) prints
//! the version as written.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use crate::error::{DebianError, Result};

/// A Debian version (`[epoch:]upstream[-revision]`).
#[derive(Clone, Debug)]
pub struct Version {
    epoch: u64,
    upstream: String,
    /// Empty when the version has no `-revision`.
    revision: String,
    /// As written (trimmed), for display and lockfiles.
    raw: String,
}

impl Version {
    /// Parse a version, rejecting what dpkg rejects (empty parts, a bad epoch, characters
    /// outside `[A-Za-z0-9.+~-:]` in upstream / `[A-Za-z0-9.+~]` in the revision, spaces).
    /// An upstream not starting with a digit is accepted (dpkg only warns).
    pub fn parse(s: &str) -> Result<Version> {
        let bad = |detail: &str| DebianError::Parse {
            what: format!("version {s:?}"),
            detail: detail.to_string(),
        };
        let raw = s.trim();
        if raw.is_empty() {
            return Err(bad("version string is empty"));
        }
        if raw.chars().any(char::is_whitespace) {
            return Err(bad("version string has embedded spaces"));
        }
        let (epoch, rest) = match raw.split_once(':') {
            Some((e, rest)) => {
                if e.is_empty() {
                    return Err(bad("epoch in version is empty"));
                }
                if !e.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad("epoch in version is not a number"));
                }
                let epoch = e
                    .parse::<u64>()
                    .map_err(|_| bad("epoch in version is too big"))?;
                if rest.is_empty() {
                    return Err(bad("nothing after colon in version number"));
                }
                (epoch, rest)
            }
            None => (0, raw),
        };
        let (upstream, revision) = match rest.rsplit_once('-') {
            Some((u, r)) => {
                if r.is_empty() {
                    return Err(bad("revision number is empty"));
                }
                (u, r)
            }
            None => (rest, ""),
        };
        if upstream.is_empty() {
            return Err(bad("version number is empty"));
        }
        if !upstream
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-+~:".contains(&b))
        {
            return Err(bad("invalid character in version number"));
        }
        if !revision
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".+~".contains(&b))
        {
            return Err(bad("invalid character in revision number"));
        }
        Ok(Version {
            epoch,
            upstream: upstream.to_string(),
            revision: revision.to_string(),
            raw: raw.to_string(),
        })
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    /// The Debian revision, `None` for a native version without `-`.
    pub fn revision(&self) -> Option<&str> {
        if self.revision.is_empty() {
            None
        } else {
            Some(&self.revision)
        }
    }

    /// The version as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Whether `self REL other` holds (e.g. `self >= other` for [`Rel::Ge`]).
    pub fn satisfies(&self, rel: Rel, other: &Version) -> bool {
        rel.holds(self.cmp(other))
    }
}

/// dpkg's `order()`: `~` first, then the end of a run, then letters, then everything else.
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp` on an upstream version or a revision.
fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0usize, 0usize);
    while i < a.len() || j < b.len() {
        // Non-digit run.
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let ac = order(a.get(i).copied());
            let bc = order(b.get(j).copied());
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        // Digit run: skip leading zeros, then the longer run wins, else the first difference.
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while i < a.len() && a[i].is_ascii_digit() && j < b.len() && b[j].is_ascii_digit() {
            if first_diff == Ordering::Equal {
                first_diff = a[i].cmp(&b[j]);
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
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| verrevcmp(&self.upstream, &other.upstream))
            .then_with(|| verrevcmp(&self.revision, &other.revision))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

/// Hash the canonical form `verrevcmp` equality sees: the list of (non-digit run, number
/// without leading zeros) segments, with a lone `("", 0)` (e.g. `0`, or an absent revision)
/// being the empty list.
fn hash_part<H: Hasher>(s: &str, state: &mut H) {
    let b = s.as_bytes();
    let mut segs: Vec<(&[u8], &[u8])> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && !b[i].is_ascii_digit() {
            i += 1;
        }
        let text = &b[start..i];
        while i < b.len() && b[i] == b'0' {
            i += 1;
        }
        let nstart = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        segs.push((text, &b[nstart..i]));
    }
    if segs.len() == 1 && segs[0].0.is_empty() && segs[0].1.is_empty() {
        segs.clear();
    }
    segs.hash(state);
}

impl Hash for Version {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.epoch.hash(state);
        hash_part(&self.upstream, state);
        hash_part(&self.revision, state);
    }
}

impl FromStr for Version {
    type Err = DebianError;

    fn from_str(s: &str) -> Result<Self> {
        Version::parse(s)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// A version relation in a dependency field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rel {
    /// `<<`
    Lt,
    /// `<=` (also the obsolete `<`)
    Le,
    /// `=`
    Eq,
    /// `>=` (also the obsolete `>`)
    Ge,
    /// `>>`
    Gt,
}

impl Rel {
    /// Whether the relation holds given `candidate.cmp(constraint)`.
    pub fn holds(self, ord: Ordering) -> bool {
        match self {
            Rel::Lt => ord == Ordering::Less,
            Rel::Le => ord != Ordering::Greater,
            Rel::Eq => ord == Ordering::Equal,
            Rel::Ge => ord != Ordering::Less,
            Rel::Gt => ord == Ordering::Greater,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Rel::Lt => "<<",
            Rel::Le => "<=",
            Rel::Eq => "=",
            Rel::Ge => ">=",
            Rel::Gt => ">>",
        }
    }
}

impl FromStr for Rel {
    type Err = DebianError;

    /// `<<`, `<=`, `=`, `>=`, `>>`; the obsolete `<` and `>` mean `<=` and `>=` (as in dpkg).
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "<<" => Rel::Lt,
            "<=" | "<" => Rel::Le,
            "=" => Rel::Eq,
            ">=" | ">" => Rel::Ge,
            ">>" => Rel::Gt,
            _ => {
                return Err(DebianError::Parse {
                    what: format!("version relation {s:?}"),
                    detail: "expected one of <<, <=, =, >=, >>".to_string(),
                });
            }
        })
    }
}

impl fmt::Display for Rel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::collections::hash_map::DefaultHasher;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn h(s: &str) -> u64 {
        let mut st = DefaultHasher::new();
        v(s).hash(&mut st);
        st.finish()
    }

    /// (a, expected ordering of a vs b, b) — mostly from dpkg's `t-version.c` and
    /// Debian Policy §5.6.12, plus real security-update version strings.
    const CASES: &[(&str, Ordering, &str)] = {
        use Ordering::{Equal as E, Greater as G, Less as L};
        &[
            // dpkg t-version.c: test_version_compare
            ("0:0-0", E, "0:0-0"),
            ("0:0-00", E, "0:0-0"),
            ("0:0-0", E, "0:00-0"),
            ("1:2-3", E, "1:2-3"),
            ("1:2-3", L, "2:2-3"),
            ("2:2-3", G, "1:2-3"),
            ("0:1-3", L, "0:2-3"),
            ("0:2-3", G, "0:1-3"),
            ("0:1-1", L, "0:1-2"),
            ("0:1-2", G, "0:1-1"),
            // numeric vs lexical
            ("1.0", L, "1.1"),
            ("1.9", L, "1.10"),
            ("1.10", G, "1.9"),
            ("1.010", E, "1.10"),
            ("10", G, "9"),
            // epochs
            ("1:0.9", G, "2.0"),
            ("0:1.0", E, "1.0"),
            ("1:1.0", G, "1.0"),
            ("2:0", G, "1:999999"),
            // tilde sorts before everything, even the end
            ("1.0~rc1", L, "1.0"),
            ("1.0~", L, "1.0"),
            ("1.0~~", L, "1.0~"),
            ("1.0~~a", L, "1.0~"),
            ("1.0~rc1", L, "1.0~rc2"),
            ("1.0~rc1", G, "1.0~beta"),
            ("3.11~", L, "3.11"),
            ("3.11~", L, "3.11.2-1"),
            ("3.11.2-1~deb12u1", L, "3.11.2-1"),
            // letters before non-letters, both after the end
            ("1.0a", G, "1.0"),
            ("1.0+", G, "1.0"),
            ("1.0.", G, "1.0"),
            ("1.0a", L, "1.0+"),
            ("1.0a", L, "1.0."),
            ("1.0+a", L, "1.0.a"),
            ("a", L, "b"),
            ("A", L, "a"),
            ("Z", L, "a"),
            ("1.0", E, "1.0"),
            // revisions
            ("1.0-1", L, "1.0-1+deb12u1"),
            ("1.0-1+deb12u1", L, "1.0-2"),
            ("2.36-9+deb12u4", L, "2.36-9+deb12u10"),
            ("2.36-9+deb12u10", G, "2.36-9+deb12u9"),
            ("2.41-12", G, "2.36-9+deb12u10"),
            ("1.2.3", E, "1.2.3-0"),
            ("1.2.3", E, "1.2.3-00"),
            ("1.2.3", L, "1.2.3-0.1"),
            ("1.2.3", L, "1.2.3-1"),
            ("1.2.3-0~", L, "1.2.3"),
            // upstream containing hyphens: the revision is after the last one
            ("1.0-beta-1", L, "1.0-beta-2"),
            ("1.0-beta-1", G, "1.0-alpha-9"),
            ("1.0-1", G, "1.0-0"),
            // upstream containing colons (allowed with an epoch)
            ("1:1:0-1", L, "1:1:1-1"),
            // real-world
            ("3.0.11-1~deb12u2", G, "3.0.11-1~deb12u1"),
            ("252.30-1~deb12u2", L, "252.33-1~deb12u1"),
            ("1:2.38.1-5+deb12u3", G, "2.38.1-5+deb12u3"),
            ("7.88.1-10+deb12u12", L, "8.14.1-2"),
            ("2.4.59-1~deb10u1", L, "2.4.59-1"),
            ("1.2.13.dfsg-1", G, "1.2.13-1"),
        ]
    };

    #[test]
    fn dpkg_comparisons() {
        for &(a, want, b) in CASES {
            assert_eq!(v(a).cmp(&v(b)), want, "{a} vs {b}");
            assert_eq!(v(b).cmp(&v(a)), want.reverse(), "{b} vs {a}");
            assert_eq!(v(a) == v(b), want == Ordering::Equal, "{a} == {b}");
            if want == Ordering::Equal {
                assert_eq!(h(a), h(b), "hash({a}) == hash({b})");
            }
        }
    }

    #[test]
    fn sorting_is_total() {
        let mut vs: Vec<Version> = [
            "1.0", "1.0~rc1", "1:0.1", "1.0-1", "1.0+b1", "1.0a", "0.9", "1.0~~", "1.0-0.1",
        ]
        .iter()
        .map(|s| v(s))
        .collect();
        vs.sort();
        let got: Vec<&str> = vs.iter().map(Version::as_str).collect();
        assert_eq!(
            got,
            [
                "0.9", "1.0~~", "1.0~rc1", "1.0", "1.0-0.1", "1.0-1", "1.0a", "1.0+b1", "1:0.1"
            ]
        );
    }

    #[test]
    fn parse_parts_and_display() {
        let x = v("1:2.36-9+deb12u4");
        assert_eq!(
            (x.epoch(), x.upstream(), x.revision()),
            (1, "2.36", Some("9+deb12u4"))
        );
        assert_eq!(x.to_string(), "1:2.36-9+deb12u4");
        let y = v(" 1.0-beta-1 ");
        assert_eq!(
            (y.epoch(), y.upstream(), y.revision()),
            (0, "1.0-beta", Some("1"))
        );
        assert_eq!(y.to_string(), "1.0-beta-1");
        let z: Version = "3.11".parse().unwrap();
        assert_eq!((z.epoch(), z.upstream(), z.revision()), (0, "3.11", None));
        // dpkg only warns about a non-digit start
        assert_eq!(v("a1").upstream(), "a1");
    }

    #[test]
    fn parse_errors() {
        for bad in [
            "", "  ", ":1.0", "a:1.0", "1:", "1.0-", "-1", "1.0 1", "1.0_1", "1.0-1:2", "1.0-1_2",
            "-1:1.0",
        ] {
            assert!(Version::parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn relations() {
        let cases: &[(&str, &str, &str, bool)] = &[
            ("1.0", "<<", "1.1", true),
            ("1.1", "<<", "1.1", false),
            ("1.1", "<=", "1.1", true),
            ("1.1", "<", "1.1", true), // obsolete: means <=
            ("1.1", "=", "1.1-0", true),
            ("1.1", ">=", "1.1~", true),
            ("1.1", ">", "1.1", true), // obsolete: means >=
            ("1.1", ">>", "1.1", false),
            ("1.2", ">>", "1.1", true),
            ("3.11.2-1", ">=", "3.11~", true),
            ("2.36-9", ">=", "2.36", true),
        ];
        for &(a, rel, b, want) in cases {
            let r: Rel = rel.parse().unwrap();
            assert_eq!(v(a).satisfies(r, &v(b)), want, "{a} {rel} {b}");
        }
        assert_eq!("<".parse::<Rel>().unwrap(), Rel::Le);
        assert_eq!(">".parse::<Rel>().unwrap(), Rel::Ge);
        assert!("=>".parse::<Rel>().is_err());
        assert_eq!(Rel::Lt.to_string(), "<<");
    }
}
