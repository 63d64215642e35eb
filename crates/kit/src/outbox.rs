//! The transactional outbox: events that are committed together with the change they announce,
//! and published to JetStream afterwards by a relay.
//!
//! Publishing after a commit loses the event for good when the process dies in between, or when
//! NATS is down at that moment. Instead a service writes the fully formed CloudEvent (id,
//! subject, type, source, time, data, and the trace context of the request) into its own
//! `<schema>.outbox` table inside the transaction that makes the change: both commit or neither
//! does. A relay task then publishes pending rows in enqueue order and deletes them.
//!
//! # Adopting it
//!
//! 1. Add the tables to the service's migrations (kit cannot ship migrations: each service's
//!    migrator only knows its own folder), with its schema in place of `memory`:
//!
//!    ```sql
//!    CREATE TABLE memory.outbox (
//!        -- Enqueue order: the relay publishes in this order.
//!        id          bigserial PRIMARY KEY,
//!        -- The CloudEvent as structured JSON; its `id` is the Nats-Msg-Id.
//!        event       jsonb NOT NULL,
//!        -- The trace context of the request that enqueued it, sent as NATS headers.
//!        headers     jsonb NOT NULL,
//!        enqueued_at timestamptz NOT NULL DEFAULT now()
//!    );
//!    -- Rows the relay could never publish, moved aside with the reason.
//!    CREATE TABLE memory.outbox_dead (
//!        id          bigint PRIMARY KEY,
//!        event       jsonb NOT NULL,
//!        headers     jsonb NOT NULL,
//!        enqueued_at timestamptz NOT NULL,
//!        failed_at   timestamptz NOT NULL DEFAULT now(),
//!        reason      text NOT NULL
//!    );
//!    ```
//!
//! 2. Build one [`Outbox`] with [`Outbox::new`] and share it (it is a cheap clone).
//! 3. In the write transaction, call [`Outbox::enqueue`] with `&mut *tx`; after
//!    `tx.commit()`, call [`Outbox::wake`] so the relay publishes at once rather than at its
//!    next poll.
//! 4. In `serve`, spawn [`Outbox::relay`] on the service's task tracker with its stop token,
//!    and await the tracker at shutdown.
//!
//! # Guarantees
//!
//! At least once: a relay publishes a batch, waits for JetStream's acks, then deletes the rows
//! in the same transaction that claimed them. If it dies before the delete commits, the rows
//! are published again; the stored event id is the `Nats-Msg-Id`, so JetStream drops the copy
//! if it comes within the stream's duplicate window (120 s). For the same reason that delete
//! commits without waiting for its WAL flush (`synchronous_commit = off`, for that transaction
//! only): a crash can undo it only by a moment, and what it undoes is published again. Rows
//! left by a replica that died are published by any survivor's next poll, or by the next start.
//!
//! In order: at most one relay per schema, across all replicas, works at a time. Each batch is
//! claimed under a transaction-level advisory lock (`pg_try_advisory_xact_lock`), read in id
//! order, sent over one NATS connection (which keeps the order) and acked before the lock is
//! released. `FOR UPDATE SKIP LOCKED` alone would not do: while one relay holds rows 1-100,
//! another would skip them and could publish row 101, a later event of the same run, first.
//! One relay at a time costs little: a batch is sent before any ack is awaited, so it takes
//! one round trip to JetStream rather than one per event. Ids follow enqueue order, which for
//! the events of one entity is commit order whenever its changes are sequential (a run's
//! steps); two transactions that change the same entity concurrently have no order to keep. A
//! row that JetStream refuses for a passing reason (NATS down, no ack in time) blocks those after
//! it, deliberately: skipping it would reorder.
//!
//! # Dead letters
//!
//! A row that can never be published — larger than the server's `max_payload`, an invalid
//! subject, no event id — would block every event behind it forever, of every tenant. The relay
//! moves such a row to `<schema>.outbox_dead` with the reason, in the transaction that deletes
//! the batch, counts it in `outbox_dead_letters_total`, logs it, and goes on. Events are fitted
//! to a bounded size when they are built ([`crate::limits`]), so this is a last resort.
//!
//! # SQL
//!
//! sqlx only takes `&'static str` queries unless told otherwise, and the table's schema varies
//! by service. The schema name is checked once in [`Outbox::new`] (lowercase letters and
//! underscores only, so it can neither quote nor inject) and the three statements are built
//! then, wrapped in [`AssertSqlSafe`]. The alternative, each service passing its statements as
//! `concat!` constants, would make every adopter copy SQL that must match this module's code.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use sqlx::types::Json;
use sqlx::{AssertSqlSafe, PgConnection, PgPool};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use async_nats::jetstream::context::{PublishError, PublishErrorKind};

