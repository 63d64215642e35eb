//! Event fan-out (issue 28): many subscribers of one tenant's event stream, over SSE or
//! WebSocket, held by the bench's own client while agent runs complete. Every subscriber must
//! receive every completion; the delivery latency is from the event's `time` (set by
//! agent-runner as it publishes) to its receipt, on the same machine's clock.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::fleet::Fleet;
use crate::line::{Line, Results};
use crate::load::Report;
use crate::session::Session;

pub const SSE: &str = "event fan-out: SSE subscribers of one tenant, agent runs completing";
pub const WEBSOCKET: &str =
    "event fan-out: WebSocket subscribers of one tenant, agent runs completing";

/// Agent runs whose completions every subscriber must receive.
const RUNS: usize = 200;
/// Runs started per second while the subscribers listen (`SANKALPA_BENCH_FANOUT_RATE`): a
/// steady arrival, so the latency measured is delivery's, not the queue of a burst.
const RUN_RATE: &str = "50";
/// How long every subscriber may take to become live (to see a first completion).
const LIVE_WAIT: Duration = Duration::from_secs(60);
/// How long after the last run answered every delivery may take.
const DELIVERY_WAIT: Duration = Duration::from_secs(10);
const COMPLETED: &str = "sankalpa.agents.completed";

#[derive(Clone, Copy, PartialEq)]
pub enum Transport {
    Sse,
    WebSocket,
}

/// One completion as one subscriber received it.
struct Delivery {
    subscriber: usize,
    run_id: String,
    latency_us: u64,
}

/// Subscribers from `SANKALPA_BENCH_SUBSCRIBERS` (default 1,000).
pub fn subscribers() -> Result<usize> {
    crate::env_or("SANKALPA_BENCH_SUBSCRIBERS", "1000")
        .parse()
        .context("SANKALPA_BENCH_SUBSCRIBERS must be a whole number")
}

/// Opens the subscribers, waits until each is live, runs [`RUNS`] hello_world agents and
/// waits for every delivery (or [`DELIVERY_WAIT`]); prints a line whose latencies are the
/// deliveries', `errors` the missed and repeated ones, with the resident memory of the
/// gateway, the orchestrator (which reads the stream for the gateway's watchers) and
/// nats-server before and after.
pub async fn measure(
    session: &Arc<Session>,
    fleet: &Fleet,
    transport: Transport,
    results: &mut Results,
) -> Result<()> {
    let name = match transport {
        Transport::Sse => SSE,
        Transport::WebSocket => WEBSOCKET,
    };
    let count = subscribers()?;
    eprintln!("bench: {name}: {count} subscribers, {RUNS} runs");
    // (key before, key after, process): whose resident memory the line reports.
    let processes = [
        (
            "gateway_rss_before_bytes",
            "gateway_rss_after_bytes",
            fleet.pid("gateway"),
        ),
        (
            "orchestrator_rss_before_bytes",
            "orchestrator_rss_after_bytes",
            fleet.pid("chain-orchestrator"),
        ),
        (
            "nats_rss_before_bytes",
            "nats_rss_after_bytes",
            nats_server_pid(),
        ),
    ];
    let before: Vec<Option<u64>> = processes.iter().map(|(.., pid)| rss_bytes(*pid)).collect();

    let (deliveries, mut received) = mpsc::unbounded_channel();
    let live = Arc::new(AtomicUsize::new(0));
    let mut subscribers = JoinSet::new();
    for subscriber in 0..count {
        let (session, deliveries, live) = (Arc::clone(session), deliveries.clone(), live.clone());
        subscribers.spawn(async move {
            let outcome = match transport {
                Transport::Sse => sse(&session, subscriber, &deliveries, &live).await,
                Transport::WebSocket => websocket(&session, subscriber, &deliveries, &live).await,
            };
            if let Err(err) = &outcome {
                eprintln!("bench: subscriber {subscriber} ended: {err:#}");
            }
        });
    }
    drop(deliveries);

    // Live means the subscriber has received a completion: until then its stream may still be
    // joining the live feed, and what it missed would be the bench's doing.
    let deadline = Instant::now() + LIVE_WAIT;
    while live.load(Ordering::Relaxed) < count {
        if Instant::now() > deadline {
            bail!(
                "only {} of {count} subscribers live after {LIVE_WAIT:?}",
                live.load(Ordering::Relaxed)
            );
        }
        execute(session).await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        while received.try_recv().is_ok() {}
    }
    while received.try_recv().is_ok() {}

    let started = Instant::now();
    let expected = run_agents(session).await?;
    let mut report = Report::new();
    let mut seen = HashSet::with_capacity(count * RUNS);
    let mut repeated = 0u64;
    let deadline = Instant::now() + DELIVERY_WAIT;
    while seen.len() < count * RUNS {
        let delivery = match tokio::time::timeout_at(deadline.into(), received.recv()).await {
            Ok(Some(delivery)) => delivery,
            Ok(None) | Err(_) => break,
        };
        if !expected.contains(&delivery.run_id) {
            continue;
        }
        if seen.insert((delivery.subscriber, delivery.run_id)) {
            report
                .latency_us
                .saturating_record(delivery.latency_us.max(1));
        } else {
            repeated += 1;
        }
    }
    report.elapsed = started.elapsed();
    let missed = (count * RUNS - seen.len()) as u64;
    report.errors = missed + repeated;
    if report.errors > 0 {
        eprintln!("bench: {name}: {missed} deliveries missed, {repeated} repeated");
    }
    // After: the runs done, the subscribers still connected.
    let after: Vec<Option<u64>> = processes.iter().map(|(.., pid)| rss_bytes(*pid)).collect();
    subscribers.shutdown().await;

    let mut line = Line::new(name, count, &report)
        .with("runs", RUNS)
        .with("runs_per_second", rate()?)
        .with("missed", missed)
        .with("repeated", repeated);
    for ((before_key, after_key, _), (before, after)) in
        processes.iter().zip(before.into_iter().zip(after))
    {
        line = line.with(before_key, before).with(after_key, after);
    }
    results.print(&line);
    Ok(())
}

