//! Group commit of unconditional saves (the kit's [`group_commit`]): the saves of concurrent
//! requests written by one statement, in one transaction, each with its own entry, version and
//! event.
//!
//! A batch holds each key once: two saves of one key in one upsert would be an error, so the
//! later one waits for a later batch. Saves of one key that were in flight together have no
//! order to keep (each still adds one to the version it finds, under the row's lock); a caller
//! that waits for its save before the next gets them in its order.

use std::sync::Arc;

use sankalpa_kit::group_commit::{self, Batch, GroupCommit};
use sankalpa_kit::outbox::OutboxRow;
use sqlx::PgPool;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::cache::{Change, EntryCache};
use crate::entry::{Entry, entry_columns, upsert_existing};
use crate::error::{MemoryError, Result};
use crate::events::Events;

/// Saves per statement at most (a batch's arrays stay small next to the 1 MiB a value may be),
/// and batches in flight at once.
pub(crate) const LIMITS: group_commit::Limits = group_commit::Limits {
    max_batch: 64,
    writers: 4,
};

/// Writes the batch and queues each save's event with the version its write gave, like the
/// statements of `entries::save`: sessions are created as needed, then the entries, then the
/// events, all committed or none. `n` keeps each row with its request. Rows are locked in key
/// order, so batches in flight together that share keys cannot deadlock.
const WRITE_BATCH: &str = concat!(
    "
    WITH input AS (
        SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
                             $6::bigint[], $7::text[], $8::text[])
            WITH ORDINALITY AS i (tenant_id, session_id, user_id, key, value, ttl_seconds,
                                  event, headers, n)
    ), session AS (
        INSERT INTO memory.sessions (tenant_id, id, user_id)
        SELECT DISTINCT ON (tenant_id, session_id) tenant_id, session_id, user_id
        FROM input ORDER BY tenant_id, session_id, n
        ON CONFLICT (tenant_id, id) DO NOTHING
    ), written AS (
        INSERT INTO memory.entries AS e
            (tenant_id, session_id, key, value, version, revision, expires_at)
        SELECT tenant_id, session_id, key, value::jsonb, 1, nextval('memory.revisions'),
            CASE WHEN ttl_seconds > 0 THEN now() + ttl_seconds * interval '1 second' END
        FROM input ORDER BY tenant_id, session_id, key",
    upsert_existing!(),
    "
        RETURNING tenant_id, session_id, ",
    entry_columns!(),
    "
    ), queued AS (
        INSERT INTO memory.outbox (event, headers)
        SELECT jsonb_set(i.event::jsonb, '{data,keys,0,version}', to_jsonb(w.version)),
               i.headers::jsonb
        FROM written w JOIN input i USING (tenant_id, session_id, key)
        ORDER BY i.n
    )
    SELECT i.n, w.key, w.value, w.version, w.revision, w.created_at, w.updated_at, w.expires_at
    FROM written w JOIN input i USING (tenant_id, session_id, key)"
);

/// One save waiting to be written.
pub struct Pending {
    pub tenant: Uuid,
    pub session: String,
    pub user_id: String,
    pub key: String,
    /// JSON text.
    pub value: String,
    pub ttl_seconds: i64,
    /// Its `saved` event, built in the request so it carries the request's trace context.
    pub event: OutboxRow,
}

/// The saves' queue. Cloning shares it.
pub type Saves = GroupCommit<SaveBatch>;

/// What a batch of saves is written with.
pub struct SaveBatch {
    pool: PgPool,
    cache: Arc<EntryCache>,
    events: Events,
}

/// The queue of saves, written with `pool`, offered to `cache` and announced by `events`.
pub fn saves(pool: PgPool, cache: Arc<EntryCache>, events: Events, writers: TaskTracker) -> Saves {
    GroupCommit::new(
        SaveBatch {
            pool,
            cache,
            events,
        },
        LIMITS,
        writers,
    )
}

impl Batch for SaveBatch {
    type Write = Pending;
    type Written = Entry;
    type Error = MemoryError;
    type Key = (Uuid, String, String);

    fn key(save: &Pending) -> Self::Key {
        (save.tenant, save.session.clone(), save.key.clone())
    }

    /// Writes the saves and offers their entries to the cache.
    async fn write(&self, saves: &[&Pending]) -> Result<Vec<Entry>> {
        let entries = write_batch(&self.pool, saves).await?;
        self.events.wake();
        let offers = saves.iter().zip(&entries).map(|(save, entry)| async move {
            self.cache
                .offer(save.tenant, &save.session, &[Change::Written(entry)])
                .await;
        });
        futures::future::join_all(offers).await;
        Ok(entries)
    }

    fn writer_lost() -> MemoryError {
        MemoryError::Internal(anyhow::anyhow!("the writer of a save batch failed"))
    }
}

/// Writes `saves` in one statement; their entries, in the same order.
async fn write_batch(pool: &PgPool, saves: &[&Pending]) -> Result<Vec<Entry>> {
    let text =
        |field: fn(&Pending) -> &str| saves.iter().map(|save| field(save)).collect::<Vec<_>>();
    let json = |field: fn(&OutboxRow) -> serde_json::Result<String>| {
        saves
            .iter()
            .map(|save| field(&save.event))
            .collect::<serde_json::Result<Vec<_>>>()
            .map_err(anyhow::Error::from)
    };
    let rows: Vec<Numbered> = sqlx::query_as(WRITE_BATCH)
        .bind(saves.iter().map(|save| save.tenant).collect::<Vec<_>>())
        .bind(text(|save| &save.session))
        .bind(text(|save| &save.user_id))
        .bind(text(|save| &save.key))
        .bind(text(|save| &save.value))
        .bind(
            saves
                .iter()
                .map(|save| save.ttl_seconds)
                .collect::<Vec<_>>(),
        )
        .bind(json(|row| serde_json::to_string(&row.event))?)
        .bind(json(|row| serde_json::to_string(&row.headers))?)
        .fetch_all(pool)
        .await
        .map_err(|err| MemoryError::of_value_write(err, "value_json"))?;
    let mut entries: Vec<Option<Entry>> = (0..saves.len()).map(|_| None).collect();
    for Numbered { n, entry } in rows {
        let slot = usize::try_from(n - 1)
            .ok()
            .and_then(|index| entries.get_mut(index))
            .ok_or_else(|| anyhow::anyhow!("a save batch answered row {n} of {}", saves.len()))?;
        *slot = Some(entry);
    }
    entries
        .into_iter()
        .map(|entry| {
            entry.ok_or_else(|| {
                MemoryError::Internal(anyhow::anyhow!("a save batch did not answer every save"))
            })
        })
        .collect()
}

#[derive(sqlx::FromRow)]
struct Numbered {
    n: i64,
    #[sqlx(flatten)]
    entry: Entry,
}
