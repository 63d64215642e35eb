//! `sankalpa.v1.AgentService`: checks the caller's permission, turns wire messages into domain
//! requests (validating on receipt) and results back into wire messages.

use sankalpa_kit::grpc::timestamp;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::Stream;
use sankalpa_kit::auth::authorize;
use sankalpa_kit::problem::FieldViolation;
use sankalpa_proto::v1 as pb;
use sankalpa_proto::v1::agent_service_server::AgentService;
use serde_json::Value;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::artifacts::{TenantFiles, valid_id};
use crate::assistant::{self, Conversation};
use crate::catalog::Agent;
use crate::custom::CustomAgent;
use crate::custom::compile::{Compiled, MAX_DEFINITION_BYTES, compile_apart};
use crate::error::{self, Result, RunnerError};
use crate::llm::{LlmClient, LlmError, Message, Protocol};
use crate::llm_usage::MAX_USAGE_DAYS;
use crate::outcome::{Run, Status as RunStatus};
use crate::providers::{self, Provider, ProviderInput};
use crate::runs::{self, RunRequest, Side};
use crate::spec::{CATEGORIES, valid_name};
use crate::state::State;

pub struct AgentApi {
    state: Arc<State>,
}

impl AgentApi {
    pub(crate) fn new(state: Arc<State>) -> Self {
        Self { state }
    }
}

type Reply<T> = std::result::Result<Response<T>, Status>;

/// The size of a GetArtifacts chunk: well under gRPC's 4 MiB message limit.
const CHUNK: usize = 64 * 1024;

/// The caller's tenant, which names their artifacts folder and scopes their custom agents.
fn agent_message(agent: &Agent) -> pb::Agent {
    let spec = agent.spec();
    let (origin, custom) = match agent {
        Agent::Builtin(_) => (pb::AgentOrigin::Builtin, None),
        Agent::Custom(custom) => (
            pb::AgentOrigin::Custom,
            Some(pb::CustomAgentInfo {
                definition_json: custom.definition.to_string(),
                revision: custom.revision,
                created_by: custom.created_by.clone(),
                created_at: Some(timestamp(custom.created_at)),
                updated_at: Some(timestamp(custom.updated_at)),
                installed_from: custom.installed_from.clone(),
            }),
        ),
    };
    pb::Agent {
        name: spec.name.clone(),
        category: spec.category.clone(),
        description: spec.description.clone(),
        version: spec.version.clone(),
        input_schema_json: spec.input.source().to_string(),
        output_schema_json: spec.output.source().to_string(),
        llm_capable: spec.llm_capable,
        origin: origin as i32,
        custom,
    }
}

fn run_message(run: Run) -> pb::AgentRun {
    let status = match run.status {
        RunStatus::Completed => pb::AgentRunStatus::Completed,
        RunStatus::Failed => pb::AgentRunStatus::Failed,
        RunStatus::Cancelled => pb::AgentRunStatus::Cancelled,
    };
    pb::AgentRun {
        run_id: run.run_id,
        agent: run.agent,
        agent_version: run.agent_version,
        status: status as i32,
        output_json: run.output.map(|o| o.to_string()).unwrap_or_default(),
        artifacts: run
            .artifacts
            .into_iter()
            .map(|a| pb::Artifact {
                path: a.path,
                size_bytes: a.size_bytes,
                sha256: a.sha256,
            })
            .collect(),
        workspace_id: run.workspace_id,
        duration_ms: run.duration.as_millis() as u64,
        llm_used: run.usage.used,
        llm_model: run.usage.model,
        prompt_tokens: run.usage.prompt_tokens,
        completion_tokens: run.usage.completion_tokens,
        error: run.error.map(|e| pb::RunError {
            code: e.code,
            message: e.message,
        }),
        session_id: run.session_id.unwrap_or_default(),
        started_at: Some(timestamp(run.started_at)),
        finished_at: Some(timestamp(run.finished_at)),
    }
}

