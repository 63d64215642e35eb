//! API keys: long-lived credentials for tools, scoped to a tenant and a permission set.
//!
//! A key is `sk_` and 32 random bytes; only its SHA-256 is stored, so a leaked database does not
//! leak usable keys. Services never see keys: the gateway trades one for a short-lived access
//! token carrying the key's permissions ([`exchange`]).
//!
//! A key acts for the user who made it and never for more: at every exchange it carries only
//! what its creator still holds (a demoted creator's keys narrow with them), and a key whose
//! creator is gone is refused. Keys are made by users only (a key cannot make a key), with
//! `keys:admin`, and none lives longer than `SANKALPA_API_KEY_MAX_TTL_SECONDS`.
//!
//! The one exception is a chain run's own credential ([`Purpose::ChainRun`]): the orchestrator
//! makes it with the token of whoever starts the run, a user or a tool's key, without
//! `keys:admin`, so that steps can run after that token expires. Made by a key, it acts for no
//! more than that key does now, ends when that key is revoked, and lives no longer; it cannot
//! make keys itself. A schedule's credential ([`Purpose::Schedule`]) is made the same way by the
//! triggers service, and may make the chain-run keys of the runs its ticks start; a key acts for
//! what every key between it and its user holds ([`MAX_MAKERS`] at most).

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::State;
use crate::audit;
use crate::error::{AuthError, Result};
use crate::revocations;
use crate::tokens::{self, Subject};
use crate::{roles, users};

pub const KEY_PREFIX: &str = "sk_";
/// How much of a key is kept in the clear, to tell keys apart in listings.
const SHOWN_PREFIX_LEN: usize = 10;

#[derive(sqlx::FromRow)]
pub struct ApiKey {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub prefix: String,
    pub permissions: Vec<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub purpose: String,
}

/// The columns of [`ApiKey`], as a literal so queries stay static strings.
macro_rules! key_columns {
    () => {
        "id, tenant_id, name, prefix, permissions, created_by, created_at, expires_at, \
         revoked_at, purpose"
    };
}

/// What a key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A person's or a tool's key.
    Tool,
    /// A chain run's credential.
    ChainRun,
    /// A schedule's credential (triggers), which makes the chain-run keys of its ticks' runs.
    Schedule,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tool => "tool",
            Self::ChainRun => "chain_run",
            Self::Schedule => "schedule",
        }
    }

    /// The purpose stored as `name`; an unknown name (from a newer release) is a tool's key,
    /// the one that can do least without its creator.
    pub fn named(name: &str) -> Self {
        [Self::ChainRun, Self::Schedule]
            .into_iter()
            .find(|purpose| purpose.as_str() == name)
            .unwrap_or(Self::Tool)
    }

    /// Whether a key of this purpose may be made by a key of purpose `maker` (not only by a
    /// user): a run's key by a tool's or a schedule's, a schedule's by a tool's.
    fn made_by(self, maker: Self) -> bool {
        matches!(
            (self, maker),
            (Self::ChainRun, Self::Tool | Self::Schedule) | (Self::Schedule, Self::Tool)
        )
    }
}

/// How many keys may stand between a key and the user it acts for: a run's key made by a
/// schedule's key made by a tool's key.
const MAX_MAKERS: usize = 3;

pub struct NewKey<'a> {
    pub tenant_id: Uuid,
    pub name: &'a str,
    pub permissions: &'a [String],
    pub expires_at: DateTime<Utc>,
    pub created_by: &'a str,
    pub purpose: Purpose,
}

/// Creates a key; the secret is returned this once.
pub async fn create(state: &State, key: NewKey<'_>) -> Result<(ApiKey, String)> {
    let secret = tokens::new_secret(KEY_PREFIX);
    let mut tx = state.pool.begin().await?;
    let created: ApiKey = sqlx::query_as(concat!(
        "INSERT INTO auth.api_keys
             (id, tenant_id, name, prefix, key_hash, permissions, created_by, expires_at, purpose)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING ",
        key_columns!(),
        ""
    ))
    .bind(Uuid::now_v7())
    .bind(key.tenant_id)
    .bind(key.name)
    .bind(&secret[..SHOWN_PREFIX_LEN])
    .bind(tokens::digest(&secret))
    .bind(key.permissions)
    .bind(key.created_by)
    .bind(key.expires_at)
    .bind(key.purpose.as_str())
    .fetch_one(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        Some(key.tenant_id),
        key.created_by,
        "api_key.created",
        &created.id.to_string(),
        json!({ "name": key.name, "permissions": key.permissions }),
    )
    .await?;
    tx.commit().await?;
    Ok((created, secret))
}

