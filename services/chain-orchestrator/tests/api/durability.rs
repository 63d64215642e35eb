use std::collections::HashMap;
use std::time::Duration;

use sankalpa_chain_orchestrator::{Config, Orchestrator};
use sankalpa_kit::service::Service;
use sankalpa_proto::v1 as pb;
use sankalpa_proto::v1::chain_service_client::ChainServiceClient;
use serde_json::json;

use crate::{action_of, connect, json, start, start_with, step};

fn three_steps() -> serde_json::Value {
    json!({"steps": [
        {"id": "a", "agent": "work", "input": {"tag": "a"}},
        {"id": "b", "agent": "work", "needs": ["a"], "input": {"tag": "b", "sleep_ms": 1500}},
        {"id": "c", "agent": "work", "needs": ["b"], "input": {"tag": "c"}},
    ]})
}

#[sqlx::test(migrations = false)]
async fn a_killed_orchestrators_run_is_finished_by_the_next_one(pool: sqlx::PgPool) {
    let mut stack = start(pool.clone()).await;
    // The first orchestrator runs as a bare task, so the test can kill it without any shutdown.
    let config = Config::for_tests(
        stack.infra.clone(),
        &stack.auth.grpc_url(),
        &stack.agents.url(),
    );
    let doomed = Orchestrator::build(config.clone(), pool.clone())
        .await
        .unwrap();
    let url = format!("http://{}", doomed.grpc_addr().expect("it serves gRPC"));
    let task = tokio::spawn(doomed.serve(std::future::pending()));
    stack.chains = ChainServiceClient::connect(url).await.unwrap();
    let run = stack.execute(three_steps(), json!({}), false).await;

    called(&stack, "b").await;
    task.abort();
    let _ = task.await;

    let _successor = stack.start_successor().await;
    let run = stack
        .run_until(&run.id, |run| run.status() == pb::ChainRunStatus::Completed)
        .await;
    let record = &stack.agents.record;
    assert_eq!(
        record.tagged("a").len(),
        1,
        "a completed before the kill and did not run again"
    );
    let b_calls: Vec<(String, bool)> = record
        .tagged("b")
        .into_iter()
        .map(|call| (call.run_id, call.first_ask))
        .collect();
    let attempt = format!("{}-b-1", run.id);
    assert_eq!(
        b_calls,
        [(attempt.clone(), true), (attempt, false)],
        "b was interrupted and its attempt asked for again, under the same agent run id; the \
         replica that inserted the run says its first request is the first for its id, the one \
         that took it over has agent-runner look for a kept outcome"
    );
    assert_eq!(record.tagged("c").len(), 1);
    assert_eq!(step(&run, "b").attempts, 1);
    assert_eq!(step(&run, "a").attempts, 1);
    let seen: Vec<String> = stack.watched(&run.id).await.iter().map(action_of).collect();
    assert_eq!(
        seen,
        [
            "run.started",
            "step.started a",
            "step.completed a",
            "step.started b",
            "step.completed b",
            "step.started c",
            "step.completed c",
            "run.completed",
        ],
        "the taken-over attempt is not announced twice"
    );
}

#[sqlx::test(migrations = false)]
async fn a_step_waits_out_an_agent_runner_outage_without_spending_its_retries(pool: sqlx::PgPool) {
    let mut stack = start(pool).await;
    let run = stack
        .execute(
            json!({"steps": [
                {"id": "a", "agent": "work", "input": {"tag": "a", "unavailable_times": 3}},
            ]}),
            json!({}),
            true,
        )
        .await;
    assert_eq!(run.status(), pb::ChainRunStatus::Completed, "{run:#?}");
    assert_eq!(step(&run, "a").attempts, 1);
    let calls: Vec<String> = stack
        .agents
        .record
        .tagged("a")
        .into_iter()
        .map(|call| call.run_id)
        .collect();
    assert_eq!(calls, vec![format!("{}-a-1", run.id); 4]);
    let events = stack.watched(&run.id).await;
    let seen: Vec<String> = events.iter().map(action_of).collect();
    assert_eq!(
        seen,
        [
            "run.started",
            "step.started a",
            "step.waiting a",
            "step.completed a",
            "run.completed",
        ]
    );
    let waiting = json(&events[2].data_json);
    assert_eq!(waiting["reason"]["code"], "unavailable");
    assert_eq!(waiting["attempt"], 1);
}

