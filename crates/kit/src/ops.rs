//! The operations endpoints every service serves over HTTP: `/healthz` (the process is alive),
//! `/readyz` (its Postgres, Redis and NATS answer) and `/metrics` (Prometheus text).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::json;
use tokio::net::TcpListener;

use crate::cache::Redis;

/// What a service depends on, checked by `/readyz`.
#[derive(Clone, Default)]
pub struct Readiness {
    pub postgres: Option<sqlx::PgPool>,
    pub redis: Option<Redis>,
    pub nats: Option<async_nats::Client>,
}

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

impl Readiness {
    /// Each dependency's state, `Ok` when all answer.
    pub async fn check(&self) -> Result<serde_json::Value, serde_json::Value> {
        let mut report = serde_json::Map::new();
        let mut ready = true;
        if let Some(pool) = &self.postgres {
            let ok = tokio::time::timeout(
                CHECK_TIMEOUT,
                sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(pool),
            )
            .await
            .is_ok_and(|result| result.is_ok());
            ready &= ok;
            report.insert("postgres".into(), json!(ok));
        }
        if let Some(redis) = &self.redis {
            let ok = redis.ping().await;
            ready &= ok;
            report.insert("redis".into(), json!(ok));
        }
        if let Some(nats) = &self.nats {
            let ok = nats.connection_state() == async_nats::connection::State::Connected;
            ready &= ok;
            report.insert("nats".into(), json!(ok));
        }
        let report = serde_json::Value::Object(report);
        if ready { Ok(report) } else { Err(report) }
    }
}

/// The `/healthz`, `/readyz` and `/metrics` routes, to serve alone or merge into a router.
pub fn router(readiness: Readiness) -> Router {
    crate::metrics::handle();
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(Arc::new(readiness))
}

async fn readyz(State(readiness): State<Arc<Readiness>>) -> impl IntoResponse {
    match readiness.check().await {
        Ok(report) => (StatusCode::OK, axum::Json(report)),
        Err(report) => (StatusCode::SERVICE_UNAVAILABLE, axum::Json(report)),
    }
}

async fn metrics_text() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(),
    )
}

/// Serves the operations routes on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    readiness: Readiness,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    axum::serve(listener, router(readiness))
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}
