//! `sankalpa chains` and `sankalpa runs`: chain definitions and templates, starting runs and
//! following them live, and what can be done with a run (events, cancel, approve, reject).
//!
//! A run is followed on its event stream (the gateway's SSE): one line per step as it starts
//! and ends, with a spinner on a terminal (indicatif), plain lines otherwise, all on stderr so
//! that stdout carries only the ended run (a summary, or its JSON with `-o json`). The stream ends
//! after the run's last event; the run is then read once more, and its status is the exit code:
//! completed 0, failed or cancelled 1. Ctrl-C asks whether to cancel the run (`cancel`) or leave it
//! running (`detach`, exit 0).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Subcommand;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use sankalpa_api::chains::{
    self, Chain, ChainOriginFilter, ChainRun, CreateChain, ExecuteChain, RunsQuery, StepDecision,
    UpdateChain, ValidateChain, VersionQuery,
};
use sankalpa_api::client::Client;
use sankalpa_api::events::{CloudEvent, RunEventsQuery};
use serde_json::Value;

use crate::context::Context;
use crate::exit::{self, Failure};
use crate::input;
use crate::output::{self, Format, Output, duration, pretty, when};
use crate::paging::PageArgs;

#[derive(Debug, Subcommand)]
pub enum ChainCommand {
    /// The tenant's chains and the catalog's templates.
    #[command(
        after_help = "Examples:\n  sankalpa chains list\n  sankalpa chains list --origin template -q"
    )]
    List {
        /// Only the tenant's chains, or only templates.
        #[arg(long, value_enum)]
        origin: Option<Origin>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// One chain (by id) or template (by name), with its definition.
    #[command(after_help = "Example:\n  sankalpa chains show fullstack-app -o json")]
    Show {
        chain: String,
        /// A stored chain's version; the latest when absent.
        #[arg(long)]
        version: Option<u32>,
    },
    /// Checks a definition without storing it; exits 2 when it is not valid, naming each
    /// problem's field.
    #[command(
        after_help = "Examples:\n  sankalpa chains validate chain.json\n  sankalpa chains validate chain.yaml"
    )]
    Validate {
        /// A JSON or YAML file (YAML when it ends .yaml or .yml) holding the definition (`-`
        /// for stdin).
        file: String,
    },
    /// Stores a chain from a JSON or YAML file `{name, description, definition}`: a new chain,
    /// or a new version of the tenant's chain of that name.
    #[command(after_help = "Example:\n  sankalpa chains apply greet-twice.yaml -q")]
    Apply {
        /// The JSON or YAML file (YAML when it ends .yaml or .yml; `-` for stdin).
        file: String,
    },
    /// Runs a template (by name), a stored chain (by id) or a definition (--file).
    #[command(after_help = "Examples:
  sankalpa chains run hello-sequence --input '{\"name\": \"Ada\"}'
  sankalpa chains run fullstack-app --input @project.json --follow
  sankalpa chains run --file chain.yaml --detach -q
Exit code: 0 the run completed, 1 it failed or was cancelled.")]
    Run(RunArgs),
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// A template's name or a stored chain's id.
    #[arg(required_unless_present = "file", conflicts_with = "file")]
    chain: Option<String>,
    /// Run the definition in this JSON or YAML file (`-` for stdin) without storing it.
    #[arg(long)]
    file: Option<String>,
    /// The chain input: JSON (or YAML), `@file` (`.yaml`, `.yml`: YAML), or `-` for stdin;
    /// `{}` when absent.
    #[arg(long)]
    input: Option<String>,
    /// Draw each step live until the run ends (the default on a terminal, unless -o json).
    #[arg(long, conflicts_with = "detach")]
    follow: bool,
    /// Print the new run and return at once.
    #[arg(long)]
    detach: bool,
    /// A repeated key answers with the run it started first, instead of a new one.
    #[arg(long)]
    idempotency_key: Option<String>,
    /// The memory session the steps share (a new one per run when absent).
    #[arg(long)]
    session: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum RunCommand {
    /// The tenant's runs, newest first.
    #[command(
        after_help = "Examples:\n  sankalpa runs list --status running,waiting\n  sankalpa runs list --since 2026-12-05T09:00:00Z"
    )]
    List {
        /// Only runs in these states, comma-separated: pending, running, waiting, completed,
        /// failed, cancelled.
        #[arg(long)]
        status: Option<String>,
        /// Only runs of this stored chain.
        #[arg(long)]
        chain: Option<String>,
        /// Only runs created at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Only runs created before this time (RFC 3339).
        #[arg(long)]
        until: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// One run and each of its steps.
    Show { id: String },
    /// A run's events (CloudEvents), from the first; with --follow, live until the run ends.
    #[command(after_help = "Example:\n  sankalpa runs events 0194... --follow -o json")]
    Events {
        id: String,
        /// Keep reading until the run ends, rather than stopping at the last event so far.
        #[arg(long)]
        follow: bool,
    },
    /// Asks a run to stop; steps in flight end as cancelled.
    Cancel { id: String },
    /// Approves a waiting approval step.
    #[command(
        after_help = "Example:\n  sankalpa runs approve 0194... deploy --input '{\"region\": \"eu\"}'"
    )]
    Approve(Decision),
    /// Rejects a waiting approval step: it fails, and so does the run.
    Reject(Decision),
}

