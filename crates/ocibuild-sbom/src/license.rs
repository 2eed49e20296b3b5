//! Licences: validated SPDX expressions, or the text found when it maps to none (unknown —
//! never guessed).

use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "lowercase")]
pub enum License {
    /// A valid SPDX licence expression (strict parse).
    Spdx(String),
    /// A licence as the package names it, which is not a valid SPDX expression.
    Unknown(String),
}

impl License {
    /// Classify what a package declares: a strictly valid SPDX expression, else unknown.
    /// Empty strings and `UNKNOWN`/`NONE`-style placeholders give nothing.
    pub fn from_declared(s: &str) -> Option<License> {
        let s = s.trim();
        if s.is_empty()
            || matches!(
                s.to_ascii_uppercase().as_str(),
                "UNKNOWN"
                    | "NONE"
                    | "NOASSERTION"
                    | "UNLICENSED"
                    | "SEE LICENSE"
                    | "SEE LICENSE FILE"
            )
        {
            return None;
        }
        if let Some(e) = spdx_expression(s) {
            return Some(License::Spdx(e));
        }
        // a whole licence text pasted into a field is not a name
        let first = s.lines().next().unwrap_or(s);
        let name: String = first.chars().take(120).collect();
        Some(License::Unknown(name))
    }
}

/// The expression if it parses strictly (SPDX list identifiers, `LicenseRef-`, proper operators).
pub fn spdx_expression(s: &str) -> Option<String> {
    spdx::Expression::parse(s).ok().map(|e| e.to_string())
}

/// The SPDX identifier of a licence named by a Python trove classifier
/// (`License :: OSI Approved :: MIT License`). Only unambiguous classifiers map.
pub fn from_classifier(c: &str) -> Option<&'static str> {
    let last = c.rsplit("::").next()?.trim();
    Some(match last {
        "MIT License" => "MIT",
        "MIT No Attribution License (MIT-0)" => "MIT-0",
        "Apache Software License" | "Apache License 2.0" => return None,
        "BSD License" => return None,
        "ISC License (ISCL)" => "ISC",
        "Mozilla Public License 2.0 (MPL 2.0)" => "MPL-2.0",
        "GNU General Public License v2 (GPLv2)" => "GPL-2.0-only",
        "GNU General Public License v2 or later (GPLv2+)" => "GPL-2.0-or-later",
        "GNU General Public License v3 (GPLv3)" => "GPL-3.0-only",
        "GNU General Public License v3 or later (GPLv3+)" => "GPL-3.0-or-later",
        "GNU Lesser General Public License v2 (LGPLv2)" => "LGPL-2.0-only",
        "GNU Lesser General Public License v2 or later (LGPLv2+)" => "LGPL-2.0-or-later",
        "GNU Lesser General Public License v3 (LGPLv3)" => "LGPL-3.0-only",
        "GNU Lesser General Public License v3 or later (LGPLv3+)" => "LGPL-3.0-or-later",
        "GNU Affero General Public License v3" => "AGPL-3.0-only",
        "GNU Affero General Public License v3 or later (AGPLv3+)" => "AGPL-3.0-or-later",
        "Python Software Foundation License" => "PSF-2.0",
        "The Unlicense (Unlicense)" => "Unlicense",
        "Zope Public License" => return None,
        "zlib/libpng License" => "Zlib",
        "Boost Software License 1.0 (BSL-1.0)" => "BSL-1.0",
        "Eclipse Public License 2.0 (EPL-2.0)" => "EPL-2.0",
        "European Union Public Licence 1.2 (EUPL 1.2)" => "EUPL-1.2",
        "Academic Free License (AFL)" => return None,
        _ => return None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn declared() {
        assert_eq!(
            License::from_declared("MIT"),
            Some(License::Spdx("MIT".into()))
        );
        assert_eq!(
            License::from_declared("(MIT OR Apache-2.0)"),
            Some(License::Spdx("(MIT OR Apache-2.0)".into()))
        );
        assert_eq!(
            License::from_declared("BSD"),
            Some(License::Unknown("BSD".into()))
        );
        assert_eq!(License::from_declared("UNKNOWN"), None);
        assert_eq!(License::from_declared(""), None);
        assert_eq!(
            from_classifier("License :: OSI Approved :: MIT License"),
            Some("MIT")
        );
        assert_eq!(
            from_classifier("License :: OSI Approved :: BSD License"),
            None
        );
    }
}
