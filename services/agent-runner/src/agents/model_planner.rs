//! The planner's model path: when the run may use an LLM, the model reads the request instead
//! of the rules. It is asked for its reading as one JSON object (the agents with why, the
//! features, the entities with typed fields), which is checked here against what the platform
//! has (every agent one the planner plans, every feature known, every entity one the builders
//! take); an answer that fails is sent back with its problems, at most [`MAX_ASKS`] times in all.
//! A checked reading is assembled by [`planning::assemble`] like the rules' own, so the chain,
//! its needs and its input are built the same way whoever read the request. When the model
//! keeps failing, or fails to answer, the rules plan, and the plan says who read it
//! (`planned_by`).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::{Value, json};

use super::planning::{self, Entity, MAX_ENTITIES, ORDER, PlanInput, Reading, Reasons};
use super::project::{FEATURES, FieldType, Project};
use super::{AgentError, Context};
use crate::llm::{Ask, Message};

/// How many times the model is asked, the first included, before the rules plan.
pub const MAX_ASKS: usize = 3;
/// The most fields the model may give one entity.
const MAX_FIELDS: usize = 30;
/// The longest entity or field name taken from the model: `<name>_id` in the entities that refer
/// to it stays within the builders' 63 characters.
const MAX_NAME_CHARS: usize = 40;
/// The longest reason kept for an agent.
const MAX_WHY_CHARS: usize = 200;

/// The plan of the request: the model's reading when the run has an LLM and the model gives a
/// valid one within [`MAX_ASKS`], else the rules'.
pub async fn plan(ctx: &mut Context, raw: &Value) -> Result<Value, AgentError> {
    let input = planning::plan_input(raw)?;
    if ctx.has_llm() {
        let mut problems: Option<String> = None;
        for _ in 0..MAX_ASKS {
            let messages = [
                Message::system(system_prompt()),
                Message::user(user_prompt(&input, problems.as_deref())),
            ];
            let shaped = Ask::Shaped {
                name: "plan_reading",
                schema: reading_schema(),
            };
            let Some(answer) = ctx.ask_as(&messages, shaped).await else {
                break;
            };
            let text = match answer {
                Ok(text) => text,
                // Out of tokens for the day: the tenant's limit, said as it is.
                Err(err @ AgentError::QuotaExceeded(_)) => return Err(err),
                Err(err) => {
                    tracing::warn!(error = %err, "the model could not plan: the rules plan");
                    break;
                }
            };
            match reading(&input, &text) {
                Ok(reading) => return Ok(planning::assemble(&input, reading, "model")),
                Err(why) => problems = Some(why),
            }
        }
        if let Some(why) = problems {
            tracing::info!(%why, "the model's plans were refused: the rules plan");
        }
    }
    planning::plan(raw)
}

fn system_prompt() -> String {
    static PROMPT: OnceLock<String> = OnceLock::new();
    PROMPT
        .get_or_init(|| {
            let catalog: Value = serde_json::from_str(crate::catalog::EMBEDDED)
                .expect("the embedded catalog is JSON");
            let descriptions: BTreeMap<&str, &str> = catalog["agents"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|agent| Some((agent["name"].as_str()?, agent["description"].as_str()?)))
                .collect();
            let agents: String = ORDER
                .iter()
                .map(|agent| {
                    format!(
                        "- {agent}: {}\n",
                        descriptions.get(agent).copied().unwrap_or("")
                    )
                })
                .collect();
            let features: Vec<&str> = planning::known_features().collect();
            format!(
                "You plan software projects. Read the user's request and answer with one JSON \
                 object and nothing else, of this shape:\n\
                 {{\"agents\": [{{\"agent\": \"<agent>\", \"why\": \"<one sentence>\"}}], \
                 \"features\": [\"<feature>\"], \"entities\": [{{\"name\": \"<PascalCase>\", \
                 \"fields\": [{{\"name\": \"<snake_case>\", \"type\": \"<type>\"}}]}}]}}\n\
                 Choose only the agents the request needs, from these:\n{agents}\
                 Features, only those asked for: {}.\n\
                 Entities: 1 to {MAX_ENTITIES}, the things the project stores, each with up to \
                 {MAX_FIELDS} fields besides id, created_at and updated_at (which every table \
                 has). Field types: {}; a reference also names its entity: \
                 {{\"name\": \"customer\", \"type\": \"reference\", \"entity\": \"Customer\"}}. \
                 Names are at most {MAX_NAME_CHARS} characters and no Python keyword.",
                features.join(", "),
                FieldType::NAMES.join(", "),
            )
        })
        .clone()
}

