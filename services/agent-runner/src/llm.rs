//! The LLM client, speaking one of two protocols ([`Protocol`]): OpenAI-compatible chat
//! completions (`POST {base}/chat/completions`, a bearer key), so any provider or local server
//! speaking it works (OpenAI, Azure OpenAI, vLLM, Ollama, llama.cpp), or Anthropic's Messages
//! API (`POST {base}/messages`, `x-api-key` and `anthropic-version`; the system messages go in
//! its `system` field, and `max_tokens`, which it requires, is [`ANTHROPIC_MAX_TOKENS`]).
//!
//! Every call has a timeout. A 429 or 5xx answer, or a connection that fails, is retried with
//! exponential backoff (honouring `Retry-After`), at most `max_retries` times: asking again costs
//! tokens but changes nothing, so the retry is safe. Other answers fail at once. Token counts come
//! from the provider's `usage`, recorded per run.
//!
//! [`LlmClient::ask`] can ask for more than text ([`Ask`]): an answer of one JSON document of a
//! given schema (OpenAI's `response_format` `json_schema`; for Anthropic, one tool of that
//! schema the model must call, whose input is the answer), or an answer that may call tools
//! (OpenAI's `tools` and `tool_calls`; Anthropic's `tools` and `tool_use` blocks, whose results go
//! back as `tool_result` blocks). An OpenAI-compatible server that refuses `response_format` (400
//! or 422: many local servers do not know it) is asked once more without it; the caller checks
//! the answer against the schema either way.
//!
//! [`LlmClient::chat_stream`] asks for the answer as it is written (`stream: true`), as
//! Server-Sent Events. OpenAI's: each `data:` a chunk with `choices[0].delta.content`, then
//! `data: [DONE]`; usage is asked for with `stream_options.include_usage` (a last chunk with no
//! choices carries it), and a server that ignores the option leaves the counts at 0.
//! Anthropic's: typed events, `message_start` (the model, the input tokens),
//! `content_block_delta` (a `text_delta`'s text), `message_delta` (the output tokens so far),
//! `message_stop`, and `error` when the provider gives up mid-answer. A stream is retried as a
//! call is, but only until its first chunk: after that, asking again would repeat text already
//! given.

use std::time::Duration;

use sankalpa_kit::limits::truncate;
use serde::Deserialize;
use serde_json::json;
use tracing::Instrument;

/// The wire protocol of a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    #[default]
    OpenAi,
    Anthropic,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
        }
    }
}

/// The Messages API version asked for.
const ANTHROPIC_VERSION: &str = "2023-06-01";
/// The most tokens an Anthropic answer may take (the API requires a bound).
pub const ANTHROPIC_MAX_TOKENS: u32 = 4096;

#[derive(Clone)]
pub struct LlmConfig {
    pub protocol: Protocol,
    /// e.g. `https://api.openai.com/v1`; `/chat/completions` (or `/messages`) is appended.
    pub base_url: String,
    pub api_key: Option<String>,
    pub model: String,
    pub timeout: Duration,
    pub max_retries: u32,
    /// The first backoff; each retry doubles it.
    pub backoff: Duration,
}

impl std::fmt::Debug for LlmConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmConfig")
            .field("protocol", &self.protocol)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("model", &self.model)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("the LLM did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the LLM could not be reached: {0}")]
    Unreachable(String),
    #[error("the LLM answered {status}: {body}")]
    Refused { status: u16, body: String },
    #[error("the LLM's answer is not a chat completion: {0}")]
    Malformed(String),
}

/// One message of a conversation.
#[derive(Debug, Clone)]
pub struct Message {
    pub role: &'static str,
    pub content: String,
    /// The tools an assistant's turn called.
    pub tool_calls: Vec<ToolCall>,
    /// For a `tool` message: the call whose result it is.
    pub tool_call_id: Option<String>,
}

impl Message {
    fn with(role: &'static str, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        Self::with("assistant", content)
    }

    pub fn system(content: impl Into<String>) -> Self {
        Self::with("system", content)
    }

    pub fn user(content: impl Into<String>) -> Self {
        Self::with("user", content)
    }

    /// The assistant's turn that called `calls`.
    pub fn calling(content: impl Into<String>, calls: Vec<ToolCall>) -> Self {
        Self {
            tool_calls: calls,
            ..Self::assistant(content)
        }
    }

    /// The result of the call `id`.
    pub fn tool_result(id: &str, content: impl Into<String>) -> Self {
        Self {
            tool_call_id: Some(id.to_owned()),
            ..Self::with("tool", content)
        }
    }

