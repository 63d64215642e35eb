//! The two chain scenarios, measured their own way: [`overhead`] (one run after another, the
//! orchestrator's own time per step) and [`burst`] (many runs started at once).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::line::{Line, Results};
use crate::load::{Report, new_histogram};
use crate::session::Session;

/// Steps of the chain whose orchestration overhead is measured (issue 5).
const OVERHEAD_STEPS: usize = 10;
/// Runs started at once, and steps of each, in the burst scenario (issue 5).
const BURST_RUNS: usize = 500;
const BURST_STEPS: usize = 3;
pub const OVERHEAD: &str = "chain orchestration overhead (10 sequential hello_world steps)";
pub const BURST: &str = "concurrent chain runs (3 hello_world steps)";
pub const APPROVAL: &str = "approval resume (approve to run completed, one hello_world after)";
/// How often the approval scenario reads its run: the resolution of its latency.
const APPROVAL_POLL: Duration = Duration::from_millis(1);
pub const MAP: &str = "map step over 100 items (hello_world, max_parallel 8)";
/// Items of the map scenario's list.
const MAP_ITEMS: usize = 100;
/// How long a waited chain run may take before the bench counts it an error.
const RUN_WAIT: Duration = Duration::from_secs(120);

/// A chain of `steps` hello_world steps, each needing the one before. Each maps its input from
/// the chain's: hello_world takes nothing but a name, so the default input (the chain input
/// merged with the previous step's output) would not fit it.
fn greeting_chain(steps: usize) -> Value {
    let steps: Vec<Value> = (0..steps)
        .map(|index| {
            let mut step = json!({
                "id": format!("s{index}"),
                "agent": "hello_world",
                "input": { "name": "${input.name}" },
            });
            if index > 0 {
                step["needs"] = json!([format!("s{}", index - 1)]);
            }
            step
        })
        .collect();
    json!({ "steps": steps })
}

/// Runs `definition` through the gateway and waits for its end: the finished run, or why not.
async fn run_chain(session: &Session, definition: &Value) -> Result<Value, String> {
    run_chain_with(session, definition, json!({ "name": "bench" })).await
}

async fn run_chain_with(
    session: &Session,
    definition: &Value,
    input: Value,
) -> Result<Value, String> {
    let response = session
        .client
        .post(session.url("/api/chains/execute"))
        .bearer_auth(&session.access_token)
        .timeout(RUN_WAIT + Duration::from_secs(5))
        .json(&json!({
            "definition": definition,
            "input": input,
            "wait": true,
            "wait_timeout_ms": RUN_WAIT.as_millis() as u64,
        }))
        .send()
        .await
        .map_err(|err| err.to_string())?;
    let status = response.status();
    let run: Value = response.json().await.map_err(|err| err.to_string())?;
    if status != reqwest::StatusCode::OK || run["status"] != "completed" {
        return Err(format!(
            "HTTP {status}, run {}: {}",
            run["status"], run["error"]
        ));
    }
    Ok(run)
}

fn instant(value: &Value) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    chrono::DateTime::parse_from_rfc3339(value.as_str()?).ok()
}

/// The orchestrator's own time per step of a finished run, in microseconds: the run's wall time
/// (created to finished, as the orchestrator recorded them) less the agents' time (each step's
/// duration), over the steps.
fn overhead_per_step_us(run: &Value) -> Option<u64> {
    let wall = instant(&run["finished_at"])? - instant(&run["created_at"])?;
    let steps = run["steps"].as_array()?;
    let agents_ms: u64 = steps
        .iter()
        .map(|step| step["duration_ms"].as_u64().unwrap_or(0))
        .sum();
    let wall_us = u64::try_from(wall.num_microseconds()?).ok()?;
    Some(wall_us.saturating_sub(agents_ms * 1000) / steps.len().max(1) as u64)
}

