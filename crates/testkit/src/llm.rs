//! A local model server that streams, for the tests of what the LLM writes as it goes (the chat
//! assistant), speaking OpenAI's chat completions and Anthropic's Messages API. A request with
//! `stream: true` is answered with Server-Sent Events, one per scripted piece `pause` apart:
//! OpenAI's chunks, then (when asked with `stream_options.include_usage`) a usage chunk without
//! choices, then `data: [DONE]`; Anthropic's `message_start` (input tokens), a
//! `content_block_delta` per piece, `message_delta` (output tokens), `message_stop`. A request
//! without `stream` gets the pieces joined, as one answer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// What the fake was asked and how far it got.
#[derive(Default)]
pub struct Seen {
    /// Every request's body, in order.
    pub requests: Mutex<Vec<Value>>,
    /// Pieces written to a stream so far, over all requests: a client that goes away stops it
    /// growing.
    pub pieces_sent: AtomicUsize,
}

/// The model name the fake answers with.
pub const MODEL: &str = "fake-streaming-model";
/// The usage it reports: prompt and completion tokens.
pub const USAGE: (u64, u64) = (12, 7);

/// A streaming fake LLM serving on a free port.
pub struct StreamingLlm {
    /// Where to point an agent-runner (`/chat/completions` is appended).
    pub base_url: String,
    pub seen: Arc<Seen>,
}

impl StreamingLlm {
    /// Starts it: every answer is `pieces`, `pause` apart.
    pub async fn start(pieces: Vec<String>, pause: Duration) -> anyhow::Result<Self> {
        let seen = Arc::new(Seen::default());
        let script = Arc::new(Script {
            pieces,
            pause,
            seen: seen.clone(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}/v1", listener.local_addr()?);
        let app = Router::new()
            .route("/v1/chat/completions", post(completions))
            .route("/v1/messages", post(messages))
            .with_state(script);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self { base_url, seen })
    }

    /// An agent-runner configuration of the LLM pointing here, speaking OpenAI's protocol.
    pub fn config(&self) -> sankalpa_agent_runner::llm::LlmConfig {
        self.config_for(sankalpa_agent_runner::llm::Protocol::OpenAi)
    }

    /// An agent-runner configuration of the LLM pointing here, speaking `protocol`.
    pub fn config_for(
        &self,
        protocol: sankalpa_agent_runner::llm::Protocol,
    ) -> sankalpa_agent_runner::llm::LlmConfig {
        sankalpa_agent_runner::llm::LlmConfig {
            protocol,
            base_url: self.base_url.clone(),
            api_key: Some("test-key".into()),
            model: "fake-model".into(),
            timeout: Duration::from_secs(30),
            max_retries: 0,
            backoff: Duration::from_millis(20),
        }
    }
}

struct Script {
    pieces: Vec<String>,
    pause: Duration,
    seen: Arc<Seen>,
}

/// Keeps the request; whether it asks for a stream.
fn streamed(script: &Script, body: &Value) -> bool {
    script.seen.requests.lock().unwrap().push(body.clone());
    body["stream"] == json!(true)
}

/// Server-Sent Events, each item one whole event.
fn event_stream(
    events: impl futures::Stream<Item = Result<String, std::convert::Infallible>> + Send + 'static,
) -> Response {
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(events),
    )
        .into_response()
}

async fn completions(
    State(script): State<Arc<Script>>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    if !streamed(&script, &body) {
        return axum::Json(json!({
            "model": MODEL,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": script.pieces.concat()}}],
            "usage": {"prompt_tokens": USAGE.0, "completion_tokens": USAGE.1},
        }))
        .into_response();
    }
    let with_usage = body["stream_options"]["include_usage"] == json!(true);
    let events = futures::stream::unfold(0usize, move |i| {
        let script = script.clone();
        async move {
            let event = if i < script.pieces.len() {
                if i > 0 {
                    tokio::time::sleep(script.pause).await;
                }
                script.seen.pieces_sent.fetch_add(1, Ordering::SeqCst);
                json!({"model": MODEL, "choices": [{"index": 0, "delta": {"content": script.pieces[i]}}]})
                    .to_string()
            } else if i == script.pieces.len() && with_usage {
                json!({"model": MODEL, "choices": [], "usage": {"prompt_tokens": USAGE.0, "completion_tokens": USAGE.1}})
                    .to_string()
            } else if i <= script.pieces.len() + 1 {
                "[DONE]".to_owned()
            } else {
                return None;
            };
            // [DONE] ends the stream: skip past the usage index when it was not asked for.
            let next = if event == "[DONE]" {
                script.pieces.len() + 2
            } else {
                i + 1
            };
            Some((
                Ok::<_, std::convert::Infallible>(format!("data: {event}\n\n")),
                next,
            ))
        }
    });
    event_stream(events)
}

