//! `sankalpa.v1.ChainService`: an adapter. Each RPC checks the caller's permission, turns the
//! request into checked values ([`crate::input`], a bound exceeded is INVALID_ARGUMENT naming
//! the field, before any work), calls the domain ([`crate::runs`], [`crate::chains`], the
//! definition checks of [`crate::agents`], [`crate::watch`]) and turns its result back into a
//! wire message; errors reach the caller as `error.rs` maps them.

use sankalpa_kit::grpc::timestamp;
use std::sync::Arc;
use std::time::Duration;

use sankalpa_kit::auth::{self as kit_auth, Principal};
use sankalpa_proto::v1 as pb;
use sankalpa_proto::v1::chain_service_server::ChainService;
use serde_json::Value;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::definition::MAX_DESCRIPTION_CHARS;
use crate::definition::{self, Definition};
use crate::error::{ChainError, Result};
use crate::events::RunEvent;
use crate::input::{self, MAX_INSTALLED_FROM_CHARS, at_most_chars, chain_name, id};
use crate::input::{Execution, Target};
use crate::runs::{self, CancelRequest, RunStatus, StepStatus};
use crate::watch::{self, EventStream};
use crate::{State, agents, chains, credentials, engine};

pub struct ChainApi {
    state: Arc<State>,
}

impl ChainApi {
    pub(crate) fn new(state: Arc<State>) -> Self {
        Self { state }
    }
}

type Reply<T> = std::result::Result<Response<T>, Status>;

fn tenant_of(caller: &Principal) -> Result<Uuid> {
    Uuid::parse_str(&caller.tenant_id)
        .map_err(|_| ChainError::Precondition("the token names no tenant".to_owned()))
}

/// The caller's own token, to act for them towards agent-runner and auth.
fn bearer<T>(request: &Request<T>) -> Result<String> {
    request
        .metadata()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
        })
        .map(|token| token.trim().to_owned())
        .ok_or_else(|| ChainError::Precondition("an access token is required".to_owned()))
}

fn next_page_token<T>(rows: &mut Vec<T>, size: i64, id_of: impl Fn(&T) -> Uuid) -> String {
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    if rows.len() > size {
        rows.truncate(size);
        rows.last()
            .map(|row| id_of(row).to_string())
            .unwrap_or_default()
    } else {
        String::new()
    }
}

fn chain_message(chain: chains::ChainVersion, with_definition: bool) -> pb::Chain {
    pb::Chain {
        id: chain.id.to_string(),
        name: chain.name,
        description: chain.description,
        origin: pb::ChainOrigin::Tenant.into(),
        version: u32::try_from(chain.version).unwrap_or(0),
        latest_version: u32::try_from(chain.latest_version).unwrap_or(0),
        definition_json: if with_definition {
            chain.definition_json
        } else {
            String::new()
        },
        step_count: u32::try_from(chain.step_count).unwrap_or(0),
        created_by: chain.created_by,
        created_at: Some(timestamp(chain.created_at)),
        updated_at: Some(timestamp(chain.updated_at)),
        installed_from: chain.installed_from,
    }
}

fn template_message(template: &crate::templates::Template, with_definition: bool) -> pb::Chain {
    pb::Chain {
        id: String::new(),
        name: template.name.clone(),
        description: template.definition.description.clone(),
        origin: pb::ChainOrigin::Template.into(),
        version: 1,
        latest_version: 1,
        definition_json: if with_definition {
            template.definition_json.clone()
        } else {
            String::new()
        },
        step_count: u32::try_from(template.definition.steps.len()).unwrap_or(0),
        created_by: "catalog".to_owned(),
        created_at: None,
        updated_at: None,
        installed_from: String::new(),
    }
}

fn run_status(status: RunStatus) -> pb::ChainRunStatus {
    match status {
        RunStatus::Pending => pb::ChainRunStatus::Pending,
        RunStatus::Running => pb::ChainRunStatus::Running,
        RunStatus::Completed => pb::ChainRunStatus::Completed,
        RunStatus::Failed => pb::ChainRunStatus::Failed,
        RunStatus::Cancelled => pb::ChainRunStatus::Cancelled,
    }
}

