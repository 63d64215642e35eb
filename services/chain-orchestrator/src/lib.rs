//! The chain orchestrator: chain definitions (versioned per tenant, plus the templates of
//! `catalog/chains`) and durable runs of them, each step executed by agent-runner. It owns the
//! `chains` schema and serves `sankalpa.v1.ChainService` over gRPC (50053), with health and
//! metrics over HTTP (9103).
//!
//! A definition is parsed and checked by [`definition`] (conditions in the [`expr`] language),
//! stored by [`chains`], and run by the [`engine`] from the rows of [`runs`], calling
//! agent-runner through [`agents`] with its caller's credential ([`credentials`]); which agents
//! exist is remembered in the [`catalog`], so accepting a run does not wait for agent-runner.
//! Step outputs are also saved in the run's memory session ([`memory`]). Finished runs are
//! deleted after their tenant's retention by the sweep of [`retention`]. Events of a run are enqueued in the
//! transaction of the transition they announce (the kit's outbox, table `chains.outbox`),
//! published by the relay [`Orchestrator::serve`] runs, and streamed back by [`watch`].
//!
//! [`Orchestrator::build`] loads the templates and starts the kit's [`Skeleton`] (migrations,
//! auth's token keys, both listeners); serving it ([`Service::serve`]) runs the API and the
//! engine until its shutdown future resolves.

mod agents;
mod approvals;
mod catalog;
mod chains;
mod credentials;
pub mod definition;
mod engine;
mod error;
mod events;
mod expr;
mod fanout;
mod grpc;
mod input;
mod memory;
mod retention;
mod runs;
mod sizes;
mod templates;
mod watch;

use std::borrow::Cow;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sankalpa_kit::config::{self, Infra};
use sankalpa_kit::events::EventBus;
use sankalpa_kit::outbox::{Outbox, OutboxRow};
use sankalpa_kit::service::{AuthSource, Keys, Listen, Service, Skeleton};
use sankalpa_proto::v1::agent_service_client::AgentServiceClient;
use sankalpa_proto::v1::auth_service_client::AuthServiceClient;
use sankalpa_proto::v1::chain_service_server::ChainServiceServer;
use sankalpa_proto::v1::memory_service_client::MemoryServiceClient;
use sqlx::migrate::Migrator;
use sqlx::{PgConnection, PgPool};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The chains schema's migrations, tracked in `chains._sqlx_migrations`: every service migrates
/// the one shared database at its start, and a migrator refuses to run when the tracking table
/// lists versions it does not know (another service's).
pub static MIGRATOR: Migrator = Migrator {
    table_name: Cow::Borrowed("chains._sqlx_migrations"),
    create_schemas: Cow::Borrowed(&[Cow::Borrowed("chains")]),
    ..sqlx::migrate!("../../migrations/chains")
};

