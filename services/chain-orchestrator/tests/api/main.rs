//! The chain orchestrator over real gRPC, with real auth, Postgres and NATS, on a fresh database
//! per test; agents come from a fake agent-runner with controllable behaviour (fake_agents.rs),
//! except in real_agents.rs, which runs the real agent-runner and memory.

mod approvals;
mod definitions;
mod durability;
mod fake_agents;
mod fullstack;
mod limits;
mod maps;
mod outages;
mod quotas;
mod real_agents;
mod retention;
mod runs;
mod streams;
mod subchains;
mod tenancy;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use sankalpa_kit::auth::{TokenVerifier, load_jwks, with_bearer};
use sankalpa_kit::config::Infra;
use sankalpa_proto::v1 as pb;
use sankalpa_proto::v1::auth_service_client::AuthServiceClient;
use sankalpa_proto::v1::chain_service_client::ChainServiceClient;
use sankalpa_testkit::Running;
use serde_json::Value;
use sqlx::PgPool;
use tonic::transport::Channel;

use fake_agents::FakeAgentRunner;

pub struct Stack {
    pub pool: PgPool,
    pub infra: Infra,
    pub auth: Running,
    pub agents: FakeAgentRunner,
    pub orchestrator: Running,
    pub chains: ChainServiceClient<Channel>,
    pub token: String,
}

pub async fn start(pool: PgPool) -> Stack {
    start_with(pool, |_| {}).await
}

pub async fn start_with(
    pool: PgPool,
    configure: impl FnOnce(&mut sankalpa_chain_orchestrator::Config),
) -> Stack {
    let infra = sankalpa_testkit::infra(&sankalpa_testkit::unique_name());
    let auth = sankalpa_testkit::spawn_auth(pool.clone(), infra.clone(), |_| {})
        .await
        .expect("auth starts");
    let mut auth_client = AuthServiceClient::connect(auth.grpc_url())
        .await
        .expect("auth accepts connections");
    let verifier = Arc::new(TokenVerifier::new(
        &infra.token_issuer,
        &infra.token_audience,
    ));
    let mut keys = AuthServiceClient::new(
        sankalpa_kit::grpc::channel(&auth.grpc_url()).expect("auth's URL is valid"),
    );
    load_jwks(&verifier, &mut keys)
        .await
        .expect("auth serves its keys");
    // As agent-runner does, the fake refuses a revoked token as soon as auth says so.
    let nats = async_nats::connect(&infra.nats_url)
        .await
        .expect("NATS accepts connections");
    tokio::spawn(sankalpa_kit::auth::follow_revocations(
        verifier.clone(),
        nats,
        infra.subject_prefix.clone(),
        tokio_util::sync::CancellationToken::new(),
    ));
    let agents = fake_agents::start(verifier).await;
    auth_client
        .register(pb::RegisterRequest {
            email: "ada@example.com".to_owned(),
            password: "correct horse battery".to_owned(),
            display_name: String::new(),
            tenant_name: String::new(),
        })
        .await
        .expect("registration succeeds");
    let token = auth_client
        .login(pb::LoginRequest {
            email: "ada@example.com".to_owned(),
            password: "correct horse battery".to_owned(),
        })
        .await
        .expect("login succeeds")
        .into_inner()
        .access_token;
    let orchestrator = sankalpa_testkit::spawn_chain_orchestrator(
        pool.clone(),
        infra.clone(),
        &auth.grpc_url(),
        &agents.url(),
        configure,
    )
    .await
    .expect("the orchestrator starts");
    let chains = connect(&orchestrator).await;
    Stack {
        pool,
        infra,
        auth,
        agents,
        orchestrator,
        chains,
        token,
    }
}

/// A client of an orchestrator, once it knows auth's keys.
pub async fn connect(orchestrator: &Running) -> ChainServiceClient<Channel> {
    ChainServiceClient::connect(orchestrator.grpc_url())
        .await
        .expect("the orchestrator accepts connections")
}

impl Stack {
    /// Starts another orchestrator on the same database, infrastructure, auth and agents (a
    /// replica that takes runs over) and points `chains` at it; the caller keeps it running.
    pub async fn start_successor(&mut self) -> Running {
        let successor = sankalpa_testkit::spawn_chain_orchestrator(
            self.pool.clone(),
            self.infra.clone(),
            &self.auth.grpc_url(),
            &self.agents.url(),
            |_| {},
        )
        .await
        .expect("a successor orchestrator starts");
        self.chains = connect(&successor).await;
        successor
    }

    pub fn authed<T>(&self, message: T) -> tonic::Request<T> {
        authed_as(&self.token, message)
    }

    /// The access token of a user of another, new tenant.
    pub async fn other_tenant(&self) -> String {
        let mut auth = AuthServiceClient::connect(self.auth.grpc_url())
            .await
            .expect("auth accepts connections");
        sankalpa_testkit::sign_up(&mut auth, "Mallory").await.token
    }

