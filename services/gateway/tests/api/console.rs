//! The web console's session routes: the refresh token in an HttpOnly cookie, the routes that
//! use it guarded by a double-submit token and the request's `Origin`.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::{PASSWORD, TestApp, problem, spawn_app, spawn_app_with, unique_email};

/// The browser's side of a console session: the two cookies the gateway set.
#[derive(Debug, Clone)]
struct Browser {
    refresh: String,
    csrf: String,
    access_token: String,
}

/// Every `Set-Cookie` of `response`, by cookie name: (value, attributes as sent).
fn set_cookies(response: &reqwest::Response) -> Vec<(String, String, String)> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| {
            let value = value.to_str().unwrap().to_owned();
            let (pair, attributes) = value.split_once(';').unwrap_or((&value, ""));
            let (name, cookie) = pair.split_once('=').unwrap();
            (
                name.to_owned(),
                cookie.to_owned(),
                attributes.trim().to_owned(),
            )
        })
        .collect()
}

fn cookie_named(response: &reqwest::Response, name: &str) -> (String, String) {
    let found: Vec<_> = set_cookies(response)
        .into_iter()
        .filter(|(cookie, _, _)| cookie == name)
        .collect();
    assert_eq!(found.len(), 1, "one {name} cookie: {found:?}");
    let (_, value, attributes) = found.into_iter().next().unwrap();
    (value, attributes)
}

async fn register(app: &TestApp) -> String {
    let email = unique_email();
    let registered = app
        .post(
            "/api/users/register",
            &json!({ "email": email, "password": PASSWORD }),
        )
        .await;
    assert_eq!(registered.status(), StatusCode::CREATED);
    email
}

