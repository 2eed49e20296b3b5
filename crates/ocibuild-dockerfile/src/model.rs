//! The parsed Dockerfile: stages, instructions and their typed payloads.
//!
//! Every string that Docker expands later (ENV values, COPY sources, WORKDIR…) is kept exactly as
//! written — quotes, escapes and `$VARS` included — so the engine expands it with the right
//! variables at the right time (see [`crate::expand`]). Shell-form command text is never expanded
//! by the builder: the shell does that.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where an instruction sits in the source. Lines and columns are 1-based; `col` counts
/// characters; `end_line` includes continuation lines and heredoc bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Span {
    pub line: usize,
    pub col: usize,
    pub end_line: usize,
}

/// Parser directives from the top of the file. `syntax` and `check` are recorded, never acted
/// on; `escape` is `\` unless `# escape=`` ` `` says otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Directives {
    pub syntax: Option<String>,
    pub escape: char,
    pub check: Option<String>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            syntax: None,
            escape: '\\',
            check: None,
        }
    }
}

/// A whole Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dockerfile {
    pub directives: Directives,
    /// ARGs declared before the first FROM (usable in FROM lines, and in stages that
    /// re-declare them).
    pub global_args: Vec<Arg>,
    pub stages: Vec<Stage>,
}

impl Dockerfile {
    /// The escape character in force (`\` or `` ` ``).
    pub fn escape(&self) -> char {
        self.directives.escape
    }

    /// A stage by name (case-insensitive, as BuildKit) or by index written as a number.
    pub fn find_stage(&self, name_or_index: &str) -> Option<usize> {
        if let Ok(i) = name_or_index.parse::<usize>() {
            return (i < self.stages.len()).then_some(i);
        }
        self.stage_by_name(name_or_index)
    }

    /// A stage by its `AS` name only (case-insensitive).
    pub fn stage_by_name(&self, name: &str) -> Option<usize> {
        let lower = name.to_ascii_lowercase();
        self.stages
            .iter()
            .position(|s| s.name.as_deref() == Some(lower.as_str()))
    }
}

/// One build stage: a FROM line and the instructions up to the next FROM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    /// The `AS` name, lower-cased (BuildKit compares stage names case-insensitively).
    pub name: Option<String>,
    /// The base as written (unexpanded: it may use global ARGs).
    pub base: String,
    /// `--platform` as written (unexpanded).
    pub platform: Option<String>,
    pub instructions: Vec<Instruction>,
    /// The span of the FROM instruction.
    pub span: Span,
}

impl Stage {
    /// The name BuildKit shows for this stage: its `AS` name, or `stage-<index>`.
    pub fn display_name(&self, index: usize) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None => format!("stage-{index}"),
        }
    }
}

/// One instruction (not FROM: that starts a [`Stage`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instruction {
    pub kind: InstructionKind,
    pub span: Span,
    /// The logical line as BuildKit sees it: continuation lines joined, comments inside the
    /// continuation dropped, heredoc bodies not included.
    pub original: String,
}

impl Instruction {
    /// The instruction keyword, upper-case (`RUN`, `COPY`…).
    pub fn keyword(&self) -> &'static str {
        self.kind.keyword()
    }
}

/// The instructions, with typed payloads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InstructionKind {
    /// `ARG a=b c`: one entry per declared name.
    Arg(Vec<Arg>),
    /// `ENV k=v k2="v 2"` or legacy `ENV k v`.
    Env(Vec<KeyValue>),
    /// `LABEL k=v …` (legacy `LABEL k v` accepted, as Docker does).
    Label(Vec<KeyValue>),
    Run(Run),
    Copy(CopyArgs),
    Add(CopyArgs),
    /// The path as written.
    Workdir(String),
    /// `user[:group]` as written.
    User(String),
    /// Port specs as written (`80`, `53/udp`, `$PORT`), one per word.
    Expose(Vec<String>),
    /// Mount points as written, one per word or JSON element.
    Volume(Vec<String>),
    Entrypoint(Command),
    Cmd(Command),
    /// `SHELL ["executable", "params"]` (JSON only).
    Shell(Vec<String>),
    StopSignal(String),
    Healthcheck(Healthcheck),
    OnBuild(OnBuild),
    Maintainer(String),
}

