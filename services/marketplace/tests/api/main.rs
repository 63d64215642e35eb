//! The marketplace over real gRPC, in front of a real auth, agent-runner and chain
//! orchestrator, on a fresh database per test, against the local NATS and temporary object
//! folders.

mod events;
mod install;
mod limits;
mod publish;
mod reviews;
mod search;
mod tenants;
mod unavailable;
mod versions;
mod visibility;

use std::path::PathBuf;
use std::time::Duration;

use sankalpa_kit::auth::with_bearer;
use sankalpa_kit::config::Infra;
use sankalpa_proto::v1 as pb;
use sankalpa_proto::v1::agent_service_client::AgentServiceClient;
use sankalpa_proto::v1::auth_service_client::AuthServiceClient;
use sankalpa_proto::v1::chain_service_client::ChainServiceClient;
use sankalpa_proto::v1::marketplace_service_client::MarketplaceServiceClient;
use sankalpa_testkit::Running;
use serde_json::{Value, json};
use sqlx::PgPool;
use tonic::transport::Channel;

pub struct Stack {
    pub market: MarketplaceServiceClient<Channel>,
    pub chains: ChainServiceClient<Channel>,
    pub agents: AgentServiceClient<Channel>,
    pub auth: AuthServiceClient<Channel>,
    pub pool: PgPool,
    pub infra: Infra,
    /// Where the marketplace keeps packages.
    pub packages: PathBuf,
    artifacts: PathBuf,
    _marketplace: Running,
    /// Taken when a test stops it.
    orchestrator: Option<Running>,
    _agents: Running,
    _auth: Running,
}

impl Drop for Stack {
    fn drop(&mut self) {
        sankalpa_testkit::remove_leftovers(
            &self.infra,
            vec![self.packages.clone(), self.artifacts.clone()],
        );
    }
}

/// A signed-in user: the admin of a tenant of their own.
pub use sankalpa_testkit::SignedIn as Caller;

pub async fn start(pool: PgPool) -> Stack {
    start_with(pool, |_| {}).await
}

/// A stack whose marketplace is configured by `configure`.
pub async fn start_with(
    pool: PgPool,
    configure: impl FnOnce(&mut sankalpa_marketplace::Config),
) -> Stack {
    let name = sankalpa_testkit::unique_name();
    let infra = sankalpa_testkit::infra(&name);
    let auth = sankalpa_testkit::spawn_auth(pool.clone(), infra.clone(), |_| {})
        .await
        .expect("auth starts");
    let artifacts = std::env::temp_dir().join(format!("sankalpa-market-artifacts-{name}"));
    let packages = std::env::temp_dir().join(format!("sankalpa-market-packages-{name}"));
    let agents = sankalpa_testkit::spawn_agent_runner(
        pool.clone(),
        infra.clone(),
        &auth.grpc_url(),
        artifacts.to_str().expect("temporary paths are text"),
        |_| {},
    )
    .await
    .expect("agent-runner starts");
    let orchestrator = sankalpa_testkit::spawn_chain_orchestrator(
        pool.clone(),
        infra.clone(),
        &auth.grpc_url(),
        &agents.grpc_url(),
        |_| {},
    )
    .await
    .expect("the orchestrator starts");
    let marketplace = sankalpa_testkit::spawn_marketplace(
        pool.clone(),
        infra.clone(),
        &auth.grpc_url(),
        &orchestrator.grpc_url(),
        &agents.grpc_url(),
        packages.to_str().expect("temporary paths are text"),
        configure,
    )
    .await
    .expect("the marketplace starts");
    let connect = |running: &Running| {
        Channel::from_shared(running.grpc_url())
            .expect("a valid URL")
            .connect_lazy()
    };
    Stack {
        market: MarketplaceServiceClient::new(connect(&marketplace)),
        chains: ChainServiceClient::new(connect(&orchestrator)),
        agents: AgentServiceClient::new(connect(&agents)),
        auth: AuthServiceClient::new(connect(&auth)),
        pool,
        infra,
        packages,
        artifacts,
        _marketplace: marketplace,
        orchestrator: Some(orchestrator),
        _agents: agents,
        _auth: auth,
    }
}

