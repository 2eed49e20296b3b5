//! PEP 508 environment markers (`python_version >= "3.11" and sys_platform == "linux"`),
//! evaluated for the image's Python and platform, so that a lockfile's packages are narrowed
//! to the ones the image installs.

use std::cmp::Ordering;

use crate::version::{cmp_parts, numeric_parts};

/// The marker environment of the image: Debian's CPython on Linux.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MarkerEnv {
    /// `3.13.5`.
    pub python_full_version: String,
    /// `x86_64`, `aarch64`.
    pub platform_machine: String,
}

impl MarkerEnv {
    /// For Debian's Python `python` (`3.13.5`) on Debian architecture `arch` (`amd64`).
    pub fn new(python: &str, arch: &str) -> MarkerEnv {
        let machine = match arch {
            "amd64" => "x86_64",
            "arm64" => "aarch64",
            other => other,
        };
        MarkerEnv {
            python_full_version: python.to_string(),
            platform_machine: machine.to_string(),
        }
    }

    fn var(&self, name: &str) -> Option<String> {
        let python_version = || {
            let mut parts = self.python_full_version.splitn(3, '.');
            match (parts.next(), parts.next()) {
                (Some(a), Some(b)) => format!("{a}.{b}"),
                _ => self.python_full_version.clone(),
            }
        };
        Some(match name {
            "python_version" => python_version(),
            "python_full_version" | "implementation_version" => self.python_full_version.clone(),
            "os_name" => "posix".into(),
            "sys_platform" => "linux".into(),
            "platform_system" => "Linux".into(),
            "platform_machine" => self.platform_machine.clone(),
            "platform_python_implementation" => "CPython".into(),
            "implementation_name" => "cpython".into(),
            "platform_release" | "platform_version" | "extra" => String::new(),
            _ => return None,
        })
    }
}

const VERSION_VARS: [&str; 3] = [
    "python_version",
    "python_full_version",
    "implementation_version",
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Open,
    Close,
    And,
    Or,
    Op(String),
    Var(String),
    Str(String),
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let cs: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' {
            out.push(Tok::Open);
            i += 1;
        } else if c == ')' {
            out.push(Tok::Close);
            i += 1;
        } else if c == '"' || c == '\'' {
            let end = cs[i + 1..]
                .iter()
                .position(|&x| x == c)
                .ok_or_else(|| format!("unclosed quote in {s:?}"))?;
            out.push(Tok::Str(cs[i + 1..i + 1 + end].iter().collect()));
            i += end + 2;
        } else if "<>=!~".contains(c) {
            let mut op = String::new();
            while i < cs.len() && "<>=!~".contains(cs[i]) {
                op.push(cs[i]);
                i += 1;
            }
            out.push(Tok::Op(op));
        } else if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
            let mut w = String::new();
            while i < cs.len() && (cs[i].is_ascii_alphanumeric() || cs[i] == '_' || cs[i] == '.') {
                w.push(cs[i]);
                i += 1;
            }
            match w.as_str() {
                "and" => out.push(Tok::And),
                "or" => out.push(Tok::Or),
                "in" => out.push(Tok::Op("in".into())),
                "not" => out.push(Tok::Op("not".into())),
                _ => out.push(Tok::Var(w)),
            }
        } else {
            return Err(format!("unexpected {c:?} in marker {s:?}"));
        }
    }
    // `not in` as one operator
    let mut merged: Vec<Tok> = Vec::new();
    for t in out {
        if t == Tok::Op("in".into()) && merged.last() == Some(&Tok::Op("not".into())) {
            merged.pop();
            merged.push(Tok::Op("not in".into()));
        } else {
            merged.push(t);
        }
    }
    Ok(merged)
}

struct Parser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    env: &'a MarkerEnv,
    text: &'a str,
}

impl Parser<'_> {
    fn or(&mut self) -> Result<bool, String> {
        let mut v = self.and()?;
        while self.toks.get(self.pos) == Some(&Tok::Or) {
            self.pos += 1;
            let r = self.and()?;
            v = v || r;
        }
        Ok(v)
    }

    fn and(&mut self) -> Result<bool, String> {
        let mut v = self.atom()?;
        while self.toks.get(self.pos) == Some(&Tok::And) {
            self.pos += 1;
            let r = self.atom()?;
            v = v && r;
        }
        Ok(v)
    }

    fn atom(&mut self) -> Result<bool, String> {
        if self.toks.get(self.pos) == Some(&Tok::Open) {
            self.pos += 1;
            let v = self.or()?;
            if self.toks.get(self.pos) != Some(&Tok::Close) {
                return Err(format!("unbalanced parentheses in {:?}", self.text));
            }
            self.pos += 1;
            return Ok(v);
        }
        let l = self.value()?;
        let op = match self.toks.get(self.pos) {
            Some(Tok::Op(o)) => o.clone(),
            _ => return Err(format!("expected an operator in {:?}", self.text)),
        };
        self.pos += 1;
        let r = self.value()?;
        compare(l, &op, r)
    }

    /// (value, whether it is a version variable)
    fn value(&mut self) -> Result<(String, bool), String> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        match t {
            Some(Tok::Str(s)) => Ok((s, false)),
            Some(Tok::Var(v)) => {
                let val = self
                    .env
                    .var(&v)
                    .ok_or_else(|| format!("unknown marker variable {v:?}"))?;
                Ok((val, VERSION_VARS.contains(&v.as_str())))
            }
            _ => Err(format!("expected a value in {:?}", self.text)),
        }
    }
}

