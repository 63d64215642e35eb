//! Chain definitions: the documents users write, turned into one DAG form and checked.
//!
//! Three forms are accepted, all normalised to the DAG form before anything else sees them:
//! - DAG: `{"name", "description", "steps": [{"id", "agent", "needs", "when", "input", "retry":
//!   {"attempts", "backoff_ms"}, "timeout_ms", "model", "on_failure"}]}`, where a step is of one kind
//!   ([`StepKind`]): an agent step names its `agent`; a map step is an agent step with
//!   `"for_each": "${<expr>}"` (a list at run time) and `max_parallel`, running its agent once
//!   per item, `${item}` and `${index}` naming the item in its `input`; an approval step has
//!   instead `"approval": {"prompt", "approvers", "timeout_ms", "on_timeout"}` and no `input`,
//!   `retry`, `timeout_ms` or `model` of its own; a chain step has `"chain": {"id" | "template",
//!   "input"}` and runs that chain as a child run (engine/subchains.rs), with `retry` but no
//!   `timeout_ms` or step `input` (`needs`, `when`, `on_failure` and `on_skip` apply to every
//!   kind, and so does `position`, `{"x", "y"}`, where an editor drew the step);
//! - simple: `{"agents": ["a", "b"], "mode": "sequential" | "parallel"}` (sequential: each step
//!   needs the previous one; parallel: no step needs another);
//! - conditional: `{"condition": "<expr>", "then": ["a", ..], "else": ["b", ..]}`, two sequential
//!   branches whose first steps carry `when: <expr>` and `when: !(<expr>)`; a skipped step skips
//!   its dependants, so the branch not taken is skipped whole.
//!
//! Any form may declare `input_schema`, a JSON Schema (`sankalpa_kit::schema`) the run input
//! must satisfy: a run whose input does not is refused at submission, naming every field, and
//! nothing is stored. A step with a `when` may say `"on_skip": "continue"`: when it is skipped,
//! its dependants run anyway (an optional feature's builder that others follow when present).
//!
//! A step's `input`, when given, replaces the default input (the chain input merged with the
//! outputs of the steps it needs, later ones winning); inside it, a string that is exactly
//! `"${<expr>}"` is replaced by the expression's value, e.g. `"${steps.plan.files}"`.
//!
//! [`parse`] reports every problem it finds, each with a JSON path into the document, so a user
//! fixes them all at once (the first [`MAX_VIOLATIONS`] of them, see [`at_most`]). Whether
//! agents exist is asked of agent-runner separately (`agents.rs`), as that needs the network.
//!
//! A definition comes from a request, so every dimension of it is bounded before any work
//! grows with it: its size ([`MAX_DEFINITION_BYTES`]), steps ([`MAX_STEPS`]), each step's
//! `needs` ([`MAX_NEEDS`]), the nesting of an `input` mapping ([`MAX_JSON_DEPTH`]), the number
//! of expressions ([`MAX_EXPRESSIONS`]) and each expression (`expr.rs`), names and ids. At run
//! time, a rendered mapping is charged against the step's input limit as it is built
//! ([`render_mapping`]), so a mapping naming a large output many times fails instead of
//! multiplying it.
//!
//! The REST API publishes this grammar, bounds included, as a JSON Schema
//! (`crates/api/src/chain_definition.rs`): a change here is made there too, and the
//! gateway's `chain_definitions` tests, which send what that schema refuses here, hold the two
//! together.

use std::collections::{BTreeSet, HashMap, HashSet};

use sankalpa_kit::limits::truncate;
use sankalpa_kit::problem::FieldViolation;
use sankalpa_kit::schema::Schema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{expr, sizes};

pub const MAX_STEPS: usize = 200;
const MAX_ATTEMPTS: u32 = 10;
const MAX_BACKOFF_MS: u64 = 60_000;
const MAX_TIMEOUT_MS: u64 = 3_600_000;
/// How far from the origin a step's `position` may be, on either axis.
pub const MAX_POSITION: f64 = 1_000_000.0;
/// The longest approval prompt, in characters: a question and its context, not a document.
pub const MAX_PROMPT_CHARS: usize = 2000;
/// The most approvers one approval step names.
pub const MAX_APPROVERS: usize = 20;
/// The longest approver entry (`role:<role>` or `user:<id>`), in bytes.
const MAX_APPROVER_BYTES: usize = 200;
/// The shortest and longest wait of an approval. The run's credential lives as long as its
/// approvals may make it wait on top of `SANKALPA_CHAINS_CREDENTIAL_TTL_SECONDS`
/// (credentials::lifetime).
pub const MIN_APPROVAL_TIMEOUT_MS: u64 = 100;
pub const MAX_APPROVAL_TIMEOUT_MS: u64 = 7 * 24 * 3_600_000;
const DEFAULT_APPROVAL_TIMEOUT_MS: u64 = 3_600_000;
/// The most items of a map step that run at once (`max_parallel`), and the default.
pub const MAX_PARALLEL_ITEMS: u32 = 64;
const DEFAULT_MAX_PARALLEL: u32 = 8;
/// The longest list a map step runs over; a longer one fails the step (`too_many_items`).
/// Each item is an agent run and a row of per-item state.
pub const MAX_ITEMS: usize = 1000;
/// How many levels of child runs chain steps may nest below a run a caller started; a chain
/// step of a run at this depth fails with `chain_too_deep`.
pub const MAX_CHAIN_DEPTH: i32 = 4;
/// The largest definition document, in bytes. The biggest template is about 1 KiB; 200 steps
/// with generous mappings fit many times over.
pub const MAX_DEFINITION_BYTES: usize = 1024 * 1024;
/// How deeply objects and lists may nest in a step's `input` mapping and in a run's input.
pub const MAX_JSON_DEPTH: usize = 32;
/// The most entries in one step's `needs`: one per other step.
pub const MAX_NEEDS: usize = MAX_STEPS;
/// The most expressions (`when` conditions and `${...}` mappings) in one definition; each is
/// parsed at every check and again at run time.
pub const MAX_EXPRESSIONS: usize = 1000;
/// The longest chain name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// The longest chain description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 2000;
/// The most problems one answer lists: they travel in the response's trailers, which clients
/// cap (16 KiB in hyper), and the first few are what a user fixes first anyway.
pub const MAX_VIOLATIONS: usize = 16;
/// The longest problem message, in bytes; longer ones (quoting what was sent) are cut.
const MAX_VIOLATION_BYTES: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// The run fails: running steps are cancelled and nothing further starts.
    #[default]
    Fail,
    /// The failure is recorded and dependants run anyway, without this step's output.
    Continue,
    /// Dependants (and theirs) are skipped; the rest of the run goes on.
    SkipDependants,
}

/// What a skipped step means for the steps that need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnSkip {
    /// They are skipped too (the branch not taken is skipped whole).
    #[default]
    SkipDependants,
    /// They run without this step's output.
    Continue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    /// Attempts in all, the first included.
    #[serde(default = "one")]
    pub attempts: u32,
    /// Wait before the second attempt; doubled before each later one.
    #[serde(default)]
    pub backoff_ms: u64,
}

fn one() -> u32 {
    1
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            attempts: 1,
            backoff_ms: 0,
        }
    }
}

/// One step of a DAG: where it sits (`id`, `needs`, `when`, what its failure or skip means to
/// the steps after it) and what it does, its [`StepKind`].
///
/// In JSON a step is one flat object whose kind is told by the one field that names it
/// (`agent`, `approval`); the fields of another kind are refused on it by name. It is read
/// and written through [`StepDocument`], so the stored DAG form of an agent step is what it was
/// before steps had kinds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "StepDocument", into = "StepDocument")]
pub struct Step {
    pub id: String,
    pub needs: Vec<String>,
    pub when: Option<String>,
    pub on_failure: OnFailure,
    pub on_skip: OnSkip,
    pub kind: StepKind,
    /// Where an editor (the console's composer) drew the step; kept, never read by a run.
    pub position: Option<Position>,
}

/// The longest `provider/model` a step may name: a provider name (63) and a model (200).
const MAX_MODEL_CHARS: usize = 264;

