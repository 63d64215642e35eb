//! `/api/models/...`: a tenant's model providers over REST, in front of a real agent-runner:
//! written by admins, read by members, tested against a local provider, asked by runs, the key
//! never answered, another tenant's provider 404, bad fields 400 naming them.

use reqwest::StatusCode;
use sankalpa_testkit::llm::ProviderFake;
use serde_json::{Value, json};

use crate::helpers::{TestApp, problem, spawn_app_with_agents};

const KEY: &str = "sk-rest-0123456789-secret";

impl TestApp {
    async fn put_as(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        reqwest::Client::new()
            .put(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("the gateway answers")
    }
}

#[sqlx::test(migrations = false)]
async fn an_admin_adds_a_provider_members_read_it_and_runs_ask_it(pool: sqlx::PgPool) {
    let app = spawn_app_with_agents(pool).await;
    let server = ProviderFake::start(KEY, "hola").await.unwrap();
    let admin = app.admin().await;
    let viewer = app.viewer(&admin).await;
    let provider = json!({
        "protocol": "openai",
        "base_url": server.base_url,
        "api_key": KEY,
        "models": ["gpt-a"],
    });
    let put = app
        .put_as("/api/models/providers/acme", &admin.access_token, &provider)
        .await;
    assert_eq!(put.status(), StatusCode::OK);
    let body = put.text().await.unwrap();
    assert!(!body.contains(KEY));
    let shown: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(shown["has_api_key"], true);
    assert_eq!(shown["protocol"], "openai");

    // A viewer reads, and may not write.
    let listed = app
        .get_as("/api/models/providers", &viewer.access_token)
        .await;
    assert_eq!(listed.status(), StatusCode::OK);
    let listed = listed.text().await.unwrap();
    assert!(listed.contains("\"acme\"") && !listed.contains(KEY));
    let refused = app
        .put_as(
            "/api/models/providers/acme",
            &viewer.access_token,
            &provider,
        )
        .await;
    problem(refused, StatusCode::FORBIDDEN).await;

    let tested = app
        .post_as(
            "/api/models/providers/acme/test",
            &admin.access_token,
            &json!({}),
        )
        .await;
    assert_eq!(tested.status(), StatusCode::OK);
    let tested: Value = tested.json().await.unwrap();
    assert_eq!(tested["ok"], true, "{tested}");

    let set = app
        .put_as(
            "/api/models/default",
            &admin.access_token,
            &json!({"model": "acme/gpt-a"}),
        )
        .await;
    assert_eq!(set.status(), StatusCode::OK);
    let run = app
        .post_as(
            "/api/agents/execute",
            &viewer.access_token,
            &json!({"agent": "text_translator", "input": {"text": "Hello", "target_language": "es"}}),
        )
        .await;
    // Viewers do not execute; the admin does.
    problem(run, StatusCode::FORBIDDEN).await;
    let run: Value = app
        .post_as(
            "/api/agents/execute",
            &admin.access_token,
            &json!({"agent": "text_translator", "model": "acme/gpt-a", "input": {"text": "Hello", "target_language": "es"}}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(run["output"]["translated_text"], "gpt-a: hola", "{run}");
    assert!(
        server
            .asked()
            .iter()
            .all(|asked| asked.authorization == format!("Bearer {KEY}"))
    );

    // The tokens the provider reported are the tenant's use of the day; members read it.
    let usage = app
        .get_as("/api/models/usage?days=7", &viewer.access_token)
        .await;
    assert_eq!(usage.status(), StatusCode::OK);
    let usage: Value = usage.json().await.unwrap();
    assert_eq!(usage["days"][0]["tokens"], 19, "{usage}");
    assert_eq!(usage["days"][0]["cost_usd"], 0.0, "no prices set");
    assert_eq!(usage["priced"], false);
    for days in ["0", "91", "x"] {
        let path = format!("/api/models/usage?days={days}");
        let refused = app.get_as(&path, &viewer.access_token).await;
        let body = problem(refused, StatusCode::BAD_REQUEST).await;
        assert!(body.to_string().contains("days"), "{body}");
    }
}

#[sqlx::test(migrations = false)]
async fn another_tenant_s_provider_is_404_and_bad_fields_are_400(pool: sqlx::PgPool) {
    let app = spawn_app_with_agents(pool).await;
    let a = app.admin().await;
    let b = app.admin().await;
    let provider = json!({
        "protocol": "anthropic",
        "base_url": "https://llm.example.com/v1",
        "models": ["claude-x"],
    });
    let put = app
        .put_as("/api/models/providers/acme", &a.access_token, &provider)
        .await;
    assert_eq!(put.status(), StatusCode::OK);

    let deleted = reqwest::Client::new()
        .delete(app.url("/api/models/providers/acme"))
        .bearer_auth(&b.access_token)
        .send()
        .await
        .unwrap();
    problem(deleted, StatusCode::NOT_FOUND).await;
    let set = app
        .put_as(
            "/api/models/default",
            &b.access_token,
            &json!({"model": "acme/claude-x"}),
        )
        .await;
    problem(set, StatusCode::NOT_FOUND).await;
    let tested = app
        .post_as(
            "/api/models/providers/acme/test",
            &b.access_token,
            &json!({}),
        )
        .await;
    problem(tested, StatusCode::NOT_FOUND).await;

    for (body, field) in [
        (
            json!({"protocol": "openai", "base_url": "https://h/v1", "models": ["m\u{0}"]}),
            "models[0]",
        ),
        (
            json!({"protocol": "openai", "base_url": "https://h/\u{0}", "models": ["m"]}),
            "base_url",
        ),
        (
            json!({"protocol": "openai", "base_url": "https://h/v1", "api_key": "a\u{0}", "models": ["m"]}),
            "api_key",
        ),
    ] {
        let refused = app
            .put_as("/api/models/providers/other", &a.access_token, &body)
            .await;
        let document = problem(refused, StatusCode::BAD_REQUEST).await;
        assert_eq!(document["errors"][0]["field"], field, "{document}");
    }
    let refused = app
        .put_as("/api/models/providers/ac%00me", &a.access_token, &provider)
        .await;
    let document = problem(refused, StatusCode::BAD_REQUEST).await;
    assert_eq!(document["errors"][0]["field"], "name", "{document}");

    let listed: Value = app
        .get_as("/api/models/providers", &a.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["providers"].as_array().unwrap().len(), 1, "{listed}");
}

#[sqlx::test(migrations = false)]
async fn a_chain_step_asks_the_model_it_names(pool: sqlx::PgPool) {
    let app = spawn_app_with_agents(pool).await;
    let server = ProviderFake::start(KEY, "hola").await.unwrap();
    let admin = app.admin().await;
    let put = app
        .put_as(
            "/api/models/providers/acme",
            &admin.access_token,
            &json!({"protocol": "openai", "base_url": server.base_url, "api_key": KEY,
                    "models": ["gpt-a", "gpt-b"]}),
        )
        .await;
    assert_eq!(put.status(), StatusCode::OK);
    let definition = json!({"steps": [
        {"id": "named", "agent": "text_translator", "model": "acme/gpt-b",
         "input": {"text": "${input.text}", "target_language": "es"}},
    ]});
    let response = app
        .post_as(
            "/api/chains/execute",
            &admin.access_token,
            &json!({"definition": definition, "input": {"text": "Hello"}, "wait": true}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let run: Value = response.json().await.unwrap();
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(
        run["output"]["named"]["translated_text"], "gpt-b: hola",
        "{run}"
    );
    let asked = server.asked();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].body["model"], "gpt-b");
}
