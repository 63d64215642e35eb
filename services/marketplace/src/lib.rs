//! The marketplace service: chains and custom agents published by one tenant for others to
//! find, review and install. It owns the `marketplace` schema and serves
//! `sankalpa.v1.MarketplaceService` over gRPC (50055), with health and metrics over HTTP (9105).
//!
//! An item ([`items`]) has immutable semver versions ([`versions`]) whose packages (definition
//! documents) live in the object store with their SHA-256 ([`packages`]), checked by the service
//! that owns the kind before they are accepted and again, by checksum, before they are
//! installed ([`owners`], [`installs`]). Items are found by Postgres full-text search
//! ([`items::search`]) and rated by [`reviews`]; changes are announced on NATS ([`events`])
//! through an outbox committed with them.
//!
//! Every size and count a request controls is bounded ([`input`], [`Config`]): texts, tags,
//! versions (in length, and per item), packages, and pages of lists by count, by bytes and in
//! depth. Another tenant's item is not found to any write; a dependency that cannot be asked
//! (the database, the object store, an owning service) answers UNAVAILABLE naming it.
//!
//! [`Marketplace::build`] starts the kit's [`Skeleton`] (migrations, auth's token keys, both
//! listeners) and builds the state around it; serving it ([`Service::serve`]) runs until its
//! shutdown future resolves.

mod error;
mod events;
mod grpc;
mod input;
mod installs;
mod items;
mod owners;
mod packages;
mod reviews;
mod versions;

use std::borrow::Cow;
use std::future::Future;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use sankalpa_kit::config::{self, Infra};
use sankalpa_kit::events::EventBus;
use sankalpa_kit::objects::Objects;
use sankalpa_kit::outbox::Outbox;
use sankalpa_kit::service::{AuthSource, Keys, Listen, Service, Skeleton};
use sankalpa_proto::v1::auth_service_client::AuthServiceClient;
use sankalpa_proto::v1::marketplace_service_server::MarketplaceServiceServer;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use tokio::sync::Semaphore;

/// The marketplace schema's migrations, tracked in `marketplace._sqlx_migrations`: every
/// service migrates the one shared database at its start, and a migrator refuses to run when
/// the tracking table lists versions it does not know (another service's).
pub static MIGRATOR: Migrator = Migrator {
    table_name: Cow::Borrowed("marketplace._sqlx_migrations"),
    create_schemas: Cow::Borrowed(&[Cow::Borrowed("marketplace")]),
    ..sqlx::migrate!("../../migrations/marketplace")
};

#[derive(Debug, Clone)]
pub struct Config {
    pub infra: Infra,
    pub listen: Listen,
    /// Where the token keys, and authors' names, come from.
    pub auth: AuthSource,
    /// The chain orchestrator, which validates and installs chains (`SANKALPA_CHAINS_URL`).
    pub chains_url: String,
    /// agent-runner, which validates and installs custom agents (`SANKALPA_AGENTS_URL`).
    pub agents_url: String,
    /// Where packages are stored (`SANKALPA_OBJECT_STORE_URL`: a folder or `s3://bucket/prefix`).
    pub object_store_url: String,
    /// The largest package accepted, in bytes (`SANKALPA_MARKETPLACE_MAX_PACKAGE_BYTES`).
    pub max_package_bytes: usize,
    /// The most bytes one page of a list (search, versions, reviews, installs) holds
    /// (`SANKALPA_MARKETPLACE_MAX_PAGE_BYTES`): a page ends early, with a token to go on,
    /// rather than pass it. 200 versions with the longest release notes would be 8 MB.
    pub max_page_bytes: usize,
    /// The most versions an item has, yanked ones included
    /// (`SANKALPA_MARKETPLACE_MAX_VERSIONS_PER_ITEM`); a publish past it is FAILED_PRECONDITION.
    pub max_versions_per_item: usize,
    /// How long a call to the chain orchestrator or agent-runner may take
    /// (`SANKALPA_MARKETPLACE_UPSTREAM_TIMEOUT_MS`).
    pub upstream_timeout: Duration,
    /// How many text searches run in Postgres at once (`SANKALPA_MARKETPLACE_SEARCH_CONCURRENCY`);
    /// the rest wait their turn, first come first served.
    pub search_concurrency: NonZeroUsize,
}

/// Concurrent searches past about one and a half times Postgres's cores only share its CPUs
/// more finely: each search then takes as long as all of them together, which is the tail a
/// queue avoids. On the 2-core bench machine, 3 kept the throughput of 4 at 16 clients with a
/// p99 1.5 ms lower (15.0 against 16.6 ms over three runs each); 2 lost a sixth of it.
const DEFAULT_SEARCH_CONCURRENCY: NonZeroUsize = NonZeroUsize::new(3).expect("not zero");

/// gRPC's default limit on a message a client accepts is 4 MiB; a page stays a quarter of a MiB
/// under it, room for the message's own framing and page token.
pub const DEFAULT_MAX_PAGE_BYTES: usize = 4 * 1024 * 1024 - 256 * 1024;

/// Far more than an item's life of releases; enough that reading all of an item's versions,
/// as every publish and yank does, stays cheap.
pub const DEFAULT_MAX_VERSIONS_PER_ITEM: usize = 1000;

