//! The engine: executes runs, durably, on as many replicas as are started.
//!
//! Each replica has an owner id. A run is executed by the replica holding its lease (`lease_owner`,
//! `lease_expires_at`): the one that accepted it (ExecuteChain claims it at once when it has room)
//! or one that claimed it from the table (`runs::store::claim`, polled). A driver task per run
//! renews the lease on a heartbeat; if renewal finds the lease gone, the driver stops at once, and
//! all its writes are fenced on the lease anyway, so two replicas never both advance a run. A
//! replica that dies stops renewing; when its leases expire, another replica (or the same one
//! restarted) claims the runs and carries them on from Postgres: completed steps keep their outputs
//! and are not run again, a step that was running goes on with the attempt it was at, asking
//! agent-runner under the same agent run id (see [`agent_run_id`]). An attempt's start is
//! written with its end when it ends within `Config::unannounced_start` (one transition where
//! there were two), on its own once it has run that long: so a step that a takeover finds
//! pending may have been asked for already, and a taken-over run's requests all have
//! agent-runner look for a kept outcome. Only the first request of an attempt in a run its
//! replica inserted and surely still holds ([`SoleOwner`]) tells agent-runner it is a first ask,
//! which spares that lookup.
//!
//! An attempt that cannot reach agent-runner or auth waits for them (jittered backoff, within the
//! step's timeout) instead of failing: a restarting service fails no run, and the waiting does
//! not count against the step's `retry`.
//!
//! A run accepted while agent-runner could not be asked about its agents (`agents_checked`
//! false, catalog.rs) has them checked before its first step, asked again with growing pauses
//! until agent-runner answers (at most `Config::max_outage_wait`): a step whose agent does not
//! exist fails with `unknown_agent`, unattempted, and fails the run whatever its `on_failure`,
//! as a refused submission would have.
//!
//! An approval step that is reached waits (`waiting`, announced as `step.waiting_approval`) for
//! ApproveStep or RejectStep (approvals.rs) or its timeout. While other steps run, the driver
//! looks at its waiting approvals on a nudge (a decision made on this replica), at each
//! heartbeat (one made elsewhere) and when one falls due. Once nothing else of the run can
//! move, the run is parked (`store::park`): WAITING, with no lease and no driver, so a waiting
//! run costs no task and no memory. A decision makes it claimable again (and claims it on the
//! replica that took it, when that has room); the claim loop takes it at its earliest timeout.
//!
//! Two kinds of step have modules of their own: a map step (`for_each`, [`map`]) runs its agent
//! once per item of a list, each item's end kept in a row so a takeover runs no finished item
//! again; a chain step ([`subchains`]) runs another chain as a child run, which it waits for by
//! its row, and a run that ends stops its unfinished children. Each counts as one step against
//! the per-run and per-replica bounds below (a map's items are bounded by its `max_parallel`).
//!
//! Within a run, every step whose needs have finished is decided (skipped, with its reason, or
//! started) and started steps run concurrently, bounded per run and per replica by semaphores.
//! An agent step (not a map) is decided as soon as its needs' outputs are known and saved, while
//! their ends are still being written ([`EarlyEnd`]): its agent call overlaps those writes, the
//! step's own transitions wait for them, so rows and events keep their order, and a chain's
//! steps follow one another without a commit's wait between them. A takeover in between finds
//! the needs unfinished and asks agent-runner for them again under the same agent run ids,
//! answered with the kept outcomes; the dependent's attempt likewise.
//! Every transition enqueues its event in the outbox in its own transaction, the lease-fenced
//! write included, so a replica dying after a commit cannot lose the event: any replica's relay
//! publishes it. A write that finds the lease gone rolls its event back with it.
//!
//! A step without an `input` mapping gets the chain input merged with its needs' outputs, cut
//! down to the fields its agent accepts when the agent's input schema forbids others (looked up
//! once per agent per driven run, so an updated custom agent is seen by the next run). A
//! completed step's output is saved in the run's memory session before the step is recorded
//! (memory.rs says what a failed save does).
//!
//! Sizes are bounded end to end, so no run can grow past what its rows, its events and a replica
//! can hold: a step's input (merged or mapped) is at most `max_step_input_bytes`, its output at
//! most `max_step_output_bytes`, and the outputs of a run together at most
//! `max_run_output_bytes` (each output is charged as its step completes; the step that would
//! pass the limit fails with `output_too_large`, once, and is not retried). Error messages are
//! cut to 4 KiB where a failure is made (agents.rs), before they reach a row, an event or a log.

mod map;
mod subchains;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::future::join_all;
use sankalpa_kit::backoff::Backoff;
use sankalpa_kit::limits;
use sankalpa_kit::outbox::OutboxRow;
use serde_json::{Map, Value, json};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::agents::{self, Failure, OUTPUT_TOO_LARGE};
use crate::catalog::Lookup;
use crate::definition::{
    self, AgentStep, Approval, ChainStep, Definition, MappingError, OnFailure, OnSkip, OnTimeout,
    Step, StepKind,
};
use crate::error::{ChainError, Result};
use crate::events::{RunEvent, StepEnding};
use crate::runs::endings::{self, RunEnd};
use crate::runs::store::{self, Lease, LeaseLost, Parked, RunStatus, StepStatus};
use crate::runs::transitions::{self, StepUpdate};
use crate::runs::{self, Detailed};
use crate::{State, expr, memory, sizes};

/// This replica's side of run ownership, shared with the RPC handlers.
pub struct Handle {
    pub owner: Uuid,
    /// Runs handed over with the span of the RPC that started them, their trace's parent.
    start: mpsc::UnboundedSender<Handover>,
    /// The runs this replica is driving, so a CancelRun or a decision that lands here acts at
    /// once instead of at the next heartbeat.
    active: Mutex<HashMap<Uuid, Driven>>,
    /// The runs handed to or driven by this replica, each with the signal its waiters wait on,
    /// raised when its driver lets it go (for whatever reason): they read it again then. One
    /// signal a run, so a run's end wakes its own waiters and no one else's.
    released: Mutex<HashMap<Uuid, watch::Sender<bool>>>,
    max_runs: usize,
    step_slots: Arc<Semaphore>,
}

/// A run handed to this replica's engine by the request that claimed it.
pub struct Handover {
    run: Uuid,
    /// The run as its submission inserted it, so that its driver need not read it again, and
    /// when its insert was sent (its lease runs from a moment later).
    fresh: Option<(Box<store::Run>, Instant)>,
    /// The span of the RPC that started it, its trace's parent.
    parent: tracing::Span,
}

/// What reaches a run's driver from outside it.
#[derive(Clone)]
struct Driven {
    cancel: CancellationToken,
    /// Tells the driver that one of its waiting approvals may have been decided.
    decided: Arc<Notify>,
}

impl Handle {
    pub fn new(max_runs: usize, max_steps: usize) -> (Self, mpsc::UnboundedReceiver<Handover>) {
        let (start, started) = mpsc::unbounded_channel();
        (
            Self {
                owner: Uuid::now_v7(),
                start,
                active: Mutex::new(HashMap::new()),
                released: Mutex::new(HashMap::new()),
                max_runs,
                step_slots: Arc::new(Semaphore::new(max_steps)),
            },
            started,
        )
    }

    /// Whether this replica may take one more run now.
    pub fn has_room(&self) -> bool {
        self.active.lock().expect("active runs poisoned").len() < self.max_runs
    }

    /// Hands a run this replica has claimed to the engine; its trace continues the current
    /// span's.
    pub fn drive(&self, run: Uuid) {
        self.hand_over(Handover {
            run,
            fresh: None,
            parent: tracing::Span::current(),
        });
    }

    /// Like [`drive`](Self::drive), for a run this replica has just inserted, running, as
    /// `run` is, by a statement sent at `leased_at`: its driver starts from it with every step
    /// pending, without reading the run and its steps again (two statements a run). Anything
    /// that happens to the run in between (a cancellation) reaches the driver as it would
    /// while the run goes on. Answers the run's release signal, watched from before its driver
    /// starts.
    pub fn drive_fresh(&self, run: store::Run, leased_at: Instant) -> Release {
        self.hand_over(Handover {
            run: run.id,
            fresh: Some((Box::new(run), leased_at)),
            parent: tracing::Span::current(),
        })
    }

    fn hand_over(&self, handover: Handover) -> Release {
        let run = handover.run;
        let release = Release(Some(self.signal(run)));
        // The receiver lives as long as the engine; after shutdown the lease simply expires and
        // another replica claims the run.
        if self.start.send(handover).is_err() {
            self.raise(run);
        }
        release
    }

    /// The release signal of `run`, created if it has none yet, watched.
    fn signal(&self, run: Uuid) -> watch::Receiver<bool> {
        self.released
            .lock()
            .expect("released poisoned")
            .entry(run)
            .or_insert_with(|| watch::Sender::new(false))
            .subscribe()
    }

