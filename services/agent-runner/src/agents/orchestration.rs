//! The orchestration and meta agents: planner (a goal into a chain of agents, see `planning.rs`), execution_manager
//! (checks a step graph and schedules it in waves), session_replayer (rebuilds a timeline from
//! recorded events), multi_agent_memory_manager (merges what several agents remembered,
//! resolving conflicts) and version_tracker (the next semantic version and its changelog).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AgentError, Context, parse};

/// A goal into a plan: the model's reading when the run has an LLM
/// ([`model_planner`](super::model_planner)), else the rules' ([`planning`](super::planning)).
pub async fn plan(ctx: &mut Context, input: &Value) -> Result<Value, AgentError> {
    super::model_planner::plan(ctx, input).await
}

#[derive(Deserialize)]
struct Step {
    id: String,
    #[serde(default)]
    needs: Vec<String>,
    #[serde(default)]
    duration_ms: Option<u64>,
}

#[derive(Deserialize)]
struct ScheduleInput {
    steps: Vec<Step>,
}

pub fn schedule(input: &Value) -> Result<Value, AgentError> {
    let input: ScheduleInput = parse(input)?;
    let mut problems = Vec::new();
    let mut index = HashMap::new();
    for (i, step) in input.steps.iter().enumerate() {
        if index.insert(step.id.as_str(), i).is_some() {
            problems.push(format!("step id {:?} is used twice", step.id));
        }
    }
    for step in &input.steps {
        for need in &step.needs {
            if !index.contains_key(need.as_str()) {
                problems.push(format!("{} needs {need:?}, which is not a step", step.id));
            }
        }
    }
    // Kahn's algorithm, level by level: each wave's steps can run at once.
    let mut remaining: Vec<&Step> = input.steps.iter().collect();
    let mut finished: HashMap<&str, u64> = HashMap::new();
    let mut waves: Vec<Vec<&str>> = Vec::new();
    let mut via: HashMap<&str, &str> = HashMap::new();
    while !remaining.is_empty() && problems.is_empty() {
        let (ready, blocked): (Vec<&Step>, Vec<&Step>) = remaining
            .into_iter()
            .partition(|s| s.needs.iter().all(|n| finished.contains_key(n.as_str())));
        if ready.is_empty() {
            let mut cycle: Vec<&str> = blocked.iter().map(|s| s.id.as_str()).collect();
            cycle.sort_unstable();
            problems.push(format!(
                "these steps wait on each other in a cycle: {}",
                cycle.join(", ")
            ));
            break;
        }
        let mut wave = Vec::new();
        for step in &ready {
            let (start, before) = step
                .needs
                .iter()
                .map(|n| (finished[n.as_str()], n.as_str()))
                .max()
                .unwrap_or((0, ""));
            if !before.is_empty() {
                via.insert(step.id.as_str(), before);
            }
            finished.insert(step.id.as_str(), start + step.duration_ms.unwrap_or(0));
            wave.push(step.id.as_str());
        }
        waves.push(wave);
        remaining = blocked;
    }
    if !problems.is_empty() {
        return Ok(
            json!({"valid": false, "problems": problems, "waves": [], "critical_path": [], "estimated_ms": 0}),
        );
    }
    let (mut last, estimated) = finished
        .iter()
        .max_by_key(|(id, end)| (**end, std::cmp::Reverse(**id)))
        .map(|(id, end)| (*id, *end))
        .unwrap_or(("", 0));
    let mut path = vec![last];
    while let Some(previous) = via.get(last) {
        path.push(previous);
        last = previous;
    }
    path.reverse();
    Ok(json!({
        "valid": true,
        "problems": [],
        "waves": waves,
        "max_parallelism": waves.iter().map(Vec::len).max().unwrap_or(0),
        "critical_path": if estimated == 0 { vec![] } else { path },
        "estimated_ms": estimated,
    }))
}

#[derive(Deserialize)]
struct RecordedEvent {
    #[serde(rename = "type")]
    kind: String,
    time: DateTime<Utc>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    data: Value,
}

#[derive(Deserialize)]
struct ReplayInput {
    events: Vec<RecordedEvent>,
}

