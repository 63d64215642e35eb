//! Describing a project in words and getting the chain that builds it (`/api/nlp/process`).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::problem::FieldViolation;

/// The longest request the planner reads, in characters (its `goal`'s bound).
pub const MAX_COMMAND_CHARS: usize = 5000;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"command": "A shop with products, orders and customers, with login and payments"}))]
pub struct ProcessCommand {
    /// What to build, in words: 3 to 5,000 characters.
    #[schema(min_length = 3, max_length = 5000)]
    pub command: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<CommandContext>,
    /// `preferred` (when absent): a model reads the command when one is configured (the
    /// tenant's default model, else the fleet's LLM), its reading checked and sent back with
    /// its problems up to 3 times, the rules planning when it keeps failing; `off`: the rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm: Option<crate::agents::LlmChoice>,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct CommandContext {
    /// The project's name, 1 to 100 characters; without it, a short slug of the command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 100)]
    pub project_name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProcessedCommand {
    /// A chain definition (the DAG form) that builds what the command asks for.
    #[schema(value_type = crate::chain_definition::ChainDefinition)]
    pub chain: Value,
    /// The input to run `chain` with (`POST /api/chains/execute` with both).
    #[schema(value_type = Object)]
    pub input: Value,
    pub analysis: CommandAnalysis,
    /// Whether the orchestrator accepts `chain` as it is, for this caller (its agents exist).
    pub execution_ready: bool,
    /// Why `execution_ready` is false, each `field` a path into `chain`.
    pub violations: Vec<FieldViolation>,
    /// Agents the command called for that the chain leaves out, and why (they need what the
    /// command does not give, such as a domain).
    #[schema(value_type = Vec<Object>)]
    pub not_in_chain: Vec<Value>,
    /// Who read the command: `model` (its reading checked) or `rules`.
    pub planned_by: PlannedBy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlannedBy {
    Model,
    Rules,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CommandAnalysis {
    /// Steps in the chain.
    pub agent_count: u32,
    /// `sequential`, `parallel` or `dag`.
    pub chain_type: String,
    /// `low`, `medium` or `high`.
    pub estimated_complexity: String,
    /// The entities read from the command (PascalCase, singular), with plausible fields in
    /// `input.entities`.
    pub identified_entities: Vec<String>,
    /// The features read from the command (auth, payments, tests, ci, deploy, ...).
    pub identified_requirements: Vec<String>,
}
