//! `sankalpa.v1.ChainService`: turns wire messages into calls on the domain modules and their
//! results back into wire messages. Permission checks happen here, before any work, and so do
//! the bounds on every field a request sets (a bound exceeded is INVALID_ARGUMENT naming the
//! field, and nothing is changed) and the tenant's quota of unfinished runs.

use sankalpa_kit::grpc::timestamp;
use std::sync::Arc;
use std::time::Duration;

use sankalpa_kit::auth::{self as kit_auth, Principal};
use sankalpa_proto::v1 as pb;
use sankalpa_proto::v1::chain_service_server::ChainService;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::definition::{self, Definition, MAX_DESCRIPTION_CHARS, MAX_JSON_DEPTH, MAX_NAME_CHARS};
use crate::error::{ChainError, Result};
use crate::events::RunEvent;
use crate::runs::{self, CancelRequest, RunStatus, StepStatus};
use crate::watch::{self, EventStream};
use crate::{State, agents, chains, credentials, engine};

const DEFAULT_PAGE_SIZE: i64 = 50;
const MAX_PAGE_SIZE: i64 = 200;
const DEFAULT_WAIT: Duration = Duration::from_secs(30);
const MAX_WAIT: Duration = Duration::from_secs(300);
/// The largest run input (`input_json`), in bytes: it is stored with the run and merged into
/// every step's input.
const MAX_INPUT_BYTES: usize = 1024 * 1024;
/// The longest idempotency key, in bytes; keys are unique per tenant through an index.
const MAX_IDEMPOTENCY_KEY_BYTES: usize = 256;
/// The longest session id, in bytes, as memory takes them (with the same characters).
const MAX_SESSION_ID_BYTES: usize = 256;
/// The longest `installed_from` (the marketplace's `<item>@<version>`), in characters.
const MAX_INSTALLED_FROM_CHARS: usize = 200;
/// The most statuses ListRuns filters on: one of each.
const MAX_STATUSES: usize = 5;

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

