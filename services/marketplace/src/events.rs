//! The events the marketplace announces, `market.<tenant>.<item>.<published|installed|reviewed>`.
//! Each is enqueued in the transaction that makes its change, through the kit's outbox, so a
//! change is never committed without its event; the relay publishes them after the commit. The
//! tenant is the one that acted: the publisher for `published`, the installing tenant for
//! `installed`, the reviewer's for `reviewed`, so each tenant's stream shows what happened in it.

use sankalpa_kit::outbox::{ChannelEvents, EventAction};

#[derive(Clone, Copy)]
pub enum Action {
    Published,
    Installed,
    Reviewed,
}

impl EventAction for Action {
    fn name(self) -> &'static str {
        match self {
            Self::Published => "published",
            Self::Installed => "installed",
            Self::Reviewed => "reviewed",
        }
    }
}

/// The marketplace's events, by item id.
pub type Events = ChannelEvents<Action>;
