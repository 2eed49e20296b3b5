//! The stage DAG: which stages a target needs, in which order, and which can run together.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::error::PlanError;
use crate::expand::expand;
use crate::model::{Dockerfile, Instruction, InstructionKind, MountType};

/// What a stage starts from, after global-ARG expansion of its FROM line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BaseRef {
    /// `FROM scratch`
    Scratch,
    /// `FROM <earlier stage name>`
    Stage(usize),
    /// An image reference, expanded.
    Image(String),
}

/// One stage as the planner resolved it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedStage {
    pub index: usize,
    pub name: Option<String>,
    pub base: BaseRef,
    /// `--platform`, expanded with the global ARGs.
    pub platform: Option<String>,
    /// Images (not stages) read by `COPY --from=` and `RUN --mount=from=`, in order, deduplicated.
    pub images: Vec<String>,
    /// Part of the build for the chosen target.
    pub needed: bool,
}

/// The plan for one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagePlan {
    /// Index (into `Dockerfile::stages`) of the target stage.
    pub target: usize,
    /// The stages the target needs, itself included, in a topological order (file order: a
    /// stage can only use earlier stages).
    pub order: Vec<usize>,
    /// For every stage of the Dockerfile (same indices), the earlier stages it uses: its FROM
    /// base, `COPY --from`, `RUN --mount=from=`, and those of the ONBUILD triggers of a base
    /// stage. Sorted, no duplicates.
    pub deps: Vec<Vec<usize>>,
    /// The needed stages grouped by depth: every stage of a level only depends on stages of
    /// earlier levels, so the stages of one level can be built in parallel.
    pub levels: Vec<Vec<usize>>,
    /// Every stage resolved (same indices as `Dockerfile::stages`).
    pub stages: Vec<PlannedStage>,
    /// The global ARGs after build-arg overrides and default expansion (unset ones left out),
    /// plus the automatic platform args that were given.
    pub global_args: BTreeMap<String, String>,
}

/// Names of the automatic platform ARGs BuildKit defines without an ARG instruction.
pub const PLATFORM_ARGS: [&str; 8] = [
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
];

/// Resolves the stage graph for `target` (default: the last stage).
///
/// `build_args` are `--build-arg` values; they override global ARG defaults, and any of the
/// [`PLATFORM_ARGS`] present (see [`platform_args`]) are available in FROM lines without an
/// ARG instruction, as in BuildKit.
pub fn stage_graph(
    df: &Dockerfile,
    target: Option<&str>,
    build_args: &BTreeMap<String, String>,
) -> Result<StagePlan, PlanError> {
    let escape = df.escape();
    let global_args = meta_args(df, build_args)?;
    let lookup = |n: &str| global_args.get(n).cloned();

    let mut stages: Vec<PlannedStage> = Vec::with_capacity(df.stages.len());
    let mut deps: Vec<Vec<usize>> = Vec::with_capacity(df.stages.len());
    for (i, st) in df.stages.iter().enumerate() {
        let line = st.span.line;
        let base_name = expand(&st.base, &lookup, escape)
            .map_err(|source| PlanError::Expand { line, source })?;
        if base_name.is_empty() {
            return Err(PlanError::BlankBase {
                line,
                base: st.base.clone(),
            });
        }
        let platform = match &st.platform {
            None => None,
            Some(p) => {
                let v = expand(p, &lookup, escape)
                    .map_err(|source| PlanError::Expand { line, source })?;
                if v.is_empty() {
                    return Err(PlanError::BlankPlatform {
                        line,
                        expr: p.clone(),
                    });
                }
                Some(v)
            }
        };
        let lower = base_name.to_ascii_lowercase();
        let base = if let Some(j) = (0..i)
            .rev()
            .find(|&j| df.stages[j].name.as_deref() == Some(lower.as_str()))
        {
            BaseRef::Stage(j)
        } else if lower == "scratch" {
            BaseRef::Scratch
        } else {
            BaseRef::Image(base_name)
        };
        let mut d = BTreeSet::new();
        let mut images: Vec<String> = Vec::new();
        if let BaseRef::Stage(j) = base {
            d.insert(j);
            // ONBUILD triggers of a base stage run at the start of this one
            for ins in &df.stages[j].instructions {
                if let InstructionKind::OnBuild(ob) = &ins.kind {
                    references(df, i, &ob.instruction, &mut d, &mut images)?;
                }
            }
        }
        for ins in &st.instructions {
            references(df, i, ins, &mut d, &mut images)?;
        }
        stages.push(PlannedStage {
            index: i,
            name: st.name.clone(),
            base,
            platform,
            images,
            needed: false,
        });
        deps.push(d.into_iter().collect());
    }

    let target = match target {
        None => df.stages.len().saturating_sub(1),
        Some(t) => df
            .stage_by_name(t)
            .ok_or_else(|| PlanError::UnknownTarget {
                target: t.to_string(),
                stages: df.stages.iter().filter_map(|s| s.name.clone()).collect(),
            })?,
    };

    // reachability from the target
    let mut needed = vec![false; df.stages.len()];
    let mut stack = vec![target];
    while let Some(s) = stack.pop() {
        if needed[s] {
            continue;
        }
        needed[s] = true;
        stack.extend(deps[s].iter().copied());
    }
    let order: Vec<usize> = (0..df.stages.len()).filter(|&i| needed[i]).collect();
    let mut level = vec![0usize; df.stages.len()];
    let mut levels: Vec<Vec<usize>> = Vec::new();
    for &i in &order {
        // deps are all earlier, so their levels are known
        let l = deps[i].iter().map(|&d| level[d] + 1).max().unwrap_or(0);
        level[i] = l;
        if levels.len() <= l {
            levels.resize(l + 1, Vec::new());
        }
        levels[l].push(i);
    }
    for (i, s) in stages.iter_mut().enumerate() {
        s.needed = needed[i];
    }
    Ok(StagePlan {
        target,
        order,
        deps,
        levels,
        stages,
        global_args,
    })
}

