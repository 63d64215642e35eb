//! The enhanced agents: copilot (suggestions on given code, from the LLM when configured),
//! finetuner (validates and splits a fine-tuning dataset; submits nothing), vs_code_extension
//! (a VS Code extension scaffold) and cli_runner (a Python command-line program from a spec).

use std::collections::HashSet;
use std::fmt::Write;

use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::code::{Language, analyse};
use super::{AgentError, Context, parse};
use crate::context::ToolRunner;
use crate::llm::Message;

#[derive(Deserialize)]
struct CopilotInput {
    code: String,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    instruction: Option<String>,
}

pub async fn copilot(ctx: &mut Context, input: &Value) -> Result<Value, AgentError> {
    let input: CopilotInput = parse(input)?;
    let language = input
        .language
        .as_deref()
        .and_then(Language::parse)
        .unwrap_or_else(|| Language::detect(&input.code));
    if ctx.has_llm() {
        let prompt = format!(
            "{}\n\nCode ({}):\n{}",
            input
                .instruction
                .as_deref()
                .unwrap_or("Suggest concrete improvements to this code."),
            language.name(),
            input.code
        );
        let system = "You are a precise pair programmer. Answer with concrete, line-referenced \
                      suggestions. Call the tools given when running one answers better than \
                      guessing.";
        let (suggested, tool_runs) = match ctx.tools.take() {
            Some(mut tools) => {
                let answer = answer_with_tools(ctx, tools.as_mut(), system, prompt).await;
                (answer, tools.runs().to_vec())
            }
            None => {
                let answer = ctx
                    .ask_for(system, prompt, |answer| Ok(answer.trim().to_owned()))
                    .await;
                (answer, Vec::new())
            }
        };
        if let Some(text) = suggested {
            return Ok(
                json!({"language": language.name(), "method": "llm", "tool_runs": tool_runs,
                "suggestions": [{"line": 0, "kind": "llm", "message": text}]}),
            );
        }
    }
    let analysis = analyse(&input.code, language);
    let lines: Vec<&str> = input.code.lines().collect();
    let mut suggestions = Vec::new();
    for f in &analysis.functions {
        if !f.documented {
            let header = lines.get(f.start - 1).copied().unwrap_or_default();
            let indent: String = header.chars().take_while(|c| c.is_whitespace()).collect();
            let insert = if language == Language::Python {
                format!("{indent}    \"\"\"{}.\"\"\"", describe(&f.name))
            } else {
                format!("{indent}/** {}. */", describe(&f.name))
            };
            suggestions.push(json!({"line": f.start, "kind": "docstring", "message": format!("document {}", f.name), "insert": insert}));
        }
        if f.complexity > 10 || f.lines() > 50 {
            suggestions.push(json!({"line": f.start, "kind": "refactor", "message": format!("{} has complexity {} over {} lines: extract its branches into helpers", f.name, f.complexity, f.lines())}));
        }
    }
    for (i, line) in lines.iter().enumerate() {
        let upper = line.to_uppercase();
        if upper.contains("TODO") || upper.contains("FIXME") {
            suggestions.push(json!({"line": i + 1, "kind": "todo", "message": format!("unfinished: {}", line.trim())}));
        }
        if language == Language::Python && line.trim() == "except:" {
            suggestions.push(json!({"line": i + 1, "kind": "fix", "message": "catch the exceptions you expect", "replace": line.replace("except:", "except Exception:")}));
        }
        if language == Language::JavaScript && line.contains("var ") {
            suggestions.push(json!({"line": i + 1, "kind": "fix", "message": "use let or const", "replace": line.replace("var ", "const ")}));
        }
    }
    Ok(json!({"language": language.name(), "method": "static", "suggestions": suggestions}))
}

/// The most turns of the model in one answer with tools: each turn that calls tools is one.
pub const MAX_TOOL_TURNS: usize = 4;

/// The model's answer to `prompt`, running the agents it calls as tools between its turns:
/// `None`, with a warning, when the call fails, the answer is empty or the model is still
/// calling tools after [`MAX_TOOL_TURNS`] turns.
async fn answer_with_tools(
    ctx: &mut Context,
    tools: &mut dyn ToolRunner,
    system: &str,
    prompt: String,
) -> Option<String> {
    let offered = tools.offered();
    let mut messages = vec![Message::system(system), Message::user(prompt)];
    for _ in 0..MAX_TOOL_TURNS {
        let completion = match ctx.converse(&messages, &offered).await? {
            Ok(completion) => completion,
            Err(err) => {
                tracing::warn!(error = %err, "the LLM failed; taking the rules' path");
                return None;
            }
        };
        if completion.tool_calls.is_empty() {
            let text = completion.text.trim();
            return (!text.is_empty()).then(|| text.to_owned());
        }
        let calls = completion.tool_calls;
        messages.push(Message::calling(completion.text, calls.clone()));
        for call in &calls {
            let result = tools.run(call).await;
            messages.push(Message::tool_result(&call.id, result));
        }
    }
    tracing::warn!(
        turns = MAX_TOOL_TURNS,
        "the model was still calling tools; taking the rules' path"
    );
    None
}

