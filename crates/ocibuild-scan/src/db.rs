//! The OSV database, indexed by (ecosystem, package) so a scan reads only the records of the
//! packages present.
//!
//! An imported database is a directory:
//! - `records.json`: every record's JSON, back to back (each stored once, however many
//!   packages it names);
//! - `index.tsv`: one sorted line per (ecosystem, package, record):
//!   `ECOSYSTEM\tNAME\tOFFSET\tLENGTH\tDIGEST`, binary-searched at scan time; `DIGEST` is the
//!   first 128 bits of the record's SHA-256 (hex), checked each time the record is read, so a
//!   record altered in place (same length, still valid JSON) is an error, not a silent miss;
//! - `ocibuild-vulndb.json` ([`DbInfo`]): counts, the newest `modified`, the source's digest
//!   and the sizes of the two files (a truncated file is found at open).
//!
//! It is written beside its destination and renamed into place. A raw source (a directory of
//! OSV JSON records, osv.dev's per-ecosystem `all.zip` archives, or a directory holding those)
//! is imported into the store under its content digest, so scanning it again reuses the index.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::osv::{Head, Record};
use crate::{Ecosystem, Package, ScanError};

const META: &str = "ocibuild-vulndb.json";
const RECORDS: &str = "records.json";
const INDEX: &str = "index.tsv";
/// 2: index lines carry each record's digest (format 1 had none: such a database is imported
/// again).
const FORMAT: u32 = 2;
/// Hex digits of a record's SHA-256 kept in the index (128 bits).
const RECORD_DIGEST_HEX: usize = 32;

fn record_digest(bytes: &[u8]) -> String {
    let mut h = hex::encode(Sha256::digest(bytes));
    h.truncate(RECORD_DIGEST_HEX);
    h
}

/// What an imported database holds (`ocibuild db info`).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct DbInfo {
    pub format: u32,
    /// Where it is (filled in at open).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// `sha256:<hex>` of the source it was imported from.
    pub source_digest: String,
    /// When it was imported (RFC 3339).
    pub imported: String,
    /// Records kept (withdrawn ones are left out).
    pub records: u64,
    pub withdrawn: u64,
    /// Records per OSV ecosystem (a record naming two ecosystems counts in both); other
    /// ecosystems than the five the gate matches are counted under their own name.
    pub ecosystems: BTreeMap<String, u64>,
    /// The newest `modified` of any record (RFC 3339).
    pub newest_modified: Option<String>,
    pub index_entries: u64,
    pub records_bytes: u64,
    pub index_bytes: u64,
    /// `sha256:<hex>` of `index.tsv`, checked at every open: a damaged index would otherwise
    /// find nothing and pass every scan.
    pub index_digest: String,
}

impl DbInfo {
    /// Seconds between the newest record and `now` (Unix seconds).
    pub fn age_secs(&self, now: i64) -> Option<i64> {
        let newest = crate::time::parse_rfc3339(self.newest_modified.as_deref()?)?;
        Some((now - newest).max(0))
    }
}

/// An opened database: its info and its index in memory (one short line per entry).
pub struct Database {
    dir: PathBuf,
    info: DbInfo,
    index: String,
    /// Byte offsets of the index's lines.
    lines: Vec<usize>,
}

fn corrupt(dir: &Path, reason: impl Into<String>) -> ScanError {
    ScanError::CorruptDatabase {
        path: dir.to_path_buf(),
        reason: reason.into(),
    }
}

/// Whether `dir` is an imported database.
pub fn is_database(dir: &Path) -> bool {
    dir.join(META).is_file()
}

/// Whether `dir` is an imported database of the format this ocibuild writes (a cached import of
/// an older format is imported again from its source).
fn is_current_database(dir: &Path) -> bool {
    #[derive(Deserialize)]
    struct Probe {
        format: u32,
    }
    fs::read(dir.join(META))
        .ok()
        .and_then(|b| serde_json::from_slice::<Probe>(&b).ok())
        .is_some_and(|p| p.format == FORMAT)
}

