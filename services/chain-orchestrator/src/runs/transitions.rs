//! Step transitions (started, waiting, finished), each written with its events, fenced on the
//! run's lease, and group-committed (the kit's [`group_commit`]): the transitions of many runs
//! in flight together are written by one statement in one transaction, which is what lets a
//! replica drive hundreds of runs at once without a round trip and a WAL flush per step change.
//!
//! A transition is written only while its writer holds the run (`lease_owner`, unexpired, run
//! still running); its events go into the outbox only if its step was written, so a write that
//! finds the lease gone changes nothing and queues nothing. An attempt that ends soon after it
//! starts has both written by one transition (`Config::unannounced_start`): the step's row goes
//! from pending to its end, and its `step.started` and its ending go out in that order. A step
//! has one transition in flight at a time (its driver awaits each), so two batches in flight
//! never share a step row and cannot deadlock; the batch key holds that even so.

use chrono::{DateTime, Utc};
use sankalpa_kit::group_commit::{self, Batch, GroupCommit};
use sankalpa_kit::outbox::OutboxRow;
use serde_json::Value;
use uuid::Uuid;

use super::Writes;
use super::store::{LeaseLost, StepStatus};
use crate::error::{ChainError, Result};

/// Transitions per statement at most, and batches in flight at once.
pub const LIMITS: group_commit::Limits = group_commit::Limits {
    max_batch: 64,
    writers: 2,
};

/// Writes each transition asked for (`n` keeps it with its row), and the events of each one
/// written, in order (`began_at`: when an attempt whose start is written late began;
/// `ended_at`: when a step ended whose dependants began before its end was written); answers
/// the `n` of those written.
const WRITE_BATCH: &str = "
    WITH asked AS (
        SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],
                             $6::text[], $7::bool[], $8::text[], $9::text[], $10::text[],
                             $11::text[], $12::text[], $13::text[], $14::bool[], $15::text[],
                             $16::text[], $17::timestamptz[], $18::timestamptz[])
            WITH ORDINALITY AS a (run_id, owner, step_id, status, agent_run_id, input, finished,
                                  output, error_code, error_message, skip_reason, artifacts,
                                  warning, only_waiting, events, headers, began_at, ended_at, n)
    ), written AS (
        UPDATE chains.chain_steps s
        SET status = a.status,
            attempts = s.attempts + CASE WHEN a.agent_run_id IS NULL THEN 0 ELSE 1 END,
            agent_run_id = coalesce(a.agent_run_id, s.agent_run_id),
            input = coalesce(a.input::jsonb, s.input),
            started_at = CASE WHEN a.agent_run_id IS NOT NULL AND s.started_at IS NULL
                              THEN coalesce(a.began_at, now())
                              ELSE s.started_at END,
            finished_at = CASE WHEN a.finished THEN coalesce(a.ended_at, now()) ELSE NULL END,
            duration_ms = CASE WHEN a.finished AND s.started_at IS NOT NULL
                               THEN greatest(extract(epoch FROM coalesce(a.ended_at, now())
                                                     - s.started_at) * 1000, 0)::bigint
                               WHEN a.finished AND a.began_at IS NOT NULL
                               THEN greatest(extract(epoch FROM coalesce(a.ended_at, now())
                                                     - a.began_at) * 1000, 0)::bigint
                               ELSE s.duration_ms END,
            output = coalesce(a.output::jsonb, s.output),
            error_code = CASE WHEN a.agent_run_id IS NOT NULL THEN a.error_code
                              ELSE coalesce(a.error_code, s.error_code) END,
            error_message = CASE WHEN a.agent_run_id IS NOT NULL THEN a.error_message
                                 ELSE coalesce(a.error_message, s.error_message) END,
            skip_reason = a.skip_reason,
            artifacts = coalesce(a.artifacts::jsonb, s.artifacts),
            warning = a.warning,
            waiting_until = NULL
        FROM asked a, chains.chain_runs r
        WHERE s.run_id = a.run_id AND s.step_id = a.step_id AND r.id = a.run_id
          AND r.lease_owner = a.owner AND r.lease_expires_at > now() AND r.status = 'running'
          AND (NOT a.only_waiting OR s.status = 'waiting')
        RETURNING a.n
    ), queued AS (
        INSERT INTO chains.outbox (event, headers)
        SELECT e.event, e.headers
        FROM written w JOIN asked a USING (n),
             ROWS FROM (jsonb_array_elements(a.events::jsonb),
                        jsonb_array_elements(a.headers::jsonb))
                 WITH ORDINALITY AS e (event, headers, k)
        ORDER BY a.n, e.k
    )
    SELECT n FROM written";

/// One step transition, written only while `owner` holds the run.
pub struct StepUpdate<'a> {
    pub step_id: &'a str,
    pub status: StepStatus,
    /// Counts an attempt starting (with its agent run id and input).
    pub attempt: Option<(&'a str, &'a Value)>,
    /// With `attempt`: when the attempt began, its start being written late (with its end,
    /// under a final status). The orchestrator's clock, as the `time` of its `step.started`.
    pub began_at: Option<DateTime<Utc>>,
    /// Under a final status: when the step ended, by the orchestrator's clock, for a step whose
    /// dependants may begin before its end is written (so none seems to begin before it ended);
    /// `None`: when the end is written.
    pub ended_at: Option<DateTime<Utc>>,
    pub output: Option<&'a Value>,
    pub error: Option<(&'a str, &'a str)>,
    pub skip_reason: &'a str,
    pub artifacts: Option<Value>,
    /// Why a completed step's output is not in the run's memory session; empty otherwise.
    pub warning: &'a str,
    /// Only a step still waiting for its approval is written (a timeout racing a decision).
    pub only_waiting: bool,
}

