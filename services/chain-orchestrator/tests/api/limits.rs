//! Bounds on what one request can make the orchestrator parse, store, publish or hold: a bound
//! exceeded is INVALID_ARGUMENT naming the field (or a step failing with a clear code), never a
//! crash, and it leaves the orchestrator serving everyone else.

use sankalpa_kit::problem::field_violations;
use sankalpa_proto::v1 as pb;
use serde_json::json;
use tonic::Code;

use crate::{Stack, start};

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
