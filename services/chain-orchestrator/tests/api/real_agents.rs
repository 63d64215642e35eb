//! The orchestrator with the real agent-runner and the real memory service: what the fake agents
//! cannot show, strict input schemas (every catalog agent refuses fields it does not declare)
//! meeting the default input merge, and step outputs saved in the run's memory session.

use std::path::PathBuf;
use std::time::Duration;

use sankalpa_kit::auth::with_bearer;
use sankalpa_proto::v1 as pb;
use sankalpa_proto::v1::agent_service_client::AgentServiceClient;
use sankalpa_proto::v1::auth_service_client::AuthServiceClient;
use sankalpa_proto::v1::chain_service_client::ChainServiceClient;
use sankalpa_proto::v1::memory_service_client::MemoryServiceClient;
use sankalpa_testkit::Running;
use serde_json::json;
use sqlx::PgPool;
use tonic::transport::Channel;

use crate::{json, retry_until_keys_loaded, step};

pub struct RealStack {
    infra: sankalpa_kit::config::Infra,
    objects: PathBuf,
    pub chains: ChainServiceClient<Channel>,
    /// None when the orchestrator was pointed at a memory that is not there.
    memory: Option<MemoryServiceClient<Channel>>,
    pub token: String,
    /// Where agent-runner answers (for the artifacts of runs).
    pub runner_url: String,
    /// Where auth answers (to sign up another tenant).
    pub auth_url: String,
    _services: Vec<Running>,
}

impl Drop for RealStack {
    fn drop(&mut self) {
        sankalpa_testkit::remove_leftovers(&self.infra, vec![self.objects.clone()]);
    }
}

/// auth, agent-runner, memory (unless `memory_url` names another) and the orchestrator, and a
/// signed-in admin of a new tenant.
pub async fn start(pool: PgPool, memory_url: Option<&str>) -> RealStack {
    start_with(pool, memory_url, |_| {}).await
}

/// [`start`], with the orchestrator's configuration changed by `configure`.
pub async fn start_with(
    pool: PgPool,
    memory_url: Option<&str>,
    configure: impl FnOnce(&mut sankalpa_chain_orchestrator::Config),
) -> RealStack {
    let infra = sankalpa_testkit::infra(&sankalpa_testkit::unique_name());
    let auth = sankalpa_testkit::spawn_auth(pool.clone(), infra.clone(), |_| {})
        .await
        .expect("auth starts");
    let objects = std::env::temp_dir().join(format!(
        "sankalpa-chains-{}",
        sankalpa_testkit::unique_name()
    ));
    let runner = sankalpa_testkit::spawn_agent_runner(
        pool.clone(),
        infra.clone(),
        &auth.grpc_url(),
        objects.to_str().expect("temporary paths are text"),
        |_| {},
    )
    .await
    .expect("agent-runner starts");
    let mut services = Vec::new();
    let (memory_url, memory) = match memory_url {
        Some(url) => (url.to_owned(), None),
        None => {
            let memory = sankalpa_testkit::spawn_memory(
                pool.clone(),
                infra.clone(),
                &auth.grpc_url(),
                |_| {},
            )
            .await
            .expect("memory starts");
            let url = memory.grpc_url();
            services.push(memory);
            let client = MemoryServiceClient::connect(url.clone())
                .await
                .expect("memory accepts connections");
            (url, Some(client))
        }
    };
    let orchestrator = sankalpa_testkit::spawn_chain_orchestrator(
        pool,
        infra.clone(),
        &auth.grpc_url(),
        &runner.grpc_url(),
        |config| {
            config.memory_url = Some(memory_url);
            configure(config);
        },
    )
    .await
    .expect("the orchestrator starts");
    let mut auth_client = AuthServiceClient::connect(auth.grpc_url())
        .await
        .expect("auth accepts connections");
    let email = format!("{}@example.com", sankalpa_testkit::unique_name());
    auth_client
        .register(pb::RegisterRequest {
            email: email.clone(),
            password: "correct horse battery".to_owned(),
            display_name: String::new(),
            tenant_name: String::new(),
        })
        .await
        .expect("registration succeeds");
    let token = auth_client
        .login(pb::LoginRequest {
            email,
            password: "correct horse battery".to_owned(),
        })
        .await
        .expect("login succeeds")
        .into_inner()
        .access_token;
    let chains = crate::connect(&orchestrator).await;
    let runner_url = runner.grpc_url();
    let auth_url = auth.grpc_url();
    services.extend([auth, runner, orchestrator]);
    RealStack {
        infra,
        objects,
        chains,
        memory,
        token,
        runner_url,
        auth_url,
        _services: services,
    }
}

