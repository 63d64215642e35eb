use sankalpa_proto::v1 as pb;
use serde_json::json;
use tonic::Code;

use crate::{json, start, violated_fields};

#[sqlx::test(migrations = false)]
async fn hello_world_greets_and_reports_the_run(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let run = app
        .execute(&ada.token, "hello_world", json!({"name": "Ada"}))
        .await
        .unwrap();
    assert_eq!(run.status, pb::AgentRunStatus::Completed as i32);
    assert_eq!(json(&run.output_json), json!({"message": "Hello, Ada!"}));
    assert_eq!(run.agent, "hello_world");
    assert_eq!(run.agent_version, "1.0.0");
    assert!(!run.run_id.is_empty());
    assert_eq!(run.workspace_id, run.run_id);
    assert!(run.error.is_none() && !run.llm_used);
    assert!(run.started_at.is_some() && run.finished_at.is_some());

    let run = app
        .execute_with(
            &ada.token,
            pb::ExecuteAgentRequest {
                agent: "hello_world".into(),
                run_id: Some("step-1".into()),
                workspace_id: Some("chain-run-9".into()),
                session_id: Some("s1".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(json(&run.output_json)["message"], "Hello, World!");
    assert_eq!(
        (
            run.run_id.as_str(),
            run.workspace_id.as_str(),
            run.session_id.as_str()
        ),
        ("step-1", "chain-run-9", "s1")
    );
}

#[sqlx::test(migrations = false)]
async fn an_input_that_breaks_the_schema_names_the_field(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let status = app
        .execute(&ada.token, "hello_world", json!({"name": 42}))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["input.name"]);

    let status = app
        .execute(
            &ada.token,
            "custom_calculator",
            json!({"variables": {"x": "one"}}),
        )
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&status),
        ["input.expression", "input.variables.x"]
    );

    let status = app
        .execute_with(
            &ada.token,
            pb::ExecuteAgentRequest {
                agent: "hello_world".into(),
                input_json: "{not json".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["input_json"]);

    // Postgres's jsonb, where the outcome is kept, cannot hold a NUL.
    let status = app
        .execute(&ada.token, "hello_world", json!({"name": "a\0"}))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["input_json"]);

    let status = app
        .execute_with(
            &ada.token,
            pb::ExecuteAgentRequest {
                agent: "hello_world".into(),
                run_id: Some("../escape".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["run_id"]);
}

#[sqlx::test(migrations = false)]
async fn an_unknown_agent_is_not_found(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let status = app
        .execute(&ada.token, "no_such_agent", json!({}))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[sqlx::test(migrations = false)]
async fn callers_need_a_token_and_the_execute_permission(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let status = app
        .client
        .execute_agent(pb::ExecuteAgentRequest {
            agent: "hello_world".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    let reader = app.token_with(&ada, &["agents:read"]).await;
    let status = app
        .execute(&reader, "hello_world", json!({}))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(status.message().contains("agents:execute"));

    let runner = app.token_with(&ada, &["agents:execute"]).await;
    app.output(&runner, "hello_world", json!({})).await;
}

#[sqlx::test(migrations = false)]
async fn an_agent_that_fails_answers_a_failed_run_with_its_reason(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let run = app
        .execute(
            &ada.token,
            "custom_calculator",
            json!({"expression": "1 / (3 - 3)"}),
        )
        .await
        .unwrap();
    assert_eq!(run.status, pb::AgentRunStatus::Failed as i32);
    assert!(run.output_json.is_empty());
    let error = run.error.unwrap();
    assert_eq!(error.code, "agent_failed");
    assert_eq!(error.message, "division by zero at position 3");

    let run = app
        .execute(
            &ada.token,
            "custom_calculator",
            json!({"expression": "2 +"}),
        )
        .await
        .unwrap();
    assert_eq!(run.error.unwrap().code, "invalid_input");
}
