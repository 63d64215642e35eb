//! `sankalpa agents`: the catalog, one agent's schemas, and running one agent.

use std::path::PathBuf;

use clap::Subcommand;
use sankalpa_api::agents::{self, Agent, AgentOriginFilter, AgentRun, ExecuteAgent, LlmChoice};
use sankalpa_api::client::EventStream;

use crate::context::Context;
use crate::exit::{self, Failure};
use crate::input;
use crate::output::{self, duration, pretty};
use crate::paging::PageArgs;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The built-in agents and the tenant's custom ones, by category then name.
    #[command(
        after_help = "Examples:\n  sankalpa agents list\n  sankalpa agents list --category builder -q"
    )]
    List {
        /// Only this category: builder, testing, deployment, marketing, enhanced, meta,
        /// orchestration or custom.
        #[arg(long)]
        category: Option<String>,
        /// Only built-in or only custom agents.
        #[arg(long, value_enum)]
        origin: Option<Origin>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// One agent, with its input and output schemas.
    #[command(after_help = "Example:\n  sankalpa agents show calculator")]
    Show { name: String },
    /// Runs an agent to its end and prints its output; exits 1 when the run did not complete.
    #[command(after_help = "Examples:
  sankalpa agents run hello_world
  sankalpa agents run calculator --input '{\"expression\": \"2 * (3 + 4)\"}'
  sankalpa agents run api_builder --input @spec.json --artifacts ./out
  sankalpa agents run text_translator --input '{\"text\": \"Hello\", \"target_language\": \"es\"}' --stream
  echo '{\"expression\": \"1 + 1\"}' | sankalpa agents run calculator --input - -o json")]
    Run {
        name: String,
        /// The input: JSON (or YAML), `@file` (`.yaml`, `.yml`: YAML), or `-` for stdin; `{}`
        /// when absent.
        #[arg(long)]
        input: Option<String>,
        /// The memory session the agent may read and write.
        #[arg(long)]
        session: Option<String>,
        /// How long the agent may run, in milliseconds (60,000 when absent).
        #[arg(long)]
        deadline_ms: Option<u64>,
        /// Use the LLM when one is configured (`preferred`), or never (`off`).
        #[arg(long, value_enum)]
        llm: Option<Llm>,
        /// The model to ask, `provider/model` (see `sankalpa models list`); the tenant's
        /// default when absent.
        #[arg(long)]
        model: Option<String>,
        /// Download the run's files and unpack them into this folder.
        #[arg(long)]
        artifacts: Option<PathBuf>,
        /// Print the model's text to standard error as it is written (agents that ask a model
        /// for text); the output still comes on standard output at the end.
        #[arg(long)]
        stream: bool,
    },
}

/// How long the run's events may trail its answer before they are left unprinted.
const STREAM_TAIL: std::time::Duration = std::time::Duration::from_secs(5);

