//! The web console's session: the same sign-in as `/api/users/login`, with the refresh token
//! kept where page scripts cannot read it.
//!
//! The console holds its access token in memory only. The refresh token goes into an HttpOnly,
//! `SameSite=Strict` cookie scoped to `/api/console` (`Secure` when
//! `SANKALPA_CONSOLE_SECURE_COOKIES` says the gateway is reached over TLS), so an injected
//! script cannot steal it and no other path of the API ever receives it. The routes that use
//! the cookie (refresh, logout) act on the browser's behalf without the page naming a token, so
//! they are guarded against cross-site requests twice: the double-submit token (the readable
//! `sankalpa_csrf` cookie, which the page echoes in `X-CSRF-Token`; another site can neither read
//! it nor set the header) and, when the browser sends `Origin`, that it is the gateway's own.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sankalpa_kit::problem::{FieldViolation, Problem};
use sankalpa_proto::v1;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::json::{Body, Rest};
use sankalpa_api::users::User;

/// The HttpOnly cookie holding the refresh token.
pub const REFRESH_COOKIE: &str = "sankalpa_refresh";
/// The readable cookie holding the double-submit token.
pub const CSRF_COOKIE: &str = "sankalpa_csrf";
/// The header the page echoes the double-submit token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Only the console's session routes receive the refresh cookie.
const REFRESH_PATH: &str = "/api/console";
/// What a wrong email, a wrong password and a tenant the user is not in all answer.
const INVALID_LOGIN: &str = "invalid email or password";

/// How the console's cookies are set.
#[derive(Debug, Clone, Copy, Default)]
pub struct Settings {
    /// Mark the cookies `Secure` (`SANKALPA_CONSOLE_SECURE_COOKIES`): the gateway is reached
    /// over HTTPS (a TLS-terminating proxy in front of it), where browsers then never send them
    /// in clear.
    pub secure_cookies: bool,
    /// Accept `X-Forwarded-Host` as the gateway's own host when comparing `Origin`: set with
    /// `SANKALPA_TRUST_FORWARDED_FOR`, for a proxy that rewrites `Host`.
    pub trust_forwarded_host: bool,
}

pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(session))
        .routes(routes!(refresh))
        .routes(routes!(logout))
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"email": "ada@example.com", "password": "correct horse battery staple"}))]
pub struct ConsoleLogin {
    #[schema(schema_with = sankalpa_api::users::email_schema)]
    pub email: String,
    #[schema(schema_with = sankalpa_api::users::password_schema)]
    pub password: String,
    /// The tenant the user means to sign in to. An email names one user, in one tenant: a
    /// tenant that is not the user's is refused as a wrong password is.
    #[serde(default)]
    #[schema(format = Uuid)]
    pub tenant_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsoleToken {
    /// Keep it in memory; the refresh token is in the `sankalpa_refresh` cookie.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires: refresh a little before.
    pub expires_in: u64,
    pub user: Option<User>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({"everywhere": true}))]
pub struct ConsoleLogout {
    /// End every session of the user (every browser, every refresh token, every access token
    /// issued until now), not only this one.
    #[serde(default)]
    pub everywhere: bool,
}

