//! Registering, signing in, refreshing and signing out through REST.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::{PASSWORD, problem, spawn_app, unique_email};

#[sqlx::test(migrations = false)]
async fn a_registered_user_can_log_in_and_see_itself(pool: PgPool) {
    let app = spawn_app(pool).await;
    let email = unique_email();

    let registered = app
        .post(
            "/api/users/register",
            &json!({ "email": email, "password": PASSWORD, "display_name": "Ada" }),
        )
        .await;
    assert_eq!(registered.status(), StatusCode::CREATED);
    let registered: Value = registered.json().await.unwrap();
    assert_eq!(registered["user"]["email"], email);
    assert_eq!(registered["user"]["roles"], json!(["admin"]));
    assert_eq!(registered["tenant"]["id"], registered["user"]["tenant_id"]);
    let created_at = registered["user"]["created_at"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(created_at).is_ok());

    let login = app.login(&email, PASSWORD).await;
    assert_eq!(login.status(), StatusCode::OK);
    let pair: Value = login.json().await.unwrap();
    assert_eq!(pair["token_type"], "Bearer");
    assert!(pair["expires_in"].as_u64().unwrap() > 0);

    let me = app
        .get_as("/api/users/me", pair["access_token"].as_str().unwrap())
        .await;
    assert_eq!(me.status(), StatusCode::OK);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["email"], email);
    assert_eq!(me["id"], registered["user"]["id"]);
}

#[sqlx::test(migrations = false)]
async fn a_wrong_password_and_an_unknown_email_get_the_same_401(pool: PgPool) {
    let app = spawn_app(pool).await;
    let admin = app.admin().await;

    let wrong_password = problem(
        app.login(&admin.email, "not the password").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let unknown_email = problem(
        app.login(&unique_email(), PASSWORD).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;

    assert_eq!(wrong_password, unknown_email);
    assert_eq!(wrong_password["detail"], "invalid email or password");
}

#[sqlx::test(migrations = false)]
async fn registering_with_an_invalid_email_names_the_field(pool: PgPool) {
    let app = spawn_app(pool).await;

    let response = app
        .post(
            "/api/users/register",
            &json!({ "email": "not-an-email", "password": PASSWORD }),
        )
        .await;

    let body = problem(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(body["errors"][0]["field"], "email");
}

#[sqlx::test(migrations = false)]
async fn registering_with_a_nul_in_a_name_names_the_field_and_makes_nothing(pool: PgPool) {
    let app = spawn_app(pool).await;

    for field in ["tenant_name", "display_name"] {
        let email = format!("nul-{field}@example.com");
        let response = app
            .post(
                "/api/users/register",
                &json!({ "email": email, "password": PASSWORD, field: "Analytical\u{0}Engines" }),
            )
            .await;
        let body = problem(response, StatusCode::BAD_REQUEST).await;
        assert_eq!(body["errors"][0]["field"], field, "{body}");
        // Nothing was made: the same email registers once the name is fixed.
        let fixed = app
            .post(
                "/api/users/register",
                &json!({ "email": email, "password": PASSWORD, field: "Analytical Engines" }),
            )
            .await;
        assert_eq!(fixed.status(), StatusCode::CREATED, "{field}");
    }
}

#[sqlx::test(migrations = false)]
async fn a_refresh_token_works_once_and_its_reuse_revokes_the_family(pool: PgPool) {
    let app = spawn_app(pool).await;
    let admin = app.admin().await;
    let app = &app;
    let refresh = |token: &str| {
        let body = json!({ "refresh_token": token });
        async move { app.post("/api/users/refresh", &body).await }
    };

    let rotated = refresh(&admin.refresh_token).await;
    assert_eq!(rotated.status(), StatusCode::OK);
    let rotated: Value = rotated.json().await.unwrap();
    let successor = rotated["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(successor, admin.refresh_token);
    let me = app
        .get_as("/api/users/me", rotated["access_token"].as_str().unwrap())
        .await;
    assert_eq!(me.status(), StatusCode::OK);

    problem(
        refresh(&admin.refresh_token).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    // The reuse above means the token was stolen: its successor dies with it.
    problem(refresh(&successor).await, StatusCode::UNAUTHORIZED).await;
}

#[sqlx::test(migrations = false)]
async fn a_logged_out_refresh_token_no_longer_refreshes(pool: PgPool) {
    let app = spawn_app(pool).await;
    let admin = app.admin().await;

    let logout = app
        .post(
            "/api/users/logout",
            &json!({ "refresh_token": admin.refresh_token }),
        )
        .await;
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);

    let refresh = app
        .post(
            "/api/users/refresh",
            &json!({ "refresh_token": admin.refresh_token }),
        )
        .await;
    problem(refresh, StatusCode::UNAUTHORIZED).await;
}
