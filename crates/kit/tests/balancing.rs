//! A channel to several replicas spreads RPCs over them.

use std::net::SocketAddr;

use tokio_util::sync::CancellationToken;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// A server whose health protocol knows only `service`, so an answer tells which one replied.
async fn replica(service: &'static str, stop: CancellationToken) -> SocketAddr {
    let listener = sankalpa_kit::grpc::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        sankalpa_kit::grpc::serve(
            listener,
            tonic::service::Routes::default(),
            &[service],
            stop.cancelled_owned(),
        )
        .await
    });
    addr
}

#[tokio::test]
async fn a_channel_to_two_replicas_sends_requests_to_both() {
    let stop = CancellationToken::new();
    let first = replica("replica.First", stop.clone()).await;
    let second = replica("replica.Second", stop.clone()).await;
    let channel = sankalpa_kit::grpc::channel(&format!("http://{first}, http://{second}")).unwrap();
    let mut health = HealthClient::new(channel);

    let mut answered_by_first = 0;
    let calls = 60;
    for _ in 0..calls {
        let answer = health
            .check(HealthCheckRequest {
                service: "replica.First".to_owned(),
            })
            .await;
        match answer {
            Ok(_) => answered_by_first += 1,
            Err(status) => assert_eq!(status.code(), tonic::Code::NotFound, "{status}"),
        }
    }
    assert!(
        answered_by_first > 0 && answered_by_first < calls,
        "the first replica answered {answered_by_first} of {calls} calls"
    );
    stop.cancel();
}
