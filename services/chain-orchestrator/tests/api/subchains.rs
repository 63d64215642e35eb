//! Chain steps: a child run per attempt, linked both ways, its output the step's, its failure
//! the step's, cancelled with its parent; the depth bound, self-inclusion and tenancy.

use sankalpa_kit::problem::field_violations;
use sankalpa_kit::service::Service;
use sankalpa_proto::v1 as pb;
use serde_json::{Value, json};

use crate::{Stack, action_of, authed_as, json, start, step};

/// Stores a chain of the stack's tenant; its id.
async fn create(stack: &Stack, name: &str, definition: Value) -> String {
    stack
        .chains
        .clone()
        .create_chain(stack.authed(pb::CreateChainRequest {
            name: name.to_owned(),
            definition_json: definition.to_string(),
            ..Default::default()
        }))
        .await
        .expect("the chain is stored")
        .into_inner()
        .id
}

fn calling(child: &str) -> Value {
    json!({"steps": [
        {"id": "c", "chain": {"id": child, "input": {"tag": "kid"}}},
        {"id": "after", "agent": "work", "needs": ["c"],
         "input": {"tag": "after", "seen": "${steps.c.x.tag}"}},
    ]})
}

#[sqlx::test(migrations = false)]
async fn a_chain_step_completes_with_its_child_runs_output(pool: sqlx::PgPool) {
    let mut stack = start(pool).await;
    let child_chain = create(
        &stack,
        "child",
        json!({"steps": [{"id": "x", "agent": "work", "input": {"tag": "${input.tag}"}}]}),
    )
    .await;
    let run = stack.execute(calling(&child_chain), json!({}), true).await;
    assert_eq!(run.status(), pb::ChainRunStatus::Completed, "{run:#?}");
    let c = step(&run, "c");
    assert_eq!(c.kind, "chain");
    assert!(!c.child_run_id.is_empty());
    let child = stack.get_run(&c.child_run_id).await;
    assert_eq!(child.status(), pb::ChainRunStatus::Completed);
    assert_eq!(child.parent_run_id, run.id);
    assert_eq!(child.parent_step, "c");
    assert_eq!(child.chain_id, child_chain);
    assert_eq!(json(&c.output_json), json(&child.output_json));
    assert_eq!(json(&c.output_json)["x"]["tag"], "kid");
    assert_eq!(run.parent_run_id, "", "a caller's run has no parent");
    let kid = stack.agents.record.tagged("kid");
    assert_eq!(kid.len(), 1);
    assert_eq!(
        kid[0].workspace, child.id,
        "the child's step ran in the child"
    );
    let events = stack.watched(&run.id).await;
    let started = events
        .iter()
        .find(|event| action_of(event) == "step.started c")
        .expect("the chain step is announced");
    assert_eq!(json(&started.data_json)["child_run_id"], child.id);
}

#[sqlx::test(migrations = false)]
async fn a_failed_child_fails_its_step_after_the_steps_retries(pool: sqlx::PgPool) {
    let mut stack = start(pool.clone()).await;
    let failing = create(
        &stack,
        "failing",
        json!({"steps": [{"id": "x", "agent": "fail"}]}),
    )
    .await;
    let run = stack
        .execute(
            json!({"steps": [
                {"id": "c", "chain": {"id": failing}, "retry": {"attempts": 2}},
            ]}),
            json!({}),
            true,
        )
        .await;
    assert_eq!(run.status(), pb::ChainRunStatus::Failed, "{run:#?}");
    let c = step(&run, "c");
    assert_eq!(c.status(), pb::StepStatus::Failed);
    assert_eq!(c.attempts, 2);
    let error = c.error.clone().unwrap();
    assert!(error.message.contains("the child run"), "{error:?}");
    let children: Vec<(i32, String)> = sqlx::query_as(
        "SELECT parent_attempt, status FROM chains.chain_runs
         WHERE parent_run_id = $1::uuid ORDER BY parent_attempt",
    )
    .bind(&run.id)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        children,
        [(1, "failed".to_owned()), (2, "failed".to_owned())],
        "one child per attempt"
    );
    assert_eq!(c.child_run_id, stack.get_run(&c.child_run_id).await.id);
}

