//! Logs and traces.
//!
//! Logs are JSON lines on stdout (`SANKALPA_LOG_FORMAT=pretty` for people at a terminal),
//! filtered by `RUST_LOG` (default `info`). Spans always carry an OpenTelemetry context, so the
//! W3C `traceparent` of a request travels from the gateway through gRPC metadata and NATS headers
//! even when nothing collects traces; then a span keeps only that context, not a recorded span
//! ([`propagation`]).
//!
//! When `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT` is set (and
//! `OTEL_TRACES_EXPORTER` is not `none`), spans are also exported over OTLP (gRPC, or
//! HTTP/protobuf as `OTEL_EXPORTER_OTLP_PROTOCOL` says) by a batch
//! processor running on the service's Tokio runtime: the SDK's default processor exports from a
//! thread of its own, where the tonic exporter has no runtime to connect with and every export
//! failed silently. The other standard variables are honoured as the OpenTelemetry SDK reads
//! them: `OTEL_EXPORTER_OTLP[_TRACES]_HEADERS` and `_TIMEOUT`,
//! `OTEL_TRACES_SAMPLER` and `_ARG`, `OTEL_BSP_*`, `OTEL_SERVICE_NAME` and
//! `OTEL_RESOURCE_ATTRIBUTES`. A failed export is counted in `otel_span_export_failures_total`
//! and logged at most once per [`FAILURE_LOG_EVERY`]; the guard [`init`] returns flushes what
//! is pending when the service ends. Metrics go to the same collector as the spans unless told
//! otherwise (`metrics_export.rs`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::metrics_export::{MetricsExport, MetricsExporting};

mod propagation;

/// How often at most a failing exporter writes a log line; the counter counts every failure.
pub const FAILURE_LOG_EVERY: Duration = Duration::from_secs(60);

/// Where spans go: an OTLP collector at `endpoint`, over `protocol`.
#[derive(Debug, Clone, PartialEq)]
pub struct Exporting {
    /// `http://host:4317` for gRPC; the whole URL (`http://host:4318/v1/traces`) for HTTP.
    pub endpoint: String,
    pub protocol: Protocol,
}

/// The OTLP transports the services speak.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Protocol {
    /// `grpc`, the default.
    Grpc,
    /// `http/protobuf`.
    HttpProtobuf,
}

/// What a service exports over OTLP: its spans, or its metrics (`metrics_export.rs`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Signal {
    Traces,
    Metrics,
}

impl Signal {
    /// As the `OTEL_*` variables spell it (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`).
    fn upper(self) -> &'static str {
        match self {
            Self::Traces => "TRACES",
            Self::Metrics => "METRICS",
        }
    }

    /// As the OTLP/HTTP path spells it (`/v1/traces`).
    fn lower(self) -> &'static str {
        match self {
            Self::Traces => "traces",
            Self::Metrics => "metrics",
        }
    }
}

impl Exporting {
    /// The export of spans the standard `OTEL_*` variables ask for, `None` when they ask for none.
    pub fn from_env() -> anyhow::Result<Option<Self>> {
        Self::from_lookup(Signal::Traces, |name| std::env::var(name).ok())
    }

    /// The export of `signal` the variables `var` reads ask for.
    pub(crate) fn from_lookup(
        signal: Signal,
        var: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Option<Self>> {
        let set = |name: &str| var(name).filter(|value| !value.trim().is_empty());
        let upper = signal.upper();
        let exporter_var = format!("OTEL_{upper}_EXPORTER");
        if let Some(exporter) = set(&exporter_var) {
            match exporter.trim() {
                "none" => return Ok(None),
                "otlp" => {}
                other => anyhow::bail!("{exporter_var}={other:?}: only otlp or none"),
            }
        }
        let protocol = set(&format!("OTEL_EXPORTER_OTLP_{upper}_PROTOCOL"))
            .or_else(|| set("OTEL_EXPORTER_OTLP_PROTOCOL"))
            .unwrap_or_else(|| "grpc".to_owned());
        let protocol = match protocol.trim() {
            "grpc" => Protocol::Grpc,
            "http/protobuf" => Protocol::HttpProtobuf,
            other => anyhow::bail!(
                "OTEL_EXPORTER_OTLP_PROTOCOL={other:?}: the services export over grpc or \
                 http/protobuf"
            ),
        };
        // The signal's endpoint is used as it is; the general one is a base, to which HTTP adds
        // the signal's path (gRPC has none).
        let endpoint = set(&format!("OTEL_EXPORTER_OTLP_{upper}_ENDPOINT")).or_else(|| {
            set("OTEL_EXPORTER_OTLP_ENDPOINT").map(|base| match protocol {
                Protocol::Grpc => base,
                Protocol::HttpProtobuf => {
                    format!("{}/v1/{}", base.trim_end_matches('/'), signal.lower())
                }
            })
        });
        Ok(endpoint.map(|endpoint| Self { endpoint, protocol }))
    }
}

/// Flushes pending spans (and exports the metrics once more) when the service ends: by
/// [`shutdown`](Self::shutdown), or when dropped.
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
    metrics: Option<MetricsExport>,
}

