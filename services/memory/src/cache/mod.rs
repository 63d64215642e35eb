//! The read-through cache of single entries in Redis.
//!
//! A load looks in Redis first; on a miss it reads Postgres and offers what it read back to the
//! cache. A write, once committed, offers its new entry (or a tombstone for a removed key) the
//! same way. Every cached value carries the entry's `revision`, which a Postgres sequence hands
//! out to every write of a key in commit order, and one Lua script stores an offer only when it
//! is newer than what the cache holds: so a reader that read before a write and refills after
//! it cannot put the old value back. A tombstone is never served; it only blocks such refills.
//!
//! Redis can only make loads faster. Any error is a miss (and a skipped offer); a cached value
//! lives at most `ttl`, which bounds how stale a key can be if a write committed but could not
//! reach Redis, and never past the entry's own expiry.
//!
//! In front of Redis sits a small in-process tier ([`near`]), filled from Redis reads and
//! kept coherent by Redis's invalidation pushes; a load it holds costs no round trip at all.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sankalpa_kit::cache::Redis;
use uuid::Uuid;

use crate::entry::Entry;

mod near;
use near::Near;

/// Stores ARGV[2] under KEYS[1] for ARGV[3] ms unless the value there has a revision (its
/// leading digits) of ARGV[1] or more.
const OFFER: &str = r"
local current = redis.call('GET', KEYS[1])
if current then
  local revision = tonumber(string.match(current, '^(%d+):'))
  if revision and revision >= tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
";

