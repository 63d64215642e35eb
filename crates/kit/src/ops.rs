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
use crate::shutdown::{Drain, Draining};

/// What a service depends on, checked by `/readyz`: ready while Postgres and Redis (where the
/// service has them) answer and it is not draining. NATS is reported but not required: every
/// event goes through the Postgres outbox and waits there while NATS is away, so reads and
/// writes go on, and a blip of NATS should not take every replica out of rotation at once.
#[derive(Clone, Default)]
pub struct Readiness {
    pub postgres: Option<sqlx::PgPool>,
    pub redis: Option<Redis>,
    pub nats: Option<async_nats::Client>,
    pub draining: Draining,
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
            report.insert("nats".into(), json!(ok));
        }
        if self.draining.is_draining() {
            ready = false;
            report.insert("draining".into(), json!(true));
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

async fn metrics_text(State(readiness): State<Arc<Readiness>>) -> impl IntoResponse {
    // Pool usage is read when scraped: it is a level, not an event to count.
    if let Some(pool) = &readiness.postgres {
        let size = f64::from(pool.size());
        let idle = pool.num_idle() as f64;
        metrics::gauge!("db_pool_connections", "state" => "idle").set(idle);
        metrics::gauge!("db_pool_connections", "state" => "in_use").set(size - idle);
        metrics::gauge!("db_pool_max_connections")
            .set(f64::from(pool.options().get_max_connections()));
    }
    crate::metrics::observe_process();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(),
    )
}

/// Serves a service: its gRPC `routes` (reported SERVING as `services`) on `grpc_listener` and
/// the operations routes on `http_listener`, until `shutdown` resolves; then drains as `drain`
/// says, cancels `stop`, which the service's background tasks watch too, and waits for both
/// servers to finish what is in flight (bounded by the drain's timeout).
#[allow(clippy::too_many_arguments)]
pub async fn serve_service(
    grpc_listener: TcpListener,
    routes: tonic::service::Routes,
    services: &[&str],
    http_listener: TcpListener,
    readiness: Readiness,
    drain: Drain,
    stop: tokio_util::sync::CancellationToken,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let draining = readiness.draining.clone();
    let grpc = crate::grpc::serve(
        grpc_listener,
        routes,
        services,
        draining.clone(),
        stop.clone().cancelled_owned(),
    );
    let http = serve(http_listener, readiness, stop.clone().cancelled_owned());
    let stopper = async {
        drain.begin(shutdown, &draining).await;
        stop.cancel();
    };
    let servers = async { tokio::join!(grpc, http, stopper) };
    match drain.bounded(servers, stop.cancelled()).await {
        Some((grpc, http, ())) => {
            grpc?;
            http
        }
        None => Ok(()),
    }
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
