//! Memory: sessions of key -> JSON entries, transactions, backups and restore, in front of the
//! memory service (`/api/memory/...`, the spec's routes).
//!
//! Values are JSON in REST and JSON text on the wire. They pass through as the text the client
//! sent ([`RawValue`]): checked to be JSON once, never built into a tree and written out again,
//! so a large value costs a copy, and numbers keep every digit.
//!
//! The gateway checks memory:read / memory:write before calling, and memory checks again and
//! scopes everything to the caller's tenant (another tenant's session is 404). Memory names
//! invalid fields as its wire messages do (`value_json`, `ops[2].set.ttl_seconds`); they are
//! renamed here to this API's names (`value`, `ops[2].ttl_seconds`), so a 400 names what the
//! client sent. A version conflict is a 409 whose `current_version` is the key's version now.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use sankalpa_api::memory::{
    AllQuery, BackupList, BackupsQuery, Committed, CreateBackup, DeleteKeyQuery, DeletedKey,
    DeletedSession, Entry, EntryList, LoadEntry, MemoryBackup, MemorySession, Restore, Restored,
    SaveEntry, SessionList,
};
use sankalpa_kit::problem::Problem;
use sankalpa_proto::v1;
use sankalpa_proto::v1::transact_op::Op as WireOp;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::authn::Caller;
use crate::json::{Body, Page, Rest, next_page, page_request, timestamp};

const READ: &str = "memory:read";
const WRITE: &str = "memory:write";

pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(save))
        .routes(routes!(load))
        .routes(routes!(all))
        .routes(routes!(sessions))
        .routes(routes!(delete_session))
        .routes(routes!(delete_key))
        .routes(routes!(transaction))
        .routes(routes!(backup))
        .routes(routes!(backups))
        .routes(routes!(restore))
}

/// A problem from memory, its field names turned into this API's.
fn problem(status: tonic::Status) -> Problem {
    crate::json::renamed(status, rest_field)
}

/// `value_json` -> `value`, `ops[1].set.value_json` -> `ops[1].value`,
/// `ops[1].check_version.version` -> `ops[1].version`, `page.page_size` -> `page_size`.
fn rest_field(field: &str) -> String {
    let field = field.strip_prefix("page.").unwrap_or(field);
    field
        .replace(".set.", ".")
        .replace(".check_version.", ".")
        .replace("value_json", "value")
}

impl Rest for v1::Entry {
    type Shown = Result<Entry, Problem>;

    fn rest(self) -> Result<Entry, Problem> {
        // Memory checks every value is JSON before storing it; this failing is its bug.
        let value = RawValue::from_string(self.value_json).map_err(|err| {
            tracing::error!(error = %err, key = %self.key, "memory answered a value that is not JSON");
            Problem::new(
                StatusCode::BAD_GATEWAY,
                "the memory service answered a value that is not JSON",
            )
        })?;
        Ok(Entry {
            key: self.key,
            value,
            version: self.version,
            created_at: timestamp(self.created_at),
            updated_at: timestamp(self.updated_at),
            expires_at: timestamp(self.expires_at),
        })
    }
}

fn entries(found: Vec<v1::Entry>) -> Result<Vec<Entry>, Problem> {
    found.into_iter().map(Rest::rest).collect()
}

impl Rest for v1::Session {
    type Shown = MemorySession;

    fn rest(self) -> MemorySession {
        MemorySession {
            id: self.id,
            tenant_id: self.tenant_id,
            user_id: Some(self.user_id).filter(|id| !id.is_empty()),
            entry_count: self.entry_count,
            created_at: timestamp(self.created_at),
            updated_at: timestamp(self.updated_at),
        }
    }
}

impl Rest for v1::MemoryBackup {
    type Shown = MemoryBackup;

    fn rest(self) -> MemoryBackup {
        MemoryBackup {
            id: self.id,
            session_id: self.session_id,
            label: self.label,
            entry_count: self.entry_count,
            size_bytes: self.size_bytes,
            sha256: self.sha256,
            created_by: self.created_by,
            created_at: timestamp(self.created_at),
        }
    }
}

