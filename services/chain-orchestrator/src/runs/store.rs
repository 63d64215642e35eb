//! Runs and their steps in Postgres: the durable state the engine works from.
//!
//! A run row holds everything needed to carry it on anywhere: its definition (DAG form), input,
//! session and the lease of the replica executing it. Step rows are created with the run, all
//! `pending`. Transitions are written through the caller's transaction, in which the caller also
//! enqueues the transition's event (the outbox), so neither commits without the other. Writes
//! made while executing are fenced by the lease: they only apply while `lease_owner` is still
//! the writer and its lease has not run out, so a replica that lost its run cannot overwrite the
//! new owner's work.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sankalpa_kit::group_commit::column;
use serde_json::Value;
use uuid::Uuid;

use crate::error::{ChainError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Pending,
    Running,
    /// Only approval steps wait: no replica holds it until a decision or a timeout.
    Waiting,
    Completed,
    Failed,
    Cancelled,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Pending => "pending",
            RunStatus::Running => "running",
            RunStatus::Waiting => "waiting",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Self {
        match text {
            "pending" => RunStatus::Pending,
            "running" => RunStatus::Running,
            "waiting" => RunStatus::Waiting,
            "completed" => RunStatus::Completed,
            "failed" => RunStatus::Failed,
            _ => RunStatus::Cancelled,
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Completed | RunStatus::Failed | RunStatus::Cancelled
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    Pending,
    Running,
    /// An approval step waiting for its decision.
    Waiting,
    Completed,
    Failed,
    Skipped,
    Cancelled,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Running => "running",
            StepStatus::Waiting => "waiting",
            StepStatus::Completed => "completed",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
            StepStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Self {
        match text {
            "pending" => StepStatus::Pending,
            "running" => StepStatus::Running,
            "waiting" => StepStatus::Waiting,
            "completed" => StepStatus::Completed,
            "failed" => StepStatus::Failed,
            "skipped" => StepStatus::Skipped,
            _ => StepStatus::Cancelled,
        }
    }

    pub fn is_terminal(self) -> bool {
        !matches!(
            self,
            StepStatus::Pending | StepStatus::Running | StepStatus::Waiting
        )
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Run {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub chain_id: Option<Uuid>,
    pub chain_version: Option<i32>,
    pub template: Option<String>,
    pub chain_name: String,
    pub status: String,
    pub cancel_requested: bool,
    pub input: Value,
    pub output: Option<Value>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub session_id: String,
    pub idempotency_key: Option<String>,
    pub request_hash: String,
    pub definition: Value,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// False for a run accepted while agent-runner could not be asked about its agents: the
    /// engine checks them before its first step.
    pub agents_checked: bool,
    /// The run whose chain step started this one, and that step; None for a caller's run.
    pub parent_run_id: Option<Uuid>,
    pub parent_step: Option<String>,
    /// How many chain steps started it: 0 for a caller's run.
    pub depth: i32,
    /// The credential its steps call with (credentials.rs); None for a run that ended before
    /// credentials were shared.
    pub credential_id: Option<Uuid>,
}

impl Run {
    pub fn status(&self) -> RunStatus {
        RunStatus::parse(&self.status)
    }
}

macro_rules! run_columns {
    () => {
        "id, tenant_id, chain_id, chain_version, template, chain_name, status, cancel_requested, \
         input, output, error_code, error_message, session_id, idempotency_key, request_hash, \
         definition, created_by, created_at, started_at, finished_at, agents_checked, \
         parent_run_id, parent_step, depth, credential_id"
    };
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Step {
    pub step_id: String,
    pub agent: String,
    pub status: String,
    pub attempts: i32,
    pub agent_run_id: String,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_ms: i64,
    pub input: Option<Value>,
    pub output: Option<Value>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub skip_reason: String,
    pub artifacts: Value,
    pub warning: String,
    /// When a waiting approval times out.
    pub waiting_until: Option<DateTime<Utc>>,
    /// `agent`, `map`, `approval` or `chain`.
    pub kind: String,
    /// A chain step's child run (of its latest attempt).
    pub child_run_id: Option<Uuid>,
}

impl Step {
    pub fn status(&self) -> StepStatus {
        StepStatus::parse(&self.status)
    }
}

macro_rules! step_columns {
    () => {
        "step_id, agent, status, attempts, agent_run_id, started_at, finished_at, duration_ms, \
         input, output, error_code, error_message, skip_reason, artifacts, warning, waiting_until, \
         kind, child_run_id"
    };
}

/// A run to insert with its steps, owning what it is inserted with: it may wait in a batch
/// (runs::submissions).
pub struct NewRun {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub chain_id: Option<Uuid>,
    pub chain_version: Option<i32>,
    pub template: Option<String>,
    pub chain_name: String,
    pub input: Value,
    pub session_id: String,
    pub idempotency_key: Option<String>,
    pub request_hash: String,
    pub definition: Value,
    pub steps: StepRows,
    pub created_by: String,
    pub agents_checked: bool,
    /// The replica that will execute it at once, with its lease; `None` leaves it PENDING for
    /// whichever replica claims it first.
    pub lease: Option<(Uuid, std::time::Duration)>,
    /// The credential its steps call agent-runner with (credentials.rs); a child run's is its
    /// top run's (None: its top run has none).
    pub credential_id: Option<Uuid>,
    /// Set on a child run.
    pub parent: Option<Parent>,
}

/// A run's steps as [`insert`] writes them, in order: their ids, agents (empty for a step that
/// runs none) and kinds.
pub struct StepRows {
    ids: Vec<String>,
    agents: Vec<String>,
    kinds: Vec<String>,
}

impl StepRows {
    pub fn of(steps: &[crate::definition::Step]) -> Self {
        Self {
            ids: steps.iter().map(|step| step.id.clone()).collect(),
            agents: steps
                .iter()
                .map(|step| step.agent().unwrap_or_default().to_owned())
                .collect(),
            kinds: steps
                .iter()
                .map(|step| step.kind_name().to_owned())
                .collect(),
        }
    }

    /// The steps as [`insert`] leaves them: pending, the rest of each row the table's defaults.
    pub fn as_inserted(&self) -> Vec<Step> {
        (self.ids.iter().zip(&self.agents).zip(&self.kinds))
            .map(|((id, agent), kind)| Step {
                step_id: id.clone(),
                agent: agent.clone(),
                status: StepStatus::Pending.as_str().to_owned(),
                attempts: 0,
                agent_run_id: String::new(),
                started_at: None,
                finished_at: None,
                duration_ms: 0,
                input: None,
                output: None,
                error_code: None,
                error_message: None,
                skip_reason: String::new(),
                artifacts: Value::Array(Vec::new()),
                warning: String::new(),
                waiting_until: None,
                kind: kind.clone(),
                child_run_id: None,
            })
            .collect()
    }
}

/// Where a child run comes from (engine/subchains.rs).
pub struct Parent {
    pub run_id: Uuid,
    pub step_id: String,
    pub attempt: i32,
    pub depth: i32,
}

/// Inserts a run and its steps; the run as inserted, or `None` when the idempotency key is
/// already taken (and nothing is inserted).
pub async fn insert(tx: &mut sqlx::PgConnection, run: &NewRun) -> Result<Option<Run>> {
    Ok(insert_many(tx, &[run]).await?.pop().flatten())
}

/// Inserts `runs` and their steps by one statement; answers, in order, each run as inserted, or
/// `None` for one whose idempotency key is already taken (nothing of it is inserted).
///
/// One statement for a whole submission batch, not one a run: the batch holds its tenant's
/// submission lock while it writes, and on a busy replica every statement waits its turn on
/// the runtime, so statement by statement the lock was held the longer the bigger the batch.
pub async fn insert_many(
    tx: &mut sqlx::PgConnection,
    runs: &[&NewRun],
) -> Result<Vec<Option<Run>>> {
    let lease_ms = |run: &NewRun| {
        run.lease.map_or(0, |(_, ttl)| {
            i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)
        })
    };
    // The steps of every run, flat, each with its run's id and its place in the run.
    let (mut step_runs, mut step_ids, mut step_agents, mut step_kinds, mut step_positions) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in runs {
        let rows = &run.steps;
        for (position, id) in (0_i32..).zip(&rows.ids) {
            step_runs.push(run.id);
            step_ids.push(id.as_str());
            step_positions.push(position);
        }
        step_agents.extend(rows.agents.iter().map(String::as_str));
        step_kinds.extend(rows.kinds.iter().map(String::as_str));
    }
    let inserted: Vec<Run> = sqlx::query_as(concat!(
        "WITH given AS (
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::integer[], $5::text[],
                                  $6::text[], $7::jsonb[], $8::text[], $9::text[], $10::text[],
                                  $11::jsonb[], $12::text[], $13::bigint[], $14::uuid[],
                                  $15::boolean[], $16::uuid[], $17::text[], $18::integer[],
                                  $19::integer[], $20::uuid[])
                 AS g (id, tenant_id, chain_id, chain_version, template, chain_name, input,
                       session_id, idempotency_key, request_hash, definition, created_by,
                       lease_ms, lease_owner, agents_checked, parent_run_id, parent_step,
                       parent_attempt, depth, credential_id)
         ), run AS (
             INSERT INTO chains.chain_runs
                 (id, tenant_id, chain_id, chain_version, template, chain_name, status, input,
                  session_id, idempotency_key, request_hash, definition, created_by, started_at,
                  lease_owner, lease_expires_at, agents_checked, parent_run_id, parent_step,
                  parent_attempt, depth, credential_id)
             SELECT id, tenant_id, chain_id, chain_version, template, chain_name,
                    CASE WHEN lease_owner IS NULL THEN 'pending' ELSE 'running' END,
                    input, session_id, idempotency_key, request_hash, definition, created_by,
                    CASE WHEN lease_owner IS NULL THEN NULL ELSE now() END,
                    lease_owner,
                    CASE WHEN lease_owner IS NULL THEN NULL
                         ELSE now() + make_interval(secs => lease_ms::double precision / 1000) END,
                    agents_checked, parent_run_id, parent_step, parent_attempt,
                    coalesce(depth, 0), credential_id
             FROM given
             ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
             RETURNING *
         ), steps AS (
             INSERT INTO chains.chain_steps (run_id, step_id, position, agent, kind, status)
             SELECT s.run_id, s.step_id, s.position, s.agent, s.kind, 'pending'
             FROM unnest($21::uuid[], $22::text[], $23::text[], $24::text[], $25::integer[])
                  AS s (run_id, step_id, agent, kind, position)
             JOIN run ON run.id = s.run_id
         )
         SELECT ",
        run_columns!(),
        " FROM run"
    ))
    .bind(column(runs, |run| run.id))
    .bind(column(runs, |run| run.tenant_id))
    .bind(column(runs, |run| run.chain_id))
    .bind(column(runs, |run| run.chain_version))
    .bind(column(runs, |run| run.template.as_deref()))
    .bind(column(runs, |run| run.chain_name.as_str()))
    .bind(column(runs, |run| &run.input))
    .bind(column(runs, |run| run.session_id.as_str()))
    .bind(column(runs, |run| run.idempotency_key.as_deref()))
    .bind(column(runs, |run| run.request_hash.as_str()))
    .bind(column(runs, |run| &run.definition))
    .bind(column(runs, |run| run.created_by.as_str()))
    .bind(column(runs, lease_ms))
    .bind(column(runs, |run| run.lease.map(|(owner, _)| owner)))
    .bind(column(runs, |run| run.agents_checked))
    .bind(column(runs, |run| run.parent.as_ref().map(|p| p.run_id)))
    .bind(column(runs, |run| {
        run.parent.as_ref().map(|p| p.step_id.as_str())
    }))
    .bind(column(runs, |run| run.parent.as_ref().map(|p| p.attempt)))
    .bind(column(runs, |run| run.parent.as_ref().map(|p| p.depth)))
    .bind(column(runs, |run| run.credential_id))
    .bind(step_runs)
    .bind(step_ids)
    .bind(step_agents)
    .bind(step_kinds)
    .bind(step_positions)
    .fetch_all(&mut *tx)
    .await?;
    let mut by_id: HashMap<Uuid, Run> = inserted.into_iter().map(|run| (run.id, run)).collect();
    Ok(runs.iter().map(|run| by_id.remove(&run.id)).collect())
}

pub async fn by_idempotency_key(
    pool: &sqlx::PgPool,
    tenant: Uuid,
    key: &str,
) -> Result<Option<Run>> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        run_columns!(),
        " FROM chains.chain_runs WHERE tenant_id = $1 AND idempotency_key = $2"
    ))
    .bind(tenant)
    .bind(key)
    .fetch_optional(pool)
    .await?)
}

