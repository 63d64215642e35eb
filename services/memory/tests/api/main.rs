//! memory over real gRPC, with a real auth for tokens, on a fresh database per test, against
//! the local Redis and NATS and a temporary object folder.

mod backups;
mod cache;
mod concurrency;
mod entries;
mod events;
mod limits;
mod pages;
mod sessions;
mod tenants;
mod transactions;
mod unavailable;

use sankalpa_kit::auth::with_bearer;
use sankalpa_kit::config::Infra;
use sankalpa_proto::v1 as pb;
use sankalpa_proto::v1::auth_service_client::AuthServiceClient;
use sankalpa_proto::v1::memory_service_client::MemoryServiceClient;
use sankalpa_testkit::Running;
use sqlx::PgPool;
use tonic::transport::Channel;

pub struct TestMemory {
    pub client: MemoryServiceClient<Channel>,
    pub auth: AuthServiceClient<Channel>,
    pub infra: Infra,
    /// Where backups are stored.
    pub objects: std::path::PathBuf,
    pub pool: PgPool,
    memory: Running,
    auth_service: Running,
}

/// Removes what the test left outside its database.
impl Drop for TestMemory {
    fn drop(&mut self) {
        sankalpa_testkit::remove_leftovers(&self.infra, vec![self.objects.clone()]);
    }
}

/// A signed-in user of a tenant of their own.
pub use sankalpa_testkit::SignedIn as Caller;

pub async fn start(pool: PgPool) -> TestMemory {
    start_with(pool, |_| {}).await
}

pub async fn start_with(
    pool: PgPool,
    configure: impl FnOnce(&mut sankalpa_memory::Config),
) -> TestMemory {
    let infra = sankalpa_testkit::infra(&sankalpa_testkit::unique_name());
    let auth = sankalpa_testkit::spawn_auth(pool.clone(), infra.clone(), |_| {})
        .await
        .expect("auth starts");
    let mut objects = std::path::PathBuf::new();
    let memory =
        sankalpa_testkit::spawn_memory(pool.clone(), infra.clone(), &auth.grpc_url(), |config| {
            configure(config);
            objects = config.object_store_url.clone().into();
        })
        .await
        .expect("memory starts");
    TestMemory {
        client: MemoryServiceClient::connect(memory.grpc_url())
            .await
            .expect("memory accepts connections"),
        auth: AuthServiceClient::connect(auth.grpc_url())
            .await
            .expect("auth accepts connections"),
        infra,
        objects,
        pool,
        memory,
        auth_service: auth,
    }
}

impl TestMemory {
    /// Auth's gRPC endpoint, for another memory replica beside this one.
    pub fn auth_url(&self) -> String {
        self.auth_service.grpc_url()
    }

    /// What memory's `/metrics` shows now.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.memory.http_url()))
            .await
            .expect("memory serves its metrics")
            .text()
            .await
            .expect("metrics are text")
    }

    /// Registers a user with a tenant of their own, and signs them in.
    pub async fn sign_up(&mut self) -> Caller {
        sankalpa_testkit::sign_up(&mut self.auth, "").await
    }

    pub async fn save(
        &mut self,
        caller: &Caller,
        session: &str,
        key: &str,
        value: &str,
    ) -> Result<pb::Entry, tonic::Status> {
        save_through(&mut self.client, caller, session, key, value).await
    }

    pub async fn load(
        &mut self,
        caller: &Caller,
        session: &str,
        key: &str,
    ) -> Result<pb::Entry, tonic::Status> {
        self.client
            .load(authed(
                pb::LoadRequest {
                    session_id: session.into(),
                    key: key.into(),
                },
                &caller.token,
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    /// Every entry of a session as (key, value), parsed, in key order.
    pub async fn contents(
        &mut self,
        caller: &Caller,
        session: &str,
    ) -> Result<Vec<(String, serde_json::Value)>, tonic::Status> {
        Ok(self
            .pages(caller, session, 200)
            .await?
            .into_iter()
            .flat_map(|page| page.entries)
            .map(|entry| (entry.key, json(&entry.value_json)))
            .collect())
    }

    /// Every page of a session's entries, `page_size` entries at most each, in order.
    pub async fn pages(
        &mut self,
        caller: &Caller,
        session: &str,
        page_size: u32,
    ) -> Result<Vec<pb::GetAllResponse>, tonic::Status> {
        let mut pages = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = self
                .client
                .get_all(authed(
                    pb::GetAllRequest {
                        session_id: session.into(),
                        key_prefix: String::new(),
                        page: Some(pb::PageRequest {
                            page_size,
                            page_token,
                        }),
                    },
                    &caller.token,
                ))
                .await?
                .into_inner();
            page_token = page
                .page
                .as_ref()
                .map(|page| page.next_page_token.clone())
                .unwrap_or_default();
            pages.push(page);
            if page_token.is_empty() {
                return Ok(pages);
            }
        }
    }
}

/// An unconditional save of `value` under `key`, through `client` (this replica's or another's).
pub async fn save_through(
    client: &mut MemoryServiceClient<Channel>,
    caller: &Caller,
    session: &str,
    key: &str,
    value: &str,
) -> Result<pb::Entry, tonic::Status> {
    client
        .save(authed(overwrite(session, key, value), &caller.token))
        .await
        .map(tonic::Response::into_inner)
}

/// An unconditional save of `value` under `key` in `session`, never expiring.
pub fn overwrite(session: &str, key: &str, value: &str) -> pb::SaveRequest {
    pb::SaveRequest {
        session_id: session.into(),
        key: key.into(),
        value_json: value.into(),
        expected_version: None,
        ttl_seconds: 0,
    }
}

pub fn authed<T>(message: T, token: &str) -> tonic::Request<T> {
    with_bearer(message, token).expect("a token is valid metadata")
}

pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).expect("the service answers JSON")
}

/// The field a validation error names.
pub fn violated_field(status: &tonic::Status) -> String {
    sankalpa_kit::problem::field_violations(status)
        .first()
        .map(|violation| violation.field.clone())
        .unwrap_or_default()
}

/// The current version an ABORTED conflict reports in its error details.
pub fn current_version(status: &tonic::Status) -> u64 {
    sankalpa_kit::problem::current_version(status).expect("a conflict carries the current version")
}
