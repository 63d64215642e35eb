//! Starts real Sankalpa services in-process, on ephemeral ports, against the local Postgres,
//! Redis and NATS, each test isolated: its own database (from `#[sqlx::test]`), its own Redis key
//! prefix and NATS subject prefix and stream. What runs here is what `main` runs: the services'
//! own `build` and `serve`.

pub mod clients;
pub mod llm;
pub mod logs;
pub mod otlp;
pub mod process;

use std::net::SocketAddr;
use std::time::Duration;

use futures::StreamExt;
use sankalpa_kit::config::Infra;
use sankalpa_kit::events::CloudEvent;
use sankalpa_kit::service::Service;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Gives this test process spans with OpenTelemetry context, as `telemetry::init` does in a
/// service, so that trace context propagates between the services a test starts; without it
/// nothing is propagated. Logs are not written. Safe to call from every test.
pub fn init_tracing() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        use opentelemetry::trace::TracerProvider as _;
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("tests"));
        // Another subscriber may already be set (a test that installed its own): keep it.
        let _ = tracing_subscriber::registry()
            .with(tracing_subscriber::filter::LevelFilter::INFO)
            .with(otel)
            .try_init();
    });
}

/// A name no other test uses, to prefix keys, subjects and streams.
pub fn unique_name() -> String {
    format!("t{}", uuid::Uuid::new_v4().simple())
}

/// A tool a test drives (a browser, a Python package) is not installed. Under CI (`CI=true`)
/// that fails the test, so a check never passes by not running; elsewhere it is said, and the
/// caller returns without the part that needs the tool.
pub fn missing_tool(message: &str) {
    let ci = std::env::var("CI").is_ok_and(|value| value == "true" || value == "1");
    assert!(!ci, "{message} (under CI a missing tool fails the test)");
    println!("SKIPPED: {message}");
}

/// The program `tool` of the tests' Python venv (`scripts/contract-venv.sh`, run by
/// `make setup`; `SANKALPA_CONTRACT_VENV` moves it), or `None` (said, and failing under CI)
/// when it is not installed.
pub fn venv_tool(tool: &str) -> Option<String> {
    let venv = std::env::var("SANKALPA_CONTRACT_VENV").unwrap_or_else(|_| {
        format!(
            "{}/.cache/sankalpa-contract-venv",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    let path = format!("{venv}/bin/{tool}");
    if std::path::Path::new(&path).exists() {
        Some(path)
    } else {
        missing_tool(&format!(
            "{path} is missing (make setup runs scripts/contract-venv.sh)"
        ));
        None
    }
}

/// Local infrastructure settings with this test's own prefixes.
pub fn infra(name: &str) -> Infra {
    let mut infra =
        Infra::from_env().expect("the test environment's SANKALPA_* settings are valid");
    infra.events_stream = format!("TEST_{}", name.to_uppercase());
    infra.subject_prefix = format!("{name}.");
    infra.events_max_bytes = 8 * 1024 * 1024;
    infra.instance = name.to_owned();
    sweep_stale_streams(&infra.nats_url);
    infra
}

/// Test streams older than this belong to a run that was killed before it could clean up: no
/// test lasts this long.
const STALE_TEST_STREAM_AGE_SECONDS: i64 = 3600;

/// A file stream no test deletes. nats-server (2.9) removes its account's store directory
/// whenever the account's last stream is deleted, and a stream another test creates at that
/// moment fails with "could not create storage directory" (CI, 2026-12-07); while this one
/// exists the directory is never empty, so never removed.
const ANCHOR_STREAM: &str = "TESTKIT_ANCHOR";

/// Once per test process: deletes the `TEST_` streams killed runs left behind (they pile up on
/// the shared NATS server across runs until it can no longer create a stream), and makes sure
/// [`ANCHOR_STREAM`] exists.
fn sweep_stale_streams(nats_url: &str) {
    static SWEPT: std::sync::Once = std::sync::Once::new();
    SWEPT.call_once(|| {
        let nats_url = nats_url.to_owned();
        let sweep = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the sweep");
            runtime.block_on(async {
                let Ok(client) = async_nats::connect(&nats_url).await else {
                    return;
                };
                let jetstream = async_nats::jetstream::new(client);
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |since| since.as_secs() as i64);
                let mut streams = jetstream.streams();
                let mut stale = Vec::new();
                while let Some(Ok(info)) = streams.next().await {
                    if info.config.name.starts_with("TEST_")
                        && now - info.created.unix_timestamp() > STALE_TEST_STREAM_AGE_SECONDS
                    {
                        stale.push(info.config.name);
                    }
                }
                for name in stale {
                    let _ = jetstream.delete_stream(&name).await;
                }
                let _ = jetstream
                    .get_or_create_stream(async_nats::jetstream::stream::Config {
                        name: ANCHOR_STREAM.to_owned(),
                        subjects: vec!["testkit-anchor".to_owned()],
                        storage: async_nats::jetstream::stream::StorageType::File,
                        max_messages: 1,
                        ..Default::default()
                    })
                    .await;
            });
        });
        let _ = sweep.join();
    });
}

