//! Closed-loop load: `concurrency` workers, each sending its next operation as soon as the last
//! answered, for [`WARM_UP`] and then the measured duration. Every scenario and every floor is
//! driven by [`closed_loop`], so a scenario and the floor it is judged against are measured by
//! the same client code.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use reqwest::RequestBuilder;
use tokio::task::JoinSet;

/// How long each scenario runs at a concurrency before it is measured: the workers' first
/// connections, and the services' new pooled connections preparing their statements, are a
/// start-up cost, not the steady state a figure describes.
pub const WARM_UP: Duration = Duration::from_secs(1);

/// One worker's operation: a request, a query, a publish. An error is counted, not fatal.
pub trait Op: Send + 'static {
    fn call(&mut self) -> impl Future<Output = Result<(), String>> + Send;
}

/// What one scenario at one concurrency measured.
pub struct Report {
    pub latency_us: Histogram<u64>,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
}

impl Report {
    pub fn new() -> Self {
        Self {
            latency_us: new_histogram(),
            errors: 0,
            first_error: None,
            elapsed: Duration::ZERO,
        }
    }

    pub fn record(&mut self, took: Duration, outcome: Result<(), String>) {
        self.latency_us
            .saturating_record(took.as_micros().max(1) as u64);
        if let Err(err) = outcome {
            self.errors += 1;
            self.first_error.get_or_insert(err);
        }
    }

    pub fn throughput(&self) -> f64 {
        self.latency_us.len() as f64 / self.elapsed.as_secs_f64()
    }

    pub fn p50_us(&self) -> u64 {
        self.latency_us.value_at_quantile(0.50)
    }

    pub fn p99_us(&self) -> u64 {
        self.latency_us.value_at_quantile(0.99)
    }

    pub fn warn_of_errors(&self) {
        if let Some(err) = &self.first_error {
            eprintln!("bench: {} errors, the first: {err}", self.errors);
        }
    }
}

pub fn new_histogram() -> Histogram<u64> {
    // 1 us to 60 s at 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("constant histogram bounds are valid")
}

/// Runs `concurrency` workers made by `make`, each calling its operation in a loop, for
/// [`WARM_UP`] and then `duration`. Every call started after the warm-up is timed, failed ones
/// included.
pub async fn closed_loop<W: Op>(
    concurrency: usize,
    duration: Duration,
    mut make: impl FnMut() -> W,
) -> Result<Report> {
    let measured_from = Instant::now() + WARM_UP;
    let deadline = measured_from + duration;
    let mut workers = JoinSet::new();
    for _ in 0..concurrency {
        let mut op = make();
        workers.spawn(async move {
            let mut report = Report::new();
            while Instant::now() < deadline {
                let sent = Instant::now();
                let outcome = op.call().await;
                if sent >= measured_from {
                    report.record(sent.elapsed(), outcome);
                }
            }
            report
        });
    }
    let mut total = Report::new();
    while let Some(worker) = workers.join_next().await {
        let worker = worker.context("a bench worker panicked")?;
        total
            .latency_us
            .add(&worker.latency_us)
            .context("Failed to merge histograms")?;
        total.errors += worker.errors;
        if total.first_error.is_none() {
            total.first_error = worker.first_error;
        }
    }
    total.elapsed = measured_from.elapsed();
    total.warn_of_errors();
    Ok(total)
}

/// An HTTP server the workers connect to: its `host:port` and Host header.
pub struct HttpTarget {
    pub address: String,
    pub host: http::HeaderValue,
}

impl HttpTarget {
    pub fn new(address: String) -> Result<Self> {
        Ok(Self {
            host: http::HeaderValue::from_str(&address)?,
            address,
        })
    }
}

type Connection = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// A worker sending HTTP requests on one HTTP/1.1 connection of its own, as wrk does: the bench
/// shares the machine with the fleet it measures, and a pooled general-purpose client spent
/// about a third of the CPU the services got. The requests are built with reqwest (for its
/// builder) and sent with hyper.
pub struct HttpOp {
    target: Arc<HttpTarget>,
    request: Arc<dyn Fn() -> RequestBuilder + Send + Sync>,
    connection: Option<Connection>,
}

impl HttpOp {
    pub fn new(
        target: Arc<HttpTarget>,
        request: Arc<dyn Fn() -> RequestBuilder + Send + Sync>,
    ) -> Self {
        Self {
            target,
            request,
            connection: None,
        }
    }

    /// Sends the next request, on a new connection if there is none, and reads the whole
    /// answer; an error unless it is 2xx.
    async fn send(&mut self) -> Result<(), String> {
        let request = (self.request)().build().map_err(|err| err.to_string())?;
        let url = request.url();
        let target = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        let body = request
            .body()
            .and_then(reqwest::Body::as_bytes)
            .map(Bytes::copy_from_slice)
            .unwrap_or_default();
        let mut outgoing = http::Request::builder()
            .method(request.method().clone())
            .uri(target)
            .body(Full::new(body))
            .map_err(|err| err.to_string())?;
        *outgoing.headers_mut() = request.headers().clone();
        outgoing
            .headers_mut()
            .insert(http::header::HOST, self.target.host.clone());

        if self.connection.is_none() {
            self.connection = Some(connect(&self.target.address).await?);
        }
        let sender = self.connection.as_mut().expect("connected above");
        let response = sender
            .send_request(outgoing)
            .await
            .map_err(|err| err.to_string())?;
        let status = response.status();
        response
            .into_body()
            .collect()
            .await
            .map_err(|err| err.to_string())?;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("HTTP {status}"))
        }
    }
}

impl Op for HttpOp {
    async fn call(&mut self) -> Result<(), String> {
        let outcome = self.send().await;
        if outcome.is_err() {
            // The connection may be what failed: the next request opens a new one.
            self.connection = None;
        }
        outcome
    }
}

async fn connect(address: &str) -> Result<Connection, String> {
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .map_err(|err| format!("connecting to {address}: {err}"))?;
    stream.set_nodelay(true).map_err(|err| err.to_string())?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|err| err.to_string())?;
    tokio::spawn(connection);
    Ok(sender)
}