/// Signs in (as `/api/users/login`), answering the access token and setting the refresh token
/// as an HttpOnly cookie and a fresh double-submit token as a readable one.
#[utoipa::path(
    post,
    path = "/api/console/session",
    operation_id = "console_session",
    tag = "console",
    request_body = ConsoleLogin,
    responses(
        (status = 200, description = "Signed in: the access token, with the `sankalpa_refresh` (HttpOnly, `Path=/api/console`) and `sankalpa_csrf` cookies set", body = ConsoleToken,
            headers(("set-cookie" = String, description = "`sankalpa_refresh` and `sankalpa_csrf`"))),
        (status = 400, description = "Invalid input", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Invalid email or password, or a tenant the user is not in", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts from this address or for this account", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Sign-in is paused (its rate limit cannot be checked) or too many passwords are being checked at once", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn session(
    State(state): State<Arc<AppState>>,
    Body(body): Body<ConsoleLogin>,
) -> Result<Response, Problem> {
    let tenant = body
        .tenant_id
        .as_deref()
        .map(|tenant| {
            uuid::Uuid::parse_str(tenant.trim())
                .map_err(|_| Problem::invalid("tenant_id", "must be a UUID"))
        })
        .transpose()?;
    state.limiter.check_login_account(&body.email).await?;
    let request = v1::LoginRequest {
        email: body.email,
        password: body.password,
    };
    let pair = state
        .auth()
        .login(state.request(request))
        .await?
        .into_inner();
    if let Some(tenant) = tenant {
        let users_tenant = pair
            .user
            .as_ref()
            .and_then(|user| uuid::Uuid::parse_str(&user.tenant_id).ok());
        if users_tenant != Some(tenant) {
            // The login happened: end it, so it leaves no session nobody holds.
            let logout = v1::LogoutRequest {
                refresh_token: pair.refresh_token,
                everywhere: false,
            };
            state.auth().logout(state.request(logout)).await?;
            return Err(Problem::new(StatusCode::UNAUTHORIZED, INVALID_LOGIN));
        }
    }
    signed_in(state.console, pair)
}

/// Trades the refresh cookie for a new access token and new cookies; the old refresh token
/// stops working (presenting it again ends the whole login, as at `/api/users/refresh`).
#[utoipa::path(
    post,
    path = "/api/console/refresh",
    operation_id = "console_refresh",
    tag = "console",
    params(
        ("x-csrf-token" = String, Header, description = "The `sankalpa_csrf` cookie's value"),
        ("sankalpa_refresh" = Option<String>, Cookie, description = "Set by `/api/console/session`"),
        ("sankalpa_csrf" = Option<String>, Cookie, description = "Set by `/api/console/session`"),
    ),
    responses(
        (status = 200, description = "A new access token, with new `sankalpa_refresh` and `sankalpa_csrf` cookies", body = ConsoleToken,
            headers(("set-cookie" = String, description = "`sankalpa_refresh` and `sankalpa_csrf`"))),
        (status = 401, description = "No refresh cookie, or an unknown, expired, revoked or reused one: both cookies are cleared", body = Problem, content_type = "application/problem+json",
            headers(("set-cookie" = String, description = "Both cookies, cleared"))),
        (status = 403, description = "`X-CSRF-Token` is missing or is not the `sankalpa_csrf` cookie, or `Origin` is another site", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Auth is unavailable; the cookies are kept for the next try", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn refresh(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    guard(state.console, &headers)?;
    let Some(refresh_token) = cookie(&headers, REFRESH_COOKIE) else {
        return Ok(signed_out(
            state.console,
            Problem::new(StatusCode::UNAUTHORIZED, "no refresh cookie: sign in again"),
        ));
    };
    let request = v1::RefreshRequest {
        refresh_token: refresh_token.to_owned(),
    };
    match state.auth().refresh(state.request(request)).await {
        Ok(pair) => signed_in(state.console, pair.into_inner()),
        // Only a refusal of the token ends the browser's session; an outage of auth leaves the
        // cookie for the next try.
        Err(status) if status.code() == tonic::Code::Unauthenticated => {
            Ok(signed_out(state.console, Problem::from(status)))
        }
        Err(status) => Err(status.into()),
    }
}

/// Ends the browser's session (or, with `everywhere`, every session of the user) and clears
/// both cookies.
#[utoipa::path(
    post,
    path = "/api/console/logout",
    operation_id = "console_logout",
    tag = "console",
    request_body = ConsoleLogout,
    params(
        ("x-csrf-token" = String, Header, description = "The `sankalpa_csrf` cookie's value"),
        ("sankalpa_refresh" = Option<String>, Cookie, description = "Set by `/api/console/session`"),
        ("sankalpa_csrf" = Option<String>, Cookie, description = "Set by `/api/console/session`"),
    ),
    responses(
        (status = 204, description = "Signed out (also when there was no session); both cookies cleared",
            headers(("set-cookie" = String, description = "Both cookies, cleared"))),
        (status = 400, description = "Invalid input", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`X-CSRF-Token` is missing or is not the `sankalpa_csrf` cookie, or `Origin` is another site", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn logout(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Body(body): Body<ConsoleLogout>,
) -> Result<Response, Problem> {
    guard(state.console, &headers)?;
    if let Some(refresh_token) = cookie(&headers, REFRESH_COOKIE) {
        let request = v1::LogoutRequest {
            refresh_token: refresh_token.to_owned(),
            everywhere: body.everywhere,
        };
        state.auth().logout(state.request(request)).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    clear_cookies(state.console, response.headers_mut());
    Ok(response)
}

/// The 200 of a sign-in or refresh: the access token, and both cookies set anew.
fn signed_in(settings: Settings, pair: v1::TokenPair) -> Result<Response, Problem> {
    let refresh = set_cookie(
        settings,
        REFRESH_COOKIE,
        &pair.refresh_token,
        pair.refresh_expires_in,
    )
    .ok_or_else(|| {
        tracing::error!("auth answered a refresh token that cannot be a cookie value");
        Problem::new(
            StatusCode::BAD_GATEWAY,
            "auth answered a token the gateway cannot use",
        )
    })?;
    let csrf = set_cookie(
        settings,
        CSRF_COOKIE,
        &csrf_token(),
        pair.refresh_expires_in,
    )
    .expect("a base64url token is a valid cookie value");
    let mut response = axum::Json(ConsoleToken {
        access_token: pair.access_token,
        token_type: pair.token_type,
        expires_in: pair.expires_in,
        user: pair.user.map(Rest::rest),
    })
    .into_response();
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, refresh);
    headers.append(header::SET_COOKIE, csrf);
    no_store(headers);
    Ok(response)
}

/// `problem`, with both cookies cleared: the browser's session is over.
fn signed_out(settings: Settings, problem: Problem) -> Response {
    let mut response = problem.into_response();
    clear_cookies(settings, response.headers_mut());
    response
}

fn clear_cookies(settings: Settings, headers: &mut HeaderMap) {
    for name in [REFRESH_COOKIE, CSRF_COOKIE] {
        headers.append(
            header::SET_COOKIE,
            set_cookie(settings, name, "", 0).expect("an empty cookie is a valid header value"),
        );
    }
    no_store(headers);
}

/// Answers that carry or end credentials are never kept by a cache.
fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// A `Set-Cookie` value, `None` when `value` holds what a cookie cannot (anything but
/// base64url, which every token here is). The refresh cookie is HttpOnly and sent to the
/// console's session routes only; the double-submit cookie is readable by the page, on every
/// path.
fn set_cookie(settings: Settings, name: &str, value: &str, max_age: u64) -> Option<HeaderValue> {
    let cookie_safe = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    if !value.bytes().all(cookie_safe) {
        return None;
    }
    let (http_only, path) = if name == REFRESH_COOKIE {
        ("; HttpOnly", REFRESH_PATH)
    } else {
        ("", "/")
    };
    let secure = if settings.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{name}={value}{http_only}; SameSite=Strict; Path={path}; Max-Age={max_age}{secure}"
    ))
    .ok()
}

/// 32 random bytes, base64url.
fn csrf_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The value of the cookie `name` the browser sent, if it sent one (the first, should it send
/// several).
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(key, value)| (key == name).then_some(value))
        .filter(|value| !value.is_empty())
}

