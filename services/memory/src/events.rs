//! The events memory announces, `memory.<tenant>.<session>.<saved|deleted|restored>`. Each is
//! enqueued in the transaction that makes its change, through the kit's outbox, so a change is
//! never committed without its event; the relay publishes them after the commit.

use sankalpa_kit::outbox::{Outbox, OutboxRow};
use serde_json::Value;
use sqlx::PgConnection;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[derive(Clone, Copy)]
pub enum Action {
    Saved,
    Deleted,
    Restored,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Self::Saved => "saved",
            Self::Deleted => "deleted",
            Self::Restored => "restored",
        }
    }
}

#[derive(Clone)]
pub struct Events {
    outbox: Outbox,
}

impl Events {
    pub fn new(outbox: Outbox) -> Self {
        Self { outbox }
    }

    /// Enqueues the event in `tx`, the transaction making the change; call [`wake`](Self::wake)
    /// after it commits.
    pub async fn enqueue(
        &self,
        tx: &mut PgConnection,
        tenant: Uuid,
        session: &str,
        action: Action,
        data: Value,
    ) -> sqlx::Result<()> {
        self.outbox
            .enqueue(
                tx,
                "memory",
                &tenant.to_string(),
                session,
                action.name(),
                data,
            )
            .await?;
        Ok(())
    }

    /// The outbox row of an event, for a statement that inserts it together with its change
    /// into `memory.outbox (event, headers)`; call [`wake`](Self::wake) after it commits.
    pub fn row(&self, tenant: Uuid, session: &str, action: Action, data: Value) -> OutboxRow {
        self.outbox
            .row("memory", &tenant.to_string(), session, action.name(), data)
    }

    /// Has the relay publish what was just committed, rather than at its next poll.
    pub fn wake(&self) {
        self.outbox.wake();
    }

    /// The relay publishing memory's outbox until `stop`; `serve` runs it.
    pub fn relay(&self, stop: CancellationToken) -> impl Future<Output = ()> + use<> {
        self.outbox.clone().relay(stop)
    }
}
