//! The events memory publishes, `memory.<tenant>.<session>.<saved|deleted|restored>`, always
//! after the change they describe is committed.
//!
//! A publish that fails is logged and counted, not returned: the change is committed by then,
//! and an error would make the caller retry a write that already happened.

use sankalpa_kit::events::EventBus;
use serde_json::Value;
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

pub struct Events {
    bus: EventBus,
}

impl Events {
    pub fn new(bus: EventBus) -> Self {
        Self { bus }
    }

    pub async fn publish(&self, tenant: Uuid, session: &str, action: Action, data: Value) {
        let tenant = tenant.to_string();
        if let Err(err) = self
            .bus
            .publish("memory", &tenant, session, action.name(), data)
            .await
        {
            metrics::counter!("memory_events_failed_total", "action" => action.name()).increment(1);
            tracing::warn!(error = format!("{err:#}"), %tenant, session, action = action.name(),
                "could not publish a memory event");
        }
    }
}
