use sankalpa_proto::v1 as pb;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::{authed, start};

const EXPECTED: &[(&str, &[&str])] = &[
    (
        "builder",
        &[
            "api_builder",
            "auth_builder",
            "backend_builder",
            "db_schema",
            "email_system",
            "frontend_builder",
            "markdown_editor",
            "project_architect",
            "role_auth",
            "stripe_payment",
            "ui_generator",
        ],
    ),
    (
        "testing",
        &[
            "critic",
            "integration_test",
            "security_scanner",
            "test_suite",
        ],
    ),
    (
        "deployment",
        &["ci_generator", "deploy_executor", "domain_linker"],
    ),
    (
        "marketing",
        &[
            "pitch_deck_generator",
            "product_hunt_copywriter",
            "readme_writer",
            "seo_optimizer",
        ],
    ),
    (
        "enhanced",
        &["cli_runner", "copilot", "finetuner", "vs_code_extension"],
    ),
    ("meta", &["multi_agent_memory_manager", "version_tracker"]),
    (
        "orchestration",
        &["execution_manager", "planner", "session_replayer"],
    ),
    (
        "custom",
        &[
            "code_summarizer",
            "custom_calculator",
            "date_formatter",
            "hello_world",
            "text_translator",
        ],
    ),
];

#[sqlx::test(migrations = false)]
async fn every_catalog_agent_is_listed_by_category_then_name(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let listed = app
        .client
        .list_agents(authed(pb::ListAgentsRequest::default(), &ada.token))
        .await
        .unwrap()
        .into_inner()
        .agents;
    let names: Vec<(String, String)> = listed
        .iter()
        .map(|a| (a.category.clone(), a.name.clone()))
        .collect();
    for (category, agents) in EXPECTED {
        for agent in *agents {
            assert!(
                names.contains(&((*category).to_owned(), (*agent).to_owned())),
                "{agent} missing from {names:?}"
            );
        }
    }
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    for agent in &listed {
        assert_eq!(agent.origin, pb::AgentOrigin::Builtin as i32);
        let schema: serde_json::Value = serde_json::from_str(&agent.input_schema_json).unwrap();
        assert_eq!(schema["type"], "object", "{}", agent.name);
        assert!(!agent.description.is_empty() && !agent.version.is_empty());
    }
}

#[sqlx::test(migrations = false)]
async fn agents_are_filtered_by_category_and_paged(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let testing = app
        .client
        .list_agents(authed(
            pb::ListAgentsRequest {
                category: "testing".into(),
                ..Default::default()
            },
            &ada.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .agents;
    assert!(!testing.is_empty());
    assert!(testing.iter().all(|a| a.category == "testing"));

    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = app
            .client
            .list_agents(authed(
                pb::ListAgentsRequest {
                    page: Some(pb::PageRequest {
                        page_size: 2,
                        page_token: token.clone(),
                    }),
                    ..Default::default()
                },
                &ada.token,
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(page.agents.len() <= 2);
        seen.extend(page.agents.into_iter().map(|a| a.name));
        token = page.page.unwrap().next_page_token;
        if token.is_empty() {
            break;
        }
    }
    let all = app
        .client
        .list_agents(authed(pb::ListAgentsRequest::default(), &ada.token))
        .await
        .unwrap()
        .into_inner()
        .agents;
    assert_eq!(seen, all.into_iter().map(|a| a.name).collect::<Vec<_>>());

    let status = app
        .client
        .list_agents(authed(
            pb::ListAgentsRequest {
                category: "gardening".into(),
                ..Default::default()
            },
            &ada.token,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[sqlx::test(migrations = false)]
async fn one_agent_is_found_by_name_and_an_unknown_one_is_not(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let agent = app
        .client
        .get_agent(authed(
            pb::GetAgentRequest {
                name: "custom_calculator".into(),
            },
            &ada.token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(agent.category, "custom");
    assert!(agent.input_schema_json.contains("expression"));
    let status = app
        .client
        .get_agent(authed(
            pb::GetAgentRequest {
                name: "no_such_agent".into(),
            },
            &ada.token,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[sqlx::test(migrations = false)]
async fn a_broken_catalog_stops_the_service_from_starting(pool: sqlx::PgPool) {
    let infra = sankalpa_testkit::infra(&sankalpa_testkit::unique_name());
    let auth = sankalpa_testkit::spawn_auth(pool.clone(), infra.clone(), |_| {})
        .await
        .unwrap();
    let folder = std::env::temp_dir().join(sankalpa_testkit::unique_name());
    std::fs::create_dir_all(&folder).unwrap();
    let shipped: serde_json::Value =
        serde_json::from_str(include_str!("../../../../catalog/agents.json")).unwrap();
    let mut broken = shipped.clone();
    broken["agents"][0]["input_schema"]["properties"] = serde_json::json!({"x": {"type": "strin"}});
    let path = folder.join("agents.json");
    std::fs::write(&path, broken.to_string()).unwrap();
    let refused = sankalpa_testkit::spawn_agent_runner(
        pool,
        infra,
        &auth.grpc_url(),
        folder.to_str().unwrap(),
        |config| config.catalog_path = Some(path),
    )
    .await;
    let message = format!("{:#}", refused.err().expect("the service refuses to start"));
    assert!(
        message.contains("agents[0].input_schema.properties.x.type"),
        "{message}"
    );
}

#[sqlx::test(migrations = false)]
async fn the_grpc_health_check_answers_serving(pool: sqlx::PgPool) {
    let app = start(pool).await;
    let channel = sankalpa_kit::grpc::channel(&app.runner.grpc_url()).unwrap();
    let mut health = HealthClient::new(channel);
    let status = health
        .check(HealthCheckRequest {
            service: "sankalpa.v1.AgentService".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);
}
