//! The agent runner: the agent catalog, the built-in agents, tenants' custom agents, running
//! one agent for a caller, and the files runs write. It serves `sankalpa.v1.AgentService` over
//! gRPC (50052), with health and metrics over HTTP (9102), and owns the `agents` schema (custom
//! agents, each tenant's LLM tokens per day, and for a day the outcomes of the runs whose
//! caller named their run id; runs' artifacts are in the object store and their history is the
//! `agents.*` events).
//!
//! No single request may make it hold or spend without bound: custom agents' definitions,
//! templates, validation and patterns are bounded (`schema`, `custom`), error messages are
//! cut before they leave, and each tenant has quotas of runs in flight (`runs`) and
//! of LLM tokens per day (`llm_usage`).
//!
//! The modules are layered, each using only those in the lines before its own:
//!
//! - `error`, `llm`, `llm_cache`, `artifacts`, `llm_usage`, `session`, `envelope`,
//!   `providers`: what can go wrong, the LLM client and its kept answers, the object store's
//!   files, the tenants' tokens of the day and their cost, a run's memory session, the sealed
//!   keys and the tenants' model providers;
//! - `spec`: what every agent declares (name, category, version, schemas);
//! - `custom`: tenants' definitions — `template`, `compile`, `cache`, `store`;
//! - `context`: what a run gives its agent (files, LLM, memory, the custom-agent store, the
//!   agents its model may call, as an interface the runs layer implements);
//! - `agents` and `custom::run`: the built-in agents' behaviour, and a custom agent's;
//! - `catalog`: one table of the built-in agents, joined with `catalog/agents.json`; an agent
//!   is a built-in or a custom one;
//! - `outcome`, `inflight`, `state`, `runs`, `tools`: a run's outcome (and those kept), the runs
//!   in flight, what handlers share, one run's life, the agents a model calls run as runs;
//! - `assistant`: the chat assistant's reply (Converse), from the planner's plan or the LLM;
//! - `grpc`: the wire; this file: configuration, build, serve.
//!
//! [`AgentRunner::build`] loads and checks the catalog (refusing to start on a broken one), then
//! starts the kit's [`Skeleton`] (migrations, auth's token keys, both listeners); serving it
//! ([`Service::serve`]) runs until its shutdown future resolves, then waits for the runs in
//! flight.

mod agents;
mod artifacts;
mod assistant;
mod catalog;
mod context;
mod custom;
mod envelope;
mod error;
mod grpc;
mod inflight;
pub mod llm;
mod llm_cache;
mod llm_usage;
mod outcome;
mod providers;
mod runs;
mod session;
mod spec;
mod state;
mod tools;

use std::borrow::Cow;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sankalpa_kit::config::{self, Infra};
use sankalpa_kit::egress::Guard;
use sankalpa_kit::events::EventBus;
use sankalpa_kit::objects::Objects;
use sankalpa_kit::service::{AuthSource, Keys, Listen, Service, Skeleton};
use sankalpa_proto::v1::agent_service_server::AgentServiceServer;
use sankalpa_proto::v1::memory_service_client::MemoryServiceClient;
use sqlx::PgPool;
use sqlx::migrate::Migrator;

use crate::catalog::Catalog;
use crate::custom::store::CustomAgents;
use crate::inflight::InFlight;
use crate::llm::{LlmClient, LlmConfig};
use crate::llm_cache::AnswerCache;
pub use crate::llm_usage::Prices;
use crate::llm_usage::TokenQuota;
use crate::providers::{CallSettings, Providers};
use crate::state::State;

pub use crate::envelope::Keyring;

/// The agents schema's migrations, tracked in `agents._sqlx_migrations`: every service migrates
/// the one shared database, and a migrator refuses to run when the tracking table lists versions
/// it does not know (another service's).
pub static MIGRATOR: Migrator = Migrator {
    table_name: Cow::Borrowed("agents._sqlx_migrations"),
    create_schemas: Cow::Borrowed(&[Cow::Borrowed("agents")]),
    ..sqlx::migrate!("../../migrations/agents")
};

