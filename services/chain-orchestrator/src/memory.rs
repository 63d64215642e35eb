//! Step outputs shared through the run's memory session: each completed step's output is saved
//! under `steps.<step_id>` with the run's own credential, so agents of the run (and anything else
//! reading the session) see what earlier steps produced. It lives as long as the run is kept
//! (its tenant's retention, as a time to live: crate::retention).
//!
//! The output is saved before the step is recorded as completed: a replica that dies in between
//! runs the step again and saves again (a save overwrites), so a completed step's output is in
//! the session unless the save itself failed. A memory that cannot be reached (restarting, a
//! lost connection) is waited for, with growing pauses, for up to `Config::memory_outage_wait`
//! (30 s unless configured): a rolling
//! upgrade of memory loses no step's output. A save that fails for good does not fail the
//! step: the agent's work is done and its output is kept in Postgres (and passed to the
//! dependants) as always; the step is recorded COMPLETED with a `warning` saying why memory does
//! not have it. Running the agent again, or failing the run, would cost more than the shared copy
//! is worth, and a memory outage must not stop chains.

use std::time::Duration;

use sankalpa_kit::auth::with_bearer;
use sankalpa_kit::backoff::Backoff;
use sankalpa_kit::grpc::TracedChannel;
use sankalpa_proto::v1 as pb;
use sankalpa_proto::v1::memory_service_client::MemoryServiceClient;
use serde_json::Value;
use tonic::Code;

pub type Client = MemoryServiceClient<TracedChannel>;

const SAVE_TIMEOUT: Duration = Duration::from_secs(5);
/// Transient failures (memory restarting, a lost connection) are tried again with a jittered
/// pause growing from FIRST_PAUSE to LONGEST_PAUSE; others (no memory:write, a value over the
/// size limit) are final at once.
const FIRST_PAUSE: Duration = Duration::from_millis(100);
const LONGEST_PAUSE: Duration = Duration::from_secs(2);

/// The key a step's output is saved under.
pub fn step_key(step_id: &str) -> String {
    format!("steps.{step_id}")
}

/// A step's output to save in the run's session.
pub struct StepOutput<'a> {
    pub session_id: &'a str,
    pub step_id: &'a str,
    pub output: &'a Value,
    /// How long it lives in memory (the run's retention, crate::retention); zero: forever.
    pub ttl: Duration,
}

/// Saves a step's output in the session, waiting out transient failures for `outage_wait`; on
/// failure, the warning to record on the step.
pub async fn save_step_output(
    client: &Client,
    token: &str,
    saved: StepOutput<'_>,
    outage_wait: Duration,
) -> Result<(), String> {
    let StepOutput {
        session_id,
        step_id,
        output,
        ttl,
    } = saved;
    let message = pb::SaveRequest {
        session_id: session_id.to_owned(),
        key: step_key(step_id),
        value_json: output.to_string(),
        expected_version: None,
        ttl_seconds: ttl.as_secs(),
    };
    let mut backoff = Backoff::new(FIRST_PAUSE, LONGEST_PAUSE);
    let give_up = tokio::time::Instant::now() + outage_wait;
    loop {
        let mut request = with_bearer(message.clone(), token)
            .map_err(|status| format!("not saved to memory: {}", status.message()))?;
        request.set_timeout(SAVE_TIMEOUT);
        let status = match client.clone().save(request).await {
            Ok(_) => return Ok(()),
            Err(status) => status,
        };
        // A refused or reset connection is UNAVAILABLE, UNKNOWN or CANCELLED as the transport
        // saw it; a save overwrites, so one that may have landed is safe to send again.
        let transient = matches!(
            status.code(),
            Code::Unavailable
                | Code::Unknown
                | Code::Cancelled
                | Code::Aborted
                | Code::DeadlineExceeded
        );
        let pause = backoff.next_wait();
        if !transient || tokio::time::Instant::now() + pause >= give_up {
            return Err(format!(
                "the output was not saved to memory session {session_id:?} as {:?}: {} ({:?})",
                step_key(step_id),
                status.message(),
                status.code()
            ));
        }
        tokio::time::sleep(pause).await;
    }
}
