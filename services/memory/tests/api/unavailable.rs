//! A dependency that cannot be asked (the database, the object store) answers UNAVAILABLE,
//! which a client retries (the gateway's 503 with Retry-After), never INTERNAL.

use sankalpa_proto::v1 as pb;
use tonic::Code;

use crate::{Caller, TestMemory, authed, start};

fn backup_request(caller: &Caller) -> tonic::Request<pb::BackupRequest> {
    authed(
        pb::BackupRequest {
            session_id: "s1".into(),
            label: String::new(),
        },
        &caller.token,
    )
}

async fn backup_ids(app: &mut TestMemory, caller: &Caller) -> Vec<String> {
    app.client
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
        .collect()
}

#[sqlx::test(migrations = false)]
async fn a_database_that_cannot_be_asked_answers_unavailable(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    app.save(&ada, "s1", "k", "1").await.unwrap();

    // Closing the pool the service shares with the test is the database going away.
    app.pool.close().await;

    let save = app.save(&ada, "s1", "k", "2").await.unwrap_err();
    assert_eq!(save.code(), Code::Unavailable, "{save:?}");
    let page = app.contents(&ada, "s1").await.unwrap_err();
    assert_eq!(page.code(), Code::Unavailable, "{page:?}");
    let deleted = app
        .client
        .delete_session(authed(
            pb::DeleteSessionRequest {
                session_id: "s1".into(),
            },
            &ada.token,
        ))
        .await
        .unwrap_err();
    assert_eq!(deleted.code(), Code::Unavailable, "{deleted:?}");
    assert!(
        deleted.message().contains("database"),
        "the message says what is down: {deleted:?}"
    );
}

#[sqlx::test(migrations = false)]
async fn an_object_store_that_cannot_be_reached_answers_unavailable_and_changes_nothing(
    pool: sqlx::PgPool,
) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    app.save(&ada, "s1", "k", r#""before""#).await.unwrap();
    let made = app
        .client
        .backup(backup_request(&ada))
        .await
        .unwrap()
        .into_inner();
    app.save(&ada, "s1", "k", r#""after""#).await.unwrap();
    let current = app.contents(&ada, "s1").await.unwrap();

    // A file where the tenant's folder was: every read and write under it fails, as with a
    // store that cannot be reached.
    let tenant_folder = app.objects.join("memory").join(&ada.tenant_id);
    std::fs::remove_dir_all(&tenant_folder).unwrap();
    std::fs::write(&tenant_folder, b"in the way").unwrap();

    let backup = app.client.backup(backup_request(&ada)).await.unwrap_err();
    assert_eq!(backup.code(), Code::Unavailable, "{backup:?}");
    assert!(backup.message().contains("object store"), "{backup:?}");
    assert_eq!(
        backup_ids(&mut app, &ada).await,
        std::slice::from_ref(&made.id)
    );

    let restore = app
        .client
        .restore(authed(
            pb::RestoreRequest {
                backup_id: made.id,
                target_session_id: None,
            },
            &ada.token,
        ))
        .await
        .unwrap_err();
    assert_eq!(restore.code(), Code::Unavailable, "{restore:?}");
    assert_eq!(app.contents(&ada, "s1").await.unwrap(), current);
}
