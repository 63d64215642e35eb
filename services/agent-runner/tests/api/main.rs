//! agent-runner over real gRPC, with a real auth for tokens, on a fresh database per test,
//! against the local NATS and a temporary object folder.

mod agents;
mod bounds;
mod catalog;
mod chat;
mod custom;
mod events;
mod exactly_once;
mod execute;
mod llm;
mod memory;
mod models;
mod outages;
mod project;
mod quotas;

use std::path::PathBuf;

use sankalpa_kit::auth::with_bearer;
use sankalpa_kit::config::Infra;
use sankalpa_proto::v1 as pb;
use sankalpa_proto::v1::agent_service_client::AgentServiceClient;
use sankalpa_proto::v1::auth_service_client::AuthServiceClient;
use sankalpa_testkit::Running;
use serde_json::Value;
use sqlx::PgPool;
use tonic::transport::Channel;

pub struct TestRunner {
    pub client: AgentServiceClient<Channel>,
    pub auth: AuthServiceClient<Channel>,
    pub infra: Infra,
    /// Where artifacts are stored.
    pub objects: PathBuf,
    pub pool: PgPool,
    pub runner: Running,
    _auth: Running,
}

/// A signed-in user of a tenant of their own (an admin of it).
pub use sankalpa_testkit::SignedIn as Caller;

pub async fn start(pool: PgPool) -> TestRunner {
    start_with(pool, |_| {}).await
}

pub async fn start_with(
    pool: PgPool,
    configure: impl FnOnce(&mut sankalpa_agent_runner::Config),
) -> TestRunner {
    start_on(
        pool,
        sankalpa_testkit::infra(&sankalpa_testkit::unique_name()),
        configure,
    )
    .await
}

/// Starts agent-runner with `infra`, which services the test started itself may share: the
/// runner's drop removes what they all left behind.
pub async fn start_on(
    pool: PgPool,
    infra: Infra,
    configure: impl FnOnce(&mut sankalpa_agent_runner::Config),
) -> TestRunner {
    let auth = sankalpa_testkit::spawn_auth(pool.clone(), infra.clone(), |_| {})
        .await
        .expect("auth starts");
    let objects = std::env::temp_dir().join(format!(
        "sankalpa-agents-{}",
        sankalpa_testkit::unique_name()
    ));
    let runner = sankalpa_testkit::spawn_agent_runner(
        pool.clone(),
        infra.clone(),
        &auth.grpc_url(),
        objects.to_str().expect("temporary paths are text"),
        configure,
    )
    .await
    .expect("agent-runner starts");
    TestRunner {
        client: AgentServiceClient::connect(runner.grpc_url())
            .await
            .expect("agent-runner accepts connections"),
        auth: AuthServiceClient::connect(auth.grpc_url())
            .await
            .expect("auth accepts connections"),
        infra,
        objects,
        pool,
        runner,
        _auth: auth,
    }
}

/// Removes what the test left outside its database.
impl Drop for TestRunner {
    fn drop(&mut self) {
        sankalpa_testkit::remove_leftovers(&self.infra, vec![self.objects.clone()]);
    }
}

impl TestRunner {
    /// The gRPC URL of the auth service the runner takes its token keys from.
    pub fn auth_url(&self) -> String {
        self._auth.grpc_url()
    }

    /// Registers a user with a tenant of their own, and signs them in.
    pub async fn sign_up(&mut self) -> Caller {
        sankalpa_testkit::sign_up(&mut self.auth, "").await
    }

    /// A token of `caller`'s tenant holding only `permissions` (through an API key).
    pub async fn token_with(&mut self, caller: &Caller, permissions: &[&str]) -> String {
        let key = self
            .auth
            .create_api_key(authed(
                pb::CreateApiKeyRequest {
                    name: "limited".into(),
                    permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
                    expires_in_seconds: 0,
                    purpose: pb::ApiKeyPurpose::Tool.into(),
                },
                &caller.token,
            ))
            .await
            .expect("the key is created")
            .into_inner();
        self.auth
            .exchange_api_key(pb::ExchangeApiKeyRequest {
                api_key: key.secret,
            })
            .await
            .expect("the key is exchanged")
            .into_inner()
            .access_token
    }

    pub async fn execute(
        &mut self,
        token: &str,
        agent: &str,
        input: Value,
    ) -> Result<pb::AgentRun, tonic::Status> {
        self.execute_with(token, asking(agent, &input)).await
    }

    pub async fn execute_with(
        &mut self,
        token: &str,
        request: pb::ExecuteAgentRequest,
    ) -> Result<pb::AgentRun, tonic::Status> {
        self.client
            .execute_agent(authed(request, token))
            .await
            .map(tonic::Response::into_inner)
    }

    /// Runs `agent` and returns its output, failing the test unless the run completed.
    pub async fn output(&mut self, token: &str, agent: &str, input: Value) -> Value {
        json(
            &self
                .completed(token, asking(agent, &input))
                .await
                .output_json,
        )
    }

    /// The run `request` asks for, which must complete.
    pub async fn completed(
        &mut self,
        token: &str,
        request: pb::ExecuteAgentRequest,
    ) -> pb::AgentRun {
        let agent = request.agent.clone();
        let run = self
            .execute_with(token, request)
            .await
            .unwrap_or_else(|status| panic!("{agent} was refused: {status:?}"));
        assert_eq!(
            run.status,
            pb::AgentRunStatus::Completed as i32,
            "{agent} did not complete: {:?}",
            run.error
        );
        run
    }
}

impl TestRunner {
    /// The value of the series `series` (`name{labels}`, as exposed) in agent-runner's metrics.
    pub async fn metric(&self, series: &str) -> f64 {
        let url = format!("{}/metrics", self.runner.http_url());
        let body = reqwest::get(url).await.unwrap().text().await.unwrap();
        let prefix = format!("{series} ");
        body.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no series {series} in {body}"))
            .trim()
            .parse()
            .unwrap()
    }
}

/// A request to run `agent` on `input`, every other field at its default.
fn asking(agent: &str, input: &Value) -> pb::ExecuteAgentRequest {
    pb::ExecuteAgentRequest {
        agent: agent.into(),
        input_json: input.to_string(),
        ..Default::default()
    }
}

pub fn authed<T>(message: T, token: &str) -> tonic::Request<T> {
    with_bearer(message, token).expect("a token is valid metadata")
}

pub fn json(text: &str) -> Value {
    serde_json::from_str(text).expect("the service answers JSON")
}

/// The fields a validation error names.
pub fn violated_fields(status: &tonic::Status) -> Vec<String> {
    sankalpa_kit::problem::field_violations(status)
        .into_iter()
        .map(|violation| violation.field)
        .collect()
}
