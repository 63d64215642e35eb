//! What can go wrong in the marketplace, and how each case reaches a gRPC caller.

use sankalpa_kit::problem;
use sankalpa_kit::problem::FieldViolation;
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum MarketError {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// A package its owning service refused, with each problem it named.
    #[error("the package is not valid")]
    InvalidPackage(Vec<FieldViolation>),
    #[error("the token names no tenant")]
    NoTenant,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    Precondition(String),
    #[error("{0}")]
    Forbidden(String),
    /// Another write got in the way (the same item created at once, a deadlock); retrying works.
    #[error("{0}")]
    Contended(&'static str),
    /// A stored package that is missing or does not match its checksum.
    #[error("{0}")]
    DataLoss(String),
    /// The owning service (chain orchestrator, agent-runner) answered with an error; its status
    /// goes back to the caller as it is, since it is about the caller's own request there.
    #[error("{0}")]
    Remote(Status),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl MarketError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<sqlx::Error> for MarketError {
    fn from(err: sqlx::Error) -> Self {
        let code = err
            .as_database_error()
            .and_then(|db| db.code())
            .map(|code| code.into_owned());
        match code.as_deref() {
            // unique_violation: the same item or version was created by a concurrent call.
            Some("23505") => Self::Contended("a concurrent publish got in the way; retry"),
            // deadlock_detected, serialization_failure: Postgres rolled back one of two writers.
            Some("40P01" | "40001") => Self::Contended("a concurrent write got in the way; retry"),
            _ => Self::Internal(anyhow::Error::new(err).context("database error")),
        }
    }
}

impl From<MarketError> for Status {
    fn from(err: MarketError) -> Self {
        match err {
            MarketError::Invalid { field, message } => problem::invalid_argument(&field, message),
            MarketError::InvalidPackage(violations) => problem::invalid_arguments(violations),
            MarketError::NoTenant => Status::unauthenticated("the token names no tenant"),
            MarketError::NotFound(what) => Status::not_found(format!("{what} not found")),
            MarketError::AlreadyExists(message) => Status::already_exists(message),
            MarketError::Precondition(message) => Status::failed_precondition(message),
            MarketError::Forbidden(message) => Status::permission_denied(message),
            MarketError::Contended(message) => Status::aborted(message),
            MarketError::DataLoss(message) => Status::data_loss(message),
            MarketError::Remote(status) => status,
            MarketError::Internal(err) => problem::internal(format!("{err:#}")),
        }
    }
}

pub type Result<T, E = MarketError> = std::result::Result<T, E>;