    /// Runs an inline definition, waiting for the end unless `wait` is false.
    pub async fn execute(&mut self, definition: Value, input: Value, wait: bool) -> pb::ChainRun {
        self.try_execute(definition, input, wait, "")
            .await
            .expect("the run is accepted")
    }

    pub async fn try_execute(
        &mut self,
        definition: Value,
        input: Value,
        wait: bool,
        idempotency_key: &str,
    ) -> Result<pb::ChainRun, tonic::Status> {
        let request = self.authed(pb::ExecuteChainRequest {
            target: Some(pb::execute_chain_request::Target::DefinitionJson(
                definition.to_string(),
            )),
            input_json: input.to_string(),
            wait,
            wait_timeout_ms: 20_000,
            idempotency_key: idempotency_key.to_owned(),
            session_id: None,
        });
        retry_until_keys_loaded(|| {
            let mut chains = self.chains.clone();
            let request = clone_request(&request);
            async move { chains.execute_chain(request).await }
        })
        .await
        .map(tonic::Response::into_inner)
    }

    pub async fn get_run(&mut self, id: &str) -> pb::ChainRun {
        let request = self.authed(pb::GetRunRequest { id: id.to_owned() });
        retry_until_keys_loaded(|| {
            let mut chains = self.chains.clone();
            let request = clone_request(&request);
            async move { chains.get_run(request).await }
        })
        .await
        .expect("the run exists")
        .into_inner()
    }

    /// The run's events from its first; a run that has not finished yet is waited for.
    pub async fn watched(&mut self, id: &str) -> Vec<pb::Event> {
        self.chains
            .watch_run(self.authed(pb::WatchRunRequest {
                run_id: id.to_owned(),
                after_sequence: None,
            }))
            .await
            .expect("the run's events can be watched")
            .into_inner()
            .map(|event| event.expect("events arrive"))
            .collect()
            .await
    }

    /// Polls the run until `done` holds of it.
    pub async fn run_until(
        &mut self,
        id: &str,
        done: impl Fn(&pb::ChainRun) -> bool,
    ) -> pb::ChainRun {
        let token = self.token.clone();
        self.run_until_as(&token, id, done).await
    }

    /// Polls the run, as the holder of `token`, until `done` holds of it.
    pub async fn run_until_as(
        &mut self,
        token: &str,
        id: &str,
        done: impl Fn(&pb::ChainRun) -> bool,
    ) -> pb::ChainRun {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let request = authed_as(token, pb::GetRunRequest { id: id.to_owned() });
            let run = retry_until_keys_loaded(|| {
                let mut chains = self.chains.clone();
                let request = clone_request(&request);
                async move { chains.get_run(request).await }
            })
            .await
            .expect("the run exists")
            .into_inner();
            if done(&run) {
                return run;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the run never got there: {run:#?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// Removes what the test left outside its database.
impl Drop for Stack {
    fn drop(&mut self) {
        sankalpa_testkit::remove_leftovers(&self.infra, Vec::new());
    }
}

pub fn authed_as<T>(token: &str, message: T) -> tonic::Request<T> {
    with_bearer(message, token).expect("a token is valid metadata")
}

/// An ExecuteChain request for an inline definition, not waiting.
pub fn inline_run(
    definition: &Value,
    input: &Value,
    idempotency_key: &str,
) -> pb::ExecuteChainRequest {
    pb::ExecuteChainRequest {
        target: Some(pb::execute_chain_request::Target::DefinitionJson(
            definition.to_string(),
        )),
        input_json: input.to_string(),
        wait: false,
        wait_timeout_ms: 0,
        idempotency_key: idempotency_key.to_owned(),
        session_id: None,
    }
}

fn clone_request<T: Clone>(request: &tonic::Request<T>) -> tonic::Request<T> {
    let mut copy = tonic::Request::new(request.get_ref().clone());
    *copy.metadata_mut() = request.metadata().clone();
    copy
}

/// The orchestrator fetches auth's keys in the background at start; until it has them, tokens
/// are refused as signed by an unknown key.
pub async fn retry_until_keys_loaded<T, F, Fut>(mut call: F) -> Result<T, tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    for _ in 0..50 {
        match call().await {
            Err(status)
                if status.code() == tonic::Code::Unauthenticated
                    && status.message().contains("unknown key") =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
    call().await
}

pub fn step<'a>(run: &'a pb::ChainRun, id: &str) -> &'a pb::StepRun {
    run.steps
        .iter()
        .find(|step| step.id == id)
        .unwrap_or_else(|| panic!("no step {id} in {run:#?}"))
}

/// An event as `"<action>"` or `"<action> <step id>"`.
pub fn action_of(event: &pb::Event) -> String {
    let action = event.r#type.trim_start_matches("sankalpa.chains.");
    match json(&event.data_json)["step_id"].as_str() {
        Some(step) => format!("{action} {step}"),
        None => action.to_owned(),
    }
}

pub fn json(text: &str) -> Value {
    serde_json::from_str(text).expect("JSON text")
}