/// What a publish request holds besides its package: name, description, tags, release notes
/// and the rest, each bounded on its own, under 64 KiB together.
const PUBLISH_HEADROOM_BYTES: usize = 64 * 1024;

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        let defaults = Self::defaults(
            Infra::from_env()?,
            Listen::from_env("MARKETPLACE", 50055, 9105)?,
            AuthSource::from_env()?,
        );
        Ok(Self {
            chains_url: config::var("SANKALPA_CHAINS_URL", defaults.chains_url)?,
            agents_url: config::var("SANKALPA_AGENTS_URL", defaults.agents_url)?,
            object_store_url: config::var("SANKALPA_OBJECT_STORE_URL", defaults.object_store_url)?,
            max_package_bytes: config::var(
                "SANKALPA_MARKETPLACE_MAX_PACKAGE_BYTES",
                defaults.max_package_bytes,
            )?,
            max_page_bytes: config::var(
                "SANKALPA_MARKETPLACE_MAX_PAGE_BYTES",
                defaults.max_page_bytes,
            )?,
            max_versions_per_item: config::var(
                "SANKALPA_MARKETPLACE_MAX_VERSIONS_PER_ITEM",
                defaults.max_versions_per_item,
            )?,
            upstream_timeout: config::millis(
                "SANKALPA_MARKETPLACE_UPSTREAM_TIMEOUT_MS",
                defaults.upstream_timeout,
            )?,
            search_concurrency: config::var(
                "SANKALPA_MARKETPLACE_SEARCH_CONCURRENCY",
                defaults.search_concurrency,
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
            chains_url: "http://127.0.0.1:50053".to_owned(),
            agents_url: "http://127.0.0.1:50052".to_owned(),
            object_store_url: "./data/objects".to_owned(),
            max_package_bytes: 1024 * 1024,
            max_page_bytes: DEFAULT_MAX_PAGE_BYTES,
            max_versions_per_item: DEFAULT_MAX_VERSIONS_PER_ITEM,
            upstream_timeout: Duration::from_secs(10),
            search_concurrency: DEFAULT_SEARCH_CONCURRENCY,
        }
    }

    /// The defaults on free ports, in front of the given services, storing packages in
    /// `object_store_url`.
    pub fn for_tests(
        infra: Infra,
        auth_url: &str,
        chains_url: &str,
        agents_url: &str,
        object_store_url: &str,
    ) -> Self {
        Self {
            chains_url: chains_url.to_owned(),
            agents_url: agents_url.to_owned(),
            object_store_url: object_store_url.to_owned(),
            ..Self::defaults(infra, Listen::for_tests(), AuthSource::for_tests(auth_url))
        }
    }
}

/// What every request handler shares.
pub(crate) struct State {
    pub pool: PgPool,
    pub events: events::Events,
    pub packages: packages::Packages,
    pub owners: owners::Owners,
    pub max_package_bytes: usize,
    pub max_page_bytes: usize,
    pub max_versions_per_item: usize,
    /// Turns to run a text search, [`Config::search_concurrency`] of them.
    pub searches: Semaphore,
}

pub struct Marketplace {
    state: Arc<State>,
    skeleton: Skeleton,
}

impl Marketplace {
    pub async fn build(config: Config, pool: PgPool) -> anyhow::Result<Self> {
        let skeleton = Skeleton::start(
            &config.infra,
            &config.listen,
            &MIGRATOR,
            &pool,
            Keys::FromAuth(&config.auth),
        )
        .await?;
        let bus = EventBus::connect(
            skeleton.nats.clone(),
            &config.infra,
            "/sankalpa/marketplace",
        )
        .await?;
        let objects = Objects::from_url(&config.object_store_url)?.scoped("marketplace");
        let owners = owners::Owners::new(
            AuthServiceClient::new(sankalpa_kit::grpc::channel(&config.auth.url)?),
            &config.chains_url,
            &config.agents_url,
            config.upstream_timeout,
        )?;

        let outbox = Outbox::new("marketplace", bus, pool.clone());
        let state = Arc::new(State {
            pool,
            events: events::Events::new(outbox, "market"),
            packages: packages::Packages::new(objects),
            owners,
            max_package_bytes: config.max_package_bytes,
            max_page_bytes: config.max_page_bytes,
            max_versions_per_item: config.max_versions_per_item,
            searches: Semaphore::new(config.search_concurrency.get()),
        });
        Ok(Self { state, skeleton })
    }
}

impl Service for Marketplace {
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
        let Self { state, skeleton } = self;
        skeleton
            .tasks
            .spawn(state.events.relay(skeleton.stop.clone()));

        // tonic refuses requests over 4 MiB before they reach a handler, with no field named;
        // the package bound is the one a client meets, and the limit grows with it when it is
        // set higher.
        let largest_request = state
            .max_package_bytes
            .saturating_add(PUBLISH_HEADROOM_BYTES)
            .max(4 * 1024 * 1024);
        let api = MarketplaceServiceServer::new(grpc::MarketplaceApi::new(state.clone()))
            .max_decoding_message_size(largest_request);
        let readiness = skeleton.readiness(&state.pool);
        skeleton.serve_api(api, readiness, shutdown).await
    }
}
