//! The operations on entries (see [`crate::entry`]): save, load, page through, delete, and
//! sweep the expired; [`saves`] commits concurrent unconditional saves together.
//!
//! Every write is one statement, in a transaction only so that its event commits with it (see
//! `events`): an unconditional save is an upsert (the row lock of `ON CONFLICT DO UPDATE` orders
//! concurrent writers, each adding one to the version it finds), and a compare-and-set is an `UPDATE ... WHERE version = $n` that
//! Postgres re-checks against the newest row, so two writers that expected the same version
//! cannot both win. A session is created by the first write into it.

use std::time::Duration;

use sankalpa_kit::paging::BadPage;
use serde_json::json;
use sqlx::PgPool;
use sqlx::types::Json;
use tokio_util::sync::CancellationToken;

use crate::State;
use crate::cache::Change;
use crate::entry::{Entry, Scope, entry_columns, live};
use crate::error::{MemoryError, Result};
use crate::events::Action;
use crate::input;

pub mod saves;
use saves::Pending;

/// Creates the session unless it exists, as a `WITH` clause before an entry insert.
macro_rules! ensure_session {
    () => {
        "
        WITH session AS (
            INSERT INTO memory.sessions (tenant_id, id, user_id) VALUES ($1, $2, $3)
            ON CONFLICT (tenant_id, id) DO NOTHING
        )"
    };
}

pub struct Save {
    pub key: String,
    pub value: String,
    pub ttl_seconds: i64,
    /// Compare-and-set: write only if the key is at this version (0: absent).
    pub expected_version: Option<i64>,
}

/// Writes the entry and enqueues its `saved` event in one statement: the write (`written`),
/// then the event into the outbox with the version the write gave (`queued`), both committed or
/// neither. The event's data is bound as $7 with a placeholder version that SQL fills in.
macro_rules! save_statement {
    ($write:expr) => {
        concat!(
            $write,
            " RETURNING ",
            entry_columns!(),
            "), queued AS ( \
                INSERT INTO memory.outbox (event, headers) \
                SELECT jsonb_set($7::jsonb, '{data,keys,0,version}', to_jsonb(w.version)), $8::jsonb \
                FROM written w) \
             SELECT * FROM written"
        )
    };
}

/// Writes `save`: through the group commit of [`saves`] when it has no version to
/// match, else as a compare-and-set of its own, which may conflict.
#[tracing::instrument(skip_all, fields(tenant = %scope.tenant, session = %scope.session))]
pub async fn save(state: &State, scope: &Scope, user_id: &str, save: Save) -> Result<Entry> {
    let event = state.events.row(
        scope.tenant,
        &scope.session,
        Action::Saved,
        json!({
            "session_id": scope.session,
            "keys": [{ "key": save.key, "version": 0 }],
        }),
    );
    let query = match save.expected_version {
        None => {
            return state
                .saves
                .write(Pending {
                    tenant: scope.tenant,
                    session: scope.session.clone(),
                    user_id: user_id.to_owned(),
                    key: save.key,
                    value: save.value,
                    ttl_seconds: save.ttl_seconds,
                    event,
                })
                .await;
        }
        // A create-only save ($1 tenant, $2 session, $3 user, $4 key, $5 value, $6 TTL in
        // seconds) creates the session if needed, and may only replace an expired entry.
        Some(0) => sqlx::query_as(save_statement!(concat!(
            ensure_session!(),
            ", written AS (
            INSERT INTO memory.entries AS e
                (tenant_id, session_id, key, value, version, revision, expires_at)
            VALUES ($1, $2, $4, $5::jsonb, 1, nextval('memory.revisions'),
                CASE WHEN $6::bigint > 0 THEN now() + $6::bigint * interval '1 second' END)
            ON CONFLICT (tenant_id, session_id, key) DO UPDATE SET
                value = EXCLUDED.value,
                version = 1,
                revision = nextval('memory.revisions'),
                created_at = now(),
                updated_at = now(),
                expires_at = EXCLUDED.expires_at
            WHERE e.expires_at <= now()"
        )))
        .bind(scope.tenant)
        .bind(&scope.session)
        .bind(user_id)
        .bind(&save.key)
        .bind(&save.value)
        .bind(save.ttl_seconds),
        Some(expected) => sqlx::query_as(save_statement!(concat!(
            "WITH written AS (
            UPDATE memory.entries SET
                value = $4::jsonb,
                version = version + 1,
                revision = nextval('memory.revisions'),
                updated_at = now(),
                expires_at = CASE WHEN $5::bigint > 0
                    THEN now() + $5::bigint * interval '1 second' END
            WHERE tenant_id = $1 AND session_id = $2 AND key = $3 AND version = $6 AND ",
            live!()
        )))
        .bind(scope.tenant)
        .bind(&scope.session)
        .bind(&save.key)
        .bind(&save.value)
        .bind(save.ttl_seconds)
        .bind(expected),
    };
    let written: Option<Entry> = query
        .bind(Json(&event.event))
        .bind(Json(&event.headers))
        .fetch_optional(&state.pool)
        .await
        .map_err(|err| MemoryError::of_value_write(err, "value_json"))?;
    let Some(entry) = written else {
        let current = current_version(&state.pool, scope, &save.key).await?;
        return Err(conflict(current));
    };
    state.events.wake();
    state
        .cache
        .offer(scope.tenant, &scope.session, &[Change::Written(&entry)])
        .await;
    Ok(entry)
}

