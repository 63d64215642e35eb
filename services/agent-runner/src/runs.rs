//! Running one agent: the run's life from `started` to `completed`, `failed` or `cancelled`.
//!
//! A run executes in its own task, owned by the service's tracker, so that whatever happens to
//! the caller the run ends properly: its outcome is recorded in metrics and its last event goes
//! out. The caller's RPC awaits the run's outcome. Runs in flight are registered by tenant and
//! run id ([`crate::inflight`]).
//!
//! A caller that names the run id gets each run once ([`crate::outcome`]): asking again for a run
//! in flight on this replica waits for that run's outcome, and asking for a finished one is
//! answered with the outcome kept in Postgres — in neither case does the agent run again or its
//! events go out again. Such a run is not cancelled when its caller goes away (its deadline
//! still holds, and CancelAgentRun still cancels it), since the caller's retry wants its outcome.
//! A run without a caller's id is cancelled when its caller goes away: nobody could ask for it. The run gives its agent what the agent's catalog entry asks for (the
//! workspace's paths, the custom-agent store) and nothing more.
//!
//! The deadline and the cancellation stop the agent at its next await; the built-in agents are
//! short CPU work between awaits (the long waits are LLM calls), so both take effect promptly.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::context::PublishAckFuture;
use chrono::Utc;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::artifacts::TenantFiles;
use crate::catalog::Agent;
use crate::context::{Context, LlmUsage};
use crate::custom::store::TenantAgents;
use crate::error::{self, Result, RunnerError};
use crate::inflight::Slot;
use crate::llm::LlmClient;
use crate::llm_cache::RunCache;
use crate::llm_usage::RunTokens;
use crate::outcome::{self, Asked, Run, RunError, Status};
use crate::session::SessionMemory;
use crate::state::State;
use crate::tools::AgentTools;

pub struct RunRequest {
    pub agent: Agent,
    pub input: Value,
    pub tenant: String,
    /// The user or key running the agent.
    pub caller: String,
    /// The caller's `authorization` value, forwarded to the memory service.
    pub bearer: Option<String>,
    pub run_id: String,
    /// Whether the caller named the run id: only then is its outcome kept, and asked for.
    pub named: bool,
    /// Whether the caller says no earlier request named the run id: its outcome is kept but
    /// not asked for, as there can be none yet.
    pub first_ask: bool,
    pub workspace_id: String,
    pub session_id: Option<String>,
    pub deadline: Duration,
    pub use_llm: bool,
    /// The LLM the run asks when `use_llm`: its model, the tenant's default or the fleet's.
    pub llm: Option<Arc<LlmClient>>,
    /// Whether the model's text is published as it is written ([`publish_deltas`]).
    pub stream_deltas: bool,
}

/// Which of an agent's schemas a document is checked against.
#[derive(Debug, Clone, Copy)]
pub enum Side {
    Input,
    Output,
}

/// `document` and how it fails the agent's `side` schema. A custom agent's schemas are the
/// tenant's, and checking against them can take a good part of a second (see
/// [`sankalpa_kit::schema`]): that runs on the blocking threads, so that the requests the async
/// threads serve are not held up by it. Built-in schemas are checked in place.
pub async fn validate(
    agent: &Agent,
    side: Side,
    document: Value,
) -> Result<(Value, Vec<sankalpa_kit::schema::Violation>)> {
    fn check(agent: &Agent, side: Side, document: &Value) -> Vec<sankalpa_kit::schema::Violation> {
        match side {
            Side::Input => agent.spec().input.validate(document, "input"),
            Side::Output => agent.spec().output.validate(document, "output"),
        }
    }
    match agent {
        Agent::Builtin(_) => {
            let problems = check(agent, side, &document);
            Ok((document, problems))
        }
        Agent::Custom(_) => {
            let agent = agent.clone();
            tokio::task::spawn_blocking(move || {
                let problems = check(&agent, side, &document);
                (document, problems)
            })
            .await
            .map_err(|err| RunnerError::Internal(anyhow::anyhow!("validation failed: {err}")))
        }
    }
}

