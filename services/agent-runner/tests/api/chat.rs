//! The chat assistant (Converse) and the LLM client's streaming, against the testkit's local
//! model server that streams its answer a piece at a time (OpenAI's protocol and Anthropic's).

use std::sync::atomic::Ordering;
use std::time::Duration;

use sankalpa_agent_runner::llm::{LlmClient, Message, Protocol};
use sankalpa_proto::v1 as pb;
use sankalpa_testkit::llm::{MODEL, StreamingLlm, USAGE};
use serde_json::json;
use tonic::Code;
use uuid::Uuid;

use crate::{TestRunner, authed, start, start_with, violated_fields};

fn pieces(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

fn user(text: &str) -> pb::ChatTurn {
    pb::ChatTurn {
        role: pb::ChatRole::User as i32,
        text: text.into(),
    }
}

/// A plan as `POST /api/nlp/process` answers it.
fn shop_plan() -> serde_json::Value {
    json!({
        "chain": {"steps": [
            {"id": "db_schema", "agent": "db_schema", "needs": []},
            {"id": "backend_builder", "agent": "backend_builder", "needs": ["db_schema"]},
        ]},
        "analysis": {
            "identified_entities": ["Product", "Order", "Customer"],
            "identified_requirements": ["api"],
            "estimated_complexity": "medium",
        },
        "execution_ready": true,
        "violations": [],
        "not_in_chain": [],
    })
}

/// Every event of a Converse stream: the deltas' texts, then the done.
async fn converse(
    app: &mut TestRunner,
    token: &str,
    request: pb::ConverseRequest,
) -> Result<(Vec<String>, pb::ConverseDone), tonic::Status> {
    let mut stream = app
        .client
        .converse(authed(request, token))
        .await?
        .into_inner();
    let mut deltas = Vec::new();
    while let Some(event) = stream.message().await? {
        match event.event.expect("every event is one of them") {
            pb::converse_event::Event::Delta(delta) => deltas.push(delta.text),
            pb::converse_event::Event::Done(done) => {
                assert!(stream.message().await?.is_none(), "done is the last event");
                return Ok((deltas, done));
            }
        }
    }
    panic!("the stream ended without done");
}

#[tokio::test]
async fn a_streamed_completion_arrives_piece_by_piece_with_its_usage() {
    streams_piece_by_piece(Protocol::OpenAi).await;
}

#[tokio::test]
async fn an_anthropic_answer_streams_piece_by_piece_with_its_usage() {
    streams_piece_by_piece(Protocol::Anthropic).await;
}

async fn streams_piece_by_piece(protocol: Protocol) {
    let fake = StreamingLlm::start(
        pieces(&["Hel", "lo ", "wor", "ld"]),
        Duration::from_millis(300),
    )
    .await
    .unwrap();
    let client = LlmClient::new(fake.config_for(protocol)).unwrap();
    let (deltas, mut received) = tokio::sync::mpsc::channel(16);
    let asked = tokio::spawn(async move {
        client
            .chat_stream(&[Message::user("Say hello")], &deltas)
            .await
    });
    assert_eq!(received.recv().await.unwrap(), "Hel");
    // The first piece is here while the server has not written the others yet.
    assert_eq!(fake.seen.pieces_sent.load(Ordering::SeqCst), 1);
    let mut rest = Vec::new();
    while let Some(text) = received.recv().await {
        rest.push(text);
    }
    assert_eq!(rest, ["lo ", "wor", "ld"]);
    let completion = asked.await.unwrap().unwrap();
    assert_eq!(completion.text, "Hello world");
    assert_eq!(completion.model, MODEL);
    assert_eq!(
        (completion.prompt_tokens, completion.completion_tokens),
        USAGE
    );
    let request = fake.seen.requests.lock().unwrap()[0].clone();
    assert_eq!(request["stream"], true);
    match protocol {
        Protocol::OpenAi => assert_eq!(request["stream_options"]["include_usage"], true),
        Protocol::Anthropic => assert!(request["max_tokens"].is_u64(), "{request}"),
    }
}

#[sqlx::test(migrations = false)]
async fn without_an_llm_the_reply_says_the_plan_line_by_line(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let token = app.sign_up().await.token;
    let request = pb::ConverseRequest {
        turns: vec![user("a shop backend with products, orders and customers")],
        plan_json: shop_plan().to_string(),
        ..Default::default()
    };
    let (deltas, done) = converse(&mut app, &token, request).await.unwrap();
    assert!(deltas.len() > 3, "a line at a time: {deltas:?}");
    let text = deltas.concat();
    assert!(
        text.contains("**Entities:** Product, Order, Customer"),
        "{text}"
    );
    assert!(
        text.contains("1. `db_schema`\n2. `backend_builder` (after `db_schema`)"),
        "{text}"
    );
    assert!(text.contains("Confirm to run the plan."), "{text}");
    assert!(!done.llm_used);
    assert_eq!((done.prompt_tokens, done.completion_tokens), (0, 0));

    let request = pb::ConverseRequest {
        turns: vec![user("hello there")],
        plan_note: "the goal names nothing this platform builds".into(),
        ..Default::default()
    };
    let (deltas, _) = converse(&mut app, &token, request).await.unwrap();
    assert!(
        deltas
            .concat()
            .starts_with("I could not make a plan of that: the goal names nothing")
    );
}

#[sqlx::test(migrations = false)]
async fn with_an_llm_the_reply_streams_its_tokens_and_counts_them(pool: sqlx::PgPool) {
    let fake = StreamingLlm::start(
        pieces(&["I will ", "build ", "your shop."]),
        Duration::from_millis(50),
    )
    .await
    .unwrap();
    let llm = fake.config();
    let mut app = start_with(pool, |config| config.llm = Some(llm)).await;
    let caller = app.sign_up().await;
    let request = pb::ConverseRequest {
        turns: vec![
            user("a shop"),
            pb::ChatTurn {
                role: pb::ChatRole::Assistant as i32,
                text: "Which entities?".into(),
            },
            user("products and orders"),
        ],
        plan_json: shop_plan().to_string(),
        ..Default::default()
    };
    let (deltas, done) = converse(&mut app, &caller.token, request).await.unwrap();
    assert_eq!(deltas, ["I will ", "build ", "your shop."]);
    assert!(done.llm_used);
    assert_eq!(done.llm_model, MODEL);
    assert_eq!((done.prompt_tokens, done.completion_tokens), USAGE);
    let sent = fake.seen.requests.lock().unwrap()[0].clone();
    let messages = sent["messages"].as_array().unwrap();
    let roles: Vec<_> = messages.iter().map(|m| m["role"].clone()).collect();
    assert_eq!(roles, ["system", "user", "assistant", "user"]);
    // The model is told the plan it speaks for.
    assert!(
        messages[0]["content"]
            .as_str()
            .unwrap()
            .contains("`backend_builder`")
    );
    let tenant: Uuid = caller.tenant_id.parse().unwrap();
    let counted: i64 =
        sqlx::query_scalar("SELECT tokens FROM agents.llm_usage WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(counted as u64, USAGE.0 + USAGE.1);

    let off = pb::ConverseRequest {
        turns: vec![user("a shop")],
        plan_json: shop_plan().to_string(),
        llm: pb::LlmMode::Off as i32,
        ..Default::default()
    };
    let (_, done) = converse(&mut app, &caller.token, off).await.unwrap();
    assert!(!done.llm_used, "LLM_MODE_OFF writes the summary");
    assert_eq!(fake.seen.requests.lock().unwrap().len(), 1);
}

#[sqlx::test(migrations = false)]
async fn the_tenant_s_default_model_writes_its_reply_and_another_tenant_s_the_fleet(
    pool: sqlx::PgPool,
) {
    let fleet = StreamingLlm::start(pieces(&["fleet"]), Duration::ZERO)
        .await
        .unwrap();
    let own = StreamingLlm::start(pieces(&["own ", "model"]), Duration::ZERO)
        .await
        .unwrap();
    let llm = fleet.config();
    let mut app = start_with(pool, |config| config.llm = Some(llm)).await;
    let a = app.sign_up().await.token;
    let b = app.sign_up().await.token;
    app.client
        .put_model_provider(authed(
            pb::PutModelProviderRequest {
                name: "local".into(),
                protocol: pb::ModelProtocol::Openai as i32,
                base_url: own.base_url.clone(),
                api_key: None,
                models: vec!["llama3".into()],
            },
            &a,
        ))
        .await
        .unwrap();
    app.client
        .set_default_model(authed(
            pb::SetDefaultModelRequest {
                model: "local/llama3".into(),
            },
            &a,
        ))
        .await
        .unwrap();
    let ask = || pb::ConverseRequest {
        turns: vec![user("a shop")],
        plan_json: shop_plan().to_string(),
        ..Default::default()
    };

    let (deltas, done) = converse(&mut app, &a, ask()).await.unwrap();
    assert_eq!(deltas, ["own ", "model"]);
    assert!(done.llm_used);
    let asked = own.seen.requests.lock().unwrap()[0].clone();
    assert_eq!(asked["model"], "llama3");
    assert_eq!(asked["stream"], true);

    let (deltas, _) = converse(&mut app, &b, ask()).await.unwrap();
    assert_eq!(
        deltas,
        ["fleet"],
        "a tenant without a default gets the fleet's"
    );
    assert_eq!(fleet.seen.requests.lock().unwrap().len(), 1);
    assert_eq!(own.seen.requests.lock().unwrap().len(), 1);
}

#[sqlx::test(migrations = false)]
async fn a_caller_that_goes_away_stops_the_writing(pool: sqlx::PgPool) {
    let words: Vec<String> = (0..100).map(|i| format!("word{i} ")).collect();
    let fake = StreamingLlm::start(words, Duration::from_millis(30))
        .await
        .unwrap();
    let llm = fake.config();
    let mut app = start_with(pool, |config| config.llm = Some(llm)).await;
    let token = app.sign_up().await.token;
    let request = pb::ConverseRequest {
        turns: vec![user("a shop")],
        ..Default::default()
    };
    let mut stream = app
        .client
        .converse(authed(request, &token))
        .await
        .unwrap()
        .into_inner();
    for _ in 0..2 {
        stream.message().await.unwrap().unwrap();
    }
    drop(stream);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stopped_at = fake.seen.pieces_sent.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fake.seen.pieces_sent.load(Ordering::SeqCst), stopped_at);
    assert!(stopped_at < 50, "the model stopped early: {stopped_at}");
}

#[sqlx::test(migrations = false)]
async fn bad_turns_are_refused_naming_the_field(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let token = app.sign_up().await.token;
    let cases = [
        (vec![], "turns"),
        (vec![user(&"x".repeat(8001))], "turns[0].text"),
        (vec![user("")], "turns[0].text"),
        (
            vec![pb::ChatTurn {
                role: pb::ChatRole::Assistant as i32,
                text: "hi".into(),
            }],
            "turns[0].role",
        ),
    ];
    for (turns, field) in cases {
        let request = pb::ConverseRequest {
            turns,
            ..Default::default()
        };
        let status = converse(&mut app, &token, request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(violated_fields(&status), [field]);
    }
}
