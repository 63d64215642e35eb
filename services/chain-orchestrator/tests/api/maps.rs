//! Map steps (`for_each`): item order, bounded parallelism, failed items under each
//! `on_failure`, the checks on the list, and a takeover mid-map.

use std::time::{Duration, Instant};

use sankalpa_chain_orchestrator::{Config, Orchestrator};
use sankalpa_kit::service::Service;
use sankalpa_proto::v1 as pb;
use sankalpa_proto::v1::chain_service_client::ChainServiceClient;
use serde_json::{Value, json};

use crate::fake_agents::Call;
use crate::{action_of, json, start, step};

/// A map step over `input.items`, each item `{"tag", "sleep"}` (and `fail`, the times it fails).
fn mapping(max_parallel: u32, on_failure: &str) -> Value {
    json!({"steps": [
        {"id": "each", "agent": "work", "for_each": "${input.items}",
         "max_parallel": max_parallel, "on_failure": on_failure,
         "retry": {"attempts": 2},
         "input": {"tag": "${item.tag}", "sleep_ms": "${item.sleep}", "fail_times": "${item.fail}",
                   "at": "${index}"}},
        {"id": "after", "agent": "work", "needs": ["each"], "input": {"tag": "after"}},
    ]})
}

/// The most calls that were running at one moment.
fn most_at_once(calls: &[Call]) -> usize {
    let mut edges: Vec<(Instant, i32)> = Vec::new();
    for call in calls {
        edges.push((call.started, 1));
        edges.push((call.finished.expect("every call finished"), -1));
    }
    // An end before a start at the same instant: touching calls do not overlap.
    edges.sort();
    let (mut now, mut most) = (0, 0);
    for (_, change) in edges {
        now += change;
        most = most.max(now);
    }
    usize::try_from(most).unwrap_or(0)
}

fn item_calls(calls: Vec<Call>) -> Vec<Call> {
    calls
        .into_iter()
        .filter(|call| call.tag.starts_with('t'))
        .collect()
}

#[sqlx::test(migrations = false)]
async fn a_map_keeps_item_order_and_runs_at_most_max_parallel_items_at_once(pool: sqlx::PgPool) {
    let mut stack = start(pool).await;
    // The first items take longest, so they finish last.
    let items: Vec<Value> = (0..8)
        .map(|index| json!({"tag": format!("t{index}"), "sleep": (8 - index) * 60, "fail": 0}))
        .collect();
    let run = stack
        .execute(mapping(3, "fail"), json!({ "items": items }), true)
        .await;
    assert_eq!(run.status(), pb::ChainRunStatus::Completed, "{run:#?}");
    let each = step(&run, "each");
    assert_eq!(each.kind, "map");
    assert_eq!(step(&run, "after").kind, "agent");
    let output = json(&each.output_json);
    let tags: Vec<&str> = output
        .as_array()
        .expect("a list")
        .iter()
        .map(|item| item["tag"].as_str().unwrap())
        .collect();
    assert_eq!(tags, ["t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7"]);
    let calls = item_calls(stack.agents.record.calls());
    assert_eq!(calls.len(), 8, "each item ran once");
    let most = most_at_once(&calls);
    assert!(most <= 3, "{most} items ran at once, over max_parallel 3");
    assert!(most >= 2, "the items ran one at a time");
    let mut ids: Vec<String> = calls.into_iter().map(|call| call.run_id).collect();
    ids.sort();
    let mut expected: Vec<String> = (0..8).map(|i| format!("{}-each-1-i{i}", run.id)).collect();
    expected.sort();
    assert_eq!(ids, expected, "items run under fixed agent run ids");
    let seen: Vec<String> = stack.watched(&run.id).await.iter().map(action_of).collect();
    assert_eq!(
        seen,
        [
            "run.started",
            "step.started each",
            "step.completed each",
            "step.started after",
            "step.completed after",
            "run.completed",
        ],
        "items announce nothing of their own"
    );
}