/// The paging of the session list, as the document states it (read as [`Page`]).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SessionsPage {
    /// At most 200; the service default (50) when absent or 0.
    #[param(maximum = 200)]
    pub page_size: Option<u32>,
    /// `next_page_token` of the previous page: `<microseconds>.<session id>`.
    #[param(pattern = r"^([+-]?[0-9]{1,16}\.[A-Za-z0-9_:-]{0,256})?$")]
    pub page_token: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"session_id": "run-42", "ops": [{"op": "check_version", "key": "plan", "version": 1}, {"op": "set", "key": "status", "value": "planned", "ttl_seconds": 3600}, {"op": "delete", "key": "draft"}]}))]
pub struct Transaction {
    /// 1 to 256 ASCII letters, digits, `_`, `-`, `:`.
    #[schema(min_length = 1, max_length = 256, pattern = r"^[A-Za-z0-9_:-]+$")]
    pub session_id: String,
    /// 1 to 1,000 ops, applied in order, all or none. A key may be set or deleted by one op at
    /// most; checks see the session as it was before the transaction. The keys and values of
    /// all ops together are at most 2 MiB (`SANKALPA_MEMORY_MAX_TRANSACTION_BYTES`), numbers
    /// counted as written out in full.
    #[schema(min_items = 1, max_items = 1000, value_type = Vec<TransactionOp>)]
    pub ops: Vec<RequestedOp>,
}

// The schema only: requests are read as `RequestedOp`, because serde cannot read a tagged enum
// holding a `RawValue` (it buffers the members first).
/// One op of a transaction; which members it takes depends on `op`.
#[derive(ToSchema)]
#[serde(untagged)]
#[schema(discriminator(property_name = "op", mapping(
    ("set" = "#/components/schemas/SetOp"),
    ("delete" = "#/components/schemas/DeleteOp"),
    ("check_version" = "#/components/schemas/CheckVersionOp"),
)))]
pub enum TransactionOp {
    Set(SetOp),
    Delete(DeleteOp),
    CheckVersion(CheckVersionOp),
}

/// Writes `value` at `key`: a new key at version 1, an existing one at its version + 1.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetOp {
    #[schema(inline)]
    pub op: SetKind,
    /// 1 to 256 bytes (not characters) of UTF-8, without NUL.
    #[schema(min_length = 1, max_length = 256, pattern = r"^[^\u0000]+$")]
    pub key: String,
    /// Any JSON value, `null` included, as in save: at most the value limit
    /// (`SANKALPA_MEMORY_MAX_VALUE_BYTES`), without the character `\u0000`.
    #[schema(value_type = serde_json::Value)]
    pub value: Box<RawValue>,
    /// As in save: the entry expires this many seconds after the commit; never when absent or 0.
    #[schema(maximum = 315360000)]
    pub ttl_seconds: Option<u64>,
}

/// Removes `key`; a key that is absent is not an error (`deleted_keys` leaves it out).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteOp {
    #[schema(inline)]
    pub op: DeleteKind,
    /// 1 to 256 bytes (not characters) of UTF-8, without NUL.
    #[schema(min_length = 1, max_length = 256, pattern = r"^[^\u0000]+$")]
    pub key: String,
}

/// Requires `key` to be at `version` when the transaction starts; otherwise nothing is applied
/// (409).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckVersionOp {
    #[schema(inline)]
    pub op: CheckVersionKind,
    /// 1 to 256 bytes (not characters) of UTF-8, without NUL.
    #[schema(min_length = 1, max_length = 256, pattern = r"^[^\u0000]+$")]
    pub key: String,
    /// The version the key must have (0: it must be absent).
    #[schema(maximum = 9223372036854775807_u64)]
    pub version: u64,
}

#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SetKind {
    Set,
}

#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeleteKind {
    Delete,
}

#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckVersionKind {
    CheckVersion,
}

