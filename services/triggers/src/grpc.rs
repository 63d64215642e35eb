//! `sankalpa.v1.WebhookService`: checks the caller's permission, turns wire messages into
//! checked values (each failure naming its field), calls the domain modules and turns their
//! results back into wire messages.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sankalpa_kit::auth as kit_auth;
use sankalpa_kit::events::CloudEvent;
use sankalpa_kit::grpc::timestamp;
use sankalpa_kit::paging;
use sankalpa_proto::v1 as pb;
use sankalpa_proto::v1::webhook_service_server::WebhookService;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::deliveries::{self, Delivery, Status as DeliveryState};
use crate::endpoints::{self, Changes, Endpoint, NewEndpoint};
use crate::error::{Result, TriggersError};
use crate::{State, filters, input};

const READ: &str = "webhooks:read";
const WRITE: &str = "webhooks:write";
/// The type of a test send's event.
const TEST_EVENT_TYPE: &str = "sankalpa.webhooks.test";

pub struct WebhookApi {
    state: Arc<State>,
}

impl WebhookApi {
    pub(crate) fn new(state: Arc<State>) -> Self {
        Self { state }
    }
}

type Reply<T> = std::result::Result<Response<T>, Status>;

fn endpoint_message(endpoint: Endpoint) -> pb::WebhookEndpoint {
    pb::WebhookEndpoint {
        id: endpoint.id.to_string(),
        tenant_id: endpoint.tenant_id.to_string(),
        url: endpoint.url,
        description: endpoint.description,
        event_types: endpoint.event_types,
        ordered: endpoint.ordered,
        enabled: endpoint.enabled,
        disabled_reason: endpoint.disabled_reason,
        failing_since: endpoint.failing_since.map(timestamp),
        previous_secret_expires_at: endpoint.previous_secret_expires_at.map(timestamp),
        created_at: Some(timestamp(endpoint.created_at)),
        updated_at: Some(timestamp(endpoint.updated_at)),
    }
}

fn delivery_message(delivery: Delivery) -> pb::Delivery {
    let status = match delivery.status.as_str() {
        "pending" => pb::DeliveryStatus::Pending,
        "delivered" => pb::DeliveryStatus::Delivered,
        _ => pb::DeliveryStatus::Failed,
    };
    let unsigned = |value: i32| u32::try_from(value).unwrap_or(0);
    pb::Delivery {
        id: delivery.id.to_string(),
        endpoint_id: delivery.endpoint_id.to_string(),
        message_id: delivery.message_id,
        event_id: delivery.event_id,
        event_type: delivery.event_type,
        status: status.into(),
        attempts: unsigned(delivery.attempts),
        next_attempt_at: (status == pb::DeliveryStatus::Pending)
            .then(|| timestamp(delivery.next_attempt_at)),
        last_status_code: unsigned(delivery.last_status_code),
        last_error: delivery.last_error,
        last_latency_ms: unsigned(delivery.last_latency_ms),
        created_at: Some(timestamp(delivery.created_at)),
        updated_at: Some(timestamp(delivery.updated_at)),
    }
}

fn status_filter(raw: i32) -> Result<Option<DeliveryState>> {
    match pb::DeliveryStatus::try_from(raw) {
        Ok(pb::DeliveryStatus::Unspecified) => Ok(None),
        Ok(pb::DeliveryStatus::Pending) => Ok(Some(DeliveryState::Pending)),
        Ok(pb::DeliveryStatus::Delivered) => Ok(Some(DeliveryState::Delivered)),
        Ok(pb::DeliveryStatus::Failed) => Ok(Some(DeliveryState::Failed)),
        Err(_) => Err(TriggersError::invalid(
            "status",
            "must be PENDING, DELIVERED or FAILED",
        )),
    }
}

impl WebhookApi {
    fn description(raw: &str) -> Result<String> {
        input::text("description", raw, input::MAX_DESCRIPTION_CHARS)
    }
}

#[tonic::async_trait]
impl WebhookService for WebhookApi {
    async fn create_endpoint(
        &self,
        request: Request<pb::CreateEndpointRequest>,
    ) -> Reply<pb::CreateEndpointResponse> {
        let caller = kit_auth::authorize(&request, WRITE)?.clone();
        let tenant = caller.tenant()?;
        let message = request.into_inner();
        let new = NewEndpoint {
            url: input::url("url", &message.url, &self.state.guard)?,
            description: Self::description(&message.description)?,
            event_types: filters::check("event_types", &message.event_types)?,
            ordered: message.ordered,
        };
        let (endpoint, secret) = endpoints::create(
            &self.state.pool,
            tenant,
            &caller.subject,
            new,
            self.state.config.max_endpoints_per_tenant,
        )
        .await?;
        Ok(Response::new(pb::CreateEndpointResponse {
            endpoint: Some(endpoint_message(endpoint)),
            secret,
        }))
    }

