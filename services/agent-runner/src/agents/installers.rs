//! The built-in agents that define custom agents: self_replicator drafts a definition from a
//! description (a model improves the draft when the run has one), plugin_loader takes a given
//! definition document (what the marketplace installs).
//! Either is checked like ValidateAgentDefinition and stored in the run's tenant, through the
//! custom-agent store the run's context carries for them (their catalog entry asks for it, and
//! makes running them need `agents:write`).

use serde_json::{Map, Value, json};

use super::{AgentError, Context};
use crate::custom::compile::{Compiled, compile_apart};
use crate::error::RunnerError;

/// self_replicator: a definition drafted from `description` (and named `name`, if given), or
/// the model's improvement of that draft when it compiles and keeps the draft's name, stored as
/// a new agent; an agent of that name already there fails the run. `method` says which
/// (`llm` or `template`).
pub async fn self_replicator(ctx: &mut Context, input: &Value) -> Result<Value, AgentError> {
    let description = input
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let drafted = draft(description, input.get("name").and_then(Value::as_str));
    let (compiled, method) = match designed(ctx, description, &drafted).await {
        Some(compiled) => (compiled, "llm"),
        None => (compiled(drafted).await?, "template"),
    };
    let mut installed = install(ctx, compiled, String::new(), Existing::Refuse).await?;
    installed["method"] = json!(method);
    Ok(installed)
}

/// The model's improvement of `drafted`, compiled, when the run has a model and its answer is a
/// definition that compiles under the draft's name; otherwise `None`, and the draft stands.
async fn designed(ctx: &mut Context, description: &str, drafted: &Value) -> Option<Compiled> {
    let prompt = format!(
        "Design a Sankalpa custom agent: {description}\n\nThis definition, drafted by rules, \
         is valid. Improve it: input fields with fitting names, JSON Schema types and \
         descriptions, a more useful output and template. Keep its name, category, version \
         and JSON shape; templates use {{{{ field }}}} placeholders and the filters the draft \
         uses.\n\n{}\n\nAnswer with only the JSON definition.",
        serde_json::to_string_pretty(drafted).unwrap_or_default()
    );
    let read = |answer: &str| {
        let definition: Value = serde_json::from_str(super::unfenced(answer))
            .map_err(|err| format!("not JSON: {err}"))?;
        if definition.get("name") == drafted.get("name") {
            Ok(definition)
        } else {
            Err("it renames the agent".to_owned())
        }
    };
    let definition = ctx
        .ask_for(
            "You design agents as JSON definitions that compile.",
            prompt,
            read,
        )
        .await?;
    compiled(definition)
        .await
        .inspect_err(|err| {
            tracing::warn!(error = %err, "the model's definition was refused; installing the draft")
        })
        .ok()
}

/// plugin_loader: the given `definition`, stored as a new agent or replacing the tenant's agent
/// of that name, remembered as `installed_from` (a marketplace item and version).
pub async fn plugin_loader(ctx: &mut Context, input: &Value) -> Result<Value, AgentError> {
    let installed_from = input
        .get("installed_from")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let definition = input.get("definition").cloned().unwrap_or(Value::Null);
    install(
        ctx,
        compiled(definition).await?,
        installed_from,
        Existing::Replace,
    )
    .await
}

/// What an install does when the tenant has an agent of the same name.
#[derive(PartialEq, Eq)]
enum Existing {
    Refuse,
    Replace,
}

/// `definition` checked as ValidateAgentDefinition checks it, and compiled.
async fn compiled(definition: Value) -> Result<Compiled, AgentError> {
    let (definition, compiled) = compile_apart(definition)
        .await
        .map_err(|err| AgentError::Failed(err.to_string()))?;
    let (spec, behaviour) = compiled.map_err(|problems| {
        AgentError::InvalidInput(format!(
            "the definition is not valid: {}",
            sankalpa_kit::schema::joined(&problems)
        ))
    })?;
    Ok(Compiled {
        spec,
        behaviour,
        definition,
    })
}