/// `parse_user_input` -> "Parse user input".
fn describe(name: &str) -> String {
    let mut words: Vec<String> = Vec::new();
    let mut current = String::new();
    for c in name.chars() {
        if c == '_' || (c.is_uppercase() && !current.is_empty()) {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            if c == '_' {
                continue;
            }
        }
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    let sentence = words.join(" ");
    let mut chars = sentence.chars();
    chars
        .next()
        .map(|f| f.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

#[derive(Deserialize)]
struct DatasetInput {
    examples: Vec<Value>,
    #[serde(default)]
    validation_split: Option<f64>,
    #[serde(default)]
    base_model: Option<String>,
}

fn check_example(example: &Value) -> Result<Value, String> {
    let messages = match (
        example.get("messages"),
        example.get("prompt"),
        example.get("completion"),
    ) {
        (Some(messages), _, _) => messages.clone(),
        (None, Some(Value::String(prompt)), Some(Value::String(completion))) => {
            json!([{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}])
        }
        _ => return Err("needs `messages`, or `prompt` and `completion` texts".to_owned()),
    };
    let list = messages.as_array().ok_or("messages must be an array")?;
    if list.len() < 2 {
        return Err("needs at least a user and an assistant message".to_owned());
    }
    for (i, message) in list.iter().enumerate() {
        let role = message
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !["system", "user", "assistant"].contains(&role) {
            return Err(format!(
                "messages[{i}].role must be system, user or assistant"
            ));
        }
        if message
            .get("content")
            .and_then(Value::as_str)
            .is_none_or(|c| c.trim().is_empty())
        {
            return Err(format!("messages[{i}].content must be non-empty text"));
        }
    }
    if list
        .last()
        .and_then(|m| m.get("role"))
        .and_then(Value::as_str)
        != Some("assistant")
    {
        return Err("the last message must be the assistant's".to_owned());
    }
    Ok(json!({"messages": messages}))
}

pub fn finetune(ctx: &mut Context, input: &Value) -> Result<Value, AgentError> {
    let input: DatasetInput = parse(input)?;
    let split = input.validation_split.unwrap_or(0.1);
    let mut train = String::new();
    let mut validation = String::new();
    let mut invalid = Vec::new();
    let mut seen = HashSet::new();
    let (mut kept, mut duplicates, mut tokens) = (0usize, 0usize, 0usize);
    for (i, example) in input.examples.iter().enumerate() {
        match check_example(example) {
            Err(reason) => invalid.push(json!({"index": i, "reason": reason})),
            Ok(clean) => {
                let line = clean.to_string();
                if !seen.insert(line.clone()) {
                    duplicates += 1;
                    continue;
                }
                // About four characters a token for English text: an estimate for cost, not a bill.
                tokens += line.len().div_ceil(4);
                kept += 1;
                // The split depends on the example, not its position, so it is stable as the set grows.
                let bucket = Sha256::digest(line.as_bytes())[0] as f64 / 256.0;
                let target = if bucket < split {
                    &mut validation
                } else {
                    &mut train
                };
                target.push_str(&line);
                target.push('\n');
            }
        }
    }
    let train_count = train.lines().count();
    let validation_count = validation.lines().count();
    if kept == 0 {
        return Err(AgentError::InvalidInput("no example is valid".to_owned()));
    }
    ctx.write("finetune/train.jsonl", train)?;
    if validation_count > 0 {
        ctx.write("finetune/validation.jsonl", validation)?;
    }
    Ok(json!({
        "valid": kept,
        "invalid": invalid,
        "duplicates": duplicates,
        "train_examples": train_count,
        "validation_examples": validation_count,
        "estimated_tokens": tokens,
        "base_model": input.base_model,
        "ready": kept >= 10,
        "submitted": false,
        "note": "nothing was submitted: no fine-tuning provider is configured; upload finetune/train.jsonl to your provider",
    }))
}

#[derive(Deserialize)]
struct Command {
    id: String,
    title: String,
}

#[derive(Deserialize)]
struct ExtensionInput {
    name: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    commands: Vec<Command>,
}

pub fn vscode(ctx: &mut Context, input: &Value) -> Result<Value, AgentError> {
    let input: ExtensionInput = parse(input)?;
    let display = input
        .display_name
        .clone()
        .unwrap_or_else(|| input.name.clone());
    let commands: Vec<Value> = input
        .commands
        .iter()
        .map(|c| json!({"command": format!("{}.{}", input.name, c.id), "title": c.title}))
        .collect();
    let package = json!({
        "name": input.name,
        "displayName": display,
        "description": input.description.clone().unwrap_or_default(),
        "version": "0.0.1",
        "engines": {"vscode": "^1.85.0"},
        "main": "./out/extension.js",
        "activationEvents": [],
        "contributes": {"commands": commands},
        "scripts": {"compile": "tsc -p ./", "watch": "tsc -watch -p ./", "package": "vsce package"},
        "devDependencies": {"@types/vscode": "^1.85.0", "@types/node": "20.x", "typescript": "^5.4.0", "@vscode/vsce": "^2.26.0"}
    });
    let mut extension = String::from(
        "import * as vscode from \"vscode\";\n\nexport function activate(context: vscode.ExtensionContext) {\n",
    );
    for c in &input.commands {
        let _ = writeln!(
            extension,
            "  context.subscriptions.push(\n    vscode.commands.registerCommand({:?}, () => {{\n      vscode.window.showInformationMessage({:?});\n    }}),\n  );",
            format!("{}.{}", input.name, c.id),
            format!("{}: {}", display, c.title)
        );
    }
    extension.push_str("}\n\nexport function deactivate() {}\n");
    let tsconfig = json!({"compilerOptions": {"module": "commonjs", "target": "ES2022", "outDir": "out", "lib": ["ES2022"], "sourceMap": true, "rootDir": "src", "strict": true}});
    let readme = format!(
        "# {display}\n\n{}\n\n## Commands\n\n{}\n\n## Build\n\n```sh\nnpm install\nnpm run compile\nnpm run package   # {}-0.0.1.vsix\n```\n",
        input.description.clone().unwrap_or_default(),
        input
            .commands
            .iter()
            .map(|c| format!("- `{}.{}`: {}", input.name, c.id, c.title))
            .collect::<Vec<_>>()
            .join("\n"),
        input.name
    );
    let root = "vscode-extension";
    ctx.write(&format!("{root}/package.json"), format!("{package:#}\n"))?;
    ctx.write(&format!("{root}/tsconfig.json"), format!("{tsconfig:#}\n"))?;
    ctx.write(&format!("{root}/src/extension.ts"), extension)?;
    ctx.write(&format!("{root}/README.md"), readme)?;
    Ok(json!({
        "extension": input.name,
        "commands": commands,
        "files": [format!("{root}/package.json"), format!("{root}/tsconfig.json"), format!("{root}/src/extension.ts"), format!("{root}/README.md")],
    }))
}

#[derive(Deserialize)]
struct Argument {
    name: String,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    help: Option<String>,
}

#[derive(Deserialize)]
struct Subcommand {
    name: String,
    #[serde(default)]
    help: Option<String>,
    #[serde(default)]
    arguments: Vec<Argument>,
}

#[derive(Deserialize)]
struct CliInput {
    name: String,
    #[serde(default)]
    description: Option<String>,
    commands: Vec<Subcommand>,
}

fn python_string(text: &str) -> String {
    serde_json::to_string(text).expect("strings serialise")
}

pub fn cli(ctx: &mut Context, input: &Value) -> Result<Value, AgentError> {
    let input: CliInput = parse(input)?;
    let mut source = format!(
        "#!/usr/bin/env python3\n\"\"\"{name}: generated by Sankalpa (cli_runner). Each command prints what it was given as JSON.\"\"\"\nimport argparse\nimport json\nimport sys\n\n\ndef build_parser():\n    parser = argparse.ArgumentParser(prog={prog}, description={description})\n    commands = parser.add_subparsers(dest=\"command\", required=True)\n",
        name = input.name,
        prog = python_string(&input.name),
        description = python_string(input.description.as_deref().unwrap_or(""))
    );
    let mut usage = Vec::new();
    for command in &input.commands {
        let var = command.name.replace('-', "_");
        let _ = writeln!(
            source,
            "\n    {var} = commands.add_parser({}, help={})",
            python_string(&command.name),
            python_string(command.help.as_deref().unwrap_or(""))
        );
        let mut line = format!("{} {}", input.name, command.name);
        for arg in &command.arguments {
            let kind = match arg.kind.as_deref().unwrap_or("string") {
                "integer" => "type=int",
                "number" => "type=float",
                "boolean" => "action=\"store_true\"",
                "string" => "type=str",
                other => {
                    return Err(AgentError::InvalidInput(format!(
                        "argument {} has unknown type {other:?}",
                        arg.name
                    )));
                }
            };
            let flag = format!("--{}", arg.name.replace('_', "-"));
            let required = if arg.required && kind != "action=\"store_true\"" {
                ", required=True"
            } else {
                ""
            };
            let _ = writeln!(
                source,
                "    {var}.add_argument({}, {kind}{required}, help={})",
                python_string(&flag),
                python_string(arg.help.as_deref().unwrap_or(""))
            );
            line.push_str(&if arg.required {
                format!(" {flag} <{}>", arg.name)
            } else {
                format!(" [{flag}]")
            });
        }
        usage.push(line);
    }
    source.push_str("    return parser\n\n\ndef main(argv=None):\n    args = vars(build_parser().parse_args(argv))\n    json.dump(args, sys.stdout, sort_keys=True)\n    sys.stdout.write(\"\\n\")\n    return 0\n\n\nif __name__ == \"__main__\":\n    sys.exit(main())\n");
    let path = format!("cli/{}.py", input.name.replace('-', "_"));
    ctx.write(&path, source)?;
    Ok(json!({"program": input.name, "usage": usage, "files": [path], "executed": false}))
}