/// The tenant's keys, newest first.
pub async fn list(
    state: &State,
    tenant_id: Uuid,
    size: i64,
    before: Option<Uuid>,
) -> Result<Vec<ApiKey>> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        key_columns!(),
        " FROM auth.api_keys
         WHERE tenant_id = $1 AND ($2::uuid IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
    ))
    .bind(tenant_id)
    .bind(before)
    .bind(size + 1)
    .fetch_all(&state.pool)
    .await?)
}

/// Revokes a key of the tenant, and the chain-run keys it made, ending the tokens minted from
/// them; revoking twice keeps the first revocation time.
pub async fn revoke(state: &State, tenant_id: Uuid, id: Uuid, actor: &str) -> Result<ApiKey> {
    let mut tx = state.pool.begin().await?;
    let key: ApiKey = sqlx::query_as(concat!(
        "UPDATE auth.api_keys SET revoked_at = COALESCE(revoked_at, now())
         WHERE tenant_id = $1 AND id = $2 RETURNING ",
        key_columns!(),
        ""
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(AuthError::NotFound("API key"))?;
    audit::record(
        &mut *tx,
        Some(tenant_id),
        actor,
        "api_key.revoked",
        &id.to_string(),
        json!({ "name": key.name }),
    )
    .await?;
    let mut ended = vec![id];
    ended.extend(revoke_made_by(&mut tx, tenant_id, &id.to_string(), actor).await?);
    let revoked: Vec<_> = ended
        .iter()
        .map(|key| state.revocations.subject(key.to_string()))
        .collect();
    revocations::record(&mut tx, &revoked).await?;
    tx.commit().await?;
    state.revocations.announce(&revoked).await;
    Ok(key)
}

/// A key of the tenant that is neither revoked nor expired.
async fn live(db: impl sqlx::PgExecutor<'_>, tenant_id: Uuid, id: Uuid) -> Result<Option<ApiKey>> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        key_columns!(),
        " FROM auth.api_keys
         WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL
           AND (expires_at IS NULL OR expires_at > now())"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(db)
    .await?)
}

/// The key a key of purpose `purpose` is being made with: live, and of a purpose that may make
/// it (a run's key makes no keys). Its expiry bounds the new key's.
pub async fn maker_key(
    state: &State,
    tenant_id: Uuid,
    subject: &str,
    purpose: Purpose,
) -> Result<ApiKey> {
    let refused = || AuthError::Forbidden("this API key cannot make such a key".to_owned());
    let id = Uuid::parse_str(subject).map_err(|_| refused())?;
    let key = live(&state.pool, tenant_id, id)
        .await?
        .ok_or(AuthError::Unauthenticated("the API key is not valid"))?;
    if !purpose.made_by(Purpose::named(&key.purpose)) {
        return Err(refused());
    }
    Ok(key)
}

/// The ids of the live keys user `creator` made, and of the chain-run keys those made.
pub async fn created_by(
    db: &mut sqlx::PgConnection,
    tenant_id: Uuid,
    creator: Uuid,
) -> Result<Vec<Uuid>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM auth.api_keys
         WHERE tenant_id = $1 AND revoked_at IS NULL
           AND (created_by = $2 OR created_by IN (
                SELECT id::text FROM auth.api_keys WHERE tenant_id = $1 AND created_by = $2))",
    )
    .bind(tenant_id)
    .bind(creator.to_string())
    .fetch_all(db)
    .await?)
}

/// Revokes, in `tx`, every key user `creator` made, and the chain-run keys those made: its
/// creator is being deleted.
pub async fn revoke_created_by(
    tx: &mut sqlx::PgConnection,
    tenant_id: Uuid,
    creator: Uuid,
    actor: &str,
) -> Result<()> {
    for key in revoke_made_by(tx, tenant_id, &creator.to_string(), actor).await? {
        revoke_made_by(tx, tenant_id, &key.to_string(), actor).await?;
    }
    Ok(())
}