/// This test's events on the subjects `filter` names (NATS wildcards, after the test's
/// prefix), read from its stream from the first one on, in the order they were stored.
///
/// A core subscription would miss what is published before the server has registered it, and
/// `flush` only writes the subscription to the socket; the stream keeps every event, so
/// nothing is missed however late this starts.
pub struct Events {
    messages: async_nats::jetstream::consumer::pull::Ordered,
}

impl Events {
    pub async fn read(infra: &Infra, filter: &str) -> Self {
        use async_nats::jetstream::consumer::pull::OrderedConfig;
        let client = async_nats::connect(&infra.nats_url)
            .await
            .expect("NATS is reachable");
        let stream = async_nats::jetstream::new(client)
            .get_stream(&infra.events_stream)
            .await
            .expect("the services made the test's stream when they started");
        let consumer = stream
            .create_consumer(OrderedConfig {
                filter_subject: format!("{}{filter}", infra.subject_prefix),
                ..Default::default()
            })
            .await
            .expect("an ordered consumer on the test's stream");
        let messages = consumer.messages().await.expect("the consumer's messages");
        Self { messages }
    }

    /// The next event and the subject it was stored under; panics if none comes within 5 s.
    pub async fn next(&mut self) -> (String, CloudEvent) {
        self.next_within(Duration::from_secs(5))
            .await
            .expect("an event arrives in time")
    }

    /// The next event and its subject, or `None` if none comes within `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Option<(String, CloudEvent)> {
        let message = self.next_message_within(wait).await?;
        let event = serde_json::from_slice(&message.payload).expect("a CloudEvent");
        Some((message.subject.to_string(), event))
    }

    /// The next event as it was stored, headers and all; panics if none comes within 5 s.
    pub async fn next_message(&mut self) -> async_nats::jetstream::Message {
        self.next_message_within(Duration::from_secs(5))
            .await
            .expect("an event arrives in time")
    }

    async fn next_message_within(
        &mut self,
        wait: Duration,
    ) -> Option<async_nats::jetstream::Message> {
        let message = tokio::time::timeout(wait, self.messages.next())
            .await
            .ok()?;
        Some(
            message
                .expect("the stream is open")
                .expect("the event can be read"),
        )
    }
}

/// A service running in this process until dropped.
pub struct Running {
    pub grpc_addr: Option<SocketAddr>,
    pub http_addr: SocketAddr,
    stop: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Running {
    pub fn grpc_url(&self) -> String {
        format!(
            "http://{}",
            self.grpc_addr.expect("this service serves gRPC")
        )
    }

    pub fn http_url(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    /// The service's `/metrics` text.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.http_url()))
            .await
            .and_then(reqwest::Response::error_for_status)
            .expect("the service serves /metrics")
            .text()
            .await
            .expect("the metrics are text")
    }

    /// Stops the service and waits until it has finished.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.stop.cancel();
        match self.task.take() {
            Some(task) => task.await?,
            None => Ok(()),
        }
    }

