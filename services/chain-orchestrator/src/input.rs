//! Checks on what callers send, each failing with the field it is about (INVALID_ARGUMENT). They
//! run before any work, so bad input changes nothing. Whether a definition is valid is
//! [`crate::definition`]'s to say; here are the bounds of the fields around it.

use std::time::Duration;

use chrono::{DateTime, Datelike, Utc};
use sankalpa_kit::bounded_json::{NUL_REFUSED, holds_nul};
use sankalpa_proto::v1 as pb;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::approvals::Decision;
use crate::definition::{self, MAX_JSON_DEPTH, MAX_NAME_CHARS};
use crate::error::{ChainError, Result};
use crate::runs::store::RunStatus;

const DEFAULT_WAIT: Duration = Duration::from_secs(30);
const MAX_WAIT: Duration = Duration::from_secs(300);
/// The largest run input (`input_json`), in bytes: it is stored with the run and merged into
/// every step's input.
const MAX_INPUT_BYTES: usize = 1024 * 1024;
/// The longest idempotency key, in bytes; keys are unique per tenant through an index.
const MAX_IDEMPOTENCY_KEY_BYTES: usize = 256;
/// The longest session id, in bytes, as memory takes them (with the same characters).
const MAX_SESSION_ID_BYTES: usize = 256;
/// The longest `installed_from` (the marketplace's `<item>@<version>`), in characters.
pub const MAX_INSTALLED_FROM_CHARS: usize = 200;
/// The most statuses ListRuns filters on: one of each.
const MAX_STATUSES: usize = 6;
/// The largest JSON a decision on an approval step carries, in bytes: it becomes part of the
/// step's output, which later steps are sent.
pub const MAX_DECISION_INPUT_BYTES: usize = 64 * 1024;
/// The longest comment on a decision, in characters.
pub const MAX_DECISION_COMMENT_CHARS: usize = 2000;

pub fn id(field: &str, raw: &str) -> Result<Uuid> {
    Uuid::parse_str(raw.trim()).map_err(|_| ChainError::invalid(field, "must be a UUID"))
}

/// An id to filter by, if one is given.
pub fn optional_id(field: &str, raw: &str) -> Result<Option<Uuid>> {
    if raw.is_empty() {
        Ok(None)
    } else {
        id(field, raw).map(Some)
    }
}

pub fn version_number(field: &str, version: u32) -> Result<i32> {
    i32::try_from(version)
        .ok()
        .filter(|version| *version >= 1)
        .ok_or_else(|| ChainError::invalid(field, "must be 1 or more"))
}

