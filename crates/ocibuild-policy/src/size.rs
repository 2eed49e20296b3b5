//! Where an image's bytes are: per layer, per directory, per file; duplicates, wasted bytes,
//! the reduction against another image, and budgets.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::human;
use crate::index::{Kind, LayerInfo, Scanned, Waste};
use crate::policy::Budget;

#[derive(Clone, Debug, Serialize)]
pub struct Bytes {
    pub path: String,
    pub bytes: u64,
}

/// The bytes of one package's files in the final filesystem.
#[derive(Clone, Debug, Serialize)]
pub struct PackageBytes {
    /// `deb` (from dpkg's file lists) or `npm` (a `node_modules/NAME` directory).
    pub kind: &'static str,
    pub name: String,
    pub bytes: u64,
    pub files: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Duplicate {
    /// Bytes of one copy.
    pub size: u64,
    /// Where the copies are: (layer, path).
    pub copies: Vec<(usize, String)>,
    /// Bytes beyond the first copy.
    pub extra_bytes: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    pub image: String,
    pub compressed: u64,
    pub uncompressed: u64,
    /// How much smaller this image is, compressed, in percent (negative: bigger).
    pub reduction_percent: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct SizeReport {
    pub image: String,
    pub compressed: u64,
    pub uncompressed: u64,
    /// Bytes of the regular files in the final filesystem.
    pub files_bytes: u64,
    pub files: u64,
    pub layers: Vec<LayerInfo>,
    pub top_directories: Vec<Bytes>,
    pub biggest_files: Vec<Bytes>,
    /// The biggest packages by the bytes of their files: Debian packages from dpkg's file
    /// lists, npm packages from their `node_modules` directories.
    pub packages: Vec<PackageBytes>,
    pub duplicates: Vec<Duplicate>,
    pub duplicated_bytes: u64,
    pub wasted: Vec<Waste>,
    pub wasted_bytes: u64,
    pub compare: Option<Comparison>,
    /// Budget violations (empty when within budget or no budget).
    pub violations: Vec<String>,
}

/// The `n` biggest regular files of the final filesystem.
pub fn biggest_files(s: &Scanned, n: usize) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> =
        s.fs.iter()
            .filter(|(_, e)| e.kind == Kind::File)
            .map(|(p, e)| (p.clone(), e.size))
            .collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(n);
    v
}

/// The npm package a path belongs to: the innermost `node_modules/NAME` (or `@scope/NAME`).
fn npm_package(path: &str) -> Option<String> {
    let i = path.rfind("/node_modules/")?;
    let rest = &path[i + "/node_modules/".len()..];
    let mut parts = rest.split('/');
    let first = parts.next()?;
    let name = if first.starts_with('@') {
        format!("{first}/{}", parts.next()?)
    } else {
        first.to_string()
    };
    // a file directly in node_modules (.package-lock.json) belongs to no package
    parts.next()?;
    (!first.starts_with('.')).then_some(name)
}

/// Bytes per package, biggest first: every regular file of the final filesystem is counted once,
/// for the first dpkg file list naming it, else for the npm package whose directory holds it.
pub fn packages(s: &Scanned, n: usize) -> Vec<PackageBytes> {
    let mut owner: HashMap<&str, String> = HashMap::new();
    for (list, body) in &s.contents {
        if !crate::index::is_package_file_list(list) {
            continue;
        }
        let file = list.rsplit('/').next().unwrap_or_default();
        let pkg = file.trim_end_matches(".md5sums").trim_end_matches(".list");
        let pkg = pkg.split(':').next().unwrap_or(pkg).to_string();
        let md5sums = list.ends_with(".md5sums");
        for line in String::from_utf8_lossy(body).lines() {
            // md5sums: `HASH  relative/path`; .list: `/absolute/path`
            let path = if md5sums {
                match line.split_once("  ") {
                    Some((_, p)) => format!("/{}", p.trim_start_matches('/')),
                    None => continue,
                }
            } else {
                line.to_string()
            };
            // merged /usr: a package may list /lib/x that the image holds at /usr/lib/x
            let key = [path.clone(), format!("/usr{path}")]
                .into_iter()
                .find(|p| s.fs.get(p).is_some_and(|e| e.kind == Kind::File));
            if let Some(k) = key
                && let Some((k, _)) = s.fs.get_key_value(&k)
            {
                owner.entry(k.as_str()).or_insert_with(|| pkg.clone());
            }
        }
    }
    let mut by: HashMap<(&'static str, String), (u64, u64)> = HashMap::new();
    for (p, e) in &s.fs {
        if e.kind != Kind::File {
            continue;
        }
        let key = match owner.get(p.as_str()) {
            Some(pkg) => ("deb", pkg.clone()),
            None => match npm_package(p) {
                Some(name) => ("npm", name),
                None => continue,
            },
        };
        let v = by.entry(key).or_default();
        v.0 += e.size;
        v.1 += 1;
    }
    let mut v: Vec<PackageBytes> = by
        .into_iter()
        .map(|((kind, name), (bytes, files))| PackageBytes {
            kind,
            name,
            bytes,
            files,
        })
        .collect();
    v.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.name.cmp(&b.name)));
    v.truncate(n);
    v
}

