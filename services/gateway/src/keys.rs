//! API keys: created for the caller's tenant with at most the caller's permissions, shown once,
//! listed by prefix, revoked by id.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use sankalpa_kit::problem::Problem;
use sankalpa_proto::v1;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::authn::Caller;
use crate::json::{Body, Page, next_page, timestamp};

pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(revoke))
}

#[derive(Debug, Serialize, ToSchema)]
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

/// What a key is for: a person's or a tool's, or a chain run's own credential (made by the
/// orchestrator when a run starts, revoked when it ends).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyPurpose {
    Tool,
    ChainRun,
}

impl From<v1::ApiKey> for ApiKey {
    fn from(key: v1::ApiKey) -> Self {
        let purpose = match key.purpose() {
            v1::ApiKeyPurpose::Tool => KeyPurpose::Tool,
            v1::ApiKeyPurpose::ChainRun => KeyPurpose::ChainRun,
        };
        Self {
            id: key.id,
            tenant_id: key.tenant_id,
            name: key.name,
            prefix: key.prefix,
            permissions: key.permissions,
            created_at: timestamp(key.created_at),
            expires_at: timestamp(key.expires_at),
            revoked_at: timestamp(key.revoked_at),
            purpose,
            created_by: key.created_by,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
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

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    pub key: Option<ApiKey>,
    /// The key itself (`sk_...`), shown this once: send it as `X-API-Key`.
    pub secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    pub keys: Vec<ApiKey>,
    /// Pass as `page_token` for the next page; absent on the last page.
    pub next_page_token: Option<String>,
}

/// Creates an API key.
#[utoipa::path(
    post,
    path = "/api/keys",
    tag = "keys",
    request_body = CreateApiKey,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "The key and its secret, shown once", body = CreatedApiKey),
        (status = 400, description = "Invalid input", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing keys:admin, a permission the caller does not hold, or the caller is an API key", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(body): Body<CreateApiKey>,
) -> Result<(StatusCode, axum::Json<CreatedApiKey>), Problem> {
    caller.require("keys:admin")?;
    let request = v1::CreateApiKeyRequest {
        name: body.name,
        permissions: body.permissions,
        expires_in_seconds: body.expires_in_seconds.unwrap_or(0),
        purpose: v1::ApiKeyPurpose::Tool.into(),
    };
    let response = state
        .auth()
        .create_api_key(state.request_as(&caller, request)?)
        .await?
        .into_inner();
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedApiKey {
            key: response.key.map(ApiKey::from),
            secret: response.secret,
        }),
    ))
}

/// The API keys of the caller's tenant.
#[utoipa::path(
    get,
    path = "/api/keys",
    tag = "keys",
    params(Page),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "One page of keys", body = ApiKeyList),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing keys:admin", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(page): Query<Page>,
) -> Result<axum::Json<ApiKeyList>, Problem> {
    caller.require("keys:admin")?;
    let request = v1::ListApiKeysRequest {
        page: Some(page.into()),
    };
    let response = state
        .auth()
        .list_api_keys(state.request_as(&caller, request)?)
        .await?
        .into_inner();
    Ok(axum::Json(ApiKeyList {
        keys: response.keys.into_iter().map(ApiKey::from).collect(),
        next_page_token: next_page(response.page),
    }))
}

/// Revokes an API key; the tokens minted from it stop working at once.
#[utoipa::path(
    delete,
    path = "/api/keys/{id}",
    tag = "keys",
    params(("id" = String, Path, description = "The key id (a UUID)", pattern = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})$")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The revoked key", body = ApiKey),
        (status = 403, description = "Missing keys:admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such key in the caller's tenant", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn revoke(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<ApiKey>, Problem> {
    caller.require("keys:admin")?;
    let key = state
        .auth()
        .revoke_api_key(state.request_as(&caller, v1::RevokeApiKeyRequest { id })?)
        .await?;
    Ok(axum::Json(key.into_inner().into()))
}
