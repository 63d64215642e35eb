//! One live reading of the event stream per replica, fanned out to every event stream open on it.
//!
//! A JetStream consumer per open stream made a thousand watchers of one tenant cost a thousand
//! consumers, each re-reading every event on the server. Instead the [`Hub`] reads the stream
//! once (an ordered consumer over every subject, from the moment it starts) and hands each event,
//! decoded once, to the tenant's watchers through a bounded broadcast channel. Events of tenants
//! nobody watches here are dropped undecoded, and a replica nobody watches does not read the
//! stream at all: the reading starts with the first watcher and stops within [`IDLE_CHECK`] of
//! the last one leaving.
//!
//! A watcher that replays (a run's events from its first, or after `Last-Event-ID`) reads the
//! stored past through a consumer of its own until that consumer has nothing pending, having
//! subscribed to the live feed first: whatever the replay did not reach, the feed holds, and
//! the sequence numbers drop what both saw (see [`follow`]). A watcher that falls more than
//! `Config::stream_buffer` events behind the feed catches up the same way, from the last event
//! it took, so a slow client costs itself a replay, never the others their events.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::consumer::pull::OrderedConfig;
use futures::{Stream, StreamExt};
use sankalpa_proto::v1 as pb;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::Status;

use crate::State;
use crate::error::{ChainError, Result};

/// An event as the feed delivers it: its NATS subject and the event, decoded once.
pub struct Delivered {
    pub subject: String,
    pub event: pb::Event,
}

/// The tenants' live feeds on this replica, and the reading that fills them while any is open.
pub struct Hub {
    buffer: usize,
    prefix: String,
    tenants: Mutex<HashMap<String, broadcast::Sender<Arc<Delivered>>>>,
    /// Whether the stream is being read. Held while a feed is added and while the reader decides
    /// to stop, so a watcher either joins a reading or starts one, never falls between the two.
    reading: tokio::sync::Mutex<bool>,
    tasks: TaskTracker,
    stop: CancellationToken,
}

/// How often a reading checks whether anyone still watches; it stops when nobody does.
const IDLE_CHECK: Duration = Duration::from_secs(5);

impl Hub {
    /// Feeds holding `buffer` events for their slowest watcher; subjects start with `prefix`. The
    /// reading runs on `tasks` and ends at `stop`.
    pub fn new(buffer: usize, prefix: &str, tasks: TaskTracker, stop: CancellationToken) -> Self {
        Self {
            buffer: buffer.max(1),
            prefix: prefix.to_owned(),
            tenants: Mutex::new(HashMap::new()),
            reading: tokio::sync::Mutex::new(false),
            tasks,
            stop,
        }
    }

    /// A receiver of `tenant`'s live feed, with the stream read from now on: a replica nobody
    /// watches reads nothing, so events cost it nothing.
    async fn subscribe(
        state: &Arc<State>,
        tenant: &str,
    ) -> Result<broadcast::Receiver<Arc<Delivered>>> {
        let hub = &state.hub;
        let mut reading = hub.reading.lock().await;
        let receiver = hub
            .tenants
            .lock()
            .expect("hub poisoned")
            .entry(tenant.to_owned())
            .or_insert_with(|| broadcast::channel(hub.buffer).0)
            .subscribe();
        if !*reading {
            let last = state
                .jetstream
                .get_stream(state.events.stream())
                .await
                .map_err(|err| {
                    ChainError::Unavailable(format!("the event stream is unavailable: {err}"))
                })?
                .cached_info()
                .state
                .last_sequence;
            hub.tasks.spawn(read(state.clone(), last + 1));
            *reading = true;
        }
        Ok(receiver)
    }

    /// Drops the feeds nobody receives any more; true when none is left.
    fn prune(&self) -> bool {
        let mut tenants = self.tenants.lock().expect("hub poisoned");
        tenants.retain(|_, feed| feed.receiver_count() > 0);
        tenants.is_empty()
    }

