//! The Postgres pool every service uses.

use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};

/// Connects a pool of `SANKALPA_DB_MAX_CONNECTIONS` (default 16) connections. The pool does not
/// ping a connection before handing it out: that would add a round trip to every query, and a
/// dead connection fails the query that uses it, which sqlx then drops.
pub async fn connect(url: &str) -> anyhow::Result<PgPool> {
    let max_connections = crate::config::var("SANKALPA_DB_MAX_CONNECTIONS", 16u32)?;
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .test_before_acquire(false)
        .connect_with(options(url)?)
        .await
        .with_context(|| format!("could not connect to {}", crate::config::redact_url(url)))
}

/// Whether `err` means the database could not be asked (down, restarting, every connection
/// busy past the pool's timeout) rather than that the query was wrong: a service answers it as
/// UNAVAILABLE, which a client retries, not as INTERNAL.
pub fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        // admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections
        sqlx::Error::Database(db) => {
            matches!(
                db.code().as_deref(),
                Some("57P01" | "57P02" | "57P03" | "53300")
            )
        }
        _ => false,
    }
}

/// Whether Postgres rolled `err`'s transaction back to let a concurrent one through
/// (deadlock_detected, serialization_failure): nothing was written and the same call again
/// works, so a service answers it as ABORTED, not as INTERNAL.
pub fn is_contended(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .and_then(|db| db.code())
        .is_some_and(|code| matches!(code.as_ref(), "40P01" | "40001"))
}

/// The connection options of `url`. A server on this machine is reached without TLS unless the
/// URL asks for it (`sslmode=`): sqlx would otherwise negotiate TLS with any server offering it,
/// and encrypting loopback traffic protects nothing while costing both ends CPU on every query.
fn options(url: &str) -> anyhow::Result<PgConnectOptions> {
    let options: PgConnectOptions = url
        .parse()
        .with_context(|| format!("{} is not a Postgres URL", crate::config::redact_url(url)))?;
    let loopback = matches!(options.get_host(), "localhost" | "127.0.0.1" | "::1")
        || options.get_host().starts_with('/');
    Ok(if loopback && !url.contains("sslmode=") {
        options.ssl_mode(PgSslMode::Disable)
    } else {
        options
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_goes_without_tls_unless_the_url_asks_for_it() {
        let mode = |url| format!("{:?}", options(url).unwrap().get_ssl_mode());
        assert_eq!(mode("postgres://postgres@127.0.0.1:5432/db"), "Disable");
        assert_eq!(mode("postgres://postgres@localhost/db"), "Disable");
        assert_eq!(
            mode("postgres://postgres@127.0.0.1/db?sslmode=require"),
            "Require"
        );
        assert_eq!(mode("postgres://postgres@db.internal:5432/db"), "Prefer");
    }
}
