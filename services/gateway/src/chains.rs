//! Chains: versioned chain definitions and the catalog's templates, and durable runs of them, in
//! front of the chain orchestrator (`/api/chains/...`, the spec's routes). A run's live events
//! are in [`crate::events`].
//!
//! Definitions, inputs and outputs are JSON in REST and JSON text on the wire, passed through as
//! sent ([`RawValue`]). The gateway checks chains:read / chains:write / chains:execute before
//! calling; the orchestrator checks again and scopes everything to the caller's tenant (another
//! tenant's chain or run is 404). An execute either waits for the run (200 once it has
//! finished) or not (202 with the run as committed and `Location` of the run); a repeated
//! `Idempotency-Key` answers with the run the key started first. The tenant's chain settings
//! (`/api/chains/settings`: how long finished runs are kept) are read with chains:read and
//! changed by a tenant admin (users:admin).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Datelike, Utc};
use sankalpa_kit::problem::{FieldViolation, Problem};

use sankalpa_api::chains::{
    Chain, ChainList, ChainOriginFilter, ChainRun, ChainSettings, ChainValidation, CreateChain,
    ExecuteChain, ListQuery, RunList, RunsQuery, StepDecision, StepRun, UpdateChain,
    UpdateChainSettings, ValidateChain, VersionQuery,
};
use sankalpa_proto::v1;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::agents::optional_json;
use crate::authn::Caller;
use crate::json::{Body, Rest, next_page, timestamp};

const READ: &str = "chains:read";
const WRITE: &str = "chains:write";
const EXECUTE: &str = "chains:execute";
/// Tenant-wide settings are the tenant admin's, as its users are.
const SETTINGS_ADMIN: &str = "users:admin";

/// The orchestrator's wait when the request names none.
const DEFAULT_WAIT_MS: u64 = 30_000;
/// The orchestrator's longest wait.
const MAX_WAIT_MS: u64 = 300_000;

pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(validate))
        .routes(routes!(settings, update_settings))
        .routes(routes!(execute))
        .routes(routes!(runs))
        .routes(routes!(run))
        .routes(routes!(cancel))
        .routes(routes!(approve_step))
        .routes(routes!(reject_step))
        .routes(routes!(get_one, update, delete_one))
}

/// A problem from the orchestrator, its wire field names turned into this API's.
fn problem(status: tonic::Status) -> Problem {
    crate::json::renamed(status, |field| {
        let field = field.strip_prefix("page.").unwrap_or(field);
        field
            .replacen("input_json", "input", 1)
            .replacen("definition_json", "definition", 1)
    })
}

impl Rest for v1::Chain {
    type Shown = Result<Chain, Problem>;

    fn rest(self) -> Result<Chain, Problem> {
        let origin = match self.origin() {
            v1::ChainOrigin::Template => "template",
            v1::ChainOrigin::Tenant | v1::ChainOrigin::Unspecified => "tenant",
        };
        Ok(Chain {
            id: Some(self.id).filter(|id| !id.is_empty()),
            name: self.name,
            description: self.description,
            origin: origin.to_owned(),
            version: self.version,
            latest_version: self.latest_version,
            definition: optional_json("chain-orchestrator", self.definition_json)?,
            step_count: self.step_count,
            created_by: self.created_by,
            created_at: timestamp(self.created_at),
            updated_at: timestamp(self.updated_at),
            installed_from: Some(self.installed_from).filter(|from| !from.is_empty()),
        })
    }
}

const ORCHESTRATOR: &str = "chain-orchestrator";

fn run_status(status: v1::ChainRunStatus) -> &'static str {
    match status {
        v1::ChainRunStatus::Pending => "pending",
        v1::ChainRunStatus::Running => "running",
        v1::ChainRunStatus::Waiting => "waiting",
        v1::ChainRunStatus::Completed => "completed",
        v1::ChainRunStatus::Failed => "failed",
        v1::ChainRunStatus::Cancelled => "cancelled",
        v1::ChainRunStatus::Unspecified => "unknown",
    }
}

fn step_status(status: v1::StepStatus) -> &'static str {
    match status {
        v1::StepStatus::Pending => "pending",
        v1::StepStatus::Running => "running",
        v1::StepStatus::Waiting => "waiting",
        v1::StepStatus::Completed => "completed",
        v1::StepStatus::Failed => "failed",
        v1::StepStatus::Skipped => "skipped",
        v1::StepStatus::Cancelled => "cancelled",
        v1::StepStatus::Unspecified => "unknown",
    }
}