/// Orchestration overhead (issue 5: <= 2 ms per step at p50): one client runs a 10-step
/// hello_world chain after another for `duration`, waiting for each. Besides the usual keys
/// (`p50_us`/`p99_us` are the whole run as the client waited for it), the line has `steps` and
/// the per-step overhead's `step_overhead_p50_us` and `step_overhead_p99_us`.
pub async fn overhead(session: &Session, duration: Duration, results: &mut Results) -> Result<()> {
    let name = OVERHEAD;
    eprintln!("bench: {name} for {}s", duration.as_secs());
    let definition = greeting_chain(OVERHEAD_STEPS);
    let mut report = Report::new();
    let mut overhead_us = new_histogram();
    let started = Instant::now();
    while started.elapsed() < duration {
        let sent = Instant::now();
        let outcome = run_chain(session, &definition).await.and_then(|run| {
            overhead_per_step_us(&run).ok_or_else(|| format!("a run without timings: {run}"))
        });
        let took = sent.elapsed();
        if let Ok(overhead) = outcome {
            overhead_us.saturating_record(overhead.max(1));
        }
        report.record(took, outcome.map(drop));
    }
    report.elapsed = started.elapsed();
    report.warn_of_errors();
    results.print(
        &Line::new(name, 1, &report)
            .with("steps", OVERHEAD_STEPS)
            .with("step_overhead_p50_us", overhead_us.value_at_quantile(0.50))
            .with("step_overhead_p99_us", overhead_us.value_at_quantile(0.99)),
    );
    Ok(())
}

/// Many runs at once (issue 5: 500 runs of a 3-step chain complete without error): every run
/// is started together, each waited for by its own client; `throughput_rps` is runs finished
/// per second over the whole burst, `p50_us`/`p99_us` a run's time as its client waited. A
/// first burst, unmeasured, warms the fleet: the first time it carries 500 runs at once, its
/// services open their Postgres connections (each a new backend, whose statements are
/// prepared anew) and their allocators map fresh pages, a cost paid once per process.
pub async fn burst(session: &Arc<Session>, results: &mut Results) -> Result<()> {
    let name = BURST;
    let definition = Arc::new(greeting_chain(BURST_STEPS));
    eprintln!("bench: {name}: warming up with {BURST_RUNS} at once");
    let warm_up = burst_once(session, &definition).await?;
    eprintln!(
        "bench: warm-up burst: {:.1} runs/s, {} errors",
        BURST_RUNS as f64 / warm_up.elapsed.as_secs_f64(),
        warm_up.errors
    );
    eprintln!("bench: {name}: {BURST_RUNS} at once");
    let report = burst_once(session, &definition).await?;
    report.warn_of_errors();
    results.print(&Line::new(name, BURST_RUNS, &report));
    Ok(())
}