#[derive(Debug, Clone)]
pub struct Config {
    pub infra: Infra,
    pub listen: Listen,
    /// Where the token keys come from.
    pub auth: AuthSource,
    /// Where artifacts are stored (`SANKALPA_OBJECT_STORE_URL`: a folder or `s3://bucket/prefix`).
    pub object_store_url: String,
    /// A catalog file to load instead of the one built in (`SANKALPA_AGENTS_CATALOG`).
    pub catalog_path: Option<PathBuf>,
    /// A run's deadline when the caller names none (`SANKALPA_AGENTS_DEFAULT_DEADLINE_MS`).
    pub default_deadline: Duration,
    /// The longest deadline a caller may ask for (`SANKALPA_AGENTS_MAX_DEADLINE_MS`).
    pub max_deadline: Duration,
    /// The memory service's gRPC endpoint, for runs with a session (`SANKALPA_MEMORY_URL`;
    /// empty turns session access off).
    pub memory_url: Option<String>,
    /// The LLM endpoint, when `SANKALPA_LLM_BASE_URL` is set: the operators' default, asked by
    /// the runs of tenants without a model provider of their own.
    pub llm: Option<LlmConfig>,
    /// The envelope keys sealing the tenants' model provider API keys (`SANKALPA_MODEL_KEYS`,
    /// `id:base64` of 32 bytes, comma separated, the first sealing); without them a provider
    /// cannot store a key. See the `envelope` module.
    pub model_keys: Option<Keyring>,
    /// Where the tenants' model providers may be: public https addresses, plus plain http
    /// (`SANKALPA_MODELS_ALLOW_HTTP`) and the special networks
    /// (`SANKALPA_MODELS_ALLOW_PRIVATE_NETWORKS`, comma-separated `address/prefix`, e.g. a
    /// self-hosted model server's) the operator allows. See `sankalpa_kit::egress`.
    pub provider_egress: Guard,
    /// The most a custom agent's template may render in one run, its output, files and prompt
    /// together, in bytes (`SANKALPA_AGENTS_MAX_TEMPLATE_OUTPUT_BYTES`, default 1 MiB). Checked
    /// while rendering: past it the run fails as `output_too_large`.
    pub max_template_output_bytes: usize,
    /// The most memory the compiled custom agents kept between requests may take, as
    /// estimated (`SANKALPA_AGENTS_DEFINITION_CACHE_BYTES`, default 32 MiB): see
    /// the `custom::cache` module.
    pub definition_cache_bytes: usize,
    /// How many agent runs one tenant may have in flight on this replica at once
    /// (`SANKALPA_AGENTS_MAX_CONCURRENT_RUNS_PER_TENANT`, default 64; 0: no limit). Counted per
    /// replica, in memory: a run more is RESOURCE_EXHAUSTED carrying the quota (the gateway's
    /// 429 with RateLimit-* headers and `Retry-After: 1`).
    pub max_concurrent_runs_per_tenant: usize,
    /// How many LLM tokens (prompt and completion) one tenant's runs may use per UTC day, across
    /// replicas (`SANKALPA_LLM_TOKENS_PER_TENANT_PER_DAY`, default 1,000,000; 0: no limit). A
    /// run that would call the LLM past it is RESOURCE_EXHAUSTED carrying the quota, reset at
    /// the next UTC midnight; see the `llm_usage` module.
    pub llm_tokens_per_tenant_per_day: u64,
    /// How long the outcome of a run whose caller named its run id is kept at least, to answer
    /// that run id asked again (`SANKALPA_AGENTS_RUN_RETENTION_MS`, default 24 h); see the
    /// `outcome` module.
    pub run_retention: Duration,
    /// How often kept run outcomes past their retention, and expired LLM answers, are deleted
    /// (`SANKALPA_AGENTS_RUN_SWEEP_INTERVAL_MS`, default 60 s).
    pub run_sweep_interval: Duration,
    /// How long an LLM answer is kept for the same question of the same tenant
    /// (`SANKALPA_LLM_CACHE_TTL_MS`, default 0: not kept); see the `llm_cache` module.
    pub llm_cache_ttl: Duration,
    /// The operator's prices of models (`SANKALPA_LLM_PRICES`, none by default), for what the
    /// tenants' LLM use costs; see the `llm_usage` module.
    pub llm_prices: Prices,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        let defaults = Self::defaults(
            Infra::from_env()?,
            Listen::from_env("AGENTS", 50052, 9102)?,
            AuthSource::from_env()?,
        );
        let base_url = config::var("SANKALPA_LLM_BASE_URL", String::new())?;
        let llm = if base_url.is_empty() {
            None
        } else {
            let api_key = config::var("SANKALPA_LLM_API_KEY", String::new())?;
            let protocol = match config::var("SANKALPA_LLM_PROTOCOL", "openai".to_owned())?.as_str()
            {
                "openai" => crate::llm::Protocol::OpenAi,
                "anthropic" => crate::llm::Protocol::Anthropic,
                other => {
                    anyhow::bail!("SANKALPA_LLM_PROTOCOL: {other:?} is not openai or anthropic")
                }
            };
            Some(LlmConfig {
                protocol,
                base_url,
                api_key: (!api_key.is_empty()).then_some(api_key),
                model: config::var("SANKALPA_LLM_MODEL", "gpt-4o-mini".to_owned())?,
                timeout: config::millis("SANKALPA_LLM_TIMEOUT_MS", Duration::from_secs(30))?,
                max_retries: config::var("SANKALPA_LLM_MAX_RETRIES", 2)?,
                backoff: config::millis("SANKALPA_LLM_BACKOFF_MS", Duration::from_millis(500))?,
            })
        };
        let model_keys = Keyring::parse(&config::var("SANKALPA_MODEL_KEYS", String::new())?)
            .map_err(|reason| anyhow::anyhow!("SANKALPA_MODEL_KEYS: {reason}"))?;
        let catalog = config::var("SANKALPA_AGENTS_CATALOG", String::new())?;
        Ok(Self {
            object_store_url: config::var("SANKALPA_OBJECT_STORE_URL", defaults.object_store_url)?,
            catalog_path: (!catalog.is_empty()).then(|| PathBuf::from(catalog)),
            memory_url: config::switchable("SANKALPA_MEMORY_URL", "http://127.0.0.1:50054"),
            default_deadline: config::millis(
                "SANKALPA_AGENTS_DEFAULT_DEADLINE_MS",
                defaults.default_deadline,
            )?,
            max_deadline: config::millis("SANKALPA_AGENTS_MAX_DEADLINE_MS", defaults.max_deadline)?,
            llm,
            model_keys,
            provider_egress: Guard {
                allow_http: config::var("SANKALPA_MODELS_ALLOW_HTTP", false)?,
                allowed_networks: sankalpa_kit::egress::networks_from_env(
                    "SANKALPA_MODELS_ALLOW_PRIVATE_NETWORKS",
                )?,
            },
            max_template_output_bytes: config::var(
                "SANKALPA_AGENTS_MAX_TEMPLATE_OUTPUT_BYTES",
                defaults.max_template_output_bytes,
            )?,
            definition_cache_bytes: config::var(
                "SANKALPA_AGENTS_DEFINITION_CACHE_BYTES",
                defaults.definition_cache_bytes,
            )?,
            max_concurrent_runs_per_tenant: config::var(
                "SANKALPA_AGENTS_MAX_CONCURRENT_RUNS_PER_TENANT",
                defaults.max_concurrent_runs_per_tenant,
            )?,
            llm_tokens_per_tenant_per_day: config::var(
                "SANKALPA_LLM_TOKENS_PER_TENANT_PER_DAY",
                defaults.llm_tokens_per_tenant_per_day,
            )?,
            run_retention: config::millis(
                "SANKALPA_AGENTS_RUN_RETENTION_MS",
                defaults.run_retention,
            )?,
            run_sweep_interval: config::millis(
                "SANKALPA_AGENTS_RUN_SWEEP_INTERVAL_MS",
                defaults.run_sweep_interval,
            )?,
            llm_cache_ttl: config::millis("SANKALPA_LLM_CACHE_TTL_MS", defaults.llm_cache_ttl)?,
            llm_prices: Prices::parse(&config::var("SANKALPA_LLM_PRICES", String::new())?)
                .map_err(|reason| anyhow::anyhow!("SANKALPA_LLM_PRICES: {reason}"))?,
            ..defaults
        })
    }

    /// Every setting at its default: no memory service and no LLM until configured.
    fn defaults(infra: Infra, listen: Listen, auth: AuthSource) -> Self {
        Self {
            infra,
            listen,
            auth,
            object_store_url: "./data/objects".to_owned(),
            catalog_path: None,
            memory_url: None,
            default_deadline: Duration::from_secs(60),
            max_deadline: Duration::from_secs(15 * 60),
            llm: None,
            model_keys: None,
            provider_egress: Guard::default(),
            max_template_output_bytes: 1024 * 1024,
            definition_cache_bytes: 32 * 1024 * 1024,
            max_concurrent_runs_per_tenant: 64,
            llm_tokens_per_tenant_per_day: 1_000_000,
            run_retention: Duration::from_secs(24 * 3600),
            run_sweep_interval: Duration::from_secs(60),
            llm_cache_ttl: Duration::ZERO,
            llm_prices: Prices::default(),
        }
    }

    /// The defaults on free ports, in front of `auth_url`, storing artifacts in
    /// `object_store_url`; providers may be on this machine (the tests' fake LLMs).
    pub fn for_tests(
        infra: Infra,
        auth_url: impl Into<String>,
        object_store_url: impl Into<String>,
    ) -> Self {
        Self {
            object_store_url: object_store_url.into(),
            provider_egress: Guard {
                allow_http: true,
                allowed_networks: vec!["127.0.0.0/8".parse().expect("a network")],
            },
            ..Self::defaults(infra, Listen::for_tests(), AuthSource::for_tests(auth_url))
        }
    }
}

