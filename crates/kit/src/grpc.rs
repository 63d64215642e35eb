//! gRPC servers and clients, set up the same way in every service.
//!
//! [`serve`] adds what every server has besides its own API: the standard health protocol,
//! reflection (v1 and v1alpha) listing the services that server implements, a span per RPC
//! joined to the caller's trace, and request metrics. [`channel`] makes a client channel over
//! every replica of a peer service ([`peers`]), and [`traced`] one that carries the caller's
//! trace context.

pub mod peers;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic::transport::Endpoint;
use tonic::transport::server::TcpIncoming;

pub use self::peers::Peers;

use crate::shutdown::Draining;
use crate::telemetry;

/// Serves `routes` on `listener` until `shutdown` resolves, then lets RPCs in flight finish.
/// `services` are the fully qualified names health reports as SERVING, and NOT_SERVING (with
/// the server as a whole, `""`) once `draining` has started.
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    services: &[&str],
    draining: Draining,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    crate::metrics::handle();
    register_methods(services);
    let (reporter, health) = tonic_health::server::health_reporter();
    for service in services {
        reporter
            .set_service_status(*service, tonic_health::ServingStatus::Serving)
            .await;
    }
    let names: Vec<String> = std::iter::once("")
        .chain(services.iter().copied())
        .map(str::to_owned)
        .collect();
    let leaving = async move {
        draining.started().await;
        for name in names {
            reporter
                .set_service_status(name, tonic_health::ServingStatus::NotServing)
                .await;
        }
        std::future::pending::<()>().await;
    };
    let routes = routes
        .add_service(health)
        .add_service(reflection(services).build_v1()?)
        .add_service(reflection(services).build_v1alpha()?);
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let server = tonic::transport::Server::builder()
        .trace_fn(|request| {
            // Named and attributed by the RPC semantic conventions: `{service}/{method}`.
            let (name, service, method) = rpc_names(request.uri().path());
            let span = tracing::info_span!(
                "grpc",
                otel.name = name,
                otel.kind = "server",
                rpc.system = "grpc",
                rpc.service = service,
                rpc.method = method,
            );
            telemetry::adopt(&span, &telemetry::HeaderExtractor(request.headers()));
            span
        })
        .layer(tower::layer::layer_fn(|inner| RpcMetrics { inner }))
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, shutdown);
    tokio::select! {
        served = server => served?,
        () = leaving => {}
    }
    Ok(())
}

/// Reflection listing what this server implements: `services`, health and reflection itself
/// (both versions: many clients still ask v1alpha). Every `sankalpa.v1` file is registered, so
/// any of their types resolves, but a client browsing one service is not offered the others.
fn reflection(services: &[&str]) -> tonic_reflection::server::Builder<'static> {
    let builder = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(sankalpa_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
        .with_service_name("grpc.health.v1.Health")
        .with_service_name("grpc.reflection.v1.ServerReflection")
        .with_service_name("grpc.reflection.v1alpha.ServerReflection");
    services.iter().fold(builder, |builder, service| {
        builder.with_service_name(*service)
    })
}

/// Registers every method of `services` (fully qualified names) in the RPC metrics at zero, OK,
/// so a dashboard shows an idle method as 0 rather than nothing.
fn register_methods(services: &[&str]) {
    use prost::Message;
    metrics::describe_counter!(
        "grpc_server_requests_total",
        "RPCs served, by method (`rpc`, the path) and gRPC status code (`code`)."
    );
    metrics::describe_histogram!(
        "grpc_server_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time to serve an RPC, to its response headers, by method."
    );
    metrics::describe_counter!(
        "grpc_client_requests_total",
        "RPCs made to other services, by method (`rpc`) and gRPC status code (`code`)."
    );
    metrics::describe_counter!(
        "grpc_client_retries_total",
        "RPCs sent again to another replica because a connection to one was refused, by method."
    );
    metrics::describe_histogram!(
        "grpc_client_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time from an RPC's start to its response headers, as the caller sees it, by method."
    );
    let files = prost_types::FileDescriptorSet::decode(sankalpa_proto::FILE_DESCRIPTOR_SET)
        .expect("the compiled descriptor set decodes");
    for file in &files.file {
        for service in &file.service {
            let name = format!("{}.{}", file.package(), service.name());
            if !services.contains(&name.as_str()) {
                continue;
            }
            for method in &service.method {
                let rpc = format!("/{name}/{}", method.name());
                metrics::counter!("grpc_server_requests_total", "rpc" => rpc.clone(), "code" => "0")
                    .increment(0);
                // Looking a histogram up registers it; it is rendered, empty, until its first sample.
                let _ = metrics::histogram!("grpc_server_request_duration_seconds", "rpc" => rpc);
            }
        }
    }
}

/// The end of an RPC a measurement is taken at.
#[derive(Clone, Copy)]
enum End {
    Server,
    Client,
}