pub fn chain_name(field: &str, raw: &str) -> Result<String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(ChainError::invalid(
            field,
            format!("must be 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    Ok(name.to_owned())
}

/// `text` if it is at most `max` characters.
pub fn at_most_chars<'a>(field: &str, text: &'a str, max: usize) -> Result<&'a str> {
    if text.chars().count() > max {
        return Err(ChainError::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(text)
}

/// The run statuses ListRuns filters on: at most one of each, none unspecified.
pub fn statuses(raw: &[i32]) -> Result<Vec<String>> {
    if raw.len() > MAX_STATUSES {
        return Err(ChainError::invalid(
            "statuses",
            format!("may list at most {MAX_STATUSES} statuses"),
        ));
    }
    raw.iter()
        .map(|status| status_name(*status).map(str::to_owned))
        .collect()
}

fn status_name(status: i32) -> Result<&'static str> {
    match pb::ChainRunStatus::try_from(status) {
        Ok(pb::ChainRunStatus::Pending) => Ok(RunStatus::Pending.as_str()),
        Ok(pb::ChainRunStatus::Running) => Ok(RunStatus::Running.as_str()),
        Ok(pb::ChainRunStatus::Waiting) => Ok(RunStatus::Waiting.as_str()),
        Ok(pb::ChainRunStatus::Completed) => Ok(RunStatus::Completed.as_str()),
        Ok(pb::ChainRunStatus::Failed) => Ok(RunStatus::Failed.as_str()),
        Ok(pb::ChainRunStatus::Cancelled) => Ok(RunStatus::Cancelled.as_str()),
        Ok(pb::ChainRunStatus::Unspecified) | Err(_) => {
            Err(ChainError::invalid("statuses", "must name run statuses"))
        }
    }
}

/// A time window `[since, until)`, each bound optional.
pub type Window = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// ListRuns' time window; a time outside years 1 to 9999 is refused, naming the field. An empty
/// window (`until` not after `since`) is valid and lists no run: the REST query it comes from
/// cannot say otherwise in its schema.
pub fn created_window(
    since: Option<&prost_types::Timestamp>,
    until: Option<&prost_types::Timestamp>,
) -> Result<Window> {
    let since = since.map(|at| instant("created_since", at)).transpose()?;
    let until = until.map(|at| instant("created_until", at)).transpose()?;
    Ok((since, until))
}

/// A wire timestamp as an instant within years 1 to 9999, the range RFC 3339 writes.
fn instant(field: &str, at: &prost_types::Timestamp) -> Result<DateTime<Utc>> {
    u32::try_from(at.nanos)
        .ok()
        .and_then(|nanos| DateTime::from_timestamp(at.seconds, nanos))
        .filter(|at| (1..=9999).contains(&at.year()))
        .ok_or_else(|| ChainError::invalid(field, "must be a time in years 1 to 9999"))
}

/// A decision's optional JSON (`input_json`, empty for none) and comment, within their bounds.
pub fn decision(approve: bool, input_json: &str, comment: &str) -> Result<Decision> {
    let input = if input_json.trim().is_empty() {
        None
    } else {
        if input_json.len() > MAX_DECISION_INPUT_BYTES {
            return Err(ChainError::invalid(
                "input_json",
                format!(
                    "is {} bytes; a decision's input may be at most {MAX_DECISION_INPUT_BYTES}",
                    input_json.len()
                ),
            ));
        }
        let value: Value = serde_json::from_str(input_json)
            .map_err(|err| ChainError::invalid("input_json", format!("is not JSON: {err}")))?;
        if holds_nul(&value) {
            return Err(ChainError::invalid("input_json", NUL_REFUSED));
        }
        if definition::nests_deeper(&value, MAX_JSON_DEPTH) {
            return Err(ChainError::invalid(
                "input_json",
                format!("nests deeper than {MAX_JSON_DEPTH} levels"),
            ));
        }
        Some(value)
    };
    let comment = at_most_chars("comment", comment, MAX_DECISION_COMMENT_CHARS)?;
    Ok(Decision {
        approve,
        input,
        comment: comment.to_owned(),
    })
}

/// What an ExecuteChain request asks to run.
pub enum Target {
    /// A stored chain, at `version` or its latest.
    Chain { id: Uuid, version: Option<i32> },
    /// A template of the catalog, by name.
    Template(String),
    /// A definition given inline, unchecked yet.
    Definition(String),
}

/// An ExecuteChain request, checked.
pub struct Execution {
    pub target: Target,
    /// A JSON object; `{}` when none was given.
    pub input: Value,
    /// The memory session named by the caller, if any.
    pub session: Option<String>,
    pub idempotency_key: Option<String>,
    /// What a repeat of the idempotency key must match to be answered with the first run.
    pub request_hash: String,
    /// Whether to answer only when the run has finished or `wait_limit` has passed.
    pub wait: bool,
    pub wait_limit: Duration,
}

pub fn execution(message: pb::ExecuteChainRequest) -> Result<Execution> {
    let input = run_input(&message.input_json)?;
    let session = session_id(message.session_id.as_deref())?;
    let wait_limit = match message.wait_timeout_ms {
        0 => DEFAULT_WAIT,
        ms => Duration::from_millis(ms).min(MAX_WAIT),
    };
    // Hashed from the wire form of the target, as it has been since the first stored run: a
    // repeat is matched against the hash its first request left.
    let request_hash = hex::encode(Sha256::digest(
        json!({
            "target": format!("{:?}", message.target),
            "input": input,
            "session": message.session_id,
        })
        .to_string(),
    ));
    let idempotency_key = idempotency_key(&message.idempotency_key)?.map(str::to_owned);
    Ok(Execution {
        target: target(message.target)?,
        input,
        session,
        idempotency_key,
        request_hash,
        wait: message.wait,
        wait_limit,
    })
}

fn target(target: Option<pb::execute_chain_request::Target>) -> Result<Target> {
    use pb::execute_chain_request::Target as Wire;
    match target {
        Some(Wire::Chain(chain)) => Ok(Target::Chain {
            version: chain
                .version
                .map(|version| version_number("chain.version", version))
                .transpose()?,
            id: id("chain.id", &chain.id)?,
        }),
        Some(Wire::Template(name)) => Ok(Target::Template(name)),
        Some(Wire::DefinitionJson(document)) => Ok(Target::Definition(document)),
        None => Err(ChainError::invalid(
            "target",
            "give a chain, a template or a definition",
        )),
    }
}

/// A run's input: a JSON object of at most [`MAX_INPUT_BYTES`], nested at most
/// [`MAX_JSON_DEPTH`] levels; `{}` when empty.
fn run_input(raw: &str) -> Result<Value> {
    if raw.len() > MAX_INPUT_BYTES {
        return Err(ChainError::invalid(
            "input_json",
            format!(
                "is {} bytes; a run's input may be at most {MAX_INPUT_BYTES}",
                raw.len()
            ),
        ));
    }
    if raw.trim().is_empty() {
        return Ok(json!({}));
    }
    let input: Value = serde_json::from_str(raw)
        .map_err(|err| ChainError::invalid("input_json", format!("is not JSON: {err}")))?;
    if !input.is_object() {
        return Err(ChainError::invalid("input_json", "must be a JSON object"));
    }
    if holds_nul(&input) {
        return Err(ChainError::invalid("input_json", NUL_REFUSED));
    }
    if definition::nests_deeper(&input, MAX_JSON_DEPTH) {
        return Err(ChainError::invalid(
            "input_json",
            format!("nests deeper than {MAX_JSON_DEPTH} levels"),
        ));
    }
    Ok(input)
}

/// The idempotency key, if one is given: at most [`MAX_IDEMPOTENCY_KEY_BYTES`].
fn idempotency_key(raw: &str) -> Result<Option<&str>> {
    let key = raw.trim();
    if key.len() > MAX_IDEMPOTENCY_KEY_BYTES {
        return Err(ChainError::invalid(
            "idempotency_key",
            format!("must be at most {MAX_IDEMPOTENCY_KEY_BYTES} bytes"),
        ));
    }
    Ok(Some(key).filter(|key| !key.is_empty()))
}

/// The memory session a run shares, if the caller names one: 1 to [`MAX_SESSION_ID_BYTES`] of
/// ASCII letters, digits, `_`, `-` and `:`, as memory takes them (a name memory would refuse
/// would fail every step's save).
fn session_id(raw: Option<&str>) -> Result<Option<String>> {
    let Some(session) = raw.map(str::trim).filter(|session| !session.is_empty()) else {
        return Ok(None);
    };
    if session.len() > MAX_SESSION_ID_BYTES
        || !session
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b':'))
    {
        return Err(ChainError::invalid(
            "session_id",
            format!("must be 1 to {MAX_SESSION_ID_BYTES} ASCII letters, digits, '_', '-' and ':'"),
        ));
    }
    Ok(Some(session.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A repeat is matched against the hash its first request stored, so the hash of a request
    /// must not change from one release to the next.
    #[test]
    fn a_request_hashes_as_the_runs_stored_before() {
        let execution = execution(pb::ExecuteChainRequest {
            target: Some(pb::execute_chain_request::Target::Template(
                "hello-sequence".to_owned(),
            )),
            input_json: r#"{"name":"Ada"}"#.to_owned(),
            session_id: Some("s-1".to_owned()),
            idempotency_key: " key ".to_owned(),
            ..Default::default()
        })
        .expect("the request is valid");
        assert_eq!(
            execution.request_hash,
            "5d9d8811208185fb867b520b489a279aedc1acecfaa6ead0a440536530b3f6ef"
        );
        assert_eq!(execution.idempotency_key.as_deref(), Some("key"));
    }

    #[test]
    fn a_run_without_a_target_is_refused_by_field() {
        let refused = execution(pb::ExecuteChainRequest::default());
        assert!(
            matches!(refused, Err(ChainError::Invalid { ref field, .. }) if field == "target"),
            "{:?}",
            refused.err()
        );
    }
}
