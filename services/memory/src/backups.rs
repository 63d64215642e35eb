//! Backups: a session snapshotted into the object store as one JSON document, recorded with its
//! SHA-256, and restored from there into the same session or another one.
//!
//! Both are bounded by bytes (`SANKALPA_MEMORY_MAX_BACKUP_BYTES`), as the document is built and
//! read whole in memory: a session larger than that is not backed up, and a backup larger than
//! that (made under a larger bound) is not restored; both are FAILED_PRECONDITION saying the
//! sizes. The document is written as the session's rows arrive, values copied as the text they
//! are, and read back without building a tree of each value, so it is in memory about once.
//!
//! A restore reads and verifies the whole document before it touches the session: a document
//! that is missing, of the wrong size or checksum, or not a backup of this tenant is DATA_LOSS
//! and changes nothing. The restore itself is one Postgres transaction that replaces the target
//! session's entries; each restored key gets the version after the one it had in the target (1
//! when it had none), so a compare-and-set made against the replaced state cannot succeed.

use std::borrow::Cow;
use std::collections::HashMap;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use sankalpa_kit::paging::{self, BadPage};
use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use crate::State;
use crate::cache::Change;
use crate::entry::{Entry, Scope, live};
use crate::error::{MemoryError, Result};
use crate::events::Action;
use crate::sessions;

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

/// The fields of the stored document before its entries, as a backup writes them.
#[derive(Serialize)]
struct Header {
    format: String,
    backup_id: Uuid,
    tenant_id: Uuid,
    session_id: String,
    created_at: DateTime<Utc>,
}

/// The stored document as it is read back, borrowing its keys and values from the bytes read.
#[derive(Deserialize)]
struct Document<'a> {
    format: String,
    backup_id: Uuid,
    tenant_id: Uuid,
    #[serde(borrow)]
    entries: Vec<DocumentEntry<'a>>,
}

#[derive(Serialize, Deserialize)]
struct DocumentEntry<'a> {
    #[serde(borrow)]
    key: Cow<'a, str>,
    /// The value's JSON text as it is, never parsed into a tree.
    #[serde(borrow)]
    value: &'a RawValue,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
}

/// The fewest bytes an entry adds to a document besides its key and value (its field names,
/// version and times): the session's rows are measured with it as they are read, to stop at
/// the first row that cannot fit before the document is built.
const DOCUMENT_ENTRY_MIN_BYTES: i64 = 100;

/// A document being written, entry by entry.
struct DocumentWriter {
    bytes: Vec<u8>,
    entries: i64,
}