#[derive(Debug, Clone)]
pub struct Config {
    pub infra: Infra,
    pub listen: Listen,
    /// agent-runner, which runs the steps (`SANKALPA_AGENTS_URL`).
    pub agents_url: String,
    /// Where the token keys come from; auth also mints each run's credential.
    pub auth: AuthSource,
    /// The memory service, where completed steps' outputs are saved in the run's session
    /// (`SANKALPA_MEMORY_URL`; empty turns that off, for a fleet without memory).
    pub memory_url: Option<String>,
    /// The folder of chain templates (`*.json`).
    pub catalog_dir: PathBuf,
    /// How long a replica holds a run without renewing; a dead replica's runs wait this long
    /// before another takes them. Renewed every third of it.
    pub lease_ttl: Duration,
    /// How often a replica looks for runs nobody holds.
    pub claim_interval: Duration,
    /// Runs one replica drives at once.
    pub max_runs: usize,
    /// Steps one replica runs at once, over all its runs.
    pub max_parallel_steps: usize,
    /// Steps of one run that run at once.
    pub max_parallel_steps_per_run: usize,
    /// Lifetime of the API key a run calls agent-runner with (credentials.rs).
    pub credential_ttl: Duration,
    /// How long a caller's new runs take the key made for its first
    /// (`SANKALPA_CHAINS_CREDENTIAL_SHARE_SECONDS`, 5 minutes; 0: a key per run).
    pub credential_share: Duration,
    /// How long after its sharing time a credential no run uses is kept before it is revoked
    /// (`SANKALPA_CHAINS_CREDENTIAL_GRACE_SECONDS`, 60 s): longer than a submission takes.
    pub credential_grace: Duration,
    /// How often each replica revokes the credentials no run needs
    /// (`SANKALPA_CHAINS_CREDENTIAL_SWEEP_MS`, 10 s).
    pub credential_sweep_interval: Duration,
    /// The most a run's step outputs may take together, as JSON
    /// (`SANKALPA_CHAINS_MAX_RUN_OUTPUT_BYTES`, 16 MiB): they are kept in the run's row, which
    /// must stay far from what Postgres can store and a replica can hold. The step whose output
    /// would pass it fails with `output_too_large`, once, without retrying.
    pub max_run_output_bytes: usize,
    /// The largest output one step may have, as the agent wrote it
    /// (`SANKALPA_CHAINS_MAX_STEP_OUTPUT_BYTES`, 4 MiB); a larger one fails the step with
    /// `output_too_large`, without retrying.
    pub max_step_output_bytes: usize,
    /// The largest input one step may be sent, as JSON (`SANKALPA_CHAINS_MAX_STEP_INPUT_BYTES`,
    /// 3 MiB, below the 4 MiB agent-runner takes); a step whose merged or mapped input is larger
    /// fails with `input_too_large`.
    pub max_step_input_bytes: usize,
    /// The most runs of one tenant pending or running at once, over all replicas
    /// (`SANKALPA_CHAINS_MAX_CONCURRENT_RUNS_PER_TENANT`, 100); ExecuteChain beyond it answers
    /// RESOURCE_EXHAUSTED with the quota (429 at the gateway).
    pub max_concurrent_runs_per_tenant: u64,
    /// The most event streams (WatchRun, WatchEvents) one tenant may have open on one replica
    /// (`SANKALPA_CHAINS_MAX_STREAMS_PER_TENANT`, 2048); each holds a receiver of the replica's
    /// live feed (fanout.rs) and, while it replays, a JetStream consumer. Beyond it,
    /// RESOURCE_EXHAUSTED with the quota; a stream's slot is freed when it ends or its client
    /// goes.
    pub max_streams_per_tenant: usize,
    /// Events the live feed of a tenant's streams holds for its slowest stream on a replica
    /// (`SANKALPA_CHAINS_STREAM_BUFFER`, 1024); a stream further behind catches up from
    /// JetStream (fanout.rs).
    pub stream_buffer: usize,
    /// How long an attempt of a step without a timeout of its own waits for a service it needs
    /// (agent-runner, auth) to come back, asking again with growing pauses
    /// (`SANKALPA_CHAINS_MAX_OUTAGE_WAIT_MS`, 5 minutes); a step with a timeout waits within it.
    /// Past it, the attempt fails as `unavailable`, which the step's retry policy may retry.
    pub max_outage_wait: Duration,
    /// How long a completed step's output waits for memory to save it
    /// (`SANKALPA_CHAINS_MEMORY_OUTAGE_WAIT_MS`, 30 s): past it, the step completes with a
    /// warning that memory does not have its output (memory.rs).
    pub memory_outage_wait: Duration,
    /// How long a step attempt may run before its start is written on its own
    /// (`SANKALPA_CHAINS_UNANNOUNCED_START_MS`, 250 ms): one that ends sooner has its start
    /// written with its end, one transition instead of two; `step.started` goes out at most
    /// this late (engine/mod.rs).
    pub unannounced_start: Duration,
    /// How long agent-runner's answer that an agent exists is remembered
    /// (`SANKALPA_CHAINS_AGENT_CATALOG_TTL_MS`, 60 s; 0 remembers nothing): a submission of
    /// remembered agents asks agent-runner nothing (catalog.rs).
    pub agent_catalog_ttl: Duration,
    /// Days a finished run is kept for a tenant that set no retention of its own
    /// (`SANKALPA_CHAINS_RUN_RETENTION_DAYS`, 30; 0 keeps runs forever). See retention.rs.
    pub run_retention_days: u32,
    /// How often each replica deletes the runs past their retention
    /// (`SANKALPA_CHAINS_RETENTION_SWEEP_MS`, 15 min).
    pub retention_sweep_interval: Duration,
}