    /// Wakes `run`'s waiters: its driver here has let it go.
    fn raise(&self, run: Uuid) {
        let signal = self
            .released
            .lock()
            .expect("released poisoned")
            .remove(&run);
        if let Some(signal) = signal {
            signal.send_replace(true);
        }
    }

    /// What a waiter of `run` watches, taken before it reads the run so that a release between
    /// its read and its wait is not missed: the run's signal when it is driven here.
    pub fn release_of(&self, run: Uuid) -> Release {
        Release(
            self.released
                .lock()
                .expect("released poisoned")
                .get(&run)
                .map(watch::Sender::subscribe),
        )
    }

    pub fn cancel_local(&self, run: Uuid) {
        if let Some(driven) = self.active.lock().expect("active runs poisoned").get(&run) {
            driven.cancel.cancel();
        }
    }

    /// Tells the driver of `run`, when it is this replica, that one of its approvals was
    /// decided; a driver elsewhere looks at its next heartbeat.
    pub fn nudge(&self, run: Uuid) {
        if let Some(driven) = self.active.lock().expect("active runs poisoned").get(&run) {
            driven.decided.notify_one();
        }
    }
}

/// A run's release signal as a waiter took it ([`Handle::release_of`]); empty for a run not
/// driven here when it was taken.
pub struct Release(Option<watch::Receiver<bool>>);

impl Release {
    /// Returns when the run may have moved on, for a caller that reads it again then: at once
    /// when its driver here lets it go; for a run not driven here, after `poll`, since another
    /// replica may have moved it. A run driven here costs its waiters no reads while it runs:
    /// with many callers waiting, polling would be a read per caller per `poll`.
    pub async fn settled(&mut self, poll: Duration) {
        match &mut self.0 {
            Some(released) => {
                // An error is a signal dropped unraised, which only the engine's end does.
                let _ = tokio::time::timeout(LOCAL_RECHECK, released.wait_for(|done| *done)).await;
            }
            None => tokio::time::sleep(poll).await,
        }
    }
}

/// How often a waiter reads a run driven on its own replica anyway: a driver that died without
/// announcing (a panic) must not leave its waiters waiting to their deadline.
const LOCAL_RECHECK: Duration = Duration::from_secs(10);

/// Drives runs until `stop`: those handed over by ExecuteChain and those claimed from the table.
/// On stop, drivers release their leases so another replica can go on at once.
pub async fn run(
    state: Arc<State>,
    mut started: mpsc::UnboundedReceiver<Handover>,
    stop: CancellationToken,
) {
    let mut drivers = JoinSet::new();
    let mut poll = tokio::time::interval(state.config.claim_interval);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            Some(handover) = started.recv() => {
                drivers.spawn(drive(
                    state.clone(),
                    handover.run,
                    handover.fresh,
                    handover.parent,
                    stop.child_token(),
                ));
            }
            _ = poll.tick() => {
                let room = state.engine.max_runs.saturating_sub(drivers.len());
                if room == 0 {
                    continue;
                }
                let room = i64::try_from(room).unwrap_or(i64::MAX);
                match claim(&state, room).await {
                    Ok(claimed) => {
                        for run in claimed {
                            tracing::info!(run = %run.id, resumed = !run.started, "claimed a run");
                            // Taken over from another replica or a restart: the caller's
                            // trace is gone, the run starts one of its own.
                            drivers.spawn(drive(
                                state.clone(),
                                run.id,
                                None,
                                tracing::Span::none(),
                                stop.child_token(),
                            ));
                        }
                    }
                    Err(err) => tracing::warn!(error = %err, "could not claim runs"),
                }
            }
            Some(_) = drivers.join_next(), if !drivers.is_empty() => {}
        }
    }
    while drivers.join_next().await.is_some() {}
}

/// Claims up to `room` runs nobody holds; those starting here for the first time are announced
/// (run.started) in the claim's transaction.
async fn claim(state: &State, room: i64) -> Result<Vec<store::Claimed>> {
    let mut tx = state.pool.begin().await?;
    let claimed = store::claim(&mut tx, state.engine.owner, state.config.lease_ttl, room).await?;
    for run in claimed.iter().filter(|run| run.started) {
        RunEvent::run_started(run.id, &run.chain_name)
            .enqueue(state, &mut tx, &run.tenant_id.to_string())
            .await?;
    }
    tx.commit().await?;
    if claimed.iter().any(|run| run.started) {
        state.wake();
    }
    Ok(claimed)
}

/// How a driver ended without finishing its run.
enum Interrupted {
    LeaseLost,
    Shutdown,
}

async fn drive(
    state: Arc<State>,
    run: Uuid,
    fresh: Option<(Box<store::Run>, Instant)>,
    parent: tracing::Span,
    shutdown: CancellationToken,
) {
    let span = tracing::info_span!(parent: &parent, "chain.run", run_id = %run);
    drive_in(state, run, fresh, shutdown).instrument(span).await;
}

async fn drive_in(
    state: Arc<State>,
    run: Uuid,
    fresh: Option<(Box<store::Run>, Instant)>,
    shutdown: CancellationToken,
) {
    let sole_owner = Arc::new(SoleOwner::new(
        fresh.as_ref().map(|(_, leased_at)| *leased_at),
        state.config.lease_ttl,
    ));
    let fresh = fresh.map(|(run, _)| run);
    let driven = Driven {
        cancel: CancellationToken::new(),
        decided: Arc::new(Notify::new()),
    };
    state
        .engine
        .active
        .lock()
        .expect("active runs poisoned")
        .insert(run, driven.clone());
    // A run claimed from the table has had no signal yet; a handed-over one has.
    drop(state.engine.signal(run));
    let (cancel, decided) = (&driven.cancel, &driven.decided);
    let lost = CancellationToken::new();
    let outcome = tokio::select! {
        outcome = execute(&state, run, fresh, &sole_owner, cancel, decided, &lost) => outcome,
        () = heartbeat(&state, run, &sole_owner, cancel, decided, &lost) =>
            Ok(Err(Interrupted::LeaseLost)),
        () = shutdown.cancelled() => Ok(Err(Interrupted::Shutdown)),
    };
    state
        .engine
        .active
        .lock()
        .expect("active runs poisoned")
        .remove(&run);
    state.engine.raise(run);
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(Interrupted::LeaseLost)) => {
            tracing::warn!(%run, "lost the run's lease; another replica carries it on");
        }
        Ok(Err(Interrupted::Shutdown)) => {
            if let Err(err) = store::release(&state.pool, run, state.engine.owner).await {
                tracing::warn!(%run, error = %err, "could not release the run at shutdown");
            }
        }
        Err(err) => {
            // The lease runs out and a replica tries again: a database hiccup must not lose a run.
            tracing::error!(%run, error = %format!("{err:#}"), "the run's driver failed");
        }
    }
}

/// Renews the lease until it is lost; cancels the run when someone asked for it. Each beat also
/// has the driver look at its waiting approvals (if any), which another replica may have seen
/// decided.
async fn heartbeat(
    state: &State,
    run: Uuid,
    sole_owner: &SoleOwner,
    cancel: &CancellationToken,
    decided: &Notify,
    lost: &CancellationToken,
) {
    loop {
        tokio::time::sleep(state.config.heartbeat_interval()).await;
        decided.notify_one();
        let sent = Instant::now();
        match store::renew(&state.pool, run, state.engine.owner, state.config.lease_ttl).await {
            Ok(Lease::Held { cancel_requested }) => {
                sole_owner.renewed(sent, state.config.lease_ttl);
                if cancel_requested {
                    cancel.cancel();
                }
            }
            Ok(Lease::Lost) => {
                lost.cancel();
                return;
            }
            Err(err) => tracing::warn!(%run, error = %err, "could not renew the run's lease"),
        }
    }
}

/// What a step came to.
enum Outcome {
    Completed(Value),
    Failed(Failure),
    /// Only an approval that timed out with `on_timeout: skip` is skipped after it started.
    Skipped,
}

/// The run's state while a driver holds it.
struct RunContext {
    id: Uuid,
    tenant: String,
    tenant_id: Uuid,
    /// How many chain steps started this run (0 for a caller's run).
    depth: i32,
    /// Who started the run (or its family's top run), whom its child runs are created by.
    created_by: String,
    /// The credential this run calls with, which its child runs use too.
    credential_id: Option<Uuid>,
    session_id: String,
    sole_owner: Arc<SoleOwner>,
    per_run: Arc<Semaphore>,
    /// Per agent, the input fields it accepts (None: any), once looked up.
    accepted: Mutex<HashMap<String, Option<Arc<BTreeSet<String>>>>>,
    /// The agent runs called for right now (a step's, or a map step's items').
    calling: Mutex<BTreeSet<String>>,
    /// Bytes of the run's output taken so far by its completed steps, of `max_run_output`.
    output_bytes: Mutex<usize>,
    max_run_output: usize,
    /// Where a completing step tells the driver its output before its end is written.
    early_ends: mpsc::UnboundedSender<EarlyEnd>,
    /// Per step decided before its needs' ends were written, their signals: its first
    /// transition waits for them.
    gates: Mutex<HashMap<String, Vec<watch::Receiver<bool>>>>,
}

