//! The published schema of a chain definition (`ChainDefinition` in the OpenAPI document)
//! against the orchestrator's parser, which it follows: the catalog's templates and the
//! document's examples fit it, and what it refuses the orchestrator refuses too, naming the same
//! field; definitions at each bound pass both.

use reqwest::StatusCode;
use sankalpa_kit::schema::Schema;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::{TestApp, spawn_app_with_agents};

/// The schema as published in the document.
fn published() -> (Value, Schema) {
    let document = serde_json::to_value(sankalpa_gateway::docs::openapi()).unwrap();
    let source = document["components"]["schemas"]["ChainDefinition"].clone();
    let schema = Schema::compile(&source, "ChainDefinition").unwrap_or_else(|problems| {
        panic!("the published ChainDefinition is outside the kit's JSON Schema: {problems:?}")
    });
    (document, schema)
}

fn refusals(schema: &Schema, definition: &Value) -> Vec<String> {
    schema
        .validate(definition, "definition")
        .into_iter()
        .map(|found| format!("{}: {}", found.path, found.message))
        .collect()
}

#[test]
fn every_template_and_example_fits_the_published_definition_schema() {
    let (document, schema) = published();
    let templates = concat!(env!("CARGO_MANIFEST_DIR"), "/../../catalog/chains");
    let mut checked = 0;
    for entry in std::fs::read_dir(templates).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "json") {
            let template: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let found = refusals(&schema, &template);
            assert!(found.is_empty(), "{}: {found:?}", path.display());
            checked += 1;
        }
    }
    assert!(
        checked >= 4,
        "only {checked} templates found in {templates}"
    );

    let schemas = &document["components"]["schemas"];
    let mut examples: Vec<&Value> = schemas["ChainDefinition"]["examples"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    for body in ["CreateChain", "UpdateChain", "ValidateChain"] {
        examples.push(&schemas[body]["example"]["definition"]);
    }
    assert_eq!(examples.len(), 6);
    for example in examples {
        let found = refusals(&schema, example);
        assert!(found.is_empty(), "{example}: {found:?}");
    }
}

/// Definitions the schema refuses, each with the field the orchestrator names for it.
fn refused_by_both() -> Vec<(&'static str, Value)> {
    let step = |extra: Value| {
        let mut step = json!({"id": "a", "agent": "hello_world"});
        step.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({ "steps": [step] })
    };
    let approval = |approval: Value| json!({"steps": [{"id": "a", "approval": approval}]});
    let many: Vec<Value> = (0..201)
        .map(|index| json!({"id": format!("s{index}"), "agent": "hello_world"}))
        .collect();
    vec![
        ("definition_json", json!({"name": "no form"})),
        (
            "name",
            json!({"name": "n".repeat(101), "agents": ["hello_world"]}),
        ),
        (
            "input_schema",
            json!({"input_schema": "text", "agents": ["hello_world"]}),
        ),
        ("steps", json!({"steps": []})),
        ("steps", json!({ "steps": many })),
        ("steps[0].id", step(json!({"id": "a b"}))),
        ("steps[0].id", step(json!({"id": "i".repeat(65)}))),
        ("steps[0].agent", step(json!({"agent": "Hello"}))),
        (
            "steps[0].retry.attempts",
            step(json!({"retry": {"attempts": 0}})),
        ),
        (
            "steps[0].retry.attempts",
            step(json!({"retry": {"attempts": 11}})),
        ),
        (
            "steps[0].retry.backoff_ms",
            step(json!({"retry": {"backoff_ms": 60_001}})),
        ),
        (
            "steps[0].timeout_ms",
            step(json!({"timeout_ms": 3_600_001})),
        ),
        ("steps[0].input", step(json!({"input": "not an object"}))),
        (
            "steps[0].when",
            step(json!({"when": format!("input.a == '{}'", "x".repeat(4090))})),
        ),
        // Unknown members of a step or its retry: serde names the step.
        ("steps[0]", step(json!({"timeout": 5}))),
        (
            "steps[0]",
            step(json!({"retry": {"attempts": 2, "delay_ms": 5}})),
        ),
        ("steps[0]", step(json!({"on_failure": "retry"}))),
        ("steps[0]", step(json!({"needs": "a"}))),
        (
            "steps[1].needs[0]",
            json!({"steps": [
                {"id": "a", "agent": "hello_world"},
                {"id": "b", "agent": "hello_world", "needs": ["a b"]},
            ]}),
        ),
        (
            "steps[0].approval.approvers",
            approval(json!({"prompt": "Ship?", "approvers": []})),
        ),
        (
            "steps[0].approval.approvers[0]",
            approval(json!({"prompt": "Ship?", "approvers": ["admin"]})),
        ),
        (
            "steps[0].approval.timeout_ms",
            approval(json!({"prompt": "Ship?", "approvers": ["role:admin"], "timeout_ms": 99})),
        ),
        (
            "steps[0].approval.prompt",
            approval(json!({"prompt": "  ", "approvers": ["role:admin"]})),
        ),
        (
            "steps[0].approval",
            json!({"steps": [{"id": "a", "agent": "hello_world",
                "approval": {"prompt": "Ship?", "approvers": ["role:admin"]}}]}),
        ),
        ("steps[0].agent", json!({"steps": [{"id": "a"}]})),
        (
            "steps[0].max_parallel",
            json!({"steps": [{"id": "a", "agent": "hello_world",
                "for_each": "${input.items}", "max_parallel": 65}]}),
        ),
        (
            "steps[0].for_each",
            json!({"steps": [{"id": "a", "agent": "hello_world", "for_each": "input.items"}]}),
        ),
        (
            "steps[0].for_each",
            json!({"steps": [{"id": "a", "approval": {"prompt": "Ship?", "approvers": ["role:admin"]},
                "for_each": "${input.items}"}]}),
        ),
        (
            "steps[0].chain",
            json!({"steps": [{"id": "a", "chain": {}}]}),
        ),
        (
            "steps[0].chain",
            json!({"steps": [{"id": "a", "chain": {"template": "hello-sequence",
                "id": "0190f5a0-0000-7000-8000-000000000000"}}]}),
        ),
        (
            "steps[0].chain.id",
            json!({"steps": [{"id": "a", "chain": {"id": "{0190f5a0-0000-7000-8000-000000000000}"}}]}),
        ),
        (
            "steps[0].chain.template",
            json!({"steps": [{"id": "a", "chain": {"template": "no such template"}}]}),
        ),
        (
            "steps[0].chain.input",
            json!({"steps": [{"id": "a", "chain": {"template": "hello-sequence", "input": [1]}}]}),
        ),
        (
            "steps[0].input",
            json!({"steps": [{"id": "a", "chain": {"template": "hello-sequence"}, "input": {}}]}),
        ),
        (
            "steps[0].timeout_ms",
            json!({"steps": [{"id": "a", "chain": {"template": "hello-sequence"}, "timeout_ms": 5}]}),
        ),
        ("steps", json!({"agents": []})),
        ("agents[0]", json!({"agents": [7]})),
        ("mode", json!({"agents": ["hello_world"], "mode": "serial"})),
        ("mode", json!({"agents": ["hello_world"], "mode": 1})),
        (
            "condition",
            json!({"condition": 5, "then": ["hello_world"]}),
        ),
        ("then", json!({"condition": "input.a"})),
        (
            "else",
            json!({"condition": "input.a", "then": ["hello_world"], "else": null}),
        ),
        (
            "steps",
            json!({"condition": "input.a", "then": [], "else": []}),
        ),
    ]
}

