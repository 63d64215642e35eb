//! A tenant's schedules: what runs (a stored chain or a template, with an input), when (a cron
//! expression in a zone, or an interval, see [`crate::ticks`]), and the policies of its ticks.
//! Every statement is scoped by the tenant: another tenant's schedule is not found. The firing
//! of ticks is [`crate::firing`]; the key ticks run with, [`crate::credentials`].

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use rand::Rng;
use serde_json::Value;
use sqlx::PgPool;
use sqlx::types::Json;
use uuid::Uuid;

use crate::credentials::Issued;
use crate::error::{Result, TriggersError};
use crate::ticks::Timing;

/// The most jitter a schedule may ask for: an hour.
pub const MAX_JITTER_SECONDS: u32 = 3600;
/// The longest catch-up window: a week.
pub const MAX_CATCH_UP_WINDOW_SECONDS: u64 = 7 * 24 * 3600;
pub const MAX_NAME_CHARS: usize = 200;
/// The largest input, as JSON text.
pub const MAX_INPUT_BYTES: usize = 64 * 1024;
pub const MAX_TEMPLATE_BYTES: usize = 200;

/// What a tick does while an earlier tick's run is unfinished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlap {
    Skip,
    BufferOne,
    Allow,
}

impl Overlap {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Skip => "skip",
            Self::BufferOne => "buffer_one",
            Self::Allow => "allow",
        }
    }

    fn named(name: &str) -> Self {
        match name {
            "buffer_one" => Self::BufferOne,
            "allow" => Self::Allow,
            _ => Self::Skip,
        }
    }
}

/// Which missed ticks fire late.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatchUp {
    None,
    Last,
    All,
}

impl CatchUp {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Last => "last",
            Self::All => "all",
        }
    }

    fn named(name: &str) -> Self {
        match name {
            "last" => Self::Last,
            "all" => Self::All,
            _ => Self::None,
        }
    }
}

/// When ticks fall, as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum When {
    Cron { expression: String, zone: String },
    Every { seconds: u64 },
}

/// What each tick runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Chain(Uuid),
    Template(String),
}

#[derive(Debug, sqlx::FromRow)]
pub struct Schedule {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub cron: Option<String>,
    pub time_zone: String,
    pub interval_seconds: Option<i64>,
    pub chain_id: Option<Uuid>,
    pub template: Option<String>,
    pub input: Json<Value>,
    overlap: String,
    catch_up: String,
    pub catch_up_window_seconds: i64,
    pub jitter_seconds: i32,
    pub paused: bool,
    pub next_tick_at: Option<DateTime<Utc>>,
    pub buffered_tick_at: Option<DateTime<Utc>>,
    pub last_tick_at: Option<DateTime<Utc>>,
    pub last_run_id: Option<Uuid>,
    pub last_error: String,
    pub key_id: String,
    pub secret: String,
    pub key_expires_at: DateTime<Utc>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub(crate) const COLUMNS: &str = "id, tenant_id, name, cron, time_zone, interval_seconds, chain_id, \
     template, input, overlap, catch_up, catch_up_window_seconds, jitter_seconds, paused, \
     next_tick_at, buffered_tick_at, last_tick_at, last_run_id, last_error, key_id, secret, \
     key_expires_at, created_by, created_at, updated_at";

impl Schedule {
    pub fn overlap(&self) -> Overlap {
        Overlap::named(&self.overlap)
    }

    pub fn catch_up(&self) -> CatchUp {
        CatchUp::named(&self.catch_up)
    }

    pub fn when(&self) -> When {
        match (&self.cron, self.interval_seconds) {
            (Some(expression), _) => When::Cron {
                expression: expression.clone(),
                zone: self.time_zone.clone(),
            },
            (None, seconds) => When::Every {
                seconds: seconds.and_then(|s| u64::try_from(s).ok()).unwrap_or(1),
            },
        }
    }

    pub fn target(&self) -> Target {
        match (self.chain_id, &self.template) {
            (Some(id), _) => Target::Chain(id),
            (None, template) => Target::Template(template.clone().unwrap_or_default()),
        }
    }

    /// Its timing; the stored expression was checked when written.
    pub fn timing(&self) -> Result<Timing> {
        timing(&self.when(), self.created_at)
    }

