//! Users: accounts with a password and roles, each inside one tenant.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

use crate::error::{AuthError, Result};
use crate::roles;

pub struct User {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub email: String,
    pub display_name: String,
    pub roles: Vec<String>,
    pub permissions: Vec<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: Uuid,
    tenant_id: Uuid,
    email: String,
    display_name: String,
    created_at: DateTime<Utc>,
    is_platform: bool,
    roles: Vec<String>,
    permissions: Vec<String>,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        let permissions = roles::expand(&row.roles, row.permissions, row.is_platform);
        Self {
            id: row.id,
            tenant_id: row.tenant_id,
            email: row.email,
            display_name: row.display_name,
            roles: row.roles,
            permissions,
            created_at: row.created_at,
        }
    }
}

/// Users with their roles and the permissions those grant; callers add the WHERE clause. A
/// macro, so queries stay static strings.
macro_rules! select_users {
    () => {
        "
    SELECT u.id, u.tenant_id, u.email, u.display_name, u.created_at, t.is_platform,
           COALESCE(array_agg(DISTINCT ur.role) FILTER (WHERE ur.role IS NOT NULL), '{}') AS roles,
           COALESCE(array_agg(DISTINCT rp.permission) FILTER (WHERE rp.permission IS NOT NULL), '{}')
               AS permissions
    FROM auth.users u
    JOIN auth.tenants t ON t.id = u.tenant_id
    LEFT JOIN auth.user_roles ur ON ur.user_id = u.id
    LEFT JOIN auth.role_permissions rp ON rp.role = ur.role"
    };
}

/// The user `id` of `tenant_id`; another tenant's user is "not found".
pub async fn get(db: impl PgExecutor<'_>, tenant_id: Uuid, id: Uuid) -> Result<User> {
    sqlx::query_as::<_, UserRow>(concat!(
        select_users!(),
        " WHERE u.tenant_id = $1 AND u.id = $2 GROUP BY u.id, t.is_platform"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(db)
    .await?
    .map(User::from)
    .ok_or(AuthError::NotFound("user"))
}

/// The user with `email` and its password hash, for login.
pub async fn find_for_login(db: &PgPool, email: &str) -> Result<Option<(User, String)>> {
    let found: Option<(Uuid, Uuid, String)> = sqlx::query_as(
        "SELECT id, tenant_id, password_hash FROM auth.users WHERE lower(email) = $1",
    )
    .bind(email)
    .fetch_optional(db)
    .await?;
    match found {
        Some((id, tenant_id, hash)) => Ok(Some((get(db, tenant_id, id).await?, hash))),
        None => Ok(None),
    }
}

/// Users of `tenant_id` in creation order.
pub async fn list(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    size: i64,
    after: Option<Uuid>,
) -> Result<Vec<User>> {
    let rows = sqlx::query_as::<_, UserRow>(concat!(
        select_users!(),
        " WHERE u.tenant_id = $1 AND ($2::uuid IS NULL OR u.id > $2)
         GROUP BY u.id, t.is_platform ORDER BY u.id LIMIT $3"
    ))
    .bind(tenant_id)
    .bind(after)
    .bind(size + 1)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(User::from).collect())
}

pub struct NewUser<'a> {
    pub tenant_id: Uuid,
    pub email: &'a str,
    pub password_hash: &'a str,
    pub display_name: &'a str,
    pub roles: &'a [String],
}

/// Inserts a user and its roles; an email already in use is a conflict.
pub async fn insert(db: &mut PgConnection, user: NewUser<'_>) -> Result<Uuid> {
    let id = Uuid::now_v7();
    let inserted = sqlx::query(
        "INSERT INTO auth.users (id, tenant_id, email, password_hash, display_name)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(user.tenant_id)
    .bind(user.email)
    .bind(user.password_hash)
    .bind(user.display_name)
    .execute(&mut *db)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(AuthError::Conflict(
            "the email is already registered".to_owned(),
        ));
    }
    replace_roles(db, id, user.roles).await?;
    Ok(id)
}

pub async fn replace_roles(db: &mut PgConnection, user_id: Uuid, roles: &[String]) -> Result<()> {
    sqlx::query("DELETE FROM auth.user_roles WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *db)
        .await?;
    sqlx::query("INSERT INTO auth.user_roles (user_id, role) SELECT $1, unnest($2::text[])")
        .bind(user_id)
        .bind(roles)
        .execute(&mut *db)
        .await?;
    Ok(())
}

/// Deletes the user `id` of `tenant_id`, with its roles and refresh tokens.
pub async fn delete(db: impl PgExecutor<'_>, tenant_id: Uuid, id: Uuid) -> Result<()> {
    let deleted = sqlx::query("DELETE FROM auth.users WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id)
        .bind(id)
        .execute(db)
        .await?;
    if deleted.rows_affected() == 0 {
        return Err(AuthError::NotFound("user"));
    }
    Ok(())
}
