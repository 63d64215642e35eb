//! The schema of a chain definition, the `definition` of the chain bodies, as published in the
//! OpenAPI document (`#/components/schemas/ChainDefinition`).
//!
//! The orchestrator's parser (`services/chain-orchestrator/src/definition.rs`) is the source of
//! truth: this schema follows it, bound for bound, and a test
//! (`tests/api/chain_definitions.rs`) checks the catalog's templates against it and sends the
//! definitions it refuses to the orchestrator too. What JSON Schema cannot say (`needs` naming
//! steps of the chain, no cycles, unique ids, expressions that parse and read only steps needed,
//! the agents existing) is in the descriptions, and the orchestrator answers it with a 400
//! naming the field.
//!
//! The schema is written as JSON, in the subset `sankalpa_kit::schema` enforces (so the test
//! validates with the workspace's own validator), in this one place: a new step kind is one
//! more entry in [`step`]. utoipa's schema types have no `not`, which tells the forms apart, so
//! the forms go in as the one extension entry `anyOf` of the schema object, which utoipa writes
//! out as a member of it like any other. One entry only: extensions are a hash map, and two
//! would come out in a different order each run, which the committed document cannot follow.

use std::borrow::Cow;

use serde_json::{Value, json};
use utoipa::openapi::RefOr;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::schema::{Object, Schema};
use utoipa::{PartialSchema, ToSchema};

/// The orchestrator's `MAX_STEPS`: steps of a chain, agents of a list, `needs` of a step.
const MAX_STEPS: u64 = 200;
/// `MAX_NAME_CHARS` and `MAX_DESCRIPTION_CHARS`.
const MAX_NAME_CHARS: u64 = 100;
const MAX_DESCRIPTION_CHARS: u64 = 2000;
/// `MAX_ATTEMPTS`, `MAX_BACKOFF_MS`, `MAX_TIMEOUT_MS`.
const MAX_ATTEMPTS: u64 = 10;
const MAX_BACKOFF_MS: u64 = 60_000;
const MAX_TIMEOUT_MS: u64 = 3_600_000;
/// `expr::MAX_EXPRESSION_CHARS`.
const MAX_EXPRESSION_CHARS: u64 = 4096;
/// A step id: `valid_step_id`.
const STEP_ID: &str = "^[A-Za-z0-9_-]{1,64}$";
/// `MAX_POSITION`: how far from the origin a step's `position` may be.
const MAX_POSITION: f64 = 1_000_000.0;
/// An agent name: `valid_agent_name`.
const AGENT_NAME: &str = "^[a-z][a-z0-9_]{0,63}$";
/// An approver: `valid_approver`.
const APPROVER: &str = "^(role|user):[A-Za-z0-9_.@-]{1,64}$";
/// `MAX_PROMPT_CHARS`, `MAX_APPROVERS`, `MIN_APPROVAL_TIMEOUT_MS`, `MAX_APPROVAL_TIMEOUT_MS`.
const MAX_PROMPT_CHARS: u64 = 2000;
const MAX_APPROVERS: u64 = 20;
const MIN_APPROVAL_TIMEOUT_MS: u64 = 100;
const MAX_APPROVAL_TIMEOUT_MS: u64 = 7 * 24 * 3_600_000;
/// `MAX_PARALLEL_ITEMS` and the default `max_parallel` of a map step.
const MAX_PARALLEL_ITEMS: u64 = 64;
const DEFAULT_MAX_PARALLEL: u64 = 8;
/// A `${<expression>}` as `for_each` takes it: the expression's bound plus the 3 around it.
const MAX_FOR_EACH_CHARS: u64 = MAX_EXPRESSION_CHARS + 3;
/// A chain id (a UUID, any case) and a template name: `valid_template_name`.
const CHAIN_ID: &str =
    "^[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{12}$";
const TEMPLATE_NAME: &str = STEP_ID;

/// A chain definition in any of its three forms (the schema only: bodies pass the definition
/// through to the orchestrator as sent).
pub struct ChainDefinition;

impl PartialSchema for ChainDefinition {
    fn schema() -> RefOr<Schema> {
        let mut schema = Object::new();
        schema.description = Some(DESCRIPTION.to_owned());
        schema.examples = examples();
        schema.extensions = Some(Extensions::from_iter([("anyOf", forms())]));
        RefOr::T(Schema::Object(schema))
    }
}

impl ToSchema for ChainDefinition {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ChainDefinition")
    }
}

