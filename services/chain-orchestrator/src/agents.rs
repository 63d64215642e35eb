//! The orchestrator's side of agent-runner: whether agents exist (answered from the catalog,
//! catalog.rs, when it can), and running one step attempt.
//!
//! Every call carries a bearer token: the caller's when checking a definition they submit, the
//! run's own credential (credentials.rs) when executing steps, so agent-runner checks the same
//! permissions for a chain's steps as for a direct call.

use std::collections::BTreeSet;
use std::time::Duration;

use sankalpa_kit::auth::{Principal, with_bearer};
use sankalpa_kit::grpc::{TracedChannel, connection_lost};
use sankalpa_kit::limits;
use sankalpa_kit::problem::FieldViolation;
use sankalpa_proto::v1 as pb;
use sankalpa_proto::v1::agent_service_client::AgentServiceClient;
use serde_json::Value;
use tonic::Code;

use crate::State;
use crate::catalog::Lookup;
use crate::definition::{self, Definition};
use crate::error::{ChainError, Result};

pub type Client = AgentServiceClient<TracedChannel>;

/// How long a lookup of an agent may take before the check gives up.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// Added to a step's own timeout for the gRPC deadline, so agent-runner's answer about its
/// deadline (a FAILED run with `deadline_exceeded`) arrives before ours cuts the call.
const DEADLINE_GRACE: Duration = Duration::from_secs(2);

/// Parses a definition and checks its agents, for a request whose answer claims they exist
/// (ValidateChain, CreateChain, UpdateChain): an agent-runner that cannot be asked about an agent
/// the catalog does not remember is UNAVAILABLE. The problems found are listed up to
/// [`definition::MAX_VIOLATIONS`]. What its chain steps name is checked too
/// (chains::check_calls), `saving` being the chain a CreateChain or UpdateChain saves.
pub async fn check(
    state: &State,
    caller: &Principal,
    token: &str,
    document: &str,
    saving: Option<uuid::Uuid>,
) -> Result<Definition> {
    let definition = parse(document)?;
    crate::chains::check_calls(
        &state.pool,
        &state.templates,
        caller.tenant()?,
        &definition,
        saving,
    )
    .await?;
    if known(state, caller, token, &definition).await? {
        Ok(definition)
    } else {
        Err(ChainError::Unavailable(
            "agent-runner cannot be asked whether the definition's agents exist; retry shortly"
                .to_owned(),
        ))
    }
}

/// A definition document parsed, or INVALID_ARGUMENT with its problems.
pub fn parse(document: &str) -> Result<Definition> {
    definition::parse(document)
        .map_err(|problems| ChainError::InvalidDefinition(definition::at_most(problems)))
}

/// Whether every agent of `definition` exists for the caller's tenant: true when known (the
/// catalog remembers it, or agent-runner confirmed it), false when agent-runner could not be
/// asked; an agent it does not know is INVALID_ARGUMENT naming `steps[i].agent` of each step
/// using it.
pub async fn known(
    state: &State,
    caller: &Principal,
    token: &str,
    definition: &Definition,
) -> Result<bool> {
    let agents = definition.agents().into_iter().collect();
    match state
        .catalog
        .lookup(&state.agents, caller, token, agents)
        .await?
    {
        Lookup::Known => Ok(true),
        Lookup::Unverified => Ok(false),
        Lookup::Unknown(unknown) => Err(ChainError::InvalidDefinition(definition::at_most(
            unknown_agents(definition, &unknown),
        ))),
    }
}

/// A violation for every step whose agent is in `unknown`.
pub fn unknown_agents(definition: &Definition, unknown: &BTreeSet<String>) -> Vec<FieldViolation> {
    definition
        .steps
        .iter()
        .enumerate()
        .filter_map(|(index, step)| step.agent().map(|agent| (index, agent)))
        .filter(|(_, agent)| unknown.contains(*agent))
        .map(|(index, agent)| FieldViolation {
            field: format!("steps[{index}].agent"),
            message: format!("unknown agent `{agent}`"),
        })
        .collect()
}

