//! Deliveries: one row per event and endpoint, taken from the stream ([`crate::ingest`]),
//! attempted by any replica ([`crate::sender`]) and kept with each attempt as the endpoint's
//! delivery log. Every read a caller makes is scoped by the tenant.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use sqlx::types::Json;
use std::collections::BTreeMap;
use uuid::Uuid;

use crate::error::{Result, TriggersError};

/// The most deliveries one replay since a time makes pending again.
pub const MAX_REPLAY: i64 = 10_000;
/// The most attempts GetDelivery answers, the latest.
pub const MAX_ATTEMPTS_SHOWN: i64 = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Delivered,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct Delivery {
    pub id: Uuid,
    pub seq: i64,
    pub endpoint_id: Uuid,
    pub message_id: String,
    pub event_id: String,
    pub event_type: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_status_code: i32,
    pub last_error: String,
    pub last_latency_ms: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "d.id, d.seq, d.endpoint_id, d.message_id, d.event_id, d.event_type, \
     d.status, d.attempts, d.next_attempt_at, d.last_status_code, d.last_error, \
     d.last_latency_ms, d.created_at, d.updated_at";

#[derive(Debug, sqlx::FromRow)]
pub struct Attempt {
    pub attempt: i32,
    pub started_at: DateTime<Utc>,
    pub url: String,
    pub request_headers: Json<BTreeMap<String, String>>,
    pub status_code: i32,
    pub latency_ms: i32,
    pub response_body: String,
    pub error: String,
}

/// The endpoint `id` of `tenant` exists, or NOT_FOUND.
async fn endpoint_of(pool: &PgPool, tenant: Uuid, id: Uuid) -> Result<()> {
    let found: Option<Uuid> =
        sqlx::query_scalar("SELECT id FROM triggers.endpoints WHERE id = $1 AND tenant_id = $2")
            .bind(id)
            .bind(tenant)
            .fetch_optional(pool)
            .await?;
    found.map(|_| ()).ok_or(TriggersError::NotFound("endpoint"))
}

/// A page of an endpoint's deliveries, newest first, before `before_seq`; one more than `size`
/// when more follow.
pub async fn list(
    pool: &PgPool,
    tenant: Uuid,
    endpoint: Uuid,
    status: Option<Status>,
    size: i64,
    before_seq: Option<i64>,
) -> Result<Vec<Delivery>> {
    endpoint_of(pool, tenant, endpoint).await?;
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM triggers.deliveries d
         WHERE d.endpoint_id = $1 AND d.tenant_id = $2
           AND ($3::text IS NULL OR d.status = $3)
           AND ($4::bigint IS NULL OR d.seq < $4)
         ORDER BY d.seq DESC LIMIT $5"
    )))
    .bind(endpoint)
    .bind(tenant)
    .bind(status.map(Status::as_str))
    .bind(before_seq)
    .bind(size + 1)
    .fetch_all(pool)
    .await?)
}

/// One delivery with its body and latest attempts, oldest first.
pub async fn get(
    pool: &PgPool,
    tenant: Uuid,
    endpoint: Uuid,
    id: Uuid,
) -> Result<(Delivery, String, Vec<Attempt>)> {
    let (delivery, body): (Delivery, String) = {
        let row: Option<DeliveryWithBody> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS}, d.body FROM triggers.deliveries d
             WHERE d.id = $1 AND d.endpoint_id = $2 AND d.tenant_id = $3"
        )))
        .bind(id)
        .bind(endpoint)
        .bind(tenant)
        .fetch_optional(pool)
        .await?;
        let row = row.ok_or(TriggersError::NotFound("delivery"))?;
        (row.delivery, row.body)
    };
    let mut attempts: Vec<Attempt> = sqlx::query_as(
        "SELECT attempt, started_at, url, request_headers, status_code, latency_ms,
                response_body, error
         FROM triggers.attempts WHERE delivery_id = $1 ORDER BY attempt DESC LIMIT $2",
    )
    .bind(id)
    .bind(MAX_ATTEMPTS_SHOWN)
    .fetch_all(pool)
    .await?;
    attempts.reverse();
    Ok((delivery, body, attempts))
}

