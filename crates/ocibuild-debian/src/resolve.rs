//! Dependency resolution over one architecture's `Packages` indexes.
//!
//! A [`Universe`] holds every version of every package of the target architecture (plus
//! `Architecture: all`) from the suites added to it, each with its apt priority. [`resolve`]
//! computes the closure of the wanted packages over `Pre-Depends` and `Depends` (never
//! `Recommends`/`Suggests`), the way apt would pick candidates, with these rules:
//!
//! - **Candidates.** For a name, versions are ranked by apt's rule: the highest suite priority
//!   first, then the highest version; ties keep the order the suites were [added](Universe::add).
//!   So `-updates`/`-security` (500, newer) win over the release (500, older), and backports
//!   (100) are only used when asked for (`name/suite`), when nothing else has the package,
//!   or when a version constraint can only be met there.
//! - **Version constraints.** A dependency takes the best-ranked version that satisfies it;
//!   when the best candidate does not, other versions of the same package are tried in rank
//!   order, then the next alternative of an `a | b` group.
//! - **One version per name.** Once a name is selected, later dependencies must accept that
//!   version. If one does not, and another version would, the selected version is ruled out
//!   and resolution restarts (bounded); versions asked for explicitly are never ruled out.
//! - **Groups already satisfied** by a selected package (by name or by `Provides`) add nothing.
//! - **Virtual packages.** A real package of the name is preferred; otherwise the providers
//!   whose `Provides` satisfies the dependency (a versioned dependency needs a versioned
//!   `Provides: name (= v)`), tried in alphabetical order of the provider's name, then by rank.
//!   So with several providers the **alphabetically first** provider wins, unless an earlier
//!   alternative of the group or an already-selected provider satisfies it first. A wanted name
//!   that is only virtual is accepted when exactly one package provides it (apt's rule).
//! - **Architecture.** Only `arch` and `all` packages are in the universe. Qualifiers follow
//!   dpkg: no qualifier or `:native` accepts any of them; `:any` needs `Multi-Arch: allowed`;
//!   an explicit `:arch` must be the universe's; a `Multi-Arch: foreign` package satisfies all.
//!   `[arch]` restrictions are evaluated against the universe's architecture, and build
//!   profiles (`<!nocheck>`) as if no profile were active.
//! - **Exclusions.** A group that an excluded name could satisfy (an alternative named so, or
//!   an excluded provider of a virtual alternative) is treated as satisfied and skipped — not
//!   an error — so e.g. `debconf (>= 0.5) | debconf-2.0` adds nothing when `debconf` is
//!   excluded. The excluded names actually hit are listed in [`Resolution::excluded`]. Asking
//!   for an excluded name is an error.
//! - **Not modelled:** `Conflicts`/`Breaks`/`Replaces`, and `Essential: yes` packages are not
//!   added implicitly (a distroless image wants only what is asked for).
//!
//! Everything is deterministic: the same universe (same suites added in the same order),
//! the same wanted list and the same exclusions give the same [`Resolution`].

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt;

use crate::control::Paragraph;
use crate::error::{DebianError, Result};
pub use crate::version::{Rel, Version};

/// One version of one binary package, from a suite's `Packages` index.
#[derive(Clone, Debug)]
pub struct Package {
    pub name: String,
    pub version: Version,
    pub arch: String,
    /// AND of ORs: `Pre-Depends` groups first, then `Depends`.
    pub depends: Vec<Vec<Dep>>,
    /// Provided names, with the version of a versioned `Provides: name (= v)`.
    pub provides: Vec<(String, Option<Version>)>,
    pub essential: bool,
    /// The suite's apt priority: higher wins.
    pub priority: i32,
    pub suite: String,
    pub paragraph: Paragraph,
}