/// An op as read from the request: the members of every kind, each checked against the kind
/// in [`RequestedOp::into_wire`] so that a 400 names the member (`ops[2].value`). Unknown
/// members are refused, as the schema of each kind says.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestedOp {
    op: OpKind,
    key: String,
    #[serde(default, deserialize_with = "present")]
    value: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "sankalpa_api::json::whole")]
    ttl_seconds: Option<u64>,
    #[serde(default, deserialize_with = "sankalpa_api::json::whole")]
    version: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum OpKind {
    Set,
    Delete,
    CheckVersion,
}

/// A value that is present is `Some`, even JSON `null`, which serde's `Option` would take for
/// absent: `null` is a value one may set.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(deserializer).map(Some)
}

impl RequestedOp {
    /// The wire op, refusing members that do not belong to its kind: a stray `value` on a
    /// check would otherwise be silently ignored.
    fn into_wire(self, index: usize) -> Result<v1::TransactOp, Problem> {
        let field = |name: &str| format!("ops[{index}].{name}");
        if self.op != OpKind::Set && self.value.is_some() {
            return Err(Problem::invalid(
                field("value"),
                "only a set op takes a value",
            ));
        }
        if self.op != OpKind::Set && self.ttl_seconds.is_some() {
            return Err(Problem::invalid(
                field("ttl_seconds"),
                "only a set op takes ttl_seconds",
            ));
        }
        if self.op != OpKind::CheckVersion && self.version.is_some() {
            return Err(Problem::invalid(
                field("version"),
                "only a check_version op takes a version",
            ));
        }
        let op = match self.op {
            OpKind::Set => WireOp::Set(v1::SetOp {
                value_json: self
                    .value
                    .ok_or_else(|| Problem::invalid(field("value"), "a set op needs a value"))?
                    .get()
                    .to_owned(),
                ttl_seconds: self.ttl_seconds.unwrap_or(0),
            }),
            OpKind::Delete => WireOp::Delete(v1::DeleteOp {}),
            OpKind::CheckVersion => WireOp::CheckVersion(v1::CheckVersionOp {
                version: self.version.ok_or_else(|| {
                    Problem::invalid(field("version"), "a check_version op needs a version")
                })?,
            }),
        };
        Ok(v1::TransactOp {
            key: self.key,
            op: Some(op),
        })
    }
}

