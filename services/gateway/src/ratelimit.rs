//! Rate limiting, shared by every gateway replica through Redis.
//!
//! The count is a sliding-window estimate from two fixed windows (the previous window's count
//! weighted by how much of it the sliding window still covers, plus the current window's
//! count): close to a true sliding log at the memory cost of two integers per caller. Callers
//! are counted per principal when they present a valid credential and per client address
//! otherwise; login and register have a stricter bucket of their own, per address, because each
//! attempt costs an argon2 hash and invites guessing, and a login is counted against the
//! account it names as well ([`RateLimiter::check_login_account`]), so guessing one account's
//! password from many addresses is as slow as from one.
//!
//! A gateway does not ask Redis on every request. One Lua script run leases it a share of the
//! room left in the bucket: a sixteenth of it, at most [`MAX_LEASE`] requests, and never less
//! than one. The lease is counted in Redis at once, so every replica sees it, and spent here
//! until it runs out or its window ends. A caller far below its limit thus costs Redis one
//! script run per lease rather than per request, and near the limit leases shrink to single
//! requests, so a limit of a few dozen is counted exactly across replicas. What a lease costs
//! is accuracy on the safe side: requests leased but never made (the caller moved to another
//! replica, or stopped) still count, so a caller may be refused up to `MAX_LEASE` requests per
//! replica early, never admitted past its limit.
//!
//! Redis is a safeguard here, not a dependency: when it is down or slow an ordinary request goes
//! through and `gateway_rate_limit_bypassed_total` counts it. Login and register do not: a
//! limit that fails open is no defence against guessing, so they are refused with 503 (and
//! counted in `gateway_login_refused_unlimited_total`) until Redis answers again.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use sankalpa_kit::cache::Redis;
use sankalpa_kit::config::{self, ConfigError};
use sankalpa_kit::problem::{Problem, Quota};
use sha2::{Digest, Sha256};

use crate::authn::Authenticator;

/// The routes with the strict bucket.
const LOGIN_ROUTES: &[&str] = &[
    "/api/users/login",
    "/api/users/register",
    "/api/console/session",
];

/// The most requests one lease grants.
pub const MAX_LEASE: u64 = 64;
/// A lease takes at most this fraction (1/n) of the room left, so replicas serving one caller
/// split what is left rather than one taking it all.
const LEASE_SHARE: u64 = 16;
/// Past this many buckets held, leases of ended windows are dropped before adding one, so
/// many callers cannot grow the table without bound.
const LEASES_SWEEP_AT: usize = 10_000;

/// Grants up to ARGV[4] requests (at most a 1/ARGV[5] share of the room left, at least one)
/// when the estimate leaves room for one more; returns {granted, current, previous}, granted 0
/// for a refusal.
const SLIDING_WINDOW: &str = r"
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local previous = tonumber(redis.call('GET', KEYS[2]) or '0')
local limit = tonumber(ARGV[1])
local window_ms = tonumber(ARGV[2])
local elapsed_ms = tonumber(ARGV[3])
local room = math.floor(limit - previous * (window_ms - elapsed_ms) / window_ms - current)
if room < 1 then
  return {0, current, previous}
end
local granted = math.min(tonumber(ARGV[4]), math.max(1, math.floor(room / tonumber(ARGV[5]))))
current = redis.call('INCRBY', KEYS[1], granted)
if current == granted then
  redis.call('PEXPIRE', KEYS[1], window_ms * 2)
end
return {granted, current, previous}
";

#[derive(Debug, Clone)]
pub struct RateLimitConfig {
    pub window: Duration,
    /// Requests per window per client address, for calls without a credential.
    pub anonymous: u64,
    /// Requests per window per principal.
    pub authenticated: u64,
    /// Login and register attempts per window per client address.
    pub login: u64,
    /// Login attempts per window per account (the email asked for), from any address.
    pub login_account: u64,
    /// Requests per window to one inbound webhook trigger, from any address.
    pub trigger: u64,
    /// Past this, Redis counts as slow and the request goes through unlimited.
    pub redis_timeout: Duration,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(60),
            anonymous: 300,
            authenticated: 1200,
            login: 20,
            login_account: 10,
            trigger: 600,
            redis_timeout: Duration::from_millis(50),
        }
    }
}

