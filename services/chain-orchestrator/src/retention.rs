//! How long finished runs are kept, and the sweep that deletes them after that.
//!
//! A tenant's retention (`chains.tenant_settings.run_retention_days`, read and changed through
//! GetChainSettings / UpdateChainSettings) is how many days a finished run (completed, failed or
//! cancelled) is kept after it finished; 0 keeps runs forever, and a tenant that set nothing has
//! `SANKALPA_CHAINS_RUN_RETENTION_DAYS` (30). Every `SANKALPA_CHAINS_RETENTION_SWEEP_MS`, each
//! replica deletes the runs past their tenant's retention, oldest first, [`SWEEP_BATCH`] runs per
//! statement, with everything keyed by them: their steps and credentials go with them
//! (ON DELETE CASCADE; a finished run's credential is gone already). Their events need nothing:
//! the relay deletes an outbox row once JetStream has it. Replicas sweep side by side without
//! waiting on each other or deleting a run twice: a batch takes its runs `FOR UPDATE SKIP
//! LOCKED`.
//!
//! What a run saved in memory (each step's output, `steps.<id>` in its session) is saved with
//! the same lifetime as a time to live, so memory expires it about when the run is deleted,
//! and a session no one reads again does not outlive its runs. The retention a save needs is
//! remembered per tenant for [`REMEMBERED_FOR`] ([`RetentionCache`]): saving costs no read, and
//! a changed setting applies to later saves within that time.
//!
//! The sweep scans finished runs by `finished_at` (index `chain_runs_finished_idx`), so it
//! passes over the runs old enough for the shortest retention but kept by their tenant's longer
//! one; that is bounded by what those tenants chose to keep.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sankalpa_kit::ttl_cache::TtlCache;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::error::{ChainError, Result};

/// The longest retention a tenant may set, in days (about ten years).
pub const MAX_RETENTION_DAYS: i32 = 3650;
/// Runs deleted per statement: their steps (up to 200 each) go in the same statement, so a
/// batch stays a short transaction that holds few locks.
pub const SWEEP_BATCH: u64 = 1000;

/// How long a replica goes on using a tenant's retention it read, for its saves to memory.
pub const REMEMBERED_FOR: Duration = Duration::from_secs(60);
/// Tenants whose retention a replica remembers at once, at most.
const REMEMBERED_TENANTS: usize = 10_000;

/// Tenants' retention in days, as read lately.
pub struct RetentionCache {
    days: TtlCache<Uuid, u32>,
}

impl RetentionCache {
    pub fn new() -> Self {
        Self {
            days: TtlCache::new(REMEMBERED_TENANTS),
        }
    }

    /// How long what a run of `tenant` saves in memory should live: its runs' retention, or
    /// forever (zero) when they are kept forever. A failed read gives `default_days`: a save is
    /// not worth failing over how long it lives.
    pub async fn entry_ttl(&self, pool: &PgPool, tenant: Uuid, default_days: u32) -> Duration {
        let days = match self.days.get(&tenant) {
            Some(days) => days,
            None => match get(pool, tenant, default_days).await {
                Ok(settings) => {
                    self.days
                        .insert(tenant, settings.retention_days, REMEMBERED_FOR);
                    settings.retention_days
                }
                Err(err) => {
                    tracing::warn!(%tenant, error = %err,
                        "could not read the tenant's retention; saving with the default");
                    default_days
                }
            },
        };
        Duration::from_secs(u64::from(days) * 24 * 3600)
    }

    /// Forgets `tenant`'s retention, changed on this replica.
    pub fn forget(&self, tenant: Uuid) {
        self.days.remove(&tenant);
    }
}

/// A tenant's chain settings, as they apply now.
pub struct Settings {
    pub retention_days: u32,
    /// When the tenant last changed them, and who; None while the defaults apply.
    pub changed: Option<(DateTime<Utc>, String)>,
}

