//! The REST gateway: the one HTTP entry point of Sankalpa.
//!
//! Every request passes the same middleware, outermost first: a request id, CORS (when origins
//! are allowed), then the two layers of [`layers`]: a tracing span joined to the caller's
//! trace, security headers and the body size limit around everything, and for each matched
//! route the rate limit ([`ratelimit`]), authentication ([`authn`]) and request metrics
//! ([`observe`]). Handlers then
//! turn REST calls into gRPC calls of the backend services, forwarding the caller's token and
//! trace context, and answer errors as problem+json. The routes form one table ([`api`]) that
//! is both the router and the OpenAPI document ([`docs`]).

// Every handler fails with a [`Problem`], which with its optional members (current_version,
// retry_after) is a little over clippy's 128 bytes. It is built only when a request fails, where
// moving a few more bytes is nothing next to the request itself; boxing it would put a pointer
// chase in every handler's error path and an indirection in every `problem.field`.
#![allow(clippy::result_large_err)]

pub mod agents;
pub mod audit;
pub mod authn;
pub mod chains;
pub mod chat;
pub mod console;
pub mod console_session;
pub mod dashboard;
pub mod docs;
pub mod events;
pub mod inbound;
pub mod json;
pub mod keys;
pub mod layers;
pub mod marketplace;
pub mod memory;
pub mod models;
pub mod nlp;
pub mod observe;
pub mod ratelimit;
pub mod schedules;
pub mod sessions;
pub mod status;
pub mod tenants;
pub mod users;
pub mod webhooks;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware;
use axum::serve::ListenerExt;
use sankalpa_kit::config::{self, Infra};
use sankalpa_kit::grpc::TracedChannel;
use sankalpa_kit::problem::Problem;
use sankalpa_kit::service::Service;
use sankalpa_kit::shutdown::{Drain, Draining};
use sankalpa_proto::v1::agent_service_client::AgentServiceClient;
use sankalpa_proto::v1::auth_service_client::AuthServiceClient;
use sankalpa_proto::v1::chain_service_client::ChainServiceClient;
use sankalpa_proto::v1::inbound_trigger_service_client::InboundTriggerServiceClient;
use sankalpa_proto::v1::marketplace_service_client::MarketplaceServiceClient;
use sankalpa_proto::v1::memory_service_client::MemoryServiceClient;
use sankalpa_proto::v1::schedule_service_client::ScheduleServiceClient;
use sankalpa_proto::v1::webhook_receiver_service_client::WebhookReceiverServiceClient;
use sankalpa_proto::v1::webhook_service_client::WebhookServiceClient;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::authn::{Authenticator, Caller};
use crate::ratelimit::{RateLimitConfig, RateLimiter};
use crate::status::HealthCache;
use crate::users::Profiles;

/// The client of auth every handler uses: it carries the trace context on every call.
pub type AuthClient = AuthServiceClient<TracedChannel>;
/// The client of memory, carrying the trace context likewise.
pub type MemoryClient = MemoryServiceClient<TracedChannel>;
/// The client of agent-runner, carrying the trace context likewise.
pub type AgentsClient = AgentServiceClient<TracedChannel>;
/// The client of the chain orchestrator, carrying the trace context likewise.
pub type ChainsClient = ChainServiceClient<TracedChannel>;
/// The client of the marketplace, carrying the trace context likewise.
pub type MarketClient = MarketplaceServiceClient<TracedChannel>;
/// The client of the triggers service's webhooks, carrying the trace context likewise.
pub type WebhooksClient = WebhookServiceClient<TracedChannel>;
/// The client of the triggers service's schedules, carrying the trace context likewise.
pub type SchedulesClient = ScheduleServiceClient<TracedChannel>;
/// The client of the triggers service's inbound triggers, carrying the trace context likewise.
pub type InboundClient = InboundTriggerServiceClient<TracedChannel>;
/// The client of the triggers service's receiver of signed requests, likewise.
pub type ReceiverClient = WebhookReceiverServiceClient<TracedChannel>;

