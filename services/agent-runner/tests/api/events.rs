use sankalpa_testkit::Events;
use serde_json::json;

use crate::start;

#[sqlx::test(migrations = false)]
async fn runs_announce_their_start_and_their_end_on_nats(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let tenant_agents = format!("agents.{}", ada.tenant_id);
    let prefix = format!("{}{tenant_agents}", app.infra.subject_prefix);
    let mut events = Events::read(&app.infra, &format!("{tenant_agents}.>")).await;

    let run = app
        .execute(&ada.token, "hello_world", json!({"name": "Ada"}))
        .await
        .unwrap();
    let (subject, started) = events.next().await;
    assert_eq!(subject, format!("{prefix}.hello_world.started"));
    assert_eq!(started.kind, "sankalpa.agents.started");
    assert_eq!(started.tenantid, ada.tenant_id);
    assert_eq!(started.data["run_id"], run.run_id);
    let (subject, completed) = events.next().await;
    assert_eq!(subject, format!("{prefix}.hello_world.completed"));
    assert_eq!(completed.data["status"], "completed");
    assert_eq!(completed.data["run_id"], run.run_id);

    app.execute(
        &ada.token,
        "custom_calculator",
        json!({"expression": "1/0"}),
    )
    .await
    .unwrap();
    events.next().await;
    let (subject, failed) = events.next().await;
    assert_eq!(subject, format!("{prefix}.custom_calculator.failed"));
    assert_eq!(failed.data["error"]["code"], "agent_failed");
}

#[sqlx::test(migrations = false)]
async fn runs_are_counted_in_metrics(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    app.output(&ada.token, "hello_world", json!({})).await;
    let url = format!("{}/metrics", app.runner.http_url());
    let body = reqwest::get(url).await.unwrap().text().await.unwrap();
    assert!(
        body.contains("agent_runs_total{agent=\"hello_world\",outcome=\"completed\"}"),
        "{body}"
    );
    assert!(body.contains("agent_run_duration_seconds_bucket{agent=\"hello_world\""));
}