impl<'a> StepUpdate<'a> {
    /// The step is running, and nothing else changes.
    pub fn running(step_id: &'a str) -> Self {
        Self {
            step_id,
            status: StepStatus::Running,
            attempt: None,
            began_at: None,
            ended_at: None,
            output: None,
            error: None,
            skip_reason: "",
            artifacts: None,
            warning: "",
            only_waiting: false,
        }
    }
}

/// A transition waiting for its batch: the update as the statement's columns take it.
pub struct Transition {
    run: Uuid,
    owner: Uuid,
    step_id: String,
    status: &'static str,
    agent_run_id: Option<String>,
    input: Option<String>,
    finished: bool,
    output: Option<String>,
    error_code: Option<String>,
    error_message: Option<String>,
    skip_reason: String,
    artifacts: Option<String>,
    warning: String,
    only_waiting: bool,
    /// The events as a JSON array, and their headers as another.
    events: String,
    headers: String,
    began_at: Option<DateTime<Utc>>,
    ended_at: Option<DateTime<Utc>>,
}

/// The transitions' queue. Cloning shares it.
pub type Transitions = GroupCommit<Writes<Transition>>;

/// Writes `update` of `run`'s step with its `events`, in order, while `owner` holds the run.
pub async fn write(
    transitions: &Transitions,
    run: Uuid,
    owner: Uuid,
    update: StepUpdate<'_>,
    events: &[OutboxRow],
) -> Result<std::result::Result<(), LeaseLost>> {
    fn array<T: serde::Serialize>(parts: impl Iterator<Item = T>) -> Result<String> {
        Ok(serde_json::to_string(&parts.collect::<Vec<_>>()).map_err(anyhow::Error::from)?)
    }
    let json = |value: &Value| value.to_string();
    let (error_code, error_message) = update
        .error
        .map(|(code, message)| (code.to_owned(), message.to_owned()))
        .unzip();
    let transition = Transition {
        run,
        owner,
        step_id: update.step_id.to_owned(),
        status: update.status.as_str(),
        agent_run_id: update.attempt.map(|(id, _)| id.to_owned()),
        input: update.attempt.map(|(_, input)| json(input)),
        finished: update.status.is_terminal(),
        output: update.output.map(json),
        error_code,
        error_message,
        skip_reason: update.skip_reason.to_owned(),
        artifacts: update.artifacts.as_ref().map(json),
        warning: update.warning.to_owned(),
        only_waiting: update.only_waiting,
        events: array(events.iter().map(|row| &row.event))?,
        headers: array(events.iter().map(|row| &row.headers))?,
        began_at: update.began_at,
        ended_at: update.ended_at,
    };
    Ok(LeaseLost::unless(transitions.write(transition).await?))
}

impl Batch for Writes<Transition> {
    type Write = Transition;
    /// Whether the transition was written (false: the lease was gone).
    type Written = bool;
    type Error = ChainError;
    type Key = (Uuid, String);

    fn key(transition: &Transition) -> Self::Key {
        (transition.run, transition.step_id.clone())
    }

    async fn write(&self, batch: &[&Transition]) -> Result<Vec<bool>> {
        let written: Vec<i64> = sqlx::query_scalar(WRITE_BATCH)
            .bind(group_commit::column(batch, |t| &t.run))
            .bind(group_commit::column(batch, |t| &t.owner))
            .bind(group_commit::column(batch, |t| &t.step_id))
            .bind(group_commit::column(batch, |t| &t.status))
            .bind(group_commit::column(batch, |t| &t.agent_run_id))
            .bind(group_commit::column(batch, |t| &t.input))
            .bind(group_commit::column(batch, |t| &t.finished))
            .bind(group_commit::column(batch, |t| &t.output))
            .bind(group_commit::column(batch, |t| &t.error_code))
            .bind(group_commit::column(batch, |t| &t.error_message))
            .bind(group_commit::column(batch, |t| &t.skip_reason))
            .bind(group_commit::column(batch, |t| &t.artifacts))
            .bind(group_commit::column(batch, |t| &t.warning))
            .bind(group_commit::column(batch, |t| &t.only_waiting))
            .bind(group_commit::column(batch, |t| &t.events))
            .bind(group_commit::column(batch, |t| &t.headers))
            .bind(group_commit::column(batch, |t| &t.began_at))
            .bind(group_commit::column(batch, |t| &t.ended_at))
            .fetch_all(&self.pool)
            .await?;
        if !written.is_empty() {
            self.outbox.wake();
        }
        Ok(group_commit::answered(batch.len(), written))
    }

    fn writer_lost() -> ChainError {
        ChainError::Internal(anyhow::anyhow!("the writer of a transition batch failed"))
    }
}
