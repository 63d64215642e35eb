//! The agents a caller can run, through one table: every built-in agent is an entry of
//! [`BUILTINS`] (its name, its handler, and what its run needs: the LLM by default, the
//! workspace's paths, the custom-agent store), joined by name with its declaration in
//! `catalog/agents.json` (category, description, version, input and output schema); a tenant's
//! custom agent is its stored definition ([`crate::custom`]). Either is an [`Agent`], which the
//! runs and the API treat alike.
//!
//! The catalog is checked as a whole at start and the service refuses to start on any problem:
//! a malformed entry, an invalid schema, a duplicate name, an entry without a handler or a
//! handler without an entry. A broken catalog found at start is a deploy that never went live;
//! found at run time, it would be a user's failed run.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::Value;

use sankalpa_kit::schema::Violation;

use crate::agents::{
    self, backend, calculator, code, dates, delivery, enhanced, frontend, installers, marketing,
    orchestration, quality, security, translation,
};
use crate::context::Context;
use crate::custom::{self, CustomAgent};
use crate::error::AgentError;
use crate::spec::{AgentSpec, RawSpec};

/// The catalog compiled into the binary, so a container needs no file beside it.
pub(crate) const EMBEDDED: &str = include_str!("../../../catalog/agents.json");

/// What a built-in agent does with its (already schema-checked) input.
#[derive(Clone, Copy)]
pub enum Handler {
    /// Works without waiting on anything: most agents.
    Computes(fn(&mut Context, &Value) -> Result<Value, AgentError>),
    /// Waits on a service: the LLM, the memory session, the custom-agent store.
    Waits(for<'a> fn(&'a mut Context, &'a Value) -> BoxFuture<'a, Result<Value, AgentError>>),
}

/// One built-in agent: its name (its declaration is the catalog entry of that name), its
/// handler, and what its run needs.
pub struct Builtin {
    pub name: &'static str,
    pub handler: Handler,
    /// Uses the LLM unless the caller turns it off; other LLM-capable agents use it only when
    /// asked (`LLM_MODE_PREFERRED`).
    pub llm_by_default: bool,
    /// Writes for what its workspace already holds (tests for the modules there, a README of
    /// the routes there), so its run lists the workspace's paths first ([`Context::exists`]).
    pub reads_workspace: bool,
    /// Defines custom agents: its run is given the custom-agent store
    /// ([`Context::custom_agents`]), and running it is writing (`agents:write`).
    pub defines_agents: bool,
    /// Offered to the models of the agents that call tools ([`crate::tools`]): quick, writing
    /// nothing outside its run, and asking no model itself.
    pub offered_as_tool: bool,
    /// Offers its model the agents [`Builtin::offered_as_tool`]: its run is given them
    /// ([`Context::tools`]) when it has an LLM.
    pub calls_tools: bool,
}

impl Builtin {
    const fn computes(
        name: &'static str,
        handler: fn(&mut Context, &Value) -> Result<Value, AgentError>,
    ) -> Self {
        Self::with(name, Handler::Computes(handler))
    }

    const fn waits(
        name: &'static str,
        handler: for<'a> fn(&'a mut Context, &'a Value) -> BoxFuture<'a, Result<Value, AgentError>>,
    ) -> Self {
        Self::with(name, Handler::Waits(handler))
    }

    const fn with(name: &'static str, handler: Handler) -> Self {
        Self {
            name,
            handler,
            llm_by_default: false,
            reads_workspace: false,
            defines_agents: false,
            offered_as_tool: false,
            calls_tools: false,
        }
    }

    const fn llm_by_default(self) -> Self {
        Self {
            llm_by_default: true,
            ..self
        }
    }

    const fn reads_workspace(self) -> Self {
        Self {
            reads_workspace: true,
            ..self
        }
    }

    const fn defines_agents(self) -> Self {
        Self {
            defines_agents: true,
            ..self
        }
    }

    const fn offered_as_tool(self) -> Self {
        Self {
            offered_as_tool: true,
            ..self
        }
    }

    const fn calls_tools(self) -> Self {
        Self {
            calls_tools: true,
            ..self
        }
    }
}