const DESCRIPTION: &str = "A chain: a DAG of steps, each running an agent. Three forms, told \
    apart by the first of `steps`, `agents`, `condition` that is present: the DAG form \
    (`steps`); the simple form (`agents`, run one after another or all at once); the \
    conditional form (`condition`, `then`, `else`: two sequential branches, the first taken \
    when the condition holds). Members of another form are ignored. The orchestrator also \
    refuses, each with a 400 naming the field: a document over 1 MiB; a `needs` entry naming \
    no step of the chain, or the step itself; two steps with one id; a cycle; an expression \
    (`when`, a `${...}` in an `input`) that does not parse or reads a step the step does not \
    need, directly or through others; more than 1,000 expressions in all; an agent the tenant \
    does not have.";

/// Name, description and input schema: what every form has besides its steps.
fn header() -> Value {
    json!({
        "name": {
            "type": ["string", "null"],
            "maxLength": MAX_NAME_CHARS,
            "description": "At most 100 characters."
        },
        "description": {
            "type": ["string", "null"],
            "maxLength": MAX_DESCRIPTION_CHARS,
            "description": "At most 2,000 characters."
        },
        "input_schema": {
            "type": ["object", "null"],
            "description": "A JSON Schema the run input must satisfy, checked when a run is \
                submitted: `type`, `properties`, `required`, `additionalProperties`, `items`, \
                `contains`, `enum`, `const`, `anyOf`, `allOf`, `not`, `if`/`then`/`else`, \
                `minimum`, `maximum`, `minLength`, `maxLength`, `minItems`, `maxItems`, \
                `pattern`, and annotations; any other keyword is refused. At most 16 levels \
                deep, 256 enum values and properties, 16 patterns."
        }
    })
}

fn with_header(members: Value) -> Value {
    let mut properties = header();
    if let (Value::Object(all), Value::Object(members)) = (&mut properties, members) {
        all.extend(members);
    }
    properties
}

/// A list of agent names, as the simple and conditional forms take.
fn agent_list(min_items: u64, description: &str) -> Value {
    json!({
        "type": "array",
        "minItems": min_items,
        "maxItems": MAX_STEPS,
        "items": {"type": "string", "pattern": AGENT_NAME},
        "description": description
    })
}

/// A step of the DAG form: one that runs an agent (once, or once per item with `for_each`),
/// one that waits for a person's approval, or one that runs another chain. Each lists only its
/// own members, so a step with two kinds' members (or none) fits none.
fn step() -> Value {
    json!({
        "anyOf": [agent_step(), approval_step(), chain_step()],
        "description": "A step runs an `agent` (a map step when it has `for_each`), waits for \
            an `approval`, or runs a `chain`: exactly one of the three."
    })
}

fn retry() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "attempts": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_ATTEMPTS,
                "default": 1,
                "description": "Attempts in all, the first included."
            },
            "backoff_ms": {
                "type": "integer",
                "minimum": 0,
                "maximum": MAX_BACKOFF_MS,
                "default": 0,
                "description": "Milliseconds before the second attempt, doubled \
                    before each later one."
            }
        }
    })
}

/// What every kind of step has: its id, what it needs, when it runs and what its failure or
/// skip does to the rest.
fn common_members() -> serde_json::Map<String, Value> {
    let Value::Object(members) = json!({
        "id": {
            "type": "string",
            "pattern": STEP_ID,
            "description": "Unique in the chain: 1 to 64 ASCII letters, digits, `_`, `-`."
        },
        "needs": {
            "type": "array",
            "maxItems": MAX_STEPS,
            "items": {"type": "string", "pattern": STEP_ID},
            "description": "Ids of other steps of the chain that must finish first; their \
                outputs are merged into this step's default input, later ones winning."
        },
        "when": {
            "type": ["string", "null"],
            "maxLength": MAX_EXPRESSION_CHARS,
            "description": "An expression (at most 4,096 characters, 64 levels of nesting) \
                over `input` and `steps.<id>` of steps needed: the step runs only when it \
                holds, and is skipped otherwise."
        },
        "on_failure": {
            "enum": ["fail", "continue", "skip_dependants"],
            "default": "fail",
            "description": "When the step fails for good: `fail` the run (running steps \
                are cancelled), `continue` (dependants run without its output), or \
                `skip_dependants` (the rest of the run goes on)."
        },
        "on_skip": {
            "enum": ["skip_dependants", "continue"],
            "default": "skip_dependants",
            "description": "When the step is skipped (its `when` did not hold): \
                `skip_dependants` too, or `continue` (they run without its output)."
        },
        "position": {
            "type": "object",
            "required": ["x", "y"],
            "additionalProperties": false,
            "properties": {
                "x": {"type": "number", "minimum": -MAX_POSITION, "maximum": MAX_POSITION},
                "y": {"type": "number", "minimum": -MAX_POSITION, "maximum": MAX_POSITION}
            },
            "description": "Where an editor (the console's composer) drew the step: kept \
                with the definition, never read by a run."
        }
    }) else {
        unreachable!("a JSON object literal")
    };
    members
}

