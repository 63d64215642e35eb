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
}

/// The columns of [`ApiKey`], as a literal so queries stay static strings.
macro_rules! key_columns {
    () => {
        "id, tenant_id, name, prefix, permissions, created_by, created_at, expires_at, revoked_at"
    };
}

pub struct NewKey<'a> {
    pub tenant_id: Uuid,
    pub name: &'a str,
    pub permissions: &'a [String],
    pub expires_at: DateTime<Utc>,
    pub created_by: &'a str,
}

/// Creates a key; the secret is returned this once.
pub async fn create(state: &State, key: NewKey<'_>) -> Result<(ApiKey, String)> {
    let secret = tokens::new_secret(KEY_PREFIX);
    let mut tx = state.pool.begin().await?;
    let created: ApiKey = sqlx::query_as(concat!(
        "INSERT INTO auth.api_keys
             (id, tenant_id, name, prefix, key_hash, permissions, created_by, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ",
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

/// Revokes a key of the tenant, ending the tokens minted from it; revoking twice keeps the
/// first revocation time.
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
    let revoked = [state.revocations.subject(id.to_string())];
    revocations::record(&mut tx, &revoked).await?;
    tx.commit().await?;
    state.revocations.announce(&revoked).await;
    Ok(key)
}

/// The ids of the live keys user `creator` made in `tenant_id`.
pub async fn created_by(
    db: &mut sqlx::PgConnection,
    tenant_id: Uuid,
    creator: Uuid,
) -> Result<Vec<Uuid>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM auth.api_keys
         WHERE tenant_id = $1 AND created_by = $2 AND revoked_at IS NULL",
    )
    .bind(tenant_id)
    .bind(creator.to_string())
    .fetch_all(db)
    .await?)
}

/// Revokes, in `tx`, every key user `creator` made: its creator is being deleted.
pub async fn revoke_created_by(
    tx: &mut sqlx::PgConnection,
    tenant_id: Uuid,
    creator: Uuid,
    actor: &str,
) -> Result<()> {
    let revoked: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE auth.api_keys SET revoked_at = now()
         WHERE tenant_id = $1 AND created_by = $2 AND revoked_at IS NULL RETURNING id",
    )
    .bind(tenant_id)
    .bind(creator.to_string())
    .fetch_all(&mut *tx)
    .await?;
    for id in revoked {
        audit::record(
            &mut *tx,
            Some(tenant_id),
            actor,
            "api_key.revoked",
            &id.to_string(),
            json!({ "reason": "its creator was deleted" }),
        )
        .await?;
    }
    Ok(())
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
    let creator = match Uuid::parse_str(&key.created_by) {
        Ok(id) => users::get(&state.pool, key.tenant_id, id).await,
        Err(_) => Err(AuthError::NotFound("user")),
    };
    let creator = match creator {
        Ok(creator) => creator,
        Err(AuthError::NotFound(_)) => {
            return Err(AuthError::Unauthenticated(
                "the API key's creator no longer exists",
            ));
        }
        Err(err) => return Err(err),
    };
    let permissions = roles::narrow(&key.permissions, &creator.permissions);
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
