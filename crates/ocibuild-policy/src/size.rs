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
