//! One limited tar reader for every tar that comes from outside: layers being extracted,
//! validated, checked, sized or catalogued, `oci-archive:` files, `.deb` members. It applies
//! [`Limits`] (uncompressed bytes, entries, name length, the headers and extension records
//! before one entry), each overridable by its `OCIBUILD_LAYER_MAX_*` variable.
//!
//! [`Archive`] wraps `tar::Archive` with the same shape (`entries()`, `entries_with_seek()`,
//! `into_inner()`), so a reader switches to it by changing one line. Going over a limit ends the
//! walk with an `io::Error` whose message is [`OciError::LimitExceeded`]'s (naming the archive,
//! the limit and its variable); [`Watch::exceeded`] gives the typed error.
//!
//! Without it, the `tar` crate reads a GNU long name or a PAX record whole into memory whatever
//! size its header declares (1 GiB from a small gzip member), and nothing bounds the bytes or
//! entries of a stream.

use std::cell::Cell;
use std::io::{self, Read, Seek, SeekFrom};
use std::rc::Rc;

use crate::error::OciError;
use crate::extract::Limits;

struct State {
    limits: Limits,
    subject: String,
    /// Bytes read so far, and the position in the stream (they differ once it seeks).
    total: Cell<u64>,
    pos: Cell<u64>,
    /// The data (and padding) of the entry last handed out: bytes read in this range are data,
    /// any other are headers and extension records.
    data: Cell<(u64, u64)>,
    /// Header and extension-record bytes read since the last entry was handed out.
    between: Cell<u64>,
    hit: Cell<Option<(&'static str, u64, &'static str)>>,
    /// The name-length limit's offending entry, for its message.
    hit_what: std::cell::RefCell<Option<String>>,
}

impl State {
    fn error(&self) -> Option<OciError> {
        self.hit
            .get()
            .map(|(what, limit, env)| OciError::LimitExceeded {
                subject: self.subject.clone(),
                what: self
                    .hit_what
                    .borrow()
                    .clone()
                    .unwrap_or_else(|| what.to_string()),
                limit,
                env,
            })
    }

    fn trip(&self, what: &'static str, limit: u64, env: &'static str) -> io::Error {
        self.hit.set(Some((what, limit, env)));
        match self.error() {
            Some(e) => io::Error::other(e),
            None => io::Error::other(what),
        }
    }
}

/// A tar stream under [`Limits`]: what [`Archive`]'s entries read from.
pub struct Guarded<R> {
    inner: R,
    state: Rc<State>,
}

impl<R: Read> Read for Guarded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let st = &self.state;
        if let Some(e) = st.error() {
            return Err(io::Error::other(e));
        }
        let n = self.inner.read(buf)?;
        let start = st.pos.get();
        let end = start + n as u64;
        st.pos.set(end);
        let total = st.total.get() + n as u64;
        st.total.set(total);
        if total > st.limits.max_bytes {
            return Err(st.trip(
                "its uncompressed size",
                st.limits.max_bytes,
                Limits::ENV_BYTES,
            ));
        }
        let (ds, de) = st.data.get();
        let in_data = end.min(de).saturating_sub(start.max(ds));
        let between = st.between.get() + (n as u64 - in_data);
        st.between.set(between);
        // + one read buffer: a buffered reader may pull the start of the next entry's data
        if between > st.limits.max_metadata + (64 << 10) {
            return Err(st.trip(
                "the headers and extension records (PAX, GNU long names) of one entry",
                st.limits.max_metadata,
                Limits::ENV_METADATA,
            ));
        }
        Ok(n)
    }
}

/// Seeking skips data without reading it (`entries_with_seek`): what is skipped is not counted.
impl<R: Seek> Seek for Guarded<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let p = self.inner.seek(pos)?;
        self.state.pos.set(p);
        Ok(p)
    }
}

/// Reports whether a walk stopped at a limit, after the fact.
#[derive(Clone)]
pub struct Watch(Rc<State>);

impl Watch {
    /// The limit the archive went over, if it did.
    pub fn exceeded(&self) -> Option<OciError> {
        self.0.error()
    }
}

