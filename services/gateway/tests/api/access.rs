//! Who may do what: roles, API keys, and the wall between tenants.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::{
    PASSWORD, Session, TestApp, problem, spawn_app, spawn_app_with, text, unique_email,
};

#[sqlx::test(migrations = false)]
async fn a_viewer_calling_an_admin_route_gets_403(pool: PgPool) {
    let app = spawn_app(pool).await;
    let admin = app.admin().await;
    let viewer = new_viewer(&app, &admin).await;

    assert_eq!(
        app.get_as("/api/users/me", &viewer.access_token)
            .await
            .status(),
        StatusCode::OK
    );
    let body = problem(
        app.get_as("/api/users", &viewer.access_token).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(text(&body["detail"]).contains("users:admin"), "{body}");
}

#[sqlx::test(migrations = false)]
async fn a_second_tenants_admin_cannot_see_the_first_tenants_users(pool: PgPool) {
    let app = spawn_app(pool).await;
    let first = app.admin().await;
    let second = app.admin().await;
    assert_ne!(first.tenant_id, second.tenant_id);

    let own = app
        .get_as(
            &format!("/api/users/{}", first.user_id),
            &first.access_token,
        )
        .await;
    assert_eq!(own.status(), StatusCode::OK);

    problem(
        app.get_as(
            &format!("/api/users/{}", first.user_id),
            &second.access_token,
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let listed: Value = app
        .get_as("/api/users", &second.access_token)
        .await
        .json()
        .await
        .unwrap();
    let emails: Vec<&str> = listed["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|user| user["email"].as_str())
        .collect();
    assert_eq!(emails, vec![second.email.as_str()]);
}

#[sqlx::test(migrations = false)]
async fn an_api_key_authenticates_until_it_is_revoked(pool: PgPool) {
    let app = spawn_app(pool).await;
    let admin = app.admin().await;
    let created = app
        .client
        .post(app.url("/api/keys"))
        .bearer_auth(&admin.access_token)
        .json(&json!({ "name": "ci", "permissions": ["users:admin"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    let secret = text(&created["secret"]);
    let key_id = text(&created["key"]["id"]);
    assert!(secret.starts_with("sk_"));
    assert!(secret.starts_with(&text(&created["key"]["prefix"])));
    let with_key = || {
        app.client
            .get(app.url("/api/users"))
            .header("x-api-key", &secret)
            .send()
    };

    let listed = with_key().await.unwrap();
    assert_eq!(listed.status(), StatusCode::OK);
    let listed: Value = listed.json().await.unwrap();
    assert_eq!(listed["users"][0]["email"], admin.email);
    let keys: Value = app
        .get_as("/api/keys", &admin.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(keys["keys"][0]["id"], key_id.as_str());
    assert!(
        keys.to_string().find(&secret).is_none(),
        "the secret is shown once"
    );

    let revoked = app
        .client
        .delete(app.url(&format!("/api/keys/{key_id}")))
        .bearer_auth(&admin.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);

    // The gateway trusts an exchanged key for a few seconds, but auth's push of the revocation
    // ends that within moments.
    let revoked_at = std::time::Instant::now();
    let refused = loop {
        let response = with_key().await.unwrap();
        if response.status() != StatusCode::OK {
            break response;
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "still accepted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    problem(refused, StatusCode::UNAUTHORIZED).await;
}

#[sqlx::test(migrations = false)]
async fn the_principal_is_the_user_of_a_token_or_the_api_key_with_what_it_may_do(pool: PgPool) {
    let app = spawn_app(pool).await;
    let admin = app.admin().await;
    let user: Value = app
        .get_as("/api/principal", &admin.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(user["kind"], "user");
    assert_eq!(user["id"], admin.user_id.as_str());
    assert_eq!(user["tenant_id"], admin.tenant_id.as_str());
    assert_eq!(user["roles"], json!(["admin"]));
    assert_eq!(user["permissions"], json!(["*:*"]));

    let created: Value = app
        .client
        .post(app.url("/api/keys"))
        .bearer_auth(&admin.access_token)
        .json(&json!({ "name": "ci", "permissions": ["agents:read", "agents:execute"] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keyed = app
        .client
        .get(app.url("/api/principal"))
        .header("x-api-key", text(&created["secret"]))
        .send()
        .await
        .unwrap();
    assert_eq!(keyed.status(), StatusCode::OK);
    let key: Value = keyed.json().await.unwrap();
    assert_eq!(key["kind"], "api_key");
    assert_eq!(key["id"], created["key"]["id"]);
    assert_eq!(key["tenant_id"], admin.tenant_id.as_str());
    assert_eq!(key["roles"], json!([]));
    assert_eq!(key["permissions"], json!(["agents:execute", "agents:read"]));

    problem(
        app.client
            .get(app.url("/api/principal"))
            .send()
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
    )
    .await;
}

#[sqlx::test(migrations = false)]
async fn only_admins_manage_api_keys(pool: PgPool) {
    let app = spawn_app(pool).await;
    let admin = app.admin().await;
    let viewer = new_viewer(&app, &admin).await;
    let created = app
        .post_as(
            "/api/keys",
            &viewer.access_token,
            &json!({ "name": "mine" }),
        )
        .await;
    let listed = app.get_as("/api/keys", &viewer.access_token).await;
    for refused in [created, listed] {
        let body = problem(refused, StatusCode::FORBIDDEN).await;
        assert!(
            body["detail"].as_str().unwrap().contains("keys:admin"),
            "{body}"
        );
    }
}

#[sqlx::test(migrations = false)]
async fn a_made_up_api_key_is_rejected(pool: PgPool) {
    let app = spawn_app(pool).await;

    let response = app
        .client
        .get(app.url("/api/users/me"))
        .header("x-api-key", "sk_not_a_real_key")
        .send()
        .await
        .unwrap();

    problem(response, StatusCode::UNAUTHORIZED).await;
}

/// A viewer made by `admin`, signed in.
async fn new_viewer(app: &TestApp, admin: &Session) -> Session {
    let email = unique_email();
    let created = app
        .client
        .post(app.url("/api/users"))
        .bearer_auth(&admin.access_token)
        .json(&json!({ "email": email, "password": PASSWORD, "roles": ["viewer"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    app.session(&email, PASSWORD).await
}

async fn me(app: &TestApp, token: &str) -> Value {
    let response = app.get_as("/api/users/me", token).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[sqlx::test(migrations = false)]
async fn a_role_change_ends_the_old_token_and_the_next_one_carries_the_new_roles(pool: PgPool) {
    let app = spawn_app(pool).await;
    let admin = app.admin().await;
    let viewer = new_viewer(&app, &admin).await;
    assert_eq!(
        me(&app, &viewer.access_token).await["roles"],
        json!(["viewer"])
    );

    let changed = app
        .client
        .put(app.url(&format!("/api/users/{}/roles", viewer.user_id)))
        .bearer_auth(&admin.access_token)
        .json(&json!({ "roles": ["developer"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);

    // The old token carried the viewer's permissions: it is refused now, not just re-labelled.
    let old = app.get_as("/api/users/me", &viewer.access_token).await;
    problem(old, StatusCode::UNAUTHORIZED).await;
    let refreshed: Value = app
        .client
        .post(app.url("/api/users/refresh"))
        .json(&json!({ "refresh_token": viewer.refresh_token }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = text(&refreshed["access_token"]);
    assert_eq!(me(&app, &token).await["roles"], json!(["developer"]));
}

#[sqlx::test(migrations = false)]
async fn me_answers_from_what_auth_said_until_the_profile_cache_expires(pool: PgPool) {
    let ttl = Duration::from_millis(800);
    let app = spawn_app_with(pool.clone(), |_, gateway| gateway.profile_cache = ttl).await;
    let admin = app.admin().await;
    let viewer = new_viewer(&app, &admin).await;
    let before = me(&app, &viewer.access_token).await;
    let started = std::time::Instant::now();

    // A change auth's callers other than this gateway could make.
    sqlx::query("UPDATE auth.users SET display_name = 'Renamed' WHERE id = $1::uuid")
        .bind(&viewer.user_id)
        .execute(&pool)
        .await
        .unwrap();
    let cached = me(&app, &viewer.access_token).await;
    if started.elapsed() < ttl {
        assert_eq!(cached["display_name"], before["display_name"]);
    }

    tokio::time::sleep(ttl).await;
    assert_eq!(
        me(&app, &viewer.access_token).await["display_name"],
        "Renamed"
    );
}
