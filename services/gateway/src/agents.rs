//! Agents: the catalog (built-in and the tenant's custom agents), running one agent, custom agent
//! definitions and a run's files, in front of agent-runner (`/api/agents/...`,
//! `/api/artifacts/{run_id}`, the spec's routes).
//!
//! Inputs, outputs, schemas and definitions are JSON in REST and JSON text on the wire; they
//! pass through as the text the client or the service sent ([`RawValue`]). The gateway checks
//! agents:read / agents:execute / agents:write before calling; agent-runner checks again and
//! scopes custom agents and artifacts to the caller's tenant. A bad input is a 400 naming the
//! field as the client sent it (`input.expression`), an unknown agent a 404.

use std::sync::Arc;

use axum::body::Body as HttpBody;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use sankalpa_kit::problem::{FieldViolation, Problem};
use sankalpa_proto::v1;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::authn::Caller;
use crate::json::{Body, Page, json_text, next_page, timestamp};

const READ: &str = "agents:read";
const EXECUTE: &str = "agents:execute";
const WRITE: &str = "agents:write";

/// agent-runner's default run deadline, used when the request names none.
const DEFAULT_DEADLINE_MS: u64 = 60_000;

pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(enhanced))
        .routes(routes!(execute))
        .routes(routes!(create_custom))
        .routes(routes!(validate_custom))
        .routes(routes!(update_custom, delete_custom))
        .routes(routes!(get_one))
        .routes(routes!(artifacts))
}

/// A problem from agent-runner, its wire field names turned into this API's.
fn problem(status: tonic::Status) -> Problem {
    crate::json::renamed(status, |field| {
        field
            .replacen("input_json", "input", 1)
            .replacen("definition_json", "definition", 1)
            .trim_start_matches("page.")
            .to_owned()
    })
}

#[derive(Debug, Serialize, ToSchema)]
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
    pub origin: &'static str,
    /// Custom agents only.
    pub custom: Option<CustomInfo>,
}

#[derive(Debug, Serialize, ToSchema)]
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

impl TryFrom<v1::Agent> for Agent {
    type Error = Problem;

