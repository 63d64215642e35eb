//! The triggers service: a tenant's events delivered to its webhook endpoints, signed as the
//! Standard Webhooks specification says, and its chains started on schedules. It owns the
//! `triggers` schema and serves `sankalpa.v1.WebhookService` and `sankalpa.v1.ScheduleService`
//! over gRPC (50056), with health and metrics over HTTP (9106).
//!
//! A tenant registers endpoints ([`endpoints`]: a URL, the events it wants as [`filters`], a
//! secret made by [`signing`], rotated with an overlap). One replica at a time reads the event
//! stream ([`ingest`]) and turns each event into one delivery row per matching endpoint, its
//! place in the stream kept in the same transaction; the [`sender`] claims due deliveries from
//! Postgres (`FOR UPDATE SKIP LOCKED`, so replicas share them), POSTs them through the
//! destination guard ([`sankalpa_kit::egress`]), and records each attempt, retrying on the
//! operator's schedule and then failing the delivery. Outcomes are announced as
//! `webhooks.<tenant>.<endpoint>.<delivered|failed|disabled>` through an outbox ([`events`]).
//! The delivery log, replays and test sends are [`deliveries`].
//!
//! A tenant's [`schedules`] run a chain on a cron expression or an interval ([`ticks`]); the
//! [`firing`] loop claims due schedules from Postgres as the sender claims deliveries, and
//! starts each tick's run through the chain orchestrator with an idempotency key of the tick,
//! authenticated by the schedule's own API key ([`credentials`]). Each run started is announced
//! as `schedules.<tenant>.<schedule>.fired`. [`inbound`] triggers start a chain on a signed
//! request that the gateway forwards ([`inbound_api`]), with the same kind of key.
//!
//! [`Triggers::build`] starts the kit's [`Skeleton`] (migrations, auth's token keys, both
//! listeners) and builds the state around it; serving it ([`Service::serve`]) runs the API, the
//! stream's reader, the sender and the outbox relay until its shutdown future resolves.

mod backlog;
mod credentials;
mod deliveries;
mod endpoints;
mod error;
mod events;
mod filters;
mod firing;
mod grpc;
mod inbound;
mod inbound_api;
mod ingest;
mod input;
mod listing;
mod schedule_api;
mod schedules;
mod sender;
mod signing;
mod ticks;

use std::borrow::Cow;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sankalpa_kit::config::{self, ConfigError, Infra};
use sankalpa_kit::events::EventBus;
use sankalpa_kit::outbox::Outbox;
use sankalpa_kit::service::{AuthSource, Keys, Listen, Service, Skeleton};
use sankalpa_proto::v1::auth_service_client::AuthServiceClient;
use sankalpa_proto::v1::chain_service_client::ChainServiceClient;
use sankalpa_proto::v1::inbound_trigger_service_server::InboundTriggerServiceServer;
use sankalpa_proto::v1::schedule_service_server::ScheduleServiceServer;
use sankalpa_proto::v1::webhook_receiver_service_server::WebhookReceiverServiceServer;
use sankalpa_proto::v1::webhook_service_server::WebhookServiceServer;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use tokio::sync::Notify;
use tonic::server::NamedService;

pub use sankalpa_kit::egress::Network;

/// The triggers schema's migrations, tracked in `triggers._sqlx_migrations`.
pub static MIGRATOR: Migrator = Migrator {
    table_name: Cow::Borrowed("triggers._sqlx_migrations"),
    create_schemas: Cow::Borrowed(&[Cow::Borrowed("triggers")]),
    ..sqlx::migrate!("../../migrations/triggers")
};

/// The waits between attempts by default: about a day and a half in all, in seven attempts.
const DEFAULT_RETRY_SCHEDULE: &[Duration] = &[
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
];

