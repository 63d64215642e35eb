//! The memory service: sessions of key -> JSON entries that agents of a chain share and users
//! keep between runs, atomic transactions over a session, and backups to the object store with
//! restore. It owns the `memory` schema and serves `sankalpa.v1.MemoryService` over gRPC
//! (50054), with health and metrics over HTTP (9104).
//!
//! Postgres is the source of truth ([`entries`], [`sessions`], [`transactions`], [`backups`]),
//! and concurrent unconditional saves are committed together ([`entries::saves`]);
//! single-key loads go through a Redis read-through cache ([`cache`]) that writes keep current
//! after they commit; every change is announced on NATS ([`events`]) through an outbox committed
//! with it.
//!
//! Every size a request can reach is bounded, so no request holds more than a few times its
//! bound in memory: a value (counted as Postgres writes it back out), a transaction's keys and
//! values, a page of `GetAll` by bytes as well as by count, a backup and a restore by bytes
//! ([`Config`]), and a session's keys (10,000, kept by the database: see its migrations).
//! A dependency that cannot be asked answers UNAVAILABLE, never INTERNAL ([`error`]).
//!
//! [`Memory::build`] starts the kit's [`Skeleton`] (migrations, auth's token keys, both
//! listeners) and builds the state around it; serving it ([`Service::serve`]) runs until its
//! shutdown future resolves.

mod backups;
mod cache;
mod entries;
mod entry;
mod error;
mod events;
mod grpc;
mod input;
mod sessions;
mod transactions;

use std::borrow::Cow;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sankalpa_kit::config::{self, Infra};
use sankalpa_kit::events::EventBus;
use sankalpa_kit::objects::Objects;
use sankalpa_kit::outbox::Outbox;
use sankalpa_kit::service::{AuthSource, Keys, Listen, Service, Skeleton};
use sankalpa_proto::v1::memory_service_server::MemoryServiceServer;
use sqlx::PgPool;
use sqlx::migrate::Migrator;

/// The memory schema's migrations. They are tracked in `memory._sqlx_migrations` rather than
/// the default `public._sqlx_migrations`: every service migrates the one shared database at its
/// start, and a migrator refuses to run when the tracking table lists versions it does not know
/// (another service's).
pub static MIGRATOR: Migrator = Migrator {
    table_name: Cow::Borrowed("memory._sqlx_migrations"),
    create_schemas: Cow::Borrowed(&[Cow::Borrowed("memory")]),
    ..sqlx::migrate!("../../migrations/memory")
};

#[derive(Debug, Clone)]
pub struct Config {
    pub infra: Infra,
    pub listen: Listen,
    /// Where the token keys come from.
    pub auth: AuthSource,
    /// Where backups are stored (`SANKALPA_OBJECT_STORE_URL`: a folder or `s3://bucket/prefix`).
    pub object_store_url: String,
    /// Put before every Redis key (`SANKALPA_REDIS_KEY_PREFIX`); unique per test.
    pub redis_key_prefix: String,
    /// The largest value accepted, in bytes of JSON text (`SANKALPA_MEMORY_MAX_VALUE_BYTES`).
    pub max_value_bytes: usize,
    /// The most bytes of entries one page of `GetAll` holds (`SANKALPA_MEMORY_MAX_PAGE_BYTES`);
    /// a page ends early, with a token to go on, rather than pass it. A page always holds at
    /// least one entry, so a value larger than this still comes through, alone.
    pub max_page_bytes: usize,
    /// The most bytes of keys and values one transaction carries, values counted as they are
    /// written back out (`SANKALPA_MEMORY_MAX_TRANSACTION_BYTES`). Its answer echoes every value
    /// it set, as Postgres writes it (up to half again the JSON sent), and must stay under the
    /// 4 MiB a gRPC client accepts.
    pub max_transaction_bytes: usize,
    /// The largest backup, in bytes of its document (`SANKALPA_MEMORY_MAX_BACKUP_BYTES`): a
    /// backup is built, and a restore read, whole in memory, so a session larger than this is
    /// not backed up and a larger stored backup is not restored (FAILED_PRECONDITION).
    pub max_backup_bytes: usize,
    /// How long a cached entry may be served from Redis: the bound on staleness should a write
    /// commit but fail to update the cache (`SANKALPA_MEMORY_CACHE_TTL_MS`).
    pub cache_ttl: Duration,
    /// The bytes of entries held in process in front of Redis
    /// (`SANKALPA_MEMORY_NEAR_CACHE_BYTES`, 0 turns that tier off).
    pub near_cache_bytes: usize,
    /// How often expired entries are deleted (`SANKALPA_MEMORY_SWEEP_INTERVAL_MS`); they read
    /// as absent from the moment they expire, this only reclaims the space.
    pub sweep_interval: Duration,
}

/// gRPC's default limit on a message a client accepts is 4 MiB; a page stays a quarter of a MiB
/// under it, room for the message's own framing and page token.
pub const DEFAULT_MAX_PAGE_BYTES: usize = 4 * 1024 * 1024 - 256 * 1024;

/// 2 MiB: written back out, at most 3 MiB, and the answer's framing under 1 MiB more.
pub const DEFAULT_MAX_TRANSACTION_BYTES: usize = 2 * 1024 * 1024;

/// What a request may hold besides the keys and values that are bounded on their own.
const REQUEST_HEADROOM_BYTES: usize = 64 * 1024;

