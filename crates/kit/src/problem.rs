//! Errors across the REST/gRPC boundary: RFC 9457 problem+json on one side, `tonic::Status` on
//! the other, mapped here and nowhere else.
//!
//! Details travel over gRPC in the standard rich error model (`google.rpc.Status` in the
//! `grpc-status-details-bin` trailer, read by any gRPC client's error-details support): a
//! validation error is INVALID_ARGUMENT with a `BadRequest` of field violations, so the gateway
//! can name the field in the problem's `errors` without parsing messages. A version conflict
//! ([`version_conflict`], ABORTED) carries an `ErrorInfo` with reason [`VERSION_CONFLICT`] and
//! the current version, which becomes the problem's `current_version`, so a client can retry its
//! compare-and-set without a second read. A tenant's quota running out is RESOURCE_EXHAUSTED
//! with an `ErrorInfo` of reason [`QUOTA_EXCEEDED`] carrying the [`Quota`] and a `RetryInfo`,
//! which becomes a 429 with the RateLimit-* headers and Retry-After.
//!
//! Upstream failures map to what a client can act on: UNAVAILABLE, an overloaded service
//! (RESOURCE_EXHAUSTED without a quota) and a call that broke in transport (a connection reset
//! while the peer restarts) are 503 with Retry-After; DEADLINE_EXCEEDED is 504; 500 is left for
//! what is a bug.
//!
//! A problem's `type` is a URI reference relative to the API (`/problems/not-found`), so it
//! resolves on whatever host answered; the gateway serves a page for each of [`PROBLEM_TYPES`]
//! there.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use utoipa::ToSchema;

/// The `ErrorInfo.domain` of every reason below.
pub const ERROR_DOMAIN: &str = "sankalpa.dev";
/// `ErrorInfo.reason` of an ABORTED compare-and-set; metadata `current_version`, the version
/// the thing has now (0: absent).
pub const VERSION_CONFLICT: &str = "VERSION_CONFLICT";
/// `ErrorInfo.reason` of a RESOURCE_EXHAUSTED that is a tenant's quota; metadata `limit`,
/// `remaining` and `reset` (seconds until room frees up).
pub const QUOTA_EXCEEDED: &str = "QUOTA_EXCEEDED";
/// Where the pages describing each problem type live, relative to the API's root.
pub const TYPE_PREFIX: &str = "/problems/";
/// How soon a client may retry a call that found a service unavailable, in seconds.
const UNAVAILABLE_RETRY_AFTER: u64 = 1;

/// Where a caller stands against one of its limits (IETF draft httpapi-ratelimit-headers): a
/// rate limit of the gateway, or a tenant's quota of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub limit: u64,
    pub remaining: u64,
    /// Seconds until room frees up.
    pub reset: u64,
}

impl Quota {
    /// RESOURCE_EXHAUSTED saying `message` and carrying this quota, which the gateway answers as
    /// a 429 with the RateLimit-* headers and Retry-After.
    pub fn exceeded(self, message: impl Into<String>) -> Status {
        let metadata = HashMap::from([
            ("limit".to_owned(), self.limit.to_string()),
            ("remaining".to_owned(), self.remaining.to_string()),
            ("reset".to_owned(), self.reset.to_string()),
        ]);
        let mut details = ErrorDetails::new();
        details
            .set_error_info(QUOTA_EXCEEDED, ERROR_DOMAIN, metadata)
            .set_retry_info(Some(std::time::Duration::from_secs(self.reset)));
        Status::with_error_details(Code::ResourceExhausted, message, details)
    }

    /// The quota a status carries, if it is a quota's refusal.
    pub fn of(status: &Status) -> Option<Self> {
        let info = error_info(status, QUOTA_EXCEEDED)?;
        let number = |key: &str| info.metadata.get(key)?.parse::<u64>().ok();
        Some(Self {
            limit: number("limit")?,
            remaining: number("remaining")?,
            reset: number("reset")?,
        })
    }

    /// The RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset headers.
    pub fn set_headers(&self, headers: &mut HeaderMap) {
        headers.insert("ratelimit-limit", HeaderValue::from(self.limit));
        headers.insert("ratelimit-remaining", HeaderValue::from(self.remaining));
        headers.insert("ratelimit-reset", HeaderValue::from(self.reset));
    }
}