/// The version a conflict reports: the key's version as it is now.
fn conflict(current: i64) -> MemoryError {
    MemoryError::VersionConflict {
        current_version: u64::try_from(current).unwrap_or(0),
    }
}

/// The key's live version, 0 when it is absent or expired.
async fn current_version(pool: &PgPool, scope: &Scope, key: &str) -> Result<i64> {
    let version: Option<i64> = sqlx::query_scalar(concat!(
        "SELECT version FROM memory.entries
         WHERE tenant_id = $1 AND session_id = $2 AND key = $3 AND ",
        live!()
    ))
    .bind(scope.tenant)
    .bind(&scope.session)
    .bind(key)
    .fetch_optional(pool)
    .await?;
    Ok(version.unwrap_or(0))
}

/// One live entry, from the cache when it holds it.
#[tracing::instrument(skip_all, fields(tenant = %scope.tenant, session = %scope.session))]
pub async fn load(state: &State, scope: &Scope, key: &str) -> Result<Entry> {
    if let Some(entry) = state.cache.get(scope.tenant, &scope.session, key).await {
        return Ok(entry);
    }
    let entry: Option<Entry> = sqlx::query_as(concat!(
        "SELECT ",
        entry_columns!(),
        " FROM memory.entries WHERE tenant_id = $1 AND session_id = $2 AND key = $3 AND ",
        live!()
    ))
    .bind(scope.tenant)
    .bind(&scope.session)
    .bind(key)
    .fetch_optional(&state.pool)
    .await?;
    let entry = entry.ok_or(MemoryError::NotFound("entry"))?;
    state
        .cache
        .offer(scope.tenant, &scope.session, &[Change::Written(&entry)])
        .await;
    Ok(entry)
}

/// What an entry adds to a page besides its key and value: more than the protobuf framing,
/// version and three timestamps of a wire `Entry` take (87 bytes at most).
const ENTRY_OVERHEAD_BYTES: i64 = 128;

/// Where a page of [`get_all`] starts and where it must stop.
pub struct Page<'a> {
    /// Only keys starting with this.
    pub key_prefix: &'a str,
    /// The most entries.
    pub size: i64,
    /// The most bytes of keys and values (each counted with [`ENTRY_OVERHEAD_BYTES`]); the
    /// first entry comes whatever its size, so every page makes progress.
    pub max_bytes: usize,
    /// The token of the page before, empty for the first.
    pub token: &'a str,
}

/// A row of a page, and whether it fits in it.
#[derive(sqlx::FromRow)]
struct Paged {
    fits: bool,
    #[sqlx(flatten)]
    entry: Entry,
}

/// A page of a session's live entries in key order, and the token of the next page. Served
/// from Postgres: a page is one indexed range scan, and caching pages would make every write
/// invalidate an unknown number of them.
///
/// A page ends at `page.size` entries or before the entry that would take it past
/// `page.max_bytes`, measured by the `value_bytes` each row keeps: Postgres counts as it
/// scans, and writes out only the values that fit (the rows past them come back empty, only to
/// say that there is more).
pub async fn get_all(
    pool: &PgPool,
    scope: &Scope,
    page: &Page<'_>,
) -> Result<(Vec<Entry>, String)> {
    let after = if page.token.is_empty() {
        String::new()
    } else {
        hex::decode(page.token)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|key| input::key("page.page_token", &key).ok())
            .ok_or_else(|| MemoryError::from(BadPage::token()))?
    };
    let rows: Vec<Paged> = sqlx::query_as(concat!(
        "
        SELECT fits, key, CASE WHEN fits THEN value::text ELSE '' END AS value, version,
               revision, created_at, updated_at, expires_at
        FROM (
            SELECT *, row_number() OVER running <= $5
                      AND (row_number() OVER running = 1
                           OR sum(value_bytes + octet_length(key) + $7) OVER running <= $6)
                      AS fits
            FROM memory.entries
            WHERE tenant_id = $1 AND session_id = $2 AND key > $3 AND starts_with(key, $4) AND ",
        live!(),
        "
            WINDOW running AS (ORDER BY key ROWS UNBOUNDED PRECEDING)
            ORDER BY key LIMIT $5 + 1
        ) page
        ORDER BY key"
    ))
    .bind(scope.tenant)
    .bind(&scope.session)
    .bind(&after)
    .bind(page.key_prefix)
    .bind(page.size)
    .bind(i64::try_from(page.max_bytes).unwrap_or(i64::MAX))
    .bind(ENTRY_OVERHEAD_BYTES)
    .fetch_all(pool)
    .await?;
    if rows.is_empty() && !crate::sessions::exists(pool, scope).await? {
        return Err(MemoryError::NotFound("session"));
    }
    let found = rows.len();
    // The rows that fit come first: the first always does, and the sum only grows.
    let entries: Vec<Entry> = rows
        .into_iter()
        .take_while(|row| row.fits)
        .map(|row| row.entry)
        .collect();
    let next = if entries.len() < found {
        entries
            .last()
            .map(|entry| hex::encode(&entry.key))
            .unwrap_or_default()
    } else {
        String::new()
    };
    Ok((entries, next))
}