/// Whether `model` has the shape `provider/model` agent-runner takes (which checks the rest:
/// that the tenant has the provider and it lists the model).
fn valid_model(model: &str) -> bool {
    let Some((provider, name)) = model.split_once('/') else {
        return false;
    };
    model.len() <= MAX_MODEL_CHARS
        && !provider.is_empty()
        && provider
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && !name.is_empty()
        && !name.chars().any(|c| c.is_control() || c.is_whitespace())
}

/// A step's place on an editor's canvas, in its units: finite, each at most
/// [`MAX_POSITION`] from the origin.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Position {
    pub x: f64,
    pub y: f64,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    /// Runs an agent, once or (with `for_each`) once per item of a list.
    Agent(AgentStep),
    /// Waits for a person to approve or reject it.
    Approval(Approval),
    /// Runs another chain as a child run.
    Chain(ChainStep),
}

#[derive(Debug, Clone, PartialEq)]
pub struct AgentStep {
    pub agent: String,
    pub input: Option<Value>,
    /// Per item, for a map step.
    pub retry: Retry,
    /// 0: agent-runner's default. Per item, for a map step.
    pub timeout_ms: u64,
    /// The model the agent asks, `provider/model` (agent-runner checks it names one of the
    /// tenant's); `None`: the tenant's default.
    pub model: Option<String>,
    /// Set on a map step.
    pub for_each: Option<ForEach>,
}

/// What a map step runs over.
#[derive(Debug, Clone, PartialEq)]
pub struct ForEach {
    /// `${<expression>}` as written; the expression's value, a list, gives the items.
    pub source: String,
    /// Items running at once, 1 to [`MAX_PARALLEL_ITEMS`].
    pub max_parallel: u32,
}

impl ForEach {
    /// The expression inside `${...}`; a checked definition always has one.
    pub fn expression(&self) -> &str {
        mapping_source(&self.source).unwrap_or(&self.source)
    }
}

/// A chain step: which chain its child run runs, and with what.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainStep {
    pub call: ChainCall,
    /// A failed child run is followed by a new one, under this policy.
    pub retry: Retry,
}

/// `"chain": {"id" | "template", "input"}` as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainCall {
    /// A stored chain of the run's tenant (UUID); its latest version runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// A template of `catalog/chains`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// The child run's input, a mapping as an agent step's `input` is; without it, the chain
    /// input merged with the outputs of the steps this one needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
}

/// A human decision the run waits for, durably and holding nothing while it waits
/// (approvals.rs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// What the approver is asked, shown with the step's event.
    pub prompt: String,
    /// Who may decide: `role:<role>` (a role the caller's token carries) or `user:<user id>`.
    pub approvers: Vec<String>,
    /// How long the step waits for a decision before `on_timeout` applies.
    #[serde(default = "default_approval_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default)]
    pub on_timeout: OnTimeout,
}

/// What an approval nobody decided within its timeout comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnTimeout {
    /// The step fails with `approval_timed_out` (its `on_failure` applies).
    #[default]
    Fail,
    /// The step is skipped (its `on_skip` applies).
    Skip,
    /// The step completes as approved, `{"approved": true, "by": "timeout"}`.
    Approve,
}

fn default_approval_timeout_ms() -> u64 {
    DEFAULT_APPROVAL_TIMEOUT_MS
}

impl Step {
    /// The agent an agent or map step runs; None for the other kinds.
    pub fn agent(&self) -> Option<&str> {
        match &self.kind {
            StepKind::Agent(agent) => Some(&agent.agent),
            StepKind::Approval(_) | StepKind::Chain(_) => None,
        }
    }

    pub fn approval(&self) -> Option<&Approval> {
        match &self.kind {
            StepKind::Approval(approval) => Some(approval),
            StepKind::Agent(_) | StepKind::Chain(_) => None,
        }
    }

    /// `agent`, `map`, `approval` or `chain`, as the run's step view shows it.
    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            StepKind::Agent(AgentStep {
                for_each: Some(_), ..
            }) => "map",
            StepKind::Agent(_) => "agent",
            StepKind::Approval(_) => "approval",
            StepKind::Chain(_) => "chain",
        }
    }
}

/// A step as JSON has it: every kind's fields side by side, checked into a [`Step`] by
/// [`StepDocument::into_step`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepDocument {
    id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    approval: Option<Approval>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    chain: Option<ChainCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    for_each: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_parallel: Option<u32>,
    #[serde(default)]
    needs: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    when: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    input: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry: Option<Retry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    model: Option<String>,
    #[serde(default)]
    on_failure: OnFailure,
    #[serde(default)]
    on_skip: OnSkip,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    position: Option<Position>,
}

impl StepDocument {
    /// The step, or its problems as (field below the step, message).
    fn into_step(self) -> Result<Step, Vec<(&'static str, String)>> {
        // The fields a kind has no use for would silently mean nothing: each is refused.
        let unused = |kind: &str, fields: &[(&'static str, bool, &str)]| {
            fields
                .iter()
                .filter(|(_, given, _)| *given)
                .map(|(field, _, hint)| (*field, format!("does not apply to {kind}{hint}")))
                .collect::<Vec<_>>()
        };
        let kind = match (self.agent, self.approval, self.chain) {
            (Some(agent), None, None) => {
                if self.for_each.is_none() && self.max_parallel.is_some() {
                    return Err(vec![(
                        "max_parallel",
                        "applies only to a map step, one with `for_each`".to_owned(),
                    )]);
                }
                StepKind::Agent(AgentStep {
                    agent,
                    input: self.input,
                    retry: self.retry.unwrap_or_default(),
                    timeout_ms: self.timeout_ms.unwrap_or(0),
                    model: self.model,
                    for_each: self.for_each.map(|source| ForEach {
                        source,
                        max_parallel: self.max_parallel.unwrap_or(DEFAULT_MAX_PARALLEL),
                    }),
                })
            }
            (None, Some(approval), None) => {
                let unused = unused(
                    "an approval step",
                    &[
                        ("input", self.input.is_some(), ""),
                        ("retry", self.retry.is_some(), ""),
                        (
                            "timeout_ms",
                            self.timeout_ms.is_some(),
                            "; its wait is `approval.timeout_ms`",
                        ),
                        ("for_each", self.for_each.is_some(), ""),
                        ("max_parallel", self.max_parallel.is_some(), ""),
                        ("model", self.model.is_some(), ""),
                    ],
                );
                if !unused.is_empty() {
                    return Err(unused);
                }
                StepKind::Approval(approval)
            }
            (None, None, Some(call)) => {
                let unused = unused(
                    "a chain step",
                    &[
                        (
                            "input",
                            self.input.is_some(),
                            "; the child run's input is `chain.input`",
                        ),
                        ("timeout_ms", self.timeout_ms.is_some(), ""),
                        ("for_each", self.for_each.is_some(), ""),
                        ("max_parallel", self.max_parallel.is_some(), ""),
                        ("model", self.model.is_some(), ""),
                    ],
                );
                if !unused.is_empty() {
                    return Err(unused);
                }
                StepKind::Chain(ChainStep {
                    call,
                    retry: self.retry.unwrap_or_default(),
                })
            }
            (None, None, None) => {
                return Err(vec![(
                    "agent",
                    "a step needs `agent` (an agent or map step), `approval` (an approval step) \
                     or `chain` (a chain step)"
                        .to_owned(),
                )]);
            }
            (_, _, chain) => {
                let second = if chain.is_some() { "chain" } else { "approval" };
                return Err(vec![(
                    second,
                    "a step has one kind: give one of `agent`, `approval` or `chain`".to_owned(),
                )]);
            }
        };
        Ok(Step {
            id: self.id,
            needs: self.needs,
            when: self.when,
            on_failure: self.on_failure,
            on_skip: self.on_skip,
            kind,
            position: self.position,
        })
    }
}

impl TryFrom<StepDocument> for Step {
    type Error = String;

