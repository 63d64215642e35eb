//! What can go wrong before an agent runs (or around its run), and how each case reaches a gRPC
//! caller. What goes wrong inside a run is not an error of the RPC: an agent fails with an
//! [`AgentError`], which becomes the run's outcome (`runs::RunError`).
//!
//! A status crosses as HTTP/2 trailers, which clients take up to 16 KiB in all (hyper's
//! default), and its message can quote what the caller sent (an agent name of megabytes): every
//! message is cut to [`MAX_ERROR_BYTES`](sankalpa_kit::limits::MAX_ERROR_BYTES), and a validation error keeps the violations that fit
//! in [`MAX_VIOLATIONS_JSON_BYTES`] with a summary naming the first.

use sankalpa_kit::auth::NoTenant;
use sankalpa_kit::limits::error_message;
use sankalpa_kit::problem::{self, FieldViolation, Quota};
use tonic::Status;

use sankalpa_kit::schema::{MAX_VIOLATIONS, Violation};

use crate::llm::LlmError;

/// The most JSON the field violations of one INVALID_ARGUMENT take (base64 in a trailer, a
/// third more), so that the trailers stay well under what HTTP/2 clients accept.
const MAX_VIOLATIONS_JSON_BYTES: usize = 6 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("invalid input: {0:?}")]
    Invalid(Vec<FieldViolation>),
    #[error(transparent)]
    NoTenant(#[from] NoTenant),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    Precondition(String),
    #[error("{0}")]
    Aborted(String),
    /// A service this request needs cannot be asked now (the database, memory): worth a retry.
    #[error("{0}")]
    Unavailable(String),
    /// The tenant is at one of its quotas.
    #[error("{message}")]
    QuotaExceeded { quota: Quota, message: String },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl RunnerError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldViolation {
            field: field.into(),
            message: message.into(),
        }])
    }
}

impl From<Vec<Violation>> for RunnerError {
    fn from(violations: Vec<Violation>) -> Self {
        Self::Invalid(
            violations
                .into_iter()
                .map(|v| FieldViolation {
                    field: v.path,
                    message: v.message,
                })
                .collect(),
        )
    }
}

impl From<sqlx::Error> for RunnerError {
    fn from(err: sqlx::Error) -> Self {
        if sankalpa_kit::postgres::is_unavailable(&err) {
            tracing::warn!(error = %err, "the database cannot be asked");
            Self::Unavailable("the agents database cannot be asked now".to_owned())
        } else {
            Self::Internal(anyhow::Error::new(err).context("database error"))
        }
    }
}

impl From<RunnerError> for Status {
    fn from(err: RunnerError) -> Self {
        let cut = |message: &str| error_message(message).into_owned();
        match err {
            RunnerError::Invalid(violations) => invalid(violations),
            RunnerError::NoTenant(err) => err.into(),
            RunnerError::NotFound(what) => Status::not_found(cut(&format!("{what} not found"))),
            RunnerError::AlreadyExists(message) => Status::already_exists(cut(&message)),
            RunnerError::Precondition(message) => Status::failed_precondition(cut(&message)),
            RunnerError::Aborted(message) => Status::aborted(cut(&message)),
            RunnerError::Unavailable(message) => Status::unavailable(cut(&message)),
            RunnerError::QuotaExceeded { quota, message } => quota.exceeded(cut(&message)),
            // Logged whole but for the cut; the caller learns only that it failed.
            RunnerError::Internal(err) => problem::internal(cut(&format!("{err:#}"))),
        }
    }
}

/// INVALID_ARGUMENT with the first violations, as many as fit (at least one), and a message
/// naming the first and counting the rest.
fn invalid(mut violations: Vec<FieldViolation>) -> Status {
    let found = violations.len();
    violations.truncate(MAX_VIOLATIONS);
    while violations.len() > 1
        && serde_json::to_vec(&violations).map_or(0, |json| json.len()) > MAX_VIOLATIONS_JSON_BYTES
    {
        violations.pop();
    }
    let summary = match violations.first() {
        Some(first) if found > 1 => format!(
            "{}: {} (and {} more)",
            first.field,
            first.message,
            found - 1
        ),
        Some(first) => format!("{}: {}", first.field, first.message),
        None => "invalid argument".to_owned(),
    };
    problem::invalid_arguments_saying(error_message(&summary).into_owned(), violations)
}

pub type Result<T, E = RunnerError> = std::result::Result<T, E>;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_argument_keeps_what_fits_in_its_trailers() {
        let violations: Vec<FieldViolation> = (0..50)
            .map(|i| FieldViolation {
                field: format!("input.items[{i}]"),
                // Control characters take six bytes each once in JSON.
                message: "\u{1}".repeat(160),
            })
            .collect();
        let status = Status::from(RunnerError::Invalid(violations));
        let kept = problem::field_violations(&status);
        assert!(!kept.is_empty() && kept.len() < MAX_VIOLATIONS);
        assert!(serde_json::to_vec(&kept).unwrap().len() <= MAX_VIOLATIONS_JSON_BYTES);
        assert!(status.message().starts_with("input.items[0]: "));
        assert!(status.message().ends_with("(and 49 more)"));
    }

    #[test]
    fn a_message_quoting_megabytes_is_cut() {
        let status = Status::from(RunnerError::NotFound(format!(
            "agent {:?}",
            "x".repeat(1 << 21)
        )));
        assert_eq!(status.code(), tonic::Code::NotFound);
        assert!(status.message().len() <= sankalpa_kit::limits::MAX_ERROR_BYTES);
    }
}