/// A step of `kind` (its required member) with `members` besides the common ones.
fn step_kind(kind: &str, members: Value) -> Value {
    let mut properties = common_members();
    if let Value::Object(members) = members {
        properties.extend(members);
    }
    json!({
        "type": "object",
        "required": ["id", kind],
        "additionalProperties": false,
        "properties": properties
    })
}

fn agent_step() -> Value {
    step_kind(
        "agent",
        json!({
            "agent": {
                "type": "string",
                "pattern": AGENT_NAME,
                "description": "A built-in agent or one of the tenant's custom agents."
            },
            "input": {
                "type": ["object", "null"],
                "description": "Replaces the default input (the chain input merged with the \
                    outputs of the steps needed). A string that is exactly `${<expression>}` \
                    is replaced by the expression's value. At most 32 levels of nesting."
            },
            "retry": retry(),
            "timeout_ms": {
                "type": "integer",
                "minimum": 0,
                "maximum": MAX_TIMEOUT_MS,
                "default": 0,
                "description": "Milliseconds an attempt may take; 0: agent-runner's default."
            },
            "model": {
                "type": ["string", "null"],
                "pattern": "^[a-z0-9_-]+/[^\\s\\u0000-\\u001f]+$",
                "maxLength": 264,
                "description": "The model the agent asks, `provider/model`: one of the \
                    tenant's model providers and a model it lists. Absent: the tenant's \
                    default model, else the fleet's LLM."
            },
            "for_each": {
                "type": ["string", "null"],
                "pattern": "^\\$\\{[\\s\\S]*\\}$",
                "maxLength": MAX_FOR_EACH_CHARS,
                "description": "Makes it a map step: `${<expression>}` (over `input` and the \
                    steps needed), a list of at most 1,000 items when the step runs (anything \
                    else fails the step). The agent runs once per item, `${item}` and \
                    `${index}` (from 0) naming it in `input` (without an `input`, the default \
                    input gets `item` and `index` fields); `retry` and `timeout_ms` apply per \
                    item. The output is the list of the items' outputs, in item order. A \
                    failed item fails the step, unless `on_failure` is `continue`: its slot \
                    is then `null`. `item` and `index` anywhere else are refused."
            },
            "max_parallel": {
                "type": ["integer", "null"],
                "minimum": 1,
                "maximum": MAX_PARALLEL_ITEMS,
                "default": DEFAULT_MAX_PARALLEL,
                "description": "Items of a map step running at once (1 to 64); only with \
                    `for_each`."
            }
        }),
    )
}

fn chain_step() -> Value {
    step_kind(
        "chain",
        json!({
            "chain": {
                "type": "object",
                "additionalProperties": false,
                "description": "Runs a stored chain of the tenant (`id`, its latest version) \
                    or a template (`template`) as a child run, linked both ways \
                    (`parent_run_id` on the child, `child_run_id` on the step) and cancelled \
                    with its parent. The step's output is the child's output; a failed child \
                    fails the step (`retry` starts a new child). Children nest at most 4 \
                    levels below a caller's run; a chain may not run itself, directly or \
                    through the chains it runs.",
                "anyOf": [
                    {"required": ["id"], "not": {"required": ["template"]}},
                    {"required": ["template"], "not": {"required": ["id"]}}
                ],
                "properties": {
                    "id": {
                        "type": "string",
                        "pattern": CHAIN_ID,
                        "description": "A stored chain of the tenant (UUID)."
                    },
                    "template": {
                        "type": "string",
                        "pattern": TEMPLATE_NAME,
                        "description": "A template's name, e.g. `hello-sequence`."
                    },
                    "input": {
                        "type": ["object", "null"],
                        "description": "The child run's input, a mapping as an agent step's \
                            `input` is; without it, the chain input merged with the outputs \
                            of the steps needed."
                    }
                }
            },
            "retry": retry()
        }),
    )
}

