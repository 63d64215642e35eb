//! The runs in flight on this replica, by tenant and run id: how CancelAgentRun finds a run, how
//! a run id is kept unique while its run is in flight, and how a tenant's runs at once are
//! counted against its quota.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sankalpa_kit::problem::Quota;
use tokio_util::sync::CancellationToken;

use crate::error::{Result, RunnerError};

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
    by_id: HashMap<(String, String), CancellationToken>,
    /// Only tenants with a run in flight are here, so the map stays as small as the load.
    per_tenant: HashMap<String, usize>,
}

/// A run's place in [`InFlight`], given up when dropped: when the run ends however it ends
/// (completed, failed, cancelled, its task panicking).
pub struct Registration {
    inflight: Arc<InFlight>,
    key: (String, String),
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut runs = self.inflight.lock();
        runs.by_id.remove(&self.key);
        let tenant = &self.key.0;
        if let Some(count) = runs.per_tenant.get_mut(tenant) {
            *count -= 1;
            if *count == 0 {
                runs.per_tenant.remove(tenant);
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

    pub fn register(
        self: &Arc<Self>,
        tenant: &str,
        run_id: &str,
    ) -> Result<(Registration, CancellationToken)> {
        let key = (tenant.to_owned(), run_id.to_owned());
        let token = CancellationToken::new();
        let mut runs = self.lock();
        if runs.by_id.contains_key(&key) {
            return Err(RunnerError::AlreadyExists(format!(
                "run {run_id} is already in flight"
            )));
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
        runs.by_id.insert(key.clone(), token.clone());
        let registration = Registration {
            inflight: self.clone(),
            key,
        };
        Ok((registration, token))
    }

    /// Cancels the tenant's run `run_id`; false if no such run is in flight.
    pub fn cancel(&self, tenant: &str, run_id: &str) -> bool {
        let runs = self.lock();
        match runs.by_id.get(&(tenant.to_owned(), run_id.to_owned())) {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_holds_at_most_its_runs_and_gets_each_back_when_it_ends() {
        let inflight = Arc::new(InFlight::new(2));
        let first = inflight.register("t", "1").unwrap();
        let second = inflight.register("t", "2").unwrap();
        assert!(matches!(
            inflight.register("t", "3"),
            Err(RunnerError::QuotaExceeded { .. })
        ));
        assert!(inflight.register("u", "1").is_ok(), "another tenant runs");
        drop(first);
        let third = inflight.register("t", "3").unwrap();
        drop((second, third));
        assert!(inflight.lock().per_tenant.is_empty());
        assert!(inflight.lock().by_id.is_empty());
    }
}
