//! A rotated secret: during the overlap both the new and the previous secret sign, and a
//! receiver holding either verifies; after it, only the new one does.

use std::time::Duration;

use axum::http::StatusCode;
use reqwest::Method;
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::{App, Receiver, call, create_endpoint};

#[sqlx::test(migrations = false)]
async fn both_secrets_sign_during_the_overlap_and_only_the_new_one_after(pool: PgPool) {
    let app = App::start(pool).await;
    let token = app.tenant().await;
    let base = app.fleet.gateway.http_url();
    let receiver = Receiver::start().await;
    let (endpoint, old_secret) =
        create_endpoint(&app.http, &base, &token, &receiver.url(), &["*"]).await;
    let endpoint_url = app.url(&format!("/api/webhooks/endpoints/{endpoint}"));
    let send_test = || async {
        let (status, body) = call(
            &app.http,
            Method::POST,
            &format!("{endpoint_url}/test"),
            &token,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    };

    let (status, rotated) = call(
        &app.http,
        Method::POST,
        &format!("{endpoint_url}/rotate-secret"),
        &token,
        Some(&json!({ "overlap_seconds": 2 })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, old_secret);
    assert!(
        rotated["endpoint"]["previous_secret_expires_at"].is_string(),
        "{rotated}"
    );

    send_test().await;
    let during = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(during.len(), 1);
    assert_eq!(during[0].header("webhook-signature").split(' ').count(), 2);
    assert!(during[0].verifies_with(&old_secret));
    assert!(during[0].verifies_with(&new_secret));

    tokio::time::sleep(Duration::from_millis(2500)).await;
    send_test().await;
    let after = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(after.len(), 2);
    assert_eq!(after[1].header("webhook-signature").split(' ').count(), 1);
    assert!(!after[1].verifies_with(&old_secret));
    assert!(after[1].verifies_with(&new_secret));
    let (_, shown) = call(&app.http, Method::GET, &endpoint_url, &token, None).await;
    assert!(shown["previous_secret_expires_at"].is_null(), "{shown}");
}
