//! What a run gives its agent, built-in or custom: a place to write files (each path checked),
//! the LLM when the run may use it (and the tenant's tokens of the day), the run's memory
//! session, and the custom-agent store for the agents that define agents. The run fills in
//! what the agent's catalog entry asks for; an agent reaches nothing else.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::artifacts::clean_path;
use crate::custom::store::TenantAgents;
use crate::error::{AgentError, RunnerError};
use crate::llm::{Ask, Completion, LlmClient, Message, Tool, ToolCall};
use crate::llm_cache::RunCache;
use crate::llm_usage::RunTokens;
use crate::session::SessionMemory;

/// What the LLM cost a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LlmUsage {
    pub used: bool,
    pub model: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// What a tool run was, for the calling agent's output.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ToolRun {
    pub agent: String,
    pub run_id: String,
    pub status: &'static str,
}

/// The agents a model may call as tools, run for it: the runs layer's (`tools.rs`), given to a
/// run here so that the agents need not know how a run is made.
pub trait ToolRunner: Send {
    /// The tools offered, as the model is told of them.
    fn offered(&self) -> Vec<Tool>;
    /// Runs the agent `call` names on its arguments; what the model is told back.
    fn run<'a>(&'a mut self, call: &'a ToolCall) -> futures::future::BoxFuture<'a, String>;
    /// The runs made so far.
    fn runs(&self) -> &[ToolRun];
}

/// What a run gives its agent.
pub struct Context {
    files: BTreeMap<String, Vec<u8>>,
    /// The paths the workspace held before this run, for the agents whose catalog entry says
    /// they read the workspace.
    pub existing: BTreeSet<String>,
    /// Present only when one is configured, the agent is LLM-capable and the caller allows it.
    llm: Option<Arc<LlmClient>>,
    usage: LlmUsage,
    /// The run's memory session, when it has one and a memory service is configured.
    pub memory: Option<SessionMemory>,
    /// The tenant's LLM tokens of the day, checked before and counted after each call.
    pub tokens: Option<RunTokens>,
    /// The tenant's kept LLM answers, when they are kept.
    pub answers: Option<RunCache>,
    /// The custom-agent store, for the agents whose catalog entry says they define agents.
    pub custom_agents: Option<TenantAgents>,
    /// The agents the model may call, for the agents that offer it tools (when the run has an
    /// LLM).
    pub tools: Option<Box<dyn ToolRunner>>,
    /// Where the model's text goes as it is written, when the caller asked for deltas: only
    /// text asks stream.
    pub deltas: Option<tokio::sync::mpsc::Sender<String>>,
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
            answers: None,
            custom_agents: None,
            tools: None,
            deltas: None,
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
    /// tokens of the day is not asked for. An answer kept for the same question is given
    /// without asking (and without tokens).
    pub async fn ask(&mut self, system: &str, user: String) -> Option<Result<String, AgentError>> {
        let messages = [Message::system(system), Message::user(user)];
        self.ask_as(&messages, Ask::Text).await
    }

    /// Asks the LLM `messages` for an answer as `ask` says, as [`Context::ask`] does.
    pub async fn ask_as(
        &mut self,
        messages: &[Message],
        ask: Ask<'_>,
    ) -> Option<Result<String, AgentError>> {
        let llm = self.llm.clone()?;
        let kept_under = self
            .answers
            .as_ref()
            .map(|_| llm.request_key(messages, ask));
        if let (Some(answers), Some(key)) = (&self.answers, &kept_under)
            && let Some(kept) = answers.cache.get(answers.tenant, key).await
        {
            self.usage.used = true;
            self.usage.model = kept.model;
            if let (Ask::Text, Some(deltas)) = (ask, &self.deltas) {
                let _ = deltas.send(kept.text.clone()).await;
            }
            return Some(Ok(kept.text));
        }
        let completion = match self.call(&llm, messages, ask).await {
            Ok(completion) => completion,
            Err(err) => return Some(Err(err)),
        };
        if let (Some(answers), Some(key)) = (&self.answers, &kept_under) {
            answers.cache.put(answers.tenant, key, &completion).await;
        }
        Some(Ok(completion.text))
    }

