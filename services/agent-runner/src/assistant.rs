//! The chat assistant (`Converse`): the console's reply to a conversation about what to build.
//!
//! The plan itself is the planner's (the gateway asks it, as `/api/nlp/process` does, and
//! passes it here): the assistant only says it. Without an LLM, or with `llm` OFF, the reply is
//! [`summary`], built from the plan (what was understood: entities, features; what will run: the
//! agents in order, and what was left out), sent a line at a time. With an LLM (the tenant's
//! default model, else the fleet's), the model writes the reply, token by token, given the
//! conversation and that same summary to keep it to the plan; its tokens count into the
//! tenant's tokens of the day. An LLM that fails before its first token is replaced by the
//! summary, as LLM-capable agents fall back; one that fails after it ends the reply with the
//! error, since its text has been given already.

use std::sync::Arc;

use sankalpa_proto::v1 as pb;
use serde_json::Value;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::error::RunnerError;
use crate::llm::{LlmClient, LlmError, Message};
use crate::state::State;

/// The most turns a conversation sent to Converse holds (the latest ones).
pub const MAX_TURNS: usize = 50;
/// The longest turn, in characters.
pub const MAX_TURN_CHARS: usize = 8000;
/// The most characters the turns hold together.
pub const MAX_CONVERSATION_CHARS: usize = 100_000;
/// The largest plan, in bytes of JSON.
pub const MAX_PLAN_BYTES: usize = 1024 * 1024;
/// The longest note on a missing plan, in characters.
pub const MAX_NOTE_CHARS: usize = 2000;

/// Who wrote a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

/// A conversation to answer, checked on receipt.
pub struct Conversation {
    turns: Vec<(Role, String)>,
    /// The planner's plan for the last turn (`POST /api/nlp/process`'s answer).
    plan: Option<Value>,
    /// Why there is no plan, when there is none.
    note: String,
    pub use_llm: bool,
}

impl TryFrom<pb::ConverseRequest> for Conversation {
    type Error = RunnerError;

    fn try_from(request: pb::ConverseRequest) -> Result<Self, RunnerError> {
        if request.turns.is_empty() || request.turns.len() > MAX_TURNS {
            return Err(RunnerError::invalid(
                "turns",
                format!("must hold 1 to {MAX_TURNS} turns"),
            ));
        }
        let mut total = 0;
        let mut turns = Vec::with_capacity(request.turns.len());
        for (i, turn) in request.turns.into_iter().enumerate() {
            let role = match pb::ChatRole::try_from(turn.role) {
                Ok(pb::ChatRole::User) => Role::User,
                Ok(pb::ChatRole::Assistant) => Role::Assistant,
                _ => {
                    return Err(RunnerError::invalid(
                        format!("turns[{i}].role"),
                        "must be USER or ASSISTANT",
                    ));
                }
            };
            let chars = turn.text.chars().count();
            if chars == 0 || chars > MAX_TURN_CHARS {
                return Err(RunnerError::invalid(
                    format!("turns[{i}].text"),
                    format!("must be 1 to {MAX_TURN_CHARS} characters"),
                ));
            }
            total += chars;
            turns.push((role, turn.text));
        }
        if total > MAX_CONVERSATION_CHARS {
            return Err(RunnerError::invalid(
                "turns",
                format!("must hold at most {MAX_CONVERSATION_CHARS} characters in all"),
            ));
        }
        if turns.last().map(|(role, _)| *role) != Some(Role::User) {
            return Err(RunnerError::invalid(
                format!("turns[{}].role", turns.len() - 1),
                "the last turn must be the user's",
            ));
        }
        if request.plan_json.len() > MAX_PLAN_BYTES {
            return Err(RunnerError::invalid(
                "plan_json",
                format!("must be at most {MAX_PLAN_BYTES} bytes"),
            ));
        }
        let plan = if request.plan_json.trim().is_empty() {
            None
        } else {
            Some(
                serde_json::from_str(&request.plan_json)
                    .map_err(|err| RunnerError::invalid("plan_json", format!("not JSON: {err}")))?,
            )
        };
        if request.plan_note.chars().count() > MAX_NOTE_CHARS {
            return Err(RunnerError::invalid(
                "plan_note",
                format!("must be at most {MAX_NOTE_CHARS} characters"),
            ));
        }
        Ok(Self {
            turns,
            plan,
            note: request.plan_note,
            use_llm: request.llm != pb::LlmMode::Off as i32,
        })
    }
}

