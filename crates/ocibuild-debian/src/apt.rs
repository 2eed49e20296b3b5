//! An apt repository client: sources, the signed `InRelease` of each suite, `Packages` indexes
//! checked against the hashes `InRelease` lists, and `.deb` downloads checked against the
//! hashes `Packages` lists.
//!
//! Trust flows one way: the keyring verifies `InRelease` (primary keys and signing subkeys,
//! with expiry and revocation enforced here, since rpgp leaves policy to the caller), the
//! verified `InRelease` pins each `Packages` file by SHA256, and each `Packages` paragraph pins
//! its `.deb` by SHA256 and size. Everything fetched is cached: `InRelease` by URL, the rest by
//! content hash, so a second run works with `offline` set.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pgp::composed::{CleartextSignedMessage, Deserializable, SignedPublicKey, SignedPublicSubKey};
use pgp::packet::{KeyFlags, Signature, SignatureType};
use pgp::types::{KeyDetails, Tag};
use sha2::{Digest, Sha256};

use crate::control::{Paragraph, parse};
use crate::error::{DebianError, Result};

// ---------------------------------------------------------------------------------------------
// Releases
// ---------------------------------------------------------------------------------------------

/// The Debian release an image is built from. Chosen, never inherited from the host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Release {
    /// Debian 12.
    Bookworm,
    /// Debian 13 (the default).
    #[default]
    Trixie,
}

impl Release {
    pub const ALL: [Release; 2] = [Release::Bookworm, Release::Trixie];

    /// The codename, which is also the suite name (`trixie`).
    pub fn codename(self) -> &'static str {
        match self {
            Release::Bookworm => "bookworm",
            Release::Trixie => "trixie",
        }
    }

    /// The major version number (`13`).
    pub fn version(self) -> u32 {
        match self {
            Release::Bookworm => 12,
            Release::Trixie => 13,
        }
    }
}

impl FromStr for Release {
    type Err = DebianError;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "bookworm" | "12" | "debian12" | "debian-12" => Ok(Release::Bookworm),
            "trixie" | "13" | "debian13" | "debian-13" => Ok(Release::Trixie),
            other => Err(DebianError::Invalid {
                what: format!("Debian release {other:?}"),
                detail: format!(
                    "unknown;{} use bookworm (12) or trixie (13)",
                    ocibuild_oci::suggest::nearest(other, ["bookworm", "trixie"])
                        .map(|n| format!(" did you mean `{n}`?"))
                        .unwrap_or_default()
                ),
            }),
        }
    }
}

impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.codename())
    }
}

// ---------------------------------------------------------------------------------------------
// Sources
// ---------------------------------------------------------------------------------------------

/// One repository: a URI with its suites and components (one `deb` line, or one URI of a
/// deb822 stanza).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// `http(s)://…`, `file:///…`, or a local directory path.
    pub uri: String,
    pub suites: Vec<String>,
    pub components: Vec<String>,
    /// The keyring file from `Signed-By` / `[signed-by=…]`, when one was given as a path.
    pub signed_by: Option<PathBuf>,
}

impl Source {
    /// The local directory of a `file://` or path source; `None` for network sources.
    pub fn local_dir(&self) -> Option<PathBuf> {
        local_path(&self.uri)
    }
}

/// The local path of a `file://` URL or a plain path; `None` for network URLs.
fn local_path(uri: &str) -> Option<PathBuf> {
    if let Some(rest) = uri.strip_prefix("file://") {
        // file:///abs/path → /abs/path; file://localhost/abs → /abs
        let rest = rest.strip_prefix("localhost").unwrap_or(rest);
        return Some(PathBuf::from(rest));
    }
    if uri.contains("://") {
        None
    } else {
        Some(PathBuf::from(uri))
    }
}

fn join_url(base: &str, rel: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        rel.trim_start_matches('/')
    )
}

