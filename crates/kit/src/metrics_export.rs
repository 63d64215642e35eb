//! Metrics over OTLP, beside `/metrics`, for a collector that receives rather than scrapes.
//!
//! On when the standard variables ask for it: `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_ENDPOINT` set, and `OTEL_METRICS_EXPORTER` not `none` (the same endpoint
//! as the spans', unless the metrics one says otherwise; gRPC or HTTP/protobuf as
//! `OTEL_EXPORTER_OTLP[_METRICS]_PROTOCOL` says). Every `OTEL_METRIC_EXPORT_INTERVAL` (60 s), and
//! once more as the service stops, the process's metrics are taken from the one recorder that
//! `/metrics` renders — the same names, labels and values, so a dashboard reads either — and
//! sent as cumulative OTLP data points: counters as monotonic sums, gauges as gauges, histograms
//! with their buckets, summaries with their quantiles. Each export waits at most
//! `OTEL_METRIC_EXPORT_TIMEOUT` (30 s); one that fails is counted in
//! `otel_metric_export_failures_total`, logged at most once per
//! [`FAILURE_LOG_EVERY`](crate::telemetry::FAILURE_LOG_EVERY), and not retried: the next one
//! carries the totals anyway. `OTEL_EXPORTER_OTLP[_METRICS]_HEADERS` (`key=value,...`) are sent
//! with each export.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint, metric, number_data_point,
    summary_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use tokio_util::sync::CancellationToken;

use crate::exposition::{Family, Kind, Labels};
use crate::telemetry::{Exporting, FAILURE_LOG_EVERY, Protocol, Signal};

/// Where and how often metrics go.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsExporting {
    pub target: Exporting,
    pub interval: Duration,
    pub timeout: Duration,
    pub headers: Vec<(String, String)>,
}

