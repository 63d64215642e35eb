//! Starts auth and the gateway in this process, on free ports, against the local Postgres and
//! Redis, the way `main` starts them.

use reqwest::StatusCode;
use sankalpa_kit::config::Infra;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A running auth service and gateway, stopped when dropped.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    stop: CancellationToken,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A user signed in through the gateway.
pub struct Session {
    pub email: String,
    pub user_id: String,
    pub tenant_id: String,
    pub access_token: String,
    pub refresh_token: String,
}

pub const PASSWORD: &str = "correct horse battery staple";

pub async fn spawn_app(pool: PgPool) -> TestApp {
    spawn_app_with(pool, |_, _| {}).await
}

/// Starts the pair after `configure` has adjusted their test configurations.
pub async fn spawn_app_with(
    pool: PgPool,
    configure: impl FnOnce(&mut sankalpa_auth::Config, &mut sankalpa_gateway::Config),
) -> TestApp {
    let infra = Infra::from_env().expect("the test environment's SANKALPA_* settings are valid");
    let mut auth_config = sankalpa_auth::Config::for_tests(infra.clone());
    let mut gateway_config = sankalpa_gateway::Config::for_tests(infra, String::new());
    configure(&mut auth_config, &mut gateway_config);

    let stop = CancellationToken::new();
    let tasks = TaskTracker::new();
    let auth = sankalpa_auth::Auth::build(auth_config, pool)
        .await
        .expect("auth starts");
    gateway_config.auth_url = format!("http://{}", auth.grpc_addr());
    tasks.spawn(auth.serve(stop.clone().cancelled_owned()));
    let gateway = sankalpa_gateway::Gateway::build(gateway_config)
        .await
        .expect("the gateway starts");
    let address = format!("http://{}", gateway.addr());
    tasks.spawn(gateway.serve(stop.clone().cancelled_owned()));
    tasks.close();

    TestApp {
        address,
        client: reqwest::Client::new(),
        stop,
    }
}

pub fn unique_email() -> String {
    format!("user-{}@example.com", uuid::Uuid::new_v4().simple())
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("the gateway answers")
    }

    pub async fn get_as(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("the gateway answers")
    }

    pub async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        self.post(
            "/api/users/login",
            &json!({ "email": email, "password": password }),
        )
        .await
    }

    /// Registers a new user, the admin of a new tenant, and signs it in.
    pub async fn admin(&self) -> Session {
        let email = unique_email();
        let registered = self
            .post(
                "/api/users/register",
                &json!({ "email": email, "password": PASSWORD, "display_name": "Ada" }),
            )
            .await;
        assert_eq!(registered.status(), StatusCode::CREATED);
        self.session(&email, PASSWORD).await
    }

    /// Signs in an existing user.
    pub async fn session(&self, email: &str, password: &str) -> Session {
        let login = self.login(email, password).await;
        assert_eq!(login.status(), StatusCode::OK);
        let pair: Value = login.json().await.expect("a token pair");
        Session {
            email: email.to_owned(),
            user_id: text(&pair["user"]["id"]),
            tenant_id: text(&pair["user"]["tenant_id"]),
            access_token: text(&pair["access_token"]),
            refresh_token: text(&pair["refresh_token"]),
        }
    }
}

pub fn text(value: &Value) -> String {
    value
        .as_str()
        .unwrap_or_else(|| panic!("expected a string, got {value}"))
        .to_owned()
}

/// Asserts `response` is a problem+json with `status`, and gives its document.
pub async fn problem(response: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.expect("a problem document");
    assert_eq!(body["status"], status.as_u16());
    body
}
