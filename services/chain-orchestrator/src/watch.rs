//! Event streams: a run's events (WatchRun) and all of a tenant's (WatchEvents).
//!
//! Both are read through the replica's fan-out ([`crate::fanout`]): the stored past through a
//! consumer of the stream's own, then the live feed the replica reads once for every watcher, one
//! sequence throughout, so nothing falls in a gap between "replayed" and "live" and nothing comes
//! twice, and `Event.sequence` (the stream sequence) lets a client resume where it stopped.
//! A run's events are enqueued in the transaction of the transition they report and published
//! by the outbox relay after it commits, so what the stream shows is never ahead of what GetRun
//! shows; it may be behind by the relay's latency.
//!
//! A live stream costs a broadcast receiver and a task's worth of work for as long as its client
//! keeps it, so a tenant may have at most `max_streams_per_tenant` open on a replica
//! ([`StreamSlots`]); a stream's slot is given back when the stream is dropped, whether it ended
//! or its client went away. A WatchEvents request names at most [`MAX_SUBJECTS`] patterns of at
//! most [`MAX_SUBJECT_BYTES`] each.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt};
use sankalpa_kit::auth::Principal;
use sankalpa_kit::events::{CHANNELS, CloudEvent};
use sankalpa_kit::outbox::EventAction;
use sankalpa_proto::v1 as pb;
use tonic::Status;
use uuid::Uuid;

use crate::State;
use crate::error::{ChainError, Result};
use crate::events::Action;
use crate::fanout::{Start, follow};
use crate::runs::store;

pub type EventStream = Pin<Box<dyn Stream<Item = Result<pb::Event, Status>> + Send>>;

/// After this long without an event, a run stream checks whether its run has ended with all its
/// events relayed, and if it still gets nothing for as long again, ends: its terminal event is
/// then not in the stream (a run that ended before this service had an outbox may have lost it
/// to a crash between commit and publish).
const IDLE_CHECK: Duration = Duration::from_secs(2);

/// The most subject patterns one WatchEvents request may name; each becomes a consumer filter.
pub const MAX_SUBJECTS: usize = 16;
/// The longest subject pattern, in bytes.
pub const MAX_SUBJECT_BYTES: usize = 256;

/// The event streams open on this replica, counted per tenant against a limit.
pub struct StreamSlots {
    limit: usize,
    open: Mutex<HashMap<String, usize>>,
}

/// One open stream's place in its tenant's count, given back when dropped.
pub struct StreamSlot {
    slots: Arc<StreamSlots>,
    tenant: String,
}

impl StreamSlots {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// A slot for one more stream of `tenant`, or RESOURCE_EXHAUSTED with the quota when the
    /// tenant has `limit` open here already.
    fn take(self: &Arc<Self>, tenant: &str) -> Result<StreamSlot> {
        let mut open = self.open.lock().expect("stream slots poisoned");
        let count = open.entry(tenant.to_owned()).or_insert(0);
        if *count >= self.limit {
            return Err(ChainError::QuotaExceeded {
                limit: u64::try_from(self.limit).unwrap_or(u64::MAX),
                message: format!(
                    "this tenant already has {} event streams open, the most it may have at \
                     once; close one first",
                    self.limit
                ),
            });
        }
        *count += 1;
        Ok(StreamSlot {
            slots: self.clone(),
            tenant: tenant.to_owned(),
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().expect("stream slots poisoned");
        if let Some(count) = open.get_mut(&self.tenant) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.tenant);
            }
        }
    }
}

/// `stream`, holding `slot` for as long as it lives: tonic drops a response stream when its
/// call ends, the client going away included.
fn holding(
    slot: StreamSlot,
    stream: impl futures::Stream<Item = Result<pb::Event, Status>> + Send + 'static,
) -> EventStream {
    Box::pin(stream.map(move |event| {
        let _held = &slot;
        event
    }))
}

/// Whether `subject` is one `filter` names, with NATS wildcards: `*` one token, `>` the rest.
pub(crate) fn subject_matches(filter: &str, subject: &str) -> bool {
    let mut subject_tokens = subject.split('.');
    for token in filter.split('.') {
        match (token, subject_tokens.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (expected, Some(actual)) if expected == actual => {}
            _ => return false,
        }
    }
    subject_tokens.next().is_none()
}

