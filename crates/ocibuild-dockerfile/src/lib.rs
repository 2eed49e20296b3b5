//! # ocibuild-dockerfile — the Dockerfile frontend
//!
//! Turns Dockerfile text into a typed model with spans for every instruction, expands
//! variables the way BuildKit does, matches `.dockerignore` with Docker's semantics, and plans
//! the stage graph (which stages a target needs, in which order, which are independent).
//! Errors point at a line and column and render like rustc.
//!
//! May depend on: plain Rust crates (serde, globset, walkdir). Must never: run commands, touch
//! the network, resolve images, print to the terminal, or act on `# syntax=` (it is recorded,
//! never followed). Lowering to the engine's plan lives with the engine; this crate only
//! describes what the Dockerfile says.

mod duration;
pub mod error;
pub mod expand;
pub mod ignore;
pub mod model;
mod mount;
mod parser;
pub mod pathmatch;
pub mod plan;

pub use error::{Error, ExpandError, IgnoreError, ParseError, PlanError, Result};
pub use expand::{expand, expand_words, split_words};
pub use ignore::{DockerIgnore, walk_context};
pub use model::*;
pub use parser::{parse, parse_onbuild_triggers};
pub use pathmatch::SourcePattern;
pub use plan::{BaseRef, PLATFORM_ARGS, PlannedStage, StagePlan, platform_args, stage_graph};
