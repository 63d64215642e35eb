//! `sankalpa.v1.MemoryService`: checks the caller's permission, turns wire messages into
//! checked domain values (the `input` checks, each naming its field), calls the domain modules
//! and turns their results back into wire messages.

use sankalpa_kit::grpc::timestamp;
use std::collections::HashSet;
use std::sync::Arc;

use sankalpa_kit::auth::{self as kit_auth, Principal};
use sankalpa_kit::paging;
use sankalpa_proto::v1 as pb;
use sankalpa_proto::v1::memory_service_server::MemoryService;
use sankalpa_proto::v1::transact_op::Op as WireOp;
use tonic::{Request, Response, Status};

use crate::entries;
use crate::entry::{Entry, Scope};
use crate::error::{MemoryError, Result};
use crate::transactions::{self, Op, OpKind, Outcome};
use crate::{State, backups, input, sessions};

const READ: &str = "memory:read";
const WRITE: &str = "memory:write";
/// The longest `id_prefix` ListSessions takes: a session id's own bound.
const MAX_ID_PREFIX_BYTES: usize = 256;
/// The most saves a SaveMany takes: a batch of the save group commit.
const MAX_SAVES_PER_CALL: usize = entries::saves::LIMITS.max_batch;

pub struct MemoryApi {
    state: Arc<State>,
}

impl MemoryApi {
    pub(crate) fn new(state: Arc<State>) -> Self {
        Self { state }
    }
}

type Reply<T> = std::result::Result<Response<T>, Status>;

/// The user behind the call; empty for an API key, which is no user.
fn user_of(caller: &Principal) -> &str {
    if caller.kind == "user" {
        &caller.subject
    } else {
        ""
    }
}

/// The caller's tenant and the session named in `field`.
fn scope(caller: &Principal, field: &str, session_id: &str) -> Result<Scope> {
    Ok(Scope {
        tenant: caller.tenant()?,
        session: input::session_id(field, session_id)?,
    })
}

impl MemoryApi {
    /// A save's fields checked, each error naming its field after `prefix`.
    fn checked_save(
        &self,
        caller: &Principal,
        prefix: &str,
        message: pb::SaveRequest,
    ) -> Result<(Scope, entries::Save)> {
        let field = |name: &str| format!("{prefix}{name}");
        let scope = scope(caller, &field("session_id"), &message.session_id)?;
        let save = entries::Save {
            key: input::key(&field("key"), &message.key)?,
            value: input::value(
                &field("value_json"),
                message.value_json,
                self.state.max_value_bytes,
            )?,
            ttl_seconds: input::ttl(&field("ttl_seconds"), message.ttl_seconds)?,
            expected_version: message
                .expected_version
                .map(|version| input::version(&field("expected_version"), version))
                .transpose()?,
        };
        Ok((scope, save))
    }
}

/// Versions are positive in the database; the cast cannot lose anything.
fn unsigned(count: i64) -> u64 {
    u64::try_from(count).unwrap_or(0)
}

fn entry_message(entry: Entry) -> pb::Entry {
    pb::Entry {
        key: entry.key,
        value_json: entry.value,
        version: unsigned(entry.version),
        created_at: Some(timestamp(entry.created_at)),
        updated_at: Some(timestamp(entry.updated_at)),
        expires_at: entry.expires_at.map(timestamp),
    }
}

fn session_message(session: sessions::Session) -> pb::Session {
    pb::Session {
        id: session.id,
        tenant_id: session.tenant_id.to_string(),
        user_id: session.user_id,
        entry_count: unsigned(session.entry_count),
        created_at: Some(timestamp(session.created_at)),
        updated_at: Some(timestamp(session.updated_at)),
    }
}

fn backup_message(backup: backups::Backup) -> pb::MemoryBackup {
    pb::MemoryBackup {
        id: backup.id.to_string(),
        session_id: backup.session_id,
        label: backup.label,
        entry_count: unsigned(backup.entry_count),
        size_bytes: unsigned(backup.size_bytes),
        sha256: backup.sha256,
        created_by: backup.created_by,
        created_at: Some(timestamp(backup.created_at)),
    }
}