pub(crate) fn to_event(message: &async_nats::jetstream::Message) -> Option<pb::Event> {
    let sequence = message.info().ok()?.stream_sequence;
    let event: CloudEvent = serde_json::from_slice(&message.payload).ok()?;
    sankalpa_kit::events::delivered(&event, message.headers.as_ref());
    Some(pb::Event {
        id: event.id,
        source: event.source,
        r#type: event.kind,
        subject: event.subject,
        time: Some(prost_types::Timestamp {
            seconds: event.time.timestamp(),
            nanos: i32::try_from(event.time.timestamp_subsec_nanos()).unwrap_or(0),
        }),
        tenant_id: event.tenantid,
        data_json: event.data.to_string(),
        sequence,
    })
}

/// A run's events from the first (or after `after_sequence`), ending with its terminal event.
pub async fn run_events(
    state: Arc<State>,
    tenant: Uuid,
    run: Uuid,
    after_sequence: Option<u64>,
) -> Result<EventStream> {
    store::get(&state.pool, tenant, run).await?;
    let slot = state.streams.take(&tenant.to_string())?;
    let subject = state
        .events
        .subject("chains", &tenant.to_string(), &run.to_string(), ">");
    let start = after_sequence.map_or(Start::First, Start::After);
    let messages =
        Box::pin(follow(state.clone(), &tenant.to_string(), vec![subject], start).await?);
    let stop = state.stop.clone();
    let stream = futures::stream::unfold((messages, false), move |(mut messages, done)| {
        let state = state.clone();
        let stop = stop.clone();
        async move {
            if done {
                return None;
            }
            // Set once the run has ended and the outbox holds none of its events: all of them
            // are then in JetStream, and one more idle period lets the consumer deliver them.
            let mut settled = false;
            loop {
                let next = tokio::select! {
                    () = stop.cancelled() => return None,
                    next = tokio::time::timeout(IDLE_CHECK, messages.next()) => next,
                };
                match next {
                    Err(_idle) if settled => return None,
                    Err(_idle) => match relayed_to_the_end(&state, tenant, run).await {
                        Ok(ended) => settled = ended,
                        Err(err) => return Some((Err(Status::from(err)), (messages, true))),
                    },
                    Ok(None) => return None,
                    Ok(Some(Err(status))) => return Some((Err(status), (messages, true))),
                    Ok(Some(Ok(event))) => {
                        let terminal = Action::TERMINAL
                            .iter()
                            .any(|action| event.subject.ends_with(action.name()));
                        return Some((Ok(event), (messages, terminal)));
                    }
                }
            }
        }
    });
    Ok(holding(slot, stream))
}

/// Whether the run has ended and the outbox holds none of its events. Checked in that order: a
/// run's terminal event is enqueued with its terminal status, so once the status is seen the
/// event is either still pending or already stored in JetStream.
async fn relayed_to_the_end(state: &State, tenant: Uuid, run: Uuid) -> Result<bool> {
    if !store::get(&state.pool, tenant, run)
        .await?
        .status()
        .is_terminal()
    {
        return Ok(false);
    }
    let subjects = state
        .events
        .subject("chains", &tenant.to_string(), &run.to_string(), "");
    let pending: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM chains.outbox WHERE starts_with(event->>'subject', $1))",
    )
    .bind(subjects)
    .fetch_one(&state.pool)
    .await?;
    Ok(!pending)
}

/// The subject filter for `pattern` within `tenant`: the tenant token is always the caller's.
/// A pattern is at most [`MAX_SUBJECT_BYTES`] of dot-separated tokens, none empty or holding
/// whitespace, with `>` only last: what NATS takes as a filter.
fn tenant_pattern(prefix: &str, pattern: &str, tenant: &str) -> Result<String> {
    if pattern.len() > MAX_SUBJECT_BYTES {
        return Err(ChainError::invalid(
            "subjects",
            format!("a pattern may be at most {MAX_SUBJECT_BYTES} bytes"),
        ));
    }
    let mut tokens: Vec<&str> = pattern.split('.').collect();
    let last = tokens.len() - 1;
    let malformed = tokens.iter().enumerate().any(|(at, token)| {
        token.is_empty()
            || token.chars().any(char::is_whitespace)
            || (token.contains('>') && (*token != ">" || at != last))
            || (token.contains('*') && *token != "*")
    });
    if malformed {
        return Err(ChainError::invalid(
            "subjects",
            format!(
                "{pattern:?} is not a subject pattern (dot-separated tokens; `*` a token, `>` the rest)"
            ),
        ));
    }
    let channel = tokens[0];
    if channel != "*" && channel != ">" && !CHANNELS.contains(&channel) {
        return Err(ChainError::invalid(
            "subjects",
            format!(
                "{pattern:?} does not start with a channel ({})",
                CHANNELS.join(", ")
            ),
        ));
    }
    if channel == ">" {
        return Ok(format!("{prefix}*.{tenant}.>"));
    }
    match tokens.get(1).copied() {
        None | Some(">") => {
            tokens.truncate(1);
            tokens.extend([tenant, ">"]);
        }
        Some(_) => tokens[1] = tenant,
    }
    Ok(format!("{prefix}{}", tokens.join(".")))
}

