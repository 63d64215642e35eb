//! What the gateway says about itself: the OpenAPI document, the docs page, its status, and
//! the headers every response carries.

use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;

use crate::helpers::{spawn_app, spawn_app_with, spawn_app_with_marketplace};

#[sqlx::test(migrations = false)]
async fn openapi_json_is_an_openapi_3_document_describing_every_route(pool: PgPool) {
    let app = spawn_app(pool).await;

    let document: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    assert!(document["info"]["title"].is_string());
    let paths = document["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/status", "get"),
        ("/api/users/register", "post"),
        ("/api/users/login", "post"),
        ("/api/users/refresh", "post"),
        ("/api/users/logout", "post"),
        ("/api/users/me", "get"),
        ("/api/users", "get"),
        ("/api/users", "post"),
        ("/api/users/{id}", "get"),
        ("/api/users/{id}", "delete"),
        ("/api/users/{id}/roles", "put"),
        ("/api/keys", "post"),
        ("/api/keys", "get"),
        ("/api/keys/{id}", "delete"),
        ("/api/tenants", "post"),
        ("/api/tenants", "get"),
        ("/api/tenants/{id}", "get"),
        ("/api/audit", "get"),
        ("/.well-known/jwks.json", "get"),
        ("/api/memory/save", "post"),
        ("/api/memory/load", "post"),
        ("/api/memory/all", "get"),
        ("/api/memory/sessions", "get"),
        ("/api/memory/sessions/{session_id}", "delete"),
        ("/api/memory/sessions/{session_id}/keys/{key}", "delete"),
        ("/api/memory/transaction", "post"),
        ("/api/memory/backup", "post"),
        ("/api/memory/backups", "get"),
        ("/api/memory/restore", "post"),
        ("/api/agents", "get"),
        ("/api/agents/enhanced", "get"),
        ("/api/agents/{name}", "get"),
        ("/api/agents/execute", "post"),
        ("/api/agents/custom", "post"),
        ("/api/agents/custom/{name}", "put"),
        ("/api/agents/custom/{name}", "delete"),
        ("/api/artifacts/{run_id}", "get"),
        ("/api/chains", "get"),
        ("/api/chains", "post"),
        ("/api/chains/{id}", "get"),
        ("/api/chains/{id}", "put"),
        ("/api/chains/{id}", "delete"),
        ("/api/chains/validate", "post"),
        ("/api/chains/execute", "post"),
        ("/api/chains/runs", "get"),
        ("/api/chains/runs/{id}", "get"),
        ("/api/chains/runs/{id}/cancel", "post"),
        ("/api/chains/runs/{id}/events", "get"),
        ("/api/events", "get"),
        ("/ws", "get"),
        ("/api/marketplace", "get"),
        ("/api/marketplace", "post"),
        ("/api/marketplace/items/{id}", "get"),
        ("/api/marketplace/items/{id}/versions", "get"),
        (
            "/api/marketplace/items/{id}/versions/{version}/yank",
            "post",
        ),
        ("/api/marketplace/items/{id}/reviews", "post"),
        ("/api/marketplace/items/{id}/reviews", "get"),
        ("/api/marketplace/items/{id}/install", "post"),
        ("/api/marketplace/installs", "get"),
    ] {
        assert!(
            paths[path][method].is_object(),
            "{method} {path} is missing"
        );
    }
    // Every schema a route refers to is defined.
    let schemas = document["components"]["schemas"].as_object().unwrap();
    let text = document.to_string();
    for reference in text.split("\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(
            schemas.contains_key(name),
            "{name} is referenced but not defined"
        );
    }
}

#[sqlx::test(migrations = false)]
async fn the_docs_page_loads_the_api_description(pool: PgPool) {
    let app = spawn_app(pool).await;

    let page = app.client.get(app.url("/docs")).send().await.unwrap();

    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    assert!(page.text().await.unwrap().contains("/docs/init.js"));
    let init = app
        .client
        .get(app.url("/docs/init.js"))
        .send()
        .await
        .unwrap();
    assert!(init.text().await.unwrap().contains("/openapi.json"));
}

#[sqlx::test(migrations = false)]
async fn status_reports_the_version_and_every_service_serving(pool: PgPool) {
    let app = spawn_app_with_marketplace(pool).await;

    let status: Value = app
        .client
        .get(app.url("/api/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    assert_eq!(status["status"], "ok", "{status}");
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(status["services"][0]["name"], "auth");
    assert_eq!(status["services"][0]["status"], "serving");
    assert_eq!(status["services"][1]["name"], "memory");
    assert_eq!(status["services"][1]["status"], "serving");
    assert_eq!(status["services"][2]["name"], "agent-runner");
    assert_eq!(status["services"][2]["status"], "serving");
    assert_eq!(status["services"][3]["name"], "chain-orchestrator");
    assert_eq!(status["services"][3]["status"], "serving");
    assert_eq!(status["services"][4]["name"], "marketplace");
    assert_eq!(status["services"][4]["status"], "serving");
}

#[sqlx::test(migrations = false)]
async fn status_is_degraded_while_a_service_is_unreachable(pool: PgPool) {
    // No memory runs behind this gateway.
    let app = spawn_app(pool).await;

    let status: Value = app
        .client
        .get(app.url("/api/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    assert_eq!(status["status"], "degraded", "{status}");
    assert_eq!(status["services"][0]["status"], "serving");
    assert_eq!(status["services"][1]["name"], "memory");
    assert_eq!(status["services"][1]["status"], "unreachable");
}

#[sqlx::test(migrations = false)]
async fn responses_carry_security_headers_and_echo_the_request_id(pool: PgPool) {
    let app = spawn_app(pool).await;

    let echoed = app
        .client
        .get(app.url("/api/status"))
        .header("x-request-id", "req-42")
        .send()
        .await
        .unwrap();
    let generated = app.client.get(app.url("/nowhere")).send().await.unwrap();

    assert_eq!(echoed.headers()["x-request-id"], "req-42");
    assert_eq!(echoed.headers()["x-content-type-options"], "nosniff");
    assert_eq!(echoed.headers()["x-frame-options"], "DENY");
    assert!(echoed.headers().contains_key("content-security-policy"));
    assert!(echoed.headers().contains_key("referrer-policy"));
    assert_eq!(generated.status(), StatusCode::NOT_FOUND);
    assert!(!generated.headers()["x-request-id"].is_empty());
}

#[sqlx::test(migrations = false)]
async fn browsers_of_allowed_origins_may_call_and_others_get_no_cors_answer(pool: PgPool) {
    let allowed = "https://ui.example.com";
    let app = spawn_app_with(pool.clone(), |_, gateway| {
        gateway.cors_origins = vec![allowed.to_owned()];
    })
    .await;
    let preflight = |origin: &str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/api/users/me"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };

    let answered = preflight(allowed).await.unwrap();
    assert_eq!(answered.headers()["access-control-allow-origin"], allowed);
    assert!(
        answered.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization")
    );
    let stranger = preflight("https://elsewhere.example.com").await.unwrap();
    assert!(
        !stranger
            .headers()
            .contains_key("access-control-allow-origin")
    );

    // None allowed by default: no response says anything of CORS.
    let closed = spawn_app(pool).await;
    let response = closed
        .client
        .get(closed.url("/api/status"))
        .header("origin", allowed)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin")
    );
}
