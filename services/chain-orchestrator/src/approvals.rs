//! Decisions on approval steps: ApproveStep and RejectStep.
//!
//! An approval step the engine reaches waits (`waiting`) for one decision. A decision is made in
//! one transaction that locks the run's row first, as parking and finishing a run do, so it
//! lands either before the engine parks the run (and the engine sees it) or after (and finds
//! the run WAITING): the waiting step ends (approved: completed with the decision as output;
//! rejected: failed with `rejected`), its event is enqueued, and a WAITING run becomes RUNNING
//! again, claimed at once by this replica when it has room, otherwise left without a lease for
//! any replica's claim loop. A run still running elsewhere sees the decision at its driver's next
//! heartbeat (here, at once). Of two concurrent decisions on one step, the second finds it no
//! longer waiting: FAILED_PRECONDITION.

use sankalpa_kit::auth::Principal;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::State;
use crate::definition::{Approval, Definition};
use crate::engine::REJECTED;
use crate::error::{ChainError, Result};
use crate::events::{RunEvent, StepEnding};
use crate::runs::store::{self, Decided, RunStatus, StepStatus};
use crate::runs::{self, Detailed};

/// A caller's decision on an approval step, checked (input.rs).
pub struct Decision {
    pub approve: bool,
    /// JSON for the steps after it; None when none was sent.
    pub input: Option<Value>,
    pub comment: String,
}

/// Whether `caller` is among the approval's approvers.
fn may_decide(approval: &Approval, caller: &Principal) -> bool {
    approval
        .approvers
        .iter()
        .any(|approver| match approver.split_once(':') {
            Some(("role", role)) => caller.roles.iter().any(|held| held == role),
            Some(("user", user)) => caller.subject == user,
            _ => false,
        })
}

/// Decides the approval step `step_id` of a run of `tenant`, and answers with the run as it is
/// then.
pub async fn decide(
    state: &State,
    caller: &Principal,
    tenant: Uuid,
    run_id: Uuid,
    step_id: &str,
    decision: Decision,
) -> Result<Detailed> {
    let mut tx = state.pool.begin().await?;
    let (status, definition) = store::lock_for_decision(&mut tx, tenant, run_id)
        .await?
        .ok_or(ChainError::NotFound("run"))?;
    let definition: Definition = serde_json::from_value(definition).map_err(|err| {
        anyhow::anyhow!("the stored definition of run {run_id} does not parse: {err}")
    })?;
    let step = definition
        .step(step_id)
        .ok_or(ChainError::NotFound("step"))?;
    let Some(approval) = step.approval() else {
        return Err(ChainError::Precondition(format!(
            "step `{step_id}` is not an approval step"
        )));
    };
    if !may_decide(approval, caller) {
        return Err(ChainError::NotApprover(format!(
            "only {} may decide step `{step_id}`",
            approval.approvers.join(", ")
        )));
    }
    let record = json!({
        "approved": decision.approve,
        "by": caller.subject,
        "input": decision.input.unwrap_or(Value::Null),
        "comment": decision.comment,
    });
    let rejection = format!(
        "rejected by {}{}",
        caller.subject,
        if decision.comment.is_empty() {
            String::new()
        } else {
            format!(": {}", decision.comment)
        }
    );
    let (step_status, output, error) = if decision.approve {
        (StepStatus::Completed, Some(&record), None)
    } else {
        (
            StepStatus::Failed,
            None,
            Some((REJECTED, rejection.as_str())),
        )
    };
    let decided = store::decide_step(
        &mut tx,
        run_id,
        step_id,
        &Decided {
            status: step_status,
            decision: &record,
            output,
            error,
        },
    )
    .await?;
    if !decided {
        let now = store::step_status(&mut tx, run_id, step_id)
            .await?
            .map_or("not started", StepStatus::as_str);
        return Err(ChainError::Precondition(format!(
            "step `{step_id}` is not waiting for a decision: it is {now}"
        )));
    }
    RunEvent::step_finished(
        run_id,
        step_id,
        "",
        &StepEnding {
            status: step_status,
            error,
            skip_reason: "",
            warning: "",
        },
    )
    .enqueue(state, &mut tx, &tenant.to_string())
    .await?;
    let parked = RunStatus::parse(&status) == RunStatus::Waiting;
    let claim_here = parked && state.engine.has_room();
    if parked {
        store::resume(
            &mut tx,
            run_id,
            claim_here.then_some((state.engine.owner, state.config.lease_ttl)),
        )
        .await?;
    }
    tx.commit().await?;
    state.wake();
    metrics::counter!("chains_steps_total", "status" => step_status.as_str()).increment(1);
    tracing::info!(run = %run_id, step = %step_id, approved = decision.approve,
        by = %caller.subject, "an approval step was decided");
    if claim_here {
        state.engine.drive(run_id);
    } else {
        state.engine.nudge(run_id);
    }
    runs::detailed(state, tenant, run_id).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::OnTimeout;

    fn caller(subject: &str, roles: &[&str]) -> Principal {
        Principal {
            subject: subject.to_owned(),
            tenant_id: Uuid::nil().to_string(),
            roles: roles.iter().map(|role| (*role).to_owned()).collect(),
            permissions: vec!["chains:execute".to_owned()],
            kind: "user".to_owned(),
        }
    }

    #[test]
    fn approvers_are_matched_by_role_or_by_user() {
        let approval = Approval {
            prompt: "Deploy?".to_owned(),
            approvers: vec!["role:admin".to_owned(), "user:u-7".to_owned()],
            timeout_ms: 1000,
            on_timeout: OnTimeout::Fail,
        };
        assert!(may_decide(&approval, &caller("u-1", &["viewer", "admin"])));
        assert!(may_decide(&approval, &caller("u-7", &[])));
        assert!(!may_decide(&approval, &caller("u-1", &["viewer"])));
        // A role named like a user, or the other way round, is not the same approver.
        assert!(!may_decide(&approval, &caller("admin", &["u-7"])));
    }
}
