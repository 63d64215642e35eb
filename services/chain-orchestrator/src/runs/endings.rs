//! Runs' ends group-committed (the kit's [`group_commit`]), like step transitions: the runs
//! finishing together are ended by one statement, their events queued by another, in one
//! transaction. A run that may have child runs ends in a transaction of its own instead, which
//! stops its children with it (engine).

use sankalpa_kit::group_commit::{self, Batch, GroupCommit};
use sankalpa_kit::outbox::OutboxRow;
use uuid::Uuid;

use super::Writes;
use super::store::{self, Ending, LeaseLost};
use crate::error::{ChainError, Result};

/// Ends per batch at most, and batches in flight at once.
pub const LIMITS: group_commit::Limits = group_commit::Limits {
    max_batch: 64,
    writers: 2,
};

/// A run's end with the event announcing it.
pub struct RunEnd {
    pub ending: Ending,
    pub event: OutboxRow,
}

/// The queue of run ends. Cloning shares it.
pub type Endings = GroupCommit<Writes<RunEnd>>;

/// Ends the run as `end` says, with its event, while its owner holds it.
pub async fn end(endings: &Endings, end: RunEnd) -> Result<std::result::Result<(), LeaseLost>> {
    Ok(LeaseLost::unless(endings.write(end).await?))
}

impl Batch for Writes<RunEnd> {
    type Write = RunEnd;
    /// Whether the run was ended (false: the lease was gone).
    type Written = bool;
    type Error = ChainError;
    type Key = Uuid;

    fn key(end: &RunEnd) -> Uuid {
        end.ending.run
    }

    async fn write(&self, batch: &[&RunEnd]) -> Result<Vec<bool>> {
        let mut tx = self.pool.begin().await?;
        let endings: Vec<&Ending> = batch.iter().map(|end| &end.ending).collect();
        let ended = store::finish(&mut tx, &endings).await?;
        let events: Vec<&OutboxRow> = batch
            .iter()
            .zip(&ended)
            .filter(|(_, ended)| **ended)
            .map(|(end, _)| &end.event)
            .collect();
        self.commit_with(tx, &events).await?;
        Ok(ended)
    }

    fn writer_lost() -> ChainError {
        ChainError::Internal(anyhow::anyhow!("the writer of a run-end batch failed"))
    }
}
