//! A channel to several replicas spreads RPCs over them, follows what their name resolves to,
//! and lets a replica leave (draining, or gone) without failing a call.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sankalpa_kit::grpc::Peers;
use sankalpa_kit::grpc::peers::{Probing, Resolve, Target};
use sankalpa_kit::shutdown::Draining;
use tokio_util::sync::CancellationToken;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

const FIRST: &str = "replica.First";
const SECOND: &str = "replica.Second";

/// A server whose health protocol knows only `service`, so an answer tells which one replied.
struct Replica {
    addr: SocketAddr,
    stop: CancellationToken,
    draining: Draining,
}

async fn replica(service: &'static str) -> Replica {
    let listener = sankalpa_kit::grpc::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let draining = Draining::default();
    let (serving, stopping) = (draining.clone(), stop.clone());
    tokio::spawn(async move {
        sankalpa_kit::grpc::serve(
            listener,
            tonic::service::Routes::default(),
            &[service],
            serving,
            stopping.cancelled_owned(),
        )
        .await
    });
    Replica {
        addr,
        stop,
        draining,
    }
}

/// Asks `calls` times which replica answers: the count answered by the first, or the first
/// call that failed otherwise than by naming the other replica.
async fn answered_by_first(health: &mut HealthClient<Peers>, calls: usize) -> usize {
    let mut first = 0;
    for _ in 0..calls {
        let answer = health
            .check(HealthCheckRequest {
                service: FIRST.to_owned(),
            })
            .await;
        match answer {
            Ok(_) => first += 1,
            Err(status) => assert_eq!(status.code(), tonic::Code::NotFound, "{status}"),
        }
    }
    first
}

fn quick() -> Probing {
    Probing {
        resolve_every: Duration::from_millis(50),
        probe_every: Duration::from_millis(50),
        probe_timeout: Duration::from_millis(500),
    }
}

fn endpoint(addr: SocketAddr) -> tonic::transport::Endpoint {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(1))
}

/// A name whose addresses the test sets.
#[derive(Default)]
struct Scripted(Mutex<Vec<SocketAddr>>);

impl Resolve for Scripted {
    fn resolve(
        &self,
        _host: &str,
        _port: u16,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send + '_>> {
        let found = self.0.lock().unwrap().clone();
        Box::pin(async move { Ok(found) })
    }
}

#[tokio::test]
async fn a_channel_to_two_replicas_sends_requests_to_both() {
    let first = replica(FIRST).await;
    let second = replica(SECOND).await;
    let urls = format!("http://{}, http://{}", first.addr, second.addr);
    let mut health = HealthClient::new(sankalpa_kit::grpc::channel(&urls).unwrap());

    let calls = 200;
    let by_first = answered_by_first(&mut health, calls).await;
    assert!(
        (calls / 4..calls * 3 / 4).contains(&by_first),
        "the first replica answered {by_first} of {calls} calls"
    );
    first.stop.cancel();
    second.stop.cancel();
}

#[tokio::test]
async fn a_name_is_looked_up_again_and_its_new_addresses_used() {
    let first = replica(FIRST).await;
    let second = replica(SECOND).await;
    let resolver = Arc::new(Scripted::default());
    *resolver.0.lock().unwrap() = vec![first.addr];
    let name = Target::Name {
        host: "replicas.example".to_owned(),
        port: 1,
    };
    let peers = Peers::watch(vec![name], resolver.clone(), quick(), endpoint);
    let mut health = HealthClient::new(peers);
    assert_eq!(answered_by_first(&mut health, 20).await, 20);

    *resolver.0.lock().unwrap() = vec![first.addr, second.addr];
    tokio::time::sleep(Duration::from_millis(300)).await;
    let by_first = answered_by_first(&mut health, 200).await;
    assert!(
        (50..150).contains(&by_first),
        "with both resolved, the first answered {by_first} of 200"
    );

    *resolver.0.lock().unwrap() = vec![second.addr];
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(answered_by_first(&mut health, 50).await, 0);
    first.stop.cancel();
    second.stop.cancel();
}

/// Calls one after another while `leave` takes the first replica away: none fails, and the
/// second answers all of them afterwards.
async fn a_replica_leaves(leave: impl AsyncFnOnce(&Replica)) {
    let first = replica(FIRST).await;
    let second = replica(SECOND).await;
    let targets = vec![Target::Address(first.addr), Target::Address(second.addr)];
    let peers = Peers::watch(targets, Arc::new(Scripted::default()), quick(), endpoint);
    let mut health = HealthClient::new(peers);
    assert!(answered_by_first(&mut health, 100).await > 0);

    let calls = tokio::spawn({
        let mut health = health.clone();
        async move { answered_by_first(&mut health, 400).await }
    });
    leave(&first).await;
    calls.await.expect("no call failed while the replica left");
    assert_eq!(answered_by_first(&mut health, 100).await, 0);
    second.stop.cancel();
}

#[tokio::test]
async fn a_replica_that_drains_leaves_the_rotation_before_it_stops() {
    a_replica_leaves(async |replica| {
        replica.draining.start();
        tokio::time::sleep(Duration::from_millis(300)).await;
        replica.stop.cancel();
    })
    .await;
}

#[tokio::test]
async fn calls_refused_by_a_replica_that_is_gone_go_to_the_other() {
    a_replica_leaves(async |replica| {
        tokio::time::sleep(Duration::from_millis(20)).await;
        replica.stop.cancel();
    })
    .await;
}

#[tokio::test]
async fn a_call_to_peers_that_are_down_fails_at_once_with_unavailable() {
    let vacant = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", vacant.local_addr().unwrap());
    drop(vacant);

    for peers in [url.clone(), format!("{url},{url}")] {
        let mut health = HealthClient::new(sankalpa_kit::grpc::channel(&peers).unwrap());
        for _ in 0..3 {
            let call = health.check(HealthCheckRequest::default());
            let status = tokio::time::timeout(Duration::from_secs(5), call)
                .await
                .expect("the call fails instead of waiting for the peer")
                .unwrap_err();
            assert_eq!(status.code(), tonic::Code::Unavailable, "{peers}");
        }
    }
}