/// Runs `request` to its end; or, for a run id the caller named, answers the outcome of the run
/// of that id in flight or finished.
pub async fn execute(state: &Arc<State>, request: RunRequest) -> Result<Run> {
    let asked = Asked::new(&request.agent.spec().name, &request.input);
    let slot = state
        .runs
        .register(&request.tenant, &request.run_id, asked.clone())?;
    let (registration, token, announce) = match slot {
        Slot::Attached(outcome) => return wait_for(outcome).await,
        Slot::New {
            registration,
            cancel,
            outcome,
        } => (registration, cancel, outcome),
    };
    let watching = announce.subscribe();
    let kept_in = if request.named {
        let tenant = uuid::Uuid::parse_str(&request.tenant)
            .map_err(|err| RunnerError::Internal(anyhow::anyhow!("a run's tenant: {err}")))?;
        // Looked up once registered: a run of this id that finished before has kept its outcome
        // before it let go of the id, so it is found here if it is not in flight. A first ask
        // has nothing kept to find.
        if !request.first_ask
            && let Some((kept_asked, run)) =
                outcome::find(&state.pool, tenant, &request.run_id).await?
        {
            if kept_asked != asked {
                return Err(RunnerError::AlreadyExists(format!(
                    "run {} was run with another agent or input",
                    request.run_id
                )));
            }
            // Requests that attached meanwhile get it too.
            announce.send_replace(Some(Arc::new(run.clone())));
            return Ok(run);
        }
        Some(tenant)
    } else {
        None
    };
    // Fires if this future is dropped (the caller went away); harmless once the run is over.
    let _cancel_if_abandoned = kept_in.is_none().then(|| token.clone().drop_guard());
    let span = tracing::info_span!(
        "agent_run",
        tenant = %request.tenant,
        run = %request.run_id,
        agent = %request.agent.spec().name
    );
    let run_state = state.clone();
    state.tasks.spawn(
        async move {
            // Held until the outcome is kept, so that a request for this run id meanwhile
            // attaches to the run rather than missing both the run and its outcome.
            let mut registration = registration;
            let run = Arc::new(drive(&run_state, request, token).await);
            registration.release_quota();
            announce.send_replace(Some(run.clone()));
            if let Some(tenant) = kept_in
                && let Err(err) = outcome::keep(&run_state.outcomes, tenant, &asked, &run).await
            {
                metrics::counter!("agent_run_outcomes_unkept_total").increment(1);
                tracing::warn!(error = %err, "could not keep a run's outcome");
            }
        }
        .instrument(span),
    );
    wait_for(watching).await
}

/// The outcome a run announces on `outcome`.
async fn wait_for(mut outcome: tokio::sync::watch::Receiver<Option<Arc<Run>>>) -> Result<Run> {
    let run = outcome.wait_for(Option::is_some).await.map_err(|_| {
        RunnerError::Internal(anyhow::anyhow!("the run task ended without an outcome"))
    })?;
    Ok(run.as_deref().cloned().expect("waited for an outcome"))
}

