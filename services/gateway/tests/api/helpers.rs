//! Starts auth, the gateway and, for their routes, memory, agent-runner and the chain
//! orchestrator, or all of those and the marketplace, in this process, on free ports, against
//! the local Postgres, Redis and NATS, the way `main` starts them (through testkit).

use reqwest::StatusCode;
use sankalpa_kit::config::Infra;
use sankalpa_testkit::Running;
use sankalpa_testkit::llm::StreamingLlm;
use serde_json::{Value, json};
use sqlx::PgPool;

/// Running services behind a gateway, stopped when dropped.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    _gateway: Running,
    auth: Running,
    /// The services behind the gateway besides auth, stopped before their leftovers go.
    backends: Vec<Running>,
    /// What to remove once the test ends: its stream, and its object folders (memory's first).
    leftovers: Option<(Infra, Vec<std::path::PathBuf>)>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.backends.clear();
        if let Some((infra, folders)) = self.leftovers.take() {
            sankalpa_testkit::remove_leftovers(&infra, folders);
        }
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

/// Starts auth and the gateway after `configure` has adjusted their test configurations.
pub async fn spawn_app_with(
    pool: PgPool,
    configure: impl FnOnce(&mut sankalpa_auth::Config, &mut sankalpa_gateway::Config),
) -> TestApp {
    let infra = Infra::from_env().expect("the test environment's SANKALPA_* settings are valid");
    // `configure` wants both configurations at once, and testkit hands out one at a time: the
    // gateway's is adjusted here, alongside auth's, and handed over whole below.
    let mut gateway_config = sankalpa_gateway::Config::for_tests(infra.clone(), String::new());
    let auth = sankalpa_testkit::spawn_auth(pool, infra.clone(), |auth| {
        configure(auth, &mut gateway_config)
    })
    .await
    .expect("auth starts");
    gateway_config.auth_url = auth.grpc_url();
    let gateway = sankalpa_testkit::spawn_gateway(infra, |config| *config = gateway_config)
        .await
        .expect("the gateway starts");
    TestApp {
        address: gateway.http_url(),
        client: reqwest::Client::new(),
        _gateway: gateway,
        auth,
        backends: Vec::new(),
        leftovers: None,
    }
}

/// Starts auth, memory (after `configure`) and the gateway in front of both. Events go to a
/// stream of this test's own, removed with its object folder when the app is dropped.
pub async fn spawn_app_with_memory(
    pool: PgPool,
    configure: impl FnOnce(&mut sankalpa_memory::Config),
) -> TestApp {
    let infra = sankalpa_testkit::infra(&sankalpa_testkit::unique_name());
    let auth = sankalpa_testkit::spawn_auth(pool.clone(), infra.clone(), |_| {})
        .await
        .expect("auth starts");
    let mut objects = std::path::PathBuf::new();
    let memory = sankalpa_testkit::spawn_memory(pool, infra.clone(), &auth.grpc_url(), |config| {
        configure(config);
        objects = config.object_store_url.clone().into();
    })
    .await
    .expect("memory starts");
    let gateway = sankalpa_testkit::spawn_gateway(infra.clone(), |config| {
        config.auth_url = auth.grpc_url();
        config.memory_url = memory.grpc_url();
    })
    .await
    .expect("the gateway starts");
    TestApp {
        address: gateway.http_url(),
        client: reqwest::Client::new(),
        _gateway: gateway,
        auth,
        backends: vec![memory],
        leftovers: Some((infra, vec![objects])),
    }
}

/// Starts auth, memory, agent-runner (its runs' sessions in that memory), the chain
/// orchestrator and the gateway in front of them. Events go to a stream of this test's own,
/// removed with the object folders when the app is dropped.
pub async fn spawn_app_with_agents(pool: PgPool) -> TestApp {
    spawn_fleet(pool, false).await
}

/// Starts the whole fleet: what [`spawn_app_with_agents`] starts, and the marketplace, which
/// validates and installs through that agent-runner and orchestrator.
pub async fn spawn_app_with_marketplace(pool: PgPool) -> TestApp {
    spawn_fleet(pool, true).await
}

async fn spawn_fleet(pool: PgPool, with_marketplace: bool) -> TestApp {
    spawn_fleet_with(pool, with_marketplace, |_| {}, |_, _| {}).await
}