fn words(v: Option<&str>) -> Vec<String> {
    v.map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// A `Signed-By` value as a keyring path. Fingerprints and inline keys are not paths (inline
/// keys are not supported: such a source falls back to the default keyring).
fn signed_by_path(v: &str) -> Option<PathBuf> {
    if v.contains("BEGIN PGP") {
        tracing::warn!("inline Signed-By keys are not supported; using the default keyring");
        return None;
    }
    v.split(|c: char| c.is_whitespace() || c == ',')
        .find(|t| t.starts_with('/'))
        .map(PathBuf::from)
}

/// Parse deb822 `.sources` stanzas: `Types` must include `deb`; `Enabled: no` is skipped; each
/// URI of a stanza becomes one [`Source`].
pub fn parse_sources_deb822(text: &str) -> Vec<Source> {
    let mut out = Vec::new();
    for p in parse(text) {
        if !words(p.get("Types")).iter().any(|t| t == "deb") {
            continue;
        }
        if p.get("Enabled")
            .is_some_and(|e| e.trim().eq_ignore_ascii_case("no"))
        {
            continue;
        }
        let suites = words(p.get("Suites"));
        let components = words(p.get("Components"));
        let signed_by = p.get("Signed-By").and_then(signed_by_path);
        for uri in words(p.get("URIs")) {
            out.push(Source {
                uri,
                suites: suites.clone(),
                components: components.clone(),
                signed_by: signed_by.clone(),
            });
        }
    }
    out
}

/// One one-line source (`deb [opts] URI SUITE COMPONENT…`); `None` for `deb-src`, comments and
/// malformed lines.
fn parse_one_line(line: &str) -> Option<Source> {
    let line = line.split('#').next().unwrap_or("").trim();
    let rest = line.strip_prefix("deb")?;
    if !rest.starts_with(char::is_whitespace) {
        return None; // deb-src
    }
    let mut rest = rest.trim_start();
    let mut signed_by = None;
    if let Some(opts) = rest.strip_prefix('[') {
        let (opts, after) = opts.split_once(']')?;
        for opt in opts.split_whitespace() {
            if let Some((k, v)) = opt.split_once('=')
                && k.eq_ignore_ascii_case("signed-by")
            {
                signed_by = signed_by_path(v);
            }
        }
        rest = after.trim_start();
    }
    let mut it = rest.split_whitespace();
    let uri = it.next()?.to_string();
    let suite = it.next()?.to_string();
    Some(Source {
        uri,
        suites: vec![suite],
        components: it.map(str::to_string).collect(),
        signed_by,
    })
}

/// Parse a one-line `sources.list`: `deb` lines only, with `[signed-by=…]` options.
pub fn parse_sources_list(text: &str) -> Vec<Source> {
    text.lines().filter_map(parse_one_line).collect()
}

/// Parse `--apt-source "URI SUITE COMPONENT…"` (a leading `deb` and `[options]` are allowed).
/// The URI may be a local mirror directory or `file://` URL.
pub fn parse_apt_source_flag(s: &str) -> Result<Source> {
    let t = s.trim();
    let line = if t.starts_with("deb ") || t.starts_with("deb\t") {
        t.to_string()
    } else {
        format!("deb {t}")
    };
    let invalid = |detail: &str| DebianError::Invalid {
        what: format!("--apt-source {s:?}"),
        detail: detail.to_string(),
    };
    let src = parse_one_line(&line).ok_or_else(|| invalid("expected \"URI SUITE COMPONENT…\""))?;
    if src.components.is_empty() && !src.suites.iter().any(|x| x.ends_with('/')) {
        return Err(invalid("no component given (e.g. \"URI trixie main\")"));
    }
    Ok(src)
}

/// The apt sources under an apt configuration directory (normally `/etc/apt`): deb822
/// `sources.list.d/*.sources` first, then `sources.list` and `sources.list.d/*.list`.
pub fn system_sources_in(etc_apt: &Path) -> Result<Vec<Source>> {
    let d = etc_apt.join("sources.list.d");
    let mut sources_files = Vec::new();
    let mut list_files = Vec::new();
    if let Ok(rd) = fs::read_dir(&d) {
        for e in rd.flatten() {
            let p = e.path();
            match p.extension().and_then(|x| x.to_str()) {
                Some("sources") => sources_files.push(p),
                Some("list") => list_files.push(p),
                _ => {}
            }
        }
    }
    sources_files.sort();
    list_files.sort();
    let mut out = Vec::new();
    for p in &sources_files {
        let text = fs::read_to_string(p).map_err(DebianError::io(p.display().to_string()))?;
        out.extend(parse_sources_deb822(&text));
    }
    let main_list = etc_apt.join("sources.list");
    for p in std::iter::once(&main_list).chain(list_files.iter()) {
        match fs::read_to_string(p) {
            Ok(text) => out.extend(parse_sources_list(&text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(DebianError::Io {
                    what: p.display().to_string(),
                    source: e,
                });
            }
        }
    }
    Ok(out)
}

/// The machine's apt sources (deb822 `.sources` first, then one-line `sources.list`), `deb`
/// lines only. An error when there are none.
pub fn system_sources() -> Result<Vec<Source>> {
    let dir = Path::new("/etc/apt");
    let out = system_sources_in(dir)?;
    if out.is_empty() {
        return Err(DebianError::Invalid {
            what: "apt sources in /etc/apt".into(),
            detail: "no `deb` source configured; pass --apt-source \"URI SUITE COMPONENT…\"".into(),
        });
    }
    Ok(out)
}

fn is_security_suite(s: &str) -> bool {
    s.ends_with("-security") || s.ends_with("/updates")
}

/// Sources for `release` built from the machine's mirrors: the main archive URI gets `<rel>` and
/// `<rel>-updates` (and `<rel>-backports` when `backports`); the security URI (the one whose
/// suites end in `-security`) gets `<rel>-security`. When no security source is configured and
/// the main URI ends in `/debian`, the security archive is taken beside it (`/debian-security`).
pub fn sources_for_release(
    system: &[Source],
    release: Release,
    backports: bool,
) -> Result<Vec<Source>> {
    let rel = release.codename();
    let main = system
        .iter()
        .find(|s| s.suites.iter().any(|x| !is_security_suite(x)))
        .ok_or_else(|| DebianError::Invalid {
            what: "apt sources".into(),
            detail: "no main archive source (only security suites configured)".into(),
        })?;
    let components = if main.components.is_empty() {
        vec!["main".to_string()]
    } else {
        main.components.clone()
    };
    let mut suites = vec![rel.to_string(), format!("{rel}-updates")];
    if backports {
        suites.push(format!("{rel}-backports"));
    }
    let mut out = vec![Source {
        uri: main.uri.clone(),
        suites,
        components: components.clone(),
        signed_by: main.signed_by.clone(),
    }];
    let security = system
        .iter()
        .find(|s| s.suites.iter().any(|x| is_security_suite(x)));
    match security {
        Some(sec) => out.push(Source {
            uri: sec.uri.clone(),
            suites: vec![format!("{rel}-security")],
            components: if sec.components.is_empty() {
                components
            } else {
                sec.components.clone()
            },
            signed_by: sec.signed_by.clone(),
        }),
        None => {
            let base = main.uri.trim_end_matches('/');
            if base.ends_with("/debian") {
                out.push(Source {
                    uri: format!("{base}-security"),
                    suites: vec![format!("{rel}-security")],
                    components,
                    signed_by: main.signed_by.clone(),
                });
            } else {
                tracing::warn!(uri = %main.uri, "no security source configured and none derivable; security suite skipped");
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Keyring and signature verification
// ---------------------------------------------------------------------------------------------

/// The Debian archive keyring, and the per-key fragments apt also trusts.
pub const DEFAULT_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";
const TRUSTED_GPG_D: &str = "/etc/apt/trusted.gpg.d";

/// OpenPGP certificates trusted to sign `InRelease` files.
#[derive(Clone, Debug, Default)]
pub struct Keyring {
    keys: Vec<SignedPublicKey>,
}

fn fpr_hex(k: &impl KeyDetails) -> String {
    hex::encode_upper(k.fingerprint().as_bytes())
}

impl Keyring {
    /// Load binary (`.gpg`, `.pgp`: several certificates concatenated) and armored (`.asc`)
    /// keyrings; a directory loads its `*.gpg`, `*.pgp` and `*.asc` files. Certificates that do
    /// not parse are skipped with a warning; an error when nothing usable was loaded.
    pub fn load(paths: &[PathBuf]) -> Result<Keyring> {
        let mut files = Vec::new();
        for p in paths {
            if p.is_dir() {
                let mut inner: Vec<PathBuf> = fs::read_dir(p)
                    .map_err(DebianError::io(p.display().to_string()))?
                    .flatten()
                    .map(|e| e.path())
                    .filter(|f| {
                        matches!(
                            f.extension().and_then(|x| x.to_str()),
                            Some("gpg" | "pgp" | "asc")
                        )
                    })
                    .collect();
                inner.sort();
                files.extend(inner);
            } else {
                files.push(p.clone());
            }
        }
        let mut keys = Vec::new();
        for f in &files {
            let bytes = fs::read(f).map_err(DebianError::io(format!("keyring {}", f.display())))?;
            let armored = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'-');
            let parsed = if armored {
                SignedPublicKey::from_armor_many(std::io::Cursor::new(bytes)).map(|(it, _)| it)
            } else {
                SignedPublicKey::from_bytes_many(std::io::Cursor::new(bytes))
            };
            let parsed = match parsed {
                Ok(it) => it,
                Err(e) => {
                    tracing::warn!(file = %f.display(), error = %e, "unreadable keyring skipped");
                    continue;
                }
            };
            for k in parsed {
                match k {
                    Ok(k) => keys.push(k),
                    Err(e) => {
                        tracing::warn!(file = %f.display(), error = %e, "certificate skipped")
                    }
                }
            }
        }
        if keys.is_empty() {
            return Err(DebianError::Invalid {
                what: format!(
                    "keyring {}",
                    files
                        .iter()
                        .map(|f| f.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                detail:
                    "no OpenPGP certificate could be loaded (is debian-archive-keyring installed?)"
                        .into(),
            });
        }
        Ok(Keyring { keys })
    }

    /// The default keyring files: the Debian archive keyring and `/etc/apt/trusted.gpg.d/*`.
    pub fn default_paths() -> Vec<PathBuf> {
        let mut v = Vec::new();
        for p in [
            DEFAULT_KEYRING,
            "/usr/share/keyrings/debian-archive-keyring.pgp",
        ] {
            if Path::new(p).exists() {
                v.push(PathBuf::from(p));
            }
        }
        if Path::new(TRUSTED_GPG_D).is_dir() {
            v.push(PathBuf::from(TRUSTED_GPG_D));
        }
        v
    }

    /// The keyring for a source: its `Signed-By` file, else the default paths.
    pub fn for_source(src: &Source) -> Result<Keyring> {
        match &src.signed_by {
            Some(p) => Keyring::load(std::slice::from_ref(p)),
            None => Keyring::load(&Keyring::default_paths()),
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Primary key fingerprints (upper-case hex).
    pub fn fingerprints(&self) -> Vec<String> {
        self.keys.iter().map(|k| fpr_hex(&k.primary_key)).collect()
    }

    /// Verify a cleartext-signed document (an `InRelease`) at time `now` (Unix seconds) and
    /// return the signed text (LF line endings) and the fingerprint of the key that signed it.
    ///
    /// At least one signature must verify against a primary key or a signing subkey that is
    /// neither expired nor revoked at `now`; a signature by a known key that does not verify
    /// refuses the whole document (as apt does for BADSIG). Signatures by unknown keys are
    /// ignored.
    pub fn verify_cleartext(&self, what: &str, text: &str, now: u64) -> Result<(String, String)> {
        // The same file checked against the same keys again in this process, less than a
        // minute later (a build locks its toolchain and runtime bases over the same suites):
        // the verdict it had then. Only good verdicts are kept; the key is the keys'
        // fingerprints, the file's name and its bytes.
        type Memo = std::collections::HashMap<[u8; 32], (u64, (String, String))>;
        static VERIFIED: std::sync::OnceLock<std::sync::Mutex<Memo>> = std::sync::OnceLock::new();
        let memo_key: [u8; 32] = {
            let mut h = Sha256::new();
            for f in self.fingerprints() {
                h.update(f.as_bytes());
                h.update(b"\0");
            }
            h.update(what.as_bytes());
            h.update(b"\0");
            h.update(text.as_bytes());
            h.finalize().into()
        };
        let memo = VERIFIED.get_or_init(Default::default);
        let earlier = memo.lock().ok().and_then(|m| m.get(&memo_key).cloned());
        if let Some((then, v)) = earlier
            && then <= now
            && now - then < 60
        {
            return Ok(v);
        }
        let verdict = self.verify_cleartext_now(what, text, now)?;
        if let Ok(mut m) = memo.lock() {
            m.insert(memo_key, (now, verdict.clone()));
        }
        Ok(verdict)
    }

    fn verify_cleartext_now(&self, what: &str, text: &str, now: u64) -> Result<(String, String)> {
        let sig_err = |detail: String| DebianError::Signature {
            what: what.to_string(),
            detail,
        };
        let (msg, _) = CleartextSignedMessage::from_string(text)
            .map_err(|e| sig_err(format!("not a cleartext-signed OpenPGP message: {e}")))?;
        let signed = msg.signed_text();
        let mut good = None;
        let mut problems = Vec::new();
        for sig in msg.signatures() {
            if !matches!(sig.typ(), Some(SignatureType::Text | SignatureType::Binary)) {
                problems.push(format!("signature of type {:?} ignored", sig.typ()));
                continue;
            }
            match self.check_signature(sig, signed.as_bytes(), now) {
                Verdict::Good(fpr) => good = good.or(Some(fpr)),
                Verdict::Bad(d) => return Err(sig_err(d)),
                Verdict::Refused(d) => problems.push(d),
            }
        }
        match good {
            Some(fpr) => Ok((signed.replace("\r\n", "\n"), fpr)),
            None if problems.is_empty() => Err(sig_err("no signature".into())),
            None => Err(sig_err(problems.join("; "))),
        }
    }

    fn check_signature(&self, sig: &Signature, data: &[u8], now: u64) -> Verdict {
        let ids: Vec<String> = sig
            .issuer_key_id()
            .iter()
            .map(|k| hex::encode_upper(k.as_ref()))
            .collect();
        let fprs: Vec<String> = sig
            .issuer_fingerprint()
            .iter()
            .map(|f| hex::encode_upper(f.as_bytes()))
            .collect();
        let issued_by = |k: &dyn KeyDetails| {
            let (id, fp) = (
                hex::encode_upper(k.legacy_key_id().as_ref()),
                hex::encode_upper(k.fingerprint().as_bytes()),
            );
            (ids.is_empty() && fprs.is_empty()) || ids.contains(&id) || fprs.contains(&fp)
        };
        let created = sig.created().map(|t| u64::from(t.as_secs()));
        if let (Some(c), Some(exp)) = (created, sig.signature_expiration_time())
            && exp.as_secs() > 0
            && c + u64::from(exp.as_secs()) <= now
        {
            return Verdict::Refused(format!(
                "signature expired at {}",
                fmt_time(c + u64::from(exp.as_secs()))
            ));
        }
        for cert in &self.keys {
            let primary_fpr = fpr_hex(&cert.primary_key);
            if issued_by(&cert.primary_key) {
                match sig.verify(&cert.primary_key, data) {
                    Ok(()) => {
                        return match primary_state(cert, now).and_then(|selfsig| {
                            let flags = selfsig.key_flags();
                            if flags != KeyFlags::default() && !flags.sign() {
                                Err(format!("key {primary_fpr} is not signing-capable"))
                            } else {
                                check_created(
                                    created,
                                    cert.primary_key.created_at().as_secs(),
                                    &primary_fpr,
                                )
                            }
                        }) {
                            Ok(()) => Verdict::Good(primary_fpr),
                            Err(e) => Verdict::Refused(e),
                        };
                    }
                    Err(e) if !(ids.is_empty() && fprs.is_empty()) => {
                        tracing::debug!(error = %e, "signature check failed");
                        return Verdict::Bad(format!(
                            "BAD signature by key {primary_fpr}{TAMPERED}"
                        ));
                    }
                    Err(_) => {}
                }
            }
            for sub in &cert.public_subkeys {
                if !issued_by(&sub.key) {
                    continue;
                }
                let sub_fpr = fpr_hex(&sub.key);
                match sig.verify(&sub.key, data) {
                    Ok(()) => {
                        return match primary_state(cert, now)
                            .and_then(|_| subkey_state(cert, sub, now))
                            .and_then(|()| {
                                check_created(created, sub.key.created_at().as_secs(), &sub_fpr)
                            }) {
                            Ok(()) => Verdict::Good(sub_fpr),
                            Err(e) => Verdict::Refused(format!("{e} (subkey of {primary_fpr})")),
                        };
                    }
                    Err(e) if !(ids.is_empty() && fprs.is_empty()) => {
                        tracing::debug!(error = %e, "signature check failed");
                        return Verdict::Bad(format!(
                            "BAD signature by subkey {sub_fpr} of {primary_fpr}{TAMPERED}"
                        ));
                    }
                    Err(_) => {}
                }
            }
        }
        let issuer = fprs
            .first()
            .or(ids.first())
            .cloned()
            .unwrap_or_else(|| "an unnamed key".into());
        Verdict::Refused(format!("signed by {issuer}, which is not in the keyring"))
    }
}

const TAMPERED: &str = " (the signed text was changed after signing, or the signature is corrupt)";

enum Verdict {
    Good(String),
    /// A known key, but the signature does not match the data: tampering.
    Bad(String),
    /// Not usable (unknown, expired or revoked key, expired signature).
    Refused(String),
}

fn check_created(
    sig_created: Option<u64>,
    key_created: u32,
    fpr: &str,
) -> std::result::Result<(), String> {
    match sig_created {
        Some(c) if c < u64::from(key_created) => Err(format!("signature predates key {fpr}")),
        _ => Ok(()),
    }
}

/// The primary key's validity at `now`: not revoked, has a valid self-signature, not expired.
/// Returns the newest valid self-signature (for its key flags).
fn primary_state(cert: &SignedPublicKey, now: u64) -> std::result::Result<&Signature, String> {
    let pk = &cert.primary_key;
    let fpr = fpr_hex(pk);
    if cert
        .details
        .revocation_signatures
        .iter()
        .any(|r| r.verify_key(pk).is_ok())
    {
        return Err(format!("key {fpr} is revoked"));
    }
    let user_sigs = cert.details.users.iter().flat_map(|u| {
        u.signatures.iter().filter(move |s| {
            s.typ() != Some(SignatureType::CertRevocation)
                && s.verify_certification(pk, Tag::UserId, &u.id).is_ok()
        })
    });
    let direct_sigs = cert
        .details
        .direct_signatures
        .iter()
        .filter(|s| s.verify_key(pk).is_ok());
    let best = user_sigs
        .chain(direct_sigs)
        .max_by_key(|s| s.created().map(|t| t.as_secs()).unwrap_or(0))
        .ok_or_else(|| format!("key {fpr} has no valid self-signature"))?;
    if let Some(d) = best.key_expiration_time()
        && d.as_secs() > 0
    {
        let exp = u64::from(pk.created_at().as_secs()) + u64::from(d.as_secs());
        if exp <= now {
            return Err(format!("key {fpr} expired on {}", fmt_time(exp)));
        }
    }
    Ok(best)
}

/// A subkey's validity at `now`: bound by a valid binding signature that marks it
/// signing-capable with a valid back-signature, not revoked, not expired.
fn subkey_state(
    cert: &SignedPublicKey,
    sub: &SignedPublicSubKey,
    now: u64,
) -> std::result::Result<(), String> {
    let pk = &cert.primary_key;
    let fpr = fpr_hex(&sub.key);
    if sub.signatures.iter().any(|s| {
        s.typ() == Some(SignatureType::SubkeyRevocation)
            && s.verify_subkey_binding(pk, &sub.key).is_ok()
    }) {
        return Err(format!("subkey {fpr} is revoked"));
    }
    let binding = sub
        .signatures
        .iter()
        .filter(|s| {
            s.typ() == Some(SignatureType::SubkeyBinding)
                && s.verify_subkey_binding(pk, &sub.key).is_ok()
        })
        .max_by_key(|s| s.created().map(|t| t.as_secs()).unwrap_or(0))
        .ok_or_else(|| format!("subkey {fpr} has no valid binding signature"))?;
    if !binding.key_flags().sign() {
        return Err(format!("subkey {fpr} is not signing-capable"));
    }
    match binding.embedded_signature() {
        Some(back) if back.verify_primary_key_binding(&sub.key, pk).is_ok() => {}
        _ => return Err(format!("signing subkey {fpr} has no valid back-signature")),
    }
    if let Some(d) = binding.key_expiration_time()
        && d.as_secs() > 0
    {
        let exp = u64::from(sub.key.created_at().as_secs()) + u64::from(d.as_secs());
        if exp <= now {
            return Err(format!("subkey {fpr} expired on {}", fmt_time(exp)));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Dates (RFC 2822 as used by Release files)
// ---------------------------------------------------------------------------------------------

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parse a Release-file date (`Sat, 15 Nov 2025 09:08:50 UTC`, also numeric zones) into Unix
/// seconds.
pub fn parse_release_date(s: &str) -> Option<u64> {
    let s = s.trim();
    let s = match s.split_once(',') {
        Some((_, rest)) => rest.trim(),
        None => s,
    };
    let mut it = s.split_whitespace();
    let day: u32 = it.next()?.parse().ok()?;
    let mon = it.next()?.to_ascii_lowercase();
    let month = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ]
    .iter()
    .position(|m| mon.starts_with(m))? as u32
        + 1;
    let year: i64 = it.next()?.parse().ok()?;
    let mut hms = it.next()?.split(':');
    let h: i64 = hms.next()?.parse().ok()?;
    let mi: i64 = hms.next()?.parse().ok()?;
    let se: i64 = hms.next().unwrap_or("0").parse().ok()?;
    let offset = match it.next() {
        None | Some("UTC" | "GMT" | "Z" | "UT") => 0,
        Some(z) if (z.starts_with('+') || z.starts_with('-')) && z.len() == 5 => {
            let n: i64 = z[1..].parse().ok()?;
            let secs = (n / 100) * 3600 + (n % 100) * 60;
            if z.starts_with('-') { -secs } else { secs }
        }
        Some(_) => return None,
    };
    if !(1..=31).contains(&day) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let t = days_from_civil(year, month, day) * 86_400 + h * 3600 + mi * 60 + se - offset;
    u64::try_from(t).ok()
}

fn fmt_time(secs: u64) -> String {
    // civil_from_days
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Suite index
// ---------------------------------------------------------------------------------------------

/// A verified `InRelease`.
#[derive(Clone, Debug)]
pub struct SuiteIndex {
    pub suite: String,
    /// The repository URI the suite was fetched from.
    pub uri: String,
    /// The signed content of `InRelease`.
    pub release: Paragraph,
    pub date: Option<String>,
    pub valid_until: Option<String>,
    /// Path under `dists/<suite>/` → (sha256, size), from the `SHA256` field.
    pub files: BTreeMap<String, (String, u64)>,
    /// Fingerprint of the (sub)key whose signature was accepted.
    pub signer: String,
}

impl SuiteIndex {
    /// Build from the verified (signed) text of an `InRelease`.
    fn from_signed_text(uri: &str, suite: &str, text: &str, signer: String) -> Result<SuiteIndex> {
        let what = format!("{} InRelease", join_url(uri, &format!("dists/{suite}")));
        let release = parse(text)
            .into_iter()
            .next()
            .ok_or_else(|| DebianError::Parse {
                what: what.clone(),
                detail: "empty Release paragraph".into(),
            })?;
        let matches = |f: &str| release.get(f).is_some_and(|v| v.trim() == suite);
        if !matches("Suite") && !matches("Codename") {
            return Err(DebianError::Invalid {
                what,
                detail: format!(
                    "is for Suite {:?} / Codename {:?}, not {suite:?} (a mirror serving the wrong suite?)",
                    release.get("Suite").unwrap_or(""),
                    release.get("Codename").unwrap_or("")
                ),
            });
        }
        let mut files = BTreeMap::new();
        for line in release.get("SHA256").unwrap_or("").lines() {
            let mut it = line.split_whitespace();
            if let (Some(h), Some(size), Some(name)) = (it.next(), it.next(), it.next()) {
                let size = size.parse::<u64>().map_err(|e| DebianError::Parse {
                    what: what.clone(),
                    detail: format!("SHA256 line {line:?}: {e}"),
                })?;
                files.insert(name.to_string(), (h.to_ascii_lowercase(), size));
            }
        }
        if files.is_empty() {
            return Err(DebianError::Parse {
                what,
                detail: "no SHA256 file list".into(),
            });
        }
        Ok(SuiteIndex {
            suite: suite.to_string(),
            uri: uri.to_string(),
            date: release.get("Date").map(str::to_string),
            valid_until: release.get("Valid-Until").map(str::to_string),
            release,
            files,
            signer,
        })
    }

    fn by_hash(&self) -> bool {
        self.release
            .get("Acquire-By-Hash")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("yes"))
    }

    /// The URL of a file listed in this suite (`main/binary-amd64/Packages.xz`).
    pub fn file_url(&self, name: &str) -> String {
        join_url(&self.uri, &format!("dists/{}/{name}", self.suite))
    }
}

// ---------------------------------------------------------------------------------------------
// Repository client
// ---------------------------------------------------------------------------------------------

/// An HTTP(S)/local repository client with a cache directory.
#[derive(Debug)]
pub struct Repo {
    client: Option<reqwest::blocking::Client>,
    cache: PathBuf,
    offline: bool,
    check_valid_until: bool,
    clock: Option<u64>,
    /// Reuse a cached `InRelease` younger than this instead of fetching it again.
    max_age: Option<Duration>,
}

fn hex_sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Write `data` to `dest` atomically (temp file in the same directory, then rename).
fn write_atomic(dest: &Path, data: &[u8]) -> Result<()> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(DebianError::io(dir.display().to_string()))?;
    let mut tmp =
        tempfile::NamedTempFile::new_in(dir).map_err(DebianError::io(dir.display().to_string()))?;
    tmp.write_all(data)
        .map_err(DebianError::io(dest.display().to_string()))?;
    tmp.persist(dest).map_err(|e| DebianError::Io {
        what: dest.display().to_string(),
        source: e.error,
    })?;
    Ok(())
}

impl Repo {
    /// A client caching under `cache_dir`. With `offline`, nothing is fetched from the
    /// network: only the cache and local (`file://`/path) sources are used.
    pub fn new(cache_dir: &Path, offline: bool) -> Result<Repo> {
        for sub in ["inrelease", "sha256"] {
            let d = cache_dir.join(sub);
            fs::create_dir_all(&d)
                .map_err(DebianError::io(format!("cache directory {}", d.display())))?;
        }
        let client = if offline {
            None
        } else {
            Some(
                reqwest::blocking::Client::builder()
                    .user_agent(concat!("ocibuild/", env!("CARGO_PKG_VERSION")))
                    .connect_timeout(Duration::from_secs(30))
                    .timeout(Duration::from_secs(600))
                    .build()
                    .map_err(|e| DebianError::Fetch {
                        url: String::new(),
                        detail: format!("cannot create the HTTP client: {e}"),
                        hint: None,
                    })?,
            )
        };
        Ok(Repo {
            client,
            cache: cache_dir.to_path_buf(),
            offline,
            check_valid_until: true,
            clock: None,
            max_age: None,
        })
    }

    /// Reuse a cached `InRelease` younger than `age` (still signature- and expiry-checked)
    /// instead of fetching it again: what `apt-get update` intervals do; `None` always fetches.
    pub fn set_max_age(&mut self, age: Option<Duration>) {
        self.max_age = age;
    }

    /// Whether an expired `Valid-Until` refuses a suite (default: yes).
    pub fn set_check_valid_until(&mut self, check: bool) {
        self.check_valid_until = check;
    }

    /// Check key expiry and `Valid-Until` at this time (Unix seconds) instead of now.
    pub fn set_clock(&mut self, unix_secs: Option<u64>) {
        self.clock = unix_secs;
    }

    pub fn offline(&self) -> bool {
        self.offline
    }

    pub fn cache_dir(&self) -> &Path {
        &self.cache
    }

    /// The content-addressed cache path of a sha256.
    pub fn cache_path(&self, sha256: &str) -> PathBuf {
        self.cache.join("sha256").join(sha256.to_ascii_lowercase())
    }

    fn offline_error(&self, url: &str, what: &str) -> DebianError {
        DebianError::Fetch {
            url: url.to_string(),
            detail: format!(
                "{what} is not in the cache {} and the build is offline",
                self.cache.display()
            ),
            hint: Some("run once without --offline to fill the cache".into()),
        }
    }

    fn client(&self, url: &str) -> Result<&reqwest::blocking::Client> {
        self.client
            .as_ref()
            .ok_or_else(|| self.offline_error(url, "it"))
    }

    fn response(&self, url: &str) -> Result<reqwest::blocking::Response> {
        let resp = self
            .client(url)?
            .get(url)
            .send()
            .map_err(|e| DebianError::Fetch {
                url: url.to_string(),
                detail: format!("request failed: {e}"),
                hint: Some(
                    "check the network, the proxy (HTTP(S)_PROXY) and the apt sources".into(),
                ),
            })?;
        let status = resp.status();
        if !status.is_success() {
            return Err(DebianError::Fetch {
                url: url.to_string(),
                detail: format!("HTTP {status}"),
                hint: (status == reqwest::StatusCode::NOT_FOUND).then(|| {
                    "the mirror does not have it (wrong suite, component or architecture?)".into()
                }),
            });
        }
        Ok(resp)
    }

    /// Fetch a URL (`http(s)://`, `file://` or a local path) into memory. Network URLs fail
    /// when offline.
    pub fn get(&self, url: &str) -> Result<Vec<u8>> {
        if let Some(p) = local_path(url) {
            return fs::read(&p).map_err(|e| DebianError::Fetch {
                url: url.to_string(),
                detail: format!("cannot read {}: {e}", p.display()),
                hint: None,
            });
        }
        let mut resp = self.response(url)?;
        let mut buf = Vec::new();
        resp.read_to_end(&mut buf).map_err(|e| DebianError::Fetch {
            url: url.to_string(),
            detail: format!("download interrupted: {e}"),
            hint: None,
        })?;
        Ok(buf)
    }

    fn is_not_found(e: &DebianError) -> bool {
        match e {
            DebianError::Fetch { detail, .. } => {
                detail.contains("404") || detail.contains("No such file")
            }
            _ => false,
        }
    }

    /// Fetch `dists/<suite>/InRelease`, verify its signature against `keyring` (and
    /// `Valid-Until`), and parse it. Network sources are cached by URL; offline uses the cache.
    pub fn fetch_suite(&self, src: &Source, suite: &str, keyring: &Keyring) -> Result<SuiteIndex> {
        let url = join_url(&src.uri, &format!("dists/{suite}/InRelease"));
        let cached = self
            .cache
            .join("inrelease")
            .join(hex_sha256(url.as_bytes()));
        let local = local_path(&src.uri).is_some();
        let fresh = self.max_age.is_some_and(|age| {
            fs::metadata(&cached)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|e| e < age)
        });
        let (bytes, from_network) = if local {
            (self.get(&url)?, false)
        } else if fresh && let Ok(b) = fs::read(&cached) {
            (b, false)
        } else if self.offline {
            match fs::read(&cached) {
                Ok(b) => (b, false),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(self.offline_error(&url, "InRelease"));
                }
                Err(e) => {
                    return Err(DebianError::Io {
                        what: cached.display().to_string(),
                        source: e,
                    });
                }
            }
        } else {
            (self.get(&url)?, true)
        };
        let text = String::from_utf8(bytes).map_err(|e| DebianError::Parse {
            what: url.clone(),
            detail: format!("not UTF-8: {e}"),
        })?;
        let now = self.clock.unwrap_or_else(unix_now);
        let (signed, signer) = keyring.verify_cleartext(&url, &text, now)?;
        let idx = SuiteIndex::from_signed_text(&src.uri, suite, &signed, signer)?;
        if self.check_valid_until
            && let Some(v) = &idx.valid_until
        {
            let until = parse_release_date(v).ok_or_else(|| DebianError::Parse {
                what: url.clone(),
                detail: format!("unreadable Valid-Until {v:?}"),
            })?;
            if until <= now {
                return Err(DebianError::Invalid {
                    what: url.clone(),
                    detail: format!(
                        "expired: Valid-Until {v} is in the past (a stale mirror or a replayed file){}",
                        if from_network {
                            ""
                        } else {
                            "; refresh the cache online"
                        }
                    ),
                });
            }
        }
        if from_network {
            write_atomic(&cached, text.as_bytes())?;
        }
        tracing::debug!(%url, signer = %idx.signer, "InRelease verified");
        Ok(idx)
    }

    /// Fetch a file listed in a suite's `InRelease`, checking its size and SHA256 before
    /// returning it; cached by hash. Uses `by-hash` URLs when the suite offers them.
    pub fn fetch_index_file(&self, idx: &SuiteIndex, name: &str) -> Result<Vec<u8>> {
        let (sha, size) = idx.files.get(name).ok_or_else(|| DebianError::Invalid {
            what: idx.file_url(name),
            detail: format!("not listed in the InRelease of {}", idx.suite),
        })?;
        if !is_hex64(sha) {
            return Err(DebianError::Parse {
                what: idx.file_url(name),
                detail: format!("bad sha256 {sha:?}"),
            });
        }
        let url = idx.file_url(name);
        let cached = self.cache_path(sha);
        if let Ok(b) = fs::read(&cached) {
            if hex_sha256(&b) == *sha {
                return Ok(b);
            }
            tracing::warn!(path = %cached.display(), "corrupt cache entry discarded");
            let _ = fs::remove_file(&cached);
        }
        let local = local_path(&idx.uri).is_some();
        if self.offline && !local {
            return Err(self.offline_error(&url, name));
        }
        let data = if idx.by_hash() {
            let dir = name.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
            let bh = idx.file_url(&format!("{dir}/by-hash/SHA256/{sha}"));
            match self.get(&bh) {
                Ok(d) => d,
                Err(e) if Self::is_not_found(&e) => self.get(&url)?,
                Err(e) => return Err(e),
            }
        } else {
            self.get(&url)?
        };
        let actual = hex_sha256(&data);
        if actual != *sha || data.len() as u64 != *size {
            return Err(DebianError::Hash {
                what: format!("{url} ({} bytes, InRelease lists {size})", data.len()),
                expected: sha.clone(),
                actual,
            });
        }
        if !local {
            write_atomic(&cached, &data)?;
        }
        Ok(data)
    }

    /// `<component>/binary-<arch>/Packages.xz` (else `.gz`), SHA256-checked against the
    /// `InRelease` listing before it is decompressed; returns its paragraphs.
    pub fn fetch_packages(
        &self,
        idx: &SuiteIndex,
        component: &str,
        arch: &str,
    ) -> Result<Vec<Paragraph>> {
        let base = format!("{component}/binary-{arch}/Packages");
        let xz = format!("{base}.xz");
        let gz = format!("{base}.gz");
        let (name, is_xz) = if idx.files.contains_key(&xz) {
            (xz, true)
        } else if idx.files.contains_key(&gz) {
            (gz, false)
        } else {
            return Err(DebianError::Invalid {
                what: idx.file_url(&base),
                detail: format!(
                    "the InRelease of {} lists no Packages.xz or Packages.gz for {component}/{arch}",
                    idx.suite
                ),
            });
        };
        let data = self.fetch_index_file(idx, &name)?;
        let mut text = String::new();
        let res = if is_xz {
            liblzma::read::XzDecoder::new(&data[..]).read_to_string(&mut text)
        } else {
            flate2::read::MultiGzDecoder::new(&data[..]).read_to_string(&mut text)
        };
        res.map_err(|e| DebianError::Parse {
            what: idx.file_url(&name),
            detail: format!("cannot decompress: {e}"),
        })?;
        Ok(parse(&text))
    }

    /// Download `<uri>/<Filename>` of a `Packages` paragraph, checking its SHA256 and size;
    /// cached by SHA256 (the returned path is the cache entry, or the local mirror's file).
    pub fn fetch_deb(&self, uri: &str, pkg: &Paragraph) -> Result<PathBuf> {
        let name = pkg.get("Package").unwrap_or("?");
        let invalid = |detail: &str| DebianError::Invalid {
            what: format!("package {name}"),
            detail: detail.into(),
        };
        let filename = pkg
            .get("Filename")
            .ok_or_else(|| invalid("no Filename field"))?
            .trim();
        if filename.starts_with('/') || filename.split('/').any(|c| c == "..") {
            return Err(invalid(&format!("unsafe Filename {filename:?}")));
        }
        let sha = pkg
            .get("SHA256")
            .ok_or_else(|| invalid("no SHA256 field"))?
            .trim()
            .to_ascii_lowercase();
        if !is_hex64(&sha) {
            return Err(invalid(&format!("bad SHA256 {sha:?}")));
        }
        let size: u64 = pkg
            .get("Size")
            .ok_or_else(|| invalid("no Size field"))?
            .trim()
            .parse()
            .map_err(|e| invalid(&format!("bad Size: {e}")))?;
        let url = join_url(uri, filename);
        let cached = self.cache_path(&sha);
        if cached.exists() {
            let (actual, len) = hash_file(&cached)?;
            if actual == sha && len == size {
                return Ok(cached);
            }
            tracing::warn!(path = %cached.display(), "corrupt cache entry discarded");
            let _ = fs::remove_file(&cached);
        }
        let dir = self.cache.join("sha256");
        let mut tmp = tempfile::NamedTempFile::new_in(&dir)
            .map_err(DebianError::io(dir.display().to_string()))?;
        let copy_err = |e: std::io::Error| DebianError::Fetch {
            url: url.clone(),
            detail: format!("download interrupted: {e}"),
            hint: None,
        };
        let mut hasher = HashingWriter {
            inner: tmp.as_file_mut(),
            hasher: Sha256::new(),
            len: 0,
        };
        if let Some(p) = local_path(&url) {
            let mut f = fs::File::open(&p).map_err(|e| DebianError::Fetch {
                url: url.clone(),
                detail: format!("cannot read {}: {e}", p.display()),
                hint: None,
            })?;
            std::io::copy(&mut f, &mut hasher).map_err(copy_err)?;
        } else {
            if self.offline {
                return Err(self.offline_error(&url, &format!("{name} ({filename})")));
            }
            let mut resp = self.response(&url)?;
            std::io::copy(&mut resp, &mut hasher).map_err(copy_err)?;
        }
        let len = hasher.len;
        let actual = hex::encode(hasher.hasher.finalize());
        if actual != sha || len != size {
            return Err(DebianError::Hash {
                what: format!("{url} ({len} bytes, Packages lists {size})"),
                expected: sha,
                actual,
            });
        }
        tmp.flush()
            .map_err(DebianError::io(cached.display().to_string()))?;
        tmp.persist(&cached).map_err(|e| DebianError::Io {
            what: cached.display().to_string(),
            source: e.error,
        })?;
        Ok(cached)
    }
}

struct HashingWriter<'a> {
    inner: &'a mut fs::File,
    hasher: Sha256,
    len: u64,
}

impl Write for HashingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn hash_file(p: &Path) -> Result<(String, u64)> {
    let f = fs::File::open(p).map_err(DebianError::io(p.display().to_string()))?;
    let mut r = BufReader::with_capacity(1 << 16, f);
    let mut h = Sha256::new();
    let mut len = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = r
            .read(&mut buf)
            .map_err(DebianError::io(p.display().to_string()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        len += n as u64;
    }
    Ok((hex::encode(h.finalize()), len))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const DEB822: &str = "\
# the main archive
Types: deb deb-src
# a comment inside
URIs: http://mirror.invalid/debian
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://mirror.invalid/debian
Suites: bookworm
Components: main

Types: deb
URIs: http://mirror.invalid/debian-security
Suites: bookworm-security
Components: main

Types: deb
Enabled: no
URIs: http://disabled.invalid/debian
Suites: bookworm
Components: main
";

    #[test]
    fn deb822_sources() {
        let s = parse_sources_deb822(DEB822);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].uri, "http://mirror.invalid/debian");
        assert_eq!(s[0].suites, ["bookworm", "bookworm-updates"]);
        assert_eq!(s[0].components, ["main", "contrib"]);
        assert_eq!(
            s[0].signed_by.as_deref(),
            Some(Path::new("/usr/share/keyrings/debian-archive-keyring.gpg"))
        );
        assert_eq!(s[1].suites, ["bookworm-security"]);
        assert_eq!(s[1].signed_by, None);
    }

    #[test]
    fn one_line_sources() {
        let t = "# comment\n\
                 deb [arch=amd64 signed-by=/etc/k.gpg] http://m.invalid/debian bookworm main non-free # trailing\n\
                 deb-src http://m.invalid/debian bookworm main\n\
                 deb file:///srv/mirror trixie main\n\
                 debx nonsense\n";
        let s = parse_sources_list(t);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].uri, "http://m.invalid/debian");
        assert_eq!(s[0].suites, ["bookworm"]);
        assert_eq!(s[0].components, ["main", "non-free"]);
        assert_eq!(s[0].signed_by.as_deref(), Some(Path::new("/etc/k.gpg")));
        assert_eq!(s[1].local_dir().as_deref(), Some(Path::new("/srv/mirror")));
    }

    #[test]
    fn apt_source_flag() {
        let s = parse_apt_source_flag("http://m.invalid/debian trixie main contrib").unwrap();
        assert_eq!((s.suites.len(), s.components.len()), (1, 2));
        let s = parse_apt_source_flag("/srv/mirror trixie main").unwrap();
        assert_eq!(s.local_dir().as_deref(), Some(Path::new("/srv/mirror")));
        assert!(parse_apt_source_flag("http://m.invalid/debian trixie").is_err());
        assert!(parse_apt_source_flag("").is_err());
    }

    #[test]
    fn release_names() {
        assert_eq!("13".parse::<Release>().unwrap(), Release::Trixie);
        assert_eq!("Bookworm".parse::<Release>().unwrap(), Release::Bookworm);
        assert!("sid".parse::<Release>().is_err());
        assert_eq!(Release::default().to_string(), "trixie");
    }

    #[test]
    fn release_sources_from_a_bookworm_machine() {
        let sys = parse_sources_deb822(DEB822);
        let r = sources_for_release(&sys, Release::Trixie, false).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].suites, ["trixie", "trixie-updates"]);
        assert_eq!(r[0].components, ["main", "contrib"]);
        assert_eq!(r[1].uri, "http://mirror.invalid/debian-security");
        assert_eq!(r[1].suites, ["trixie-security"]);
        let r = sources_for_release(&sys[..1], Release::Bookworm, true).unwrap();
        assert_eq!(
            r[0].suites,
            ["bookworm", "bookworm-updates", "bookworm-backports"]
        );
        assert_eq!(
            r[1].uri, "http://mirror.invalid/debian-security",
            "derived beside /debian"
        );
        assert!(sources_for_release(&sys[1..], Release::Trixie, false).is_err());
    }

    #[test]
    fn release_dates() {
        assert_eq!(parse_release_date("Thu, 01 Jan 1970 00:00:00 UTC"), Some(0));
        assert_eq!(
            parse_release_date("Sat, 15 Nov 2025 09:08:50 UTC"),
            Some(1_763_197_730)
        );
        assert_eq!(
            parse_release_date("Sat, 15 Nov 2025 10:08:50 +0100"),
            Some(1_763_197_730)
        );
        assert_eq!(parse_release_date("garbage"), None);
        assert_eq!(fmt_time(1_763_197_730), "2025-11-15 09:08:50 UTC");
    }
}
