//! Outbound webhooks, in front of the triggers service (`/api/webhooks/...`): a tenant's
//! endpoints (registered with a secret shown once, rotated with an overlap), the delivery log
//! of each, replays and test sends.
//!
//! The gateway checks webhooks:read / webhooks:write before calling; the triggers service checks
//! again and scopes everything to the caller's tenant (another tenant's endpoint is 404). It
//! names invalid fields as its wire messages do; they are renamed here to what the client sent
//! (`page.page_size` -> `page_size`, `endpoint_id` -> `id`, the path's).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sankalpa_api::webhooks::{
    CreateEndpoint, CreatedEndpoint, DeliveriesQuery, Delivery, DeliveryAttempt, DeliveryDetail,
    DeliveryList, DeliveryStatus, EndpointList, Replay, Replayed, RotateSecret, UpdateEndpoint,
    WebhookEndpoint,
};
use sankalpa_kit::problem::Problem;
use sankalpa_proto::v1;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::authn::Caller;
use crate::json::{Body, Page, Rest, next_page, page_request, shown, timestamp};

const READ: &str = "webhooks:read";
const WRITE: &str = "webhooks:write";

pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(get_one, update, delete))
        .routes(routes!(rotate_secret))
        .routes(routes!(deliveries))
        .routes(routes!(delivery))
        .routes(routes!(replay))
        .routes(routes!(send_test))
}

/// A problem from the triggers service, its field names turned into this API's.
fn problem(status: tonic::Status) -> Problem {
    crate::json::renamed(status, rest_field)
}

fn rest_field(field: &str) -> String {
    let field = field.strip_prefix("page.").unwrap_or(field);
    match field {
        "endpoint_id" => "id".to_owned(),
        field => field.to_owned(),
    }
}

fn non_empty(text: String) -> Option<String> {
    Some(text).filter(|text| !text.is_empty())
}

impl Rest for v1::WebhookEndpoint {
    type Shown = WebhookEndpoint;

    fn rest(self) -> WebhookEndpoint {
        WebhookEndpoint {
            id: self.id,
            tenant_id: self.tenant_id,
            url: self.url,
            description: self.description,
            event_types: self.event_types,
            ordered: self.ordered,
            enabled: self.enabled,
            disabled_reason: non_empty(self.disabled_reason),
            failing_since: timestamp(self.failing_since),
            previous_secret_expires_at: timestamp(self.previous_secret_expires_at),
            created_at: timestamp(self.created_at),
            updated_at: timestamp(self.updated_at),
        }
    }
}

impl Rest for v1::Delivery {
    type Shown = Delivery;

    fn rest(self) -> Delivery {
        Delivery {
            status: match self.status() {
                v1::DeliveryStatus::Delivered => DeliveryStatus::Delivered,
                v1::DeliveryStatus::Failed => DeliveryStatus::Failed,
                v1::DeliveryStatus::Pending | v1::DeliveryStatus::Unspecified => {
                    DeliveryStatus::Pending
                }
            },
            id: self.id,
            endpoint_id: self.endpoint_id,
            message_id: self.message_id,
            event_id: self.event_id,
            event_type: self.event_type,
            attempts: self.attempts,
            next_attempt_at: timestamp(self.next_attempt_at),
            last_status_code: Some(self.last_status_code).filter(|code| *code != 0),
            last_error: non_empty(self.last_error),
            last_latency_ms: self.last_latency_ms,
            created_at: timestamp(self.created_at),
            updated_at: timestamp(self.updated_at),
        }
    }
}

impl Rest for v1::DeliveryAttempt {
    type Shown = DeliveryAttempt;

    fn rest(self) -> DeliveryAttempt {
        DeliveryAttempt {
            attempt: self.attempt,
            started_at: timestamp(self.started_at),
            url: self.url,
            request_headers: self.request_headers.into_iter().collect(),
            status_code: Some(self.status_code).filter(|code| *code != 0),
            latency_ms: self.latency_ms,
            response_body: self.response_body,
            error: non_empty(self.error),
        }
    }
}

/// Registers an endpoint that receives the caller's tenant's events matching `event_types`.
/// The answer holds its signing secret, shown this once.
#[utoipa::path(
    post,
    path = "/api/webhooks/endpoints",
    tag = "webhooks",
    request_body = CreateEndpoint,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "The endpoint and its secret", body = CreatedEndpoint, headers(("Location" = String, description = "The endpoint's URL"))),
        (status = 400, description = "Invalid input, naming the field (`url`, `event_types[2]`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing webhooks:write", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The tenant has the most endpoints it may have", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(body): Body<CreateEndpoint>,
) -> Result<Response, Problem> {
    caller.require(WRITE)?;
    let request = v1::CreateEndpointRequest {
        url: body.url,
        description: body.description,
        event_types: body.event_types,
        ordered: body.ordered,
    };
    let response = state
        .webhooks()
        .create_endpoint(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?
        .into_inner();
    let endpoint = shown(response.endpoint, "endpoint")?;
    let location = format!("/api/webhooks/endpoints/{}", endpoint.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(CreatedEndpoint {
            endpoint,
            secret: response.secret,
        }),
    )
        .into_response())
}

