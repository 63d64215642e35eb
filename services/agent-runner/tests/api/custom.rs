//! Custom agents: defined, listed, run, updated, deleted; kept to their tenant and their folder.

use sankalpa_proto::v1 as pb;
use serde_json::{Value, json};
use tonic::Code;

use crate::{authed, json, start, violated_fields};

fn greeter(file_path: &str) -> Value {
    json!({
        "name": "greeter",
        "category": "custom",
        "description": "Greets someone and leaves a note.",
        "version": "1.0.0",
        "input_schema": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string", "minLength": 1}, "dir": {"type": "string"}}},
        "output_schema": {"type": "object", "required": ["greeting"], "properties": {"greeting": {"type": "string"}}},
        "template": {
            "output": {"greeting": "Hello, {{ name }}!"},
            "files": [{"path": file_path, "content": "A note for {{ name | upper }}"}]
        }
    })
}

async fn create(
    app: &mut crate::TestRunner,
    token: &str,
    definition: &Value,
) -> Result<pb::Agent, tonic::Status> {
    app.client
        .create_custom_agent(authed(
            pb::CreateCustomAgentRequest {
                definition_json: definition.to_string(),
                installed_from: String::new(),
            },
            token,
        ))
        .await
        .map(tonic::Response::into_inner)
}