pub async fn get(pool: &sqlx::PgPool, tenant: Uuid, id: Uuid) -> Result<Run> {
    sqlx::query_as(concat!(
        "SELECT ",
        run_columns!(),
        " FROM chains.chain_runs WHERE id = $1 AND tenant_id = $2"
    ))
    .bind(id)
    .bind(tenant)
    .fetch_optional(pool)
    .await?
    .ok_or(ChainError::NotFound("run"))
}

/// A run by id alone, for the engine, which works for every tenant.
pub async fn load(pool: &sqlx::PgPool, id: Uuid) -> Result<Run> {
    sqlx::query_as(concat!(
        "SELECT ",
        run_columns!(),
        " FROM chains.chain_runs WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?
    .ok_or(ChainError::NotFound("run"))
}

/// The run's steps in definition order.
pub async fn steps(pool: &sqlx::PgPool, run: Uuid) -> Result<Vec<Step>> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        step_columns!(),
        " FROM chains.chain_steps WHERE run_id = $1 ORDER BY position"
    ))
    .bind(run)
    .fetch_all(pool)
    .await?)
}

/// A step with the run it is of, as [`detailed_many`] reads the steps of many runs.
#[derive(sqlx::FromRow)]
struct RunStep {
    run_id: Uuid,
    #[sqlx(flatten)]
    step: Step,
}

