//! Schedules through the gateway against the real fleet: per-second ticks fired once each by
//! two triggers replicas, pause and resume, the overlap policies, bad input, tenants, and the
//! schedule's API key revoked with it.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::Method;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::{App, call};

/// A chain whose run waits for an approval: it stays unfinished until approved.
const WAITING_CHAIN: &str = r#"{"name": "waits", "definition": {"steps": [
    {"id": "gate", "approval": {"prompt": "go?", "approvers": ["role:admin"]}}
]}}"#;

impl App {
    async fn create_schedule(&self, token: &str, body: Value) -> Value {
        let (status, schedule) = call(
            &self.http,
            Method::POST,
            &self.url("/api/schedules"),
            token,
            Some(&body),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{schedule}");
        schedule
    }

    async fn patch_schedule(&self, token: &str, id: &str, body: Value) -> Value {
        let (status, schedule) = call(
            &self.http,
            Method::PATCH,
            &self.url(&format!("/api/schedules/{id}")),
            token,
            Some(&body),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{schedule}");
        schedule
    }

    /// The runs of the tenant whose idempotency key is a tick of `schedule`: (key, run).
    async fn schedule_runs(&self, token: &str, schedule: &str) -> Vec<(String, Value)> {
        let (status, list) = call(
            &self.http,
            Method::GET,
            &self.url("/api/chains/runs?page_size=100"),
            token,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{list}");
        let prefix = format!("schedule:{schedule}:");
        list["runs"]
            .as_array()
            .expect("runs")
            .iter()
            .filter_map(|run| {
                let key = run["idempotency_key"].as_str()?;
                key.starts_with(&prefix)
                    .then(|| (key.to_owned(), run.clone()))
            })
            .collect()
    }

    /// A stored chain of the tenant that waits for an approval: its id.
    async fn waiting_chain(&self, token: &str) -> String {
        let definition: Value = serde_json::from_str(WAITING_CHAIN).expect("JSON");
        let (status, chain) = call(
            &self.http,
            Method::POST,
            &self.url("/api/chains"),
            token,
            Some(&definition),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{chain}");
        chain["id"].as_str().expect("an id").to_owned()
    }
}

/// The total of `triggers_schedule_ticks_total{outcome="<outcome>"}` in a metrics text.
fn ticks(metrics: &str, outcome: &str) -> u64 {
    let series = format!("triggers_schedule_ticks_total{{outcome=\"{outcome}\"}}");
    metrics
        .lines()
        .filter_map(|line| line.strip_prefix(&series))
        .filter_map(|value| value.trim().parse::<f64>().ok())
        .map(|value| value as u64)
        .sum()
}

#[sqlx::test(migrations = false)]
async fn each_tick_of_a_per_second_schedule_starts_one_run_across_two_replicas(pool: PgPool) {
    let app = App::start(pool.clone()).await;
    // A second triggers replica on the same database, as in a deployment of two.
    let second = sankalpa_testkit::spawn_triggers(
        pool,
        app.infra.clone(),
        &app.fleet.auth.grpc_url(),
        |config| config.chains_url = app.fleet.orchestrator.grpc_url(),
    )
    .await
    .expect("a second replica starts");
    let token = app.tenant().await;
    let schedule = app
        .create_schedule(
            &token,
            json!({"cron": "* * * * * *", "template": "hello-sequence", "input": {"name": "tick"}}),
        )
        .await;
    let id = schedule["id"].as_str().expect("an id");
    let next = schedule["next"].as_array().expect("next fire times");
    assert_eq!(next.len(), 5, "{schedule}");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let paused = app
        .patch_schedule(&token, id, json!({"paused": true}))
        .await;
    assert_eq!(paused["paused"], true);
    assert_eq!(paused["next"], json!([]));
    // A tick being fired when the pause came finishes its transaction first.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let runs = app.schedule_runs(&token, id).await;
    let keys: BTreeSet<&str> = runs.iter().map(|(key, _)| key.as_str()).collect();
    assert!(runs.len() >= 3, "a tick a second for 5 s: {keys:?}");
    assert_eq!(keys.len(), runs.len(), "one run per tick: {keys:?}");
    // Consecutive seconds: no tick was lost between the replicas.
    let ticks_at: Vec<chrono::DateTime<chrono::Utc>> = keys
        .iter()
        .map(|key| {
            key.rsplit_once(&format!("{id}:"))
                .and_then(|(_, at)| at.parse().ok())
                .expect("the key ends with the tick's RFC 3339 time")
        })
        .collect();
    for pair in ticks_at.windows(2) {
        assert_eq!((pair[1] - pair[0]).num_seconds(), 1, "{ticks_at:?}");
    }
    // Each tick was fired by one replica only: the fired ticks counted by the two (sharing this
    // process's metrics) are the runs, not more.
    let metrics = app
        .fleet
        .triggers
        .as_ref()
        .expect("triggers")
        .metrics()
        .await;
    assert_eq!(ticks(&metrics, "fired"), runs.len() as u64, "{metrics}");
    // Paused: nothing more starts.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(app.schedule_runs(&token, id).await.len(), runs.len());
    drop(second);
}

#[sqlx::test(migrations = false)]
async fn a_paused_schedule_fires_nothing_until_resumed(pool: PgPool) {
    let app = App::start(pool).await;
    let token = app.tenant().await;
    let schedule = app
        .create_schedule(
            &token,
            json!({"cron": "* * * * * *", "template": "hello-sequence", "paused": true}),
        )
        .await;
    let id = schedule["id"].as_str().expect("an id");
    assert_eq!(schedule["next"], json!([]), "{schedule}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(app.schedule_runs(&token, id).await.is_empty());

    let resumed = app
        .patch_schedule(&token, id, json!({"paused": false}))
        .await;
    assert_eq!(
        resumed["next"].as_array().map(Vec::len),
        Some(5),
        "{resumed}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    app.patch_schedule(&token, id, json!({"paused": true}))
        .await;
    let runs = app.schedule_runs(&token, id).await;
    assert!(!runs.is_empty(), "resumed, it fires");
    let (status, shown) = call(
        &app.http,
        Method::GET,
        &app.url(&format!("/api/schedules/{id}")),
        &token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(shown["last_run_id"].is_string(), "{shown}");
    assert!(shown["last_tick_at"].is_string(), "{shown}");
}

#[sqlx::test(migrations = false)]
async fn overlap_skip_starts_no_run_while_the_last_is_unfinished(pool: PgPool) {
    let app = App::start(pool).await;
    let token = app.tenant().await;
    let chain = app.waiting_chain(&token).await;
    let skipping = app
        .create_schedule(
            &token,
            json!({"cron": "* * * * * *", "chain_id": chain, "overlap": "skip"}),
        )
        .await;
    let allowing = app
        .create_schedule(
            &token,
            json!({"cron": "* * * * * *", "chain_id": chain, "overlap": "allow"}),
        )
        .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    for schedule in [&skipping, &allowing] {
        let id = schedule["id"].as_str().expect("an id");
        app.patch_schedule(&token, id, json!({"paused": true}))
            .await;
    }
    let skipping_id = skipping["id"].as_str().expect("an id");
    let skipped_runs = app.schedule_runs(&token, skipping_id).await;
    assert_eq!(
        skipped_runs.len(),
        1,
        "the first run waits: {skipped_runs:?}"
    );
    let (_, shown) = call(
        &app.http,
        Method::GET,
        &app.url(&format!("/api/schedules/{skipping_id}")),
        &token,
        None,
    )
    .await;
    assert!(
        shown["last_error"]
            .as_str()
            .is_some_and(|why| why.contains("skipped")),
        "{shown}"
    );
    let allowed = app
        .schedule_runs(&token, allowing["id"].as_str().expect("an id"))
        .await;
    assert!(
        allowed.len() >= 3,
        "allow starts a run every tick: {allowed:?}"
    );
    let metrics = app
        .fleet
        .triggers
        .as_ref()
        .expect("triggers")
        .metrics()
        .await;
    assert!(ticks(&metrics, "skipped") >= 2, "{metrics}");
}

#[sqlx::test(migrations = false)]
async fn overlap_buffer_one_fires_a_waiting_tick_once_the_run_finishes(pool: PgPool) {
    let app = App::start(pool).await;
    let token = app.tenant().await;
    let chain = app.waiting_chain(&token).await;
    let schedule = app
        .create_schedule(
            &token,
            json!({"interval_seconds": 1, "chain_id": chain, "overlap": "buffer_one"}),
        )
        .await;
    let id = schedule["id"].as_str().expect("an id");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let runs = app.schedule_runs(&token, id).await;
    assert_eq!(runs.len(), 1, "later ticks wait: {runs:?}");
    let first = runs[0].1["id"].as_str().expect("a run id").to_owned();
    // Stop new ticks from coming; the one buffered stays.
    let (status, approved) = call(
        &app.http,
        Method::POST,
        &app.url(&format!("/api/chains/runs/{first}/steps/gate/approve")),
        &token,
        Some(&json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let runs = app.schedule_runs(&token, id).await;
        if runs.len() >= 2 {
            // The buffered tick is older than the approval: it was kept, not a new tick.
            let second = runs
                .iter()
                .find(|(_, run)| run["id"] != first.as_str())
                .expect("a second run");
            let tick: chrono::DateTime<chrono::Utc> = second
                .0
                .rsplit_once(&format!("{id}:"))
                .and_then(|(_, at)| at.parse().ok())
                .expect("a tick time");
            let created: chrono::DateTime<chrono::Utc> = second.1["created_at"]
                .as_str()
                .and_then(|at| at.parse().ok())
                .expect("a creation time");
            assert!(tick < created, "{tick} {created}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the buffered tick never fired"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.patch_schedule(&token, id, json!({"paused": true}))
        .await;
}

#[sqlx::test(migrations = false)]
async fn bad_input_is_refused_naming_the_field(pool: PgPool) {
    let app = App::start(pool).await;
    let token = app.tenant().await;
    let refusals = [
        (
            json!({"cron": "61 * * * *", "template": "hello-sequence"}),
            "cron",
        ),
        (
            json!({"cron": "* * *", "template": "hello-sequence"}),
            "cron",
        ),
        (
            json!({"cron": "0 9 * * *", "time_zone": "Mars/Olympus", "template": "hello-sequence"}),
            "time_zone",
        ),
        (json!({"template": "hello-sequence"}), "cron"),
        (
            json!({"cron": "* * * * *", "interval_seconds": 5, "template": "hello-sequence"}),
            "interval_seconds",
        ),
        (json!({"interval_seconds": 5}), "chain_id"),
        (
            json!({"interval_seconds": 5, "chain_id": "nope"}),
            "chain_id",
        ),
        (
            json!({"interval_seconds": 5, "template": "hello-sequence", "input": [1]}),
            "input",
        ),
        (
            json!({"interval_seconds": 5, "template": "hello-sequence", "input": {"a": "\0"}}),
            "input",
        ),
        (
            json!({"interval_seconds": 5, "template": "hello-sequence", "jitter_seconds": 3601}),
            "jitter_seconds",
        ),
        (
            json!({"interval_seconds": 5, "template": "hello-sequence", "catch_up": "all", "catch_up_window_seconds": 604801}),
            "catch_up_window_seconds",
        ),
    ];
    for (body, field) in refusals {
        let (status, problem) = call(
            &app.http,
            Method::POST,
            &app.url("/api/schedules"),
            &token,
            Some(&body),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{body}: {problem}");
    }
    // Nothing was stored, and no key made.
    let (_, list) = call(
        &app.http,
        Method::GET,
        &app.url("/api/schedules"),
        &token,
        None,
    )
    .await;
    assert_eq!(list["schedules"], json!([]), "{list}");
    let (_, keys) = call(&app.http, Method::GET, &app.url("/api/keys"), &token, None).await;
    assert!(
        !keys.to_string().contains("\"schedule\""),
        "no schedule key: {keys}"
    );
    let schedule = app
        .create_schedule(
            &token,
            json!({"interval_seconds": 60, "template": "hello-sequence"}),
        )
        .await;
    let id = schedule["id"].as_str().expect("an id");
    let (status, problem) = call(
        &app.http,
        Method::PATCH,
        &app.url(&format!("/api/schedules/{id}")),
        &token,
        Some(&json!({"cron": "0 0 30 2 *"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "cron", "{problem}");
}

#[sqlx::test(migrations = false)]
async fn another_tenants_schedule_is_not_found(pool: PgPool) {
    let app = App::start(pool).await;
    let owner = app.tenant().await;
    let stranger = app.tenant().await;
    let schedule = app
        .create_schedule(
            &owner,
            json!({"cron": "0 9 * * 1-5", "time_zone": "Europe/Paris", "template": "hello-sequence"}),
        )
        .await;
    assert_eq!(schedule["time_zone"], "Europe/Paris");
    let id = schedule["id"].as_str().expect("an id");
    let path = app.url(&format!("/api/schedules/{id}"));
    for (method, body) in [
        (Method::GET, None),
        (Method::PATCH, Some(json!({"paused": true}))),
        (Method::PATCH, Some(json!({"renew_credential": true}))),
        (Method::DELETE, None),
    ] {
        let (status, problem) =
            call(&app.http, method.clone(), &path, &stranger, body.as_ref()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method}: {problem}");
    }
    let (_, list) = call(
        &app.http,
        Method::GET,
        &app.url("/api/schedules"),
        &stranger,
        None,
    )
    .await;
    assert_eq!(list["schedules"], json!([]), "{list}");
    // The owner's is untouched.
    let (status, shown) = call(&app.http, Method::GET, &path, &owner, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["paused"], false, "{shown}");
    // A new expression alone is read in the zone the schedule had: 10:00 in Paris is 09:00 UTC
    // in winter, 08:00 in summer.
    let changed = app
        .patch_schedule(&owner, id, json!({"cron": "0 10 * * *"}))
        .await;
    assert_eq!(changed["time_zone"], "Europe/Paris", "{changed}");
    let next = changed["next"].as_array().expect("next fire times");
    assert_eq!(next.len(), 5, "{changed}");
    for at in next {
        let at = at.as_str().expect("a time");
        assert!(
            at.ends_with("T09:00:00Z") || at.ends_with("T08:00:00Z"),
            "{changed}"
        );
    }
}

/// The tenant's schedule keys: (id, revoked).
async fn schedule_keys(app: &App, token: &str) -> Vec<(String, bool)> {
    let (status, keys) = call(&app.http, Method::GET, &app.url("/api/keys"), token, None).await;
    assert_eq!(status, StatusCode::OK, "{keys}");
    keys["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter(|key| key["purpose"] == "schedule")
        .map(|key| {
            (
                key["id"].as_str().expect("an id").to_owned(),
                !key["revoked_at"].is_null(),
            )
        })
        .collect()
}

#[sqlx::test(migrations = false)]
async fn deleting_a_schedule_revokes_its_key(pool: PgPool) {
    let app = App::start(pool).await;
    let token = app.tenant().await;
    let schedule = app
        .create_schedule(
            &token,
            json!({"interval_seconds": 3600, "template": "hello-sequence"}),
        )
        .await;
    let id = schedule["id"].as_str().expect("an id");
    assert!(schedule["credential_expires_at"].is_string(), "{schedule}");
    let keys = schedule_keys(&app, &token).await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(!keys[0].1, "live while the schedule is");

    // Renewing replaces the key and revokes the old one.
    let renewed = app
        .patch_schedule(&token, id, json!({"renew_credential": true}))
        .await;
    assert!(renewed["credential_expires_at"].is_string());
    let keys = schedule_keys(&app, &token).await;
    assert_eq!(
        keys.iter().filter(|(_, revoked)| !revoked).count(),
        1,
        "{keys:?}"
    );
    assert_eq!(
        keys.iter().filter(|(_, revoked)| *revoked).count(),
        1,
        "{keys:?}"
    );

    let (status, _) = call(
        &app.http,
        Method::DELETE,
        &app.url(&format!("/api/schedules/{id}")),
        &token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let keys = schedule_keys(&app, &token).await;
    assert!(keys.iter().all(|(_, revoked)| *revoked), "{keys:?}");
    let (status, _) = call(
        &app.http,
        Method::GET,
        &app.url(&format!("/api/schedules/{id}")),
        &token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Replicas "were down" for five hours: the schedule's next tick is put back that far, as a
/// replica that stopped then would have left it.
async fn missed_five_hours(pool: &PgPool, id: &str) {
    sqlx::query(
        "UPDATE triggers.schedules
         SET paused = false, due_at = now(),
             next_tick_at = date_trunc('hour', now()) - interval '5 hours'
         WHERE id = $1::uuid",
    )
    .bind(id)
    .execute(pool)
    .await
    .expect("the schedule is put back");
}

#[sqlx::test(migrations = false)]
async fn missed_ticks_fire_late_as_the_catch_up_policy_says(pool: PgPool) {
    let app = App::start(pool.clone()).await;
    let token = app.tenant().await;
    let mut ids = Vec::new();
    for (catch_up, window) in [("none", 0), ("last", 0), ("all", 6 * 3600)] {
        let schedule = app
            .create_schedule(
                &token,
                json!({"cron": "0 0 * * * *", "template": "hello-sequence", "paused": true,
                       "catch_up": catch_up, "catch_up_window_seconds": window,
                       "overlap": "allow"}),
            )
            .await;
        let id = schedule["id"].as_str().expect("an id").to_owned();
        missed_five_hours(&pool, &id).await;
        ids.push(id);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let now = chrono::Utc::now();
    let mut ticks_of = Vec::new();
    for id in &ids {
        app.patch_schedule(&token, id, json!({"paused": true}))
            .await;
        let ticks: BTreeSet<chrono::DateTime<chrono::Utc>> = app
            .schedule_runs(&token, id)
            .await
            .iter()
            .map(|(key, _)| {
                key.rsplit_once(&format!("{id}:"))
                    .and_then(|(_, at)| at.parse().ok())
                    .expect("a tick time")
            })
            .collect();
        ticks_of.push(ticks);
    }
    // none: only a tick less than a minute late (the top of this hour, in its first minute).
    assert!(
        ticks_of[0]
            .iter()
            .all(|tick| now - *tick < chrono::Duration::minutes(1)),
        "{:?}",
        ticks_of[0]
    );
    // last: the latest tick, however late.
    assert_eq!(ticks_of[1].len(), 1, "{:?}", ticks_of[1]);
    // all: every hour of the five, and this one.
    assert!((5..=6).contains(&ticks_of[2].len()), "{:?}", ticks_of[2]);
    assert_eq!(ticks_of[2].last(), ticks_of[1].last());
}