/// Revokes, in `tx`, the live keys `maker` (a user or key id) made; gives their ids.
async fn revoke_made_by(
    tx: &mut sqlx::PgConnection,
    tenant_id: Uuid,
    maker: &str,
    actor: &str,
) -> Result<Vec<Uuid>> {
    let revoked: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE auth.api_keys SET revoked_at = now()
         WHERE tenant_id = $1 AND created_by = $2 AND revoked_at IS NULL RETURNING id",
    )
    .bind(tenant_id)
    .bind(maker)
    .fetch_all(&mut *tx)
    .await?;
    for id in &revoked {
        audit::record(
            &mut *tx,
            Some(tenant_id),
            actor,
            "api_key.revoked",
            &id.to_string(),
            json!({ "reason": "what made it was revoked or deleted" }),
        )
        .await?;
    }
    Ok(revoked)
}

/// What the maker of `key` holds now: a user's permissions, or, for a key made by a key, what
/// that key carries now, up the chain of makers to the user. `Unauthenticated` when a maker is
/// gone, revoked or expired.
async fn maker_permissions(state: &State, key: &ApiKey) -> Result<Vec<String>> {
    let gone = || AuthError::Unauthenticated("the API key's creator no longer exists");
    // The permissions of the keys between `key` and the user, nearest first.
    let mut between: Vec<Vec<String>> = Vec::new();
    let mut purpose = Purpose::named(&key.purpose);
    let mut maker = key.created_by.clone();
    for _ in 0..MAX_MAKERS {
        let id = Uuid::parse_str(&maker).map_err(|_| gone())?;
        match users::get(&state.pool, key.tenant_id, id).await {
            Ok(user) => {
                return Ok(between.iter().rev().fold(user.permissions, |held, wanted| {
                    roles::narrow(wanted, &held)
                }));
            }
            Err(AuthError::NotFound(_)) => {}
            Err(err) => return Err(err),
        }
        let parent = live(&state.pool, key.tenant_id, id)
            .await?
            .ok_or_else(gone)?;
        let parent_purpose = Purpose::named(&parent.purpose);
        if !purpose.made_by(parent_purpose) {
            return Err(gone());
        }
        between.push(parent.permissions);
        purpose = parent_purpose;
        maker = parent.created_by;
    }
    Err(gone())
}

/// An access token for a live key, valid until the sooner of the usual lifetime and the key's
/// expiry, carrying the key's permissions that its creator still holds.
pub async fn exchange(state: &State, secret: &str) -> Result<(String, u64)> {
    const INVALID: AuthError = AuthError::Unauthenticated("the API key is not valid");
    if !secret.starts_with(KEY_PREFIX) {
        return Err(INVALID);
    }
    // Keys made before expiries were capped may have none: they end at the cap too.
    let key: ApiKey = sqlx::query_as(concat!(
        "SELECT ",
        key_columns!(),
        " FROM auth.api_keys
         WHERE key_hash = $1 AND revoked_at IS NULL
           AND COALESCE(expires_at, created_at + $2) > now()"
    ))
    .bind(tokens::digest(secret))
    .bind(state.api_key_max_ttl)
    .fetch_optional(&state.pool)
    .await?
    .ok_or(INVALID)?;
    let permissions = roles::narrow(&key.permissions, &maker_permissions(state, &key).await?);
    let expires_at = key.expires_at.unwrap_or(
        key.created_at
            + chrono::Duration::from_std(state.api_key_max_ttl)
                .unwrap_or(chrono::Duration::days(90)),
    );
    let ttl = i64::try_from(state.access_ttl.as_secs())
        .unwrap_or(i64::MAX)
        .min((expires_at - Utc::now()).num_seconds().max(1));
    let id = key.id.to_string();
    let tenant_id = key.tenant_id.to_string();
    let token = state.signer.access_token(
        Subject {
            id: &id,
            tenant_id: &tenant_id,
            roles: Vec::new(),
            permissions,
            kind: "api_key",
            session: "",
        },
        ttl,
    )?;
    Ok((token, u64::try_from(ttl).unwrap_or(0)))
}