fn step_status(status: StepStatus) -> pb::StepStatus {
    match status {
        StepStatus::Pending => pb::StepStatus::Pending,
        StepStatus::Running => pb::StepStatus::Running,
        StepStatus::Completed => pb::StepStatus::Completed,
        StepStatus::Failed => pb::StepStatus::Failed,
        StepStatus::Skipped => pb::StepStatus::Skipped,
        StepStatus::Cancelled => pb::StepStatus::Cancelled,
    }
}

fn run_error(code: Option<String>, message: Option<String>) -> Option<pb::RunError> {
    code.map(|code| pb::RunError {
        code,
        message: message.unwrap_or_default(),
    })
}

fn step_message(step: runs::Step) -> pb::StepRun {
    let status = step.status();
    let artifacts = serde_json::from_value::<Vec<Value>>(step.artifacts)
        .unwrap_or_default()
        .into_iter()
        .map(|artifact| pb::Artifact {
            path: artifact["path"].as_str().unwrap_or_default().to_owned(),
            size_bytes: artifact["size_bytes"].as_u64().unwrap_or(0),
            sha256: artifact["sha256"].as_str().unwrap_or_default().to_owned(),
        })
        .collect();
    pb::StepRun {
        id: step.step_id,
        agent: step.agent,
        status: step_status(status).into(),
        attempts: u32::try_from(step.attempts).unwrap_or(0),
        agent_run_id: step.agent_run_id,
        started_at: step.started_at.map(timestamp),
        finished_at: step.finished_at.map(timestamp),
        duration_ms: u64::try_from(step.duration_ms).unwrap_or(0),
        input_json: step
            .input
            .map(|input| input.to_string())
            .unwrap_or_default(),
        output_json: match (status, step.output) {
            (StepStatus::Completed, Some(output)) => output.to_string(),
            _ => String::new(),
        },
        error: run_error(step.error_code, step.error_message),
        skip_reason: step.skip_reason,
        artifacts,
        warning: step.warning,
    }
}

/// A run and its steps on the wire.
fn detailed_message((run, steps): Detailed) -> pb::ChainRun {
    run_message(run, Some(steps))
}

/// A run on the wire; `steps` only where the RPC returns them.
fn run_message(run: runs::Run, steps: Option<Vec<runs::Step>>) -> pb::ChainRun {
    let detailed = steps.is_some();
    pb::ChainRun {
        id: run.id.to_string(),
        chain_id: run.chain_id.map(|id| id.to_string()).unwrap_or_default(),
        chain_version: run
            .chain_version
            .and_then(|version| u32::try_from(version).ok())
            .unwrap_or(0),
        template: run.template.clone().unwrap_or_default(),
        chain_name: run.chain_name.clone(),
        status: run_status(run.status()).into(),
        cancel_requested: run.cancel_requested,
        input_json: if detailed {
            run.input.to_string()
        } else {
            String::new()
        },
        output_json: match (&run.output, detailed) {
            (Some(output), true) => output.to_string(),
            _ => String::new(),
        },
        error: run_error(run.error_code, run.error_message),
        session_id: run.session_id,
        workspace_id: run.id.to_string(),
        idempotency_key: run.idempotency_key.unwrap_or_default(),
        definition_json: if detailed {
            run.definition.to_string()
        } else {
            String::new()
        },
        steps: steps
            .unwrap_or_default()
            .into_iter()
            .map(step_message)
            .collect(),
        created_by: run.created_by,
        created_at: Some(timestamp(run.created_at)),
        started_at: run.started_at.map(timestamp),
        finished_at: run.finished_at.map(timestamp),
    }
}

#[tonic::async_trait]
impl ChainService for ChainApi {
    async fn create_chain(&self, request: Request<pb::CreateChainRequest>) -> Reply<pb::Chain> {
        let caller = kit_auth::authorize(&request, "chains:write")?;
        let tenant = tenant_of(caller)?;
        let token = bearer(&request)?;
        let message = request.get_ref();
        let definition =
            agents::check(&self.state.agents, &token, &message.definition_json).await?;
        let name = if message.name.trim().is_empty() {
            chain_name("name", &definition.name)?
        } else {
            chain_name("name", &message.name)?
        };
        let description = if message.description.is_empty() {
            definition.description.as_str()
        } else {
            at_most_chars("description", &message.description, MAX_DESCRIPTION_CHARS)?
        };
        let installed_from = at_most_chars(
            "installed_from",
            &message.installed_from,
            MAX_INSTALLED_FROM_CHARS,
        )?;
        let chain = chains::create(
            &self.state.pool,
            tenant,
            chains::NewVersion {
                name: &name,
                description,
                definition_json: &message.definition_json,
                step_count: i32::try_from(definition.steps.len()).unwrap_or(i32::MAX),
                created_by: &caller.subject,
                installed_from,
            },
        )
        .await?;
        Ok(Response::new(chain_message(chain, true)))
    }