/// The size report of `s`, compared with `other` when given, checked against `budget`.
pub fn report(
    s: &Scanned,
    image: &str,
    other: Option<(&Scanned, &str)>,
    budget: Option<&Budget>,
    top: usize,
) -> SizeReport {
    let compressed: u64 = s.layers.iter().map(|l| l.compressed).sum();
    let uncompressed: u64 = s.layers.iter().map(|l| l.uncompressed).sum();
    let mut dirs: HashMap<&str, u64> = HashMap::new();
    let (mut files, mut files_bytes) = (0, 0);
    for (p, e) in &s.fs {
        if e.kind != Kind::File {
            continue;
        }
        files += 1;
        files_bytes += e.size;
        // every ancestor up to three levels deep
        let mut idx = 0;
        for _ in 0..3 {
            let Some(next) = p[idx + 1..].find('/') else {
                break;
            };
            idx += 1 + next;
            *dirs.entry(&p[..idx]).or_default() += e.size;
        }
    }
    let mut top_directories: Vec<Bytes> = dirs
        .into_iter()
        .map(|(p, b)| Bytes {
            path: p.to_string(),
            bytes: b,
        })
        .collect();
    top_directories.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.path.cmp(&b.path)));
    top_directories.truncate(top);
    let biggest = biggest_files(s, top)
        .into_iter()
        .map(|(path, bytes)| Bytes { path, bytes })
        .collect();
    // the same content (hash and size) in more than one layer
    let mut groups: BTreeMap<(u64, u64), Vec<(usize, String)>> = BTreeMap::new();
    for (h, size, layer, p) in &s.all_files {
        if *size >= 1024 {
            groups
                .entry((*h, *size))
                .or_default()
                .push((*layer, p.clone()));
        }
    }
    let mut duplicates: Vec<Duplicate> = groups
        .into_iter()
        .filter(|(_, c)| {
            let first = c.first().map(|x| x.0);
            c.iter().any(|x| Some(x.0) != first)
        })
        .map(|((_, size), copies)| Duplicate {
            size,
            extra_bytes: size * (copies.len() as u64 - 1),
            copies,
        })
        .collect();
    duplicates.sort_by_key(|d| std::cmp::Reverse(d.extra_bytes));
    let duplicated_bytes = duplicates.iter().map(|d| d.extra_bytes).sum();
    duplicates.truncate(top);
    let mut wasted = s.wasted.clone();
    wasted.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.path.cmp(&b.path)));
    let wasted_bytes = wasted.iter().map(|w| w.bytes).sum();
    wasted.truncate(top);
    let compare = other.map(|(o, name)| {
        let oc: u64 = o.layers.iter().map(|l| l.compressed).sum();
        let ou: u64 = o.layers.iter().map(|l| l.uncompressed).sum();
        Comparison {
            image: name.to_string(),
            compressed: oc,
            uncompressed: ou,
            reduction_percent: 100.0 * (1.0 - compressed as f64 / oc.max(1) as f64),
        }
    });
    let mut r = SizeReport {
        image: image.to_string(),
        compressed,
        uncompressed,
        files_bytes,
        files,
        layers: s.layers.clone(),
        top_directories,
        biggest_files: biggest,
        packages: packages(s, top),
        duplicates,
        duplicated_bytes,
        wasted,
        wasted_bytes,
        compare,
        violations: Vec::new(),
    };
    if let Some(b) = budget {
        r.violations = violations(s, &r, b);
    }
    r
}

