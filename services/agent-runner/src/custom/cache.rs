//! The custom agents compiled from their stored definitions, kept so that a definition is
//! compiled (its schemas parsed, its patterns built, its templates parsed) once per revision
//! rather than on every get, list and run.
//!
//! An entry is keyed by tenant and name and holds the agent at one revision, stamped with the
//! revision and the time it was written: a definition deleted and defined again starts at
//! revision 1 once more, and the time tells the two apart. A new revision replaces the entry.
//! Replicas each keep their own, and each load asks Postgres whether the stamp is still
//! current (the query that finds the agent does, so it costs no extra round trip).
//!
//! The cache is bounded by an estimate of the memory its agents hold
//! (`SANKALPA_AGENTS_DEFINITION_CACHE_BYTES`): a definition's JSON several times over (the
//! document, its schemas' sources, the compiled nodes and templates) and the most its
//! compiled patterns may take. The least recently used agents leave first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::CustomAgent;

/// How many times its JSON a compiled definition is taken to hold in memory: the document,
/// the two schemas' sources, and the parsed nodes and templates, each about as large or less.
const MEMORY_PER_DEFINITION_BYTE: usize = 8;

/// What identifies one revision of a stored definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub revision: u64,
    pub updated_at: DateTime<Utc>,
}

impl Stamp {
    pub fn of(agent: &CustomAgent) -> Self {
        Self {
            revision: agent.revision,
            updated_at: agent.updated_at,
        }
    }
}

struct Entry {
    agent: Arc<CustomAgent>,
    stamp: Stamp,
    weight: usize,
    last_used: u64,
}

#[derive(Default)]
struct Entries {
    by_name: HashMap<(Uuid, String), Entry>,
    weight: usize,
    /// Counts uses, to find the least recently used entry.
    clock: u64,
}

/// The compiled custom agents, by tenant and name.
pub struct CompiledAgents {
    entries: Mutex<Entries>,
    capacity_bytes: usize,
}

impl CompiledAgents {
    pub fn new(capacity_bytes: usize) -> Self {
        Self {
            entries: Mutex::new(Entries::default()),
            capacity_bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries
            .lock()
            .expect("the compiled agents' lock is never poisoned")
    }

    /// The stamp of the tenant's agent `name` as cached, if it is.
    pub fn stamp(&self, tenant: Uuid, name: &str) -> Option<Stamp> {
        self.lock()
            .by_name
            .get(&(tenant, name.to_owned()))
            .map(|entry| entry.stamp)
    }

    /// The tenant's agent `name` if it is cached at `stamp`.
    pub fn get(&self, tenant: Uuid, name: &str, stamp: Stamp) -> Option<Arc<CustomAgent>> {
        let mut entries = self.lock();
        entries.clock += 1;
        let now = entries.clock;
        let entry = entries.by_name.get_mut(&(tenant, name.to_owned()))?;
        if entry.stamp != stamp {
            return None;
        }
        entry.last_used = now;
        Some(entry.agent.clone())
    }

    /// Keeps `agent` (of `tenant`), replacing what was kept under its name, and
    /// lets the least recently used agents go until the cache is within its bound. An agent
    /// larger than the whole bound is not kept.
    pub fn insert(&self, tenant: Uuid, agent: Arc<CustomAgent>) {
        let stamp = Stamp::of(&agent);
        let weight = weight(&agent);
        let mut entries = self.lock();
        let key = (tenant, agent.spec.name.clone());
        if let Some(replaced) = entries.by_name.remove(&key) {
            entries.weight -= replaced.weight;
        }
        if weight > self.capacity_bytes {
            return;
        }
        while entries.weight + weight > self.capacity_bytes {
            let Some(oldest) = entries
                .by_name
                .iter()
                .min_by_key(|(_, entry)| entry.last_used)
                .map(|(key, _)| key.clone())
            else {
                break;
            };
            if let Some(evicted) = entries.by_name.remove(&oldest) {
                entries.weight -= evicted.weight;
            }
        }
        entries.clock += 1;
        let last_used = entries.clock;
        entries.weight += weight;
        entries.by_name.insert(
            key,
            Entry {
                agent,
                stamp,
                weight,
                last_used,
            },
        );
    }
}

/// An estimate of the memory a compiled custom agent holds, in bytes.
fn weight(agent: &CustomAgent) -> usize {
    let definition = sankalpa_kit::bounded_json::len_within(&agent.definition, usize::MAX);
    definition.unwrap_or_default() * MEMORY_PER_DEFINITION_BYTE
        + agent.spec.input.pattern_bytes()
        + agent.spec.output.pattern_bytes()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::custom::compile::compile;

    fn agent(name: &str, revision: u64, pattern: &str) -> Arc<CustomAgent> {
        let definition = json!({
            "name": name, "category": "custom", "description": "d", "version": "1.0.0",
            "input_schema": {"type": "object", "properties": {"a": {"type": "string", "pattern": pattern}}},
            "output_schema": {"type": "object"},
            "template": {"output": {"a": "{{ a }}"}}
        });
        let (spec, behaviour) = compile(&definition).expect("a valid definition");
        Arc::new(CustomAgent {
            spec,
            behaviour,
            definition,
            revision,
            created_by: "u".to_owned(),
            created_at: DateTime::UNIX_EPOCH,
            updated_at: DateTime::UNIX_EPOCH,
            installed_from: String::new(),
        })
    }

    #[test]
    fn an_agent_is_found_at_its_stamp_only() {
        let cache = CompiledAgents::new(1 << 20);
        let tenant = Uuid::new_v4();
        let first = agent("a", 1, "^x$");
        let stamp = Stamp::of(&first);
        cache.insert(tenant, first);
        assert!(cache.get(tenant, "a", stamp).is_some());
        assert!(cache.get(Uuid::new_v4(), "a", stamp).is_none());
        let later = Stamp {
            revision: 2,
            ..stamp
        };
        assert!(cache.get(tenant, "a", later).is_none());
        cache.insert(tenant, agent("a", 2, "^x$"));
        assert_eq!(cache.stamp(tenant, "a"), Some(later));
    }

    #[test]
    fn the_least_recently_used_agents_leave_first_to_keep_within_the_bound() {
        let one = weight(&agent("a", 1, "^x$"));
        let cache = CompiledAgents::new(3 * one);
        let tenant = Uuid::new_v4();
        for name in ["a", "b", "c"] {
            cache.insert(tenant, agent(name, 1, "^x$"));
        }
        let stamp = Stamp::of(&agent("a", 1, "^x$"));
        assert!(cache.get(tenant, "a", stamp).is_some());
        cache.insert(tenant, agent("d", 1, "^x$"));
        assert!(
            cache.stamp(tenant, "b").is_none(),
            "b was used least recently"
        );
        for name in ["a", "c", "d"] {
            assert!(cache.stamp(tenant, name).is_some(), "{name}");
        }
        // An agent with a pattern that needs the large bound outweighs the whole cache.
        cache.insert(tenant, agent("e", 1, "^[a-z]{1000}$"));
        assert!(cache.stamp(tenant, "e").is_none());
    }
}
