//! Machine-readable Debian copyright files (DEP-5): the `License:` short names of the `Files:`
//! paragraphs mapped to SPDX identifiers. A name with no SPDX equivalent stays unknown.

use crate::License;

/// Whether a copyright file is DEP-5 (its first paragraph has a `Format:` field naming the spec).
pub fn is_dep5(text: &str) -> bool {
    text.lines().take_while(|l| !l.trim().is_empty()).any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.eq_ignore_ascii_case("Format")
                && (v.contains("copyright-format") || v.contains("dep5") || v.contains("dep-5"))
        })
    })
}

/// The licences of a DEP-5 file: for each `Files:` paragraph's `License:` first line, the SPDX
/// expression it maps to, or the name itself as unknown. Sorted, without duplicates. Not DEP-5:
/// nothing (the licence is unknown, not guessed from prose).
pub fn licenses(text: &str) -> Vec<License> {
    if !is_dep5(text) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for para in paragraphs(text) {
        let has_files = para.iter().any(|(k, _)| k.eq_ignore_ascii_case("Files"));
        if !has_files {
            continue;
        }
        if let Some((_, v)) = para.iter().find(|(k, _)| k.eq_ignore_ascii_case("License")) {
            let short = v.lines().next().unwrap_or("").trim();
            if short.is_empty() {
                continue;
            }
            out.push(match map_expression(short) {
                Some(e) => License::Spdx(e),
                None => License::Unknown(short.to_string()),
            });
        }
    }
    out.sort();
    out.dedup();
    out
}

