use sankalpa_kit::problem::field_violations;
use sankalpa_proto::v1 as pb;
use serde_json::json;
use tonic::Code;

use crate::{retry_until_keys_loaded, start};

#[sqlx::test(migrations = false)]
async fn a_cycle_and_an_unknown_agent_are_refused_by_name(pool: sqlx::PgPool) {
    let mut stack = start(pool).await;
    let cyclic = json!({"steps": [
        {"id": "a", "agent": "add_one", "needs": ["c"]},
        {"id": "b", "agent": "add_one", "needs": ["a"]},
        {"id": "c", "agent": "add_one", "needs": ["b"]},
    ]});
    let refused = stack
        .try_execute(cyclic, json!({}), true, "")
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    let violations = field_violations(&refused);
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].field, "steps");
    assert!(
        violations[0].message.starts_with("cycle: "),
        "{violations:?}"
    );

    let unknown = json!({"agents": ["add_one", "no_such_agent"]});
    let refused = stack
        .try_execute(unknown, json!({}), true, "")
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    let violations = field_violations(&refused);
    assert_eq!(violations[0].field, "steps[1].agent");
    assert_eq!(violations[0].message, "unknown agent `no_such_agent`");
    assert!(stack.agents.record.calls().is_empty(), "nothing ran");

    let listed = stack
        .chains
        .list_runs(stack.authed(pb::ListRunsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(
        listed.runs.is_empty(),
        "a refused run leaves nothing behind"
    );
}

#[sqlx::test(migrations = false)]
async fn updates_make_versions_and_templates_are_listed(pool: sqlx::PgPool) {
    let mut stack = start(pool).await;
    let create = stack.authed(pb::CreateChainRequest {
        name: "counting".to_owned(),
        description: "adds".to_owned(),
        definition_json: json!({"agents": ["add_one"]}).to_string(),
        installed_from: String::new(),
    });
    let mut chains = stack.chains.clone();
    let created = retry_until_keys_loaded(|| {
        let mut chains = chains.clone();
        let request = crate::clone_request(&create);
        async move { chains.create_chain(request).await }
    })
    .await
    .unwrap()
    .into_inner();
    assert_eq!(created.version, 1);

    let updated = chains
        .update_chain(stack.authed(pb::UpdateChainRequest {
            id: created.id.clone(),
            definition_json: json!({"agents": ["add_one", "add_one"]}).to_string(),
            name: None,
            description: None,
            expected_version: Some(1),
            installed_from: String::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (updated.version, updated.step_count, updated.name.as_str()),
        (2, 2, "counting")
    );

    let stale = chains
        .update_chain(stack.authed(pb::UpdateChainRequest {
            id: created.id.clone(),
            definition_json: json!({"agents": ["add_one"]}).to_string(),
            expected_version: Some(1),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);

    let first = chains
        .get_chain(stack.authed(pb::GetChainRequest {
            target: Some(pb::get_chain_request::Target::Id(created.id.clone())),
            version: Some(1),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (first.version, first.latest_version, first.step_count),
        (1, 2, 1)
    );

    let run = chains
        .execute_chain(stack.authed(pb::ExecuteChainRequest {
            target: Some(pb::execute_chain_request::Target::Chain(pb::ChainRef {
                id: created.id.clone(),
                version: None,
            })),
            input_json: json!({"n": 0}).to_string(),
            wait: true,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(run.status(), pb::ChainRunStatus::Completed);
    assert_eq!(
        (run.chain_version, run.chain_name.as_str()),
        (2, "counting")
    );
    assert_eq!(crate::json(&run.output_json)["add_one_2"], json!({"n": 2}));

    let listed = chains
        .list_chains(stack.authed(pb::ListChainsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .chains;
    let names: Vec<_> = listed
        .iter()
        .map(|chain| (chain.name.as_str(), chain.origin()))
        .collect();
    assert!(
        names.contains(&("counting", pb::ChainOrigin::Tenant)),
        "{names:?}"
    );
    assert!(
        names.contains(&("fullstack-app", pb::ChainOrigin::Template)),
        "{names:?}"
    );

    chains
        .delete_chain(stack.authed(pb::DeleteChainRequest {
            id: created.id.clone(),
        }))
        .await
        .unwrap();
    let gone = chains
        .get_chain(stack.authed(pb::GetChainRequest {
            target: Some(pb::get_chain_request::Target::Id(created.id)),
            version: None,
        }))
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    stack.get_run(&run.id).await;
}

#[sqlx::test(migrations = false)]
async fn validation_reports_every_problem_without_storing(pool: sqlx::PgPool) {
    let stack = start(pool).await;
    let request = stack.authed(pb::ValidateChainRequest {
        definition_json: json!({"steps": [
            {"id": "a", "agent": "add_one", "when": "input.x =="},
            {"id": "a", "agent": "nope"},
        ]})
        .to_string(),
    });
    let chains = stack.chains.clone();
    let answer = retry_until_keys_loaded(|| {
        let mut chains = chains.clone();
        let request = crate::clone_request(&request);
        async move { chains.validate_chain(request).await }
    })
    .await
    .unwrap()
    .into_inner();
    assert!(!answer.valid);
    let fields: Vec<_> = answer.violations.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(
        fields,
        ["steps[1].id", "steps[0].when"],
        "{:?}",
        answer.violations
    );
}