impl RateLimitConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let default = Self::default();
        Ok(Self {
            window: config::millis("SANKALPA_RATE_LIMIT_WINDOW_MS", default.window)?,
            anonymous: config::var("SANKALPA_RATE_LIMIT_ANONYMOUS", default.anonymous)?,
            authenticated: config::var("SANKALPA_RATE_LIMIT_AUTHENTICATED", default.authenticated)?,
            login: config::var("SANKALPA_RATE_LIMIT_LOGIN", default.login)?,
            login_account: config::var("SANKALPA_RATE_LIMIT_LOGIN_ACCOUNT", default.login_account)?,
            trigger: config::var("SANKALPA_RATE_LIMIT_TRIGGER", default.trigger)?,
            redis_timeout: config::millis(
                "SANKALPA_RATE_LIMIT_REDIS_TIMEOUT_MS",
                default.redis_timeout,
            )?,
        })
    }
}

pub struct RateLimiter {
    redis: Redis,
    script: redis::Script,
    config: RateLimitConfig,
    trust_forwarded_for: bool,
    /// What this gateway holds of each bucket's current window.
    leases: Mutex<HashMap<String, Lease>>,
}

/// Requests of one bucket this gateway may still admit without asking Redis.
struct Lease {
    /// The fixed window the lease was counted in; it is void in any other.
    window: u64,
    left: u64,
    /// The room Redis had left, unleased, when it granted this.
    unleased: u64,
}

/// The outcome of one check, and what the RateLimit-* headers tell the client.
pub struct Decision {
    allowed: bool,
    /// The limit, what is left of it, and the seconds until the current window ends.
    quota: Quota,
    /// Seconds until a denied request would be allowed.
    retry_after: u64,
}

