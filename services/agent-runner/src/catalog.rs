//! The agents a caller can run: the built-in ones described by `catalog/agents.json`, and what
//! every agent (built-in or custom) declares — name, category, version, input and output schema.
//!
//! The catalog is checked as a whole at start and the service refuses to start on any problem:
//! a malformed entry, an invalid schema, a duplicate name, an entry without an implementation or
//! an implementation without an entry. A broken catalog found at start is a deploy that never
//! went live; found at run time, it would be a user's failed run.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use serde::Deserialize;
use serde_json::Value;

use sankalpa_kit::schema::{Schema, Violation};

/// The catalog compiled into the binary, so a container needs no file beside it.
const EMBEDDED: &str = include_str!("../../../catalog/agents.json");

pub const CATEGORIES: &[&str] = &[
    "builder",
    "testing",
    "deployment",
    "marketing",
    "enhanced",
    "meta",
    "orchestration",
    "custom",
];

/// What every agent declares.
#[derive(Debug)]
pub struct AgentSpec {
    pub name: String,
    pub category: String,
    pub description: String,
    pub version: String,
    pub input: Schema,
    pub output: Schema,
    pub llm_capable: bool,
}

/// A runnable agent: its declaration and where its behaviour comes from.
#[derive(Debug)]
pub struct Agent {
    pub spec: AgentSpec,
    pub kind: Kind,
}

#[derive(Debug)]
pub enum Kind {
    /// Implemented in [`crate::agents`].
    Builtin,
    /// Defined by a tenant.
    Custom(Box<crate::custom::Custom>),
}

/// The declaration fields as written in the catalog and in custom definitions.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSpec {
    pub name: String,
    pub category: String,
    pub description: String,
    pub version: String,
    pub input_schema: Value,
    pub output_schema: Value,
    #[serde(default)]
    pub llm_capable: bool,
}

/// An agent name: `[a-z][a-z0-9_]{0,63}`.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// A semantic version by the SemVer 2.0 grammar: `MAJOR.MINOR.PATCH`, an optional
/// `-prerelease` and `+build`, no leading zeros.
fn valid_version(version: &str) -> bool {
    semver::Version::parse(version).is_ok()
}

impl RawSpec {
    /// Checks every field, naming problems from `at` (e.g. `agents[3]`).
    pub fn compile(self, at: &str, problems: &mut Vec<Violation>) -> Option<AgentSpec> {
        let before = problems.len();
        let mut problem = |field: &str, message: &str| {
            problems.push(Violation {
                path: format!("{at}{field}"),
                message: message.to_owned(),
            })
        };
        if !valid_name(&self.name) {
            problem(".name", "must match [a-z][a-z0-9_]{0,63}");
        }
        if !CATEGORIES.contains(&self.category.as_str()) {
            problem(
                ".category",
                &format!("must be one of {}", CATEGORIES.join(", ")),
            );
        }
        if self.description.trim().is_empty() {
            problem(".description", "must not be empty");
        }
        if !valid_version(&self.version) {
            problem(".version", "must be a semantic version such as 1.0.0");
        }
        let input =
            compile_object_schema(&self.input_schema, &format!("{at}.input_schema"), problems);
        let output = compile_object_schema(
            &self.output_schema,
            &format!("{at}.output_schema"),
            problems,
        );
        if problems.len() > before {
            return None;
        }
        Some(AgentSpec {
            name: self.name,
            category: self.category,
            description: self.description,
            version: self.version,
            input: input?,
            output: output?,
            llm_capable: self.llm_capable,
        })
    }
}

