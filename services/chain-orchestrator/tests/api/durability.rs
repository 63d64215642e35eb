use std::collections::HashMap;
use std::time::Duration;

use sankalpa_chain_orchestrator::{Config, Orchestrator};
use sankalpa_kit::service::Service;
use sankalpa_proto::v1 as pb;
use sankalpa_proto::v1::chain_service_client::ChainServiceClient;
use serde_json::json;

use crate::{connect, start, start_with, step};

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

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while stack.agents.record.tagged("b").is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "step b never started"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    task.abort();
    let _ = task.await;

    let successor = sankalpa_testkit::spawn_chain_orchestrator(
        pool,
        stack.infra.clone(),
        &stack.auth.grpc_url(),
        &stack.agents.url(),
        |_| {},
    )
    .await
    .unwrap();
    stack.chains = connect(&successor).await;
    let run = stack
        .run_until(&run.id, |run| run.status() == pb::ChainRunStatus::Completed)
        .await;
    let record = &stack.agents.record;
    assert_eq!(
        record.tagged("a").len(),
        1,
        "a completed before the kill and did not run again"
    );
    assert_eq!(
        record.tagged("b").len(),
        2,
        "b was interrupted and attempted again"
    );
    assert_eq!(record.tagged("c").len(), 1);
    assert_eq!(step(&run, "b").attempts, 2);
    assert_eq!(step(&run, "a").attempts, 1);
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
