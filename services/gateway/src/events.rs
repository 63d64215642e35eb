//! Live events, as CloudEvents JSON: a chain run's (`GET /api/chains/runs/{id}/events`, replay
//! then live, ending after the run's terminal event) and all of the caller's tenant
//! (`GET /api/events`), both as Server-Sent Events, and the tenant's over a WebSocket (`/ws`).
//!
//! The chain orchestrator serves both streams (WatchRun, WatchEvents) from JetStream and filters
//! them to the caller's tenant and read permissions; the gateway only reshapes them. Each SSE
//! event's `id` is the event's JetStream sequence, so a reconnecting `EventSource` sends it back
//! as `Last-Event-ID` and the stream resumes after it; `event` is the CloudEvents type, `data`
//! the CloudEvent. Browsers cannot set headers on `EventSource` or `WebSocket`, so these three
//! routes also take the access token as `?access_token=` ([`crate::authn::token_from_query`]).
//! Every stream ends when the gateway shuts down, and when its caller no longer holds: each
//! checks its credential again every [`CALLER_RECHECK`] and as soon as a revocation arrives,
//! and ends with a 401 problem (SSE `error` event, WebSocket error frame and close 1008) once
//! the token has expired or was revoked (a logout, the user deleted or given other roles, the
//! API key revoked).
//!
//! A WebSocket takes frames and messages of at most [`MAX_WS_MESSAGE_BYTES`], and at most
//! [`MAX_SUBSCRIPTION_CHANGES`] subscription changes per minute: each change opens a new
//! stream upstream. The orchestrator bounds the streams each tenant holds open.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, Stream, StreamExt};
use sankalpa_api::events::{CloudEvent, RunEventsQuery};
use sankalpa_kit::problem::Problem;
use sankalpa_proto::v1;
use serde::Deserialize;
use serde_json::value::RawValue;
use tonic::Streaming;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::authn::{Authenticator, Caller};
use crate::json::{Rest, timestamp};

/// How often a live stream checks its caller's credential again, at the longest.
pub const CALLER_RECHECK: Duration = Duration::from_secs(30);
/// The largest WebSocket frame or message a client may send (a subscription is a few hundred
/// bytes; the default, 64 MiB, would let one message hold that much).
pub const MAX_WS_MESSAGE_BYTES: usize = 64 * 1024;
/// Subscription changes a WebSocket may make per minute; more are answered with an error frame.
pub const MAX_SUBSCRIPTION_CHANGES: u32 = 30;

/// When a stream checks its caller again: every [`CALLER_RECHECK`], and whenever a revocation
/// arrives.
struct CallerCheck {
    caller: Caller,
    revocations: tokio::sync::watch::Receiver<u64>,
    next: tokio::time::Instant,
}

impl CallerCheck {
    fn new(authenticator: &Authenticator, caller: Caller) -> Self {
        Self {
            caller,
            revocations: authenticator.revocations(),
            next: tokio::time::Instant::now() + CALLER_RECHECK,
        }
    }

    /// Resolves when a check is due.
    async fn due(&mut self) {
        tokio::select! {
            changed = self.revocations.changed() => {
                if changed.is_err() {
                    // No more revocations can come: only the timer is left.
                    tokio::time::sleep_until(self.next).await;
                }
            }
            () = tokio::time::sleep_until(self.next) => {}
        }
    }

    /// Checks the caller; `Err` is the 401 to end the stream with. A check that cannot be
    /// made (auth unreachable for an API key) keeps the stream: an outage is not a revocation.
    async fn run(&mut self, authenticator: &Authenticator) -> Result<(), Problem> {
        self.next = tokio::time::Instant::now() + CALLER_RECHECK;
        match authenticator.recheck(&self.caller).await {
            Ok(caller) => {
                self.caller = caller;
                Ok(())
            }
            Err(problem) if problem.status == 401 => {
                metrics::counter!("gateway_streams_closed_unauthenticated_total").increment(1);
                Err(problem)
            }
            Err(problem) => {
                tracing::warn!(detail = ?problem.detail, "could not check a stream's caller again");
                Ok(())
            }
        }
    }
}

pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(run_events))
        .routes(routes!(tenant_events))
        .routes(routes!(websocket))
}

impl Rest for v1::Event {
    type Shown = CloudEvent;

