//! The events memory announces, `memory.<tenant>.<session>.<saved|deleted|restored>`. Each is
//! enqueued in the transaction that makes its change, through the kit's outbox, so a change is
//! never committed without its event; the relay publishes them after the commit.

use sankalpa_kit::outbox::{ChannelEvents, EventAction};

#[derive(Clone, Copy)]
pub enum Action {
    Saved,
    Deleted,
    Restored,
}

impl EventAction for Action {
    fn name(self) -> &'static str {
        match self {
            Self::Saved => "saved",
            Self::Deleted => "deleted",
            Self::Restored => "restored",
        }
    }
}

/// Memory's events, by session.
pub type Events = ChannelEvents<Action>;
