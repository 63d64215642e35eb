//! Per-tenant quotas: unfinished runs (over all replicas) and open event streams (per replica).
//! A tenant at a quota is answered RESOURCE_EXHAUSTED carrying the quota (a 429 with RateLimit
//! headers at the gateway); other tenants are unaffected, and room comes back as things end.

use std::time::{Duration, Instant};

use futures::future::join_all;
use sankalpa_kit::problem::{Quota, field_violations};
use sankalpa_proto::v1 as pb;
use serde_json::{Value, json};
use tonic::Code;

use crate::{Stack, authed_as, inline_run, start_with};

fn long_run() -> Value {
    json!({"steps": [{"id": "long", "agent": "work", "input": {"tag": "long", "sleep_ms": 20_000}}]})
}

fn assert_quota(status: &tonic::Status, limit: u64) {
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(
        Quota::of(status),
        Some(Quota {
            limit,
            remaining: 0,
            reset: 1
        })
    );
}

async fn submit(stack: &Stack, token: &str, key: &str) -> Result<pb::ChainRun, tonic::Status> {
    stack
        .chains
        .clone()
        .execute_chain(authed_as(token, inline_run(&long_run(), &json!({}), key)))
        .await
        .map(tonic::Response::into_inner)
}

#[sqlx::test(migrations = false)]
async fn a_tenant_at_its_run_quota_is_refused_and_another_tenant_is_not(pool: sqlx::PgPool) {
    let mut stack = start_with(pool, |config| config.max_concurrent_runs_per_tenant = 2).await;
    let first = stack
        .try_execute(long_run(), json!({}), false, "first")
        .await
        .unwrap();
    let second = submit(&stack, &stack.token, "").await.unwrap();
    let refused = submit(&stack, &stack.token, "").await.unwrap_err();
    assert_quota(&refused, 2);

    let repeated = submit(&stack, &stack.token, "first")
        .await
        .expect("a repeat of an accepted run is answered");
    assert_eq!(repeated.id, first.id);

    let other = stack.other_tenant().await;
    submit(&stack, &other, "")
        .await
        .expect("another tenant has its own quota");

    stack
        .chains
        .cancel_run(stack.authed(pb::CancelRunRequest {
            id: second.id.clone(),
        }))
        .await
        .unwrap();
    stack
        .run_until(&second.id, |run| {
            run.status() == pb::ChainRunStatus::Cancelled
        })
        .await;
    submit(&stack, &stack.token, "")
        .await
        .expect("a finished run gives its place back");
    let listed = stack
        .chains
        .list_runs(stack.authed(pb::ListRunsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.runs.len(), 3, "the refused run left nothing behind");
}

#[sqlx::test(migrations = false)]
async fn submissions_racing_for_the_last_free_place_do_not_all_pass(pool: sqlx::PgPool) {
    let mut stack = start_with(pool, |config| config.max_concurrent_runs_per_tenant = 2).await;
    stack
        .try_execute(long_run(), json!({}), false, "")
        .await
        .unwrap();
    // Another tenant's submissions race alongside (accepted in the same batches): each tenant
    // is counted against its own quota.
    let other = stack.other_tenant().await;
    let (answers, others) = tokio::join!(
        join_all((0..5).map(|_| submit(&stack, &stack.token, ""))),
        join_all((0..5).map(|_| submit(&stack, &other, ""))),
    );
    let accepted = answers.iter().filter(|answer| answer.is_ok()).count();
    assert_eq!(accepted, 1, "{answers:?}");
    for refused in answers.iter().filter_map(|answer| answer.as_ref().err()) {
        assert_quota(refused, 2);
    }
    let accepted = others.iter().filter(|answer| answer.is_ok()).count();
    assert_eq!(accepted, 2, "{others:?}");
    let listed = stack
        .chains
        .list_runs(stack.authed(pb::ListRunsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.runs.len(), 2);
}

/// Racers of one idempotency key meet in a batch's insert, where all but the first find the
/// key taken: the place such a racer was given goes to a run after it, so the quota is filled
/// and never passed.
#[sqlx::test(migrations = false)]
async fn racers_of_one_key_leave_their_places_to_the_runs_after_them(pool: sqlx::PgPool) {
    let stack = start_with(pool, |config| config.max_concurrent_runs_per_tenant = 2).await;
    let (keyed, plain) = tokio::join!(
        join_all((0..6).map(|_| submit(&stack, &stack.token, "raced"))),
        join_all((0..4).map(|_| submit(&stack, &stack.token, ""))),
    );
    let accepted: std::collections::BTreeSet<String> = keyed
        .iter()
        .chain(&plain)
        .filter_map(|answer| answer.as_ref().ok().map(|run| run.id.clone()))
        .collect();
    assert_eq!(accepted.len(), 2, "{keyed:?} {plain:?}");
    for refused in keyed
        .iter()
        .chain(&plain)
        .filter_map(|answer| answer.as_ref().err())
    {
        assert_quota(refused, 2);
    }
    let listed = stack
        .chains
        .clone()
        .list_runs(stack.authed(pb::ListRunsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.runs.len(), 2);
}

async fn watch_events(
    stack: &Stack,
    token: &str,
) -> Result<tonic::Streaming<pb::Event>, tonic::Status> {
    stack
        .chains
        .clone()
        .watch_events(authed_as(token, pb::WatchEventsRequest::default()))
        .await
        .map(tonic::Response::into_inner)
}

#[sqlx::test(migrations = false)]
async fn a_tenant_at_its_stream_quota_is_refused_until_a_stream_is_dropped(pool: sqlx::PgPool) {
    let mut stack = start_with(pool, |config| config.max_streams_per_tenant = 2).await;
    let run = stack
        .execute(json!({"agents": ["add_one"]}), json!({"n": 1}), true)
        .await;
    let first = watch_events(&stack, &stack.token).await.unwrap();
    let second = watch_events(&stack, &stack.token).await.unwrap();
    let refused = watch_events(&stack, &stack.token).await.unwrap_err();
    assert_quota(&refused, 2);
    let refused = stack
        .chains
        .clone()
        .watch_run(stack.authed(pb::WatchRunRequest {
            run_id: run.id.clone(),
            after_sequence: None,
        }))
        .await
        .unwrap_err();
    assert_quota(&refused, 2);

    let other = stack.other_tenant().await;
    let _theirs = watch_events(&stack, &other)
        .await
        .expect("another tenant has its own streams");

    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    let _third = loop {
        match watch_events(&stack, &stack.token).await {
            Ok(stream) => break stream,
            Err(status) => {
                assert_quota(&status, 2);
                assert!(
                    Instant::now() < deadline,
                    "the dropped stream's place never came back"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let refused = watch_events(&stack, &stack.token).await.unwrap_err();
    assert_quota(&refused, 2);
    drop(second);
}

#[sqlx::test(migrations = false)]
async fn too_many_or_malformed_subject_patterns_are_refused_by_field(pool: sqlx::PgPool) {
    let mut stack = start_with(pool, |_| {}).await;
    stack
        .execute(json!({"agents": ["add_one"]}), json!({"n": 1}), true)
        .await;
    for subjects in [
        vec!["chains.>".to_owned(); 17],
        vec![format!("chains.{}", "x".repeat(300))],
        vec!["chains..>".to_owned()],
    ] {
        let refused = stack
            .chains
            .clone()
            .watch_events(stack.authed(pb::WatchEventsRequest {
                subjects,
                after_sequence: None,
            }))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
        let fields: Vec<String> = field_violations(&refused)
            .into_iter()
            .map(|violation| violation.field)
            .collect();
        assert_eq!(fields, ["subjects"]);
    }
}
