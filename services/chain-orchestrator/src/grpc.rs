//! `sankalpa.v1.ChainService`: an adapter. Each RPC checks the caller's permission, turns the
//! request into checked values ([`crate::input`], a bound exceeded is INVALID_ARGUMENT naming
//! the field, before any work), calls the domain ([`crate::runs`], [`crate::chains`], the
//! definition checks of [`crate::agents`], [`crate::watch`]) and turns its result back into a
//! wire message; errors reach the caller as `error.rs` maps them.

use sankalpa_kit::grpc::timestamp;
use std::sync::Arc;

use sankalpa_kit::auth as kit_auth;
use sankalpa_kit::paging;
use sankalpa_proto::v1 as pb;
use sankalpa_proto::v1::chain_service_server::ChainService;
use serde_json::Value;
use tonic::{Request, Response, Status};

use crate::definition::MAX_DESCRIPTION_CHARS;
use crate::error::{ChainError, Result};
use crate::input::{self, MAX_INSTALLED_FROM_CHARS, at_most_chars, chain_name, id};
use crate::runs::store::{self, RunStatus, StepStatus};
use crate::runs::{self, Detailed};
use crate::watch::{self, EventStream};
use crate::{State, agents, approvals, chains, retention};

pub struct ChainApi {
    state: Arc<State>,
}

impl ChainApi {
    pub(crate) fn new(state: Arc<State>) -> Self {
        Self { state }
    }

    /// ApproveStep and RejectStep: the same decision but for its verdict.
    async fn decide(
        &self,
        caller: &kit_auth::Principal,
        run_id: &str,
        step_id: &str,
        approve: bool,
        input_json: &str,
        comment: &str,
    ) -> Reply<pb::ChainRun> {
        let tenant = caller.tenant()?;
        let run_id = id("run_id", run_id)?;
        let decision = input::decision(approve, input_json, comment)?;
        let run = approvals::decide(&self.state, caller, tenant, run_id, step_id, decision).await?;
        Ok(Response::new(detailed_message(run)))
    }
}

type Reply<T> = std::result::Result<Response<T>, Status>;

/// The caller's own token, to act for them towards agent-runner and auth.
fn bearer<T>(request: &Request<T>) -> Result<String> {
    kit_auth::bearer_token(request)
        .map(str::to_owned)
        .ok_or_else(|| ChainError::Precondition("an access token is required".to_owned()))
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
        RunStatus::Waiting => pb::ChainRunStatus::Waiting,
        RunStatus::Completed => pb::ChainRunStatus::Completed,
        RunStatus::Failed => pb::ChainRunStatus::Failed,
        RunStatus::Cancelled => pb::ChainRunStatus::Cancelled,
    }
}

fn step_status(status: StepStatus) -> pb::StepStatus {
    match status {
        StepStatus::Pending => pb::StepStatus::Pending,
        StepStatus::Running => pb::StepStatus::Running,
        StepStatus::Waiting => pb::StepStatus::Waiting,
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

fn step_message(step: store::Step) -> pb::StepRun {
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
        kind: step.kind,
        child_run_id: step
            .child_run_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
    }
}

/// A run and its steps on the wire.
fn detailed_message((run, steps): Detailed) -> pb::ChainRun {
    run_message(run, Some(steps))
}

/// A run on the wire; `steps` only where the RPC returns them.
fn run_message(run: store::Run, steps: Option<Vec<store::Step>>) -> pb::ChainRun {
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
        parent_run_id: run
            .parent_run_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        parent_step: run.parent_step.unwrap_or_default(),
    }
}