impl Package {
    /// Build from a `Packages` paragraph; `arch` evaluates `[arch]` restrictions (none if `None`).
    pub fn from_paragraph(
        p: &Paragraph,
        suite: &str,
        priority: i32,
        arch: Option<&str>,
    ) -> Result<Package> {
        let name = p
            .get("Package")
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| DebianError::Parse {
                what: format!("{suite}: Packages paragraph"),
                detail: "no Package field".to_string(),
            })?;
        let what = |field: &str| format!("{suite}: package {name}: {field}");
        let version = Version::parse(p.get("Version").unwrap_or_default()).map_err(|e| {
            DebianError::Parse {
                what: what("Version"),
                detail: e.to_string(),
            }
        })?;
        let pkg_arch = p
            .get("Architecture")
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| DebianError::Parse {
                what: what("Architecture"),
                detail: "missing".to_string(),
            })?;
        let mut depends = Vec::new();
        for field in ["Pre-Depends", "Depends"] {
            if let Some(v) = p.get(field) {
                depends.extend(parse_depends_for(v, arch).map_err(|e| DebianError::Parse {
                    what: what(field),
                    detail: e.to_string(),
                })?);
            }
        }
        let provides = match p.get("Provides") {
            Some(v) => parse_depends_for(v, arch)
                .map_err(|e| DebianError::Parse {
                    what: what("Provides"),
                    detail: e.to_string(),
                })?
                .into_iter()
                .flatten()
                .map(|d| {
                    let v = match d.rel {
                        Some((Rel::Eq, v)) => Some(v),
                        _ => None,
                    };
                    (d.name, v)
                })
                .collect(),
            None => Vec::new(),
        };
        let essential = p
            .get("Essential")
            .is_some_and(|e| e.trim().eq_ignore_ascii_case("yes"));
        Ok(Package {
            name: name.to_string(),
            version,
            arch: pkg_arch.to_string(),
            depends,
            provides,
            essential,
            priority,
            suite: suite.to_string(),
            paragraph: p.clone(),
        })
    }

    /// The `Multi-Arch` field (`no` when absent).
    pub fn multi_arch(&self) -> &str {
        self.paragraph
            .get("Multi-Arch")
            .map(str::trim)
            .unwrap_or("no")
    }
}

/// One alternative of a dependency: `name[:arch] [(rel version)]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dep {
    pub name: String,
    /// The architecture qualifier: `any`, `native`, or an architecture name.
    pub arch: Option<String>,
    pub rel: Option<(Rel, Version)>,
}

impl fmt::Display for Dep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(a) = &self.arch {
            write!(f, ":{a}")?;
        }
        if let Some((r, v)) = &self.rel {
            write!(f, " ({r} {v})")?;
        }
        Ok(())
    }
}