    fn try_from(document: StepDocument) -> Result<Self, String> {
        document.into_step().map_err(|problems| {
            problems
                .into_iter()
                .map(|(field, message)| format!("{field}: {message}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }
}

impl From<Step> for StepDocument {
    fn from(step: Step) -> Self {
        let mut document = Self {
            id: step.id,
            agent: None,
            approval: None,
            chain: None,
            for_each: None,
            max_parallel: None,
            needs: step.needs,
            when: step.when,
            input: None,
            retry: None,
            timeout_ms: None,
            model: None,
            on_failure: step.on_failure,
            on_skip: step.on_skip,
            position: step.position,
        };
        match step.kind {
            StepKind::Agent(agent) => {
                if let Some(for_each) = agent.for_each {
                    document.for_each = Some(for_each.source);
                    document.max_parallel = Some(for_each.max_parallel);
                }
                document.agent = Some(agent.agent);
                document.input = agent.input;
                document.retry = Some(agent.retry);
                document.timeout_ms = Some(agent.timeout_ms);
                document.model = agent.model;
            }
            StepKind::Approval(approval) => document.approval = Some(approval),
            StepKind::Chain(chain) => {
                document.chain = Some(chain.call);
                document.retry = Some(chain.retry);
            }
        }
        document
    }
}

/// A definition in DAG form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Definition {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// What the run input must be: a JSON Schema, checked at submission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<Value>,
    pub steps: Vec<Step>,
}

impl Definition {
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|step| step.id == id)
    }

    /// Every agent named, once each.
    pub fn agents(&self) -> Vec<String> {
        let mut agents: Vec<String> = self
            .steps
            .iter()
            .filter_map(|step| step.agent().map(str::to_owned))
            .collect();
        agents.sort();
        agents.dedup();
        agents
    }

    /// The ways `input` fails the definition's `input_schema`, as `input.<path>` fields; none
    /// without a schema.
    pub fn input_problems(&self, input: &Value) -> Vec<FieldViolation> {
        let Some(source) = &self.input_schema else {
            return Vec::new();
        };
        // A stored definition was checked when saved; one that no longer compiles is refused
        // (its problems listed) rather than run unchecked.
        let found = match Schema::compile(source, "input_schema") {
            Ok(schema) => schema.validate(input, "input"),
            Err(problems) => problems,
        };
        found
            .into_iter()
            .map(|found| violation(found.path, found.message))
            .collect()
    }
}

fn violation(field: impl Into<String>, message: impl Into<String>) -> FieldViolation {
    let (field, message) = (field.into(), message.into());
    FieldViolation {
        field: truncate(&field, MAX_VIOLATION_BYTES).into_owned(),
        message: truncate(&message, MAX_VIOLATION_BYTES).into_owned(),
    }
}

/// The first [`MAX_VIOLATIONS`] problems, and a last one saying how many more there are.
pub fn at_most(mut violations: Vec<FieldViolation>) -> Vec<FieldViolation> {
    if violations.len() > MAX_VIOLATIONS {
        let more = violations.len() - (MAX_VIOLATIONS - 1);
        violations.truncate(MAX_VIOLATIONS - 1);
        violations.push(violation(
            "definition_json",
            format!("{more} more problems are not listed"),
        ));
    }
    violations
}

fn too_many_steps(count: usize) -> Option<FieldViolation> {
    (count > MAX_STEPS).then(|| {
        violation(
            "steps",
            format!("has {count} steps; a chain may have at most {MAX_STEPS}"),
        )
    })
}

/// Whether objects and lists in `value` nest deeper than `max` levels (a scalar is level 0).
/// Iterative, so a value of any depth is measured without recursion.
pub fn nests_deeper(value: &Value, max: usize) -> bool {
    let mut pending = vec![(value, 0)];
    while let Some((value, depth)) = pending.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(fields) => Box::new(fields.values()),
            _ => continue,
        };
        if depth == max {
            return true;
        }
        pending.extend(children.map(|child| (child, depth + 1)));
    }
    false
}

/// Parses and checks a definition document; every problem is reported.
pub fn parse(document: &str) -> Result<Definition, Vec<FieldViolation>> {
    if document.len() > MAX_DEFINITION_BYTES {
        return Err(vec![violation(
            "definition_json",
            format!(
                "is {} bytes; a definition may be at most {MAX_DEFINITION_BYTES}",
                document.len()
            ),
        )]);
    }
    let value: Value = serde_json::from_str(document)
        .map_err(|err| vec![violation("definition_json", format!("is not JSON: {err}"))])?;
    if sankalpa_kit::bounded_json::holds_nul(&value) {
        return Err(vec![violation(
            "definition_json",
            sankalpa_kit::bounded_json::NUL_REFUSED,
        )]);
    }
    let Value::Object(fields) = value else {
        return Err(vec![violation("definition_json", "must be a JSON object")]);
    };
    let definition = if fields.contains_key("steps") {
        dag_form(fields)?
    } else if fields.contains_key("agents") {
        simple_form(fields)?
    } else if fields.contains_key("condition") {
        conditional_form(fields)?
    } else {
        return Err(vec![violation(
            "definition_json",
            "needs `steps` (DAG form), `agents` (simple form) or `condition` (conditional form)",
        )]);
    };
    let problems = check(&definition);
    if problems.is_empty() {
        Ok(definition)
    } else {
        Err(problems)
    }
}

fn text_field(fields: &Map<String, Value>, name: &str) -> Result<String, FieldViolation> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(_) => Err(violation(name, "must be a string")),
    }
}

/// What every form has besides its steps.
struct Header {
    name: String,
    description: String,
    input_schema: Option<Value>,
}

fn header(fields: &Map<String, Value>) -> Result<Header, Vec<FieldViolation>> {
    let bounded = |name: &str, max: usize| {
        text_field(fields, name).and_then(|text| {
            if text.chars().count() > max {
                Err(violation(name, format!("must be at most {max} characters")))
            } else {
                Ok(text)
            }
        })
    };
    let name = bounded("name", MAX_NAME_CHARS);
    let description = bounded("description", MAX_DESCRIPTION_CHARS);
    let input_schema = fields.get("input_schema").filter(|s| !s.is_null()).cloned();
    match (name, description) {
        (Ok(name), Ok(description)) => Ok(Header {
            name,
            description,
            input_schema,
        }),
        (name, description) => Err([name.err(), description.err()]
            .into_iter()
            .flatten()
            .collect()),
    }
}

fn dag_form(mut fields: Map<String, Value>) -> Result<Definition, Vec<FieldViolation>> {
    let header = header(&fields)?;
    let Some(Value::Array(raw_steps)) = fields.remove("steps") else {
        return Err(vec![violation("steps", "must be a list of steps")]);
    };
    if let Some(problem) = too_many_steps(raw_steps.len()) {
        return Err(vec![problem]);
    }
    let mut steps = Vec::with_capacity(raw_steps.len());
    let mut problems = Vec::new();
    for (index, raw) in raw_steps.into_iter().enumerate() {
        match serde_json::from_value::<StepDocument>(raw).map(StepDocument::into_step) {
            Ok(Ok(step)) => steps.push(step),
            Ok(Err(found)) => problems.extend(
                found
                    .into_iter()
                    .map(|(field, message)| violation(format!("steps[{index}].{field}"), message)),
            ),
            Err(err) => problems.push(violation(format!("steps[{index}]"), err.to_string())),
        }
    }
    if problems.is_empty() {
        Ok(Definition {
            name: header.name,
            description: header.description,
            input_schema: header.input_schema,
            steps,
        })
    } else {
        Err(problems)
    }
}

fn agent_list(fields: &Map<String, Value>, key: &str) -> Result<Vec<String>, FieldViolation> {
    match fields.get(key) {
        Some(Value::Array(items)) if items.len() > MAX_STEPS => {
            Err(too_many_steps(items.len()).expect("more than MAX_STEPS items are too many steps"))
        }
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| violation(format!("{key}[{index}]"), "must be an agent name"))
            })
            .collect(),
        _ => Err(violation(key, "must be a list of agent names")),
    }
}