#[derive(Debug, Clone)]
pub struct Config {
    pub infra: Infra,
    pub listen: Listen,
    /// Where the token keys come from.
    pub auth: AuthSource,
    /// How long one attempt may take, connecting to reading the response
    /// (`SANKALPA_TRIGGERS_DELIVERY_TIMEOUT_MS`).
    pub delivery_timeout: Duration,
    /// The waits after each failed attempt (`SANKALPA_TRIGGERS_RETRY_SCHEDULE_MS`,
    /// comma-separated milliseconds), each jittered by up to a fifth; once spent, the delivery
    /// is failed. At most 20 waits.
    pub retry_schedule: Vec<Duration>,
    /// Deliver over plain http too (`SANKALPA_TRIGGERS_ALLOW_HTTP`).
    pub allow_http: bool,
    /// Loopback, private, link-local or other special networks deliveries may go to
    /// (`SANKALPA_TRIGGERS_ALLOW_PRIVATE_NETWORKS`, comma-separated `address/prefix`); none
    /// by default.
    pub allowed_networks: Vec<Network>,
    /// The most bytes of a response body read and kept (`SANKALPA_TRIGGERS_MAX_RESPONSE_BYTES`).
    pub max_response_bytes: usize,
    /// Attempts in flight at once per replica (`SANKALPA_TRIGGERS_DELIVERY_CONCURRENCY`).
    pub delivery_concurrency: usize,
    /// The most endpoints a tenant may have (`SANKALPA_TRIGGERS_MAX_ENDPOINTS_PER_TENANT`).
    pub max_endpoints_per_tenant: i64,
    /// An endpoint whose every attempt failed for this long is disabled
    /// (`SANKALPA_TRIGGERS_DISABLE_AFTER_MS`).
    pub disable_after: Duration,
    /// How often the sender looks for due deliveries when nothing woke it
    /// (`SANKALPA_TRIGGERS_POLL_MS`): retries fall due, other replicas' events arrive.
    pub poll: Duration,
    /// The chain orchestrator's gRPC endpoint, which starts schedules' runs
    /// (`SANKALPA_CHAINS_URL`).
    pub chains_url: String,
    /// The most schedules a tenant may have (`SANKALPA_TRIGGERS_MAX_SCHEDULES_PER_TENANT`).
    pub max_schedules_per_tenant: i64,
    /// How often each replica looks for due schedules (`SANKALPA_TRIGGERS_SCHEDULE_POLL_MS`):
    /// how late a tick may fire, beyond its jitter.
    pub schedule_poll: Duration,
    /// The most inbound webhook triggers a tenant may have
    /// (`SANKALPA_TRIGGERS_MAX_INBOUND_PER_TENANT`).
    pub max_inbound_triggers_per_tenant: i64,
}

/// Waits in the retry schedule, at most: more is a schedule of weeks, not of retries.
const MAX_RETRY_WAITS: usize = 20;

