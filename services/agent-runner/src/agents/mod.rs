//! The built-in agents. Each is a function from its (already schema-checked) input to its output
//! JSON, given a [`Context`] to write files into and, when allowed, to ask the LLM.
//!
//! Every agent does its real work deterministically; LLM-capable agents may ask the LLM first
//! and fall back to that work when none is configured or it fails, and say which path ran.

mod backend;
mod calculator;
mod code;
mod dates;
mod delivery;
mod enhanced;
mod frontend;
mod marketing;
mod orchestration;
mod project;
mod quality;
mod security;
mod templates;
mod translation;

pub use project::slug;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::artifacts::clean_path;
use crate::error::RunnerError;
use crate::llm::{LlmClient, LlmError, Message};
use crate::llm_usage::RunTokens;
use crate::session::SessionMemory;

/// Every built-in agent; the catalog must list exactly these.
pub const BUILTIN: &[&str] = &[
    "hello_world",
    "custom_calculator",
    "text_translator",
    "date_formatter",
    "code_summarizer",
    "critic",
    "security_scanner",
    "project_architect",
    "db_schema",
    "backend_builder",
    "api_builder",
    "auth_builder",
    "role_auth",
    "email_system",
    "stripe_payment",
    "frontend_builder",
    "ui_generator",
    "markdown_editor",
    "test_suite",
    "integration_test",
    "ci_generator",
    "readme_writer",
    "deploy_executor",
    "domain_linker",
    "seo_optimizer",
    "product_hunt_copywriter",
    "pitch_deck_generator",
    "copilot",
    "finetuner",
    "vs_code_extension",
    "cli_runner",
    "multi_agent_memory_manager",
    "version_tracker",
    "planner",
    "execution_manager",
    "session_replayer",
    "self_replicator",
    "plugin_loader",
];

/// The builders that write for what their workspace already holds (tests for the modules
/// there, a README of the routes there), so they are given its paths ([`Context::exists`]).
pub const READS_WORKSPACE: &[&str] = &[
    "test_suite",
    "integration_test",
    "ci_generator",
    "readme_writer",
];

/// Why an agent did not produce an output.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The input passed the schema but cannot be worked on (an expression that does not parse).
    #[error("{0}")]
    InvalidInput(String),
    /// The agent tried and failed (division by zero).
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Llm(#[from] LlmError),
    /// A service the agent needs (memory) did not answer.
    #[error("{0}")]
    Unavailable(String),
    /// The agent would produce more than it may (a custom agent's template past its bound).
    #[error("{0}")]
    OutputTooLarge(String),
    /// The tenant has used its LLM tokens of the day.
    #[error("{0}")]
    QuotaExceeded(String),
}

/// The code of a run that failed because a service it needs could not be asked.
pub const UNAVAILABLE: &str = "unavailable";

impl AgentError {
    /// The stable reason code of the run error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidInput(_) => "invalid_input",
            Self::Failed(_) => "agent_failed",
            Self::Llm(_) => "llm_failed",
            Self::Unavailable(_) => UNAVAILABLE,
            Self::OutputTooLarge(_) => "output_too_large",
            Self::QuotaExceeded(_) => "quota_exceeded",
        }
    }
}

/// What the LLM cost a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LlmUsage {
    pub used: bool,
    pub model: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// What a run gives its agent.
pub struct Context {
    files: BTreeMap<String, Vec<u8>>,
    /// The paths the workspace held before this run, for the agents in [`READS_WORKSPACE`].
    pub existing: BTreeSet<String>,
    /// Present only when one is configured, the agent is LLM-capable and the caller allows it.
    llm: Option<Arc<LlmClient>>,
    usage: LlmUsage,
    /// The run's memory session, when it has one and a memory service is configured.
    pub memory: Option<SessionMemory>,
    /// The tenant's LLM tokens of the day, checked before and counted after each call.
    pub tokens: Option<RunTokens>,
}

impl Context {
    pub fn new(llm: Option<Arc<LlmClient>>) -> Self {
        Self {
            files: BTreeMap::new(),
            existing: BTreeSet::new(),
            llm,
            usage: LlmUsage::default(),
            memory: None,
            tokens: None,
        }
    }

    /// Adds a file to the run's workspace; a path leaving the workspace fails the run.
    pub fn write(&mut self, path: &str, content: impl Into<Vec<u8>>) -> Result<(), AgentError> {
        let path = clean_path(path)
            .map_err(|reason| AgentError::Failed(format!("cannot write {path:?}: {reason}")))?;
        self.files.insert(path.to_owned(), content.into());
        Ok(())
    }

    /// Whether the workspace holds `path`, from an earlier run or this one.
    pub fn exists(&self, path: &str) -> bool {
        self.files.contains_key(path) || self.existing.contains(path)
    }