/// `tar::Archive` under [`Limits`]. `subject` names the archive in errors ("the layer",
/// "member data.tar.xz of foo.deb").
pub struct Archive<R: Read> {
    inner: tar::Archive<Guarded<R>>,
    state: Rc<State>,
}

impl<R: Read> Archive<R> {
    pub fn new(r: R, limits: &Limits, subject: impl Into<String>) -> Self {
        let state = Rc::new(State {
            limits: *limits,
            subject: subject.into(),
            total: Cell::new(0),
            pos: Cell::new(0),
            data: Cell::new((0, 0)),
            between: Cell::new(0),
            hit: Cell::new(None),
            hit_what: Default::default(),
        });
        Archive {
            inner: tar::Archive::new(Guarded {
                inner: r,
                state: state.clone(),
            }),
            state,
        }
    }

    /// With the limits from the environment ([`Limits::from_env`]); an unparsable variable is
    /// an error naming it.
    pub fn from_env(r: R, subject: impl Into<String>) -> io::Result<Self> {
        let limits = Limits::from_env().map_err(io::Error::other)?;
        Ok(Self::new(r, &limits, subject))
    }

    pub fn watch(&self) -> Watch {
        Watch(self.state.clone())
    }

    pub fn entries(&mut self) -> io::Result<Entries<'_, R>> {
        let inner = self.inner.entries()?;
        Ok(Entries {
            inner,
            state: self.state.clone(),
            count: 0,
            done: false,
        })
    }

    /// The rest of the stream (what follows the end-of-archive marker), still counted against
    /// [`Limits::max_bytes`].
    pub fn into_inner(self) -> Guarded<R> {
        self.inner.into_inner()
    }
}

impl<R: Read + Seek> Archive<R> {
    pub fn entries_with_seek(&mut self) -> io::Result<Entries<'_, R>> {
        let inner = self.inner.entries_with_seek()?;
        Ok(Entries {
            inner,
            state: self.state.clone(),
            count: 0,
            done: false,
        })
    }
}

/// The entries of an [`Archive`], checked against the entry-count and name-length limits
/// before they are handed out.
pub struct Entries<'a, R: Read> {
    inner: tar::Entries<'a, Guarded<R>>,
    state: Rc<State>,
    count: u64,
    done: bool,
}

impl<'a, R: Read> Iterator for Entries<'a, R> {
    type Item = io::Result<tar::Entry<'a, Guarded<R>>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let st = &self.state;
        let entry = match self.inner.next()? {
            Ok(e) => e,
            Err(e) => {
                self.done = true;
                return Some(Err(match st.error() {
                    Some(limit) => io::Error::other(limit),
                    None => e,
                }));
            }
        };
        self.count += 1;
        let limits = st.limits;
        if self.count > limits.max_entries {
            self.done = true;
            return Some(Err(st.trip(
                "its number of entries",
                limits.max_entries,
                Limits::ENV_ENTRIES,
            )));
        }
        let name_len = entry.path_bytes().len();
        let link_len = entry.link_name_bytes().map_or(0, |l| l.len());
        if name_len.max(link_len) as u64 > limits.max_path {
            self.done = true;
            *st.hit_what.borrow_mut() = Some(format!(
                "the name or link target of entry `{}…` ({} bytes)",
                String::from_utf8_lossy(&entry.path_bytes())
                    .chars()
                    .take(64)
                    .collect::<String>(),
                name_len.max(link_len)
            ));
            return Some(Err(st.trip(
                "the name or link target of an entry",
                limits.max_path,
                Limits::ENV_PATH,
            )));
        }
        let start = entry.raw_file_position();
        let end = start.saturating_add(entry.size().div_ceil(512).saturating_mul(512));
        st.data.set((start, end));
        st.between.set(0);
        Some(Ok(entry))
    }
}

/// Whether an `io::Error` from an [`Archive`] is a limit (its message then names the variable).
pub fn is_limit(e: &io::Error) -> bool {
    e.get_ref()
        .and_then(|i| i.downcast_ref::<OciError>())
        .is_some_and(|o| matches!(o, OciError::LimitExceeded { .. }))
}