#[sqlx::test(migrations = false)]
async fn a_failed_item_follows_the_steps_on_failure(pool: sqlx::PgPool) {
    let mut stack = start(pool).await;
    let items = json!({"items": [
        {"tag": "t0", "sleep": 0, "fail": 0},
        {"tag": "t1", "sleep": 0, "fail": 9},
        {"tag": "t2", "sleep": 0, "fail": 0},
    ]});

    let kept = stack
        .execute(mapping(1, "continue"), items.clone(), true)
        .await;
    assert_eq!(kept.status(), pb::ChainRunStatus::Completed, "{kept:#?}");
    let output = json(&step(&kept, "each").output_json);
    assert_eq!(output[0]["tag"], "t0");
    assert_eq!(output[1], Value::Null, "the failed item's slot is null");
    assert_eq!(output[2]["tag"], "t2");
    let t1: Vec<String> = stack
        .agents
        .record
        .tagged("t1")
        .into_iter()
        .filter(|call| call.workspace == kept.id)
        .map(|call| call.run_id)
        .collect();
    assert_eq!(
        t1,
        [
            format!("{}-each-1-i1", kept.id),
            format!("{}-each-2-i1", kept.id)
        ],
        "the step's retry applies to the item"
    );
    assert_eq!(step(&kept, "after").status(), pb::StepStatus::Completed);

    let failed = stack.execute(mapping(1, "fail"), items.clone(), true).await;
    assert_eq!(failed.status(), pb::ChainRunStatus::Failed);
    let error = failed.error.clone().unwrap();
    assert_eq!(error.code, "agent_failed");
    assert!(
        error.message.contains("step `each` failed: item 1 failed"),
        "{error:?}"
    );
    assert_eq!(step(&failed, "each").status(), pb::StepStatus::Failed);
    assert_ne!(step(&failed, "after").status(), pb::StepStatus::Completed);

    let skipped = stack
        .execute(mapping(1, "skip_dependants"), items, true)
        .await;
    assert_eq!(skipped.status(), pb::ChainRunStatus::Completed);
    assert_eq!(step(&skipped, "each").status(), pb::StepStatus::Failed);
    assert_eq!(step(&skipped, "after").status(), pb::StepStatus::Skipped);
}

#[sqlx::test(migrations = false)]
async fn a_for_each_that_is_not_a_list_or_too_long_fails_its_step(pool: sqlx::PgPool) {
    let mut stack = start(pool).await;
    let not_a_list = stack
        .execute(mapping(2, "fail"), json!({"items": {"tag": "t0"}}), true)
        .await;
    assert_eq!(not_a_list.status(), pb::ChainRunStatus::Failed);
    let error = not_a_list.error.unwrap();
    assert_eq!(error.code, "invalid_input");
    assert!(
        error.message.contains(
            "step `each` failed: for_each `input.items` must give a list, and gave an object"
        ),
        "{error:?}"
    );

    let too_many: Vec<Value> = (0..1001).map(|_| json!(1)).collect();
    let too_long = stack
        .execute(mapping(2, "fail"), json!({ "items": too_many }), true)
        .await;
    assert_eq!(too_long.status(), pb::ChainRunStatus::Failed);
    let error = too_long.error.unwrap();
    assert_eq!(error.code, "too_many_items");
    assert!(
        error
            .message
            .contains("gave 1001 items; a map step runs over at most 1000"),
        "{error:?}"
    );
    assert!(
        item_calls(stack.agents.record.calls()).is_empty(),
        "no item ran"
    );
}

#[sqlx::test(migrations = false)]
async fn a_takeover_mid_map_runs_no_finished_item_again(pool: sqlx::PgPool) {
    let mut stack = start(pool.clone()).await;
    // The first orchestrator runs as a bare task, so the test can kill it without any shutdown.
    let config = Config::for_tests(
        stack.infra.clone(),
        &stack.auth.grpc_url(),
        &stack.agents.url(),
    );
    let doomed = Orchestrator::build(config, pool.clone()).await.unwrap();
    let url = format!("http://{}", doomed.grpc_addr().expect("it serves gRPC"));
    let task = tokio::spawn(doomed.serve(std::future::pending()));
    stack.chains = ChainServiceClient::connect(url).await.unwrap();
    let items: Vec<Value> = (0..6)
        .map(|index| {
            let sleep = if index < 4 { 20 } else { 1500 };
            json!({"tag": format!("t{index}"), "sleep": sleep, "fail": 0})
        })
        .collect();
    let run = stack
        .execute(mapping(2, "fail"), json!({ "items": items }), false)
        .await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM chains.step_items")
            .fetch_one(&pool)
            .await
            .unwrap();
        if kept == 4 && !stack.agents.record.tagged("t4").is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first items never finished"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    task.abort();
    let _ = task.await;

    let _successor = stack.start_successor().await;
    let run = stack
        .run_until(&run.id, |run| run.status() == pb::ChainRunStatus::Completed)
        .await;
    for index in 0..4 {
        assert_eq!(
            stack.agents.record.tagged(&format!("t{index}")).len(),
            1,
            "item {index} finished before the kill and did not run again"
        );
    }
    for index in 4..6 {
        let ids: Vec<String> = stack
            .agents
            .record
            .tagged(&format!("t{index}"))
            .into_iter()
            .map(|call| call.run_id)
            .collect();
        assert!(
            ids.iter()
                .all(|id| *id == format!("{}-each-1-i{index}", run.id)),
            "item {index} was asked for again under its own id: {ids:?}"
        );
    }
    let output = json(&step(&run, "each").output_json);
    let tags: Vec<&str> = output
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["tag"].as_str().unwrap())
        .collect();
    assert_eq!(tags, ["t0", "t1", "t2", "t3", "t4", "t5"]);
    let started = stack
        .watched(&run.id)
        .await
        .iter()
        .map(action_of)
        .filter(|action| action == "step.started each")
        .count();
    assert_eq!(started, 1, "the taken-over map step is not announced twice");
}
