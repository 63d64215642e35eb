//! Chains through REST: stored definitions and templates, runs waited for (200) or started
//! (202 + Location), idempotent retries, and the read-only role.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::{Session, TestApp, problem, spawn_app_with_agents};

/// hello_world twice in a row, each greeting `input.name`. (hello_world takes nothing but a
/// name, so the second step maps its input rather than take the first one's output merged in.)
pub fn two_greetings() -> Value {
    json!({ "steps": [
        { "id": "first", "agent": "hello_world", "input": { "name": "${input.name}" } },
        { "id": "second", "agent": "hello_world", "needs": ["first"], "input": { "name": "${input.name}" } },
    ] })
}

pub async fn execute(app: &TestApp, who: &Session, body: &Value) -> reqwest::Response {
    app.post_as("/api/chains/execute", &who.access_token, body)
        .await
}

/// The run at `location`, once it has finished.
pub async fn finished_run(app: &TestApp, who: &Session, location: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let run: Value = app
            .get_as(location, &who.access_token)
            .await
            .json()
            .await
            .unwrap();
        if ["completed", "failed", "cancelled"].contains(&run["status"].as_str().unwrap()) {
            return run;
        }
        assert!(Instant::now() < deadline, "the run did not finish: {run}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[sqlx::test(migrations = false)]
async fn a_run_waited_for_answers_200_with_every_step_and_the_output(pool: PgPool) {
    let app = spawn_app_with_agents(pool).await;
    let ada = app.admin().await;

    let response = execute(
        &app,
        &ada,
        &json!({ "definition": two_greetings(), "input": { "name": "Ada" }, "wait": true }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let run: Value = response.json().await.unwrap();
    assert_eq!(run["status"], "completed", "{run}");
    let steps = run["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2);
    for step in steps {
        assert_eq!(step["status"], "completed");
        assert_eq!(step["agent"], "hello_world");
        assert_eq!(step["attempts"], 1);
        let id = step["id"].as_str().unwrap();
        assert_eq!(run["output"][id], step["output"]);
    }
    let first = steps[0]["output"]["message"].as_str().unwrap();
    assert!(first.contains("Ada"), "{first}");
    assert_eq!(run["input"], json!({ "name": "Ada" }));
}

#[sqlx::test(migrations = false)]
async fn a_runs_steps_show_their_kind_and_a_chain_steps_child_links_back(pool: PgPool) {
    let app = spawn_app_with_agents(pool).await;
    let ada = app.admin().await;
    let definition = json!({"steps": [
        {"id": "each", "agent": "hello_world", "for_each": "${input.people}",
         "max_parallel": 2, "input": {"name": "${item}"}},
        {"id": "again", "needs": ["each"],
         "chain": {"template": "hello-sequence", "input": {"name": "${input.people[0]}"}}},
    ]});
    let response = execute(
        &app,
        &ada,
        &json!({ "definition": definition, "input": { "people": ["Grace", "Alan"] } }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let run = finished_run(&app, &ada, &location).await;
    assert_eq!(run["status"], "completed", "{run}");
    let steps = run["steps"].as_array().unwrap();
    assert_eq!(steps[0]["kind"], "map");
    let greetings = steps[0]["output"].as_array().unwrap();
    assert_eq!(greetings.len(), 2);
    assert!(
        greetings[1]["message"].as_str().unwrap().contains("Alan"),
        "{greetings:?}"
    );
    assert_eq!(steps[1]["kind"], "chain");
    let child_id = steps[1]["child_run_id"].as_str().unwrap();
    let child = finished_run(&app, &ada, &format!("/api/chains/runs/{child_id}")).await;
    assert_eq!(child["parent_run_id"], run["id"]);
    assert_eq!(child["parent_step"], "again");
    assert_eq!(child["template"], "hello-sequence");
    assert_eq!(steps[1]["output"], child["output"]);
    assert_eq!(child["steps"][0]["kind"], "agent");
    assert!(run.get("parent_run_id").is_none_or(Value::is_null), "{run}");
}

#[sqlx::test(migrations = false)]
async fn an_async_run_answers_202_with_its_location_and_finishes_later(pool: PgPool) {
    let app = spawn_app_with_agents(pool).await;
    let ada = app.admin().await;

    let response = execute(
        &app,
        &ada,
        &json!({ "definition": two_greetings(), "input": { "name": "Grace" } }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let accepted: Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!("/api/chains/runs/{}", accepted["id"].as_str().unwrap())
    );
    assert!(["pending", "running"].contains(&accepted["status"].as_str().unwrap()));

    let run = finished_run(&app, &ada, &location).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["steps"].as_array().unwrap().len(), 2);

    let listed: Value = app
        .get_as("/api/chains/runs?status=completed", &ada.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["runs"][0]["id"], accepted["id"]);
    problem(
        app.get_as("/api/chains/runs?status=sleeping", &ada.access_token)
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
}

#[sqlx::test(migrations = false)]
async fn runs_filter_by_the_time_they_were_created(pool: PgPool) {
    let app = spawn_app_with_agents(pool).await;
    let ada = app.admin().await;
    let mut created = Vec::new();
    for name in ["Ada", "Grace"] {
        let response = execute(
            &app,
            &ada,
            &json!({ "definition": two_greetings(), "input": { "name": name } }),
        )
        .await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let run: Value = response.json().await.unwrap();
        created.push((
            run["id"].clone(),
            run["created_at"].as_str().unwrap().to_owned(),
        ));
    }
    let (first, second) = (&created[0], &created[1]);
    let listed = |query: String| {
        let app = &app;
        let token = ada.access_token.clone();
        async move {
            let list: Value = app
                .get_as(&format!("/api/chains/runs?{query}"), &token)
                .await
                .json()
                .await
                .unwrap();
            list["runs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|run| run["id"].clone())
                .collect::<Vec<_>>()
        }
    };

    // `since` takes the run created at that instant, `until` stops just before it.
    assert_eq!(
        listed(format!("since={}", second.1)).await,
        std::slice::from_ref(&second.0)
    );
    assert_eq!(
        listed(format!("until={}", second.1)).await,
        std::slice::from_ref(&first.0)
    );
    assert_eq!(
        listed(format!("since={}&until={}", first.1, second.1)).await,
        std::slice::from_ref(&first.0)
    );
    assert!(listed("since=9999-12-31T00:00:00Z".into()).await.is_empty());

    // Another tenant's window over the same instants holds none of them.
    let grace = app.admin().await;
    let theirs: Value = app
        .get_as(
            &format!("/api/chains/runs?since={}", first.1),
            &grace.access_token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(theirs["runs"], json!([]));

    for (query, field) in [
        ("since=yesterday", "since"),
        ("until=2026-13-01T00:00:00Z", "until"),
        ("since=0000-01-01T00:00:00Z", "since"),
    ] {
        let body = problem(
            app.get_as(&format!("/api/chains/runs?{query}"), &ada.access_token)
                .await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(body["errors"][0]["field"], field, "{query}: {body}");
    }
    // A window that ends before it starts is empty, not an error.
    let empty: Value = app
        .get_as(
            &format!("/api/chains/runs?since={}&until={}", second.1, first.1),
            &ada.access_token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(empty["runs"], json!([]), "{empty}");
}

#[sqlx::test(migrations = false)]
async fn a_repeated_idempotency_key_answers_with_the_same_run(pool: PgPool) {
    let app = spawn_app_with_agents(pool).await;
    let ada = app.admin().await;
    let body = json!({ "definition": two_greetings(), "input": { "name": "Ada" } });
    let send = || {
        app.client
            .post(app.url("/api/chains/execute"))
            .bearer_auth(&ada.access_token)
            .header("Idempotency-Key", "order-42")
            .json(&body)
            .send()
    };

    let first: Value = send().await.unwrap().json().await.unwrap();
    let second: Value = send().await.unwrap().json().await.unwrap();
    assert_eq!(first["id"], second["id"]);
    assert_eq!(second["idempotency_key"], "order-42");
    let runs: Value = app
        .get_as("/api/chains/runs", &ada.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(runs["runs"].as_array().unwrap().len(), 1);
}

#[sqlx::test(migrations = false)]
async fn a_stored_chain_is_versioned_run_by_id_and_deleted(pool: PgPool) {
    let app = spawn_app_with_agents(pool).await;
    let ada = app.admin().await;

    let created = app
        .post_as(
            "/api/chains",
            &ada.access_token,
            &json!({ "name": "greetings", "definition": two_greetings() }),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let chain: Value = created.json().await.unwrap();
    let id = chain["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/api/chains/{id}"));
    assert_eq!(chain["version"], 1);
    assert_eq!(chain["step_count"], 2);

    let listed: Value = app
        .get_as("/api/chains", &ada.access_token)
        .await
        .json()
        .await
        .unwrap();
    let origins: Vec<(&str, &str)> = listed["chains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|chain| {
            (
                chain["name"].as_str().unwrap(),
                chain["origin"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(origins.contains(&("greetings", "tenant")), "{origins:?}");
    assert!(
        origins.contains(&("fullstack-app", "template")),
        "{origins:?}"
    );
    let template: Value = app
        .get_as("/api/chains/hello-sequence", &ada.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(template["origin"], "template");
    assert_eq!(template["definition"]["mode"], "sequential");

    let updated = app
        .client
        .put(app.url(&location))
        .bearer_auth(&ada.access_token)
        .json(&json!({
            "definition": { "agents": ["hello_world"], "mode": "sequential" },
            "expected_version": 1,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), StatusCode::OK);
    let updated: Value = updated.json().await.unwrap();
    assert_eq!(updated["version"], 2);
    let first: Value = app
        .get_as(&format!("{location}?version=1"), &ada.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["step_count"], 2);

    let run = execute(
        &app,
        &ada,
        &json!({ "chain_id": id, "input": { "name": "Ada" }, "wait": true }),
    )
    .await;
    assert_eq!(run.status(), StatusCode::OK);
    let run: Value = run.json().await.unwrap();
    assert_eq!(run["chain_version"], 2);
    assert_eq!(run["steps"].as_array().unwrap().len(), 1);

    let invalid = problem(
        app.post_as(
            "/api/chains",
            &ada.access_token,
            &json!({ "name": "broken", "definition": { "agents": ["no_such_agent"], "mode": "sequential" } }),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(
        invalid["detail"]
            .as_str()
            .unwrap()
            .contains("no_such_agent"),
        "{invalid}"
    );

    let deleted = app
        .client
        .delete(app.url(&location))
        .bearer_auth(&ada.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    problem(
        app.get_as(&location, &ada.access_token).await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[sqlx::test(migrations = false)]
async fn an_execute_without_one_target_or_with_a_bad_member_is_a_400_naming_it(pool: PgPool) {
    let app = spawn_app_with_agents(pool).await;
    let ada = app.admin().await;
    let both = problem(
        execute(
            &app,
            &ada,
            &json!({ "template": "hello-sequence", "definition": two_greetings() }),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(both["errors"][0]["field"], "chain_id");
    let bad_input = problem(
        execute(
            &app,
            &ada,
            &json!({ "template": "hello-sequence", "input": [1] }),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(bad_input["errors"][0]["field"], "input", "{bad_input}");
    // Past int64, as the document says; anything below is cut to the longest wait.
    let endless = problem(
        execute(
            &app,
            &ada,
            &json!({ "template": "hello-sequence", "wait": true, "wait_timeout_ms": 9_223_372_036_854_775_808_u64 }),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(
        endless["errors"][0]["field"], "wait_timeout_ms",
        "{endless}"
    );
}

#[sqlx::test(migrations = false)]
async fn a_viewer_may_list_chains_but_gets_403_on_execute(pool: PgPool) {
    let app = spawn_app_with_agents(pool).await;
    let admin = app.admin().await;
    let viewer = app.viewer(&admin).await;

    assert_eq!(
        app.get_as("/api/chains", &viewer.access_token)
            .await
            .status(),
        StatusCode::OK
    );
    problem(
        execute(&app, &viewer, &json!({ "template": "hello-sequence" })).await,
        StatusCode::FORBIDDEN,
    )
    .await;
}

/// Polls the run at `location` until its status is `status`.
async fn run_in(app: &TestApp, who: &Session, location: &str, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let run: Value = app
            .get_as(location, &who.access_token)
            .await
            .json()
            .await
            .unwrap();
        if run["status"] == status {
            return run;
        }
        assert!(
            Instant::now() < deadline,
            "the run never got {status}: {run}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[sqlx::test(migrations = false)]
async fn an_approval_step_is_decided_over_rest_by_its_approvers_only(pool: PgPool) {
    let app = spawn_app_with_agents(pool).await;
    let ada = app.admin().await;
    let developer = {
        let email = crate::helpers::unique_email();
        let created = app
            .post_as(
                "/api/users",
                &ada.access_token,
                &json!({ "email": email, "password": "correct horse battery staple",
                         "roles": ["developer"] }),
            )
            .await;
        assert_eq!(created.status(), StatusCode::CREATED);
        app.session(&email, "correct horse battery staple").await
    };
    let stranger = app.admin().await;
    let definition = json!({ "steps": [
        { "id": "approve", "approval": { "prompt": "Greet?", "approvers": ["role:admin"] } },
        { "id": "greet", "agent": "hello_world", "needs": ["approve"],
          "input": { "name": "${steps.approve.input.name}" } },
    ] });
    let started = execute(&app, &ada, &json!({ "definition": definition })).await;
    assert_eq!(started.status(), StatusCode::ACCEPTED);
    let location = started.headers()["location"].to_str().unwrap().to_owned();
    let waiting = run_in(&app, &ada, &location, "waiting").await;
    assert_eq!(waiting["steps"][0]["status"], "waiting", "{waiting}");
    let listed: Value = app
        .get_as("/api/chains/runs?status=waiting", &ada.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["runs"][0]["id"], waiting["id"], "{listed}");

    let approve = format!("{location}/steps/approve/approve");
    let body = json!({ "input": { "name": "Grace" }, "comment": "go" });
    let refused = problem(
        app.post_as(&approve, &developer.access_token, &body).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(
        refused["detail"].as_str().unwrap().contains("role:admin"),
        "{refused}"
    );
    problem(
        app.post_as(&approve, &stranger.access_token, &body).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let too_big = problem(
        app.post_as(
            &approve,
            &ada.access_token,
            &json!({ "input": { "pad": "x".repeat(70_000) } }),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(too_big["errors"][0]["field"], "input", "{too_big}");

    let approved = app.post_as(&approve, &ada.access_token, &body).await;
    assert_eq!(approved.status(), StatusCode::OK);
    let approved: Value = approved.json().await.unwrap();
    assert_eq!(approved["steps"][0]["status"], "completed", "{approved}");
    assert_eq!(
        approved["steps"][0]["output"]["input"],
        json!({ "name": "Grace" })
    );
    let again = problem(
        app.post_as(
            &format!("{location}/steps/approve/reject"),
            &ada.access_token,
            &json!({}),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(
        again["detail"].as_str().unwrap().contains("not waiting"),
        "{again}"
    );
    let done = finished_run(&app, &ada, &location).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert!(
        done["steps"][1]["output"].to_string().contains("Grace"),
        "{done}"
    );
}