/// `/v1/messages`, Anthropic's Messages API, streamed or not.
async fn messages(
    State(script): State<Arc<Script>>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    if !streamed(&script, &body) {
        return axum::Json(json!({
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": [{"type": "text", "text": script.pieces.concat()}],
            "usage": {"input_tokens": USAGE.0, "output_tokens": USAGE.1},
        }))
        .into_response();
    }
    let pieces = script.pieces.len();
    let events = futures::stream::unfold(0usize, move |i| {
        let script = script.clone();
        async move {
            let (name, data) = match i {
                0 => (
                    "message_start",
                    json!({"type": "message_start", "message": {"type": "message",
                        "model": MODEL, "content": [],
                        "usage": {"input_tokens": USAGE.0, "output_tokens": 1}}}),
                ),
                1 => (
                    "content_block_start",
                    json!({"type": "content_block_start", "index": 0,
                        "content_block": {"type": "text", "text": ""}}),
                ),
                i if i < pieces + 2 => {
                    if i > 2 {
                        tokio::time::sleep(script.pause).await;
                    }
                    script.seen.pieces_sent.fetch_add(1, Ordering::SeqCst);
                    (
                        "content_block_delta",
                        json!({"type": "content_block_delta", "index": 0,
                            "delta": {"type": "text_delta", "text": script.pieces[i - 2]}}),
                    )
                }
                i if i == pieces + 2 => (
                    "content_block_stop",
                    json!({"type": "content_block_stop", "index": 0}),
                ),
                i if i == pieces + 3 => (
                    "message_delta",
                    json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                        "usage": {"output_tokens": USAGE.1}}),
                ),
                i if i == pieces + 4 => ("message_stop", json!({"type": "message_stop"})),
                _ => return None,
            };
            Some((
                Ok::<_, std::convert::Infallible>(format!("event: {name}\ndata: {data}\n\n")),
                i + 1,
            ))
        }
    });
    event_stream(events)
}

/// One request a [`ProviderFake`] received.
#[derive(Debug, Clone)]
pub struct Asked {
    /// `/v1/chat/completions` or `/v1/messages`.
    pub path: String,
    /// The `authorization` header (OpenAI's bearer key), or empty.
    pub authorization: String,
    /// The `x-api-key` header (Anthropic's key), or empty.
    pub api_key: String,
    pub body: Value,
}

/// A model provider for the tests of tenants' providers: OpenAI's chat completions and
/// Anthropic's Messages API on one port, each answering `reply` (as `<model>: <reply>`, so a
/// test sees which model was asked) with fixed usage, and refusing with 401 a request whose
/// key is not `key`. Started [`calling`](Self::calling) a tool, it answers a request offering
/// tools with a call of that tool, and a request holding the tool's result with
/// `<model>: <reply> <the result>`.
pub struct ProviderFake {
    /// Where to point a provider (`/chat/completions` or `/messages` is appended).
    pub base_url: String,
    pub asked: Arc<Mutex<Vec<Asked>>>,
}

struct ProviderScript {
    key: String,
    reply: String,
    /// The tool to call, with its arguments.
    call: Option<(String, Value)>,
    asked: Arc<Mutex<Vec<Asked>>>,
}

impl ProviderFake {
    pub async fn start(key: &str, reply: &str) -> anyhow::Result<Self> {
        Self::serve(key, reply, None).await
    }

