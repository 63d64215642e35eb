//! auth over real gRPC, on a fresh database per test.

mod api_keys;
mod bootstrap;
mod hashing;
mod health;
mod revocation;
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
    /// Its subject prefix, where it pushes revocations.
    pub infra: sankalpa_kit::config::Infra,
}

pub async fn start(pool: PgPool) -> TestAuth {
    start_with(pool, |_| {}).await
}

pub async fn start_with(
    pool: PgPool,
    configure: impl FnOnce(&mut sankalpa_auth::Config),
) -> TestAuth {
    let infra = sankalpa_testkit::infra(&sankalpa_testkit::unique_name());
    let running = sankalpa_testkit::spawn_auth(pool, infra.clone(), configure)
        .await
        .expect("auth starts");
    let client = AuthServiceClient::connect(running.grpc_url())
        .await
        .expect("auth accepts connections");
    TestAuth {
        running,
        client,
        infra,
    }
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

/// Adds a user with `roles` to the tenant of `admin` and logs it in.
pub async fn member(
    client: &mut AuthServiceClient<Channel>,
    admin: &pb::TokenPair,
    email: &str,
    roles: &[&str],
) -> pb::TokenPair {
    client
        .create_user(authed(
            pb::CreateUserRequest {
                email: email.into(),
                password: "correct horse battery".into(),
                display_name: String::new(),
                roles: roles.iter().map(|role| (*role).to_owned()).collect(),
            },
            &admin.access_token,
        ))
        .await
        .expect("the admin adds a member");
    client
        .login(pb::LoginRequest {
            email: email.into(),
            password: "correct horse battery".into(),
        })
        .await
        .expect("the member logs in")
        .into_inner()
}

/// The claims of an access token, read without checking its signature (auth issued it).
pub fn claims(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("the payload is base64url");
    serde_json::from_slice(&json).expect("the payload is JSON")
}
