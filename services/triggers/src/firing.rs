//! Firing schedules' ticks. Every `SANKALPA_TRIGGERS_SCHEDULE_POLL_MS`, each replica claims the
//! schedules that are due, one at a time, with `FOR UPDATE SKIP LOCKED` (replicas take
//! different schedules, and a schedule being fired is skipped, not waited for), starts the
//! runs of its due ticks through the orchestrator's `ExecuteChain`, and advances the schedule
//! to its next tick in the same transaction. Each run is started with the idempotency key
//! `schedule:<id>:<tick, RFC 3339>`, so a tick whose transaction did not commit (a crash, a
//! lost connection) and is fired again starts no second run: whatever the number of replicas,
//! a tick starts one run.
//!
//! Which ticks are due follows the catch-up policy ([`CatchUp`]): ticks are never more than
//! [`LATE_GRACE`] (plus the jitter) late unless a replica was down or the schedule was
//! waiting; beyond it, `none` gives them up, `last` fires the latest, `all` those within the
//! window (the latest [`MAX_TICKS_PER_CLAIM`]). Before each run, the overlap policy asks the
//! orchestrator whether the schedule's last run is unfinished: `skip` gives the tick up,
//! `buffer_one` keeps it (replacing a tick kept before) and looks again every
//! [`BUFFER_RECHECK`], `allow` fires anyway.
//!
//! A tick the orchestrator refuses for good (the chain deleted, the credential expired, bad
//! input) is recorded in the schedule's `last_error` and not retried; when the orchestrator or
//! auth cannot be reached, the transaction is rolled back and the ticks fire at a later poll.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use sankalpa_kit::auth::with_bearer;
use sankalpa_kit::grpc::connection_lost;
use sankalpa_proto::v1 as pb;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tracing::Instrument;
use uuid::Uuid;

use crate::State;
use crate::error::{Result, TriggersError};
use crate::events::ScheduleAction;
use crate::schedules::{self, CatchUp, LATE_GRACE, Overlap, Schedule, Target};

/// Ticks fired in one claim of a schedule, at most: the latest ones.
pub const MAX_TICKS_PER_CLAIM: usize = 100;
/// How often a buffered tick looks again whether the run in its way has finished.
pub const BUFFER_RECHECK: Duration = Duration::from_secs(1);
const ORCHESTRATOR_TIMEOUT: Duration = Duration::from_secs(10);

/// The idempotency key of a tick's run.
pub fn idempotency_key(schedule: Uuid, tick: DateTime<Utc>) -> String {
    format!(
        "schedule:{schedule}:{}",
        tick.to_rfc3339_opts(SecondsFormat::AutoSi, true)
    )
}

pub(crate) async fn run(state: Arc<State>, stop: CancellationToken) {
    let mut rounds =
        tokio::time::interval(state.config.schedule_poll.max(Duration::from_millis(1)));
    rounds.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = rounds.tick() => {}
        }
        while !stop.is_cancelled() {
            match fire_one(&state).await {
                Ok(true) => {}
                Ok(false) => break,
                Err(err) => {
                    tracing::warn!(error = %err, "could not fire a schedule's ticks");
                    break;
                }
            }
        }
    }
}

/// What became of one tick.
enum Outcome {
    Fired(Uuid),
    Skipped(String),
    Buffered,
    Failed(String),
}

/// Claims one due schedule and fires its ticks; false when none was due.
async fn fire_one(state: &State) -> Result<bool> {
    let mut tx = state.pool.begin().await?;
    let claimed: Option<Schedule> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM triggers.schedules
         WHERE NOT paused AND due_at <= now()
         ORDER BY due_at
         LIMIT 1
         FOR UPDATE SKIP LOCKED",
        schedules::COLUMNS
    )))
    .fetch_optional(&mut *tx)
    .await?;
    let Some(schedule) = claimed else {
        return Ok(false);
    };
    let span =
        tracing::info_span!("fire_schedule", tenant = %schedule.tenant_id, schedule = %schedule.id);
    fire_claimed(state, tx, schedule).instrument(span).await?;
    Ok(true)
}