impl Database {
    /// Opens an imported database; a missing one is [`ScanError::NoDatabase`], a damaged one
    /// [`ScanError::CorruptDatabase`].
    pub fn open(dir: &Path) -> Result<Database, ScanError> {
        let meta = dir.join(META);
        if !meta.is_file() {
            return Err(ScanError::NoDatabase {
                path: dir.to_path_buf(),
            });
        }
        let bytes = fs::read(&meta).map_err(ScanError::io(&meta))?;
        let mut info: DbInfo = serde_json::from_slice(&bytes)
            .map_err(|e| corrupt(dir, format!("{META} is not valid: {e}")))?;
        if info.format != FORMAT {
            return Err(corrupt(
                dir,
                format!("format {} (this ocibuild reads {FORMAT})", info.format),
            ));
        }
        let index_path = dir.join(INDEX);
        let index = fs::read_to_string(&index_path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                corrupt(dir, format!("{INDEX} is missing"))
            } else {
                ScanError::Io {
                    path: index_path.clone(),
                    source: e,
                }
            }
        })?;
        if index.len() as u64 != info.index_bytes {
            return Err(corrupt(
                dir,
                format!(
                    "{INDEX} has {} bytes, the import wrote {}",
                    index.len(),
                    info.index_bytes
                ),
            ));
        }
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(index.as_bytes())));
        if digest != info.index_digest {
            return Err(corrupt(
                dir,
                format!("{INDEX} does not match the digest the import recorded"),
            ));
        }
        let rec_len = fs::metadata(dir.join(RECORDS))
            .map_err(|_| corrupt(dir, format!("{RECORDS} is missing")))?
            .len();
        if rec_len != info.records_bytes {
            return Err(corrupt(
                dir,
                format!(
                    "{RECORDS} has {rec_len} bytes, the import wrote {}",
                    info.records_bytes
                ),
            ));
        }
        let mut lines = Vec::with_capacity(info.index_entries as usize);
        let mut start = 0;
        for (i, b) in index.bytes().enumerate() {
            if b == b'\n' {
                lines.push(start);
                start = i + 1;
            }
        }
        if start != index.len() {
            return Err(corrupt(dir, format!("{INDEX} does not end with a newline")));
        }
        info.path = Some(dir.to_path_buf());
        Ok(Database {
            dir: dir.to_path_buf(),
            info,
            index,
            lines,
        })
    }

    /// Opens `path` if it is an imported database; otherwise imports the raw source at `path`
    /// into `store_dir/sha256-<digest>` (once: a source with the same content reuses it).
    pub fn open_or_import(path: &Path, store_dir: &Path) -> Result<Database, ScanError> {
        if is_database(path) {
            return Database::open(path);
        }
        if !path.exists() {
            return Err(ScanError::NoDatabase {
                path: path.to_path_buf(),
            });
        }
        // a source seen before with the same files, sizes and mtimes: its digest without
        // reading it again (a full all.zip set is hundreds of MB)
        let fingerprint = source_fingerprint(path)?;
        let canonical = fs::canonicalize(path).map_err(ScanError::io(path))?;
        let memo = store_dir.join("sources").join(format!(
            "{}.json",
            hex::encode(Sha256::digest(canonical.to_string_lossy().as_bytes()))
        ));
        if let Ok(bytes) = fs::read(&memo)
            && let Ok(m) = serde_json::from_slice::<SourceMemo>(&bytes)
            && m.fingerprint == fingerprint
        {
            let dest = store_dir.join(m.digest.replace(':', "-"));
            if is_current_database(&dest) {
                return Database::open(&dest);
            }
        }
        let digest = source_digest(path)?;
        let dest = store_dir.join(digest.replace(':', "-"));
        if !is_current_database(&dest) {
            import(path, &dest)?;
        }
        // best effort: a memo that cannot be written only costs a re-hash next time
        if let Some(dir) = memo.parent()
            && fs::create_dir_all(dir).is_ok()
            && let Ok(mut tmp) = tempfile::NamedTempFile::new_in(dir)
            && let Ok(bytes) = serde_json::to_vec(&SourceMemo {
                fingerprint,
                digest,
            })
            && tmp.write_all(&bytes).is_ok()
        {
            let _ = tmp.persist(&memo);
        }
        Database::open(&dest)
    }

    pub fn info(&self) -> &DbInfo {
        &self.info
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn line(&self, i: usize) -> &str {
        let start = self.lines[i];
        let end = self.lines.get(i + 1).map_or(self.index.len(), |e| *e);
        self.index[start..end].trim_end_matches('\n')
    }

    fn key_of(line: &str) -> &str {
        // ECOSYSTEM \t NAME \t ...
        let mut tabs = line.match_indices('\t');
        let _ = tabs.next();
        match tabs.next() {
            Some((i, _)) => &line[..i],
            None => line,
        }
    }

    /// (offset, length, digest) of every record indexed under `ecosystem`/`name`.
    pub fn entries(
        &self,
        ecosystem: Ecosystem,
        name: &str,
    ) -> Result<Vec<(u64, u64, String)>, ScanError> {
        let key = format!("{}\t{}", ecosystem.as_str(), name);
        let lo = {
            let (mut lo, mut hi) = (0usize, self.lines.len());
            while lo < hi {
                let mid = (lo + hi) / 2;
                if Self::key_of(self.line(mid)) < key.as_str() {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            lo
        };
        let mut out = Vec::new();
        for i in lo..self.lines.len() {
            let line = self.line(i);
            if Self::key_of(line) != key {
                break;
            }
            let mut f = line.rsplitn(4, '\t');
            let digest = f.next().filter(|d| {
                d.len() == RECORD_DIGEST_HEX && d.bytes().all(|b| b.is_ascii_hexdigit())
            });
            let len = f.next().and_then(|v| v.parse::<u64>().ok());
            let off = f.next().and_then(|v| v.parse::<u64>().ok());
            match (off, len, digest) {
                (Some(o), Some(l), Some(d)) if o + l <= self.info.records_bytes => {
                    out.push((o, l, d.to_string()))
                }
                _ => {
                    return Err(corrupt(
                        &self.dir,
                        format!(
                            "{INDEX} line {} is not NAME OFFSET LENGTH DIGEST: `{line}`",
                            i + 1
                        ),
                    ));
                }
            }
        }
        Ok(out)
    }

    /// The records that name `pkg` (its source package, for Debian), each once.
    pub fn records_for(&self, pkg: &Package) -> Result<Vec<Record>, ScanError> {
        let mut spans = Vec::new();
        for name in pkg.lookup_names() {
            spans.extend(self.entries(pkg.ecosystem, &name)?);
        }
        spans.sort_unstable();
        spans.dedup();
        if spans.is_empty() {
            return Ok(Vec::new());
        }
        let path = self.dir.join(RECORDS);
        let mut f = fs::File::open(&path).map_err(ScanError::io(&path))?;
        let mut out = Vec::with_capacity(spans.len());
        let mut buf = Vec::new();
        for (off, len, digest) in spans {
            buf.resize(len as usize, 0);
            f.seek(SeekFrom::Start(off))
                .and_then(|_| f.read_exact(&mut buf))
                .map_err(ScanError::io(&path))?;
            if record_digest(&buf) != digest {
                return Err(corrupt(
                    &self.dir,
                    format!(
                        "the record at offset {off} of {RECORDS} was altered after the import (its \
                         SHA-256 no longer matches the index)"
                    ),
                ));
            }
            let r: Record = serde_json::from_slice(&buf).map_err(|e| {
                corrupt(
                    &self.dir,
                    format!("the record at offset {off} of {RECORDS} is not OSV JSON: {e}"),
                )
            })?;
            out.push(r);
        }
        Ok(out)
    }
}

/// Every input file of a source, in a stable order: `*.json` records and `*.zip` archives.
fn source_files(path: &Path) -> Result<Vec<PathBuf>, ScanError> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for e in walkdir::WalkDir::new(path).sort_by_file_name() {
        let e = e.map_err(|e| ScanError::Io {
            path: e
                .path()
                .map_or_else(|| path.to_path_buf(), Path::to_path_buf),
            source: e
                .into_io_error()
                .unwrap_or_else(|| std::io::Error::other("directory loop")),
        })?;
        if !e.file_type().is_file() {
            continue;
        }
        let name = e.file_name().to_string_lossy();
        if name.ends_with(".json") || name.ends_with(".zip") {
            files.push(e.into_path());
        }
    }
    Ok(files)
}

#[derive(Serialize, Deserialize)]
struct SourceMemo {
    fingerprint: String,
    digest: String,
}

/// A source's files with their sizes and modification times, hashed: cheap to compute, and
/// changed by any rewrite of a file.
fn source_fingerprint(path: &Path) -> Result<String, ScanError> {
    let mut h = Sha256::new();
    for f in source_files(path)? {
        let m = fs::metadata(&f).map_err(ScanError::io(&f))?;
        let mtime = m
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        h.update(f.to_string_lossy().as_bytes());
        h.update(format!("\0{}\0{mtime}\0", m.len()).as_bytes());
    }
    Ok(hex::encode(h.finalize()))
}

/// `sha256:<hex>` over a source's files (relative names and contents, in order).
pub fn source_digest(path: &Path) -> Result<String, ScanError> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    for f in source_files(path)? {
        let rel = f.strip_prefix(path).unwrap_or(&f);
        h.update(rel.to_string_lossy().as_bytes());
        h.update([0]);
        let mut file = fs::File::open(&f).map_err(ScanError::io(&f))?;
        loop {
            let n = file.read(&mut buf).map_err(ScanError::io(&f))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        h.update([0]);
    }
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

struct Importer {
    records: BufWriter<fs::File>,
    records_path: PathBuf,
    offset: u64,
    index: Vec<(String, u64, u64, String)>,
    info: DbInfo,
    newest: Option<(i64, String)>,
    scratch: Vec<u8>,
}

impl Importer {
    /// One record's bytes (`origin` names it in errors): indexed under each package it names.
    fn add(&mut self, origin: &str, bytes: &[u8]) -> Result<(), ScanError> {
        let bytes = trim_ascii(bytes);
        if bytes.first() == Some(&b'[') {
            // a file holding an array of records
            let all: Vec<serde_json::Value> =
                serde_json::from_slice(bytes).map_err(|e| ScanError::BadRecord {
                    path: origin.to_string(),
                    reason: e.to_string(),
                })?;
            for (i, v) in all.iter().enumerate() {
                let b = serde_json::to_vec(v).map_err(|e| ScanError::BadRecord {
                    path: format!("{origin}[{i}]"),
                    reason: e.to_string(),
                })?;
                self.add(&format!("{origin}[{i}]"), &b)?;
            }
            return Ok(());
        }
        let head: Head = serde_json::from_slice(bytes).map_err(|e| ScanError::BadRecord {
            path: origin.to_string(),
            reason: e.to_string(),
        })?;
        if head.withdrawn.is_some() {
            self.info.withdrawn += 1;
            return Ok(());
        }
        if let Some(m) = &head.modified
            && let Some(t) = crate::time::parse_rfc3339(m)
            && self.newest.as_ref().is_none_or(|(n, _)| t > *n)
        {
            self.newest = Some((t, m.clone()));
        }
        let mut keys: Vec<String> = Vec::new();
        let mut ecos: Vec<String> = Vec::new();
        for a in &head.affected {
            let Some(p) = &a.package else { continue };
            match Ecosystem::from_osv(&p.ecosystem) {
                Some((e, _)) => {
                    let key = format!("{}\t{}", e.as_str(), e.normalize_name(&p.name));
                    if !key[e.as_str().len() + 1..].contains(['\n', '\t']) && !keys.contains(&key) {
                        keys.push(key);
                    }
                    if !ecos.iter().any(|x| x == e.as_str()) {
                        ecos.push(e.as_str().to_string());
                    }
                }
                None => {
                    let base = p.ecosystem.split(':').next().unwrap_or("").to_string();
                    if !ecos.contains(&base) {
                        ecos.push(base);
                    }
                }
            }
        }
        for e in ecos {
            *self.info.ecosystems.entry(e).or_default() += 1;
        }
        self.info.records += 1;
        if keys.is_empty() {
            return Ok(());
        }
        minify(bytes, &mut self.scratch);
        let len = self.scratch.len() as u64;
        let digest = record_digest(&self.scratch);
        self.records
            .write_all(&self.scratch)
            .map_err(ScanError::io(&self.records_path))?;
        for k in keys {
            self.index.push((k, self.offset, len, digest.clone()));
        }
        self.offset += len;
        Ok(())
    }

    fn add_zip(&mut self, path: &Path) -> Result<(), ScanError> {
        let zerr = |e: zip::result::ZipError| ScanError::Zip {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let f = fs::File::open(path).map_err(ScanError::io(path))?;
        let mut z = zip::ZipArchive::new(std::io::BufReader::new(f)).map_err(zerr)?;
        let mut buf = Vec::new();
        for i in 0..z.len() {
            let mut entry = z.by_index(i).map_err(zerr)?;
            let name = entry.name().map_err(zerr)?.into_owned();
            if !entry.is_file() || !name.ends_with(".json") {
                continue;
            }
            let origin = format!("{}:{name}", path.display());
            buf.clear();
            entry.read_to_end(&mut buf).map_err(|e| ScanError::Zip {
                path: path.to_path_buf(),
                reason: format!("{name}: {e}"),
            })?;
            drop(entry);
            self.add(&origin, &buf)?;
        }
        Ok(())
    }
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    b.trim_ascii()
}

/// JSON without the whitespace between tokens (strings untouched): osv.dev's records are
/// pretty-printed, and the index stores each once, compactly.
fn minify(b: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.reserve(b.len());
    let (mut in_str, mut escaped) = (false, false);
    for &c in b {
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                in_str = false;
            }
        } else if !matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
            if c == b'"' {
                in_str = true;
            }
            out.push(c);
        }
    }
}

