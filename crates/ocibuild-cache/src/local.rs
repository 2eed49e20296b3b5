//! `type=local`: a cache directory, shareable by several processes (and over NFS-like mounts
//! that support hard links or `renameat2`).
//!
//! ```text
//! DIR/blobs/sha256/<hex>    blobs
//! DIR/index/<key>.json      index objects
//! DIR/tmp/                  files being written
//! ```
//!
//! Every file is written in `DIR/tmp/`, fsynced, and then moved into place with a no-clobber
//! rename (`renameat2(RENAME_NOREPLACE)`, or `link(2)` + unlink where that is missing): a file
//! under its final name is always complete, and the second writer of a name finds it taken and
//! leaves it alone. For `--cache-from` (`src=`) nothing is created: a missing directory is an
//! empty cache.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ocibuild_oci::store::ContentStore;
use ocibuild_oci::{Digest, HashingWriter, OciError};

use crate::error::CacheError;
use crate::{
    CacheBackend, Fetch, Incoming, MAX_INDEX_BYTES, PutOutcome, check_index_size, check_key,
};

/// A cache directory.
#[derive(Debug)]
pub struct LocalCache {
    dir: PathBuf,
    /// Blobs this instance found corrupt: `push_blob` replaces them.
    corrupt: Mutex<HashSet<Digest>>,
}

impl LocalCache {
    /// Open `dir`; for export, create its subdirectories.
    pub fn open(dir: &Path, for_export: bool) -> Result<Self, CacheError> {
        if for_export {
            for sub in ["blobs/sha256", "index", "tmp"] {
                let p = dir.join(sub);
                fs::create_dir_all(&p)
                    .map_err(CacheError::local("create the cache directory", &p))?;
            }
        }
        Ok(LocalCache {
            dir: dir.to_path_buf(),
            corrupt: Mutex::new(HashSet::new()),
        })
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.dir.join("blobs/sha256").join(d.hex())
    }

    pub fn index_path(&self, key: &str) -> PathBuf {
        self.dir.join("index").join(format!("{key}.json"))
    }

    fn tmp_file(&self) -> Result<tempfile::NamedTempFile, CacheError> {
        let tmp = self.dir.join("tmp");
        fs::create_dir_all(&tmp).map_err(CacheError::local("create", &tmp))?;
        tempfile::Builder::new()
            .prefix(".part-")
            .tempfile_in(&tmp)
            .map_err(CacheError::local("create a temp file in", &tmp))
    }

    fn known_corrupt(&self, d: &Digest) -> bool {
        self.corrupt.lock().map(|s| s.contains(d)).unwrap_or(false)
    }

    fn mark_corrupt(&self, d: &Digest, bad: bool) {
        if let Ok(mut s) = self.corrupt.lock() {
            if bad {
                s.insert(d.clone());
            } else {
                s.remove(d);
            }
        }
    }
}

/// Move a finished temp file to `dest` unless something is there. `Ok(false)`: it was taken.
fn persist_noclobber(tmp: tempfile::NamedTempFile, dest: &Path) -> Result<bool, CacheError> {
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).map_err(CacheError::local("create", parent))?;
    }
    match tmp.persist_noclobber(dest) {
        Ok(_) => Ok(true),
        Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(CacheError::Local {
            op: "move into place",
            path: dest.to_path_buf(),
            source: e.error,
        }),
    }
}

impl CacheBackend for LocalCache {
    fn describe(&self) -> String {
        format!("local cache {}", self.dir.display())
    }

    fn get_index(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        check_key(key)?;
        let p = self.index_path(key);
        let f = match File::open(&p) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(CacheError::local("open", &p)(e)),
        };
        let mut bytes = Vec::new();
        f.take(MAX_INDEX_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(CacheError::local("read", &p))?;
        if bytes.len() as u64 > MAX_INDEX_BYTES {
            tracing::warn!(path = %p.display(), "index object larger than {MAX_INDEX_BYTES} bytes: treated as a miss");
            return Ok(None);
        }
        Ok(Some(bytes))
    }

    fn put_index(&self, key: &str, bytes: &[u8]) -> Result<PutOutcome, CacheError> {
        ocibuild_oci::failpoint::hit("cache-export");
        check_key(key)?;
        check_index_size(key, bytes)?;
        let dest = self.index_path(key);
        if dest.exists() {
            return Ok(PutOutcome::AlreadyExists);
        }
        let mut tmp = self.tmp_file()?;
        tmp.write_all(bytes)
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(CacheError::local("write", tmp.path().to_path_buf()))?;
        Ok(if persist_noclobber(tmp, &dest)? {
            PutOutcome::Created
        } else {
            PutOutcome::AlreadyExists
        })
    }

    fn has_blob(&self, d: &Digest) -> Result<bool, CacheError> {
        Ok(self.blob_path(d).is_file())
    }

    fn fetch_blob(&self, d: &Digest, store: &ContentStore) -> Result<Fetch, CacheError> {
        if store.has(d) {
            store.touch(d);
            return Ok(Fetch::Present);
        }
        let p = self.blob_path(d);
        let mut f = match File::open(&p) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Fetch::Missing),
            Err(e) => return Err(CacheError::local("open", &p)(e)),
        };
        let mut inc = Incoming::new(store, d, format!("blob {d} from {}", self.describe()))?;
        inc.copy_from(&mut f)?
            .map_err(CacheError::local("read", &p))?;
        let r = inc.finish()?;
        self.mark_corrupt(d, matches!(r, Fetch::Corrupt { .. }));
        Ok(r)
    }

    fn push_blob(&self, d: &Digest, store: &ContentStore) -> Result<(), CacheError> {
        let dest = self.blob_path(d);
        let local_size = store.size(d);
        let replace =
            self.known_corrupt(d) || fs::metadata(&dest).is_ok_and(|m| Some(m.len()) != local_size);
        if dest.is_file() && !replace {
            return Ok(());
        }
        let mut src = store.open_blob(d)?;
        let tmp = self.tmp_file()?;
        let tmp_path = tmp.path().to_path_buf();
        let mut w = HashingWriter::new(tmp);
        io::copy(&mut src, &mut w).map_err(|e| {
            CacheError::Store(OciError::Stream {
                what: format!(
                    "copying blob {d} from the content store to {}",
                    tmp_path.display()
                ),
                source: e,
            })
        })?;
        let (tmp, got, _) = w.finish();
        if got != *d {
            return Err(CacheError::LocalBlobCorrupt {
                digest: d.to_string(),
                why: format!("its content hashes to {got}"),
            });
        }
        tmp.as_file()
            .sync_all()
            .map_err(CacheError::local("fsync", &tmp_path))?;
        if replace {
            // A verified copy replaces a corrupt one: same name, right bytes.
            tmp.persist(&dest).map_err(|e| CacheError::Local {
                op: "replace the corrupt blob",
                path: dest.clone(),
                source: e.error,
            })?;
            self.mark_corrupt(d, false);
        } else {
            persist_noclobber(tmp, &dest)?;
        }
        Ok(())
    }
}