impl RealStack {
    pub async fn execute(
        &mut self,
        target: pb::execute_chain_request::Target,
        input: serde_json::Value,
        session_id: Option<&str>,
    ) -> pb::ChainRun {
        let message = pb::ExecuteChainRequest {
            target: Some(target),
            input_json: input.to_string(),
            wait: true,
            wait_timeout_ms: 20_000,
            idempotency_key: String::new(),
            session_id: session_id.map(str::to_owned),
        };
        let token = self.token.clone();
        retry_until_keys_loaded(|| {
            let mut chains = self.chains.clone();
            let request = sankalpa_kit::auth::with_bearer(message.clone(), &token).unwrap();
            async move { chains.execute_chain(request).await }
        })
        .await
        .expect("the run is accepted")
        .into_inner()
    }
}

fn completed(run: &pb::ChainRun) {
    assert_eq!(
        run.status,
        pb::ChainRunStatus::Completed as i32,
        "the run did not complete: {run:#?}"
    );
}

#[sqlx::test(migrations = false)]
async fn the_hello_sequence_template_runs_on_strict_agents(pool: PgPool) {
    let mut stack = start(pool, None).await;
    let run = stack
        .execute(
            pb::execute_chain_request::Target::Template("hello-sequence".to_owned()),
            json!({"name": "Ada"}),
            None,
        )
        .await;
    completed(&run);
    assert_eq!(run.steps.len(), 2);
    let (first, second) = (&run.steps[0], &run.steps[1]);
    assert_eq!(json(&first.output_json)["message"], "Hello, Ada!");
    // The first greeting's `message` is not offered to hello_world, which takes only `name`.
    assert_eq!(json(&second.input_json), json!({"name": "Ada"}));
    assert_eq!(json(&second.output_json)["message"], "Hello, Ada!");
}

#[sqlx::test(migrations = false)]
async fn an_explicit_input_mapping_is_passed_as_written(pool: PgPool) {
    let mut stack = start(pool, None).await;
    let definition = json!({
        "name": "mapped",
        "steps": [
            {"id": "greet", "agent": "hello_world"},
            {"id": "again", "agent": "hello_world", "needs": ["greet"],
             "input": {"name": "${steps.greet.message}", "extra": 1}}
        ]
    });
    let run = stack
        .execute(
            pb::execute_chain_request::Target::DefinitionJson(definition.to_string()),
            json!({}),
            None,
        )
        .await;
    assert_eq!(run.status, pb::ChainRunStatus::Failed as i32, "{run:#?}");
    let again = step(&run, "again");
    assert_eq!(
        json(&again.input_json),
        json!({"name": "Hello, World!", "extra": 1}),
        "a mapping is not filtered"
    );
    let error = again.error.as_ref().expect("the step failed");
    assert!(error.message.contains("extra"), "{error:?}");
}

#[sqlx::test(migrations = false)]
async fn step_outputs_are_saved_in_the_runs_memory_session(pool: PgPool) {
    let mut stack = start(pool, None).await;
    let run = run_in_session(&mut stack, 2, "sequential").await;
    assert_eq!(run.steps.len(), 2);
    outputs_are_in_memory(&stack, &run).await;
}

/// Steps completing together have their saves sent to memory in calls of many
/// (memory.rs): each still lands under its own key, with its own value.
#[sqlx::test(migrations = false)]
async fn the_outputs_of_steps_completing_together_are_each_saved(pool: PgPool) {
    let mut stack = start(pool, None).await;
    let run = run_in_session(&mut stack, 12, "parallel").await;
    assert_eq!(run.steps.len(), 12);
    outputs_are_in_memory(&stack, &run).await;
}

/// A completed run of `steps` hello_world steps in `mode`, in a session of its own.
async fn run_in_session(stack: &mut RealStack, steps: usize, mode: &str) -> pb::ChainRun {
    let session = format!("chain-{}", sankalpa_testkit::unique_name());
    let run = stack
        .execute(
            pb::execute_chain_request::Target::DefinitionJson(
                json!({"agents": vec!["hello_world"; steps], "mode": mode}).to_string(),
            ),
            json!({"name": "Grace"}),
            Some(&session),
        )
        .await;
    completed(&run);
    assert_eq!(run.session_id, session);
    run
}

/// Every step's output is in the run's memory session, living as long as the run is kept.
async fn outputs_are_in_memory(stack: &RealStack, run: &pb::ChainRun) {
    let mut memory = stack.memory.clone().expect("memory runs");
    for step in &run.steps {
        assert!(step.warning.is_empty(), "{step:#?}");
        let request = sankalpa_kit::auth::with_bearer(
            pb::LoadRequest {
                session_id: run.session_id.clone(),
                key: format!("steps.{}", step.id),
            },
            &stack.token,
        )
        .unwrap();
        let entry = memory
            .load(request)
            .await
            .unwrap_or_else(|status| panic!("steps.{} is not in memory: {status}", step.id))
            .into_inner();
        assert_eq!(json(&entry.value_json), json(&step.output_json));
        // It lives as long as the run is kept: the default retention, 30 days.
        let expires_at = entry
            .expires_at
            .expect("a step's output expires with its run");
        let lives = expires_at.seconds - chrono::Utc::now().timestamp();
        assert!(
            (30 * 86_400 - 120..=30 * 86_400).contains(&lives),
            "steps.{} expires in {lives} s",
            step.id
        );
    }
}

