//! What a caller is told when something the orchestrator needs is down: UNAVAILABLE, which the
//! gateway answers 503 with Retry-After, never INTERNAL (a bug) or UNKNOWN.

use sankalpa_proto::v1 as pb;
use serde_json::json;
use tonic::Code;

use crate::start;

#[sqlx::test(migrations = false)]
async fn every_submission_answers_unavailable_while_agent_runner_is_down(pool: sqlx::PgPool) {
    let mut stack = start(pool).await;
    stack
        .execute(json!({"agents": ["add_one"]}), json!({"n": 1}), true)
        .await;
    stack.agents.stop().await;
    let definition = json!({"agents": ["add_one"]});

    let executed = stack
        .try_execute(definition.clone(), json!({"n": 1}), true, "")
        .await
        .unwrap_err();
    assert_eq!(executed.code(), Code::Unavailable, "{executed:?}");
    let template = stack
        .chains
        .execute_chain(stack.authed(pb::ExecuteChainRequest {
            target: Some(pb::execute_chain_request::Target::Template(
                "hello-sequence".to_owned(),
            )),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(template.code(), Code::Unavailable, "{template:?}");
    let created = stack
        .chains
        .create_chain(stack.authed(pb::CreateChainRequest {
            name: "counting".to_owned(),
            definition_json: definition.to_string(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(created.code(), Code::Unavailable, "{created:?}");
    let validated = stack
        .chains
        .validate_chain(stack.authed(pb::ValidateChainRequest {
            definition_json: definition.to_string(),
        }))
        .await
        .unwrap_err();
    assert_eq!(validated.code(), Code::Unavailable, "{validated:?}");
}

#[sqlx::test(migrations = false)]
async fn a_database_that_cannot_be_asked_is_unavailable_not_an_internal_error(pool: sqlx::PgPool) {
    let mut stack = start(pool).await;
    let run = stack
        .execute(json!({"agents": ["add_one"]}), json!({"n": 1}), true)
        .await;
    // The orchestrator shares this pool: closed, every query finds no database to ask.
    stack.pool.close().await;

    let read = stack
        .chains
        .get_run(stack.authed(pb::GetRunRequest { id: run.id.clone() }))
        .await
        .unwrap_err();
    assert_eq!(read.code(), Code::Unavailable, "{read:?}");
    let listed = stack
        .chains
        .list_chains(stack.authed(pb::ListChainsRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(listed.code(), Code::Unavailable, "{listed:?}");
    let executed = stack
        .try_execute(json!({"agents": ["add_one"]}), json!({"n": 1}), true, "")
        .await
        .unwrap_err();
    assert_eq!(executed.code(), Code::Unavailable, "{executed:?}");
}
