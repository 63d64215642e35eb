//! What the gateway refuses before a service is asked: too many requests, too large or
//! malformed bodies; and what it does when Redis is gone.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::{PASSWORD, problem, spawn_app, spawn_app_with};

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|value| value.to_str().unwrap().to_owned())
}

#[sqlx::test(migrations = false)]
async fn requests_past_the_limit_get_429_with_retry_after(pool: PgPool) {
    let app = spawn_app_with(pool, |_, gateway| gateway.rate_limit.anonymous = 3).await;

    for remaining in ["2", "1", "0"] {
        let response = app.client.get(app.url("/api/status")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, "ratelimit-limit").as_deref(), Some("3"));
        assert_eq!(
            header(&response, "ratelimit-remaining").as_deref(),
            Some(remaining)
        );
    }
    let limited = app.client.get(app.url("/api/status")).send().await.unwrap();

    let retry_after: u64 = header(&limited, "retry-after").unwrap().parse().unwrap();
    assert!((1..=120).contains(&retry_after), "{retry_after}");
    assert_eq!(
        header(&limited, "ratelimit-remaining").as_deref(),
        Some("0")
    );
    assert!(header(&limited, "ratelimit-reset").is_some());
    problem(limited, StatusCode::TOO_MANY_REQUESTS).await;
}

/// The rate-limit counters this test's gateways keep in Redis, by key.
async fn shared_counts(redis_url: &str, prefix: &str) -> Vec<(String, u64)> {
    let client = redis::Client::open(redis_url).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}ratelimit:*"))
        .query_async(&mut redis)
        .await
        .unwrap();
    let mut counts = Vec::new();
    for key in keys {
        let count: u64 = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut redis)
            .await
            .unwrap();
        counts.push((key, count));
    }
    counts
}

/// A day: no test here lasts long enough to see two windows.
const LONG_WINDOW: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

#[sqlx::test(migrations = false)]
async fn a_caller_far_below_its_limit_is_counted_by_the_lease_not_by_the_request(pool: PgPool) {
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    let mut redis_url = String::new();
    let app = spawn_app_with(pool, |_, gateway| {
        gateway.redis_key_prefix = prefix.clone();
        gateway.rate_limit.window = LONG_WINDOW;
        gateway.rate_limit.anonymous = 1000;
        redis_url = gateway.infra.redis_url.clone();
    })
    .await;
    let status = || app.client.get(app.url("/api/status")).send();

    let first = status().await.unwrap();
    assert_eq!(
        header(&first, "ratelimit-remaining").as_deref(),
        Some("999")
    );
    let leased = shared_counts(&redis_url, &prefix).await;
    let [(key, lease)] = leased.as_slice() else {
        panic!("one counter, for the client's address: {leased:?}");
    };
    assert!(
        (2..=sankalpa_gateway::ratelimit::MAX_LEASE).contains(lease),
        "the first request leases a share of the limit: {lease}"
    );

    // The rest of the lease is spent without Redis counting anything more, one request at a
    // time as the headers tell.
    for remaining in (1000 - lease..999).rev() {
        let response = status().await.unwrap();
        assert_eq!(
            header(&response, "ratelimit-remaining"),
            Some(remaining.to_string())
        );
    }
    assert_eq!(
        shared_counts(&redis_url, &prefix).await,
        vec![(key.clone(), *lease)]
    );

    let next = status().await.unwrap();
    assert_eq!(
        header(&next, "ratelimit-remaining"),
        Some((999 - lease).to_string())
    );
    let [(_, counted)] = shared_counts(&redis_url, &prefix).await[..] else {
        panic!("still one counter");
    };
    assert!(
        counted > *lease,
        "a new lease once the first is spent: {counted}"
    );
}

