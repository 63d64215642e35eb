//! The auth service: tenants, users, roles and permissions, API keys, access and refresh
//! tokens, and the audit log. It owns the `auth` schema and serves `sankalpa.v1.AuthService`
//! over gRPC (50051), with health and metrics over HTTP (9101).
//!
//! [`Auth::build`] starts the kit's [`Skeleton`] (migrations, both listeners) and loads the
//! signing key; serving it ([`Service::serve`]) runs until its shutdown future resolves.

mod accounts;
mod api_keys;
mod audit;
mod error;
mod grpc;
mod input;
mod passwords;
mod revocations;
mod roles;
mod sessions;
mod tenants;
mod tokens;
mod users;

use std::borrow::Cow;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sankalpa_kit::auth::TokenVerifier;
use sankalpa_kit::config::{self, Infra};
use sankalpa_kit::ops::Readiness;
use sankalpa_kit::service::{Keys, Listen, Service, Skeleton};
use sankalpa_proto::v1::auth_service_server::AuthServiceServer;
use sqlx::PgPool;
use sqlx::migrate::Migrator;

/// The auth schema's migrations, tracked in `auth._sqlx_migrations`: every service migrates the
/// one shared database at its start, and a migrator refuses to run when its tracking table lists
/// versions it does not know (another service's), so each service keeps its own table.
pub static MIGRATOR: Migrator = Migrator {
    table_name: Cow::Borrowed("auth._sqlx_migrations"),
    create_schemas: Cow::Borrowed(&[Cow::Borrowed("auth")]),
    ..sqlx::migrate!("../../migrations/auth")
};

/// The operators' first admin, created on first start.
#[derive(Clone)]
pub struct BootstrapAdmin {
    pub email: String,
    pub password: String,
    pub tenant_name: String,
}

impl std::fmt::Debug for BootstrapAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootstrapAdmin")
            .field("email", &self.email)
            .field("tenant_name", &self.tenant_name)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub infra: Infra,
    pub listen: Listen,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub bootstrap_admin: Option<BootstrapAdmin>,
    /// Passwords hashed or checked at once (`SANKALPA_AUTH_HASH_CONCURRENCY`; by default what
    /// the cores and the container's memory limit allow, 19 MiB each).
    pub hash_concurrency: usize,
    /// How long a login waits for its turn to check a password before it is answered
    /// UNAVAILABLE (`SANKALPA_AUTH_HASH_QUEUE_TIMEOUT_MS`).
    pub hash_queue_timeout: Duration,
    /// The longest an API key may live (`SANKALPA_API_KEY_MAX_TTL_SECONDS`, 90 days): a key
    /// asked for without an expiry gets this one.
    pub api_key_max_ttl: Duration,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        let email = config::var("SANKALPA_BOOTSTRAP_ADMIN_EMAIL", String::new())?;
        let password = config::var("SANKALPA_BOOTSTRAP_ADMIN_PASSWORD", String::new())?;
        let bootstrap_admin = match (email.is_empty(), password.is_empty()) {
            (true, true) => None,
            (false, false) => Some(BootstrapAdmin {
                email,
                password,
                tenant_name: config::var("SANKALPA_BOOTSTRAP_TENANT", "platform".to_owned())?,
            }),
            _ => anyhow::bail!(
                "set both SANKALPA_BOOTSTRAP_ADMIN_EMAIL and SANKALPA_BOOTSTRAP_ADMIN_PASSWORD, or neither"
            ),
        };
        Ok(Self {
            infra: Infra::from_env()?,
            listen: Listen::from_env("AUTH", 50051, 9101)?,
            access_token_ttl: Duration::from_secs(config::var(
                "SANKALPA_ACCESS_TOKEN_TTL_SECONDS",
                900,
            )?),
            refresh_token_ttl: Duration::from_secs(config::var(
                "SANKALPA_REFRESH_TOKEN_TTL_SECONDS",
                30 * 24 * 3600,
            )?),
            bootstrap_admin,
            hash_concurrency: config::var(
                "SANKALPA_AUTH_HASH_CONCURRENCY",
                passwords::default_concurrency(),
            )?,
            hash_queue_timeout: config::millis(
                "SANKALPA_AUTH_HASH_QUEUE_TIMEOUT_MS",
                DEFAULT_HASH_QUEUE_TIMEOUT,
            )?,
            api_key_max_ttl: Duration::from_secs(config::var(
                "SANKALPA_API_KEY_MAX_TTL_SECONDS",
                DEFAULT_API_KEY_MAX_TTL.as_secs(),
            )?),
        })
    }

    /// Local defaults on free ports.
    pub fn for_tests(infra: Infra) -> Self {
        Self {
            infra,
            listen: Listen::for_tests(),
            access_token_ttl: Duration::from_secs(900),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            bootstrap_admin: None,
            hash_concurrency: passwords::default_concurrency(),
            hash_queue_timeout: DEFAULT_HASH_QUEUE_TIMEOUT,
            api_key_max_ttl: DEFAULT_API_KEY_MAX_TTL,
        }
    }
}