    /// Hands a message to its tenant's watchers, if it has any here.
    fn dispatch(&self, message: &async_nats::jetstream::Message) {
        let subject = message.subject.as_str();
        let Some(tenant) = subject
            .strip_prefix(self.prefix.as_str())
            .and_then(|rest| rest.split('.').nth(1))
        else {
            return;
        };
        let feed = {
            let tenants = self.tenants.lock().expect("hub poisoned");
            match tenants.get(tenant) {
                Some(feed) if feed.receiver_count() > 0 => feed.clone(),
                _ => return,
            }
        };
        if let Some(event) = crate::watch::to_event(message) {
            // No receiver left since the check: nobody to tell.
            let _ = feed.send(Arc::new(Delivered {
                subject: subject.to_owned(),
                event,
            }));
        }
    }
}

/// Reads the event stream from sequence `first` and dispatches every event, until nobody on this
/// replica watches or the service stops. A consumer that fails is made again from the sequence
/// after the last event read, so the feed skips nothing.
async fn read(state: Arc<State>, first: u64) {
    let mut from = DeliverPolicy::ByStartSequence {
        start_sequence: first,
    };
    loop {
        let failed = tokio::select! {
            () = state.hub.stop.cancelled() => return,
            failed = read_from(&state, &mut from) => match failed {
                Some(failed) => failed,
                None => return,
            },
        };
        tracing::warn!(error = %failed, "the live event feed failed; reading it again");
        tokio::select! {
            () = state.hub.stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

/// Reads and dispatches until the consumer fails (`Some`) or nobody watches (`None`); `from`
/// follows the last event read.
async fn read_from(state: &State, from: &mut DeliverPolicy) -> Option<ChainError> {
    let mut messages = match consume(state, Vec::new(), *from).await {
        Ok((messages, _)) => messages,
        Err(err) => return Some(err),
    };
    let mut idle_check = tokio::time::interval(IDLE_CHECK);
    idle_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            message = messages.next() => match message {
                Some(Ok(message)) => {
                    if let Ok(info) = message.info() {
                        *from = DeliverPolicy::ByStartSequence {
                            start_sequence: info.stream_sequence + 1,
                        };
                    }
                    state.hub.dispatch(&message);
                }
                Some(Err(err)) => {
                    return Some(ChainError::Unavailable(format!("the event feed failed: {err}")));
                }
                None => return Some(ChainError::Unavailable("the event feed ended".to_owned())),
            },
            _ = idle_check.tick() => {
                let mut reading = state.hub.reading.lock().await;
                if state.hub.prune() {
                    *reading = false;
                    return None;
                }
            }
        }
    }
}

pub type Messages = Pin<
    Box<
        dyn Stream<
                Item = std::result::Result<
                    async_nats::jetstream::Message,
                    async_nats::jetstream::consumer::pull::OrderedError,
                >,
            > + Send,
    >,
>;

/// An ordered consumer of the stream on `filters` (every subject when empty), from
/// `deliver_policy` on, and how many messages it has pending as it starts.
///
/// One filter goes in `filter_subject`, which every JetStream server honours; several need
/// `filter_subjects`, which servers before 2.10 ignore without a word (Debian's 2.9 among them)
/// and would then hand out every tenant's events: callers check each message's subject too.
async fn consume(
    state: &State,
    filters: Vec<String>,
    deliver_policy: DeliverPolicy,
) -> Result<(Messages, u64)> {
    let stream = state
        .jetstream
        .get_stream(state.events.stream())
        .await
        .map_err(|err| {
            ChainError::Unavailable(format!("the event stream is unavailable: {err}"))
        })?;
    let config = match filters.as_slice() {
        [] => OrderedConfig {
            deliver_policy,
            ..Default::default()
        },
        [one] => OrderedConfig {
            filter_subject: one.clone(),
            deliver_policy,
            ..Default::default()
        },
        _ => OrderedConfig {
            filter_subjects: filters,
            deliver_policy,
            ..Default::default()
        },
    };
    let consumer = stream
        .create_consumer(config)
        .await
        .map_err(|err| ChainError::Unavailable(format!("could not read the events: {err}")))?;
    let pending = consumer.cached_info().num_pending;
    let messages = consumer
        .messages()
        .await
        .map_err(|err| ChainError::Unavailable(format!("could not read the events: {err}")))?;
    Ok((Box::pin(messages), pending))
}

/// Where a watcher starts.
#[derive(Debug, Clone, Copy)]
pub enum Start {
    /// With the stream's first event on its subjects.
    First,
    /// After the event of this sequence.
    After(u64),
    /// With the next event published.
    Now,
}

/// What a watcher is doing: replaying through a consumer of its own, or taking the live feed.
enum Phase {
    Replay(Messages),
    Live,
}

struct Follower {
    state: Arc<State>,
    tenant: String,
    filters: Vec<String>,
    live: broadcast::Receiver<Arc<Delivered>>,
    phase: Phase,
    /// The sequence of the last event taken, replayed or live.
    last: u64,
}

impl Follower {
    /// Subscribes to the live feed, then replays what is stored after `last` until caught up.
    async fn catch_up(&mut self, from: DeliverPolicy) -> Result<()> {
        self.live = Hub::subscribe(&self.state, &self.tenant).await?;
        let (messages, pending) = consume(&self.state, self.filters.clone(), from).await?;
        self.phase = if pending == 0 {
            Phase::Live
        } else {
            Phase::Replay(messages)
        };
        Ok(())
    }

    fn wanted(&self, subject: &str) -> bool {
        self.filters
            .iter()
            .any(|filter| crate::watch::subject_matches(filter, subject))
    }

    /// The next event on the watcher's subjects; `Err` ends the stream.
    async fn next(&mut self) -> std::result::Result<pb::Event, Status> {
        loop {
            match &mut self.phase {
                Phase::Replay(messages) => match messages.next().await {
                    Some(Ok(message)) => {
                        let Ok(info) = message.info() else { continue };
                        let (sequence, pending) = (info.stream_sequence, info.pending);
                        if pending == 0 {
                            self.phase = Phase::Live;
                        }
                        if sequence <= self.last {
                            continue;
                        }
                        self.last = sequence;
                        if self.wanted(message.subject.as_str())
                            && let Some(event) = crate::watch::to_event(&message)
                        {
                            return Ok(event);
                        }
                    }
                    Some(Err(err)) => {
                        return Err(Status::unavailable(format!(
                            "the event stream failed: {err}"
                        )));
                    }
                    None => self.phase = Phase::Live,
                },
                Phase::Live => match self.live.recv().await {
                    Ok(delivered) => {
                        if delivered.event.sequence <= self.last {
                            continue;
                        }
                        self.last = delivered.event.sequence;
                        if self.wanted(&delivered.subject) {
                            return Ok(delivered.event.clone());
                        }
                    }
                    Err(RecvError::Lagged(_)) => {
                        metrics::counter!("chains_event_streams_lagged_total").increment(1);
                        let from = DeliverPolicy::ByStartSequence {
                            start_sequence: self.last.saturating_add(1),
                        };
                        self.catch_up(from).await.map_err(Status::from)?;
                    }
                    Err(RecvError::Closed) => {
                        return Err(Status::unavailable("the live event feed stopped"));
                    }
                },
            }
        }
    }
}

/// The tenant's events on `filters` (NATS subject patterns within the tenant), from `start` on,
/// replayed and then live, each once, in stream order.
pub async fn follow(
    state: Arc<State>,
    tenant: &str,
    filters: Vec<String>,
    start: Start,
) -> Result<impl Stream<Item = std::result::Result<pb::Event, Status>> + Send + use<>> {
    let live = Hub::subscribe(&state, tenant).await?;
    let mut follower = Follower {
        state,
        tenant: tenant.to_owned(),
        filters,
        live,
        phase: Phase::Live,
        last: 0,
    };
    match start {
        Start::Now => {}
        Start::First => follower.catch_up(DeliverPolicy::All).await?,
        Start::After(sequence) => {
            follower.last = sequence;
            follower
                .catch_up(DeliverPolicy::ByStartSequence {
                    // Saturating: a client may send any number, and u64::MAX + 1 would wrap.
                    start_sequence: sequence.saturating_add(1),
                })
                .await?;
        }
    }
    Ok(futures::stream::unfold(
        Some(follower),
        |follower| async move {
            let mut follower = follower?;
            match follower.next().await {
                Ok(event) => Some((Ok(event), Some(follower))),
                Err(status) => Some((Err(status), None)),
            }
        },
    ))
}

/// Describes the fan-out's metrics and registers them at zero.
pub fn describe_metrics() {
    metrics::describe_counter!(
        "chains_event_streams_lagged_total",
        "Event streams that fell behind the live feed's buffer and caught up from JetStream."
    );
    metrics::counter!("chains_event_streams_lagged_total").increment(0);
}