/// A kind of problem the API answers, described for people on the page at its `type` URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProblemType {
    /// The last segment of the `type` URI.
    pub slug: &'static str,
    pub status: u16,
    pub title: &'static str,
    /// What happened and what the client can do about it.
    pub description: &'static str,
}

/// Every problem type a Sankalpa API answers: one per status [`http_status`] maps to and the
/// gateway answers by itself, and `data-loss`. A test keeps the list complete.
pub const PROBLEM_TYPES: &[ProblemType] = &[
    ProblemType {
        slug: "bad-request",
        status: 400,
        title: "Bad Request",
        description: "The request does not fit the API: a field out of its bounds, of the wrong \
            type or missing, a body that is not JSON, a bad path or query parameter. `errors[]` \
            names each invalid field (`field`, `message`) when the fault is in fields. Fix the \
            request; sending it again unchanged gives the same answer.",
    },
    ProblemType {
        slug: "unauthorized",
        status: 401,
        title: "Unauthorized",
        description: "No credential, or one that is not valid: an access token that is expired, \
            revoked (logout, a role change, the user deleted) or not signed by auth, or an API key \
            that is unknown, expired or revoked. Log in again, refresh the token, or use another key.",
    },
    ProblemType {
        slug: "forbidden",
        status: 403,
        title: "Forbidden",
        description: "The caller is known but lacks the permission the operation needs (the \
            detail names it), or the operation is not open to its kind of credential.",
    },
    ProblemType {
        slug: "not-found",
        status: 404,
        title: "Not Found",
        description: "No such route, or no such thing in the caller's tenant. Another tenant's \
            things are not found either: their existence is not disclosed.",
    },
    ProblemType {
        slug: "method-not-allowed",
        status: 405,
        title: "Method Not Allowed",
        description: "The route exists but not with this method; `Allow` lists the methods it takes.",
    },
    ProblemType {
        slug: "conflict",
        status: 409,
        title: "Conflict",
        description: "The request conflicts with the current state: the name or email is taken, or \
            a compare-and-set found another version, in which case `current_version` is the \
            version now (0: absent). Read again, then retry with that version.",
    },
    ProblemType {
        slug: "payload-too-large",
        status: 413,
        title: "Payload Too Large",
        description: "The request body is over the gateway's body limit (1 MiB by default, \
            `SANKALPA_BODY_LIMIT_BYTES`). Send less, or split the write.",
    },
    ProblemType {
        slug: "unsupported-media-type",
        status: 415,
        title: "Unsupported Media Type",
        description: "A JSON body was sent without `Content-Type: application/json`.",
    },
    ProblemType {
        slug: "unprocessable-entity",
        status: 422,
        title: "Unprocessable Entity",
        description: "The request is well formed but the state does not allow it now (a failed \
            precondition), such as cancelling a run that already ended.",
    },
    ProblemType {
        slug: "too-many-requests",
        status: 429,
        title: "Too Many Requests",
        description: "A rate limit or a tenant's quota is spent. `Retry-After` says how many \
            seconds to wait; `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` \
            say where the caller stands.",
    },
    ProblemType {
        slug: "error",
        status: 499,
        title: "Error",
        description: "The client went away before the answer (a cancelled call); logged, rarely \
            seen by anyone.",
    },
    ProblemType {
        slug: "internal-server-error",
        status: 500,
        title: "Internal Server Error",
        description: "A bug: the service failed to handle the request. Details stay in its logs, \
            found by the response's `X-Request-Id`.",
    },
    ProblemType {
        slug: "data-loss",
        status: 500,
        title: "Damaged Data",
        description: "Stored data is damaged (a backup whose document no longer matches its \
            checksum); the detail names it. Nothing was changed, and retrying will not help.",
    },
    ProblemType {
        slug: "not-implemented",
        status: 501,
        title: "Not Implemented",
        description: "The service does not implement this operation.",
    },
    ProblemType {
        slug: "bad-gateway",
        status: 502,
        title: "Bad Gateway",
        description: "A service answered something the gateway could not use (a bug of that \
            service, logged).",
    },
    ProblemType {
        slug: "service-unavailable",
        status: 503,
        title: "Service Unavailable",
        description: "A service this request needs is down, restarting or overloaded. Retry after \
            `Retry-After` seconds; another replica is likely to answer.",
    },
    ProblemType {
        slug: "gateway-timeout",
        status: 504,
        title: "Gateway Timeout",
        description: "A service did not answer within the gateway's deadline \
            (`SANKALPA_GRPC_TIMEOUT_MS`, 10 s by default). The operation may or may not have \
            happened: read before retrying one that is not idempotent.",
    },
];

