//! The Postgres pool every service uses.

use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

/// Connects a pool of `SANKALPA_DB_MAX_CONNECTIONS` (default 16) connections. The pool does not
/// ping a connection before handing it out: that would add a round trip to every query, and a
/// dead connection fails the query that uses it, which sqlx then drops.
pub async fn connect(url: &str) -> anyhow::Result<PgPool> {
    let max_connections = crate::config::var("SANKALPA_DB_MAX_CONNECTIONS", 16u32)?;
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .test_before_acquire(false)
        .connect(url)
        .await
        .with_context(|| format!("could not connect to {}", crate::config::redact_url(url)))
}
