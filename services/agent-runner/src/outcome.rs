//! A run's outcome, and the outcomes of finished runs kept in Postgres (`agents.runs`) by tenant
//! and run id, for the runs whose caller named the run id: the chain orchestrator names each
//! step attempt's run and asks again with the same id after a restart, and gets the outcome kept
//! here instead of a second run of the agent. Callers that name no run id get a fresh one and
//! never touch this table.
//!
//! Each kept outcome carries what was asked (the agent, and a SHA-256 of the input as parsed),
//! so that a run id asked again for something else is refused rather than answered with another
//! request's outcome. Outcomes are kept at least `SANKALPA_AGENTS_RUN_RETENTION_MS` (24 h by
//! default), then deleted by [`sweep`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use sankalpa_kit::group_commit::{self, Batch, GroupCommit};
use sankalpa_kit::limits::error_message;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::artifacts::Artifact;
use crate::context::LlmUsage;
use crate::error::{Result, RunnerError};

/// What a run was asked to do, as far as a repeat must match it: the agent and the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    pub agent: String,
    pub input_sha256: Vec<u8>,
}

impl Asked {
    pub fn new(agent: &str, input: &Value) -> Self {
        Self {
            agent: agent.to_owned(),
            input_sha256: Sha256::digest(input.to_string().as_bytes()).to_vec(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Completed,
    Failed,
    Cancelled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// Why a run did not complete: a stable code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunError {
    pub code: String,
    pub message: String,
}

impl RunError {
    /// A run error whose message is cut to [`MAX_ERROR_BYTES`](sankalpa_kit::limits::MAX_ERROR_BYTES):
    /// an agent's message can quote megabytes of input, and it goes into the answer, the run's
    /// `failed` event and on to the chain's events.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            code: code.to_owned(),
            message: error_message(&message).into_owned(),
        }
    }
}

/// What a run came to: the answer to ExecuteAgent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub run_id: String,
    pub agent: String,
    pub agent_version: String,
    pub status: Status,
    pub output: Option<Value>,
    pub artifacts: Vec<Artifact>,
    pub workspace_id: String,
    pub duration: Duration,
    pub usage: LlmUsage,
    pub error: Option<RunError>,
    pub session_id: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
}

/// The outcome kept for the tenant's run `run_id`, with what that run was asked.
pub async fn find(pool: &PgPool, tenant: Uuid, run_id: &str) -> Result<Option<(Asked, Run)>> {
    let found: Option<(String, Vec<u8>, sqlx::types::Json<Run>)> = sqlx::query_as(
        "SELECT agent, input_sha256, outcome FROM agents.runs
         WHERE tenant_id = $1 AND run_id = $2",
    )
    .bind(tenant)
    .bind(run_id)
    .fetch_optional(pool)
    .await?;
    Ok(found.map(|(agent, input_sha256, run)| {
        (
            Asked {
                agent,
                input_sha256,
            },
            run.0,
        )
    }))
}

/// Outcomes per statement at most, and batches in flight at once: the outcomes of the runs
/// finishing together are kept by one statement ([`group_commit`]).
const LIMITS: group_commit::Limits = group_commit::Limits {
    max_batch: 64,
    writers: 2,
};

/// An outcome waiting for its batch, as the statement's columns take it.
pub struct Kept {
    tenant: Uuid,
    run_id: String,
    agent: String,
    input_sha256: Vec<u8>,
    status: &'static str,
    /// The run as JSON text.
    outcome: String,
    finished_at: DateTime<Utc>,
}

/// The outcomes' queue. Cloning shares it.
pub type Outcomes = GroupCommit<OutcomeBatch>;

/// What a batch of outcomes is kept with.
pub struct OutcomeBatch {
    pool: PgPool,
}

/// The queue of outcomes kept in `pool`, its writers on `tracker`.
pub fn outcomes(pool: PgPool, tracker: TaskTracker) -> Outcomes {
    GroupCommit::new(OutcomeBatch { pool }, LIMITS, tracker)
}

/// Keeps the outcome of the tenant's finished run; a run id kept already keeps its first outcome.
pub async fn keep(outcomes: &Outcomes, tenant: Uuid, asked: &Asked, run: &Run) -> Result<()> {
    let mut outcome = serde_json::to_string(run).map_err(anyhow::Error::from)?;
    // jsonb cannot hold a NUL a model may have written, and one outcome refused would fail
    // every outcome of its batch.
    if outcome.contains("\\u0000") {
        let parsed = serde_json::from_str(&outcome).map_err(anyhow::Error::from)?;
        outcome = sankalpa_kit::bounded_json::replace_nul(parsed).to_string();
    }
    outcomes
        .write(Kept {
            tenant,
            run_id: run.run_id.clone(),
            agent: asked.agent.clone(),
            input_sha256: asked.input_sha256.clone(),
            status: run.status.as_str(),
            outcome,
            finished_at: run.finished_at,
        })
        .await
}