/// Room in a message from agent-runner beyond the step output it carries (ids, the error,
/// artifact descriptions), so that the output's own limit is what refuses a large answer.
const AGENT_ANSWER_SLACK_BYTES: usize = 1024 * 1024;

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        let defaults = Self::defaults(
            Infra::from_env()?,
            Listen::from_env("CHAINS", 50053, 9103)?,
            AuthSource::from_env()?,
        );
        Ok(Self {
            agents_url: config::var("SANKALPA_AGENTS_URL", defaults.agents_url)?,
            memory_url: config::switchable("SANKALPA_MEMORY_URL", "http://127.0.0.1:50054"),
            catalog_dir: config::var("SANKALPA_CHAINS_CATALOG", defaults.catalog_dir)?,
            lease_ttl: config::millis("SANKALPA_CHAINS_LEASE_MS", defaults.lease_ttl)?,
            claim_interval: config::millis(
                "SANKALPA_CHAINS_CLAIM_INTERVAL_MS",
                defaults.claim_interval,
            )?,
            max_runs: config::var("SANKALPA_CHAINS_MAX_RUNS", defaults.max_runs)?,
            max_parallel_steps: config::var(
                "SANKALPA_CHAINS_MAX_PARALLEL_STEPS",
                defaults.max_parallel_steps,
            )?,
            max_parallel_steps_per_run: config::var(
                "SANKALPA_CHAINS_MAX_PARALLEL_STEPS_PER_RUN",
                defaults.max_parallel_steps_per_run,
            )?,
            credential_ttl: Duration::from_secs(config::var(
                "SANKALPA_CHAINS_CREDENTIAL_TTL_SECONDS",
                defaults.credential_ttl.as_secs(),
            )?),
            credential_share: Duration::from_secs(config::var(
                "SANKALPA_CHAINS_CREDENTIAL_SHARE_SECONDS",
                defaults.credential_share.as_secs(),
            )?),
            credential_grace: Duration::from_secs(config::var(
                "SANKALPA_CHAINS_CREDENTIAL_GRACE_SECONDS",
                defaults.credential_grace.as_secs(),
            )?),
            credential_sweep_interval: config::millis(
                "SANKALPA_CHAINS_CREDENTIAL_SWEEP_MS",
                defaults.credential_sweep_interval,
            )?,
            max_run_output_bytes: config::var(
                "SANKALPA_CHAINS_MAX_RUN_OUTPUT_BYTES",
                defaults.max_run_output_bytes,
            )?,
            max_step_output_bytes: config::var(
                "SANKALPA_CHAINS_MAX_STEP_OUTPUT_BYTES",
                defaults.max_step_output_bytes,
            )?,
            max_step_input_bytes: config::var(
                "SANKALPA_CHAINS_MAX_STEP_INPUT_BYTES",
                defaults.max_step_input_bytes,
            )?,
            max_concurrent_runs_per_tenant: config::var(
                "SANKALPA_CHAINS_MAX_CONCURRENT_RUNS_PER_TENANT",
                defaults.max_concurrent_runs_per_tenant,
            )?,
            max_streams_per_tenant: config::var(
                "SANKALPA_CHAINS_MAX_STREAMS_PER_TENANT",
                defaults.max_streams_per_tenant,
            )?,
            stream_buffer: config::var("SANKALPA_CHAINS_STREAM_BUFFER", defaults.stream_buffer)?,
            max_outage_wait: config::millis(
                "SANKALPA_CHAINS_MAX_OUTAGE_WAIT_MS",
                defaults.max_outage_wait,
            )?,
            memory_outage_wait: config::millis(
                "SANKALPA_CHAINS_MEMORY_OUTAGE_WAIT_MS",
                defaults.memory_outage_wait,
            )?,
            unannounced_start: config::millis(
                "SANKALPA_CHAINS_UNANNOUNCED_START_MS",
                defaults.unannounced_start,
            )?,
            agent_catalog_ttl: config::millis(
                "SANKALPA_CHAINS_AGENT_CATALOG_TTL_MS",
                defaults.agent_catalog_ttl,
            )?,
            run_retention_days: config::var(
                "SANKALPA_CHAINS_RUN_RETENTION_DAYS",
                defaults.run_retention_days,
            )?,
            retention_sweep_interval: config::millis(
                "SANKALPA_CHAINS_RETENTION_SWEEP_MS",
                defaults.retention_sweep_interval,
            )?,
            ..defaults
        })
    }

    /// Every setting at its default: no memory service until configured.
    fn defaults(infra: Infra, listen: Listen, auth: AuthSource) -> Self {
        Self {
            infra,
            listen,
            agents_url: "http://127.0.0.1:50052".to_owned(),
            auth,
            memory_url: None,
            catalog_dir: PathBuf::from("catalog/chains"),
            lease_ttl: Duration::from_secs(15),
            claim_interval: Duration::from_secs(1),
            max_runs: 512,
            max_parallel_steps: 256,
            max_parallel_steps_per_run: 8,
            credential_ttl: Duration::from_secs(24 * 3600),
            credential_share: Duration::from_secs(300),
            credential_grace: Duration::from_secs(60),
            credential_sweep_interval: Duration::from_secs(10),
            max_run_output_bytes: 16 * 1024 * 1024,
            max_step_output_bytes: 4 * 1024 * 1024,
            max_step_input_bytes: 3 * 1024 * 1024,
            max_concurrent_runs_per_tenant: 100,
            max_streams_per_tenant: 2048,
            stream_buffer: 1024,
            max_outage_wait: Duration::from_secs(300),
            memory_outage_wait: Duration::from_secs(30),
            unannounced_start: Duration::from_millis(250),
            agent_catalog_ttl: Duration::from_secs(60),
            run_retention_days: 30,
            retention_sweep_interval: Duration::from_secs(15 * 60),
        }
    }

    /// The defaults on free ports, with the repository's templates and short leases so
    /// resumption tests are quick. No memory service: a test that wants step outputs in memory
    /// starts one and sets `memory_url`.
    pub fn for_tests(infra: Infra, auth_url: &str, agents_url: &str) -> Self {
        Self {
            agents_url: agents_url.to_owned(),
            catalog_dir: PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../catalog/chains"
            )),
            lease_ttl: Duration::from_millis(1500),
            claim_interval: Duration::from_millis(100),
            max_runs: 64,
            max_parallel_steps: 64,
            credential_ttl: Duration::from_secs(3600),
            credential_grace: Duration::ZERO,
            credential_sweep_interval: Duration::from_millis(200),
            ..Self::defaults(infra, Listen::for_tests(), AuthSource::for_tests(auth_url))
        }
    }

    fn heartbeat_interval(&self) -> Duration {
        self.lease_ttl / 3
    }

    /// The largest message taken from agent-runner: a step's output and what comes with it.
    fn agents_message_bytes(&self) -> usize {
        self.max_step_output_bytes
            .saturating_add(AGENT_ANSWER_SLACK_BYTES)
    }
}

