//! Bounds on what one request can make the orchestrator parse, store, publish or hold: a bound
//! exceeded is INVALID_ARGUMENT naming the field (or a step failing with a clear code), never a
//! crash, and it leaves the orchestrator serving everyone else.

use std::time::{Duration, Instant};

use sankalpa_kit::problem::field_violations;
use sankalpa_proto::v1 as pb;
use sankalpa_testkit::Events;
use serde_json::{Value, json};
use tonic::Code;

use crate::{Stack, authed_as, inline_run, json, start, start_with, step};

/// The fields an INVALID_ARGUMENT names.
fn refused_fields(status: &tonic::Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    field_violations(status)
        .into_iter()
        .map(|violation| violation.field)
        .collect()
}

/// The fields ValidateChain lists as wrong in `definition`.
async fn invalid_fields(stack: &Stack, definition: &str) -> Vec<String> {
    let answer = stack
        .chains
        .clone()
        .validate_chain(stack.authed(pb::ValidateChainRequest {
            definition_json: definition.to_owned(),
        }))
        .await
        .expect("ValidateChain answers")
        .into_inner();
    assert!(!answer.valid);
    answer
        .violations
        .into_iter()
        .map(|violation| violation.field)
        .collect()
}

/// A run through the stack, so the first call waits for the orchestrator to know auth's keys.
async fn one_run_completes(stack: &mut Stack) {
    let run = stack
        .execute(json!({"agents": ["add_one"]}), json!({"n": 1}), true)
        .await;
    assert_eq!(run.status(), pb::ChainRunStatus::Completed, "{run:#?}");
}

#[sqlx::test(migrations = false)]
async fn a_deep_or_long_expression_is_refused_by_field_and_the_orchestrator_keeps_serving(
    pool: sqlx::PgPool,
) {
    let mut stack = start(pool).await;
    one_run_completes(&mut stack).await;
    let conditions = [
        format!("{}true", "!".repeat(200_000)),
        format!("{}true{}", "(".repeat(100_000), ")".repeat(100_000)),
        // Short enough, but nested past the depth.
        format!("{}true", "!".repeat(1_000)),
        format!("{}true{}", "[".repeat(1_000), "]".repeat(1_000)),
    ];
    for when in &conditions {
        let definition = json!({"steps": [{"id": "a", "agent": "add_one", "when": when}]});
        assert_eq!(
            invalid_fields(&stack, &definition.to_string()).await,
            ["steps[0].when"]
        );
        let created = stack
            .chains
            .clone()
            .create_chain(stack.authed(pb::CreateChainRequest {
                name: "deep".to_owned(),
                definition_json: definition.to_string(),
                ..Default::default()
            }))
            .await
            .unwrap_err();
        assert_eq!(refused_fields(&created), ["steps[0].when"]);
        let executed = stack
            .try_execute(definition, json!({}), true, "")
            .await
            .unwrap_err();
        assert_eq!(refused_fields(&executed), ["steps[0].when"]);
    }
    let mapped = format!("${{{}input.n{}}}", "(".repeat(1_000), ")".repeat(1_000));
    let definition = json!({"steps": [{"id": "a", "agent": "add_one", "input": {"n": mapped}}]});
    let executed = stack
        .try_execute(definition, json!({}), true, "")
        .await
        .unwrap_err();
    assert_eq!(refused_fields(&executed), ["steps[0].input.n"]);

    one_run_completes(&mut stack).await;
    assert_eq!(
        stack.agents.record.calls().len(),
        2,
        "only the normal runs ran"
    );
}

/// An object nested `depth` levels: `{"a": {"a": ... 1}}`.
fn nested(depth: usize) -> Value {
    (0..depth).fold(json!(1), |inner, _| json!({ "a": inner }))
}

