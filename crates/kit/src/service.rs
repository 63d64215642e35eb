//! The skeleton every backend service stands on, so that auth, memory, agent-runner, the chain
//! orchestrator and the marketplace start, verify callers and stop the same way.
//!
//! [`Skeleton::start`] does, in this order, what each service needs before it can take a
//! request: installs the metrics recorder (what is registered before it is lost), migrates the
//! service's schema, loads the token keys and revocations (from auth, or from the service's own
//! signer for auth itself), connects to NATS and binds the gRPC and HTTP listeners (port 0
//! works, as in tests). [`Skeleton::serve`] keeps the keys current, serves the gRPC routes and
//! the operations endpoints until shutdown, then waits for every task spawned on
//! [`Skeleton::tasks`]. A service implements [`Service`] so that the test kit runs each the same
//! way.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sankalpa_proto::v1::auth_service_client::AuthServiceClient;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::server::NamedService;
use tonic::service::interceptor::InterceptedService;

use crate::auth::{AuthInterceptor, TokenVerifier};
use crate::config::{self, ConfigError, Infra};
use crate::ops::Readiness;
use crate::shutdown::Drain;

/// Where a service listens: `SANKALPA_<SERVICE>_GRPC_ADDR` and `SANKALPA_<SERVICE>_HTTP_ADDR`.
#[derive(Debug, Clone)]
pub struct Listen {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    /// How it leaves when asked to stop.
    pub drain: Drain,
}

impl Listen {
    /// `service` names the variables (`MEMORY` reads `SANKALPA_MEMORY_GRPC_ADDR`); the ports are
    /// the defaults, on every interface.
    pub fn from_env(service: &str, grpc_port: u16, http_port: u16) -> Result<Self, ConfigError> {
        let any = |port| SocketAddr::from(([0, 0, 0, 0], port));
        Ok(Self {
            grpc_addr: config::var(&format!("SANKALPA_{service}_GRPC_ADDR"), any(grpc_port))?,
            http_addr: config::var(&format!("SANKALPA_{service}_HTTP_ADDR"), any(http_port))?,
            drain: Drain::from_env()?,
        })
    }

    /// Free ports on the loopback.
    pub fn for_tests() -> Self {
        let free = SocketAddr::from(([127, 0, 0, 1], 0));
        Self {
            grpc_addr: free,
            http_addr: free,
            drain: Drain::immediate(),
        }
    }
}

/// How often token keys and revocations are fetched again by default.
const DEFAULT_JWKS_REFRESH: Duration = Duration::from_secs(60);

/// The auth service a service takes its token keys and revocations from (and, for some, more).
#[derive(Debug, Clone)]
pub struct AuthSource {
    /// Its gRPC endpoint (`SANKALPA_AUTH_URL`).
    pub url: String,
    /// How often the token keys and revocations are fetched again (`SANKALPA_JWKS_REFRESH_MS`);
    /// pushed revocations apply at once in between.
    pub jwks_refresh: Duration,
}

impl AuthSource {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            url: config::var("SANKALPA_AUTH_URL", "http://127.0.0.1:50051".to_owned())?,
            jwks_refresh: config::millis("SANKALPA_JWKS_REFRESH_MS", DEFAULT_JWKS_REFRESH)?,
        })
    }

    /// The auth at `url`, with the default refresh.
    pub fn for_tests(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            jwks_refresh: DEFAULT_JWKS_REFRESH,
        }
    }
}

/// Where a service's token keys come from.
pub enum Keys<'a> {
    /// Fetched from auth at start and every `jwks_refresh`, revocations followed on NATS.
    FromAuth(&'a AuthSource),
    /// The service's own (auth's signer): only the revocations other replicas push are followed.
    Own(Arc<TokenVerifier>),
}

/// A gRPC service behind the token check.
pub type Authenticated<S> = InterceptedService<S, AuthInterceptor>;

/// What [`Skeleton::start`] made ready; the service builds its state around it.
pub struct Skeleton {
    pub verifier: Arc<TokenVerifier>,
    pub nats: async_nats::Client,
    /// Every background task of the service: [`serve`](Self::serve) returns once all have
    /// ended, after `stop` is cancelled.
    pub tasks: TaskTracker,
    /// Cancelled when the service is asked to stop; background tasks watch it.
    pub stop: CancellationToken,
    /// Auth and how often to ask it again; `None` for auth itself.
    refresh_from: Option<(AuthServiceClient<crate::grpc::Peers>, Duration)>,
    subject_prefix: String,
    grpc_listener: TcpListener,
    http_listener: TcpListener,
    drain: Drain,
}

