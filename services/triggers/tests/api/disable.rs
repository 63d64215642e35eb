//! An endpoint whose every delivery fails for the operator's time is disabled, its tenant told
//! by an event; enabled again, it gets what waited.

use std::time::Duration;

use axum::http::StatusCode;
use reqwest::Method;
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::{Receiver, call, delivery_when};

#[sqlx::test(migrations = false)]
async fn an_endpoint_failing_too_long_is_disabled_and_resumes_when_enabled(pool: PgPool) {
    let infra = sankalpa_testkit::infra(&sankalpa_testkit::unique_name());
    let _leftovers = sankalpa_testkit::Leftovers::new(&infra, Vec::new());
    let auth = sankalpa_testkit::spawn_auth(pool.clone(), infra.clone(), |_| {})
        .await
        .unwrap();
    let triggers =
        sankalpa_testkit::spawn_triggers(pool, infra.clone(), &auth.grpc_url(), |config| {
            // Failing since the first failure is failing too long by the second.
            config.disable_after = Duration::from_millis(1);
        })
        .await
        .unwrap();
    let gateway = sankalpa_testkit::spawn_gateway(infra.clone(), |config| {
        config.auth_url = auth.grpc_url();
        config.triggers_url = triggers.grpc_url();
    })
    .await
    .unwrap();
    let base = gateway.http_url();
    let email = format!("{}@example.com", sankalpa_testkit::unique_name());
    let token = sankalpa_testkit::sign_up_through_gateway(&base, &email).await;
    let http = reqwest::Client::new();
    let receiver = Receiver::answering(&[503, 503]).await;
    let mut events = sankalpa_testkit::Events::read(&infra, "webhooks.*.*.disabled").await;
    let (_, created) = call(
        &http,
        Method::POST,
        &format!("{base}/api/webhooks/endpoints"),
        &token,
        Some(&json!({ "url": receiver.url(), "event_types": ["*"] })),
    )
    .await;
    let endpoint_url = format!(
        "{base}/api/webhooks/endpoints/{}",
        created["endpoint"]["id"].as_str().unwrap()
    );

    let (_, test) = call(
        &http,
        Method::POST,
        &format!("{endpoint_url}/test"),
        &token,
        None,
    )
    .await;
    let (_, disabled) = events.next().await;
    assert_eq!(disabled.data["delivery_id"], test["id"]);
    let (_, endpoint) = call(&http, Method::GET, &endpoint_url, &token, None).await;
    assert_eq!(endpoint["enabled"], false, "{endpoint}");
    assert!(
        endpoint["disabled_reason"]
            .as_str()
            .unwrap()
            .starts_with("every delivery failed"),
        "{endpoint}"
    );
    // Disabled, it is sent nothing: the retry waits.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 2);

    let (status, enabled) = call(
        &http,
        Method::PATCH,
        &endpoint_url,
        &token,
        Some(&json!({ "enabled": true })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{enabled}");
    assert!(enabled["failing_since"].is_null(), "{enabled}");
    assert!(enabled["disabled_reason"].is_null(), "{enabled}");
    delivery_when(
        &http,
        &format!("{endpoint_url}/deliveries/{}", test["id"].as_str().unwrap()),
        &token,
        |detail| detail["delivery"]["status"] == "delivered",
    )
    .await;
    assert_eq!(receiver.received().len(), 3);
}
