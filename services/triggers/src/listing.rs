//! The one way the service lists a tenant's rows: newest first, a page at a time, after the
//! row a page token names (keyset paging on `(created_at, id)`).

use sqlx::PgPool;
use sqlx::postgres::PgRow;
use uuid::Uuid;

use crate::error::Result;

/// A page of the tenant's rows of `table` (aliased `alias`, which `columns` may name), newest
/// first, after the row `after`; one more than `size` when more follow.
pub async fn newest_first<T>(
    pool: &PgPool,
    table: &str,
    alias: &str,
    columns: &str,
    tenant: Uuid,
    size: i64,
    after: Option<Uuid>,
) -> Result<Vec<T>>
where
    T: for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
{
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {columns} FROM {table} {alias}
         WHERE {alias}.tenant_id = $1
           AND ($2::uuid IS NULL OR ({alias}.created_at, {alias}.id) < (
                SELECT a.created_at, a.id FROM {table} a
                WHERE a.id = $2 AND a.tenant_id = $1))
         ORDER BY {alias}.created_at DESC, {alias}.id DESC
         LIMIT $3"
    )))
    .bind(tenant)
    .bind(after)
    .bind(size + 1)
    .fetch_all(pool)
    .await?)
}
