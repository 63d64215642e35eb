//! The runs in flight on this replica, by tenant and run id: how CancelAgentRun finds a run, how
//! a request for a run id already in flight attaches to that run (or is refused, when it asks
//! for something else), and how a tenant's runs at once are counted against its quota.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sankalpa_kit::problem::Quota;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::error::{Result, RunnerError};
use crate::outcome::{Asked, Run};

/// The runs in flight, by (tenant, run id), and how many each tenant has: a tenant may have at
/// most `max_per_tenant` at once on this replica (0: any number). Counted here rather than in
/// a shared store because runs start at thousands a second and the count must cost no round
/// trip; with N replicas behind a balancer a tenant can have up to N times the limit.
pub struct InFlight {
    runs: Mutex<Runs>,
    max_per_tenant: usize,
}

#[derive(Default)]
struct Runs {
    by_id: HashMap<(String, String), Entry>,
    /// Only tenants with a run in flight are here, so the map stays as small as the load.
    per_tenant: HashMap<String, usize>,
}

/// A run in flight: how to cancel it, what it was asked, and its outcome once there.
struct Entry {
    cancel: CancellationToken,
    asked: Asked,
    outcome: watch::Receiver<Option<Arc<Run>>>,
}

/// What [`InFlight::register`] found.
pub enum Slot {
    /// The run is the caller's to run: it announces its outcome on `outcome`.
    New {
        registration: Registration,
        cancel: CancellationToken,
        outcome: watch::Sender<Option<Arc<Run>>>,
    },
    /// The same run is in flight already: its outcome, once there.
    Attached(watch::Receiver<Option<Arc<Run>>>),
}

/// A run's place in [`InFlight`], given up when dropped: when the run ends however it ends
/// (completed, failed, cancelled, its task panicking).
pub struct Registration {
    inflight: Arc<InFlight>,
    key: (String, String),
    /// Whether the run still counts against its tenant's quota.
    counted: bool,
}

impl Registration {
    /// Gives the run's place in its tenant's quota back once its outcome is known: what is
    /// left (keeping the outcome) is not the agent's work, and the caller may start another
    /// run as soon as it has the answer.
    pub fn release_quota(&mut self) {
        if std::mem::take(&mut self.counted) {
            self.inflight.lock().uncount(&self.key.0);
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut runs = self.inflight.lock();
        runs.by_id.remove(&self.key);
        if self.counted {
            runs.uncount(&self.key.0);
        }
    }
}

impl Runs {
    fn uncount(&mut self, tenant: &str) {
        if let Some(count) = self.per_tenant.get_mut(tenant) {
            *count -= 1;
            if *count == 0 {
                self.per_tenant.remove(tenant);
            }
        }
    }
}

impl InFlight {
    pub fn new(max_per_tenant: usize) -> Self {
        Self {
            runs: Mutex::new(Runs::default()),
            max_per_tenant,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Runs> {
        self.runs
            .lock()
            .expect("the in-flight lock is never poisoned")
    }

    /// Registers the tenant's run `run_id`, asked `asked`; if that run is in flight already, the
    /// way to its outcome (ALREADY_EXISTS if it was asked something else). Only a new run counts
    /// against the tenant's quota.
    pub fn register(self: &Arc<Self>, tenant: &str, run_id: &str, asked: Asked) -> Result<Slot> {
        let key = (tenant.to_owned(), run_id.to_owned());
        let mut runs = self.lock();
        if let Some(entry) = runs.by_id.get(&key) {
            if entry.asked != asked {
                return Err(RunnerError::AlreadyExists(format!(
                    "run {run_id} is in flight with another agent or input"
                )));
            }
            return Ok(Slot::Attached(entry.outcome.clone()));
        }
        let count = runs.per_tenant.get(tenant).copied().unwrap_or(0);
        if self.max_per_tenant > 0 && count >= self.max_per_tenant {
            let limit = self.max_per_tenant as u64;
            return Err(RunnerError::QuotaExceeded {
                // A run ends within its deadline, most within a second.
                quota: Quota {
                    limit,
                    remaining: 0,
                    reset: 1,
                },
                message: format!(
                    "the tenant has {limit} agent runs in flight, as many as it may \
                     (SANKALPA_AGENTS_MAX_CONCURRENT_RUNS_PER_TENANT)"
                ),
            });
        }
        runs.per_tenant.insert(tenant.to_owned(), count + 1);
        let cancel = CancellationToken::new();
        let (outcome, watching) = watch::channel(None);
        let entry = Entry {
            cancel: cancel.clone(),
            asked,
            outcome: watching,
        };
        runs.by_id.insert(key.clone(), entry);
        let registration = Registration {
            inflight: self.clone(),
            key,
            counted: true,
        };
        Ok(Slot::New {
            registration,
            cancel,
            outcome,
        })
    }

    /// Cancels the tenant's run `run_id`; false if no such run is in flight.
    pub fn cancel(&self, tenant: &str, run_id: &str) -> bool {
        let runs = self.lock();
        match runs.by_id.get(&(tenant.to_owned(), run_id.to_owned())) {
            // A run with its outcome is over, though it keeps its place while the outcome is kept.
            Some(entry) if entry.outcome.borrow().is_none() => {
                entry.cancel.cancel();
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn hello() -> Asked {
        Asked::new("hello_world", &json!({}))
    }

    #[test]
    fn a_tenant_holds_at_most_its_runs_and_gets_each_back_when_it_ends() {
        let inflight = Arc::new(InFlight::new(2));
        let first = inflight.register("t", "1", hello()).unwrap();
        let second = inflight.register("t", "2", hello()).unwrap();
        assert!(matches!(
            inflight.register("t", "3", hello()),
            Err(RunnerError::QuotaExceeded { .. })
        ));
        assert!(
            inflight.register("u", "1", hello()).is_ok(),
            "another tenant runs"
        );
        drop(first);
        let third = inflight.register("t", "3", hello()).unwrap();
        drop((second, third));
        assert!(inflight.lock().per_tenant.is_empty());
        assert!(inflight.lock().by_id.is_empty());
    }

    #[test]
    fn the_same_run_asked_again_attaches_and_another_request_is_refused() {
        let inflight = Arc::new(InFlight::new(1));
        let Ok(Slot::New {
            outcome,
            registration,
            ..
        }) = inflight.register("t", "1", hello())
        else {
            panic!("a new run");
        };
        let Ok(Slot::Attached(attached)) = inflight.register("t", "1", hello()) else {
            panic!("attached, though the tenant is at its quota");
        };
        assert!(matches!(
            inflight.register("t", "1", Asked::new("critic", &json!({}))),
            Err(RunnerError::AlreadyExists(_))
        ));
        assert!(matches!(
            inflight.register("t", "1", Asked::new("hello_world", &json!({"name": "Ada"}))),
            Err(RunnerError::AlreadyExists(_))
        ));
        assert!(outcome.send(None).is_ok(), "the attached run watches");
        let mut registration = registration;
        registration.release_quota();
        let next = inflight.register("t", "2", hello());
        assert!(
            matches!(next, Ok(Slot::New { .. })),
            "a known outcome frees its place"
        );
        drop((attached, registration, next));
        assert!(inflight.lock().by_id.is_empty());
    }
}
