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
        ("/api/chat/conversations", "get"),
        ("/api/chat/conversations", "post"),
        ("/api/chat/conversations/{id}", "get"),
        ("/api/chat/conversations/{id}", "delete"),
        ("/api/chat/conversations/{id}/messages", "post"),
        (
            "/api/chat/conversations/{id}/messages/{message_id}/run",
            "put",
        ),
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
        ("/api/webhooks/endpoints", "post"),
        ("/api/webhooks/endpoints", "get"),
        ("/api/webhooks/endpoints/{id}", "get"),
        ("/api/webhooks/endpoints/{id}", "patch"),
        ("/api/webhooks/endpoints/{id}", "delete"),
        ("/api/webhooks/endpoints/{id}/rotate-secret", "post"),
        ("/api/webhooks/endpoints/{id}/deliveries", "get"),
        (
            "/api/webhooks/endpoints/{id}/deliveries/{delivery_id}",
            "get",
        ),
        ("/api/webhooks/endpoints/{id}/replay", "post"),
        ("/api/webhooks/endpoints/{id}/test", "post"),
    ] {
        assert!(
            paths[path][method].is_object(),
            "{method} {path} is missing"
        );
    }
    // Every JSON request body of a named schema carries an example, and every error a route
    // answers by rule is declared on it: 401 and 429 everywhere.
    let schemas = &document["components"]["schemas"];
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            let responses = &operation["responses"];
            assert!(responses["401"].is_object(), "{method} {path} lacks 401");
            assert!(responses["429"].is_object(), "{method} {path} lacks 429");
            let body = &operation["requestBody"]["content"]["application/json"]["schema"]["$ref"];
            if let Some(name) = body
                .as_str()
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
            {
                assert!(
                    schemas[name]["example"].is_object(),
                    "{name} has no example"
                );
            }
        }
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
async fn the_docs_page_loads_its_assets_from_the_gateway_only(pool: PgPool) {
    let app = spawn_app(pool).await;

    let page = app.client.get(app.url("/docs")).send().await.unwrap();

    assert_eq!(page.status(), StatusCode::OK);
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(policy.contains("script-src 'self';"), "{policy}");
    assert!(
        !policy.contains("http"),
        "the page may load from elsewhere: {policy}"
    );
    let html = page.text().await.unwrap();
    assert!(!html.contains("https://"), "{html}");
    for (asset, content_type, marker) in [
        ("/docs/init.js", "text/javascript", "/openapi.json"),
        (
            "/docs/swagger-ui-bundle.js",
            "text/javascript",
            "SwaggerUIBundle",
        ),
        ("/docs/swagger-ui.css", "text/css", ".swagger-ui"),
    ] {
        assert!(html.contains(asset), "{asset} is not on the page");
        let response = app.client.get(app.url(asset)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        assert_eq!(response.headers()["content-type"], content_type, "{asset}");
        assert!(response.text().await.unwrap().contains(marker), "{asset}");
    }
}

/// Chromium loads `/docs` with every host but 127.0.0.1 unresolvable; its network log shows the
/// page asked nothing of any other host, and the rendered DOM lists the operations.
#[sqlx::test(migrations = false)]
async fn the_docs_page_renders_the_operations_in_chromium_offline(pool: PgPool) {
    let Some(chromium) = ["chromium", "chromium-browser"].into_iter().find(|name| {
        std::process::Command::new(name)
            .arg("--version")
            .output()
            .is_ok()
    }) else {
        sankalpa_testkit::missing_tool("chromium is not installed (make setup installs it)");
        return;
    };
    let app = spawn_app(pool).await;
    let profile = tempfile_dir();
    let net_log = profile.join("net-log.json");

    let url = app.url("/docs");
    let dom = tokio::task::spawn_blocking({
        let profile = profile.clone();
        let net_log = net_log.clone();
        move || {
            std::process::Command::new(chromium)
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-default-apps",
                    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                    "--virtual-time-budget=20000",
                    "--dump-dom",
                ])
                .arg(format!("--user-data-dir={}", profile.display()))
                .arg(format!("--log-net-log={}", net_log.display()))
                .arg(&url)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let html = String::from_utf8_lossy(&dom.stdout);
    let log = std::fs::read_to_string(&net_log).unwrap_or_default();
    std::fs::remove_dir_all(&profile).ok();

    assert!(
        dom.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&dom.stderr)
    );
    // Swagger UI renders one `opblock` per operation, with its path.
    assert!(html.matches("opblock-summary-path").count() >= 50, "{html}");
    assert!(html.contains("/api/memory/save"), "{html}");
    assert!(html.contains("Sankalpa"), "{html}");
    // What the page asked for carries its origin as initiator; Chromium's own background calls
    // (time, updates; unresolvable here) carry none and are not the page's.
    let origin = app.url("");
    let log: Value = serde_json::from_str(&log).expect("chromium wrote its network log");
    let requested: Vec<&str> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["params"]["initiator"] == origin.as_str())
        .filter_map(|event| event["params"]["url"].as_str())
        .collect();
    for asset in [
        "/docs/swagger-ui-bundle.js",
        "/docs/swagger-ui.css",
        "/openapi.json",
    ] {
        let url = format!("{origin}{asset}");
        assert!(
            requested.contains(&url.as_str()),
            "{asset} was not loaded: {requested:?}"
        );
    }
    let elsewhere: Vec<&&str> = requested
        .iter()
        .filter(|url| !url.starts_with(&format!("{origin}/")))
        .collect();
    assert!(
        elsewhere.is_empty(),
        "the page asked beyond 127.0.0.1: {elsewhere:?}"
    );
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sankalpa-docs-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_committed_openapi_document_is_the_one_the_code_generates() {
    let committed = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
    let generated = sankalpa_gateway::docs::openapi().to_pretty_json().unwrap() + "\n";
    if std::env::var("SANKALPA_WRITE_OPENAPI").is_ok_and(|value| value == "1") {
        std::fs::write(committed, &generated).unwrap();
        return;
    }
    let current = std::fs::read_to_string(committed).unwrap_or_default();
    if current != generated {
        let line = current
            .lines()
            .zip(generated.lines())
            .position(|(was, is)| was != is)
            .map_or(
                current.lines().count().min(generated.lines().count()),
                |at| at,
            )
            + 1;
        panic!(
            "docs/openapi.json differs from the generated document from line {line}; review the \
             change and rewrite it with `make openapi` (SANKALPA_WRITE_OPENAPI=1)"
        );
    }
}

#[sqlx::test(migrations = false)]
async fn every_problem_type_is_a_page_of_the_gateway(pool: PgPool) {
    let app = spawn_app(pool).await;
    let problem = app.client.get(app.url("/nowhere")).send().await.unwrap();
    let problem: Value = problem.json().await.unwrap();
    let kind = problem["type"].as_str().unwrap();
    assert_eq!(kind, "/problems/not-found");

    let page = app.client.get(app.url(kind)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.text().await.unwrap().contains("<h1>Not Found</h1>"));
    let index = app.client.get(app.url("/problems")).send().await.unwrap();
    let index = index.text().await.unwrap();
    for kind in sankalpa_kit::problem::PROBLEM_TYPES {
        let path = format!("/problems/{}", kind.slug);
        assert!(index.contains(&path), "{path} is not listed");
        let page = app.client.get(app.url(&path)).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK, "{path}");
    }
    let unknown = app
        .client
        .get(app.url("/problems/no-such"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
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
    assert_eq!(status["services"][5]["name"], "triggers");
    assert_eq!(status["services"][5]["status"], "serving");
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