    async fn update_chain(&self, request: Request<pb::UpdateChainRequest>) -> Reply<pb::Chain> {
        let caller = kit_auth::authorize(&request, "chains:write")?;
        let tenant = tenant_of(caller)?;
        let token = bearer(&request)?;
        let message = request.get_ref();
        let chain_id = id("id", &message.id)?;
        let definition =
            agents::check(&self.state.agents, &token, &message.definition_json).await?;
        let name = message
            .name
            .as_deref()
            .map(|name| chain_name("name", name))
            .transpose()?;
        let expected_version = message
            .expected_version
            .map(|version| input::version_number("expected_version", version))
            .transpose()?;
        let description = message
            .description
            .as_deref()
            .map(|text| at_most_chars("description", text, MAX_DESCRIPTION_CHARS))
            .transpose()?;
        let installed_from = at_most_chars(
            "installed_from",
            &message.installed_from,
            MAX_INSTALLED_FROM_CHARS,
        )?;
        let chain = chains::update(
            &self.state.pool,
            tenant,
            chain_id,
            chains::Update {
                name: name.as_deref(),
                description,
                expected_version,
                definition_json: &message.definition_json,
                step_count: i32::try_from(definition.steps.len()).unwrap_or(i32::MAX),
                created_by: &caller.subject,
                installed_from,
            },
        )
        .await?;
        Ok(Response::new(chain_message(chain, true)))
    }

    async fn get_chain(&self, request: Request<pb::GetChainRequest>) -> Reply<pb::Chain> {
        let caller = kit_auth::authorize(&request, "chains:read")?;
        let tenant = tenant_of(caller)?;
        let message = request.get_ref();
        match &message.target {
            Some(pb::get_chain_request::Target::Id(raw)) => {
                let version = message
                    .version
                    .map(|version| input::version_number("version", version))
                    .transpose()?;
                let chain = chains::get(&self.state.pool, tenant, id("id", raw)?, version).await?;
                Ok(Response::new(chain_message(chain, true)))
            }
            Some(pb::get_chain_request::Target::Template(name)) => {
                let template = self
                    .state
                    .templates
                    .get(name)
                    .ok_or(ChainError::NotFound("template"))?;
                Ok(Response::new(template_message(template, true)))
            }
            None => Err(ChainError::invalid("target", "give an id or a template").into()),
        }
    }

    async fn list_chains(
        &self,
        request: Request<pb::ListChainsRequest>,
    ) -> Reply<pb::ListChainsResponse> {
        let caller = kit_auth::authorize(&request, "chains:read")?;
        let tenant = tenant_of(caller)?;
        let message = request.get_ref();
        let (size, after) = input::page(message.page.as_ref())?;
        let origin = message.origin();
        let mut listed = Vec::new();
        // Templates are few and fixed: they come whole, on the first page.
        if after.is_none() && origin != pb::ChainOrigin::Tenant {
            listed.extend(
                self.state
                    .templates
                    .all()
                    .map(|template| template_message(template, false)),
            );
        }
        let mut next_page_token = String::new();
        if origin != pb::ChainOrigin::Template {
            let mut rows = chains::list(&self.state.pool, tenant, size, after).await?;
            next_page_token = next_page_token_of(&mut rows, size);
            listed.extend(rows.into_iter().map(|chain| chain_message(chain, false)));
        }
        Ok(Response::new(pb::ListChainsResponse {
            chains: listed,
            page: Some(pb::PageResponse { next_page_token }),
        }))
    }

    async fn delete_chain(
        &self,
        request: Request<pb::DeleteChainRequest>,
    ) -> Reply<pb::DeleteChainResponse> {
        let caller = kit_auth::authorize(&request, "chains:write")?;
        let tenant = tenant_of(caller)?;
        chains::delete(&self.state.pool, tenant, id("id", &request.get_ref().id)?).await?;
        Ok(Response::new(pb::DeleteChainResponse {}))
    }

