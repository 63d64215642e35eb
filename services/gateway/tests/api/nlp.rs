//! `/api/nlp/process`: a project in words to a chain that the orchestrator accepts and runs.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use std::time::Duration;

use sankalpa_testkit::llm::StreamingLlm;

use crate::helpers::{problem, spawn_app_with_agents, spawn_app_with_llm};

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {value}"))
        .iter()
        .map(|item| item.as_str().unwrap())
        .collect()
}

#[sqlx::test(migrations = false)]
async fn a_described_project_becomes_a_chain_that_runs_to_completion(pool: PgPool) {
    let app = spawn_app_with_agents(pool).await;
    let ada = app.admin().await;

    let response = app
        .post_as(
            "/api/nlp/process",
            &ada.access_token,
            &json!({"command": "A blog with posts and comments where users log in, with tests",
                    "context": {"project_name": "quill"}}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let plan: Value = response.json().await.unwrap();
    assert_eq!(plan["execution_ready"], true, "{plan}");
    assert_eq!(plan["violations"], json!([]));
    let entities = strings(&plan["analysis"]["identified_entities"]);
    assert!(
        entities.contains(&"Post") && entities.contains(&"Comment"),
        "{entities:?}"
    );
    assert!(strings(&plan["analysis"]["identified_requirements"]).contains(&"auth"));
    let agents: Vec<&str> = plan["chain"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| step["agent"].as_str().unwrap())
        .collect();
    for wanted in ["db_schema", "backend_builder", "auth_builder", "test_suite"] {
        assert!(agents.contains(&wanted), "{wanted} missing from {agents:?}");
    }
    assert_eq!(plan["analysis"]["agent_count"], agents.len());
    assert_eq!(plan["input"]["project_name"], "quill");

    let response = app
        .post_as(
            "/api/chains/execute",
            &ada.access_token,
            &json!({"definition": plan["chain"], "input": plan["input"],
                    "wait": true, "wait_timeout_ms": 60_000}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let run: Value = response.json().await.unwrap();
    assert_eq!(run["status"], "completed", "{run}");
}

#[sqlx::test(migrations = false)]
async fn a_command_that_is_no_project_is_refused_naming_the_field(pool: PgPool) {
    let app = spawn_app_with_agents(pool).await;
    let ada = app.admin().await;
    let refused = [
        (json!({"command": "  x "}), "command"),
        (json!({"command": "x".repeat(5001)}), "command"),
        (json!({"command": "tell me a joke about cats"}), "command"),
        (
            json!({"command": "a shop with products", "context": {"project_name": " "}}),
            "context.project_name",
        ),
    ];
    for (body, field) in refused {
        let response = app
            .post_as("/api/nlp/process", &ada.access_token, &body)
            .await;
        let found = problem(response, StatusCode::BAD_REQUEST).await;
        assert_eq!(found["errors"][0]["field"], field, "{body}: {found}");
    }

    let viewer = app.viewer(&ada).await;
    let response = app
        .post_as(
            "/api/nlp/process",
            &viewer.access_token,
            &json!({"command": "a shop with products"}),
        )
        .await;
    problem(response, StatusCode::FORBIDDEN).await;
}

#[sqlx::test(migrations = false)]
async fn with_a_model_the_model_reads_the_command_and_off_asks_the_rules(pool: PgPool) {
    let reading = json!({
        "agents": [{"agent": "db_schema", "why": "venues and gigs are stored"},
                   {"agent": "backend_builder", "why": "bookings go through an API"}],
        "features": ["api"],
        "entities": [
            {"name": "Venue", "fields": [{"name": "title", "type": "string"}]},
            {"name": "Gig", "fields": [{"name": "venue", "type": "reference", "entity": "Venue"}]}
        ]
    });
    let llm = StreamingLlm::start(vec![reading.to_string()], Duration::ZERO)
        .await
        .unwrap();
    let app = spawn_app_with_llm(pool, &llm).await;
    let ada = app.admin().await;

    // Words the rules cannot read as a project; the model can.
    let command = json!({"command": "somewhere to book live music nights"});
    let response = app
        .post_as("/api/nlp/process", &ada.access_token, &command)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let plan: Value = response.json().await.unwrap();
    assert_eq!(plan["planned_by"], "model", "{plan}");
    assert_eq!(plan["execution_ready"], true, "{plan}");
    assert_eq!(
        strings(&plan["analysis"]["identified_entities"]),
        ["Venue", "Gig"]
    );
    assert_eq!(llm.seen.requests.lock().unwrap().len(), 1);

    let mut off = command.clone();
    off["llm"] = json!("off");
    let response = app
        .post_as("/api/nlp/process", &ada.access_token, &off)
        .await;
    let refused = problem(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(refused["errors"][0]["field"], "command", "{refused}");
    assert_eq!(
        llm.seen.requests.lock().unwrap().len(),
        1,
        "off asks no model"
    );
}
