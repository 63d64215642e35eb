//! Checks on what callers send, each failing with the field it is about. They run before any
//! work, so bad input changes nothing.

use uuid::Uuid;

use crate::error::{Result, TriggersError};

pub const MAX_URL_BYTES: usize = 2048;
pub const MAX_DESCRIPTION_CHARS: usize = 500;
/// The longest overlap of a rotation: a week is time enough to roll a secret out anywhere.
pub const MAX_OVERLAP_SECONDS: u32 = 7 * 24 * 3600;

pub fn uuid(field: &str, raw: &str) -> Result<Uuid> {
    Uuid::parse_str(raw.trim()).map_err(|_| TriggersError::invalid(field, "must be a UUID"))
}

/// Text of at most `max` characters, without NUL (which Postgres text cannot hold).
pub fn text(field: &str, raw: &str, max: usize) -> Result<String> {
    let trimmed = raw.trim();
    if trimmed.chars().count() > max {
        return Err(TriggersError::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if trimmed.contains('\0') {
        return Err(TriggersError::invalid(
            field,
            sankalpa_kit::bounded_json::NUL_REFUSED,
        ));
    }
    Ok(trimmed.to_owned())
}

/// A destination URL, bounded, then checked by the operator's guard.
pub fn url(field: &str, raw: &str, guard: &sankalpa_kit::egress::Guard) -> Result<String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(TriggersError::invalid(field, "must not be empty"));
    }
    if raw.len() > MAX_URL_BYTES {
        return Err(TriggersError::invalid(
            field,
            format!("must be at most {MAX_URL_BYTES} bytes"),
        ));
    }
    guard
        .check_url(raw)
        .map(|url| url.to_string())
        .map_err(|message| TriggersError::invalid(field, message))
}
