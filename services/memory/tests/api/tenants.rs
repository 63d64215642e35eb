use sankalpa_proto::v1 as pb;
use tonic::Code;

use crate::{authed, start};

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
        .list_sessions(authed(pb::ListSessionsRequest { page: None }, &eve.token))
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
