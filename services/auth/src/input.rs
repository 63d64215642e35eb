//! Checks on what callers send, each failing with the field it is about.

use uuid::Uuid;

use crate::error::{AuthError, Result};

pub const DEFAULT_PAGE_SIZE: i64 = 50;
pub const MAX_PAGE_SIZE: i64 = 200;

/// A trimmed, lower-cased email address, without whitespace or control characters inside
/// (Postgres text cannot hold NUL).
pub fn email(raw: &str) -> Result<String> {
    let email = raw.trim().to_lowercase();
    let valid = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.contains('@')
        });
    if valid {
        Ok(email)
    } else {
        Err(AuthError::invalid("email", "must be an email address"))
    }
}

/// A trimmed name of 1 to 100 characters.
pub fn name(field: &'static str, raw: &str) -> Result<String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AuthError::invalid(field, "must be 1 to 100 characters"));
    }
    Ok(name.to_owned())
}

pub fn id(field: &'static str, raw: &str) -> Result<Uuid> {
    Uuid::parse_str(raw.trim()).map_err(|_| AuthError::invalid(field, "must be a UUID"))
}

/// Page size and the id to continue after, from a `PageRequest`.
pub fn page(request: Option<&sankalpa_proto::v1::PageRequest>) -> Result<(i64, Option<Uuid>)> {
    let Some(request) = request else {
        return Ok((DEFAULT_PAGE_SIZE, None));
    };
    let size = match i64::from(request.page_size) {
        0 => DEFAULT_PAGE_SIZE,
        size if size > MAX_PAGE_SIZE => {
            return Err(AuthError::invalid(
                "page.page_size",
                format!("must be at most {MAX_PAGE_SIZE}"),
            ));
        }
        size => size,
    };
    let after = if request.page_token.is_empty() {
        None
    } else {
        Some(id("page.page_token", &request.page_token)?)
    };
    Ok((size, after))
}

/// The token for the page after `rows`, which were fetched with one row more than `size`.
pub fn next_page_token<T>(rows: &mut Vec<T>, size: i64, id_of: impl Fn(&T) -> Uuid) -> String {
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    if rows.len() > size {
        rows.truncate(size);
        rows.last()
            .map(|row| id_of(row).to_string())
            .unwrap_or_default()
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert!(email("a\u{0}b@example.com").is_err());
        assert_eq!(email("  Ada@Example.COM ").unwrap(), "ada@example.com");
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "a da@example.com",
            "ada@localhost",
        ] {
            assert!(email(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