use crate::events::{CloudEvent, EventBus, TraceHeaders};

/// How often a relay looks for rows without being woken: rows another replica enqueued, or left
/// behind when it died, wait at most this long.
const POLL: Duration = Duration::from_millis(250);
/// How soon a relay that found another one at work tries again, so that rows its own process
/// just committed are not left for a whole poll if the other relay's batch missed them.
const BUSY_RETRY: Duration = Duration::from_millis(50);
/// How far apart a woken relay's passes are at least: the event of a quiet moment goes out at
/// once, and under load one pass takes the commits of this long instead of one transaction
/// per commit. The most an event is delayed for the sake of batching.
const PASS_SPACING: Duration = Duration::from_millis(10);
/// Rows per batch: one transaction, one round of acks.
const BATCH: i64 = 200;

/// A service's outbox: where its transactions enqueue events and whence its relay publishes
/// them. Cloning shares it.
#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

struct Inner {
    schema: String,
    bus: EventBus,
    pool: PgPool,
    /// Wakes the relay after a commit; a wake while it is busy is kept for its next wait.
    wake: Notify,
    /// `<schema>.outbox`, also the advisory lock's name.
    table: String,
    insert: Arc<str>,
    insert_rows: Arc<str>,
    claim: Arc<str>,
    delete: Arc<str>,
    bury: Arc<str>,
}

/// An event as the outbox stores it: the `event` and `headers` columns, to bind as JSON.
pub struct OutboxRow {
    pub event: CloudEvent,
    pub headers: TraceHeaders,
}

/// A row of the claim: whether this relay holds the lock, then the columns of one pending
/// event, all absent when there is none (the lock's row still comes back).
type Claimed = (
    bool,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<Json<TraceHeaders>>,
    // Seconds since the row was enqueued (committed, give or take the transaction's length).
    Option<f64>,
);

/// Describes the relay's metrics and registers them for `schema` at zero, so that a dashboard
/// shows 0 rather than nothing until the first event.
fn describe_metrics(schema: &str) {
    metrics::describe_counter!(
        "outbox_events_published_total",
        "Events the outbox relay published and JetStream stored."
    );
    metrics::describe_counter!(
        "outbox_relay_failures_total",
        "Relay passes that failed (database or NATS); their events are retried."
    );
    metrics::describe_counter!(
        "outbox_dead_letters_total",
        "Outbox events JetStream can never take, moved to outbox_dead."
    );
    metrics::describe_histogram!(
        "events_publish_lag_seconds",
        metrics::Unit::Seconds,
        "From an event's enqueueing in the outbox to its relay's claim of it."
    );
    let schema = schema.to_owned();
    for name in [
        "outbox_events_published_total",
        "outbox_relay_failures_total",
        "outbox_dead_letters_total",
    ] {
        metrics::counter!(name, "schema" => schema.clone()).increment(0);
    }
    // Looking a histogram up registers it; it is rendered, empty, until its first sample.
    let _ = metrics::histogram!("events_publish_lag_seconds", "schema" => schema);
}

/// What one relay pass did.
enum Pass {
    /// Published a full batch: more rows may be pending.
    Full,
    /// Published what was pending.
    Drained,
    /// Another relay holds the lock.
    Busy,
}