/// The caller's tenant's endpoints, newest first.
#[utoipa::path(
    get,
    path = "/api/webhooks/endpoints",
    tag = "webhooks",
    params(Page),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "One page of endpoints", body = EndpointList),
        (status = 403, description = "Missing webhooks:read", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(page): Query<Page>,
) -> Result<axum::Json<EndpointList>, Problem> {
    caller.require(READ)?;
    let request = v1::ListEndpointsRequest {
        page: Some(page_request(page)),
    };
    let response = state
        .webhooks()
        .list_endpoints(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?
        .into_inner();
    Ok(axum::Json(EndpointList {
        endpoints: response.endpoints.into_iter().map(Rest::rest).collect(),
        next_page_token: next_page(response.page),
    }))
}

/// One endpoint.
#[utoipa::path(
    get,
    path = "/api/webhooks/endpoints/{id}",
    tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint id (a UUID)", pattern = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})$")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The endpoint", body = WebhookEndpoint),
        (status = 403, description = "Missing webhooks:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint in the caller's tenant", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn get_one(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<WebhookEndpoint>, Problem> {
    caller.require(READ)?;
    let response = state
        .webhooks()
        .get_endpoint(state.request_as(&caller, v1::GetEndpointRequest { id })?)
        .await
        .map_err(problem)?
        .into_inner();
    Ok(axum::Json(shown(response.endpoint, "endpoint")?))
}

/// Changes the members sent; enabling a disabled endpoint clears its failure record.
#[utoipa::path(
    patch,
    path = "/api/webhooks/endpoints/{id}",
    tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint id (a UUID)", pattern = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})$")),
    request_body = UpdateEndpoint,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The endpoint as changed", body = WebhookEndpoint),
        (status = 400, description = "Invalid input, naming the field", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing webhooks:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint in the caller's tenant", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn update(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<UpdateEndpoint>,
) -> Result<axum::Json<WebhookEndpoint>, Problem> {
    caller.require(WRITE)?;
    let request = v1::UpdateEndpointRequest {
        id,
        url: body.url,
        description: body.description,
        event_types: body.event_types.map(|values| v1::EventTypes { values }),
        ordered: body.ordered,
        enabled: body.enabled,
    };
    let response = state
        .webhooks()
        .update_endpoint(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?
        .into_inner();
    Ok(axum::Json(shown(response.endpoint, "endpoint")?))
}

/// Removes an endpoint with its secrets and delivery log; nothing more is sent to it.
#[utoipa::path(
    delete,
    path = "/api/webhooks/endpoints/{id}",
    tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint id (a UUID)", pattern = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})$")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Missing webhooks:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint in the caller's tenant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A concurrent change of the endpoint got in the way: retry", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn delete(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    caller.require(WRITE)?;
    state
        .webhooks()
        .delete_endpoint(state.request_as(&caller, v1::DeleteEndpointRequest { id })?)
        .await
        .map_err(problem)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Gives the endpoint a new signing secret, shown this once; the previous one keeps signing
