//! Map steps: an agent step with `for_each` runs its agent once per item of a list, at most
//! `max_parallel` items at once, and its output is the list of the items' outputs in item order
//! (whatever order they finish in).
//!
//! The list is the value of the `for_each` expression when the step is decided: anything but a
//! list fails the step (`invalid_input`), and so does a list of more than
//! [`definition::MAX_ITEMS`] (`too_many_items`), or larger than a step's input
//! (`input_too_large`: the list is the step's input as its row shows it). Each item's input is the step's `input`
//! mapping rendered with `${item}` and `${index}` naming it (without a mapping, the step's
//! default input plus `item` and `index`), rendered as the item starts, so a long list costs
//! no more than the items running.
//!
//! Each item is an exactly-once sub-step: its attempts have fixed agent run ids,
//! `<run>-<step>-<attempt>-i<index>` ([`item_run_id`]), and the step's `retry` and `timeout_ms`
//! apply to each item on its own. An item's end (its output, or its failure) is one row of
//! `chains.step_items`, written as it ends and fenced on the run's lease; nothing is written as
//! an item starts. A replica that takes the run over mid-map keeps the items that have rows and
//! asks agent-runner again for the others from their first attempt, under the same ids, which
//! agent-runner answers with what it kept (or attaches to the run in flight): no finished item
//! runs again. The step itself is announced as any step is (`step.started`, with `items`, and
//! its end); items announce nothing.
//!
//! A failed item (its retries spent) follows the step's `on_failure`: with `continue` its slot
//! in the list is `null` and the other items go on; otherwise the step fails at once with the
//! item's error (its message naming the item), the items still running are dropped, and
//! `on_failure` applies to the step as to any other.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{
    Failure, Outcome, RunContext, Scope, StepInput, StepStatus, StepUpdate, attempt_step,
    lease_lost, record, record_output, step_slots, transition,
};
use crate::definition::{self, AgentStep, ForEach, MappingError, OnFailure, Step};
use crate::error::Result;
use crate::events::RunEvent;
use crate::runs::store::{self, ItemEnd, LeaseLost};
use crate::{State, expr};

/// The code of a map step whose list is longer than [`definition::MAX_ITEMS`].
const TOO_MANY_ITEMS: &str = "too_many_items";

/// The agent run id of an attempt at one item of a map step. The `i` keeps it apart from any
/// step's own attempt ids (`<run>-<step>-<attempt>`, ending in a number) whatever the step ids.
/// At most 36 + 1 + 64 + 1 + 2 + 2 + 3 bytes, within agent-runner's 128.
pub(super) fn item_run_id(run: uuid::Uuid, step: &str, attempt: u32, index: usize) -> String {
    format!("{run}-{step}-{attempt}-i{index}")
}

/// A map step's items, and the run's scope as the step was decided, which every item's input
/// is rendered from.
pub(super) struct Items {
    pub items: Vec<Value>,
    scope: Value,
}

impl Items {
    /// The list `for_each` gives in `scope`, or why the step fails.
    pub(super) fn of(
        for_each: &ForEach,
        scope: &Scope,
        max_input: usize,
    ) -> std::result::Result<Self, Failure> {
        let source = for_each.expression();
        let value = expr::parse(source)
            .map_err(|err| err.to_string())
            .and_then(|parsed| {
                parsed
                    .evaluate(scope.value())
                    .map(|value| value.into_owned())
                    .map_err(|err| err.to_string())
            })
            .map_err(|err| {
                Failure::new(
                    "invalid_input",
                    format!("for_each `{source}`: {err}"),
                    false,
                )
            })?;
        // The list is the step's input as its row keeps it.
        if let Value::Array(items) = &value
            && items.len() <= definition::MAX_ITEMS
            && crate::sizes::json_size(&value, max_input).is_none()
        {
            return Err(super::input_too_large(max_input));
        }
        match value {
            Value::Array(items) if items.len() > definition::MAX_ITEMS => Err(Failure::new(
                TOO_MANY_ITEMS,
                format!(
                    "for_each `{source}` gave {} items; a map step runs over at most {}",
                    items.len(),
                    definition::MAX_ITEMS
                ),
                false,
            )),
            Value::Array(items) => Ok(Self {
                items,
                scope: scope.value().clone(),
            }),
            other => Err(Failure::new(
                "invalid_input",
                format!(
                    "for_each `{source}` must give a list, and gave {}",
                    json_kind(&other)
                ),
                false,
            )),
        }
    }

