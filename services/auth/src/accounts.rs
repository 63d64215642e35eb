//! Signing up, logging in, and the account changes an admin makes, each audited.

use serde_json::json;
use uuid::Uuid;

use crate::error::{AuthError, Result};
use crate::sessions::{self, Issued};
use crate::tenants::{self, Tenant};
use crate::users::{self, NewUser, User};
use sankalpa_proto::v1::Revocation;

use crate::{State, api_keys, audit, input, passwords, revocations};

pub struct Registration<'a> {
    pub email: &'a str,
    pub password: &'a str,
    pub display_name: &'a str,
    pub tenant_name: &'a str,
}

/// Creates a tenant with the new user as its admin.
pub async fn register(state: &State, request: Registration<'_>) -> Result<(User, Tenant)> {
    let email = input::email(request.email)?;
    passwords::validate(request.password)?;
    let local_part = email.split('@').next().unwrap_or_default();
    let display_name = match request.display_name.trim() {
        "" => local_part.to_owned(),
        given => input::name("display_name", given)?,
    };
    let tenant_name = match request.tenant_name.trim() {
        "" => local_part.to_owned(),
        given => input::name("tenant_name", given)?,
    };
    let hash = state.hashing.hash(request.password.to_owned()).await?;
    let mut tx = state.pool.begin().await?;
    let tenant = tenants::create(&mut *tx, &tenant_name, false).await?;
    let id = users::insert(
        &mut tx,
        NewUser {
            tenant_id: tenant.id,
            email: &email,
            password_hash: &hash,
            display_name: &display_name,
            roles: &["admin".to_owned()],
        },
    )
    .await?;
    audit::record(
        &mut *tx,
        Some(tenant.id),
        &id.to_string(),
        "user.registered",
        &email,
        json!({}),
    )
    .await?;
    let user = users::get(&mut *tx, tenant.id, id).await?;
    tx.commit().await?;
    Ok((user, tenant))
}

/// Checks the credentials and starts a session. Which part was wrong is not told, and an
/// unknown email costs as much time as a wrong password.
pub async fn login(state: &State, email: &str, password: &str) -> Result<Issued> {
    const INVALID: AuthError = AuthError::Unauthenticated("invalid email or password");
    if password.chars().count() > passwords::MAX_LENGTH {
        return Err(INVALID);
    }
    // Not an address (a NUL, a control character: text Postgres refuses) is no account's, and
    // fails as an unknown one does, in as much time.
    let email = input::email(email).ok();
    let found = match &email {
        Some(email) => users::find_for_login(&state.pool, email).await?,
        None => None,
    };
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    let matches = state.hashing.verify(password.to_owned(), hash).await?;
    match user {
        Some(user) if matches => sessions::start(state, user).await,
        user => {
            let (tenant, actor) = user.map_or((None, String::new()), |user| {
                (Some(user.tenant_id), user.id.to_string())
            });
            audit::record(
                &state.pool,
                tenant,
                &actor,
                "login.failed",
                email.as_deref().unwrap_or_default(),
                json!({}),
            )
            .await?;
            Err(INVALID)
        }
    }
}

pub struct NewMember<'a> {
    pub email: &'a str,
    pub password: &'a str,
    pub display_name: &'a str,
    pub roles: &'a [String],
}

/// Adds a user to the admin's tenant.
pub async fn create_user(
    state: &State,
    tenant_id: Uuid,
    actor: &str,
    member: NewMember<'_>,
) -> Result<User> {
    let email = input::email(member.email)?;
    passwords::validate(member.password)?;
    let roles = if member.roles.is_empty() {
        vec!["developer".to_owned()]
    } else {
        crate::roles::validate_roles(member.roles)?
    };
    let display_name = match member.display_name.trim() {
        "" => email.split('@').next().unwrap_or_default().to_owned(),
        given => input::name("display_name", given)?,
    };
    let hash = state.hashing.hash(member.password.to_owned()).await?;
    let mut tx = state.pool.begin().await?;
    let id = users::insert(
        &mut tx,
        NewUser {
            tenant_id,
            email: &email,
            password_hash: &hash,
            display_name: &display_name,
            roles: &roles,
        },
    )
    .await?;
    audit::record(
        &mut *tx,
        Some(tenant_id),
        actor,
        "user.created",
        &id.to_string(),
        json!({ "roles": roles }),
    )
    .await?;
    let user = users::get(&mut *tx, tenant_id, id).await?;
    tx.commit().await?;
    Ok(user)
}