impl DocumentWriter {
    fn new(header: &Header) -> Result<Self> {
        let mut bytes = serde_json::to_vec(header).map_err(anyhow::Error::new)?;
        // The entries go into the header's object, before its closing brace.
        if bytes.pop() != Some(b'}') {
            return Err(anyhow::anyhow!("a backup header is not a JSON object").into());
        }
        bytes.extend_from_slice(br#","entries":["#);
        Ok(Self { bytes, entries: 0 })
    }

    fn push(&mut self, entry: &DocumentEntry<'_>) -> Result<()> {
        if self.entries > 0 {
            self.bytes.push(b',');
        }
        serde_json::to_writer(&mut self.bytes, entry).map_err(anyhow::Error::new)?;
        self.entries += 1;
        Ok(())
    }

    fn len(&self) -> usize {
        self.bytes.len()
    }

    fn finish(mut self) -> (Vec<u8>, i64) {
        self.bytes.extend_from_slice(b"]}");
        (self.bytes, self.entries)
    }
}

/// A live entry of the session, with the running total of the bytes it and the entries before
/// it take in a document, at least.
#[derive(sqlx::FromRow)]
struct Measured {
    through: i64,
    #[sqlx(flatten)]
    entry: Entry,
}

macro_rules! backup_columns {
    () => {
        "id, tenant_id, session_id, label, object_key, entry_count, size_bytes, sha256, \
         created_by, created_at"
    };
}

#[tracing::instrument(skip_all, fields(tenant = %scope.tenant, session = %scope.session))]
pub async fn backup(state: &State, scope: &Scope, label: &str, created_by: &str) -> Result<Backup> {
    let max_bytes = state.max_backup_bytes;
    let id = Uuid::now_v7();
    let mut document = DocumentWriter::new(&Header {
        format: FORMAT.to_owned(),
        backup_id: id,
        tenant_id: scope.tenant,
        session_id: scope.session.clone(),
        created_at: Utc::now(),
    })?;
    // One statement reads one snapshot: the document is the session at one instant. Rows come
    // while the ones before them fit, so a session far over the bound costs no more than one
    // at it; the first row past it says the session does not fit.
    let mut rows = sqlx::query_as::<_, Measured>(concat!(
        "
        SELECT through::bigint AS through, key, value::text AS value, version, revision,
               created_at, updated_at, expires_at
        FROM (
            SELECT *, sum(value_bytes + octet_length(key) + $3)
                          OVER (ORDER BY key ROWS UNBOUNDED PRECEDING) AS through
            FROM memory.entries
            WHERE tenant_id = $1 AND session_id = $2 AND ",
        live!(),
        "
        ) measured
        WHERE through - (value_bytes + octet_length(key) + $3) <= $4
        ORDER BY key"
    ))
    .bind(scope.tenant)
    .bind(&scope.session)
    .bind(DOCUMENT_ENTRY_MIN_BYTES)
    .bind(i64::try_from(max_bytes).unwrap_or(i64::MAX))
    .fetch(&state.pool);
    while let Some(row) = rows.try_next().await? {
        let fits = usize::try_from(row.through).is_ok_and(|through| through <= max_bytes);
        if fits {
            let entry = row.entry;
            let value = serde_json::from_str(&entry.value)
                .map_err(|err| anyhow::anyhow!("a stored value is not JSON: {err}"))?;
            document.push(&DocumentEntry {
                key: Cow::Borrowed(&entry.key),
                value,
                version: entry.version,
                created_at: entry.created_at,
                updated_at: entry.updated_at,
                expires_at: entry.expires_at,
            })?;
        }
        // The measure in SQL is a floor; the document's own length is the truth.
        if !fits || document.len() > max_bytes {
            drop(rows);
            return Err(too_large_to_back_up(state, scope).await);
        }
    }
    drop(rows);
    if document.entries == 0 && !sessions::exists(&state.pool, scope).await? {
        return Err(MemoryError::NotFound("session"));
    }
    let (bytes, entry_count) = document.finish();
    if bytes.len() > max_bytes {
        return Err(too_large_to_back_up(state, scope).await);
    }
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
    .bind(entry_count)
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

/// The refusal of a backup of a session over the bound, saying how large the session is.
async fn too_large_to_back_up(state: &State, scope: &Scope) -> MemoryError {
    let measured: std::result::Result<(i64, i64), sqlx::Error> = sqlx::query_as(concat!(
        "SELECT count(*), COALESCE(sum(value_bytes + octet_length(key)), 0)::bigint
         FROM memory.entries WHERE tenant_id = $1 AND session_id = $2 AND ",
        live!()
    ))
    .bind(scope.tenant)
    .bind(&scope.session)
    .fetch_one(&state.pool)
    .await;
    let size = match measured {
        Ok((entries, bytes)) => format!("holds {entries} entries of {bytes} bytes"),
        Err(_) => "is larger than that".to_owned(),
    };
    MemoryError::Precondition(format!(
        "session {} is too large to back up: a backup holds at most {} bytes, and the session \
         {size}; delete entries or split the session",
        scope.session, state.max_backup_bytes
    ))
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
        Some(Uuid::parse_str(page_token).map_err(|_| MemoryError::from(BadPage::token()))?)
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
    let next = paging::next_token(&mut backups, size, |backup| backup.id.to_string());
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
    if usize::try_from(backup.size_bytes).unwrap_or(usize::MAX) > state.max_backup_bytes {
        return Err(MemoryError::Precondition(format!(
            "backup {} is {} bytes, more than the {} bytes a restore reads; nothing was restored",
            backup.id, backup.size_bytes, state.max_backup_bytes
        )));
    }
    let bytes = read_verified(state, &backup).await?;
    let document = parse(&bytes, &backup)?;

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
    // In statements of a few MiB each: every statement copies its values once more, so one
    // for the whole document would hold it in memory several times over.
    let mut restored: u64 = 0;
    for chunk in chunks_of(&entries, RESTORE_STATEMENT_BYTES) {
        let keys: Vec<&str> = chunk.iter().map(|entry| entry.key.as_ref()).collect();
        let values: Vec<&str> = chunk.iter().map(|entry| entry.value.get()).collect();
        let versions: Vec<i64> = keys
            .iter()
            .map(|key| replaced.get(key).copied().unwrap_or(0) + 1)
            .collect();
        let created: Vec<DateTime<Utc>> = chunk.iter().map(|entry| entry.created_at).collect();
        let expires: Vec<Option<DateTime<Utc>>> =
            chunk.iter().map(|entry| entry.expires_at).collect();
        restored += sqlx::query(
            "
            INSERT INTO memory.entries
                (tenant_id, session_id, key, value, version, revision, created_at, expires_at)
            SELECT $1, $2, e.key, e.value::jsonb, e.version, nextval('memory.revisions'),
                   e.created_at, e.expires_at
            FROM UNNEST($3::text[], $4::text[], $5::bigint[], $6::timestamptz[],
                        $7::timestamptz[])
                AS e (key, value, version, created_at, expires_at)",
        )
        .bind(scope.tenant)
        .bind(&scope.session)
        .bind(&keys)
        .bind(&values)
        .bind(&versions)
        .bind(&created)
        .bind(&expires)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }
    sqlx::query("UPDATE memory.sessions SET updated_at = now() WHERE tenant_id = $1 AND id = $2")
        .bind(scope.tenant)
        .bind(&scope.session)
        .execute(&mut *tx)
        .await?;
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

    // Only the replaced keys are offered, as removed: their revisions are older than the
    // restored entries', so the cache drops what it held and the next load reads the restored
    // value from Postgres. A restored key the session did not hold has nothing cached to drop.
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
    let session = sessions::get(&state.pool, &scope).await?;
    Ok((session, restored))
}

/// The most bytes of values one statement of a restore writes, unless one value is larger.
const RESTORE_STATEMENT_BYTES: usize = 4 * 1024 * 1024;

/// `entries` in consecutive runs of at most `max_bytes` of values, each at least one entry.
fn chunks_of<'e, 'a>(
    entries: &'e [DocumentEntry<'a>],
    max_bytes: usize,
) -> impl Iterator<Item = &'e [DocumentEntry<'a>]> {
    let mut rest = entries;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut bytes = 0;
        let end = rest
            .iter()
            .position(|entry| {
                bytes += entry.value.get().len();
                bytes > max_bytes
            })
            .map_or(rest.len(), |over| over.max(1));
        let (chunk, after) = rest.split_at(end);
        rest = after;
        Some(chunk)
    })
}

