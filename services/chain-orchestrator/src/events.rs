//! The events of a run, `chains.<tenant>.<run>.<run|step>.<action>` of CloudEvents type
//! `sankalpa.chains.<run|step>.<action>`. Each is enqueued in the transaction of the transition
//! it announces, through the kit's outbox, so a transition is never committed without its
//! event; the relay publishes them after the commit, and WatchRun ends a stream at a run's
//! terminal event.
//!
//! Every event is built here, by one constructor per kind, so its action and payload are written
//! once; [`RunEvent::enqueue`] and [`RunEvent::commit`] send it the one way there is.

use sankalpa_kit::outbox::{EventAction, OutboxRow};
use serde_json::{Value, json};
use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;

use crate::State;
use crate::runs::store::{RunStatus, StepStatus};

/// What happened to a run or one of its steps: the last two tokens of the subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    RunStarted,
    RunCompleted,
    RunFailed,
    RunCancelled,
    StepStarted,
    StepWaiting,
    StepWaitingApproval,
    StepCompleted,
    StepSkipped,
    StepFailed,
}

impl Action {
    /// The actions after which a run has nothing more to announce.
    pub const TERMINAL: [Self; 3] = [Self::RunCompleted, Self::RunFailed, Self::RunCancelled];
}

impl EventAction for Action {
    fn name(self) -> &'static str {
        match self {
            Self::RunStarted => "run.started",
            Self::RunCompleted => "run.completed",
            Self::RunFailed => "run.failed",
            Self::RunCancelled => "run.cancelled",
            Self::StepStarted => "step.started",
            Self::StepWaiting => "step.waiting",
            Self::StepWaitingApproval => "step.waiting_approval",
            Self::StepCompleted => "step.completed",
            Self::StepSkipped => "step.skipped",
            Self::StepFailed => "step.failed",
        }
    }
}

/// An event about one run, ready to go into the transaction of its transition.
pub struct RunEvent {
    run: Uuid,
    action: Action,
    data: Value,
}

/// An error's `code` and `message`, as a failed run or step carries it.
fn error(code: &str, message: &str) -> Value {
    json!({ "code": code, "message": message })
}

impl RunEvent {
    /// The run starts executing: accepted with room to run at once, or claimed from pending.
    pub fn run_started(run: Uuid, chain: &str) -> Self {
        Self {
            run,
            action: Action::RunStarted,
            data: json!({ "run_id": run, "chain": chain }),
        }
    }

    /// The engine finished the run with `status` (completed, failed or cancelled); `error` is
    /// the failure's code and message.
    pub fn run_finished(
        run: Uuid,
        chain: &str,
        status: RunStatus,
        error: Option<(&str, &str)>,
    ) -> Self {
        let action = match status {
            RunStatus::Cancelled => Action::RunCancelled,
            RunStatus::Failed => Action::RunFailed,
            _ => Action::RunCompleted,
        };
        let mut data = json!({ "run_id": run, "chain": chain, "status": status.as_str() });
        if let Some((code, message)) = error {
            data["error"] = self::error(code, message);
        }
        Self { run, action, data }
    }

    /// CancelRun ended a run no replica was executing; the engine announces the others'.
    pub fn run_cancelled(run: Uuid) -> Self {
        Self {
            run,
            action: Action::RunCancelled,
            data: json!({ "run_id": run, "status": RunStatus::Cancelled.as_str() }),
        }
    }

    /// An attempt at a step begins.
    pub fn step_started(
        run: Uuid,
        step: &str,
        agent: &str,
        attempt: u32,
        agent_run_id: &str,
    ) -> Self {
        Self {
            run,
            action: Action::StepStarted,
            data: json!({
                "run_id": run, "step_id": step, "agent": agent,
                "attempt": attempt, "agent_run_id": agent_run_id,
            }),
        }
    }

