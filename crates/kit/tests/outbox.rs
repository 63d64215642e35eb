//! The transactional outbox against the local Postgres and NATS JetStream: each test has its own
//! database (with the outbox table its migration would create) and its own stream and subject
//! prefix, deleted at the end.

use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use sankalpa_kit::events::{CloudEvent, EventBus};
use sankalpa_kit::outbox::Outbox;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

struct Fixture {
    outbox: Outbox,
    pool: PgPool,
    js: jetstream::Context,
    stream: String,
    relay: Option<(CancellationToken, JoinHandle<()>)>,
}

impl Fixture {
    async fn new(pool: PgPool) -> Self {
        // The migration the module docs give, under a schema of the test's own.
        sqlx::raw_sql(
            "CREATE SCHEMA outbox_test;
             CREATE TABLE outbox_test.outbox (
                 id          bigserial PRIMARY KEY,
                 event       jsonb NOT NULL,
                 headers     jsonb NOT NULL,
                 enqueued_at timestamptz NOT NULL DEFAULT now()
             );
             CREATE TABLE outbox_test.outbox_dead (
                 id          bigint PRIMARY KEY,
                 event       jsonb NOT NULL,
                 headers     jsonb NOT NULL,
                 enqueued_at timestamptz NOT NULL,
                 failed_at   timestamptz NOT NULL DEFAULT now(),
                 reason      text NOT NULL
             );",
        )
        .execute(&pool)
        .await
        .unwrap();
        let name = format!("t{}", uuid::Uuid::new_v4().simple());
        let stream = format!("TEST_{}", name.to_uppercase());
        let client = async_nats::connect("nats://127.0.0.1:4222").await.unwrap();
        let mut infra = sankalpa_kit::config::Infra::from_env().unwrap();
        infra.events_stream = stream.clone();
        infra.subject_prefix = format!("{name}.");
        infra.events_max_bytes = 1024 * 1024;
        let bus = EventBus::connect(client.clone(), &infra, "/sankalpa/test")
            .await
            .unwrap();
        Self {
            outbox: Outbox::new("outbox_test", bus, pool.clone()),
            pool,
            js: jetstream::new(client),
            stream,
            relay: None,
        }
    }

    fn start_relay(&mut self) {
        let stop = CancellationToken::new();
        let task = tokio::spawn(self.outbox.clone().relay(stop.clone()));
        self.relay = Some((stop, task));
    }

    /// Enqueues `action` about `run` in a transaction of its own and commits it.
    async fn commit(&self, run: &str, action: &str) -> String {
        let mut tx = self.pool.begin().await.unwrap();
        let id = self
            .outbox
            .enqueue(
                &mut tx,
                "chains",
                "tenant-1",
                run,
                action,
                serde_json::json!({ "run_id": run }),
            )
            .await
            .unwrap();
        tx.commit().await.unwrap();
        self.outbox.wake();
        id
    }