impl Outbox {
    /// The outbox in table `<schema>.outbox` (see the module docs for its migration), publishing
    /// through `bus`.
    ///
    /// # Panics
    ///
    /// If `schema` is not lowercase ASCII letters and underscores: it is spliced into SQL.
    pub fn new(schema: &str, bus: EventBus, pool: PgPool) -> Self {
        assert!(
            !schema.is_empty() && schema.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "outbox schema {schema:?} must be lowercase letters and underscores"
        );
        let table = format!("{schema}.outbox");
        describe_metrics(schema);
        Self {
            inner: Arc::new(Inner {
                schema: schema.to_owned(),
                bus,
                pool,
                wake: Notify::new(),
                insert: format!("INSERT INTO {table} (event, headers) VALUES ($1, $2)").into(),
                insert_rows: format!(
                    "INSERT INTO {table} (event, headers)
                     SELECT r.event, r.headers
                     FROM unnest($1::jsonb[], $2::jsonb[]) WITH ORDINALITY AS r (event, headers, n)
                     ORDER BY r.n"
                )
                .into(),
                claim: format!(
                    "WITH turn AS (
                         SELECT pg_try_advisory_xact_lock(hashtext('{table}')) AS held,
                                set_config('synchronous_commit', 'off', true)
                     )
                     SELECT turn.held, o.id, o.event->>'id', o.event->>'subject', o.event::text,
                            o.headers,
                            extract(epoch FROM clock_timestamp() - o.enqueued_at)::float8
                     FROM turn LEFT JOIN LATERAL (
                         SELECT id, event, headers, enqueued_at FROM {table} WHERE turn.held
                         ORDER BY id LIMIT $1
                     ) o ON true
                     ORDER BY o.id"
                )
                .into(),
                delete: format!("DELETE FROM {table} WHERE id = ANY($1)").into(),
                bury: format!(
                    "INSERT INTO {schema}.outbox_dead (id, event, headers, enqueued_at, reason)
                     SELECT o.id, o.event, o.headers, o.enqueued_at, dead.reason
                     FROM unnest($1::bigint[], $2::text[]) AS dead(id, reason)
                     JOIN {table} o ON o.id = dead.id"
                )
                .into(),
                table,
            }),
        }
    }

    /// Writes the CloudEvent of type `sankalpa.<channel>.<action>` about `entity` into the
    /// outbox through `conn`, which should be the transaction making the change it announces;
    /// the current span's trace context goes with it. Returns the event's id. Call
    /// [`wake`](Self::wake) once the transaction has committed.
    pub async fn enqueue(
        &self,
        conn: &mut PgConnection,
        channel: &str,
        tenant: &str,
        entity: &str,
        action: &str,
        data: serde_json::Value,
    ) -> sqlx::Result<String> {
        let row = self.row(channel, tenant, entity, action, data);
        sqlx::query(AssertSqlSafe(self.inner.insert.clone()))
            .bind(Json(&row.event))
            .bind(Json(&row.headers))
            .execute(conn)
            .await?;
        Ok(row.event.id)
    }

    /// Writes `rows` (from [`row`](Self::row)) into the outbox through `conn` by one statement,
    /// in their order: the events of many changes one transaction makes together. Call
    /// [`wake`](Self::wake) once the transaction has committed.
    pub async fn enqueue_rows(
        &self,
        conn: &mut PgConnection,
        rows: &[&OutboxRow],
    ) -> sqlx::Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let events: Vec<Json<&CloudEvent>> = rows.iter().map(|row| Json(&row.event)).collect();
        let headers: Vec<Json<&TraceHeaders>> = rows.iter().map(|row| Json(&row.headers)).collect();
        sqlx::query(AssertSqlSafe(self.inner.insert_rows.clone()))
            .bind(events)
            .bind(headers)
            .execute(conn)
            .await?;
        Ok(())
    }

    /// What [`enqueue`](Self::enqueue) would insert, for a service that inserts it into
    /// `<schema>.outbox (event, headers)` itself, within the statement that makes the change:
    /// one round trip instead of two, and no explicit transaction. Call
    /// [`wake`](Self::wake) once it has committed.
    pub fn row(
        &self,
        channel: &str,
        tenant: &str,
        entity: &str,
        action: &str,
        data: serde_json::Value,
    ) -> OutboxRow {
        let (event, headers) = self
            .inner
            .bus
            .traced_event(channel, tenant, entity, action, data);
        OutboxRow { event, headers }
    }

    /// Tells this process's relay that rows were committed, so it publishes them now.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Publishes pending rows until `stop`, then makes one last pass so the events of requests
    /// served until then go out before the process exits. Spawn it on the service's task
    /// tracker; one per process is enough.
    pub async fn relay(self, stop: CancellationToken) {
        while !stop.is_cancelled() {
            let started = tokio::time::Instant::now();
            let wait = match self.pass().await {
                Ok(Pass::Full) => continue,
                Ok(Pass::Drained) => POLL,
                Ok(Pass::Busy) => BUSY_RETRY,
                Err(err) => {
                    self.failed(&err);
                    POLL
                }
            };
            let woken = tokio::select! {
                () = stop.cancelled() => false,
                () = self.inner.wake.notified() => true,
                () = tokio::time::sleep(wait) => false,
            };
            if woken {
                tokio::select! {
                    () = stop.cancelled() => {}
                    () = tokio::time::sleep_until(started + PASS_SPACING) => {}
                }
            }
        }
        loop {
            match self.pass().await {
                Ok(Pass::Full) => {}
                // Rows another relay holds, or that failed, are left to the surviving replicas
                // or the next start.
                Ok(Pass::Drained | Pass::Busy) => return,
                Err(err) => return self.failed(&err),
            }
        }
    }

    fn failed(&self, err: &anyhow::Error) {
        metrics::counter!("outbox_relay_failures_total", "schema" => self.inner.schema.clone())
            .increment(1);
        tracing::warn!(error = format!("{err:#}"), table = %self.inner.table,
            "could not relay outbox events; retrying");
    }

    /// Claims the oldest batch under the advisory lock, publishes it, and deletes it once
    /// JetStream has acked every event; an error rolls the claim back, leaving the rows for the
    /// next pass.
    async fn pass(&self) -> anyhow::Result<Pass> {
        let inner = &self.inner;
        let mut tx = inner.pool.begin().await?;
        let claimed: Vec<Claimed> = sqlx::query_as(AssertSqlSafe(inner.claim.clone()))
            .bind(BATCH)
            .fetch_all(&mut *tx)
            .await?;
        if !claimed.first().is_some_and(|row| row.0) {
            return Ok(Pass::Busy);
        }
        if claimed.iter().all(|row| row.1.is_none()) {
            return Ok(Pass::Drained);
        }
        let claimed_count = claimed.len();
        // Every event is sent before any ack is awaited: one connection keeps them in order,
        // and the batch costs one round trip rather than one per event.
        let mut acks = Vec::with_capacity(claimed_count);
        let mut sent = Vec::with_capacity(claimed_count);
        let mut dead: (Vec<i64>, Vec<String>) = (Vec::new(), Vec::new());
        let mut waited = Vec::with_capacity(claimed_count);
        for (_, id, event_id, subject, event, trace, lag) in claimed {
            // The lock's row alone, when nothing is pending.
            let Some(id) = id else { continue };
            let (Some(event_id), Some(subject), Some(event), Some(Json(trace))) =
                (event_id, subject, event, trace)
            else {
                dead.0.push(id);
                dead.1
                    .push("the stored event has no id or subject".to_owned());
                continue;
            };
            match inner
                .bus
                .send(subject, &event_id, event.into_bytes(), &trace)
                .await
            {
                Ok(ack) => {
                    acks.push(ack);
                    sent.push(id);
                    waited.extend(lag);
                }
                Err(err) if never_publishable(&err) => {
                    dead.0.push(id);
                    dead.1
                        .push(crate::limits::error_message(&err.to_string()).into_owned());
                }
                Err(err) => return Err(err.into()),
            }
        }
        for ack in acks {
            ack.await?;
        }
        if !dead.0.is_empty() {
            sqlx::query(AssertSqlSafe(inner.bury.clone()))
                .bind(&dead.0)
                .bind(&dead.1)
                .execute(&mut *tx)
                .await?;
        }
        let done: Vec<i64> = sent.iter().chain(&dead.0).copied().collect();
        sqlx::query(AssertSqlSafe(inner.delete.clone()))
            .bind(&done)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        for (id, reason) in dead.0.iter().zip(&dead.1) {
            metrics::counter!("outbox_dead_letters_total", "schema" => inner.schema.clone())
                .increment(1);
            tracing::error!(row = id, reason = %reason, table = %inner.table,
                "an outbox event can never be published; moved to outbox_dead");
        }
        metrics::counter!("outbox_events_published_total", "schema" => inner.schema.clone())
            .increment(sent.len() as u64);
        let lag =
            metrics::histogram!("events_publish_lag_seconds", "schema" => inner.schema.clone());
        for seconds in waited {
            lag.record(seconds);
        }
        Ok(if claimed_count as i64 == BATCH {
            Pass::Full
        } else {
            Pass::Drained
        })
    }
}