impl MetricsExporting {
    /// The export the standard `OTEL_*` variables ask for, `None` when they ask for none.
    pub fn from_env() -> anyhow::Result<Option<Self>> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    fn from_lookup(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<Option<Self>> {
        let Some(target) = Exporting::from_lookup(Signal::Metrics, &var)? else {
            return Ok(None);
        };
        let millis = |name: &str, default: u64| -> anyhow::Result<Duration> {
            match var(name).filter(|value| !value.trim().is_empty()) {
                None => Ok(Duration::from_millis(default)),
                Some(value) => match value.trim().parse::<u64>() {
                    Ok(millis) if millis > 0 => Ok(Duration::from_millis(millis)),
                    _ => anyhow::bail!("{name}={value:?}: a positive number of milliseconds"),
                },
            }
        };
        let headers = var("OTEL_EXPORTER_OTLP_METRICS_HEADERS")
            .or_else(|| var("OTEL_EXPORTER_OTLP_HEADERS"))
            .unwrap_or_default();
        Ok(Some(Self {
            target,
            interval: millis("OTEL_METRIC_EXPORT_INTERVAL", 60_000)?,
            timeout: millis("OTEL_METRIC_EXPORT_TIMEOUT", 30_000)?,
            headers: parse_headers(&headers)?,
        }))
    }
}

/// `key=value,key2=value2`, values percent-decoded as the specification says.
fn parse_headers(text: &str) -> anyhow::Result<Vec<(String, String)>> {
    text.split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("OTLP header {pair:?} is not key=value"))?;
            Ok((key.trim().to_owned(), percent_decode(value.trim())))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let hex = |offset: usize| {
            bytes
                .get(at + offset)
                .and_then(|byte| (*byte as char).to_digit(16))
        };
        match (bytes[at], hex(1), hex(2)) {
            (b'%', Some(high), Some(low)) => {
                decoded.push((high * 16 + low) as u8);
                at += 3;
            }
            (byte, ..) => {
                decoded.push(byte);
                at += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// The export task; [`shutdown`](Self::shutdown) sends what the counters say last.
pub struct MetricsExport {
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
    now: tokio::sync::mpsc::Sender<tokio::sync::oneshot::Sender<()>>,
}

impl MetricsExport {
    /// Starts exporting the process's metrics, under the resource of `service`'s spans. Call it
    /// inside the Tokio runtime.
    pub fn start(service: &'static str, exporting: MetricsExporting) -> Self {
        crate::metrics::handle();
        let resource = resource(&crate::telemetry::resource(service));
        let stop = CancellationToken::new();
        let (now, mut asked) = tokio::sync::mpsc::channel::<tokio::sync::oneshot::Sender<()>>(4);
        let task = tokio::spawn({
            let stop = stop.clone();
            async move {
                let mut exporter = Exporter::new(exporting, resource);
                let mut ticks = tokio::time::interval(exporter.exporting.interval);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                ticks.tick().await;
                loop {
                    tokio::select! {
                        () = stop.cancelled() => {
                            exporter.export().await;
                            return;
                        }
                        _ = ticks.tick() => exporter.export().await,
                        Some(done) = asked.recv() => {
                            exporter.export().await;
                            let _ = done.send(());
                        }
                    }
                }
            }
        });
        Self {
            stop,
            task: Some(task),
            now,
        }
    }

    /// Exports now, and waits until the collector has answered (or the export failed).
    pub async fn flush(&self) {
        let (done, exported) = tokio::sync::oneshot::channel();
        if self.now.send(done).await.is_ok() {
            let _ = exported.await;
        }
    }

    /// Exports once more and stops.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for MetricsExport {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

struct Exporter {
    exporting: MetricsExporting,
    resource: Resource,
    /// When the counters started: the process's telemetry start.
    started_ns: u64,
    grpc: Option<MetricsServiceClient<tonic::transport::Channel>>,
    http: Option<reqwest::Client>,
    last_logged: Option<Instant>,
    unlogged: u64,
}

impl Exporter {
    fn new(exporting: MetricsExporting, resource: Resource) -> Self {
        Self {
            exporting,
            resource,
            started_ns: unix_nanos(),
            grpc: None,
            http: None,
            last_logged: None,
            unlogged: 0,
        }
    }

    async fn export(&mut self) {
        crate::metrics::observe_process();
        let text = crate::metrics::render();
        let request = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(self.resource.clone()),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name: "sankalpa".to_owned(),
                        version: env!("CARGO_PKG_VERSION").to_owned(),
                        ..Default::default()
                    }),
                    metrics: to_otlp(
                        &crate::exposition::families(&text),
                        self.started_ns,
                        unix_nanos(),
                    ),
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        };
        let timeout = self.exporting.timeout;
        match tokio::time::timeout(timeout, self.send(request)).await {
            Ok(Ok(())) => metrics::counter!("otel_metric_exports_total").increment(1),
            Ok(Err(err)) => self.failed(&err),
            Err(_) => self.failed(&format!("no answer within {timeout:?}")),
        }
    }

    async fn send(&mut self, request: ExportMetricsServiceRequest) -> Result<(), String> {
        let target = &self.exporting.target;
        match target.protocol {
            Protocol::Grpc => {
                if self.grpc.is_none() {
                    let channel = tonic::transport::Endpoint::from_shared(target.endpoint.clone())
                        .map_err(|err| err.to_string())?
                        .connect_lazy();
                    self.grpc = Some(MetricsServiceClient::new(channel));
                }
                let mut call = tonic::Request::new(request);
                for (key, value) in &self.exporting.headers {
                    let key = tonic::metadata::MetadataKey::from_bytes(key.as_bytes())
                        .map_err(|err| err.to_string())?;
                    let value = value.parse().map_err(|_| "an invalid header value")?;
                    call.metadata_mut().insert(key, value);
                }
                let client = self.grpc.as_mut().expect("just made");
                let answer = client
                    .export(call)
                    .await
                    .map_err(|status| status.message().to_owned())?;
                match answer.into_inner().partial_success {
                    Some(partial) if partial.rejected_data_points > 0 => Err(format!(
                        "the collector rejected {} data points: {}",
                        partial.rejected_data_points, partial.error_message
                    )),
                    _ => Ok(()),
                }
            }
            Protocol::HttpProtobuf => {
                let client = self.http.get_or_insert_with(reqwest::Client::new);
                let mut call = client
                    .post(&target.endpoint)
                    .header("content-type", "application/x-protobuf")
                    .body(request.encode_to_vec());
                for (key, value) in &self.exporting.headers {
                    call = call.header(key, value);
                }
                let answer = call.send().await.map_err(|err| err.to_string())?;
                if answer.status().is_success() {
                    Ok(())
                } else {
                    Err(format!("the collector answered {}", answer.status()))
                }
            }
        }
    }

    fn failed(&mut self, err: &str) {
        metrics::counter!("otel_metric_export_failures_total").increment(1);
        self.unlogged += 1;
        if self
            .last_logged
            .is_none_or(|at| at.elapsed() >= FAILURE_LOG_EVERY)
        {
            self.last_logged = Some(Instant::now());
            tracing::warn!(error = %err, failed_exports = self.unlogged,
                "could not export metrics to the OTLP collector");
            self.unlogged = 0;
        }
    }
}

fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
        })
}

fn resource(resource: &opentelemetry_sdk::Resource) -> Resource {
    Resource {
        attributes: resource
            .iter()
            .map(|(key, value)| attribute(key.as_str(), value.as_str().into_owned()))
            .collect(),
        ..Default::default()
    }
}

