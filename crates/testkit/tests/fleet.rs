//! The fleet as a whole: properties no single service shows alone.

use futures::StreamExt;
use serde_json::{Value, json};
use sqlx::PgPool;

const PASSWORD: &str = "correct horse battery staple";

#[sqlx::test(migrations = false)]
async fn one_trace_runs_from_the_gateway_through_grpc_to_the_nats_event(pool: PgPool) {
    sankalpa_testkit::init_tracing();
    let name = sankalpa_testkit::unique_name();
    let infra = sankalpa_testkit::infra(&name);
    let objects = std::env::temp_dir().join(format!("sankalpa-{name}"));
    let auth = sankalpa_testkit::spawn_auth(pool.clone(), infra.clone(), |_| {})
        .await
        .unwrap();
    let memory = sankalpa_testkit::spawn_memory(pool, infra.clone(), &auth.grpc_url(), |config| {
        config.object_store_url = objects.to_string_lossy().into_owned();
    })
    .await
    .unwrap();
    let gateway = sankalpa_testkit::spawn_gateway(infra.clone(), |config| {
        config.auth_url = auth.grpc_url();
        config.memory_url = memory.grpc_url();
    })
    .await
    .unwrap();
    let base = gateway.http_url();
    let http = reqwest::Client::new();
    http.post(format!("{base}/api/users/register"))
        .json(&json!({"email": "ada@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let login: Value = http
        .post(format!("{base}/api/users/login"))
        .json(&json!({"email": "ada@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap();

    let nats = async_nats::connect(&infra.nats_url).await.unwrap();
    let mut events = nats
        .subscribe(format!("{}memory.>", infra.subject_prefix))
        .await
        .unwrap();
    nats.flush().await.unwrap();

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let saved = http
        .post(format!("{base}/api/memory/save"))
        .bearer_auth(token)
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .json(&json!({"session_id": "traced", "key": "plan", "value": [1, 2]}))
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), 200);

    let event = tokio::time::timeout(std::time::Duration::from_secs(5), events.next())
        .await
        .expect("memory published the save")
        .unwrap();
    let traceparent = event
        .headers
        .as_ref()
        .and_then(|headers| headers.get("traceparent"))
        .map(|value| value.as_str().to_owned())
        .expect("the event carries trace context");
    // The caller's trace id, carried by the gateway over gRPC to memory and by memory onto NATS;
    // the span id is memory's own.
    assert!(
        traceparent.starts_with(&format!("00-{trace_id}-")),
        "{traceparent}"
    );
    assert!(!traceparent.contains("00f067aa0ba902b7"), "{traceparent}");

    drop((gateway, memory, auth));
    sankalpa_testkit::remove_leftovers(&infra, vec![objects]);
}
