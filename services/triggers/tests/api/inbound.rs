//! Inbound webhook triggers through the gateway: signed requests (checked with an independent
//! Standard Webhooks implementation, and GitHub's scheme) start the bound chain once per webhook
//! id with the mapped input; bad, missing and stale signatures, unknown triggers and other
//! tenants are refused.

use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;
use sqlx::PgPool;

use crate::helpers::{App, call};

impl App {
    async fn create_trigger(&self, token: &str, body: Value) -> (String, String) {
        let (status, created) = call(
            &self.http,
            Method::POST,
            &self.url("/api/webhooks/triggers"),
            token,
            Some(&body),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        (
            created["trigger"]["id"].as_str().expect("an id").to_owned(),
            created["secret"].as_str().expect("a secret").to_owned(),
        )
    }

    /// POSTs `body` to the trigger with `headers`, no token: the status and JSON answer.
    async fn send(
        &self,
        trigger: &str,
        query: &str,
        body: &str,
        headers: &[(&str, String)],
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .post(self.url(&format!("/api/webhooks/in/{trigger}{query}")))
            .header("content-type", "application/json")
            .body(body.to_owned());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.expect("the gateway answers");
        let status = StatusCode::from_u16(response.status().as_u16()).expect("a status");
        let text = response.text().await.expect("a body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

/// Standard Webhooks headers for `body`, signed by the `standardwebhooks` crate.
fn standard(
    secret: &str,
    id: &str,
    at: chrono::DateTime<chrono::Utc>,
    body: &str,
) -> Vec<(&'static str, String)> {
    let webhook = standardwebhooks::Webhook::new(secret).expect("a Standard Webhooks secret");
    let signature = webhook
        .sign(id, at.timestamp(), body.as_bytes())
        .expect("a signature");
    vec![
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", at.timestamp().to_string()),
        ("webhook-signature", signature),
    ]
}

#[sqlx::test(migrations = false)]
async fn a_signed_request_starts_the_chain_once_with_the_mapped_input(pool: PgPool) {
    let app = App::start(pool).await;
    let token = app.tenant().await;
    let (id, secret) = app
        .create_trigger(
            &token,
            json!({"template": "hello-sequence", "input_mapping": {
                "name": "${body.user.name}", "event": "${headers.x-event}",
                "line": "${query.ref} by ${body.user.name}", "count": "${body.count}"}}),
        )
        .await;
    let body = r#"{"user": {"name": "Ada"}, "count": 3}"#;
    let now = chrono::Utc::now();
    let mut headers = standard(&secret, "msg_one", now, body);
    headers.push(("x-event", "push".to_owned()));
    let (status, answer) = app.send(&id, "?ref=main", body, &headers).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let run = answer["run_id"].as_str().expect("a run id").to_owned();

    let (status, shown) = call(
        &app.http,
        Method::GET,
        &app.url(&format!("/api/chains/runs/{run}")),
        &token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(shown["idempotency_key"], format!("trigger:{id}:msg_one"));
    assert_eq!(
        shown["input"],
        json!({"name": "Ada", "event": "push", "line": "main by Ada", "count": 3})
    );

    // A redelivery (same webhook id, signed again later) answers the same run.
    let mut again = standard(
        &secret,
        "msg_one",
        now + chrono::Duration::seconds(30),
        body,
    );
    again.push(("x-event", "push".to_owned()));
    let (status, answer) = app.send(&id, "?ref=main", body, &again).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["run_id"], run.as_str());
}

#[sqlx::test(migrations = false)]
async fn bad_missing_and_stale_signatures_are_refused(pool: PgPool) {
    let app = App::start(pool).await;
    let token = app.tenant().await;
    let (id, secret) = app
        .create_trigger(&token, json!({"template": "hello-sequence"}))
        .await;
    let body = r#"{"a": 1}"#;
    let now = chrono::Utc::now();
    let other = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let refusals = [
        ("another secret", standard(other, "msg_1", now, body)),
        (
            "another body",
            standard(&secret, "msg_1", now, r#"{"a": 2}"#),
        ),
        (
            "ten minutes old",
            standard(&secret, "msg_1", now - chrono::Duration::minutes(10), body),
        ),
        ("unsigned", Vec::new()),
    ];
    for (what, headers) in refusals {
        let (status, problem) = app.send(&id, "", body, &headers).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {problem}");
    }
    // Nothing ran.
    let (_, runs) = call(
        &app.http,
        Method::GET,
        &app.url("/api/chains/runs"),
        &token,
        None,
    )
    .await;
    assert_eq!(runs["runs"], json!([]), "{runs}");
    // An unknown trigger, and a disabled one, are 404.
    let unknown = uuid::Uuid::now_v7().to_string();
    let (status, _) = app
        .send(&unknown, "", body, &standard(&secret, "msg_2", now, body))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(
        &app.http,
        Method::PATCH,
        &app.url(&format!("/api/webhooks/triggers/{id}")),
        &token,
        Some(&json!({"enabled": false})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .send(&id, "", body, &standard(&secret, "msg_3", now, body))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[sqlx::test(migrations = false)]
async fn a_github_signed_request_starts_the_chain(pool: PgPool) {
    let app = App::start(pool).await;
    let token = app.tenant().await;
    let (id, secret) = app
        .create_trigger(
            &token,
            json!({"template": "hello-sequence", "signature": "github",
                   "input_mapping": {"name": "${body.pusher.name}"}}),
        )
        .await;
    let body = r#"{"pusher": {"name": "octocat"}}"#;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("a key");
    mac.update(body.as_bytes());
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let headers = vec![
        (
            "x-github-delivery",
            "72d3162e-cc78-11e3-81ab-4c9367dc0958".to_owned(),
        ),
        ("x-hub-signature-256", signature),
    ];
    let (status, answer) = app.send(&id, "", body, &headers).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let bad = vec![
        ("x-github-delivery", "other".to_owned()),
        ("x-hub-signature-256", format!("sha256={}", "0".repeat(64))),
    ];
    let (status, _) = app.send(&id, "", body, &bad).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// Postgres writes a jsonb number back in full (309 digits for the largest double): what was
/// accepted must read back, not fail as "out of range" on the way out.
#[sqlx::test(migrations = false)]
async fn a_mapping_holding_extreme_numbers_reads_back_as_given(pool: PgPool) {
    let app = App::start(pool).await;
    let token = app.tenant().await;
    let mapping = json!({"max": f64::MAX, "min": f64::MIN_POSITIVE, "float": 3.402823466e38, "big": 4969821214_i64});
    let (id, _) = app
        .create_trigger(
            &token,
            json!({"template": "hello-sequence", "input_mapping": mapping}),
        )
        .await;
    let (status, shown) = call(
        &app.http,
        Method::GET,
        &app.url(&format!("/api/webhooks/triggers/{id}")),
        &token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(shown["input_mapping"], mapping, "{shown}");
}

#[sqlx::test(migrations = false)]
async fn another_tenants_trigger_is_not_found_and_bad_input_names_the_field(pool: PgPool) {
    let app = App::start(pool).await;
    let owner = app.tenant().await;
    let stranger = app.tenant().await;
    let (id, _) = app
        .create_trigger(&owner, json!({"template": "hello-sequence"}))
        .await;
    let path = app.url(&format!("/api/webhooks/triggers/{id}"));
    for (method, body) in [
        (Method::GET, None),
        (Method::PATCH, Some(json!({"enabled": false}))),
        (Method::DELETE, None),
    ] {
        let (status, problem) =
            call(&app.http, method.clone(), &path, &stranger, body.as_ref()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method}: {problem}");
    }
    let (_, list) = call(
        &app.http,
        Method::GET,
        &app.url("/api/webhooks/triggers"),
        &stranger,
        None,
    )
    .await;
    assert_eq!(list["triggers"], json!([]), "{list}");
    for (body, field) in [
        (json!({}), "chain_id"),
        (
            json!({"template": "hello-sequence", "input_mapping": [1]}),
            "input_mapping",
        ),
        (json!({"chain_id": "nope"}), "chain_id"),
    ] {
        let (status, problem) = call(
            &app.http,
            Method::POST,
            &app.url("/api/webhooks/triggers"),
            &owner,
            Some(&body),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{body}: {problem}");
    }
    // Deleting revokes the trigger's key and its URL.
    let (status, _) = call(&app.http, Method::DELETE, &path, &owner, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, keys) = call(&app.http, Method::GET, &app.url("/api/keys"), &owner, None).await;
    assert!(
        keys["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .all(|key| !key["revoked_at"].is_null()),
        "{keys}"
    );
}
