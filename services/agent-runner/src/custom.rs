//! Custom agents: defined by a tenant in a JSON document, stored in `agents.custom_agents`,
//! listed beside the built-in agents and run the same way.
//!
//! A definition declares the catalog fields (name, category, description, version, input and
//! output schema) and either a `template` — output fields and files rendered from the input — or
//! a `prompt` for the LLM. Templates substitute `{{ field.path }}` with optional filters
//! (`upper`, `lower`, `slug`, `json`) and nothing else: they cannot read files, run code or
//! reach the network. Every file path is checked when the definition is saved (with its
//! placeholders filled) and again when rendered, so no input can make a template write outside
//! its run's artifact folder.
//!
//! A template can repeat an input field any number of times, so what it renders is bounded
//! while it renders: one run's output, files and prompt together take at most the bytes the
//! service allows (`SANKALPA_AGENTS_MAX_TEMPLATE_OUTPUT_BYTES`), and the run fails as
//! `output_too_large` at the first piece past them. A definition itself is at most
//! [`MAX_DEFINITION_BYTES`], with the schema bounds of [`sankalpa_kit::schema`].

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sankalpa_kit::limits::json_len_exceeds;
use serde_json::{Map, Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::agents::{AgentError, Context};
use crate::artifacts::clean_path;
use crate::catalog::{Agent, AgentSpec, Kind, RawSpec};
use crate::definitions::Stamp;
use crate::error::{Result, RunnerError};
use sankalpa_kit::bounded_json;
use sankalpa_kit::schema::Violation;

/// The longest `installed_from` (`<marketplace item id>@<version>`), in bytes: it is stored
/// and returned with the agent.
pub const MAX_INSTALLED_FROM_BYTES: usize = 256;

fn check_installed_from(installed_from: &str) -> Result<()> {
    if installed_from.len() > MAX_INSTALLED_FROM_BYTES {
        return Err(RunnerError::invalid(
            "installed_from",
            format!("must be at most {MAX_INSTALLED_FROM_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// The largest definition document, in bytes of JSON. Its schemas and templates are held
/// compiled for as long as the agent is cached, so this bounds what one agent costs.
pub const MAX_DEFINITION_BYTES: usize = 64 * 1024;

/// One piece of a parsed template string.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field {
        path: Vec<String>,
        filter: Option<Filter>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Filter {
    Upper,
    Lower,
    Slug,
    Json,
}

#[derive(Debug, Clone)]
pub struct Text(Vec<Piece>);

/// A template's `output`, parsed once: the JSON to produce, with text to render in it.
#[derive(Debug)]
pub enum Output {
    Text(Text),
    List(Vec<Output>),
    Fields(Vec<(String, Output)>),
    Literal(Value),
}

#[derive(Debug)]
pub enum Behaviour {
    Template {
        output: Output,
        files: Vec<(Text, Text)>,
    },
    Prompt(Text),
}

/// What a custom agent has beyond its declaration.
#[derive(Debug)]
pub struct Custom {
    pub behaviour: Behaviour,
    pub definition: Value,
    pub revision: u64,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub installed_from: String,
}

fn parse_text(source: &str, at: &str, fields: &[String], problems: &mut Vec<Violation>) -> Text {
    let mut pieces = Vec::new();
    let mut rest = source;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            pieces.push(Piece::Text(rest[..open].to_owned()));
        }
        let Some(close) = rest[open..].find("}}") else {
            problems.push(Violation::new(at, "a {{ is never closed"));
            return Text(pieces);
        };
        let inner = rest[open + 2..open + close].trim();
        let (path, filter) = match inner.split_once('|') {
            Some((path, filter)) => (path.trim(), Some(filter.trim())),
            None => (inner, None),
        };
        let filter = match filter {
            None => None,
            Some("upper") => Some(Filter::Upper),
            Some("lower") => Some(Filter::Lower),
            Some("slug") => Some(Filter::Slug),
            Some("json") => Some(Filter::Json),
            Some(other) => {
                problems.push(Violation::new(
                    at,
                    format!("unknown filter {other:?}: use upper, lower, slug or json"),
                ));
                None
            }
        };
        let segments: Vec<String> = path.split('.').map(str::to_owned).collect();
        if segments
            .iter()
            .any(|s| s.is_empty() || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        {
            problems.push(Violation::new(
                at,
                format!("{{{{ {inner} }}}} is not a field path"),
            ));
        } else if !fields.contains(&segments[0]) {
            problems.push(Violation::new(
                at,
                format!("{:?} is not a field of the input schema", segments[0]),
            ));
        }
        pieces.push(Piece::Field {
            path: segments,
            filter,
        });
        rest = &rest[open + close + 2..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_owned()));
    }
    Text(pieces)
}

fn lookup<'a>(input: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(input, |value, segment| match value {
        Value::Object(map) => map.get(segment),
        Value::Array(items) => items.get(segment.parse::<usize>().ok()?),
        _ => None,
    })
}

/// Rendering went past the run's bound.
#[derive(Debug)]
pub struct TooLarge;

/// The input a run renders from, and the bytes it may still render.
pub struct Rendering<'a> {
    input: &'a Value,
    room: usize,
}

