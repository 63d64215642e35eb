//! Retention: a tenant's setting of how long finished runs are kept, and the sweep that deletes
//! them (with their steps) after that, leaving unfinished runs, recent ones and other tenants'
//! runs under their own settings alone.

use std::time::Duration;

use sankalpa_kit::problem::field_violations;
use sankalpa_proto::v1 as pb;
use serde_json::json;
use tonic::Code;

use crate::{Stack, authed_as, inline_run, retry_until_keys_loaded, start_with};

async fn settings(stack: &Stack, token: &str) -> pb::ChainSettings {
    retry_until_keys_loaded(|| {
        let mut chains = stack.chains.clone();
        let request = authed_as(token, pb::GetChainSettingsRequest {});
        async move { chains.get_chain_settings(request).await }
    })
    .await
    .expect("the settings are readable")
    .into_inner()
}

async fn set_retention(
    stack: &Stack,
    token: &str,
    days: u32,
) -> Result<pb::ChainSettings, tonic::Status> {
    retry_until_keys_loaded(|| {
        let mut chains = stack.chains.clone();
        let request = authed_as(
            token,
            pb::UpdateChainSettingsRequest {
                retention_days: days,
            },
        );
        async move { chains.update_chain_settings(request).await }
    })
    .await
    .map(tonic::Response::into_inner)
}

async fn run_exists(stack: &Stack, id: &str) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM chains.chain_runs WHERE id = $1::uuid)")
        .bind(id)
        .fetch_one(&stack.pool)
        .await
        .unwrap()
}

async fn steps_of(stack: &Stack, id: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM chains.chain_steps WHERE run_id = $1::uuid")
        .bind(id)
        .fetch_one(&stack.pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = false)]
async fn a_finished_run_past_its_tenants_retention_is_swept_with_its_steps_and_nothing_else(
    pool: sqlx::PgPool,
) {
    let mut stack = start_with(pool, |config| {
        config.retention_sweep_interval = Duration::from_millis(50);
    })
    .await;
    let token = stack.token.clone();
    set_retention(&stack, &token, 1)
        .await
        .expect("an admin sets the retention");
    let two_steps = json!({"agents": ["add_one", "add_one"]});
    let old = stack
        .execute(two_steps.clone(), json!({"n": 1}), true)
        .await;
    let recent = stack
        .execute(two_steps.clone(), json!({"n": 1}), true)
        .await;
    let unfinished = stack
        .execute(
            json!({"steps": [{"id": "slow", "agent": "work", "timeout_ms": 120000}]}),
            json!({"sleep_ms": 60000}),
            false,
        )
        .await;
    // Another tenant keeps the default, 30 days.
    let other = stack.other_tenant().await;
    let mut others_run = inline_run(&two_steps, &json!({"n": 1}), "");
    others_run.wait = true;
    others_run.wait_timeout_ms = 20_000;
    let others_old = retry_until_keys_loaded(|| {
        let mut chains = stack.chains.clone();
        let request = authed_as(&other, others_run.clone());
        async move { chains.execute_chain(request).await }
    })
    .await
    .expect("the other tenant's run is accepted")
    .into_inner();
    assert_eq!(old.status(), pb::ChainRunStatus::Completed);
    assert_eq!(others_old.status(), pb::ChainRunStatus::Completed);
    assert_eq!(steps_of(&stack, &old.id).await, 2);

    // Two days ago, in one statement, so a sweep sees all of them old or none. The unfinished
    // run gets an end time too: only its status keeps it.
    sqlx::query(
        "UPDATE chains.chain_runs SET finished_at = now() - interval '2 days'
         WHERE id = ANY($1::uuid[])",
    )
    .bind(vec![
        old.id.parse::<uuid::Uuid>().unwrap(),
        unfinished.id.parse().unwrap(),
        others_old.id.parse().unwrap(),
    ])
    .execute(&stack.pool)
    .await
    .unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while run_exists(&stack, &old.id).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the old run was never swept"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(steps_of(&stack, &old.id).await, 0, "its steps went with it");
    let gone = stack
        .chains
        .get_run(stack.authed(pb::GetRunRequest { id: old.id.clone() }))
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    // The statement that deleted it weighed these too, and kept them.
    for (kept, steps, why) in [
        (&recent.id, 2, "a recent run"),
        (&unfinished.id, 1, "an unfinished run"),
        (&others_old.id, 2, "another tenant's run, under its 30 days"),
    ] {
        assert!(run_exists(&stack, kept).await, "{why} is kept");
        assert_eq!(steps_of(&stack, kept).await, steps, "{why} keeps its steps");
    }
    stack
        .chains
        .cancel_run(stack.authed(pb::CancelRunRequest {
            id: unfinished.id.clone(),
        }))
        .await
        .unwrap();
}

#[sqlx::test(migrations = false)]
async fn the_retention_setting_round_trips_is_checked_and_is_the_callers_tenants_own(
    pool: sqlx::PgPool,
) {
    let stack = start_with(pool, |_| {}).await;
    let token = stack.token.clone();
    let default = settings(&stack, &token).await;
    assert_eq!(default.retention_days, 30);
    assert!(default.is_default);
    assert!(default.updated_at.is_none());

    let changed = set_retention(&stack, &token, 7).await.unwrap();
    assert_eq!(changed.retention_days, 7);
    assert!(!changed.is_default);
    assert!(!changed.updated_by.is_empty());
    assert_eq!(settings(&stack, &token).await.retention_days, 7);
    let forever = set_retention(&stack, &token, 0).await.unwrap();
    assert_eq!(forever.retention_days, 0, "0 keeps runs forever");

    let refused = set_retention(&stack, &token, 3651).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    let violations = field_violations(&refused);
    assert_eq!(violations[0].field, "retention_days", "{violations:?}");
    assert_eq!(
        settings(&stack, &token).await.retention_days,
        0,
        "unchanged"
    );

    // Another tenant sees and changes only its own.
    let other = stack.other_tenant().await;
    assert!(settings(&stack, &other).await.is_default);
    set_retention(&stack, &other, 90).await.unwrap();
    assert_eq!(settings(&stack, &other).await.retention_days, 90);
    assert_eq!(settings(&stack, &token).await.retention_days, 0);
}