#[derive(Debug, clap::Args)]
pub struct Decision {
    id: String,
    step: String,
    /// What the steps after it read as `${steps.<step>.input}` (JSON or YAML, `@file` or `-`).
    #[arg(long)]
    input: Option<String>,
    /// A note kept with the decision.
    #[arg(long)]
    comment: Option<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Origin {
    Tenant,
    Template,
}

pub async fn run_chains(context: &Context, command: ChainCommand) -> Result<u8, Failure> {
    let client = context.client().await?;
    let out = &context.out;
    match command {
        ChainCommand::List { origin, page } => {
            let origin = origin.map(|origin| match origin {
                Origin::Tenant => ChainOriginFilter::Tenant,
                Origin::Template => ChainOriginFilter::Template,
            });
            let mut list = page
                .fetch(
                    chains::ListQuery {
                        origin,
                        ..Default::default()
                    },
                    async |query| client.chains(query).await,
                )
                .await?;
            out.show(
                &list,
                |list| {
                    list.chains
                        .iter()
                        .map(|chain| chain.id.clone().unwrap_or_else(|| chain.name.clone()))
                        .collect()
                },
                |list| {
                    let rows = list
                        .chains
                        .iter()
                        .map(|chain| {
                            vec![
                                chain.id.clone().unwrap_or_else(|| "-".to_owned()),
                                chain.name.clone(),
                                chain.origin.clone(),
                                chain.version.to_string(),
                                chain.step_count.to_string(),
                                chain.description.clone(),
                            ]
                        })
                        .collect();
                    out.table(
                        &["id", "name", "origin", "version", "steps", "description"],
                        rows,
                    )
                },
            )?;
            page.tell_rest(out, &mut list);
        }
        ChainCommand::Show { chain, version } => {
            let found = client.chain(&chain, &VersionQuery { version }).await?;
            out.show(
                &found,
                |found| vec![found.id.clone().unwrap_or_else(|| found.name.clone())],
                |found| {
                    let definition = found
                        .definition
                        .as_ref()
                        .map_or_else(String::new, |raw| pretty(raw.get()));
                    format!(
                        "{} ({}, version {}, {} steps)\n{}\n\n{definition}",
                        found.name,
                        found.origin,
                        found.version,
                        found.step_count,
                        found.description
                    )
                },
            )?;
        }
        ChainCommand::Validate { file } => {
            let definition = input::file("FILE", &file)?;
            let validation = client.validate_chain(&ValidateChain { definition }).await?;
            out.show(
                &validation,
                |_| Vec::new(),
                |validation| match validation.valid {
                    true => format!("valid: {} steps", validation.step_count),
                    false => validation
                        .violations
                        .iter()
                        .map(|violation| format!("{}: {}", violation.field, violation.message))
                        .collect::<Vec<_>>()
                        .join("\n"),
                },
            )?;
            return Ok(if validation.valid {
                exit::OK
            } else {
                exit::USAGE
            });
        }
        ChainCommand::Apply { file } => {
            let text = input::file("FILE", &file)?;
            let body: CreateChain = serde_json::from_str(text.get())
                .map_err(|err| Failure::Usage(format!("FILE: not a chain: {err}")))?;
            let chain = apply(&client, body).await?;
            out.show(
                &chain,
                |chain| vec![chain.id.clone().unwrap_or_default()],
                |chain| {
                    format!(
                        "{} is at version {} ({})",
                        chain.name,
                        chain.version,
                        chain.id.as_deref().unwrap_or_default()
                    )
                },
            )?;
        }
        ChainCommand::Run(args) => return start(context, &client, args).await,
    }
    Ok(exit::OK)
}

/// How many of the tenant's chains `apply` reads a page, the API's most, and how many pages at
/// most looking for a name.
const PAGE_SIZE: u32 = 200;
const MAX_PAGES: u32 = 50;

/// Creates the chain, or adds a version to the tenant's chain of the same name.
async fn apply(client: &Client, body: CreateChain) -> Result<Chain, Failure> {
    let mut query = chains::ListQuery {
        origin: Some(ChainOriginFilter::Tenant),
        page_size: Some(PAGE_SIZE),
        ..chains::ListQuery::default()
    };
    for _ in 0..MAX_PAGES {
        let page = client.chains(&query).await?;
        if let Some(id) = page
            .chains
            .iter()
            .find(|chain| chain.name == body.name)
            .and_then(|chain| chain.id.clone())
        {
            let update = UpdateChain {
                definition: body.definition,
                name: None,
                description: Some(body.description),
                expected_version: None,
            };
            return Ok(client.update_chain(&id, &update).await?);
        }
        match page.next_page_token {
            Some(token) => query.page_token = Some(token),
            None => return Ok(client.create_chain(&body).await?),
        }
    }
    Err(Failure::Failed(format!(
        "more than {} chains: apply by id with the API",
        MAX_PAGES * PAGE_SIZE
    )))
}

/// A UUID (with or without hyphens) names a stored chain; anything else a template.
fn is_chain_id(text: &str) -> bool {
    let hex = text.replace('-', "");
    hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit())
}