fn rate() -> Result<f64> {
    crate::env_or("SANKALPA_BENCH_FANOUT_RATE", RUN_RATE)
        .parse()
        .ok()
        .filter(|rate: &f64| *rate > 0.0)
        .context("SANKALPA_BENCH_FANOUT_RATE must be runs per second, above 0")
}

/// Runs [`RUNS`] hello_world agents, started at a steady [`RUN_RATE`]; gives their run ids.
async fn run_agents(session: &Arc<Session>) -> Result<HashSet<String>> {
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate()?));
    let mut runs = JoinSet::new();
    let mut ids = HashSet::with_capacity(RUNS);
    for _ in 0..RUNS {
        ticks.tick().await;
        let session = Arc::clone(session);
        runs.spawn(async move { execute(&session).await });
    }
    while let Some(run) = runs.join_next().await {
        ids.insert(run??);
    }
    Ok(ids)
}

/// One hello_world run; its id.
async fn execute(session: &Session) -> Result<String> {
    let response = session
        .client
        .post(session.url("/api/agents/execute"))
        .bearer_auth(&session.access_token)
        .json(&json!({ "agent": "hello_world", "input": { "name": "fan-out" } }))
        .send()
        .await
        .context("Failed to run an agent")?;
    let run: Value = crate::session::expect_success(response, "agent run")
        .await?
        .json()
        .await?;
    run["run_id"]
        .as_str()
        .map(str::to_owned)
        .context("an agent run answered without run_id")
}

/// Reads one CloudEvent (as JSON text); a completion becomes a delivery.
fn receive(
    subscriber: usize,
    event: &str,
    deliveries: &mpsc::UnboundedSender<Delivery>,
    live: &AtomicUsize,
    is_live: &mut bool,
) {
    let received_at = chrono::Utc::now();
    let Ok(event) = serde_json::from_str::<Value>(event) else {
        return;
    };
    if event["type"] != COMPLETED {
        return;
    }
    if !*is_live {
        *is_live = true;
        live.fetch_add(1, Ordering::Relaxed);
    }
    let (Some(run_id), Some(time)) = (
        event["data"]["run_id"].as_str(),
        event["time"]
            .as_str()
            .and_then(|time| chrono::DateTime::parse_from_rfc3339(time).ok()),
    ) else {
        return;
    };
    let latency = (received_at - time.with_timezone(&chrono::Utc))
        .num_microseconds()
        .unwrap_or(0)
        .max(0) as u64;
    let _ = deliveries.send(Delivery {
        subscriber,
        run_id: run_id.to_owned(),
        latency_us: latency,
    });
}

/// A subscriber of `GET /api/events?subjects=agents.>` on an HTTP/1.1 connection of its own,
/// reading the `data:` of each Server-Sent Event.
async fn sse(
    session: &Session,
    subscriber: usize,
    deliveries: &mpsc::UnboundedSender<Delivery>,
    live: &AtomicUsize,
) -> Result<()> {
    let address = &session.gateway.address;
    let stream = tokio::net::TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = http::Request::get("/api/events?subjects=agents.%3E")
        .header(http::header::HOST, session.gateway.host.clone())
        .header(
            http::header::AUTHORIZATION,
            format!("Bearer {}", session.access_token),
        )
        .header(http::header::ACCEPT, "text/event-stream")
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    if !response.status().is_success() {
        bail!("the event stream answered {}", response.status());
    }
    let mut body = response.into_body();
    let mut buffer = String::new();
    let mut is_live = false;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        buffer.push_str(&String::from_utf8_lossy(&data));
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer[..end]
                .lines()
                .filter_map(|line| line.strip_prefix("data:"))
                .map(str::trim_start)
                .collect::<Vec<_>>()
                .join("\n");
            buffer.drain(..end + 2);
            receive(subscriber, &event, deliveries, live, &mut is_live);
        }
    }
    bail!("the event stream ended")
}

/// A WebSocket client of `/ws?subjects=agents.>`, each text frame a CloudEvent.
async fn websocket(
    session: &Session,
    subscriber: usize,
    deliveries: &mpsc::UnboundedSender<Delivery>,
    live: &AtomicUsize,
) -> Result<()> {
    let url = format!(
        "ws://{}/ws?subjects=agents.%3E&access_token={}",
        session.gateway.address, session.access_token
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .context("Failed to open the WebSocket")?;
    let mut is_live = false;
    while let Some(message) = socket.next().await {
        if let tokio_tungstenite::tungstenite::Message::Text(text) = message? {
            receive(subscriber, &text, deliveries, live, &mut is_live);
        }
    }
    bail!("the WebSocket closed")
}

/// Resident memory of a process, from Linux's /proc.
fn rss_bytes(pid: Option<u32>) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// The local nats-server's process id, if one runs on this machine.
fn nats_server_pid() -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let name = std::fs::read_to_string(entry.path().join("comm")).ok()?;
            (name.trim() == "nats-server").then_some(pid)
        })
}