/// The problem type named `slug`, if the API has one.
pub fn problem_type(slug: &str) -> Option<&'static ProblemType> {
    PROBLEM_TYPES.iter().find(|kind| kind.slug == slug)
}

pub use sankalpa_api::problem::{CONTENT_TYPE, FieldViolation};

/// An RFC 9457 problem document ([`sankalpa_api::Problem`], what the client reads), with what a
/// response carries besides it: Retry-After and the RateLimit-* headers. Its members are the
/// document's, through `Deref`.
#[derive(Debug, Clone)]
pub struct Problem {
    pub document: sankalpa_api::Problem,
    /// Seconds to wait before retrying (429 and 503).
    pub retry_after: Option<u64>,
    /// The quota a 429 ran into, sent as RateLimit-* headers.
    pub quota: Option<Quota>,
}

impl std::ops::Deref for Problem {
    type Target = sankalpa_api::Problem;

    fn deref(&self) -> &sankalpa_api::Problem {
        &self.document
    }
}

impl std::ops::DerefMut for Problem {
    fn deref_mut(&mut self) -> &mut sankalpa_api::Problem {
        &mut self.document
    }
}

impl utoipa::PartialSchema for Problem {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <sankalpa_api::Problem as utoipa::PartialSchema>::schema()
    }
}

impl ToSchema for Problem {
    fn name() -> std::borrow::Cow<'static, str> {
        <sankalpa_api::Problem as ToSchema>::name()
    }

    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <sankalpa_api::Problem as ToSchema>::schemas(schemas);
    }
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        let title = status.canonical_reason().unwrap_or("Error").to_owned();
        let slug = title.to_lowercase().replace(' ', "-");
        Self {
            document: sankalpa_api::Problem {
                kind: format!("{TYPE_PREFIX}{slug}"),
                title,
                status: status.as_u16(),
                detail: Some(detail.into()),
                errors: Vec::new(),
                current_version: None,
            },
            retry_after: None,
            quota: None,
        }
    }

    /// 503 with Retry-After: a service this request needs is down or overloaded.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        let mut problem = Self::new(StatusCode::SERVICE_UNAVAILABLE, detail);
        problem.retry_after = Some(UNAVAILABLE_RETRY_AFTER);
        problem
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        let violation = FieldViolation {
            field: field.into(),
            message: message.into(),
        };
        let mut problem = Self::new(
            StatusCode::BAD_REQUEST,
            format!("{}: {}", violation.field, violation.message),
        );
        problem.errors.push(violation);
        problem
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let retry_after = self.retry_after;
        let quota = self.quota;
        let body = serde_json::to_vec(&self.document).expect("a problem always serialises");
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(quota) = quota {
            quota.set_headers(headers);
        }
        response
    }
}

/// The HTTP status a gRPC code maps to.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::FailedPrecondition => StatusCode::UNPROCESSABLE_ENTITY,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        // Without a quota (see [`Quota`]), an overloaded service: 503.
        Code::ResourceExhausted => StatusCode::SERVICE_UNAVAILABLE,
        Code::Cancelled => StatusCode::from_u16(499).expect("499 is a valid status"),
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// INVALID_ARGUMENT naming `field`, with the violation attached for the gateway.
pub fn invalid_argument(field: &str, message: impl Into<String>) -> Status {
    invalid_arguments(vec![FieldViolation {
        field: field.to_owned(),
        message: message.into(),
    }])
}

