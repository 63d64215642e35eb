//! Outbound webhooks: a tenant's endpoints, which receive its events signed as the Standard
//! Webhooks specification says, their delivery log, replays and test sends
//! (`/api/webhooks/...`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookEndpoint {
    pub id: String,
    pub tenant_id: String,
    /// Where deliveries are POSTed.
    pub url: String,
    pub description: String,
    /// CloudEvents types (`sankalpa.chains.run.completed`) or subjects without the tenant
    /// (`agents.*.completed`); `*` is one token, a final `>` the rest, `*` alone every event.
    pub event_types: Vec<String>,
    /// One delivery at a time, in event order, when true; concurrently otherwise.
    pub ordered: bool,
    pub enabled: bool,
    /// Why it is disabled; absent when enabled.
    pub disabled_reason: Option<String>,
    /// When its deliveries started failing without a success since.
    pub failing_since: Option<DateTime<Utc>>,
    /// When the previous secret stops signing after a rotation.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://example.com/hooks/sankalpa", "event_types": ["sankalpa.chains.run.completed", "agents.*.failed"], "description": "CI"}))]
pub struct CreateEndpoint {
    /// An absolute https URL of at most 2,048 bytes (http where the operator allows it); it
    /// may not name a loopback, private, link-local or metadata address unless the operator
    /// allows it.
    #[schema(max_length = 2048)]
    pub url: String,
    /// 1 to 50 filters of at most 200 bytes each.
    #[schema(min_items = 1, max_items = 50)]
    pub event_types: Vec<String>,
    /// At most 500 characters.
    #[serde(default)]
    #[schema(max_length = 500)]
    pub description: String,
    /// Deliver one at a time, in event order (false by default).
    #[serde(default)]
    pub ordered: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedEndpoint {
    pub endpoint: WebhookEndpoint,
    /// The signing secret (`whsec_...`), shown this once: give it to the receiver's Standard
    /// Webhooks library.
    pub secret: String,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"event_types": ["sankalpa.chains.run.>"], "enabled": true}))]
pub struct UpdateEndpoint {
    /// A new URL, checked as at creation.
    #[schema(max_length = 2048)]
    pub url: Option<String>,
    /// New filters, replacing the old.
    #[schema(min_items = 1, max_items = 50)]
    pub event_types: Option<Vec<String>>,
    #[schema(max_length = 500)]
    pub description: Option<String>,
    pub ordered: Option<bool>,
    /// Enabling a disabled endpoint clears its failure record.
    pub enabled: Option<bool>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EndpointList {
    /// Newest first.
    pub endpoints: Vec<WebhookEndpoint>,
    /// Pass as `page_token` for the next page; absent on the last page.
    pub next_page_token: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"overlap_seconds": 86400}))]
pub struct RotateSecret {
    /// How long the previous secret keeps signing beside the new one, in seconds (0 to
    /// 604,800; 0, the default, ends it at once).
    #[serde(default)]
    #[schema(maximum = 604800)]
    pub overlap_seconds: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its first or next attempt.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Every attempt of the retry schedule failed.
    Failed,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Delivery {
    pub id: String,
    pub endpoint_id: String,
    /// The `webhook-id` of every attempt (`msg_<event id>`): the same on retries and replays.
    pub message_id: String,
    pub event_id: String,
    pub event_type: String,
    pub status: DeliveryStatus,
    /// Attempts so far, replays included.
    pub attempts: u32,
    /// When the next attempt is due, while pending.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The last attempt's HTTP status; absent when it got none.
    pub last_status_code: Option<u32>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    pub last_latency_ms: u32,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeliveryAttempt {
    pub attempt: u32,
    pub started_at: Option<DateTime<Utc>>,
    pub url: String,
    /// The request's headers as sent (`webhook-id`, `webhook-timestamp`, `webhook-signature`,
    /// `content-type`).
    pub request_headers: BTreeMap<String, String>,
    /// Absent when no response came (refused, unreachable, timed out).
    pub status_code: Option<u32>,
    pub latency_ms: u32,
    /// The start of the response body (4 KiB by default).
    pub response_body: String,
    pub error: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeliveryDetail {
    pub delivery: Delivery,
    /// The body every attempt sends: the CloudEvent JSON, as text.
    pub body: String,
    /// Oldest first, the last 50 at most.
    pub attempts: Vec<DeliveryAttempt>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeliveryList {
    /// Newest first.
    pub deliveries: Vec<Delivery>,
    /// Pass as `page_token` for the next page; absent on the last page.
    pub next_page_token: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// Only deliveries of this status.
    pub status: Option<DeliveryStatus>,
    /// At most 200; the service default (50) when absent or 0.
    #[param(maximum = 200)]
    pub page_size: Option<u32>,
    /// `next_page_token` of the previous page.
    #[param(pattern = r"^[0-9]{0,19}$")]
    pub page_token: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"since": "2026-12-06T00:00:00Z"}))]
pub struct Replay {
    /// One delivery of the endpoint to send again.
    pub delivery_id: Option<String>,
    /// Or every delivery of the endpoint created since then (the oldest 10,000).
    pub since: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Replayed {
    /// Deliveries made pending again.
    pub replayed: u32,
}
