//! `/api/chat/conversations`: a conversation kept in memory, each message answered with the
//! planner's plan and a reply streamed as Server-Sent Events: the deterministic assistant, and
//! a local streaming LLM's for Stop.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use std::sync::atomic::Ordering;
use std::time::Duration;

use sankalpa_api::chat::MAX_MESSAGES;
use sankalpa_testkit::llm::StreamingLlm;

use crate::helpers::{Session, TestApp, problem, spawn_app_with_agents, spawn_app_with_llm, text};

const SHOP: &str = "A shop backend with products, orders and customers";

async fn create(app: &TestApp, who: &Session) -> String {
    let response = app
        .post_as("/api/chat/conversations", &who.access_token, &json!({}))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let conversation: Value = response.json().await.unwrap();
    assert_eq!(conversation["message_count"], 0);
    text(&conversation["id"])
}

/// The (event, data) pairs of a whole SSE body.
fn events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter_map(|block| {
            let mut name = None;
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("event:") {
                    name = Some(value.trim().to_owned());
                } else if let Some(value) = line.strip_prefix("data:") {
                    data.push(value.strip_prefix(' ').unwrap_or(value));
                }
            }
            Some((name?, serde_json::from_str(&data.join("\n")).unwrap()))
        })
        .collect()
}

async fn send(app: &TestApp, who: &Session, id: &str, body: Value) -> reqwest::Response {
    app.post_as(
        &format!("/api/chat/conversations/{id}/messages"),
        &who.access_token,
        &body,
    )
    .await
}

async fn exchange(app: &TestApp, who: &Session, id: &str, body: Value) -> Vec<(String, Value)> {
    let response = send(app, who, id, body).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    events(&response.text().await.unwrap())
}

