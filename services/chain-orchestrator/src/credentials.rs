//! How a run authenticates to agent-runner on its tenant's behalf.
//!
//! A run can outlive the caller's access token (15 minutes) and the orchestrator that started it,
//! and the orchestrator holds no signing key. So at execute time, with the caller's own token,
//! the orchestrator asks auth for a chain run's API key of the caller's tenant (`CreateApiKey`
//! with the purpose `CHAIN_RUN`, named `chain-run <run id>`; no `keys:admin` needed, and a
//! caller that is itself an API key may make one, which then ends with that key), holding only
//! what steps need and the caller has: `agents:read`,
//! `agents:execute`, `memory:read`, `memory:write`. auth refuses a key wider than its creator, so
//! a run can never do more than the person who started it. The key expires after
//! `SANKALPA_CHAINS_CREDENTIAL_TTL_SECONDS` (default 24 h) plus the timeouts of the run's
//! approval steps (at most 90 days) whatever happens.
//!
//! The key's secret is kept in `chains.run_credentials` while the run is unfinished (any replica
//! that resumes the run needs it), deleted in the transaction that ends the run, and the key is
//! then revoked. A child run of a chain step has no key of its own: it uses its top run's, which
//! its parent keeps alive while it waits for the child. Access tokens are obtained with `ExchangeApiKey` when a step needs one and cached
//! in memory until shortly before they expire; they are never written down.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sankalpa_kit::auth::{Principal, with_bearer};
use sankalpa_kit::grpc::TracedChannel;
use sankalpa_kit::ttl_cache::TtlCache;
use sankalpa_proto::v1 as pb;
use sankalpa_proto::v1::auth_service_client::AuthServiceClient;
use tonic::Code;
use uuid::Uuid;

use crate::error::{ChainError, Result};

pub type AuthClient = AuthServiceClient<TracedChannel>;

/// What a run's steps may need, granted only where the caller holds it too.
const STEP_PERMISSIONS: &[&str] = &[
    "agents:read",
    "agents:execute",
    "memory:read",
    "memory:write",
];
/// A cached token is replaced this long before it expires, so no step starts with one that dies
/// on the way.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);
const AUTH_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest lifetime auth gives an API key by default (`SANKALPA_API_KEY_MAX_TTL_SECONDS`).
const MAX_LIFETIME: Duration = Duration::from_secs(90 * 24 * 3600);

/// How long a run's key lives: `ttl`, plus the longest its approval steps may keep it waiting,
/// so that steps after a long wait still have a credential; at most [`MAX_LIFETIME`].
pub fn lifetime(ttl: Duration, definition: &crate::definition::Definition) -> Duration {
    let waits: u64 = definition
        .steps
        .iter()
        .filter_map(|step| step.approval())
        .map(|approval| approval.timeout_ms)
        .sum();
    (ttl + Duration::from_millis(waits)).min(MAX_LIFETIME)
}

pub struct Issued {
    pub key_id: String,
    pub secret: String,
    pub expires_at: DateTime<Utc>,
}

/// Creates the run's API key with the caller's token.
pub async fn issue(
    auth: &AuthClient,
    caller_token: &str,
    caller: &Principal,
    run_id: Uuid,
    ttl: Duration,
) -> Result<Issued> {
    caller
        .require("agents:execute")
        .map_err(|_| ChainError::Forbidden("agents:execute".to_owned()))?;
    let permissions = STEP_PERMISSIONS
        .iter()
        .filter(|permission| caller.can(permission))
        .map(|permission| (*permission).to_owned())
        .collect();
    let mut request = with_bearer(
        pb::CreateApiKeyRequest {
            name: format!("chain-run {run_id}"),
            permissions,
            expires_in_seconds: ttl.as_secs(),
            purpose: pb::ApiKeyPurpose::ChainRun.into(),
        },
        caller_token,
    )
    .map_err(|status| ChainError::Precondition(status.message().to_owned()))?;
    request.set_timeout(AUTH_TIMEOUT);
    let created = auth
        .clone()
        .create_api_key(request)
        .await
        .map_err(|status| match status.code() {
            Code::PermissionDenied => ChainError::Forbidden(status.message().to_owned()),
            _ => ChainError::Unavailable(format!(
                "could not get a credential for the run from auth: {}",
                status.message()
            )),
        })?
        .into_inner();
    let key = created
        .key
        .ok_or_else(|| anyhow::anyhow!("auth created a key without describing it"))?;
    Ok(Issued {
        key_id: key.id,
        secret: created.secret,
        expires_at: Utc::now()
            + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::days(1)),
    })
}

