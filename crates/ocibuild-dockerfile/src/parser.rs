//! Lines → logical instructions → typed instructions, as BuildKit's parser does it.
//!
//! Steps: parser directives at the top; logical lines (escape-character continuations, with
//! comment and empty lines inside a continuation skipped); the instruction keyword and its
//! `--flags`; per-instruction argument parsing; heredoc bodies read after RUN/COPY/ADD lines.
//! Every error carries the line and column of the offending word.

use crate::error::{ExpandError, ParseError};
use crate::expand::{check_syntax, split_words_at};
use crate::model::*;
use crate::mount::{MountError, parse_mount};

/// Parses a Dockerfile. `file` is only used in error messages.
pub fn parse(src: &str, file: &str) -> Result<Dockerfile, ParseError> {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let mut ctx = Ctx {
        file,
        lines: split_lines(src),
        escape: '\\',
    };
    let mut i = 0;
    let directives = parse_directives(&mut ctx, &mut i)?;

    let mut global_args: Vec<Arg> = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    let mut any = false;
    while let Some(node) = next_instruction(&ctx, &mut i)? {
        any = true;
        match node.parsed {
            Parsed::From {
                base,
                name,
                platform,
            } => {
                if let Some((n, off)) = &name
                    && let Some(prev) = stages.iter().find(|s| s.name.as_deref() == Some(n))
                {
                    return Err(ctx.error_at(
                        &node.logical,
                        *off,
                        format!("duplicate stage name {n:?}"),
                        Some(format!(
                            "a stage named {n:?} is already defined on line {}; stage names must be unique",
                            prev.span.line
                        )),
                    ));
                }
                stages.push(Stage {
                    name: name.map(|(n, _)| n),
                    base,
                    platform,
                    instructions: Vec::new(),
                    span: node.span,
                });
            }
            Parsed::Kind(kind) => {
                let instr = Instruction {
                    kind,
                    span: node.span,
                    original: node.original,
                };
                match stages.last_mut() {
                    Some(stage) => stage.instructions.push(instr),
                    None => {
                        if let InstructionKind::Arg(args) = instr.kind {
                            global_args.extend(args);
                            continue;
                        }
                        return Err(ctx.error_at(
                            &node.logical,
                            node.kw_off,
                            format!(
                                "no build stage in current context: {} must come after a FROM",
                                instr.kind.keyword()
                            ),
                            Some(
                                "every build stage starts with FROM; only ARG may appear before the first FROM"
                                    .to_string(),
                            ),
                        ));
                    }
                }
            }
        }
    }
    if !any {
        return Err(ctx.error(
            0,
            0,
            "file with no instructions",
            Some("a Dockerfile needs at least a FROM instruction".to_string()),
        ));
    }
    if stages.is_empty() {
        let last = ctx.lines.len().saturating_sub(1);
        return Err(ctx.error(
            last,
            0,
            "dockerfile contains no stages to build",
            Some("add a FROM instruction".to_string()),
        ));
    }
    Ok(Dockerfile {
        directives,
        global_args,
        stages,
    })
}

/// Parses ONBUILD triggers as stored in an image config (`OnBuild`, each entry the text after
/// `ONBUILD`, heredoc bodies included) back into instructions, in order.
pub fn parse_onbuild_triggers(lines: &[String]) -> Result<Vec<Instruction>, ParseError> {
    let mut out = Vec::new();
    for (n, trigger) in lines.iter().enumerate() {
        let file = format!("<ONBUILD trigger {}>", n + 1);
        let ctx = Ctx {
            file: &file,
            lines: split_lines(trigger),
            escape: '\\',
        };
        let mut i = 0;
        let Some(node) = next_instruction(&ctx, &mut i)? else {
            return Err(ctx.error(0, 0, "empty ONBUILD trigger", None));
        };
        if next_instruction(&ctx, &mut i)?.is_some() {
            return Err(ctx.error(0, 0, "onbuild trigger should be a single expression", None));
        }
        match node.parsed {
            Parsed::From { .. } => {
                return Err(ctx.error_at(
                    &node.logical,
                    node.kw_off,
                    "FROM isn't allowed as an ONBUILD trigger",
                    None,
                ));
            }
            Parsed::Kind(kind) => {
                if let InstructionKind::OnBuild(_) | InstructionKind::Maintainer(_) = kind {
                    return Err(ctx.error_at(
                        &node.logical,
                        node.kw_off,
                        format!("{} isn't allowed as an ONBUILD trigger", kind.keyword()),
                        None,
                    ));
                }
                out.push(Instruction {
                    kind,
                    span: node.span,
                    original: node.original,
                });
            }
        }
    }
    Ok(out)
}

struct Ctx<'a> {
    file: &'a str,
    lines: Vec<&'a str>,
    escape: char,
}

