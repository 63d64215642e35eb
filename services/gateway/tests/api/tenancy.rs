//! Another tenant's things are not found, whatever route is tried, and nothing of them changes:
//! every write route of every service, driven through the gateway by a second tenant's admin
//! with the first tenant's ids, answers 404, and the first tenant then finds all as it was.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::chains::{execute, finished_run, two_greetings};
use crate::helpers::{
    PASSWORD, Session, TestApp, problem, spawn_app_with_marketplace, text, unique_email,
};

async fn send(
    app: &TestApp,
    who: &Session,
    method: Method,
    path: &str,
    body: Value,
) -> reqwest::Response {
    app.client
        .request(method, app.url(path))
        .bearer_auth(&who.access_token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn created(response: reqwest::Response) -> Value {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert!(status.is_success(), "{status}: {body}");
    body
}

fn greeter(greeting: &str) -> Value {
    json!({
        "name": "greeter",
        "category": "custom",
        "description": "Greets someone.",
        "version": "1.0.0",
        "input_schema": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}},
        "output_schema": {"type": "object", "required": ["greeting"], "properties": {"greeting": {"type": "string"}}},
        "template": { "output": {"greeting": format!("{greeting}, {{{{ name }}}}!")} }
    })
}

fn item(slug: &str, visibility: &str) -> Value {
    json!({
        "slug": slug,
        "name": "Greeter",
        "description": "Greets whoever is named.",
        "tags": ["demo"],
        "kind": "chain",
        "visibility": visibility,
        "version": "1.0.0",
        "package": { "name": slug, "steps": [{ "id": "greet", "agent": "hello_world" }] },
    })
}