impl<'a> Rendering<'a> {
    pub fn new(input: &'a Value, max_bytes: usize) -> Self {
        Self {
            input,
            room: max_bytes,
        }
    }

    fn fits(&self, bytes: usize) -> Result<(), TooLarge> {
        if bytes <= self.room {
            Ok(())
        } else {
            Err(TooLarge)
        }
    }

    fn take(&mut self, bytes: usize) -> Result<(), TooLarge> {
        self.fits(bytes)?;
        self.room -= bytes;
        Ok(())
    }

    /// Appends `value` as JSON to `out`, if it fits.
    fn push_json(&mut self, out: &mut String, value: &Value) -> Result<(), TooLarge> {
        let before = out.len();
        if !bounded_json::append_within(out, value, self.room) {
            return Err(TooLarge);
        }
        self.room -= out.len() - before;
        Ok(())
    }

    /// Appends `text` through `filter` to `out`, if it fits. A filter changes a text's length
    /// by a small factor at most, so the text must fit before and its result after.
    fn push_filtered(
        &mut self,
        out: &mut String,
        text: &str,
        filter: Option<Filter>,
    ) -> Result<(), TooLarge> {
        self.fits(text.len())?;
        let filtered = match filter {
            Some(Filter::Upper) => Cow::Owned(text.to_uppercase()),
            Some(Filter::Lower) => Cow::Owned(text.to_lowercase()),
            Some(Filter::Slug) => Cow::Owned(crate::agents::slug(text)),
            Some(Filter::Json) | None => Cow::Borrowed(text),
        };
        self.take(filtered.len())?;
        out.push_str(&filtered);
        Ok(())
    }
}

impl Text {
    fn render(&self, rendering: &mut Rendering<'_>) -> Result<String, TooLarge> {
        let mut out = String::new();
        for piece in &self.0 {
            match piece {
                Piece::Text(text) => {
                    rendering.take(text.len())?;
                    out.push_str(text);
                }
                Piece::Field { path, filter } => match (lookup(rendering.input, path), filter) {
                    (value, Some(Filter::Json)) => {
                        rendering.push_json(&mut out, value.unwrap_or(&Value::Null))?;
                    }
                    (None | Some(Value::Null), _) => {}
                    (Some(Value::String(text)), filter) => {
                        rendering.push_filtered(&mut out, text, *filter)?;
                    }
                    (Some(other), filter) => {
                        let mut text = String::new();
                        if !bounded_json::append_within(&mut text, other, rendering.room) {
                            return Err(TooLarge);
                        }
                        rendering.push_filtered(&mut out, &text, *filter)?;
                    }
                },
            }
        }
        Ok(out)
    }

    /// A lone `{{ field }}` keeps the field's JSON type (a number stays a number).
    fn render_value(&self, rendering: &mut Rendering<'_>) -> Result<Value, TooLarge> {
        match self.0.as_slice() {
            [Piece::Field { path, filter: None }] => match lookup(rendering.input, path) {
                Some(value) => {
                    let size = bounded_json::len_within(value, rendering.room).ok_or(TooLarge)?;
                    rendering.take(size)?;
                    Ok(value.clone())
                }
                None => Ok(Value::Null),
            },
            _ => self.render(rendering).map(Value::String),
        }
    }

    /// The text with every placeholder filled by `x`: what a path looks like at its most benign.
    fn skeleton(&self) -> String {
        self.0
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.as_str(),
                Piece::Field { .. } => "x",
            })
            .collect()
    }
}