/// What every request handler and the engine share.
pub(crate) struct State {
    pub config: Config,
    pub pool: PgPool,
    /// Where WatchRun and WatchEvents read events from: the stream and its subjects.
    pub events: EventBus,
    /// Where run and step events are enqueued, in the transaction of their transition.
    pub outbox: Outbox,
    /// Step transitions waiting for their batch.
    pub transitions: runs::transitions::Transitions,
    /// Accepted runs waiting for their batch.
    pub submissions: runs::submissions::Submissions,
    /// Runs' ends waiting for their batch.
    pub endings: runs::endings::Endings,
    /// Runs to read with their steps, waiting for their batch.
    pub details: runs::details::Details,
    pub jetstream: async_nats::jetstream::Context,
    pub agents: agents::Client,
    /// Step outputs waiting for their save; None when no memory service is configured.
    pub memory: Option<memory::Saves>,
    /// The keys runs call with, shared by a caller's runs, and their access tokens.
    pub credentials: credentials::Credentials,
    pub templates: templates::Templates,
    /// The agents agent-runner has confirmed lately, so submissions need not ask it.
    pub catalog: catalog::Catalog,
    /// Tenants' retention, for the lifetime of what runs save in memory.
    pub retention: retention::RetentionCache,
    pub engine: engine::Handle,
    /// Cancelled at shutdown; ends the event streams, which would otherwise hold it up.
    pub stop: CancellationToken,
    /// The event streams open on this replica, per tenant.
    pub streams: Arc<watch::StreamSlots>,
    /// The live feed of events every stream on this replica takes.
    pub hub: fanout::Hub,
}

