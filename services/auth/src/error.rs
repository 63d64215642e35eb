//! What can go wrong in auth, and how each case reaches a gRPC caller.

use sankalpa_kit::auth::NoTenant;
use sankalpa_kit::problem;
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// Deliberately vague: says nothing about which part of a credential was wrong.
    #[error("{0}")]
    Unauthenticated(&'static str),
    #[error(transparent)]
    NoTenant(#[from] NoTenant),
    #[error("missing permission {0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Precondition(String),
    /// Auth cannot answer now (its database is unreachable, or too many passwords are being
    /// checked at once); a retry may succeed.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AuthError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }
}

impl From<sqlx::Error> for AuthError {
    fn from(err: sqlx::Error) -> Self {
        if sankalpa_kit::postgres::is_unavailable(&err) {
            tracing::warn!(error = %err, "the database cannot be asked");
            return Self::Unavailable("the auth database is unavailable; retry shortly".to_owned());
        }
        Self::Internal(anyhow::Error::new(err).context("database error"))
    }
}

impl From<AuthError> for Status {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Invalid { field, message } => problem::invalid_argument(field, message),
            AuthError::Unauthenticated(message) => Status::unauthenticated(message),
            AuthError::NoTenant(err) => err.into(),
            AuthError::Forbidden(permission) => {
                Status::permission_denied(format!("missing permission {permission}"))
            }
            AuthError::NotFound(what) => Status::not_found(format!("{what} not found")),
            AuthError::Conflict(message) => Status::already_exists(message),
            AuthError::Precondition(message) => Status::failed_precondition(message),
            AuthError::Unavailable(message) => Status::unavailable(message),
            AuthError::Internal(err) => problem::internal(format!("{err:#}")),
        }
    }
}

pub type Result<T, E = AuthError> = std::result::Result<T, E>;