impl InstructionKind {
    /// The instruction keyword, upper-case.
    pub fn keyword(&self) -> &'static str {
        match self {
            InstructionKind::Arg(_) => "ARG",
            InstructionKind::Env(_) => "ENV",
            InstructionKind::Label(_) => "LABEL",
            InstructionKind::Run(_) => "RUN",
            InstructionKind::Copy(_) => "COPY",
            InstructionKind::Add(_) => "ADD",
            InstructionKind::Workdir(_) => "WORKDIR",
            InstructionKind::User(_) => "USER",
            InstructionKind::Expose(_) => "EXPOSE",
            InstructionKind::Volume(_) => "VOLUME",
            InstructionKind::Entrypoint(_) => "ENTRYPOINT",
            InstructionKind::Cmd(_) => "CMD",
            InstructionKind::Shell(_) => "SHELL",
            InstructionKind::StopSignal(_) => "STOPSIGNAL",
            InstructionKind::Healthcheck(_) => "HEALTHCHECK",
            InstructionKind::OnBuild(_) => "ONBUILD",
            InstructionKind::Maintainer(_) => "MAINTAINER",
        }
    }

    /// Whether Docker expands `$VARS` in this instruction's arguments with the stage's
    /// variables (ENV, ARG, LABEL, WORKDIR, USER, COPY/ADD, EXPOSE, VOLUME, STOPSIGNAL, and the
    /// `--mount` options of RUN). RUN/CMD/ENTRYPOINT command text, SHELL, HEALTHCHECK, ONBUILD
    /// and MAINTAINER are never expanded by the builder.
    pub fn expands_variables(&self) -> bool {
        matches!(
            self,
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
        )
    }
}

/// A declared build argument. `default` is unexpanded (quotes kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arg {
    pub name: String,
    pub default: Option<String>,
}

/// An ENV or LABEL pair. Both sides are unexpanded words (quotes kept): pass them through
/// [`crate::expand`] to get the final strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

/// Exec (JSON) or shell form of RUN/CMD/ENTRYPOINT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// `["executable", "arg"]`: run directly, no shell.
    Exec(Vec<String>),
    /// The text after the flags, run with the stage's SHELL (`/bin/sh -c` by default).
    Shell(String),
}

/// A heredoc attached to a RUN (or the heredoc sources of COPY/ADD, see [`InlineFile`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heredoc {
    /// The delimiter word, quotes removed (`EOF`).
    pub name: String,
    /// The body exactly as written, one `\n` after every line, leading tabs kept.
    pub content: String,
    /// `<<-`: leading tabs are stripped from the body and the terminator line.
    pub chomp: bool,
    /// False when the delimiter was quoted (`<<"EOF"`, `<<'EOF'`): no expansion in the body.
    pub expand: bool,
}

impl Heredoc {
    /// The body with leading tabs removed from every line when `chomp` is set.
    pub fn text(&self) -> String {
        if self.chomp {
            chomp_tabs(&self.content)
        } else {
            self.content.clone()
        }
    }
}

pub(crate) fn chomp_tabs(s: &str) -> String {
    s.split_inclusive('\n')
        .map(|l| l.trim_start_matches('\t'))
        .collect()
}

/// What BuildKit executes for a shell-form RUN that carries heredocs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HeredocCommand {
    /// `RUN <<EOF` whose body starts with `#!`: BuildKit writes the body to an executable file
    /// named after the delimiter and runs it directly (no shell). Not done for Windows images.
    Script { name: String, content: String },
    /// `RUN <<EOF` without a shebang: the body is run with the stage's shell.
    Inline(String),
    /// Anything else (`RUN python3 <<EOF`, several heredocs): the command line with every body
    /// and terminator appended, given to the shell, which does the heredoc redirections.
    Shell(String),
}

/// A RUN instruction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub command: Command,
    /// Heredocs in order of appearance (shell form only).
    pub heredocs: Vec<Heredoc>,
    pub mounts: Vec<RunMount>,
    pub network: Option<Network>,
    pub security: Option<Security>,
}