/// Fires the due ticks of `schedule`, claimed in `tx`, and advances it.
async fn fire_claimed(
    state: &State,
    mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
    schedule: Schedule,
) -> Result<()> {
    let now = Utc::now();
    let timing = schedule.timing()?;
    let ticks = due_ticks(&schedule, &timing, now);
    let mut buffered = schedule.buffered_tick_at;
    let mut last_run = schedule.last_run_id;
    let mut last_tick = schedule.last_tick_at;
    let mut last_error = None;
    let mut fired = Vec::new();
    // A buffered tick goes first: it is older than any tick due now.
    let pending: Vec<DateTime<Utc>> = buffered
        .take()
        .into_iter()
        .chain(ticks.iter().copied())
        .collect();
    for tick in pending {
        let outcome = fire_tick(state, &schedule, tick, last_run).await?;
        let name = match &outcome {
            Outcome::Fired(_) => "fired",
            Outcome::Skipped(_) => "skipped",
            Outcome::Buffered => "buffered",
            Outcome::Failed(_) => "failed",
        };
        metrics::counter!("triggers_schedule_ticks_total", "outcome" => name).increment(1);
        match outcome {
            Outcome::Fired(run) => {
                last_run = Some(run);
                last_error = Some(String::new());
                fired.push((tick, run));
            }
            Outcome::Skipped(why) | Outcome::Failed(why) => last_error = Some(why),
            Outcome::Buffered => buffered = Some(tick),
        }
        if buffered != Some(tick) {
            last_tick = Some(tick);
        }
    }
    let after = ticks.last().copied().unwrap_or(now).max(now);
    let next = if ticks.is_empty() && schedule.next_tick_at.is_some_and(|next| next > now) {
        schedule.next_tick_at
    } else {
        timing.next_after(after)
    };
    let mut due = next.map(|tick| schedules::due_at(tick, schedule.jitter_seconds));
    if buffered.is_some() {
        let recheck = now + chrono::Duration::from_std(BUFFER_RECHECK).unwrap_or_default();
        due = Some(due.map_or(recheck, |due| due.min(recheck)));
    }
    sqlx::query(
        "UPDATE triggers.schedules SET
             next_tick_at = $2, due_at = $3, buffered_tick_at = $4, last_tick_at = $5,
             last_run_id = $6, last_error = coalesce($7, last_error)
         WHERE id = $1",
    )
    .bind(schedule.id)
    .bind(next)
    .bind(due)
    .bind(buffered)
    .bind(last_tick)
    .bind(last_run)
    .bind(last_error)
    .execute(&mut *tx)
    .await?;
    for (tick, run) in &fired {
        let (chain_id, template) = match schedule.target() {
            Target::Chain(id) => (Some(id.to_string()), None),
            Target::Template(name) => (None, Some(name)),
        };
        state
            .schedule_events
            .enqueue(
                &mut tx,
                schedule.tenant_id,
                &schedule.id.to_string(),
                ScheduleAction::Fired,
                serde_json::json!({
                    "schedule_id": schedule.id,
                    "tick": tick,
                    "run_id": run,
                    "chain_id": chain_id,
                    "template": template,
                }),
            )
            .await?;
    }
    tx.commit().await?;
    if !fired.is_empty() {
        state.schedule_events.wake();
    }
    Ok(())
}

/// The ticks of `schedule` to fire now, oldest first, per its catch-up policy.
fn due_ticks(
    schedule: &Schedule,
    timing: &crate::ticks::Timing,
    now: DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    let Some(next) = schedule.next_tick_at else {
        return Vec::new();
    };
    let jitter = chrono::Duration::seconds(i64::from(schedule.jitter_seconds.max(0)));
    let grace = chrono::Duration::from_std(LATE_GRACE).unwrap_or_default() + jitter;
    let recent = next.max(now - grace);
    match schedule.catch_up() {
        CatchUp::None => timing.due(recent, now, MAX_TICKS_PER_CLAIM),
        CatchUp::Last => {
            let ticks = timing.due(recent, now, MAX_TICKS_PER_CLAIM);
            if !ticks.is_empty() {
                return ticks;
            }
            timing
                .latest_at_or_before(now)
                .filter(|latest| *latest >= next)
                .into_iter()
                .collect()
        }
        CatchUp::All => {
            let window = chrono::Duration::seconds(schedule.catch_up_window_seconds.max(0));
            timing.due(next.max(now - window.max(grace)), now, MAX_TICKS_PER_CLAIM)
        }
    }
}

/// Fires one tick: checks the overlap policy against the schedule's last run, then starts the
/// tick's run. An error only when auth or the orchestrator cannot be reached.
async fn fire_tick(
    state: &State,
    schedule: &Schedule,
    tick: DateTime<Utc>,
    last_run: Option<Uuid>,
) -> Result<Outcome> {
    if schedule.key_expires_at <= Utc::now() {
        return Ok(Outcome::Failed(
            "the schedule's credential expired; renew it".to_owned(),
        ));
    }
    let token = match state.credentials.token(schedule.id, &schedule.secret).await {
        Ok(token) => token,
        Err(TriggersError::Precondition(why)) => return Ok(Outcome::Failed(why)),
        Err(err) => return Err(err),
    };
    let overlap = schedule.overlap();
    if overlap != Overlap::Allow
        && let Some(run) = last_run
        && unfinished(state, &token, run).await?
    {
        return Ok(match overlap {
            Overlap::BufferOne => Outcome::Buffered,
            _ => Outcome::Skipped(format!(
                "the tick at {tick} was skipped: run {run} had not finished"
            )),
        });
    }
    match execute(
        state,
        &token,
        schedule.target(),
        &schedule.input.0,
        idempotency_key(schedule.id, tick),
    )
    .await?
    {
        Ok(run) => Ok(Outcome::Fired(run)),
        Err(status) => Ok(Outcome::Failed(format!(
            "the orchestrator refused the tick at {tick}: {}",
            status.message()
        ))),
    }
}