#[derive(sqlx::FromRow)]
struct DeliveryWithBody {
    #[sqlx(flatten)]
    delivery: Delivery,
    body: String,
}

/// Makes one delivery pending again, due now, its retry schedule started over.
pub async fn replay_one(pool: &PgPool, tenant: Uuid, endpoint: Uuid, id: Uuid) -> Result<u32> {
    endpoint_of(pool, tenant, endpoint).await?;
    let replayed = sqlx::query(
        "UPDATE triggers.deliveries
         SET status = 'pending', round_attempts = 0, next_attempt_at = now(), updated_at = now()
         WHERE id = $1 AND endpoint_id = $2 AND tenant_id = $3",
    )
    .bind(id)
    .bind(endpoint)
    .bind(tenant)
    .execute(pool)
    .await?;
    if replayed.rows_affected() == 0 {
        return Err(TriggersError::NotFound("delivery"));
    }
    Ok(1)
}

/// Makes the endpoint's deliveries created since `since` pending again, the oldest
/// [`MAX_REPLAY`] of them.
pub async fn replay_since(
    pool: &PgPool,
    tenant: Uuid,
    endpoint: Uuid,
    since: DateTime<Utc>,
) -> Result<u32> {
    endpoint_of(pool, tenant, endpoint).await?;
    let replayed = sqlx::query(
        "UPDATE triggers.deliveries d
         SET status = 'pending', round_attempts = 0, next_attempt_at = now(), updated_at = now()
         WHERE d.id IN (
             SELECT id FROM triggers.deliveries
             WHERE endpoint_id = $1 AND tenant_id = $2 AND created_at >= $3
             ORDER BY seq LIMIT $4)",
    )
    .bind(endpoint)
    .bind(tenant)
    .bind(since)
    .bind(MAX_REPLAY)
    .execute(pool)
    .await?;
    Ok(u32::try_from(replayed.rows_affected()).unwrap_or(u32::MAX))
}

/// A delivery to insert: an event matched to an endpoint.
pub struct NewDelivery {
    pub tenant: Uuid,
    pub endpoint: Uuid,
    pub event_id: String,
    pub event_type: String,
    pub body: String,
}

/// The webhook-id of an event's deliveries.
pub fn message_id(event_id: &str) -> String {
    format!("msg_{event_id}")
}

/// Inserts deliveries, skipping those that exist (an event read again after a crash); answers
/// how many were new.
pub async fn insert(db: impl sqlx::PgExecutor<'_>, new: &[NewDelivery]) -> sqlx::Result<u64> {
    if new.is_empty() {
        return Ok(0);
    }
    let ids: Vec<Uuid> = new.iter().map(|_| Uuid::now_v7()).collect();
    let tenants: Vec<Uuid> = new.iter().map(|d| d.tenant).collect();
    let endpoints: Vec<Uuid> = new.iter().map(|d| d.endpoint).collect();
    let messages: Vec<String> = new.iter().map(|d| message_id(&d.event_id)).collect();
    let events: Vec<&str> = new.iter().map(|d| d.event_id.as_str()).collect();
    let types: Vec<&str> = new.iter().map(|d| d.event_type.as_str()).collect();
    let bodies: Vec<&str> = new.iter().map(|d| d.body.as_str()).collect();
    let inserted = sqlx::query(
        "INSERT INTO triggers.deliveries
             (id, tenant_id, endpoint_id, message_id, event_id, event_type, body)
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[],
                              $6::text[], $7::text[])
         ON CONFLICT (endpoint_id, message_id) DO NOTHING",
    )
    .bind(ids)
    .bind(tenants)
    .bind(endpoints)
    .bind(messages)
    .bind(events)
    .bind(types)
    .bind(bodies)
    .execute(db)
    .await?;
    Ok(inserted.rows_affected())
}

