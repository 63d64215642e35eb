//! Events as clients read them: CloudEvents 1.0 structured JSON, from a run's or the
//! tenant's stream (SSE or WebSocket).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

/// An event as CloudEvents 1.0 structured JSON, as published on NATS, plus its stream sequence.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CloudEvent {
    pub specversion: String,
    pub id: String,
    /// The publishing service, e.g. `/sankalpa/chain-orchestrator`.
    pub source: String,
    /// e.g. `sankalpa.chains.step.completed`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The NATS subject, e.g. `chains.<tenant>.<run_id>.step.completed`.
    pub subject: String,
    pub time: Option<DateTime<Utc>>,
    pub datacontenttype: String,
    /// Extension attribute: the tenant the event belongs to.
    pub tenantid: String,
    /// Extension attribute: the JetStream sequence, to resume after (`after_sequence`).
    pub sequence: u64,
    #[schema(value_type = Object)]
    pub data: Box<RawValue>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunEventsQuery {
    /// Replay only events after this sequence (`Last-Event-ID` wins when sent).
    pub after_sequence: Option<u64>,
    /// The access token, for clients that cannot set `Authorization` (`EventSource`).
    pub access_token: Option<String>,
}