impl RateLimiter {
    pub fn new(redis: Redis, config: RateLimitConfig, trust_forwarded_for: bool) -> Self {
        Self {
            redis,
            script: redis::Script::new(SLIDING_WINDOW),
            config,
            trust_forwarded_for,
            leases: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request against `bucket`, from this gateway's lease when it holds one, else
    /// through Redis; `None` when Redis could not say in time.
    async fn check(&self, bucket: &str, limit: u64) -> Option<Decision> {
        let window_ms = u64::try_from(self.config.window.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64);
        let index = now_ms / window_ms;
        let elapsed_ms = now_ms % window_ms;
        let reset = seconds((window_ms - elapsed_ms) as f64);
        if let Some(remaining) = self.spend_lease(bucket, index) {
            return Some(Decision {
                allowed: true,
                quota: Quota {
                    limit,
                    remaining,
                    reset,
                },
                retry_after: 0,
            });
        }
        let current_key = self.redis.key(&format!("ratelimit:{bucket}:{index}"));
        let previous_key = self
            .redis
            .key(&format!("ratelimit:{bucket}:{}", index.saturating_sub(1)));
        let mut invocation = self.script.key(current_key);
        invocation
            .key(previous_key)
            .arg(limit)
            .arg(window_ms)
            .arg(elapsed_ms)
            .arg(MAX_LEASE)
            .arg(LEASE_SHARE);
        let counts = tokio::time::timeout(self.config.redis_timeout, async {
            let mut connection = self.redis.connection().await?;
            invocation
                .invoke_async::<(u64, u64, u64)>(&mut connection)
                .await
        })
        .await;
        let (granted, current, previous) = match counts {
            Ok(Ok(counts)) => counts,
            Ok(Err(err)) => {
                tracing::debug!(error = %err, "rate limit bypassed: Redis failed");
                metrics::counter!("gateway_rate_limit_bypassed_total").increment(1);
                return None;
            }
            Err(_) => {
                tracing::debug!("rate limit bypassed: Redis was too slow");
                metrics::counter!("gateway_rate_limit_bypassed_total").increment(1);
                return None;
            }
        };
        let window = window_ms as f64;
        let elapsed = elapsed_ms as f64;
        let estimate = previous as f64 * (window - elapsed) / window + current as f64;
        let unleased = (limit as f64 - estimate).floor().max(0.0) as u64;
        // This request takes one of the grant; the rest is kept for the next ones.
        let left = granted.saturating_sub(1);
        if left > 0 {
            self.keep_lease(bucket, index, left, unleased);
        }
        Some(Decision {
            allowed: granted > 0,
            quota: Quota {
                limit,
                remaining: unleased + left,
                reset,
            },
            retry_after: seconds(wait_ms(limit, current, previous, window, elapsed)),
        })
    }

    /// Counts a login attempt against the account `email` names, whichever address it comes
    /// from: `Err` is the answer to give (429 past the limit, 503 when Redis cannot say), `Ok`
    /// the decision for the response's headers. The bucket is keyed by a digest of the
    /// address, so no email is written to Redis.
    pub async fn check_login_account(&self, email: &str) -> Result<Option<Decision>, Problem> {
        let account = hex::encode(Sha256::digest(email.trim().to_lowercase().as_bytes()));
        let limit = self.config.login_account;
        let decision = self.check(&format!("login:account:{account}"), limit).await;
        admit("login", limit, self.config.window, decision)
    }

    /// Counts a request to inbound trigger `trigger`, whoever sends it: `Err` is the 429 past
    /// the limit, `Ok` the decision for the response's headers (none when Redis cannot say,
    /// and the request goes through: the trigger's signature still guards it).
    pub async fn check_trigger(&self, trigger: &str) -> Result<Option<Decision>, Problem> {
        let limit = self.config.trigger;
        let decision = self.check(&format!("trigger:{trigger}"), limit).await;
        admit("trigger", limit, self.config.window, decision)
    }

    /// Takes one request from the bucket's lease of window `index`; the requests then left to
    /// the caller as far as this gateway knows, or `None` without a lease to spend.
    fn spend_lease(&self, bucket: &str, index: u64) -> Option<u64> {
        let mut leases = self
            .leases
            .lock()
            .expect("the lease table is never poisoned");
        let lease = leases.get_mut(bucket)?;
        if lease.window != index || lease.left == 0 {
            return None;
        }
        lease.left -= 1;
        Some(lease.unleased + lease.left)
    }

    fn keep_lease(&self, bucket: &str, index: u64, left: u64, unleased: u64) {
        let mut leases = self
            .leases
            .lock()
            .expect("the lease table is never poisoned");
        if leases.len() >= LEASES_SWEEP_AT && !leases.contains_key(bucket) {
            leases.retain(|_, lease| lease.window == index && lease.left > 0);
        }
        let lease = leases.entry(bucket.to_owned()).or_insert(Lease {
            window: index,
            left: 0,
            unleased,
        });
        // Requests racing for one bucket may each have leased: what they got adds up.
        if lease.window != index {
            lease.window = index;
            lease.left = 0;
        }
        lease.left += left;
        lease.unleased = unleased;
    }

    fn client_address(&self, request: &Request) -> String {
        if self.trust_forwarded_for
            && let Some(forwarded) = request
                .headers()
                .get("x-forwarded-for")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.rsplit(',').next())
                .map(str::trim)
                .filter(|value| !value.is_empty())
        {
            return forwarded.to_owned();
        }
        request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(|| "unknown".to_owned(), |info| info.0.ip().to_string())
    }
}

/// How long until one more request fits under `limit`: later in the current window, as the
/// previous window's weight fades, or else in the next one, as the current window's does.
fn wait_ms(limit: u64, current: u64, previous: u64, window: f64, elapsed: f64) -> f64 {
    let room = limit as f64 - 1.0;
    if (current as f64) <= room && previous > 0 {
        let at = window * (1.0 - (room - current as f64) / previous as f64);
        if at < window {
            return (at - elapsed).max(0.0);
        }
    }
    let into_next = if current == 0 {
        0.0
    } else {
        (window * (1.0 - room / current as f64)).clamp(0.0, window)
    };
    window - elapsed + into_next
}

fn seconds(ms: f64) -> u64 {
    ((ms / 1000.0).ceil() as u64).max(1)
}

impl Decision {
    /// The RateLimit-* headers of a response.
    pub fn set_headers(&self, headers: &mut HeaderMap) {
        self.quota.set_headers(headers);
    }
}

/// What to do with a request given its bucket's `decision`: `Ok` to go on (with the headers to
/// send, when Redis could say), `Err` the 429 of a full bucket or, for a login, the 503 of a
/// limit that could not be checked.
fn admit(
    kind: &'static str,
    limit: u64,
    window: Duration,
    decision: Option<Decision>,
) -> Result<Option<Decision>, Problem> {
    let Some(decision) = decision else {
        if kind == "login" {
            metrics::counter!("gateway_login_refused_unlimited_total").increment(1);
            return Err(Problem::unavailable(
                "sign-in is paused: its rate limit cannot be checked right now",
            ));
        }
        return Ok(None);
    };
    if decision.allowed {
        return Ok(Some(decision));
    }
    metrics::counter!("gateway_rate_limited_total", "bucket" => kind).increment(1);
    let mut problem = Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!(
            "rate limit of {limit} requests per {} s exceeded; retry in {} s",
            window.as_secs().max(1),
            decision.retry_after
        ),
    );
    problem.retry_after = Some(decision.retry_after);
    problem.quota = Some(decision.quota);
    Err(problem)
}