/// The global ARG values: build args override defaults; defaults are expanded with the
/// ARGs before them (and the platform args).
fn meta_args(
    df: &Dockerfile,
    build_args: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, PlanError> {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for name in PLATFORM_ARGS {
        if let Some(v) = build_args.get(name) {
            env.insert(name.to_string(), v.clone());
        }
    }
    for a in &df.global_args {
        if let Some(v) = build_args.get(&a.name) {
            env.insert(a.name.clone(), v.clone());
            continue;
        }
        if let Some(def) = &a.default {
            let v = expand(def, &|n: &str| env.get(n).cloned(), df.escape()).map_err(|source| {
                PlanError::Expand {
                    line: df.stages.first().map_or(1, |s| s.span.line),
                    source,
                }
            })?;
            env.insert(a.name.clone(), v);
        }
    }
    Ok(env)
}

fn references(
    df: &Dockerfile,
    current: usize,
    ins: &Instruction,
    deps: &mut BTreeSet<usize>,
    images: &mut Vec<String>,
) -> Result<(), PlanError> {
    let line = ins.span.line;
    let stage_name = df.stages[current].display_name(current);
    let add_image = |images: &mut Vec<String>, s: &str| {
        if !images.iter().any(|i| i == s) {
            images.push(s.to_string());
        }
    };
    match &ins.kind {
        InstructionKind::Copy(c) => {
            let Some(from) = &c.from else {
                return Ok(());
            };
            let what = "COPY --from".to_string();
            if let Ok(index) = from.parse::<usize>() {
                if index >= df.stages.len() {
                    return Err(PlanError::InvalidStageIndex {
                        line,
                        index,
                        count: df.stages.len(),
                    });
                }
                check_earlier(df, current, index, line, &stage_name, &what, from)?;
                deps.insert(index);
            } else if let Some(j) = df.stage_by_name(from) {
                check_earlier(df, current, j, line, &stage_name, &what, from)?;
                deps.insert(j);
            } else {
                add_image(images, from);
            }
        }
        InstructionKind::Run(r) => {
            for m in &r.mounts {
                let Some(from) = &m.from else {
                    continue;
                };
                if m.kind == MountType::Tmpfs {
                    continue;
                }
                // BuildKit resolves mount sources by stage name only, never by index
                if let Some(j) = df.stage_by_name(from) {
                    check_earlier(df, current, j, line, &stage_name, "RUN --mount=from", from)?;
                    deps.insert(j);
                } else {
                    add_image(images, from);
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn check_earlier(
    df: &Dockerfile,
    current: usize,
    j: usize,
    line: usize,
    stage_name: &str,
    what: &str,
    reference: &str,
) -> Result<(), PlanError> {
    if j == current {
        return Err(PlanError::SelfReference {
            stage: stage_name.to_string(),
            line,
            what: format!("{what}={reference}"),
        });
    }
    if j > current {
        return Err(PlanError::ForwardReference {
            stage: stage_name.to_string(),
            line,
            what: format!("{what}={reference}"),
            reference: df.stages[j].display_name(j),
            defined_line: df.stages[j].span.line,
        });
    }
    Ok(())
}

/// The automatic platform ARGs for a target and a build platform written `os/arch[/variant]`
/// (`linux/amd64`, `linux/arm/v7`, `linux/arm64`): TARGETPLATFORM, TARGETOS, TARGETARCH,
/// TARGETVARIANT and the BUILD* equivalents. Architectures are normalised as containerd does
/// (`x86_64` → `amd64`, `aarch64` → `arm64`, `arm` gets `v7`, `arm64/v8` loses its variant).
pub fn platform_args(target_platform: &str, build_platform: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for (prefix, p) in [("TARGET", target_platform), ("BUILD", build_platform)] {
        let (os, arch, variant) = normalize_platform(p);
        let full = if variant.is_empty() {
            format!("{os}/{arch}")
        } else {
            format!("{os}/{arch}/{variant}")
        };
        m.insert(format!("{prefix}PLATFORM"), full);
        m.insert(format!("{prefix}OS"), os);
        m.insert(format!("{prefix}ARCH"), arch);
        m.insert(format!("{prefix}VARIANT"), variant);
    }
    m
}

fn normalize_platform(p: &str) -> (String, String, String) {
    let mut parts = p.trim().split('/');
    let os = parts.next().unwrap_or("").to_ascii_lowercase();
    let arch = parts.next().unwrap_or("").to_ascii_lowercase();
    let variant = parts.next().unwrap_or("").to_ascii_lowercase();
    let (arch, variant) = match (arch.as_str(), variant.as_str()) {
        ("x86_64" | "x86-64" | "amd64", v) => ("amd64", v.to_string()),
        ("aarch64" | "arm64", "v8" | "8" | "") => ("arm64", String::new()),
        ("aarch64" | "arm64", v) => ("arm64", v.to_string()),
        ("armhf", _) => ("arm", "v7".to_string()),
        ("armel", _) => ("arm", "v6".to_string()),
        ("arm", "") => ("arm", "v7".to_string()),
        ("arm", v @ ("5" | "6" | "7" | "8")) => ("arm", format!("v{v}")),
        ("i386" | "i486" | "i586" | "i686", v) => ("386", v.to_string()),
        (a, v) => (a, v.to_string()),
    };
    (os, arch.to_string(), variant)
}