impl Ctx<'_> {
    /// An error at a 0-based line index and byte column.
    fn error(
        &self,
        line: usize,
        byte_col: usize,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> ParseError {
        let src = self.lines.get(line).copied().unwrap_or("");
        let col = src.get(..byte_col).map_or(1, |p| p.chars().count() + 1);
        ParseError {
            file: self.file.to_string(),
            line: line + 1,
            col,
            source_line: src.to_string(),
            message: message.into(),
            hint,
        }
    }

    fn error_at(
        &self,
        lg: &Logical,
        off: usize,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> ParseError {
        let (line, col) = lg.locate(off);
        self.error(line, col, message, hint)
    }

    fn span(&self, lg: &Logical, off: usize, end_line: usize) -> Span {
        let (line, byte_col) = lg.locate(off);
        let src = self.lines.get(line).copied().unwrap_or("");
        let col = src.get(..byte_col).map_or(1, |p| p.chars().count() + 1);
        Span {
            line: line + 1,
            col,
            end_line: end_line + 1,
        }
    }
}

fn split_lines(src: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = src
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    if src.ends_with('\n') {
        lines.pop();
    }
    lines
}

/// The joined text of one instruction and where each piece came from.
struct Logical {
    text: String,
    /// (offset in `text`, 0-based line, byte column in that line)
    segs: Vec<(usize, usize, usize)>,
}

impl Logical {
    fn push(&mut self, s: &str, line: usize, col: usize) {
        self.segs.push((self.text.len(), line, col));
        self.text.push_str(s);
    }

    /// (0-based line, byte column) of a byte offset in `text`.
    fn locate(&self, off: usize) -> (usize, usize) {
        let seg = self
            .segs
            .iter()
            .rev()
            .find(|s| s.0 <= off)
            .or(self.segs.first())
            .copied()
            .unwrap_or((0, 0, 0));
        (seg.1, seg.2 + off.saturating_sub(seg.0))
    }
}

fn parse_directives(ctx: &mut Ctx<'_>, i: &mut usize) -> Result<Directives, ParseError> {
    let mut d = Directives::default();
    let mut seen: Vec<String> = Vec::new();
    while *i < ctx.lines.len() {
        let raw = ctx.lines[*i];
        let stripped = raw.trim_start();
        let lead = raw.len() - stripped.len();
        let Some((key, value)) = directive(stripped) else {
            break;
        };
        if seen.contains(&key) {
            return Err(ctx.error(
                *i,
                lead,
                format!("only one {key} parser directive can be used"),
                None,
            ));
        }
        match key.as_str() {
            "escape" => {
                if value != "\\" && value != "`" {
                    return Err(ctx.error(
                        *i,
                        lead,
                        format!("invalid escape token '{value}' does not match ` or \\"),
                        Some("use `# escape=\\` or ``# escape=` ``".to_string()),
                    ));
                }
                let c = if value == "`" { '`' } else { '\\' };
                d.escape = c;
                ctx.escape = c;
            }
            "syntax" => d.syntax = Some(value),
            _ => d.check = Some(value),
        }
        seen.push(key);
        *i += 1;
    }
    Ok(d)
}

/// `# key=value` with a known key (syntax, escape, check), as BuildKit's directive parser.
fn directive(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let key_len = rest
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphanumeric()) || (i == 0 && !c.is_ascii_alphabetic()))
        .map_or(rest.len(), |(i, _)| i);
    if key_len == 0 {
        return None;
    }
    let key = rest[..key_len].to_ascii_lowercase();
    let after = rest[key_len..].trim_start().strip_prefix('=')?;
    let value = after.trim();
    if value.is_empty() {
        return None;
    }
    matches!(key.as_str(), "syntax" | "escape" | "check").then(|| (key, value.to_string()))
}

/// Removes a trailing escape character (and whitespace after it) that continues the line,
/// unless the escape character is itself escaped.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    if let Some(before) = t.strip_suffix(escape)
        && (before.is_empty() || !before.ends_with(escape))
    {
        return (before, true);
    }
    (line, false)
}

struct Node {
    parsed: Parsed,
    span: Span,
    original: String,
    kw_off: usize,
    logical: Logical,
}

/// Reads the next instruction (skipping comments and blank lines) with its heredoc bodies.
fn next_instruction(ctx: &Ctx<'_>, i: &mut usize) -> Result<Option<Node>, ParseError> {
    while *i < ctx.lines.len() {
        let raw = ctx.lines[*i];
        let stripped = raw.trim_start();
        if stripped.starts_with('#') || stripped.is_empty() {
            *i += 1;
            continue;
        }
        let lead = raw.len() - stripped.len();
        let (first, mut cont) = trim_continuation(stripped, ctx.escape);
        let mut lg = Logical {
            text: String::new(),
            segs: Vec::new(),
        };
        lg.push(first, *i, lead);
        *i += 1;
        while cont && *i < ctx.lines.len() {
            let raw = ctx.lines[*i];
            *i += 1;
            let t = raw.trim_start();
            if t.starts_with('#') || t.is_empty() {
                continue;
            }
            let (part, more) = trim_continuation(raw, ctx.escape);
            lg.push(part, *i - 1, 0);
            cont = more;
        }
        if lg.text.trim().is_empty() {
            continue;
        }
        let (mut parsed, kw_off) = parse_instruction(ctx, &lg, 0)?;
        check_expansions(ctx, &parsed, &lg, kw_off)?;
        if let Parsed::Kind(kind) = &mut parsed
            && heredoc_capable(kind)
            && lg.text.contains("<<")
        {
            let docs = read_heredocs(ctx, &lg, i)?;
            attach_heredocs(kind, &docs);
        }
        let end_line = *i - 1;
        if let Parsed::Kind(kind) = &mut parsed {
            set_end_line(kind, end_line + 1);
        }
        let end = lg.text.trim_end().len();
        let original = lg.text[kw_off..end].to_string();
        let span = ctx.span(&lg, kw_off, end_line);
        return Ok(Some(Node {
            parsed,
            span,
            original,
            kw_off,
            logical: lg,
        }));
    }
    Ok(None)
}