    async fn get_endpoint(
        &self,
        request: Request<pb::GetEndpointRequest>,
    ) -> Reply<pb::GetEndpointResponse> {
        let tenant = kit_auth::authorize(&request, READ)?.tenant()?;
        let id = input::uuid("id", &request.get_ref().id)?;
        let endpoint = endpoints::get(&self.state.pool, tenant, id).await?;
        Ok(Response::new(pb::GetEndpointResponse {
            endpoint: Some(endpoint_message(endpoint)),
        }))
    }

    async fn list_endpoints(
        &self,
        request: Request<pb::ListEndpointsRequest>,
    ) -> Reply<pb::ListEndpointsResponse> {
        let tenant = kit_auth::authorize(&request, READ)?.tenant()?;
        let (size, after) =
            paging::after_id(request.get_ref().page.as_ref()).map_err(TriggersError::from)?;
        let mut found = endpoints::list(&self.state.pool, tenant, size, after).await?;
        let next = paging::next_token(&mut found, size, |endpoint| endpoint.id.to_string());
        Ok(Response::new(pb::ListEndpointsResponse {
            endpoints: found.into_iter().map(endpoint_message).collect(),
            page: paging::response(next),
        }))
    }

    async fn update_endpoint(
        &self,
        request: Request<pb::UpdateEndpointRequest>,
    ) -> Reply<pb::UpdateEndpointResponse> {
        let tenant = kit_auth::authorize(&request, WRITE)?.tenant()?;
        let message = request.into_inner();
        let id = input::uuid("id", &message.id)?;
        let changes = Changes {
            url: message
                .url
                .map(|url| input::url("url", &url, &self.state.guard))
                .transpose()?,
            description: message
                .description
                .map(|text| Self::description(&text))
                .transpose()?,
            event_types: message
                .event_types
                .map(|types| filters::check("event_types", &types.values))
                .transpose()?,
            ordered: message.ordered,
            enabled: message.enabled,
        };
        let endpoint = endpoints::update(&self.state.pool, tenant, id, changes).await?;
        // An endpoint enabled again may have deliveries due at once.
        self.state.wake.notify_one();
        Ok(Response::new(pb::UpdateEndpointResponse {
            endpoint: Some(endpoint_message(endpoint)),
        }))
    }

    async fn delete_endpoint(
        &self,
        request: Request<pb::DeleteEndpointRequest>,
    ) -> Reply<pb::DeleteEndpointResponse> {
        let tenant = kit_auth::authorize(&request, WRITE)?.tenant()?;
        let id = input::uuid("id", &request.get_ref().id)?;
        endpoints::delete(&self.state.pool, tenant, id).await?;
        Ok(Response::new(pb::DeleteEndpointResponse {}))
    }

    async fn rotate_endpoint_secret(
        &self,
        request: Request<pb::RotateEndpointSecretRequest>,
    ) -> Reply<pb::RotateEndpointSecretResponse> {
        let tenant = kit_auth::authorize(&request, WRITE)?.tenant()?;
        let message = request.get_ref();
        let id = input::uuid("id", &message.id)?;
        if message.overlap_seconds > input::MAX_OVERLAP_SECONDS {
            return Err(TriggersError::invalid(
                "overlap_seconds",
                format!("must be at most {}", input::MAX_OVERLAP_SECONDS),
            )
            .into());
        }
        let (endpoint, secret) =
            endpoints::rotate(&self.state.pool, tenant, id, message.overlap_seconds).await?;
        Ok(Response::new(pb::RotateEndpointSecretResponse {
            endpoint: Some(endpoint_message(endpoint)),
            secret,
        }))
    }

    async fn list_deliveries(
        &self,
        request: Request<pb::ListDeliveriesRequest>,
    ) -> Reply<pb::ListDeliveriesResponse> {
        let tenant = kit_auth::authorize(&request, READ)?.tenant()?;
        let message = request.get_ref();
        let endpoint = input::uuid("endpoint_id", &message.endpoint_id)?;
        let status = status_filter(message.status)?;
        let (size, token) =
            paging::requested(message.page.as_ref()).map_err(TriggersError::from)?;
        let before = match token {
            "" => None,
            token => Some(
                token
                    .parse::<i64>()
                    .map_err(|_| TriggersError::from(paging::BadPage::token()))?,
            ),
        };
        let mut found =
            deliveries::list(&self.state.pool, tenant, endpoint, status, size, before).await?;
        let next = paging::next_token(&mut found, size, |delivery| delivery.seq.to_string());
        Ok(Response::new(pb::ListDeliveriesResponse {
            deliveries: found.into_iter().map(delivery_message).collect(),
            page: paging::response(next),
        }))
    }