impl Batch for OutcomeBatch {
    type Write = Kept;
    type Written = ();
    type Error = RunnerError;
    type Key = (Uuid, String);

    fn key(kept: &Kept) -> Self::Key {
        (kept.tenant, kept.run_id.clone())
    }

    async fn write(&self, batch: &[&Kept]) -> Result<Vec<()>> {
        sqlx::query(
            "INSERT INTO agents.runs
                 (tenant_id, run_id, agent, input_sha256, status, outcome, finished_at)
             SELECT tenant_id, run_id, agent, input_sha256, status, outcome::jsonb, finished_at
             FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bytea[], $5::text[], $6::text[],
                         $7::timestamptz[])
                 AS k (tenant_id, run_id, agent, input_sha256, status, outcome, finished_at)
             ON CONFLICT (tenant_id, run_id) DO NOTHING",
        )
        .bind(group_commit::column(batch, |k| &k.tenant))
        .bind(group_commit::column(batch, |k| &k.run_id))
        .bind(group_commit::column(batch, |k| &k.agent))
        .bind(group_commit::column(batch, |k| &k.input_sha256))
        .bind(group_commit::column(batch, |k| &k.status))
        .bind(group_commit::column(batch, |k| &k.outcome))
        .bind(group_commit::column(batch, |k| &k.finished_at))
        .execute(&self.pool)
        .await?;
        Ok(vec![(); batch.len()])
    }

    fn writer_lost() -> RunnerError {
        RunnerError::Internal(anyhow::anyhow!("the writer of an outcome batch failed"))
    }
}

/// How many kept outcomes one sweep statement deletes, so that it never holds many locks long.
const SWEEP_BATCH: u64 = 1000;

/// Deletes the outcomes of runs that finished more than `retention` ago, a batch at a time;
/// how many it deleted. Housekeeping over every tenant at once, the one query here without a
/// tenant: it reads nothing out.
pub async fn sweep_once(pool: &PgPool, retention: Duration) -> Result<u64> {
    let before =
        Utc::now() - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    let mut deleted = 0;
    loop {
        let done = sqlx::query(
            "DELETE FROM agents.runs WHERE ctid IN (
                 SELECT ctid FROM agents.runs WHERE finished_at < $1 LIMIT $2)",
        )
        .bind(before)
        .bind(SWEEP_BATCH as i64)
        .execute(pool)
        .await?
        .rows_affected();
        deleted += done;
        if done < SWEEP_BATCH {
            return Ok(deleted);
        }
    }
}

/// Sweeps every `every` until `stop`: the outcomes past `retention`, and `answers`' expired.
pub async fn sweep(
    pool: PgPool,
    answers: std::sync::Arc<crate::llm_cache::AnswerCache>,
    retention: Duration,
    every: Duration,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        match sweep_once(&pool, retention).await {
            Ok(0) => {}
            Ok(deleted) => {
                tracing::debug!(deleted, "deleted kept run outcomes past their retention")
            }
            Err(err) => tracing::warn!(error = %err, "could not delete kept run outcomes"),
        }
        if let Err(err) = answers.sweep_once().await {
            tracing::warn!(error = %err, "could not delete expired LLM answers");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(run_id: &str, finished_at: DateTime<Utc>) -> Run {
        Run {
            run_id: run_id.to_owned(),
            agent: "hello_world".to_owned(),
            agent_version: "1.0.0".to_owned(),
            status: Status::Completed,
            output: Some(serde_json::json!({"message": "Hello, World!"})),
            artifacts: Vec::new(),
            workspace_id: run_id.to_owned(),
            duration: Duration::from_millis(3),
            usage: LlmUsage::default(),
            error: None,
            session_id: None,
            started_at: finished_at,
            finished_at,
        }
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn the_sweep_deletes_the_outcomes_past_their_retention_only(pool: PgPool) {
        let tenant = Uuid::new_v4();
        let asked = Asked::new("hello_world", &serde_json::json!({}));
        let old = run("old", Utc::now() - chrono::Duration::hours(25));
        let recent = run("recent", Utc::now());
        let outcomes = outcomes(pool.clone(), TaskTracker::new());
        // Kept together, as runs finishing at once are: one batch.
        let (old_kept, recent_kept) = tokio::join!(
            keep(&outcomes, tenant, &asked, &old),
            keep(&outcomes, tenant, &asked, &recent)
        );
        old_kept.unwrap();
        recent_kept.unwrap();
        let day = Duration::from_secs(24 * 3600);
        assert_eq!(sweep_once(&pool, day).await.unwrap(), 1);
        assert!(find(&pool, tenant, "old").await.unwrap().is_none());
        let (found_asked, found) = find(&pool, tenant, "recent").await.unwrap().unwrap();
        assert_eq!((found_asked, found), (asked, recent));
        assert!(
            find(&pool, Uuid::new_v4(), "recent")
                .await
                .unwrap()
                .is_none(),
            "another tenant's run id is its own"
        );
    }
}