    /// The message as OpenAI's chat completions take it.
    fn openai(&self) -> serde_json::Value {
        let mut message = json!({"role": self.role, "content": self.content});
        if let Some(id) = &self.tool_call_id {
            message["tool_call_id"] = json!(id);
        }
        if !self.tool_calls.is_empty() {
            let calls: Vec<serde_json::Value> = self
                .tool_calls
                .iter()
                .map(|call| {
                    json!({"id": call.id, "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments.to_string()}})
                })
                .collect();
            message["tool_calls"] = json!(calls);
        }
        message
    }
}

/// A tool offered to the model: its name, what it does, and the JSON Schema of its arguments.
#[derive(Debug, Clone)]
pub struct Tool {
    pub name: String,
    pub description: String,
    pub parameters: serde_json::Value,
}

/// A call of a tool the model asked for. Arguments that are not JSON are kept as their text, for
/// the tool to refuse.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: serde_json::Value,
}

/// What an answer may be.
#[derive(Debug, Clone, Copy)]
pub enum Ask<'a> {
    Text,
    /// One JSON document of `schema`, given as the answer's text.
    Shaped {
        name: &'a str,
        schema: &'a serde_json::Value,
    },
    /// Text, or calls of these tools.
    WithTools(&'a [Tool]),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Completion {
    pub text: String,
    /// The tools the model called (only when asked [`Ask::WithTools`]).
    pub tool_calls: Vec<ToolCall>,
    pub model: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    model: String,
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Usage,
}

#[derive(Deserialize)]
struct Choice {
    message: AnswerMessage,
}

#[derive(Deserialize)]
struct AnswerMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Vec<AnswerToolCall>,
}

#[derive(Deserialize)]
struct AnswerToolCall {
    id: String,
    function: AnswerFunction,
}

#[derive(Deserialize)]
struct AnswerFunction {
    name: String,
    /// JSON, as a string.
    #[serde(default)]
    arguments: String,
}

/// An Anthropic Messages answer.
#[derive(Deserialize)]
struct MessagesAnswer {
    #[serde(default)]
    model: String,
    content: Vec<ContentBlock>,
    #[serde(default)]
    usage: MessagesUsage,
}

#[derive(Deserialize)]
struct ContentBlock {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: String,
    /// A `tool_use` block's.
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    input: serde_json::Value,
}

#[derive(Deserialize, Default)]
struct MessagesUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
}

/// One `data:` chunk of a streamed answer.
#[derive(Deserialize)]
struct StreamChunk {
    #[serde(default)]
    model: String,
    #[serde(default)]
    choices: Vec<StreamChoice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct StreamChoice {
    #[serde(default)]
    delta: StreamDelta,
}

#[derive(Deserialize, Default)]
struct StreamDelta {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize, Default)]
struct Usage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

/// One event of an Anthropic Messages stream; each kind fills the fields it has.
#[derive(Deserialize)]
struct MessagesEvent {
    #[serde(rename = "type")]
    kind: String,
    /// `message_start`'s.
    #[serde(default)]
    message: Option<MessagesStart>,
    /// `content_block_delta`'s (a `text_delta` has text; other deltas, none).
    #[serde(default)]
    delta: Option<MessagesDelta>,
    /// `message_delta`'s: the output tokens so far.
    #[serde(default)]
    usage: Option<MessagesUsage>,
    #[serde(default)]
    error: Option<MessagesError>,
}

#[derive(Deserialize)]
struct MessagesStart {
    #[serde(default)]
    model: String,
    #[serde(default)]
    usage: MessagesUsage,
}

#[derive(Deserialize)]
struct MessagesDelta {
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
struct MessagesError {
    #[serde(rename = "type", default)]
    kind: String,
}

/// What a tenant's provider's refusal is reported with: its body may hold anything.
const TENANT_BODY_NOT_QUOTED: &str = "(the body of a tenant's provider is not quoted)";

/// The longest line a streamed answer may send: a chunk holds a few tokens, so a line this long
/// is not a chat completion stream.
const MAX_STREAM_LINE_BYTES: usize = 1024 * 1024;

/// What a request to a model may come to, as `llm_requests_total` counts it.
const OUTCOMES: [&str; 7] = [
    "ok",
    "rate_limited",
    "server_error",
    "refused",
    "unreachable",
    "timeout",
    "malformed",
];

/// The outcome of a request that failed with `error`, or succeeded.
fn outcome(error: Option<&LlmError>) -> &'static str {
    match error {
        None => "ok",
        Some(LlmError::Refused { status: 429, .. }) => "rate_limited",
        Some(LlmError::Refused { status, .. }) if *status >= 500 => "server_error",
        Some(LlmError::Refused { .. }) => "refused",
        Some(LlmError::Unreachable(_)) => "unreachable",
        Some(LlmError::Timeout(_)) => "timeout",
        Some(LlmError::Malformed(_)) => "malformed",
    }
}

