//! A custom agent's definition checked and compiled: the declaration by the catalog's rules
//! ([`crate::spec`]), then its `template` (output and files, each file path checked with its
//! placeholders filled so no input can make it leave the run's artifact folder) or its `prompt`.

use sankalpa_kit::limits::json_len_exceeds;
use sankalpa_kit::schema::Violation;
use serde_json::{Map, Value};

use super::template::{Output, Text, compile_output, parse_text};
use crate::artifacts::clean_path;
use crate::error::{Result, RunnerError};
use crate::spec::{AgentSpec, RawSpec};

/// The largest definition document, in bytes of JSON. Its schemas and templates are held
/// compiled for as long as the agent is cached, so this bounds what one agent costs.
pub const MAX_DEFINITION_BYTES: usize = 64 * 1024;

/// What a custom agent does with its input.
#[derive(Debug)]
pub enum Behaviour {
    Template {
        output: Output,
        files: Vec<(Text, Text)>,
    },
    Prompt(Text),
}

/// Checks a definition document; the agent it describes, or the problems in it (paths into
/// it), at most [`sankalpa_kit::schema::MAX_VIOLATIONS`] of them.
pub fn compile(document: &Value) -> std::result::Result<(AgentSpec, Behaviour), Vec<Violation>> {
    let problem = |path: &str, message: &str| vec![Violation::new(path, message)];
    if json_len_exceeds(document, MAX_DEFINITION_BYTES) {
        return Err(problem(
            "",
            &format!("a definition is at most {MAX_DEFINITION_BYTES} bytes of JSON"),
        ));
    }
    let Some(map) = document.as_object() else {
        return Err(problem("", "a definition is a JSON object"));
    };
    let mut spec_fields: Map<String, Value> = map.clone();
    let template = spec_fields.remove("template");
    let prompt = spec_fields.remove("prompt");
    let raw: RawSpec = serde_json::from_value(Value::Object(spec_fields))
        .map_err(|err| problem("", &err.to_string()))?;
    let fields: Vec<String> = raw
        .input_schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    let mut problems = Vec::new();
    let spec = raw.compile("", &mut problems);
    let behaviour = match (template, prompt) {
        (Some(template), None) => {
            let output = template
                .get("output")
                .cloned()
                .unwrap_or(Value::Object(Map::new()));
            if !output.is_object() {
                problems.push(Violation::new("template.output", "must be an object"));
            }
            let output = compile_output(&output, "template.output", &fields, &mut problems);
            let mut files = Vec::new();
            let listed = template
                .get("files")
                .cloned()
                .unwrap_or(Value::Array(Vec::new()));
            for (i, file) in listed
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                let at = format!("template.files[{i}]");
                let (Some(path), Some(content)) = (
                    file.get("path").and_then(Value::as_str),
                    file.get("content").and_then(Value::as_str),
                ) else {
                    problems.push(Violation::new(&at, "needs a path and a content, both text"));
                    continue;
                };
                let path = parse_text(path, &format!("{at}.path"), &fields, &mut problems);
                if let Err(reason) = clean_path(&path.skeleton()) {
                    problems.push(Violation::new(
                        &format!("{at}.path"),
                        format!("leaves the run's artifact folder: {reason}"),
                    ));
                }
                let content = parse_text(content, &format!("{at}.content"), &fields, &mut problems);
                files.push((path, content));
            }
            if !listed.is_array() {
                problems.push(Violation::new("template.files", "must be an array"));
            }
            Behaviour::Template { output, files }
        }
        (None, Some(Value::String(prompt))) => {
            Behaviour::Prompt(parse_text(&prompt, "prompt", &fields, &mut problems))
        }
        (None, Some(_)) => return Err(problem("prompt", "must be text")),
        _ => return Err(problem("", "needs either a template or a prompt, not both")),
    };
    let problems: Vec<Violation> = problems
        .into_iter()
        .take(sankalpa_kit::schema::MAX_VIOLATIONS)
        .map(|v| Violation {
            path: v.path.trim_start_matches('.').to_owned(),
            message: v.message,
        })
        .collect();
    match spec {
        Some(mut spec) if problems.is_empty() => {
            // A prompt is nothing without the LLM.
            spec.llm_capable |= matches!(behaviour, Behaviour::Prompt(_));
            Ok((spec, behaviour))
        }
        _ => Err(problems),
    }
}