/// The ops of a transaction, checked: at most `MAX_OPS`, each complete, no key both set and
/// deleted or set twice, as the order of those would be ambiguous, and at most `max_bytes` of
/// keys and values in all.
fn transaction_ops(
    ops: Vec<pb::TransactOp>,
    max_value_bytes: usize,
    max_bytes: usize,
) -> Result<Vec<Op>> {
    if ops.is_empty() || ops.len() > input::MAX_OPS {
        return Err(MemoryError::invalid(
            "ops",
            format!("must hold 1 to {} ops, not {}", input::MAX_OPS, ops.len()),
        ));
    }
    let carried: usize = ops
        .iter()
        .map(|op| match &op.op {
            Some(WireOp::Set(set)) => op.key.len() + input::written_len(&set.value_json),
            _ => op.key.len(),
        })
        .fold(0, usize::saturating_add);
    if carried > max_bytes {
        return Err(MemoryError::invalid(
            "ops",
            format!(
                "must carry at most {max_bytes} bytes of keys and values in all, not {carried} \
                 (numbers count as written out in full)"
            ),
        ));
    }
    let mut written = HashSet::new();
    ops.into_iter()
        .enumerate()
        .map(|(index, op)| {
            let key = input::key(&format!("ops[{index}].key"), &op.key)?;
            let kind = match op.op {
                Some(WireOp::Set(set)) => OpKind::Set {
                    value: input::value(
                        &format!("ops[{index}].set.value_json"),
                        set.value_json,
                        max_value_bytes,
                    )?,
                    ttl_seconds: input::ttl(
                        &format!("ops[{index}].set.ttl_seconds"),
                        set.ttl_seconds,
                    )?,
                },
                Some(WireOp::Delete(_)) => OpKind::Delete,
                Some(WireOp::CheckVersion(check)) => OpKind::CheckVersion(input::version(
                    &format!("ops[{index}].check_version.version"),
                    check.version,
                )?),
                None => {
                    return Err(MemoryError::invalid(
                        format!("ops[{index}].op"),
                        "must be set, delete or check_version",
                    ));
                }
            };
            if !matches!(kind, OpKind::CheckVersion(_)) && !written.insert(key.clone()) {
                return Err(MemoryError::invalid(
                    format!("ops[{index}].key"),
                    "is already set or deleted by an earlier op",
                ));
            }
            Ok(Op { key, kind })
        })
        .collect()
}

#[tonic::async_trait]
impl MemoryService for MemoryApi {
    async fn save(&self, request: Request<pb::SaveRequest>) -> Reply<pb::Entry> {
        let caller = kit_auth::authorize(&request, WRITE)?.clone();
        let (scope, save) = self.checked_save(&caller, "", request.into_inner())?;
        let entry = entries::save(&self.state, &scope, user_of(&caller), save).await?;
        Ok(Response::new(entry_message(entry)))
    }

    /// Each save joins the group commit on its own, so the call's saves are written together
    /// (with any others waiting) and one that fails fails no other.
    async fn save_many(
        &self,
        request: Request<pb::SaveManyRequest>,
    ) -> Reply<pb::SaveManyResponse> {
        let caller = kit_auth::authorize(&request, WRITE)?.clone();
        let saves = request.into_inner().saves;
        if saves.is_empty() || saves.len() > MAX_SAVES_PER_CALL {
            return Err(MemoryError::invalid(
                "saves",
                format!(
                    "must hold 1 to {MAX_SAVES_PER_CALL} saves, not {}",
                    saves.len()
                ),
            )
            .into());
        }
        if let Some(index) = saves
            .iter()
            .position(|save| save.expected_version.is_some())
        {
            return Err(MemoryError::invalid(
                format!("saves[{index}].expected_version"),
                "SaveMany only overwrites; a compare-and-set is a Save of its own",
            )
            .into());
        }
        let user = user_of(&caller);
        let results = saves.into_iter().enumerate().map(|(index, message)| {
            let checked = self.checked_save(&caller, &format!("saves[{index}]."), message);
            async move {
                let (scope, save) = checked?;
                entries::save(&self.state, &scope, user, save).await
            }
        });
        let results = futures::future::join_all(results)
            .await
            .into_iter()
            .map(|saved| match saved {
                Ok(entry) => pb::SaveResult {
                    entry: Some(entry_message(entry)),
                    ..Default::default()
                },
                Err(err) => {
                    let status = Status::from(err);
                    pb::SaveResult {
                        entry: None,
                        code: status.code() as i32,
                        message: status.message().to_owned(),
                    }
                }
            })
            .collect();
        Ok(Response::new(pb::SaveManyResponse { results }))
    }

    async fn load(&self, request: Request<pb::LoadRequest>) -> Reply<pb::Entry> {
        let caller = kit_auth::authorize(&request, READ)?;
        let message = request.get_ref();
        let scope = scope(caller, "session_id", &message.session_id)?;
        let key = input::key("key", &message.key)?;
        let entry = entries::load(&self.state, &scope, &key).await?;
        Ok(Response::new(entry_message(entry)))
    }

    async fn get_all(&self, request: Request<pb::GetAllRequest>) -> Reply<pb::GetAllResponse> {
        let caller = kit_auth::authorize(&request, READ)?;
        let message = request.get_ref();
        let scope = scope(caller, "session_id", &message.session_id)?;
        let (size, token) = paging::requested(message.page.as_ref())?;
        let key_prefix = input::key_prefix("key_prefix", &message.key_prefix)?;
        let wanted = entries::Page {
            key_prefix: &key_prefix,
            size,
            max_bytes: self.state.max_page_bytes,
            token,
        };
        let (found, next) = entries::get_all(&self.state.pool, &scope, &wanted).await?;
        Ok(Response::new(pb::GetAllResponse {
            entries: found.into_iter().map(entry_message).collect(),
            page: paging::response(next),
        }))
    }

