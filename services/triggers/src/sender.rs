//! Attempts deliveries: claims the due ones ([`deliveries::claim`]), POSTs each to its
//! endpoint as the Standard Webhooks specification says, and records the outcome with its
//! event in one transaction. A failed attempt is retried after the next wait of the retry
//! schedule, jittered; after the last, the delivery is failed. An endpoint that has failed
//! every attempt for [`crate::Config::disable_after`] is disabled.
//!
//! The request: `content-type: application/json`, `webhook-id` (the same on every attempt),
//! `webhook-timestamp` (seconds, of this attempt), `webhook-signature` (one `v1,` signature
//! per secret that signs now), the CloudEvent as the body. The response body is read up to the
//! operator's bound; redirects are not followed (a 3xx is a failure), and the destination is
//! checked by the [`Guard`] on the address connected to.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use rand::Rng;
use sankalpa_kit::egress::{Guard, error_chain};
use sqlx::types::Json;
use tokio_util::sync::CancellationToken;

use crate::State;
use crate::backlog::{self, BacklogLabels};
use crate::deliveries::{self, Claimed};
use crate::events::Action;
use crate::signing;

/// How long a claimed delivery stays leased beyond its attempt's timeout: time to record the
/// outcome. A replica that dies mid-attempt delays the delivery's retry by this much more.
const LEASE_MARGIN: Duration = Duration::from_secs(5);
/// How often the backlog gauges are refreshed.
const BACKLOG_EVERY: Duration = Duration::from_secs(5);

