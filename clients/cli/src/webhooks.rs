//! `sankalpa webhooks`: endpoints that receive the tenant's events (signed as Standard Webhooks
//! says), their secrets, delivery log, replays and test sends.

use chrono::{DateTime, Utc};
use clap::Subcommand;
use sankalpa_api::paging::Page;
use sankalpa_api::webhooks::{
    CreateEndpoint, CreatedEndpoint, DeliveriesQuery, Delivery, DeliveryStatus, Replay,
    RotateSecret, UpdateEndpoint, WebhookEndpoint,
};

use crate::context::Context;
use crate::exit::{self, Failure};
use crate::output::when;
use crate::paging::PageArgs;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The tenant's endpoints, newest first.
    List {
        #[command(flatten)]
        page: PageArgs,
    },
    /// Registers an endpoint at URL for the events --event names; prints its secret, once.
    #[command(
        after_help = "Example:\n  sankalpa webhooks create https://example.com/hooks --event sankalpa.chains.run.completed --event 'agents.*.failed'"
    )]
    Create {
        url: String,
        /// A CloudEvents type or a subject without the tenant; `*` is one token, a final `>`
        /// the rest, `*` alone every event (repeat it).
        #[arg(long = "event", required = true)]
        events: Vec<String>,
        #[arg(long, default_value = "")]
        description: String,
        /// One delivery at a time, in event order.
        #[arg(long)]
        ordered: bool,
    },
    /// One endpoint.
    Show { id: String },
    /// Changes what is given; --enable resumes an endpoint disabled for failing.
    Update {
        id: String,
        #[arg(long)]
        url: Option<String>,
        /// Replaces the filters (repeat it).
        #[arg(long = "event")]
        events: Vec<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        ordered: Option<bool>,
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        #[arg(long)]
        disable: bool,
    },
    /// Removes an endpoint with its delivery log.
    Delete { id: String },
    /// Gives an endpoint a new secret (printed once); the previous one signs beside it for
    /// --overlap seconds.
    Rotate {
        id: String,
        #[arg(long, default_value_t = 0)]
        overlap: u32,
    },
    /// An endpoint's deliveries, newest first.
    Deliveries {
        id: String,
        #[arg(long, value_enum)]
        status: Option<Status>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// One delivery: its body and each attempt.
    Delivery { id: String, delivery: String },
    /// Sends one delivery again (--delivery), or every one since a time (--since, RFC 3339).
    Replay {
        id: String,
        #[arg(long, required_unless_present = "since", conflicts_with = "since")]
        delivery: Option<String>,
        #[arg(long)]
        since: Option<DateTime<Utc>>,
    },
    /// Sends the endpoint a `sankalpa.webhooks.test` event.
    Test { id: String },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Status {
    Pending,
    Delivered,
    Failed,
}

fn status_name(status: DeliveryStatus) -> &'static str {
    match status {
        DeliveryStatus::Pending => "pending",
        DeliveryStatus::Delivered => "delivered",
        DeliveryStatus::Failed => "failed",
    }
}

/// An endpoint for people: one line.
fn line(endpoint: &WebhookEndpoint) -> String {
    let state = match &endpoint.disabled_reason {
        Some(reason) => format!("disabled: {reason}"),
        None if endpoint.enabled => "enabled".to_owned(),
        None => "disabled".to_owned(),
    };
    format!(
        "{} {} [{}] ({state})",
        endpoint.id,
        endpoint.url,
        endpoint.event_types.join(", ")
    )
}

/// A new secret for people: the endpoint, then the secret and that it is not shown again.
fn with_secret(created: &CreatedEndpoint) -> String {
    format!(
        "{}\nsecret: {}  (shown this once)",
        line(&created.endpoint),
        created.secret
    )
}

fn delivery_line(delivery: &Delivery) -> String {
    format!(
        "{} {} {} ({} attempts)",
        delivery.id,
        delivery.event_type,
        status_name(delivery.status),
        delivery.attempts
    )
}