pub fn replay(ctx: &mut Context, input: &Value) -> Result<Value, AgentError> {
    let mut input: ReplayInput = parse(input)?;
    input.events.sort_by_key(|e| e.time);
    let start = input
        .events
        .first()
        .map(|e| e.time)
        .ok_or_else(|| AgentError::InvalidInput("no events to replay".to_owned()))?;
    let mut timeline = Vec::new();
    let mut runs: BTreeMap<String, Value> = BTreeMap::new();
    let mut transcript = String::from("| +ms | event | about |\n|---|---|---|\n");
    for event in &input.events {
        let at = (event.time - start).num_milliseconds();
        let action = event.kind.rsplit('.').next().unwrap_or_default();
        let run = event
            .data
            .get("run_id")
            .or_else(|| event.data.get("step_id"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let about = event
            .data
            .get("agent")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| event.subject.clone())
            .unwrap_or_default();
        timeline.push(json!({"at_ms": at, "type": event.kind, "about": about, "run_id": run}));
        let _ = writeln!(transcript, "| {at} | {} | {about} |", event.kind);
        if run.is_empty() {
            continue;
        }
        let entry = runs.entry(run.clone()).or_insert_with(
            || json!({"run_id": run, "agent": about, "status": "running", "started_ms": at}),
        );
        match action {
            "started" => entry["started_ms"] = json!(at),
            "completed" | "failed" | "cancelled" => {
                let status = event
                    .data
                    .get("status")
                    .and_then(Value::as_str)
                    .unwrap_or(action)
                    .to_owned();
                let began = entry["started_ms"].as_i64().unwrap_or(at);
                entry["status"] = json!(status);
                entry["duration_ms"] = json!(at - began);
                if let Some(error) = event.data.get("error").filter(|e| !e.is_null()) {
                    entry["error"] = error.clone();
                }
            }
            _ => {}
        }
    }
    let runs: Vec<Value> = runs.into_values().collect();
    let failed = runs.iter().filter(|r| r["status"] == "failed").count();
    let unfinished = runs.iter().filter(|r| r["status"] == "running").count();
    let outcome = if failed > 0 {
        "failed"
    } else if unfinished > 0 {
        "incomplete"
    } else {
        "completed"
    };
    ctx.write("replay/timeline.md", transcript)?;
    Ok(json!({
        "outcome": outcome,
        "duration_ms": input.events.last().map_or(0, |e| (e.time - start).num_milliseconds()),
        "runs": runs,
        "timeline": timeline,
        "failed": failed,
        "unfinished": unfinished,
    }))
}

#[derive(Deserialize)]
struct Memory {
    agent: String,
    key: String,
    value: Value,
    #[serde(default)]
    version: Option<u64>,
    #[serde(default)]
    time: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
struct MergeInput {
    entries: Vec<Memory>,
    #[serde(default)]
    strategy: Option<String>,
}

/// Merges `entries`, and with a session, what the session already holds (as the agent
/// "session"), writing the merged values that differ back to it.
pub async fn merge_memory(ctx: &mut Context, input: &Value) -> Result<Value, AgentError> {
    let mut input: MergeInput = parse(input)?;
    let mut before = BTreeMap::new();
    if let Some(memory) = &ctx.memory {
        for entry in memory.entries().await? {
            before.insert(entry.key.clone(), entry.value.clone());
            input.entries.push(Memory {
                agent: "session".to_owned(),
                key: entry.key,
                value: entry.value,
                version: Some(entry.version),
                time: entry.updated_at,
            });
        }
    }
    let strategy = input.strategy.unwrap_or_else(|| "latest".to_owned());
    let mut by_key: BTreeMap<&str, Vec<(usize, &Memory)>> = BTreeMap::new();
    for (i, entry) in input.entries.iter().enumerate() {
        by_key
            .entry(entry.key.as_str())
            .or_default()
            .push((i, entry));
    }
    let mut merged = serde_json::Map::new();
    let mut conflicts = Vec::new();
    let mut contributions: BTreeMap<&str, usize> = BTreeMap::new();
    for (key, candidates) in &by_key {
        // The last written wins by default: by time, else version, else input order.
        let winner = match strategy.as_str() {
            "latest" => candidates
                .iter()
                .max_by_key(|(i, m)| (m.time, m.version, *i)),
            "highest_version" => candidates
                .iter()
                .max_by_key(|(i, m)| (m.version, m.time, *i)),
            "first" => candidates
                .iter()
                .min_by_key(|(i, m)| (m.time.is_none(), m.time, *i)),
            other => {
                return Err(AgentError::InvalidInput(format!(
                    "unknown strategy {other:?}: use latest, highest_version or first"
                )));
            }
        }
        .map(|(_, m)| *m)
        .expect("every key has a candidate");
        let mut values: Vec<&Value> = candidates.iter().map(|(_, m)| &m.value).collect();
        values.dedup();
        if values.len() > 1 {
            conflicts.push(json!({
                "key": key,
                "candidates": candidates.iter().map(|(_, m)| json!({"agent": m.agent, "value": m.value, "version": m.version, "time": m.time})).collect::<Vec<_>>(),
                "chosen_from": winner.agent,
            }));
        }
        *contributions.entry(winner.agent.as_str()).or_default() += 1;
        merged.insert((*key).to_owned(), winner.value.clone());
    }
    let mut saved = Vec::new();
    if let Some(memory) = &ctx.memory {
        for (key, value) in &merged {
            if before.get(key) != Some(value) {
                memory.save(key, value).await?;
                saved.push(key.clone());
            }
        }
    }
    Ok(json!({
        "strategy": strategy,
        "merged": merged,
        "conflicts": conflicts,
        "keys_by_agent": contributions,
        "saved_to_session": saved,
    }))
}

#[derive(Deserialize)]
struct ReleaseInput {
    current_version: String,
    changes: Vec<String>,
    #[serde(default)]
    release_date: Option<String>,
}

pub fn release(ctx: &mut Context, input: &Value) -> Result<Value, AgentError> {
    let input: ReleaseInput = parse(input)?;
    let core = input.current_version.trim_start_matches('v');
    let parts: Vec<u64> = core
        .split('.')
        .map(|p| p.parse())
        .collect::<Result<_, _>>()
        .map_err(|_| {
            AgentError::InvalidInput(format!(
                "{:?} is not MAJOR.MINOR.PATCH",
                input.current_version
            ))
        })?;
    let [major, minor, patch] = parts[..] else {
        return Err(AgentError::InvalidInput(format!(
            "{:?} is not MAJOR.MINOR.PATCH",
            input.current_version
        )));
    };
    let mut groups: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut level = 0;
    for change in &input.changes {
        let (head, description) = change
            .split_once(':')
            .map_or(("", change.as_str()), |(h, d)| (h.trim(), d.trim()));
        let breaking = head.ends_with('!') || change.contains("BREAKING CHANGE");
        let kind = head
            .trim_end_matches('!')
            .split('(')
            .next()
            .unwrap_or_default();
        let (section, bump) = match kind {
            _ if breaking => ("Breaking changes", 3),
            "feat" => ("Features", 2),
            "fix" => ("Fixes", 1),
            "perf" => ("Performance", 1),
            "docs" => ("Documentation", 0),
            _ => ("Other", 0),
        };
        level = level.max(bump);
        groups
            .entry(section)
            .or_default()
            .push(description.to_owned());
    }
    // Before 1.0.0 a breaking change moves the minor version, as semver allows.
    let (next, bump) = match level {
        3 if major == 0 => (format!("0.{}.0", minor + 1), "minor"),
        3 => (format!("{}.0.0", major + 1), "major"),
        2 => (format!("{major}.{}.0", minor + 1), "minor"),
        1 => (format!("{major}.{minor}.{}", patch + 1), "patch"),
        _ => (format!("{major}.{minor}.{patch}"), "none"),
    };
    let date = input
        .release_date
        .unwrap_or_else(|| "unreleased".to_owned());
    let mut changelog = format!("## {next} ({date})\n");
    for section in [
        "Breaking changes",
        "Features",
        "Fixes",
        "Performance",
        "Documentation",
        "Other",
    ] {
        if let Some(items) = groups.get(section) {
            let _ = write!(
                changelog,
                "\n### {section}\n\n{}\n",
                items
                    .iter()
                    .map(|i| format!("- {i}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
    ctx.write("CHANGELOG.md", changelog.clone())?;
    Ok(
        json!({"current": input.current_version, "next": next, "bump": bump, "changelog": changelog}),
    )
}
