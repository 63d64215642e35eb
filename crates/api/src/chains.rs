//! Chains: versioned definitions, the catalog's templates, and durable runs of them
//! (`/api/chains/...`), and the tenant's chain settings.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

use crate::agents::{Artifact, RunError};
use crate::chain_definition::ChainDefinition;
use crate::problem::FieldViolation;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Chain {
    /// Absent for templates, which are addressed by name.
    pub id: Option<String>,
    pub name: String,
    pub description: String,
    /// `tenant` (stored by the tenant) or `template` (from the catalog, read-only).
    pub origin: String,
    pub version: u32,
    pub latest_version: u32,
    /// The definition as submitted; absent in listings.
    #[schema(value_type = Option<ChainDefinition>)]
    pub definition: Option<Box<RawValue>>,
    pub step_count: u32,
    pub created_by: String,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub installed_from: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChainList {
    pub chains: Vec<Chain>,
    /// Pass as `page_token` for the next page; absent on the last page.
    pub next_page_token: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `tenant` or `template`; both when absent.
    pub origin: Option<ChainOriginFilter>,
    /// At most 200; the service default (50) when absent or 0.
    #[param(maximum = 200)]
    pub page_size: Option<u32>,
    /// `next_page_token` of the previous page: the id (a UUID) the page before ended with.
    #[param(
        pattern = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})?$"
    )]
    pub page_token: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChainOriginFilter {
    Tenant,
    Template,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"name": "build and test", "description": "Builds an API, then its tests", "definition": {"agents": ["api_builder", "test_writer"], "mode": "sequential"}}))]
pub struct CreateChain {
    /// Unique in the tenant; 1 to 100 characters once trimmed.
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: String,
    /// At most 2,000 characters.
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub description: String,
    /// The DAG form `{steps: [...]}`, the simple form `{agents: [...], mode}`, or the
    /// conditional form `{condition, then: [...], else: [...]}`.
    #[schema(value_type = ChainDefinition)]
    pub definition: Box<RawValue>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"definition": {"agents": ["api_builder"], "mode": "sequential"}, "expected_version": 1}))]
pub struct UpdateChain {
    /// The new version's definition, in any form.
    #[schema(value_type = ChainDefinition)]
    pub definition: Box<RawValue>,
    /// Unchanged when absent; 1 to 100 characters once trimmed.
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: Option<String>,
    /// Unchanged when absent; at most 2,000 characters.
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    /// Only if the chain's latest version is still this one; 409 otherwise.
    #[schema(minimum = 1, maximum = 2147483647)]
    #[serde(default, deserialize_with = "crate::json::whole")]
    pub expected_version: Option<u32>,
}

#[derive(Debug, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VersionQuery {
    /// The latest when absent; ignored for templates.
    #[param(minimum = 1, maximum = 2147483647)]
    pub version: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"definition": {"agents": ["api_builder", "test_writer"], "mode": "sequential"}}))]
pub struct ValidateChain {
    /// Any JSON: a valid definition is a `ChainDefinition`; anything else is answered with its
    /// violations.
    #[schema(value_type = serde_json::Value)]
    pub definition: Box<RawValue>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChainValidation {
    pub valid: bool,
    /// Each problem, `field` a JSON path into the definition (e.g. `steps[3].needs[0]`).
    pub violations: Vec<FieldViolation>,
    /// When valid: the DAG form, simple and conditional forms expanded.
    #[schema(value_type = Option<ChainDefinition>)]
    pub normalized_definition: Option<Box<RawValue>>,
    pub step_count: u32,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"template": "hello-sequence", "input": {"name": "Ada"}, "wait": true}))]
