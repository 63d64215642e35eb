//! Step outputs shared through the run's memory session: each completed step's output is saved
//! under `steps.<step_id>` with the run's own credential, so agents of the run (and anything else
//! reading the session) see what earlier steps produced. It lives as long as the run is kept
//! (its tenant's retention, as a time to live: crate::retention).
//!
//! The output is saved before the step is recorded as completed: a replica that dies in between
//! runs the step again and saves again (a save overwrites), so a completed step's output is in
//! the session unless the save itself failed. A memory that cannot be reached (restarting, a
//! lost connection) is waited for, with growing pauses, for up to `Config::memory_outage_wait`
//! (30 s unless configured): a rolling upgrade of memory loses no step's output.
//!
//! Saves are sent many at a time ([`Saves`], the kit's group commit over calls): the saves of
//! runs completing steps together go in one SaveMany per credential, each answered on its own.
//! A step's output is a few hundred bytes; one call each cost more in both processes (the
//! HTTP/2 stream, the span, the token check) than memory's writing it. A call that fails is
//! made again save by save, so one save that cannot be made fails no other. The call is made in
//! the span of its batch's first save (the step's), so that step's trace shows it.
//!
//! A save that fails for good does not fail the step: the agent's work is done and its output
//! is kept in Postgres (and passed to the dependants) as always; the step is recorded COMPLETED
//! with a `warning` saying why memory does not have it. Running the agent again, or failing the
//! run, would cost more than the shared copy is worth, and a memory outage must not stop chains.

use std::collections::HashMap;
use std::time::Duration;

use futures::future::join_all;
use sankalpa_kit::auth::with_bearer;
use sankalpa_kit::backoff::Backoff;
use sankalpa_kit::group_commit::{self, Batch, GroupCommit};
use sankalpa_kit::grpc::{TracedChannel, connection_lost};
use sankalpa_proto::v1 as pb;
use sankalpa_proto::v1::memory_service_client::MemoryServiceClient;
use serde_json::Value;
use tokio_util::task::TaskTracker;
use tonic::{Code, Status};
use tracing::Instrument;

pub type Client = MemoryServiceClient<TracedChannel>;

/// Saves per call at most (memory takes 64), and calls in flight at once.
pub const LIMITS: group_commit::Limits = group_commit::Limits {
    max_batch: 64,
    writers: 4,
};

/// The step outputs waiting for their call. Cloning shares it.
pub type Saves = GroupCommit<SaveCalls>;

/// The queue of saves to memory, sent with `client` by writers on `tracker`.
pub fn saves(client: Client, tracker: TaskTracker) -> Saves {
    GroupCommit::new(SaveCalls { client }, LIMITS, tracker)
}

/// What a batch of saves is sent with.
pub struct SaveCalls {
    client: Client,
}

/// One save waiting for its call, with the token of the run that asks for it and the span of
/// the step it saves for.
pub struct Pending {
    token: String,
    save: pb::SaveRequest,
    span: tracing::Span,
}

impl Batch for SaveCalls {
    type Write = Pending;
    /// How memory answered the save.
    type Written = Result<(), Status>;
    /// Why the call failed (then its saves are sent again one by one).
    type Error = Status;
    type Key = (String, String);

    fn key(pending: &Pending) -> Self::Key {
        (pending.save.session_id.clone(), pending.save.key.clone())
    }

    async fn write(&self, batch: &[&Pending]) -> Result<Vec<Result<(), Status>>, Status> {
        let mut by_token: HashMap<&str, Vec<usize>> = HashMap::new();
        for (index, pending) in batch.iter().enumerate() {
            by_token.entry(&pending.token).or_default().push(index);
        }
        // A call serves many steps but has one parent: the first of its saves, whose trace
        // shows the call and memory's side of it.
        let calls = by_token.into_iter().map(|(token, indexes)| {
            let leader = batch[indexes[0]].span.clone();
            async move {
                let message = pb::SaveManyRequest {
                    saves: indexes.iter().map(|&i| batch[i].save.clone()).collect(),
                };
                let mut request = with_bearer(message, token)?;
                request.set_timeout(SAVE_TIMEOUT);
                let results = self.client.clone().save_many(request).await?;
                let results = results.into_inner().results;
                if results.len() != indexes.len() {
                    return Err(Status::internal(format!(
                        "memory answered {} of {} saves",
                        results.len(),
                        indexes.len()
                    )));
                }
                Ok(indexes.into_iter().zip(results))
            }
            .instrument(leader)
        });
        let mut answers: Vec<Result<(), Status>> = (0..batch.len()).map(|_| Ok(())).collect();
        for answered in join_all(calls).await {
            for (index, result) in answered? {
                if result.entry.is_none() {
                    answers[index] = Err(Status::new(Code::from(result.code), result.message));
                }
            }
        }
        Ok(answers)
    }

    fn writer_lost() -> Status {
        Status::internal("the writer of a batch of memory saves failed")
    }
}

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
    saves: &Saves,
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
    let save = pb::SaveRequest {
        session_id: session_id.to_owned(),
        key: step_key(step_id),
        value_json: output.to_string(),
        expected_version: None,
        ttl_seconds: ttl.as_secs(),
    };
    let mut backoff = Backoff::new(FIRST_PAUSE, LONGEST_PAUSE);
    let give_up = tokio::time::Instant::now() + outage_wait;
    loop {
        let pending = Pending {
            token: token.to_owned(),
            save: save.clone(),
            span: tracing::Span::current(),
        };
        let status = match saves.write(pending).await.and_then(|answer| answer) {
            Ok(()) => return Ok(()),
            Err(status) => status,
        };
        // A save overwrites, so one that may have landed is safe to send again.
        let transient = connection_lost(status.code())
            || matches!(status.code(), Code::Aborted | Code::DeadlineExceeded);
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
