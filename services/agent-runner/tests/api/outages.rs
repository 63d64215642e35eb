//! When a service agent-runner needs cannot be asked (its database, the memory service), the
//! caller is told UNAVAILABLE, which it can retry, not INTERNAL.

use sankalpa_proto::v1 as pb;
use serde_json::json;
use tonic::Code;

use crate::{authed, start};

async fn create(app: &mut crate::TestRunner, token: &str, definition: &serde_json::Value) {
    app.client
        .create_custom_agent(authed(
            pb::CreateCustomAgentRequest {
                definition_json: definition.to_string(),
                installed_from: String::new(),
            },
            token,
        ))
        .await
        .expect("the agent is defined");
}

#[sqlx::test(migrations = false)]
async fn a_database_that_cannot_be_asked_answers_unavailable(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let echo = json!({
        "name": "echo", "category": "custom", "description": "Echoes.", "version": "1.0.0",
        "input_schema": {"type": "object", "properties": {"text": {"type": "string"}}},
        "output_schema": {"type": "object"},
        "template": {"output": {"echo": "{{ text }}"}}
    });
    create(&mut app, &ada.token, &echo).await;
    app.pool.close().await;

    let status = app
        .execute(&ada.token, "echo", json!({"text": "hi"}))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let status = app
        .client
        .list_agents(authed(pb::ListAgentsRequest::default(), &ada.token))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    // Built-in agents need no database.
    let out = app.output(&ada.token, "hello_world", json!({})).await;
    assert_eq!(out["message"], "Hello, World!");
}

#[sqlx::test(migrations = false)]
async fn a_run_that_cannot_reach_memory_answers_unavailable(pool: sqlx::PgPool) {
    // A port nothing listens on: bound, then let go.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let mut app = crate::start_with(pool, |config| {
        config.memory_url = Some(format!("http://{closed}"));
    })
    .await;
    let ada = app.sign_up().await;
    let status = app
        .execute_with(
            &ada.token,
            pb::ExecuteAgentRequest {
                agent: "multi_agent_memory_manager".into(),
                input_json: json!({"entries": [{"agent": "a", "key": "k", "value": "v"}]})
                    .to_string(),
                session_id: Some("planning".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains("memory"), "{}", status.message());
}