/// Whether JetStream refused `err`'s event for what the event is, not for the moment: sending it
/// again would fail the same way.
fn never_publishable(err: &PublishError) -> bool {
    matches!(err.kind(), PublishErrorKind::MaxPayloadExceeded)
        || std::error::Error::source(err)
            .is_some_and(|source| source.is::<async_nats::subject::SubjectError>())
}

/// What an event says happened, the last token of its subject (`saved`, `installed`): each
/// service names its own in an enum.
pub trait EventAction: Copy {
    fn name(self) -> &'static str;
}

/// A service's events on one channel (`memory`, `market`), through its outbox, typed by the
/// service's actions: `<channel>.<tenant>.<entity>.<action>`. Cloning shares it.
pub struct ChannelEvents<A> {
    outbox: Outbox,
    channel: &'static str,
    action: PhantomData<A>,
}

impl<A> Clone for ChannelEvents<A> {
    fn clone(&self) -> Self {
        Self {
            outbox: self.outbox.clone(),
            channel: self.channel,
            action: PhantomData,
        }
    }
}

impl<A: EventAction> ChannelEvents<A> {
    pub fn new(outbox: Outbox, channel: &'static str) -> Self {
        Self {
            outbox,
            channel,
            action: PhantomData,
        }
    }

    /// Enqueues the event in `tx`, the transaction making the change; call
    /// [`wake`](Self::wake) after it commits.
    pub async fn enqueue(
        &self,
        tx: &mut PgConnection,
        tenant: Uuid,
        entity: &str,
        action: A,
        data: serde_json::Value,
    ) -> sqlx::Result<()> {
        self.outbox
            .enqueue(
                tx,
                self.channel,
                &tenant.to_string(),
                entity,
                action.name(),
                data,
            )
            .await?;
        Ok(())
    }

    /// The outbox row of an event, for a statement that inserts it together with its change
    /// (see [`Outbox::row`]); call [`wake`](Self::wake) after it commits.
    pub fn row(&self, tenant: Uuid, entity: &str, action: A, data: serde_json::Value) -> OutboxRow {
        self.outbox.row(
            self.channel,
            &tenant.to_string(),
            entity,
            action.name(),
            data,
        )
    }

    /// Has the relay publish what was just committed, rather than at its next poll.
    pub fn wake(&self) {
        self.outbox.wake();
    }

    /// The relay publishing this outbox until `stop`; the service's `serve` runs it.
    pub fn relay(&self, stop: CancellationToken) -> impl Future<Output = ()> + use<A> {
        self.outbox.clone().relay(stop)
    }
}
