use std::time::{Duration, Instant};

use futures::StreamExt;
use sankalpa_proto::v1 as pb;
use sankalpa_proto::v1::auth_service_client::AuthServiceClient;
use serde_json::json;
use tonic::Code;

use crate::{action_of, authed_as, inline_run, json, start, start_with, step};

#[sqlx::test(migrations = false)]
async fn sequential_steps_pass_their_outputs_along(pool: sqlx::PgPool) {
    let mut stack = start(pool).await;
    let run = stack
        .execute(
            json!({"agents": ["add_one", "add_one", "add_one"]}),
            json!({"n": 1, "keep": "me"}),
            true,
        )
        .await;
    assert_eq!(run.status(), pb::ChainRunStatus::Completed, "{run:#?}");
    assert_eq!(
        json(&run.output_json),
        json!({"add_one": {"n": 2}, "add_one_2": {"n": 3}, "add_one_3": {"n": 4}})
    );
    // The chain input, merged with the needed step's output, the later winning.
    assert_eq!(
        json(&step(&run, "add_one_3").input_json),
        json!({"n": 3, "keep": "me"})
    );
    assert!(
        run.steps
            .iter()
            .all(|s| s.attempts == 1 && s.status() == pb::StepStatus::Completed)
    );
    // Steps called agent-runner with the run's API key, not the user's token.
    assert!(
        stack
            .agents
            .record
            .calls()
            .iter()
            .all(|call| call.token_kind == "api_key")
    );
}

