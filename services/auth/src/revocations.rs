//! Ending access tokens before they expire: a logout ends its session's, deleting a user or
//! changing their roles ends every token the user holds (and those minted from their API keys),
//! revoking an API key ends the tokens minted from it.
//!
//! A revocation is recorded in the transaction of the change that calls for it, then announced:
//! applied to this replica's verifier and pushed on core NATS to every other verifier (gateways,
//! services, other auth replicas), which refuse the tokens within moments. A push that is lost
//! (NATS down) is made good by the list verifiers fetch with the token keys
//! (`SANKALPA_JWKS_REFRESH_MS`, a minute by default). A revocation is kept only as long as a
//! token it concerns could still be valid.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sankalpa_kit::auth::TokenVerifier;
use sankalpa_proto::v1::Revocation;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::Result;

/// Past a token's `exp`, verifiers still accept it for their leeway (5 s); a revocation outlives
/// that with room to spare.
const PAST_EXPIRY: Duration = Duration::from_secs(60);

/// Where revocations go once committed.
pub struct Announcer {
    pub verifier: Arc<TokenVerifier>,
    pub nats: async_nats::Client,
    pub subject_prefix: String,
    /// The access tokens' lifetime: how long a revocation must be kept.
    pub access_ttl: Duration,
}

impl Announcer {
    /// Tokens of `subject` (a user or API key id) issued until now.
    pub fn subject(&self, subject: impl Into<String>) -> Revocation {
        let now = Utc::now();
        Revocation {
            subject: subject.into(),
            session: String::new(),
            not_before_ms: now.timestamp_millis(),
            expires_at_ms: self.expiry(now),
        }
    }

    /// Tokens of the login session `session` (its refresh-token family).
    pub fn session(&self, session: Uuid) -> Revocation {
        let now = Utc::now();
        Revocation {
            subject: String::new(),
            session: session.to_string(),
            not_before_ms: now.timestamp_millis(),
            expires_at_ms: self.expiry(now),
        }
    }

    fn expiry(&self, now: DateTime<Utc>) -> i64 {
        let kept = chrono::Duration::from_std(self.access_ttl + PAST_EXPIRY)
            .unwrap_or(chrono::Duration::days(1));
        (now + kept).timestamp_millis()
    }

    /// Applies committed revocations here and pushes them to every other verifier.
    pub async fn announce(&self, list: &[Revocation]) {
        if list.is_empty() {
            return;
        }
        self.verifier.revoke_all(list);
        for revocation in list {
            if let Err(err) =
                sankalpa_kit::auth::push_revocation(&self.nats, &self.subject_prefix, revocation)
                    .await
            {
                tracing::warn!(error = %err,
                    "could not push a revocation; verifiers will fetch it at their next refresh");
            }
        }
    }
}

/// How often rows no token can still need are deleted, at most: they are harmless meanwhile,
/// and a sweep per revocation was a statement per revoked run key.
const SWEEP_EVERY_SECONDS: i64 = 60;
/// When this process last swept, in unix seconds.
static LAST_SWEEP: AtomicI64 = AtomicI64::new(0);

/// Records `list` through `tx`, the transaction of the change that calls for them; announce
/// them once it has committed. Rows no token can still need are deleted on the way, once a
/// [`SWEEP_EVERY_SECONDS`] per process.
pub async fn record(tx: &mut PgConnection, list: &[Revocation]) -> Result<()> {
    if list.is_empty() {
        return Ok(());
    }
    let now = Utc::now().timestamp();
    let last = LAST_SWEEP.load(Ordering::Relaxed);
    if now - last >= SWEEP_EVERY_SECONDS
        && LAST_SWEEP
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        sqlx::query("DELETE FROM auth.revocations WHERE expires_at < now()")
            .execute(&mut *tx)
            .await?;
    }
    let subjects: Vec<&str> = list.iter().map(|r| r.subject.as_str()).collect();
    let sessions: Vec<&str> = list.iter().map(|r| r.session.as_str()).collect();
    let not_before: Vec<DateTime<Utc>> = list.iter().map(|r| at(r.not_before_ms)).collect();
    let expires_at: Vec<DateTime<Utc>> = list.iter().map(|r| at(r.expires_at_ms)).collect();
    sqlx::query(
        "INSERT INTO auth.revocations (subject, session, not_before, expires_at)
         SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[])",
    )
    .bind(subjects)
    .bind(sessions)
    .bind(not_before)
    .bind(expires_at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Every revocation that may still concern an unexpired token.
pub async fn in_force(db: impl sqlx::PgExecutor<'_>) -> Result<Vec<Revocation>> {
    let rows: Vec<(String, String, DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT subject, session, not_before, expires_at FROM auth.revocations
         WHERE expires_at > now()",
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(subject, session, not_before, expires_at)| Revocation {
            subject,
            session,
            not_before_ms: not_before.timestamp_millis(),
            expires_at_ms: expires_at.timestamp_millis(),
        })
        .collect())
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_else(Utc::now)
}
