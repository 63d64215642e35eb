//! The triggers service killed (`kill -9`) and started again, or followed by a second replica:
//! every event reaches the receiver at least once, and the receiver's dedup by `webhook-id`
//! leaves each exactly once.

use std::collections::HashSet;
use std::time::Duration;

use sankalpa_kit::config::Infra;
use sankalpa_kit::events::EventBus;
use sankalpa_proto::v1 as pb;
use sankalpa_proto::v1::webhook_service_client::WebhookServiceClient;
use sankalpa_testkit::process::{Ports, ServiceProcess, binary, infra_env};
use sqlx::PgPool;

use crate::helpers::Receiver;

const EVENTS: usize = 1000;

/// A tenant with an endpoint for `agents.>` at a receiver, and what starts triggers services
/// on the test's database.
struct Setup {
    infra: Infra,
    /// What puts a child service on the test's database, stream and subjects.
    infra_env: Vec<(String, String)>,
    auth: sankalpa_testkit::Running,
    receiver: Receiver,
    tenant_id: String,
    _leftovers: sankalpa_testkit::Leftovers,
}

impl Setup {
    /// Auth, the receiver and a first triggers service, through which the endpoint is made.
    async fn start(pool: PgPool) -> (Self, ServiceProcess) {
        let name = sankalpa_testkit::unique_name();
        let infra = sankalpa_testkit::infra(&name);
        let leftovers = sankalpa_testkit::Leftovers::new(&infra, Vec::new());
        let infra_env = infra_env(&infra, &pool);
        let auth = sankalpa_testkit::spawn_auth(pool, infra.clone(), |_| {})
            .await
            .unwrap();
        let mut setup = Self {
            infra,
            infra_env,
            auth,
            receiver: Receiver::start().await,
            tenant_id: String::new(),
            _leftovers: leftovers,
        };
        let (triggers, grpc_url) = setup.triggers().await;
        let mut auth_client = sankalpa_proto::v1::auth_service_client::AuthServiceClient::connect(
            setup.auth.grpc_url(),
        )
        .await
        .unwrap();
        let user = sankalpa_testkit::sign_up(&mut auth_client, "Ada").await;
        let mut webhooks =
            WebhookServiceClient::new(sankalpa_kit::grpc::channel(&grpc_url).unwrap());
        webhooks
            .create_endpoint(
                sankalpa_kit::auth::with_bearer(
                    pb::CreateEndpointRequest {
                        url: setup.receiver.url(),
                        event_types: vec!["agents.>".to_owned()],
                        ..Default::default()
                    },
                    &user.token,
                )
                .unwrap(),
            )
            .await
            .expect("the endpoint is registered");
        setup.tenant_id = user.tenant_id;
        (setup, triggers)
    }

    /// A triggers service as a child process, and its gRPC URL.
    async fn triggers(&self) -> (ServiceProcess, String) {
        let ports = Ports::new();
        let mut env = self.infra_env.clone();
        env.extend(ports.env("TRIGGERS"));
        env.extend(
            [
                ("SANKALPA_AUTH_URL", self.auth.grpc_url()),
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
                // A few at a time and a short lease, so that the kill lands mid-way and the
                // deliveries it interrupted are taken again within seconds.
                ("SANKALPA_TRIGGERS_DELIVERY_CONCURRENCY", "4".to_owned()),
                ("SANKALPA_TRIGGERS_DELIVERY_TIMEOUT_MS", "2000".to_owned()),
            ]
            .map(|(key, value)| (key.to_owned(), value)),
        );
        let process =
            ServiceProcess::start(binary("sankalpa-triggers"), env, ports.ready_url()).await;
        (process, ports.grpc_url())
    }

