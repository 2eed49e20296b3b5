//! PEP 440 versions as Python's `packaging` orders them: epochs, releases (trailing zeros do not
//! count), pre-releases (`a`/`b`/`rc` and their spellings), post- and dev-releases, local labels.

use std::cmp::Ordering;

use super::cmp_digits;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Local {
    Num(String),
    Str(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pep440 {
    epoch: String,
    release: Vec<String>,
    /// (0 a, 1 b, 2 rc, number)
    pre: Option<(u8, String)>,
    post: Option<String>,
    dev: Option<String>,
    local: Vec<Local>,
}

fn digits(s: &str) -> usize {
    s.bytes().take_while(u8::is_ascii_digit).count()
}

fn sep(s: &str) -> &str {
    s.strip_prefix(['.', '-', '_']).unwrap_or(s)
}

/// Parses a PEP 440 version (case-insensitive, with the normalisations `packaging` accepts).
pub fn parse(v: &str) -> Option<Pep440> {
    let lower = v.trim().to_ascii_lowercase();
    let mut s = lower.strip_prefix('v').unwrap_or(&lower);
    let (public, local) = match s.split_once('+') {
        Some((p, l)) => (p, Some(l)),
        None => (s, None),
    };
    s = public;
    let mut epoch = "0".to_string();
    let n = digits(s);
    if n > 0 && s[n..].starts_with('!') {
        epoch = s[..n].to_string();
        s = &s[n + 1..];
    }
    let mut release = Vec::new();
    loop {
        let n = digits(s);
        if n == 0 {
            return None;
        }
        release.push(s[..n].to_string());
        s = &s[n..];
        match s.strip_prefix('.') {
            Some(rest) if digits(rest) > 0 => s = rest,
            _ => break,
        }
    }
    // pre-release
    let mut pre = None;
    {
        let t = sep(s);
        let words: [(&str, u8); 8] = [
            ("alpha", 0),
            ("beta", 1),
            ("preview", 2),
            ("pre", 2),
            ("rc", 2),
            ("a", 0),
            ("b", 1),
            ("c", 2),
        ];
        if let Some((w, k)) = words.iter().find(|(w, _)| t.starts_with(w)) {
            let mut rest = sep(&t[w.len()..]);
            let n = digits(rest);
            let num = if n > 0 { &rest[..n] } else { "0" };
            if n == 0 {
                // no number: the separator was not consumed
                rest = &t[w.len()..];
            } else {
                rest = &rest[n..];
            }
            pre = Some((*k, num.to_string()));
            s = rest;
        }
    }
    // post-release: -N, or .post N / rev / r
    let mut post = None;
    if let Some(rest) = s.strip_prefix('-') {
        let n = digits(rest);
        if n > 0 {
            post = Some(rest[..n].to_string());
            s = &rest[n..];
        }
    }
    if post.is_none() {
        let t = sep(s);
        if let Some(w) = ["post", "rev", "r"].iter().find(|w| t.starts_with(*w)) {
            let after = &t[w.len()..];
            let rest = sep(after);
            let n = digits(rest);
            if n > 0 {
                post = Some(rest[..n].to_string());
                s = &rest[n..];
            } else {
                post = Some("0".to_string());
                s = after;
            }
        }
    }
    let mut dev = None;
    {
        let t = sep(s);
        if let Some(after) = t.strip_prefix("dev") {
            let rest = sep(after);
            let n = digits(rest);
            if n > 0 {
                dev = Some(rest[..n].to_string());
                s = &rest[n..];
            } else {
                dev = Some("0".to_string());
                s = after;
            }
        }
    }
    if !s.is_empty() {
        return None;
    }
    let mut locals = Vec::new();
    if let Some(l) = local {
        for part in l.split(['.', '-', '_']) {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return None;
            }
            if part.bytes().all(|b| b.is_ascii_digit()) {
                locals.push(Local::Num(part.to_string()));
            } else {
                locals.push(Local::Str(part.to_string()));
            }
        }
    }
    Some(Pep440 {
        epoch,
        release,
        pre,
        post,
        dev,
        local: locals,
    })
}

fn cmp_release(a: &[String], b: &[String]) -> Ordering {
    let trim = |r: &[String]| -> usize {
        let mut n = r.len();
        while n > 1 && r[n - 1].trim_start_matches('0').is_empty() {
            n -= 1;
        }
        n
    };
    let (a, b) = (&a[..trim(a)], &b[..trim(b)]);
    for i in 0..a.len().max(b.len()) {
        let c = cmp_digits(
            a.get(i).map_or("0", String::as_str),
            b.get(i).map_or("0", String::as_str),
        );
        if c != Ordering::Equal {
            return c;
        }
    }
    Ordering::Equal
}

/// -inf / value / +inf keys, as `packaging`'s `_cmpkey` builds them.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Key<'a> {
    NegInf,
    Val(u8, Num<'a>),
    PosInf,
}

#[derive(PartialEq, Eq)]
struct Num<'a>(&'a str);
impl Ord for Num<'_> {
    fn cmp(&self, o: &Self) -> Ordering {
        cmp_digits(self.0, o.0)
    }
}
impl PartialOrd for Num<'_> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl Pep440 {
    fn pre_key(&self) -> Key<'_> {
        match (&self.pre, &self.post, &self.dev) {
            (None, None, Some(_)) => Key::NegInf,
            (None, _, _) => Key::PosInf,
            (Some((k, n)), _, _) => Key::Val(*k, Num(n)),
        }
    }
    fn post_key(&self) -> Key<'_> {
        self.post
            .as_deref()
            .map_or(Key::NegInf, |n| Key::Val(0, Num(n)))
    }
    fn dev_key(&self) -> Key<'_> {
        self.dev
            .as_deref()
            .map_or(Key::PosInf, |n| Key::Val(0, Num(n)))
    }
    pub fn is_prerelease(&self) -> bool {
        self.pre.is_some() || self.dev.is_some()
    }
}

