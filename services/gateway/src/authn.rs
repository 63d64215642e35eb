//! Authentication: who is calling, from a Bearer token or an `X-API-Key`.
//!
//! Access tokens are verified here, locally, against auth's public keys (fetched over gRPC and
//! refreshed in the background to follow key rotation), so checking a token costs no round
//! trip. An API key is traded for a short-lived access token through auth's ExchangeApiKey; the
//! result is kept in memory for a few seconds, keyed by the key's SHA-256, so a client sending
//! its key on every request does not cost auth a lookup each time, while a revoked key stops
//! working within those seconds (at once, when auth's revocation push arrives). Handlers that
//! need a caller take a [`Caller`] argument; the caller's token is what the gateway forwards to
//! the backend services. Long-lived streams check their caller again with
//! [`Authenticator::recheck`].

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sankalpa_kit::auth::{Principal, TokenError, TokenVerifier, bearer_value};
use sankalpa_kit::config::Infra;
use sankalpa_kit::grpc::Peers;
use sankalpa_kit::problem::Problem;
use sankalpa_kit::ttl_cache::TtlCache;
use sankalpa_proto::v1::ExchangeApiKeyRequest;
use sankalpa_proto::v1::auth_service_client::AuthServiceClient;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::AuthClient;

/// The most exchanged keys remembered at once, so a client sending many keys cannot grow the
/// cache without bound.
const API_KEY_CACHE_CAPACITY: usize = 10_000;
/// How long the first load of the token keys may hold up the start.
const FIRST_KEY_LOAD_TIMEOUT: Duration = Duration::from_secs(2);

/// A verified caller and the access token that proves it, forwarded to the services.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub token: Arc<str>,
    /// The API key the token was exchanged for, if it was: what a re-check exchanges again.
    api_key: Option<Arc<str>>,
}

impl Caller {
    /// 403 unless the caller holds `permission`: the gateway checks before the service does.
    pub fn require(&self, permission: &str) -> Result<(), Problem> {
        Ok(self.principal.require(permission)?)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            Problem::new(
                StatusCode::UNAUTHORIZED,
                "an access token (Authorization: Bearer) or an API key (X-API-Key) is required",
            )
        })
    }
}

pub struct Authenticator {
    verifier: Arc<TokenVerifier>,
    /// For the JWK Set: kit's key loader takes a plain client.
    keys_client: AuthServiceClient<Peers>,
    auth: AuthClient,
    grpc_timeout: Duration,
    /// How long an exchanged key is trusted without asking auth again.
    api_key_ttl: Duration,
    api_keys: TtlCache<[u8; 32], Caller>,
}

impl Authenticator {
    pub fn new(
        infra: &Infra,
        channel: Peers,
        auth: AuthClient,
        grpc_timeout: Duration,
        api_key_ttl: Duration,
    ) -> Self {
        Self {
            verifier: Arc::new(TokenVerifier::new(
                &infra.token_issuer,
                &infra.token_audience,
            )),
            keys_client: AuthServiceClient::new(channel),
            auth,
            grpc_timeout,
            api_key_ttl,
            api_keys: TtlCache::new(API_KEY_CACHE_CAPACITY),
        }
    }

    /// Loads the token keys once, so tokens verify from the first request when auth is up. When
    /// it is not, the gateway starts anyway and the background refresh keeps trying.
    pub async fn load_keys(&self) {
        let mut client = self.keys_client.clone();
        match tokio::time::timeout(
            FIRST_KEY_LOAD_TIMEOUT,
            sankalpa_kit::auth::load_jwks(&self.verifier, &mut client),
        )
        .await
        {
            Ok(Ok(count)) => tracing::info!(keys = count, "loaded the token keys from auth"),
            Ok(Err(err)) => tracing::warn!(error = %err, "could not load the token keys yet"),
            Err(_) => tracing::warn!("auth did not send the token keys in time; will retry"),
        }
    }