    /// Asks the LLM `messages`, offering it `tools`: its answer, or the calls it asks for. Never
    /// kept: the tools' results may differ from one run to the next.
    pub async fn converse(
        &mut self,
        messages: &[Message],
        tools: &[Tool],
    ) -> Option<Result<Completion, AgentError>> {
        let llm = self.llm.clone()?;
        Some(self.call(&llm, messages, Ask::WithTools(tools)).await)
    }

    /// One call of the model, within the tenant's tokens of the day, counted.
    async fn call(
        &mut self,
        llm: &LlmClient,
        messages: &[Message],
        ask: Ask<'_>,
    ) -> Result<Completion, AgentError> {
        if let Some(tokens) = &mut self.tokens
            && let Err(refusal) = tokens.before_call().await
        {
            return Err(match refusal {
                RunnerError::QuotaExceeded { message, .. } => AgentError::QuotaExceeded(message),
                RunnerError::Unavailable(message) => AgentError::Unavailable(message),
                other => {
                    tracing::error!(error = %other, "could not check the LLM tokens of the day");
                    AgentError::Failed("the LLM quota could not be checked".to_owned())
                }
            });
        }
        let completion = match (ask, &self.deltas) {
            (Ask::Text, Some(deltas)) => llm.chat_stream(messages, deltas).await?,
            _ => llm.ask(messages, ask).await?,
        };
        if let Some(tokens) = &self.tokens {
            tokens.after_call(&completion).await;
        }
        self.usage.used = true;
        self.usage.model = completion.model.clone();
        self.usage.prompt_tokens += completion.prompt_tokens;
        self.usage.completion_tokens += completion.completion_tokens;
        Ok(completion)
    }

    /// Asks the LLM as [`Context::ask`] does and reads its answer with `read`: `None`, with a
    /// warning saying why, when the run has no LLM, the call fails or `read` refuses the answer;
    /// the agent then takes its deterministic path.
    pub async fn ask_for<T>(
        &mut self,
        system: &str,
        user: String,
        read: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let answer = self.ask(system, user).await?;
        taken(answer.map(|answer| read(&answer)))
    }

    /// Asks the LLM for one JSON document of `schema` (named `name` to the model) and reads it
    /// with `read`, as [`Context::ask_for`] does; an answer `read` refuses is sent back with
    /// why, and asked for again once.
    pub async fn ask_json<T>(
        &mut self,
        system: &str,
        user: String,
        (name, schema): (&str, &serde_json::Value),
        read: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        let mut messages = vec![Message::system(system), Message::user(user)];
        let ask = Ask::Shaped { name, schema };
        for _ in 0..MAX_JSON_ASKS - 1 {
            let answer = match self.ask_as(&messages, ask).await? {
                Ok(answer) => answer,
                Err(err) => return taken(Err(err)),
            };
            match read(&answer) {
                Ok(read) => return Some(read),
                Err(problem) => {
                    tracing::info!(problem, "the model's answer was refused: asking once more");
                    messages.push(Message::assistant(answer));
                    messages.push(Message::user(format!(
                        "Your answer was refused: {problem}. Answer again with the corrected \
                         JSON document only."
                    )));
                }
            }
        }
        let answer = self.ask_as(&messages, ask).await?;
        taken(answer.map(|answer| read(&answer)))
    }

    /// The files written and the LLM usage, once the agent is done.
    pub fn finish(self) -> (BTreeMap<String, Vec<u8>>, LlmUsage) {
        (self.files, self.usage)
    }
}

/// How many times [`Context::ask_json`] asks, the first included.
pub const MAX_JSON_ASKS: usize = 2;

/// What the model's answer, read, gives the agent: `None`, with a warning saying why, when the
/// call failed or the answer was refused.
fn taken<T>(answer: Result<Result<T, String>, AgentError>) -> Option<T> {
    match answer {
        Ok(Ok(read)) => Some(read),
        Ok(Err(problem)) => {
            tracing::warn!(
                problem,
                "the model's answer was refused; taking the rules' path"
            );
            None
        }
        Err(err) => {
            tracing::warn!(error = %err, "the LLM failed; taking the rules' path");
            None
        }
    }
}