pub struct AgentRunner {
    state: Arc<State>,
    skeleton: Skeleton,
    run_retention: Duration,
    run_sweep_interval: Duration,
}

impl AgentRunner {
    pub async fn build(config: Config, pool: PgPool) -> anyhow::Result<Self> {
        let catalog = Catalog::load(config.catalog_path.as_deref())?;
        let skeleton = Skeleton::start(
            &config.infra,
            &config.listen,
            &MIGRATOR,
            &pool,
            Keys::FromAuth(&config.auth),
        )
        .await?;
        runs::describe_metrics();
        let events = EventBus::connect(
            skeleton.nats.clone(),
            &config.infra,
            "/sankalpa/agent-runner",
        )
        .await?;
        let objects = Objects::from_url(&config.object_store_url)?.scoped("agents");
        let calls = config.llm.as_ref().map_or(
            CallSettings {
                timeout: Duration::from_secs(30),
                max_retries: 2,
                backoff: Duration::from_millis(500),
            },
            |llm| CallSettings {
                timeout: llm.timeout,
                max_retries: llm.max_retries,
                backoff: llm.backoff,
            },
        );
        let providers = Arc::new(
            Providers::new(
                pool.clone(),
                config.model_keys,
                config.provider_egress,
                calls,
            )
            .context("could not configure the model providers' client")?,
        );
        let llm = config
            .llm
            .map(LlmClient::new)
            .transpose()
            .context("could not configure the LLM client")?
            .map(Arc::new);

        let memory = config
            .memory_url
            .as_deref()
            .map(sankalpa_kit::grpc::channel)
            .transpose()?
            .map(|channel| MemoryServiceClient::new(sankalpa_kit::grpc::traced(channel)));
        let tokens = Arc::new(TokenQuota::new(
            pool.clone(),
            config.llm_tokens_per_tenant_per_day,
            config.llm_prices,
        ));
        let custom = Arc::new(CustomAgents::new(
            pool.clone(),
            config.definition_cache_bytes,
            catalog.names(),
        ));
        let answers = Arc::new(AnswerCache::new(pool.clone(), config.llm_cache_ttl));
        let state = Arc::new(State {
            outcomes: outcome::outcomes(pool.clone(), skeleton.tasks.clone()),
            answers,
            pool,
            catalog,
            objects,
            events,
            llm,
            memory,
            runs: Arc::new(InFlight::new(config.max_concurrent_runs_per_tenant)),
            tasks: skeleton.tasks.clone(),
            default_deadline: config.default_deadline,
            max_deadline: config.max_deadline,
            max_template_output_bytes: config.max_template_output_bytes,
            custom,
            tokens,
            providers,
        });
        Ok(Self {
            state,
            skeleton,
            run_retention: config.run_retention,
            run_sweep_interval: config.run_sweep_interval,
        })
    }
}

impl Service for AgentRunner {
    fn grpc_addr(&self) -> Option<SocketAddr> {
        Some(self.skeleton.grpc_addr())
    }

    fn http_addr(&self) -> SocketAddr {
        self.skeleton.http_addr()
    }

    /// Runs in flight when the server stops taking new ones finish before this returns.
    async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        self.skeleton.tasks.spawn(outcome::sweep(
            self.state.pool.clone(),
            self.state.answers.clone(),
            self.run_retention,
            self.run_sweep_interval,
            self.skeleton.stop.clone(),
        ));
        let api = AgentServiceServer::new(grpc::AgentApi::new(self.state.clone()));
        let readiness = self.skeleton.readiness(&self.state.pool);
        self.skeleton.serve_api(api, readiness, shutdown).await
    }
}