    /// Up to `count` fire times from the next tick on; none while paused.
    pub fn next_fire_times(&self, count: usize) -> Vec<DateTime<Utc>> {
        let (Some(next), false, Ok(timing)) = (self.next_tick_at, self.paused, self.timing())
        else {
            return Vec::new();
        };
        let mut times = vec![next];
        times.extend(timing.upcoming(next, count.saturating_sub(1)));
        times
    }
}

/// The timing of `when`, intervals counted from `anchor`.
pub fn timing(when: &When, anchor: DateTime<Utc>) -> Result<Timing> {
    match when {
        When::Cron { expression, zone } => Timing::cron(expression, zone),
        When::Every { seconds } => Timing::every(*seconds, anchor),
    }
    .map_err(|refused| TriggersError::invalid(refused.field, refused.message))
}

/// When a replica should look at a schedule whose next tick is `tick`: the tick, late by up to
/// `jitter_seconds` at random.
pub fn due_at(tick: DateTime<Utc>, jitter_seconds: i32) -> DateTime<Utc> {
    let jitter_ms = i64::from(jitter_seconds.max(0)) * 1000;
    if jitter_ms == 0 {
        return tick;
    }
    tick + chrono::Duration::milliseconds(rand::thread_rng().gen_range(0..=jitter_ms))
}

/// A schedule as asked for, checked.
pub struct NewSchedule {
    pub name: String,
    pub when: When,
    pub target: Target,
    pub input: Value,
    pub overlap: Overlap,
    pub catch_up: CatchUp,
    pub catch_up_window_seconds: u64,
    pub jitter_seconds: u32,
    pub paused: bool,
}

/// The number of schedules of the tenant, to refuse a creation before a key is made for it.
pub async fn count(pool: &PgPool, tenant: Uuid) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM triggers.schedules WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_one(pool)
            .await?,
    )
}

/// Stores schedule `id` with its key, unless the tenant has `max_per_tenant` already.
pub async fn create(
    pool: &PgPool,
    tenant: Uuid,
    id: Uuid,
    created_by: &str,
    new: NewSchedule,
    key: &Issued,
    max_per_tenant: i64,
) -> Result<Schedule> {
    // Intervals count from a whole second, so ticks (and their idempotency keys) are too.
    let now = Utc::now().trunc_subsecs(0);
    let timing = timing(&new.when, now)?;
    let next = timing.next_after(now);
    let mut tx = pool.begin().await?;
    // Counted under a lock of the tenant, so two creations at once cannot both pass the bound.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('triggers.schedules:' || $1::text))")
        .bind(tenant)
        .execute(&mut *tx)
        .await?;
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM triggers.schedules WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_one(&mut *tx)
            .await?;
    if count >= max_per_tenant {
        return Err(exhausted(count));
    }
    let (cron, zone, interval) = match &new.when {
        When::Cron { expression, zone } => (
            Some(expression.as_str()),
            if zone.is_empty() { "UTC" } else { zone },
            None,
        ),
        When::Every { seconds } => (None, "UTC", i64::try_from(*seconds).ok()),
    };
    let (chain_id, template) = match &new.target {
        Target::Chain(id) => (Some(*id), None),
        Target::Template(name) => (None, Some(name.as_str())),
    };
    let jitter = i32::try_from(new.jitter_seconds).unwrap_or(0);
    let schedule = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO triggers.schedules
             (id, tenant_id, name, cron, time_zone, interval_seconds, chain_id, template, input,
              overlap, catch_up, catch_up_window_seconds, jitter_seconds, paused, next_tick_at,
              due_at, key_id, secret, key_expires_at, created_by, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
                 $19, $20, $21, $21)
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(tenant)
    .bind(&new.name)
    .bind(cron)
    .bind(zone)
    .bind(interval)
    .bind(chain_id)
    .bind(template)
    .bind(Json(&new.input))
    .bind(new.overlap.as_str())
    .bind(new.catch_up.as_str())
    .bind(i64::try_from(new.catch_up_window_seconds).unwrap_or(0))
    .bind(jitter)
    .bind(new.paused)
    .bind(next)
    .bind(next.map(|tick| due_at(tick, jitter)))
    .bind(&key.key_id)
    .bind(&key.secret)
    .bind(key.expires_at)
    .bind(created_by)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(schedule)
}

pub fn exhausted(count: i64) -> TriggersError {
    TriggersError::Exhausted(format!(
        "the tenant has {count} schedules, the most it may have; delete one first"
    ))
}

pub async fn get(pool: &PgPool, tenant: Uuid, id: Uuid) -> Result<Schedule> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM triggers.schedules WHERE id = $1 AND tenant_id = $2"
    )))
    .bind(id)
    .bind(tenant)
    .fetch_optional(pool)
    .await?
    .ok_or(TriggersError::NotFound("schedule"))
}

/// A page of the tenant's schedules, newest first, after the schedule `after`; one more than
/// `size` when more follow.
pub async fn list(
    pool: &PgPool,
    tenant: Uuid,
    size: i64,
    after: Option<Uuid>,
) -> Result<Vec<Schedule>> {
    crate::listing::newest_first(
        pool,
        "triggers.schedules",
        "s",
        COLUMNS,
        tenant,
        size,
        after,
    )
    .await
}