#[derive(Debug, Clone)]
pub struct Config {
    pub infra: Infra,
    /// Where the REST API listens (`SANKALPA_GATEWAY_ADDR`).
    pub addr: SocketAddr,
    /// How it leaves when asked to stop (`SANKALPA_DRAIN_DELAY_MS`, `SANKALPA_DRAIN_TIMEOUT_MS`).
    pub drain: Drain,
    /// The auth service's gRPC endpoint (`SANKALPA_AUTH_URL`).
    pub auth_url: String,
    /// The memory service's gRPC endpoint (`SANKALPA_MEMORY_URL`).
    pub memory_url: String,
    /// The agent runner's gRPC endpoint (`SANKALPA_AGENTS_URL`).
    pub agents_url: String,
    /// The chain orchestrator's gRPC endpoint (`SANKALPA_CHAINS_URL`).
    pub chains_url: String,
    /// The marketplace's gRPC endpoint (`SANKALPA_MARKETPLACE_URL`).
    pub marketplace_url: String,
    /// The triggers service's gRPC endpoint (`SANKALPA_TRIGGERS_URL`).
    pub triggers_url: String,
    /// Put before every Redis key (`SANKALPA_REDIS_KEY_PREFIX`, `sankalpa:` by default); unique
    /// per test.
    pub redis_key_prefix: String,
    /// Origins allowed to call from a browser (`SANKALPA_CORS_ORIGINS`, comma-separated; `*`
    /// allows any). None by default: the web UI is served from the gateway itself.
    pub cors_origins: Vec<String>,
    pub body_limit_bytes: usize,
    pub rate_limit: RateLimitConfig,
    /// Take the client address from the last `X-Forwarded-For` entry, for a gateway behind a
    /// proxy that appends it. Off by default, since clients could otherwise pick their bucket.
    pub trust_forwarded_for: bool,
    /// The deadline of each gRPC call to a backend service.
    pub grpc_timeout: Duration,
    /// How often the token keys are fetched again from auth, to follow key rotation.
    pub jwks_refresh: Duration,
    /// How long an exchanged API key is trusted without asking auth: how late a revocation may
    /// take effect here. Ten seconds at most, as every exchange costs auth a lookup.
    pub api_key_cache: Duration,
    /// How long the gateway answers `GET /api/users/me` from what auth last said about that
    /// user (`SANKALPA_PROFILE_CACHE_MS`, 0 turns it off): how late a change made through
    /// another gateway replica, or straight at auth, may show there.
    pub profile_cache: Duration,
    /// The built web console to serve at `/` (`SANKALPA_CONSOLE_DIR`, e.g. `clients/web/dist`);
    /// none by default, and `/` then says how to build it.
    pub console_dir: Option<PathBuf>,
    /// Mark the web console's session cookies `Secure` (`SANKALPA_CONSOLE_SECURE_COOKIES`): set
    /// it when browsers reach the gateway over HTTPS.
    pub console_secure_cookies: bool,
    /// How often the dashboard's sampler scrapes the fleet (`SANKALPA_DASHBOARD_SAMPLE_MS`, 1 s
    /// to 1 min), and the finest step of its series.
    pub dashboard_sample: Duration,
    /// The services whose `/metrics` the sampler scrapes besides the gateway's own
    /// (`SANKALPA_DASHBOARD_TARGETS`: `name=base URL`, comma-separated).
    pub dashboard_targets: Vec<(String, String)>,
    /// Read the dashboard's series from this Prometheus instead of sampling
    /// (`SANKALPA_PROMETHEUS_URL`).
    pub prometheus_url: Option<String>,
}