impl Stack {
    /// Registers a user with a tenant of their own, and signs them in; waits until the
    /// orchestrator, which loads auth's keys in the background, accepts their token.
    pub async fn sign_up(&mut self) -> Caller {
        let caller = sankalpa_testkit::sign_up(&mut self.auth, "Ada").await;
        for _ in 0..50 {
            let listed = self
                .chains
                .list_chains(authed(pb::ListChainsRequest::default(), &caller.token))
                .await;
            match listed {
                Err(status) if status.code() == tonic::Code::Unauthenticated => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                _ => break,
            }
        }
        caller
    }

    pub async fn publish(
        &mut self,
        caller: &Caller,
        request: pb::PublishRequest,
    ) -> Result<pb::PublishResponse, tonic::Status> {
        self.market
            .publish(authed(request, &caller.token))
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn get_item(
        &mut self,
        caller: &Caller,
        item_id: &str,
    ) -> Result<pb::Item, tonic::Status> {
        self.market
            .get_item(authed(
                pb::GetItemRequest {
                    item: Some(by_id(item_id)),
                },
                &caller.token,
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn search(
        &mut self,
        caller: &Caller,
        request: pb::SearchRequest,
    ) -> Result<Vec<pb::Item>, tonic::Status> {
        self.market
            .search(authed(request, &caller.token))
            .await
            .map(|answer| answer.into_inner().items)
    }

    pub async fn install(
        &mut self,
        caller: &Caller,
        item_id: &str,
        version: Option<&str>,
    ) -> Result<pb::InstallResponse, tonic::Status> {
        self.market
            .install(authed(
                pb::InstallRequest {
                    item: Some(by_id(item_id)),
                    version: version.map(str::to_owned),
                },
                &caller.token,
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    /// Runs a stored chain of `caller`'s tenant to its end.
    pub async fn run_chain(
        &mut self,
        caller: &Caller,
        chain_id: &str,
        input: Value,
    ) -> pb::ChainRun {
        self.chains
            .execute_chain(authed(
                pb::ExecuteChainRequest {
                    target: Some(pb::execute_chain_request::Target::Chain(pb::ChainRef {
                        id: chain_id.to_owned(),
                        version: None,
                    })),
                    input_json: input.to_string(),
                    wait: true,
                    wait_timeout_ms: 20_000,
                    idempotency_key: String::new(),
                    session_id: None,
                },
                &caller.token,
            ))
            .await
            .expect("the run is accepted")
            .into_inner()
    }

    /// Stops the chain orchestrator, as when it is down or restarting.
    pub async fn stop_orchestrator(&mut self) {
        if let Some(orchestrator) = self.orchestrator.take() {
            orchestrator.stop().await.expect("the orchestrator stops");
        }
    }

    /// Every file under the package folder.
    pub fn stored_packages(&self) -> Vec<PathBuf> {
        fn walk(dir: &std::path::Path, found: &mut Vec<PathBuf>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, found);
                } else {
                    found.push(path);
                }
            }
        }
        let mut found = Vec::new();
        walk(&self.packages, &mut found);
        found
    }
}

pub fn authed<T>(message: T, token: &str) -> tonic::Request<T> {
    with_bearer(message, token).expect("a token is valid metadata")
}

pub fn by_id(id: &str) -> pb::ItemRef {
    pb::ItemRef {
        by: Some(pb::item_ref::By::Id(id.to_owned())),
    }
}

/// A chain of one hello_world step.
pub fn hello_chain() -> Value {
    json!({
        "name": "greet",
        "description": "Greets whoever is named.",
        "steps": [{"id": "greet", "agent": "hello_world"}]
    })
}

/// A publish of a public chain item.
pub fn chain_item(slug: &str, name: &str, version: &str) -> pb::PublishRequest {
    pb::PublishRequest {
        slug: slug.to_owned(),
        name: name.to_owned(),
        description: "Says hello to whoever is named, politely.".to_owned(),
        tags: vec!["greeting".to_owned(), "demo".to_owned()],
        kind: pb::ItemKind::Chain as i32,
        visibility: pb::Visibility::Public as i32,
        version: version.to_owned(),
        package_json: hello_chain().to_string(),
        release_notes: String::new(),
    }
}

pub fn json(text: &str) -> Value {
    serde_json::from_str(text).expect("the service answers JSON")
}
