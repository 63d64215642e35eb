//! API keys: created for the caller's tenant with at most the caller's permissions, shown once,
//! listed by prefix, revoked by id.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use sankalpa_api::keys::{ApiKey, ApiKeyList, CreateApiKey, CreatedApiKey, KeyPurpose};
use sankalpa_kit::problem::Problem;
use sankalpa_proto::v1;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::authn::Caller;
use crate::json::{Body, Page, Rest, next_page, page_request, timestamp};

pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(revoke))
}

impl Rest for v1::ApiKey {
    type Shown = ApiKey;

    fn rest(self) -> ApiKey {
        let purpose = match self.purpose() {
            v1::ApiKeyPurpose::Tool => KeyPurpose::Tool,
            v1::ApiKeyPurpose::ChainRun => KeyPurpose::ChainRun,
            v1::ApiKeyPurpose::Schedule => KeyPurpose::Schedule,
        };
        ApiKey {
            id: self.id,
            tenant_id: self.tenant_id,
            name: self.name,
            prefix: self.prefix,
            permissions: self.permissions,
            created_at: timestamp(self.created_at),
            expires_at: timestamp(self.expires_at),
            revoked_at: timestamp(self.revoked_at),
            purpose,
            created_by: self.created_by,
        }
    }
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
            key: response.key.map(Rest::rest),
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
        page: Some(page_request(page)),
    };
    let response = state
        .auth()
        .list_api_keys(state.request_as(&caller, request)?)
        .await?
        .into_inner();
    Ok(axum::Json(ApiKeyList {
        keys: response.keys.into_iter().map(Rest::rest).collect(),
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
    Ok(axum::Json(key.into_inner().rest()))
}