fn id(field: &str, raw: &str) -> Result<Uuid> {
    Uuid::parse_str(raw.trim()).map_err(|_| ChainError::invalid(field, "must be a UUID"))
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

fn page(request: Option<&pb::PageRequest>) -> Result<(i64, Option<Uuid>)> {
    let Some(request) = request else {
        return Ok((DEFAULT_PAGE_SIZE, None));
    };
    let size = match i64::from(request.page_size) {
        0 => DEFAULT_PAGE_SIZE,
        size if size > MAX_PAGE_SIZE => {
            return Err(ChainError::invalid(
                "page.page_size",
                format!("must be at most {MAX_PAGE_SIZE}"),
            ));
        }
        size => size,
    };
    let after = if request.page_token.is_empty() {
        None
    } else {
        Some(id("page.page_token", &request.page_token)?)
    };
    Ok((size, after))
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

fn version_number(field: &str, version: u32) -> Result<i32> {
    i32::try_from(version)
        .ok()
        .filter(|version| *version >= 1)
        .ok_or_else(|| ChainError::invalid(field, "must be 1 or more"))
}

fn chain_name(field: &str, raw: &str) -> Result<String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(ChainError::invalid(
            field,
            format!("must be 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    Ok(name.to_owned())
}

/// `text` if it is at most `max` characters.
fn at_most_chars<'a>(field: &str, text: &'a str, max: usize) -> Result<&'a str> {
    if text.chars().count() > max {
        return Err(ChainError::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(text)
}

/// A run's input: a JSON object of at most [`MAX_INPUT_BYTES`], nested at most
/// [`MAX_JSON_DEPTH`] levels; `{}` when empty.
fn run_input(raw: &str) -> Result<Value> {
    if raw.len() > MAX_INPUT_BYTES {
        return Err(ChainError::invalid(
            "input_json",
            format!(
                "is {} bytes; a run's input may be at most {MAX_INPUT_BYTES}",
                raw.len()
            ),
        ));
    }
    if raw.trim().is_empty() {
        return Ok(json!({}));
    }
    let input: Value = serde_json::from_str(raw)
        .map_err(|err| ChainError::invalid("input_json", format!("is not JSON: {err}")))?;
    if !input.is_object() {
        return Err(ChainError::invalid("input_json", "must be a JSON object"));
    }
    if definition::nests_deeper(&input, MAX_JSON_DEPTH) {
        return Err(ChainError::invalid(
            "input_json",
            format!("nests deeper than {MAX_JSON_DEPTH} levels"),
        ));
    }
    Ok(input)
}

/// The idempotency key, if one is given: at most [`MAX_IDEMPOTENCY_KEY_BYTES`].
fn idempotency_key(raw: &str) -> Result<Option<&str>> {
    let key = raw.trim();
    if key.len() > MAX_IDEMPOTENCY_KEY_BYTES {
        return Err(ChainError::invalid(
            "idempotency_key",
            format!("must be at most {MAX_IDEMPOTENCY_KEY_BYTES} bytes"),
        ));
    }
    Ok(Some(key).filter(|key| !key.is_empty()))
}

/// The memory session a run shares, if the caller names one: 1 to [`MAX_SESSION_ID_BYTES`] of
/// ASCII letters, digits, `_`, `-` and `:`, as memory takes them (a name memory would refuse
/// would fail every step's save).
fn session_id(raw: Option<&str>) -> Result<Option<String>> {
    let Some(session) = raw.map(str::trim).filter(|session| !session.is_empty()) else {
        return Ok(None);
    };
    if session.len() > MAX_SESSION_ID_BYTES
        || !session
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b':'))
    {
        return Err(ChainError::invalid(
            "session_id",
            format!("must be 1 to {MAX_SESSION_ID_BYTES} ASCII letters, digits, '_', '-' and ':'"),
        ));
    }
    Ok(Some(session.to_owned()))
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

impl ChainApi {
    /// Parses a definition and asks agent-runner about its agents, with the caller's token.
    /// The problems found are listed up to [`definition::MAX_VIOLATIONS`].
    async fn check(&self, token: &str, document: &str) -> Result<Definition> {
        let definition = definition::parse(document)
            .map_err(|problems| ChainError::InvalidDefinition(definition::at_most(problems)))?;
        let unknown = agents::unknown_agents(&self.state.agents, token, &definition).await?;
        if unknown.is_empty() {
            Ok(definition)
        } else {
            Err(ChainError::InvalidDefinition(definition::at_most(unknown)))
        }
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

fn status_name(status: i32) -> Result<&'static str> {
    match pb::ChainRunStatus::try_from(status) {
        Ok(pb::ChainRunStatus::Pending) => Ok(RunStatus::Pending.as_str()),
        Ok(pb::ChainRunStatus::Running) => Ok(RunStatus::Running.as_str()),
        Ok(pb::ChainRunStatus::Completed) => Ok(RunStatus::Completed.as_str()),
        Ok(pb::ChainRunStatus::Failed) => Ok(RunStatus::Failed.as_str()),
        Ok(pb::ChainRunStatus::Cancelled) => Ok(RunStatus::Cancelled.as_str()),
        Ok(pb::ChainRunStatus::Unspecified) | Err(_) => {
            Err(ChainError::invalid("statuses", "must name run statuses"))
        }
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

/// What ExecuteChain resolved its target to.
struct Target {
    definition: Definition,
    chain_id: Option<Uuid>,
    chain_version: Option<i32>,
    template: Option<String>,
}

#[tonic::async_trait]
impl ChainService for ChainApi {
    async fn create_chain(&self, request: Request<pb::CreateChainRequest>) -> Reply<pb::Chain> {
        let caller = kit_auth::authorize(&request, "chains:write")?;
        let tenant = tenant_of(caller)?;
        let token = bearer(&request)?;
        let message = request.get_ref();
        let definition = self.check(&token, &message.definition_json).await?;
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
        let definition = self.check(&token, &message.definition_json).await?;
        let name = message
            .name
            .as_deref()
            .map(|name| chain_name("name", name))
            .transpose()?;
        let expected_version = message
            .expected_version
            .map(|version| version_number("expected_version", version))
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
                    .map(|version| version_number("version", version))
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
        let (size, after) = page(message.page.as_ref())?;
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
        match self.check(&token, &request.get_ref().definition_json).await {
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
        let message = request.into_inner();
        let input = run_input(&message.input_json)?;
        let session = session_id(message.session_id.as_deref())?;
        let wait_limit = match message.wait_timeout_ms {
            0 => DEFAULT_WAIT,
            ms => Duration::from_millis(ms).min(MAX_WAIT),
        };
        let request_hash = hex::encode(Sha256::digest(
            json!({
                "target": format!("{:?}", message.target),
                "input": input,
                "session": message.session_id,
            })
            .to_string(),
        ));
        let idempotency_key = idempotency_key(&message.idempotency_key)?;
        if let Some(key) = idempotency_key
            && let Some(existing) = runs::by_idempotency_key(&self.state.pool, tenant, key).await?
        {
            return self
                .answer_repeat(tenant, existing, &request_hash, message.wait, wait_limit)
                .await;
        }
        // A quick look first, so a tenant at its quota costs no lookups and no credential; the
        // count that decides is taken under the tenant's lock at the end.
        let quota = self.state.config.max_concurrent_runs_per_tenant;
        let quota_rows = i64::try_from(quota).unwrap_or(i64::MAX);
        if runs::unfinished(&self.state.pool, tenant).await? >= quota_rows {
            // A repeat of a run accepted since the lookup above is answered, not refused.
            if let Some(key) = idempotency_key
                && let Some(existing) =
                    runs::by_idempotency_key(&self.state.pool, tenant, key).await?
            {
                return self
                    .answer_repeat(tenant, existing, &request_hash, message.wait, wait_limit)
                    .await;
            }
            return Err(run_quota_exceeded(quota).into());
        }

        let target = self.resolve(tenant, message.target, &token).await?;
        let problems = target.definition.input_problems(&input);
        if !problems.is_empty() {
            return Err(ChainError::InvalidInput(definition::at_most(problems)).into());
        }
        let run_id = Uuid::now_v7();
        let issued = credentials::issue(
            &self.state.auth,
            &token,
            &caller,
            run_id,
            self.state.config.credential_ttl,
        )
        .await?;
        let session_id = session.unwrap_or_else(|| format!("run-{run_id}"));
        let definition_value = serde_json::to_value(&target.definition)
            .map_err(|err| ChainError::Internal(err.into()))?;
        let claim_now = self.state.engine.has_room();
        let mut tx = self.state.pool.begin().await.map_err(ChainError::from)?;
        let inserted = runs::insert(
            &mut tx,
            &runs::NewRun {
                id: run_id,
                tenant_id: tenant,
                chain_id: target.chain_id,
                chain_version: target.chain_version,
                template: target.template.as_deref(),
                chain_name: &target.definition.name,
                input: &input,
                session_id: &session_id,
                idempotency_key,
                request_hash: &request_hash,
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
                lease: claim_now.then_some((self.state.engine.owner, self.state.config.lease_ttl)),
            },
        )
        .await?;
        if !inserted {
            // Another request with the same key won the race: answer with its run.
            drop(tx);
            credentials::revoke_unused(&self.state.auth, &token, issued).await;
            let key = idempotency_key.expect("only a key can conflict");
            let existing = runs::by_idempotency_key(&self.state.pool, tenant, key)
                .await?
                .ok_or(ChainError::NotFound("run"))?;
            return self
                .answer_repeat(tenant, existing, &request_hash, message.wait, wait_limit)
                .await;
        }
        credentials::store(&mut tx, run_id, &issued).await?;
        if runs::unfinished_locked(&mut tx, tenant).await? > quota_rows {
            drop(tx);
            credentials::revoke_unused(&self.state.auth, &token, issued).await;
            return Err(run_quota_exceeded(quota).into());
        }
        if claim_now {
            // It starts running here and now; a run left pending is announced by its claim.
            RunEvent::run_started(run_id, &target.definition.name)
                .commit(&self.state, tx, &tenant.to_string())
                .await
                .map_err(ChainError::from)?;
        } else {
            tx.commit().await.map_err(ChainError::from)?;
        }
        tracing::info!(run = %run_id, chain = %target.definition.name, "run accepted");
        if claim_now {
            self.state.engine.drive(run_id);
        }
        self.answer(tenant, run_id, message.wait, wait_limit).await
    }

    async fn get_run(&self, request: Request<pb::GetRunRequest>) -> Reply<pb::ChainRun> {
        let caller = kit_auth::authorize(&request, "chains:read")?;
        let tenant = tenant_of(caller)?;
        let run_id = id("id", &request.get_ref().id)?;
        let run = runs::get(&self.state.pool, tenant, run_id).await?;
        let steps = runs::steps(&self.state.pool, run_id).await?;
        Ok(Response::new(run_message(run, Some(steps))))
    }

    async fn list_runs(
        &self,
        request: Request<pb::ListRunsRequest>,
    ) -> Reply<pb::ListRunsResponse> {
        let caller = kit_auth::authorize(&request, "chains:read")?;
        let tenant = tenant_of(caller)?;
        let message = request.get_ref();
        let (size, after) = page(message.page.as_ref())?;
        if message.statuses.len() > MAX_STATUSES {
            return Err(ChainError::invalid(
                "statuses",
                format!("may list at most {MAX_STATUSES} statuses"),
            )
            .into());
        }
        let statuses = message
            .statuses
            .iter()
            .map(|status| status_name(*status).map(str::to_owned))
            .collect::<Result<Vec<_>>>()?;
        let chain_id = if message.chain_id.is_empty() {
            None
        } else {
            Some(id("chain_id", &message.chain_id)?)
        };
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
        let mut tx = self.state.pool.begin().await.map_err(ChainError::from)?;
        match runs::request_cancel(&mut tx, tenant, run_id).await? {
            CancelRequest::Ended => {
                RunEvent::run_cancelled(run_id)
                    .commit(&self.state, tx, &tenant.to_string())
                    .await
                    .map_err(ChainError::from)?;
            }
            CancelRequest::Requested => {
                tx.commit().await.map_err(ChainError::from)?;
                self.state.engine.cancel_local(run_id);
            }
            // Finished, or not the caller's: nothing to stop. Another tenant's run is left
            // alone, and the lookup below answers NOT_FOUND for it.
            CancelRequest::Nothing => drop(tx),
        }
        let run = runs::get(&self.state.pool, tenant, run_id).await?;
        let steps = runs::steps(&self.state.pool, run_id).await?;
        Ok(Response::new(run_message(run, Some(steps))))
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

impl ChainApi {
    /// The definition an ExecuteChain request names, checked again: agents may have gone since
    /// it was saved.
    async fn resolve(
        &self,
        tenant: Uuid,
        target: Option<pb::execute_chain_request::Target>,
        token: &str,
    ) -> Result<Target> {
        use pb::execute_chain_request::Target as Wire;
        let resolved = match target {
            Some(Wire::Chain(chain)) => {
                let version = chain
                    .version
                    .map(|version| version_number("chain.version", version))
                    .transpose()?;
                let stored = chains::get(
                    &self.state.pool,
                    tenant,
                    id("chain.id", &chain.id)?,
                    version,
                )
                .await?;
                let mut definition = self.check(token, &stored.definition_json).await?;
                definition.name = stored.name;
                Target {
                    definition,
                    chain_id: Some(stored.id),
                    chain_version: Some(stored.version),
                    template: None,
                }
            }
            Some(Wire::Template(name)) => {
                let template = self
                    .state
                    .templates
                    .get(&name)
                    .ok_or(ChainError::NotFound("template"))?;
                let mut definition = template.definition.clone();
                let unknown =
                    agents::unknown_agents(&self.state.agents, token, &definition).await?;
                if !unknown.is_empty() {
                    return Err(ChainError::InvalidDefinition(unknown));
                }
                definition.name = template.name.clone();
                Target {
                    definition,
                    chain_id: None,
                    chain_version: None,
                    template: Some(name),
                }
            }
            Some(Wire::DefinitionJson(document)) => Target {
                definition: self.check(token, &document).await?,
                chain_id: None,
                chain_version: None,
                template: None,
            },
            None => {
                return Err(ChainError::invalid(
                    "target",
                    "give a chain, a template or a definition",
                ));
            }
        };
        Ok(resolved)
    }

    /// The run a repeated idempotency key started, if the request is the same one.
    async fn answer_repeat(
        &self,
        tenant: Uuid,
        existing: runs::Run,
        request_hash: &str,
        wait: bool,
        wait_limit: Duration,
    ) -> Reply<pb::ChainRun> {
        if existing.request_hash != request_hash {
            return Err(ChainError::Precondition(
                "this idempotency key was used for a different request".to_owned(),
            )
            .into());
        }
        self.answer(tenant, existing.id, wait, wait_limit).await
    }

    async fn answer(
        &self,
        tenant: Uuid,
        run_id: Uuid,
        wait: bool,
        wait_limit: Duration,
    ) -> Reply<pb::ChainRun> {
        let run = if wait {
            engine::wait(&self.state, tenant, run_id, wait_limit).await?
        } else {
            runs::get(&self.state.pool, tenant, run_id).await?
        };
        let steps = runs::steps(&self.state.pool, run_id).await?;
        Ok(Response::new(run_message(run, Some(steps))))
    }
}
