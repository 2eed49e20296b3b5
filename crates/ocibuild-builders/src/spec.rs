//! The builder data (`builders/*.toml`, embedded) and its small template language.
//!
//! Each file holds, for one language: the files that detect it, the toolchain and runtime
//! profiles, per-release version tables (`[releases.*]`), language rules (`[rules]`), the build
//! environment, cache mounts, step and layer templates, the image defaults and entrypoint forms.
//!
//! Templates: in any string, `{{name}}` is replaced by a variable the language module computed
//! (an unknown name is an error); an argv/list element that is exactly `{{@name}}` is replaced
//! by the elements of a list variable (possibly none). Steps, layers and env entries may carry
//! `when = "fact"` / `when = ["fact", "!other"]` (all must hold); a step's `network` is `true`,
//! `false` or such a condition. Facts are booleans the language module computed; an unknown
//! fact is an error. A step's `vars = { name = "template" }` replace variables the language
//! module defined, for that step only: its argv, its env and the build environment it gets are
//! rendered with them (Java's dependency step reads the JVM's class-data-sharing archive but
//! never writes it).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::{BuildersError, Result};
use crate::plan::{CacheMount, LayerSpec, Step};

pub(crate) const GO_TOML: &str = include_str!("../../../builders/go.toml");
pub(crate) const NODE_TOML: &str = include_str!("../../../builders/node.toml");
pub(crate) const PYTHON_TOML: &str = include_str!("../../../builders/python.toml");
pub(crate) const JAVA_TOML: &str = include_str!("../../../builders/java.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Spec<R, X> {
    pub lang: String,
    pub detect: DetectSpec,
    pub toolchain: ProfileSpec,
    pub runtime: RuntimeSpec,
    pub releases: BTreeMap<String, R>,
    pub rules: X,
    pub source: SourceSpec,
    #[serde(default)]
    pub outputs: Vec<String>,
    #[serde(default)]
    pub env: Vec<EnvSpec>,
    #[serde(default)]
    pub cache: Vec<CacheSpec>,
    #[serde(default)]
    pub steps: Vec<StepSpec>,
    #[serde(default)]
    pub layers: Vec<LayerTemplate>,
    pub image: ImageSpec,
    #[serde(default)]
    pub entrypoints: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub host_tools: Vec<HostToolSpec>,
}