/// Every built-in agent; `catalog/agents.json` must declare exactly these.
pub static BUILTINS: &[Builtin] = &[
    Builtin::computes("hello_world", |_, input| agents::hello_world(input)).offered_as_tool(),
    Builtin::computes("custom_calculator", |_, input| calculator::run(input)).offered_as_tool(),
    Builtin::waits("text_translator", |ctx, input| {
        Box::pin(translation::run(ctx, input))
    })
    .llm_by_default(),
    Builtin::computes("date_formatter", |_, input| dates::run(input)).offered_as_tool(),
    Builtin::waits("code_summarizer", |ctx, input| {
        Box::pin(code::summarize(ctx, input))
    })
    .llm_by_default(),
    Builtin::computes("critic", |_, input| code::critique(input)).offered_as_tool(),
    Builtin::computes("security_scanner", security::run),
    Builtin::computes("project_architect", delivery::architect),
    Builtin::computes("db_schema", backend::db_schema),
    Builtin::computes("backend_builder", backend::backend),
    Builtin::computes("api_builder", backend::api),
    Builtin::computes("auth_builder", backend::auth),
    Builtin::computes("role_auth", backend::roles),
    Builtin::computes("email_system", backend::email),
    Builtin::computes("stripe_payment", backend::payments),
    Builtin::computes("frontend_builder", frontend::app),
    Builtin::computes("ui_generator", frontend::ui),
    Builtin::computes("markdown_editor", frontend::markdown),
    Builtin::computes("test_suite", quality::unit).reads_workspace(),
    Builtin::computes("integration_test", quality::integration).reads_workspace(),
    Builtin::computes("ci_generator", delivery::ci).reads_workspace(),
    Builtin::waits("readme_writer", |ctx, input| {
        Box::pin(delivery::readme(ctx, input))
    })
    .llm_by_default()
    .reads_workspace(),
    Builtin::computes("deploy_executor", delivery::deploy),
    Builtin::computes("domain_linker", delivery::domain),
    Builtin::computes("seo_optimizer", marketing::seo),
    Builtin::waits("product_hunt_copywriter", |ctx, input| {
        Box::pin(marketing::launch(ctx, input))
    })
    .llm_by_default(),
    Builtin::waits("pitch_deck_generator", |ctx, input| {
        Box::pin(marketing::deck(ctx, input))
    })
    .llm_by_default(),
    Builtin::waits("copilot", |ctx, input| {
        Box::pin(enhanced::copilot(ctx, input))
    })
    .llm_by_default()
    .calls_tools(),
    Builtin::computes("finetuner", enhanced::finetune),
    Builtin::computes("vs_code_extension", enhanced::vscode),
    Builtin::computes("cli_runner", enhanced::cli),
    Builtin::waits("multi_agent_memory_manager", |ctx, input| {
        Box::pin(orchestration::merge_memory(ctx, input))
    }),
    Builtin::computes("version_tracker", orchestration::release),
    Builtin::waits("planner", |ctx, input| {
        Box::pin(orchestration::plan(ctx, input))
    }),
    Builtin::computes("execution_manager", |_, input| {
        orchestration::schedule(input)
    }),
    Builtin::computes("session_replayer", orchestration::replay),
    Builtin::waits("self_replicator", |ctx, input| {
        Box::pin(installers::self_replicator(ctx, input))
    })
    .defines_agents()
    .llm_by_default(),
    Builtin::waits("plugin_loader", |ctx, input| {
        Box::pin(installers::plugin_loader(ctx, input))
    })
    .defines_agents(),
];

/// A built-in agent: its declaration and its entry in [`BUILTINS`].
pub struct BuiltinAgent {
    pub spec: AgentSpec,
    pub entry: &'static Builtin,
}

/// A runnable agent, built-in or a tenant's; cheap to clone.
#[derive(Clone)]
pub enum Agent {
    Builtin(Arc<BuiltinAgent>),
    Custom(Arc<CustomAgent>),
}

impl Agent {
    pub fn spec(&self) -> &AgentSpec {
        match self {
            Self::Builtin(agent) => &agent.spec,
            Self::Custom(agent) => &agent.spec,
        }
    }

    /// Whether a run uses the LLM when the caller does not say: a built-in agent as its entry
    /// says, a custom agent whenever it can.
    pub fn llm_by_default(&self) -> bool {
        match self {
            Self::Builtin(agent) => agent.entry.llm_by_default,
            Self::Custom(agent) => agent.spec.llm_capable,
        }
    }

    /// Whether its run lists the workspace's paths for it first.
    pub fn reads_workspace(&self) -> bool {
        matches!(self, Self::Builtin(agent) if agent.entry.reads_workspace)
    }

    /// Whether it defines custom agents: given the store, and run only by callers who may write.
    pub fn defines_agents(&self) -> bool {
        matches!(self, Self::Builtin(agent) if agent.entry.defines_agents)
    }

    /// Whether the models of the agents that call tools may run it.
    pub fn offered_as_tool(&self) -> bool {
        matches!(self, Self::Builtin(agent) if agent.entry.offered_as_tool)
    }

    /// Whether its model is offered tools.
    pub fn calls_tools(&self) -> bool {
        matches!(self, Self::Builtin(agent) if agent.entry.calls_tools)
    }

    /// Runs the agent on `input`; a custom agent's template renders at most
    /// `max_template_output_bytes`.
    pub async fn run(
        &self,
        ctx: &mut Context,
        input: &Value,
        max_template_output_bytes: usize,
    ) -> Result<Value, AgentError> {
        match self {
            Self::Builtin(agent) => match agent.entry.handler {
                Handler::Computes(handler) => handler(ctx, input),
                Handler::Waits(handler) => handler(ctx, input).await,
            },
            Self::Custom(agent) => {
                custom::run::run(agent, ctx, input, max_template_output_bytes).await
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    agents: Vec<Value>,
}

/// The built-in agents, ordered by category then name.
pub struct Catalog {
    agents: Vec<Agent>,
    by_name: HashMap<String, Agent>,
}

impl Catalog {
    /// The catalog at `path`, or the embedded one.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let text = match path {
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| format!("could not read the catalog {}", path.display()))?,
            None => EMBEDDED.to_owned(),
        };
        Self::parse(&text, BUILTINS).map_err(|problems| {
            anyhow::anyhow!(
                "the agent catalog is broken: {}",
                sankalpa_kit::schema::joined(&problems)
            )
        })
    }