/// A step's output, final (charged, saved in memory), sent to its run's driver just before its
/// end is written; `written` turns true once that end is committed, and closes unset if the
/// write fails.
struct EarlyEnd {
    step_id: String,
    output: Value,
    written: watch::Receiver<bool>,
}

/// Whether a step of `definition` may be decided on the early end of `step_id`: only then is
/// that end sent.
fn has_early_dependants(definition: &Definition, step_id: &str) -> bool {
    definition
        .steps
        .iter()
        .any(|step| decided_early(step) && step.needs.iter().any(|need| need == step_id))
}

/// Whether `step` may be decided on its needs' early ends: a plain agent step, whose every
/// write goes through [`write_transition`] and waits there. A map or chain step writes rows of
/// its own, an approval waits anyway: those are decided once their needs' ends are written.
fn decided_early(step: &Step) -> bool {
    matches!(&step.kind, StepKind::Agent(agent) if agent.for_each.is_none())
}

/// Until when, by this replica's clock, it surely holds a run it inserted itself, so that no
/// other replica can have asked agent-runner for any of its steps yet: only then may an
/// attempt's first request say it is the first to name its agent run id (`first_ask`, which
/// spares agent-runner looking for a kept outcome). A step's start is written after its first
/// request when it is written at all (`Config::unannounced_start`), so a replica that takes a
/// run over cannot tell which of its pending steps were asked for: a run claimed from the table
/// never holds it (None).
struct SoleOwner(Mutex<Option<Instant>>);

impl SoleOwner {
    /// Of a lease taken, or renewed, by a statement sent at `sent`: Postgres starts it later, so
    /// it lasts at least until `sent + ttl`; a tenth of it is left for the clocks' rates.
    fn until(sent: Instant, ttl: Duration) -> Instant {
        sent + ttl * 9 / 10
    }

    fn new(leased_at: Option<Instant>, ttl: Duration) -> Self {
        Self(Mutex::new(leased_at.map(|sent| Self::until(sent, ttl))))
    }

    fn renewed(&self, sent: Instant, ttl: Duration) {
        if let Some(until) = self.0.lock().expect("sole owner poisoned").as_mut() {
            *until = (*until).max(Self::until(sent, ttl));
        }
    }

    fn holds(&self) -> bool {
        let until = *self.0.lock().expect("sole owner poisoned");
        until.is_some_and(|until| Instant::now() < until)
    }
}

/// What a completed step adds to its run's output, `"<step id>":<output>,`, given the size of
/// its output.
fn output_entry_bytes(step_id: &str, output_bytes: usize) -> usize {
    output_bytes + step_id.len() + 4
}

impl RunContext {
    /// Charges a completed step's output to the run's output limit; a failure, charging
    /// nothing, when it would pass it. Final: the same output would pass it again.
    fn charge_output(&self, step_id: &str, output: &Value) -> std::result::Result<(), Failure> {
        // Measured before the lock: a large output takes a while to measure.
        let entry = sizes::json_size(output, self.max_run_output)
            .map(|size| output_entry_bytes(step_id, size));
        let mut used = self.output_bytes.lock().expect("output bytes poisoned");
        match entry {
            Some(entry) if *used + entry <= self.max_run_output => {
                *used += entry;
                Ok(())
            }
            _ => Err(Failure::new(
                OUTPUT_TOO_LARGE,
                format!(
                    "with this step's output, the run's outputs would pass {} bytes, the most \
                     a run may hold",
                    self.max_run_output
                ),
                false,
            )),
        }
    }

    /// Tells agent-runner to stop the agent runs of the steps that were running.
    async fn cancel_agents(&self, state: &State) {
        let calling: Vec<String> =
            std::mem::take(&mut *self.calling.lock().expect("calling poisoned"))
                .into_iter()
                .collect();
        if calling.is_empty() {
            return;
        }
        let Ok(token) = state
            .credentials
            .token(&state.pool, self.credential_id)
            .await
        else {
            return;
        };
        join_all(
            calling
                .iter()
                .map(|agent_run_id| agents::cancel(&state.agents, &token, agent_run_id)),
        )
        .await;
    }

    async fn accepted_fields(
        &self,
        state: &State,
        agent: &str,
        token: &str,
    ) -> std::result::Result<Option<Arc<BTreeSet<String>>>, Failure> {
        if let Some(known) = self
            .accepted
            .lock()
            .expect("accepted fields poisoned")
            .get(agent)
        {
            return Ok(known.clone());
        }
        // Parallel steps of one agent may both look it up; the answers are the same.
        let found = agents::accepted_fields(&state.agents, token, agent)
            .await?
            .map(Arc::new);
        self.accepted
            .lock()
            .expect("accepted fields poisoned")
            .insert(agent.to_owned(), found.clone());
        Ok(found)
    }
}

/// What conditions and mappings read, `{"input": <run input>, "steps": {<step id>: <output>}}`,
/// kept as one value that deciding a step borrows: building it per decision would copy every
/// output each time.
struct Scope(Value);

impl Scope {
    fn new(input: Value) -> Self {
        Self(json!({ "input": input, "steps": {} }))
    }

    fn value(&self) -> &Value {
        &self.0
    }

    fn input(&self) -> &Value {
        &self.0["input"]
    }

    fn outputs(&self) -> &Map<String, Value> {
        self.0["steps"]
            .as_object()
            .expect("a scope is made with its steps object")
    }

    fn insert_output(&mut self, step_id: String, output: Value) {
        if let Some(outputs) = self.0.get_mut("steps").and_then(Value::as_object_mut) {
            outputs.insert(step_id, output);
        }
    }

    fn remove_output(&mut self, step_id: &str) {
        if let Some(outputs) = self.0.get_mut("steps").and_then(Value::as_object_mut) {
            outputs.remove(step_id);
        }
    }

    /// The run's output: every completed step's output by step id.
    fn into_outputs(mut self) -> Value {
        self.0["steps"].take()
    }
}

/// What a step runs with: a mapping's rendering as it is, or the default merge, which is cut
/// to the agent's accepted fields at its first attempt.
enum StepInput {
    Mapped(Value),
    Merged(Value),
}

impl StepInput {
    fn value(&self) -> &Value {
        match self {
            Self::Mapped(value) | Self::Merged(value) => value,
        }
    }
}