fn approval_step() -> Value {
    step_kind(
        "approval",
        json!({
            "approval": {
                "type": "object",
                "required": ["prompt", "approvers"],
                "additionalProperties": false,
                "description": "The run waits (status `waiting`, holding nothing) until an \
                    approver approves or rejects the step \
                    (`POST /api/chains/runs/{id}/steps/{step}/approve` or `/reject`) or its \
                    timeout passes. Approved, its output is `{\"approved\": true, \"by\", \
                    \"input\", \"comment\"}`; rejected, it fails with `rejected`.",
                "properties": {
                    "prompt": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": MAX_PROMPT_CHARS,
                        "pattern": "\\S",
                        "description": "What the approvers are asked: 1 to 2,000 characters, \
                            not only spaces."
                    },
                    "approvers": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": MAX_APPROVERS,
                        "items": {"type": "string", "pattern": APPROVER},
                        "description": "Who may decide: `role:<role>` (a role of the caller's \
                            token) or `user:<user id>`."
                    },
                    "timeout_ms": {
                        "type": "integer",
                        "minimum": MIN_APPROVAL_TIMEOUT_MS,
                        "maximum": MAX_APPROVAL_TIMEOUT_MS,
                        "default": 3_600_000,
                        "description": "How long the step waits for a decision (100 ms to 7 \
                            days)."
                    },
                    "on_timeout": {
                        "enum": ["fail", "skip", "approve"],
                        "default": "fail",
                        "description": "What an undecided approval comes to: the step fails \
                            with `approval_timed_out`, is skipped, or completes as approved \
                            by `timeout`."
                    }
                }
            }
        }),
    )
}

/// The three forms. Each but the DAG form says it lacks the members that would make the
/// document another form, so exactly one form matches a document.
fn forms() -> Value {
    json!([
        {
            "title": "DAG form",
            "type": "object",
            "required": ["steps"],
            "properties": with_header(json!({
                "steps": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": MAX_STEPS,
                    "items": step(),
                    "description": "1 to 200 steps."
                }
            }))
        },
        {
            "title": "Simple form",
            "type": "object",
            "required": ["agents"],
            "not": {
                "required": ["steps"],
                "description": "with `steps` it is the DAG form"
            },
            "properties": with_header(json!({
                "agents": agent_list(1, "1 to 200 agents, a step each."),
                "mode": {
                    "enum": ["sequential", "parallel", null],
                    "description": "`sequential` (the default: each step needs the one \
                        before) or `parallel` (no step needs another). A step's id is its \
                        agent, then `<agent>_2`, `<agent>_3` ... for later uses."
                }
            }))
        },
        {
            "title": "Conditional form",
            "type": "object",
            "required": ["condition", "then"],
            "not": {
                "anyOf": [
                    {"required": ["steps"]},
                    {"required": ["agents"]},
                    {"properties": {"then": {"maxItems": 0}, "else": {"maxItems": 0}}}
                ],
                "description": "with `steps` it is the DAG form, with `agents` the simple \
                    form; `then` and `else` cannot both be empty"
            },
            "properties": with_header(json!({
                "condition": {
                    "type": "string",
                    "maxLength": MAX_EXPRESSION_CHARS,
                    "description": "An expression over `input`: the first `then` step runs \
                        when it holds, the first `else` step (as `!(<condition>)`, so 3 \
                        characters fewer) when it does not."
                },
                "then": agent_list(0, "Agents run one after another when the condition holds."),
                "else": agent_list(0, "Agents run one after another when it does not. `then` \
                    and `else` hold 1 to 200 agents together.")
            }))
        }
    ])
}

/// Examples of the three forms; each is valid (the test checks them).
fn examples() -> Vec<Value> {
    vec![
        json!({
            "name": "plan then build",
            "steps": [
                {"id": "plan", "agent": "project_planner", "timeout_ms": 60000},
                {
                    "id": "api",
                    "agent": "api_builder",
                    "needs": ["plan"],
                    "retry": {"attempts": 3, "backoff_ms": 500},
                    "on_failure": "continue"
                },
                {
                    "id": "tests",
                    "agent": "test_writer",
                    "needs": ["api"],
                    "when": "input.tests == true",
                    "input": {"files": "${steps.api.files}"}
                },
                {
                    "id": "each_entity",
                    "agent": "api_builder",
                    "needs": ["plan"],
                    "for_each": "${steps.plan.entities}",
                    "max_parallel": 4,
                    "input": {"entity": "${item}", "position": "${index}"}
                },
                {
                    "id": "docs",
                    "needs": ["each_entity"],
                    "chain": {"template": "docs-or-tests", "input": {"apis": "${steps.each_entity}"}}
                }
            ]
        }),
        json!({"agents": ["api_builder", "test_writer"], "mode": "sequential"}),
        json!({"condition": "input.tests == true", "then": ["test_suite"], "else": ["readme_writer"]}),
    ]
}
