//! Outbound webhooks (issue 23): events published straight into the fleet's JetStream stream, as
//! a service publishes them, reach one concurrent endpoint registered through the gateway, whose
//! receiver is a local HTTP server in the bench answering 200 at once. Each delivery's latency is
//! from the event's `time` (set by the bench as it publishes) to the receiver's reading of it, on
//! the same machine's clock; `errors` counts the events never delivered and those delivered twice.
//!
//! - [`BURST`]: [`BURST_EVENTS`] events published as fast as JetStream takes them;
//!   `throughput_rps` is deliveries a second, from the first publish to the last delivery.
//! - [`STEADY`]: events at a steady [`STEADY_RATE`] a second for the bench's duration; the
//!   latency is delivery's, not a burst's queue.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::{Value, json};

use crate::line::{Line, Results};
use crate::load::Report;
use crate::session::{Session, expect_success};

pub const BURST: &str = "webhook deliveries: a burst of events to one endpoint";
pub const STEADY: &str = "webhook delivery latency: events at a steady rate to one endpoint";

/// Events of the burst.
const BURST_EVENTS: usize = 10_000;
/// Events a second of the steady line (issue 23's target: p99 <= 100 ms at 500/s).
const STEADY_RATE: u64 = 500;
/// How long after the last publish every delivery may take.
const DELIVERY_WAIT: Duration = Duration::from_secs(60);
/// The events' type: the endpoint asks for it alone, so no other event of the fleet reaches it.
const EVENT_TYPE: &str = "sankalpa.bench.webhook";
/// Publishes awaited at once: JetStream's acks come back while the next are sent.
const PUBLISH_WINDOW: usize = 256;

/// What the receiver read: each webhook-id once, the latencies, and the repeats.
#[derive(Default)]
struct Received {
    ids: HashSet<String>,
    latency_us: Vec<u64>,
    repeated: u64,
    last_at: Option<Instant>,
}

type Shared = Arc<Mutex<Received>>;

async fn receive(State(received): State<Shared>, headers: HeaderMap, body: Bytes) -> &'static str {
    let now = chrono::Utc::now();
    let id = headers
        .get("webhook-id")
        .and_then(|id| id.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let sent_at = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|event| event["time"].as_str().map(str::to_owned))
        .and_then(|time| chrono::DateTime::parse_from_rfc3339(&time).ok());
    let mut received = received.lock().expect("not poisoned");
    if !received.ids.insert(id) {
        received.repeated += 1;
        return "again";
    }
    if let Some(sent_at) = sent_at {
        let latency = (now - sent_at.with_timezone(&chrono::Utc))
            .num_microseconds()
            .unwrap_or(0);
        received.latency_us.push(latency.max(1) as u64);
    }
    received.last_at = Some(Instant::now());
    "ok"
}

/// The receiver on a free loopback port: its URL and what it read.
async fn start_receiver() -> Result<(String, Shared)> {
    let received = Shared::default();
    let app = axum::Router::new()
        .fallback(axum::routing::post(receive))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, received))
}

/// Registers the receiver as a concurrent endpoint for [`EVENT_TYPE`]; `None` when the gateway's
/// triggers service refuses the loopback (one not started by the bench, without
/// `SANKALPA_TRIGGERS_ALLOW_HTTP` and `SANKALPA_TRIGGERS_ALLOW_PRIVATE_NETWORKS`).
async fn create_endpoint(session: &Session, url: &str) -> Result<Option<String>> {
    let response = session
        .client
        .post(session.url("/api/webhooks/endpoints"))
        .bearer_auth(&session.access_token)
        .json(&json!({ "url": url, "event_types": [EVENT_TYPE], "description": "bench receiver" }))
        .send()
        .await
        .context("Failed to create the bench's webhook endpoint")?;
    if response.status() == reqwest::StatusCode::BAD_REQUEST {
        let body = response.text().await.unwrap_or_default();
        eprintln!("bench: webhooks skipped, the endpoint was refused: {body}");
        return Ok(None);
    }
    let body: Value = expect_success(response, "webhook endpoint")
        .await?
        .json()
        .await?;
    Ok(body["endpoint"]["id"].as_str().map(str::to_owned))
}

async fn delete_endpoint(session: &Session, id: &str) -> Result<()> {
    let response = session
        .client
        .delete(session.url(&format!("/api/webhooks/endpoints/{id}")))
        .bearer_auth(&session.access_token)
        .send()
        .await?;
    expect_success(response, "webhook endpoint delete").await?;
    Ok(())
}

/// The bench user's tenant, which the events name.
async fn tenant_of(session: &Session) -> Result<String> {
    let response = session
        .client
        .get(session.url("/api/users/me"))
        .bearer_auth(&session.access_token)
        .send()
        .await?;
    let me: Value = expect_success(response, "users/me").await?.json().await?;
    me["tenant_id"]
        .as_str()
        .map(str::to_owned)
        .context("users/me has no tenant_id")
}