async fn execute(
    state: &Arc<State>,
    id: Uuid,
    fresh: Option<Box<store::Run>>,
    sole_owner: &Arc<SoleOwner>,
    cancel: &CancellationToken,
    decided: &Notify,
    lost: &CancellationToken,
) -> Result<Result<(), Interrupted>> {
    let is_fresh = fresh.is_some();
    let run = match fresh {
        Some(run) => *run,
        None => store::load(&state.pool, id).await?,
    };
    if run.status() != RunStatus::Running {
        return Ok(Ok(()));
    }
    if run.cancel_requested {
        cancel.cancel();
    }
    let definition: Definition = serde_json::from_value(run.definition.clone()).map_err(|err| {
        anyhow::anyhow!("the stored definition of run {id} does not parse: {err}")
    })?;
    let mut statuses: HashMap<String, StepStatus> = HashMap::new();
    let mut scope = Scope::new(run.input.clone());
    // What completed steps took of the run's output limit before an interruption.
    let mut output_bytes = 0;
    // Steps a replica before this one had started, by the attempt they were at.
    let mut resumed: HashMap<String, u32> = HashMap::new();
    // Chain steps a replica before this one had started, by the child run of their attempt.
    let mut children: HashMap<String, Uuid> = HashMap::new();
    let mut failure: Option<(String, String)> = None;
    // Approval steps waiting for a decision, by when they time out.
    let mut waiting: HashMap<String, DateTime<Utc>> = HashMap::new();
    // A fresh run's steps are all pending, as the definition lists them.
    let rows = if is_fresh {
        Vec::new()
    } else {
        store::steps(&state.pool, id).await?
    };
    for row in rows {
        if row.status() == StepStatus::Waiting {
            waiting.insert(
                row.step_id.clone(),
                row.waiting_until.unwrap_or_else(Utc::now),
            );
        }
        let status = match row.status() {
            // Interrupted with its replica: its attempt goes on, under the same agent run id.
            StepStatus::Running => {
                if let Ok(attempt @ 1..) = u32::try_from(row.attempts) {
                    resumed.insert(row.step_id.clone(), attempt);
                }
                if let Some(child) = row.child_run_id {
                    children.insert(row.step_id.clone(), child);
                }
                StepStatus::Pending
            }
            other => other,
        };
        if status == StepStatus::Completed {
            let output = row.output.unwrap_or(Value::Null);
            let size = sizes::json_size(&output, usize::MAX).unwrap_or(0);
            output_bytes += output_entry_bytes(&row.step_id, size);
            scope.insert_output(row.step_id.clone(), output);
        }
        // A step that failed the run before it could be finished (a rejection while the run
        // waited, or a replica dying in between) fails it now.
        if status == StepStatus::Failed
            && failure.is_none()
            && let Some(step) = definition.step(&row.step_id)
            && step.on_failure == OnFailure::Fail
        {
            let failed = Failure::new(
                row.error_code.as_deref().unwrap_or("failed"),
                row.error_message.clone().unwrap_or_default(),
                false,
            );
            failure = Some(run_error(step, &failed));
        }
        statuses.insert(row.step_id, status);
    }
    for step in &definition.steps {
        statuses
            .entry(step.id.clone())
            .or_insert(StepStatus::Pending);
    }
    let (early_ends_sender, mut early_ends) = mpsc::unbounded_channel::<EarlyEnd>();
    let context = Arc::new(RunContext {
        id,
        tenant: run.tenant_id.to_string(),
        tenant_id: run.tenant_id,
        depth: run.depth,
        created_by: run.created_by.clone(),
        credential_id: run.credential_id,
        session_id: run.session_id.clone(),
        sole_owner: sole_owner.clone(),
        per_run: Arc::new(Semaphore::new(state.config.max_parallel_steps_per_run)),
        accepted: Mutex::new(HashMap::new()),
        calling: Mutex::new(BTreeSet::new()),
        output_bytes: Mutex::new(output_bytes),
        max_run_output: state.config.max_run_output_bytes,
        early_ends: early_ends_sender,
        gates: Mutex::new(HashMap::new()),
    });
    // Steps whose output is known and whose end is being written, by the signal of its write.
    let mut early: HashMap<String, watch::Receiver<bool>> = HashMap::new();
    let max_input = state.config.max_step_input_bytes;

    let mut in_flight: JoinSet<std::result::Result<(String, Outcome), ChainError>> = JoinSet::new();
    if !run.agents_checked {
        match check_agents_at_start(state, &run, &definition, &statuses, cancel, lost).await {
            AgentsAtStart::Known | AgentsAtStart::Cancelled => {}
            AgentsAtStart::Unknown(unknown) => {
                let missing: Vec<(&Step, &str)> = definition
                    .steps
                    .iter()
                    .filter_map(|step| step.agent().map(|agent| (step, agent)))
                    .filter(|(step, agent)| {
                        unknown.contains(*agent)
                            && statuses.get(&step.id) == Some(&StepStatus::Pending)
                    })
                    .collect();
                for (step, agent) in missing {
                    let unknown_agent = Failure::new(
                        agents::UNKNOWN_AGENT,
                        format!("agent-runner has no agent named `{agent}`"),
                        false,
                    );
                    record(
                        state,
                        &context,
                        step,
                        StepStatus::Failed,
                        None,
                        Some(&unknown_agent),
                        "",
                    )
                    .await?;
                    statuses.insert(step.id.clone(), StepStatus::Failed);
                    failure = failure.or_else(|| Some(run_error(step, &unknown_agent)));
                }
            }
            AgentsAtStart::Unreachable => {
                failure = Some((
                    agents::UNAVAILABLE.to_owned(),
                    format!(
                        "agent-runner could not be asked whether the run's agents exist for {} s",
                        state.config.max_outage_wait.as_secs()
                    ),
                ));
            }
            AgentsAtStart::LeaseLost => return Ok(Err(Interrupted::LeaseLost)),
        }
    }
    // Whether the waiting approvals are to be looked at: at the start, on a nudge, a heartbeat or
    // a timeout falling due.
    let mut recheck = true;
    loop {
        if cancel.is_cancelled() || lost.is_cancelled() {
            break;
        }
        if recheck && !waiting.is_empty() {
            recheck = false;
            for (step_id, outcome) in settle(state, &context, &definition, &mut waiting).await? {
                let step = definition
                    .step(&step_id)
                    .expect("a waiting step is in the definition");
                ended(step, outcome, &mut statuses, &mut scope, &mut failure);
            }
        }
        // Decide every step whose needs are all finished; a skip can make more steps decidable.
        let mut progressed = true;
        while progressed && failure.is_none() {
            progressed = false;
            for step in &definition.steps {
                let early_ok = decided_early(step);
                if statuses.get(&step.id) != Some(&StepStatus::Pending)
                    || !step.needs.iter().all(|need| {
                        statuses.get(need).is_some_and(|s| s.is_terminal())
                            || (early_ok && early.contains_key(need))
                    })
                {
                    continue;
                }
                progressed = true;
                let after: Vec<watch::Receiver<bool>> = step
                    .needs
                    .iter()
                    .filter_map(|need| early.get(need).cloned())
                    .collect();
                if !after.is_empty() {
                    context
                        .gates
                        .lock()
                        .expect("gates poisoned")
                        .insert(step.id.clone(), after);
                }
                match decide(&definition, step, &statuses, &scope, max_input) {
                    Decision::Skip(reason) => {
                        record(
                            state,
                            &context,
                            step,
                            StepStatus::Skipped,
                            None,
                            None,
                            &reason,
                        )
                        .await?;
                        statuses.insert(step.id.clone(), StepStatus::Skipped);
                    }
                    Decision::Fail(failure_now) => {
                        record(
                            state,
                            &context,
                            step,
                            StepStatus::Failed,
                            None,
                            Some(&failure_now),
                            "",
                        )
                        .await?;
                        statuses.insert(step.id.clone(), StepStatus::Failed);
                        if step.on_failure == OnFailure::Fail {
                            failure = Some(run_error(step, &failure_now));
                            break;
                        }
                    }
                    Decision::Run(agent, input) => {
                        statuses.insert(step.id.clone(), StepStatus::Running);
                        let span = tracing::info_span!(
                            "chain.step",
                            step_id = %step.id,
                            agent = %agent.agent,
                        );
                        in_flight.spawn(
                            run_step(
                                state.clone(),
                                context.clone(),
                                step.clone(),
                                agent.clone(),
                                input,
                                resumed.remove(&step.id),
                                has_early_dependants(&definition, &step.id),
                            )
                            .instrument(span),
                        );
                    }
                    Decision::Map(agent, items) => {
                        statuses.insert(step.id.clone(), StepStatus::Running);
                        let span = tracing::info_span!(
                            "chain.map",
                            step_id = %step.id,
                            agent = %agent.agent,
                            items = items.items.len(),
                        );
                        in_flight.spawn(
                            map::run_map(
                                state.clone(),
                                context.clone(),
                                step.clone(),
                                agent.clone(),
                                items,
                                resumed.remove(&step.id).is_some(),
                            )
                            .instrument(span),
                        );
                    }
                    Decision::Chain(chain, input) => {
                        statuses.insert(step.id.clone(), StepStatus::Running);
                        let span = tracing::info_span!("chain.child", step_id = %step.id);
                        let resumed = resumed.remove(&step.id).zip(children.remove(&step.id));
                        in_flight.spawn(
                            subchains::run_chain_step(
                                state.clone(),
                                context.clone(),
                                step.clone(),
                                chain.clone(),
                                input,
                                resumed,
                            )
                            .instrument(span),
                        );
                    }
                    Decision::Await(approval) => {
                        let until = await_approval(state, &context, step, approval).await?;
                        statuses.insert(step.id.clone(), StepStatus::Waiting);
                        waiting.insert(step.id.clone(), until);
                    }
                }
            }
        }
        if failure.is_some() || (in_flight.is_empty() && waiting.is_empty()) {
            break;
        }
        if in_flight.is_empty() {
            if recheck {
                continue;
            }
            // Only approvals are left: the run waits for them holding nothing, and whichever
            // replica sees a decision or a timeout first carries it on.
            match store::park(&state.pool, id, state.engine.owner, waiting.len()).await? {
                Parked::Waiting => {
                    tracing::info!(run = %id, approvals = waiting.len(),
                        "the run waits for approvals, held by no replica");
                    return Ok(Ok(()));
                }
                Parked::Changed => {
                    recheck = true;
                    continue;
                }
                Parked::CancelRequested => {
                    cancel.cancel();
                    break;
                }
                Parked::Lost => return Ok(Err(Interrupted::LeaseLost)),
            }
        }
        let next_timeout = waiting.values().min().map_or_else(
            || tokio::time::Instant::now() + Duration::from_secs(3600),
            |until| {
                tokio::time::Instant::now()
                    + (*until - Utc::now()).to_std().unwrap_or(Duration::ZERO)
            },
        );
        let joined = tokio::select! {
            joined = in_flight.join_next() => joined,
            Some(end) = early_ends.recv() => {
                // An end whose task was joined first is taken in already.
                if statuses.get(&end.step_id) == Some(&StepStatus::Running) {
                    scope.insert_output(end.step_id.clone(), end.output);
                    early.insert(end.step_id, end.written);
                }
                continue;
            }
            () = cancel.cancelled() => break,
            () = lost.cancelled() => return Ok(Err(Interrupted::LeaseLost)),
            () = decided.notified(), if !waiting.is_empty() => {
                recheck = true;
                continue;
            }
            () = tokio::time::sleep_until(next_timeout), if !waiting.is_empty() => {
                recheck = true;
                continue;
            }
        };
        let Some(joined) = joined else { break };
        let (step_id, outcome) = match joined {
            Ok(result) => result?,
            Err(panicked) => return Err(anyhow::anyhow!("a step task failed: {panicked}").into()),
        };
        let step = definition
            .step(&step_id)
            .expect("a running step is in the definition");
        early.remove(&step_id);
        ended(step, outcome, &mut statuses, &mut scope, &mut failure);
    }
    // Ends being written are let finish, so the run's output holds only recorded steps' outputs.
    for (step_id, mut written) in early {
        if written.wait_for(|written| *written).await.is_err() {
            scope.remove_output(&step_id);
        }
    }
    // Whatever still runs is stopped: the calls are dropped and, for a cancelled run,
    // agent-runner is told to stop their agents (a dropped call alone leaves them running for a
    // replica that takes the run over).
    in_flight.shutdown().await;
    if cancel.is_cancelled() {
        context.cancel_agents(state).await;
    }
    if lost.is_cancelled() {
        return Ok(Err(Interrupted::LeaseLost));
    }
    let output = scope.into_outputs();
    let (status, error) = if cancel.is_cancelled() && failure.is_none() {
        (RunStatus::Cancelled, None)
    } else if let Some((code, message)) = &failure {
        (RunStatus::Failed, Some((code.as_str(), message.as_str())))
    } else {
        (RunStatus::Completed, None)
    };
    let ending = store::Ending {
        run: id,
        owner: state.engine.owner,
        status,
        output,
        error: error.map(|(code, message)| (code.to_owned(), message.to_owned())),
    };
    let event = RunEvent::run_finished(id, &run.chain_name, status, error);
    // A child run outlives no parent: whatever of it still runs is stopped with it, in the
    // transaction ending the parent. Only a chain step makes children; other runs end in a
    // batch with those finishing alongside.
    if !definition
        .steps
        .iter()
        .any(|step| matches!(step.kind, StepKind::Chain(_)))
    {
        let event = event.row(state, &context.tenant);
        if let Err(LeaseLost) = endings::end(&state.endings, RunEnd { ending, event }).await? {
            return Ok(Err(Interrupted::LeaseLost));
        }
        metrics::counter!("chains_runs_total", "status" => status.as_str()).increment(1);
        return Ok(Ok(()));
    }
    let mut tx = state.pool.begin().await?;
    if store::finish(&mut tx, &[&ending]).await? != [true] {
        return Ok(Err(Interrupted::LeaseLost));
    }
    let (ended, asked) = store::stop_children(&mut tx, id).await?;
    for child in &ended {
        RunEvent::run_cancelled(*child)
            .enqueue(state, &mut tx, &context.tenant)
            .await?;
    }
    event.commit(state, tx, &context.tenant).await?;
    for child in asked {
        state.engine.cancel_local(child);
    }
    metrics::counter!("chains_runs_total", "status" => status.as_str()).increment(1);
    Ok(Ok(()))
}

