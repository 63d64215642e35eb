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
    // Postgres text cannot hold NUL: refused here rather than failing the write.
    if name.contains('\0') {
        return Err(AuthError::invalid(
            field,
            sankalpa_kit::bounded_json::NUL_REFUSED,
        ));
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
    fn names_are_trimmed_and_bounded_and_without_nul() {
        assert_eq!(name("tenant_name", "  Engines ").unwrap(), "Engines");
        for bad in ["", "   ", "a\u{0}b", &"x".repeat(101)] {
            assert!(name("tenant_name", bad).is_err(), "{bad:?}");
        }
        assert!(name("tenant_name", &"é".repeat(100)).is_ok());
    }

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
