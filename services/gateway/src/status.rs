//! `GET /api/status`: the gateway's version and uptime and each backend service's gRPC health.
//!
//! Health is asked at most about once a second, whatever the request rate: the answer is cached,
//! and one request refreshes it (asking every service at once) while the others answer with the
//! previous report; only the very first requests wait for it.

use sankalpa_api::status::{ServiceHealth, Status};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::State;
use sankalpa_kit::grpc::Peers;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

const FRESH_FOR: Duration = Duration::from_secs(1);
const CHECK_TIMEOUT: Duration = Duration::from_millis(500);

pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(status))
}

/// One backend service: its name and the fully qualified gRPC service its health names.
struct Backend {
    name: &'static str,
    grpc_service: &'static str,
    client: HealthClient<Peers>,
}

pub struct HealthCache {
    started: Instant,
    backends: Vec<Backend>,
    last: RwLock<Option<(Instant, Arc<[ServiceHealth]>)>>,
    refreshing: tokio::sync::Mutex<()>,
}

impl HealthCache {
    /// `backends`: (name, fully qualified gRPC service, channel) of each service to report.
    pub fn new(backends: Vec<(&'static str, &'static str, Peers)>) -> Self {
        Self {
            started: Instant::now(),
            backends: backends
                .into_iter()
                .map(|(name, grpc_service, channel)| Backend {
                    name,
                    grpc_service,
                    client: HealthClient::new(channel),
                })
                .collect(),
            last: RwLock::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    fn last(&self, fresh_only: bool) -> Option<Arc<[ServiceHealth]>> {
        let last = self.last.read().expect("health cache lock poisoned");
        last.as_ref()
            .filter(|(at, _)| !fresh_only || at.elapsed() < FRESH_FOR)
            .map(|(_, health)| health.clone())
    }

    async fn services(&self) -> Arc<[ServiceHealth]> {
        if let Some(health) = self.last(true) {
            return health;
        }
        // While one request asks the services, the others answer with the last report, a
        // second old, rather than queueing behind it.
        let _refreshing = match self.refreshing.try_lock() {
            Ok(guard) => guard,
            Err(_) => match self.last(false) {
                Some(stale) => return stale,
                None => self.refreshing.lock().await,
            },
        };
        if let Some(health) = self.last(true) {
            return health;
        }
        let report: Arc<[ServiceHealth]> =
            futures::future::join_all(self.backends.iter().map(|backend| async move {
                ServiceHealth {
                    name: backend.name.to_owned(),
                    status: backend.check().await.to_owned(),
                }
            }))
            .await
            .into();
        *self.last.write().expect("health cache lock poisoned") =
            Some((Instant::now(), report.clone()));
        report
    }
}

impl Backend {
    async fn check(&self) -> &'static str {
        let mut request = tonic::Request::new(HealthCheckRequest {
            service: self.grpc_service.to_owned(),
        });
        request.set_timeout(CHECK_TIMEOUT);
        match tokio::time::timeout(CHECK_TIMEOUT, self.client.clone().check(request)).await {
            Ok(Ok(response)) => match response.into_inner().status() {
                ServingStatus::Serving => "serving",
                ServingStatus::NotServing => "not_serving",
                ServingStatus::Unknown | ServingStatus::ServiceUnknown => "unknown",
            },
            Ok(Err(status)) if status.code() == tonic::Code::NotFound => "unknown",
            Ok(Err(_)) | Err(_) => "unreachable",
        }
    }
}

/// The gateway's version and uptime, and the health of each backend service.
#[utoipa::path(
    get,
    path = "/api/status",
    tag = "status",
    responses((status = 200, description = "The platform's status", body = Status)),
)]
pub async fn status(State(state): State<Arc<AppState>>) -> axum::Json<Status> {
    let services = state.health.services().await;
    let all_serving = services.iter().all(|service| service.status == "serving");
    axum::Json(Status {
        status: if all_serving { "ok" } else { "degraded" }.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        uptime_seconds: state.health.started.elapsed().as_secs(),
        services: services.to_vec(),
    })
}
