//! `sankalpa plan`: a project described in words turned into the chain that builds it
//! (`POST /api/nlp/process`), printed, and with `--run` run as `chains run --file` would.

use sankalpa_api::chains::ExecuteChain;
use sankalpa_api::nlp::{CommandContext, PlannedBy, ProcessCommand, ProcessedCommand};
use serde_json::value::{RawValue, to_raw_value};

use crate::agents::Llm;
use crate::chains::{Launch, launch};
use crate::context::Context;
use crate::exit::{self, Failure};
use crate::output::Output;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  sankalpa plan \"a shop with products, orders and customers, with login and payments\"
  sankalpa plan \"a blog with posts and comments, with tests and CI\" --name quill --run
  sankalpa plan \"a todo app\" -o json > todo.chain.json")]
pub struct PlanArgs {
    /// What to build, in words (3 to 5,000 characters).
    command: String,
    /// The project's name; a short slug of the description when absent.
    #[arg(long)]
    name: Option<String>,
    /// `preferred` (the default): a model reads the description when the tenant or the fleet
    /// has one, its reading checked; `off`: the rules only.
    #[arg(long, value_enum)]
    llm: Option<Llm>,
    /// Run the planned chain with its input, then follow it as `chains run` does.
    #[arg(long)]
    run: bool,
    /// With --run: print the new run and return at once.
    #[arg(long, requires = "run")]
    detach: bool,
}

pub async fn run(context: &Context, args: PlanArgs) -> Result<u8, Failure> {
    let client = context.client().await?;
    let body = ProcessCommand {
        command: args.command,
        context: args.name.map(|name| CommandContext {
            project_name: Some(name),
        }),
        llm: args.llm.map(Llm::choice),
    };
    let plan = client.process_command(&body).await?;
    if !args.run {
        context
            .out
            .show(&plan, |_| Vec::new(), |plan| human(&context.out, plan))?;
        return Ok(if plan.execution_ready {
            exit::OK
        } else {
            exit::FAILED
        });
    }
    if !plan.execution_ready {
        eprintln!("{}", human(&context.out, &plan));
        return Err(Failure::Failed(
            "the planned chain cannot run as it is (see its problems above)".to_owned(),
        ));
    }
    eprintln!("{}", human(&context.out, &plan));
    let execute = ExecuteChain {
        chain_id: None,
        version: None,
        template: None,
        definition: Some(raw(&plan.chain)?),
        input: Some(raw(&plan.input)?),
        wait: false,
        wait_timeout_ms: None,
        session_id: None,
    };
    let how = Launch {
        idempotency_key: None,
        follow: false,
        detach: args.detach,
    };
    launch(context, &client, &execute, how).await
}

fn raw(value: &serde_json::Value) -> Result<Box<RawValue>, Failure> {
    to_raw_value(value).map_err(|err| Failure::Failed(format!("cannot send the plan: {err}")))
}

/// What was understood, then one line per step with what it needs.
fn human(out: &Output, plan: &ProcessedCommand) -> String {
    let analysis = &plan.analysis;
    let planned_by = match plan.planned_by {
        PlannedBy::Model => "the model",
        PlannedBy::Rules => "the rules",
    };
    let mut text = format!(
        "{} steps ({}, {} complexity, planned by {planned_by}); entities: {}; features: {}\n",
        analysis.agent_count,
        analysis.chain_type,
        analysis.estimated_complexity,
        list(&analysis.identified_entities),
        list(&analysis.identified_requirements),
    );
    let rows = plan.chain["steps"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .map(|step| {
                    let needs: Vec<&str> = step["needs"]
                        .as_array()
                        .map(|needs| needs.iter().filter_map(|need| need.as_str()).collect())
                        .unwrap_or_default();
                    vec![
                        step["id"].as_str().unwrap_or_default().to_owned(),
                        step["agent"].as_str().unwrap_or_default().to_owned(),
                        list(&needs),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    text.push_str(&out.table(&["step", "agent", "needs"], rows));
    for problem in &plan.violations {
        text.push_str(&format!(
            "\nproblem: {}: {}",
            problem.field, problem.message
        ));
    }
    text
}

fn list<T: AsRef<str>>(items: &[T]) -> String {
    if items.is_empty() {
        return "-".to_owned();
    }
    items
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(", ")
}