/// The services' ops addresses, by name, for a gateway configured after they start.
pub type OpsUrls<'a> = &'a [(&'static str, String)];

/// Starts the fleet of [`spawn_fleet`], auth configured by `configure_auth` and the gateway by
/// `configure_gateway`, which is also told where each other service serves `/metrics`.
pub async fn spawn_fleet_with(
    pool: PgPool,
    with_marketplace: bool,
    configure_auth: impl FnOnce(&mut sankalpa_auth::Config),
    configure_gateway: impl FnOnce(&mut sankalpa_gateway::Config, OpsUrls<'_>),
) -> TestApp {
    start_fleet(
        pool,
        with_marketplace,
        None,
        configure_auth,
        configure_gateway,
    )
    .await
}

/// What [`spawn_app_with_agents`] starts, agent-runner asking `llm`.
pub async fn spawn_app_with_llm(pool: PgPool, llm: &StreamingLlm) -> TestApp {
    start_fleet(pool, false, Some(llm), |_| {}, |_, _| {}).await
}

async fn start_fleet(
    pool: PgPool,
    with_marketplace: bool,
    llm: Option<&StreamingLlm>,
    configure_auth: impl FnOnce(&mut sankalpa_auth::Config),
    configure_gateway: impl FnOnce(&mut sankalpa_gateway::Config, OpsUrls<'_>),
) -> TestApp {
    let infra = sankalpa_testkit::infra(&sankalpa_testkit::unique_name());
    let auth = sankalpa_testkit::spawn_auth(pool.clone(), infra.clone(), configure_auth)
        .await
        .expect("auth starts");
    let mut memory_objects = std::path::PathBuf::new();
    let memory =
        sankalpa_testkit::spawn_memory(pool.clone(), infra.clone(), &auth.grpc_url(), |config| {
            memory_objects = config.object_store_url.clone().into();
        })
        .await
        .expect("memory starts");
    let objects = std::env::temp_dir().join(format!(
        "sankalpa-gateway-{}",
        sankalpa_testkit::unique_name()
    ));
    let agents = sankalpa_testkit::spawn_agent_runner(
        pool.clone(),
        infra.clone(),
        &auth.grpc_url(),
        objects.to_str().expect("temporary paths are text"),
        |config| {
            config.memory_url = Some(memory.grpc_url());
            config.llm = llm.map(StreamingLlm::config);
            config.model_keys = sankalpa_agent_runner::Keyring::parse(MODEL_KEYS)
                .expect("the test's envelope key parses");
        },
    )
    .await
    .expect("agent-runner starts");
    let chains = sankalpa_testkit::spawn_chain_orchestrator(
        pool.clone(),
        infra.clone(),
        &auth.grpc_url(),
        &agents.grpc_url(),
        |_| {},
    )
    .await
    .expect("the chain orchestrator starts");
    let packages = objects.join("packages");
    let marketplace = if with_marketplace {
        Some(
            sankalpa_testkit::spawn_marketplace(
                pool.clone(),
                infra.clone(),
                &auth.grpc_url(),
                &chains.grpc_url(),
                &agents.grpc_url(),
                packages.to_str().expect("temporary paths are text"),
                |_| {},
            )
            .await
            .expect("the marketplace starts"),
        )
    } else {
        None
    };
    // The whole fleet comes with the marketplace: the triggers service too.
    let triggers = if with_marketplace {
        Some(
            sankalpa_testkit::spawn_triggers(pool, infra.clone(), &auth.grpc_url(), |_| {})
                .await
                .expect("the triggers service starts"),
        )
    } else {
        None
    };
    let gateway = sankalpa_testkit::spawn_gateway(infra.clone(), |config| {
        config.auth_url = auth.grpc_url();
        config.memory_url = memory.grpc_url();
        config.agents_url = agents.grpc_url();
        config.chains_url = chains.grpc_url();
        if let Some(marketplace) = &marketplace {
            config.marketplace_url = marketplace.grpc_url();
        }
        if let Some(triggers) = &triggers {
            config.triggers_url = triggers.grpc_url();
        }
        let mut ops = vec![
            ("auth", auth.http_url()),
            ("memory", memory.http_url()),
            ("agent-runner", agents.http_url()),
            ("chain-orchestrator", chains.http_url()),
        ];
        if let Some(marketplace) = &marketplace {
            ops.push(("marketplace", marketplace.http_url()));
        }
        configure_gateway(config, &ops);
    })
    .await
    .expect("the gateway starts");
    // Callers before the services they call.
    let mut backends: Vec<Running> = marketplace.into_iter().chain(triggers).collect();
    backends.extend([chains, agents, memory]);
    TestApp {
        address: gateway.http_url(),
        client: reqwest::Client::new(),
        _gateway: gateway,
        auth,
        backends,
        leftovers: Some((infra, vec![memory_objects, objects])),
    }
}

/// The envelope key the fleet's agent-runner seals model provider keys with.
const MODEL_KEYS: &str = "test:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

pub fn unique_email() -> String {
    format!("user-{}@example.com", uuid::Uuid::new_v4().simple())
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Auth's gRPC endpoint, for another gateway in front of the same auth.
    pub fn auth_url(&self) -> String {
        self.auth.grpc_url()
    }

    /// Auth's ops listener (`/metrics`), for a scraper.
    pub fn auth_ops_url(&self) -> String {
        self.auth.http_url()
    }

    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("the gateway answers")
    }

    pub async fn post_as(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("the gateway answers")
    }

    /// Where memory keeps its backups.
    pub fn objects(&self) -> &std::path::Path {
        &self.leftovers.as_ref().expect("this app runs memory").1[0]
    }

    /// Where the marketplace keeps its packages.
    pub fn packages(&self) -> std::path::PathBuf {
        self.leftovers.as_ref().expect("this app runs the fleet").1[1].join("packages")
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

    /// Creates a user with only the viewer role in `admin`'s tenant, and signs it in.
    pub async fn viewer(&self, admin: &Session) -> Session {
        let email = unique_email();
        let created = self
            .post_as(
                "/api/users",
                &admin.access_token,
                &json!({ "email": email, "password": PASSWORD, "roles": ["viewer"] }),
            )
            .await;
        assert_eq!(created.status(), StatusCode::CREATED);
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