async fn tenant_of(pool: &sqlx::PgPool, run: &str) -> String {
    sqlx::query_scalar("SELECT tenant_id::text FROM chains.chain_runs WHERE id = $1::uuid")
        .bind(run)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Chain-run API keys of `tenant` that auth still accepts, and all it made.
async fn run_keys(pool: &sqlx::PgPool, tenant: &str) -> (i64, i64) {
    sqlx::query_as(
        "SELECT count(*) FILTER (WHERE revoked_at IS NULL), count(*) FROM auth.api_keys
         WHERE purpose = 'chain_run' AND tenant_id = $1::uuid",
    )
    .bind(tenant)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Polls `tenant`'s chain-run keys until `wanted` (live, made) holds.
async fn keys_come_to(pool: &sqlx::PgPool, tenant: &str, wanted: (i64, i64)) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let keys = run_keys(pool, tenant).await;
        if keys == wanted {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "keys {keys:?}, wanted {wanted:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[sqlx::test(migrations = false)]
async fn a_callers_runs_share_one_key_revoked_once_no_run_needs_it(pool: sqlx::PgPool) {
    let share = Duration::from_secs(2);
    let mut stack = start_with(pool, |config| config.credential_share = share).await;
    let shared_from = Instant::now();
    let gated = json!({"steps": [
        {"id": "approve", "approval": {"prompt": "Go?", "approvers": ["role:admin"]}},
        {"id": "after", "agent": "add_one", "needs": ["approve"], "input": {"n": 1}},
    ]});
    let waiting = stack.execute(gated, json!({}), false).await;
    for _ in 0..3 {
        let run = stack
            .execute(json!({"agents": ["add_one"]}), json!({"n": 1}), true)
            .await;
        assert_eq!(run.status(), pb::ChainRunStatus::Completed, "{run:#?}");
    }
    let ada = tenant_of(&stack.pool, &waiting.id).await;
    assert_eq!(
        run_keys(&stack.pool, &ada).await,
        (1, 1),
        "four runs, one key"
    );

    // Another caller has a key of its own.
    let mallory = stack.other_tenant().await;
    let mut chains = stack.chains.clone();
    let theirs = chains
        .execute_chain(authed_as(
            &mallory,
            inline_run(&json!({"agents": ["add_one"]}), &json!({"n": 1}), ""),
        ))
        .await
        .expect("the other tenant's run is accepted")
        .into_inner();
    let theirs = stack
        .run_until_as(&mallory, &theirs.id, |run| run.finished_at.is_some())
        .await;
    let mallory_tenant = tenant_of(&stack.pool, &theirs.id).await;
    assert_ne!(mallory_tenant, ada);
    assert_eq!(run_keys(&stack.pool, &mallory_tenant).await, (1, 1));

    // Once the sharing time is over, the key no run needs is revoked; the one a waiting run
    // still needs is not.
    keys_come_to(&stack.pool, &mallory_tenant, (0, 1)).await;
    assert!(shared_from.elapsed() >= share);
    assert_eq!(run_keys(&stack.pool, &ada).await, (1, 1));
    let mut chains = stack.chains.clone();
    chains
        .approve_step(stack.authed(pb::ApproveStepRequest {
            run_id: waiting.id.clone(),
            step_id: "approve".to_owned(),
            input_json: String::new(),
            comment: String::new(),
        }))
        .await
        .expect("an admin approves");
    let done = stack
        .run_until(&waiting.id, |run| run.finished_at.is_some())
        .await;
    assert_eq!(done.status(), pb::ChainRunStatus::Completed, "{done:#?}");
    keys_come_to(&stack.pool, &ada, (0, 1)).await;

    // A later run has a new key.
    stack
        .execute(json!({"agents": ["add_one"]}), json!({"n": 1}), true)
        .await;
    assert_eq!(run_keys(&stack.pool, &ada).await, (1, 2));
}

/// A person may revoke a run's key (`/api/keys` lists it): the runs holding it fail at their
/// next step, naming why, rather than waiting for it as for an outage, and the caller's next
/// run gets a new key rather than the shared, revoked one.
#[sqlx::test(migrations = false)]
async fn a_run_whose_key_was_revoked_fails_at_once_and_the_next_run_gets_a_new_key(
    pool: sqlx::PgPool,
) {
    let mut stack = start(pool).await;
    let first = stack
        .execute(json!({"agents": ["add_one"]}), json!({"n": 1}), true)
        .await;
    assert_eq!(first.status(), pb::ChainRunStatus::Completed, "{first:#?}");
    let tenant = tenant_of(&stack.pool, &first.id).await;
    let key: String =
        sqlx::query_scalar("SELECT key_id FROM chains.credentials WHERE tenant_id = $1::uuid")
            .bind(&tenant)
            .fetch_one(&stack.pool)
            .await
            .unwrap();
    let mut applied = stack.agents.revocations();
    let mut auth = AuthServiceClient::connect(stack.auth.grpc_url())
        .await
        .unwrap();
    auth.revoke_api_key(stack.authed(pb::RevokeApiKeyRequest { id: key }))
        .await
        .expect("an admin revokes the run's key");
    // The refusal below is agent-runner's: wait until the revocation has reached it.
    tokio::time::timeout(Duration::from_secs(10), applied.changed())
        .await
        .expect("the revocation reaches agent-runner")
        .unwrap();

    let refused = stack
        .execute(json!({"agents": ["add_one"]}), json!({"n": 1}), true)
        .await;
    assert_eq!(refused.status(), pb::ChainRunStatus::Failed, "{refused:#?}");
    let error = refused.error.as_ref().unwrap();
    assert_eq!(error.code, "agent_failed");
    assert!(error.message.contains("revoked"), "{error:?}");
    assert_eq!(step(&refused, "add_one").attempts, 1, "{refused:#?}");

    let next = stack
        .execute(json!({"agents": ["add_one"]}), json!({"n": 1}), true)
        .await;
    assert_eq!(next.status(), pb::ChainRunStatus::Completed, "{next:#?}");
    assert_eq!(run_keys(&stack.pool, &tenant).await, (1, 2));
}

#[sqlx::test(migrations = false)]
async fn independent_steps_really_overlap_in_time(pool: sqlx::PgPool) {
    let mut stack = start(pool).await;
    let work =
        |tag: &str| json!({"id": tag, "agent": "work", "input": {"tag": tag, "sleep_ms": 400}});
    let started = Instant::now();
    let run = stack
        .execute(
            json!({"steps": [work("a"), work("b"), work("c")]}),
            json!({}),
            true,
        )
        .await;
    assert_eq!(run.status(), pb::ChainRunStatus::Completed, "{run:#?}");
    assert!(
        started.elapsed() < Duration::from_millis(1100),
        "took {:?}",
        started.elapsed()
    );
    let calls = stack.agents.record.calls();
    let last_start = calls.iter().map(|call| call.started).max().unwrap();
    let first_end = calls.iter().filter_map(|call| call.finished).min().unwrap();
    assert!(
        last_start < first_end,
        "every step started before any finished"
    );
}

#[sqlx::test(migrations = false)]
async fn a_false_condition_skips_its_branch_and_the_dependants(pool: sqlx::PgPool) {
    let mut stack = start(pool).await;
    let run = stack
        .execute(
            json!({"steps": [
                {"id": "gate", "agent": "add_one"},
                {"id": "tests", "agent": "add_one", "needs": ["gate"], "when": "input.tests && steps.gate.n > 0"},
                {"id": "after_tests", "agent": "add_one", "needs": ["tests"]},
                {"id": "docs", "agent": "add_one", "needs": ["gate"], "when": "!input.tests"},
            ]}),
            json!({"n": 0, "tests": false}),
            true,
        )
        .await;
    assert_eq!(run.status(), pb::ChainRunStatus::Completed, "{run:#?}");
    let tests = step(&run, "tests");
    assert_eq!(tests.status(), pb::StepStatus::Skipped);
    assert_eq!(
        tests.skip_reason,
        "when `input.tests && steps.gate.n > 0` is false"
    );
    let after = step(&run, "after_tests");
    assert_eq!(after.status(), pb::StepStatus::Skipped);
    assert_eq!(after.skip_reason, "needs step `tests`, which was skipped");
    assert_eq!(step(&run, "docs").status(), pb::StepStatus::Completed);
    assert_eq!(stack.agents.record.calls().len(), 2);
}

#[sqlx::test(migrations = false)]
async fn a_failing_step_is_retried_until_it_succeeds(pool: sqlx::PgPool) {
    let mut stack = start(pool).await;
    let run = stack
        .execute(
            json!({"steps": [{"id": "flaky", "agent": "work",
                "input": {"tag": "flaky", "fail_times": 2},
                "retry": {"attempts": 3, "backoff_ms": 20}}]}),
            json!({}),
            true,
        )
        .await;
    assert_eq!(run.status(), pb::ChainRunStatus::Completed, "{run:#?}");
    assert_eq!(step(&run, "flaky").attempts, 3);
    assert!(step(&run, "flaky").error.is_none());
    assert_eq!(stack.agents.record.tagged("flaky").len(), 3);
}

#[sqlx::test(migrations = false)]
async fn a_step_past_its_timeout_fails_the_run(pool: sqlx::PgPool) {
    let mut stack = start(pool).await;
    let started = Instant::now();
    let run = stack
        .execute(
            json!({"steps": [
                {"id": "slow", "agent": "work", "input": {"tag": "slow", "sleep_ms": 5000}, "timeout_ms": 200},
                {"id": "next", "agent": "add_one", "needs": ["slow"]},
            ]}),
            json!({}),
            true,
        )
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(run.status(), pb::ChainRunStatus::Failed, "{run:#?}");
    let slow = step(&run, "slow");
    assert_eq!(slow.status(), pb::StepStatus::Failed);
    assert_eq!(slow.error.as_ref().unwrap().code, "deadline_exceeded");
    assert_eq!(run.error.as_ref().unwrap().code, "deadline_exceeded");
    assert_eq!(step(&run, "next").status(), pb::StepStatus::Cancelled);
}

#[sqlx::test(migrations = false)]
async fn on_failure_continue_and_skip_dependants_let_the_run_finish(pool: sqlx::PgPool) {
    let mut stack = start(pool).await;
    let run = stack
        .execute(
            json!({"steps": [
                {"id": "tolerated", "agent": "fail", "on_failure": "continue"},
                {"id": "goes_on", "agent": "add_one", "needs": ["tolerated"]},
                {"id": "optional", "agent": "fail", "on_failure": "skip_dependants"},
                {"id": "needs_optional", "agent": "add_one", "needs": ["optional"]},
                {"id": "independent", "agent": "add_one"},
            ]}),
            json!({"n": 0}),
            true,
        )
        .await;
    assert_eq!(run.status(), pb::ChainRunStatus::Completed, "{run:#?}");
    assert_eq!(step(&run, "tolerated").status(), pb::StepStatus::Failed);
    assert_eq!(step(&run, "goes_on").status(), pb::StepStatus::Completed);
    assert_eq!(step(&run, "optional").status(), pb::StepStatus::Failed);
    let skipped = step(&run, "needs_optional");
    assert_eq!(skipped.status(), pb::StepStatus::Skipped);
    assert_eq!(skipped.skip_reason, "needs step `optional`, which failed");
    assert_eq!(
        step(&run, "independent").status(),
        pb::StepStatus::Completed
    );
}

#[sqlx::test(migrations = false)]
async fn on_failure_fail_stops_the_run_and_cancels_what_runs(pool: sqlx::PgPool) {
    let mut stack = start(pool).await;
    let run = stack
        .execute(
            json!({"steps": [
                {"id": "broken", "agent": "fail"},
                {"id": "slow", "agent": "work", "input": {"tag": "slow", "sleep_ms": 3000}},
                {"id": "later", "agent": "add_one", "needs": ["broken"]},
            ]}),
            json!({}),
            true,
        )
        .await;
    assert_eq!(run.status(), pb::ChainRunStatus::Failed, "{run:#?}");
    let error = run.error.as_ref().unwrap();
    assert_eq!(error.code, "agent_failed");
    assert!(error.message.contains("step `broken` failed"), "{error:?}");
    assert_eq!(step(&run, "slow").status(), pb::StepStatus::Cancelled);
    assert_eq!(step(&run, "later").status(), pb::StepStatus::Cancelled);
    assert_eq!(
        stack
            .agents
            .record
            .calls()
            .iter()
            .filter(|c| c.agent == "add_one")
            .count(),
        0
    );
}

#[sqlx::test(migrations = false)]
async fn an_idempotency_key_returns_the_same_run(pool: sqlx::PgPool) {
    let mut stack = start(pool).await;
    let definition = json!({"agents": ["add_one"]});
    let first = stack
        .try_execute(definition.clone(), json!({"n": 1}), true, "key-1")
        .await
        .unwrap();
    let again = stack
        .try_execute(definition.clone(), json!({"n": 1}), true, "key-1")
        .await
        .unwrap();
    assert_eq!(first.id, again.id);
    assert_eq!(again.status(), pb::ChainRunStatus::Completed);
    assert_eq!(stack.agents.record.calls().len(), 1);
    let different = stack
        .try_execute(definition, json!({"n": 2}), true, "key-1")
        .await
        .unwrap_err();
    assert_eq!(different.code(), Code::FailedPrecondition);
}

/// A caller not waiting is answered with its run as committed, whatever the run has done by the
/// time the answer leaves: running here, no step started.
#[sqlx::test(migrations = false)]
async fn a_run_not_waited_for_is_answered_as_accepted(pool: sqlx::PgPool) {
    let mut stack = start(pool).await;
    // Keys loaded: the racing calls below need no retries.
    stack
        .execute(json!({"agents": ["add_one"]}), json!({"n": 0}), true)
        .await;
    let definition = json!({"agents": ["add_one", "add_one"]});
    let accepted = futures::future::join_all((0..16).map(|n| {
        let mut chains = stack.chains.clone();
        let request = stack.authed(inline_run(&definition, &json!({ "n": n }), ""));
        async move { chains.execute_chain(request).await }
    }))
    .await;
    for answer in accepted {
        let run = answer.expect("every run is accepted").into_inner();
        assert_eq!(run.status(), pb::ChainRunStatus::Running, "{run:#?}");
        assert_eq!(run.steps.len(), 2);
        assert!(
            run.steps
                .iter()
                .all(|s| s.status() == pb::StepStatus::Pending && s.attempts == 0),
            "{run:#?}"
        );
        let finished = stack
            .run_until(&run.id, |run| run.status() == pb::ChainRunStatus::Completed)
            .await;
        assert!(
            finished.steps.iter().all(|s| s.attempts == 1),
            "{finished:#?}"
        );
    }
}

/// Runs ending together are read for their callers together (runs::details): each caller still
/// gets its own run with its own steps, and another tenant asking for them in the same moment
/// gets NOT_FOUND.
#[sqlx::test(migrations = false)]
async fn callers_waiting_together_each_get_their_own_run(pool: sqlx::PgPool) {
    let mut stack = start(pool).await;
    // Keys loaded: the racing calls below need no retries.
    stack
        .execute(json!({"agents": ["add_one"]}), json!({"n": 0}), true)
        .await;
    let definition = json!({"agents": ["add_one", "add_one"]});
    let waited = futures::future::join_all((0..24).map(|n| {
        let mut chains = stack.chains.clone();
        let mut request = inline_run(&definition, &json!({ "n": n }), "");
        request.wait = true;
        request.wait_timeout_ms = 20_000;
        let request = stack.authed(request);
        async move { (n, chains.execute_chain(request).await) }
    }))
    .await;
    let other = stack.other_tenant().await;
    let mut ids = Vec::new();
    for (n, answer) in waited {
        let run = answer.expect("every run is answered").into_inner();
        assert_eq!(run.status(), pb::ChainRunStatus::Completed, "{run:#?}");
        assert_eq!(
            json(&run.output_json),
            json!({"add_one": {"n": n + 1}, "add_one_2": {"n": n + 2}}),
            "{run:#?}"
        );
        assert_eq!(json(&step(&run, "add_one").input_json), json!({"n": n}));
        assert_eq!(run.steps.len(), 2);
        ids.push(run.id);
    }
    let lookups = futures::future::join_all(ids.iter().flat_map(|id| {
        let own = stack.authed(pb::GetRunRequest { id: id.clone() });
        let foreign = authed_as(&other, pb::GetRunRequest { id: id.clone() });
        [own, foreign].map(|request| {
            let mut chains = stack.chains.clone();
            async move { chains.get_run(request).await }
        })
    }))
    .await;
    for (id, pair) in ids.iter().zip(lookups.chunks(2)) {
        let own = pair[0].as_ref().expect("the caller's run is found");
        assert_eq!(&own.get_ref().id, id);
        assert_eq!(own.get_ref().steps.len(), 2);
        let foreign = pair[1].as_ref().expect_err("another tenant's run is not");
        assert_eq!(foreign.code(), Code::NotFound, "{foreign:?}");
    }
}

#[sqlx::test(migrations = false)]
async fn submissions_racing_with_one_idempotency_key_start_one_run(pool: sqlx::PgPool) {
    let mut stack = start(pool).await;
    let definition = json!({"agents": ["add_one"]});
    let answers = futures::future::join_all((0..6).map(|_| {
        let mut chains = stack.chains.clone();
        let request = stack.authed(inline_run(&definition, &json!({"n": 1}), "raced"));
        async move { chains.execute_chain(request).await }
    }))
    .await;
    let ids: std::collections::BTreeSet<String> = answers
        .into_iter()
        .map(|answer| answer.expect("every racer is answered").into_inner().id)
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let run = stack
        .run_until(ids.first().unwrap(), |run| {
            run.status() == pb::ChainRunStatus::Completed
        })
        .await;
    assert_eq!(run.steps.len(), 1);
    assert_eq!(stack.agents.record.calls().len(), 1);
}

#[sqlx::test(migrations = false)]
async fn cancelling_stops_the_running_step_and_starts_nothing_more(pool: sqlx::PgPool) {
    let mut stack = start(pool).await;
    let run = stack
        .execute(
            json!({"steps": [
                {"id": "long", "agent": "work", "input": {"tag": "long", "sleep_ms": 10000}},
                {"id": "after", "agent": "add_one", "needs": ["long"]},
            ]}),
            json!({}),
            false,
        )
        .await;
    stack
        .run_until(&run.id, |run| {
            step(run, "long").status() == pb::StepStatus::Running
        })
        .await;
    // The step is marked running before its call reaches the agent: cancel once it has.
    let deadline = Instant::now() + Duration::from_secs(10);
    while stack.agents.record.tagged("long").is_empty() {
        assert!(
            Instant::now() < deadline,
            "the long step never reached the agent"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let asked = Instant::now();
    let answer = stack
        .chains
        .cancel_run(stack.authed(pb::CancelRunRequest { id: run.id.clone() }))
        .await
        .unwrap()
        .into_inner();
    assert!(answer.cancel_requested);
    let run = stack
        .run_until(&run.id, |run| run.status() == pb::ChainRunStatus::Cancelled)
        .await;
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "took {:?}",
        asked.elapsed()
    );
    assert_eq!(step(&run, "long").status(), pb::StepStatus::Cancelled);
    assert_eq!(step(&run, "after").status(), pb::StepStatus::Cancelled);
    let long = stack.agents.record.tagged("long");
    assert_eq!(long.len(), 1);
    assert!(
        long[0].finished.is_none(),
        "the agent call was dropped, not waited for"
    );
    assert_eq!(
        stack.agents.record.cancelled(),
        [format!("{}-long-1", run.id)],
        "agent-runner was told to stop the agent run"
    );
    assert_eq!(stack.agents.record.calls().len(), 1);
}

#[sqlx::test(migrations = false)]
async fn watching_a_run_delivers_every_event_in_order(pool: sqlx::PgPool) {
    let mut stack = start(pool).await;
    let run = stack
        .execute(
            json!({"steps": [
                {"id": "a", "agent": "add_one"},
                {"id": "b", "agent": "add_one", "needs": ["a"]},
                {"id": "skipped", "agent": "add_one", "needs": ["b"], "when": "input.never"},
            ]}),
            json!({"n": 0}),
            false,
        )
        .await;
    let events = stack.watched(&run.id).await;
    let seen: Vec<String> = events.iter().map(action_of).collect();
    assert_eq!(
        seen,
        [
            "run.started",
            "step.started a",
            "step.completed a",
            "step.started b",
            "step.completed b",
            "step.skipped skipped",
            "run.completed",
        ]
    );
    assert!(
        events
            .windows(2)
            .all(|pair| pair[0].sequence < pair[1].sequence)
    );
    assert!(
        events
            .iter()
            .all(|event| event.subject.contains(&format!(".{}.", run.id)))
    );

    // Resuming after the third event replays only what followed.
    let rest: Vec<pb::Event> = stack
        .chains
        .watch_run(stack.authed(pb::WatchRunRequest {
            run_id: run.id.clone(),
            after_sequence: Some(events[2].sequence),
        }))
        .await
        .unwrap()
        .into_inner()
        .map(|event| event.expect("events arrive"))
        .collect()
        .await;
    assert_eq!(rest.len(), events.len() - 3);
}

#[sqlx::test(migrations = false)]
async fn an_agent_gone_by_the_time_its_step_runs_fails_the_step_as_unknown_once(
    pool: sqlx::PgPool,
) {
    let mut stack = start(pool).await;
    let run = stack
        .execute(
            json!({"steps": [
                {"id": "gone", "agent": "deleted", "retry": {"attempts": 3}},
            ]}),
            json!({}),
            true,
        )
        .await;
    assert_eq!(run.status(), pb::ChainRunStatus::Failed, "{run:#?}");
    let gone = step(&run, "gone");
    assert_eq!(gone.error.as_ref().unwrap().code, "unknown_agent");
    assert_eq!(gone.attempts, 1, "no retry brings an agent back");
}

#[sqlx::test(migrations = false)]
async fn runs_list_within_a_time_window_and_an_empty_window_lists_none(pool: sqlx::PgPool) {
    let mut stack = start(pool).await;
    let first = stack
        .execute(json!({"agents": ["add_one"]}), json!({"n": 1}), true)
        .await;
    let second = stack
        .execute(json!({"agents": ["add_one"]}), json!({"n": 2}), true)
        .await;
    let at = second.created_at.expect("a run has its creation time");
    let list = |since, until| {
        let mut chains = stack.chains.clone();
        let request = stack.authed(pb::ListRunsRequest {
            created_since: since,
            created_until: until,
            ..Default::default()
        });
        async move {
            chains.list_runs(request).await.map(|response| {
                let runs = response.into_inner().runs;
                runs.into_iter().map(|run| run.id).collect::<Vec<_>>()
            })
        }
    };
    assert_eq!(
        list(Some(at), None).await.expect("runs can be listed"),
        std::slice::from_ref(&second.id)
    );
    assert_eq!(
        list(None, Some(at)).await.expect("runs can be listed"),
        std::slice::from_ref(&first.id)
    );

    assert!(
        list(Some(at), Some(at))
            .await
            .expect("an empty window is valid")
            .is_empty()
    );
}
