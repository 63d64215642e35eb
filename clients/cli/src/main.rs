//! `sankalpa`: every capability of the platform from a terminal, through the gateway's REST API
//! (the typed client of `sankalpa-api`). Each command group is a module: [`account`] (login,
//! whoami, status, keys), [`agents`], [`chains`] (chains and their runs, followed live),
//! [`memory`], [`market`], [`schedules`], [`webhooks`], [`triggers`], [`plan`] (a project in words to a chain). [`context`] resolves the profile and credential, [`output`] prints, [`exit`] maps
//! every failure to its exit code.

mod account;
mod agents;
mod chains;
mod config;
mod context;
mod exit;
mod input;
mod market;
mod memory;
mod models;
mod output;
mod paging;
mod plan;
mod schedules;
mod triggers;
mod webhooks;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::context::{Context, Flags};
use crate::exit::Failure;
use crate::output::Format;

const EXAMPLES: &str = "Examples:
  sankalpa login --email ada@example.com
  sankalpa agents run calculator --input '{\"expression\": \"6 * 7\"}'
  sankalpa chains run hello-sequence --input '{\"name\": \"Ada\"}' --follow
  sankalpa runs list --status running -o json";

#[derive(Debug, Parser)]
#[command(
    name = "sankalpa",
    version,
    about = "Run AI agents and chains on a Sankalpa fleet."
)]
#[command(after_help = EXAMPLES)]
struct Cli {
    /// The profile of the config file to use (`default` unless the config names another).
    #[arg(long, global = true, env = "SANKALPA_PROFILE")]
    profile: Option<String>,
    /// The gateway's URL, over the profile's (http://127.0.0.1:8080 when neither says).
    #[arg(long, global = true, env = "SANKALPA_GATEWAY")]
    gateway: Option<String>,
    /// How to print answers: `table` for people; `json` (the API's own) or `yaml` (the same
    /// document) for scripts.
    #[arg(short, long, global = true, value_enum)]
    output: Option<Format>,
    /// Print only ids, one a line.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    #[command(flatten)]
    Account(account::Command),
    /// Agents: list, show, run.
    #[command(subcommand)]
    Agents(agents::Command),
    /// Chains: list, show, validate, run.
    #[command(subcommand)]
    Chains(chains::ChainCommand),
    /// Chain runs: list, show, events, cancel, approve, reject.
    #[command(subcommand)]
    Runs(chains::RunCommand),
    /// Memory: sessions, entries, backups.
    #[command(subcommand)]
    Memory(memory::Command),
    /// The marketplace: search, show, install, publish, yank, review.
    #[command(subcommand)]
    Market(market::Command),
    /// Model providers: the tenant's LLM endpoints and keys, a connection test, the default.
    #[command(subcommand)]
    Models(models::Command),
    /// Schedules: chains started on a cron expression or an interval.
    #[command(subcommand)]
    Schedules(schedules::Command),
    /// Webhooks: endpoints that receive the tenant's events, their deliveries, replays.
    #[command(subcommand)]
    Webhooks(webhooks::Command),
    /// Inbound webhook triggers: URLs that start a chain when a signed request reaches them.
    #[command(subcommand)]
    Triggers(triggers::Command),
    /// Plans the chain that builds a project described in words; --run runs it.
    Plan(plan::PlanArgs),
    /// Writes a man page per command into DIR (`make cli` installs them).
    #[command(hide = true)]
    Manpages { dir: std::path::PathBuf },
    /// Prints a shell's completion script: `sankalpa completions bash > /etc/bash_completion.d/sankalpa`.
    Completions { shell: clap_complete::Shell },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Neither needs a profile, a gateway or a runtime.
    match &cli.command {
        Command::Completions { shell } => {
            let mut command = Cli::command();
            clap_complete::generate(*shell, &mut command, "sankalpa", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        Command::Manpages { dir } => {
            return match clap_mangen::generate_to(Cli::command(), dir) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!(
                        "sankalpa: cannot write man pages into {}: {err}",
                        dir.display()
                    );
                    ExitCode::from(exit::FAILED)
                }
            };
        }
        _ => {}
    }
    // One thread: a command is a handful of calls in a row, and a second thread would only add
    // to its start.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("sankalpa: cannot start: {err}");
            return ExitCode::from(exit::FAILED);
        }
    };
    // Signing in is what the hint of a refused credential would say: not said to it.
    let signing_in = matches!(cli.command, Command::Account(account::Command::Login(_)));
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            match failure.hint().filter(|_| !signing_in) {
                Some(hint) => eprintln!("sankalpa: {failure}; {hint}"),
                None => eprintln!("sankalpa: {failure}"),
            }
            ExitCode::from(failure.code())
        }
    }
}

/// Runs the command; `Ok` carries the exit code of a command whose outcome has its own (a run
/// that failed ends 1 though every call succeeded).
async fn run(cli: Cli) -> Result<u8, Failure> {
    let context = Context::resolve(Flags {
        profile: cli.profile,
        gateway: cli.gateway,
        output: cli.output,
        quiet: cli.quiet,
    })?;
    match cli.command {
        Command::Account(command) => account::run(&context, command).await,
        Command::Agents(command) => agents::run(&context, command).await,
        Command::Chains(command) => chains::run_chains(&context, command).await,
        Command::Runs(command) => chains::run_runs(&context, command).await,
        Command::Memory(command) => memory::run(&context, command).await,
        Command::Market(command) => market::run(&context, command).await,
        Command::Models(command) => models::run(&context, command).await,
        Command::Schedules(command) => schedules::run(&context, command).await,
        Command::Webhooks(command) => webhooks::run(&context, command).await,
        Command::Triggers(command) => triggers::run(&context, command).await,
        Command::Plan(args) => plan::run(&context, args).await,
        Command::Completions { .. } | Command::Manpages { .. } => Ok(exit::OK),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap checks its definitions (unique names, valid defaults) only when a command is built,
    /// at run time: this builds every one.
    #[test]
    fn every_command_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