pub fn invalid_arguments(violations: Vec<FieldViolation>) -> Status {
    let summary = violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.message))
        .collect::<Vec<_>>()
        .join("; ");
    invalid_arguments_saying(summary, violations)
}

/// INVALID_ARGUMENT saying `message`, with `violations` attached for the gateway.
pub fn invalid_arguments_saying(
    message: impl Into<String>,
    violations: Vec<FieldViolation>,
) -> Status {
    let details = ErrorDetails::with_bad_request(
        violations
            .into_iter()
            .map(|v| tonic_types::FieldViolation::new(v.field, v.message))
            .collect::<Vec<_>>(),
    );
    Status::with_error_details(Code::InvalidArgument, message, details)
}

/// The field violations a status carries, if any.
pub fn field_violations(status: &Status) -> Vec<FieldViolation> {
    status
        .get_details_bad_request()
        .map(|bad| {
            bad.field_violations
                .into_iter()
                .map(|v| FieldViolation {
                    field: v.field,
                    message: v.description,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// ABORTED saying `message`: a compare-and-set lost, the thing is now at `current_version`.
pub fn version_conflict(message: impl Into<String>, current_version: u64) -> Status {
    let metadata = HashMap::from([("current_version".to_owned(), current_version.to_string())]);
    let mut details = ErrorDetails::new();
    details.set_error_info(VERSION_CONFLICT, ERROR_DOMAIN, metadata);
    Status::with_error_details(Code::Aborted, message, details)
}

/// The current version an ABORTED version conflict carries, if any.
pub fn current_version(status: &Status) -> Option<u64> {
    error_info(status, VERSION_CONFLICT)?
        .metadata
        .get("current_version")?
        .parse()
        .ok()
}

/// The status's `ErrorInfo`, if it has one of `reason` in Sankalpa's domain.
fn error_info(status: &Status, reason: &str) -> Option<tonic_types::ErrorInfo> {
    status
        .get_details_error_info()
        .filter(|info| info.reason == reason && info.domain == ERROR_DOMAIN)
}

impl From<Status> for Problem {
    fn from(status: Status) -> Self {
        if let Some(quota) = Quota::of(&status) {
            let mut problem = Problem::new(StatusCode::TOO_MANY_REQUESTS, status.message());
            problem.retry_after = Some(quota.reset.max(1));
            problem.quota = Some(quota);
            return problem;
        }
        match status.code() {
            Code::Unavailable => return Problem::unavailable(status.message()),
            Code::ResourceExhausted => {
                return Problem::unavailable("the service is overloaded; retry shortly");
            }
            // A status made by the client's transport rather than sent by the service: the
            // connection broke (the service restarting, a reset stream). Nothing about the
            // request was wrong, and a retry is likely to find a replica.
            Code::Unknown | Code::Internal | Code::Cancelled
                if std::error::Error::source(&status).is_some() =>
            {
                tracing::warn!(error = %status, "an upstream call failed in transport");
                return Problem::unavailable("a service this request needs did not answer");
            }
            _ => {}
        }
        let http = http_status(status.code());
        // Internal details stay in the logs of the service that failed. UNAVAILABLE and
        // DATA_LOSS messages are written for the caller: what is down, what data is damaged.
        let detail = match status.code() {
            Code::DataLoss => status.message().to_owned(),
            _ if http.is_server_error() => "the service failed to handle the request".to_owned(),
            _ => status.message().to_owned(),
        };
        let mut problem = Problem::new(http, detail);
        if status.code() == Code::DataLoss {
            // Still a 500 (the stored data is at fault, not the request), but named, so a
            // client can tell it from a passing failure that a retry would cure.
            problem.kind = format!("{TYPE_PREFIX}data-loss");
            problem.title = "Damaged Data".to_owned();
        }
        problem.errors = field_violations(&status);
        problem.current_version = current_version(&status);
        problem
    }
}

/// An internal error, logged with its cause chain and answered as INTERNAL without details.
pub fn internal(err: impl std::fmt::Display) -> Status {
    tracing::error!(error = %err, "internal error");
    Status::internal("internal error")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_violations_survive_the_trip_through_a_status() {
        let status = invalid_argument("email", "must contain @");
        let problem = Problem::from(status);
        assert_eq!(problem.status, 400);
        assert_eq!(problem.errors.len(), 1);
        assert_eq!(problem.errors[0].field, "email");
        assert_eq!(problem.errors[0].message, "must contain @");
    }

    #[test]
    fn a_version_conflict_is_a_409_carrying_the_current_version() {
        let problem = Problem::from(version_conflict("version conflict", 7));
        assert_eq!(problem.status, 409);
        assert_eq!(problem.current_version, Some(7));
        let json = serde_json::to_value(&problem.document).unwrap();
        assert_eq!(json["current_version"], 7);
    }

    #[test]
    fn data_loss_is_a_500_that_says_what_is_damaged() {
        let problem = Problem::from(Status::data_loss("backup b1 is damaged"));
        assert_eq!(problem.status, 500);
        assert!(problem.kind.ends_with("/data-loss"));
        assert_eq!(problem.detail.as_deref(), Some("backup b1 is damaged"));
    }

    #[test]
    fn a_quota_refusal_is_a_429_with_its_headers_and_retry_after() {
        let quota = Quota {
            limit: 5,
            remaining: 0,
            reset: 30,
        };
        let problem = Problem::from(quota.exceeded("5 chain runs at once"));
        assert_eq!(problem.status, 429);
        let response = problem.into_response();
        let header = |name: &str| response.headers()[name].to_str().unwrap().to_owned();
        assert_eq!(header("ratelimit-limit"), "5");
        assert_eq!(header("ratelimit-remaining"), "0");
        assert_eq!(header("ratelimit-reset"), "30");
        assert_eq!(header("retry-after"), "30");
    }

    #[test]
    fn upstream_failures_are_503s_with_retry_after() {
        let transport = Status::from_error(Box::new(std::io::Error::other("connection reset")));
        assert_eq!(transport.code(), Code::Unknown);
        for status in [
            Status::unavailable("memory is down"),
            Status::resource_exhausted("too many requests on this connection"),
            transport,
        ] {
            let response = Problem::from(status).into_response();
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(response.headers()["retry-after"], "1");
        }
        let bug = Problem::from(Status::unknown("a handler failed"));
        assert_eq!(bug.status, 500);
        assert_eq!(Problem::from(Status::deadline_exceeded("slow")).status, 504);
    }

    #[test]
    fn every_problem_the_api_can_answer_has_a_described_type() {
        let codes = [
            Code::InvalidArgument,
            Code::OutOfRange,
            Code::FailedPrecondition,
            Code::Unauthenticated,
            Code::PermissionDenied,
            Code::NotFound,
            Code::AlreadyExists,
            Code::Aborted,
            Code::ResourceExhausted,
            Code::Cancelled,
            Code::DeadlineExceeded,
            Code::Unimplemented,
            Code::Unavailable,
            Code::Internal,
            Code::DataLoss,
        ];
        // The statuses the gateway answers by itself besides those mapped from services.
        let own = [405, 413, 415, 429, 502].map(|code| StatusCode::from_u16(code).unwrap());
        let statuses = codes.into_iter().map(http_status).chain(own);
        for status in statuses {
            let problem = Problem::new(status, "x");
            let slug = problem.kind.strip_prefix(TYPE_PREFIX).unwrap();
            let kind = problem_type(slug).unwrap_or_else(|| panic!("no page for {slug}"));
            assert_eq!(kind.status, problem.status);
            assert_eq!(kind.title, problem.title);
        }
        let damaged = Problem::from(Status::data_loss("backup b1 is damaged"));
        let slug = damaged.kind.strip_prefix(TYPE_PREFIX).unwrap();
        assert_eq!(problem_type(slug).unwrap().title, damaged.title);
    }

    #[test]
    fn internal_details_are_not_passed_to_clients() {
        let problem = Problem::from(Status::internal("connection to 10.0.0.5 refused"));
        assert_eq!(problem.status, 500);
        assert!(
            !problem
                .document
                .detail
                .unwrap_or_default()
                .contains("10.0.0.5")
        );
    }
}