impl Output {
    fn render(&self, rendering: &mut Rendering<'_>) -> Result<Value, TooLarge> {
        match self {
            Self::Text(text) => text.render_value(rendering),
            Self::List(items) => items
                .iter()
                .map(|item| item.render(rendering))
                .collect::<Result<_, _>>()
                .map(Value::Array),
            Self::Fields(fields) => {
                let mut rendered = Map::new();
                for (name, field) in fields {
                    rendering.take(name.len())?;
                    rendered.insert(name.clone(), field.render(rendering)?);
                }
                Ok(Value::Object(rendered))
            }
            Self::Literal(value) => {
                let size = bounded_json::len_within(value, rendering.room).ok_or(TooLarge)?;
                rendering.take(size)?;
                Ok(value.clone())
            }
        }
    }
}

fn compile_output(
    template: &Value,
    at: &str,
    fields: &[String],
    problems: &mut Vec<Violation>,
) -> Output {
    match template {
        Value::String(source) => Output::Text(parse_text(source, at, fields, problems)),
        Value::Array(items) => Output::List(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| compile_output(v, &format!("{at}[{i}]"), fields, problems))
                .collect(),
        ),
        Value::Object(map) => Output::Fields(
            map.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        compile_output(v, &format!("{at}.{k}"), fields, problems),
                    )
                })
                .collect(),
        ),
        other => Output::Literal(other.clone()),
    }
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

/// The built-in agents that define custom agents, so the run gives them the store.
pub const INSTALLERS: &[&str] = &["self_replicator", "plugin_loader"];