/// The definition document in `definition_json`, or why there is none: text past
/// [`MAX_DEFINITION_BYTES`] is refused before it is parsed.
fn definition_document(definition_json: &str) -> std::result::Result<Value, String> {
    if definition_json.len() > MAX_DEFINITION_BYTES {
        return Err(format!("must be at most {MAX_DEFINITION_BYTES} bytes"));
    }
    let document: Value =
        serde_json::from_str(definition_json).map_err(|err| format!("not JSON: {err}"))?;
    if sankalpa_kit::bounded_json::holds_nul(&document) {
        return Err(sankalpa_kit::bounded_json::NUL_REFUSED.to_owned());
    }
    Ok(document)
}

/// The client's own deadline (`grpc-timeout`, e.g. `500m`), if it sent one.
fn grpc_timeout<T>(request: &Request<T>) -> Option<Duration> {
    let value = request.metadata().get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

impl AgentApi {
    /// The model a run or reply of `tenant` asks: the one `named`, else the tenant's default
    /// model, else the fleet's LLM.
    async fn model_for(&self, tenant: Uuid, named: Option<&str>) -> Result<Option<Arc<LlmClient>>> {
        let chosen = self.state.providers.resolve(tenant, named).await?;
        Ok(chosen.map(Arc::new).or_else(|| self.state.llm.clone()))
    }

    /// A built-in agent, or the tenant's custom agent, by name.
    async fn find(&self, tenant: Uuid, name: &str) -> Result<Agent> {
        if let Some(agent) = self.state.catalog.get(name) {
            return Ok(agent.clone());
        }
        // No agent has another name: the database need not be asked (nor sent megabytes).
        if !valid_name(name) {
            return Err(RunnerError::NotFound(format!("agent {name:?}")));
        }
        match self.state.custom.get(tenant, name).await? {
            Some(agent) => Ok(Agent::Custom(agent)),
            None => Err(RunnerError::NotFound(format!("agent {name:?}"))),
        }
    }

    /// The agent a definition document describes, or INVALID_ARGUMENT naming each problem
    /// (fields prefixed with `definition_json.`).
    async fn compile(&self, definition_json: &str) -> Result<Compiled> {
        let document = definition_document(definition_json)
            .map_err(|message| RunnerError::invalid("definition_json", message))?;
        let (definition, compiled) = compile_apart(document).await?;
        let (spec, behaviour) = compiled.map_err(|problems| {
            RunnerError::Invalid(
                problems
                    .into_iter()
                    .map(|v| FieldViolation {
                        field: if v.path.is_empty() {
                            "definition_json".to_owned()
                        } else {
                            format!("definition_json.{}", v.path)
                        },
                        message: v.message,
                    })
                    .collect(),
            )
        })?;
        Ok(Compiled {
            spec,
            behaviour,
            definition,
        })
    }

    fn run_request(
        &self,
        tenant: Uuid,
        caller: String,
        agent: Agent,
        message: pb::ExecuteAgentRequest,
        client_deadline: Option<Duration>,
    ) -> Result<RunRequest> {
        let input: Value = if message.input_json.trim().is_empty() {
            Value::Object(Default::default())
        } else {
            serde_json::from_str(&message.input_json)
                .map_err(|err| RunnerError::invalid("input_json", format!("not JSON: {err}")))?
        };
        if sankalpa_kit::bounded_json::holds_nul(&input) {
            return Err(RunnerError::invalid(
                "input_json",
                sankalpa_kit::bounded_json::NUL_REFUSED,
            ));
        }
        let named = message.run_id.is_some();
        let run_id = match message.run_id {
            Some(id) if valid_id(&id) => id,
            Some(_) => {
                return Err(RunnerError::invalid(
                    "run_id",
                    "must match [A-Za-z0-9_-]{1,128}",
                ));
            }
            None => Uuid::new_v4().to_string(),
        };
        let workspace_id = match message.workspace_id {
            Some(id) if valid_id(&id) => id,
            Some(_) => {
                return Err(RunnerError::invalid(
                    "workspace_id",
                    "must match [A-Za-z0-9_-]{1,128}",
                ));
            }
            None => run_id.clone(),
        };
        let session_id = message.session_id.filter(|s| !s.is_empty());
        if session_id.as_ref().is_some_and(|s| s.len() > 128) {
            return Err(RunnerError::invalid(
                "session_id",
                "must be at most 128 characters",
            ));
        }
        let requested = match message.deadline_ms {
            0 => self.state.default_deadline,
            ms => Duration::from_millis(ms),
        };
        if requested > self.state.max_deadline {
            return Err(RunnerError::invalid(
                "deadline_ms",
                format!("must be at most {}", self.state.max_deadline.as_millis()),
            ));
        }
        let deadline = client_deadline.map_or(requested, |client| client.min(requested));
        let mode = pb::LlmMode::try_from(message.llm).unwrap_or(pb::LlmMode::Unspecified);
        let use_llm = agent.spec().llm_capable
            && match mode {
                pb::LlmMode::Off => false,
                pb::LlmMode::Preferred => true,
                pb::LlmMode::Unspecified => agent.llm_by_default(),
            };
        Ok(RunRequest {
            agent,
            input,
            tenant: tenant.to_string(),
            caller,
            bearer: None,
            run_id,
            named,
            first_ask: named && message.first_ask,
            workspace_id,
            session_id,
            deadline,
            use_llm,
            llm: None,
            stream_deltas: message.stream_deltas,
        })
    }
}

#[tonic::async_trait]
impl AgentService for AgentApi {
    async fn list_agents(
        &self,
        request: Request<pb::ListAgentsRequest>,
    ) -> Reply<pb::ListAgentsResponse> {
        let caller = authorize(&request, "agents:read")?;
        let tenant = caller.tenant()?;
        let message = request.into_inner();
        if !message.category.is_empty() && !CATEGORIES.contains(&message.category.as_str()) {
            return Err(RunnerError::invalid(
                "category",
                format!("must be one of {}", CATEGORIES.join(", ")),
            )
            .into());
        }
        let origin = pb::AgentOrigin::try_from(message.origin).unwrap_or_default();
        // Ordered and paged by (category, name) first, so that only the custom agents on the
        // page are loaded and compiled.
        let mut listed: Vec<(String, String, Option<Agent>)> = Vec::new();
        if origin != pb::AgentOrigin::Custom {
            listed.extend(self.state.catalog.agents().iter().map(|agent| {
                let spec = agent.spec();
                (
                    spec.category.clone(),
                    spec.name.clone(),
                    Some(agent.clone()),
                )
            }));
        }
        if origin != pb::AgentOrigin::Builtin {
            let custom = self.state.custom.listing(tenant).await?;
            listed.extend(
                custom
                    .into_iter()
                    .map(|(category, name)| (category, name, None)),
            );
        }
        listed
            .retain(|(category, ..)| message.category.is_empty() || *category == message.category);
        listed.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        let page = message.page.unwrap_or_default();
        let size = match page.page_size {
            0 => 50,
            n => n.min(200) as usize,
        };
        // The listing is small and ordered: an offset is a stable enough page token.
        let offset: usize = if page.page_token.is_empty() {
            0
        } else {
            page.page_token.parse().map_err(|_| {
                Status::from(RunnerError::invalid(
                    "page.page_token",
                    "is not a token this service gave",
                ))
            })?
        };
        let next = offset.saturating_add(size);
        let next_page_token = if next < listed.len() {
            next.to_string()
        } else {
            String::new()
        };
        let on_page: Vec<_> = listed.into_iter().skip(offset).take(size).collect();
        let custom_names: Vec<String> = on_page
            .iter()
            .filter(|(_, _, builtin)| builtin.is_none())
            .map(|(_, name, _)| name.clone())
            .collect();
        let mut loaded = self.state.custom.load(tenant, &custom_names).await?;
        let agents = on_page
            .into_iter()
            .filter_map(|(_, name, builtin)| match builtin {
                Some(agent) => Some(agent),
                // Gone since it was listed, or no longer compiling: left off the page.
                None => match loaded.remove(&name)? {
                    Ok(agent) => Some(Agent::Custom(agent)),
                    Err(reason) => {
                        tracing::warn!(agent = %name, %reason, "a custom agent cannot be listed");
                        None
                    }
                },
            })
            .map(|agent| agent_message(&agent))
            .collect();
        Ok(Response::new(pb::ListAgentsResponse {
            agents,
            page: Some(pb::PageResponse { next_page_token }),
        }))
    }

    async fn get_agent(&self, request: Request<pb::GetAgentRequest>) -> Reply<pb::Agent> {
        let caller = authorize(&request, "agents:read")?;
        let tenant = caller.tenant()?;
        let agent = self.find(tenant, &request.get_ref().name).await?;
        Ok(Response::new(agent_message(&agent)))
    }

    async fn execute_agent(
        &self,
        request: Request<pb::ExecuteAgentRequest>,
    ) -> Reply<pb::AgentRun> {
        let caller = authorize(&request, "agents:execute")?.clone();
        let tenant = caller.tenant()?;
        let client_deadline = grpc_timeout(&request);
        let bearer = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let message = request.into_inner();
        let named_model = message.model.clone().filter(|model| !model.is_empty());
        let agent = self.find(tenant, &message.agent).await?;
        if agent.defines_agents() {
            // An agent that defines agents: running it is writing.
            caller.require("agents:write")?;
        }
        let mut run = self.run_request(tenant, caller.subject, agent, message, client_deadline)?;
        run.bearer = bearer;
        let input = std::mem::take(&mut run.input);
        let (input, problems) = runs::validate(&run.agent, Side::Input, input).await?;
        if !problems.is_empty() {
            return Err(RunnerError::from(problems).into());
        }
        run.input = input;
        if run.use_llm {
            run.llm = self.model_for(tenant, named_model.as_deref()).await?;
        } else if named_model.is_some() {
            // A model named is checked even when the run will not ask it: a typo is said at once.
            self.state
                .providers
                .resolve(tenant, named_model.as_deref())
                .await?;
        }
        // Only a run that would call the LLM asks after the tenant's tokens of the day.
        if run.llm.is_some() {
            self.state.tokens.check(tenant).await?;
        }
        let run = runs::execute(&self.state, run).await?;
        // A run that failed because a service it needs could not be asked (memory) is answered
        // as UNAVAILABLE: what a client can act on is to retry, which the gateway says with
        // 503 and Retry-After. Its events have told subscribers already.
        if let Some(error) = run.error.as_ref().filter(|e| e.code == error::UNAVAILABLE) {
            return Err(RunnerError::Unavailable(error.message.clone()).into());
        }
        Ok(Response::new(run_message(run)))
    }

    async fn cancel_agent_run(
        &self,
        request: Request<pb::CancelAgentRunRequest>,
    ) -> Reply<pb::CancelAgentRunResponse> {
        let caller = authorize(&request, "agents:execute")?;
        let tenant = caller.tenant()?;
        let run_id = &request.get_ref().run_id;
        if self.state.runs.cancel(&tenant.to_string(), run_id) {
            Ok(Response::new(pb::CancelAgentRunResponse {}))
        } else {
            Err(RunnerError::NotFound(format!("run {run_id} in flight")).into())
        }
    }

    async fn create_custom_agent(
        &self,
        request: Request<pb::CreateCustomAgentRequest>,
    ) -> Reply<pb::Agent> {
        let caller = authorize(&request, "agents:write")?;
        let tenant = caller.tenant()?;
        let message = request.get_ref();
        let compiled = self.compile(&message.definition_json).await?;
        if self.state.catalog.get(&compiled.spec.name).is_some() {
            return Err(RunnerError::AlreadyExists(format!(
                "{} is a built-in agent",
                compiled.spec.name
            ))
            .into());
        }
        let agent = self
            .state
            .custom
            .create(tenant, compiled, &caller.subject, &message.installed_from)
            .await?;
        Ok(Response::new(agent_message(&Agent::Custom(agent))))
    }

    async fn update_custom_agent(
        &self,
        request: Request<pb::UpdateCustomAgentRequest>,
    ) -> Reply<pb::Agent> {
        let caller = authorize(&request, "agents:write")?;
        let tenant = caller.tenant()?;
        let message = request.get_ref();
        if self.state.catalog.get(&message.name).is_some() {
            return Err(RunnerError::Precondition(format!(
                "{} is a built-in agent and cannot be changed",
                message.name
            ))
            .into());
        }
        let compiled = self.compile(&message.definition_json).await?;
        if compiled.spec.name != message.name {
            return Err(RunnerError::invalid(
                "definition_json.name",
                format!("must be {:?}, the agent being updated", message.name),
            )
            .into());
        }
        let agent = self
            .state
            .custom
            .update(
                tenant,
                compiled,
                message.expected_revision,
                &message.installed_from,
            )
            .await?;
        Ok(Response::new(agent_message(&Agent::Custom(agent))))
    }

    async fn delete_custom_agent(
        &self,
        request: Request<pb::DeleteCustomAgentRequest>,
    ) -> Reply<pb::DeleteCustomAgentResponse> {
        let caller = authorize(&request, "agents:write")?;
        let tenant = caller.tenant()?;
        let name = &request.get_ref().name;
        if self.state.catalog.get(name).is_some() {
            return Err(RunnerError::Precondition(format!(
                "{name} is a built-in agent and cannot be deleted"
            ))
            .into());
        }
        self.state.custom.delete(tenant, name).await?;
        Ok(Response::new(pb::DeleteCustomAgentResponse {}))
    }

    async fn validate_agent_definition(
        &self,
        request: Request<pb::ValidateAgentDefinitionRequest>,
    ) -> Reply<pb::ValidateAgentDefinitionResponse> {
        authorize(&request, "agents:read")?;
        let document = match definition_document(&request.get_ref().definition_json) {
            Ok(document) => document,
            Err(message) => {
                return Ok(Response::new(pb::ValidateAgentDefinitionResponse {
                    valid: false,
                    violations: vec![pb::FieldViolation {
                        field: String::new(),
                        message,
                    }],
                    agent: None,
                }));
            }
        };
        let (document, compiled) = compile_apart(document).await?;
        Ok(Response::new(match compiled {
            Ok((spec, behaviour)) => pb::ValidateAgentDefinitionResponse {
                valid: true,
                violations: Vec::new(),
                agent: Some(agent_message(&Agent::Custom(Arc::new(CustomAgent {
                    spec,
                    behaviour,
                    definition: document,
                    revision: 0,
                    created_by: String::new(),
                    created_at: Utc::now(),
                    updated_at: Utc::now(),
                    installed_from: String::new(),
                })))),
            },
            Err(problems) => pb::ValidateAgentDefinitionResponse {
                valid: false,
                violations: problems
                    .into_iter()
                    .map(|v| pb::FieldViolation {
                        field: v.path,
                        message: v.message,
                    })
                    .collect(),
                agent: None,
            },
        }))
    }

    type GetArtifactsStream =
        Pin<Box<dyn Stream<Item = std::result::Result<pb::ArtifactChunk, Status>> + Send>>;

    async fn get_artifacts(
        &self,
        request: Request<pb::GetArtifactsRequest>,
    ) -> Reply<Self::GetArtifactsStream> {
        let caller = authorize(&request, "agents:read")?;
        let tenant = caller.tenant()?;
        let workspace = &request.get_ref().run_id;
        if !valid_id(workspace) {
            return Err(RunnerError::invalid("run_id", "must match [A-Za-z0-9_-]{1,128}").into());
        }
        let archive = TenantFiles::new(&self.state.objects, &tenant.to_string())
            .archive(workspace)
            .await
            .map_err(RunnerError::Internal)?
            .ok_or_else(|| RunnerError::NotFound(format!("artifacts of {workspace}")))?;
        let chunks: Vec<_> = archive
            .chunks(CHUNK)
            .enumerate()
            .map(|(i, data)| {
                Ok(pb::ArtifactChunk {
                    data: data.to_vec(),
                    offset: (i * CHUNK) as u64,
                })
            })
            .collect();
        Ok(Response::new(Box::pin(futures::stream::iter(chunks))))
    }

    type ConverseStream =
        Pin<Box<dyn Stream<Item = std::result::Result<pb::ConverseEvent, Status>> + Send>>;

    async fn converse(&self, request: Request<pb::ConverseRequest>) -> Reply<Self::ConverseStream> {
        let caller = authorize(&request, "agents:execute")?;
        let tenant = caller.tenant()?;
        let conversation = Conversation::try_from(request.into_inner())?;
        let llm = if conversation.use_llm {
            self.model_for(tenant, None).await?
        } else {
            None
        };
        if llm.is_some() {
            self.state.tokens.check(tenant).await?;
        }
        // The reply is written on the service's task tracker (shutdown waits for it) into a
        // channel the response stream reads: a caller that goes away drops the reader, and the
        // next piece sent finds it closed and stops the writing.
        let (deltas, written) = tokio::sync::mpsc::channel::<String>(16);
        let (end, ended) = tokio::sync::oneshot::channel();
        let state = self.state.clone();
        self.state.tasks.spawn(async move {
            let outcome = assistant::reply(&state, tenant, conversation, llm, &deltas).await;
            drop(deltas);
            let _ = end.send(outcome);
        });
        let pieces = futures::stream::unfold(written, |mut written| async move {
            let text = written.recv().await?;
            let event = pb::ConverseEvent {
                event: Some(pb::converse_event::Event::Delta(pb::ConverseDelta { text })),
            };
            Some((Ok(event), written))
        });
        let done = futures::stream::once(async move {
            match ended.await {
                Ok(Ok(written)) => Ok(pb::ConverseEvent {
                    event: Some(pb::converse_event::Event::Done(pb::ConverseDone {
                        llm_used: written.llm_used,
                        llm_model: written.model,
                        prompt_tokens: written.prompt_tokens,
                        completion_tokens: written.completion_tokens,
                    })),
                }),
                Ok(Err(err)) => Err(Status::from(err)),
                Err(_) => Err(Status::internal("the reply ended without its outcome")),
            }
        });
        Ok(Response::new(Box::pin(futures::StreamExt::chain(
            pieces, done,
        ))))
    }

    async fn list_model_providers(
        &self,
        request: Request<pb::ListModelProvidersRequest>,
    ) -> Reply<pb::ListModelProvidersResponse> {
        let caller = authorize(&request, MODELS_READ)?;
        let tenant = caller.tenant()?;
        let (providers, default_model) = self.state.providers.list(tenant).await?;
        Ok(Response::new(pb::ListModelProvidersResponse {
            providers: providers.into_iter().map(provider_message).collect(),
            default_model: default_model.unwrap_or_default(),
        }))
    }

    async fn put_model_provider(
        &self,
        request: Request<pb::PutModelProviderRequest>,
    ) -> Reply<pb::ModelProvider> {
        let caller = authorize(&request, MODELS_ADMIN)?;
        let tenant = caller.tenant()?;
        let message = request.into_inner();
        let protocol = match pb::ModelProtocol::try_from(message.protocol) {
            Ok(pb::ModelProtocol::Openai) => Some(Protocol::OpenAi),
            Ok(pb::ModelProtocol::Anthropic) => Some(Protocol::Anthropic),
            Ok(pb::ModelProtocol::Unspecified) | Err(_) => None,
        };
        let input = ProviderInput::new(
            self.state.providers.guard(),
            message.name,
            protocol,
            message.base_url,
            message.api_key,
            message.models,
        )?;
        let provider = self.state.providers.put(tenant, input).await?;
        tracing::info!(%tenant, provider = %provider.name, has_api_key = provider.has_api_key, "model provider written");
        Ok(Response::new(provider_message(provider)))
    }

    async fn delete_model_provider(
        &self,
        request: Request<pb::DeleteModelProviderRequest>,
    ) -> Reply<pb::DeleteModelProviderResponse> {
        let caller = authorize(&request, MODELS_ADMIN)?;
        let tenant = caller.tenant()?;
        let name = &request.get_ref().name;
        if !providers::valid_name(name) {
            return Err(RunnerError::NotFound(format!("model provider {name:?}")).into());
        }
        self.state.providers.delete(tenant, name).await?;
        Ok(Response::new(pb::DeleteModelProviderResponse {}))
    }

    async fn test_model_provider(
        &self,
        request: Request<pb::TestModelProviderRequest>,
    ) -> Reply<pb::TestModelProviderResponse> {
        let caller = authorize(&request, MODELS_ADMIN)?;
        let tenant = caller.tenant()?;
        let message = request.into_inner();
        let client = self
            .state
            .providers
            .client(tenant, &message.name, &message.model)
            .await?;
        let started = std::time::Instant::now();
        let question = [Message::user("Answer with one word: ready?")];
        // An admin waits on the answer: a provider that never answers (each attempt may take
        // the whole call timeout, retried) is said so within the bound.
        let answer = tokio::time::timeout(PROVIDER_TEST_TIMEOUT, client.chat(&question))
            .await
            .unwrap_or(Err(LlmError::Timeout(PROVIDER_TEST_TIMEOUT)));
        let latency_ms = started.elapsed().as_millis() as u64;
        Ok(Response::new(match answer {
            Ok(completion) => pb::TestModelProviderResponse {
                ok: true,
                model: completion.model,
                latency_ms,
                error: String::new(),
            },
            Err(err) => pb::TestModelProviderResponse {
                ok: false,
                model: client.model().to_owned(),
                latency_ms,
                error: sankalpa_kit::limits::error_message(&err.to_string()).into_owned(),
            },
        }))
    }

    async fn set_default_model(
        &self,
        request: Request<pb::SetDefaultModelRequest>,
    ) -> Reply<pb::SetDefaultModelResponse> {
        let caller = authorize(&request, MODELS_ADMIN)?;
        let tenant = caller.tenant()?;
        let default_model = self
            .state
            .providers
            .set_default(tenant, &request.get_ref().model)
            .await?;
        Ok(Response::new(pb::SetDefaultModelResponse {
            default_model: default_model.unwrap_or_default(),
        }))
    }

    async fn get_model_usage(
        &self,
        request: Request<pb::GetModelUsageRequest>,
    ) -> Reply<pb::GetModelUsageResponse> {
        let caller = authorize(&request, MODELS_READ)?;
        let tenant = caller.tenant()?;
        let days = match request.get_ref().days {
            0 => 30,
            days @ 1..=MAX_USAGE_DAYS => days,
            _ => {
                return Err(
                    RunnerError::invalid("days", format!("must be 1 to {MAX_USAGE_DAYS}")).into(),
                );
            }
        };
        let quota = &self.state.tokens;
        let days = quota
            .usage(tenant, days)
            .await?
            .into_iter()
            .map(|day| pb::ModelUsageDay {
                day: day.day.to_string(),
                tokens: u64::try_from(day.tokens).unwrap_or(0),
                cost_usd: day.cost_usd,
            })
            .collect();
        Ok(Response::new(pb::GetModelUsageResponse {
            days,
            priced: quota.priced(),
            tokens_per_day: quota.per_day(),
        }))
    }
}

/// Reading the tenant's model providers.
const MODELS_READ: &str = "models:read";
/// Changing and testing them.
const MODELS_ADMIN: &str = "models:admin";
/// The longest a provider's connection test waits for its answer, retries included.
pub const PROVIDER_TEST_TIMEOUT: Duration = Duration::from_secs(8);

fn provider_message(provider: Provider) -> pb::ModelProvider {
    let protocol = match provider.protocol {
        Protocol::OpenAi => pb::ModelProtocol::Openai,
        Protocol::Anthropic => pb::ModelProtocol::Anthropic,
    };
    pb::ModelProvider {
        name: provider.name,
        protocol: protocol as i32,
        base_url: provider.base_url,
        models: provider.models,
        has_api_key: provider.has_api_key,
        created_at: Some(timestamp(provider.created_at)),
        updated_at: Some(timestamp(provider.updated_at)),
    }
}
