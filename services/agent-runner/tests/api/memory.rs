//! Runs with a memory session read and write it through the real memory service, as the caller.

use sankalpa_proto::v1 as pb;
use sankalpa_proto::v1::memory_service_client::MemoryServiceClient;
use serde_json::json;

use crate::{authed, json, start_on};

#[sqlx::test(migrations = false)]
async fn the_memory_manager_merges_with_the_session_and_writes_back(pool: sqlx::PgPool) {
    // agent-runner needs memory's address before it starts, and memory needs auth's: auth and
    // memory start first. `start_on` starts a second auth on the same database, which loads
    // the same signing key, so its tokens hold for memory too; the runner's cleanup removes the
    // stream all of them share.
    let infra = sankalpa_testkit::infra(&sankalpa_testkit::unique_name());
    let auth = sankalpa_testkit::spawn_auth(pool.clone(), infra.clone(), |_| {})
        .await
        .unwrap();
    let memory =
        sankalpa_testkit::spawn_memory(pool.clone(), infra.clone(), &auth.grpc_url(), |_| {})
            .await
            .unwrap();
    let memory_url = memory.grpc_url();
    let mut app = start_on(pool, infra, |config| config.memory_url = Some(memory_url)).await;
    let ada = app.sign_up().await;
    let mut memory_client = MemoryServiceClient::connect(memory.grpc_url())
        .await
        .unwrap();
    memory_client
        .save(authed(
            pb::SaveRequest {
                session_id: "planning".into(),
                key: "stack".into(),
                value_json: "\"flask\"".into(),
                expected_version: None,
                ttl_seconds: 0,
            },
            &ada.token,
        ))
        .await
        .unwrap();

    let run = app
        .execute_with(
            &ada.token,
            pb::ExecuteAgentRequest {
                agent: "multi_agent_memory_manager".into(),
                input_json: json!({"entries": [
                    {"agent": "architect", "key": "stack", "value": "fastapi", "time": "2999-01-01T00:00:00Z"},
                    {"agent": "planner", "key": "deadline", "value": "friday"}
                ]})
                .to_string(),
                session_id: Some("planning".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        run.status,
        pb::AgentRunStatus::Completed as i32,
        "{:?}",
        run.error
    );
    let out = json(&run.output_json);
    assert_eq!(
        out["merged"],
        json!({"deadline": "friday", "stack": "fastapi"})
    );
    assert_eq!(
        out["conflicts"][0]["candidates"].as_array().unwrap().len(),
        2
    );
    assert_eq!(out["saved_to_session"], json!(["deadline", "stack"]));
    let stack = memory_client
        .load(authed(
            pb::LoadRequest {
                session_id: "planning".into(),
                key: "stack".into(),
            },
            &ada.token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (stack.value_json.as_str(), stack.version),
        ("\"fastapi\"", 2)
    );
}

#[sqlx::test(migrations = false)]
async fn a_run_reads_at_most_four_mebibytes_of_its_session(pool: sqlx::PgPool) {
    let infra = sankalpa_testkit::infra(&sankalpa_testkit::unique_name());
    let auth = sankalpa_testkit::spawn_auth(pool.clone(), infra.clone(), |_| {})
        .await
        .unwrap();
    let memory =
        sankalpa_testkit::spawn_memory(pool.clone(), infra.clone(), &auth.grpc_url(), |_| {})
            .await
            .unwrap();
    let memory_url = memory.grpc_url();
    let mut app = start_on(pool, infra, |config| config.memory_url = Some(memory_url)).await;
    let ada = app.sign_up().await;
    let mut memory_client = MemoryServiceClient::connect(memory.grpc_url())
        .await
        .unwrap();
    // Five values of a million bytes each: past what a run reads.
    let value = serde_json::Value::String("x".repeat(1_000_000)).to_string();
    for key in ["a", "b", "c", "d", "e"] {
        memory_client
            .save(authed(
                pb::SaveRequest {
                    session_id: "big".into(),
                    key: key.into(),
                    value_json: value.clone(),
                    expected_version: None,
                    ttl_seconds: 0,
                },
                &ada.token,
            ))
            .await
            .unwrap();
    }
    let run = app
        .execute_with(
            &ada.token,
            pb::ExecuteAgentRequest {
                agent: "multi_agent_memory_manager".into(),
                input_json: json!({"entries": [{"agent": "planner", "key": "k", "value": "v"}]})
                    .to_string(),
                session_id: Some("big".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(run.status, pb::AgentRunStatus::Failed as i32);
    let error = run.error.unwrap();
    assert_eq!(error.code, "agent_failed");
    assert!(error.message.contains("4194304 bytes"), "{}", error.message);
}
