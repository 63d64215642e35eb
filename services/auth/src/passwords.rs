//! Password hashing with argon2id (the crate's default parameters: 19 MiB, 2 passes).
//!
//! Hashing costs about 15 ms of CPU, so it runs on the blocking pool and never stalls the
//! request workers.

use std::sync::OnceLock;

use anyhow::Context;
use argon2::{Argon2, PasswordHasher, PasswordVerifier};

use crate::error::{AuthError, Result};

pub const MIN_LENGTH: usize = 8;
/// Bounds the hashing work one request can ask for.
pub const MAX_LENGTH: usize = 128;

/// A hash of a password nobody has, verified against when an email is unknown so that a failed
/// login takes as long whether or not the account exists.
static DECOY_HASH: OnceLock<String> = OnceLock::new();

fn decoy_hash() -> &'static str {
    DECOY_HASH.get_or_init(|| {
        Argon2::default()
            .hash_password(uuid::Uuid::new_v4().as_bytes())
            .map(|hash| hash.to_string())
            .unwrap_or_default()
    })
}

pub fn validate(password: &str) -> Result<()> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Err(AuthError::invalid(
            "password",
            format!("must be at least {MIN_LENGTH} characters"),
        ));
    }
    if length > MAX_LENGTH {
        return Err(AuthError::invalid(
            "password",
            format!("must be at most {MAX_LENGTH} characters"),
        ));
    }
    Ok(())
}

pub async fn hash(password: String) -> Result<String> {
    let hashed = tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
    })
    .await
    .context("password hashing task failed")?
    .map_err(|err| anyhow::anyhow!("could not hash a password: {err}"))?;
    Ok(hashed)
}

/// Whether `password` matches `stored`; with `None` it checks against the decoy and says no.
pub async fn verify(password: String, stored: Option<String>) -> Result<bool> {
    let matches = tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| decoy_hash().to_owned());
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), hash.as_str())
            .is_ok();
        known && ok
    })
    .await
    .context("password verification task failed")?;
    Ok(matches)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_no_other() {
        let stored = hash("correct horse".to_owned()).await.unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(
            verify("correct horse".into(), Some(stored.clone()))
                .await
                .unwrap()
        );
        assert!(!verify("wrong horse".into(), Some(stored)).await.unwrap());
    }

    #[tokio::test]
    async fn an_unknown_account_never_verifies() {
        assert!(!verify("anything".into(), None).await.unwrap());
    }

    #[test]
    fn length_limits_are_enforced() {
        assert!(validate("short").is_err());
        assert!(validate(&"x".repeat(MAX_LENGTH + 1)).is_err());
        assert!(validate("long enough").is_ok());
    }
}
