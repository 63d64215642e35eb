//! Model providers per tenant: the OpenAI-compatible or Anthropic endpoints a tenant's runs ask,
//! and its default model (`/api/models/...`). An API key is written, never read back.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The wire protocol of a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ModelProtocol {
    /// OpenAI's chat completions: OpenAI, Azure OpenAI, vLLM, Ollama, LM Studio, llama.cpp.
    Openai,
    /// Anthropic's Messages API.
    Anthropic,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ModelProvider {
    /// Unique in the tenant: 1 to 63 of `[a-z0-9_-]`, starting with a letter or digit.
    pub name: String,
    pub protocol: ModelProtocol,
    /// `/chat/completions` (openai) or `/messages` (anthropic) is appended.
    pub base_url: String,
    /// The models runs may name as `<name>/<model>`.
    pub models: Vec<String>,
    /// Whether an API key is stored (encrypted; it is never answered).
    pub has_api_key: bool,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ModelProviderList {
    /// Ordered by name; at most 20.
    pub providers: Vec<ModelProvider>,
    /// `provider/model`; absent when the tenant has none (the fleet's LLM is asked).
    pub default_model: Option<String>,
}

/// A provider to add, or to replace (the one named in the path).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"protocol": "openai", "base_url": "https://api.openai.com/v1", "api_key": "sk-...", "models": ["gpt-4o-mini", "gpt-4o"]}))]
#[serde(deny_unknown_fields)]
pub struct PutModelProvider {
    pub protocol: ModelProtocol,
    /// An https URL with a host and no credentials in it, at a public address: http, and
    /// loopback, private or link-local addresses, only where the operator allows them
    /// (`SANKALPA_MODELS_ALLOW_HTTP`, `SANKALPA_MODELS_ALLOW_PRIVATE_NETWORKS`).
    #[schema(max_length = 2048, pattern = r"^[^\u0000]*$")]
    pub base_url: String,
    /// The provider's key, stored encrypted. Absent: keep the stored one (none for a new
    /// provider); empty: remove it.
    #[schema(max_length = 4096, pattern = r"^[^\u0000-\u001f\u007f]*$")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// 1 to 50 models, each 1 to 200 bytes without spaces or control characters.
    #[schema(min_items = 1, max_items = 50)]
    pub models: Vec<String>,
}

/// What a provider answered a one-word question.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ModelProviderTest {
    /// Whether it answered a completion.
    pub ok: bool,
    /// The model that answered.
    pub model: String,
    pub latency_ms: u64,
    /// Why it failed: the provider's status, or the network's error.
    pub error: Option<String>,
}

/// The model to test; the provider's first when absent.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"model": "gpt-4o-mini"}))]
#[serde(deny_unknown_fields)]
pub struct TestModelProvider {
    #[schema(max_length = 200, pattern = r"^[^\s\u0000-\u001f]*$")]
    #[serde(default)]
    pub model: Option<String>,
}

/// The tenant's default model.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"model": "openai/gpt-4o-mini"}))]
#[serde(deny_unknown_fields)]
pub struct DefaultModel {
    /// `provider/model`: one of the tenant's providers and a model it lists; null or empty
    /// clears it.
    #[schema(max_length = 264, pattern = r"^([a-z0-9_-]+/[^\s\u0000-\u001f]+)?$")]
    pub model: Option<String>,
}

/// The most days of LLM use one request asks for.
pub const MAX_USAGE_DAYS: u32 = 90;

/// Which days of LLM use to answer.
#[derive(Debug, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// The last `days` UTC days, today included: 1 to 90; 30 when absent.
    #[param(minimum = 1, maximum = 90)]
    pub days: Option<u32>,
}

/// One UTC day of the tenant's LLM use.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ModelUsageDay {
    /// `YYYY-MM-DD`.
    #[schema(format = Date)]
    pub day: String,
    /// Prompt and completion tokens, as the providers reported them.
    pub tokens: u64,
    /// What they cost at the operator's prices (`SANKALPA_LLM_PRICES`), in US dollars; models
    /// without a price count 0.
    pub cost_usd: f64,
}

/// The tenant's LLM use, whichever model answered (the fleet's or a provider's).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ModelUsage {
    /// The days with any use, the latest first.
    pub days: Vec<ModelUsageDay>,
    /// Whether the operator has set prices: without them every cost is 0.
    pub priced: bool,
    /// The tokens the tenant may use a UTC day; absent: no limit.
    pub tokens_per_day: Option<u64>,
}
