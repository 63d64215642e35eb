//! Agents through REST: the catalog, runs of real agents with real output, the errors a client
//! can act on, a builder's files as a .tar.gz, and the read-only role.

use std::io::Read;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::{Session, TestApp, problem, spawn_app_with_agents};

async fn execute(app: &TestApp, who: &Session, agent: &str, input: Value) -> reqwest::Response {
    app.post_as(
        "/api/agents/execute",
        &who.access_token,
        &json!({ "agent": agent, "input": input }),
    )
    .await
}

async fn completed(app: &TestApp, who: &Session, agent: &str, input: Value) -> Value {
    let response = execute(app, who, agent, input).await;
    assert_eq!(response.status(), StatusCode::OK);
    let run: Value = response.json().await.unwrap();
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["agent"], agent);
    run
}

fn names(list: &Value) -> Vec<&str> {
    list["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|agent| agent["name"].as_str().unwrap())
        .collect()
}

#[sqlx::test(migrations = false)]
async fn the_catalog_lists_agents_by_category_and_describes_each(pool: PgPool) {
    let app = spawn_app_with_agents(pool).await;
    let ada = app.admin().await;

    let custom: Value = app
        .get_as("/api/agents?category=custom", &ada.access_token)
        .await
        .json()
        .await
        .unwrap();
    let custom_names = names(&custom);
    assert!(custom_names.contains(&"hello_world"), "{custom_names:?}");
    assert!(custom_names.contains(&"custom_calculator"));
    assert!(
        custom["agents"]
            .as_array()
            .unwrap()
            .iter()
            .all(|agent| agent["category"] == "custom")
    );

    let enhanced = app.get_as("/api/agents/enhanced", &ada.access_token).await;
    assert_eq!(enhanced.status(), StatusCode::OK);
    let enhanced: Value = enhanced.json().await.unwrap();
    let enhanced_names = names(&enhanced);
    for agent in ["copilot", "self_replicator", "plugin_loader", "cli_runner"] {
        assert!(
            enhanced_names.contains(&agent),
            "{agent} in {enhanced_names:?}"
        );
    }

    let calculator = app
        .get_as("/api/agents/custom_calculator", &ada.access_token)
        .await;
    assert_eq!(calculator.status(), StatusCode::OK);
    let calculator: Value = calculator.json().await.unwrap();
    assert_eq!(calculator["origin"], "builtin");
    assert_eq!(
        calculator["input_schema"]["properties"]["expression"]["type"],
        "string"
    );
    assert_eq!(
        calculator["input_schema"]["required"],
        json!(["expression"])
    );
}

#[sqlx::test(migrations = false)]
async fn hello_world_and_custom_calculator_do_their_work_through_rest(pool: PgPool) {
    let app = spawn_app_with_agents(pool).await;
    let ada = app.admin().await;

    let hello = completed(&app, &ada, "hello_world", json!({ "name": "Ada" })).await;
    let message = hello["output"]["message"].as_str().unwrap();
    assert!(message.contains("Ada"), "{message}");
    assert!(!hello["run_id"].as_str().unwrap().is_empty());
    assert!(hello["error"].is_null());

    let sum = completed(
        &app,
        &ada,
        "custom_calculator",
        json!({ "expression": "(2 + 3) * 4 - 10 / 4" }),
    )
    .await;
    assert_eq!(sum["output"]["result"], 17.5);

    // A division by zero is the agent failing, not the request: 200, with the reason.
    let response = execute(
        &app,
        &ada,
        "custom_calculator",
        json!({ "expression": "1 / 0" }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let failed: Value = response.json().await.unwrap();
    assert_eq!(failed["status"], "failed");
    assert!(failed["output"].is_null());
    let reason = failed["error"]["message"].as_str().unwrap().to_lowercase();
    assert!(reason.contains("zero"), "{reason}");
}

#[sqlx::test(migrations = false)]
async fn an_unknown_agent_is_404_and_a_bad_input_is_400_naming_the_field(pool: PgPool) {
    let app = spawn_app_with_agents(pool).await;
    let ada = app.admin().await;

    problem(
        execute(&app, &ada, "no_such_agent", json!({})).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.get_as("/api/agents/no_such_agent", &ada.access_token)
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;

    let bad = problem(
        execute(&app, &ada, "custom_calculator", json!({ "expression": 42 })).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    let fields: Vec<&str> = bad["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["input.expression"], "{bad}");
    assert!(bad["detail"].as_str().unwrap().contains("input.expression"));

    // The input must be JSON of the right shape before the agent is even asked.
    let not_an_object = app
        .client
        .post(app.url("/api/agents/execute"))
        .bearer_auth(&ada.access_token)
        .json(&json!({ "input": {} }))
        .send()
        .await
        .unwrap();
    let missing = problem(not_an_object, StatusCode::BAD_REQUEST).await;
    assert!(
        missing["detail"].as_str().unwrap().contains("agent"),
        "{missing}"
    );
}

#[sqlx::test(migrations = false)]
async fn a_builders_files_download_as_a_tar_gz_that_unpacks(pool: PgPool) {
    let app = spawn_app_with_agents(pool).await;
    let ada = app.admin().await;
    let run = completed(
        &app,
        &ada,
        "db_schema",
        json!({
            "project_name": "shop",
            "entities": [
                { "name": "Product", "fields": [{ "name": "title", "type": "string" }] },
                { "name": "Customer", "fields": [{ "name": "email", "type": "email" }] },
            ],
        }),
    )
    .await;
    let written: Vec<String> = run["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|artifact| artifact["path"].as_str().unwrap().to_owned())
        .collect();
    assert!(!written.is_empty(), "{run}");

    let download = app
        .get_as(
            &format!("/api/artifacts/{}", run["workspace_id"].as_str().unwrap()),
            &ada.access_token,
        )
        .await;
    assert_eq!(download.status(), StatusCode::OK);
    assert_eq!(download.headers()["content-type"], "application/gzip");
    let archive = download.bytes().await.unwrap();
    let mut files = std::collections::BTreeMap::new();
    let mut unpacked = tar::Archive::new(flate2::read::GzDecoder::new(&archive[..]));
    for entry in unpacked.entries().expect("a tar archive") {
        let mut entry = entry.expect("a readable entry");
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut content = String::new();
        entry.read_to_string(&mut content).expect("text files");
        files.insert(path, content);
    }
    for path in &written {
        assert!(
            files.keys().any(|file| file.ends_with(path.as_str())),
            "{path} in {:?}",
            files.keys()
        );
    }
    let schema = files
        .iter()
        .find(|(path, _)| path.ends_with(".sql"))
        .map(|(_, content)| content.to_lowercase())
        .expect("the schema is SQL");
    assert!(schema.contains("create table"), "{schema}");
    assert!(schema.contains("product"));

    problem(
        app.get_as("/api/artifacts/no-such-run", &ada.access_token)
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[sqlx::test(migrations = false)]
async fn a_viewer_may_read_agents_but_gets_403_on_execute(pool: PgPool) {
    let app = spawn_app_with_agents(pool).await;
    let admin = app.admin().await;
    let viewer = app.viewer(&admin).await;

    assert_eq!(
        app.get_as("/api/agents/hello_world", &viewer.access_token)
            .await
            .status(),
        StatusCode::OK
    );
    problem(
        execute(&app, &viewer, "hello_world", json!({})).await,
        StatusCode::FORBIDDEN,
    )
    .await;
}

fn greeter(greeting: &str) -> Value {
    json!({
        "name": "greeter",
        "category": "custom",
        "description": "Greets someone.",
        "version": "1.0.0",
        "input_schema": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string", "minLength": 1}}},
        "output_schema": {"type": "object", "required": ["greeting"], "properties": {"greeting": {"type": "string"}}},
        "template": { "output": {"greeting": format!("{greeting}, {{{{ name }}}}!")} }
    })
}

#[sqlx::test(migrations = false)]
async fn a_custom_agent_is_defined_run_updated_and_deleted(pool: PgPool) {
    let app = spawn_app_with_agents(pool).await;
    let ada = app.admin().await;

    let created = app
        .post_as("/api/agents/custom", &ada.access_token, &greeter("Hello"))
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["origin"], "custom");
    assert_eq!(created["custom"]["revision"], 1);
    let listed: Value = app
        .get_as("/api/agents?origin=custom", &ada.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(names(&listed), ["greeter"]);
    let run = completed(&app, &ada, "greeter", json!({ "name": "Ada" })).await;
    assert_eq!(run["output"]["greeting"], "Hello, Ada!");

    let updated = app
        .client
        .put(app.url("/api/agents/custom/greeter?expected_revision=1"))
        .bearer_auth(&ada.access_token)
        .json(&greeter("Howdy"))
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), StatusCode::OK);
    let run = completed(&app, &ada, "greeter", json!({ "name": "Ada" })).await;
    assert_eq!(run["output"]["greeting"], "Howdy, Ada!");

    let mut escaping = greeter("Hi");
    escaping["template"]["files"] = json!([{ "path": "../outside.txt", "content": "x" }]);
    escaping["name"] = json!("escaper");
    let refused = problem(
        app.post_as("/api/agents/custom", &ada.access_token, &escaping)
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(
        refused["errors"][0]["field"]
            .as_str()
            .unwrap()
            .contains("template.files[0].path"),
        "{refused}"
    );

    let deleted = app
        .client
        .delete(app.url("/api/agents/custom/greeter"))
        .bearer_auth(&ada.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    problem(
        execute(&app, &ada, "greeter", json!({ "name": "Ada" })).await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

/// A run named by the caller runs once: asked again, the answer is that run's; asked with
/// another input, 409; another tenant's run of that id is its own.
#[sqlx::test(migrations = false)]
async fn a_named_run_runs_once_and_its_id_is_the_callers(pool: PgPool) {
    let app = spawn_app_with_agents(pool).await;
    let ada = app.admin().await;
    let bob = app.admin().await;
    let ask = |who: &Session, name: &str| {
        let body = json!({"agent": "hello_world", "run_id": "greeting-1", "input": {"name": name}});
        let token = who.access_token.clone();
        let app = &app;
        async move { app.post_as("/api/agents/execute", &token, &body).await }
    };
    let first: Value = ask(&ada, "Ada").await.json().await.unwrap();
    assert_eq!(first["run_id"], "greeting-1");
    let again: Value = ask(&ada, "Ada").await.json().await.unwrap();
    assert_eq!(
        again["started_at"], first["started_at"],
        "the same run's answer"
    );
    problem(ask(&ada, "Bob").await, StatusCode::CONFLICT).await;
    let bobs: Value = ask(&bob, "Bob").await.json().await.unwrap();
    assert_eq!(bobs["output"]["message"], "Hello, Bob!");
    let bad = json!({"agent": "hello_world", "run_id": "no spaces"});
    let refused = app
        .post_as("/api/agents/execute", &ada.access_token, &bad)
        .await;
    let body = problem(refused, StatusCode::BAD_REQUEST).await;
    assert!(body.to_string().contains("run_id"), "{body}");
}
