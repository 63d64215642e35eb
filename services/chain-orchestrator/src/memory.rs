//! Step outputs shared through the run's memory session: each completed step's output is saved
//! under `steps.<step_id>` with the run's own credential, so agents of the run (and anything else
//! reading the session) see what earlier steps produced.
//!
//! The output is saved before the step is recorded as completed: a replica that dies in between
//! runs the step again and saves again (a save overwrites), so a completed step's output is in
//! the session unless the save itself failed. A save that fails after its retries does not fail
//! the step: the agent's work is done and its output is kept in Postgres (and passed to the
//! dependants) as always; the step is recorded COMPLETED with a `warning` saying why memory does
//! not have it. Running the agent again, or failing the run, would cost more than the shared copy
//! is worth, and a memory outage must not stop chains.

use std::time::Duration;

use sankalpa_kit::auth::with_bearer;
use sankalpa_kit::grpc::TracedChannel;
use sankalpa_proto::v1 as pb;
use sankalpa_proto::v1::memory_service_client::MemoryServiceClient;
use serde_json::Value;
use tonic::Code;

pub type Client = MemoryServiceClient<TracedChannel>;

const SAVE_TIMEOUT: Duration = Duration::from_secs(5);
/// Transient failures (memory restarting, a lost connection) are tried again this many times in
/// all, doubling the pause from SAVE_BACKOFF; others (no memory:write, a value over the size
/// limit) are final at once.
const SAVE_ATTEMPTS: u32 = 3;
const SAVE_BACKOFF: Duration = Duration::from_millis(100);

/// The key a step's output is saved under.
pub fn step_key(step_id: &str) -> String {
    format!("steps.{step_id}")
}

/// Saves a step's output in the session; on failure, the warning to record on the step.
pub async fn save_step_output(
    client: &Client,
    token: &str,
    session_id: &str,
    step_id: &str,
    output: &Value,
) -> Result<(), String> {
    let message = pb::SaveRequest {
        session_id: session_id.to_owned(),
        key: step_key(step_id),
        value_json: output.to_string(),
        expected_version: None,
        ttl_seconds: 0,
    };
    let mut backoff = SAVE_BACKOFF;
    let mut attempt = 1;
    loop {
        let mut request = with_bearer(message.clone(), token)
            .map_err(|status| format!("not saved to memory: {}", status.message()))?;
        request.set_timeout(SAVE_TIMEOUT);
        let status = match client.clone().save(request).await {
            Ok(_) => return Ok(()),
            Err(status) => status,
        };
        let transient = matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded);
        if !transient || attempt >= SAVE_ATTEMPTS {
            return Err(format!(
                "the output was not saved to memory session {session_id:?} as {:?}: {} ({:?})",
                step_key(step_id),
                status.message(),
                status.code()
            ));
        }
        tokio::time::sleep(backoff).await;
        backoff = backoff.saturating_mul(2);
        attempt += 1;
    }
}