#[sqlx::test(migrations = false)]
async fn cancelling_a_parent_cancels_its_child(pool: sqlx::PgPool) {
    let mut stack = start(pool).await;
    let slow = create(
        &stack,
        "slow",
        json!({"steps": [{"id": "x", "agent": "work", "input": {"tag": "slow", "sleep_ms": 20000}}]}),
    )
    .await;
    let run = stack
        .execute(
            json!({"steps": [{"id": "c", "chain": {"id": slow}}]}),
            json!({}),
            false,
        )
        .await;
    let running = stack
        .run_until(&run.id, |run| !step(run, "c").child_run_id.is_empty())
        .await;
    let child_id = step(&running, "c").child_run_id.clone();
    stack
        .run_until(&child_id, |child| {
            child.status() == pb::ChainRunStatus::Running && !running_steps(child).is_empty()
        })
        .await;
    stack
        .chains
        .clone()
        .cancel_run(stack.authed(pb::CancelRunRequest { id: run.id.clone() }))
        .await
        .unwrap();
    let parent = stack
        .run_until(&run.id, |run| run.status() == pb::ChainRunStatus::Cancelled)
        .await;
    assert_eq!(step(&parent, "c").status(), pb::StepStatus::Cancelled);
    let child = stack
        .run_until(&child_id, |child| {
            child.status() != pb::ChainRunStatus::Running
                && child.status() != pb::ChainRunStatus::Pending
        })
        .await;
    assert_eq!(child.status(), pb::ChainRunStatus::Cancelled, "{child:#?}");
    assert!(
        stack
            .agents
            .record
            .cancelled()
            .contains(&format!("{child_id}-x-1")),
        "the child's running agent was told to stop"
    );
}

/// The steps of a run that are running.
fn running_steps(run: &pb::ChainRun) -> Vec<&pb::StepRun> {
    run.steps
        .iter()
        .filter(|step| step.status() == pb::StepStatus::Running)
        .collect()
}

#[sqlx::test(migrations = false)]
async fn chain_steps_nest_at_most_four_levels_below_a_callers_run(pool: sqlx::PgPool) {
    let mut stack = start(pool).await;
    let mut below = create(
        &stack,
        "level-0",
        json!({"steps": [{"id": "x", "agent": "work", "input": {"tag": "leaf"}}]}),
    )
    .await;
    let mut levels = vec![below.clone()];
    for level in 1..=4 {
        below = create(
            &stack,
            &format!("level-{level}"),
            json!({"steps": [{"id": "down", "chain": {"id": below}}]}),
        )
        .await;
        levels.push(below.clone());
    }
    // The caller's run, then level-3 to level-0: four levels of children.
    let deepest = stack
        .execute(
            json!({"steps": [{"id": "top", "chain": {"id": levels[3]}}]}),
            json!({}),
            true,
        )
        .await;
    assert_eq!(
        deepest.status(),
        pb::ChainRunStatus::Completed,
        "{deepest:#?}"
    );
    assert_eq!(stack.agents.record.tagged("leaf").len(), 1);

    let too_deep = stack
        .execute(
            json!({"steps": [{"id": "top", "chain": {"id": levels[4]}}]}),
            json!({}),
            true,
        )
        .await;
    assert_eq!(too_deep.status(), pb::ChainRunStatus::Failed);
    assert_eq!(
        too_deep.error.unwrap().code,
        "chain_too_deep",
        "the fifth level's failure fails every run above it"
    );
    assert_eq!(
        stack.agents.record.tagged("leaf").len(),
        1,
        "nothing ran at the fifth level"
    );
}

