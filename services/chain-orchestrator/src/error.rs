//! What can go wrong in the chain orchestrator, and how each case reaches a gRPC caller.

use sankalpa_kit::auth::NoTenant;
use sankalpa_kit::problem::{self, FieldViolation, Quota};
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// A request field is wrong; `field` names it.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// A chain definition has problems, every one listed.
    #[error("the definition is not valid")]
    InvalidDefinition(Vec<FieldViolation>),
    /// A run input fails its chain's `input_schema`, every problem listed.
    #[error("the input does not fit the chain's input_schema")]
    InvalidInput(Vec<FieldViolation>),
    #[error("missing permission {0}")]
    Forbidden(String),
    /// The caller is not among an approval step's approvers; the message names who is.
    #[error("{0}")]
    NotApprover(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    AlreadyExists(String),
    /// An optimistic update lost: the chain moved on to `current_version`.
    #[error("the chain is at version {current_version}")]
    VersionConflict { current_version: i32 },
    #[error("{0}")]
    Precondition(String),
    #[error(transparent)]
    NoTenant(#[from] NoTenant),
    /// A service this one depends on (auth, agent-runner, Postgres) did not answer.
    #[error("{0}")]
    Unavailable(String),
    /// The tenant is at one of its quotas (`limit` of something at once); room frees up as
    /// what holds it ends.
    #[error("{message}")]
    QuotaExceeded { limit: u64, message: String },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ChainError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<sqlx::Error> for ChainError {
    fn from(err: sqlx::Error) -> Self {
        // A database that cannot be asked (down, restarting, out of connections) is a passing
        // state a client can retry through, not a bug.
        if sankalpa_kit::postgres::is_unavailable(&err) {
            tracing::warn!(error = %err, "the database is unavailable");
            return Self::Unavailable("the database is unavailable; retry shortly".to_owned());
        }
        Self::Internal(anyhow::Error::new(err).context("database error"))
    }
}

impl From<ChainError> for Status {
    fn from(err: ChainError) -> Self {
        match err {
            ChainError::Invalid { field, message } => problem::invalid_argument(&field, message),
            ChainError::InvalidDefinition(violations) | ChainError::InvalidInput(violations) => {
                problem::invalid_arguments(violations)
            }
            ChainError::Forbidden(permission) => {
                Status::permission_denied(format!("missing permission {permission}"))
            }
            ChainError::NotApprover(message) => Status::permission_denied(message),
            ChainError::NotFound(what) => Status::not_found(format!("{what} not found")),
            ChainError::AlreadyExists(message) => Status::already_exists(message),
            ChainError::VersionConflict { current_version } => problem::version_conflict(
                format!("the chain is at version {current_version}; nothing was changed"),
                u64::try_from(current_version).unwrap_or_default(),
            ),
            ChainError::Precondition(message) => Status::failed_precondition(message),
            ChainError::NoTenant(err) => err.into(),
            ChainError::Unavailable(message) => Status::unavailable(message),
            ChainError::QuotaExceeded { limit, message } => Quota {
                limit,
                remaining: 0,
                reset: 1,
            }
            .exceeded(message),
            ChainError::Internal(err) => problem::internal(format!("{err:#}")),
        }
    }
}

pub type Result<T, E = ChainError> = std::result::Result<T, E>;
