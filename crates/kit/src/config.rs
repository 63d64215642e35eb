//! Configuration from `SANKALPA_*` environment variables.
//!
//! Every setting has a default that works on a developer machine with the local Postgres, Redis
//! and NATS, so `make run` needs no configuration at all. A value that is set but cannot be
//! parsed is an error at start, never silently replaced by the default.

use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name}={value:?} is not valid: {reason}")]
    Invalid {
        name: String,
        value: String,
        reason: String,
    },
}

/// Reads `name`, or gives `default` when it is unset or empty.
pub fn var<T>(name: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => {
            value
                .trim()
                .parse()
                .map_err(|err: T::Err| ConfigError::Invalid {
                    name: name.to_owned(),
                    value,
                    reason: err.to_string(),
                })
        }
        _ => Ok(default),
    }
}

/// Reads a setting that can be switched off: unset gives `default`, set to nothing (or blanks)
/// gives `None`, anything else is the value. Unlike [`var`], where empty means the default.
pub fn switchable(name: &str, default: &str) -> Option<String> {
    switched(std::env::var(name).ok(), default)
}

fn switched(value: Option<String>, default: &str) -> Option<String> {
    match value {
        None => Some(default.to_owned()),
        Some(value) if value.trim().is_empty() => None,
        Some(value) => Some(value.trim().to_owned()),
    }
}

/// Reads a duration given in milliseconds.
pub fn millis(name: &str, default: Duration) -> Result<Duration, ConfigError> {
    var(name, default.as_millis() as u64).map(Duration::from_millis)
}

/// Reads a comma-separated list; unset gives `default`.
pub fn list(name: &str, default: &[&str]) -> Vec<String> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => value
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => default.iter().map(|item| (*item).to_owned()).collect(),
    }
}

/// Where the shared infrastructure is, and the token settings every service checks against.
#[derive(Clone)]
pub struct Infra {
    pub database_url: String,
    pub redis_url: String,
    /// Redis connections of a process: 0, one shared multiplexed connection; else a pool of this
    /// many (see `cache::Redis`).
    pub redis_pool_size: usize,
    pub nats_url: String,
    /// JetStream stream that keeps every event.
    pub events_stream: String,
    /// Put before every subject; empty in production, unique per test for isolation.
    pub subject_prefix: String,
    /// The stream's size bound. JetStream sets this much storage aside when it creates the
    /// stream, so tests, which create one stream each, ask for little.
    pub events_max_bytes: i64,
    pub token_issuer: String,
    pub token_audience: String,
    /// Names this process among its service's replicas, in events' `source` (the pod name in
    /// Kubernetes, where HOSTNAME is set; otherwise a random name).
    pub instance: String,
}

impl Infra {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            database_url: var(
                "SANKALPA_DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/sankalpa".to_owned(),
            )?,
            redis_url: var("SANKALPA_REDIS_URL", "redis://127.0.0.1:6379".to_owned())?,
            redis_pool_size: var("SANKALPA_REDIS_POOL_SIZE", 0)?,
            nats_url: var("SANKALPA_NATS_URL", "nats://127.0.0.1:4222".to_owned())?,
            events_stream: var("SANKALPA_EVENTS_STREAM", "SANKALPA_EVENTS".to_owned())?,
            subject_prefix: var("SANKALPA_SUBJECT_PREFIX", String::new())?,
            events_max_bytes: var("SANKALPA_EVENTS_MAX_BYTES", 1024 * 1024 * 1024)?,
            token_issuer: var("SANKALPA_TOKEN_ISSUER", "sankalpa".to_owned())?,
            token_audience: var("SANKALPA_TOKEN_AUDIENCE", "sankalpa".to_owned())?,
            instance: var(
                "SANKALPA_INSTANCE_ID",
                std::env::var("HOSTNAME")
                    .unwrap_or_else(|_| uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()),
            )?,
        })
    }
}

/// The printable form of a URL: its password, if any, replaced, so config can be logged.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl std::fmt::Debug for Infra {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Infra")
            .field("database_url", &redact_url(&self.database_url))
            .field("redis_url", &redact_url(&self.redis_url))
            .field("redis_pool_size", &self.redis_pool_size)
            .field("nats_url", &redact_url(&self.nats_url))
            .field("events_stream", &self.events_stream)
            .field("subject_prefix", &self.subject_prefix)
            .field("events_max_bytes", &self.events_max_bytes)
            .field("token_issuer", &self.token_issuer)
            .field("token_audience", &self.token_audience)
            .field("instance", &self.instance)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::{redact_url, switched};

    #[test]
    fn a_switchable_setting_is_its_default_unset_and_off_when_empty() {
        assert_eq!(switched(None, "http://m:1").as_deref(), Some("http://m:1"));
        assert_eq!(switched(Some(String::new()), "http://m:1"), None);
        assert_eq!(switched(Some("  ".to_owned()), "http://m:1"), None);
        assert_eq!(
            switched(Some(" http://other:2 ".to_owned()), "http://m:1").as_deref(),
            Some("http://other:2")
        );
    }

    #[test]
    fn redact_url_hides_the_password_only() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/sankalpa"),
            "postgres://app:***@db:5432/sankalpa"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
    }
}