/// `tenant`'s settings; `default_days` when it set none.
pub async fn get(pool: &PgPool, tenant: Uuid, default_days: u32) -> Result<Settings> {
    let row: Option<(i32, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT run_retention_days, updated_by, updated_at
         FROM chains.tenant_settings WHERE tenant_id = $1",
    )
    .bind(tenant)
    .fetch_optional(pool)
    .await?;
    Ok(match row {
        Some((days, updated_by, updated_at)) => Settings {
            retention_days: u32::try_from(days).unwrap_or(default_days),
            changed: Some((updated_at, updated_by)),
        },
        None => Settings {
            retention_days: default_days,
            changed: None,
        },
    })
}

/// Sets `tenant`'s retention to `days`, as changed by `by`: 0 (forever) or 1 to
/// [`MAX_RETENTION_DAYS`], INVALID_ARGUMENT naming `retention_days` otherwise.
pub async fn set(pool: &PgPool, tenant: Uuid, days: u32, by: &str) -> Result<Settings> {
    let days = i32::try_from(days)
        .ok()
        .filter(|days| *days <= MAX_RETENTION_DAYS)
        .ok_or_else(|| {
            ChainError::invalid(
                "retention_days",
                format!("must be 0 (keep runs forever) or 1 to {MAX_RETENTION_DAYS} days"),
            )
        })?;
    let (days, updated_by, updated_at): (i32, String, DateTime<Utc>) = sqlx::query_as(
        "INSERT INTO chains.tenant_settings (tenant_id, run_retention_days, updated_by)
         VALUES ($1, $2, $3)
         ON CONFLICT (tenant_id) DO UPDATE
             SET run_retention_days = excluded.run_retention_days,
                 updated_by = excluded.updated_by,
                 updated_at = now()
         RETURNING run_retention_days, updated_by, updated_at",
    )
    .bind(tenant)
    .bind(days)
    .bind(by)
    .fetch_one(pool)
    .await?;
    Ok(Settings {
        retention_days: u32::try_from(days).unwrap_or_default(),
        changed: Some((updated_at, updated_by)),
    })
}

/// Deletes finished runs past their tenant's retention every `every`, until `stop`; the first
/// round runs at once. `default_days` applies to tenants that set none (0: theirs are kept).
pub async fn sweep(pool: PgPool, default_days: u32, every: Duration, stop: CancellationToken) {
    // A zero period would make the interval panic; a configured 0 sweeps as often as it can.
    let mut rounds = tokio::time::interval(every.max(Duration::from_millis(1)));
    rounds.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = rounds.tick() => {}
        }
        loop {
            match sweep_batch(&pool, default_days).await {
                Ok(swept) => {
                    if swept > 0 {
                        metrics::counter!("chains_runs_swept_total").increment(swept);
                        tracing::info!(swept, "deleted runs past their retention");
                    }
                    if swept < SWEEP_BATCH || stop.is_cancelled() {
                        break;
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "could not delete runs past their retention");
                    break;
                }
            }
        }
    }
}

/// Deletes up to [`SWEEP_BATCH`] of the oldest runs past their tenant's retention, with their
/// steps; how many it deleted.
async fn sweep_batch(pool: &PgPool, default_days: u32) -> sqlx::Result<u64> {
    let deleted = sqlx::query(
        "WITH doomed AS (
             SELECT r.id
             FROM chains.chain_runs r
             LEFT JOIN chains.tenant_settings s ON s.tenant_id = r.tenant_id
             WHERE r.status IN ('completed', 'failed', 'cancelled')
               AND coalesce(s.run_retention_days, $1) > 0
               AND r.finished_at < now() - make_interval(days => coalesce(s.run_retention_days, $1))
             ORDER BY r.finished_at
             LIMIT $2
             FOR UPDATE OF r SKIP LOCKED
         )
         DELETE FROM chains.chain_runs r USING doomed WHERE r.id = doomed.id",
    )
    .bind(i32::try_from(default_days).unwrap_or(i32::MAX))
    .bind(i64::try_from(SWEEP_BATCH).unwrap_or(i64::MAX))
    .execute(pool)
    .await?;
    Ok(deleted.rows_affected())
}

/// Describes the sweep's metric and registers it at zero.
pub fn describe_metrics() {
    metrics::describe_counter!(
        "chains_runs_swept_total",
        "Finished runs deleted, with their steps, for being past their tenant's retention."
    );
    metrics::counter!("chains_runs_swept_total").increment(0);
}