impl TelemetryGuard {
    /// Exports every span ended so far and the metrics as they are, waiting until the
    /// exporters have answered.
    pub async fn flush(&self) -> anyhow::Result<()> {
        let provider = self.provider.clone();
        // The SDK blocks its caller until the batch task, on this runtime, has exported.
        let spans = tokio::task::spawn_blocking(move || provider.force_flush()).await;
        if let Some(metrics) = &self.metrics {
            metrics.flush().await;
        }
        spans??;
        Ok(())
    }

    /// Exports what is pending and stops the exporters.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(metrics) = self.metrics.take() {
            metrics.shutdown().await;
        }
        let provider = self.provider.clone();
        tokio::task::spawn_blocking(move || provider.shutdown()).await??;
        Ok(())
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        use tokio::runtime::{Handle, RuntimeFlavor};
        // Shutting down waits for the batch task, which must be able to run meanwhile: a
        // worker of a multi-threaded runtime hands its work over first; on a single-threaded
        // runtime the wait would never end, so what is pending is given up.
        let result = match Handle::try_current().map(|handle| handle.runtime_flavor()) {
            Ok(RuntimeFlavor::MultiThread) => {
                tokio::task::block_in_place(|| self.provider.shutdown())
            }
            Ok(_) => return,
            Err(_) => self.provider.shutdown(),
        };
        if let Err(err) = result {
            // Already shut down through `shutdown`: nothing is lost.
            if !matches!(err, opentelemetry_sdk::error::OTelSdkError::AlreadyShutdown) {
                eprintln!("could not flush traces: {err}");
            }
        }
    }
}

/// Installs the global subscriber and propagator for a service named `service`, exporting
/// spans where the `OTEL_*` variables say. Call it inside the Tokio runtime.
pub fn init(service: &'static str) -> anyhow::Result<TelemetryGuard> {
    install(
        service,
        Exporting::from_env()?,
        MetricsExporting::from_env()?,
        true,
    )
}

