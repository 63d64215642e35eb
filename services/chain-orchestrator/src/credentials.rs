//! How a run authenticates to agent-runner on its tenant's behalf.
//!
//! A run can outlive the caller's access token (15 minutes) and the orchestrator that started it,
//! and the orchestrator holds no signing key. So at execute time, with the caller's own token,
//! the orchestrator asks auth for a chain run's API key of the caller's tenant (`CreateApiKey`
//! with the purpose `CHAIN_RUN`; no `keys:admin` needed, and a caller that is itself an API key
//! may make one, which then ends with that key), holding only what steps need and the caller
//! has: `agents:read`, `agents:execute`, `memory:read`, `memory:write`. auth refuses a key wider
//! than its creator and narrows it at every exchange to what its creator holds then, so a run can
//! never do more than the person who started it.
//!
//! One key serves many runs: a replica gives the runs of the same caller (tenant, kind and
//! subject of the token) with the same permissions the key it made for the first of them, for
//! `SANKALPA_CHAINS_CREDENTIAL_SHARE_SECONDS` (5 minutes) after making it, as long as the key
//! outlives the new run's needs. Making a key, exchanging it and revoking it cost auth about a
//! dozen statements; once per run, that was a third of a burst's statements. A key lives
//! `SANKALPA_CHAINS_CREDENTIAL_TTL_SECONDS` (24 h) plus the timeouts of the run's approval
//! steps (at most 90 days) plus the sharing time, whatever happens.
//!
//! The key's secret is kept in `chains.credentials`, which runs name (`credential_id`; a child
//! run of a chain step names its top run's). Every `SANKALPA_CHAINS_CREDENTIAL_SWEEP_MS` (10 s),
//! each replica revokes and deletes the credentials whose sharing time ended more than
//! `SANKALPA_CHAINS_CREDENTIAL_GRACE_SECONDS` (60 s) ago and that no unfinished run names — the
//! grace covers a submission that took the credential just before its sharing ended and
//! commits its run a little later — and deletes the expired ones. So a key outlives its last
//! run by at most the sharing time, the grace and a sweep. Access tokens are obtained with
//! `ExchangeApiKey` when a step needs one and cached in memory per credential until shortly
//! before they expire; they are never written down.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sankalpa_kit::auth::{Principal, with_bearer};
use sankalpa_kit::grpc::TracedChannel;
use sankalpa_kit::ttl_cache::TtlCache;
use sankalpa_proto::v1 as pb;
use sankalpa_proto::v1::auth_service_client::AuthServiceClient;
use sqlx::PgPool;
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

/// Credentials retired per sweep statement: each is a revocation in auth, so a batch stays short.
const SWEEP_BATCH: i64 = 100;

/// Callers whose shared credential a replica remembers at once; beyond it, those whose sharing
/// time is over are forgotten.
const MAX_HOLDERS: usize = 10_000;
/// Far more credentials than a replica's runs use at once.
const TOKENS_CAPACITY: usize = 10_000;

/// How long a run's key must live: `ttl`, plus the longest its approval steps may keep it
/// waiting, so that steps after a long wait still have a credential; at most [`MAX_LIFETIME`].
pub fn lifetime(ttl: Duration, definition: &crate::definition::Definition) -> Duration {
    let waits: u64 = definition
        .steps
        .iter()
        .filter_map(|step| step.approval())
        .map(|approval| approval.timeout_ms)
        .sum();
    (ttl + Duration::from_millis(waits)).min(MAX_LIFETIME)
}

/// Whose runs may share a credential: the same caller, asking for the same permissions.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Holder {
    tenant: Uuid,
    kind: String,
    subject: String,
    permissions: Vec<String>,
}

/// The credential a holder's new runs take while `shared_until` has not passed.
#[derive(Debug, Clone, Copy)]
struct Shared {
    id: Uuid,
    expires_at: DateTime<Utc>,
    shared_until: DateTime<Utc>,
}

