//! Events: CloudEvents 1.0 (structured JSON) published to NATS JetStream.
//!
//! Every event goes into the stream `SANKALPA_EVENTS` (file storage, bounded by age and size),
//! created on first connect. Subjects are `<channel>.<tenant>.<...>` as ARCHITECTURE.md lists
//! them, behind an optional prefix that keeps tests apart. Publishing waits for JetStream's
//! acknowledgement, so an event that was reported published is stored; the event id is also the
//! `Nats-Msg-Id`, so a retried publish is not stored twice.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::context::{PublishAckFuture, PublishError};
use async_nats::jetstream::{self, stream};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::Infra;
use crate::telemetry;

/// The channels events are published on; each is the first token of a subject.
pub const CHANNELS: &[&str] = &[
    "agents",
    "chains",
    "memory",
    "market",
    "webhooks",
    "schedules",
];

/// Trace context (W3C `traceparent`, ...) as it travels in a message's headers.
pub type TraceHeaders = HashMap<String, String>;

const MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CloudEvent {
    pub specversion: String,
    pub id: String,
    pub source: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub subject: String,
    pub time: DateTime<Utc>,
    pub datacontenttype: String,
    /// CloudEvents extension attribute: the tenant the event belongs to.
    pub tenantid: String,
    pub data: serde_json::Value,
}

#[derive(Clone)]
pub struct EventBus {
    jetstream: jetstream::Context,
    stream: String,
    prefix: String,
    source: String,
}

impl EventBus {
    /// Connects to JetStream and makes sure the stream `infra` names exists. `source` names the
    /// publishing service (`/sankalpa/memory`); events carry it followed by the instance.
    pub async fn connect(
        client: async_nats::Client,
        infra: &Infra,
        source: &str,
    ) -> anyhow::Result<Self> {
        let stream_name = infra.events_stream.as_str();
        let prefix = infra.subject_prefix.as_str();
        let jetstream = jetstream::new(client);
        let subjects: Vec<String> = CHANNELS
            .iter()
            .map(|channel| format!("{prefix}{channel}.>"))
            .collect();
        let mut stream = jetstream
            .get_or_create_stream(stream::Config {
                name: stream_name.to_owned(),
                subjects: subjects.clone(),
                storage: stream::StorageType::File,
                max_age: MAX_AGE,
                max_bytes: infra.events_max_bytes,
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            })
            .await
            .map_err(|err| anyhow::anyhow!("could not create stream {stream_name}: {err}"))?;
        // A stream made before a channel was added lacks its subjects, and publishing on them
        // would find no stream: the channel is added to it, keeping every other setting.
        let info = stream
            .info()
            .await
            .map_err(|err| anyhow::anyhow!("could not read stream {stream_name}: {err}"))?;
        let missing: Vec<String> = subjects
            .into_iter()
            .filter(|subject| !info.config.subjects.contains(subject))
            .collect();
        if !missing.is_empty() {
            let mut config = info.config.clone();
            config.subjects.extend(missing);
            jetstream
                .update_stream(config)
                .await
                .map_err(|err| anyhow::anyhow!("could not update stream {stream_name}: {err}"))?;
        }
        describe_metrics();
        Ok(Self {
            jetstream,
            stream: stream_name.to_owned(),
            prefix: prefix.to_owned(),
            source: format!("{source}/{}", infra.instance),
        })
    }

    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The subject `<prefix><channel>.<tenant>.<entity>.<action>`.
    pub fn subject(&self, channel: &str, tenant: &str, entity: &str, action: &str) -> String {
        format!("{}{channel}.{tenant}.{entity}.{action}", self.prefix)
    }

    /// Publishes `data` as a CloudEvent of type `sankalpa.<channel>.<action>` about `entity` (an
    /// agent, run, session or item) and waits until JetStream has stored it.
    ///
    /// Publishing after a commit loses the event if the process dies in between: a service
    /// announcing a committed change should enqueue it through [`crate::outbox`] instead.
    pub async fn publish(
        &self,
        channel: &str,
        tenant: &str,
        entity: &str,
        action: &str,
        data: serde_json::Value,
    ) -> anyhow::Result<CloudEvent> {
        let (event, stored) = self
            .publish_unacked(channel, tenant, entity, action, data)
            .await?;
        stored.await?;
        Ok(event)
    }

    /// Like [`publish`](Self::publish), but returns once the event is written to the
    /// connection, with the future of JetStream's acknowledgement: a caller publishing several
    /// events can send them all (in order, on the one connection) and then await every ack,
    /// paying one round trip instead of one per event.
    pub async fn publish_unacked(
        &self,
        channel: &str,
        tenant: &str,
        entity: &str,
        action: &str,
        data: serde_json::Value,
    ) -> anyhow::Result<(CloudEvent, PublishAckFuture)> {
        let (event, trace) = self.traced_event(channel, tenant, entity, action, data);
        let payload = serde_json::to_vec(&event)?;
        let stored = self
            .send(event.subject.clone(), &event.id, payload, &trace)
            .await?;
        Ok((event, stored))
    }

