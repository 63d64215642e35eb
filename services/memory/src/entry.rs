//! An entry and the SQL that reads and writes it: the bottom layer every other module of the
//! service builds on. An entry is a key -> JSON value in a session, with a version that grows
//! by one on every write and an optional expiry after which it reads as absent.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The columns of an [`Entry`], for `SELECT` and `RETURNING`.
macro_rules! entry_columns {
    () => {
        "key, value::text AS value, version, revision, created_at, updated_at, expires_at"
    };
}
pub(crate) use entry_columns;

/// True for an entry that has not expired.
macro_rules! live {
    () => {
        "(expires_at IS NULL OR expires_at > now())"
    };
}
pub(crate) use live;

/// What an upsert does to an existing row: an expired entry is replaced as if absent (its
/// version restarts at 1); a live one gets the next version.
macro_rules! upsert_existing {
    () => {
        "
        ON CONFLICT (tenant_id, session_id, key) DO UPDATE SET
            value = EXCLUDED.value,
            version = CASE WHEN e.expires_at <= now() THEN 1 ELSE e.version + 1 END,
            revision = nextval('memory.revisions'),
            created_at = CASE WHEN e.expires_at <= now() THEN now() ELSE e.created_at END,
            updated_at = now(),
            expires_at = EXCLUDED.expires_at"
    };
}
pub(crate) use upsert_existing;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Entry {
    pub key: String,
    /// JSON text.
    pub value: String,
    pub version: i64,
    /// The write's place in the order of all writes; see `cache`.
    pub revision: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A session of one tenant: the scope of every entry operation.
pub struct Scope {
    pub tenant: Uuid,
    pub session: String,
}
