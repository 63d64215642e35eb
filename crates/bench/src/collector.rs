//! A live OTLP collector for the fleet's exports, when `SANKALPA_BENCH_COLLECTOR=live`: it takes
//! every span and metrics export over gRPC, counts them and keeps nothing, so that a run with
//! it measures what tracing costs the services when export succeeds, beside a run with
//! `OTEL_EXPORTER_OTLP_ENDPOINT` at a dead port (what failing exports add) and one without
//! (nothing exported). It serves on the floors' runtime, apart from the bench's client, as a
//! collector runs in a process of its own.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};

/// What the collector was sent.
#[derive(Default)]
pub struct Received {
    pub spans: AtomicU64,
    pub metric_exports: AtomicU64,
}

#[derive(Clone)]
struct Sink(Arc<Received>);

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans: usize = request
            .get_ref()
            .resource_spans
            .iter()
            .flat_map(|resource| &resource.scope_spans)
            .map(|scope| scope.spans.len())
            .sum();
        self.0.spans.fetch_add(spans as u64, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Sink {
    async fn export(
        &self,
        _request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.0.metric_exports.fetch_add(1, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

/// Whether `SANKALPA_BENCH_COLLECTOR` asks for a live collector.
pub fn wanted() -> Result<bool> {
    match crate::env_or("SANKALPA_BENCH_COLLECTOR", "").as_str() {
        "" => Ok(false),
        "live" => Ok(true),
        other => anyhow::bail!("SANKALPA_BENCH_COLLECTOR={other:?}: only live"),
    }
}

/// Starts the collector on a free port of 127.0.0.1, on `runtime`; its address and what it
/// counts. It serves until the runtime shuts down.
pub fn start(runtime: &tokio::runtime::Runtime) -> Result<(SocketAddr, Arc<Received>)> {
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .context("Failed to bind the collector")?;
    let addr = listener.local_addr()?;
    let received = Arc::new(Received::default());
    let sink = Sink(received.clone());
    runtime.spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(sink.clone()))
            .add_service(MetricsServiceServer::new(sink))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    Ok((addr, received))
}
