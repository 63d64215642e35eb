//! What can go wrong in the marketplace, and how each case reaches a gRPC caller.

use sankalpa_kit::auth::NoTenant;
use sankalpa_kit::paging::BadPage;
use sankalpa_kit::problem;
use sankalpa_kit::problem::FieldViolation;
use tonic::{Code, Status};

#[derive(Debug, thiserror::Error)]
pub enum MarketError {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// A package its owning service refused, with each problem it named.
    #[error("the package is not valid")]
    InvalidPackage(Vec<FieldViolation>),
    #[error(transparent)]
    NoTenant(#[from] NoTenant),
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
    /// A dependency that cannot be asked right now (the database, the object store, an owning
    /// service): nothing about the request was wrong, and the same request later can succeed.
    #[error("{0}")]
    Unavailable(String),
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

impl MarketError {
    /// The error of an object store that failed to store or read a package: to the caller it
    /// is a dependency that did not answer (keys are built here, never from input), so a retry
    /// is the remedy; the cause goes to the log.
    pub fn object_store(err: anyhow::Error) -> Self {
        tracing::warn!(error = format!("{err:#}"), "the object store failed");
        Self::Unavailable("the object store cannot be reached; retry shortly".to_owned())
    }

    /// The error of a call to `service` (the chain orchestrator, agent-runner). A status the
    /// service answered goes back as it is, since it is about the caller's own request there;
    /// a call that got no answer (the service down or restarting, the connection broken on the
    /// way, which the transport reports as UNKNOWN, INTERNAL or CANCELLED with a cause) is
    /// UNAVAILABLE naming the service, not in the transport's words.
    pub fn upstream(service: &'static str) -> impl Fn(Status) -> Self {
        move |status| {
            let unanswered = status.code() == Code::Unavailable
                || (std::error::Error::source(&status).is_some()
                    && matches!(
                        status.code(),
                        Code::Unknown | Code::Internal | Code::Cancelled
                    ));
            if unanswered {
                tracing::warn!(error = %status, service, "an owning service did not answer");
                Self::Unavailable(format!("the {service} is unavailable; retry shortly"))
            } else {
                Self::Remote(status)
            }
        }
    }
}

impl From<BadPage> for MarketError {
    fn from(err: BadPage) -> Self {
        Self::invalid(err.field, err.message)
    }
}

impl From<sqlx::Error> for MarketError {
    fn from(err: sqlx::Error) -> Self {
        if sankalpa_kit::postgres::is_unavailable(&err) {
            tracing::warn!(error = %err, "the database cannot be asked");
            return Self::Unavailable("the database cannot be reached; retry shortly".to_owned());
        }
        let code = err
            .as_database_error()
            .and_then(|db| db.code())
            .map(|code| code.into_owned());
        match code.as_deref() {
            // unique_violation: the same item or version was created by a concurrent call.
            Some("23505") => Self::Contended("a concurrent publish got in the way; retry"),
            _ if sankalpa_kit::postgres::is_contended(&err) => {
                Self::Contended("a concurrent write got in the way; retry")
            }
            _ => Self::Internal(anyhow::Error::new(err).context("database error")),
        }
    }
}

impl From<MarketError> for Status {
    fn from(err: MarketError) -> Self {
        match err {
            MarketError::Invalid { field, message } => problem::invalid_argument(&field, message),
            MarketError::InvalidPackage(violations) => problem::invalid_arguments(violations),
            MarketError::NoTenant(err) => err.into(),
            MarketError::NotFound(what) => Status::not_found(format!("{what} not found")),
            MarketError::AlreadyExists(message) => Status::already_exists(message),
            MarketError::Precondition(message) => Status::failed_precondition(message),
            MarketError::Forbidden(message) => Status::permission_denied(message),
            MarketError::Contended(message) => Status::aborted(message),
            MarketError::DataLoss(message) => Status::data_loss(message),
            MarketError::Remote(status) => status,
            MarketError::Unavailable(message) => Status::unavailable(message),
            MarketError::Internal(err) => problem::internal(format!("{err:#}")),
        }
    }
}

pub type Result<T, E = MarketError> = std::result::Result<T, E>;
