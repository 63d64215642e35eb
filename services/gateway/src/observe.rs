//! What every response carries and what every request leaves behind: a tracing span joined to
//! the caller's trace, request metrics by route, and the security headers of an API. The
//! layers of [`crate::layers`] call these.

use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use sankalpa_kit::telemetry;
use tracing::Instrument;

/// Runs `inner` on `request` in a span of its own, child of the incoming `traceparent` when
/// there is one, so the calls the gateway makes to the services show up under the caller's
/// trace. The status and the caller's tenant ([`CallerTenant`], left on the response by
/// authentication) go to the trace as attributes and into the log line of a failed request:
/// recording them as span fields would make the JSON log layer re-format the span's fields on
/// every request.
pub async fn traced<F, Fut>(request: Request, inner: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let span = tracing::info_span!(
        "http",
        method = %request.method(),
        path = %request.uri().path(),
        request_id,
    );
    telemetry::adopt(&span, &telemetry::HeaderExtractor(request.headers()));
    let started = Instant::now();
    let response = inner(request).instrument(span.clone()).await;
    let status = response.status();
    let tenant = response
        .extensions()
        .get::<CallerTenant>()
        .map_or("", |tenant| tenant.0.as_str());
    telemetry::set_attribute(
        &span,
        "http.response.status_code",
        i64::from(status.as_u16()),
    );
    if !tenant.is_empty() {
        telemetry::set_attribute(&span, "tenant", tenant.to_owned());
    }
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::warn!(
                status = status.as_u16(),
                tenant,
                elapsed_ms,
                "request failed"
            );
        } else {
            tracing::debug!(status = status.as_u16(), tenant, elapsed_ms, "request done");
        }
    });
    response
}

/// The tenant of an authenticated request, which authentication puts on its response for
/// [`trace`].
#[derive(Debug, Clone)]
pub struct CallerTenant(pub String);

/// Counts a request in `http_requests_total` and `http_request_duration_seconds`, by matched
/// route (not raw path, so ids do not explode the label set), method and status.
pub fn record_request(route: &str, method: &Method, status: StatusCode, started: Instant) {
    let elapsed = started.elapsed().as_secs_f64();
    let labels = [
        ("route", route.to_owned()),
        ("method", method.as_str().to_owned()),
        ("status", status.as_str().to_owned()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(elapsed);
}

/// The headers of an API that no browser should sniff, frame, or run scripts from. A route
/// serving a page (the docs) sets its own Content-Security-Policy, which is kept.
pub fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'none'; frame-ancestors 'none'",
        ));
    response
}