/// The JSON Schema of the reading asked for: its shape and the names it may use; what a schema
/// cannot say (a reference's entity is one of the entities) is checked by [`reading`].
fn reading_schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let features: std::collections::BTreeSet<&str> = planning::known_features().collect();
        let name = json!({"type": "string", "minLength": 1, "maxLength": MAX_NAME_CHARS});
        json!({
            "type": "object",
            "properties": {
                "agents": {"type": "array", "minItems": 1, "items": {
                    "type": "object",
                    "properties": {"agent": {"enum": ORDER}, "why": {"type": "string"}},
                    "required": ["agent", "why"],
                    "additionalProperties": false,
                }},
                "features": {"type": "array", "items": {"enum": features}},
                "entities": {"type": "array", "minItems": 1, "maxItems": MAX_ENTITIES, "items": {
                    "type": "object",
                    "properties": {
                        "name": name,
                        "fields": {"type": "array", "maxItems": MAX_FIELDS, "items": {
                            "type": "object",
                            "properties": {
                                "name": name,
                                "type": {"enum": FieldType::NAMES},
                                "entity": name,
                            },
                            "required": ["name", "type"],
                            "additionalProperties": false,
                        }},
                    },
                    "required": ["name", "fields"],
                    "additionalProperties": false,
                }},
            },
            "required": ["agents", "features", "entities"],
            "additionalProperties": false,
        })
    })
}