async fn burst_once(session: &Arc<Session>, definition: &Arc<Value>) -> Result<Report> {
    let started = Instant::now();
    let mut runs = JoinSet::new();
    for _ in 0..BURST_RUNS {
        let session = Arc::clone(session);
        let definition = Arc::clone(definition);
        runs.spawn(async move {
            let sent = Instant::now();
            let outcome = run_chain(&session, &definition).await.map(|_| ());
            (sent.elapsed(), outcome)
        });
    }
    let mut report = Report::new();
    while let Some(run) = runs.join_next().await {
        let (took, outcome) = run.context("a bench run panicked")?;
        report.record(took, outcome);
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

/// A map step (issue 19): one run after another of a chain whose one step runs hello_world
/// once per item of a 100-item list, 8 at a time, each item an exactly-once agent run with a
/// row of its own. `p50_us`/`p99_us` are the whole run; the line adds `items` and
/// `items_per_second` (items finished per second of run time, at p50).
pub async fn map(session: &Session, duration: Duration, results: &mut Results) -> Result<()> {
    let name = MAP;
    eprintln!("bench: {name} for {}s", duration.as_secs());
    let definition = json!({ "steps": [{
        "id": "each",
        "agent": "hello_world",
        "for_each": "${input.names}",
        "max_parallel": 8,
        "input": { "name": "${item}" },
    }]});
    let names: Vec<String> = (0..MAP_ITEMS).map(|n| format!("item-{n}")).collect();
    let input = json!({ "names": names });
    let mut report = Report::new();
    let started = Instant::now();
    while started.elapsed() < duration {
        let sent = Instant::now();
        let outcome = run_chain_with(session, &definition, input.clone())
            .await
            .and_then(|run| match run["steps"][0]["output"].as_array() {
                Some(outputs) if outputs.len() == MAP_ITEMS => Ok(()),
                _ => Err(format!("a map run without {MAP_ITEMS} outputs: {run}")),
            });
        report.record(sent.elapsed(), outcome);
    }
    report.elapsed = started.elapsed();
    report.warn_of_errors();
    let items_per_second = MAP_ITEMS as f64 / (report.p50_us().max(1) as f64 / 1e6);
    results.print(&Line::new(name, 1, &report).with("items", MAP_ITEMS).with(
        "items_per_second",
        crate::line::rounded(items_per_second, 1),
    ));
    Ok(())
}

/// Approval resume (issue 19): one run after another of a chain that waits for an approval and
/// then runs one hello_world step. Once the run is `waiting`, the bench approves it and reads
/// the run every [`APPROVAL_POLL`] until it has completed: `p50_us`/`p99_us` are from the
/// approve request to the completed run as the client sees it (the parked run taken up again,
/// its next step run, the run finished).
pub async fn approval(session: &Session, duration: Duration, results: &mut Results) -> Result<()> {
    let name = APPROVAL;
    eprintln!("bench: {name} for {}s", duration.as_secs());
    let definition = json!({ "steps": [
        { "id": "approve", "approval": { "prompt": "Go on?", "approvers": ["role:admin"] } },
        { "id": "after", "agent": "hello_world", "needs": ["approve"],
          "input": { "name": "${input.name}" } },
    ]});
    let mut report = Report::new();
    let started = Instant::now();
    while started.elapsed() < duration {
        let outcome = approve_one(session, &definition).await;
        match outcome {
            Ok(took) => report.record(took, Ok(())),
            Err(err) => report.record(Duration::ZERO, Err(err)),
        }
    }
    report.elapsed = started.elapsed();
    report.warn_of_errors();
    results.print(&Line::new(name, 1, &report));
    Ok(())
}

/// Starts a run of `definition`, waits until it waits for its approval, approves it and waits
/// until it completes; gives the time from the approval to the completed run.
async fn approve_one(session: &Session, definition: &Value) -> Result<Duration, String> {
    let response = session
        .client
        .post(session.url("/api/chains/execute"))
        .bearer_auth(&session.access_token)
        .json(&json!({ "definition": definition, "input": { "name": "bench" } }))
        .send()
        .await
        .map_err(|err| err.to_string())?;
    let run: Value = response.json().await.map_err(|err| err.to_string())?;
    let id = run["id"]
        .as_str()
        .ok_or_else(|| format!("a run was not accepted: {run}"))?
        .to_owned();
    wait_for_status(session, &id, "waiting").await?;
    let approved = Instant::now();
    let response = session
        .client
        .post(session.url(&format!("/api/chains/runs/{id}/steps/approve/approve")))
        .bearer_auth(&session.access_token)
        .json(&json!({}))
        .send()
        .await
        .map_err(|err| err.to_string())?;
    if !response.status().is_success() {
        return Err(format!("the approval answered {}", response.status()));
    }
    wait_for_status(session, &id, "completed").await?;
    Ok(approved.elapsed())
}

async fn wait_for_status(session: &Session, id: &str, status: &str) -> Result<(), String> {
    let deadline = Instant::now() + RUN_WAIT;
    loop {
        let run: Value = session
            .client
            .get(session.url(&format!("/api/chains/runs/{id}")))
            .bearer_auth(&session.access_token)
            .send()
            .await
            .map_err(|err| err.to_string())?
            .json()
            .await
            .map_err(|err| err.to_string())?;
        if run["status"] == status {
            return Ok(());
        }
        if matches!(run["status"].as_str(), Some("failed" | "cancelled"))
            || Instant::now() > deadline
        {
            return Err(format!("run {id} did not become {status}: {run}"));
        }
        tokio::time::sleep(APPROVAL_POLL).await;
    }
}