pub async fn run(context: &Context, command: Command) -> Result<u8, Failure> {
    let client = context.client().await?;
    let out = &context.out;
    match command {
        Command::List { page } => {
            let mut list = page
                .fetch(Page::default(), async |query| client.endpoints(query).await)
                .await?;
            out.show(
                &list,
                |list| list.endpoints.iter().map(|e| e.id.clone()).collect(),
                |list| {
                    let rows = list
                        .endpoints
                        .iter()
                        .map(|endpoint| {
                            vec![
                                endpoint.id.clone(),
                                endpoint.url.clone(),
                                endpoint.event_types.join(","),
                                if endpoint.enabled { "yes" } else { "no" }.to_owned(),
                                when(endpoint.created_at),
                            ]
                        })
                        .collect();
                    out.table(&["id", "url", "events", "enabled", "created"], rows)
                },
            )?;
            page.tell_rest(out, &mut list);
        }
        Command::Create {
            url,
            events,
            description,
            ordered,
        } => {
            let body = CreateEndpoint {
                url,
                event_types: events,
                description,
                ordered,
            };
            let created = client.create_endpoint(&body).await?;
            out.show(
                &created,
                |created| vec![created.endpoint.id.clone()],
                with_secret,
            )?;
        }
        Command::Show { id } => {
            let endpoint = client.endpoint(&id).await?;
            out.show(&endpoint, |endpoint| vec![endpoint.id.clone()], line)?;
        }
        Command::Update {
            id,
            url,
            events,
            description,
            ordered,
            enable,
            disable,
        } => {
            let body = UpdateEndpoint {
                url,
                event_types: Some(events).filter(|events| !events.is_empty()),
                description,
                ordered,
                enabled: (enable || disable).then_some(enable),
            };
            let endpoint = client.update_endpoint(&id, &body).await?;
            out.show(&endpoint, |endpoint| vec![endpoint.id.clone()], line)?;
        }
        Command::Delete { id } => {
            client.delete_endpoint(&id).await?;
            if !out.quiet && !out.is_document() {
                println!("deleted {id}");
            }
        }
        Command::Rotate { id, overlap } => {
            let body = RotateSecret {
                overlap_seconds: overlap,
            };
            let rotated = client.rotate_secret(&id, &body).await?;
            out.show(
                &rotated,
                |rotated| vec![rotated.endpoint.id.clone()],
                with_secret,
            )?;
        }
        Command::Deliveries { id, status, page } => {
            let status = status.map(|status| match status {
                Status::Pending => DeliveryStatus::Pending,
                Status::Delivered => DeliveryStatus::Delivered,
                Status::Failed => DeliveryStatus::Failed,
            });
            let query = DeliveriesQuery {
                status,
                ..Default::default()
            };
            let mut list = page
                .fetch(query, async |query| client.deliveries(&id, query).await)
                .await?;
            out.show(
                &list,
                |list| list.deliveries.iter().map(|d| d.id.clone()).collect(),
                |list| {
                    let rows = list
                        .deliveries
                        .iter()
                        .map(|delivery| {
                            vec![
                                delivery.id.clone(),
                                delivery.event_type.clone(),
                                status_name(delivery.status).to_owned(),
                                delivery.attempts.to_string(),
                                delivery
                                    .last_status_code
                                    .map_or_else(|| "-".to_owned(), |code| code.to_string()),
                                when(delivery.created_at),
                            ]
                        })
                        .collect();
                    out.table(
                        &["id", "event", "status", "attempts", "last", "created"],
                        rows,
                    )
                },
            )?;
            page.tell_rest(out, &mut list);
        }
        Command::Delivery { id, delivery } => {
            let detail = client.delivery(&id, &delivery).await?;
            out.show(
                &detail,
                |detail| vec![detail.delivery.id.clone()],
                |detail| {
                    let rows = detail
                        .attempts
                        .iter()
                        .map(|attempt| {
                            vec![
                                attempt.attempt.to_string(),
                                when(attempt.started_at),
                                attempt
                                    .status_code
                                    .map_or_else(|| "-".to_owned(), |code| code.to_string()),
                                format!("{} ms", attempt.latency_ms),
                                attempt.error.clone().unwrap_or_default(),
                            ]
                        })
                        .collect();
                    format!(
                        "{}\n\n{}",
                        delivery_line(&detail.delivery),
                        out.table(&["attempt", "at", "status", "latency", "error"], rows)
                    )
                },
            )?;
        }
        Command::Replay {
            id,
            delivery,
            since,
        } => {
            let body = Replay {
                delivery_id: delivery,
                since,
            };
            let replayed = client.replay(&id, &body).await?;
            out.show(
                &replayed,
                |replayed| vec![replayed.replayed.to_string()],
                |replayed| format!("{} deliveries sent again", replayed.replayed),
            )?;
        }
        Command::Test { id } => {
            let delivery = client.send_test(&id).await?;
            out.show(
                &delivery,
                |delivery| vec![delivery.id.clone()],
                delivery_line,
            )?;
        }
    }
    Ok(exit::OK)
}