/// Deletes a key, if its version is `expected` when that is given. True when a live entry was
/// deleted; NOT_FOUND when the tenant has no such session.
#[tracing::instrument(skip_all, fields(tenant = %scope.tenant, session = %scope.session))]
pub async fn delete(
    state: &State,
    scope: &Scope,
    key: &str,
    expected: Option<i64>,
) -> Result<bool> {
    let mut tx = state.pool.begin().await?;
    // Deleting an expired row reports nothing deleted, as the entry was already absent, but
    // removes it all the same. The session's `updated_at` records the delete, as no entry will.
    let deleted: Option<(i64, bool)> = sqlx::query_as(concat!(
        "
        WITH deleted AS (
            DELETE FROM memory.entries
            WHERE tenant_id = $1 AND session_id = $2 AND key = $3
              AND ($4::bigint IS NULL OR (version = $4 AND ",
        live!(),
        "))
            RETURNING nextval('memory.revisions') AS revision, ",
        live!(),
        " AS live
        ), touched AS (
            UPDATE memory.sessions SET updated_at = now()
            WHERE tenant_id = $1 AND id = $2 AND EXISTS (SELECT 1 FROM deleted WHERE live)
        )
        SELECT revision, live FROM deleted"
    ))
    .bind(scope.tenant)
    .bind(&scope.session)
    .bind(key)
    .bind(expected)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((revision, live)) = deleted else {
        // Nothing to keep; ending it first frees the connection for the reads.
        tx.rollback().await?;
        // A session the tenant does not have (another tenant's included) is not found, as
        // for every other operation on it; an absent key of one it has is "not deleted".
        if !crate::sessions::exists(&state.pool, scope).await? {
            return Err(MemoryError::NotFound("session"));
        }
        let Some(expected) = expected else {
            return Ok(false);
        };
        let current = current_version(&state.pool, scope, key).await?;
        return match (expected, current) {
            (0, 0) => Ok(false),
            // It changed and came back to that version between the two statements.
            (expected, current) if expected == current => Err(MemoryError::Contended(
                "the key changed while being deleted; retry",
            )),
            (_, current) => Err(conflict(current)),
        };
    };
    if live {
        state
            .events
            .enqueue(
                &mut tx,
                scope.tenant,
                &scope.session,
                Action::Deleted,
                json!({ "session_id": scope.session, "keys": [key] }),
            )
            .await?;
    }
    tx.commit().await?;
    state.events.wake();
    state
        .cache
        .offer(
            scope.tenant,
            &scope.session,
            &[Change::Removed { key, revision }],
        )
        .await;
    Ok(live)
}

/// How many expired entries one sweep statement deletes, so it never holds many locks long.
const SWEEP_BATCH: u64 = 1000;

/// Deletes expired entries every `every` until `stop`. This is housekeeping over every tenant
/// at once, the one query here without a tenant: it reads nothing out, and an expired entry is
/// already invisible to every read.
///
/// Deleting entries updates their sessions' key counts (see the migration that keeps them), so
/// the sweep takes a session's lock before any of its entries', the order every other
/// session-wide write takes them in, and skips whatever another write holds rather than wait:
/// it can never deadlock with a write, and what it skipped goes in a later round.
pub async fn sweep_expired(pool: PgPool, every: Duration, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        loop {
            let swept = sqlx::query(
                "
                WITH expiring AS (
                    SELECT DISTINCT tenant_id, session_id FROM (
                        SELECT tenant_id, session_id FROM memory.entries
                        WHERE expires_at <= now()
                        LIMIT 1000
                    ) due
                ), locked AS (
                    SELECT s.tenant_id, s.id FROM memory.sessions s
                    JOIN expiring x ON s.tenant_id = x.tenant_id AND s.id = x.session_id
                    ORDER BY s.tenant_id, s.id
                    FOR NO KEY UPDATE OF s SKIP LOCKED
                ), doomed AS (
                    SELECT e.tenant_id, e.session_id, e.key FROM memory.entries e
                    JOIN locked l ON e.tenant_id = l.tenant_id AND e.session_id = l.id
                    WHERE e.expires_at <= now()
                    LIMIT 1000
                    FOR UPDATE OF e SKIP LOCKED
                )
                DELETE FROM memory.entries e USING doomed d
                WHERE e.tenant_id = d.tenant_id AND e.session_id = d.session_id
                  AND e.key = d.key AND e.expires_at <= now()",
            )
            .execute(&pool)
            .await;
            match swept {
                Ok(done) if done.rows_affected() == SWEEP_BATCH && !stop.is_cancelled() => {}
                Ok(done) => {
                    if done.rows_affected() > 0 {
                        tracing::debug!(swept = done.rows_affected(), "deleted expired entries");
                    }
                    break;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "could not delete expired entries");
                    break;
                }
            }
        }
    }
}
