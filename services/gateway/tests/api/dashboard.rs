//! The dashboard's series: sampled from the fleet's own `/metrics`, for the platform's
//! operators only.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use sankalpa_auth::BootstrapAdmin;
use serde_json::Value;
use sqlx::PgPool;

use crate::helpers::{TestApp, problem, spawn_app_with, spawn_fleet_with};

const OPERATOR: &str = "operator@example.com";
const OPERATOR_PASSWORD: &str = "operator password";

fn with_operator(config: &mut sankalpa_auth::Config) {
    config.bootstrap_admin = Some(BootstrapAdmin {
        email: OPERATOR.into(),
        password: OPERATOR_PASSWORD.into(),
        tenant_name: "platform".into(),
    });
}

/// The series named `name` whose labels include every pair of `labels`.
fn find<'a>(answer: &'a Value, name: &str, labels: &[(&str, &str)]) -> Option<&'a Value> {
    answer["series"].as_array()?.iter().find(|series| {
        series["name"] == name
            && labels
                .iter()
                .all(|(label, value)| series["labels"][label] == *value)
    })
}

/// Whether `series` has a point over 0.
fn positive(series: Option<&Value>) -> bool {
    series
        .and_then(|series| series["points"].as_array())
        .is_some_and(|points| {
            points
                .iter()
                .any(|point| point[1].as_f64().unwrap_or(0.0) > 0.0)
        })
}

async fn series(app: &TestApp, token: &str, range: &str) -> reqwest::Response {
    app.get_as(&format!("/api/dashboard/series?range={range}"), token)
        .await
}