#[sqlx::test(migrations = false)]
async fn a_definition_past_any_of_its_bounds_is_refused_by_field(pool: sqlx::PgPool) {
    let mut stack = start(pool).await;
    one_run_completes(&mut stack).await;
    let one_step = |extra: Value| {
        let mut step = json!({"id": "a", "agent": "add_one"});
        step.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({ "steps": [step] }).to_string()
    };

    let huge = one_step(json!({"input": {"pad": "x".repeat(1024 * 1024)}}));
    assert_eq!(invalid_fields(&stack, &huge).await, ["definition_json"]);

    let deep = one_step(json!({ "input": nested(40) }));
    assert_eq!(invalid_fields(&stack, &deep).await, ["steps[0].input"]);

    let many: serde_json::Map<String, Value> = (0..1001)
        .map(|index| (format!("k{index}"), json!("${input.n}")))
        .collect();
    let many = one_step(json!({ "input": many }));
    assert_eq!(invalid_fields(&stack, &many).await, ["steps"]);

    let needy = json!({"steps": [
        {"id": "a", "agent": "add_one"},
        {"id": "b", "agent": "add_one", "needs": vec!["a"; 201]},
    ]});
    assert_eq!(
        invalid_fields(&stack, &needy.to_string()).await,
        ["steps[1].needs"]
    );

    let long_need =
        json!({"steps": [{"id": "a", "agent": "add_one", "needs": ["n".repeat(10_000)]}]});
    let answer = stack
        .chains
        .clone()
        .validate_chain(stack.authed(pb::ValidateChainRequest {
            definition_json: long_need.to_string(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.violations.len(), 1, "{:?}", answer.violations);
    assert_eq!(answer.violations[0].field, "steps[0].needs[0]");
    assert!(answer.violations[0].message.len() <= 200);

    let nul = one_step(json!({"input": {"a\0": 1}}));
    assert_eq!(invalid_fields(&stack, &nul).await, ["definition_json"]);

    let named = json!({"name": "n".repeat(101), "agents": ["add_one"]}).to_string();
    assert_eq!(invalid_fields(&stack, &named).await, ["name"]);

    // Every problem of 150 steps would not fit a response's trailers: the first are listed,
    // and how many more there are.
    let bad_agents: Vec<Value> = (0..150)
        .map(|index| json!({"id": format!("s{index}"), "agent": "Bad"}))
        .collect();
    let refused = stack
        .try_execute(json!({ "steps": bad_agents }), json!({}), true, "")
        .await
        .unwrap_err();
    let violations = field_violations(&refused);
    assert_eq!(violations.len(), 16);
    let last = violations.last().unwrap();
    assert_eq!(last.field, "definition_json");
    assert_eq!(last.message, "135 more problems are not listed");

    let listed = stack
        .chains
        .list_runs(stack.authed(pb::ListRunsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.runs.len(), 1, "only the first run was stored");
}

#[sqlx::test(migrations = false)]
async fn a_run_request_past_any_of_its_bounds_is_refused_by_field(pool: sqlx::PgPool) {
    let mut stack = start(pool).await;
    one_run_completes(&mut stack).await;
    let definition = json!({"agents": ["add_one"]});
    let refusal = |request: pb::ExecuteChainRequest| {
        let mut chains = stack.chains.clone();
        let request = stack.authed(request);
        async move { chains.execute_chain(request).await.unwrap_err() }
    };

    let big = json!({"pad": "x".repeat(1024 * 1024)});
    let refused = refusal(inline_run(&definition, &big, "")).await;
    assert_eq!(refused_fields(&refused), ["input_json"]);
    let refused = refusal(inline_run(&definition, &nested(40), "")).await;
    assert_eq!(refused_fields(&refused), ["input_json"]);
    // Postgres's jsonb cannot hold a NUL: refused, rather than failing the write.
    let refused = refusal(inline_run(&definition, &json!({"a": ["\0"]}), "")).await;
    assert_eq!(refused_fields(&refused), ["input_json"]);
    let refused = refusal(inline_run(&definition, &json!({}), &"k".repeat(300))).await;
    assert_eq!(refused_fields(&refused), ["idempotency_key"]);
    for session in ["has space".to_owned(), "s".repeat(300)] {
        let mut request = inline_run(&definition, &json!({}), "");
        request.session_id = Some(session);
        assert_eq!(refused_fields(&refusal(request).await), ["session_id"]);
    }

    let mut chains = stack.chains.clone();
    for (field, request) in [
        (
            "description",
            pb::CreateChainRequest {
                name: "described".to_owned(),
                description: "d".repeat(2001),
                definition_json: definition.to_string(),
                installed_from: String::new(),
            },
        ),
        (
            "installed_from",
            pb::CreateChainRequest {
                name: "installed".to_owned(),
                description: String::new(),
                definition_json: definition.to_string(),
                installed_from: "i".repeat(201),
            },
        ),
    ] {
        let refused = chains
            .create_chain(stack.authed(request))
            .await
            .unwrap_err();
        assert_eq!(refused_fields(&refused), [field]);
    }
    let listed = chains
        .list_chains(stack.authed(pb::ListChainsRequest {
            origin: pb::ChainOrigin::Tenant.into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.chains.is_empty(), "nothing was stored");
    assert_eq!(stack.agents.record.calls().len(), 1, "nothing more ran");
}

/// The events of one run, in order, as `action` or `action step`, until its terminal event;
/// panics if they do not all arrive by `deadline`.
async fn events_until_the_end(
    events: &mut Events,
    deadline: Instant,
) -> Vec<sankalpa_kit::events::CloudEvent> {
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (_, event) = events
            .next_within(left)
            .await
            .unwrap_or_else(|| panic!("the run's events stopped after {seen:?}"));
        let terminal = ["run.completed", "run.failed", "run.cancelled"]
            .iter()
            .any(|action| event.kind.ends_with(action));
        seen.push(event);
        if terminal {
            return seen;
        }
    }
}

#[sqlx::test(migrations = false)]
async fn a_huge_agent_error_is_cut_and_another_tenants_events_still_flow(pool: sqlx::PgPool) {
    let mut stack = start(pool).await;
    let loud = stack
        .execute(
            json!({"steps": [{"id": "loud", "agent": "fail", "input": {"error_bytes": 2_000_000}}]}),
            json!({}),
            true,
        )
        .await;
    assert_eq!(loud.status(), pb::ChainRunStatus::Failed, "{loud:#?}");
    let stored = step(&loud, "loud").error.as_ref().unwrap();
    assert!(
        stored.message.len() <= 4096,
        "{} bytes",
        stored.message.len()
    );
    assert!(stored.message.starts_with("eeee"));
    assert!(
        stored.message.ends_with("(2000000 bytes truncated)"),
        "{}",
        &stored.message[4000..]
    );
    let run_error = loud.error.as_ref().unwrap();
    assert!(
        run_error.message.len() <= 4096,
        "{} bytes",
        run_error.message.len()
    );
    assert!(run_error.message.starts_with("step `loud` failed: eeee"));

    let mut failed = Events::read(&stack.infra, &format!("chains.*.{}.step.failed", loud.id)).await;
    let (_, event) = failed.next().await;
    let message = event.data["error"]["message"]
        .as_str()
        .expect("the event says why");
    assert!(
        message.len() <= 4096 && message.starts_with("eeee"),
        "{}",
        message.len()
    );

    let other = stack.other_tenant().await;
    let submitted = Instant::now();
    let run = stack
        .chains
        .execute_chain(authed_as(
            &other,
            inline_run(&json!({"agents": ["add_one"]}), &json!({"n": 1}), ""),
        ))
        .await
        .unwrap()
        .into_inner();
    let mut events = Events::read(&stack.infra, &format!("chains.*.{}.>", run.id)).await;
    let seen: Vec<String> = events_until_the_end(&mut events, submitted + Duration::from_secs(2))
        .await
        .into_iter()
        .map(|event| event.kind.trim_start_matches("sankalpa.chains.").to_owned())
        .collect();
    assert_eq!(
        seen,
        [
            "run.started",
            "step.started",
            "step.completed",
            "run.completed"
        ]
    );
}

#[sqlx::test(migrations = false)]
async fn a_run_whose_outputs_pass_its_limit_fails_once_and_is_not_retried(pool: sqlx::PgPool) {
    let mut stack = start_with(pool, |config| config.max_run_output_bytes = 100_000).await;
    let padded = |id: &str, needs: &[&str]| {
        json!({"id": id, "agent": "work", "needs": needs,
            "input": {"tag": id, "pad_bytes": 40_000},
            "retry": {"attempts": 3}})
    };
    let run = stack
        .execute(
            json!({"steps": [padded("a", &[]), padded("b", &["a"]), padded("c", &["b"])]}),
            json!({}),
            true,
        )
        .await;
    assert_eq!(run.status(), pb::ChainRunStatus::Failed, "{run:#?}");
    let error = run.error.as_ref().unwrap();
    assert_eq!(error.code, "output_too_large");
    assert!(
        error.message.starts_with("step `c` failed:") && error.message.contains("100000 bytes"),
        "{error:?}"
    );
    let c = step(&run, "c");
    assert_eq!(c.status(), pb::StepStatus::Failed);
    assert_eq!(c.attempts, 1);
    assert!(c.output_json.is_empty());
    let output = json(&run.output_json);
    assert_eq!(
        output.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert!(run.output_json.len() <= 100_000);

    // Past a lease and several claim rounds, the run is still failed and nothing ran again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let again = stack.get_run(&run.id).await;
    assert_eq!(again.status(), pb::ChainRunStatus::Failed);
    assert_eq!(again.finished_at, run.finished_at);
    assert_eq!(stack.agents.record.calls().len(), 3);
}

#[sqlx::test(migrations = false)]
async fn a_step_output_past_its_limit_fails_the_step_without_retrying(pool: sqlx::PgPool) {
    let mut stack = start_with(pool, |config| config.max_step_output_bytes = 10_000).await;
    let run = stack
        .execute(
            json!({"steps": [{"id": "big", "agent": "work",
                "input": {"tag": "big", "pad_bytes": 20_000}, "retry": {"attempts": 3}}]}),
            json!({}),
            true,
        )
        .await;
    assert_eq!(run.status(), pb::ChainRunStatus::Failed, "{run:#?}");
    let big = step(&run, "big");
    let error = big.error.as_ref().unwrap();
    assert_eq!(error.code, "output_too_large");
    assert!(error.message.contains("at most 10000 bytes"), "{error:?}");
    assert_eq!(big.attempts, 1);
    assert_eq!(stack.agents.record.tagged("big").len(), 1);
}

#[sqlx::test(migrations = false)]
async fn a_mapping_or_a_list_that_multiplies_an_output_fails_its_step_clearly(pool: sqlx::PgPool) {
    let mut stack = start_with(pool, |config| config.max_step_input_bytes = 100_000).await;
    let many_refs = format!("[{}]", vec!["steps.a.pad"; 40].join(", "));
    let run = stack
        .execute(
            json!({"steps": [
                {"id": "a", "agent": "work", "input": {"tag": "a", "pad_bytes": 30_000}},
                {"id": "mapped", "agent": "work", "needs": ["a"], "on_failure": "continue",
                    "input": {"tag": "mapped", "copies": [
                        "${steps.a}", "${steps.a}", "${steps.a}", "${steps.a}"]}},
                {"id": "listed", "agent": "work", "needs": ["a"], "on_failure": "continue",
                    "when": format!("size({many_refs}) == 40"), "input": {"tag": "listed"}},
                {"id": "fine", "agent": "work", "needs": ["a"],
                    "input": {"tag": "fine", "copy": "${steps.a}"}},
            ]}),
            json!({}),
            true,
        )
        .await;
    assert_eq!(run.status(), pb::ChainRunStatus::Completed, "{run:#?}");
    let mapped = step(&run, "mapped");
    assert_eq!(mapped.status(), pb::StepStatus::Failed);
    let error = mapped.error.as_ref().unwrap();
    assert_eq!(error.code, "input_too_large");
    assert!(error.message.contains("100000 bytes"), "{error:?}");
    let listed = step(&run, "listed");
    assert_eq!(listed.status(), pb::StepStatus::Failed);
    let error = listed.error.as_ref().unwrap();
    assert_eq!(error.code, "invalid_input");
    assert!(
        error.message.contains("more than 1048576 bytes"),
        "{error:?}"
    );
    assert_eq!(step(&run, "fine").status(), pb::StepStatus::Completed);
    assert!(stack.agents.record.tagged("mapped").is_empty());
    assert!(stack.agents.record.tagged("listed").is_empty());
}