/// The bytes of the backup's document, if they are exactly what was stored.
async fn read_verified(state: &State, backup: &Backup) -> Result<Bytes> {
    let bytes = state
        .objects
        .get(&backup.object_key)
        .await
        .map_err(MemoryError::object_store)?
        .ok_or_else(|| {
            MemoryError::DataLoss(format!("the document of backup {} is missing", backup.id))
        })?;
    if i64::try_from(bytes.len()).ok() != Some(backup.size_bytes)
        || hex::encode(Sha256::digest(&bytes)) != backup.sha256
    {
        return Err(damaged(backup));
    }
    Ok(bytes)
}

/// The document in `bytes`, if it is a backup of this tenant under this id.
fn parse<'a>(bytes: &'a [u8], backup: &Backup) -> Result<Document<'a>> {
    let document: Document = serde_json::from_slice(bytes).map_err(|_| damaged(backup))?;
    if document.format != FORMAT
        || document.backup_id != backup.id
        || document.tenant_id != backup.tenant_id
    {
        return Err(damaged(backup));
    }
    Ok(document)
}

fn damaged(backup: &Backup) -> MemoryError {
    MemoryError::DataLoss(format!(
        "the document of backup {} is damaged (it does not match its checksum); nothing was \
         restored",
        backup.id
    ))
}
