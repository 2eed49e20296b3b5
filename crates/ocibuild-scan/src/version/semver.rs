//! Semantic Versioning 2.0 precedence (npm, Go modules, Go's standard library).
//!
//! Build metadata is ignored, prerelease identifiers compare numerically when both are numeric
//! and numeric ones sort first. Go's spellings are accepted: a leading `v`, `go1.21rc2`-style
//! toolchain versions and short `1.21` releases (missing parts are zero).

use std::cmp::Ordering;

use super::cmp_digits;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemVer {
    pub major: String,
    pub minor: String,
    pub patch: String,
    pub pre: Vec<String>,
}

fn numeric(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Parses a strict semver version (optionally `v`-prefixed). `None` when it is not one.
pub fn parse(v: &str) -> Option<SemVer> {
    let v = v.trim();
    let v = v.strip_prefix('v').unwrap_or(v);
    let ident_ok =
        |id: &str| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let v = match v.split_once('+') {
        // build metadata: dot-separated non-empty identifiers of [0-9A-Za-z-] (so one `+`)
        Some((v, build)) if build.split('.').all(ident_ok) => v,
        Some(_) => return None,
        None => v,
    };
    let (core, pre) = match v.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (v, None),
    };
    let mut parts = core.split('.');
    let major = parts.next().filter(|p| numeric(p))?;
    let minor = parts.next().filter(|p| numeric(p))?;
    let patch = parts.next().filter(|p| numeric(p))?;
    if parts.next().is_some() {
        return None;
    }
    let pre = match pre {
        Some(p) => {
            let ids: Vec<String> = p.split('.').map(str::to_string).collect();
            if !ids.iter().all(|i| ident_ok(i)) {
                return None;
            }
            ids
        }
        None => Vec::new(),
    };
    Some(SemVer {
        major: major.to_string(),
        minor: minor.to_string(),
        patch: patch.to_string(),
        pre,
    })
}

/// Parses a Go toolchain version (`go1.21.3`, `1.21`, `go1.21rc2`, `1.20.0-rc.1`) as semver.
pub fn parse_go(v: &str) -> Option<SemVer> {
    let v = v.trim();
    let v = v.strip_prefix("go").unwrap_or(v);
    if let Some(s) = parse(v) {
        return Some(s);
    }
    let v = v.strip_prefix('v').unwrap_or(v);
    // 1.21rc2 / 1.21beta1 / 1.21 / 1.21.3
    let cut = v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len());
    let (nums, pre) = v.split_at(cut);
    let mut parts = nums.split('.');
    let major = parts.next().filter(|p| numeric(p))?;
    let minor = parts.next().unwrap_or("0");
    let patch = parts.next().unwrap_or("0");
    if !numeric(minor) || !numeric(patch) || parts.next().is_some() {
        return None;
    }
    let pre = if pre.is_empty() {
        Vec::new()
    } else {
        let d = pre.find(|c: char| c.is_ascii_digit()).unwrap_or(pre.len());
        let (word, n) = pre.split_at(d);
        if n.is_empty() {
            vec![word.to_string()]
        } else {
            vec![word.to_string(), n.to_string()]
        }
    };
    Some(SemVer {
        major: major.to_string(),
        minor: minor.to_string(),
        patch: patch.to_string(),
        pre,
    })
}

fn cmp_ident(a: &str, b: &str) -> Ordering {
    match (numeric(a), numeric(b)) {
        (true, true) => cmp_digits(a, b),
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.cmp(b),
    }
}

impl Ord for SemVer {
    fn cmp(&self, o: &Self) -> Ordering {
        cmp_digits(&self.major, &o.major)
            .then_with(|| cmp_digits(&self.minor, &o.minor))
            .then_with(|| cmp_digits(&self.patch, &o.patch))
            .then_with(|| match (self.pre.is_empty(), o.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => {
                    for (a, b) in self.pre.iter().zip(&o.pre) {
                        let c = cmp_ident(a, b);
                        if c != Ordering::Equal {
                            return c;
                        }
                    }
                    self.pre.len().cmp(&o.pre.len())
                }
            })
    }
}

impl PartialOrd for SemVer {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

/// Compares two semver versions; `None` when either is not one.
pub fn compare(a: &str, b: &str) -> Option<Ordering> {
    Some(parse(a)?.cmp(&parse(b)?))
}

/// Compares two Go versions (modules or toolchain); `None` when either is not one.
pub fn compare_go(a: &str, b: &str) -> Option<Ordering> {
    Some(parse_go(a)?.cmp(&parse_go(b)?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn precedence() {
        let chain = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "v1.0.1",
            "1.10.0",
            "18446744073709551616.0.0",
        ];
        for w in chain.windows(2) {
            assert_eq!(compare(w[0], w[1]), Some(Ordering::Less), "{w:?}");
        }
        assert_eq!(compare("1.0.0+abc", "1.0.0"), Some(Ordering::Equal));
        assert_eq!(compare("1.0", "1.0.0"), None);
    }

    #[test]
    fn go_toolchain_versions() {
        assert_eq!(compare_go("go1.21", "1.21.0"), Some(Ordering::Equal));
        assert_eq!(compare_go("go1.21rc2", "1.21.0"), Some(Ordering::Less));
        assert_eq!(compare_go("go1.21rc2", "1.21.0-rc.3"), Some(Ordering::Less));
        assert_eq!(compare_go("go1.20.14", "1.21.0-rc.1"), Some(Ordering::Less));
        assert_eq!(
            compare_go("v0.0.0-20230101000000-abcdef012345", "0.1.0"),
            Some(Ordering::Less)
        );
    }

    /// Found by the npm range oracle: `1.0.0+a+b` (two `+`) and identifiers with characters
    /// outside `[0-9A-Za-z-]` are not versions for npm's `semver`; the gate read them and matched
    /// ranges with them.
    #[test]
    fn malformed_build_and_prerelease_identifiers_are_not_versions() {
        for bad in [
            "1.0.0+a+b",
            "1.0.0+",
            "1.0.0+a..b",
            "1.0.0-a_b",
            "1.0.0-é",
            "1.0.0+a/b",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        assert!(parse("1.0.0-x-1.2+build-5.sha").is_some());
        assert!(parse("v1.2.3+incompatible").is_some());
    }
}
