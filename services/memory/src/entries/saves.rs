//! Group commit of unconditional saves: the saves of concurrent requests written by one
//! statement, in one transaction.
//!
//! Under load most of a save's cost in Postgres is the statement around the row (parsing the
//! parameters, starting the executor for three inserts, the commit and its WAL flush), not the
//! row itself. So a save without a version to match joins a queue; whichever saves are waiting
//! when a writer takes its next batch are written together, each with its own entry, version
//! and event, and each caller is answered once the batch has committed. A lone save is written
//! at once, as a batch of one: nothing waits for company.
//!
//! A batch holds each key once: two saves of one key in one upsert would be an error, so the
//! later one waits for a later batch. Saves of one key that were in flight together have no
//! order to keep (each still adds one to the version it finds, under the row's lock); a caller
//! that waits for its save before the next gets them in its order. If a batch fails, its saves
//! are written one by one, so one unwritable value cannot fail the saves that came with it.
//! Writers are tasks of their own, on the service's tracker: a caller that goes away does not
//! cut the batch it leads, and shutdown waits for every batch in flight to commit and answer.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use sankalpa_kit::outbox::OutboxRow;
use sqlx::PgPool;
use tokio::sync::oneshot;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::cache::{Change, EntryCache};
use crate::entry::{Entry, entry_columns, upsert_existing};
use crate::error::{MemoryError, Result};
use crate::events::Events;

/// Saves per statement at most: a batch's arrays stay small next to the 1 MiB a value may be.
const MAX_BATCH: usize = 64;
/// Batches in flight at once. One would leave Postgres idle while its batch travels; a few keep
/// it busy, and every waiting save still joins the next one.
const WRITERS: usize = 4;

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

struct Waiting {
    save: Pending,
    reply: oneshot::Sender<Result<Entry>>,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Waiting>,
    writers: usize,
}

/// The queue of saves and what its writers write with. Cloning shares it.
#[derive(Clone)]
pub struct Saves {
    inner: Arc<Inner>,
}

struct Inner {
    queue: Mutex<Queue>,
    pool: PgPool,
    cache: Arc<EntryCache>,
    events: Events,
    writers: TaskTracker,
}

impl Saves {
    pub fn new(pool: PgPool, cache: Arc<EntryCache>, events: Events, writers: TaskTracker) -> Self {
        Self {
            inner: Arc::new(Inner {
                queue: Mutex::default(),
                pool,
                cache,
                events,
                writers,
            }),
        }
    }

    /// Writes `save` with the saves waiting beside it; the entry as written, once committed
    /// and offered to the cache.
    pub async fn save(&self, save: Pending) -> Result<Entry> {
        let (reply, written) = oneshot::channel();
        let start_writer = {
            let mut queue = self.queue();
            queue.waiting.push_back(Waiting { save, reply });
            let start = queue.writers < WRITERS;
            if start {
                queue.writers += 1;
            }
            start
        };
        if start_writer {
            self.inner.writers.spawn(self.clone().write_while_waiting());
        }
        written.await.map_err(|_| {
            MemoryError::Internal(anyhow::anyhow!("the writer of a save batch failed"))
        })?
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.inner
            .queue
            .lock()
            .expect("the save queue is never poisoned")
    }

    /// Writes batches until nothing waits, then retires.
    async fn write_while_waiting(self) {
        loop {
            let batch = {
                let mut queue = self.queue();
                let batch = take_batch(&mut queue.waiting);
                if batch.is_empty() {
                    queue.writers -= 1;
                    return;
                }
                batch
            };
            self.write(batch).await;
        }
    }

    async fn write(&self, batch: Vec<Waiting>) {
        let saves: Vec<&Pending> = batch.iter().map(|waiting| &waiting.save).collect();
        match write_batch(&self.inner.pool, &saves).await {
            Ok(entries) => {
                self.inner.events.wake();
                self.offer(&saves, &entries).await;
                for (waiting, entry) in batch.into_iter().zip(entries) {
                    let _ = waiting.reply.send(Ok(entry));
                }
            }
            Err(err) if batch.len() == 1 => {
                let waiting = batch.into_iter().next().expect("a batch of one");
                let _ = waiting.reply.send(Err(err));
            }
            Err(err) => {
                tracing::debug!(error = %err, saves = batch.len(),
                    "a save batch failed; writing its saves one by one");
                for waiting in batch {
                    Box::pin(self.write(vec![waiting])).await;
                }
            }
        }
    }

    async fn offer(&self, saves: &[&Pending], entries: &[Entry]) {
        let offers = saves.iter().zip(entries).map(|(save, entry)| async move {
            self.inner
                .cache
                .offer(save.tenant, &save.session, &[Change::Written(entry)])
                .await;
        });
        futures::future::join_all(offers).await;
    }
}

/// The oldest waiting saves, each key once, at most [`MAX_BATCH`]; a save of a key already in
/// the batch stays queued, in its place, for the next one.
fn take_batch(waiting: &mut VecDeque<Waiting>) -> Vec<Waiting> {
    let mut batch = Vec::new();
    let mut keys = HashSet::new();
    let mut kept = VecDeque::new();
    while batch.len() < MAX_BATCH {
        let Some(next) = waiting.pop_front() else {
            break;
        };
        let save = &next.save;
        if keys.insert((save.tenant, save.session.clone(), save.key.clone())) {
            batch.push(next);
        } else {
            kept.push_back(next);
        }
    }
    kept.append(waiting);
    *waiting = kept;
    batch
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