/// Runs with their steps in definition order, by (tenant, id), in the order asked; None where
/// the tenant has no such run. Two statements for all of them: the runs, then their steps.
pub async fn detailed_many(
    pool: &sqlx::PgPool,
    wanted: &[&(Uuid, Uuid)],
) -> Result<Vec<Option<(Run, Vec<Step>)>>> {
    let runs: Vec<Run> = sqlx::query_as(concat!(
        "SELECT ",
        run_columns!(),
        " FROM chains.chain_runs
          WHERE (tenant_id, id) IN (SELECT * FROM unnest($1::uuid[], $2::uuid[]))"
    ))
    .bind(column(wanted, |w| w.0))
    .bind(column(wanted, |w| w.1))
    .fetch_all(pool)
    .await?;
    let found: Vec<Uuid> = runs.iter().map(|run| run.id).collect();
    let rows: Vec<RunStep> = sqlx::query_as(concat!(
        "SELECT run_id, ",
        step_columns!(),
        " FROM chains.chain_steps WHERE run_id = ANY($1) ORDER BY run_id, position"
    ))
    .bind(&found)
    .fetch_all(pool)
    .await?;
    let mut by_id: HashMap<Uuid, (Run, Vec<Step>)> = runs
        .into_iter()
        .map(|run| (run.id, (run, Vec::new())))
        .collect();
    for RunStep { run_id, step } in rows {
        if let Some((_, steps)) = by_id.get_mut(&run_id) {
            steps.push(step);
        }
    }
    Ok(wanted.iter().map(|(_, id)| by_id.remove(id)).collect())
}

