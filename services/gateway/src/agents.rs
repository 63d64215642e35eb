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
use futures::StreamExt;
use sankalpa_api::agents::{
    Agent, AgentList, AgentOriginFilter, AgentRun, AgentValidation, Artifact, CustomInfo,
    ExecuteAgent, ListQuery, LlmChoice, RunError, UpdateQuery,
};
use sankalpa_kit::problem::{FieldViolation, Problem};
use sankalpa_proto::v1;
use serde_json::value::RawValue;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::authn::Caller;
use crate::json::{Body, Page, Rest, json_text, next_page, page_request, timestamp};

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

impl Rest for v1::Agent {
    type Shown = Result<Agent, Problem>;

    fn rest(self) -> Result<Agent, Problem> {
        let origin = match self.origin() {
            v1::AgentOrigin::Custom => "custom",
            v1::AgentOrigin::Builtin | v1::AgentOrigin::Unspecified => "builtin",
        };
        let custom = match self.custom {
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
        Ok(Agent {
            name: self.name,
            category: self.category,
            description: self.description,
            version: self.version,
            input_schema: json_text("agent-runner", self.input_schema_json)?,
            output_schema: json_text("agent-runner", self.output_schema_json)?,
            llm_capable: self.llm_capable,
            origin: origin.to_owned(),
            custom,
        })
    }
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

impl Rest for v1::Artifact {
    type Shown = Artifact;

    fn rest(self) -> Artifact {
        Artifact {
            path: self.path,
            size_bytes: self.size_bytes,
            sha256: self.sha256,
        }
    }
}

impl Rest for v1::RunError {
    type Shown = RunError;

    fn rest(self) -> RunError {
        RunError {
            code: self.code,
            message: self.message,
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

impl Rest for v1::AgentRun {
    type Shown = Result<AgentRun, Problem>;

    fn rest(self) -> Result<AgentRun, Problem> {
        let status = match self.status() {
            v1::AgentRunStatus::Completed => "completed",
            v1::AgentRunStatus::Failed => "failed",
            v1::AgentRunStatus::Cancelled => "cancelled",
            v1::AgentRunStatus::Unspecified => "unknown",
        };
        Ok(AgentRun {
            run_id: self.run_id,
            agent: self.agent,
            agent_version: self.agent_version,
            status: status.to_owned(),
            output: optional_json("agent-runner", self.output_json)?,
            artifacts: self.artifacts.into_iter().map(Rest::rest).collect(),
            workspace_id: self.workspace_id,
            duration_ms: self.duration_ms,
            llm_used: self.llm_used,
            llm_model: Some(self.llm_model).filter(|model| !model.is_empty()),
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
            error: self.error.map(Rest::rest),
            session_id: Some(self.session_id).filter(|session| !session.is_empty()),
            started_at: timestamp(self.started_at),
            finished_at: timestamp(self.finished_at),
        })
    }
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
        page: Some(page_request(page)),
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
            .map(Rest::rest)
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
    Ok(axum::Json(agent.into_inner().rest()?))
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
        (status = 404, description = "No such agent, or no such model provider in the caller's tenant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The `run_id` named a run of another agent or input", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The model provider's API key cannot be opened (the envelope key is not configured)", body = Problem, content_type = "application/problem+json"),
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
        run_id: body.run_id,
        deadline_ms,
        llm: llm.into(),
        workspace_id: None,
        first_ask: false,
        model: body.model,
        stream_deltas: body.stream_deltas,
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
    Ok(axum::Json(run.into_inner().rest()?))
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
    Ok((StatusCode::CREATED, axum::Json(agent.into_inner().rest()?)))
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
    Ok(axum::Json(agent.into_inner().rest()?))
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
        agent: response.agent.map(Rest::rest).transpose()?,
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
