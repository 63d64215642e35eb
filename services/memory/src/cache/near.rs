//! The in-process tier of the entry cache: entries this replica read from Redis lately, served
//! without a round trip, and dropped as soon as Redis says they changed.
//!
//! Coherence comes from Redis's server-assisted client-side caching. Every Redis read that may
//! fill this tier goes over one RESP3 connection, in a pipeline with `CLIENT TRACKING ON`, so
//! the connection that reads a key is one that tracks it; Redis then pushes an invalidation of
//! the key when any client changes it, as every write of every replica does through the
//! cache's offers. An invalidation removes the key here; a dropped connection empties the
//! tier, since a new connection is told nothing of what the old one missed. A read that raced
//! with either is not kept: every push and every local write advances a generation, and what a
//! read brought back is stored only if the generation is still the one it started under.
//!
//! A write through this replica removes the key here once its new value is in Redis, before it
//! answers, so its caller reads its own write; other replicas drop theirs when Redis's push
//! reaches them, moments after the write reached Redis, when their Redis reads would have
//! changed too. Without Redis the tier holds nothing: it is only filled from Redis reads.
//!
//! Bounded by bytes: an entry over [`MAX_ENTRY_BYTES`] is not kept, and the oldest entries go
//! first. An entry is kept at most the cache's TTL and never past its own expiry.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::Utc;
use redis::{PushInfo, PushKind, Value};

use crate::entry::Entry;

/// The largest entry (value and key) kept here; larger ones are read from Redis every time.
pub const MAX_ENTRY_BYTES: usize = 64 * 1024;

pub struct Near {
    tier: Mutex<Tier>,
    budget: usize,
    ttl: Duration,
}

#[derive(Default)]
struct Tier {
    /// By Redis key.
    entries: HashMap<String, Held>,
    /// Keys in the order they were stored, with the number of that store: a place whose key
    /// was stored again or removed since is skipped when it comes up for eviction.
    order: VecDeque<(String, u64)>,
    bytes: usize,
    stores: u64,
    generation: u64,
}

struct Held {
    entry: Entry,
    until: Instant,
    bytes: usize,
    stored: u64,
}

impl Near {
    /// A tier of at most `budget` bytes whose entries live at most `ttl`.
    pub fn new(budget: usize, ttl: Duration) -> Self {
        Self {
            tier: Mutex::default(),
            budget,
            ttl,
        }
    }

    fn tier(&self) -> std::sync::MutexGuard<'_, Tier> {
        self.tier.lock().expect("the near cache is never poisoned")
    }

    /// The entry under `redis_key`, if held and live.
    pub fn get(&self, redis_key: &str) -> Option<Entry> {
        let tier = self.tier();
        let held = tier.entries.get(redis_key)?;
        (held.until > Instant::now()).then(|| held.entry.clone())
    }

    /// Where reads stand now: pass it to [`keep`](Self::keep) with what a read brings back.
    pub fn generation(&self) -> u64 {
        self.tier().generation
    }

    /// Stores `entry`, read from Redis under `redis_key`, unless anything changed since
    /// `generation` (the read may have raced with a change) or it is too large to hold.
    pub fn keep(&self, redis_key: String, entry: Entry, generation: u64) {
        let bytes = redis_key.len() + entry.key.len() + entry.value.len();
        if bytes > MAX_ENTRY_BYTES || bytes > self.budget {
            return;
        }
        let mut lifetime = self.ttl;
        if let Some(expires_at) = entry.expires_at {
            match (expires_at - Utc::now()).to_std() {
                Ok(left) => lifetime = lifetime.min(left),
                Err(_) => return,
            }
        }
        let mut tier = self.tier();
        if tier.generation != generation {
            return;
        }
        tier.stores += 1;
        let stored = tier.stores;
        let held = Held {
            entry,
            until: Instant::now() + lifetime,
            bytes,
            stored,
        };
        if let Some(replaced) = tier.entries.insert(redis_key.clone(), held) {
            tier.bytes -= replaced.bytes;
        }
        tier.bytes += bytes;
        tier.order.push_back((redis_key, stored));
        while tier.bytes > self.budget {
            let Some((oldest, stored)) = tier.order.pop_front() else {
                break;
            };
            if tier.is_current(&oldest, stored) {
                tier.remove(&oldest);
            }
        }
        // Keys stored again and again leave places behind; sweep them before they outnumber
        // the entries.
        if tier.order.len() > 2 * tier.entries.len() + 64 {
            let order = std::mem::take(&mut tier.order);
            tier.order = order
                .into_iter()
                .filter(|(key, stored)| tier.is_current(key, *stored))
                .collect();
        }
    }

    /// Drops `redis_key`, whose value just changed, and turns away reads that started before.
    pub fn forget(&self, redis_key: &str) {
        let mut tier = self.tier();
        tier.generation += 1;
        tier.remove(redis_key);
    }

    /// Acts on a push of the tracking connection: an invalidation drops its keys (all of them
    /// when Redis sends none, as after FLUSHALL), a lost connection drops everything.
    pub fn on_push(&self, push: &PushInfo) {
        let mut tier = self.tier();
        match (&push.kind, push.data.first()) {
            (PushKind::Invalidate, Some(Value::Array(keys))) => {
                tier.generation += 1;
                for key in keys {
                    if let Value::BulkString(key) = key {
                        tier.remove(&String::from_utf8_lossy(key));
                    }
                }
            }
            (PushKind::Invalidate, _) | (PushKind::Disconnection, _) => {
                tier.generation += 1;
                tier.entries.clear();
                tier.order.clear();
                tier.bytes = 0;
            }
            _ => {}
        }
    }
}