async fn start(context: &Context, client: &Client, args: RunArgs) -> Result<u8, Failure> {
    let (chain_id, template) = match args.chain {
        Some(chain) if is_chain_id(&chain) => (Some(chain), None),
        Some(template) => (None, Some(template)),
        None => (None, None),
    };
    let body = ExecuteChain {
        chain_id,
        version: None,
        template,
        definition: args
            .file
            .map(|file| input::file("--file", &file))
            .transpose()?,
        input: args
            .input
            .map(|text| input::document("--input", &text))
            .transpose()?,
        wait: false,
        wait_timeout_ms: None,
        session_id: args.session,
    };
    let how = Launch {
        idempotency_key: args.idempotency_key,
        follow: args.follow,
        detach: args.detach,
    };
    launch(context, client, &body, how).await
}

/// How a run is started and watched: `chains run`'s flags, which `plan --run` shares.
pub struct Launch {
    pub idempotency_key: Option<String>,
    pub follow: bool,
    pub detach: bool,
}

/// Starts `body`'s run; unless detached, follows it (drawn on a terminal) to its end and exits
/// by how it ended.
pub async fn launch(
    context: &Context,
    client: &Client,
    body: &ExecuteChain,
    args: Launch,
) -> Result<u8, Failure> {
    let out = &context.out;
    let run = client
        .execute_chain(body, args.idempotency_key.as_deref())
        .await?;
    if args.detach {
        out.show(
            &run,
            |run| vec![run.id.clone()],
            |run| format!("started run {} ({})", run.id, run.chain_name),
        )?;
        return Ok(exit::OK);
    }
    let draw = args.follow || (std::io::stdout().is_terminal() && !out.is_document() && !out.quiet);
    if draw {
        eprintln!("run {} of {}", run.id, run.chain_name);
    }
    let followed = follow(client, &run.id, draw.then(Progress::new));
    tokio::select! {
        followed = followed => followed?,
        _ = tokio::signal::ctrl_c() => {
            if !interrupted(client, &run.id).await? {
                eprintln!("detached: run {} goes on (sankalpa runs show {})", run.id, run.id);
                return Ok(exit::OK);
            }
            follow(client, &run.id, None).await?;
        }
    }
    let ended = client.run(&run.id).await?;
    out.show(&ended, |run| vec![run.id.clone()], |run| summary(out, run))?;
    Ok(ended_code(&ended))
}

/// The exit code of a run that ended.
fn ended_code(run: &ChainRun) -> u8 {
    match run.status.as_str() {
        "completed" => exit::OK,
        _ => exit::FAILED,
    }
}

fn summary(out: &Output, run: &ChainRun) -> String {
    let took = match (run.started_at, run.finished_at) {
        (Some(start), Some(end)) => {
            duration(u64::try_from((end - start).num_milliseconds()).unwrap_or(0))
        }
        _ => "-".to_owned(),
    };
    let mut text = format!("run {} {} in {took}", run.id, out.status(&run.status));
    if let Some(error) = &run.error {
        text.push_str(&format!("\n{}: {}", error.code, error.message));
    }
    text
}