fn retry_schedule() -> Result<Vec<Duration>, ConfigError> {
    const NAME: &str = "SANKALPA_TRIGGERS_RETRY_SCHEDULE_MS";
    let raw = config::list(NAME, &[]);
    if raw.is_empty() {
        return Ok(DEFAULT_RETRY_SCHEDULE.to_vec());
    }
    let invalid = |reason: &str| ConfigError::Invalid {
        name: NAME.to_owned(),
        value: raw.join(","),
        reason: reason.to_owned(),
    };
    if raw.len() > MAX_RETRY_WAITS {
        return Err(invalid("at most 20 waits"));
    }
    raw.iter()
        .map(|wait| {
            wait.parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|_| invalid("each wait is a whole number of milliseconds"))
        })
        .collect()
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        let defaults = Self::defaults(
            Infra::from_env()?,
            Listen::from_env("TRIGGERS", 50056, 9106)?,
            AuthSource::from_env()?,
        );
        Ok(Self {
            delivery_timeout: config::millis(
                "SANKALPA_TRIGGERS_DELIVERY_TIMEOUT_MS",
                defaults.delivery_timeout,
            )?,
            retry_schedule: retry_schedule()?,
            allow_http: config::var("SANKALPA_TRIGGERS_ALLOW_HTTP", defaults.allow_http)?,
            allowed_networks: sankalpa_kit::egress::networks_from_env(
                "SANKALPA_TRIGGERS_ALLOW_PRIVATE_NETWORKS",
            )?,
            max_response_bytes: config::var(
                "SANKALPA_TRIGGERS_MAX_RESPONSE_BYTES",
                defaults.max_response_bytes,
            )?,
            delivery_concurrency: config::var(
                "SANKALPA_TRIGGERS_DELIVERY_CONCURRENCY",
                defaults.delivery_concurrency,
            )?
            .max(1),
            max_endpoints_per_tenant: config::var(
                "SANKALPA_TRIGGERS_MAX_ENDPOINTS_PER_TENANT",
                defaults.max_endpoints_per_tenant,
            )?,
            disable_after: config::millis(
                "SANKALPA_TRIGGERS_DISABLE_AFTER_MS",
                defaults.disable_after,
            )?,
            poll: config::millis("SANKALPA_TRIGGERS_POLL_MS", defaults.poll)?,
            chains_url: config::var("SANKALPA_CHAINS_URL", defaults.chains_url.clone())?,
            max_schedules_per_tenant: config::var(
                "SANKALPA_TRIGGERS_MAX_SCHEDULES_PER_TENANT",
                defaults.max_schedules_per_tenant,
            )?,
            schedule_poll: config::millis(
                "SANKALPA_TRIGGERS_SCHEDULE_POLL_MS",
                defaults.schedule_poll,
            )?,
            max_inbound_triggers_per_tenant: config::var(
                "SANKALPA_TRIGGERS_MAX_INBOUND_PER_TENANT",
                defaults.max_inbound_triggers_per_tenant,
            )?,
            ..defaults
        })
    }

    /// Every setting at its default.
    fn defaults(infra: Infra, listen: Listen, auth: AuthSource) -> Self {
        Self {
            infra,
            listen,
            auth,
            delivery_timeout: Duration::from_secs(10),
            retry_schedule: DEFAULT_RETRY_SCHEDULE.to_vec(),
            allow_http: false,
            allowed_networks: Vec::new(),
            max_response_bytes: 4096,
            delivery_concurrency: 64,
            max_endpoints_per_tenant: 100,
            disable_after: Duration::from_secs(5 * 24 * 3600),
            poll: Duration::from_millis(500),
            chains_url: "http://127.0.0.1:50053".to_owned(),
            max_schedules_per_tenant: 100,
            schedule_poll: Duration::from_millis(250),
            max_inbound_triggers_per_tenant: 100,
        }
    }

    /// The defaults on free ports, taking token keys from the auth at `auth_url`, delivering
    /// over http to the loopback (where tests' receivers listen) and retrying within
    /// milliseconds.
    pub fn for_tests(infra: Infra, auth_url: &str) -> Self {
        Self {
            allow_http: true,
            allowed_networks: vec!["127.0.0.0/8".parse().expect("a network")],
            retry_schedule: vec![Duration::from_millis(50), Duration::from_millis(100)],
            delivery_timeout: Duration::from_secs(5),
            poll: Duration::from_millis(100),
            ..Self::defaults(infra, Listen::for_tests(), AuthSource::for_tests(auth_url))
        }
    }
}

/// What the API, the stream's reader and the sender share.
pub(crate) struct State {
    pub pool: PgPool,
    pub config: Config,
    pub guard: Arc<sankalpa_kit::egress::Guard>,
    pub http: reqwest::Client,
    pub events: events::Events,
    /// The deployment's (or test's) subject prefix, taken off subjects before matching.
    pub subject_prefix: String,
    /// Wakes the sender: deliveries were stored, or an attempt ended and freed a slot.
    pub wake: Notify,
    /// Where test events say they come from.
    pub source: String,
    /// The schedules' events, through the same outbox.
    pub schedule_events: events::ScheduleEvents,
    /// The keys schedules' ticks run with.
    pub credentials: credentials::Credentials,
    /// The chain orchestrator, which runs the ticks.
    pub chains: ChainServiceClient<sankalpa_kit::grpc::TracedChannel>,
}

