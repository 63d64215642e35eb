//! Checks on what callers send, each failing with the field it is about.

use uuid::Uuid;

use crate::error::{AuthError, Result};

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