/// Ctrl-C while following: asks whether to cancel the run or detach from it (on a terminal;
/// elsewhere the run is left alone) and cancels it if so. True when it was cancelled. Anything
/// but `cancel` (or `c`, `y`, `yes`) detaches: the answer that loses nothing.
async fn interrupted(client: &Client, run: &str) -> Result<bool, Failure> {
    if !std::io::stdin().is_terminal() {
        return Ok(false);
    }
    eprint!("\nRun {run} goes on without you: cancel it, or detach? [cancel/detach] (detach) ");
    let answer = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line)
    })
    .await
    .map_err(|err| Failure::Failed(format!("cannot read the answer: {err}")))?
    .map_err(|err| Failure::Failed(format!("cannot read the answer: {err}")))?;
    let cancel = ["cancel", "c", "yes", "y"]
        .iter()
        .any(|word| answer.trim().eq_ignore_ascii_case(word));
    if !cancel {
        return Ok(false);
    }
    client.cancel_run(run).await?;
    Ok(true)
}

/// Reads the run's events until its stream ends, drawing each on `progress` when given.
async fn follow(client: &Client, run: &str, mut progress: Option<Progress>) -> Result<(), Failure> {
    let mut events = client.run_events(run, &RunEventsQuery::default()).await?;
    while let Some(event) = events.next().await {
        let event = event?;
        if let Some(progress) = &mut progress {
            progress.show(&event);
        }
    }
    Ok(())
}

/// The live view of a run: a spinner per step while it runs, a line once it ends.
struct Progress {
    bars: MultiProgress,
    steps: HashMap<String, Running>,
    /// Spinners only on a terminal; elsewhere each change is a plain line.
    terminal: bool,
}

/// A step's attempt under way.
struct Running {
    bar: ProgressBar,
    since: Option<DateTime<Utc>>,
    attempt: u64,
}

