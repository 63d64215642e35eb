//! Chain steps: a step with `chain: {"id" | "template", "input"}` runs that chain as a child run
//! of its own (its own id, steps, events and memory session), and completes with the child's
//! output, or fails when the child fails or is cancelled (then the step's `retry` starts a new
//! child, and its `on_failure` applies).
//!
//! The link is kept both ways in Postgres: the child's row names its parent run, step and
//! attempt (one child per attempt: a unique key), and the parent's step row names the child
//! (`child_run_id`), written in the one transaction that creates the child. So a replica that
//! takes the parent over finds the step running with its child and waits for that one; it never
//! starts a second. The parent waits by reading the child's row (at each claim interval, or at
//! once when the child finished on this replica), not on a future alone. A child is driven like
//! any run: here at once when this replica has room, else by any replica's claim.
//!
//! A child runs with its family's credential (the top run's, credentials.rs), is checked for its
//! agents as it starts (as a run accepted while agent-runner was away is), and is not refused by
//! the tenant's quota of unfinished runs (its parent holds a slot already), though it counts in
//! it. Children nest at most [`definition::MAX_CHAIN_DEPTH`] levels below a caller's run; a
//! deeper one fails its step with `chain_too_deep`. A parent that ends stops its unfinished
//! children (store::stop_children), so a cancel cascades down the family.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    Failure, Outcome, RunContext, Scope, Step, StepStatus, lease_lost, record, record_output,
};
use crate::definition::{self, ChainStep, Definition, MappingError};
use crate::error::{ChainError, Result};
use crate::events::RunEvent;
use crate::runs::store::{self, LeaseLost, RunStatus};
use crate::{State, agents, chains};

/// The code of a chain step whose chain or template does not exist (any more).
const UNKNOWN_CHAIN: &str = "unknown_chain";
/// The code of a chain step that would nest deeper than [`definition::MAX_CHAIN_DEPTH`].
const CHAIN_TOO_DEEP: &str = "chain_too_deep";
/// The code of a chain step whose child run was cancelled on its own.
const CHILD_CANCELLED: &str = "child_cancelled";

/// The child run's input: the step's `chain.input` mapping rendered, or the default input (the
/// chain input merged with the outputs of the steps it needs); at most `max_input` bytes.
pub(super) fn child_input(
    step: &Step,
    chain: &ChainStep,
    scope: &Scope,
    max_input: usize,
) -> std::result::Result<Value, Failure> {
    let input = match &chain.call.input {
        Some(mapping) => definition::render_mapping(mapping, scope.value(), max_input).map_err(
            |err| match err {
                MappingError::Invalid(err) => {
                    Failure::new("invalid_input", format!("chain.input {err}"), false)
                }
                MappingError::TooLarge => super::input_too_large(max_input),
            },
        )?,
        None => definition::merged_input(scope.input(), &step.needs, scope.outputs()),
    };
    if crate::sizes::json_size(&input, max_input).is_none() {
        return Err(super::input_too_large(max_input));
    }
    Ok(input)
}

/// Runs a chain step's attempts, each a child run, and records how the step ended. `resumed`
/// is the attempt a replica before this one had started, with its child, which is waited for
/// instead of starting another.
pub(super) async fn run_chain_step(
    state: Arc<State>,
    context: Arc<RunContext>,
    step: Step,
    chain: ChainStep,
    input: Value,
    resumed: Option<(u32, Uuid)>,
) -> Result<(String, Outcome)> {
    let mut backoff = Duration::from_millis(chain.retry.backoff_ms);
    let (mut attempt, mut child) = match resumed {
        Some((attempt, child)) => (attempt, Some(child)),
        None => (1, None),
    };
    let outcome = loop {
        let started = match child.take() {
            Some(child) => Ok(child),
            None => start_child(&state, &context, &step, &chain, &input, attempt).await?,
        };
        let ended = match started {
            Ok(child) => wait_for(&state, child).await?,
            Err(failure) => Err(failure),
        };
        match ended {
            Ok(output) => break Ok(output),
            Err(failure) if failure.retriable && attempt < chain.retry.attempts => {
                tracing::info!(run = %context.id, step = %step.id, attempt, code = %failure.code,
                    "the step's child run failed; starting another");
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2);
                attempt += 1;
            }
            Err(failure) => break Err(failure),
        }
    };
    let outcome = match outcome {
        Ok(output) => {
            record_output(&state, &context, &step, &output).await?;
            Outcome::Completed(output)
        }
        Err(failure) => {
            record(
                &state,
                &context,
                &step,
                StepStatus::Failed,
                None,
                Some(&failure),
                "",
            )
            .await?;
            Outcome::Failed(failure)
        }
    };
    Ok((step.id, outcome))
}

/// The definition a chain step names, as its child runs it, with where it came from.
struct Target {
    definition: Definition,
    chain_id: Option<Uuid>,
    chain_version: Option<i32>,
    template: Option<String>,
}

