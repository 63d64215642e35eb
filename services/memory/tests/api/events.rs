use sankalpa_kit::events::CloudEvent;
use sankalpa_proto::v1 as pb;
use sankalpa_testkit::Events;

use crate::{Caller, TestMemory, authed, start};

/// Memory's events about `session` of `caller`'s tenant.
async fn events_of(app: &TestMemory, caller: &Caller, session: &str) -> Events {
    Events::read(
        &app.infra,
        &format!("memory.{}.{session}.>", caller.tenant_id),
    )
    .await
}

/// The next event, checked to travel on the subject it names.
async fn next_event(events: &mut Events) -> CloudEvent {
    let (subject, event) = events.next().await;
    assert_eq!(event.subject, subject);
    event
}

#[sqlx::test(migrations = false)]
async fn saves_deletes_and_restores_are_announced_on_nats(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let mut events = events_of(&app, &ada, "s1").await;

    app.save(&ada, "s1", "k", "1").await.unwrap();
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
    app.client
        .delete_key(authed(
            pb::DeleteKeyRequest {
                session_id: "s1".into(),
                key: "k".into(),
                expected_version: None,
            },
            &ada.token,
        ))
        .await
        .unwrap();
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

    let mut seen = Vec::new();
    for _ in 0..3 {
        let event = next_event(&mut events).await;
        assert_eq!(event.tenantid, ada.tenant_id);
        assert_eq!(event.data["session_id"], "s1");
        seen.push(event.kind);
    }
    assert_eq!(
        seen,
        [
            "sankalpa.memory.saved",
            "sankalpa.memory.deleted",
            "sankalpa.memory.restored"
        ]
    );
}

#[sqlx::test(migrations = false)]
async fn a_saved_event_names_the_version_each_write_gave_and_a_refused_write_announces_nothing(
    pool: sqlx::PgPool,
) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let mut events = events_of(&app, &ada, "s2").await;

    app.save(&ada, "s2", "plan", "1").await.unwrap();
    let compare_and_set = |expected_version| {
        authed(
            pb::SaveRequest {
                session_id: "s2".into(),
                key: "plan".into(),
                value_json: "2".into(),
                expected_version: Some(expected_version),
                ttl_seconds: 0,
            },
            &ada.token,
        )
    };
    let refused = app.client.save(compare_and_set(7)).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Aborted, "{refused:?}");
    app.client.save(compare_and_set(1)).await.unwrap();
    app.save(&ada, "s2", "other", "3").await.unwrap();

    let mut keys = Vec::new();
    for _ in 0..3 {
        let event = next_event(&mut events).await;
        assert_eq!(event.kind, "sankalpa.memory.saved");
        keys.push(event.data["keys"].clone());
    }
    assert_eq!(
        keys,
        [
            serde_json::json!([{ "key": "plan", "version": 1 }]),
            serde_json::json!([{ "key": "plan", "version": 2 }]),
            serde_json::json!([{ "key": "other", "version": 1 }]),
        ]
    );
}