impl Progress {
    fn new() -> Self {
        let terminal = std::io::stderr().is_terminal();
        let target = if terminal {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Self {
            bars: MultiProgress::with_draw_target(target),
            steps: HashMap::new(),
            terminal,
        }
    }

    fn line(&self, text: String) {
        if self.terminal {
            // Printed above the spinners, which keep their place below.
            let _ = self.bars.println(text);
        } else {
            eprintln!("{text}");
        }
    }

    fn show(&mut self, event: &CloudEvent) {
        let data: Value = serde_json::from_str(event.data.get()).unwrap_or(Value::Null);
        let text = |key: &str| data[key].as_str().unwrap_or_default().to_owned();
        let step = text("step_id");
        let action = event
            .kind
            .rsplit_once(".chains.")
            .map_or(event.kind.as_str(), |(_, action)| action);
        match action {
            "step.started" => {
                let attempt = data["attempt"].as_u64().unwrap_or(1);
                let what = match text("agent") {
                    agent if agent.is_empty() => String::new(),
                    agent => format!(" ({agent})"),
                };
                let label = format!("{step}{what} attempt {attempt}");
                let bar = self.bars.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_message(format!("{label} running"));
                bar.enable_steady_tick(Duration::from_millis(100));
                if !self.terminal {
                    eprintln!("{label} started");
                }
                let running = Running {
                    bar,
                    since: event.time,
                    attempt,
                };
                // A retry's start replaces the failed attempt's spinner.
                if let Some(before) = self.steps.insert(step, running) {
                    before.bar.finish_and_clear();
                }
            }
            "step.waiting" => {
                let reason = data["reason"]["message"].as_str().unwrap_or_default();
                self.line(format!("{step} waiting: {reason}"));
            }
            "step.waiting_approval" => {
                self.line(format!(
                    "{step} waiting for approval: {}\n  sankalpa runs approve {} {step}   (or reject)",
                    text("prompt"),
                    text("run_id")
                ));
            }
            "step.completed" | "step.failed" | "step.skipped" => {
                let status = action.trim_start_matches("step.");
                let running = self.steps.remove(&step);
                let took = match (
                    running.as_ref().and_then(|running| running.since),
                    event.time,
                ) {
                    (Some(start), Some(end)) => format!(
                        " in {}",
                        duration(u64::try_from((end - start).num_milliseconds()).unwrap_or(0))
                    ),
                    _ => String::new(),
                };
                let why = match (
                    data["error"]["message"].as_str(),
                    data["skip_reason"].as_str(),
                ) {
                    (Some(message), _) => format!(": {message}"),
                    (None, Some(reason)) => format!(": {reason}"),
                    (None, None) => String::new(),
                };
                // Retries are worth a word; a first attempt goes without saying.
                let attempts = match running.as_ref().map_or(1, |running| running.attempt) {
                    1 => String::new(),
                    attempt => format!(" (attempt {attempt})"),
                };
                if let Some(running) = running {
                    running.bar.finish_and_clear();
                }
                self.line(format!("{step} {status}{took}{attempts}{why}"));
            }
            "run.completed" | "run.failed" | "run.cancelled" => {
                for (_, running) in self.steps.drain() {
                    running.bar.finish_and_clear();
                }
            }
            _ => {}
        }
    }
}

pub async fn run_runs(context: &Context, command: RunCommand) -> Result<u8, Failure> {
    let client = context.client().await?;
    let out = &context.out;
    let ended = match command {
        RunCommand::List {
            status,
            chain,
            since,
            until,
            page,
        } => {
            let mut list = page
                .fetch(
                    RunsQuery {
                        status,
                        chain_id: chain,
                        since,
                        until,
                        ..Default::default()
                    },
                    async |query| client.runs(query).await,
                )
                .await?;
            out.show(
                &list,
                |list| list.runs.iter().map(|run| run.id.clone()).collect(),
                |list| {
                    let rows = list
                        .runs
                        .iter()
                        .map(|run| {
                            vec![
                                run.id.clone(),
                                run.chain_name.clone(),
                                out.status(&run.status),
                                when(run.created_at),
                                when(run.finished_at),
                            ]
                        })
                        .collect();
                    out.table(&["id", "chain", "status", "created", "finished"], rows)
                },
            )?;
            page.tell_rest(out, &mut list);
            return Ok(exit::OK);
        }
        RunCommand::Show { id } => client.run(&id).await?,
        RunCommand::Events { id, follow } => return events(context, &client, &id, follow).await,
        RunCommand::Cancel { id } => client.cancel_run(&id).await?,
        RunCommand::Approve(decision) => {
            let body = decision_body(&decision)?;
            client
                .approve_step(&decision.id, &decision.step, &body)
                .await?
        }
        RunCommand::Reject(decision) => {
            let body = decision_body(&decision)?;
            client
                .reject_step(&decision.id, &decision.step, &body)
                .await?
        }
    };
    out.show(&ended, |run| vec![run.id.clone()], |run| steps(out, run))?;
    Ok(exit::OK)
}

fn decision_body(decision: &Decision) -> Result<StepDecision, Failure> {
    Ok(StepDecision {
        input: decision
            .input
            .as_deref()
            .map(|text| input::document("--input", text))
            .transpose()?,
        comment: decision.comment.clone(),
    })
}

/// A run and a row per step.
fn steps(out: &Output, run: &ChainRun) -> String {
    let rows = run
        .steps
        .iter()
        .map(|step| {
            vec![
                step.id.clone(),
                step.kind.clone(),
                step.agent.clone(),
                out.status(&step.status),
                step.attempts.to_string(),
                duration(step.duration_ms),
            ]
        })
        .collect();
    format!(
        "{}\n\n{}",
        summary(out, run),
        out.table(
            &["step", "kind", "agent", "status", "attempts", "duration"],
            rows
        )
    )
}

/// How long a replay may pause before its reader takes it to have reached the live edge: the
/// events already published arrive back to back.
const LIVE_EDGE: Duration = Duration::from_millis(500);

/// Prints a run's events, one line each (one JSON document a line with -o json, a YAML
/// document each with -o yaml). A finished
/// run's stream ends by itself; a running one's is read to its live edge, or with --follow to
/// the run's end.
async fn events(context: &Context, client: &Client, id: &str, follow: bool) -> Result<u8, Failure> {
    let out = &context.out;
    let run = client.run(id).await?;
    let running = !matches!(run.status.as_str(), "completed" | "failed" | "cancelled");
    let stop_at_edge = running && !follow;
    if stop_at_edge {
        eprintln!(
            "(run {} is {}: its events so far; --follow waits for the rest)",
            run.id, run.status
        );
    }
    let mut stream = client.run_events(id, &RunEventsQuery::default()).await?;
    loop {
        let next = match stop_at_edge {
            true => match tokio::time::timeout(LIVE_EDGE, stream.next()).await {
                Ok(next) => next,
                Err(_) => break,
            },
            false => stream.next().await,
        };
        let Some(event) = next else { break };
        let event = event?;
        if out.format == Format::Json {
            let line = serde_json::to_string(&event)
                .map_err(|err| Failure::Failed(format!("cannot print an event: {err}")))?;
            println!("{line}");
        } else if out.format == Format::Yaml {
            // A stream of YAML documents, each opened by its marker.
            println!("---\n{}", output::yaml(&event)?);
        } else if out.quiet {
            println!("{}", event.id);
        } else {
            println!(
                "{} {} {} {}",
                event.sequence,
                when(event.time),
                event.kind,
                event.data.get()
            );
        }
    }
    Ok(exit::OK)
}