/// `[[host_tools]]`: how `--toolchain host` checks a host program before building.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HostToolSpec {
    /// The program; probed when a planned step runs it, or always with `requirement`.
    pub program: String,
    /// The command that prints its version.
    pub version: Vec<String>,
    /// Whether the app's version requirement (go.mod, engines.node…) applies to it.
    #[serde(default)]
    pub requirement: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DetectSpec {
    /// Any of these files at the app root selects the language.
    pub files: Vec<String>,
    /// Files that select the language only to refuse it with a clear message
    /// (`build.gradle` → "Gradle is not supported yet").
    #[serde(default)]
    pub unsupported: BTreeMap<String, String>,
    /// File extensions that select the language when no manifest of any language matched.
    #[serde(default)]
    pub weak_extensions: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProfileSpec {
    pub profile: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuntimeSpec {
    pub profile: String,
    pub variant: String,
    #[serde(default)]
    pub packages: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SourceSpec {
    pub dir: String,
    #[serde(default)]
    pub exclude: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum Cond {
    Bool(bool),
    One(String),
    All(Vec<String>),
}

impl Default for Cond {
    fn default() -> Self {
        Cond::Bool(true)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EnvSpec {
    pub name: String,
    pub value: String,
    #[serde(default)]
    pub when: Cond,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CacheSpec {
    pub name: String,
    pub target: String,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub when: Cond,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StepSpec {
    pub name: String,
    pub argv: Vec<String>,
    pub cwd: String,
    #[serde(default = "no")]
    pub network: Cond,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub when: Cond,
    /// The only app files the step reads (those that exist), when `inputs_when` holds: the
    /// engine copies just them before the step, so an edit elsewhere reuses its result.
    #[serde(default)]
    pub inputs: Option<Vec<String>>,
    #[serde(default)]
    pub inputs_when: Cond,
    /// Template variables of this step only, rendered with the builder's: they replace
    /// variables the builder defines, in the step's argv and env and in the build environment
    /// it gets (`vars = { jvm_cds = "{{jvm_cds_deps}}" }`).
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
}

fn no() -> Cond {
    Cond::Bool(false)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LayerTemplate {
    pub name: String,
    pub from: String,
    pub to: String,
    #[serde(default)]
    pub include: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    #[serde(default)]
    pub key_files: Vec<String>,
    #[serde(default)]
    pub when: Cond,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImageSpec {
    pub workdir: String,
    pub user: String,
    #[serde(default)]
    pub env: Vec<String>,
}

/// The build environment a step gets, from the inputs it is rendered with.
pub(crate) type BaseEnv<'a> = dyn Fn(&Inputs) -> Result<Vec<(String, String)>> + 'a;

/// A template variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Var {
    Str(String),
    List(Vec<String>),
}

/// What a language module computed: facts for conditions, variables for templates.
#[derive(Debug, Clone, Default)]
pub(crate) struct Inputs {
    pub facts: BTreeMap<&'static str, bool>,
    pub vars: BTreeMap<&'static str, Var>,
}

impl Inputs {
    pub fn fact(&mut self, name: &'static str, v: bool) -> &mut Self {
        self.facts.insert(name, v);
        self
    }
    pub fn var(&mut self, name: &'static str, v: impl Into<String>) -> &mut Self {
        self.vars.insert(name, Var::Str(v.into()));
        self
    }
    pub fn list(&mut self, name: &'static str, v: Vec<String>) -> &mut Self {
        self.vars.insert(name, Var::List(v));
        self
    }
}

/// Parse one embedded builder file.
pub(crate) fn load<R: DeserializeOwned, X: DeserializeOwned>(
    file: &str,
    text: &str,
) -> Result<Spec<R, X>> {
    toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| format!("line {}: ", crate::error::line_of(text, s.start)))
            .unwrap_or_default();
        BuildersError::data(file, format!("{line}{}", e.message().trim()))
    })
}

impl<R, X> Spec<R, X> {
    pub fn file(&self) -> String {
        format!("{}.toml", self.lang)
    }

    fn err(&self, detail: impl Into<String>) -> BuildersError {
        BuildersError::data(&self.file(), detail)
    }

    /// The release table for `release`.
    pub fn release(&self, release: &str) -> Result<&R> {
        self.releases
            .get(release)
            .ok_or_else(|| self.err(format!("no [releases.{release}] table")))
    }

    pub fn holds(&self, cond: &Cond, inp: &Inputs) -> Result<bool> {
        let one = |c: &str| -> Result<bool> {
            let (neg, name) = match c.trim().strip_prefix('!') {
                Some(n) => (true, n.trim()),
                None => (false, c.trim()),
            };
            match inp.facts.get(name) {
                Some(v) => Ok(*v != neg),
                None => Err(self.err(format!(
                    "condition uses unknown fact {name:?} (known: {})",
                    inp.facts.keys().copied().collect::<Vec<_>>().join(", ")
                ))),
            }
        };
        match cond {
            Cond::Bool(b) => Ok(*b),
            Cond::One(c) => one(c),
            Cond::All(cs) => {
                let mut all = true;
                for c in cs {
                    // evaluate every name so a typo is caught even after a false one
                    all &= one(c)?;
                }
                Ok(all)
            }
        }
    }

    /// Substitute `{{name}}` in one string.
    pub fn render_str(&self, s: &str, inp: &Inputs) -> Result<String> {
        let mut out = String::new();
        let mut rest = s;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| self.err(format!("unclosed {{{{ in {s:?}")))?;
            let name = after[..end].trim();
            match inp.vars.get(name) {
                Some(Var::Str(v)) => out.push_str(v),
                Some(Var::List(_)) => {
                    return Err(self.err(format!(
                        "{s:?}: list variable {name:?} must stand alone as \"{{{{@{name}}}}}\""
                    )));
                }
                None => {
                    return Err(self.err(format!("{s:?} uses unknown variable {name:?}")));
                }
            }
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Render a list, splicing `{{@name}}` elements.
    pub fn render_list(&self, items: &[String], inp: &Inputs) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for it in items {
            if let Some(name) = it
                .trim()
                .strip_prefix("{{@")
                .and_then(|r| r.strip_suffix("}}"))
            {
                match inp.vars.get(name.trim()) {
                    Some(Var::List(v)) => out.extend(v.iter().cloned()),
                    Some(Var::Str(v)) => out.push(v.clone()),
                    None => {
                        return Err(self.err(format!("{it:?} uses unknown variable {name:?}")));
                    }
                }
            } else {
                out.push(self.render_str(it, inp)?);
            }
        }
        Ok(out)
    }

    /// The build environment every step gets.
    pub fn build_env(&self, inp: &Inputs) -> Result<Vec<(String, String)>> {
        let mut out: Vec<(String, String)> = Vec::new();
        for e in &self.env {
            if self.holds(&e.when, inp)? {
                set_env(&mut out, &e.name, self.render_str(&e.value, inp)?);
            }
        }
        Ok(out)
    }

    pub fn cache_mounts(&self, inp: &Inputs) -> Result<Vec<CacheMount>> {
        let mut out = Vec::new();
        for c in &self.cache {
            if !self.holds(&c.when, inp)? {
                continue;
            }
            let mut env = Vec::new();
            for (k, v) in &c.env {
                env.push((k.clone(), self.render_str(v, inp)?));
            }
            out.push(CacheMount {
                name: c.name.clone(),
                target: self.render_str(&c.target, inp)?,
                env,
            });
        }
        Ok(out)
    }

    /// Steps whose conditions hold, each with the environment `base_env` gives for its inputs
    /// (the builder's, with the step's own `vars`) + its own env.
    pub fn steps(&self, inp: &Inputs, base_env: &BaseEnv<'_>) -> Result<Vec<Step>> {
        let mut out = Vec::new();
        // the environment of the steps without vars of their own, made once
        let mut shared: Option<Vec<(String, String)>> = None;
        for s in &self.steps {
            if !self.holds(&s.when, inp)? {
                continue;
            }
            let own;
            let (inp, mut env) = if s.vars.is_empty() {
                let env = match &shared {
                    Some(e) => e.clone(),
                    None => shared.insert(base_env(inp)?).clone(),
                };
                (inp, env)
            } else {
                let mut i = inp.clone();
                for (k, v) in &s.vars {
                    let Some((&name, _)) = inp.vars.get_key_value(k.as_str()) else {
                        return Err(self.err(format!(
                            "step {} sets variable {k:?}, which the builder does not define",
                            s.name
                        )));
                    };
                    i.vars.insert(name, Var::Str(self.render_str(v, inp)?));
                }
                own = i;
                (&own, base_env(&own)?)
            };
            for (k, v) in &s.env {
                set_env(&mut env, k, self.render_str(v, inp)?);
            }
            let argv = self.render_list(&s.argv, inp)?;
            if argv.is_empty() {
                return Err(self.err(format!("step {} renders to an empty argv", s.name)));
            }
            out.push(Step {
                name: s.name.clone(),
                argv,
                env,
                cwd: self.render_str(&s.cwd, inp)?,
                network: self.holds(&s.network, inp)?,
                inputs: match &s.inputs {
                    Some(list) if self.holds(&s.inputs_when, inp)? => {
                        Some(self.render_list(list, inp)?)
                    }
                    _ => None,
                },
            });
        }
        Ok(out)
    }

    pub fn layers(&self, inp: &Inputs) -> Result<Vec<LayerSpec>> {
        let mut out = Vec::new();
        for l in &self.layers {
            if !self.holds(&l.when, inp)? {
                continue;
            }
            out.push(LayerSpec {
                name: l.name.clone(),
                from: self.render_str(&l.from, inp)?,
                to: self.render_str(&l.to, inp)?,
                include: self.render_list(&l.include, inp)?,
                exclude: self.render_list(&l.exclude, inp)?,
                key_files: self.render_list(&l.key_files, inp)?,
            });
        }
        Ok(out)
    }

    /// The entrypoint form `name`, rendered.
    pub fn entrypoint(&self, name: &str, inp: &Inputs) -> Result<Vec<String>> {
        let t = self
            .entrypoints
            .get(name)
            .ok_or_else(|| self.err(format!("no entrypoints.{name}")))?;
        self.render_list(t, inp)
    }
}

/// Set `k` in an ordered env list (replace in place, else append).
pub(crate) fn set_env(env: &mut Vec<(String, String)>, k: &str, v: String) {
    match env.iter_mut().find(|(ek, _)| ek == k) {
        Some(e) => e.1 = v,
        None => env.push((k.to_string(), v)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    type S = Spec<toml::Value, toml::Value>;

    fn spec(extra: &str) -> S {
        load(
            "t.toml",
            &format!(
                r#"
lang = "t"
detect = {{ files = ["x"] }}
toolchain = {{ profile = "p" }}
runtime = {{ profile = "r", variant = "nonroot" }}
releases = {{}}
rules = {{}}
source = {{ dir = "/src" }}
image = {{ workdir = "/app", user = "65532:65532" }}
{extra}
"#
            ),
        )
        .unwrap()
    }

    #[test]
    fn templates_and_conditions() {
        let s = spec(
            r#"
env = [ { name = "A", value = "{{v}}" }, { name = "B", value = "b", when = "!on" } ]
[[steps]]
name = "one"
argv = ["tool", "{{@args}}", "-o", "/out/{{v}}"]
cwd = "/src"
network = "on"
[[steps]]
name = "two"
argv = ["x"]
cwd = "/src"
when = ["on", "!off"]
[[steps]]
name = "three"
argv = ["y"]
cwd = "/src"
when = "off"
"#,
        );
        let mut inp = Inputs::default();
        inp.fact("on", true)
            .fact("off", false)
            .var("v", "bin")
            .list("args", vec!["-a".into(), "-b".into()]);
        let env = s.build_env(&inp).unwrap();
        assert_eq!(env, vec![("A".to_string(), "bin".to_string())]);
        let steps = s.steps(&inp, &|i| s.build_env(i)).unwrap();
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[0].argv, ["tool", "-a", "-b", "-o", "/out/bin"]);
        assert!(steps[0].network);
        assert!(!steps[1].network);
        assert_eq!(steps[1].name, "two");
    }

    #[test]
    fn a_steps_vars_replace_the_builders_for_that_step_and_its_environment() {
        let s = spec(
            r#"
env = [{ name = "OPTS", value = "-x{{file}}" }]
[[steps]]
name = "deps"
argv = ["t", "{{file}}"]
cwd = "/src"
vars = { file = "{{deps_file}}" }
[[steps]]
name = "build"
argv = ["t", "{{file}}"]
cwd = "/src"
"#,
        );
        let mut inp = Inputs::default();
        inp.var("file", "a").var("deps_file", "b");
        let steps = s.steps(&inp, &|i| s.build_env(i)).unwrap();
        assert_eq!(steps[0].argv, ["t", "b"]);
        assert_eq!(steps[0].env, [("OPTS".to_string(), "-xb".to_string())]);
        assert_eq!(steps[1].argv, ["t", "a"]);
        assert_eq!(steps[1].env, [("OPTS".to_string(), "-xa".to_string())]);
        // only the builder's variables can be replaced
        let s =
            spec("[[steps]]\nname = \"a\"\nargv = [\"x\"]\ncwd = \"/\"\nvars = { nope = \"1\" }\n");
        let err = s.steps(&inp, &|_| Ok(Vec::new())).unwrap_err();
        assert!(
            err.to_string().contains("step a sets variable \"nope\""),
            "{err}"
        );
    }

    #[test]
    fn unknown_names_are_errors() {
        let s = spec("[[steps]]\nname = \"a\"\nargv = [\"{{nope}}\"]\ncwd = \"/\"\n");
        let err = s
            .steps(&Inputs::default(), &|_| Ok(Vec::new()))
            .unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
        let s = spec("[[steps]]\nname = \"a\"\nargv = [\"x\"]\ncwd = \"/\"\nwhen = \"typo\"\n");
        let err = s
            .steps(&Inputs::default(), &|_| Ok(Vec::new()))
            .unwrap_err();
        assert!(err.to_string().contains("typo"), "{err}");
        let s = spec("[[steps]]\nname = \"a\"\nargv = [\"{{x\"]\ncwd = \"/\"\n");
        assert!(s.steps(&Inputs::default(), &|_| Ok(Vec::new())).is_err());
    }

    #[test]
    fn embedded_builder_files_parse() {
        let go = crate::go::spec().unwrap();
        assert_eq!(go.lang, "go");
        assert_eq!(crate::node::spec().unwrap().lang, "node");
        assert_eq!(crate::python::spec().unwrap().lang, "python");
        assert_eq!(crate::java::spec().unwrap().lang, "java");
        for r in ["trixie", "bookworm"] {
            assert!(go.release(r).is_ok(), "{r}");
        }
        assert!(go.release("sid").is_err());
    }

    #[test]
    fn set_env_replaces_in_place() {
        let mut e = vec![("A".to_string(), "1".to_string()), ("B".into(), "2".into())];
        set_env(&mut e, "A", "3".into());
        set_env(&mut e, "C", "4".into());
        assert_eq!(e[0].1, "3");
        assert_eq!(e[2].0, "C");
    }
}