/// What a run accepted without its agents checked learns about them as it starts.
enum AgentsAtStart {
    Known,
    /// These agents do not exist.
    Unknown(BTreeSet<String>),
    /// agent-runner could not be asked for `Config::max_outage_wait`.
    Unreachable,
    Cancelled,
    LeaseLost,
}

/// Asks whether the agents of the run's steps yet to run exist, with the run's credential,
/// until agent-runner answers (or the run is cancelled, its lease lost, or the patience spent):
/// no step can run before it is back anyway. A credential without agents:read cannot ask; the
/// steps' execution answers for their agents then.
async fn check_agents_at_start(
    state: &State,
    run: &store::Run,
    definition: &Definition,
    statuses: &HashMap<String, StepStatus>,
    cancel: &CancellationToken,
    lost: &CancellationToken,
) -> AgentsAtStart {
    let agents: BTreeSet<String> = definition
        .steps
        .iter()
        .filter(|step| statuses.get(&step.id) == Some(&StepStatus::Pending))
        .filter_map(|step| step.agent().map(str::to_owned))
        .collect();
    let give_up = tokio::time::Instant::now() + state.config.max_outage_wait;
    let mut backoff = Backoff::new(OUTAGE_FIRST_WAIT, OUTAGE_MAX_WAIT);
    loop {
        let looked_up = match state
            .credentials
            .token(&state.pool, run.credential_id)
            .await
        {
            Ok(token) => {
                state
                    .catalog
                    .lookup_for(&state.agents, run.tenant_id, &token, agents.clone())
                    .await
            }
            Err(err) => Err(err),
        };
        match looked_up {
            Ok(Lookup::Known) | Err(ChainError::Forbidden(_)) => return AgentsAtStart::Known,
            Ok(Lookup::Unknown(unknown)) => return AgentsAtStart::Unknown(unknown),
            Ok(Lookup::Unverified) => {
                tracing::info!(run = %run.id, "waiting for agent-runner to check the run's agents");
            }
            Err(err) => {
                tracing::warn!(run = %run.id, error = %err, "could not check the run's agents");
            }
        }
        if tokio::time::Instant::now() >= give_up {
            return AgentsAtStart::Unreachable;
        }
        tokio::select! {
            () = tokio::time::sleep(backoff.next_wait()) => {}
            () = cancel.cancelled() => return AgentsAtStart::Cancelled,
            () = lost.cancelled() => return AgentsAtStart::LeaseLost,
        }
    }
}

fn run_error(step: &Step, failure: &Failure) -> (String, String) {
    let message = format!("step `{}` failed: {}", step.id, failure.message);
    (
        failure.code.clone(),
        limits::error_message(&message).into_owned(),
    )
}

/// Takes a step's end into the run's state: its status, its output for the steps after it, and
/// the run's failure when the step's `on_failure` says so.
fn ended(
    step: &Step,
    outcome: Outcome,
    statuses: &mut HashMap<String, StepStatus>,
    scope: &mut Scope,
    failure: &mut Option<(String, String)>,
) {
    match outcome {
        Outcome::Completed(output) => {
            statuses.insert(step.id.clone(), StepStatus::Completed);
            scope.insert_output(step.id.clone(), output);
        }
        Outcome::Failed(step_failure) => {
            statuses.insert(step.id.clone(), StepStatus::Failed);
            if step.on_failure == OnFailure::Fail && failure.is_none() {
                *failure = Some(run_error(step, &step_failure));
            }
        }
        Outcome::Skipped => {
            statuses.insert(step.id.clone(), StepStatus::Skipped);
        }
    }
}

/// The code of an approval step nobody decided within its timeout (`on_timeout: fail`).
const APPROVAL_TIMED_OUT: &str = "approval_timed_out";

/// Sets an approval step waiting and announces it (`step.waiting_approval`); returns when it
/// times out.
async fn await_approval(
    state: &State,
    context: &RunContext,
    step: &Step,
    approval: &Approval,
) -> Result<DateTime<Utc>> {
    let mut tx = state.pool.begin().await?;
    let until = store::await_approval(
        &mut tx,
        context.id,
        state.engine.owner,
        &step.id,
        Duration::from_millis(approval.timeout_ms),
    )
    .await?
    .map_err(|LeaseLost| lease_lost())?;
    RunEvent::step_waiting_approval(context.id, &step.id, approval, until)
        .commit(state, tx, &context.tenant)
        .await?;
    Ok(until)
}