/// Stores `compiled` in the run's tenant.
async fn install(
    ctx: &mut Context,
    compiled: Compiled,
    installed_from: String,
    existing: Existing,
) -> Result<Value, AgentError> {
    let Some(agents) = &ctx.custom_agents else {
        return Err(AgentError::Failed(
            "the run was given no custom-agent store".to_owned(),
        ));
    };
    if agents.store.is_builtin(&compiled.spec.name) {
        return Err(AgentError::InvalidInput(format!(
            "{} is the name of a built-in agent",
            compiled.spec.name
        )));
    }
    let name = compiled.spec.name.clone();
    let definition = compiled.definition.clone();
    let (store, tenant) = (&agents.store, agents.tenant);
    let stored = match store.exists(tenant, &name).await {
        Ok(false) => store
            .create(tenant, compiled, &agents.caller, &installed_from)
            .await
            .map(|agent| (agent, "installed")),
        Ok(true) if existing == Existing::Replace => store
            .update(tenant, compiled, None, &installed_from)
            .await
            .map(|agent| (agent, "updated")),
        Ok(true) => Err(RunnerError::AlreadyExists(format!(
            "an agent named {name} already exists"
        ))),
        Err(err) => Err(err),
    };
    let (agent, action) = stored.map_err(|err| match err {
        RunnerError::AlreadyExists(message) => AgentError::Failed(message),
        RunnerError::Invalid(violations) => AgentError::InvalidInput(
            violations
                .iter()
                .map(|v| format!("{}: {}", v.field, v.message))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        RunnerError::Unavailable(message) => AgentError::Unavailable(message),
        other => {
            tracing::error!(error = %other, "could not store a custom agent");
            AgentError::Failed("the agent could not be stored".to_owned())
        }
    })?;
    Ok(
        json!({"agent": agent.spec.name, "revision": agent.revision, "action": action, "definition": definition}),
    )
}

/// A definition drafted from a description (self_replicator): the input fields it names after
/// "given", "takes", "from" or "with", and a template that reports them back in a summary and a
/// Markdown note. Deterministic, so the same description always makes the same agent.
pub fn draft(description: &str, name: Option<&str>) -> Value {
    let lower = description.to_lowercase();
    let name = name.map(str::to_owned).unwrap_or_else(|| {
        let words: Vec<String> = lower
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| {
                w.len() > 2
                    && ![
                        "the", "and", "that", "agent", "which", "given", "takes", "from", "with",
                    ]
                    .contains(w)
            })
            .take(3)
            .map(str::to_owned)
            .collect();
        let joined = words.join("_");
        if joined
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase())
        {
            joined
        } else {
            format!("agent_{joined}")
        }
    });
    let after = ["given ", "takes ", "from ", "with "]
        .iter()
        .find_map(|m| lower.split_once(m).map(|(_, rest)| rest.to_owned()));
    let mut fields: Vec<String> = after
        .map(|rest| {
            let rest = [
                "and returns",
                "returns",
                "and produces",
                "produces",
                "and writes",
                "then",
                ".",
            ]
            .iter()
            .fold(rest, |acc, stop| {
                acc.split(stop).next().unwrap_or_default().to_owned()
            });
            rest.split([',', ';'])
                .flat_map(|part| part.split(" and "))
                .map(|f| {
                    f.trim()
                        .trim_start_matches("a ")
                        .trim_start_matches("an ")
                        .trim_start_matches("the ")
                        .replace([' ', '-'], "_")
                })
                .map(|f| {
                    f.chars()
                        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect::<String>()
                })
                .filter(|f| f.chars().next().is_some_and(|c| c.is_ascii_lowercase()))
                .take(10)
                .collect()
        })
        .unwrap_or_default();
    fields.dedup();
    if fields.is_empty() {
        fields.push("text".to_owned());
    }
    let properties: Map<String, Value> = fields
        .iter()
        .map(|f| (f.clone(), json!({"type": "string"})))
        .collect();
    let listing: String = fields
        .iter()
        .map(|f| format!("- {f}: {{{{ {f} }}}}\n"))
        .collect();
    let summary: Vec<String> = fields
        .iter()
        .map(|f| format!("{f}={{{{ {f} }}}}"))
        .collect();
    json!({
        "name": name,
        "category": "custom",
        "description": description,
        "version": "1.0.0",
        "input_schema": {"type": "object", "required": fields, "properties": properties},
        "output_schema": {"type": "object", "required": ["summary"], "properties": {"summary": {"type": "string"}}},
        "template": {
            "output": {"summary": format!("{name}: {}", summary.join(", "))},
            "files": [{"path": format!("{name}/{{{{ {} | slug }}}}.md", fields[0]), "content": format!("# {name}\n\n{description}\n\n{listing}")}]
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::custom::compile::compile;

    #[test]
    fn a_description_drafts_a_valid_agent() {
        let definition = draft(
            "Summarises meeting notes given a title, the attendees and notes, and returns action items.",
            None,
        );
        let (spec, _) = compile(&definition).unwrap();
        assert_eq!(spec.name, "summarises_meeting_notes");
        assert_eq!(
            definition["input_schema"]["required"],
            json!(["title", "attendees", "notes"])
        );
    }
}
