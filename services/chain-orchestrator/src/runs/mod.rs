//! Runs as callers start, see and stop them; their rows are [`store`]'s, their execution the
//! engine's.
//!
//! [`execute`] takes a checked ExecuteChain request ([`crate::input::Execution`]) to an accepted
//! run. A repeated idempotency key is answered with the run it started, if the request is the
//! same one (its hash matches), and refused otherwise. A tenant has at most
//! `max_concurrent_runs_per_tenant` runs pending or running: counted under the tenant's lock in
//! the transaction that inserts the run ([`submissions`]), so two submissions cannot both take
//! the last slot (a refused one has cost its lookups and its caller's credential, which its
//! caller's next runs share). The target is resolved and its agents checked
//! again (they may have gone since it was saved; the catalog answers for the agents it
//! remembers, and a run whose agents agent-runner cannot be asked about is accepted and checked
//! as it starts: accepting a run needs Postgres and auth, not agent-runner or memory), the
//! input checked against its `input_schema`, and its caller's credential taken
//! (credentials.rs); then the run and its steps are inserted, in one transaction with the
//! other submissions waiting alongside ([`submissions`]). With room on this replica the run is
//! leased here and starts at once (announced as it commits); otherwise it is left pending for
//! the first replica to claim it.
//!
//! Runs' ends are group-committed too ([`endings`]), as are step transitions
//! ([`transitions`]); runs with their steps are read many at a time the same way ([`details`]).

pub mod details;
pub mod endings;
pub mod store;
pub mod submissions;
pub mod transitions;

use std::marker::PhantomData;
use std::time::Duration;

use sankalpa_kit::auth::Principal;
use sankalpa_kit::group_commit::{Batch, GroupCommit, Limits};
use sankalpa_kit::outbox::{Outbox, OutboxRow};
use sqlx::PgPool;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::definition::{self, Definition};
use crate::error::{ChainError, Result};
use crate::events::RunEvent;
use crate::input::{Execution, Target};
use crate::{State, agents, chains, credentials, engine};
use store::{CancelRequest, Run, Step};
use submissions::{Admission, Submission};

/// What a group commit of runs' writes of kind `W` (a step transition, a submission, a run's
/// end) is written with: the pool, and the outbox their events go into, whose relay a batch
/// that queued events wakes.
pub struct Writes<W> {
    pool: PgPool,
    outbox: Outbox,
    kind: PhantomData<fn() -> W>,
}

impl<W> Writes<W> {
    /// Queues `events` in `tx`, commits it, and wakes the relay if there were any.
    async fn commit_with(
        &self,
        mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
        events: &[&OutboxRow],
    ) -> sqlx::Result<()> {
        self.outbox.enqueue_rows(&mut tx, events).await?;
        tx.commit().await?;
        if !events.is_empty() {
            self.outbox.wake();
        }
        Ok(())
    }
}

/// The queue of writes of kind `W`, within `limits`, written by tasks on `writers`.
pub fn group_commit<W>(
    pool: PgPool,
    outbox: Outbox,
    limits: Limits,
    writers: TaskTracker,
) -> GroupCommit<Writes<W>>
where
    Writes<W>: Batch,
{
    let writes = Writes {
        pool,
        outbox,
        kind: PhantomData,
    };
    GroupCommit::new(writes, limits, writers)
}

/// A run with its steps, as GetRun and the RPCs that return one answer.
pub type Detailed = (Run, Vec<Step>);

/// The definition a run executes and where it came from.
struct Resolved {
    definition: Definition,
    chain_id: Option<Uuid>,
    chain_version: Option<i32>,
    template: Option<String>,
    /// Whether agent-runner confirmed (or the catalog remembered) every agent at submission.
    agents_checked: bool,
}