/// 403 unless the request comes from the gateway's own pages: `Origin`, when sent, names this
/// host, and `X-CSRF-Token` matches the `sankalpa_csrf` cookie.
fn guard(settings: Settings, headers: &HeaderMap) -> Result<(), Problem> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let authority = origin
            .to_str()
            .ok()
            .and_then(|origin| origin.split_once("://"))
            .map(|(_, authority)| authority);
        let own = |name: &header::HeaderName| {
            headers
                .get(name)
                .and_then(|host| host.to_str().ok())
                .zip(authority)
                .is_some_and(|(host, authority)| host.eq_ignore_ascii_case(authority))
        };
        let forwarded = header::HeaderName::from_static("x-forwarded-host");
        if !(own(&header::HOST) || settings.trust_forwarded_host && own(&forwarded)) {
            return Err(forbidden(
                "origin",
                "a request from another site: only the gateway's own pages may use the session",
            ));
        }
    }
    let sent = headers.get(CSRF_HEADER).map(HeaderValue::as_bytes);
    let expected = cookie(headers, CSRF_COOKIE).map(str::as_bytes);
    match (sent, expected) {
        (Some(sent), Some(expected)) if same(sent, expected) => Ok(()),
        (None, _) => Err(forbidden(
            CSRF_HEADER,
            "missing: send the sankalpa_csrf cookie's value",
        )),
        _ => Err(forbidden(
            CSRF_HEADER,
            "does not match the sankalpa_csrf cookie",
        )),
    }
}

fn forbidden(field: &str, message: &str) -> Problem {
    let mut problem = Problem::new(StatusCode::FORBIDDEN, format!("{field}: {message}"));
    problem.errors.push(FieldViolation {
        field: field.to_owned(),
        message: message.to_owned(),
    });
    problem
}

/// Compares in time independent of where the two differ, so the token cannot be guessed a byte
/// at a time from response times.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn a_cookie_is_found_among_others_and_an_empty_one_is_none() {
        let sent = headers(&[("cookie", "a=1; sankalpa_csrf=tok; sankalpa_refresh=")]);
        assert_eq!(cookie(&sent, CSRF_COOKIE), Some("tok"));
        assert_eq!(cookie(&sent, REFRESH_COOKIE), None);
        assert_eq!(cookie(&sent, "b"), None);
    }

    #[test]
    fn the_origin_must_be_the_host_unless_a_trusted_proxy_says_otherwise() {
        let settings = Settings::default();
        let own = headers(&[
            ("host", "console.example:8080"),
            ("origin", "https://console.example:8080"),
            ("cookie", "sankalpa_csrf=t"),
            ("x-csrf-token", "t"),
        ]);
        assert!(guard(settings, &own).is_ok());
        let proxied = headers(&[
            ("host", "gateway:8080"),
            ("x-forwarded-host", "console.example"),
            ("origin", "https://console.example"),
            ("cookie", "sankalpa_csrf=t"),
            ("x-csrf-token", "t"),
        ]);
        let refused = guard(settings, &proxied).unwrap_err();
        assert_eq!(refused.errors[0].field, "origin");
        let trusting = Settings {
            trust_forwarded_host: true,
            ..settings
        };
        assert!(guard(trusting, &proxied).is_ok());
    }
}
