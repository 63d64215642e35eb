//! Signing up and in: register, login, refresh, logout, and the public keys that verify the
//! access tokens these hand out. None of these routes needs a caller.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use sankalpa_kit::problem::Problem;
use sankalpa_proto::v1;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::json::Body;
use crate::tenants::Tenant;
use crate::users::User;

pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(jwks))
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"email": "ada@example.com", "password": "correct horse battery staple", "display_name": "Ada", "tenant_name": "Analytical Engines"}))]
pub struct Register {
    /// An email address (at most 254 bytes), trimmed and lower-cased.
    #[schema(
        max_length = 254,
        pattern = r"^\s*[^\s@\x00-\x1f\x7f-\x9f]+@[^\s@\x00-\x1f\x7f-\x9f]*\.[^\s@\x00-\x1f\x7f-\x9f]*\s*$"
    )]
    pub email: String,
    /// 8 to 128 characters.
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
    /// At most 100 characters once trimmed; the email's local part when absent or blank.
    #[serde(default)]
    #[schema(max_length = 100)]
    pub display_name: String,
    /// The new tenant's name, at most 100 characters once trimmed; the email's local part when
    /// absent or blank.
    #[serde(default)]
    #[schema(max_length = 100)]
    pub tenant_name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Registered {
    pub user: Option<User>,
    pub tenant: Option<Tenant>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"email": "ada@example.com", "password": "correct horse battery staple"}))]
pub struct Login {
    /// An email address (at most 254 bytes), trimmed and lower-cased.
    #[schema(
        max_length = 254,
        pattern = r"^\s*[^\s@\x00-\x1f\x7f-\x9f]+@[^\s@\x00-\x1f\x7f-\x9f]*\.[^\s@\x00-\x1f\x7f-\x9f]*\s*$"
    )]
    pub email: String,
    /// 8 to 128 characters.
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Trade it at `/api/users/refresh` for a new pair; it works once.
    pub refresh_token: String,
    pub user: Option<User>,
}

impl From<v1::TokenPair> for TokenPair {
    fn from(pair: v1::TokenPair) -> Self {
        Self {
            access_token: pair.access_token,
            token_type: pair.token_type,
            expires_in: pair.expires_in,
            refresh_token: pair.refresh_token,
            user: pair.user.map(User::from),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"refresh_token": "rt_4f3c2b1a0e9d8c7b6a5f4e3d2c1b0a99"}))]
pub struct RefreshToken {
    pub refresh_token: String,
}

/// Creates a user and a new tenant with that user as its admin.
#[utoipa::path(
    post,
    path = "/api/users/register",
    tag = "sessions",
    request_body = Register,
    responses(
        (status = 201, description = "The user and its tenant", body = Registered),
        (status = 400, description = "Invalid input", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The email is taken", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn register(
    State(state): State<Arc<AppState>>,
    Body(body): Body<Register>,
) -> Result<(StatusCode, axum::Json<Registered>), Problem> {
    let request = v1::RegisterRequest {
        email: body.email,
        password: body.password,
        display_name: body.display_name,
        tenant_name: body.tenant_name,
    };
    let response = state
        .auth()
        .register(state.request(request))
        .await?
        .into_inner();
    Ok((
        StatusCode::CREATED,
        axum::Json(Registered {
            user: response.user.map(User::from),
            tenant: response.tenant.map(Tenant::from),
        }),
    ))
}

/// Checks email and password and hands out a token pair. A wrong email and a wrong password
/// get the same answer.
#[utoipa::path(
    post,
    path = "/api/users/login",
    tag = "sessions",
    request_body = Login,
    responses(
        (status = 200, description = "Tokens for the user", body = TokenPair),
        (status = 401, description = "Invalid email or password", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts from this address or for this account", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Sign-in is paused (its rate limit cannot be checked) or too many passwords are being checked at once", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn login(
    State(state): State<Arc<AppState>>,
    Body(body): Body<Login>,
) -> Result<axum::Json<TokenPair>, Problem> {
    state.limiter.check_login_account(&body.email).await?;
    let request = v1::LoginRequest {
        email: body.email,
        password: body.password,
    };
    let pair = state.auth().login(state.request(request)).await?;
    Ok(axum::Json(pair.into_inner().into()))
}

/// Trades a refresh token for a new pair. The old token stops working; presenting it again
/// revokes every token descended from the same login.
#[utoipa::path(
    post,
    path = "/api/users/refresh",
    tag = "sessions",
    request_body = RefreshToken,
    responses(
        (status = 200, description = "A new token pair", body = TokenPair),
        (status = 401, description = "Unknown, expired, revoked or reused refresh token", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn refresh(
    State(state): State<Arc<AppState>>,
    Body(body): Body<RefreshToken>,
) -> Result<axum::Json<TokenPair>, Problem> {
    let request = v1::RefreshRequest {
        refresh_token: body.refresh_token,
    };
    let pair = state.auth().refresh(state.request(request)).await?;
    Ok(axum::Json(pair.into_inner().into()))
}

/// Revokes the refresh token and every token of its login.
#[utoipa::path(
    post,
    path = "/api/users/logout",
    tag = "sessions",
    request_body = RefreshToken,
    responses(
        (status = 204, description = "Logged out"),
        (status = 401, description = "Unknown refresh token", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn logout(
    State(state): State<Arc<AppState>>,
    Body(body): Body<RefreshToken>,
) -> Result<StatusCode, Problem> {
    let request = v1::LogoutRequest {
        refresh_token: body.refresh_token,
        everywhere: false,
    };
    state.auth().logout(state.request(request)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The public keys (RFC 7517 JWK Set) that verify access tokens.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "sessions",
    responses((status = 200, description = "The JWK Set", content_type = "application/json", body = Object)),
)]
pub async fn jwks(State(state): State<Arc<AppState>>) -> Result<impl IntoResponse, Problem> {
    let jwks = state
        .auth()
        .get_jwks(state.request(v1::GetJwksRequest {}))
        .await?
        .into_inner();
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            // Short enough that clients pick up a rotated key well before old tokens expire.
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        jwks.jwks_json,
    ))
}
