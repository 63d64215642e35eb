//! `/api/nlp/process`, the seed's NLP router: a project described in words turned into the chain
//! that builds it. The plan is the catalog's `planner` agent's (agent-runner: a model reads the
//! command for entities, features and agents when one is configured, its reading checked, the
//! rules otherwise), run as the caller; the chain it
//! proposes is then checked by the orchestrator as `POST /api/chains/validate` would, so
//! `execution_ready` says whether `POST /api/chains/execute` takes it as it is. Nothing is
//! stored: the planner's run is kept by agent-runner as any agent run is, no chain is saved.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use sankalpa_api::agents::LlmChoice;
use sankalpa_api::nlp::{
    CommandAnalysis, MAX_COMMAND_CHARS, PlannedBy, ProcessCommand, ProcessedCommand,
};
use sankalpa_kit::problem::{FieldViolation, Problem};
use sankalpa_proto::v1;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::authn::Caller;
use crate::json::{Body, renamed};

const PLANNER: &str = "planner";
const AGENT_RUNNER: &str = "agent-runner";
/// The planner's own bounds on a project name (its input schema's).
const MAX_PROJECT_NAME_CHARS: usize = 100;

pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(process))
}

/// Turns a project described in words into a chain that builds it, with the input to run it
/// with and what was understood; stores nothing.
#[utoipa::path(
    post,
    path = "/api/nlp/process",
    tag = "nlp",
    request_body = ProcessCommand,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The plan: a chain, its input, the analysis, and whether it runs as is", body = ProcessedCommand),
        (status = 400, description = "`command` is not 3 to 5,000 characters, names nothing the platform builds, or `context.project_name` is out of bounds", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing agents:execute or chains:read", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn process(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(body): Body<ProcessCommand>,
) -> Result<axum::Json<ProcessedCommand>, Problem> {
    caller.require("agents:execute")?;
    caller.require("chains:read")?;
    let project_name = body.context.and_then(|context| context.project_name);
    let llm = match body.llm {
        Some(LlmChoice::Off) => v1::LlmMode::Off,
        Some(LlmChoice::Preferred) | None => v1::LlmMode::Preferred,
    };
    Ok(axum::Json(
        plan_command(&state, &caller, &body.command, project_name.as_deref(), llm).await?,
    ))
}

/// The plan of `command` (and the project's name, when given), read by a model when `llm`
/// allows and one is configured, checked by the orchestrator: what `/api/nlp/process`
/// answers, and what the chat's assistant says. The caller needs agents:execute and
/// chains:read.
pub async fn plan_command(
    state: &AppState,
    caller: &Caller,
    command: &str,
    project_name: Option<&str>,
    llm: v1::LlmMode,
) -> Result<ProcessedCommand, Problem> {
    let command = command.trim();
    if !(3..=MAX_COMMAND_CHARS).contains(&command.chars().count()) {
        return Err(Problem::invalid(
            "command",
            format!("must be 3 to {MAX_COMMAND_CHARS} characters once trimmed"),
        ));
    }
    let mut goal = json!({ "goal": command });
    if let Some(name) = project_name {
        let name = name.trim();
        if !(1..=MAX_PROJECT_NAME_CHARS).contains(&name.chars().count()) {
            return Err(Problem::invalid(
                "context.project_name",
                format!("must be 1 to {MAX_PROJECT_NAME_CHARS} characters once trimmed"),
            ));
        }
        goal["project_name"] = json!(name);
    }
    let plan = plan(state, caller, goal, llm).await?;
    let chain = plan.get("chain").cloned().unwrap_or(Value::Null);
    let checked = state
        .chains()
        .validate_chain(state.request_as(
            caller,
            v1::ValidateChainRequest {
                definition_json: chain.to_string(),
            },
        )?)
        .await
        .map_err(|status| {
            renamed(status, |field| {
                field.replacen("definition_json", "chain", 1)
            })
        })?
        .into_inner();
    let analysis: CommandAnalysis = serde_json::from_value(plan["analysis"].clone())
        .map_err(|err| unexpected(format!("the planner's analysis: {err}")))?;
    let planned_by: PlannedBy = serde_json::from_value(plan["planned_by"].clone())
        .map_err(|err| unexpected(format!("the planner's planned_by: {err}")))?;
    Ok(ProcessedCommand {
        input: plan.get("input").cloned().unwrap_or_else(|| json!({})),
        not_in_chain: plan["not_in_chain"].as_array().cloned().unwrap_or_default(),
        planned_by,
        chain,
        analysis,
        execution_ready: checked.valid,
        violations: checked
            .violations
            .into_iter()
            .map(|violation| FieldViolation {
                field: format!("chain.{}", violation.field),
                message: violation.message,
            })
            .collect(),
    })
}

/// The planner's output for `goal`, run as the caller. A command the planner cannot read as a
/// project is the caller's mistake (400 naming `command`); any other failure is agent-runner's.
async fn plan(
    state: &AppState,
    caller: &Caller,
    goal: Value,
    llm: v1::LlmMode,
) -> Result<Value, Problem> {
    let run = state
        .agents()
        .execute_agent(state.request_as(
            caller,
            v1::ExecuteAgentRequest {
                agent: PLANNER.to_owned(),
                input_json: goal.to_string(),
                llm: llm.into(),
                ..Default::default()
            },
        )?)
        .await
        .map_err(|status| {
            renamed(status, |field| {
                field.replacen("input.goal", "command", 1).replacen(
                    "input.project_name",
                    "context.project_name",
                    1,
                )
            })
        })?
        .into_inner();
    if run.status() != v1::AgentRunStatus::Completed {
        let error = run.error.unwrap_or_default();
        return Err(if error.code == "invalid_input" {
            Problem::invalid("command", error.message)
        } else {
            unexpected(format!("the planner {}: {}", error.code, error.message))
        });
    }
    serde_json::from_str(&run.output_json)
        .map_err(|err| unexpected(format!("the planner's output is not JSON: {err}")))
}

/// 502: agent-runner answered something this route cannot use.
fn unexpected(detail: String) -> Problem {
    tracing::error!(service = AGENT_RUNNER, %detail, "an unusable plan");
    Problem::new(
        StatusCode::BAD_GATEWAY,
        "agent-runner's planner answered a plan this route cannot use",
    )
}