/// beside it for `overlap_seconds`.
#[utoipa::path(
    post,
    path = "/api/webhooks/endpoints/{id}/rotate-secret",
    tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint id (a UUID)", pattern = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})$")),
    request_body = RotateSecret,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The endpoint and its new secret", body = CreatedEndpoint),
        (status = 400, description = "Invalid input, naming the field", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing webhooks:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint in the caller's tenant", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn rotate_secret(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<RotateSecret>,
) -> Result<axum::Json<CreatedEndpoint>, Problem> {
    caller.require(WRITE)?;
    let request = v1::RotateEndpointSecretRequest {
        id,
        overlap_seconds: body.overlap_seconds,
    };
    let response = state
        .webhooks()
        .rotate_endpoint_secret(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?
        .into_inner();
    Ok(axum::Json(CreatedEndpoint {
        endpoint: shown(response.endpoint, "endpoint")?,
        secret: response.secret,
    }))
}

/// An endpoint's delivery log: one delivery per event sent to it, newest first.
#[utoipa::path(
    get,
    path = "/api/webhooks/endpoints/{id}/deliveries",
    tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint id (a UUID)", pattern = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})$"), DeliveriesQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "One page of deliveries", body = DeliveryList),
        (status = 403, description = "Missing webhooks:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint in the caller's tenant", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn deliveries(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<DeliveriesQuery>,
) -> Result<axum::Json<DeliveryList>, Problem> {
    caller.require(READ)?;
    let status = match query.status {
        None => v1::DeliveryStatus::Unspecified,
        Some(DeliveryStatus::Pending) => v1::DeliveryStatus::Pending,
        Some(DeliveryStatus::Delivered) => v1::DeliveryStatus::Delivered,
        Some(DeliveryStatus::Failed) => v1::DeliveryStatus::Failed,
    };
    let request = v1::ListDeliveriesRequest {
        endpoint_id: id,
        status: status.into(),
        page: Some(page_request(Page {
            page_size: query.page_size,
            page_token: query.page_token,
        })),
    };
    let response = state
        .webhooks()
        .list_deliveries(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?
        .into_inner();
    Ok(axum::Json(DeliveryList {
        deliveries: response.deliveries.into_iter().map(Rest::rest).collect(),
        next_page_token: next_page(response.page),
    }))
}

/// One delivery: the body sent and each attempt's request headers and response.
#[utoipa::path(
    get,
    path = "/api/webhooks/endpoints/{id}/deliveries/{delivery_id}",
    tag = "webhooks",
    params(
        ("id" = String, Path, description = "The endpoint id (a UUID)", pattern = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})$"),
        ("delivery_id" = String, Path, description = "The delivery id (a UUID)", pattern = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})$"),
    ),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The delivery", body = DeliveryDetail),
        (status = 403, description = "Missing webhooks:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint or delivery in the caller's tenant", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn delivery(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((id, delivery_id)): Path<(String, String)>,
) -> Result<axum::Json<DeliveryDetail>, Problem> {
    caller.require(READ)?;
    let request = v1::GetDeliveryRequest {
        endpoint_id: id,
        id: delivery_id,
    };
    let response = state
        .webhooks()
        .get_delivery(state.request_as(&caller, request)?)
        .await
        .map_err(|status| {
            crate::json::renamed(status, |field| match field {
                "id" => "delivery_id".to_owned(),
                field => rest_field(field),
            })
        })?
        .into_inner();
    let delivery = response.delivery.map(Rest::rest).ok_or_else(|| {
        Problem::new(
            StatusCode::BAD_GATEWAY,
            "the triggers service answered without the delivery",
        )
    })?;
    Ok(axum::Json(DeliveryDetail {
        delivery,
        body: response.body,
        attempts: response.attempts.into_iter().map(Rest::rest).collect(),
    }))
}

/// Sends one delivery again (`delivery_id`), or every delivery created since a time
/// (`since`), with the same webhook-id and body; attempts start over.
#[utoipa::path(
    post,
    path = "/api/webhooks/endpoints/{id}/replay",
    tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint id (a UUID)", pattern = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})$")),
    request_body = Replay,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 202, description = "How many deliveries are pending again", body = Replayed),
        (status = 400, description = "Neither or both of delivery_id and since, or an invalid one", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing webhooks:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint or delivery in the caller's tenant", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn replay(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<Replay>,
) -> Result<(StatusCode, axum::Json<Replayed>), Problem> {
    caller.require(WRITE)?;
    let what = match (body.delivery_id, body.since) {
        (Some(delivery_id), None) => v1::replay_deliveries_request::What::DeliveryId(delivery_id),
        (None, Some(since)) => v1::replay_deliveries_request::What::Since(prost_types::Timestamp {
            seconds: since.timestamp(),
            nanos: i32::try_from(since.timestamp_subsec_nanos()).unwrap_or(0),
        }),
        _ => {
            return Err(Problem::invalid(
                "delivery_id",
                "give one of delivery_id or since",
            ));
        }
    };
    let request = v1::ReplayDeliveriesRequest {
        endpoint_id: id,
        what: Some(what),
    };
    let response = state
        .webhooks()
        .replay_deliveries(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?
        .into_inner();
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(Replayed {
            replayed: response.replayed,
        }),
    ))
}

/// Sends the endpoint an event of type `sankalpa.webhooks.test`, whatever its filters; the
/// answer is its delivery, pending.
#[utoipa::path(
    post,
    path = "/api/webhooks/endpoints/{id}/test",
    tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint id (a UUID)", pattern = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})$")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 202, description = "The test event's delivery", body = Delivery),
        (status = 403, description = "Missing webhooks:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint in the caller's tenant", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn send_test(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, axum::Json<Delivery>), Problem> {
    caller.require(WRITE)?;
    let request = v1::SendTestEventRequest { endpoint_id: id };
    let response = state
        .webhooks()
        .send_test_event(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?
        .into_inner();
    let delivery = response.delivery.map(Rest::rest).ok_or_else(|| {
        Problem::new(
            StatusCode::BAD_GATEWAY,
            "the triggers service answered without the delivery",
        )
    })?;
    Ok((StatusCode::ACCEPTED, axum::Json(delivery)))
}
