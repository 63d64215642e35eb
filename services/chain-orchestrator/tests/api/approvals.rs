//! Approval steps: a run waits for a person's decision, held by no replica, and goes on when
//! the step is approved, rejected or times out.

use sankalpa_proto::v1 as pb;
use serde_json::{Value, json};
use tonic::Code;

use crate::{Stack, action_of, authed_as, json, retry_until_keys_loaded, start, step};

/// A step, an approval of it, and a step that reads the approval's input.
fn gated(approvers: &[&str]) -> Value {
    json!({"steps": [
        {"id": "plan", "agent": "add_one", "input": {"n": 0}},
        {"id": "approve", "needs": ["plan"],
         "approval": {"prompt": "Deploy?", "approvers": approvers, "timeout_ms": 600_000}},
        {"id": "deploy", "agent": "add_one", "needs": ["approve"],
         "input": {"n": "${steps.approve.input.n}"}},
    ]})
}

async fn decide(
    stack: &Stack,
    token: &str,
    run: &str,
    step: &str,
    approve: bool,
    input: Option<Value>,
) -> Result<pb::ChainRun, tonic::Status> {
    let input_json = input.map(|input| input.to_string()).unwrap_or_default();
    let result = retry_until_keys_loaded(|| {
        let mut chains = stack.chains.clone();
        let (run, step, input_json) = (run.to_owned(), step.to_owned(), input_json.clone());
        async move {
            if approve {
                let request = authed_as(
                    token,
                    pb::ApproveStepRequest {
                        run_id: run,
                        step_id: step,
                        input_json,
                        comment: "looks right".to_owned(),
                    },
                );
                chains.approve_step(request).await
            } else {
                let request = authed_as(
                    token,
                    pb::RejectStepRequest {
                        run_id: run,
                        step_id: step,
                        input_json,
                        comment: "not today".to_owned(),
                    },
                );
                chains.reject_step(request).await
            }
        }
    })
    .await;
    result.map(tonic::Response::into_inner)
}

fn is_waiting(run: &pb::ChainRun) -> bool {
    run.status() == pb::ChainRunStatus::Waiting
}

/// Who holds the run: its lease owner, if any.
async fn lease_owner(stack: &Stack, run: &str) -> Option<String> {
    sqlx::query_scalar("SELECT lease_owner::text FROM chains.chain_runs WHERE id = $1::uuid")
        .bind(run)
        .fetch_one(&stack.pool)
        .await
        .expect("the run's row")
}

#[sqlx::test(migrations = false)]
async fn an_approved_step_hands_its_input_to_the_steps_after_it(pool: sqlx::PgPool) {
    let mut stack = start(pool).await;
    let run = stack
        .execute(gated(&["role:admin"]), json!({}), false)
        .await;
    let waiting = stack.run_until(&run.id, is_waiting).await;
    assert_eq!(step(&waiting, "plan").status(), pb::StepStatus::Completed);
    assert_eq!(step(&waiting, "approve").status(), pb::StepStatus::Waiting);
    assert_eq!(step(&waiting, "deploy").status(), pb::StepStatus::Pending);
    assert_eq!(
        lease_owner(&stack, &run.id).await,
        None,
        "a waiting run is held by no replica"
    );
    let listed = stack
        .chains
        .list_runs(stack.authed(pb::ListRunsRequest {
            statuses: vec![pb::ChainRunStatus::Waiting.into()],
            ..Default::default()
        }))
        .await
        .expect("runs can be listed")
        .into_inner();
    assert_eq!(
        listed.runs.iter().map(|run| &run.id).collect::<Vec<_>>(),
        [&run.id]
    );

    let token = stack.token.clone();
    let decided = decide(
        &stack,
        &token,
        &run.id,
        "approve",
        true,
        Some(json!({"n": 41})),
    )
    .await
    .expect("an admin approves");
    assert_eq!(
        step(&decided, "approve").status(),
        pb::StepStatus::Completed
    );
    let done = stack
        .run_until(&run.id, |run| run.status() == pb::ChainRunStatus::Completed)
        .await;
    assert_eq!(
        json(&step(&done, "approve").output_json),
        json!({"approved": true, "by": done.created_by, "input": {"n": 41},
               "comment": "looks right"})
    );
    assert_eq!(json(&step(&done, "deploy").output_json), json!({"n": 42}));

    let events = stack.watched(&run.id).await;
    let seen: Vec<String> = events.iter().map(action_of).collect();
    assert_eq!(
        seen,
        [
            "run.started",
            "step.started plan",
            "step.completed plan",
            "step.waiting_approval approve",
            "step.completed approve",
            "step.started deploy",
            "step.completed deploy",
            "run.completed",
        ]
    );
    let asked = json(&events[3].data_json);
    assert_eq!(asked["prompt"], "Deploy?");
    assert_eq!(asked["approvers"], json!(["role:admin"]));
    assert!(asked["expires_at"].is_string(), "{asked}");
}