/// Counts the request in its bucket: `Err` is the 429 to answer when the bucket is full, `Ok`
/// what to tell the client on the response, `None` when Redis could not say. A caller the
/// authenticator knows without a network call is put into the request, so authentication
/// does not verify it again.
pub async fn count(
    limiter: &RateLimiter,
    authenticator: &Authenticator,
    request: &mut Request,
) -> Result<Option<Decision>, Response> {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    let (kind, bucket, limit) = if route.is_some_and(|route| LOGIN_ROUTES.contains(&route)) {
        let address = limiter.client_address(request);
        ("login", format!("login:ip:{address}"), limiter.config.login)
    } else if let Some(caller) = authenticator.known(request.headers()) {
        let bucket = format!(
            "api:principal:{}:{}",
            caller.principal.tenant_id, caller.principal.subject
        );
        request.extensions_mut().insert(caller);
        ("principal", bucket, limiter.config.authenticated)
    } else {
        let address = limiter.client_address(request);
        (
            "anonymous",
            format!("api:ip:{address}"),
            limiter.config.anonymous,
        )
    };

    let decision = limiter.check(&bucket, limit).await;
    admit(kind, limit, limiter.config.window, decision).map_err(IntoResponse::into_response)
}

#[cfg(test)]
mod tests {
    use super::wait_ms;

    #[test]
    fn a_full_current_window_waits_into_the_next_one() {
        // 10 of 10 used, 40 s into a 60 s window: 20 s left, then 6 s of the next window
        // before the fading count leaves room for one more.
        let wait = wait_ms(10, 10, 0, 60_000.0, 40_000.0);
        assert!((wait - 26_000.0).abs() < 1.0, "{wait}");
    }

    #[test]
    fn a_full_previous_window_frees_room_as_it_fades() {
        // Nothing yet in this window, 10 of 10 in the last one, 0 s in: one slot frees at 6 s.
        let wait = wait_ms(10, 0, 10, 60_000.0, 0.0);
        assert!((wait - 6_000.0).abs() < 1.0, "{wait}");
    }
}