    /// Whether this run may use the LLM.
    pub fn has_llm(&self) -> bool {
        self.llm.is_some()
    }

    /// Asks the LLM, recording its tokens; `None` when this run has no LLM. A tenant past its
    /// tokens of the day is not asked for.
    pub async fn ask(&mut self, system: &str, user: String) -> Option<Result<String, AgentError>> {
        let llm = self.llm.clone()?;
        if let Some(tokens) = &mut self.tokens
            && let Err(refusal) = tokens.before_call().await
        {
            return Some(Err(match refusal {
                RunnerError::QuotaExceeded { message, .. } => AgentError::QuotaExceeded(message),
                RunnerError::Unavailable(message) => AgentError::Unavailable(message),
                other => {
                    tracing::error!(error = %other, "could not check the LLM tokens of the day");
                    AgentError::Failed("the LLM quota could not be checked".to_owned())
                }
            }));
        }
        let messages = [Message::system(system), Message::user(user)];
        Some(match llm.chat(&messages).await {
            Ok(completion) => {
                if let Some(tokens) = &self.tokens {
                    tokens
                        .after_call(completion.prompt_tokens + completion.completion_tokens)
                        .await;
                }
                self.usage.used = true;
                self.usage.model = completion.model;
                self.usage.prompt_tokens += completion.prompt_tokens;
                self.usage.completion_tokens += completion.completion_tokens;
                Ok(completion.text)
            }
            Err(err) => Err(err.into()),
        })
    }

    /// The files written and the LLM usage, once the agent is done.
    pub fn finish(self) -> (BTreeMap<String, Vec<u8>>, LlmUsage) {
        (self.files, self.usage)
    }
}

/// The input as the agent's own type. The schema has been checked already, so a failure here is
/// a disagreement between catalog and code, reported as the input's fault with serde's reason.
pub fn parse<T: DeserializeOwned>(input: &Value) -> Result<T, AgentError> {
    serde_json::from_value(input.clone()).map_err(|err| AgentError::InvalidInput(err.to_string()))
}

/// Runs the built-in agent `name`.
pub async fn run(name: &str, ctx: &mut Context, input: &Value) -> Result<Value, AgentError> {
    match name {
        "hello_world" => hello_world(input),
        "custom_calculator" => calculator::run(input),
        "text_translator" => translation::run(ctx, input).await,
        "date_formatter" => dates::run(input),
        "code_summarizer" => code::summarize(ctx, input).await,
        "critic" => code::critique(input),
        "security_scanner" => security::run(ctx, input),
        "project_architect" => delivery::architect(ctx, input),
        "db_schema" => backend::db_schema(ctx, input),
        "backend_builder" => backend::backend(ctx, input),
        "api_builder" => backend::api(ctx, input),
        "auth_builder" => backend::auth(ctx, input),
        "role_auth" => backend::roles(ctx, input),
        "email_system" => backend::email(ctx, input),
        "stripe_payment" => backend::payments(ctx, input),
        "frontend_builder" => frontend::app(ctx, input),
        "ui_generator" => frontend::ui(ctx, input),
        "markdown_editor" => frontend::markdown(ctx, input),
        "test_suite" => quality::unit(ctx, input),
        "integration_test" => quality::integration(ctx, input),
        "ci_generator" => delivery::ci(ctx, input),
        "readme_writer" => delivery::readme(ctx, input),
        "deploy_executor" => delivery::deploy(ctx, input),
        "domain_linker" => delivery::domain(ctx, input),
        "seo_optimizer" => marketing::seo(ctx, input),
        "product_hunt_copywriter" => marketing::launch(input),
        "pitch_deck_generator" => marketing::deck(ctx, input),
        "copilot" => enhanced::copilot(ctx, input).await,
        "finetuner" => enhanced::finetune(ctx, input),
        "vs_code_extension" => enhanced::vscode(ctx, input),
        "cli_runner" => enhanced::cli(ctx, input),
        "multi_agent_memory_manager" => orchestration::merge_memory(ctx, input).await,
        "version_tracker" => orchestration::release(ctx, input),
        "planner" => orchestration::plan(input),
        "execution_manager" => orchestration::schedule(input),
        "session_replayer" => orchestration::replay(ctx, input),
        // self_replicator and plugin_loader store agents, so the run drives them
        // (crate::custom::install) rather than this table of pure agents.
        other => Err(AgentError::Failed(format!(
            "{other} is listed in the catalog but not built in"
        ))),
    }
}

#[derive(Deserialize)]
struct Greeting {
    #[serde(default)]
    name: Option<String>,
}

/// The smallest agent: proves the path from request to output (and is what `make bench` runs).
fn hello_world(input: &Value) -> Result<Value, AgentError> {
    let greeting: Greeting = parse(input)?;
    let name = greeting
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty());
    Ok(json!({ "message": format!("Hello, {}!", name.unwrap_or("World")) }))
}