pub struct ListFilter {
    pub statuses: Vec<String>,
    pub chain_id: Option<Uuid>,
    /// Runs created at or after this instant.
    pub created_since: Option<DateTime<Utc>>,
    /// Runs created before this instant.
    pub created_until: Option<DateTime<Utc>>,
    pub size: i64,
    pub after: Option<Uuid>,
}

/// Runs newest first (ids are UUIDv7, so time-ordered); one more than `size` if more follow.
pub async fn list(pool: &sqlx::PgPool, tenant: Uuid, filter: &ListFilter) -> Result<Vec<Run>> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        run_columns!(),
        " FROM chains.chain_runs
          WHERE tenant_id = $1
            AND (cardinality($2::text[]) = 0 OR status = ANY($2))
            AND ($3::uuid IS NULL OR chain_id = $3)
            AND ($4::uuid IS NULL OR id < $4)
            AND ($6::timestamptz IS NULL OR created_at >= $6)
            AND ($7::timestamptz IS NULL OR created_at < $7)
          ORDER BY id DESC
          LIMIT $5"
    ))
    .bind(tenant)
    .bind(&filter.statuses)
    .bind(filter.chain_id)
    .bind(filter.after)
    .bind(filter.size + 1)
    .bind(filter.created_since)
    .bind(filter.created_until)
    .fetch_all(pool)
    .await?)
}

/// What asking a run to stop did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelRequest {
    /// The run had not started, or was waiting for an approval with nothing running: it is
    /// CANCELLED now; the caller enqueues run.cancelled.
    Ended,
    /// The run is running: its owner stops it.
    Requested,
    /// No unfinished run of the tenant has this id: nothing was changed.
    Nothing,
}

/// Asks a run of `tenant` to stop. A run no replica holds (not claimed yet, or waiting for an
/// approval) ends CANCELLED here; a
/// running one is stopped by its owner, which sees the flag at its next heartbeat or at once
/// when it is this replica.
pub async fn request_cancel(
    tx: &mut sqlx::PgConnection,
    tenant: Uuid,
    id: Uuid,
) -> Result<CancelRequest> {
    let row: Option<(bool,)> = sqlx::query_as(
        "UPDATE chains.chain_runs
         SET cancel_requested = true,
             status = CASE WHEN status IN ('pending', 'waiting') THEN 'cancelled' ELSE status END,
             finished_at = CASE WHEN status IN ('pending', 'waiting') THEN now()
                                ELSE finished_at END,
             wake_at = NULL
         WHERE id = $1 AND tenant_id = $2 AND status IN ('pending', 'running', 'waiting')
         RETURNING status = 'cancelled'",
    )
    .bind(id)
    .bind(tenant)
    .fetch_optional(&mut *tx)
    .await?;
    match row {
        Some((true,)) => {
            sqlx::query(
                "UPDATE chains.chain_steps SET status = 'cancelled', waiting_until = NULL
                 WHERE run_id = $1 AND status IN ('pending', 'waiting')",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
            Ok(CancelRequest::Ended)
        }
        Some((false,)) => Ok(CancelRequest::Requested),
        None => Ok(CancelRequest::Nothing),
    }
}

/// How many runs each of `tenants` has pending, running or waiting, counted under the tenants'
/// submission locks, which `tx` then holds until it ends: submissions of one tenant, on any
/// replica, count one after the other, so two cannot both pass at the last free slot. The
/// locks are taken in the tenants' order, so two transactions locking several cannot deadlock.
pub async fn unfinished_locked(
    tx: &mut sqlx::PgConnection,
    tenants: &[Uuid],
) -> Result<HashMap<Uuid, i64>> {
    let mut sorted = tenants.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtextextended('chains.runs/' || t.id::text, 0))
         FROM (SELECT id FROM unnest($1::uuid[]) WITH ORDINALITY AS u (id, n) ORDER BY n) t",
    )
    .bind(&sorted)
    .execute(&mut *tx)
    .await?;
    // A statement of its own: under READ COMMITTED its snapshot is taken once the locks are
    // held, so it sees the runs committed by the submissions that held them before.
    let counted: Vec<(Uuid, i64)> = sqlx::query_as(
        "SELECT tenant_id, count(*) FROM chains.chain_runs
         WHERE tenant_id = ANY($1) AND status IN ('pending', 'running', 'waiting')
         GROUP BY tenant_id",
    )
    .bind(&sorted)
    .fetch_all(&mut *tx)
    .await?;
    Ok(counted.into_iter().collect())
}