#[sqlx::test(migrations = false)]
async fn an_approval_decided_while_other_steps_run_is_taken_by_their_driver(pool: sqlx::PgPool) {
    let mut stack = start(pool).await;
    let run = stack
        .execute(
            json!({"steps": [
                {"id": "slow", "agent": "work", "input": {"tag": "slow", "sleep_ms": 5000}},
                {"id": "approve",
                 "approval": {"prompt": "Go?", "approvers": ["role:admin"]}},
                {"id": "after", "agent": "add_one", "needs": ["approve"],
                 "input": {"n": "${steps.approve.input.n}"}},
            ]}),
            json!({}),
            false,
        )
        .await;
    let waiting = stack
        .run_until(&run.id, |run| {
            step(run, "approve").status() == pb::StepStatus::Waiting
        })
        .await;
    assert_eq!(
        waiting.status(),
        pb::ChainRunStatus::Running,
        "a run with a step in flight is not parked"
    );
    let token = stack.token.clone();
    decide(
        &stack,
        &token,
        &run.id,
        "approve",
        true,
        Some(json!({"n": 9})),
    )
    .await
    .expect("an admin approves");
    let after = stack
        .run_until(&run.id, |run| {
            step(run, "after").status() == pb::StepStatus::Completed
        })
        .await;
    assert_eq!(json(&step(&after, "after").output_json), json!({"n": 10}));
    // The slow step has not finished (under load it may not even have started): the decision
    // was taken while it was in flight, not once it was done.
    assert!(
        matches!(
            step(&after, "slow").status(),
            pb::StepStatus::Running | pb::StepStatus::Pending
        ),
        "the step after the approval did not wait for the slow one: {after:#?}"
    );
    stack
        .run_until(&run.id, |run| run.status() == pb::ChainRunStatus::Completed)
        .await;
}

#[sqlx::test(migrations = false)]
async fn a_rejected_step_fails_the_run_and_only_one_of_two_decisions_wins(pool: sqlx::PgPool) {
    let mut stack = start(pool).await;
    let run = stack
        .execute(gated(&["role:admin"]), json!({}), false)
        .await;
    stack.run_until(&run.id, is_waiting).await;
    let token = stack.token.clone();
    let (first, second) = tokio::join!(
        decide(&stack, &token, &run.id, "approve", false, None),
        decide(&stack, &token, &run.id, "approve", false, None),
    );
    let refused = match (first, second) {
        (Ok(_), Err(refused)) | (Err(refused), Ok(_)) => refused,
        other => panic!("exactly one decision wins: {other:?}"),
    };
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains("not waiting"),
        "{}",
        refused.message()
    );
    let failed = stack
        .run_until(&run.id, |run| run.status() == pb::ChainRunStatus::Failed)
        .await;
    let rejected = step(&failed, "approve");
    assert_eq!(rejected.status(), pb::StepStatus::Failed);
    let error = rejected.error.as_ref().expect("a rejected step says why");
    assert_eq!(error.code, "rejected");
    assert!(error.message.contains("not today"), "{}", error.message);
    assert_eq!(
        failed.error.as_ref().map(|e| e.code.as_str()),
        Some("rejected")
    );
    assert_eq!(step(&failed, "deploy").status(), pb::StepStatus::Cancelled);
    assert!(
        stack
            .agents
            .record
            .calls()
            .iter()
            .all(|call| call.run_id != format!("{}-deploy-1", run.id)),
        "nothing after a rejection runs"
    );
}