/// Publishes CloudEvents of [`EVENT_TYPE`] for `tenant` into the fleet's stream.
struct Publisher {
    jetstream: async_nats::jetstream::Context,
    subject: String,
    tenant: String,
}

impl Publisher {
    async fn connect(tenant: String, subject_prefix: &str) -> Result<Self> {
        let nats_url = crate::env_or("SANKALPA_NATS_URL", "nats://127.0.0.1:4222");
        let client = async_nats::connect(&nats_url)
            .await
            .with_context(|| format!("Failed to connect to NATS at {nats_url}"))?;
        Ok(Self {
            jetstream: async_nats::jetstream::new(client),
            subject: format!("{subject_prefix}agents.{tenant}.bench-webhooks.sent"),
            tenant,
        })
    }

    /// Sends one event, its `time` now; gives JetStream's acknowledgement to await.
    async fn send(&self) -> Result<async_nats::jetstream::context::PublishAckFuture> {
        let event = json!({
            "specversion": "1.0",
            "id": uuid::Uuid::now_v7().to_string(),
            "source": "/sankalpa/bench",
            "type": EVENT_TYPE,
            "subject": self.subject,
            "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "datacontenttype": "application/json",
            "tenantid": self.tenant,
            "data": {},
        });
        Ok(self
            .jetstream
            .publish(self.subject.clone(), serde_json::to_vec(&event)?.into())
            .await?)
    }
}

/// Waits until `count` events were delivered, or [`DELIVERY_WAIT`] passed without all.
async fn wait_for(received: &Shared, count: usize) {
    let deadline = Instant::now() + DELIVERY_WAIT;
    while received.lock().expect("not poisoned").ids.len() < count && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The line of `published` events: deliveries a second from `started` to the last delivery,
/// their latencies, and the missed and repeated ones as errors.
fn line(name: &str, published: usize, started: Instant, received: &Shared) -> Line {
    let received = received.lock().expect("not poisoned");
    let mut report = Report::new();
    for &latency in &received.latency_us {
        report.latency_us.saturating_record(latency);
    }
    let missed = published.saturating_sub(received.ids.len()) as u64;
    report.errors = missed + received.repeated;
    report.elapsed = received
        .last_at
        .map_or_else(|| started.elapsed(), |last| last - started);
    Line::new(name, 1, &report)
        .with("events", published)
        .with("missed", missed)
        .with("repeated", received.repeated)
}

/// One line: an endpoint and a receiver of its own, `events` published at `rate` a second (as
/// fast as JetStream takes them without), every delivery waited for; `false` when the triggers
/// service may not deliver to the loopback.
async fn measure_one(
    session: &Session,
    publisher: &Publisher,
    name: &str,
    events: usize,
    rate: Option<u64>,
    results: &mut Results,
) -> Result<bool> {
    let (url, received) = start_receiver().await?;
    let Some(endpoint) = create_endpoint(session, &url).await? else {
        return Ok(false);
    };
    let mut pace = rate.map(|rate| {
        let mut ticks = tokio::time::interval(Duration::from_secs(1) / rate as u32);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        ticks
    });
    let started = Instant::now();
    let mut acks = Vec::with_capacity(PUBLISH_WINDOW);
    for _ in 0..events {
        if let Some(ticks) = &mut pace {
            ticks.tick().await;
        }
        acks.push(publisher.send().await?);
        if acks.len() == PUBLISH_WINDOW {
            for ack in acks.drain(..) {
                ack.await?;
            }
        }
    }
    for ack in acks {
        ack.await?;
    }
    wait_for(&received, events).await;
    let mut line = line(name, events, started, &received);
    if let Some(rate) = rate {
        line = line.with("rate", rate);
    }
    results.print(&line);
    delete_endpoint(session, &endpoint).await?;
    Ok(true)
}

/// The lines `wanted` asks for; skipped (said on stderr) when the triggers service may not
/// deliver to the loopback.
pub async fn measure(
    session: &Session,
    subject_prefix: &str,
    duration: Duration,
    wanted: impl Fn(&str) -> bool,
    results: &mut Results,
) -> Result<()> {
    let publisher = Publisher::connect(tenant_of(session).await?, subject_prefix).await?;
    if wanted(BURST) {
        eprintln!("bench: {BURST}: {BURST_EVENTS} events");
        if !measure_one(session, &publisher, BURST, BURST_EVENTS, None, results).await? {
            return Ok(());
        }
    }
    if wanted(STEADY) {
        let events = (STEADY_RATE * duration.as_secs()).max(1) as usize;
        eprintln!("bench: {STEADY}: {events} events at {STEADY_RATE}/s");
        measure_one(
            session,
            &publisher,
            STEADY,
            events,
            Some(STEADY_RATE),
            results,
        )
        .await?;
    }
    Ok(())
}