/// Steps named after their agents, numbered from the second use of an agent on.
fn steps_for(agents: &[String], taken: &mut HashMap<String, usize>, chained: bool) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::with_capacity(agents.len());
    for agent in agents {
        let uses = taken.entry(agent.clone()).or_insert(0);
        *uses += 1;
        let id = if *uses == 1 {
            agent.clone()
        } else {
            format!("{agent}_{uses}")
        };
        let needs = match steps.last() {
            Some(previous) if chained => vec![previous.id.clone()],
            _ => Vec::new(),
        };
        steps.push(Step {
            id,
            needs,
            when: None,
            on_failure: OnFailure::Fail,
            on_skip: OnSkip::SkipDependants,
            position: None,
            kind: StepKind::Agent(AgentStep {
                agent: agent.clone(),
                input: None,
                retry: Retry::default(),
                timeout_ms: 0,
                model: None,
                for_each: None,
            }),
        });
    }
    steps
}

fn simple_form(fields: Map<String, Value>) -> Result<Definition, Vec<FieldViolation>> {
    let header = header(&fields)?;
    let agents = agent_list(&fields, "agents").map_err(|problem| vec![problem])?;
    let chained = match fields.get("mode") {
        None | Some(Value::Null) => true,
        Some(Value::String(mode)) if mode == "sequential" => true,
        Some(Value::String(mode)) if mode == "parallel" => false,
        // Anything else, a number too, is refused rather than read as the default.
        Some(_) => {
            return Err(vec![violation(
                "mode",
                "must be \"sequential\" or \"parallel\"",
            )]);
        }
    };
    Ok(Definition {
        name: header.name,
        description: header.description,
        input_schema: header.input_schema,
        steps: steps_for(&agents, &mut HashMap::new(), chained),
    })
}

fn conditional_form(fields: Map<String, Value>) -> Result<Definition, Vec<FieldViolation>> {
    let header = header(&fields)?;
    let condition = match fields.get("condition") {
        Some(Value::String(condition)) => condition.clone(),
        _ => return Err(vec![violation("condition", "must be an expression")]),
    };
    let then = agent_list(&fields, "then").map_err(|problem| vec![problem])?;
    let otherwise = match fields.get("else") {
        None => Vec::new(),
        Some(_) => agent_list(&fields, "else").map_err(|problem| vec![problem])?,
    };
    let mut taken = HashMap::new();
    let mut steps = steps_for(&then, &mut taken, true);
    if let Some(first) = steps.first_mut() {
        first.when = Some(condition.clone());
    }
    let mut other_steps = steps_for(&otherwise, &mut taken, true);
    if let Some(first) = other_steps.first_mut() {
        first.when = Some(format!("!({condition})"));
    }
    steps.extend(other_steps);
    Ok(Definition {
        name: header.name,
        description: header.description,
        input_schema: header.input_schema,
        steps,
    })
}

fn valid_step_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn valid_agent_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn agent_problems(at: &str, step: &AgentStep) -> Vec<FieldViolation> {
    let mut problems = Vec::new();
    if !valid_agent_name(&step.agent) {
        problems.push(violation(
            format!("{at}.agent"),
            "must be an agent name ([a-z][a-z0-9_]{0,63})",
        ));
    }
    problems.extend(retry_problems(at, &step.retry));
    if let Some(for_each) = &step.for_each {
        problems.extend(map_problems(at, for_each));
    }
    if step.timeout_ms > MAX_TIMEOUT_MS {
        problems.push(violation(
            format!("{at}.timeout_ms"),
            format!("must be at most {MAX_TIMEOUT_MS}"),
        ));
    }
    if let Some(model) = &step.model
        && !valid_model(model)
    {
        problems.push(violation(
            format!("{at}.model"),
            format!("must be provider/model, at most {MAX_MODEL_CHARS} characters"),
        ));
    }
    if let Some(input) = &step.input {
        if !input.is_object() {
            problems.push(violation(format!("{at}.input"), "must be a JSON object"));
        } else if nests_deeper(input, MAX_JSON_DEPTH) {
            problems.push(violation(
                format!("{at}.input"),
                format!("nests deeper than {MAX_JSON_DEPTH} levels"),
            ));
        }
    }
    problems
}

fn map_problems(at: &str, for_each: &ForEach) -> Vec<FieldViolation> {
    let mut problems = Vec::new();
    if mapping_source(&for_each.source).is_none() {
        problems.push(violation(
            format!("{at}.for_each"),
            "must be `${<expression>}`, an expression whose value is a list",
        ));
    }
    if !(1..=MAX_PARALLEL_ITEMS).contains(&for_each.max_parallel) {
        problems.push(violation(
            format!("{at}.max_parallel"),
            format!("must be 1 to {MAX_PARALLEL_ITEMS}"),
        ));
    }
    problems
}

/// Whether `name` can be a template's name (its file name in `catalog/chains`).
fn valid_template_name(name: &str) -> bool {
    valid_step_id(name)
}

fn chain_problems(at: &str, chain: &ChainStep) -> Vec<FieldViolation> {
    let mut problems = Vec::new();
    let call = &chain.call;
    match (&call.id, &call.template) {
        (Some(id), None) => {
            // Hyphenated or simple, as the published schema has it (not braced or a URN).
            let plain = id.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
            if !plain || uuid::Uuid::try_parse(id).is_err() {
                problems.push(violation(
                    format!("{at}.chain.id"),
                    "must be a chain id (UUID)",
                ));
            }
        }
        (None, Some(template)) => {
            if !valid_template_name(template) {
                problems.push(violation(
                    format!("{at}.chain.template"),
                    "must be a template name (1 to 64 letters, digits, `_` or `-`)",
                ));
            }
        }
        _ => problems.push(violation(
            format!("{at}.chain"),
            "must name one chain: `id` (a stored chain) or `template`",
        )),
    }
    problems.extend(retry_problems(at, &chain.retry));
    if let Some(input) = &call.input {
        if !input.is_object() {
            problems.push(violation(
                format!("{at}.chain.input"),
                "must be a JSON object",
            ));
        } else if nests_deeper(input, MAX_JSON_DEPTH) {
            problems.push(violation(
                format!("{at}.chain.input"),
                format!("nests deeper than {MAX_JSON_DEPTH} levels"),
            ));
        }
    }
    problems
}

fn retry_problems(at: &str, retry: &Retry) -> Vec<FieldViolation> {
    let mut problems = Vec::new();
    if !(1..=MAX_ATTEMPTS).contains(&retry.attempts) {
        problems.push(violation(
            format!("{at}.retry.attempts"),
            format!("must be 1 to {MAX_ATTEMPTS}"),
        ));
    }
    if retry.backoff_ms > MAX_BACKOFF_MS {
        problems.push(violation(
            format!("{at}.retry.backoff_ms"),
            format!("must be at most {MAX_BACKOFF_MS}"),
        ));
    }
    problems
}

/// Whether `approver` is `role:<role>` or `user:<user id>`, each 1 to 64 letters, digits or
/// `_ - . @`.
fn valid_approver(approver: &str) -> bool {
    let name = approver
        .strip_prefix("role:")
        .or_else(|| approver.strip_prefix("user:"));
    name.is_some_and(|name| {
        (1..=64).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@'))
    })
}

fn approval_problems(at: &str, approval: &Approval) -> Vec<FieldViolation> {
    let mut problems = Vec::new();
    let prompt_chars = approval.prompt.chars().count();
    if approval.prompt.trim().is_empty() || prompt_chars > MAX_PROMPT_CHARS {
        problems.push(violation(
            format!("{at}.approval.prompt"),
            format!("must be 1 to {MAX_PROMPT_CHARS} characters"),
        ));
    }
    if !(1..=MAX_APPROVERS).contains(&approval.approvers.len()) {
        problems.push(violation(
            format!("{at}.approval.approvers"),
            format!("must name 1 to {MAX_APPROVERS} approvers"),
        ));
    } else {
        for (index, approver) in approval.approvers.iter().enumerate() {
            if approver.len() > MAX_APPROVER_BYTES || !valid_approver(approver) {
                problems.push(violation(
                    format!("{at}.approval.approvers[{index}]"),
                    "must be `role:<role>` or `user:<user id>`",
                ));
            }
        }
    }
    if !(MIN_APPROVAL_TIMEOUT_MS..=MAX_APPROVAL_TIMEOUT_MS).contains(&approval.timeout_ms) {
        problems.push(violation(
            format!("{at}.approval.timeout_ms"),
            format!("must be {MIN_APPROVAL_TIMEOUT_MS} to {MAX_APPROVAL_TIMEOUT_MS}"),
        ));
    }
    problems
}