    /// The event with one more field in its data: a map step's `items`, a chain step's
    /// `child_run_id`.
    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.data[key] = value;
        self
    }

    /// An attempt waits for a service it needs (agent-runner, auth) and will ask again; `reason`
    /// is the outage it met first.
    pub fn step_waiting(
        run: Uuid,
        step: &str,
        agent: &str,
        attempt: u32,
        reason: &crate::agents::Failure,
    ) -> Self {
        Self {
            run,
            action: Action::StepWaiting,
            data: json!({
                "run_id": run, "step_id": step, "agent": agent, "attempt": attempt,
                "reason": error(&reason.code, &reason.message),
            }),
        }
    }

    /// An approval step waits for a decision (ApproveStep, RejectStep) until `expires_at`.
    pub fn step_waiting_approval(
        run: Uuid,
        step: &str,
        approval: &crate::definition::Approval,
        expires_at: chrono::DateTime<chrono::Utc>,
    ) -> Self {
        Self {
            run,
            action: Action::StepWaitingApproval,
            data: json!({
                "run_id": run, "step_id": step, "prompt": approval.prompt,
                "approvers": approval.approvers, "expires_at": expires_at,
                "on_timeout": approval.on_timeout,
            }),
        }
    }

    /// A step ended with `status`: completed, skipped (with its reason) or anything else, a
    /// failure (with its error). A completed step may carry a warning. `agent` is empty, and
    /// left out, for a step that runs none (an approval).
    pub fn step_finished(run: Uuid, step: &str, agent: &str, ending: &StepEnding<'_>) -> Self {
        let action = match ending.status {
            StepStatus::Completed => Action::StepCompleted,
            StepStatus::Skipped => Action::StepSkipped,
            _ => Action::StepFailed,
        };
        let mut data = json!({ "run_id": run, "step_id": step });
        if !agent.is_empty() {
            data["agent"] = json!(agent);
        }
        if let Some((code, message)) = ending.error {
            data["error"] = error(code, message);
        }
        if !ending.skip_reason.is_empty() {
            data["skip_reason"] = json!(ending.skip_reason);
        }
        if !ending.warning.is_empty() {
            data["warning"] = json!(ending.warning);
        }
        Self { run, action, data }
    }

    /// The outbox row of the event, for a statement that writes it with its transition
    /// (`store::update_step`); call [`State::wake`] once that has committed.
    pub fn row(self, state: &State, tenant: &str) -> OutboxRow {
        state.event_row(tenant, self.run, self.action.name(), self.data)
    }

    /// Enqueues the event in `tx`, the transaction making its transition; call
    /// [`State::wake`] once it has committed.
    pub async fn enqueue(
        self,
        state: &State,
        tx: &mut PgConnection,
        tenant: &str,
    ) -> sqlx::Result<()> {
        state
            .enqueue(tx, tenant, self.run, self.action.name(), self.data)
            .await
    }

    /// Enqueues the event in `tx`, commits it with its transition and wakes the relay.
    pub async fn commit(
        self,
        state: &State,
        tx: Transaction<'_, Postgres>,
        tenant: &str,
    ) -> sqlx::Result<()> {
        state
            .commit_with_event(tx, tenant, self.run, self.action.name(), self.data)
            .await
    }
}

/// How a step ended, as its event tells it.
pub struct StepEnding<'a> {
    pub status: StepStatus,
    pub error: Option<(&'a str, &'a str)>,
    pub skip_reason: &'a str,
    pub warning: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_run_is_announced_by_its_status_with_its_error() {
        let run = Uuid::nil();
        let failed =
            RunEvent::run_finished(run, "c", RunStatus::Failed, Some(("boom", "it broke")));
        assert_eq!(failed.action.name(), "run.failed");
        assert_eq!(
            failed.data,
            json!({
                "run_id": run, "chain": "c", "status": "failed",
                "error": { "code": "boom", "message": "it broke" },
            })
        );
        let completed = RunEvent::run_finished(run, "c", RunStatus::Completed, None);
        assert_eq!(completed.action.name(), "run.completed");
        assert!(completed.data.get("error").is_none());
    }

    #[test]
    fn a_finished_step_carries_only_what_it_has() {
        let run = Uuid::nil();
        let skipped = RunEvent::step_finished(
            run,
            "s",
            "echo",
            &StepEnding {
                status: StepStatus::Skipped,
                error: None,
                skip_reason: "condition false",
                warning: "",
            },
        );
        assert_eq!(skipped.action.name(), "step.skipped");
        assert_eq!(
            skipped.data,
            json!({
                "run_id": run, "step_id": "s", "agent": "echo",
                "skip_reason": "condition false",
            })
        );
        let failed = RunEvent::step_finished(
            run,
            "s",
            "echo",
            &StepEnding {
                status: StepStatus::Cancelled,
                error: Some(("cancelled", "stopped")),
                skip_reason: "",
                warning: "",
            },
        );
        assert_eq!(failed.action.name(), "step.failed");
    }
}
