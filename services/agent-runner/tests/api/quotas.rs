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

#[sqlx::test(migrations = false)]
async fn a_tenant_past_its_llm_tokens_of_the_day_is_refused_on_every_replica(pool: sqlx::PgPool) {
    // The fake LLM reports 25 tokens a call: the second call passes 30, the third is refused.
    let (mut app, fake, llm) = start_with_fake_llm(pool, vec![], |config| {
        config.llm_tokens_per_tenant_per_day = 30;
    })
    .await;
    let ada = app.sign_up().await;
    let bob = app.sign_up().await;
    for _ in 0..2 {
        let out = app
            .output(&ada.token, "text_translator", translate("Hello"))
            .await;
        assert_eq!(out["method"], "llm");
    }
    let status = app
        .execute(&ada.token, "text_translator", translate("Hello"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let quota = Quota::of(&status).expect("the refusal carries the quota");
    assert_eq!((quota.limit, quota.remaining), (30, 0));
    assert!((1..=86_400).contains(&quota.reset), "{quota:?}");
    assert_eq!(fake.seen.lock().unwrap().len(), 2, "the LLM was not asked");

    // What needs no LLM still runs, and another tenant still has its tokens.
    let run = app
        .execute_with(
            &ada.token,
            pb::ExecuteAgentRequest {
                agent: "text_translator".into(),
                input_json: translate("Hello").to_string(),
                llm: pb::LlmMode::Off as i32,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(json_of(&run)["method"], "glossary");
    let out = app
        .output(&bob.token, "text_translator", translate("Hello"))
        .await;
    assert_eq!(out["method"], "llm");

    let used: i64 = sqlx::query_scalar(
        "SELECT tokens FROM agents.llm_usage WHERE tenant_id = $1::uuid AND day = (now() AT TIME ZONE 'UTC')::date",
    )
    .bind(&ada.tenant_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(used, 50);

    // Another replica on the same database counts the same tokens.
    let objects = app.objects.to_str().unwrap().to_owned();
    let replica = sankalpa_testkit::spawn_agent_runner(
        app.pool.clone(),
        app.infra.clone(),
        &app.auth_url(),
        &objects,
        |config| {
            config.llm = Some(llm);
            config.llm_tokens_per_tenant_per_day = 30;
        },
    )
    .await
    .unwrap();
    let mut client =
        sankalpa_proto::v1::agent_service_client::AgentServiceClient::connect(replica.grpc_url())
            .await
            .unwrap();
    let status = client
        .execute_agent(authed(
            pb::ExecuteAgentRequest {
                agent: "text_translator".into(),
                input_json: translate("Hello").to_string(),
                ..Default::default()
            },
            &ada.token,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
}

fn json_of(run: &pb::AgentRun) -> serde_json::Value {
    crate::json(&run.output_json)
}