fn group_text(group: &[Dep]) -> String {
    group
        .iter()
        .map(Dep::to_string)
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Parse a dependency field (`Depends`, `Pre-Depends`, `Provides`, …) into AND-of-OR groups.
/// `[arch]` restrictions are ignored (every alternative is kept; see [`parse_depends_for`]);
/// build profiles are evaluated with no profile active (`<!nocheck>` kept, `<stage1>` dropped).
pub fn parse_depends(field: &str) -> Result<Vec<Vec<Dep>>> {
    parse_depends_for(field, None)
}

/// [`parse_depends`], keeping only the alternatives whose `[arch]` restriction admits `arch`
/// (when given). A group left without alternatives is dropped.
pub fn parse_depends_for(field: &str, arch: Option<&str>) -> Result<Vec<Vec<Dep>>> {
    let mut out = Vec::new();
    for group in field.split(',') {
        if group.trim().is_empty() {
            continue;
        }
        let mut alts = Vec::new();
        for alt in group.split('|') {
            if let Some(d) = parse_alt(alt, arch)? {
                alts.push(d);
            }
        }
        if !alts.is_empty() {
            out.push(alts);
        }
    }
    Ok(out)
}

/// Whether an architecture wildcard or name (`amd64`, `any`, `linux-any`, `any-arm64`) covers `arch`.
fn arch_matches(token: &str, arch: &str) -> bool {
    token == arch
        || token == "any"
        || token == "linux-any"
        || token.strip_prefix("linux-") == Some(arch)
        || token.strip_prefix("any-") == Some(arch)
}

fn parse_alt(s: &str, arch: Option<&str>) -> Result<Option<Dep>> {
    let err = |detail: &str| DebianError::Parse {
        what: format!("dependency {:?}", s.trim()),
        detail: detail.to_string(),
    };
    let s = s.trim();
    if s.is_empty() {
        return Err(err("empty alternative"));
    }
    let name_end = s
        .find(|c: char| c.is_whitespace() || "([<".contains(c))
        .unwrap_or(s.len());
    let (namepart, rest) = s.split_at(name_end);
    let (name, qual) = match namepart.split_once(':') {
        Some((n, a)) => (n, Some(a)),
        None => (namepart, None),
    };
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    {
        return Err(err("bad package name"));
    }
    if qual
        .is_some_and(|a| a.is_empty() || !a.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    {
        return Err(err("bad architecture qualifier"));
    }
    let mut rest = rest.trim_start();
    let mut rel = None;
    if let Some(r) = rest.strip_prefix('(') {
        let close = r.find(')').ok_or_else(|| err("unclosed '('"))?;
        let inner = r[..close].trim();
        let op_len = inner
            .find(|c: char| !"<=>".contains(c))
            .unwrap_or(inner.len());
        let (op, ver) = inner.split_at(op_len);
        let op: Rel = if op.is_empty() { Rel::Eq } else { op.parse()? };
        rel = Some((op, Version::parse(ver.trim())?));
        rest = r[close + 1..].trim_start();
    }
    let mut included = true;
    if let Some(r) = rest.strip_prefix('[') {
        let close = r.find(']').ok_or_else(|| err("unclosed '['"))?;
        let tokens: Vec<&str> = r[..close].split_whitespace().collect();
        if let Some(a) = arch {
            let negated = tokens.iter().any(|t| t.starts_with('!'));
            let hit = tokens
                .iter()
                .any(|t| arch_matches(t.trim_start_matches('!'), a));
            included &= if negated { !hit } else { hit };
        }
        rest = r[close + 1..].trim_start();
    }
    let mut profile_lists = Vec::new();
    while let Some(r) = rest.strip_prefix('<') {
        let close = r.find('>').ok_or_else(|| err("unclosed '<'"))?;
        profile_lists.push(&r[..close]);
        rest = r[close + 1..].trim_start();
    }
    if !profile_lists.is_empty() {
        // Lists are ORed, terms within a list ANDed; with no profile active only `!x` terms hold.
        included &= profile_lists
            .iter()
            .any(|l| l.split_whitespace().all(|t| t.starts_with('!')));
    }
    if !rest.is_empty() {
        return Err(err("unexpected text after the dependency"));
    }
    Ok(included.then(|| Dep {
        name: name.to_string(),
        arch: qual.map(str::to_string),
        rel,
    }))
}

/// Every version of every package of one architecture (plus `all`) from several suites.
#[derive(Clone, Debug)]
pub struct Universe {
    arch: String,
    packages: Vec<Package>,
    /// Name → indexes into `packages`, in candidate order (priority desc, version desc, added first).
    by_name: HashMap<String, Vec<usize>>,
    /// Provided name → (provider index, provided version), by provider name then candidate order.
    providers: HashMap<String, Vec<(usize, Option<Version>)>>,
}

impl Universe {
    pub fn new(arch: &str) -> Self {
        Universe {
            arch: arch.to_string(),
            packages: Vec::new(),
            by_name: HashMap::new(),
            providers: HashMap::new(),
        }
    }

    /// Add a suite's packages (Packages paragraphs) with an apt priority (release 500,
    /// updates/security 500, backports 100 unless pinned). Packages of other architectures
    /// are skipped; a malformed paragraph is an error.
    pub fn add(&mut self, paragraphs: &[Paragraph], suite: &str, priority: i32) -> Result<()> {
        for p in paragraphs {
            let a = p.get("Architecture").map(str::trim).unwrap_or_default();
            if a != self.arch && a != "all" {
                continue;
            }
            let pkg = Package::from_paragraph(p, suite, priority, Some(&self.arch))?;
            self.packages.push(pkg);
        }
        self.reindex();
        Ok(())
    }

    fn reindex(&mut self) {
        let pkgs = &self.packages;
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, p) in pkgs.iter().enumerate() {
            by_name.entry(p.name.clone()).or_default().push(i);
        }
        let mut rank = vec![0usize; pkgs.len()];
        for list in by_name.values_mut() {
            list.sort_by(|&a, &b| {
                pkgs[b]
                    .priority
                    .cmp(&pkgs[a].priority)
                    .then_with(|| pkgs[b].version.cmp(&pkgs[a].version))
                    .then_with(|| a.cmp(&b))
            });
            for (r, &i) in list.iter().enumerate() {
                rank[i] = r;
            }
        }
        let mut providers: HashMap<String, Vec<(usize, Option<Version>)>> = HashMap::new();
        for (i, p) in pkgs.iter().enumerate() {
            for (name, v) in &p.provides {
                providers
                    .entry(name.clone())
                    .or_default()
                    .push((i, v.clone()));
            }
        }
        for list in providers.values_mut() {
            list.sort_by(|(a, _), (b, _)| {
                pkgs[*a]
                    .name
                    .cmp(&pkgs[*b].name)
                    .then(rank[*a].cmp(&rank[*b]))
                    .then(a.cmp(b))
            });
            list.dedup_by(|x, y| x.0 == y.0);
        }
        self.by_name = by_name;
        self.providers = providers;
    }

    pub fn arch(&self) -> &str {
        &self.arch
    }

    /// Every package version, in the order added.
    pub fn packages(&self) -> &[Package] {
        &self.packages
    }

    /// The versions of a (real) package, best candidate first.
    pub fn versions(&self, name: &str) -> Vec<&Package> {
        self.by_name
            .get(name)
            .map(|l| l.iter().map(|&i| &self.packages[i]).collect())
            .unwrap_or_default()
    }

    /// apt's candidate for a name: highest priority, then highest version.
    pub fn candidate(&self, name: &str) -> Option<&Package> {
        self.by_name
            .get(name)
            .and_then(|l| l.first())
            .map(|&i| &self.packages[i])
    }

    /// The package versions providing a virtual name, provider name first, then candidate order.
    pub fn providers(&self, name: &str) -> Vec<&Package> {
        self.providers
            .get(name)
            .map(|l| l.iter().map(|(i, _)| &self.packages[*i]).collect())
            .unwrap_or_default()
    }

    /// dpkg's `archsatisfied` in a single-architecture universe.
    fn arch_ok(&self, p: &Package, dep: &Dep) -> bool {
        let ma = p.multi_arch();
        if ma.eq_ignore_ascii_case("foreign") {
            return true;
        }
        match dep.arch.as_deref() {
            None | Some("native") => true,
            Some("any") => ma.eq_ignore_ascii_case("allowed"),
            Some(a) => a == self.arch,
        }
    }

    /// Whether package `i` satisfies `dep` by its own name.
    fn real_ok(&self, i: usize, dep: &Dep) -> bool {
        let p = &self.packages[i];
        p.name == dep.name
            && self.arch_ok(p, dep)
            && dep
                .rel
                .as_ref()
                .is_none_or(|(r, v)| p.version.satisfies(*r, v))
    }

    /// Whether package `i`, providing `dep.name` at `pv`, satisfies `dep`.
    fn provide_ok(&self, i: usize, pv: &Option<Version>, dep: &Dep) -> bool {
        self.arch_ok(&self.packages[i], dep)
            && match (&dep.rel, pv) {
                (None, _) => true,
                (Some((r, v)), Some(pv)) => pv.satisfies(*r, v),
                (Some(_), None) => false,
            }
    }
}

/// The closure of a resolution.
#[derive(Clone, Debug)]
pub struct Resolution {
    /// Sorted by name, each name once.
    pub packages: Vec<Package>,
    /// Excluded names that some dependency group was skipped for, sorted.
    pub excluded: Vec<String>,
}

/// How many times a selected version may be ruled out (and resolution restarted).
const MAX_RESTARTS: usize = 1000;

/// Resolve the closure of `wanted` (names, optionally `name=version` or `name/suite`); see the
/// [module documentation](self) for the rules. An unsatisfiable dependency is an
/// [`DebianError::Unresolvable`] naming the chain from the wanted package, e.g.
/// `cannot resolve app: app → libfoo (>= 2.0) → no version of libfoo satisfies >= 2.0 (available: 1.4-2 in trixie)`.
pub fn resolve(u: &Universe, wanted: &[String], exclude: &[String]) -> Result<Resolution> {
    let exclude: HashSet<&str> = exclude.iter().map(String::as_str).collect();
    let mut banned: HashMap<usize, String> = HashMap::new();
    for _ in 0..=MAX_RESTARTS {
        let run = Run {
            u,
            exclude: &exclude,
            banned: &banned,
            selected: HashMap::new(),
            explicit: HashSet::new(),
            parent: HashMap::new(),
            excluded_hit: BTreeSet::new(),
        };
        match run.go(wanted)? {
            Outcome::Done(r) => return Ok(r),
            Outcome::Ban(i, why) => {
                banned.insert(i, why);
            }
        }
    }
    Err(DebianError::Unresolvable {
        package: wanted.join(", "),
        detail: format!("gave up after ruling out {MAX_RESTARTS} conflicting versions"),
    })
}

enum Outcome {
    Done(Resolution),
    /// Rule this package version out and start again.
    Ban(usize, String),
}

/// Why one alternative could not be chosen.
struct AltFail {
    reason: String,
    /// A selected version that blocks this alternative while another version would satisfy it.
    ban: Option<usize>,
}

struct Run<'a> {
    u: &'a Universe,
    exclude: &'a HashSet<&'a str>,
    banned: &'a HashMap<usize, String>,
    /// Name → selected package index.
    selected: HashMap<&'a str, usize>,
    /// Names asked for explicitly (never ruled out).
    explicit: HashSet<&'a str>,
    /// Selected name → (the package whose dependency pulled it in, that dependency as text).
    parent: HashMap<&'a str, (&'a str, String)>,
    excluded_hit: BTreeSet<String>,
}

