//! A credential that no longer holds stops working at once, on every route and on streams
//! already open: auth pushes each revocation to the gateway, which refuses the token from then
//! on and ends the streams it carries.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::{PASSWORD, Session, TestApp, problem, spawn_app_with_agents, unique_email};

async fn developer(app: &TestApp, admin: &Session) -> Session {
    let email = unique_email();
    let created = app
        .post_as(
            "/api/users",
            &admin.access_token,
            &json!({ "email": email, "password": PASSWORD, "roles": ["developer"] }),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    app.session(&email, PASSWORD).await
}

/// Every operation of the OpenAPI document that needs a credential, as (method, path) with
/// path parameters filled in.
async fn guarded_operations(app: &TestApp) -> Vec<(reqwest::Method, String)> {
    let document: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if operation.get("security").is_none() {
                continue;
            }
            let filled = path
                .split('/')
                .map(|part| {
                    if part.starts_with('{') {
                        "0190a8e2-0000-7000-8000-000000000000"
                    } else {
                        part
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            operations.push((method.to_uppercase().parse().unwrap(), filled));
        }
    }
    assert!(operations.len() > 30, "{operations:?}");
    operations
}

#[sqlx::test(migrations = false)]
async fn a_deleted_users_token_is_refused_within_a_second_and_their_stream_ends(pool: PgPool) {
    let app = spawn_app_with_agents(pool).await;
    let admin = app.admin().await;
    let bob = developer(&app, &admin).await;
    let mut stream = app
        .client
        .get(app.url("/api/events"))
        .bearer_auth(&bob.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let operations = guarded_operations(&app).await;

    let deleted = app
        .client
        .delete(app.url(&format!("/api/users/{}", bob.user_id)))
        .bearer_auth(&admin.access_token)
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success(), "{}", deleted.status());
    let at = Instant::now();

    // The push reaches the gateway and each service in its own moment: every route must refuse
    // within a second of the deletion, and say why.
    for (method, path) in operations {
        loop {
            let response = app
                .client
                .request(method.clone(), app.url(&path))
                .bearer_auth(&bob.access_token)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            if response.status() == StatusCode::UNAUTHORIZED {
                let refused = problem(response, StatusCode::UNAUTHORIZED).await;
                assert!(
                    refused["detail"].as_str().unwrap().contains("revoked"),
                    "{method} {path}: {refused}"
                );
                break;
            }
            assert!(
                at.elapsed() < Duration::from_secs(1),
                "{method} {path} still answers {}",
                response.status()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    // The stream already open says why and ends.
    let mut text = String::new();
    let ended = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(chunk) = stream.chunk().await.unwrap() {
            text.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream is still open: {text}");
    assert!(text.contains("event: error"), "{text}");
    assert!(text.contains("401"), "{text}");
}

#[sqlx::test(migrations = false)]
async fn a_websocket_of_a_logged_out_session_is_closed(pool: PgPool) {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;

    let app = spawn_app_with_agents(pool).await;
    let ada = app.admin().await;
    let url = format!(
        "{}/ws?access_token={}",
        app.address.replacen("http", "ws", 1),
        ada.access_token
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let logout = app
        .post(
            "/api/users/logout",
            &json!({ "refresh_token": ada.refresh_token }),
        )
        .await;
    assert!(logout.status().is_success());

    let mut frames = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(frame)) = socket.next().await {
            let close = matches!(frame, Message::Close(_));
            frames.push(frame);
            if close {
                return;
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the socket is still open: {frames:?}");
    let error = frames.iter().find_map(|frame| match frame {
        Message::Text(text) => serde_json::from_str::<Value>(text).ok(),
        _ => None,
    });
    assert_eq!(error.expect("an error frame")["error"]["status"], 401);
}