    /// The event [`publish`](Self::publish) would send and the current span's trace context
    /// to send it with.
    pub(crate) fn traced_event(
        &self,
        channel: &str,
        tenant: &str,
        entity: &str,
        action: &str,
        data: serde_json::Value,
    ) -> (CloudEvent, TraceHeaders) {
        let event = self.event(channel, tenant, entity, action, data);
        // The message's own span, of kind producer, as the messaging semantic conventions
        // have it: a consumer's span joins the trace under it, by the headers sent.
        let span = tracing::info_span!(
            "event.create",
            otel.name = %format_args!("create {}", event.kind),
            otel.kind = "producer",
            messaging.system = "nats",
            "messaging.operation.type" = "create",
            messaging.destination.name = %event.subject,
            messaging.message.id = %event.id,
        );
        let mut trace = TraceHeaders::new();
        telemetry::inject_from(&span, &mut trace);
        (event, trace)
    }

    /// The event [`publish`](Self::publish) would send, with a fresh id and `data` fitted to
    /// [`MAX_EVENT_DATA_BYTES`](crate::limits::MAX_EVENT_DATA_BYTES).
    fn event(
        &self,
        channel: &str,
        tenant: &str,
        entity: &str,
        action: &str,
        data: serde_json::Value,
    ) -> CloudEvent {
        CloudEvent {
            specversion: "1.0".to_owned(),
            id: uuid::Uuid::now_v7().to_string(),
            source: self.source.clone(),
            kind: format!("sankalpa.{channel}.{action}"),
            subject: self.subject(channel, tenant, entity, action),
            time: Utc::now(),
            datacontenttype: "application/json".to_owned(),
            tenantid: tenant.to_owned(),
            data: crate::limits::fit(data, crate::limits::MAX_EVENT_DATA_BYTES),
        }
    }

    /// Sends `payload`, the event `id` as structured JSON, on `subject` with `trace` as
    /// headers, returning once the message is written to the connection; the returned future
    /// resolves when JetStream has stored it. Splitting the two lets the outbox relay send a whole
    /// batch before waiting on any ack, while the one connection keeps the batch in order.
    pub(crate) async fn send(
        &self,
        subject: String,
        id: &str,
        payload: Vec<u8>,
        trace: &TraceHeaders,
    ) -> Result<PublishAckFuture, PublishError> {
        let mut headers = async_nats::HeaderMap::new();
        for (name, value) in trace {
            headers.insert(name.as_str(), value.as_str());
        }
        headers.insert("Nats-Msg-Id", id);
        headers.insert("Content-Type", "application/cloudevents+json");
        self.jetstream
            .publish_with_headers(subject, headers, payload.into())
            .await
    }
}

/// Records that `event`, read from JetStream with `headers`, is being relayed to a consumer (a
/// client's event stream): a span of kind consumer, child of the event's producer span when the
/// headers carry its trace, with the event's id; and the time since the event was made in
/// `events_consume_lag_seconds`, by channel.
pub fn delivered(event: &CloudEvent, headers: Option<&async_nats::HeaderMap>) {
    let span = tracing::info_span!(
        parent: None,
        "event.process",
        otel.name = %format_args!("process {}", event.kind),
        otel.kind = "consumer",
        messaging.system = "nats",
        "messaging.operation.type" = "process",
        messaging.destination.name = %event.subject,
        messaging.message.id = %event.id,
    );
    if let Some(headers) = headers {
        telemetry::adopt(&span, &NatsHeaders(headers));
    }
    // `sankalpa.<channel>.<action>`: the channel is a handful of values, the subject is not.
    let channel = event.kind.split('.').nth(1).unwrap_or_default().to_owned();
    let lag = (Utc::now() - event.time).to_std().unwrap_or_default();
    metrics::histogram!("events_consume_lag_seconds", "channel" => channel)
        .record(lag.as_secs_f64());
}

fn describe_metrics() {
    metrics::describe_histogram!(
        "events_consume_lag_seconds",
        metrics::Unit::Seconds,
        "From an event's time to its relay to a client's stream, by channel."
    );
    for channel in CHANNELS {
        // Looking a histogram up registers it; it is rendered, empty, until its first sample.
        let _ = metrics::histogram!("events_consume_lag_seconds", "channel" => *channel);
    }
}

/// Reads trace context from a NATS message's headers.
struct NatsHeaders<'a>(&'a async_nats::HeaderMap);

impl opentelemetry::propagation::Extractor for NatsHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(async_nats::HeaderValue::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(name, _)| name.as_ref()).collect()
    }
}