    /// Follows auth's key rotation and revocations until `stop` is cancelled.
    pub async fn keep_current(
        self: Arc<Self>,
        nats: async_nats::Client,
        subject_prefix: String,
        every: Duration,
        stop: CancellationToken,
    ) {
        sankalpa_kit::auth::keep_current(
            self.verifier.clone(),
            self.keys_client.clone(),
            nats,
            subject_prefix,
            every,
            stop,
        )
        .await;
    }

    /// Changes whenever a revocation arrives: streams then [`recheck`](Self::recheck) at once.
    pub fn revocations(&self) -> tokio::sync::watch::Receiver<u64> {
        self.verifier.revocations()
    }

    /// The caller as its credential stands now: its token verified again (expired or revoked
    /// fails), or its API key exchanged again (revoked, expired, or its creator gone fails).
    pub async fn recheck(&self, caller: &Caller) -> Result<Caller, Problem> {
        match &caller.api_key {
            Some(key) => self.exchange(key).await,
            None => Ok(Caller {
                principal: self
                    .verifier
                    .verify(&caller.token)
                    .map_err(unauthenticated)?,
                token: caller.token.clone(),
                api_key: None,
            }),
        }
    }

    /// The caller, when it can be told without a network call: a valid Bearer token or an API
    /// key exchanged moments ago. The rate limiter uses this to pick the caller's bucket.
    pub fn known(&self, headers: &HeaderMap) -> Option<Caller> {
        match credential(headers) {
            Ok(Some(Credential::Bearer(value))) => self.verify_bearer(value).ok(),
            Ok(Some(Credential::ApiKey(key))) => self.cached(&digest(key)),
            Ok(None) | Err(_) => None,
        }
    }

    /// The caller, `None` for an anonymous request, 401 for a credential that does not hold.
    pub async fn identify(&self, headers: &HeaderMap) -> Result<Option<Caller>, Problem> {
        match credential(headers)? {
            None => Ok(None),
            Some(Credential::Bearer(value)) => self.verify_bearer(value).map(Some),
            Some(Credential::ApiKey(key)) => self.exchange(key).await.map(Some),
        }
    }

    fn verify_bearer(&self, value: &str) -> Result<Caller, Problem> {
        let token = bearer_value(value).ok_or_else(|| unauthenticated(TokenError::Malformed))?;
        let principal = self.verifier.verify(token).map_err(unauthenticated)?;
        Ok(Caller {
            principal,
            token: token.into(),
            api_key: None,
        })
    }

    async fn exchange(&self, key: &str) -> Result<Caller, Problem> {
        let digest = digest(key);
        if let Some(caller) = self.cached(&digest) {
            return Ok(caller);
        }
        let mut request = tonic::Request::new(ExchangeApiKeyRequest {
            api_key: key.to_owned(),
        });
        request.set_timeout(self.grpc_timeout);
        let token = self
            .auth
            .clone()
            .exchange_api_key(request)
            .await?
            .into_inner();
        let principal = self
            .verifier
            .verify(&token.access_token)
            .map_err(unauthenticated)?;
        let caller = Caller {
            principal,
            token: token.access_token.into(),
            api_key: Some(key.into()),
        };
        let lifetime = self.api_key_ttl.min(Duration::from_secs(token.expires_in));
        self.api_keys.insert(digest, caller.clone(), lifetime);
        Ok(caller)
    }

    /// A key exchanged moments ago whose token still holds: a revocation of the key, or of
    /// its creator, ends it here at once rather than when the entry ages out.
    fn cached(&self, digest: &[u8; 32]) -> Option<Caller> {
        let cached = self.api_keys.get(digest)?;
        match self.verifier.verify(&cached.token) {
            Ok(_) => Some(cached),
            Err(_) => {
                self.api_keys.remove(digest);
                None
            }
        }
    }
}

