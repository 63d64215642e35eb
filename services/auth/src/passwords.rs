//! Password hashing with argon2id (the crate's default parameters: 19 MiB, 2 passes).
//!
//! Hashing costs about 15 ms of CPU, so it runs on the blocking pool and never stalls the
//! request workers. It also holds 19 MiB for that time: twenty logins at once once took 400 MB,
//! past a pod's memory limit. So [`Hashing`] lets only so many run at once (by default what the
//! cores and the memory limit allow) and keeps the rest waiting in line for a bounded time,
//! after which they are answered UNAVAILABLE (503 with Retry-After at the gateway).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use tokio::sync::Semaphore;

use crate::error::{AuthError, Result};

/// What one argon2id hash holds while it runs (the crate's default `m_cost`), plus room.
const HASH_MEMORY_BYTES: u64 = 20 * 1024 * 1024;

pub const MIN_LENGTH: usize = 8;
/// Bounds the hashing work one request can ask for.
pub const MAX_LENGTH: usize = 128;

/// A hash of a password nobody has, verified against when an email is unknown so that a failed
/// login takes as long whether or not the account exists.
static DECOY_HASH: OnceLock<String> = OnceLock::new();

fn decoy_hash() -> &'static str {
    DECOY_HASH.get_or_init(|| {
        Argon2::default()
            .hash_password(uuid::Uuid::new_v4().as_bytes())
            .map(|hash| hash.to_string())
            .unwrap_or_default()
    })
}

pub fn validate(password: &str) -> Result<()> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Err(AuthError::invalid(
            "password",
            format!("must be at least {MIN_LENGTH} characters"),
        ));
    }
    if length > MAX_LENGTH {
        return Err(AuthError::invalid(
            "password",
            format!("must be at most {MAX_LENGTH} characters"),
        ));
    }
    Ok(())
}

/// The hashing of passwords, at most `concurrency` at once.
pub struct Hashing {
    permits: Arc<Semaphore>,
    queue_timeout: Duration,
}

impl Hashing {
    /// `concurrency` hashes at once (at least one); a hash waits at most `queue_timeout` for
    /// its turn.
    pub fn new(concurrency: usize, queue_timeout: Duration) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            queue_timeout,
        }
    }

    pub async fn hash(&self, password: String) -> Result<String> {
        let hashed = self
            .run(move || {
                Argon2::default()
                    .hash_password(password.as_bytes())
                    .map(|hash| hash.to_string())
            })
            .await?
            .map_err(|err| anyhow::anyhow!("could not hash a password: {err}"))?;
        Ok(hashed)
    }

    /// Whether `password` matches `stored`; with `None` it checks against the decoy and says
    /// no.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool> {
        self.run(move || {
            let known = stored.is_some();
            let hash = stored.unwrap_or_else(|| decoy_hash().to_owned());
            let ok = Argon2::default()
                .verify_password(password.as_bytes(), hash.as_str())
                .is_ok();
            known && ok
        })
        .await
    }

    /// Runs `work` on the blocking pool once a permit is free. The permit goes with the work,
    /// so a request that gives up mid-hash does not free its memory's share early.
    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let permit = tokio::time::timeout(self.queue_timeout, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| {
                metrics::counter!("auth_password_queue_timeouts_total").increment(1);
                AuthError::Unavailable(
                    "too many passwords are being checked at once; retry shortly".to_owned(),
                )
            })?
            .context("the password hashing semaphore is never closed")?;
        let done = tokio::task::spawn_blocking(move || {
            let done = work();
            drop(permit);
            done
        })
        .await
        .context("password hashing task failed")?;
        Ok(done)
    }
}

/// How many hashes may run at once by default: no more than the cores (hashing is CPU-bound,
/// more at once only queues inside the CPU), nor than half the memory limit of the container
/// (cgroup v2 `memory.max`, v1 `memory.limit_in_bytes`) holds.
pub fn default_concurrency() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let by_memory = [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .iter()
    .filter_map(|path| std::fs::read_to_string(path).ok())
    .find_map(|limit| limit.trim().parse::<u64>().ok())
    .map_or(usize::MAX, |limit| {
        usize::try_from(limit / 2 / HASH_MEMORY_BYTES).unwrap_or(usize::MAX)
    });
    cores.min(by_memory).max(1)
}

/// Describes the password queue's metric and registers it at zero.
pub fn describe_metrics() {
    metrics::describe_counter!(
        "auth_password_queue_timeouts_total",
        "Password checks refused because the hashing queue was full for too long."
    );
    metrics::counter!("auth_password_queue_timeouts_total").increment(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hashing() -> Hashing {
        Hashing::new(2, Duration::from_secs(5))
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_no_other() {
        let hashing = hashing();
        let stored = hashing.hash("correct horse".to_owned()).await.unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(
            hashing
                .verify("correct horse".into(), Some(stored.clone()))
                .await
                .unwrap()
        );
        assert!(
            !hashing
                .verify("wrong horse".into(), Some(stored))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn an_unknown_account_never_verifies() {
        assert!(!hashing().verify("anything".into(), None).await.unwrap());
    }

    #[tokio::test]
    async fn a_hash_that_waits_past_the_queue_timeout_is_unavailable() {
        let hashing = Hashing::new(1, Duration::from_millis(1));
        let (first, second) = tokio::join!(
            hashing.hash("correct horse".to_owned()),
            hashing.hash("correct horse".to_owned())
        );
        assert!(first.is_ok());
        assert!(matches!(second, Err(AuthError::Unavailable(_))));
    }

    #[test]
    fn length_limits_are_enforced() {
        assert!(validate("short").is_err());
        assert!(validate(&"x".repeat(MAX_LENGTH + 1)).is_err());
        assert!(validate("long enough").is_ok());
    }
}