/// Variable references in the instructions that expand them (FROM, ARG, ENV, LABEL, COPY, ADD,
/// WORKDIR, USER, EXPOSE, VOLUME, STOPSIGNAL; not RUN, CMD or ENTRYPOINT, whose shell expands)
/// are checked here, so an unterminated `${B` fails at parse time with its place, not when
/// the stage runs.
fn check_expansions(
    ctx: &Ctx<'_>,
    parsed: &Parsed,
    lg: &Logical,
    kw_off: usize,
) -> Result<(), ParseError> {
    let expands = match parsed {
        Parsed::From { .. } => true,
        Parsed::Kind(k) => matches!(
            k,
            InstructionKind::Arg(_)
                | InstructionKind::Env(_)
                | InstructionKind::Label(_)
                | InstructionKind::Copy(_)
                | InstructionKind::Add(_)
                | InstructionKind::Workdir(_)
                | InstructionKind::User(_)
                | InstructionKind::Expose(_)
                | InstructionKind::Volume(_)
                | InstructionKind::StopSignal(_)
        ),
    };
    if !expands {
        return Ok(());
    }
    let text = &lg.text[kw_off..];
    for (word, off) in split_words_at(text, ctx.escape).into_iter().skip(1) {
        if word.starts_with("<<") {
            continue; // a heredoc marker; its body is not expanded here
        }
        if let Err((at, e)) = check_syntax(&word, ctx.escape) {
            let reference: String = word[at..]
                .chars()
                .take_while(|c| !c.is_whitespace())
                .take(40)
                .collect();
            let (message, hint) = match e {
                ExpandError::MissingBrace { .. }
                | ExpandError::UnsupportedModifier {
                    modifier: '"' | '\'' | ' ' | '\t',
                    ..
                } => (
                    format!("unterminated variable reference `{reference}`: missing `}}`"),
                    "close it as `${NAME}`; to keep a literal `$`, escape it as `\\$`",
                ),
                ExpandError::UnsupportedModifier { modifier, .. } => (
                    format!("unsupported modifier `{modifier}` in `{reference}`"),
                    "write `${NAME}`, `${NAME:-default}`, `${NAME:+alternative}`, `${NAME:?message}`, `${NAME#pattern}`, `${NAME%pattern}` or `${NAME/pattern/replacement}`",
                ),
                _ => (
                    format!("bad substitution `{reference}`"),
                    "a variable reference is `$NAME` or `${NAME}` (with an optional modifier such as `${NAME:-default}`); escape a literal `$` as `\\$`",
                ),
            };
            return Err(ctx.error_at(lg, kw_off + off + at, message, Some(hint.to_string())));
        }
    }
    Ok(())
}

fn set_end_line(kind: &mut InstructionKind, end_line: usize) {
    if let InstructionKind::OnBuild(ob) = kind {
        ob.instruction.span.end_line = end_line;
    }
}

fn heredoc_capable(kind: &InstructionKind) -> bool {
    match kind {
        InstructionKind::Run(r) => matches!(r.command, Command::Shell(_)),
        InstructionKind::Copy(c) | InstructionKind::Add(c) => !c.json,
        InstructionKind::OnBuild(ob) => heredoc_capable(&ob.instruction.kind),
        _ => false,
    }
}

fn read_heredocs(ctx: &Ctx<'_>, lg: &Logical, i: &mut usize) -> Result<Vec<Heredoc>, ParseError> {
    let mut docs = Vec::new();
    for (word, off) in split_words_at(&lg.text, '\\') {
        let Some(hw) = parse_heredoc_word(&word) else {
            continue;
        };
        let mut content = String::new();
        let mut terminated = false;
        while *i < ctx.lines.len() {
            let line = ctx.lines[*i];
            *i += 1;
            let candidate = if hw.chomp {
                line.trim_start_matches('\t')
            } else {
                line
            };
            if candidate == hw.name {
                terminated = true;
                break;
            }
            content.push_str(line);
            content.push('\n');
        }
        if !terminated {
            return Err(ctx.error_at(
                lg,
                off,
                "unterminated heredoc",
                Some(format!(
                    "end the heredoc with a line containing only `{}`{}",
                    hw.name,
                    if hw.chomp {
                        " (tabs may precede it with <<-)"
                    } else {
                        " (no indentation; use <<- to allow leading tabs)"
                    }
                )),
            ));
        }
        docs.push(Heredoc {
            name: hw.name,
            content,
            chomp: hw.chomp,
            expand: hw.expand,
        });
    }
    Ok(docs)
}

fn attach_heredocs(kind: &mut InstructionKind, docs: &[Heredoc]) {
    match kind {
        InstructionKind::Run(r) => r.heredocs = docs.to_vec(),
        InstructionKind::Copy(c) | InstructionKind::Add(c) => {
            for f in &mut c.inline_files {
                if let Some(d) = docs.iter().find(|d| d.name == f.name) {
                    f.content = d.text();
                }
            }
        }
        InstructionKind::OnBuild(ob) => {
            attach_heredocs(&mut ob.instruction.kind, docs);
            let mut trigger = ob.instruction.original.clone();
            for d in docs {
                trigger.push('\n');
                trigger.push_str(&d.content);
                trigger.push_str(&d.name);
            }
            ob.trigger = trigger;
        }
        _ => {}
    }
}

pub(crate) struct HeredocWord {
    pub name: String,
    pub chomp: bool,
    pub expand: bool,
}

/// A heredoc word as BuildKit recognises it: `[n]<<[-]NAME` where NAME is one shell word,
/// possibly quoted (quoting disables expansion of the body).
pub(crate) fn parse_heredoc_word(w: &str) -> Option<HeredocWord> {
    let digits = w.bytes().take_while(u8::is_ascii_digit).count();
    let rest = w[digits..].strip_prefix("<<")?;
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let (words, quoted) = unquote_words(rest)?;
    if words.len() != 1 {
        return None;
    }
    let name = words.into_iter().next()?;
    Some(HeredocWord {
        name,
        chomp,
        expand: !quoted,
    })
}