/// Adds a delivery of `body` (the event `event_id` of `event_type`) to the tenant's endpoint,
/// whatever its filters: a test send.
pub async fn insert_test(
    pool: &PgPool,
    tenant: Uuid,
    endpoint: Uuid,
    event_id: &str,
    event_type: &str,
    body: &str,
) -> Result<Delivery> {
    let row: Option<Delivery> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH d AS (
             INSERT INTO triggers.deliveries
                 (id, tenant_id, endpoint_id, message_id, event_id, event_type, body)
             SELECT $1, e.tenant_id, e.id, $4, $5, $6, $7 FROM triggers.endpoints e
             WHERE e.id = $2 AND e.tenant_id = $3
             RETURNING *)
         SELECT {COLUMNS} FROM d"
    )))
    .bind(Uuid::now_v7())
    .bind(endpoint)
    .bind(tenant)
    .bind(message_id(event_id))
    .bind(event_id)
    .bind(event_type)
    .bind(body)
    .fetch_optional(pool)
    .await?;
    row.ok_or(TriggersError::NotFound("endpoint"))
}

/// A delivery claimed for an attempt.
#[derive(Debug, sqlx::FromRow)]
pub struct Claimed {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub endpoint_id: Uuid,
    pub message_id: String,
    pub event_id: String,
    pub event_type: String,
    pub body: String,
    pub attempts: i32,
    pub round_attempts: i32,
    pub url: String,
    /// The secrets that sign now, newest first.
    pub secrets: Vec<String>,
}

/// Claims up to `limit` due deliveries for an attempt each: the attempt is counted and the
/// delivery leased (not due again) for `lease_seconds`, so that a replica that dies mid-attempt
/// leaves it to be attempted again once the lease runs out. Replicas claim side by side
/// (`SKIP LOCKED`). An ordered endpoint's delivery is due only when it is the endpoint's oldest
/// pending one.
pub async fn claim(pool: &PgPool, limit: i64, lease_seconds: f64) -> sqlx::Result<Vec<Claimed>> {
    sqlx::query_as(
        "WITH due AS (
             SELECT d.id FROM triggers.deliveries d
             JOIN triggers.endpoints e ON e.id = d.endpoint_id
             WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND e.enabled
               AND (NOT e.ordered OR d.seq = (
                    SELECT min(p.seq) FROM triggers.deliveries p
                    WHERE p.endpoint_id = d.endpoint_id AND p.status = 'pending'))
             ORDER BY d.next_attempt_at, d.seq
             LIMIT $1
             FOR UPDATE OF d SKIP LOCKED)
         UPDATE triggers.deliveries d
         SET attempts = d.attempts + 1, round_attempts = d.round_attempts + 1,
             next_attempt_at = now() + make_interval(secs => $2), updated_at = now()
         FROM due, triggers.endpoints e
         WHERE d.id = due.id AND e.id = d.endpoint_id
         RETURNING d.id, d.tenant_id, d.endpoint_id, d.message_id, d.event_id, d.event_type,
                   d.body, d.attempts, d.round_attempts, e.url,
                   ARRAY(SELECT s.secret FROM triggers.endpoint_secrets s
                         WHERE s.endpoint_id = d.endpoint_id
                           AND (s.expires_at IS NULL OR s.expires_at > now())
                         ORDER BY s.id DESC) AS secrets",
    )
    .bind(limit)
    .bind(lease_seconds)
    .fetch_all(pool)
    .await
}

/// Deliveries waiting to be delivered, for the backlog gauges: the `top` endpoints with the most
/// (largest first) and the total over every endpoint.
pub async fn pending_backlog(pool: &PgPool, top: i64) -> sqlx::Result<(Vec<(Uuid, i64)>, i64)> {
    // The window's total is taken before the LIMIT: one scan of the pending index answers both.
    let rows: Vec<(Uuid, i64, i64)> = sqlx::query_as(
        "WITH per_endpoint AS (
             SELECT endpoint_id, count(*) AS pending FROM triggers.deliveries
             WHERE status = 'pending' GROUP BY endpoint_id)
         SELECT endpoint_id, pending, (sum(pending) OVER ())::bigint
         FROM per_endpoint ORDER BY pending DESC, endpoint_id LIMIT $1",
    )
    .bind(top)
    .fetch_all(pool)
    .await?;
    let total = rows.first().map_or(0, |row| row.2);
    Ok((
        rows.into_iter()
            .map(|(endpoint, pending, _)| (endpoint, pending))
            .collect(),
        total,
    ))
}