async fn detail(app: &TestApp, who: &Session, id: &str) -> Value {
    let response = app
        .get_as(&format!("/api/chat/conversations/{id}"), &who.access_token)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[sqlx::test(migrations = false)]
async fn a_message_is_answered_with_its_plan_and_a_streamed_reply_both_kept(pool: PgPool) {
    let app = spawn_app_with_agents(pool).await;
    let ada = app.admin().await;
    let id = create(&app, &ada).await;

    let events = exchange(&app, &ada, &id, json!({"text": SHOP})).await;
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names.first(), Some(&"plan"), "{names:?}");
    assert_eq!(names.last(), Some(&"done"), "{names:?}");
    let deltas: Vec<&str> = events
        .iter()
        .filter(|(name, _)| name == "delta")
        .map(|(_, data)| data["text"].as_str().unwrap())
        .collect();
    assert!(deltas.len() > 3, "the reply comes in pieces: {deltas:?}");
    assert_eq!(deltas.len() + 2, events.len(), "{names:?}");
    let plan = &events[0].1;
    assert_eq!(plan["execution_ready"], true, "{plan}");
    let entities = plan["analysis"]["identified_entities"].to_string();
    assert!(entities.contains("Product") && entities.contains("Customer"));
    let reply = deltas.concat();
    assert!(
        reply.contains("**Entities:** Product, Order, Customer"),
        "{reply}"
    );
    assert!(reply.contains("1. `"), "the agents in order: {reply}");
    let done = &events.last().unwrap().1;
    assert!(done.get("usage").is_none(), "no LLM wrote it: {done}");

    // Kept: a reload shows both messages, the reply whole and with its plan.
    let kept = detail(&app, &ada, &id).await;
    assert_eq!(kept["conversation"]["title"], SHOP);
    assert_eq!(kept["conversation"]["message_count"], 2);
    let messages = kept["messages"].as_array().unwrap();
    assert_eq!(messages[0]["role"], "user");
    assert_eq!(messages[0]["text"], SHOP);
    assert_eq!(messages[0]["id"], done["user_message_id"]);
    assert_eq!(messages[1]["role"], "assistant");
    assert_eq!(messages[1]["id"], done["message_id"]);
    assert_eq!(messages[1]["text"], reply.as_str());
    assert_eq!(messages[1]["plan"]["chain"], plan["chain"]);
    assert_eq!(messages[1]["stopped"], false);

    // Regenerating replaces the last exchange instead of adding one.
    let again = exchange(&app, &ada, &id, json!({"text": SHOP, "regenerate": true})).await;
    let done_again = &again.last().unwrap().1;
    let kept = detail(&app, &ada, &id).await;
    let messages = kept["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1]["id"], done_again["message_id"]);
    assert_ne!(messages[1]["id"], done["message_id"]);

    // A message that names nothing to build gets a reply saying so, and no plan.
    let events = exchange(
        &app,
        &ada,
        &id,
        json!({"text": "tell me a joke about cats"}),
    )
    .await;
    assert!(events.iter().all(|(name, _)| name != "plan"));
    let reply: String = events
        .iter()
        .filter(|(name, _)| name == "delta")
        .map(|(_, data)| data["text"].as_str().unwrap())
        .collect();
    assert!(
        reply.starts_with("I could not make a plan of that"),
        "{reply}"
    );

    // Linking the run started from the plan keeps it with the message.
    let plan_message = text(&messages[1]["id"]);
    let response = app
        .client
        .put(app.url(&format!(
            "/api/chat/conversations/{id}/messages/{plan_message}/run"
        )))
        .bearer_auth(&ada.access_token)
        .json(&json!({"run_id": "run-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let kept = detail(&app, &ada, &id).await;
    assert_eq!(kept["messages"][1]["run_id"], "run-1");
    assert_eq!(kept["conversation"]["message_count"], 4);

    let listed: Value = app
        .get_as("/api/chat/conversations", &ada.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["conversations"][0]["id"], id.as_str());
    assert_eq!(listed["conversations"][0]["title"], SHOP);
    assert_eq!(listed["conversations"][0]["message_count"], 4);
}

#[sqlx::test(migrations = false)]
async fn conversations_are_listed_newest_first_and_deleted(pool: PgPool) {
    let app = spawn_app_with_agents(pool).await;
    let ada = app.admin().await;
    let first = create(&app, &ada).await;
    let second = create(&app, &ada).await;
    // Other memory sessions are no conversations.
    let saved = app
        .post_as(
            "/api/memory/save",
            &ada.access_token,
            &json!({"session_id": "notes", "key": "k", "value": 1}),
        )
        .await;
    assert!(saved.status().is_success(), "{}", saved.status());
    let listed: Value = app
        .get_as("/api/chat/conversations?page_size=1", &ada.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["conversations"][0]["id"], second.as_str());
    let token = text(&listed["next_page_token"]);
    let listed: Value = app
        .get_as(
            &format!("/api/chat/conversations?page_size=1&page_token={token}"),
            &ada.access_token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["conversations"][0]["id"], first.as_str());
    assert!(listed.get("next_page_token").is_none(), "{listed}");

    let deleted = app
        .client
        .delete(app.url(&format!("/api/chat/conversations/{first}")))
        .bearer_auth(&ada.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let gone = app
        .get_as(
            &format!("/api/chat/conversations/{first}"),
            &ada.access_token,
        )
        .await;
    problem(gone, StatusCode::NOT_FOUND).await;
    let too_many = app
        .get_as("/api/chat/conversations?page_size=51", &ada.access_token)
        .await;
    let refused = problem(too_many, StatusCode::BAD_REQUEST).await;
    assert_eq!(refused["errors"][0]["field"], "page_size");
    for token in ["", "x", "1.notes", "1.chat-x"] {
        let made_up = app
            .get_as(
                &format!("/api/chat/conversations?page_token={token}"),
                &ada.access_token,
            )
            .await;
        let refused = problem(made_up, StatusCode::BAD_REQUEST).await;
        assert_eq!(refused["errors"][0]["field"], "page_token");
    }
}

#[sqlx::test(migrations = false)]
async fn another_tenants_conversation_is_not_found_and_untouched(pool: PgPool) {
    let app = spawn_app_with_agents(pool).await;
    let ada = app.admin().await;
    let eve = app.admin().await;
    let id = create(&app, &ada).await;
    exchange(&app, &ada, &id, json!({"text": SHOP})).await;

    let path = format!("/api/chat/conversations/{id}");
    problem(
        app.get_as(&path, &eve.access_token).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        send(&app, &eve, &id, json!({"text": SHOP})).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let deleted = app
        .client
        .delete(app.url(&path))
        .bearer_auth(&eve.access_token)
        .send()
        .await
        .unwrap();
    problem(deleted, StatusCode::NOT_FOUND).await;
    let listed: Value = app
        .get_as("/api/chat/conversations", &eve.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["conversations"], json!([]));
    assert_eq!(
        detail(&app, &ada, &id).await["conversation"]["message_count"],
        2
    );
}

#[sqlx::test(migrations = false)]
async fn an_empty_or_oversized_message_is_refused_naming_the_field(pool: PgPool) {
    let app = spawn_app_with_agents(pool).await;
    let ada = app.admin().await;
    let id = create(&app, &ada).await;
    for body in [json!({"text": "   "}), json!({"text": "x".repeat(4001)})] {
        let refused = problem(send(&app, &ada, &id, body).await, StatusCode::BAD_REQUEST).await;
        assert_eq!(refused["errors"][0]["field"], "text", "{refused}");
    }
    let refused = problem(
        app.post_as(
            "/api/chat/conversations",
            &ada.access_token,
            &json!({"title": "t".repeat(81)}),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(refused["errors"][0]["field"], "title");
    // Not an object: serde alone would read `[]` as a conversation without a title.
    problem(
        app.post_as("/api/chat/conversations", &ada.access_token, &json!([]))
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(detail(&app, &ada, &id).await["messages"], json!([]));
    problem(
        send(&app, &ada, "not-a-uuid", json!({"text": SHOP})).await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[sqlx::test(migrations = false)]
async fn a_full_conversation_refuses_another_message_with_409_and_keeps_its_messages(pool: PgPool) {
    let app = spawn_app_with_agents(pool).await;
    let ada = app.admin().await;
    let id = create(&app, &ada).await;
    // Each exchange keeps two messages: the person's and the assistant's reply.
    for turn in 0..MAX_MESSAGES / 2 {
        let streamed = exchange(&app, &ada, &id, json!({"text": format!("hello {turn}")})).await;
        assert!(
            streamed.iter().any(|(name, _)| name == "done"),
            "turn {turn}: {streamed:?}"
        );
    }
    let full = problem(
        send(&app, &ada, &id, json!({"text": "one more"})).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(
        full["detail"].as_str().unwrap().contains("100 messages"),
        "{full}"
    );
    let kept = detail(&app, &ada, &id).await;
    assert_eq!(kept["messages"].as_array().unwrap().len(), MAX_MESSAGES);
    assert_eq!(
        text(&kept["messages"][MAX_MESSAGES - 2]["text"]),
        format!("hello {}", MAX_MESSAGES / 2 - 1)
    );
    // Regenerating the last reply replaces two messages with two: still allowed.
    let again = exchange(
        &app,
        &ada,
        &id,
        json!({"text": "hello again", "regenerate": true}),
    )
    .await;
    assert!(again.iter().any(|(name, _)| name == "done"), "{again:?}");
}

#[sqlx::test(migrations = false)]
async fn a_reply_whose_reader_goes_away_stops_the_model_and_is_kept_as_far_as_it_got(pool: PgPool) {
    let words: Vec<String> = (0..100).map(|i| format!("word{i} ")).collect();
    let llm = StreamingLlm::start(words, Duration::from_millis(40))
        .await
        .unwrap();
    let app = spawn_app_with_llm(pool, &llm).await;
    let ada = app.admin().await;
    let id = create(&app, &ada).await;

    let mut response = send(&app, &ada, &id, json!({"text": SHOP})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut read = String::new();
    while read.matches("event: delta").count() < 2 {
        let chunk = response.chunk().await.unwrap().expect("the reply goes on");
        read.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    // Stop: the client goes away.
    drop(response);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let stopped_at = llm.seen.pieces_sent.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(llm.seen.pieces_sent.load(Ordering::SeqCst), stopped_at);
    assert!(stopped_at < 50, "the model went on to piece {stopped_at}");

    let kept = detail(&app, &ada, &id).await;
    let reply = &kept["messages"][1];
    assert_eq!(reply["role"], "assistant");
    assert_eq!(reply["stopped"], true);
    let text = text(&reply["text"]);
    assert!(text.starts_with("word0 word1 "), "{text}");
    assert!(!text.contains("word99"), "{text}");
    assert!(reply["plan"].is_object(), "the plan is kept with it");
}