fn attribute(key: &str, value: String) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
    }
}

fn attributes(labels: &Labels) -> Vec<KeyValue> {
    labels
        .iter()
        .map(|(key, value)| attribute(key, value.clone()))
        .collect()
}

/// The families of one render as OTLP metrics, cumulative since `start_ns`, observed at `now_ns`.
pub fn to_otlp(families: &[Family], start_ns: u64, now_ns: u64) -> Vec<Metric> {
    let number = |labels: &Labels, value: f64| NumberDataPoint {
        attributes: attributes(labels),
        start_time_unix_nano: start_ns,
        time_unix_nano: now_ns,
        value: Some(number_data_point::Value::AsDouble(value)),
        ..Default::default()
    };
    let cumulative = AggregationTemporality::Cumulative as i32;
    families
        .iter()
        .map(|family| {
            let data = match family.kind {
                Kind::Counter => metric::Data::Sum(Sum {
                    data_points: family
                        .samples
                        .iter()
                        .map(|(_, labels, value)| number(labels, *value))
                        .collect(),
                    aggregation_temporality: cumulative,
                    is_monotonic: true,
                }),
                Kind::Gauge | Kind::Untyped => metric::Data::Gauge(Gauge {
                    data_points: family
                        .samples
                        .iter()
                        .map(|(_, labels, value)| number(labels, *value))
                        .collect(),
                }),
                Kind::Histogram => metric::Data::Histogram(Histogram {
                    data_points: histogram_points(family, start_ns, now_ns),
                    aggregation_temporality: cumulative,
                }),
                Kind::Summary => metric::Data::Summary(Summary {
                    data_points: summary_points(family, start_ns, now_ns),
                }),
            };
            Metric {
                name: family.name.clone(),
                description: family.help.clone(),
                data: Some(data),
                ..Default::default()
            }
        })
        .collect()
}

/// A label set without `label` (a histogram's `le`, a summary's `quantile`), and its value.
fn split_off(labels: &Labels, label: &str) -> (Labels, Option<String>) {
    let mut rest = Labels::new();
    let mut taken = None;
    for (key, value) in labels {
        if key == label {
            taken = Some(value.clone());
        } else {
            rest.push((key.clone(), value.clone()));
        }
    }
    (rest, taken)
}

/// Prometheus buckets count everything up to their bound (`le`); OTLP's count what falls
/// between two bounds, with one more bucket past the last bound.
fn histogram_points(family: &Family, start_ns: u64, now_ns: u64) -> Vec<HistogramDataPoint> {
    #[derive(Default)]
    struct Series {
        buckets: Vec<(f64, f64)>,
        sum: f64,
        count: f64,
    }
    let mut series: BTreeMap<Labels, Series> = BTreeMap::new();
    for (name, labels, value) in &family.samples {
        let suffix = &name[family.name.len().min(name.len())..];
        let (rest, le) = split_off(labels, "le");
        let entry = series.entry(rest).or_default();
        match (suffix, le) {
            ("_bucket", Some(le)) => {
                let bound = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap_or(f64::NAN)
                };
                if !bound.is_nan() {
                    entry.buckets.push((bound, *value));
                }
            }
            ("_sum", _) => entry.sum = *value,
            ("_count", _) => entry.count = *value,
            _ => {}
        }
    }
    series
        .into_iter()
        .map(|(labels, mut series)| {
            series.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            let explicit_bounds: Vec<f64> = series
                .buckets
                .iter()
                .map(|(bound, _)| *bound)
                .filter(|bound| bound.is_finite())
                .collect();
            let mut bucket_counts = Vec::with_capacity(explicit_bounds.len() + 1);
            let mut below = 0.0;
            for (bound, cumulative) in &series.buckets {
                if bound.is_finite() {
                    bucket_counts.push((cumulative - below).max(0.0) as u64);
                    below = *cumulative;
                }
            }
            bucket_counts.push((series.count - below).max(0.0) as u64);
            HistogramDataPoint {
                attributes: attributes(&labels),
                start_time_unix_nano: start_ns,
                time_unix_nano: now_ns,
                count: series.count as u64,
                sum: Some(series.sum),
                bucket_counts,
                explicit_bounds,
                ..Default::default()
            }
        })
        .collect()
}

