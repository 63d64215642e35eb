//! `/api/chains/settings`: how long a tenant's finished runs are kept, read by anyone who reads
//! chains, changed by a tenant admin, and never another tenant's.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::{TestApp, problem, spawn_app_with_agents};

async fn put_settings(app: &TestApp, token: &str, body: &Value) -> reqwest::Response {
    app.client
        .put(app.url("/api/chains/settings"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("the gateway answers")
}

async fn retention_of(app: &TestApp, token: &str) -> Value {
    let response = app.get_as("/api/chains/settings", token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let settings: Value = response.json().await.unwrap();
    settings["retention_days"].clone()
}

#[sqlx::test(migrations = false)]
async fn the_chain_settings_round_trip_and_are_the_callers_tenants_own(pool: PgPool) {
    let app = spawn_app_with_agents(pool).await;
    let admin = app.admin().await;
    let defaults: Value = app
        .get_as("/api/chains/settings", &admin.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(defaults["retention_days"], 30, "{defaults}");
    assert_eq!(defaults["is_default"], true);

    let changed = put_settings(&app, &admin.access_token, &json!({"retention_days": 7})).await;
    assert_eq!(changed.status(), StatusCode::OK);
    let changed: Value = changed.json().await.unwrap();
    assert_eq!(changed["retention_days"], 7);
    assert_eq!(changed["is_default"], false);
    assert_eq!(changed["updated_by"], admin.user_id.as_str());
    assert_eq!(retention_of(&app, &admin.access_token).await, 7);

    // The tenant is the token's: another tenant's admin reads and changes only its own.
    let other = app.admin().await;
    assert_eq!(retention_of(&app, &other.access_token).await, 30);
    let others = put_settings(&app, &other.access_token, &json!({"retention_days": 0})).await;
    assert_eq!(others.status(), StatusCode::OK);
    assert_eq!(retention_of(&app, &other.access_token).await, 0);
    assert_eq!(retention_of(&app, &admin.access_token).await, 7);
}

#[sqlx::test(migrations = false)]
async fn a_retention_out_of_range_is_a_400_naming_retention_days(pool: PgPool) {
    let app = spawn_app_with_agents(pool).await;
    let admin = app.admin().await;
    for days in [json!(3651), json!(-1)] {
        let refused =
            put_settings(&app, &admin.access_token, &json!({"retention_days": days})).await;
        let body = problem(refused, StatusCode::BAD_REQUEST).await;
        assert_eq!(body["errors"][0]["field"], "retention_days", "{body}");
    }
    assert_eq!(
        retention_of(&app, &admin.access_token).await,
        30,
        "unchanged"
    );
}

#[sqlx::test(migrations = false)]
async fn a_viewer_reads_the_chain_settings_but_may_not_change_them(pool: PgPool) {
    let app = spawn_app_with_agents(pool).await;
    let admin = app.admin().await;
    let viewer = app.viewer(&admin).await;
    assert_eq!(retention_of(&app, &viewer.access_token).await, 30);
    let refused = put_settings(&app, &viewer.access_token, &json!({"retention_days": 1})).await;
    problem(refused, StatusCode::FORBIDDEN).await;
    assert_eq!(
        retention_of(&app, &admin.access_token).await,
        30,
        "unchanged"
    );
}