/// Describes the models' request metrics, every series at zero from the start.
pub fn describe_metrics() {
    metrics::describe_counter!(
        "llm_requests_total",
        "Requests to a model, retries included, by source (fleet: the operator's LLM; tenant: a \
         tenant's provider), protocol and outcome (ok, rate_limited, server_error, refused, \
         unreachable, timeout, malformed)."
    );
    metrics::describe_histogram!(
        "llm_request_seconds",
        metrics::Unit::Seconds,
        "Time of one request to a model (a stream's, to its answer's headers), by source and \
         protocol."
    );
    for source in [Source::Fleet, Source::Tenant].map(Source::as_str) {
        for protocol in [Protocol::OpenAi, Protocol::Anthropic].map(Protocol::as_str) {
            for outcome in OUTCOMES {
                metrics::counter!("llm_requests_total", "source" => source, "protocol" => protocol, "outcome" => outcome)
                    .increment(0);
            }
            let _ = metrics::histogram!("llm_request_seconds", "source" => source, "protocol" => protocol);
        }
    }
}

/// Longest a `Retry-After` may make us wait; a provider asking for more has failed for this run.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);
/// How much of a refusal's body is kept in the error (and its log line).
const MAX_REFUSAL_BODY_BYTES: usize = 300;

pub struct LlmClient {
    http: reqwest::Client,
    config: LlmConfig,
    url: String,
    source: Source,
}

/// Whose model a client asks: the operator's (`SANKALPA_LLM_*`) or a tenant's provider. Only the
/// operator's refusals are quoted in errors: a tenant's provider URL may point at a service the
/// operator allowed for providers, whose answers are not the tenant's to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Fleet,
    Tenant,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Self::Fleet => "fleet",
            Self::Tenant => "tenant",
        }
    }
}

