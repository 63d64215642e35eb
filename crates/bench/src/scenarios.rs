//! The request scenarios: each a name, how to build its request, the concurrencies to drive it
//! at and the floor it is judged against. A new scenario is one more entry in [`all`].

use std::sync::atomic::Ordering;

use reqwest::RequestBuilder;
use serde_json::json;

use crate::floors::{HOP, HTTP_ECHO};
use crate::session::{CACHED_KEY, Session};

const CONCURRENCIES: &[usize] = &[1, 64];
/// Issue 6 states the search target at 16 concurrent clients.
const SEARCH_CONCURRENCIES: &[usize] = &[1, 16];
/// Saves cycle through this many keys, so concurrent saves write different rows, as agents of
/// different runs do, rather than all queueing on one row's lock.
const SAVE_KEYS: u64 = 1024;

pub struct Scenario {
    pub name: &'static str,
    pub request: fn(&Session) -> RequestBuilder,
    pub concurrencies: &'static [usize],
    /// What bounds it: the gateway alone answers against the HTTP echo; a call to a service
    /// behind it against the HTTP-to-gRPC hop.
    pub floor: &'static str,
}

pub fn all() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "GET /api/status",
            request: |s| s.client.get(s.url("/api/status")),
            concurrencies: CONCURRENCIES,
            floor: HTTP_ECHO,
        },
        Scenario {
            name: "GET /api/users/me",
            request: |s| {
                s.client
                    .get(s.url("/api/users/me"))
                    .bearer_auth(&s.access_token)
            },
            concurrencies: CONCURRENCIES,
            floor: HTTP_ECHO,
        },
        Scenario {
            name: "POST /api/memory/load (cached key)",
            request: |s| {
                s.client
                    .post(s.url("/api/memory/load"))
                    .bearer_auth(&s.access_token)
                    .json(&json!({ "session_id": s.memory_session, "key": CACHED_KEY }))
            },
            concurrencies: CONCURRENCIES,
            floor: HOP,
        },
        Scenario {
            name: "POST /api/memory/save",
            request: |s| {
                let n = s.saves.fetch_add(1, Ordering::Relaxed);
                s.client
                    .post(s.url("/api/memory/save"))
                    .bearer_auth(&s.access_token)
                    .json(&json!({
                        "session_id": s.memory_session,
                        "key": format!("k{}", n % SAVE_KEYS),
                        "value": { "step": "plan", "n": n },
                    }))
            },
            concurrencies: CONCURRENCIES,
            floor: HOP,
        },
        Scenario {
            name: "POST /api/agents/execute (hello_world)",
            request: |s| {
                s.client
                    .post(s.url("/api/agents/execute"))
                    .bearer_auth(&s.access_token)
                    .json(&json!({ "agent": "hello_world", "input": { "name": "bench" } }))
            },
            concurrencies: CONCURRENCIES,
            floor: HOP,
        },
        Scenario {
            // Bounded by argon2id on purpose: reported, not a target.
            name: "POST /api/users/login",
            request: |s| {
                s.client
                    .post(s.url("/api/users/login"))
                    .json(&s.credentials)
            },
            concurrencies: CONCURRENCIES,
            floor: HOP,
        },
        Scenario {
            name: "GET /api/marketplace?q=... (10,000 items, Zipf mix)",
            request: |s| {
                let n = s.searches.fetch_add(1, Ordering::Relaxed);
                s.client
                    .get(s.url(&format!("/api/marketplace?{}", s.search_mix.query(n))))
                    .bearer_auth(&s.access_token)
            },
            concurrencies: SEARCH_CONCURRENCIES,
            floor: HOP,
        },
    ]
}