/// 64 MiB: a session of 64 values at the largest default value size, held in memory about
/// once while it is backed up or restored.
pub const DEFAULT_MAX_BACKUP_BYTES: usize = 64 * 1024 * 1024;

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        let defaults = Self::defaults(
            Infra::from_env()?,
            Listen::from_env("MEMORY", 50054, 9104)?,
            AuthSource::from_env()?,
        );
        Ok(Self {
            object_store_url: config::var("SANKALPA_OBJECT_STORE_URL", defaults.object_store_url)?,
            redis_key_prefix: config::var("SANKALPA_REDIS_KEY_PREFIX", defaults.redis_key_prefix)?,
            max_value_bytes: config::var(
                "SANKALPA_MEMORY_MAX_VALUE_BYTES",
                defaults.max_value_bytes,
            )?,
            max_page_bytes: config::var("SANKALPA_MEMORY_MAX_PAGE_BYTES", defaults.max_page_bytes)?,
            max_transaction_bytes: config::var(
                "SANKALPA_MEMORY_MAX_TRANSACTION_BYTES",
                defaults.max_transaction_bytes,
            )?,
            max_backup_bytes: config::var(
                "SANKALPA_MEMORY_MAX_BACKUP_BYTES",
                defaults.max_backup_bytes,
            )?,
            cache_ttl: config::millis("SANKALPA_MEMORY_CACHE_TTL_MS", defaults.cache_ttl)?,
            near_cache_bytes: config::var(
                "SANKALPA_MEMORY_NEAR_CACHE_BYTES",
                defaults.near_cache_bytes,
            )?,
            sweep_interval: config::millis(
                "SANKALPA_MEMORY_SWEEP_INTERVAL_MS",
                defaults.sweep_interval,
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
            object_store_url: "./data/objects".to_owned(),
            redis_key_prefix: "sankalpa:".to_owned(),
            max_value_bytes: 1024 * 1024,
            max_page_bytes: DEFAULT_MAX_PAGE_BYTES,
            max_transaction_bytes: DEFAULT_MAX_TRANSACTION_BYTES,
            max_backup_bytes: DEFAULT_MAX_BACKUP_BYTES,
            cache_ttl: Duration::from_secs(10),
            near_cache_bytes: 16 * 1024 * 1024,
            sweep_interval: Duration::from_secs(60),
        }
    }

    /// The defaults on free ports, in front of `auth_url`, with this test's own Redis keys
    /// and a fresh temporary object folder.
    pub fn for_tests(infra: Infra, auth_url: impl Into<String>) -> Self {
        let name = uuid::Uuid::new_v4().simple();
        let objects = std::env::temp_dir().join(format!("sankalpa-memory-{name}"));
        Self {
            object_store_url: objects.to_string_lossy().into_owned(),
            redis_key_prefix: format!("test:{name}:"),
            ..Self::defaults(infra, Listen::for_tests(), AuthSource::for_tests(auth_url))
        }
    }
}

/// What every request handler shares.
pub(crate) struct State {
    pub pool: PgPool,
    pub cache: Arc<cache::EntryCache>,
    pub events: events::Events,
    pub saves: entries::saves::Saves,
    pub objects: Objects,
    pub max_value_bytes: usize,
    pub max_page_bytes: usize,
    pub max_transaction_bytes: usize,
    pub max_backup_bytes: usize,
}

pub struct Memory {
    state: Arc<State>,
    skeleton: Skeleton,
    sweep_interval: Duration,
}

impl Memory {
    pub async fn build(config: Config, pool: PgPool) -> anyhow::Result<Self> {
        let skeleton = Skeleton::start(
            &config.infra,
            &config.listen,
            &MIGRATOR,
            &pool,
            Keys::FromAuth(&config.auth),
        )
        .await?;
        cache::describe_metrics();

        let redis = sankalpa_kit::cache::Redis::new(
            &config.infra.redis_url,
            &config.redis_key_prefix,
            config.infra.redis_pool_size,
        )?;
        let bus =
            EventBus::connect(skeleton.nats.clone(), &config.infra, "/sankalpa/memory").await?;
        let objects = Objects::from_url(&config.object_store_url)?.scoped("memory");

        let outbox = Outbox::new("memory", bus, pool.clone());

        let cache = Arc::new(cache::EntryCache::new(
            redis,
            &config.infra.redis_url,
            config.cache_ttl,
            config.near_cache_bytes,
        )?);
        let events = events::Events::new(outbox, "memory");
        let state = Arc::new(State {
            saves: entries::saves::saves(
                pool.clone(),
                cache.clone(),
                events.clone(),
                skeleton.tasks.clone(),
            ),
            pool,
            cache,
            events,
            objects,
            max_value_bytes: config.max_value_bytes,
            max_page_bytes: config.max_page_bytes,
            max_transaction_bytes: config.max_transaction_bytes,
            max_backup_bytes: config.max_backup_bytes,
        });
        Ok(Self {
            state,
            skeleton,
            sweep_interval: config.sweep_interval,
        })
    }
}

impl Service for Memory {
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
            skeleton,
            sweep_interval,
        } = self;
        let stop = skeleton.stop.clone();
        skeleton.tasks.spawn(entries::sweep_expired(
            state.pool.clone(),
            sweep_interval,
            stop.clone(),
        ));
        skeleton.tasks.spawn(state.events.relay(stop));

        // tonic refuses requests over 4 MiB before they reach a handler, with no field named;
        // the bounds of values and transactions are the ones a client meets, and the limit
        // grows with them when they are set higher.
        let largest_request = state
            .max_value_bytes
            .max(state.max_transaction_bytes)
            .saturating_add(REQUEST_HEADROOM_BYTES)
            .max(4 * 1024 * 1024);
        let api = MemoryServiceServer::new(grpc::MemoryApi::new(state.clone()))
            .max_decoding_message_size(largest_request);
        // Redis is deliberately left out: without it the service answers correctly, only
        // slower, so it must stay in rotation.
        let readiness = skeleton.readiness(&state.pool);
        skeleton.serve_api(api, readiness, shutdown).await
    }
}