/// The structural checks of a DAG-form definition.
fn check(definition: &Definition) -> Vec<FieldViolation> {
    let mut problems = Vec::new();
    if definition.steps.is_empty() {
        problems.push(violation("steps", "a chain needs at least one step"));
    }
    if definition.steps.len() > MAX_STEPS {
        problems.push(violation(
            "steps",
            format!(
                "has {} steps; a chain may have at most {MAX_STEPS}",
                definition.steps.len()
            ),
        ));
        return problems;
    }
    if let Some(source) = &definition.input_schema
        && let Err(found) = Schema::compile(source, "input_schema")
    {
        problems.extend(
            found
                .into_iter()
                .map(|found| violation(found.path, found.message)),
        );
    }
    let mut seen = HashSet::new();
    for (index, step) in definition.steps.iter().enumerate() {
        let at = format!("steps[{index}]");
        if !valid_step_id(&step.id) {
            problems.push(violation(
                format!("{at}.id"),
                "must be 1 to 64 letters, digits, `_` or `-`",
            ));
        } else if !seen.insert(step.id.as_str()) {
            problems.push(violation(
                format!("{at}.id"),
                format!("duplicate step id `{}`", step.id),
            ));
        }
        if let Some(position) = step.position
            && ![position.x, position.y]
                .iter()
                .all(|v| v.is_finite() && v.abs() <= MAX_POSITION)
        {
            problems.push(violation(
                format!("{at}.position"),
                format!("x and y must be numbers from -{MAX_POSITION} to {MAX_POSITION}"),
            ));
        }
        match &step.kind {
            StepKind::Agent(agent) => problems.extend(agent_problems(&at, agent)),
            StepKind::Approval(approval) => problems.extend(approval_problems(&at, approval)),
            StepKind::Chain(chain) => problems.extend(chain_problems(&at, chain)),
        }
        if step.needs.len() > MAX_NEEDS {
            problems.push(violation(
                format!("{at}.needs"),
                format!("has {} entries; the most is {MAX_NEEDS}", step.needs.len()),
            ));
        }
    }
    let ids: HashSet<&str> = definition
        .steps
        .iter()
        .map(|step| step.id.as_str())
        .collect();
    let mut graph_ok = true;
    for (index, step) in definition.steps.iter().enumerate() {
        if step.needs.len() > MAX_NEEDS {
            graph_ok = false;
            continue;
        }
        for (need_index, need) in step.needs.iter().enumerate() {
            let field = format!("steps[{index}].needs[{need_index}]");
            if !valid_step_id(need) {
                problems.push(violation(field, "is not a step id"));
                graph_ok = false;
            } else if need == &step.id {
                problems.push(violation(
                    field,
                    format!("step `{need}` cannot need itself"),
                ));
                graph_ok = false;
            } else if !ids.contains(need.as_str()) {
                problems.push(violation(
                    field,
                    format!("needs step `{need}`, which is not in the chain"),
                ));
                graph_ok = false;
            }
        }
    }
    // Syntax first, for every step; which steps an expression may read needs a sound graph.
    let ancestors = if !graph_ok {
        None
    } else if let Some(cycle) = find_cycle(definition) {
        problems.push(violation("steps", format!("cycle: {}", cycle.join(" -> "))));
        None
    } else {
        Some(ancestors(definition))
    };
    // Each expression with its field and whether it may read `item` and `index`.
    let mut sources_by_step = Vec::with_capacity(definition.steps.len());
    for (index, step) in definition.steps.iter().enumerate() {
        let mut sources = Vec::new();
        if let Some(when) = &step.when {
            sources.push((format!("steps[{index}].when"), when.clone(), false));
        }
        let (input, field, per_item) = match &step.kind {
            StepKind::Agent(agent) => {
                if let Some(for_each) = &agent.for_each
                    && let Some(source) = mapping_source(&for_each.source)
                {
                    sources.push((format!("steps[{index}].for_each"), source.to_owned(), false));
                }
                (agent.input.as_ref(), "input", agent.for_each.is_some())
            }
            StepKind::Chain(chain) => (chain.call.input.as_ref(), "chain.input", false),
            StepKind::Approval(_) => (None, "", false),
        };
        if let Some(input) = input
            && !nests_deeper(input, MAX_JSON_DEPTH)
        {
            sources.extend(
                mappings(input, format!("steps[{index}].{field}"))
                    .into_iter()
                    .map(|(field, source)| (field, source, per_item)),
            );
        }
        sources_by_step.push(sources);
    }
    let expressions: usize = sources_by_step.iter().map(Vec::len).sum();
    if expressions > MAX_EXPRESSIONS {
        problems.push(violation(
            "steps",
            format!(
                "hold {expressions} expressions; a definition may hold at most {MAX_EXPRESSIONS}"
            ),
        ));
        return problems;
    }
    for (step, sources) in definition.steps.iter().zip(sources_by_step) {
        for (field, source, per_item) in sources {
            let parsed = match expr::parse(&source) {
                Ok(parsed) => parsed,
                Err(err) => {
                    problems.push(violation(field, format!("bad expression: {err}")));
                    continue;
                }
            };
            if !per_item && parsed.reads_item() {
                problems.push(violation(
                    field.clone(),
                    "reads `item` or `index`, which only the `input` of a step with `for_each` has",
                ));
            }
            let Some(reachable) = ancestors.as_ref().and_then(|all| all.get(&step.id)) else {
                continue;
            };
            for referenced in parsed.step_references() {
                if !reachable.contains(&referenced) {
                    problems.push(violation(
                        field.clone(),
                        format!(
                            "reads step `{referenced}`, which this step does not need (directly or through others)"
                        ),
                    ));
                }
            }
        }
    }
    problems
}

/// The `${...}` expressions inside an input mapping (nested at most [`MAX_JSON_DEPTH`]), with
/// their paths.
fn mappings(value: &Value, path: String) -> Vec<(String, String)> {
    match value {
        Value::String(text) => mapping_source(text)
            .map(|source| vec![(path, source.to_owned())])
            .unwrap_or_default(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .flat_map(|(index, item)| mappings(item, field_path(&path, format_args!("[{index}]"))))
            .collect(),
        Value::Object(fields) => fields
            .iter()
            .flat_map(|(key, item)| mappings(item, field_path(&path, format_args!(".{key}"))))
            .collect(),
        _ => Vec::new(),
    }
}

/// `path` followed by `part`, cut as a violation's field is: a path through long keys would
/// otherwise be copied, whole, for every value below them.
fn field_path(path: &str, part: std::fmt::Arguments<'_>) -> String {
    if path.len() >= MAX_VIOLATION_BYTES {
        return path.to_owned();
    }
    truncate(&format!("{path}{part}"), MAX_VIOLATION_BYTES).into_owned()
}

fn mapping_source(text: &str) -> Option<&str> {
    text.strip_prefix("${")?.strip_suffix('}')
}

/// Why a mapping did not render.
#[derive(Debug, PartialEq)]
pub enum MappingError {
    /// An expression did not parse or evaluate: which, and why.
    Invalid(String),
    /// The rendered input would be larger than the limit it was rendered against.
    TooLarge,
}

/// The input a mapped step gets: `mapping` with each `${expr}` replaced by its value, at most
/// `limit` bytes of JSON. Each value is measured before it is copied in, so a mapping that
/// names a large output many times fails at the limit rather than after copying it all.
pub fn render_mapping(mapping: &Value, scope: &Value, limit: usize) -> Result<Value, MappingError> {
    render_with(mapping, scope, None, limit)
}

/// The input of one item of a map step: [`render_mapping`] with `item` and `index` naming it.
pub fn render_item_mapping(
    mapping: &Value,
    scope: &Value,
    item: &Value,
    index: usize,
    limit: usize,
) -> Result<Value, MappingError> {
    render_with(mapping, scope, Some((item, &Value::from(index))), limit)
}

fn render_with(
    mapping: &Value,
    scope: &Value,
    item: Option<(&Value, &Value)>,
    limit: usize,
) -> Result<Value, MappingError> {
    let mut room = limit;
    let rendered = render(mapping, scope, item, &mut room)?;
    // The literals around the expressions count too.
    sizes::json_size(&rendered, limit).ok_or(MappingError::TooLarge)?;
    Ok(rendered)
}

fn render(
    mapping: &Value,
    scope: &Value,
    item: Option<(&Value, &Value)>,
    room: &mut usize,
) -> Result<Value, MappingError> {
    Ok(match mapping {
        Value::String(text) => match mapping_source(text) {
            Some(source) => {
                let invalid = |err: &dyn std::fmt::Display| {
                    MappingError::Invalid(format!("`{source}`: {err}"))
                };
                let parsed = expr::parse(source).map_err(|err| invalid(&err))?;
                let value = match item {
                    Some((item, index)) => parsed.evaluate_item(scope, item, index),
                    None => parsed.evaluate(scope),
                }
                .map_err(|err| invalid(&err))?;
                *room -= sizes::json_size(&value, *room).ok_or(MappingError::TooLarge)?;
                value.into_owned()
            }
            None => mapping.clone(),
        },
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|value| render(value, scope, item, room))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(key, value)| Ok((key.clone(), render(value, scope, item, room)?)))
                .collect::<Result<_, MappingError>>()?,
        ),
        other => other.clone(),
    })
}

