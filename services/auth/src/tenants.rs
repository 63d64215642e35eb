//! Tenants: the unit of isolation. Every user, key and piece of data belongs to exactly one.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::error::{AuthError, Result};

#[derive(sqlx::FromRow)]
pub struct Tenant {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

pub async fn create(db: impl PgExecutor<'_>, name: &str, is_platform: bool) -> Result<Tenant> {
    Ok(sqlx::query_as(
        "INSERT INTO auth.tenants (id, name, is_platform) VALUES ($1, $2, $3)
         RETURNING id, name, created_at",
    )
    .bind(Uuid::now_v7())
    .bind(name)
    .bind(is_platform)
    .fetch_one(db)
    .await?)
}

pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> Result<Tenant> {
    sqlx::query_as("SELECT id, name, created_at FROM auth.tenants WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await?
        .ok_or(AuthError::NotFound("tenant"))
}

/// Tenants in creation order.
pub async fn list(db: impl PgExecutor<'_>, size: i64, after: Option<Uuid>) -> Result<Vec<Tenant>> {
    Ok(sqlx::query_as(
        "SELECT id, name, created_at FROM auth.tenants
         WHERE ($1::uuid IS NULL OR id > $1) ORDER BY id LIMIT $2",
    )
    .bind(after)
    .bind(size + 1)
    .fetch_all(db)
    .await?)
}