async fn drive(state: &Arc<State>, request: RunRequest, cancel: CancellationToken) -> Run {
    let started_at = Utc::now();
    let clock = Instant::now();
    let spec = request.agent.spec();
    // Its acknowledgement is awaited with the completion's, aside from the run (below), so the
    // run does not wait a round trip to JetStream before it starts.
    let started_stored = publish_unacked(
        state,
        &request,
        "started",
        json!({
            "run_id": request.run_id,
            "agent": spec.name,
            "agent_version": spec.version,
            "workspace_id": request.workspace_id,
            "session_id": request.session_id,
        }),
    )
    .await;

    let llm = if request.use_llm {
        request.llm.clone()
    } else {
        None
    };
    let has_llm = llm.is_some();
    let mut ctx = Context::new(llm);
    if has_llm && let Ok(tenant) = uuid::Uuid::parse_str(&request.tenant) {
        // The RPC checked the quota before the run, which covers its first call.
        ctx.tokens = Some(RunTokens {
            quota: state.tokens.clone(),
            tenant,
            checked: true,
        });
        if state.answers.enabled() {
            ctx.answers = Some(RunCache {
                cache: state.answers.clone(),
                tenant,
            });
        }
    }
    ctx.memory = match (&state.memory, &request.session_id, &request.bearer) {
        (Some(client), Some(session), Some(bearer)) => Some(SessionMemory {
            client: client.clone(),
            bearer: bearer.clone(),
            session: session.clone(),
        }),
        _ => None,
    };
    let deltas_sent = (has_llm && request.stream_deltas).then(|| {
        let (pieces, read) = tokio::sync::mpsc::channel(DELTA_BUFFER);
        ctx.deltas = Some(pieces);
        tokio::spawn(publish_deltas(state.clone(), deltas_of(&request), read))
    });
    if has_llm && request.agent.calls_tools() {
        ctx.tools = Some(Box::new(AgentTools::new(
            state.clone(),
            request.tenant.clone(),
            request.caller.clone(),
            request.bearer.clone(),
            request.deadline,
        )));
    }
    if request.agent.defines_agents() {
        ctx.custom_agents =
            uuid::Uuid::parse_str(&request.tenant)
                .ok()
                .map(|tenant| TenantAgents {
                    store: state.custom.clone(),
                    tenant,
                    caller: request.caller.clone(),
                });
    }
    let mut listed = true;
    if request.agent.reads_workspace() {
        match TenantFiles::new(&state.objects, &request.tenant)
            .paths(&request.workspace_id)
            .await
        {
            Ok(paths) => ctx.existing = paths.into_iter().collect(),
            Err(err) => {
                tracing::error!(error = %format!("{err:#}"), "could not list the workspace");
                listed = false;
            }
        }
    }
    let outcome = if !listed {
        // Writing for a workspace it cannot see, the agent would leave out what is there.
        Err((
            Status::Failed,
            RunError::new(
                error::UNAVAILABLE,
                "the workspace's files could not be listed",
            ),
        ))
    } else {
        let work = request
            .agent
            .run(&mut ctx, &request.input, state.max_template_output_bytes);
        tokio::select! {
            biased;
            () = cancel.cancelled() => Err((Status::Cancelled, RunError::new("cancelled", "the run was cancelled"))),
            result = tokio::time::timeout(request.deadline, work) => match result {
                Err(_) => Err((Status::Failed, RunError::new(
                    "deadline_exceeded",
                    format!("the agent did not finish within {} ms", request.deadline.as_millis()),
                ))),
                Ok(Err(err)) => Err((Status::Failed, RunError::new(err.code(), err.to_string()))),
                Ok(Ok(output)) => Ok(output),
            }
        }
    };
    let (files, usage) = ctx.finish();
    // Every delta is sent before the run's end is: the pieces' sender went with the context.
    if let Some(sent) = deltas_sent
        && let Err(err) = sent.await
    {
        tracing::error!(error = %err, "the deltas' publisher ended abnormally");
    }
    let outcome = match outcome {
        Ok(output) => match validate(&request.agent, Side::Output, output).await {
            Ok((output, problems)) => match problems.first() {
                None => Ok(output),
                Some(problem) => {
                    tracing::error!(agent = %spec.name, field = %problem.path, "an agent broke its output schema");
                    Err((
                        Status::Failed,
                        RunError::new("invalid_output", problem.to_string()),
                    ))
                }
            },
            Err(err) => {
                tracing::error!(error = %err, "could not check a run's output");
                Err((
                    Status::Failed,
                    RunError::new("internal", "the output could not be checked"),
                ))
            }
        },
        Err(failure) => Err(failure),
    };
    let (outcome, artifacts) = match outcome {
        Ok(output) => {
            match TenantFiles::new(&state.objects, &request.tenant)
                .store(&request.workspace_id, files)
                .await
            {
                Ok(artifacts) => (Ok(output), artifacts),
                Err(err) => {
                    tracing::error!(error = %format!("{err:#}"), "could not store a run's artifacts");
                    let error = RunError::new("internal", "the run's files could not be stored");
                    (Err((Status::Failed, error)), Vec::new())
                }
            }
        }
        Err(failure) => (Err(failure), Vec::new()),
    };
    let (status, output, error) = match outcome {
        Ok(output) => (Status::Completed, Some(output), None),
        Err((status, error)) => (status, None, Some(error)),
    };
    let duration = clock.elapsed();
    record_metrics(&request.agent, status, duration, &usage);
    let action = if status == Status::Completed {
        "completed"
    } else {
        "failed"
    };
    let completed_stored = publish_unacked(
        state,
        &request,
        action,
        json!({
            "run_id": request.run_id,
            "agent": spec.name,
            "agent_version": spec.version,
            "workspace_id": request.workspace_id,
            "session_id": request.session_id,
            "status": status.as_str(),
            "duration_ms": duration.as_millis() as u64,
            "artifacts": artifacts.len(),
            "llm_used": usage.used,
            "error": error.as_ref().map(|e| json!({"code": e.code, "message": e.message})),
        }),
    )
    .await;
    // The answer does not wait for JetStream to store the run's events: both are sent, in
    // order, on the one connection, and their acks are awaited aside (a failure is logged and
    // counted all the same); the service's tracker waits for them at shutdown.
    let run_id = request.run_id.clone();
    state.tasks.spawn(async move {
        for (action, stored) in [("started", started_stored), (action, completed_stored)] {
            if let Some(stored) = stored
                && let Err(err) = stored.await
            {
                event_failed(&run_id, action, &err.into());
            }
        }
    });
    Run {
        run_id: request.run_id,
        agent: spec.name.clone(),
        agent_version: spec.version.clone(),
        status,
        output,
        artifacts,
        workspace_id: request.workspace_id,
        duration,
        usage,
        error,
        session_id: request.session_id,
        started_at,
        finished_at: Utc::now(),
    }
}

/// The most delta events one run publishes ([`RunRequest::stream_deltas`]).
pub const MAX_DELTA_EVENTS: u64 = 256;
/// The pieces of text waiting for the deltas' publisher; the model's stream waits beyond.
const DELTA_BUFFER: usize = 64;

/// Where a run's deltas go: its tenant, agent and run id.
struct DeltaSubject {
    tenant: String,
    agent: String,
    run_id: String,
}