/// Definitions at the bounds, and the corners of telling the forms apart: both accept them.
fn accepted_by_both() -> Vec<Value> {
    let at_most: Vec<&str> = vec!["hello_world"; 200];
    vec![
        json!({"name": "n".repeat(100), "description": null, "agents": at_most, "mode": "parallel"}),
        json!({"steps": [{
            "id": "i".repeat(64),
            "agent": "hello_world",
            "needs": [],
            "when": null,
            "input": null,
            "retry": {"attempts": 10, "backoff_ms": 60_000},
            "timeout_ms": 3_600_000,
            "on_failure": "skip_dependants",
            "on_skip": "continue",
        }]}),
        json!({"agents": ["hello_world"], "mode": null, "input_schema": {"type": "object"}}),
        json!({"steps": [
            {"id": "build", "agent": "hello_world"},
            {"id": "ship", "needs": ["build"], "when": "input.ship", "on_failure": "continue",
             "approval": {"prompt": "p".repeat(2000), "approvers": vec!["role:admin"; 20],
                          "timeout_ms": 604_800_000, "on_timeout": "approve"}},
        ]}),
        json!({"steps": [
            {"id": "plan", "agent": "hello_world"},
            {"id": "each", "agent": "hello_world", "needs": ["plan"],
             "for_each": "${steps.plan.names}", "max_parallel": 64,
             "retry": {"attempts": 10}, "timeout_ms": 1000,
             "input": {"name": "${item}", "at": "${index}"}},
            {"id": "sub", "needs": ["each"], "retry": {"attempts": 2, "backoff_ms": 10},
             "chain": {"template": "hello-sequence", "input": {"names": "${steps.each}"}}},
        ]}),
        json!({"condition": "input.a", "then": [], "else": ["hello_world"]}),
        // The first form present decides; the other forms' members are ignored.
        json!({"steps": [{"id": "a", "agent": "hello_world"}], "agents": 5, "condition": 5}),
        json!({"agents": ["hello_world"], "condition": 5, "then": "x"}),
    ]
}

async fn orchestrator_says(app: &TestApp, token: &str, definition: &Value) -> Value {
    let answer = app
        .post_as(
            "/api/chains/validate",
            token,
            &json!({ "definition": definition }),
        )
        .await;
    assert_eq!(answer.status(), StatusCode::OK);
    answer.json().await.unwrap()
}

#[sqlx::test(migrations = false)]
async fn what_the_definition_schema_refuses_the_orchestrator_refuses_too(pool: PgPool) {
    let (_, schema) = published();
    let app = spawn_app_with_agents(pool).await;
    let ada = app.admin().await;

    for (field, definition) in refused_by_both() {
        let found = refusals(&schema, &definition);
        assert!(!found.is_empty(), "the schema accepts {definition}");
        let said = orchestrator_says(&app, &ada.access_token, &definition).await;
        assert_eq!(said["valid"], false, "{definition}: {said}");
        let fields: Vec<&str> = said["violations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|violation| violation["field"].as_str().unwrap())
            .collect();
        assert!(fields.contains(&field), "{definition}: {said}");
    }

    for definition in accepted_by_both() {
        let found = refusals(&schema, &definition);
        assert!(found.is_empty(), "{definition}: {found:?}");
        let said = orchestrator_says(&app, &ada.access_token, &definition).await;
        assert_eq!(said["valid"], true, "{definition}: {said}");
        // What the orchestrator answers as the DAG form fits the schema as well.
        let normalized = &said["normalized_definition"];
        let found = refusals(&schema, normalized);
        assert!(found.is_empty(), "{normalized}: {found:?}");
    }
}