/// The channel of the run events: `sankalpa.chains.*`, on subjects `chains.<tenant>...`.
const EVENT_CHANNEL: &str = "chains";

impl State {
    /// Enqueues a run's event in `tx`, the transaction making the transition it announces, so
    /// the transition never commits without it. Call [`wake`](Self::wake) after the commit.
    pub async fn enqueue(
        &self,
        tx: &mut PgConnection,
        tenant: &str,
        run: Uuid,
        action: &str,
        data: serde_json::Value,
    ) -> sqlx::Result<()> {
        self.outbox
            .enqueue(tx, EVENT_CHANNEL, tenant, &run.to_string(), action, data)
            .await?;
        Ok(())
    }

    /// What [`enqueue`](Self::enqueue) would insert, for a statement that inserts it itself
    /// beside the change it announces.
    pub fn event_row(
        &self,
        tenant: &str,
        run: Uuid,
        action: &str,
        data: serde_json::Value,
    ) -> OutboxRow {
        self.outbox
            .row(EVENT_CHANNEL, tenant, &run.to_string(), action, data)
    }

    /// Has this replica's relay publish what was just committed, rather than at its next poll.
    pub fn wake(&self) {
        self.outbox.wake();
    }

    /// Enqueues a run's event in `tx`, commits, and wakes the relay.
    pub async fn commit_with_event(
        &self,
        mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
        tenant: &str,
        run: Uuid,
        action: &str,
        data: serde_json::Value,
    ) -> sqlx::Result<()> {
        self.enqueue(&mut tx, tenant, run, action, data).await?;
        tx.commit().await?;
        self.wake();
        Ok(())
    }
}

pub struct Orchestrator {
    state: Arc<State>,
    started: mpsc::UnboundedReceiver<engine::Handover>,
    skeleton: Skeleton,
}

