//! The LLM client: OpenAI-compatible chat completions (`POST {base}/chat/completions`), so any
//! provider or local server speaking that protocol works (OpenAI, vLLM, Ollama, llama.cpp).
//!
//! Every call has a timeout. A 429 or 5xx answer, or a connection that fails, is retried with
//! exponential backoff (honouring `Retry-After`), at most `max_retries` times: asking again costs
//! tokens but changes nothing, so the retry is safe. Other answers fail at once. Token counts come
//! from the provider's `usage`, recorded per run.

use std::time::Duration;

use sankalpa_kit::limits::truncate;
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Clone)]
pub struct LlmConfig {
    /// e.g. `https://api.openai.com/v1`; `/chat/completions` is appended.
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

#[derive(Debug, Clone, Serialize)]
pub struct Message {
    pub role: &'static str,
    pub content: String,
}

impl Message {
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: "system",
            content: content.into(),
        }
    }

    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: "user",
            content: content.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub text: String,
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
}

#[derive(Deserialize, Default)]
struct Usage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

/// Longest a `Retry-After` may make us wait; a provider asking for more has failed for this run.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);
/// How much of a refusal's body is kept in the error (and its log line).
const MAX_REFUSAL_BODY_BYTES: usize = 300;

pub struct LlmClient {
    http: reqwest::Client,
    config: LlmConfig,
    url: String,
}

impl LlmClient {
    pub fn new(config: LlmConfig) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        let url = format!("{}/chat/completions", config.base_url.trim_end_matches('/'));
        Ok(Self { http, config, url })
    }

    pub fn model(&self) -> &str {
        &self.config.model
    }

    /// One chat completion at temperature 0, retried as the module says.
    pub async fn chat(&self, messages: &[Message]) -> Result<Completion, LlmError> {
        let body = json!({
            "model": self.config.model,
            "messages": messages,
            "temperature": 0,
        });
        let mut attempt = 0;
        loop {
            let (error, retry_after) = match self.attempt(&body).await {
                Ok(completion) => return Ok(completion),
                Err(failure) => failure,
            };
            let retryable = match &error {
                LlmError::Refused { status, .. } => *status == 429 || *status >= 500,
                LlmError::Unreachable(_) | LlmError::Timeout(_) => true,
                LlmError::Malformed(_) => false,
            };
            if !retryable || attempt >= self.config.max_retries {
                return Err(error);
            }
            let backoff = self.config.backoff * 2u32.saturating_pow(attempt);
            let wait = retry_after.map_or(backoff, |after| after.min(MAX_RETRY_AFTER));
            tracing::warn!(error = %error, attempt, wait_ms = wait.as_millis() as u64, "retrying the LLM call");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    async fn attempt(
        &self,
        body: &serde_json::Value,
    ) -> Result<Completion, (LlmError, Option<Duration>)> {
        let mut request = self.http.post(&self.url).json(body);
        if let Some(key) = &self.config.api_key {
            request = request.bearer_auth(key);
        }
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
            let body = response.text().await.unwrap_or_default();
            let error = LlmError::Refused {
                status: status.as_u16(),
                // Cut on a character boundary: String::truncate panics inside a character.
                body: truncate(&body, MAX_REFUSAL_BODY_BYTES).into_owned(),
            };
            return Err((error, retry_after));
        }
        let answer: Answer = response
            .json()
            .await
            .map_err(|err| (self.transport(err), None))?;
        let text = answer
            .choices
            .into_iter()
            .next()
            .and_then(|choice| choice.message.content)
            .ok_or_else(|| {
                (
                    LlmError::Malformed("no choice with content".to_owned()),
                    None,
                )
            })?;
        Ok(Completion {
            text,
            model: if answer.model.is_empty() {
                self.config.model.clone()
            } else {
                answer.model
            },
            prompt_tokens: answer.usage.prompt_tokens,
            completion_tokens: answer.usage.completion_tokens,
        })
    }

    fn transport(&self, err: reqwest::Error) -> LlmError {
        if err.is_timeout() {
            LlmError::Timeout(self.config.timeout)
        } else if err.is_decode() {
            LlmError::Malformed(err.to_string())
        } else {
            LlmError::Unreachable(err.to_string())
        }
    }
}