/// Records how the RPC `rpc` (its path), started at `started`, ended: its status code on the
/// current span (in error as the semantic conventions say) and in the metrics of `end`.
fn finished<R, E>(
    end: End,
    rpc: String,
    response: &Result<http::Response<R>, E>,
    started: Instant,
) {
    // Errors come back as trailers-only responses, with the code in the headers; a streaming or
    // successful answer has none there and counts as OK. No response at all is, for a client,
    // a server it could not reach (UNAVAILABLE), for a server, a failure of its own (UNKNOWN).
    let code = match response {
        Ok(response) => response
            .headers()
            .get("grpc-status")
            .and_then(|value| value.to_str().ok())
            .unwrap_or("0")
            .to_owned(),
        Err(_) => match end {
            End::Server => "2".to_owned(),
            End::Client => "14".to_owned(),
        },
    };
    let span = tracing::Span::current();
    if let Ok(number) = code.parse::<i64>() {
        telemetry::set_attribute(&span, "rpc.grpc.status_code", number);
    }
    // A client's span is in error for every code but OK; a server's only for the codes that are
    // its own fault: UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS.
    let failed = match end {
        End::Client => code != "0",
        End::Server => matches!(code.as_str(), "2" | "4" | "12" | "13" | "14" | "15"),
    };
    if failed {
        telemetry::set_error(&span, format!("gRPC status {code}"));
    }
    let (requests, duration) = match end {
        End::Server => (
            "grpc_server_requests_total",
            "grpc_server_request_duration_seconds",
        ),
        End::Client => (
            "grpc_client_requests_total",
            "grpc_client_request_duration_seconds",
        ),
    };
    metrics::counter!(requests, "rpc" => rpc.clone(), "code" => code).increment(1);
    metrics::histogram!(duration, "rpc" => rpc).record(started.elapsed().as_secs_f64());
}

/// The `{service}/{method}` of an RPC's path, the service, and the method.
fn rpc_names(path: &str) -> (&str, &str, &str) {
    let name = path.trim_start_matches('/');
    let (service, method) = name.split_once('/').unwrap_or((name, ""));
    (name, service, method)
}

/// Counts RPCs and their latency, per method and status code.
#[derive(Clone)]
pub struct RpcMetrics<S> {
    inner: S,
}

impl<S, B, R> tower::Service<http::Request<B>> for RpcMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let rpc = request.uri().path().to_owned();
        let started = Instant::now();
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await;
            finished(End::Server, rpc, &response, started);
            response
        })
    }
}

/// A lazily connecting channel to the service at `url` (`http://host:port`, or several
/// comma-separated): RPCs fail with UNAVAILABLE while the peer is down rather than failing the
/// caller's start. One IP address makes a plain channel; a name, or several URLs, make a
/// channel that balances each request over every replica they give ([`peers`]).
pub fn channel(url: &str) -> anyhow::Result<Peers> {
    let targets = url
        .split(',')
        .map(str::trim)
        .filter(|one| !one.is_empty())
        .map(peers::Target::parse)
        .collect::<anyhow::Result<Vec<_>>>()?;
    match targets.as_slice() {
        [] => anyhow::bail!("no gRPC endpoint in {url:?}"),
        [peers::Target::Address(address)] => Ok(Peers::single(&endpoint(*address))),
        _ => Ok(Peers::watch(
            targets,
            std::sync::Arc::new(peers::SystemResolver),
            peers::Probing::from_env()?,
            endpoint,
        )),
    }
}

/// The settings of every connection to a peer.
fn endpoint(address: std::net::SocketAddr) -> Endpoint {
    Endpoint::from_shared(format!("http://{address}"))
        .expect("a socket address makes a valid URL")
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true)
}

/// A client channel that carries the caller's trace to the server and measures each call: a
/// client span per RPC (named and attributed like the server's, of kind client) whose context
/// goes out in the request's `traceparent`, and `grpc_client_requests_total` and
/// `grpc_client_request_duration_seconds` by method and status code, timed to the response's
/// headers.
pub type TracedChannel = Traced<Peers>;

/// Wraps `channel` into a [`TracedChannel`].
pub fn traced(channel: Peers) -> TracedChannel {
    Traced { inner: channel }
}

#[derive(Clone, Debug)]
pub struct Traced<S> {
    inner: S,
}

impl<S, B, R> tower::Service<http::Request<B>> for Traced<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        use tracing::Instrument;
        let rpc = request.uri().path().to_owned();
        let (name, service, method) = rpc_names(&rpc);
        let span = tracing::info_span!(
            "grpc.client",
            otel.name = name,
            otel.kind = "client",
            rpc.system = "grpc",
            rpc.service = service,
            rpc.method = method,
        );
        telemetry::inject_from(&span, &mut telemetry::HeaderInjector(request.headers_mut()));
        let started = Instant::now();
        let response = span.in_scope(|| self.inner.call(request));
        Box::pin(
            async move {
                let response = response.await;
                finished(End::Client, rpc, &response, started);
                response
            }
            .instrument(span),
        )
    }
}

/// Whether a call failed because its connection did, not by the peer's answer: refused or
/// timed out connecting is UNAVAILABLE, a reset UNKNOWN, and a connection that died under the
/// call CANCELLED (hyper's "operation was canceled"), as tonic reports each. The same call may
/// succeed once the peer is back.
pub fn connection_lost(code: tonic::Code) -> bool {
    matches!(
        code,
        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
    )
}

/// A time as the wire carries it.
pub fn timestamp(at: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// Binds `addr` (port 0 picks a free one, as tests do).
pub async fn bind(addr: std::net::SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|err| anyhow::anyhow!("could not listen on {addr}: {err}"))
}
