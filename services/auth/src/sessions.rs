//! Login sessions: an access token plus an opaque refresh token.
//!
//! Refresh tokens rotate on every use. All tokens rotated from one login form a family; when a
//! token that was already rotated comes back, someone holds a copy it should not have, so the
//! whole family is revoked and both holders must log in again.

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::State;
use crate::audit;
use crate::error::{AuthError, Result};
use crate::revocations;
use crate::tokens::{self, Subject};
use crate::users::{self, User};

pub const REFRESH_PREFIX: &str = "rt_";

pub struct Issued {
    pub access_token: String,
    pub expires_in: u64,
    pub refresh_token: String,
    /// Seconds until `refresh_token` expires.
    pub refresh_expires_in: u64,
    pub user: User,
}

/// Signs an access token for `user` in the login session `session`.
pub fn access_token(state: &State, user: &User, session: Uuid) -> Result<(String, u64)> {
    let ttl = state.access_ttl.as_secs();
    let id = user.id.to_string();
    let tenant_id = user.tenant_id.to_string();
    let session = session.to_string();
    let token = state.signer.access_token(
        Subject {
            id: &id,
            tenant_id: &tenant_id,
            roles: user.roles.clone(),
            permissions: user.permissions.clone(),
            kind: "user",
            session: &session,
        },
        i64::try_from(ttl).unwrap_or(i64::MAX),
    )?;
    Ok((token, ttl))
}

