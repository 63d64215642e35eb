//! What every agent declares, built-in or custom: name, category, description, version, and
//! the JSON Schemas of its input and output. The bottom of the crate's agent layers: the catalog
//! and the custom agents' definitions both compile their declarations here, so both are checked
//! by the same rules and named the same way.

use serde::Deserialize;
use serde_json::Value;

use sankalpa_kit::schema::{Schema, Violation};

/// The categories an agent may be in.
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

#[cfg(test)]
mod tests {
    use super::*;

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
