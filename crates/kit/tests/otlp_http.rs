//! Spans and metrics exported over OTLP/HTTP with protobuf bodies, to a receiver serving
//! `POST /v1/traces` and `POST /v1/metrics` as a collector does. A test binary of its own: it installs this process's telemetry.

use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, header};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use sankalpa_kit::metrics_export::MetricsExporting;
use sankalpa_kit::telemetry::{self, Exporting, Protocol};

#[tokio::test]
async fn spans_and_metrics_reach_a_collector_over_http_protobuf() {
    let (sender, mut received) = tokio::sync::mpsc::unbounded_channel();
    let (metrics_sender, mut metrics_received) = tokio::sync::mpsc::unbounded_channel();
    let collector = axum::Router::new().route(
        "/v1/metrics",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let _ = metrics_sender.send((headers, body));
            async { "" }
        }),
    );
    let collector = collector.route(
        "/v1/traces",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let _ = sender.send((content_type, body));
            // An empty body is the default ExportTraceServiceResponse: all accepted.
            async { "" }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, collector).await });

    let telemetry = telemetry::install(
        "http-exporter",
        Some(Exporting {
            endpoint: format!("http://{addr}/v1/traces"),
            protocol: Protocol::HttpProtobuf,
        }),
        Some(MetricsExporting {
            target: Exporting {
                endpoint: format!("http://{addr}/v1/metrics"),
                protocol: Protocol::HttpProtobuf,
            },
            interval: Duration::from_secs(3600),
            timeout: Duration::from_secs(5),
            headers: vec![("authorization".to_owned(), "Bearer secret".to_owned())],
        }),
        false,
    )
    .unwrap();
    metrics::counter!("http_test_things_total").increment(3);
    tracing::info_span!("exported over http").in_scope(|| tracing::info!("inside"));
    telemetry.flush().await.unwrap();

    let (content_type, body) = tokio::time::timeout(Duration::from_secs(10), received.recv())
        .await
        .expect("the collector is called")
        .unwrap();
    assert_eq!(content_type, "application/x-protobuf");
    let request = ExportTraceServiceRequest::decode(body).unwrap();
    let resource_spans = &request.resource_spans[0];
    let service = resource_spans
        .resource
        .as_ref()
        .unwrap()
        .attributes
        .iter()
        .find(|pair| pair.key == "service.name")
        .and_then(|pair| pair.value.clone())
        .and_then(|value| value.value);
    assert_eq!(
        service,
        Some(
            opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(
                "http-exporter".to_owned()
            )
        )
    );
    let names: Vec<&str> = resource_spans
        .scope_spans
        .iter()
        .flat_map(|scope| &scope.spans)
        .map(|span| span.name.as_str())
        .collect();
    assert_eq!(names, ["exported over http"]);

    let (headers, body) = tokio::time::timeout(Duration::from_secs(10), metrics_received.recv())
        .await
        .expect("the collector is sent the metrics")
        .unwrap();
    assert_eq!(headers[header::CONTENT_TYPE], "application/x-protobuf");
    assert_eq!(headers[header::AUTHORIZATION], "Bearer secret");
    let request = ExportMetricsServiceRequest::decode(body).unwrap();
    let counted = request.resource_metrics[0]
        .scope_metrics
        .iter()
        .flat_map(|scope| &scope.metrics)
        .find(|metric| metric.name == "http_test_things_total")
        .expect("the counter is exported");
    assert_eq!(
        format!("{:?}", counted.data)
            .matches("AsDouble(3.0)")
            .count(),
        1,
        "{counted:?}"
    );
    server.abort();
}
