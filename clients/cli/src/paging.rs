//! Paging of the list commands: `--page-size` and `--page-token` are passed to the API as they
//! are; `--all` follows `next_page_token` from the first page to the last, at most
//! [`MAX_PAGES`] pages, and prints them as one list.
//!
//! A single page prints as the API answered it (with `-o json|yaml`, its `next_page_token`
//! too); for people and `-q`, a line on stderr says how to get the next one. A list `--all`
//! could not finish within its bound keeps the `next_page_token` to go on from, and says so.

use sankalpa_api::agents::AgentList;
use sankalpa_api::chains::{ChainList, RunList};
use sankalpa_api::client::Error;
use sankalpa_api::inbound::InboundTriggerList;
use sankalpa_api::keys::ApiKeyList;
use sankalpa_api::marketplace::{InstallList, ItemList};
use sankalpa_api::memory::{BackupList, EntryList, SessionList};
use sankalpa_api::paging::Page;
use sankalpa_api::schedules::ScheduleList;
use sankalpa_api::users::UserList;
use sankalpa_api::webhooks::{DeliveryList, EndpointList};

use crate::exit::Failure;
use crate::output::Output;

/// The most pages `--all` reads: with its page of [`ALL_PAGE_SIZE`], 20,000 items.
pub const MAX_PAGES: usize = 100;
/// The page size `--all` asks for without `--page-size`: the API's largest.
pub const ALL_PAGE_SIZE: u32 = 200;

#[derive(Debug, clap::Args)]
pub struct PageArgs {
    /// Items a page: at most 200; the API's default (50) when absent.
    #[arg(long)]
    page_size: Option<u32>,
    /// Start at this page: the `next_page_token` of the page before.
    #[arg(long, conflicts_with = "all")]
    page_token: Option<String>,
    /// Every page, as one list: follows next_page_token for at most 100 pages (of 200 items
    /// unless --page-size says otherwise); past that, the list keeps the token to go on from.
    #[arg(long)]
    all: bool,
}

/// A list answer: one page of items, and where the next page starts (absent on the last).
pub trait Listing {
    type Item;
    fn page_mut(&mut self) -> (&mut Vec<Self::Item>, &mut Option<String>);
}

macro_rules! listing {
    ($($list:ty => $items:ident, $item:ty;)*) => {$(
        impl Listing for $list {
            type Item = $item;
            fn page_mut(&mut self) -> (&mut Vec<$item>, &mut Option<String>) {
                (&mut self.$items, &mut self.next_page_token)
            }
        }
    )*};
}

listing! {
    AgentList => agents, sankalpa_api::agents::Agent;
    ChainList => chains, sankalpa_api::chains::Chain;
    RunList => runs, sankalpa_api::chains::ChainRun;
    SessionList => sessions, sankalpa_api::memory::MemorySession;
    EntryList => entries, sankalpa_api::memory::Entry;
    BackupList => backups, sankalpa_api::memory::MemoryBackup;
    ItemList => items, sankalpa_api::marketplace::Item;
    InstallList => installs, sankalpa_api::marketplace::Installation;
    ApiKeyList => keys, sankalpa_api::keys::ApiKey;
    UserList => users, sankalpa_api::users::User;
    EndpointList => endpoints, sankalpa_api::webhooks::WebhookEndpoint;
    DeliveryList => deliveries, sankalpa_api::webhooks::Delivery;
    ScheduleList => schedules, sankalpa_api::schedules::Schedule;
    InboundTriggerList => triggers, sankalpa_api::inbound::InboundTrigger;
}

/// A list's query: its filters, and the page it asks for.
pub trait PagedQuery {
    fn set_page(&mut self, page: Page);
}

macro_rules! paged_query {
    ($($query:ty),*) => {$(
        impl PagedQuery for $query {
            fn set_page(&mut self, page: Page) {
                self.page_size = page.page_size;
                self.page_token = page.page_token;
            }
        }
    )*};
}

paged_query!(
    Page,
    sankalpa_api::agents::ListQuery,
    sankalpa_api::chains::ListQuery,
    sankalpa_api::chains::RunsQuery,
    sankalpa_api::memory::AllQuery,
    sankalpa_api::memory::BackupsQuery,
    sankalpa_api::marketplace::SearchQuery,
    sankalpa_api::marketplace::InstallsQuery,
    sankalpa_api::webhooks::DeliveriesQuery
);

impl PageArgs {
    /// The page of `query` the flags ask for, or with `--all` every page joined, each read
    /// with `list`.
    pub async fn fetch<Q: PagedQuery, L: Listing>(
        &self,
        mut query: Q,
        mut list: impl AsyncFnMut(&Q) -> Result<L, Error>,
    ) -> Result<L, Failure> {
        if !self.all {
            query.set_page(Page {
                page_size: self.page_size,
                page_token: self.page_token.clone(),
            });
            return Ok(list(&query).await?);
        }
        let page_size = Some(self.page_size.unwrap_or(ALL_PAGE_SIZE));
        query.set_page(Page {
            page_size,
            page_token: None,
        });
        let mut whole = list(&query).await?;
        for _ in 1..MAX_PAGES {
            let (items, next) = whole.page_mut();
            let Some(page_token) = next.take() else {
                break;
            };
            query.set_page(Page {
                page_size,
                page_token: Some(page_token),
            });
            let mut page = list(&query).await?;
            let (more, after) = page.page_mut();
            items.append(more);
            *next = after.take();
        }
        Ok(whole)
    }

    /// After the list is printed: on stderr, where the rest is when there is a rest that the
    /// output does not already say (a document carries its `next_page_token`).
    pub fn tell_rest<L: Listing>(&self, out: &Output, list: &mut L) {
        let (items, next) = list.page_mut();
        let Some(token) = next.as_deref() else {
            return;
        };
        if self.all {
            eprintln!(
                "sankalpa: stopped after {MAX_PAGES} pages ({} items); go on with --page-token {token}",
                items.len()
            );
        } else if !out.is_document() {
            eprintln!("(more: --page-token {token}, or --all)");
        }
    }
}
