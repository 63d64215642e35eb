//! How a schedule's ticks authenticate to the chain orchestrator: a tick has no user behind it.
//!
//! When a schedule is created, the service asks auth, with the creator's own token, for an API
//! key of purpose `SCHEDULE` (no `keys:admin` needed, as for the orchestrator's chain-run keys)
//! holding what a run needs and the creator holds: `chains:execute`, `chains:read`, and the
//! step permissions the orchestrator hands its runs (`agents:read`, `agents:execute`,
//! `memory:read`, `memory:write`). auth narrows the key at every exchange to what its creator
//! still holds, so a schedule never does more than the person who made it. The key's secret is
//! kept in the schedule's row; a tick exchanges it for an access token, cached in memory per
//! schedule until shortly before it expires and never written down. Deleting the schedule
//! revokes the key (a key may always revoke itself).
//!
//! The key lives the longest auth allows (`SANKALPA_API_KEY_MAX_TTL_SECONDS`, 90 days by
//! default): auth caps every key, and a key that could renew itself would outlive the
//! revocation of what made it. A schedule shows when its key expires; an update with
//! `renew_credential` replaces it with a new one made with the updater's token. Ticks after the
//! expiry start nothing and say why in `last_error`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sankalpa_kit::auth::{Principal, with_bearer};
use sankalpa_kit::grpc::TracedChannel;
use sankalpa_kit::ttl_cache::TtlCache;
use sankalpa_proto::v1 as pb;
use sankalpa_proto::v1::auth_service_client::AuthServiceClient;
use tonic::Code;
use uuid::Uuid;

use crate::error::{Result, TriggersError};

pub type AuthClient = AuthServiceClient<TracedChannel>;

/// What a run started by a tick may need, granted only where the creator holds it too.
const RUN_PERMISSIONS: &[&str] = &[
    "chains:execute",
    "chains:read",
    "agents:read",
    "agents:execute",
    "memory:read",
    "memory:write",
];
/// A cached token is replaced this long before it expires, so no tick starts with one that
/// dies on the way.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);
const AUTH_TIMEOUT: Duration = Duration::from_secs(5);
/// Schedules whose access token a replica caches at once.
const TOKENS_CAPACITY: usize = 10_000;

/// A key made for a schedule.
pub struct Issued {
    pub key_id: String,
    pub secret: String,
    pub expires_at: DateTime<Utc>,
}

pub struct Credentials {
    auth: AuthClient,
    tokens: TtlCache<Uuid, String>,
}

impl Credentials {
    pub fn new(auth: AuthClient) -> Self {
        Self {
            auth,
            tokens: TtlCache::new(TOKENS_CAPACITY),
        }
    }

    /// Makes the key of `what` (`schedule` or `trigger`) `id` with its creator's token, named
    /// after it; the creator must hold `chains:execute`.
    pub async fn issue(
        &self,
        caller_token: &str,
        caller: &Principal,
        what: &str,
        id: Uuid,
    ) -> Result<Issued> {
        if !caller.can("chains:execute") {
            return Err(TriggersError::Forbidden("chains:execute".to_owned()));
        }
        let permissions: Vec<String> = RUN_PERMISSIONS
            .iter()
            .filter(|permission| caller.can(permission))
            .map(|permission| (*permission).to_owned())
            .collect();
        let mut request = with_bearer(
            pb::CreateApiKeyRequest {
                name: format!("{what} {id}"),
                permissions,
                // The longest auth allows.
                expires_in_seconds: 0,
                purpose: pb::ApiKeyPurpose::Schedule.into(),
            },
            caller_token,
        )
        .map_err(|status| TriggersError::Precondition(status.message().to_owned()))?;
        request.set_timeout(AUTH_TIMEOUT);
        let created = self
            .auth
            .clone()
            .create_api_key(request)
            .await
            .map_err(|status| match status.code() {
                Code::PermissionDenied => TriggersError::Forbidden(status.message().to_owned()),
                _ => TriggersError::Unavailable(format!(
                    "could not get a credential for the schedule from auth: {}",
                    status.message()
                )),
            })?
            .into_inner();
        let key = created
            .key
            .ok_or_else(|| anyhow::anyhow!("auth created a key without describing it"))?;
        let expires_at = key
            .expires_at
            .and_then(|at| DateTime::from_timestamp(at.seconds, u32::try_from(at.nanos).ok()?))
            .ok_or_else(|| anyhow::anyhow!("auth created a key without an expiry"))?;
        Ok(Issued {
            key_id: key.id,
            secret: created.secret,
            expires_at,
        })
    }

    /// A live access token of schedule `id`, whose key's secret is `secret`.
    pub async fn token(&self, id: Uuid, secret: &str) -> Result<String> {
        if let Some(token) = self.tokens.get(&id) {
            return Ok(token);
        }
        let (token, expires_in) = self.exchange(secret).await?;
        self.tokens.insert(
            id,
            token.clone(),
            Duration::from_secs(expires_in).saturating_sub(REFRESH_MARGIN),
        );
        Ok(token)
    }

    /// An access token for the key `secret` and how many seconds it lives.
    async fn exchange(&self, secret: &str) -> Result<(String, u64)> {
        let mut request = tonic::Request::new(pb::ExchangeApiKeyRequest {
            api_key: secret.to_owned(),
        });
        request.set_timeout(AUTH_TIMEOUT);
        let exchanged = self
            .auth
            .clone()
            .exchange_api_key(request)
            .await
            .map_err(|status| match status.code() {
                Code::Unauthenticated => TriggersError::Precondition(format!(
                    "auth no longer accepts the schedule's credential ({}); renew it",
                    status.message()
                )),
                _ => TriggersError::Unavailable(format!(
                    "auth did not exchange the schedule's credential: {}",
                    status.message()
                )),
            })?
            .into_inner();
        Ok((exchanged.access_token, exchanged.expires_in))
    }

    /// Revokes schedule `id`'s key with its own token, and forgets the token. Best effort: a key
    /// auth no longer takes is done, and any key expires on its own.
    pub async fn revoke(&self, id: Uuid, key_id: &str, secret: &str) {
        // The cached token may be another key's of the schedule (one being replaced).
        self.tokens.remove(&id);
        let token = match self.exchange(secret).await {
            Ok((token, _)) => token,
            Err(TriggersError::Precondition(_)) => return,
            Err(err) => {
                tracing::warn!(schedule = %id, error = %err, "could not revoke a schedule's key");
                return;
            }
        };
        let Ok(mut request) = with_bearer(
            pb::RevokeApiKeyRequest {
                id: key_id.to_owned(),
            },
            &token,
        ) else {
            return;
        };
        request.set_timeout(AUTH_TIMEOUT);
        if let Err(status) = self.auth.clone().revoke_api_key(request).await
            && !matches!(status.code(), Code::NotFound | Code::Unauthenticated)
        {
            tracing::warn!(schedule = %id, error = %status.message(), "could not revoke a schedule's key");
        }
    }
}
