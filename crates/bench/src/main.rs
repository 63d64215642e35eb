//! The load generator behind `make bench`.
//!
//! It starts its own fleet ([`fleet`]: the release binaries of every service as child
//! processes on free ports, with rate limits out of the way, publishing to a JetStream stream
//! of its own that is deleted at the end), or uses the gateway at `SANKALPA_BENCH_URL`. A fleet
//! of its own gets [`market::MARKET_ITEMS`] marketplace items, written straight into its
//! database. It registers one user, logs in, saves the memory entry the load scenario reads
//! ([`session`]), then measures, each with the same client ([`load`]):
//! - the floors ([`floors`]): an HTTP echo, the HTTP-to-gRPC hop, Postgres, Redis, JetStream;
//! - every request [`scenarios::Scenario`] at each of its concurrencies, judged by the ratio to
//!   its floor at the same concurrency;
//! - the chain scenarios ([`chains`]), the event fan-out to 1,000 subscribers ([`fanout`]) and
//!   webhook deliveries to a local receiver ([`webhooks`]).
//!
//! One JSON line per scenario and concurrency goes to stdout
//! (`{"scenario","concurrency","requests","errors","throughput_rps","p50_us","p99_us",...}`),
//! and all of them, with the machine's description, to a results file ([`line::Results`]).
//! With `SANKALPA_BENCH_COLLECTOR=live` the services export their spans and metrics to a
//! collector the bench serves ([`collector`]).
//! `sankalpa-bench compare` reads such files for an A/B ([`compare`]), `sankalpa-bench report`
//! draws them ([`report`]). Progress and diagnostics go to
//! stderr, the services' logs to files next to the binaries.

mod chains;
mod collector;
mod compare;
mod fanout;
mod fleet;
mod floors;
mod line;
mod load;
mod market;
mod report;
mod scenarios;
mod session;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use reqwest::Client;

use crate::fanout::Transport;
use crate::fleet::Fleet;
use crate::line::{Floors, Line, Results};
use crate::load::{HttpOp, closed_loop};

fn main() -> Result<()> {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    match arguments.first().map(String::as_str) {
        Some("compare") => return compare::run(&arguments[1..]),
        Some("report") => return report::run(&arguments[1..]),
        _ => {}
    }
    let seconds: u64 = env_or("SANKALPA_BENCH_SECONDS", "10")
        .parse()
        .context("SANKALPA_BENCH_SECONDS must be a whole number of seconds")?;
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Ok(threads) = std::env::var("SANKALPA_BENCH_THREADS") {
        runtime.worker_threads(threads.parse().context("SANKALPA_BENCH_THREADS")?);
    }
    let runtime = runtime
        .enable_all()
        .build()
        .context("Failed to start tokio")?;
    // The floors' servers run apart from the bench's client, as a service runs in its own
    // process.
    let floor_runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name("floor-server")
        .enable_all()
        .build()
        .context("Failed to start tokio")?;
    let floor_servers = floors::Servers::start(&floor_runtime)?;
    let collector = if collector::wanted()? {
        Some(collector::start(&floor_runtime)?)
    } else {
        None
    };

    // The fleet lives in `main`, so its children are killed on every way out: success, error,
    // panic (unwinding drops it) and Ctrl-C/SIGTERM (the select below returns).
    let mut fleet = Fleet::default();
    let mut results = Results::new();
    if let Some((addr, _)) = &collector {
        let endpoint = format!("http://{addr}");
        fleet.export_to(&endpoint);
        results.collector(&endpoint);
    }
    let outcome = runtime.block_on(async {
        let result = tokio::select! {
            result = bench(&mut fleet, &floor_servers, &mut results, Duration::from_secs(seconds)) => result,
            signal = shutdown_signal() => {
                signal.and_then(|()| bail!("interrupted"))
            }
        };
        fleet.stop();
        fleet.remove_stream().await;
        result
    });
    if let Some((_, received)) = &collector {
        eprintln!(
            "bench: the collector took {} spans and {} metrics exports",
            received.spans.load(std::sync::atomic::Ordering::Relaxed),
            received
                .metric_exports
                .load(std::sync::atomic::Ordering::Relaxed)
        );
    }
    floor_runtime.shutdown_background();
    let written = results.write()?;
    eprintln!("bench: results in {}", written.display());
    outcome
}

