//! Takes events from JetStream into deliveries. A durable pull consumer (`triggers`), shared by
//! every replica, reads the event stream; the service's own channel is skipped (acknowledged,
//! matched against nothing: a `delivered` event delivered would announce another, for ever),
//! here rather than by the consumer's subject filters, which NATS servers before 2.10 ignore
//! when there are several. Each batch of events
//! is matched against the enabled endpoints of their tenants and a delivery row inserted per
//! match, and only then are the events acknowledged. A crash before the acknowledgement has the
//! stream deliver them again, and the rows already inserted are not inserted twice (one per
//! event and endpoint), so no event is lost and none is delivered to an endpoint twice over.
//!
//! A consumer made for the first time starts at new events: an endpoint receives the events
//! after it exists, not the stream's past week.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use futures::StreamExt;
use sankalpa_kit::backoff::Backoff;
use sankalpa_kit::config::Infra;
use sankalpa_kit::events::CloudEvent;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::State;
use crate::deliveries::{self, NewDelivery};
use crate::endpoints;
use crate::filters;

/// The durable consumer's name: one for all replicas, which share its messages.
pub const CONSUMER: &str = "triggers";
/// Events taken into one batch at most: one query of endpoints, one insert, then the acks.
const BATCH: usize = 256;
/// How long an event read but not acknowledged waits before the stream delivers it again.
const ACK_WAIT: Duration = Duration::from_secs(30);

/// The service's durable consumer of the event stream, made if it does not exist.
pub async fn consumer(nats: async_nats::Client, infra: &Infra) -> anyhow::Result<PullConsumer> {
    let jetstream = async_nats::jetstream::new(nats);
    let stream = jetstream
        .get_stream(&infra.events_stream)
        .await
        .map_err(|err| anyhow::anyhow!("could not find stream {}: {err}", infra.events_stream))?;
    stream
        .get_or_create_consumer(
            CONSUMER,
            pull::Config {
                durable_name: Some(CONSUMER.to_owned()),
                description: Some("triggers: events to webhook deliveries".to_owned()),
                deliver_policy: DeliverPolicy::New,
                ack_policy: AckPolicy::Explicit,
                ack_wait: ACK_WAIT,
                max_ack_pending: 10_000,
                ..Default::default()
            },
        )
        .await
        .map_err(|err| anyhow::anyhow!("could not make the consumer {CONSUMER}: {err}"))
}

/// Reads events until `stop`, making the consumer's message stream again when it fails.
pub async fn run(state: Arc<State>, consumer: PullConsumer, stop: CancellationToken) {
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    while !stop.is_cancelled() {
        let messages = match consumer.messages().await {
            Ok(messages) => messages,
            Err(err) => {
                tracing::warn!(error = %err, "could not read the event stream; retrying");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(backoff.next_wait()) => continue,
                }
            }
        };
        let mut batches = messages.ready_chunks(BATCH);
        loop {
            let batch = tokio::select! {
                () = stop.cancelled() => return,
                batch = batches.next() => batch,
            };
            let Some(batch) = batch else { break };
            let mut read = Vec::with_capacity(batch.len());
            for message in batch {
                match message {
                    Ok(message) => read.push(message),
                    Err(err) => tracing::warn!(error = %err, "could not read an event"),
                }
            }
            take(&state, read).await;
            backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        }
    }
}

/// Stores the deliveries of a batch, then acknowledges its events; if they cannot be stored,
/// asks for the batch again shortly instead.
async fn take(state: &State, batch: Vec<async_nats::jetstream::Message>) {
    let events: Vec<Option<CloudEvent>> = batch
        .iter()
        .map(|message| serde_json::from_slice(&message.payload).ok())
        .collect();
    let tenants: Vec<Uuid> = events
        .iter()
        .flatten()
        .filter_map(|event| Uuid::parse_str(&event.tenantid).ok())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let stored = async {
        if tenants.is_empty() {
            return Ok(0);
        }
        let endpoints = endpoints::enabled_of(&state.pool, &tenants).await?;
        let mut new = Vec::new();
        for (message, event) in batch.iter().zip(&events) {
            let Some(event) = event else { continue };
            let subject = filters::subject_without_tenant(&state.subject_prefix, &event.subject);
            if subject.split('.').next() == Some(crate::events::CHANNEL) {
                continue;
            }
            for (endpoint, tenant, filters_of) in &endpoints {
                if tenant.to_string() == event.tenantid
                    && filters::matches(filters_of, &event.kind, &subject)
                {
                    new.push(NewDelivery {
                        tenant: *tenant,
                        endpoint: *endpoint,
                        event_id: event.id.clone(),
                        event_type: event.kind.clone(),
                        // The event exactly as it was stored is what is signed and sent.
                        body: String::from_utf8_lossy(&message.payload).into_owned(),
                    });
                }
            }
        }
        deliveries::insert(&state.pool, &new).await
    }
    .await;
    match stored {
        Ok(inserted) => {
            if inserted > 0 {
                state.wake.notify_one();
            }
            for message in &batch {
                if let Err(err) = message.ack().await {
                    // Delivered again after the ack wait, and found stored then.
                    tracing::warn!(error = %err, "could not acknowledge an event");
                }
            }
        }
        Err(err) => {
            tracing::warn!(error = %err, events = batch.len(),
                "could not store deliveries; the events will be read again");
            for message in &batch {
                let _ = message
                    .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                    .await;
            }
        }
    }
}