    async fn validate_chain(
        &self,
        request: Request<pb::ValidateChainRequest>,
    ) -> Reply<pb::ValidateChainResponse> {
        kit_auth::authorize(&request, "chains:read")?;
        let token = bearer(&request)?;
        match agents::check(
            &self.state.agents,
            &token,
            &request.get_ref().definition_json,
        )
        .await
        {
            Ok(definition) => Ok(Response::new(pb::ValidateChainResponse {
                valid: true,
                violations: Vec::new(),
                normalized_definition_json: serde_json::to_string(&definition)
                    .map_err(|err| ChainError::Internal(err.into()))?,
                step_count: u32::try_from(definition.steps.len()).unwrap_or(0),
            })),
            Err(ChainError::InvalidDefinition(violations)) => {
                Ok(Response::new(pb::ValidateChainResponse {
                    valid: false,
                    violations: violations
                        .into_iter()
                        .map(|violation| pb::FieldViolation {
                            field: violation.field,
                            message: violation.message,
                        })
                        .collect(),
                    normalized_definition_json: String::new(),
                    step_count: 0,
                }))
            }
            Err(err) => Err(err.into()),
        }
    }

    async fn execute_chain(
        &self,
        request: Request<pb::ExecuteChainRequest>,
    ) -> Reply<pb::ChainRun> {
        let caller = kit_auth::authorize(&request, "chains:execute")?.clone();
        let tenant = tenant_of(&caller)?;
        let token = bearer(&request)?;
        let execution = input::execution(request.into_inner())?;
        let run = execute(&self.state, &caller, tenant, &token, execution).await?;
        Ok(Response::new(detailed_message(run)))
    }

    async fn get_run(&self, request: Request<pb::GetRunRequest>) -> Reply<pb::ChainRun> {
        let caller = kit_auth::authorize(&request, "chains:read")?;
        let tenant = tenant_of(caller)?;
        let run_id = id("id", &request.get_ref().id)?;
        let run = detailed(&self.state, tenant, run_id).await?;
        Ok(Response::new(detailed_message(run)))
    }

    async fn list_runs(
        &self,
        request: Request<pb::ListRunsRequest>,
    ) -> Reply<pb::ListRunsResponse> {
        let caller = kit_auth::authorize(&request, "chains:read")?;
        let tenant = tenant_of(caller)?;
        let message = request.get_ref();
        let (size, after) = input::page(message.page.as_ref())?;
        let statuses = input::statuses(&message.statuses)?;
        let chain_id = input::optional_id("chain_id", &message.chain_id)?;
        let mut rows = runs::list(
            &self.state.pool,
            tenant,
            &runs::ListFilter {
                statuses,
                chain_id,
                size,
                after,
            },
        )
        .await?;
        let next_page_token = next_page_token(&mut rows, size, |run| run.id);
        Ok(Response::new(pb::ListRunsResponse {
            runs: rows.into_iter().map(|run| run_message(run, None)).collect(),
            page: Some(pb::PageResponse { next_page_token }),
        }))
    }

    async fn cancel_run(&self, request: Request<pb::CancelRunRequest>) -> Reply<pb::ChainRun> {
        let caller = kit_auth::authorize(&request, "chains:execute")?;
        let tenant = tenant_of(caller)?;
        let run_id = id("id", &request.get_ref().id)?;
        let run = cancel(&self.state, tenant, run_id).await?;
        Ok(Response::new(detailed_message(run)))
    }

    type WatchRunStream = EventStream;

    async fn watch_run(&self, request: Request<pb::WatchRunRequest>) -> Reply<EventStream> {
        let caller = kit_auth::authorize(&request, "chains:read")?;
        let tenant = tenant_of(caller)?;
        let message = request.get_ref();
        let run_id = id("run_id", &message.run_id)?;
        let stream =
            watch::run_events(self.state.clone(), tenant, run_id, message.after_sequence).await?;
        Ok(Response::new(stream))
    }

    type WatchEventsStream = EventStream;

    async fn watch_events(&self, request: Request<pb::WatchEventsRequest>) -> Reply<EventStream> {
        let caller = kit_auth::principal(&request)?.clone();
        let message = request.get_ref();
        let stream = watch::tenant_events(
            self.state.clone(),
            caller,
            &message.subjects,
            message.after_sequence,
        )
        .await?;
        Ok(Response::new(stream))
    }
}

