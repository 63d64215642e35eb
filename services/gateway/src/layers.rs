//! The two layers every API request passes. Each does in one place what used to be a layer per
//! concern: a tower layer costs every request a boxed future and a clone of the service behind
//! it, and five of them were a quarter of the gateway's work on its cheapest route.
//!
//! - [`edge`], around everything, outermost first: the `?access_token=` of the event streams
//!   moved into `Authorization` before anything records the URI ([`authn::token_from_query`]),
//!   a span joined to the caller's trace ([`observe::traced`]), the declared body length
//!   checked ([`json::declared_too_large`]), plain-text errors turned into problems
//!   ([`json::problems_only`]), and the security headers on every response
//!   ([`observe::security_headers`]).
//! - [`guard`], around each matched route, where the route is known: the rate limit
//!   ([`ratelimit::count`]), authentication ([`authn::authenticate`]) and request metrics
//!   ([`observe::record_request`]). The metrics count what passed the limit and
//!   authentication, which count their refusals themselves. Routes outside the rate limit
//!   (docs, health, metrics) are only counted, by [`measured`].

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::authn::{self, Authenticator};
use crate::json;
use crate::observe::{self, CallerTenant, MatchedRoute};
use crate::ratelimit::{self, RateLimiter};

/// What [`edge`] needs: the largest body accepted, in bytes.
#[derive(Clone, Copy)]
pub struct Edge {
    pub body_limit: usize,
}

pub async fn edge(State(edge): State<Edge>, request: Request, next: Next) -> Response {
    let response = match authn::token_from_query(request) {
        // Refused before the span: the URI may still hold the token.
        Err(problem) => problem.into_response(),
        Ok(request) => {
            observe::traced(request, move |request: Request| async move {
                if let Some(too_large) = json::declared_too_large(&request, edge.body_limit) {
                    return too_large;
                }
                json::problems_only(next.run(request).await).await
            })
            .await
        }
    };
    observe::security_headers(response)
}

/// What [`guard`] needs.
#[derive(Clone)]
pub struct Guard {
    pub limiter: Arc<RateLimiter>,
    pub authenticator: Arc<Authenticator>,
}

pub async fn guard(State(guard): State<Guard>, mut request: Request, next: Next) -> Response {
    let limits = match ratelimit::count(&guard.limiter, &guard.authenticator, &mut request).await {
        Ok(limits) => limits,
        Err(refused) => return refused,
    };
    let tenant = match authn::authenticate(&guard.authenticator, &mut request).await {
        Ok(tenant) => tenant,
        Err(mut refused) => {
            if let Some(limits) = &limits {
                limits.set_headers(refused.headers_mut());
            }
            return refused;
        }
    };
    let mut response = measured(request, next).await;
    // A handler that ran into a narrower limit of its own (a login's account) said so already.
    if let Some(limits) = limits
        && !response.headers().contains_key("ratelimit-limit")
    {
        limits.set_headers(response.headers_mut());
    }
    if !tenant.is_empty() {
        response.extensions_mut().insert(CallerTenant(tenant));
    }
    response
}

/// Runs the route, counting it in the request metrics.
pub async fn measured(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(String::new, |path| path.as_str().to_owned());
    let method = request.method().clone();
    let started = Instant::now();
    let mut response = next.run(request).await;
    observe::record_request(&route, &method, response.status(), started);
    response.extensions_mut().insert(MatchedRoute(route));
    response
}