/// A committed change to one key, to offer to the cache.
pub enum Change<'a> {
    Written(&'a Entry),
    Removed { key: &'a str, revision: i64 },
}

pub struct EntryCache {
    redis: Redis,
    ttl: Duration,
    offer: redis::Script,
    /// The in-process tier and the tracking connection its reads go over, unless disabled.
    near: Option<(Arc<Near>, Redis)>,
}

impl EntryCache {
    /// The cache in `redis`, with an in-process tier of `near_bytes` (0: none) whose reads go
    /// over a tracking connection to `redis_url`.
    pub fn new(
        redis: Redis,
        redis_url: &str,
        ttl: Duration,
        near_bytes: usize,
    ) -> anyhow::Result<Self> {
        let near = if near_bytes == 0 {
            None
        } else {
            let near = Arc::new(Near::new(near_bytes, ttl));
            let pushed = near.clone();
            let tracking =
                Redis::with_pushes(redis_url, redis.prefix(), move |push| pushed.on_push(&push))?;
            Some((near, tracking))
        };
        Ok(Self {
            redis,
            ttl,
            offer: redis::Script::new(OFFER),
            near,
        })
    }

    /// The Redis key of an entry. The session id's length makes the key unambiguous whatever
    /// the session id and key contain.
    fn redis_key(&self, tenant: Uuid, session: &str, key: &str) -> String {
        self.redis.key(&format!(
            "memory:{tenant}:{}:{session}:{key}",
            session.len()
        ))
    }

    /// The cached entry, when the in-process tier or Redis holds a live one.
    pub async fn get(&self, tenant: Uuid, session: &str, key: &str) -> Option<Entry> {
        let redis_key = self.redis_key(tenant, session, key);
        let Some((near, tracking)) = &self.near else {
            let found = self.read(&self.redis, &redis_key, key).await;
            return counted(found, "hit");
        };
        if let Some(entry) = near.get(&redis_key) {
            return counted(Some(entry), "near");
        }
        let generation = near.generation();
        let found = self.read(tracking, &redis_key, key).await;
        if let Some(entry) = &found {
            near.keep(redis_key, entry.clone(), generation);
        }
        counted(found, "hit")
    }

    /// A live entry from Redis; with an in-process tier, `redis` is its tracking connection.
    async fn read(&self, redis: &Redis, redis_key: &str, key: &str) -> Option<Entry> {
        let mut read = redis::pipe();
        if self.near.is_some() {
            // In the GET's pipeline, so the connection that reads the key is one that tracks it;
            // named, so operators can tell it in CLIENT LIST.
            read.cmd("CLIENT")
                .arg("SETNAME")
                .arg(format!("memory-near:{}", self.redis.prefix()))
                .ignore()
                .cmd("CLIENT")
                .arg("TRACKING")
                .arg("ON")
                .ignore();
        }
        read.cmd("GET").arg(redis_key);
        let cached = match redis.connection().await {
            Ok(mut connection) => read.query_async::<(Option<String>,)>(&mut connection).await,
            Err(err) => Err(err),
        };
        let cached = match cached {
            Ok((cached,)) => cached,
            Err(err) => {
                failed("get", &err);
                return None;
            }
        };
        // A tombstone, an unreadable value or an expired entry is a miss like no value at all.
        cached
            .and_then(|cached| decode(key, &cached))
            .filter(|entry| entry.expires_at.is_none_or(|at| at > Utc::now()))
    }

    /// Offers committed changes; each is stored unless the cache already knows a newer one.
    pub async fn offer(&self, tenant: Uuid, session: &str, changes: &[Change<'_>]) {
        let offers = changes.iter().filter_map(|change| {
            let (key, revision, value, ttl) = match change {
                Change::Written(entry) => {
                    let ttl = match entry.expires_at {
                        Some(at) => {
                            let left = (at - Utc::now()).to_std().ok()?;
                            left.min(self.ttl)
                        }
                        None => self.ttl,
                    };
                    (entry.key.as_str(), entry.revision, encode(entry), ttl)
                }
                Change::Removed { key, revision } => {
                    (*key, *revision, format!("{revision}:"), self.ttl)
                }
            };
            let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
            Some(self.store(
                self.redis_key(tenant, session, key),
                revision,
                value,
                millis,
            ))
        });
        futures::future::join_all(offers).await;
    }

    async fn store(&self, redis_key: String, revision: i64, value: String, millis: u64) {
        let stored = match self.redis.connection().await {
            Ok(mut connection) => {
                self.offer
                    .key(&redis_key)
                    .arg(revision)
                    .arg(value)
                    .arg(millis)
                    .invoke_async::<i64>(&mut connection)
                    .await
            }
            Err(err) => Err(err),
        };
        if let Err(err) = stored {
            failed("offer", &err);
        }
        // Only now: a read of this tier that started before Redis held the change is turned
        // away, and the caller, answered after this, reads its own write.
        if let Some((near, _)) = &self.near {
            near.forget(&redis_key);
        }
    }
}

/// Counts the lookup: a hit where it was found (`near` or `hit` for Redis), else a miss.
fn counted(found: Option<Entry>, hit: &'static str) -> Option<Entry> {
    let result = if found.is_some() { hit } else { "miss" };
    metrics::counter!("memory_cache_lookups_total", "result" => result).increment(1);
    found
}

fn failed(operation: &'static str, err: &redis::RedisError) {
    metrics::counter!("memory_cache_errors_total", "operation" => operation).increment(1);
    tracing::debug!(error = %err, operation, "the entry cache is unavailable");
}

/// `revision:version:created:updated:expires:value`, times in microseconds, `expires` empty
/// when the entry does not expire. The value comes last, so it may hold any character.
fn encode(entry: &Entry) -> String {
    format!(
        "{}:{}:{}:{}:{}:{}",
        entry.revision,
        entry.version,
        entry.created_at.timestamp_micros(),
        entry.updated_at.timestamp_micros(),
        entry
            .expires_at
            .map(|at| at.timestamp_micros().to_string())
            .unwrap_or_default(),
        entry.value,
    )
}

/// The entry `encode` wrote, or `None` for a tombstone (or anything unreadable).
fn decode(key: &str, cached: &str) -> Option<Entry> {
    let mut fields = cached.splitn(6, ':');
    let revision = fields.next()?.parse().ok()?;
    let version = fields.next()?.parse().ok()?;
    let created_at = micros(fields.next()?)?;
    let updated_at = micros(fields.next()?)?;
    let expires_at = match fields.next()? {
        "" => None,
        at => Some(micros(at)?),
    };
    let value = fields.next()?.to_owned();
    Some(Entry {
        key: key.to_owned(),
        value,
        version,
        revision,
        created_at,
        updated_at,
        expires_at,
    })
}

fn micros(text: &str) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(text.parse().ok()?)
}

/// Describes the cache's metrics and registers them at zero for every result and operation.
pub fn describe_metrics() {
    metrics::describe_counter!(
        "memory_cache_lookups_total",
        "Reads of the Redis cache, by result (hit, near, miss)."
    );
    metrics::describe_counter!(
        "memory_cache_errors_total",
        "Redis failures of the cache, by operation (get, offer); the read falls back to Postgres."
    );
    for result in ["hit", "near", "miss"] {
        metrics::counter!("memory_cache_lookups_total", "result" => result).increment(0);
    }
    for operation in ["get", "offer"] {
        metrics::counter!("memory_cache_errors_total", "operation" => operation).increment(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_survives_encoding_and_a_tombstone_reads_as_nothing() {
        let now = DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap();
        let entry = Entry {
            key: "a:b".into(),
            value: r#"{"x":"1:2:3"}"#.into(),
            version: 3,
            revision: 77,
            created_at: now,
            updated_at: now,
            expires_at: Some(now),
        };
        let decoded = decode("a:b", &encode(&entry)).unwrap();
        assert_eq!(decoded.value, entry.value);
        assert_eq!(decoded.version, 3);
        assert_eq!(decoded.revision, 77);
        assert_eq!(decoded.expires_at, Some(now));
        assert!(decode("a:b", "78:").is_none());
    }
}