fn cmp_local(a: &[Local], b: &[Local]) -> Ordering {
    // no local label sorts first; numbers sort after strings; strings compare as text
    for (x, y) in a.iter().zip(b) {
        let c = match (x, y) {
            (Local::Num(x), Local::Num(y)) => cmp_digits(x, y),
            (Local::Num(_), Local::Str(_)) => Ordering::Greater,
            (Local::Str(_), Local::Num(_)) => Ordering::Less,
            (Local::Str(x), Local::Str(y)) => x.cmp(y),
        };
        if c != Ordering::Equal {
            return c;
        }
    }
    a.len().cmp(&b.len())
}

impl Ord for Pep440 {
    fn cmp(&self, o: &Self) -> Ordering {
        cmp_digits(&self.epoch, &o.epoch)
            .then_with(|| cmp_release(&self.release, &o.release))
            .then_with(|| self.pre_key().cmp(&o.pre_key()))
            .then_with(|| self.post_key().cmp(&o.post_key()))
            .then_with(|| self.dev_key().cmp(&o.dev_key()))
            .then_with(|| cmp_local(&self.local, &o.local))
    }
}

impl PartialOrd for Pep440 {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

/// Compares two PEP 440 versions; `None` when either is not one.
pub fn compare(a: &str, b: &str) -> Option<Ordering> {
    Some(parse(a)?.cmp(&parse(b)?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn pep440_examples() {
        let chain = [
            "1.0.dev456",
            "1.0a1",
            "1.0a2.dev456",
            "1.0a12.dev456",
            "1.0a12",
            "1.0b1.dev456",
            "1.0b2",
            "1.0b2.post345.dev456",
            "1.0b2.post345",
            "1.0rc1.dev456",
            "1.0rc1",
            "1.0",
            "1.0+abc.5",
            "1.0+abc.7",
            "1.0+5",
            "1.0.post456.dev34",
            "1.0.post456",
            "1.1.dev1",
            "1!0.1",
        ];
        for w in chain.windows(2) {
            assert_eq!(compare(w[0], w[1]), Some(Ordering::Less), "{w:?}");
        }
        assert_eq!(compare("1.0", "1.0.0"), Some(Ordering::Equal));
        assert_eq!(compare("1.0-1", "1.0.post1"), Some(Ordering::Equal));
        assert_eq!(compare("1.0RC1", "1.0rc1"), Some(Ordering::Equal));
        assert_eq!(compare("1.0c1", "1.0rc1"), Some(Ordering::Equal));
        assert_eq!(compare("1.0-alpha-2", "1.0a2"), Some(Ordering::Equal));
        assert_eq!(compare("not a version", "1.0"), None);
    }
}
