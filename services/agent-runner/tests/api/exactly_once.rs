//! A run id the caller names is run once: asked again, in flight or finished, it answers the same
//! run without running the agent again or announcing it again.

use sankalpa_proto::v1 as pb;
use sankalpa_testkit::Events;
use serde_json::{Value, json};
use tonic::Code;

use crate::{TestRunner, start};

fn named(run_id: &str, agent: &str, input: Value) -> pb::ExecuteAgentRequest {
    pb::ExecuteAgentRequest {
        agent: agent.into(),
        input_json: input.to_string(),
        run_id: Some(run_id.into()),
        ..Default::default()
    }
}

/// How many runs of `agent` agent-runner finished with `outcome`, from its metrics.
async fn runs_of(app: &TestRunner, agent: &str, outcome: &str) -> u64 {
    let url = format!("{}/metrics", app.runner.http_url());
    let body = reqwest::get(url).await.unwrap().text().await.unwrap();
    let series = format!("agent_runs_total{{agent=\"{agent}\",outcome=\"{outcome}\"}} ");
    body.lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0, |value| value.trim().parse().unwrap())
}

#[sqlx::test(migrations = false)]
async fn a_run_asked_again_answers_its_outcome_without_running_again(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let subject = format!("agents.{}", ada.tenant_id);
    let mut events = Events::read(&app.infra, &format!("{subject}.>")).await;

    let request = named("chain-1-step-a-1", "hello_world", json!({"name": "Ada"}));
    let first = app.execute_with(&ada.token, request.clone()).await.unwrap();
    let again = app.execute_with(&ada.token, request.clone()).await.unwrap();
    assert_eq!(again, first, "the same answer, times and all");
    assert_eq!(runs_of(&app, "hello_world", "completed").await, 1);

    // The run announced itself once: the next events after its own are another run's.
    let marker = app
        .execute(&ada.token, "hello_world", json!({}))
        .await
        .unwrap();
    let runs: Vec<String> = [
        events.next().await,
        events.next().await,
        events.next().await,
    ]
    .into_iter()
    .map(|(_, event)| event.data["run_id"].as_str().unwrap().to_owned())
    .collect();
    assert_eq!(runs, [&*first.run_id, &first.run_id, &marker.run_id]);

    for (agent, input) in [
        ("hello_world", json!({"name": "Bob"})),
        ("custom_calculator", json!({"expression": "1+1"})),
    ] {
        let status = app
            .execute_with(&ada.token, named(&first.run_id, agent, input))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::AlreadyExists, "{agent}");
    }
    assert_eq!(runs_of(&app, "hello_world", "completed").await, 2);
}

#[sqlx::test(migrations = false)]
async fn concurrent_requests_for_one_run_id_get_one_run(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let request = named("together", "hello_world", json!({"name": "Ada"}));
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let mut client = app.client.clone();
            let call = crate::authed(request.clone(), &ada.token);
            tokio::spawn(async move { client.execute_agent(call).await.map(|r| r.into_inner()) })
        })
        .collect();
    let mut answers = Vec::new();
    for call in calls {
        answers.push(call.await.unwrap().unwrap());
    }
    assert!(answers.iter().all(|answer| *answer == answers[0]));
    assert_eq!(runs_of(&app, "hello_world", "completed").await, 1);
}

#[sqlx::test(migrations = false)]
async fn another_tenants_run_of_the_same_id_is_its_own(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let bob = app.sign_up().await;
    let ada_run = app
        .execute_with(
            &ada.token,
            named("step-1", "hello_world", json!({"name": "Ada"})),
        )
        .await
        .unwrap();
    let bob_run = app
        .execute_with(
            &bob.token,
            named("step-1", "hello_world", json!({"name": "Bob"})),
        )
        .await
        .unwrap();
    assert_eq!(crate::json(&ada_run.output_json)["message"], "Hello, Ada!");
    assert_eq!(crate::json(&bob_run.output_json)["message"], "Hello, Bob!");
    assert_eq!(runs_of(&app, "hello_world", "completed").await, 2);
}

/// A first ask (the orchestrator's first request of a step attempt) is taken at its word:
/// nothing kept is looked for, yet its outcome is kept, and later asks are answered from it.
#[sqlx::test(migrations = false)]
async fn a_first_ask_is_not_looked_up_and_its_outcome_is_kept(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let run_id = "chain-2-step-a-1";
    let first_ask = pb::ExecuteAgentRequest {
        first_ask: true,
        ..named(run_id, "hello_world", json!({"name": "Ada"}))
    };
    let first = app
        .execute_with(&ada.token, first_ask.clone())
        .await
        .unwrap();
    let kept = async {
        while sqlx::query_scalar::<_, i64>("SELECT count(*) FROM agents.runs WHERE run_id = $1")
            .bind(run_id)
            .fetch_one(&app.pool)
            .await
            .unwrap()
            == 0
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), kept)
        .await
        .expect("the outcome is kept");
    let again = app
        .execute_with(
            &ada.token,
            named(run_id, "hello_world", json!({"name": "Ada"})),
        )
        .await
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(runs_of(&app, "hello_world", "completed").await, 1);

    // Asked "first" again once the run has let go of its id, the agent runs again: the word
    // was not checked against what is kept. (A request still attached to the finished run
    // gets its answer; asking again lands after.)
    for _ in 0..50 {
        let rerun = app
            .execute_with(&ada.token, first_ask.clone())
            .await
            .unwrap();
        if rerun.started_at != first.started_at {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(runs_of(&app, "hello_world", "completed").await, 2);
}