#[sqlx::test(migrations = false)]
async fn the_series_hold_a_called_routes_request_rate_and_every_services_memory(pool: PgPool) {
    let app = spawn_fleet_with(pool, false, with_operator, |gateway, ops| {
        gateway.dashboard_sample = Duration::from_secs(1);
        gateway.dashboard_targets = ops
            .iter()
            .map(|(name, url)| ((*name).to_owned(), url.clone()))
            .collect();
    })
    .await;
    let operator = app.session(OPERATOR, OPERATOR_PASSWORD).await;
    let services = [
        "gateway",
        "auth",
        "memory",
        "agent-runner",
        "chain-orchestrator",
    ];

    let deadline = Instant::now() + Duration::from_secs(20);
    let answer = loop {
        for _ in 0..5 {
            let agents = app.get_as("/api/agents", &operator.access_token).await;
            assert_eq!(agents.status(), StatusCode::OK);
        }
        let response = series(&app, &operator.access_token, "1m").await;
        assert_eq!(response.status(), StatusCode::OK);
        let answer: Value = response.json().await.unwrap();
        let called = positive(find(
            &answer,
            "http_request_rate",
            &[("method", "GET"), ("route", "/api/agents")],
        ));
        let memory = services.iter().all(|service| {
            positive(find(
                &answer,
                "process_resident_memory_bytes",
                &[("service", service)],
            ))
        });
        if called && memory {
            break answer;
        }
        assert!(Instant::now() < deadline, "no such series yet: {answer:#}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };

    assert_eq!(answer["step_ms"], 1000);
    let rate = find(
        &answer,
        "http_request_rate",
        &[("method", "GET"), ("route", "/api/agents")],
    )
    .unwrap();
    assert_eq!(rate["unit"], "requests/s");
    let points = rate["points"].as_array().unwrap();
    assert!(points.len() <= 61, "{} points", points.len());
    let times: Vec<i64> = points
        .iter()
        .map(|point| point[0].as_i64().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|pair| pair[1] - pair[0] == 1000),
        "{times:?}"
    );
    let rss = find(
        &answer,
        "process_resident_memory_bytes",
        &[("service", "memory")],
    )
    .unwrap();
    assert_eq!(rss["unit"], "bytes");
    for name in [
        "http_request_duration_p50",
        "http_request_duration_p99",
        "http_error_ratio",
    ] {
        let derived = find(&answer, name, &[("route", "/api/agents")])
            .unwrap_or_else(|| panic!("{name} of the route: {answer:#}"));
        assert!(
            derived["points"]
                .as_array()
                .unwrap()
                .iter()
                .any(|point| point[1].is_number()),
            "{derived}"
        );
    }
    let errors = find(&answer, "http_error_ratio", &[("route", "/api/agents")]).unwrap();
    assert!(!positive(Some(errors)), "no call failed: {errors}");
    assert!(find(&answer, "process_cpu_usage", &[("service", "gateway")]).is_some());
    // An idle route was never called: it has no rate above 0.
    assert!(!positive(find(
        &answer,
        "http_request_rate",
        &[("method", "DELETE"), ("route", "/api/users/{id}")],
    )));
}

#[sqlx::test(migrations = false)]
async fn the_series_need_fleet_read_and_a_range_from_a_minute_to_an_hour(pool: PgPool) {
    let app = spawn_app_with(pool, |auth, _| with_operator(auth)).await;
    let operator = app.session(OPERATOR, OPERATOR_PASSWORD).await;
    let viewer = app.viewer(&operator).await;
    let tenant_admin = app.admin().await;

    for token in [&viewer.access_token, &tenant_admin.access_token] {
        let refused = problem(series(&app, token, "15m").await, StatusCode::FORBIDDEN).await;
        assert!(
            refused["detail"].as_str().unwrap().contains("fleet:read"),
            "{refused}"
        );
    }
    for bad in ["2h", "30s", "fortnight", "15"] {
        let refused = problem(
            series(&app, &operator.access_token, bad).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(refused["errors"][0]["field"], "range", "{bad}");
    }
    let anonymous = app
        .client
        .get(app.url("/api/dashboard/series"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let default_range = app
        .get_as("/api/dashboard/series", &operator.access_token)
        .await;
    assert_eq!(default_range.status(), StatusCode::OK);
    let answer: Value = default_range.json().await.unwrap();
    assert_eq!(answer["step_ms"], 5000);
}

/// A Prometheus server of this test's own (Debian's `prometheus`), scraping `targets` (job,
/// `host:port`) every second into a folder removed when it is dropped.
struct Prometheus {
    url: String,
    child: tokio::process::Child,
    folder: PathBuf,
}

impl Prometheus {
    /// `None` when the binary is not installed.
    async fn start(port: u16, targets: &[(&str, String)]) -> Option<Self> {
        let binary = ["prometheus", "/usr/bin/prometheus"]
            .into_iter()
            .find(|name| {
                std::process::Command::new(name)
                    .arg("--version")
                    .output()
                    .is_ok()
            })?;
        let folder = std::env::temp_dir().join(format!(
            "sankalpa-prometheus-{}",
            sankalpa_testkit::unique_name()
        ));
        std::fs::create_dir_all(&folder).unwrap();
        let jobs: String = targets
            .iter()
            .map(|(job, address)| {
                format!(
                    "  - job_name: {job}\n    static_configs:\n      - targets: ['{address}']\n"
                )
            })
            .collect();
        let config = folder.join("prometheus.yml");
        std::fs::write(
            &config,
            format!("global:\n  scrape_interval: 1s\nscrape_configs:\n{jobs}"),
        )
        .unwrap();
        let child = tokio::process::Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                folder.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("prometheus starts");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = reqwest::get(format!("{url}/-/ready")).await;
            if ready.is_ok_and(|response| response.status().is_success()) {
                break;
            }
            assert!(Instant::now() < deadline, "prometheus did not get ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Some(Self { url, child, folder })
    }
}

impl Prometheus {
    /// Kills the server and waits until it is gone.
    async fn stop(mut self) {
        self.child.kill().await.expect("prometheus can be killed");
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

#[sqlx::test(migrations = false)]
async fn the_series_come_from_prometheus_when_one_is_configured(pool: PgPool) {
    let port = sankalpa_testkit::process::free_port();
    let app = spawn_app_with(pool, |auth, gateway| {
        with_operator(auth);
        gateway.dashboard_sample = Duration::from_secs(1);
        gateway.prometheus_url = Some(format!("http://127.0.0.1:{port}"));
    })
    .await;
    let address = |url: String| url.trim_start_matches("http://").to_owned();
    let Some(prometheus) = Prometheus::start(
        port,
        &[
            ("gateway", address(app.address.clone())),
            ("auth", address(app.auth_ops_url())),
        ],
    )
    .await
    else {
        sankalpa_testkit::missing_tool("prometheus is not installed (make setup installs it)");
        return;
    };
    let operator = app.session(OPERATOR, OPERATOR_PASSWORD).await;

    let deadline = Instant::now() + Duration::from_secs(30);
    let answer = loop {
        for _ in 0..5 {
            let me = app.get_as("/api/users/me", &operator.access_token).await;
            assert_eq!(me.status(), StatusCode::OK);
        }
        let response = series(&app, &operator.access_token, "1m").await;
        assert_eq!(response.status(), StatusCode::OK);
        let answer: Value = response.json().await.unwrap();
        let called = positive(find(
            &answer,
            "http_request_rate",
            &[("method", "GET"), ("route", "/api/users/me")],
        ));
        let memory = positive(find(
            &answer,
            "process_resident_memory_bytes",
            &[("service", "auth")],
        ));
        if called && memory {
            break answer;
        }
        assert!(
            Instant::now() < deadline,
            "no such series from {}: {answer:#}",
            prometheus.url
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    assert_eq!(answer["step_ms"], 1000);
    let rate = find(
        &answer,
        "http_request_rate",
        &[("method", "GET"), ("route", "/api/users/me")],
    )
    .unwrap();
    let times: Vec<i64> = rate["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|point| point[0].as_i64().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|pair| pair[1] - pair[0] == 1000),
        "{times:?}"
    );
    assert!(times.len() <= 61, "{} points", times.len());
    prometheus.stop().await;
    // Prometheus gone: the dashboard says so rather than answering nothing.
    let unavailable = series(&app, &operator.access_token, "1m").await;
    problem(unavailable, StatusCode::SERVICE_UNAVAILABLE).await;
}
