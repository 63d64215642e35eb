//! Accepted runs inserted many at a time (the kit's [`group_commit`]): the submissions waiting
//! together take their tenants' submission locks once, count each tenant's unfinished runs
//! once, insert every run the quota admits with its steps by one statement, announce those
//! starting here by one outbox statement, and commit once.
//!
//! Taken one by one, each submission held its tenant's lock through its own commit and WAL
//! flush, so a burst of one tenant's submissions was accepted one commit after another; a
//! batch holds the lock once for all of them. The quota stays exact: a batch admits a run only
//! while the tenant's count under the lock plus the runs it has admitted so far is below it.

use sankalpa_kit::group_commit::{self, Batch, GroupCommit};
use sankalpa_kit::outbox::OutboxRow;
use uuid::Uuid;

use super::Writes;
use super::store::{self, NewRun, Run};
use crate::error::{ChainError, Result};

/// Submissions per batch at most, and batches in flight at once (they queue on a shared
/// tenant's lock, but batches of different tenants go side by side).
pub const LIMITS: group_commit::Limits = group_commit::Limits {
    max_batch: 64,
    writers: 4,
};

/// A run to accept, if its tenant's quota has room for it.
pub struct Submission {
    pub run: NewRun,
    /// The tenant's most unfinished runs.
    pub quota: u64,
    /// Its run.started event, when it starts on this replica at once.
    pub announce: Option<OutboxRow>,
}

/// What became of a submission.
pub enum Admission {
    Inserted(Box<Run>),
    /// Its idempotency key was taken by another run: nothing was inserted.
    KeyTaken,
    /// Its tenant has as many unfinished runs as its quota: nothing was inserted.
    OverQuota,
}

/// The queue of submissions. Cloning shares it.
pub type Submissions = GroupCommit<Writes<Submission>>;

impl Batch for Writes<Submission> {
    type Write = Submission;
    type Written = Admission;
    type Error = ChainError;
    /// Two submissions of one idempotency key never share a batch, so the later one finds the
    /// earlier's run rather than conflicting with it inside the statement.
    type Key = (Uuid, String);

    fn key(submission: &Submission) -> Self::Key {
        let run = &submission.run;
        let key = match &run.idempotency_key {
            Some(key) => format!("key:{key}"),
            None => format!("run:{}", run.id),
        };
        (run.tenant_id, key)
    }

    async fn write(&self, batch: &[&Submission]) -> Result<Vec<Admission>> {
        let mut tx = self.pool.begin().await?;
        let tenants: Vec<Uuid> = batch.iter().map(|s| s.run.tenant_id).collect();
        let mut unfinished = store::unfinished_locked(&mut tx, &tenants).await?;
        let mut admissions: Vec<Option<Admission>> = batch.iter().map(|_| None).collect();
        let mut announced = Vec::new();
        // Each round inserts, by one statement, every undecided run its tenant's quota has room
        // for. A run whose key was taken frees the room it was given, so a later run the
        // round held over the quota is given it in the next; in the end each run is admitted
        // exactly when one by one, in order, it would have been.
        loop {
            let mut admitted = Vec::new();
            for (i, submission) in batch.iter().enumerate() {
                if admissions[i].is_some() {
                    continue;
                }
                let count = unfinished.entry(submission.run.tenant_id).or_default();
                if u64::try_from(*count).unwrap_or(0) < submission.quota {
                    *count += 1;
                    admitted.push(i);
                }
            }
            if admitted.is_empty() {
                break;
            }
            let runs: Vec<&NewRun> = admitted.iter().map(|&i| &batch[i].run).collect();
            let inserted = store::insert_many(&mut tx, &runs).await?;
            for (i, run) in admitted.into_iter().zip(inserted) {
                admissions[i] = Some(match run {
                    Some(run) => {
                        announced.extend(batch[i].announce.as_ref());
                        Admission::Inserted(Box::new(run))
                    }
                    None => {
                        *unfinished.entry(batch[i].run.tenant_id).or_default() -= 1;
                        Admission::KeyTaken
                    }
                });
            }
        }
        self.commit_with(tx, &announced).await?;
        Ok(admissions
            .into_iter()
            .map(|admission| admission.unwrap_or(Admission::OverQuota))
            .collect())
    }

    fn writer_lost() -> ChainError {
        ChainError::Internal(anyhow::anyhow!("the writer of a submission batch failed"))
    }
}
