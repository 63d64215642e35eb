//! The events the marketplace announces, `market.<tenant>.<item>.<published|installed|reviewed>`.
//! Each is enqueued in the transaction that makes its change, through the kit's outbox, so a
//! change is never committed without its event; the relay publishes them after the commit. The
//! tenant is the one that acted: the publisher for `published`, the installing tenant for
//! `installed`, the reviewer's for `reviewed`, so each tenant's stream shows what happened in it.

use sankalpa_kit::outbox::Outbox;
use serde_json::Value;
use sqlx::PgConnection;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[derive(Clone, Copy)]
pub enum Action {
    Published,
    Installed,
    Reviewed,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Self::Published => "published",
            Self::Installed => "installed",
            Self::Reviewed => "reviewed",
        }
    }
}

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
        item: Uuid,
        action: Action,
        data: Value,
    ) -> sqlx::Result<()> {
        self.outbox
            .enqueue(
                tx,
                "market",
                &tenant.to_string(),
                &item.to_string(),
                action.name(),
                data,
            )
            .await?;
        Ok(())
    }

    /// Has the relay publish what was just committed, rather than at its next poll.
    pub fn wake(&self) {
        self.outbox.wake();
    }

    /// The relay publishing the marketplace's outbox until `stop`; `serve` runs it.
    pub fn relay(&self, stop: CancellationToken) -> impl Future<Output = ()> + use<> {
        self.outbox.clone().relay(stop)
    }
}