pub struct Triggers {
    state: Arc<State>,
    events_stream: async_nats::jetstream::stream::Stream,
    skeleton: Skeleton,
}

impl Triggers {
    pub async fn build(config: Config, pool: PgPool) -> anyhow::Result<Self> {
        let skeleton = Skeleton::start(
            &config.infra,
            &config.listen,
            &MIGRATOR,
            &pool,
            Keys::FromAuth(&config.auth),
        )
        .await?;
        sender::describe_metrics();
        firing::describe_metrics();
        inbound_api::describe_metrics();
        let bus =
            EventBus::connect(skeleton.nats.clone(), &config.infra, "/sankalpa/triggers").await?;
        let events_stream = ingest::stream(skeleton.nats.clone(), &config.infra).await?;
        let guard = Arc::new(sankalpa_kit::egress::Guard {
            allow_http: config.allow_http,
            allowed_networks: config.allowed_networks.clone(),
        });
        let http = sender::client(&guard, config.delivery_timeout)?;
        let outbox = Outbox::new("triggers", bus, pool.clone());
        let auth = AuthServiceClient::new(sankalpa_kit::grpc::traced(sankalpa_kit::grpc::channel(
            &config.auth.url,
        )?));
        let chains = ChainServiceClient::new(sankalpa_kit::grpc::traced(
            sankalpa_kit::grpc::channel(&config.chains_url)?,
        ));
        let state = Arc::new(State {
            pool,
            guard,
            http,
            schedule_events: events::ScheduleEvents::new(outbox.clone(), events::SCHEDULES_CHANNEL),
            events: events::Events::new(outbox, events::CHANNEL),
            credentials: credentials::Credentials::new(auth),
            chains,
            subject_prefix: config.infra.subject_prefix.clone(),
            wake: Notify::new(),
            source: format!("/sankalpa/triggers/{}", config.infra.instance),
            config,
        });
        Ok(Self {
            state,
            events_stream,
            skeleton,
        })
    }
}

impl Service for Triggers {
    fn grpc_addr(&self) -> Option<SocketAddr> {
        Some(self.skeleton.grpc_addr())
    }

    fn http_addr(&self) -> SocketAddr {
        self.skeleton.http_addr()
    }

    async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            state,
            events_stream,
            skeleton,
        } = self;
        let stop = skeleton.stop.clone();
        skeleton.tasks.spawn(state.events.relay(stop.clone()));
        skeleton
            .tasks
            .spawn(ingest::run(state.clone(), events_stream, stop.clone()));
        skeleton
            .tasks
            .spawn(sender::run(state.clone(), stop.clone()));
        skeleton.tasks.spawn(firing::run(state.clone(), stop));
        let webhooks = WebhookServiceServer::new(grpc::WebhookApi::new(state.clone()));
        let schedules = ScheduleServiceServer::new(schedule_api::ScheduleApi::new(state.clone()));
        let inbound = InboundTriggerServiceServer::new(inbound_api::InboundApi::new(state.clone()));
        let receiver =
            WebhookReceiverServiceServer::new(inbound_api::InboundApi::new(state.clone()));
        let names = [
            <WebhookServiceServer<grpc::WebhookApi> as NamedService>::NAME,
            <ScheduleServiceServer<schedule_api::ScheduleApi> as NamedService>::NAME,
            <InboundTriggerServiceServer<inbound_api::InboundApi> as NamedService>::NAME,
            <WebhookReceiverServiceServer<inbound_api::InboundApi> as NamedService>::NAME,
        ];
        // The receiver is authenticated by each request's signature, not by a token.
        let routes = tonic::service::Routes::new(skeleton.authenticated(webhooks))
            .add_service(skeleton.authenticated(schedules))
            .add_service(skeleton.authenticated(inbound))
            .add_service(receiver);
        let readiness = skeleton.readiness(&state.pool);
        skeleton.serve(routes, &names, readiness, shutdown).await
    }
}