    /// The input of item `index`, at most `max_input` bytes.
    fn input(
        &self,
        step: &Step,
        agent: &AgentStep,
        index: usize,
        max_input: usize,
    ) -> std::result::Result<StepInput, Failure> {
        let item = &self.items[index];
        match &agent.input {
            Some(mapping) => {
                definition::render_item_mapping(mapping, &self.scope, item, index, max_input)
                    .map(StepInput::Mapped)
                    .map_err(|err| match err {
                        MappingError::Invalid(err) => {
                            Failure::new("invalid_input", format!("input {err}"), false)
                        }
                        MappingError::TooLarge => super::input_too_large(max_input),
                    })
            }
            None => {
                let outputs = self.scope["steps"].as_object().cloned().unwrap_or_default();
                let mut merged =
                    definition::merged_input(&self.scope["input"], &step.needs, &outputs);
                if let Value::Object(fields) = &mut merged {
                    fields.insert(expr::ITEM.to_owned(), item.clone());
                    fields.insert(expr::INDEX.to_owned(), Value::from(index));
                }
                if crate::sizes::json_size(&merged, max_input).is_none() {
                    return Err(super::input_too_large(max_input));
                }
                Ok(StepInput::Merged(merged))
            }
        }
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// How an item ended: its output, or its failure.
type ItemResult = std::result::Result<Value, Failure>;

/// Runs a map step's items and records how the step ended. `resumed`: a replica before this
/// one had started the step, so it is not announced again and the items that ended are kept.
pub(super) async fn run_map(
    state: Arc<State>,
    context: Arc<RunContext>,
    step: Step,
    agent: AgentStep,
    items: Items,
    resumed: bool,
) -> Result<(String, Outcome)> {
    let _slots = step_slots(&state, &context).await?;
    let count = items.items.len();
    let max_parallel = agent
        .for_each
        .as_ref()
        .map_or(1, |for_each| for_each.max_parallel as usize);
    if !resumed {
        let list = Value::Array(items.items.clone());
        transition(
            &state,
            &context,
            StepUpdate {
                attempt: Some(("", &list)),
                ..StepUpdate::running(&step.id)
            },
            RunEvent::step_started(context.id, &step.id, &agent.agent, 1, "")
                .with("items", Value::from(count)),
        )
        .await?
        .map_err(|LeaseLost| lease_lost())?;
    }
    let mut ended: Vec<Option<ItemResult>> = vec![None; count];
    if resumed {
        for row in store::items(&state.pool, context.id, &step.id).await? {
            let Some(slot) = usize::try_from(row.item_index)
                .ok()
                .and_then(|index| ended.get_mut(index))
            else {
                continue;
            };
            *slot = Some(if row.status == StepStatus::Completed.as_str() {
                Ok(row.output.unwrap_or(Value::Null))
            } else {
                Err(Failure::new(
                    row.error_code.as_deref().unwrap_or("failed"),
                    row.error_message.unwrap_or_default(),
                    false,
                ))
            });
        }
    }
    let items = Arc::new(items);
    let parallel = Arc::new(Semaphore::new(max_parallel));
    let mut running = JoinSet::new();
    for index in (0..count).filter(|index| ended[*index].is_none()) {
        running.spawn(run_item(
            state.clone(),
            context.clone(),
            step.clone(),
            agent.clone(),
            items.clone(),
            index,
            parallel.clone(),
        ));
    }
    // Items that ended before a takeover count as they did then.
    let earlier_failure = ended
        .iter()
        .enumerate()
        .find_map(|(index, slot)| match slot {
            Some(Err(failure)) => Some((index, failure.clone())),
            _ => None,
        });
    let mut failed = earlier_failure.filter(|_| step.on_failure != OnFailure::Continue);
    while failed.is_none() {
        let Some(joined) = running.join_next().await else {
            break;
        };
        let (index, result) = match joined {
            Ok(result) => result?,
            Err(panicked) => return Err(anyhow::anyhow!("an item task failed: {panicked}").into()),
        };
        if let Err(failure) = &result
            && step.on_failure != OnFailure::Continue
        {
            failed = Some((index, failure.clone()));
        }
        ended[index] = Some(result);
    }
    // A failed item fails the step: the items still running are dropped.
    running.shutdown().await;
    if let Some((index, failure)) = failed {
        let failure = Failure::new(
            &failure.code,
            format!("item {index} failed: {}", failure.message),
            false,
        );
        record(
            &state,
            &context,
            &step,
            StepStatus::Failed,
            None,
            Some(&failure),
            "",
        )
        .await?;
        return Ok((step.id, Outcome::Failed(failure)));
    }
    let output = Value::Array(
        ended
            .into_iter()
            .map(|slot| match slot {
                Some(Ok(output)) => output,
                _ => Value::Null,
            })
            .collect(),
    );
    if let Err(failure) = context.charge_output(&step.id, &output) {
        record(
            &state,
            &context,
            &step,
            StepStatus::Failed,
            None,
            Some(&failure),
            "",
        )
        .await?;
        return Ok((step.id, Outcome::Failed(failure)));
    }
    record_output(&state, &context, &step, &output).await?;
    Ok((step.id, Outcome::Completed(output)))
}

/// Runs one item, within the step's `max_parallel`, through its attempts; its end is kept in
/// its row before it is returned.
async fn run_item(
    state: Arc<State>,
    context: Arc<RunContext>,
    step: Step,
    agent: AgentStep,
    items: Arc<Items>,
    index: usize,
    parallel: Arc<Semaphore>,
) -> Result<(usize, ItemResult)> {
    let _permit = parallel
        .acquire_owned()
        .await
        .map_err(|_| anyhow::anyhow!("the map step's item slots were closed"))?;
    let mut backoff = Duration::from_millis(agent.retry.backoff_ms);
    let mut attempt = 1;
    let result = match items.input(&step, &agent, index, state.config.max_step_input_bytes) {
        Err(failure) => Err(failure),
        Ok(input) => loop {
            let agent_run_id = item_run_id(context.id, &step.id, attempt, index);
            let (answered, _) = attempt_step(
                &state,
                &context,
                &step,
                &agent,
                &input,
                &agent_run_id,
                attempt,
                true,
                true,
            )
            .await?;
            match answered {
                Ok((completed, _)) => break Ok(completed.output),
                Err(failure) if failure.retriable && attempt < agent.retry.attempts => {
                    tokio::time::sleep(backoff).await;
                    backoff = backoff.saturating_mul(2);
                    attempt += 1;
                }
                Err(failure) => break Err(failure),
            }
        },
    };
    let (status, output, error) = match &result {
        Ok(output) => (StepStatus::Completed, Some(output), None),
        Err(failure) => (
            StepStatus::Failed,
            None,
            Some((failure.code.as_str(), failure.message.as_str())),
        ),
    };
    store::record_item(
        &state.pool,
        context.id,
        state.engine.owner,
        &ItemEnd {
            step_id: &step.id,
            index: i32::try_from(index).unwrap_or(i32::MAX),
            status,
            attempts: i32::try_from(attempt).unwrap_or(i32::MAX),
            output,
            error,
        },
    )
    .await?
    .map_err(|LeaseLost| lease_lost())?;
    Ok((index, result))
}