impl<'a> Run<'a> {
    fn go(mut self, wanted: &[String]) -> Result<Outcome> {
        let u = self.u;
        let mut queue = VecDeque::new();
        for w in wanted {
            let i = self.pick_wanted(w)?;
            let name = u.packages[i].name.as_str();
            match self.selected.get(name) {
                Some(&s) if s != i => {
                    return Err(DebianError::Invalid {
                        what: format!("package request {w:?}"),
                        detail: format!(
                            "{name} is asked for twice, as {} ({}) and {} ({})",
                            u.packages[s].version,
                            u.packages[s].suite,
                            u.packages[i].version,
                            u.packages[i].suite
                        ),
                    });
                }
                Some(_) => {}
                None => {
                    self.selected.insert(name, i);
                    self.explicit.insert(name);
                    queue.push_back(i);
                }
            }
        }
        while let Some(i) = queue.pop_front() {
            let pkg = &u.packages[i];
            for group in &pkg.depends {
                if self.group_satisfied(group) {
                    continue;
                }
                if let Some(x) = self.excluded_satisfier(group) {
                    self.excluded_hit.insert(x.to_string());
                    continue;
                }
                let mut fails = Vec::new();
                let mut chosen = None;
                for alt in group {
                    match self.choose(alt) {
                        Ok(c) => {
                            chosen = Some((c, alt));
                            break;
                        }
                        Err(f) => fails.push((alt, f)),
                    }
                }
                match chosen {
                    Some((c, alt)) => {
                        let name = u.packages[c].name.as_str();
                        let text = if name == alt.name {
                            alt.to_string()
                        } else {
                            format!("{alt} (provided by {name})")
                        };
                        self.selected.insert(name, c);
                        self.parent.insert(name, (pkg.name.as_str(), text));
                        queue.push_back(c);
                    }
                    None => {
                        if let Some((alt, ban)) =
                            fails.iter().find_map(|(alt, f)| f.ban.map(|b| (alt, b)))
                        {
                            let mut chain = self.chain(&pkg.name);
                            chain.push(alt.to_string());
                            return Ok(Outcome::Ban(ban, chain.join(" → ")));
                        }
                        let reason = if let [(_, f)] = fails.as_slice() {
                            f.reason.clone()
                        } else {
                            let parts: Vec<String> = fails
                                .iter()
                                .map(|(a, f)| format!("{}: {}", a.name, f.reason))
                                .collect();
                            format!("no alternative can be installed ({})", parts.join("; "))
                        };
                        let mut chain = self.chain(&pkg.name);
                        let root = chain.first().cloned().unwrap_or_else(|| pkg.name.clone());
                        chain.push(group_text(group));
                        chain.push(reason);
                        return Err(DebianError::Unresolvable {
                            package: root,
                            detail: chain.join(" → "),
                        });
                    }
                }
            }
        }
        let mut packages: Vec<Package> = self
            .selected
            .values()
            .map(|&i| u.packages[i].clone())
            .collect();
        packages.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Outcome::Done(Resolution {
            packages,
            excluded: self.excluded_hit.into_iter().collect(),
        }))
    }

    /// The chain from a wanted package down to `name`: `[wanted, dep, dep, …]`.
    fn chain(&self, name: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = name;
        while let Some((par, text)) = self.parent.get(cur) {
            out.push(text.clone());
            cur = par;
        }
        out.push(cur.to_string());
        out.reverse();
        out
    }

    /// The package index for a request `name`, `name=version` or `name/suite`.
    fn pick_wanted(&self, w: &str) -> Result<usize> {
        let u = self.u;
        let unres = |detail: String| DebianError::Unresolvable {
            package: w.to_string(),
            detail,
        };
        let (name, version, suite) = if let Some((n, v)) = w.split_once('=') {
            (n.trim(), Some(Version::parse(v)?), None)
        } else if let Some((n, s)) = w.split_once('/') {
            (n.trim(), None, Some(s.trim()))
        } else {
            (w.trim(), None, None)
        };
        if self.exclude.contains(name) {
            return Err(DebianError::Invalid {
                what: format!("package request {w:?}"),
                detail: format!("{name} is both asked for and excluded"),
            });
        }
        let Some(list) = u.by_name.get(name) else {
            let provs: BTreeSet<&str> = u
                .providers
                .get(name)
                .map(|l| {
                    l.iter()
                        .map(|(i, _)| u.packages[*i].name.as_str())
                        .collect()
                })
                .unwrap_or_default();
            return match (provs.len(), version.is_none() && suite.is_none()) {
                (1, true) => self.pick_wanted(provs.iter().next().copied().unwrap_or_default()),
                (0, _) => Err(unres(format!(
                    "no package named {name} for {} (or all)",
                    u.arch
                ))),
                _ => Err(unres(format!(
                    "{name} is a virtual package provided by {}; ask for one of them",
                    provs.into_iter().collect::<Vec<_>>().join(", ")
                ))),
            };
        };
        let found = list.iter().copied().find(|&i| {
            let p = &u.packages[i];
            version.as_ref().is_none_or(|v| &p.version == v) && suite.is_none_or(|s| p.suite == s)
        });
        found.ok_or_else(|| {
            let what = match (&version, suite) {
                (Some(v), _) => format!("version {v} of {name}"),
                (_, Some(s)) => format!("{name} in suite {s}"),
                _ => name.to_string(),
            };
            unres(format!(
                "{what} is not available (available: {})",
                self.available(list)
            ))
        })
    }

    fn available(&self, list: &[usize]) -> String {
        const SHOW: usize = 8;
        let mut parts: Vec<String> = list
            .iter()
            .take(SHOW)
            .map(|&i| {
                let p = &self.u.packages[i];
                match self.banned.get(&i) {
                    Some(why) => format!("{} in {}, ruled out by {why}", p.version, p.suite),
                    None => format!("{} in {}", p.version, p.suite),
                }
            })
            .collect();
        if list.len() > SHOW {
            parts.push(format!("and {} more", list.len() - SHOW));
        }
        parts.join(", ")
    }

    /// Whether a selected package already satisfies some alternative of the group.
    fn group_satisfied(&self, group: &[Dep]) -> bool {
        let u = self.u;
        group.iter().any(|alt| {
            self.selected
                .get(alt.name.as_str())
                .is_some_and(|&s| u.real_ok(s, alt))
                || u.providers.get(&alt.name).is_some_and(|ps| {
                    ps.iter().any(|(i, pv)| {
                        self.selected.get(u.packages[*i].name.as_str()) == Some(i)
                            && u.provide_ok(*i, pv, alt)
                    })
                })
        })
    }

    /// An excluded name that could satisfy some alternative of the group.
    fn excluded_satisfier(&self, group: &[Dep]) -> Option<&'a str> {
        let u = self.u;
        for alt in group {
            if let Some(x) = self.exclude.get(alt.name.as_str()) {
                return Some(x);
            }
            if let Some(ps) = u.providers.get(&alt.name) {
                for (i, pv) in ps {
                    let pname = u.packages[*i].name.as_str();
                    if self.exclude.contains(pname) && u.provide_ok(*i, pv, alt) {
                        return Some(pname);
                    }
                }
            }
        }
        None
    }

    /// The package version to select for one alternative (the group is not yet satisfied).
    fn choose(&self, alt: &Dep) -> std::result::Result<usize, AltFail> {
        let u = self.u;
        let mut reasons = Vec::new();
        let mut ban = None;
        let versions = u.by_name.get(&alt.name);
        let usable = |i: usize| !self.banned.contains_key(&i) && u.real_ok(i, alt);
        if let Some(&s) = self.selected.get(alt.name.as_str()) {
            let sp = &u.packages[s];
            let (need, _) = self.need_text(alt);
            reasons.push(format!(
                "{} is already selected at {} ({}), which does not satisfy {need}",
                sp.name, sp.version, sp.suite
            ));
            if !self.explicit.contains(alt.name.as_str())
                && versions.is_some_and(|l| l.iter().any(|&i| i != s && usable(i)))
            {
                ban = Some(s);
            }
        } else if let Some(list) = versions {
            if let Some(&i) = list.iter().find(|&&i| usable(i)) {
                return Ok(i);
            }
            reasons.push(self.no_version_text(alt, list));
        }
        if let Some(ps) = u.providers.get(&alt.name) {
            for (i, pv) in ps {
                if self.banned.contains_key(i)
                    || self.selected.contains_key(u.packages[*i].name.as_str())
                {
                    continue;
                }
                if u.provide_ok(*i, pv, alt) {
                    return Ok(*i);
                }
            }
            if versions.is_none() {
                let (need, _) = self.need_text(alt);
                let names: BTreeSet<String> = ps
                    .iter()
                    .map(|(i, pv)| match pv {
                        Some(v) => format!("{} ({} = {v})", u.packages[*i].name, alt.name),
                        None => u.packages[*i].name.clone(),
                    })
                    .collect();
                reasons.push(format!(
                    "no provider of the virtual package {} satisfies {need} (providers: {})",
                    alt.name,
                    names.into_iter().collect::<Vec<_>>().join(", ")
                ));
            }
        } else if versions.is_none() {
            reasons.push(format!(
                "no package named {} for {} (or all)",
                alt.name, u.arch
            ));
        }
        Err(AltFail {
            reason: reasons.join("; "),
            ban,
        })
    }

    /// The requirement as text (`>= 2.0`, `:any`, …) and whether it has a version.
    fn need_text(&self, alt: &Dep) -> (String, bool) {
        let mut parts = Vec::new();
        if let Some((r, v)) = &alt.rel {
            parts.push(format!("{r} {v}"));
        }
        if let Some(a) = &alt.arch {
            parts.push(format!("the qualifier :{a}"));
        }
        if parts.is_empty() {
            (alt.name.clone(), false)
        } else {
            (parts.join(" and "), alt.rel.is_some())
        }
    }

    fn no_version_text(&self, alt: &Dep, list: &[usize]) -> String {
        let u = self.u;
        let avail = self.available(list);
        let rel_ok = |i: usize| {
            alt.rel
                .as_ref()
                .is_none_or(|(r, v)| u.packages[i].version.satisfies(*r, v))
        };
        if let Some(a) = &alt.arch
            && let Some(&i) = list
                .iter()
                .find(|&&i| rel_ok(i) && !u.arch_ok(&u.packages[i], alt))
        {
            let p = &u.packages[i];
            return format!(
                "{} {} is Multi-Arch: {}, which does not satisfy {}:{a} (available: {avail})",
                p.name,
                p.version,
                p.multi_arch(),
                alt.name
            );
        }
        match &alt.rel {
            Some((r, v)) => format!(
                "no version of {} satisfies {r} {v} (available: {avail})",
                alt.name
            ),
            None => format!("no usable version of {} (available: {avail})", alt.name),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn d(name: &str, arch: Option<&str>, rel: Option<(Rel, &str)>) -> Dep {
        Dep {
            name: name.to_string(),
            arch: arch.map(str::to_string),
            rel: rel.map(|(r, v)| (r, Version::parse(v).unwrap())),
        }
    }

    #[test]
    fn parse_depends_examples() {
        let got =
            parse_depends("libc6 (>= 2.34), libgcc-s1 | libgcc1, python3:any (>= 3.11~)").unwrap();
        assert_eq!(
            got,
            vec![
                vec![d("libc6", None, Some((Rel::Ge, "2.34")))],
                vec![d("libgcc-s1", None, None), d("libgcc1", None, None)],
                vec![d("python3", Some("any"), Some((Rel::Ge, "3.11~")))],
            ]
        );
        // Spacing variants, obsolete relations, trailing commas, continuation newlines.
        let got = parse_depends("a(>=1.0),\n b (<< 2:3-1) ,c (< 1), d(>1),").unwrap();
        assert_eq!(
            got,
            vec![
                vec![d("a", None, Some((Rel::Ge, "1.0")))],
                vec![d("b", None, Some((Rel::Lt, "2:3-1")))],
                vec![d("c", None, Some((Rel::Le, "1")))],
                vec![d("d", None, Some((Rel::Ge, "1")))],
            ]
        );
        assert_eq!(parse_depends("").unwrap(), Vec::<Vec<Dep>>::new());
        assert_eq!(group_text(&got[0]), "a (>= 1.0)");
    }

    #[test]
    fn parse_depends_restrictions() {
        let f = "foo [amd64] | bar [!amd64], baz <!nocheck>, qux <stage1>, quux <stage1> <!nocheck cross>, x [linux-any]";
        // Without an architecture every alternative is kept; profiles still evaluated.
        let all = parse_depends(f).unwrap();
        let names: Vec<Vec<&str>> = all
            .iter()
            .map(|g| g.iter().map(|d| d.name.as_str()).collect())
            .collect();
        assert_eq!(names, vec![vec!["foo", "bar"], vec!["baz"], vec!["x"]]);
        let amd = parse_depends_for(f, Some("amd64")).unwrap();
        let names: Vec<Vec<&str>> = amd
            .iter()
            .map(|g| g.iter().map(|d| d.name.as_str()).collect())
            .collect();
        assert_eq!(names, vec![vec!["foo"], vec!["baz"], vec!["x"]]);
        let arm = parse_depends_for(f, Some("arm64")).unwrap();
        let names: Vec<Vec<&str>> = arm
            .iter()
            .map(|g| g.iter().map(|d| d.name.as_str()).collect())
            .collect();
        assert_eq!(names, vec![vec!["bar"], vec!["baz"], vec!["x"]]);
        assert!(
            parse_depends_for("y [any-arm64]", Some("amd64"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn parse_depends_errors() {
        for bad in [
            "a (>= 1.0",
            "a (=> 1)",
            "${misc:Depends}",
            "a | | b",
            "a (>= )",
            "a [amd64",
            "a b",
            "a:",
        ] {
            assert!(parse_depends(bad).is_err(), "{bad:?} should not parse");
        }
    }
}