pub async fn set_roles(
    state: &State,
    tenant_id: Uuid,
    actor: &str,
    id: Uuid,
    roles: &[String],
) -> Result<User> {
    let roles = crate::roles::validate_roles(roles)?;
    let mut tx = state.pool.begin().await?;
    // Checks the user is in the tenant before touching its roles.
    let before = users::get(&mut *tx, tenant_id, id).await?;
    users::replace_roles(&mut tx, id, &roles).await?;
    // Tokens carry the permissions they were issued with: the user's and those minted from
    // their keys are ended, so new ones (a refresh, the next key exchange) carry the new roles.
    let revoked = user_revocations(state, &mut tx, tenant_id, id).await?;
    audit::record(
        &mut *tx,
        Some(tenant_id),
        actor,
        "user.roles_changed",
        &id.to_string(),
        json!({ "from": before.roles, "to": roles }),
    )
    .await?;
    let user = users::get(&mut *tx, tenant_id, id).await?;
    tx.commit().await?;
    state.revocations.announce(&revoked).await;
    Ok(user)
}

pub async fn delete_user(state: &State, tenant_id: Uuid, actor: &str, id: Uuid) -> Result<()> {
    if actor == id.to_string() {
        return Err(AuthError::Precondition(
            "you cannot delete yourself".to_owned(),
        ));
    }
    let mut tx = state.pool.begin().await?;
    users::delete(&mut *tx, tenant_id, id).await?;
    api_keys::revoke_created_by(&mut tx, tenant_id, id, actor).await?;
    let revoked = user_revocations(state, &mut tx, tenant_id, id).await?;
    audit::record(
        &mut *tx,
        Some(tenant_id),
        actor,
        "user.deleted",
        &id.to_string(),
        json!({}),
    )
    .await?;
    tx.commit().await?;
    state.revocations.announce(&revoked).await;
    Ok(())
}

/// Records, in `tx`, the end of every token of user `id` issued until now and of those minted
/// from the API keys it created; announce them once `tx` commits.
async fn user_revocations(
    state: &State,
    tx: &mut sqlx::PgConnection,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<Vec<Revocation>> {
    let mut revoked = vec![state.revocations.subject(id.to_string())];
    for key in api_keys::created_by(&mut *tx, tenant_id, id).await? {
        revoked.push(state.revocations.subject(key.to_string()));
    }
    revocations::record(tx, &revoked).await?;
    Ok(revoked)
}

pub async fn create_tenant(state: &State, actor: &str, name: &str) -> Result<Tenant> {
    let name = input::name("name", name)?;
    let mut tx = state.pool.begin().await?;
    let tenant = tenants::create(&mut *tx, &name, false).await?;
    audit::record(
        &mut *tx,
        Some(tenant.id),
        actor,
        "tenant.created",
        &tenant.id.to_string(),
        json!({ "name": name }),
    )
    .await?;
    tx.commit().await?;
    Ok(tenant)
}

/// The operators' first admin, from configuration, created once: on the first start that finds
/// no account with that email. Replicas starting together serialise on an advisory lock.
pub async fn bootstrap_admin(
    state: &State,
    email: &str,
    password: &str,
    tenant_name: &str,
) -> Result<bool> {
    let email = input::email(email)?;
    passwords::validate(password)?;
    let hash = state.hashing.hash(password.to_owned()).await?;
    let mut tx = state.pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('auth.bootstrap_admin'))")
        .execute(&mut *tx)
        .await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM auth.users WHERE lower(email) = $1)")
            .bind(&email)
            .fetch_one(&mut *tx)
            .await?;
    if exists {
        return Ok(false);
    }
    let tenant = tenants::create(&mut *tx, &input::name("tenant_name", tenant_name)?, true).await?;
    let id = users::insert(
        &mut tx,
        NewUser {
            tenant_id: tenant.id,
            email: &email,
            password_hash: &hash,
            display_name: "Administrator",
            roles: &["admin".to_owned()],
        },
    )
    .await?;
    audit::record(
        &mut *tx,
        Some(tenant.id),
        "bootstrap",
        "user.created",
        &id.to_string(),
        json!({ "roles": ["admin"] }),
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}