/// The input fields `agent` accepts when its input schema forbids any others
/// (`additionalProperties: false`), None when it takes any field. An agent agent-runner does not
/// know, or that the run may not look up (no agents:read), is None: its execution answers for it.
pub async fn accepted_fields(
    client: &Client,
    token: &str,
    agent: &str,
) -> Result<Option<BTreeSet<String>>, Failure> {
    let mut request = with_bearer(
        pb::GetAgentRequest {
            name: agent.to_owned(),
        },
        token,
    )
    .map_err(|status| Failure::new("internal", status.message(), false))?;
    request.set_timeout(LOOKUP_TIMEOUT);
    let found = match client.clone().get_agent(request).await {
        Ok(found) => found.into_inner(),
        Err(status) if matches!(status.code(), Code::NotFound | Code::PermissionDenied) => {
            return Ok(None);
        }
        Err(status) => {
            let message = format!("could not look up agent {agent}: {}", status.message());
            return Err(match status.code() {
                Code::Unauthenticated => Failure::credential_refused(message),
                code if transient(code) => Failure::outage(message),
                _ => Failure::new(UNAVAILABLE, message, true),
            });
        }
    };
    let schema: Value = serde_json::from_str(&found.input_schema_json).unwrap_or(Value::Null);
    if schema.get("additionalProperties") != Some(&Value::Bool(false)) {
        return Ok(None);
    }
    Ok(Some(
        schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|properties| properties.keys().cloned().collect())
            .unwrap_or_default(),
    ))
}

/// Tells agent-runner to stop the agent run `agent_run_id` of a cancelled chain run. An agent
/// run with an id of the caller's goes on when its caller goes away (so a replica taking the
/// chain run over finds its outcome), hence the explicit word. Best effort: a run that already
/// ended, or an agent-runner that cannot be asked, leaves the deadline to end it.
pub async fn cancel(client: &Client, token: &str, agent_run_id: &str) {
    let Ok(mut request) = with_bearer(
        pb::CancelAgentRunRequest {
            run_id: agent_run_id.to_owned(),
        },
        token,
    ) else {
        return;
    };
    request.set_timeout(LOOKUP_TIMEOUT);
    match client.clone().cancel_agent_run(request).await {
        Ok(_) => {}
        Err(status) if status.code() == Code::NotFound => {}
        Err(status) => {
            tracing::warn!(agent_run_id, error = %status.message(), "could not cancel an agent run");
        }
    }
}

/// One attempt of a step.
pub struct Attempt<'a> {
    pub agent: &'a str,
    pub input: &'a Value,
    pub session_id: &'a str,
    pub agent_run_id: &'a str,
    /// No request named `agent_run_id` before this one (see ExecuteAgentRequest.first_ask).
    pub first_ask: bool,
    pub workspace_id: &'a str,
    /// 0: agent-runner's default.
    pub timeout: Duration,
    /// The model to ask, `provider/model`; `None`: the tenant's default.
    pub model: Option<&'a str>,
    pub token: &'a str,
    /// The largest output taken, as the agent wrote it; a larger one fails the attempt.
    pub max_output_bytes: usize,
}

pub struct Completed {
    pub output: Value,
    pub artifacts: Vec<pb::Artifact>,
}

/// Why an attempt did not complete, and whether another attempt could do better.
#[derive(Debug, Clone)]
pub struct Failure {
    pub code: String,
    /// At most [`limits::MAX_ERROR_BYTES`]: it goes into the step's row, its events and logs.
    pub message: String,
    pub retriable: bool,
    /// A service on the way could not be asked (agent-runner or auth restarting, the tenant's
    /// agent runs all busy): the agent itself did not fail, so the attempt waits and asks
    /// again with the same agent run id rather than counting against the step's retries.
    pub outage: bool,
    /// The run's token was refused (its key revoked, through `/api/keys` or with its maker):
    /// no wait brings it back, and the run's credential must not be given to new runs.
    pub credential_refused: bool,
}

impl Failure {
    /// A failure; `code` and `message` (an agent's own words, possibly megabytes) are cut to
    /// [`limits::MAX_ERROR_BYTES`] here, before anything stores, publishes or logs them.
    pub fn new(code: &str, message: impl Into<String>, retriable: bool) -> Self {
        let message = message.into();
        Self {
            code: limits::truncate(code, MAX_CODE_BYTES).into_owned(),
            message: limits::error_message(&message).into_owned(),
            retriable,
            outage: false,
            credential_refused: false,
        }
    }

    /// A service the attempt needs could not be asked; `message` says which and why.
    pub fn outage(message: impl Into<String>) -> Self {
        Self {
            outage: true,
            ..Self::new(UNAVAILABLE, message, true)
        }
    }

    /// A service refused the run's token as unauthenticated: final, as another refusal would be.
    pub fn credential_refused(message: impl Into<String>) -> Self {
        Self {
            credential_refused: true,
            ..Self::new(AGENT_FAILED, message, false)
        }
    }
}

/// Whether a call's failure is a service on the way that could not serve it for now (restarting,
/// its connection lost, the tenant's agent runs all busy), which waiting can end.
fn transient(code: Code) -> bool {
    connection_lost(code) || matches!(code, Code::Aborted | Code::ResourceExhausted)
}

/// The code of an attempt its agent, or agent-runner on its behalf, failed.
const AGENT_FAILED: &str = "agent_failed";

