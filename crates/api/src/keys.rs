//! API keys: created with at most the caller's permissions, shown once, revoked by id
//! (`/api/keys`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApiKey {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    /// The first characters of the key, to recognise it; never the whole key.
    pub prefix: String,
    pub permissions: Vec<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// The user who created it; for a chain run's key, the user or key that started the run.
    pub created_by: String,
    pub purpose: KeyPurpose,
}

/// What a key is for: a person's or a tool's, a chain run's own credential (made by the
/// orchestrator when a run starts, revoked when it ends), or a schedule's (made by the triggers
/// service when the schedule is created, revoked when it is deleted).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyPurpose {
    Tool,
    ChainRun,
    Schedule,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"name": "ci", "permissions": ["memory:read", "memory:write"], "expires_in_seconds": 86400}))]
pub struct CreateApiKey {
    /// 1 to 100 characters once trimmed.
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: String,
    /// A subset of the caller's permissions (`<resource>:*` grants every action on it).
    #[serde(default)]
    #[schema(value_type = Vec<Permission>)]
    pub permissions: Vec<String>,
    /// Lifetime in seconds, at most `SANKALPA_API_KEY_MAX_TTL_SECONDS` (90 days by default, the
    /// maximum stated here), which is also the lifetime when absent or 0.
    #[schema(maximum = 7776000)]
    #[serde(default, deserialize_with = "crate::json::whole")]
    pub expires_in_seconds: Option<u64>,
}

/// A permission, as auth names it. Requests carry permissions as text, for auth to check and
/// name the field of one it does not know; this is their schema.
#[derive(ToSchema)]
pub enum Permission {
    #[schema(rename = "*:*")]
    AnyAll,
    #[schema(rename = "agents:*")]
    AgentsAll,
    #[schema(rename = "agents:read")]
    AgentsRead,
    #[schema(rename = "agents:execute")]
    AgentsExecute,
    #[schema(rename = "agents:write")]
    AgentsWrite,
    #[schema(rename = "chains:*")]
    ChainsAll,
    #[schema(rename = "chains:read")]
    ChainsRead,
    #[schema(rename = "chains:write")]
    ChainsWrite,
    #[schema(rename = "chains:execute")]
    ChainsExecute,
    #[schema(rename = "memory:*")]
    MemoryAll,
    #[schema(rename = "memory:read")]
    MemoryRead,
    #[schema(rename = "memory:write")]
    MemoryWrite,
    #[schema(rename = "market:*")]
    MarketAll,
    #[schema(rename = "market:read")]
    MarketRead,
    #[schema(rename = "market:publish")]
    MarketPublish,
    #[schema(rename = "webhooks:*")]
    WebhooksAll,
    #[schema(rename = "webhooks:read")]
    WebhooksRead,
    #[schema(rename = "webhooks:write")]
    WebhooksWrite,
    #[schema(rename = "schedules:*")]
    SchedulesAll,
    #[schema(rename = "schedules:read")]
    SchedulesRead,
    #[schema(rename = "schedules:write")]
    SchedulesWrite,
    #[schema(rename = "models:*")]
    ModelsAll,
    #[schema(rename = "models:read")]
    ModelsRead,
    #[schema(rename = "models:admin")]
    ModelsAdmin,
    #[schema(rename = "users:*")]
    UsersAll,
    #[schema(rename = "users:admin")]
    UsersAdmin,
    #[schema(rename = "keys:*")]
    KeysAll,
    #[schema(rename = "keys:admin")]
    KeysAdmin,
    #[schema(rename = "tenants:*")]
    TenantsAll,
    #[schema(rename = "tenants:admin")]
    TenantsAdmin,
    #[schema(rename = "fleet:*")]
    FleetAll,
    #[schema(rename = "fleet:read")]
    FleetRead,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedApiKey {
    pub key: Option<ApiKey>,
    /// The key itself (`sk_...`), shown this once: send it as `X-API-Key`.
    pub secret: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyList {
    pub keys: Vec<ApiKey>,
    /// Pass as `page_token` for the next page; absent on the last page.
    pub next_page_token: Option<String>,
}