#[sqlx::test(migrations = false)]
async fn an_approval_nobody_decides_ends_as_its_on_timeout_says(pool: sqlx::PgPool) {
    let mut stack = start(pool).await;
    let approval = |on_timeout: &str, timeout_ms: u64| {
        json!({"prompt": "Go?", "approvers": ["role:admin"], "timeout_ms": timeout_ms,
               "on_timeout": on_timeout})
    };
    let run = stack
        .execute(
            json!({"steps": [
                {"id": "fails", "approval": approval("fail", 200), "on_failure": "continue"},
                {"id": "skips", "approval": approval("skip", 300), "on_skip": "continue"},
                {"id": "approves", "approval": approval("approve", 400)},
                {"id": "after", "agent": "add_one", "needs": ["fails", "skips", "approves"],
                 "input": {"n": 1}},
            ]}),
            json!({}),
            false,
        )
        .await;
    let done = stack
        .run_until(&run.id, |run| run.status() == pb::ChainRunStatus::Completed)
        .await;
    let fails = step(&done, "fails");
    assert_eq!(fails.status(), pb::StepStatus::Failed);
    assert_eq!(
        fails.error.as_ref().map(|e| e.code.as_str()),
        Some("approval_timed_out")
    );
    assert_eq!(step(&done, "skips").status(), pb::StepStatus::Skipped);
    let approves = step(&done, "approves");
    assert_eq!(approves.status(), pb::StepStatus::Completed);
    assert_eq!(
        json(&approves.output_json),
        json!({"approved": true, "by": "timeout"})
    );
    assert_eq!(json(&step(&done, "after").output_json), json!({"n": 2}));

    // Failing by default, a timed-out approval fails its run.
    let run = stack
        .execute(
            json!({"steps": [{"id": "gate", "approval": approval("fail", 100)}]}),
            json!({}),
            false,
        )
        .await;
    let failed = stack
        .run_until(&run.id, |run| run.status() == pb::ChainRunStatus::Failed)
        .await;
    assert_eq!(
        failed.error.as_ref().map(|e| e.code.as_str()),
        Some("approval_timed_out")
    );
}

#[sqlx::test(migrations = false)]
async fn only_an_approver_of_the_runs_own_tenant_may_decide(pool: sqlx::PgPool) {
    let mut stack = start(pool).await;
    let run = stack
        .execute(gated(&["role:release_manager"]), json!({}), false)
        .await;
    stack.run_until(&run.id, is_waiting).await;
    let token = stack.token.clone();
    let refused = decide(&stack, &token, &run.id, "approve", true, None)
        .await
        .expect_err("an admin without the role is no approver");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(
        refused.message().contains("role:release_manager"),
        "{}",
        refused.message()
    );
    let stranger = stack.other_tenant().await;
    let hidden = decide(&stack, &stranger, &run.id, "approve", true, None)
        .await
        .expect_err("another tenant's run is not there");
    assert_eq!(hidden.code(), Code::NotFound, "{hidden:?}");
    let missing = decide(&stack, &token, &run.id, "nope", true, None)
        .await
        .expect_err("no such step");
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
    let not_an_approval = decide(&stack, &token, &run.id, "plan", true, None)
        .await
        .expect_err("an agent step takes no decision");
    assert_eq!(not_an_approval.code(), Code::FailedPrecondition);
    let too_big = decide(
        &stack,
        &token,
        &run.id,
        "approve",
        true,
        Some(json!({"pad": "x".repeat(70_000)})),
    )
    .await
    .expect_err("a decision's input is bounded");
    assert_eq!(too_big.code(), Code::InvalidArgument);
    assert!(
        too_big.message().starts_with("input_json: "),
        "{}",
        too_big.message()
    );

    let still = stack.get_run(&run.id).await;
    assert!(is_waiting(&still), "{still:#?}");
    assert_eq!(step(&still, "approve").status(), pb::StepStatus::Waiting);

    // Cancelling a waiting run ends it at once, with its waiting step.
    let cancelled = stack
        .chains
        .cancel_run(stack.authed(pb::CancelRunRequest { id: run.id.clone() }))
        .await
        .expect("the run can be cancelled")
        .into_inner();
    assert_eq!(cancelled.status(), pb::ChainRunStatus::Cancelled);
    assert_eq!(
        step(&cancelled, "approve").status(),
        pb::StepStatus::Cancelled
    );
    let seen: Vec<String> = stack.watched(&run.id).await.iter().map(action_of).collect();
    assert_eq!(seen.last().map(String::as_str), Some("run.cancelled"));
}