    fn try_from(agent: v1::Agent) -> Result<Self, Problem> {
        let origin = match agent.origin() {
            v1::AgentOrigin::Custom => "custom",
            v1::AgentOrigin::Builtin | v1::AgentOrigin::Unspecified => "builtin",
        };
        let custom = match agent.custom {
            Some(custom) => Some(CustomInfo {
                definition: json_text("agent-runner", custom.definition_json)?,
                revision: custom.revision,
                created_by: custom.created_by,
                created_at: timestamp(custom.created_at),
                updated_at: timestamp(custom.updated_at),
                installed_from: Some(custom.installed_from).filter(|from| !from.is_empty()),
            }),
            None => None,
        };
        Ok(Self {
            name: agent.name,
            category: agent.category,
            description: agent.description,
            version: agent.version,
            input_schema: json_text("agent-runner", agent.input_schema_json)?,
            output_schema: json_text("agent-runner", agent.output_schema_json)?,
            llm_capable: agent.llm_capable,
            origin,
            custom,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AgentList {
    /// By category, then name.
    pub agents: Vec<Agent>,
    /// Pass as `page_token` for the next page; absent on the last page.
    pub next_page_token: Option<String>,
}

/// The paging of agent-runner's lists, as the document states it (read as [`Page`]).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AgentsPage {
    /// The service default (50) when absent or 0; a larger page than 200 is cut to 200.
    #[param(value_type = Option<u64>, maximum = 4294967295_u64)]
    pub page_size: Option<u32>,
    /// `next_page_token` of the previous page: an offset.
    #[param(pattern = r"^(\+?[0-9]{1,19})?$")]
    pub page_token: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
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

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentOriginFilter {
    Builtin,
    Custom,
}

#[derive(Debug, Deserialize, ToSchema)]
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
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LlmChoice {
    Off,
    Preferred,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AgentRun {
    pub run_id: String,
    pub agent: String,
    pub agent_version: String,
    /// `completed`, `failed` or `cancelled`.
    pub status: &'static str,
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

#[derive(Debug, Serialize, ToSchema)]
pub struct Artifact {
    /// Relative to the workspace root, e.g. `backend/app/main.py`.
    pub path: String,
    pub size_bytes: u64,
    /// Hex SHA-256 of the content.
    pub sha256: String,
}

impl From<v1::Artifact> for Artifact {
    fn from(artifact: v1::Artifact) -> Self {
        Self {
            path: artifact.path,
            size_bytes: artifact.size_bytes,
            sha256: artifact.sha256,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunError {
    /// Stable and machine-readable: invalid_input, invalid_output, deadline_exceeded,
    /// cancelled, agent_failed, llm_failed, unavailable, internal, dependency_failed.
    pub code: String,
    pub message: String,
}

impl From<v1::RunError> for RunError {
    fn from(error: v1::RunError) -> Self {
        Self {
            code: error.code,
            message: error.message,
        }
    }
}

/// JSON text that may be empty (nothing produced) as an optional value.
pub(crate) fn optional_json(service: &str, text: String) -> Result<Option<Box<RawValue>>, Problem> {
    if text.trim().is_empty() {
        Ok(None)
    } else {
        json_text(service, text).map(Some)
    }
}

impl TryFrom<v1::AgentRun> for AgentRun {
    type Error = Problem;

    fn try_from(run: v1::AgentRun) -> Result<Self, Problem> {
        let status = match run.status() {
            v1::AgentRunStatus::Completed => "completed",
            v1::AgentRunStatus::Failed => "failed",
            v1::AgentRunStatus::Cancelled => "cancelled",
            v1::AgentRunStatus::Unspecified => "unknown",
        };
        Ok(Self {
            run_id: run.run_id,
            agent: run.agent,
            agent_version: run.agent_version,
            status,
            output: optional_json("agent-runner", run.output_json)?,
            artifacts: run.artifacts.into_iter().map(Artifact::from).collect(),
            workspace_id: run.workspace_id,
            duration_ms: run.duration_ms,
            llm_used: run.llm_used,
            llm_model: Some(run.llm_model).filter(|model| !model.is_empty()),
            prompt_tokens: run.prompt_tokens,
            completion_tokens: run.completion_tokens,
            error: run.error.map(RunError::from),
            session_id: Some(run.session_id).filter(|session| !session.is_empty()),
            started_at: timestamp(run.started_at),
            finished_at: timestamp(run.finished_at),
        })
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UpdateQuery {
    /// Only if the agent's revision is still this one; 409 otherwise.
    pub expected_revision: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AgentValidation {
    pub valid: bool,
    /// Each problem, `field` a JSON path into the definition.
    pub violations: Vec<FieldViolation>,
    /// The agent the definition describes, when valid (not stored).
    pub agent: Option<Agent>,
}

async fn list_agents(
    state: &AppState,
    caller: &Caller,
    category: String,
    origin: Option<AgentOriginFilter>,
    page: Page,
) -> Result<axum::Json<AgentList>, Problem> {
    caller.require(READ)?;
    let origin = match origin {
        None => v1::AgentOrigin::Unspecified,
        Some(AgentOriginFilter::Builtin) => v1::AgentOrigin::Builtin,
        Some(AgentOriginFilter::Custom) => v1::AgentOrigin::Custom,
    };
    let request = v1::ListAgentsRequest {
        category,
        origin: origin.into(),
        page: Some(page.into()),
    };
    let response = state
        .agents()
        .list_agents(state.request_as(caller, request)?)
        .await
        .map_err(problem)?
        .into_inner();
    Ok(axum::Json(AgentList {
        agents: response
            .agents
            .into_iter()
            .map(Agent::try_from)
            .collect::<Result<_, _>>()?,
        next_page_token: next_page(response.page),
    }))
}

/// The built-in agents and the tenant's custom agents, by category then name.
#[utoipa::path(
    get,
    path = "/api/agents",
    tag = "agents",
    params(ListQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "One page of agents", body = AgentList),
        (status = 400, description = "An unknown category", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing agents:read", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> Result<axum::Json<AgentList>, Problem> {
    let page = Page {
        page_size: query.page_size,
        page_token: query.page_token,
    };
    list_agents(
        &state,
        &caller,
        query.category.unwrap_or_default(),
        query.origin,
        page,
    )
    .await
}

/// The agents of the enhanced category (copilot, self_replicator, ...), as the spec lists them.
#[utoipa::path(
    get,
    path = "/api/agents/enhanced",
    tag = "agents",
    params(AgentsPage),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "One page of the enhanced agents", body = AgentList),
        (status = 403, description = "Missing agents:read", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn enhanced(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(page): Query<Page>,
) -> Result<axum::Json<AgentList>, Problem> {
    list_agents(&state, &caller, "enhanced".to_owned(), None, page).await
}

/// One agent, built-in or custom, with its input and output schemas.
#[utoipa::path(
    get,
    path = "/api/agents/{name}",
    tag = "agents",
    params(("name" = String, Path, description = "The agent's name")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The agent", body = Agent),
        (status = 403, description = "Missing agents:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such agent", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn get_one(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<axum::Json<Agent>, Problem> {
    caller.require(READ)?;
    let agent = state
        .agents()
        .get_agent(state.request_as(&caller, v1::GetAgentRequest { name })?)
        .await
        .map_err(problem)?;
    Ok(axum::Json(agent.into_inner().try_into()?))
}

/// Runs one agent to its end. An agent that fails or runs out of time still answers 200: the
/// run happened, and its `status` and `error` say how it ended.
#[utoipa::path(
    post,
    path = "/api/agents/execute",
    tag = "agents",
    request_body = ExecuteAgent,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The finished run", body = AgentRun),
        (status = 400, description = "The input does not fit the agent's schema, naming the field (e.g. `input.expression`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing agents:execute", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such agent", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn execute(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(body): Body<ExecuteAgent>,
) -> Result<axum::Json<AgentRun>, Problem> {
    caller.require(EXECUTE)?;
    let deadline_ms = body.deadline_ms.unwrap_or(0);
    let llm = match body.llm {
        None => v1::LlmMode::Unspecified,
        Some(LlmChoice::Off) => v1::LlmMode::Off,
        Some(LlmChoice::Preferred) => v1::LlmMode::Preferred,
    };
    let message = v1::ExecuteAgentRequest {
        agent: body.agent,
        input_json: body
            .input
            .map(|input| input.get().to_owned())
            .unwrap_or_default(),
        session_id: body.session_id,
        run_id: None,
        deadline_ms,
        llm: llm.into(),
        workspace_id: None,
    };
    let mut request = state.request_as(&caller, message)?;
    // The call lasts as long as the agent may run, plus the usual margin: the gRPC deadline
    // would otherwise cut every agent that runs longer than an ordinary call.
    let run_for = match deadline_ms {
        0 => DEFAULT_DEADLINE_MS,
        ms => ms,
    };
    request.set_timeout(std::time::Duration::from_millis(run_for) + state.grpc_timeout);
    let run = state
        .agents()
        .execute_agent(request)
        .await
        .map_err(problem)?;
    Ok(axum::Json(run.into_inner().try_into()?))
}

/// The example definition of the custom agent routes: a template agent greeting by name.
fn custom_agent_example() -> serde_json::Value {
    serde_json::json!({
        "name": "greeter",
        "category": "custom",
        "description": "Greets someone by name.",
        "version": "1.0.0",
        "input_schema": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 100}}
        },
        "output_schema": {"type": "object"},
        "template": {"output": {"greeting": "Hello, {{ name }}!"}}
    })
}

/// Defines a custom agent in the caller's tenant. The body is the definition document: name,
/// category, description, version, input_schema, output_schema, and a `template` or `prompt`.
#[utoipa::path(
    post,
    path = "/api/agents/custom",
    tag = "agents",
    request_body(content = Object, description = "The definition document", example = custom_agent_example),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "The agent", body = Agent),
        (status = 400, description = "An invalid definition, naming the field (`definition.template.files[0].path`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing agents:write", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The name is taken", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn create_custom(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(definition): Body<Box<RawValue>>,
) -> Result<(StatusCode, axum::Json<Agent>), Problem> {
    caller.require(WRITE)?;
    let request = v1::CreateCustomAgentRequest {
        definition_json: definition.get().to_owned(),
        installed_from: String::new(),
    };
    let agent = state
        .agents()
        .create_custom_agent(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?;
    Ok((
        StatusCode::CREATED,
        axum::Json(agent.into_inner().try_into()?),
    ))
}

/// Replaces a custom agent's definition; its revision increases.
#[utoipa::path(
    put,
    path = "/api/agents/custom/{name}",
    tag = "agents",
    params(("name" = String, Path, description = "The custom agent's name"), UpdateQuery),
    request_body(content = Object, description = "The new definition document; its `name` is the path's", example = custom_agent_example),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The agent", body = Agent),
        (status = 400, description = "An invalid definition, naming the field", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing agents:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such custom agent", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "expected_revision is not the agent's revision", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn update_custom(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
    Query(query): Query<UpdateQuery>,
    Body(definition): Body<Box<RawValue>>,
) -> Result<axum::Json<Agent>, Problem> {
    caller.require(WRITE)?;
    let request = v1::UpdateCustomAgentRequest {
        name,
        definition_json: definition.get().to_owned(),
        expected_revision: query.expected_revision,
        installed_from: String::new(),
    };
    let agent = state
        .agents()
        .update_custom_agent(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?;
    Ok(axum::Json(agent.into_inner().try_into()?))
}

/// Deletes a custom agent; runs in flight finish with the definition they started.
#[utoipa::path(
    delete,
    path = "/api/agents/custom/{name}",
    tag = "agents",
    params(("name" = String, Path, description = "The custom agent's name")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Missing agents:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such custom agent", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn delete_custom(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, Problem> {
    caller.require(WRITE)?;
    state
        .agents()
        .delete_custom_agent(state.request_as(&caller, v1::DeleteCustomAgentRequest { name })?)
        .await
        .map_err(problem)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Checks a custom agent definition without storing it.
#[utoipa::path(
    post,
    path = "/api/agents/custom/validate",
    tag = "agents",
    request_body(content = serde_json::Value, description = "The definition document; anything that is not a valid one is answered with its violations", example = custom_agent_example),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Whether it is valid, and each problem", body = AgentValidation),
        (status = 403, description = "Missing agents:read", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn validate_custom(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(definition): Body<Box<RawValue>>,
) -> Result<axum::Json<AgentValidation>, Problem> {
    caller.require(READ)?;
    let request = v1::ValidateAgentDefinitionRequest {
        definition_json: definition.get().to_owned(),
    };
    let response = state
        .agents()
        .validate_agent_definition(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?
        .into_inner();
    Ok(axum::Json(AgentValidation {
        valid: response.valid,
        violations: response
            .violations
            .into_iter()
            .map(|violation| FieldViolation {
                field: violation.field,
                message: violation.message,
            })
            .collect(),
        agent: response.agent.map(Agent::try_from).transpose()?,
    }))
}

/// The files of an agent run, or of a chain run (its steps share one workspace), as one
/// .tar.gz, streamed as agent-runner produces it.
#[utoipa::path(
    get,
    path = "/api/artifacts/{run_id}",
    tag = "agents",
    params(("run_id" = String, Path, description = "An agent run's id, its workspace_id, or a chain run's id: 1 to 128 ASCII letters, digits, `_`, `-`", pattern = r"^[A-Za-z0-9_-]{1,128}$")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The files, gzip-compressed tar", content_type = "application/gzip"),
        (status = 403, description = "Missing agents:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No files for this run in the caller's tenant", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn artifacts(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(run_id): Path<String>,
) -> Result<Response, Problem> {
    caller.require(READ)?;
    // No deadline: an archive streams for as long as it is large, and a client that goes away
    // drops the call.
    let request = sankalpa_kit::auth::with_bearer(
        v1::GetArtifactsRequest {
            run_id: run_id.clone(),
        },
        &caller.token,
    )?;
    let mut chunks = state
        .agents()
        .get_artifacts(request)
        .await
        .map_err(problem)?
        .into_inner();
    // The first chunk is awaited before answering, so a failure that comes as the stream's
    // first item (no files: 404) is still a problem and not a broken 200.
    let first = chunks.message().await.map_err(problem)?;
    let rest = chunks.map(|chunk| {
        chunk
            .map(|chunk| chunk.data)
            .map_err(|status| std::io::Error::other(status.message().to_owned()))
    });
    let body = futures::stream::iter(first.map(|chunk| Ok(chunk.data))).chain(rest);
    let filename = format!(
        "attachment; filename=\"{}.tar.gz\"",
        run_id.replace(
            |c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_',
            "_"
        )
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/gzip".to_owned()),
            (header::CONTENT_DISPOSITION, filename),
        ],
        HttpBody::from_stream(body),
    )
        .into_response())
}