/// The HTTP client of deliveries: no redirects, the guard's resolver, the attempt's timeout.
pub fn client(guard: &Arc<Guard>, timeout: Duration) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(guard.resolver())
        .timeout(timeout)
        .user_agent(concat!("Sankalpa-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

pub fn describe_metrics() {
    metrics::describe_counter!(
        "webhook_deliveries_total",
        "Delivery attempts by outcome: delivered, retrying (failed, another attempt is due), \
         failed (the last attempt of the schedule failed)."
    );
    metrics::describe_histogram!(
        "webhook_delivery_seconds",
        metrics::Unit::Seconds,
        "From sending a delivery's request to reading its response, by outcome."
    );
    metrics::describe_gauge!(
        "webhook_deliveries_pending",
        "Deliveries waiting for their first or next attempt."
    );
    metrics::describe_gauge!(
        "webhook_deliveries_pending_by_endpoint",
        "Deliveries waiting for their first or next attempt, by endpoint: the 10 endpoints with \
         the most have their own series, the rest are summed under endpoint=\"other\"."
    );
    metrics::describe_histogram!(
        "webhook_event_to_delivery_seconds",
        metrics::Unit::Seconds,
        "From an event's creation to its first successful delivery to an endpoint."
    );
    for outcome in ["delivered", "retrying", "failed"] {
        metrics::counter!("webhook_deliveries_total", "outcome" => outcome).increment(0);
        let _ = metrics::histogram!("webhook_delivery_seconds", "outcome" => outcome);
    }
    metrics::gauge!("webhook_deliveries_pending").set(0.0);
    metrics::gauge!("webhook_deliveries_pending_by_endpoint", "endpoint" => backlog::OTHER)
        .set(0.0);
    let _ = metrics::histogram!("webhook_event_to_delivery_seconds");
}

/// Claims and attempts deliveries until `stop`; attempts in flight then are dropped, their
/// deliveries left to be attempted again when their lease runs out.
pub async fn run(state: Arc<State>, stop: CancellationToken) {
    let slots = Arc::new(tokio::sync::Semaphore::new(
        state.config.delivery_concurrency,
    ));
    let attempts = tokio_util::task::TaskTracker::new();
    let lease = (state.config.delivery_timeout + LEASE_MARGIN).as_secs_f64();
    let mut backlog_at = Instant::now();
    let mut backlog_labels = BacklogLabels::default();
    while !stop.is_cancelled() {
        if backlog_at.elapsed() >= BACKLOG_EVERY {
            backlog_at = Instant::now();
            let top = backlog::TOP_ENDPOINTS as i64;
            if let Ok((largest, total)) = deliveries::pending_backlog(&state.pool, top).await {
                metrics::gauge!("webhook_deliveries_pending").set(total as f64);
                for (endpoint, pending) in backlog_labels.values(&largest, total) {
                    metrics::gauge!("webhook_deliveries_pending_by_endpoint", "endpoint" => endpoint)
                        .set(pending as f64);
                }
            }
        }
        let free = slots.available_permits();
        let mut claimed_all = false;
        if free > 0 {
            match deliveries::claim(&state.pool, free as i64, lease).await {
                Ok(claimed) => {
                    claimed_all = claimed.len() == free;
                    for delivery in claimed {
                        let permit = slots
                            .clone()
                            .try_acquire_owned()
                            .expect("no more are claimed than there are free slots");
                        let state = state.clone();
                        let stop = stop.clone();
                        attempts.spawn(async move {
                            tokio::select! {
                                () = attempt(&state, delivery) => {}
                                () = stop.cancelled() => {}
                            }
                            drop(permit);
                            state.wake.notify_one();
                        });
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "could not claim deliveries");
                }
            }
        }
        if claimed_all {
            continue;
        }
        tokio::select! {
            () = stop.cancelled() => {}
            () = state.wake.notified() => {}
            () = tokio::time::sleep(state.config.poll) => {}
        }
    }
    attempts.close();
    attempts.wait().await;
}

/// What one attempt got.
struct Outcome {
    status_code: u16,
    latency: Duration,
    response_body: String,
    error: String,
}

impl Outcome {
    fn succeeded(&self) -> bool {
        (200..300).contains(&self.status_code)
    }
}

async fn attempt(state: &State, delivery: Claimed) {
    let timestamp = Utc::now().timestamp();
    let signature = signing::signature(
        &delivery.secrets,
        &delivery.message_id,
        timestamp,
        &delivery.body,
    );
    let headers: BTreeMap<String, String> = [
        ("content-type", "application/json".to_owned()),
        ("webhook-id", delivery.message_id.clone()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signature),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect();
    let started_at = Utc::now();
    let outcome = send(state, &delivery.url, &headers, delivery.body.clone()).await;
    let retry = if outcome.succeeded() {
        None
    } else {
        retry_wait(&state.config.retry_schedule, delivery.round_attempts)
    };
    let label = match (outcome.succeeded(), retry) {
        (true, _) => "delivered",
        (false, Some(_)) => "retrying",
        (false, None) => "failed",
    };
    metrics::counter!("webhook_deliveries_total", "outcome" => label).increment(1);
    metrics::histogram!("webhook_delivery_seconds", "outcome" => label)
        .record(outcome.latency.as_secs_f64());
    if let Err(err) = record(state, &delivery, started_at, &headers, &outcome, retry).await {
        // The lease runs out and the delivery is attempted again: at least once, not lost.
        tracing::warn!(error = format!("{err:#}"), delivery = %delivery.id,
            "could not record a delivery attempt");
    }
}

/// Sends the request and reads the start of the answer.
async fn send(
    state: &State,
    url: &str,
    headers: &BTreeMap<String, String>,
    body: String,
) -> Outcome {
    let started = Instant::now();
    let failed = |error: String| Outcome {
        status_code: 0,
        latency: started.elapsed(),
        response_body: String::new(),
        error,
    };
    // Checked again at every attempt: the operator's settings may have changed, and an address
    // written in the URL is never resolved, so the resolver cannot check it.
    let url = match state.guard.check_url(url) {
        Ok(url) => url,
        Err(why) => return failed(format!("refused: the URL {why}")),
    };
    let mut request = state.http.post(url).body(body);
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let mut response = match request.send().await {
        Ok(response) => response,
        Err(err) => return failed(error_chain(&err)),
    };
    let status_code = response.status().as_u16();
    let mut read = Vec::new();
    let bound = state.config.max_response_bytes;
    let mut error = String::new();
    while read.len() < bound {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                read.extend_from_slice(&chunk[..chunk.len().min(bound - read.len())])
            }
            Ok(None) => break,
            Err(err) => {
                error = format!("reading the response: {}", error_chain(&err));
                break;
            }
        }
    }
    if error.is_empty() && !(200..300).contains(&status_code) {
        error = format!("the endpoint answered {status_code}");
    }
    Outcome {
        status_code,
        latency: started.elapsed(),
        response_body: String::from_utf8_lossy(&read).into_owned(),
        error,
    }
}

/// The wait before attempt `round_attempt + 1`, jittered by up to a fifth either way so that
/// the deliveries one outage failed together do not all come back in the same instant; `None`
/// once the schedule is spent.
fn retry_wait(schedule: &[Duration], round_attempt: i32) -> Option<Duration> {
    let index = usize::try_from(round_attempt).ok()?.checked_sub(1)?;
    let base = *schedule.get(index)?;
    let jitter = rand::thread_rng().gen_range(0.8..=1.2);
    Some(base.mul_f64(jitter))
}

/// Records an attempt, to be retried after `retry` when it failed (failed for good without):
/// its row, the delivery's new state (unless a replay or a later attempt
/// changed it meanwhile), the endpoint's failure record, and the events, in one transaction.
async fn record(
    state: &State,
    delivery: &Claimed,
    started_at: chrono::DateTime<Utc>,
    headers: &BTreeMap<String, String>,
    outcome: &Outcome,
    retry: Option<Duration>,
) -> anyhow::Result<()> {
    let latency_ms = i32::try_from(outcome.latency.as_millis()).unwrap_or(i32::MAX);
    let status = match (outcome.succeeded(), retry) {
        (true, _) => deliveries::Status::Delivered,
        (false, Some(_)) => deliveries::Status::Pending,
        (false, None) => deliveries::Status::Failed,
    };
    let next_attempt_at = Utc::now()
        + retry
            .and_then(|wait| chrono::Duration::from_std(wait).ok())
            .unwrap_or_default();
    let mut tx = state.pool.begin().await?;
    sqlx::query(
        "INSERT INTO triggers.attempts (delivery_id, attempt, started_at, url, request_headers,
             status_code, latency_ms, response_body, error)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (delivery_id, attempt) DO NOTHING",
    )
    .bind(delivery.id)
    .bind(delivery.attempts)
    .bind(started_at)
    .bind(&delivery.url)
    .bind(Json(headers))
    .bind(i32::from(outcome.status_code))
    .bind(latency_ms)
    .bind(&outcome.response_body)
    .bind(&outcome.error)
    .execute(&mut *tx)
    .await?;
    let updated = sqlx::query(
        "UPDATE triggers.deliveries SET status = $3, next_attempt_at = $4, last_status_code = $5,
             last_error = $6, last_latency_ms = $7, updated_at = now()
         WHERE id = $1 AND attempts = $2 AND status = 'pending'",
    )
    .bind(delivery.id)
    .bind(delivery.attempts)
    .bind(status.as_str())
    .bind(next_attempt_at)
    .bind(i32::from(outcome.status_code))
    .bind(&outcome.error)
    .bind(latency_ms)
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() == 0 {
        // Replayed or attempted again meanwhile: that attempt's outcome is the one to keep.
        tx.commit().await?;
        return Ok(());
    }
    let data = serde_json::json!({
        "endpoint_id": delivery.endpoint_id,
        "delivery_id": delivery.id,
        "message_id": delivery.message_id,
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "attempts": delivery.attempts,
        "status_code": outcome.status_code,
        "error": sankalpa_kit::limits::error_message(&outcome.error),
    });
    let endpoint = delivery.endpoint_id.to_string();
    if outcome.succeeded() {
        sqlx::query(
            "UPDATE triggers.endpoints SET failing_since = NULL
             WHERE id = $1 AND failing_since IS NOT NULL",
        )
        .bind(delivery.endpoint_id)
        .execute(&mut *tx)
        .await?;
        state
            .events
            .enqueue(
                &mut tx,
                delivery.tenant_id,
                &endpoint,
                Action::Delivered,
                data,
            )
            .await?;
    } else {
        let failing_too_long: Option<bool> = sqlx::query_scalar(
            "UPDATE triggers.endpoints SET failing_since = coalesce(failing_since, now())
             WHERE id = $1
             RETURNING enabled AND failing_since <= now() - make_interval(secs => $2)",
        )
        .bind(delivery.endpoint_id)
        .bind(state.config.disable_after.as_secs_f64())
        .fetch_optional(&mut *tx)
        .await?;
        if status == deliveries::Status::Failed {
            state
                .events
                .enqueue(
                    &mut tx,
                    delivery.tenant_id,
                    &endpoint,
                    Action::Failed,
                    data.clone(),
                )
                .await?;
        }
        if failing_too_long == Some(true) {
            let disabled = sqlx::query(
                "UPDATE triggers.endpoints
                 SET enabled = false, disabled_reason = $2, updated_at = now()
                 WHERE id = $1 AND enabled",
            )
            .bind(delivery.endpoint_id)
            .bind(format!(
                "every delivery failed for {}",
                humane(state.config.disable_after)
            ))
            .execute(&mut *tx)
            .await?;
            if disabled.rows_affected() == 1 {
                state
                    .events
                    .enqueue(
                        &mut tx,
                        delivery.tenant_id,
                        &endpoint,
                        Action::Disabled,
                        data,
                    )
                    .await?;
            }
        }
    }
    tx.commit().await?;
    state.events.wake();
    if outcome.succeeded() {
        record_event_lag(&delivery.body);
    }
    Ok(())
}

/// A duration as the disabled reason says it.
fn humane(duration: Duration) -> String {
    let seconds = duration.as_secs();
    if seconds.is_multiple_of(86_400) && seconds > 0 {
        format!("{} days", seconds / 86_400)
    } else if seconds >= 1 {
        format!("{seconds} s")
    } else {
        format!("{} ms", duration.as_millis())
    }
}

/// The time from the event's creation (its `time`) to now, when it is readable.
fn record_event_lag(body: &str) {
    #[derive(serde::Deserialize)]
    struct Timed {
        time: chrono::DateTime<Utc>,
    }
    if let Ok(event) = serde_json::from_str::<Timed>(body) {
        let lag = (Utc::now() - event.time).to_std().unwrap_or_default();
        metrics::histogram!("webhook_event_to_delivery_seconds").record(lag.as_secs_f64());
    }
}
