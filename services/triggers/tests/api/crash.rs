//! The triggers service killed (`kill -9`) in the middle of delivering a thousand events and
//! started again: every event reaches the receiver at least once, and the receiver's dedup by
//! `webhook-id` leaves exactly a thousand.

use std::collections::HashSet;
use std::time::Duration;

use sankalpa_kit::events::EventBus;
use sankalpa_proto::v1 as pb;
use sankalpa_proto::v1::webhook_service_client::WebhookServiceClient;
use sankalpa_testkit::process::{ServiceProcess, binary, free_port};
use sqlx::PgPool;

use crate::helpers::Receiver;

const EVENTS: usize = 1000;

#[sqlx::test(migrations = false)]
async fn a_killed_service_delivers_every_event_after_its_restart(pool: PgPool) {
    let name = sankalpa_testkit::unique_name();
    let infra = sankalpa_testkit::infra(&name);
    let _leftovers = sankalpa_testkit::Leftovers::new(&infra, Vec::new());
    let database = pool
        .connect_options()
        .get_database()
        .expect("the test database has a name")
        .to_owned();
    let database_url = match infra.database_url.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{database}"),
        None => panic!("a database URL ends with its database"),
    };
    let auth = sankalpa_testkit::spawn_auth(pool, infra.clone(), |_| {})
        .await
        .unwrap();
    let (grpc, http) = (free_port(), free_port());
    let env = [
        ("SANKALPA_DATABASE_URL", database_url),
        ("SANKALPA_EVENTS_STREAM", infra.events_stream.clone()),
        ("SANKALPA_SUBJECT_PREFIX", infra.subject_prefix.clone()),
        (
            "SANKALPA_EVENTS_MAX_BYTES",
            infra.events_max_bytes.to_string(),
        ),
        ("SANKALPA_AUTH_URL", auth.grpc_url()),
        ("SANKALPA_TRIGGERS_GRPC_ADDR", format!("127.0.0.1:{grpc}")),
        ("SANKALPA_TRIGGERS_HTTP_ADDR", format!("127.0.0.1:{http}")),
        ("SANKALPA_TRIGGERS_ALLOW_HTTP", "true".to_owned()),
        (
            "SANKALPA_TRIGGERS_ALLOW_PRIVATE_NETWORKS",
            "127.0.0.0/8".to_owned(),
        ),
        (
            "SANKALPA_TRIGGERS_RETRY_SCHEDULE_MS",
            "50,100,200".to_owned(),
        ),
        ("SANKALPA_TRIGGERS_POLL_MS", "100".to_owned()),
        // A few at a time and a short lease, so that the kill lands mid-way and the deliveries
        // it interrupted are taken again within seconds.
        ("SANKALPA_TRIGGERS_DELIVERY_CONCURRENCY", "4".to_owned()),
        ("SANKALPA_TRIGGERS_DELIVERY_TIMEOUT_MS", "2000".to_owned()),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value))
    .collect();
    let mut triggers = ServiceProcess::start(
        binary("sankalpa-triggers"),
        env,
        format!("http://127.0.0.1:{http}/readyz"),
    )
    .await;

    let mut auth_client =
        sankalpa_proto::v1::auth_service_client::AuthServiceClient::connect(auth.grpc_url())
            .await
            .unwrap();
    let user = sankalpa_testkit::sign_up(&mut auth_client, "Ada").await;
    let mut webhooks = WebhookServiceClient::new(
        sankalpa_kit::grpc::channel(&format!("http://127.0.0.1:{grpc}")).unwrap(),
    );
    let receiver = Receiver::start().await;
    webhooks
        .create_endpoint(
            sankalpa_kit::auth::with_bearer(
                pb::CreateEndpointRequest {
                    url: receiver.url(),
                    event_types: vec!["agents.>".to_owned()],
                    ..Default::default()
                },
                &user.token,
            )
            .unwrap(),
        )
        .await
        .expect("the endpoint is registered");

    let nats = async_nats::connect(&infra.nats_url).await.unwrap();
    let bus = EventBus::connect(nats, &infra, "/tests/crash")
        .await
        .unwrap();
    let mut acks = Vec::with_capacity(EVENTS);
    for n in 0..EVENTS {
        let (_, ack) = bus
            .publish_unacked(
                "agents",
                &user.tenant_id,
                "echo",
                "completed",
                serde_json::json!({ "n": n }),
            )
            .await
            .unwrap();
        acks.push(ack);
    }
    for ack in acks {
        ack.await.expect("JetStream stores the event");
    }

    let before = receiver.wait_for(EVENTS / 5, Duration::from_secs(30)).await;
    assert!(
        before.len() >= EVENTS / 5,
        "deliveries began: {}",
        before.len()
    );
    triggers.kill().await;
    let at_kill = receiver.received().len();
    triggers.restart().await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let unique = loop {
        let unique: HashSet<String> = receiver
            .received()
            .iter()
            .map(|received| received.header("webhook-id").to_owned())
            .collect();
        if unique.len() >= EVENTS || tokio::time::Instant::now() >= deadline {
            break unique;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        at_kill < EVENTS,
        "the kill came mid-delivery ({at_kill} delivered)"
    );
    assert_eq!(unique.len(), EVENTS, "every event, once each after dedup");
    let numbers: HashSet<u64> = receiver
        .received()
        .iter()
        .map(|received| received.json()["data"]["n"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers.len(), EVENTS);
}
