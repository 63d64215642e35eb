//! What can go wrong in memory, and how each case reaches a gRPC caller.

use sankalpa_kit::auth::NoTenant;
use sankalpa_kit::paging::BadPage;
use sankalpa_kit::problem;
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error(transparent)]
    NoTenant(#[from] NoTenant),
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A compare-and-set lost: the key is no longer at the version the caller expected.
    #[error("version conflict: the current version is {current_version}")]
    VersionConflict { current_version: u64 },
    /// Another write got in the way (a session deleted mid-write, a deadlock); retrying works.
    #[error("{0}")]
    Contended(&'static str),
    /// A bound that the state of things, not the request, runs into (a session holding the most
    /// keys it may, a session too large to back up, a backup too large to restore); the message
    /// says which and by how much.
    #[error("{0}")]
    Precondition(String),
    /// A backup whose stored document is missing or does not match its checksum.
    #[error("{0}")]
    DataLoss(String),
    /// A dependency that cannot be asked right now (the database, the object store): nothing
    /// about the request was wrong, and the same request later can succeed.
    #[error("{0}")]
    Unavailable(&'static str),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl MemoryError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl MemoryError {
    /// The error of an object store that failed to store, read or list: to the caller it is a
    /// dependency that did not answer (its keys are built here, never from input), so a retry
    /// is the remedy; the cause goes to the log.
    pub fn object_store(err: anyhow::Error) -> Self {
        tracing::warn!(error = format!("{err:#}"), "the object store failed");
        Self::Unavailable("the object store cannot be reached; retry shortly")
    }

    /// The database error of a write whose only free-form parameter is a value: a data
    /// exception (SQLSTATE class 22) there is JSON that Postgres cannot store, such as a number
    /// past the range of `numeric`, and so the caller's to fix.
    pub fn of_value_write(err: sqlx::Error, value_field: &str) -> Self {
        match err.as_database_error() {
            Some(db) if db.code().is_some_and(|code| code.starts_with("22")) => Self::invalid(
                value_field,
                format!("is JSON that cannot be stored: {}", db.message()),
            ),
            _ => err.into(),
        }
    }
}

impl From<BadPage> for MemoryError {
    fn from(err: BadPage) -> Self {
        Self::invalid(err.field, err.message)
    }
}

impl From<sqlx::Error> for MemoryError {
    fn from(err: sqlx::Error) -> Self {
        if sankalpa_kit::postgres::is_unavailable(&err) {
            tracing::warn!(error = %err, "the database cannot be asked");
            return Self::Unavailable("the database cannot be reached; retry shortly");
        }
        if let Some(db) = err.as_database_error()
            && db.constraint() == Some("sessions_key_count_bound")
        {
            // The message, written by the migration's trigger, names the session and the bound.
            return Self::Precondition(db.message().to_owned());
        }
        let code = err
            .as_database_error()
            .and_then(|db| db.code())
            .map(|code| code.into_owned());
        match code.as_deref() {
            // foreign_key_violation: the session was deleted while an entry was being written.
            Some("23503") => Self::Contended("the session was deleted meanwhile; retry"),
            _ if sankalpa_kit::postgres::is_contended(&err) => {
                Self::Contended("a concurrent write got in the way; retry")
            }
            _ => Self::Internal(anyhow::Error::new(err).context("database error")),
        }
    }
}

impl From<MemoryError> for Status {
    fn from(err: MemoryError) -> Self {
        match err {
            MemoryError::Invalid { field, message } => problem::invalid_argument(&field, message),
            MemoryError::NoTenant(err) => err.into(),
            MemoryError::NotFound(what) => Status::not_found(format!("{what} not found")),
            MemoryError::VersionConflict { current_version } => problem::version_conflict(
                format!("version conflict: the current version is {current_version}"),
                current_version,
            ),
            MemoryError::Contended(message) => Status::aborted(message),
            MemoryError::Precondition(message) => Status::failed_precondition(message),
            MemoryError::DataLoss(message) => Status::data_loss(message),
            MemoryError::Unavailable(message) => Status::unavailable(message),
            MemoryError::Internal(err) => problem::internal(format!("{err:#}")),
        }
    }
}

pub type Result<T, E = MemoryError> = std::result::Result<T, E>;
