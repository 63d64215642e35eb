//! Access tokens that must not pass: expired, altered, meant for someone else, or forged by
//! signing with the public key as an HMAC secret.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::{problem, spawn_app, spawn_app_with, text};

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// Signs `claims` with auth's current key, read from its table: a token auth could have issued.
async fn sign_as_auth(pool: &PgPool, claims: &Value) -> String {
    let (kid, private_der): (String, Vec<u8>) = sqlx::query_as(
        "SELECT kid, private_key FROM auth.signing_keys
         WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(&private_der)).unwrap()
}

#[sqlx::test(migrations = false)]
async fn an_expired_token_is_rejected(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let admin = app.admin().await;
    let now = chrono::Utc::now().timestamp();
    let mut claims = claims_of(&admin.access_token);
    claims["iat"] = json!(now - 120);
    claims["exp"] = json!(now + 60);
    let live = sign_as_auth(&pool, &claims).await;
    assert_eq!(
        app.get_as("/api/users/me", &live).await.status(),
        StatusCode::OK,
        "the re-signed token is one auth could have issued"
    );

    // Past the verifier's five seconds of clock leeway.
    claims["exp"] = json!(now - 6);
    let expired = sign_as_auth(&pool, &claims).await;
    let body = problem(
        app.get_as("/api/users/me", &expired).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(body["detail"], "the token is expired");
}

#[sqlx::test(migrations = false)]
async fn a_token_with_altered_claims_is_rejected(pool: PgPool) {
    let app = spawn_app(pool).await;
    let admin = app.admin().await;
    let mut parts: Vec<String> = admin.access_token.split('.').map(str::to_owned).collect();
    let mut claims = claims_of(&admin.access_token);
    claims["tid"] = json!(uuid::Uuid::new_v4().to_string());
    claims["perms"] = json!(["*:*"]);
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    let tampered = parts.join(".");

    problem(
        app.get_as("/api/users/me", &tampered).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
}

#[sqlx::test(migrations = false)]
async fn a_token_issued_for_another_audience_is_rejected(pool: PgPool) {
    let app = spawn_app_with(pool, |_, gateway| {
        gateway.infra.token_audience = "another-platform".to_owned();
    })
    .await;
    let admin = app.admin().await;

    problem(
        app.get_as("/api/users/me", &admin.access_token).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
}

#[sqlx::test(migrations = false)]
async fn a_token_forged_with_hs256_and_the_public_key_is_rejected(pool: PgPool) {
    let app = spawn_app(pool).await;
    let admin = app.admin().await;
    let jwks: Value = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let public_key = text(&jwks["keys"][0]["x"]);
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(text(&jwks["keys"][0]["kid"]));
    let forged = jsonwebtoken::encode(
        &header,
        &claims_of(&admin.access_token),
        &EncodingKey::from_secret(public_key.as_bytes()),
    )
    .unwrap();

    let body = problem(
        app.get_as("/api/users/me", &forged).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert!(text(&body["detail"]).contains("HS256"), "{body}");
}
