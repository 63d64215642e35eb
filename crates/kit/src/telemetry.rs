//! Logs and traces.
//!
//! Logs are JSON lines on stdout (`SANKALPA_LOG_FORMAT=pretty` for people at a terminal),
//! filtered by `RUST_LOG` (default `info`). Spans always carry an OpenTelemetry context, so the
//! W3C `traceparent` of a request travels from the gateway through gRPC metadata and NATS headers
//! even when nothing collects traces; when `OTEL_EXPORTER_OTLP_ENDPOINT` is set they are also
//! exported over OTLP/gRPC.

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Flushes pending spans when dropped at the end of `main`.
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Err(err) = self.provider.shutdown() {
            eprintln!("could not flush traces: {err}");
        }
    }
}

/// Installs the global subscriber and propagator for a service named `service`.
pub fn init(service: &'static str) -> anyhow::Result<TelemetryGuard> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service)
        .build();
    let mut builder = SdkTracerProvider::builder().with_resource(resource);
    if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some() {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()?;
        builder = builder.with_batch_exporter(exporter);
    }
    let provider = builder.build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    // Busy/idle timing, thread and source-location attributes cost every span a little on
    // every enter and exit; traces are read for their tree and timings, not those.
    let otel = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(service))
        .with_tracked_inactivity(false)
        .with_threads(false)
        .with_location(false);

    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = if std::env::var("SANKALPA_LOG_FORMAT").as_deref() == Ok("pretty") {
        tracing_subscriber::fmt::layer().boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .boxed()
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init()?;
    Ok(TelemetryGuard { provider })
}

/// Writes the current span's trace context into `carrier` (outgoing gRPC metadata, NATS headers).
pub fn inject(carrier: &mut dyn Injector) {
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, carrier);
    });
}

/// Sets an attribute of `span`'s trace span only. Unlike recording a span field, it costs the
/// log layer nothing: for what the trace should show but the logs need not.
pub fn set_attribute(
    span: &tracing::Span,
    key: &'static str,
    value: impl Into<opentelemetry::Value>,
) {
    span.set_attribute(key, value);
}

/// Makes `span` a child of the trace context found in `carrier`, if there is one.
pub fn adopt(span: &tracing::Span, carrier: &dyn Extractor) {
    let parent =
        opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(carrier));
    // Fails only when no OpenTelemetry layer is installed: then there is nothing to join.
    let _ = span.set_parent(parent);
}

/// Reads trace context from HTTP headers.
pub struct HeaderExtractor<'a>(pub &'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Writes trace context into outgoing gRPC metadata.
pub struct MetadataInjector<'a>(pub &'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            value.parse(),
        ) {
            self.0.insert(key, value);
        }
    }
}