impl LlmClient {
    /// The client of the operator's LLM.
    pub fn new(config: LlmConfig) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        Ok(Self::with(http, config, Source::Fleet))
    }

    /// The client of a tenant's provider, sharing `http`'s connections (the tenants' providers
    /// share one guarded pool); the timeout is the config's, per request.
    pub fn for_tenant_provider(http: reqwest::Client, config: LlmConfig) -> Self {
        Self::with(http, config, Source::Tenant)
    }

    fn with(http: reqwest::Client, config: LlmConfig, source: Source) -> Self {
        let path = match config.protocol {
            Protocol::OpenAi => "chat/completions",
            Protocol::Anthropic => "messages",
        };
        let url = format!("{}/{path}", config.base_url.trim_end_matches('/'));
        Self {
            http,
            config,
            url,
            source,
        }
    }

    pub fn model(&self) -> &str {
        &self.config.model
    }

    /// One chat completion at temperature 0, retried as the module says.
    pub async fn chat(&self, messages: &[Message]) -> Result<Completion, LlmError> {
        self.ask(messages, Ask::Text).await
    }

    /// One chat completion at temperature 0 answering as `ask` says, retried as the module says.
    pub async fn ask(&self, messages: &[Message], ask: Ask<'_>) -> Result<Completion, LlmError> {
        let span = self.span();
        let answered = self
            .ask_unspanned(messages, ask)
            .instrument(span.clone())
            .await;
        record(&span, &answered);
        answered
    }

    /// The span of one call of the model, by OpenTelemetry's GenAI conventions: `chat <model>`,
    /// a client span with the provider's system, the model asked and answered, the tokens and
    /// the error's kind. Not the messages: they are the tenant's.
    fn span(&self) -> tracing::Span {
        tracing::info_span!(
            "llm.chat",
            otel.name = %format_args!("chat {}", self.config.model),
            otel.kind = "client",
            gen_ai.operation.name = "chat",
            gen_ai.system = self.config.protocol.as_str(),
            gen_ai.request.model = %self.config.model,
            gen_ai.response.model = tracing::field::Empty,
            gen_ai.usage.input_tokens = tracing::field::Empty,
            gen_ai.usage.output_tokens = tracing::field::Empty,
            sankalpa.llm.source = self.source.as_str(),
            error.type = tracing::field::Empty,
        )
    }

    async fn ask_unspanned(
        &self,
        messages: &[Message],
        ask: Ask<'_>,
    ) -> Result<Completion, LlmError> {
        let body = self.chat_body(messages, ask);
        let answered = self.retried(|| self.attempt(&body, ask)).await;
        match answered {
            Err(LlmError::Refused {
                status: 400 | 422, ..
            }) if self.config.protocol == Protocol::OpenAi && matches!(ask, Ask::Shaped { .. }) => {
                tracing::info!("the model refused response_format: asking without it");
                let plain = self.chat_body(messages, Ask::Text);
                self.retried(|| self.attempt(&plain, Ask::Text)).await
            }
            answered => answered,
        }
    }

    /// What [`LlmClient::ask`] sends for `messages` and `ask`.
    fn chat_body(&self, messages: &[Message], ask: Ask<'_>) -> serde_json::Value {
        match self.config.protocol {
            Protocol::OpenAi => {
                let turns: Vec<serde_json::Value> = messages.iter().map(Message::openai).collect();
                let mut body = json!({
                    "model": self.config.model,
                    "messages": turns,
                    "temperature": 0,
                });
                match ask {
                    Ask::Text => {}
                    Ask::Shaped { name, schema } => {
                        body["response_format"] = json!({"type": "json_schema",
                            "json_schema": {"name": name, "schema": schema}});
                    }
                    Ask::WithTools(tools) => {
                        let tools: Vec<serde_json::Value> = tools
                            .iter()
                            .map(|tool| {
                                json!({"type": "function", "function": {"name": tool.name,
                                    "description": tool.description, "parameters": tool.parameters}})
                            })
                            .collect();
                        body["tools"] = json!(tools);
                    }
                }
                body
            }
            Protocol::Anthropic => {
                let mut body = messages_body(&self.config.model, messages);
                match ask {
                    Ask::Text => {}
                    Ask::Shaped { name, schema } => {
                        body["tools"] = json!([{"name": name,
                            "description": "Give your answer as this tool's input.",
                            "input_schema": schema}]);
                        body["tool_choice"] = json!({"type": "tool", "name": name});
                    }
                    Ask::WithTools(tools) => {
                        let tools: Vec<serde_json::Value> = tools
                            .iter()
                            .map(|tool| {
                                json!({"name": tool.name, "description": tool.description,
                                    "input_schema": tool.parameters})
                            })
                            .collect();
                        body["tools"] = json!(tools);
                    }
                }
                body
            }
        }
    }

    /// The SHA-256 of where [`LlmClient::ask`] would send `messages` and `ask` and of all it
    /// would send but the key: the same question to the same model of the same provider.
    pub fn request_key(&self, messages: &[Message], ask: Ask<'_>) -> [u8; 32] {
        use sha2::Digest;
        let mut hash = sha2::Sha256::new();
        hash.update(self.url.as_bytes());
        hash.update([0]);
        hash.update(self.chat_body(messages, ask).to_string().as_bytes());
        hash.finalize().into()
    }

    /// A chat completion streamed: each piece of text is sent to `deltas` as it arrives, and the
    /// whole answer is returned at the end. When `deltas` is closed (its reader went away) the
    /// answer stops there and what was written so far is returned.
    pub async fn chat_stream(
        &self,
        messages: &[Message],
        deltas: &tokio::sync::mpsc::Sender<String>,
    ) -> Result<Completion, LlmError> {
        let span = self.span();
        let streamed = async {
            let mut body = self.chat_body(messages, Ask::Text);
            body["stream"] = json!(true);
            if self.config.protocol == Protocol::OpenAi {
                body["stream_options"] = json!({"include_usage": true});
            }
            let response = self.retried(|| self.send(&body)).await?;
            self.read_stream(response, deltas).await
        }
        .instrument(span.clone())
        .await;
        record(&span, &streamed);
        streamed
    }

    /// `attempt` until it succeeds, retried as the module says.
    async fn retried<T, F>(&self, attempt: impl Fn() -> F) -> Result<T, LlmError>
    where
        F: std::future::Future<Output = Result<T, (LlmError, Option<Duration>)>>,
    {
        let mut tries = 0;
        loop {
            let started = std::time::Instant::now();
            let answered = attempt().await;
            self.count(answered.as_ref().err().map(|(error, _)| error), started);
            let (error, retry_after) = match answered {
                Ok(answer) => return Ok(answer),
                Err(failure) => failure,
            };
            let retryable = match &error {
                LlmError::Refused { status, .. } => *status == 429 || *status >= 500,
                LlmError::Unreachable(_) | LlmError::Timeout(_) => true,
                LlmError::Malformed(_) => false,
            };
            if !retryable || tries >= self.config.max_retries {
                return Err(error);
            }
            let backoff = self.config.backoff * 2u32.saturating_pow(tries);
            let wait = retry_after.map_or(backoff, |after| after.min(MAX_RETRY_AFTER));
            tracing::warn!(error = %error, attempt = tries, wait_ms = wait.as_millis() as u64, "retrying the LLM call");
            tokio::time::sleep(wait).await;
            tries += 1;
        }
    }

    /// Counts one request to the model and its time (a stream's, to its answer's headers), by
    /// whose model it is (the operator's `fleet` or a `tenant`'s provider: not by provider, whose
    /// names the tenants choose), its protocol and its outcome (one of [`OUTCOMES`]).
    fn count(&self, error: Option<&LlmError>, started: std::time::Instant) {
        let outcome = outcome(error);
        let source = self.source.as_str();
        let protocol = self.config.protocol.as_str();
        metrics::counter!("llm_requests_total", "source" => source, "protocol" => protocol, "outcome" => outcome)
            .increment(1);
        metrics::histogram!("llm_request_seconds", "source" => source, "protocol" => protocol)
            .record(started.elapsed().as_secs_f64());
    }

    /// Reads a streamed answer's events to its end (`[DONE]`, `message_stop`, or the end of the
    /// body), sending each piece of text on.
    async fn read_stream(
        &self,
        mut response: reqwest::Response,
        deltas: &tokio::sync::mpsc::Sender<String>,
    ) -> Result<Completion, LlmError> {
        let mut completion = Completion {
            model: self.config.model.clone(),
            ..Completion::default()
        };
        let mut events = SseLines::default();
        while let Some(bytes) = response.chunk().await.map_err(|err| self.transport(err))? {
            for data in events.push(&bytes)? {
                let piece = match self.config.protocol {
                    Protocol::OpenAi => chat_chunk(&data, &mut completion)?,
                    Protocol::Anthropic => self.messages_event(&data, &mut completion)?,
                };
                let text = match piece {
                    Piece::End => return Ok(completion),
                    Piece::Text(text) if !text.is_empty() => text,
                    Piece::Text(_) => continue,
                };
                completion.text.push_str(&text);
                if deltas.send(text).await.is_err() {
                    // Nobody reads on: dropping the response closes the connection, which
                    // stops the provider writing (and counting) more.
                    return Ok(completion);
                }
            }
        }
        Ok(completion)
    }

    /// Sends `body`; a response of a success status, or the refusal and its `Retry-After`.
    async fn send(
        &self,
        body: &serde_json::Value,
    ) -> Result<reqwest::Response, (LlmError, Option<Duration>)> {
        let mut request = self
            .http
            .post(&self.url)
            .timeout(self.config.timeout)
            .json(body);
        request = match (self.config.protocol, &self.config.api_key) {
            (Protocol::OpenAi, Some(key)) => request.bearer_auth(key),
            (Protocol::OpenAi, None) => request,
            (Protocol::Anthropic, key) => {
                let request = request.header("anthropic-version", ANTHROPIC_VERSION);
                match key {
                    Some(key) => request.header("x-api-key", key),
                    None => request,
                }
            }
        };
        let response = request
            .send()
            .await
            .map_err(|err| (self.transport(err), None))?;
        let status = response.status();
        if !status.is_success() {
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let body = if self.source == Source::Fleet {
                let body = response.text().await.unwrap_or_default();
                // Cut on a character boundary: String::truncate panics inside a character.
                truncate(&body, MAX_REFUSAL_BODY_BYTES).into_owned()
            } else {
                TENANT_BODY_NOT_QUOTED.to_owned()
            };
            let error = LlmError::Refused {
                status: status.as_u16(),
                body,
            };
            return Err((error, retry_after));
        }
        Ok(response)
    }

    async fn attempt(
        &self,
        body: &serde_json::Value,
        ask: Ask<'_>,
    ) -> Result<Completion, (LlmError, Option<Duration>)> {
        let response = self.send(body).await?;
        if self.config.protocol == Protocol::Anthropic {
            return self.messages_answer(response, ask).await;
        }
        let answer: Answer = response
            .json()
            .await
            .map_err(|err| (self.transport(err), None))?;
        let malformed = |why: &str| (LlmError::Malformed(why.to_owned()), None);
        let message = answer
            .choices
            .into_iter()
            .next()
            .ok_or_else(|| malformed("no choice"))?
            .message;
        let tool_calls: Vec<ToolCall> = message
            .tool_calls
            .into_iter()
            .map(|call| ToolCall {
                id: call.id,
                name: call.function.name,
                arguments: serde_json::from_str(&call.function.arguments)
                    .unwrap_or(serde_json::Value::String(call.function.arguments)),
            })
            .collect();
        let text = match message.content {
            Some(text) => text,
            None if !tool_calls.is_empty() => String::new(),
            None => return Err(malformed("no choice with content")),
        };
        Ok(Completion {
            text,
            tool_calls,
            model: self.answered_model(answer.model),
            prompt_tokens: answer.usage.prompt_tokens,
            completion_tokens: answer.usage.completion_tokens,
        })
    }

    /// An Anthropic Messages answer: its text blocks joined, its tool calls; for a shaped ask,
    /// the input the model gave the answer's tool, as text.
    async fn messages_answer(
        &self,
        response: reqwest::Response,
        ask: Ask<'_>,
    ) -> Result<Completion, (LlmError, Option<Duration>)> {
        let answer: MessagesAnswer = response
            .json()
            .await
            .map_err(|err| (self.transport(err), None))?;
        let (text, tool_calls) = messages_content(answer.content, ask)
            .map_err(|why| (LlmError::Malformed(why.to_owned()), None))?;
        Ok(Completion {
            text,
            tool_calls,
            model: self.answered_model(answer.model),
            prompt_tokens: answer.usage.input_tokens,
            completion_tokens: answer.usage.output_tokens,
        })
    }

    /// What one event of an Anthropic stream says, its counts taken into `completion`.
    fn messages_event(&self, data: &str, completion: &mut Completion) -> Result<Piece, LlmError> {
        let event: MessagesEvent = serde_json::from_str(data)
            .map_err(|err| LlmError::Malformed(format!("a streamed event: {err}")))?;
        match event.kind.as_str() {
            "message_start" => {
                if let Some(message) = event.message {
                    completion.model = self.answered_model(message.model);
                    completion.prompt_tokens = message.usage.input_tokens;
                    completion.completion_tokens = message.usage.output_tokens;
                }
            }
            "content_block_delta" => {
                let text = event.delta.and_then(|delta| delta.text).unwrap_or_default();
                return Ok(Piece::Text(text));
            }
            "message_delta" => {
                if let Some(usage) = event.usage {
                    completion.completion_tokens = usage.output_tokens;
                }
            }
            "message_stop" => return Ok(Piece::End),
            "error" => {
                let kind = event.error.map(|error| error.kind).unwrap_or_default();
                // Anthropic's HTTP status for the same error: overloaded is 529, others 500.
                let status = if kind == "overloaded_error" { 529 } else { 500 };
                let body = if self.source == Source::Fleet {
                    format!("the stream stopped with {kind}")
                } else {
                    TENANT_BODY_NOT_QUOTED.to_owned()
                };
                return Err(LlmError::Refused { status, body });
            }
            _ => {}
        }
        Ok(Piece::Text(String::new()))
    }

    /// The model an answer names, or the one asked for when it names none.
    fn answered_model(&self, model: String) -> String {
        if model.is_empty() {
            self.config.model.clone()
        } else {
            model
        }
    }

    fn transport(&self, err: reqwest::Error) -> LlmError {
        if err.is_timeout() {
            LlmError::Timeout(self.config.timeout)
        } else if err.is_decode() {
            LlmError::Malformed(err.to_string())
        } else {
            LlmError::Unreachable(sankalpa_kit::egress::error_chain(&err))
        }
    }
}

