//! Backups: a session snapshotted into the object store as one JSON document, recorded with its
//! SHA-256, and restored from there into the same session or another one.
//!
//! A restore reads and verifies the whole document before it touches the session: a document
//! that is missing, of the wrong size or checksum, or not a backup of this tenant is DATA_LOSS
//! and changes nothing. The restore itself is one Postgres transaction that replaces the target
//! session's entries; each restored key gets the version after the one it had in the target (1
//! when it had none), so a compare-and-set made against the replaced state cannot succeed.

use std::collections::HashMap;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use crate::State;
use crate::cache::Change;
use crate::entries::{Entry, Scope, entry_columns, live};
use crate::error::{MemoryError, Result};
use crate::events::Action;
use crate::{input, sessions};

const FORMAT: &str = "sankalpa.memory.backup/1";

#[derive(Debug, sqlx::FromRow)]
pub struct Backup {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub session_id: String,
    pub label: String,
    pub object_key: String,
    pub entry_count: i64,
    pub size_bytes: i64,
    pub sha256: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// The stored document.
#[derive(Serialize, Deserialize)]
struct Document {
    format: String,
    backup_id: Uuid,
    tenant_id: Uuid,
    session_id: String,
    created_at: DateTime<Utc>,
    entries: Vec<DocumentEntry>,
}

#[derive(Serialize, Deserialize)]
struct DocumentEntry {
    key: String,
    value: serde_json::Value,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
}

macro_rules! backup_columns {
    () => {
        "id, tenant_id, session_id, label, object_key, entry_count, size_bytes, sha256, \
         created_by, created_at"
    };
}

#[tracing::instrument(skip_all, fields(tenant = %scope.tenant, session = %scope.session))]
pub async fn backup(state: &State, scope: &Scope, label: &str, created_by: &str) -> Result<Backup> {
    // One statement reads one snapshot: the document is the session at one instant.
    let entries: Vec<Entry> = sqlx::query_as(concat!(
        "SELECT ",
        entry_columns!(),
        " FROM memory.entries WHERE tenant_id = $1 AND session_id = $2 AND ",
        live!(),
        " ORDER BY key"
    ))
    .bind(scope.tenant)
    .bind(&scope.session)
    .fetch_all(&state.pool)
    .await?;
    if entries.is_empty() && !sessions::exists(&state.pool, scope).await? {
        return Err(MemoryError::NotFound("session"));
    }
    let id = Uuid::now_v7();
    let document = Document {
        format: FORMAT.to_owned(),
        backup_id: id,
        tenant_id: scope.tenant,
        session_id: scope.session.clone(),
        created_at: Utc::now(),
        entries: entries
            .into_iter()
            .map(|entry| {
                Ok(DocumentEntry {
                    value: serde_json::from_str(&entry.value)
                        .map_err(|err| anyhow::anyhow!("a stored value is not JSON: {err}"))?,
                    key: entry.key,
                    version: entry.version,
                    created_at: entry.created_at,
                    updated_at: entry.updated_at,
                    expires_at: entry.expires_at,
                })
            })
            .collect::<anyhow::Result<_>>()?,
    };
    let bytes = serde_json::to_vec(&document).map_err(anyhow::Error::new)?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let object_key = format!("{}/backups/{id}.json", scope.tenant);
    let size = bytes.len();
    state
        .objects
        .put(&object_key, Bytes::from(bytes))
        .await
        .map_err(MemoryError::object_store)?;

    let recorded = sqlx::query_as(concat!(
        "INSERT INTO memory.backups
             (id, tenant_id, session_id, label, object_key, entry_count, size_bytes, sha256,
              created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         RETURNING ",
        backup_columns!()
    ))
    .bind(id)
    .bind(scope.tenant)
    .bind(&scope.session)
    .bind(label)
    .bind(&object_key)
    .bind(document.entries.len() as i64)
    .bind(size as i64)
    .bind(&sha256)
    .bind(created_by)
    .fetch_one(&state.pool)
    .await;
    match recorded {
        Ok(backup) => Ok(backup),
        Err(err) => {
            // An unrecorded document is unreachable: remove it rather than leak it.
            if let Err(cleanup) = state.objects.delete(&object_key).await {
                tracing::warn!(
                    error = format!("{cleanup:#}"),
                    object_key,
                    "could not remove the document of a backup that was not recorded"
                );
            }
            Err(err.into())
        }
    }
}

/// A page of the tenant's backups (of one session, when given), newest first.
pub async fn list(
    pool: &PgPool,
    tenant: Uuid,
    session: Option<&str>,
    size: i64,
    page_token: &str,
) -> Result<(Vec<Backup>, String)> {
    let after = if page_token.is_empty() {
        None
    } else {
        Some(Uuid::parse_str(page_token).map_err(|_| input::bad_page_token())?)
    };
    let mut backups: Vec<Backup> = sqlx::query_as(concat!(
        "SELECT ",
        backup_columns!(),
        " FROM memory.backups
          WHERE tenant_id = $1 AND ($2::text IS NULL OR session_id = $2)
            AND ($3::uuid IS NULL OR id < $3)
          ORDER BY id DESC LIMIT $4"
    ))
    .bind(tenant)
    .bind(session)
    .bind(after)
    .bind(size + 1)
    .fetch_all(pool)
    .await?;
    let next = input::next_page(&mut backups, size, |backup| backup.id.to_string());
    Ok((backups, next))
}

/// Replaces the entries of `target` (the backed-up session when `None`) with the backup's.
/// The session restored into and the number of entries restored.
#[tracing::instrument(skip_all, fields(%tenant, backup = %backup_id))]
pub async fn restore(
    state: &State,
    tenant: Uuid,
    backup_id: Uuid,
    target: Option<String>,
    user_id: &str,
) -> Result<(sessions::Session, u64)> {
    let backup: Option<Backup> = sqlx::query_as(concat!(
        "SELECT ",
        backup_columns!(),
        " FROM memory.backups WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant)
    .bind(backup_id)
    .fetch_optional(&state.pool)
    .await?;
    let backup = backup.ok_or(MemoryError::NotFound("backup"))?;
    let document = read_verified(state, &backup).await?;

    let scope = Scope {
        tenant,
        session: target.unwrap_or(backup.session_id),
    };
    let now = Utc::now();
    let entries: Vec<DocumentEntry> = document
        .entries
        .into_iter()
        .filter(|entry| entry.expires_at.is_none_or(|at| at > now))
        .collect();

    let mut tx = state.pool.begin().await?;
    sessions::create_and_lock(&mut tx, &scope, user_id).await?;
    let removed = sessions::clear(&mut tx, &scope).await?;
    let replaced: HashMap<&str, i64> = removed
        .iter()
        .filter(|removed| removed.live)
        .map(|removed| (removed.key.as_str(), removed.version))
        .collect();
    let keys: Vec<&str> = entries.iter().map(|entry| entry.key.as_str()).collect();
    let values: Vec<String> = entries
        .iter()
        .map(|entry| entry.value.to_string())
        .collect();
    let versions: Vec<i64> = keys
        .iter()
        .map(|key| replaced.get(key).copied().unwrap_or(0) + 1)
        .collect();
    let created: Vec<DateTime<Utc>> = entries.iter().map(|entry| entry.created_at).collect();
    let expires: Vec<Option<DateTime<Utc>>> =
        entries.iter().map(|entry| entry.expires_at).collect();
    let written: Vec<Entry> = sqlx::query_as(concat!(
        "
        INSERT INTO memory.entries
            (tenant_id, session_id, key, value, version, revision, created_at, expires_at)
        SELECT $1, $2, e.key, e.value::jsonb, e.version, nextval('memory.revisions'),
               e.created_at, e.expires_at
        FROM UNNEST($3::text[], $4::text[], $5::bigint[], $6::timestamptz[], $7::timestamptz[])
            AS e (key, value, version, created_at, expires_at)
        RETURNING ",
        entry_columns!()
    ))
    .bind(scope.tenant)
    .bind(&scope.session)
    .bind(&keys)
    .bind(&values)
    .bind(&versions)
    .bind(&created)
    .bind(&expires)
    .fetch_all(&mut *tx)
    .await?;
    sqlx::query("UPDATE memory.sessions SET updated_at = now() WHERE tenant_id = $1 AND id = $2")
        .bind(scope.tenant)
        .bind(&scope.session)
        .execute(&mut *tx)
        .await?;
    let restored = written.len() as u64;
    state
        .events
        .enqueue(
            &mut tx,
            scope.tenant,
            &scope.session,
            Action::Restored,
            json!({
                "session_id": scope.session,
                "backup_id": backup_id,
                "restored_entries": restored,
            }),
        )
        .await?;
    tx.commit().await?;
    state.events.wake();

    let mut changes: Vec<Change> = removed
        .iter()
        .map(|removed| Change::Removed {
            key: &removed.key,
            revision: removed.revision,
        })
        .collect();
    changes.extend(written.iter().map(Change::Written));
    state
        .cache
        .offer(scope.tenant, &scope.session, &changes)
        .await;
    let session = sessions::get(&state.pool, &scope).await?;
    Ok((session, restored))
}

/// The backup's document, if it is exactly what was stored.
async fn read_verified(state: &State, backup: &Backup) -> Result<Document> {
    let bytes = state
        .objects
        .get(&backup.object_key)
        .await
        .map_err(MemoryError::object_store)?
        .ok_or_else(|| {
            MemoryError::DataLoss(format!("the document of backup {} is missing", backup.id))
        })?;
    let damaged = || {
        MemoryError::DataLoss(format!(
            "the document of backup {} is damaged (it does not match its checksum); nothing \
             was restored",
            backup.id
        ))
    };
    if i64::try_from(bytes.len()).ok() != Some(backup.size_bytes)
        || hex::encode(Sha256::digest(&bytes)) != backup.sha256
    {
        return Err(damaged());
    }
    let document: Document = serde_json::from_slice(&bytes).map_err(|_| damaged())?;
    if document.format != FORMAT
        || document.backup_id != backup.id
        || document.tenant_id != backup.tenant_id
    {
        return Err(damaged());
    }
    Ok(document)
}
