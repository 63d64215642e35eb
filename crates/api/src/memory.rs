//! Memory: sessions of key -> JSON entries and their backups (`/api/memory/...`).
//!
//! Values pass through as the JSON text sent ([`RawValue`]), so numbers keep every digit.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Entry {
    pub key: String,
    /// Any JSON value.
    #[schema(value_type = serde_json::Value)]
    pub value: Box<RawValue>,
    /// 1 when the key is created, one more on every write to it.
    pub version: u64,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    /// Absent when the entry does not expire.
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MemorySession {
    pub id: String,
    pub tenant_id: String,
    /// The user that created it; absent when an API key did.
    pub user_id: Option<String>,
    /// Entries that are not expired.
    pub entry_count: u64,
    pub created_at: Option<DateTime<Utc>>,
    /// The last write to any of its entries.
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MemoryBackup {
    pub id: String,
    pub session_id: String,
    pub label: String,
    pub entry_count: u64,
    pub size_bytes: u64,
    /// Hex SHA-256 of the stored document, checked before every restore.
    pub sha256: String,
    /// The user or key that made it.
    pub created_by: String,
    pub created_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"session_id": "run-42", "key": "plan", "value": {"steps": ["design", "build"]}, "ttl_seconds": 3600}))]
pub struct SaveEntry {
    /// Created on its first write. 1 to 256 ASCII letters, digits, `_`, `-`, `:`.
    #[schema(min_length = 1, max_length = 256, pattern = r"^[A-Za-z0-9_:-]+$")]
    pub session_id: String,
    /// 1 to 256 bytes (not characters) of UTF-8, without NUL.
    #[schema(min_length = 1, max_length = 256, pattern = r"^[^\u0000]+$")]
    pub key: String,
    /// Any JSON value, at most 1 MiB of JSON text by default.
    #[schema(value_type = serde_json::Value)]
    pub value: Box<RawValue>,
    /// Compare-and-set: write only if the key is at this version now (0: only if it is absent).
    #[schema(maximum = 9223372036854775807_u64)]
    #[serde(default, deserialize_with = "crate::json::whole")]
    pub expected_version: Option<u64>,
    /// The entry expires this many seconds after this write (at most ten years); absent or 0:
    /// never.
    #[schema(maximum = 315360000)]
    #[serde(default, deserialize_with = "crate::json::whole")]
    pub ttl_seconds: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"session_id": "run-42", "key": "plan"}))]
pub struct LoadEntry {
    /// 1 to 256 ASCII letters, digits, `_`, `-`, `:`.
    #[schema(min_length = 1, max_length = 256, pattern = r"^[A-Za-z0-9_:-]+$")]
    pub session_id: String,
    /// 1 to 256 bytes (not characters) of UTF-8, without NUL.
    #[schema(min_length = 1, max_length = 256, pattern = r"^[^\u0000]+$")]
    pub key: String,
}

#[derive(Debug, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AllQuery {
    /// 1 to 256 ASCII letters, digits, `_`, `-`, `:`.
    #[param(min_length = 1, max_length = 256, pattern = r"^[A-Za-z0-9_:-]+$")]
    pub session_id: String,
    /// Only keys starting with this: at most 256 bytes (not characters), without NUL.
    #[param(max_length = 256, pattern = r"^[^\u0000]*$")]
    pub key_prefix: Option<String>,
    /// At most 200; the service default (50) when absent.
    #[param(maximum = 200)]
    pub page_size: Option<u32>,
    /// `next_page_token` of the previous page: the last key of the page before, in hex.
    #[param(max_length = 512, pattern = r"^(([1-7][0-9a-fA-F]|0[1-9a-fA-F])+)?$")]
    pub page_token: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EntryList {
    /// By key order.
    pub entries: Vec<Entry>,
    /// Pass as `page_token` for the next page; absent on the last page.
    pub next_page_token: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionList {
    /// Newest first.
    pub sessions: Vec<MemorySession>,
    /// Pass as `page_token` for the next page; absent on the last page.
    pub next_page_token: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteKeyQuery {
    /// Delete only if the key is at this version now; 409 otherwise.
    #[param(maximum = 9223372036854775807_u64)]
    pub expected_version: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeletedKey {
    /// False when the key was absent.
    pub deleted: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeletedSession {
    pub deleted_entries: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Committed {
    /// The entries written by set ops, in op order.
    pub entries: Vec<Entry>,
    /// The keys delete ops actually removed.
    pub deleted_keys: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"session_id": "run-42", "label": "before migration"}))]
pub struct CreateBackup {
    /// 1 to 256 ASCII letters, digits, `_`, `-`, `:`.
    #[schema(min_length = 1, max_length = 256, pattern = r"^[A-Za-z0-9_:-]+$")]
    pub session_id: String,
    /// Free text for people, e.g. "before migration": at most 200 characters once trimmed,
    /// without NUL.
    #[serde(default)]
    #[schema(max_length = 200, pattern = r"^[^\u0000]*$")]
    pub label: String,
}

#[derive(Debug, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BackupsQuery {
    /// Only backups of this session; all of the tenant's when absent or empty.
    #[param(max_length = 256, pattern = r"^[A-Za-z0-9_:-]*$")]
    pub session_id: Option<String>,
    /// At most 200; the service default (50) when absent.
    #[param(maximum = 200)]
    pub page_size: Option<u32>,
    /// `next_page_token` of the previous page: the id (a UUID) the page before ended with.
    #[param(
        pattern = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})?$"
    )]
    pub page_token: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BackupList {
    /// Newest first.
    pub backups: Vec<MemoryBackup>,
    /// Pass as `page_token` for the next page; absent on the last page.
    pub next_page_token: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"backup_id": "0194c3a2-7c1e-7a4b-9f10-2b3c4d5e6f70", "target_session_id": "run-43"}))]
pub struct Restore {
    #[schema(format = Uuid)]
    pub backup_id: String,
    /// The session to restore into (created if absent); the backed-up session when absent.
    #[schema(min_length = 1, max_length = 256, pattern = r"^[A-Za-z0-9_:-]+$")]
    pub target_session_id: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Restored {
    pub session: Option<MemorySession>,
    pub restored_entries: u64,
}
