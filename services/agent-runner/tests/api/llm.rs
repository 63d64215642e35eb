//! The LLM path, against a local server speaking OpenAI's chat-completions protocol: token
//! counts, retries, fallback, and the deadline and cancellation of a run waiting on the LLM.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use sankalpa_agent_runner::llm::LlmConfig;
use sankalpa_proto::v1 as pb;
use serde_json::{Value, json};
use tonic::Code;

use crate::{TestRunner, authed, json, start_with};

/// One answer of the fake LLM: a status and, for a 200, what the model says or the tools it
/// calls (name, arguments), after a delay.
#[derive(Clone, Copy)]
pub struct Answer {
    status: u16,
    delay: Duration,
    content: &'static str,
    calls: &'static [(&'static str, &'static str)],
}

const OK: Answer = Answer {
    status: 200,
    delay: Duration::ZERO,
    content: " Bonjour le monde ",
    calls: &[],
};

impl Answer {
    const fn saying(content: &'static str) -> Self {
        Self { content, ..OK }
    }

    const fn calling(calls: &'static [(&'static str, &'static str)]) -> Self {
        Self { calls, ..OK }
    }

    const fn refusing(status: u16) -> Self {
        Self { status, ..OK }
    }
}

/// The fake LLM: it answers 25 tokens of "Bonjour le monde" unless scripted otherwise.
#[derive(Default)]
pub struct Fake {
    /// Answers to give, in order; `OK` once exhausted.
    script: Mutex<VecDeque<Answer>>,
    /// (authorization header, body) of every request received.
    pub seen: Mutex<Vec<(String, Value)>>,
    pub arrived: tokio::sync::Notify,
}

impl Fake {
    /// Waits until `count` requests have arrived in all; panics after 5 s.
    pub async fn wait_for(&self, count: usize) {
        tokio::time::timeout(Duration::from_secs(5), async {
            while self.seen.lock().unwrap().len() < count {
                self.arrived.notified().await;
            }
        })
        .await
        .expect("the requests reach the LLM");
    }
}

async fn completions(
    State(fake): State<Arc<Fake>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    fake.seen.lock().unwrap().push((authorization, body));
    fake.arrived.notify_one();
    let answer = fake.script.lock().unwrap().pop_front().unwrap_or(OK);
    tokio::time::sleep(answer.delay).await;
    let status = StatusCode::from_u16(answer.status).unwrap();
    if !status.is_success() {
        return (status, Json(json!({"error": {"message": "try later"}})));
    }
    let message = if answer.calls.is_empty() {
        json!({"role": "assistant", "content": answer.content})
    } else {
        let calls: Vec<Value> = answer
            .calls
            .iter()
            .enumerate()
            .map(|(i, (name, arguments))| {
                json!({"id": format!("call_{i}"), "type": "function",
                    "function": {"name": name, "arguments": arguments}})
            })
            .collect();
        json!({"role": "assistant", "content": null, "tool_calls": calls})
    };
    (
        status,
        Json(json!({
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": "fake-model-2024",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 21, "completion_tokens": 4, "total_tokens": 25},
        })),
    )
}

/// Starts the fake LLM and agent-runner configured to use it.
async fn start_with_llm(pool: sqlx::PgPool, script: Vec<Answer>) -> (TestRunner, Arc<Fake>) {
    let (runner, fake, _) = start_with_fake_llm(pool, script, |_| {}).await;
    (runner, fake)
}

