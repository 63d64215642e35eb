//! What a caller is told when something the orchestrator needs is down: UNAVAILABLE, which the
//! gateway answers 503 with Retry-After, never INTERNAL (a bug) or UNKNOWN.

use sankalpa_proto::v1 as pb;
use serde_json::json;
use tonic::Code;

use sankalpa_kit::problem::field_violations;

use crate::{json as json_of, start, step};

#[sqlx::test(migrations = false)]
async fn validating_or_storing_unremembered_agents_answers_unavailable_while_agent_runner_is_down(
    pool: sqlx::PgPool,
) {
    let mut stack = start(pool).await;
    stack
        .execute(json!({"agents": ["add_one"]}), json!({"n": 1}), true)
        .await;
    stack.agents.stop().await;
    // Not one of the fake's agents, so nothing remembers it: only agent-runner could say.
    let unremembered = json!({"agents": ["translator"]});

    let created = stack
        .chains
        .create_chain(stack.authed(pb::CreateChainRequest {
            name: "translating".to_owned(),
            definition_json: unremembered.to_string(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(created.code(), Code::Unavailable, "{created:?}");
    let validated = stack
        .chains
        .validate_chain(stack.authed(pb::ValidateChainRequest {
            definition_json: unremembered.to_string(),
        }))
        .await
        .unwrap_err();
    assert_eq!(validated.code(), Code::Unavailable, "{validated:?}");

    // Remembered agents need no answer from agent-runner.
    let stored = stack
        .chains
        .create_chain(stack.authed(pb::CreateChainRequest {
            name: "counting".to_owned(),
            definition_json: json!({"agents": ["add_one", "work"]}).to_string(),
            ..Default::default()
        }))
        .await
        .expect("a chain of remembered agents is stored")
        .into_inner();
    assert_eq!(stored.step_count, 2);
}

/// Whether the run was accepted with its agents checked (false: they are checked as it starts).
async fn agents_checked(pool: &sqlx::PgPool, run_id: &str) -> bool {
    sqlx::query_scalar("SELECT agents_checked FROM chains.chain_runs WHERE id = $1::uuid")
        .bind(run_id)
        .fetch_one(pool)
        .await
        .expect("the run is stored")
}

#[sqlx::test(migrations = false)]
async fn a_run_of_remembered_agents_is_accepted_while_agent_runner_is_down_and_completes_once_it_is_back(
    pool: sqlx::PgPool,
) {
    let mut stack = start(pool).await;
    stack
        .execute(json!({"agents": ["add_one"]}), json!({"n": 1}), true)
        .await;
    let lookups = stack.agents.record.lookups();
    assert!(lookups > 0, "the first run looked its agent up");
    stack.agents.stop().await;

    // Each attempt that finds agent-runner down is retried, long enough to outlast the restart
    // below (and, once infrastructure errors wait inside the step timeout, within that).
    let definition = json!({"steps": [
        {"id": "first", "agent": "add_one", "timeout_ms": 60000,
         "retry": {"attempts": 10, "backoff_ms": 200}},
        {"id": "second", "agent": "add_one", "needs": ["first"], "timeout_ms": 60000,
         "retry": {"attempts": 10, "backoff_ms": 200}},
    ]});
    let accepted = stack
        .try_execute(definition, json!({"n": 1}), false, "")
        .await
        .expect("a run of remembered agents is accepted without agent-runner");
    assert!(
        agents_checked(&stack.pool, &accepted.id).await,
        "the catalog vouched for its agents"
    );
    assert_eq!(
        stack.agents.record.lookups(),
        lookups,
        "the submission asked agent-runner nothing"
    );

    stack.agents.restart().await;
    let run = stack
        .run_until(&accepted.id, |run| {
            run.status != pb::ChainRunStatus::Running as i32
                && run.status != pb::ChainRunStatus::Pending as i32
        })
        .await;
    assert_eq!(run.status(), pb::ChainRunStatus::Completed, "{run:#?}");
    assert_eq!(json_of(&run.output_json)["second"]["n"], 3);
}

#[sqlx::test(migrations = false)]
async fn an_unknown_agent_is_refused_at_submission_while_agent_runner_is_up(pool: sqlx::PgPool) {
    let mut stack = start(pool).await;
    // The catalog now remembers the built-ins; what it lacks is asked about, not assumed.
    stack
        .execute(json!({"agents": ["add_one"]}), json!({"n": 1}), true)
        .await;
    let refused = stack
        .try_execute(
            json!({"agents": ["add_one", "no_such_agent"]}),
            json!({}),
            false,
            "",
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    let violations = field_violations(&refused);
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].field, "steps[1].agent");
}

#[sqlx::test(migrations = false)]
async fn an_agent_nobody_could_check_is_accepted_and_fails_the_run_with_unknown_agent_as_it_starts(
    pool: sqlx::PgPool,
) {
    let mut stack = start(pool).await;
    stack.agents.stop().await;
    let definition = json!({"steps": [
        {"id": "count", "agent": "add_one"},
        {"id": "missing", "agent": "no_such_agent", "needs": ["count"],
         "on_failure": "continue"},
        {"id": "after", "agent": "add_one", "needs": ["missing"]},
    ]});
    let accepted = stack
        .try_execute(definition, json!({"n": 1}), false, "")
        .await
        .expect("with agent-runner down, a run is accepted");
    assert!(!agents_checked(&stack.pool, &accepted.id).await);

    stack.agents.restart().await;
    let run = stack
        .run_until(&accepted.id, |run| {
            run.status != pb::ChainRunStatus::Running as i32
                && run.status != pb::ChainRunStatus::Pending as i32
        })
        .await;
    assert_eq!(run.status(), pb::ChainRunStatus::Failed, "{run:#?}");
    let error = run.error.clone().expect("a failed run says why");
    assert_eq!(error.code, "unknown_agent", "{error:?}");
    let missing = step(&run, "missing");
    assert_eq!(missing.status(), pb::StepStatus::Failed);
    assert_eq!(
        missing.error.as_ref().map(|e| e.code.as_str()),
        Some("unknown_agent")
    );
    assert_eq!(missing.attempts, 0, "an unknown agent is not attempted");
    // As a refused submission would have: nothing of the run executed, not even the steps
    // before it, and `on_failure: continue` does not carry the run on.
    for id in ["count", "after"] {
        assert_eq!(step(&run, id).status(), pb::StepStatus::Cancelled, "{id}");
    }
    assert!(stack.agents.record.calls().is_empty(), "no agent ran");
}

#[sqlx::test(migrations = false)]
async fn a_database_that_cannot_be_asked_is_unavailable_not_an_internal_error(pool: sqlx::PgPool) {
    let mut stack = start(pool).await;
    let run = stack
        .execute(json!({"agents": ["add_one"]}), json!({"n": 1}), true)
        .await;
    // The orchestrator shares this pool: closed, every query finds no database to ask.
    stack.pool.close().await;

    let read = stack
        .chains
        .get_run(stack.authed(pb::GetRunRequest { id: run.id.clone() }))
        .await
        .unwrap_err();
    assert_eq!(read.code(), Code::Unavailable, "{read:?}");
    let listed = stack
        .chains
        .list_chains(stack.authed(pb::ListChainsRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(listed.code(), Code::Unavailable, "{listed:?}");
    let executed = stack
        .try_execute(json!({"agents": ["add_one"]}), json!({"n": 1}), true, "")
        .await
        .unwrap_err();
    assert_eq!(executed.code(), Code::Unavailable, "{executed:?}");
}