/// What a call answered, on its span: the model and tokens, or the error's kind (the outcome
/// `llm_requests_total` counts).
fn record(span: &tracing::Span, answered: &Result<Completion, LlmError>) {
    match answered {
        Ok(completion) => {
            span.record("gen_ai.response.model", completion.model.as_str());
            span.record("gen_ai.usage.input_tokens", completion.prompt_tokens);
            span.record("gen_ai.usage.output_tokens", completion.completion_tokens);
        }
        Err(error) => {
            span.record("error.type", outcome(Some(error)));
        }
    }
}

/// What a piece of a streamed answer is.
enum Piece {
    /// Text to append (empty for an event that carries none).
    Text(String),
    /// The answer is whole.
    End,
}

/// What one `data:` of an OpenAI stream says, its counts taken into `completion`.
fn chat_chunk(data: &str, completion: &mut Completion) -> Result<Piece, LlmError> {
    if data == "[DONE]" {
        return Ok(Piece::End);
    }
    let chunk: StreamChunk = serde_json::from_str(data)
        .map_err(|err| LlmError::Malformed(format!("a streamed chunk: {err}")))?;
    if !chunk.model.is_empty() {
        completion.model = chunk.model;
    }
    if let Some(usage) = chunk.usage {
        completion.prompt_tokens = usage.prompt_tokens;
        completion.completion_tokens = usage.completion_tokens;
    }
    let text = chunk
        .choices
        .into_iter()
        .next()
        .and_then(|choice| choice.delta.content)
        .unwrap_or_default();
    Ok(Piece::Text(text))
}