impl Run {
    /// How BuildKit turns heredocs into the command it runs; `None` without heredocs.
    pub fn heredoc_command(&self) -> Option<HeredocCommand> {
        let Command::Shell(cmd) = &self.command else {
            return None;
        };
        let first = self.heredocs.first()?;
        let single = crate::parser::parse_heredoc_word(cmd.trim()).is_some();
        if single {
            let data = first.text();
            if data.starts_with("#!") {
                return Some(HeredocCommand::Script {
                    name: first.name.clone(),
                    content: data,
                });
            }
            return Some(HeredocCommand::Inline(data));
        }
        let mut full = cmd.clone();
        for h in &self.heredocs {
            full.push('\n');
            full.push_str(&h.content);
            full.push_str(&h.name);
        }
        Some(HeredocCommand::Shell(full))
    }
}

/// `RUN --network=…`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Network {
    Default,
    None,
    Host,
}

/// `RUN --security=…`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Security {
    Sandbox,
    Insecure,
}

/// `--mount=type=…`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MountType {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

/// Cache mount sharing mode (`sharing=`); BuildKit's default is `shared`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sharing {
    Shared,
    Private,
    Locked,
}

/// One `RUN --mount=…` flag.
///
/// String options keep `$VARS` unexpanded; numeric options (`mode`, `uid`, `gid`, `size`) or
/// `type` written with a variable stay unset here and are filled by [`RunMount::expanded`], which
/// re-parses `spec` with the stage's variables, as BuildKit does at dispatch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunMount {
    /// The flag value as written (after flag quote removal).
    pub spec: String,
    pub kind: MountType,
    /// `target=`, `dst=`, `destination=`
    pub target: Option<String>,
    /// `source=`, `src=`
    pub source: Option<String>,
    /// `from=`: a stage name or an image; never expanded.
    pub from: Option<String>,
    pub id: Option<String>,
    pub sharing: Option<Sharing>,
    /// `mode=` (octal).
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// `readonly`/`ro`/`rw`; BuildKit's default is read-only for bind, secret and ssh mounts.
    pub readonly: bool,
    /// `required` (secret and ssh only).
    pub required: bool,
    /// `env=` (secret only): expose the secret as this environment variable.
    pub env: Option<String>,
    /// `size=` (tmpfs only), in bytes.
    pub size: Option<u64>,
}

/// Arguments of COPY and ADD. COPY-only fields (`from`, `parents`) are unset for ADD and
/// ADD-only fields (`checksum`, `keep_git_dir`) are unset for COPY.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CopyArgs {
    /// Sources as written (unexpanded words; heredoc sources are in `inline_files`).
    pub sources: Vec<String>,
    /// Heredoc sources (`COPY <<a.txt /dest/`), in order.
    pub inline_files: Vec<InlineFile>,
    /// The destination as written.
    pub dest: String,
    /// The JSON form was used.
    pub json: bool,
    /// `--from=`: a stage name, a stage index or an image.
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub parents: bool,
    pub exclude: Vec<String>,
    pub checksum: Option<String>,
    pub keep_git_dir: bool,
}

/// A file given inline to COPY/ADD with a heredoc.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InlineFile {
    /// The file name (the heredoc delimiter).
    pub name: String,
    /// The content, leading tabs already stripped for `<<-`.
    pub content: String,
    /// Expand `$VARS` in the content (unquoted delimiter), as BuildKit does for COPY.
    pub expand: bool,
}

/// HEALTHCHECK. `test` is Docker's `Healthcheck.Test` without the `NONE` case: `None` means
/// `HEALTHCHECK NONE`; otherwise `["CMD", args…]` (exec form) or `["CMD-SHELL", "cmd"]`.
/// Durations and retries are `None` when not given (the image keeps Docker's defaults).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Healthcheck {
    pub test: Option<Vec<String>>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub start_period: Option<Duration>,
    pub start_interval: Option<Duration>,
    pub retries: Option<u32>,
}

/// ONBUILD: the nested instruction, and the trigger text the engine stores in the image
/// config's `OnBuild` list (what [`crate::parse_onbuild_triggers`] reads back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnBuild {
    /// The trigger as BuildKit stores it: the instruction text after `ONBUILD`, followed by any
    /// heredoc bodies and terminators.
    pub trigger: String,
    pub instruction: Box<Instruction>,
}