#[sqlx::test(migrations = false)]
async fn gateways_sharing_a_caller_admit_exactly_its_limit_between_them(pool: PgPool) {
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    let mut second = None;
    let app = spawn_app_with(pool, |_, gateway| {
        gateway.redis_key_prefix = prefix.clone();
        gateway.rate_limit.window = LONG_WINDOW;
        gateway.rate_limit.anonymous = 40;
        second = Some(gateway.clone());
    })
    .await;
    let mut second = second.unwrap();
    second.auth_url = app.auth_url();
    let other = sankalpa_testkit::spawn_gateway(second.infra.clone(), |config| *config = second)
        .await
        .unwrap();
    let urls = [
        app.url("/api/status"),
        format!("{}/api/status", other.http_url()),
    ];

    let mut admitted = 0;
    for attempt in 0..60 {
        let response = app.client.get(&urls[attempt % 2]).send().await.unwrap();
        match response.status() {
            StatusCode::OK => admitted += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(
        admitted, 40,
        "leases of more than one request are all spent"
    );
}

#[sqlx::test(migrations = false)]
async fn login_attempts_have_a_stricter_bucket_of_their_own(pool: PgPool) {
    let app = spawn_app_with(pool, |_, gateway| gateway.rate_limit.login = 2).await;
    let credentials = json!({ "email": "nobody@example.com", "password": PASSWORD });

    for _ in 0..2 {
        let attempt = app.post("/api/users/login", &credentials).await;
        assert_eq!(attempt.status(), StatusCode::UNAUTHORIZED);
    }
    let limited = app.post("/api/users/login", &credentials).await;
    assert!(header(&limited, "retry-after").is_some());
    problem(limited, StatusCode::TOO_MANY_REQUESTS).await;

    let status = app.client.get(app.url("/api/status")).send().await.unwrap();
    assert_eq!(status.status(), StatusCode::OK);
}

#[sqlx::test(migrations = false)]
async fn signed_in_callers_are_counted_by_who_they_are_not_where_they_call_from(pool: PgPool) {
    let app = spawn_app_with(pool, |_, gateway| {
        gateway.rate_limit.anonymous = 1;
        gateway.rate_limit.authenticated = 10;
    })
    .await;
    let admin = app.admin().await;

    let anonymous = app.client.get(app.url("/api/status")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::OK);
    problem(
        app.client.get(app.url("/api/status")).send().await.unwrap(),
        StatusCode::TOO_MANY_REQUESTS,
    )
    .await;
    for _ in 0..5 {
        let me = app.get_as("/api/users/me", &admin.access_token).await;
        assert_eq!(me.status(), StatusCode::OK);
        assert_eq!(header(&me, "ratelimit-limit").as_deref(), Some("10"));
    }
}

#[sqlx::test(migrations = false)]
async fn logins_are_counted_per_account_whatever_address_they_come_from(pool: PgPool) {
    let app = spawn_app_with(pool, |_, gateway| {
        gateway.rate_limit.login = 100;
        gateway.rate_limit.login_account = 3;
        // As if each attempt came from another address.
        gateway.trust_forwarded_for = true;
    })
    .await;
    let ada = app.admin().await;
    let attempt = |email: String, address: usize| {
        app.client
            .post(app.url("/api/users/login"))
            .header("x-forwarded-for", format!("203.0.113.{address}"))
            .json(&json!({ "email": email, "password": "not the password" }))
            .send()
    };
    // The admin's own sign-in was the first of three.
    for address in 0..2 {
        let wrong = attempt(ada.email.clone(), address).await.unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    }
    let limited = attempt(ada.email.to_uppercase(), 9).await.unwrap();
    assert_eq!(header(&limited, "ratelimit-limit").as_deref(), Some("3"));
    assert!(header(&limited, "retry-after").is_some());
    problem(limited, StatusCode::TOO_MANY_REQUESTS).await;

    // Another account is not held up.
    let other = attempt("someone-else@example.com".to_owned(), 9)
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::UNAUTHORIZED);
}

#[sqlx::test(migrations = false)]
async fn without_redis_sign_in_is_refused_rather_than_left_unlimited(pool: PgPool) {
    let app = spawn_app_with(pool, |_, gateway| {
        gateway.infra.redis_url = "redis://127.0.0.1:1".to_owned();
    })
    .await;
    let credentials = json!({ "email": "nobody@example.com", "password": PASSWORD });
    for route in ["/api/users/login", "/api/users/register"] {
        let refused = app.post(route, &credentials).await;
        assert_eq!(header(&refused, "retry-after").as_deref(), Some("1"));
        problem(refused, StatusCode::SERVICE_UNAVAILABLE).await;
    }
}

#[sqlx::test(migrations = false)]
async fn without_redis_requests_go_through_and_are_counted(pool: PgPool) {
    let app = spawn_app_with(pool, |_, gateway| {
        gateway.infra.redis_url = "redis://127.0.0.1:1".to_owned();
        gateway.rate_limit.anonymous = 1;
    })
    .await;

    for _ in 0..3 {
        let response = app.client.get(app.url("/api/status")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(header(&response, "ratelimit-limit").is_none());
    }
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("gateway_rate_limit_bypassed_total"),
        "{metrics}"
    );
}

#[sqlx::test(migrations = false)]
async fn an_oversized_body_gets_413_problem(pool: PgPool) {
    let app = spawn_app(pool).await;
    let padding = "x".repeat(2 * 1024 * 1024);

    let response = app
        .post(
            "/api/users/register",
            &json!({ "email": "big@example.com", "password": padding }),
        )
        .await;

    problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;
}

#[sqlx::test(migrations = false)]
async fn malformed_json_gets_400_problem_naming_the_problem(pool: PgPool) {
    let app = spawn_app(pool).await;
    let send = |body: &'static str| {
        app.client
            .post(app.url("/api/users/login"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    let broken = problem(
        send(r#"{"email": "a@example.com", "password": "#)
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(
        broken["detail"].as_str().unwrap().contains("line 1 column"),
        "{broken}"
    );

    let incomplete: Value = problem(
        send(r#"{"email": "a@example.com"}"#).await.unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(
        incomplete["detail"].as_str().unwrap().contains("password"),
        "{incomplete}"
    );
}

#[sqlx::test(migrations = false)]
async fn a_bad_query_or_method_gets_a_problem_too(pool: PgPool) {
    let app = spawn_app(pool).await;
    let admin = app.admin().await;

    let bad_query = app
        .get_as("/api/users?page_size=lots", &admin.access_token)
        .await;
    let body = problem(bad_query, StatusCode::BAD_REQUEST).await;
    assert!(
        body["detail"].as_str().unwrap().contains("page_size"),
        "{body}"
    );

    let wrong_method = app.client.put(app.url("/api/status")).send().await.unwrap();
    assert_eq!(header(&wrong_method, "allow").as_deref(), Some("GET,HEAD"));
    problem(wrong_method, StatusCode::METHOD_NOT_ALLOWED).await;
}
