//! Sessions: a tenant's named containers of entries, created by their first write, listed
//! newest first, and deleted with everything in them (but not their backups).

use chrono::{DateTime, Utc};
use sankalpa_kit::paging::{self, BadPage};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::State;
use crate::cache::Change;
use crate::entry::{Scope, live};
use crate::error::{MemoryError, Result};
use crate::events::Action;

#[derive(Debug, sqlx::FromRow)]
pub struct Session {
    pub id: String,
    pub tenant_id: Uuid,
    pub user_id: String,
    /// Live entries.
    pub entry_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Sessions with their live entry count and last write (the later of the session's own
/// `updated_at` and its newest entry's).
macro_rules! select_sessions {
    () => {
        concat!(
            "
            SELECT s.id, s.tenant_id, s.user_id, s.created_at,
                   COALESCE(e.entry_count, 0) AS entry_count,
                   GREATEST(s.updated_at, e.newest) AS updated_at
            FROM memory.sessions s
            LEFT JOIN LATERAL (
                SELECT count(*) AS entry_count, max(updated_at) AS newest
                FROM memory.entries
                WHERE tenant_id = s.tenant_id AND session_id = s.id AND ",
            live!(),
            "
            ) e ON true"
        )
    };
}

pub async fn exists(pool: &PgPool, scope: &Scope) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM memory.sessions WHERE tenant_id = $1 AND id = $2)",
    )
    .bind(scope.tenant)
    .bind(&scope.session)
    .fetch_one(pool)
    .await?)
}

pub async fn get(pool: &PgPool, scope: &Scope) -> Result<Session> {
    let session: Option<Session> = sqlx::query_as(concat!(
        select_sessions!(),
        " WHERE s.tenant_id = $1 AND s.id = $2"
    ))
    .bind(scope.tenant)
    .bind(&scope.session)
    .fetch_optional(pool)
    .await?;
    session.ok_or(MemoryError::NotFound("session"))
}

/// Creates the session unless it exists, and locks it until the transaction ends: writes that
/// create entries in it wait (their foreign-key check needs a share lock on it), so what the
/// transaction reads of the session stays true until it commits.
pub async fn create_and_lock(conn: &mut PgConnection, scope: &Scope, user_id: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO memory.sessions (tenant_id, id, user_id) VALUES ($1, $2, $3)
         ON CONFLICT (tenant_id, id) DO NOTHING",
    )
    .bind(scope.tenant)
    .bind(&scope.session)
    .bind(user_id)
    .execute(&mut *conn)
    .await?;
    if lock(conn, scope).await? {
        Ok(())
    } else {
        // Deleted between the two statements.
        Err(MemoryError::Contended(
            "the session was deleted meanwhile; retry",
        ))
    }
}

/// Locks the session as `create_and_lock` does; false when there is no such session.
pub async fn lock(conn: &mut PgConnection, scope: &Scope) -> Result<bool> {
    let found: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM memory.sessions WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
    )
    .bind(scope.tenant)
    .bind(&scope.session)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(found.is_some())
}

/// A key removed by a session-wide change, with what the cache and the new versions need.
#[derive(sqlx::FromRow)]
pub struct Removed {
    pub key: String,
    pub version: i64,
    pub revision: i64,
    /// False for an entry that had already expired.
    pub live: bool,
}

/// Deletes every entry of a locked session.
pub async fn clear(conn: &mut PgConnection, scope: &Scope) -> Result<Vec<Removed>> {
    Ok(sqlx::query_as(concat!(
        "DELETE FROM memory.entries WHERE tenant_id = $1 AND session_id = $2
         RETURNING key, version, nextval('memory.revisions') AS revision, ",
        live!(),
        " AS live"
    ))
    .bind(scope.tenant)
    .bind(&scope.session)
    .fetch_all(&mut *conn)
    .await?)
}

/// A page of the tenant's sessions whose id starts with `id_prefix`, newest first, and the
/// token of the next page.
pub async fn list(
    pool: &PgPool,
    tenant: Uuid,
    id_prefix: &str,
    size: i64,
    page_token: &str,
) -> Result<(Vec<Session>, String)> {
    let (after_time, after_id) = if page_token.is_empty() {
        (None, String::new())
    } else {
        let (micros, id) = page_token
            .split_once('.')
            .ok_or_else(|| MemoryError::from(BadPage::token()))?;
        let at = micros
            .parse()
            .ok()
            .and_then(DateTime::<Utc>::from_timestamp_micros)
            .ok_or_else(|| MemoryError::from(BadPage::token()))?;
        (Some(at), id.to_owned())
    };
    let mut sessions: Vec<Session> = sqlx::query_as(concat!(
        select_sessions!(),
        "
        WHERE s.tenant_id = $1
          AND ($2::timestamptz IS NULL OR (s.created_at, s.id) < ($2, $3))
          AND starts_with(s.id, $5)
        ORDER BY s.created_at DESC, s.id DESC
        LIMIT $4"
    ))
    .bind(tenant)
    .bind(after_time)
    .bind(&after_id)
    .bind(size + 1)
    .bind(id_prefix)
    .fetch_all(pool)
    .await?;
    // Session ids never hold '.', so it separates the two parts of the token.
    let next = paging::next_token(&mut sessions, size, |session| {
        format!("{}.{}", session.created_at.timestamp_micros(), session.id)
    });
    Ok((sessions, next))
}

/// Deletes a session and its entries; the number of live entries it held.
#[tracing::instrument(skip_all, fields(tenant = %scope.tenant, session = %scope.session))]
pub async fn delete(state: &State, scope: &Scope) -> Result<u64> {
    let mut tx = state.pool.begin().await?;
    if !lock(&mut tx, scope).await? {
        return Err(MemoryError::NotFound("session"));
    }
    let removed = clear(&mut tx, scope).await?;
    sqlx::query("DELETE FROM memory.sessions WHERE tenant_id = $1 AND id = $2")
        .bind(scope.tenant)
        .bind(&scope.session)
        .execute(&mut *tx)
        .await?;
    let deleted = removed.iter().filter(|removed| removed.live).count() as u64;
    state
        .events
        .enqueue(
            &mut tx,
            scope.tenant,
            &scope.session,
            Action::Deleted,
            json!({
                "session_id": scope.session,
                "session_deleted": true,
                "deleted_entries": deleted,
            }),
        )
        .await?;
    tx.commit().await?;
    state.events.wake();

    let changes: Vec<Change> = removed
        .iter()
        .map(|removed| Change::Removed {
            key: &removed.key,
            revision: removed.revision,
        })
        .collect();
    state
        .cache
        .offer(scope.tenant, &scope.session, &changes)
        .await;
    Ok(deleted)
}