/// The services' ops listeners at their default addresses, as `make run` starts them.
const LOCAL_DASHBOARD_TARGETS: &[&str] = &[
    "auth=http://127.0.0.1:9101",
    "agent-runner=http://127.0.0.1:9102",
    "chain-orchestrator=http://127.0.0.1:9103",
    "memory=http://127.0.0.1:9104",
    "marketplace=http://127.0.0.1:9105",
    "triggers=http://127.0.0.1:9106",
];

/// Sampling faster than a second buys no chart anything, and slower than a minute leaves an hour
/// with too few points to show.
const DASHBOARD_SAMPLE_BOUNDS: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(60));

fn dashboard_targets() -> Result<Vec<(String, String)>, config::ConfigError> {
    config::list("SANKALPA_DASHBOARD_TARGETS", LOCAL_DASHBOARD_TARGETS)
        .into_iter()
        .map(|entry| match entry.split_once('=') {
            Some((name, url))
                if !name.trim().is_empty()
                    && (url.starts_with("http://") || url.starts_with("https://")) =>
            {
                Ok((name.trim().to_owned(), url.trim().to_owned()))
            }
            _ => Err(config::ConfigError::Invalid {
                name: "SANKALPA_DASHBOARD_TARGETS".to_owned(),
                value: entry,
                reason: "each entry is name=http(s)://host:port".to_owned(),
            }),
        })
        .collect()
}

fn dashboard_sample() -> Result<Duration, config::ConfigError> {
    let sample = config::millis("SANKALPA_DASHBOARD_SAMPLE_MS", Duration::from_secs(5))?;
    let (least, most) = DASHBOARD_SAMPLE_BOUNDS;
    if sample < least || sample > most {
        return Err(config::ConfigError::Invalid {
            name: "SANKALPA_DASHBOARD_SAMPLE_MS".to_owned(),
            value: sample.as_millis().to_string(),
            reason: "must be from 1000 to 60000".to_owned(),
        });
    }
    Ok(sample)
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            infra: Infra::from_env()?,
            addr: config::var(
                "SANKALPA_GATEWAY_ADDR",
                SocketAddr::from(([0, 0, 0, 0], 8080)),
            )?,
            drain: Drain::from_env()?,
            auth_url: config::var("SANKALPA_AUTH_URL", "http://127.0.0.1:50051".to_owned())?,
            memory_url: config::var("SANKALPA_MEMORY_URL", "http://127.0.0.1:50054".to_owned())?,
            agents_url: config::var("SANKALPA_AGENTS_URL", "http://127.0.0.1:50052".to_owned())?,
            chains_url: config::var("SANKALPA_CHAINS_URL", "http://127.0.0.1:50053".to_owned())?,
            marketplace_url: config::var(
                "SANKALPA_MARKETPLACE_URL",
                "http://127.0.0.1:50055".to_owned(),
            )?,
            triggers_url: config::var(
                "SANKALPA_TRIGGERS_URL",
                "http://127.0.0.1:50056".to_owned(),
            )?,
            redis_key_prefix: config::var("SANKALPA_REDIS_KEY_PREFIX", "sankalpa:".to_owned())?,
            cors_origins: config::list("SANKALPA_CORS_ORIGINS", &[]),
            body_limit_bytes: config::var("SANKALPA_BODY_LIMIT_BYTES", 1024 * 1024)?,
            rate_limit: RateLimitConfig::from_env()?,
            trust_forwarded_for: config::var("SANKALPA_TRUST_FORWARDED_FOR", false)?,
            grpc_timeout: config::millis("SANKALPA_GRPC_TIMEOUT_MS", Duration::from_secs(10))?,
            jwks_refresh: config::millis("SANKALPA_JWKS_REFRESH_MS", Duration::from_secs(60))?,
            api_key_cache: config::millis("SANKALPA_API_KEY_CACHE_MS", Duration::from_secs(10))?,
            profile_cache: config::millis("SANKALPA_PROFILE_CACHE_MS", Duration::from_secs(2))?,
            console_dir: std::env::var_os("SANKALPA_CONSOLE_DIR")
                .filter(|dir| !dir.is_empty())
                .map(PathBuf::from),
            console_secure_cookies: config::var("SANKALPA_CONSOLE_SECURE_COOKIES", false)?,
            dashboard_sample: dashboard_sample()?,
            dashboard_targets: dashboard_targets()?,
            prometheus_url: Some(config::var("SANKALPA_PROMETHEUS_URL", String::new())?)
                .filter(|url| !url.is_empty()),
        })
    }

    /// A gateway on a free local port in front of `auth_url`, with its own Redis keys. Memory,
    /// agent-runner, the orchestrator and the marketplace are at port 1, where nothing listens, until a test that
    /// needs one sets its URL: a test must never reach a service that happens to run on this
    /// machine.
    pub fn for_tests(infra: Infra, auth_url: impl Into<String>) -> Self {
        Self {
            infra,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            drain: Drain::immediate(),
            auth_url: auth_url.into(),
            memory_url: "http://127.0.0.1:1".to_owned(),
            agents_url: "http://127.0.0.1:1".to_owned(),
            chains_url: "http://127.0.0.1:1".to_owned(),
            marketplace_url: "http://127.0.0.1:1".to_owned(),
            triggers_url: "http://127.0.0.1:1".to_owned(),
            redis_key_prefix: format!("test:{}:", uuid::Uuid::new_v4().simple()),
            cors_origins: Vec::new(),
            body_limit_bytes: 1024 * 1024,
            // Tests start fleets side by side on two cores: a Redis answer can take longer than
            // production's 50 ms, which would pause sign-in (503) in a test about something else.
            rate_limit: RateLimitConfig {
                redis_timeout: Duration::from_secs(2),
                ..RateLimitConfig::default()
            },
            trust_forwarded_for: false,
            grpc_timeout: Duration::from_secs(10),
            jwks_refresh: Duration::from_secs(60),
            api_key_cache: Duration::from_secs(10),
            profile_cache: Duration::from_secs(2),
            console_dir: None,
            console_secure_cookies: false,
            dashboard_sample: Duration::from_secs(5),
            dashboard_targets: Vec::new(),
            prometheus_url: None,
        }
    }
}

