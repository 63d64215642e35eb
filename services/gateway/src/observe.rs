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
    let method = request.method().clone();
    // Named, by the HTTP semantic conventions, `{method} {route}` once routing has matched a
    // route ([`MatchedRoute`]), and only `{method}` otherwise: a raw path holds ids.
    let span = tracing::info_span!(
        "http",
        otel.kind = "server",
        http.request.method = %method,
        url.path = %request.uri().path(),
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
    match response.extensions().get::<MatchedRoute>() {
        Some(MatchedRoute(route)) => {
            telemetry::set_name(&span, format!("{method} {route}"));
            telemetry::set_attribute(&span, "http.route", route.clone());
        }
        None => {
            telemetry::set_name(&span, method.to_string());
        }
    }
    telemetry::set_attribute(
        &span,
        "http.response.status_code",
        i64::from(status.as_u16()),
    );
    if status.is_server_error() {
        telemetry::set_error(&span, status.as_str().to_owned());
    }
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

/// The route a request matched, which [`crate::layers::measured`] puts on its response for
/// [`traced`] to name the span by.
#[derive(Debug, Clone)]
pub struct MatchedRoute(pub String);

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

/// Describes the gateway's metrics and registers those with a fixed set of labels at zero, so
/// a dashboard shows an idle gateway's refusals as 0 rather than no data.
pub fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_histogram};
    describe_counter!(
        "http_requests_total",
        "Requests that passed the rate limit and authentication, by route, method and status."
    );
    describe_histogram!(
        "http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer a request, by route, method and status."
    );
    describe_counter!(
        "gateway_rate_limited_total",
        "Requests refused (429) by the rate limit, by bucket (anonymous, principal, login)."
    );
    describe_counter!(
        "gateway_rate_limit_bypassed_total",
        "Requests let through unlimited because Redis did not answer in time."
    );
    describe_counter!(
        "gateway_login_refused_unlimited_total",
        "Logins and registrations refused (503) because their limit could not be checked."
    );
    describe_counter!(
        "gateway_auth_rejected_total",
        "Requests refused (401) for a missing, invalid, expired or revoked credential."
    );
    describe_counter!(
        "gateway_streams_closed_unauthenticated_total",
        "Event streams ended because their caller's credential expired or was revoked."
    );
    for bucket in ["anonymous", "principal", "login"] {
        metrics::counter!("gateway_rate_limited_total", "bucket" => bucket).increment(0);
    }
    for name in [
        "gateway_rate_limit_bypassed_total",
        "gateway_login_refused_unlimited_total",
        "gateway_auth_rejected_total",
        "gateway_streams_closed_unauthenticated_total",
    ] {
        metrics::counter!(name).increment(0);
    }
}