/// Revokes a key issued for a run that was then not accepted (refused at its quota, or a
/// repeat of another request), with the caller's token. Best effort: the key expires anyway.
pub async fn revoke_unused(auth: &AuthClient, caller_token: &str, issued: Issued) {
    let Ok(mut request) = with_bearer(
        pb::RevokeApiKeyRequest {
            id: issued.key_id.clone(),
        },
        caller_token,
    ) else {
        return;
    };
    request.set_timeout(AUTH_TIMEOUT);
    if let Err(status) = auth.clone().revoke_api_key(request).await {
        tracing::warn!(key = %issued.key_id, error = %status.message(),
            "could not revoke the key of a run that was not accepted");
    }
}

pub async fn store(tx: &mut sqlx::PgConnection, run_id: Uuid, issued: &Issued) -> Result<()> {
    sqlx::query(
        "INSERT INTO chains.run_credentials (run_id, key_id, secret, expires_at)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(run_id)
    .bind(&issued.key_id)
    .bind(&issued.secret)
    .bind(issued.expires_at)
    .execute(tx)
    .await?;
    Ok(())
}

/// Access tokens of the runs this replica executes, obtained on demand.
pub struct Tokens {
    auth: AuthClient,
    cached: TtlCache<Uuid, String>,
}

/// Far more runs than a replica drives at once; a run another replica took over is forgotten
/// when its token expires.
const TOKENS_CAPACITY: usize = 10_000;

impl Tokens {
    pub fn new(auth: AuthClient) -> Self {
        Self {
            auth,
            cached: TtlCache::new(TOKENS_CAPACITY),
        }
    }

    /// A live access token for the run's steps.
    pub async fn token(&self, pool: &sqlx::PgPool, run_id: Uuid) -> Result<String> {
        if let Some(token) = self.cached.get(&run_id) {
            return Ok(token);
        }
        let secret: Option<String> =
            // A child run (engine/subchains.rs) uses the credential of the run at the top of its family.
            sqlx::query_scalar(
                "SELECT c.secret FROM chains.chain_runs r
                 JOIN chains.run_credentials c ON c.run_id = coalesce(r.credential_run_id, r.id)
                 WHERE r.id = $1",
            )
            .bind(run_id)
            .fetch_optional(pool)
            .await?;
        let secret = secret.ok_or(ChainError::Precondition(
            "the run has no credential left".to_owned(),
        ))?;
        let mut request = tonic::Request::new(pb::ExchangeApiKeyRequest { api_key: secret });
        request.set_timeout(AUTH_TIMEOUT);
        let exchanged = self
            .auth
            .clone()
            .exchange_api_key(request)
            .await
            .map_err(|status| {
                ChainError::Unavailable(format!(
                    "auth did not exchange the run's credential: {}",
                    status.message()
                ))
            })?
            .into_inner();
        let lifetime = Duration::from_secs(exchanged.expires_in).saturating_sub(REFRESH_MARGIN);
        self.cached
            .insert(run_id, exchanged.access_token.clone(), lifetime);
        Ok(exchanged.access_token)
    }

    /// Revokes a finished run's key (its secret row is already gone) and forgets its token.
    /// Best effort: the key expires on its own anyway.
    pub async fn retire(&self, run_id: Uuid, key_id: Option<String>) {
        let (Some(token), Some(key_id)) = (self.cached.remove(&run_id), key_id) else {
            return;
        };
        let Ok(mut request) = with_bearer(pb::RevokeApiKeyRequest { id: key_id }, &token) else {
            return;
        };
        request.set_timeout(AUTH_TIMEOUT);
        if let Err(status) = self.auth.clone().revoke_api_key(request).await {
            tracing::warn!(%run_id, error = %status.message(), "could not revoke a finished run's key");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runs_key_outlives_the_longest_wait_its_approvals_allow() {
        let day = Duration::from_secs(24 * 3600);
        let definition = crate::definition::parse(
            r#"{"steps": [
                {"id": "a", "approval": {"prompt": "1?", "approvers": ["role:admin"], "timeout_ms": 604800000}},
                {"id": "b", "agent": "hello_world", "needs": ["a"]},
                {"id": "c", "approval": {"prompt": "2?", "approvers": ["role:admin"]}, "needs": ["b"]}
            ]}"#,
        )
        .expect("a valid definition");
        assert_eq!(
            lifetime(day, &definition),
            day + Duration::from_secs(7 * 24 * 3600) + Duration::from_secs(3600)
        );
        let plain = crate::definition::parse(r#"{"agents": ["hello_world"]}"#).unwrap();
        assert_eq!(lifetime(day, &plain), day);
        assert_eq!(lifetime(MAX_LIFETIME, &definition), MAX_LIFETIME);
    }
}