#[sqlx::test(migrations = false)]
async fn an_outage_past_the_step_timeout_fails_the_attempt_as_unavailable(pool: sqlx::PgPool) {
    let mut stack = start(pool).await;
    let run = stack
        .execute(
            json!({"steps": [
                {"id": "a", "agent": "work", "timeout_ms": 600,
                 "input": {"tag": "a", "unavailable_times": 1000}},
            ]}),
            json!({}),
            true,
        )
        .await;
    assert_eq!(run.status(), pb::ChainRunStatus::Failed, "{run:#?}");
    let a = step(&run, "a");
    assert_eq!(a.attempts, 1);
    assert_eq!(a.error.as_ref().expect("an error").code, "unavailable");
    assert!(
        stack.agents.record.tagged("a").len() >= 2,
        "the attempt asked again before giving up"
    );
}

#[sqlx::test(migrations = false)]
async fn a_run_goes_on_when_agent_runner_comes_back(pool: sqlx::PgPool) {
    let mut stack = start(pool).await;
    let run = stack
        .execute(
            json!({"steps": [
                {"id": "a", "agent": "work", "input": {"tag": "a", "sleep_ms": 300}},
                {"id": "b", "agent": "work", "needs": ["a"], "input": {"tag": "b"}},
            ]}),
            json!({}),
            false,
        )
        .await;
    called(&stack, "a").await;
    stack.agents.stop().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stack.agents.restart().await;

    let run = stack
        .run_until(&run.id, |run| run.status() == pb::ChainRunStatus::Completed)
        .await;
    assert_eq!(step(&run, "a").attempts, 1);
    assert_eq!(step(&run, "b").attempts, 1);
    for call in stack.agents.record.calls() {
        assert_eq!(call.run_id, format!("{}-{}-1", run.id, call.tag));
    }
    let seen: Vec<String> = stack.watched(&run.id).await.iter().map(action_of).collect();
    assert!(
        seen.iter().any(|action| action.starts_with("step.waiting")),
        "a step said it was waiting: {seen:?}"
    );
}

#[sqlx::test(migrations = false)]
async fn two_orchestrators_on_one_database_never_run_a_step_twice(pool: sqlx::PgPool) {
    // One run at a time each: the rest wait as PENDING and both claim loops compete for them.
    let mut stack = start_with(pool.clone(), |config| config.max_runs = 1).await;
    let other = sankalpa_testkit::spawn_chain_orchestrator(
        pool,
        stack.infra.clone(),
        &stack.auth.grpc_url(),
        &stack.agents.url(),
        |config| config.max_runs = 1,
    )
    .await
    .unwrap();
    let quick = json!({"steps": [
        {"id": "a", "agent": "work", "input": {"tag": "a", "sleep_ms": 20}},
        {"id": "b", "agent": "work", "needs": ["a"], "input": {"tag": "b", "sleep_ms": 20}},
        {"id": "c", "agent": "work", "needs": ["b"], "input": {"tag": "c", "sleep_ms": 20}},
    ]});
    let mut ids = Vec::new();
    let mut second = connect(&other).await;
    for index in 0..12 {
        if index % 2 == 1 {
            std::mem::swap(&mut stack.chains, &mut second);
        }
        ids.push(stack.execute(quick.clone(), json!({}), false).await.id);
        if index % 2 == 1 {
            std::mem::swap(&mut stack.chains, &mut second);
        }
    }
    for id in &ids {
        stack
            .run_until(id, |run| run.status() == pb::ChainRunStatus::Completed)
            .await;
    }
    let mut per_step: HashMap<(String, String), usize> = HashMap::new();
    for call in stack.agents.record.calls() {
        *per_step.entry((call.workspace, call.tag)).or_default() += 1;
    }
    assert_eq!(per_step.len(), 12 * 3);
    assert!(per_step.values().all(|count| *count == 1), "{per_step:?}");
}