/// What handlers share.
pub struct AppState {
    pub auth: AuthClient,
    pub memory: MemoryClient,
    pub agents: AgentsClient,
    pub chains: ChainsClient,
    pub market: MarketClient,
    pub webhooks: WebhooksClient,
    pub schedules: SchedulesClient,
    pub inbound: InboundClient,
    pub receiver: ReceiverClient,
    pub grpc_timeout: Duration,
    pub health: HealthCache,
    pub profiles: Profiles,
    /// The rate limits, for the handlers that count more than the route (a login's account).
    pub limiter: Arc<RateLimiter>,
    /// Who is calling, for streams that check their caller again while they last.
    pub authenticator: Arc<Authenticator>,
    /// Cancelled when the gateway shuts down. Event streams (SSE, WebSocket) end on it:
    /// graceful shutdown waits for every response to finish, and a live stream never would.
    pub streams_end: CancellationToken,
    /// Work a request leaves running after its response (a chat reply being saved): the
    /// gateway waits for it at shutdown, within its drain timeout.
    pub background: TaskTracker,
    /// How the web console's session cookies are set and checked.
    pub console: console_session::Settings,
    /// Where the dashboard's series come from.
    pub dashboard: dashboard::Dashboard,
}

impl AppState {
    /// A request to a backend service with the deadline every call gets.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(self.grpc_timeout);
        request
    }

    /// A request made on behalf of `caller`, carrying its token for the service to check.
    pub fn request_as<T>(&self, caller: &Caller, message: T) -> Result<tonic::Request<T>, Problem> {
        let mut request = sankalpa_kit::auth::with_bearer(message, &caller.token)?;
        request.set_timeout(self.grpc_timeout);
        Ok(request)
    }

    pub fn auth(&self) -> AuthClient {
        self.auth.clone()
    }

    pub fn memory(&self) -> MemoryClient {
        self.memory.clone()
    }

    pub fn agents(&self) -> AgentsClient {
        self.agents.clone()
    }

    pub fn chains(&self) -> ChainsClient {
        self.chains.clone()
    }

    pub fn market(&self) -> MarketClient {
        self.market.clone()
    }

    pub fn webhooks(&self) -> WebhooksClient {
        self.webhooks.clone()
    }

    pub fn schedules(&self) -> SchedulesClient {
        self.schedules.clone()
    }

    pub fn inbound(&self) -> InboundClient {
        self.inbound.clone()
    }

    pub fn receiver(&self) -> ReceiverClient {
        self.receiver.clone()
    }
}