const DEFAULT_HASH_QUEUE_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_API_KEY_MAX_TTL: Duration = Duration::from_secs(90 * 24 * 3600);

/// What every request handler shares.
pub(crate) struct State {
    pub pool: PgPool,
    pub signer: tokens::Signer,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub api_key_max_ttl: Duration,
    pub hashing: passwords::Hashing,
    pub revocations: revocations::Announcer,
}

pub struct Auth {
    state: Arc<State>,
    skeleton: Skeleton,
}

impl Auth {
    pub async fn build(config: Config, pool: PgPool) -> anyhow::Result<Self> {
        // Auth verifies with its own signer's keys, loaded once the schema is migrated.
        let verifier = Arc::new(TokenVerifier::new(
            &config.infra.token_issuer,
            &config.infra.token_audience,
        ));
        let skeleton = Skeleton::start(
            &config.infra,
            &config.listen,
            &MIGRATOR,
            &pool,
            Keys::Own(verifier.clone()),
        )
        .await?;
        passwords::describe_metrics();
        let signer = tokens::Signer::load(
            &pool,
            &config.infra.token_issuer,
            &config.infra.token_audience,
        )
        .await
        .context("failed to load the signing key")?;
        verifier.set_jwks(signer.jwks_json())?;
        verifier.revoke_all(&revocations::in_force(&pool).await?);
        let nats = skeleton.nats.clone();
        let state = Arc::new(State {
            pool,
            signer,
            access_ttl: config.access_token_ttl,
            refresh_ttl: config.refresh_token_ttl,
            api_key_max_ttl: config.api_key_max_ttl,
            hashing: passwords::Hashing::new(config.hash_concurrency, config.hash_queue_timeout),
            revocations: revocations::Announcer {
                verifier: verifier.clone(),
                nats,
                subject_prefix: config.infra.subject_prefix.clone(),
                access_ttl: config.access_token_ttl,
            },
        });
        if let Some(admin) = &config.bootstrap_admin {
            let created = accounts::bootstrap_admin(
                &state,
                &admin.email,
                &admin.password,
                &admin.tenant_name,
            )
            .await
            .map_err(|err| anyhow::anyhow!("failed to create the bootstrap admin: {err}"))?;
            if created {
                tracing::info!(email = %admin.email, "created the bootstrap admin");
            }
        }
        Ok(Self { state, skeleton })
    }
}

impl Service for Auth {
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
        let api = AuthServiceServer::new(grpc::AuthApi::new(self.state.clone()));
        // NATS is left out: without it logins still work, only revocations reach other
        // services at their next key refresh rather than at once.
        let readiness = Readiness {
            postgres: Some(self.state.pool.clone()),
            ..Readiness::default()
        };
        self.skeleton.serve_api(api, readiness, shutdown).await
    }
}
