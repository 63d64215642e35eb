//! Events reach endpoints signed as Standard Webhooks say, verified by an implementation that
//! is not the service's own (the `standardwebhooks` crate); failures are retried under the
//! same webhook-id.

use std::time::Duration;

use axum::http::StatusCode;
use reqwest::Method;
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::{App, Receiver, call, create_endpoint, delivery_when};

#[sqlx::test(migrations = false)]
async fn a_chain_runs_completion_reaches_two_endpoints_signed_for_each(pool: PgPool) {
    let app = App::start(pool).await;
    let token = app.tenant().await;
    let base = app.fleet.gateway.http_url();
    let (first, second) = (Receiver::start().await, Receiver::start().await);
    let (_, first_secret) = create_endpoint(
        &app.http,
        &base,
        &token,
        &first.url(),
        &["sankalpa.chains.run.completed"],
    )
    .await;
    let (_, second_secret) =
        create_endpoint(&app.http, &base, &token, &second.url(), &["chains.*.run.>"]).await;

    let (status, run) = call(
        &app.http,
        Method::POST,
        &app.url("/api/chains/execute"),
        &token,
        Some(&json!({ "template": "hello-sequence", "input": { "name": "Ada" }, "wait": true })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["status"], "completed", "{run}");

    let got_first = first.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(
        got_first.len(),
        1,
        "only the completion matches the first filter"
    );
    let completion = &got_first[0];
    assert!(completion.verifies_with(&first_secret));
    assert!(!completion.verifies_with(&second_secret));
    let event = completion.json();
    assert_eq!(event["type"], "sankalpa.chains.run.completed");
    assert_eq!(event["specversion"], "1.0");
    assert!(
        event["subject"]
            .as_str()
            .unwrap()
            .contains(run["id"].as_str().unwrap())
    );
    assert_eq!(
        completion.header("webhook-id"),
        format!("msg_{}", event["id"].as_str().unwrap())
    );
    assert_eq!(completion.header("content-type"), "application/json");

    // The run's own events, the completion among them, all signed with the second's secret.
    // run.started and run.completed.
    let got_second = second.wait_for(2, Duration::from_secs(10)).await;
    let completion_there = got_second
        .iter()
        .find(|received| received.json()["type"] == "sankalpa.chains.run.completed")
        .expect("the second endpoint gets the completion too");
    assert_eq!(
        completion_there.header("webhook-id"),
        completion.header("webhook-id")
    );
    assert!(
        got_second
            .iter()
            .all(|received| received.verifies_with(&second_secret))
    );
    assert!(!completion_there.verifies_with(&first_secret));
}

#[sqlx::test(migrations = false)]
async fn a_receiver_failing_twice_gets_the_third_attempt_with_the_same_id(pool: PgPool) {
    let app = App::start(pool).await;
    let token = app.tenant().await;
    let base = app.fleet.gateway.http_url();
    let receiver = Receiver::answering(&[500, 500]).await;
    let (endpoint, secret) =
        create_endpoint(&app.http, &base, &token, &receiver.url(), &["*"]).await;

    let (status, test) = call(
        &app.http,
        Method::POST,
        &app.url(&format!("/api/webhooks/endpoints/{endpoint}/test")),
        &token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{test}");
    let delivery_url = app.url(&format!(
        "/api/webhooks/endpoints/{endpoint}/deliveries/{}",
        test["id"].as_str().unwrap()
    ));
    let detail = delivery_when(&app.http, &delivery_url, &token, |detail| {
        detail["delivery"]["status"] == "delivered"
    })
    .await;

    let got = receiver.received();
    assert_eq!(got.len(), 3, "two failures, then the success");
    let ids: Vec<&str> = got.iter().map(|r| r.header("webhook-id")).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert_eq!(ids[0], test["message_id"].as_str().unwrap());
    assert!(got.iter().all(|r| r.verifies_with(&secret)));
    assert_eq!(got[0].json()["type"], "sankalpa.webhooks.test");

    assert_eq!(detail["delivery"]["attempts"], 3);
    let attempts = detail["attempts"].as_array().unwrap();
    let codes: Vec<u64> = attempts
        .iter()
        .map(|a| a["status_code"].as_u64().unwrap())
        .collect();
    assert_eq!(codes, [500, 500, 200]);
    assert_eq!(
        attempts[2]["request_headers"]["webhook-id"],
        test["message_id"]
    );
    let (_, after) = call(
        &app.http,
        Method::GET,
        &app.url(&format!("/api/webhooks/endpoints/{endpoint}")),
        &token,
        None,
    )
    .await;
    assert!(
        after["failing_since"].is_null(),
        "the success ends the endpoint's failing streak: {after}"
    );

    // The log lists it, delivered; and a replay sends it once more under the same id.
    let (_, log) = call(
        &app.http,
        Method::GET,
        &app.url(&format!(
            "/api/webhooks/endpoints/{endpoint}/deliveries?status=delivered"
        )),
        &token,
        None,
    )
    .await;
    assert_eq!(log["deliveries"].as_array().unwrap().len(), 1, "{log}");
    let (status, replayed) = call(
        &app.http,
        Method::POST,
        &app.url(&format!("/api/webhooks/endpoints/{endpoint}/replay")),
        &token,
        Some(&json!({ "delivery_id": test["id"] })),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{replayed}");
    assert_eq!(replayed["replayed"], 1);
    let again = receiver.wait_for(4, Duration::from_secs(10)).await;
    assert_eq!(again.len(), 4);
    assert_eq!(again[3].header("webhook-id"), ids[0]);
}

#[sqlx::test(migrations = false)]
async fn a_delivery_failing_every_attempt_is_failed_and_announced(pool: PgPool) {
    let app = App::start(pool).await;
    let token = app.tenant().await;
    let base = app.fleet.gateway.http_url();
    // The test schedule makes three attempts in all.
    let receiver = Receiver::answering(&[503, 503, 503, 503]).await;
    let (endpoint, _) = create_endpoint(&app.http, &base, &token, &receiver.url(), &["*"]).await;
    let mut events = sankalpa_testkit::Events::read(&app.infra, "webhooks.>").await;

    let (_, test) = call(
        &app.http,
        Method::POST,
        &app.url(&format!("/api/webhooks/endpoints/{endpoint}/test")),
        &token,
        None,
    )
    .await;
    let delivery_url = app.url(&format!(
        "/api/webhooks/endpoints/{endpoint}/deliveries/{}",
        test["id"].as_str().unwrap()
    ));
    let detail = delivery_when(&app.http, &delivery_url, &token, |detail| {
        detail["delivery"]["status"] == "failed"
    })
    .await;
    assert_eq!(detail["delivery"]["attempts"], 3);
    assert_eq!(detail["delivery"]["last_status_code"], 503);
    assert_eq!(receiver.received().len(), 3);

    let (subject, event) = events.next().await;
    assert!(
        subject.ends_with(&format!("webhooks.{}.{endpoint}.failed", event.tenantid)),
        "{subject}"
    );
    assert_eq!(event.data["delivery_id"], test["id"]);
}

#[sqlx::test(migrations = false)]
async fn an_ordered_endpoint_gets_its_deliveries_one_at_a_time_in_order(pool: PgPool) {
    let app = App::start(pool).await;
    let token = app.tenant().await;
    let receiver = Receiver::answering(&[500]).await;
    let endpoint = create_ordered_endpoint(&app, &token, &receiver.url()).await;
    let sent = send_tests(&app, &token, &endpoint, 3).await;

    let got = receiver.wait_for(4, Duration::from_secs(10)).await;
    let order: Vec<&str> = got.iter().map(|r| r.header("webhook-id")).collect();
    // The first one's retry comes before the others: they wait behind it.
    assert_eq!(
        order,
        [
            sent[0].as_str(),
            sent[0].as_str(),
            sent[1].as_str(),
            sent[2].as_str()
        ]
    );

    let metrics = app.fleet.triggers.as_ref().unwrap().metrics().await;
    let delivered = metrics
        .lines()
        .find(|line| line.starts_with("webhook_deliveries_total{outcome=\"delivered\"}"))
        .expect("deliveries are counted by outcome");
    assert!(delivered.ends_with(" 3"), "{delivered}");
    assert!(
        metrics.contains("webhook_deliveries_total{outcome=\"retrying\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("webhook_delivery_seconds_bucket"));
    assert!(metrics.contains("webhook_deliveries_pending"));
}

/// The backlog gauge names an endpoint with deliveries waiting; a receiver that accepts and never
/// answers keeps an ordered endpoint's deliveries pending (each attempt waits out the timeout).
#[sqlx::test(migrations = false)]
async fn the_backlog_is_measured_per_endpoint(pool: PgPool) {
    let app = App::start(pool).await;
    let token = app.tenant().await;
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", silent.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut connections = Vec::new();
        while let Ok((connection, _)) = silent.accept().await {
            connections.push(connection);
        }
    });
    let endpoint = create_ordered_endpoint(&app, &token, &url).await;
    send_tests(&app, &token, &endpoint, 3).await;

    let series = format!("webhook_deliveries_pending_by_endpoint{{endpoint=\"{endpoint}\"}} 3");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let metrics = loop {
        let metrics = app.fleet.triggers.as_ref().unwrap().metrics().await;
        if metrics.contains(&series) || tokio::time::Instant::now() >= deadline {
            break metrics;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(metrics.contains(&series), "{metrics}");
    assert!(
        metrics.contains("webhook_deliveries_pending_by_endpoint{endpoint=\"other\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("webhook_deliveries_pending 3"),
        "{metrics}"
    );
    held.abort();
}

/// An ordered endpoint at `url` for every event: its id.
async fn create_ordered_endpoint(app: &App, token: &str, url: &str) -> String {
    let (status, created) = call(
        &app.http,
        Method::POST,
        &app.url("/api/webhooks/endpoints"),
        token,
        Some(&json!({ "url": url, "event_types": ["*"], "ordered": true })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["endpoint"]["id"].as_str().unwrap().to_owned()
}

/// Sends `endpoint` `count` test events: their webhook-ids, in order.
async fn send_tests(app: &App, token: &str, endpoint: &str, count: usize) -> Vec<String> {
    let mut sent = Vec::new();
    for _ in 0..count {
        let (status, test) = call(
            &app.http,
            Method::POST,
            &app.url(&format!("/api/webhooks/endpoints/{endpoint}/test")),
            token,
            None,
        )
        .await;
        assert!(status.is_success(), "{test}");
        sent.push(test["message_id"].as_str().unwrap().to_owned());
    }
    sent
}
