//! The RFC 9457 problem document every error of the API is answered with
//! (`application/problem+json`). The services' side (mapping gRPC statuses to it, the response
//! headers that go with it) is `sankalpa_kit::problem`; this is what travels.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub const CONTENT_TYPE: &str = "application/problem+json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldViolation {
    pub field: String,
    pub message: String,
}

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the kind of problem (`/problems/<slug>`, relative to the API),
    /// where a page describes it.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldViolation>,
    /// On a version conflict (409): the version the thing has now, 0 when it is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_version: Option<u64>,
}

impl std::fmt::Display for Problem {
    /// One line for a person: the detail (which names each invalid field), or the title.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.detail, self.errors.is_empty()) {
            (Some(detail), _) => write!(f, "{detail}"),
            (None, false) => {
                let fields = self
                    .errors
                    .iter()
                    .map(|v| format!("{}: {}", v.field, v.message));
                write!(f, "{}", fields.collect::<Vec<_>>().join("; "))
            }
            (None, true) => write!(f, "{}", self.title),
        }
    }
}