/// The gateway, bound to its address and ready to serve.
pub struct Gateway {
    listener: TcpListener,
    addr: SocketAddr,
    drain: Drain,
    /// Set once the gateway is leaving: `/readyz` answers 503 from then on.
    draining: Draining,
    router: Router,
    authenticator: Arc<Authenticator>,
    /// Where auth pushes revocations, behind `subject_prefix`.
    nats: async_nats::Client,
    subject_prefix: String,
    jwks_refresh: Duration,
    streams_end: CancellationToken,
    background: TaskTracker,
    /// The dashboard's sampler, run while the gateway serves; none when Prometheus is asked.
    sampler: Option<Arc<dashboard::sampler::Sampler>>,
}

impl Gateway {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        // The recorder first: what is registered or counted before it is installed is lost.
        sankalpa_kit::metrics::handle();
        observe::describe_metrics();

        let channel = sankalpa_kit::grpc::channel(&config.auth_url)?;
        let auth = AuthServiceClient::new(sankalpa_kit::grpc::traced(channel.clone()));
        let redis = sankalpa_kit::cache::Redis::new(
            &config.infra.redis_url,
            &config.redis_key_prefix,
            config.infra.redis_pool_size,
        )?;
        let authenticator = Arc::new(Authenticator::new(
            &config.infra,
            channel.clone(),
            auth.clone(),
            config.grpc_timeout,
            config.api_key_cache,
        ));
        authenticator.load_keys().await;
        // Only revocations come over NATS: the gateway serves without it (they then arrive with
        // the next key refresh), so it starts even while NATS is still coming up.
        let nats = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect(&config.infra.nats_url)
            .await
            .with_context(|| format!("{} is not a NATS URL", config.infra.nats_url))?;
        let limiter = Arc::new(RateLimiter::new(
            redis,
            config.rate_limit.clone(),
            config.trust_forwarded_for,
        ));
        let memory_channel = sankalpa_kit::grpc::channel(&config.memory_url)?;
        let agents_channel = sankalpa_kit::grpc::channel(&config.agents_url)?;
        let chains_channel = sankalpa_kit::grpc::channel(&config.chains_url)?;
        let market_channel = sankalpa_kit::grpc::channel(&config.marketplace_url)?;
        let triggers_channel = sankalpa_kit::grpc::channel(&config.triggers_url)?;
        let streams_end = CancellationToken::new();
        let background = TaskTracker::new();
        let (dashboard_source, sampler) = match &config.prometheus_url {
            Some(url) => (
                dashboard::Source::Prometheus(dashboard::prometheus::Prometheus::new(
                    url,
                    config.grpc_timeout,
                )?),
                None,
            ),
            None => {
                let sampler = Arc::new(dashboard::sampler::Sampler::new(
                    dashboard::sampler::targets(&config.dashboard_targets),
                    config.dashboard_sample,
                )?);
                (dashboard::Source::Sampler(sampler.clone()), Some(sampler))
            }
        };
        let state = Arc::new(AppState {
            auth,
            memory: MemoryServiceClient::new(sankalpa_kit::grpc::traced(memory_channel.clone())),
            agents: AgentServiceClient::new(sankalpa_kit::grpc::traced(agents_channel.clone())),
            chains: ChainServiceClient::new(sankalpa_kit::grpc::traced(chains_channel.clone())),
            market: MarketplaceServiceClient::new(sankalpa_kit::grpc::traced(
                market_channel.clone(),
            )),
            webhooks: WebhookServiceClient::new(sankalpa_kit::grpc::traced(
                triggers_channel.clone(),
            )),
            schedules: ScheduleServiceClient::new(sankalpa_kit::grpc::traced(
                triggers_channel.clone(),
            )),
            inbound: InboundTriggerServiceClient::new(sankalpa_kit::grpc::traced(
                triggers_channel.clone(),
            )),
            receiver: WebhookReceiverServiceClient::new(sankalpa_kit::grpc::traced(
                triggers_channel.clone(),
            )),
            grpc_timeout: config.grpc_timeout,
            health: HealthCache::new(vec![
                ("auth", "sankalpa.v1.AuthService", channel),
                ("memory", "sankalpa.v1.MemoryService", memory_channel),
                ("agent-runner", "sankalpa.v1.AgentService", agents_channel),
                (
                    "chain-orchestrator",
                    "sankalpa.v1.ChainService",
                    chains_channel,
                ),
                (
                    "marketplace",
                    "sankalpa.v1.MarketplaceService",
                    market_channel,
                ),
                ("triggers", "sankalpa.v1.WebhookService", triggers_channel),
            ]),
            profiles: Profiles::new(config.profile_cache),
            limiter: limiter.clone(),
            authenticator: authenticator.clone(),
            streams_end: streams_end.clone(),
            background: background.clone(),
            console: console_session::Settings {
                secure_cookies: config.console_secure_cookies,
                trust_forwarded_host: config.trust_forwarded_for,
            },
            dashboard: dashboard::Dashboard {
                source: dashboard_source,
                every: config.dashboard_sample,
            },
        });