/// What an update changes; `None` keeps a field.
#[derive(Default)]
pub struct Changes {
    pub name: Option<String>,
    pub when: Option<When>,
    pub input: Option<Value>,
    pub overlap: Option<Overlap>,
    pub catch_up: Option<CatchUp>,
    pub catch_up_window_seconds: Option<u64>,
    pub jitter_seconds: Option<u32>,
    pub paused: Option<bool>,
    /// A new key, replacing the schedule's.
    pub key: Option<Issued>,
}

/// Applies `changes`; answers the schedule and, when the key was replaced, the old key's id
/// and secret, to revoke.
pub async fn update(
    pool: &PgPool,
    tenant: Uuid,
    id: Uuid,
    changes: Changes,
) -> Result<(Schedule, Option<(String, String)>)> {
    let mut tx = pool.begin().await?;
    let current: Schedule = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM triggers.schedules WHERE id = $1 AND tenant_id = $2 FOR UPDATE"
    )))
    .bind(id)
    .bind(tenant)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(TriggersError::NotFound("schedule"))?;
    let when = changes.when.clone().unwrap_or_else(|| current.when());
    let paused = changes.paused.unwrap_or(current.paused);
    let jitter = changes
        .jitter_seconds
        .map_or(current.jitter_seconds, |j| i32::try_from(j).unwrap_or(0));
    // A new timing, or a resumption, starts from the next tick after now: ticks missed while
    // paused are not caught up.
    let restart = changes.when.is_some() || (current.paused && !paused);
    let next_tick = if restart {
        timing(&when, current.created_at)?.next_after(Utc::now())
    } else {
        current.next_tick_at
    };
    let due = next_tick.map(|tick| due_at(tick, jitter));
    let (cron, zone, interval) = match &when {
        When::Cron { expression, zone } => (
            Some(expression.clone()),
            if zone.is_empty() {
                "UTC".to_owned()
            } else {
                zone.clone()
            },
            None,
        ),
        When::Every { seconds } => (None, "UTC".to_owned(), i64::try_from(*seconds).ok()),
    };
    let replaced = changes
        .key
        .as_ref()
        .map(|_| (current.key_id.clone(), current.secret.clone()));
    let schedule = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE triggers.schedules SET
             name = coalesce($3, name),
             cron = $4, time_zone = $5, interval_seconds = $6,
             input = coalesce($7, input),
             overlap = coalesce($8, overlap),
             catch_up = coalesce($9, catch_up),
             catch_up_window_seconds = coalesce($10, catch_up_window_seconds),
             jitter_seconds = $11,
             paused = $12,
             next_tick_at = $13,
             due_at = CASE WHEN $12 THEN NULL WHEN $15 THEN $14 ELSE due_at END,
             buffered_tick_at = CASE WHEN $12 OR $15 THEN NULL ELSE buffered_tick_at END,
             key_id = coalesce($16, key_id),
             secret = coalesce($17, secret),
             key_expires_at = coalesce($18, key_expires_at),
             updated_at = now()
         WHERE id = $1 AND tenant_id = $2
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(tenant)
    .bind(changes.name)
    .bind(cron)
    .bind(zone)
    .bind(interval)
    .bind(changes.input.map(Json))
    .bind(changes.overlap.map(Overlap::as_str))
    .bind(changes.catch_up.map(CatchUp::as_str))
    .bind(
        changes
            .catch_up_window_seconds
            .map(|s| i64::try_from(s).unwrap_or(0)),
    )
    .bind(jitter)
    .bind(paused)
    .bind(next_tick)
    .bind(due)
    .bind(restart)
    .bind(changes.key.as_ref().map(|key| key.key_id.clone()))
    .bind(changes.key.as_ref().map(|key| key.secret.clone()))
    .bind(changes.key.as_ref().map(|key| key.expires_at))
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((schedule, replaced))
}

/// Removes a schedule; answers its key's id and secret, to revoke.
pub async fn delete(pool: &PgPool, tenant: Uuid, id: Uuid) -> Result<(String, String)> {
    sqlx::query_as(
        "DELETE FROM triggers.schedules WHERE id = $1 AND tenant_id = $2 RETURNING key_id, secret",
    )
    .bind(id)
    .bind(tenant)
    .fetch_optional(pool)
    .await?
    .ok_or(TriggersError::NotFound("schedule"))
}

/// How long after its time a tick still fires when the catch-up policy is `none`: ticks are
/// late by a poll, a busy replica or a restart; later than this, they were missed.
pub const LATE_GRACE: Duration = Duration::from_secs(60);