fn next_page_token_of(rows: &mut Vec<chains::ChainVersion>, size: i64) -> String {
    next_page_token(rows, size, |chain| chain.id)
}

/// A run with its steps, as GetRun and the RPCs that return one answer.
type Detailed = (runs::Run, Vec<runs::Step>);

/// The definition a run executes and where it came from.
struct Resolved {
    definition: Definition,
    chain_id: Option<Uuid>,
    chain_version: Option<i32>,
    template: Option<String>,
}

/// Starts a run of `caller`'s, or finds the one its idempotency key started, and answers with it
/// at once or, when asked to wait, once it has finished or the wait is up. `token` is the
/// caller's, to look agents up and have auth issue the run's credential.
async fn execute(
    state: &State,
    caller: &Principal,
    tenant: Uuid,
    token: &str,
    request: Execution,
) -> Result<Detailed> {
    let idempotency_key = request.idempotency_key.as_deref();
    if let Some(key) = idempotency_key
        && let Some(existing) = runs::by_idempotency_key(&state.pool, tenant, key).await?
    {
        return answer_repeat(state, tenant, existing, &request).await;
    }
    // A quick look first, so a tenant at its quota costs no lookups and no credential; the
    // count that decides is taken under the tenant's lock at the end.
    let quota = state.config.max_concurrent_runs_per_tenant;
    let quota_rows = i64::try_from(quota).unwrap_or(i64::MAX);
    if runs::unfinished(&state.pool, tenant).await? >= quota_rows {
        // A repeat of a run accepted since the lookup above is answered, not refused.
        if let Some(key) = idempotency_key
            && let Some(existing) = runs::by_idempotency_key(&state.pool, tenant, key).await?
        {
            return answer_repeat(state, tenant, existing, &request).await;
        }
        return Err(run_quota_exceeded(quota));
    }

    let target = resolve(state, tenant, &request.target, token).await?;
    let problems = target.definition.input_problems(&request.input);
    if !problems.is_empty() {
        return Err(ChainError::InvalidInput(definition::at_most(problems)));
    }
    let run_id = Uuid::now_v7();
    let issued = credentials::issue(
        &state.auth,
        token,
        caller,
        run_id,
        state.config.credential_ttl,
    )
    .await?;
    let session_id = request
        .session
        .clone()
        .unwrap_or_else(|| format!("run-{run_id}"));
    let definition_value =
        serde_json::to_value(&target.definition).map_err(|err| ChainError::Internal(err.into()))?;
    let claim_now = state.engine.has_room();
    let mut tx = state.pool.begin().await?;
    let inserted = runs::insert(
        &mut tx,
        &runs::NewRun {
            id: run_id,
            tenant_id: tenant,
            chain_id: target.chain_id,
            chain_version: target.chain_version,
            template: target.template.as_deref(),
            chain_name: &target.definition.name,
            input: &request.input,
            session_id: &session_id,
            idempotency_key,
            request_hash: &request.request_hash,
            definition: &definition_value,
            step_ids: target
                .definition
                .steps
                .iter()
                .map(|s| s.id.clone())
                .collect(),
            step_agents: target
                .definition
                .steps
                .iter()
                .map(|s| s.agent.clone())
                .collect(),
            created_by: &caller.subject,
            lease: claim_now.then_some((state.engine.owner, state.config.lease_ttl)),
        },
    )
    .await?;
    if !inserted {
        // Another request with the same key won the race: answer with its run.
        drop(tx);
        credentials::revoke_unused(&state.auth, token, issued).await;
        let key = idempotency_key.expect("only a key can conflict");
        let existing = runs::by_idempotency_key(&state.pool, tenant, key)
            .await?
            .ok_or(ChainError::NotFound("run"))?;
        return answer_repeat(state, tenant, existing, &request).await;
    }
    credentials::store(&mut tx, run_id, &issued).await?;
    if runs::unfinished_locked(&mut tx, tenant).await? > quota_rows {
        drop(tx);
        credentials::revoke_unused(&state.auth, token, issued).await;
        return Err(run_quota_exceeded(quota));
    }
    if claim_now {
        // It starts running here and now; a run left pending is announced by its claim.
        RunEvent::run_started(run_id, &target.definition.name)
            .commit(state, tx, &tenant.to_string())
            .await?;
    } else {
        tx.commit().await?;
    }
    tracing::info!(run = %run_id, chain = %target.definition.name, "run accepted");
    if claim_now {
        state.engine.drive(run_id);
    }
    answer(state, tenant, run_id, request.wait, request.wait_limit).await
}

