//! What every request handler shares: the connections, the catalog, the custom-agent store, the
//! runs in flight and the service's bounds, built once at start (`AgentRunner::build`).

use std::sync::Arc;
use std::time::Duration;

use sankalpa_kit::events::EventBus;
use sankalpa_kit::grpc::TracedChannel;
use sankalpa_kit::objects::Objects;
use sankalpa_proto::v1::memory_service_client::MemoryServiceClient;
use sqlx::PgPool;
use tokio_util::task::TaskTracker;

use crate::catalog::Catalog;
use crate::custom::store::CustomAgents;
use crate::inflight::InFlight;
use crate::llm::LlmClient;
use crate::llm_usage::TokenQuota;
use crate::providers::Providers;

/// What every request handler shares.
pub struct State {
    pub pool: PgPool,
    /// Finished runs' outcomes waiting for their batch.
    pub outcomes: crate::outcome::Outcomes,
    pub catalog: Catalog,
    pub objects: Objects,
    pub events: EventBus,
    /// The fleet's LLM (`SANKALPA_LLM_*`): the operators' default.
    pub llm: Option<Arc<LlmClient>>,
    pub memory: Option<MemoryServiceClient<TracedChannel>>,
    pub runs: Arc<InFlight>,
    /// Owns every run's task, so shutdown waits for runs in flight.
    pub tasks: TaskTracker,
    pub default_deadline: Duration,
    pub max_deadline: Duration,
    pub max_template_output_bytes: usize,
    /// The tenants' custom agents.
    pub custom: Arc<CustomAgents>,
    /// The tenants' LLM answers, kept when `SANKALPA_LLM_CACHE_TTL_MS` says so.
    pub answers: Arc<crate::llm_cache::AnswerCache>,
    /// The tenants' LLM tokens per day.
    pub tokens: Arc<TokenQuota>,
    /// The tenants' model providers and default models.
    pub providers: Arc<Providers>,
}