    fn rest(self) -> CloudEvent {
        // Publishers serialise `data` themselves, so it is JSON; should it ever not be, it is
        // still delivered, as a string, rather than dropping the self.
        let data = match serde_json::from_str::<&RawValue>(&self.data_json) {
            Ok(_) => RawValue::from_string(self.data_json),
            Err(_) => serde_json::value::to_raw_value(&self.data_json),
        }
        .expect("JSON checked above, or a string, is JSON");
        CloudEvent {
            specversion: "1.0".to_owned(),
            id: self.id,
            source: self.source,
            kind: self.r#type,
            subject: self.subject,
            time: timestamp(self.time),
            datacontenttype: "application/json".to_owned(),
            tenantid: self.tenant_id,
            sequence: self.sequence,
            data,
        }
    }
}

fn cloud_event_json(event: v1::Event) -> (u64, String, String) {
    let sequence = event.sequence;
    let kind = event.r#type.clone();
    let json = serde_json::to_string(&event.rest())
        .expect("a CloudEvent of strings, numbers and JSON always serialises");
    (sequence, kind, json)
}

fn sse_error(problem: &Problem) -> SseEvent {
    SseEvent::default()
        .event("error")
        .json_data(&problem.document)
        .unwrap_or_else(|_| SseEvent::default().event("error"))
}

