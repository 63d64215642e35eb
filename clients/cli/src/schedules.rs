//! `sankalpa schedules`: chains started by the platform on a cron expression in a time zone or
//! every fixed interval, paused, resumed, shown with their next fire times.

use clap::Subcommand;
use sankalpa_api::paging::Page;
use sankalpa_api::schedules::{CatchUp, CreateSchedule, Overlap, Schedule, UpdateSchedule};

use crate::context::Context;
use crate::exit::{self, Failure};
use crate::output::when;
use crate::paging::PageArgs;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The tenant's schedules, newest first.
    List {
        #[command(flatten)]
        page: PageArgs,
    },
    /// Creates a schedule running a stored chain (--chain) or a template (--template) on a
    /// cron expression (--cron, with --tz) or every --every seconds.
    #[command(
        after_help = "Examples:\n  sankalpa schedules create --cron '0 30 6 * * 1-5' --tz Europe/Paris --template hello-sequence\n  sankalpa schedules create --every 300 --chain 0190c1c5-... --input '{\"topic\": \"news\"}' --overlap buffer-one"
    )]
    Create {
        /// A cron expression: 5 fields, or 6 with seconds first.
        #[arg(long, required_unless_present = "every", conflicts_with = "every")]
        cron: Option<String>,
        /// The IANA time zone of --cron (UTC by default).
        #[arg(long, requires = "cron")]
        tz: Option<String>,
        /// Seconds between ticks.
        #[arg(long)]
        every: Option<u64>,
        /// A stored chain's id.
        #[arg(
            long,
            required_unless_present = "template",
            conflicts_with = "template"
        )]
        chain: Option<String>,
        /// A template's name.
        #[arg(long)]
        template: Option<String>,
        /// The input of each run: JSON or YAML inline, @file, or - for stdin.
        #[arg(long)]
        input: Option<String>,
        #[arg(long, default_value = "")]
        name: String,
        /// What a tick does while the last run is unfinished.
        #[arg(long, value_enum)]
        overlap: Option<OverlapArg>,
        /// Which missed ticks fire late.
        #[arg(long, value_enum)]
        catch_up: Option<CatchUpArg>,
        /// With --catch-up all: how far back, in seconds.
        #[arg(long)]
        catch_up_window: Option<u64>,
        /// Fire each tick up to this many seconds late, at random.
        #[arg(long)]
        jitter: Option<u32>,
        /// Create it paused.
        #[arg(long)]
        paused: bool,
    },
    /// One schedule, with its next fire times.
    Show { id: String },
    /// Changes what is given.
    Update {
        id: String,
        #[arg(long, conflicts_with = "every")]
        cron: Option<String>,
        #[arg(long)]
        tz: Option<String>,
        #[arg(long)]
        every: Option<u64>,
        #[arg(long)]
        input: Option<String>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long, value_enum)]
        overlap: Option<OverlapArg>,
        #[arg(long, value_enum)]
        catch_up: Option<CatchUpArg>,
        #[arg(long)]
        catch_up_window: Option<u64>,
        #[arg(long)]
        jitter: Option<u32>,
        /// Replaces the schedule's API key by one made with your credential.
        #[arg(long)]
        renew_credential: bool,
    },
    /// Stops the ticks.
    Pause { id: String },
    /// Starts the ticks again, from the next one after now.
    Resume { id: String },
    /// Removes a schedule and revokes its API key.
    Delete { id: String },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum OverlapArg {
    Skip,
    BufferOne,
    Allow,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CatchUpArg {
    None,
    Last,
    All,
}

impl From<OverlapArg> for Overlap {
    fn from(arg: OverlapArg) -> Self {
        match arg {
            OverlapArg::Skip => Self::Skip,
            OverlapArg::BufferOne => Self::BufferOne,
            OverlapArg::Allow => Self::Allow,
        }
    }
}

impl From<CatchUpArg> for CatchUp {
    fn from(arg: CatchUpArg) -> Self {
        match arg {
            CatchUpArg::None => Self::None,
            CatchUpArg::Last => Self::Last,
            CatchUpArg::All => Self::All,
        }
    }
}

/// When a schedule ticks, for people.
fn timing(schedule: &Schedule) -> String {
    match (&schedule.cron, schedule.interval_seconds) {
        (Some(cron), _) => format!(
            "cron '{cron}' {}",
            schedule.time_zone.as_deref().unwrap_or("UTC")
        ),
        (None, Some(seconds)) => format!("every {seconds}s"),
        (None, None) => String::new(),
    }
}

/// A schedule for people: one line, then its next fire time and last error.
fn line(schedule: &Schedule) -> String {
    let what = schedule
        .chain_id
        .as_deref()
        .or(schedule.template.as_deref())
        .unwrap_or_default();
    let state = if schedule.paused { "paused" } else { "active" };
    let mut text = format!("{} {what} {} ({state})", schedule.id, timing(schedule));
    if let Some(next) = schedule.next.first() {
        text.push_str(&format!("\nnext: {}", when(Some(*next))));
    }
    if let Some(error) = &schedule.last_error {
        text.push_str(&format!("\nlast error: {error}"));
    }
    text
}

pub async fn run(context: &Context, command: Command) -> Result<u8, Failure> {
    let client = context.client().await?;
    let out = &context.out;
    let shown = match command {
        Command::List { page } => {
            let mut list = page
                .fetch(Page::default(), async |query| client.schedules(query).await)
                .await?;
            out.show(
                &list,
                |list| list.schedules.iter().map(|s| s.id.clone()).collect(),
                |list| {
                    let rows = list
                        .schedules
                        .iter()
                        .map(|schedule| {
                            vec![
                                schedule.id.clone(),
                                timing(schedule),
                                schedule
                                    .chain_id
                                    .clone()
                                    .or_else(|| schedule.template.clone())
                                    .unwrap_or_default(),
                                if schedule.paused { "yes" } else { "no" }.to_owned(),
                                when(schedule.next.first().copied()),
                            ]
                        })
                        .collect();
                    out.table(&["id", "when", "runs", "paused", "next"], rows)
                },
            )?;
            page.tell_rest(out, &mut list);
            return Ok(exit::OK);
        }
        Command::Create {
            cron,
            tz,
            every,
            chain,
            template,
            input: raw,
            name,
            overlap,
            catch_up,
            catch_up_window,
            jitter,
            paused,
        } => {
            let body = CreateSchedule {
                name,
                cron,
                time_zone: tz,
                interval_seconds: every,
                chain_id: chain,
                template,
                input: crate::input::value("--input", raw.as_deref())?,
                overlap: overlap.map(Into::into),
                catch_up: catch_up.map(Into::into),
                catch_up_window_seconds: catch_up_window,
                jitter_seconds: jitter,
                paused,
            };
            client.create_schedule(&body).await?
        }
        Command::Show { id } => client.schedule(&id).await?,
        Command::Update {
            id,
            cron,
            tz,
            every,
            input: raw,
            name,
            overlap,
            catch_up,
            catch_up_window,
            jitter,
            renew_credential,
        } => {
            let body = UpdateSchedule {
                name,
                cron,
                time_zone: tz,
                interval_seconds: every,
                input: crate::input::value("--input", raw.as_deref())?,
                overlap: overlap.map(Into::into),
                catch_up: catch_up.map(Into::into),
                catch_up_window_seconds: catch_up_window,
                jitter_seconds: jitter,
                paused: None,
                renew_credential,
            };
            client.update_schedule(&id, &body).await?
        }
        Command::Pause { id } => {
            let body = UpdateSchedule {
                paused: Some(true),
                ..Default::default()
            };
            client.update_schedule(&id, &body).await?
        }
        Command::Resume { id } => {
            let body = UpdateSchedule {
                paused: Some(false),
                ..Default::default()
            };
            client.update_schedule(&id, &body).await?
        }
        Command::Delete { id } => {
            client.delete_schedule(&id).await?;
            if !out.quiet && !out.is_document() {
                println!("deleted {id}");
            }
            return Ok(exit::OK);
        }
    };
    out.show(&shown, |schedule| vec![schedule.id.clone()], line)?;
    Ok(exit::OK)
}