/// Starts a run of `target` through the orchestrator with `token`; the orchestrator's refusal
/// as `Ok(Err(status))`, an error when it cannot be reached (the same call later can succeed).
pub(crate) async fn execute(
    state: &State,
    token: &str,
    target: Target,
    input: &serde_json::Value,
    idempotency_key: String,
) -> Result<std::result::Result<Uuid, tonic::Status>> {
    let target = match target {
        Target::Chain(id) => pb::execute_chain_request::Target::Chain(pb::ChainRef {
            id: id.to_string(),
            version: None,
        }),
        Target::Template(name) => pb::execute_chain_request::Target::Template(name),
    };
    let request = pb::ExecuteChainRequest {
        target: Some(target),
        input_json: input.to_string(),
        wait: false,
        wait_timeout_ms: 0,
        idempotency_key,
        session_id: None,
    };
    let mut request = with_bearer(request, token)
        .map_err(|status| TriggersError::Precondition(status.message().to_owned()))?;
    request.set_timeout(ORCHESTRATOR_TIMEOUT);
    match state.chains.clone().execute_chain(request).await {
        Ok(run) => {
            let run = run.into_inner();
            let id = Uuid::parse_str(&run.id).map_err(|_| {
                anyhow::anyhow!("the orchestrator answered a run id that is no UUID")
            })?;
            Ok(Ok(id))
        }
        Err(status) if transient(status.code()) => Err(TriggersError::Unavailable(format!(
            "the orchestrator did not start the run: {}",
            status.message()
        ))),
        Err(status) => Ok(Err(status)),
    }
}

/// Codes after which the same call later can succeed: a connection refused, reset or lost
/// under the call (the idempotency key makes the retry of a run that did start harmless), or an
/// orchestrator out of time or room.
fn transient(code: Code) -> bool {
    connection_lost(code)
        || matches!(
            code,
            Code::DeadlineExceeded | Code::Aborted | Code::ResourceExhausted
        )
}

/// Whether run `id` is pending, running or waiting; a run the orchestrator does not know (or
/// no longer keeps) is not in the way.
async fn unfinished(state: &State, token: &str, id: Uuid) -> Result<bool> {
    let mut request = with_bearer(pb::GetRunRequest { id: id.to_string() }, token)
        .map_err(|status| TriggersError::Precondition(status.message().to_owned()))?;
    request.set_timeout(ORCHESTRATOR_TIMEOUT);
    match state.chains.clone().get_run(request).await {
        Ok(run) => Ok(matches!(
            run.into_inner().status(),
            pb::ChainRunStatus::Pending | pb::ChainRunStatus::Running | pb::ChainRunStatus::Waiting
        )),
        Err(status) if status.code() == Code::NotFound => Ok(false),
        Err(status) if transient(status.code()) => Err(TriggersError::Unavailable(format!(
            "the orchestrator did not answer about run {id}: {}",
            status.message()
        ))),
        // Unknowable (no chains:read, say): fire, rather than skip every tick for ever.
        Err(_) => Ok(false),
    }
}

pub fn describe_metrics() {
    metrics::describe_counter!(
        "triggers_schedule_ticks_total",
        "Schedule ticks handled, by outcome: fired (a run started), skipped or buffered by the \
         overlap policy, failed (the orchestrator or auth refused it)."
    );
    for outcome in ["fired", "skipped", "buffered", "failed"] {
        metrics::counter!("triggers_schedule_ticks_total", "outcome" => outcome).increment(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_lost_under_a_call_is_retried_not_recorded_as_refused() {
        for code in [
            Code::Unavailable,
            Code::Unknown,
            Code::Cancelled,
            Code::DeadlineExceeded,
            Code::Aborted,
            Code::ResourceExhausted,
        ] {
            assert!(transient(code), "{code:?}");
        }
        for code in [
            Code::InvalidArgument,
            Code::NotFound,
            Code::PermissionDenied,
            Code::Unauthenticated,
            Code::FailedPrecondition,
            Code::Internal,
        ] {
            assert!(!transient(code), "{code:?}");
        }
    }
}
