use std::time::Duration;

use sankalpa_proto::v1 as pb;
use sankalpa_testkit::Events;
use sankalpa_testkit::llm::StreamingLlm;
use serde_json::json;

use crate::{json, start, start_with};

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

/// A run asking for deltas publishes the model's text as it is written, in order, between its
/// start and its end; a run that does not ask publishes none.
#[sqlx::test(migrations = false)]
async fn a_run_asking_for_deltas_publishes_the_model_s_text_as_it_comes(pool: sqlx::PgPool) {
    let pieces = ["Hola ", "a todo ", "el mundo"].map(str::to_owned).to_vec();
    let fake = StreamingLlm::start(pieces, Duration::from_millis(100))
        .await
        .unwrap();
    let llm = fake.config();
    let mut app = start_with(pool, |config| config.llm = Some(llm)).await;
    let ada = app.sign_up().await;
    let mut events = Events::read(&app.infra, &format!("agents.{}.>", ada.tenant_id)).await;
    let input = json!({"text": "Hello to the whole world", "target_language": "es"});
    let asking = |stream_deltas| pb::ExecuteAgentRequest {
        agent: "text_translator".into(),
        input_json: input.to_string(),
        stream_deltas,
        ..Default::default()
    };

    let run = app.execute_with(&ada.token, asking(true)).await.unwrap();
    assert_eq!(
        json(&run.output_json)["translated_text"],
        "Hola a todo el mundo"
    );
    let (_, started) = events.next().await;
    assert_eq!(started.kind, "sankalpa.agents.started");
    let mut text = String::new();
    let mut seqs = Vec::new();
    loop {
        let (subject, event) = events.next().await;
        if event.kind != "sankalpa.agents.delta" {
            assert_eq!(event.kind, "sankalpa.agents.completed");
            break;
        }
        assert!(subject.ends_with(".text_translator.delta"), "{subject}");
        assert_eq!(event.data["run_id"], run.run_id);
        seqs.push(event.data["seq"].as_u64().unwrap());
        text.push_str(event.data["text"].as_str().unwrap());
    }
    assert_eq!(text, "Hola a todo el mundo");
    assert!(seqs.len() >= 2, "sent as it came, not at the end: {seqs:?}");
    assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());

    app.execute_with(&ada.token, asking(false)).await.unwrap();
    let (_, started) = events.next().await;
    assert_eq!(started.kind, "sankalpa.agents.started");
    let (_, ended) = events.next().await;
    assert_eq!(ended.kind, "sankalpa.agents.completed", "no deltas asked");
}