/// Prints the text of run `run_id`'s delta events to standard error as they come, until the
/// run's end (its `completed` or `failed` event) or the stream's.
async fn print_deltas(mut events: EventStream, run_id: String) {
    use std::io::Write;
    while let Some(Ok(event)) = events.next().await {
        let data: serde_json::Value = serde_json::from_str(event.data.get()).unwrap_or_default();
        if data["run_id"] != run_id.as_str() {
            continue;
        }
        match event.kind.rsplit('.').next() {
            Some("delta") => {
                let mut stderr = std::io::stderr().lock();
                let _ = write!(stderr, "{}", data["text"].as_str().unwrap_or_default());
                let _ = stderr.flush();
            }
            Some("completed" | "failed") => {
                eprintln!();
                return;
            }
            _ => {}
        }
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Origin {
    Builtin,
    Custom,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Llm {
    Off,
    Preferred,
}

impl Llm {
    pub fn choice(self) -> LlmChoice {
        match self {
            Self::Off => LlmChoice::Off,
            Self::Preferred => LlmChoice::Preferred,
        }
    }
}

pub async fn run(context: &Context, command: Command) -> Result<u8, Failure> {
    let client = context.client().await?;
    let out = &context.out;
    match command {
        Command::List {
            category,
            origin,
            page,
        } => {
            let origin = origin.map(|origin| match origin {
                Origin::Builtin => AgentOriginFilter::Builtin,
                Origin::Custom => AgentOriginFilter::Custom,
            });
            let mut list = page
                .fetch(
                    agents::ListQuery {
                        category,
                        origin,
                        ..Default::default()
                    },
                    async |query| client.agents(query).await,
                )
                .await?;
            out.show(
                &list,
                |list| list.agents.iter().map(|agent| agent.name.clone()).collect(),
                |list| {
                    let rows = list
                        .agents
                        .iter()
                        .map(|agent| {
                            vec![
                                agent.name.clone(),
                                agent.category.clone(),
                                agent.version.clone(),
                                agent.origin.clone(),
                                agent.description.clone(),
                            ]
                        })
                        .collect();
                    out.table(
                        &["name", "category", "version", "origin", "description"],
                        rows,
                    )
                },
            )?;
            page.tell_rest(out, &mut list);
            Ok(exit::OK)
        }
        Command::Show { name } => {
            let agent = client.agent(&name).await?;
            out.show(&agent, |agent| vec![agent.name.clone()], describe)?;
            Ok(exit::OK)
        }
        Command::Run {
            name,
            input,
            session,
            deadline_ms,
            llm,
            model,
            artifacts,
            stream,
        } => {
            // A run streamed is named here, so that its events are known as they come.
            let run_id = stream.then(|| uuid::Uuid::new_v4().to_string());
            let printing = match &run_id {
                Some(id) => Some(tokio::spawn(print_deltas(
                    client.events(&format!("agents.*.{name}.>")).await?,
                    id.clone(),
                ))),
                None => None,
            };
            let body = ExecuteAgent {
                agent: name,
                input: input
                    .map(|text| input::document("--input", &text))
                    .transpose()?,
                session_id: session,
                deadline_ms,
                llm: llm.map(Llm::choice),
                model,
                run_id,
                stream_deltas: stream,
            };
            let run = client.execute_agent(&body).await;
            if let Some(printing) = printing {
                // The run's end is in its events too: its deltas are all printed by then.
                if run.is_err() || tokio::time::timeout(STREAM_TAIL, printing).await.is_err() {
                    eprintln!();
                }
            }
            let run = run?;
            out.show(&run, |run| vec![run.run_id.clone()], |run| ran(out, run))?;
            if let Some(folder) = artifacts {
                let archive = client.artifacts(&run.workspace_id).await?;
                unpack(&archive, &folder)?;
                eprintln!("{} files in {}", run.artifacts.len(), folder.display());
            }
            Ok(if run.status == "completed" {
                exit::OK
            } else {
                exit::FAILED
            })
        }
    }
}

/// An agent for people: what it is, then its schemas as indented JSON.
fn describe(agent: &Agent) -> String {
    format!(
        "{} {} ({}, {})\n{}\nLLM-capable: {}\n\nInput schema:\n{}\n\nOutput schema:\n{}",
        agent.name,
        agent.version,
        agent.category,
        agent.origin,
        agent.description,
        if agent.llm_capable { "yes" } else { "no" },
        pretty(agent.input_schema.get()),
        pretty(agent.output_schema.get()),
    )
}

/// A finished run for people: its output, or why it has none.
fn ran(out: &output::Output, run: &AgentRun) -> String {
    let head = format!(
        "{} {} in {} (run {})",
        run.agent,
        out.status(&run.status),
        duration(run.duration_ms),
        run.run_id
    );
    let body = match (&run.output, &run.error) {
        (Some(value), _) => pretty(value.get()),
        (None, Some(error)) => format!("{}: {}", error.code, error.message),
        (None, None) => String::new(),
    };
    format!("{head}\n{body}")
}

/// Unpacks the .tar.gz the gateway sent into `folder`; `tar` refuses entries that would land
/// outside it.
fn unpack(archive: &[u8], folder: &std::path::Path) -> Result<(), Failure> {
    std::fs::create_dir_all(folder)
        .and_then(|()| tar::Archive::new(flate2::read::GzDecoder::new(archive)).unpack(folder))
        .map_err(|err| Failure::Failed(format!("cannot unpack into {}: {err}", folder.display())))
}