/// Like [`init`], but exporting spans as `exporting` says and metrics as `metrics` does, and
/// writing logs only if `logs`: for a test that collects what the services it starts export.
pub fn install(
    service: &'static str,
    exporting: Option<Exporting>,
    metrics: Option<MetricsExporting>,
    logs: bool,
) -> anyhow::Result<TelemetryGuard> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let mut builder = SdkTracerProvider::builder().with_resource(resource(service));
    let exported = exporting.is_some();
    if let Some(exporting) = exporting {
        let exporter = match exporting.protocol {
            Protocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(exporting.endpoint)
                .build()?,
            Protocol::HttpProtobuf => opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint(exporting.endpoint)
                .build()?,
        };
        let processor = BatchSpanProcessor::builder(
            CountedExporter::new(exporter),
            opentelemetry_sdk::runtime::Tokio,
        )
        .build();
        builder = builder.with_span_processor(processor);
    }
    let provider = builder.build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    // The recorder first, so that what the exporter counts is kept.
    crate::metrics::handle();
    // Recording spans is for exporting them; without an exporter a span keeps its context only.
    // Busy/idle timing, thread and source-location attributes cost every span a little on
    // every enter and exit; traces are read for their tree and timings, not those. The
    // HTTP/2 stack's own spans stay out: exporting a batch would make spans to export. The
    // propagation layer needs no such filter, and a per-layer filter costs every span's every
    // enter and exit a lookup of the span.
    let otel = if exported {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(service))
            .with_tracked_inactivity(false)
            .with_threads(false)
            .with_location(false)
            .with_filter(tracing_subscriber::filter::filter_fn(|metadata| {
                !["h2", "hyper", "tonic", "tower", "opentelemetry"]
                    .iter()
                    .any(|stack| metadata.target().starts_with(stack))
            }))
            .boxed()
    } else {
        propagation::Propagation::default().boxed()
    };

    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // sqlx reports each statement in a debug event as it ends: while spans are exported, those
    // events become the statements' spans, and stay out of the logs unless RUST_LOG asks.
    let statements = exported
        && !std::env::var("RUST_LOG")
            .unwrap_or_default()
            .contains("sqlx");
    if statements {
        filter = filter.add_directive(
            "sqlx::query=debug"
                .parse()
                .expect("the directive is well formed"),
        );
    }
    let fmt = if !logs {
        None
    } else if std::env::var("SANKALPA_LOG_FORMAT").as_deref() == Ok("pretty") {
        Some(tracing_subscriber::fmt::layer().boxed())
    } else {
        Some(json_logs(std::io::stdout))
    };
    let fmt = match fmt {
        Some(fmt) if statements => Some(
            fmt.with_filter(tracing_subscriber::filter::filter_fn(|metadata| {
                !(metadata.target() == "sqlx::query" && *metadata.level() > tracing::Level::INFO)
            }))
            .boxed(),
        ),
        fmt => fmt,
    };
    // Boxed rather than optional: an `Option` layer does not pass the dispatch on.
    let statement_spans = if statements {
        StatementSpans {
            tracer: provider.tracer("sqlx"),
            dispatch: std::sync::OnceLock::new(),
        }
        .boxed()
    } else {
        tracing_subscriber::layer::Identity::new().boxed()
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .with(statement_spans)
        .try_init()?;
    Ok(TelemetryGuard {
        provider,
        metrics: metrics.map(|exporting| MetricsExport::start(service, exporting)),
    })
}

/// Turns the event sqlx writes as a statement ends (target `sqlx::query`) into the statement's
/// span: of kind client, under the span that ran it, timed by the event's `elapsed_secs`, named
/// and attributed by the database semantic conventions. sqlx's SQL holds `$n` placeholders,
/// never the parameters.
struct StatementSpans {
    tracer: opentelemetry_sdk::trace::SdkTracer,
    /// The subscriber this layer is part of, to read the OpenTelemetry context of its spans.
    dispatch: std::sync::OnceLock<tracing::dispatcher::WeakDispatch>,
}

/// What sqlx's statement event says.
#[derive(Default)]
struct Statement {
    summary: String,
    full: String,
    elapsed: Option<f64>,
}

impl tracing::field::Visit for Statement {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        match field.name() {
            "summary" => value.clone_into(&mut self.summary),
            "db.statement" => value.trim().clone_into(&mut self.full),
            _ => {}
        }
    }

    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        if field.name() == "elapsed_secs" {
            self.elapsed = Some(value);
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        // sqlx records its strings as values of their own type in some versions.
        match field.name() {
            "summary" | "db.statement" => self.record_str(field, &format!("{value:?}")),
            _ => {}
        }
    }
}

impl<S> Layer<S> for StatementSpans
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        let _ = self.dispatch.set(subscriber.downgrade());
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: tracing_subscriber::layer::Context<'_, S>) {
        use opentelemetry::trace::{Span as _, SpanKind, Tracer as _};
        if event.metadata().target() != "sqlx::query" {
            return;
        }
        // Only a statement run inside a traced span: a lone one would be a trace of its own.
        let (Some(span), Some(dispatch)) = (
            ctx.event_span(event),
            self.dispatch
                .get()
                .and_then(tracing::dispatcher::WeakDispatch::upgrade),
        ) else {
            return;
        };
        let Some(parent) =
            tracing_opentelemetry::get_otel_context(&mut span.extensions_mut(), &dispatch)
        else {
            return;
        };
        let mut statement = Statement::default();
        event.record(&mut statement);
        let Some(elapsed) = statement.elapsed else {
            return;
        };
        let text = if statement.full.is_empty() {
            statement.summary
        } else {
            statement.full
        };
        let operation = text
            .split_whitespace()
            .next()
            .unwrap_or("QUERY")
            .to_uppercase();
        let end = std::time::SystemTime::now();
        let start = end
            .checked_sub(Duration::from_secs_f64(elapsed.max(0.0)))
            .unwrap_or(end);
        let mut span = self
            .tracer
            .span_builder(operation.clone())
            .with_kind(SpanKind::Client)
            .with_start_time(start)
            .with_attributes([
                opentelemetry::KeyValue::new("db.system.name", "postgresql"),
                opentelemetry::KeyValue::new("db.operation.name", operation),
                opentelemetry::KeyValue::new("db.query.text", text),
            ])
            .start_with_context(&self.tracer, &parent);
        span.end_with_timestamp(end);
    }
}

