use sankalpa_proto::v1 as pb;
use sankalpa_proto::v1::transact_op::Op;
use serde_json::json;
use tonic::Code;

use crate::{authed, json, start_with};

/// Every operation, with Redis pointed at a port where nothing listens: all answer, and
/// answer what Postgres holds.
#[sqlx::test(migrations = false)]
async fn without_redis_every_operation_still_answers_correctly(pool: sqlx::PgPool) {
    let mut app = start_with(pool, |config| {
        config.infra.redis_url = "redis://127.0.0.1:1".into();
    })
    .await;
    let ada = app.sign_up().await;

    assert_eq!(app.save(&ada, "s1", "k", "1").await.unwrap().version, 1);
    assert_eq!(app.save(&ada, "s1", "k", "2").await.unwrap().version, 2);
    let loaded = app.load(&ada, "s1", "k").await.unwrap();
    assert_eq!((json(&loaded.value_json), loaded.version), (json!(2), 2));

    let conflict = app
        .client
        .save(authed(
            pb::SaveRequest {
                session_id: "s1".into(),
                key: "k".into(),
                value_json: "3".into(),
                expected_version: Some(1),
                ttl_seconds: 0,
            },
            &ada.token,
        ))
        .await
        .unwrap_err();
    assert_eq!(conflict.code(), Code::Aborted);

    let done = app
        .client
        .transact(authed(
            pb::TransactRequest {
                session_id: "s1".into(),
                ops: vec![pb::TransactOp {
                    key: "t".into(),
                    op: Some(Op::Set(pb::SetOp {
                        value_json: "true".into(),
                        ttl_seconds: 0,
                    })),
                }],
            },
            &ada.token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(done.committed);

    let backup = app
        .client
        .backup(authed(
            pb::BackupRequest {
                session_id: "s1".into(),
                label: String::new(),
            },
            &ada.token,
        ))
        .await
        .unwrap()
        .into_inner();
    let deleted = app
        .client
        .delete_key(authed(
            pb::DeleteKeyRequest {
                session_id: "s1".into(),
                key: "k".into(),
                expected_version: None,
            },
            &ada.token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(deleted.deleted);
    assert_eq!(
        app.load(&ada, "s1", "k").await.unwrap_err().code(),
        Code::NotFound
    );

    app.client
        .restore(authed(
            pb::RestoreRequest {
                backup_id: backup.id,
                target_session_id: None,
            },
            &ada.token,
        ))
        .await
        .unwrap();
    assert_eq!(
        app.contents(&ada, "s1").await.unwrap(),
        [("k".to_owned(), json!(2)), ("t".to_owned(), json!(true))]
    );
    assert_eq!(app.load(&ada, "s1", "k").await.unwrap().version, 1);

    let sessions = app
        .client
        .list_sessions(authed(pb::ListSessionsRequest { page: None }, &ada.token))
        .await
        .unwrap()
        .into_inner()
        .sessions;
    assert_eq!(sessions.len(), 1);
    let removed = app
        .client
        .delete_session(authed(
            pb::DeleteSessionRequest {
                session_id: "s1".into(),
            },
            &ada.token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(removed.deleted_entries, 2);
    assert_eq!(
        app.load(&ada, "s1", "t").await.unwrap_err().code(),
        Code::NotFound
    );
}

#[sqlx::test(migrations = false)]
async fn a_cached_entry_never_outlives_the_write_that_replaced_it(pool: sqlx::PgPool) {
    let mut app = start_with(pool, |_| {}).await;
    let ada = app.sign_up().await;
    app.save(&ada, "s1", "k", "1").await.unwrap();
    for round in 2..20 {
        // Load (filling the cache), then write: the next load sees the write.
        app.load(&ada, "s1", "k").await.unwrap();
        app.save(&ada, "s1", "k", &round.to_string()).await.unwrap();
        let loaded = app.load(&ada, "s1", "k").await.unwrap();
        assert_eq!(json(&loaded.value_json), json!(round));
    }
}