/// Looks at the run's waiting approvals: those decided (by ApproveStep or RejectStep, here or
/// on another replica) come back with how they ended, and those past their timeout are ended
/// as their `on_timeout` says. The rest stay in `waiting`.
async fn settle(
    state: &State,
    context: &RunContext,
    definition: &Definition,
    waiting: &mut HashMap<String, DateTime<Utc>>,
) -> Result<Vec<(String, Outcome)>> {
    let ids: Vec<String> = waiting.keys().cloned().collect();
    let mut settled = Vec::new();
    for row in store::steps_among(&state.pool, context.id, &ids).await? {
        let outcome = match row.status() {
            StepStatus::Waiting => {
                let due = row.waiting_until.is_none_or(|until| until <= Utc::now());
                let approval = definition
                    .step(&row.step_id)
                    .and_then(|step| step.approval().map(|approval| (step, approval)));
                match approval {
                    Some((step, approval)) if due => {
                        time_out(state, context, step, approval).await?
                    }
                    _ => continue,
                }
            }
            StepStatus::Completed => Outcome::Completed(row.output.unwrap_or(Value::Null)),
            StepStatus::Failed => Outcome::Failed(Failure::new(
                row.error_code.as_deref().unwrap_or(REJECTED),
                row.error_message.unwrap_or_default(),
                false,
            )),
            _ => Outcome::Skipped,
        };
        waiting.remove(&row.step_id);
        settled.push((row.step_id, outcome));
    }
    Ok(settled)
}

/// The code of a rejected approval step.
pub const REJECTED: &str = "rejected";

/// Ends an approval step past its timeout as its `on_timeout` says, unless a decision got there
/// first (the write only applies to a step still waiting).
async fn time_out(
    state: &State,
    context: &RunContext,
    step: &Step,
    approval: &Approval,
) -> Result<Outcome> {
    let (status, outcome, failure, skip_reason) = match approval.on_timeout {
        OnTimeout::Fail => {
            let failure = Failure::new(
                APPROVAL_TIMED_OUT,
                format!("nobody decided within {} ms", approval.timeout_ms),
                false,
            );
            (
                StepStatus::Failed,
                Outcome::Failed(failure.clone()),
                Some(failure),
                "",
            )
        }
        OnTimeout::Skip => (
            StepStatus::Skipped,
            Outcome::Skipped,
            None,
            "nobody decided within the approval's timeout",
        ),
        OnTimeout::Approve => (
            StepStatus::Completed,
            Outcome::Completed(json!({ "approved": true, "by": "timeout" })),
            None,
            "",
        ),
    };
    let output = match &outcome {
        Outcome::Completed(output) => Some(output),
        _ => None,
    };
    let error = failure
        .as_ref()
        .map(|failure| (failure.code.as_str(), failure.message.as_str()));
    let event = RunEvent::step_finished(
        context.id,
        &step.id,
        "",
        &StepEnding {
            status,
            error,
            skip_reason,
            warning: "",
        },
    );
    let written = transition(
        state,
        context,
        StepUpdate {
            step_id: &step.id,
            status,
            attempt: None,
            began_at: None,
            ended_at: None,
            output,
            error,
            skip_reason,
            artifacts: None,
            warning: "",
            only_waiting: true,
        },
        event,
    )
    .await?;
    if written.is_err() {
        // Decided meanwhile, or the lease is gone: the row says which.
        let row = store::steps_among(&state.pool, context.id, std::slice::from_ref(&step.id))
            .await?
            .pop();
        return match row {
            Some(row) if row.status() == StepStatus::Completed => {
                Ok(Outcome::Completed(row.output.unwrap_or(Value::Null)))
            }
            Some(row) if row.status() == StepStatus::Failed => Ok(Outcome::Failed(Failure::new(
                row.error_code.as_deref().unwrap_or(REJECTED),
                row.error_message.unwrap_or_default(),
                false,
            ))),
            _ => Err(lease_lost()),
        };
    }
    metrics::counter!("chains_steps_total", "status" => status.as_str()).increment(1);
    Ok(outcome)
}

fn input_too_large(limit: usize) -> Failure {
    Failure::new(
        "input_too_large",
        format!("the step's input would be larger than {limit} bytes, the most a step is sent"),
        false,
    )
}

enum Decision<'a> {
    Skip(String),
    Fail(Failure),
    Run(&'a AgentStep, StepInput),
    /// A map step, with its items and what their inputs are rendered from.
    Map(&'a AgentStep, map::Items),
    /// A chain step, with its child run's input.
    Chain(&'a ChainStep, Value),
    Await(&'a Approval),
}

/// Whether a step whose needs have all finished runs, and with what input (at most
/// `max_input` bytes of JSON).
fn decide<'a>(
    definition: &Definition,
    step: &'a Step,
    statuses: &HashMap<String, StepStatus>,
    scope: &Scope,
    max_input: usize,
) -> Decision<'a> {
    for need in &step.needs {
        let reason = match statuses.get(need) {
            Some(StepStatus::Skipped)
                if definition
                    .step(need)
                    .is_none_or(|needed| needed.on_skip != OnSkip::Continue) =>
            {
                "was skipped"
            }
            Some(StepStatus::Cancelled) => "was cancelled",
            Some(StepStatus::Failed)
                if definition
                    .step(need)
                    .is_some_and(|needed| needed.on_failure != OnFailure::Continue) =>
            {
                "failed"
            }
            _ => continue,
        };
        return Decision::Skip(format!("needs step `{need}`, which {reason}"));
    }
    if let Some(when) = &step.when {
        let holds = expr::parse(when)
            .map_err(|err| err.to_string())
            .and_then(|parsed| parsed.holds(scope.value()).map_err(|err| err.to_string()));
        match holds {
            Ok(true) => {}
            Ok(false) => return Decision::Skip(format!("when `{when}` is false")),
            Err(err) => {
                return Decision::Fail(Failure::new(
                    "invalid_input",
                    format!("when `{when}`: {err}"),
                    false,
                ));
            }
        }
    }
    let agent = match &step.kind {
        StepKind::Agent(agent) => agent,
        StepKind::Approval(approval) => return Decision::Await(approval),
        StepKind::Chain(chain) => {
            return match subchains::child_input(step, chain, scope, max_input) {
                Ok(input) => Decision::Chain(chain, input),
                Err(failure) => Decision::Fail(failure),
            };
        }
    };
    if let Some(for_each) = &agent.for_each {
        return match map::Items::of(for_each, scope, max_input) {
            Ok(items) => Decision::Map(agent, items),
            Err(failure) => Decision::Fail(failure),
        };
    }
    match &agent.input {
        None => {
            let merged = definition::merged_input(scope.input(), &step.needs, scope.outputs());
            if sizes::json_size(&merged, max_input).is_none() {
                return Decision::Fail(input_too_large(max_input));
            }
            Decision::Run(agent, StepInput::Merged(merged))
        }
        Some(mapping) => match definition::render_mapping(mapping, scope.value(), max_input) {
            Ok(rendered) => Decision::Run(agent, StepInput::Mapped(rendered)),
            Err(MappingError::Invalid(err)) => {
                Decision::Fail(Failure::new("invalid_input", format!("input {err}"), false))
            }
            Err(MappingError::TooLarge) => Decision::Fail(input_too_large(max_input)),
        },
    }
}

/// The token and the input for an attempt; a failure here counts as the attempt's.
async fn prepare(
    state: &State,
    context: &RunContext,
    agent: &AgentStep,
    input: &StepInput,
) -> std::result::Result<(String, Value), Failure> {
    let token = state
        .credentials
        .token(&state.pool, context.credential_id)
        .await
        .map_err(|err| match err {
            ChainError::Precondition(message) => Failure::credential_refused(message),
            outage => Failure::outage(outage.to_string()),
        })?;
    let sent = match input {
        StepInput::Mapped(value) => value.clone(),
        StepInput::Merged(value) => {
            match context.accepted_fields(state, &agent.agent, &token).await? {
                Some(accepted) => definition::only_accepted(value, &accepted),
                None => value.clone(),
            }
        }
    };
    Ok((token, sent))
}

/// The agent run id of a step's attempt: the same for every call the attempt makes, on any
/// replica, so agent-runner can answer a call repeated after an outage or a takeover with the
/// run it already has. At most 36 + 1 + 64 + 1 + 2 bytes, within agent-runner's 128.
fn agent_run_id(run: Uuid, step: &str, attempt: u32) -> String {
    format!("{run}-{step}-{attempt}")
}

/// A slot of the replica's and one of the run's for a step, held while it runs.
async fn step_slots(
    state: &State,
    context: &RunContext,
) -> Result<(OwnedSemaphorePermit, OwnedSemaphorePermit)> {
    let replica = state
        .engine
        .step_slots
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| anyhow::anyhow!("the step slots were closed"))?;
    let run = context
        .per_run
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| anyhow::anyhow!("the run's step slots were closed"))?;
    Ok((replica, run))
}