/// How a reply was written.
#[derive(Debug, Default)]
pub struct Written {
    pub llm_used: bool,
    pub model: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// Writes the reply to `conversation` to `deltas`, piece by piece, by `llm` when there is one
/// (the tenant's default model, else the fleet's). Stops early, without error, when `deltas`
/// is closed.
pub async fn reply(
    state: &State,
    tenant: Uuid,
    conversation: Conversation,
    llm: Option<Arc<LlmClient>>,
    deltas: &mpsc::Sender<String>,
) -> Result<Written, RunnerError> {
    let summary = summary(conversation.plan.as_ref(), &conversation.note);
    if let Some(llm) = llm {
        let mut messages = vec![Message::system(format!(
            "You are the assistant of Sankalpa, a platform whose agents build software. The \
             platform's planner read the user's last message; what it understood and planned is \
             below. Answer the user in a few sentences of Markdown: say what will be built and \
             which agents will run, in order, and that they may confirm to run it. Do not add \
             steps the plan does not have. When there is no plan, say why and ask what they \
             want built.\n\n{summary}"
        ))];
        messages.extend(
            conversation
                .turns
                .into_iter()
                .map(|(role, text)| match role {
                    Role::User => Message::user(text),
                    Role::Assistant => Message::assistant(text),
                }),
        );
        let (forward, mut written) = mpsc::channel::<String>(16);
        // Owns the LLM's side of the channel: once the caller has gone, it ends and drops it,
        // so that the LLM's next piece finds nobody and the call stops.
        let relay = async move {
            let mut started = false;
            while let Some(text) = written.recv().await {
                started = true;
                if deltas.send(text).await.is_err() {
                    break;
                }
            }
            started
        };
        let ask = async {
            let completion = llm.chat_stream(&messages, &forward).await;
            drop(forward);
            completion
        };
        let (completion, started) = tokio::join!(ask, relay);
        match completion {
            Ok(completion) => {
                state.tokens.record_or_log(tenant, &completion).await;
                return Ok(Written {
                    llm_used: true,
                    model: completion.model,
                    prompt_tokens: completion.prompt_tokens,
                    completion_tokens: completion.completion_tokens,
                });
            }
            Err(err) if started => return Err(interrupted(&err)),
            Err(err) => {
                tracing::warn!(error = %err, "the LLM could not write the chat reply: the summary answers");
            }
        }
    }
    for line in summary.split_inclusive('\n') {
        if deltas.send(line.to_owned()).await.is_err() {
            break;
        }
    }
    Ok(Written::default())
}

fn interrupted(err: &LlmError) -> RunnerError {
    RunnerError::Unavailable(format!("the LLM stopped in the middle of the reply: {err}"))
}

/// The deterministic reply: what the plan understood, what it will run in order, what it left
/// out, and whether it runs as it is; or why there is no plan.
pub fn summary(plan: Option<&Value>, note: &str) -> String {
    let Some(plan) = plan else {
        let why = if note.trim().is_empty() {
            "I could not make a plan of that.".to_owned()
        } else {
            format!(
                "I could not make a plan of that: {}.",
                note.trim_end_matches('.')
            )
        };
        return format!(
            "{why}\n\nDescribe a project for the agents to build, for example *a shop backend \
             with products, orders and customers, with login and payments*.\n"
        );
    };
    let analysis = &plan["analysis"];
    let names = |value: &Value| -> Vec<String> {
        value
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let listed = |items: Vec<String>| {
        if items.is_empty() {
            "none named".to_owned()
        } else {
            items.join(", ")
        }
    };
    let mut text = String::from("Here is what I understood:\n\n");
    text += &format!(
        "- **Entities:** {}\n",
        listed(names(&analysis["identified_entities"]))
    );
    text += &format!(
        "- **Features:** {}\n",
        listed(names(&analysis["identified_requirements"]))
    );
    if let Some(complexity) = analysis["estimated_complexity"].as_str() {
        text += &format!("- **Complexity:** {complexity}\n");
    }
    let steps = plan["chain"]["steps"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    text += &format!(
        "\nI will run {} agent{}, in this order:\n\n",
        steps.len(),
        if steps.len() == 1 { "" } else { "s" }
    );
    for (i, step) in steps.iter().enumerate() {
        let agent = step["agent"].as_str().unwrap_or("a sub-chain");
        let needs = names(&step["needs"]);
        text += &format!("{}. `{agent}`", i + 1);
        if !needs.is_empty() {
            let after: Vec<String> = needs.iter().map(|id| format!("`{id}`")).collect();
            text += &format!(" (after {})", after.join(", "));
        }
        text.push('\n');
    }
    let left_out = plan["not_in_chain"].as_array().cloned().unwrap_or_default();
    if !left_out.is_empty() {
        text += "\nLeft out:\n\n";
        for item in left_out {
            let agent = item["agent"].as_str().unwrap_or("an agent");
            let why = item["why"]
                .as_str()
                .unwrap_or("it needs what the request does not give");
            text += &format!("- `{agent}`: {why}\n");
        }
    }
    if plan["execution_ready"].as_bool() == Some(true) {
        text += "\nConfirm to run the plan.\n";
    } else {
        text += "\nThe plan cannot run as it is:\n\n";
        for violation in plan["violations"].as_array().cloned().unwrap_or_default() {
            text += &format!(
                "- `{}`: {}\n",
                violation["field"].as_str().unwrap_or_default(),
                violation["message"].as_str().unwrap_or_default()
            );
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_summary_says_what_was_understood_and_what_runs_in_order() {
        let plan = json!({
            "analysis": {
                "identified_entities": ["Product", "Order"],
                "identified_requirements": ["app", "auth"],
                "estimated_complexity": "medium",
            },
            "chain": {"steps": [
                {"id": "db_schema", "agent": "db_schema", "needs": []},
                {"id": "backend_builder", "agent": "backend_builder", "needs": ["db_schema"]},
            ]},
            "not_in_chain": [{"agent": "deploy_executor", "why": "no domain given"}],
            "execution_ready": true,
            "violations": [],
        });
        let text = summary(Some(&plan), "");
        assert!(text.contains("**Entities:** Product, Order"), "{text}");
        assert!(text.contains("**Features:** app, auth"), "{text}");
        assert!(text.contains("run 2 agents"), "{text}");
        let first = text.find("1. `db_schema`").expect("db_schema first");
        let second = text
            .find("2. `backend_builder` (after `db_schema`)")
            .expect("backend_builder second");
        assert!(first < second);
        assert!(
            text.contains("`deploy_executor`: no domain given"),
            "{text}"
        );
        assert!(text.ends_with("Confirm to run the plan.\n"), "{text}");
    }

    #[test]
    fn without_a_plan_the_summary_says_why() {
        let text = summary(None, "the goal names nothing this platform builds.");
        assert!(text.starts_with(
            "I could not make a plan of that: the goal names nothing this platform builds."
        ));
    }
}
