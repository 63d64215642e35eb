//! The catalog's agents offered to a model as tools. An agent whose catalog table entry says
//! `offered_as_tool` (quick, writing nothing outside its run, asking no model itself) is described
//! to the model by its name, description and input schema; each call the model makes is a run of
//! that agent through the normal run path ([`runs::execute`]): its own run id, its events, the
//! tenant's run quota, its input checked against its schema. What the model is told back is the
//! run's output, or why it failed, as JSON.
//!
//! Bounds: at most [`MAX_TOOL_RUNS`] runs for one run of the calling agent, and at most
//! [`MAX_RESULT_BYTES`] of a result fed back to the model. A tool run does not use the LLM, so a
//! tool cannot call tools.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::json;

use crate::context::{ToolRun, ToolRunner};
use crate::llm::{Tool, ToolCall};
use crate::outcome::Status;
use crate::runs::{self, RunRequest, Side};
use crate::state::State;

/// The most tool runs one run of the calling agent may make.
pub const MAX_TOOL_RUNS: usize = 8;
/// The most of a tool's result given back to the model; a longer output is cut (and says so).
pub const MAX_RESULT_BYTES: usize = 16 * 1024;

/// The tools of one run: the agents offered, and the runs made so far.
pub struct AgentTools {
    state: Arc<State>,
    tenant: String,
    caller: String,
    bearer: Option<String>,
    deadline: Duration,
    runs: Vec<ToolRun>,
}

impl AgentTools {
    pub fn new(
        state: Arc<State>,
        tenant: String,
        caller: String,
        bearer: Option<String>,
        deadline: Duration,
    ) -> Self {
        Self {
            state,
            tenant,
            caller,
            bearer,
            deadline,
            runs: Vec::new(),
        }
    }

    async fn try_run(&mut self, call: &ToolCall) -> Result<String, String> {
        if self.runs.len() >= MAX_TOOL_RUNS {
            return Err(format!(
                "no more tool calls: at most {MAX_TOOL_RUNS} in one run"
            ));
        }
        let agent = self
            .state
            .catalog
            .get(&call.name)
            .filter(|agent| agent.offered_as_tool())
            .ok_or_else(|| format!("{:?} is not a tool offered", call.name))?
            .clone();
        let (input, problems) = runs::validate(&agent, Side::Input, call.arguments.clone())
            .await
            .map_err(|err| err.to_string())?;
        if !problems.is_empty() {
            let said = sankalpa_kit::schema::joined(&problems);
            return Err(format!("invalid arguments: {said}"));
        }
        let run_id = uuid::Uuid::new_v4().to_string();
        let request = RunRequest {
            agent,
            input,
            tenant: self.tenant.clone(),
            caller: self.caller.clone(),
            bearer: self.bearer.clone(),
            workspace_id: run_id.clone(),
            run_id,
            named: false,
            first_ask: false,
            session_id: None,
            deadline: self.deadline,
            use_llm: false,
            llm: None,
            stream_deltas: false,
        };
        let run = runs::execute(&self.state, request)
            .await
            .map_err(|err| err.to_string())?;
        self.runs.push(ToolRun {
            agent: run.agent.clone(),
            run_id: run.run_id.clone(),
            status: run.status.as_str(),
        });
        let result = match (run.status, run.output, run.error) {
            (Status::Completed, Some(output), _) => json!({"output": output}),
            (_, _, error) => {
                let message = error.map_or_else(|| "the run failed".to_owned(), |e| e.message);
                json!({"error": message})
            }
        };
        Ok(bounded(result.to_string()))
    }
}

impl ToolRunner for AgentTools {
    fn offered(&self) -> Vec<Tool> {
        self.state
            .catalog
            .agents()
            .iter()
            .filter(|agent| agent.offered_as_tool())
            .map(|agent| {
                let spec = agent.spec();
                Tool {
                    name: spec.name.clone(),
                    description: spec.description.clone(),
                    parameters: spec.input.source().clone(),
                }
            })
            .collect()
    }

    // Boxed: a tool run is a run, whose agent could be one that calls tools.
    fn run<'a>(&'a mut self, call: &'a ToolCall) -> BoxFuture<'a, String> {
        Box::pin(async move {
            match self.try_run(call).await {
                Ok(result) => result,
                Err(refusal) => json!({"error": refusal}).to_string(),
            }
        })
    }

    fn runs(&self) -> &[ToolRun] {
        &self.runs
    }
}

/// `result`, cut to [`MAX_RESULT_BYTES`] with a note saying so.
fn bounded(result: String) -> String {
    if result.len() <= MAX_RESULT_BYTES {
        return result;
    }
    let cut = sankalpa_kit::limits::truncate(&result, MAX_RESULT_BYTES);
    format!("{cut} (cut at {MAX_RESULT_BYTES} bytes)")
}