fn compile_object_schema(
    source: &Value,
    at: &str,
    problems: &mut Vec<Violation>,
) -> Option<Schema> {
    match Schema::compile(source, at) {
        Ok(schema) if schema.is_object_schema() => Some(schema),
        Ok(_) => {
            problems.push(Violation {
                path: format!("{at}.type"),
                message: "must be \"object\": agents take and give JSON objects".to_owned(),
            });
            None
        }
        Err(found) => {
            problems.extend(found);
            None
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    agents: Vec<Value>,
}

/// The built-in agents, ordered by category then name.
pub struct Catalog {
    agents: Vec<Arc<Agent>>,
    by_name: HashMap<String, Arc<Agent>>,
}

impl Catalog {
    /// The catalog at `path`, or the embedded one.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let text = match path {
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| format!("could not read the catalog {}", path.display()))?,
            None => EMBEDDED.to_owned(),
        };
        Self::parse(&text, crate::agents::BUILTIN).map_err(|problems| {
            let listed: Vec<String> = problems
                .iter()
                .map(|v| format!("{}: {}", v.path, v.message))
                .collect();
            anyhow::anyhow!("the agent catalog is broken: {}", listed.join("; "))
        })
    }

    /// Parses and checks a catalog whose agents must be exactly `implemented`.
    pub fn parse(text: &str, implemented: &[&str]) -> Result<Self, Vec<Violation>> {
        let document: Document = serde_json::from_str(text).map_err(|err| {
            vec![Violation {
                path: "catalog".to_owned(),
                message: format!("not a catalog document: {err}"),
            }]
        })?;
        let mut problems = Vec::new();
        let mut by_name: HashMap<String, Arc<Agent>> = HashMap::new();
        for (i, entry) in document.agents.into_iter().enumerate() {
            let at = format!("agents[{i}]");
            let raw: RawSpec = match serde_json::from_value(entry) {
                Ok(raw) => raw,
                Err(err) => {
                    problems.push(Violation {
                        path: at,
                        message: err.to_string(),
                    });
                    continue;
                }
            };
            let Some(spec) = raw.compile(&at, &mut problems) else {
                continue;
            };
            if !implemented.contains(&spec.name.as_str()) {
                problems.push(Violation {
                    path: format!("{at}.name"),
                    message: format!("no built-in agent is named {:?}", spec.name),
                });
            }
            let name = spec.name.clone();
            let agent = Arc::new(Agent {
                spec,
                kind: Kind::Builtin,
            });
            if by_name.insert(name.clone(), agent).is_some() {
                problems.push(Violation {
                    path: format!("{at}.name"),
                    message: format!("{name:?} is listed twice"),
                });
            }
        }
        for name in implemented {
            if !by_name.contains_key(*name) {
                problems.push(Violation {
                    path: "agents".to_owned(),
                    message: format!("the built-in agent {name:?} has no entry"),
                });
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut agents: Vec<Arc<Agent>> = by_name.values().cloned().collect();
        agents.sort_by(|a, b| order(a).cmp(&order(b)));
        Ok(Self { agents, by_name })
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Agent>> {
        self.by_name.get(name)
    }

    pub fn agents(&self) -> &[Arc<Agent>] {
        &self.agents
    }
}

/// The listing order: category, then name.
pub fn order(agent: &Agent) -> (&str, &str) {
    (&agent.spec.category, &agent.spec.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_catalog_is_complete_and_valid() {
        let catalog = Catalog::load(None).expect("the shipped catalog loads");
        assert_eq!(catalog.agents().len(), crate::agents::BUILTIN.len());
    }

    #[test]
    fn every_problem_of_a_broken_catalog_is_named() {
        let text = r#"{"agents": [
            {"name": "hello_world", "category": "custom", "description": "hi", "version": "1.0",
             "input_schema": {"type": "object"}, "output_schema": {"type": "array"}},
            {"name": "Bad Name", "category": "nope", "description": "", "version": "1.0.0",
             "input_schema": {"type": "object"}, "output_schema": {"type": "object"}}
        ]}"#;
        let problems = Catalog::parse(text, &["hello_world", "other"])
            .err()
            .expect("the catalog is refused");
        let paths: Vec<&str> = problems.iter().map(|v| v.path.as_str()).collect();
        for expected in [
            "agents[0].version",
            "agents[0].output_schema.type",
            "agents[1].name",
            "agents[1].category",
            "agents[1].description",
            "agents",
        ] {
            assert!(
                paths.contains(&expected),
                "{expected} missing from {paths:?}"
            );
        }
    }

    #[test]
    fn versions_follow_the_semver_grammar() {
        for good in ["1.0.0", "0.3.12", "2.0.0-rc.1", "1.0.0-beta.2+build.7"] {
            assert!(valid_version(good), "{good}");
        }
        for bad in ["1.0", "v1.0.0", "01.0.0", "1.0.0-", "1.0.0.0", ""] {
            assert!(!valid_version(bad), "{bad}");
        }
    }
}