    async fn delete_key(
        &self,
        request: Request<pb::DeleteKeyRequest>,
    ) -> Reply<pb::DeleteKeyResponse> {
        let caller = kit_auth::authorize(&request, WRITE)?;
        let message = request.get_ref();
        let scope = scope(caller, "session_id", &message.session_id)?;
        let key = input::key("key", &message.key)?;
        let expected = message
            .expected_version
            .map(|version| input::version("expected_version", version))
            .transpose()?;
        let deleted = entries::delete(&self.state, &scope, &key, expected).await?;
        Ok(Response::new(pb::DeleteKeyResponse { deleted }))
    }

    async fn list_sessions(
        &self,
        request: Request<pb::ListSessionsRequest>,
    ) -> Reply<pb::ListSessionsResponse> {
        let caller = kit_auth::authorize(&request, READ)?;
        let tenant = caller.tenant()?;
        let message = request.get_ref();
        let (size, token) = paging::requested(message.page.as_ref())?;
        if message.id_prefix.len() > MAX_ID_PREFIX_BYTES {
            return Err(MemoryError::invalid(
                "id_prefix",
                format!("must be at most {MAX_ID_PREFIX_BYTES} bytes"),
            )
            .into());
        }
        let (found, next) =
            sessions::list(&self.state.pool, tenant, &message.id_prefix, size, token).await?;
        Ok(Response::new(pb::ListSessionsResponse {
            sessions: found.into_iter().map(session_message).collect(),
            page: paging::response(next),
        }))
    }

    async fn delete_session(
        &self,
        request: Request<pb::DeleteSessionRequest>,
    ) -> Reply<pb::DeleteSessionResponse> {
        let caller = kit_auth::authorize(&request, WRITE)?;
        let scope = scope(caller, "session_id", &request.get_ref().session_id)?;
        let deleted_entries = sessions::delete(&self.state, &scope).await?;
        Ok(Response::new(pb::DeleteSessionResponse { deleted_entries }))
    }

    async fn transact(&self, request: Request<pb::TransactRequest>) -> Reply<pb::TransactResponse> {
        let caller = kit_auth::authorize(&request, WRITE)?.clone();
        let message = request.into_inner();
        let scope = scope(&caller, "session_id", &message.session_id)?;
        let ops = transaction_ops(
            message.ops,
            self.state.max_value_bytes,
            self.state.max_transaction_bytes,
        )?;
        let outcome = transactions::transact(&self.state, &scope, user_of(&caller), &ops).await?;
        Ok(Response::new(match outcome {
            Outcome::Committed { written, deleted } => pb::TransactResponse {
                committed: true,
                entries: written.into_iter().map(entry_message).collect(),
                deleted_keys: deleted,
                conflict: None,
            },
            Outcome::Conflict {
                op_index,
                key,
                expected,
                current,
            } => pb::TransactResponse {
                committed: false,
                entries: Vec::new(),
                deleted_keys: Vec::new(),
                conflict: Some(pb::TransactConflict {
                    op_index: u32::try_from(op_index).expect("at most MAX_OPS ops"),
                    key,
                    expected_version: unsigned(expected),
                    current_version: unsigned(current),
                }),
            },
        }))
    }

    async fn backup(&self, request: Request<pb::BackupRequest>) -> Reply<pb::MemoryBackup> {
        let caller = kit_auth::authorize(&request, WRITE)?;
        let message = request.get_ref();
        let scope = scope(caller, "session_id", &message.session_id)?;
        let label = input::label(&message.label)?;
        let backup = backups::backup(&self.state, &scope, &label, &caller.subject).await?;
        Ok(Response::new(backup_message(backup)))
    }

    async fn list_backups(
        &self,
        request: Request<pb::ListBackupsRequest>,
    ) -> Reply<pb::ListBackupsResponse> {
        let caller = kit_auth::authorize(&request, READ)?;
        let tenant = caller.tenant()?;
        let message = request.get_ref();
        let session = if message.session_id.is_empty() {
            None
        } else {
            Some(input::session_id("session_id", &message.session_id)?)
        };
        let (size, token) = paging::requested(message.page.as_ref())?;
        let (found, next) =
            backups::list(&self.state.pool, tenant, session.as_deref(), size, token).await?;
        Ok(Response::new(pb::ListBackupsResponse {
            backups: found.into_iter().map(backup_message).collect(),
            page: paging::response(next),
        }))
    }

    async fn restore(&self, request: Request<pb::RestoreRequest>) -> Reply<pb::RestoreResponse> {
        let caller = kit_auth::authorize(&request, WRITE)?;
        let tenant = caller.tenant()?;
        let message = request.get_ref();
        let backup_id = input::uuid("backup_id", &message.backup_id)?;
        let target = message
            .target_session_id
            .as_deref()
            .map(|id| input::session_id("target_session_id", id))
            .transpose()?;
        let (session, restored) =
            backups::restore(&self.state, tenant, backup_id, target, user_of(caller)).await?;
        Ok(Response::new(pb::RestoreResponse {
            session: Some(session_message(session)),
            restored_entries: restored,
        }))
    }
}
