use std::time::Duration;

use futures::StreamExt;
use sankalpa_kit::events::CloudEvent;
use sankalpa_proto::v1 as pb;

use crate::{authed, start};

#[sqlx::test(migrations = false)]
async fn saves_deletes_and_restores_are_announced_on_nats(pool: sqlx::PgPool) {
    let mut app = start(pool).await;
    let ada = app.sign_up().await;
    let nats = async_nats::connect(&app.infra.nats_url).await.unwrap();
    let mut events = nats
        .subscribe(format!(
            "{}memory.{}.s1.>",
            app.infra.subject_prefix, ada.tenant_id
        ))
        .await
        .unwrap();
    nats.flush().await.unwrap();

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
        let message = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .expect("an event arrives")
            .unwrap();
        let event: CloudEvent = serde_json::from_slice(&message.payload).unwrap();
        assert_eq!(event.subject, message.subject.as_str());
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