fn summary_points(family: &Family, start_ns: u64, now_ns: u64) -> Vec<SummaryDataPoint> {
    let mut series: BTreeMap<Labels, SummaryDataPoint> = BTreeMap::new();
    for (name, labels, value) in &family.samples {
        let suffix = &name[family.name.len().min(name.len())..];
        let (rest, quantile) = split_off(labels, "quantile");
        let point = series
            .entry(rest.clone())
            .or_insert_with(|| SummaryDataPoint {
                attributes: attributes(&rest),
                start_time_unix_nano: start_ns,
                time_unix_nano: now_ns,
                ..Default::default()
            });
        match (suffix, quantile.and_then(|q| q.parse::<f64>().ok())) {
            ("", Some(quantile)) => {
                point
                    .quantile_values
                    .push(summary_data_point::ValueAtQuantile {
                        quantile,
                        value: *value,
                    })
            }
            ("_sum", _) => point.sum = *value,
            ("_count", _) => point.count = *value as u64,
            _ => {}
        }
    }
    series.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point_value(point: &NumberDataPoint) -> f64 {
        match point.value {
            Some(number_data_point::Value::AsDouble(value)) => value,
            _ => f64::NAN,
        }
    }

    #[test]
    fn a_render_becomes_sums_gauges_and_histograms_with_per_bucket_counts() {
        let text = "# HELP req_total Requests.\n# TYPE req_total counter\n\
            req_total{code=\"0\"} 5\nreq_total{code=\"14\"} 0\n\
            # TYPE up gauge\nup 1\n\
            # TYPE lat_seconds histogram\n\
            lat_seconds_bucket{rpc=\"a\",le=\"0.1\"} 2\n\
            lat_seconds_bucket{rpc=\"a\",le=\"1\"} 5\n\
            lat_seconds_bucket{rpc=\"a\",le=\"+Inf\"} 6\n\
            lat_seconds_sum{rpc=\"a\"} 3.5\nlat_seconds_count{rpc=\"a\"} 6\n\
            # TYPE size summary\n\
            size{quantile=\"0.5\"} 10\nsize{quantile=\"0.99\"} 40\nsize_sum 100\nsize_count 8\n";
        let metrics = to_otlp(&crate::exposition::families(text), 1, 2);
        let names: Vec<&str> = metrics.iter().map(|metric| metric.name.as_str()).collect();
        assert_eq!(names, ["req_total", "up", "lat_seconds", "size"]);
        assert_eq!(metrics[0].description, "Requests.");
        let Some(metric::Data::Sum(sum)) = &metrics[0].data else {
            panic!("a counter is a sum: {:?}", metrics[0]);
        };
        assert!(sum.is_monotonic);
        assert_eq!(sum.aggregation_temporality, 2);
        let values: Vec<f64> = sum.data_points.iter().map(point_value).collect();
        assert_eq!(values, [5.0, 0.0]);
        assert_eq!(sum.data_points[0].start_time_unix_nano, 1);
        let Some(metric::Data::Gauge(gauge)) = &metrics[1].data else {
            panic!("a gauge: {:?}", metrics[1]);
        };
        assert_eq!(point_value(&gauge.data_points[0]), 1.0);
        let Some(metric::Data::Histogram(histogram)) = &metrics[2].data else {
            panic!("a histogram: {:?}", metrics[2]);
        };
        let point = &histogram.data_points[0];
        assert_eq!(point.explicit_bounds, [0.1, 1.0]);
        assert_eq!(point.bucket_counts, [2, 3, 1]);
        assert_eq!((point.count, point.sum), (6, Some(3.5)));
        assert_eq!(point.attributes.len(), 1, "le is not an attribute");
        let Some(metric::Data::Summary(summary)) = &metrics[3].data else {
            panic!("a summary: {:?}", metrics[3]);
        };
        let point = &summary.data_points[0];
        assert_eq!((point.count, point.sum), (8, 100.0));
        assert_eq!(point.quantile_values.len(), 2);
    }

    #[test]
    fn the_metrics_endpoint_interval_and_headers_come_from_the_standard_variables() {
        let lookup = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| (*value).to_owned())
            }
        };
        assert_eq!(MetricsExporting::from_lookup(lookup(&[])).unwrap(), None);
        let exporting = MetricsExporting::from_lookup(lookup(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "5000"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=a%20b, team=x"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            exporting.target.endpoint,
            "http://collector:4318/v1/metrics"
        );
        assert_eq!(exporting.interval, Duration::from_secs(5));
        assert_eq!(exporting.timeout, Duration::from_secs(30));
        assert_eq!(
            exporting.headers,
            [
                ("api-key".to_owned(), "a b".to_owned()),
                ("team".to_owned(), "x".to_owned())
            ]
        );
        let off = MetricsExporting::from_lookup(lookup(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
            ("OTEL_METRICS_EXPORTER", "none"),
        ]));
        assert_eq!(off.unwrap(), None);
        assert!(
            MetricsExporting::from_lookup(lookup(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
                ("OTEL_METRIC_EXPORT_INTERVAL", "soon"),
            ]))
            .is_err()
        );
    }
}
