//! Package URLs (purl spec): type, namespace and name segments, version and sorted qualifiers,
//! each percent-encoded.

/// Percent-encode everything but ASCII letters, digits and `.-_~` (and what `keep` allows).
fn encode(s: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b".-_~".contains(&b) || keep.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `pkg:<type>/<namespace segments>/<name>@<version>?<k=v&…>`; qualifiers with an empty value
/// are left out and the rest sorted by key, as the spec says.
pub fn build(
    ty: &str,
    namespace: &[&str],
    name: &str,
    version: Option<&str>,
    qualifiers: &[(&str, &str)],
) -> String {
    let mut s = format!("pkg:{ty}/");
    for seg in namespace.iter().filter(|s| !s.is_empty()) {
        s.push_str(&encode(seg, b""));
        s.push('/');
    }
    s.push_str(&encode(name, b""));
    if let Some(v) = version.filter(|v| !v.is_empty()) {
        s.push('@');
        s.push_str(&encode(v, b":"));
    }
    let mut q: Vec<&(&str, &str)> = qualifiers.iter().filter(|(_, v)| !v.is_empty()).collect();
    q.sort_by_key(|(k, _)| *k);
    for (i, (k, v)) in q.iter().enumerate() {
        s.push(if i == 0 { '?' } else { '&' });
        s.push_str(k);
        s.push('=');
        s.push_str(&encode(v, b":"));
    }
    s
}

/// `pkg:deb/debian/<name>@<version>?arch=<arch>&distro=debian-<major>&upstream=<source>`.
pub fn deb(name: &str, version: &str, arch: &str, distro: Option<&str>, source: &str) -> String {
    let distro = distro.map(|d| format!("debian-{d}")).unwrap_or_default();
    build(
        "deb",
        &["debian"],
        name,
        Some(version),
        &[("arch", arch), ("distro", &distro), ("upstream", source)],
    )
}

/// `pkg:golang/<module path>@<version>`: the module path's segments are the namespace and name.
pub fn golang(module: &str, version: Option<&str>) -> String {
    let segs: Vec<&str> = module.split('/').collect();
    let (name, ns) = segs
        .split_last()
        .map_or((module, &[][..]), |(n, ns)| (*n, ns));
    build("golang", ns, name, version, &[])
}

/// `pkg:npm/%40scope/name@v` or `pkg:npm/name@v`.
pub fn npm(name: &str, version: &str) -> String {
    match name.split_once('/') {
        Some((scope, n)) if scope.starts_with('@') => build("npm", &[scope], n, Some(version), &[]),
        _ => build("npm", &[], name, Some(version), &[]),
    }
}

/// PEP 503 normalisation: lowercase, runs of `-`, `_`, `.` become one `-`.
pub fn pypi_normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if c == '-' || c == '_' || c == '.' {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// `pkg:pypi/<normalized name>@<version>`.
pub fn pypi(name: &str, version: &str) -> String {
    build("pypi", &[], &pypi_normalize(name), Some(version), &[])
}

/// `pkg:maven/<group>/<artifact>@<version>`.
pub fn maven(group: &str, artifact: &str, version: &str) -> String {
    build("maven", &[group], artifact, Some(version), &[])
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn purls() {
        assert_eq!(
            deb("libc6", "2.36-9+deb12u4", "amd64", Some("12"), "glibc"),
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc"
        );
        assert_eq!(
            deb("login", "1:4.13+dfsg1-1", "arm64", Some("13"), "shadow"),
            "pkg:deb/debian/login@1:4.13%2Bdfsg1-1?arch=arm64&distro=debian-13&upstream=shadow"
        );
        assert_eq!(
            golang("github.com/google/uuid", Some("v1.6.0")),
            "pkg:golang/github.com/google/uuid@v1.6.0"
        );
        assert_eq!(golang("stdlib", Some("1.22.3")), "pkg:golang/stdlib@1.22.3");
        assert_eq!(
            golang("example.com/app", None),
            "pkg:golang/example.com/app"
        );
        assert_eq!(npm("@types/node", "20.1.0"), "pkg:npm/%40types/node@20.1.0");
        assert_eq!(npm("express", "4.19.2"), "pkg:npm/express@4.19.2");
        assert_eq!(
            pypi("Flask_SQL.Alchemy", "3.0"),
            "pkg:pypi/flask-sql-alchemy@3.0"
        );
        assert_eq!(
            maven("com.google.guava", "guava", "33.0.0-jre"),
            "pkg:maven/com.google.guava/guava@33.0.0-jre"
        );
    }
}