fn user_prompt(input: &PlanInput, problems: Option<&str>) -> String {
    let mut prompt = format!("Request: {}", input.goal.trim());
    if let Some(name) = input.project_name.as_deref() {
        prompt.push_str(&format!("\nProject name: {name}"));
    }
    if let Some(problems) = problems {
        prompt.push_str(&format!(
            "\nYour previous answer was refused: {problems}. Answer again with the corrected \
             JSON object only."
        ));
    }
    prompt
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    agents: Vec<ChosenAgent>,
    #[serde(default)]
    features: Vec<String>,
    entities: Vec<AnswerEntity>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChosenAgent {
    agent: String,
    #[serde(default)]
    why: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerEntity {
    name: String,
    #[serde(default)]
    fields: Vec<AnswerField>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerField {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    entity: Option<String>,
}

/// The model's answer checked into a reading, or every problem found, said for the model.
pub(super) fn reading(input: &PlanInput, text: &str) -> Result<Reading, String> {
    let answer: Answer = serde_json::from_str(super::unfenced(text))
        .map_err(|err| format!("not the JSON object asked for: {err}"))?;
    let mut problems = Vec::new();

    let mut chosen: Vec<&'static str> = Vec::new();
    let mut reasons = Reasons::new();
    for picked in &answer.agents {
        match ORDER.iter().find(|agent| **agent == picked.agent) {
            Some(agent) if !chosen.contains(agent) => {
                chosen.push(agent);
                let why = picked.why.trim();
                let why = if why.is_empty() {
                    "the model chose it".to_owned()
                } else {
                    why.chars().take(MAX_WHY_CHARS).collect()
                };
                reasons.insert(agent, why);
            }
            Some(_) => {}
            None => problems.push(format!(
                "{:?} is not one of the agents listed",
                picked.agent
            )),
        }
    }
    if answer.agents.is_empty() {
        problems.push("agents is empty".to_owned());
    }

    let known: Vec<&'static str> = planning::known_features().collect();
    let mut features: Vec<&'static str> = Vec::new();
    for feature in &answer.features {
        match known.iter().find(|known| **known == feature.as_str()) {
            Some(known) if !features.contains(known) => features.push(known),
            Some(_) => {}
            None => problems.push(format!("{feature:?} is not one of the features listed")),
        }
    }
    // The builders refuse roles without the users auth creates.
    if features.contains(&"roles") && !features.contains(&"auth") {
        features.push("auth");
    }

    if answer.entities.is_empty() || answer.entities.len() > MAX_ENTITIES {
        problems.push(format!("entities must list 1 to {MAX_ENTITIES}"));
    }
    let mut entities = Vec::new();
    for entity in &answer.entities {
        if !identifier(
            &entity.name,
            char::is_ascii_uppercase,
            char::is_ascii_alphanumeric,
        ) {
            problems.push(format!(
                "entity name {:?} must be PascalCase letters and digits, at most {MAX_NAME_CHARS}",
                entity.name
            ));
        }
        if entity.fields.len() > MAX_FIELDS {
            problems.push(format!("{} has more than {MAX_FIELDS} fields", entity.name));
        }
        let mut fields = Vec::new();
        for field in &entity.fields {
            let snake_char = |c: &char| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_';
            if !identifier(&field.name, char::is_ascii_lowercase, snake_char) {
                problems.push(format!(
                    "{}.{} must be snake_case, at most {MAX_NAME_CHARS} characters",
                    entity.name, field.name
                ));
            }
            if !FieldType::NAMES.contains(&field.kind.as_str()) {
                problems.push(format!(
                    "{}.{} has the type {:?}, not one of {}",
                    entity.name,
                    field.name,
                    field.kind,
                    FieldType::NAMES.join(", ")
                ));
            }
            let mut value = json!({"name": field.name, "type": field.kind});
            if let Some(target) = &field.entity {
                value["entity"] = json!(target);
            }
            fields.push(value);
        }
        entities.push(Entity {
            name: entity.name.clone(),
            singular: super::project::snake(&entity.name),
            fields,
        });
    }
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    // What the builders would refuse (a reserved name, a reference to no entity, two entities
    // on one table...), found now rather than when the chain runs.
    let project = json!({
        "project_name": input.project_name.as_deref().unwrap_or("project"),
        "entities": entities.iter().map(|e| json!({"name": e.name, "fields": e.fields})).collect::<Vec<_>>(),
        "features": FEATURES.iter().filter(|f| features.contains(f)).collect::<Vec<_>>(),
    });
    Project::from_input(&project).map_err(|err| err.to_string())?;
    Ok(Reading {
        features,
        chosen,
        reasons,
        entities,
        named: true,
    })
}

/// Whether `name` is 1 to [`MAX_NAME_CHARS`] characters, the first passing `first` and every
/// other `rest`.
fn identifier(name: &str, first: fn(&char) -> bool, rest: impl Fn(&char) -> bool) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| first(&c))
        && name.chars().count() <= MAX_NAME_CHARS
        && chars.all(|c| rest(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(goal: &str) -> PlanInput {
        PlanInput {
            goal: goal.to_owned(),
            project_name: None,
        }
    }

    #[test]
    fn a_valid_answer_is_read_with_its_agents_features_and_entities() {
        let answer = r#"```json
        {"agents": [{"agent": "backend_builder", "why": "an API"}, {"agent": "db_schema"}],
         "features": ["api", "auth"],
         "entities": [
           {"name": "Venue", "fields": [{"name": "title", "type": "string"}]},
           {"name": "Gig", "fields": [{"name": "venue", "type": "reference", "entity": "Venue"},
                                      {"name": "starts_at", "type": "datetime"}]}
         ]}
        ```"#;
        let reading = reading(&input("gigs at venues"), answer).unwrap();
        assert_eq!(reading.chosen, ["backend_builder", "db_schema"]);
        assert_eq!(reading.reasons["backend_builder"], "an API");
        assert_eq!(reading.reasons["db_schema"], "the model chose it");
        assert_eq!(reading.features, ["api", "auth"]);
        let names: Vec<&str> = reading.entities.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["Venue", "Gig"]);
        assert_eq!(reading.entities[1].singular, "gig");
    }

    #[test]
    fn every_problem_of_an_answer_is_said() {
        let refused = |answer: &str| match reading(&input("a shop"), answer) {
            Ok(_) => panic!("accepted: {answer}"),
            Err(why) => why,
        };
        assert!(refused("Sure! Here is your plan.").contains("not the JSON object"));
        let many = refused(
            r#"{"agents": [{"agent": "make_coffee"}], "features": ["teleport"],
                "entities": [{"name": "order items", "fields": [{"name": "Price", "type": "money"}]}]}"#,
        );
        for expected in ["make_coffee", "teleport", "order items", "Price", "money"] {
            assert!(many.contains(expected), "{expected}: {many}");
        }
        assert!(refused(r#"{"agents": [], "entities": []}"#).contains("agents is empty"));
        // What only the builders know: a reserved field, a reference to nothing.
        let reserved = refused(
            r#"{"agents": [{"agent": "db_schema"}],
                "entities": [{"name": "Shop", "fields": [{"name": "class", "type": "string"}]}]}"#,
        );
        assert!(reserved.contains("reserved"), "{reserved}");
        let dangling = refused(
            r#"{"agents": [{"agent": "db_schema"}],
                "entities": [{"name": "Shop", "fields": [{"name": "owner", "type": "reference", "entity": "Owner"}]}]}"#,
        );
        assert!(dangling.contains("entity"), "{dangling}");
    }

    #[test]
    fn the_prompt_lists_every_plannable_agent_with_its_description() {
        let prompt = system_prompt();
        for agent in ORDER {
            let line = prompt
                .lines()
                .find(|line| line.starts_with(&format!("- {agent}: ")))
                .unwrap_or_else(|| panic!("{agent} is not listed"));
            assert!(line.len() > agent.len() + 10, "{agent} has no description");
        }
    }
}