#[sqlx::test(migrations = false)]
async fn a_custom_agent_is_defined_listed_run_changed_and_deleted(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let agent = create(
        &mut app,
        &ada.token,
        &greeter("notes/{{ name | slug }}.txt"),
    )
    .await
    .unwrap();
    assert_eq!(agent.origin, pb::AgentOrigin::Custom as i32);
    assert_eq!(agent.custom.as_ref().unwrap().revision, 1);

    let listed = app
        .client
        .list_agents(authed(
            pb::ListAgentsRequest {
                origin: pb::AgentOrigin::Custom as i32,
                ..Default::default()
            },
            &ada.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .agents;
    assert_eq!(
        listed.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
        ["greeter"]
    );

    let run = app
        .execute(&ada.token, "greeter", json!({"name": "Ada Lovelace"}))
        .await
        .unwrap();
    assert_eq!(
        run.status,
        pb::AgentRunStatus::Completed as i32,
        "{:?}",
        run.error
    );
    assert_eq!(
        json(&run.output_json),
        json!({"greeting": "Hello, Ada Lovelace!"})
    );
    assert_eq!(
        run.artifacts
            .iter()
            .map(|a| a.path.as_str())
            .collect::<Vec<_>>(),
        ["notes/ada-lovelace.txt"]
    );
    let status = app
        .execute(&ada.token, "greeter", json!({}))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["input.name"]);

    let mut changed = greeter("notes/{{ name | slug }}.md");
    changed["version"] = json!("1.1.0");
    let update = |expected| pb::UpdateCustomAgentRequest {
        name: "greeter".into(),
        definition_json: changed.to_string(),
        expected_revision: Some(expected),
        installed_from: String::new(),
    };
    let updated = app
        .client
        .update_custom_agent(authed(update(1), &ada.token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (updated.version.as_str(), updated.custom.unwrap().revision),
        ("1.1.0", 2)
    );
    let status = app
        .client
        .update_custom_agent(authed(update(1), &ada.token))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Aborted);

    app.client
        .delete_custom_agent(authed(
            pb::DeleteCustomAgentRequest {
                name: "greeter".into(),
            },
            &ada.token,
        ))
        .await
        .unwrap();
    let status = app
        .execute(&ada.token, "greeter", json!({"name": "x"}))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[sqlx::test(migrations = false)]
async fn custom_agents_belong_to_their_tenant_and_built_in_names_are_taken(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let bob = app.sign_up().await;
    create(&mut app, &ada.token, &greeter("note.txt"))
        .await
        .unwrap();
    let status = app
        .execute(&bob.token, "greeter", json!({"name": "x"}))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    create(&mut app, &bob.token, &greeter("note.txt"))
        .await
        .expect("bob may use the same name");

    let mut builtin = greeter("note.txt");
    builtin["name"] = json!("hello_world");
    assert_eq!(
        create(&mut app, &ada.token, &builtin)
            .await
            .unwrap_err()
            .code(),
        Code::AlreadyExists
    );
    assert_eq!(
        create(&mut app, &ada.token, &greeter("note.txt"))
            .await
            .unwrap_err()
            .code(),
        Code::AlreadyExists
    );
    let status = app
        .client
        .delete_custom_agent(authed(
            pb::DeleteCustomAgentRequest {
                name: "hello_world".into(),
            },
            &ada.token,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);

    let reader = app
        .token_with(&ada, &["agents:read", "agents:execute"])
        .await;
    assert_eq!(
        create(&mut app, &reader, &greeter("x.txt"))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
}

#[sqlx::test(migrations = false)]
async fn templates_cannot_reach_outside_their_folder(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    for path in ["../escape.txt", "/etc/passwd", "notes/../../x", "C:/x"] {
        let status = create(&mut app, &ada.token, &greeter(path))
            .await
            .unwrap_err();
        assert_eq!(
            violated_fields(&status),
            ["definition_json.template.files[0].path"],
            "{path}"
        );
        let checked = app
            .client
            .validate_agent_definition(authed(
                pb::ValidateAgentDefinitionRequest {
                    definition_json: greeter(path).to_string(),
                },
                &ada.token,
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(!checked.valid && checked.agent.is_none());
        assert_eq!(checked.violations[0].field, "template.files[0].path");
    }
    let checked = app
        .client
        .validate_agent_definition(authed(
            pb::ValidateAgentDefinitionRequest {
                definition_json: greeter("ok/{{name}}.txt").to_string(),
            },
            &ada.token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(checked.valid, "{:?}", checked.violations);
    assert_eq!(checked.agent.unwrap().name, "greeter");

    // A path that only the input makes dangerous is refused when rendered, and nothing is written.
    create(&mut app, &ada.token, &greeter("{{ dir }}/note.txt"))
        .await
        .unwrap();
    let run = app
        .execute(&ada.token, "greeter", json!({"name": "x", "dir": ".."}))
        .await
        .unwrap();
    assert_eq!(run.status, pb::AgentRunStatus::Failed as i32);
    assert_eq!(run.error.unwrap().code, "invalid_input");
    assert!(run.artifacts.is_empty());
}

#[sqlx::test(migrations = false)]
async fn self_replicator_and_plugin_loader_install_agents_that_then_run(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let out = app
        .output(&ada.token, "self_replicator", json!({"description": "Drafts release notes given a version and highlights, and returns a summary.", "name": "release_notes"}))
        .await;
    assert_eq!(
        (out["agent"].as_str(), out["action"].as_str()),
        (Some("release_notes"), Some("installed"))
    );
    assert_eq!(out["method"], "template", "no LLM here");
    let run = app
        .execute(
            &ada.token,
            "release_notes",
            json!({"version": "2.0.0", "highlights": "faster runs"}),
        )
        .await
        .unwrap();
    assert_eq!(
        json(&run.output_json)["summary"],
        "release_notes: version=2.0.0, highlights=faster runs"
    );
    assert_eq!(run.artifacts[0].path, "release_notes/2-0-0.md");

    let out = app
        .output(
            &ada.token,
            "plugin_loader",
            json!({"definition": greeter("hi.txt"), "installed_from": "item-1@1.0.0"}),
        )
        .await;
    assert_eq!(
        (out["action"].as_str(), out["revision"].as_u64()),
        (Some("installed"), Some(1))
    );
    let out = app
        .output(
            &ada.token,
            "plugin_loader",
            json!({"definition": greeter("hello.txt")}),
        )
        .await;
    assert_eq!(
        (out["action"].as_str(), out["revision"].as_u64()),
        (Some("updated"), Some(2))
    );
    let run = app
        .execute(
            &ada.token,
            "plugin_loader",
            json!({"definition": greeter("../x")}),
        )
        .await
        .unwrap();
    assert_eq!(run.error.unwrap().code, "invalid_input");

    let executor = app.token_with(&ada, &["agents:execute"]).await;
    let status = app
        .execute(
            &executor,
            "plugin_loader",
            json!({"definition": greeter("x.txt")}),
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
}

/// How many custom-agent definitions agent-runner has compiled, from its metrics.
async fn compilations(app: &crate::TestRunner) -> u64 {
    let url = format!("{}/metrics", app.runner.http_url());
    let body = reqwest::get(url).await.unwrap().text().await.unwrap();
    body.lines()
        .find_map(|line| line.strip_prefix("agent_definitions_compiled_total "))
        .map_or(0, |value| value.trim().parse().unwrap())
}

#[sqlx::test(migrations = false)]
async fn a_definition_is_compiled_once_per_revision(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let greeter = |greeting: &str| {
        json!({
            "name": "greeter", "category": "custom", "description": "Greets.", "version": "1.0.0",
            "input_schema": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string", "pattern": "^[A-Za-z ]+$"}}},
            "output_schema": {"type": "object"},
            "template": {"output": {"greeting": format!("{greeting}, {{{{ name }}}}!")}}
        })
    };
    create(&mut app, &ada.token, &greeter("Hello"))
        .await
        .unwrap();
    assert_eq!(compilations(&app).await, 1, "saving compiles it");

    for _ in 0..3 {
        let out = app
            .output(&ada.token, "greeter", json!({"name": "Ada"}))
            .await;
        assert_eq!(out["greeting"], "Hello, Ada!");
    }
    let get = pb::GetAgentRequest {
        name: "greeter".into(),
    };
    app.client
        .get_agent(authed(get.clone(), &ada.token))
        .await
        .unwrap();
    app.client
        .list_agents(authed(pb::ListAgentsRequest::default(), &ada.token))
        .await
        .unwrap();
    assert_eq!(compilations(&app).await, 1, "runs, gets and lists reuse it");

    let updated = app
        .client
        .update_custom_agent(authed(
            pb::UpdateCustomAgentRequest {
                name: "greeter".into(),
                definition_json: greeter("Hi").to_string(),
                expected_revision: Some(1),
                installed_from: String::new(),
            },
            &ada.token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.custom.unwrap().revision, 2);
    let out = app
        .output(&ada.token, "greeter", json!({"name": "Ada"}))
        .await;
    assert_eq!(out["greeting"], "Hi, Ada!");
    assert_eq!(compilations(&app).await, 2);

    // Deleted and defined again, the agent is at revision 1 once more: still the new one runs.
    app.client
        .delete_custom_agent(authed(
            pb::DeleteCustomAgentRequest {
                name: "greeter".into(),
            },
            &ada.token,
        ))
        .await
        .unwrap();
    create(&mut app, &ada.token, &greeter("Welcome"))
        .await
        .unwrap();
    let out = app
        .output(&ada.token, "greeter", json!({"name": "Ada"}))
        .await;
    assert_eq!(out["greeting"], "Welcome, Ada!");
}
