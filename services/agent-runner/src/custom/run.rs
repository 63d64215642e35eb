//! One run of a custom agent: its template rendered into the run's context (files checked
//! again, now with the input's values in them), or its prompt rendered and asked of the LLM.

use serde_json::{Value, json};

use super::CustomAgent;
use super::compile::Behaviour;
use super::template::{Rendering, TooLarge};
use crate::artifacts::clean_path;
use crate::context::Context;
use crate::error::AgentError;

/// Runs a custom agent, rendering at most `max_output_bytes` (its output, files and prompt
/// together).
pub async fn run(
    agent: &CustomAgent,
    ctx: &mut Context,
    input: &Value,
    max_output_bytes: usize,
) -> Result<Value, AgentError> {
    let too_large = |TooLarge| {
        AgentError::OutputTooLarge(format!(
            "the template rendered more than its bound of {max_output_bytes} bytes \
             (SANKALPA_AGENTS_MAX_TEMPLATE_OUTPUT_BYTES)"
        ))
    };
    let mut rendering = Rendering::new(input, max_output_bytes);
    match &agent.behaviour {
        Behaviour::Template { output, files } => {
            for (path, content) in files {
                let rendered = path.render(&mut rendering).map_err(too_large)?;
                if clean_path(&rendered).is_err() {
                    return Err(AgentError::InvalidInput(format!(
                        "the input makes the file path {rendered:?} leave the run's artifact folder"
                    )));
                }
                ctx.write(
                    &rendered,
                    content.render(&mut rendering).map_err(too_large)?,
                )?;
            }
            output.render(&mut rendering).map_err(too_large)
        }
        Behaviour::Prompt(prompt) => match ctx
            .ask(
                "You are a helpful assistant. Follow the instructions exactly.",
                prompt.render(&mut rendering).map_err(too_large)?,
            )
            .await
        {
            Some(answer) => Ok(json!({"text": answer?.trim()})),
            None => Err(AgentError::Failed(
                "this agent needs an LLM and none is configured (or the caller turned it off)"
                    .to_owned(),
            )),
        },
    }
}