#[tonic::async_trait]
impl ChainService for ChainApi {
    async fn create_chain(&self, request: Request<pb::CreateChainRequest>) -> Reply<pb::Chain> {
        let caller = kit_auth::authorize(&request, "chains:write")?;
        let tenant = caller.tenant()?;
        let token = bearer(&request)?;
        let message = request.get_ref();
        let definition =
            agents::check(&self.state, caller, &token, &message.definition_json, None).await?;
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
        let tenant = caller.tenant()?;
        let token = bearer(&request)?;
        let message = request.get_ref();
        let chain_id = id("id", &message.id)?;
        let definition = agents::check(
            &self.state,
            caller,
            &token,
            &message.definition_json,
            Some(chain_id),
        )
        .await?;
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
        let tenant = caller.tenant()?;
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
        let tenant = caller.tenant()?;
        let message = request.get_ref();
        let (size, after) = paging::after_id(message.page.as_ref())?;
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
            page: paging::response(next_page_token),
        }))
    }

    async fn delete_chain(
        &self,
        request: Request<pb::DeleteChainRequest>,
    ) -> Reply<pb::DeleteChainResponse> {
        let caller = kit_auth::authorize(&request, "chains:write")?;
        let tenant = caller.tenant()?;
        chains::delete(&self.state.pool, tenant, id("id", &request.get_ref().id)?).await?;
        Ok(Response::new(pb::DeleteChainResponse {}))
    }

    async fn validate_chain(
        &self,
        request: Request<pb::ValidateChainRequest>,
    ) -> Reply<pb::ValidateChainResponse> {
        let caller = kit_auth::authorize(&request, "chains:read")?;
        let token = bearer(&request)?;
        match agents::check(
            &self.state,
            caller,
            &token,
            &request.get_ref().definition_json,
            None,
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
        let tenant = caller.tenant()?;
        let token = bearer(&request)?;
        let execution = input::execution(request.into_inner())?;
        let run = runs::execute(&self.state, &caller, tenant, &token, execution).await?;
        Ok(Response::new(detailed_message(run)))
    }

    async fn get_run(&self, request: Request<pb::GetRunRequest>) -> Reply<pb::ChainRun> {
        let caller = kit_auth::authorize(&request, "chains:read")?;
        let tenant = caller.tenant()?;
        let run_id = id("id", &request.get_ref().id)?;
        let run = runs::detailed(&self.state, tenant, run_id).await?;
        Ok(Response::new(detailed_message(run)))
    }

    async fn list_runs(
        &self,
        request: Request<pb::ListRunsRequest>,
    ) -> Reply<pb::ListRunsResponse> {
        let caller = kit_auth::authorize(&request, "chains:read")?;
        let tenant = caller.tenant()?;
        let message = request.get_ref();
        let (size, after) = paging::after_id(message.page.as_ref())?;
        let statuses = input::statuses(&message.statuses)?;
        let chain_id = input::optional_id("chain_id", &message.chain_id)?;
        let (created_since, created_until) = input::created_window(
            message.created_since.as_ref(),
            message.created_until.as_ref(),
        )?;
        let mut rows = store::list(
            &self.state.pool,
            tenant,
            &store::ListFilter {
                statuses,
                chain_id,
                created_since,
                created_until,
                size,
                after,
            },
        )
        .await?;
        let next_page_token = paging::next_token(&mut rows, size, |run| run.id.to_string());
        Ok(Response::new(pb::ListRunsResponse {
            runs: rows.into_iter().map(|run| run_message(run, None)).collect(),
            page: paging::response(next_page_token),
        }))
    }

    async fn cancel_run(&self, request: Request<pb::CancelRunRequest>) -> Reply<pb::ChainRun> {
        let caller = kit_auth::authorize(&request, "chains:execute")?;
        let tenant = caller.tenant()?;
        let run_id = id("id", &request.get_ref().id)?;
        let run = runs::cancel(&self.state, tenant, run_id).await?;
        Ok(Response::new(detailed_message(run)))
    }

    async fn approve_step(&self, request: Request<pb::ApproveStepRequest>) -> Reply<pb::ChainRun> {
        let caller = kit_auth::authorize(&request, "chains:execute")?;
        let message = request.get_ref();
        self.decide(
            caller,
            &message.run_id,
            &message.step_id,
            true,
            &message.input_json,
            &message.comment,
        )
        .await
    }

    async fn reject_step(&self, request: Request<pb::RejectStepRequest>) -> Reply<pb::ChainRun> {
        let caller = kit_auth::authorize(&request, "chains:execute")?;
        let message = request.get_ref();
        self.decide(
            caller,
            &message.run_id,
            &message.step_id,
            false,
            &message.input_json,
            &message.comment,
        )
        .await
    }

    type WatchRunStream = EventStream;

    async fn watch_run(&self, request: Request<pb::WatchRunRequest>) -> Reply<EventStream> {
        let caller = kit_auth::authorize(&request, "chains:read")?;
        let tenant = caller.tenant()?;
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

    async fn get_chain_settings(
        &self,
        request: Request<pb::GetChainSettingsRequest>,
    ) -> Reply<pb::ChainSettings> {
        let caller = kit_auth::authorize(&request, "chains:read")?;
        let settings = retention::get(
            &self.state.pool,
            caller.tenant()?,
            self.state.config.run_retention_days,
        )
        .await?;
        Ok(Response::new(settings_message(settings)))
    }

    async fn update_chain_settings(
        &self,
        request: Request<pb::UpdateChainSettingsRequest>,
    ) -> Reply<pb::ChainSettings> {
        // Tenant-wide, as managing its users is: the tenant admin's permission.
        let caller = kit_auth::authorize(&request, "users:admin")?;
        let tenant = caller.tenant()?;
        let settings = retention::set(
            &self.state.pool,
            tenant,
            request.get_ref().retention_days,
            &caller.subject,
        )
        .await?;
        self.state.retention.forget(tenant);
        Ok(Response::new(settings_message(settings)))
    }
}

fn settings_message(settings: retention::Settings) -> pb::ChainSettings {
    let (updated_at, updated_by) = match settings.changed {
        Some((at, by)) => (Some(timestamp(at)), by),
        None => (None, String::new()),
    };
    pb::ChainSettings {
        retention_days: settings.retention_days,
        is_default: updated_at.is_none(),
        updated_at,
        updated_by,
    }
}

fn next_page_token_of(rows: &mut Vec<chains::ChainVersion>, size: i64) -> String {
    paging::next_token(rows, size, |chain| chain.id.to_string())
}
