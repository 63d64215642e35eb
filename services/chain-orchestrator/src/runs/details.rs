//! Runs with their steps read many at a time (the kit's [`group_commit`], for reads): the callers
//! answered together — those that waited for runs ending together, GetRun under load — are read
//! by two statements for all of them rather than two each. In a burst of waited runs those reads
//! were four statements in ten of the whole fleet's.

use sankalpa_kit::group_commit::{self, Batch, GroupCommit};
use sqlx::PgPool;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use super::Detailed;
use super::store;
use crate::error::{ChainError, Result};

/// Runs per read at most, and reads in flight at once.
pub const LIMITS: group_commit::Limits = group_commit::Limits {
    max_batch: 64,
    writers: 2,
};

/// A run to read: its tenant and id.
pub type Wanted = (Uuid, Uuid);

/// The runs waiting to be read. Cloning shares it.
pub type Details = GroupCommit<Reads>;

/// What a batch of runs is read with.
pub struct Reads {
    pool: PgPool,
}

/// The queue of reads from `pool`, read by tasks on `tracker`.
pub fn details(pool: PgPool, tracker: TaskTracker) -> Details {
    GroupCommit::new(Reads { pool }, LIMITS, tracker)
}

impl Batch for Reads {
    type Write = Wanted;
    /// None: the tenant has no such run.
    type Written = Option<Detailed>;
    type Error = ChainError;
    type Key = Wanted;

    fn key(wanted: &Wanted) -> Wanted {
        *wanted
    }

    async fn write(&self, batch: &[&Wanted]) -> Result<Vec<Option<Detailed>>> {
        store::detailed_many(&self.pool, batch).await
    }

    fn writer_lost() -> ChainError {
        ChainError::Internal(anyhow::anyhow!("the reader of a batch of runs failed"))
    }
}