async fn sign_in(app: &TestApp, email: &str) -> Browser {
    let response = app
        .post(
            "/api/console/session",
            &json!({ "email": email, "password": PASSWORD }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    browser(response).await
}

async fn browser(response: reqwest::Response) -> Browser {
    let (refresh, _) = cookie_named(&response, "sankalpa_refresh");
    let (csrf, _) = cookie_named(&response, "sankalpa_csrf");
    let body: Value = response.json().await.unwrap();
    Browser {
        refresh,
        csrf,
        access_token: body["access_token"].as_str().unwrap().to_owned(),
    }
}

/// A POST to a console route as a page of the gateway sends it: both cookies, the CSRF header
/// given (`None` leaves it out) and `Origin` when given.
async fn console_post(
    app: &TestApp,
    path: &str,
    browser: &Browser,
    csrf_header: Option<&str>,
    origin: Option<&str>,
    body: Option<&Value>,
) -> reqwest::Response {
    let mut request = app.client.post(app.url(path)).header(
        "cookie",
        format!(
            "sankalpa_refresh={}; sankalpa_csrf={}",
            browser.refresh, browser.csrf
        ),
    );
    if let Some(token) = csrf_header {
        request = request.header("x-csrf-token", token);
    }
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.expect("the gateway answers")
}

async fn refresh(app: &TestApp, browser: &Browser) -> reqwest::Response {
    console_post(
        app,
        "/api/console/refresh",
        browser,
        Some(&browser.csrf),
        None,
        None,
    )
    .await
}

async fn logout(app: &TestApp, browser: &Browser, everywhere: bool) -> reqwest::Response {
    console_post(
        app,
        "/api/console/logout",
        browser,
        Some(&browser.csrf),
        None,
        Some(&json!({ "everywhere": everywhere })),
    )
    .await
}

fn assert_cleared(response: &reqwest::Response) {
    for name in ["sankalpa_refresh", "sankalpa_csrf"] {
        let (value, attributes) = cookie_named(response, name);
        assert_eq!(value, "", "{name} is emptied");
        assert!(attributes.contains("Max-Age=0"), "{name}: {attributes}");
    }
}

/// Waits for `token` to be refused by the gateway: a revocation reaches it over NATS.
async fn refused_soon(app: &TestApp, token: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = app.get_as("/api/users/me", token).await.status();
        if status == StatusCode::UNAUTHORIZED {
            return;
        }
        assert!(Instant::now() < deadline, "the token still works: {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[sqlx::test(migrations = false)]
async fn a_console_session_sets_an_httponly_refresh_cookie_and_a_readable_csrf_cookie(
    pool: PgPool,
) {
    let app = spawn_app(pool).await;
    let email = register(&app).await;

    let response = app
        .post(
            "/api/console/session",
            &json!({ "email": email, "password": PASSWORD }),
        )
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let (refresh, attributes) = cookie_named(&response, "sankalpa_refresh");
    assert!(refresh.starts_with("rt_"), "{refresh}");
    assert_eq!(
        attributes,
        "HttpOnly; SameSite=Strict; Path=/api/console; Max-Age=2592000"
    );
    let (csrf, attributes) = cookie_named(&response, "sankalpa_csrf");
    assert_eq!(csrf.len(), 43, "32 bytes in base64url: {csrf}");
    assert!(
        csrf.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    assert_eq!(attributes, "SameSite=Strict; Path=/; Max-Age=2592000");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_u64().unwrap() > 0);
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert_eq!(body["user"]["email"], email);
    let me = app
        .get_as("/api/users/me", body["access_token"].as_str().unwrap())
        .await;
    assert_eq!(me.status(), StatusCode::OK);
}

#[sqlx::test(migrations = false)]
async fn console_cookies_are_secure_when_configured_so(pool: PgPool) {
    let app = spawn_app_with(pool, |_, gateway| gateway.console_secure_cookies = true).await;
    let email = register(&app).await;

    let response = app
        .post(
            "/api/console/session",
            &json!({ "email": email, "password": PASSWORD }),
        )
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    for name in ["sankalpa_refresh", "sankalpa_csrf"] {
        let (_, attributes) = cookie_named(&response, name);
        assert!(attributes.ends_with("; Secure"), "{name}: {attributes}");
    }
}

#[sqlx::test(migrations = false)]
async fn a_console_session_is_refused_like_a_login_for_a_bad_password_or_another_tenant(
    pool: PgPool,
) {
    let app = spawn_app(pool).await;
    let email = register(&app).await;
    let other = app.admin().await;

    let wrong_password = app
        .post(
            "/api/console/session",
            &json!({ "email": email, "password": "not the password" }),
        )
        .await;
    assert!(set_cookies(&wrong_password).is_empty());
    let wrong_password = problem(wrong_password, StatusCode::UNAUTHORIZED).await;
    let other_tenant = app
        .post(
            "/api/console/session",
            &json!({ "email": email, "password": PASSWORD, "tenant_id": other.tenant_id }),
        )
        .await;
    assert!(set_cookies(&other_tenant).is_empty());
    let other_tenant = problem(other_tenant, StatusCode::UNAUTHORIZED).await;
    assert_eq!(wrong_password, other_tenant);
    assert_eq!(wrong_password["detail"], "invalid email or password");

    let not_a_uuid = app
        .post(
            "/api/console/session",
            &json!({ "email": email, "password": PASSWORD, "tenant_id": "nope" }),
        )
        .await;
    let not_a_uuid = problem(not_a_uuid, StatusCode::BAD_REQUEST).await;
    assert_eq!(not_a_uuid["errors"][0]["field"], "tenant_id");

    let own = sign_in(&app, &email).await;
    let me: Value = app
        .get_as("/api/users/me", &own.access_token)
        .await
        .json()
        .await
        .unwrap();
    let with_own_tenant = app
        .post(
            "/api/console/session",
            &json!({ "email": email, "password": PASSWORD, "tenant_id": me["tenant_id"] }),
        )
        .await;
    assert_eq!(with_own_tenant.status(), StatusCode::OK);
}

#[sqlx::test(migrations = false)]
async fn a_refresh_without_the_csrf_token_or_with_a_wrong_one_is_403_and_changes_nothing(
    pool: PgPool,
) {
    let app = spawn_app(pool).await;
    let email = register(&app).await;
    let browser = sign_in(&app, &email).await;

    let missing = console_post(&app, "/api/console/refresh", &browser, None, None, None).await;
    assert!(set_cookies(&missing).is_empty());
    let missing = problem(missing, StatusCode::FORBIDDEN).await;
    assert_eq!(missing["errors"][0]["field"], "x-csrf-token");
    let wrong = console_post(
        &app,
        "/api/console/refresh",
        &browser,
        Some("not-the-cookie"),
        None,
        None,
    )
    .await;
    assert!(set_cookies(&wrong).is_empty());
    let wrong = problem(wrong, StatusCode::FORBIDDEN).await;
    assert_eq!(wrong["errors"][0]["field"], "x-csrf-token");
    let logout_without = console_post(
        &app,
        "/api/console/logout",
        &browser,
        None,
        None,
        Some(&json!({})),
    )
    .await;
    problem(logout_without, StatusCode::FORBIDDEN).await;

    // The refresh token was neither rotated nor revoked: it still works, once.
    let refreshed = refresh(&app, &browser).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
}

#[sqlx::test(migrations = false)]
async fn a_console_refresh_rotates_the_cookie_and_the_old_one_is_refused(pool: PgPool) {
    let app = spawn_app(pool).await;
    let email = register(&app).await;
    let first = sign_in(&app, &email).await;

    let refreshed = refresh(&app, &first).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let second = browser(refreshed).await;
    assert_ne!(second.refresh, first.refresh);
    assert_ne!(second.csrf, first.csrf);
    assert_eq!(
        app.get_as("/api/users/me", &second.access_token)
            .await
            .status(),
        StatusCode::OK
    );

    let reused = refresh(&app, &first).await;
    assert_cleared(&reused);
    problem(reused, StatusCode::UNAUTHORIZED).await;
    // A reused token means a copy is loose: the login ends, the rotated cookie with it.
    let after_reuse = refresh(&app, &second).await;
    assert_cleared(&after_reuse);
    problem(after_reuse, StatusCode::UNAUTHORIZED).await;

    let no_cookie = app
        .client
        .post(app.url("/api/console/refresh"))
        .header("cookie", "sankalpa_csrf=abc")
        .header("x-csrf-token", "abc")
        .send()
        .await
        .unwrap();
    assert_cleared(&no_cookie);
    problem(no_cookie, StatusCode::UNAUTHORIZED).await;
}

#[sqlx::test(migrations = false)]
async fn a_console_logout_revokes_the_session_and_clears_both_cookies(pool: PgPool) {
    let app = spawn_app(pool).await;
    let email = register(&app).await;
    let browser = sign_in(&app, &email).await;
    let elsewhere = sign_in(&app, &email).await;

    let logged_out = logout(&app, &browser, false).await;

    assert_eq!(logged_out.status(), StatusCode::NO_CONTENT);
    assert_cleared(&logged_out);
    problem(refresh(&app, &browser).await, StatusCode::UNAUTHORIZED).await;
    refused_soon(&app, &browser.access_token).await;
    // Only that session ended.
    assert_eq!(refresh(&app, &elsewhere).await.status(), StatusCode::OK);
}

#[sqlx::test(migrations = false)]
async fn a_console_logout_everywhere_ends_every_session_of_the_user_and_no_other(pool: PgPool) {
    let app = spawn_app(pool).await;
    let email = register(&app).await;
    let browser = sign_in(&app, &email).await;
    let other_browser = sign_in(&app, &email).await;
    let cli = app.session(&email, PASSWORD).await;
    let someone_else = sign_in(&app, &register(&app).await).await;

    let logged_out = logout(&app, &browser, true).await;

    assert_eq!(logged_out.status(), StatusCode::NO_CONTENT);
    assert_cleared(&logged_out);
    let other = refresh(&app, &other_browser).await;
    assert_cleared(&other);
    problem(other, StatusCode::UNAUTHORIZED).await;
    let cli_refresh = app
        .post(
            "/api/users/refresh",
            &json!({ "refresh_token": cli.refresh_token }),
        )
        .await;
    problem(cli_refresh, StatusCode::UNAUTHORIZED).await;
    refused_soon(&app, &other_browser.access_token).await;
    refused_soon(&app, &cli.access_token).await;
    assert_eq!(refresh(&app, &someone_else).await.status(), StatusCode::OK);

    let again = sign_in(&app, &email).await;
    let audit: Value = app
        .get_as("/api/audit", &again.access_token)
        .await
        .json()
        .await
        .unwrap();
    let ended = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["action"] == "logout.everywhere")
        .unwrap_or_else(|| panic!("audited: {audit:#}"));
    assert_eq!(ended["details"]["refresh_tokens_revoked"], 3);
}

#[sqlx::test(migrations = false)]
async fn a_rotated_refresh_cookie_cannot_sign_its_user_out_everywhere(pool: PgPool) {
    let app = spawn_app(pool).await;
    let email = register(&app).await;
    let stale = sign_in(&app, &email).await;
    let current = browser(refresh(&app, &stale).await).await;
    let elsewhere = sign_in(&app, &email).await;

    // An old copy of the cookie (with a CSRF token the page could read) asks to end everything.
    let logged_out = logout(&app, &stale, true).await;

    assert_eq!(logged_out.status(), StatusCode::NO_CONTENT);
    assert_eq!(refresh(&app, &elsewhere).await.status(), StatusCode::OK);
    assert_eq!(
        app.get_as("/api/users/me", &current.access_token)
            .await
            .status(),
        StatusCode::OK
    );
}

#[sqlx::test(migrations = false)]
async fn a_request_from_another_origin_is_refused_and_the_gateways_own_is_not(pool: PgPool) {
    let app = spawn_app(pool).await;
    let email = register(&app).await;
    let browser = sign_in(&app, &email).await;

    let cross_site = console_post(
        &app,
        "/api/console/refresh",
        &browser,
        Some(&browser.csrf),
        Some("https://evil.example"),
        None,
    )
    .await;
    assert!(set_cookies(&cross_site).is_empty());
    let cross_site = problem(cross_site, StatusCode::FORBIDDEN).await;
    assert_eq!(cross_site["errors"][0]["field"], "origin");
    let cross_logout = console_post(
        &app,
        "/api/console/logout",
        &browser,
        Some(&browser.csrf),
        Some("null"),
        Some(&json!({ "everywhere": true })),
    )
    .await;
    problem(cross_logout, StatusCode::FORBIDDEN).await;

    let own = console_post(
        &app,
        "/api/console/refresh",
        &browser,
        Some(&browser.csrf),
        Some(&app.address),
        None,
    )
    .await;
    assert_eq!(own.status(), StatusCode::OK);
}