/// Runs self_replicator (a definition drafted from a description) or plugin_loader (a given
/// definition document): checks the definition and stores it in the caller's tenant.
pub async fn install(
    state: &crate::State,
    request: &crate::runs::RunRequest,
) -> std::result::Result<Value, AgentError> {
    let input = &request.input;
    let tenant = Uuid::parse_str(&request.tenant)
        .map_err(|_| AgentError::Failed("the run has no tenant".to_owned()))?;
    let loader = request.agent.spec.name == "plugin_loader";
    let (definition, installed_from) = if loader {
        let from = input
            .get("installed_from")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        (
            input.get("definition").cloned().unwrap_or(Value::Null),
            from,
        )
    } else {
        let description = input
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default();
        (
            draft(description, input.get("name").and_then(Value::as_str)),
            String::new(),
        )
    };
    let (definition, compiled) = compile_apart(definition)
        .await
        .map_err(|err| AgentError::Failed(err.to_string()))?;
    let (spec, behaviour) = compiled.map_err(|problems| {
        let listed: Vec<String> = problems
            .iter()
            .map(|v| format!("{}: {}", v.path, v.message))
            .collect();
        AgentError::InvalidInput(format!(
            "the definition is not valid: {}",
            listed.join("; ")
        ))
    })?;
    if state.catalog.get(&spec.name).is_some() {
        return Err(AgentError::InvalidInput(format!(
            "{} is the name of a built-in agent",
            spec.name
        )));
    }
    let name = spec.name.clone();
    let compiled = Compiled {
        spec,
        behaviour,
        definition: definition.clone(),
    };
    // plugin_loader replaces an agent of the same name; self_replicator never does.
    let stored = match exists(&state.pool, tenant, &name).await {
        Ok(false) => create(state, tenant, compiled, &request.caller, &installed_from)
            .await
            .map(|agent| (agent, "installed")),
        Ok(true) if loader => update(state, tenant, compiled, None, &installed_from)
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
    let revision = Stamp::of(&agent).map_or(0, |stamp| stamp.revision);
    Ok(
        json!({"agent": agent.spec.name, "revision": revision, "action": action, "definition": definition}),
    )
}

/// Runs a custom agent, rendering at most `max_output_bytes` (its output, files and prompt
/// together).
pub async fn run(
    custom: &Custom,
    ctx: &mut Context,
    input: &Value,
    max_output_bytes: usize,
) -> std::result::Result<Value, AgentError> {
    let too_large = |TooLarge| {
        AgentError::OutputTooLarge(format!(
            "the template rendered more than its bound of {max_output_bytes} bytes \
             (SANKALPA_AGENTS_MAX_TEMPLATE_OUTPUT_BYTES)"
        ))
    };
    let mut rendering = Rendering::new(input, max_output_bytes);
    match &custom.behaviour {
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

/// What is stored beside a definition.
#[derive(sqlx::FromRow)]
struct Stored {
    revision: i64,
    created_by: String,
    installed_from: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// A stored agent as a load finds it: its definition only when the cache does not hold the
/// agent at this revision.
#[derive(sqlx::FromRow)]
struct Found {
    name: String,
    definition: Option<Value>,
    #[sqlx(flatten)]
    stored: Stored,
}

impl Stored {
    fn stamp(&self) -> Stamp {
        Stamp {
            revision: u64::try_from(self.revision).unwrap_or(1),
            updated_at: self.updated_at,
        }
    }

    fn agent(self, compiled: Compiled) -> Agent {
        let stamp = self.stamp();
        Agent {
            spec: compiled.spec,
            kind: Kind::Custom(Box::new(Custom {
                behaviour: compiled.behaviour,
                definition: compiled.definition,
                revision: stamp.revision,
                created_by: self.created_by,
                created_at: self.created_at,
                updated_at: self.updated_at,
                installed_from: self.installed_from,
            })),
        }
    }
}

/// The tenant's agents `names` as stored now, each with the definition unless the cache holds
/// the agent at the stored revision (`stamps`, one per name, `None` where it holds nothing).
async fn find(
    pool: &PgPool,
    tenant: Uuid,
    names: &[String],
    stamps: &[Option<Stamp>],
) -> Result<Vec<Found>> {
    let revisions: Vec<Option<i64>> = stamps
        .iter()
        .map(|stamp| stamp.and_then(|s| i64::try_from(s.revision).ok()))
        .collect();
    let written: Vec<Option<DateTime<Utc>>> = stamps
        .iter()
        .map(|stamp| stamp.map(|s| s.updated_at))
        .collect();
    let found = sqlx::query_as(
        "SELECT a.name, a.revision, a.created_by, a.installed_from, a.created_at, a.updated_at,
                CASE WHEN a.revision = c.revision AND a.updated_at = c.updated_at
                     THEN NULL ELSE a.definition END AS definition
         FROM agents.custom_agents a
         JOIN unnest($2::text[], $3::bigint[], $4::timestamptz[]) AS c(name, revision, updated_at)
           ON a.name = c.name
         WHERE a.tenant_id = $1",
    )
    .bind(tenant)
    .bind(names)
    .bind(revisions)
    .bind(written)
    .fetch_all(pool)
    .await?;
    Ok(found)
}

/// The tenant's stored agents among `names`, by name: compiled, from the cache where it holds
/// the stored revision. A definition that no longer compiles (stored before a bound it breaks)
/// is there as the reason it cannot be used.
pub async fn load(
    state: &crate::State,
    tenant: Uuid,
    names: &[String],
) -> Result<HashMap<String, std::result::Result<Arc<Agent>, String>>> {
    let stamps: Vec<Option<Stamp>> = names
        .iter()
        .map(|name| state.compiled.stamp(tenant, name))
        .collect();
    let mut loaded = HashMap::new();
    let mut evicted = Vec::new();
    for found in find(&state.pool, tenant, names, &stamps).await? {
        let agent = match found.definition {
            Some(definition) => compile_stored(state, tenant, found.stored, definition).await?,
            None => match state
                .compiled
                .get(tenant, &found.name, found.stored.stamp())
            {
                Some(agent) => Ok(agent),
                // Let go of since its stamp was read: asked again below, with its definition.
                None => {
                    evicted.push(found.name);
                    continue;
                }
            },
        };
        loaded.insert(found.name, agent);
    }
    if !evicted.is_empty() {
        let unknown = vec![None; evicted.len()];
        for found in find(&state.pool, tenant, &evicted, &unknown).await? {
            if let Some(definition) = found.definition {
                let agent = compile_stored(state, tenant, found.stored, definition).await?;
                loaded.insert(found.name, agent);
            }
        }
    }
    Ok(loaded)
}

async fn compile_stored(
    state: &crate::State,
    tenant: Uuid,
    stored: Stored,
    definition: Value,
) -> Result<std::result::Result<Arc<Agent>, String>> {
    let (definition, compiled) = compile_apart(definition).await?;
    Ok(match compiled {
        Ok((spec, behaviour)) => {
            let agent = Arc::new(stored.agent(Compiled {
                spec,
                behaviour,
                definition,
            }));
            state.compiled.insert(tenant, agent.clone());
            Ok(agent)
        }
        Err(problems) => {
            let first = problems
                .first()
                .map(|v| format!("{}: {}", v.path, v.message))
                .unwrap_or_default();
            Err(format!(
                "its stored definition no longer passes this service's checks ({first}); \
                 define it again"
            ))
        }
    })
}

/// The tenant's agent `name`, if it has one.
pub async fn get(state: &crate::State, tenant: Uuid, name: &str) -> Result<Option<Arc<Agent>>> {
    match load(state, tenant, &[name.to_owned()]).await?.remove(name) {
        None => Ok(None),
        Some(Ok(agent)) => Ok(Some(agent)),
        Some(Err(reason)) => Err(RunnerError::Precondition(format!("{name}: {reason}"))),
    }
}

/// The (category, name) of every agent of the tenant: what a listing orders and pages before
/// it loads the agents on its page.
pub async fn listing(pool: &PgPool, tenant: Uuid) -> Result<Vec<(String, String)>> {
    let listed =
        sqlx::query_as("SELECT category, name FROM agents.custom_agents WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_all(pool)
            .await?;
    Ok(listed)
}

/// Whether the tenant has an agent named `name`.
pub async fn exists(pool: &PgPool, tenant: Uuid, name: &str) -> Result<bool> {
    let found: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM agents.custom_agents WHERE tenant_id = $1 AND name = $2")
            .bind(tenant)
            .bind(name)
            .fetch_optional(pool)
            .await?;
    Ok(found.is_some())
}

/// Stores a new agent; ALREADY_EXISTS if the tenant has one of that name.
pub async fn create(
    state: &crate::State,
    tenant: Uuid,
    compiled: Compiled,
    created_by: &str,
    installed_from: &str,
) -> Result<Arc<Agent>> {
    check_installed_from(installed_from)?;
    let stored: Option<Stored> = sqlx::query_as(
        "INSERT INTO agents.custom_agents (tenant_id, name, category, definition, created_by, installed_from)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, name) DO NOTHING
         RETURNING revision, created_by, installed_from, created_at, updated_at",
    )
    .bind(tenant)
    .bind(&compiled.spec.name)
    .bind(&compiled.spec.category)
    .bind(&compiled.definition)
    .bind(created_by)
    .bind(installed_from)
    .fetch_optional(&state.pool)
    .await?;
    let stored = stored.ok_or_else(|| {
        RunnerError::AlreadyExists(format!(
            "an agent named {} already exists",
            compiled.spec.name
        ))
    })?;
    let agent = Arc::new(stored.agent(compiled));
    state.compiled.insert(tenant, agent.clone());
    Ok(agent)
}

/// Replaces an agent's definition, if its revision is still `expected` (when given).
pub async fn update(
    state: &crate::State,
    tenant: Uuid,
    compiled: Compiled,
    expected: Option<u64>,
    installed_from: &str,
) -> Result<Arc<Agent>> {
    check_installed_from(installed_from)?;
    let expected = expected.map(|r| i64::try_from(r).unwrap_or(i64::MAX));
    let name = compiled.spec.name.clone();
    let stored: Option<Stored> = sqlx::query_as(
        "UPDATE agents.custom_agents
         SET definition = $3, category = $4, installed_from = $5, revision = revision + 1, updated_at = now()
         WHERE tenant_id = $1 AND name = $2 AND ($6::bigint IS NULL OR revision = $6)
         RETURNING revision, created_by, installed_from, created_at, updated_at",
    )
    .bind(tenant)
    .bind(&name)
    .bind(&compiled.definition)
    .bind(&compiled.spec.category)
    .bind(installed_from)
    .bind(expected)
    .fetch_optional(&state.pool)
    .await?;
    match stored {
        Some(stored) => {
            let agent = Arc::new(stored.agent(compiled));
            state.compiled.insert(tenant, agent.clone());
            Ok(agent)
        }
        None if exists(&state.pool, tenant, &name).await? => Err(RunnerError::Aborted(format!(
            "{name} was changed since revision {}",
            expected.unwrap_or_default()
        ))),
        None => Err(RunnerError::NotFound(format!("custom agent {name:?}"))),
    }
}

pub async fn delete(pool: &PgPool, tenant: Uuid, name: &str) -> Result<()> {
    let deleted =
        sqlx::query("DELETE FROM agents.custom_agents WHERE tenant_id = $1 AND name = $2")
            .bind(tenant)
            .bind(name)
            .execute(pool)
            .await?
            .rows_affected();
    if deleted == 0 {
        return Err(RunnerError::NotFound(format!("custom agent {name:?}")));
    }
    Ok(())
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