async fn insert_refresh_token(
    db: &mut sqlx::PgConnection,
    state: &State,
    family_id: Uuid,
    user_id: Uuid,
) -> Result<String> {
    let secret = tokens::new_secret(REFRESH_PREFIX);
    let expires_at = Utc::now()
        + chrono::Duration::from_std(state.refresh_ttl).unwrap_or(chrono::Duration::days(30));
    sqlx::query(
        "INSERT INTO auth.refresh_tokens (id, family_id, user_id, token_hash, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(Uuid::now_v7())
    .bind(family_id)
    .bind(user_id)
    .bind(tokens::digest(&secret))
    .bind(expires_at)
    .execute(db)
    .await?;
    Ok(secret)
}

/// Starts a session (a new token family) for a user who just proved who they are.
pub async fn start(state: &State, user: User) -> Result<Issued> {
    let mut tx = state.pool.begin().await?;
    let session = Uuid::now_v7();
    let refresh_token = insert_refresh_token(&mut tx, state, session, user.id).await?;
    audit::record(
        &mut *tx,
        Some(user.tenant_id),
        &user.id.to_string(),
        "login.succeeded",
        &user.email,
        json!({}),
    )
    .await?;
    tx.commit().await?;
    let (access_token, expires_in) = access_token(state, &user, session)?;
    Ok(Issued {
        access_token,
        expires_in,
        refresh_token,
        refresh_expires_in: state.refresh_ttl.as_secs(),
        user,
    })
}

#[derive(sqlx::FromRow)]
struct StoredToken {
    id: Uuid,
    family_id: Uuid,
    user_id: Uuid,
    tenant_id: Uuid,
    expires_at: DateTime<Utc>,
    rotated_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

const INVALID_REFRESH: AuthError = AuthError::Unauthenticated("the refresh token is not valid");

/// Trades a refresh token for a new pair; the presented one stops working.
pub async fn refresh(state: &State, presented: &str) -> Result<Issued> {
    let mut tx = state.pool.begin().await?;
    // FOR UPDATE makes two concurrent uses of one token queue up: the second sees it rotated.
    let stored: Option<StoredToken> = sqlx::query_as(
        "SELECT rt.id, rt.family_id, rt.user_id, u.tenant_id, rt.expires_at, rt.rotated_at,
                rt.revoked_at
         FROM auth.refresh_tokens rt JOIN auth.users u ON u.id = rt.user_id
         WHERE rt.token_hash = $1 FOR UPDATE OF rt",
    )
    .bind(tokens::digest(presented))
    .fetch_optional(&mut *tx)
    .await?;
    let Some(stored) = stored else {
        return Err(INVALID_REFRESH);
    };
    if stored.revoked_at.is_some() {
        return Err(INVALID_REFRESH);
    }
    if stored.rotated_at.is_some() {
        sqlx::query(
            "UPDATE auth.refresh_tokens SET revoked_at = now()
             WHERE family_id = $1 AND revoked_at IS NULL",
        )
        .bind(stored.family_id)
        .execute(&mut *tx)
        .await?;
        // The access tokens of the family go too: one of its holders is not its owner.
        let revoked = [state.revocations.session(stored.family_id)];
        revocations::record(&mut tx, &revoked).await?;
        audit::record(
            &mut *tx,
            Some(stored.tenant_id),
            &stored.user_id.to_string(),
            "refresh.reused",
            &stored.family_id.to_string(),
            json!({ "revoked": "family" }),
        )
        .await?;
        tx.commit().await?;
        state.revocations.announce(&revoked).await;
        return Err(INVALID_REFRESH);
    }
    if stored.expires_at <= Utc::now() {
        return Err(INVALID_REFRESH);
    }
    sqlx::query("UPDATE auth.refresh_tokens SET rotated_at = now() WHERE id = $1")
        .bind(stored.id)
        .execute(&mut *tx)
        .await?;
    let refresh_token =
        insert_refresh_token(&mut tx, state, stored.family_id, stored.user_id).await?;
    let user = users::get(&mut *tx, stored.tenant_id, stored.user_id).await?;
    tx.commit().await?;
    let (access_token, expires_in) = access_token(state, &user, stored.family_id)?;
    Ok(Issued {
        access_token,
        expires_in,
        refresh_token,
        refresh_expires_in: state.refresh_ttl.as_secs(),
        user,
    })
}

/// Ends the session the token belongs to, with the access tokens issued in it. Unknown tokens
/// are ignored: logging out twice is fine.
pub async fn logout(state: &State, presented: &str) -> Result<()> {
    let mut tx = state.pool.begin().await?;
    let session: Option<Uuid> =
        sqlx::query_scalar("SELECT family_id FROM auth.refresh_tokens WHERE token_hash = $1")
            .bind(tokens::digest(presented))
            .fetch_optional(&mut *tx)
            .await?;
    let Some(session) = session else {
        return Ok(());
    };
    let ended = sqlx::query(
        "UPDATE auth.refresh_tokens SET revoked_at = now()
         WHERE family_id = $1 AND revoked_at IS NULL",
    )
    .bind(session)
    .execute(&mut *tx)
    .await?;
    if ended.rows_affected() == 0 {
        return Ok(());
    }
    let revoked = [state.revocations.session(session)];
    revocations::record(&mut tx, &revoked).await?;
    tx.commit().await?;
    state.revocations.announce(&revoked).await;
    Ok(())
}

/// Ends every session of the user `presented` belongs to (a "sign out everywhere"): all of the
/// user's refresh tokens, and every access token issued to the user until now. Only a token
/// that still works may do it (an old copy of a rotated one must not sign its user out); any
/// other is ignored, as by [`logout`].
pub async fn logout_everywhere(state: &State, presented: &str) -> Result<()> {
    let mut tx = state.pool.begin().await?;
    let owner: Option<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT u.id, u.tenant_id
         FROM auth.refresh_tokens rt JOIN auth.users u ON u.id = rt.user_id
         WHERE rt.token_hash = $1 AND rt.rotated_at IS NULL AND rt.revoked_at IS NULL
           AND rt.expires_at > now()",
    )
    .bind(tokens::digest(presented))
    .fetch_optional(&mut *tx)
    .await?;
    let Some((user_id, tenant_id)) = owner else {
        return Ok(());
    };
    let ended = sqlx::query(
        "UPDATE auth.refresh_tokens SET revoked_at = now()
         WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(user_id)
    .execute(&mut *tx)
    .await?;
    let revoked = [state.revocations.subject(user_id.to_string())];
    revocations::record(&mut tx, &revoked).await?;
    audit::record(
        &mut *tx,
        Some(tenant_id),
        &user_id.to_string(),
        "logout.everywhere",
        &user_id.to_string(),
        json!({ "refresh_tokens_revoked": ended.rows_affected() }),
    )
    .await?;
    tx.commit().await?;
    state.revocations.announce(&revoked).await;
    Ok(())
}