/// Splits on unquoted whitespace, removing quotes and `\` escapes (no `$` expansion); also says
/// whether any quoting was used. `None` on an unterminated quote.
fn unquote_words(s: &str) -> Option<(Vec<String>, bool)> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quoted = false;
    let mut it = s.chars();
    while let Some(c) = it.next() {
        match c {
            '\'' | '"' => {
                quoted = true;
                in_word = true;
                loop {
                    match it.next()? {
                        q if q == c => break,
                        '\\' if c == '"' => cur.push(it.next()?),
                        o => cur.push(o),
                    }
                }
            }
            '\\' => {
                if let Some(n) = it.next() {
                    cur.push(n);
                    in_word = true;
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Some((words, quoted))
}

enum Parsed {
    From {
        base: String,
        /// lower-cased name and its offset
        name: Option<(String, usize)>,
        platform: Option<String>,
    },
    Kind(InstructionKind),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum FlagType {
    Bool,
    Str,
    Strs,
}

use FlagType::{Bool, Str, Strs};

const FLAGS: &[(&str, &[(&str, FlagType)])] = &[
    ("FROM", &[("platform", Str)]),
    (
        "RUN",
        &[("mount", Strs), ("network", Str), ("security", Str)],
    ),
    (
        "COPY",
        &[
            ("from", Str),
            ("chown", Str),
            ("chmod", Str),
            ("link", Bool),
            ("parents", Bool),
            ("exclude", Strs),
        ],
    ),
    (
        "ADD",
        &[
            ("chown", Str),
            ("chmod", Str),
            ("link", Bool),
            ("keep-git-dir", Bool),
            ("checksum", Str),
            ("exclude", Strs),
        ],
    ),
    (
        "HEALTHCHECK",
        &[
            ("interval", Str),
            ("timeout", Str),
            ("start-period", Str),
            ("start-interval", Str),
            ("retries", Str),
        ],
    ),
];

const INSTRUCTIONS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

struct FlagVal {
    name: &'static str,
    value: String,
    off: usize,
}

struct Flags(Vec<FlagVal>);

impl Flags {
    fn get(&self, name: &str) -> Option<&FlagVal> {
        self.0.iter().rev().find(|f| f.name == name)
    }
    fn string(&self, name: &str) -> Option<String> {
        self.get(name).map(|f| f.value.clone())
    }
    fn bool(&self, name: &str) -> bool {
        self.get(name).is_some_and(|f| f.value == "true")
    }
    fn all(&self, name: &str) -> impl Iterator<Item = &FlagVal> {
        self.0.iter().filter(move |f| f.name == name)
    }
}

fn is_sep(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0b' | '\x0c' | '\r')
}

/// BuildKit's `extractBuilderFlags`: leading `--words` (quotes and `\` processed) up to the
/// first word not starting with `--`, or a lone `--`. Returns the flags with their offsets and
/// the offset of the remaining arguments.
fn extract_flags(text: &str, base: usize) -> (Vec<(String, usize)>, usize) {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut words = Vec::new();
    let mut i = 0;
    loop {
        while i < chars.len() && chars[i].1.is_whitespace() {
            i += 1;
        }
        if i >= chars.len() {
            return (words, base + text.len());
        }
        let start = chars[i].0;
        if !text[start..].starts_with("--") {
            return (words, base + start);
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        let mut blank_ok = false;
        while i < chars.len() {
            let c = chars[i].1;
            match quote {
                None => {
                    if c.is_whitespace() {
                        break;
                    }
                    if c == '\'' || c == '"' {
                        quote = Some(c);
                        blank_ok = true;
                    } else if c == '\\' {
                        if i + 1 < chars.len() {
                            i += 1;
                            word.push(chars[i].1);
                        }
                    } else {
                        word.push(c);
                    }
                }
                Some(q) => {
                    if c == q {
                        quote = None;
                    } else if c == '\\' {
                        if i + 1 < chars.len() {
                            i += 1;
                            word.push(chars[i].1);
                        } else {
                            quote = None;
                        }
                    } else {
                        word.push(c);
                    }
                }
            }
            i += 1;
        }
        if word == "--" {
            while i < chars.len() && chars[i].1.is_whitespace() {
                i += 1;
            }
            let off = chars.get(i).map_or(text.len(), |c| c.0);
            return (words, base + off);
        }
        if blank_ok || !word.is_empty() {
            words.push((word, base + start));
        }
    }
}

fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let w = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (edit_distance(&w, &c.to_ascii_lowercase()), c))
        .filter(|(d, c)| *d <= 1.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Optimal-string-alignment distance: insertions, deletions, substitutions and adjacent
/// transpositions (`form` → `from` is one edit).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

fn flag_list(spec: &[(&str, FlagType)]) -> String {
    spec.iter()
        .map(|(n, _)| format!("--{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn parse_flags(
    ctx: &Ctx<'_>,
    lg: &Logical,
    kw: &str,
    raw: Vec<(String, usize)>,
) -> Result<Flags, ParseError> {
    let spec: &[(&str, FlagType)] = FLAGS
        .iter()
        .find(|(k, _)| *k == kw)
        .map_or(&[], |(_, s)| *s);
    let accepts = if spec.is_empty() {
        format!("{kw} takes no flags")
    } else {
        format!("{kw} accepts {}", flag_list(spec))
    };
    let mut out: Vec<FlagVal> = Vec::new();
    for (word, off) in raw {
        let body = &word[2.min(word.len())..];
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let Some(&(fname, ftype)) = spec.iter().find(|(n, _)| *n == name) else {
            let owners: Vec<&str> = FLAGS
                .iter()
                .filter(|(_, s)| s.iter().any(|(n, _)| *n == name))
                .map(|(k, _)| *k)
                .collect();
            if !owners.is_empty() {
                return Err(ctx.error_at(
                    lg,
                    off,
                    format!("flag --{name} is not valid for {kw}"),
                    Some(format!(
                        "--{name} is a flag of {}; {accepts}",
                        owners.join(" and ")
                    )),
                ));
            }
            let hint = match suggest(name, spec.iter().map(|(n, _)| *n)) {
                Some(s) => format!("did you mean --{s}? {accepts}"),
                None => accepts.clone(),
            };
            return Err(ctx.error_at(lg, off, format!("unknown flag: --{name}"), Some(hint)));
        };
        if ftype != Strs && out.iter().any(|f| f.name == fname) {
            return Err(ctx.error_at(lg, off, format!("duplicate flag specified: --{name}"), None));
        }
        let value = match ftype {
            Bool => match value {
                Some("") => {
                    return Err(ctx.error_at(
                        lg,
                        off,
                        format!("missing a value on flag: --{name}"),
                        None,
                    ));
                }
                None => "true".to_string(),
                Some(v) if v.eq_ignore_ascii_case("true") => "true".to_string(),
                Some(v) if v.eq_ignore_ascii_case("false") => "false".to_string(),
                Some(v) => {
                    return Err(ctx.error_at(
                        lg,
                        off,
                        format!("expecting boolean value for flag --{name}, not: {v}"),
                        None,
                    ));
                }
            },
            Str | Strs => match value {
                Some(v) => v.to_string(),
                None => {
                    return Err(ctx.error_at(
                        lg,
                        off,
                        format!("missing a value on flag: --{name}"),
                        Some(format!("write it as --{name}=<value>")),
                    ));
                }
            },
        };
        out.push(FlagVal {
            name: fname,
            value,
            off,
        });
    }
    Ok(Flags(out))
}

enum Json {
    Text,
    Array(Vec<String>),
    NotStrings,
}

fn parse_json_array(s: &str) -> Json {
    let t = s.trim_start();
    if !t.starts_with('[') {
        return Json::Text;
    }
    match serde_json::from_str::<serde_json::Value>(t) {
        Ok(serde_json::Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for it in items {
                match it {
                    serde_json::Value::String(s) => out.push(s),
                    _ => return Json::NotStrings,
                }
            }
            Json::Array(out)
        }
        _ => Json::Text,
    }
}

const NOT_STRINGS: &str = "when using JSON array syntax, arrays must be comprised of strings only";

/// Parses one instruction starting at `start` in the logical line.
fn parse_instruction(
    ctx: &Ctx<'_>,
    lg: &Logical,
    start: usize,
) -> Result<(Parsed, usize), ParseError> {
    let text = lg.text.as_str();
    let end = text.trim_end().len().max(start);
    let kw_off = text[start..end]
        .char_indices()
        .find(|(_, c)| !c.is_whitespace())
        .map_or(end, |(i, _)| start + i);
    let kw_end = text[kw_off..end]
        .char_indices()
        .find(|&(_, c)| is_sep(c))
        .map_or(end, |(i, _)| kw_off + i);
    let keyword = &text[kw_off..kw_end];
    let rest_off = text[kw_end..end]
        .char_indices()
        .find(|&(_, c)| !is_sep(c))
        .map_or(end, |(i, _)| kw_end + i);
    let kw = keyword.to_ascii_uppercase();
    if !INSTRUCTIONS.contains(&kw.as_str()) {
        let hint = match suggest(keyword, INSTRUCTIONS.iter().copied()) {
            Some(s) => format!("did you mean {s}?"),
            None => format!("valid instructions: {}", INSTRUCTIONS.join(", ")),
        };
        return Err(ctx.error_at(
            lg,
            kw_off,
            format!("unknown instruction: {keyword}"),
            Some(hint),
        ));
    }
    let (raw_flags, args_off) = extract_flags(&text[rest_off..end], rest_off);
    let args_off = args_off.min(end);
    let args = &text[args_off..end];
    let flags = parse_flags(ctx, lg, &kw, raw_flags)?;
    // where to point for errors about the arguments as a whole
    let at_args = if args.is_empty() { kw_off } else { args_off };
    let err = |off: usize, msg: String, hint: Option<String>| ctx.error_at(lg, off, msg, hint);
    let escape = ctx.escape;
    let words = || -> Vec<(String, usize)> {
        split_words_at(args, escape)
            .into_iter()
            .map(|(w, o)| (w, o + args_off))
            .collect()
    };

    let kind = match kw.as_str() {
        "FROM" => {
            let parts: Vec<(String, usize)> = split_ws(args, args_off);
            let name = match parts.len() {
                1 => None,
                3 if parts[1].0.eq_ignore_ascii_case("as") => {
                    let (n, off) = &parts[2];
                    let lower = n.to_ascii_lowercase();
                    if !valid_stage_name(&lower) {
                        return Err(err(
                            *off,
                            format!(
                                "invalid name for build stage: {n:?}, name can't start with a number or contain symbols"
                            ),
                            Some(
                                "stage names start with a letter and contain only letters, digits, '-', '_' and '.'"
                                    .to_string(),
                            ),
                        ));
                    }
                    Some((lower, *off))
                }
                _ => {
                    return Err(err(
                        at_args,
                        "FROM requires either one or three arguments".to_string(),
                        Some("write FROM [--platform=<platform>] <image> [AS <name>]".to_string()),
                    ));
                }
            };
            return Ok((
                Parsed::From {
                    base: parts[0].0.clone(),
                    name,
                    platform: flags.string("platform"),
                },
                kw_off,
            ));
        }
        "ARG" => {
            let ws = words();
            if ws.is_empty() {
                return Err(err(
                    at_args,
                    "ARG requires at least one argument".into(),
                    None,
                ));
            }
            let mut out = Vec::new();
            for (w, off) in ws {
                let (name, default) = match w.split_once('=') {
                    Some((n, v)) => (n.to_string(), Some(v.to_string())),
                    None => (w.clone(), None),
                };
                if name.is_empty() {
                    return Err(err(off, "ARG names can not be blank".into(), None));
                }
                if !valid_arg_name(&name) {
                    return Err(err(
                        off,
                        format!("invalid ARG name {name:?}"),
                        Some(
                            "ARG names start with a letter or '_' and contain only letters, digits and '_'"
                                .to_string(),
                        ),
                    ));
                }
                out.push(Arg { name, default });
            }
            InstructionKind::Arg(out)
        }
        "ENV" | "LABEL" => {
            let pairs = parse_name_val(&kw, args, args_off, escape, &err, at_args)?;
            if kw == "ENV" {
                InstructionKind::Env(pairs)
            } else {
                InstructionKind::Label(pairs)
            }
        }
        "RUN" => {
            let command = shell_or_exec(&kw, args, at_args, &err)?;
            let mut mounts = Vec::new();
            for f in flags.all("mount") {
                match parse_mount(&f.value, None) {
                    Ok(m) => mounts.push(m),
                    Err(MountError::Invalid(msg)) => {
                        return Err(err(
                            f.off,
                            format!("invalid --mount: {msg}"),
                            Some(
                                "e.g. --mount=type=cache,target=/root/.cache or --mount=type=secret,id=token"
                                    .to_string(),
                            ),
                        ));
                    }
                    Err(MountError::FromVariable) => {
                        return Err(err(
                            f.off,
                            "'from' doesn't support variable expansion".to_string(),
                            Some(
                                "define an alias stage instead (FROM ${IMAGE} AS src)".to_string(),
                            ),
                        ));
                    }
                    Err(MountError::Expand(e)) => {
                        return Err(err(f.off, format!("invalid --mount: {e}"), None));
                    }
                }
            }
            let network = match flags.get("network") {
                None => None,
                Some(f) => Some(match f.value.as_str() {
                    "default" => Network::Default,
                    "none" => Network::None,
                    "host" => Network::Host,
                    v => {
                        return Err(err(
                            f.off,
                            format!("unsupported network mode {v:?}"),
                            Some("--network accepts default, none or host".to_string()),
                        ));
                    }
                }),
            };
            let security = match flags.get("security") {
                None => None,
                Some(f) => Some(match f.value.as_str() {
                    "sandbox" => Security::Sandbox,
                    "insecure" => Security::Insecure,
                    v => {
                        return Err(err(
                            f.off,
                            format!("unsupported security mode {v:?}"),
                            Some("--security accepts sandbox or insecure".to_string()),
                        ));
                    }
                }),
            };
            InstructionKind::Run(Run {
                command,
                heredocs: Vec::new(),
                mounts,
                network,
                security,
            })
        }
        "CMD" => InstructionKind::Cmd(shell_or_exec(&kw, args, at_args, &err)?),
        "ENTRYPOINT" => InstructionKind::Entrypoint(shell_or_exec(&kw, args, at_args, &err)?),
        "SHELL" => match parse_json_array(args) {
            Json::Array(v) if v.is_empty() => {
                return Err(err(
                    at_args,
                    "SHELL requires at least one argument".into(),
                    None,
                ));
            }
            Json::Array(v) => InstructionKind::Shell(v),
            Json::NotStrings => return Err(err(at_args, NOT_STRINGS.into(), None)),
            Json::Text => {
                return Err(err(
                    at_args,
                    "SHELL requires the arguments to be in JSON form".into(),
                    Some(r#"write it as a JSON array, e.g. SHELL ["/bin/bash", "-c"]"#.to_string()),
                ));
            }
        },
        "COPY" | "ADD" => {
            let (list, json): (Vec<(String, usize)>, bool) = match parse_json_array(args) {
                Json::Array(v) => (v.into_iter().map(|s| (s, args_off)).collect(), true),
                Json::NotStrings => return Err(err(at_args, NOT_STRINGS.into(), None)),
                Json::Text => (words(), false),
            };
            if list.len() < 2 {
                return Err(err(
                    at_args,
                    format!(
                        "{kw} requires at least two arguments, but only one was provided. Destination could not be determined"
                    ),
                    Some(format!("write {kw} <src>... <dest>")),
                ));
            }
            let (dest, dest_off) = list[list.len() - 1].clone();
            if !json && parse_heredoc_word(&dest).is_some() {
                return Err(err(
                    dest_off,
                    format!("{kw} cannot accept a heredoc as a destination"),
                    None,
                ));
            }
            let mut args_out = CopyArgs {
                dest,
                json,
                ..CopyArgs::default()
            };
            for (src, _) in &list[..list.len() - 1] {
                match (!json).then(|| parse_heredoc_word(src)).flatten() {
                    Some(h) => args_out.inline_files.push(InlineFile {
                        name: h.name,
                        content: String::new(),
                        expand: h.expand,
                    }),
                    None => args_out.sources.push(src.clone()),
                }
            }
            if let Some(f) = flags.get("from") {
                if f.value.is_empty() {
                    return Err(err(f.off, "missing a value on flag: --from".into(), None));
                }
                if f.value.contains('$') {
                    return Err(err(
                        f.off,
                        "variable expansion is not supported for --from".into(),
                        Some(
                            "define a new stage with FROM using ARG from global scope as a workaround (ARG IMG=…; FROM ${IMG} AS src; COPY --from=src …)"
                                .to_string(),
                        ),
                    ));
                }
                args_out.from = Some(f.value.clone());
            }
            args_out.chown = flags.string("chown");
            args_out.chmod = flags.string("chmod");
            args_out.link = flags.bool("link");
            args_out.parents = flags.bool("parents");
            args_out.exclude = flags.all("exclude").map(|f| f.value.clone()).collect();
            args_out.checksum = flags.string("checksum");
            args_out.keep_git_dir = flags.bool("keep-git-dir");
            if kw == "COPY" {
                InstructionKind::Copy(args_out)
            } else {
                InstructionKind::Add(args_out)
            }
        }
        "WORKDIR" | "USER" | "STOPSIGNAL" | "MAINTAINER" => {
            if args.is_empty() {
                return Err(err(
                    at_args,
                    format!("{kw} requires exactly one argument"),
                    None,
                ));
            }
            let a = args.to_string();
            match kw.as_str() {
                "WORKDIR" => InstructionKind::Workdir(a),
                "USER" => InstructionKind::User(a),
                "STOPSIGNAL" => InstructionKind::StopSignal(a),
                _ => InstructionKind::Maintainer(a),
            }
        }
        "EXPOSE" => {
            let ws = words();
            if ws.is_empty() {
                return Err(err(
                    at_args,
                    "EXPOSE requires at least one argument".into(),
                    None,
                ));
            }
            InstructionKind::Expose(ws.into_iter().map(|(w, _)| w).collect())
        }
        "VOLUME" => {
            let list: Vec<String> = match parse_json_array(args) {
                Json::Array(v) => v,
                Json::NotStrings => return Err(err(at_args, NOT_STRINGS.into(), None)),
                Json::Text => words().into_iter().map(|(w, _)| w).collect(),
            };
            if list.is_empty() {
                return Err(err(
                    at_args,
                    "VOLUME requires at least one argument".into(),
                    None,
                ));
            }
            let mut out = Vec::new();
            for v in list {
                let v = v.trim().to_string();
                if v.is_empty() {
                    return Err(err(
                        at_args,
                        "VOLUME specified can not be an empty string".into(),
                        None,
                    ));
                }
                out.push(v);
            }
            InstructionKind::Volume(out)
        }
        "HEALTHCHECK" => {
            InstructionKind::Healthcheck(parse_healthcheck(args, args_off, at_args, &flags, &err)?)
        }
        "ONBUILD" => {
            if args.is_empty() {
                return Err(err(
                    at_args,
                    "ONBUILD requires at least one argument".into(),
                    None,
                ));
            }
            let trigger_kw: String = args
                .chars()
                .take_while(|c| !is_sep(*c))
                .collect::<String>()
                .to_ascii_uppercase();
            match trigger_kw.as_str() {
                "ONBUILD" => {
                    return Err(err(
                        args_off,
                        "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into(),
                        None,
                    ));
                }
                "FROM" | "MAINTAINER" => {
                    return Err(err(
                        args_off,
                        format!("{trigger_kw} isn't allowed as an ONBUILD trigger"),
                        None,
                    ));
                }
                _ => {}
            }
            let (nested, nested_off) = parse_instruction(ctx, lg, args_off)?;
            let Parsed::Kind(nested_kind) = nested else {
                return Err(err(
                    args_off,
                    "FROM isn't allowed as an ONBUILD trigger".into(),
                    None,
                ));
            };
            let original = text[nested_off..end].to_string();
            let (l, c) = lg.locate(nested_off);
            let src = ctx.lines.get(l).copied().unwrap_or("");
            let span = Span {
                line: l + 1,
                col: src.get(..c).map_or(1, |p| p.chars().count() + 1),
                end_line: l + 1,
            };
            InstructionKind::OnBuild(OnBuild {
                trigger: original.clone(),
                instruction: Box::new(Instruction {
                    kind: nested_kind,
                    span,
                    original,
                }),
            })
        }
        _ => {
            return Err(err(kw_off, format!("unknown instruction: {keyword}"), None));
        }
    };
    Ok((Parsed::Kind(kind), kw_off))
}

fn split_ws(text: &str, base: usize) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    for (i, c) in text.char_indices() {
        if is_sep(c) {
            if let Some(s) = start.take() {
                out.push((text[s..i].to_string(), base + s));
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        out.push((text[s..].to_string(), base + s));
    }
    out
}

fn valid_stage_name(n: &str) -> bool {
    let mut cs = n.chars();
    matches!(cs.next(), Some(c) if c.is_ascii_lowercase())
        && cs.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

fn valid_arg_name(n: &str) -> bool {
    let mut cs = n.chars();
    matches!(cs.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

type ErrFn<'a> = dyn Fn(usize, String, Option<String>) -> ParseError + 'a;

fn shell_or_exec(
    kw: &str,
    args: &str,
    at_args: usize,
    err: &ErrFn<'_>,
) -> Result<Command, ParseError> {
    match parse_json_array(args) {
        Json::Array(v) => Ok(Command::Exec(v)),
        Json::NotStrings => Err(err(at_args, NOT_STRINGS.into(), None)),
        Json::Text => {
            if args.is_empty() {
                return Err(err(
                    at_args,
                    format!("{kw} requires at least one argument"),
                    None,
                ));
            }
            Ok(Command::Shell(args.to_string()))
        }
    }
}

fn parse_name_val(
    kw: &str,
    args: &str,
    args_off: usize,
    escape: char,
    err: &ErrFn<'_>,
    at_args: usize,
) -> Result<Vec<KeyValue>, ParseError> {
    let ws: Vec<(String, usize)> = split_words_at(args, escape)
        .into_iter()
        .map(|(w, o)| (w, o + args_off))
        .collect();
    let Some((first, _)) = ws.first() else {
        return Err(err(
            at_args,
            format!("{kw} requires at least one argument"),
            None,
        ));
    };
    if !first.contains('=') {
        // legacy form: KEY name value…
        let key_end = args.find(is_sep).unwrap_or(args.len());
        let value = args[key_end..].trim_start_matches(is_sep);
        if value.is_empty() {
            return Err(err(
                at_args,
                format!("{kw} must have two arguments"),
                Some(format!(
                    "write {kw} key=value (or the legacy {kw} key value)"
                )),
            ));
        }
        return Ok(vec![KeyValue {
            key: args[..key_end].to_string(),
            value: value.to_string(),
        }]);
    }
    let mut out = Vec::new();
    for (w, off) in ws {
        let Some((k, v)) = w.split_once('=') else {
            return Err(err(
                off,
                format!("Syntax error - can't find = in {w:?}. Must be of the form: name=value"),
                Some("quote values that contain spaces: key=\"a b\"".to_string()),
            ));
        };
        if k.is_empty() {
            return Err(err(off, format!("{kw} names can not be blank"), None));
        }
        out.push(KeyValue {
            key: k.to_string(),
            value: v.to_string(),
        });
    }
    Ok(out)
}

fn parse_healthcheck(
    args: &str,
    args_off: usize,
    at_args: usize,
    flags: &Flags,
    err: &ErrFn<'_>,
) -> Result<Healthcheck, ParseError> {
    let typ_end = args.find(char::is_whitespace).unwrap_or(args.len());
    if typ_end == 0 {
        return Err(err(
            at_args,
            "HEALTHCHECK requires at least one argument".into(),
            None,
        ));
    }
    let typ = args[..typ_end].to_ascii_uppercase();
    let rest_rel = args[typ_end..]
        .char_indices()
        .find(|(_, c)| !c.is_whitespace())
        .map_or(args.len(), |(i, _)| typ_end + i);
    let rest = &args[rest_rel..];
    let mut hc = Healthcheck {
        test: None,
        interval: None,
        timeout: None,
        start_period: None,
        start_interval: None,
        retries: None,
    };
    if typ == "NONE" {
        if !rest.is_empty() {
            return Err(err(
                args_off + rest_rel,
                "HEALTHCHECK NONE takes no arguments".into(),
                None,
            ));
        }
        if let Some(f) = flags.0.first() {
            return Err(err(
                f.off,
                "HEALTHCHECK NONE takes no flags".into(),
                Some("options only apply to HEALTHCHECK CMD".to_string()),
            ));
        }
        return Ok(hc);
    }
    if typ != "CMD" {
        return Err(err(
            args_off,
            format!(
                "Unknown type {:?} in HEALTHCHECK (try CMD)",
                &args[..typ_end]
            ),
            Some("write HEALTHCHECK [options] CMD <command> or HEALTHCHECK NONE".to_string()),
        ));
    }
    let test = match parse_json_array(rest) {
        Json::Array(v) => {
            if v.is_empty() {
                return Err(err(
                    args_off,
                    "Missing command after HEALTHCHECK CMD".into(),
                    None,
                ));
            }
            let mut t = vec!["CMD".to_string()];
            t.extend(v);
            t
        }
        Json::NotStrings => return Err(err(args_off + rest_rel, NOT_STRINGS.into(), None)),
        Json::Text => {
            if rest.is_empty() {
                return Err(err(
                    args_off,
                    "Missing command after HEALTHCHECK CMD".into(),
                    None,
                ));
            }
            vec!["CMD-SHELL".to_string(), rest.to_string()]
        }
    };
    hc.test = Some(test);
    let dur = |name: &str| -> Result<Option<std::time::Duration>, ParseError> {
        let Some(f) = flags.get(name) else {
            return Ok(None);
        };
        let nanos = crate::duration::parse_go_duration(&f.value).map_err(|m| {
            err(
                f.off,
                format!("invalid duration for --{name}: {m}"),
                Some("durations look like 30s, 1m30s, 500ms or 2h".to_string()),
            )
        })?;
        if nanos != 0 && nanos < 1_000_000 {
            return Err(err(
                f.off,
                format!("Interval {name:?} cannot be less than 1ms"),
                None,
            ));
        }
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX);
        Ok(Some(std::time::Duration::from_nanos(nanos)))
    };
    hc.interval = dur("interval")?;
    hc.timeout = dur("timeout")?;
    hc.start_period = dur("start-period")?;
    hc.start_interval = dur("start-interval")?;
    if let Some(f) = flags.get("retries") {
        let n: i64 = f.value.parse().map_err(|_| {
            err(
                f.off,
                format!("invalid value for --retries: {:?}", f.value),
                Some("--retries takes a whole number".to_string()),
            )
        })?;
        if n < 0 {
            return Err(err(
                f.off,
                format!("--retries cannot be negative ({n})"),
                None,
            ));
        }
        let n = u32::try_from(n)
            .map_err(|_| err(f.off, format!("--retries is too large ({n})"), None))?;
        hc.retries = Some(n);
    }
    Ok(hc)
}