fn present(text: String) -> Option<String> {
    Some(text).filter(|text| !text.is_empty())
}

impl Rest for v1::StepRun {
    type Shown = Result<StepRun, Problem>;

    fn rest(self) -> Result<StepRun, Problem> {
        Ok(StepRun {
            status: step_status(self.status()).to_owned(),
            id: self.id,
            kind: self.kind,
            child_run_id: present(self.child_run_id),
            agent: self.agent,
            attempts: self.attempts,
            agent_run_id: present(self.agent_run_id),
            started_at: timestamp(self.started_at),
            finished_at: timestamp(self.finished_at),
            duration_ms: self.duration_ms,
            input: optional_json(ORCHESTRATOR, self.input_json)?,
            output: optional_json(ORCHESTRATOR, self.output_json)?,
            error: self.error.map(Rest::rest),
            skip_reason: present(self.skip_reason),
            artifacts: self.artifacts.into_iter().map(Rest::rest).collect(),
        })
    }
}

impl Rest for v1::ChainRun {
    type Shown = Result<ChainRun, Problem>;

    fn rest(self) -> Result<ChainRun, Problem> {
        let status = run_status(self.status());
        let chain_id = present(self.chain_id);
        Ok(ChainRun {
            status: status.to_owned(),
            id: self.id,
            chain_version: chain_id.as_ref().map(|_| self.chain_version),
            chain_id,
            template: present(self.template),
            chain_name: self.chain_name,
            cancel_requested: self.cancel_requested,
            input: optional_json(ORCHESTRATOR, self.input_json)?,
            output: optional_json(ORCHESTRATOR, self.output_json)?,
            error: self.error.map(Rest::rest),
            session_id: self.session_id,
            workspace_id: self.workspace_id,
            idempotency_key: present(self.idempotency_key),
            definition: optional_json(ORCHESTRATOR, self.definition_json)?,
            steps: self
                .steps
                .into_iter()
                .map(Rest::rest)
                .collect::<Result<_, _>>()?,
            created_by: self.created_by,
            created_at: timestamp(self.created_at),
            started_at: timestamp(self.started_at),
            finished_at: timestamp(self.finished_at),
            parent_run_id: present(self.parent_run_id),
            parent_step: present(self.parent_step),
        })
    }
}

fn page(page_size: Option<u32>, page_token: Option<String>) -> Option<v1::PageRequest> {
    Some(v1::PageRequest {
        page_size: page_size.unwrap_or(0),
        page_token: page_token.unwrap_or_default(),
    })
}

/// The tenant's chains (latest version of each) and the catalog's templates, without
/// definitions.
#[utoipa::path(
    get,
    path = "/api/chains",
    tag = "chains",
    params(ListQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "One page of chains and templates", body = ChainList),
        (status = 403, description = "Missing chains:read", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> Result<axum::Json<ChainList>, Problem> {
    caller.require(READ)?;
    let origin = match query.origin {
        None => v1::ChainOrigin::Unspecified,
        Some(ChainOriginFilter::Tenant) => v1::ChainOrigin::Tenant,
        Some(ChainOriginFilter::Template) => v1::ChainOrigin::Template,
    };
    let request = v1::ListChainsRequest {
        origin: origin.into(),
        page: page(query.page_size, query.page_token),
    };
    let response = state
        .chains()
        .list_chains(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?
        .into_inner();
    Ok(axum::Json(ChainList {
        chains: response
            .chains
            .into_iter()
            .map(Rest::rest)
            .collect::<Result<_, _>>()?,
        next_page_token: next_page(response.page),
    }))
}

/// Stores a new chain as version 1.
#[utoipa::path(
    post,
    path = "/api/chains",
    tag = "chains",
    request_body = CreateChain,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "The chain", body = Chain, headers(("Location" = String, description = "The chain's URL"))),
        (status = 400, description = "An invalid definition (unknown agent, duplicate step, missing dependency, cycle, bad expression, too many steps), naming the field", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing chains:write", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The name is taken in the tenant", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(body): Body<CreateChain>,
) -> Result<Response, Problem> {
    caller.require(WRITE)?;
    let request = v1::CreateChainRequest {
        name: body.name,
        description: body.description,
        definition_json: body.definition.get().to_owned(),
        installed_from: String::new(),
    };
    let chain: Chain = state
        .chains()
        .create_chain(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?
        .into_inner()
        .rest()?;
    let location = format!("/api/chains/{}", chain.id.as_deref().unwrap_or_default());
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(chain),
    )
        .into_response())
}

