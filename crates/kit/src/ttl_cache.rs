//! A small in-process map whose entries live for a time, bounded in count: what a service
//! remembers for seconds to spare a round trip (an exchanged API key, a user's profile, a run's
//! access token).
//!
//! Past its capacity, expired entries are swept first; if every entry is still live the map is
//! emptied, since refilling it costs only the round trips the cache saves, while growing it
//! without bound would let a client spend the process's memory.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct TtlCache<K, V> {
    capacity: usize,
    entries: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The value under `key`, if it has not expired.
    pub fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.lock().expect("ttl cache lock poisoned");
        let (value, until) = entries.get(key)?;
        (Instant::now() < *until).then(|| value.clone())
    }

    /// Remembers `value` for `ttl`; a zero `ttl` remembers nothing.
    pub fn insert(&self, key: K, value: V, ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut entries = self.entries.lock().expect("ttl cache lock poisoned");
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.retain(|_, (_, until)| *until > now);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(key, (value, now + ttl));
    }

    /// Forgets `key`, giving what was remembered, expired or not.
    pub fn remove(&self, key: &K) -> Option<V> {
        self.entries
            .lock()
            .expect("ttl cache lock poisoned")
            .remove(key)
            .map(|(value, _)| value)
    }

    pub fn len(&self) -> usize {
        self.entries.lock().expect("ttl cache lock poisoned").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_lives_for_its_ttl_and_no_longer() {
        let cache = TtlCache::new(4);
        cache.insert("a", 1, Duration::from_millis(30));
        cache.insert("zero", 2, Duration::ZERO);
        assert_eq!(cache.get(&"a"), Some(1));
        assert_eq!(cache.get(&"zero"), None);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(cache.get(&"a"), None);
        assert_eq!(cache.remove(&"a"), Some(1));
        assert!(cache.is_empty());
    }

    #[test]
    fn it_never_holds_more_than_its_capacity() {
        let cache = TtlCache::new(3);
        cache.insert(0, 0, Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(5));
        for key in 1..3 {
            cache.insert(key, key, Duration::from_secs(60));
        }
        // Full: the expired entry is swept, the live ones stay.
        cache.insert(3, 3, Duration::from_secs(60));
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get(&1), Some(1));
        // Full of live entries: emptied rather than grown.
        cache.insert(4, 4, Duration::from_secs(60));
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.get(&4), Some(4));
        // Replacing a key already there is not growth.
        for _ in 0..10 {
            cache.insert(4, 5, Duration::from_secs(60));
        }
        assert_eq!(cache.get(&4), Some(5));
    }
}