/// Logs as JSON lines, one per event, to `writer`.
fn json_logs<S>(
    writer: impl for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer()
        .json()
        .event_format(WithTraceIds(
            tracing_subscriber::fmt::format()
                .json()
                .flatten_event(true)
                .with_current_span(false),
        ))
        .with_writer(writer)
        .boxed()
}

/// A JSON log line with the `trace_id` and `span_id` of the span it was written in, so the
/// lines of one request can be found from its trace and the other way round.
struct WithTraceIds<F>(F);

impl<S, N, F> tracing_subscriber::fmt::FormatEvent<S, N> for WithTraceIds<F>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
    F: tracing_subscriber::fmt::FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        // The innermost span the OpenTelemetry layer follows (it leaves the HTTP/2 stack's out),
        // or, without an exporter, the innermost span: the propagation layer follows every one.
        let ids = ctx.event_scope().and_then(|scope| {
            scope.into_iter().find_map(|span| {
                let extensions = span.extensions();
                if let Some(propagation::Propagated(context)) = extensions.get() {
                    return Some((context.trace_id(), context.span_id()));
                }
                let data = extensions.get::<tracing_opentelemetry::OtelData>()?;
                Some((data.trace_id()?, data.span_id()?))
            })
        });
        let Some((trace_id, span_id)) = ids else {
            return self.0.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.0.format_event(
            ctx,
            tracing_subscriber::fmt::format::Writer::new(&mut line),
            event,
        )?;
        // The line is one JSON object and a newline: the ids go in before its closing brace.
        match line.rfind('}') {
            Some(end) => write!(
                writer,
                "{},\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\"{}",
                &line[..end],
                &line[end..]
            ),
            None => writer.write_str(&line),
        }
    }
}

/// The resource of every span: `service` unless `OTEL_SERVICE_NAME` or
/// `OTEL_RESOURCE_ATTRIBUTES` name the service otherwise, and the replica as the events name it.
pub(crate) fn resource(service: &'static str) -> opentelemetry_sdk::Resource {
    let detected = opentelemetry_sdk::Resource::builder().build();
    let named = detected
        .get(&opentelemetry::Key::from_static_str("service.name"))
        .is_some_and(|name| name.as_str() != "unknown_service");
    let mut builder = opentelemetry_sdk::Resource::builder();
    if !named {
        builder = builder.with_service_name(service);
    }
    let instance = ["SANKALPA_INSTANCE_ID", "HOSTNAME"]
        .into_iter()
        .find_map(|name| std::env::var(name).ok());
    if let Some(instance) = instance {
        builder = builder.with_attribute(opentelemetry::KeyValue::new(
            "service.instance.id",
            instance,
        ));
    }
    builder.build()
}

/// An exporter that counts what it delivers and what it fails to, and says why it failed in
/// the log at most once per [`FAILURE_LOG_EVERY`]: a collector that is down would otherwise
/// either go unnoticed or fill the log.
#[derive(Debug)]
struct CountedExporter<E> {
    inner: E,
    last_logged: Mutex<Option<Instant>>,
    unlogged: AtomicU64,
}

impl<E> CountedExporter<E> {
    fn new(inner: E) -> Self {
        Self {
            inner,
            last_logged: Mutex::new(None),
            unlogged: AtomicU64::new(0),
        }
    }

    fn failed(&self, spans: u64, err: &opentelemetry_sdk::error::OTelSdkError) {
        metrics::counter!("otel_span_export_failures_total").increment(spans);
        let failures = self.unlogged.fetch_add(1, Ordering::Relaxed) + 1;
        let mut last = self
            .last_logged
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_none_or(|at| at.elapsed() >= FAILURE_LOG_EVERY) {
            *last = Some(Instant::now());
            self.unlogged.store(0, Ordering::Relaxed);
            tracing::warn!(
                error = %err,
                failed_exports = failures,
                "could not export spans to the OTLP collector"
            );
        }
    }
}