/// Saves a completed step's output in the run's memory session (with `token`; without one, or
/// when the save fails, the step completes with a warning saying so), then records it; with
/// `early`, the driver is told the output ([`EarlyEnd`]) while it is recorded.
#[allow(clippy::too_many_arguments)] // two call sites; a struct would only rename them
async fn record_completed(
    state: &State,
    context: &RunContext,
    step: &Step,
    output: &Value,
    token: Option<&str>,
    artifacts: Option<Value>,
    mut start: Option<UnwrittenStart>,
    early: bool,
) -> Result<()> {
    let warning = match (&state.memory, token) {
        (Some(saves), Some(token)) => {
            let ttl = state
                .retention
                .entry_ttl(
                    &state.pool,
                    context.tenant_id,
                    state.config.run_retention_days,
                )
                .await;
            let saved = memory::StepOutput {
                session_id: &context.session_id,
                step_id: &step.id,
                output,
                ttl,
            };
            let save =
                memory::save_step_output(saves, token, saved, state.config.memory_outage_wait);
            announcing(state, context, &step.id, &mut start, save)
                .await?
                .err()
                .map(|warning| limits::error_message(&warning).into_owned())
                .unwrap_or_default()
        }
        (Some(_), None) => "the run's credential could not be exchanged to save it".to_owned(),
        (None, _) => String::new(),
    };
    if !warning.is_empty() {
        tracing::warn!(run = %context.id, step = %step.id, %warning,
            "a completed step's output is not in memory");
    }
    let early_end = early.then(|| {
        let ended_at = Utc::now();
        let (written, follow) = watch::channel(false);
        // The driver is gone only when the run is over for this replica; nothing waits then.
        let _ = context.early_ends.send(EarlyEnd {
            step_id: step.id.clone(),
            output: output.clone(),
            written: follow,
        });
        (written, ended_at)
    });
    record_with(
        state,
        context,
        step,
        StepStatus::Completed,
        Some(output),
        None,
        "",
        artifacts,
        &warning,
        start,
        early_end.as_ref().map(|(_, ended_at)| *ended_at),
    )
    .await?;
    if let Some((written, _)) = early_end {
        written.send_replace(true);
    }
    Ok(())
}

/// Records the output of a step that made no agent attempt of its own (a map step's list, a
/// chain step's child run's output), saved in memory with the run's credential if it has one.
async fn record_output(
    state: &State,
    context: &RunContext,
    step: &Step,
    output: &Value,
) -> Result<()> {
    let token = state
        .credentials
        .token(&state.pool, context.credential_id)
        .await
        .ok();
    record_completed(
        state,
        context,
        step,
        output,
        token.as_deref(),
        None,
        None,
        false,
    )
    .await
}

/// The first and the longest wait between calls of an attempt that met an outage.
const OUTAGE_FIRST_WAIT: Duration = Duration::from_millis(100);
const OUTAGE_MAX_WAIT: Duration = Duration::from_secs(5);