/// A stream of gRPC events as SSE: each event, then, should the stream fail or its caller no
/// longer hold, one `error` event with the problem; it ends with the gRPC stream or when the
/// gateway shuts down.
fn sse(state: &Arc<AppState>, caller: Caller, events: Streaming<v1::Event>) -> Response {
    let check = CallerCheck::new(&state.authenticator, caller);
    let live = Some((events, check, state.clone()));
    let stream = futures::stream::unfold(live, |live| async move {
        let (mut events, mut check, state) = live?;
        loop {
            tokio::select! {
                () = check.due() => {
                    if let Err(problem) = check.run(&state.authenticator).await {
                        return Some((Ok::<_, Infallible>(sse_error(&problem)), None));
                    }
                }
                message = events.message() => return match message {
                    Ok(Some(event)) => {
                        let (sequence, kind, json) = cloud_event_json(event);
                        let event = SseEvent::default()
                            .id(sequence.to_string())
                            .event(kind)
                            .data(json);
                        Some((Ok(event), Some((events, check, state))))
                    }
                    Ok(None) => None,
                    Err(status) => {
                        tracing::warn!(error = %status, "an event stream failed");
                        Some((Ok(sse_error(&Problem::from(status))), None))
                    }
                },
            }
        }
    });
    let stream = stream.take_until(state.streams_end.clone().cancelled_owned());
    no_buffering(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// Asks proxies (nginx honours this) not to buffer the stream, which would hold events back.
pub(crate) fn no_buffering(
    sse: Sse<impl Stream<Item = Result<SseEvent, Infallible>> + Send + 'static>,
) -> Response {
    let mut response = sse.into_response();
    response.headers_mut().insert(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    response
}

/// Where to resume: the `Last-Event-ID` a reconnecting `EventSource` sends, else the query's
/// `after_sequence`.
fn resume_after(headers: &HeaderMap, after_sequence: Option<u64>) -> Result<Option<u64>, Problem> {
    match headers.get("last-event-id") {
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .map(Some)
            .ok_or_else(|| Problem::invalid("Last-Event-ID", "must be an event's sequence number")),
        None => Ok(after_sequence),
    }
}

/// A streaming request: the caller's token, and no deadline, since a stream lasts as long as the
/// client listens (dropping the response drops the call).
fn streaming_request<T>(caller: &Caller, message: T) -> Result<tonic::Request<T>, Problem> {
    Ok(sankalpa_kit::auth::with_bearer(message, &caller.token)?)
}

/// A run's events as Server-Sent Events: every one already published, in order, then live ones;
/// the stream ends after run.completed, run.failed or run.cancelled.
#[utoipa::path(
    get,
    path = "/api/chains/runs/{id}/events",
    tag = "events",
    params(
        ("id" = String, Path, description = "The run's id"),
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this sequence (sent by a reconnecting EventSource)"),
        RunEventsQuery,
    ),
    security(("bearer" = []), ("api_key" = []), ("access_token" = [])),
    responses(
        (status = 200, description = "`text/event-stream`: `id` the sequence, `event` the CloudEvents type, `data` the CloudEvent", body = CloudEvent, content_type = "text/event-stream"),
        (status = 403, description = "Missing chains:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run in the caller's tenant", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn run_events(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<RunEventsQuery>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    caller.require("chains:read")?;
    let request = v1::WatchRunRequest {
        run_id: id,
        after_sequence: resume_after(&headers, query.after_sequence)?,
    };
    let events = state
        .chains()
        .watch_run(streaming_request(&caller, request)?)
        .await?
        .into_inner();
    Ok(sse(&state, caller, events))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// NATS subject patterns, comma-separated, e.g. `chains.*.*.run.>,memory.>`; the tenant
    /// token is always the caller's. Every event of the tenant when absent.
    pub subjects: Option<String>,
    /// Replay stored events after this sequence first (`Last-Event-ID` wins when sent); live
    /// only when absent.
    pub after_sequence: Option<u64>,
    /// The access token, for clients that cannot set `Authorization` (`EventSource`,
    /// `WebSocket`).
    pub access_token: Option<String>,
}

fn subject_list(subjects: Option<&str>) -> Vec<String> {
    subjects
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|subject| !subject.is_empty())
        .map(str::to_owned)
        .collect()
}

async fn watch_events(
    state: &AppState,
    caller: &Caller,
    subjects: Vec<String>,
    after_sequence: Option<u64>,
) -> Result<Streaming<v1::Event>, Problem> {
    let request = v1::WatchEventsRequest {
        subjects,
        after_sequence,
    };
    Ok(state
        .chains()
        .watch_events(streaming_request(caller, request)?)
        .await?
        .into_inner())
}

/// The caller's tenant's events on every channel (agents, chains, memory, market, webhooks) as
/// Server-Sent Events, live; those of a channel the caller may not read are left out.
#[utoipa::path(
    get,
    path = "/api/events",
    tag = "events",
    params(
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this sequence (sent by a reconnecting EventSource)"),
        EventsQuery,
    ),
    security(("bearer" = []), ("api_key" = []), ("access_token" = [])),
    responses(
        (status = 200, description = "`text/event-stream`: `id` the sequence, `event` the CloudEvents type, `data` the CloudEvent", body = CloudEvent, content_type = "text/event-stream"),
        (status = 400, description = "A bad subject pattern", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn tenant_events(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(query): Query<EventsQuery>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let after = resume_after(&headers, query.after_sequence)?;
    let events = watch_events(
        &state,
        &caller,
        subject_list(query.subjects.as_deref()),
        after,
    )
    .await?;
    Ok(sse(&state, caller, events))
}

/// What a WebSocket client may send: the subject patterns to receive from now on, replacing
/// those it had (`{"subscribe": []}` means every event of the tenant).
#[derive(Debug, Deserialize)]
struct Subscribe {
    subscribe: Vec<String>,
}

/// The caller's tenant's events over a WebSocket, each a text frame holding the CloudEvent
/// JSON. The stream starts with every event (or those of `?subjects=`); the client may send
/// `{"subscribe": ["chains.>", ...]}` at any time to change the filter, answered by
/// `{"subscribed": [...]}` once every event published from then on matches the new filter. A
/// failure is sent as `{"error": <problem>}`.
#[utoipa::path(
    get,
    path = "/ws",
    tag = "events",
    params(EventsQuery),
    security(("bearer" = []), ("api_key" = []), ("access_token" = [])),
    responses(
        (status = 101, description = "Switched to the WebSocket protocol; text frames of CloudEvent JSON", body = CloudEvent),
        (status = 400, description = "Not a WebSocket upgrade, or a bad subject pattern", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn websocket(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(query): Query<EventsQuery>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, Problem> {
    // Watched before upgrading, so a refusal is still an HTTP answer the client can read.
    let events = watch_events(
        &state,
        &caller,
        subject_list(query.subjects.as_deref()),
        query.after_sequence,
    )
    .await?;
    Ok(upgrade
        .max_frame_size(MAX_WS_MESSAGE_BYTES)
        .max_message_size(MAX_WS_MESSAGE_BYTES)
        .on_upgrade(move |socket| relay(socket, state, caller, events)))
}

fn error_frame(problem: &Problem) -> Message {
    Message::Text(
        serde_json::json!({ "error": problem.document })
            .to_string()
            .into(),
    )
}

/// Sends events to the socket until the client leaves, the event stream ends, the caller no
/// longer holds or the gateway shuts down; takes new subscriptions from the client meanwhile.
async fn relay(
    mut socket: WebSocket,
    state: Arc<AppState>,
    caller: Caller,
    events: Streaming<v1::Event>,
) {
    let mut events = events.ready_chunks(WS_BATCH);
    let stop = state.streams_end.clone();
    let mut check = CallerCheck::new(&state.authenticator, caller);
    let mut changes = ChangeBudget::new();
    let close = |code, reason: &'static str| {
        Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }))
    };
    loop {
        tokio::select! {
            () = stop.cancelled() => {
                let _ = socket.send(close(close_code::AWAY, "the gateway is shutting down")).await;
                return;
            }
            () = check.due() => {
                if let Err(problem) = check.run(&state.authenticator).await {
                    let _ = socket.send(error_frame(&problem)).await;
                    let _ = socket.send(close(close_code::POLICY, "the credential no longer holds")).await;
                    return;
                }
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    let changed = match serde_json::from_str::<Subscribe>(&text) {
                        Ok(_) if !changes.spend() => Err(Problem::new(
                            axum::http::StatusCode::TOO_MANY_REQUESTS,
                            format!("at most {MAX_SUBSCRIPTION_CHANGES} subscription changes per minute"),
                        )),
                        Ok(subscribe) => watch_events(&state, &check.caller, subscribe.subscribe.clone(), None)
                            .await
                            .map(|watching| (watching, subscribe.subscribe)),
                        Err(err) => Err(Problem::invalid(
                            "subscribe",
                            format!("send {{\"subscribe\": [subject patterns]}}: {err}"),
                        )),
                    };
                    match changed {
                        Ok((watching, subjects)) => {
                            events = watching.ready_chunks(WS_BATCH);
                            let subscribed = serde_json::json!({ "subscribed": subjects }).to_string();
                            if socket.send(Message::Text(subscribed.into())).await.is_err() {
                                return;
                            }
                        }
                        Err(problem) => {
                            if socket.send(error_frame(&problem)).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                // Pings are answered by the protocol layer; binary frames mean nothing here.
                Some(Ok(Message::Binary(_) | Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
            },
            // Every event already waiting is written before one flush: a thousand sockets
            // flushing each event were a write call per event per socket, and under a burst
            // their queues grew faster than they drained.
            ready = events.next() => {
                let Some(ready) = ready else {
                    let _ = socket.send(close(close_code::NORMAL, "the event stream ended")).await;
                    return;
                };
                for event in ready {
                    match event {
                        Ok(event) => {
                            let (_, _, json) = cloud_event_json(event);
                            if socket.feed(Message::Text(json.into())).await.is_err() {
                                return;
                            }
                        }
                        Err(status) => {
                            tracing::warn!(error = %status, "a WebSocket's event stream failed");
                            let _ = socket.send(error_frame(&Problem::from(status))).await;
                            let _ = socket.send(close(close_code::ERROR, "the event stream failed")).await;
                            return;
                        }
                    }
                }
                if socket.flush().await.is_err() {
                    return;
                }
            },
        }
    }
}

/// Events a WebSocket writes before one flush, at most.
const WS_BATCH: usize = 64;

/// The subscription changes a WebSocket has left: [`MAX_SUBSCRIPTION_CHANGES`] per minute,
/// refilled evenly.
struct ChangeBudget {
    left: f64,
    at: tokio::time::Instant,
}

impl ChangeBudget {
    fn new() -> Self {
        Self {
            left: f64::from(MAX_SUBSCRIPTION_CHANGES),
            at: tokio::time::Instant::now(),
        }
    }

    /// Takes one change; false when none is left.
    fn spend(&mut self) -> bool {
        let now = tokio::time::Instant::now();
        let per_second = f64::from(MAX_SUBSCRIPTION_CHANGES) / 60.0;
        self.left = (self.left + now.duration_since(self.at).as_secs_f64() * per_second)
            .min(f64::from(MAX_SUBSCRIPTION_CHANGES));
        self.at = now;
        if self.left >= 1.0 {
            self.left -= 1.0;
            true
        } else {
            false
        }
    }
}