fn violations(s: &Scanned, r: &SizeReport, b: &Budget) -> Vec<String> {
    let (mc, mu, ml) = b.limits();
    let top = |v: &[Bytes]| {
        v.iter()
            .take(3)
            .map(|b| format!("{} ({})", b.path, human(b.bytes)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = Vec::new();
    if let Some(m) = mc
        && r.compressed > m
    {
        out.push(format!(
            "{} compressed is over the budget's max_compressed_size {} by {}; biggest files: {}; biggest directories: {}",
            human(r.compressed),
            human(m),
            human(r.compressed - m),
            top(&r.biggest_files),
            top(&r.top_directories)
        ));
    }
    if let Some(m) = mu
        && r.uncompressed > m
    {
        out.push(format!(
            "{} uncompressed is over the budget's max_uncompressed_size {} by {}; biggest files: {}; biggest directories: {}",
            human(r.uncompressed),
            human(m),
            human(r.uncompressed - m),
            top(&r.biggest_files),
            top(&r.top_directories)
        ));
    }
    if let Some(m) = ml {
        for l in &r.layers {
            if l.compressed > m {
                let mut in_layer: Vec<(&String, u64)> =
                    s.fs.iter()
                        .filter(|(_, e)| e.kind == Kind::File && e.layer == l.index)
                        .map(|(p, e)| (p, e.size))
                        .collect();
                in_layer.sort_by_key(|b| std::cmp::Reverse(b.1));
                out.push(format!(
                    "layer {} ({}) is {} compressed, over the budget's max_layer_compressed_size {}; its biggest files: {}",
                    l.index,
                    l.digest,
                    human(l.compressed),
                    human(m),
                    in_layer
                        .iter()
                        .take(3)
                        .map(|(p, b)| format!("{p} ({})", human(*b)))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
    }
    out
}

impl SizeReport {
    /// A plain-text table (`markdown`: GitHub-flavoured tables for a job summary).
    pub fn render(&self, markdown: bool) -> String {
        let mut o = String::new();
        let h = |o: &mut String, t: &str| {
            if markdown {
                o.push_str(&format!("\n### {t}\n\n"));
            } else {
                o.push_str(&format!("\n{t}\n"));
            }
        };
        let row = |o: &mut String, cells: &[String]| {
            if markdown {
                o.push_str(&format!("| {} |\n", cells.join(" | ")));
            } else {
                let mut line = String::new();
                for (i, c) in cells.iter().enumerate() {
                    if i + 1 == cells.len() {
                        line.push_str(c);
                    } else {
                        line.push_str(&format!("{c:>12}  "));
                    }
                }
                o.push_str(&format!("  {}\n", line.trim_end()));
            }
        };
        let head = |o: &mut String, cells: &[&str]| {
            let cells: Vec<String> = cells.iter().map(|c| c.to_string()).collect();
            row(o, &cells);
            if markdown {
                o.push_str(&format!("|{}\n", "---|".repeat(cells.len())));
            }
        };
        if markdown {
            o.push_str(&format!("## Image size: `{}`\n\n", self.image));
        } else {
            o.push_str(&format!("{}\n", self.image));
        }
        o.push_str(&format!(
            "{}{} compressed, {} uncompressed, {} files ({}); {} wasted by later layers, {} duplicated across layers\n",
            if markdown { "" } else { "  " },
            human(self.compressed),
            human(self.uncompressed),
            self.files,
            human(self.files_bytes),
            human(self.wasted_bytes),
            human(self.duplicated_bytes),
        ));
        if let Some(c) = &self.compare {
            o.push_str(&format!(
                "{}{:.1}% smaller than {} ({} compressed, {} uncompressed)\n",
                if markdown { "\n" } else { "  " },
                c.reduction_percent,
                c.image,
                human(c.compressed),
                human(c.uncompressed)
            ));
        }
        h(&mut o, "Layers");
        head(&mut o, &["COMPRESSED", "UNCOMPRESSED", "FILES", "LAYER"]);
        for l in &self.layers {
            row(
                &mut o,
                &[
                    human(l.compressed),
                    human(l.uncompressed),
                    l.files.to_string(),
                    format!(
                        "{} {}{}{}",
                        l.index,
                        l.digest.get(..19).unwrap_or(&l.digest),
                        if l.app { " (app)" } else { "" },
                        l.created_by
                            .as_deref()
                            .map(|c| format!(" {}", c.chars().take(60).collect::<String>()))
                            .unwrap_or_default()
                    ),
                ],
            );
        }
        h(&mut o, "Top directories");
        head(&mut o, &["BYTES", "DIRECTORY"]);
        for d in &self.top_directories {
            row(&mut o, &[human(d.bytes), d.path.clone()]);
        }
        h(&mut o, "Biggest files");
        head(&mut o, &["BYTES", "FILE"]);
        for d in &self.biggest_files {
            row(&mut o, &[human(d.bytes), d.path.clone()]);
        }
        if !self.packages.is_empty() {
            h(&mut o, "Biggest packages");
            head(&mut o, &["BYTES", "FILES", "PACKAGE"]);
            for p in &self.packages {
                row(
                    &mut o,
                    &[
                        human(p.bytes),
                        p.files.to_string(),
                        format!("{} ({})", p.name, p.kind),
                    ],
                );
            }
        }
        if !self.duplicates.is_empty() {
            h(&mut o, "Duplicated across layers");
            head(&mut o, &["EXTRA", "COPIES (layer:path)"]);
            for d in &self.duplicates {
                row(
                    &mut o,
                    &[
                        human(d.extra_bytes),
                        d.copies
                            .iter()
                            .map(|(l, p)| format!("{l}:{p}"))
                            .collect::<Vec<_>>()
                            .join(", "),
                    ],
                );
            }
        }
        if !self.wasted.is_empty() {
            h(&mut o, "Wasted (overwritten or deleted by a later layer)");
            head(&mut o, &["BYTES", "FILE"]);
            for w in &self.wasted {
                row(
                    &mut o,
                    &[
                        human(w.bytes),
                        format!(
                            "{} (layer {}, {} by layer {})",
                            w.path,
                            w.layer,
                            if w.deleted { "deleted" } else { "overwritten" },
                            w.by_layer
                        ),
                    ],
                );
            }
        }
        if !self.violations.is_empty() {
            h(&mut o, "Budget exceeded");
            for v in &self.violations {
                o.push_str(&format!("{}{v}\n", if markdown { "- " } else { "  " }));
            }
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::Entry;

    fn file(size: u64) -> Entry {
        Entry {
            kind: Kind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size,
            layer: 0,
            target: None,
            hash: 0,
            elf: None,
            shebang: None,
        }
    }

    #[test]
    fn npm_package_is_the_innermost_node_modules_entry() {
        assert_eq!(
            npm_package("/app/node_modules/express/index.js").as_deref(),
            Some("express")
        );
        assert_eq!(
            npm_package("/app/node_modules/@types/node/a/b.d.ts").as_deref(),
            Some("@types/node")
        );
        assert_eq!(
            npm_package("/app/node_modules/a/node_modules/b/x.js").as_deref(),
            Some("b")
        );
        assert_eq!(npm_package("/app/node_modules/.package-lock.json"), None);
        assert_eq!(npm_package("/app/node_modules/.bin/tsc"), None);
        assert_eq!(npm_package("/app/dist/server.js"), None);
    }

    #[test]
    fn bytes_are_attributed_to_dpkg_and_npm_packages() {
        let mut s = Scanned::default();
        for (p, n) in [
            ("/usr/lib/x86_64-linux-gnu/libc.so.6", 2000),
            ("/usr/lib/x86_64-linux-gnu/libm.so.6", 1000),
            ("/usr/lib/x86_64-linux-gnu/libnode.so.115", 50000),
            ("/usr/share/doc/libc6/copyright", 10),
            ("/app/node_modules/express/index.js", 300),
            ("/app/node_modules/express/lib/router.js", 700),
            ("/app/dist/server.js", 5),
        ] {
            s.fs.insert(p.to_string(), file(n));
        }
        s.contents.insert(
            "/var/lib/dpkg/status.d/libc6.md5sums".into(),
            b"0123  usr/lib/x86_64-linux-gnu/libc.so.6\n4567  usr/lib/x86_64-linux-gnu/libm.so.6\n89ab  usr/share/doc/libc6/copyright\ncdef  usr/share/doc/libc6/changelog.gz\n".to_vec(),
        );
        s.contents.insert(
            "/var/lib/dpkg/info/libnode115:amd64.list".into(),
            b"/.\n/usr\n/usr/lib/x86_64-linux-gnu/libnode.so.115\n".to_vec(),
        );
        let p = packages(&s, 10);
        let got: Vec<(&str, &str, u64, u64)> = p
            .iter()
            .map(|p| (p.kind, p.name.as_str(), p.bytes, p.files))
            .collect();
        assert_eq!(
            got,
            [
                ("deb", "libnode115", 50000, 1),
                ("deb", "libc6", 3010, 3),
                ("npm", "express", 1000, 2),
            ]
        );
        let r = report(&s, "img", None, None, 2);
        assert_eq!(r.packages.len(), 2);
        assert!(
            r.render(false).contains("libnode115 (deb)"),
            "{}",
            r.render(false)
        );
    }
}