        let draining = Draining::default();
        let router = router(&config, state, authenticator.clone(), limiter, &draining)?;
        let listener = sankalpa_kit::grpc::bind(config.addr).await?;
        let addr = listener.local_addr()?;
        Ok(Self {
            listener,
            addr,
            drain: config.drain,
            draining,
            router,
            authenticator,
            nats,
            subject_prefix: config.infra.subject_prefix.clone(),
            jwks_refresh: config.jwks_refresh,
            streams_end,
            background,
            sampler,
        })
    }
}

impl Service for Gateway {
    fn grpc_addr(&self) -> Option<SocketAddr> {
        None
    }

    fn http_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` resolves, then lets requests in flight finish.
    async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let stop = CancellationToken::new();
        let tasks = TaskTracker::new();
        tasks.spawn(self.authenticator.clone().keep_current(
            self.nats,
            self.subject_prefix,
            self.jwks_refresh,
            stop.clone(),
        ));
        if let Some(sampler) = self.sampler {
            tasks.spawn(sampler.run(stop.clone()));
        }
        tasks.close();

        let app = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        let streams_end = self.streams_end;
        // Without TCP_NODELAY a small write behind one not yet acknowledged (the next event of
        // a stream) waits for the client's delayed ACK, up to 40 ms.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(err) = tcp.set_nodelay(true) {
                tracing::debug!(error = %err, "could not set TCP_NODELAY");
            }
        });
        let drain = self.drain;
        let draining = self.draining;
        let leaving = stop.clone();
        let served = axum::serve(listener, app).with_graceful_shutdown(async move {
            drain.begin(shutdown, &draining).await;
            streams_end.cancel();
            leaving.cancel();
        });
        let background = self.background;
        let served = drain
            .bounded(
                async {
                    let served = served.await;
                    background.close();
                    background.wait().await;
                    served
                },
                stop.cancelled(),
            )
            .await;
        stop.cancel();
        tasks.wait().await;
        served.transpose()?;
        Ok(())
    }
}

/// The route table of the API: every route behind the guard, each with its OpenAPI description
/// (see [`docs`]).
pub fn api() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::with_openapi(docs::ApiDoc::openapi())
        .merge(sessions::routes())
        .merge(console_session::routes())
        .merge(users::routes())
        .merge(keys::routes())
        .merge(tenants::routes())
        .merge(audit::routes())
        .merge(memory::routes())
        .merge(agents::routes())
        .merge(models::routes())
        .merge(chains::routes())
        .merge(nlp::routes())
        .merge(chat::routes())
        .merge(marketplace::routes())
        .merge(webhooks::routes())
        .merge(schedules::routes())
        .merge(inbound::routes())
        .merge(events::routes())
        .merge(status::routes())
        .merge(dashboard::routes())
}

fn router(
    config: &Config,
    state: Arc<AppState>,
    authenticator: Arc<Authenticator>,
    limiter: Arc<RateLimiter>,
    draining: &Draining,
) -> anyhow::Result<Router> {
    // Layers added later run earlier; route layers run only for matched routes, where the
    // matched path is known (metrics label by it, the rate limiter buckets by it).
    let (api, mut document) = api().split_for_parts();
    docs::finish(&mut document);
    let api = api
        .with_state(state)
        .route_layer(middleware::from_fn_with_state(
            layers::Guard {
                limiter,
                authenticator,
            },
            layers::guard,
        ));
    // Only draining is checked by /readyz: without Redis the gateway still serves (it stops
    // rate limiting), and taking every replica out of service for that would be the larger
    // outage.
    let unlimited = docs::routes(&document)
        .merge(sankalpa_kit::ops::router(sankalpa_kit::ops::Readiness {
            draining: draining.clone(),
            ..Default::default()
        }))
        .route_layer(middleware::from_fn(layers::measured));

    let x_request_id = HeaderName::from_static("x-request-id");
    let console = Arc::new(console::Console::new(config.console_dir.clone()));
    let router = Router::new()
        .merge(api)
        .merge(unlimited)
        // What no route matched is the console's (or a problem+json 404 under the API's paths).
        .fallback(move |request: axum::extract::Request| {
            let console = console.clone();
            async move { console.serve(request).await }
        })
        .layer(DefaultBodyLimit::max(config.body_limit_bytes))
        .layer(middleware::from_fn_with_state(
            layers::Edge {
                body_limit: config.body_limit_bytes,
            },
            layers::edge,
        ));
    // Without allowed origins there is nothing for CORS to answer, and no layer to pass.
    let router = match cors(&config.cors_origins)? {
        Some(cors) => router.layer(cors),
        None => router,
    };
    Ok(router
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid)))
}

fn cors(origins: &[String]) -> anyhow::Result<Option<CorsLayer>> {
    if origins.is_empty() {
        return Ok(None);
    }
    let allow = if origins.iter().any(|origin| origin == "*") {
        AllowOrigin::any()
    } else {
        let origins = origins
            .iter()
            .map(|origin| HeaderValue::from_str(origin))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| anyhow::anyhow!("SANKALPA_CORS_ORIGINS has a bad origin: {err}"))?;
        AllowOrigin::list(origins)
    };
    Ok(Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("x-api-key"),
                HeaderName::from_static("x-request-id"),
                HeaderName::from_static("idempotency-key"),
                HeaderName::from_static("last-event-id"),
            ])
            .expose_headers([
                HeaderName::from_static("x-request-id"),
                header::RETRY_AFTER,
                header::LOCATION,
                HeaderName::from_static("ratelimit-limit"),
                HeaderName::from_static("ratelimit-remaining"),
                HeaderName::from_static("ratelimit-reset"),
            ])
            .max_age(Duration::from_secs(3600)),
    ))
}
