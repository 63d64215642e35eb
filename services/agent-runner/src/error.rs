//! What can go wrong before an agent runs (or around its run), and how each case reaches a gRPC
//! caller. What goes wrong inside a run is not an error of the RPC: it is the run's outcome
//! ([`crate::runs::RunError`]).

use sankalpa_kit::problem::{self, FieldViolation};
use tonic::Status;

use crate::schema::Violation;

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("invalid input: {0:?}")]
    Invalid(Vec<FieldViolation>),
    #[error("{0}")]
    Unauthenticated(&'static str),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    Precondition(String),
    #[error("{0}")]
    Aborted(String),
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
        Self::Internal(anyhow::Error::new(err).context("database error"))
    }
}

impl From<RunnerError> for Status {
    fn from(err: RunnerError) -> Self {
        match err {
            RunnerError::Invalid(violations) => problem::invalid_arguments(violations),
            RunnerError::Unauthenticated(message) => Status::unauthenticated(message),
            RunnerError::NotFound(what) => Status::not_found(format!("{what} not found")),
            RunnerError::AlreadyExists(message) => Status::already_exists(message),
            RunnerError::Precondition(message) => Status::failed_precondition(message),
            RunnerError::Aborted(message) => Status::aborted(message),
            RunnerError::Internal(err) => problem::internal(format!("{err:#}")),
        }
    }
}

pub type Result<T, E = RunnerError> = std::result::Result<T, E>;
