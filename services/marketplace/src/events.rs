//! The events the marketplace publishes, `market.<tenant>.<item>.<published|installed|reviewed>`,
//! always after the change they describe is committed. The tenant is the one that acted: the
//! publisher for `published`, the installing tenant for `installed`, the reviewer's for
//! `reviewed`, so each tenant's stream shows what happened in it.
//!
//! A publish that fails is logged and counted, not returned: the change is committed by then,
//! and an error would make the caller retry a write that already happened.

use sankalpa_kit::events::EventBus;
use serde_json::Value;
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
    bus: EventBus,
}

impl Events {
    pub fn new(bus: EventBus) -> Self {
        Self { bus }
    }

    pub async fn publish(&self, tenant: Uuid, item: Uuid, action: Action, data: Value) {
        let (tenant, item) = (tenant.to_string(), item.to_string());
        if let Err(err) = self
            .bus
            .publish("market", &tenant, &item, action.name(), data)
            .await
        {
            metrics::counter!("marketplace_events_failed_total", "action" => action.name())
                .increment(1);
            tracing::warn!(error = format!("{err:#}"), %tenant, %item, action = action.name(),
                "could not publish a marketplace event");
        }
    }
}