async fn resolve(
    state: &State,
    tenant: Uuid,
    call: &definition::ChainCall,
) -> Result<std::result::Result<Target, Failure>> {
    let unknown = |what: String| Ok(Err(Failure::new(UNKNOWN_CHAIN, what, false)));
    if let Some(name) = &call.template {
        let Some(template) = state.templates.get(name) else {
            return unknown(format!("no template is named `{name}`"));
        };
        let mut definition = template.definition.clone();
        definition.name = template.name.clone();
        return Ok(Ok(Target {
            definition,
            chain_id: None,
            chain_version: None,
            template: Some(name.clone()),
        }));
    }
    let id = call.id.as_deref().unwrap_or_default();
    let Ok(chain_id) = Uuid::try_parse(id) else {
        return unknown(format!("`{id}` is not a chain id"));
    };
    let stored = match chains::get(&state.pool, tenant, chain_id, None).await {
        Ok(stored) => stored,
        Err(ChainError::NotFound(_)) => {
            return unknown(format!("this tenant has no chain `{chain_id}`"));
        }
        Err(err) => return Err(err),
    };
    let mut definition = match agents::parse(&stored.definition_json) {
        Ok(definition) => definition,
        Err(_) => {
            return Ok(Err(Failure::new(
                "invalid_input",
                format!("chain `{chain_id}` no longer parses"),
                false,
            )));
        }
    };
    definition.name = stored.name;
    Ok(Ok(Target {
        definition,
        chain_id: Some(stored.id),
        chain_version: Some(stored.version),
        template: None,
    }))
}

/// Creates the child run of an attempt, in one transaction with the step's record of it and
/// its `step.started` (which names the child), and drives it here when there is room.
async fn start_child(
    state: &Arc<State>,
    context: &RunContext,
    step: &Step,
    chain: &ChainStep,
    input: &Value,
    attempt: u32,
) -> Result<std::result::Result<Uuid, Failure>> {
    if context.depth >= definition::MAX_CHAIN_DEPTH {
        return Ok(Err(Failure::new(
            CHAIN_TOO_DEEP,
            format!(
                "chain steps nest at most {} levels below the run a caller started",
                definition::MAX_CHAIN_DEPTH
            ),
            false,
        )));
    }
    let target = match resolve(state, context.tenant_id, &chain.call).await? {
        Ok(target) => target,
        Err(failure) => return Ok(Err(failure)),
    };
    let problems = target.definition.input_problems(input);
    if !problems.is_empty() {
        let listed: Vec<String> = problems
            .iter()
            .map(|problem| format!("{}: {}", problem.field, problem.message))
            .collect();
        return Ok(Err(Failure::new(
            "invalid_input",
            format!("the child run's input: {}", listed.join("; ")),
            false,
        )));
    }
    let child = Uuid::now_v7();
    let definition_value =
        serde_json::to_value(&target.definition).map_err(|err| ChainError::Internal(err.into()))?;
    let claim_now = state.engine.has_room();
    let session_id = format!("run-{child}");
    let leased_at = std::time::Instant::now();
    let mut tx = state.pool.begin().await?;
    store::start_child_attempt(
        &mut tx,
        context.id,
        state.engine.owner,
        &step.id,
        child,
        input,
    )
    .await?
    .map_err(|LeaseLost| lease_lost())?;
    let inserted = store::insert(
        &mut tx,
        &store::NewRun {
            id: child,
            tenant_id: context.tenant_id,
            chain_id: target.chain_id,
            chain_version: target.chain_version,
            template: target.template.clone(),
            chain_name: target.definition.name.clone(),
            input: input.clone(),
            session_id,
            idempotency_key: None,
            request_hash: String::new(),
            definition: definition_value,
            steps: store::StepRows::of(&target.definition.steps),
            created_by: context.created_by.clone(),
            agents_checked: false,
            lease: claim_now.then_some((state.engine.owner, state.config.lease_ttl)),
            credential_id: context.credential_id,
            parent: Some(store::Parent {
                run_id: context.id,
                step_id: step.id.clone(),
                attempt: i32::try_from(attempt).unwrap_or(i32::MAX),
                depth: context.depth + 1,
            }),
        },
    )
    .await?;
    RunEvent::step_started(context.id, &step.id, "", attempt, "")
        .with("child_run_id", json!(child))
        .enqueue(state, &mut tx, &context.tenant)
        .await?;
    if claim_now {
        RunEvent::run_started(child, &target.definition.name)
            .enqueue(state, &mut tx, &context.tenant)
            .await?;
    }
    tx.commit().await?;
    state.wake();
    tracing::info!(run = %context.id, step = %step.id, %child, attempt, "started a child run");
    if claim_now && let Some(inserted) = inserted {
        state.engine.drive_fresh(inserted, leased_at);
    }
    Ok(Ok(child))
}

/// Waits for a child run to end: its output, or why the step fails.
async fn wait_for(state: &State, child: Uuid) -> Result<std::result::Result<Value, Failure>> {
    loop {
        let mut released = state.engine.release_of(child);
        let Some(found) = store::child_state(&state.pool, child).await? else {
            return Ok(Err(Failure::new(
                UNKNOWN_CHAIN,
                format!("the child run {child} is gone"),
                false,
            )));
        };
        match RunStatus::parse(&found.status) {
            RunStatus::Completed => return Ok(Ok(found.output.unwrap_or_else(|| json!({})))),
            RunStatus::Failed => {
                return Ok(Err(Failure::new(
                    found.error_code.as_deref().unwrap_or("child_failed"),
                    format!(
                        "the child run {child} failed: {}",
                        found.error_message.unwrap_or_default()
                    ),
                    true,
                )));
            }
            RunStatus::Cancelled => {
                return Ok(Err(Failure::new(
                    CHILD_CANCELLED,
                    format!("the child run {child} was cancelled"),
                    false,
                )));
            }
            RunStatus::Pending | RunStatus::Running | RunStatus::Waiting => {}
        }
        released.settled(state.config.claim_interval).await;
    }
}