/// A run claimed by [`claim`]; `started` when it had not run anywhere before, and so is to be
/// announced by the claim's transaction.
#[derive(sqlx::FromRow)]
pub struct Claimed {
    pub id: Uuid,
    pub started: bool,
    pub tenant_id: Uuid,
    pub chain_name: String,
}

/// Takes up to `limit` unfinished runs no live replica holds, and waiting runs whose earliest
/// approval has timed out. `SKIP LOCKED` lets replicas claim side by side without waiting on
/// each other or taking the same run.
pub async fn claim(
    tx: &mut sqlx::PgConnection,
    owner: Uuid,
    lease: std::time::Duration,
    limit: i64,
) -> Result<Vec<Claimed>> {
    Ok(sqlx::query_as(
        "WITH picked AS (
             SELECT id, status = 'pending' AS fresh
             FROM chains.chain_runs
             WHERE (status IN ('pending', 'running')
                    AND (lease_expires_at IS NULL OR lease_expires_at < now()))
                OR (status = 'waiting' AND wake_at <= now())
             ORDER BY created_at
             LIMIT $3
             FOR UPDATE SKIP LOCKED
         )
         UPDATE chains.chain_runs r
         SET lease_owner = $1,
             lease_expires_at = now() + make_interval(secs => $2::double precision / 1000),
             status = 'running',
             wake_at = NULL,
             started_at = coalesce(r.started_at, now())
         FROM picked
         WHERE r.id = picked.id
         RETURNING r.id, picked.fresh AS started, r.tenant_id, r.chain_name",
    )
    .bind(owner)
    .bind(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
    .bind(limit)
    .fetch_all(tx)
    .await?)
}

/// What a heartbeat learns.
pub enum Lease {
    Held { cancel_requested: bool },
    Lost,
}

/// Extends the lease; `Lost` when another replica has taken the run (this one stalled past its
/// lease) or the run ended.
pub async fn renew(
    pool: &sqlx::PgPool,
    id: Uuid,
    owner: Uuid,
    lease: std::time::Duration,
) -> Result<Lease> {
    let row: Option<(bool,)> = sqlx::query_as(
        "UPDATE chains.chain_runs
         SET lease_expires_at = now() + make_interval(secs => $3::double precision / 1000)
         WHERE id = $1 AND lease_owner = $2 AND status = 'running' AND lease_expires_at > now()
         RETURNING cancel_requested",
    )
    .bind(id)
    .bind(owner)
    .bind(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
    .fetch_optional(pool)
    .await?;
    Ok(match row {
        Some((cancel_requested,)) => Lease::Held { cancel_requested },
        None => Lease::Lost,
    })
}

/// Lets another replica take the run at once (a graceful stop).
pub async fn release(pool: &sqlx::PgPool, id: Uuid, owner: Uuid) -> Result<()> {
    sqlx::query(
        "UPDATE chains.chain_runs SET lease_expires_at = now()
         WHERE id = $1 AND lease_owner = $2 AND status = 'running'",
    )
    .bind(id)
    .bind(owner)
    .execute(pool)
    .await?;
    Ok(())
}

/// Raised when a fenced write finds the lease gone.
#[derive(Debug, thiserror::Error)]
#[error("the run's lease was lost")]
pub struct LeaseLost;

impl LeaseLost {
    /// A fenced write's answer: made while the lease was `held`, or not at all.
    pub fn unless(held: bool) -> Result<(), LeaseLost> {
        if held { Ok(()) } else { Err(LeaseLost) }
    }
}

/// A write fenced on the run's lease touched its one row, or the lease was lost.
fn fenced(written: &sqlx::postgres::PgQueryResult) -> Result<(), LeaseLost> {
    LeaseLost::unless(written.rows_affected() == 1)
}

/// How a run ends: written only while `owner` holds it.
pub struct Ending {
    pub run: Uuid,
    pub owner: Uuid,
    pub status: RunStatus,
    pub output: Value,
    /// The failure's code and message.
    pub error: Option<(String, String)>,
}

/// Ends each of `endings`' runs that its owner still holds by one statement: its status, output
/// and error, whatever of its steps had not finished marked cancelled (only for a run ended,
/// i.e. whose lease was held), the lease dropped (its credential is retired by credentials.rs's
/// sweep once no run uses it). Answers, in order, whether each was ended.
pub async fn finish(tx: &mut sqlx::PgConnection, endings: &[&Ending]) -> Result<Vec<bool>> {
    let (codes, messages): (Vec<Option<&str>>, Vec<Option<&str>>) = endings
        .iter()
        .map(|ending| match &ending.error {
            Some((code, message)) => (Some(code.as_str()), Some(message.as_str())),
            None => (None, None),
        })
        .unzip();
    let ended: Vec<i64> = sqlx::query_scalar(
        "WITH asked AS (
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::jsonb[], $5::text[],
                                  $6::text[])
                 WITH ORDINALITY AS a (run_id, owner, status, output, error_code, error_message, n)
         ), ended AS (
             UPDATE chains.chain_runs r
             SET status = a.status, output = a.output, error_code = a.error_code,
                 error_message = a.error_message, finished_at = now(), lease_owner = NULL,
                 lease_expires_at = NULL, wake_at = NULL
             FROM asked a
             WHERE r.id = a.run_id AND r.lease_owner = a.owner AND r.lease_expires_at > now()
               AND r.status = 'running'
             RETURNING r.id, a.n
         ), cancelled AS (
             UPDATE chains.chain_steps SET status = 'cancelled', finished_at = now(),
                 waiting_until = NULL
             WHERE run_id IN (SELECT id FROM ended)
               AND status IN ('pending', 'running', 'waiting')
         )
         SELECT n FROM ended",
    )
    .bind(column(endings, |ending| &ending.run))
    .bind(column(endings, |ending| &ending.owner))
    .bind(
        endings
            .iter()
            .map(|ending| ending.status.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        endings
            .iter()
            .map(|ending| sqlx::types::Json(&ending.output))
            .collect::<Vec<_>>(),
    )
    .bind(codes)
    .bind(messages)
    .fetch_all(&mut *tx)
    .await?;
    Ok(sankalpa_kit::group_commit::answered(endings.len(), ended))
}

