//! Agents: the catalog, one agent's run and its files, custom agent definitions
//! (`/api/agents/...`).
//!
//! Inputs, outputs, schemas and definitions are JSON passed through as sent ([`RawValue`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

use crate::problem::FieldViolation;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Agent {
    /// Unique among the built-in agents and the tenant's custom agents.
    pub name: String,
    /// builder, testing, deployment, marketing, enhanced, meta, orchestration or custom.
    pub category: String,
    pub description: String,
    pub version: String,
    /// The JSON Schema the input must satisfy.
    #[schema(value_type = Object)]
    pub input_schema: Box<RawValue>,
    /// The JSON Schema the output satisfies.
    #[schema(value_type = Object)]
    pub output_schema: Box<RawValue>,
    /// Whether the agent uses the LLM when one is configured.
    pub llm_capable: bool,
    /// `builtin` or `custom`.
    pub origin: String,
    /// Custom agents only.
    pub custom: Option<CustomInfo>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CustomInfo {
    /// The definition document.
    #[schema(value_type = Object)]
    pub definition: Box<RawValue>,
    /// 1 on creation, one more on each update.
    pub revision: u64,
    pub created_by: String,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    /// `<marketplace item id>@<version>` when installed from the marketplace.
    pub installed_from: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AgentList {
    /// By category, then name.
    pub agents: Vec<Agent>,
    /// Pass as `page_token` for the next page; absent on the last page.
    pub next_page_token: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this category; every one when absent or empty.
    #[param(
        pattern = r"^(builder|testing|deployment|marketing|enhanced|meta|orchestration|custom)?$"
    )]
    pub category: Option<String>,
    /// `builtin` or `custom`; both when absent.
    pub origin: Option<AgentOriginFilter>,
    /// The service default (50) when absent or 0; a larger page than 200 is cut to 200.
    #[param(value_type = Option<u64>, maximum = 4294967295_u64)]
    pub page_size: Option<u32>,
    /// `next_page_token` of the previous page: an offset.
    #[param(pattern = r"^(\+?[0-9]{1,19})?$")]
    pub page_token: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentOriginFilter {
    Builtin,
    Custom,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"agent": "calculator", "input": {"expression": "2 * (3 + 4)"}, "llm": "off"}))]
pub struct ExecuteAgent {
    /// The agent's name.
    pub agent: String,
    /// The input, checked against the agent's input schema; `{}` when absent.
    #[schema(value_type = Option<Object>)]
    pub input: Option<Box<RawValue>>,
    /// The memory session the agent may read and write: at most 128 bytes (not characters).
    #[schema(max_length = 128)]
    pub session_id: Option<String>,
    /// How long the agent may run, in milliseconds: at most `SANKALPA_AGENTS_MAX_DEADLINE_MS`
    /// (900,000 by default, the maximum stated here); 60,000 when absent or 0.
    #[schema(maximum = 900000)]
    #[serde(default, deserialize_with = "crate::json::whole")]
    pub deadline_ms: Option<u64>,
    /// `off`: deterministic behaviour only; `preferred`: the LLM when one is configured. The
    /// agent's default when absent.
    pub llm: Option<LlmChoice>,
    /// The model to ask, `provider/model` (one of the tenant's providers and a model it lists);
    /// the tenant's default model when absent or empty, else the fleet's LLM.
    #[schema(max_length = 264, pattern = r"^([a-z0-9_-]+/[^\s\u0000-\u001f]+)?$")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Names the run, `[A-Za-z0-9_-]{1,128}`, unique in the tenant; generated when absent. A
    /// named run runs once: asked again with the same agent and input, the answer is that
    /// run's (kept 24 hours), and with another agent or input, 409. Knowing the id before the
    /// answer, a client can watch the run's events (`GET /api/events`) as it runs.
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,128}$")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Publish the model's text as it is written, as `agents.<tenant>.<agent>.delta` events
    /// (`run_id`, `seq`, `text`), which `GET /api/events` streams: only for a run that asks a
    /// model for text, at most 256 a run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stream_deltas: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LlmChoice {
    Off,
    Preferred,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AgentRun {
    pub run_id: String,
    pub agent: String,
    pub agent_version: String,
    /// `completed`, `failed` or `cancelled`.
    pub status: String,
    /// The output, valid against the agent's output schema; null unless completed.
    #[schema(value_type = Option<Object>)]
    pub output: Option<Box<RawValue>>,
    /// Files the run wrote (download them from `/api/artifacts/{workspace_id}`).
    pub artifacts: Vec<Artifact>,
    pub workspace_id: String,
    pub duration_ms: u64,
    /// Whether the LLM path ran.
    pub llm_used: bool,
    pub llm_model: Option<String>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Why it did not complete.
    pub error: Option<RunError>,
    pub session_id: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Artifact {
    /// Relative to the workspace root, e.g. `backend/app/main.py`.
    pub path: String,
    pub size_bytes: u64,
    /// Hex SHA-256 of the content.
    pub sha256: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RunError {
    /// Stable and machine-readable: invalid_input, invalid_output, deadline_exceeded,
    /// cancelled, agent_failed, llm_failed, unavailable, internal, dependency_failed.
    pub code: String,
    pub message: String,
}

#[derive(Debug, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UpdateQuery {
    /// Only if the agent's revision is still this one; 409 otherwise.
    pub expected_revision: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AgentValidation {
    pub valid: bool,
    /// Each problem, `field` a JSON path into the definition.
    pub violations: Vec<FieldViolation>,
    /// The agent the definition describes, when valid (not stored).
    pub agent: Option<Agent>,
}
