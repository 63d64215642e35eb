//! Inbound webhook triggers: a tenant's chain started by a signed request to
//! `/api/webhooks/in/{trigger_id}`, with an input mapped from the request
//! (`/api/webhooks/triggers/...`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// How a trigger's requests are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InboundSignature {
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp` (within 5 minutes),
    /// `webhook-signature: v1,<base64>` (the default).
    Standard,
    /// GitHub: `X-Hub-Signature-256: sha256=<hex>` with the secret's text as the key, and
    /// `X-GitHub-Delivery` as the webhook id.
    Github,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InboundTrigger {
    /// Requests go to `/api/webhooks/in/<id>`.
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    /// The stored chain each request runs, at its latest version ...
    pub chain_id: Option<String>,
    /// ... or the template.
    pub template: Option<String>,
    /// The run's input: strings `${body.a.b}`, `${headers.name}`, `${query.name}` are replaced
    /// by those values (whole, or as text inside a longer string).
    #[schema(value_type = Object)]
    pub input_mapping: Value,
    pub signature: InboundSignature,
    /// False: requests are 404.
    pub enabled: bool,
    /// When the trigger's API key expires.
    pub credential_expires_at: Option<DateTime<Utc>>,
    pub created_by: String,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "on push", "template": "hello-sequence", "signature": "github", "input_mapping": {"name": "${body.pusher.name}", "ref": "${body.ref}"}}))]
pub struct CreateInboundTrigger {
    #[serde(default)]
    #[schema(max_length = 200)]
    pub name: String,
    /// A stored chain ...
    #[schema(format = Uuid)]
    pub chain_id: Option<String>,
    /// ... or a template, by name: exactly one of the two.
    #[schema(max_length = 200)]
    pub template: Option<String>,
    /// A JSON object of at most 64 KiB; `{"body": "${body}"}` when absent.
    #[schema(value_type = Option<Object>)]
    pub input_mapping: Option<Value>,
    pub signature: Option<InboundSignature>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedInboundTrigger {
    pub trigger: InboundTrigger,
    /// The signing secret (`whsec_...`), shown this once.
    pub secret: String,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"enabled": false}))]
pub struct UpdateInboundTrigger {
    #[schema(max_length = 200)]
    pub name: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub input_mapping: Option<Value>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InboundTriggerList {
    /// Newest first.
    pub triggers: Vec<InboundTrigger>,
    /// Pass as `page_token` for the next page; absent on the last page.
    pub next_page_token: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReceivedWebhook {
    /// The run the request started; the same for a redelivery of the same webhook id.
    pub run_id: String,
}