impl Skeleton {
    pub async fn start(
        infra: &Infra,
        listen: &Listen,
        migrator: &Migrator,
        pool: &PgPool,
        keys: Keys<'_>,
    ) -> anyhow::Result<Self> {
        crate::metrics::handle();
        migrator
            .run(pool)
            .await
            .with_context(|| format!("failed to migrate the schema of {}", migrator.table_name))?;
        let (verifier, refresh_from) = match keys {
            Keys::FromAuth(source) => {
                let (verifier, auth) = crate::auth::verifier_from_auth(infra, &source.url).await?;
                (verifier, Some((auth, source.jwks_refresh)))
            }
            Keys::Own(verifier) => (verifier, None),
        };
        let nats = crate::nats::connect(&infra.nats_url).await?;
        Ok(Self {
            verifier,
            nats,
            tasks: TaskTracker::new(),
            stop: CancellationToken::new(),
            refresh_from,
            subject_prefix: infra.subject_prefix.clone(),
            grpc_listener: crate::grpc::bind(listen.grpc_addr).await?,
            http_listener: crate::grpc::bind(listen.http_addr).await?,
            drain: listen.drain,
        })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Readiness on the service's Postgres and NATS (add Redis where an answer needs it).
    pub fn readiness(&self, pool: &PgPool) -> Readiness {
        Readiness {
            postgres: Some(pool.clone()),
            nats: Some(self.nats.clone()),
            ..Readiness::default()
        }
    }

    /// `api` behind the token check ([`AuthInterceptor`]), for a service that serves several
    /// APIs together through [`serve`](Self::serve).
    pub fn authenticated<S>(&self, api: S) -> Authenticated<S> {
        InterceptedService::new(api, AuthInterceptor::new(self.verifier.clone()))
    }

    /// Serves the gRPC service `api` behind the token check ([`AuthInterceptor`]), reported
    /// SERVING under its own name, as [`serve`](Self::serve) does.
    pub async fn serve_api<S>(
        self,
        api: S,
        readiness: Readiness,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()>
    where
        S: NamedService,
        Authenticated<S>: tower::Service<http::Request<tonic::body::Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        <Authenticated<S> as tower::Service<http::Request<tonic::body::Body>>>::Response:
            axum::response::IntoResponse,
        <Authenticated<S> as tower::Service<http::Request<tonic::body::Body>>>::Future:
            Send + 'static,
    {
        let api = self.authenticated(api);
        self.serve(
            tonic::service::Routes::new(api),
            &[S::NAME],
            readiness,
            shutdown,
        )
        .await
    }

    /// Serves `routes` (reported SERVING as `services`) and the operations endpoints until
    /// `shutdown` resolves, keeping the token keys current meanwhile; then cancels
    /// [`stop`](Self::stop) and waits for the servers to drain and every task to end.
    pub async fn serve(
        self,
        routes: tonic::service::Routes,
        services: &[&str],
        readiness: Readiness,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let keys = match self.refresh_from {
            Some((auth, every)) => futures::future::Either::Left(crate::auth::keep_current(
                self.verifier,
                auth,
                self.nats,
                self.subject_prefix,
                every,
                self.stop.clone(),
            )),
            None => futures::future::Either::Right(crate::auth::follow_revocations(
                self.verifier,
                self.nats,
                self.subject_prefix,
                self.stop.clone(),
            )),
        };
        self.tasks.spawn(keys);
        self.tasks.close();
        let served = crate::ops::serve_service(
            self.grpc_listener,
            routes,
            services,
            self.http_listener,
            readiness,
            self.drain,
            self.stop,
            shutdown,
        )
        .await;
        self.tasks.wait().await;
        served
    }
}

/// A built service, ready to serve: what `main` and the test kit run.
pub trait Service: Send + 'static {
    /// Where it serves gRPC, if it does (the gateway serves HTTP only).
    fn grpc_addr(&self) -> Option<SocketAddr>;
    /// Where it serves HTTP: the operations endpoints, or the gateway's API.
    fn http_addr(&self) -> SocketAddr;
    /// Serves until `shutdown` resolves, then drains and returns.
    fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// What a service's `main` ends with: says where `service` listens, then serves it until
/// SIGTERM or Ctrl-C.
pub async fn serve_until_signal(name: &str, service: impl Service) -> anyhow::Result<()> {
    match service.grpc_addr() {
        Some(grpc) => tracing::info!(%grpc, http = %service.http_addr(), "{name} listening"),
        None => tracing::info!(http = %service.http_addr(), "{name} listening"),
    }
    service.serve(crate::shutdown::signal()).await
}