impl<E: SpanExporter> SpanExporter for CountedExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len() as u64;
        let result = self.inner.export(batch).await;
        match &result {
            Ok(()) => metrics::counter!("otel_spans_exported_total").increment(spans),
            Err(err) => self.failed(spans, err),
        }
        result
    }

    fn shutdown_with_timeout(&mut self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&mut self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.inner.set_resource(resource);
    }
}

/// Writes the current span's trace context into `carrier` (NATS headers).
pub fn inject(carrier: &mut dyn Injector) {
    inject_from(&tracing::Span::current(), carrier);
}

/// Writes `span`'s trace context into `carrier` (outgoing HTTP/2 headers, NATS headers).
pub fn inject_from(span: &tracing::Span, carrier: &mut dyn Injector) {
    use opentelemetry::trace::TraceContextExt;
    let mut context = span.context();
    // Without an exporter there is no OpenTelemetry layer: the propagation layer keeps it.
    if !context.has_active_span()
        && let Some(kept) = propagation::context_of(span)
    {
        context = opentelemetry::Context::new().with_remote_span_context(kept);
    }
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

/// Renames `span`'s trace span, once what names it is known (an HTTP route after routing). A
/// span field would do it only before the span is first entered.
pub fn set_name(span: &tracing::Span, name: String) {
    use opentelemetry::trace::TraceContextExt;
    span.context().span().update_name(name);
}

/// Marks `span` as failed in the trace, with `description` (a status code, an error kind).
pub fn set_error(span: &tracing::Span, description: impl Into<std::borrow::Cow<'static, str>>) {
    span.set_status(opentelemetry::trace::Status::error(description));
}

/// Makes `span` a child of the trace context found in `carrier`, if there is one.
pub fn adopt(span: &tracing::Span, carrier: &dyn Extractor) {
    use opentelemetry::trace::TraceContextExt;
    let parent =
        opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(carrier));
    let remote = parent.span().span_context().clone();
    // Without an exporter there is no OpenTelemetry layer: the propagation layer keeps it.
    if let Err(tracing_opentelemetry::SetParentError::LayerNotFound) = span.set_parent(parent)
        && remote.is_valid()
    {
        propagation::adopt(span, &remote);
    }
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

/// Writes trace context into outgoing HTTP headers (a gRPC request's).
pub struct HeaderInjector<'a>(pub &'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(key, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exporting(vars: &[(&str, &str)]) -> anyhow::Result<Option<Exporting>> {
        Exporting::from_lookup(Signal::Traces, |name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        })
    }

    #[test]
    fn the_traces_endpoint_wins_over_the_general_one_and_none_turns_export_off() {
        assert_eq!(exporting(&[]).unwrap(), None);
        assert_eq!(
            exporting(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317")]).unwrap(),
            Some(Exporting {
                endpoint: "http://collector:4317".to_owned(),
                protocol: Protocol::Grpc,
            })
        );
        assert_eq!(
            exporting(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:4317"),
            ])
            .unwrap()
            .unwrap()
            .endpoint,
            "http://traces:4317"
        );
        assert_eq!(
            exporting(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
                ("OTEL_TRACES_EXPORTER", "none"),
            ])
            .unwrap(),
            None
        );
    }

    /// Log lines written in memory.
    #[derive(Clone, Default)]
    struct Lines(std::sync::Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_log_line_inside_a_span_names_the_span_and_its_trace() {
        let lines = Lines::default();
        let provider = SdkTracerProvider::builder().build();
        let written = lines.clone();
        let subscriber = tracing_subscriber::registry()
            .with(json_logs(move || written.clone()))
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        let (trace_id, span_id) = tracing::subscriber::with_default(subscriber, || {
            tracing::info!("outside");
            let span = tracing::info_span!("request");
            let _entered = span.enter();
            tracing::info!(answer = 42, "inside");
            let context = span.context();
            let span_context = opentelemetry::trace::TraceContextExt::span(&context)
                .span_context()
                .clone();
            (span_context.trace_id(), span_context.span_id())
        });
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let parsed: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(parsed.len(), 2, "{text}");
        assert_eq!(parsed[0]["message"], "outside");
        assert!(parsed[0].get("trace_id").is_none(), "{text}");
        assert_eq!(parsed[1]["answer"], 42);
        assert_eq!(parsed[1]["trace_id"], trace_id.to_string(), "{text}");
        assert_eq!(parsed[1]["span_id"], span_id.to_string(), "{text}");
    }

    #[test]
    fn over_http_the_general_endpoint_gets_the_traces_path_and_the_traces_one_does_not() {
        assert_eq!(
            exporting(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ])
            .unwrap(),
            Some(Exporting {
                endpoint: "http://collector:4318/v1/traces".to_owned(),
                protocol: Protocol::HttpProtobuf,
            })
        );
        assert_eq!(
            exporting(&[
                (
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    "http://collector:4318/traces"
                ),
                ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
            ])
            .unwrap()
            .unwrap()
            .endpoint,
            "http://collector:4318/traces"
        );
    }

    #[test]
    fn a_protocol_or_exporter_the_services_cannot_speak_is_refused_at_start() {
        let refused = exporting(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ])
        .unwrap_err();
        assert!(
            refused.to_string().contains("OTEL_EXPORTER_OTLP_PROTOCOL"),
            "{refused}"
        );
        assert!(exporting(&[("OTEL_TRACES_EXPORTER", "zipkin")]).is_err());
    }

    /// The `traceparent` that [`inject_from`] writes for `span`: trace id, parent id, flags.
    fn traceparent_of(span: &tracing::Span) -> (String, String, String) {
        let mut carrier = std::collections::HashMap::new();
        inject_from(span, &mut carrier);
        let value = carrier
            .get("traceparent")
            .expect("a traceparent is written");
        let parts: Vec<&str> = value.split('-').collect();
        assert_eq!(parts.len(), 4, "{value}");
        assert_eq!(parts[0], "00", "{value}");
        (
            parts[1].to_owned(),
            parts[2].to_owned(),
            parts[3].to_owned(),
        )
    }

    #[test]
    fn without_an_exporter_a_span_passes_its_requests_trace_on_under_its_own_span_id() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let subscriber = tracing_subscriber::registry().with(propagation::Propagation::default());
        tracing::subscriber::with_default(subscriber, || {
            for flags in ["01", "00"] {
                let remote_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
                let remote_span = "00f067aa0ba902b7";
                let incoming = std::collections::HashMap::from([(
                    "traceparent".to_owned(),
                    format!("00-{remote_trace}-{remote_span}-{flags}"),
                )]);
                let request = tracing::info_span!("request");
                adopt(&request, &incoming);
                let call = request.in_scope(|| tracing::info_span!("call"));

                let (trace, request_id, request_flags) = traceparent_of(&request);
                let (call_trace, call_id, call_flags) = traceparent_of(&call);
                assert_eq!(
                    (trace.as_str(), request_flags.as_str()),
                    (remote_trace, flags)
                );
                assert_eq!(
                    (call_trace.as_str(), call_flags.as_str()),
                    (remote_trace, flags)
                );
                assert_ne!(request_id, remote_span);
                assert_ne!(call_id, request_id);
            }

            // A request without a traceparent starts a trace, sampled, that its calls carry.
            let root = tracing::info_span!("request");
            let call = root.in_scope(|| tracing::info_span!("call"));
            let (trace, root_id, flags) = traceparent_of(&root);
            let (call_trace, call_id, _) = traceparent_of(&call);
            assert_ne!(trace, "0".repeat(32));
            assert_eq!(flags, "01");
            assert_eq!(call_trace, trace);
            assert_ne!(call_id, root_id);
            let other = tracing::info_span!("request");
            assert_ne!(
                traceparent_of(&other).0,
                trace,
                "each root starts its own trace"
            );
        });
    }

    #[test]
    fn without_an_exporter_a_log_line_still_names_its_trace_and_span() {
        let lines = Lines::default();
        let written = lines.clone();
        let subscriber = tracing_subscriber::registry()
            .with(json_logs(move || written.clone()))
            .with(propagation::Propagation::default());
        let kept = tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request");
            let _entered = span.enter();
            tracing::info!("inside");
            propagation::context_of(&span).expect("the span keeps its context")
        });
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["trace_id"], kept.trace_id().to_string(), "{text}");
        assert_eq!(line["span_id"], kept.span_id().to_string(), "{text}");
    }
}