/// Runs a step's attempts and records how it ended. `resumed` is the attempt a replica before
/// this one had started (the step was running when the run was taken over): it goes on under
/// the same agent run id, without a second `step.started`. With `early`, a completed step tells
/// the driver its output before its end is written ([`EarlyEnd`]).
async fn run_step(
    state: Arc<State>,
    context: Arc<RunContext>,
    step: Step,
    agent: AgentStep,
    input: StepInput,
    resumed: Option<u32>,
    early: bool,
) -> Result<(String, Outcome)> {
    let _slots = step_slots(&state, &context).await?;
    let mut backoff = Duration::from_millis(agent.retry.backoff_ms);
    let mut attempt = resumed.unwrap_or(1);
    let mut started = resumed.is_some();
    let outcome = loop {
        let agent_run_id = agent_run_id(context.id, &step.id, attempt);
        let (result, start) = attempt_step(
            &state,
            &context,
            &step,
            &agent,
            &input,
            &agent_run_id,
            attempt,
            started,
            false,
        )
        .await?;
        started = false;
        match result {
            Ok((completed, token)) => {
                let artifacts = json!(
                    completed
                        .artifacts
                        .iter()
                        .map(|artifact| json!({
                            "path": artifact.path, "size_bytes": artifact.size_bytes,
                            "sha256": artifact.sha256,
                        }))
                        .collect::<Vec<_>>()
                );
                record_completed(
                    &state,
                    &context,
                    &step,
                    &completed.output,
                    Some(&token),
                    Some(artifacts),
                    start,
                    early,
                )
                .await?;
                break Outcome::Completed(completed.output);
            }
            Err(failure) if failure.retriable && attempt < agent.retry.attempts => {
                if let Some(start) = start {
                    start.write(&state, &context, &step.id).await?;
                }
                tracing::info!(run = %context.id, step = %step.id, attempt, code = %failure.code,
                    "step attempt failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2);
                attempt += 1;
            }
            Err(failure) => {
                record_with(
                    &state,
                    &context,
                    &step,
                    StepStatus::Failed,
                    None,
                    Some(&failure),
                    "",
                    None,
                    "",
                    start,
                    None,
                )
                .await?;
                break Outcome::Failed(failure);
            }
        }
    };
    Ok((step.id, outcome))
}

/// What an attempt came to, and its start when that is not written yet (the attempt ended
/// within `Config::unannounced_start`): the step's next transition writes it.
type Attempted = (
    std::result::Result<(agents::Completed, String), Failure>,
    Option<UnwrittenStart>,
);

/// One attempt of a step, called until agent-runner answers. Its start (unless `started`
/// already) is made with its first call and written on its own only once the attempt has run
/// `Config::unannounced_start`, or before it waits for an outage. A call that meets an outage is
/// repeated with the same agent run id after a jittered backoff, for as long as the step's
/// timeout (or, without one, `Config::max_outage_wait`) allows; the first such wait is announced
/// as `step.waiting`. An attempt at one `item` of a map step writes nothing and announces
/// nothing: its step was recorded as started once, and its end is the item's row (map.rs).
#[allow(clippy::too_many_arguments)] // two call sites; a struct would only rename them
async fn attempt_step(
    state: &State,
    context: &RunContext,
    step: &Step,
    agent: &AgentStep,
    input: &StepInput,
    agent_run_id: &str,
    attempt: u32,
    started: bool,
    item: bool,
) -> Result<Attempted> {
    let began = tokio::time::Instant::now();
    let deadline = began
        + if agent.timeout_ms == 0 {
            state.config.max_outage_wait
        } else {
            Duration::from_millis(agent.timeout_ms)
        };
    let mut outage_backoff = Backoff::new(OUTAGE_FIRST_WAIT, OUTAGE_MAX_WAIT);
    let mut waiting = false;
    let mut started = started || item;
    let mut start = None;
    // Only an attempt's first request can be the first to name its agent run id, and only in
    // a run no other replica can have asked for (SoleOwner); a resumed attempt's or an item's
    // may have been sent before.
    let mut first_ask = !started;
    loop {
        let prepared = prepare(state, context, agent, input).await;
        if !started {
            let sent = prepared.as_ref().map_or(input.value(), |(_, sent)| sent);
            start = Some(UnwrittenStart::new(
                state,
                context,
                step,
                &agent.agent,
                attempt,
                agent_run_id,
                sent,
            ));
            started = true;
        }
        // Time left of the step's own timeout; the agent gets what remains of it (zero says
        // "no timeout" to agents::execute, so what is left is at least a millisecond).
        let timeout = if agent.timeout_ms == 0 {
            Duration::ZERO
        } else {
            deadline
                .saturating_duration_since(tokio::time::Instant::now())
                .max(Duration::from_millis(1))
        };
        context
            .calling
            .lock()
            .expect("calling poisoned")
            .insert(agent_run_id.to_owned());
        let workspace_id = context.id.to_string();
        let result = match prepared {
            Ok((token, sent)) => {
                let call = agents::execute(
                    &state.agents,
                    agents::Attempt {
                        agent: &agent.agent,
                        input: &sent,
                        session_id: &context.session_id,
                        agent_run_id,
                        first_ask: first_ask && context.sole_owner.holds(),
                        workspace_id: &workspace_id,
                        timeout,
                        model: agent.model.as_deref(),
                        token: &token,
                        max_output_bytes: state.config.max_step_output_bytes,
                    },
                );
                announcing(state, context, &step.id, &mut start, call)
                    .await
                    .map(|answer| {
                        answer.and_then(|completed| {
                            // A map step's items are charged together, as the step's list.
                            if !item {
                                context.charge_output(&step.id, &completed.output)?;
                            }
                            Ok((completed, token))
                        })
                    })
            }
            Err(failure) => Ok(Err(failure)),
        };
        context
            .calling
            .lock()
            .expect("calling poisoned")
            .remove(agent_run_id);
        first_ask = false;
        let failure = match result? {
            Err(failure) if failure.outage => failure,
            answered => {
                if answered
                    .as_ref()
                    .is_err_and(|failure| failure.credential_refused)
                {
                    state.credentials.refused(context.credential_id);
                }
                return Ok((answered, start));
            }
        };
        let wait = outage_backoff.next_wait();
        if tokio::time::Instant::now() + wait >= deadline {
            let gave_up = Failure::new(
                agents::UNAVAILABLE,
                format!(
                    "gave up after {} ms of outage: {}",
                    began.elapsed().as_millis(),
                    failure.message
                ),
                true,
            );
            return Ok((Err(gave_up), start));
        }
        if !waiting && !item {
            waiting = true;
            tracing::warn!(run = %context.id, step = %step.id, attempt, reason = %failure.message,
                "the step waits for a service it needs");
            metrics::counter!("chains_step_waits_total").increment(1);
            if let Some(start) = start.take() {
                start.write(state, context, &step.id).await?;
            }
            // Rewriting the running step is the lease check that fences the event.
            transition(
                state,
                context,
                StepUpdate::running(&step.id),
                RunEvent::step_waiting(context.id, &step.id, &agent.agent, attempt, &failure),
            )
            .await?
            .map_err(|LeaseLost| lease_lost())?;
        }
        tokio::time::sleep(wait).await;
    }
}

/// Writes a step's transition with its event, fenced on the run's lease, in the next batch of
/// transitions (runs/transitions.rs).
async fn transition(
    state: &State,
    context: &RunContext,
    update: StepUpdate<'_>,
    event: RunEvent,
) -> Result<std::result::Result<(), LeaseLost>> {
    let row = event.row(state, &context.tenant);
    write_transition(state, context, update, &[row]).await
}

/// Writes a step's transition with `events`, fenced on the run's lease, after the ends of the
/// needs it was decided early on (the first transition of such a step waits for them).
async fn write_transition(
    state: &State,
    context: &RunContext,
    update: StepUpdate<'_>,
    events: &[OutboxRow],
) -> Result<std::result::Result<(), LeaseLost>> {
    let after = context
        .gates
        .lock()
        .expect("gates poisoned")
        .remove(update.step_id);
    for mut written in after.into_iter().flatten() {
        written
            .wait_for(|written| *written)
            .await
            .map_err(|_| anyhow::anyhow!("a step it needs could not be recorded"))?;
    }
    transitions::write(
        &state.transitions,
        context.id,
        state.engine.owner,
        update,
        events,
    )
    .await
}

/// An attempt's start, not written yet: what its transition will say.
struct UnwrittenStart {
    agent_run_id: String,
    input: Value,
    /// Its `step.started`, made when it began.
    event: OutboxRow,
    began: tokio::time::Instant,
    began_at: DateTime<Utc>,
}

impl UnwrittenStart {
    fn new(
        state: &State,
        context: &RunContext,
        step: &Step,
        agent: &str,
        attempt: u32,
        agent_run_id: &str,
        input: &Value,
    ) -> Self {
        Self {
            agent_run_id: agent_run_id.to_owned(),
            input: input.clone(),
            event: RunEvent::step_started(context.id, &step.id, agent, attempt, agent_run_id)
                .row(state, &context.tenant),
            began: tokio::time::Instant::now(),
            began_at: Utc::now(),
        }
    }

    /// Writes the start on its own: the step is running its attempt.
    async fn write(self, state: &State, context: &RunContext, step_id: &str) -> Result<()> {
        write_transition(
            state,
            context,
            StepUpdate {
                attempt: Some((&self.agent_run_id, &self.input)),
                began_at: Some(self.began_at),
                ..StepUpdate::running(step_id)
            },
            &[self.event],
        )
        .await?
        .map_err(|LeaseLost| lease_lost())
    }
}

/// Awaits `work`; a `start` still unwritten when its `Config::unannounced_start` has passed is
/// written then, while `work` goes on.
async fn announcing<T>(
    state: &State,
    context: &RunContext,
    step_id: &str,
    start: &mut Option<UnwrittenStart>,
    work: impl Future<Output = T>,
) -> Result<T> {
    let Some(due) = start
        .as_ref()
        .map(|start| start.began + state.config.unannounced_start)
    else {
        return Ok(work.await);
    };
    tokio::pin!(work);
    tokio::select! {
        done = &mut work => return Ok(done),
        () = tokio::time::sleep_until(due) => {}
    }
    let unwritten = start.take().expect("checked above");
    let (written, done) = tokio::join!(unwritten.write(state, context, step_id), work);
    written?;
    Ok(done)
}

fn lease_lost() -> ChainError {
    ChainError::Precondition("the run's lease was lost".to_owned())
}

async fn record(
    state: &State,
    context: &RunContext,
    step: &Step,
    status: StepStatus,
    output: Option<&Value>,
    failure: Option<&Failure>,
    skip_reason: &str,
) -> Result<()> {
    record_with(
        state,
        context,
        step,
        status,
        output,
        failure,
        skip_reason,
        None,
        "",
        None,
        None,
    )
    .await
}

/// Commits a step's final state together with its event, and with its attempt's `start` when
/// that is not written yet.
#[allow(clippy::too_many_arguments)] // one call site each; a struct would only rename them
async fn record_with(
    state: &State,
    context: &RunContext,
    step: &Step,
    status: StepStatus,
    output: Option<&Value>,
    failure: Option<&Failure>,
    skip_reason: &str,
    artifacts: Option<Value>,
    warning: &str,
    start: Option<UnwrittenStart>,
    ended_at: Option<DateTime<Utc>>,
) -> Result<()> {
    let error = failure.map(|failure| (failure.code.as_str(), failure.message.as_str()));
    let event = RunEvent::step_finished(
        context.id,
        &step.id,
        step.agent().unwrap_or_default(),
        &StepEnding {
            status,
            error,
            skip_reason,
            warning,
        },
    );
    let ending = event.row(state, &context.tenant);
    let (started, events) = match start {
        Some(start) => (
            Some((start.agent_run_id, start.input, start.began_at)),
            vec![start.event, ending],
        ),
        None => (None, vec![ending]),
    };
    let attempt = started.as_ref().map(|(id, input, _)| (id.as_str(), input));
    let began_at = started.as_ref().map(|(_, _, began_at)| *began_at);
    write_transition(
        state,
        context,
        StepUpdate {
            step_id: &step.id,
            status,
            attempt,
            began_at,
            ended_at,
            output,
            error,
            skip_reason,
            artifacts,
            warning,
            only_waiting: false,
        },
        &events,
    )
    .await?
    .map_err(|LeaseLost| lease_lost())?;
    metrics::counter!("chains_steps_total", "status" => status.as_str()).increment(1);
    Ok(())
}

/// Waits until the run has finished, or waits for an approval, or `limit` has passed, and
/// returns it as it then is, with its steps.
pub async fn wait(state: &State, tenant: Uuid, id: Uuid, limit: Duration) -> Result<Detailed> {
    wait_from(state, tenant, id, limit, None).await
}

/// [`wait`] for a run this replica has just handed to its own engine, with the release signal
/// the hand-over answered: the run is running, so it is first read when it may have moved on.
pub async fn wait_handed(
    state: &State,
    tenant: Uuid,
    id: Uuid,
    limit: Duration,
    released: Release,
) -> Result<Detailed> {
    wait_from(state, tenant, id, limit, Some(released)).await
}

async fn wait_from(
    state: &State,
    tenant: Uuid,
    id: Uuid,
    limit: Duration,
    mut handed: Option<Release>,
) -> Result<Detailed> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let mut released = match handed.take() {
            Some(released) => released,
            None => {
                let released = state.engine.release_of(id);
                let detailed = runs::detailed(state, tenant, id).await?;
                let status = detailed.0.status();
                if status.is_terminal()
                    || status == RunStatus::Waiting
                    || tokio::time::Instant::now() >= deadline
                {
                    return Ok(detailed);
                }
                released
            }
        };
        let settled = released.settled(state.config.claim_interval);
        let _ = tokio::time::timeout_at(deadline, settled).await;
    }
}

/// Describes the engine's metrics and registers them at zero for every final status.
pub fn describe_metrics() {
    metrics::describe_counter!(
        "chains_runs_total",
        "Chain runs finished, by status (completed, failed, cancelled)."
    );
    metrics::describe_counter!(
        "chains_steps_total",
        "Steps finished, by status (completed, failed, skipped, cancelled)."
    );
    metrics::describe_counter!(
        "chains_step_waits_total",
        "Step attempts that met an outage (agent-runner or auth unavailable) and waited."
    );
    metrics::counter!("chains_step_waits_total").increment(0);
    for status in [
        RunStatus::Completed,
        RunStatus::Failed,
        RunStatus::Cancelled,
    ] {
        metrics::counter!("chains_runs_total", "status" => status.as_str()).increment(0);
    }
    for status in [
        StepStatus::Completed,
        StepStatus::Failed,
        StepStatus::Skipped,
        StepStatus::Cancelled,
    ] {
        metrics::counter!("chains_steps_total", "status" => status.as_str()).increment(0);
    }
}