fn compare((l, lv): (String, bool), op: &str, (r, rv): (String, bool)) -> Result<bool, String> {
    match op {
        "in" => return Ok(r.contains(&l)),
        "not in" => return Ok(!r.contains(&l)),
        "===" => return Ok(l == r),
        _ => {}
    }
    let version = (lv || rv)
        .then(|| Some((numeric_parts(&l)?, numeric_parts(&r)?)))
        .flatten();
    let Some((a, b)) = version else {
        return match op {
            "==" => Ok(l == r),
            "!=" => Ok(l != r),
            _ => Err(format!("{op} on non-versions {l:?} and {r:?}")),
        };
    };
    if op.ends_with('=') && op != "~=" && r.ends_with(".*") {
        // `python_version == "3.*"`: a prefix match
        let pre = numeric_parts(r.trim_end_matches(".*")).unwrap_or_default();
        let m = a.len() >= pre.len() && a[..pre.len()] == pre[..];
        return Ok(if op == "!=" { !m } else { m });
    }
    let o = cmp_parts(&a, &b);
    Ok(match op {
        "==" => o == Ordering::Equal,
        "!=" => o != Ordering::Equal,
        "<" => o == Ordering::Less,
        "<=" => o != Ordering::Greater,
        ">" => o == Ordering::Greater,
        ">=" => o != Ordering::Less,
        "~=" => {
            let pre = &b[..b.len().saturating_sub(1).max(1)];
            o != Ordering::Less && a.len() >= pre.len() && a[..pre.len()] == pre[..]
        }
        _ => return Err(format!("unknown marker operator {op:?}")),
    })
}

/// Whether `marker` holds in `env`; an error when it cannot be read (the caller then leaves
/// the decision to pip, which evaluates markers itself).
pub(crate) fn evaluate(marker: &str, env: &MarkerEnv) -> Result<bool, String> {
    let toks = tokenize(marker)?;
    if toks.is_empty() {
        return Ok(true);
    }
    let mut p = Parser {
        toks,
        pos: 0,
        env,
        text: marker,
    };
    let v = p.or()?;
    if p.pos != p.toks.len() {
        return Err(format!("trailing text in marker {marker:?}"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn markers_for_debian_cpython_on_linux() {
        let env = MarkerEnv::new("3.13.5", "amd64");
        let yes = [
            "",
            "python_version >= \"3.11\"",
            "python_version >= '3.11' and python_version < '4.0'",
            "python_full_version >= \"3.13.1\"",
            "sys_platform == 'linux'",
            "sys_platform != 'win32' and (platform_machine == 'x86_64' or platform_machine == 'AMD64')",
            "platform_python_implementation == 'CPython'",
            "'3.8' < python_version",
            "python_version == '3.*'",
            "python_version ~= '3.10'",
            "'linux' in sys_platform",
            "sys_platform not in 'win32 cygwin'",
            "extra != 'test'",
        ];
        for m in yes {
            assert!(evaluate(m, &env).unwrap(), "{m}");
        }
        let no = [
            "sys_platform == \"win32\"",
            "python_version < \"3.11\"",
            "platform_system == 'Darwin' or os_name == 'nt'",
            "platform_machine == 'aarch64'",
            "implementation_name == 'pypy'",
            "python_full_version < '3.13.5'",
            "extra == 'dev'",
        ];
        for m in no {
            assert!(!evaluate(m, &env).unwrap(), "{m}");
        }
        assert!(
            evaluate(
                "platform_machine == 'aarch64'",
                &MarkerEnv::new("3.11.2", "arm64")
            )
            .unwrap()
        );
        assert!(
            evaluate(
                "python_version < '3.12'",
                &MarkerEnv::new("3.11.2", "arm64")
            )
            .unwrap()
        );
        for bad in [
            "python_version >=",
            "nonsense == '1'",
            "(sys_platform == 'linux'",
            "a b",
        ] {
            assert!(evaluate(bad, &env).is_err(), "{bad}");
        }
    }
}