impl Orchestrator {
    pub async fn build(config: Config, pool: PgPool) -> anyhow::Result<Self> {
        let templates = templates::Templates::load(&config.catalog_dir)?;
        let skeleton = Skeleton::start(
            &config.infra,
            &config.listen,
            &MIGRATOR,
            &pool,
            Keys::FromAuth(&config.auth),
        )
        .await?;
        engine::describe_metrics();
        retention::describe_metrics();
        credentials::describe_metrics();
        fanout::describe_metrics();
        let nats = skeleton.nats.clone();
        let events =
            EventBus::connect(nats.clone(), &config.infra, "/sankalpa/chain-orchestrator").await?;
        let auth = AuthServiceClient::new(sankalpa_kit::grpc::traced(sankalpa_kit::grpc::channel(
            &config.auth.url,
        )?));
        let agents = AgentServiceClient::new(sankalpa_kit::grpc::traced(
            sankalpa_kit::grpc::channel(&config.agents_url)?,
        ))
        .max_decoding_message_size(config.agents_message_bytes());
        let memory = config
            .memory_url
            .as_deref()
            .map(|url| {
                sankalpa_kit::grpc::channel(url).map(|channel| {
                    let client = MemoryServiceClient::new(sankalpa_kit::grpc::traced(channel));
                    memory::saves(client, skeleton.tasks.clone())
                })
            })
            .transpose()?;
        let (engine, started) = engine::Handle::new(config.max_runs, config.max_parallel_steps);
        let outbox = Outbox::new("chains", events.clone(), pool.clone());
        let jetstream = async_nats::jetstream::new(nats.clone());
        let hub = fanout::Hub::new(
            config.stream_buffer,
            &config.infra.subject_prefix,
            skeleton.tasks.clone(),
            skeleton.stop.clone(),
        );
        let state = Arc::new(State {
            transitions: runs::group_commit(
                pool.clone(),
                outbox.clone(),
                runs::transitions::LIMITS,
                skeleton.tasks.clone(),
            ),
            submissions: runs::group_commit(
                pool.clone(),
                outbox.clone(),
                runs::submissions::LIMITS,
                skeleton.tasks.clone(),
            ),
            endings: runs::group_commit(
                pool.clone(),
                outbox.clone(),
                runs::endings::LIMITS,
                skeleton.tasks.clone(),
            ),
            details: runs::details::details(pool.clone(), skeleton.tasks.clone()),
            pool,
            outbox,
            jetstream,
            events,
            credentials: credentials::Credentials::new(auth, config.credential_share),
            agents,
            memory,
            templates,
            catalog: catalog::Catalog::new(config.agent_catalog_ttl),
            retention: retention::RetentionCache::new(),
            engine,
            streams: Arc::new(watch::StreamSlots::new(config.max_streams_per_tenant)),
            hub,
            config,
            stop: skeleton.stop.clone(),
        });
        Ok(Self {
            state,
            started,
            skeleton,
        })
    }
}

impl Service for Orchestrator {
    fn grpc_addr(&self) -> Option<SocketAddr> {
        Some(self.skeleton.grpc_addr())
    }

    fn http_addr(&self) -> SocketAddr {
        self.skeleton.http_addr()
    }

    /// The engine runs beside the API, not as a spawned task, so that it ends with this future
    /// as a crash would end it.
    async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            state,
            started,
            skeleton,
        } = self;
        skeleton.tasks.spawn(retention::sweep(
            state.pool.clone(),
            state.config.run_retention_days,
            state.config.retention_sweep_interval,
            state.stop.clone(),
        ));
        skeleton.tasks.spawn(credentials::sweep(state.clone()));
        let api = ChainServiceServer::new(grpc::ChainApi::new(state.clone()));
        let readiness = skeleton.readiness(&state.pool);
        let engine = engine::run(state.clone(), started, state.stop.clone());
        let api = skeleton.serve_api(api, readiness, shutdown);
        // The relay stops only once the API and the engine have, so its last pass publishes the
        // events of the requests and steps that ended during shutdown. It is joined rather than
        // spawned for the engine's reason.
        let relay_stop = CancellationToken::new();
        let relay = state.outbox.clone().relay(relay_stop.clone());
        let served = async {
            let (served, ()) = tokio::join!(api, engine);
            relay_stop.cancel();
            served
        };
        let (served, ()) = tokio::join!(served, relay);
        served
    }
}
