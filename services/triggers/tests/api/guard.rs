//! Without the operator's allow-list, deliveries to loopback, private, link-local and metadata
//! addresses are refused: written in the URL, at registration; behind a name, when the name is
//! resolved at delivery.

use std::time::Duration;

use axum::http::StatusCode;
use reqwest::Method;
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::{Receiver, call, delivery_when};

#[sqlx::test(migrations = false)]
async fn special_destinations_are_refused_without_the_allow_list(pool: PgPool) {
    let infra = sankalpa_testkit::infra(&sankalpa_testkit::unique_name());
    let _leftovers = sankalpa_testkit::Leftovers::new(&infra, Vec::new());
    let auth = sankalpa_testkit::spawn_auth(pool.clone(), infra.clone(), |_| {})
        .await
        .unwrap();
    let triggers =
        sankalpa_testkit::spawn_triggers(pool, infra.clone(), &auth.grpc_url(), |config| {
            config.allow_http = false;
            config.allowed_networks.clear();
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
    let endpoints = format!("{base}/api/webhooks/endpoints");
    let receiver = Receiver::start().await;
    let port = receiver.addr.port();

    for (url, why) in [
        (format!("https://127.0.0.1:{port}/hook"), "loopback"),
        (
            "https://169.254.169.254/latest/meta-data".to_owned(),
            "metadata",
        ),
        ("https://10.0.0.7/hook".to_owned(), "private"),
        ("https://[::1]/hook".to_owned(), "loopback"),
        (format!("http://example.com:{port}/hook"), "https"),
    ] {
        let (status, problem) = call(
            &http,
            Method::POST,
            &endpoints,
            &token,
            Some(&json!({ "url": url, "event_types": ["*"] })),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {problem}");
        assert_eq!(problem["errors"][0]["field"], "url", "{problem}");
        assert!(
            problem["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains(why),
            "{url}: {problem}"
        );
    }
    let (_, listed) = call(&http, Method::GET, &endpoints, &token, None).await;
    assert_eq!(listed["endpoints"], json!([]), "nothing was registered");

    // A name is resolved at delivery, and its loopback address refused then.
    let (status, created) = call(
        &http,
        Method::POST,
        &endpoints,
        &token,
        Some(&json!({ "url": format!("https://localhost:{port}/hook"), "event_types": ["*"] })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let endpoint = created["endpoint"]["id"].as_str().unwrap();
    let (_, test) = call(
        &http,
        Method::POST,
        &format!("{endpoints}/{endpoint}/test"),
        &token,
        None,
    )
    .await;
    let detail = delivery_when(
        &http,
        &format!(
            "{endpoints}/{endpoint}/deliveries/{}",
            test["id"].as_str().unwrap()
        ),
        &token,
        |detail| detail["attempts"].as_array().is_some_and(|a| !a.is_empty()),
    )
    .await;
    let error = detail["attempts"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("refused") && error.contains("loopback"),
        "{error}"
    );
    assert!(detail["attempts"][0]["status_code"].is_null(), "{detail}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.received().is_empty(), "the receiver got nothing");
}