/// A run of `tenant` with its steps.
async fn detailed(state: &State, tenant: Uuid, run_id: Uuid) -> Result<Detailed> {
    let run = runs::get(&state.pool, tenant, run_id).await?;
    let steps = runs::steps(&state.pool, run_id).await?;
    Ok((run, steps))
}

/// Asks a run of `tenant` to stop, and answers with it as it then is. A run not started yet ends
/// here, announced as it commits; a running one is stopped by the replica executing it.
async fn cancel(state: &State, tenant: Uuid, run_id: Uuid) -> Result<Detailed> {
    let mut tx = state.pool.begin().await?;
    match runs::request_cancel(&mut tx, tenant, run_id).await? {
        CancelRequest::Ended => {
            RunEvent::run_cancelled(run_id)
                .commit(state, tx, &tenant.to_string())
                .await?;
        }
        CancelRequest::Requested => {
            tx.commit().await?;
            state.engine.cancel_local(run_id);
        }
        // Finished, or not the caller's: nothing to stop. Another tenant's run is left
        // alone, and the lookup below answers NOT_FOUND for it.
        CancelRequest::Nothing => drop(tx),
    }
    detailed(state, tenant, run_id).await
}

/// RESOURCE_EXHAUSTED for a tenant at its quota of unfinished runs.
fn run_quota_exceeded(limit: u64) -> ChainError {
    ChainError::QuotaExceeded {
        limit,
        message: format!(
            "this tenant already has {limit} chain runs pending or running, the most it may \
             have at once; retry when one has finished"
        ),
    }
}

/// The definition an ExecuteChain request names, checked again: agents may have gone since it
/// was saved.
async fn resolve(state: &State, tenant: Uuid, target: &Target, token: &str) -> Result<Resolved> {
    let resolved = match target {
        Target::Chain { id, version } => {
            let stored = chains::get(&state.pool, tenant, *id, *version).await?;
            let mut definition =
                agents::check(&state.agents, token, &stored.definition_json).await?;
            definition.name = stored.name;
            Resolved {
                definition,
                chain_id: Some(stored.id),
                chain_version: Some(stored.version),
                template: None,
            }
        }
        Target::Template(name) => {
            let template = state
                .templates
                .get(name)
                .ok_or(ChainError::NotFound("template"))?;
            let mut definition = template.definition.clone();
            let unknown = agents::unknown_agents(&state.agents, token, &definition).await?;
            if !unknown.is_empty() {
                return Err(ChainError::InvalidDefinition(unknown));
            }
            definition.name = template.name.clone();
            Resolved {
                definition,
                chain_id: None,
                chain_version: None,
                template: Some(name.clone()),
            }
        }
        Target::Definition(document) => Resolved {
            definition: agents::check(&state.agents, token, document).await?,
            chain_id: None,
            chain_version: None,
            template: None,
        },
    };
    Ok(resolved)
}

/// The run a repeated idempotency key started, if the request is the same one.
async fn answer_repeat(
    state: &State,
    tenant: Uuid,
    existing: runs::Run,
    request: &Execution,
) -> Result<Detailed> {
    if existing.request_hash != request.request_hash {
        return Err(ChainError::Precondition(
            "this idempotency key was used for a different request".to_owned(),
        ));
    }
    answer(state, tenant, existing.id, request.wait, request.wait_limit).await
}

/// The run as it is now, or once it has finished or `wait_limit` has passed when asked to wait.
async fn answer(
    state: &State,
    tenant: Uuid,
    run_id: Uuid,
    wait: bool,
    wait_limit: Duration,
) -> Result<Detailed> {
    let run = if wait {
        engine::wait(state, tenant, run_id, wait_limit).await?
    } else {
        runs::get(&state.pool, tenant, run_id).await?
    };
    let steps = runs::steps(&state.pool, run_id).await?;
    Ok((run, steps))
}