    async fn pending(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM outbox_test.outbox")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// Waits until the outbox is empty, then reads every event the stream holds, in order.
    async fn published(&self) -> Vec<CloudEvent> {
        tokio::time::timeout(Duration::from_secs(5), async {
            while self.pending().await > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the relay empties the outbox");
        let mut stream = self.js.get_stream(&self.stream).await.unwrap();
        let count = stream.info().await.unwrap().state.messages;
        let consumer = stream
            .create_consumer(consumer::pull::Config::default())
            .await
            .unwrap();
        let mut events = Vec::new();
        if count > 0 {
            let mut messages = consumer
                .fetch()
                .max_messages(usize::try_from(count).unwrap())
                .messages()
                .await
                .unwrap();
            while let Some(message) = messages.next().await {
                events.push(serde_json::from_slice(&message.unwrap().payload).unwrap());
            }
        }
        events
    }

    async fn finish(mut self) {
        if let Some((stop, task)) = self.relay.take() {
            stop.cancel();
            task.await.unwrap();
        }
        self.js.delete_stream(&self.stream).await.unwrap();
    }
}

fn ids(events: &[CloudEvent]) -> Vec<&str> {
    events.iter().map(|event| event.id.as_str()).collect()
}

#[sqlx::test(migrations = false)]
async fn committed_events_are_published_in_enqueue_order(pool: PgPool) {
    let mut fixture = Fixture::new(pool).await;
    fixture.start_relay();

    let mut tx = fixture.pool.begin().await.unwrap();
    let mut expected = Vec::new();
    for action in ["run.started", "step.started", "step.completed"] {
        let id = fixture
            .outbox
            .enqueue(
                &mut tx,
                "chains",
                "tenant-1",
                "run-1",
                action,
                serde_json::json!({}),
            )
            .await
            .unwrap();
        expected.push(id);
    }
    tx.commit().await.unwrap();
    fixture.outbox.wake();
    expected.push(fixture.commit("run-1", "run.completed").await);

    let events = fixture.published().await;
    assert_eq!(ids(&events), expected);
    let kinds: Vec<&str> = events.iter().map(|event| event.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "sankalpa.chains.run.started",
            "sankalpa.chains.step.started",
            "sankalpa.chains.step.completed",
            "sankalpa.chains.run.completed"
        ]
    );
    assert!(
        events[0]
            .subject
            .ends_with("chains.tenant-1.run-1.run.started")
    );
    assert_eq!(events[0].tenantid, "tenant-1");
    fixture.finish().await;
}

#[sqlx::test(migrations = false)]
async fn rows_enqueued_together_are_published_in_their_order(pool: PgPool) {
    let mut fixture = Fixture::new(pool).await;
    fixture.start_relay();

    let rows: Vec<_> = ["run.started", "step.started", "step.completed"]
        .into_iter()
        .enumerate()
        .map(|(n, action)| {
            let run = format!("run-{}", 3 - n);
            fixture.outbox.row(
                "chains",
                "tenant-1",
                &run,
                action,
                serde_json::json!({ "n": n }),
            )
        })
        .collect();
    let expected: Vec<String> = rows.iter().map(|row| row.event.id.clone()).collect();
    let mut tx = fixture.pool.begin().await.unwrap();
    fixture
        .outbox
        .enqueue_rows(&mut tx, &rows.iter().collect::<Vec<_>>())
        .await
        .unwrap();
    fixture.outbox.enqueue_rows(&mut tx, &[]).await.unwrap();
    tx.commit().await.unwrap();
    fixture.outbox.wake();

    let events = fixture.published().await;
    assert_eq!(ids(&events), expected);
    assert!(
        events[2]
            .subject
            .ends_with("chains.tenant-1.run-1.step.completed")
    );
    fixture.finish().await;
}

#[sqlx::test(migrations = false)]
async fn a_rolled_back_transaction_publishes_nothing(pool: PgPool) {
    let mut fixture = Fixture::new(pool).await;
    fixture.start_relay();

    let mut tx = fixture.pool.begin().await.unwrap();
    fixture
        .outbox
        .enqueue(
            &mut tx,
            "chains",
            "tenant-1",
            "run-1",
            "run.started",
            serde_json::json!({}),
        )
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    fixture.outbox.wake();
    // Published after the rolled-back one would have been: once it is out, so would that be.
    let committed = fixture.commit("run-2", "run.started").await;

    assert_eq!(ids(&fixture.published().await), [committed]);
    fixture.finish().await;
}

#[sqlx::test(migrations = false)]
async fn rows_left_without_a_relay_are_published_when_one_starts(pool: PgPool) {
    let mut fixture = Fixture::new(pool).await;
    // As a replica that committed and died before publishing leaves them.
    let first = fixture.commit("run-1", "run.started").await;
    let second = fixture.commit("run-1", "run.completed").await;
    assert_eq!(fixture.pending().await, 2);

    fixture.start_relay();
    assert_eq!(ids(&fixture.published().await), [first, second]);
    fixture.finish().await;
}

#[sqlx::test(migrations = false)]
async fn a_row_published_twice_is_stored_once(pool: PgPool) {
    let mut fixture = Fixture::new(pool).await;
    let id = fixture.commit("run-1", "run.completed").await;
    let (event, headers): (serde_json::Value, serde_json::Value) =
        sqlx::query_as("SELECT event, headers FROM outbox_test.outbox")
            .fetch_one(&fixture.pool)
            .await
            .unwrap();
    fixture.start_relay();
    assert_eq!(ids(&fixture.published().await), [id.as_str()]);

    // A relay that published the row but died before its delete committed leaves it behind.
    sqlx::query("INSERT INTO outbox_test.outbox (event, headers) VALUES ($1, $2)")
        .bind(&event)
        .bind(&headers)
        .execute(&fixture.pool)
        .await
        .unwrap();
    fixture.outbox.wake();
    assert_eq!(ids(&fixture.published().await), [id.as_str()]);
    fixture.finish().await;
}

#[sqlx::test(migrations = false)]
async fn an_event_nats_can_never_take_is_moved_aside_and_the_rest_go_out(pool: PgPool) {
    let mut fixture = Fixture::new(pool).await;
    let first = fixture.commit("run-1", "run.started").await;
    // A row as an older build, which did not bound events, could leave it: 2 MiB of error,
    // past NATS's 1 MiB max_payload.
    let (mut event, headers): (serde_json::Value, serde_json::Value) =
        sqlx::query_as("SELECT event, headers FROM outbox_test.outbox")
            .fetch_one(&fixture.pool)
            .await
            .unwrap();
    event["id"] = serde_json::json!(uuid::Uuid::now_v7().to_string());
    event["data"] = serde_json::json!({ "error": "e".repeat(2 * 1024 * 1024) });
    let huge: i64 = sqlx::query_scalar(
        "INSERT INTO outbox_test.outbox (event, headers) VALUES ($1, $2) RETURNING id",
    )
    .bind(&event)
    .bind(&headers)
    .fetch_one(&fixture.pool)
    .await
    .unwrap();
    let last = fixture.commit("run-2", "run.completed").await;

    fixture.start_relay();
    assert_eq!(ids(&fixture.published().await), [first, last]);
    let (dead, reason): (i64, String) =
        sqlx::query_as("SELECT id, reason FROM outbox_test.outbox_dead")
            .fetch_one(&fixture.pool)
            .await
            .unwrap();
    assert_eq!(dead, huge);
    assert!(reason.contains("max payload"), "{reason}");
    fixture.finish().await;
}

#[sqlx::test(migrations = false)]
async fn an_event_with_megabytes_of_data_is_published_fitted(pool: PgPool) {
    let mut fixture = Fixture::new(pool).await;
    let mut tx = fixture.pool.begin().await.unwrap();
    let data = serde_json::json!({ "run_id": "run-1", "error": "e".repeat(2 * 1024 * 1024) });
    fixture
        .outbox
        .enqueue(&mut tx, "chains", "tenant-1", "run-1", "step.failed", data)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    fixture.start_relay();
    let events = fixture.published().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].data["run_id"], "run-1");
    assert_eq!(events[0].data["truncated"], true);
    assert!(events[0].data["error"].as_str().unwrap().len() <= 1024);
    fixture.finish().await;
}