/// A cycle among the steps, as the ids along it with the first repeated at the end.
fn find_cycle(definition: &Definition) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let index: HashMap<&str, usize> = definition
        .steps
        .iter()
        .enumerate()
        .map(|(position, step)| (step.id.as_str(), position))
        .collect();
    let mut marks = vec![Mark::New; definition.steps.len()];
    for start in 0..definition.steps.len() {
        if marks[start] != Mark::New {
            continue;
        }
        // Iterative depth-first search along `needs`; `path` is the current chain of steps.
        let mut path: Vec<(usize, usize)> = vec![(start, 0)];
        marks[start] = Mark::OnPath;
        while let Some(&mut (node, ref mut next)) = path.last_mut() {
            let needs = &definition.steps[node].needs;
            if *next < needs.len() {
                let need = index[needs[*next].as_str()];
                *next += 1;
                match marks[need] {
                    Mark::New => {
                        marks[need] = Mark::OnPath;
                        path.push((need, 0));
                    }
                    Mark::OnPath => {
                        let from = path.iter().position(|(on, _)| *on == need).unwrap_or(0);
                        // `needs` point backwards in time; name the cycle in running order.
                        let mut cycle: Vec<String> = path[from..]
                            .iter()
                            .rev()
                            .map(|(on, _)| definition.steps[*on].id.clone())
                            .collect();
                        cycle.push(cycle[0].clone());
                        return Some(cycle);
                    }
                    Mark::Done => {}
                }
            } else {
                marks[node] = Mark::Done;
                path.pop();
            }
        }
    }
    None
}

/// For each step, every step it needs directly or through others. Needs an acyclic graph.
fn ancestors(definition: &Definition) -> HashMap<String, HashSet<String>> {
    let mut memo: HashMap<String, HashSet<String>> = HashMap::new();
    fn visit(
        id: &str,
        definition: &Definition,
        memo: &mut HashMap<String, HashSet<String>>,
    ) -> HashSet<String> {
        if let Some(found) = memo.get(id) {
            return found.clone();
        }
        let mut all = HashSet::new();
        if let Some(step) = definition.step(id) {
            for need in &step.needs {
                all.insert(need.clone());
                all.extend(visit(need, definition, memo));
            }
        }
        memo.insert(id.to_owned(), all.clone());
        all
    }
    for step in &definition.steps {
        visit(&step.id, definition, &mut memo);
    }
    memo
}

/// The default input of a step: the chain input merged with the outputs of the steps it needs,
/// in the order of `needs`, later keys winning.
pub fn merged_input(input: &Value, needs: &[String], outputs: &Map<String, Value>) -> Value {
    let mut merged = match input {
        Value::Object(fields) => fields.clone(),
        _ => Map::new(),
    };
    for need in needs {
        if let Some(Value::Object(fields)) = outputs.get(need) {
            merged.extend(
                fields
                    .iter()
                    .map(|(key, value)| (key.clone(), value.clone())),
            );
        }
    }
    Value::Object(merged)
}

