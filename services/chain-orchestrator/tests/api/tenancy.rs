//! Another tenant's chains and runs: every write through them answers NOT_FOUND and changes
//! nothing, exactly as for an id that does not exist.

use std::time::{Duration, Instant};

use sankalpa_proto::v1 as pb;
use serde_json::json;
use tonic::Code;

use crate::{Stack, authed_as, inline_run, retry_until_keys_loaded, start, step};

/// A chain of the stack's own tenant, created once the orchestrator knows auth's keys.
async fn own_chain(stack: &Stack, name: &str) -> pb::Chain {
    let request = stack.authed(pb::CreateChainRequest {
        name: name.to_owned(),
        description: "adds one".to_owned(),
        definition_json: json!({"agents": ["add_one"]}).to_string(),
        installed_from: String::new(),
    });
    retry_until_keys_loaded(|| {
        let mut chains = stack.chains.clone();
        let request = crate::clone_request(&request);
        async move { chains.create_chain(request).await }
    })
    .await
    .expect("the chain is created")
    .into_inner()
}

async fn chain_as_it_is(stack: &Stack, id: &str) -> pb::Chain {
    stack
        .chains
        .clone()
        .get_chain(stack.authed(pb::GetChainRequest {
            target: Some(pb::get_chain_request::Target::Id(id.to_owned())),
            version: None,
        }))
        .await
        .expect("the chain is still there")
        .into_inner()
}

async fn runs_of(stack: &Stack, token: &str) -> Vec<pb::ChainRun> {
    stack
        .chains
        .clone()
        .list_runs(authed_as(token, pb::ListRunsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .runs
}

#[sqlx::test(migrations = false)]
async fn another_tenant_cannot_cancel_a_run_which_goes_on_to_complete(pool: sqlx::PgPool) {
    let mut stack = start(pool).await;
    let run = stack
        .execute(
            json!({"steps": [
                {"id": "long", "agent": "work", "input": {"tag": "long", "sleep_ms": 1500}},
                {"id": "after", "agent": "add_one", "needs": ["long"]},
            ]}),
            json!({}),
            false,
        )
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while stack.agents.record.tagged("long").is_empty() {
        assert!(Instant::now() < deadline, "the long step never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let other = stack.other_tenant().await;
    let refused = stack
        .chains
        .cancel_run(authed_as(
            &other,
            pb::CancelRunRequest { id: run.id.clone() },
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::NotFound);

    let run = stack
        .run_until(&run.id, |run| {
            !matches!(
                run.status(),
                pb::ChainRunStatus::Pending | pb::ChainRunStatus::Running
            )
        })
        .await;
    assert_eq!(run.status(), pb::ChainRunStatus::Completed, "{run:#?}");
    assert!(!run.cancel_requested);
    assert_eq!(step(&run, "after").status(), pb::StepStatus::Completed);
    let long = stack.agents.record.tagged("long");
    assert!(long[0].finished.is_some(), "the step ran to its end");
}

#[sqlx::test(migrations = false)]
async fn another_tenant_cannot_update_a_chain(pool: sqlx::PgPool) {
    let stack = start(pool).await;
    let chain = own_chain(&stack, "counting").await;
    let other = stack.other_tenant().await;
    let refused = stack
        .chains
        .clone()
        .update_chain(authed_as(
            &other,
            pb::UpdateChainRequest {
                id: chain.id.clone(),
                definition_json: json!({"agents": ["add_one", "add_one"]}).to_string(),
                name: Some("taken over".to_owned()),
                description: Some("theirs".to_owned()),
                expected_version: None,
                installed_from: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::NotFound);
    let unchanged = chain_as_it_is(&stack, &chain.id).await;
    assert_eq!(unchanged, chain);
}

#[sqlx::test(migrations = false)]
async fn another_tenant_cannot_delete_a_chain(pool: sqlx::PgPool) {
    let stack = start(pool).await;
    let chain = own_chain(&stack, "counting").await;
    let other = stack.other_tenant().await;
    let refused = stack
        .chains
        .clone()
        .delete_chain(authed_as(
            &other,
            pb::DeleteChainRequest {
                id: chain.id.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::NotFound);
    assert_eq!(chain_as_it_is(&stack, &chain.id).await, chain);
}

#[sqlx::test(migrations = false)]
async fn another_tenant_cannot_run_a_chain_by_its_id(pool: sqlx::PgPool) {
    let stack = start(pool).await;
    let chain = own_chain(&stack, "counting").await;
    let other = stack.other_tenant().await;
    let refused = stack
        .chains
        .clone()
        .execute_chain(authed_as(
            &other,
            pb::ExecuteChainRequest {
                target: Some(pb::execute_chain_request::Target::Chain(pb::ChainRef {
                    id: chain.id.clone(),
                    version: None,
                })),
                input_json: json!({"n": 1}).to_string(),
                wait: true,
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::NotFound);
    assert!(runs_of(&stack, &other).await.is_empty());
    assert!(runs_of(&stack, &stack.token).await.is_empty());
    assert!(stack.agents.record.calls().is_empty(), "nothing ran");
    assert_eq!(chain_as_it_is(&stack, &chain.id).await, chain);
}

#[sqlx::test(migrations = false)]
async fn a_chain_name_taken_in_one_tenant_is_free_in_another(pool: sqlx::PgPool) {
    let stack = start(pool).await;
    let chain = own_chain(&stack, "counting").await;
    let other = stack.other_tenant().await;
    let theirs = stack
        .chains
        .clone()
        .create_chain(authed_as(
            &other,
            pb::CreateChainRequest {
                name: "counting".to_owned(),
                description: "theirs".to_owned(),
                definition_json: json!({"agents": ["add_one", "add_one"]}).to_string(),
                installed_from: String::new(),
            },
        ))
        .await
        .expect("names are per tenant")
        .into_inner();
    assert_ne!(theirs.id, chain.id);
    assert_eq!(chain_as_it_is(&stack, &chain.id).await, chain);
    let listed = stack
        .chains
        .clone()
        .list_chains(stack.authed(pb::ListChainsRequest {
            origin: pb::ChainOrigin::Tenant.into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .chains;
    let ids: Vec<&str> = listed.iter().map(|listed| listed.id.as_str()).collect();
    assert_eq!(ids, [chain.id.as_str()]);
}

#[sqlx::test(migrations = false)]
async fn an_idempotency_key_of_one_tenant_starts_a_new_run_in_another(pool: sqlx::PgPool) {
    let mut stack = start(pool).await;
    let definition = json!({"agents": ["add_one"]});
    let first = stack
        .try_execute(definition.clone(), json!({"n": 1}), true, "shared-key")
        .await
        .unwrap();
    let other = stack.other_tenant().await;
    let theirs = stack
        .chains
        .clone()
        .execute_chain(authed_as(
            &other,
            inline_run(&definition, &json!({"n": 1}), "shared-key"),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(theirs.id, first.id);
    let hidden = stack
        .chains
        .clone()
        .get_run(authed_as(&other, pb::GetRunRequest { id: first.id }))
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);
}