#[sqlx::test(migrations = false)]
async fn an_approval_outlives_the_orchestrator_that_reached_it(pool: sqlx::PgPool) {
    let mut stack = start(pool.clone()).await;
    let run = stack
        .execute(gated(&["role:admin"]), json!({}), false)
        .await;
    stack.run_until(&run.id, is_waiting).await;
    let successor = stack.start_successor().await;
    let first = std::mem::replace(&mut stack.orchestrator, successor);
    first.stop().await.expect("the first orchestrator stops");

    let token = stack.token.clone();
    decide(
        &stack,
        &token,
        &run.id,
        "approve",
        true,
        Some(json!({"n": 1})),
    )
    .await
    .expect("the new orchestrator takes the decision");
    let done = stack
        .run_until(&run.id, |run| run.status() == pb::ChainRunStatus::Completed)
        .await;
    assert_eq!(json(&step(&done, "deploy").output_json), json!({"n": 2}));
    let plans: Vec<_> = stack
        .agents
        .record
        .calls()
        .into_iter()
        .filter(|call| call.run_id == format!("{}-plan-1", run.id))
        .collect();
    assert_eq!(plans.len(), 1, "the step before the approval ran once");
}

#[sqlx::test(migrations = false)]
async fn an_approval_step_round_trips_through_validation(pool: sqlx::PgPool) {
    let stack = start(pool).await;
    let written = gated(&["role:admin", "user:someone"]);
    let validate = |document: String| {
        let request = stack.authed(pb::ValidateChainRequest {
            definition_json: document,
        });
        let mut chains = stack.chains.clone();
        async move { chains.validate_chain(request).await }
    };
    let first = validate(written.to_string())
        .await
        .expect("the definition is checked")
        .into_inner();
    assert!(first.valid, "{first:#?}");
    let normalized = json(&first.normalized_definition_json);
    assert_eq!(
        normalized["steps"][1]["approval"],
        json!({"prompt": "Deploy?", "approvers": ["role:admin", "user:someone"],
               "timeout_ms": 600_000, "on_timeout": "fail"})
    );
    let again = validate(first.normalized_definition_json.clone())
        .await
        .expect("the normalized form is checked")
        .into_inner();
    assert!(again.valid, "{again:#?}");
    assert_eq!(json(&again.normalized_definition_json), normalized);

    let refused = validate(
        json!({"steps": [
            {"id": "a", "agent": "add_one"},
            {"id": "b", "agent": "add_one"},
            {"id": "gate", "approval": {"prompt": "p", "approvers": ["role:admin"],
                                        "timeout_ms": 0}},
        ]})
        .to_string(),
    )
    .await
    .expect("the definition is checked")
    .into_inner();
    assert!(!refused.valid);
    assert_eq!(refused.violations[0].field, "steps[2].approval.timeout_ms");
}
