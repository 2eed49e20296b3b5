//! Errors: a located [`ParseError`] rendered like rustc, and one enum for the rest.

use std::fmt;
use std::path::PathBuf;

/// A syntax error in a Dockerfile, with the place and the offending line.
///
/// Its `Display` renders like rustc:
///
/// ```text
/// Dockerfile:3:5: error: unknown flag: --form
///   | COPY --form=build /app /app
///   |      ^
///   = help: did you mean --from?
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub file: String,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub col: usize,
    /// The source line the error points into (without its newline).
    pub source_line: String,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}:{}:{}: error: {}",
            self.file, self.line, self.col, self.message
        )?;
        writeln!(f, "  | {}", self.source_line)?;
        // keep tabs so the caret lines up in a terminal
        let pad: String = self
            .source_line
            .chars()
            .take(self.col.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        write!(f, "  | {pad}^")?;
        if let Some(h) = &self.hint {
            write!(f, "\n  = help: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ParseError {}

/// A variable expansion failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    /// `${a?msg}` / `${a:?msg}` with `a` unset (or empty, for `:?`).
    #[error("{name}: {message}")]
    Required { name: String, message: String },
    #[error("syntax error: missing '}}' in {word:?}")]
    MissingBrace { word: String },
    #[error("syntax error: bad substitution in {word:?}")]
    BadSubstitution { word: String },
    #[error("unsupported modifier ({modifier}) in substitution in {word:?}")]
    UnsupportedModifier { modifier: char, word: String },
    #[error("unexpected end of statement while looking for matching {quote} in {word:?}")]
    UnterminatedQuote { quote: char, word: String },
}

/// A `.dockerignore` problem.
#[derive(Debug, thiserror::Error)]
pub enum IgnoreError {
    #[error(".dockerignore line {line}: invalid pattern {pattern:?}: {message}")]
    Pattern {
        line: usize,
        pattern: String,
        message: String,
    },
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A stage-graph problem (after parsing: references between stages, target selection).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("target stage {target:?} could not be found; stages: {}", list_or_none(.stages))]
    UnknownTarget { target: String, stages: Vec<String> },
    #[error(
        "line {line}: {what} refers to stage {reference:?}, which is defined after stage {stage:?} (line {defined_line}); a stage can only use earlier stages"
    )]
    ForwardReference {
        stage: String,
        line: usize,
        what: String,
        reference: String,
        defined_line: usize,
    },
    #[error("line {line}: {what} refers to stage {stage:?} itself")]
    SelfReference {
        stage: String,
        line: usize,
        what: String,
    },
    #[error("line {line}: invalid stage index {index} ({count} stages)")]
    InvalidStageIndex {
        line: usize,
        index: usize,
        count: usize,
    },
    #[error("line {line}: base name ({base}) should not be blank")]
    BlankBase { line: usize, base: String },
    #[error("line {line}: empty platform value from expression {expr}")]
    BlankPlatform { line: usize, expr: String },
    #[error("line {line}: {source}")]
    Expand {
        line: usize,
        #[source]
        source: ExpandError,
    },
}

fn list_or_none(stages: &[String]) -> String {
    if stages.is_empty() {
        "(none has a name)".to_string()
    } else {
        stages.join(", ")
    }
}

/// Every error of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error(transparent)]
    Expand(#[from] ExpandError),
    #[error(transparent)]
    Ignore(#[from] IgnoreError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("invalid --mount={spec}: {message}")]
    InvalidMount { spec: String, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
