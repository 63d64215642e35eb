//! When a service behind the gateway is down, restarting or overloaded, the client hears 503
//! with Retry-After (or 504 for a deadline), never a 500 or a 429 it could not act on.

use reqwest::StatusCode;
use serde_json::json;
use sqlx::PgPool;
use tokio::io::AsyncReadExt;

use crate::helpers::{problem, spawn_app, spawn_app_with};

fn save() -> serde_json::Value {
    json!({ "session_id": "s1", "key": "k", "value": 1 })
}

async fn assert_retry_later(response: reqwest::Response) {
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().to_owned());
    assert_eq!(retry_after.as_deref(), Some("1"));
    problem(response, StatusCode::SERVICE_UNAVAILABLE).await;
}

#[sqlx::test(migrations = false)]
async fn a_service_that_is_down_is_a_503_with_retry_after(pool: PgPool) {
    // Nothing listens where memory should be.
    let app = spawn_app(pool).await;
    let admin = app.admin().await;
    let response = app
        .post_as("/api/memory/save", &admin.access_token, &save())
        .await;
    assert_retry_later(response).await;
}

/// A peer that takes each connection and, after reading `read_first` bytes of it, drops it: a
/// service killed mid-request, or restarting.
async fn dropping_peer(read_first: usize) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut taken = vec![0u8; read_first];
            let _ = socket.read_exact(&mut taken).await;
            drop(socket);
        }
    });
    url
}

#[sqlx::test(migrations = false)]
async fn a_connection_that_breaks_mid_call_is_a_503_with_retry_after(pool: PgPool) {
    // At once, and after the client's preface and request have gone out.
    for read_first in [0, 200] {
        let peer = dropping_peer(read_first).await;
        let app = spawn_app_with(pool.clone(), |_, gateway| gateway.memory_url = peer).await;
        let admin = app.admin().await;
        let response = app
            .post_as("/api/memory/save", &admin.access_token, &save())
            .await;
        assert_retry_later(response).await;
    }
}

#[sqlx::test(migrations = false)]
async fn a_run_of_known_agents_is_accepted_with_202_while_agent_runner_is_down(pool: PgPool) {
    let name = sankalpa_testkit::unique_name();
    let infra = sankalpa_testkit::infra(&name);
    let objects = std::env::temp_dir().join(format!("sankalpa-{name}"));
    let _leftovers = sankalpa_testkit::Leftovers::new(&infra, vec![objects.clone()]);
    let objects_url = objects.to_string_lossy().into_owned();
    let sankalpa_testkit::Fleet {
        auth: _auth,
        memory: _memory,
        runner,
        orchestrator: _orchestrator,
        market: _market,
        triggers: _triggers,
        gateway,
    } = sankalpa_testkit::Fleet::start(pool, &infra, &objects_url, |_| {})
        .await
        .expect("the fleet starts");
    let base = gateway.http_url();
    let http = reqwest::Client::new();
    let token = sankalpa_testkit::sign_up_through_gateway(&base, "ada@example.com").await;
    let execute = |body: serde_json::Value| {
        http.post(format!("{base}/api/chains/execute"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let greet = json!({"agents": ["hello_world", "hello_world"]});
    let first = execute(json!({"definition": greet, "wait": true}))
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);

    runner.stop().await.expect("agent-runner stops");
    let accepted = execute(json!({"definition": greet, "input": {"name": "Ada"}}))
        .await
        .unwrap();
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    let run: serde_json::Value = accepted.json().await.unwrap();
    assert_eq!(run["steps"].as_array().map(Vec::len), Some(2), "{run}");
}
