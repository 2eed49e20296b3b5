//! Version numbers and the constraint languages apps use to ask for a toolchain: Go's
//! `go 1.22` lines, npm's semver ranges (`engines.node`) and PEP 440 specifiers
//! (`requires-python`). Only what is needed to check one concrete version against them.

use std::cmp::Ordering;

/// Leading numeric components: `1.22.3` → [1, 22, 3]; `go1.21rc1` → [1, 21]; `v18` → [18].
pub(crate) fn numeric_parts(s: &str) -> Option<Vec<u64>> {
    let s = s.trim();
    let s = s.strip_prefix("go").unwrap_or(s);
    let s = s.strip_prefix(['v', 'V']).unwrap_or(s);
    let mut out = Vec::new();
    for comp in s.split('.') {
        let digits: String = comp.chars().take_while(|c| c.is_ascii_digit()).collect();
        if digits.is_empty() {
            break;
        }
        out.push(digits.parse().ok()?);
        if digits.len() != comp.len() {
            break; // `21rc1`: stop after the number
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Compare zero-padded.
pub(crate) fn cmp_parts(a: &[u64], b: &[u64]) -> Ordering {
    let n = a.len().max(b.len());
    for i in 0..n {
        let (x, y) = (
            a.get(i).copied().unwrap_or(0),
            b.get(i).copied().unwrap_or(0),
        );
        match x.cmp(&y) {
            Ordering::Equal => {}
            o => return o,
        }
    }
    Ordering::Equal
}

/// A Go version (`1.22`, `1.22.3`, `go1.23.4`, `1.21rc1`) as (major, minor, patch).
pub(crate) fn go_version(s: &str) -> Option<(u64, u64, u64)> {
    let p = numeric_parts(s)?;
    Some((
        p[0],
        p.get(1).copied().unwrap_or(0),
        p.get(2).copied().unwrap_or(0),
    ))
}

// ---------------------------------------------------------------------------------------------
// npm semver ranges

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

type V3 = [u64; 3];

/// A partial version: `1`, `1.2`, `1.2.3`, with `x`/`X`/`*` wildcards (→ None from there on).
fn partial(s: &str) -> Result<[Option<u64>; 3], String> {
    let s = s.trim().trim_start_matches(['v', 'V', '=']);
    // drop pre-release and build metadata: `1.2.3-beta.1+x`
    let core = s.split(['-', '+']).next().unwrap_or("");
    let mut out = [None, None, None];
    if core.is_empty() {
        return Ok(out);
    }
    for (i, comp) in core.split('.').enumerate() {
        if i >= 3 {
            return Err(format!("{s:?} has more than three numbers"));
        }
        if matches!(comp, "x" | "X" | "*") {
            break;
        }
        out[i] = Some(
            comp.parse()
                .map_err(|_| format!("{comp:?} in {s:?} is not a number"))?,
        );
    }
    Ok(out)
}

fn fill(p: [Option<u64>; 3]) -> V3 {
    [p[0].unwrap_or(0), p[1].unwrap_or(0), p[2].unwrap_or(0)]
}

/// The exclusive upper bound of a partial: `1` → 2.0.0, `1.2` → 1.3.0; None for `*`/full.
fn next_up(p: [Option<u64>; 3]) -> Option<V3> {
    match p {
        [None, _, _] => None,
        [Some(a), None, _] => Some([a + 1, 0, 0]),
        [Some(a), Some(b), None] => Some([a, b + 1, 0]),
        _ => None,
    }
}

fn desugar(op: &str, p: [Option<u64>; 3], out: &mut Vec<(Op, V3)>) {
    let any = p[0].is_none();
    match op {
        "" | "=" => {
            if any {
                return;
            }
            match next_up(p) {
                Some(up) => {
                    out.push((Op::Ge, fill(p)));
                    out.push((Op::Lt, up));
                }
                None => out.push((Op::Eq, fill(p))),
            }
        }
        ">=" if !any => out.push((Op::Ge, fill(p))),
        ">" => match next_up(p) {
            Some(up) => out.push((Op::Ge, up)),
            None if any => out.push((Op::Lt, [0, 0, 0])), // `>*` matches nothing
            None => out.push((Op::Gt, fill(p))),
        },
        "<" => {
            if any {
                out.push((Op::Lt, [0, 0, 0]));
            } else {
                out.push((Op::Lt, fill(p)));
            }
        }
        "<=" => match next_up(p) {
            Some(up) => out.push((Op::Lt, up)),
            None if any => {}
            None => out.push((Op::Le, fill(p))),
        },
        "~" | "~>" => {
            if any {
                return;
            }
            out.push((Op::Ge, fill(p)));
            let up = match p {
                [Some(a), None, _] => [a + 1, 0, 0],
                [Some(a), Some(b), _] => [a, b + 1, 0],
                _ => return,
            };
            out.push((Op::Lt, up));
        }
        "^" => {
            if any {
                return;
            }
            out.push((Op::Ge, fill(p)));
            let up = match p {
                [Some(0), Some(0), Some(c)] => [0, 0, c + 1],
                [Some(0), Some(0), None] => [0, 1, 0],
                [Some(0), Some(b), _] => [0, b + 1, 0],
                [Some(0), None, _] => [1, 0, 0],
                [Some(a), _, _] => [a + 1, 0, 0],
                _ => return,
            };
            out.push((Op::Lt, up));
        }
        _ => {}
    }
}

fn parse_comparator_set(s: &str) -> Result<Vec<(Op, V3)>, String> {
    let s = s.trim();
    let mut out = Vec::new();
    // hyphen range: `A - B`
    if let Some((lo, hi)) = s.split_once(" - ") {
        let lo = partial(lo)?;
        let hi = partial(hi)?;
        if lo[0].is_some() {
            out.push((Op::Ge, fill(lo)));
        }
        match next_up(hi) {
            Some(up) => out.push((Op::Lt, up)),
            None if hi[0].is_none() => {}
            None => out.push((Op::Le, fill(hi))),
        }
        return Ok(out);
    }
    // Glue operators to their version: `>= 18` → `>=18`.
    let mut tokens: Vec<String> = Vec::new();
    let mut pending_op = String::new();
    for t in s.split_whitespace() {
        if t.chars().all(|c| matches!(c, '<' | '>' | '=' | '~' | '^')) {
            pending_op.push_str(t);
            continue;
        }
        tokens.push(format!("{pending_op}{t}"));
        pending_op.clear();
    }
    if !pending_op.is_empty() {
        return Err(format!("operator {pending_op:?} without a version"));
    }
    for t in tokens {
        let op_len = t
            .find(|c: char| !matches!(c, '<' | '>' | '=' | '~' | '^'))
            .unwrap_or(t.len());
        let (op, v) = t.split_at(op_len);
        if !matches!(op, "" | "=" | ">=" | ">" | "<" | "<=" | "~" | "~>" | "^") {
            return Err(format!("unknown operator {op:?}"));
        }
        desugar(op, partial(v)?, &mut out);
    }
    Ok(out)
}

/// Whether the npm semver `range` accepts `version` (`20.19.2`). Supports `||`, hyphen
/// ranges, `^`, `~`, comparison operators, `x`/`*` wildcards and partial versions.
pub(crate) fn npm_range_satisfied(range: &str, version: &str) -> Result<bool, String> {
    let v = fill(partial(version)?);
    let range = range.trim();
    if range.is_empty() {
        return Ok(true);
    }
    for set in range.split("||") {
        let comps = parse_comparator_set(set)?;
        let ok = comps.iter().all(|(op, b)| {
            let o = v.cmp(b);
            match op {
                Op::Lt => o == Ordering::Less,
                Op::Le => o != Ordering::Greater,
                Op::Gt => o == Ordering::Greater,
                Op::Ge => o != Ordering::Less,
                Op::Eq => o == Ordering::Equal,
            }
        });
        if ok {
            return Ok(true);
        }
    }
    Ok(false)
}

// ---------------------------------------------------------------------------------------------
// PEP 440 specifiers

/// Whether the PEP 440 specifier set `spec` (`>=3.9,<3.14`, `~=3.11`, `==3.13.*`) accepts
/// `version` (`3.13.5`). Pre/post/dev segments are not supported in the specifiers.
pub(crate) fn pep440_satisfied(spec: &str, version: &str) -> Result<bool, String> {
    let v = numeric_parts(version).ok_or_else(|| format!("{version:?} is not a version"))?;
    for clause in spec.split(',') {
        let c = clause.trim();
        if c.is_empty() {
            continue;
        }
        let op_len = c
            .find(|ch: char| !matches!(ch, '<' | '>' | '=' | '!' | '~'))
            .unwrap_or(c.len());
        let (op, rest) = c.split_at(op_len);
        let rest = rest.trim();
        if op == "===" {
            if rest != version {
                return Ok(false);
            }
            continue;
        }
        let (ver, wildcard) = match rest.strip_suffix(".*") {
            Some(r) => (r, true),
            None => (rest, false),
        };
        let bad = || format!("{c:?} is not a version specifier");
        let want = numeric_parts(ver).ok_or_else(bad)?;
        // anything after the release numbers (rc1, .post1, +local) is not handled
        if ver
            .trim_start_matches(['v', 'V'])
            .chars()
            .any(|ch| !ch.is_ascii_digit() && ch != '.')
        {
            return Err(format!(
                "{c:?}: pre-, post- and dev-releases are not supported here"
            ));
        }
        if wildcard && !matches!(op, "==" | "!=") {
            return Err(format!("{c:?}: .* only goes with == and !="));
        }
        let prefix_eq = || v.len() >= want.len() && v[..want.len()] == want[..];
        let o = cmp_parts(&v, &want);
        let ok = match op {
            "==" if wildcard => prefix_eq(),
            "!=" if wildcard => !prefix_eq(),
            "==" => o == Ordering::Equal,
            "!=" => o != Ordering::Equal,
            ">=" => o != Ordering::Less,
            "<=" => o != Ordering::Greater,
            ">" => o == Ordering::Greater,
            "<" => o == Ordering::Less,
            "~=" => {
                if want.len() < 2 {
                    return Err(format!("{c:?}: ~= needs at least two numbers (~=3.11)"));
                }
                let pre = &want[..want.len() - 1];
                o != Ordering::Less && v.len() >= pre.len() && v[..pre.len()] == pre[..]
            }
            _ => return Err(bad()),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn go_versions() {
        assert_eq!(go_version("1.22"), Some((1, 22, 0)));
        assert_eq!(go_version("1.22.3"), Some((1, 22, 3)));
        assert_eq!(go_version("go1.23.4"), Some((1, 23, 4)));
        assert_eq!(go_version("1.21rc1"), Some((1, 21, 0)));
        assert_eq!(go_version("x"), None);
    }

    #[test]
    fn npm_ranges() {
        let cases: &[(&str, &str, bool)] = &[
            (">=18", "20.19.2", true),
            (">=18", "18.19.0", true),
            (">=20", "18.19.0", false),
            (">= 20.5", "20.19.2", true),
            (">=20.20", "20.19.2", false),
            ("^18", "18.19.0", true),
            ("^18", "20.19.2", false),
            ("^18.20.0", "18.19.0", false),
            ("^0.2.3", "0.2.9", true),
            ("^0.2.3", "0.3.0", false),
            ("20.x", "20.19.2", true),
            ("20.x", "18.19.0", false),
            ("20.*", "20.1.0", true),
            ("~20", "20.19.2", true),
            ("~20.19", "20.19.2", true),
            ("~20.18", "20.19.2", false),
            ("20", "20.19.2", true),
            ("18", "20.19.2", false),
            ("18 || 20", "20.19.2", true),
            ("^16 || ^18", "20.19.2", false),
            (">=18 <21", "20.19.2", true),
            (">=18 <20", "20.19.2", false),
            (">=18.0.0 <19.0.0 || >=20.0.0", "20.19.2", true),
            ("16 - 20", "20.19.2", true),
            ("16 - 19", "20.19.2", false),
            ("16.0.0 - 20.1.0", "20.19.2", false),
            ("*", "18.19.0", true),
            ("", "18.19.0", true),
            (">18", "18.19.0", false),
            (">18", "20.19.2", true),
            ("<=18", "18.19.0", true),
            ("<=18", "20.19.2", false),
            ("<20", "20.19.2", false),
            ("=20.19.2", "20.19.2", true),
            ("v20.19.2", "20.19.2", true),
            (">=20.0.0-beta", "20.19.2", true),
            // bounds are inclusive where npm says so
            (">=20.19.2", "20.19.2", true),
            ("^20.19.2", "20.19.2", true),
            ("~20.19.2", "20.19.2", true),
            ("20.19.2 - 21", "20.19.2", true),
            ("18 - 20.19.2", "20.19.2", true),
            ("<=20.19.2", "20.19.2", true),
            (">20.19.2", "20.19.2", false),
            ("<20.19.2", "20.19.2", false),
        ];
        for (range, v, want) in cases {
            assert_eq!(
                npm_range_satisfied(range, v).unwrap(),
                *want,
                "{range:?} vs {v}"
            );
        }
        assert!(npm_range_satisfied(">= ", "20.0.0").is_err());
        assert!(npm_range_satisfied("!20", "20.0.0").is_err());
        assert!(npm_range_satisfied("latest", "20.0.0").is_err());
    }

    #[test]
    fn pep440() {
        let cases: &[(&str, &str, bool)] = &[
            (">=3.10", "3.13.5", true),
            (">=3.14", "3.13.5", false),
            (">=3.9,<3.14", "3.13.5", true),
            (">=3.9, <3.13", "3.13.5", false),
            ("~=3.11", "3.13.5", true),
            ("~=3.11", "3.11.2", true),
            ("~=3.11.3", "3.11.2", false),
            ("~=3.11.0", "3.13.5", false),
            ("==3.13.*", "3.13.5", true),
            ("==3.13.*", "3.11.2", false),
            ("!=3.12.*", "3.13.5", true),
            ("!=3.13.*", "3.13.5", false),
            ("==3.13", "3.13.5", false),
            ("==3.13.5", "3.13.5", true),
            ("<=3.11", "3.11.2", false),
            ("<=3.11.2", "3.11.2", true),
            (">3.11", "3.11.2", true),
            ("<3.12", "3.11.2", true),
            ("", "3.11.2", true),
            ("===3.11.2", "3.11.2", true),
        ];
        for (spec, v, want) in cases {
            assert_eq!(pep440_satisfied(spec, v).unwrap(), *want, "{spec:?} vs {v}");
        }
        assert!(pep440_satisfied(">=3.13rc1", "3.13.5").is_err());
        assert!(pep440_satisfied("~=3", "3.13.5").is_err());
        assert!(pep440_satisfied(">=3.*", "3.13.5").is_err());
        assert!(pep440_satisfied("3.11", "3.13.5").is_err());
    }
}
