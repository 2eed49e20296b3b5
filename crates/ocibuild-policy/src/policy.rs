//! `policy.toml` and `budget.toml`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::PolicyError;

/// The names of the default checks (what `disable` may name).
pub const DEFAULT_CHECKS: &[&str] = &[
    "runnable",
    "healthcheck",
    "native-libs",
    "symlink-dir",
    "world-writable",
    "setuid",
    "secrets",
    "dev-dependencies",
    "build-tools",
    "sources",
];

/// What the `build-tools` check forbids when the policy names no `forbidden_executables`:
/// shells, compilers, toolchains and package managers.
pub const DEFAULT_FORBIDDEN_EXECUTABLES: &[&str] = &[
    "sh", "bash", "dash", "zsh", "gcc", "cc", "c++", "g++", "clang", "ld", "make", "go", "rustc",
    "cargo", "javac", "mvn", "gradle", "npm", "npx", "yarn", "pnpm", "pip", "pip3", "poetry", "uv",
    "apt", "apt-get", "dpkg", "apk", "yum", "dnf",
];

/// What the `sources` check forbids when the policy names no `forbidden_paths`: sources of
/// compiled languages, TypeScript (not `.d.ts`), source maps and VCS metadata.
pub const DEFAULT_FORBIDDEN_PATHS: &[&str] = &[
    "**/*.go",
    "**/go.mod",
    "**/*.ts",
    "**/*.tsx",
    "**/*.java",
    "**/*.map",
    "**/.git",
];

/// A policy file (`policy.toml`). Every key is optional.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Program names no directory may hold (replaces the `build-tools` defaults).
    pub forbidden_executables: Option<Vec<String>>,
    /// Globs (globset syntax, absolute: `/root/.npm`, `**/*.ts`) no path may match (replaces
    /// the `sources` defaults).
    pub forbidden_paths: Option<Vec<String>>,
    /// Paths that must exist (symlinks resolved).
    #[serde(default)]
    pub required_files: Vec<String>,
    /// Programs that must be on the image's PATH (or absolute paths), runnable.
    #[serde(default)]
    pub required_executables: Vec<String>,
    /// The image's user must not be root.
    #[serde(default)]
    pub non_root: bool,
    /// Labels the config must carry.
    #[serde(default)]
    pub required_labels: Vec<String>,
    pub max_compressed_size: Option<String>,
    pub max_uncompressed_size: Option<String>,
    pub max_layer_compressed_size: Option<String>,
    /// Default checks to switch off (see [`DEFAULT_CHECKS`]).
    #[serde(default)]
    pub disable: Vec<String>,
    /// Layers below this index are the base image (default: from the history).
    pub base_layers: Option<usize>,
    /// A container-structure-test YAML file, relative to the policy file.
    pub structure_test: Option<PathBuf>,
}

impl Policy {
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| PolicyError::file(path, format!("cannot read the policy file: {e}")))?;
        let mut p: Policy = toml::from_str(&text).map_err(|e| {
            PolicyError::file(
                path,
                format!("is not a valid policy file: {e}(keys: forbidden_executables, forbidden_paths, required_files, required_executables, non_root, required_labels, max_compressed_size, max_uncompressed_size, max_layer_compressed_size, disable, base_layers, structure_test)"),
            )
        })?;
        for d in &p.disable {
            if !DEFAULT_CHECKS.contains(&d.as_str()) {
                return Err(PolicyError::file(
                    path,
                    format!(
                        "`disable` names `{d}`, which is not a default check; the default checks are {}",
                        DEFAULT_CHECKS.join(", ")
                    ),
                ));
            }
        }
        for s in [
            &p.max_compressed_size,
            &p.max_uncompressed_size,
            &p.max_layer_compressed_size,
        ]
        .into_iter()
        .flatten()
        {
            parse_size(s).map_err(|e| PolicyError::file(path, e))?;
        }
        if let Some(st) = &p.structure_test
            && st.is_relative()
        {
            p.structure_test = Some(path.parent().unwrap_or(Path::new(".")).join(st));
        }
        Ok(p)
    }

    pub fn enabled(&self, check: &str) -> bool {
        !self.disable.iter().any(|d| d == check)
    }
}

/// A size budget (`budget.toml`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    pub max_compressed_size: Option<String>,
    pub max_uncompressed_size: Option<String>,
    pub max_layer_compressed_size: Option<String>,
}

impl Budget {
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| PolicyError::file(path, format!("cannot read the budget file: {e}")))?;
        let b: Budget = toml::from_str(&text).map_err(|e| {
            PolicyError::file(
                path,
                format!("is not a valid budget file: {e}(keys: max_compressed_size, max_uncompressed_size, max_layer_compressed_size, as \"60MB\")"),
            )
        })?;
        for s in [
            &b.max_compressed_size,
            &b.max_uncompressed_size,
            &b.max_layer_compressed_size,
        ]
        .into_iter()
        .flatten()
        {
            parse_size(s).map_err(|e| PolicyError::file(path, e))?;
        }
        Ok(b)
    }

    /// (max compressed, max uncompressed, max layer compressed) in bytes.
    pub fn limits(&self) -> (Option<u64>, Option<u64>, Option<u64>) {
        let p = |s: &Option<String>| s.as_deref().and_then(|s| parse_size(s).ok());
        (
            p(&self.max_compressed_size),
            p(&self.max_uncompressed_size),
            p(&self.max_layer_compressed_size),
        )
    }
}

/// `"60MB"` → 60 000 000; SI units (`kB`, `MB`, `GB`), binary ones (`KiB`, `MiB`, `GiB`), or
/// a plain number of bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size: write it as 60MB, 512MiB or 1GB"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        u => {
            return Err(format!(
                "`{s}`: unknown size unit `{u}` (use B, kB, MB, GB, KiB, MiB or GiB)"
            ));
        }
    };
    Ok((n * mult).round() as u64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("60MB").unwrap(), 60_000_000);
        assert_eq!(parse_size("1.5 GB").unwrap(), 1_500_000_000);
        assert_eq!(parse_size("2MiB").unwrap(), 2 * 1024 * 1024);
        assert_eq!(parse_size("123").unwrap(), 123);
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("MB").is_err());
    }

    #[test]
    fn policy_keys() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("policy.toml");
        std::fs::write(
            &p,
            "forbidden_executables = [\"sh\"]\nnon_root = true\ndisable = [\"setuid\"]\nmax_compressed_size = \"60MB\"\nstructure_test = \"cst.yaml\"\n",
        )
        .unwrap();
        let pol = Policy::load(&p).unwrap();
        assert!(!pol.enabled("setuid") && pol.enabled("secrets"));
        assert_eq!(pol.structure_test.unwrap(), t.path().join("cst.yaml"));
        std::fs::write(&p, "disable = [\"nope\"]\n").unwrap();
        let e = Policy::load(&p).unwrap_err().to_string();
        assert!(e.contains("not a default check"), "{e}");
        std::fs::write(&p, "forbiden_paths = []\n").unwrap();
        assert!(Policy::load(&p).is_err());
    }
}
