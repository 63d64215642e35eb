//! Another tenant's endpoint is not found on every route, and left as it was; bad input is a
//! 400 naming the field, and changes nothing.

use axum::http::StatusCode;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::{App, Receiver, call, create_endpoint};

#[sqlx::test(migrations = false)]
async fn another_tenants_endpoint_is_not_found_on_every_route(pool: PgPool) {
    let app = App::start(pool).await;
    let (owner, stranger) = (app.tenant().await, app.tenant().await);
    let base = app.fleet.gateway.http_url();
    let receiver = Receiver::start().await;
    let (endpoint, _) = create_endpoint(&app.http, &base, &owner, &receiver.url(), &["*"]).await;
    let (_, test) = call(
        &app.http,
        Method::POST,
        &app.url(&format!("/api/webhooks/endpoints/{endpoint}/test")),
        &owner,
        None,
    )
    .await;
    let delivery = test["id"].as_str().unwrap();
    let (_, before) = call(
        &app.http,
        Method::GET,
        &app.url(&format!("/api/webhooks/endpoints/{endpoint}")),
        &owner,
        None,
    )
    .await;

    let path = format!("/api/webhooks/endpoints/{endpoint}");
    let routes: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, path.clone(), None),
        (
            Method::PATCH,
            path.clone(),
            Some(json!({ "enabled": false, "url": "https://example.com/x" })),
        ),
        (Method::DELETE, path.clone(), None),
        (
            Method::POST,
            format!("{path}/rotate-secret"),
            Some(json!({ "overlap_seconds": 0 })),
        ),
        (Method::GET, format!("{path}/deliveries"), None),
        (Method::GET, format!("{path}/deliveries/{delivery}"), None),
        (
            Method::POST,
            format!("{path}/replay"),
            Some(json!({ "delivery_id": delivery })),
        ),
        (
            Method::POST,
            format!("{path}/replay"),
            Some(json!({ "since": "2020-01-01T00:00:00Z" })),
        ),
        (Method::POST, format!("{path}/test"), None),
    ];
    for (method, route, body) in routes {
        let (status, problem) = call(
            &app.http,
            method.clone(),
            &app.url(&route),
            &stranger,
            body.as_ref(),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {route}: {problem}");
    }
    let (_, listed) = call(
        &app.http,
        Method::GET,
        &app.url("/api/webhooks/endpoints"),
        &stranger,
        None,
    )
    .await;
    assert_eq!(listed["endpoints"], json!([]));

    let (status, after) = call(
        &app.http,
        Method::GET,
        &app.url(&format!("/api/webhooks/endpoints/{endpoint}")),
        &owner,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(after, before, "the stranger changed nothing");
}

#[sqlx::test(migrations = false)]
async fn bad_input_is_refused_naming_the_field(pool: PgPool) {
    let app = App::start(pool).await;
    let token = app.tenant().await;
    let base = app.fleet.gateway.http_url();
    let receiver = Receiver::start().await;
    let endpoints = app.url("/api/webhooks/endpoints");
    let url = receiver.url();

    let creations = [
        (json!({ "url": "not a url", "event_types": ["*"] }), "url"),
        (
            json!({ "url": "ftp://example.com/", "event_types": ["*"] }),
            "url",
        ),
        (json!({ "url": url, "event_types": [] }), "event_types"),
        (
            json!({ "url": url, "event_types": ["*", "chains..x"] }),
            "event_types[1]",
        ),
        (
            json!({ "url": url, "event_types": ["a.>.b"] }),
            "event_types[0]",
        ),
        (
            json!({ "url": url, "event_types": ["*"], "description": "x".repeat(501) }),
            "description",
        ),
    ];
    for (body, field) in creations {
        let (status, problem) =
            call(&app.http, Method::POST, &endpoints, &token, Some(&body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{body}: {problem}");
    }
    let (_, listed) = call(&app.http, Method::GET, &endpoints, &token, None).await;
    assert_eq!(listed["endpoints"], json!([]), "nothing was registered");

    let (endpoint, _) = create_endpoint(&app.http, &base, &token, &url, &["*"]).await;
    let path = format!("{endpoints}/{endpoint}");
    let (_, before) = call(&app.http, Method::GET, &path, &token, None).await;
    let refusals: Vec<(Method, String, Option<Value>, &str)> = vec![
        (Method::GET, format!("{endpoints}/not-a-uuid"), None, "id"),
        (
            Method::PATCH,
            path.clone(),
            Some(json!({ "event_types": ["ok", ""] })),
            "event_types[1]",
        ),
        (
            Method::PATCH,
            path.clone(),
            Some(json!({ "url": "https://10.1.1.1/" })),
            "url",
        ),
        (
            Method::POST,
            format!("{path}/rotate-secret"),
            Some(json!({ "overlap_seconds": 604801 })),
            "overlap_seconds",
        ),
        (
            Method::GET,
            format!("{path}/deliveries?page_size=500"),
            None,
            "page_size",
        ),
        (
            Method::GET,
            format!("{path}/deliveries?page_token=abc"),
            None,
            "page_token",
        ),
        (
            Method::GET,
            format!("{path}/deliveries/nope"),
            None,
            "delivery_id",
        ),
        (
            Method::POST,
            format!("{path}/replay"),
            Some(json!({})),
            "delivery_id",
        ),
        (
            Method::POST,
            format!("{path}/replay"),
            Some(json!({ "delivery_id": "nope" })),
            "delivery_id",
        ),
    ];
    for (method, route, body, field) in refusals {
        let (status, problem) =
            call(&app.http, method.clone(), &route, &token, body.as_ref()).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{method} {route}: {problem}"
        );
        assert_eq!(
            problem["errors"][0]["field"], field,
            "{method} {route}: {problem}"
        );
    }
    let (_, after) = call(&app.http, Method::GET, &path, &token, None).await;
    assert_eq!(after, before, "refused changes changed nothing");
}
