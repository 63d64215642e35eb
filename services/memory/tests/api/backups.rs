use sankalpa_proto::v1 as pb;
use sankalpa_proto::v1::memory_service_client::MemoryServiceClient;
use serde_json::json;
use tonic::Code;

use crate::{Caller, TestMemory, authed, start, start_with};

async fn backup(app: &mut TestMemory, caller: &Caller, session: &str) -> pb::MemoryBackup {
    app.client
        .backup(authed(
            pb::BackupRequest {
                session_id: session.into(),
                label: "before the change".into(),
            },
            &caller.token,
        ))
        .await
        .unwrap()
        .into_inner()
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

#[sqlx::test(migrations = false)]
async fn backup_then_change_then_restore_gives_back_exactly_the_backed_up_state(
    pool: sqlx::PgPool,
) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    app.save(&ada, "s1", "plan", r#"{"steps":["a","b"],"done":false}"#)
        .await
        .unwrap();
    app.save(&ada, "s1", "notes", r#""first""#).await.unwrap();
    app.save(&ada, "s1", "count", "3").await.unwrap();
    let before = app.contents(&ada, "s1").await.unwrap();
    let made = backup(&mut app, &ada, "s1").await;
    assert_eq!(made.entry_count, 3);
    assert_eq!(made.sha256.len(), 64);

    // Loaded, so the cache holds the values that are about to change.
    app.load(&ada, "s1", "notes").await.unwrap();
    app.save(&ada, "s1", "notes", r#""changed""#).await.unwrap();
    app.save(&ada, "s1", "extra", "1").await.unwrap();
    app.client
        .delete_key(authed(
            pb::DeleteKeyRequest {
                session_id: "s1".into(),
                key: "count".into(),
                expected_version: None,
            },
            &ada.token,
        ))
        .await
        .unwrap();
    app.load(&ada, "s1", "extra").await.unwrap();
    assert_ne!(app.contents(&ada, "s1").await.unwrap(), before);

    let restored = app
        .client
        .restore(restore(&made.id, None, &ada))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(restored.restored_entries, 3);
    assert_eq!(restored.session.unwrap().entry_count, 3);
    assert_eq!(app.contents(&ada, "s1").await.unwrap(), before);
    // Single loads agree: the cache did not keep what the restore replaced.
    assert_eq!(
        app.load(&ada, "s1", "notes").await.unwrap().value_json,
        r#""first""#
    );
    assert_eq!(
        app.load(&ada, "s1", "extra").await.unwrap_err().code(),
        Code::NotFound
    );
    // A restore is a write: "notes" was at 2, so it is now at 3.
    assert_eq!(app.load(&ada, "s1", "notes").await.unwrap().version, 3);

    let listed = app
        .client
        .list_backups(authed(
            pb::ListBackupsRequest {
                session_id: "s1".into(),
                page: None,
            },
            &ada.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .backups;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, made.id);
}

#[sqlx::test(migrations = false)]
async fn a_backup_restores_into_a_new_session_and_outlives_its_own(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    app.save(&ada, "s1", "k", r#"{"v":1}"#).await.unwrap();
    let made = backup(&mut app, &ada, "s1").await;
    app.client
        .delete_session(authed(
            pb::DeleteSessionRequest {
                session_id: "s1".into(),
            },
            &ada.token,
        ))
        .await
        .unwrap();

    let restored = app
        .client
        .restore(restore(&made.id, Some("copy"), &ada))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(restored.session.unwrap().id, "copy");
    assert_eq!(
        app.contents(&ada, "copy").await.unwrap(),
        [("k".to_owned(), json!({"v": 1}))]
    );
    assert_eq!(
        app.contents(&ada, "s1").await.unwrap_err().code(),
        Code::NotFound
    );
}

#[sqlx::test(migrations = false)]
async fn restore_of_a_corrupted_backup_is_refused_and_changes_nothing(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    app.save(&ada, "s1", "k", r#"{"v":"one"}"#).await.unwrap();
    let made = backup(&mut app, &ada, "s1").await;
    app.save(&ada, "s1", "k", r#"{"v":"two"}"#).await.unwrap();
    let current = app.contents(&ada, "s1").await.unwrap();

    let document = app
        .objects
        .join("memory")
        .join(&ada.tenant_id)
        .join("backups")
        .join(format!("{}.json", made.id));
    let stored = std::fs::read_to_string(&document).expect("the backup is a file");
    // Same length, one value changed: only the checksum can tell.
    std::fs::write(&document, stored.replace(r#""one""#, r#""six""#)).unwrap();

    let refused = app
        .client
        .restore(restore(&made.id, None, &ada))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::DataLoss);
    assert_eq!(app.contents(&ada, "s1").await.unwrap(), current);

    std::fs::remove_file(&document).unwrap();
    let missing = app
        .client
        .restore(restore(&made.id, None, &ada))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::DataLoss);
}

/// The backups of `session` the caller's tenant has.
async fn backups_of(app: &mut TestMemory, caller: &Caller, session: &str) -> usize {
    app.client
        .list_backups(authed(
            pb::ListBackupsRequest {
                session_id: session.into(),
                page: None,
            },
            &caller.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .backups
        .len()
}

#[sqlx::test(migrations = false)]
async fn a_session_over_the_backup_bound_is_refused_naming_the_sizes(pool: sqlx::PgPool) {
    let mut app = start_with(pool, |config| config.max_backup_bytes = 10_000).await;
    let ada = app.sign_up().await;
    let value = format!("\"{}\"", "v".repeat(3998));
    for key in ["a", "b", "c"] {
        app.save(&ada, "s1", key, &value).await.unwrap();
    }
    app.save(&ada, "s1", r#"odd "key" é"#, r#"{"nested": [1, "two"]}"#)
        .await
        .unwrap();

    let refused = app
        .client
        .backup(authed(
            pb::BackupRequest {
                session_id: "s1".into(),
                label: String::new(),
            },
            &ada.token,
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("10000 bytes"), "{refused:?}");
    assert!(refused.message().contains("4 entries"), "{refused:?}");
    assert_eq!(backups_of(&mut app, &ada, "s1").await, 0);
    let stored = app
        .objects
        .join("memory")
        .join(&ada.tenant_id)
        .join("backups");
    assert!(
        std::fs::read_dir(&stored).map_or(true, |mut files| files.next().is_none()),
        "no document was stored"
    );

    // Under the bound, the same session backs up and restores exactly.
    app.client
        .delete_key(authed(
            pb::DeleteKeyRequest {
                session_id: "s1".into(),
                key: "c".into(),
                expected_version: None,
            },
            &ada.token,
        ))
        .await
        .unwrap();
    let made = backup(&mut app, &ada, "s1").await;
    assert!(made.size_bytes <= 10_000);
    app.client
        .restore(restore(&made.id, Some("copy"), &ada))
        .await
        .unwrap();
    assert_eq!(
        app.contents(&ada, "copy").await.unwrap(),
        app.contents(&ada, "s1").await.unwrap()
    );
}

#[sqlx::test(migrations = false)]
async fn a_stored_backup_over_the_bound_is_not_restored_and_changes_nothing(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let objects = app.objects.to_string_lossy().into_owned();
    // A replica sharing the store, with a smaller bound than the backup was made under.
    let strict = sankalpa_testkit::spawn_memory(
        app.pool.clone(),
        app.infra.clone(),
        &app.auth_url(),
        |config| {
            config.object_store_url = objects;
            config.max_backup_bytes = 5_000;
        },
    )
    .await
    .expect("the second replica starts");
    let mut strict_client = MemoryServiceClient::connect(strict.grpc_url())
        .await
        .unwrap();
    let ada = app.sign_up().await;
    let value = format!("\"{}\"", "v".repeat(3998));
    for key in ["a", "b"] {
        app.save(&ada, "s1", key, &value).await.unwrap();
    }
    let made = backup(&mut app, &ada, "s1").await;
    app.save(&ada, "s1", "a", "1").await.unwrap();
    let current = app.contents(&ada, "s1").await.unwrap();

    let refused = strict_client
        .restore(restore(&made.id, None, &ada))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused
            .message()
            .contains(&format!("{} bytes", made.size_bytes)),
        "{refused:?}"
    );
    assert_eq!(app.contents(&ada, "s1").await.unwrap(), current);
}
