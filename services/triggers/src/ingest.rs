//! Takes events from JetStream into deliveries. One replica at a time reads the event stream: it
//! holds a Postgres advisory lock on a connection of its own, and the others try for it every
//! [`LOCK_POLL`]. It reads with an ordered consumer, which needs no acknowledgements, from the
//! stream sequence kept in `triggers.ingest_cursor`. Each batch of events is matched against the
//! enabled endpoints of their tenants; the batch's delivery rows and the cursor past it are one
//! transaction. A batch that matches nothing moves the cursor only in memory, written every
//! [`CURSOR_EVERY_EVENTS`] events or [`CURSOR_EVERY`], and when the reader stops.
//!
//! So no event is lost: the cursor passes an event only once its deliveries are committed or
//! it had none. A reader that dies is followed by the next to take the lock, which reads again
//! from the cursor; the deliveries of events read twice are not inserted twice (one per event
//! and endpoint), and a reader that lost its lock without knowing it (its connection cut) can
//! only repeat work, never lose it. One acknowledgement per event, each a NATS message and an
//! update of the consumer's state, cost the burst of chain runs about 5% of its throughput
//! (docs/benchmarks.md); a shared consumer cannot acknowledge a batch as one, since the last
//! event of one replica's batch would acknowledge another replica's events still in hand.
//!
//! The service's own channel is skipped (matched against nothing: a `delivered` event delivered
//! would announce another, for ever). A cursor made for the first time starts at new events (an
//! endpoint receives the events after it exists, not the stream's past week), or where the
//! durable consumer of earlier versions had acknowledged, which is then deleted.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::consumer::pull::OrderedConfig;
use async_nats::jetstream::stream::Stream;
use futures::StreamExt;
use sankalpa_kit::backoff::Backoff;
use sankalpa_kit::config::Infra;
use sankalpa_kit::events::CloudEvent;
use sqlx::PgConnection;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::State;
use crate::deliveries::{self, NewDelivery};
use crate::endpoints;
use crate::filters;

/// The advisory lock of the one reader: the bytes of "triggers", outside the 32-bit range of
/// the `hashtext` keys the outbox relays lock.
const LOCK: i64 = 0x7472_6967_6765_7273;
/// How often a waiting replica tries the lock, and the reader checks that it still holds it.
const LOCK_POLL: Duration = Duration::from_secs(1);
/// Events taken into one batch at most: one query of endpoints, one insert.
const BATCH: usize = 256;
/// Events that matched no endpoint, read past the written cursor, before it is written.
const CURSOR_EVERY_EVENTS: u64 = 1024;
/// The longest the written cursor stays behind what was read.
const CURSOR_EVERY: Duration = Duration::from_secs(1);
/// The durable consumer of earlier versions: its place is taken over once, then it is deleted.
const OLD_CONSUMER: &str = "triggers";

/// The pause before reading again after a failure, growing while failures follow one another
/// and back to the first once a batch has been taken.
fn retry_pauses() -> Backoff {
    Backoff::new(Duration::from_millis(100), Duration::from_secs(5))
}

/// The event stream, which must exist.
pub async fn stream(nats: async_nats::Client, infra: &Infra) -> anyhow::Result<Stream> {
    async_nats::jetstream::new(nats)
        .get_stream(&infra.events_stream)
        .await
        .map_err(|err| anyhow::anyhow!("could not find stream {}: {err}", infra.events_stream))
}

/// Takes the lock when it can and reads until `stop`, starting again after any failure.
pub async fn run(state: Arc<State>, mut stream: Stream, stop: CancellationToken) {
    let mut backoff = retry_pauses();
    // A waiting replica keeps its connection between tries rather than opening one each time.
    let mut waiting: Option<PgConnection> = None;
    while !stop.is_cancelled() {
        let outcome = match try_lock(&state, waiting.take()).await {
            Ok(Lock::Held(connection)) => {
                read(&state, &mut stream, connection, &mut backoff, &stop).await
            }
            Ok(Lock::Taken(connection)) => {
                waiting = Some(connection);
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(LOCK_POLL) => continue,
                }
            }
            Err(err) => Err(err),
        };
        match outcome {
            Ok(()) => return,
            Err(err) => {
                tracing::warn!(error = %err, "could not read the event stream; retrying");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(backoff.next_wait()) => {}
                }
            }
        }
    }
}

/// The reader's lock tried on a connection of its own: held, or taken by another replica.
/// Closing the connection releases the lock.
enum Lock {
    Held(PgConnection),
    Taken(PgConnection),
}

async fn try_lock(state: &State, connection: Option<PgConnection>) -> anyhow::Result<Lock> {
    let mut connection = match connection {
        Some(connection) => connection,
        None => state.pool.acquire().await?.detach(),
    };
    let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(LOCK)
        .fetch_one(&mut connection)
        .await?;
    Ok(if held {
        Lock::Held(connection)
    } else {
        Lock::Taken(connection)
    })
}

