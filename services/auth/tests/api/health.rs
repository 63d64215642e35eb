use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

#[sqlx::test(migrations = false)]
async fn the_grpc_health_check_answers_serving(pool: sqlx::PgPool) {
    let auth = crate::start(pool).await;
    let channel = sankalpa_kit::grpc::channel(&auth.running.grpc_url()).unwrap();
    let mut health = HealthClient::new(channel);
    for service in ["", "sankalpa.v1.AuthService"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "service {service:?}");
    }
}

#[sqlx::test(migrations = false)]
async fn readyz_reports_postgres_and_metrics_count_rpcs(pool: sqlx::PgPool) {
    let auth = crate::start(pool).await;
    let base = auth.running.http_url();
    let ready = reqwest_get(&format!("{base}/readyz")).await;
    assert!(
        ready.0 == 200 && ready.1.contains("\"postgres\":true"),
        "{ready:?}"
    );
    let mut client = auth.client.clone();
    client
        .get_jwks(sankalpa_proto::v1::GetJwksRequest {})
        .await
        .unwrap();
    let metrics = reqwest_get(&format!("{base}/metrics")).await.1;
    assert!(
        metrics.contains("grpc_server_requests_total{rpc=\"/sankalpa.v1.AuthService/GetJwks\""),
        "{metrics}"
    );
    assert!(
        metrics.contains("db_pool_connections{state=\"in_use\"}"),
        "{metrics}"
    );
}

/// A plain HTTP/1.1 GET, enough for the operations endpoints.
async fn reqwest_get(url: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    stream
        .write_all(
            format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    (status, response)
}