#[sqlx::test(migrations = false)]
async fn a_memory_outage_leaves_a_warning_and_the_run_completes(pool: PgPool) {
    // Nothing listens on port 1: every save is refused as unavailable, and waited out briefly.
    let mut stack = start_with(pool, Some("http://127.0.0.1:1"), |config| {
        config.memory_outage_wait = Duration::from_millis(500);
    })
    .await;
    let run = stack
        .execute(
            pb::execute_chain_request::Target::Template("hello-sequence".to_owned()),
            json!({"name": "Ada"}),
            None,
        )
        .await;
    completed(&run);
    for step in &run.steps {
        assert_eq!(step.status, pb::StepStatus::Completed as i32);
        assert_eq!(step.attempts, 1, "the agent is not run again for memory");
        assert!(step.warning.contains("not saved to memory"), "{step:#?}");
        assert_eq!(json(&step.output_json)["message"], "Hello, Ada!");
    }
}

#[sqlx::test(migrations = false)]
async fn a_skipped_step_with_on_skip_continue_lets_its_dependants_run(pool: PgPool) {
    let mut stack = start(pool, None).await;
    let definition = json!({
        "name": "optional-steps",
        "steps": [
            {"id": "optional", "agent": "hello_world", "when": "input.extra", "on_skip": "continue"},
            {"id": "after_optional", "agent": "hello_world", "needs": ["optional"]},
            {"id": "branch", "agent": "hello_world", "when": "input.extra"},
            {"id": "after_branch", "agent": "hello_world", "needs": ["branch"]}
        ]
    });
    let run = stack
        .execute(
            pb::execute_chain_request::Target::DefinitionJson(definition.to_string()),
            json!({"name": "Ada"}),
            None,
        )
        .await;
    completed(&run);
    let status = |id: &str| step(&run, id).status;
    assert_eq!(status("optional"), pb::StepStatus::Skipped as i32);
    assert_eq!(status("after_optional"), pb::StepStatus::Completed as i32);
    assert_eq!(status("branch"), pb::StepStatus::Skipped as i32);
    assert_eq!(status("after_branch"), pb::StepStatus::Skipped as i32);
}

#[sqlx::test(migrations = false)]
async fn a_custom_agent_remembered_for_its_tenant_is_still_unknown_to_another(pool: PgPool) {
    let mut stack = start(pool, None).await;
    let greeter = json!({
        "name": "greeter",
        "category": "custom",
        "description": "Greets.",
        "version": "1.0.0",
        "input_schema": {"type": "object", "required": ["name"],
                         "properties": {"name": {"type": "string"}}},
        "output_schema": {"type": "object", "properties": {"greeting": {"type": "string"}}},
        "template": {"output": {"greeting": "Hello, {{ name }}!"}}
    });
    let mut agents = AgentServiceClient::connect(stack.runner_url.clone())
        .await
        .expect("agent-runner accepts connections");
    let token = stack.token.clone();
    retry_until_keys_loaded(|| {
        let mut agents = agents.clone();
        let request = with_bearer(
            pb::CreateCustomAgentRequest {
                definition_json: greeter.to_string(),
                installed_from: String::new(),
            },
            &token,
        )
        .unwrap();
        async move { agents.create_custom_agent(request).await }
    })
    .await
    .expect("the custom agent is created");
    let greet = pb::execute_chain_request::Target::DefinitionJson(
        json!({"agents": ["greeter"]}).to_string(),
    );
    let run = stack
        .execute(greet.clone(), json!({"name": "Ada"}), None)
        .await;
    completed(&run);

    // The orchestrator now remembers `greeter` for this tenant, and only for it.
    let mut auth = AuthServiceClient::connect(stack.auth_url.clone())
        .await
        .expect("auth accepts connections");
    let mallory = sankalpa_testkit::sign_up(&mut auth, "Mallory").await.token;
    let refused = stack
        .chains
        .execute_chain(
            with_bearer(
                pb::ExecuteChainRequest {
                    target: Some(greet),
                    input_json: json!({"name": "Mallory"}).to_string(),
                    ..Default::default()
                },
                &mallory,
            )
            .unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    let violations = sankalpa_kit::problem::field_violations(&refused);
    assert_eq!(violations[0].field, "steps[0].agent", "{violations:?}");
    // Mallory's own agent of that name is hers to run, not Ada's.
    agents
        .create_custom_agent(
            with_bearer(
                pb::CreateCustomAgentRequest {
                    definition_json: greeter.to_string(),
                    installed_from: String::new(),
                },
                &mallory,
            )
            .unwrap(),
        )
        .await
        .expect("another tenant may use the name");
}