#[sqlx::test(migrations = false)]
async fn a_chain_that_runs_itself_and_another_tenants_chain_are_refused(pool: sqlx::PgPool) {
    let stack = start(pool).await;
    let first = create(&stack, "first", json!({"agents": ["add_one"]})).await;
    let second = create(
        &stack,
        "second",
        json!({"steps": [{"id": "call", "chain": {"id": first}}]}),
    )
    .await;
    let mut chains = stack.chains.clone();
    for (definition, field) in [
        (
            json!({"steps": [{"id": "again", "chain": {"id": first}}]}),
            "steps[0].chain.id",
        ),
        (
            json!({"steps": [{"id": "a", "agent": "add_one"},
                             {"id": "loop", "chain": {"id": second}}]}),
            "steps[1].chain.id",
        ),
    ] {
        let refused = chains
            .update_chain(stack.authed(pb::UpdateChainRequest {
                id: first.clone(),
                definition_json: definition.to_string(),
                ..Default::default()
            }))
            .await
            .expect_err("a chain that runs itself is refused");
        assert_eq!(refused.code(), tonic::Code::InvalidArgument);
        let violations = field_violations(&refused);
        assert_eq!(violations[0].field, field, "{violations:?}");
    }
    let unchanged = chains
        .get_chain(stack.authed(pb::GetChainRequest {
            target: Some(pb::get_chain_request::Target::Id(first.clone())),
            version: None,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unchanged.latest_version, 1, "nothing was stored");

    let other = stack.other_tenant().await;
    let refused = chains
        .validate_chain(authed_as(
            &other,
            pb::ValidateChainRequest {
                definition_json: json!({"steps": [{"id": "c", "chain": {"id": first}}]})
                    .to_string(),
            },
        ))
        .await
        .map(|answer| answer.into_inner().violations)
        .expect("validation answers");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].field, "steps[0].chain.id");
    assert_eq!(refused[0].message, "this tenant has no chain with this id");
    let refused = chains
        .execute_chain(authed_as(
            &other,
            crate::inline_run(
                &json!({"steps": [{"id": "c", "chain": {"id": first}}]}),
                &json!({}),
                "",
            ),
        ))
        .await
        .expect_err("another tenant's chain is not found");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert_eq!(field_violations(&refused)[0].field, "steps[0].chain.id");
}

#[sqlx::test(migrations = false)]
async fn a_taken_over_parent_waits_for_the_same_child(pool: sqlx::PgPool) {
    let mut stack = start(pool.clone()).await;
    let slow = create(
        &stack,
        "slow",
        json!({"steps": [{"id": "x", "agent": "work", "input": {"tag": "slow", "sleep_ms": 1500}}]}),
    )
    .await;
    // The first orchestrator runs as a bare task, so the test can kill it without any shutdown.
    let config = sankalpa_chain_orchestrator::Config::for_tests(
        stack.infra.clone(),
        &stack.auth.grpc_url(),
        &stack.agents.url(),
    );
    let doomed = sankalpa_chain_orchestrator::Orchestrator::build(config, pool.clone())
        .await
        .unwrap();
    let url = format!("http://{}", doomed.grpc_addr().expect("it serves gRPC"));
    let task = tokio::spawn(doomed.serve(std::future::pending()));
    stack.chains = pb::chain_service_client::ChainServiceClient::connect(url)
        .await
        .unwrap();
    let run = stack
        .execute(
            json!({"steps": [{"id": "c", "chain": {"id": slow}}]}),
            json!({}),
            false,
        )
        .await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while stack.agents.record.tagged("slow").is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the child never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    task.abort();
    let _ = task.await;

    let _successor = stack.start_successor().await;
    let run = stack
        .run_until(&run.id, |run| run.status() == pb::ChainRunStatus::Completed)
        .await;
    let children: Vec<(uuid::Uuid,)> =
        sqlx::query_as("SELECT id FROM chains.chain_runs WHERE parent_run_id = $1::uuid")
            .bind(&run.id)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(children.len(), 1, "the successor started no second child");
    assert_eq!(step(&run, "c").child_run_id, children[0].0.to_string());
    let ids: Vec<String> = stack
        .agents
        .record
        .tagged("slow")
        .into_iter()
        .map(|call| call.run_id)
        .collect();
    assert!(
        ids.iter().all(|id| *id == format!("{}-x-1", children[0].0)),
        "the child's step was asked for under its own id only: {ids:?}"
    );
}