/// Sets a step waiting for its approval until `timeout` from now, while `owner` holds the run;
/// returns when it times out.
pub async fn await_approval(
    tx: &mut sqlx::PgConnection,
    run: Uuid,
    owner: Uuid,
    step_id: &str,
    timeout: std::time::Duration,
) -> Result<Result<DateTime<Utc>, LeaseLost>> {
    let until: Option<DateTime<Utc>> = sqlx::query_scalar(
        "UPDATE chains.chain_steps s
         SET status = 'waiting', started_at = now(),
             waiting_until = now() + make_interval(secs => $4::double precision / 1000)
         FROM chains.chain_runs r
         WHERE s.run_id = $1 AND s.step_id = $3 AND r.id = s.run_id
           AND r.lease_owner = $2 AND r.lease_expires_at > now() AND r.status = 'running'
         RETURNING s.waiting_until",
    )
    .bind(run)
    .bind(owner)
    .bind(step_id)
    .bind(i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX))
    .fetch_optional(&mut *tx)
    .await?;
    Ok(until.ok_or(LeaseLost))
}

/// The rows of a run's steps among `ids`.
pub async fn steps_among(pool: &sqlx::PgPool, run: Uuid, ids: &[String]) -> Result<Vec<Step>> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        step_columns!(),
        " FROM chains.chain_steps WHERE run_id = $1 AND step_id = ANY($2)"
    ))
    .bind(run)
    .bind(ids)
    .fetch_all(pool)
    .await?)
}

/// What parking a run came to.
pub enum Parked {
    /// It waits, held by no replica, until a decision or its earliest timeout.
    Waiting,
    /// Its waiting steps are not the `expected` ones any more (one was decided meanwhile): the
    /// driver looks again.
    Changed,
    /// Someone asked for it to stop: the driver ends it.
    CancelRequested,
    Lost,
}

/// Lets go of a run whose only unfinished steps wait for approvals: WAITING, no lease, woken
/// (claimed again) at its earliest approval timeout, or at once by a decision (approvals.rs).
/// The run row is locked first, as a decision locks it, so a decision committed just before is
/// counted here and one after finds the run WAITING.
pub async fn park(pool: &sqlx::PgPool, run: Uuid, owner: Uuid, expected: usize) -> Result<Parked> {
    let mut tx = pool.begin().await?;
    let held: Option<(bool,)> = sqlx::query_as(
        "SELECT cancel_requested FROM chains.chain_runs
         WHERE id = $1 AND lease_owner = $2 AND lease_expires_at > now() AND status = 'running'
         FOR UPDATE",
    )
    .bind(run)
    .bind(owner)
    .fetch_optional(&mut *tx)
    .await?;
    match held {
        None => return Ok(Parked::Lost),
        Some((true,)) => return Ok(Parked::CancelRequested),
        Some((false,)) => {}
    }
    // A statement of its own, after the lock: it sees every decision committed before.
    let (waiting, wake_at): (i64, Option<DateTime<Utc>>) = sqlx::query_as(
        "SELECT count(*), min(waiting_until) FROM chains.chain_steps
         WHERE run_id = $1 AND status = 'waiting'",
    )
    .bind(run)
    .fetch_one(&mut *tx)
    .await?;
    if usize::try_from(waiting).ok() != Some(expected) {
        return Ok(Parked::Changed);
    }
    sqlx::query(
        "UPDATE chains.chain_runs
         SET status = 'waiting', wake_at = $2, lease_owner = NULL, lease_expires_at = NULL
         WHERE id = $1",
    )
    .bind(run)
    .bind(wake_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Parked::Waiting)
}