/// Starts the fake LLM and agent-runner using it, configured further by `configure`; gives
/// the LLM configuration too, for another agent-runner to share.
pub async fn start_with_fake_llm(
    pool: sqlx::PgPool,
    script: Vec<Answer>,
    configure: impl FnOnce(&mut sankalpa_agent_runner::Config),
) -> (TestRunner, Arc<Fake>, LlmConfig) {
    let fake = Arc::new(Fake::default());
    fake.script.lock().unwrap().extend(script);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/v1/chat/completions", post(completions))
        .with_state(fake.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let llm = LlmConfig {
        protocol: sankalpa_agent_runner::llm::Protocol::OpenAi,
        base_url,
        api_key: Some("test-key".into()),
        model: "fake-model".into(),
        timeout: Duration::from_secs(10),
        max_retries: 2,
        backoff: Duration::from_millis(20),
    };
    let shared = llm.clone();
    let runner = start_with(pool, |config| {
        config.llm = Some(llm);
        configure(config);
    })
    .await;
    (runner, fake, shared)
}

pub fn translate(text: &str) -> Value {
    json!({"text": text, "target_language": "fr", "source_language": "en"})
}

#[sqlx::test(migrations = false)]
async fn an_llm_capable_agent_uses_the_llm_and_counts_its_tokens(pool: sqlx::PgPool) {
    let (mut app, fake) = start_with_llm(pool, vec![]).await;
    let token = app.sign_up().await.token;
    let run = app
        .execute(&token, "text_translator", translate("Hello world"))
        .await
        .unwrap();
    assert_eq!(
        run.status,
        pb::AgentRunStatus::Completed as i32,
        "{:?}",
        run.error
    );
    assert!(run.llm_used);
    assert_eq!(run.llm_model, "fake-model-2024");
    assert_eq!((run.prompt_tokens, run.completion_tokens), (21, 4));
    let out = json(&run.output_json);
    assert_eq!(out["method"], "llm");
    assert_eq!(out["translated_text"], "Bonjour le monde");
    let seen = fake.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, "Bearer test-key");
    assert_eq!(seen[0].1["model"], "fake-model");
    assert!(
        seen[0].1["messages"][1]["content"]
            .as_str()
            .unwrap()
            .contains("Hello world")
    );

    let run = app
        .execute_with(
            &token,
            pb::ExecuteAgentRequest {
                agent: "text_translator".into(),
                input_json: translate("Hello world").to_string(),
                llm: pb::LlmMode::Off as i32,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(!run.llm_used);
    assert_eq!(json(&run.output_json)["method"], "glossary");
    assert_eq!(
        fake.seen.lock().unwrap().len(),
        1,
        "LLM_MODE_OFF asks nothing"
    );
}

/// With answers kept, the same question of the same tenant is answered from the cache (no
/// request, no tokens), while another tenant's, or another question, reaches the model.
#[sqlx::test(migrations = false)]
async fn a_kept_answer_serves_the_same_question_of_the_same_tenant_only(pool: sqlx::PgPool) {
    let (mut app, fake, _) = start_with_fake_llm(pool, vec![], |config| {
        config.llm_cache_ttl = Duration::from_secs(60);
    })
    .await;
    let ada = app.sign_up().await.token;
    let bob = app.sign_up().await.token;
    assert_eq!(translated(&mut app, &ada, "Hello world").await, (21, 4));
    assert_eq!(
        translated(&mut app, &ada, "Hello world").await,
        (0, 0),
        "a kept answer costs no tokens"
    );
    assert_eq!(
        fake.seen.lock().unwrap().len(),
        1,
        "the model was asked once"
    );
    assert_eq!(translated(&mut app, &bob, "Hello world").await, (21, 4));
    assert_eq!(translated(&mut app, &ada, "Hello there").await, (21, 4));
    assert_eq!(
        fake.seen.lock().unwrap().len(),
        3,
        "another tenant, another question"
    );
    assert_eq!(
        app.metric(r#"llm_cache_lookups_total{result="hit"}"#).await,
        1.0
    );
}

fn launch_input() -> Value {
    json!({"product_name": "Sankalpa", "description": "Runs AI agents that build software.",
           "features": ["chains with retries"]})
}

/// product_hunt_copywriter takes the model's copy when it is within Product Hunt's limits, and
/// keeps its template's when it is not.
#[sqlx::test(migrations = false)]
async fn launch_copy_is_the_model_s_within_its_limits_else_the_template_s(pool: sqlx::PgPool) {
    let written = r#"```json
{"tagline": "Agents that ship your software", "short_description": "Compose AI agents into chains that plan, build and test a project.", "first_comment": "Hi all! We built Sankalpa to turn a plan into a running project."}
```"#;
    let too_long = r#"{"tagline": "An extremely long tagline that goes far past the sixty characters allowed", "short_description": "x", "first_comment": "y"}"#;
    let (mut app, fake) = start_with_llm(
        pool,
        vec![Answer::saying(written), Answer::saying(too_long)],
    )
    .await;
    let token = app.sign_up().await.token;

    let run = app
        .execute(&token, "product_hunt_copywriter", launch_input())
        .await
        .unwrap();
    assert!(run.llm_used);
    let out = json(&run.output_json);
    assert_eq!(out["method"], "llm");
    assert_eq!(out["tagline"], "Agents that ship your software");
    assert!(
        out["first_comment"]
            .as_str()
            .unwrap()
            .starts_with("Hi all!")
    );
    let asked = fake.seen.lock().unwrap()[0].1["messages"][1]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        asked.contains("chains with retries") && asked.contains("at most 60"),
        "{asked}"
    );

    let run = app
        .execute(&token, "product_hunt_copywriter", launch_input())
        .await
        .unwrap();
    let out = json(&run.output_json);
    assert_eq!(
        out["method"], "template",
        "a tagline past 60 characters is refused"
    );
    assert!(out["tagline"].as_str().unwrap().chars().count() <= 60);
    assert!(
        out["first_comment"]
            .as_str()
            .unwrap()
            .contains("• chains with retries")
    );
}

/// pitch_deck_generator puts the given sections as the model's bullets when it answers exactly
/// those sections within bounds; a section the input lacks stays to fill, whatever the model
/// says; any other answer leaves the sections as given.
#[sqlx::test(migrations = false)]
async fn a_deck_s_given_sections_are_the_model_s_bullets_and_gaps_stay_gaps(pool: sqlx::PgPool) {
    let bullets = r#"{"problem": ["Teams lose work", "Handoffs break"], "solution": ["Acme keeps every draft"], "traction": ["120 paying teams"]}"#;
    let invented = r#"{"problem": ["Teams lose work"], "solution": ["Acme keeps it"], "traction": ["120 paying teams"], "market": ["A $40B market"]}"#;
    let (mut app, _fake) = start_with_llm(
        pool,
        vec![Answer::saying(bullets), Answer::saying(invented)],
    )
    .await;
    let token = app.sign_up().await.token;
    let input = json!({"company": "Acme", "problem": "Teams lose work.", "solution": "Acme keeps it.",
                       "traction": "120 paying teams", "team": ["Ada, CEO"]});

    let run = app
        .execute(&token, "pitch_deck_generator", input.clone())
        .await
        .unwrap();
    let out = json(&run.output_json);
    assert_eq!(out["method"], "llm");
    assert_eq!(
        out["slides"][1]["body"],
        "- Teams lose work\n- Handoffs break"
    );
    assert_eq!(out["slides"][5]["body"], "- 120 paying teams");
    assert_eq!(out["slides"][3]["body"], "_To fill: market._");
    assert_eq!(
        out["gaps"],
        json!(["market", "business_model", "competition", "ask"])
    );

    let run = app
        .execute(&token, "pitch_deck_generator", input)
        .await
        .unwrap();
    let out = json(&run.output_json);
    assert_eq!(out["method"], "template", "a section not given is refused");
    assert_eq!(out["slides"][1]["body"], "Teams lose work.");
    assert_eq!(out["slides"][3]["body"], "_To fill: market._");
}

/// self_replicator installs the model's improvement of its draft when it compiles under the
/// draft's name, and the draft when it does not.
#[sqlx::test(migrations = false)]
async fn a_replicated_agent_is_the_model_s_design_when_it_compiles(pool: sqlx::PgPool) {
    let design = r#"{"name": "release_notes", "category": "custom", "version": "1.0.0",
        "description": "Drafts release notes.",
        "input_schema": {"type": "object", "required": ["version"], "properties": {
            "version": {"type": "string", "description": "The version released"},
            "highlights": {"type": "array", "items": {"type": "string"}}}},
        "output_schema": {"type": "object", "required": ["title"],
            "properties": {"title": {"type": "string"}}},
        "template": {"output": {"title": "Release {{ version }}"}}}"#;
    let broken =
        r#"{"name": "changelog", "category": "custom", "version": "1.0.0", "description": "x"}"#;
    let (mut app, _fake) =
        start_with_llm(pool, vec![Answer::saying(design), Answer::saying(broken)]).await;
    let token = app.sign_up().await.token;

    let out = app
        .output(&token, "self_replicator", json!({"description": "Drafts release notes given a version and highlights.", "name": "release_notes"}))
        .await;
    assert_eq!(
        (out["method"].as_str(), out["agent"].as_str()),
        (Some("llm"), Some("release_notes"))
    );
    let run = app
        .execute(
            &token,
            "release_notes",
            json!({"version": "2.0.0", "highlights": ["faster"]}),
        )
        .await
        .unwrap();
    assert_eq!(json(&run.output_json)["title"], "Release 2.0.0");

    let out = app
        .output(&token, "self_replicator", json!({"description": "Keeps a changelog given a version and changes.", "name": "changelog"}))
        .await;
    assert_eq!(
        out["method"], "template",
        "a definition that does not compile"
    );
    assert_eq!(
        out["definition"]["input_schema"]["required"],
        json!(["version", "changes"])
    );
}

/// text_translator's run of `text`, by the fake model: its prompt and completion tokens.
async fn translated(app: &mut TestRunner, token: &str, text: &str) -> (u64, u64) {
    let run = app
        .execute(token, "text_translator", translate(text))
        .await
        .unwrap();
    assert_eq!(run.status, pb::AgentRunStatus::Completed as i32);
    assert!(run.llm_used);
    assert_eq!(run.llm_model, "fake-model-2024");
    let out = json(&run.output_json);
    assert_eq!(out["translated_text"], "Bonjour le monde");
    (run.prompt_tokens, run.completion_tokens)
}

/// Without a TTL (the default) nothing is kept: the same question is asked again.
#[sqlx::test(migrations = false)]
async fn by_default_the_same_question_is_asked_again(pool: sqlx::PgPool) {
    let (mut app, fake) = start_with_llm(pool, vec![]).await;
    let token = app.sign_up().await.token;
    for _ in 0..2 {
        let run = app
            .execute(&token, "text_translator", translate("Hello world"))
            .await
            .unwrap();
        assert_eq!((run.prompt_tokens, run.completion_tokens), (21, 4));
    }
    assert_eq!(fake.seen.lock().unwrap().len(), 2);
}

#[sqlx::test(migrations = false)]
async fn rate_limits_and_server_errors_are_retried_with_backoff(pool: sqlx::PgPool) {
    let script = vec![Answer::refusing(429), Answer::refusing(503)];
    let (mut app, fake) = start_with_llm(pool, script).await;
    let token = app.sign_up().await.token;
    let out = app
        .output(&token, "text_translator", translate("Hello"))
        .await;
    assert_eq!(out["method"], "llm");
    assert_eq!(fake.seen.lock().unwrap().len(), 3);
    // Each request is counted by its outcome; none of a tenant's provider's.
    let requests = |source: &str, outcome: &str| {
        format!(
            "llm_requests_total{{source=\"{source}\",protocol=\"openai\",outcome=\"{outcome}\"}}"
        )
    };
    for outcome in ["rate_limited", "server_error", "ok"] {
        assert_eq!(
            app.metric(&requests("fleet", outcome)).await,
            1.0,
            "{outcome}"
        );
    }
    assert_eq!(app.metric(&requests("fleet", "timeout")).await, 0.0);
    assert_eq!(app.metric(&requests("tenant", "ok")).await, 0.0);
}

#[sqlx::test(migrations = false)]
async fn an_llm_that_keeps_failing_leaves_the_deterministic_answer(pool: sqlx::PgPool) {
    let failing = Answer::refusing(500);
    let (mut app, fake) = start_with_llm(pool, vec![failing; 3]).await;
    let token = app.sign_up().await.token;
    let run = app
        .execute(&token, "text_translator", translate("Hello world"))
        .await
        .unwrap();
    assert!(!run.llm_used);
    let out = json(&run.output_json);
    assert_eq!(out["method"], "glossary");
    assert_eq!(out["translated_text"], "Bonjour monde");
    assert_eq!(
        fake.seen.lock().unwrap().len(),
        3,
        "one call and two retries"
    );
}

pub const SLOW: Answer = Answer {
    delay: Duration::from_secs(20),
    ..OK
};

#[sqlx::test(migrations = false)]
async fn a_run_past_its_deadline_fails_promptly(pool: sqlx::PgPool) {
    let (mut app, _fake) = start_with_llm(pool, vec![SLOW]).await;
    let token = app.sign_up().await.token;
    let started = Instant::now();
    let run = app
        .execute_with(
            &token,
            pb::ExecuteAgentRequest {
                agent: "text_translator".into(),
                input_json: translate("Hello").to_string(),
                deadline_ms: 300,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(run.status, pb::AgentRunStatus::Failed as i32);
    assert_eq!(run.error.unwrap().code, "deadline_exceeded");
    assert!(run.duration_ms >= 300);
}

#[sqlx::test(migrations = false)]
async fn a_run_in_flight_can_be_cancelled_and_its_id_is_taken_until_then(pool: sqlx::PgPool) {
    let (mut app, fake) = start_with_llm(pool, vec![SLOW]).await;
    let token = app.sign_up().await.token;
    let request = pb::ExecuteAgentRequest {
        agent: "text_translator".into(),
        input_json: translate("Hello").to_string(),
        run_id: Some("run-to-cancel".into()),
        ..Default::default()
    };
    let mut client = app.client.clone();
    let (run_token, run_request) = (token.clone(), request.clone());
    let in_flight = tokio::spawn(async move {
        client
            .execute_agent(authed(run_request, &run_token))
            .await
            .map(tonic::Response::into_inner)
    });
    fake.arrived.notified().await;

    // Another request under the run's id is refused; the same request waits for the run.
    let other = pb::ExecuteAgentRequest {
        input_json: translate("Goodbye").to_string(),
        ..request.clone()
    };
    let status = app.execute_with(&token, other).await.unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    let mut client = app.client.clone();
    let (attach_token, attach_request) = (token.clone(), request.clone());
    let attached = tokio::spawn(async move {
        client
            .execute_agent(authed(attach_request, &attach_token))
            .await
            .map(tonic::Response::into_inner)
    });

    app.client
        .cancel_agent_run(authed(
            pb::CancelAgentRunRequest {
                run_id: "run-to-cancel".into(),
            },
            &token,
        ))
        .await
        .unwrap();
    let run = tokio::time::timeout(Duration::from_secs(5), in_flight)
        .await
        .expect("the run ends soon after its cancellation")
        .unwrap()
        .unwrap();
    assert_eq!(run.status, pb::AgentRunStatus::Cancelled as i32);
    let attached = attached.await.unwrap().unwrap();
    assert_eq!(attached, run, "the same request gets the same run");
    assert_eq!(run.error.unwrap().code, "cancelled");

    let status = app
        .client
        .cancel_agent_run(authed(
            pb::CancelAgentRunRequest {
                run_id: "run-to-cancel".into(),
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

/// Runs the planner on `goal` with the LLM mode `llm`.
async fn planned(app: &mut TestRunner, token: &str, goal: &str, llm: pb::LlmMode) -> pb::AgentRun {
    let request = pb::ExecuteAgentRequest {
        agent: "planner".into(),
        input_json: json!({ "goal": goal }).to_string(),
        llm: llm as i32,
        ..Default::default()
    };
    app.completed(token, request).await
}

const VENUES: &str = r#"{"agents": [{"agent": "backend_builder", "why": "gigs are booked through an API"},
  {"agent": "db_schema", "why": "venues and gigs are stored"}],
 "features": ["api"],
 "entities": [{"name": "Venue", "fields": [{"name": "title", "type": "string"}, {"name": "capacity", "type": "integer"}]},
              {"name": "Gig", "fields": [{"name": "venue", "type": "reference", "entity": "Venue"}, {"name": "starts_at", "type": "datetime"}]}]}"#;

#[sqlx::test(migrations = false)]
async fn the_planner_sends_a_refused_reading_back_and_plans_with_a_valid_one(pool: sqlx::PgPool) {
    let script = vec![
        Answer::saying("Sure! Venues and gigs."),
        Answer::saying(VENUES),
    ];
    let (mut app, fake) = start_with_llm(pool, script).await;
    let token = app.sign_up().await.token;
    let goal = "somewhere to book live music nights";
    let run = planned(&mut app, &token, goal, pb::LlmMode::Preferred).await;
    assert!(run.llm_used);
    let plan = json(&run.output_json);
    assert_eq!(plan["planned_by"], "model", "{plan}");
    let agents: Vec<&str> = plan["chain"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| step["agent"].as_str().unwrap())
        .collect();
    assert_eq!(
        agents,
        ["db_schema", "backend_builder"],
        "in dependency order"
    );
    assert_eq!(plan["steps"][1]["why"], "gigs are booked through an API");
    assert_eq!(plan["input"]["entities"][1]["name"], "Gig");
    assert_eq!(plan["input"]["entities"][1]["fields"][0]["entity"], "Venue");
    assert_eq!(
        plan["analysis"]["identified_entities"],
        json!(["Venue", "Gig"])
    );

    let seen = fake.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "asked again once");
    let system = seen[0].1["messages"][0]["content"].as_str().unwrap();
    assert!(system.contains("- db_schema: "), "the agents are listed");
    let again = seen[1].1["messages"][1]["content"].as_str().unwrap();
    assert!(again.contains(goal) && again.contains("refused"), "{again}");
}

#[sqlx::test(migrations = false)]
async fn a_model_that_keeps_answering_badly_leaves_the_rules_plan(pool: sqlx::PgPool) {
    let bad = Answer::saying(r#"{"agents": [{"agent": "make_coffee"}], "entities": []}"#);
    let (mut app, fake) = start_with_llm(pool, vec![bad; 3]).await;
    let token = app.sign_up().await.token;
    let goal = "a blog with posts and comments";
    let plan = json(
        &planned(&mut app, &token, goal, pb::LlmMode::Preferred)
            .await
            .output_json,
    );
    assert_eq!(plan["planned_by"], "rules", "{plan}");
    assert_eq!(
        plan["analysis"]["identified_entities"],
        json!(["Post", "Comment"])
    );
    assert_eq!(
        fake.seen.lock().unwrap().len(),
        3,
        "three asks, then the rules"
    );

    // The planner asks no model unless the caller prefers it.
    let plan = json(
        &planned(&mut app, &token, goal, pb::LlmMode::Unspecified)
            .await
            .output_json,
    );
    assert_eq!(plan["planned_by"], "rules");
    assert_eq!(fake.seen.lock().unwrap().len(), 3);
}

/// The planner asks for its reading as JSON of a schema (`response_format`); a server that
/// refuses the field is asked again without it, and its answer is read all the same.
#[sqlx::test(migrations = false)]
async fn the_planner_asks_for_its_schema_and_a_server_refusing_it_is_asked_without(
    pool: sqlx::PgPool,
) {
    let script = vec![Answer::refusing(400), Answer::saying(VENUES)];
    let (mut app, fake) = start_with_llm(pool, script).await;
    let token = app.sign_up().await.token;
    let run = planned(
        &mut app,
        &token,
        "live music nights",
        pb::LlmMode::Preferred,
    )
    .await;
    assert_eq!(json(&run.output_json)["planned_by"], "model");
    let seen = fake.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    let format = &seen[0].1["response_format"];
    assert_eq!(format["type"], "json_schema");
    assert_eq!(format["json_schema"]["name"], "plan_reading");
    let schema = &format["json_schema"]["schema"];
    let agents = &schema["properties"]["agents"]["items"]["properties"]["agent"]["enum"];
    assert!(
        agents.as_array().unwrap().contains(&json!("db_schema")),
        "{schema}"
    );
    assert!(
        seen[1].1.get("response_format").is_none(),
        "asked again without it"
    );
}

/// An answer of the wrong shape is sent back with why, and the corrected one is taken.
#[sqlx::test(migrations = false)]
async fn a_refused_structured_answer_is_repaired_once(pool: sqlx::PgPool) {
    let too_long = r#"{"tagline": "An extremely long tagline that goes far past the sixty characters allowed", "short_description": "x", "first_comment": "y"}"#;
    let fixed = r#"{"tagline": "Agents that ship software", "short_description": "Chains of agents.", "first_comment": "Hello!"}"#;
    let script = vec![Answer::saying(too_long), Answer::saying(fixed)];
    let (mut app, fake) = start_with_llm(pool, script).await;
    let token = app.sign_up().await.token;
    let out = app
        .output(&token, "product_hunt_copywriter", launch_input())
        .await;
    assert_eq!(
        (out["method"].as_str(), out["tagline"].as_str()),
        (Some("llm"), Some("Agents that ship software"))
    );
    let seen = fake.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0].1["response_format"]["json_schema"]["schema"]["properties"]["tagline"]["maxLength"],
        60
    );
    let messages = seen[1].1["messages"].as_array().unwrap();
    assert_eq!(messages[2]["content"], too_long, "its answer is shown back");
    assert!(
        messages[3]["content"].as_str().unwrap().contains("refused"),
        "{messages:?}"
    );
}

/// copilot's model calls hello_world as a tool: it runs through the normal run path (its own
/// run, counted), and its output goes back to the model, whose answer is the suggestion. Bad
/// arguments and agents not offered are told back to the model, and run nothing.
#[sqlx::test(migrations = false)]
async fn copilot_s_model_runs_the_agents_it_calls_and_reads_their_output(pool: sqlx::PgPool) {
    const CALLS: &[(&str, &str)] = &[
        ("hello_world", r#"{"name": "Ada"}"#),
        ("hello_world", r#"{"nom": "Ada"}"#),
        ("deploy_executor", r#"{"project_name": "x"}"#),
    ];
    let script = vec![
        Answer::calling(CALLS),
        Answer::saying("Line 1: greet with `Hello, Ada!`."),
    ];
    let (mut app, fake) = start_with_llm(pool, script).await;
    let token = app.sign_up().await.token;
    let run = app
        .execute(&token, "copilot", json!({"code": "print('hi')"}))
        .await
        .unwrap();
    assert_eq!(run.status, pb::AgentRunStatus::Completed as i32);
    let out = json(&run.output_json);
    assert_eq!(out["method"], "llm", "{out}");
    assert_eq!(
        out["suggestions"][0]["message"],
        "Line 1: greet with `Hello, Ada!`."
    );
    let tool_runs = out["tool_runs"].as_array().unwrap();
    assert_eq!(tool_runs.len(), 1, "only the valid call ran: {out}");
    assert_eq!(tool_runs[0]["agent"], "hello_world");
    assert_eq!(tool_runs[0]["status"], "completed");
    assert_ne!(tool_runs[0]["run_id"], run.run_id.as_str());
    assert_eq!(
        app.metric(r#"agent_runs_total{agent="hello_world",outcome="completed"}"#)
            .await,
        1.0,
        "the tool ran as a run of its own"
    );
    assert_eq!(
        (run.prompt_tokens, run.completion_tokens),
        (42, 8),
        "both turns counted"
    );

    let seen = fake.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    let offered: Vec<&str> = seen[0].1["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| tool["function"]["name"].as_str().unwrap())
        .collect();
    assert!(offered.contains(&"hello_world") && !offered.contains(&"copilot"));
    assert!(!offered.contains(&"deploy_executor"), "{offered:?}");
    let messages = seen[1].1["messages"].as_array().unwrap();
    assert_eq!(messages[2]["tool_calls"].as_array().unwrap().len(), 3);
    let results: Vec<(&str, &str)> = messages[3..]
        .iter()
        .map(|m| {
            (
                m["tool_call_id"].as_str().unwrap(),
                m["content"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(results.len(), 3, "{messages:?}");
    assert_eq!(
        results[0],
        ("call_0", r#"{"output":{"message":"Hello, Ada!"}}"#)
    );
    assert!(results[1].1.contains("invalid arguments") && results[1].1.contains("nom"));
    assert!(
        results[2].1.contains("not a tool offered"),
        "{}",
        results[2].1
    );
}

/// A model that keeps calling tools is stopped after its turns, and copilot answers from its
/// rules.
#[sqlx::test(migrations = false)]
async fn a_model_that_keeps_calling_tools_is_stopped(pool: sqlx::PgPool) {
    const CALL: &[(&str, &str)] = &[("hello_world", "{}")];
    let (mut app, fake) = start_with_llm(pool, vec![Answer::calling(CALL); 10]).await;
    let token = app.sign_up().await.token;
    let out = app
        .output(&token, "copilot", json!({"code": "var x = 1; // TODO"}))
        .await;
    assert_eq!(out["method"], "static");
    assert_eq!(
        fake.seen.lock().unwrap().len(),
        4,
        "four turns, then the rules"
    );
}

/// readme_writer puts the model's overview under the description; an overview with Markdown
/// structure is refused and the README is the template's.
#[sqlx::test(migrations = false)]
async fn the_readme_s_overview_is_the_model_s_when_plain(pool: sqlx::PgPool) {
    const OVERVIEW: &str = "Team Tasks keeps each project's tasks in one place.";
    let script = vec![
        Answer::saying(OVERVIEW),
        Answer::saying("# Overview\nTeam Tasks is great."),
    ];
    let (mut app, fake) = start_with_llm(pool, script).await;
    let token = app.sign_up().await.token;
    let input = json!({"project_name": "Team Tasks", "description": "Projects and their tasks.",
        "entities": [{"name": "Task", "fields": [{"name": "title", "type": "string"}]}]});
    for (method, overview) in [("llm", true), ("template", false)] {
        let run = app
            .execute(&token, "readme_writer", input.clone())
            .await
            .unwrap();
        assert_eq!(json(&run.output_json)["method"], method);
        let readme = crate::project::file(&mut app, &token, &run.workspace_id, "README.md").await;
        assert_eq!(readme.contains(OVERVIEW), overview, "{readme}");
        assert!(
            readme.starts_with("# Team Tasks\n\nProjects and their tasks.\n\n"),
            "{readme}"
        );
        assert!(!readme.contains("# Overview"));
    }
    let asked = fake.seen.lock().unwrap()[0].1["messages"][1]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(asked.contains("Task (title)"), "{asked}");
}

/// A tenant's LLM use per day: its tokens and their cost at the operator's prices (the answered
/// model priced by the longest name it starts with); another tenant sees none of it.
#[sqlx::test(migrations = false)]
async fn a_tenant_s_usage_is_its_tokens_and_their_cost_per_day(pool: sqlx::PgPool) {
    let (mut app, _fake, _) = start_with_fake_llm(pool, vec![], |config| {
        config.llm_prices =
            sankalpa_agent_runner::Prices::parse("fake-model=2:8,fake=100:100").unwrap();
    })
    .await;
    let ada = app.sign_up().await.token;
    let bob = app.sign_up().await.token;
    translated(&mut app, &ada, "Hello world").await;
    translated(&mut app, &ada, "Hello there").await;
    let usage = |token: &str, days| {
        let mut client = app.client.clone();
        let request = authed(pb::GetModelUsageRequest { days }, token);
        async move { client.get_model_usage(request).await }
    };
    let answer = usage(&ada, 0).await.unwrap().into_inner();
    assert!(answer.priced);
    assert_eq!(answer.tokens_per_day, 1_000_000);
    assert_eq!(answer.days.len(), 1);
    let today = chrono::Utc::now().date_naive().to_string();
    assert_eq!(answer.days[0].day, today);
    assert_eq!(answer.days[0].tokens, 50, "two answers of 21 + 4 tokens");
    // fake-model-2024 is priced as fake-model: 2 * (21 * $2 + 4 * $8) per million tokens.
    let expected = 2.0 * (21.0 * 2.0 + 4.0 * 8.0) / 1e6;
    assert!(
        (answer.days[0].cost_usd - expected).abs() < 1e-12,
        "{}",
        answer.days[0].cost_usd
    );
    assert!(usage(&bob, 7).await.unwrap().into_inner().days.is_empty());
    let refused = usage(&ada, 91).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(crate::violated_fields(&refused), ["days"]);
}
