use sankalpa_proto::v1 as pb;
use serde_json::json;
use sqlx::PgPool;

use crate::{authed, chain_item, json as parse, start};

#[sqlx::test(migrator = "sankalpa_marketplace::MIGRATOR")]
async fn a_published_chain_is_found_installed_by_another_tenant_and_runs(pool: PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let bob = app.sign_up().await;
    let item = app
        .publish(
            &ada,
            chain_item("polite-greeter", "Polite greeter", "1.0.0"),
        )
        .await
        .unwrap()
        .item
        .unwrap();

    let found = app
        .search(
            &bob,
            pb::SearchRequest {
                query: "greeter".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, item.id);

    let installed = app.install(&bob, &item.id, None).await.unwrap();
    assert!(!installed.already_installed);
    let install = installed.install.unwrap();
    assert_eq!(install.version, "1.0.0");
    assert_eq!(install.tenant_id, bob.tenant_id);
    assert_eq!(install.kind, pb::ItemKind::Chain as i32);

    let chain = app
        .chains
        .get_chain(authed(
            pb::GetChainRequest {
                target: Some(pb::get_chain_request::Target::Id(install.target.clone())),
                version: None,
            },
            &bob.token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(chain.installed_from, format!("{}@1.0.0", item.id));

    let run = app
        .run_chain(&bob, &install.target, json!({"name": "Bob"}))
        .await;
    assert_eq!(run.status, pb::ChainRunStatus::Completed as i32, "{run:#?}");
    let message = parse(&run.output_json)["greet"]["message"].clone();
    assert!(
        message.as_str().is_some_and(|text| text.contains("Bob")),
        "{}",
        run.output_json
    );

    let again = app.install(&bob, &item.id, Some("1.0.0")).await.unwrap();
    assert!(again.already_installed);
    assert_eq!(again.install.unwrap().id, install.id);
    assert_eq!(app.get_item(&bob, &item.id).await.unwrap().downloads, 1);

    let listed = app
        .market
        .list_installs(authed(pb::ListInstallsRequest::default(), &bob.token))
        .await
        .unwrap()
        .into_inner()
        .installs;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].item_slug, "polite-greeter");
    let adas = app
        .market
        .list_installs(authed(pb::ListInstallsRequest::default(), &ada.token))
        .await
        .unwrap()
        .into_inner()
        .installs;
    assert!(adas.is_empty());
}

#[sqlx::test(migrator = "sankalpa_marketplace::MIGRATOR")]
async fn a_published_agent_installs_as_a_custom_agent(pool: PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let bob = app.sign_up().await;
    let mut request = chain_item("shouter", "Shouter", "1.0.0");
    request.kind = pb::ItemKind::Agent as i32;
    request.package_json = json!({
        "name": "shouter",
        "category": "custom",
        "description": "Shouts a name.",
        "version": "1.0.0",
        "input_schema": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}},
        "output_schema": {"type": "object", "required": ["shout"], "properties": {"shout": {"type": "string"}}},
        "template": {"output": {"shout": "HEY {{ name | upper }}"}}
    })
    .to_string();
    let item = app.publish(&ada, request).await.unwrap().item.unwrap();

    let install = app
        .install(&bob, &item.id, None)
        .await
        .unwrap()
        .install
        .unwrap();

    assert_eq!(install.target, "shouter");
    let agent = app
        .agents
        .get_agent(authed(
            pb::GetAgentRequest {
                name: "shouter".into(),
            },
            &bob.token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        agent.custom.unwrap().installed_from,
        format!("{}@1.0.0", item.id)
    );
}

#[sqlx::test(migrator = "sankalpa_marketplace::MIGRATOR")]
async fn a_tampered_stored_package_is_refused_at_install(pool: PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let bob = app.sign_up().await;
    let item = app
        .publish(&ada, chain_item("hello", "Hello", "1.0.0"))
        .await
        .unwrap()
        .item
        .unwrap();
    let stored = app.stored_packages();
    assert_eq!(stored.len(), 1);
    let evil = json!({
        "name": "evil",
        "steps": [{"id": "greet", "agent": "hello_world"}, {"id": "more", "agent": "hello_world"}]
    });
    std::fs::write(&stored[0], evil.to_string()).unwrap();

    let status = app.install(&bob, &item.id, None).await.unwrap_err();

    assert_eq!(status.code(), tonic::Code::DataLoss, "{status:?}");
    let installs: i64 = sqlx::query_scalar("SELECT count(*) FROM marketplace.installs")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(installs, 0);
    let chains = app
        .chains
        .list_chains(authed(pb::ListChainsRequest::default(), &bob.token))
        .await
        .unwrap()
        .into_inner()
        .chains;
    assert!(
        chains.iter().all(|chain| chain.id.is_empty()),
        "only templates, no stored chain: {chains:?}"
    );
    assert_eq!(app.get_item(&bob, &item.id).await.unwrap().downloads, 0);
}
