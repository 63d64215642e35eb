//! Signing up and in: register, login, refresh, logout, and the public keys that verify the
//! access tokens these hand out. None of these routes needs a caller.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use sankalpa_api::sessions::{Login, RefreshToken, Register, Registered, TokenPair};
use sankalpa_kit::problem::Problem;
use sankalpa_proto::v1;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::json::{Body, Rest};

pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(jwks))
}

impl Rest for v1::TokenPair {
    type Shown = TokenPair;

    fn rest(self) -> TokenPair {
        TokenPair {
            access_token: self.access_token,
            token_type: self.token_type,
            expires_in: self.expires_in,
            refresh_token: self.refresh_token,
            user: self.user.map(Rest::rest),
        }
    }
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
            user: response.user.map(Rest::rest),
            tenant: response.tenant.map(Rest::rest),
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
    Ok(axum::Json(pair.into_inner().rest()))
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
    Ok(axum::Json(pair.into_inner().rest()))
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