/// Imports the OSV records at `source` into the database directory `dest`, replacing what is
/// there only once the new one is complete. Returns its info.
pub fn import(source: &Path, dest: &Path) -> Result<DbInfo, ScanError> {
    if dest.exists() && !is_database(dest) {
        let empty = fs::read_dir(dest).is_ok_and(|mut d| d.next().is_none());
        if !empty {
            return Err(ScanError::Io {
                path: dest.to_path_buf(),
                source: std::io::Error::other(
                    "exists and is not an imported database; choose a new or empty directory for --db",
                ),
            });
        }
    }
    let digest = source_digest(source)?;
    let files = source_files(source)?;
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(ScanError::io(parent))?;
    let tmp = tempfile::Builder::new()
        .prefix(".vulndb-import-")
        .tempdir_in(parent)
        .map_err(ScanError::io(parent))?;
    let records_path = tmp.path().join(RECORDS);
    let rf = fs::File::create(&records_path).map_err(ScanError::io(&records_path))?;
    let mut imp = Importer {
        records: BufWriter::with_capacity(1 << 20, rf),
        records_path: records_path.clone(),
        offset: 0,
        index: Vec::new(),
        info: DbInfo {
            format: FORMAT,
            source_digest: digest,
            imported: crate::time::format_rfc3339(crate::time::now()),
            ..DbInfo::default()
        },
        newest: None,
        scratch: Vec::new(),
    };
    for f in &files {
        if f.extension().is_some_and(|e| e == "zip") {
            imp.add_zip(f)?;
        } else {
            let bytes = fs::read(f).map_err(ScanError::io(f))?;
            imp.add(&f.display().to_string(), &bytes)?;
        }
    }
    if imp.info.records == 0 && imp.info.withdrawn == 0 {
        return Err(ScanError::Empty {
            path: source.to_path_buf(),
        });
    }
    imp.records.flush().map_err(ScanError::io(&records_path))?;
    let Importer {
        mut index,
        mut info,
        newest,
        offset,
        ..
    } = imp;
    index.sort_unstable();
    let index_path = tmp.path().join(INDEX);
    let mut w = BufWriter::with_capacity(
        1 << 20,
        fs::File::create(&index_path).map_err(ScanError::io(&index_path))?,
    );
    let mut index_bytes = 0u64;
    let mut index_hash = Sha256::new();
    for (k, off, len, digest) in &index {
        let line = format!("{k}\t{off}\t{len}\t{digest}\n");
        index_bytes += line.len() as u64;
        index_hash.update(line.as_bytes());
        w.write_all(line.as_bytes())
            .map_err(ScanError::io(&index_path))?;
    }
    w.flush().map_err(ScanError::io(&index_path))?;
    drop(w);
    info.index_entries = index.len() as u64;
    info.index_bytes = index_bytes;
    info.index_digest = format!("sha256:{}", hex::encode(index_hash.finalize()));
    info.records_bytes = offset;
    info.newest_modified = newest.map(|(_, s)| s);
    let meta_path = tmp.path().join(META);
    let meta = serde_json::to_vec_pretty(&info).map_err(|e| ScanError::Io {
        path: meta_path.clone(),
        source: std::io::Error::other(e),
    })?;
    fs::write(&meta_path, meta).map_err(ScanError::io(&meta_path))?;
    // swap in: the old database (if any) moves aside first and goes only after the rename
    let tmp = tmp.keep();
    let old = parent.join(format!(
        ".vulndb-old-{}",
        dest.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    ));
    let had_old = dest.exists();
    if had_old {
        let _ = fs::remove_dir_all(&old);
        fs::rename(dest, &old).map_err(ScanError::io(dest))?;
    }
    if let Err(e) = fs::rename(&tmp, dest) {
        if had_old {
            let _ = fs::rename(&old, dest);
        }
        let _ = fs::remove_dir_all(&tmp);
        return Err(ScanError::Io {
            path: dest.to_path_buf(),
            source: e,
        });
    }
    if had_old {
        let _ = fs::remove_dir_all(&old);
    }
    info.path = Some(dest.to_path_buf());
    Ok(info)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn minify_keeps_strings() {
        let mut out = Vec::new();
        minify(
            b"{\n  \"a b\": [1, 2],\n  \"s\": \"x \\\" \\\\ y\" }",
            &mut out,
        );
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"a b":[1,2],"s":"x \" \\ y"}"#
        );
    }
}
