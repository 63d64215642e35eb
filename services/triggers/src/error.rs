//! What can go wrong in the triggers service, and how each case reaches a gRPC caller.

use sankalpa_kit::auth::NoTenant;
use sankalpa_kit::paging::BadPage;
use sankalpa_kit::problem;
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum TriggersError {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error(transparent)]
    NoTenant(#[from] NoTenant),
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The caller lacks a permission the work needs (a schedule's runs need chains:execute).
    #[error("missing permission {0}")]
    Forbidden(String),
    /// A request to an inbound trigger whose signature does not hold.
    #[error("{0}")]
    Unauthenticated(String),
    /// What the work needs is gone or refused (a schedule's credential auth no longer takes).
    #[error("{0}")]
    Precondition(String),
    /// A bound of the tenant's (endpoints) is reached.
    #[error("{0}")]
    Exhausted(String),
    /// Another write got in the way (a deadlock, a serialization failure); retrying works.
    #[error("{0}")]
    Contended(&'static str),
    /// The database cannot be asked right now; the same request later can succeed.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl TriggersError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<BadPage> for TriggersError {
    fn from(err: BadPage) -> Self {
        Self::invalid(err.field, err.message)
    }
}

impl From<sqlx::Error> for TriggersError {
    fn from(err: sqlx::Error) -> Self {
        if sankalpa_kit::postgres::is_unavailable(&err) {
            tracing::warn!(error = %err, "the database cannot be asked");
            return Self::Unavailable("the database cannot be reached; retry shortly".to_owned());
        }
        if sankalpa_kit::postgres::is_contended(&err) {
            return Self::Contended("a concurrent write got in the way; retry");
        }
        Self::Internal(anyhow::Error::new(err).context("database error"))
    }
}

impl From<TriggersError> for Status {
    fn from(err: TriggersError) -> Self {
        match err {
            TriggersError::Invalid { field, message } => problem::invalid_argument(&field, message),
            TriggersError::NoTenant(err) => err.into(),
            TriggersError::NotFound(what) => Status::not_found(format!("{what} not found")),
            TriggersError::Forbidden(what) => {
                Status::permission_denied(format!("missing permission {what}"))
            }
            TriggersError::Precondition(message) => Status::failed_precondition(message),
            TriggersError::Unauthenticated(message) => Status::unauthenticated(message),
            TriggersError::Exhausted(message) => Status::resource_exhausted(message),
            TriggersError::Contended(message) => Status::aborted(message),
            TriggersError::Unavailable(message) => Status::unavailable(message),
            TriggersError::Internal(err) => problem::internal(format!("{err:#}")),
        }
    }
}

pub type Result<T, E = TriggersError> = std::result::Result<T, E>;
