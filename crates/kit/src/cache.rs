//! A shared Redis connection for caches and counters.
//!
//! One multiplexed connection serves every task of the process (pooling per request costs a
//! round trip for nothing). It connects lazily and reconnects by itself; every command has a
//! short timeout, so callers can treat an unreachable Redis as a miss and carry on.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{IntoConnectionInfo, ProtocolVersion, PushInfo};

#[derive(Clone)]
pub struct Redis {
    connection: ConnectionManager,
    /// Put before every key: empty in production, unique per test.
    prefix: String,
}

impl Redis {
    pub fn new(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        let connection = ConnectionManager::new_lazy_with_config(client, Self::config())?;
        Ok(Self {
            connection,
            prefix: prefix.to_owned(),
        })
    }

    /// A connection speaking RESP3 that hands every push message to `on_push` as it arrives:
    /// invalidations of keys it reads under `CLIENT TRACKING`, and the `Disconnection` the
    /// library reports when the connection drops (a new one starts with no tracking and knows
    /// nothing of what the old one was told).
    pub fn with_pushes(
        url: &str,
        prefix: &str,
        on_push: impl Fn(PushInfo) + Send + Sync + 'static,
    ) -> anyhow::Result<Self> {
        let info = url.into_connection_info()?;
        let resp3 = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(resp3))?;
        let config = Self::config().set_push_sender(move |push| {
            on_push(push);
            Ok::<(), std::convert::Infallible>(())
        });
        let connection = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Self {
            connection,
            prefix: prefix.to_owned(),
        })
    }

    fn config() -> ConnectionManagerConfig {
        ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Duration::from_millis(500)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1))
    }

    pub fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The connection, for commands this type does not wrap.
    pub fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }

    pub async fn ping(&self) -> bool {
        let mut connection = self.connection.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .is_ok()
    }
}