/// Writes one entry, creating the session on its first write.
#[utoipa::path(
    post,
    path = "/api/memory/save",
    tag = "memory",
    request_body = SaveEntry,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The entry as written, with its new version", body = Entry),
        (status = 400, description = "Invalid input (a limit, a value that is not JSON), naming the field", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing memory:write", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "expected_version is not the key's version; `current_version` is", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn save(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(body): Body<SaveEntry>,
) -> Result<axum::Json<Entry>, Problem> {
    caller.require(WRITE)?;
    let request = v1::SaveRequest {
        session_id: body.session_id,
        key: body.key,
        value_json: String::from(Box::<str>::from(body.value)),
        expected_version: body.expected_version,
        ttl_seconds: body.ttl_seconds.unwrap_or(0),
    };
    let entry = state
        .memory()
        .save(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?;
    Ok(axum::Json(entry.into_inner().rest()?))
}

/// One entry.
#[utoipa::path(
    post,
    path = "/api/memory/load",
    tag = "memory",
    request_body = LoadEntry,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The entry", body = Entry),
        (status = 403, description = "Missing memory:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such session in the caller's tenant, or no such key", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn load(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(body): Body<LoadEntry>,
) -> Result<axum::Json<Entry>, Problem> {
    caller.require(READ)?;
    let request = v1::LoadRequest {
        session_id: body.session_id,
        key: body.key,
    };
    let entry = state
        .memory()
        .load(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?;
    Ok(axum::Json(entry.into_inner().rest()?))
}

/// Every entry of a session, by key order, paged.
#[utoipa::path(
    get,
    path = "/api/memory/all",
    tag = "memory",
    params(AllQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "One page of entries", body = EntryList),
        (status = 403, description = "Missing memory:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such session in the caller's tenant", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn all(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(query): Query<AllQuery>,
) -> Result<axum::Json<EntryList>, Problem> {
    caller.require(READ)?;
    let request = v1::GetAllRequest {
        session_id: query.session_id,
        key_prefix: query.key_prefix.unwrap_or_default(),
        page: Some(page_request(Page {
            page_size: query.page_size,
            page_token: query.page_token,
        })),
    };
    let response = state
        .memory()
        .get_all(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?
        .into_inner();
    Ok(axum::Json(EntryList {
        entries: entries(response.entries)?,
        next_page_token: next_page(response.page),
    }))
}

/// The sessions of the caller's tenant, newest first.
#[utoipa::path(
    get,
    path = "/api/memory/sessions",
    tag = "memory",
    params(SessionsPage),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "One page of sessions", body = SessionList),
        (status = 403, description = "Missing memory:read", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn sessions(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(page): Query<Page>,
) -> Result<axum::Json<SessionList>, Problem> {
    caller.require(READ)?;
    let request = v1::ListSessionsRequest {
        page: Some(page_request(page)),
        ..Default::default()
    };
    let response = state
        .memory()
        .list_sessions(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?
        .into_inner();
    Ok(axum::Json(SessionList {
        sessions: response.sessions.into_iter().map(Rest::rest).collect(),
        next_page_token: next_page(response.page),
    }))
}

/// Deletes one entry. A key with `/` or other reserved characters is percent-encoded.
#[utoipa::path(
    delete,
    path = "/api/memory/sessions/{session_id}/keys/{key}",
    tag = "memory",
    params(
        ("session_id" = String, Path, description = "The session id: 1 to 256 ASCII letters, digits, `_`, `-`, `:`", pattern = r"^[A-Za-z0-9_:-]{1,256}$"),
        ("key" = String, Path, description = "The key, percent-encoded"),
        DeleteKeyQuery,
    ),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Whether a key was deleted", body = DeletedKey),
        (status = 403, description = "Missing memory:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such session in the caller's tenant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "expected_version is not the key's version; `current_version` is", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn delete_key(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((session_id, key)): Path<(String, String)>,
    Query(query): Query<DeleteKeyQuery>,
) -> Result<axum::Json<DeletedKey>, Problem> {
    caller.require(WRITE)?;
    let request = v1::DeleteKeyRequest {
        session_id,
        key,
        expected_version: query.expected_version,
    };
    let response = state
        .memory()
        .delete_key(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?
        .into_inner();
    Ok(axum::Json(DeletedKey {
        deleted: response.deleted,
    }))
}

/// Deletes a session and all its entries; its backups are kept.
#[utoipa::path(
    delete,
    path = "/api/memory/sessions/{session_id}",
    tag = "memory",
    params(("session_id" = String, Path, description = "The session id: 1 to 256 ASCII letters, digits, `_`, `-`, `:`", pattern = r"^[A-Za-z0-9_:-]{1,256}$")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "How many entries went with it", body = DeletedSession),
        (status = 403, description = "Missing memory:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such session in the caller's tenant", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn delete_session(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(session_id): Path<String>,
) -> Result<axum::Json<DeletedSession>, Problem> {
    caller.require(WRITE)?;
    let request = v1::DeleteSessionRequest { session_id };
    let response = state
        .memory()
        .delete_session(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?
        .into_inner();
    Ok(axum::Json(DeletedSession {
        deleted_entries: response.deleted_entries,
    }))
}

/// Applies set / delete / check_version ops to one session atomically.
#[utoipa::path(
    post,
    path = "/api/memory/transaction",
    tag = "memory",
    request_body = Transaction,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Every op applied", body = Committed),
        (status = 400, description = "Invalid input, naming the op's field", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing memory:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No set op, and no such session in the caller's tenant: only a set creates a session", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A check failed: nothing applied; the detail names the op and key, `current_version` is the key's version", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn transaction(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(body): Body<Transaction>,
) -> Result<axum::Json<Committed>, Problem> {
    caller.require(WRITE)?;
    let ops = body
        .ops
        .into_iter()
        .enumerate()
        .map(|(index, op)| op.into_wire(index))
        .collect::<Result<_, _>>()?;
    let request = v1::TransactRequest {
        session_id: body.session_id,
        ops,
    };
    let response = state
        .memory()
        .transact(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?
        .into_inner();
    if !response.committed {
        return Err(conflict(response.conflict));
    }
    Ok(axum::Json(Committed {
        entries: entries(response.entries)?,
        deleted_keys: response.deleted_keys,
    }))
}

/// The 409 of a transaction whose check failed (memory answers it as a result, not an error).
fn conflict(conflict: Option<v1::TransactConflict>) -> Problem {
    let Some(conflict) = conflict else {
        return Problem::new(
            StatusCode::CONFLICT,
            "a check of the transaction failed; nothing was applied",
        );
    };
    let mut problem = Problem::new(
        StatusCode::CONFLICT,
        format!(
            "ops[{}]: key {:?} is at version {}, not {}; nothing was applied",
            conflict.op_index, conflict.key, conflict.current_version, conflict.expected_version
        ),
    );
    problem.current_version = Some(conflict.current_version);
    problem
}

/// Snapshots a session into the object store.
#[utoipa::path(
    post,
    path = "/api/memory/backup",
    tag = "memory",
    request_body = CreateBackup,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "The backup", body = MemoryBackup),
        (status = 403, description = "Missing memory:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such session in the caller's tenant", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn backup(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(body): Body<CreateBackup>,
) -> Result<(StatusCode, axum::Json<MemoryBackup>), Problem> {
    caller.require(WRITE)?;
    let request = v1::BackupRequest {
        session_id: body.session_id,
        label: body.label,
    };
    let made = state
        .memory()
        .backup(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?;
    Ok((StatusCode::CREATED, axum::Json(made.into_inner().rest())))
}

/// The tenant's backups, newest first.
#[utoipa::path(
    get,
    path = "/api/memory/backups",
    tag = "memory",
    params(BackupsQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "One page of backups", body = BackupList),
        (status = 403, description = "Missing memory:read", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn backups(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(query): Query<BackupsQuery>,
) -> Result<axum::Json<BackupList>, Problem> {
    caller.require(READ)?;
    let request = v1::ListBackupsRequest {
        session_id: query.session_id.unwrap_or_default(),
        page: Some(page_request(Page {
            page_size: query.page_size,
            page_token: query.page_token,
        })),
    };
    let response = state
        .memory()
        .list_backups(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?
        .into_inner();
    Ok(axum::Json(BackupList {
        backups: response.backups.into_iter().map(Rest::rest).collect(),
        next_page_token: next_page(response.page),
    }))
}

/// Replaces a session's entries with a backup's, in the backed-up session or another.
#[utoipa::path(
    post,
    path = "/api/memory/restore",
    tag = "memory",
    request_body = Restore,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The restored session", body = Restored),
        (status = 403, description = "Missing memory:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such backup in the caller's tenant", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The backup is damaged or missing (type .../data-loss); nothing was restored", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn restore(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(body): Body<Restore>,
) -> Result<axum::Json<Restored>, Problem> {
    caller.require(WRITE)?;
    let request = v1::RestoreRequest {
        backup_id: body.backup_id,
        target_session_id: body.target_session_id,
    };
    let response = state
        .memory()
        .restore(state.request_as(&caller, request)?)
        .await
        .map_err(problem)?
        .into_inner();
    Ok(axum::Json(Restored {
        session: response.session.map(Rest::rest),
        restored_entries: response.restored_entries,
    }))
}

#[cfg(test)]
mod tests {
    use super::rest_field;

    #[test]
    fn memorys_field_names_become_the_rest_apis() {
        assert_eq!(rest_field("value_json"), "value");
        assert_eq!(rest_field("ops[3].set.value_json"), "ops[3].value");
        assert_eq!(rest_field("ops[3].set.ttl_seconds"), "ops[3].ttl_seconds");
        assert_eq!(rest_field("ops[0].check_version.version"), "ops[0].version");
        assert_eq!(rest_field("page.page_size"), "page_size");
        assert_eq!(rest_field("session_id"), "session_id");
    }
}
