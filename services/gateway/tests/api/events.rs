//! Event streams: a run's Server-Sent Events in order and resumable, the tenant's over SSE and
//! over a WebSocket, with the token in the query as browsers must send it.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_tungstenite::tungstenite::Message;

use crate::chains::{execute, finished_run, two_greetings};
use crate::helpers::{Session, TestApp, problem, spawn_app_with_agents, spawn_app_with_llm};

/// One Server-Sent Event.
#[derive(Debug)]
struct Sse {
    id: u64,
    event: String,
    data: Value,
}

/// Reads `response` as an event stream until it ends or `count` events have come.
async fn read_events(response: reqwest::Response, count: usize) -> Vec<Sse> {
    read_events_until(response, |events| events.len() >= count).await
}

/// Reads `response` as an event stream until it ends or the events read are `enough`.
async fn read_events_until(
    mut response: reqwest::Response,
    enough: impl Fn(&[Sse]) -> bool,
) -> Vec<Sse> {
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut text = String::new();
    let mut events = Vec::new();
    let read = async {
        while !enough(&events) {
            let Some(chunk) = response.chunk().await.expect("the stream reads") else {
                break;
            };
            text.push_str(std::str::from_utf8(&chunk).expect("events are text"));
            while let Some(end) = text.find("\n\n") {
                let block: String = text.drain(..end + 2).collect();
                let mut event = Sse {
                    id: 0,
                    event: String::new(),
                    data: Value::Null,
                };
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(id) = line.strip_prefix("id:") {
                        event.id = id.trim().parse().expect("ids are sequences");
                    } else if let Some(name) = line.strip_prefix("event:") {
                        event.event = name.trim().to_owned();
                    } else if let Some(line) = line.strip_prefix("data:") {
                        data.push_str(line.trim_start());
                    }
                }
                // Keep-alive comments carry no data.
                if !data.is_empty() {
                    event.data = serde_json::from_str(&data).expect("data is JSON");
                    events.push(event);
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("the events come in time");
    events
}

async fn started_run(app: &TestApp, who: &Session) -> String {
    let response = execute(
        app,
        who,
        &json!({ "definition": two_greetings(), "input": { "name": "Ada" } }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    response.headers()["location"].to_str().unwrap().to_owned()
}

#[sqlx::test(migrations = false)]
async fn a_runs_event_stream_delivers_every_event_in_order_and_resumes(pool: PgPool) {
    let app = spawn_app_with_agents(pool).await;
    let ada = app.admin().await;
    let location = started_run(&app, &ada).await;

    // As a browser's EventSource connects: the token in the query.
    let events = read_events(
        app.client
            .get(app.url(&format!(
                "{location}/events?access_token={}",
                ada.access_token
            )))
            .send()
            .await
            .unwrap(),
        usize::MAX,
    )
    .await;
    // The stream also carries the agent runs of the steps; the chain's own events are in order.
    let kinds: Vec<&str> = events
        .iter()
        .map(|event| event.event.as_str())
        .filter_map(|kind| kind.strip_prefix("sankalpa.chains."))
        .collect();
    assert_eq!(
        kinds,
        [
            "run.started",
            "step.started",
            "step.completed",
            "step.started",
            "step.completed",
            "run.completed"
        ],
        "{events:?}"
    );
    for pair in events.windows(2) {
        assert!(pair[0].id < pair[1].id, "sequences increase: {events:?}");
    }
    for event in &events {
        assert_eq!(event.data["specversion"], "1.0");
        assert_eq!(event.data["type"], event.event);
        assert_eq!(event.data["sequence"], event.id);
        assert_eq!(event.data["tenantid"], ada.tenant_id);
    }

    // A reconnecting EventSource sends the last id it saw and gets only what came after.
    let resumed = read_events(
        app.client
            .get(app.url(&format!("{location}/events")))
            .bearer_auth(&ada.access_token)
            .header("Last-Event-ID", events[3].id.to_string())
            .send()
            .await
            .unwrap(),
        usize::MAX,
    )
    .await;
    let resumed_ids: Vec<u64> = resumed.iter().map(|event| event.id).collect();
    let expected: Vec<u64> = events[4..].iter().map(|event| event.id).collect();
    assert_eq!(resumed_ids, expected);
}

#[sqlx::test(migrations = false)]
async fn an_event_stream_needs_a_valid_token_and_a_run_of_the_tenant(pool: PgPool) {
    let app = spawn_app_with_agents(pool).await;
    let ada = app.admin().await;
    let location = started_run(&app, &ada).await;

    problem(
        app.client
            .get(app.url(&format!("{location}/events?access_token=forged")))
            .send()
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let grace = app.admin().await;
    problem(
        app.get_as(&format!("{location}/events"), &grace.access_token)
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    // The query token is only for the event streams.
    problem(
        app.client
            .get(app.url(&format!("/api/users/me?access_token={}", ada.access_token)))
            .send()
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
    )
    .await;
}

#[sqlx::test(migrations = false)]
async fn the_tenants_event_stream_carries_a_runs_events(pool: PgPool) {
    let app = spawn_app_with_agents(pool).await;
    let ada = app.admin().await;
    let stream = app
        .client
        .get(app.url("/api/events?subjects=chains.>"))
        .bearer_auth(&ada.access_token)
        .send()
        .await
        .unwrap();
    let location = started_run(&app, &ada).await;
    let events = read_events(stream, 1).await;
    assert!(events[0].event.ends_with("run.started"), "{:?}", events[0]);
    let run_id = location.rsplit('/').next().unwrap();
    assert!(
        events[0].data["subject"].as_str().unwrap().contains(run_id),
        "{:?}",
        events[0]
    );
}

/// An agent run asked for deltas: the model's text reaches the tenant's stream as it is
/// written, in order, between the run's start and its end.
#[sqlx::test(migrations = false)]
async fn an_agent_s_deltas_reach_the_tenants_event_stream_in_order(pool: PgPool) {
    let words = ["Hola ", "a todo ", "el mundo"].map(str::to_owned).to_vec();
    let llm = sankalpa_testkit::llm::StreamingLlm::start(words, Duration::from_millis(100))
        .await
        .unwrap();
    let app = spawn_app_with_llm(pool, &llm).await;
    let ada = app.admin().await;
    let stream = app
        .client
        .get(app.url("/api/events?subjects=agents.>"))
        .bearer_auth(&ada.access_token)
        .send()
        .await
        .unwrap();
    let body = json!({"agent": "text_translator", "stream_deltas": true,
        "input": {"text": "Hello to the whole world", "target_language": "es"}});
    let response = app
        .post_as("/api/agents/execute", &ada.access_token, &body)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let run: Value = response.json().await.unwrap();
    let events = read_events_until(stream, |events| {
        events
            .last()
            .is_some_and(|e| e.event == "sankalpa.agents.completed")
    })
    .await;
    assert_eq!(events[0].event, "sankalpa.agents.started");
    let deltas = &events[1..events.len() - 1];
    assert!(deltas.len() >= 2, "{events:?}");
    let mut text = String::new();
    for (seq, delta) in deltas.iter().enumerate() {
        assert_eq!(delta.event, "sankalpa.agents.delta");
        assert_eq!(delta.data["data"]["run_id"], run["run_id"]);
        assert_eq!(delta.data["data"]["seq"], seq);
        text.push_str(delta.data["data"]["text"].as_str().unwrap());
    }
    assert_eq!(text, "Hola a todo el mundo");
    assert_eq!(run["output"]["translated_text"], text);
}

#[sqlx::test(migrations = false)]
async fn a_websocket_receives_the_tenants_events_as_json(pool: PgPool) {
    let app = spawn_app_with_agents(pool).await;
    let ada = app.admin().await;
    let url = format!(
        "{}/ws?access_token={}",
        app.address.replacen("http", "ws", 1),
        ada.access_token
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("the WebSocket opens");
    socket
        .send(Message::text(
            json!({ "subscribe": ["chains.>"] }).to_string(),
        ))
        .await
        .unwrap();
    // Every event published once the change is acknowledged matches the new filter.
    let acknowledged = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .expect("the subscription is acknowledged in time")
        .expect("the socket stays open")
        .expect("a frame");
    let acknowledged: Value = serde_json::from_str(acknowledged.to_text().unwrap()).unwrap();
    assert_eq!(acknowledged, json!({ "subscribed": ["chains.>"] }));

    let location = started_run(&app, &ada).await;
    let frame = tokio::time::timeout(Duration::from_secs(30), socket.next())
        .await
        .expect("an event comes in time")
        .expect("the socket stays open")
        .expect("a frame");
    let event: Value = serde_json::from_str(frame.to_text().unwrap()).unwrap();
    assert_eq!(event["specversion"], "1.0");
    assert!(
        event["type"]
            .as_str()
            .unwrap()
            .starts_with("sankalpa.chains."),
        "{event}"
    );
    assert_eq!(event["tenantid"], ada.tenant_id);
    finished_run(&app, &ada, &location).await;
}

#[sqlx::test(migrations = false)]
async fn another_tenants_events_never_reach_the_stream(pool: PgPool) {
    let app = spawn_app_with_agents(pool).await;
    let ada = app.admin().await;
    let bob = app.admin().await;
    let stream = app
        .client
        .get(app.url("/api/events"))
        .bearer_auth(&bob.access_token)
        .send()
        .await
        .unwrap();
    // Ada's run goes first and finishes; Bob's own run comes after it.
    let adas = started_run(&app, &ada).await;
    let adas = adas.rsplit('/').next().unwrap().to_owned();
    for _ in 0..200 {
        let run: Value = app
            .client
            .get(app.url(&format!("/api/chains/runs/{adas}")))
            .bearer_auth(&ada.access_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if run["status"] == "completed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started_run(&app, &bob).await;
    let events = read_events(stream, 1).await;
    assert_eq!(
        events[0].data["tenantid"], bob.tenant_id,
        "the first event Bob sees is his own: {:?}",
        events[0]
    );
}

async fn open_socket(
    app: &TestApp,
    who: &Session,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let url = format!(
        "{}/ws?access_token={}",
        app.address.replacen("http", "ws", 1),
        who.access_token
    );
    tokio_tungstenite::connect_async(url)
        .await
        .expect("the WebSocket opens")
        .0
}

#[sqlx::test(migrations = false)]
async fn a_websocket_message_over_the_limit_ends_the_connection(pool: PgPool) {
    let app = spawn_app_with_agents(pool).await;
    let ada = app.admin().await;
    let mut socket = open_socket(&app, &ada).await;
    let padding = "x".repeat(sankalpa_gateway::events::MAX_WS_MESSAGE_BYTES);
    let _ = socket
        .send(Message::text(json!({ "subscribe": [padding] }).to_string()))
        .await;
    let ended = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(frame)) = socket.next().await {
            assert!(
                matches!(frame, Message::Close(_)),
                "no event follows an oversized message: {frame:?}"
            );
        }
    })
    .await;
    assert!(ended.is_ok(), "the connection is still open");
}

#[sqlx::test(migrations = false)]
async fn subscription_changes_past_the_budget_are_refused(pool: PgPool) {
    let app = spawn_app_with_agents(pool).await;
    let ada = app.admin().await;
    let mut socket = open_socket(&app, &ada).await;
    let budget = sankalpa_gateway::events::MAX_SUBSCRIPTION_CHANGES;
    for _ in 0..=budget {
        socket
            .send(Message::text(
                json!({ "subscribe": ["chains.>"] }).to_string(),
            ))
            .await
            .unwrap();
    }
    let refusal = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(frame)) = socket.next().await {
            if let Message::Text(text) = frame {
                let body: Value = serde_json::from_str(&text).unwrap();
                if body.get("error").is_some() {
                    return body;
                }
            }
        }
        panic!("the socket closed without refusing");
    })
    .await
    .expect("the change past the budget is refused");
    assert_eq!(refusal["error"]["status"], 429, "{refusal}");
}