#[sqlx::test(migrations = false)]
async fn no_write_route_reaches_another_tenants_things(pool: PgPool) {
    let app = spawn_app_with_marketplace(pool).await;
    let ada = app.admin().await;
    let eve = app.admin().await;

    // Ada's tenant: a member, a key, a custom agent, a chain and its run, a builder's files,
    // a memory session and its backup, a private and a public marketplace item.
    let bob_email = unique_email();
    let bob = created(
        app.post_as(
            "/api/users",
            &ada.access_token,
            &json!({ "email": bob_email, "password": PASSWORD, "roles": ["developer"] }),
        )
        .await,
    )
    .await;
    let bob_id = text(&bob["id"]);
    let key = created(
        app.post_as("/api/keys", &ada.access_token, &json!({ "name": "ci" }))
            .await,
    )
    .await;
    let key_id = text(&key["key"]["id"]);
    let key_secret = text(&key["secret"]);
    created(
        app.post_as("/api/agents/custom", &ada.access_token, &greeter("Hello"))
            .await,
    )
    .await;
    let chain = created(
        app.post_as(
            "/api/chains",
            &ada.access_token,
            &json!({ "name": "greetings", "definition": two_greetings() }),
        )
        .await,
    )
    .await;
    let chain_id = text(&chain["id"]);
    let started = execute(
        &app,
        &ada,
        &json!({ "chain_id": chain_id, "input": { "name": "Ada" } }),
    )
    .await;
    assert_eq!(started.status(), StatusCode::ACCEPTED);
    let location = started.headers()["location"].to_str().unwrap().to_owned();
    let run = finished_run(&app, &ada, &location).await;
    let run_id = text(&run["id"]);
    let built = created(
        app.post_as(
            "/api/agents/execute",
            &ada.access_token,
            &json!({ "agent": "db_schema", "input": { "project_name": "shop", "entities": [
                { "name": "Product", "fields": [{ "name": "title", "type": "string" }] } ] } }),
        )
        .await,
    )
    .await;
    let workspace = text(&built["workspace_id"]);
    created(
        app.post_as(
            "/api/memory/save",
            &ada.access_token,
            &json!({ "session_id": "s1", "key": "k", "value": "ada's" }),
        )
        .await,
    )
    .await;
    let backup = created(
        app.post_as(
            "/api/memory/backup",
            &ada.access_token,
            &json!({ "session_id": "s1" }),
        )
        .await,
    )
    .await;
    let backup_id = text(&backup["id"]);
    let private = created(
        app.post_as(
            "/api/marketplace",
            &ada.access_token,
            &item("ada-private", "private"),
        )
        .await,
    )
    .await;
    let private_id = text(&private["item"]["id"]);

    // Eve, admin of another tenant, tries every write route with Ada's ids.
    let attempts: Vec<(Method, String, Value)> = vec![
        (
            Method::PUT,
            format!("/api/users/{bob_id}/roles"),
            json!({ "roles": ["admin"] }),
        ),
        (Method::DELETE, format!("/api/users/{bob_id}"), json!({})),
        (Method::DELETE, format!("/api/keys/{key_id}"), json!({})),
        (
            Method::PUT,
            "/api/agents/custom/greeter".to_owned(),
            greeter("Pwned"),
        ),
        (
            Method::DELETE,
            "/api/agents/custom/greeter".to_owned(),
            json!({}),
        ),
        (
            Method::POST,
            "/api/agents/execute".to_owned(),
            json!({ "agent": "greeter", "input": { "name": "x" } }),
        ),
        (
            Method::GET,
            format!("/api/artifacts/{workspace}"),
            json!({}),
        ),
        (
            Method::PUT,
            format!("/api/chains/{chain_id}"),
            json!({ "definition": { "agents": ["hello_world"] } }),
        ),
        (Method::DELETE, format!("/api/chains/{chain_id}"), json!({})),
        (
            Method::POST,
            "/api/chains/execute".to_owned(),
            json!({ "chain_id": chain_id, "input": { "name": "x" } }),
        ),
        (
            Method::POST,
            format!("/api/chains/runs/{run_id}/cancel"),
            json!({}),
        ),
        (
            Method::GET,
            format!("/api/chains/runs/{run_id}/events"),
            json!({}),
        ),
        (
            Method::DELETE,
            "/api/memory/sessions/s1/keys/k".to_owned(),
            json!({}),
        ),
        (
            Method::DELETE,
            "/api/memory/sessions/s1".to_owned(),
            json!({}),
        ),
        (
            Method::POST,
            "/api/memory/backup".to_owned(),
            json!({ "session_id": "s1" }),
        ),
        (
            Method::POST,
            "/api/memory/restore".to_owned(),
            json!({ "backup_id": backup_id }),
        ),
        (
            Method::POST,
            "/api/memory/restore".to_owned(),
            json!({ "backup_id": backup_id, "target_session_id": "eve" }),
        ),
        (
            Method::POST,
            format!("/api/marketplace/items/{private_id}/install"),
            json!({}),
        ),
        (
            Method::POST,
            format!("/api/marketplace/items/{private_id}/reviews"),
            json!({ "rating": 1, "comment": "x" }),
        ),
        (
            Method::POST,
            format!("/api/marketplace/items/{private_id}/versions/1.0.0/yank"),
            json!({}),
        ),
    ];
    for (method, path, body) in attempts {
        let response = send(&app, &eve, method.clone(), &path, body).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{method} {path}");
        problem(response, StatusCode::NOT_FOUND).await;
    }

    // Everything of Ada's is as it was.
    let bob_now = created(
        app.get_as(&format!("/api/users/{bob_id}"), &ada.access_token)
            .await,
    )
    .await;
    assert_eq!(bob_now["roles"], json!(["developer"]));
    let keys = created(app.get_as("/api/keys", &ada.access_token).await).await;
    // Her tool key, live; the chain runs' key beside it is the orchestrator's to revoke.
    let tool_key = keys["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|key| key["id"] == key_id.as_str()))
        .unwrap_or_else(|| panic!("Ada's key is listed: {keys}"));
    assert!(tool_key["revoked_at"].is_null(), "{keys}");
    let with_key = app
        .client
        .get(app.url("/api/users/me"))
        .header("x-api-key", &key_secret)
        .send()
        .await
        .unwrap();
    assert_ne!(with_key.status(), StatusCode::UNAUTHORIZED);
    let greeted = created(
        app.post_as(
            "/api/agents/execute",
            &ada.access_token,
            &json!({ "agent": "greeter", "input": { "name": "Ada" } }),
        )
        .await,
    )
    .await;
    assert_eq!(greeted["output"]["greeting"], "Hello, Ada!");
    let chain_now = created(
        app.get_as(&format!("/api/chains/{chain_id}"), &ada.access_token)
            .await,
    )
    .await;
    assert_eq!(chain_now["version"], 1);
    let run_now = created(app.get_as(&location, &ada.access_token).await).await;
    assert_eq!(run_now["status"], run["status"]);
    let loaded = created(
        app.post_as(
            "/api/memory/load",
            &ada.access_token,
            &json!({ "session_id": "s1", "key": "k" }),
        )
        .await,
    )
    .await;
    assert_eq!(loaded["value"], "ada's");
    let versions = created(
        app.get_as(
            &format!("/api/marketplace/items/{private_id}/versions"),
            &ada.access_token,
        )
        .await,
    )
    .await;
    assert!(versions.to_string().contains("1.0.0"), "{versions}");
    assert!(
        !versions.to_string().contains("\"yanked\":true"),
        "{versions}"
    );
    // Eve's own tenant got nothing from the attempts either.
    let eve_sessions = created(app.get_as("/api/memory/sessions", &eve.access_token).await).await;
    assert_eq!(eve_sessions["sessions"], json!([]), "{eve_sessions}");
}