/// One version of a stored chain (the latest unless `version`), with its definition. A name
/// that is not a UUID is taken for a template's name (`/api/chains/fullstack-app`).
#[utoipa::path(
    get,
    path = "/api/chains/{id}",
    tag = "chains",
    params(("id" = String, Path, description = "The chain's id, or a template's name"), VersionQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The chain at that version", body = Chain),
        (status = 403, description = "Missing chains:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such chain, version or template", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn get_one(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<VersionQuery>,
) -> Result<axum::Json<Chain>, Problem> {
    caller.require(READ)?;
    let target = if uuid::Uuid::parse_str(&id).is_ok() {
        v1::get_chain_request::Target::Id(id)
    } else {
        v1::get_chain_request::Target::Template(id)
    };
    let request = v1::GetChainRequest {
        target: Some(target),
        version: query.version,
    };
    let chain = state
        .chains()
        .get_chain(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?;
    Ok(axum::Json(chain.into_inner().rest()?))
}

/// Stores a new version of a chain; earlier versions stay readable and runnable.
#[utoipa::path(
    put,
    path = "/api/chains/{id}",
    tag = "chains",
    params(("id" = String, Path, description = "The chain's id (a UUID)", pattern = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})$")),
    request_body = UpdateChain,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The chain at its new version", body = Chain),
        (status = 400, description = "An invalid definition, naming the field", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing chains:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such chain", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "expected_version is not the latest version", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn update(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<UpdateChain>,
) -> Result<axum::Json<Chain>, Problem> {
    caller.require(WRITE)?;
    let request = v1::UpdateChainRequest {
        id,
        definition_json: body.definition.get().to_owned(),
        name: body.name,
        description: body.description,
        expected_version: body.expected_version,
        installed_from: String::new(),
    };
    let chain = state
        .chains()
        .update_chain(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?;
    Ok(axum::Json(chain.into_inner().rest()?))
}

/// Deletes a chain and all its versions; its runs are kept.
#[utoipa::path(
    delete,
    path = "/api/chains/{id}",
    tag = "chains",
    params(("id" = String, Path, description = "The chain's id (a UUID)", pattern = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})$")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Missing chains:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such chain", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn delete_one(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    caller.require(WRITE)?;
    state
        .chains()
        .delete_chain(state.request_as(&caller, v1::DeleteChainRequest { id })?)
        .await
        .map_err(problem)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Checks a definition without storing it.
#[utoipa::path(
    post,
    path = "/api/chains/validate",
    tag = "chains",
    request_body = ValidateChain,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Whether it is valid, each problem, and the DAG form", body = ChainValidation),
        (status = 403, description = "Missing chains:read", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn validate(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(body): Body<ValidateChain>,
) -> Result<axum::Json<ChainValidation>, Problem> {
    caller.require(READ)?;
    let request = v1::ValidateChainRequest {
        definition_json: body.definition.get().to_owned(),
    };
    let response = state
        .chains()
        .validate_chain(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?
        .into_inner();
    Ok(axum::Json(ChainValidation {
        valid: response.valid,
        violations: response
            .violations
            .into_iter()
            .map(|violation| FieldViolation {
                field: violation.field,
                message: violation.message,
            })
            .collect(),
        normalized_definition: optional_json(ORCHESTRATOR, response.normalized_definition_json)?,
        step_count: response.step_count,
    }))
}

/// What an execute names to run: exactly one of a stored chain, a template or a definition.
fn target(body: ExecuteChain) -> Result<v1::execute_chain_request::Target, Problem> {
    use v1::execute_chain_request::Target;
    if body.version.is_some() && body.chain_id.is_none() {
        return Err(Problem::invalid("version", "only a chain_id has versions"));
    }
    match (body.chain_id, body.template, body.definition) {
        (Some(id), None, None) => Ok(Target::Chain(v1::ChainRef {
            id,
            version: body.version,
        })),
        (None, Some(template), None) => Ok(Target::Template(template)),
        (None, None, Some(definition)) => Ok(Target::DefinitionJson(definition.get().to_owned())),
        _ => Err(Problem::invalid(
            "chain_id",
            "give exactly one of chain_id, template or definition",
        )),
    }
}

fn finished(status: &str) -> bool {
    matches!(status, "completed" | "failed" | "cancelled")
}

/// Starts a run of a stored chain, a template or an inline definition. With `wait` it answers
/// 200 once the run has finished (completed, failed or cancelled: see `status`); without, or
/// when the wait times out first, 202 with the run as it is and its `Location`. Send an
/// `Idempotency-Key` header to make retries safe: the same key answers with the run it started
/// first (the same key with a different request is 412). Accepting a run does not wait for
/// agent-runner: a run whose agents cannot be checked yet is accepted and checked as it starts
/// (a missing agent then fails it with `unknown_agent`).
#[utoipa::path(
    post,
    path = "/api/chains/execute",
    tag = "chains",
    request_body = ExecuteChain,
    params(("Idempotency-Key" = Option<String>, Header, description = "Per tenant; a repeated key answers with the run it started first")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The finished run (waited)", body = ChainRun),
        (status = 202, description = "The run, not finished yet", body = ChainRun, headers(("Location" = String, description = "The run's URL"))),
        (status = 400, description = "No or several targets, an input that is not an object, an invalid definition, naming the field", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing chains:execute", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such chain, version or template", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The idempotency key was used for a different request", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn execute(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    Body(body): Body<ExecuteChain>,
) -> Result<Response, Problem> {
    caller.require(EXECUTE)?;
    let idempotency_key = match headers.get("idempotency-key") {
        Some(value) => value
            .to_str()
            .map_err(|_| Problem::invalid("Idempotency-Key", "must be text"))?
            .to_owned(),
        None => String::new(),
    };
    let wait = body.wait;
    let wait_timeout_ms = body.wait_timeout_ms.unwrap_or(0);
    // The document's integers are int64: a larger one is refused, not cut like the rest.
    if i64::try_from(wait_timeout_ms).is_err() {
        return Err(Problem::invalid(
            "wait_timeout_ms",
            format!("must be at most {}", i64::MAX),
        ));
    }
    let input_json = body
        .input
        .as_ref()
        .map(|input| input.get().to_owned())
        .unwrap_or_default();
    let session_id = body.session_id.clone();
    let message = v1::ExecuteChainRequest {
        target: Some(target(body)?),
        input_json,
        wait,
        wait_timeout_ms,
        idempotency_key,
        session_id,
    };
    let mut request = state.request_as(&caller, message)?;
    if wait {
        // The call lasts as long as the wait, plus the usual margin.
        let waits_for = match wait_timeout_ms {
            0 => DEFAULT_WAIT_MS,
            ms => ms.min(MAX_WAIT_MS),
        };
        request.set_timeout(Duration::from_millis(waits_for) + state.grpc_timeout);
    }
    let run: ChainRun = state
        .chains()
        .execute_chain(request)
        .await
        .map_err(problem)?
        .into_inner()
        .rest()?;
    if wait && finished(&run.status) {
        return Ok(axum::Json(run).into_response());
    }
    let location = format!("/api/chains/runs/{}", run.id);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        axum::Json(run),
    )
        .into_response())
}

/// The runs' time window as the wire carries it, checked here so that a problem names the query
/// parameter (`since`, `until`) rather than the orchestrator's field. A window with `until` not
/// after `since` is valid and empty: it lists no run.
fn time_window(
    since: Option<&str>,
    until: Option<&str>,
) -> Result<
    (
        Option<prost_types::Timestamp>,
        Option<prost_types::Timestamp>,
    ),
    Problem,
> {
    let since = since.map(|raw| instant("since", raw)).transpose()?;
    let until = until.map(|raw| instant("until", raw)).transpose()?;
    Ok((
        since.map(sankalpa_kit::grpc::timestamp),
        until.map(sankalpa_kit::grpc::timestamp),
    ))
}

fn instant(field: &str, raw: &str) -> Result<DateTime<Utc>, Problem> {
    DateTime::parse_from_rfc3339(raw)
        .ok()
        .map(|at| at.with_timezone(&Utc))
        .filter(|at| (1..=9999).contains(&at.year()))
        .ok_or_else(|| {
            Problem::invalid(
                field,
                "must be an RFC 3339 time in years 1 to 9999: 2026-12-05T09:00:00Z",
            )
        })
}

fn status_filter(raw: &str) -> Result<Vec<i32>, Problem> {
    raw.split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| {
            let status = match name {
                "pending" => v1::ChainRunStatus::Pending,
                "running" => v1::ChainRunStatus::Running,
                "waiting" => v1::ChainRunStatus::Waiting,
                "completed" => v1::ChainRunStatus::Completed,
                "failed" => v1::ChainRunStatus::Failed,
                "cancelled" => v1::ChainRunStatus::Cancelled,
                other => {
                    return Err(Problem::invalid(
                        "status",
                        format!(
                            "{other:?} is not one of pending, running, waiting, completed, failed, cancelled"
                        ),
                    ));
                }
            };
            Ok(status.into())
        })
        .collect()
}

/// The tenant's runs, newest first, without steps, input, output or definition.
#[utoipa::path(
    get,
    path = "/api/chains/runs",
    tag = "chains",
    params(RunsQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "One page of runs", body = RunList),
        (status = 400, description = "An unknown status, or a time that is not RFC 3339 in years 1 to 9999", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing chains:read", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn runs(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(query): Query<RunsQuery>,
) -> Result<axum::Json<RunList>, Problem> {
    caller.require(READ)?;
    let (created_since, created_until) =
        time_window(query.since.as_deref(), query.until.as_deref())?;
    let request = v1::ListRunsRequest {
        statuses: status_filter(query.status.as_deref().unwrap_or_default())?,
        chain_id: query.chain_id.unwrap_or_default(),
        page: page(query.page_size, query.page_token),
        created_since,
        created_until,
    };
    let response = state
        .chains()
        .list_runs(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?
        .into_inner();
    Ok(axum::Json(RunList {
        runs: response
            .runs
            .into_iter()
            .map(Rest::rest)
            .collect::<Result<_, _>>()?,
        next_page_token: next_page(response.page),
    }))
}

/// A run with every step's status, attempts, timings, error and output.
#[utoipa::path(
    get,
    path = "/api/chains/runs/{id}",
    tag = "chains",
    params(("id" = String, Path, description = "The run's id (a UUID)", pattern = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})$")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The run", body = ChainRun),
        (status = 403, description = "Missing chains:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run in the caller's tenant", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn run(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<ChainRun>, Problem> {
    caller.require(READ)?;
    let run = state
        .chains()
        .get_run(state.request_as(&caller, v1::GetRunRequest { id })?)
        .await
        .map_err(problem)?;
    Ok(axum::Json(run.into_inner().rest()?))
}

/// Asks a run to stop: nothing further starts and running steps are cancelled. Answers with the
/// run as it is now; cancelling a finished run changes nothing.
#[utoipa::path(
    post,
    path = "/api/chains/runs/{id}/cancel",
    tag = "chains",
    params(("id" = String, Path, description = "The run's id (a UUID)", pattern = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})$")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The run, `cancel_requested` set", body = ChainRun),
        (status = 403, description = "Missing chains:execute", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run in the caller's tenant", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn cancel(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<ChainRun>, Problem> {
    caller.require(EXECUTE)?;
    let run = state
        .chains()
        .cancel_run(state.request_as(&caller, v1::CancelRunRequest { id })?)
        .await
        .map_err(problem)?;
    Ok(axum::Json(run.into_inner().rest()?))
}

/// The optional body of a decision: empty, or a [`StepDecision`].
fn step_decision(body: &[u8]) -> Result<StepDecision, Problem> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(StepDecision::default());
    }
    serde_json::from_slice(body).map_err(|err| Problem::invalid("body", err.to_string()))
}

/// A problem from a decision: the orchestrator's `run_id` is this route's `id`, and a step not
/// waiting for a decision (FAILED_PRECONDITION) is a conflict with the run's state: 409.
fn decision_problem(status: tonic::Status) -> Problem {
    if status.code() == tonic::Code::FailedPrecondition {
        return Problem::new(StatusCode::CONFLICT, status.message());
    }
    crate::json::renamed(status, |field| {
        field
            .replacen("run_id", "id", 1)
            .replacen("input_json", "input", 1)
    })
}

/// Approves an approval step that waits for a decision: it completes with output
/// `{"approved": true, "by": <you>, "input": <input>, "comment": <comment>}` and the run goes
/// on. Needs chains:execute and a place among the step's approvers (`role:<role>` of a role you
/// hold, or `user:<your id>`).
#[utoipa::path(
    post,
    path = "/api/chains/runs/{id}/steps/{step}/approve",
    tag = "chains",
    params(
        ("id" = String, Path, description = "The run's id (a UUID)", pattern = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})$"),
        ("step" = String, Path, description = "The approval step's id", pattern = r"^[A-Za-z0-9_-]{1,64}$"),
    ),
    request_body = Option<StepDecision>,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The run as it is now", body = ChainRun),
        (status = 400, description = "An input or comment past its bound, naming the field", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing chains:execute, or not among the step's approvers", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run in the caller's tenant, or no such step", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The step is not waiting for a decision (decided already, timed out, not reached, or not an approval step)", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn approve_step(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((id, step)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<axum::Json<ChainRun>, Problem> {
    decide(&state, &caller, id, step, true, &body).await
}

/// Rejects an approval step that waits for a decision: it fails with code `rejected` (the
/// comment in its message), and its `on_failure` applies. Who may: as for approve.
#[utoipa::path(
    post,
    path = "/api/chains/runs/{id}/steps/{step}/reject",
    tag = "chains",
    params(
        ("id" = String, Path, description = "The run's id (a UUID)", pattern = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})$"),
        ("step" = String, Path, description = "The approval step's id", pattern = r"^[A-Za-z0-9_-]{1,64}$"),
    ),
    request_body = Option<StepDecision>,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The run as it is now", body = ChainRun),
        (status = 400, description = "An input or comment past its bound, naming the field", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing chains:execute, or not among the step's approvers", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run in the caller's tenant, or no such step", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The step is not waiting for a decision (decided already, timed out, not reached, or not an approval step)", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn reject_step(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((id, step)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<axum::Json<ChainRun>, Problem> {
    decide(&state, &caller, id, step, false, &body).await
}

/// approve_step and reject_step: the same decision but for its verdict.
async fn decide(
    state: &AppState,
    caller: &Caller,
    run_id: String,
    step_id: String,
    approve: bool,
    body: &[u8],
) -> Result<axum::Json<ChainRun>, Problem> {
    caller.require(EXECUTE)?;
    let decision = step_decision(body)?;
    let input_json = decision
        .input
        .map(|input| input.get().to_owned())
        .unwrap_or_default();
    let comment = decision.comment.unwrap_or_default();
    let mut chains = state.chains();
    let run = if approve {
        let message = v1::ApproveStepRequest {
            run_id,
            step_id,
            input_json,
            comment,
        };
        chains
            .approve_step(state.request_as(caller, message)?)
            .await
    } else {
        let message = v1::RejectStepRequest {
            run_id,
            step_id,
            input_json,
            comment,
        };
        chains.reject_step(state.request_as(caller, message)?).await
    }
    .map_err(decision_problem)?;
    Ok(axum::Json(run.into_inner().rest()?))
}

/// The longest retention a tenant may set, in days; the orchestrator checks it too.
const MAX_RETENTION_DAYS: i64 = 3650;

impl Rest for v1::ChainSettings {
    type Shown = ChainSettings;

    fn rest(self) -> ChainSettings {
        ChainSettings {
            retention_days: self.retention_days,
            is_default: self.is_default,
            updated_at: timestamp(self.updated_at),
            updated_by: present(self.updated_by),
        }
    }
}

/// The caller's tenant's chain settings: how long its finished runs are kept.
#[utoipa::path(
    get,
    path = "/api/chains/settings",
    tag = "chains",
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The settings as they apply now", body = ChainSettings),
        (status = 403, description = "Missing chains:read", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn settings(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<axum::Json<ChainSettings>, Problem> {
    caller.require(READ)?;
    let settings = state
        .chains()
        .get_chain_settings(state.request_as(&caller, v1::GetChainSettingsRequest {})?)
        .await
        .map_err(problem)?;
    Ok(axum::Json(settings.into_inner().rest()))
}

/// Changes the caller's tenant's chain settings (a tenant admin's, `users:admin`). Runs past the
/// new retention are deleted by the next sweep.
#[utoipa::path(
    put,
    path = "/api/chains/settings",
    tag = "chains",
    request_body = UpdateChainSettings,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The settings as stored", body = ChainSettings),
        (status = 400, description = "`retention_days` out of its range, naming the field", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing users:admin", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn update_settings(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(body): Body<UpdateChainSettings>,
) -> Result<axum::Json<ChainSettings>, Problem> {
    caller.require(SETTINGS_ADMIN)?;
    let retention_days = u32::try_from(body.retention_days)
        .ok()
        .filter(|days| i64::from(*days) <= MAX_RETENTION_DAYS)
        .ok_or_else(|| {
            Problem::invalid(
                "retention_days",
                format!("must be 0 (keep runs forever) or 1 to {MAX_RETENTION_DAYS} days"),
            )
        })?;
    let request = v1::UpdateChainSettingsRequest { retention_days };
    let settings = state
        .chains()
        .update_chain_settings(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?;
    Ok(axum::Json(settings.into_inner().rest()))
}