/// The cursor of `stream` as kept, made first if there is none.
async fn start(state: &State, stream: &mut Stream) -> anyhow::Result<Cursor> {
    let name = stream.cached_info().config.name.clone();
    let kept: Option<i64> =
        sqlx::query_scalar("SELECT next_sequence FROM triggers.ingest_cursor WHERE stream = $1")
            .bind(&name)
            .fetch_optional(&state.pool)
            .await?;
    if let Some(next) = kept {
        return Ok(Cursor::at(name, u64::try_from(next)?));
    }
    let old = stream.consumer_info(OLD_CONSUMER).await.ok();
    let next = match &old {
        Some(info) => info.ack_floor.stream_sequence + 1,
        None => stream.info().await?.state.last_sequence + 1,
    };
    sqlx::query(
        "INSERT INTO triggers.ingest_cursor (stream, next_sequence) VALUES ($1, $2)
         ON CONFLICT (stream) DO NOTHING",
    )
    .bind(&name)
    .bind(i64::try_from(next)?)
    .execute(&state.pool)
    .await?;
    if old.is_some() {
        stream.delete_consumer(OLD_CONSUMER).await?;
        tracing::info!(
            from = next,
            "took over the durable consumer's place in the event stream"
        );
    }
    Ok(Cursor::at(name, next))
}

/// The cursor as read, and as written.
struct Cursor {
    stream: String,
    next: u64,
    written: u64,
    written_at: tokio::time::Instant,
}

impl Cursor {
    /// Standing at `next`, as written.
    fn at(stream: String, next: u64) -> Self {
        Self {
            stream,
            next,
            written: next,
            written_at: tokio::time::Instant::now(),
        }
    }

    async fn write(&mut self, db: impl sqlx::PgExecutor<'_>) -> sqlx::Result<()> {
        if self.next == self.written {
            return Ok(());
        }
        sqlx::query(
            "UPDATE triggers.ingest_cursor SET next_sequence = greatest(next_sequence, $2)
             WHERE stream = $1",
        )
        .bind(&self.stream)
        .bind(i64::try_from(self.next).unwrap_or(i64::MAX))
        .execute(db)
        .await?;
        self.written = self.next;
        self.written_at = tokio::time::Instant::now();
        Ok(())
    }

    fn due(&self) -> bool {
        self.next - self.written >= CURSOR_EVERY_EVENTS
            || (self.next != self.written && self.written_at.elapsed() >= CURSOR_EVERY)
    }
}

/// Reads from the cursor while `lock` is held, restarting `backoff` with each batch taken; `Ok`
/// once `stop` is cancelled.
async fn read(
    state: &State,
    stream: &mut Stream,
    mut lock: PgConnection,
    backoff: &mut Backoff,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    let mut cursor = start(state, stream).await?;
    let consumer = stream
        .create_consumer(OrderedConfig {
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: cursor.next,
            },
            ..Default::default()
        })
        .await?;
    let mut batches = consumer.messages().await?.ready_chunks(BATCH);
    let mut check = tokio::time::interval(LOCK_POLL);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => {
                cursor.write(&state.pool).await?;
                return Ok(());
            }
            _ = check.tick() => {
                // A connection that fails has lost the lock: another replica may read now.
                sqlx::query("SELECT 1").execute(&mut lock).await?;
                if cursor.due() {
                    cursor.write(&state.pool).await?;
                }
            }
            batch = batches.next() => {
                let Some(batch) = batch else {
                    anyhow::bail!("the consumer's messages ended");
                };
                let batch = batch.into_iter().collect::<Result<Vec<_>, _>>()?;
                take(state, &batch, &mut cursor).await?;
                *backoff = retry_pauses();
            }
        }
    }
}

/// Stores the deliveries of a batch with the cursor past it; a batch without deliveries moves
/// the cursor in memory, written when it is due.
async fn take(
    state: &State,
    batch: &[async_nats::jetstream::Message],
    cursor: &mut Cursor,
) -> anyhow::Result<()> {
    let Some(last) = batch.last() else {
        return Ok(());
    };
    let next = last
        .info()
        .map_err(|err| anyhow::anyhow!(err))?
        .stream_sequence
        + 1;
    let events: Vec<Option<CloudEvent>> = batch
        .iter()
        .map(|message| serde_json::from_slice(&message.payload).ok())
        .collect();
    let tenants: Vec<Uuid> = events
        .iter()
        .flatten()
        .filter_map(|event| Uuid::parse_str(&event.tenantid).ok())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let endpoints = if tenants.is_empty() {
        Vec::new()
    } else {
        endpoints::enabled_of(&state.pool, &tenants).await?
    };
    let mut new = Vec::new();
    for (message, event) in batch.iter().zip(&events) {
        let Some(event) = event else { continue };
        let subject = filters::subject_without_tenant(&state.subject_prefix, &event.subject);
        if subject.split('.').next() == Some(crate::events::CHANNEL) {
            continue;
        }
        for (endpoint, tenant, filters_of) in &endpoints {
            if tenant.to_string() == event.tenantid
                && filters::matches(filters_of, &event.kind, &subject)
            {
                new.push(NewDelivery {
                    tenant: *tenant,
                    endpoint: *endpoint,
                    event_id: event.id.clone(),
                    event_type: event.kind.clone(),
                    // The event exactly as it was stored is what is signed and sent.
                    body: String::from_utf8_lossy(&message.payload).into_owned(),
                });
            }
        }
    }
    cursor.next = next;
    if new.is_empty() {
        if cursor.due() {
            cursor.write(&state.pool).await?;
        }
        return Ok(());
    }
    let mut tx = state.pool.begin().await?;
    let inserted = deliveries::insert(&mut *tx, &new).await?;
    cursor.write(&mut *tx).await?;
    tx.commit().await?;
    if inserted > 0 {
        state.wake.notify_one();
    }
    Ok(())
}