pub struct ExecuteChain {
    /// A stored chain to run (with `version`, the latest when absent) ...
    #[schema(format = Uuid)]
    pub chain_id: Option<String>,
    #[schema(minimum = 1, maximum = 2147483647)]
    #[serde(default, deserialize_with = "crate::json::whole")]
    pub version: Option<u32>,
    /// ... or a template, by name ...
    pub template: Option<String>,
    /// ... or a definition run without being stored: exactly one of the three.
    #[schema(value_type = Option<ChainDefinition>)]
    pub definition: Option<Box<RawValue>>,
    /// The chain input, a JSON object; `{}` when absent.
    #[schema(value_type = Option<Object>)]
    pub input: Option<Box<RawValue>>,
    /// Answer once the run has finished (200), or after `wait_timeout_ms` (202, still running).
    #[serde(default)]
    pub wait: bool,
    /// 30,000 when absent or 0; a longer wait is cut to 300,000. At most 2^63 - 1, as an int64.
    #[schema(maximum = 9223372036854775807_u64)]
    #[serde(default, deserialize_with = "crate::json::whole")]
    pub wait_timeout_ms: Option<u64>,
    /// The memory session the steps share: up to 256 ASCII letters, digits, `_`, `-`, `:`; a
    /// new `run-<run id>` when absent or empty.
    #[schema(max_length = 256, pattern = r"^[A-Za-z0-9_:-]*$")]
    pub session_id: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChainRun {
    pub id: String,
    pub chain_id: Option<String>,
    pub chain_version: Option<u32>,
    pub template: Option<String>,
    pub chain_name: String,
    /// `pending`, `running`, `waiting` (only approvals are left, waiting for a decision),
    /// `completed`, `failed` or `cancelled`.
    pub status: String,
    pub cancel_requested: bool,
    #[schema(value_type = Option<Object>)]
    pub input: Option<Box<RawValue>>,
    /// Every completed step's output: `{"<step id>": <output>, ...}`.
    #[schema(value_type = Option<Object>)]
    pub output: Option<Box<RawValue>>,
    /// Why the run failed.
    pub error: Option<RunError>,
    pub session_id: String,
    /// The artifact workspace of the steps: `/api/artifacts/{workspace_id}`.
    pub workspace_id: String,
    pub idempotency_key: Option<String>,
    /// The definition being run, DAG form; absent in listings.
    #[schema(value_type = Option<ChainDefinition>)]
    pub definition: Option<Box<RawValue>>,
    /// Every step; absent in listings.
    pub steps: Vec<StepRun>,
    pub created_by: String,
    pub created_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The run whose chain step started this one; absent for a run a caller started.
    pub parent_run_id: Option<String>,
    /// That chain step's id in the parent run.
    pub parent_step: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StepRun {
    pub id: String,
    /// `agent`, `map` (an agent step with `for_each`: its output is the list of its items'
    /// outputs, in item order), `approval` or `chain` (a child run).
    #[schema(example = "agent")]
    pub kind: String,
    /// The agent it runs (once per item for a map step); empty for an approval or chain step.
    pub agent: String,
    /// `pending` (not started, or its first attempt began under 250 ms ago: an attempt that
    /// ends that soon has its start written with its end), `running`, `waiting` (an approval
    /// step waiting for its decision), `completed`, `failed`, `skipped` or `cancelled`.
    pub status: String,
    pub attempts: u32,
    pub agent_run_id: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_ms: u64,
    #[schema(value_type = Option<Object>)]
    pub input: Option<Box<RawValue>>,
    #[schema(value_type = Option<Object>)]
    pub output: Option<Box<RawValue>>,
    pub error: Option<RunError>,
    pub skip_reason: Option<String>,
    pub artifacts: Vec<Artifact>,
    /// A chain step's child run (`/api/chains/runs/{id}`), of its latest attempt.
    pub child_run_id: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RunList {
    /// Newest first, without steps, input, output or definition.
    pub runs: Vec<ChainRun>,
    /// Pass as `page_token` for the next page; absent on the last page.
    pub next_page_token: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    /// Only runs in these states, comma-separated (at most 6): `pending,running`.
    #[param(
        pattern = r"^((pending|running|waiting|completed|failed|cancelled)(,(pending|running|waiting|completed|failed|cancelled)){0,5})?$"
    )]
    pub status: Option<String>,
    /// Only runs of this stored chain.
    #[param(
        pattern = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})?$"
    )]
    pub chain_id: Option<String>,
    /// At most 200; the service default (50) when absent or 0.
    #[param(maximum = 200)]
    pub page_size: Option<u32>,
    /// `next_page_token` of the previous page: the id (a UUID) the page before ended with.
    #[param(
        pattern = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})?$"
    )]
    pub page_token: Option<String>,
    /// Only runs created at or after this time (RFC 3339, years 1 to 9999):
    /// `2026-12-05T09:00:00Z`.
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// Only runs created before this time (RFC 3339, years 1 to 9999); not after `since`, it
    /// lists no run.
    #[param(format = DateTime)]
    pub until: Option<String>,
}

/// A decision on an approval step; the body is optional.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"input": {"region": "eu"}, "comment": "go ahead"}))]
pub struct StepDecision {
    /// Any JSON, at most 65536 bytes nested at most 32 levels: approved, the steps after it
    /// read it as `${steps.<step>.input}`.
    #[schema(value_type = Option<Object>)]
    pub input: Option<Box<RawValue>>,
    /// At most 2000 characters.
    #[schema(max_length = 2000)]
    pub comment: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChainSettings {
    /// Days a finished run (completed, failed or cancelled) is kept, with its steps, after it
    /// finished; then it is deleted. 0 keeps runs forever.
    #[schema(minimum = 0, maximum = 3650)]
    pub retention_days: u32,
    /// True while the tenant has set nothing and the service's default applies.
    pub is_default: bool,
    /// When the tenant last changed them; absent while the default applies.
    pub updated_at: Option<DateTime<Utc>>,
    /// Who last changed them; absent while the default applies.
    pub updated_by: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"retention_days": 90}))]
pub struct UpdateChainSettings {
    /// Days a finished run is kept: 1 to 3,650, or 0 to keep runs forever.
    #[schema(minimum = 0, maximum = 3650)]
    pub retention_days: i64,
}