fn deltas_of(request: &RunRequest) -> DeltaSubject {
    DeltaSubject {
        tenant: request.tenant.clone(),
        agent: request.agent.spec().name.clone(),
        run_id: request.run_id.clone(),
    }
}

/// Publishes the pieces of the model's text read from `pieces` as `delta` events (`run_id`,
/// `seq`, `text`), in order: the pieces that arrived while the last event was being sent go as
/// one. Past [`MAX_DELTA_EVENTS`] the pieces are read and dropped (the output holds the whole
/// text). Returns once the sender is gone and every event is acknowledged (or its failure
/// logged and counted).
async fn publish_deltas(
    state: Arc<State>,
    run: DeltaSubject,
    mut pieces: tokio::sync::mpsc::Receiver<String>,
) {
    let mut seq: u64 = 0;
    let mut acks = Vec::new();
    while let Some(mut text) = pieces.recv().await {
        while let Ok(more) = pieces.try_recv() {
            text.push_str(&more);
        }
        if seq >= MAX_DELTA_EVENTS {
            continue;
        }
        let data = json!({"run_id": run.run_id, "seq": seq, "text": text});
        match state
            .events
            .publish_unacked("agents", &run.tenant, &run.agent, "delta", data)
            .await
        {
            Ok((_, stored)) => acks.push(stored),
            Err(err) => event_failed(&run.run_id, "delta", &err),
        }
        seq += 1;
    }
    for stored in acks {
        if let Err(err) = stored.await {
            event_failed(&run.run_id, "delta", &err.into());
        }
    }
}

/// Sends a run event and gives the future of its acknowledgement, or `None` if it could not
/// be sent (logged and counted). Events are notices about the run, not the run itself: a NATS
/// outage is logged and counted, and the caller still gets the run's result.
async fn publish_unacked(
    state: &State,
    request: &RunRequest,
    action: &str,
    data: Value,
) -> Option<PublishAckFuture> {
    match state
        .events
        .publish_unacked(
            "agents",
            &request.tenant,
            &request.agent.spec().name,
            action,
            data,
        )
        .await
    {
        Ok((_, stored)) => Some(stored),
        Err(err) => {
            event_failed(&request.run_id, action, &err);
            None
        }
    }
}

fn event_failed(run_id: &str, action: &str, err: &anyhow::Error) {
    metrics::counter!("agent_events_failed_total").increment(1);
    tracing::warn!(error = %err, run = %run_id, action, "could not publish a run event");
}

fn record_metrics(agent: &Agent, status: Status, duration: Duration, usage: &LlmUsage) {
    // Custom agent names are chosen by tenants: one label value for all of them keeps the
    // number of series bounded.
    let name = match agent {
        Agent::Builtin(agent) => agent.spec.name.clone(),
        Agent::Custom(_) => "custom".to_owned(),
    };
    metrics::counter!("agent_runs_total", "agent" => name.clone(), "outcome" => status.as_str())
        .increment(1);
    metrics::histogram!("agent_run_duration_seconds", "agent" => name)
        .record(duration.as_secs_f64());
    if usage.used {
        metrics::counter!("llm_tokens_total", "kind" => "prompt").increment(usage.prompt_tokens);
        metrics::counter!("llm_tokens_total", "kind" => "completion")
            .increment(usage.completion_tokens);
    }
}

/// Describes the runs' metrics and registers those with a fixed set of labels at zero (a run's
/// own are labelled by agent, and appear with the agent's first run).
pub fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_histogram};
    describe_counter!(
        "agent_runs_total",
        "Agent runs finished, by agent and outcome."
    );
    describe_histogram!(
        "agent_run_duration_seconds",
        Unit::Seconds,
        "Time an agent run took, by agent."
    );
    describe_counter!(
        "llm_tokens_total",
        "LLM tokens used, by kind (prompt, completion)."
    );

    describe_counter!(
        "agent_events_failed_total",
        "Run events that could not be published."
    );
    describe_counter!(
        "llm_usage_unrecorded_total",
        "LLM usage that could not be written to the tenant's account."
    );
    describe_counter!(
        "agent_run_outcomes_unkept_total",
        "Outcomes of runs named by their caller that could not be kept."
    );
    describe_counter!(
        "agent_definitions_compiled_total",
        "Custom agent definitions compiled."
    );
    for kind in ["prompt", "completion"] {
        metrics::counter!("llm_tokens_total", "kind" => kind).increment(0);
    }
    crate::llm::describe_metrics();
    crate::llm_cache::describe_metrics();
    for name in [
        "agent_events_failed_total",
        "llm_usage_unrecorded_total",
        "agent_definitions_compiled_total",
        "agent_run_outcomes_unkept_total",
    ] {
        metrics::counter!(name).increment(0);
    }
}