impl Tier {
    fn is_current(&self, redis_key: &str, stored: u64) -> bool {
        self.entries
            .get(redis_key)
            .is_some_and(|held| held.stored == stored)
    }

    fn remove(&mut self, redis_key: &str) {
        if let Some(held) = self.entries.remove(redis_key) {
            self.bytes -= held.bytes;
        }
        // Its place in `order` stays until eviction reaches it, and is skipped then.
        if self.entries.is_empty() {
            self.order.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, value: &str) -> Entry {
        let now = Utc::now();
        Entry {
            key: key.to_owned(),
            value: value.to_owned(),
            version: 1,
            revision: 1,
            created_at: now,
            updated_at: now,
            expires_at: None,
        }
    }

    fn invalidate(keys: &[&str]) -> PushInfo {
        PushInfo {
            kind: PushKind::Invalidate,
            data: vec![Value::Array(
                keys.iter()
                    .map(|key| Value::BulkString(key.as_bytes().to_vec()))
                    .collect(),
            )],
        }
    }

    #[test]
    fn a_read_that_raced_with_a_change_is_not_kept() {
        let near = Near::new(1 << 20, Duration::from_secs(10));
        let before = near.generation();
        near.on_push(&invalidate(&["r:a"]));
        near.keep("r:a".into(), entry("a", "1"), before);
        assert!(near.get("r:a").is_none());

        let now = near.generation();
        near.keep("r:a".into(), entry("a", "2"), now);
        assert_eq!(near.get("r:a").unwrap().value, "2");
    }

    #[test]
    fn pushes_and_local_writes_drop_what_they_name_and_a_lost_connection_drops_all() {
        let near = Near::new(1 << 20, Duration::from_secs(10));
        for key in ["r:a", "r:b", "r:c"] {
            near.keep(key.into(), entry(key, "v"), near.generation());
        }
        near.on_push(&invalidate(&["r:a"]));
        near.forget("r:b");
        assert!(near.get("r:a").is_none() && near.get("r:b").is_none());
        assert!(near.get("r:c").is_some());

        near.on_push(&PushInfo {
            kind: PushKind::Disconnection,
            data: Vec::new(),
        });
        assert!(near.get("r:c").is_none());
    }

    #[test]
    fn the_oldest_entries_make_room_and_large_or_expired_ones_are_not_kept() {
        let near = Near::new(3 * 1024, Duration::from_secs(10));
        let value = "x".repeat(1000);
        for key in ["r:1", "r:2", "r:3", "r:4"] {
            near.keep(key.into(), entry(key, &value), near.generation());
        }
        assert!(near.get("r:1").is_none(), "the oldest went to make room");
        assert!(near.get("r:4").is_some() && near.get("r:2").is_some());

        let roomy = Near::new(1 << 30, Duration::from_secs(10));
        roomy.keep(
            "r:big".into(),
            entry("big", &"x".repeat(MAX_ENTRY_BYTES)),
            0,
        );
        assert!(roomy.get("r:big").is_none());
        let mut expired = entry("old", "v");
        expired.expires_at = Some(Utc::now() - chrono::Duration::seconds(1));
        roomy.keep("r:old".into(), expired, 0);
        assert!(roomy.get("r:old").is_none());
    }
}