/// A run of `tenant`, locked for a decision on one of its steps (a decision, a park and a
/// finish of one run take turns on its row): its status and definition.
pub async fn lock_for_decision(
    tx: &mut sqlx::PgConnection,
    tenant: Uuid,
    run: Uuid,
) -> Result<Option<(String, Value)>> {
    Ok(sqlx::query_as(
        "SELECT status, definition FROM chains.chain_runs
         WHERE id = $1 AND tenant_id = $2 FOR UPDATE",
    )
    .bind(run)
    .bind(tenant)
    .fetch_optional(&mut *tx)
    .await?)
}

/// How a decision ends a waiting step.
pub struct Decided<'a> {
    pub status: StepStatus,
    /// What was decided, by whom, with what: the step's input.
    pub decision: &'a Value,
    pub output: Option<&'a Value>,
    pub error: Option<(&'a str, &'a str)>,
}

/// Ends a step waiting for its decision; false when it is not waiting (decided already, timed
/// out, or never reached). Call with the run locked ([`lock_for_decision`]).
pub async fn decide_step(
    tx: &mut sqlx::PgConnection,
    run: Uuid,
    step_id: &str,
    decided: &Decided<'_>,
) -> Result<bool> {
    let (error_code, error_message) = match decided.error {
        Some((code, message)) => (Some(code), Some(message)),
        None => (None, None),
    };
    let written = sqlx::query(
        "UPDATE chains.chain_steps
         SET status = $3, input = $4, output = $5, error_code = $6, error_message = $7,
             finished_at = now(), waiting_until = NULL,
             duration_ms = CASE WHEN started_at IS NULL THEN 0
                                ELSE (extract(epoch FROM now() - started_at) * 1000)::bigint END
         WHERE run_id = $1 AND step_id = $2 AND status = 'waiting'",
    )
    .bind(run)
    .bind(step_id)
    .bind(decided.status.as_str())
    .bind(decided.decision)
    .bind(decided.output)
    .bind(error_code)
    .bind(error_message)
    .execute(&mut *tx)
    .await?;
    Ok(written.rows_affected() == 1)
}

/// The status of one step of a run, if the run has it.
pub async fn step_status(
    tx: &mut sqlx::PgConnection,
    run: Uuid,
    step_id: &str,
) -> Result<Option<StepStatus>> {
    let status: Option<String> = sqlx::query_scalar(
        "SELECT status FROM chains.chain_steps WHERE run_id = $1 AND step_id = $2",
    )
    .bind(run)
    .bind(step_id)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(status.as_deref().map(StepStatus::parse))
}

/// Makes a WAITING run go on: RUNNING, leased to `lease` at once, or with no lease for the
/// first replica's claim.
pub async fn resume(
    tx: &mut sqlx::PgConnection,
    run: Uuid,
    lease: Option<(Uuid, std::time::Duration)>,
) -> Result<()> {
    let (owner, lease_ms) = match lease {
        Some((owner, ttl)) => (
            Some(owner),
            i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX),
        ),
        None => (None, 0),
    };
    sqlx::query(
        "UPDATE chains.chain_runs
         SET status = 'running', wake_at = NULL, lease_owner = $2,
             lease_expires_at = CASE WHEN $2::uuid IS NULL THEN NULL
                                     ELSE now() + make_interval(secs => $3::double precision / 1000)
                                END
         WHERE id = $1 AND status = 'waiting'",
    )
    .bind(run)
    .bind(owner)
    .bind(lease_ms)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// One item of a map step that ended, as kept in `chains.step_items`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Item {
    pub item_index: i32,
    pub status: String,
    pub output: Option<Value>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

/// The items of a map step that have ended, by index.
pub async fn items(pool: &sqlx::PgPool, run: Uuid, step_id: &str) -> Result<Vec<Item>> {
    Ok(sqlx::query_as(
        "SELECT item_index, status, output, error_code, error_message
         FROM chains.step_items WHERE run_id = $1 AND step_id = $2 ORDER BY item_index",
    )
    .bind(run)
    .bind(step_id)
    .fetch_all(pool)
    .await?)
}