/// The state of step `id` of `run` as its row holds it.
async fn step_row(pool: &sqlx::PgPool, run: &str, id: &str) -> (String, i32) {
    sqlx::query_as(
        "SELECT status, attempts FROM chains.chain_steps WHERE run_id = $1::uuid AND step_id = $2",
    )
    .bind(run)
    .bind(id)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Waits until the fake agent-runner has a call of `tag`, and answers it.
async fn called(stack: &crate::Stack, tag: &str) -> crate::fake_agents::Call {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(call) = stack.agents.record.tagged(tag).pop() {
            return call;
        }
        assert!(tokio::time::Instant::now() < deadline, "{tag} never called");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[sqlx::test(migrations = false)]
async fn a_quick_attempt_has_its_start_written_with_its_end_a_long_one_on_its_own(
    pool: sqlx::PgPool,
) {
    let mut stack = start_with(pool.clone(), |config| {
        config.unannounced_start = Duration::from_secs(2);
    })
    .await;
    let run = stack
        .execute(
            json!({"steps": [
                {"id": "quick", "agent": "work", "input": {"tag": "quick", "sleep_ms": 800}},
                {"id": "long", "agent": "work", "needs": ["quick"],
                 "input": {"tag": "long", "sleep_ms": 4000}},
            ]}),
            json!({}),
            false,
        )
        .await;

    called(&stack, "quick").await;
    let quick_row = step_row(&pool, &run.id, "quick").await;
    assert!(
        called(&stack, "quick").await.finished.is_none(),
        "the row was read while the quick attempt ran"
    );
    assert_eq!(
        quick_row,
        ("pending".to_owned(), 0),
        "a start is not written before the attempt has run a while"
    );

    let long = called(&stack, "long").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while step_row(&pool, &run.id, "long").await.0 != "running" {
        assert!(tokio::time::Instant::now() < deadline, "long never running");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        long.started.elapsed() >= Duration::from_millis(1500),
        "the long attempt's start was written once it had run the unannounced while"
    );
    assert!(
        called(&stack, "long").await.finished.is_none(),
        "and while it still ran"
    );
    assert_eq!(step_row(&pool, &run.id, "long").await.1, 1);

    let run = stack
        .run_until(&run.id, |run| run.status() == pb::ChainRunStatus::Completed)
        .await;
    let quick = step(&run, "quick");
    assert_eq!(quick.attempts, 1);
    assert_eq!(quick.agent_run_id, format!("{}-quick-1", run.id));
    assert!(
        quick.duration_ms >= 800,
        "its start is when it began, not when it was written: {quick:?}"
    );
    assert!(step(&run, "long").duration_ms >= 4000);
    let seen: Vec<String> = stack.watched(&run.id).await.iter().map(action_of).collect();
    assert_eq!(
        seen,
        [
            "run.started",
            "step.started quick",
            "step.completed quick",
            "step.started long",
            "step.completed long",
            "run.completed",
        ]
    );
}

#[sqlx::test(migrations = false)]
async fn a_step_begins_while_its_needs_end_is_written_and_is_recorded_after_it(pool: sqlx::PgPool) {
    // Every attempt here ends well within this, so each start is written with its end.
    let mut stack = start_with(pool.clone(), |config| {
        config.unannounced_start = Duration::from_secs(30);
    })
    .await;
    let run = stack
        .execute(
            json!({"steps": [
                {"id": "first", "agent": "work", "input": {"tag": "first", "sleep_ms": 500}},
                {"id": "next", "agent": "work", "needs": ["first"], "input": {"tag": "next"}},
            ]}),
            json!({}),
            false,
        )
        .await;

    called(&stack, "first").await;
    // While `first` runs, its row is locked: its end cannot be written until the lock goes.
    let mut blocker = pool.begin().await.unwrap();
    sqlx::query(
        "SELECT 1 FROM chains.chain_steps WHERE run_id = $1::uuid AND step_id = 'first' FOR UPDATE",
    )
    .bind(&run.id)
    .execute(&mut *blocker)
    .await
    .unwrap();
    let next = called(&stack, "next").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while stack.agents.record.tagged("next")[0].finished.is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "next never finished"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        next.run_id,
        format!("{}-next-1", run.id),
        "the step that needs `first` was asked for while first's end could not be written"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(step_row(&pool, &run.id, "first").await.0, "pending");
    assert_eq!(
        step_row(&pool, &run.id, "next").await.0,
        "pending",
        "a step's end is not written before the end of a step it needs"
    );
    blocker.rollback().await.unwrap();

    let run = stack
        .run_until(&run.id, |run| run.status() == pb::ChainRunStatus::Completed)
        .await;
    let at = |time: &Option<prost_types::Timestamp>| {
        let time = time.as_ref().expect("a finished step has its times");
        (time.seconds, time.nanos)
    };
    assert!(
        at(&step(&run, "first").finished_at) <= at(&step(&run, "next").started_at),
        "no step seems to begin before a step it needs ended: {run:?}"
    );
    let seen: Vec<String> = stack.watched(&run.id).await.iter().map(action_of).collect();
    assert_eq!(
        seen,
        [
            "run.started",
            "step.started first",
            "step.completed first",
            "step.started next",
            "step.completed next",
            "run.completed",
        ]
    );
    assert_eq!(stack.agents.record.tagged("first").len(), 1);
    assert_eq!(stack.agents.record.tagged("next").len(), 1);
}