/// The code of a step whose agent does not exist (any more): final, as a refused submission
/// would have been.
pub const UNKNOWN_AGENT: &str = "unknown_agent";

/// The code of an attempt a service on its way could not serve.
pub const UNAVAILABLE: &str = "unavailable";

/// The longest error code kept from an agent's answer: codes are short words.
const MAX_CODE_BYTES: usize = 64;

/// The code of a step whose output (or whose run's outputs together) passed its limit.
pub const OUTPUT_TOO_LARGE: &str = "output_too_large";

/// Runs one attempt. A step timeout is enforced here too: dropping the call cancels the agent.
pub async fn execute(client: &Client, attempt: Attempt<'_>) -> Result<Completed, Failure> {
    let message = pb::ExecuteAgentRequest {
        agent: attempt.agent.to_owned(),
        input_json: attempt.input.to_string(),
        session_id: Some(attempt.session_id.to_owned()),
        run_id: Some(attempt.agent_run_id.to_owned()),
        deadline_ms: u64::try_from(attempt.timeout.as_millis()).unwrap_or(u64::MAX),
        llm: pb::LlmMode::Unspecified.into(),
        workspace_id: Some(attempt.workspace_id.to_owned()),
        first_ask: attempt.first_ask,
        model: attempt.model.map(str::to_owned),
        stream_deltas: false,
    };
    let mut request = with_bearer(message, attempt.token)
        .map_err(|status| Failure::new("internal", status.message(), false))?;
    if !attempt.timeout.is_zero() {
        request.set_timeout(attempt.timeout + DEADLINE_GRACE);
    }
    let call = async {
        let mut client = client.clone();
        client.execute_agent(request).await
    };
    let answer = if attempt.timeout.is_zero() {
        call.await
    } else {
        // A backstop for an agent-runner that does not answer at its deadline.
        match tokio::time::timeout(attempt.timeout + DEADLINE_GRACE, call).await {
            Ok(answer) => answer,
            Err(_) => {
                return Err(Failure::new(
                    "deadline_exceeded",
                    format!(
                        "the step ran past its {} ms timeout",
                        attempt.timeout.as_millis()
                    ),
                    true,
                ));
            }
        }
    };
    let run = answer.map_err(|status| match status.code() {
        Code::InvalidArgument => Failure::new("invalid_input", status.message(), false),
        // Deleted since the run's agents were checked: as final as at submission.
        Code::NotFound => Failure::new(UNKNOWN_AGENT, status.message(), false),
        Code::PermissionDenied => Failure::new(AGENT_FAILED, status.message(), false),
        Code::Unauthenticated => Failure::credential_refused(status.message()),
        Code::DeadlineExceeded => Failure::new("deadline_exceeded", status.message(), true),
        // The answer was larger than this client takes (Config::agents_message_bytes): the
        // output is over its limit, and would be again.
        Code::OutOfRange => Failure::new(OUTPUT_TOO_LARGE, status.message(), false),
        // agent-runner down or restarting (its connection lost), or the tenant's agent runs all
        // busy: none is the agent's doing. (A repeated call of an agent run still in flight
        // attaches to it; ALREADY_EXISTS says the id was used for another request, which no
        // wait fixes.)
        code if transient(code) => Failure::outage(format!(
            "agent-runner did not run the agent: {}",
            status.message()
        )),
        _ => Failure::new(UNAVAILABLE, status.message(), true),
    })?;
    let run = run.into_inner();
    match run.status() {
        pb::AgentRunStatus::Completed => {
            if run.output_json.len() > attempt.max_output_bytes {
                return Err(Failure::new(
                    OUTPUT_TOO_LARGE,
                    format!(
                        "the output is {} bytes; a step's output may be at most {} bytes",
                        run.output_json.len(),
                        attempt.max_output_bytes
                    ),
                    false,
                ));
            }
            let output = if run.output_json.trim().is_empty() {
                Value::Object(Default::default())
            } else {
                serde_json::from_str(&run.output_json)
                    .map(sankalpa_kit::bounded_json::replace_nul)
                    .map_err(|err| {
                        Failure::new(
                            "invalid_output",
                            format!("the output is not JSON: {err}"),
                            false,
                        )
                    })?
            };
            Ok(Completed {
                output,
                artifacts: run.artifacts,
            })
        }
        _ => {
            let error = run.error.unwrap_or_default();
            let retriable = !matches!(error.code.as_str(), "invalid_input" | "cancelled");
            Err(Failure::new(
                if error.code.is_empty() {
                    AGENT_FAILED
                } else {
                    &error.code
                },
                error.message,
                retriable,
            ))
        }
    }
}