    /// A provider that calls `tool` with `arguments` when offered tools, then answers.
    pub async fn calling(
        key: &str,
        reply: &str,
        tool: &str,
        arguments: Value,
    ) -> anyhow::Result<Self> {
        Self::serve(key, reply, Some((tool.to_owned(), arguments))).await
    }

    async fn serve(key: &str, reply: &str, call: Option<(String, Value)>) -> anyhow::Result<Self> {
        let asked = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(ProviderScript {
            key: key.to_owned(),
            reply: reply.to_owned(),
            call,
            asked: asked.clone(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}/v1", listener.local_addr()?);
        let app = Router::new()
            .route("/v1/chat/completions", post(provider_openai))
            .route("/v1/messages", post(provider_anthropic))
            .with_state(script);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self { base_url, asked })
    }

    /// What it was asked so far.
    pub fn asked(&self) -> Vec<Asked> {
        self.asked.lock().unwrap().clone()
    }
}

fn header(headers: &axum::http::HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn refused() -> Response {
    (
        axum::http::StatusCode::UNAUTHORIZED,
        axum::Json(json!({"error": {"message": "invalid api key"}})),
    )
        .into_response()
}

async fn provider_openai(
    State(script): State<Arc<ProviderScript>>,
    headers: axum::http::HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let authorization = header(&headers, "authorization");
    script.asked.lock().unwrap().push(Asked {
        path: "/v1/chat/completions".to_owned(),
        authorization: authorization.clone(),
        api_key: header(&headers, "x-api-key"),
        body: body.clone(),
    });
    if authorization != format!("Bearer {}", script.key) {
        return refused();
    }
    let model = body["model"].as_str().unwrap_or_default();
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let result = messages
        .iter()
        .find(|message| message["role"] == "tool")
        .map(|message| message["content"].as_str().unwrap_or_default().to_owned());
    let message = match (&script.call, result, body.get("tools")) {
        (Some((tool, arguments)), None, Some(_)) => json!({"role": "assistant", "content": null,
            "tool_calls": [{"id": "call_1", "type": "function",
                "function": {"name": tool, "arguments": arguments.to_string()}}]}),
        (_, Some(result), _) => {
            json!({"role": "assistant", "content": format!("{model}: {} {result}", script.reply)})
        }
        _ => json!({"role": "assistant", "content": format!("{model}: {}", script.reply)}),
    };
    axum::Json(json!({
        "model": model,
        "choices": [{"index": 0, "message": message}],
        "usage": {"prompt_tokens": USAGE.0, "completion_tokens": USAGE.1},
    }))
    .into_response()
}

async fn provider_anthropic(
    State(script): State<Arc<ProviderScript>>,
    headers: axum::http::HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let api_key = header(&headers, "x-api-key");
    script.asked.lock().unwrap().push(Asked {
        path: "/v1/messages".to_owned(),
        authorization: header(&headers, "authorization"),
        api_key: api_key.clone(),
        body: body.clone(),
    });
    let well_formed = header(&headers, "anthropic-version") == "2023-06-01"
        && body["max_tokens"].is_u64()
        && body["messages"].is_array();
    if !well_formed {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            axum::Json(json!({"type": "error", "error": {"type": "invalid_request_error"}})),
        )
            .into_response();
    }
    if api_key != script.key {
        return refused();
    }
    let model = body["model"].as_str().unwrap_or_default();
    // A tool's result comes back as a tool_result block of a user turn.
    let result = body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|message| message["content"].as_array())
        .flatten()
        .find(|block| block["type"] == "tool_result")
        .map(|block| block["content"].as_str().unwrap_or_default().to_owned());
    let content = match (&script.call, result, body.get("tools")) {
        (Some((tool, arguments)), None, Some(_)) => {
            json!([{"type": "tool_use", "id": "toolu_1", "name": tool, "input": arguments}])
        }
        (_, Some(result), _) => {
            json!([{"type": "text", "text": format!("{model}: {} {result}", script.reply)}])
        }
        _ => json!([{"type": "text", "text": format!("{model}: {}", script.reply)}]),
    };
    axum::Json(json!({
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": "end_turn",
        "usage": {"input_tokens": USAGE.0, "output_tokens": USAGE.1},
    }))
    .into_response()
}
