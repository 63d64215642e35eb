//! The audit log: who logged in or failed to, and every change to keys, users, roles and
//! tenants. Entries are written in the same transaction as the change they record, except for
//! failures, which have no transaction of their own.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::error::Result;

#[derive(sqlx::FromRow)]
pub struct AuditEvent {
    pub id: Uuid,
    pub tenant_id: Option<Uuid>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub details: Value,
    pub at: DateTime<Utc>,
}

pub async fn record(
    db: impl PgExecutor<'_>,
    tenant_id: Option<Uuid>,
    actor: &str,
    action: &str,
    target: &str,
    details: Value,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO auth.audit_log (id, tenant_id, actor, action, target, details)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(Uuid::now_v7())
    .bind(tenant_id)
    .bind(actor)
    .bind(action)
    .bind(target)
    .bind(details)
    .execute(db)
    .await?;
    Ok(())
}

/// The tenant's entries, newest first.
pub async fn list(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    size: i64,
    before: Option<Uuid>,
) -> Result<Vec<AuditEvent>> {
    Ok(sqlx::query_as(
        "SELECT id, tenant_id, actor, action, target, details, at FROM auth.audit_log
         WHERE tenant_id = $1 AND ($2::uuid IS NULL OR id < $2)
         ORDER BY id DESC LIMIT $3",
    )
    .bind(tenant_id)
    .bind(before)
    .bind(size + 1)
    .fetch_all(db)
    .await?)
}