impl Shared {
    fn serves(&self, now: DateTime<Utc>, lifetime: Duration) -> bool {
        self.shared_until > now && self.expires_at >= now + to_chrono(lifetime)
    }
}

type Slot = Arc<tokio::sync::Mutex<Option<Shared>>>;

/// The credentials this replica hands to runs, and the access tokens of those its runs use.
pub struct Credentials {
    auth: AuthClient,
    share_for: Duration,
    /// One slot per holder: its lock makes the holder's concurrent first runs wait for one key
    /// rather than each make their own.
    holders: Mutex<HashMap<Holder, Slot>>,
    tokens: TtlCache<Uuid, String>,
    /// Credentials auth refused since this replica shared them: no new run is given one.
    refused: TtlCache<Uuid, ()>,
}

impl Credentials {
    pub fn new(auth: AuthClient, share_for: Duration) -> Self {
        Self {
            auth,
            share_for,
            holders: Mutex::new(HashMap::new()),
            tokens: TtlCache::new(TOKENS_CAPACITY),
            refused: TtlCache::new(TOKENS_CAPACITY),
        }
    }

    /// Says that a service refused credential `id`'s token as unauthenticated, or auth the
    /// credential itself (its key revoked, by a person through `/api/keys` or with its maker):
    /// its token is forgotten, and the caller's next run gets a new key rather than this one,
    /// for as long as it would have been shared.
    pub fn refused(&self, id: Option<Uuid>) {
        let Some(id) = id else { return };
        self.tokens.remove(&id);
        self.refused.insert(id, (), self.share_for);
    }

