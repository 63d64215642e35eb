//! The built-in agents. Each is a function from its (already schema-checked) input to its output
//! JSON, given a [`Context`] to write files into and, when allowed, to ask the LLM; the catalog's
//! table (`catalog::BUILTINS`) names each one and says what its run gives it.
//!
//! Every agent does its real work deterministically; LLM-capable agents may ask the LLM first
//! and fall back to that work when none is configured or it fails, and say which path ran.

pub mod backend;
pub mod calculator;
pub mod code;
pub mod dates;
pub mod delivery;
pub mod enhanced;
pub mod frontend;
pub mod installers;
pub mod marketing;
mod model_planner;
pub mod orchestration;
pub mod planning;
mod project;
pub mod quality;
pub mod security;
mod templates;
pub mod translation;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

// What every agent works with, named here once for the agents below.
pub use crate::context::Context;
pub use crate::error::AgentError;

/// The input as the agent's own type. The schema has been checked already, so a failure here is
/// a disagreement between catalog and code, reported as the input's fault with serde's reason.
pub fn parse<T: DeserializeOwned>(input: &Value) -> Result<T, AgentError> {
    serde_json::from_value(input.clone()).map_err(|err| AgentError::InvalidInput(err.to_string()))
}

/// A model's answer without the fenced block models wrap JSON in however they are asked.
pub fn unfenced(text: &str) -> &str {
    text.trim()
        .trim_start_matches("```json")
        .trim_start_matches("```")
        .trim_end_matches("```")
        .trim()
}

#[derive(Deserialize)]
struct Greeting {
    #[serde(default)]
    name: Option<String>,
}

/// The smallest agent: proves the path from request to output (and is what `make bench` runs).
pub fn hello_world(input: &Value) -> Result<Value, AgentError> {
    let greeting: Greeting = parse(input)?;
    let name = greeting
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty());
    Ok(json!({ "message": format!("Hello, {}!", name.unwrap_or("World")) }))
}