    /// Parses and checks a catalog whose agents must be exactly those of `table`.
    pub fn parse(text: &str, table: &'static [Builtin]) -> Result<Self, Vec<Violation>> {
        let document: Document = serde_json::from_str(text).map_err(|err| {
            vec![Violation {
                path: "catalog".to_owned(),
                message: format!("not a catalog document: {err}"),
            }]
        })?;
        let mut problems = Vec::new();
        let mut listed = HashSet::new();
        let mut by_name: HashMap<String, Agent> = HashMap::new();
        for (i, entry) in document.agents.into_iter().enumerate() {
            let at = format!("agents[{i}]");
            let raw: RawSpec = match serde_json::from_value(entry) {
                Ok(raw) => raw,
                Err(err) => {
                    problems.push(Violation {
                        path: at,
                        message: err.to_string(),
                    });
                    continue;
                }
            };
            let Some(spec) = raw.compile(&at, &mut problems) else {
                continue;
            };
            let name = spec.name.clone();
            if !listed.insert(name.clone()) {
                problems.push(Violation {
                    path: format!("{at}.name"),
                    message: format!("{name:?} is listed twice"),
                });
                continue;
            }
            match table.iter().find(|builtin| builtin.name == name) {
                Some(entry) => {
                    let agent = Agent::Builtin(Arc::new(BuiltinAgent { spec, entry }));
                    by_name.insert(name, agent);
                }
                None => problems.push(Violation {
                    path: format!("{at}.name"),
                    message: format!("no built-in agent is named {name:?}"),
                }),
            }
        }
        let mut handled = HashSet::new();
        for builtin in table {
            if !handled.insert(builtin.name) {
                problems.push(Violation {
                    path: "agents".to_owned(),
                    message: format!("the built-in agent {:?} has two handlers", builtin.name),
                });
            } else if !listed.contains(builtin.name) {
                problems.push(Violation {
                    path: "agents".to_owned(),
                    message: format!("the built-in agent {:?} has no entry", builtin.name),
                });
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut agents: Vec<Agent> = by_name.values().cloned().collect();
        agents.sort_by(|a, b| order(a).cmp(&order(b)));
        Ok(Self { agents, by_name })
    }

    pub fn get(&self, name: &str) -> Option<&Agent> {
        self.by_name.get(name)
    }

    pub fn agents(&self) -> &[Agent] {
        &self.agents
    }

    /// Every built-in agent's name.
    pub fn names(&self) -> HashSet<String> {
        self.by_name.keys().cloned().collect()
    }
}

/// The listing order: category, then name.
pub fn order(agent: &Agent) -> (&str, &str) {
    let spec = agent.spec();
    (&spec.category, &spec.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_catalog_is_complete_and_valid() {
        let catalog = Catalog::load(None).expect("the shipped catalog loads");
        assert_eq!(catalog.agents().len(), BUILTINS.len());
    }

    #[test]
    fn every_problem_of_a_broken_catalog_is_named() {
        static TABLE: &[Builtin] = &[
            Builtin::computes("hello_world", |_, input| agents::hello_world(input)),
            Builtin::computes("other", |_, input| agents::hello_world(input)),
        ];
        let text = r#"{"agents": [
            {"name": "hello_world", "category": "custom", "description": "hi", "version": "1.0",
             "input_schema": {"type": "object"}, "output_schema": {"type": "array"}},
            {"name": "Bad Name", "category": "nope", "description": "", "version": "1.0.0",
             "input_schema": {"type": "object"}, "output_schema": {"type": "object"}}
        ]}"#;
        let problems = Catalog::parse(text, TABLE)
            .err()
            .expect("the catalog is refused");
        let paths: Vec<&str> = problems.iter().map(|v| v.path.as_str()).collect();
        for expected in [
            "agents[0].version",
            "agents[0].output_schema.type",
            "agents[1].name",
            "agents[1].category",
            "agents[1].description",
            "agents",
        ] {
            assert!(
                paths.contains(&expected),
                "{expected} missing from {paths:?}"
            );
        }
    }

    #[test]
    fn an_entry_without_a_handler_and_a_handler_without_an_entry_are_named() {
        static TABLE: &[Builtin] = &[Builtin::computes("hello_world", |_, input| {
            agents::hello_world(input)
        })];
        let text = r#"{"agents": [
            {"name": "greeter", "category": "custom", "description": "hi", "version": "1.0.0",
             "input_schema": {"type": "object"}, "output_schema": {"type": "object"}}
        ]}"#;
        let problems = Catalog::parse(text, TABLE)
            .err()
            .expect("the catalog is refused");
        let messages: Vec<&str> = problems.iter().map(|v| v.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "no built-in agent is named \"greeter\"",
                "the built-in agent \"hello_world\" has no entry"
            ]
        );
    }
}
