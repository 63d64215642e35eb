use sankalpa_proto::v1 as pb;
use sankalpa_proto::v1::transact_op::Op;
use tonic::Code;

use crate::{Caller, TestMemory, authed, start};

#[sqlx::test(migrations = false)]
async fn another_tenants_session_and_backups_are_not_found(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let eve = app.sign_up().await;
    assert_ne!(ada.tenant_id, eve.tenant_id);
    app.save(&ada, "shared-name", "secret", r#""ada's""#)
        .await
        .unwrap();
    let backup = app
        .client
        .backup(authed(
            pb::BackupRequest {
                session_id: "shared-name".into(),
                label: String::new(),
            },
            &ada.token,
        ))
        .await
        .unwrap()
        .into_inner();

    assert_eq!(
        app.load(&eve, "shared-name", "secret")
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    assert_eq!(
        app.contents(&eve, "shared-name").await.unwrap_err().code(),
        Code::NotFound
    );
    let delete = app
        .client
        .delete_session(authed(
            pb::DeleteSessionRequest {
                session_id: "shared-name".into(),
            },
            &eve.token,
        ))
        .await
        .unwrap_err();
    assert_eq!(delete.code(), Code::NotFound);
    let restore = app
        .client
        .restore(authed(
            pb::RestoreRequest {
                backup_id: backup.id.clone(),
                target_session_id: Some("mine".into()),
            },
            &eve.token,
        ))
        .await
        .unwrap_err();
    assert_eq!(restore.code(), Code::NotFound);
    let backups = app
        .client
        .list_backups(authed(
            pb::ListBackupsRequest {
                session_id: String::new(),
                page: None,
            },
            &eve.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .backups;
    assert!(backups.is_empty());
    let sessions = app
        .client
        .list_sessions(authed(pb::ListSessionsRequest::default(), &eve.token))
        .await
        .unwrap()
        .into_inner()
        .sessions;
    assert!(sessions.is_empty());

    // The same session name in eve's tenant is eve's own, and leaves ada's alone.
    app.save(&eve, "shared-name", "secret", r#""eve's""#)
        .await
        .unwrap();
    assert_eq!(
        app.load(&ada, "shared-name", "secret")
            .await
            .unwrap()
            .value_json,
        r#""ada's""#
    );
}

#[sqlx::test(migrations = false)]
async fn a_call_without_a_token_or_permission_is_refused(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let anonymous = app
        .client
        .load(pb::LoadRequest {
            session_id: "s1".into(),
            key: "k".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);

    let admin = app.sign_up().await;
    let key = app
        .auth
        .create_api_key(authed(
            pb::CreateApiKeyRequest {
                name: "reader".into(),
                permissions: vec!["memory:read".into()],
                expires_in_seconds: 0,
                purpose: pb::ApiKeyPurpose::Tool.into(),
            },
            &admin.token,
        ))
        .await
        .unwrap()
        .into_inner();
    let reader = app
        .auth
        .exchange_api_key(pb::ExchangeApiKeyRequest {
            api_key: key.secret,
        })
        .await
        .unwrap()
        .into_inner();
    let reader = crate::Caller {
        token: reader.access_token,
        tenant_id: admin.tenant_id.clone(),
    };
    let denied = app.save(&reader, "s1", "k", "1").await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    app.save(&admin, "s1", "k", "1").await.unwrap();
    assert_eq!(app.load(&reader, "s1", "k").await.unwrap().version, 1);
}

fn delete_op(key: &str) -> pb::TransactOp {
    pb::TransactOp {
        key: key.into(),
        op: Some(Op::Delete(pb::DeleteOp {})),
    }
}

fn check_op(key: &str, version: u64) -> pb::TransactOp {
    pb::TransactOp {
        key: key.into(),
        op: Some(Op::CheckVersion(pb::CheckVersionOp { version })),
    }
}

fn set_op(key: &str, value: &str) -> pb::TransactOp {
    pb::TransactOp {
        key: key.into(),
        op: Some(Op::Set(pb::SetOp {
            value_json: value.into(),
            ttl_seconds: 0,
        })),
    }
}

fn transact(
    session: &str,
    ops: Vec<pb::TransactOp>,
    caller: &Caller,
) -> tonic::Request<pb::TransactRequest> {
    authed(
        pb::TransactRequest {
            session_id: session.into(),
            ops,
        },
        &caller.token,
    )
}

fn restore(
    backup_id: &str,
    target: Option<&str>,
    caller: &Caller,
) -> tonic::Request<pb::RestoreRequest> {
    authed(
        pb::RestoreRequest {
            backup_id: backup_id.into(),
            target_session_id: target.map(str::to_owned),
        },
        &caller.token,
    )
}

async fn backup(
    app: &mut TestMemory,
    caller: &Caller,
    session: &str,
) -> Result<pb::MemoryBackup, tonic::Status> {
    app.client
        .backup(authed(
            pb::BackupRequest {
                session_id: session.into(),
                label: String::new(),
            },
            &caller.token,
        ))
        .await
        .map(tonic::Response::into_inner)
}

fn assert_not_found<T: std::fmt::Debug>(answer: Result<T, tonic::Status>, what: &str) {
    match answer {
        Ok(done) => panic!("{what} answered {done:?}"),
        Err(status) => assert_eq!(status.code(), Code::NotFound, "{what}: {status:?}"),
    }
}

/// What `caller` has: every session's entries as (key, version, value), and every backup id.
async fn everything(
    app: &mut TestMemory,
    caller: &Caller,
) -> (Vec<(String, Vec<(String, u64, String)>)>, Vec<String>) {
    let sessions = app
        .client
        .list_sessions(authed(pb::ListSessionsRequest::default(), &caller.token))
        .await
        .unwrap()
        .into_inner()
        .sessions;
    let mut contents = Vec::new();
    for session in sessions {
        let entries = app
            .pages(caller, &session.id, 200)
            .await
            .unwrap()
            .into_iter()
            .flat_map(|page| page.entries)
            .map(|entry| (entry.key, entry.version, entry.value_json))
            .collect();
        contents.push((session.id, entries));
    }
    let backups = app
        .client
        .list_backups(authed(
            pb::ListBackupsRequest {
                session_id: String::new(),
                page: None,
            },
            &caller.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .backups
        .into_iter()
        .map(|backup| backup.id)
        .collect();
    (contents, backups)
}

#[sqlx::test(migrations = false)]
async fn every_write_to_another_tenants_session_or_backup_is_not_found_and_changes_nothing(
    pool: sqlx::PgPool,
) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let eve = app.sign_up().await;
    app.save(&ada, "shared", "a", r#""ada's a""#).await.unwrap();
    app.save(&ada, "shared", "b", r#""ada's b""#).await.unwrap();
    let adas_backup = backup(&mut app, &ada, "shared").await.unwrap();
    app.save(&eve, "mine", "k", r#""eve's""#).await.unwrap();
    let adas_before = everything(&mut app, &ada).await;
    let eves_before = everything(&mut app, &eve).await;

    let delete_key = app
        .client
        .delete_key(authed(
            pb::DeleteKeyRequest {
                session_id: "shared".into(),
                key: "a".into(),
                expected_version: None,
            },
            &eve.token,
        ))
        .await;
    assert_not_found(delete_key, "delete key");
    let delete_checked = app
        .client
        .delete_key(authed(
            pb::DeleteKeyRequest {
                session_id: "shared".into(),
                key: "a".into(),
                expected_version: Some(1),
            },
            &eve.token,
        ))
        .await;
    assert_not_found(delete_checked, "delete key at a version");
    let delete_session = app
        .client
        .delete_session(authed(
            pb::DeleteSessionRequest {
                session_id: "shared".into(),
            },
            &eve.token,
        ))
        .await;
    assert_not_found(delete_session, "delete session");
    for ops in [vec![delete_op("a")], vec![check_op("a", 1), delete_op("b")]] {
        let transaction = app.client.transact(transact("shared", ops, &eve)).await;
        assert_not_found(transaction, "a transaction");
    }
    let backed_up = backup(&mut app, &eve, "shared").await;
    assert_not_found(backed_up, "backup");
    for target in [None, Some("mine"), Some("fresh")] {
        let restored = app
            .client
            .restore(restore(&adas_backup.id, target, &eve))
            .await;
        assert_not_found(
            restored,
            &format!("restore of another tenant's backup into {target:?}"),
        );
    }

    assert_eq!(everything(&mut app, &ada).await, adas_before);
    assert_eq!(everything(&mut app, &eve).await, eves_before);
}

#[sqlx::test(migrations = false)]
async fn writes_that_create_a_session_make_the_callers_own_beside_another_tenants(
    pool: sqlx::PgPool,
) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let eve = app.sign_up().await;
    app.save(&ada, "shared", "a", r#""ada's a""#).await.unwrap();
    let adas_before = everything(&mut app, &ada).await;

    // A save at a version is a conflict with what eve's tenant holds there: nothing.
    let at_adas_version = app
        .client
        .save(authed(
            pb::SaveRequest {
                session_id: "shared".into(),
                key: "a".into(),
                value_json: r#""eve's a""#.into(),
                expected_version: Some(1),
                ttl_seconds: 0,
            },
            &eve.token,
        ))
        .await
        .unwrap_err();
    assert_eq!(at_adas_version.code(), Code::Aborted);
    assert_eq!(crate::current_version(&at_adas_version), 0);

    app.save(&eve, "shared", "a", r#""eve's a""#).await.unwrap();
    let done = app
        .client
        .transact(transact(
            "shared",
            vec![check_op("a", 1), set_op("b", r#""eve's b""#)],
            &eve,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(done.committed);
    // Eve's backup of her "shared", restored over it and into a name ada also uses.
    app.save(&ada, "ada-only", "x", "1").await.unwrap();
    let eves_backup = backup(&mut app, &eve, "shared").await.unwrap();
    for target in [None, Some("ada-only")] {
        app.client
            .restore(restore(&eves_backup.id, target, &eve))
            .await
            .unwrap();
    }
    let delete = app
        .client
        .delete_session(authed(
            pb::DeleteSessionRequest {
                session_id: "ada-only".into(),
            },
            &eve.token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(delete.deleted_entries, 2);

    let eves = app.contents(&eve, "shared").await.unwrap();
    assert_eq!(
        eves,
        [
            ("a".to_owned(), serde_json::json!("eve's a")),
            ("b".to_owned(), serde_json::json!("eve's b"))
        ]
    );
    let (adas_sessions, adas_backups) = everything(&mut app, &ada).await;
    assert_eq!(adas_backups, adas_before.1);
    assert_eq!(
        adas_sessions
            .iter()
            .find(|(id, _)| id == "shared")
            .map(|(_, entries)| entries.clone()),
        Some(adas_before.0[0].1.clone())
    );
    assert!(adas_sessions.iter().any(|(id, _)| id == "ada-only"));
}