/// How one item of a map step ended.
pub struct ItemEnd<'a> {
    pub step_id: &'a str,
    pub index: i32,
    pub status: StepStatus,
    pub attempts: i32,
    pub output: Option<&'a Value>,
    pub error: Option<(&'a str, &'a str)>,
}

/// Keeps how an item ended, while `owner` holds the run: one statement, fenced on the lease.
pub async fn record_item(
    pool: &sqlx::PgPool,
    run: Uuid,
    owner: Uuid,
    item: &ItemEnd<'_>,
) -> Result<Result<(), LeaseLost>> {
    let (error_code, error_message) = match item.error {
        Some((code, message)) => (Some(code), Some(message)),
        None => (None, None),
    };
    let written = sqlx::query(
        "INSERT INTO chains.step_items
             (run_id, step_id, item_index, status, attempts, output, error_code, error_message)
         SELECT $1, $3, $4, $5, $6, $7, $8, $9
         FROM chains.chain_runs r
         WHERE r.id = $1 AND r.lease_owner = $2 AND r.lease_expires_at > now()
           AND r.status = 'running'
         ON CONFLICT (run_id, step_id, item_index) DO UPDATE SET attempts = excluded.attempts",
    )
    .bind(run)
    .bind(owner)
    .bind(item.step_id)
    .bind(item.index)
    .bind(item.status.as_str())
    .bind(item.attempts)
    .bind(item.output)
    .bind(error_code)
    .bind(error_message)
    .execute(pool)
    .await?;
    Ok(fenced(&written))
}

/// Records a chain step's new attempt and its child run in `tx`, while `owner` holds the
/// parent: the step running with the child's id, so a replica taking the parent over finds the
/// child instead of starting another.
pub async fn start_child_attempt(
    tx: &mut sqlx::PgConnection,
    run: Uuid,
    owner: Uuid,
    step_id: &str,
    child: Uuid,
    input: &Value,
) -> Result<Result<(), LeaseLost>> {
    let written = sqlx::query(
        "UPDATE chains.chain_steps s
         SET status = 'running', attempts = s.attempts + 1, child_run_id = $4, input = $5,
             started_at = coalesce(s.started_at, now()), error_code = NULL, error_message = NULL
         FROM chains.chain_runs r
         WHERE s.run_id = $1 AND s.step_id = $3 AND r.id = s.run_id
           AND r.lease_owner = $2 AND r.lease_expires_at > now() AND r.status = 'running'",
    )
    .bind(run)
    .bind(owner)
    .bind(step_id)
    .bind(child)
    .bind(input)
    .execute(tx)
    .await?;
    Ok(fenced(&written))
}

/// How a child run stands, as its parent's chain step waits for it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChildState {
    pub status: String,
    pub output: Option<Value>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

pub async fn child_state(pool: &sqlx::PgPool, child: Uuid) -> Result<Option<ChildState>> {
    Ok(sqlx::query_as(
        "SELECT status, output, error_code, error_message FROM chains.chain_runs WHERE id = $1",
    )
    .bind(child)
    .fetch_optional(pool)
    .await?)
}

/// Stops the unfinished child runs of a run that is ending, in the run's finishing `tx`: one
/// not started yet, or waiting for an approval (it has nothing running), ends CANCELLED here;
/// a running one is asked to stop, as CancelRun asks, and its own end stops its children.
/// Returns the children ended here (to announce) and those asked (to nudge).
pub async fn stop_children(
    tx: &mut sqlx::PgConnection,
    parent: Uuid,
) -> Result<(Vec<Uuid>, Vec<Uuid>)> {
    let rows: Vec<(Uuid, bool)> = sqlx::query_as(
        "UPDATE chains.chain_runs
         SET cancel_requested = true,
             status = CASE WHEN status IN ('pending', 'waiting') THEN 'cancelled' ELSE status END,
             finished_at = CASE WHEN status IN ('pending', 'waiting') THEN now()
                                ELSE finished_at END,
             wake_at = NULL
         WHERE parent_run_id = $1 AND status IN ('pending', 'running', 'waiting')
         RETURNING id, status = 'cancelled'",
    )
    .bind(parent)
    .fetch_all(&mut *tx)
    .await?;
    let ended: Vec<Uuid> = rows
        .iter()
        .filter(|(_, ended)| *ended)
        .map(|(id, _)| *id)
        .collect();
    let asked = rows
        .iter()
        .filter(|(_, ended)| !*ended)
        .map(|(id, _)| *id)
        .collect();
    if !ended.is_empty() {
        sqlx::query(
            "UPDATE chains.chain_steps SET status = 'cancelled', waiting_until = NULL
             WHERE run_id = ANY($1) AND status IN ('pending', 'waiting')",
        )
        .bind(&ended)
        .execute(&mut *tx)
        .await?;
    }
    Ok((ended, asked))
}
