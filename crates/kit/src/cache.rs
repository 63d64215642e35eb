//! A shared Redis connection for caches and counters.
//!
//! By default one multiplexed connection serves every task of the process: it pipelines every
//! caller's commands over one socket, so a command costs one round trip and nothing else. With
//! `SANKALPA_REDIS_POOL_SIZE` above 0 a deadpool-redis pool of that many multiplexed connections
//! serves instead; a checkout from it costs one more round trip (the pool's PING of the
//! connection it hands out), which the A/B in docs/benchmarks.md weighs against spreading the
//! load over several sockets. Either connects lazily and reconnects by itself; every command has
//! a short timeout, so callers can treat an unreachable Redis as a miss and carry on.

use std::time::Duration;

use deadpool_redis::{Manager, Pool, Runtime};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{
    AsyncConnectionConfig, Cmd, ErrorKind, IntoConnectionInfo, Pipeline, ProtocolVersion, PushInfo,
    RedisError, RedisFuture, RedisResult, Value,
};

/// The largest pool `SANKALPA_REDIS_POOL_SIZE` may ask for: Redis serves each connection from
/// one thread, so past a few per process more sockets only add idle ones.
pub const MAX_POOL_SIZE: usize = 64;

/// How long a command, a connection attempt or a wait for a pooled connection may take.
const TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub struct Redis {
    connections: Connections,
    /// Put before every key: empty in production, unique per test.
    prefix: String,
}

#[derive(Clone)]
enum Connections {
    Shared(ConnectionManager),
    Pool(Pool),
}

/// A connection to run commands on: the shared one, or one checked out of the pool (back in it
/// when dropped).
pub enum Connection {
    Shared(ConnectionManager),
    Pooled(deadpool_redis::Connection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Shared(connection) => connection.req_packed_command(cmd),
            Self::Pooled(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Shared(connection) => connection.req_packed_commands(pipeline, offset, count),
            Self::Pooled(connection) => connection.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Shared(connection) => connection.get_db(),
            Self::Pooled(connection) => connection.get_db(),
        }
    }
}

impl Redis {
    /// One shared connection to `url` when `pool_size` is 0, else a pool of that many.
    pub fn new(url: &str, prefix: &str, pool_size: usize) -> anyhow::Result<Self> {
        anyhow::ensure!(
            pool_size <= MAX_POOL_SIZE,
            "SANKALPA_REDIS_POOL_SIZE is {pool_size}, at most {MAX_POOL_SIZE}"
        );
        let connections = if pool_size == 0 {
            let client = redis::Client::open(url)?;
            Connections::Shared(ConnectionManager::new_lazy_with_config(
                client,
                Self::config(),
            )?)
        } else {
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(TIMEOUT))
                .set_response_timeout(Some(TIMEOUT));
            let manager = Manager::new_with_config(url, config)?;
            Connections::Pool(
                Pool::builder(manager)
                    .max_size(pool_size)
                    .wait_timeout(Some(TIMEOUT))
                    .create_timeout(Some(TIMEOUT))
                    .recycle_timeout(Some(TIMEOUT))
                    .runtime(Runtime::Tokio1)
                    .build()?,
            )
        };
        Ok(Self {
            connections,
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
            connections: Connections::Shared(connection),
            prefix: prefix.to_owned(),
        })
    }

    fn config() -> ConnectionManagerConfig {
        ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1))
    }

    pub fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A connection for commands this type does not wrap; an error when the pool has none to
    /// give within the timeout.
    pub async fn connection(&self) -> RedisResult<Connection> {
        match &self.connections {
            Connections::Shared(connection) => Ok(Connection::Shared(connection.clone())),
            Connections::Pool(pool) => pool.get().await.map(Connection::Pooled).map_err(|err| {
                RedisError::from((ErrorKind::Io, "no pooled Redis connection", err.to_string()))
            }),
        }
    }

    pub async fn ping(&self) -> bool {
        let Ok(mut connection) = self.connection().await else {
            return false;
        };
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .is_ok()
    }
}