fn paragraphs(text: &str) -> Vec<Vec<(String, String)>> {
    let mut paras = Vec::new();
    let mut cur: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                paras.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            if let Some((_, v)) = cur.last_mut() {
                v.push('\n');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            cur.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    if !cur.is_empty() {
        paras.push(cur);
    }
    paras
}

/// A DEP-5 licence line (`GPL-2+ or Artistic`, `LGPL-2.1+ and BSD-3-clause`,
/// `GPL-3+ with GCC-exception-3.1 exception`) as an SPDX expression, when every name maps.
pub fn map_expression(short: &str) -> Option<String> {
    // DEP-5: "," binds loosest and means "or" at that level; "and" binds tighter than "or".
    let mut ors = Vec::new();
    for alt in split_words(short, &[",", "or"]) {
        let mut ands = Vec::new();
        for part in split_words(&alt, &["and"]) {
            ands.push(map_term(&part)?);
        }
        ors.push(if ands.len() > 1 {
            ands.join(" AND ")
        } else {
            ands.pop()?
        });
    }
    let expr = if ors.len() > 1 {
        ors.iter()
            .map(|e| {
                if e.contains(" AND ") {
                    format!("({e})")
                } else {
                    e.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(" OR ")
    } else {
        ors.pop()?
    };
    crate::license::spdx_expression(&expr)
}

fn split_words(s: &str, seps: &[&str]) -> Vec<String> {
    let s = s.replace(',', " , ");
    let mut parts = vec![String::new()];
    for w in s.split_whitespace() {
        if seps.iter().any(|sep| w.eq_ignore_ascii_case(sep)) {
            parts.push(String::new());
        } else if let Some(last) = parts.last_mut() {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(w);
        }
    }
    parts.retain(|p| !p.is_empty());
    parts
}

/// One licence (possibly `X with Y exception`).
fn map_term(term: &str) -> Option<String> {
    let words: Vec<&str> = term.split_whitespace().collect();
    if let Some(i) = words.iter().position(|w| w.eq_ignore_ascii_case("with")) {
        let lic = map_id(&words[..i].join(" "))?;
        let mut exc: Vec<&str> = words[i + 1..].to_vec();
        if exc
            .last()
            .is_some_and(|w| w.eq_ignore_ascii_case("exception"))
        {
            exc.pop();
        }
        let exc = map_exception(&exc.join(" "))?;
        return Some(format!("{lic} WITH {exc}"));
    }
    map_id(term)
}

fn map_exception(name: &str) -> Option<String> {
    let id = match name {
        "GCC-exception-3.1" | "GCC-3.1" => "GCC-exception-3.1",
        "GCC-exception-2.0" | "GCC-2.0" => "GCC-exception-2.0",
        "OpenSSL" => "openvpn-openssl-exception",
        "Autoconf-exception-3.0" | "Autoconf-3.0" => "Autoconf-exception-3.0",
        "Autoconf-exception-2.0" => "Autoconf-exception-2.0",
        "Classpath-exception-2.0" | "Classpath" => "Classpath-exception-2.0",
        "Font-exception-2.0" | "Font" => "Font-exception-2.0",
        "Libtool" | "Libtool-exception" => "Libtool-exception",
        "Bison-exception-2.2" | "Bison" => "Bison-exception-2.2",
        other => other,
    };
    spdx::exception_id(id).map(|e| e.name.to_string())
}

/// A DEP-5 short name as an SPDX licence identifier. DEP-5 uses `+` for "or later" and the
/// bare version for "only" on the GNU licences; a few names differ from SPDX's.
fn map_id(name: &str) -> Option<String> {
    let name = name.trim();
    let (base, plus) = match name.strip_suffix('+') {
        Some(b) => (b, true),
        None => (name, false),
    };
    let lower = base.to_ascii_lowercase();
    let gnu = |fam: &str, ver: &str| -> String {
        format!("{fam}-{ver}-{}", if plus { "or-later" } else { "only" })
    };
    let gnu_ver = |v: &str| -> Option<&'static str> {
        Some(match v {
            "1" | "1.0" => "1.0",
            "2" | "2.0" => "2.0",
            "2.1" => "2.1",
            "3" | "3.0" => "3.0",
            "1.1" => "1.1",
            "1.2" => "1.2",
            "1.3" => "1.3",
            _ => return None,
        })
    };
    for fam in ["GPL", "LGPL", "AGPL", "GFDL"] {
        let p = format!("{}-", fam.to_ascii_lowercase());
        if let Some(v) = lower.strip_prefix(&p) {
            let id = gnu(fam, gnu_ver(v)?);
            return spdx::license_id(&id).map(|l| l.name.to_string());
        }
    }
    let mapped: Option<&str> = match lower.as_str() {
        "expat" | "mit" => Some("MIT"),
        "bsd-2-clause" => Some("BSD-2-Clause"),
        "bsd-3-clause" => Some("BSD-3-Clause"),
        "bsd-4-clause" => Some("BSD-4-Clause"),
        "isc" => Some("ISC"),
        "zlib" => Some("Zlib"),
        "apache-2.0" | "apache-2" => Some("Apache-2.0"),
        "artistic" | "artistic-1" | "artistic-1.0" => Some("Artistic-1.0-Perl"),
        "artistic-2.0" | "artistic-2" => Some("Artistic-2.0"),
        "mpl-1.1" => Some("MPL-1.1"),
        "mpl-2.0" => Some("MPL-2.0"),
        "cc0-1.0" | "cc0" => Some("CC0-1.0"),
        "psf-2" | "python-2.0" | "psf" => Some("Python-2.0"),
        "curl" => Some("curl"),
        "openssl" => Some("OpenSSL"),
        "ssleay" => Some("SSLeay-standalone"),
        "x11" => Some("X11"),
        "bsl-1.0" | "boost-1.0" => Some("BSL-1.0"),
        "unicode-dfs-2016" => Some("Unicode-DFS-2016"),
        "ofl-1.1" => Some("OFL-1.1"),
        "wtfpl" => Some("WTFPL"),
        "epl-1.0" => Some("EPL-1.0"),
        "epl-2.0" => Some("EPL-2.0"),
        _ => None,
    };
    let id = match mapped {
        Some(id) => id.to_string(),
        // the name may already be an SPDX identifier (exact spelling)
        None => spdx::license_id(base)?.name.to_string(),
    };
    if plus {
        // `+` on a non-GNU SPDX licence is the expression's own "or later" operator
        return Some(format!("{id}+"));
    }
    Some(id)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const DEP5: &str = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: demo
Source: the upstream tarball

Files: *
Copyright: 2001-2024 Someone
License: GPL-2+

Files: lib/*
Copyright: 2010 Someone Else
License: LGPL-2.1+ or BSD-3-clause

Files: debian/*
Copyright: 2020 A Packager
License: GPL-2+

Files: data/*
Copyright: none
License: public-domain
 The data files are in the public domain.

Files: gcc/*
Copyright: the FSF
License: GPL-3+ with GCC-exception-3.1 exception

Files: vendor/*
Copyright: x
License: Expat and zlib

License: GPL-2+
 On Debian systems the full text is in /usr/share/common-licenses/GPL-2.
";

    #[test]
    fn dep5_licences() {
        let l = licenses(DEP5);
        assert_eq!(
            l,
            vec![
                License::Spdx("GPL-2.0-or-later".into()),
                License::Spdx("GPL-3.0-or-later WITH GCC-exception-3.1".into()),
                License::Spdx("LGPL-2.1-or-later OR BSD-3-Clause".into()),
                License::Spdx("MIT AND Zlib".into()),
                License::Unknown("public-domain".into()),
            ]
        );
    }

    #[test]
    fn not_dep5_is_unknown() {
        let prose = "This is the Debian packaging of foo.\n\nCopyright: GPL, see /usr/share/common-licenses/GPL\n";
        assert!(licenses(prose).is_empty());
    }

    #[test]
    fn names() {
        assert_eq!(map_expression("GPL-2").as_deref(), Some("GPL-2.0-only"));
        assert_eq!(
            map_expression("LGPL-3+").as_deref(),
            Some("LGPL-3.0-or-later")
        );
        assert_eq!(
            map_expression("GPL-2+ or Artistic").as_deref(),
            Some("GPL-2.0-or-later OR Artistic-1.0-Perl")
        );
        assert_eq!(map_expression("Apache-2.0").as_deref(), Some("Apache-2.0"));
        assert_eq!(map_expression("permissive"), None);
        assert_eq!(map_expression("GPL-9"), None);
    }
}