enum Credential<'a> {
    Bearer(&'a str),
    ApiKey(&'a str),
}

fn credential(headers: &HeaderMap) -> Result<Option<Credential<'_>>, Problem> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        return Ok(Some(Credential::Bearer(text(value)?)));
    }
    if let Some(value) = headers.get("x-api-key") {
        return Ok(Some(Credential::ApiKey(text(value)?.trim())));
    }
    Ok(None)
}

fn text(value: &axum::http::HeaderValue) -> Result<&str, Problem> {
    value.to_str().map_err(|_| {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "the credential header is not text",
        )
    })
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

fn unauthenticated(err: TokenError) -> Problem {
    Problem::new(StatusCode::UNAUTHORIZED, err.to_string())
}

/// Puts the [`Caller`] into the request (unless the rate limiter already has), or answers 401
/// when a credential was sent and fails; gives the caller's tenant, empty for an anonymous
/// request. Requests without a credential go on anonymously: the handlers that need a caller
/// ask for it.
pub async fn authenticate(
    authenticator: &Authenticator,
    request: &mut Request,
) -> Result<String, Response> {
    if let Some(caller) = request.extensions().get::<Caller>() {
        return Ok(caller.principal.tenant_id.clone());
    }
    match authenticator.identify(request.headers()).await {
        Ok(Some(caller)) => {
            let tenant = caller.principal.tenant_id.clone();
            request.extensions_mut().insert(caller);
            Ok(tenant)
        }
        Ok(None) => Ok(String::new()),
        Err(problem) => {
            metrics::counter!("gateway_auth_rejected_total").increment(1);
            Err(problem.into_response())
        }
    }
}

/// The routes a browser reaches with `EventSource` or `WebSocket`, neither of which can set a
/// header: there the access token may come as `?access_token=`.
fn streams_route(path: &str) -> bool {
    path == "/api/events"
        || path == "/ws"
        || path
            .strip_prefix("/api/chains/runs/")
            .and_then(|rest| rest.strip_suffix("/events"))
            .is_some_and(|run| !run.is_empty() && !run.contains('/'))
}

/// Moves `?access_token=` of the event stream routes into `Authorization: Bearer`, where
/// [`authenticate`] verifies it as any Bearer token, and takes it out of the URI so no log,
/// span or metric ever records it. A header sent as well wins. The value is used as sent: a JWT
/// needs no escaping in a query.
pub fn token_from_query(mut request: Request) -> Result<Request, Problem> {
    if !streams_route(request.uri().path()) {
        return Ok(request);
    }
    let Some(query) = request.uri().query() else {
        return Ok(request);
    };
    let mut token = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.strip_prefix("access_token=") {
            Some(value) => {
                token = Some(value.to_owned());
                false
            }
            None => *pair != "access_token",
        })
        .collect();
    let Some(token) = token else {
        return Ok(request);
    };
    let path = request.uri().path();
    let path_and_query = if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", kept.join("&"))
    };
    let invalid = || Problem::new(StatusCode::BAD_REQUEST, "the query is not valid");
    let mut parts = request.uri().clone().into_parts();
    parts.path_and_query = Some(path_and_query.parse().map_err(|_| invalid())?);
    *request.uri_mut() = axum::http::Uri::from_parts(parts).map_err(|_| invalid())?;
    if !request.headers().contains_key(header::AUTHORIZATION) {
        let mut value = axum::http::HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| Problem::new(StatusCode::UNAUTHORIZED, "access_token is not a token"))?;
        value.set_sensitive(true);
        request.headers_mut().insert(header::AUTHORIZATION, value);
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::streams_route;

    #[test]
    fn only_the_event_stream_routes_take_a_token_in_the_query() {
        assert!(streams_route("/api/events"));
        assert!(streams_route("/ws"));
        assert!(streams_route("/api/chains/runs/0190/events"));
        assert!(!streams_route("/api/chains/runs//events"));
        assert!(!streams_route("/api/chains/runs/a/b/events"));
        assert!(!streams_route("/api/users/me"));
        assert!(!streams_route("/api/chains/runs/0190"));
    }
}
