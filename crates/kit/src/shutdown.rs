//! Graceful shutdown: every server takes a future that resolves on SIGTERM or SIGINT, stops
//! accepting, and lets requests in flight finish.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::config::{self, ConfigError};

/// Resolves when the process is asked to stop (SIGTERM from Kubernetes, Ctrl-C in a terminal).
pub async fn signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received");
}

/// How a server leaves once asked to stop, so that a rolling restart fails no request: first it
/// reports not ready (`/readyz` 503, gRPC health NOT_SERVING) yet keeps serving for `delay`,
/// long enough for Kubernetes and the clients' probes ([`crate::grpc::peers`]) to take it out
/// of rotation; then it stops accepting and waits up to `timeout` for what is in flight, after
/// which the rest is cut.
#[derive(Debug, Clone, Copy)]
pub struct Drain {
    pub delay: Duration,
    pub timeout: Duration,
}

impl Drain {
    /// `SANKALPA_DRAIN_DELAY_MS` (2 s: two of the clients' probe rounds) and
    /// `SANKALPA_DRAIN_TIMEOUT_MS` (20 s, inside Kubernetes' 30 s grace period).
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            delay: config::millis("SANKALPA_DRAIN_DELAY_MS", Duration::from_secs(2))?,
            timeout: config::millis("SANKALPA_DRAIN_TIMEOUT_MS", Duration::from_secs(20))?,
        })
    }

    /// No delay, as in-process tests stop their services.
    pub fn immediate() -> Self {
        Self {
            delay: Duration::ZERO,
            timeout: Duration::from_secs(20),
        }
    }

    /// Waits for `shutdown`, marks `draining`, then waits out the delay.
    pub async fn begin(&self, shutdown: impl Future<Output = ()>, draining: &Draining) {
        shutdown.await;
        draining.start();
        tracing::info!(delay_ms = self.delay.as_millis(), "draining");
        tokio::time::sleep(self.delay).await;
    }

    /// Runs `servers` until they end, or until `timeout` after `stopped` has resolved.
    pub async fn bounded<T>(
        &self,
        servers: impl Future<Output = T>,
        stopped: impl Future<Output = ()>,
    ) -> Option<T> {
        tokio::pin!(servers);
        let deadline = async {
            stopped.await;
            tokio::time::sleep(self.timeout).await;
        };
        tokio::select! {
            served = &mut servers => Some(served),
            () = deadline => {
                tracing::warn!(timeout_ms = self.timeout.as_millis(), "requests still in flight after the drain timeout were cut");
                None
            }
        }
    }
}

/// Whether the process is on its way out: set once by [`Drain::begin`], read by readiness and
/// the gRPC health service.
#[derive(Debug, Clone, Default)]
pub struct Draining(Arc<(AtomicBool, tokio::sync::Notify)>);

impl Draining {
    pub fn start(&self) {
        self.0.0.store(true, Ordering::SeqCst);
        self.0.1.notify_waiters();
    }

    pub fn is_draining(&self) -> bool {
        self.0.0.load(Ordering::SeqCst)
    }

    /// Resolves once draining has started.
    pub async fn started(&self) {
        let notified = self.0.1.notified();
        if self.is_draining() {
            return;
        }
        notified.await;
    }
}
