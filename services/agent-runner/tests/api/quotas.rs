//! Per-tenant quotas: a tenant at one is refused with RESOURCE_EXHAUSTED carrying the quota
//! (limit, remaining, seconds to reset), which the gateway answers 429 with RateLimit-* headers
//! and Retry-After; another tenant goes on as before.

use std::time::Duration;

use sankalpa_kit::problem::Quota;
use sankalpa_proto::v1 as pb;
use serde_json::json;
use tonic::Code;

use crate::llm::{SLOW, start_with_fake_llm, translate};
use crate::{TestRunner, authed};

/// Starts a run of text_translator as `token` that waits on the (slow) LLM.
fn slow_run(
    app: &TestRunner,
    token: &str,
    run_id: &str,
) -> tokio::task::JoinHandle<Result<pb::AgentRun, tonic::Status>> {
    let mut client = app.client.clone();
    let request = authed(
        pb::ExecuteAgentRequest {
            agent: "text_translator".into(),
            input_json: translate("Hello").to_string(),
            run_id: Some(run_id.into()),
            ..Default::default()
        },
        token,
    );
    tokio::spawn(async move {
        client
            .execute_agent(request)
            .await
            .map(tonic::Response::into_inner)
    })
}

async fn cancel(app: &mut TestRunner, token: &str, run_id: &str) {
    app.client
        .cancel_agent_run(authed(
            pb::CancelAgentRunRequest {
                run_id: run_id.into(),
            },
            token,
        ))
        .await
        .expect("the run is in flight");
}

#[sqlx::test(migrations = false)]
async fn a_tenant_at_its_concurrent_runs_is_refused_and_others_are_not(pool: sqlx::PgPool) {
    let (mut app, fake, _) = start_with_fake_llm(pool, vec![SLOW, SLOW], |config| {
        config.max_concurrent_runs_per_tenant = 2;
    })
    .await;
    let ada = app.sign_up().await;
    let bob = app.sign_up().await;
    let first = slow_run(&app, &ada.token, "first");
    let second = slow_run(&app, &ada.token, "second");
    fake.wait_for(2).await;

    let status = app
        .execute(&ada.token, "hello_world", json!({}))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(
        Quota::of(&status),
        Some(Quota {
            limit: 2,
            remaining: 0,
            reset: 1
        })
    );
    let out = app.output(&bob.token, "hello_world", json!({})).await;
    assert_eq!(out["message"], "Hello, World!", "bob is not held up by ada");

    // A cancelled run gives its place back.
    cancel(&mut app, &ada.token, "first").await;
    let run = tokio::time::timeout(Duration::from_secs(5), first)
        .await
        .expect("the cancelled run ends")
        .unwrap()
        .unwrap();
    assert_eq!(run.status, pb::AgentRunStatus::Cancelled as i32);
    let out = app.output(&ada.token, "hello_world", json!({})).await;
    assert_eq!(out["message"], "Hello, World!");

    cancel(&mut app, &ada.token, "second").await;
    second.await.unwrap().unwrap();
}