/// A definition that compiled, ready to be stored and run.
pub struct Compiled {
    pub spec: AgentSpec,
    pub behaviour: Behaviour,
    pub definition: Value,
}

/// Compiles `document` on the blocking threads (building a definition's patterns can take
/// milliseconds), counted in `agent_definitions_compiled_total`; the document comes back with
/// the outcome.
pub async fn compile_apart(
    document: Value,
) -> Result<(
    Value,
    std::result::Result<(AgentSpec, Behaviour), Vec<Violation>>,
)> {
    metrics::counter!("agent_definitions_compiled_total").increment(1);
    tokio::task::spawn_blocking(move || {
        let compiled = compile(&document);
        (document, compiled)
    })
    .await
    .map_err(|err| RunnerError::Internal(anyhow::anyhow!("compiling a definition failed: {err}")))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::custom::template::Rendering;

    fn greeter(path: &str) -> Value {
        json!({
            "name": "greeter", "category": "custom", "description": "Greets", "version": "1.0.0",
            "input_schema": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "times": {"type": "integer"}}},
            "output_schema": {"type": "object"},
            "template": {"output": {"greeting": "Hello {{ name | upper }}!", "times": "{{times}}"}, "files": [{"path": path, "content": "Hi {{name}}"}]}
        })
    }

    #[test]
    fn templates_render_fields_filters_and_types() {
        let (_, behaviour) = compile(&greeter("greetings/{{ name | slug }}.txt")).unwrap();
        let Behaviour::Template { output, files } = behaviour else {
            panic!("a template")
        };
        let input = json!({"name": "Ada Lovelace", "times": 3});
        let mut rendering = Rendering::new(&input, 1000);
        assert_eq!(
            output.render(&mut rendering).unwrap(),
            json!({"greeting": "Hello ADA LOVELACE!", "times": 3})
        );
        assert_eq!(
            files[0].0.render(&mut rendering).unwrap(),
            "greetings/ada-lovelace.txt"
        );
    }

    #[test]
    fn rendering_stops_at_its_bound() {
        let (_, behaviour) = compile(&greeter("a.txt")).unwrap();
        let Behaviour::Template { output, .. } = behaviour else {
            panic!("a template")
        };
        let input = json!({"name": "x".repeat(100), "times": 3});
        // "greeting", "Hello ", 100 bytes of name, "!", "times" and the 3.
        let exact = 8 + 6 + 100 + 1 + 5 + 1;
        assert!(output.render(&mut Rendering::new(&input, exact)).is_ok());
        assert!(
            output
                .render(&mut Rendering::new(&input, exact - 1))
                .is_err()
        );
    }

    #[test]
    fn a_definition_past_its_size_is_refused() {
        let mut large = greeter("a.txt");
        large["description"] = json!("d".repeat(MAX_DEFINITION_BYTES));
        let problems = compile(&large).unwrap_err();
        assert_eq!(problems[0].path, "");
    }

    #[test]
    fn paths_that_could_leave_the_folder_and_unknown_fields_are_violations() {
        for (path, field) in [
            ("../{{name}}", "template.files[0].path"),
            ("/etc/{{name}}", "template.files[0].path"),
            ("{{nope}}.txt", "template.files[0].path"),
        ] {
            let problems = compile(&greeter(path)).unwrap_err();
            assert!(
                problems.iter().any(|v| v.path == field),
                "{path}: {problems:?}"
            );
        }
        let mut bad = greeter("ok.txt");
        bad["template"]["output"]["x"] = json!("{{ name | shout }}");
        bad["version"] = json!("one");
        let paths: Vec<String> = compile(&bad)
            .unwrap_err()
            .into_iter()
            .map(|v| v.path)
            .collect();
        assert_eq!(paths, ["version", "template.output.x"]);
    }
}
