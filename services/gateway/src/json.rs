//! The JSON edge of the REST API: request bodies whose every rejection is a problem+json naming
//! what was wrong, the body size limit, and the conversions from wire types every route shares.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use sankalpa_kit::problem::Problem;
use sankalpa_proto::v1::{PageRequest, PageResponse};
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use utoipa::IntoParams;

/// A JSON request body; malformed, mistyped or oversized bodies are answered as problems.
pub struct Body<T>(pub T);

impl<T, S> FromRequest<S> for Body<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(body_problem(&rejection)),
        }
    }
}

fn body_problem(rejection: &JsonRejection) -> Problem {
    let status = match rejection {
        JsonRejection::MissingJsonContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        rejection if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            StatusCode::PAYLOAD_TOO_LARGE
        }
        // A body that parses but does not fit the schema is as much the client's mistake as one
        // that does not parse: both are 400, with serde's message naming the field or position.
        _ => StatusCode::BAD_REQUEST,
    };
    Problem::new(status, rejection.body_text())
}

/// The 413 of a body whose declared length is over `limit`, answered before reading any of it.
/// Bodies sent without a length are cut at the same limit while they are read (axum's
/// DefaultBodyLimit).
pub fn declared_too_large(request: &Request, limit: usize) -> Option<Response> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    declared.filter(|length| *length > limit as u64).map(|_| {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than the limit of {limit} bytes"),
        )
        .into_response()
    })
}

/// The longest plain error body turned into a problem's detail; axum's own rejections are
/// one short line.
const PLAIN_ERROR_MAX: usize = 4096;

/// Turns an error answered in plain text (axum's rejections of a bad path or query, 405) into
/// problem+json, keeping its message, so every error of the API has the same shape.
pub async fn problems_only(response: Response) -> Response {
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes() == sankalpa_kit::problem::CONTENT_TYPE.as_bytes());
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let (parts, body) = response.into_parts();
    let detail = match axum::body::to_bytes(body, PLAIN_ERROR_MAX).await {
        Ok(bytes) if !bytes.is_empty() => String::from_utf8_lossy(&bytes).into_owned(),
        _ => status.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    let mut problem = Problem::new(status, detail).into_response();
    // Keep what the rejection said besides its body, such as `Allow` on a 405.
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            problem.headers_mut().append(name.clone(), value.clone());
        }
    }
    problem
}

/// A protobuf timestamp as a UTC instant (RFC 3339 in JSON); unset gives `None`.
pub fn timestamp(value: Option<prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    let value = value?;
    DateTime::from_timestamp(value.seconds, u32::try_from(value.nanos).unwrap_or(0))
}

/// Cursor paging of list routes: the API crate's query, served here.
pub use sankalpa_api::paging::Page;

/// The paging of lists whose token is an offset (agent-runner's, the marketplace's): what the
/// document says of them; they are read as [`Page`].
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OffsetPage {
    /// At most 200; the service default (50) when absent or 0.
    #[param(maximum = 200)]
    pub page_size: Option<u32>,
    /// `next_page_token` of the previous page: an offset, at most 10,000.
    #[param(pattern = r"^(\+?0*(10000|[0-9]{1,4}))?$")]
    pub page_token: Option<String>,
}

/// The page a list route asks its service for.
pub fn page_request(page: Page) -> PageRequest {
    PageRequest {
        page_size: page.page_size.unwrap_or(0),
        page_token: page.page_token.unwrap_or_default(),
    }
}

/// Where the next page starts; absent on the last page.
pub fn next_page(page: Option<PageResponse>) -> Option<String> {
    page.map(|page| page.next_page_token)
        .filter(|token| !token.is_empty())
}

/// JSON text a service answered, passed through as it is. Services check what they store and
/// answer is JSON, so this failing is the service's bug: a 502 naming it, logged here.
pub fn json_text(service: &str, text: String) -> Result<Box<RawValue>, Problem> {
    RawValue::from_string(text).map_err(|err| {
        tracing::error!(error = %err, service, "a service answered JSON text that is not JSON");
        Problem::new(
            StatusCode::BAD_GATEWAY,
            format!("the {service} service answered a value that is not JSON"),
        )
    })
}

/// A problem from a service whose invalid fields are named as its wire messages name them,
/// renamed by `rest_field` to what the client of the REST API sent, the detail rebuilt to match.
pub fn renamed(status: tonic::Status, rest_field: impl Fn(&str) -> String) -> Problem {
    let mut problem = Problem::from(status);
    if !problem.errors.is_empty() {
        for violation in &mut problem.errors {
            violation.field = rest_field(&violation.field);
        }
        problem.detail = Some(
            problem
                .errors
                .iter()
                .map(|violation| format!("{}: {}", violation.field, violation.message))
                .collect::<Vec<_>>()
                .join("; "),
        );
    }
    problem
}

/// A service's wire (gRPC) message as the REST API shows it. The REST types live in
/// `sankalpa_api`, which knows nothing of the wire, so the conversions are the gateway's: one
/// impl per message, beside the handlers that answer it.
pub trait Rest {
    /// The REST type, or a `Result` of it where the message carries JSON text to check.
    type Shown;

    fn rest(self) -> Self::Shown;
}

/// The `what` a service's answer carries (it always sends it), as REST shows it; its absence is
/// the service's fault, answered 502.
pub fn shown<T: Rest>(message: Option<T>, what: &str) -> Result<T::Shown, Problem> {
    message.map(Rest::rest).ok_or_else(|| {
        Problem::new(
            axum::http::StatusCode::BAD_GATEWAY,
            format!("the service answered without the {what}"),
        )
    })
}
