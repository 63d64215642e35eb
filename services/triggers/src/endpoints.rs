//! A tenant's endpoints and their signing secrets. Every statement is scoped by the tenant:
//! another tenant's endpoint is not found.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::{Result, TriggersError};
use crate::signing;

#[derive(Debug, sqlx::FromRow)]
pub struct Endpoint {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    pub ordered: bool,
    pub enabled: bool,
    pub disabled_reason: String,
    pub failing_since: Option<DateTime<Utc>>,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The columns of [`Endpoint`] from `triggers.endpoints e`.
const COLUMNS: &str = "e.id, e.tenant_id, e.url, e.description, e.event_types, e.ordered, \
     e.enabled, e.disabled_reason, e.failing_since, e.created_at, e.updated_at, \
     (SELECT max(s.expires_at) FROM triggers.endpoint_secrets s \
      WHERE s.endpoint_id = e.id AND s.expires_at > now()) AS previous_secret_expires_at";

pub struct NewEndpoint {
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    pub ordered: bool,
}

/// Registers an endpoint with a new secret, unless the tenant has `max_per_tenant` already.
pub async fn create(
    pool: &PgPool,
    tenant: Uuid,
    created_by: &str,
    new: NewEndpoint,
    max_per_tenant: i64,
) -> Result<(Endpoint, String)> {
    let mut tx = pool.begin().await?;
    // The tenant's endpoints are counted under a lock of the tenant, so two creations at once
    // cannot both pass the bound.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('triggers.endpoints:' || $1::text))")
        .bind(tenant)
        .execute(&mut *tx)
        .await?;
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM triggers.endpoints WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_one(&mut *tx)
            .await?;
    if count >= max_per_tenant {
        return Err(TriggersError::Exhausted(format!(
            "the tenant has {count} endpoints, the most it may have; delete one first"
        )));
    }
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO triggers.endpoints (id, tenant_id, url, description, event_types, ordered, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(tenant)
    .bind(&new.url)
    .bind(&new.description)
    .bind(&new.event_types)
    .bind(new.ordered)
    .bind(created_by)
    .execute(&mut *tx)
    .await?;
    let secret = signing::new_secret();
    sqlx::query("INSERT INTO triggers.endpoint_secrets (endpoint_id, secret) VALUES ($1, $2)")
        .bind(id)
        .bind(&secret)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((get(pool, tenant, id).await?, secret))
}

pub async fn get(pool: &PgPool, tenant: Uuid, id: Uuid) -> Result<Endpoint> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM triggers.endpoints e WHERE e.id = $1 AND e.tenant_id = $2"
    )))
    .bind(id)
    .bind(tenant)
    .fetch_optional(pool)
    .await?
    .ok_or(TriggersError::NotFound("endpoint"))
}

/// A page of the tenant's endpoints, newest first, after the endpoint `after`; one more than
/// `size` when more follow.
pub async fn list(
    pool: &PgPool,
    tenant: Uuid,
    size: i64,
    after: Option<Uuid>,
) -> Result<Vec<Endpoint>> {
    crate::listing::newest_first(
        pool,
        "triggers.endpoints",
        "e",
        COLUMNS,
        tenant,
        size,
        after,
    )
    .await
}

/// What an update changes; `None` keeps a field.
pub struct Changes {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub ordered: Option<bool>,
    pub enabled: Option<bool>,
}

pub async fn update(pool: &PgPool, tenant: Uuid, id: Uuid, changes: Changes) -> Result<Endpoint> {
    let updated = sqlx::query(
        "UPDATE triggers.endpoints SET
             url = coalesce($3, url),
             description = coalesce($4, description),
             event_types = coalesce($5, event_types),
             ordered = coalesce($6, ordered),
             enabled = coalesce($7, enabled),
             disabled_reason = CASE WHEN $7 IS NULL THEN disabled_reason
                                    WHEN $7 THEN '' ELSE 'disabled by its tenant' END,
             failing_since = CASE WHEN $7 THEN NULL ELSE failing_since END,
             updated_at = now()
         WHERE id = $1 AND tenant_id = $2",
    )
    .bind(id)
    .bind(tenant)
    .bind(changes.url)
    .bind(changes.description)
    .bind(changes.event_types)
    .bind(changes.ordered)
    .bind(changes.enabled)
    .execute(pool)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(TriggersError::NotFound("endpoint"));
    }
    get(pool, tenant, id).await
}

pub async fn delete(pool: &PgPool, tenant: Uuid, id: Uuid) -> Result<()> {
    let deleted = sqlx::query("DELETE FROM triggers.endpoints WHERE id = $1 AND tenant_id = $2")
        .bind(id)
        .bind(tenant)
        .execute(pool)
        .await?;
    if deleted.rows_affected() == 0 {
        return Err(TriggersError::NotFound("endpoint"));
    }
    Ok(())
}

/// Gives the endpoint a new secret. The current one signs on for `overlap_seconds` (not at all
/// for 0); one still overlapping from an earlier rotation stops now, so at most two sign.
pub async fn rotate(
    pool: &PgPool,
    tenant: Uuid,
    id: Uuid,
    overlap_seconds: u32,
) -> Result<(Endpoint, String)> {
    let mut tx = pool.begin().await?;
    let found: Option<Uuid> = sqlx::query_scalar(
        "SELECT id FROM triggers.endpoints WHERE id = $1 AND tenant_id = $2 FOR UPDATE",
    )
    .bind(id)
    .bind(tenant)
    .fetch_optional(&mut *tx)
    .await?;
    if found.is_none() {
        return Err(TriggersError::NotFound("endpoint"));
    }
    sqlx::query(
        "DELETE FROM triggers.endpoint_secrets
         WHERE endpoint_id = $1 AND (expires_at IS NOT NULL OR $2 = 0)",
    )
    .bind(id)
    .bind(i64::from(overlap_seconds))
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE triggers.endpoint_secrets
         SET expires_at = now() + make_interval(secs => $2)
         WHERE endpoint_id = $1 AND expires_at IS NULL",
    )
    .bind(id)
    .bind(f64::from(overlap_seconds))
    .execute(&mut *tx)
    .await?;
    let secret = signing::new_secret();
    sqlx::query("INSERT INTO triggers.endpoint_secrets (endpoint_id, secret) VALUES ($1, $2)")
        .bind(id)
        .bind(&secret)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE triggers.endpoints SET updated_at = now() WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((get(pool, tenant, id).await?, secret))
}

/// The enabled endpoints of `tenants`: what events are matched against.
pub async fn enabled_of(
    pool: &PgPool,
    tenants: &[Uuid],
) -> sqlx::Result<Vec<(Uuid, Uuid, Vec<String>)>> {
    sqlx::query_as(
        "SELECT id, tenant_id, event_types FROM triggers.endpoints
         WHERE tenant_id = ANY($1) AND enabled",
    )
    .bind(tenants)
    .fetch_all(pool)
    .await
}
