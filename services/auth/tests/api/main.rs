//! auth over real gRPC, on a fresh database per test.

mod bootstrap;
mod health;
mod sessions;
mod signing;

use sankalpa_kit::auth::with_bearer;
use sankalpa_proto::v1 as pb;
use sankalpa_proto::v1::auth_service_client::AuthServiceClient;
use sankalpa_testkit::Running;
use sqlx::PgPool;
use tonic::transport::Channel;

pub struct TestAuth {
    pub running: Running,
    pub client: AuthServiceClient<Channel>,
}

pub async fn start(pool: PgPool) -> TestAuth {
    start_with(pool, |_| {}).await
}

pub async fn start_with(
    pool: PgPool,
    configure: impl FnOnce(&mut sankalpa_auth::Config),
) -> TestAuth {
    let name = sankalpa_testkit::unique_name();
    let running = sankalpa_testkit::spawn_auth(pool, sankalpa_testkit::infra(&name), configure)
        .await
        .expect("auth starts");
    let client = AuthServiceClient::connect(running.grpc_url())
        .await
        .expect("auth accepts connections");
    TestAuth { running, client }
}

/// Registers `email` and logs in.
pub async fn register_and_login(
    client: &mut AuthServiceClient<Channel>,
    email: &str,
) -> pb::TokenPair {
    client
        .register(pb::RegisterRequest {
            email: email.to_owned(),
            password: "correct horse battery".to_owned(),
            display_name: String::new(),
            tenant_name: String::new(),
        })
        .await
        .expect("registration succeeds");
    client
        .login(pb::LoginRequest {
            email: email.to_owned(),
            password: "correct horse battery".to_owned(),
        })
        .await
        .expect("login succeeds")
        .into_inner()
}

pub fn authed<T>(message: T, token: &str) -> tonic::Request<T> {
    with_bearer(message, token).expect("a token is valid metadata")
}
