//! Transactions: a batch of set, delete and check-version ops on one session, applied all or
//! not at all.
//!
//! The session row and every row of the keys named are locked first (keys in sorted order, so
//! two transactions cannot deadlock on each other's keys); while the session is locked no write
//! can create a key in it, so an absent key stays absent and every check stays true until the
//! commit. Checks see the session as it was before the transaction; the first that fails rolls
//! everything back and is reported. A transaction that sets keys creates its session; one that
//! only deletes and checks answers NOT_FOUND when the tenant has no such session.

use std::collections::{HashMap, HashSet};

use serde_json::json;

use crate::State;
use crate::cache::Change;
use crate::entry::{Entry, Scope, entry_columns, live, upsert_existing};
use crate::error::{MemoryError, Result};
use crate::events::Action;
use crate::sessions;

pub enum OpKind {
    Set { value: String, ttl_seconds: i64 },
    Delete,
    CheckVersion(i64),
}

pub struct Op {
    pub key: String,
    pub kind: OpKind,
}

pub enum Outcome {
    Committed {
        /// The entries set, in op order.
        written: Vec<Entry>,
        /// The keys whose live entries were deleted, in op order.
        deleted: Vec<String>,
    },
    Conflict {
        op_index: usize,
        key: String,
        expected: i64,
        current: i64,
    },
}

#[tracing::instrument(skip_all, fields(tenant = %scope.tenant, session = %scope.session))]
pub async fn transact(state: &State, scope: &Scope, user_id: &str, ops: &[Op]) -> Result<Outcome> {
    let mut set_keys = Vec::new();
    let mut set_values = Vec::new();
    let mut set_ttls = Vec::new();
    let mut delete_keys = Vec::new();
    for op in ops {
        match &op.kind {
            OpKind::Set { value, ttl_seconds } => {
                set_keys.push(op.key.as_str());
                set_values.push(value.as_str());
                set_ttls.push(*ttl_seconds);
            }
            OpKind::Delete => delete_keys.push(op.key.as_str()),
            OpKind::CheckVersion(_) => {}
        }
    }
    let mut named: Vec<&str> = ops.iter().map(|op| op.key.as_str()).collect();
    named.sort_unstable();
    named.dedup();

    let mut tx = state.pool.begin().await?;
    // A transaction that sets keys creates its session, as a save does; one that only deletes
    // and checks needs a session of the tenant's to act on (another tenant's is not found).
    if set_keys.is_empty() {
        if !sessions::lock(&mut tx, scope).await? {
            return Err(MemoryError::NotFound("session"));
        }
    } else {
        sessions::create_and_lock(&mut tx, scope, user_id).await?;
    }
    // Expired rows are locked too, so no save can bring one back to life meanwhile.
    let current: HashMap<String, i64> = {
        let rows: Vec<(String, i64, bool)> = sqlx::query_as(concat!(
            "SELECT key, version, ",
            live!(),
            " FROM memory.entries
              WHERE tenant_id = $1 AND session_id = $2 AND key = ANY($3)
              ORDER BY key FOR UPDATE"
        ))
        .bind(scope.tenant)
        .bind(&scope.session)
        .bind(&named)
        .fetch_all(&mut *tx)
        .await?;
        rows.into_iter()
            .filter(|(_, _, live)| *live)
            .map(|(key, version, _)| (key, version))
            .collect()
    };
    for (op_index, op) in ops.iter().enumerate() {
        if let OpKind::CheckVersion(expected) = op.kind {
            let found = current.get(&op.key).copied().unwrap_or(0);
            if found != expected {
                tx.rollback().await?;
                return Ok(Outcome::Conflict {
                    op_index,
                    key: op.key.clone(),
                    expected,
                    current: found,
                });
            }
        }
    }

    let removed: Vec<(String, i64, bool)> = if delete_keys.is_empty() {
        Vec::new()
    } else {
        sqlx::query_as(concat!(
            "DELETE FROM memory.entries
             WHERE tenant_id = $1 AND session_id = $2 AND key = ANY($3)
             RETURNING key, nextval('memory.revisions') AS revision, ",
            live!(),
            " AS live"
        ))
        .bind(scope.tenant)
        .bind(&scope.session)
        .bind(&delete_keys)
        .fetch_all(&mut *tx)
        .await?
    };
    let mut written: Vec<Entry> = if set_keys.is_empty() {
        Vec::new()
    } else {
        sqlx::query_as(concat!(
            "
            INSERT INTO memory.entries AS e
                (tenant_id, session_id, key, value, version, revision, expires_at)
            SELECT $1, $2, op.key, op.value::jsonb, 1, nextval('memory.revisions'),
                   CASE WHEN op.ttl > 0 THEN now() + op.ttl * interval '1 second' END
            FROM UNNEST($3::text[], $4::text[], $5::bigint[]) AS op (key, value, ttl)",
            upsert_existing!(),
            " RETURNING ",
            entry_columns!()
        ))
        .bind(scope.tenant)
        .bind(&scope.session)
        .bind(&set_keys)
        .bind(&set_values)
        .bind(&set_ttls)
        .fetch_all(&mut *tx)
        .await?
    };
    let any_deleted = removed.iter().any(|(_, _, live)| *live);
    if any_deleted {
        // The session's last write is a delete, which no entry records.
        sqlx::query(
            "UPDATE memory.sessions SET updated_at = now() WHERE tenant_id = $1 AND id = $2",
        )
        .bind(scope.tenant)
        .bind(&scope.session)
        .execute(&mut *tx)
        .await?;
    }

    // Back into op order: each key is set at most once.
    let position: HashMap<&str, usize> = set_keys
        .iter()
        .enumerate()
        .map(|(index, key)| (*key, index))
        .collect();
    written.sort_by_key(|entry| position.get(entry.key.as_str()).copied());
    let live_deleted: HashSet<&str> = removed
        .iter()
        .filter(|(_, _, live)| *live)
        .map(|(key, _, _)| key.as_str())
        .collect();
    let deleted: Vec<String> = delete_keys
        .iter()
        .filter(|key| live_deleted.contains(**key))
        .map(|key| (*key).to_owned())
        .collect();

    if !written.is_empty() {
        let keys: Vec<_> = written
            .iter()
            .map(|entry| json!({ "key": entry.key, "version": entry.version }))
            .collect();
        state
            .events
            .enqueue(
                &mut tx,
                scope.tenant,
                &scope.session,
                Action::Saved,
                json!({ "session_id": scope.session, "keys": keys }),
            )
            .await?;
    }
    if !deleted.is_empty() {
        state
            .events
            .enqueue(
                &mut tx,
                scope.tenant,
                &scope.session,
                Action::Deleted,
                json!({ "session_id": scope.session, "keys": deleted }),
            )
            .await?;
    }
    tx.commit().await?;
    state.events.wake();

    let mut changes: Vec<Change> = removed
        .iter()
        .map(|(key, revision, _)| Change::Removed {
            key,
            revision: *revision,
        })
        .collect();
    changes.extend(written.iter().map(Change::Written));
    state
        .cache
        .offer(scope.tenant, &scope.session, &changes)
        .await;
    Ok(Outcome::Committed { written, deleted })
}