/// The read permission an event needs, by its channel.
fn read_permission(channel: &str) -> String {
    format!("{channel}:read")
}

/// The tenant's events on `subjects` (every channel when empty), those the caller may read.
pub async fn tenant_events(
    state: Arc<State>,
    caller: Principal,
    subjects: &[String],
    after_sequence: Option<u64>,
) -> Result<EventStream> {
    if subjects.len() > MAX_SUBJECTS {
        return Err(ChainError::invalid(
            "subjects",
            format!("may name at most {MAX_SUBJECTS} patterns"),
        ));
    }
    let prefix = state.config.infra.subject_prefix.clone();
    let tenant = caller.tenant_id.clone();
    let patterns = if subjects.is_empty() {
        vec![format!("{prefix}*.{tenant}.>")]
    } else {
        subjects
            .iter()
            .map(|pattern| tenant_pattern(&prefix, pattern, &tenant))
            .collect::<Result<_>>()?
    };
    // A consumer's filters must each lie within one of the stream's subjects (`<channel>.>`),
    // so a pattern for every channel becomes one filter per channel.
    let filters = patterns
        .into_iter()
        .flat_map(
            |pattern| match pattern.strip_prefix(&format!("{prefix}*.")) {
                Some(rest) => CHANNELS
                    .iter()
                    .map(|channel| format!("{prefix}{channel}.{rest}"))
                    .collect(),
                None => vec![pattern],
            },
        )
        .collect();
    // Counted under the tenant id as WatchRun writes it, so both kinds share one count.
    let slot_key = Uuid::parse_str(&tenant).map_or_else(|_| tenant.clone(), |id| id.to_string());
    let slot = state.streams.take(&slot_key)?;
    let start = after_sequence.map_or(Start::Now, Start::After);
    let messages = follow(state.clone(), &slot_key, filters, start).await?;
    let stop = state.stop.clone();
    let stream = messages
        .take_until(stop.cancelled_owned())
        .filter(move |event| {
            let allowed = match event {
                Ok(event) => {
                    let channel = event
                        .subject
                        .strip_prefix(prefix.as_str())
                        .and_then(|subject| subject.split('.').next())
                        .unwrap_or_default();
                    caller.can(&read_permission(channel))
                }
                Err(_) => true,
            };
            futures::future::ready(allowed)
        });
    Ok(holding(slot, stream))
}

#[cfg(test)]
mod tests {
    use super::tenant_pattern;

    #[test]
    fn subjects_match_filters_token_by_token() {
        use super::subject_matches;
        assert!(subject_matches(
            "chains.t1.>",
            "chains.t1.run.step.completed"
        ));
        assert!(subject_matches("*.t1.>", "agents.t1.hello_world.started"));
        assert!(subject_matches("memory.t1.*.saved", "memory.t1.s.saved"));
        assert!(!subject_matches("chains.t1.>", "chains.t2.run.run.started"));
        assert!(!subject_matches(
            "chains.t1.>",
            "agents.t1.hello_world.started"
        ));
        assert!(!subject_matches("chains.t1.>", "chains.t1"));
        assert!(!subject_matches("memory.t1.*.saved", "memory.t1.s.x.saved"));
    }

    #[test]
    fn patterns_are_pinned_to_the_callers_tenant() {
        let t = "t1";
        assert_eq!(tenant_pattern("", "memory.>", t).unwrap(), "memory.t1.>");
        assert_eq!(
            tenant_pattern("", "chains.*.*.run.>", t).unwrap(),
            "chains.t1.*.run.>"
        );
        assert_eq!(
            tenant_pattern("p.", "chains.other.r.>", t).unwrap(),
            "p.chains.t1.r.>"
        );
        assert_eq!(tenant_pattern("", ">", t).unwrap(), "*.t1.>");
        assert_eq!(tenant_pattern("", "agents", t).unwrap(), "agents.t1.>");
        assert!(tenant_pattern("", "secrets.>", t).is_err());
    }

    #[test]
    fn malformed_or_long_patterns_are_refused() {
        let t = "t1";
        for pattern in [
            "chains..>",
            "chains.>.x",
            "chains.a b",
            "chains.t*",
            "chains.t>",
            "",
        ] {
            assert!(tenant_pattern("", pattern, t).is_err(), "{pattern:?}");
        }
        let long = format!("chains.{}", "x".repeat(super::MAX_SUBJECT_BYTES));
        assert!(tenant_pattern("", &long, t).is_err());
    }
}