    /// Ends the service the way a crash does: its tasks are dropped mid-work, nothing is
    /// released or flushed.
    pub async fn kill(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Serves `service` in this process until the returned handle is stopped or dropped.
pub fn run(service: impl Service) -> Running {
    let stop = CancellationToken::new();
    let grpc_addr = service.grpc_addr();
    let http_addr = service.http_addr();
    let task = tokio::spawn(service.serve(stop.clone().cancelled_owned()));
    Running {
        grpc_addr,
        http_addr,
        stop,
        task: Some(task),
    }
}

/// Starts auth on `pool`, configured by `configure`.
pub async fn spawn_auth(
    pool: PgPool,
    infra: Infra,
    configure: impl FnOnce(&mut sankalpa_auth::Config),
) -> anyhow::Result<Running> {
    let mut config = sankalpa_auth::Config::for_tests(infra);
    configure(&mut config);
    Ok(run(sankalpa_auth::Auth::build(config, pool).await?))
}

/// Starts memory on `pool`, taking its token keys from the auth at `auth_url`, configured by
/// `configure`. Its Redis keys and object folder are its own (see `Config::for_tests`).
pub async fn spawn_memory(
    pool: PgPool,
    infra: Infra,
    auth_url: &str,
    configure: impl FnOnce(&mut sankalpa_memory::Config),
) -> anyhow::Result<Running> {
    let mut config = sankalpa_memory::Config::for_tests(infra, auth_url);
    configure(&mut config);
    Ok(run(sankalpa_memory::Memory::build(config, pool).await?))
}

/// Starts agent-runner on `pool`, taking its token keys from the auth at `auth_url` and storing
/// artifacts in `objects_url` (a folder), configured by `configure`.
pub async fn spawn_agent_runner(
    pool: PgPool,
    infra: Infra,
    auth_url: &str,
    objects_url: &str,
    configure: impl FnOnce(&mut sankalpa_agent_runner::Config),
) -> anyhow::Result<Running> {
    let mut config = sankalpa_agent_runner::Config::for_tests(infra, auth_url, objects_url);
    configure(&mut config);
    Ok(run(
        sankalpa_agent_runner::AgentRunner::build(config, pool).await?
    ))
}

/// Starts the chain orchestrator on `pool`, calling auth at `auth_url` (for run credentials and
/// token keys) and agent-runner at `agents_url`, configured by `configure`.
pub async fn spawn_chain_orchestrator(
    pool: PgPool,
    infra: Infra,
    auth_url: &str,
    agents_url: &str,
    configure: impl FnOnce(&mut sankalpa_chain_orchestrator::Config),
) -> anyhow::Result<Running> {
    let mut config = sankalpa_chain_orchestrator::Config::for_tests(infra, auth_url, agents_url);
    configure(&mut config);
    Ok(run(sankalpa_chain_orchestrator::Orchestrator::build(
        config, pool,
    )
    .await?))
}

/// Starts the gateway, configured by `configure`, which must point `auth_url` (and
/// `memory_url`, for the memory routes) at running services. It reads no database.
pub async fn spawn_gateway(
    infra: Infra,
    configure: impl FnOnce(&mut sankalpa_gateway::Config),
) -> anyhow::Result<Running> {
    let mut config = sankalpa_gateway::Config::for_tests(infra, String::new());
    configure(&mut config);
    Ok(run(sankalpa_gateway::Gateway::build(config).await?))
}

/// Removes what a test left outside its database: its JetStream stream (each reserves storage
/// on the shared NATS server, which runs out if tests leave theirs behind) and `folders`. Runs
/// on a thread of its own, so it works from a `Drop` while the test's runtime is ending.
pub fn remove_leftovers(infra: &Infra, folders: Vec<std::path::PathBuf>) {
    let nats_url = infra.nats_url.clone();
    let stream = infra.events_stream.clone();
    let cleanup = std::thread::spawn(move || {
        for folder in folders {
            let _ = std::fs::remove_dir_all(folder);
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the cleanup");
        runtime.block_on(async {
            if let Ok(client) = async_nats::connect(&nats_url).await {
                let _ = async_nats::jetstream::new(client)
                    .delete_stream(&stream)
                    .await;
            }
        });
    });
    let _ = cleanup.join();
}

/// Removes a test's leftovers (see [`remove_leftovers`]) when dropped, so that a test that
/// fails on the way still cleans up. Made before the services, it is dropped after them.
pub struct Leftovers {
    infra: Infra,
    folders: Vec<std::path::PathBuf>,
}

impl Leftovers {
    pub fn new(infra: &Infra, folders: Vec<std::path::PathBuf>) -> Self {
        Self {
            infra: infra.clone(),
            folders,
        }
    }
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        remove_leftovers(&self.infra, std::mem::take(&mut self.folders));
    }
}

/// Starts the marketplace on `pool`, taking its token keys from the auth at `auth_url`,
/// validating and installing through the chain orchestrator at `chains_url` and agent-runner at
/// `agents_url`, and storing packages in `objects_url` (a folder), configured by `configure`.
pub async fn spawn_marketplace(
    pool: PgPool,
    infra: Infra,
    auth_url: &str,
    chains_url: &str,
    agents_url: &str,
    objects_url: &str,
    configure: impl FnOnce(&mut sankalpa_marketplace::Config),
) -> anyhow::Result<Running> {
    let mut config = sankalpa_marketplace::Config::for_tests(
        infra,
        auth_url,
        chains_url,
        agents_url,
        objects_url,
    );
    configure(&mut config);
    Ok(run(
        sankalpa_marketplace::Marketplace::build(config, pool).await?
    ))
}

/// Starts the triggers service on `pool`, taking its token keys from the auth at `auth_url`,
/// configured by `configure`; its test defaults deliver over http to the loopback and retry
/// within milliseconds (`sankalpa_triggers::Config::for_tests`).
pub async fn spawn_triggers(
    pool: PgPool,
    infra: Infra,
    auth_url: &str,
    configure: impl FnOnce(&mut sankalpa_triggers::Config),
) -> anyhow::Result<Running> {
    let mut config = sankalpa_triggers::Config::for_tests(infra, auth_url);
    configure(&mut config);
    Ok(run(sankalpa_triggers::Triggers::build(config, pool).await?))
}

/// A user with a tenant of their own, signed in.
pub struct SignedIn {
    pub token: String,
    pub tenant_id: String,
}

/// Registers a new user (and so a new tenant) with auth and signs them in.
pub async fn sign_up(
    auth: &mut sankalpa_proto::v1::auth_service_client::AuthServiceClient<
        tonic::transport::Channel,
    >,
    display_name: &str,
) -> SignedIn {
    use sankalpa_proto::v1 as pb;
    let email = format!("{}@example.com", unique_name());
    let password = "correct horse battery".to_owned();
    auth.register(pb::RegisterRequest {
        email: email.clone(),
        password: password.clone(),
        display_name: display_name.to_owned(),
        tenant_name: String::new(),
    })
    .await
    .expect("registration succeeds");
    let pair = auth
        .login(pb::LoginRequest { email, password })
        .await
        .expect("login succeeds")
        .into_inner();
    SignedIn {
        token: pair.access_token,
        tenant_id: pair.user.expect("login names the user").tenant_id,
    }
}

/// The password of every user [`sign_up_through_gateway`] registers.
pub const PASSWORD: &str = "correct horse battery staple";

/// Registers `email` through the gateway at `base` (and so a new tenant, whose admin it is) and
/// signs in, with the typed client of the REST API, returning the access token.
pub async fn sign_up_through_gateway(base: &str, email: &str) -> String {
    let client = sankalpa_api::client::Client::new(base).expect("a client of the gateway");
    client
        .register(&sankalpa_api::sessions::Register {
            email: email.to_owned(),
            password: PASSWORD.to_owned(),
            display_name: String::new(),
            tenant_name: String::new(),
        })
        .await
        .expect("registration succeeds");
    client
        .login(&sankalpa_api::sessions::Login {
            email: email.to_owned(),
            password: PASSWORD.to_owned(),
        })
        .await
        .expect("login succeeds")
        .access_token
}

/// The events of the finished run `run_id`, replayed through the gateway at `base` as a client
/// reads them (`GET /api/chains/runs/{id}/events`), as CloudEvents in the order sent.
pub async fn replay_run_events(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    run_id: &str,
) -> Vec<serde_json::Value> {
    let replay = http
        .get(format!("{base}/api/chains/runs/{run_id}/events"))
        .bearer_auth(token)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .expect("the gateway replays the run's events")
        .text()
        .await
        .expect("the stream ends after the run's last event");
    replay
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(|data| serde_json::from_str(data.trim()).expect("each event is a CloudEvent"))
        .collect()
}

/// Auth, memory, agent-runner, the orchestrator (saving step outputs in memory) and the gateway
/// in front of them, wired together as in production, on `pool`, with objects under
/// `objects_url` (a folder) and the gateway configured further by `configure_gateway`.
pub struct Fleet {
    pub auth: Running,
    pub memory: Running,
    pub runner: Running,
    pub orchestrator: Running,
    /// Started only when asked ([`FleetOptions::marketplace`]).
    pub market: Option<Running>,
    /// Started only when asked ([`FleetOptions::triggers`]).
    pub triggers: Option<Running>,
    pub gateway: Running,
}

/// What [`Fleet::start_with`] changes in the fleet [`Fleet::start`] starts.
pub struct FleetOptions<A, G> {
    /// Configures auth further (a shorter token lifetime, say).
    pub configure_auth: A,
    /// Configures the gateway further.
    pub configure_gateway: G,
    /// Starts the marketplace too, its packages under the fleet's object folder.
    pub marketplace: bool,
    /// Starts the triggers service too, with its test defaults.
    pub triggers: bool,
    /// The LLM agent-runner uses; none by default.
    pub llm: Option<sankalpa_agent_runner::llm::LlmConfig>,
}

impl Fleet {
    pub async fn start(
        pool: PgPool,
        infra: &Infra,
        objects_url: &str,
        configure_gateway: impl FnOnce(&mut sankalpa_gateway::Config),
    ) -> anyhow::Result<Self> {
        let options = FleetOptions {
            configure_auth: |_: &mut sankalpa_auth::Config| {},
            configure_gateway,
            marketplace: false,
            triggers: false,
            llm: None,
        };
        Self::start_with(pool, infra, objects_url, options).await
    }

    /// [`Fleet::start`], changed by `options`.
    pub async fn start_with(
        pool: PgPool,
        infra: &Infra,
        objects_url: &str,
        options: FleetOptions<
            impl FnOnce(&mut sankalpa_auth::Config),
            impl FnOnce(&mut sankalpa_gateway::Config),
        >,
    ) -> anyhow::Result<Self> {
        let FleetOptions {
            configure_auth,
            configure_gateway,
            marketplace,
            triggers,
            llm,
        } = options;
        let auth = spawn_auth(pool.clone(), infra.clone(), configure_auth).await?;
        let memory = spawn_memory(pool.clone(), infra.clone(), &auth.grpc_url(), |config| {
            config.object_store_url = objects_url.to_owned();
        })
        .await?;
        let runner = spawn_agent_runner(
            pool.clone(),
            infra.clone(),
            &auth.grpc_url(),
            objects_url,
            |config| config.llm = llm,
        )
        .await?;
        let orchestrator = spawn_chain_orchestrator(
            pool.clone(),
            infra.clone(),
            &auth.grpc_url(),
            &runner.grpc_url(),
            |config| config.memory_url = Some(memory.grpc_url()),
        )
        .await?;
        let market = if marketplace {
            let packages = std::path::Path::new(objects_url).join("marketplace");
            Some(
                spawn_marketplace(
                    pool.clone(),
                    infra.clone(),
                    &auth.grpc_url(),
                    &orchestrator.grpc_url(),
                    &runner.grpc_url(),
                    &packages.to_string_lossy(),
                    |_| {},
                )
                .await?,
            )
        } else {
            None
        };
        let triggers = if triggers {
            let chains_url = orchestrator.grpc_url();
            Some(
                spawn_triggers(pool, infra.clone(), &auth.grpc_url(), |config| {
                    config.chains_url = chains_url;
                })
                .await?,
            )
        } else {
            None
        };
        let gateway = spawn_gateway(infra.clone(), |config| {
            config.auth_url = auth.grpc_url();
            config.memory_url = memory.grpc_url();
            config.agents_url = runner.grpc_url();
            config.chains_url = orchestrator.grpc_url();
            if let Some(market) = &market {
                config.marketplace_url = market.grpc_url();
            }
            if let Some(triggers) = &triggers {
                config.triggers_url = triggers.grpc_url();
            }
            // The dashboard samples the fleet it fronts, as in production.
            config.dashboard_targets = [
                ("auth", &auth),
                ("memory", &memory),
                ("agent-runner", &runner),
                ("chain-orchestrator", &orchestrator),
            ]
            .into_iter()
            .map(|(name, service)| (name.to_owned(), service.http_url()))
            .collect();
            configure_gateway(config);
        })
        .await?;
        Ok(Self {
            auth,
            memory,
            runner,
            orchestrator,
            market,
            triggers,
            gateway,
        })
    }

    /// Every service's `/metrics` text, one after the other.
    pub async fn metrics(&self) -> String {
        let mut text = String::new();
        for service in [
            &self.auth,
            &self.memory,
            &self.runner,
            &self.orchestrator,
            &self.gateway,
        ] {
            text.push_str(&service.metrics().await);
        }
        text
    }
}

/// The Python the generated projects' tests run on: the virtualenv `scripts/setup.sh` makes
/// (`SANKALPA_PY_VENV`, by default `~/.cache/sankalpa-py`), when it has pytest, FastAPI,
/// SQLAlchemy and httpx. Without it the caller's Python checks are skipped, said on stdout;
/// under `CI=true` the test fails instead, so a machine that lost the tool cannot pass unseen.
pub fn generated_python() -> Option<std::path::PathBuf> {
    let venv = std::env::var("SANKALPA_PY_VENV")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/sankalpa-py")
        });
    let python = venv.join("bin/python");
    let ready = std::process::Command::new(&python)
        .args(["-c", "import pytest, fastapi, sqlalchemy, httpx"])
        .output()
        .is_ok_and(|out| out.status.success());
    if ready {
        return Some(python);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{} lacks pytest, fastapi, sqlalchemy or httpx: run scripts/setup.sh",
        python.display()
    );
    println!(
        "SKIPPED the generated project's Python checks: {} is not set up (run scripts/setup.sh)",
        python.display()
    );
    None
}