/// `input` without the fields outside `accepted`: a step's default input is a merge of
/// everything before it, and an agent whose schema forbids other fields would refuse the rest
/// (the second `hello_world` of a sequence gets the first one's `message`).
pub fn only_accepted(input: &Value, accepted: &BTreeSet<String>) -> Value {
    match input {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .filter(|(key, _)| accepted.contains(*key))
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn problems(document: Value) -> Vec<String> {
        parse(&document.to_string())
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|problem| format!("{}: {}", problem.field, problem.message))
            .collect()
    }

    #[test]
    fn the_simple_forms_become_dags() {
        let sequential = parse(r#"{"agents": ["a", "b", "a"]}"#).unwrap();
        let ids: Vec<_> = sequential.steps.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "a_2"]);
        assert_eq!(sequential.steps[2].needs, ["b"]);
        let parallel = parse(r#"{"agents": ["a", "b"], "mode": "parallel"}"#).unwrap();
        assert!(parallel.steps.iter().all(|step| step.needs.is_empty()));
        assert_eq!(
            problems(json!({"agents": ["a"], "mode": 1})),
            ["mode: must be \"sequential\" or \"parallel\""]
        );
        let conditional =
            parse(r#"{"condition": "input.tests", "then": ["t", "u"], "else": ["r"]}"#).unwrap();
        assert_eq!(conditional.steps[0].when.as_deref(), Some("input.tests"));
        assert_eq!(conditional.steps[1].needs, ["t"]);
        assert_eq!(conditional.steps[2].when.as_deref(), Some("!(input.tests)"));
    }

    #[test]
    fn an_input_schema_is_checked_when_parsed_and_names_the_input_fields() {
        let found = problems(json!({
            "input_schema": {"type": "object", "properties": {"n": {"type": "nmber"}}},
            "agents": ["x"]
        }));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("input_schema.properties.n.type: "),
            "{found:?}"
        );
        let definition = parse(
            &json!({
                "input_schema": {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}},
                "steps": [{"id": "a", "agent": "x", "when": "input.n > 1", "on_skip": "continue"}]
            })
            .to_string(),
        )
        .unwrap();
        assert_eq!(definition.steps[0].on_skip, OnSkip::Continue);
        assert!(definition.input_problems(&json!({"n": 2})).is_empty());
        let refused = definition.input_problems(&json!({"n": "two"}));
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].field, "input.n");
        assert_eq!(definition.input_problems(&json!({}))[0].field, "input.n");
    }

    #[test]
    fn an_approval_step_round_trips_through_the_stored_form() {
        let definition = parse(
            &json!({"steps": [
                {"id": "plan", "agent": "x"},
                {"id": "approve", "needs": ["plan"], "when": "steps.plan.ok",
                 "approval": {"prompt": "Deploy?", "approvers": ["role:admin", "user:u-1"],
                              "timeout_ms": 1000, "on_timeout": "skip"}},
            ]})
            .to_string(),
        )
        .unwrap();
        let approval = definition.steps[1].approval().unwrap();
        assert_eq!(approval.on_timeout, OnTimeout::Skip);
        assert_eq!(definition.steps[1].agent(), None);
        assert_eq!(definition.agents(), ["x"]);
        let stored = serde_json::to_value(&definition).unwrap();
        assert_eq!(
            stored["steps"][1],
            json!({"id": "approve", "needs": ["plan"], "when": "steps.plan.ok",
                   "approval": {"prompt": "Deploy?", "approvers": ["role:admin", "user:u-1"],
                                "timeout_ms": 1000, "on_timeout": "skip"},
                   "on_failure": "fail", "on_skip": "skip_dependants"})
        );
        // An agent step is stored as it was before steps had kinds.
        assert_eq!(
            stored["steps"][0],
            json!({"id": "plan", "agent": "x", "needs": [],
                   "retry": {"attempts": 1, "backoff_ms": 0}, "timeout_ms": 0,
                   "on_failure": "fail", "on_skip": "skip_dependants"})
        );
        let back: Definition = serde_json::from_value(stored).unwrap();
        assert_eq!(back, definition);
    }

    #[test]
    fn a_position_is_kept_and_bounded() {
        let definition = parse(
            &json!({"steps": [
                {"id": "a", "agent": "x", "position": {"x": -12.5, "y": 300}},
                {"id": "b", "approval": {"prompt": "p", "approvers": ["role:a"]},
                 "position": {"x": 0, "y": 1_000_000}},
            ]})
            .to_string(),
        )
        .unwrap();
        assert_eq!(
            definition.steps[0].position,
            Some(Position { x: -12.5, y: 300.0 })
        );
        let stored = serde_json::to_value(&definition).unwrap();
        assert_eq!(
            stored["steps"][1]["position"],
            json!({"x": 0.0, "y": 1_000_000.0})
        );
        let back: Definition = serde_json::from_value(stored).unwrap();
        assert_eq!(back, definition);

        let found = problems(json!({"steps": [
            {"id": "a", "agent": "x", "position": {"x": 1_000_001, "y": 0}},
        ]}));
        assert_eq!(
            found,
            ["steps[0].position: x and y must be numbers from -1000000 to 1000000"],
            "{found:?}"
        );
        let found = problems(json!({"steps": [
            {"id": "a", "agent": "x", "position": {"x": 1}},
        ]}));
        assert!(
            found[0].starts_with("steps[0]: missing field `y`"),
            "{found:?}"
        );
    }

    #[test]
    fn an_approval_step_is_checked_field_by_field() {
        let found = problems(json!({"steps": [
            {"id": "a", "approval": {"prompt": "", "approvers": ["admin", "role:ok"],
                                      "timeout_ms": 10}},
            {"id": "b", "approval": {"prompt": "p", "approvers": []}},
        ]}));
        assert_eq!(
            found,
            [
                "steps[0].approval.prompt: must be 1 to 2000 characters",
                "steps[0].approval.approvers[0]: must be `role:<role>` or `user:<user id>`",
                "steps[0].approval.timeout_ms: must be 100 to 604800000",
                "steps[1].approval.approvers: must name 1 to 20 approvers",
            ]
            .map(str::to_owned),
            "{found:?}"
        );
        // A step of no kind, two kinds, or another kind's fields is refused before the checks.
        let found = problems(json!({"steps": [
            {"id": "c", "approval": {"prompt": "p", "approvers": ["role:a"]},
             "input": {}, "retry": {"attempts": 2}, "timeout_ms": 5},
            {"id": "d", "agent": "x", "approval": {"prompt": "p", "approvers": ["role:a"]}},
            {"id": "e"},
        ]}));
        assert_eq!(
            found,
            [
                "steps[0].input: does not apply to an approval step",
                "steps[0].retry: does not apply to an approval step",
                "steps[0].timeout_ms: does not apply to an approval step; its wait is `approval.timeout_ms`",
                "steps[1].approval: a step has one kind: give one of `agent`, `approval` or `chain`",
                "steps[2].agent: a step needs `agent` (an agent or map step), `approval` (an approval step) or `chain` (a chain step)",
            ]
            .map(str::to_owned),
            "{found:?}"
        );
    }

    #[test]
    fn an_agent_step_names_its_model_and_only_it_may() {
        let definition = parse(
            &json!({"steps": [{"id": "t", "agent": "x", "model": "acme/meta-llama/Llama-3"}]})
                .to_string(),
        )
        .unwrap();
        let stored = serde_json::to_value(&definition).unwrap();
        assert_eq!(stored["steps"][0]["model"], "acme/meta-llama/Llama-3");
        let back: Definition = serde_json::from_value(stored).unwrap();
        assert_eq!(back, definition);
        let found = problems(json!({"steps": [
            {"id": "a", "agent": "x", "model": "no-provider"},
            {"id": "b", "agent": "x", "model": "acme/has space"},
        ]}));
        assert_eq!(
            found,
            [
                "steps[0].model: must be provider/model, at most 264 characters",
                "steps[1].model: must be provider/model, at most 264 characters",
            ]
            .map(str::to_owned),
            "{found:?}"
        );
        let found = problems(json!({"steps": [
            {"id": "c", "approval": {"prompt": "p", "approvers": ["role:a"]}, "model": "a/m"},
        ]}));
        assert_eq!(
            found,
            ["steps[0].model: does not apply to an approval step".to_owned()]
        );
    }

    #[test]
    fn map_and_chain_steps_round_trip_and_are_checked() {
        let definition = parse(
            &json!({"steps": [
                {"id": "plan", "agent": "x"},
                {"id": "each", "agent": "x", "needs": ["plan"],
                 "for_each": "${steps.plan.entities}", "max_parallel": 3,
                 "input": {"entity": "${item}", "at": "${index}"}},
                {"id": "sub", "needs": ["each"], "retry": {"attempts": 2},
                 "chain": {"template": "hello-sequence", "input": {"all": "${steps.each}"}}},
            ]})
            .to_string(),
        )
        .unwrap();
        let kinds: Vec<_> = definition.steps.iter().map(Step::kind_name).collect();
        assert_eq!(kinds, ["agent", "map", "chain"]);
        let stored = serde_json::to_value(&definition).unwrap();
        let back: Definition = serde_json::from_value(stored.clone()).unwrap();
        assert_eq!(back, definition);
        assert_eq!(stored["steps"][1]["for_each"], "${steps.plan.entities}");
        assert_eq!(stored["steps"][2]["chain"]["template"], "hello-sequence");
        let found = problems(json!({"steps": [
            {"id": "a", "agent": "x", "for_each": "steps.b", "max_parallel": 65},
            {"id": "b", "agent": "x", "max_parallel": 2},
            {"id": "c", "agent": "x", "input": {"v": "${item.name}"}},
            {"id": "d", "chain": {"id": "nope"}, "input": {}, "timeout_ms": 1},
            {"id": "e", "chain": {"id": "0190f5a0-0000-7000-8000-000000000000", "template": "t"}},
            {"id": "f", "chain": {"template": "t"}, "approval": {"prompt": "p", "approvers": ["role:a"]}},
        ]}));
        assert_eq!(
            found,
            [
                "steps[1].max_parallel: applies only to a map step, one with `for_each`",
                "steps[3].input: does not apply to a chain step; the child run's input is `chain.input`",
                "steps[3].timeout_ms: does not apply to a chain step",
                "steps[5].chain: a step has one kind: give one of `agent`, `approval` or `chain`",
            ]
            .map(str::to_owned),
            "{found:?}"
        );
        let found = problems(json!({"steps": [
            {"id": "a", "agent": "x", "for_each": "steps.b", "max_parallel": 65},
            {"id": "c", "agent": "x", "input": {"v": "${item.name}"}},
            {"id": "d", "chain": {"id": "nope"}},
            {"id": "e", "chain": {"id": "0190f5a0-0000-7000-8000-000000000000", "template": "t"}},
            {"id": "g", "agent": "x", "for_each": "${steps.h}"},
            {"id": "h", "agent": "x"},
        ]}));
        assert_eq!(
            found,
            [
                "steps[0].for_each: must be `${<expression>}`, an expression whose value is a list",
                "steps[0].max_parallel: must be 1 to 64",
                "steps[2].chain.id: must be a chain id (UUID)",
                "steps[3].chain: must name one chain: `id` (a stored chain) or `template`",
                "steps[1].input.v: reads `item` or `index`, which only the `input` of a step with `for_each` has",
                "steps[4].for_each: reads step `h`, which this step does not need (directly or through others)",
            ]
            .map(str::to_owned),
            "{found:?}"
        );
    }

    #[test]
    fn a_cycle_is_named() {
        let found = problems(json!({"steps": [
            {"id": "a", "agent": "x", "needs": ["c"]},
            {"id": "b", "agent": "x", "needs": ["a"]},
            {"id": "c", "agent": "x", "needs": ["b"]},
            {"id": "d", "agent": "x"},
        ]}));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("steps: cycle: "), "{found:?}");
        for id in ["a", "b", "c"] {
            assert!(found[0].contains(id), "{found:?}");
        }
        assert!(!found[0].contains('d'), "{found:?}");
    }

    #[test]
    fn every_problem_is_reported_with_its_place() {
        let found = problems(json!({"steps": [
            {"id": "a", "agent": "x", "when": "input.flag =="},
            {"id": "a", "agent": "Bad"},
            {"id": "c", "agent": "x", "needs": ["nope"]},
        ]}));
        assert!(
            found
                .iter()
                .any(|p| p.starts_with("steps[0].when: bad expression")),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|p| p == "steps[1].id: duplicate step id `a`"),
            "{found:?}"
        );
        assert!(
            found.iter().any(|p| p.starts_with("steps[1].agent")),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|p| p == "steps[2].needs[0]: needs step `nope`, which is not in the chain"),
            "{found:?}"
        );
    }

    #[test]
    fn conditions_may_only_read_steps_that_come_before() {
        let found = problems(json!({"steps": [
            {"id": "a", "agent": "x"},
            {"id": "b", "agent": "x", "when": "steps.a.ok"},
            {"id": "c", "agent": "x", "needs": ["b", "a"], "input": {"v": "${steps.a.v}", "w": "${steps.d.v}"}},
            {"id": "d", "agent": "x"},
        ]}));
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].starts_with("steps[1].when: reads step `a`"),
            "{found:?}"
        );
        assert!(
            found[1].starts_with("steps[2].input.w: reads step `d`"),
            "{found:?}"
        );
    }

    #[test]
    fn more_than_two_hundred_steps_are_refused() {
        let agents: Vec<String> = (0..201).map(|_| "x".to_owned()).collect();
        let found = problems(json!({"agents": agents, "mode": "parallel"}));
        assert_eq!(
            found,
            ["steps: has 201 steps; a chain may have at most 200"]
        );
    }

    #[test]
    fn every_dimension_of_a_definition_is_bounded() {
        let huge = json!({"agents": ["x"], "description": "d".repeat(MAX_DEFINITION_BYTES)});
        let size = huge.to_string().len();
        assert_eq!(
            problems(huge),
            [format!(
                "definition_json: is {size} bytes; a definition may be at most {MAX_DEFINITION_BYTES}"
            )]
        );
        let deep = (0..=MAX_JSON_DEPTH).fold(json!("${input.a}"), |inner, _| json!({"a": inner}));
        assert_eq!(
            problems(json!({"steps": [{"id": "a", "agent": "x", "input": deep}]})),
            ["steps[0].input: nests deeper than 32 levels"]
        );
        let needs = vec!["a"; MAX_NEEDS + 1];
        assert_eq!(
            problems(
                json!({"steps": [{"id": "a", "agent": "x"}, {"id": "b", "agent": "x", "needs": needs}]})
            ),
            ["steps[1].needs: has 201 entries; the most is 200"]
        );
        let many: Map<String, Value> = (0..=MAX_EXPRESSIONS)
            .map(|index| (format!("k{index}"), json!("${input.a}")))
            .collect();
        assert_eq!(
            problems(json!({"steps": [{"id": "a", "agent": "x", "input": many}]})),
            ["steps: hold 1001 expressions; a definition may hold at most 1000"]
        );
        assert_eq!(
            problems(json!({"name": "n".repeat(101), "agents": ["x"]})),
            ["name: must be at most 100 characters"]
        );
    }

    #[test]
    fn what_a_problem_quotes_is_cut_short() {
        let key = "k".repeat(10_000);
        let found = parse(
            &json!({"steps": [
                {"id": "a", "agent": "x", "needs": ["n".repeat(10_000)]},
                {"id": "b", "agent": "x", "input": {key: format!("${{{}}}", "p".repeat(3000))}},
                {"id": "c", "agent": "x", "when": format!("input.a == 1 '{}'", "s".repeat(3000))},
            ]})
            .to_string(),
        )
        .unwrap_err();
        assert_eq!(found.len(), 3, "{found:?}");
        assert_eq!(found[0].field, "steps[0].needs[0]");
        assert_eq!(found[0].message, "is not a step id");
        for problem in &found {
            assert!(problem.field.len() <= 200, "{problem:?}");
            assert!(problem.message.len() <= 200, "{problem:?}");
        }
    }

    #[test]
    fn the_problems_listed_are_capped_with_a_count_of_the_rest() {
        let steps: Vec<Value> = (0..50)
            .map(|_| json!({"id": "a", "agent": "Bad"}))
            .collect();
        let all = parse(&json!({ "steps": steps }).to_string()).unwrap_err();
        let listed = at_most(all.clone());
        assert_eq!(listed.len(), MAX_VIOLATIONS);
        assert_eq!(listed[..MAX_VIOLATIONS - 1], all[..MAX_VIOLATIONS - 1]);
        assert_eq!(
            listed[MAX_VIOLATIONS - 1].message,
            format!(
                "{} more problems are not listed",
                all.len() - (MAX_VIOLATIONS - 1)
            )
        );
    }

    #[test]
    fn a_mapping_is_rendered_within_its_limit() {
        let scope = json!({"input": {}, "steps": {"a": {"text": "x".repeat(1000)}}});
        let twice = json!({"one": "${steps.a.text}", "two": "${steps.a.text}"});
        assert!(render_mapping(&twice, &scope, 2100).is_ok());
        assert_eq!(
            render_mapping(&twice, &scope, 1500),
            Err(MappingError::TooLarge)
        );
        // The literals count too.
        let padded = json!({"one": "${steps.a.text}", "pad": "p".repeat(1000)});
        assert_eq!(
            render_mapping(&padded, &scope, 1500),
            Err(MappingError::TooLarge)
        );
    }

    #[test]
    fn nesting_is_measured_without_recursion() {
        assert!(!nests_deeper(&json!(1), 0));
        assert!(nests_deeper(&json!([]), 0));
        assert!(!nests_deeper(&json!({"a": [1, {"b": 2}]}), 3));
        assert!(nests_deeper(&json!({"a": [1, {"b": {}}]}), 3));
    }

    #[test]
    fn default_input_merges_needed_outputs_in_order() {
        let outputs = Map::from_iter([
            ("a".to_owned(), json!({"x": 1, "y": 1})),
            ("b".to_owned(), json!({"y": 2})),
        ]);
        let input = merged_input(
            &json!({"x": 0, "z": 0}),
            &["a".into(), "b".into()],
            &outputs,
        );
        assert_eq!(input, json!({"x": 1, "y": 2, "z": 0}));
    }

    #[test]
    fn only_accepted_fields_are_kept() {
        let accepted = BTreeSet::from(["name".to_owned(), "n".to_owned()]);
        assert_eq!(
            only_accepted(
                &json!({"name": "Ada", "message": "Hello", "n": 1}),
                &accepted
            ),
            json!({"name": "Ada", "n": 1})
        );
    }

    #[test]
    fn mappings_render_expressions_and_keep_literals() {
        let scope = json!({"input": {"name": "shop"}, "steps": {"a": {"files": [1, 2]}}});
        let rendered = render_mapping(
            &json!({"name": "${input.name}", "files": "${steps.a.files}", "fixed": "$x", "n": 3}),
            &scope,
            1024,
        )
        .unwrap();
        assert_eq!(
            rendered,
            json!({"name": "shop", "files": [1, 2], "fixed": "$x", "n": 3})
        );
    }
}
