//! A local OpenAI-compatible chat-completions server that streams, for the tests of what the
//! LLM writes as it goes (the chat assistant): a request with `stream: true` is answered with
//! Server-Sent Events, one chunk per scripted piece `pause` apart, then (when asked with
//! `stream_options.include_usage`) a usage chunk without choices, then `data: [DONE]`. A
//! request without `stream` gets the pieces joined, as one completion.

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
            .with_state(script);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self { base_url, seen })
    }

    /// An agent-runner configuration of the LLM pointing here.
    pub fn config(&self) -> sankalpa_agent_runner::llm::LlmConfig {
        sankalpa_agent_runner::llm::LlmConfig {
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

async fn completions(
    State(script): State<Arc<Script>>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    script.seen.requests.lock().unwrap().push(body.clone());
    if body["stream"] != json!(true) {
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
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(events),
    )
        .into_response()
}