    /// Publishes `agents` events numbered `numbers` for the tenant, each stored by JetStream.
    async fn publish(&self, numbers: std::ops::Range<usize>) {
        let nats = async_nats::connect(&self.infra.nats_url).await.unwrap();
        let bus = EventBus::connect(nats, &self.infra, "/tests/crash")
            .await
            .unwrap();
        let mut acks = Vec::with_capacity(numbers.len());
        for n in numbers {
            let (_, ack) = bus
                .publish_unacked(
                    "agents",
                    &self.tenant_id,
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
    }

    /// Waits until the receiver has every one of the [`EVENTS`], and checks that it has.
    async fn every_event_arrives(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        let unique = loop {
            let unique: HashSet<String> = self
                .receiver
                .received()
                .iter()
                .map(|received| received.header("webhook-id").to_owned())
                .collect();
            if unique.len() >= EVENTS || tokio::time::Instant::now() >= deadline {
                break unique;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(unique.len(), EVENTS, "every event, once each after dedup");
        assert_eq!(self.numbers_received().len(), EVENTS);
    }

    /// The numbers of the events the receiver got.
    fn numbers_received(&self) -> HashSet<u64> {
        self.receiver
            .received()
            .iter()
            .map(|received| received.json()["data"]["n"].as_u64().unwrap())
            .collect()
    }
}

#[sqlx::test(migrations = false)]
async fn a_killed_service_delivers_every_event_after_its_restart(pool: PgPool) {
    let (setup, mut triggers) = Setup::start(pool).await;
    setup.publish(0..EVENTS).await;

    let before = setup
        .receiver
        .wait_for(EVENTS / 5, Duration::from_secs(30))
        .await;
    assert!(
        before.len() >= EVENTS / 5,
        "deliveries began: {}",
        before.len()
    );
    triggers.kill().await;
    let at_kill = setup.receiver.received().len();
    triggers.restart().await;

    setup.every_event_arrives().await;
    assert!(
        at_kill < EVENTS,
        "the kill came mid-delivery ({at_kill} delivered)"
    );
}

/// The first replica reads the stream; killed while events keep coming, the second takes the
/// reading over from where the first had kept its place.
#[sqlx::test(migrations = false)]
async fn a_second_replica_reads_on_when_the_reader_is_killed(pool: PgPool) {
    let (setup, mut reader) = Setup::start(pool).await;
    let (_standby, _) = setup.triggers().await;
    setup.publish(0..EVENTS / 2).await;
    setup
        .receiver
        .wait_for(EVENTS / 10, Duration::from_secs(30))
        .await;
    reader.kill().await;
    let at_kill = setup.receiver.received().len();
    setup.publish(EVENTS / 2..EVENTS).await;

    setup.every_event_arrives().await;
    assert!(
        at_kill < EVENTS / 2,
        "the kill came mid-way through the first half ({at_kill} delivered)"
    );
}

/// A service that read with the durable consumer of earlier versions, upgraded: its first start
/// goes on after the last event that consumer acknowledged, and deletes it.
#[sqlx::test(migrations = false)]
async fn an_upgrade_goes_on_where_the_old_durable_consumer_acknowledged(pool: PgPool) {
    use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
    use futures::StreamExt;

    let (setup, mut triggers) = Setup::start(pool.clone()).await;
    triggers.kill().await;
    // As before cursors were kept, with the old consumer four events into ten.
    sqlx::query("DELETE FROM triggers.ingest_cursor")
        .execute(&pool)
        .await
        .unwrap();
    let nats = async_nats::connect(&setup.infra.nats_url).await.unwrap();
    let stream = async_nats::jetstream::new(nats)
        .get_stream(&setup.infra.events_stream)
        .await
        .unwrap();
    let old = stream
        .create_consumer(pull::Config {
            durable_name: Some("triggers".to_owned()),
            deliver_policy: DeliverPolicy::New,
            ack_policy: AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .unwrap();
    setup.publish(0..10).await;
    let mut taken = old.fetch().max_messages(4).messages().await.unwrap();
    while let Some(message) = taken.next().await {
        message.unwrap().double_ack().await.unwrap();
    }

    triggers.restart().await;
    setup.receiver.wait_for(6, Duration::from_secs(30)).await;
    // Time for any event before the old consumer's place to arrive too, if it were read.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(setup.numbers_received(), (4..10).collect::<HashSet<u64>>());
    assert!(
        stream.consumer_info("triggers").await.is_err(),
        "the old consumer is deleted"
    );
}