async fn bench(
    fleet: &mut Fleet,
    floor_servers: &floors::Servers,
    results: &mut Results,
    duration: Duration,
) -> Result<()> {
    let client = Client::builder()
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()
        .context("Failed to build the HTTP client")?;
    let base = match std::env::var("SANKALPA_BENCH_URL") {
        Ok(url) if !url.trim().is_empty() => url.trim().trim_end_matches('/').to_owned(),
        _ => fleet.start(&client).await?,
    };
    fleet::wait_ready(&client, &format!("{base}/readyz"), fleet).await?;
    let session = Arc::new(session::log_in(client, base).await?);
    session::seed_memory(&session).await?;

    let only = Only::from_env();
    let scenarios: Vec<_> = scenarios::all()
        .into_iter()
        .filter(|scenario| only.wants(scenario.name))
        .collect();
    let wanted_floors: Vec<&'static str> = floors::ALL
        .iter()
        .map(|(floor, _)| *floor)
        .filter(|floor| only.wants(floor) || scenarios.iter().any(|s| s.floor == *floor))
        .collect();
    let mut floors = Floors::default();
    let infra = floors::Infra {
        database_url: env_or(
            "SANKALPA_DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/sankalpa_bench",
        ),
        redis_url: env_or("SANKALPA_REDIS_URL", "redis://127.0.0.1:6379"),
        nats_url: env_or("SANKALPA_NATS_URL", "nats://127.0.0.1:4222"),
    };
    floors::measure(
        floor_servers,
        &infra,
        &wanted_floors,
        duration,
        &mut floors,
        results,
    )
    .await?;

    for scenario in &scenarios {
        for &concurrency in scenario.concurrencies {
            eprintln!(
                "bench: {} at concurrency {concurrency} for {}s",
                scenario.name,
                duration.as_secs()
            );
            let request = {
                let (session, build) = (Arc::clone(&session), scenario.request);
                Arc::new(move || build(&session))
            };
            let report = closed_loop(concurrency, duration, || {
                HttpOp::new(Arc::clone(&session.gateway), request.clone())
            })
            .await?;
            let line = Line::new(scenario.name, concurrency, &report);
            results.print(&floors.judge(line, scenario.floor));
        }
    }
    if only.wants(chains::OVERHEAD) {
        chains::overhead(&session, duration, results).await?;
    }
    if only.wants(chains::BURST) {
        chains::burst(&session, results).await?;
    }
    if only.wants(chains::APPROVAL) {
        chains::approval(&session, duration, results).await?;
    }
    if only.wants(chains::MAP) {
        chains::map(&session, duration, results).await?;
    }
    if only.wants(fanout::SSE) {
        fanout::measure(&session, fleet, Transport::Sse, results).await?;
    }
    if only.wants(fanout::WEBSOCKET) {
        fanout::measure(&session, fleet, Transport::WebSocket, results).await?;
    }
    if only.wants(webhooks::BURST) || only.wants(webhooks::STEADY) {
        let prefix = fleet
            .subject_prefix()
            .unwrap_or_else(|| env_or("SANKALPA_SUBJECT_PREFIX", ""));
        webhooks::measure(
            &session,
            &prefix,
            duration,
            |name| only.wants(name),
            results,
        )
        .await?;
    }
    Ok(())
}

/// The scenarios `SANKALPA_BENCH_ONLY` asks for: those whose name contains one of its
/// comma-separated words (case-insensitive); all of them when it is unset or empty.
struct Only(Vec<String>);

impl Only {
    fn from_env() -> Self {
        let words = std::env::var("SANKALPA_BENCH_ONLY").unwrap_or_default();
        Self(
            words
                .split(',')
                .map(|word| word.trim().to_lowercase())
                .filter(|word| !word.is_empty())
                .collect(),
        )
    }

    fn wants(&self, scenario: &str) -> bool {
        let scenario = scenario.to_lowercase();
        self.0.is_empty() || self.0.iter().any(|word| scenario.contains(word.as_str()))
    }
}

pub fn env_or(name: &str, default: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => value,
        _ => default.to_owned(),
    }
}

async fn shutdown_signal() -> Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