    /// The credential a new run of `caller` takes: the one shared by the caller's runs, or a new
    /// key made with the caller's token when none serves a run that must be able to call for
    /// `lifetime`.
    pub async fn for_run(
        &self,
        pool: &PgPool,
        caller_token: &str,
        caller: &Principal,
        tenant: Uuid,
        lifetime: Duration,
    ) -> Result<Uuid> {
        caller
            .require("agents:execute")
            .map_err(|_| ChainError::Forbidden("agents:execute".to_owned()))?;
        let holder = Holder {
            tenant,
            kind: caller.kind.clone(),
            subject: caller.subject.clone(),
            permissions: STEP_PERMISSIONS
                .iter()
                .filter(|permission| caller.can(permission))
                .map(|permission| (*permission).to_owned())
                .collect(),
        };
        let slot = self.slot(&holder);
        let mut shared = slot.lock().await;
        if let Some(current) = *shared
            && current.serves(Utc::now(), lifetime)
            && self.refused.get(&current.id).is_none()
        {
            return Ok(current.id);
        }
        let id = Uuid::now_v7();
        let key_lifetime = (lifetime + self.share_for).min(MAX_LIFETIME);
        let issued = self
            .issue(caller_token, &holder.permissions, id, key_lifetime)
            .await?;
        let shared_until = Utc::now() + to_chrono(self.share_for);
        let stored = sqlx::query(
            "INSERT INTO chains.credentials
                 (id, tenant_id, key_id, secret, expires_at, shared_until)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(tenant)
        .bind(&issued.key_id)
        .bind(&issued.secret)
        .bind(issued.expires_at)
        .bind(shared_until)
        .execute(pool)
        .await;
        if let Err(err) = stored {
            self.revoke_with(caller_token, &issued.key_id).await;
            return Err(err.into());
        }
        metrics::counter!("chains_credentials_issued_total").increment(1);
        *shared = Some(Shared {
            id,
            expires_at: issued.expires_at,
            shared_until,
        });
        Ok(id)
    }

    fn slot(&self, holder: &Holder) -> Slot {
        let mut holders = self.holders.lock().expect("holders poisoned");
        if let Some(slot) = holders.get(holder) {
            return slot.clone();
        }
        if holders.len() >= MAX_HOLDERS {
            let now = Utc::now();
            holders.retain(|_, slot| match slot.try_lock() {
                Ok(shared) => shared.is_some_and(|shared| shared.shared_until > now),
                Err(_) => true,
            });
        }
        holders.entry(holder.clone()).or_default().clone()
    }

    async fn issue(
        &self,
        caller_token: &str,
        permissions: &[String],
        id: Uuid,
        lifetime: Duration,
    ) -> Result<Issued> {
        let mut request = with_bearer(
            pb::CreateApiKeyRequest {
                name: format!("chain runs {id}"),
                permissions: permissions.to_vec(),
                expires_in_seconds: lifetime.as_secs(),
                purpose: pb::ApiKeyPurpose::ChainRun.into(),
            },
            caller_token,
        )
        .map_err(|status| ChainError::Precondition(status.message().to_owned()))?;
        request.set_timeout(AUTH_TIMEOUT);
        let created = self
            .auth
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
        // auth may cut the lifetime asked for (a key made by a key ends with it).
        let asked = Utc::now() + to_chrono(lifetime);
        let expires_at = key
            .expires_at
            .and_then(|at| DateTime::from_timestamp(at.seconds, u32::try_from(at.nanos).ok()?))
            .map_or(asked, |at| at.min(asked));
        Ok(Issued {
            key_id: key.id,
            secret: created.secret,
            expires_at,
        })
    }

    /// A live access token for the runs that call with credential `id` (a run's
    /// `credential_id`; None for a run that has none).
    pub async fn token(&self, pool: &PgPool, id: Option<Uuid>) -> Result<String> {
        let id = id.ok_or(ChainError::Precondition(
            "the run has no credential left".to_owned(),
        ))?;
        if let Some(token) = self.tokens.get(&id) {
            return Ok(token);
        }
        let secret: Option<String> =
            sqlx::query_scalar("SELECT secret FROM chains.credentials WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?;
        let secret = secret.ok_or(ChainError::Precondition(
            "the run has no credential left".to_owned(),
        ))?;
        self.exchange(id, secret).await
    }

    async fn exchange(&self, id: Uuid, secret: String) -> Result<String> {
        let mut request = tonic::Request::new(pb::ExchangeApiKeyRequest { api_key: secret });
        request.set_timeout(AUTH_TIMEOUT);
        let exchanged = self
            .auth
            .clone()
            .exchange_api_key(request)
            .await
            .map_err(|status| match status.code() {
                Code::Unauthenticated => ChainError::Precondition(format!(
                    "auth no longer accepts the run's credential: {}",
                    status.message()
                )),
                _ => ChainError::Unavailable(format!(
                    "auth did not exchange the run's credential: {}",
                    status.message()
                )),
            })?
            .into_inner();
        let lifetime = Duration::from_secs(exchanged.expires_in).saturating_sub(REFRESH_MARGIN);
        self.tokens
            .insert(id, exchanged.access_token.clone(), lifetime);
        Ok(exchanged.access_token)
    }

    /// Revokes a key with a token that may do so (its maker's, or its own). Best effort: the
    /// key expires on its own anyway.
    async fn revoke_with(&self, token: &str, key_id: &str) -> bool {
        let Ok(mut request) = with_bearer(
            pb::RevokeApiKeyRequest {
                id: key_id.to_owned(),
            },
            token,
        ) else {
            return false;
        };
        request.set_timeout(AUTH_TIMEOUT);
        match self.auth.clone().revoke_api_key(request).await {
            Ok(_) => true,
            // Already revoked, or its maker gone: nothing left to do.
            Err(status) if matches!(status.code(), Code::NotFound | Code::Unauthenticated) => true,
            Err(status) => {
                tracing::warn!(key = %key_id, error = %status.message(), "could not revoke a run credential");
                false
            }
        }
    }

    /// Revokes and deletes up to [`SWEEP_BATCH`] credentials no run needs; how many it retired.
    /// They are locked `FOR UPDATE SKIP LOCKED`, so replicas sweep side by side, and whether an
    /// unfinished run names one is asked after the lock is held. A credential auth could not be
    /// asked to revoke is kept for the next sweep.
    async fn sweep_batch(&self, pool: &PgPool, grace: Duration) -> Result<u64> {
        let mut tx = pool.begin().await?;
        let candidates: Vec<(Uuid, String, String, bool)> = sqlx::query_as(
            "SELECT c.id, c.key_id, c.secret, c.expires_at <= now() FROM chains.credentials c
             WHERE c.shared_until < now() - make_interval(secs => $1::double precision)
               AND NOT EXISTS (
                   SELECT 1 FROM chains.chain_runs r
                   WHERE r.credential_id = c.id AND r.status IN ('pending', 'running', 'waiting'))
             ORDER BY c.shared_until
             LIMIT $2
             FOR UPDATE SKIP LOCKED",
        )
        .bind(grace.as_secs_f64())
        .bind(SWEEP_BATCH)
        .fetch_all(&mut *tx)
        .await?;
        if candidates.is_empty() {
            return Ok(0);
        }
        // Asked again now that they are locked: a run committed since the look above counts.
        let ids: Vec<Uuid> = candidates.iter().map(|(id, ..)| *id).collect();
        let in_use: Vec<Uuid> = sqlx::query_scalar(
            "SELECT DISTINCT credential_id FROM chains.chain_runs
             WHERE credential_id = ANY($1) AND status IN ('pending', 'running', 'waiting')",
        )
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        let mut retired = Vec::new();
        for (id, key_id, secret, expired) in candidates {
            if in_use.contains(&id) {
                continue;
            }
            if expired || self.revoke_own(id, &key_id, secret).await {
                retired.push(id);
            } else {
                // auth is not answering: the others wait for the next sweep too.
                break;
            }
        }
        sqlx::query("DELETE FROM chains.credentials WHERE id = ANY($1)")
            .bind(&retired)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        let count = retired.len() as u64;
        metrics::counter!("chains_credentials_retired_total").increment(count);
        Ok(count)
    }

    /// A key revokes itself: the orchestrator holds no `keys:admin`.
    async fn revoke_own(&self, id: Uuid, key_id: &str, secret: String) -> bool {
        let token = match self.tokens.remove(&id) {
            Some(token) => token,
            None => match self.exchange(id, secret).await {
                Ok(token) => {
                    self.tokens.remove(&id);
                    token
                }
                // auth no longer takes the key (revoked with its maker): it is done.
                Err(ChainError::Precondition(_)) => return true,
                Err(_) => return false,
            },
        };
        self.revoke_with(&token, key_id).await
    }
}

struct Issued {
    key_id: String,
    secret: String,
    expires_at: DateTime<Utc>,
}

fn to_chrono(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

/// Retires the credentials no run needs, every `Config::credential_sweep_interval` until the
/// service stops.
pub(crate) async fn sweep(state: Arc<crate::State>) {
    let every = state.config.credential_sweep_interval;
    let mut rounds = tokio::time::interval(every.max(Duration::from_millis(1)));
    rounds.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = state.stop.cancelled() => return,
            _ = rounds.tick() => {}
        }
        loop {
            let retired = state
                .credentials
                .sweep_batch(&state.pool, state.config.credential_grace)
                .await;
            match retired {
                Ok(retired) if retired < SWEEP_BATCH as u64 || state.stop.is_cancelled() => break,
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(error = %err, "could not retire run credentials");
                    break;
                }
            }
        }
    }
}

pub fn describe_metrics() {
    metrics::describe_counter!(
        "chains_credentials_issued_total",
        "API keys made for callers' runs (one serves a caller's runs for the sharing time)."
    );
    metrics::describe_counter!(
        "chains_credentials_retired_total",
        "Run credentials revoked and deleted once no run needed them."
    );
    metrics::counter!("chains_credentials_issued_total").increment(0);
    metrics::counter!("chains_credentials_retired_total").increment(0);
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
