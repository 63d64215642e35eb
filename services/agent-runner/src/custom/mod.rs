//! Custom agents: defined by a tenant in a JSON document, stored in `agents.custom_agents`,
//! listed beside the built-in agents and run the same way.
//!
//! A definition declares the catalog fields (name, category, description, version, input and
//! output schema) and either a `template` — output fields and files rendered from the input — or
//! a `prompt` for the LLM. The module is layered by job, each importing only from those before
//! it: [`template`] (the language), [`compile`] (a definition's checks), [`cache`] (definitions
//! kept compiled), [`store`] (Postgres), and [`run`] (one run of a custom agent, given the
//! run's context).
//!
//! A template can repeat an input field any number of times, so what it renders is bounded
//! while it renders: one run's output, files and prompt together take at most the bytes the
//! service allows (`SANKALPA_AGENTS_MAX_TEMPLATE_OUTPUT_BYTES`), and the run fails as
//! `output_too_large` at the first piece past them. A definition itself is at most
//! [`compile::MAX_DEFINITION_BYTES`], with the schema bounds of [`sankalpa_kit::schema`].

pub mod cache;
pub mod compile;
pub mod run;
pub mod store;
pub mod template;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::spec::AgentSpec;
use compile::Behaviour;

/// A tenant's agent: its declaration, what it does, and what is stored beside its definition.
#[derive(Debug)]
pub struct CustomAgent {
    pub spec: AgentSpec,
    pub behaviour: Behaviour,
    /// The definition document as the tenant wrote it.
    pub definition: Value,
    pub revision: u64,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub installed_from: String,
}
