//! The events the triggers service announces, `webhooks.<tenant>.<endpoint>.<action>`: a
//! delivery that succeeded, one that failed for good, and an endpoint disabled for failing too
//! long; and `schedules.<tenant>.<schedule>.fired`, a schedule's tick that started a run. Each is enqueued, through the kit's outbox, in the transaction that records it.
//! The service does not deliver its own channel to endpoints: a `delivered` event delivered
//! would announce another, for ever.

use sankalpa_kit::outbox::{ChannelEvents, EventAction};

pub const CHANNEL: &str = "webhooks";

#[derive(Clone, Copy)]
pub enum Action {
    Delivered,
    Failed,
    Disabled,
}

impl EventAction for Action {
    fn name(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Disabled => "disabled",
        }
    }
}

/// The service's events, by endpoint id.
pub type Events = ChannelEvents<Action>;

pub const SCHEDULES_CHANNEL: &str = "schedules";

#[derive(Clone, Copy)]
pub enum ScheduleAction {
    /// A tick started its run.
    Fired,
}

impl EventAction for ScheduleAction {
    fn name(self) -> &'static str {
        match self {
            Self::Fired => "fired",
        }
    }
}

/// The schedules' events, by schedule id.
pub type ScheduleEvents = ChannelEvents<ScheduleAction>;