/// Starts a run of `caller`'s, or finds the one its idempotency key started, and answers with it
/// at once or, when asked to wait, once it has finished or the wait is up. `token` is the
/// caller's, to look agents up and have auth issue the run's credential.
pub async fn execute(
    state: &State,
    caller: &Principal,
    tenant: Uuid,
    token: &str,
    request: Execution,
) -> Result<Detailed> {
    let idempotency_key = request.idempotency_key.as_deref();
    if let Some(key) = idempotency_key
        && let Some(existing) = store::by_idempotency_key(&state.pool, tenant, key).await?
    {
        return answer_repeat(state, tenant, existing, &request).await;
    }
    let quota = state.config.max_concurrent_runs_per_tenant;
    let target = resolve(state, caller, tenant, &request.target, token).await?;
    let problems = target.definition.input_problems(&request.input);
    if !problems.is_empty() {
        return Err(ChainError::InvalidInput(definition::at_most(problems)));
    }
    let run_id = Uuid::now_v7();
    let credential_id = state
        .credentials
        .for_run(
            &state.pool,
            token,
            caller,
            tenant,
            credentials::lifetime(state.config.credential_ttl, &target.definition),
        )
        .await?;
    let session_id = request
        .session
        .clone()
        .unwrap_or_else(|| format!("run-{run_id}"));
    let definition_value =
        serde_json::to_value(&target.definition).map_err(|err| ChainError::Internal(err.into()))?;
    let claim_now = state.engine.has_room();
    let submission = Submission {
        run: store::NewRun {
            id: run_id,
            tenant_id: tenant,
            chain_id: target.chain_id,
            chain_version: target.chain_version,
            template: target.template.clone(),
            chain_name: target.definition.name.clone(),
            input: request.input.clone(),
            session_id,
            idempotency_key: request.idempotency_key.clone(),
            request_hash: request.request_hash.clone(),
            definition: definition_value,
            steps: store::StepRows::of(&target.definition.steps),
            created_by: caller.subject.clone(),
            agents_checked: target.agents_checked,
            lease: claim_now.then_some((state.engine.owner, state.config.lease_ttl)),
            credential_id: Some(credential_id),
            parent: None,
        },
        quota,
        // It starts running here and now; a run left pending is announced by its claim.
        announce: claim_now.then(|| {
            RunEvent::run_started(run_id, &target.definition.name).row(state, &tenant.to_string())
        }),
    };
    // A caller not waiting is answered with the run as accepted: read back later it may
    // already be past that, or finished.
    let steps_as_inserted = (!request.wait).then(|| submission.run.steps.as_inserted());
    let leased_at = std::time::Instant::now();
    let inserted = match state.submissions.write(submission).await? {
        Admission::Inserted(run) => *run,
        Admission::OverQuota => {
            // A repeat of a run accepted since the lookup above is answered, not refused.
            if let Some(key) = idempotency_key
                && let Some(existing) = store::by_idempotency_key(&state.pool, tenant, key).await?
            {
                return answer_repeat(state, tenant, existing, &request).await;
            }
            return Err(run_quota_exceeded(quota));
        }
        Admission::KeyTaken => {
            // Another request with the same key won the race: answer with its run.
            let key = idempotency_key.expect("only a key can conflict");
            let existing = store::by_idempotency_key(&state.pool, tenant, key)
                .await?
                .ok_or(ChainError::NotFound("run"))?;
            return answer_repeat(state, tenant, existing, &request).await;
        }
    };
    tracing::info!(run = %run_id, chain = %target.definition.name, "run accepted");
    if let Some(steps) = steps_as_inserted {
        let accepted = (inserted.clone(), steps);
        if claim_now {
            state.engine.drive_fresh(inserted, leased_at);
        }
        return Ok(accepted);
    }
    if claim_now {
        // Its release signal exists from the hand-over, so its release cannot be missed; until
        // then it is known to be running, and a waiting caller need not read it.
        let released = state.engine.drive_fresh(inserted, leased_at);
        return engine::wait_handed(state, tenant, run_id, request.wait_limit, released).await;
    }
    engine::wait(state, tenant, run_id, request.wait_limit).await
}

/// A run of `tenant` with its steps.
pub async fn detailed(state: &State, tenant: Uuid, run_id: Uuid) -> Result<Detailed> {
    state
        .details
        .write((tenant, run_id))
        .await?
        .ok_or(ChainError::NotFound("run"))
}

/// Asks a run of `tenant` to stop, and answers with it as it then is. A run not started yet ends
/// here, announced as it commits; a running one is stopped by the replica executing it.
pub async fn cancel(state: &State, tenant: Uuid, run_id: Uuid) -> Result<Detailed> {
    let mut tx = state.pool.begin().await?;
    match store::request_cancel(&mut tx, tenant, run_id).await? {
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

/// The definition an ExecuteChain request names, with its agents checked again (they may have
/// gone since it was saved). An agent-runner that cannot be asked does not refuse the run: it
/// is accepted with `agents_checked` false, and the engine checks its agents as it starts.
async fn resolve(
    state: &State,
    caller: &Principal,
    tenant: Uuid,
    target: &Target,
    token: &str,
) -> Result<Resolved> {
    let (definition, chain_id, chain_version, template) = match target {
        Target::Chain { id, version } => {
            let stored = chains::get(&state.pool, tenant, *id, *version).await?;
            let mut definition = agents::parse(&stored.definition_json)?;
            definition.name = stored.name;
            (definition, Some(stored.id), Some(stored.version), None)
        }
        Target::Template(name) => {
            let template = state
                .templates
                .get(name)
                .ok_or(ChainError::NotFound("template"))?;
            let mut definition = template.definition.clone();
            definition.name = template.name.clone();
            (definition, None, None, Some(name.clone()))
        }
        Target::Definition(document) => (agents::parse(document)?, None, None, None),
    };
    chains::check_calls(&state.pool, &state.templates, tenant, &definition, None).await?;
    let agents_checked = agents::known(state, caller, token, &definition).await?;
    if !agents_checked {
        tracing::info!(
            tenant = %tenant,
            "agent-runner cannot be asked about the run's agents; they are checked as it starts"
        );
    }
    Ok(Resolved {
        definition,
        chain_id,
        chain_version,
        template,
        agents_checked,
    })
}

/// The run a repeated idempotency key started, if the request is the same one.
async fn answer_repeat(
    state: &State,
    tenant: Uuid,
    existing: Run,
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
    if wait {
        engine::wait(state, tenant, run_id, wait_limit).await
    } else {
        detailed(state, tenant, run_id).await
    }
}