    async fn get_delivery(
        &self,
        request: Request<pb::GetDeliveryRequest>,
    ) -> Reply<pb::GetDeliveryResponse> {
        let tenant = kit_auth::authorize(&request, READ)?.tenant()?;
        let message = request.get_ref();
        let endpoint = input::uuid("endpoint_id", &message.endpoint_id)?;
        let id = input::uuid("id", &message.id)?;
        let (delivery, body, attempts) =
            deliveries::get(&self.state.pool, tenant, endpoint, id).await?;
        let unsigned = |value: i32| u32::try_from(value).unwrap_or(0);
        Ok(Response::new(pb::GetDeliveryResponse {
            delivery: Some(delivery_message(delivery)),
            body,
            attempts: attempts
                .into_iter()
                .map(|attempt| pb::DeliveryAttempt {
                    attempt: unsigned(attempt.attempt),
                    started_at: Some(timestamp(attempt.started_at)),
                    url: attempt.url,
                    request_headers: attempt.request_headers.0.into_iter().collect(),
                    status_code: unsigned(attempt.status_code),
                    latency_ms: unsigned(attempt.latency_ms),
                    response_body: attempt.response_body,
                    error: attempt.error,
                })
                .collect(),
        }))
    }

    async fn replay_deliveries(
        &self,
        request: Request<pb::ReplayDeliveriesRequest>,
    ) -> Reply<pb::ReplayDeliveriesResponse> {
        let tenant = kit_auth::authorize(&request, WRITE)?.tenant()?;
        let message = request.get_ref();
        let endpoint = input::uuid("endpoint_id", &message.endpoint_id)?;
        let pool = &self.state.pool;
        let replayed = match &message.what {
            Some(pb::replay_deliveries_request::What::DeliveryId(id)) => {
                let id = input::uuid("delivery_id", id)?;
                deliveries::replay_one(pool, tenant, endpoint, id).await?
            }
            Some(pb::replay_deliveries_request::What::Since(since)) => {
                let since = u32::try_from(since.nanos)
                    .ok()
                    .and_then(|nanos| DateTime::<Utc>::from_timestamp(since.seconds, nanos))
                    .ok_or_else(|| TriggersError::invalid("since", "must be a valid time"))?;
                deliveries::replay_since(pool, tenant, endpoint, since).await?
            }
            None => {
                return Err(TriggersError::invalid(
                    "delivery_id",
                    "one of delivery_id or since is required",
                )
                .into());
            }
        };
        self.state.wake.notify_one();
        Ok(Response::new(pb::ReplayDeliveriesResponse { replayed }))
    }

    async fn send_test_event(
        &self,
        request: Request<pb::SendTestEventRequest>,
    ) -> Reply<pb::SendTestEventResponse> {
        let tenant = kit_auth::authorize(&request, WRITE)?.tenant()?;
        let endpoint = input::uuid("endpoint_id", &request.get_ref().endpoint_id)?;
        let event_id = Uuid::now_v7().to_string();
        let event = CloudEvent {
            specversion: "1.0".to_owned(),
            id: event_id.clone(),
            source: self.state.source.clone(),
            kind: TEST_EVENT_TYPE.to_owned(),
            subject: format!(
                "{}webhooks.{tenant}.{endpoint}.test",
                self.state.subject_prefix
            ),
            time: Utc::now(),
            datacontenttype: "application/json".to_owned(),
            tenantid: tenant.to_string(),
            data: serde_json::json!({
                "endpoint_id": endpoint,
                "message": "A test event from Sankalpa: this endpoint receives webhooks.",
            }),
        };
        let body = serde_json::to_string(&event)
            .map_err(anyhow::Error::from)
            .map_err(TriggersError::from)?;
        let delivery = deliveries::insert_test(
            &self.state.pool,
            tenant,
            endpoint,
            &event_id,
            TEST_EVENT_TYPE,
            &body,
        )
        .await?;
        self.state.wake.notify_one();
        Ok(Response::new(pb::SendTestEventResponse {
            delivery: Some(delivery_message(delivery)),
        }))
    }
}