/// What an Anthropic answer's content blocks say: the text and the tool calls; for a shaped ask,
/// the input of the call of its tool, as the text.
fn messages_content(
    blocks: Vec<ContentBlock>,
    ask: Ask<'_>,
) -> Result<(String, Vec<ToolCall>), &'static str> {
    let mut text = String::new();
    let mut calls = Vec::new();
    for block in blocks {
        match block.kind.as_str() {
            "text" => text.push_str(&block.text),
            "tool_use" => calls.push(ToolCall {
                id: block.id,
                name: block.name,
                arguments: block.input,
            }),
            _ => {}
        }
    }
    if let Ask::Shaped { name, .. } = ask {
        let shaped = calls
            .into_iter()
            .find(|call| call.name == name)
            .ok_or("no answer given to the answer's tool")?;
        return Ok((shaped.arguments.to_string(), Vec::new()));
    }
    if text.is_empty() && calls.is_empty() {
        return Err("no text content");
    }
    Ok((text, calls))
}

/// An Anthropic Messages request: the system messages joined into `system`, the others in
/// order; an assistant's tool calls are `tool_use` blocks, and the results of one turn's calls
/// one user message of `tool_result` blocks.
fn messages_body(model: &str, messages: &[Message]) -> serde_json::Value {
    let system: Vec<&str> = messages
        .iter()
        .filter(|m| m.role == "system")
        .map(|m| m.content.as_str())
        .collect();
    let mut turns: Vec<serde_json::Value> = Vec::new();
    for message in messages.iter().filter(|m| m.role != "system") {
        if let Some(id) = &message.tool_call_id {
            let result =
                json!({"type": "tool_result", "tool_use_id": id, "content": message.content});
            match turns.last_mut() {
                Some(last) if last["role"] == "user" && last["content"].is_array() => {
                    last["content"]
                        .as_array_mut()
                        .expect("checked an array")
                        .push(result);
                }
                _ => turns.push(json!({"role": "user", "content": [result]})),
            }
        } else if !message.tool_calls.is_empty() {
            let mut blocks = Vec::new();
            if !message.content.is_empty() {
                blocks.push(json!({"type": "text", "text": message.content}));
            }
            blocks.extend(message.tool_calls.iter().map(|call| {
                json!({"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments})
            }));
            turns.push(json!({"role": message.role, "content": blocks}));
        } else {
            turns.push(json!({"role": message.role, "content": message.content}));
        }
    }
    let mut body = json!({
        "model": model,
        "max_tokens": ANTHROPIC_MAX_TOKENS,
        "messages": turns,
        "temperature": 0,
    });
    if !system.is_empty() {
        body["system"] = json!(system.join("\n\n"));
    }
    body
}

/// The `data` of Server-Sent Events read from a byte stream cut anywhere: lines end at `\n`
/// (a `\r` before it is dropped), an event at an empty line; comments and other fields are
/// ignored.
#[derive(Default)]
struct SseLines {
    pending: Vec<u8>,
    data: Vec<String>,
}

impl SseLines {
    /// The events completed by `bytes`, each its `data` lines joined by `\n`.
    fn push(&mut self, bytes: &[u8]) -> Result<Vec<String>, LlmError> {
        self.pending.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let mut line: Vec<u8> = self.pending.drain(..=end).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8(line)
                .map_err(|_| LlmError::Malformed("a streamed line is not UTF-8".to_owned()))?;
            if line.is_empty() {
                if !self.data.is_empty() {
                    events.push(std::mem::take(&mut self.data).join("\n"));
                }
            } else if let Some(value) = line.strip_prefix("data:") {
                self.data
                    .push(value.strip_prefix(' ').unwrap_or(value).to_owned());
            }
        }
        if self.pending.len() > MAX_STREAM_LINE_BYTES {
            return Err(LlmError::Malformed(format!(
                "a streamed line is longer than {MAX_STREAM_LINE_BYTES} bytes"
            )));
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn every_outcome_counted_is_one_registered_at_start() {
        let refused = |status| LlmError::Refused {
            status,
            body: String::new(),
        };
        let errors = [
            refused(429),
            refused(503),
            refused(401),
            LlmError::Unreachable(String::new()),
            LlmError::Timeout(Duration::ZERO),
            LlmError::Malformed(String::new()),
        ];
        let counted: Vec<&str> = std::iter::once(outcome(None))
            .chain(errors.iter().map(|error| outcome(Some(error))))
            .collect();
        assert_eq!(counted, OUTCOMES);
    }

    #[test]
    fn events_are_read_however_the_bytes_are_cut() {
        let stream = b"data: {\"a\":1}\r\n\r\n: a comment\n\ndata: x\ndata: y\n\ndata: [DONE]\n\n";
        for cut in 1..stream.len() {
            let mut lines = SseLines::default();
            let mut events = lines.push(&stream[..cut]).unwrap();
            events.extend(lines.push(&stream[cut..]).unwrap());
            assert_eq!(events, ["{\"a\":1}", "x\ny", "[DONE]"], "cut at {cut}");
        }
    }

    fn anthropic(source: Source) -> LlmClient {
        let config = LlmConfig {
            protocol: Protocol::Anthropic,
            base_url: "http://127.0.0.1:1/v1".to_owned(),
            api_key: None,
            model: "asked-model".to_owned(),
            timeout: Duration::from_secs(1),
            max_retries: 0,
            backoff: Duration::from_millis(1),
        };
        LlmClient::with(reqwest::Client::new(), config, source)
    }

    #[test]
    fn an_anthropic_stream_s_events_give_its_text_model_and_counts() {
        let client = anthropic(Source::Fleet);
        let mut completion = Completion::default();
        let mut text = String::new();
        let events = [
            r#"{"type":"message_start","message":{"model":"claude-x","usage":{"input_tokens":25,"output_tokens":1}}}"#,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            r#"{"type":"ping"}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hola"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" mundo"}}"#,
            r#"{"type":"content_block_stop","index":0}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":15}}"#,
        ];
        for event in events {
            match client.messages_event(event, &mut completion).unwrap() {
                Piece::Text(piece) => text.push_str(&piece),
                Piece::End => panic!("ended early at {event}"),
            }
        }
        assert_eq!(text, "Hola mundo");
        assert_eq!(completion.model, "claude-x");
        assert_eq!(
            (completion.prompt_tokens, completion.completion_tokens),
            (25, 15)
        );
        let stop = client.messages_event(r#"{"type":"message_stop"}"#, &mut completion);
        assert!(matches!(stop, Ok(Piece::End)));
    }

    #[test]
    fn an_anthropic_stream_s_error_is_a_refusal_quoted_only_for_the_fleet() {
        let overloaded =
            r#"{"type":"error","error":{"type":"overloaded_error","message":"secret"}}"#;
        let mut completion = Completion::default();
        let fleet = anthropic(Source::Fleet).messages_event(overloaded, &mut completion);
        let Err(LlmError::Refused { status, body }) = fleet else {
            panic!("a refusal");
        };
        assert_eq!(
            (status, body.as_str()),
            (529, "the stream stopped with overloaded_error")
        );
        let tenant = anthropic(Source::Tenant).messages_event(overloaded, &mut completion);
        let Err(LlmError::Refused { body, .. }) = tenant else {
            panic!("a refusal");
        };
        assert_eq!(body, TENANT_BODY_NOT_QUOTED);
    }

    fn call(id: &str, name: &str) -> ToolCall {
        ToolCall {
            id: id.to_owned(),
            name: name.to_owned(),
            arguments: json!({"name": "Ada"}),
        }
    }

    #[test]
    fn tool_calls_and_results_are_sent_in_each_protocol_s_shape() {
        let messages = [
            Message::system("be brief"),
            Message::user("greet Ada"),
            Message::calling("", vec![call("c1", "hello_world"), call("c2", "critic")]),
            Message::tool_result("c1", "{\"message\":\"Hello, Ada!\"}"),
            Message::tool_result("c2", "{}"),
        ];
        let tools = [Tool {
            name: "hello_world".to_owned(),
            description: "Greets".to_owned(),
            parameters: json!({"type": "object"}),
        }];
        let body = anthropic(Source::Fleet).chat_body(&messages, Ask::WithTools(&tools));
        assert_eq!(body["system"], "be brief");
        assert_eq!(body["tools"][0]["input_schema"], json!({"type": "object"}));
        let turns = body["messages"].as_array().unwrap();
        assert_eq!(turns.len(), 3, "one user turn holds both results: {body}");
        assert_eq!(turns[1]["content"][1]["type"], "tool_use");
        assert_eq!(turns[1]["content"][1]["input"], json!({"name": "Ada"}));
        assert_eq!(turns[2]["role"], "user");
        assert_eq!(turns[2]["content"][0]["tool_use_id"], "c1");
        assert_eq!(turns[2]["content"][1]["tool_use_id"], "c2");

        let openai = LlmClient::with(
            reqwest::Client::new(),
            LlmConfig {
                protocol: Protocol::OpenAi,
                ..anthropic(Source::Fleet).config
            },
            Source::Fleet,
        );
        let body = openai.chat_body(&messages, Ask::WithTools(&tools));
        assert_eq!(body["tools"][0]["function"]["name"], "hello_world");
        let turns = body["messages"].as_array().unwrap();
        assert_eq!(turns.len(), 5);
        assert_eq!(
            turns[2]["tool_calls"][0]["function"]["arguments"],
            "{\"name\":\"Ada\"}"
        );
        assert_eq!(turns[4]["role"], "tool");
        assert_eq!(turns[4]["tool_call_id"], "c2");
    }

    #[test]
    fn a_shaped_ask_is_response_format_or_a_forced_tool_whose_input_is_the_answer() {
        let schema = json!({"type": "object", "required": ["tagline"]});
        let shaped = Ask::Shaped {
            name: "launch_copy",
            schema: &schema,
        };
        let body = anthropic(Source::Fleet).chat_body(&[Message::user("go")], shaped);
        assert_eq!(
            body["tool_choice"],
            json!({"type": "tool", "name": "launch_copy"})
        );
        assert_eq!(body["tools"][0]["input_schema"], schema);
        let blocks = vec![
            ContentBlock {
                kind: "text".to_owned(),
                text: "Here it is".to_owned(),
                id: String::new(),
                name: String::new(),
                input: Value::Null,
            },
            ContentBlock {
                kind: "tool_use".to_owned(),
                text: String::new(),
                id: "t1".to_owned(),
                name: "launch_copy".to_owned(),
                input: json!({"tagline": "Ship it"}),
            },
        ];
        let (text, calls) = messages_content(blocks, shaped).unwrap();
        assert_eq!(text, r#"{"tagline":"Ship it"}"#);
        assert!(calls.is_empty());
        assert!(messages_content(Vec::new(), shaped).is_err());
    }

    #[test]
    fn a_line_without_end_is_refused_past_its_bound() {
        let mut lines = SseLines::default();
        let long = vec![b'a'; MAX_STREAM_LINE_BYTES + 1];
        assert!(matches!(lines.push(&long), Err(LlmError::Malformed(_))));
    }
}
